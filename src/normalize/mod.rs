//! Normalization: from parsed medication records to a regimen with flags.
//!
//! Pure: it reads a `ParsedDocument`, asks a `DrugDictionary` and the
//! clinicians' earlier `CodeMapping`s, and returns the items and the
//! exceptions to raise. It never writes anything, never drops a drug
//! silently (skipped `entered-in-error` records are counted and returned),
//! and never merges two drugs: record-level repeats of one drug (a request
//! and its dispense, refills with the same sig) fold into one item that
//! lists every source, while clinical duplicates are flagged for a
//! clinician to decide. A record whose NDC names another drug than its text
//! (or another strength than it states) is flagged `ndc_name_mismatch`
//! (`mismatch`), and keeps the document's words: the dictionary completes
//! an item's name, strength, form and route only when it agrees with it.

mod duplicates;
mod fold;
mod mismatch;
mod resolve;

pub use duplicates::{ClassRule, DrugKeys, DupItem, drug_keys, find_among as find_duplicates};
pub use mismatch::brand_words;
pub use resolve::ndcs_to_look_up;

use crate::dict::{DictEntry, DrugDictionary};
use crate::domain::{Code, CodeSystem, ExceptionKind, MedStatus, Ndc11, Ndc12};
use crate::parse::{Evidence, MedRecord, ParsedDocument, ProblemKind, SourceRef};
use serde::Serialize;
use std::collections::HashMap;

/// A clinician's earlier decision for a provider's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeMapping {
    /// The NDC the code maps to.
    pub ndc11: Ndc11,
    /// Who decided.
    pub decided_by: String,
    /// When (RFC 3339).
    pub decided_at: String,
    /// The exception the decision resolved, when there was one.
    pub exception_id: Option<i64>,
}

/// Earlier decisions of one source, keyed by (system label, code). Free
/// text without a code is keyed by (`text`, lower-cased name).
pub type CodeMappings = HashMap<(String, String), CodeMapping>;

/// What a drug without codes of its own states about itself, for the keys
/// decisions are remembered under: free text or a set of ingredients alone
/// says nothing of strength, so "Lisinopril" 10 mg and 40 mg must not share
/// a decision.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stated<'a> {
    pub name: Option<&'a str>,
    /// As `stated_strength` writes it.
    pub strength: Option<&'a str>,
    pub form: Option<&'a str>,
}

