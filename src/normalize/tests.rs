//! Normalization rules, one test per rule of design.md and
//! medication-notes.md, over a small in-memory dictionary of real FDA
//! products.

use super::*;
use crate::dict::{Ingredient, MemoryDictionary, Package, Product};
use crate::domain::Code;
use crate::parse::{DocFormat, MedRecord, ParsedDocument, Problem, ProblemKind, SourceRef};

fn product(
    id: &str,
    ndc: &str,
    name: &str,
    labeler: &str,
    ingredients: &[(&str, &str)],
    form: &str,
    route: &str,
) -> Product {
    Product {
        product_id: id.to_string(),
        product_ndc: ndc.to_string(),
        product_type: "HUMAN PRESCRIPTION DRUG".to_string(),
        proprietary_name: name.to_string(),
        nonproprietary_name: name.to_lowercase(),
        dosage_form: form.to_string(),
        route: route.to_string(),
        labeler: labeler.to_string(),
        ingredients: ingredients
            .iter()
            .map(|(n, s)| Ingredient {
                name: n.to_string(),
                strength: s.to_string(),
                unit: "mg/1".to_string(),
            })
            .collect(),
        excluded: false,
    }
}

fn package(product_id: &str, hyphenated: &str) -> Package {
    let n = match crate::domain::ndc::parse(hyphenated).map(|p| p.reading) {
        Ok(crate::domain::NdcReading::Exact(n)) => n,
        other => panic!("test package {hyphenated}: {other:?}"),
    };
    Package {
        ndc11: n,
        package_ndc: hyphenated.to_string(),
        product_id: product_id.to_string(),
        description: format!("package {hyphenated}"),
    }
}

fn dictionary() -> MemoryDictionary {
    let mut excluded = product(
        "X",
        "0143-1267",
        "Lisinopril",
        "West-Ward",
        &[("LISINOPRIL", "10")],
        "TABLET",
        "ORAL",
    );
    excluded.excluded = true;
    let products = vec![
        product(
            "P1",
            "0006-0106",
            "Prinivil",
            "Merck",
            &[("LISINOPRIL", "10")],
            "TABLET",
            "ORAL",
        ),
        product(
            "P2",
            "0143-9714",
            "Lisinopril",
            "West-Ward",
            &[("LISINOPRIL", "10")],
            "TABLET",
            "ORAL",
        ),
        product(
            "P3",
            "0185-0104",
            "lisinopril",
            "Eon",
            &[("LISINOPRIL", "40")],
            "TABLET",
            "ORAL",
        ),
        product(
            "P4",
            "0777-3105",
            "Prozac",
            "Dista",
            &[("FLUOXETINE HYDROCHLORIDE", "20")],
            "CAPSULE",
            "ORAL",
        ),
        product(
            "P5",
            "0087-6060",
            "Glucophage",
            "BMS",
            &[("METFORMIN HYDROCHLORIDE", "500")],
            "TABLET, FILM COATED",
            "ORAL",
        ),
        product(
            "P6",
            "0069-2150",
            "Caduet",
            "Pfizer",
            &[("AMLODIPINE BESYLATE", "5"), ("ATORVASTATIN CALCIUM", "10")],
            "TABLET",
            "ORAL",
        ),
        product(
            "P7",
            "1111-2222",
            "Cream",
            "Topicals",
            &[("LISINOPRIL", "1")],
            "CREAM",
            "TOPICAL",
        ),
        excluded,
    ];
    let packages = vec![
        package("P1", "0006-0106-54"),
        package("P2", "0143-9714-01"),
        package("P3", "0185-0104-01"),
        package("P4", "0777-3105-02"),
        package("P4", "0777-3105-30"),
        package("P5", "0087-6060-05"),
        package("P6", "0069-2150-30"),
        package("P7", "1111-2222-33"),
        package("P8", "0069-1530-68"),
        package("P9", "0093-1048-01"),
        package("X", "0143-1267-01"),
    ];
    MemoryDictionary::new(&products, &packages)
}

fn rec(kind: &str, id: &str, name: &str, codes: &[(&str, &str)]) -> MedRecord {
    MedRecord {
        source: Some(SourceRef {
            kind: kind.to_string(),
            id: Some(id.to_string()),
        }),
        name: Some(name.to_string()),
        codes: codes.iter().map(|(s, v)| Code::new(s, v, None)).collect(),
        excerpt: format!("<{kind} id={id}>"),
        ..MedRecord::default()
    }
}

fn with_sig(mut r: MedRecord, sig: &str) -> MedRecord {
    r.directions = vec![sig.to_string()];
    r
}

