//! FHIR Bulk Data exports: the run (`exports`) and the files of its
//! manifest (`export_files`), so that an interrupted export resumes from its
//! status URL and manifest, and a file imported once is never imported again.
//! Each call is one short transaction, with an audit row where it changes
//! what an export is.

use super::db::Row;
use super::{Store, StoreError, now};
use crate::domain::ProviderId;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    /// Recorded; the kick-off has not answered yet.
    Starting,
    /// Kicked off: polling the status URL.
    InProgress,
    /// The manifest is stored: downloading and importing its files.
    Downloading,
    Completed,
    /// Stopped by an error; `resume` carries on from where it stopped.
    Failed,
    Cancelled,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportState::Starting => "starting",
            ExportState::InProgress => "in_progress",
            ExportState::Downloading => "downloading",
            ExportState::Completed => "completed",
            ExportState::Failed => "failed",
            ExportState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<ExportState, StoreError> {
        Ok(match s {
            "starting" => ExportState::Starting,
            "in_progress" => ExportState::InProgress,
            "downloading" => ExportState::Downloading,
            "completed" => ExportState::Completed,
            "failed" => ExportState::Failed,
            "cancelled" => ExportState::Cancelled,
            other => return Err(StoreError::Corrupt(format!("export state {other:?}"))),
        })
    }

    /// Whether the export may still be resumed (or cancelled).
    pub fn is_open(self) -> bool {
        !matches!(self, ExportState::Completed | ExportState::Cancelled)
    }
}

/// An export to record.
#[derive(Debug, Clone)]
pub struct NewExport<'a> {
    pub provider: &'a ProviderId,
    pub level: &'a str,
    pub group: Option<&'a str>,
    pub kickoff_url: &'a str,
    pub since: Option<&'a str>,
}

/// One export as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow {
    pub id: i64,
    pub provider: ProviderId,
    pub level: String,
    pub group: Option<String>,
    pub kickoff_url: String,
    pub since: Option<String>,
    pub status_url: Option<String>,
    pub requested_at: String,
    pub transaction_time: Option<String>,
    pub requires_token: Option<bool>,
    #[serde(skip)]
    pub manifest: Option<String>,
    pub state: ExportState,
    pub progress: Option<String>,
    pub error: Option<String>,
    pub deleted_at: Option<String>,
    pub completed_at: Option<String>,
}

/// One file of an export's manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ExportFileRow {
    pub n: i64,
    /// `output` or `error`.
    pub kind: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub url: String,
    pub path: String,
    pub bytes: Option<i64>,
    pub downloaded_at: Option<String>,
    pub imported_at: Option<String>,
    pub import_note: Option<String>,
    pub error: Option<String>,
}

const EXPORT_COLUMNS: &str =
    "id, provider, level, group_id, kickoff_url, since, status_url, requested_at,
    transaction_time, requires_token, manifest, state, progress, error, deleted_at, completed_at";

fn export_row(r: &Row<'_>) -> rusqlite::Result<(ExportRow, String)> {
    Ok((
        ExportRow {
            id: r.get(0)?,
            provider: r.get(1)?,
            level: r.get(2)?,
            group: r.get(3)?,
            kickoff_url: r.get(4)?,
            since: r.get(5)?,
            status_url: r.get(6)?,
            requested_at: r.get(7)?,
            transaction_time: r.get(8)?,
            requires_token: r.get::<_, Option<i64>>(9)?.map(|v| v != 0),
            manifest: r.get(10)?,
            state: ExportState::Starting,
            progress: r.get(12)?,
            error: r.get(13)?,
            deleted_at: r.get(14)?,
            completed_at: r.get(15)?,
        },
        r.get(11)?,
    ))
}

fn with_state((mut row, state): (ExportRow, String)) -> Result<ExportRow, StoreError> {
    row.state = ExportState::parse(&state)?;
    Ok(row)
}

