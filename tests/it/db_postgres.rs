//! `rxsync db migrate|check|copy` on a real PostgreSQL server: the one
//! `RXSYNC_TEST_PG_URL` names (`.ci/run` starts a throwaway cluster with
//! `.ci/postgres.sh` and sets it). Each test makes its own database there.
//! Marked #[ignore] so `cargo test` needs no server; `.ci/run` runs them
//! with --include-ignored. Without the variable they say so and pass,
//! except under CI, where its absence is a failure.

use crate::db::{
    DAMAGED_REGIMEN, Damage, Damaged, VERSION_DAMAGE, demo_database, failures_of, with_demo_copy,
};
use crate::support::{Run, TestEnv};
use postgres::{Client, NoTls};

/// The server's URL, or None (outside CI) when no server was given.
fn server() -> Option<String> {
    match std::env::var("RXSYNC_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "RXSYNC_TEST_PG_URL is unset under CI: .ci/run starts PostgreSQL (.ci/postgres.sh) and exports it"
            )
        }
        _ => {
            eprintln!(
                "skipped: RXSYNC_TEST_PG_URL is unset (start a server with `. .ci/postgres.sh && start_test_postgres`)"
            );
            None
        }
    }
}

/// A new, empty database on the server: its URL.
fn fresh_database(server: &str) -> String {
    let mut admin = Client::connect(server, NoTls).expect("connects to RXSYNC_TEST_PG_URL");
    let name = format!("rxsync_t_{}", hex::encode(rand::random::<[u8; 6]>()));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("creates a database");
    let mut url = url::Url::parse(server).expect("RXSYNC_TEST_PG_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn password_of(url: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .password()
        .unwrap_or("")
        .to_string()
}

/// `rxsync ARGS` with RXSYNC_DATABASE_URL set.
fn rxsync(env: &TestEnv, url: &str, args: &[&str]) -> Run {
    let run = env.run_bare(args, &[("RXSYNC_DATABASE_URL", url)]);
    let pw = password_of(url);
    if !pw.is_empty() {
        assert!(
            !run.stdout.contains(&pw) && !run.stderr.contains(&pw),
            "the password was printed: {run:?}"
        );
    }
    run
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn db_pg_migrate_counts_the_version_on_an_empty_database_and_check_passes() {
    let Some(server) = server() else { return };
    let url = fresh_database(&server);
    let env = TestEnv::new();
    let v = crate::db::migrations_in("schemas/postgres");
    let out = rxsync(&env, &url, &["db", "migrate"]).ok().to_string();
    assert!(
        out.contains(&format!(
            ": schema version 0 -> {v} (applied {v} migration(s))"
        )) && out.starts_with("postgres postgres://"),
        "{out}"
    );
    let again = rxsync(&env, &url, &["db", "migrate", "--format", "json"]).json();
    assert_eq!(
        (again["before"].as_u64(), again["after"].as_u64()),
        (Some(v as u64), Some(v as u64))
    );
    let mut client = Client::connect(&url, NoTls).expect("connects");
    let applied: Vec<(i32, String)> = client
        .query(
            "SELECT version, name FROM rxsync_schema ORDER BY version",
            &[],
        )
        .expect("counted")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // One row per migration file, numbered and named as the files are.
    let mut files: Vec<String> = std::fs::read_dir(crate::support::repo_path("schemas/postgres"))
        .expect("the schemas folder")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".sql")
                .map(str::to_string)
        })
        .collect();
    files.sort();
    let expected: Vec<(i32, String)> = (1..).zip(files).collect();
    assert_eq!(applied, expected);

    let out = rxsync(&env, &url, &["db", "check"]).ok().to_string();
    assert!(
        out.contains(&format!("(schema version {v} of {v})")),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    let report = rxsync(&env, &url, &["db", "check", "--format", "json"]).json();
    assert_eq!(report["engine"], "postgres");
    assert!(
        report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["ok"] == true)
    );
    // The other commands work on it too: its queue is empty.
    let queue = rxsync(&env, &url, &["queue", "list", "--format", "json"]).json();
    assert_eq!(queue, serde_json::json!([]));
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn db_pg_the_audit_refuses_update_delete_and_truncate_and_check_sees_a_disabled_trigger() {
    let Some(server) = server() else { return };
    let url = fresh_database(&server);
    let env = TestEnv::new();
    rxsync(&env, &url, &["db", "migrate"]).ok();
    let mut client = Client::connect(&url, NoTls).expect("connects");
    client
        .execute(
            "INSERT INTO audit (at, actor, action, detail) VALUES (now(), 'test', 'test.write', '{\"n\": 1}')",
            &[],
        )
        .expect("appending is allowed");
    for sql in [
        "UPDATE audit SET actor = 'someone else'",
        "DELETE FROM audit",
        "TRUNCATE audit",
    ] {
        let err = client.batch_execute(sql).expect_err(sql);
        let message = err
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert_eq!(message, "audit is append-only", "{sql}: {err:?}");
    }
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM audit", &[])
        .expect("count")
        .get(0);
    assert_eq!(n, 1);

    client
        .batch_execute("ALTER TABLE audit DISABLE TRIGGER audit_no_delete")
        .expect("the owner can disable it");
    let run = rxsync(&env, &url, &["db", "check"]);
    run.fails(1);
    assert!(
        run.stdout.contains("FAIL  audit_append_only")
            && run.stdout.contains(
                "- trigger audit_no_delete is disabled: the audit no longer refuses DELETE"
            ),
        "{}",
        run.stdout
    );
}