/// A clinician's remembered decision, as the store would hand it over.
fn decided(ndc11: &str, by: &str, exception_id: Option<i64>) -> CodeMapping {
    CodeMapping {
        ndc11: crate::domain::Ndc11::from_digits(ndc11).expect("valid NDC-11"),
        decided_by: by.to_string(),
        decided_at: "2026-11-01T10:00:00.000Z".to_string(),
        exception_id,
    }
}

fn run(records: Vec<MedRecord>) -> Regimen {
    run_with(records, &CodeMappings::new(), 50)
}

fn run_with(records: Vec<MedRecord>, mappings: &CodeMappings, max: usize) -> Regimen {
    let doc = ParsedDocument {
        format: DocFormat::Ccr,
        records,
        problems: Vec::new(),
        left_out: Vec::new(),
        unreadable: Vec::new(),
        patient_ref: None,
    };
    normalize(
        &doc,
        &dictionary(),
        mappings,
        &Options {
            max_regimen_items: max,
            ..Options::default()
        },
    )
}

fn kinds(r: &Regimen) -> Vec<(Option<usize>, ExceptionKind)> {
    r.flags.iter().map(|f| (f.item, f.kind)).collect()
}

#[test]
fn an_ndc_in_the_dictionary_maps_without_a_flag() {
    let r = run(vec![rec(
        "Medication",
        "1",
        "Prinivil 10",
        &[("NDC", "00006010654")],
    )]);
    assert_eq!(kinds(&r), vec![]);
    let item = &r.items[0];
    assert_eq!(
        item.ndc11.map(|n| n.to_string()).as_deref(),
        Some("00006010654")
    );
    assert_eq!(
        item.product.as_ref().map(|e| e.product.labeler.as_str()),
        Some("Merck")
    );
    assert_eq!(
        item.strength.as_deref(),
        Some("10 mg/1"),
        "strength from the dictionary"
    );
    assert_eq!(item.form.as_deref(), Some("TABLET"));
}

#[test]
fn each_flag_kind_is_raised_by_its_rule() {
    type Row = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        Option<ExceptionKind>,
        &'static str,
    );
    let rows: Vec<Row> = vec![
        (
            "valid NDC absent from the dictionary",
            vec![("NDC", "68180-0513-01")],
            Some(ExceptionKind::UnmappedNdc),
            "not in the drug dictionary",
        ),
        (
            "excluded product",
            vec![("NDC", "0143-1267-01")],
            Some(ExceptionKind::UnmappedNdc),
            "NDC_EXCLUDE_FLAG",
        ),
        (
            "impossible 4-3-2 layout",
            vec![("NDC", "2501-813-16")],
            Some(ExceptionKind::InvalidNdc),
            "4-3-2",
        ),
        (
            "letters in an NDC",
            vec![("ndc", "76013O881M")],
            Some(ExceptionKind::InvalidNdc),
            "character",
        ),
        (
            "product-only code",
            vec![("NDC", "50090-0001")],
            Some(ExceptionKind::InvalidNdc),
            "product code",
        ),
        (
            "bare 10 digits with no reading in the dictionary",
            vec![("NDC", "0264751010")],
            Some(ExceptionKind::InvalidNdc),
            "cannot be placed",
        ),
        (
            "RxNorm only",
            vec![("RxNorm", "197361")],
            Some(ExceptionKind::NonNdcCode),
            "RxNorm 197361",
        ),
        (
            "free text only",
            vec![],
            Some(ExceptionKind::NonNdcCode),
            "free text only",
        ),
        (
            "bare 10 digits with exactly one reading in the dictionary",
            vec![("NDC", "0087606005")],
            None,
            "",
        ),
        (
            "an invalid NDC beside a valid one",
            vec![("NDC", "2501-813-16"), ("NDC", "0087-6060-05")],
            None,
            "",
        ),
    ];
    for (rule, codes, want, needle) in rows {
        let r = run(vec![rec("Medication", "1", "Drug", &codes)]);
        let got: Vec<ExceptionKind> = r.flags.iter().map(|f| f.kind).collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "rule: {rule}");
        if let Some(f) = r.flags.first() {
            assert!(
                f.detail.contains(needle),
                "rule: {rule}: detail {:?} lacks {needle:?}",
                f.detail
            );
            assert_eq!(f.item, Some(0), "rule: {rule}");
        }
    }
}

#[test]
fn a_bare_ten_digit_code_placed_by_the_dictionary_is_marked_inferred() {
    let r = run(vec![rec(
        "Medication",
        "1",
        "Glucophage",
        &[("NDC", "0087606005")],
    )]);
    let item = &r.items[0];
    assert!(item.ndc_inferred);
    assert_eq!(
        item.ndc11.map(|n| n.to_string()).as_deref(),
        Some("00087606005")
    );
    assert_eq!(item.ndc_original.as_deref(), Some("0087606005"));
}

