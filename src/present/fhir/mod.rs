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

use crate::domain::{MedStatus, Ndc11};
use crate::store::{DocumentMeta, ExceptionView, ItemView, Patient, SourceRegimen};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub use dosage::{dose_quantity, repeat, route_code};

/// The media type of what this module builds (FHIR R4 JSON).
pub const MEDIA_TYPE: &str = "application/fhir+json";

/// FHIR's NDC system (HL7 Terminology, "Using NDC with HL7 Standards").
pub const NDC_SYSTEM: &str = "http://hl7.org/fhir/sid/ndc";
const RXNORM_SYSTEM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
/// HL7 v3 ActCode, whose detected-issue codes `DetectedIssue.code` prefers.
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// One source's regimen as a Bundle.
pub fn regimen_bundle(patient: &Patient, source: &SourceRegimen, at: DateTime<Utc>) -> Value {
    sources_bundle(patient, std::slice::from_ref(source), at)
}

/// Every given source's regimen of one patient in one Bundle, in the order
/// given.
pub fn sources_bundle(patient: &Patient, sources: &[SourceRegimen], at: DateTime<Utc>) -> Value {
    let patient_url = urn(&["patient", &patient.id]);
    let subject = reference(&patient_url, patient.name.as_deref());
    let mut entries = vec![entry(&patient_url, patient_resource(patient))];
    for source in sources {
        entries.extend(source_entries(&patient.id, &subject, source));
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

/// The DocumentReference, the statements and the issues of one source.
fn source_entries(patient_id: &str, subject: &Value, source: &SourceRegimen) -> Vec<Value> {
    let doc = &source.document;
    let doc_url = urn(&["document", patient_id, &doc.sha256]);
    let mut out = vec![entry(&doc_url, document_resource(doc, subject))];
    let item_url = |item_id: i64| urn(&["item", patient_id, &doc.sha256, &item_id.to_string()]);
    let informant = information_source(doc);
    for item in &source.regimen.items {
        let notes = decision_notes(item, &source.exceptions);
        let statement = statement(item, subject, &informant, &doc_url, doc, notes);
        out.push(entry(&item_url(item.id), statement));
    }
    let in_force = |id: i64| source.regimen.items.iter().any(|i| i.id == id);
    for e in source.exceptions.iter().filter(|e| e.state == "open") {
        let mut implicated: Vec<Value> = [&e.item, &e.related_item]
            .into_iter()
            .flatten()
            .filter(|i| in_force(i.id))
            .map(|i| json!({ "reference": item_url(i.id) }))
            .collect();
        if e.item.is_none() {
            // A regimen- or document-level finding: the document is what
            // it concerns.
            implicated.push(json!({ "reference": doc_url }));
        }
        let url = urn(&["exception", patient_id, &doc.sha256, &e.id.to_string()]);
        out.push(entry(&url, issue(e, subject, implicated)));
    }
    out
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

fn patient_resource(p: &Patient) -> Value {
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

fn document_resource(doc: &DocumentMeta, subject: &Value) -> Value {
    let mut attachment = Map::new();
    attachment.insert("contentType".into(), json!(doc.media_type));
    if let Ok(size) = u32::try_from(doc.size) {
        attachment.insert("size".into(), json!(size));
    }
    let title = doc.origin.clone().unwrap_or_else(|| doc.source.clone());
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
fn information_source(doc: &DocumentMeta) -> Value {
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

fn statement(
    item: &ItemView,
    subject: &Value,
    informant: &Value,
    doc_url: &str,
    doc: &DocumentMeta,
    notes: Vec<Value>,
) -> Value {
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
    if let Some(d) = dosage::dosage(
        item.sig.as_deref(),
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
        c.insert("code".into(), json!(code.code));
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
    for e in exceptions
        .iter()
        .filter(|e| e.state != "open" && e.item.as_ref().is_some_and(|i| i.id == item.id))
    {
        let decision = e.resolution.as_deref().unwrap_or(&e.state);
        mapped_here |= decision == "map";
        let mut text = format!("{} ({}): {decision}", kind_label(&e.kind), e.kind);
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
        let mut text = format!(
            "NDC {} from a clinician's earlier mapping of this drug",
            field("ndc11").unwrap_or("?")
        );
        if let Some(n) = field("note").filter(|n| !n.trim().is_empty()) {
            text.push_str(&format!(" — {n}"));
        }
        notes.push(annotation(field("decided_by"), field("decided_at"), text));
    }
    notes
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

fn issue(e: &ExceptionView, subject: &Value, implicated: Vec<Value>) -> Value {
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
    r.insert("detail".into(), json!(e.detail));
    Value::Object(r)
}

/// `DetectedIssue.code` for an exception kind. v3 ActCode has a code for
/// two of rxsync's findings: a `duplicate` or `therapeutic_duplicate` is
/// `DUPTHPY` (Duplicate Therapy: the therapy appears to duplicate another
/// on the list), and an `invalid_ndc` is `CODE_INVAL` (a coded value that is
/// not a valid code). The others — an NDC missing from the dictionary, a
/// drug coded in another system, a name that contradicts its NDC, too many
/// items, nothing shared, an unreadable record, sources that disagree, a
/// link's trouble — are about the data or its transport, not a clinical
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
fn kind_label(kind: &str) -> String {
    match kind {
        "unmapped_ndc" => "NDC not in the drug dictionary".into(),
        "invalid_ndc" => "invalid NDC".into(),
        "non_ndc_code" => "drug not coded by NDC".into(),
        "duplicate" => "duplicate drug".into(),
        "therapeutic_duplicate" => "therapeutic duplicate".into(),
        "too_many" => "more items than allowed".into(),
        "none_shared" => "no medications shared".into(),
        "unreadable_record" => "a record could not be read".into(),
        "unreadable" => "the document could not be read".into(),
        "ndc_name_mismatch" => "drug text contradicts its NDC".into(),
        "source_conflict" => "sources disagree".into(),
        "link_expiring" => "the provider's consent ends soon".into(),
        "link_broken" => "the link to the provider is broken".into(),
        "identity_mismatch" => "the provider's patient may be someone else".into(),
        other => other.replace('_', " "),
    }
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
