//! Reversing a clinician's decision (`reopen`) until its regimen is reviewed.
//!
//! Every decision of `queue` writes a `decisions` row with what reversing
//! it must restore: the item's NDC and mapping before a `map`, the
//! remembered code mappings it replaced and the duplicates it opened; the
//! item a `remove` removed and the exceptions it closed with it. Reopening
//! puts all of that back in one transaction and audits it.
//!
//! A decision is final once its regimen is `reviewed` (no exception open:
//! the list may be used) or no longer the current version. A `map` whose
//! duplicates were decided since cannot be reversed before those are: the
//! later decision rests on it. Decisions made before this table existed
//! have no record and cannot be reversed.

use super::db::Conn;
use super::{Store, StoreError, now};
use crate::domain::ExceptionState;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// A recorded decision on an exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionView {
    pub id: i64,
    pub exception_id: i64,
    pub action: String,
    pub decided_by: String,
    pub decided_at: String,
    pub reversed_by: Option<String>,
    pub reversed_at: Option<String>,
    pub reversal_note: Option<String>,
}

/// Records a decision inside the deciding transaction.
pub(super) fn record(
    conn: &Conn,
    exception_id: i64,
    action: &str,
    by: &str,
    at: &str,
    undo: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO decisions (exception_id, action, decided_by, decided_at, undo) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![exception_id, action, by, at, undo.to_string()],
    )?;
    Ok(())
}

/// What reversing a `map` restores.
#[derive(serde::Deserialize, Default)]
struct Undo {
    item: Option<ItemBefore>,
    #[serde(default)]
    mappings: Vec<MappingBefore>,
    #[serde(default)]
    opened: Vec<i64>,
    removed_item: Option<i64>,
    #[serde(default)]
    closed: Vec<i64>,
}

#[derive(serde::Deserialize)]
struct ItemBefore {
    id: i64,
    ndc11: Option<String>,
    mapping: Option<String>,
}

#[derive(serde::Deserialize)]
struct MappingBefore {
    source: String,
    system: String,
    code: String,
    previous: Option<PreviousMapping>,
}

#[derive(serde::Deserialize)]
struct PreviousMapping {
    ndc11: String,
    decided_by: String,
    decided_at: String,
    exception_id: Option<i64>,
    note: Option<String>,
}

