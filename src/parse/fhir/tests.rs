//! Tests of the FHIR reader: one row per fixture in `samples/fhir`, the
//! public HL7 corpus in `tests/corpus/fhir`, and properties over hostile
//! bytes. Throughput is measured by the bench harness (`benches/pipeline`),
//! not by tests.

use super::*;
use crate::domain::CodeSystem;
use crate::parse::{MedRecord, ParseOptions, Position, ProblemKind, SourceRef};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/fhir")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_sample(name: &str) -> Result<ParsedDocument, ParseError> {
    let bytes = sample(name);
    if name.ends_with(".xml") {
        parse_xml(&bytes)
    } else {
        parse_json(&bytes)
    }
}

/// What one record must look like.
struct Rec {
    kind: &'static str,
    name: Option<&'static str>,
    codes: &'static [&'static str],
    problems: &'static [ProblemKind],
}

const fn rec(kind: &'static str, name: &'static str, codes: &'static [&'static str]) -> Rec {
    Rec {
        kind,
        name: Some(name),
        codes,
        problems: &[],
    }
}

enum Want {
    Records {
        patient: Option<&'static str>,
        records: &'static [Rec],
    },
    /// The error variant's name and, where it has one, its position.
    Error(&'static str, Option<Position>),
}

/// An error's variant name and, where it has one, its position.
type Shape = (&'static str, Option<Position>);

fn error_shape(e: &ParseError) -> Shape {
    match e {
        ParseError::Empty => ("Empty", None),
        ParseError::Binary { .. } => ("Binary", None),
        ParseError::UnknownFormat { .. } => ("UnknownFormat", None),
        ParseError::Malformed { at, .. } => ("Malformed", Some(*at)),
        ParseError::Dtd { at } => ("Dtd", Some(*at)),
        ParseError::NotCcr { at, .. } => ("NotCcr", Some(*at)),
        ParseError::NotCcda { at, .. } => ("NotCcda", Some(*at)),
        ParseError::NoStructuredBody { at, .. } => ("NoStructuredBody", Some(*at)),
        ParseError::NotFhir { at, .. } => ("NotFhir", Some(*at)),
        ParseError::OperationOutcome { .. } => ("OperationOutcome", None),
        ParseError::Encoding { at, .. } => ("Encoding", Some(*at)),
        ParseError::TooDeep { at, .. } => ("TooDeep", Some(*at)),
        ParseError::DrugData { .. } => ("DrugData", None),
    }
}

const fn at(line: usize, column: usize) -> Option<Position> {
    Some(Position { line, column })
}

const UNRESOLVED: &[ProblemKind] = &[ProblemKind::UnresolvedReference];
const NO_DRUG: &[ProblemKind] = &[ProblemKind::NoDrug];

/// One row per fixture in `samples/fhir`.
const FIXTURES: &[(&str, Want)] = &[
    (
        "searchset.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[
                rec(
                    "MedicationRequest",
                    "Lipitor 10 MG Oral Tablet",
                    &["0071-0155-23"],
                ),
                rec(
                    "MedicationRequest",
                    "Amlodipine 5 MG Oral Tablet",
                    &["197361"],
                ),
            ],
        },
    ),
    (
        "collection.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[
                rec(
                    "MedicationStatement",
                    "Prozac 20 mg capsule",
                    &["0777-3105-02"],
                ),
                rec(
                    "MedicationDispense",
                    "Prozac 20 mg capsule",
                    &["0777-3105-02"],
                ),
            ],
        },
    ),
    (
        "transaction-response.json",
        Want::Records {
            patient: None,
            records: &[],
        },
    ),
    (
        "single-request.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[rec(
                "MedicationRequest",
                "Lipitor 10 mg tablet",
                &["0071-0155-23"],
            )],
        },
    ),
    (
        "several-patients.json",
        Want::Records {
            patient: Some("Patient/synthetic-a"),
            records: &[
                rec("MedicationRequest", "Glucophage 500 mg", &["0087-6060-05"]),
                rec("MedicationRequest", "Lipitor 10 mg", &["0071-0155-23"]),
                rec("MedicationRequest", "Prozac 20 mg", &["0777-3105-02"]),
            ],
        },
    ),
    (
        "contained-medication.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[rec(
                "MedicationRequest",
                "Lisinopril 40 MG Oral Tablet",
                &["0185-0104-01", "29046"],
            )],
        },
    ),
    (
        "ref-urn-uuid.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[rec(
                "MedicationRequest",
                "Prinivil 10 MG Oral Tablet",
                &["0006-0106-54"],
            )],
        },
    ),
    (
        "ref-relative.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[
                rec(
                    "MedicationRequest",
                    "Prinivil 10 MG Oral Tablet",
                    &["0006-0106-54"],
                ),
                rec("Medication", "lisinopril 10 MG Oral Tablet", &["314076"]),
            ],
        },
    ),
    (
        "identifier-ndc.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[rec(
                "MedicationRequest",
                "Prinivil 10 MG Oral Tablet",
                &["0006-0106-54"],
            )],
        },
    ),
    (
        "unresolved-reference.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[Rec {
                kind: "MedicationRequest",
                name: Some("Warfarin 5 MG Oral Tablet"),
                codes: &[],
                problems: UNRESOLVED,
            }],
        },
    ),
    (
        "r5-codeable-reference.json",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[
                rec(
                    "MedicationRequest",
                    "Lipitor 10 mg tablet",
                    &["0071-0155-23", "83367"],
                ),
                rec(
                    "MedicationStatement",
                    "Prozac 20 mg capsule",
                    &["0777-3105-02"],
                ),
            ],
        },
    ),
    (
        "dstu2-medication-order.json",
        Want::Records {
            patient: Some("Patient/f001"),
            records: &[rec(
                "MedicationOrder",
                "Glucophage 500 mg tablet",
                &["0087-6060-05", "6809"],
            )],
        },
    ),
    (
        "operation-outcome.json",
        Want::Error("OperationOutcome", None),
    ),
    ("not-fhir.json", Want::Error("NotFhir", at(1, 1))),
    ("patient-only.json", Want::Error("NotFhir", at(1, 1))),
    ("malformed.json", Want::Error("Malformed", at(5, 55))),
    // The nested arrays sit in a field rxsync skips, which serde_json
    // skips without recursion: the resource is read, and names no drug.
    (
        "deep-nesting.json",
        Want::Records {
            patient: None,
            records: &[Rec {
                kind: "MedicationRequest",
                name: None,
                codes: &[],
                problems: NO_DRUG,
            }],
        },
    ),
    (
        "bundle.xml",
        Want::Records {
            patient: Some("Patient/p1"),
            records: &[
                rec(
                    "MedicationRequest",
                    "Lisinopril 40 MG Oral Tablet",
                    &["0185-0104-01"],
                ),
                rec(
                    "MedicationDispense",
                    "Lisinopril 40 MG Oral Tablet (Eon)",
                    &["0185-0104-01"],
                ),
            ],
        },
    ),
    ("dtd-billion-laughs.xml", Want::Error("Dtd", at(2, 1))),
    (
        "demo.json",
        Want::Records {
            patient: Some("Patient/demo-fhir-1"),
            records: &[
                rec(
                    "MedicationRequest",
                    "Lipitor (atorvastatin) 10 mg tablet",
                    &["0071-0155-23"],
                ),
                rec(
                    "MedicationDispense",
                    "Lipitor 10 MG Oral Tablet",
                    &["0071-0155-23"],
                ),
                rec(
                    "MedicationRequest",
                    "Prozac (fluoxetine) 20 mg capsule",
                    &["0777-3105-02"],
                ),
                rec(
                    "MedicationStatement",
                    "Prozac (fluoxetine) 20 mg capsule",
                    &["0777-3105-30"],
                ),
                rec(
                    "MedicationRequest",
                    "Lisinopril 40 mg tablet (Eon)",
                    &["0185-0104-01", "29046"],
                ),
                rec(
                    "MedicationRequest",
                    "Prinivil (lisinopril) 10 mg tablet",
                    &["0006-0106-54", "29046"],
                ),
                rec(
                    "MedicationRequest",
                    "Glucophage (metformin) 500 mg tablet",
                    &["0087606005"],
                ),
                Rec {
                    kind: "MedicationRequest",
                    name: Some("Warfarin 5 MG Oral Tablet"),
                    codes: &[],
                    problems: UNRESOLVED,
                },
                rec(
                    "MedicationRequest",
                    "Glucophage 500 MG Oral Tablet",
                    &["0087-6060-05"],
                ),
            ],
        },
    ),
    (
        "partial-reading.json",
        Want::Records {
            patient: Some("Patient/partial-1"),
            records: &[
                rec(
                    "MedicationRequest",
                    "Lipitor 10 MG Oral Tablet",
                    &["0071-0155-23"],
                ),
                rec(
                    "MedicationRequest",
                    "Glucophage 500 MG Oral Tablet",
                    &["0087-6060-05"],
                ),
            ],
        },
    ),
    (
        "eob-carin-searchset.json",
        Want::Records {
            patient: Some("Patient/bb-1"),
            records: CARIN_SEARCHSET,
        },
    ),
    (
        "eob-carin-searchset.xml",
        Want::Records {
            patient: Some("Patient/bb-1"),
            records: CARIN_SEARCHSET,
        },
    ),
    (
        "eob-single.json",
        Want::Records {
            patient: Some("Patient/bb-1"),
            records: &[rec(EOB, "Glucophage 500 MG Oral Tablet", &["00087606005"])],
        },
    ),
    (
        "eob-professional-detail.json",
        Want::Records {
            patient: Some("Patient/bb-1"),
            records: &[
                rec(EOB, "Basaglar KwikPen", &["00002771559"]),
                rec(EOB, "PredniSONE 10 MG Oral Tablet", &["00054001725"]),
            ],
        },
    ),
    (
        "eob-professional-detail.xml",
        Want::Records {
            patient: Some("Patient/bb-1"),
            records: &[
                rec(EOB, "Basaglar KwikPen", &["00002771559"]),
                rec(EOB, "PredniSONE 10 MG Oral Tablet", &["00054001725"]),
            ],
        },
    ),
    (
        "eob-bb2-stu3-pde.json",
        Want::Records {
            patient: Some("Patient/-20140000008325"),
            records: &[Rec {
                kind: EOB,
                name: None,
                codes: &["00777310502"],
                problems: &[],
            }],
        },
    ),
    (
        "eob-bb2-stu3-pde.xml",
        Want::Records {
            patient: Some("Patient/-20140000008325"),
            records: &[Rec {
                kind: EOB,
                name: None,
                codes: &["00777310502"],
                problems: &[],
            }],
        },
    ),
    (
        "eob-dstu2.json",
        Want::Records {
            patient: Some("Patient/bb-1"),
            records: &[rec(EOB, "Prinivil 10 MG Oral Tablet", &["00006010654"])],
        },
    ),
];

