//! Clinical duplicates between items, strictest first (medication-notes.md):
//! the same package NDC; the same product in another package; the same
//! clinical drug (ingredients, strengths, dose form) from another labeler;
//! and, as a warning, the same active ingredient at another strength or
//! form by the same route. Each item is flagged once, at its strictest
//! level, against the first earlier item it repeats. Linear in the number
//! of items: one hash map per level, keys built once per item.

use super::{Flag, Item};
use crate::dict::DictEntry;
use crate::domain::{Code, CodeSystem, ExceptionKind, Ndc12};
use std::collections::HashMap;

/// What duplicate detection needs to know of an item: the normalizer's
/// items, or a stored regimen's items in force (after a clinician maps one,
/// `store::queue` checks again).
#[derive(Debug, Clone, Copy)]
pub struct DupItem<'a> {
    /// The position people see (1-based; removed items keep theirs).
    pub position: usize,
    /// The NDC-11 in its 12-digit form, or a new 6-digit labeler's NDC.
    pub ndc: Option<Ndc12>,
    pub name: Option<&'a str>,
    /// What the dictionary knows of `ndc`.
    pub product: Option<&'a DictEntry>,
    pub codes: &'a [Code],
}

/// The keys an item is compared by.
struct Keys {
    ndc: Option<String>,
    product: Option<String>,
    clinical: Option<String>,
    ingredient: Option<String>,
    /// Each active ingredient, for the same-ingredient warning.
    ingredients: Vec<String>,
    /// Codes of other systems, for items without an NDC.
    other_codes: Vec<String>,
}

fn keys(item: &DupItem<'_>) -> Keys {
    Keys {
        // The 11-digit keys as before; a new labeler's 12-digit keys are one
        // digit longer, so the two never collide.
        ndc: item.ndc.map(|n| match n.to_ndc11() {
            Some(n11) => n11.as_str().to_string(),
            None => n.as_str().to_string(),
        }),
        product: item.ndc.map(|n| match n.to_ndc11() {
            Some(n11) => n11.product_key().to_string(),
            None => n.product_key().to_string(),
        }),
        clinical: item.product.map(|e| e.product.clinical_key()),
        ingredient: item.product.map(|e| e.product.ingredient_key()),
        ingredients: item
            .product
            .map(|e| {
                e.product
                    .ingredients
                    .iter()
                    .map(|i| i.name.to_lowercase())
                    .collect()
            })
            .unwrap_or_default(),
        other_codes: if item.ndc.is_none() {
            item.codes
                .iter()
                .filter(|c| c.system != CodeSystem::Ndc)
                .map(|c| format!("{} {}", c.system.label(), c.value))
                .collect()
        } else {
            Vec::new()
        },
    }
}

pub(super) fn find(items: &[Item]) -> Vec<Flag> {
    let items: Vec<DupItem<'_>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| DupItem {
            position: i + 1,
            ndc: item.ndc11.map(|n| n.to_ndc12()).or(item.ndc12),
            name: item.name.as_deref(),
            product: item.product.as_deref(),
            codes: &item.codes,
        })
        .collect();
    find_among(&items)
}

