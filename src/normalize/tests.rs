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
        epc: Vec::new(),
    }
}

fn package(product_id: &str, hyphenated: &str) -> Package {
    let n = match crate::domain::ndc::parse(hyphenated).map(|p| p.reading) {
        Ok(crate::domain::NdcReading::Exact(n)) => n.to_ndc12(),
        Ok(crate::domain::NdcReading::NewLabeler(n)) => n,
        other => panic!("test package {hyphenated}: {other:?}"),
    };
    Package {
        ndc: n,
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
        // A new 6-digit labeler under the FDA's 12-digit format.
        product(
            "P12",
            "712345-0101",
            "Zolpidem",
            "Newco",
            &[("ZOLPIDEM TARTRATE", "10")],
            "TABLET",
            "ORAL",
        ),
        excluded,
    ];
    let packages = vec![
        package("P12", "712345-0101-01"),
        package("P12", "712345-0101-30"),
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
fn twelve_digit_ndcs_resolve_and_items_keep_the_written_form() {
    // (code as written, the NDC-11 read, the labeler mapped to, the flag and
    // a phrase of its detail)
    type Row = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<(ExceptionKind, &'static str)>,
    );
    let new_labeler = "is a 12-digit NDC with a new 6-digit labeler (812345), which has no \
                       11-digit form, and the loaded drug dictionary does not hold it";
    let rows: &[Row] = &[
        // A leading-zero labeler is the same product as its 11-digit form.
        ("000006-0106-54", Some("00006010654"), Some("Merck"), None),
        ("000006010654", Some("00006010654"), Some("Merck"), None),
        (
            "068180-0513-01",
            Some("68180051301"),
            None,
            Some((ExceptionKind::UnmappedNdc, "(11-digit 68180-0513-01)")),
        ),
        // A new 6-digit labeler the dictionary holds maps by its 12 digits.
        ("712345-0101-01", None, Some("Newco"), None),
        ("712345010101", None, Some("Newco"), None),
        // One it does not hold is unmapped (a valid NDC), never invalid.
        (
            "812345-0101-01",
            None,
            None,
            Some((ExceptionKind::UnmappedNdc, new_labeler)),
        ),
        (
            "812345010101",
            None,
            None,
            Some((ExceptionKind::UnmappedNdc, "no 11-digit form")),
        ),
    ];
    for (code, ndc11, labeler, flag) in rows {
        let r = run(vec![rec("Medication", "1", "Drug", &[("NDC", code)])]);
        let item = &r.items[0];
        assert_eq!(
            item.ndc_original.as_deref(),
            Some(*code),
            "row {code}: the item shows the format the document used"
        );
        assert_eq!(
            item.ndc11.map(|n| n.to_string()).as_deref(),
            *ndc11,
            "row {code}"
        );
        assert_eq!(
            item.product.as_ref().map(|e| e.product.labeler.as_str()),
            *labeler,
            "row {code}"
        );
        let got: Vec<(ExceptionKind, &str)> = r
            .flags
            .iter()
            .map(|f| (f.kind, f.detail.as_str()))
            .collect();
        match flag {
            None => assert_eq!(got, vec![], "row {code}"),
            Some((kind, needle)) => {
                assert!(
                    matches!(got.as_slice(), [(k, d)] if k == kind && d.contains(needle)),
                    "row {code}: {got:?}"
                );
            }
        }
    }
}

#[test]
fn the_twelve_and_eleven_digit_forms_of_one_package_are_one_drug() {
    let run_pair = |a: &str, b: &str| {
        let r = run(vec![
            rec("Medication", "1", "Prinivil", &[("NDC", a)]),
            rec("Medication", "2", "Prinivil", &[("NDC", b)]),
        ]);
        (r.items.len(), kinds(&r))
    };
    let eleven = run_pair("00006-0106-54", "00006010654");
    assert_eq!(run_pair("00006-0106-54", "000006-0106-54"), eleven);
    assert_eq!(run_pair("00006010654", "000006010654"), eleven);
    // Two records of one new-labeler package: the same as two of one NDC-11.
    let twelve = {
        let r = run(vec![
            rec("Medication", "1", "Zolpidem", &[("NDC", "712345-0101-01")]),
            rec("Medication", "2", "Zolpidem", &[("NDC", "712345010101")]),
        ]);
        (r.items.len(), kinds(&r))
    };
    assert_eq!(twelve, eleven);
    // And so are two records of one unmapped new-labeler package.
    let unmapped = |a: &str, b: &str| {
        let r = run(vec![
            rec("Medication", "1", "Drug", &[("NDC", a)]),
            rec("Medication", "2", "Drug", &[("NDC", b)]),
        ]);
        (r.items.len(), kinds(&r))
    };
    assert_eq!(
        unmapped("812345-0101-01", "812345010101"),
        unmapped("68180-0513-01", "68180051301")
    );
}

#[test]
fn a_new_labelers_packages_are_duplicates_by_their_twelve_digit_keys() {
    // Another package of the same product, with another sig so the records
    // stay two items: a duplicate at the product level.
    let r = run(vec![
        with_sig(
            rec("Medication", "1", "Zolpidem", &[("NDC", "712345-0101-01")]),
            "1 at night",
        ),
        with_sig(
            rec("Medication", "2", "Zolpidem", &[("NDC", "712345-0101-30")]),
            "2 at night",
        ),
    ]);
    assert_eq!(kinds(&r), vec![(Some(1), ExceptionKind::Duplicate)]);
    let detail = &r.flags[0].detail;
    assert!(
        detail.contains("same product (labeler+product 7123450101)")
            && detail.contains("712345-0101-30 vs 712345-0101-01"),
        "{detail}"
    );
}

#[test]
fn the_dictionary_is_asked_for_every_twelve_digit_key() {
    let doc = ParsedDocument {
        format: DocFormat::Ccr,
        records: vec![rec(
            "Medication",
            "1",
            "Drug",
            &[
                ("NDC", "000006-0106-54"),
                ("NDC", "00006010654"),
                ("NDC", "812345010101"),
            ],
        )],
        problems: Vec::new(),
        left_out: Vec::new(),
        unreadable: Vec::new(),
        patient_ref: None,
    };
    let keys: Vec<String> = ndcs_to_look_up(&doc, &CodeMappings::new())
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(keys, ["000006010654", "812345010101"]);
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

fn doc_of(records: Vec<MedRecord>) -> ParsedDocument {
    ParsedDocument {
        format: DocFormat::FhirJson,
        records,
        problems: Vec::new(),
        left_out: Vec::new(),
        unreadable: Vec::new(),
        patient_ref: None,
    }
}

fn left(kind: &str, id: &str, reason: &str) -> crate::parse::LeftOut {
    crate::parse::LeftOut {
        source: Some(SourceRef {
            kind: kind.to_string(),
            id: Some(id.to_string()),
        }),
        reason: reason.to_string(),
    }
}

#[test]
fn an_unreadable_record_is_an_exception_and_a_skipped_entry() {
    let mut doc = doc_of(vec![rec(
        "MedicationRequest",
        "1",
        "Lipitor",
        &[("NDC", "0071-0155-23")],
    )]);
    doc.unreadable.push(crate::parse::UnreadableRecord {
        source: Some(SourceRef {
            kind: "MedicationRequest".into(),
            id: Some("w".into()),
        }),
        at: Some(crate::parse::Position { line: 3, column: 5 }),
        entry: Some(1),
        reason: "invalid type: integer `20240101`, expected a string at 3:60".into(),
        excerpt: "{...}".into(),
    });
    let r = normalize(
        &doc,
        &dictionary(),
        &CodeMappings::new(),
        &Options::default(),
    );
    assert_eq!(r.items.len(), 1);
    let flag = r
        .flags
        .iter()
        .find(|f| f.kind == ExceptionKind::UnreadableRecord)
        .expect("unreadable_record");
    assert_eq!((flag.item, flag.record), (None, Some(0)));
    assert!(
        flag.detail
            .starts_with("MedicationRequest/w (entry 2, at 3:5) could not be read: invalid type"),
        "{}",
        flag.detail
    );
    assert_eq!(r.skipped.len(), 1);
    assert!(
        r.skipped[0]
            .reason
            .starts_with("could not be read: invalid type")
    );
    // A document whose only record could not be read is not "none shared".
    doc.records.clear();
    let r = normalize(
        &doc,
        &dictionary(),
        &CodeMappings::new(),
        &Options::default(),
    );
    assert_eq!(kinds(&r), vec![(None, ExceptionKind::UnreadableRecord)]);
}

#[test]
fn none_shared_says_what_the_document_held() {
    // (resources left out as (type, id), entered-in-error records, what the detail says)
    type Row<'a> = (&'a [(&'a str, &'a str)], usize, &'a str);
    let rows: &[Row] = &[
        (
            &[],
            0,
            "the document lists no medications (the patient shared none)",
        ),
        (
            &[
                ("Patient", "p"),
                ("Observation", "o1"),
                ("Observation", "o2"),
            ],
            0,
            "it held 1 Patient, 2 Observation, none of them",
        ),
        (
            &[
                ("ExplanationOfBenefit", "c1"),
                ("ExplanationOfBenefit", "c1"),
                ("ExplanationOfBenefit", "c2"),
            ],
            0,
            "it held 2 ExplanationOfBenefit,",
        ),
        (&[], 2, "it held 2 entered-in-error record(s)"),
    ];
    for (held, entered_in_error, want) in rows {
        let mut records = Vec::new();
        for i in 0..*entered_in_error {
            let mut r = rec("MedicationRequest", &i.to_string(), "x", &[]);
            r.status = Some("entered-in-error".to_string());
            records.push(r);
        }
        let mut doc = doc_of(records);
        doc.left_out = held
            .iter()
            .map(|(k, id)| left(k, id, "a resource that is not medication evidence"))
            .collect();
        let r = normalize(
            &doc,
            &dictionary(),
            &CodeMappings::new(),
            &Options::default(),
        );
        let flag = r
            .flags
            .iter()
            .find(|f| f.kind == ExceptionKind::NoneShared)
            .unwrap_or_else(|| panic!("{want}: no none_shared"));
        assert!(flag.detail.contains(want), "{want}: {}", flag.detail);
        assert_eq!(r.skipped.len(), held.len() + entered_in_error, "{want}");
    }
}

#[test]
fn everything_left_out_is_listed_as_skipped_with_its_reason() {
    let mut doc = doc_of(vec![rec(
        "MedicationRequest",
        "1",
        "Lipitor",
        &[("NDC", "0071-0155-23")],
    )]);
    doc.left_out = vec![
        left(
            "Patient",
            "p",
            "a Patient resource is not medication evidence",
        ),
        left(
            "Medication",
            "m",
            "an included Medication (search.mode include) that no record references",
        ),
    ];
    let r = normalize(
        &doc,
        &dictionary(),
        &CodeMappings::new(),
        &Options::default(),
    );
    let reasons: Vec<(&str, &str)> = r
        .skipped
        .iter()
        .map(|s| {
            (
                s.source
                    .as_ref()
                    .and_then(|s| s.id.as_deref())
                    .unwrap_or(""),
                s.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("p", "a Patient resource is not medication evidence"),
            (
                "m",
                "an included Medication (search.mode include) that no record references"
            ),
        ]
    );
    assert!(!r.flags.iter().any(|f| f.kind == ExceptionKind::NoneShared));
}

/// Real FDA products (NDC directory snapshot of 2019-04-29) with their
/// Established Pharmacologic Classes as its PHARM_CLASSES column gives them.
fn class_dictionary() -> MemoryDictionary {
    const STATIN: &str = "HMG-CoA Reductase Inhibitor [EPC]";
    const ACE: &str = "Angiotensin Converting Enzyme Inhibitor [EPC]";
    const DHP: &str = "Dihydropyridine Calcium Channel Blocker [EPC]";
    const NSAID: &str = "Nonsteroidal Anti-inflammatory Drug [EPC]";
    const VITAMIN_D: &str = "Vitamin D [EPC]";
    // (id, PRODUCTNDC, name, ingredients, form, route, classes)
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
        &'static [&'static str],
    );
    let rows: &[Row] = &[
        (
            "C1",
            "0071-0155",
            "Lipitor",
            &[("ATORVASTATIN CALCIUM TRIHYDRATE", "10")],
            "TABLET, FILM COATED",
            "ORAL",
            &[STATIN],
        ),
        (
            "C2",
            "0006-0735",
            "Zocor",
            &[("SIMVASTATIN", "10")],
            "TABLET, FILM COATED",
            "ORAL",
            &[STATIN],
        ),
        (
            "C3",
            "0006-0106",
            "Prinivil",
            &[("LISINOPRIL", "10")],
            "TABLET",
            "ORAL",
            &[ACE],
        ),
        (
            "C4",
            "0093-0026",
            "Enalapril Maleate",
            &[("ENALAPRIL MALEATE", "2.5")],
            "TABLET",
            "ORAL",
            &[ACE],
        ),
        (
            "C5",
            "0078-0364",
            "Lotrel",
            &[
                ("AMLODIPINE BESYLATE", "10"),
                ("BENAZEPRIL HYDROCHLORIDE", "20"),
            ],
            "CAPSULE",
            "ORAL",
            &[DHP, ACE],
        ),
        (
            "C6",
            "0069-2600",
            "Procardia",
            &[("NIFEDIPINE", "10")],
            "CAPSULE",
            "ORAL",
            &[DHP],
        ),
        (
            "C7",
            "59088-090",
            "DermacinRx PureFolix",
            &[("FOLIC ACID", "1"), ("VITAMIN D", "125")],
            "TABLET",
            "ORAL",
            &[VITAMIN_D],
        ),
        (
            "C8",
            "52796-172",
            "Floriva",
            &[("CHOLECALCIFEROL", "400"), ("SODIUM FLUORIDE", ".25")],
            "LIQUID",
            "ORAL",
            &[VITAMIN_D],
        ),
        (
            "C9",
            "35356-187",
            "Voltaren",
            &[("DICLOFENAC SODIUM", "10")],
            "GEL",
            "TOPICAL",
            &[NSAID],
        ),
        (
            "C10",
            "0904-5855",
            "Ibuprofen",
            &[("IBUPROFEN", "800")],
            "TABLET, FILM COATED",
            "ORAL",
            &[NSAID],
        ),
        (
            "C11",
            "0338-0069",
            "Ketorolac Tromethamine",
            &[("KETOROLAC TROMETHAMINE", "15")],
            "INJECTION, SOLUTION",
            "INTRAMUSCULAR; INTRAVENOUS",
            &[NSAID, "Cyclooxygenase Inhibitor [EPC]"],
        ),
        (
            "C12",
            "66220-287",
            "Caldolor",
            &[("IBUPROFEN", "800")],
            "INJECTION",
            "INTRAVENOUS",
            &[NSAID],
        ),
        (
            "C13",
            "0006-0207",
            "Prinivil",
            &[("LISINOPRIL", "20")],
            "TABLET",
            "ORAL",
            &[ACE],
        ),
    ];
    let products: Vec<Product> = rows
        .iter()
        .map(
            |(id, ndc, name, ingredients, form, route, classes)| Product {
                epc: classes.iter().map(|c| c.to_string()).collect(),
                ..product(id, ndc, name, "FDA", ingredients, form, route)
            },
        )
        .collect();
    let packages: Vec<Package> = [
        ("C1", "0071-0155-23"),
        ("C2", "0006-0735-54"),
        ("C3", "0006-0106-54"),
        ("C4", "0093-0026-01"),
        ("C5", "0078-0364-05"),
        ("C6", "0069-2600-66"),
        ("C7", "59088-090-54"),
        ("C8", "52796-172-50"),
        ("C9", "35356-187-00"),
        ("C10", "0904-5855-40"),
        ("C11", "0338-0069-10"),
        ("C12", "66220-287-08"),
        ("C13", "0006-0207-54"),
    ]
    .iter()
    .map(|(id, ndc)| package(id, ndc))
    .collect();
    MemoryDictionary::new(&products, &packages)
        .with_snapshot(Some("fda-2019 loaded 2026-12-06T01:00:00.000Z".to_string()))
}

/// Normalizes one record per NDC (named after it) against `class_dictionary`.
fn run_classes(ndcs: &[&str], exclusions: Option<Vec<String>>) -> Regimen {
    let records = ndcs
        .iter()
        .enumerate()
        .map(|(i, ndc)| rec("Medication", &i.to_string(), ndc, &[("NDC", ndc)]))
        .collect();
    let doc = ParsedDocument {
        format: DocFormat::Ccr,
        records,
        problems: Vec::new(),
        left_out: Vec::new(),
        unreadable: Vec::new(),
        patient_ref: None,
    };
    let defaults = Options::default();
    let options = Options {
        therapeutic_class_exclusions: exclusions
            .unwrap_or(defaults.therapeutic_class_exclusions.clone()),
        ..defaults
    };
    normalize(&doc, &class_dictionary(), &CodeMappings::new(), &options)
}

#[test]
fn another_ingredient_of_the_same_class_by_an_overlapping_route_is_a_therapeutic_duplicate() {
    // (rule, NDCs in document order, expected flags: (item, related, detail))
    type Row = (
        &'static str,
        &'static [&'static str],
        &'static [(usize, usize, &'static str)],
    );
    let rows: &[Row] = &[
        (
            "two statins",
            &["0071-0155-23", "0006-0735-54"],
            &[(
                1,
                0,
                "both HMG-CoA Reductase Inhibitor [EPC] (item 1 0071-0155-23, item 2 0006-0735-54); dictionary snapshot fda-2019 loaded 2026-12-06T01:00:00.000Z",
            )],
        ),
        (
            "two ACE inhibitors",
            &["0006-0106-54", "0093-0026-01"],
            &[(
                1,
                0,
                "both Angiotensin Converting Enzyme Inhibitor [EPC] (item 1 0006-0106-54, item 2 0093-0026-01)",
            )],
        ),
        (
            "a combination counts through its second ingredient's class",
            &["0006-0106-54", "0078-0364-05"],
            &[(1, 0, "both Angiotensin Converting Enzyme Inhibitor [EPC]")],
        ),
        (
            "a combination counts through its first ingredient's class",
            &["0078-0364-05", "0069-2600-66"],
            &[(
                1,
                0,
                "both Dihydropyridine Calcium Channel Blocker [EPC] (item 1 0078-0364-05, item 2 0069-2600-66)",
            )],
        ),
        (
            "a combination meeting two items is flagged once, against the first",
            &["0006-0106-54", "0069-2600-66", "0078-0364-05"],
            &[(
                2,
                0,
                "both Angiotensin Converting Enzyme Inhibitor [EPC] (item 1 0006-0106-54, item 3 0078-0364-05)",
            )],
        ),
        (
            "routes that overlap (IM; IV and IV)",
            &["0338-0069-10", "66220-287-08"],
            &[(1, 0, "both Nonsteroidal Anti-inflammatory Drug [EPC] (")],
        ),
        (
            "topical and oral are no duplicate",
            &["35356-187-00", "0904-5855-40"],
            &[],
        ),
        ("different classes", &["0006-0735-54", "0006-0106-54"], &[]),
        (
            "two vitamins of an excluded class",
            &["59088-090-54", "52796-172-50"],
            &[],
        ),
        (
            "a stricter level wins: same ingredient is not flagged again by class",
            &["0006-0106-54", "0006-0207-54"],
            &[(1, 0, "same active ingredient (lisinopril)")],
        ),
    ];
    for (rule, ndcs, want) in rows {
        let r = run_classes(ndcs, None);
        assert_eq!(r.items.len(), ndcs.len(), "rule: {rule}: nothing folds");
        let got: Vec<(Option<usize>, Option<usize>, ExceptionKind)> = r
            .flags
            .iter()
            .map(|f| (f.item, f.related, f.kind))
            .collect();
        let expected: Vec<(Option<usize>, Option<usize>, ExceptionKind)> = want
            .iter()
            .map(|(i, j, _)| (Some(*i), Some(*j), ExceptionKind::TherapeuticDuplicate))
            .collect();
        assert_eq!(got, expected, "rule: {rule}: {:?}", r.flags);
        for (flag, (_, _, needle)) in r.flags.iter().zip(want.iter()) {
            assert!(
                flag.detail.contains(needle),
                "rule: {rule}: {:?}",
                flag.detail
            );
        }
    }
}

