//! One open exception as a `DetectedIssue`, and the mapping of rxsync's
//! exception kinds and severities onto FHIR's codes.

use super::{ACT_CODE_SYSTEM, is_date_time, local_identifier};
use crate::store::ExceptionView;
use serde_json::{Map, Value, json};

/// The issue of one open exception; `implicated` are the entries it concerns.
pub(super) fn issue(e: &ExceptionView, subject: &Value, implicated: Vec<Value>) -> Value {
    let mut r = Map::new();
    r.insert("resourceType".into(), json!("DetectedIssue"));
    r.insert(
        "identifier".into(),
        json!([local_identifier("rxsync exception id", e.id)]),
    );
    r.insert("status".into(), json!("preliminary"));
    r.insert("code".into(), issue_code(&e.kind));
    if let Some(s) = issue_severity(&e.severity) {
        r.insert("severity".into(), json!(s));
    }
    r.insert("patient".into(), subject.clone());
    if is_date_time(&e.created_at) {
        r.insert("identifiedDateTime".into(), json!(e.created_at));
    }
    if !implicated.is_empty() {
        r.insert("implicated".into(), Value::Array(implicated));
    }
    // A FHIR string is never empty.
    if !e.detail.trim().is_empty() {
        r.insert("detail".into(), json!(e.detail));
    }
    Value::Object(r)
}

/// `DetectedIssue.code` for an exception kind. v3 ActCode has a code for
/// two of rxsync's findings: a `duplicate` or `therapeutic_duplicate` is
/// `DUPTHPY` (Duplicate Therapy: the therapy appears to duplicate another
/// on the list), and an `invalid_ndc` is `CODE_INVAL` (a coded value that is
/// not a valid code). The others — an NDC missing from the dictionary, a
/// drug coded in another system, a name that contradicts its NDC, too many
/// items, nothing shared, an unreadable record, sources that disagree, a
/// link's trouble or a consent that ends soon (`link_expiring`) — are about the data or its transport, not a clinical
/// issue ActCode names, so they are text only: the kind in words with its
/// rxsync name.
pub fn issue_code(kind: &str) -> Value {
    let text = format!("{} ({kind})", kind_label(kind));
    let coding = match kind {
        "duplicate" | "therapeutic_duplicate" => Some(("DUPTHPY", "Duplicate Therapy")),
        "invalid_ndc" => Some(("CODE_INVAL", "Invalid code")),
        _ => None,
    };
    match coding {
        Some((code, display)) => json!({
            "coding": [{ "system": ACT_CODE_SYSTEM, "code": code, "display": display }],
            "text": text,
        }),
        None => json!({ "text": text }),
    }
}

/// rxsync's severity as `DetectedIssue.severity`.
pub fn issue_severity(severity: &str) -> Option<&'static str> {
    match severity {
        "error" => Some("high"),
        "warning" => Some("moderate"),
        "info" => Some("low"),
        _ => None,
    }
}

/// An exception kind in words.
pub(super) fn kind_label(kind: &str) -> String {
    kind.parse::<crate::domain::ExceptionKind>()
        .map(|k| k.label().to_string())
        .unwrap_or_else(|_| kind.replace('_', " "))
}
