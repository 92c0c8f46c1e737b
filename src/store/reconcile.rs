//! A patient's current lists from every source, lined up (`reconcile`), and
//! the `source_conflict` exceptions that keep the queue in step with them.
//!
//! `check_conflicts` runs inside the import's transaction, after the new
//! version's items are written: it opens an exception for each conflict
//! that is new, leaves alone one a clinician decided (remembered by its
//! `conflict_key`, the pair of facts, for as long as the decision is not
//! reversed), points a still-open one at the current items, and closes an
//! open one whose sources now agree. A conflict belongs to the patient, not
//! to one regimen (`regimen_id` is NULL): each list stays as its source
//! wrote it, and neither list's review waits on the other.

use super::db::Conn;
use super::{Store, StoreError};
use crate::domain::{ExceptionKind, ExceptionState, MedStatus, Ndc11, Ndc12, PatientId};
use crate::parse::Evidence;
use crate::reconcile::{Conflict, ConflictException, Listed, Reconciled, SourceList, reconcile};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// What one import's conflict check did to the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConflictCheck {
    /// `source_conflict` exceptions opened.
    pub opened: Vec<i64>,
    /// Open ones closed because the sources now agree.
    pub closed: Vec<i64>,
    /// Conflicts present that a clinician already decided: not raised again.
    pub remembered: usize,
}

impl Store {
    /// A patient's current lists lined up; None for an unknown patient.
    pub fn reconciled(&self, patient: &PatientId) -> Result<Option<Reconciled>, StoreError> {
        if self.patient(patient)?.is_none() {
            return Ok(None);
        }
        let mut r = reconcile(patient.as_str(), current_lists(&self.conn, patient)?);
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, state FROM exceptions WHERE patient_id = ?1 AND kind = ?2 AND conflict_key = ?3
             ORDER BY id DESC LIMIT 1",
        )?;
        for row in &mut r.rows {
            for c in &mut row.conflicts {
                let found: Option<(i64, String)> = stmt
                    .query_row(
                        params![
                            patient.as_str(),
                            ExceptionKind::SourceConflict.as_str(),
                            c.key
                        ],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                c.exception = found
                    .map(|(id, state)| {
                        let state: ExceptionState = state.parse().map_err(StoreError::Corrupt)?;
                        Ok::<_, StoreError>(ConflictException { id, state })
                    })
                    .transpose()?;
            }
        }
        Ok(Some(r))
    }
}

/// Brings the patient's `source_conflict` exceptions in line with the
/// current lists, inside the caller's transaction (see the module doc).
pub(super) fn check_conflicts(
    tx: &Conn,
    patient: &PatientId,
    sync_id: i64,
    actor: &str,
    at: &str,
) -> Result<ConflictCheck, StoreError> {
    let kind = ExceptionKind::SourceConflict;
    // Most patients have one source: nothing to compare, nothing to read
    // (a source never goes away, so no conflict of theirs can be open).
    let sources: i64 = tx.cached_row(
        "SELECT COUNT(DISTINCT source) FROM regimens WHERE patient_id = ?1",
        [patient.as_str()],
        |r| r.get(0),
    )?;
    if sources < 2 {
        return Ok(ConflictCheck::default());
    }
    let reconciled = reconcile(patient.as_str(), current_lists(tx, patient)?);
    let mut current: HashMap<&str, &Conflict> = HashMap::new();
    let mut order: Vec<&Conflict> = Vec::new();
    for c in reconciled.conflicts() {
        if current.insert(c.key.as_str(), c).is_none() {
            order.push(c);
        }
    }
    let open: Vec<(i64, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, conflict_key FROM exceptions WHERE patient_id = ?1 AND kind = ?2 AND state = 'open'
             AND conflict_key IS NOT NULL ORDER BY id",
        )?;
        stmt.query_map(params![patient.as_str(), kind.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut check = ConflictCheck::default();
    let mut still_open: HashSet<String> = HashSet::new();
    for (id, key) in open {
        match current.get(key.as_str()) {
            Some(c) => {
                // The same facts in a newer version: point at its items.
                tx.cached_execute(
                    "UPDATE exceptions SET item_id = ?1, related_item_id = ?2, detail = ?3 WHERE id = ?4",
                    params![c.sides[0].item_id, c.sides[1].item_id, c.detail(), id],
                )?;
                still_open.insert(key);
            }
            None => {
                const NOTE: &str = "the sources no longer disagree";
                tx.cached_execute(
                    "UPDATE exceptions SET state = 'dismissed', resolved_by = ?1, resolved_at = ?2, note = ?3
                     WHERE id = ?4 AND state = 'open'",
                    params![actor, at, NOTE, id],
                )?;
                super::audit::append(
                    tx,
                    actor,
                    "exception.agreed",
                    Some(patient.as_str()),
                    Some(&format!("exception/{id}")),
                    &serde_json::json!({"exception": id, "kind": kind.as_str(), "note": NOTE}),
                )?;
                check.closed.push(id);
            }
        }
    }
    for c in order {
        if still_open.contains(&c.key) {
            continue;
        }
        let decided: bool = tx.cached_row(
            "SELECT EXISTS(SELECT 1 FROM exceptions e JOIN decisions d ON d.exception_id = e.id
             WHERE e.patient_id = ?1 AND e.kind = ?2 AND e.conflict_key = ?3 AND d.reversed_at IS NULL)",
            params![patient.as_str(), kind.as_str(), c.key],
            |r| r.get(0),
        )?;
        if decided {
            check.remembered += 1;
            continue;
        }
        let inserted: i64 = tx.cached_row(
            "INSERT INTO exceptions (patient_id, item_id, related_item_id, sync_id, source, kind, severity, state,
             detail, created_at, conflict_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?9, ?10) RETURNING id",
            params![
                patient.as_str(),
                c.sides[0].item_id,
                c.sides[1].item_id,
                sync_id,
                c.sides[0].source,
                kind.as_str(),
                kind.severity().as_str(),
                c.detail(),
                at,
                c.key
            ],
            |r| r.get(0),
        )?;
        check.opened.push(inserted);
    }
    Ok(check)
}

