//! The SQLite store: the only module that writes SQL.
//!
//! Opening a store applies the append-only migrations under
//! `schemas/sqlite/` (embedded at build time) and sets WAL mode, foreign
//! keys and a busy handler. Transactions are IMMEDIATE: each takes the
//! write lock when it begins, so concurrent writers (several `rxsync
//! import` processes, a migration raced by another first open) wait their
//! turn instead of failing on a lock upgrade. Every write that belongs
//! together — a document, its regimen, items, exceptions, sync and audit
//! rows — happens in one transaction, so a crash leaves the previous state
//! intact. The store never parses documents and never decides what a drug
//! is.

mod accounts;
mod audit;
mod bulk;
pub mod check;
mod consent;
mod context;
pub(crate) mod db;
mod dictionary;
mod discovery;
mod exports;
mod grants;
mod identity;
mod ids;
mod imports;
mod invitations;
mod leases;
mod links;
mod mappings;
mod patients;
pub mod pg;
mod pulls;
mod queue;
mod reconcile;
mod regimens;
mod rekey;
mod reversal;
mod writer;

pub use accounts::{LoginFailures, Role, UserName, UserView};
pub use audit::AuditEntry;
pub use bulk::{BadLine, StagedLine};
pub use consent::{FlowLookup, NewFlow, TakenFlow};
pub use context::SyncContext;
pub use dictionary::DictStats;
pub use discovery::{CachedDiscovery, NewRegistration, Registration};
pub use exports::{ExportFileRow, ExportRow, ExportState, NewExport};
pub use identity::{IdentityState, IdentityWrite};
pub use imports::{ImportOutcome, ImportWrite, UnreadableWrite};
pub use invitations::{InvitationLookup, NewInvitation, OpenedInvitation};
pub use leases::{ClaimError, DueLink};
pub use links::{ClaimedLink, LinkSecrets, LinkView, NewLink, RefreshTurn, RemoteIdentityView};
pub use patients::{NewPatient, Patient};
pub use pulls::{FailedPull, PullRecord};
pub use queue::{ExceptionFilter, ExceptionView, ItemDocument, ItemRef, Resolve};
pub use reconcile::ConflictCheck;
pub use regimens::{CodeView, DocumentMeta, ItemView, RegimenSummary, RegimenView, SourceRegimen};
pub use reversal::DecisionView;
pub use writer::{Batch as WriterBatch, Observer as WriterObserver, Writer};

use db::Conn;
pub use db::Engine;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The migrations, in order. Append only: never edit one that has landed.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_core",
        include_str!("../../schemas/sqlite/0001_core.sql"),
    ),
    (
        "0002_links",
        include_str!("../../schemas/sqlite/0002_links.sql"),
    ),
    (
        "0003_accounts",
        include_str!("../../schemas/sqlite/0003_accounts.sql"),
    ),
    (
        "0004_pharm_classes",
        include_str!("../../schemas/sqlite/0004_pharm_classes.sql"),
    ),
    (
        "0005_unreadable_records",
        include_str!("../../schemas/sqlite/0005_unreadable_records.sql"),
    ),
    (
        "0006_ndc12",
        include_str!("../../schemas/sqlite/0006_ndc12.sql"),
    ),
    (
        "0007_claims",
        include_str!("../../schemas/sqlite/0007_claims.sql"),
    ),
    (
        "0008_brand_index",
        include_str!("../../schemas/sqlite/0008_brand_index.sql"),
    ),
    (
        "0009_bulk_staging",
        include_str!("../../schemas/sqlite/0009_bulk_staging.sql"),
    ),
    (
        "0010_exports",
        include_str!("../../schemas/sqlite/0010_exports.sql"),
    ),
    (
        "0011_item_section",
        include_str!("../../schemas/sqlite/0011_item_section.sql"),
    ),
    (
        "0012_source_conflicts",
        include_str!("../../schemas/sqlite/0012_source_conflicts.sql"),
    ),
    (
        "0013_syncs_document",
        include_str!("../../schemas/sqlite/0013_syncs_document.sql"),
    ),
    (
        "0014_consent",
        include_str!("../../schemas/sqlite/0014_consent.sql"),
    ),
    (
        "0015_identity",
        include_str!("../../schemas/sqlite/0015_identity.sql"),
    ),
    (
        "0016_discovery",
        include_str!("../../schemas/sqlite/0016_discovery.sql"),
    ),
    (
        "0017_invitations",
        include_str!("../../schemas/sqlite/0017_invitations.sql"),
    ),
    (
        "0018_grants",
        include_str!("../../schemas/sqlite/0018_grants.sql"),
    ),
    (
        "0019_grant_index",
        include_str!("../../schemas/sqlite/0019_grant_index.sql"),
    ),
    (
        "0020_leases",
        include_str!("../../schemas/sqlite/0020_leases.sql"),
    ),
    (
        "0021_workers",
        include_str!("../../schemas/sqlite/0021_workers.sql"),
    ),
    (
        "0022_refresh_lock",
        include_str!("../../schemas/sqlite/0022_refresh_lock.sql"),
    ),
];