const EOB: &str = "ExplanationOfBenefit";

/// The CARIN searchset's records, in JSON and in XML alike.
const CARIN_SEARCHSET: &[Rec] = &[
    rec(EOB, "Lipitor 10 MG Oral Tablet", &["00071015523"]),
    rec(EOB, "Synthetic placeholder drug", &["00000000000"]),
];

#[test]
fn every_fixture_reads_as_documented() {
    let table = FIXTURES;
    let mut covered = BTreeSet::new();
    for (file, want) in table {
        covered.insert(file.to_string());
        let got = parse_sample(file);
        match (want, got) {
            (Want::Records { patient, records }, Ok(doc)) => {
                assert_eq!(doc.patient_ref.as_deref(), *patient, "{file}: patient");
                let kinds: Vec<_> = doc
                    .records
                    .iter()
                    .map(|r| r.source.as_ref().map(|s| s.kind.as_str()))
                    .collect();
                assert_eq!(
                    doc.records.len(),
                    records.len(),
                    "{file}: records {kinds:?}"
                );
                for (i, (got, want)) in doc.records.iter().zip(records.iter()).enumerate() {
                    assert_eq!(
                        got.source.as_ref().map(|s| s.kind.as_str()),
                        Some(want.kind),
                        "{file} #{i}: kind"
                    );
                    assert_eq!(got.name.as_deref(), want.name, "{file} #{i}: name");
                    let codes: Vec<&str> = got
                        .codes
                        .iter()
                        .chain(&got.ingredient_codes)
                        .map(|c| c.value.as_str())
                        .collect();
                    assert_eq!(codes, want.codes, "{file} #{i}: codes");
                    let problems: Vec<ProblemKind> = got.problems.iter().map(|p| p.kind).collect();
                    assert_eq!(problems, want.problems, "{file} #{i}: problems");
                    assert!(!got.excerpt.is_empty(), "{file} #{i}: excerpt");
                }
            }
            (Want::Error(variant, position), Err(e)) => {
                assert_eq!(error_shape(&e), (*variant, *position), "{file}: {e}");
            }
            (_, got) => panic!("{file}: unexpected {got:?}"),
        }
    }
    // Every fixture has a row, and the README names every fixture.
    let readme = String::from_utf8(sample("README.md")).unwrap_or_default();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/fhir"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "README.md" {
            assert!(covered.contains(&name), "{name} has no row in the table");
            assert!(
                readme.contains(&format!("`{name}`")),
                "{name} is not in README.md"
            );
        }
    }
}

