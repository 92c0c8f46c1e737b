//! Reconciliation: a patient's current list from every source lined up
//! drug by drug, and the disagreements a clinician must settle.
//!
//! A patient has one current regimen per source (each provider link, each
//! file import source, claims). `reconcile` puts them side by side: one row
//! per drug, matched by the keys duplicate detection defines
//! (`normalize::drug_keys`: the same package NDC, else the same product,
//! else the same code of another system, else the same clinical drug —
//! ingredients, strengths and dose form), and, across sources only, the
//! same active ingredients at another strength or form, so that "10 mg
//! here, 20 mg there" is one row with a strength conflict rather than two
//! rows nobody compares. Each row has a cell per source saying what that
//! source says of the drug (status, strength, dose, sig, last date).
//!
//! Pure, like `normalize`: it reads values and returns values, never the
//! database or the clock. It never merges silently: a drug one source
//! alone lists is a row that says so (`only_in`), and a row keeps every
//! source's own words; nothing here changes a list.

mod conflict;
#[cfg(test)]
mod tests;

pub use conflict::{Aspect, Conflict, ConflictException, Side, conflicts};

use crate::dict::DictEntry;
use crate::domain::{Code, MedStatus, Ndc12};
use crate::normalize::{DupItem, drug_keys};
use crate::parse::Evidence;
use serde::{Serialize, Serializer};
use std::collections::HashMap;

/// One source's current list: the newest regimen version of the patient
/// from that source, its items in force (removed items are not listed).
#[derive(Debug, Clone)]
pub struct SourceList {
    /// The source the regimen is versioned under (a provider id, `file`…).
    pub source: String,
    /// Its newest version.
    pub version: i64,
    pub items: Vec<Listed>,
}

/// One drug as one source lists it: the fields a reconciliation compares
/// and shows, read from a stored item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    /// The stored item (`items.id`).
    pub item_id: i64,
    /// Its position in its regimen, as people see it.
    pub position: usize,
    /// The NDC: 11 digits, or a new labeler's 12.
    #[serde(rename = "ndc", serialize_with = "ndc_text")]
    pub ndc: Option<Ndc12>,
    pub name: Option<String>,
    pub strength: Option<String>,
    pub form: Option<String>,
    pub dose: Option<String>,
    pub frequency: Option<String>,
    pub sig: Option<String>,
    pub status: MedStatus,
    /// `claim` for a drug known only from pharmacy claims (a fill, never
    /// proof that it is taken), else `record`.
    pub evidence: Evidence,
    /// The latest date the source gives the drug (start, stop, prescribed
    /// or fill), as written (ISO dates compare as text).
    pub last_date: Option<String>,
    /// Every code of the item, for matching by codes of other systems.
    #[serde(skip)]
    pub codes: Vec<Code>,
    /// What the dictionary knows of `ndc` today.
    #[serde(skip)]
    pub product: Option<DictEntry>,
}

fn ndc_text<S: Serializer>(ndc: &Option<Ndc12>, s: S) -> Result<S::Ok, S::Error> {
    match ndc {
        Some(n) => match n.to_ndc11() {
            Some(n11) => s.serialize_str(n11.as_str()),
            None => s.serialize_str(n.as_str()),
        },
        None => s.serialize_none(),
    }
}

impl Listed {
    /// The keys duplicate detection compares this drug by.
    fn keys(&self) -> crate::normalize::DrugKeys {
        drug_keys(&DupItem {
            position: self.position,
            ndc: self.ndc,
            name: self.name.as_deref(),
            product: self.product.as_ref(),
            codes: &self.codes,
        })
    }

    /// `Lisinopril 10 mg`: the drug for people.
    pub fn label(&self) -> String {
        let name = self.name.as_deref().unwrap_or("unnamed drug");
        match &self.strength {
            Some(s) if !folded(name).contains(&folded(s)) => format!("{name} {s}"),
            _ => name.to_string(),
        }
    }
}

/// Lower case without spaces: `10 MG` and `10mg` are one text.
fn folded(text: &str) -> String {
    text.split_whitespace().collect::<String>().to_lowercase()
}

/// Why the items of a row are taken for one drug: the loosest key that
/// joined an item to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The same package NDC-11.
    Ndc,
    /// The same labeler and product in another package.
    Product,
    /// The same code of another system (RxNorm…), for drugs without an NDC.
    Code,
    /// The same ingredients, strengths and dose form (another labeler).
    ClinicalDrug,
    /// The same active ingredients at another strength or form, in
    /// another source: a strength conflict unless the strengths agree.
    Ingredients,
}

impl MatchedBy {
    /// The match for people: `same product`.
    pub fn label(&self) -> &'static str {
        match self {
            MatchedBy::Ndc => "same NDC",
            MatchedBy::Product => "same product",
            MatchedBy::Code => "same code",
            MatchedBy::ClinicalDrug => "same clinical drug",
            MatchedBy::Ingredients => "same ingredients",
        }
    }
}

/// What one source says of a row's drug: nothing (it does not list it),
/// or its items (more than one when the source lists the drug twice — a
/// `duplicate` in that source's own queue).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub source: String,
    pub items: Vec<Listed>,
}