/// One stored item in force, as reconciliation reads it.
type ListedRow = (
    i64,
    i64,
    Option<String>,
    [Option<String>; 6],
    String,
    String,
    [Option<String>; 3],
    String,
);

/// The newest regimen of each of the patient's sources, with its items in
/// force and what the dictionary knows of their NDCs.
fn current_lists(conn: &Conn, patient: &PatientId) -> Result<Vec<SourceList>, StoreError> {
    let heads: Vec<(String, i64, i64)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT r.source, r.version, r.id FROM regimens r WHERE r.patient_id = ?1
             AND r.version = (SELECT MAX(n.version) FROM regimens n WHERE n.patient_id = r.patient_id
                              AND n.source = r.source)
             ORDER BY r.source",
        )?;
        stmt.query_map([patient.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut stmt = conn.prepare_cached(
        "SELECT id, position, COALESCE(ndc11, ndc12), name, strength, form, dose, frequency, sig, status,
         evidence, start_date, stop_date, prescribed_date, codes
         FROM items WHERE regimen_id = ?1 AND removed_at IS NULL ORDER BY position",
    )?;
    let mut lists = Vec::with_capacity(heads.len());
    for (source, version, regimen_id) in heads {
        let rows: Vec<ListedRow> = stmt
            .query_map([regimen_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    [
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ],
                    r.get(9)?,
                    r.get(10)?,
                    [r.get(11)?, r.get(12)?, r.get(13)?],
                    r.get(14)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let items = rows
            .into_iter()
            .map(|row| listed(conn, row))
            .collect::<Result<_, _>>()?;
        lists.push(SourceList {
            source,
            version,
            items,
        });
    }
    Ok(lists)
}

fn listed(conn: &Conn, row: ListedRow) -> Result<Listed, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    let (
        id,
        position,
        ndc,
        [name, strength, form, dose, frequency, sig],
        status,
        evidence,
        dates,
        codes,
    ) = row;
    let ndc = ndc
        .map(|t| match t.len() {
            11 => Ndc11::from_digits(&t).map(|n| n.to_ndc12()),
            _ => Ndc12::from_digits(&t),
        })
        .transpose()
        .map_err(|e| corrupt(e.to_string()))?;
    let product = ndc
        .as_ref()
        .map(|n| Store::entry_in(conn, n))
        .transpose()?
        .flatten();
    let evidence = match evidence.as_str() {
        "claim" => Evidence::Claim,
        "record" => Evidence::Record,
        other => return Err(corrupt(format!("item {id}: unknown evidence {other:?}"))),
    };
    Ok(Listed {
        item_id: id,
        position: usize::try_from(position).map_err(|e| corrupt(e.to_string()))?,
        ndc,
        name,
        strength,
        form,
        dose,
        frequency,
        sig,
        status: MedStatus::normalize(&status),
        evidence,
        last_date: dates.into_iter().flatten().max(),
        codes: serde_json::from_str(&codes).map_err(|e| corrupt(e.to_string()))?,
        product,
    })
}
