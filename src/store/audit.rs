//! The append-only audit log (triggers refuse UPDATE and DELETE). Every
//! write that changes what is stored appends its row in the same transaction.

use super::{StoreError, now};
use rusqlite::{Connection, params};

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
