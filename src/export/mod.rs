//! The FHIR Bulk Data export use case: kick-off, polling, downloads, the
//! hand-over of each file to an importer, and the final `DELETE` — every
//! step recorded in the store first, so that an export interrupted at any
//! point (a SIGKILL included) is resumed from its stored status URL and
//! manifest without a new kick-off, and a file imported once is never
//! imported again.
//!
//! The protocol is `fetch::bulk`'s; the importer is an `ExportSink` passed
//! in (`BulkSink`: the NDJSON bulk importer, over all output files at once,
//! `sink.rs`). `schedule.rs` is the daemon's pure "is it due" rule.
//! This module holds no `reqwest` type and writes no SQL.

use crate::config::{BulkLevel, Provider, ProviderAuth};
use crate::fetch::auth::redact;
use crate::fetch::backend::{AssertionKey, BackendClient, BackendError};
use crate::fetch::bulk::{BulkClient, BulkError, Manifest, Status, kickoff_url};
use crate::store::{ExportFileRow, ExportRow, ExportState, NewExport, Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use url::Url;

mod schedule;
mod sink;

pub use schedule::{export_due, next_export_at};
pub use sink::{
    AwaitingBulkImport, BulkSink, ExportSink, FileOutcome, count_ndjson, error_file_issues,
};

/// How long one run polls a status URL before it stops (the export stays
/// `in_progress` for a later `resume`).
pub const MAX_POLLING: Duration = Duration::from_secs(6 * 3600);

/// Why an export could not go on. Never carries a key or a token.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The provider is not set up for bulk export.
    #[error("provider {provider}: {detail}")]
    Config { provider: String, detail: String },
    #[error(transparent)]
    Token(#[from] BackendError),
    #[error(transparent)]
    Bulk(#[from] BulkError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Some files failed (named in `export status`); `resume` retries them.
    #[error(
        "export {id}: {failed} file(s) could not be downloaded or imported (rxsync export resume retries them)"
    )]
    Files { id: i64, failed: usize },
    #[error(
        "export {id}: the status URL still answered \"in progress\" after {secs} s; rxsync export resume polls again"
    )]
    StillRunning { id: i64, secs: u64 },
    /// The provider no longer knows the export (its status URL answered 404 or 410).
    #[error(
        "export {id}: the provider no longer knows it (the status URL answered {status}); rxsync export cancel, then start a new one"
    )]
    Expired { id: i64, status: u16 },
    #[error("export {id} is {state}: nothing to resume")]
    NotOpen { id: i64, state: &'static str },
    #[error("cannot prepare the export folder {path}: {detail}")]
    Folder { path: String, detail: String },
}

/// A provider's exporter.
pub struct Exporter {
    provider: Provider,
    client: BulkClient,
    /// `<database dir>/exports`: one folder per export.
    folder: PathBuf,
    /// The most bytes one file may have (the provider's `max_document_bytes`).
    file_limit: u64,
}

impl Exporter {
    /// An exporter for a provider with `[providers.bulk]` and backend-services auth.
    /// Reads the private key now, so a bad key fails before any request.
    pub fn new(provider: &Provider, database_path: &Path) -> Result<Exporter, ExportError> {
        let cfg = |detail: &str| ExportError::Config {
            provider: provider.id.as_str().to_string(),
            detail: detail.to_string(),
        };
        if provider.bulk.is_none() {
            return Err(cfg("has no [providers.bulk] table"));
        }
        let ProviderAuth::Oauth2(o) = &provider.auth else {
            return Err(cfg(
                "bulk export needs scheme = \"oauth2\" with grant = \"client_credentials\"",
            ));
        };
        let Some(key) = &o.private_key_jwt else {
            return Err(cfg(
                "bulk export needs client_auth = \"private_key_jwt\" (SMART Backend Services)",
            ));
        };
        let (Some(client_id), Some(token_url)) = (&o.client_id, &o.token_url) else {
            return Err(cfg(
                "bulk export needs auth.client_id and auth.token_url (discovered endpoints and registered clients are for patient links)",
            ));
        };
        let backend = BackendClient::new(client_id, token_url, &o.scopes, AssertionKey::load(key)?);
        let folder = database_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("exports");
        Ok(Exporter {
            client: BulkClient::new(provider, backend)?,
            provider: provider.clone(),
            folder,
            file_limit: provider.limits.max_document_bytes,
        })
    }

    fn id(&self) -> &str {
        self.provider.id.as_str()
    }