/// Duplicate flags among `items`, in order (indexes into `items`).
pub fn find_among(items: &[DupItem<'_>]) -> Vec<Flag> {
    let keys: Vec<Keys> = items.iter().map(keys).collect();
    let mut by_ndc: HashMap<&str, usize> = HashMap::new();
    let mut by_product: HashMap<&str, usize> = HashMap::new();
    let mut by_clinical: HashMap<&str, usize> = HashMap::new();
    let mut by_ingredient: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_code: HashMap<&str, usize> = HashMap::new();
    let mut flags = Vec::new();

    for (i, (item, k)) in items.iter().zip(&keys).enumerate() {
        let label = |j: usize| {
            format!(
                "item {} ({})",
                items[j].position,
                items[j].name.unwrap_or("unnamed")
            )
        };
        let hyphenated = |j: usize| items[j].ndc.map(|n| n.shown()).unwrap_or_default();
        let found = |map: &HashMap<&str, usize>, key: &Option<String>| {
            key.as_deref().and_then(|k| map.get(k).copied())
        };

        let flag: Option<(ExceptionKind, usize, String)> = if let Some(j) = found(&by_ndc, &k.ndc) {
            Some((
                ExceptionKind::Duplicate,
                j,
                format!("same package NDC {} as {}", hyphenated(i), label(j)),
            ))
        } else if let Some(j) = found(&by_product, &k.product) {
            Some((
                ExceptionKind::Duplicate,
                j,
                format!(
                    "same product (labeler+product {}) as {} in another package ({} vs {})",
                    k.product.as_deref().unwrap_or_default(),
                    label(j),
                    hyphenated(i),
                    hyphenated(j)
                ),
            ))
        } else if let Some((j, code)) = k
            .other_codes
            .iter()
            .find_map(|c| by_code.get(c.as_str()).map(|&j| (j, c)))
        {
            Some((
                ExceptionKind::Duplicate,
                j,
                format!("same drug code {code} as {}", label(j)),
            ))
        } else if let (Some(j), Some(entry)) = (found(&by_clinical, &k.clinical), &item.product) {
            let p = &entry.product;
            let other = items[j]
                .product
                .as_ref()
                .map(|e| e.product.labeler.as_str())
                .unwrap_or("");
            let why = if other == p.labeler {
                "from the same labeler under another product code".to_string()
            } else {
                format!("from another labeler ({} vs {})", p.labeler, other)
            };
            Some((
                ExceptionKind::Duplicate,
                j,
                format!(
                    "same clinical drug as {}: {} {} {}, {why}",
                    label(j),
                    k.ingredient.as_deref().unwrap_or_default(),
                    p.strength_text(),
                    p.dosage_form
                ),
            ))
        } else if let Some(entry) = &item.product {
            let p = &entry.product;
            let same_route = |j: &&usize| {
                let q = items[**j]
                    .product
                    .as_ref()
                    .map(|e| e.product.route.as_str())
                    .unwrap_or("");
                q.is_empty() || p.route.is_empty() || q == p.route
            };
            // Any shared active ingredient by the same route: lisinopril
            // 10 mg and 40 mg, or amlodipine alone and in a combination.
            k.ingredients
                .iter()
                .find_map(|name| {
                    let j = by_ingredient.get(name.as_str())?.iter().find(same_route).copied()?;
                    Some((name, j))
                })
                .map(|(name, j)| {
                    let q = items[j].product.as_ref().map(|e| &e.product);
                    (
                        ExceptionKind::TherapeuticDuplicate,
                        j,
                        format!(
                            "same active ingredient ({}) as {} at another strength or form ({} {} vs {} {})",
                            name,
                            label(j),
                            p.strength_text(),
                            p.dosage_form,
                            q.map(|q| q.strength_text()).unwrap_or_default(),
                            q.map(|q| q.dosage_form.as_str()).unwrap_or_default()
                        ),
                    )
                })
        } else {
            None
        };

        if let Some(key) = &k.ndc {
            by_ndc.entry(key).or_insert(i);
        }
        if let Some(key) = &k.product {
            by_product.entry(key).or_insert(i);
        }
        for c in &k.other_codes {
            by_code.entry(c).or_insert(i);
        }
        if let Some(key) = &k.clinical {
            by_clinical.entry(key).or_insert(i);
        }
        for name in &k.ingredients {
            let earlier = by_ingredient.entry(name).or_default();
            if earlier.last() != Some(&i) {
                earlier.push(i);
            }
        }
        if let Some((kind, j, detail)) = flag {
            flags.push(Flag {
                kind,
                item: Some(i),
                related: Some(j),
                detail,
            });
        }
    }
    flags
}
