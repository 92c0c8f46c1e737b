//! The drugs the sandbox hands out: oral tablets and capsules of the sample
//! FDA dictionary (samples/ndc/, embedded), chosen so that no two share an
//! active ingredient or an Established Pharmacologic Class (one the default
//! `therapeutic_class_exclusions` does not exclude). Any subset is then a
//! regimen without duplicates, and every NDC maps through the sample
//! dictionary the demo loads.
//!
//! Built once, on first use, by the same reader `rxsync dict import` uses.

use std::sync::LazyLock;

use crate::dict::Product;
use crate::dict::fda::{read_packages, read_products};
use crate::domain::Ndc11;

static PRODUCTS: &[u8] = include_bytes!("../../samples/ndc/product.txt");
static PACKAGES: &[u8] = include_bytes!("../../samples/ndc/package.txt");

/// One drug of the catalog, with the words a document shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Drug {
    /// The package NDC as the FDA publishes it (4-4-2, 5-3-2 or 5-4-1).
    pub package_ndc: String,
    pub ndc11: Ndc11,
    /// `Lisinopril 10 MG Oral Tablet`.
    pub name: String,
    /// The proprietary name (`Prinivil`).
    pub brand: String,
    /// One `(substance, value, unit)` per active ingredient, unit as people
    /// write it (`mg`, `mcg`, `mEq`).
    pub strengths: Vec<(String, String, String)>,
    /// `Tablet` or `Capsule` (with its qualifiers: `Tablet, Film Coated`).
    pub form: String,
    /// `tablet` or `capsule`, the dose unit of the sig.
    pub unit: &'static str,
}

impl Drug {
    /// The package NDC in the layout a document shows: the published
    /// 4-4-2 or 5-3-2 form, or the 11-digit 5-4-2 form with hyphens when
    /// `eleven` is asked for or the published layout is 5-4-1.
    pub fn ndc_text(&self, eleven: bool) -> String {
        let segments: Vec<usize> = self.package_ndc.split('-').map(str::len).collect();
        if eleven || segments == [5, 4, 1] {
            self.ndc11.hyphenated()
        } else {
            self.package_ndc.clone()
        }
    }
}

/// The catalog, in file order.
pub(crate) fn catalog() -> &'static [Drug] {
    static CATALOG: LazyLock<Vec<Drug>> = LazyLock::new(build);
    &CATALOG
}

fn build() -> Vec<Drug> {
    // The embedded files are fixed: a reading error here would be a broken
    // sample, which the unit tests below catch; the catalog is then empty.
    let (Ok((products, _)), Ok((packages, _))) = (read_products(PRODUCTS), read_packages(PACKAGES))
    else {
        return Vec::new();
    };
    let excluded = crate::config::DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS;
    let mut used_ingredients: Vec<String> = Vec::new();
    let mut used_classes: Vec<&str> = Vec::new();
    let mut drugs = Vec::new();
    for product in products.iter().filter(|p| suitable(p)) {
        let names: Vec<String> = product
            .ingredients
            .iter()
            .map(|i| i.name.to_lowercase())
            .collect();
        let classes: Vec<&str> = product
            .epc
            .iter()
            .map(String::as_str)
            .filter(|c| !excluded.contains(c))
            .collect();
        if names.iter().any(|n| used_ingredients.contains(n))
            || classes.iter().any(|c| used_classes.contains(c))
        {
            continue;
        }
        // The generated documents write NDC-11s, so a package must have one.
        let Some((package, ndc11)) = packages
            .iter()
            .filter(|pkg| pkg.product_id == product.product_id)
            .find_map(|pkg| Some((pkg, pkg.ndc11()?)))
        else {
            continue;
        };
        used_ingredients.extend(names);
        used_classes.extend(classes);
        let form = title_case(&product.dosage_form);
        let unit = if product.dosage_form.contains("CAPSULE") {
            "capsule"
        } else {
            "tablet"
        };
        let strengths: Vec<(String, String, String)> = product
            .ingredients
            .iter()
            .map(|i| {
                (
                    title_case(&i.name),
                    decimal(&i.strength),
                    unit_text(&i.unit),
                )
            })
            .collect();
        let name = format!(
            "{} Oral {}",
            strengths
                .iter()
                .map(|(s, v, u)| format!("{s} {v} {}", u.to_uppercase()))
                .collect::<Vec<_>>()
                .join(" / "),
            if unit == "capsule" {
                "Capsule"
            } else {
                "Tablet"
            }
        );
        drugs.push(Drug {
            package_ndc: package.package_ndc.clone(),
            ndc11,
            name,
            brand: product.proprietary_name.clone(),
            strengths,
            form,
            unit,
        });
    }
    drugs
}

