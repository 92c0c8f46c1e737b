//! `rxsync db`: migrate, check and copy the database itself, on SQLite
//! (the `[database] path` file) or PostgreSQL (`[database] url`). These
//! are the only commands that work on PostgreSQL today.

use super::output::{self, Format};
use super::{CliResult, Failure, context::Global, usage};
use anyhow::anyhow;
use rxsync::store::check::{self, Report};
use rxsync::store::pg::{self, DbError, PgTarget};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Apply the pending schema migrations and print the version before and after
    Migrate {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Check the schema version and integrity (regimens have their items, versions are dense, no
    /// open exception on a superseded version, the audit append-only); changes nothing, exits 1 on
    /// any failure
    Check {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Copy a SQLite installation into an empty PostgreSQL database (one transaction; vault
    /// ciphertexts byte for byte), then verify counts and run db check on it
    Copy {
        /// The source: sqlite:PATH
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
        /// The target: postgres://USER@HOST[:PORT]/DB [default: [database] url or
        /// RXSYNC_DATABASE_URL]. A password here is visible to other local users in the process
        /// list: prefer [database] password_file or PGPASSWORD
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(global: &Global, command: Command) -> CliResult {
    match command {
        Command::Migrate { format } => migrate(global, format),
        Command::Check { format } => check(global, format),
        Command::Copy { from, to, format } => copy(global, &from, to.as_deref(), format),
    }
}

/// The database a `db` command works on.
enum Engine {
    Sqlite(PathBuf),
    Postgres(Box<PgTarget>),
}

fn engine(global: &Global) -> Result<Engine, Failure> {
    let config = global.config_any_engine()?;
    match &config.database_url {
        Some(url) if global.db.is_none() => Ok(Engine::Postgres(Box::new(target(
            &url.url,
            url.password_file.as_deref(),
        )?))),
        _ => Ok(Engine::Sqlite(config.database_path)),
    }
}

/// A PostgreSQL target from a URL, the password file and the PG* variables.
fn target(url: &str, password_file: Option<&Path>) -> Result<PgTarget, Failure> {
    super::context::pg_target(url, password_file)
}

/// Exit 2 for what the operator must fix in the command or configuration.
fn db_failure(e: DbError) -> Failure {
    match e {
        DbError::NoDatabase(_) | DbError::Target(_) => Failure::Usage(e.into()),
        other => Failure::Failed(other.into()),
    }
}

#[derive(serde::Serialize)]
struct Migrated {
    engine: &'static str,
    database: String,
    before: usize,
    after: usize,
    known: usize,
}

fn migrate(global: &Global, format: Format) -> CliResult {
    let done = match engine(global)? {
        Engine::Postgres(t) => {
            let mut client = t.connect().map_err(db_failure)?;
            let (before, after) = pg::migrate_postgres(&mut client).map_err(db_failure)?;
            Migrated {
                engine: "postgres",
                database: t.to_string(),
                before,
                after,
                known: pg::postgres_known_version(),
            }
        }
        Engine::Sqlite(path) => {
            let before = if path.exists() {
                check::sqlite_version(&path).map_err(db_failure)?
            } else {
                0
            };
            if !path.exists() {
                eprintln!("note: creating the database {}", path.display());
            }
            rxsync::store::Store::open(&path)?;
            Migrated {
                engine: "sqlite",
                database: path.display().to_string(),
                before,
                after: check::sqlite_version(&path).map_err(db_failure)?,
                known: check::sqlite_known_version(),
            }
        }
    };
    match format {
        Format::Json => output::json(&done)?,
        Format::Table => {
            let applied = done.after - done.before;
            println!(
                "{} {}: schema version {} -> {} ({})",
                done.engine,
                done.database,
                done.before,
                done.after,
                if applied == 0 {
                    "up to date".to_string()
                } else {
                    format!("applied {applied} migration(s)")
                }
            );
        }
    }
    Ok(())
}

fn check(global: &Global, format: Format) -> CliResult {
    let report = match engine(global)? {
        Engine::Postgres(t) => {
            let mut client = t.connect().map_err(db_failure)?;
            pg::check_postgres(&mut client, &t.to_string()).map_err(db_failure)?
        }
        Engine::Sqlite(path) => check::check_sqlite(&path).map_err(db_failure)?,
    };
    match format {
        Format::Json => output::json(&report)?,
        Format::Table => print_report(&report),
    }
    verdict(&report)
}

fn print_report(report: &Report) {
    println!(
        "{} {} (schema version {} of {})",
        report.engine, report.database, report.schema_version, report.known_version
    );
    for c in &report.checks {
        println!(
            "{:<4}  {}: {}",
            if c.ok { "ok" } else { "FAIL" },
            c.name,
            c.rule
        );
        for f in &c.failures {
            println!("      - {f}");
        }
        if c.more > 0 {
            println!("      … and {} more", c.more);
        }
    }
}

/// Exit 1 when a check failed.
fn verdict(report: &Report) -> CliResult {
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name)
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(Failure::Failed(anyhow!(
        "db check: {} of {} check(s) failed: {}",
        failed.len(),
        report.checks.len(),
        failed.join(", ")
    )))
}

fn copy(global: &Global, from: &str, to: Option<&str>, format: Format) -> CliResult {
    let Some(source) = from.strip_prefix("sqlite:") else {
        return Err(usage(
            "--from must be sqlite:PATH (db copy moves a SQLite installation to PostgreSQL)",
        ));
    };
    let cwd =
        std::env::current_dir().map_err(|e| anyhow!("cannot read the current directory: {e}"))?;
    let source = cwd.join(source);
    let config = global.config_any_engine()?;
    let target = match (to, &config.database_url) {
        (Some(url), configured) => {
            if !pg::is_postgres_url(url) {
                return Err(usage("--to must be a postgres:// or postgresql:// URL"));
            }
            // The configured password file goes only to the configured
            // server: another `--to` names its password itself (in the URL
            // or PGPASSWORD), so no password is sent where it was not meant.
            target(
                url,
                configured
                    .as_ref()
                    .filter(|c| c.url.as_str() == url)
                    .and_then(|c| c.password_file.as_deref()),
            )?
        }
        (None, Some(c)) => target(&c.url, c.password_file.as_deref())?,
        (None, None) => {
            return Err(usage(
                "db copy needs a target: --to postgres://… or a [database] url (RXSYNC_DATABASE_URL)",
            ));
        }
    };
    let report = pg::copy_sqlite_to_postgres(&source, &target).map_err(db_failure)?;
    match format {
        Format::Json => output::json(&report)?,
        Format::Table => {
            println!("copied {} -> {}", report.from, report.to);
            for t in &report.tables {
                println!("  {:<22} {:>9}", t.table, t.rows);
            }
            println!("counts match in every table; db check on the target:");
            print_report(&report.check);
        }
    }
    verdict(&report.check)
}
