//! Clinical duplicates between items, strictest first (medication-notes.md):
//! the same package NDC; the same product in another package; the same
//! clinical drug (ingredients, strengths, dose form) from another labeler;
//! and, as warnings, the same active ingredient at another strength or
//! form by an overlapping route, then another active ingredient of the same
//! FDA Established Pharmacologic Class by an overlapping route (unless the
//! class is excluded: vitamins, vaccines… are taken together by design).
//! Each item is flagged once, at its strictest level, against the first
//! earlier item it repeats. Linear in the number of items: one hash map per
//! level, keys built once per item; the class level keys its map by class
//! and route, so it never scans a class's members.

use super::{Flag, Item};
use crate::dict::DictEntry;
use crate::domain::{Code, CodeSystem, ExceptionKind, Ndc12};
use std::collections::{HashMap, HashSet};

/// What the therapeutic-class level needs beyond the items: the classes it
/// ignores and the dictionary snapshot its flags name (classes are
/// dictionary knowledge, and change with the directory).
#[derive(Debug, Clone)]
pub struct ClassRule<'a> {
    /// Excluded classes, lower-cased.
    excluded: HashSet<String>,
    /// `dict::snapshot_label` of the dictionary the classes come from.
    snapshot: Option<&'a str>,
}

impl<'a> ClassRule<'a> {
    /// `exclusions` as configured (`Options::therapeutic_class_exclusions`);
    /// `snapshot` as `DrugDictionary::snapshot` gives it.
    pub fn new(exclusions: &[String], snapshot: Option<&'a str>) -> ClassRule<'a> {
        ClassRule {
            excluded: exclusions.iter().map(|c| c.to_lowercase()).collect(),
            snapshot,
        }
    }

    fn counts(&self, class: &str) -> bool {
        !self.excluded.contains(&class.to_lowercase())
    }
}

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

/// The keys that say two items are the same drug, strictest first: the
/// levels of a `duplicate`. `reconcile` lines up the lists of a patient's
/// sources by the same keys, so "the same drug" means one thing everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrugKeys {
    /// The package NDC (11 digits, or a new labeler's 12).
    pub ndc: Option<String>,
    /// Labeler and product segments: the same product in another package.
    pub product: Option<String>,
    /// Codes of other systems (`RxNorm 197884`), for an item without an NDC.
    pub other_codes: Vec<String>,
    /// Ingredients, strengths and dose form: the same clinical drug.
    pub clinical: Option<String>,
    /// The active ingredients alone, at any strength or form.
    pub ingredient: Option<String>,
}

/// The keys an item is the same drug as another by (see `DrugKeys`).
pub fn drug_keys(item: &DupItem<'_>) -> DrugKeys {
    DrugKeys {
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
        other_codes: if item.ndc.is_none() {
            item.codes
                .iter()
                .filter(|c| c.system != CodeSystem::Ndc)
                .map(|c| format!("{} {}", c.system.label(), c.value))
                .collect()
        } else {
            Vec::new()
        },
        clinical: item.product.map(|e| e.product.clinical_key()),
        ingredient: item.product.map(|e| e.product.ingredient_key()),
    }
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
    /// The product's routes (`ORAL`; FDA lists several as `A; B`); empty
    /// when unknown, and an unknown route overlaps every route.
    routes: Vec<String>,
    /// The product's Established Pharmacologic Classes that count.
    classes: Vec<String>,
}

