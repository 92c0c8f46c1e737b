//! Writing one import: document, regimen, items, exceptions, sync and audit
//! in a single transaction (design invariant 1), and no new regimen version
//! when the same bytes are what the current regimen of the patient and
//! source was read from (invariant 2). Bytes stored before are never stored
//! twice: a document row is reused when the same bytes come back.

use super::context::SyncContext;
use super::db::Conn;
use super::patients::lock_patient;
use super::pulls::finish_pull;
use super::{Store, StoreError, now, rfc3339};
use crate::domain::{ExceptionKind, PatientId, SourceName, SyncOutcome};
use crate::normalize::{Item, Regimen};
use crate::parse::DocFormat;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything one successful parse produced, ready to store.
pub struct ImportWrite<'a> {
    /// The sync (its pull record is set when the document was pulled).
    pub sync: &'a SyncContext,
    pub format: DocFormat,
    pub bytes: &'a [u8],
    /// Lower-case hex SHA-256 of `bytes`.
    pub sha256: &'a str,
    pub regimen: &'a Regimen,
}

/// A document that could not be parsed, kept for the record.
pub struct UnreadableWrite<'a> {
    pub sync: &'a SyncContext,
    pub bytes: &'a [u8],
    pub sha256: &'a str,
    pub error: &'a str,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ImportOutcome {
    /// A new regimen version was written.
    Imported {
        sync_id: i64,
        document_id: i64,
        regimen_id: i64,
        version: i64,
        status: String,
        items: usize,
        /// Exceptions raised, by kind.
        exceptions: BTreeMap<String, usize>,
        /// How many records or resources were left out (entered-in-error,
        /// not medication evidence, unreadable…); they are listed, with
        /// their reasons, by the caller's report (`skipped`).
        skipped_count: usize,
        /// How many records could not be read (each has an open
        /// `unreadable_record` exception): the reading was partial.
        unreadable_records: usize,
    },
    /// The same bytes were imported before: nothing new was written but the sync row.
    Unchanged {
        sync_id: i64,
        document_id: i64,
        version: Option<i64>,
    },
    /// The document was kept, the sync failed, and an `unreadable` exception is open.
    Unreadable {
        sync_id: i64,
        document_id: i64,
        exception_id: i64,
    },
}

