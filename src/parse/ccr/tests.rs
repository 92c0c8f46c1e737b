//! The CCR reader's rules, one row per fixture or edge case.

use super::*;
use crate::domain::CodeSystem;
use crate::parse::{MedRecord, Strength};
use proptest::prelude::*;

fn read(relative: &str) -> Vec<u8> {
    let path = format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

/// The variant of an error, for table rows.
fn variant(error: &ParseError) -> &'static str {
    match error {
        ParseError::Empty => "Empty",
        ParseError::Binary { .. } => "Binary",
        ParseError::UnknownFormat { .. } => "UnknownFormat",
        ParseError::Malformed { .. } => "Malformed",
        ParseError::Dtd { .. } => "Dtd",
        ParseError::NotCcr { .. } => "NotCcr",
        ParseError::NotCcda { .. } => "NotCcda",
        ParseError::NoStructuredBody { .. } => "NoStructuredBody",
        ParseError::NotFhir { .. } => "NotFhir",
        ParseError::OperationOutcome { .. } => "OperationOutcome",
        ParseError::Encoding { .. } => "Encoding",
        ParseError::TooDeep { .. } => "TooDeep",
        ParseError::DrugData { .. } => "DrugData",
    }
}

/// The line an error points at, when it has a position.
fn line(error: &ParseError) -> Option<usize> {
    match error {
        ParseError::Malformed { at, .. }
        | ParseError::Dtd { at }
        | ParseError::NotCcr { at, .. }
        | ParseError::Encoding { at, .. }
        | ParseError::TooDeep { at, .. } => Some(at.line),
        _ => None,
    }
}

/// A record's drug name: ProductName/Text, or the brand when that is all there is.
fn drug(record: &MedRecord) -> &str {
    record
        .name
        .as_deref()
        .or(record.brand.as_deref())
        .unwrap_or("")
}

fn codes(record: &MedRecord) -> Vec<(CodeSystem, &str)> {
    record
        .codes
        .iter()
        .map(|c| (c.system.clone(), c.value.as_str()))
        .collect()
}

use CodeSystem::{MediSpan, Multum, Ndc, RxNorm};

/// What a readable document must yield: per record, the drug name and its codes.
struct Readable {
    file: &'static str,
    patient: Option<&'static str>,
    records: &'static [(&'static str, &'static [(CodeSystem, &'static str)])],
}

const LISINOPRIL: (&str, &[(CodeSystem, &str)]) =
    ("Lisinopril 10 MG Oral Tablet", &[(Ndc, "00006010654")]);