#[test]
fn duplicates_are_flagged_at_their_strictest_level() {
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        Option<ExceptionKind>,
        &'static str,
    );
    let rows: Vec<Row> = vec![
        (
            "same package NDC, other sig",
            "0006-0106-54",
            "00006010654",
            Some(ExceptionKind::Duplicate),
            "same package NDC",
        ),
        (
            "same product, other package",
            "0777-3105-02",
            "0777-3105-30",
            Some(ExceptionKind::Duplicate),
            "same product",
        ),
        (
            "same clinical drug, other labeler",
            "0006-0106-54",
            "0143-9714-01",
            Some(ExceptionKind::Duplicate),
            "another labeler",
        ),
        (
            "same ingredient, other strength",
            "0006-0106-54",
            "0185-0104-01",
            Some(ExceptionKind::TherapeuticDuplicate),
            "another strength",
        ),
        (
            "same ingredient, other route",
            "0006-0106-54",
            "1111-2222-33",
            None,
            "",
        ),
        ("different drugs", "0006-0106-54", "0087-6060-05", None, ""),
        (
            "combination vs its part",
            "0069-2150-30",
            "0006-0106-54",
            None,
            "",
        ),
    ];
    for (rule, a, b, want, needle) in rows {
        let r = run(vec![
            with_sig(rec("Medication", "1", "A", &[("NDC", a)]), "once daily"),
            with_sig(rec("Medication", "2", "B", &[("NDC", b)]), "twice daily"),
        ]);
        assert_eq!(r.items.len(), 2, "rule: {rule}: nothing folds");
        let got: Vec<ExceptionKind> = r.flags.iter().map(|f| f.kind).collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "rule: {rule}");
        if let Some(f) = r.flags.first() {
            assert_eq!(
                (f.item, f.related),
                (Some(1), Some(0)),
                "rule: {rule}: the later item points at the earlier"
            );
            assert!(f.detail.contains(needle), "rule: {rule}: {:?}", f.detail);
        }
    }
}

#[test]
fn two_items_with_the_same_non_ndc_code_are_duplicates() {
    let r = run(vec![
        with_sig(
            rec("Medication", "1", "Amlodipine", &[("RxNorm", "197361")]),
            "daily",
        ),
        with_sig(
            rec("Medication", "2", "Norvasc", &[("RxNorm", "197361")]),
            "twice daily",
        ),
    ]);
    assert_eq!(
        kinds(&r),
        vec![
            (Some(0), ExceptionKind::NonNdcCode),
            (Some(1), ExceptionKind::NonNdcCode),
            (Some(1), ExceptionKind::Duplicate)
        ]
    );
}

#[test]
fn record_level_repeats_fold_into_one_item_listing_every_source() {
    let mut dispense = rec(
        "MedicationDispense",
        "d1",
        "Prozac",
        &[("NDC", "0777-3105-02")],
    );
    dispense.related = vec!["MedicationRequest/r1".to_string()];
    dispense.status = Some("completed".to_string());
    let mut request = rec(
        "MedicationRequest",
        "r1",
        "Prozac",
        &[("NDC", "0777-3105-02"), ("RxNorm", "313989")],
    );
    request.status = Some("active".to_string());
    let refill_a = with_sig(
        rec(
            "MedicationRequest",
            "r2",
            "Glucophage",
            &[("NDC", "0087-6060-05")],
        ),
        "1 tab BID",
    );
    let refill_b = with_sig(
        rec(
            "MedicationRequest",
            "r3",
            "Glucophage",
            &[("NDC", "0087-6060-05")],
        ),
        "1  tab bid",
    );
    let r = run(vec![request, dispense, refill_a, refill_b]);
    assert_eq!(r.items.len(), 2, "{:#?}", r.items);
    assert_eq!(
        kinds(&r),
        vec![],
        "folded repeats are not clinical duplicates"
    );
    let prozac = &r.items[0];
    let ids: Vec<_> = prozac
        .sources
        .iter()
        .map(|s| s.id.clone().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["r1", "d1"]);
    assert_eq!(
        prozac.codes.len(),
        2,
        "codes of every record, de-duplicated"
    );
    assert_eq!(
        prozac.status,
        MedStatus::Active,
        "a request's status wins over its dispense's"
    );
    assert_eq!(
        r.items[1].sources.len(),
        2,
        "refills with the same sig fold"
    );
}

#[test]
fn a_link_folds_records_even_when_their_codes_differ() {
    let request = rec(
        "MedicationRequest",
        "r1",
        "fluoxetine 20 mg",
        &[("RxNorm", "313989")],
    );
    let mut dispense = rec(
        "MedicationDispense",
        "d1",
        "Prozac",
        &[("NDC", "0777-3105-02")],
    );
    dispense.related = vec!["MedicationRequest/r1".to_string()];
    let r = run(vec![request, dispense]);
    assert_eq!(r.items.len(), 1);
    assert_eq!(
        kinds(&r),
        vec![],
        "the dispense's mapped NDC identifies the item"
    );
    assert_eq!(
        r.items[0].ndc11.map(|n| n.to_string()).as_deref(),
        Some("00777310502")
    );
}

