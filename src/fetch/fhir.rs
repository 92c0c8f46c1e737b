//! FHIR protocol knowledge for pulls: which searches to send (US Core
//! parameters, `_include` when the server's CapabilityStatement offers it),
//! which `medicationReference`s a search left unanswered, and how what was
//! fetched becomes the one `collection` Bundle stored as the document.
//!
//! Nothing here decides credentials or follows redirects (`http` does), and
//! nothing here interprets a drug: a fetched Medication is stored as the
//! provider sent it, and a reference that is not fetched becomes a note in
//! the Bundle (an `OperationOutcome` entry whose `fullUrl` is the reference)
//! that the parser turns into the record's reason.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// Whether searches ask for `_include`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeMode {
    /// Only where the provider's CapabilityStatement lists the `searchInclude`.
    Auto,
    Always,
    Never,
}

/// `[providers.search]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSettings {
    pub include: IncludeMode,
    /// Extra search parameters per resource type (`intent=order,plan` for
    /// MedicationRequest by default), in the order written.
    pub params: HashMap<String, Vec<(String, String)>>,
    /// Referenced Medications fetched at most per sync.
    pub max_reference_fetches: u32,
}

/// Default `max_reference_fetches`.
pub const DEFAULT_MAX_REFERENCE_FETCHES: u32 = 50;

impl Default for SearchSettings {
    fn default() -> SearchSettings {
        SearchSettings {
            include: IncludeMode::Auto,
            params: default_params(),
            max_reference_fetches: DEFAULT_MAX_REFERENCE_FETCHES,
        }
    }
}

/// US Core's medication list: orders and plans; of a payer's claims
/// (Blue Button / CARIN), the pharmacy claims, the only ones naming drugs.
pub fn default_params() -> HashMap<String, Vec<(String, String)>> {
    HashMap::from([
        (
            "MedicationRequest".to_string(),
            vec![("intent".to_string(), "order,plan".to_string())],
        ),
        (
            "ExplanationOfBenefit".to_string(),
            vec![("type".to_string(), "pharmacy".to_string())],
        ),
    ])
}

/// The resource types whose drug is a `medication[x]` that `_include`
/// can bring along (a claim names its drug by code, never by reference).
const INCLUDES_MEDICATION: [&str; 4] = [
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationAdministration",
];

/// The `_include` that brings a resource type's drug (`MedicationRequest:medication`).
pub fn medication_include(resource: &str) -> String {
    format!("{resource}:medication")
}

/// The first search URL of `resource` for a remote patient: `patient`, the
/// configured parameters, and `_include` when asked.
pub fn search_url(
    base: &Url,
    resource: &str,
    remote_patient: &str,
    settings: &SearchSettings,
    include: bool,
) -> Url {
    let mut url = resource_url(base, resource);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("patient", remote_patient);
        for (k, v) in settings.params.get(resource).into_iter().flatten() {
            q.append_pair(k, v);
        }
        if include && INCLUDES_MEDICATION.contains(&resource) {
            q.append_pair("_include", &medication_include(resource));
        }
    }
    url
}

/// `[base]/path` whatever the base's trailing slash.
pub fn resource_url(base: &Url, path: &str) -> Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    base.join(path).unwrap_or(base)
}

/// The `searchInclude`s a server announces, by resource type.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Capabilities {
    includes: HashSet<(String, String)>,
}