/// The PostgreSQL migrations (`schemas/postgres/`), in order, counted in
/// the table `rxsync_schema`. Append only. 0001 is the SQLite schema after
/// its 0001-0019 in one file; a later SQLite migration gets its twin here.
const PG_MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_core",
        include_str!("../../schemas/postgres/0001_core.sql"),
    ),
    (
        "0002_leases",
        include_str!("../../schemas/postgres/0002_leases.sql"),
    ),
    (
        "0003_workers",
        include_str!("../../schemas/postgres/0003_workers.sql"),
    ),
    (
        "0004_notify",
        include_str!("../../schemas/postgres/0004_notify.sql"),
    ),
    (
        "0005_refresh_lock",
        include_str!("../../schemas/postgres/0005_refresh_lock.sql"),
    ),
];

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or is not an rxsync database.
    #[error("cannot open database {path}")]
    Open { path: PathBuf, source: SqliteCause },
    /// The database was written by a newer rxsync.
    #[error("database {path} has schema version {found}, newer than this rxsync knows ({known})")]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    /// A migration failed (the database is left at the previous version).
    #[error("migration {name} failed")]
    Migration {
        name: &'static str,
        source: SqliteCause,
    },
    /// PostgreSQL could not be reached, refused the login, or could not be
    /// migrated (the message never holds the password).
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// Any other database error (PostgreSQL's arrive in SQLite's words:
    /// see `db`), its message said once.
    #[error("database error: {}", SqliteCause::show(.0))]
    Sql(rusqlite::Error),
    /// A referenced thing does not exist.
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: String },
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The request is not allowed for the exception's kind or state.
    #[error("{0}")]
    Refused(String),
    /// A value read back from the database is not what rxsync wrote.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The writer could not run or commit a job (see `writer::Writer`).
    #[error("database error: {0}")]
    Writer(String),
}

/// A SQLite error as the cause of a `StoreError`: shown once in a cause
/// chain. (rusqlite's `SqliteFailure` prints SQLite's message and then
/// gives the same words again as its own source, "Error code 26: file is
/// not a database"; here the message stands alone.)
#[derive(Debug)]
pub struct SqliteCause(pub rusqlite::Error);

impl std::fmt::Display for SqliteCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            rusqlite::Error::SqliteFailure(_, Some(msg)) => f.write_str(msg),
            other => other.fmt(f),
        }
    }
}

impl std::error::Error for SqliteCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            rusqlite::Error::SqliteFailure(..) => None,
            other => other.source(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sql(e)
    }
}

impl SqliteCause {
    /// The error's message, once.
    fn show(e: &rusqlite::Error) -> String {
        match e {
            rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
            other => other.to_string(),
        }
    }
}

impl From<rusqlite::Error> for SqliteCause {
    fn from(e: rusqlite::Error) -> SqliteCause {
        SqliteCause(e)
    }
}

/// Where an rxsync database lives: a SQLite file (the default, nothing to
/// install) or a PostgreSQL database that many workers share.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(Box<pg::PgTarget>),
}

impl Database {
    /// The engine it runs on.
    pub fn engine(&self) -> Engine {
        match self {
            Database::Sqlite(_) => Engine::Sqlite,
            Database::Postgres(_) => Engine::Postgres,
        }
    }
}

impl std::fmt::Display for Database {
    /// The file, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "{}", p.display()),
            Database::Postgres(t) => write!(f, "{t}"),
        }
    }
}

/// An open rxsync database.
pub struct Store {
    conn: Conn,
    database: Database,
}

impl Store {
    /// Opens (creating and migrating if needed) the database.
    pub fn connect(database: &Database) -> Result<Store, StoreError> {
        match database {
            Database::Sqlite(path) => Store::open(path),
            // Connecting and migrating block on the client's own runtime:
            // outside the async runtime when called from async code.
            Database::Postgres(target) => Store::open_postgres(target),
        }
    }

