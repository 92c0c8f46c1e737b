//! `rxsync db check`: the schema version and the integrity rules every
//! rxsync database keeps, on either engine. Each check is one read-only
//! query whose rows say where the rule is broken, written once in SQL that
//! SQLite and PostgreSQL both run (values read back as text). A check never
//! repairs: it names what it found, and the caller decides the exit code.
//!
//! The rules: every regimen has its items (or the `none_shared` /
//! `unreadable_record` exception that says why it has none); each
//! patient's versions from one source are 1, 2, 3… with no gap; no open
//! exception belongs to a superseded version (the import closes them);
//! the audit is append-only — its refusing triggers are in place, and on
//! SQLite its ids have no gap (a SQLite rowid is max + 1, so a missing id
//! is a deleted row; PostgreSQL identities skip numbers on rollback, so
//! there only the triggers are checked). The audit has no hash chain.

use super::pg::DbError;
use serde::Serialize;
use std::path::Path;

/// Rows a check lists at most; the rest are counted.
const SHOWN: usize = 20;

/// What `db check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `sqlite` or `postgres`.
    pub engine: &'static str,
    /// The file or the URL (without password) checked.
    pub database: String,
    pub schema_version: usize,
    /// The version this rxsync writes.
    pub known_version: usize,
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// One rule and where it is broken.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// The rule, for people.
    pub rule: &'static str,
    pub ok: bool,
    /// Where the rule is broken (at most `SHOWN`).
    pub failures: Vec<String>,
    /// How many more failures were found beyond those listed (a query
    /// reads at most 1,000: a lower bound when it reaches that).
    pub more: usize,
}

impl Check {
    pub(crate) fn new(name: &'static str, rule: &'static str, mut failures: Vec<String>) -> Check {
        let more = failures.len().saturating_sub(SHOWN);
        failures.truncate(SHOWN);
        Check {
            name,
            rule,
            ok: failures.is_empty(),
            failures,
            more,
        }
    }
}

/// A read-only query over one engine, each value as text (NULL: None).
pub(crate) trait Probe {
    fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DbError>;
}

impl Probe for rusqlite::Connection {
    fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DbError> {
        let mut stmt = self.prepare(sql)?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect::<Result<Vec<_>, _>>()
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("NULL")
}

/// Runs a probe and formats each row.
fn listed(
    probe: &mut dyn Probe,
    sql: &str,
    say: impl Fn(&[Option<String>]) -> String,
) -> Result<Vec<String>, DbError> {
    Ok(probe.rows(sql)?.iter().map(|r| say(r)).collect())
}

const LIMIT: &str = " LIMIT 1000";

/// The checks both engines share.
pub(crate) fn shared_checks(probe: &mut dyn Probe) -> Result<Vec<Check>, DbError> {
    let mut checks = Vec::new();
    let empty = listed(
        probe,
        &format!(
            "SELECT CAST(r.id AS TEXT), r.patient_id, r.source, CAST(r.version AS TEXT) FROM regimens r
             WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.regimen_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM exceptions e WHERE e.regimen_id = r.id
                               AND e.kind IN ('none_shared', 'unreadable_record'))
             ORDER BY r.id{LIMIT}"
        ),
        |r| {
            format!(
                "regimen {} (patient {}, source {}, version {}) has no items and no none_shared or unreadable_record exception saying why",
                text(&r[0]),
                text(&r[1]),
                text(&r[2]),
                text(&r[3])
            )
        },
    )?;
    checks.push(Check::new(
        "regimen_items",
        "every regimen has its items (or the exception that says why it has none)",
        empty,
    ));

    let mut gaps = listed(
        probe,
        &format!(
            "SELECT patient_id, source, CAST(MIN(version) AS TEXT) FROM regimens
             GROUP BY patient_id, source HAVING MIN(version) <> 1 ORDER BY patient_id, source{LIMIT}"
        ),
        |r| {
            format!(
                "patient {}, source {}: versions start at {}, not 1",
                text(&r[0]),
                text(&r[1]),
                text(&r[2])
            )
        },
    )?;
    gaps.extend(listed(
        probe,
        &format!(
            "SELECT r.patient_id, r.source, CAST(r.version + 1 AS TEXT),
                    CAST((SELECT MAX(m.version) FROM regimens m WHERE m.patient_id = r.patient_id AND m.source = r.source) AS TEXT)
             FROM regimens r
             WHERE r.version < (SELECT MAX(m.version) FROM regimens m WHERE m.patient_id = r.patient_id AND m.source = r.source)
               AND NOT EXISTS (SELECT 1 FROM regimens n WHERE n.patient_id = r.patient_id
                               AND n.source = r.source AND n.version = r.version + 1)
             ORDER BY r.patient_id, r.source, r.version{LIMIT}"
        ),
        |r| {
            format!(
                "patient {}, source {}: version {} is missing (the newest is {})",
                text(&r[0]),
                text(&r[1]),
                text(&r[2]),
                text(&r[3])
            )
        },
    )?);
    checks.push(Check::new(
        "versions_dense",
        "each patient's regimen versions from one source are 1, 2, 3… without a gap",
        gaps,
    ));

