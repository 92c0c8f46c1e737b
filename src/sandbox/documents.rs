//! A patient's documents: from the data directory when it has them
//! (`ccr/{patient}.xml` and `ccda/{patient}.xml` served as they are,
//! `fhir/{patient}.json` a Bundle whose entries are served by resource
//! type), else generated. Built once per
//! patient and cached, since the benchmark asks for a thousand of them.
//! Also the FHIR searchset paging.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::generate::{self, RemotePatient};

/// The FHIR types a search may ask for.
// The variants are the FHIR resource type names, prefix and all.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SearchType {
    MedicationRequest,
    MedicationStatement,
    MedicationDispense,
    /// Claims (Blue Button style): only a data directory's are served.
    ExplanationOfBenefit,
}

impl SearchType {
    pub const ALL: [SearchType; 4] = [
        SearchType::MedicationRequest,
        SearchType::MedicationStatement,
        SearchType::MedicationDispense,
        SearchType::ExplanationOfBenefit,
    ];

    pub fn parse(name: &str) -> Option<SearchType> {
        SearchType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SearchType::MedicationRequest => "MedicationRequest",
            SearchType::MedicationStatement => "MedicationStatement",
            SearchType::MedicationDispense => "MedicationDispense",
            SearchType::ExplanationOfBenefit => "ExplanationOfBenefit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One resource to serve in a Bundle entry.
#[derive(Debug)]
pub(crate) struct FhirEntry {
    pub resource_type: String,
    pub id: Option<String>,
    /// The entry's `fullUrl` from a data-directory Bundle; generated
    /// entries get theirs from the base URL when served.
    pub full_url: Option<String>,
    /// The id of the Medication this entry references (reference mode).
    pub drug: Option<String>,
    pub resource: Box<RawValue>,
}

/// Everything one patient's requests are answered from.
#[derive(Debug)]
pub(crate) struct PatientDocs {
    pub ccr: Arc<[u8]>,
    /// The C-CDA R2.1 CCD (`/ccda/{patient}`), for `document_url` providers.
    pub ccda: Arc<[u8]>,
    /// Matches, by `SearchType::index`.
    pub matches: [Vec<FhirEntry>; 4],
    /// Other resources of a data-directory Bundle (Medications, the
    /// Patient): added to every page as `search.mode = include`, so that
    /// references from the matches resolve.
    pub included: Vec<FhirEntry>,
    /// Medications the matches reference (reference mode): read at
    /// `Medication/{id}`, and added to a page only for `_include`.
    pub medications: Vec<FhirEntry>,
}

impl PatientDocs {
    pub fn matches(&self, t: SearchType) -> &[FhirEntry] {
        &self.matches[t.index()]
    }

    /// A referenced Medication by id.
    pub fn medication(&self, id: &str) -> Option<&FhirEntry> {
        self.medications
            .iter()
            .find(|m| m.id.as_deref() == Some(id))
    }
}

/// Why a patient's documents could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DocError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a FHIR JSON Bundle: {message}")]
    NotBundle { path: PathBuf, message: String },
}

/// Builds `patient`'s documents (does file I/O when `data_dir` is given).
pub(crate) fn build(
    patient: &RemotePatient,
    medications: usize,
    data_dir: Option<&Path>,
    by_reference: bool,
) -> Result<PatientDocs, DocError> {
    let read = |sub: &str, ext: &str| -> Result<Option<(PathBuf, Vec<u8>)>, DocError> {
        let Some(dir) = data_dir else {
            return Ok(None);
        };
        let path = dir.join(sub).join(format!("{}.{ext}", patient.as_str()));
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some((path, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DocError::Read { path, source }),
        }
    };
    let ccr_file = read("ccr", "xml")?;
    let ccda_file = read("ccda", "xml")?;
    let fhir_file = read("fhir", "json")?;
    let meds = if ccr_file.is_none() || ccda_file.is_none() || fhir_file.is_none() {
        generate::medications(patient, medications)
    } else {
        Vec::new()
    };
    let ccr: Arc<[u8]> = match ccr_file {
        Some((_, bytes)) => bytes.into(),
        None => generate::ccr(patient, &meds).into_bytes().into(),
    };
    let ccda: Arc<[u8]> = match ccda_file {
        Some((_, bytes)) => bytes.into(),
        None => generate::ccda(patient, &meds).into_bytes().into(),
    };
    let mut docs = PatientDocs {
        ccr,
        ccda,
        matches: [Vec::new(), Vec::new(), Vec::new(), Vec::new()],
        included: Vec::new(),
        medications: Vec::new(),
    };
    match fhir_file {
        Some((path, bytes)) => split_bundle(&path, &bytes, &mut docs)?,
        None if by_reference => by_reference_docs(patient, &meds, &mut docs),
        None => {
            for med in &meds {
                let resource = generate::medication_request(patient, med);
                docs.matches[SearchType::MedicationRequest.index()].push(FhirEntry {
                    resource_type: SearchType::MedicationRequest.as_str().to_string(),
                    id: Some(med.id.clone()),
                    full_url: None,
                    drug: None,
                    resource: to_raw(&resource),
                });
            }
        }
    }
    Ok(docs)
}

/// Reference mode: every request names its drug by `medicationReference`
/// only, and the first drug is also named by a MedicationStatement (so one
/// Medication is referenced twice).
fn by_reference_docs(patient: &RemotePatient, meds: &[generate::Med], docs: &mut PatientDocs) {
    let entry = |t: SearchType, id: String, drug: String, v: &Value| FhirEntry {
        resource_type: t.as_str().to_string(),
        id: Some(id),
        full_url: None,
        drug: Some(drug),
        resource: to_raw(v),
    };
    for med in meds {
        let drug = generate::medication_id(med);
        let request = generate::medication_request_by_reference(patient, med);
        docs.matches[SearchType::MedicationRequest.index()].push(entry(
            SearchType::MedicationRequest,
            med.id.clone(),
            drug.clone(),
            &request,
        ));
        docs.medications.push(FhirEntry {
            resource_type: "Medication".to_string(),
            id: Some(drug),
            full_url: None,
            drug: None,
            resource: to_raw(&generate::medication(patient, med)),
        });
    }
    if let Some(med) = meds.first() {
        let statement = generate::medication_statement_by_reference(patient, med);
        docs.matches[SearchType::MedicationStatement.index()].push(entry(
            SearchType::MedicationStatement,
            format!("{}-statement", med.id),
            generate::medication_id(med),
            &statement,
        ));
    }
}

fn to_raw(value: &Value) -> Box<RawValue> {
    // Serializing a `Value` cannot fail (its keys are strings), and its
    // output is valid JSON; the fallback is never taken.
    serde_json::value::to_raw_value(value)
        .unwrap_or_else(|_| RawValue::from_string("null".to_string()).unwrap_or_default())
}

/// Sorts a data-directory Bundle's entries (or a single resource) into
/// matches by type and included resources.
fn split_bundle(path: &Path, bytes: &[u8], docs: &mut PatientDocs) -> Result<(), DocError> {
    let not_bundle = |message: String| DocError::NotBundle {
        path: path.to_path_buf(),
        message,
    };
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| not_bundle(e.to_string()))?;
    let entries: Vec<(Option<String>, Value)> =
        match doc.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => doc
                .get("entry")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|e| {
                            let full_url =
                                e.get("fullUrl").and_then(Value::as_str).map(str::to_string);
                            Some((full_url, e.get("resource")?.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(_) => vec![(None, doc)],
            None => return Err(not_bundle("no resourceType".to_string())),
        };
    for (full_url, resource) in entries {
        let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
            continue;
        };
        let entry = FhirEntry {
            resource_type: resource_type.to_string(),
            id: resource
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string),
            full_url,
            drug: None,
            resource: to_raw(&resource),
        };
        match SearchType::parse(resource_type) {
            Some(t) => docs.matches[t.index()].push(entry),
            None => docs.included.push(entry),
        }
    }
    Ok(())
}

