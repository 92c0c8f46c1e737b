//! `rxsync db migrate` and `rxsync db check` on real SQLite files: the
//! demo's database passes; each kind of damage (a regimen without its
//! items, a gap in versions, an open exception on a superseded version, a
//! dropped audit trigger, a deleted audit row) is named with where it is,
//! exit 1, and the file is left as it was. Every command given a
//! PostgreSQL url it cannot reach names it, without its password. The
//! PostgreSQL side is tests/it/db_postgres.rs; the tests that read or edit
//! the SQLite file itself do not run on PostgreSQL.

use crate::support::{Run, TestEnv, repo_path};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The database `rxsync demo --once` made (once per test run), copied by each test.
pub fn demo_database() -> &'static Path {
    static DEMO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, db) = DEMO.get_or_init(|| {
        let env = TestEnv::new();
        let dir = env.dir.path().join("demo");
        env.run_bare(
            &["demo", "--dir", &dir.display().to_string(), "--once"],
            &[],
        )
        .ok();
        let db = dir.join("rxsync.db");
        assert!(db.is_file(), "the demo made {}", db.display());
        (env.dir, db)
    });
    db
}

/// A test folder holding a copy of the demo's database.
pub fn with_demo_copy() -> TestEnv {
    let env = TestEnv::new();
    let conn = rusqlite::Connection::open(demo_database()).expect("demo db");
    // VACUUM INTO: a consistent copy, whatever is still in the WAL.
    conn.execute("VACUUM INTO ?1", [env.db.display().to_string()])
        .expect("copies the demo database");
    env
}

/// The schema version this rxsync writes: one per migration file in
/// `dir` (`schemas/sqlite`, `schemas/postgres`), so a new migration does
/// not need these tests edited.
pub(crate) fn migrations_in(dir: &str) -> usize {
    std::fs::read_dir(repo_path(dir))
        .expect("the schemas folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count()
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

/// A connection that enforces nothing: damage goes in as it would from
/// another tool.
fn raw(env: &TestEnv) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(&env.db).expect("raw connection");
    conn.pragma_update(None, "foreign_keys", "OFF")
        .expect("foreign keys off");
    conn
}

fn check_json(env: &TestEnv) -> (Run, Value) {
    let run = env.run(&["db", "check", "--format", "json"]);
    let json = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout));
    (run, json)
}

/// The failures a JSON report lists for one check.
pub(crate) fn failures_of(report: &Value, check: &str) -> Vec<String> {
    let c = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == check)
        .unwrap_or_else(|| panic!("no check {check}: {report}"));
    c["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f.as_str().expect("text").to_string())
        .collect()
}