    let stale = listed(
        probe,
        &format!(
            "SELECT CAST(e.id AS TEXT), e.kind, CAST(r.id AS TEXT), r.patient_id, r.source, CAST(r.version AS TEXT)
             FROM exceptions e JOIN regimens r ON r.id = e.regimen_id
             WHERE e.state = 'open' AND EXISTS (SELECT 1 FROM regimens n WHERE n.patient_id = r.patient_id
                                                AND n.source = r.source AND n.version > r.version)
             ORDER BY e.id{LIMIT}"
        ),
        |r| {
            format!(
                "exception {} ({}) is open on regimen {} (patient {}, source {}, version {}), which a later version superseded",
                text(&r[0]),
                text(&r[1]),
                text(&r[2]),
                text(&r[3]),
                text(&r[4]),
                text(&r[5])
            )
        },
    )?;
    checks.push(Check::new(
        "no_open_on_superseded",
        "no open exception belongs to a superseded regimen version",
        stale,
    ));
    Ok(checks)
}

/// The schema version check.
pub(crate) fn version_check(found: usize, known: usize, migrate_hint: &str) -> Check {
    let failures = if found == known {
        Vec::new()
    } else if found < known {
        vec![format!(
            "schema version {found}, this rxsync writes {known}: run {migrate_hint}"
        )]
    } else {
        vec![format!(
            "schema version {found} is newer than this rxsync knows ({known}): use a newer rxsync"
        )]
    };
    Check::new(
        "schema_version",
        "the schema is at the version this rxsync writes",
        failures,
    )
}

/// Checks a SQLite file, opened read-only: nothing is migrated or written.
pub fn check_sqlite(path: &Path) -> Result<Report, DbError> {
    let mut conn = open_read_only(path)?;
    let known = super::MIGRATIONS.len();
    let found: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let mut checks = vec![version_check(found, known, "rxsync db migrate")];
    if found > 0 && found <= known {
        checks.push(sqlite_file_check(&mut conn)?);
        checks.extend(shared_checks(&mut conn)?);
        checks.push(sqlite_audit_check(&mut conn)?);
    }
    Ok(Report {
        engine: "sqlite",
        database: path.display().to_string(),
        schema_version: found,
        known_version: known,
        checks,
    })
}

