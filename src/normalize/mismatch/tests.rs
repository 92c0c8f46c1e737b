//! The name and strength rules of `check`, one table per rule: planted
//! mismatches must be caught, real-world ways of writing the right drug
//! must not be.

use super::*;
use crate::dict::{Ingredient, MemoryDictionary, Package};

/// `check` with a dictionary that knows no brand: only the built-in
/// `words::BRANDS` table speaks for brands.
fn check_with_table(doc: &DocDrug<'_>, product: &Product) -> Verdict {
    check(doc, product, &MemoryDictionary::default())
}

/// A product as the FDA lists it: (substance, strength, unit) per ingredient.
pub(super) fn product(
    proprietary: &str,
    generic: &str,
    ingredients: &[(&str, &str, &str)],
    form: &str,
) -> Product {
    Product {
        product_id: "P".to_string(),
        product_ndc: "0777-3105".to_string(),
        product_type: "HUMAN PRESCRIPTION DRUG".to_string(),
        proprietary_name: proprietary.to_string(),
        nonproprietary_name: generic.to_string(),
        dosage_form: form.to_string(),
        route: "ORAL".to_string(),
        labeler: "Labeler".to_string(),
        ingredients: ingredients
            .iter()
            .map(|(name, strength, unit)| Ingredient {
                name: name.to_string(),
                strength: strength.to_string(),
                unit: unit.to_string(),
            })
            .collect(),
        excluded: false,
        epc: Vec::new(),
    }
}

pub(super) fn prozac() -> Product {
    product(
        "Prozac",
        "Fluoxetine Hydrochloride",
        &[("FLUOXETINE HYDROCHLORIDE", "20", "mg/1")],
        "CAPSULE",
    )
}

pub(super) fn named(name: &str) -> DocDrug<'_> {
    DocDrug {
        name: Some(name),
        ..DocDrug::default()
    }
}

#[test]
fn a_name_that_shares_no_word_with_the_product_is_a_mismatch() {
    let rows: &[(&str, Product)] = &[
        ("Warfarin 5 MG Oral Tablet", prozac()),
        ("warfarin sodium", prozac()),
        ("Coumadin", prozac()),
        (
            "Lisinopril 10 mg tab",
            product(
                "Lipitor",
                "Atorvastatin Calcium",
                &[("ATORVASTATIN CALCIUM TRIHYDRATE", "10", "mg/1")],
                "TABLET, FILM COATED",
            ),
        ),
        // A salt in common is not a drug in common.
        ("Metformin HCl 500 mg", prozac()),
        (
            "Losartan Potassium 50 mg",
            product(
                "K-Tab",
                "Potassium Chloride",
                &[("POTASSIUM CHLORIDE", "750", "mg/1")],
                "TABLET, EXTENDED RELEASE",
            ),
        ),
    ];
    for (text, p) in rows {
        assert_eq!(
            check_with_table(&named(text), p),
            Verdict::NameMismatch,
            "{text} vs {}",
            p.proprietary_name
        );
    }
}