/// A prescription oral tablet or capsule, not excluded, with numeric
/// per-unit strengths (`mg/1`): what a sig "take 1 tablet" fits.
fn suitable(p: &Product) -> bool {
    !p.excluded
        && p.product_type == "HUMAN PRESCRIPTION DRUG"
        && p.route == "ORAL"
        && (p.dosage_form.starts_with("TABLET") || p.dosage_form.starts_with("CAPSULE"))
        && !p.ingredients.is_empty()
        && p.ingredients
            .iter()
            .all(|i| i.unit.ends_with("/1") && i.strength.parse::<f64>().is_ok_and(|v| v > 0.0))
}

/// `.5` → `0.5`, as people write it.
fn decimal(s: &str) -> String {
    if s.starts_with('.') {
        format!("0{s}")
    } else {
        s.to_string()
    }
}

/// `mg/1` → `mg`, `ug/1` → `mcg`, `meq/1` → `mEq`.
fn unit_text(unit: &str) -> String {
    match unit.trim_end_matches("/1") {
        "ug" => "mcg".to_string(),
        "meq" => "mEq".to_string(),
        other => other.to_string(),
    }
}

/// `METFORMIN HYDROCHLORIDE` → `Metformin Hydrochloride`.
fn title_case(s: &str) -> String {
    s.split(' ')
        .map(|word| {
            let lower = word.to_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_large_enough_and_shares_no_ingredient_nor_class() {
        let drugs = catalog();
        assert!(drugs.len() >= 30, "only {} drugs", drugs.len());
        let mut seen = std::collections::HashSet::new();
        for drug in drugs {
            for (substance, _, _) in &drug.strengths {
                assert!(seen.insert(substance.clone()), "{substance} twice");
            }
        }
        let (Ok((products, _)), Ok((packages, _))) =
            (read_products(PRODUCTS), read_packages(PACKAGES))
        else {
            panic!("the embedded sample reads");
        };
        let mut classes = std::collections::HashSet::new();
        for drug in drugs {
            let package = packages.iter().find(|k| k.ndc11() == Some(drug.ndc11));
            let product = package
                .and_then(|k| products.iter().find(|p| p.product_id == k.product_id))
                .expect("every drug is in the sample");
            for class in &product.epc {
                if !crate::config::DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS.contains(&class.as_str()) {
                    assert!(classes.insert(class.clone()), "{class} twice");
                }
            }
        }
    }

    #[test]
    fn ndc_texts_are_hyphenated_in_the_layouts_documents_use() {
        for drug in catalog() {
            for eleven in [false, true] {
                let text = drug.ndc_text(eleven);
                let layout: Vec<usize> = text.split('-').map(str::len).collect();
                assert!(
                    matches!(layout.as_slice(), [5, 4, 2] | [4, 4, 2] | [5, 3, 2]),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn names_read_like_clinical_drug_names() {
        let lisinopril = catalog()
            .iter()
            .find(|d| d.brand == "PRINIVIL")
            .expect("Prinivil is in the sample");
        assert_eq!(lisinopril.name, "Lisinopril 10 MG Oral Tablet");
        assert_eq!(lisinopril.ndc_text(false), "0006-0106-54");
        assert_eq!(decimal(".5"), "0.5");
        assert_eq!(unit_text("ug/1"), "mcg");
    }
}