impl Store {
    /// Writes an import in one transaction.
    pub fn write_import(&mut self, w: &ImportWrite<'_>) -> Result<ImportOutcome, StoreError> {
        let sync = w.sync;
        let tx = self.tx()?;
        lock_patient(&tx, &sync.patient)?;
        let ended = now();
        let existing = existing_document(&tx, &sync.patient, &sync.source, w.sha256)?;
        let newest: Option<(i64, i64)> = tx
            .cached_row(
                "SELECT version, document_id FROM regimens WHERE patient_id = ?1 AND source = ?2
                 ORDER BY version DESC LIMIT 1",
                params![sync.patient.as_str(), sync.source.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        // Unchanged only when these bytes are what the current regimen was
        // read from. The same bytes imported before a newer document (A, B,
        // A) make a new version from the stored document; bytes kept as
        // unreadable and parsed now make their first regimen.
        if let (Some(document_id), Some((version, current))) = (existing, newest)
            && current == document_id
        {
            let sync_id = insert_sync(
                &tx,
                &sync.patient,
                &sync.source,
                sync.trigger.as_str(),
                &rfc3339(sync.started_at),
                &ended,
                "unchanged",
                Some(document_id),
                None,
                None,
            )?;
            if let Some(p) = &sync.pull {
                finish_pull(
                    &tx,
                    &sync.patient,
                    p,
                    &SyncOutcome::Unchanged,
                    None,
                    sync_id,
                )?;
            }
            super::audit::append(
                &tx,
                &sync.actor,
                "import.unchanged",
                Some(sync.patient.as_str()),
                Some(sync.source.as_str()),
                &serde_json::json!({"document_id": document_id, "sha256": w.sha256, "origin": sync.origin}),
            )?;
            tx.commit()?;
            return Ok(ImportOutcome::Unchanged {
                sync_id,
                document_id,
                version: Some(version),
            });
        }

        let document_id = match existing {
            Some(id) => {
                // A document kept as unreadable was stored as `unknown`:
                // it now has the format it parsed as.
                tx.prepare_cached("UPDATE documents SET format = ?1, media_type = ?2 WHERE id = ?3 AND format = 'unknown'")?
        .execute(params![w.format.as_str(), w.format.media_type(), id])?;
                id
            }
            None => insert_document(
                &tx,
                &sync.patient,
                &sync.source,
                w.format.as_str(),
                w.format.media_type(),
                w.bytes,
                w.sha256,
                sync.origin.as_deref(),
            )?,
        };
        let reread = resolve_unreadable(&tx, w, document_id, &ended)?;
        let version: i64 = tx.cached_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM regimens WHERE patient_id = ?1 AND source = ?2",
            params![sync.patient.as_str(), sync.source.as_str()],
            |r| r.get(0),
        )?;
        let status = if w.regimen.flags.is_empty() {
            "reviewed"
        } else {
            "needs_review"
        };
        let created = now();
        let inserted: i64 = tx.cached_row(
            "INSERT INTO regimens (patient_id, source, version, document_id, status, created_at, reviewed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            params![
                sync.patient.as_str(),
                sync.source.as_str(),
                version,
                document_id,
                status,
                created,
                (status == "reviewed").then_some(&created)
            ],
            |r| r.get(0),
        )?;
        let regimen_id = inserted;
        // The earlier versions' open exceptions concern items no longer in
        // force: close them, saying why, so the queue shows the current list.
        // On SQLite `+state` keeps the planner off the state index (the
        // regimen ids are the selective part); PostgreSQL plans it itself.
        let superseded = tx.cached_execute(
            tx.dialect(
                "UPDATE exceptions SET state = 'dismissed', resolved_by = ?1, resolved_at = ?2, note = ?3
                 WHERE +state = 'open' AND regimen_id IN
                   (SELECT id FROM regimens WHERE patient_id = ?4 AND source = ?5 AND version < ?6)",
                "UPDATE exceptions SET state = 'dismissed', resolved_by = ?1, resolved_at = ?2, note = ?3
                 WHERE state = 'open' AND regimen_id IN
                   (SELECT id FROM regimens WHERE patient_id = ?4 AND source = ?5 AND version < ?6)",
            ),
            params![
                &sync.actor,
                created,
                format!("superseded by regimen version {version}"),
                sync.patient.as_str(),
                sync.source.as_str(),
                version
            ],
        )?;
        let item_ids = insert_items(&tx, regimen_id, &w.regimen.items)?;
        let sync_id = insert_sync(
            &tx,
            &sync.patient,
            &sync.source,
            sync.trigger.as_str(),
            &rfc3339(sync.started_at),
            &ended,
            "imported",
            Some(document_id),
            Some(regimen_id),
            None,
        )?;
        if let Some(p) = &sync.pull {
            finish_pull(&tx, &sync.patient, p, &SyncOutcome::Imported, None, sync_id)?;
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO exceptions (patient_id, regimen_id, item_id, related_item_id, sync_id, document_id, source,
                 kind, severity, state, detail, created_at, unreadable_record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open', ?10, ?11, ?12)",
            )?;
            for f in &w.regimen.flags {
                ins.execute(params![
                    sync.patient.as_str(),
                    regimen_id,
                    f.item.and_then(|i| item_ids.get(i)),
                    f.related.and_then(|i| item_ids.get(i)),
                    sync_id,
                    document_id,
                    sync.source.as_str(),
                    f.kind.as_str(),
                    f.kind.severity().as_str(),
                    f.detail,
                    created,
                    f.record.map(|k| k as i64)
                ])?;
                *counts.entry(f.kind.as_str().to_string()).or_default() += 1;
            }
        }
        // The patient's other sources may now agree or disagree with this
        // list: the queue shows it in the same transaction.
        let conflicts =
            super::reconcile::check_conflicts(&tx, &sync.patient, sync_id, &sync.actor, &created)?;
        if !conflicts.opened.is_empty() {
            counts.insert(
                ExceptionKind::SourceConflict.as_str().to_string(),
                conflicts.opened.len(),
            );
        }
        let unreadable_records = counts
            .get(ExceptionKind::UnreadableRecord.as_str())
            .copied()
            .unwrap_or(0);
        super::audit::append(
            &tx,
            &sync.actor,
            "import",
            Some(sync.patient.as_str()),
            Some(sync.source.as_str()),
            &serde_json::json!({
                "document_id": document_id, "sha256": w.sha256, "origin": sync.origin, "version": version,
                "items": w.regimen.items.len(), "exceptions": counts, "skipped": w.regimen.skipped,
                "unreadable_records": unreadable_records,
                "unreadable_resolved": reread, "superseded_exceptions": superseded,
                "source_conflicts": conflicts,
            }),
        )?;
        tx.commit()?;
        Ok(ImportOutcome::Imported {
            sync_id,
            document_id,
            regimen_id,
            version,
            status: status.to_string(),
            items: w.regimen.items.len(),
            exceptions: counts,
            skipped_count: w.regimen.skipped.len(),
            unreadable_records,
        })
    }