fn keys(item: &DupItem<'_>, rule: &ClassRule<'_>) -> Keys {
    let product = item.product.map(|e| &e.product);
    let DrugKeys {
        ndc,
        product: product_key,
        other_codes,
        clinical,
        ingredient,
    } = drug_keys(item);
    Keys {
        ndc,
        product: product_key,
        other_codes,
        clinical,
        ingredient,
        routes: product
            .map(|p| {
                p.route
                    .split(';')
                    .map(|r| r.trim().to_uppercase())
                    .filter(|r| !r.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        classes: product
            .map(|p| p.epc.iter().filter(|c| rule.counts(c)).cloned().collect())
            .unwrap_or_default(),
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
    }
}

/// Whether two items can be taken the same way: a route in common, or a
/// route unknown. Oral and topical lisinopril are no duplicate.
fn routes_overlap(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|r| b.contains(r))
}

pub(super) fn find(items: &[Item], rule: &ClassRule<'_>) -> Vec<Flag> {
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
    find_among(&items, rule)
}

/// Duplicate flags among `items`, in order (indexes into `items`).
pub fn find_among(items: &[DupItem<'_>], rule: &ClassRule<'_>) -> Vec<Flag> {
    let keys: Vec<Keys> = items.iter().map(|i| keys(i, rule)).collect();
    let mut by_ndc: HashMap<&str, usize> = HashMap::new();
    let mut by_product: HashMap<&str, usize> = HashMap::new();
    let mut by_clinical: HashMap<&str, usize> = HashMap::new();
    let mut by_ingredient: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_code: HashMap<&str, usize> = HashMap::new();
    let mut by_class = ClassIndex::default();
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
            let same_route = |j: &&usize| routes_overlap(&keys[**j].routes, &k.routes);
            // Any shared active ingredient by the same route: lisinopril
            // 10 mg and 40 mg, or amlodipine alone and in a combination.
            let same_ingredient = k.ingredients
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
                });
            // Else another ingredient of the same class by the same route:
            // two statins, or an ACE inhibitor and a combination holding
            // one. Reaching here, no earlier item by an overlapping route
            // shares an ingredient with this one, so the two differ in
            // every active ingredient.
            same_ingredient.or_else(|| {
                let (j, shared) = by_class.earliest(&k.classes, &k.routes)?;
                Some((
                    ExceptionKind::TherapeuticDuplicate,
                    j,
                    format!(
                        "both {} ({}, {}); dictionary snapshot {}",
                        shared.join(" and "),
                        short_label(&items[j]),
                        short_label(item),
                        rule.snapshot.unwrap_or("not recorded")
                    ),
                ))
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
        by_class.add(i, &k.classes, &k.routes);
        if let Some((kind, j, detail)) = flag {
            flags.push(Flag {
                kind,
                item: Some(i),
                related: Some(j),
                record: None,
                detail,
            });
        }
    }
    flags
}

/// `item 3 Zocor`: an item as a class flag names it.
fn short_label(item: &DupItem<'_>) -> String {
    format!("item {} {}", item.position, item.name.unwrap_or("unnamed"))
}

/// The first item of each class by each route, so that the class level
/// finds an earlier item sharing a class and a route in one look-up per
/// (class, route) of the item, however many items the class holds.
#[derive(Default)]
struct ClassIndex<'k> {
    /// (class, route) → the first item of the class taken by that route.
    by_route: HashMap<(&'k str, &'k str), usize>,
    /// class → the first item of the class whose route is unknown.
    unrouted: HashMap<&'k str, usize>,
    /// class → the first item of the class (for an item whose route is unknown).
    any: HashMap<&'k str, usize>,
}

impl<'k> ClassIndex<'k> {
    fn add(&mut self, i: usize, classes: &'k [String], routes: &'k [String]) {
        for class in classes {
            self.any.entry(class).or_insert(i);
            if routes.is_empty() {
                self.unrouted.entry(class).or_insert(i);
            }
            for route in routes {
                self.by_route.entry((class, route)).or_insert(i);
            }
        }
    }

    /// The earliest item sharing a class with an item of these classes and
    /// routes, and every class they share (in the item's order).
    fn earliest<'c>(
        &self,
        classes: &'c [String],
        routes: &[String],
    ) -> Option<(usize, Vec<&'c str>)> {
        let first = |class: &str| -> Option<usize> {
            if routes.is_empty() {
                return self.any.get(class).copied();
            }
            let routed = routes
                .iter()
                .filter_map(|r| self.by_route.get(&(class, r.as_str())).copied());
            routed.chain(self.unrouted.get(class).copied()).min()
        };
        let found: Vec<(usize, &str)> = classes
            .iter()
            .filter_map(|c| first(c).map(|j| (j, c.as_str())))
            .collect();
        let j = found.iter().map(|(j, _)| *j).min()?;
        let shared = found
            .into_iter()
            .filter(|(at, _)| *at == j)
            .map(|(_, c)| c)
            .collect();
        Some((j, shared))
    }
}