    /// Connects to PostgreSQL and applies the migrations it lacks (under
    /// an advisory lock: workers starting together migrate once).
    pub fn open_postgres(target: &pg::PgTarget) -> Result<Store, StoreError> {
        let failed = |e: pg::DbError| StoreError::Postgres(e.to_string());
        let mut client = db::off_runtime(|| target.connect()).map_err(failed)?;
        let c = &mut client;
        db::off_runtime(|| -> Result<(), pg::DbError> {
            if pg::postgres_version(c)? != PG_MIGRATIONS.len() {
                pg::migrate_postgres(c)?;
            }
            Ok(())
        })
        .map_err(failed)?;
        Ok(Store {
            conn: Conn::Pg(Box::new(db::PgConn::new(client, target.clone()))),
            database: Database::Postgres(Box::new(target.clone())),
        })
    }

    /// Where this store lives.
    pub fn database(&self) -> &Database {
        &self.database
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.to_path_buf(),
            source: SqliteCause(e),
        };
        let created = !path.exists();
        let mut conn = rusqlite::Connection::open(path).map_err(open_err)?;
        // Medication lists are health data: a new database (and the WAL and
        // shared-memory files SQLite makes with the same mode) is for its owner only.
        #[cfg(unix)]
        if created {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        // Every transaction takes the write lock when it begins, so a
        // read-then-write transaction waits (`wait_for_lock`) instead of
        // failing with "database is locked" when it tries to upgrade.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        let mut waiting_since = Instant::now();
        conn.busy_handler(Some(move |attempt| {
            if attempt == 0 {
                waiting_since = Instant::now();
            }
            wait_for_lock(attempt, waiting_since.elapsed())
        }))
        .map_err(open_err)?;
        // Fails here (not later) when the file is not a SQLite database.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // Checkpoint when the WAL reaches 4,000 pages (16 MB at 4 KB) rather
        // than SQLite's 1,000: a checkpoint copies each page once however
        // often it was written since the last one, and a sync rewrites the
        // same pages (its link's row, the indexes, the tails of syncs and
        // audit), so fewer, larger checkpoints copy less. run --once
        // passes were 6-7 % faster (BENCHMARKS.md, pull benchmark).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(open_err)?;
        // The query planner stability guarantee: a plan does not depend on
        // the values bound to it. Without it SQLite 3.54 marks a cached
        // statement whose WHERE compares a column with `?` as "re-prepare
        // when the binding changes", and rusqlite clears the bindings of
        // every statement returned to its cache, so each dictionary lookup
        // and most store reads were parsed and planned again (a sixth of an
        // import's time in BENCHMARKS.md's pull profile). The plans are the
        // same: the store never runs ANALYZE, so there are no statistics
        // for a bound value to steer.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(open_err)?;
        // The statements of imports and syncs are cached (more than
        // rusqlite's default 16 run per sync, and the daemon's writer runs
        // every kind on one connection).
        conn.set_prepared_statement_cache_capacity(256);

        let mut store = Store {
            conn: Conn::Sqlite(conn),
            database: Database::Sqlite(path.to_path_buf()),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The file this store was opened from.
    pub fn path(&self) -> Option<&Path> {
        match &self.database {
            Database::Sqlite(p) => Some(p),
            Database::Postgres(_) => None,
        }
    }

    /// The database engine, as `/readyz` names it.
    pub fn engine(&self) -> Engine {
        self.conn.engine()
    }

    /// Whether the database answers a query (`/readyz`).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn.cached_row("SELECT 1", (), |_| Ok(()))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path().map(Path::to_path_buf).unwrap_or_default();
        let version = self.user_version()?;
        check_version(&path, version)?;
        if version == MIGRATIONS.len() {
            return Ok(());
        }
        // Another process may be migrating the same file: each migration
        // re-reads the version under the write lock (transactions are
        // IMMEDIATE) and skips what was applied meanwhile.
        loop {
            let tx = self.tx()?;
            let version: usize = tx.query_row("PRAGMA user_version", (), |r| r.get(0usize))?;
            check_version(&path, version)?;
            let Some((name, sql)) = MIGRATIONS.get(version) else {
                return Ok(());
            };
            tx.execute_batch(sql).map_err(|e| StoreError::Migration {
                name,
                source: SqliteCause(e),
            })?;
            // A column SQL cannot compute is filled in the same transaction.
            if *name == "0008_brand_index" {
                dictionary::fill_brand_keys(&tx)?;
            }
            if *name == "0015_identity" {
                allow_held_links(&tx)?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
            tx.commit()?;
            if *name == "0015_identity" {
                // This connection reads its edited schema now, not in the
                // middle of the first cached statement it runs.
                self.conn.execute_batch("SELECT 1 FROM links LIMIT 0")?;
            }
        }
    }

    fn user_version(&self) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", (), |r| r.get(0usize))?)
    }
}

/// Widens `links.state`'s CHECK constraint to admit `held` (migration
/// 0015_identity). SQLite documents editing a table's stored definition for changes
/// that do not touch the data on disk, such as a CHECK constraint that now
/// admits more (lang_altertable.html, "other kinds of table schema
/// changes"); unlike a table rebuild it keeps every column, index and
/// foreign key another migration may have added. The schema cookie is
/// bumped so that every connection, this one included, reads the new
/// definition.
fn allow_held_links(tx: &Conn) -> Result<(), StoreError> {
    const OLD: &str = "CHECK (state IN ('active', 'needs_relink', 'revoked'))";
    const NEW: &str = "CHECK (state IN ('active', 'needs_relink', 'revoked', 'held'))";
    let sql: String = tx.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'links'",
        (),
        |r| r.get(0usize),
    )?;
    if sql.contains(NEW) {
        return Ok(());
    }
    if sql.matches(OLD).count() != 1 {
        return Err(StoreError::Corrupt(
            "migration 0015_identity: the links table's state CHECK is not the one 0002 made"
                .into(),
        ));
    }
    let cookie: i64 = tx.query_row("PRAGMA schema_version", (), |r| r.get(0usize))?;
    tx.execute_batch("PRAGMA writable_schema = ON")?;
    let edited = tx.execute(
        "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = 'links'",
        [sql.replacen(OLD, NEW, 1)],
    );
    tx.execute_batch("PRAGMA writable_schema = OFF")?;
    edited?;
    tx.execute_batch(&format!("PRAGMA schema_version = {}", cookie + 1))?;
    Ok(())
}