    /// Keeps a document that could not be parsed, fails its sync and opens an
    /// `unreadable` exception, in one transaction. The regimen is untouched.
    pub fn write_unreadable(
        &mut self,
        w: &UnreadableWrite<'_>,
    ) -> Result<ImportOutcome, StoreError> {
        let sync = w.sync;
        let tx = self.tx()?;
        lock_patient(&tx, &sync.patient)?;
        let document_id = match existing_document(&tx, &sync.patient, &sync.source, w.sha256)? {
            Some(id) => id,
            None => insert_document(
                &tx,
                &sync.patient,
                &sync.source,
                "unknown",
                "application/octet-stream",
                w.bytes,
                w.sha256,
                sync.origin.as_deref(),
            )?,
        };
        let ended = now();
        let sync_id = insert_sync(
            &tx,
            &sync.patient,
            &sync.source,
            sync.trigger.as_str(),
            &rfc3339(sync.started_at),
            &ended,
            "failed",
            Some(document_id),
            None,
            Some(w.error),
        )?;
        if let Some(p) = &sync.pull {
            finish_pull(
                &tx,
                &sync.patient,
                p,
                &SyncOutcome::Failed,
                Some(w.error),
                sync_id,
            )?;
        }
        // The same unreadable bytes again: the open exception already says so.
        let open: Option<i64> = tx
            .cached_row(
                "SELECT id FROM exceptions WHERE document_id = ?1 AND kind = ?2 AND state = 'open'
                 ORDER BY id LIMIT 1",
                params![document_id, ExceptionKind::Unreadable.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let exception_id = match open {
            Some(id) => id,
            None => {
                let inserted: i64 = tx.cached_row(
                    "INSERT INTO exceptions (patient_id, sync_id, document_id, source, kind, severity, state, detail,
                     created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8) RETURNING id",
                    params![
                        sync.patient.as_str(),
                        sync_id,
                        document_id,
                        sync.source.as_str(),
                        ExceptionKind::Unreadable.as_str(),
                        ExceptionKind::Unreadable.severity().as_str(),
                        w.error,
                        ended
                    ],
                    |r| r.get(0),
                )?;
                inserted
            }
        };
        super::audit::append(
            &tx,
            &sync.actor,
            "import.unreadable",
            Some(sync.patient.as_str()),
            Some(sync.source.as_str()),
            &serde_json::json!({
                "document_id": document_id, "sha256": w.sha256, "origin": sync.origin, "error": w.error,
                "exception_id": exception_id, "exception_opened": open.is_none(),
            }),
        )?;
        tx.commit()?;
        Ok(ImportOutcome::Unreadable {
            sync_id,
            document_id,
            exception_id,
        })
    }
}

/// Closes the open `unreadable` exceptions of a document that has now
/// been parsed, auditing each; returns their ids.
fn resolve_unreadable(
    tx: &Conn,
    w: &ImportWrite<'_>,
    document_id: i64,
    at: &str,
) -> Result<Vec<i64>, StoreError> {
    const NOTE: &str = "parsed on a later import";
    let ids: Vec<i64> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id FROM exceptions WHERE document_id = ?1 AND kind = ?2 AND state = 'open' ORDER BY id",
        )?;
        stmt.query_map(
            params![document_id, ExceptionKind::Unreadable.as_str()],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?
    };
    for id in &ids {
        tx.cached_execute(
            "UPDATE exceptions SET state = 'resolved', resolved_by = ?1, resolved_at = ?2, note = ?3
             WHERE id = ?4 AND state = 'open'",
            params![&w.sync.actor, at, NOTE, id],
        )?;
        super::audit::append(
            tx,
            &w.sync.actor,
            "exception.parsed",
            Some(w.sync.patient.as_str()),
            Some(&format!("exception/{id}")),
            &serde_json::json!({
                "exception": id, "kind": ExceptionKind::Unreadable.as_str(), "document_id": document_id,
                "format": w.format.as_str(), "note": NOTE,
            }),
        )?;
    }
    Ok(ids)
}

fn existing_document(
    conn: &Conn,
    patient: &PatientId,
    source: &SourceName,
    sha256: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .cached_row(
            "SELECT id FROM documents WHERE patient_id = ?1 AND source = ?2 AND sha256 = ?3",
            params![patient.as_str(), source.as_str(), sha256],
            |r| r.get(0),
        )
        .optional()?)
}

#[allow(clippy::too_many_arguments)]
fn insert_document(
    tx: &Conn,
    patient: &PatientId,
    source: &SourceName,
    format: &str,
    media_type: &str,
    bytes: &[u8],
    sha256: &str,
    origin: Option<&str>,
) -> Result<i64, StoreError> {
    let inserted: i64 = tx.prepare_cached(
        "INSERT INTO documents (patient_id, source, format, media_type, sha256, size, bytes, origin, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
    )?
    .query_row(params![patient.as_str(), source.as_str(), format, media_type, sha256, bytes.len() as i64, bytes, origin, now()], |r| r.get(0))?;
    Ok(inserted)
}