#[test]
fn entered_in_error_records_are_left_out_and_reported() {
    let mut bad = rec(
        "MedicationRequest",
        "r9",
        "Glucophage",
        &[("NDC", "0087-6060-05")],
    );
    bad.status = Some("entered-in-error".to_string());
    let r = run(vec![bad]);
    assert!(r.items.is_empty());
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(kinds(&r), vec![(None, ExceptionKind::NoneShared)]);
    assert!(r.flags[0].detail.contains("entered-in-error"));
}

#[test]
fn an_empty_document_raises_none_shared_and_too_many_counts_items() {
    assert_eq!(kinds(&run(vec![])), vec![(None, ExceptionKind::NoneShared)]);
    let many: Vec<MedRecord> = (0..4)
        .map(|i| {
            with_sig(
                rec(
                    "Medication",
                    &i.to_string(),
                    "Glucophage",
                    &[("NDC", "0087-6060-05")],
                ),
                &format!("sig {i}"),
            )
        })
        .collect();
    let r = run_with(many, &CodeMappings::new(), 3);
    assert!(r.flags.iter().any(|f| f.kind == ExceptionKind::TooMany
        && f.item.is_none()
        && f.detail.contains("max_regimen_items = 3")));
}

#[test]
fn a_remembered_mapping_applies_with_its_provenance() {
    let mut mappings = CodeMappings::new();
    let decided = decided("00087606005", "dr.lee", Some(7));
    mappings.insert(
        ("Multum".to_string(), "d00015".to_string()),
        decided.clone(),
    );
    let text_key = mapping_keys(
        &[],
        &[],
        Stated {
            name: Some("Metformin tablets"),
            ..Stated::default()
        },
    )
    .remove(0);
    assert_eq!(
        text_key,
        ("text".to_string(), "metformin tablets||".to_string())
    );
    mappings.insert(text_key, decided.clone());
    let r = run_with(
        vec![
            rec("Medication", "1", "Glucophage", &[("Multum", "d00015")]),
            with_sig(rec("Medication", "2", "  METFORMIN tablets ", &[]), "other"),
        ],
        &mappings,
        50,
    );
    assert_eq!(r.items[0].mapping.as_ref(), Some(&decided));
    assert!(r.items[0].product.is_some());
    assert_eq!(
        r.items[1].mapping.as_ref(),
        Some(&decided),
        "free text maps by its name"
    );
    // The two now name the same package: a clinician sees the duplicate.
    assert_eq!(kinds(&r), vec![(Some(1), ExceptionKind::Duplicate)]);
}

#[test]
fn an_unresolved_reference_is_a_non_ndc_item_with_its_reason() {
    let mut r1 = rec("MedicationRequest", "r1", "Warfarin 5 MG Oral Tablet", &[]);
    r1.problems.push(Problem {
        kind: ProblemKind::UnresolvedReference,
        detail: "medicationReference Medication/does-not-exist resolves to nothing in the document"
            .to_string(),
    });
    let r = run(vec![r1]);
    assert_eq!(kinds(&r), vec![(Some(0), ExceptionKind::NonNdcCode)]);
    assert!(r.flags[0].detail.contains("does-not-exist"));
}

#[test]
fn duplicate_detection_is_linear_in_items() {
    // 20,000 distinct unmapped NDCs: a quadratic pass would take minutes.
    let records: Vec<MedRecord> = (0..20_000u32)
        .map(|i| {
            rec(
                "Medication",
                &i.to_string(),
                "Drug",
                &[(
                    "NDC",
                    &format!("5{:04}-{:04}-11", i % 10_000, 1 + i / 10_000),
                )],
            )
        })
        .collect();
    let r = run_with(records, &CodeMappings::new(), 100_000);
    assert_eq!(r.items.len(), 20_000);
    assert!(r.flags.iter().all(|f| f.kind == ExceptionKind::UnmappedNdc));
}

