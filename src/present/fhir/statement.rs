//! One item in force as a `MedicationStatement`: the drug's codes, the R4
//! status, the dates, the dosage, where it was read, and the decisions a
//! clinician already took on it.

use super::{NDC_SYSTEM, dosage, is_date_time, local_identifier};
use crate::domain::{ExceptionState, MedStatus, Ndc11};
use crate::store::{DocumentMeta, ExceptionView, ItemView};
use serde_json::{Map, Value, json};

pub(super) const RXNORM_SYSTEM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const SNOMED_SYSTEM: &str = "http://snomed.info/sct";

/// The statement of one item in force, read from `doc`.
pub(super) fn statement(
    item: &ItemView,
    subject: &Value,
    informant: &Value,
    doc_url: &str,
    doc: &DocumentMeta,
    exceptions: &[ExceptionView],
) -> Value {
    let mut notes = decision_notes(item, exceptions);
    let (status, reason) = statement_status(&item.status);
    let mut r = Map::new();
    r.insert("resourceType".into(), json!("MedicationStatement"));
    r.insert(
        "identifier".into(),
        json!([local_identifier("rxsync item id", item.id)]),
    );
    r.insert("status".into(), json!(status));
    if let Some(reason) = reason {
        let original = item.status_original.as_deref().unwrap_or(&item.status);
        r.insert(
            "statusReason".into(),
            json!([{ "text": format!("{reason} (the source said {original:?})") }]),
        );
    }
    r.insert("medicationCodeableConcept".into(), medication(item));
    r.insert("subject".into(), subject.clone());
    if let Some(period) = period(item.start.as_deref(), item.stop.as_deref()) {
        r.insert("effectivePeriod".into(), period);
    }
    if is_date_time(&doc.received_at) {
        r.insert("dateAsserted".into(), json!(doc.received_at));
    }
    r.insert("informationSource".into(), informant.clone());
    r.insert("derivedFrom".into(), json!([{ "reference": doc_url }]));
    // A claims-only item's sig is rxsync's account of its fills, not how
    // to take the drug: it goes to a note, never to `dosage.text`.
    let claims = item.evidence == "claim";
    if claims {
        notes.insert(0, fills_note(item));
    }
    if let Some(d) = dosage::dosage(
        item.sig.as_deref().filter(|_| !claims),
        item.dose.as_deref(),
        item.frequency.as_deref(),
        item.route.as_deref(),
    ) {
        r.insert("dosage".into(), json!([d]));
    }
    if !notes.is_empty() {
        r.insert("note".into(), Value::Array(notes));
    }
    Value::Object(r)
}

/// rxsync's item status as `MedicationStatement.status` (R4's required
/// codes: active, completed, entered-in-error, intended, stopped, on-hold,
/// unknown, not-taken), with a reason when the code says less than rxsync
/// knows. Claims-only `dispensed` is `unknown`: a fill is no proof that
/// the drug is taken; a `cancelled` order was never started (`not-taken`);
/// a `draft` is `intended`.
pub fn statement_status(status: &str) -> (&'static str, Option<&'static str>) {
    match MedStatus::normalize(status) {
        MedStatus::Active => ("active", None),
        MedStatus::OnHold => ("on-hold", None),
        MedStatus::Completed => ("completed", None),
        MedStatus::Stopped => ("stopped", None),
        MedStatus::Intended => ("intended", None),
        MedStatus::NotTaken => ("not-taken", None),
        MedStatus::EnteredInError => ("entered-in-error", None),
        MedStatus::Unknown => ("unknown", None),
        MedStatus::Cancelled => ("not-taken", Some("cancelled before it was started")),
        MedStatus::Draft => ("intended", Some("a draft order")),
        MedStatus::Dispensed => (
            "unknown",
            Some("known only from pharmacy fills: dispensed, not proof that it is taken"),
        ),
    }
}

/// `medicationCodeableConcept`: the NDC first — the FDA's 10-digit form
/// with its hyphens where the dictionary knows the package (HL7's rule for
/// `http://hl7.org/fhir/sid/ndc`), and the 11-digit 5-4-2 form (HIPAA's) —
/// then every code the document carried, as read; `text` is the name.
fn medication(item: &ItemView) -> Value {
    let mut codings: Vec<Value> = Vec::new();
    let mapped = item.mapping.is_some();
    let package = item
        .product
        .as_ref()
        .and_then(|p| p.get("package_ndc"))
        .and_then(Value::as_str);
    let package_text = item
        .product
        .as_ref()
        .and_then(|p| p.get("package"))
        .and_then(Value::as_str);
    let ndc_coding = |code: String| {
        let mut c = Map::new();
        c.insert("system".into(), json!(NDC_SYSTEM));
        c.insert("code".into(), json!(code));
        if let Some(d) = package_text {
            c.insert("display".into(), json!(d));
        }
        if mapped {
            // A clinician chose this NDC for the drug.
            c.insert("userSelected".into(), json!(true));
        }
        Value::Object(c)
    };
    if let Some(ndc) = item
        .ndc11
        .as_deref()
        .and_then(|n| Ndc11::from_digits(n).ok())
    {
        if let Some(ten) = package.filter(|p| p.len() == 12 && p.matches('-').count() == 2) {
            codings.push(ndc_coding(ten.to_string()));
        }
        codings.push(ndc_coding(ndc.hyphenated()));
    }
    for code in &item.codes {
        let mut c = Map::new();
        if let Some(system) = system_uri(&code.system, &code.system_original) {
            c.insert("system".into(), json!(system));
        }
        c.insert("code".into(), json!(super::code(&code.code)));
        if let Some(d) = &code.display {
            c.insert("display".into(), json!(d));
        }
        let c = Value::Object(c);
        let same = |o: &Value| o.get("system") == c.get("system") && o.get("code") == c.get("code");
        if !code.code.trim().is_empty() && !codings.iter().any(same) {
            codings.push(c);
        }
    }
    let text = [item.name.as_deref(), item.brand.as_deref()]
        .into_iter()
        .flatten()
        .find(|t| !t.trim().is_empty())
        .map(str::to_string)
        .or_else(|| package_text.map(str::to_string))
        .unwrap_or_else(|| format!("unnamed drug (item {})", item.id));
    let mut m = Map::new();
    if !codings.is_empty() {
        m.insert("coding".into(), Value::Array(codings));
    }
    m.insert("text".into(), json!(text));
    Value::Object(m)
}