/// A store write's transaction: its own IMMEDIATE transaction, or — inside
/// a batch the writer (`writer::Writer`) already began — a savepoint. Either
/// way the write is all or nothing.
pub(crate) enum Tx<'c> {
    Top(db::Transaction<'c>),
    Nested(Savepoint<'c>),
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            Tx::Top(t) => t,
            Tx::Nested(s) => s.conn,
        }
    }
}

impl Tx<'_> {
    pub(crate) fn commit(self) -> rusqlite::Result<()> {
        match self {
            Tx::Top(t) => t.commit(),
            Tx::Nested(s) => s.release(),
        }
    }
}

impl Store {
    /// Begins a write: a transaction, or a savepoint within the open one.
    pub(crate) fn tx(&mut self) -> rusqlite::Result<Tx<'_>> {
        if self.conn.is_autocommit() {
            self.conn.transaction().map(Tx::Top)
        } else {
            Savepoint::begin(&self.conn).map(Tx::Nested)
        }
    }
}

/// A savepoint whose statements go through the statement cache (rusqlite's
/// own `Savepoint` parses its SQL on every use: a writer's batch runs
/// several per sync). Rolled back when dropped unreleased. Nested ones share
/// the name: SQLite releases or rolls back the innermost of that name.
pub(crate) struct Savepoint<'c> {
    conn: &'c Conn,
    open: bool,
}

impl<'c> Savepoint<'c> {
    pub(crate) fn begin(conn: &'c Conn) -> rusqlite::Result<Self> {
        conn.cached_execute("SAVEPOINT rxsync_tx", ())?;
        conn.nest(1);
        Ok(Savepoint { conn, open: true })
    }

    /// Keeps what was written since the savepoint began.
    pub(crate) fn release(mut self) -> rusqlite::Result<()> {
        self.open = false;
        self.conn.nest(-1);
        self.conn.cached_execute("RELEASE rxsync_tx", ()).map(drop)
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            self.conn.nest(-1);
            let _ = self.conn.cached_execute("ROLLBACK TO rxsync_tx", ());
            let _ = self.conn.cached_execute("RELEASE rxsync_tx", ());
        }
    }
}

/// WAL pages that trigger an automatic checkpoint (see `Store::open`).
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: i64 = 4_000;

