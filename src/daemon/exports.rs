//! Scheduled bulk exports: one task per provider with `[providers.bulk]
//! interval`, running the same `export::Exporter` as `rxsync export`, one
//! export at a time per provider (the task is sequential, and the store
//! refuses a second unfinished export of a provider, across processes too).
//!
//! The schedule is data: the last export's request time is read from the
//! store, so a restart neither repeats an export nor forgets one. An
//! unfinished export (a crash, a failed file) is resumed, never started over.

use crate::config::Provider;
use crate::domain::ProviderId;
use crate::export::{BulkSink, Exporter, next_export_at};
use crate::normalize::Options;
use crate::store::{Database, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// After a failure to even open the store or build the exporter, wait this long.
const PAUSE_AFTER_ERROR: Duration = Duration::from_secs(300);

/// Starts a task per provider with a bulk interval; they end when `shutdown` turns true.
pub fn spawn(
    providers: &[Provider],
    database: &Database,
    db_path: &Path,
    options: &Options,
    shutdown: watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for p in providers {
        let Some(interval) = p.bulk.as_ref().and_then(|b| b.interval) else {
            continue;
        };
        set.spawn(provider_loop(
            p.clone(),
            interval,
            database.clone(),
            db_path.to_path_buf(),
            options.clone(),
            shutdown.clone(),
        ));
    }
    set
}

async fn provider_loop(
    provider: Provider,
    interval: Duration,
    database: Database,
    db_path: PathBuf,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = provider.id.clone();
    loop {
        let wait = match next_wait(&database, &id, interval) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(provider = %id, error = %e, "cannot read the export schedule");
                PAUSE_AFTER_ERROR
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        // An export in flight at shutdown is dropped: every step is
        // recorded first, so the next start resumes it.
        tokio::select! {
            r = run_once(&provider, &database, &db_path, &options) => {
                if let Err(e) = r {
                    tracing::warn!(provider = %id, error = %e, "scheduled export did not complete");
                }
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// How long until the provider's next export (zero when due).
fn next_wait(
    database: &Database,
    provider: &ProviderId,
    interval: Duration,
) -> Result<Duration, String> {
    let store = Store::connect(database).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    let last = store
        .last_export_requested(provider)
        .map_err(|e| e.to_string())?
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.to_utc());
    let open = store.open_export(provider).map_err(|e| e.to_string())?;
    if open.is_some() && last.is_some_and(|t| now - t > chrono::Duration::seconds(60)) {
        // An unfinished export is resumed at once.
        return Ok(Duration::ZERO);
    }
    Ok((next_export_at(last, interval, now) - now)
        .to_std()
        .unwrap_or(Duration::ZERO))
}

/// Resumes the provider's unfinished export, or starts a new one.
async fn run_once(
    provider: &Provider,
    database: &Database,
    db_path: &Path,
    options: &Options,
) -> Result<(), String> {
    let mut store = Store::connect(database).map_err(|e| e.to_string())?;
    let exporter = Exporter::new(provider, db_path).map_err(|e| e.to_string())?;
    let mut sink = BulkSink::new(database, provider, options.clone());
    let open = store.open_export(&provider.id).map_err(|e| e.to_string())?;
    match open {
        Some(row) => exporter
            .resume(&mut store, &mut sink, row.id)
            .await
            .map_err(|e| e.to_string()),
        None => exporter
            .start(&mut store, &mut sink, None, None, "daemon")
            .await
            .map(|id| tracing::info!(provider = %provider.id, export = id, "scheduled export completed"))
            .map_err(|(_, e)| e.to_string()),
    }
}
