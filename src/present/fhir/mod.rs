//! A patient's regimens as a FHIR R4 `Bundle` of type `collection`, for the
//! next system: one `Patient`, and per source one `DocumentReference` (the
//! document the regimen was read from), one `MedicationStatement` per item
//! in force, and one `DetectedIssue` per open exception.
//!
//! `regimen_bundle` takes one source's regimen; `sources_bundle` takes as
//! many as a patient has (the reconciled list lines them up the same way),
//! so entries of several sources never collide: every `fullUrl` is a
//! `urn:uuid:` derived from what the entry stands for (the patient, the
//! document's hash, the item or exception id), and the Bundle's `id` from
//! its entries. The same stored state gives the same ids; `timestamp` is
//! the instant the caller assembled it.
//!
//! Never here: a database read, the clock, an NDC or a status invented.
//! What rxsync does not know stays out or stays text (see `dosage`), and a
//! removed item is not a statement: a clinician took it off the list.

mod dosage;
mod issue;
mod provenance;
mod statement;

use crate::domain::ExceptionState;
use crate::store::{Patient, SourceRegimen};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

pub use dosage::{dose_quantity, repeat, route_code};
pub use issue::{issue_code, issue_severity};
pub use statement::statement_status;

/// The media type of what this module builds (FHIR R4 JSON).
pub const MEDIA_TYPE: &str = "application/fhir+json";

/// FHIR's NDC system (HL7 Terminology, "Using NDC with HL7 Standards").
pub const NDC_SYSTEM: &str = "http://hl7.org/fhir/sid/ndc";
/// HL7 v3 ActCode, whose detected-issue codes `DetectedIssue.code` prefers.
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// One source's regimen as a Bundle.
pub fn regimen_bundle(patient: &Patient, source: &SourceRegimen, at: DateTime<Utc>) -> Value {
    sources_bundle(patient, std::slice::from_ref(source), at)
}

/// Every given source's regimen of one patient in one Bundle, in the order
/// given: the Patient, each source's DocumentReference and statements, then
/// the open exceptions' issues. An exception listed by several sources (a
/// finding across them) is one issue, implicating statements of any source.
pub fn sources_bundle(patient: &Patient, sources: &[SourceRegimen], at: DateTime<Utc>) -> Value {
    let patient_url = urn(&["patient", &patient.id]);
    let subject = reference(&patient_url, patient.name.as_deref());
    let mut entries = vec![entry(&patient_url, provenance::patient_resource(patient))];
    // Each item in force, by id, as the fullUrl of its statement.
    let mut statements: HashMap<i64, String> = HashMap::new();
    let mut doc_urls = Vec::with_capacity(sources.len());
    for source in sources {
        let doc = &source.document;
        let doc_url = urn(&["document", &patient.id, &doc.sha256]);
        entries.push(entry(
            &doc_url,
            provenance::document_resource(doc, &subject),
        ));
        let informant = provenance::information_source(doc);
        for item in &source.regimen.items {
            let url = urn(&["item", &patient.id, &doc.sha256, &item.id.to_string()]);
            let s = statement::statement(
                item,
                &subject,
                &informant,
                &doc_url,
                doc,
                &source.exceptions,
            );
            entries.push(entry(&url, s));
            statements.insert(item.id, url);
        }
        doc_urls.push(doc_url);
    }
    let mut issued = HashSet::new();
    for (source, doc_url) in sources.iter().zip(&doc_urls) {
        for e in source
            .exceptions
            .iter()
            .filter(|e| e.state == ExceptionState::Open)
        {
            if !issued.insert(e.id) {
                continue;
            }
            // The items it concerns that are in force (a removed item has
            // no statement); a regimen- or document-level finding concerns
            // the document.
            let mut implicated: Vec<Value> = [&e.item, &e.related_item]
                .into_iter()
                .flatten()
                .filter_map(|i| statements.get(&i.id))
                .map(|url| json!({ "reference": url }))
                .collect();
            if e.item.is_none() {
                implicated.push(json!({ "reference": doc_url }));
            }
            let sha = &source.document.sha256;
            let url = urn(&["exception", &patient.id, sha, &e.id.to_string()]);
            entries.push(entry(&url, issue::issue(e, &subject, implicated)));
        }
    }
    let id = uuid(&[&Value::Array(entries.clone()).to_string()]);
    json!({
        "resourceType": "Bundle",
        "id": id,
        "type": "collection",
        "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "entry": entries,
    })
}

fn entry(full_url: &str, resource: Value) -> Value {
    json!({ "fullUrl": full_url, "resource": resource })
}

fn reference(url: &str, display: Option<&str>) -> Value {
    let mut r = Map::new();
    r.insert("reference".into(), json!(url));
    if let Some(d) = display.filter(|d| !d.trim().is_empty()) {
        r.insert("display".into(), json!(d));
    }
    Value::Object(r)
}

/// An identifier of rxsync's own (no system: rxsync's ids are local).
fn local_identifier(what: &str, value: impl ToString) -> Value {
    json!({ "type": { "text": what }, "value": value.to_string() })
}

/// `urn:uuid:` of what the parts name.
fn urn(parts: &[&str]) -> String {
    format!("urn:uuid:{}", uuid(parts))
}

/// A name-based UUID (RFC 9562 version 8: SHA-256 of the parts, each
/// ended by a separator no part holds), so the same thing always gets the
/// same id.
fn uuid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"rxsync-fhir");
    for p in parts {
        h.update([0x1f]);
        h.update(p.as_bytes());
    }
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// Text as a FHIR `code`: no leading, trailing or repeated whitespace.
fn code(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A FHIR `date`: YYYY, YYYY-MM or YYYY-MM-DD.
fn is_date(s: &str) -> bool {
    match s.len() {
        4 => s.bytes().all(|b| b.is_ascii_digit()),
        7 => chrono::NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").is_ok(),
        10 => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        _ => false,
    }
}

/// A FHIR `dateTime`: a `date`, or a full time with its zone.
fn is_date_time(s: &str) -> bool {
    is_date(s) || is_instant(s)
}

/// A FHIR `instant`: a full date and time with its zone.
fn is_instant(s: &str) -> bool {
    s.len() >= 20 && DateTime::parse_from_rfc3339(s).is_ok()
}
#[cfg(test)]
mod tests;