const READABLE: &[Readable] = &[
    Readable {
        file: "samples/ccr/default-namespace.xml",
        patient: Some("synthetic-1"),
        records: &[LISINOPRIL],
    },
    Readable {
        file: "samples/ccr/prefixed-namespace.xml",
        patient: Some("synthetic-1"),
        records: &[LISINOPRIL],
    },
    Readable {
        file: "samples/ccr/no-namespace.xml",
        patient: Some("synthetic-1"),
        records: &[LISINOPRIL],
    },
    Readable {
        file: "samples/ccr/atom-feed-two-ccrs.xml",
        patient: Some("synthetic-feed-1"),
        records: &[
            LISINOPRIL,
            ("Metformin 500 MG Oral Tablet", &[(Ndc, "0087-6060-05")]),
        ],
    },
    Readable {
        file: "samples/ccr/atom-entry.xml",
        patient: Some("synthetic-feed-1"),
        records: &[LISINOPRIL],
    },
    Readable {
        file: "samples/ccr/stylesheet-no-declaration.xml",
        patient: Some("synthetic-1"),
        records: &[LISINOPRIL],
    },
    Readable {
        file: "samples/ccr/comments-before-root.xml",
        patient: Some("synthetic-1"),
        records: &[LISINOPRIL],
    },
    Readable {
        file: "samples/ccr/bom-utf8.xml",
        patient: Some("synthetic-1"),
        records: &[LISINOPRIL],
    },
    Readable {
        file: "samples/ccr/latin1-declared.xml",
        patient: Some("synthetic-1"),
        records: &[(
            "Metoprolol Tartrate 25 MG Oral Tablet",
            &[(Ndc, "0378-0018-01")],
        )],
    },
    Readable {
        file: "samples/ccr/codes-on-brandname.xml",
        patient: Some("synthetic-1"),
        records: &[("Glucophage", &[(Ndc, "0087-6060-05")])],
    },
    Readable {
        file: "samples/ccr/several-codes.xml",
        patient: Some("synthetic-1"),
        records: &[(
            "Metformin 500 MG Oral Tablet",
            &[
                (Ndc, "0087-6060-05"),
                (RxNorm, "861007"),
                (Ndc, "00087606005"),
            ],
        )],
    },
    Readable {
        file: "samples/ccr/combination-two-strengths.xml",
        patient: Some("synthetic-1"),
        records: &[(
            "Lisinopril 20 MG / Hydrochlorothiazide 12.5 MG Oral Tablet",
            &[(RxNorm, "197886")],
        )],
    },
    Readable {
        file: "samples/ccr/several-directions.xml",
        patient: Some("synthetic-1"),
        records: &[("Prednisone 10 MG Oral Tablet", &[(Ndc, "0054-4741-25")])],
    },
    Readable {
        file: "samples/ccr/alerts-ndc-allergen.xml",
        patient: Some("synthetic-1"),
        records: &[LISINOPRIL],
    },
    Readable {
        file: "samples/ccr/no-drug.xml",
        patient: Some("synthetic-1"),
        records: &[("", &[])],
    },
    Readable {
        file: "samples/ccr/demo.xml",
        patient: Some("demo-ccr-1"),
        records: &[
            LISINOPRIL,
            ("Lisinopril 10 MG Oral Tablet", &[(Ndc, "0143-9714-01")]),
            (
                "Metformin Hydrochloride 500 MG Oral Tablet",
                &[(Ndc, "0087-6060-05"), (RxNorm, "861007")],
            ),
            (
                "Losartan Potassium 50 MG Oral Tablet",
                &[(Ndc, "68180-0513-01")],
            ),
            ("Amlodipine 5 MG Oral Tablet", &[(RxNorm, "197361")]),
            ("Ibuprofen 800 MG Oral Tablet", &[(Ndc, "2501-813-16")]),
        ],
    },
    Readable {
        file: "tests/corpus/ccr/health-data-standards/1_Sofia_Weideman.xml",
        patient: Some("AA0001"),
        records: &[
            ("Antiplatelet Therapy", &[(RxNorm, "243670")]),
            ("Antihypertensive combinations", &[(RxNorm, "858828")]),
            ("Beta Blocker Therapy", &[(RxNorm, "866924")]),
            ("Antiplatelet Therapy", &[(RxNorm, "243670")]),
            ("Antihypertensive combinations", &[(RxNorm, "858828")]),
            ("Lipid Lowering Therapy", &[(RxNorm, "617314")]),
            ("Lipid Lowering Therapy", &[(RxNorm, "617314")]),
        ],
    },
    Readable {
        file: "tests/corpus/ccr/health-data-standards/patient_with_providers.xml",
        patient: Some("11220"),
        records: &[
            ("Multi Vitamin Mens", &[(Multum, "0"), (MediSpan, "28570")]),
            ("Aspir-81", &[(Multum, "0"), (MediSpan, "6129")]),
        ],
    },
    Readable {
        file: "tests/corpus/ccr/health-data-standards/test1.xml",
        patient: Some("11220"),
        records: &[
            ("Multi Vitamin Mens", &[(Multum, "0"), (MediSpan, "28570")]),
            ("Aspir-81", &[(Multum, "0"), (MediSpan, "6129")]),
        ],
    },
];

