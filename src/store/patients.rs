//! Local patients.

use super::db::{Conn, Row};
use super::{Store, StoreError, now};
use crate::domain::PatientId;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// A patient to register.
#[derive(Debug, Clone)]
pub struct NewPatient {
    pub id: PatientId,
    pub mrn: Option<String>,
    pub name: Option<String>,
    /// YYYY-MM-DD, validated by the caller.
    pub birth_date: Option<String>,
}

impl NewPatient {
    /// A patient known by its id alone.
    pub fn with_id(id: PatientId) -> NewPatient {
        NewPatient {
            id,
            mrn: None,
            name: None,
            birth_date: None,
        }
    }
}

/// A registered patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Patient {
    pub id: String,
    pub mrn: Option<String>,
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub created_at: String,
}

impl Store {
    /// Registers a patient; an existing id is a conflict.
    pub fn add_patient(&mut self, p: &NewPatient, actor: &str) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM patients WHERE id = ?1)",
            [p.id.as_str()],
            |r| r.get(0),
        )?;
        if exists {
            return Err(StoreError::Conflict(format!(
                "patient {} already exists",
                p.id
            )));
        }
        tx.execute(
            "INSERT INTO patients (id, mrn, name, birth_date, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![p.id.as_str(), p.mrn, p.name, p.birth_date, now()],
        )?;
        super::audit::append(
            &tx,
            actor,
            "patient.add",
            Some(p.id.as_str()),
            None,
            &serde_json::json!({}),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// One patient, if registered.
    pub fn patient(&self, id: &PatientId) -> Result<Option<Patient>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, mrn, name, birth_date, created_at FROM patients WHERE id = ?1",
                [id.as_str()],
                row_to_patient,
            )
            .optional()?)
    }

    /// Every patient, by id.
    pub fn patients(&self) -> Result<Vec<Patient>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, mrn, name, birth_date, created_at FROM patients ORDER BY id")?;
        let rows = stmt
            .query_map((), row_to_patient)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

fn row_to_patient(r: &Row<'_>) -> rusqlite::Result<Patient> {
    Ok(Patient {
        id: r.get(0)?,
        mrn: r.get(1)?,
        name: r.get(2)?,
        birth_date: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// Refuses a write for a patient who is not registered; otherwise holds
/// the patient's row until the transaction ends, so that two imports of
/// one patient number their versions one after the other. (SQLite's
/// writer lock serializes the whole transaction already; PostgreSQL's
/// READ COMMITTED lets two read the same next version.)
pub(super) fn lock_patient(conn: &Conn, patient: &PatientId) -> Result<(), StoreError> {
    let found: Option<i64> = conn
        .cached_row(
            conn.dialect(
                "SELECT 1 FROM patients WHERE id = ?1",
                "SELECT 1 FROM patients WHERE id = ?1 FOR UPDATE",
            ),
            [patient.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            what: "patient",
            id: patient.to_string(),
        }),
    }
}

/// Refuses a write for a patient who is not registered.
pub(super) fn require_patient(conn: &Conn, patient: &PatientId) -> Result<(), StoreError> {
    let exists: bool = conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM patients WHERE id = ?1)",
        [patient.as_str()],
        |r| r.get(0),
    )?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound {
            what: "patient",
            id: patient.to_string(),
        })
    }
}
