//! Who and where a list comes from: the `Patient`, the `DocumentReference`
//! of the document a regimen was read from, and a statement's
//! `informationSource` (the provider, or the file import).

use super::{code, is_date, is_instant, local_identifier};
use crate::store::{DocumentMeta, Patient};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

/// HL7 v2 table 0203, identifier types (`MR`: medical record number).
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// The patient, known by rxsync's id (and MRN, name, birth date).
pub(super) fn patient_resource(p: &Patient) -> Value {
    let mut identifiers = vec![json!({
        "use": "usual", "type": { "text": "rxsync patient id" }, "value": p.id,
    })];
    if let Some(mrn) = p.mrn.as_deref().filter(|m| !m.trim().is_empty()) {
        identifiers.push(json!({
            "type": { "coding": [{ "system": V2_0203, "code": "MR", "display": "Medical record number" }] },
            "value": mrn,
        }));
    }
    let mut r = Map::new();
    r.insert("resourceType".into(), json!("Patient"));
    r.insert("identifier".into(), Value::Array(identifiers));
    if let Some(name) = p.name.as_deref().filter(|n| !n.trim().is_empty()) {
        r.insert("name".into(), json!([{ "text": name }]));
    }
    if let Some(born) = p.birth_date.as_deref().filter(|d| is_date(d)) {
        r.insert("birthDate".into(), json!(born));
    }
    Value::Object(r)
}

/// The document a regimen was read from, identified by its hash.
pub(super) fn document_resource(doc: &DocumentMeta, subject: &Value) -> Value {
    let mut attachment = Map::new();
    attachment.insert("contentType".into(), json!(code(&doc.media_type)));
    if let Ok(size) = u32::try_from(doc.size) {
        attachment.insert("size".into(), json!(size));
    }
    let title = doc
        .origin
        .clone()
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| doc.source.clone());
    if title.starts_with("https://") || title.starts_with("http://") {
        attachment.insert("url".into(), json!(title));
    }
    attachment.insert("title".into(), json!(title));
    let mut r = Map::new();
    r.insert("resourceType".into(), json!("DocumentReference"));
    if let Some(hash) = sha256_uri(&doc.sha256) {
        r.insert(
            "masterIdentifier".into(),
            json!({ "system": "urn:ietf:rfc:3986", "value": hash }),
        );
    }
    r.insert(
        "identifier".into(),
        json!([local_identifier("rxsync document id", doc.id)]),
    );
    r.insert("status".into(), json!("current"));
    r.insert(
        "type".into(),
        json!({ "text": format!("{} document", doc.format) }),
    );
    r.insert("subject".into(), subject.clone());
    if is_instant(&doc.received_at) {
        r.insert("date".into(), json!(doc.received_at));
    }
    r.insert("description".into(), json!(describe_source(doc)));
    r.insert(
        "content".into(),
        json!([{ "attachment": Value::Object(attachment) }]),
    );
    Value::Object(r)
}

/// Where a document came from, in words.
fn describe_source(doc: &DocumentMeta) -> String {
    if doc.from_file() {
        match &doc.origin {
            Some(path) => format!(
                "medication list imported from the file {path} (source {})",
                doc.source
            ),
            None => format!(
                "medication list imported from a file (source {})",
                doc.source
            ),
        }
    } else {
        format!("medication list pulled from the provider {}", doc.source)
    }
}

/// `MedicationStatement.informationSource`: the provider (an Organization,
/// by name only), or the file import.
pub(super) fn information_source(doc: &DocumentMeta) -> Value {
    if doc.from_file() {
        json!({ "display": describe_source(doc) })
    } else {
        json!({ "type": "Organization", "display": format!("provider {}", doc.source) })
    }
}

/// RFC 6920 `ni:` URI of a SHA-256 given in hex: the document's identity.
fn sha256_uri(hex_digest: &str) -> Option<String> {
    let bytes = hex::decode(hex_digest).ok().filter(|b| b.len() == 32)?;
    Some(format!("ni:///sha-256;{}", URL_SAFE_NO_PAD.encode(bytes)))
}
