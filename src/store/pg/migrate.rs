//! PostgreSQL migrations and `db check` there. Migrations are counted in
//! `rxsync_schema` (one row per applied file); each runs in its own
//! transaction under an advisory lock, so two processes migrating at once
//! apply each file once.

use super::super::PG_MIGRATIONS;
use super::super::check::{Check, Probe, Report, shared_checks, version_check};
use super::DbError;

/// The advisory lock key migrations take ("rxsync" in ASCII).
const MIGRATION_LOCK: i64 = 0x72_78_73_79_6e_63;

/// The schema version of a PostgreSQL database (0: no rxsync schema).
pub fn postgres_version(client: &mut postgres::Client) -> Result<usize, DbError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('rxsync_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM rxsync_schema", &[])?
        .get(0);
    Ok(n as usize)
}

/// Applies the pending migrations; returns the versions before and after.
pub fn migrate_postgres(client: &mut postgres::Client) -> Result<(usize, usize), DbError> {
    let before = postgres_version(client)?;
    too_new(before)?;
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS rxsync_schema (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )?;
        let n: i64 = tx
            .query_one("SELECT COUNT(*) FROM rxsync_schema", &[])?
            .get(0);
        let version = n as usize;
        too_new(version)?;
        let Some((name, sql)) = PG_MIGRATIONS.get(version) else {
            tx.commit()?;
            return Ok((before, version));
        };
        tx.batch_execute(sql).map_err(|e| {
            DbError::Version(format!(
                "PostgreSQL migration {name} failed: {}",
                super::PgCause(e)
            ))
        })?;
        let number = (version + 1) as i32;
        tx.execute(
            "INSERT INTO rxsync_schema (version, name) VALUES ($1, $2)",
            &[&number, name],
        )?;
        tx.commit()?;
    }
}

fn too_new(version: usize) -> Result<(), DbError> {
    if version > PG_MIGRATIONS.len() {
        return Err(DbError::Version(format!(
            "the PostgreSQL database has schema version {version}, newer than this rxsync knows ({})",
            PG_MIGRATIONS.len()
        )));
    }
    Ok(())
}

/// The PostgreSQL migrations this rxsync knows.
pub fn postgres_known_version() -> usize {
    PG_MIGRATIONS.len()
}

/// `db check` on PostgreSQL: read-only (one READ ONLY transaction, rolled back).
pub fn check_postgres(client: &mut postgres::Client, shown: &str) -> Result<Report, DbError> {
    let known = PG_MIGRATIONS.len();
    let found = postgres_version(client)?;
    let mut checks = vec![version_check(found, known, "rxsync db migrate")];
    if found > 0 && found <= known {
        let mut tx = client.build_transaction().read_only(true).start()?;
        let mut probe = TxProbe(&mut tx);
        checks.extend(shared_checks(&mut probe)?);
        checks.push(audit_check(&mut probe)?);
        tx.rollback()?;
    }
    Ok(Report {
        engine: "postgres",
        database: shown.to_string(),
        schema_version: found,
        known_version: known,
        checks,
    })
}

/// A probe inside a transaction.
struct TxProbe<'a, 'b>(&'a mut postgres::Transaction<'b>);

impl Probe for TxProbe<'_, '_> {
    fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DbError> {
        let rows = self.0.query(sql, &[])?;
        Ok(rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect()
            })
            .collect())
    }
}

/// The audit's refusing triggers are in place, enabled, and call the
/// function that raises. (Identities skip numbers when a transaction rolls
/// back, so a gap in ids says nothing here.)
fn audit_check(probe: &mut dyn Probe) -> Result<Check, DbError> {
    let found = probe.rows(
        "SELECT CAST(t.tgname AS TEXT), CAST(t.tgenabled AS TEXT), CAST(p.proname AS TEXT), p.prosrc
         FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE t.tgrelid = 'audit'::regclass AND NOT t.tgisinternal",
    )?;
    let mut failures = Vec::new();
    for (name, refuses) in [
        ("audit_no_update", "UPDATE"),
        ("audit_no_delete", "DELETE"),
        ("audit_no_truncate", "TRUNCATE"),
    ] {
        match found.iter().find(|r| r[0].as_deref() == Some(name)) {
            None => failures.push(format!(
                "trigger {name} is missing: the audit no longer refuses {refuses}"
            )),
            Some(r) if matches!(r[1].as_deref(), Some("D") | Some("R")) => failures.push(format!(
                "trigger {name} is disabled: the audit no longer refuses {refuses}"
            )),
            Some(r) if !r[3].as_deref().unwrap_or("").contains("RAISE EXCEPTION") => {
                failures.push(format!(
                    "trigger {name} calls {}, which does not raise: the audit no longer refuses {refuses}",
                    r[2].as_deref().unwrap_or("?")
                ))
            }
            Some(_) => {}
        }
    }
    Ok(Check::new(
        "audit_append_only",
        "the audit refuses UPDATE, DELETE and TRUNCATE (its triggers are in place and enabled)",
        failures,
    ))
}