impl Store {
    /// Records a new export (`starting`). Refused while the provider has an
    /// unfinished one: one export at a time per provider.
    pub fn create_export(&mut self, e: &NewExport<'_>, actor: &str) -> Result<i64, StoreError> {
        let tx = self.tx()?;
        let open: Option<i64> = tx
            .query_row(
                "SELECT id FROM exports WHERE provider = ?1 AND state IN ('starting', 'in_progress', 'downloading')",
                [e.provider],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = open {
            return Err(StoreError::Conflict(format!(
                "provider {} already has export {id} under way (rxsync export resume or cancel)",
                e.provider
            )));
        }
        let inserted: i64 = tx.query_row(
            "INSERT INTO exports (provider, level, group_id, kickoff_url, since, requested_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'starting') RETURNING id",
            params![e.provider, e.level, e.group, e.kickoff_url, e.since, now()],
            |r| r.get(0),
        )?;
        let id = inserted;
        super::audit::append(
            &tx,
            actor,
            "export_start",
            None,
            Some(e.provider.as_str()),
            &serde_json::json!({"export": id, "level": e.level, "since": e.since}),
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// One export.
    pub fn export(&self, id: i64) -> Result<ExportRow, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE id = ?1"),
                [id],
                export_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: "export",
                id: id.to_string(),
            })?;
        with_state(row)
    }

