//! Staging for FHIR Bulk Data imports (`bulk`): the lines of an export
//! filed under their patient, so that a patient's records can be gathered
//! from many files without holding the export in memory, and the lookups
//! that decide which local patient a remote one is.
//!
//! Staging rows are scaffolding, not the record: a run deletes its rows when
//! it ends, and each patient's import stores its own document as any import
//! does. Nothing here parses a line; the caller hands over what it read.

use super::StoreError;
use rusqlite::{OptionalExtension, params};

/// One line of an export, filed under its patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedLine {
    /// The patient's id at the provider; empty for a Medication (shared by
    /// every patient whose records reference it).
    pub patient_ref: String,
    /// The file's place in the run's file list.
    pub file: i64,
    /// 1-based line number.
    pub line: i64,
    /// `resourceType`; None for a line without one (read as unreadable).
    pub kind: Option<String>,
    pub resource_id: Option<String>,
    /// The Medication id the record's `medicationReference` names.
    pub medication: Option<String>,
    /// The line as written (without its line break).
    pub body: String,
}

/// A line that could not be filed under any patient: it is kept in the
/// audit (with its place and why), so that it is never dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl super::Store {
    /// Files a batch of lines, and audits the lines no patient can be named
    /// for, in one transaction.
    pub fn bulk_stage(
        &mut self,
        run: &str,
        lines: &[StagedLine],
        unplaced: &[BadLine],
        actor: &str,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO bulk_staging (run, patient_ref, file, line, kind, resource_id, medication, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run, patient_ref, file, line) DO UPDATE SET kind = excluded.kind,
                   resource_id = excluded.resource_id, medication = excluded.medication, body = excluded.body",
            )?;
            for l in lines {
                insert.execute(params![
                    run,
                    l.patient_ref,
                    l.file,
                    l.line,
                    l.kind,
                    l.resource_id,
                    l.medication,
                    l.body
                ])?;
            }
        }
        for bad in unplaced {
            super::audit::append(
                &tx,
                actor,
                "bulk.bad_line",
                None,
                Some(&format!("{}:{}", bad.file, bad.line)),
                &serde_json::json!({"run": run, "file": bad.file, "line": bad.line, "reason": bad.reason}),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` patients of a run that have records, after `after`, in
    /// order (paged, so that a run of a million patients is never listed at once).
    pub fn bulk_patients_after(
        &self,
        run: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT patient_ref FROM bulk_staging
             WHERE run = ?1 AND patient_ref > ?2 AND (kind IS NULL OR kind <> 'Patient')
             ORDER BY patient_ref LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![run, after, limit as i64], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }

    /// A patient's staged lines but its Patient resource, in file and line
    /// order: (medication id referenced, line).
    pub fn bulk_lines(
        &self,
        run: &str,
        patient_ref: &str,
    ) -> Result<Vec<(Option<String>, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT medication, body FROM bulk_staging
             WHERE run = ?1 AND patient_ref = ?2 AND (kind IS NULL OR kind <> 'Patient')
             ORDER BY file, line",
        )?;
        let rows = stmt
            .query_map(params![run, patient_ref], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The shared Medication lines with these ids (each id's first line).
    pub fn bulk_medication(&self, run: &str, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .cached_row(
                "SELECT body FROM bulk_staging WHERE run = ?1 AND patient_ref = '' AND resource_id = ?2
                 ORDER BY file, line LIMIT 1",
                params![run, id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The patient's own Patient resource line, when the export has one.
    pub fn bulk_patient_resource(
        &self,
        run: &str,
        patient_ref: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .cached_row(
                "SELECT body FROM bulk_staging WHERE run = ?1 AND patient_ref = ?2 AND kind = 'Patient'
                 ORDER BY file, line LIMIT 1",
                params![run, patient_ref],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Deletes a run's staging rows; returns how many there were.
    pub fn bulk_clear(&mut self, run: &str) -> Result<usize, StoreError> {
        let tx = self.tx()?;
        let n = tx.execute("DELETE FROM bulk_staging WHERE run = ?1", [run])?;
        tx.commit()?;
        Ok(n)
    }

    /// The local patient linked at `provider` under the remote patient id,
    /// with the link's state (`active`, `needs_relink`, …); a revoked link
    /// names no one.
    pub fn linked_patient(
        &self,
        provider: &str,
        remote_patient: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .cached_row(
                "SELECT patient_id, state FROM links
                 WHERE provider = ?1 AND remote_patient = ?2 AND state <> 'revoked'
                 ORDER BY id LIMIT 1",
                params![provider, remote_patient],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The local patients registered with this MRN.
    pub fn patients_with_mrn(&self, mrn: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM patients WHERE mrn = ?1 ORDER BY id")?;
        let rows = stmt
            .query_map([mrn], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }
}
