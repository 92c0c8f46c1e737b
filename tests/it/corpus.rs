//! The public corpus (tests/corpus/, real documents no one on this project
//! wrote) through parse and normalize, against the sample dictionary: every
//! FHIR medication example reads, and every NDC in it lands in the
//! exception kind its shape and the dictionary call for; every RxNorm and
//! NDC code of the HL7 C-CDA examples' medication sections is in a record.
//! And every CCR, C-CDA and FHIR document of the corpus and of samples/, against the sample
//! dictionary and the full 2019 FDA snapshot: no true text/NDC pair raises
//! `ndc_name_mismatch` (the figures are printed for the record).

use crate::support::repo_path;
use rxsync::dict::{MemoryDictionary, fda};
use rxsync::domain::CodeSystem;
use rxsync::normalize::{CodeMappings, Options, Regimen, normalize};
use rxsync::parse::{self, DocFormat, ParseError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn sample_dictionary() -> MemoryDictionary {
    let dir = repo_path("samples/ndc");
    let products = std::fs::read(dir.join("product.txt")).expect("product.txt");
    let packages = std::fs::read(dir.join("package.txt")).expect("package.txt");
    let (products, _) = fda::read_products(&products).expect("products");
    let (packages, _) = fda::read_packages(&packages).expect("packages");
    MemoryDictionary::new(&products, &packages)
}

/// The resource types a medication list can arrive as.
const READ_TYPES: &[&str] = &[
    "Bundle",
    "Medication",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationAdministration",
    "MedicationOrder",
    "MedicationKnowledge",
];

/// The top-level resource type, found independently of rxsync's parser.
fn root_type(bytes: &[u8], format: DocFormat) -> String {
    let text = String::from_utf8_lossy(bytes);
    match format {
        DocFormat::FhirJson => serde_json::from_str::<serde_json::Value>(&text)
            .expect("corpus JSON")["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        _ => roxmltree::Document::parse(&text)
            .expect("corpus XML")
            .root_element()
            .tag_name()
            .name()
            .to_string(),
    }
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo_path(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .collect();
    out.sort();
    out
}

/// What normalization made of each NDC code, by the code as written.
fn classify(regimen: &Regimen, into: &mut BTreeMap<String, BTreeSet<&'static str>>) {
    for (i, item) in regimen.items.iter().enumerate() {
        let ndc = |codes: &[rxsync::domain::Code]| -> Vec<String> {
            codes
                .iter()
                .filter(|c| c.system == CodeSystem::Ndc)
                .map(|c| c.value.clone())
                .collect()
        };
        let (own, ingredients) = (ndc(&item.codes), ndc(&item.ingredient_codes));
        if own.is_empty() {
            // A compound: its ingredients' NDCs never identify it.
            let flagged = regimen
                .flags
                .iter()
                .any(|f| f.item == Some(i) && f.kind.as_str() == "non_ndc_code");
            for code in ingredients {
                into.entry(code).or_default().insert(if flagged {
                    "compound"
                } else {
                    "compound, not flagged"
                });
            }
            continue;
        }
        let [code] = own.as_slice() else { continue };
        let flags: Vec<&str> = regimen
            .flags
            .iter()
            .filter(|f| f.item == Some(i))
            .map(|f| f.kind.as_str())
            .collect();
        let class = if flags.contains(&"invalid_ndc") {
            "invalid"
        } else if flags.contains(&"unmapped_ndc") {
            "unmapped"
        } else if item.ndc_inferred {
            "mapped (inferred)"
        } else if item.product.is_some() {
            "mapped"
        } else {
            "other"
        };
        into.entry(code.to_string()).or_default().insert(class);
    }
}

#[test]
fn every_fhir_medication_example_reads_and_every_ndc_is_classified() {
    let dict = sample_dictionary();
    let mut classes: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    let mut read = 0;
    let mut refused = 0;
    let mut drug_data = 0;
    for version in ["r4", "stu3", "dstu2"] {
        for (sub, format) in [("json", DocFormat::FhirJson), ("xml", DocFormat::FhirXml)] {
            let dir = format!("tests/corpus/fhir/{version}/{sub}");
            if !repo_path(&dir).exists() {
                continue;
            }
            for path in files(&dir) {
                let bytes = std::fs::read(&path).expect("read corpus file");
                assert_eq!(
                    parse::sniff(&bytes).ok(),
                    Some(format),
                    "{}",
                    path.display()
                );
                let root = root_type(&bytes, format);
                if !READ_TYPES.contains(&root.as_str()) {
                    // ConceptMaps and Questionnaires sit beside the examples.
                    let err = parse::parse(&bytes, format).expect_err(&path.display().to_string());
                    assert!(
                        matches!(err, ParseError::NotFhir { .. }),
                        "{}: {err}",
                        path.display()
                    );
                    refused += 1;
                    continue;
                }
                if matches!(root.as_str(), "Medication" | "MedicationKnowledge") {
                    // Drug data alone names no patient: refused, never a
                    // patient's item (design invariant 8).
                    let err = parse::parse(&bytes, format).expect_err(&path.display().to_string());
                    assert!(
                        matches!(err, ParseError::DrugData { .. }),
                        "{}: {err}",
                        path.display()
                    );
                    drug_data += 1;
                    continue;
                }
                let doc = parse::parse(&bytes, format)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let regimen = normalize(
                    &doc,
                    &dict,
                    &CodeMappings::new(),
                    &Options {
                        max_regimen_items: 200,
                        ..Options::default()
                    },
                );
                classify(&regimen, &mut classes);
                read += 1;
            }
        }
    }
    assert!(read > 150, "read {read} corpus files");
    assert!(drug_data > 100, "{drug_data} drug-data files refused");
    assert!(refused < 20, "refused {refused} non-medication files");
    // "compound": an ingredient of a drug that has no NDC of its own (HL7's
    // TPN and vancomycin-in-dextrose examples): flagged non_ndc_code, never
    // mapped to the ingredient. (The bare 10-digit 0173068220 that the
    // dictionary places is only in a Medication example alone: drug data,
    // refused above.)
    let expected: &[(&str, &str)] = &[
        ("0056-0170-70", "mapped"),
        ("0056-1072-70", "unmapped"),
        ("0067-2091-03", "mapped"),
        ("0069-2587-10", "unmapped"),
        ("0071-2214-20", "mapped"),
        ("0169-7501-11", "mapped"),
        ("0206-8862-02", "mapped"),
        ("0264751010", "compound"),
        ("0338-0519-02", "compound"),
        ("0338-1134-03", "compound"),
        ("0378-1805-01", "unmapped"),
        ("0409-5779-01", "compound"),
        ("16590-619-30", "unmapped"),
        ("2501-813-16", "invalid"),
        ("33261-403-02", "unmapped"),
        ("49999-051-30", "unmapped"),
        ("50090-0001", "invalid"),
        ("50580-506-02", "unmapped"),
        ("51144-050-01", "mapped"),
        ("60505-7001-2", "unmapped"),
        ("76388-713-25", "mapped"),
    ];
    let want: BTreeMap<String, BTreeSet<&str>> = expected
        .iter()
        .map(|(c, k)| (c.to_string(), BTreeSet::from([*k])))
        .collect();
    assert_eq!(classes, want);
}

#[test]
fn the_well_formed_corpus_ccrs_read_their_medications_only() {
    let dict = sample_dictionary();
    for (name, meds) in [
        ("1_Sofia_Weideman.xml", 7),
        ("patient_with_providers.xml", 2),
        ("test1.xml", 2),
    ] {
        let bytes = std::fs::read(repo_path(&format!(
            "tests/corpus/ccr/health-data-standards/{name}"
        )))
        .expect("read");
        let doc = parse::parse(&bytes, DocFormat::Ccr).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.records.len(), meds, "{name}");
        let regimen = normalize(
            &doc,
            &dict,
            &CodeMappings::new(),
            &Options {
                max_regimen_items: 200,
                ..Options::default()
            },
        );
        // These CCRs code drugs in RxNorm, Multum and MediSpan only.
        assert!(regimen.items.iter().all(|i| i.ndc11.is_none()), "{name}");
        assert!(
            regimen
                .flags
                .iter()
                .any(|f| f.kind.as_str() == "non_ndc_code"),
            "{name}"
        );
    }
}

/// The LOINC codes of the sections whose activities are medications.
const CCDA_MEDICATION_SECTIONS: &[&str] = &["10160-0", "29549-3", "10183-2", "75311-1", "42346-7"];

/// The RxNorm and NDC codes (`system`, value) of a C-CDA's medication
/// activities, found with roxmltree independently of rxsync's reader: the
/// drug of every `substanceAdministration` that is an entry of a
/// medications section (or wrapped in an entry's act), not negated.
fn ccda_drug_codes(text: &str) -> Vec<(CodeSystem, String)> {
    fn el(n: &roxmltree::Node, name: &str) -> bool {
        n.is_element()
            && n.tag_name().name() == name
            && n.tag_name().namespace() == Some("urn:hl7-org:v3")
    }
    fn kid<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
        n.children().find(|c| el(c, name))
    }
    let doc = roxmltree::Document::parse(text).expect("corpus C-CDA");
    let mut out = Vec::new();
    for section in doc.descendants().filter(|n| el(n, "section")) {
        let code = kid(section, "code").and_then(|c| c.attribute("code"));
        if !code.is_some_and(|c| CCDA_MEDICATION_SECTIONS.contains(&c)) {
            continue;
        }
        for sa in section
            .descendants()
            .filter(|n| el(n, "substanceAdministration"))
        {
            let parent = sa.parent().expect("parent");
            let is_entry = el(&parent, "entry") && parent.parent() == Some(section);
            let in_act = el(&parent, "entryRelationship")
                && parent.parent().is_some_and(|a| {
                    el(&a, "act")
                        && a.parent()
                            .is_some_and(|e| el(&e, "entry") && e.parent() == Some(section))
                });
            if !(is_entry || in_act) || sa.attribute("negationInd") == Some("true") {
                continue;
            }
            let Some(code) = kid(sa, "consumable")
                .and_then(|c| kid(c, "manufacturedProduct"))
                .and_then(|p| kid(p, "manufacturedMaterial"))
                .and_then(|m| kid(m, "code"))
            else {
                continue;
            };
            for coded in
                std::iter::once(code).chain(code.children().filter(|c| el(c, "translation")))
            {
                let system = match coded.attribute("codeSystem") {
                    Some("2.16.840.1.113883.6.88") => CodeSystem::RxNorm,
                    Some("2.16.840.1.113883.6.69") => CodeSystem::Ndc,
                    _ => continue,
                };
                if let Some(value) = coded.attribute("code") {
                    out.push((system, value.trim().to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn the_corpus_ccdas_read_every_rxnorm_and_ndc_of_their_medication_sections() {
    let dict = sample_dictionary();
    // (file, records, left out) — counted in the documents: immunizations
    // and Plan of Treatment activities are not medications of the list;
    // CCD 2's Medications section is nullFlavor NI; the Care Plan has none.
    let rows = [
        ("CCD_1.xml", 2, 0),
        ("CCD_2.xml", 0, 1),
        ("Care_Plan.xml", 0, 1),
        ("Consultation_Note.xml", 2, 0),
        ("Discharge_Summary.xml", 1, 0),
        ("History_and_Physical.xml", 1, 0),
        ("Progress_Note.xml", 2, 0),
        ("Referral_Note.xml", 2, 0),
        ("Transfer_Summary.xml", 2, 0),
    ];
    let dir = repo_path("tests/corpus/ccda/hl7-c-cda-examples");
    let mut listed: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        rows.iter().map(|r| r.0.to_string()).collect::<Vec<_>>()
    );
    let mut total = 0;
    for (name, records, left_out) in rows {
        let bytes = std::fs::read(dir.join(name)).expect("read");
        assert_eq!(parse::sniff(&bytes).ok(), Some(DocFormat::Ccda), "{name}");
        let doc = parse::parse(&bytes, DocFormat::Ccda).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!(
            "{name}: {} records, {} left out {:?}, {} unreadable",
            doc.records.len(),
            doc.left_out.len(),
            doc.left_out
                .iter()
                .map(|o| o.reason.as_str())
                .collect::<Vec<_>>(),
            doc.unreadable.len()
        );
        assert_eq!(
            (doc.records.len(), doc.left_out.len()),
            (records, left_out),
            "{name}"
        );
        assert!(doc.unreadable.is_empty(), "{name}: {:?}", doc.unreadable);
        let read: std::collections::HashSet<(CodeSystem, String)> = doc
            .records
            .iter()
            .flat_map(|r| r.codes.iter().map(|c| (c.system.clone(), c.value.clone())))
            .collect();
        for code in ccda_drug_codes(&String::from_utf8_lossy(&bytes)) {
            assert!(
                read.contains(&code),
                "{name}: {code:?} is not in the records"
            );
        }
        assert!(
            doc.records
                .iter()
                .all(|r| r.section.is_some() && !r.excerpt.is_empty()),
            "{name}"
        );
        // Through normalization: every record is an item, skipped, or flagged.
        let regimen = normalize(&doc, &dict, &CodeMappings::new(), &Options::default());
        if doc.records.is_empty() {
            assert!(
                regimen
                    .flags
                    .iter()
                    .any(|f| f.kind.as_str() == "none_shared"),
                "{name}"
            );
        } else {
            assert!(!regimen.items.is_empty(), "{name}");
        }
        total += doc.records.len();
    }
    assert_eq!(total, 12, "the corpus holds {total} medication records");
}

/// Every CCR and FHIR document under `dir` and its folders, parsed; files
/// that are not documents (fixtures' READMEs, scripts) or that a strict
/// reader refuses (hostile or malformed samples) are left out.
fn documents_under(dir: &str, into: &mut Vec<(String, parse::ParsedDocument)>) {
    let mut stack = vec![repo_path(dir)];
    while let Some(dir) = stack.pop() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).expect("read document");
            let Ok(format) = parse::sniff(&bytes) else {
                continue;
            };
            if let Ok(doc) = parse::parse(&bytes, format) {
                into.push((path.display().to_string(), doc));
            }
        }
    }
}

/// What the name/NDC check made of a set of documents.
#[derive(Debug, Default)]
struct MismatchTally {
    documents: usize,
    /// Items whose NDC the dictionary maps by itself (no clinician's mapping):
    /// the items the check looks at.
    checked: usize,
    /// Of these, the items of the public corpus (tests/corpus/).
    checked_public: usize,
    /// (file, NDC as written, detail) of each `ndc_name_mismatch`.
    flagged: Vec<(String, String, String)>,
}

fn tally_mismatches(dict: &dyn rxsync::dict::DrugDictionary) -> MismatchTally {
    let mut docs = Vec::new();
    for dir in [
        "tests/corpus",
        "samples/ccr",
        "samples/ccda",
        "samples/fhir",
    ] {
        documents_under(dir, &mut docs);
    }
    let mut tally = MismatchTally {
        documents: docs.len(),
        ..MismatchTally::default()
    };
    for (file, doc) in &docs {
        let regimen = normalize(
            doc,
            dict,
            &CodeMappings::new(),
            &Options {
                max_regimen_items: 10_000,
                ..Options::default()
            },
        );
        let checked = regimen
            .items
            .iter()
            .filter(|i| i.product.is_some() && i.mapping.is_none())
            .count();
        tally.checked += checked;
        if file.contains("tests/corpus") {
            tally.checked_public += checked;
        }
        for flag in regimen
            .flags
            .iter()
            .filter(|f| f.kind.as_str() == "ndc_name_mismatch")
        {
            let ndc = flag
                .item
                .and_then(|i| regimen.items.get(i))
                .and_then(|i| i.ndc_original.clone())
                .unwrap_or_default();
            tally.flagged.push((file.clone(), ndc, flag.detail.clone()));
        }
    }
    let flagged_public = tally
        .flagged
        .iter()
        .filter(|(file, _, _)| file.contains("tests/corpus"))
        .count();
    eprintln!(
        "ndc_name_mismatch: {} document(s), {} mapped item(s) checked, {} flagged \
         (public corpus: {} checked, {} flagged)",
        tally.documents,
        tally.checked,
        tally.flagged.len(),
        tally.checked_public,
        flagged_public
    );
    for (file, ndc, detail) in &tally.flagged {
        eprintln!("  {file}: {ndc}: {detail}");
    }
    tally
}

/// Pairs whose text and NDC truly disagree, by (file, NDC as written):
/// real mismatches, not false flags. None is in the public corpus; all are
/// project samples whose NDC was chosen to be missing from the sample
/// dictionary, and which the full 2019 FDA snapshot knows as another drug.
const TRUE_MISMATCHES: &[(&str, &str)] = &[
    // "Losartan Potassium 50 MG Oral Tablet": 68180-513-01 is Lupin's
    // LISINOPRIL 5 mg tablet in the snapshot (another drug altogether).
    ("samples/ccr/demo.xml", "68180-0513-01"),
    ("samples/ccr/review.xml", "68180-0513-01"),
    // "Aspirin … 81 MG" over the same lisinopril NDC.
    ("samples/ccr/markup-name.xml", "68180-0513-01"),
    // "Prednisone 10 MG Oral Tablet": 0054-4741-25 is PREDNISONE 1 mg
    // (the right drug at a tenth of the strength).
    ("samples/ccr/several-directions.xml", "0054-4741-25"),
];

fn assert_only_true_mismatches(tally: &MismatchTally) {
    let false_flags: Vec<&(String, String, String)> = tally
        .flagged
        .iter()
        .filter(|(file, ndc, _)| {
            !TRUE_MISMATCHES
                .iter()
                .any(|(name, code)| file.ends_with(name) && ndc == code)
        })
        .collect();
    assert_eq!(false_flags, Vec::<&(String, String, String)>::new());
}

#[test]
fn the_corpus_and_samples_raise_no_false_name_mismatch_against_the_sample_dictionary() {
    let tally = tally_mismatches(&sample_dictionary());
    assert!(tally.documents > 150, "{} documents", tally.documents);
    assert!(tally.checked > 10, "{} mapped items", tally.checked);
    assert_only_true_mismatches(&tally);
}

#[test]
#[ignore = "needs RXSYNC_FDA_DIR (the 2019 FDA snapshot); run by .ci/run"]
fn the_corpus_and_samples_raise_no_false_name_mismatch_against_the_fda_snapshot() {
    let dir =
        std::env::var("RXSYNC_FDA_DIR").expect("RXSYNC_FDA_DIR must name the snapshot's directory");
    let dir = std::path::Path::new(&dir);
    let products = std::fs::read(dir.join("product.txt")).expect("read product.txt");
    let packages = std::fs::read(dir.join("package.txt")).expect("read package.txt");
    let (products, _) = fda::read_products(&products).expect("products");
    let (packages, _) = fda::read_packages(&packages).expect("packages");
    let tally = tally_mismatches(&MemoryDictionary::new(&products, &packages));
    assert!(tally.checked > 10, "{} mapped items", tally.checked);
    assert_only_true_mismatches(&tally);
}