impl Capabilities {
    /// Reads a CapabilityStatement (`rest[].resource[].searchInclude`);
    /// anything else announces nothing.
    pub fn parse(body: &[u8]) -> Capabilities {
        #[derive(Deserialize)]
        struct Statement {
            #[serde(rename = "resourceType")]
            resource_type: Option<String>,
            #[serde(default)]
            rest: Vec<Rest>,
        }
        #[derive(Deserialize)]
        struct Rest {
            #[serde(default)]
            resource: Vec<Resource>,
        }
        #[derive(Deserialize)]
        struct Resource {
            #[serde(rename = "type")]
            kind: Option<String>,
            #[serde(rename = "searchInclude", default)]
            search_include: Vec<String>,
        }
        let Ok(s) = serde_json::from_slice::<Statement>(body) else {
            return Capabilities::default();
        };
        if s.resource_type.as_deref() != Some("CapabilityStatement") {
            return Capabilities::default();
        }
        let includes = s
            .rest
            .into_iter()
            .flat_map(|r| r.resource)
            .filter_map(|r| Some((r.kind?, r.search_include)))
            .flat_map(|(kind, incs)| {
                incs.into_iter()
                    .map(move |i| (kind.clone(), i.trim().to_string()))
            })
            .collect();
        Capabilities { includes }
    }

    /// Whether `resource` searches take `_include=<include>`.
    pub fn supports(&self, resource: &str, include: &str) -> bool {
        self.includes
            .contains(&(resource.to_string(), include.to_string()))
    }
}

/// How long a CapabilityStatement read is trusted, and a failed read remembered.
pub const CAPABILITIES_TTL: Duration = Duration::from_secs(3600);
pub const CAPABILITIES_FAILED_TTL: Duration = Duration::from_secs(300);

/// A provider's CapabilityStatement, read once per process and kept for a
/// bounded time. The lock is held across the read, so concurrent syncs of
/// the provider wait for one read instead of sending many.
#[derive(Debug, Default)]
pub struct CapabilityCache {
    slot: tokio::sync::Mutex<Option<(Instant, Arc<Capabilities>)>>,
}

impl CapabilityCache {
    /// The cached capabilities, or `read` them now (`None`: the read failed,
    /// remembered for a shorter time as announcing nothing).
    pub async fn get_or_read<F, Fut>(&self, read: F) -> Arc<Capabilities>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Option<Capabilities>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((until, caps)) = slot.as_ref()
            && Instant::now() < *until
        {
            return Arc::clone(caps);
        }
        let (caps, ttl) = match read().await {
            Some(c) => (c, CAPABILITIES_TTL),
            None => (Capabilities::default(), CAPABILITIES_FAILED_TTL),
        };
        let caps = Arc::new(caps);
        *slot = Some((Instant::now() + ttl, Arc::clone(&caps)));
        caps
    }
}

/// Resource types whose drug may be a `medicationReference`.
const USING: [&str; 5] = [
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationOrder",
    "MedicationAdministration",
];

/// The `medicationReference`s of search entries that no entry answers, in
/// order of first use, each once. Contained (`#id`) and `urn:` references
/// name nothing to fetch.
pub fn missing_medications(entries: &[Vec<u8>]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Entry<'a> {
        #[serde(rename = "fullUrl")]
        full_url: Option<String>,
        #[serde(borrow)]
        resource: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Reference {
        reference: Option<String>,
    }
    #[derive(Deserialize)]
    struct R5Medication {
        reference: Option<Reference>,
    }
    #[derive(Deserialize)]
    struct Resource {
        #[serde(rename = "resourceType")]
        resource_type: Option<String>,
        id: Option<String>,
        #[serde(rename = "medicationReference")]
        medication_reference: Option<Reference>,
        medication: Option<serde_json::Value>,
    }
    let mut present: HashSet<String> = HashSet::new();
    let mut wanted: Vec<String> = Vec::new();
    for bytes in entries {
        let Ok(entry) = serde_json::from_slice::<Entry>(bytes) else {
            continue;
        };
        let Some(resource) = entry
            .resource
            .and_then(|r| serde_json::from_str::<Resource>(r.get()).ok())
        else {
            continue;
        };
        if let Some(url) = &entry.full_url {
            present.insert(url.trim().to_string());
            if let Some(key) = type_and_id(url) {
                present.insert(key);
            }
        }
        if let (Some(t), Some(id)) = (&resource.resource_type, &resource.id) {
            present.insert(format!("{t}/{}", id.trim()));
        }
        if !USING.contains(&resource.resource_type.as_deref().unwrap_or("")) {
            continue;
        }
        let r5 = resource
            .medication
            .and_then(|m| serde_json::from_value::<R5Medication>(m).ok())
            .and_then(|m| m.reference);
        let target = resource
            .medication_reference
            .or(r5)
            .and_then(|r| r.reference)
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty() && !r.starts_with('#') && !r.starts_with("urn:"));
        if let Some(t) = target
            && !wanted.contains(&t)
        {
            wanted.push(t);
        }
    }
    wanted.retain(|r| {
        !present.contains(r) && type_and_id(r).is_none_or(|key| !present.contains(&key))
    });
    wanted
}

