//! Brands through the dictionary: a brand written alone over another
//! labeler's product of the same substances is the drug its NDC names; a
//! brand of another drug is not.

use super::tests::{named, product, prozac, written};
use super::*;
use crate::dict::MemoryDictionary;
use std::collections::{BTreeSet, HashMap};

fn lupin(generic: &str, substances: &[(&str, &str, &str)]) -> Product {
    let mut p = product(generic, generic, substances, "TABLET");
    p.labeler = "Lupin Pharmaceuticals, Inc.".to_string();
    p
}

/// A dictionary whose brands (none of them in `words::BRANDS`) are those of
/// these products, as the store would answer for them.
fn brands() -> MemoryDictionary {
    MemoryDictionary::new(
        &[
            product(
                "Zebeta",
                "bisoprolol fumarate",
                &[("BISOPROLOL FUMARATE", "5", "mg/1")],
                "TABLET, FILM COATED",
            ),
            product(
                "Tri-Sprintec",
                "norgestimate and ethinyl estradiol",
                &[
                    ("NORGESTIMATE", ".25", "mg/1"),
                    ("ETHINYL ESTRADIOL", ".035", "mg/1"),
                ],
                "KIT",
            ),
            product(
                "Qbrelis",
                "lisinopril",
                &[("LISINOPRIL", "1", "mg/mL")],
                "SOLUTION",
            ),
            product(
                "Klor-Con",
                "potassium chloride",
                &[("POTASSIUM CHLORIDE", "10", "meq/1")],
                "TABLET, EXTENDED RELEASE",
            ),
            // A generic's name, not a brand: "Amlodipine" must not come to
            // stand for atorvastatin.
            product(
                "Amlodipine and Atorvastatin",
                "amlodipine and atorvastatin",
                &[
                    ("AMLODIPINE BESYLATE", "5", "mg/1"),
                    ("ATORVASTATIN CALCIUM", "10", "mg/1"),
                ],
                "TABLET",
            ),
            product(
                "Jantoven",
                "warfarin sodium",
                &[("WARFARIN SODIUM", "5", "mg/1")],
                "TABLET",
            ),
        ],
        &[],
    )
}

#[test]
fn a_brand_alone_over_another_labelers_generic_names_its_substances() {
    let dict = brands();
    let rows: &[(&str, Product)] = &[
        (
            "Zebeta 5 mg tablet",
            lupin(
                "Bisoprolol Fumarate",
                &[("BISOPROLOL FUMARATE", "5", "mg/1")],
            ),
        ),
        (
            "ZEBETA 5MG TAB",
            lupin(
                "Bisoprolol Fumarate",
                &[("BISOPROLOL FUMARATE", "5", "mg/1")],
            ),
        ),
        (
            "Tri-Sprintec 28 day pack",
            lupin(
                "Norgestimate and Ethinyl Estradiol",
                &[
                    ("NORGESTIMATE", ".25", "mg/1"),
                    ("ETHINYL ESTRADIOL", ".035", "mg/1"),
                ],
            ),
        ),
        (
            "Qbrelis 1 mg/mL oral solution",
            lupin("Lisinopril", &[("LISINOPRIL", "1", "mg/mL")]),
        ),
        // Its substance is salt words only.
        (
            "Klor-Con 10 mEq ER tablet",
            lupin(
                "Potassium Chloride",
                &[("POTASSIUM CHLORIDE", "10", "meq/1")],
            ),
        ),
    ];
    for (text, p) in rows {
        assert_eq!(check(&named(text), p, &dict), Verdict::Match, "{text}");
        // Without the dictionary's word it was a flag.
        assert_eq!(
            check(&named(text), p, &MemoryDictionary::default()),
            Verdict::NameMismatch,
            "{text}"
        );
    }
}

#[test]
fn a_brand_of_another_drug_is_still_a_mismatch() {
    let dict = brands();
    let atorvastatin = lupin(
        "Atorvastatin Calcium",
        &[("ATORVASTATIN CALCIUM", "10", "mg/1")],
    );
    let rows: &[(&str, &Product)] = &[
        ("Zebeta 5 mg tablet", &prozac()),
        ("Jantoven 5 mg", &prozac()),
        // In the built-in table as much as in the dictionary.
        ("Coumadin", &prozac()),
        ("Warfarin 5 MG Oral Tablet", &prozac()),
        ("Klor-Con 10 mEq", &prozac()),
        // A generic's proprietary name stands for nothing but its words.
        ("Amlodipine 5 mg", &atorvastatin),
    ];
    for (text, p) in rows {
        assert_eq!(
            check(&named(text), p, &dict),
            Verdict::NameMismatch,
            "{text} vs {}",
            p.proprietary_name
        );
    }
}