#[test]
fn a_name_matches_through_any_significant_word_in_any_spelling() {
    let metformin = product(
        "Metformin Hydrochloride",
        "Metformin Hydrochloride",
        &[("METFORMIN HYDROCHLORIDE", "500", "mg/1")],
        "TABLET",
    );
    let lipitor = product(
        "Lipitor",
        "Atorvastatin Calcium",
        &[("ATORVASTATIN CALCIUM TRIHYDRATE", "10", "mg/1")],
        "TABLET, FILM COATED",
    );
    let hctz = product(
        "Hydrochlorothiazide",
        "Hydrochlorothiazide",
        &[("HYDROCHLOROTHIAZIDE", "25", "mg/1")],
        "TABLET",
    );
    let augmentin = product(
        "Augmentin",
        "Amoxicillin and Clavulanate Potassium",
        &[
            ("AMOXICILLIN", "875", "mg/1"),
            ("CLAVULANATE POTASSIUM", "125", "mg/1"),
        ],
        "TABLET, FILM COATED",
    );
    let tylenol = product(
        "Tylenol",
        "Acetaminophen",
        &[("ACETAMINOPHEN", "325", "mg/1")],
        "TABLET",
    );
    let aspirin = product(
        "Bayer",
        "Aspirin",
        &[("ASPIRIN", "81", "mg/1")],
        "TABLET, DELAYED RELEASE",
    );
    let kcl = product(
        "K-Tab",
        "Potassium Chloride",
        &[("POTASSIUM CHLORIDE", "10", "meq/1")],
        "TABLET, EXTENDED RELEASE",
    );
    let bactrim = product(
        "Bactrim DS",
        "sulfamethoxazole and trimethoprim",
        &[
            ("SULFAMETHOXAZOLE", "800", "mg/1"),
            ("TRIMETHOPRIM", "160", "mg/1"),
        ],
        "TABLET",
    );
    let generic_atorvastatin = product(
        "Atorvastatin Calcium",
        "Atorvastatin Calcium",
        &[("ATORVASTATIN CALCIUM TRIHYDRATE", "10", "mg/1")],
        "TABLET, FILM COATED",
    );
    let generic_warfarin = product(
        "Warfarin Sodium",
        "Warfarin Sodium",
        &[("WARFARIN SODIUM", "5", "mg/1")],
        "TABLET",
    );
    let rows: &[(&str, &Product)] = &[
        // Brand text over a generic's NDC: the brand names its ingredient.
        ("Lipitor 10 mg", &generic_atorvastatin),
        ("COUMADIN 5MG TAB", &generic_warfarin),
        ("Glucophage", &metformin),
        ("Metformin HCl 500 mg tab", &metformin),
        ("METFORMIN HYDROCHLORIDE 500 MG ORAL TABLET", &metformin),
        ("metformin", &metformin),
        // Brand text, brand product.
        ("Lipitor", &lipitor),
        ("LIPITOR 10MG TABS", &lipitor),
        // Generic text, brand product.
        ("atorvastatin 10 mg", &lipitor),
        ("HCTZ 25mg", &hctz),
        ("Amoxicillin/Clavulanate 875-125", &augmentin),
        ("Amoxicillin + Clavulanic acid", &augmentin),
        ("Augmentin 875", &augmentin),
        ("APAP 325 mg", &tylenol),
        ("Paracetamol 325mg", &tylenol),
        ("ASA 81 mg EC", &aspirin),
        ("KCl ER 10 mEq", &kcl),
        ("Potassium Chloride 10 MEQ", &kcl),
        ("SMX-TMP DS", &bactrim),
        // An abbreviated word (4 letters or more) of a product word.
        ("Amox-clav 875", &augmentin),
    ];
    for (text, p) in rows {
        assert_eq!(
            check_with_table(&named(text), p),
            Verdict::Match,
            "{text} vs {}",
            p.proprietary_name
        );
    }
}

#[test]
fn a_text_that_names_no_drug_is_never_a_name_mismatch() {
    for text in [
        "",
        "   ",
        "00777310502",
        "Tablet 20 mg",
        "oral capsule",
        "Unknown medication",
        "--",
        "KP-2 pellet 30 [hp_C]",
    ] {
        assert_eq!(
            check_with_table(&named(text), &prozac()),
            Verdict::Match,
            "{text:?}"
        );
    }
    assert_eq!(
        check_with_table(&DocDrug::default(), &prozac()),
        Verdict::Match
    );
    // Its stated strength is still the document's word.
    assert_eq!(
        check_with_table(&named("Tablet 5 mg"), &prozac()),
        Verdict::StrengthMismatch
    );
}

