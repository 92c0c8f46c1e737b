//! Brands: which active substances a proprietary name stands for, so that
//! a document giving only "Zestril 10 mg tablet" over the NDC of another
//! labeler's lisinopril can be recognised as naming that drug.
//!
//! A brand is keyed by its normalized proprietary name (`brand_key`: lower
//! case, every run of punctuation and spaces one space), and is found by
//! any key it starts with at a word boundary — in practice its first word,
//! since documents write "Zestril 10 MG Oral Tablet". A proprietary name
//! whose first word names one of its own substances ("Lisinopril",
//! "Amlodipine and Atorvastatin") is no brand: the text already says what
//! it names, and counting it would let "amlodipine" stand for atorvastatin.
//!
//! Pure: the store keeps the same key (`dict_products.brand_key`) and
//! answers the same range question with an index.

use super::Product;
use std::collections::{BTreeMap, BTreeSet};

/// The normalized form of a proprietary name or of a word of a text:
/// lower case, split at every non-alphanumeric character, joined by one
/// space, from its first word of three letters or more without a digit —
/// a text's word that can name a drug (`Tri-Sprintec` → `tri sprintec`,
/// `ED-Spaz` → `spaz`, `60 Second Taste` → `second taste`).
pub fn brand_key(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .skip_while(|w| w.chars().count() < 3 || w.chars().any(|c| c.is_ascii_digit()))
        .collect();
    words.join(" ")
}

/// The first key that sorts after every brand key starting with `key` at
/// a word boundary: keys hold no character below the space but the space,
/// so `[key, upper_bound(key))` is `key` itself and `key ` followed by
/// anything. The store's index range and `BrandIndex` share it.
pub fn upper_bound(key: &str) -> String {
    format!("{key}!")
}

impl Product {
    /// The product's brand key, when its proprietary name is a brand
    /// (`brand_of`).
    pub fn brand_key(&self) -> Option<String> {
        let substances: Vec<&str> = self.ingredients.iter().map(|i| i.name.as_str()).collect();
        brand_of(&self.proprietary_name, &substances)
    }
}

/// The brand key of a proprietary name, when it is a brand: not empty, of
/// a product with substances, and its first word names none of them. (The
/// substances, not the generic name: the FDA's substance names are a
/// controlled vocabulary, while a misspelt generic proprietary name —
/// `Amoxicillan` — often repeats its misspelling as the generic name, and
/// is best read as a brand of its substance.)
pub fn brand_of(proprietary: &str, substances: &[&str]) -> Option<String> {
    if substances.is_empty() {
        return None;
    }
    let key = brand_key(proprietary);
    let first = key.split(' ').next().filter(|w| !w.is_empty())?;
    let names_itself = substances.iter().map(|t| t.to_lowercase()).any(|t| {
        t.split(|c: char| !c.is_alphanumeric())
            .any(|w| prefix_either(first, w))
    });
    (!names_itself).then_some(key)
}

/// Equal, or one a prefix (of four characters or more) of the other:
/// "amox" in "Amox-Clav" names amoxicillin.
fn prefix_either(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short == long || (short.chars().count() >= 4 && long.starts_with(short))
}

/// Brands by key, with the union of the substances of every product that
/// bears the name (upper case, as the FDA writes them).
#[derive(Debug, Default, Clone)]
pub struct BrandIndex {
    brands: BTreeMap<String, BTreeSet<String>>,
}

impl BrandIndex {
    /// The brands of these products.
    pub fn of(products: &[Product]) -> BrandIndex {
        let mut index = BrandIndex::default();
        for p in products {
            if let Some(key) = p.brand_key() {
                index.insert(&key, p.ingredients.iter().map(|i| i.name.clone()));
            }
        }
        index
    }

    /// Adds substances to the brand `key` (a `brand_key`).
    pub fn insert(&mut self, key: &str, substances: impl IntoIterator<Item = String>) {
        self.brands
            .entry(key.to_string())
            .or_default()
            .extend(substances);
    }