impl Store {
    /// The decisions recorded on an exception, oldest first.
    pub fn decisions(&self, exception_id: i64) -> Result<Vec<DecisionView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, exception_id, action, decided_by, decided_at, reversed_by, reversed_at, reversal_note
             FROM decisions WHERE exception_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([exception_id], |r| {
                Ok(DecisionView {
                    id: r.get(0)?,
                    exception_id: r.get(1)?,
                    action: r.get(2)?,
                    decided_by: r.get(3)?,
                    decided_at: r.get(4)?,
                    reversed_by: r.get(5)?,
                    reversed_at: r.get(6)?,
                    reversal_note: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Why the decision on an exception cannot be reversed now (None: it can).
    pub fn reopen_refusal(&self, id: i64) -> Result<Option<String>, StoreError> {
        match check_reversible(&self.conn, id)? {
            Ok(_) => Ok(None),
            Err(why) => Ok(Some(why)),
        }
    }

    /// Reverses the decision on a closed exception: the exception is open
    /// again and what the decision changed is restored, with `by` and the
    /// note recorded on the decision and in the audit log.
    pub fn reopen_exception(
        &mut self,
        id: i64,
        by: &str,
        note: &str,
    ) -> Result<super::ExceptionView, StoreError> {
        if note.trim().is_empty() {
            return Err(StoreError::Refused(
                "reopening needs a note saying why".to_string(),
            ));
        }
        let tx = self.tx()?;
        let (decision_id, action, undo, patient) =
            check_reversible(&tx, id)?.map_err(StoreError::Refused)?;
        let at = now();
        restore(&tx, id, &undo, by, &at)?;
        tx.execute(
            "UPDATE exceptions SET state = 'open', resolution = NULL, resolution_ndc = NULL, resolved_by = NULL,
             resolved_at = NULL, note = NULL WHERE id = ?1",
            [id],
        )?;
        tx.execute(
            "UPDATE decisions SET reversed_by = ?1, reversed_at = ?2, reversal_note = ?3 WHERE id = ?4",
            params![by, at, note, decision_id],
        )?;
        super::audit::append(
            &tx,
            by,
            "exception.reopen",
            Some(&patient),
            Some(&format!("exception/{id}")),
            &serde_json::json!({"exception": id, "reversed": action, "note": note,
                "reopened": undo.closed, "closed": undo.opened}),
        )?;
        tx.commit()?;
        Ok(self.exception(id)?.0)
    }
}

/// The decision to reverse (id, action, undo record, patient), or why not.
type Reversible = (i64, String, Undo, String);

fn check_reversible(conn: &Conn, id: i64) -> Result<Result<Reversible, String>, StoreError> {
    let row: Option<(ExceptionState, Option<i64>, String)> = conn
        .query_row(
            "SELECT state, regimen_id, patient_id FROM exceptions WHERE id = ?1",
            [id],
            |r| Ok((super::queue::exception_state(r, 0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((state, regimen_id, patient)) = row else {
        return Err(StoreError::NotFound {
            what: "exception",
            id: id.to_string(),
        });
    };
    if state == ExceptionState::Open {
        return Ok(Err(format!(
            "exception {id} is open: there is no decision to reverse"
        )));
    }
    let Some(regimen_id) = regimen_id else {
        return Ok(Err(format!(
            "exception {id} concerns no regimen: its decision is final"
        )));
    };
    let (status, version, newest): (String, i64, i64) = conn.query_row(
        "SELECT r.status, r.version, (SELECT MAX(version) FROM regimens n WHERE n.patient_id = r.patient_id
         AND n.source = r.source) FROM regimens r WHERE r.id = ?1",
        [regimen_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if version != newest {
        return Ok(Err(format!(
            "regimen version {version} was superseded by version {newest}: its decisions are final"
        )));
    }
    if status == "reviewed" {
        return Ok(Err(format!(
            "regimen version {version} is reviewed (approved): its decisions are final"
        )));
    }
    let decision: Option<(i64, String, String)> = conn
        .query_row(
            "SELECT id, action, undo FROM decisions WHERE exception_id = ?1 AND reversed_at IS NULL
             ORDER BY id DESC LIMIT 1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((decision_id, action, undo)) = decision else {
        return Ok(Err(format!(
            "exception {id} was closed by rxsync, not by a recorded decision (superseded, removed with its item, or re-linked): reopen the decision that closed it"
        )));
    };
    let undo: Undo = serde_json::from_str(&undo).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // A duplicate the mapping opened and someone decided since rests on
    // this decision: that one is reversed first.
    for opened in &undo.opened {
        let state: Option<ExceptionState> = conn
            .query_row(
                "SELECT state FROM exceptions WHERE id = ?1",
                [opened],
                |r| super::queue::exception_state(r, 0),
            )
            .optional()?;
        if state.is_some_and(|s| s != ExceptionState::Open) {
            return Ok(Err(format!(
                "exception {opened}, opened by this mapping, was decided since: reopen it first"
            )));
        }
    }
    Ok(Ok((decision_id, action, undo, patient)))
}

fn restore(tx: &Conn, id: i64, undo: &Undo, by: &str, at: &str) -> Result<(), StoreError> {
    if let Some(item) = &undo.item {
        tx.execute(
            "UPDATE items SET ndc11 = ?1, mapping = ?2 WHERE id = ?3",
            params![item.ndc11, item.mapping, item.id],
        )?;
    }
    for m in &undo.mappings {
        // Only a mapping this decision still owns is restored: a later
        // decision on the same code stands.
        match &m.previous {
            None => {
                tx.execute(
                    "DELETE FROM code_mappings WHERE source = ?1 AND system = ?2 AND code = ?3 AND exception_id = ?4",
                    params![m.source, m.system, m.code, id],
                )?;
            }
            Some(p) => {
                tx.execute(
                    "UPDATE code_mappings SET ndc11 = ?1, decided_by = ?2, decided_at = ?3, exception_id = ?4, note = ?5
                     WHERE source = ?6 AND system = ?7 AND code = ?8 AND exception_id = ?9",
                    params![p.ndc11, p.decided_by, p.decided_at, p.exception_id, p.note, m.source, m.system, m.code, id],
                )?;
            }
        }
    }
    for opened in &undo.opened {
        tx.execute(
            "UPDATE exceptions SET state = 'dismissed', resolved_by = ?1, resolved_at = ?2, note = ?3
             WHERE id = ?4 AND state = 'open'",
            params![
                by,
                at,
                format!("the mapping of exception {id} that opened it was reversed"),
                opened
            ],
        )?;
    }
    if let Some(item) = undo.removed_item {
        tx.execute(
            "UPDATE items SET removed_at = NULL, removed_by = NULL WHERE id = ?1",
            [item],
        )?;
    }
    for closed in &undo.closed {
        tx.execute(
            "UPDATE exceptions SET state = 'open', resolution = NULL, resolution_ndc = NULL, resolved_by = NULL,
             resolved_at = NULL, note = NULL WHERE id = ?1 AND state = 'resolved' AND note = ?2",
            params![closed, format!("item removed by exception {id}")],
        )?;
    }
    Ok(())
}