fn only(name: &str) -> MedRecord {
    let doc = parse_sample(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(doc.records.len(), 1, "{name}");
    doc.records.into_iter().next().unwrap_or_default()
}

#[test]
fn dosage_dates_and_people_are_kept_as_written() {
    let r = only("single-request.json");
    assert_eq!(r.directions, ["Take 2 tablets twice daily as needed"]);
    assert_eq!(r.route.as_deref(), Some("oral"));
    assert_eq!(r.dose.as_deref(), Some("2 tablet"));
    assert_eq!(r.frequency.as_deref(), Some("2 per 1 d, as needed"));
    assert_eq!(r.status.as_deref(), Some("active"));
    assert_eq!(r.prescribed.as_deref(), Some("2024-02-01"));
    assert_eq!(r.prescriber.as_deref(), Some("Dr. Ada Example"));
    // No effective date on a request: the validity period stands in.
    assert_eq!(
        (r.start.as_deref(), r.stop.as_deref()),
        (Some("2024-02-01"), Some("2025-02-01"))
    );
    assert_eq!(
        r.source,
        Some(crate::parse::SourceRef {
            kind: "MedicationRequest".into(),
            id: Some("rx1".into())
        })
    );

    let r = only("dstu2-medication-order.json");
    assert_eq!(r.prescribed.as_deref(), Some("2015-03-01"));
    assert_eq!(r.prescriber.as_deref(), Some("Patricia Primary"));
    assert_eq!(r.frequency.as_deref(), Some("2 per 1 d"));
    assert_eq!(r.dose.as_deref(), Some("1 tablet"));
    assert_eq!(r.form.as_deref(), Some("Tablet"));
    assert_eq!(r.route.as_deref(), Some("Oral route"));
    assert_eq!(
        r.strengths,
        [crate::parse::Strength {
            value: "500".into(),
            unit: Some("mg".into())
        }]
    );

    let r = only("contained-medication.json");
    assert_eq!(r.form.as_deref(), Some("tablet"));
    assert_eq!(
        r.strengths,
        [crate::parse::Strength {
            value: "40".into(),
            unit: Some("mg".into())
        }]
    );
    assert_eq!(r.codes[0].system, CodeSystem::Ndc);

    let doc = parse_sample("collection.json").unwrap_or_else(|e| panic!("{e}"));
    let statement = &doc.records[0];
    assert_eq!(
        (statement.start.as_deref(), statement.stop.as_deref()),
        (Some("2024-01-01"), Some("2024-06-30"))
    );
    let dispense = &doc.records[1];
    assert_eq!(dispense.start.as_deref(), Some("2024-01-02"));
    assert_eq!(dispense.related, ["MedicationRequest/rx9"]);
}

#[test]
fn links_are_normalized_to_type_and_id() {
    let doc = parse_sample("demo.json").unwrap_or_else(|e| panic!("{e}"));
    // An absolute URL loses its base.
    assert_eq!(doc.records[1].related, ["MedicationRequest/lipitor-rx"]);
    // The Prozac pair carries no link: folding them is the normalizer's call.
    assert!(doc.records[2].related.is_empty() && doc.records[3].related.is_empty());
    assert_eq!(doc.records[8].status.as_deref(), Some("entered-in-error"));
    // A `urn:uuid:` maps to the entry's own type and id.
    let doc = parse_sample("bundle.xml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.records[1].related, ["MedicationRequest/rx1"]);
    // The excerpt is the resource's own text.
    assert!(doc.records[0].excerpt.starts_with("<MedicationRequest>"));
    let doc = parse_sample("searchset.json").unwrap_or_else(|e| panic!("{e}"));
    let excerpt: serde_json::Value =
        serde_json::from_str(&doc.records[0].excerpt).unwrap_or_default();
    assert_eq!(excerpt["id"], "rx1");
}

#[test]
fn hostile_and_odd_inputs_get_clear_errors() {
    let deep_xml = format!(
        "<Bundle xmlns=\"http://hl7.org/fhir\"><entry><resource><MedicationRequest>{}{}</MedicationRequest></resource></entry></Bundle>",
        "<note>".repeat(500),
        "</note>".repeat(500)
    );
    let deep_json_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_json_field = format!(
        "{{\"resourceType\":\"MedicationStatement\",\"note\":{}{}}}",
        "{\"a\":".repeat(50_000) + "1",
        "}".repeat(50_000)
    );
    // (what, bytes, is XML, expected error)
    let cases: &[(&str, &[u8], bool, Shape)] = &[
        ("empty JSON", b"", false, ("Empty", None)),
        ("whitespace XML", b"  \n", true, ("Empty", None)),
        ("a JSON array", b"[1, 2]", false, ("NotFhir", at(1, 1))),
        ("truncated JSON", b"{\"resourceType\": \"Bundle\"", false, ("Malformed", at(1, 25))),
        ("a wrong type at the top", b"{\"resourceType\": 5}", false, ("Malformed", at(1, 18))),
        ("deep XML", deep_xml.as_bytes(), true, ("TooDeep", at(1, 841))),
        ("deep JSON array", deep_json_array.as_bytes(), false, ("NotFhir", at(1, 1))),
        ("XML outside the FHIR namespace", b"<Bundle/>", true, ("NotFhir", at(1, 1))),
        ("malformed XML", b"<Bundle xmlns=\"http://hl7.org/fhir\">\n<entry></Bundle>", true, ("Malformed", at(2, 8))),
        ("an XML Patient", b"<Patient xmlns=\"http://hl7.org/fhir\"/>", true, ("NotFhir", at(1, 1))),
        ("an XML OperationOutcome", b"<OperationOutcome xmlns=\"http://hl7.org/fhir\"><issue><severity value=\"error\"/><code value=\"login\"/></issue></OperationOutcome>", true, ("OperationOutcome", None)),
    ];
    for (name, bytes, xml, want) in cases {
        let got = if *xml {
            parse_xml(bytes)
        } else {
            parse_json(bytes)
        };
        match got {
            Err(e) => assert_eq!(error_shape(&e), *want, "{name}: {e}"),
            Ok(doc) => panic!("{name}: read {} records", doc.records.len()),
        }
    }
    // Deep nesting in a skipped field is read without recursion.
    let doc = parse_json(deep_json_field.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.records.len(), 1);
    // A byte-order mark is accepted.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(sample("single-request.json"));
    assert_eq!(parse_json(&bom).map(|d| d.records.len()), Ok(1));
}

#[test]
fn a_bad_entry_is_an_unreadable_record_not_a_failure() {
    let doc = parse_json(
        br#"{"resourceType":"Bundle","entry":[
            {"resource":{"resourceType":"MedicationRequest","id":"mr-1","status":7}},
            {"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"incomplete","diagnostics":"page 2 failed"}]}},
            {"resource":{"resourceType":"MedicationRequest","medicationCodeableConcept":{"text":"aspirin"}}}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.records.len(), 1);
    let details: Vec<&str> = doc.problems.iter().map(|p| p.detail.as_str()).collect();
    assert_eq!(doc.problems.len(), 1, "{details:?}");
    assert!(details[0].contains("page 2 failed"), "{details:?}");
    assert_eq!(doc.unreadable.len(), 1);
    let bad = &doc.unreadable[0];
    assert_eq!(
        bad.source,
        Some(SourceRef {
            kind: "MedicationRequest".into(),
            id: Some("mr-1".into())
        })
    );
    assert_eq!(bad.entry, Some(0));
    assert_eq!(bad.at.map(|at| at.line), Some(2));
    assert!(
        bad.reason.contains("invalid type") && bad.reason.contains("at 2:"),
        "{}",
        bad.reason
    );
    assert!(bad.excerpt.contains(r#""status":7"#), "{}", bad.excerpt);
    // The OperationOutcome entry is left out, with its text.
    assert_eq!(doc.left_out.len(), 1);
    assert!(doc.left_out[0].reason.contains("page 2 failed"));
}

/// One row per record shape that cannot be read: the JSON of one entry,
/// and what the reason must mention. Each becomes an unreadable record
/// named by its type and id; the good entry beside it is still read.
const UNREADABLE_ENTRIES: &[(&str, &str, &str)] = &[
    (
        "a date of another JSON type",
        r#"{"resourceType":"MedicationRequest","id":"x","authoredOn":20240101,"medicationCodeableConcept":{"text":"warfarin"}}"#,
        "invalid type: integer",
    ),
    (
        "a duplicated key",
        r#"{"resourceType":"MedicationStatement","id":"x","status":"active","status":"stopped","medicationCodeableConcept":{"text":"warfarin"}}"#,
        "duplicate field",
    ),
    (
        "a code that is not a string",
        r#"{"resourceType":"MedicationDispense","id":"x","medicationCodeableConcept":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":12345678901}]}}"#,
        "invalid type",
    ),
    (
        "a coding that is a string",
        r#"{"resourceType":"MedicationRequest","id":"x","medicationCodeableConcept":{"coding":"0777-3105-02"}}"#,
        "invalid type",
    ),
    (
        "a resourceType given twice",
        r#"{"resourceType":"MedicationRequest","id":"x","resourceType":"MedicationStatement","medicationCodeableConcept":{"text":"warfarin"}}"#,
        "duplicate field",
    ),
];

#[test]
fn every_unreadable_record_shape_is_named_never_dropped() {
    for (rule, entry, reason) in UNREADABLE_ENTRIES {
        let text = format!(
            r#"{{"resourceType":"Bundle","type":"searchset","entry":[{{"resource":{entry}}},{{"resource":{{"resourceType":"MedicationRequest","id":"ok","medicationCodeableConcept":{{"text":"aspirin"}}}}}}]}}"#
        );
        for excerpts in [true, false] {
            let doc =
                super::parse_json_with(text.as_bytes(), crate::parse::ParseOptions { excerpts })
                    .unwrap_or_else(|e| panic!("{rule}: {e}"));
            assert_eq!(doc.records.len(), 1, "{rule}");
            assert_eq!(doc.unreadable.len(), 1, "{rule}");
            let bad = &doc.unreadable[0];
            assert_eq!(
                bad.source.as_ref().and_then(|s| s.id.as_deref()),
                Some("x"),
                "{rule}"
            );
            assert!(bad.reason.contains(reason), "{rule}: {}", bad.reason);
            assert_eq!(bad.excerpt, *entry, "{rule}");
        }
    }
}

#[test]
fn an_unreadable_xml_entry_is_named_like_a_json_one() {
    let doc = parse_xml(
        br#"<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/>
<entry><resource><MedicationRequest><id value="x"/><status value="active"/><status value="stopped"/></MedicationRequest></resource></entry>
<entry><resource><MedicationRequest><id value="ok"/><medicationCodeableConcept><text value="aspirin"/></medicationCodeableConcept></MedicationRequest></resource></entry>
</Bundle>"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.records.len(), 1);
    assert_eq!(doc.unreadable.len(), 1);
    let bad = &doc.unreadable[0];
    assert_eq!(
        bad.source.as_ref().map(|s| s.kind.as_str()),
        Some("MedicationRequest")
    );
    assert_eq!(bad.entry, Some(0));
    assert_eq!(bad.at.map(|at| at.line), Some(2));
    assert!(
        bad.excerpt.starts_with("<MedicationRequest>"),
        "{}",
        bad.excerpt
    );
}

#[test]
fn included_medications_no_record_uses_are_left_out() {
    for doc in [
        parse_json(
            br#"{"resourceType":"Bundle","type":"searchset","entry":[
            {"fullUrl":"http://h/Medication/used","resource":{"resourceType":"Medication","id":"used","code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0777-3105-02"}]}},"search":{"mode":"include"}},
            {"fullUrl":"http://h/Medication/spare","resource":{"resourceType":"Medication","id":"spare","code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0093-1048-01"}]}},"search":{"mode":"include"}},
            {"resource":{"resourceType":"MedicationRequest","id":"r","subject":{"reference":"Patient/p"},"medicationReference":{"reference":"Medication/used"}},"search":{"mode":"match"}}]}"#,
        ),
        parse_xml(
            br#"<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/>
<entry><fullUrl value="http://h/Medication/used"/><resource><Medication><id value="used"/><code><coding><system value="http://hl7.org/fhir/sid/ndc"/><code value="0777-3105-02"/></coding></code></Medication></resource><search><mode value="include"/></search></entry>
<entry><fullUrl value="http://h/Medication/spare"/><resource><Medication><id value="spare"/><code><coding><system value="http://hl7.org/fhir/sid/ndc"/><code value="0093-1048-01"/></coding></code></Medication></resource><search><mode value="include"/></search></entry>
<entry><resource><MedicationRequest><id value="r"/><medicationReference><reference value="Medication/used"/></medicationReference><subject><reference value="Patient/p"/></subject></MedicationRequest></resource><search><mode value="match"/></search></entry>
</Bundle>"#,
        ),
    ] {
        let doc = doc.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc.records.len(), 1, "only the request is a record");
        assert_eq!(doc.records[0].codes[0].value, "0777-3105-02");
        assert_eq!(doc.left_out.len(), 1);
        assert_eq!(doc.left_out[0].source.as_ref().and_then(|s| s.id.as_deref()), Some("spare"));
        assert!(doc.left_out[0].reason.contains("search.mode include"));
    }
}

