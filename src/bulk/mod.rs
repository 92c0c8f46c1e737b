//! FHIR Bulk Data (`$export`) imports: NDJSON files, one resource per line,
//! many patients per file, each patient's records spread over the files of
//! several resource types.
//!
//! A run streams each file line by line (gzip or not) and files every line
//! under its patient in the store's staging table (`store::bulk`), reading
//! from a line only its type, id, patient and drug reference; nothing of the
//! export is held in memory but one line and one batch of staged lines.
//! Then, patient by patient, it gathers that patient's lines and the
//! Medications they reference into one FHIR `collection` Bundle and hands it
//! to `import::import` (source = the provider, trigger `bulk`): regimen,
//! exceptions, idempotence and audit are those of any document, in one
//! transaction per patient. A remote patient is the local patient of a link
//! at the provider with that remote id, or (`[providers.bulk] match =
//! "mrn"`) of the MRN among the export's Patient identifiers; any other is
//! counted as unknown and nothing of it is stored. The staging rows of a run
//! are deleted when it ends.
//!
//! A bad line is never dropped silently: it is reported with its file and
//! line; a JSON object without `resourceType` that names its patient goes
//! into that patient's Bundle, where the FHIR reader makes it an
//! `unreadable_record`; a line no patient can be named for is also written
//! to the audit. A file that cannot be read to its end stops the run before
//! any patient is imported (a patient's records may be in the rest of it).
//!
//! This module holds no SQL and prints nothing.

mod bundle;
mod file;
mod line;
mod source;

pub use bundle::collection;
pub use file::{OnePatient, OnePatientError, is_ndjson_name, one_patient};
pub use line::{Head, id_of};

use crate::config::BulkMatch;
use crate::domain::{PatientId, SourceName, Trigger};
use crate::import::{self, ImportError, ImportRequest};
use crate::normalize::Options;
use crate::parse::DocFormat;
use crate::store::{BadLine, ImportOutcome, StagedLine, Store, StoreError, SyncContext};
use serde::Serialize;
use source::{Line, Lines};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// What to import and how.
pub struct BulkRequest<'a> {
    /// The NDJSON files (`.ndjson`, gzip or not), in any order: they are
    /// read in path order, so the same export gives the same documents.
    pub files: &'a [PathBuf],
    /// The provider the export comes from: its links name the patients, and
    /// it is the source regimens are versioned under.
    pub provider: &'a SourceName,
    pub matching: BulkMatch,
    /// Who asked.
    pub actor: &'a str,
    /// The largest line, and the largest patient Bundle, accepted.
    pub max_document_bytes: u64,
    pub options: &'a Options,
}