#[test]
fn readable_documents_yield_their_medications_and_nothing_else() {
    for row in READABLE {
        let doc = parse(&read(row.file)).unwrap_or_else(|e| panic!("{}: {e}", row.file));
        assert_eq!(doc.format, DocFormat::Ccr, "{}", row.file);
        assert_eq!(
            doc.patient_ref.as_deref(),
            row.patient,
            "{}: patient",
            row.file
        );
        let got: Vec<_> = doc.records.iter().map(|r| (drug(r), codes(r))).collect();
        let want: Vec<_> = row
            .records
            .iter()
            .map(|(name, codes)| (*name, codes.to_vec()))
            .collect();
        assert_eq!(got, want, "{}", row.file);
        for record in &doc.records {
            assert!(
                record.excerpt.starts_with('<') && record.excerpt.ends_with("Medication>"),
                "{}",
                row.file
            );
            assert_eq!(
                record.source.as_ref().map(|s| s.kind.as_str()),
                Some("Medication"),
                "{}",
                row.file
            );
        }
    }
}

/// Documents that must be refused: the error variant and the line it names.
const REFUSED: &[(&str, &str, usize)] = &[
    ("samples/ccr/billion-laughs.xml", "Dtd", 2),
    ("samples/ccr/external-entity.xml", "Dtd", 2),
    ("samples/ccr/cda-not-ccr.xml", "NotCcr", 2),
    ("samples/ccr/mismatched-tag.xml", "Malformed", 6),
    // Both close <ApproximateDateTime> with </ExactDateTime> in the Problems section.
    (
        "tests/corpus/ccr/health-data-standards/sample_ccr.xml",
        "Malformed",
        81,
    ),
    (
        "tests/corpus/ccr/health-data-standards/1_Sofia_Weideman_SAK.xml",
        "Malformed",
        81,
    ),
];

#[test]
fn hostile_and_broken_documents_are_refused_with_a_place() {
    for (file, want, want_line) in REFUSED {
        let error = parse(&read(file)).expect_err(file);
        assert_eq!(
            (variant(&error), line(&error)),
            (*want, Some(*want_line)),
            "{file}: {error}"
        );
    }
}

#[test]
fn the_corpus_mismatch_names_both_tags_at_the_end_tag() {
    for file in ["sample_ccr.xml", "1_Sofia_Weideman_SAK.xml"] {
        let error = parse(&read(&format!(
            "tests/corpus/ccr/health-data-standards/{file}"
        )))
        .expect_err(file);
        let ParseError::Malformed {
            syntax,
            at,
            message,
        } = error
        else {
            panic!("{file}: {error}")
        };
        assert_eq!(syntax, "XML");
        // Line 81 is `          <ApproximateDateTime>2010-12-12T00:00:00Z</ExactDateTime>`:
        // the end tag starts after 10 spaces, 21 characters of start tag and 20 of date.
        assert_eq!(
            at,
            Position {
                line: 81,
                column: 52
            },
            "{file}"
        );
        assert!(
            message.contains("</ExactDateTime>") && message.contains("<ApproximateDateTime>"),
            "{message}"
        );
    }
}

