//! Reconciliation rules, one test per rule: how rows are matched (the
//! duplicate levels), that single-source drugs stay single, and when two
//! sources are in conflict.

use super::conflict::strength_key;
use super::*;
use crate::dict::{Ingredient, Package, Product};
use crate::domain::{CodeSystem, Ndc11};

/// A dictionary entry for a package of `labeler-product-package` (5-4-2).
fn entry(ndc: &str, labeler: &str, ingredients: &[(&str, &str)], form: &str) -> DictEntry {
    let n = Ndc11::from_digits(&ndc.replace('-', "")).expect("test NDC");
    DictEntry {
        package: Package {
            ndc: n.to_ndc12(),
            package_ndc: ndc.to_string(),
            product_id: ndc[..10].to_string(),
            description: format!("package {ndc}"),
        },
        product: Product {
            product_id: ndc[..10].to_string(),
            product_ndc: ndc[..10].to_string(),
            product_type: "HUMAN PRESCRIPTION DRUG".to_string(),
            proprietary_name: ingredients[0].0.to_string(),
            nonproprietary_name: ingredients[0].0.to_lowercase(),
            dosage_form: form.to_string(),
            route: "ORAL".to_string(),
            labeler: labeler.to_string(),
            ingredients: ingredients
                .iter()
                .map(|(name, strength)| Ingredient {
                    name: name.to_string(),
                    strength: strength.to_string(),
                    unit: "mg/1".to_string(),
                })
                .collect(),
            excluded: false,
            epc: Vec::new(),
        },
    }
}

fn lisinopril(ndc: &str, labeler: &str, mg: &str) -> DictEntry {
    entry(ndc, labeler, &[("LISINOPRIL", mg)], "TABLET")
}

/// An item with an NDC the dictionary knows.
fn coded(id: i64, e: DictEntry, status: MedStatus) -> Listed {
    Listed {
        item_id: id,
        position: id as usize,
        ndc: Some(e.package.ndc),
        name: Some(e.product.proprietary_name.clone()),
        strength: None,
        form: None,
        dose: None,
        frequency: None,
        sig: None,
        status,
        evidence: Evidence::Record,
        last_date: None,
        codes: Vec::new(),
        product: Some(e),
    }
}

/// An item known by an RxNorm code alone.
fn rxnorm(id: i64, code: &str, name: &str, strength: &str) -> Listed {
    Listed {
        item_id: id,
        position: id as usize,
        ndc: None,
        name: Some(name.to_string()),
        strength: Some(strength.to_string()),
        form: None,
        dose: None,
        frequency: None,
        sig: None,
        status: MedStatus::Active,
        evidence: Evidence::Record,
        last_date: None,
        codes: vec![Code {
            system: CodeSystem::RxNorm,
            value: code.to_string(),
            system_original: "RxNorm".to_string(),
            display: None,
        }],
        product: None,
    }
}

fn list(source: &str, items: Vec<Listed>) -> SourceList {
    SourceList {
        source: source.to_string(),
        version: 1,
        items,
    }
}

