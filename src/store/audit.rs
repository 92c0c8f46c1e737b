//! The append-only audit log (triggers refuse UPDATE and DELETE). Every
//! write that changes what is stored appends its row in the same transaction.

use super::db::Conn;
use super::{StoreError, now};
use rusqlite::params;

/// Appends a record inside the caller's transaction.
pub(super) fn append(
    conn: &Conn,
    actor: &str,
    action: &str,
    patient: Option<&str>,
    subject: Option<&str>,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit (at, actor, action, patient_id, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![now(), actor, action, patient, subject, detail.to_string()])?;
    Ok(())
}

/// One audit record, as the review pages show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub patient: Option<String>,
    pub subject: Option<String>,
    pub detail: Option<String>,
}

impl super::Store {
    /// A patient's audit trail, newest first.
    pub fn audit_trail(
        &self,
        patient: &crate::domain::PatientId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, actor, action, patient_id, subject, detail FROM audit WHERE patient_id = ?1
             ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![patient.as_str(), limit as i64], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    patient: r.get(4)?,
                    subject: r.get(5)?,
                    detail: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