/// One drug across the patient's sources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The drug for people, from the first source that lists it.
    pub drug: String,
    /// Why the items are one drug; None when the row holds one item.
    pub matched_by: Option<MatchedBy>,
    /// The sources that list the drug, in source order.
    pub listed_by: Vec<String>,
    /// The one source that lists the drug, when only one does: shown as
    /// such, never merged into another row.
    pub only_in: Option<String>,
    /// One cell per source of the patient, in `Reconciled::sources` order.
    pub cells: Vec<Cell>,
    /// Where the sources disagree on something a clinician must settle.
    pub conflicts: Vec<Conflict>,
}

/// A source's list as a reconciliation names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceHead {
    pub source: String,
    /// The regimen version lined up.
    pub version: i64,
    /// How many items in force it holds.
    pub items: usize,
}

/// A patient's lists lined up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciled {
    pub patient: String,
    /// Every source with a regimen, ordered by name.
    pub sources: Vec<SourceHead>,
    /// One row per drug, in the order the sources list them (the first
    /// source's items first).
    pub rows: Vec<Row>,
}

impl Reconciled {
    /// Every conflict of every row.
    pub fn conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.rows.iter().flat_map(|r| r.conflicts.iter())
    }
}

/// Lines up the current lists of one patient's sources (any order: they
/// are sorted by source name, so the result does not depend on it).
pub fn reconcile(patient: &str, mut lists: Vec<SourceList>) -> Reconciled {
    lists.sort_by(|a, b| a.source.cmp(&b.source));
    let sources: Vec<SourceHead> = lists
        .iter()
        .map(|l| SourceHead {
            source: l.source.clone(),
            version: l.version,
            items: l.items.len(),
        })
        .collect();
    let rows = line_up(lists)
        .into_iter()
        .map(|b| finish_row(b, &sources))
        .collect();
    Reconciled {
        patient: patient.to_string(),
        sources,
        rows,
    }
}

/// A row being built: its items per source index, and its loosest match.
struct Building {
    cells: Vec<Vec<Listed>>,
    matched_by: Option<MatchedBy>,
}

/// Where each drug goes: the first row its strictest key finds, else a new
/// row. Keys point at the first row that had them (as in duplicate
/// detection, the first earlier item wins); the ingredient key only joins
/// a row the item's own source is not in yet, so one source's 5 mg and
/// 10 mg tablets (taken together by design) stay two rows.
fn line_up(lists: Vec<SourceList>) -> Vec<Building> {
    let n = lists.len();
    let mut rows: Vec<Building> = Vec::new();
    let mut by: HashMap<(MatchedBy, String), usize> = HashMap::new();
    for (s, list) in lists.into_iter().enumerate() {
        for item in list.items {
            let k = item.keys();
            let strict = [
                (MatchedBy::Ndc, k.ndc.clone()),
                (MatchedBy::Product, k.product.clone()),
            ]
            .into_iter()
            .chain(
                k.other_codes
                    .iter()
                    .map(|c| (MatchedBy::Code, Some(c.clone()))),
            )
            .chain([(MatchedBy::ClinicalDrug, k.clinical.clone())]);
            let mut keys: Vec<(MatchedBy, String)> = strict
                .filter_map(|(level, key)| Some((level, key?)))
                .collect();
            let found = keys
                .iter()
                .find_map(|key| by.get(key).map(|&r| (r, key.0)))
                .or_else(|| {
                    let key = (MatchedBy::Ingredients, k.ingredient.clone()?);
                    let r = *by.get(&key)?;
                    rows[r].cells[s].is_empty().then_some((r, key.0))
                });
            if let Some(ingredient) = k.ingredient {
                keys.push((MatchedBy::Ingredients, ingredient));
            }
            let r = match found {
                Some((r, level)) => {
                    let row = &mut rows[r];
                    row.matched_by = row.matched_by.max(Some(level));
                    row.cells[s].push(item);
                    r
                }
                None => {
                    let mut cells = vec![Vec::new(); n];
                    cells[s].push(item);
                    rows.push(Building {
                        cells,
                        matched_by: None,
                    });
                    rows.len() - 1
                }
            };
            for key in keys {
                by.entry(key).or_insert(r);
            }
        }
    }
    rows
}

fn finish_row(b: Building, sources: &[SourceHead]) -> Row {
    let cells: Vec<Cell> = b
        .cells
        .into_iter()
        .zip(sources)
        .map(|(items, head)| Cell {
            source: head.source.clone(),
            items,
        })
        .collect();
    let listed_by: Vec<String> = cells
        .iter()
        .filter(|c| !c.items.is_empty())
        .map(|c| c.source.clone())
        .collect();
    let drug = cells
        .iter()
        .find_map(|c| c.items.first())
        .map(Listed::label)
        .unwrap_or_default();
    Row {
        drug,
        matched_by: b.matched_by,
        only_in: match listed_by.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        },
        conflicts: conflicts(&cells),
        listed_by,
        cells,
    }
}