/// A record's strengths as one text ("10 mg; 12.5 mg"), the way items store them.
pub fn stated_strength(strengths: &[crate::parse::Strength]) -> Option<String> {
    let parts: Vec<String> = strengths
        .iter()
        .map(|s| match &s.unit {
            Some(u) => format!("{} {}", s.value, u),
            None => s.value.clone(),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn fold_text(s: Option<&str>) -> String {
    s.unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The keys a clinician's decision for a drug is remembered under: each of
/// its own codes; without any, its ingredients' codes taken together (a
/// compound) with its stated strength and form; without those, its name
/// with its stated strength and form (free text). A code written as an NDC
/// that is not one (a placeholder such as `00000000000` or `99999999999`,
/// a malformed code) is no key: many drugs share it.
pub fn mapping_keys(
    codes: &[Code],
    ingredient_codes: &[Code],
    stated: Stated<'_>,
) -> Vec<(String, String)> {
    let codes: Vec<&Code> = codes.iter().filter(|c| keyable(c)).collect();
    if !codes.is_empty() {
        return codes
            .iter()
            .map(|c| (c.system.label().to_string(), c.value.clone()))
            .collect();
    }
    let suffix = format!("|{}|{}", fold_text(stated.strength), fold_text(stated.form));
    if !ingredient_codes.is_empty() {
        let mut parts: Vec<String> = ingredient_codes
            .iter()
            .map(|c| format!("{}:{}", c.system.label(), c.value))
            .collect();
        parts.sort();
        parts.dedup();
        return vec![("ingredients".to_string(), parts.join("+") + &suffix)];
    }
    stated
        .name
        .filter(|n| !n.trim().is_empty())
        .map(|n| vec![("text".to_string(), fold_text(Some(n)) + &suffix)])
        .unwrap_or_default()
}

/// Whether a code may key a decision: any code but an NDC that does not
/// parse as one (`ndc::parse` refuses placeholders).
fn keyable(code: &Code) -> bool {
    code.system != CodeSystem::Ndc || crate::domain::ndc::is_valid(&code.value)
}

/// The keys a clinician's decision on an exception is remembered under: the
/// codes that caused it. For an unmapped or invalid NDC that is the NDC as
/// written (a later document with the same code gets the same answer) —
/// unless it is not an NDC at all (a placeholder, a malformed code), which
/// would hand the decision to every drug written with it: then, as for
/// a drug without an NDC, its other codes, else its ingredients, else its
/// name (with its stated strength and form). Never an NDC the dictionary can
/// map on its own: `resolve` prefers that anyway.
pub fn decision_keys(
    kind: ExceptionKind,
    codes: &[Code],
    ingredient_codes: &[Code],
    stated: Stated<'_>,
) -> Vec<(String, String)> {
    let (ndc, other): (Vec<Code>, Vec<Code>) = codes
        .iter()
        .cloned()
        .partition(|c| c.system == CodeSystem::Ndc);
    let ndc: Vec<Code> = ndc.into_iter().filter(keyable).collect();
    match kind {
        ExceptionKind::UnmappedNdc | ExceptionKind::InvalidNdc if !ndc.is_empty() => {
            mapping_keys(&ndc, &[], Stated::default())
        }
        _ => mapping_keys(&other, ingredient_codes, stated),
    }
}

/// Settings that shape a regimen: one value, resolved from `[import]` by
/// `Config::normalize_options` and handed through an import unchanged.
#[derive(Debug, Clone)]
pub struct Options {
    /// More items than this raise `too_many`.
    pub max_regimen_items: usize,
    /// Established Pharmacologic Classes (`Vitamin D [EPC]`) whose sharing
    /// raises no `therapeutic_duplicate` (compared without regard to case).
    pub therapeutic_class_exclusions: Vec<String>,
    /// A drug known only from claims is `completed` once its last fill's
    /// days supply ended more than this many days before `today`.
    pub claims_completed_after: u32,
    /// The day the import runs (the sync's start), which claims are
    /// judged against: normalization never reads the clock. Without it a
    /// claim-only drug stays `dispensed`.
    pub today: Option<chrono::NaiveDate>,
}

impl Default for Options {
    /// The settings of a configuration that says nothing.
    fn default() -> Options {
        Options {
            max_regimen_items: crate::config::DEFAULT_MAX_REGIMEN_ITEMS,
            therapeutic_class_exclusions: crate::config::DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS
                .iter()
                .map(|c| c.to_string())
                .collect(),
            claims_completed_after: crate::config::DEFAULT_CLAIMS_COMPLETED_AFTER,
            today: None,
        }
    }
}

/// One drug of a normalized regimen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// The NDC-11, when one was found valid (mapped or not).
    pub ndc11: Option<Ndc11>,
    /// The 12-digit NDC of a new 6-digit labeler, which has no 11-digit
    /// form (mapped or not); None whenever `ndc11` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ndc12: Option<Ndc12>,
    /// The NDC text as the document wrote it.
    pub ndc_original: Option<String>,
    /// True when a bare 10-digit code was placed by the dictionary.
    pub ndc_inferred: bool,
    /// The clinician's mapping that supplied the NDC, if one did.
    pub mapping: Option<CodeMapping>,
    /// What the dictionary knows of the NDC (absent when unmapped).
    pub product: Option<std::sync::Arc<DictEntry>>,
    pub name: Option<String>,
    pub brand: Option<String>,
    /// Every code of every folded record, de-duplicated, in document order.
    pub codes: Vec<Code>,
    /// Their ingredients' codes (compounds), kept apart from `codes`.
    pub ingredient_codes: Vec<Code>,
    pub strength: Option<String>,
    pub form: Option<String>,
    pub route: Option<String>,
    pub dose: Option<String>,
    pub frequency: Option<String>,
    /// Directions joined with "; ".
    pub sig: Option<String>,
    pub status: MedStatus,
    pub status_original: Option<String>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub prescribed: Option<String>,
    pub prescriber: Option<String>,
    /// `claim` when every record of the item is a claim line (dispense
    /// evidence only), else `record`.
    pub evidence: Evidence,
    /// Days supply of the latest fill, as the document wrote it.
    pub days_supply: Option<String>,
    /// Quantity of the latest fill.
    pub quantity: Option<String>,
    /// The pharmacy of the latest fill.
    pub dispenser: Option<String>,
    /// The document sections its records were listed in (C-CDA:
    /// `Medications`, `Discharge Medications`, …), joined with "; ".
    pub section: Option<String>,
    /// The records folded into this item.
    pub sources: Vec<SourceRef>,
    /// Their positions in the parser's output (`ParsedDocument::records`):
    /// the stored document re-parsed gives back their source text, so the
    /// excerpt is never copied into the database.
    pub records: Vec<usize>,
}

/// An exception to raise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub kind: ExceptionKind,
    /// The item it concerns (index into `Regimen::items`), if any.
    pub item: Option<usize>,
    /// The other item of a duplicate pair.
    pub related: Option<usize>,
    /// For `unreadable_record`: the record's position in the parse's
    /// `ParsedDocument::unreadable`, from which its excerpt is re-derived.
    pub record: Option<usize>,
    /// Why, in words a clinician can act on.
    pub detail: String,
}

/// A record left out of the regimen, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub source: Option<SourceRef>,
    pub name: Option<String>,
    pub reason: String,
}

/// A normalized regimen, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regimen {
    pub items: Vec<Item>,
    pub flags: Vec<Flag>,
    pub skipped: Vec<Skipped>,
}