/// A record count, or an error variant and the line it names.
type Outcome = Result<usize, (&'static str, Option<usize>)>;

#[test]
fn edge_cases_in_line() {
    let deep = format!(
        "<ContinuityOfCareRecord>{}{}</ContinuityOfCareRecord>",
        "<a>".repeat(300),
        "</a>".repeat(300)
    );
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "<ContinuityOfCareRecord><Body><Medications><Medication><Product><ProductName><Text>Aspirin</Text>\
             </ProductName></Product></Medication></Medications></Body></ContinuityOfCareRecord>"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let cases: &[(&str, &[u8], Outcome)] = &[
        ("no bytes is empty", b"", Err(("Empty", None))),
        ("whitespace is empty", b" \n\t\r\n", Err(("Empty", None))),
        ("a BOM alone is empty", b"\xEF\xBB\xBF\n", Err(("Empty", None))),
        ("NUL bytes are binary", b"<ContinuityOfCareRecord>\0</ContinuityOfCareRecord>", Err(("Binary", None))),
        (
            "undeclared non-UTF-8 is binary",
            b"<ContinuityOfCareRecord>\xff</ContinuityOfCareRecord>",
            Err(("Binary", None)),
        ),
        ("an unclosed root is malformed", b"<ContinuityOfCareRecord>\n<Body>\n", Err(("Malformed", Some(3)))),
        ("garbage after the root is malformed", b"<ContinuityOfCareRecord/>\ngarbage", Err(("Malformed", Some(2)))),
        ("a second root is malformed", b"<ContinuityOfCareRecord/>\n<x/>", Err(("Malformed", Some(2)))),
        ("text before the root is malformed", b"hello <ContinuityOfCareRecord/>", Err(("Malformed", Some(1)))),
        ("no root at all is malformed", b"<!-- nothing -->", Err(("Malformed", Some(1)))),
        (
            "an unknown entity is malformed, never looked up",
            b"<ContinuityOfCareRecord>\n&ent;</ContinuityOfCareRecord>",
            Err(("Malformed", Some(2))),
        ),
        ("a DOCTYPE without entities is refused", b"<!DOCTYPE x>\n<x/>", Err(("Dtd", Some(1)))),
        (
            "a stray entity declaration is refused as a DTD",
            b"<ContinuityOfCareRecord>\n<!ENTITY x \"y\"></ContinuityOfCareRecord>",
            Err(("Dtd", Some(2))),
        ),
        ("a random root is not a CCR", b"<note><to>x</to></note>", Err(("NotCcr", Some(1)))),
        (
            "a CCR name in another namespace is not a CCR",
            b"<ContinuityOfCareRecord xmlns=\"urn:hl7-org:v3\"/>",
            Err(("NotCcr", Some(1))),
        ),
        (
            "an undecodable encoding is refused",
            b"<?xml version=\"1.0\" encoding=\"EBCDIC-CP-US\"?><ContinuityOfCareRecord/>",
            Err(("Encoding", Some(1))),
        ),
        ("deep nesting is refused", deep.as_bytes(), Err(("TooDeep", Some(1)))),
        (
            "an undeclared prefix on the root is malformed",
            b"<ccr:ContinuityOfCareRecord/>",
            Err(("Malformed", Some(1))),
        ),
        (
            "a prefix declared on the feed is enough for a nested CCR",
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:ccr=\"urn:astm-org:CCR\"><entry><ccr:ContinuityOfCareRecord>\
              <ccr:Body><ccr:Medications><ccr:Medication/></ccr:Medications></ccr:Body></ccr:ContinuityOfCareRecord></entry></feed>",
            Ok(1),
        ),
        ("an empty CCR has no records", b"<ContinuityOfCareRecord/>", Ok(0)),
        ("UTF-16 with a BOM is read", &utf16, Ok(1)),
        (
            "predefined entities and character references are resolved",
            b"<ContinuityOfCareRecord><Body><Medications><Medication><Product><ProductName><Text>A &amp; B &#233;\
              &lt;&gt;&quot;&apos;</Text></ProductName></Product></Medication></Medications></Body></ContinuityOfCareRecord>",
            Ok(1),
        ),
        (
            "a Medication outside Body/Medications is not read",
            b"<ContinuityOfCareRecord><Medications><Medication/></Medications><Body><Alerts><Medication/></Alerts></Body></ContinuityOfCareRecord>",
            Ok(0),
        ),
    ];
    for (rule, input, want) in cases {
        let got = parse(input)
            .map(|doc| doc.records.len())
            .map_err(|e| (variant(&e), line(&e)));
        assert_eq!(&got, want, "{rule}");
    }
}

fn only_record(file: &str) -> MedRecord {
    let doc = parse(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(doc.records.len(), 1, "{file}");
    doc.records.into_iter().next().unwrap_or_default()
}

#[test]
fn an_item_keeps_everything_the_document_states() {
    let record = only_record("samples/ccr/default-namespace.xml");
    assert_eq!(record.source.and_then(|s| s.id).as_deref(), Some("M1"));
    assert_eq!(
        record.strengths,
        vec![Strength {
            value: "10".into(),
            unit: Some("mg".into())
        }]
    );
    assert_eq!(record.form.as_deref(), Some("Tablet"));
    assert_eq!(record.route.as_deref(), Some("Oral"));
    assert_eq!(record.dose.as_deref(), Some("1 tablet"));
    assert_eq!(record.frequency.as_deref(), Some("QD"));
    assert_eq!(
        record.directions,
        vec!["Take 1 tablet by mouth once daily".to_string()]
    );
    assert_eq!(record.status.as_deref(), Some("Active"));
    assert_eq!(record.start.as_deref(), Some("2024-01-02"));
    assert_eq!(
        record.codes[0].display.as_deref(),
        Some("Lisinopril 10 MG Oral Tablet")
    );
    assert!(record.problems.is_empty());
}

#[test]
fn repeated_parts_are_all_kept() {
    let combination = only_record("samples/ccr/combination-two-strengths.xml");
    let strengths: Vec<_> = combination
        .strengths
        .iter()
        .map(|s| s.value.as_str())
        .collect();
    assert_eq!(strengths, ["20", "12.5"]);

    let tapered = only_record("samples/ccr/several-directions.xml");
    assert_eq!(
        tapered.directions,
        [
            "Take 4 tablets by mouth daily for 3 days",
            "Then take 2 tablets by mouth daily for 3 days",
            "Take with food"
        ]
    );
    assert_eq!(
        tapered.dose.as_deref(),
        Some("4 tablet"),
        "the first Direction's dose"
    );

    let brand = only_record("samples/ccr/codes-on-brandname.xml");
    assert_eq!(
        (brand.name, brand.brand.as_deref()),
        (None, Some("Glucophage"))
    );
    assert_eq!(brand.codes[0].system_original, "National Drug Code");
}

#[test]
fn latin1_text_is_decoded_and_excerpts_are_source_text() {
    let record = only_record("samples/ccr/latin1-declared.xml");
    assert_eq!(record.directions.len(), 1);
    assert!(
        record.directions[0].starts_with("Take ½ tablet"),
        "{:?}",
        record.directions
    );
    assert!(record.directions[0].contains("Hélène"));
    assert!(record.excerpt.starts_with("<Medication>"));
    assert!(
        record
            .excerpt
            .contains("<CCRDataObjectID>M1</CCRDataObjectID>")
    );
    assert!(record.excerpt.ends_with("</Medication>") && record.excerpt.contains("½"));
}

#[test]
fn a_medication_without_a_drug_is_kept_with_a_problem() {
    let record = only_record("samples/ccr/no-drug.xml");
    assert_eq!(record.problems.len(), 1);
    assert_eq!(record.problems[0].kind, ProblemKind::NoDrug);
    assert_eq!(record.directions, ["Take as directed"]);
}

#[test]
fn the_demo_document_states_dates_statuses_and_never_the_allergen() {
    let doc = parse(&read("samples/ccr/demo.xml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        doc.records
            .iter()
            .all(|r| r.codes.iter().all(|c| c.value != "76013O881M"))
    );
    let first = &doc.records[0];
    assert_eq!(first.brand.as_deref(), Some("Prinivil"));
    assert_eq!(
        (first.start.as_deref(), first.prescribed.as_deref()),
        (Some("2023-03-01"), Some("2023-02-27"))
    );
    let ibuprofen = &doc.records[5];
    assert_eq!(ibuprofen.status.as_deref(), Some("Completed"));
    assert_eq!(ibuprofen.stop.as_deref(), Some("2023-06-10"));
    assert_eq!(doc.records[2].codes[0].system_original, "ndc");
}

#[test]
fn entities_in_text_are_resolved() {
    let doc = parse(
        b"<ContinuityOfCareRecord><Body><Medications><Medication><Product><ProductName><Text>A &amp; B &#233;&#x20;\
          &lt;&gt;&quot;&apos;</Text></ProductName></Product></Medication></Medications></Body></ContinuityOfCareRecord>",
    );
    let name = doc
        .ok()
        .and_then(|d| d.records.into_iter().next())
        .and_then(|r| r.name);
    assert_eq!(name.as_deref(), Some("A & B \u{e9} <>\"'"));
}

#[test]
fn an_atom_feed_without_a_ccr_is_read_as_empty_with_a_problem() {
    let doc = parse(b"<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>none</title></feed>");
    let doc = doc.unwrap_or_else(|e| panic!("{e}"));
    assert!(doc.records.is_empty());
    assert_eq!(doc.problems.len(), 1);
    assert_eq!(doc.problems[0].kind, ProblemKind::Skipped);
}

const MUTATED: &[&str] = &[
    "samples/ccr/demo.xml",
    "samples/ccr/latin1-declared.xml",
    "samples/ccr/atom-feed-two-ccrs.xml",
    "samples/ccr/prefixed-namespace.xml",
];

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[<>/?!&;=\"' a-zA-Z:\\n\u{bd}\u{e9}-]{0,512}") {
        let _ = parse(format!("<ContinuityOfCareRecord><Body><Medications><Medication>{text}").as_bytes());
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..MUTATED.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = read(MUTATED[which]);
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1)).min(bytes.len());
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => {}
            }
        }
        let _ = parse(&bytes);
        let end = cut.index(bytes.len() + 1);
        let _ = parse(&bytes[..end]);
    }
}