#[test]
fn a_compound_is_not_mapped_to_one_of_its_ingredients() {
    // HL7's TPN example: three NDC-coded ingredients, no code of its own.
    let mut tpn = rec("MedicationAdministration", "a1", "TPN", &[]);
    tpn.name = None;
    tpn.ingredient_codes = ["0087-6060-05", "0006-0106-54", "68180-0513-01"]
        .iter()
        .map(|c| Code::new("http://hl7.org/fhir/sid/ndc", c, None))
        .collect();
    let r = run(vec![tpn.clone()]);
    assert_eq!(kinds(&r), vec![(Some(0), ExceptionKind::NonNdcCode)]);
    assert!(
        r.items[0].ndc11.is_none(),
        "no ingredient's NDC becomes the item's"
    );
    assert!(
        r.flags[0].detail.contains("3 ingredient(s)") && r.flags[0].detail.contains("0087-6060-05"),
        "{}",
        r.flags[0].detail
    );
    assert_eq!(r.items[0].ingredient_codes.len(), 3);

    // A clinician's decision for the compound is remembered by its ingredients.
    let key = mapping_keys(&[], &tpn.ingredient_codes, Stated::default()).remove(0);
    assert_eq!(key.0, "ingredients");
    let mut mappings = CodeMappings::new();
    mappings.insert(key, decided("00087606005", "pharmacist", None));
    let r = run_with(vec![tpn], &mappings, 50);
    assert_eq!(kinds(&r), vec![]);
    assert_eq!(
        r.items[0].mapping.as_ref().map(|m| m.decided_by.as_str()),
        Some("pharmacist")
    );
}

#[test]
fn a_replaced_order_for_another_strength_is_not_folded_away() {
    // The reviewer's case: a stopped order for 10 mg, then an active order
    // for 40 mg naming it as priorPrescription.
    let mut old = with_sig(
        rec(
            "MedicationRequest",
            "old",
            "lisinopril 10 mg",
            &[("NDC", "0006-0106-54")],
        ),
        "daily",
    );
    old.status = Some("stopped".to_string());
    let mut new = with_sig(
        rec(
            "MedicationRequest",
            "new",
            "lisinopril 40 mg",
            &[("NDC", "0185-0104-01")],
        ),
        "daily",
    );
    new.status = Some("active".to_string());
    new.related = vec!["MedicationRequest/old".to_string()];
    let r = run(vec![old, new]);
    assert_eq!(r.items.len(), 2, "two drugs stay two items");
    assert_eq!(
        kinds(&r),
        vec![(Some(1), ExceptionKind::TherapeuticDuplicate)]
    );
    assert_eq!(r.items[1].status, MedStatus::Active);
}

#[test]
fn free_text_drugs_of_different_strengths_do_not_fold() {
    let strength = |v: &str| crate::parse::Strength {
        value: v.to_string(),
        unit: Some("mg".to_string()),
    };
    let mut a = rec("Medication", "1", "Lisinopril", &[]);
    a.strengths = vec![strength("10")];
    let mut b = rec("Medication", "2", "Lisinopril", &[]);
    b.strengths = vec![strength("40")];
    let r = run(vec![a.clone(), b]);
    assert_eq!(r.items.len(), 2);
    let r = run(vec![a.clone(), a]);
    assert_eq!(
        r.items.len(),
        1,
        "the same free text, strength and sig is one drug listed twice"
    );
}

#[test]
fn a_folded_item_shows_its_most_current_record() {
    let mut done = with_sig(
        rec(
            "MedicationRequest",
            "r1",
            "Glucophage",
            &[("NDC", "0087-6060-05")],
        ),
        "1 tab BID",
    );
    done.status = Some("completed".to_string());
    done.stop = Some("2024-06-30".to_string());
    let mut current = with_sig(
        rec(
            "MedicationRequest",
            "r2",
            "Glucophage",
            &[("NDC", "0087-6060-05")],
        ),
        "1 tab BID",
    );
    current.status = Some("active".to_string());
    let r = run(vec![done, current]);
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].status, MedStatus::Active);
    assert_eq!(
        r.items[0].stop, None,
        "the stop date belongs to the completed refill"
    );
    assert_eq!(r.items[0].status_original.as_deref(), Some("active"));
}

#[test]
fn an_own_ndc_in_the_dictionary_wins_over_a_remembered_mapping() {
    // A clinician once mapped RxNorm 29046 (lisinopril, ingredient level) to
    // Prinivil 10 mg; a later entry carries that code and its own 40 mg NDC.
    let mut mappings = CodeMappings::new();
    mappings.insert(
        ("RxNorm".to_string(), "29046".to_string()),
        decided("00006010654", "dr.lee", None),
    );
    let r = run_with(
        vec![rec(
            "MedicationRequest",
            "r",
            "lisinopril 40 mg",
            &[("NDC", "0185-0104-01"), ("RxNorm", "29046")],
        )],
        &mappings,
        50,
    );
    assert_eq!(
        r.items[0].ndc11.map(|n| n.to_string()).as_deref(),
        Some("00185010401")
    );
    assert!(r.items[0].mapping.is_none());
}

