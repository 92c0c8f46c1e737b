//! Resolving one record's drug: a clinician's mapping first, then its NDC
//! codes through the dictionary, and a reason when neither works.
//!
//! Every NDC is looked up by its 12-digit key. A 12-digit code with a new
//! 6-digit labeler has no 11-digit form: the item keeps the code as written
//! (`ndc_original`) with no `ndc11`, mapped when the dictionary holds it and
//! `unmapped_ndc` (never `invalid_ndc`: it is a valid NDC) when not.

use super::{CodeMapping, CodeMappings, Stated, mapping_keys, stated_strength};
use crate::dict::{DictEntry, DrugDictionary};
use crate::domain::ndc::{self, NdcReading};
use crate::domain::{CodeSystem, ExceptionKind, Ndc11, Ndc12};
use crate::parse::{MedRecord, ProblemKind};
use std::sync::Arc;

/// How a record's drug was identified.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Resolution {
    pub ndc11: Option<Ndc11>,
    /// A new 6-digit labeler's 12-digit NDC; None whenever `ndc11` is set.
    pub ndc12: Option<Ndc12>,
    pub ndc_original: Option<String>,
    pub inferred: bool,
    pub mapping: Option<CodeMapping>,
    pub product: Option<Arc<DictEntry>>,
    /// The exception this record raises, if any.
    pub flag: Option<(ExceptionKind, String)>,
}

impl Resolution {
    /// The NDC found valid, as the dictionary keys it (mapped or not).
    pub fn ndc_key(&self) -> Option<Ndc12> {
        self.ndc11.map(|n| n.to_ndc12()).or(self.ndc12)
    }

    /// Lower is better: used to pick the resolution of a folded item.
    pub fn rank(&self) -> u8 {
        match (&self.product, &self.flag) {
            (Some(_), None) => 0,
            (None, None) => 1,
            (_, Some((ExceptionKind::UnmappedNdc, _))) => 2,
            (_, Some((ExceptionKind::InvalidNdc, _))) => 3,
            _ => 4,
        }
    }

    fn flagged(kind: ExceptionKind, detail: String) -> Resolution {
        Resolution {
            ndc11: None,
            ndc12: None,
            ndc_original: None,
            inferred: false,
            mapping: None,
            product: None,
            flag: Some((kind, detail)),
        }
    }
}

/// Every dictionary key (12-digit NDC) that resolving `doc` may ask the
/// dictionary about: each reading of each NDC code the records carry, and
/// each NDC a remembered decision points to. Sorted, without repeats. The
/// importer reads exactly these from the store before normalizing, so this
/// rule and `resolve` must agree: they live side by side.
pub fn ndcs_to_look_up(doc: &crate::parse::ParsedDocument, mappings: &CodeMappings) -> Vec<Ndc12> {
    let mut wanted: Vec<Ndc12> = mappings.values().map(|m| m.ndc11.to_ndc12()).collect();
    for code in doc
        .records
        .iter()
        .flat_map(|r| &r.codes)
        .filter(|c| c.system == CodeSystem::Ndc)
    {
        if let Ok(parsed) = ndc::parse(&code.value) {
            wanted.extend(parsed.reading.keys());
        }
    }
    wanted.sort();
    wanted.dedup();
    wanted
}

/// Looks a code up, treating products the FDA excluded as absent.
fn usable(dict: &dyn DrugDictionary, ndc: &Ndc12) -> Option<Arc<DictEntry>> {
    dict.lookup(ndc).filter(|e| !e.product.excluded)
}

/// The record's own NDCs decide when one of them is in the dictionary; a
/// clinician's earlier decision applies only when they do not (it was made
/// for a code that could not be mapped, and must never override one that
/// can: a later document may carry a better code, or the dictionary may have
/// learnt the code since).
pub(super) fn resolve(
    record: &MedRecord,
    dict: &dyn DrugDictionary,
    mappings: &CodeMappings,
) -> Resolution {
    let own = from_own_codes(record, dict);
    if own.product.is_some() {
        return own;
    }
    from_mapping(record, dict, mappings).unwrap_or(own)
}