/// The rows as (matched by, item ids per source).
fn shape(r: &Reconciled) -> Vec<(Option<MatchedBy>, Vec<Vec<i64>>)> {
    r.rows
        .iter()
        .map(|row| {
            (
                row.matched_by,
                row.cells
                    .iter()
                    .map(|c| c.items.iter().map(|i| i.item_id).collect())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn same_package_ndc_is_one_row() {
    let r = reconcile(
        "p1",
        vec![
            list(
                "b",
                vec![coded(
                    2,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
            list(
                "a",
                vec![coded(
                    1,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
        ],
    );
    assert_eq!(
        r.sources
            .iter()
            .map(|s| s.source.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(
        shape(&r),
        vec![(Some(MatchedBy::Ndc), vec![vec![1], vec![2]])]
    );
    assert_eq!(r.rows[0].listed_by, ["a", "b"]);
    assert_eq!(r.rows[0].only_in, None);
    assert!(r.rows[0].conflicts.is_empty());
}

#[test]
fn same_product_in_another_package_is_one_row() {
    let r = reconcile(
        "p1",
        vec![
            list(
                "a",
                vec![coded(
                    1,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
            list(
                "b",
                vec![coded(
                    2,
                    lisinopril("00006-0106-58", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
        ],
    );
    assert_eq!(
        shape(&r),
        vec![(Some(MatchedBy::Product), vec![vec![1], vec![2]])]
    );
}

#[test]
fn same_ingredients_strength_and_form_from_another_labeler_is_one_row() {
    let r = reconcile(
        "p1",
        vec![
            list(
                "a",
                vec![coded(
                    1,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
            list(
                "b",
                vec![coded(
                    2,
                    lisinopril("00143-9714-01", "West-Ward", "10"),
                    MedStatus::Active,
                )],
            ),
        ],
    );
    assert_eq!(
        shape(&r),
        vec![(Some(MatchedBy::ClinicalDrug), vec![vec![1], vec![2]])]
    );
}

#[test]
fn same_code_of_another_system_is_one_row() {
    let r = reconcile(
        "p1",
        vec![
            list("a", vec![rxnorm(1, "314076", "lisinopril", "10 mg")]),
            list(
                "b",
                vec![rxnorm(2, "314076", "Lisinopril 10mg tab", "10 MG")],
            ),
        ],
    );
    assert_eq!(
        shape(&r),
        vec![(Some(MatchedBy::Code), vec![vec![1], vec![2]])]
    );
    assert!(r.rows[0].conflicts.is_empty(), "10 mg and 10 MG agree");
}

#[test]
fn a_drug_one_source_lists_is_a_row_of_its_own() {
    let r = reconcile(
        "p1",
        vec![
            list(
                "a",
                vec![
                    coded(
                        1,
                        lisinopril("00006-0106-31", "Merck", "10"),
                        MedStatus::Active,
                    ),
                    coded(
                        3,
                        entry("00093-7180-01", "Teva", &[("SIMVASTATIN", "20")], "TABLET"),
                        MedStatus::Active,
                    ),
                ],
            ),
            list(
                "b",
                vec![coded(
                    2,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
        ],
    );
    assert_eq!(
        shape(&r),
        vec![
            (Some(MatchedBy::Ndc), vec![vec![1], vec![2]]),
            (None, vec![vec![3], vec![]]),
        ]
    );
    assert_eq!(r.rows[1].only_in.as_deref(), Some("a"));
    assert_eq!(r.rows[1].listed_by, ["a"]);
}

#[test]
fn another_drug_with_another_code_is_never_merged() {
    let r = reconcile(
        "p1",
        vec![
            list("a", vec![rxnorm(1, "314076", "lisinopril", "10 mg")]),
            list("b", vec![rxnorm(2, "197884", "lisinopril", "10 mg")]),
        ],
    );
    assert_eq!(
        shape(&r),
        vec![(None, vec![vec![1], vec![]]), (None, vec![vec![], vec![2]])]
    );
}

#[test]
fn same_ingredient_at_another_strength_is_one_row_across_sources_with_a_strength_conflict() {
    let r = reconcile(
        "p1",
        vec![
            list(
                "a",
                vec![coded(
                    1,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
            list(
                "b",
                vec![coded(
                    2,
                    lisinopril("00006-0207-31", "Merck", "20"),
                    MedStatus::Active,
                )],
            ),
        ],
    );
    assert_eq!(
        shape(&r),
        vec![(Some(MatchedBy::Ingredients), vec![vec![1], vec![2]])]
    );
    let c = &r.rows[0].conflicts;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].aspect, Aspect::Strength);
    assert_eq!(c[0].sides[0].source, "a");
    assert_eq!(c[0].sides[0].says, "10 mg/1");
    assert_eq!(c[0].sides[1].says, "20 mg/1");
    let detail = c[0].detail();
    assert!(detail.contains("a (item 1) says 10 mg/1"), "{detail}");
    assert!(detail.contains("b (item 2) says 20 mg/1"), "{detail}");
}

#[test]
fn one_source_two_strengths_of_an_ingredient_stay_two_rows() {
    let r = reconcile(
        "p1",
        vec![list(
            "a",
            vec![
                coded(
                    1,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                ),
                coded(
                    2,
                    lisinopril("00006-0207-31", "Merck", "20"),
                    MedStatus::Active,
                ),
            ],
        )],
    );
    assert_eq!(
        shape(&r),
        vec![(None, vec![vec![1]]), (None, vec![vec![2]])]
    );
}

#[test]
fn active_against_stopped_or_completed_is_a_status_conflict() {
    for ended in [MedStatus::Stopped, MedStatus::Completed] {
        let r = reconcile(
            "p1",
            vec![
                list(
                    "a",
                    vec![coded(
                        1,
                        lisinopril("00006-0106-31", "Merck", "10"),
                        MedStatus::Active,
                    )],
                ),
                list(
                    "b",
                    vec![coded(2, lisinopril("00006-0106-31", "Merck", "10"), ended)],
                ),
            ],
        );
        let c = &r.rows[0].conflicts;
        assert_eq!(c.len(), 1, "{ended:?}");
        assert_eq!(c[0].aspect, Aspect::Status);
        assert_eq!(c[0].sides[0].says, "active");
        assert_eq!(c[0].sides[1].says, ended.as_str());
        assert_eq!(
            c[0].key,
            format!(
                "status|a=00006010631:active|b=00006010631:{}",
                ended.as_str()
            )
        );
    }
}

#[test]
fn statuses_that_settle_nothing_are_no_conflict() {
    for (a, b) in [
        (MedStatus::Active, MedStatus::OnHold),
        (MedStatus::Stopped, MedStatus::Completed),
        (MedStatus::Active, MedStatus::Unknown),
        (MedStatus::Active, MedStatus::Intended),
    ] {
        let r = reconcile(
            "p1",
            vec![
                list(
                    "a",
                    vec![coded(1, lisinopril("00006-0106-31", "Merck", "10"), a)],
                ),
                list(
                    "b",
                    vec![coded(2, lisinopril("00006-0106-31", "Merck", "10"), b)],
                ),
            ],
        );
        assert!(r.rows[0].conflicts.is_empty(), "{a:?} vs {b:?}");
    }
}

#[test]
fn a_claim_is_no_status_evidence() {
    let mut claim = coded(
        2,
        lisinopril("00006-0106-31", "Merck", "10"),
        MedStatus::Completed,
    );
    claim.evidence = Evidence::Claim;
    let r = reconcile(
        "p1",
        vec![
            list(
                "a",
                vec![coded(
                    1,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
            list("claims", vec![claim]),
        ],
    );
    assert_eq!(r.rows.len(), 1);
    assert!(r.rows[0].conflicts.is_empty());
}

#[test]
fn another_dose_is_a_dose_conflict_and_the_same_dose_in_other_spacing_is_not() {
    let with_dose = |id, dose: &str| {
        let mut l = coded(
            id,
            lisinopril("00006-0106-31", "Merck", "10"),
            MedStatus::Active,
        );
        l.dose = Some(dose.to_string());
        l
    };
    let r = reconcile(
        "p1",
        vec![
            list("a", vec![with_dose(1, "1 tablet")]),
            list("b", vec![with_dose(2, "2 tablets")]),
        ],
    );
    let c = &r.rows[0].conflicts;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].aspect, Aspect::Dose);
    let r = reconcile(
        "p1",
        vec![
            list("a", vec![with_dose(1, "1 tablet")]),
            list("b", vec![with_dose(2, " 1  Tablet")]),
        ],
    );
    assert!(r.rows[0].conflicts.is_empty());
}

#[test]
fn a_stated_strength_against_another_is_a_strength_conflict() {
    let r = reconcile(
        "p1",
        vec![
            list("a", vec![rxnorm(1, "314076", "lisinopril", "10 mg")]),
            list("b", vec![rxnorm(2, "314076", "lisinopril", "20 mg")]),
        ],
    );
    let c = &r.rows[0].conflicts;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].aspect, Aspect::Strength);
    assert_eq!(
        c[0].key,
        "strength|a=RxNorm 314076:10mg|b=RxNorm 314076:20mg"
    );
}

#[test]
fn strengths_compare_without_case_spaces_trailing_zeros_or_per_unit() {
    for (a, b) in [
        ("10 mg", "10 MG/1"),
        ("10.0 mg", "10 mg"),
        ("12.5 mg; 10 mg", "10 mg/1; 12.5 mg/1"),
    ] {
        assert_eq!(strength_key(a), strength_key(b), "{a} vs {b}");
    }
    assert_ne!(strength_key("10 mg"), strength_key("100 mg"));
}

#[test]
fn the_result_does_not_depend_on_the_order_of_the_lists() {
    let lists = || {
        vec![
            list(
                "a",
                vec![coded(
                    1,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Active,
                )],
            ),
            list(
                "b",
                vec![coded(
                    2,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Stopped,
                )],
            ),
        ]
    };
    let mut reversed = lists();
    reversed.reverse();
    assert_eq!(reconcile("p1", lists()), reconcile("p1", reversed));
}

#[test]
fn a_source_listing_the_drug_twice_saying_the_same_is_one_side() {
    let r = reconcile(
        "p1",
        vec![
            list(
                "a",
                vec![
                    coded(
                        1,
                        lisinopril("00006-0106-31", "Merck", "10"),
                        MedStatus::Active,
                    ),
                    coded(
                        2,
                        lisinopril("00006-0106-58", "Merck", "10"),
                        MedStatus::Active,
                    ),
                ],
            ),
            list(
                "b",
                vec![coded(
                    3,
                    lisinopril("00006-0106-31", "Merck", "10"),
                    MedStatus::Stopped,
                )],
            ),
        ],
    );
    assert_eq!(
        shape(&r),
        vec![(Some(MatchedBy::Product), vec![vec![1, 2], vec![3]])]
    );
    let c = &r.rows[0].conflicts;
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(c[0].sides[0].item_id, 1);
}

#[test]
fn a_label_does_not_repeat_the_strength_its_name_gives() {
    let mut l = rxnorm(1, "314076", "Lisinopril 10 MG Oral Tablet", "10 mg");
    assert_eq!(l.label(), "Lisinopril 10 MG Oral Tablet");
    l.name = Some("lisinopril".to_string());
    assert_eq!(l.label(), "lisinopril 10 mg");
}