#[test]
fn class_exclusions_are_configured_and_compared_without_regard_to_case() {
    let vitamins = ["59088-090-54", "52796-172-50"];
    // (rule, configured exclusions, flagged?)
    let rows: &[(&str, Vec<String>, bool)] = &[
        (
            "the default list excludes vitamin D",
            Options::default().therapeutic_class_exclusions,
            false,
        ),
        ("an empty list excludes nothing", Vec::new(), true),
        (
            "another spelling of case",
            vec!["VITAMIN D [epc]".to_string()],
            false,
        ),
        (
            "a list without the class",
            vec!["Vitamin K [EPC]".to_string()],
            true,
        ),
    ];
    for (rule, exclusions, flagged) in rows {
        let r = run_classes(&vitamins, Some(exclusions.clone()));
        let got: Vec<ExceptionKind> = r.flags.iter().map(|f| f.kind).collect();
        let want = if *flagged {
            vec![ExceptionKind::TherapeuticDuplicate]
        } else {
            vec![]
        };
        assert_eq!(got, want, "rule: {rule}");
        if *flagged {
            assert!(
                r.flags[0].detail.starts_with("both Vitamin D [EPC]"),
                "rule: {rule}"
            );
        }
    }
}

#[test]
fn a_class_flag_says_when_the_dictionary_recorded_no_snapshot() {
    let mut dict = MemoryDictionary::default();
    for ndc in ["0071-0155-23", "0006-0735-54"] {
        let n = crate::domain::ndc::parse(ndc).map(|p| p.reading);
        let Ok(crate::domain::NdcReading::Exact(n)) = n else {
            panic!("{ndc}")
        };
        let entry = class_dictionary()
            .lookup(&n.to_ndc12())
            .expect("in the class dictionary");
        dict.insert((*entry).clone());
    }
    let flags = duplicates::find(
        &run_classes(&["0071-0155-23", "0006-0735-54"], None).items,
        &ClassRule::new(&[], dict.snapshot()),
    );
    assert_eq!(flags.len(), 1);
    assert!(
        flags[0]
            .detail
            .ends_with("dictionary snapshot not recorded"),
        "{}",
        flags[0].detail
    );
}