/// `db check` on PostgreSQL names each kind of damage as it does on SQLite
/// (tests/it/db.rs): the demo copied in, one damage per fresh database,
/// made with the server's own SQL. (A gap in the audit's ids is not
/// damage on PostgreSQL, whose identities skip the numbers of rolled-back
/// transactions: there the check is that the refusing triggers stand.)
#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn db_pg_check_names_each_kind_of_damage_with_where_and_exits_1() {
    let Some(server) = server() else { return };
    let cases = [
        Damage {
            what: "a regimen's items deleted",
            // The server keeps its foreign keys: the exceptions that name
            // an item let go of it first.
            sql: "UPDATE exceptions SET item_id = NULL WHERE item_id IN (SELECT id FROM items WHERE regimen_id = {R});
                  UPDATE exceptions SET related_item_id = NULL
                      WHERE related_item_id IN (SELECT id FROM items WHERE regimen_id = {R});
                  DELETE FROM items WHERE regimen_id = {R}",
            check: "regimen_items",
            says: "regimen {R} (patient {P}, source {S}, version 1) has no items and no none_shared or unreadable_record exception saying why",
        },
        Damage {
            what: "a version 2 added while version 1's exception is still open",
            sql: "WITH r AS (
                      INSERT INTO regimens (patient_id, source, version, document_id, status, created_at)
                      SELECT patient_id, source, 2, document_id, status, created_at FROM regimens WHERE id = {R}
                      RETURNING id)
                  INSERT INTO items (regimen_id, position, codes, ingredient_codes, status, sources, records)
                  SELECT id, 0, '[]', '[]', 'active', '[]', '[]' FROM r",
            check: "no_open_on_superseded",
            says: "exception {E} ({K}) is open on regimen {R} (patient {P}, source {S}, version 1), which a later version superseded",
        },
        Damage {
            what: "the audit's UPDATE trigger dropped",
            sql: "DROP TRIGGER audit_no_update ON audit",
            check: "audit_append_only",
            says: "trigger audit_no_update is missing: the audit no longer refuses UPDATE",
        },
    ];
    let demo = with_demo_copy();
    let from = format!("sqlite:{}", demo.db.display());
    for case in cases.into_iter().chain(VERSION_DAMAGE) {
        let url = fresh_database(&server);
        let env = TestEnv::new();
        rxsync(&env, &url, &["db", "copy", "--from", &from]).ok();
        let mut pg = Client::connect(&url, NoTls).expect("connects");
        let row = pg
            .query_one(DAMAGED_REGIMEN, &[])
            .expect("an open exception on a regimen with items");
        let target = Damaged {
            exception: row.get(0),
            kind: row.get(1),
            regimen: row.get(2),
            patient: row.get(3),
            source: row.get(4),
        };
        let fill = |s: &str| target.fill(s);
        pg.batch_execute(&fill(case.sql))
            .unwrap_or_else(|err| panic!("{}: {err:?}", case.what));
        let rows = |pg: &mut Client| -> i64 {
            pg.query_one(
                "SELECT (SELECT COUNT(*) FROM regimens) + (SELECT COUNT(*) FROM items)
                      + (SELECT COUNT(*) FROM audit) + (SELECT COUNT(*) FROM exceptions)",
                &[],
            )
            .expect("counts")
            .get(0)
        };
        let damaged = rows(&mut pg);

        let run = rxsync(&env, &url, &["db", "check"]);
        let err = run.fails(1);
        assert!(
            err.contains("db check:") && err.contains(case.check),
            "{}: {err}",
            case.what
        );
        let says = fill(case.says);
        assert!(
            run.stdout.contains(&format!("FAIL  {}: ", case.check))
                && run.stdout.contains(&format!("      - {says}")),
            "{}: expected {says:?} in\n{}",
            case.what,
            run.stdout
        );
        let run = rxsync(&env, &url, &["db", "check", "--format", "json"]);
        assert_eq!(run.code, 1, "{}", case.what);
        let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        assert_eq!(json["engine"], "postgres", "{json}");
        assert!(
            failures_of(&json, case.check).contains(&says),
            "{}: {json}",
            case.what
        );
        assert_eq!(
            rows(&mut pg),
            damaged,
            "{}: db check repaired or wrote",
            case.what
        );
    }
}