/// The schema version of a SQLite file, read without migrating it.
pub fn sqlite_version(path: &Path) -> Result<usize, DbError> {
    let conn = open_read_only(path)?;
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// The SQLite migrations this rxsync knows.
pub fn sqlite_known_version() -> usize {
    super::MIGRATIONS.len()
}

pub(crate) fn open_read_only(path: &Path) -> Result<rusqlite::Connection, DbError> {
    if !path.is_file() {
        return Err(DbError::NoDatabase(path.to_path_buf()));
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// SQLite's own checks of the file: pages, indexes, foreign keys.
fn sqlite_file_check(conn: &mut rusqlite::Connection) -> Result<Check, DbError> {
    let mut failures: Vec<String> = conn
        .rows("PRAGMA integrity_check")?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .filter(|m| m != "ok")
        .collect();
    failures.extend(listed(
        conn,
        "SELECT \"table\", CAST(rowid AS TEXT), parent FROM pragma_foreign_key_check",
        |r| {
            format!(
                "table {} row {} names a missing {} row",
                text(&r[0]),
                text(&r[1]),
                text(&r[2])
            )
        },
    )?);
    Ok(Check::new(
        "sqlite_integrity",
        "SQLite's integrity_check and foreign_key_check find nothing",
        failures,
    ))
}

/// The audit's refusing triggers are in place, and no id is missing.
fn sqlite_audit_check(conn: &mut rusqlite::Connection) -> Result<Check, DbError> {
    let mut failures = Vec::new();
    for (name, refuses) in [("audit_no_update", "UPDATE"), ("audit_no_delete", "DELETE")] {
        let found = conn.rows(&format!(
            "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'audit' AND name = '{name}'"
        ))?;
        let ok = found
            .first()
            .and_then(|r| r[0].as_deref())
            .is_some_and(|sql| {
                sql.contains(&format!("BEFORE {refuses} ON audit")) && sql.contains("RAISE(ABORT")
            });
        if !ok {
            failures.push(format!(
                "trigger {name} is missing or changed: the audit no longer refuses {refuses}"
            ));
        }
    }
    let first = conn.rows("SELECT CAST(MIN(id) AS TEXT) FROM audit")?;
    if let Some(min) = first.first().and_then(|r| r[0].as_deref())
        && min != "1"
    {
        failures.push(missing_rows("1", &id_before(min)));
    }
    failures.extend(listed(
        conn,
        &format!(
            "SELECT CAST(a.id + 1 AS TEXT), CAST((SELECT MIN(b.id) FROM audit b WHERE b.id > a.id) AS TEXT)
             FROM audit a
             WHERE a.id < (SELECT MAX(id) FROM audit)
               AND NOT EXISTS (SELECT 1 FROM audit b WHERE b.id = a.id + 1)
             ORDER BY a.id{LIMIT}"
        ),
        |r| {
            let from = text(&r[0]);
            let next = r[1].as_deref().map(id_before).unwrap_or_default();
            missing_rows(from, &next)
        },
    )?);
    Ok(Check::new(
        "audit_append_only",
        "the audit refuses UPDATE and DELETE (its triggers are in place) and no row is missing",
        failures,
    ))
}

/// "audit row 3 is missing", "audit rows 3 to 5 are missing".
fn missing_rows(from: &str, to: &str) -> String {
    if from == to {
        format!("audit row {from} is missing")
    } else {
        format!("audit rows {from} to {to} are missing")
    }
}

/// The id before a textual id ("5" → "4").
fn id_before(id: &str) -> String {
    id.parse::<i64>()
        .map(|n| (n - 1).to_string())
        .unwrap_or_else(|_| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PatientId;
    use crate::store::{NewPatient, Store};

    fn store_with_audit(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("t.db");
        let mut store = Store::open(&path).expect("opens");
        for id in ["P1", "P2", "P3", "P4"] {
            store
                .add_patient(
                    &NewPatient::with_id(PatientId::parse(id).expect("id")),
                    "test",
                )
                .expect("adds");
        }
        path
    }

    fn failures(report: &Report, name: &str) -> Vec<String> {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {report:?}"))
            .failures
            .clone()
    }

    #[test]
    fn a_fresh_store_passes_every_check() {
        let dir = tempfile::tempdir().expect("dir");
        let path = store_with_audit(dir.path());
        let report = check_sqlite(&path).expect("checks");
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.schema_version, sqlite_known_version());
        let names: Vec<_> = report.checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "schema_version",
                "sqlite_integrity",
                "regimen_items",
                "versions_dense",
                "no_open_on_superseded",
                "audit_append_only"
            ]
        );
    }

    #[test]
    fn deleted_audit_rows_and_a_dropped_trigger_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = store_with_audit(dir.path());
        let conn = rusqlite::Connection::open(&path).expect("raw");
        conn.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id IN (1, 3);")
            .expect("tampers");
        drop(conn);
        let report = check_sqlite(&path).expect("checks");
        assert!(!report.ok());
        assert_eq!(
            failures(&report, "audit_append_only"),
            [
                "trigger audit_no_delete is missing or changed: the audit no longer refuses DELETE",
                "audit row 1 is missing",
                "audit row 3 is missing"
            ]
        );
    }

    #[test]
    fn a_database_behind_the_known_version_says_to_migrate() {
        let c = version_check(12, 19, "rxsync db migrate");
        assert!(!c.ok);
        assert_eq!(
            c.failures,
            ["schema version 12, this rxsync writes 19: run rxsync db migrate"]
        );
        assert!(version_check(19, 19, "x").ok);
        assert!(version_check(20, 19, "x").failures[0].contains("newer"));
    }

    #[test]
    fn the_check_never_creates_a_missing_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("none.db");
        assert!(matches!(check_sqlite(&path), Err(DbError::NoDatabase(_))));
        assert!(!path.exists());
    }
}