/// Built documents by patient. Bounded: past `capacity` patients the cache
/// starts over (documents are deterministic, so nothing is lost but time).
#[derive(Debug)]
pub(crate) struct DocCache {
    map: Mutex<HashMap<RemotePatient, Arc<PatientDocs>>>,
    capacity: usize,
}

impl DocCache {
    pub fn new(capacity: usize) -> DocCache {
        DocCache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn get(&self, patient: &RemotePatient) -> Option<Arc<PatientDocs>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(patient)
            .cloned()
    }

    pub fn insert(&self, patient: RemotePatient, docs: Arc<PatientDocs>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(patient, docs);
    }
}

/// One page of a searchset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageSpec {
    /// Entries per page; 0 asks for the total only.
    pub count: usize,
    /// 1-based.
    pub page: usize,
}

/// A searchset Bundle page. `link_base` is the search URL without `_count`
/// and `_page` (ending in `?` or `&` ready for more parameters);
/// `resource_base` is what generated entries' `fullUrl`s start with
/// (`{base}/fhir`).
pub(crate) fn searchset(
    docs: &PatientDocs,
    t: SearchType,
    spec: PageSpec,
    link_base: &str,
    resource_base: &str,
    include: bool,
) -> Vec<u8> {
    let all = docs.matches(t);
    let start = spec.count.saturating_mul(spec.page.saturating_sub(1));
    let page: &[FhirEntry] = if spec.count == 0 || start >= all.len() {
        &[]
    } else {
        &all[start..(start + spec.count).min(all.len())]
    };
    let has_next = spec.count > 0 && start.saturating_add(spec.count) < all.len();
    let link_for = |page: usize| format!("{link_base}_count={}&_page={page}", spec.count);
    let mut link = vec![Link {
        relation: "self",
        url: link_for(spec.page),
    }];
    if has_next {
        link.push(Link {
            relation: "next",
            url: link_for(spec.page + 1),
        });
    }
    let mut entry: Vec<EntryOut<'_>> = page
        .iter()
        .map(|e| entry_of(e, "match", resource_base))
        .collect();
    if !page.is_empty() {
        entry.extend(
            docs.included
                .iter()
                .map(|e| entry_of(e, "include", resource_base)),
        );
    }
    if include {
        // `_include=…:medication`: each Medication this page's matches name, once.
        let mut named: Vec<&str> = Vec::new();
        for d in page.iter().filter_map(|e| e.drug.as_deref()) {
            if !named.contains(&d) {
                named.push(d);
            }
        }
        entry.extend(
            named
                .into_iter()
                .filter_map(|id| docs.medication(id))
                .map(|e| entry_of(e, "include", resource_base)),
        );
    }
    let bundle = BundleOut {
        resource_type: "Bundle",
        kind: "searchset",
        total: all.len(),
        link,
        entry,
    };
    serde_json::to_vec(&bundle).unwrap_or_default()
}