/// Why a reference is not fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFetched {
    /// Not `Medication/{id}` (or an absolute URL to one).
    NotAMedication,
    /// Its origin is neither the provider's base nor a trusted origin.
    Origin(String),
    /// From an https base down to http.
    Downgrade,
}

impl std::fmt::Display for NotFetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotFetched::NotAMedication => write!(f, "it does not name a Medication resource"),
            NotFetched::Origin(o) => write!(
                f,
                "its origin {o} is not the provider's (nor one of its trusted_origins)"
            ),
            NotFetched::Downgrade => write!(f, "it goes from https down to http"),
        }
    }
}

/// Where a reference is read from: relative references under the base,
/// absolute ones only within `trusted` origins (the base's first).
pub fn reference_url(
    base: &Url,
    reference: &str,
    trusted: &[url::Origin],
) -> Result<Url, NotFetched> {
    let (kind, _) = split_type_and_id(reference).ok_or(NotFetched::NotAMedication)?;
    if kind != "Medication" {
        return Err(NotFetched::NotAMedication);
    }
    let url = match Url::parse(reference) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => resource_url(base, reference),
        Err(_) => return Err(NotFetched::NotAMedication),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NotFetched::NotAMedication);
    }
    if base.scheme() == "https" && url.scheme() == "http" {
        return Err(NotFetched::Downgrade);
    }
    if !trusted.contains(&url.origin()) {
        return Err(NotFetched::Origin(url.origin().ascii_serialization()));
    }
    Ok(url)
}

/// A fetched Medication as a collection entry: `fullUrl` its versioned URL
/// (`…/Medication/{id}/_history/{versionId}` when the resource says its
/// version, else the URL read), `search.mode = include`, the resource's
/// bytes as sent. Refuses a body that is not a Medication.
pub fn medication_entry(read_from: &Url, body: &[u8]) -> Result<Vec<u8>, String> {
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "versionId")]
        version_id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "resourceType")]
        resource_type: Option<String>,
        id: Option<String>,
        meta: Option<Meta>,
    }
    let raw: &RawValue = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the answer is not JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let head: Head = serde_json::from_str(raw.get())
        .map_err(|_| "the answer is not a FHIR resource".to_string())?;
    match head.resource_type.as_deref() {
        Some("Medication") => {}
        Some(other) => return Err(format!("the provider answered a {other}, not a Medication")),
        None => return Err("the answer has no resourceType".to_string()),
    }
    let mut full_url = read_from.clone();
    full_url.set_query(None);
    full_url.set_fragment(None);
    let version = head
        .meta
        .and_then(|m| m.version_id)
        .map(|v| v.trim().to_string())
        .filter(|v| {
            !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        });
    if let Some(version) = version
        && head.id.as_deref().map(str::trim).is_some_and(|id| {
            full_url
                .path()
                .trim_end_matches('/')
                .ends_with(&format!("/Medication/{id}"))
        })
    {
        let path = format!(
            "{}/_history/{version}",
            full_url.path().trim_end_matches('/')
        );
        full_url.set_path(&path);
    }
    let mut out = Vec::with_capacity(raw.get().len() + 96);
    out.extend_from_slice(b"{\"fullUrl\":");
    out.extend_from_slice(&json_string(full_url.as_str()));
    out.extend_from_slice(b",\"resource\":");
    out.extend_from_slice(raw.get().as_bytes());
    out.extend_from_slice(br#","search":{"mode":"include"}}"#);
    Ok(out)
}

