//! The exception queue: listing, reading, and the clinician's decisions.
//!
//! Every decision records who, when and the note, is written to the audit
//! log in the same transaction, and — when it closes the regimen's last
//! open exception — marks the regimen `reviewed`. Nothing is deleted: a
//! removed item stays in the record, marked removed.

use super::db::{Conn, Row};
use super::regimens::ItemView;
use super::{Store, StoreError, now};
use crate::domain::{Action, Code, Decision, ExceptionKind, ExceptionState, Ndc11, Ndc12};
use crate::normalize::Stated;
use crate::normalize::{ClassRule, DupItem, Options, decision_keys, find_duplicates};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// Which exceptions to list.
#[derive(Debug, Clone, Default)]
pub struct ExceptionFilter {
    /// None lists every state.
    pub state: Option<ExceptionState>,
    pub kind: Option<ExceptionKind>,
    pub patient: Option<String>,
    pub source: Option<String>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// The item an exception concerns, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemRef {
    pub id: i64,
    pub position: i64,
    pub name: Option<String>,
    pub ndc11: Option<String>,
}

/// An exception as the queue shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExceptionView {
    pub id: i64,
    pub patient: String,
    pub kind: String,
    pub state: ExceptionState,
    /// The item it concerns (null for regimen- or sync-level exceptions).
    pub item: Option<ItemRef>,
    pub detail: String,
    pub severity: String,
    pub source: String,
    pub regimen_version: Option<i64>,
    pub related_item: Option<ItemRef>,
    pub resolution: Option<String>,
    pub resolution_ndc: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<String>,
    pub note: Option<String>,
    pub created_at: String,
    /// The actions that fit this kind (besides dismiss).
    pub actions: Vec<&'static str>,
}

/// The document an item came from.
#[derive(Debug, Clone)]
pub struct ItemDocument {
    /// The raw bytes, as received.
    pub bytes: Vec<u8>,
    /// The format name it was parsed as (`DocFormat::as_str`).
    pub format: String,
    /// Positions of the item's records in the parse of `bytes`.
    pub records: Vec<usize>,
    /// What those records were (kind and id), to check a re-parse against.
    pub sources: Vec<crate::parse::SourceRef>,
}

/// A clinician's decision on one exception, with who took it.
#[derive(Debug, Clone)]
pub struct Resolve {
    /// What to do (a mapping carries its NDC, a dismissal its note).
    pub decision: Decision,
    /// Who decides (recorded with the decision and in the audit).
    pub by: String,
    /// Why, in a few words, for the decisions that carry no note of their
    /// own (a dismissal's note is its decision's).
    pub note: Option<String>,
}

impl Resolve {
    /// The note recorded with the decision.
    fn note(&self) -> Option<&str> {
        self.decision.required_note().or(self.note.as_deref())
    }
}

/// Reads `exceptions.state` (column `at`) as an [`ExceptionState`].
pub(super) fn exception_state(r: &Row<'_>, at: usize) -> rusqlite::Result<ExceptionState> {
    let text: String = r.get(at)?;
    text.parse()
        .map_err(|_| super::bad_text(at, format!("exception state {text:?}")))
}

const SELECT_EXCEPTION: &str = "SELECT e.id, e.patient_id, e.kind, e.state, e.item_id, e.detail, e.severity,
    e.source, r.version, e.related_item_id, e.resolution, e.resolution_ndc, e.resolved_by, e.resolved_at,
    e.note, e.created_at, e.regimen_id
    FROM exceptions e LEFT JOIN regimens r ON r.id = e.regimen_id";

struct ExceptionRow {
    view: ExceptionView,
    item_id: Option<i64>,
    related_id: Option<i64>,
    regimen_id: Option<i64>,
}

fn row_to_exception(r: &Row<'_>) -> rusqlite::Result<ExceptionRow> {
    let kind: String = r.get(2)?;
    let actions = kind
        .parse::<ExceptionKind>()
        .map(|k| k.actions().iter().map(Action::as_str).collect())
        .unwrap_or_default();
    Ok(ExceptionRow {
        item_id: r.get(4)?,
        related_id: r.get(9)?,
        regimen_id: r.get(16)?,
        view: ExceptionView {
            id: r.get(0)?,
            patient: r.get(1)?,
            kind,
            state: exception_state(r, 3)?,
            item: None,
            detail: r.get(5)?,
            severity: r.get(6)?,
            source: r.get(7)?,
            regimen_version: r.get(8)?,
            related_item: None,
            resolution: r.get(10)?,
            resolution_ndc: r.get(11)?,
            resolved_by: r.get(12)?,
            resolved_at: r.get(13)?,
            note: r.get(14)?,
            created_at: r.get(15)?,
            actions,
        },
    })
}