/// How an unreadable record is named for people: its type and id, its
/// place among the document's entries and where it starts.
fn unreadable_name(bad: &crate::parse::UnreadableRecord) -> String {
    let mut name = match &bad.source {
        Some(SourceRef { kind, id: Some(id) }) => format!("{kind}/{id}"),
        Some(SourceRef { kind, id: None }) => format!("a {kind} without id"),
        None => "a record of unknown type".to_string(),
    };
    let place: Vec<String> = bad
        .entry
        .map(|e| format!("entry {}", e + 1))
        .into_iter()
        .chain(bad.at.map(|at| format!("at {at}")))
        .collect();
    if !place.is_empty() {
        name = format!("{name} ({})", place.join(", "));
    }
    name
}

/// What a document without medication records did hold, so that "the
/// patient shared none" is said only when it is true.
fn none_shared_detail(doc: &ParsedDocument, entered_in_error: usize) -> String {
    // Resources left out, counted by type in document order (a claim of
    // several lines counts once).
    let mut held: Vec<(String, Vec<Option<&str>>)> = Vec::new();
    for out in &doc.left_out {
        let Some(source) = &out.source else { continue };
        let id = source.id.as_deref();
        match held.iter_mut().find(|(k, _)| *k == source.kind) {
            Some((_, ids)) => {
                if id.is_none() || !ids.contains(&id) {
                    ids.push(id);
                }
            }
            None => held.push((source.kind.clone(), vec![id])),
        }
    }
    let mut parts: Vec<String> = held
        .iter()
        .map(|(kind, ids)| format!("{} {kind}", ids.len()))
        .collect();
    if entered_in_error > 0 {
        parts.push(format!("{entered_in_error} entered-in-error record(s)"));
    }
    // What the document itself said about its lack of medications (a
    // C-CDA section's "No known medications", a nullFlavor), in its words.
    let said: Vec<&str> = doc
        .left_out
        .iter()
        .filter(|out| out.source.is_none())
        .map(|out| out.reason.as_str())
        .collect();
    if parts.is_empty() {
        if said.is_empty() {
            return "the document lists no medications (the patient shared none)".to_string();
        }
        return format!("the document lists no medications: {}", said.join("; "));
    }
    // A few of the reasons, so the queue shows what was there (a claim of
    // a doctor's visit, say) without opening the document.
    let mut reasons: Vec<&str> = Vec::new();
    for out in doc.left_out.iter().filter(|out| out.source.is_some()) {
        if reasons.len() == 3 {
            break;
        }
        if !reasons.contains(&out.reason.as_str()) {
            reasons.push(&out.reason);
        }
    }
    let more = if doc.left_out.len() > reasons.len() {
        "; …"
    } else {
        ""
    };
    let examples = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({}{more})", reasons.join("; "))
    };
    let mut detail = format!(
        "the document holds no usable medication records: it held {}, none of them a medication the patient takes{examples}",
        parts.join(", ")
    );
    if !said.is_empty() {
        detail.push_str("; ");
        detail.push_str(&said.join("; "));
    }
    detail
}