#[test]
fn decisions_are_remembered_under_the_codes_that_caused_them() {
    let codes = vec![
        Code::new("NDC", "68180-0513-01", None),
        Code::new("RxNorm", "979492", None),
    ];
    assert_eq!(
        decision_keys(
            ExceptionKind::UnmappedNdc,
            &codes,
            &[],
            Stated {
                name: Some("Losartan"),
                ..Stated::default()
            }
        ),
        vec![("NDC".to_string(), "68180-0513-01".to_string())]
    );
    assert_eq!(
        decision_keys(
            ExceptionKind::NonNdcCode,
            &codes[1..],
            &[],
            Stated {
                name: Some("Losartan"),
                ..Stated::default()
            }
        ),
        vec![("RxNorm".to_string(), "979492".to_string())]
    );
    assert_eq!(
        decision_keys(
            ExceptionKind::NonNdcCode,
            &[],
            &[],
            Stated {
                name: Some(" Losartan "),
                strength: Some("50 MG"),
                form: Some("Tablet")
            }
        ),
        vec![("text".to_string(), "losartan|50 mg|tablet".to_string())]
    );
}

#[test]
fn a_document_naming_several_patients_raises_identity_mismatch() {
    let mut doc = ParsedDocument {
        format: DocFormat::Ccr,
        records: vec![rec(
            "Medication",
            "1",
            "Glucophage",
            &[("NDC", "0087-6060-05")],
        )],
        problems: Vec::new(),
        left_out: Vec::new(),
        unreadable: Vec::new(),
        patient_ref: Some("A".to_string()),
    };
    let clean = normalize(
        &doc,
        &dictionary(),
        &CodeMappings::new(),
        &Options {
            max_regimen_items: 50,
            ..Options::default()
        },
    );
    assert_eq!(kinds(&clean), vec![]);
    doc.problems.push(Problem {
        kind: ProblemKind::SeveralPatients,
        detail: "the feed holds CCRs of 2 patients (A, B)".to_string(),
    });
    let r = normalize(
        &doc,
        &dictionary(),
        &CodeMappings::new(),
        &Options {
            max_regimen_items: 50,
            ..Options::default()
        },
    );
    assert_eq!(kinds(&r), vec![(None, ExceptionKind::IdentityMismatch)]);
    assert!(r.flags[0].detail.contains("2 patients"));
}

#[test]
fn linked_records_of_other_strengths_do_not_meet_through_an_uncoded_one() {
    // The second review's case: a text-only request, and two dispenses of
    // other strengths that both name it.
    let request = rec("MedicationRequest", "req", "lisinopril", &[]);
    let mut ten = rec(
        "MedicationDispense",
        "d10",
        "Prinivil 10",
        &[("NDC", "0006-0106-54")],
    );
    ten.related = vec!["MedicationRequest/req".to_string()];
    let mut forty = rec(
        "MedicationDispense",
        "d40",
        "lisinopril 40",
        &[("NDC", "0185-0104-01")],
    );
    forty.related = vec!["MedicationRequest/req".to_string()];
    let r = run(vec![request, ten, forty]);
    assert_eq!(
        r.items.len(),
        2,
        "{:#?}",
        r.items.iter().map(|i| &i.sources).collect::<Vec<_>>()
    );
    assert_eq!(
        kinds(&r),
        vec![(Some(1), ExceptionKind::TherapeuticDuplicate)]
    );
}

#[test]
fn a_decision_for_free_text_does_not_reach_another_strength() {
    let strength = |v: &str| crate::parse::Strength {
        value: v.to_string(),
        unit: Some("mg".to_string()),
    };
    let mut ten = rec("MedicationStatement", "s10", "Lisinopril", &[]);
    ten.strengths = vec![strength("10")];
    let mut forty = rec("MedicationStatement", "s40", "Lisinopril", &[]);
    forty.strengths = vec![strength("40")];
    let stated = stated_strength(&ten.strengths);
    let key = mapping_keys(
        &[],
        &[],
        Stated {
            name: Some("Lisinopril"),
            strength: stated.as_deref(),
            form: None,
        },
    )
    .remove(0);
    assert_eq!(key.1, "lisinopril|10 mg|");
    let mut mappings = CodeMappings::new();
    mappings.insert(key, decided("00006010654", "dr.lee", None));
    let r = run_with(vec![ten, forty], &mappings, 50);
    assert_eq!(r.items.len(), 2, "10 mg and 40 mg stay two items");
    assert!(
        r.items[0].mapping.is_some(),
        "the 10 mg entry gets the decision"
    );
    assert!(
        r.items[1].mapping.is_none() && r.items[1].ndc11.is_none(),
        "the 40 mg entry does not"
    );
    assert_eq!(kinds(&r), vec![(Some(1), ExceptionKind::NonNdcCode)]);
}

// ---- claims (dispense evidence) ----