#[test]
fn drug_data_without_a_patient_is_refused() {
    for (rule, text) in [
        (
            "a single Medication",
            r#"{"resourceType":"Medication","id":"m","code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0777-3105-02"}]}}"#,
        ),
        (
            "a single MedicationKnowledge",
            r#"{"resourceType":"MedicationKnowledge","id":"k","code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0777-3105-02"}]}}"#,
        ),
        (
            "a formulary Bundle",
            r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"MedicationKnowledge","id":"k1"}},{"resource":{"resourceType":"Medication","id":"m1","code":{"text":"x"}}},{"resource":{"resourceType":"Medication","id":"m2","code":{"text":"y"}}}]}"#,
        ),
    ] {
        let got = parse_json(text.as_bytes());
        match got {
            Err(ParseError::DrugData { found }) => {
                assert!(found.contains("Medication"), "{rule}: {found}");
            }
            other => panic!("{rule}: {other:?}"),
        }
    }
    // Two Medications of a Bundle that also names the patient's request:
    // the one no record uses is still read (its codes are not lost).
    let doc = parse_json(
        br#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"MedicationRequest","subject":{"reference":"Patient/p"},"medicationCodeableConcept":{"text":"aspirin"}}},{"resource":{"resourceType":"Medication","id":"m2","code":{"text":"y"}}}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.records.len(), 2);
}