#[test]
fn salt_words_in_common_name_a_drug_only_when_nothing_else_does() {
    let kcl = product(
        "K-Tab",
        "Potassium Chloride",
        &[("POTASSIUM CHLORIDE", "20", "meq/1")],
        "TABLET, EXTENDED RELEASE",
    );
    let calcium = product(
        "Os-Cal",
        "Calcium Carbonate",
        &[("CALCIUM CARBONATE", "1250", "mg/1")],
        "TABLET",
    );
    let rows: &[(&str, &Product, Verdict)] = &[
        ("Losartan Potassium 50 mg", &kcl, Verdict::NameMismatch),
        ("Potassium 20 mEq", &kcl, Verdict::Match),
        // Every salt of a salt-only product, beside a word rxsync does not know.
        ("KCl 20 mEq sachet", &kcl, Verdict::Match),
        ("Calcium 1250 mg", &calcium, Verdict::Match),
        (
            "Atorvastatin calcium 10 mg",
            &calcium,
            Verdict::NameMismatch,
        ),
    ];
    for (text, p, verdict) in rows {
        assert_eq!(check_with_table(&named(text), p), *verdict, "{text}");
    }
}

#[test]
fn any_of_the_documents_names_for_the_drug_may_match() {
    // CCR: a generic ProductName, a BrandName; FHIR: a code's display.
    let brand = DocDrug {
        name: Some("Fluoxetine"),
        brand: Some("Sarafem"),
        ..DocDrug::default()
    };
    assert_eq!(check_with_table(&brand, &prozac()), Verdict::Match);
    let displays = ["PROZAC 20 MG CAPSULE"];
    let display = DocDrug {
        name: Some("Antidepressant"),
        displays: &displays,
        ..DocDrug::default()
    };
    assert_eq!(check_with_table(&display, &prozac()), Verdict::Match);
}

#[test]
fn a_stated_strength_that_is_not_the_single_ingredients_is_a_strength_mismatch() {
    let lisinopril_40 = product(
        "Lisinopril",
        "Lisinopril",
        &[("LISINOPRIL", "40", "mg/1")],
        "TABLET",
    );
    let levothyroxine = product(
        "Synthroid",
        "Levothyroxine Sodium",
        &[("LEVOTHYROXINE SODIUM", "100", "ug/1")],
        "TABLET",
    );
    let amoxicillin_susp = product(
        "Amoxicillin",
        "Amoxicillin",
        &[("AMOXICILLIN", "250", "mg/5mL")],
        "POWDER, FOR SUSPENSION",
    );
    let hydrocortisone = product(
        "Hydrocortisone",
        "Hydrocortisone",
        &[("HYDROCORTISONE", "10", "mg/g")],
        "CREAM",
    );
    // (name, structured strength)
    let rows: &[(&str, Option<&str>, &Product)] = &[
        ("Lisinopril 10 mg", None, &lisinopril_40),
        ("Lisinopril", Some("10 mg"), &lisinopril_40),
        ("Lisinopril Oral Tablet", Some("10 MG"), &lisinopril_40),
        ("Levothyroxine 0.05 MG", None, &levothyroxine),
        ("Levothyroxine", Some("50 mcg"), &levothyroxine),
        (
            "Amoxicillin 125 mg/5 mL suspension",
            None,
            &amoxicillin_susp,
        ),
        ("Hydrocortisone 2.5% cream", None, &hydrocortisone),
    ];
    for (name, strength, p) in rows {
        let doc = DocDrug {
            name: Some(name),
            strength: *strength,
            ..DocDrug::default()
        };
        assert_eq!(
            check_with_table(&doc, p),
            Verdict::StrengthMismatch,
            "{name} {strength:?}"
        );
    }
}

