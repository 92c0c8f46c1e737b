//! One C-CDA Medication Activity (`substanceAdministration`, template
//! 2.16.840.1.113883.10.20.22.4.16) into a `MedRecord`, or the reason it is
//! not one (negated, another mood).
//!
//! It reads what the entry states and interprets nothing: codes keep their
//! OIDs (`Code::new` folds RxNorm 2.16.840.1.113883.6.88 and NDC
//! 2.16.840.1.113883.6.69), dates stay HL7 TS text, timing is written out
//! as text. Only the v3 `statusCode` is translated into the words
//! `MedStatus::normalize` knows, since v3 has its own (`aborted`, `held`…).

use roxmltree::Node;

use super::dosage::{dose, timing};
use super::narrative::{self, Narrative, Said};
use super::pretty::pretty;
use super::xml::{
    attr, child, children, coded_text, has_template, identifier, is, is_null, name_text, path,
    quantity_text, text_of,
};
use crate::domain::Code;
use crate::parse::{LeftOut, MedRecord, Problem, ProblemKind, SourceRef};

/// Free Text Sig (an entryRelationship of a Medication Activity).
const FREE_TEXT_SIG: &str = "2.16.840.1.113883.10.20.22.4.147";
/// Instruction (patient instructions).
const INSTRUCTION: &str = "2.16.840.1.113883.10.20.22.4.20";
/// SNOMED CT "Drug or medicament": the drug of a "no medications" statement.
const ANY_DRUG: &str = "410942007";

/// What one activity yields.
pub(super) enum Read {
    Record(Box<MedRecord>),
    LeftOut(LeftOut),
}

/// What the reader needs to know about where the activity is.
pub(super) struct Place<'s> {
    /// The section's label (`Medications`, `Discharge Medications`…).
    pub section: &'static str,
    /// The activity's id, or its position (`10160-0 entry 2`).
    pub fallback_id: String,
    /// Whether to build the excerpt.
    pub excerpts: bool,
    pub narrative: &'s Narrative<'s, 's>,
}

/// Reads one `substanceAdministration`.
pub(super) fn read<'a>(sa: Node<'a, 'a>, place: &Place<'a>) -> Read {
    let id = children(sa, "id")
        .find_map(identifier)
        .unwrap_or_else(|| place.fallback_id.clone());
    let source = SourceRef {
        kind: "substanceAdministration".to_string(),
        id: Some(id),
    };
    let mut record = MedRecord {
        source: Some(source.clone()),
        section: Some(place.section.to_string()),
        ..MedRecord::default()
    };
    let mut referenced = None;
    drug(sa, place.narrative, &mut record, &mut referenced);
    let mood = attr(sa, "moodCode").unwrap_or("EVN");
    if attr(sa, "negationInd").is_some_and(|n| n.eq_ignore_ascii_case("true")) {
        let reason = if names_any_drug(&record) {
            "negated: the document says the patient takes no medications".to_string()
        } else {
            format!(
                "negated: the document says the patient does not take {}",
                drug_words(&record)
            )
        };
        // A "no medications" statement names no element a clinician
        // needs: its reason is what none_shared reports.
        let source = (!names_any_drug(&record)).then_some(source);
        return Read::LeftOut(LeftOut { source, reason });
    }
    if !matches!(mood, "EVN" | "INT") {
        return Read::LeftOut(LeftOut {
            source: Some(source),
            reason: format!(
                "moodCode {mood}: neither a medication taken (EVN) nor one prescribed (INT)"
            ),
        });
    }
    timing(sa, &mut record);
    record.dose = dose(sa);
    record.route = child(sa, "routeCode").and_then(coded_text);
    record.status = child(sa, "statusCode")
        .and_then(|s| attr(s, "code"))
        .map(status_words);
    directions(sa, place.narrative, &mut record, &mut referenced);
    supply(sa, mood, &mut record);
    if record.codes.is_empty() && record.name.is_none() && record.brand.is_none() {
        record.problems.push(Problem {
            kind: ProblemKind::NoDrug,
            detail: format!(
                "C-CDA substanceAdministration {} names no drug: its manufacturedMaterial has no code and no text",
                record.source.as_ref().and_then(|s| s.id.as_deref()).unwrap_or("?")
            ),
        });
    }
    if place.excerpts {
        let mut excerpt = String::new();
        pretty(sa, &mut excerpt);
        if let Some(target) = referenced {
            excerpt.push_str("<!-- the narrative it references -->\n");
            pretty(narrative::row_of(target), &mut excerpt);
        }
        record.excerpt = excerpt;
    }
    Read::Record(Box::new(record))
}

/// The drug: codes, name, brand, from `consumable/manufacturedProduct`.
fn drug<'a>(
    sa: Node<'a, 'a>,
    narrative: &Narrative<'a, 'a>,
    record: &mut MedRecord,
    referenced: &mut Option<Node<'a, 'a>>,
) {
    let Some(product) = path(sa, &["consumable", "manufacturedProduct"]) else {
        return;
    };
    let Some(material) = child(product, "manufacturedMaterial")
        .or_else(|| child(product, "manufacturedLabeledDrug"))
    else {
        return;
    };
    let mut original = None;
    if let Some(code) = child(material, "code") {
        for coded in std::iter::once(code).chain(children(code, "translation")) {
            if let Some(c) = code_of(coded) {
                record.codes.push(c);
            }
        }
        if let Some(text) = child(code, "originalText") {
            original = said_text(narrative.said(text), record, referenced);
        }
        record.name = original.or_else(|| {
            std::iter::once(code)
                .chain(children(code, "translation"))
                .find_map(|c| attr(c, "displayName").map(str::to_string))
        });
    }
    let own = child(material, "name").and_then(text_of);
    match (&record.name, own) {
        (None, own) => record.name = own,
        (Some(name), Some(own)) if !name.eq_ignore_ascii_case(&own) => record.brand = Some(own),
        _ => {}
    }
}