/// One row in each table the demo leaves empty, written as the store
/// writes them (RFC 3339 times, 0/1 flags, sealed blobs), so that every
/// column's conversion is exercised.
fn fill_the_tables_the_demo_leaves_empty(db: &std::path::Path) {
    let conn = rusqlite::Connection::open(db).expect("source");
    conn.execute_batch(
        "INSERT INTO users (id, name, role, password_hash, created_at) VALUES (1, 'ana', 'clinician', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', '2026-12-01T10:00:00.000Z');
         INSERT INTO sessions VALUES ('ab12', 1, '2026-12-01T10:00:00.000Z', '2026-12-01T18:00:00.000Z', NULL);
         INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES (1, 'cd34', '2026-12-01T10:00:00.000Z');
         INSERT INTO login_attempts (at, name, remote, ok) VALUES ('2026-12-01T10:00:00.000Z', 'ana', '127.0.0.1', 1);
         INSERT INTO code_mappings (source, system, code, ndc11, decided_by, decided_at, exception_id)
             SELECT source, 'local', 'X1', '00777310502', 'ana', '2026-12-01T10:00:00.000Z', id FROM exceptions LIMIT 1;
         INSERT INTO decisions (exception_id, action, decided_by, decided_at, undo)
             SELECT id, 'keep', 'ana', '2026-12-01T10:00:00.000Z', '{}' FROM exceptions LIMIT 1;
         INSERT INTO bulk_staging VALUES ('run1', 'p1', 0, 1, 'MedicationRequest', 'm1', NULL, '{}');
         INSERT INTO exports (id, provider, level, kickoff_url, requested_at, transaction_time, requires_token, state)
             VALUES (1, 'acme', 'system', 'https://acme.example/$export', '2026-12-01T10:00:00.000Z', '2026-12-01T09:59:58+00:00', 1, 'completed');
         INSERT INTO export_files (export_id, n, kind, type, url, path, bytes, downloaded_at)
             VALUES (1, 0, 'output', 'MedicationRequest', 'https://acme.example/f1', '/tmp/f1', 10, '2026-12-01T10:01:00.000Z');
         INSERT INTO consent_flows (id, provider, patient_id, state_sha256, key_id, pkce_verifier, redirect_uri, created_at, expires_at)
             SELECT 'flow1', 'acme', id, 'ef56', 'k1', x'00ff10203040', 'http://127.0.0.1:8765/callback', '2026-12-01T10:00:00.000Z', '2026-12-01T10:10:00.000Z'
             FROM patients LIMIT 1;
         INSERT INTO provider_discovery VALUES ('acme', 'https://acme.example', 'https://acme.example/.well-known/smart-configuration', '{}', '2026-12-01T10:00:00.000Z', '2026-12-02T10:00:00.000Z');
         INSERT INTO client_registrations (provider, registration_url, key_id, client_id, client_secret, auth_method, client_secret_expires_at, created_at)
             VALUES ('acme', 'https://acme.example/register', 'k1', x'0102030405', x'fffefd', 'client_secret_basic', '2027-01-01T00:00:00.000Z', '2026-12-01T10:00:00.000Z');
         INSERT INTO invitations (id, token_sha256, patient_id, provider, created_by, created_at, expires_at, flow_id)
             SELECT 'inv1', '9a9a', id, 'acme', 'ana', '2026-12-01T10:00:00.000Z', '2026-12-04T10:00:00.000Z', 'flow1' FROM patients LIMIT 1;
         INSERT INTO provider_slots VALUES ('acme', 0, 'pid 1 on h (ab12)', 1, '2026-12-01T10:15:00.000Z');
         INSERT INTO provider_breakers VALUES ('acme', 2, '2026-12-01T10:20:00.000Z');",
    )
    .expect("fills the empty tables");
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn db_pg_copy_moves_the_demo_with_equal_counts_and_identical_ciphertexts_and_refuses_a_second_copy()
{
    let Some(server) = server() else { return };
    let url = fresh_database(&server);
    let env = with_demo_copy();
    fill_the_tables_the_demo_leaves_empty(&env.db);
    let from = format!("sqlite:{}", env.db.display());
    let report = rxsync(
        &env,
        &url,
        &["db", "copy", "--from", &from, "--format", "json"],
    )
    .json();
    assert!(
        report["check"]["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["ok"] == true),
        "{report}"
    );

    let sqlite = rusqlite::Connection::open(&env.db).expect("source");
    let mut pg = Client::connect(&url, NoTls).expect("target");
    let tables = report["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 27, "{report}");
    for t in tables {
        let name = t["table"].as_str().expect("name");
        let source: i64 = sqlite
            .query_row(&format!("SELECT COUNT(*) FROM {name}"), [], |r| r.get(0))
            .expect("count");
        let target: i64 = pg
            .query_one(&format!("SELECT COUNT(*) FROM {name}"), &[])
            .expect("count")
            .get(0);
        assert_eq!(
            (t["rows"].as_i64(), target),
            (Some(source), source),
            "{name}"
        );
    }
    for t in tables {
        assert!(
            t["rows"].as_i64() > Some(0),
            "every table has a row to copy: {t}"
        );
    }

    // The vault's ciphertexts and the documents, byte for byte.
    let sealed = |sql: &str| -> Vec<(String, Option<Vec<u8>>)> {
        let mut stmt = sqlite.prepare(sql).expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    for (table, key, column) in [
        ("links", "id", "token"),
        ("links", "id", "token_secret"),
        ("links", "id", "refresh_token"),
        ("documents", "id", "bytes"),
        ("consent_flows", "id", "pkce_verifier"),
        ("client_registrations", "provider", "client_id"),
        ("client_registrations", "provider", "client_secret"),
    ] {
        let sql = format!("SELECT CAST({key} AS TEXT), {column} FROM {table} ORDER BY {key}");
        let source = sealed(&sql);
        let target: Vec<(String, Option<Vec<u8>>)> = pg
            .query(&sql, &[])
            .expect("target")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(source, target, "{table}.{column}");
        if column != "token_secret" && column != "refresh_token" {
            assert!(
                source.iter().any(|(_, b)| b.is_some()),
                "{table}.{column} has values: {source:?}"
            );
        }
    }
    // Times became timestamptz, the same instants.
    let text: String = sqlite
        .query_row(
            "SELECT created_at FROM links ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("time");
    let at: chrono::DateTime<chrono::Utc> = pg
        .query_one("SELECT created_at FROM links ORDER BY id LIMIT 1", &[])
        .expect("time")
        .get(0);
    assert_eq!(
        at,
        chrono::DateTime::parse_from_rfc3339(&text).expect("rfc3339")
    );
    // The identities go on after the copied ids.
    let next: i64 = pg
        .query_one(
            "INSERT INTO audit (at, actor, action) VALUES (now(), 'test', 'after.copy') RETURNING id",
            &[],
        )
        .expect("append")
        .get(0);
    let max: i64 = sqlite
        .query_row("SELECT MAX(id) FROM audit", [], |r| r.get(0))
        .expect("max");
    assert_eq!(next, max + 1);

    // A second copy into the same, now non-empty, database is refused and changes nothing.
    let run = rxsync(&env, &url, &["db", "copy", "--from", &from]);
    let err = run.fails(1);
    assert!(
        err.contains("the target database is not empty: table patients has"),
        "{err}"
    );
    let audit: i64 = pg
        .query_one("SELECT COUNT(*) FROM audit", &[])
        .expect("count")
        .get(0);
    assert_eq!(audit, max + 1);
    let _ = demo_database();
}

/// The tables, columns, NOT NULLs, indexes, unique and foreign keys of the
/// SQLite schema after every migration, and those of the PostgreSQL one.
#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn db_pg_the_schema_matches_sqlites_after_every_migration() {
    let Some(server) = server() else { return };
    let url = fresh_database(&server);
    let env = TestEnv::new();
    // The SQLite file, whichever engine the other tests run on.
    let db = env.db.display().to_string();
    env.run_bare(&["--db", &db, "db", "migrate"], &[]).ok();
    rxsync(&env, &url, &["db", "migrate"]).ok();
    let sqlite = rusqlite::Connection::open(&env.db).expect("sqlite");
    let mut pg = Client::connect(&url, NoTls).expect("pg");
    let set = |rows: Vec<String>| rows.into_iter().collect::<std::collections::BTreeSet<_>>();
    let lite = |sql: &str| -> Vec<String> {
        let mut stmt = sqlite.prepare(sql).expect(sql);
        stmt.query_map([], |r| r.get(0))
            .expect(sql)
            .collect::<Result<_, _>>()
            .expect(sql)
    };
    let mut post = |sql: &str| -> Vec<String> {
        pg.query(sql, &[])
            .expect(sql)
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    // column: table.name NOT NULL?
    let sqlite_columns = set(lite(
        "SELECT t.name || '.' || c.name || CASE WHEN c.\"notnull\" OR c.pk THEN ' not null' ELSE '' END
         FROM sqlite_schema t, pragma_table_info(t.name) c
         WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite_%'",
    ));
    let pg_columns = set(post(
        "SELECT table_name || '.' || column_name || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'rxsync_schema'",
    ));
    assert_eq!(sqlite_columns, pg_columns);
    let sqlite_indexes = set(lite(
        "SELECT tbl_name || ' ' || name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL",
    ));
    let pg_indexes = set(post(
        "SELECT i.tablename || ' ' || i.indexname FROM pg_indexes i
         WHERE i.schemaname = current_schema()
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    ));
    assert_eq!(sqlite_indexes, pg_indexes);
    // Unique constraints and primary keys: table(columns).
    let sqlite_unique = set(lite(
        "SELECT t.name || '(' || (SELECT group_concat(name, ',') FROM (SELECT ii.name FROM pragma_index_info(l.name) ii ORDER BY ii.seqno)) || ')'
         FROM sqlite_schema t, pragma_index_list(t.name) l
         WHERE t.type = 'table' AND l.origin IN ('u', 'pk')
         UNION
         SELECT t.name || '(' || c.name || ')' FROM sqlite_schema t, pragma_table_info(t.name) c
         WHERE t.type = 'table' AND c.pk = 1 AND NOT EXISTS (SELECT 1 FROM pragma_table_info(t.name) d WHERE d.pk = 2)
           AND NOT EXISTS (SELECT 1 FROM pragma_index_list(t.name) l WHERE l.origin = 'pk')",
    ));
    let pg_unique = set(post(
        "SELECT cl.relname || '(' || string_agg(a.attname, ',' ORDER BY k.ord) || ')'
         FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid
         CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
         WHERE c.contype IN ('u', 'p') AND cl.relname <> 'rxsync_schema'
           AND cl.relnamespace = current_schema()::regnamespace
         GROUP BY c.oid, cl.relname",
    ));
    assert_eq!(sqlite_unique, pg_unique);
    let sqlite_fks = set(lite(
        "SELECT t.name || '.' || f.\"from\" || ' -> ' || f.\"table\"
         FROM sqlite_schema t, pragma_foreign_key_list(t.name) f WHERE t.type = 'table'",
    ));
    let pg_fks = set(post(
        "SELECT cl.relname || '.' || a.attname || ' -> ' || rf.relname
         FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class rf ON rf.oid = c.confrelid
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         WHERE c.contype = 'f'",
    ));
    assert_eq!(sqlite_fks, pg_fks);
    // The CHECKs admit and refuse the same words (links.state as 0015 widened it).
    let checks: Vec<String> = post(
        "SELECT cl.relname || ': ' || pg_get_constraintdef(c.oid) FROM pg_constraint c
         JOIN pg_class cl ON cl.oid = c.conrelid WHERE c.contype = 'c' ORDER BY 1",
    );
    let sqlite_checks =
        lite("SELECT sql FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%CHECK%'")
            .join("\n");
    assert_eq!(
        sqlite_checks.matches("CHECK (").count(),
        checks.len(),
        "{checks:?}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("links: CHECK") && c.contains("'held'")),
        "{checks:?}"
    );
}

#[test]
#[ignore = "needs PostgreSQL's binaries (Debian's postgresql); run by .ci/run"]
fn db_pg_the_ci_script_starts_a_cluster_of_an_unprivileged_user_and_removes_it() {
    let has_binaries = std::process::Command::new("bash")
        .args(["-c", ". .ci/postgres.sh; pg_bin"])
        .current_dir(crate::support::repo())
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_binaries {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs postgresql (.ci/run)"
        );
        eprintln!("skipped: no PostgreSQL binaries (install Debian's postgresql)");
        return;
    }
    let script = |body: &str, dir: &str| {
        let out = std::process::Command::new("bash")
            .args([
                "-c",
                &format!("set -euo pipefail; . .ci/postgres.sh; {body}"),
            ])
            .current_dir(crate::support::repo())
            .env("RXSYNC_TEST_PG_DIR", dir)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{body}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let started = script(
        "start_test_postgres; echo \"$RXSYNC_TEST_PG_URL\"; echo \"$RXSYNC_TEST_PG_DIR\"; stat -c %u \"$RXSYNC_TEST_PG_DIR/data\"",
        "",
    );
    let lines: Vec<&str> = started.lines().collect();
    let [url, dir, owner] = lines[..] else {
        panic!("{started}")
    };
    assert_ne!(owner, "0", "the cluster is not root's");
    let host = url::Url::parse(url).expect("url");
    assert_eq!(host.host_str(), Some("127.0.0.1"), "loopback only");
    let mut client = Client::connect(url, NoTls).expect("the cluster answers");
    let one: i32 = client.query_one("SELECT 1", &[]).expect("query").get(0);
    assert_eq!(one, 1);
    drop(client);
    script("stop_test_postgres", dir);
    assert!(!std::path::Path::new(dir).exists(), "{dir} removed");
    assert!(Client::connect(url, NoTls).is_err(), "the server stopped");
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn db_pg_copy_of_a_value_that_does_not_fit_names_where_and_commits_nothing() {
    let Some(server) = server() else { return };
    let url = fresh_database(&server);
    let env = with_demo_copy();
    let conn = rusqlite::Connection::open(&env.db).expect("source");
    let link: i64 = conn
        .query_row("SELECT MAX(id) FROM links", [], |r| r.get(0))
        .expect("a link");
    conn.execute(
        "UPDATE links SET updated_at = 'yesterday' WHERE id = ?1",
        [link],
    )
    .expect("damages a time");
    drop(conn);
    let from = format!("sqlite:{}", env.db.display());
    let err = rxsync(&env, &url, &["db", "copy", "--from", &from])
        .fails(1)
        .to_string();
    assert!(
        err.contains(&format!(
            "table links, row {link}, column updated_at: \"yesterday\" is not an RFC 3339 time"
        )),
        "{err}"
    );
    let mut pg = Client::connect(&url, NoTls).expect("target");
    for table in ["patients", "links", "audit"] {
        let n: i64 = pg
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .expect("count")
            .get(0);
        assert_eq!(n, 0, "{table}: nothing was committed");
    }
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn db_pg_the_password_comes_from_the_url_a_password_file_or_pgpassword_and_tls_is_used_when_asked()
{
    let Some(server) = server() else { return };
    let url = fresh_database(&server);
    let password = password_of(&url);
    let mut bare = url::Url::parse(&url).expect("url");
    bare.set_password(None).expect("no password");
    let bare = bare.to_string();
    let env = TestEnv::new();

    // No password anywhere: the server refuses, and the message says where it connected.
    let err = env
        .run_bare(&["db", "migrate"], &[("RXSYNC_DATABASE_URL", &bare)])
        .fails(1)
        .to_string();
    assert!(err.contains("cannot connect to postgres://"), "{err}");

    // PGPASSWORD.
    let run = env.run_bare(
        &["db", "migrate"],
        &[("RXSYNC_DATABASE_URL", &bare), ("PGPASSWORD", &password)],
    );
    assert!(
        run.ok().contains(&format!(
            "schema version 0 -> {}",
            crate::db::migrations_in("schemas/postgres")
        )),
        "{run:?}"
    );

    // [database] password_file (its first line).
    let pw_file = env.write("pg.pw", format!("{password}\n").as_bytes());
    let config = env.write(
        "config.toml",
        format!("[database]\nurl = \"{bare}\"\npassword_file = \"{pw_file}\"\n").as_bytes(),
    );
    let run = env.run_bare(&["--config", &config, "db", "check"], &[]);
    run.ok();
    assert!(!run.stdout.contains(&password) && !run.stderr.contains(&password));

    // sslmode=require against a server without TLS: refused, not sent in the clear.
    let run = rxsync(&env, &format!("{url}?sslmode=require"), &["db", "check"]);
    let err = run.fails(1);
    assert!(
        err.contains("cannot connect to") && err.contains("TLS"),
        "{err}"
    );
}