#[test]
fn the_same_strength_written_another_way_is_no_mismatch() {
    let lisinopril_10 = product(
        "Lisinopril",
        "Lisinopril",
        &[("LISINOPRIL", "10", "mg/1")],
        "TABLET",
    );
    let levothyroxine = product(
        "Synthroid",
        "Levothyroxine Sodium",
        &[("LEVOTHYROXINE SODIUM", "100", "ug/1")],
        "TABLET",
    );
    let alprazolam = product(
        "Alprazolam",
        "Alprazolam",
        &[("ALPRAZOLAM", ".5", "mg/1")],
        "TABLET",
    );
    let amoxicillin_susp = product(
        "Amoxicillin",
        "Amoxicillin",
        &[("AMOXICILLIN", "250", "mg/5mL")],
        "POWDER, FOR SUSPENSION",
    );
    let hydrocortisone = product(
        "Hydrocortisone",
        "Hydrocortisone",
        &[("HYDROCORTISONE", "10", "mg/g")],
        "CREAM",
    );
    let insulin = product(
        "Lantus",
        "insulin glargine",
        &[("INSULIN GLARGINE", "100", "[iU]/mL")],
        "INJECTION, SOLUTION",
    );
    let vitamin_d = product(
        "Vitamin D3",
        "cholecalciferol",
        &[("CHOLECALCIFEROL", "1000", "[iU]/1")],
        "CAPSULE",
    );
    let nitro = product(
        "Nitro-Dur",
        "nitroglycerin",
        &[("NITROGLYCERIN", ".4", "mg/h")],
        "PATCH",
    );
    let augmentin = product(
        "Augmentin",
        "Amoxicillin and Clavulanate Potassium",
        &[
            ("AMOXICILLIN", "875", "mg/1"),
            ("CLAVULANATE POTASSIUM", "125", "mg/1"),
        ],
        "TABLET, FILM COATED",
    );
    let rows: &[(&str, Option<&str>, &Product)] = &[
        ("Lisinopril 10 MG Oral Tablet", None, &lisinopril_10),
        ("Lisinopril", Some("10 mg"), &lisinopril_10),
        ("Lisinopril", Some("10 mg/1"), &lisinopril_10),
        ("Lisinopril 10mg", Some("10"), &lisinopril_10),
        // mcg, µg, μg and mg are one dimension.
        ("Levothyroxine 100 mcg", None, &levothyroxine),
        ("Levothyroxine 100 µg", None, &levothyroxine),
        ("Levothyroxine", Some("100 μg"), &levothyroxine),
        ("Levothyroxine 0.1 MG", None, &levothyroxine),
        ("Alprazolam 0.5 mg", None, &alprazolam),
        ("Alprazolam", Some(".5 mg"), &alprazolam),
        // The amount per dose, or the concentration per mL.
        ("Amoxicillin 250 mg/5 mL", None, &amoxicillin_susp),
        ("Amoxicillin 50 mg/mL", None, &amoxicillin_susp),
        ("Amoxicillin", Some("250 mg"), &amoxicillin_susp),
        // A per-dose amount cannot contradict a concentration.
        ("Amoxicillin 500 mg", None, &amoxicillin_susp),
        ("Hydrocortisone 1% cream", None, &hydrocortisone),
        ("Lantus 100 units/mL, 3 mL pen", None, &insulin),
        ("Vitamin D3 1000 IU", None, &vitamin_d),
        ("Nitroglycerin 0.4 mg/hr patch", None, &nitro),
        // Several ingredients: the document's figures are not checked one by one.
        ("Amoxicillin/Clavulanate 500-125 mg", None, &augmentin),
        // Volumes and counts are not strengths.
        ("Lisinopril 30 tablets", Some("5 mL"), &lisinopril_10),
    ];
    for (name, strength, p) in rows {
        let doc = DocDrug {
            name: Some(name),
            strength: *strength,
            ..DocDrug::default()
        };
        assert_eq!(
            check_with_table(&doc, p),
            Verdict::Match,
            "{name} {strength:?}"
        );
    }
}