/// The FHIR system of a code as rxsync labelled it: the canonical URI of
/// the systems FHIR names, the document's own system when it was a URI or
/// an OID, else none (a label such as "Multum" is not a URI).
fn system_uri(label: &str, original: &str) -> Option<String> {
    match label {
        "NDC" => return Some(NDC_SYSTEM.to_string()),
        "RxNorm" => return Some(RXNORM_SYSTEM.to_string()),
        "SNOMED-CT" => return Some(SNOMED_SYSTEM.to_string()),
        _ => {}
    }
    let o = original.trim();
    if o.contains(char::is_whitespace) || o.is_empty() {
        None
    } else if o.contains("://") || o.starts_with("urn:") {
        Some(o.to_string())
    } else if o.chars().all(|c| c.is_ascii_digit() || c == '.') && o.contains('.') {
        Some(format!("urn:oid:{o}"))
    } else {
        None
    }
}

fn period(start: Option<&str>, stop: Option<&str>) -> Option<Value> {
    let start = start.filter(|s| is_date_time(s));
    let mut stop = stop.filter(|s| is_date_time(s));
    if let (Some(a), Some(b)) = (start, stop) {
        // FHIR's per-1: start is not after end; dates of one precision compare as text.
        if a.len() == b.len() && a > b {
            stop = None;
        }
    }
    let mut p = Map::new();
    if let Some(s) = start {
        p.insert("start".into(), json!(s));
    }
    if let Some(s) = stop {
        p.insert("end".into(), json!(s));
    }
    (!p.is_empty()).then_some(Value::Object(p))
}

/// The decisions already taken on an item (closed exceptions, a remembered
/// mapping) as `note`s: what a clinician settled travels with the drug.
fn decision_notes(item: &ItemView, exceptions: &[ExceptionView]) -> Vec<Value> {
    let mut notes = Vec::new();
    let mut mapped_here = false;
    for e in exceptions.iter().filter(|e| {
        e.state != ExceptionState::Open && e.item.as_ref().is_some_and(|i| i.id == item.id)
    }) {
        let decision = e.resolution.as_deref().unwrap_or(e.state.as_str());
        mapped_here |= decision == "map";
        let mut text = format!(
            "{} ({}): {decision}",
            super::issue::kind_label(&e.kind),
            e.kind
        );
        if let Some(ndc) = &e.resolution_ndc {
            text.push_str(&format!(" to NDC {ndc}"));
        }
        if let Some(n) = e.note.as_deref().filter(|n| !n.trim().is_empty()) {
            text.push_str(&format!(" — {n}"));
        }
        notes.push(annotation(
            e.resolved_by.as_deref(),
            e.resolved_at.as_deref(),
            text,
        ));
    }
    if let (Some(m), false) = (&item.mapping, mapped_here) {
        let field = |k: &str| m.get(k).and_then(Value::as_str);
        let ndc = field("ndc11")
            .map(|n| Ndc11::from_digits(n).map_or_else(|_| n.to_string(), |n| n.hyphenated()));
        let mut text = format!(
            "NDC {} from a clinician's earlier mapping of this drug",
            ndc.as_deref().unwrap_or("(not recorded)")
        );
        if let Some(n) = field("note").filter(|n| !n.trim().is_empty()) {
            text.push_str(&format!(" — {n}"));
        }
        notes.push(annotation(field("decided_by"), field("decided_at"), text));
    }
    notes
}

/// What pharmacy claims say of a claims-only item: the latest fill.
fn fills_note(item: &ItemView) -> Value {
    let mut text = String::from("known from pharmacy claims only");
    if let Some(sig) = item.sig.as_deref().filter(|s| !s.trim().is_empty()) {
        text.push_str(&format!(": {sig}"));
    }
    let details: Vec<String> = [
        ("quantity", &item.quantity),
        ("days supply", &item.days_supply),
        ("pharmacy", &item.dispenser),
    ]
    .into_iter()
    .filter_map(|(what, v)| v.as_deref().map(|v| format!("{what} {v}")))
    .collect();
    if !details.is_empty() {
        text.push_str(&format!(" ({})", details.join(", ")));
    }
    annotation(None, None, text)
}

fn annotation(by: Option<&str>, at: Option<&str>, text: String) -> Value {
    let mut a = Map::new();
    if let Some(by) = by.filter(|b| !b.trim().is_empty()) {
        a.insert("authorString".into(), json!(by));
    }
    if let Some(at) = at.filter(|t| is_date_time(t)) {
        a.insert("time".into(), json!(at));
    }
    a.insert("text".into(), json!(text));
    Value::Object(a)
}