    /// Starts a new export (`since`: `None` = the last completed export's
    /// `transactionTime`; `group` overrides the configured level) and runs it to the end.
    pub async fn start(
        &self,
        store: &mut Store,
        sink: &mut dyn ExportSink,
        since: Option<String>,
        group: Option<String>,
        actor: &str,
    ) -> Result<i64, (Option<i64>, ExportError)> {
        let level = match group {
            Some(g) => BulkLevel::Group(g),
            None => self
                .provider
                .bulk
                .as_ref()
                .map_or(BulkLevel::System, |b| b.level.clone()),
        };
        let since = match since {
            Some(s) => Some(s),
            None => store
                .last_export_time(&self.provider.id)
                .map_err(|e| (None, e.into()))?,
        };
        let url = kickoff_url(&self.provider.base_url, &level, since.as_deref());
        let group_id = match &level {
            BulkLevel::Group(g) => Some(g.as_str()),
            _ => None,
        };
        let id = store
            .create_export(
                &NewExport {
                    provider: &self.provider.id,
                    level: level.as_str(),
                    group: group_id,
                    kickoff_url: &redact(&url),
                    since: since.as_deref(),
                },
                actor,
            )
            .map_err(|e| (None, e.into()))?;
        self.drive(store, sink, id)
            .await
            .map_err(|e| (Some(id), e))?;
        Ok(id)
    }

    /// Carries on with an unfinished export from what the store holds.
    pub async fn resume(
        &self,
        store: &mut Store,
        sink: &mut dyn ExportSink,
        id: i64,
    ) -> Result<(), ExportError> {
        let row = store.export(id)?;
        if !row.state.is_open() {
            return Err(ExportError::NotOpen {
                id,
                state: row.state.as_str(),
            });
        }
        store.export_resumed(id)?;
        self.drive(store, sink, id).await
    }

    /// Cancels an unfinished export: `DELETE` of its status URL (when it
    /// has one), then `cancelled`. Downloaded files stay on disk.
    pub async fn cancel(&self, store: &mut Store, id: i64, actor: &str) -> Result<(), ExportError> {
        let row = store.export(id)?;
        if !row.state.is_open() {
            return Err(ExportError::NotOpen {
                id,
                state: row.state.as_str(),
            });
        }
        if let Some(status) = row.status_url.as_deref().and_then(|u| Url::parse(u).ok()) {
            self.client.delete(&status).await?;
            store.export_deleted(id)?;
        }
        store.export_finished(id, ExportState::Cancelled, actor)?;
        Ok(())
    }

    /// Runs an export from its stored state to the end, recording why it
    /// stopped when it does.
    async fn drive(
        &self,
        store: &mut Store,
        sink: &mut dyn ExportSink,
        id: i64,
    ) -> Result<(), ExportError> {
        let result = self.steps(store, sink, id).await;
        if let Err(e) = &result {
            // The error itself is what the caller reports; recording it may
            // fail too (the store is what failed), and then the first error wins.
            let _ = store.export_failed(id, &e.to_string());
        }
        result
    }

    async fn steps(
        &self,
        store: &mut Store,
        sink: &mut dyn ExportSink,
        id: i64,
    ) -> Result<(), ExportError> {
        let mut row = store.export(id)?;
        if row.status_url.is_none() {
            // Not kicked off yet (or killed before the 202 was recorded: the
            // server may then run an orphan export, which it expires).
            let url = Url::parse(&row.kickoff_url).map_err(|e| ExportError::Config {
                provider: self.id().to_string(),
                detail: format!("stored kick-off URL: {e}"),
            })?;
            let mut trail = Vec::new();
            let status = self.client.kick_off(&url, &mut trail).await?;
            tracing::info!(provider = self.id(), export = id, status_url = %redact(&status), "export kicked off");
            store.export_kicked_off(id, status.as_str())?;
            row = store.export(id)?;
        }
        if row.manifest.is_none() {
            let status = row
                .status_url
                .as_deref()
                .and_then(|u| Url::parse(u).ok())
                .ok_or_else(|| ExportError::Config {
                    provider: self.id().to_string(),
                    detail: "the stored status URL is not a URL".into(),
                })?;
            let manifest = match self.poll(store, id, &status).await {
                Err(ExportError::Bulk(e)) if e.is_gone() => {
                    let status = match e {
                        BulkError::Status { status, .. } => status,
                        _ => 404,
                    };
                    return Err(ExportError::Expired { id, status });
                }
                other => other?,
            };
            self.record_manifest(store, id, &manifest)?;
            row = store.export(id)?;
        }
        let failed = self.files(store, sink, &row).await?;
        if failed > 0 {
            return Err(ExportError::Files { id, failed });
        }
        if row.deleted_at.is_none()
            && let Some(status) = row.status_url.as_deref().and_then(|u| Url::parse(u).ok())
        {
            // The files are ours now: the server may discard them.
            match self.client.delete(&status).await {
                Ok(()) => store.export_deleted(id)?,
                Err(e) => {
                    tracing::warn!(provider = self.id(), export = id, error = %e, "the DELETE of the status URL failed; the server will expire the export")
                }
            }
        }
        store.export_finished(id, ExportState::Completed, "export")?;
        Ok(())
    }