#[test]
fn product_codes_approximate_dates_and_a_prescribing_source_are_read() {
    let doc = parse(
        b"<ContinuityOfCareRecord><Body><Medications><Medication>\
          <DateTime><Type><Text>date started</Text></Type><ApproximateDateTime><Text>Spring 2019</Text></ApproximateDateTime></DateTime>\
          <DateTime><Type><Text>Dispense Date</Text></Type><ExactDateTime>2019-05-01</ExactDateTime></DateTime>\
          <Source><Actor><ActorID>AA0009</ActorID><ActorRole><Text>Prescribing clinician</Text></ActorRole></Actor></Source>\
          <Product><Code><Value>197361</Value><CodingSystem>RxNorm</CodingSystem></Code></Product>\
          <Directions><Direction><Frequency><Text>BID</Text></Frequency></Direction></Directions>\
          </Medication></Medications></Body></ContinuityOfCareRecord>",
    );
    let record = doc
        .ok()
        .and_then(|d| d.records.into_iter().next())
        .unwrap_or_default();
    assert_eq!(codes(&record), [(RxNorm, "197361")]);
    assert_eq!(record.start.as_deref(), Some("Spring 2019"));
    assert_eq!(
        (record.stop, record.prescribed),
        (None, None),
        "a dispense date is none of the three"
    );
    assert_eq!(record.prescriber.as_deref(), Some("AA0009"));
    assert_eq!(record.frequency.as_deref(), Some("BID"));
    assert!(record.problems.is_empty(), "a code alone names the drug");
}