#[test]
fn db_check_passes_on_the_demo_database_and_changes_nothing() {
    if crate::support::sqlite_only("db_check_passes_on_the_demo_database_and_changes_nothing") {
        return;
    }
    let env = with_demo_copy();
    let v = migrations_in("schemas/sqlite");
    let before = sha256(&env.db);
    let out = env.run(&["db", "check"]).ok().to_string();
    assert!(
        out.starts_with(&format!(
            "sqlite {} (schema version {v} of {v})",
            env.db.display()
        )),
        "{out}"
    );
    for check in [
        "schema_version",
        "sqlite_integrity",
        "regimen_items",
        "versions_dense",
        "no_open_on_superseded",
        "audit_append_only",
    ] {
        assert!(out.contains(&format!("ok    {check}: ")), "{check}: {out}");
    }
    assert!(!out.contains("FAIL"), "{out}");
    let (run, json) = check_json(&env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json["engine"], "sqlite");
    assert_eq!(json["schema_version"], v);
    assert!(
        json["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["ok"] == true)
    );
    assert_eq!(sha256(&env.db), before, "db check wrote to the file");
}

/// One kind of damage, made with a raw connection (no foreign keys, no
/// store), and what `db check` must say about it.
pub(crate) struct Damage {
    pub what: &'static str,
    pub sql: &'static str,
    pub check: &'static str,
    /// The failure, with `{R}` for the damaged regimen's id, `{E}` for the
    /// exception's, `{K}` its kind, `{P}` and `{S}` the regimen's patient and source.
    pub says: &'static str,
}

/// The damages made with the same SQL on both engines.
pub(crate) const VERSION_DAMAGE: [Damage; 2] = [
    Damage {
        what: "versions 1 and 3, no 2",
        sql: "INSERT INTO regimens (patient_id, source, version, document_id, status, created_at)
              SELECT patient_id, source, 3, document_id, status, created_at FROM regimens WHERE id = {R}",
        check: "versions_dense",
        says: "patient {P}, source {S}: version 2 is missing (the newest is 3)",
    },
    Damage {
        what: "the only version renumbered",
        sql: "UPDATE regimens SET version = 2 WHERE id = {R}",
        check: "versions_dense",
        says: "patient {P}, source {S}: versions start at 2, not 1",
    },
];

/// The regimen a damage is made to: one with items and an open exception
/// (the demo has several). Columns: the exception's id and kind, the
/// regimen's id, patient and source.
pub(crate) const DAMAGED_REGIMEN: &str =
    "SELECT e.id, e.kind, r.id, r.patient_id, r.source FROM exceptions e
     JOIN regimens r ON r.id = e.regimen_id
     WHERE e.state = 'open' AND EXISTS (SELECT 1 FROM items i WHERE i.regimen_id = r.id)
     ORDER BY e.id LIMIT 1";

/// `DAMAGED_REGIMEN`'s row, filled into a damage's SQL or message.
pub(crate) struct Damaged {
    pub exception: i64,
    pub kind: String,
    pub regimen: i64,
    pub patient: String,
    pub source: String,
}

impl Damaged {
    pub(crate) fn fill(&self, s: &str) -> String {
        s.replace("{R}", &self.regimen.to_string())
            .replace("{E}", &self.exception.to_string())
            .replace("{K}", &self.kind)
            .replace("{P}", &self.patient)
            .replace("{S}", &self.source)
    }
}

#[test]
fn db_check_names_each_kind_of_damage_with_where_and_exits_1() {
    if crate::support::sqlite_only("db_check_names_each_kind_of_damage_with_where_and_exits_1") {
        return;
    }
    let cases = [
        Damage {
            what: "a regimen's items deleted",
            sql: "DELETE FROM items WHERE regimen_id = {R}",
            check: "regimen_items",
            says: "regimen {R} (patient {P}, source {S}, version 1) has no items and no none_shared or unreadable_record exception saying why",
        },
        Damage {
            what: "a version 2 added while version 1's exception is still open",
            sql: "INSERT INTO regimens (patient_id, source, version, document_id, status, created_at)
                  SELECT patient_id, source, 2, document_id, status, created_at FROM regimens WHERE id = {R};
                  INSERT INTO items (regimen_id, position, codes, ingredient_codes, status, sources, records)
                  VALUES (last_insert_rowid(), 0, '[]', '[]', 'active', '[]', '[]')",
            check: "no_open_on_superseded",
            says: "exception {E} ({K}) is open on regimen {R} (patient {P}, source {S}, version 1), which a later version superseded",
        },
        Damage {
            what: "the audit's UPDATE trigger dropped",
            sql: "DROP TRIGGER audit_no_update",
            check: "audit_append_only",
            says: "trigger audit_no_update is missing or changed: the audit no longer refuses UPDATE",
        },
        Damage {
            what: "the DELETE trigger dropped and an audit row deleted",
            sql: "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 5",
            check: "audit_append_only",
            says: "audit row 5 is missing",
        },
        Damage {
            what: "the DELETE trigger rewritten to do nothing (writable_schema)",
            sql: "PRAGMA writable_schema = ON;
                  UPDATE sqlite_schema SET sql = replace(sql, 'SELECT RAISE(ABORT, ''audit is append-only'')', 'SELECT 1')
                  WHERE type = 'trigger' AND name = 'audit_no_delete';
                  PRAGMA writable_schema = OFF",
            check: "audit_append_only",
            says: "trigger audit_no_delete is missing or changed: the audit no longer refuses DELETE",
        },
    ];
    for case in cases.into_iter().chain(VERSION_DAMAGE) {
        let env = with_demo_copy();
        let conn = raw(&env);
        let target = conn
            .query_row(DAMAGED_REGIMEN, [], |row| {
                Ok(Damaged {
                    exception: row.get(0)?,
                    kind: row.get(1)?,
                    regimen: row.get(2)?,
                    patient: row.get(3)?,
                    source: row.get(4)?,
                })
            })
            .expect("an open exception on a regimen with items");
        let fill = |s: &str| target.fill(s);
        conn.execute_batch(&fill(case.sql))
            .unwrap_or_else(|err| panic!("{}: {err}", case.what));
        drop(conn);
        let damaged = sha256(&env.db);

        let run = env.run(&["db", "check"]);
        let err = run.fails(1);
        assert!(
            err.contains("db check:") && err.contains(case.check),
            "{}: {err}",
            case.what
        );
        assert!(
            run.stdout.contains(&format!("FAIL  {}: ", case.check)),
            "{}: {}",
            case.what,
            run.stdout
        );
        let says = fill(case.says);
        assert!(
            run.stdout.contains(&format!("      - {says}")),
            "{}: expected {says:?} in\n{}",
            case.what,
            run.stdout
        );
        let (run, json) = check_json(&env);
        assert_eq!(run.code, 1, "{}", case.what);
        assert!(
            failures_of(&json, case.check).contains(&says),
            "{}: {json}",
            case.what
        );
        assert_eq!(
            sha256(&env.db),
            damaged,
            "{}: db check repaired or wrote",
            case.what
        );
    }
}

/// A database made by an older rxsync: the first `n` migrations.
fn old_database(path: &Path, n: usize) {
    let conn = rusqlite::Connection::open(path).expect("creates");
    let mut files: Vec<_> = std::fs::read_dir(repo_path("schemas/sqlite"))
        .expect("schemas")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in &files[..n] {
        conn.execute_batch(&std::fs::read_to_string(f).expect("migration"))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    conn.pragma_update(None, "user_version", n as i64)
        .expect("version");
}

#[test]
fn db_migrate_brings_an_older_database_to_the_current_version_saying_before_and_after() {
    if crate::support::sqlite_only(
        "db_migrate_brings_an_older_database_to_the_current_version_saying_before_and_after",
    ) {
        return;
    }
    let env = TestEnv::new();
    old_database(&env.db, 12);
    let v = migrations_in("schemas/sqlite");
    let run = env.run(&["db", "check"]);
    run.fails(1);
    assert!(
        run.stdout.contains(
            &format!("FAIL  schema_version: the schema is at the version this rxsync writes\n      - schema version 12, this rxsync writes {v}: run rxsync db migrate")
        ),
        "{}",
        run.stdout
    );
    let out = env.run(&["db", "migrate"]).ok().to_string();
    assert_eq!(
        out.trim(),
        format!(
            "sqlite {}: schema version 12 -> {v} (applied {} migration(s))",
            env.db.display(),
            v - 12
        )
    );
    let again = env.run(&["db", "migrate", "--format", "json"]).json();
    assert_eq!(again["before"], v);
    assert_eq!(again["after"], v);
    assert_eq!(again["known"], v);
    env.run(&["db", "check"]).ok();
}

#[test]
fn db_check_of_a_missing_file_is_a_usage_error_and_creates_nothing() {
    if crate::support::sqlite_only(
        "db_check_of_a_missing_file_is_a_usage_error_and_creates_nothing",
    ) {
        return;
    }
    let env = TestEnv::new();
    let err = env.run(&["db", "check"]).fails(2).to_string();
    assert!(
        err.contains(&format!("no SQLite database at {}", env.db.display())),
        "{err}"
    );
    assert!(!env.db.exists());
}

#[test]
fn db_every_command_on_an_unreachable_postgres_url_names_it_without_its_password_and_touches_no_file()
 {
    let env = TestEnv::new();
    let url = "postgres://rx:db-url-secret-pw@127.0.0.1:1/rx";
    for args in [
        &["queue", "list"][..],
        &["run", "--once"],
        &["patient", "add", "--id", "P1"],
        &["serve"],
        &["db", "check"],
    ] {
        let run = env.run_bare(args, &[("RXSYNC_DATABASE_URL", url)]);
        let err = run.fails(1);
        assert!(
            err.contains("cannot connect to postgres://rx@127.0.0.1:1/rx"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("db-url-secret-pw"), "{err}");
    }
    assert!(!env.dir.path().join("rxsync.db").exists());

    // A url that is not PostgreSQL's is a configuration error naming the key.
    let config = env.write(
        "config.toml",
        b"[database]\nurl = \"mysql://rx:other-secret@h/rx\"\n",
    );
    let run = env.run_bare(&["--config", &config, "db", "check"], &[]);
    let err = run.fails(2);
    assert!(
        err.contains("database.url must be a postgres:// or postgresql:// URL"),
        "{err}"
    );
    assert!(!err.contains("other-secret"), "{err}");
}

#[test]
fn db_copy_refuses_a_source_it_cannot_copy_before_connecting_anywhere() {
    let env = TestEnv::new();
    // Port 1 on loopback: nothing listens, so reaching it would fail differently.
    let to = "postgres://rx:copy-secret@127.0.0.1:1/rx";
    let err = env
        .run(&["db", "copy", "--from", "rxsync.db", "--to", to])
        .fails(2)
        .to_string();
    assert!(err.contains("--from must be sqlite:PATH"), "{err}");

    let missing = env.dir.path().join("missing.db");
    let err = env
        .run(&[
            "db",
            "copy",
            "--from",
            &format!("sqlite:{}", missing.display()),
            "--to",
            to,
        ])
        .fails(2)
        .to_string();
    assert!(
        err.contains(&format!("no SQLite database at {}", missing.display())),
        "{err}"
    );
    assert!(!missing.exists());

    old_database(&env.db, 12);
    let err = env
        .run(&[
            "db",
            "copy",
            "--from",
            &format!("sqlite:{}", env.db.display()),
            "--to",
            to,
        ])
        .fails(1)
        .to_string();
    assert!(
        err.contains(&format!(
            "has schema version 12, this rxsync writes {}: run `rxsync --db",
            migrations_in("schemas/sqlite")
        )) && err.contains("db migrate` first"),
        "{err}"
    );
    let err = env
        .run(&[
            "db",
            "copy",
            "--from",
            &format!("sqlite:{}", env.db.display()),
            "--to",
            "mysql://h/x",
        ])
        .fails(2)
        .to_string();
    assert!(err.contains("--to must be a postgres://"), "{err}");
    assert!(!err.contains("copy-secret"));
}