    /// Polls until the manifest, obeying `Retry-After` (bounded) and logging `X-Progress`.
    async fn poll(
        &self,
        store: &mut Store,
        id: i64,
        status: &Url,
    ) -> Result<Manifest, ExportError> {
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            let mut trail = Vec::new();
            match self.client.status(status, polls, &mut trail).await? {
                Status::Complete(m) => return Ok(m),
                Status::InProgress { wait, progress } => {
                    if let Some(p) = &progress {
                        tracing::info!(provider = self.id(), export = id, progress = %p, "export in progress");
                        store.export_progress(id, p)?;
                    }
                    if started.elapsed() + wait > MAX_POLLING {
                        return Err(ExportError::StillRunning {
                            id,
                            secs: MAX_POLLING.as_secs(),
                        });
                    }
                    polls += 1;
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn record_manifest(&self, store: &mut Store, id: i64, m: &Manifest) -> Result<(), ExportError> {
        let dir = self.folder.join(id.to_string());
        let mut files = Vec::new();
        for (kind, list) in [("output", &m.output), ("error", &m.error)] {
            for f in list {
                let n = files.len();
                let safe: String = f
                    .kind
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(64)
                    .collect();
                let path = dir.join(format!("{n}-{safe}.ndjson"));
                files.push((
                    kind,
                    f.kind.as_str(),
                    f.url.as_str(),
                    path.display().to_string(),
                ));
            }
        }
        let json = serde_json::to_string(m).unwrap_or_default();
        store.export_manifest(
            id,
            &json,
            &m.transaction_time,
            m.requires_access_token,
            &files,
        )?;
        Ok(())
    }

    /// Downloads what is missing and hands what is not imported to the
    /// sink; returns how many files failed. Error files are read for their
    /// issues, never imported.
    async fn files(
        &self,
        store: &mut Store,
        sink: &mut dyn ExportSink,
        row: &ExportRow,
    ) -> Result<usize, ExportError> {
        let dir = self.folder.join(row.id.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| ExportError::Folder {
            path: dir.display().to_string(),
            detail: e.to_string(),
        })?;
        let requires_token = row.requires_token.unwrap_or(true);
        let mut failed = 0;
        // Output files downloaded whole and not imported yet: imported
        // together once every one of them is on disk.
        let mut to_import: Vec<(i64, PathBuf)> = Vec::new();
        for f in store.export_files(row.id)? {
            if f.imported_at.is_some() {
                continue;
            }
            let path = PathBuf::from(&f.path);
            if !self.on_disk(&f, &path) {
                match self.download(&f, &path, requires_token).await {
                    Ok(bytes) => store.export_file_downloaded(row.id, f.n, bytes)?,
                    Err(e) => {
                        tracing::warn!(provider = self.id(), export = row.id, file = f.n, error = %e, "export file not downloaded");
                        store.export_file_outcome(
                            row.id,
                            f.n,
                            false,
                            None,
                            Some(&e.to_string()),
                        )?;
                        failed += 1;
                        continue;
                    }
                }
            }
            if f.kind == "error" {
                let issues = error_file_issues(&path);
                store.export_file_outcome(row.id, f.n, false, None, Some(&issues))?;
                continue;
            }
            to_import.push((f.n, path));
        }
        // A patient's resources are spread over the files of several types:
        // nothing is imported until all of them are here.
        if failed > 0 || to_import.is_empty() {
            return Ok(failed);
        }
        let paths: Vec<PathBuf> = to_import.iter().map(|(_, p)| p.clone()).collect();
        let answered = sink.import_files(self.id(), &paths).and_then(|outcomes| {
            if outcomes.len() == to_import.len() {
                Ok(outcomes)
            } else {
                Err(format!(
                    "the importer answered for {} of {} file(s)",
                    outcomes.len(),
                    to_import.len()
                ))
            }
        });
        match answered {
            Ok(outcomes) => {
                for ((n, _), outcome) in to_import.iter().zip(outcomes) {
                    match outcome {
                        FileOutcome::Imported(note) => {
                            store.export_file_outcome(row.id, *n, true, Some(&note), None)?
                        }
                        FileOutcome::Deferred(note) => {
                            store.export_file_outcome(row.id, *n, false, Some(&note), None)?
                        }
                    }
                }
            }
            Err(e) => {
                for (n, _) in &to_import {
                    store.export_file_outcome(row.id, *n, false, None, Some(&e))?;
                }
                failed += to_import.len();
            }
        }
        Ok(failed)
    }

    /// Whether the file was downloaded whole before (recorded, and its size agrees).
    fn on_disk(&self, f: &ExportFileRow, path: &Path) -> bool {
        f.downloaded_at.is_some()
            && std::fs::metadata(path).is_ok_and(|m| f.bytes.is_some_and(|b| b as u64 == m.len()))
    }

    /// Downloads into `path.part`, then renames: a killed download never
    /// leaves a file that looks whole.
    async fn download(
        &self,
        f: &ExportFileRow,
        path: &Path,
        requires_token: bool,
    ) -> Result<u64, BulkError> {
        let part = path.with_extension("ndjson.part");
        let mut trail = Vec::new();
        let bytes = self
            .client
            .download(&f.url, requires_token, &part, self.file_limit, &mut trail)
            .await;
        match bytes {
            Ok(n) => {
                std::fs::rename(&part, path).map_err(|e| BulkError::Protocol {
                    url: f.url.clone(),
                    detail: format!("cannot rename {}: {e}", part.display()),
                })?;
                Ok(n)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                Err(e)
            }
        }
    }
}