#[test]
fn class_detection_is_linear_in_items_of_one_class() {
    // 20,000 items of one class, each by a route of its own: a pass that
    // scanned the class's earlier members would compare 200 million pairs.
    let n = 20_000u32;
    let products: Vec<Product> = (0..n)
        .map(|i| {
            let ingredient = format!("STATIN {i}");
            Product {
                epc: vec!["HMG-CoA Reductase Inhibitor [EPC]".to_string()],
                ..product(
                    &format!("S{i}"),
                    &format!("5{:04}-{:04}", i % 10_000, 1 + i / 10_000),
                    "Statin",
                    "FDA",
                    &[(ingredient.as_str(), "10")],
                    "TABLET",
                    &format!("ROUTE {i}"),
                )
            }
        })
        .collect();
    let packages: Vec<Package> = (0..n)
        .map(|i| {
            package(
                &format!("S{i}"),
                &format!("5{:04}-{:04}-11", i % 10_000, 1 + i / 10_000),
            )
        })
        .collect();
    let dict = MemoryDictionary::new(&products, &packages);
    let records = (0..n)
        .map(|i| {
            let ndc = format!("5{:04}-{:04}-11", i % 10_000, 1 + i / 10_000);
            rec("Medication", &i.to_string(), "Statin", &[("NDC", &ndc)])
        })
        .collect();
    let doc = ParsedDocument {
        format: DocFormat::Ccr,
        records,
        problems: Vec::new(),
        left_out: Vec::new(),
        unreadable: Vec::new(),
        patient_ref: None,
    };
    let options = Options {
        max_regimen_items: 100_000,
        ..Options::default()
    };
    let started = std::time::Instant::now();
    let r = normalize(&doc, &dict, &CodeMappings::new(), &options);
    assert_eq!(r.items.len(), n as usize);
    assert!(r.flags.is_empty(), "{} flags", r.flags.len());
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

fn mg(v: &str) -> crate::parse::Strength {
    crate::parse::Strength {
        value: v.to_string(),
        unit: Some("mg".to_string()),
    }
}

#[test]
fn an_ndc_whose_product_the_text_does_not_name_is_flagged_and_lends_nothing() {
    // The text alone: no strength or form of Prozac may appear on the item.
    let text_only = rec(
        "MedicationRequest",
        "r1",
        "Warfarin 5 MG Oral Tablet",
        &[("NDC", "0777-3105-02")],
    );
    let r = run(vec![text_only]);
    assert_eq!(kinds(&r), vec![(Some(0), ExceptionKind::NdcNameMismatch)]);
    assert_eq!(
        r.flags[0].detail,
        "the document says Warfarin 5 MG Oral Tablet; NDC 0777-3105-02 is PROZAC (prozac) 20 mg capsule"
    );
    let item = &r.items[0];
    assert_eq!(item.name.as_deref(), Some("Warfarin 5 MG Oral Tablet"));
    assert_eq!(
        (
            item.strength.as_deref(),
            item.form.as_deref(),
            item.route.as_deref()
        ),
        (None, None, None),
        "nothing taken from the contradicted product"
    );
    assert!(
        item.product.is_some(),
        "the reviewer still sees the product"
    );

    // Stated strength and form: the item shows them, not the product's.
    let mut stated = rec("Medication", "1", "Warfarin", &[("NDC", "00777310502")]);
    stated.strengths = vec![mg("5")];
    stated.form = Some("Tablet".to_string());
    let r = run(vec![stated]);
    assert_eq!(kinds(&r), vec![(Some(0), ExceptionKind::NdcNameMismatch)]);
    assert!(
        r.flags[0]
            .detail
            .starts_with("the document says Warfarin 5 mg Tablet; NDC 0777-3105-02 is PROZAC"),
        "{}",
        r.flags[0].detail
    );
    assert_eq!(r.items[0].strength.as_deref(), Some("5 mg"));
    assert_eq!(r.items[0].form.as_deref(), Some("Tablet"));
}

#[test]
fn a_stated_strength_the_product_does_not_have_is_flagged_and_kept() {
    let mut ten = rec(
        "MedicationStatement",
        "s1",
        "Lisinopril",
        &[("NDC", "0185-0104-01")],
    );
    ten.strengths = vec![mg("10")];
    let mut forty = rec(
        "MedicationStatement",
        "s2",
        "Lisinopril 40 MG Oral Tablet",
        &[("NDC", "0185-0104-01")],
    );
    forty.directions = vec!["other sig".to_string()];
    let r = run(vec![ten, forty]);
    let mismatches: Vec<&Flag> = r
        .flags
        .iter()
        .filter(|f| f.kind == ExceptionKind::NdcNameMismatch)
        .collect();
    assert_eq!(mismatches.len(), 1, "{:?}", r.flags);
    assert_eq!(mismatches[0].item, Some(0));
    assert!(
        mismatches[0]
            .detail
            .ends_with("is LISINOPRIL (lisinopril) 40 mg tablet (another strength)"),
        "{}",
        mismatches[0].detail
    );
    assert_eq!(
        r.items[0].strength.as_deref(),
        Some("10 mg"),
        "the document's strength"
    );
    assert_eq!(
        r.items[1].strength.as_deref(),
        Some("40 mg/1"),
        "a true pair is completed from the dictionary"
    );
}

#[test]
fn a_true_pair_in_other_words_is_not_flagged() {
    // Brand text over a brand's NDC, generic text over it, salts and case.
    let rows: &[(&str, &str, Option<&str>)] = &[
        ("Prinivil", "0006-0106-54", Some("10")),
        ("lisinopril 10mg tab", "0006-0106-54", None),
        ("METFORMIN HCL 500 MG", "0087-6060-05", Some("500")),
        ("Glucophage", "0087-6060-05", None),
        ("Caduet 5-10", "0069-2150-30", Some("5")),
        ("fluoxetine", "0777-3105-02", Some("20")),
        ("", "0777-3105-02", None),
    ];
    for (name, ndc, strength) in rows {
        let mut r = rec("Medication", "1", name, &[("NDC", ndc)]);
        r.strengths = strength.iter().map(|s| mg(s)).collect();
        let regimen = run(vec![r]);
        assert_eq!(kinds(&regimen), vec![], "{name} {ndc}");
    }
}

#[test]
fn a_clinicians_mapping_is_not_second_guessed() {
    let key = mapping_keys(
        &[],
        &[],
        Stated {
            name: Some("Warfarin"),
            ..Stated::default()
        },
    )
    .remove(0);
    let mut mappings = CodeMappings::new();
    mappings.insert(key, decided("00777310502", "dr.lee", None));
    let r = run_with(vec![rec("Medication", "1", "Warfarin", &[])], &mappings, 50);
    assert!(r.items[0].mapping.is_some());
    assert_eq!(kinds(&r), vec![]);
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

// ---- names are checked per record, and links fold only one drug ----

#[test]
fn a_linked_record_naming_another_drug_is_neither_folded_nor_vouched_for() {
    // (rule, request text, claim line display, items, flags)
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        usize,
        Vec<(Option<usize>, ExceptionKind)>,
    );
    let rows: Vec<Row> = vec![
        (
            "a claim for another drug than its prescription stays its own item",
            "Lisinopril 10 mg oral tablet",
            "Glucophage 500 MG Oral Tablet",
            2,
            vec![(Some(0), ExceptionKind::NonNdcCode)],
        ),
        (
            "a claim for the prescribed drug under its brand folds",
            "metformin 500 mg oral tablet",
            "Glucophage 500 MG Oral Tablet",
            1,
            vec![],
        ),
        (
            "a claim whose line names the prescribed drug's generic folds",
            "Glucophage",
            "metFORMIN HCl 500 MG Oral Tablet",
            1,
            vec![],
        ),
    ];
    for (rule, request_text, display, items, flags) in rows {
        let request = rec(
            "MedicationRequest",
            "rx-9",
            request_text,
            &[("http://www.nlm.nih.gov/research/umls/rxnorm", "314076")],
        );
        let mut request = request;
        request.status = Some("active".to_string());
        let mut line = claim("eob-1#1", "00087606005", "2026-10-01", "30");
        line.codes = vec![Code::new(
            "http://hl7.org/fhir/sid/ndc",
            "00087606005",
            Some(display),
        )];
        line.name = Some(display.to_string());
        line.related = vec!["MedicationRequest/rx-9".to_string()];
        let r = run_on(vec![request, line], "2026-10-15", 30);
        assert_eq!(r.items.len(), items, "{rule}: {:?}", r.items);
        assert_eq!(kinds(&r), flags, "{rule}");
        assert_eq!(
            r.items[0].name.as_deref(),
            Some(request_text),
            "{rule}: the request keeps its text"
        );
        if items == 2 {
            assert_eq!(
                r.items[0].ndc11, None,
                "{rule}: no Glucophage NDC on Lisinopril"
            );
            assert_eq!(r.items[0].status, MedStatus::Active, "{rule}");
            assert_eq!(
                r.items[1].ndc11.map(|n| n.to_string()).as_deref(),
                Some("00087606005"),
                "{rule}"
            );
        }
    }
}

#[test]
fn each_folded_records_text_is_checked_against_the_product() {
    // Folded by the same NDC and sig, the Glucophage text must not vouch
    // for the Lisinopril one.
    let a = with_sig(
        rec(
            "MedicationStatement",
            "s1",
            "Lisinopril 10 mg oral tablet",
            &[("NDC", "0087-6060-05")],
        ),
        "1 daily",
    );
    let b = with_sig(
        rec(
            "MedicationStatement",
            "s2",
            "Glucophage 500 MG Oral Tablet",
            &[("NDC", "0087-6060-05")],
        ),
        "1 daily",
    );
    let r = run(vec![b, a]);
    assert_eq!(r.items.len(), 1);
    assert_eq!(kinds(&r), vec![(Some(0), ExceptionKind::NdcNameMismatch)]);
    assert!(
        r.flags[0].detail.contains("Lisinopril 10 mg oral tablet"),
        "{}",
        r.flags[0].detail
    );
}

#[test]
fn a_decision_is_never_remembered_under_a_placeholder_ndc() {
    let stated = Stated {
        name: Some("Lisinopril 10 mg tablet"),
        strength: None,
        form: None,
    };
    let by_name = ("text".to_string(), "lisinopril 10 mg tablet||".to_string());
    // (placeholder or invalid code, exception kind)
    let rows = [
        ("00000000000", ExceptionKind::InvalidNdc),
        ("0000000000", ExceptionKind::InvalidNdc),
        ("00000-0000-00", ExceptionKind::InvalidNdc),
        ("000000000000", ExceptionKind::InvalidNdc),
        ("99999999999", ExceptionKind::InvalidNdc),
        ("99999-9999-99", ExceptionKind::InvalidNdc),
        ("1234567", ExceptionKind::InvalidNdc),
        ("12-34-56", ExceptionKind::UnmappedNdc),
    ];
    for (code, kind) in rows {
        let codes = [Code::new("NDC", code, None)];
        assert_eq!(
            decision_keys(kind, &codes, &[], stated),
            vec![by_name.clone()],
            "{code}: remembered under the name, strength and form"
        );
        // A decision remembered under the code itself (as before this
        // rule) reaches no other drug written with it...
        let mut mappings = CodeMappings::new();
        mappings.insert(
            ("NDC".to_string(), code.to_string()),
            decided("00006010654", "dr.a", Some(1)),
        );
        let other = rec(
            "MedicationRequest",
            "m1",
            "Metformin 500 mg",
            &[("NDC", code)],
        );
        let r = run_with(vec![other.clone()], &mappings, 50);
        assert_eq!(r.items[0].mapping, None, "{code}");
        assert_eq!(r.items[0].ndc11, None, "{code}");
        assert_eq!(
            kinds(&r),
            vec![(Some(0), ExceptionKind::InvalidNdc)],
            "{code}"
        );
        // ...while one remembered under the name reaches only that name.
        let mut mappings = CodeMappings::new();
        mappings.insert(by_name.clone(), decided("00006010654", "dr.a", Some(1)));
        let same = rec(
            "MedicationRequest",
            "m2",
            "Lisinopril 10 mg tablet",
            &[("NDC", code)],
        );
        let r = run_with(vec![same, other], &mappings, 50);
        assert!(r.items[0].mapping.is_some(), "{code}");
        assert_eq!(r.items[1].mapping, None, "{code}: Metformin is not mapped");
    }
}

#[test]
fn many_dispenses_linked_to_one_request_are_compared_once_each() {
    // 20,000 dispenses of one drug with their own sigs (so only the link
    // folds them), each naming the request: the link check compares each
    // with the group's distinct drugs, not with every fill before it.
    let mut records = vec![rec(
        "MedicationRequest",
        "rx-1",
        "Glucophage 500 mg tablet",
        &[],
    )];
    for i in 0..20_000u32 {
        let mut line = with_sig(
            rec(
                "MedicationDispense",
                &format!("d{i}"),
                "metformin 500 MG Oral Tablet",
                &[("NDC", "00087606005")],
            ),
            &format!("take {i}"),
        );
        line.related = vec!["MedicationRequest/rx-1".to_string()];
        records.push(line);
    }
    let r = run_on(records, "2026-10-15", 30);
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].records.len(), 20_001);
}