#[test]
fn resources_that_are_not_medication_evidence_are_listed_as_left_out() {
    let doc = parse_json(
        br#"{"resourceType":"Bundle","type":"collection","entry":[
        {"resource":{"resourceType":"Patient","id":"p"}},
        {"resource":{"resourceType":"Observation","id":"o"}},
        {"resource":{"resourceType":"MedicationRequest","subject":{"reference":"Patient/p"},"medicationCodeableConcept":{"text":"aspirin"}}}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let left: Vec<(String, String)> = doc
        .left_out
        .iter()
        .map(|l| {
            let s = l.source.clone().unwrap_or(SourceRef {
                kind: String::new(),
                id: None,
            });
            (
                format!("{}/{}", s.kind, s.id.unwrap_or_default()),
                l.reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        left,
        vec![
            (
                "Patient/p".to_string(),
                "a Patient resource is not medication evidence".to_string()
            ),
            (
                "Observation/o".to_string(),
                "an Observation resource is not medication evidence".to_string()
            ),
        ]
    );
}

// ---- the public HL7 corpus ----

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/fhir")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// NDC codings found independently of the parser: every JSON object with a
/// `system` containing "ndc" and a `code` (or identifier `value`).
fn ndc_codes_in_json(value: &serde_json::Value, out: &mut BTreeSet<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(system) = map.get("system").and_then(|s| s.as_str()) {
                let code = map
                    .get("code")
                    .or_else(|| map.get("value"))
                    .and_then(|c| c.as_str());
                if let (true, Some(code)) = (system.to_lowercase().contains("ndc"), code) {
                    out.insert((system.to_string(), code.to_string()));
                }
            }
            map.values().for_each(|v| ndc_codes_in_json(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| ndc_codes_in_json(v, out)),
        _ => {}
    }
}

/// The same in XML: elements with a `system` child whose value contains "ndc".
fn ndc_codes_in_xml(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return out;
    };
    for node in doc.descendants().filter(|n| n.is_element()) {
        let child = |name: &str| {
            node.children()
                .find(|c| c.tag_name().name() == name)
                .and_then(|c| c.attribute("value"))
        };
        if let (Some(system), Some(code)) =
            (child("system"), child("code").or_else(|| child("value")))
            && system.to_lowercase().contains("ndc")
        {
            out.insert((system.to_string(), code.to_string()));
        }
    }
    out
}

fn parsed_codes(doc: &ParsedDocument) -> BTreeSet<(String, String)> {
    doc.records
        .iter()
        .flat_map(|r| r.codes.iter().chain(&r.ingredient_codes))
        .map(|c| (c.system_original.clone(), c.value.clone()))
        .collect()
}

/// The DSTU2 corpus files that are not medication documents at all
/// (ConceptMaps and Questionnaires about medication resources).
fn not_medication_documents(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.contains("status-map") || name.contains("questionnaire")
}

/// A corpus file refused as drug data must hold only drug resources
/// (Medication, MedicationKnowledge, Substance), alone or in a Bundle.
fn assert_drug_data_only(bytes: &[u8], path: &Path) {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let kinds: Vec<&str> = match value["resourceType"].as_str() {
        Some("Bundle") => value["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e["resource"]["resourceType"].as_str())
                    .collect()
            })
            .unwrap_or_default(),
        Some(kind) => vec![kind],
        None => Vec::new(),
    };
    assert!(
        !kinds.is_empty()
            && kinds
                .iter()
                .all(|k| matches!(*k, "Medication" | "MedicationKnowledge" | "Substance")),
        "{}: refused as drug data but holds {kinds:?}",
        path.display()
    );
}

#[test]
fn every_corpus_json_example_parses_and_keeps_every_ndc() {
    let mut read = 0;
    let mut drug_data = 0;
    for dir in ["r4/json", "stu3/json", "dstu2/json"] {
        for path in corpus(dir) {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let shown = path.display();
            if not_medication_documents(&path) {
                let got = parse_json(&bytes);
                assert!(
                    matches!(got, Err(ParseError::NotFhir { .. })),
                    "{shown}: {got:?}"
                );
                continue;
            }
            let doc = match parse_json(&bytes) {
                Err(ParseError::DrugData { .. }) => {
                    assert_drug_data_only(&bytes, &path);
                    drug_data += 1;
                    continue;
                }
                got => got.unwrap_or_else(|e| panic!("{shown}: {e}")),
            };
            let skipped: Vec<_> = doc
                .problems
                .iter()
                .filter(|p| p.kind == ProblemKind::Skipped)
                .collect();
            assert!(skipped.is_empty(), "{shown}: {skipped:?}");
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let mut want = BTreeSet::new();
            ndc_codes_in_json(&value, &mut want);
            let got = parsed_codes(&doc);
            let missing: Vec<_> = want.difference(&got).collect();
            assert!(
                missing.is_empty(),
                "{shown}: NDCs not in the records: {missing:?}"
            );
            read += 1;
        }
    }
    // The HL7 examples of Medication and MedicationKnowledge alone (70 of
    // them) are drug data, refused; every other example is read.
    assert!(
        read > 130 && drug_data >= 60 && read + drug_data > 200,
        "only {read} corpus files read, {drug_data} refused as drug data"
    );
}

#[test]
fn every_corpus_xml_example_parses_like_its_json_twin() {
    let mut compared = 0;
    for dir in ["r4", "stu3", "dstu2"] {
        for path in corpus(&format!("{dir}/xml")) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let shown = path.display();
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let twin = path.with_file_name(format!("../json/{stem}.json"));
            let doc = match parse_xml(text.as_bytes()) {
                Err(ParseError::DrugData { .. }) => {
                    // Its JSON twin is refused alike.
                    if dir != "dstu2" {
                        let json = std::fs::read(&twin).unwrap_or_default();
                        assert!(
                            matches!(parse_json(&json), Err(ParseError::DrugData { .. })),
                            "{shown}"
                        );
                        compared += 1;
                    }
                    continue;
                }
                got => got.unwrap_or_else(|e| panic!("{shown}: {e}")),
            };
            let got = parsed_codes(&doc);
            let missing: Vec<_> = ndc_codes_in_xml(&text)
                .into_iter()
                .filter(|c| !got.contains(c))
                .collect();
            assert!(
                missing.is_empty(),
                "{shown}: NDCs not in the records: {missing:?}"
            );
            // R4 and STU3 name their XML and JSON twins alike.
            if dir != "dstu2" {
                let json =
                    std::fs::read(&twin).unwrap_or_else(|e| panic!("{}: {e}", twin.display()));
                let json_doc =
                    parse_json(&json).unwrap_or_else(|e| panic!("{}: {e}", twin.display()));
                assert_eq!(
                    got,
                    parsed_codes(&json_doc),
                    "{shown}: XML and JSON codes differ"
                );
                assert_eq!(
                    doc.records.len(),
                    json_doc.records.len(),
                    "{shown}: record counts differ"
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 150, "only {compared} XML/JSON pairs compared");
}

// ---- properties ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_json(&bytes);
        let _ = parse_xml(&bytes);
    }

    #[test]
    fn truncated_fixtures_never_panic(index in 0usize..6, cut in 0usize..4096) {
        let names = ["demo.json", "bundle.xml", "r5-codeable-reference.json", "dstu2-medication-order.json", "ref-urn-uuid.json", "single-request.json"];
        let bytes = sample(names[index]);
        let cut = cut.min(bytes.len());
        let _ = parse_json(&bytes[..cut]);
        let _ = parse_xml(&bytes[..cut]);
    }

    #[test]
    fn json_strings_in_any_field_never_panic(field in "[a-zA-Z]{1,20}", value in ".{0,40}") {
        let doc = serde_json::json!({"resourceType": "MedicationRequest", field: value, "medicationReference": {"reference": value}});
        let _ = parse_json(doc.to_string().as_bytes());
    }
}

// ---- large documents (also for the equivalence tests below) ----

/// A searchset of `n` MedicationRequests shaped like an EHR's (narrative,
/// contained Medication, dosage, identifiers), for throughput checks.
pub(super) fn big_searchset(n: usize) -> Vec<u8> {
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        entries.push(format!(
            r##"{{"fullUrl":"https://ehr.example.org/fhir/MedicationRequest/rx{i}","resource":{{"resourceType":"MedicationRequest","id":"rx{i}","meta":{{"versionId":"3","lastUpdated":"2024-05-01T10:00:00Z","profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest"]}},"text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Lisinopril 10 MG Oral Tablet, take 1 tablet daily</p></div>"}},"contained":[{{"resourceType":"Medication","id":"med{i}","code":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"0006-0106-54","display":"Prinivil 10 MG Oral Tablet"}},{{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"314076","display":"lisinopril 10 MG Oral Tablet"}}],"text":"Prinivil 10 mg tablet"}},"form":{{"coding":[{{"system":"http://snomed.info/sct","code":"385055001","display":"Tablet"}}]}}}}],"identifier":[{{"use":"official","system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.798268","value":"{i}"}}],"status":"active","intent":"order","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/medicationrequest-category","code":"community","display":"Community"}}],"text":"Community"}}],"medicationReference":{{"reference":"#med{i}","display":"Prinivil 10 mg tablet"}},"subject":{{"reference":"Patient/demo-fhir-1","display":"Demo, Patient"}},"encounter":{{"reference":"Encounter/e{i}"}},"authoredOn":"2024-04-{d:02}T09:30:00Z","requester":{{"reference":"Practitioner/dr1","display":"Dr. Demo Prescriber"}},"reasonCode":[{{"coding":[{{"system":"http://snomed.info/sct","code":"38341003","display":"Hypertension"}}]}}],"dosageInstruction":[{{"sequence":1,"text":"Take 1 tablet by mouth daily","patientInstruction":"Take in the morning","timing":{{"repeat":{{"boundsPeriod":{{"start":"2024-04-01"}},"frequency":1,"period":1,"periodUnit":"d"}},"code":{{"text":"daily"}}}},"asNeededBoolean":false,"route":{{"coding":[{{"system":"http://snomed.info/sct","code":"26643006","display":"Oral route"}}],"text":"oral"}},"doseAndRate":[{{"type":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/dose-rate-type","code":"ordered","display":"Ordered"}}]}},"doseQuantity":{{"value":1,"unit":"tablet","system":"http://unitsofmeasure.org","code":"{{tbl}}"}}}}]}}],"dispenseRequest":{{"validityPeriod":{{"start":"2024-04-01","end":"2025-04-01"}},"numberOfRepeatsAllowed":3,"quantity":{{"value":30,"unit":"tablet"}},"expectedSupplyDuration":{{"value":30,"unit":"days","system":"http://unitsofmeasure.org","code":"d"}}}},"substitution":{{"allowedBoolean":true}}}},"search":{{"mode":"match"}}}}"##,
            d = i % 28 + 1
        ));
    }
    format!(
        r#"{{"resourceType":"Bundle","id":"big","type":"searchset","total":{n},"link":[{{"relation":"self","url":"https://ehr.example.org/fhir/MedicationRequest?patient=demo-fhir-1"}}],"entry":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes()
}

/// A searchset of `n` copies of the demo's Lipitor request.
fn lean_searchset(n: usize) -> Vec<u8> {
    let demo: serde_json::Value = serde_json::from_slice(&sample("demo.json")).unwrap_or_default();
    let entry = demo["entry"][1].to_string();
    let entries = vec![entry; n].join(",");
    format!(r#"{{"resourceType":"Bundle","type":"searchset","entry":[{entries}]}}"#).into_bytes()
}

#[test]
fn the_coding_system_cache_builds_the_same_codes_as_code_new() {
    let doc = parse_sample("demo.json").unwrap_or_else(|e| panic!("{e}"));
    let mut seen = 0;
    for code in doc
        .records
        .iter()
        .flat_map(|r| r.codes.iter().chain(&r.ingredient_codes))
    {
        let fresh =
            crate::domain::Code::new(&code.system_original, &code.value, code.display.as_deref());
        assert_eq!(code, &fresh);
        seen += 1;
    }
    assert!(seen >= 10, "{seen}");
    // Padding and blank displays are handled as Code::new handles them.
    let odd = br#"{"resourceType":"Bundle","entry":[
        {"resource":{"resourceType":"MedicationRequest","medicationCodeableConcept":{"coding":[{"system":" NDC ","code":" 1 ","display":" "}]}}},
        {"resource":{"resourceType":"MedicationRequest","medicationCodeableConcept":{"coding":[{"system":" NDC ","code":" 2 ","display":" x "}]}}}]}"#;
    let doc = parse_json(odd).unwrap_or_else(|e| panic!("{e}"));
    let want = [
        crate::domain::Code::new(" NDC ", " 1 ", Some(" ")),
        crate::domain::Code::new(" NDC ", " 2 ", Some(" x ")),
    ];
    let got: Vec<_> = doc
        .records
        .iter()
        .flat_map(|r| r.codes.iter().chain(&r.ingredient_codes).cloned())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn stu3_requester_agent_and_dstu2_order_fields_are_read() {
    let read = |path: &str| {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/corpus/fhir")
                .join(path),
        )
        .unwrap_or_default();
        parse_json(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let doc = read("stu3/json/medicationrequestexample1.json");
    assert_eq!(doc.records[0].prescriber.as_deref(), Some("Patrick Pump"));
    let doc = read("dstu2/json/medicationorderexample2.json");
    assert_eq!(
        doc.records[0].prescriber.as_deref(),
        Some("Patricia Primary")
    );
    assert_eq!(doc.records[0].prescribed.as_deref(), Some("2015-03-01"));
    assert_eq!(doc.patient_ref.as_deref(), Some("Patient/f001"));
}

// ---- excerpts: false (one pass) against excerpts: true (two passes) ----

/// `parse_json_with(excerpts: false)` must equal `excerpts: true` with the
/// excerpts blanked, errors included.
fn assert_same_without_excerpts(bytes: &[u8], shown: &str) {
    let with = parse_json_with(bytes, ParseOptions { excerpts: true }).map(|mut doc| {
        for rec in &mut doc.records {
            rec.excerpt.clear();
        }
        doc
    });
    let without = parse_json_with(bytes, ParseOptions { excerpts: false });
    assert_eq!(without, with, "{shown}");
}

#[test]
fn without_excerpts_every_fixture_and_corpus_file_reads_the_same() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/fhir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&samples)
        .unwrap_or_else(|e| panic!("{}: {e}", samples.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    for dir in ["r4/json", "stu3/json", "dstu2/json"] {
        files.extend(corpus(dir));
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    assert!(files.len() > 200, "only {} files", files.len());
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_default();
        assert_same_without_excerpts(&bytes, &path.display().to_string());
    }
}

#[test]
fn without_excerpts_odd_bundles_read_the_same() {
    let cases: &[(&str, &[u8])] = &[
        // A bad entry is a problem with a position, in two passes.
        (
            "bad entry",
            br#"{"resourceType":"Bundle","entry":[
            {"resource":{"resourceType":"MedicationRequest","status":7}},
            {"resource":{"resourceType":"MedicationRequest","medicationCodeableConcept":{"text":"aspirin"}}}]}"#,
        ),
        // A reference to an entry further down, by urn:uuid and by Type/id.
        (
            "forward references",
            br#"{"resourceType":"Bundle","entry":[
            {"resource":{"resourceType":"MedicationRequest","id":"a","medicationReference":{"reference":"urn:uuid:1"},"priorPrescription":{"reference":"urn:uuid:2"}}},
            {"resource":{"resourceType":"MedicationDispense","medicationReference":{"reference":"Medication/m2"}}},
            {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Medication","code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0006-0106-54"}]}}},
            {"fullUrl":"urn:uuid:2","resource":{"resourceType":"MedicationRequest","id":"b","medicationCodeableConcept":{"text":"x"}}},
            {"resource":{"resourceType":"Medication","id":"m2","code":{"text":"y"}}},
            {"resource":{"resourceType":"Patient","id":"p"}},
            {"resource":null},{"request":{"method":"GET"}}]}"#,
        ),
        // A batch-response holding a searchset: read in two passes.
        (
            "nested bundle",
            br#"{"resourceType":"Bundle","type":"batch-response","entry":[
            {"resource":{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MedicationRequest","medicationCodeableConcept":{"text":"z"}}}]}}]}"#,
        ),
        // Invalid UTF-8 in a field the typed view skips.
        (
            "invalid utf-8",
            b"{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"MedicationRequest\",\"note\":\"\xff\",\"medicationCodeableConcept\":{\"text\":\"a\"}}}]}",
        ),
        (
            "invalid utf-8 outside entries",
            b"{\"resourceType\":\"Bundle\",\"id\":\"\xff\",\"entry\":[{\"resource\":{\"resourceType\":\"MedicationRequest\",\"medicationCodeableConcept\":{\"text\":\"a\"}}}]}",
        ),
        (
            "duplicate entry",
            br#"{"resourceType":"Bundle","entry":[],"entry":[]}"#,
        ),
        (
            "resourceType last",
            br#"{"entry":[{"resource":{"resourceType":"MedicationStatement","medicationCodeableConcept":{"text":"a"}}}],"resourceType":"Bundle"}"#,
        ),
        (
            "entries in a non-Bundle",
            br#"{"resourceType":"MedicationRequest","entry":[{"resource":{"resourceType":"MedicationStatement"}}],"medicationCodeableConcept":{"text":"a"}}"#,
        ),
        ("entry as an array", br#"{"resourceType":"Bundle","entry":[["urn:x",{"resourceType":"MedicationRequest"}]]}"#),
        ("trailing garbage", br#"{"resourceType":"Bundle","entry":[]} x"#),
        ("empty", b"  "),
        ("array", b"[1]"),
        ("bom", b"\xEF\xBB\xBF{\"resourceType\":\"Bundle\"}"),
    ];
    for (name, bytes) in cases {
        assert_same_without_excerpts(bytes, name);
    }
    assert_same_without_excerpts(&big_searchset(50), "big searchset");
    assert_same_without_excerpts(&lean_searchset(50), "lean searchset");
}

#[test]
fn plain_bundles_are_read_in_one_pass() {
    for name in [
        "searchset.json",
        "collection.json",
        "ref-urn-uuid.json",
        "demo.json",
    ] {
        assert!(json::one_pass(&sample(name)).is_some(), "{name}");
    }
    assert!(json::one_pass(&big_searchset(10)).is_some());
}

proptest! {
    #[test]
    fn without_excerpts_truncated_fixtures_read_the_same(index in 0usize..6, cut in 0usize..4096) {
        let names = ["searchset.json", "demo.json", "ref-urn-uuid.json", "collection.json", "contained-medication.json", "transaction-response.json"];
        let bytes = sample(names[index]);
        assert_same_without_excerpts(&bytes[..cut.min(bytes.len())], names[index]);
    }
}

#[test]
fn a_bundle_naming_several_patients_says_so_once_per_patient() {
    let doc = parse_json(&sample("several-patients.json")).unwrap_or_else(|e| panic!("{e}"));
    let several: Vec<&str> = doc
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::SeveralPatients)
        .map(|p| p.detail.as_str())
        .collect();
    assert_eq!(several.len(), 1, "{several:?}");
    assert!(
        several[0].contains("2 patients"),
        "relative and absolute references to one patient count once: {several:?}"
    );
    let one = parse_json(&sample("demo.json")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        one.problems
            .iter()
            .all(|p| p.kind != ProblemKind::SeveralPatients)
    );
}

// ---- claims (ExplanationOfBenefit) ----

/// What one claim line must read as.
struct Line {
    id: &'static str,
    ndc: &'static str,
    fill: Option<&'static str>,
    days_supply: Option<&'static str>,
    quantity: Option<&'static str>,
    dispenser: Option<&'static str>,
    prescriber: Option<&'static str>,
    status: Option<&'static str>,
}

/// One row per claim fixture: every line with a drug, then the reasons
/// for what yields no record.
const CLAIMS: &[(&str, &[Line], &[&str])] = &[
    (
        "eob-carin-searchset.json",
        &[
            Line {
                id: "eob-1#1",
                ndc: "00071015523",
                fill: Some("2026-10-01"),
                days_supply: Some("30"),
                quantity: Some("30 tablet"),
                dispenser: Some("Main Street Pharmacy"),
                prescriber: Some("Dr. Ada Example"),
                status: Some("active"),
            },
            Line {
                id: "eob-2#1",
                ndc: "00000000000",
                fill: Some("2026-08-15"),
                days_supply: Some("90"),
                quantity: Some("90 tablet"),
                dispenser: Some("Main Street Pharmacy"),
                prescriber: Some("Dr. Ada Example"),
                status: Some("active"),
            },
        ],
        &[
            "ExplanationOfBenefit/eob-3 line 1: a professional claim line without a drug code (HCPCS 99213)",
        ],
    ),
    (
        "eob-single.json",
        &[Line {
            id: "eob-single#1",
            ndc: "00087606005",
            // No servicedDate on the line: the billable period's start.
            fill: Some("2026-11-02"),
            days_supply: Some("30"),
            quantity: Some("60 tablet"),
            dispenser: Some("Corner Drug"),
            prescriber: Some("Dr. Ada Example"),
            status: Some("active"),
        }],
        &[],
    ),
    (
        "eob-professional-detail.json",
        &[
            Line {
                id: "eob-prof#2",
                ndc: "00002771559",
                fill: Some("2026-09-20"),
                days_supply: None,
                quantity: None,
                dispenser: Some("Example Clinic"),
                prescriber: None,
                status: Some("active"),
            },
            Line {
                id: "eob-prof#3",
                ndc: "00054001725",
                fill: Some("2026-09-20"),
                days_supply: None,
                quantity: None,
                dispenser: Some("Example Clinic"),
                prescriber: None,
                status: Some("active"),
            },
        ],
        &[
            "ExplanationOfBenefit/eob-prof line 1: a professional claim line without a drug code (CPT 96372)",
        ],
    ),
    (
        "eob-bb2-stu3-pde.json",
        &[Line {
            id: "pde-8831#1",
            ndc: "00777310502",
            fill: Some("2026-07-01"),
            days_supply: Some("30"),
            quantity: Some("30"),
            // The pharmacy and the prescriber by NPI; `organization` is the plan.
            dispenser: Some("NPI 1234567893"),
            prescriber: Some("NPI 1922000000"),
            status: Some("active"),
        }],
        &[],
    ),
    (
        "eob-bb2-stu3-pde.xml",
        &[Line {
            id: "pde-8831#1",
            ndc: "00777310502",
            fill: Some("2026-07-01"),
            days_supply: Some("30"),
            quantity: Some("30"),
            // The pharmacy and the prescriber by NPI; `organization` is the plan.
            dispenser: Some("NPI 1234567893"),
            prescriber: Some("NPI 1922000000"),
            status: Some("active"),
        }],
        &[],
    ),
    (
        "eob-dstu2.json",
        &[Line {
            id: "eob-dstu2#1",
            ndc: "00006010654",
            fill: Some("2026-06-03"),
            days_supply: None,
            quantity: Some("90"),
            dispenser: Some("Elm Pharmacy"),
            prescriber: None,
            status: None,
        }],
        &[],
    ),
];

#[test]
fn claim_lines_read_their_ndc_fill_supply_and_pharmacy() {
    for (file, lines, left_out) in CLAIMS {
        let doc = parse_sample(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.records.len(), lines.len(), "{file}: records");
        for (got, want) in doc.records.iter().zip(lines.iter()) {
            let shown = format!("{file} {}", want.id);
            assert_eq!(got.evidence, crate::parse::Evidence::Claim, "{shown}");
            assert_eq!(
                got.source.as_ref().and_then(|s| s.id.as_deref()),
                Some(want.id),
                "{shown}: source"
            );
            let ndcs: Vec<&str> = got
                .codes
                .iter()
                .filter(|c| c.system == CodeSystem::Ndc)
                .map(|c| c.value.as_str())
                .collect();
            assert_eq!(ndcs, [want.ndc], "{shown}: NDC");
            assert_eq!(got.prescribed.as_deref(), want.fill, "{shown}: fill date");
            assert_eq!(
                got.days_supply.as_deref(),
                want.days_supply,
                "{shown}: days"
            );
            assert_eq!(got.quantity.as_deref(), want.quantity, "{shown}: quantity");
            assert_eq!(
                got.dispenser.as_deref(),
                want.dispenser,
                "{shown}: pharmacy"
            );
            assert_eq!(
                got.prescriber.as_deref(),
                want.prescriber,
                "{shown}: prescriber"
            );
            assert_eq!(got.status.as_deref(), want.status, "{shown}: status");
        }
        let reasons: Vec<&str> = doc.left_out.iter().map(|l| l.reason.as_str()).collect();
        assert_eq!(reasons, *left_out, "{file}: left out");
    }
}

#[test]
fn a_claim_links_the_prescription_it_fills() {
    let doc = parse_sample("eob-single.json").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.records[0].related, ["MedicationRequest/rx-9"]);
}

#[test]
fn claims_in_xml_read_like_their_json_twin() {
    for stem in ["eob-carin-searchset", "eob-professional-detail"] {
        let json = parse_sample(&format!("{stem}.json")).unwrap_or_else(|e| panic!("{e}"));
        let xml = parse_sample(&format!("{stem}.xml")).unwrap_or_else(|e| panic!("{e}"));
        let blank = |doc: &ParsedDocument| {
            let mut records = doc.records.clone();
            records.iter_mut().for_each(|r| r.excerpt.clear());
            records
        };
        assert_eq!(blank(&xml), blank(&json), "{stem}");
        assert_eq!(xml.left_out, json.left_out, "{stem}");
        assert_eq!(xml.patient_ref, json.patient_ref, "{stem}");
    }
}

#[test]
fn odd_claims_are_left_out_with_a_reason_never_a_failure() {
    let rows: &[(&str, &str)] = &[
        (
            r#"{"resourceType":"ExplanationOfBenefit","id":"e1","type":{"coding":[{"code":"institutional"}]}}"#,
            "ExplanationOfBenefit/e1: an institutional claim without lines",
        ),
        (
            r#"{"resourceType":"ExplanationOfBenefit","item":[{"productOrService":{"text":"office visit"}}]}"#,
            "ExplanationOfBenefit (without id) line 1: a claim line without a drug code (no code)",
        ),
        (
            r#"{"resourceType":"ExplanationOfBenefit","id":"e3","item":[{"sequence":4,"revenue":{"coding":[{"code":"0450"}]},"productOrService":{"coding":[{"system":"https://www.nubc.org/CodeSystem/RevenueCodes","code":"0450"}]}}]}"#,
            "ExplanationOfBenefit/e3 line 4: a claim line without a drug code (revenue code 0450)",
        ),
    ];
    for (json, reason) in rows {
        let doc = parse_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert!(doc.records.is_empty(), "{json}");
        let reasons: Vec<&str> = doc.left_out.iter().map(|l| l.reason.as_str()).collect();
        assert_eq!(reasons, [*reason], "{json}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn truncated_claims_never_panic(index in 0usize..4, cut in 0usize..6000) {
        let names = ["eob-carin-searchset.json", "eob-carin-searchset.xml", "eob-professional-detail.json", "eob-bb2-stu3-pde.json"];
        let bytes = sample(names[index]);
        let cut = cut.min(bytes.len());
        let _ = parse_json(&bytes[..cut]);
        let _ = parse_xml(&bytes[..cut]);
    }
}

#[test]
fn an_entry_without_resource_type_is_unreadable_on_both_paths() {
    let bytes = br#"{"resourceType":"Bundle","type":"collection","entry":[
{"resource":{"resourceType":"MedicationRequest","id":"a","status":"active","subject":{"reference":"Patient/p"},"medicationCodeableConcept":{"text":"aspirin"}}},
{"resource":{"id":"x","subject":{"reference":"Patient/p"}}}
]}"#;
    for excerpts in [true, false] {
        let doc = parse_json_with(bytes, ParseOptions { excerpts }).expect("reads");
        assert_eq!(doc.records.len(), 1, "excerpts {excerpts}");
        assert_eq!(doc.unreadable.len(), 1, "excerpts {excerpts}");
        let bad = &doc.unreadable[0];
        assert_eq!(bad.entry, Some(1));
        assert!(bad.reason.contains("no resourceType"), "{}", bad.reason);
        assert!(bad.excerpt.contains("\"x\""), "{}", bad.excerpt);
        assert!(doc.left_out.is_empty(), "{:?}", doc.left_out);
    }
}