#[test]
fn the_detail_says_what_the_document_says_and_what_the_ndc_is() {
    let entry = DictEntry {
        package: Package {
            ndc: crate::domain::Ndc11::from_digits("00777310502")
                .expect("NDC-11")
                .to_ndc12(),
            package_ndc: "0777-3105-02".to_string(),
            product_id: "P".to_string(),
            description: "100 CAPSULE in 1 BOTTLE".to_string(),
        },
        product: product(
            "Prozac",
            "Fluoxetine",
            &[("FLUOXETINE HYDROCHLORIDE", "20", "mg/1")],
            "CAPSULE",
        ),
    };
    let rows: &[(DocDrug<'_>, Verdict, &str)] = &[
        (
            named("Warfarin 5 MG Oral Tablet"),
            Verdict::NameMismatch,
            "the document says Warfarin 5 MG Oral Tablet; NDC 0777-3105-02 is PROZAC (fluoxetine) 20 mg capsule",
        ),
        (
            DocDrug {
                name: Some("Warfarin"),
                brand: Some("Coumadin"),
                strength: Some("5 mg"),
                form: Some("Tablet"),
                ..DocDrug::default()
            },
            Verdict::NameMismatch,
            "the document says Warfarin (brand Coumadin) 5 mg Tablet; NDC 0777-3105-02 is PROZAC (fluoxetine) 20 mg capsule",
        ),
        (
            DocDrug {
                name: Some("Fluoxetine 10 mg capsule"),
                strength: Some("10 mg"),
                form: Some("capsule"),
                ..DocDrug::default()
            },
            Verdict::StrengthMismatch,
            "the document says Fluoxetine 10 mg capsule; NDC 0777-3105-02 is PROZAC (fluoxetine) 20 mg capsule (another strength)",
        ),
        (
            DocDrug {
                strength: Some("10 mg"),
                ..DocDrug::default()
            },
            Verdict::StrengthMismatch,
            "the document says 10 mg; NDC 0777-3105-02 is PROZAC (fluoxetine) 20 mg capsule (another strength)",
        ),
    ];
    for (doc, verdict, want) in rows {
        assert_eq!(check_with_table(doc, &entry.product), *verdict, "{want}");
        assert_eq!(detail(doc, &entry, verdict), *want);
    }
}

/// Each product's strengths as a prescriber writes them: `500 MG`,
/// `250 MG/5ML`, `.5 MG` as `0.5 MG`.
pub(super) fn written(product: &Product) -> String {
    product
        .ingredients
        .iter()
        .map(|i| {
            let value = match i.strength.strip_prefix('.') {
                Some(rest) => format!("0.{rest}"),
                None => i.strength.clone(),
            };
            let unit = i.unit.strip_suffix("/1").unwrap_or(&i.unit);
            format!("{value} {}", unit.to_uppercase())
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

#[test]
#[ignore = "needs RXSYNC_FDA_DIR (the 2019 FDA snapshot); run by .ci/run"]
fn every_fda_product_named_and_dosed_as_a_prescriber_writes_it_is_a_true_pair() {
    let dir =
        std::env::var("RXSYNC_FDA_DIR").expect("RXSYNC_FDA_DIR must name the snapshot's directory");
    let bytes = std::fs::read(std::path::Path::new(&dir).join("product.txt")).expect("product.txt");
    let (products, _) = crate::dict::fda::read_products(&bytes).expect("products");
    let mut checked = 0;
    let mut flagged = Vec::new();
    for p in products
        .iter()
        .filter(|p| !p.excluded && !p.ingredients.is_empty())
    {
        let strength = written(p);
        let form = p.dosage_form.to_lowercase();
        for name in [&p.nonproprietary_name, &p.proprietary_name] {
            let text = format!("{name} {strength} {form}");
            checked += 1;
            let verdict = check_with_table(&named(&text), p);
            if verdict != Verdict::Match {
                flagged.push(format!("{text} vs {}: {verdict:?}", p.strength_text()));
            }
        }
    }
    eprintln!(
        "{checked} texts of {} products, {} flagged",
        products.len(),
        flagged.len()
    );
    for f in flagged.iter().take(30) {
        eprintln!("  {f}");
    }
    assert_eq!(flagged, Vec::<String>::new());
}

#[test]
fn a_comma_before_three_digits_is_a_thousands_separator() {
    let glucophage_1000 = product(
        "Glucophage",
        "Metformin Hydrochloride",
        &[("METFORMIN HYDROCHLORIDE", "1000", "mg/1")],
        "TABLET, FILM COATED",
    );
    let glucophage_500 = product(
        "Glucophage",
        "Metformin Hydrochloride",
        &[("METFORMIN HYDROCHLORIDE", "500", "mg/1")],
        "TABLET, FILM COATED",
    );
    // (name, structured strength, product, verdict)
    let rows: &[(&str, Option<&str>, &Product, Verdict)] = &[
        (
            "metFORMIN 1,000 mg tablet",
            None,
            &glucophage_1000,
            Verdict::Match,
        ),
        (
            "metFORMIN 1,000mg tablet",
            None,
            &glucophage_1000,
            Verdict::Match,
        ),
        (
            "Metformin",
            Some("1,000 mg"),
            &glucophage_1000,
            Verdict::Match,
        ),
        ("Metformin 1 g", None, &glucophage_1000, Verdict::Match),
        (
            "metFORMIN 1,000 mg tablet",
            None,
            &glucophage_500,
            Verdict::StrengthMismatch,
        ),
        (
            "Metformin",
            Some("1,000 mg"),
            &glucophage_500,
            Verdict::StrengthMismatch,
        ),
        (
            "metFORMIN 2,000 mg",
            None,
            &glucophage_1000,
            Verdict::StrengthMismatch,
        ),
    ];
    for (name, strength, p, verdict) in rows {
        let doc = DocDrug {
            name: Some(name),
            strength: *strength,
            ..DocDrug::default()
        };
        assert_eq!(check_with_table(&doc, p), *verdict, "{name} {strength:?}");
    }
}

#[test]
fn insulin_brands_name_their_kind_of_insulin() {
    let insulin = |proprietary: &str, generic: &str| {
        product(
            proprietary,
            generic,
            &[(&generic.to_uppercase(), "100", "[iU]/mL")],
            "INJECTION, SOLUTION",
        )
    };
    let basaglar = insulin("Basaglar", "insulin glargine");
    let lantus = insulin("Lantus", "insulin glargine");
    let humalog = insulin("Humalog", "insulin lispro");
    let humulin_n = insulin("Humulin N", "insulin isophane human");
    let humulin_r = insulin("Humulin R", "insulin human");
    let rows: &[(&str, &Product, Verdict)] = &[
        ("Insulin lispro (Humalog)", &basaglar, Verdict::NameMismatch),
        ("Humalog KwikPen", &lantus, Verdict::NameMismatch),
        ("NovoLog FlexPen", &humalog, Verdict::NameMismatch),
        (
            "insulin aspart 100 units/mL",
            &lantus,
            Verdict::NameMismatch,
        ),
        ("Levemir", &lantus, Verdict::NameMismatch),
        ("Tresiba", &humulin_n, Verdict::NameMismatch),
        ("Lantus Solostar", &basaglar, Verdict::Match),
        ("insulin glargine 100 units/mL", &lantus, Verdict::Match),
        ("Admelog", &humalog, Verdict::Match),
        ("Insulin 100 units/mL", &lantus, Verdict::Match),
        ("insulin NPH", &humulin_n, Verdict::Match),
        ("insulin regular", &humulin_r, Verdict::Match),
        ("Novolin R", &humulin_r, Verdict::Match),
    ];
    for (text, p, verdict) in rows {
        assert_eq!(
            check_with_table(&named(text), p),
            *verdict,
            "{text} vs {}",
            p.proprietary_name
        );
    }
}
