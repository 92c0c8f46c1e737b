//! Clinical duplicates between items, strictest first (medication-notes.md):
//! the same package NDC; the same product in another package; the same
//! clinical drug (ingredients, strengths, dose form) from another labeler;
//! and, as a warning, the same active ingredient at another strength or
//! form by the same route. Each item is flagged once, at its strictest
//! level, against the first earlier item it repeats. Linear in the number
//! of items: one hash map per level.

use super::{Flag, Item};
use crate::domain::{CodeSystem, ExceptionKind};
use std::collections::HashMap;

pub(super) fn find(items: &[Item]) -> Vec<Flag> {
    let mut by_ndc: HashMap<String, usize> = HashMap::new();
    let mut by_product: HashMap<String, usize> = HashMap::new();
    let mut by_clinical: HashMap<String, usize> = HashMap::new();
    let mut by_ingredient: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_code: HashMap<(String, String), usize> = HashMap::new();
    let mut flags = Vec::new();

    for (i, item) in items.iter().enumerate() {
        let label = |j: usize| {
            format!(
                "item {} ({})",
                j + 1,
                items[j].name.as_deref().unwrap_or("unnamed")
            )
        };
        let mut flag: Option<(ExceptionKind, usize, String)> = None;
        if let Some(n) = item.ndc11 {
            if let Some(&j) = by_ndc.get(n.as_str()) {
                flag = Some((
                    ExceptionKind::Duplicate,
                    j,
                    format!("same package NDC {} as {}", n.hyphenated(), label(j)),
                ));
            } else if let Some(&j) = by_product.get(n.product_key()) {
                let other = items[j].ndc11.map(|o| o.hyphenated()).unwrap_or_default();
                flag = Some((
                    ExceptionKind::Duplicate,
                    j,
                    format!(
                        "same product (labeler+product {}) as {} in another package ({} vs {})",
                        n.product_key(),
                        label(j),
                        n.hyphenated(),
                        other
                    ),
                ));
            }
        }
        if flag.is_none() {
            flag = non_ndc_repeat(item, &by_code).map(|(j, code)| {
                (
                    ExceptionKind::Duplicate,
                    j,
                    format!("same drug code {code} as {}", label(j)),
                )
            });
        }
        if flag.is_none()
            && let Some(entry) = &item.product
        {
            let p = &entry.product;
            if let Some(&j) = by_clinical.get(&p.clinical_key()) {
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
                flag = Some((
                    ExceptionKind::Duplicate,
                    j,
                    format!(
                        "same clinical drug as {}: {} {} {}, {why}",
                        label(j),
                        p.ingredient_key(),
                        p.strength_text(),
                        p.dosage_form
                    ),
                ));
            } else if let Some(&j) = by_ingredient.get(&p.ingredient_key()).and_then(|js| {
                js.iter().find(|&&j| {
                    let q = items[j]
                        .product
                        .as_ref()
                        .map(|e| e.product.route.as_str())
                        .unwrap_or("");
                    q.is_empty() || p.route.is_empty() || q == p.route
                })
            }) {
                let q = items[j].product.as_ref().map(|e| &e.product);
                flag = Some((
                    ExceptionKind::TherapeuticDuplicate,
                    j,
                    format!(
                        "same active ingredient ({}) as {} at another strength or form ({} {} vs {} {})",
                        p.ingredient_key(),
                        label(j),
                        p.strength_text(),
                        p.dosage_form,
                        q.map(|q| q.strength_text()).unwrap_or_default(),
                        q.map(|q| q.dosage_form.as_str()).unwrap_or_default()
                    ),
                ));
            }
        }

        if let Some(n) = item.ndc11 {
            by_ndc.entry(n.as_str().to_string()).or_insert(i);
            by_product.entry(n.product_key().to_string()).or_insert(i);
        }
        if item.ndc11.is_none() {
            for c in item.codes.iter().filter(|c| c.system != CodeSystem::Ndc) {
                by_code
                    .entry((c.system.label().to_string(), c.value.clone()))
                    .or_insert(i);
            }
        }
        if let Some(entry) = &item.product {
            by_clinical.entry(entry.product.clinical_key()).or_insert(i);
            by_ingredient
                .entry(entry.product.ingredient_key())
                .or_default()
                .push(i);
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

/// Two items without an NDC that carry the same code of another system
/// (the same RxNorm concept, say) are the same drug.
fn non_ndc_repeat(
    item: &Item,
    by_code: &HashMap<(String, String), usize>,
) -> Option<(usize, String)> {
    if item.ndc11.is_some() {
        return None;
    }
    item.codes
        .iter()
        .filter(|c| c.system != CodeSystem::Ndc)
        .find_map(|c| {
            by_code
                .get(&(c.system.label().to_string(), c.value.clone()))
                .map(|&j| (j, format!("{} {}", c.system.label(), c.value)))
        })
}