#[allow(clippy::too_many_arguments)]
fn insert_sync(
    tx: &Conn,
    patient: &PatientId,
    source: &SourceName,
    trigger: &str,
    started: &str,
    ended: &str,
    outcome: &str,
    document_id: Option<i64>,
    regimen_id: Option<i64>,
    error: Option<&str>,
) -> Result<i64, StoreError> {
    let inserted: i64 = tx.prepare_cached(
        "INSERT INTO syncs (patient_id, source, trigger, started_at, ended_at, outcome, document_id, regimen_id, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
    )?
    .query_row(params![patient.as_str(), source.as_str(), trigger, started, ended, outcome, document_id, regimen_id, error], |r| r.get(0))?;
    Ok(inserted)
}

/// The items table's columns, in the order `item_row` binds them.
const ITEM_COLUMNS: &str = "regimen_id, position, ndc11, ndc_original, ndc_inferred, mapping, name, brand, codes,
     ingredient_codes, strength, form, route, dose, frequency, sig, status, status_original, start_date, stop_date,
     prescribed_date, prescriber, sources, records, ndc12, evidence, days_supply, quantity, dispenser, section";
/// How many values `item_row` binds.
const ITEM_VALUES: usize = 30;
/// The most items one INSERT writes. On PostgreSQL each statement is a
/// round trip inside the import's transaction, so a regimen's items go in a
/// few statements: runs of 16, 8, 4, 2 and 1 rows (five shapes of
/// statement in the cache, at most five statements below 32 items).
const ITEMS_PER_INSERT: usize = 16;

/// Inserts the regimen's items in order (positions from 1); their ids, in
/// the same order.
fn insert_items(tx: &Conn, regimen_id: i64, items: &[Item]) -> Result<Vec<i64>, StoreError> {
    let mut ids = vec![0i64; items.len()];
    let mut done = 0usize;
    while done < items.len() {
        let left = items.len() - done;
        let rows = if left >= ITEMS_PER_INSERT {
            ITEMS_PER_INSERT
        } else {
            1 << left.ilog2()
        };
        let mut values = Vec::with_capacity(rows * ITEM_VALUES);
        for (offset, item) in items[done..done + rows].iter().enumerate() {
            values.extend(item_row(regimen_id, done + offset, item)?);
        }
        let mut ins = tx.prepare_cached(&insert_items_sql(rows))?;
        let inserted =
            ins.query_map(&values, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        let mut returned = 0usize;
        for row in inserted {
            returned += 1;
            let (id, position) = row?;
            let at = usize::try_from(position - 1)
                .ok()
                .filter(|i| (done..done + rows).contains(i))
                .ok_or_else(|| {
                    StoreError::Refused(format!(
                        "an item insert returned position {position}, outside {}..={}",
                        done + 1,
                        done + rows
                    ))
                })?;
            ids[at] = id;
        }
        if returned != rows {
            return Err(StoreError::Refused(format!(
                "an insert of {rows} items returned {returned} ids"
            )));
        }
        done += rows;
    }
    Ok(ids)
}

/// `INSERT INTO items` of `rows` rows, numbered placeholders.
fn insert_items_sql(rows: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|r| {
            let marks: Vec<String> = (1..=ITEM_VALUES)
                .map(|c| format!("?{}", r * ITEM_VALUES + c))
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO items ({ITEM_COLUMNS}) VALUES {} RETURNING id, position",
        tuples.join(", ")
    )
}

/// One item's values, in `ITEM_COLUMNS`' order; `index` counts from 0.
fn item_row(
    regimen_id: i64,
    index: usize,
    item: &Item,
) -> rusqlite::Result<Vec<rusqlite::types::Value>> {
    use super::db::Params;
    let json = |v: &dyn erased::Json| v.to_json();
    params![
        regimen_id,
        index as i64 + 1,
        item.ndc11.map(|n| n.to_string()),
        item.ndc_original,
        item.ndc_inferred,
        item.mapping.as_ref().map(|m| json(m)),
        item.name,
        item.brand,
        json(&item.codes),
        json(&item.ingredient_codes),
        item.strength,
        item.form,
        item.route,
        item.dose,
        item.frequency,
        item.sig,
        item.status.as_str(),
        item.status_original,
        item.start,
        item.stop,
        item.prescribed,
        item.prescriber,
        json(&item.sources),
        json(&item.records),
        item.ndc12.map(|n| n.to_string()),
        item.evidence.as_str(),
        item.days_supply,
        item.quantity,
        item.dispenser,
        item.section,
    ]
    .values()
}

/// Serializing the JSON columns: every type here is plain data whose
/// serialization cannot fail, so an empty JSON value stands in for the
/// impossible error rather than a panic.
mod erased {
    pub trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".to_string())
        }
    }
}