/// The place of the first `n` occurrences of `needle` in `text`, as
/// `Position::of_offset` reads it.
fn places_of(text: &str, needle: &str, n: usize) -> Vec<Position> {
    text.match_indices(needle)
        .take(n)
        .map(|(i, _)| Position::of_offset(text.as_bytes(), i))
        .collect()
}

#[test]
fn thousands_of_unreadable_entries_are_capped_and_placed_in_document_order() {
    let cap = crate::parse::MAX_UNREADABLE_RECORDS;
    // (format, document, bad entries, where each bad resource starts)
    let json_bad = 20_000;
    let mut json =
        String::from("{\"resourceType\":\"Bundle\",\"entry\":[\n{\"fullUrl\":\"urn:no-resource\"}");
    for i in 0..json_bad {
        json.push_str(&format!(
            ",\n{{\"fullUrl\":\"urn:é{i}\",\"resource\":{{\"resourceType\":\"MedicationRequest\",\"id\":\"b{i}\",\"authoredOn\":20240101}}}}"
        ));
    }
    json.push_str("]}");
    let xml_bad = 2_000;
    let mut xml = String::from(
        "<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"searchset\"/>\n<entry><fullUrl value=\"urn:no-resource\"/></entry>",
    );
    for i in 0..xml_bad {
        xml.push_str(&format!(
            "\n<entry><fullUrl value=\"urn:é{i}\"/><resource><MedicationRequest><id value=\"b{i}\"/><status value=\"active\"/><status value=\"stopped\"/></MedicationRequest></resource></entry>"
        ));
    }
    xml.push_str("</Bundle>");
    let rows = [
        (
            "json",
            &json,
            json_bad,
            "{\"resourceType\":\"MedicationRequest\"",
        ),
        ("xml", &xml, xml_bad, "<MedicationRequest>"),
    ];
    for (format, text, bad, starts) in rows {
        let doc = if format == "json" {
            parse_json(text.as_bytes())
        } else {
            parse_xml(text.as_bytes())
        }
        .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(text.matches(starts).count(), bad, "{format}");
        let places = places_of(text, starts, cap + 1);
        assert_eq!(
            doc.unreadable.len(),
            cap + 1,
            "{format}: the cap and one summary"
        );
        for (k, record) in doc.unreadable.iter().enumerate() {
            // Entry 0 has no resource, and is counted all the same.
            assert_eq!(record.entry, Some(k + 1), "{format} #{k}");
            assert_eq!(record.at, Some(places[k]), "{format} #{k}");
            assert_eq!(
                record.source.as_ref().and_then(|s| s.id.clone()),
                Some(format!("b{k}")),
                "{format} #{k}"
            );
        }
        let summary = &doc.unreadable[cap];
        assert!(
            summary
                .reason
                .starts_with(&format!("{} more entries could not be read", bad - cap)),
            "{format}: {}",
            summary.reason
        );
    }
}