    /// A provider's exports, newest first.
    pub fn exports(
        &self,
        provider: &ProviderId,
        limit: usize,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EXPORT_COLUMNS} FROM exports WHERE provider = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![provider, limit as i64], export_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(with_state).collect()
    }

    /// The provider's newest export that may be resumed.
    pub fn open_export(&self, provider: &ProviderId) -> Result<Option<ExportRow>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {EXPORT_COLUMNS} FROM exports WHERE provider = ?1
                     AND state NOT IN ('completed', 'cancelled') ORDER BY id DESC LIMIT 1"
                ),
                [provider],
                export_row,
            )
            .optional()?;
        row.map(with_state).transpose()
    }

    /// The `transactionTime` of the provider's last completed export: the
    /// next export's default `_since`.
    pub fn last_export_time(&self, provider: &ProviderId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT transaction_time FROM exports WHERE provider = ?1 AND state = 'completed'
                 AND transaction_time IS NOT NULL ORDER BY id DESC LIMIT 1",
                [provider],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// When the provider's last export (of any outcome) was requested: the
    /// daemon's schedule reads it.
    pub fn last_export_requested(
        &self,
        provider: &ProviderId,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT requested_at FROM exports WHERE provider = ?1 ORDER BY id DESC LIMIT 1",
                [provider],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The kick-off answered: its status URL (`in_progress`).
    pub fn export_kicked_off(&mut self, id: i64, status_url: &str) -> Result<(), StoreError> {
        self.update_export(
            id,
            "UPDATE exports SET status_url = ?2, state = 'in_progress', error = NULL WHERE id = ?1",
            &status_url,
        )
    }

    /// The last `X-Progress` seen.
    pub fn export_progress(&mut self, id: i64, progress: &str) -> Result<(), StoreError> {
        self.update_export(
            id,
            "UPDATE exports SET progress = ?2 WHERE id = ?1",
            &progress,
        )
    }

    /// The manifest arrived: it and its files, in one transaction
    /// (`downloading`). `files` are (kind, type, url, path).
    pub fn export_manifest(
        &mut self,
        id: i64,
        manifest_json: &str,
        transaction_time: &str,
        requires_token: bool,
        files: &[(&str, &str, &str, String)],
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        tx.execute(
            "UPDATE exports SET manifest = ?2, transaction_time = ?3, requires_token = ?4,
             state = 'downloading', error = NULL WHERE id = ?1",
            params![id, manifest_json, transaction_time, requires_token as i64],
        )?;
        for (n, (kind, ty, url, path)) in files.iter().enumerate() {
            tx.execute(
                "INSERT INTO export_files (export_id, n, kind, type, url, path) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, n as i64, kind, ty, url, path],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// An export's files, in manifest order.
    pub fn export_files(&self, id: i64) -> Result<Vec<ExportFileRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT n, kind, type, url, path, bytes, downloaded_at, imported_at, import_note, error
             FROM export_files WHERE export_id = ?1 ORDER BY n",
        )?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(ExportFileRow {
                    n: r.get(0)?,
                    kind: r.get(1)?,
                    resource_type: r.get(2)?,
                    url: r.get(3)?,
                    path: r.get(4)?,
                    bytes: r.get(5)?,
                    downloaded_at: r.get(6)?,
                    imported_at: r.get(7)?,
                    import_note: r.get(8)?,
                    error: r.get(9)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// A file is on disk, whole.
    pub fn export_file_downloaded(
        &mut self,
        id: i64,
        n: i64,
        bytes: u64,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        tx.execute(
            "UPDATE export_files SET bytes = ?3, downloaded_at = ?4, error = NULL WHERE export_id = ?1 AND n = ?2",
            params![id, n, bytes as i64, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The outcome of handing a file to the importer: `imported` marks it
    /// done for good; otherwise only the note (or error) is kept.
    pub fn export_file_outcome(
        &mut self,
        id: i64,
        n: i64,
        imported: bool,
        note: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        tx.execute(
            "UPDATE export_files SET imported_at = CASE WHEN ?3 THEN ?4 ELSE imported_at END,
             import_note = ?5, error = ?6 WHERE export_id = ?1 AND n = ?2",
            params![id, n, imported, now(), note, error],
        )?;
        if imported {
            super::audit::append(
                &tx,
                "export",
                "export_file_imported",
                None,
                None,
                &serde_json::json!({"export": id, "file": n}),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The export stopped with an error (`failed`, resumable).
    pub fn export_failed(&mut self, id: i64, error: &str) -> Result<(), StoreError> {
        self.update_export(
            id,
            "UPDATE exports SET state = 'failed', error = ?2 WHERE id = ?1",
            &error,
        )
    }

    /// A failed export is taken up again: its state goes back to where the
    /// stored facts say it was.
    pub fn export_resumed(&mut self, id: i64) -> Result<ExportState, StoreError> {
        let tx = self.tx()?;
        let (status_url, manifest): (Option<String>, Option<String>) = tx.query_row(
            "SELECT status_url, manifest FROM exports WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let state = match (status_url, manifest) {
            (_, Some(_)) => ExportState::Downloading,
            (Some(_), None) => ExportState::InProgress,
            (None, None) => ExportState::Starting,
        };
        tx.execute(
            "UPDATE exports SET state = ?2 WHERE id = ?1 AND state NOT IN ('completed', 'cancelled')",
            params![id, state.as_str()],
        )?;
        tx.commit()?;
        Ok(state)
    }

    /// The status URL was DELETEd.
    pub fn export_deleted(&mut self, id: i64) -> Result<(), StoreError> {
        let at = now();
        self.update_export(id, "UPDATE exports SET deleted_at = ?2 WHERE id = ?1", &at)
    }

    /// The export is finished (`completed` or `cancelled`), audited.
    pub fn export_finished(
        &mut self,
        id: i64,
        state: ExportState,
        actor: &str,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        tx.execute(
            "UPDATE exports SET state = ?2, completed_at = ?3, error = NULL WHERE id = ?1",
            params![id, state.as_str(), now()],
        )?;
        super::audit::append(
            &tx,
            actor,
            if state == ExportState::Cancelled {
                "export_cancel"
            } else {
                "export_complete"
            },
            None,
            None,
            &serde_json::json!({"export": id}),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn update_export(
        &mut self,
        id: i64,
        sql: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let n = tx.execute(sql, params![id, value])?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "export",
                id: id.to_string(),
            });
        }
        tx.commit()?;
        Ok(())
    }
}
