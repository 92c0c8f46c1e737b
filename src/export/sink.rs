//! The seam between an export and the importer: `ExportSink` takes the
//! export's downloaded output files together (a patient's resources are
//! spread over the files of several types, so they are imported as one
//! bulk run, never file by file). `BulkSink` is the NDJSON bulk importer
//! (`src/bulk/`); `AwaitingBulkImport` reads, counts and imports nothing (an
//! operator may import later with `rxsync import --bulk`). Error files are
//! read here too, for the issues they report.

use crate::bulk::{BulkRequest, run as bulk_run};
use crate::config::{BulkMatch, Provider};
use crate::domain::SourceName;
use crate::normalize::Options;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

/// What an importer did with one downloaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Imported: never handed over again. The note says what it did.
    Imported(String),
    /// Kept for a later import; handed over again by the next resume.
    Deferred(String),
}

/// The importer an export hands its downloaded output files to.
pub trait ExportSink: Send {
    /// One outcome per file, in order; an error leaves every file to be
    /// handed over again by the next resume.
    fn import_files(
        &mut self,
        provider: &str,
        paths: &[PathBuf],
    ) -> Result<Vec<FileOutcome>, String>;
}

/// Imports an export's files with the NDJSON bulk importer: one bulk run
/// over all of them (each known patient one regimen version, in its own
/// transaction), on a connection of its own.
pub struct BulkSink {
    database: crate::store::Database,
    source: SourceName,
    matching: BulkMatch,
    max_document_bytes: u64,
    options: Options,
}

impl BulkSink {
    pub fn new(
        database: &crate::store::Database,
        provider: &Provider,
        options: Options,
    ) -> BulkSink {
        BulkSink {
            database: database.clone(),
            source: provider.id.as_source(),
            matching: provider.bulk_match,
            max_document_bytes: provider.limits.max_document_bytes,
            options,
        }
    }
}

impl ExportSink for BulkSink {
    fn import_files(
        &mut self,
        _provider: &str,
        paths: &[PathBuf],
    ) -> Result<Vec<FileOutcome>, String> {
        let mut store = crate::store::Store::connect(&self.database).map_err(|e| e.to_string())?;
        let report = bulk_run(
            &mut store,
            &BulkRequest {
                files: paths,
                provider: &self.source,
                matching: self.matching,
                actor: "export",
                max_document_bytes: self.max_document_bytes,
                options: &self.options,
            },
        )
        .map_err(|e| e.to_string())?;
        let p = &report.patients;
        let note = format!(
            "imported with the other {} file(s) of the export: {} patient(s) imported, {} unchanged, {} unknown, {} failed; {} bad line(s), {} unreadable record(s)",
            paths.len().saturating_sub(1),
            p.imported,
            p.unchanged,
            p.unknown,
            p.failed,
            report.bad_line_count,
            report.unreadable_records
        );
        Ok(paths
            .iter()
            .map(|_| FileOutcome::Imported(note.clone()))
            .collect())
    }
}

/// The sink used until the NDJSON bulk importer (`src/bulk/`) is wired in:
/// it reads each file's lines (counting resources and the patients they
/// name), imports nothing, and says the file awaits `rxsync import --bulk`.
pub struct AwaitingBulkImport;

impl ExportSink for AwaitingBulkImport {
    fn import_files(
        &mut self,
        _provider: &str,
        paths: &[PathBuf],
    ) -> Result<Vec<FileOutcome>, String> {
        paths
            .iter()
            .map(|path| {
                let (resources, patients, unreadable) = count_ndjson(path)?;
                Ok(FileOutcome::Deferred(format!(
                    "{resources} resource(s) of {patients} patient(s){}; downloaded, awaiting bulk import (rxsync import --bulk)",
                    if unreadable > 0 {
                        format!(", {unreadable} unreadable line(s)")
                    } else {
                        String::new()
                    }
                )))
            })
            .collect()
    }
}

/// Counts an NDJSON file's resources, the distinct patients they name, and
/// the lines that are not JSON objects.
pub fn count_ndjson(path: &Path) -> Result<(u64, usize, u64), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut patients = std::collections::BTreeSet::new();
    let (mut resources, mut unreadable) = (0u64, 0u64);
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(v) if v.is_object() => {
                resources += 1;
                if let Some(p) = patient_of(&v) {
                    patients.insert(p);
                }
            }
            _ => unreadable += 1,
        }
    }
    Ok((resources, patients.len(), unreadable))
}

/// The patient a resource belongs to: a Patient's own id, else its
/// `subject` / `patient` / `beneficiary` reference.
fn patient_of(v: &serde_json::Value) -> Option<String> {
    if v.get("resourceType")?.as_str()? == "Patient" {
        return v.get("id")?.as_str().map(|id| format!("Patient/{id}"));
    }
    ["subject", "patient", "beneficiary"]
        .iter()
        .find_map(|k| v.get(*k)?.get("reference")?.as_str().map(str::to_string))
}

/// The issues of an `error` file (OperationOutcome NDJSON), one per line,
/// joined; bounded.
pub fn error_file_issues(path: &Path) -> String {
    let Ok(text) = std::fs::read(path) else {
        return "the error file cannot be read".into();
    };
    let issues: Vec<String> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| {
            crate::fetch::bulk::operation_outcome_text(l)
                .unwrap_or_else(|| "a line that is not an OperationOutcome".into())
        })
        .take(50)
        .collect();
    if issues.is_empty() {
        "an empty error file".into()
    } else {
        issues.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_sink_counts_and_imports_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0-MedicationRequest.ndjson");
        std::fs::write(
            &path,
            "{\"resourceType\":\"MedicationRequest\",\"subject\":{\"reference\":\"Patient/1\"}}\n\
             {\"resourceType\":\"MedicationRequest\",\"subject\":{\"reference\":\"Patient/2\"}}\n\
             not json\n\n\
             {\"resourceType\":\"Patient\",\"id\":\"1\"}\n",
        )
        .expect("write");
        let out = AwaitingBulkImport
            .import_files("p", std::slice::from_ref(&path))
            .expect("reads")
            .remove(0);
        let FileOutcome::Deferred(note) = out else {
            panic!("{out:?}")
        };
        assert!(
            note.starts_with("3 resource(s) of 2 patient(s), 1 unreadable line(s)"),
            "{note}"
        );
    }

    #[test]
    fn error_files_read_as_issues() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.ndjson");
        std::fs::write(
            &path,
            "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"not-found\",\"diagnostics\":\"Patient/7 is gone\"}]}\n",
        )
        .expect("write");
        assert_eq!(
            error_file_issues(&path),
            "error not-found: Patient/7 is gone"
        );
    }
}