#[test]
fn a_bundle_nested_too_deep_is_an_unreadable_record_never_none_shared() {
    let request = r#"{"resourceType":"MedicationRequest","id":"deep","subject":{"reference":"Patient/p"},"medicationCodeableConcept":{"text":"warfarin"}}"#;
    let mut json = request.to_string();
    for level in (0..5).rev() {
        json = format!(
            "{{\"resourceType\":\"Bundle\",\"id\":\"b{level}\",\"type\":\"batch-response\",\"entry\":[\n{{\"resource\":{json}}}]}}"
        );
    }
    let xml_request = r#"<MedicationRequest><id value="deep"/><subject><reference value="Patient/p"/></subject><medicationCodeableConcept><text value="warfarin"/></medicationCodeableConcept></MedicationRequest>"#;
    let mut xml = xml_request.to_string();
    for level in (0..5).rev() {
        let ns = if level == 0 {
            " xmlns=\"http://hl7.org/fhir\""
        } else {
            ""
        };
        xml = format!(
            "<Bundle{ns}><id value=\"b{level}\"/><type value=\"batch-response\"/>\n<entry><resource>{xml}</resource></entry></Bundle>"
        );
    }
    for (format, doc) in [
        ("json", parse_json(json.as_bytes())),
        ("xml", parse_xml(xml.as_bytes())),
    ] {
        let doc = doc.unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(doc.records.len(), 0, "{format}");
        assert_eq!(doc.unreadable.len(), 1, "{format}");
        let bad = &doc.unreadable[0];
        assert_eq!(
            bad.source,
            Some(SourceRef {
                kind: "Bundle".into(),
                id: Some("b4".into())
            }),
            "{format}"
        );
        // b1, b2, b3 and b4 are the entries 0..=3.
        assert_eq!(bad.entry, Some(3), "{format}");
        assert_eq!(bad.at.map(|at| at.line), Some(5), "{format}");
        assert!(
            bad.reason.contains("nested deeper than 4 levels"),
            "{format}: {}",
            bad.reason
        );
        assert!(bad.excerpt.contains("deep"), "{format}: {}", bad.excerpt);
        let regimen = crate::normalize::normalize(
            &doc,
            &crate::dict::MemoryDictionary::new(&[], &[]),
            &crate::normalize::CodeMappings::new(),
            &crate::normalize::Options::default(),
        );
        let kinds: Vec<_> = regimen.flags.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            vec![crate::domain::ExceptionKind::UnreadableRecord],
            "{format}: never none_shared"
        );
    }
}