/// How long a transaction waits for another's write lock before "database
/// is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The busy handler: whether to try the lock again (after a short sleep).
/// SQLite's own handler (`busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25…
/// ms between attempts, while a sync's write transaction holds the lock
/// for well under a millisecond: with several syncs in flight the daemon
/// spent most of its time asleep behind a free lock (BENCHMARKS.md, pull
/// benchmark). Here the sleeps start at 50 µs and double up to 2 ms.
fn wait_for_lock(attempt: i32, waited: Duration) -> bool {
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    let micros = (50u64 << attempt.clamp(0, 6)).min(2_000);
    std::thread::sleep(Duration::from_micros(micros));
    true
}

/// Refuses a database written by a newer rxsync.
fn check_version(path: &Path, version: usize) -> Result<(), StoreError> {
    if version > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    Ok(())
}

/// The current time as RFC 3339 UTC text, as the store writes it.
pub(crate) fn now() -> String {
    rfc3339(chrono::Utc::now())
}

/// The current time as the store writes it.
pub fn rfc3339_now() -> String {
    now()
}

/// A time as the store writes it.
pub fn rfc3339_at(t: chrono::DateTime<chrono::Utc>) -> String {
    rfc3339(t)
}

/// A time the store wrote, read back (None: not RFC 3339).
pub(crate) fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A row mapper's refusal of text that is not a value rxsync writes
/// (column `col`, `what` names the value).
pub(crate) fn bad_text(col: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("not a value rxsync writes: {what}").into(),
    )
}

/// A time as the store writes it (RFC 3339, UTC, milliseconds): text order is time order.
pub(crate) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time column (`col`, named `what` in the error) read back as the time
/// it is. Text that is not RFC 3339 is a row mapper's refusal — a store
/// error naming the column and the text — never a panic or a made-up time.
pub(crate) fn time_col(
    r: &db::Row<'_>,
    col: usize,
    what: &str,
) -> rusqlite::Result<chrono::DateTime<chrono::Utc>> {
    let text: String = r.get(col)?;
    parse_time(&text).ok_or_else(|| bad_text(col, format!("{what} time {text:?}")))
}

/// An optional time column read back (see [`time_col`]).
pub(crate) fn opt_time_col(
    r: &db::Row<'_>,
    col: usize,
    what: &str,
) -> rusqlite::Result<Option<chrono::DateTime<chrono::Utc>>> {
    match r.get::<_, Option<String>>(col)? {
        None => Ok(None),
        Some(text) => parse_time(&text)
            .map(Some)
            .ok_or_else(|| bad_text(col, format!("{what} time {text:?}"))),
    }
}