fn entry_of<'a>(e: &'a FhirEntry, mode: &'static str, resource_base: &str) -> EntryOut<'a> {
    let full_url = e.full_url.clone().or_else(|| {
        e.id.as_ref()
            .map(|id| format!("{resource_base}/{}/{id}", e.resource_type))
    });
    EntryOut {
        full_url,
        resource: &e.resource,
        search: SearchOut { mode },
    }
}

#[derive(Serialize)]
struct BundleOut<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    total: usize,
    link: Vec<Link>,
    // FHIR forbids empty arrays.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entry: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct Link {
    relation: &'static str,
    url: String,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    #[serde(rename = "fullUrl", skip_serializing_if = "Option::is_none")]
    full_url: Option<String>,
    resource: &'a RawValue,
    search: SearchOut,
}

#[derive(Serialize)]
struct SearchOut {
    mode: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{DocFormat, parse};

    fn patient(id: &str) -> RemotePatient {
        RemotePatient::parse(id).expect("valid id")
    }

    fn page_json(docs: &PatientDocs, count: usize, page: usize) -> Value {
        let bytes = searchset(
            docs,
            SearchType::MedicationRequest,
            PageSpec { count, page },
            "http://h/fhir/MedicationRequest?patient=p&",
            "http://h/fhir",
            false,
        );
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[test]
    fn pages_chain_through_every_entry_and_each_page_parses() {
        let docs = build(&patient("p"), 23, None, false).expect("generated");
        let mut ids = Vec::new();
        for page in 1..=3 {
            let json = page_json(&docs, 10, page);
            assert_eq!(json["total"], 23);
            let links = json["link"].as_array().expect("links");
            let next = links.iter().find(|l| l["relation"] == "next");
            assert_eq!(next.is_some(), page < 3, "page {page}");
            if let Some(next) = next {
                assert_eq!(
                    next["url"],
                    format!(
                        "http://h/fhir/MedicationRequest?patient=p&_count=10&_page={}",
                        page + 1
                    )
                );
            }
            let bytes = serde_json::to_vec(&json).expect("bytes");
            let doc = parse(&bytes, DocFormat::FhirJson).expect("page parses");
            ids.extend(
                doc.records
                    .iter()
                    .filter_map(|r| r.source.as_ref()?.id.clone()),
            );
        }
        let want: Vec<String> = docs
            .matches(SearchType::MedicationRequest)
            .iter()
            .filter_map(|e| e.id.clone())
            .collect();
        assert_eq!(ids, want);
        assert!(page_json(&docs, 10, 4).get("entry").is_none());
        assert!(page_json(&docs, 0, 1).get("entry").is_none());
    }

    #[test]
    fn a_data_directory_overrides_documents_per_patient() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("ccr")).expect("ccr dir");
        std::fs::create_dir_all(dir.path().join("fhir")).expect("fhir dir");
        std::fs::create_dir_all(dir.path().join("ccda")).expect("ccda dir");
        std::fs::write(dir.path().join("ccr/own.xml"), b"<exact bytes/>").expect("write");
        std::fs::write(dir.path().join("ccda/own.xml"), b"<ccda bytes/>").expect("write");
        let bundle = serde_json::json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [
                {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Medication", "id": "m1"}},
                {"resource": {"resourceType": "MedicationStatement", "id": "s1"}},
                {"resource": {"resourceType": "MedicationDispense", "id": "d1"}},
                {"resource": {"resourceType": "MedicationDispense", "id": "d2"}}
            ]
        });
        std::fs::write(dir.path().join("fhir/own.json"), bundle.to_string()).expect("write");
        let docs = build(&patient("own"), 20, Some(dir.path()), false).expect("built");
        assert_eq!(&*docs.ccr, b"<exact bytes/>");
        assert_eq!(&*docs.ccda, b"<ccda bytes/>");
        assert!(docs.matches(SearchType::MedicationRequest).is_empty());
        assert_eq!(docs.matches(SearchType::MedicationDispense).len(), 2);
        assert_eq!(docs.included.len(), 1);
        // Another patient of the same directory is generated.
        let other = build(&patient("other"), 20, Some(dir.path()), false).expect("built");
        assert_eq!(other.matches(SearchType::MedicationRequest).len(), 20);
        assert!(other.ccda.starts_with(b"<?xml"), "a generated C-CDA");

        std::fs::write(dir.path().join("fhir/bad.json"), b"{not json").expect("write");
        let err = build(&patient("bad"), 20, Some(dir.path()), false).expect_err("refused");
        assert!(err.to_string().contains("bad.json"), "{err}");
    }
}