#[test]
fn without_excerpts_everything_but_the_excerpt_is_the_same() {
    let mut files: Vec<String> = Vec::new();
    for dir in ["samples/ccr", "tests/corpus/ccr/health-data-standards"] {
        let full = format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&full).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".xml") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    assert!(files.len() > 20, "{files:?}");
    for file in files {
        let bytes = read(&file);
        let with = parse(&bytes);
        let without = parse_with(&bytes, crate::parse::ParseOptions { excerpts: false });
        match (with, without) {
            (Ok(mut a), Ok(b)) => {
                for r in &mut a.records {
                    r.excerpt.clear();
                }
                assert_eq!(a, b, "{file}");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{file}"),
            (a, b) => panic!("{file}: {a:?} vs {b:?}"),
        }
    }
}

#[test]
fn a_feed_whose_ccrs_name_different_patients_says_so() {
    let same = read("samples/ccr/atom-feed-two-ccrs.xml");
    let doc = parse(&same).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        doc.problems
            .iter()
            .all(|p| p.kind != ProblemKind::SeveralPatients),
        "one patient twice"
    );
    let text = String::from_utf8(same).unwrap_or_default();
    // The second CCR's Patient/ActorID names another patient.
    let needle = "<ActorID>synthetic-feed-1</ActorID>";
    let at = text.rfind(needle).unwrap_or(0);
    let two = format!(
        "{}<ActorID>synthetic-feed-2</ActorID>{}",
        &text[..at],
        &text[at + needle.len()..]
    );
    let doc = parse(two.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let several: Vec<&str> = doc
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::SeveralPatients)
        .map(|p| p.detail.as_str())
        .collect();
    assert_eq!(several.len(), 1);
    assert!(
        several[0].contains("synthetic-feed-1, synthetic-feed-2"),
        "{several:?}"
    );
    assert_eq!(doc.patient_ref.as_deref(), Some("synthetic-feed-1"));
}