/// Serializes a time as the store writes it (`rfc3339`), so JSON output
/// keeps its documented text whatever chrono's own serde would write:
/// `#[serde(serialize_with = "crate::store::as_rfc3339")]`.
pub fn as_rfc3339<S: serde::Serializer>(
    t: &chrono::DateTime<chrono::Utc>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

/// [`as_rfc3339`] for an optional time (None: `null`).
pub fn as_rfc3339_opt<S: serde::Serializer>(
    t: &Option<chrono::DateTime<chrono::Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => as_rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// The database of a store unit test: the SQLite file `t.db` in `dir`, or
/// — with `RXSYNC_TEST_ENGINE=postgres` and `RXSYNC_TEST_PG_URL` (a
/// throwaway cluster, `.ci/postgres.sh`) — a fresh database of its own on
/// that cluster, so the store's tests run on both engines. Reopen it with
/// `Store::connect(store.database())`.
#[cfg(test)]
pub(crate) fn test_database(dir: &Path) -> Database {
    if !std::env::var("RXSYNC_TEST_ENGINE").is_ok_and(|e| e == "postgres") {
        return Database::Sqlite(dir.join("t.db"));
    }
    let admin = std::env::var("RXSYNC_TEST_PG_URL")
        .expect("RXSYNC_TEST_PG_URL (start one with . .ci/postgres.sh && start_test_postgres)");
    let name = format!(
        "unit_{}_{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 6]>())
    );
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("the test cluster");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("creates the test database");
    let mut url = url::Url::parse(&admin).expect("RXSYNC_TEST_PG_URL is a URL");
    url.set_path(&format!("/{name}"));
    Database::Postgres(Box::new(
        pg::PgTarget::parse(url.as_str(), None, &|_| None).expect("the test URL"),
    ))
}

/// A store for a unit test on the test engine (`test_database`).
#[cfg(test)]
pub(crate) fn test_store(dir: &Path) -> Store {
    Store::connect(&test_database(dir)).expect("opens the test store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_statements_are_not_planned_again_when_their_bindings_change() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("t.db")).expect("opens");
        // The shape of a dictionary lookup: a join, a column compared with `?`.
        let sql = "SELECT COUNT(*) FROM dict_packages k JOIN dict_products p
                   ON p.product_id = k.product_id WHERE k.ndc11 = ?1";
        let conn = store.conn.lite().expect("SQLite");
        for id in ["00006010654", "00002771559", "00003519410"] {
            let mut stmt = conn.prepare_cached(sql).expect("prepares");
            let _: i64 = stmt.query_row([id], |r| r.get(0)).expect("runs");
        }
        let stmt = conn.prepare_cached(sql).expect("cached");
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "a store read taken from the statement cache was parsed again"
        );
    }

    #[test]
    fn checkpoints_wait_for_a_larger_wal_than_sqlites_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("t.db")).expect("opens");
        let pages: i64 = store
            .conn
            .lite()
            .expect("SQLite")
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .expect("reads the pragma");
        assert_eq!(pages, WAL_AUTOCHECKPOINT_PAGES);
    }

    #[test]
    fn a_writer_waits_for_another_connections_transaction_instead_of_failing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let holder = Store::open(&path).expect("opens");
        let mut waiter = Store::open(&path).expect("opens again");
        let (locked, go) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let tx = holder.conn.transaction().expect("takes the write lock");
            locked.send(()).expect("signals");
            std::thread::sleep(Duration::from_millis(30));
            tx.commit().expect("commits");
        });
        go.recv().expect("the lock is held");
        let t = Instant::now();
        waiter
            .add_patient(
                &NewPatient::with_id(crate::domain::PatientId::parse("P1").expect("id")),
                "test",
            )
            .expect("waits for the lock, then writes");
        assert!(t.elapsed() >= Duration::from_millis(20));
        writer.join().expect("writer");
    }

    #[test]
    fn the_busy_handler_retries_soon_and_gives_up_after_the_timeout() {
        let t = Instant::now();
        assert!(wait_for_lock(0, Duration::ZERO));
        assert!(wait_for_lock(1, Duration::from_millis(5)));
        assert!(
            t.elapsed() < Duration::from_millis(50),
            "first retries sleep for microseconds, not milliseconds"
        );
        assert!(!wait_for_lock(9, BUSY_TIMEOUT));
    }

    #[test]
    fn json_times_are_the_text_the_store_writes() {
        #[derive(serde::Serialize)]
        struct Shown {
            #[serde(serialize_with = "as_rfc3339")]
            at: chrono::DateTime<chrono::Utc>,
            #[serde(serialize_with = "as_rfc3339_opt")]
            due: Option<chrono::DateTime<chrono::Utc>>,
            #[serde(serialize_with = "as_rfc3339_opt")]
            never: Option<chrono::DateTime<chrono::Utc>>,
        }
        // Nanoseconds, as `Utc::now()` has them: written (and shown) to the millisecond.
        let t = chrono::DateTime::from_timestamp(1_772_600_767, 89_123_456).expect("a time");
        let stored = rfc3339(t);
        assert_eq!(stored, "2026-03-04T05:06:07.089Z");
        let shown = serde_json::to_value(Shown {
            at: t,
            due: Some(t),
            never: None,
        })
        .expect("serializes");
        assert_eq!(
            shown,
            serde_json::json!({"at": stored, "due": stored, "never": null})
        );
        // What the store reads back is shown as it was written.
        let read = parse_time(&stored).expect("reads");
        assert_eq!(rfc3339(read), stored);
    }

    #[test]
    fn a_stored_time_that_is_not_one_is_a_store_error_naming_the_column() {
        use crate::store::links::testing::{add, oauth2, store_with_patient};
        let (_dir, mut store, patient) = store_with_patient();
        if store.conn.engine() == Engine::Postgres {
            // A timestamptz column cannot hold such text.
            return;
        }
        let (key, _) = crate::vault::VaultKey::generate();
        let (id, _) = add(&mut store, &patient, &key, oauth2("a1", None));
        store
            .conn
            .execute(
                "UPDATE links SET next_due_at = 'next tuesday' WHERE id = ?1",
                [id],
            )
            .expect("corrupts");
        let err = store.link(id).expect_err("refused");
        assert!(matches!(err, StoreError::Sql(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("links.next_due_at") && text.contains("next tuesday"),
            "{text}"
        );
        assert!(store.links(None).is_err(), "the listing says so too");
    }
}
