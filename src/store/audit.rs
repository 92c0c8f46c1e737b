//! The append-only audit log (triggers refuse UPDATE and DELETE).

use super::{Store, StoreError, now};
use rusqlite::{Connection, params};
use serde::Serialize;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub patient: Option<String>,
    pub subject: Option<String>,
    pub detail: serde_json::Value,
}

/// Appends a record inside the caller's transaction.
pub(super) fn append(
    conn: &Connection,
    actor: &str,
    action: &str,
    patient: Option<&str>,
    subject: Option<&str>,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, actor, action, patient_id, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now(), actor, action, patient, subject, detail.to_string()],
    )?;
    Ok(())
}

impl Store {
    /// The audit trail, newest first, optionally for one patient.
    pub fn audit_trail(
        &self,
        patient: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, actor, action, patient_id, subject, detail FROM audit
             WHERE ?1 IS NULL OR patient_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![patient, limit as i64], |r| {
                let detail: Option<String> = r.get(6)?;
                Ok(AuditRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    patient: r.get(4)?,
                    subject: r.get(5)?,
                    detail: detail
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(serde_json::Value::Null),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