impl Store {
    /// Exceptions matching the filter, newest first.
    pub fn exceptions(&self, f: &ExceptionFilter) -> Result<Vec<ExceptionView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_EXCEPTION} WHERE (CAST(?1 AS TEXT) IS NULL OR e.state = ?1) AND (CAST(?2 AS TEXT) IS NULL OR e.kind = ?2)
             AND (CAST(?3 AS TEXT) IS NULL OR e.patient_id = ?3) AND (CAST(?4 AS TEXT) IS NULL OR e.source = ?4)
             ORDER BY e.id DESC LIMIT ?5 OFFSET ?6"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    f.state.map(|s| s.as_str()),
                    f.kind.map(|k| k.as_str()),
                    f.patient,
                    f.source,
                    // No limit: the largest one (SQLite's -1 is refused by PostgreSQL).
                    f.limit.map_or(i64::MAX, |l| l as i64),
                    f.offset as i64
                ],
                row_to_exception,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|row| self.complete(row)).collect()
    }

    /// Every exception of one regimen version, whatever its state, oldest
    /// first (what a FHIR export shows: the open ones as issues, the
    /// closed ones as the decisions made).
    pub fn regimen_exceptions(&self, regimen_id: i64) -> Result<Vec<ExceptionView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_EXCEPTION} WHERE e.regimen_id = ?1 ORDER BY e.id"
        ))?;
        let rows = stmt
            .query_map([regimen_id], row_to_exception)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|row| self.complete(row)).collect()
    }

    /// A patient's exceptions that concern no one regimen (the findings
    /// across sources, `source_conflict`), oldest first.
    pub fn patient_exceptions(&self, patient: &str) -> Result<Vec<ExceptionView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_EXCEPTION} WHERE e.patient_id = ?1 AND e.regimen_id IS NULL ORDER BY e.id"
        ))?;
        let rows = stmt
            .query_map([patient], row_to_exception)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|row| self.complete(row)).collect()
    }

    /// How many exceptions match the filter, per kind (the filter's kind,
    /// limit and offset are ignored), by kind name.
    pub fn exception_counts(
        &self,
        f: &ExceptionFilter,
    ) -> Result<Vec<(String, usize)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.kind, COUNT(*) FROM exceptions e WHERE (CAST(?1 AS TEXT) IS NULL OR e.state = ?1)
             AND (CAST(?2 AS TEXT) IS NULL OR e.patient_id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR e.source = ?3)
             GROUP BY e.kind ORDER BY e.kind",
        )?;
        let rows = stmt
            .query_map(
                params![f.state.map(|s| s.as_str()), f.patient, f.source],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The open exception after `after` in the queue's order (newest
    /// first) among those the filter matches (its state, limit and offset
    /// are ignored), wrapping round to the newest; None when no other is open.
    pub fn next_open_exception(
        &self,
        f: &ExceptionFilter,
        after: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id FROM exceptions e WHERE e.state = 'open' AND e.id != ?4
             AND (CAST(?1 AS TEXT) IS NULL OR e.kind = ?1) AND (CAST(?2 AS TEXT) IS NULL OR e.patient_id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR e.source = ?3)
             ORDER BY e.id < ?4 DESC, e.id DESC LIMIT 1",
        )?;
        Ok(stmt
            .query_row(
                params![f.kind.map(|k| k.as_str()), f.patient, f.source, after],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// One exception with its item in full.
    pub fn exception(&self, id: i64) -> Result<(ExceptionView, Option<ItemView>), StoreError> {
        let row = self.exception_row(id)?;
        let item = row.item_id.map(|i| self.item(i)).transpose()?.flatten();
        Ok((self.complete(row)?, item))
    }

    /// The stored document an item was read from, and where its records
    /// are in that document's parse.
    pub fn item_document(&self, item_id: i64) -> Result<Option<ItemDocument>, StoreError> {
        let row: Option<(Vec<u8>, String, String, String)> = self
            .conn
            .query_row(
                "SELECT d.bytes, d.format, i.records, i.sources FROM items i JOIN regimens r ON r.id = i.regimen_id
                 JOIN documents d ON d.id = r.document_id WHERE i.id = ?1",
                [item_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(bytes, format, records, sources)| {
            let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
            let records = serde_json::from_str(&records).map_err(corrupt)?;
            let sources = serde_json::from_str(&sources).map_err(corrupt)?;
            Ok(ItemDocument {
                bytes,
                format,
                records,
                sources,
            })
        })
        .transpose()
    }

    /// The stored document an `unreadable_record` exception names, with
    /// the record's position in its parse's unreadable records.
    pub fn unreadable_record_document(
        &self,
        exception_id: i64,
    ) -> Result<Option<(Vec<u8>, String, usize)>, StoreError> {
        let row: Option<(Vec<u8>, String, i64)> = self
            .conn
            .query_row(
                "SELECT d.bytes, d.format, e.unreadable_record FROM exceptions e
                 JOIN documents d ON d.id = e.document_id
                 WHERE e.id = ?1 AND e.unreadable_record IS NOT NULL",
                [exception_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.and_then(|(bytes, format, k)| Some((bytes, format, usize::try_from(k).ok()?))))
    }

    fn exception_row(&self, id: i64) -> Result<ExceptionRow, StoreError> {
        exception_row_in(&self.conn, id)
    }

    fn complete(&self, row: ExceptionRow) -> Result<ExceptionView, StoreError> {
        let mut view = row.view;
        let brief = |id: Option<i64>| -> Result<Option<ItemRef>, StoreError> {
            let Some(id) = id else { return Ok(None) };
            Ok(self
                .conn
                .query_row(
                    "SELECT id, position, name, ndc11 FROM items WHERE id = ?1",
                    [id],
                    |r| {
                        Ok(ItemRef {
                            id: r.get(0)?,
                            position: r.get(1)?,
                            name: r.get(2)?,
                            ndc11: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        };
        view.item = brief(row.item_id)?;
        view.related_item = brief(row.related_id)?;
        Ok(view)
    }

    /// Applies a clinician's decision to an open exception: resolves it
    /// (map, remove, keep, accept: each only where it fits the kind) or
    /// dismisses it.
    pub fn resolve_exception(
        &mut self,
        id: i64,
        decision: &Resolve,
    ) -> Result<ExceptionView, StoreError> {
        let Some(action) = decision.decision.action() else {
            return self.dismiss_exception(id, &decision.by, decision.note().unwrap_or(""));
        };
        let at = now();
        // IMMEDIATE: the row is read, checked and changed under the write
        // lock, so a concurrent decision on the same exception waits and
        // then finds it closed.
        let tx = self.tx()?;
        let row = exception_row_in(&tx, id)?;
        check_open(&row)?;
        let kind: ExceptionKind = row.view.kind.parse().map_err(StoreError::Corrupt)?;
        // What reversing this decision restores (see `reversal`).
        let mut undo = serde_json::json!({});
        if !kind.actions().contains(&action) {
            let allowed: Vec<&str> = kind.actions().iter().map(Action::as_str).collect();
            return Err(StoreError::Refused(format!(
                "action {} does not fit a {} exception (allowed: {}, or dismiss)",
                action.as_str(),
                kind,
                allowed.join(", ")
            )));
        }
        if let Decision::Confirm { note } | Decision::Reject { note } = &decision.decision {
            // A decision on the link, not on an item: recorded with the
            // link (`link.confirm` / `link.reject`), and not reversible here.
            let link: crate::domain::LinkId = tx
                .query_row(
                    "SELECT id FROM links WHERE patient_id = ?1 AND provider = ?2 AND state = 'held'",
                    params![row.view.patient, row.view.source],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| {
                    StoreError::Refused(format!(
                        "exception {id}: no held link of patient {} to {}",
                        row.view.patient, row.view.source
                    ))
                })?;
            super::identity::decide_held_in(
                &tx,
                link,
                &decision.by,
                note,
                matches!(decision.decision, Decision::Confirm { .. }),
            )?;
            tx.commit()?;
            return Ok(self.exception(id)?.0);
        }
        match &decision.decision {
            Decision::Confirm { .. } | Decision::Reject { .. } => {}
            Decision::Map(ndc) => {
                undo = map_item(&tx, &row, kind, *ndc, decision, id, &at)?;
            }
            Decision::Remove => {
                let item_id = row.item_id.ok_or_else(|| {
                    StoreError::Refused(format!("exception {id} concerns no item to remove"))
                })?;
                let removed = tx.execute(
                    "UPDATE items SET removed_at = ?1, removed_by = ?2 WHERE id = ?3 AND removed_at IS NULL",
                    params![at, decision.by, item_id],
                )?;
                let closed: Vec<i64> = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT id FROM exceptions WHERE state = 'open' AND id != ?1 AND item_id = ?2 ORDER BY id",
                    )?;
                    stmt.query_map(params![id, item_id], |r| r.get(0))?
                        .collect::<Result<_, _>>()?
                };
                undo = serde_json::json!({
                    "removed_item": (removed == 1).then_some(item_id), "closed": closed,
                });
                // The item's own other exceptions lose their subject: close
                // them, saying why. Exceptions of other items that merely
                // point at it (a later repeat's `duplicate`) stay open: that
                // item is still a duplicate a clinician has to decide on.
                tx.execute(
                    "UPDATE exceptions SET state = 'resolved', resolution = 'remove', resolved_by = ?1, resolved_at = ?2,
                     note = ?3 WHERE state = 'open' AND id != ?4 AND item_id = ?5",
                    params![decision.by, at, format!("item removed by exception {id}"), id, item_id],
                )?;
            }
            Decision::Keep | Decision::Accept | Decision::Dismiss { .. } => {}
        }
        let ndc = decision.decision.ndc();
        let changed = tx.execute(
            "UPDATE exceptions SET state = 'resolved', resolution = ?1, resolution_ndc = ?2, resolved_by = ?3,
             resolved_at = ?4, note = ?5 WHERE id = ?6 AND state = 'open'",
            params![
                action.as_str(),
                ndc.map(|n| n.to_string()),
                decision.by,
                at,
                decision.note(),
                id
            ],
        )?;
        if changed != 1 {
            return Err(not_open_any_more(id));
        }
        super::reversal::record(&tx, id, action.as_str(), &decision.by, &at, &undo)?;
        finish(
            &tx,
            &row,
            &decision.by,
            &format!("exception.{}", action.as_str()),
            &serde_json::json!({
                "exception": id, "kind": kind.as_str(), "ndc11": ndc.map(|n| n.to_string()), "note": decision.note(),
            }),
        )?;
        tx.commit()?;
        Ok(self.exception(id)?.0)
    }

    /// Dismisses an open exception with a note (`Decision::Dismiss`).
    fn dismiss_exception(
        &mut self,
        id: i64,
        by: &str,
        note: &str,
    ) -> Result<ExceptionView, StoreError> {
        if note.trim().is_empty() {
            return Err(StoreError::Refused(
                "dismissing needs a note saying why".to_string(),
            ));
        }
        let tx = self.tx()?;
        let row = exception_row_in(&tx, id)?;
        check_open(&row)?;
        if row.view.kind == ExceptionKind::IdentityMismatch.as_str() {
            return Err(StoreError::Refused(format!(
                "exception {id} holds a link: confirm or reject the link, it cannot be dismissed"
            )));
        }
        let at = now();
        let changed = tx.execute(
            "UPDATE exceptions SET state = 'dismissed', resolution = NULL, resolution_ndc = NULL, resolved_by = ?1,
             resolved_at = ?2, note = ?3 WHERE id = ?4 AND state = 'open'",
            params![by, at, note, id],
        )?;
        if changed != 1 {
            return Err(not_open_any_more(id));
        }
        super::reversal::record(&tx, id, "dismiss", by, &at, &serde_json::json!({}))?;
        finish(
            &tx,
            &row,
            by,
            "exception.dismiss",
            &serde_json::json!({"exception": id, "note": note}),
        )?;
        tx.commit()?;
        Ok(self.exception(id)?.0)
    }
}

fn exception_row_in(conn: &Conn, id: i64) -> Result<ExceptionRow, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_EXCEPTION} WHERE e.id = ?1"))?;
    stmt.query_row([id], row_to_exception)
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: "exception",
            id: id.to_string(),
        })
}

fn not_open_any_more(id: i64) -> StoreError {
    StoreError::Refused(format!(
        "exception {id} is no longer open (another decision closed it first)"
    ))
}

fn check_open(row: &ExceptionRow) -> Result<(), StoreError> {
    if row.view.state != ExceptionState::Open {
        return Err(StoreError::Refused(format!(
            "exception {} is already {} (by {})",
            row.view.id,
            row.view.state,
            row.view.resolved_by.as_deref().unwrap_or("unknown")
        )));
    }
    Ok(())
}

/// Maps the item to an NDC the dictionary knows, remembers the decision
/// under the codes that caused the exception so later imports apply it,
/// and checks the regimen again for duplicates the new NDC makes.
fn map_item(
    tx: &Conn,
    row: &ExceptionRow,
    kind: ExceptionKind,
    ndc: Ndc11,
    d: &Resolve,
    id: i64,
    at: &str,
) -> Result<serde_json::Value, StoreError> {
    let item_id = row
        .item_id
        .ok_or_else(|| StoreError::Refused(format!("exception {id} concerns no item to map")))?;
    let product: Option<(String, bool)> = tx
        .query_row(
            "SELECT p.proprietary_name, p.excluded FROM dict_packages k JOIN dict_products p ON p.product_id = k.product_id
             WHERE k.ndc11 = ?1",
            [ndc.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match product {
        None => {
            return Err(StoreError::Refused(format!(
                "NDC {} is not in the drug dictionary{}",
                ndc.hyphenated(),
                Store::sample_note_in(tx)?
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )));
        }
        Some((_, true)) => {
            return Err(StoreError::Refused(format!(
                "NDC {} is excluded from the FDA NDC Directory (NDC_EXCLUDE_FLAG=E)",
                ndc.hyphenated()
            )));
        }
        Some(_) => {}
    }
    // An item without a product of its own stores the strength and form
    // its records stated (see `normalize::stated_strength`): the same text
    // normalization keys decisions by.
    let (codes, ingredient_codes, name, strength, form): StatedRow = tx.query_row(
        "SELECT codes, ingredient_codes, name, strength, form FROM items WHERE id = ?1",
        [item_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let parse_codes = |text: &str| {
        serde_json::from_str::<Vec<Code>>(text).map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    let keys = decision_keys(
        kind,
        &parse_codes(&codes)?,
        &parse_codes(&ingredient_codes)?,
        Stated {
            name: name.as_deref(),
            strength: strength.as_deref(),
            form: form.as_deref(),
        },
    );
    let mapping = serde_json::json!({
        "ndc11": ndc.as_str(), "decided_by": d.by, "decided_at": at, "exception_id": id, "note": d.note(),
    });
    let (before_ndc, before_mapping): (Option<String>, Option<String>) = tx.query_row(
        "SELECT ndc11, mapping FROM items WHERE id = ?1",
        [item_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut previous_mappings = Vec::with_capacity(keys.len());
    tx.execute(
        "UPDATE items SET ndc11 = ?1, mapping = ?2 WHERE id = ?3",
        params![ndc.as_str(), mapping.to_string(), item_id],
    )?;
    for (system, code) in keys {
        // The object is built here, not by SQLite's json_object (which
        // PostgreSQL does not have).
        let previous: Option<serde_json::Value> = tx
            .query_row(
                "SELECT ndc11, decided_by, decided_at, exception_id, note FROM code_mappings
                 WHERE source = ?1 AND system = ?2 AND code = ?3",
                params![row.view.source, system, code],
                |r| {
                    Ok(serde_json::json!({
                        "ndc11": r.get::<_, String>(0)?,
                        "decided_by": r.get::<_, String>(1)?,
                        "decided_at": r.get::<_, String>(2)?,
                        "exception_id": r.get::<_, Option<i64>>(3)?,
                        "note": r.get::<_, Option<String>>(4)?,
                    }))
                },
            )
            .optional()?;
        previous_mappings.push(serde_json::json!({
            "source": row.view.source, "system": system, "code": code, "previous": previous,
        }));
        tx.execute(
            "INSERT INTO code_mappings (source, system, code, ndc11, decided_by, decided_at, exception_id, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (source, system, code) DO UPDATE SET ndc11 = excluded.ndc11, decided_by = excluded.decided_by,
             decided_at = excluded.decided_at, exception_id = excluded.exception_id, note = excluded.note",
            params![row.view.source, system, code, ndc.as_str(), d.by, at, id, d.note()],
        )?;
    }
    let opened = recheck_duplicates(tx, item_id, at)?;
    Ok(serde_json::json!({
        "item": {"id": item_id, "ndc11": before_ndc, "mapping": before_mapping},
        "mappings": previous_mappings,
        "opened": opened,
    }))
}

/// An item's codes, ingredient codes, name, strength and form, as stored.
type StatedRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// An item row as read for duplicate detection: id, position, NDC-11 (else
/// a new labeler's 12-digit NDC), name, codes JSON.
type InForceRow = (i64, usize, Option<String>, Option<String>, String);

/// One stored item in force, as duplicate detection needs it.
struct InForce {
    id: i64,
    position: usize,
    ndc: Option<Ndc12>,
    name: Option<String>,
    codes: Vec<Code>,
    entry: Option<crate::dict::DictEntry>,
}

/// After `item_id` got a new NDC: runs duplicate detection over its
/// regimen's items in force (not removed), in position order, and opens an
/// exception for every duplicate that involves the item, unless the same
/// one (kind, item, related item) is already open. Written before the
/// caller's `reviewed` check, so the regimen stays `needs_review`.
/// Returns the ids of the exceptions it opened.
fn recheck_duplicates(tx: &Conn, item_id: i64, at: &str) -> Result<Vec<i64>, StoreError> {
    let (regimen_id, patient, source, document_id): (i64, String, String, i64) = tx.query_row(
        "SELECT r.id, r.patient_id, r.source, r.document_id FROM items i JOIN regimens r ON r.id = i.regimen_id
         WHERE i.id = ?1",
        [item_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let rows: Vec<InForceRow> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, position, COALESCE(ndc11, ndc12), name, codes FROM items WHERE regimen_id = ?1 AND removed_at IS NULL
             ORDER BY position",
        )?;
        stmt.query_map([regimen_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut items = Vec::with_capacity(rows.len());
    for (id, position, ndc_text, name, codes) in rows {
        let ndc = ndc_text
            .map(|t| {
                let read = match t.len() {
                    11 => Ndc11::from_digits(&t).map(|n| n.to_ndc12()),
                    _ => Ndc12::from_digits(&t),
                };
                read.map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .transpose()?;
        let codes: Vec<Code> =
            serde_json::from_str(&codes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let entry = ndc
            .as_ref()
            .map(|n| Store::entry_in(tx, n))
            .transpose()?
            .flatten();
        items.push(InForce {
            id,
            position,
            ndc,
            name,
            codes,
            entry,
        });
    }
    let dup_items: Vec<DupItem<'_>> = items
        .iter()
        .map(|i| DupItem {
            position: i.position,
            ndc: i.ndc,
            name: i.name.as_deref(),
            product: i.entry.as_ref(),
            codes: &i.codes,
        })
        .collect();
    let Some(mapped) = items.iter().position(|i| i.id == item_id) else {
        // A removed item's NDC changes no regimen in force.
        return Ok(Vec::new());
    };
    // The store has no configuration at hand, so the class level runs with
    // the default `[import] therapeutic_class_exclusions`: the same list an
    // import uses unless the operator configured another.
    let exclusions = Options::default().therapeutic_class_exclusions;
    let snapshot = Store::snapshot_in(tx)?;
    let rule = ClassRule::new(&exclusions, snapshot.as_deref());
    let mut opened = Vec::new();
    let mut exists = tx.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM exceptions WHERE state = 'open' AND kind = ?1 AND item_id IS NOT DISTINCT FROM ?2
         AND related_item_id IS NOT DISTINCT FROM ?3)",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO exceptions (patient_id, regimen_id, item_id, related_item_id, document_id, source, kind,
         severity, state, detail, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', ?9, ?10) RETURNING id",
    )?;
    for flag in find_duplicates(&dup_items, &rule) {
        if flag.item != Some(mapped) && flag.related != Some(mapped) {
            continue;
        }
        let item = flag.item.and_then(|i| items.get(i)).map(|i| i.id);
        let related = flag.related.and_then(|i| items.get(i)).map(|i| i.id);
        let open: bool =
            exists.query_row(params![flag.kind.as_str(), item, related], |r| r.get(0))?;
        if open {
            continue;
        }
        let inserted: i64 = insert.query_row(
            params![
                patient,
                regimen_id,
                item,
                related,
                document_id,
                source,
                flag.kind.as_str(),
                flag.kind.severity().as_str(),
                flag.detail,
                at
            ],
            |r| r.get(0),
        )?;
        opened.push(inserted);
    }
    Ok(opened)
}

/// Audits a decision and marks the regimen reviewed when nothing is open.
fn finish(
    tx: &Conn,
    row: &ExceptionRow,
    by: &str,
    action: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    super::audit::append(
        tx,
        by,
        action,
        Some(&row.view.patient),
        Some(&format!("exception/{}", row.view.id)),
        detail,
    )?;
    if let Some(regimen_id) = row.regimen_id {
        tx.execute(
            "UPDATE regimens SET status = 'reviewed', reviewed_at = ?1 WHERE id = ?2 AND status = 'needs_review'
             AND NOT EXISTS (SELECT 1 FROM exceptions WHERE regimen_id = ?2 AND state = 'open')",
            params![now(), regimen_id],
        )?;
    }
    Ok(())
}