#[test]
fn the_words_asked_are_the_first_drug_words_and_the_first_two_words_of_each_text() {
    let doc = crate::parse::parse(
        br#"<ContinuityOfCareRecord xmlns="urn:astm-org:CCR"><Body><Medications>
        <Medication><Product><ProductName><Text>Zebeta 5 MG Oral Tablet</Text></ProductName>
        <BrandName><Text>Tri-Sprintec</Text></BrandName></Product></Medication>
        <Medication><Product><ProductName><Text>Losartan Potassium 50 mg tab alpha beta gamma delta</Text></ProductName></Product></Medication>
        </Medications></Body></ContinuityOfCareRecord>"#,
        crate::parse::DocFormat::Ccr,
    )
    .expect("a CCR");
    assert_eq!(
        brand_words(&doc),
        [
            "alpha",
            "beta",
            "gamma",
            "losartan",
            "losartan potassium",
            "sprintec",
            "tri",
            "tri sprintec",
            "zebeta",
        ]
    );
}

/// Each product's ingredients and strengths, as one key.
fn substance_key(p: &Product) -> String {
    let mut parts: Vec<String> = p
        .ingredients
        .iter()
        .map(|i| format!("{}={}{}", i.name.to_lowercase(), i.strength, i.unit))
        .collect();
    parts.sort();
    parts.join("+")
}

#[test]
#[ignore = "needs RXSYNC_FDA_DIR (the 2019 FDA snapshot); run by .ci/run"]
fn every_prescription_brand_alone_over_another_labelers_same_drug_is_no_mismatch() {
    let dir =
        std::env::var("RXSYNC_FDA_DIR").expect("RXSYNC_FDA_DIR must name the snapshot's directory");
    let bytes = std::fs::read(std::path::Path::new(&dir).join("product.txt")).expect("product.txt");
    let (products, _) = crate::dict::fda::read_products(&bytes).expect("products");
    let dict = MemoryDictionary::new(&products, &[]);
    let usable: Vec<&Product> = products
        .iter()
        .filter(|p| !p.excluded && !p.ingredients.is_empty())
        .collect();
    let mut same_drug: HashMap<String, Vec<&Product>> = HashMap::new();
    for p in &usable {
        same_drug.entry(substance_key(p)).or_default().push(p);
    }
    let (mut pairs, mut names, mut brands) = (0, BTreeSet::new(), BTreeSet::new());
    let mut flagged = Vec::new();
    for p in usable
        .iter()
        .filter(|p| p.product_type == "HUMAN PRESCRIPTION DRUG")
    {
        let name = crate::dict::brand_key(&p.proprietary_name);
        if name.is_empty() {
            continue;
        }
        let text = format!(
            "{} {} {}",
            p.proprietary_name,
            written(p),
            p.dosage_form.to_lowercase()
        );
        let others = same_drug[&substance_key(p)].iter().filter(|o| {
            o.labeler != p.labeler && crate::dict::brand_key(&o.proprietary_name) != name
        });
        for other in others {
            pairs += 1;
            names.insert(name.clone());
            if p.brand_key().is_some() {
                brands.insert(name.clone());
            }
            let verdict = check(&named(&text), other, &dict);
            if verdict != Verdict::Match {
                flagged.push(format!(
                    "{text} vs {} ({}): {verdict:?}",
                    other.proprietary_name, other.labeler
                ));
            }
        }
    }
    let mut by_text: std::collections::BTreeMap<String, usize> = Default::default();
    for f in &flagged {
        *by_text
            .entry(f.split(" vs ").next().unwrap_or("").to_string())
            .or_default() += 1;
    }
    eprintln!(
        "{pairs} brand-alone texts over another labeler's same drug ({} proprietary names, \
         {} of them brands), {} flagged",
        names.len(),
        brands.len(),
        flagged.len()
    );
    for (text, n) in by_text.iter().take(60) {
        eprintln!("  {text}: {n}");
    }
    for f in flagged.iter().take(30) {
        eprintln!("  {f}");
    }
    assert_eq!(flagged, Vec::<String>::new());
}