/// A reference that was not fetched, as a collection entry: an
/// OperationOutcome whose `fullUrl` is the reference as written, so that
/// the parser finds it where the Medication would have been and reports
/// `reason` on the record.
pub fn note_entry(reference: &str, code: &str, reason: &str) -> Vec<u8> {
    let entry = serde_json::json!({
        "fullUrl": reference,
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "warning", "code": code, "diagnostics": reason}]
        },
        "search": {"mode": "outcome"}
    });
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// The stored document: one `collection` Bundle of the entries, in order.
pub fn collection(entries: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = entries.iter().map(Vec::len).sum();
    let mut bytes = Vec::with_capacity(total + entries.len() + 64);
    bytes.extend_from_slice(br#"{"resourceType":"Bundle","type":"collection","entry":["#);
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(e);
    }
    bytes.extend_from_slice(b"]}");
    bytes
}

fn json_string(s: &str) -> Vec<u8> {
    serde_json::to_vec(s).unwrap_or_else(|_| b"\"\"".to_vec())
}

/// `Type/id` of `Type/id`, `http://base/Type/id` or `…/Type/id/_history/2`.
fn type_and_id(reference: &str) -> Option<String> {
    split_type_and_id(reference).map(|(t, id)| format!("{t}/{id}"))
}

fn split_type_and_id(reference: &str) -> Option<(&str, &str)> {
    let reference = reference.trim();
    let path = reference.split("/_history/").next().unwrap_or(reference);
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let id = parts.next()?;
    let kind = parts.next()?;
    let is_type = kind.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && kind.chars().all(|c| c.is_ascii_alphanumeric());
    (is_type && !id.is_empty() && !reference.starts_with("urn:")).then_some((kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://ehr.example.org/fhir/r4").expect("url")
    }

    #[test]
    fn a_us_core_search_carries_its_parameters_and_include_when_asked() {
        let s = SearchSettings::default();
        let url = search_url(&base(), "MedicationRequest", "p1", &s, true);
        assert_eq!(
            url.as_str(),
            "https://ehr.example.org/fhir/r4/MedicationRequest?patient=p1&intent=order%2Cplan&_include=MedicationRequest%3Amedication"
        );
        let url = search_url(&base(), "MedicationDispense", "p1", &s, false);
        assert_eq!(
            url.as_str(),
            "https://ehr.example.org/fhir/r4/MedicationDispense?patient=p1"
        );
    }

    #[test]
    fn capabilities_read_search_includes_per_resource_and_nothing_else() {
        let statement = br#"{"resourceType":"CapabilityStatement","rest":[{"resource":[
            {"type":"MedicationRequest","searchInclude":["MedicationRequest:medication"]},
            {"type":"MedicationStatement"}]}]}"#;
        let caps = Capabilities::parse(statement);
        assert!(caps.supports("MedicationRequest", "MedicationRequest:medication"));
        assert!(!caps.supports("MedicationStatement", "MedicationStatement:medication"));
        for nothing in [
            &b"<html>login</html>"[..],
            br#"{"resourceType":"OperationOutcome"}"#,
            br#"{"resourceType":"CapabilityStatement","rest":"x"}"#,
        ] {
            assert_eq!(Capabilities::parse(nothing), Capabilities::default());
        }
    }

    #[tokio::test]
    async fn the_capability_cache_reads_once() {
        let cache = CapabilityCache::default();
        let reads = std::sync::atomic::AtomicU32::new(0);
        for _ in 0..3 {
            cache
                .get_or_read(|| async {
                    reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    None
                })
                .await;
        }
        assert_eq!(reads.into_inner(), 1, "a failed read is remembered too");
    }

    #[test]
    fn missing_medications_are_the_references_no_entry_answers_each_once() {
        let entries: Vec<Vec<u8>> = [
            r#"{"fullUrl":"https://ehr.example.org/fhir/r4/MedicationRequest/1","resource":{"resourceType":"MedicationRequest","id":"1","medicationReference":{"reference":"Medication/a"}}}"#,
            r#"{"resource":{"resourceType":"MedicationRequest","id":"2","medicationReference":{"reference":"Medication/a"}}}"#,
            r#"{"resource":{"resourceType":"MedicationStatement","id":"3","medicationReference":{"reference":"https://ehr.example.org/fhir/r4/Medication/b"}}}"#,
            r##"{"resource":{"resourceType":"MedicationRequest","id":"4","medicationReference":{"reference":"#contained"}}}"##,
            r#"{"resource":{"resourceType":"MedicationDispense","id":"5","medication":{"reference":{"reference":"Medication/c"}}}}"#,
            r#"{"fullUrl":"https://ehr.example.org/fhir/r4/Medication/c/_history/2","resource":{"resourceType":"Medication","id":"c"},"search":{"mode":"include"}}"#,
        ]
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect();
        assert_eq!(
            missing_medications(&entries),
            [
                "Medication/a",
                "https://ehr.example.org/fhir/r4/Medication/b"
            ]
        );
    }

    #[test]
    fn only_medications_at_the_providers_origins_are_read() {
        let trusted = [base().origin()];
        let rows: &[(&str, Result<&str, &str>)] = &[
            (
                "Medication/a",
                Ok("https://ehr.example.org/fhir/r4/Medication/a"),
            ),
            (
                "https://ehr.example.org/fhir/r4/Medication/b/_history/3",
                Ok("https://ehr.example.org/fhir/r4/Medication/b/_history/3"),
            ),
            ("https://other.example.com/fhir/Medication/c", Err("origin")),
            (
                "http://ehr.example.org/fhir/r4/Medication/d",
                Err("https down"),
            ),
            ("Patient/p1", Err("Medication")),
        ];
        for (reference, want) in rows {
            let got = reference_url(&base(), reference, &trusted);
            match (want, got) {
                (Ok(u), Ok(g)) => assert_eq!(g.as_str(), *u, "{reference}"),
                (Err(w), Err(g)) => assert!(g.to_string().contains(w), "{reference}: {g}"),
                (w, g) => panic!("{reference}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn a_fetched_medication_is_an_include_entry_under_its_versioned_url() {
        let read = Url::parse("https://ehr.example.org/fhir/r4/Medication/a").expect("url");
        let body = br#"{"resourceType":"Medication","id":"a","meta":{"versionId":"7"},"code":{"text":"x"}}"#;
        let entry = medication_entry(&read, body).expect("a Medication");
        let v: serde_json::Value = serde_json::from_slice(&entry).expect("json");
        assert_eq!(
            v["fullUrl"],
            "https://ehr.example.org/fhir/r4/Medication/a/_history/7"
        );
        assert_eq!(v["search"]["mode"], "include");
        assert!(
            String::from_utf8_lossy(&entry).contains(std::str::from_utf8(body).expect("utf8")),
            "the resource's bytes as sent"
        );
        let err = medication_entry(&read, br#"{"resourceType":"Patient"}"#).expect_err("no");
        assert!(err.contains("Patient"), "{err}");
        let doc = collection(&[entry, note_entry("Medication/z", "not-found", "gone")]);
        let v: serde_json::Value = serde_json::from_slice(&doc).expect("json");
        assert_eq!(v["entry"][1]["fullUrl"], "Medication/z");
        assert_eq!(
            v["entry"][1]["resource"]["resourceType"],
            "OperationOutcome"
        );
    }
}