/// One code with its system, or None for a nullFlavored or valueless one.
fn code_of(coded: Node) -> Option<Code> {
    if is_null(coded) {
        return None;
    }
    let value = attr(coded, "code")?;
    let system = attr(coded, "codeSystem")
        .or_else(|| attr(coded, "codeSystemName"))
        .unwrap_or("");
    Some(Code::new(system, value, attr(coded, "displayName")))
}

/// The text of a reference or inline text; a dangling reference is a problem.
fn said_text<'a>(
    said: Said<'a, 'a>,
    record: &mut MedRecord,
    referenced: &mut Option<Node<'a, 'a>>,
) -> Option<String> {
    match said {
        Said::Nothing => None,
        Said::Inline(text) => Some(text),
        Said::Referenced(target, text) => {
            referenced.get_or_insert(target);
            text
        }
        Said::Dangling(value) => {
            record.problems.push(Problem {
                kind: ProblemKind::UnresolvedReference,
                detail: format!("the reference {value:?} points at nothing in the narrative"),
            });
            None
        }
    }
}

/// Whether a negated activity is the "no known medications" pattern: its
/// drug is no drug (SNOMED "Drug or medicament", or no code at all) and it
/// names none (or its text says "no medications").
fn names_any_drug(record: &MedRecord) -> bool {
    record.codes.iter().all(|c| c.value == ANY_DRUG)
        && (record.codes.iter().any(|c| c.value == ANY_DRUG)
            || record.name.as_deref().is_none_or(narrative::says_none))
}

fn drug_words(record: &MedRecord) -> String {
    if let Some(name) = &record.name {
        return name.clone();
    }
    match record.codes.first() {
        Some(c) => format!("{} {}", c.system.label(), c.value),
        None => "the drug named".to_string(),
    }
}

/// The v3 ActStatus in the words `MedStatus::normalize` knows.
fn status_words(code: &str) -> String {
    match code {
        "aborted" => "stopped",
        "held" | "suspended" => "on-hold",
        "new" => "draft",
        "nullified" => "entered-in-error",
        other => other,
    }
    .to_string()
}

/// Sig texts: Free Text Sig entries, Instructions, and the activity's own
/// text when it is written inline or references a sig rather than a row.
fn directions<'a>(
    sa: Node<'a, 'a>,
    narrative: &Narrative<'a, 'a>,
    record: &mut MedRecord,
    referenced: &mut Option<Node<'a, 'a>>,
) {
    if let Some(text) = child(sa, "text") {
        match narrative.said(text) {
            Said::Referenced(target, text) => {
                referenced.get_or_insert(target);
                if !narrative::is_row(target) {
                    record.directions.extend(text);
                }
            }
            other => {
                let text = said_text(other, record, referenced);
                record.directions.extend(text);
            }
        }
    }
    for rel in children(sa, "entryRelationship") {
        for inner in rel.children().filter(|n| n.is_element()) {
            let sig = (is(inner, "substanceAdministration") && has_template(inner, FREE_TEXT_SIG))
                || (is(inner, "act") && has_template(inner, INSTRUCTION));
            if sig && let Some(text) = child(inner, "text") {
                let said = narrative.said(text);
                if let Some(t) = said_text(said, record, &mut None) {
                    record.directions.push(t);
                }
            }
        }
    }
    record.directions.dedup();
}

/// The supply order (quantity, prescriber, order date) and dispense
/// (quantity, pharmacy) of the activity; a prescribed activity's own author
/// is its prescriber.
fn supply(sa: Node, mood: &str, record: &mut MedRecord) {
    let supplies = || children(sa, "entryRelationship").flat_map(|rel| children(rel, "supply"));
    let order = supplies().find(|s| attr(*s, "moodCode") == Some("INT"));
    let dispense = supplies().find(|s| attr(*s, "moodCode") == Some("EVN"));
    if let Some(order) = order {
        record.quantity = child(order, "quantity").and_then(quantity_text);
        if let Some((who, when)) = author(order) {
            record.prescriber = who;
            record.prescribed = when;
        }
    }
    if let Some(dispense) = dispense {
        if record.quantity.is_none() {
            record.quantity = child(dispense, "quantity").and_then(quantity_text);
        }
        let entity = path(dispense, &["performer", "assignedEntity"]);
        record.dispenser = entity.and_then(|e| {
            path(e, &["representedOrganization", "name"])
                .and_then(name_text)
                .or_else(|| path(e, &["assignedPerson", "name"]).and_then(name_text))
        });
    }
    if mood == "INT"
        && record.prescriber.is_none()
        && let Some((who, when)) = author(sa)
    {
        record.prescriber = who;
        record.prescribed = record.prescribed.take().or(when);
    }
}

/// An element's author: the person's (or else the organization's) name,
/// and the time.
fn author(node: Node) -> Option<(Option<String>, Option<String>)> {
    let author = child(node, "author")?;
    let assigned = child(author, "assignedAuthor");
    let who = assigned.and_then(|a| {
        path(a, &["assignedPerson", "name"])
            .and_then(name_text)
            .or_else(|| path(a, &["representedOrganization", "name"]).and_then(name_text))
    });
    let when = child(author, "time")
        .filter(|t| !is_null(*t))
        .and_then(|t| attr(t, "value"))
        .map(str::to_string);
    Some((who, when))
}