#[test]
fn a_document_with_an_unreadable_entry_or_a_patient_is_never_drug_data() {
    let med = r#"{"fullUrl":"urn:uuid:m1","resource":{"resourceType":"Medication","id":"m1","code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0777-3105-02"}]}},"search":{"mode":"include"}}"#;
    let xml_med = r#"<entry><fullUrl value="urn:uuid:m1"/><resource><Medication><id value="m1"/><code><coding><system value="http://hl7.org/fhir/sid/ndc"/><code value="0777-3105-02"/></coding></code></Medication></resource><search><mode value="include"/></search></entry>"#;
    // (rule, document, unreadable entries)
    let rows: Vec<(&str, Result<ParsedDocument, ParseError>, usize)> = vec![
        (
            "json: an unreadable request beside an included Medication",
            parse_json(
                format!(
                    r#"{{"resourceType":"Bundle","type":"searchset","entry":[{{"resource":{{"resourceType":"MedicationRequest","id":"r","subject":{{"reference":"Patient/p"}},"authoredOn":20240101,"medicationReference":{{"reference":"urn:uuid:m1"}}}}}},{med}]}}"#
                )
                .as_bytes(),
            ),
            1,
        ),
        (
            "xml: an unreadable request beside an included Medication",
            parse_xml(
                format!(
                    r#"<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><entry><resource><MedicationRequest><id value="r"/><status value="active"/><status value="stopped"/><medicationReference><reference value="urn:uuid:m1"/></medicationReference><subject><reference value="Patient/p"/></subject></MedicationRequest></resource></entry>{xml_med}</Bundle>"#
                )
                .as_bytes(),
            ),
            1,
        ),
        (
            "json: a Patient beside a Medication",
            parse_json(
                format!(
                    r#"{{"resourceType":"Bundle","type":"searchset","entry":[{{"resource":{{"resourceType":"Patient","id":"p"}}}},{med}]}}"#
                )
                .as_bytes(),
            ),
            0,
        ),
        (
            "xml: a Patient beside a Medication",
            parse_xml(
                format!(
                    r#"<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><entry><resource><Patient><id value="p"/></Patient></resource></entry>{xml_med}</Bundle>"#
                )
                .as_bytes(),
            ),
            0,
        ),
    ];
    for (rule, doc, unreadable) in rows {
        let doc = doc.unwrap_or_else(|e| panic!("{rule}: refused: {e}"));
        assert_eq!(doc.unreadable.len(), unreadable, "{rule}");
        assert!(doc.records.is_empty(), "{rule}: {:?}", doc.records);
    }
}

#[test]
fn other_resources_whose_fields_do_not_fit_are_left_out_not_unreadable() {
    let request = r#"{"resource":{"resourceType":"MedicationRequest","id":"ok","subject":{"reference":"Patient/p"},"medicationCodeableConcept":{"text":"aspirin"}}}"#;
    // (type, id, entry JSON, entry XML)
    let rows = [
        (
            "Questionnaire",
            "q",
            r#"{"resource":{"resourceType":"Questionnaire","id":"q","code":[{"system":"http://loinc.org","code":"74465-6"}]}}"#,
            r#"<entry><resource><Questionnaire><id value="q"/><code><code value="74465-6"/></code><code><code value="1"/></code></Questionnaire></resource></entry>"#,
        ),
        (
            "Account",
            "a",
            r#"{"resource":{"resourceType":"Account","id":"a","subject":[{"reference":"Patient/p"}]}}"#,
            r#"<entry><resource><Account><id value="a"/><subject><reference value="Patient/p"/></subject><subject><reference value="Patient/q"/></subject></Account></resource></entry>"#,
        ),
        (
            "Composition",
            "c",
            r#"{"resource":{"resourceType":"Composition","id":"c","subject":[{"reference":"Patient/p"}]}}"#,
            r#"<entry><resource><Composition><id value="c"/><subject><reference value="Patient/p"/></subject><subject><reference value="Group/g"/></subject></Composition></resource></entry>"#,
        ),
    ];
    let xml_request = r#"<entry><resource><MedicationRequest><id value="ok"/><subject><reference value="Patient/p"/></subject><medicationCodeableConcept><text value="aspirin"/></medicationCodeableConcept></MedicationRequest></resource></entry>"#;
    for (kind, id, json_entry, xml_entry) in rows {
        let json = format!(
            r#"{{"resourceType":"Bundle","type":"searchset","entry":[{json_entry},{request}]}}"#
        );
        let xml = format!(
            r#"<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/>{xml_entry}{xml_request}</Bundle>"#
        );
        let docs = [
            ("json with excerpts", parse_json(json.as_bytes())),
            (
                "json without excerpts",
                super::parse_json_with(json.as_bytes(), ParseOptions { excerpts: false }),
            ),
            ("xml", parse_xml(xml.as_bytes())),
        ];
        for (how, doc) in docs {
            let doc = doc.unwrap_or_else(|e| panic!("{kind} {how}: {e}"));
            assert!(
                doc.unreadable.is_empty(),
                "{kind} {how}: {:?}",
                doc.unreadable
            );
            assert_eq!(doc.records.len(), 1, "{kind} {how}");
            let left: Vec<(Option<SourceRef>, &str)> = doc
                .left_out
                .iter()
                .map(|l| (l.source.clone(), l.reason.as_str()))
                .collect();
            let reason = format!(
                "{} {kind} resource is not medication evidence",
                if kind == "Account" { "an" } else { "a" }
            );
            assert_eq!(
                left,
                vec![(
                    Some(SourceRef {
                        kind: kind.into(),
                        id: Some(id.into())
                    }),
                    reason.as_str()
                )],
                "{kind} {how}"
            );
        }
    }
}