/// A pharmacy claim line as the FHIR reader gives it.
fn claim(id: &str, ndc: &str, filled: &str, days: &str) -> MedRecord {
    MedRecord {
        source: Some(SourceRef {
            kind: "ExplanationOfBenefit".to_string(),
            id: Some(id.to_string()),
        }),
        codes: vec![Code::new("http://hl7.org/fhir/sid/ndc", ndc, None)],
        status: Some("active".to_string()),
        prescribed: Some(filled.to_string()),
        evidence: crate::parse::Evidence::Claim,
        days_supply: Some(days.to_string()),
        quantity: Some(format!("{days} tablet")),
        dispenser: Some("Main Street Pharmacy".to_string()),
        ..MedRecord::default()
    }
}

fn run_on(records: Vec<MedRecord>, today: &str, after: u32) -> Regimen {
    let doc = ParsedDocument {
        format: DocFormat::FhirJson,
        records,
        problems: Vec::new(),
        left_out: Vec::new(),
        unreadable: Vec::new(),
        patient_ref: None,
    };
    let options = Options {
        claims_completed_after: after,
        today: chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d").ok(),
        ..Options::default()
    };
    normalize(&doc, &dictionary(), &CodeMappings::new(), &options)
}

#[test]
fn a_claim_only_drug_is_dispensed_until_its_supply_has_long_ended() {
    // Filled 2026-10-01 for 30 days: the supply ends 2026-10-31.
    let rows: &[(&str, &str, u32, MedStatus)] = &[
        ("within the supply", "2026-10-15", 30, MedStatus::Dispensed),
        (
            "ended, not long ago",
            "2026-11-30",
            30,
            MedStatus::Dispensed,
        ),
        (
            "ended more than 30 days ago",
            "2026-12-01",
            30,
            MedStatus::Completed,
        ),
        ("a shorter setting", "2026-11-02", 1, MedStatus::Completed),
        (
            "no day given: never completed",
            "",
            30,
            MedStatus::Dispensed,
        ),
    ];
    for (rule, today, after, want) in rows {
        let r = run_on(
            vec![claim("eob-1#1", "00006010654", "2026-10-01", "30")],
            today,
            *after,
        );
        assert_eq!(r.items.len(), 1, "{rule}");
        let item = &r.items[0];
        assert_eq!(item.status, *want, "{rule}");
        assert_eq!(item.evidence, crate::parse::Evidence::Claim, "{rule}");
        assert_eq!(
            item.sig.as_deref(),
            Some("last filled on 2026-10-01 for 30 days"),
            "{rule}"
        );
        assert_eq!(item.prescribed.as_deref(), Some("2026-10-01"), "{rule}");
        assert_eq!(
            item.status_original.as_deref(),
            Some("claim active"),
            "{rule}"
        );
        assert_eq!(item.days_supply.as_deref(), Some("30"), "{rule}");
        assert_eq!(
            item.dispenser.as_deref(),
            Some("Main Street Pharmacy"),
            "{rule}"
        );
        assert!(kinds(&r).is_empty(), "{rule}: {:?}", r.flags);
    }
}

#[test]
fn fills_of_one_drug_fold_and_the_latest_speaks() {
    let r = run_on(
        vec![
            claim("eob-1#1", "00006010654", "2026-07-01", "30"),
            claim("eob-2#1", "00006010654", "2026-10-01", "90"),
        ],
        "2026-11-01",
        30,
    );
    assert_eq!(r.items.len(), 1, "{:?}", r.items);
    let item = &r.items[0];
    assert_eq!(item.status, MedStatus::Dispensed);
    assert_eq!(
        item.sig.as_deref(),
        Some("last filled on 2026-10-01 for 90 days")
    );
    assert_eq!(item.quantity.as_deref(), Some("90 tablet"));
    assert_eq!(item.sources.len(), 2);
}

#[test]
fn a_claim_never_makes_a_drug_active_and_never_overrules_a_request() {
    // One row per status a request may have: the item shows the request's.
    for (request_status, want) in [
        ("active", MedStatus::Active),
        ("stopped", MedStatus::Stopped),
        ("completed", MedStatus::Completed),
    ] {
        let mut request = with_sig(
            rec(
                "MedicationRequest",
                "rx1",
                "Prinivil",
                &[("NDC", "0006-0106-54")],
            ),
            "1 tablet daily",
        );
        request.status = Some(request_status.to_string());
        request.prescribed = Some("2026-01-05".to_string());
        let r = run_on(
            vec![claim("eob-1#1", "00006010654", "2026-10-01", "30"), request],
            "2026-10-15",
            30,
        );
        assert_eq!(
            r.items.len(),
            1,
            "{request_status}: the claim folds with the request"
        );
        let item = &r.items[0];
        assert_eq!(item.status, want, "{request_status}");
        assert_eq!(item.status_original.as_deref(), Some(request_status));
        assert_eq!(item.sig.as_deref(), Some("1 tablet daily"));
        assert_eq!(item.prescribed.as_deref(), Some("2026-01-05"));
        assert_eq!(item.evidence, crate::parse::Evidence::Record);
        assert_eq!(
            item.days_supply.as_deref(),
            Some("30"),
            "the fill is still shown"
        );
    }
}