    /// The substances of every brand whose key is `key` or starts with
    /// `key` and a space; None when there is none.
    pub fn substances(&self, key: &str) -> Option<Vec<String>> {
        let key = brand_key(key);
        if key.is_empty() {
            return None;
        }
        let found: BTreeSet<&String> = self
            .brands
            .range(key.clone()..upper_bound(&key))
            .flat_map(|(_, s)| s)
            .collect();
        (!found.is_empty()).then(|| found.into_iter().cloned().collect())
    }

    /// How many brand keys it holds.
    pub fn len(&self) -> usize {
        self.brands.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.brands.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::Ingredient;

    fn product(proprietary: &str, generic: &str, substances: &[&str]) -> Product {
        Product {
            product_id: proprietary.to_string(),
            product_ndc: "0000-0000".to_string(),
            product_type: "HUMAN PRESCRIPTION DRUG".to_string(),
            proprietary_name: proprietary.to_string(),
            nonproprietary_name: generic.to_string(),
            dosage_form: "TABLET".to_string(),
            route: "ORAL".to_string(),
            labeler: "L".to_string(),
            ingredients: substances
                .iter()
                .map(|s| Ingredient {
                    name: s.to_string(),
                    strength: "1".to_string(),
                    unit: "mg/1".to_string(),
                })
                .collect(),
            excluded: false,
            epc: Vec::new(),
        }
    }

    #[test]
    fn a_proprietary_name_is_a_brand_unless_its_first_word_names_its_own_substance() {
        let rows: &[(Product, Option<&str>)] = &[
            (
                product("Zestril", "lisinopril", &["LISINOPRIL"]),
                Some("zestril"),
            ),
            (
                product(
                    "Tri-Sprintec",
                    "norgestimate and ethinyl estradiol",
                    &["NORGESTIMATE", "ETHINYL ESTRADIOL"],
                ),
                Some("tri sprintec"),
            ),
            (product("Lisinopril", "lisinopril", &["LISINOPRIL"]), None),
            (
                product(
                    "Amlodipine and Atorvastatin",
                    "amlodipine besylate and atorvastatin calcium",
                    &["AMLODIPINE BESYLATE", "ATORVASTATIN CALCIUM TRIHYDRATE"],
                ),
                None,
            ),
            (
                product(
                    "Amox-Clav",
                    "amoxicillin and clavulanate potassium",
                    &["AMOXICILLIN", "CLAVULANATE POTASSIUM"],
                ),
                None,
            ),
            (
                product("Sodium Chloride", "sodium chloride", &["SODIUM CHLORIDE"]),
                None,
            ),
            (product("", "lisinopril", &["LISINOPRIL"]), None),
            (product("Kit", "", &[]), None),
        ];
        for (p, key) in rows {
            assert_eq!(p.brand_key().as_deref(), *key, "{}", p.proprietary_name);
        }
    }

    #[test]
    fn a_brand_is_found_by_its_name_or_its_first_words_never_by_a_longer_word() {
        let index = BrandIndex::of(&[
            product(
                "Bactrim DS",
                "sulfamethoxazole and trimethoprim",
                &["SULFAMETHOXAZOLE", "TRIMETHOPRIM"],
            ),
            product("Zestril", "lisinopril", &["LISINOPRIL"]),
            product(
                "Zestoretic",
                "lisinopril and hydrochlorothiazide",
                &["LISINOPRIL", "HYDROCHLOROTHIAZIDE"],
            ),
        ]);
        let both = Some(vec![
            "SULFAMETHOXAZOLE".to_string(),
            "TRIMETHOPRIM".to_string(),
        ]);
        assert_eq!(index.substances("bactrim"), both);
        assert_eq!(index.substances("Bactrim DS"), both);
        assert_eq!(index.substances("BACTRIM-DS"), both);
        assert_eq!(
            index.substances("zestril"),
            Some(vec!["LISINOPRIL".to_string()])
        );
        assert_eq!(index.substances("zest"), None);
        assert_eq!(index.substances("bactrim ss"), None);
        assert_eq!(index.substances(""), None);
    }
}