fn from_own_codes(record: &MedRecord, dict: &dyn DrugDictionary) -> Resolution {
    let mut unmapped: Option<(Ndc12, String, String)> = None;
    let mut invalid: Vec<String> = Vec::new();
    for code in record.codes.iter().filter(|c| c.system == CodeSystem::Ndc) {
        match ndc::parse(&code.value) {
            Ok(parsed) => match parsed.reading {
                NdcReading::Exact(n) => {
                    if let Some(entry) = usable(dict, &n.to_ndc12()) {
                        return mapped(n.to_ndc12(), &code.value, false, entry);
                    }
                    if unmapped.is_none() {
                        // Show the 11-digit form only when it differs from
                        // what the document wrote.
                        let shown = if code.value == n.hyphenated() {
                            code.value.clone()
                        } else {
                            format!("{} (11-digit {})", code.value, n.hyphenated())
                        };
                        let why = match dict.lookup(&n.to_ndc12()) {
                            Some(_) => format!(
                                "NDC {shown} is flagged NDC_EXCLUDE_FLAG=E: excluded from the FDA NDC Directory"
                            ),
                            None => format!("NDC {shown} is not in the drug dictionary"),
                        };
                        unmapped = Some((n.to_ndc12(), code.value.clone(), why));
                    }
                }
                NdcReading::NewLabeler(n) => {
                    if let Some(entry) = usable(dict, &n) {
                        return mapped(n, &code.value, false, entry);
                    }
                    if unmapped.is_none() {
                        let what = format!(
                            "NDC {} is a 12-digit NDC with a new 6-digit labeler ({}), which has no 11-digit form",
                            code.value,
                            n.labeler()
                        );
                        let why = match dict.lookup(&n) {
                            Some(_) => format!(
                                "{what}; it is flagged NDC_EXCLUDE_FLAG=E: excluded from the FDA NDC Directory"
                            ),
                            None => {
                                format!("{what}, and the loaded drug dictionary does not hold it")
                            }
                        };
                        unmapped = Some((n, code.value.clone(), why));
                    }
                }
                NdcReading::Ambiguous(readings) => {
                    let hits: Vec<(Ndc11, Arc<DictEntry>)> = readings
                        .iter()
                        .filter_map(|r| usable(dict, &r.to_ndc12()).map(|e| (*r, e)))
                        .collect();
                    match hits.as_slice() {
                        [(n, entry)] => return mapped(n.to_ndc12(), &code.value, true, entry.clone()),
                        [] => invalid.push(format!(
                            "bare 10-digit code {} cannot be placed: none of its readings ({}) is in the dictionary",
                            code.value,
                            readings.iter().map(Ndc11::hyphenated).collect::<Vec<_>>().join(", ")
                        )),
                        many => invalid.push(format!(
                            "bare 10-digit code {} is ambiguous: {} of its readings are in the dictionary ({})",
                            code.value,
                            many.len(),
                            many.iter().map(|(n, _)| n.hyphenated()).collect::<Vec<_>>().join(", ")
                        )),
                    }
                }
            },
            // The error already quotes the code.
            Err(e) => invalid.push(format!("{e} (labelled {})", code.system_original)),
        }
    }
    if let Some((n, original, why)) = unmapped {
        return Resolution {
            ndc11: n.to_ndc11(),
            ndc12: n.to_ndc11().is_none().then_some(n),
            ndc_original: Some(original),
            inferred: false,
            mapping: None,
            product: None,
            flag: Some((ExceptionKind::UnmappedNdc, why)),
        };
    }
    if !invalid.is_empty() {
        return Resolution::flagged(ExceptionKind::InvalidNdc, invalid.join("; "));
    }
    Resolution::flagged(ExceptionKind::NonNdcCode, non_ndc_detail(record))
}

/// A code the dictionary holds, by its key: an NDC-11, or a new 6-digit
/// labeler's 12-digit NDC, which has no 11-digit form.
fn mapped(n: Ndc12, original: &str, inferred: bool, entry: Arc<DictEntry>) -> Resolution {
    Resolution {
        ndc11: n.to_ndc11(),
        ndc12: n.to_ndc11().is_none().then_some(n),
        ndc_original: Some(original.to_string()),
        inferred,
        mapping: None,
        product: Some(entry),
        flag: None,
    }
}

/// A clinician's earlier decision for one of the record's codes (or, for a
/// code-less drug, its ingredients or its name).
fn from_mapping(
    record: &MedRecord,
    dict: &dyn DrugDictionary,
    mappings: &CodeMappings,
) -> Option<Resolution> {
    if mappings.is_empty() {
        return None;
    }
    let strength = stated_strength(&record.strengths);
    let stated = Stated {
        name: record.name.as_deref(),
        strength: strength.as_deref(),
        form: record.form.as_deref(),
    };
    let (m, original) = mapping_keys(&record.codes, &record.ingredient_codes, stated)
        .into_iter()
        .find_map(|key| {
            let m = mappings.get(&key)?;
            // The code the decision was remembered under, as written.
            let original = record
                .codes
                .iter()
                .find(|c| c.system.label() == key.0 && c.value == key.1);
            Some((m, original.map(|c| c.value.clone())))
        })?;
    let product = usable(dict, &m.ndc11.to_ndc12());
    let flag = product.is_none().then(|| {
        (
            ExceptionKind::UnmappedNdc,
            format!(
                "mapped by {} to NDC {}, which is no longer in the drug dictionary",
                m.decided_by,
                m.ndc11.hyphenated()
            ),
        )
    });
    Some(Resolution {
        ndc11: Some(m.ndc11),
        ndc12: None,
        ndc_original: original,
        inferred: false,
        mapping: Some(m.clone()),
        product,
        flag,
    })
}

fn non_ndc_detail(record: &MedRecord) -> String {
    if let Some(p) = record
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::UnresolvedReference)
    {
        return p.detail.clone();
    }
    let ingredient_ndcs: Vec<&str> = record
        .ingredient_codes
        .iter()
        .filter(|c| c.system == CodeSystem::Ndc)
        .map(|c| c.value.as_str())
        .collect();
    if !record.codes.iter().any(|c| c.system == CodeSystem::Ndc) && !ingredient_ndcs.is_empty() {
        return format!(
            "no NDC for the product itself: it is described by {} ingredient(s) coded NDC {} \
             (an ingredient's NDC does not identify the product)",
            record.ingredient_codes.len(),
            ingredient_ndcs.join(", ")
        );
    }
    if record.codes.is_empty() {
        return match &record.name {
            Some(name) => format!("free text only: {name:?} carries no code"),
            None => "the entry carries neither a code nor a name".to_string(),
        };
    }
    let codes: Vec<String> = record
        .codes
        .iter()
        .map(|c| format!("{} {}", c.system.label(), c.value))
        .collect();
    format!("no NDC: coded only as {}", codes.join(", "))
}