#[test]
fn claims_take_part_in_duplicate_detection() {
    // Lisinopril 10 mg from two labelers: the claim's item and the request's.
    let request = with_sig(
        rec(
            "MedicationRequest",
            "rx1",
            "Prinivil",
            &[("NDC", "0006-0106-54")],
        ),
        "1 tablet daily",
    );
    let r = run_on(
        vec![request, claim("eob-1#1", "00143971401", "2026-10-01", "30")],
        "2026-10-15",
        30,
    );
    assert_eq!(r.items.len(), 2);
    assert!(
        r.flags.iter().any(|f| f.kind == ExceptionKind::Duplicate),
        "{:?}",
        r.flags
    );
}

#[test]
fn placeholder_ndcs_on_claims_are_invalid_never_mapped() {
    for placeholder in [
        "00000000000",
        "000000000",
        "0000000000",
        "00000-0000-00",
        "1234567",
    ] {
        let r = run_on(
            vec![claim("eob-2#1", placeholder, "2026-10-01", "30")],
            "2026-10-15",
            30,
        );
        assert_eq!(r.items.len(), 1, "{placeholder}");
        assert_eq!(r.items[0].ndc11, None, "{placeholder}");
        assert!(r.items[0].product.is_none(), "{placeholder}");
        assert_eq!(
            kinds(&r),
            vec![(Some(0), ExceptionKind::InvalidNdc)],
            "{placeholder}"
        );
    }
}

#[test]
fn a_searchset_of_claims_is_never_none_shared() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/fhir");
    for file in [
        "eob-carin-searchset.json",
        "eob-carin-searchset.xml",
        "eob-single.json",
        "eob-bb2-stu3-pde.json",
        "eob-dstu2.json",
    ] {
        let bytes = std::fs::read(format!("{dir}/{file}")).unwrap_or_else(|e| panic!("{e}"));
        let format = if file.ends_with(".xml") {
            DocFormat::FhirXml
        } else {
            DocFormat::FhirJson
        };
        let doc = crate::parse::parse(&bytes, format).unwrap_or_else(|e| panic!("{file}: {e}"));
        let r = normalize(
            &doc,
            &dictionary(),
            &CodeMappings::new(),
            &Options::default(),
        );
        assert!(!r.items.is_empty(), "{file}");
        assert!(
            r.flags.iter().all(|f| f.kind != ExceptionKind::NoneShared),
            "{file}: {:?}",
            r.flags
        );
        assert!(
            r.items.iter().all(|i| i.status == MedStatus::Dispensed),
            "{file}"
        );
    }
    // Claims that name no drug at all: the queue says what the document held.
    let only_visits = br#"{"resourceType":"ExplanationOfBenefit","id":"v1","type":{"coding":[{"code":"professional"}]},"item":[{"sequence":1,"productOrService":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"99213"}]}}]}"#;
    let doc =
        crate::parse::parse(only_visits, DocFormat::FhirJson).unwrap_or_else(|e| panic!("{e}"));
    let r = normalize(
        &doc,
        &dictionary(),
        &CodeMappings::new(),
        &Options::default(),
    );
    let none = r.flags.iter().find(|f| f.kind == ExceptionKind::NoneShared);
    assert!(
        none.is_some_and(|f| f
            .detail
            .contains("professional claim line without a drug code (CPT 99213)")
            && !f.detail.contains("shared none")),
        "{:?}",
        r.flags
    );
}

#[test]
fn a_cancelled_claim_is_not_the_latest_fill() {
    let mut reversed = claim("eob-9#1", "00006010654", "2026-10-20", "90");
    reversed.status = Some("cancelled".to_string());
    let r = run_on(
        vec![
            claim("eob-1#1", "00006010654", "2026-10-01", "30"),
            reversed,
        ],
        "2026-10-25",
        30,
    );
    assert_eq!(r.items.len(), 1);
    let item = &r.items[0];
    assert_eq!(item.status, MedStatus::Dispensed);
    assert_eq!(
        item.sig.as_deref(),
        Some("last filled on 2026-10-01 for 30 days")
    );
    assert_eq!(item.status_original.as_deref(), Some("claim active"));
    // Alone, a reversed fill says so.
    let mut alone = claim("eob-9#1", "00006010654", "2026-10-20", "90");
    alone.status = Some("cancelled".to_string());
    let r = run_on(vec![alone], "2026-10-25", 30);
    assert_eq!(r.items[0].status, MedStatus::Cancelled);
}
