//! The disagreements between sources that a clinician must settle, each a
//! `source_conflict` exception: one source says a drug is taken and another
//! that it was stopped or completed; or two sources give the same drug at
//! another strength or another dose.
//!
//! A conflict is a pair of facts: two sources, each with its drug and what
//! it says. Its `key` names exactly that pair, so a decision on it is
//! remembered until one of the facts changes — the same disagreement on the
//! next pull is not raised again, a new one is.

use super::{Cell, Listed};
use crate::domain::{ExceptionState, MedStatus};
use crate::parse::Evidence;
use serde::Serialize;
use std::fmt;

/// What two sources disagree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    /// One says active (or on hold), the other stopped or completed.
    Status,
    /// Another strength of the same drug.
    Strength,
    /// Another dose of the same drug.
    Dose,
}

impl Aspect {
    pub fn as_str(&self) -> &'static str {
        match self {
            Aspect::Status => "status",
            Aspect::Strength => "strength",
            Aspect::Dose => "dose",
        }
    }
}

impl fmt::Display for Aspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of a conflict: a source, its item and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub source: String,
    pub item_id: i64,
    pub position: usize,
    /// The drug as this source names it.
    pub drug: String,
    /// What it says of the aspect, in its own words (`stopped`, `20 mg`,
    /// `2 tablets`).
    pub says: String,
}

/// The exception a conflict is in the queue as (filled in by `store`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictException {
    pub id: i64,
    pub state: ExceptionState,
}

/// Two sources disagreeing on one aspect of one drug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub aspect: Aspect,
    /// The two sides, in source order.
    pub sides: [Side; 2],
    /// The pair of facts: the aspect and, for each side, its source, its
    /// drug and what it says (normalized). Decisions are remembered by it.
    pub key: String,
    /// Its exception, once the store has one (null from `reconcile`).
    pub exception: Option<ConflictException>,
}

impl Conflict {
    /// The exception's detail: both sides, each named by its source.
    pub fn detail(&self) -> String {
        let [a, b] = &self.sides;
        format!(
            "sources disagree on the {} of {}: {} (item {}) says {}; {} (item {}) says {}",
            self.aspect, a.drug, a.source, a.position, a.says, b.source, b.position, b.says
        )
    }
}

/// Every conflict between the cells of one row: for each aspect and each
/// pair of sources, each pair of different things they say. A source that
/// lists the drug twice saying the same thing says it once (its first
/// item speaks for it): the repeat is a `duplicate` of its own list.
pub fn conflicts(cells: &[Cell]) -> Vec<Conflict> {
    let mut out = Vec::new();
    for aspect in [Aspect::Status, Aspect::Strength, Aspect::Dose] {
        let distinct: Vec<Vec<&Listed>> =
            cells.iter().map(|c| distinct(aspect, &c.items)).collect();
        for (i, a_cell) in cells.iter().enumerate() {
            for (j, b_cell) in cells.iter().enumerate().skip(i + 1) {
                for a in &distinct[i] {
                    for b in &distinct[j] {
                        if let Some(c) = conflict(aspect, (&a_cell.source, a), (&b_cell.source, b))
                        {
                            out.push(c);
                        }
                    }
                }
            }
        }
    }
    out
}

/// The items of one cell that say something of `aspect`, the first of each
/// different thing said.
fn distinct(aspect: Aspect, items: &[Listed]) -> Vec<&Listed> {
    let mut seen: Vec<String> = Vec::new();
    items
        .iter()
        .filter(|item| match says(aspect, item) {
            Some((_, key)) if !seen.contains(&key) => {
                seen.push(key);
                true
            }
            _ => false,
        })
        .collect()
}

/// Whether a drug is taken, by what a source says. Claims say neither:
/// a fill is not proof that a drug is taken, nor an old fill that it
/// stopped. Other statuses (draft, intended, unknown…) settle nothing.
#[derive(PartialEq)]
enum Standing {
    Taken,
    Ended,
}

fn standing(item: &Listed) -> Option<Standing> {
    if item.evidence == Evidence::Claim {
        return None;
    }
    match item.status {
        MedStatus::Active | MedStatus::OnHold => Some(Standing::Taken),
        MedStatus::Stopped | MedStatus::Completed => Some(Standing::Ended),
        _ => None,
    }
}

/// The strength a source gives: the dictionary's for its NDC (what the
/// package holds), else the strength the document stated.
fn strength(item: &Listed) -> Option<String> {
    match &item.product {
        Some(e) => Some(e.product.strength_text()).filter(|s| !s.is_empty()),
        None => item.strength.clone(),
    }
}

/// A strength compared: per part, lower case without spaces, numbers
/// without trailing zeros, the FDA's per-unit `/1` dropped (`10 MG/1` is
/// `10 mg`), parts sorted.
pub(super) fn strength_key(text: &str) -> String {
    let mut parts: Vec<String> = text
        .split(';')
        .map(|p| {
            let p: String = p.split_whitespace().collect::<String>().to_lowercase();
            let p = p.strip_suffix("/1").unwrap_or(&p).to_string();
            let digits = p
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(p.len());
            let (number, unit) = p.split_at(digits);
            let number = if number.contains('.') {
                number.trim_end_matches('0').trim_end_matches('.')
            } else {
                number
            };
            format!("{number}{unit}")
        })
        .filter(|p| !p.is_empty())
        .collect();
    parts.sort();
    parts.join(";")
}

/// A dose compared: lower case, spaces folded.
fn dose_key(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// What a side says of an aspect, for people and for the key; None when it
/// says nothing the other side could contradict.
fn says(aspect: Aspect, item: &Listed) -> Option<(String, String)> {
    match aspect {
        Aspect::Status => {
            standing(item)?;
            Some((
                item.status.as_str().to_string(),
                item.status.as_str().to_string(),
            ))
        }
        Aspect::Strength => {
            let s = strength(item)?;
            let key = strength_key(&s);
            (!key.is_empty()).then_some((s, key))
        }
        Aspect::Dose => {
            let d = item.dose.clone()?;
            let key = dose_key(&d);
            (!key.is_empty()).then_some((d, key))
        }
    }
}

fn conflict(aspect: Aspect, a: (&str, &Listed), b: (&str, &Listed)) -> Option<Conflict> {
    let (a_says, a_key) = says(aspect, a.1)?;
    let (b_says, b_key) = says(aspect, b.1)?;
    let disagree = match aspect {
        Aspect::Status => standing(a.1) != standing(b.1),
        Aspect::Strength | Aspect::Dose => a_key != b_key,
    };
    if !disagree {
        return None;
    }
    let side = |(source, item): (&str, &Listed), says: String| Side {
        source: source.to_string(),
        item_id: item.item_id,
        position: item.position,
        drug: item.label(),
        says,
    };
    let key = format!(
        "{aspect}|{}={}:{a_key}|{}={}:{b_key}",
        a.0,
        identity(a.1),
        b.0,
        identity(b.1)
    );
    Some(Conflict {
        aspect,
        sides: [side(a, a_says), side(b, b_says)],
        key,
        exception: None,
    })
}

/// A drug as a conflict's key names it: its strictest key (NDC, else a
/// code of another system, else its clinical drug), else its name.
fn identity(item: &Listed) -> String {
    let k = item.keys();
    k.ndc
        .or_else(|| k.other_codes.into_iter().next())
        .or(k.clinical)
        .unwrap_or_else(|| dose_key(item.name.as_deref().unwrap_or("")))
}