/// Normalizes a parsed document into a regimen.
pub fn normalize(
    doc: &ParsedDocument,
    dict: &dyn DrugDictionary,
    mappings: &CodeMappings,
    options: &Options,
) -> Regimen {
    let mut skipped = Vec::new();
    let mut kept = Vec::new();
    for (ordinal, record) in doc.records.iter().enumerate() {
        let mut status = record
            .status
            .as_deref()
            .map_or(MedStatus::Unknown, MedStatus::normalize);
        if record.evidence == Evidence::Claim {
            status = claim_status(record, status, options);
        }
        if status == MedStatus::EnteredInError {
            skipped.push(Skipped {
                source: record.source.clone(),
                name: record.name.clone(),
                reason: "status entered-in-error: never part of a regimen".to_string(),
            });
            continue;
        }
        let resolution = resolve::resolve(record, dict, mappings);
        kept.push((ordinal, record, status, resolution));
    }

    let entered_in_error = skipped.len();
    let (mut items, mut flags) = fold::fold(kept);
    // The document's words are checked against the product before the
    // product may complete them: a contradicted product lends nothing.
    for (i, item) in items.iter_mut().enumerate() {
        let records: Vec<&MedRecord> = item
            .records
            .iter()
            .filter_map(|&o| doc.records.get(o))
            .collect();
        match mismatch::flag(i, item, &records, dict) {
            Some(flag) => flags.push(flag),
            None => fold::fill_from_product(item),
        }
    }
    flags.extend(duplicates::find(
        &items,
        &ClassRule::new(&options.therapeutic_class_exclusions, dict.snapshot()),
    ));
    // A record that could not be read is never dropped: it is named, with
    // an exception of its own, so the regimen cannot be approved without a
    // clinician seeing it.
    for (k, bad) in doc.unreadable.iter().enumerate() {
        flags.push(Flag {
            kind: ExceptionKind::UnreadableRecord,
            item: None,
            related: None,
            record: Some(k),
            detail: format!(
                "{} could not be read: {}; it is not in the regimen, check the source document",
                unreadable_name(bad),
                bad.reason
            ),
        });
        skipped.push(Skipped {
            source: bad.source.clone(),
            name: None,
            reason: format!("could not be read: {}", bad.reason),
        });
    }
    for out in &doc.left_out {
        skipped.push(Skipped {
            source: out.source.clone(),
            name: None,
            reason: out.reason.clone(),
        });
    }
    if items.is_empty() && doc.unreadable.is_empty() {
        flags.push(Flag {
            kind: ExceptionKind::NoneShared,
            item: None,
            related: None,
            record: None,
            detail: none_shared_detail(doc, entered_in_error),
        });
    }
    for p in doc
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::SeveralPatients)
    {
        flags.push(Flag {
            kind: ExceptionKind::IdentityMismatch,
            item: None,
            related: None,
            record: None,
            detail: p.detail.clone(),
        });
    }
    if items.len() > options.max_regimen_items {
        flags.push(Flag {
            kind: ExceptionKind::TooMany,
            item: None,
            related: None,
            record: None,
            detail: format!(
                "{} items is more than max_regimen_items = {}",
                items.len(),
                options.max_regimen_items
            ),
        });
    }
    flags.sort_by_key(|f| (f.item.unwrap_or(usize::MAX), f.kind));
    Regimen {
        items,
        flags,
        skipped,
    }
}

/// What a claim line shows: a cancelled or erroneous claim says so; any
/// other (an `active` claim is a claim in force, not a drug taken) is a
/// fill: `dispensed`, or `completed` once its supply ended more than
/// `claims_completed_after` days before `today`.
fn claim_status(record: &MedRecord, stated: MedStatus, options: &Options) -> MedStatus {
    match stated {
        MedStatus::EnteredInError | MedStatus::Cancelled => return stated,
        _ => {}
    }
    match (options.today, supply_end(record)) {
        (Some(today), Some(end))
            if today.signed_duration_since(end).num_days()
                > i64::from(options.claims_completed_after) =>
        {
            MedStatus::Completed
        }
        _ => MedStatus::Dispensed,
    }
}

/// The day a fill's supply ran out: the fill date plus its days supply (the
/// fill date itself when no supply is given); None without a readable date.
fn supply_end(record: &MedRecord) -> Option<chrono::NaiveDate> {
    let fill = fill_date(record)?;
    let days = record
        .days_supply
        .as_deref()
        .and_then(|d| d.trim().parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map_or(0, |d| d.min(3650.0) as u64);
    fill.checked_add_days(chrono::Days::new(days))
}

/// A claim's fill date (the first ten characters of a FHIR date or dateTime).
fn fill_date(record: &MedRecord) -> Option<chrono::NaiveDate> {
    let text = record.prescribed.as_deref()?.trim();
    chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// "last filled on 2026-10-01 for 30 days": how an item known only from
/// claims shows its latest fill.
fn fill_text(record: &MedRecord) -> String {
    let on = record
        .prescribed
        .as_deref()
        .map_or_else(|| "on an unstated date".to_string(), |d| format!("on {d}"));
    match record.days_supply.as_deref() {
        Some(days) if days.trim() == "1" => format!("last filled {on} for 1 day"),
        Some(days) => format!("last filled {on} for {} days", days.trim()),
        None => format!("last filled {on}"),
    }
}

#[cfg(test)]
mod tests;