/// Why a run imported nothing.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// A file could not be opened or read to its end (a broken gzip stream, say).
    #[error("{file}:{line}: cannot read: {source}")]
    Read {
        file: String,
        line: u64,
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a run did, for people and scripts.
#[derive(Debug, Default, Serialize)]
pub struct BulkReport {
    /// The run's staging key (also in the audit rows of its bad lines).
    pub run: String,
    pub provider: String,
    pub files: Vec<FileReport>,
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Resources filed under a patient or shared (Medications).
    pub resources: u64,
    pub blank_lines: u64,
    /// Resources of types rxsync does not read (Observation, …), by type.
    pub ignored: BTreeMap<String, u64>,
    pub patients: PatientCounts,
    /// The first `SHOWN` unknown remote patients, each with why.
    pub unknown_patients: Vec<String>,
    pub failures: Vec<PatientFailure>,
    /// Every bad line (up to `SHOWN`), with file and line.
    pub bad_lines: Vec<BadLineReport>,
    pub bad_line_count: u64,
    /// Records of imported patients the FHIR reader could not read (each an
    /// `unreadable_record` exception).
    pub unreadable_records: u64,
}

/// How many unknown patients, failures and bad lines a report lists (it
/// counts them all).
pub const SHOWN: usize = 100;

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub path: String,
    pub gzip: bool,
    pub lines: u64,
    pub bytes: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct PatientCounts {
    /// A new regimen version was written.
    pub imported: u64,
    /// The same Bundle was imported before: no new version.
    pub unchanged: u64,
    /// No local patient: nothing stored.
    pub unknown: u64,
    /// The import failed: nothing stored for that patient.
    pub failed: u64,
    /// Of imported and unchanged, matched by MRN rather than by a link.
    pub matched_by_mrn: u64,
}

#[derive(Debug, Serialize)]
pub struct PatientFailure {
    pub remote_patient: String,
    pub patient: String,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct BadLineReport {
    pub file: String,
    pub line: u64,
    pub reason: String,
    /// The remote patient it was filed under (its import then carries an
    /// `unreadable_record`); None: audited as `bulk.bad_line`.
    pub patient: Option<String>,
}

impl BulkReport {
    /// Every line read and every known patient imported (or unchanged).
    pub fn complete(&self) -> bool {
        self.bad_line_count == 0 && self.patients.failed == 0
    }

    fn bad(&mut self, file: &str, line: u64, reason: String, patient: Option<String>) {
        self.bad_line_count += 1;
        if self.bad_lines.len() < SHOWN {
            self.bad_lines.push(BadLineReport {
                file: file.to_string(),
                line,
                reason,
                patient,
            });
        }
    }
}

/// Staged lines are written in batches of about this many bytes.
const BATCH_BYTES: usize = 4 << 20;
const BATCH_LINES: usize = 4096;
/// Patients are listed from the staging table this many at a time.
const PAGE: usize = 512;

/// Imports an export. The staging rows are deleted whatever happens.
pub fn run(store: &mut Store, req: &BulkRequest<'_>) -> Result<BulkReport, BulkError> {
    let run = format!(
        "{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        rand::random::<u32>()
    );
    let mut report = BulkReport {
        run: run.clone(),
        provider: req.provider.to_string(),
        ..BulkReport::default()
    };
    let result = stage(store, req, &run, &mut report)
        .and_then(|()| import_patients(store, req, &run, &mut report));
    let cleared = store.bulk_clear(&run);
    result?;
    cleared?;
    Ok(report)
}

/// Lines waiting to be written.
#[derive(Default)]
struct Batch {
    lines: Vec<StagedLine>,
    unplaced: Vec<BadLine>,
    bytes: usize,
}

impl Batch {
    fn flush(&mut self, store: &mut Store, run: &str, actor: &str) -> Result<(), StoreError> {
        if self.lines.is_empty() && self.unplaced.is_empty() {
            return Ok(());
        }
        store.bulk_stage(run, &self.lines, &self.unplaced, actor)?;
        self.lines.clear();
        self.unplaced.clear();
        self.bytes = 0;
        Ok(())
    }
}

fn stage(
    store: &mut Store,
    req: &BulkRequest<'_>,
    run: &str,
    report: &mut BulkReport,
) -> Result<(), BulkError> {
    let mut files: Vec<&PathBuf> = req.files.iter().collect();
    files.sort();
    files.dedup();
    let limit = usize::try_from(req.max_document_bytes).unwrap_or(usize::MAX);
    let mut batch = Batch::default();
    let mut buf = Vec::new();
    for (n, path) in files.into_iter().enumerate() {
        let name = path.display().to_string();
        let mut lines = Lines::open(path, limit).map_err(|source| BulkError::Read {
            file: name.clone(),
            line: 0,
            source,
        })?;
        loop {
            let line = match lines.next(&mut buf) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(source) => {
                    return Err(BulkError::Read {
                        file: name,
                        line: lines.number + 1,
                        source,
                    });
                }
            };
            report.lines += 1;
            let at = lines.number;
            let text = match line {
                Line::TooLong => {
                    let reason = format!(
                        "the line is longer than import.max_document_bytes = {}",
                        req.max_document_bytes
                    );
                    unplaced(report, &mut batch, &name, at, reason);
                    continue;
                }
                Line::Text(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(e) => {
                        let reason = format!("not UTF-8 text (at byte {})", e.valid_up_to());
                        unplaced(report, &mut batch, &name, at, reason);
                        continue;
                    }
                },
            };
            if text.trim().is_empty() {
                report.blank_lines += 1;
                continue;
            }
            file_line(report, &mut batch, &name, n as i64, at, text);
            if batch.bytes >= BATCH_BYTES || batch.lines.len() >= BATCH_LINES {
                batch.flush(store, run, req.actor)?;
            }
        }
        report.bytes += lines.bytes;
        report.files.push(FileReport {
            path: name,
            gzip: lines.gzip,
            lines: lines.number,
            bytes: lines.bytes,
        });
    }
    batch.flush(store, run, req.actor)?;
    Ok(())
}

/// A bad line no patient can be named for: reported and audited.
fn unplaced(report: &mut BulkReport, batch: &mut Batch, file: &str, line: u64, reason: String) {
    batch.unplaced.push(BadLine {
        file: file.to_string(),
        line,
        reason: reason.clone(),
    });
    report.bad(file, line, reason, None);
}

/// Files one non-blank line: under its patient, as a shared Medication, as
/// ignored, or as a bad line.
fn file_line(
    report: &mut BulkReport,
    batch: &mut Batch,
    name: &str,
    file: i64,
    at: u64,
    text: &str,
) {
    let head = match line::read(text) {
        Ok(head) => head,
        Err(reason) => return unplaced(report, batch, name, at, reason),
    };
    let patient_ref = match head.kind.as_deref() {
        None => match &head.patient {
            Some(p) => {
                report.bad(
                    name,
                    at,
                    "the resource has no resourceType".into(),
                    Some(p.clone()),
                );
                p.clone()
            }
            None => {
                let reason = "the resource has no resourceType and names no patient".into();
                return unplaced(report, batch, name, at, reason);
            }
        },
        Some(kind) if !line::READ.contains(&kind) => {
            *report.ignored.entry(kind.to_string()).or_default() += 1;
            return;
        }
        Some("Medication") => {
            if head.id.is_none() {
                let reason = "a Medication without an id: no record can reference it".into();
                return unplaced(report, batch, name, at, reason);
            }
            String::new()
        }
        Some(kind) => match &head.patient {
            Some(p) => p.clone(),
            None => {
                let reason = if kind == "Patient" {
                    "a Patient without an id".to_string()
                } else {
                    format!(
                        "a {kind} that names no patient (no subject, patient or beneficiary reference to Patient/id)"
                    )
                };
                return unplaced(report, batch, name, at, reason);
            }
        },
    };
    report.resources += 1;
    batch.bytes += text.len();
    batch.lines.push(StagedLine {
        patient_ref,
        file,
        line: at as i64,
        kind: head.kind,
        resource_id: head.id,
        medication: head.medication,
        body: text.to_string(),
    });
}

fn import_patients(
    store: &mut Store,
    req: &BulkRequest<'_>,
    run: &str,
    report: &mut BulkReport,
) -> Result<(), BulkError> {
    let origin = format!("bulk export, run {run}");
    let mut after = String::new();
    loop {
        let page = store.bulk_patients_after(run, &after, PAGE)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.clone();
        for remote in &page {
            import_one(store, req, run, remote, &origin, report)?;
        }
    }
    Ok(())
}

/// How a remote patient was matched, or why not.
enum Match {
    Link(String),
    Mrn(String),
    Unknown(String),
}

fn import_one(
    store: &mut Store,
    req: &BulkRequest<'_>,
    run: &str,
    remote: &str,
    origin: &str,
    report: &mut BulkReport,
) -> Result<(), BulkError> {
    let (local, by_mrn) = match find_patient(store, req, run, remote)? {
        Match::Link(p) => (p, false),
        Match::Mrn(p) => (p, true),
        Match::Unknown(why) => {
            report.patients.unknown += 1;
            if report.unknown_patients.len() < SHOWN {
                report.unknown_patients.push(format!("{remote} ({why})"));
            }
            return Ok(());
        }
    };
    let fail = |report: &mut BulkReport, error: String| {
        report.patients.failed += 1;
        if report.failures.len() < SHOWN {
            report.failures.push(PatientFailure {
                remote_patient: remote.to_string(),
                patient: local.clone(),
                error,
            });
        }
    };
    let Ok(patient) = PatientId::parse(&local) else {
        fail(
            report,
            format!("the local patient id {local:?} is not valid"),
        );
        return Ok(());
    };
    let rows = store.bulk_lines(run, remote)?;
    let drugs: BTreeSet<&str> = rows.iter().filter_map(|(m, _)| m.as_deref()).collect();
    let mut medications = Vec::new();
    for id in drugs {
        if let Some(body) = store.bulk_medication(run, id)? {
            medications.push(body);
        }
    }
    let mut resources: Vec<&str> = rows.iter().map(|(_, b)| b.as_str()).collect();
    resources.extend(medications.iter().map(String::as_str));
    let bytes = collection(&resources);
    let sync = SyncContext {
        patient,
        source: req.provider.clone(),
        trigger: Trigger::Bulk,
        actor: req.actor.to_string(),
        started_at: chrono::Utc::now(),
        origin: Some(origin.to_string()),
        pull: None,
    };
    let request = ImportRequest {
        sync: &sync,
        bytes: &bytes,
        format: Some(DocFormat::FhirJson),
        keep_unreadable: false,
        max_document_bytes: req.max_document_bytes,
        options: req.options,
        expected_patient: None,
    };
    match import::import(store, &request) {
        Ok(r) => {
            report.unreadable_records += r.unreadable_records() as u64;
            match r.outcome {
                ImportOutcome::Imported { .. } => report.patients.imported += 1,
                ImportOutcome::Unchanged { .. } => report.patients.unchanged += 1,
                ImportOutcome::Unreadable { .. } => {
                    fail(report, "unreadable".into());
                    return Ok(());
                }
            }
            if by_mrn {
                report.patients.matched_by_mrn += 1;
            }
        }
        Err(ImportError::Store(e)) => return Err(e.into()),
        Err(e) => fail(report, e.to_string()),
    }
    Ok(())
}

fn find_patient(
    store: &Store,
    req: &BulkRequest<'_>,
    run: &str,
    remote: &str,
) -> Result<Match, StoreError> {
    if let Some((patient, _state)) = store.linked_patient(req.provider.as_str(), remote)? {
        return Ok(Match::Link(patient));
    }
    if req.matching != BulkMatch::Mrn {
        return Ok(Match::Unknown("no link at the provider".into()));
    }
    let Some(body) = store.bulk_patient_resource(run, remote)? else {
        return Ok(Match::Unknown(
            "no link, and no Patient resource in the export to match by MRN".into(),
        ));
    };
    let mut found = BTreeSet::new();
    for value in identifier_values(&body) {
        found.extend(store.patients_with_mrn(&value)?);
    }
    Ok(match found.len() {
        1 => Match::Mrn(found.into_iter().next().unwrap_or_default()),
        0 => Match::Unknown("no link, and no identifier is a local MRN".into()),
        n => Match::Unknown(format!(
            "its identifiers are the MRNs of {n} local patients"
        )),
    })
}

/// Every `identifier[].value` of a Patient resource (none when it cannot be read).
fn identifier_values(body: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct P {
        #[serde(default)]
        identifier: Vec<I>,
    }
    #[derive(serde::Deserialize)]
    struct I {
        value: Option<String>,
    }
    serde_json::from_str::<P>(body)
        .map(|p| {
            p.identifier
                .into_iter()
                .filter_map(|i| i.value.map(|v| v.trim().to_string()))
                .filter(|v| !v.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
