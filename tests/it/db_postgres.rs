//! `rxsync db migrate|check|copy` on a real PostgreSQL server: the one
//! `RXSYNC_TEST_PG_URL` names (`.ci/run` starts a throwaway cluster with
//! `.ci/postgres.sh` and sets it). Each test makes its own database there.
//! Marked #[ignore] so `cargo test` needs no server; `.ci/run` runs them
//! with --include-ignored. Without the variable they say so and pass,
//! except under CI, where its absence is a failure.

use crate::db::{demo_database, with_demo_copy};
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
    let out = rxsync(&env, &url, &["db", "migrate"]).ok().to_string();
    assert!(
        out.contains(": schema version 0 -> 1 (applied 1 migration(s))")
            && out.starts_with("postgres postgres://"),
        "{out}"
    );
    let again = rxsync(&env, &url, &["db", "migrate", "--format", "json"]).json();
    assert_eq!(
        (again["before"].as_u64(), again["after"].as_u64()),
        (Some(1), Some(1))
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
    assert_eq!(applied, [(1, "0001_core".to_string())]);

    let out = rxsync(&env, &url, &["db", "check"]).ok().to_string();
    assert!(out.contains("(schema version 1 of 1)"), "{out}");
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
    // Nothing else works on PostgreSQL yet, and says so.
    rxsync(&env, &url, &["queue", "list"]).fails(2);
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

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn db_pg_copy_moves_the_demo_with_equal_counts_and_identical_ciphertexts_and_refuses_a_second_copy()
{
    let Some(server) = server() else { return };
    let url = fresh_database(&server);
    let env = with_demo_copy();
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
    assert_eq!(tables.len(), 25, "{report}");
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
    assert!(
        report["tables"][0]["rows"].as_i64() > Some(0),
        "the demo has patients"
    );

    // The vault's ciphertexts and the documents, byte for byte.
    let sealed = |sql: &str| -> Vec<(i64, Option<Vec<u8>>)> {
        let mut stmt = sqlite.prepare(sql).expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    for (table, column) in [
        ("links", "token"),
        ("links", "token_secret"),
        ("links", "refresh_token"),
        ("documents", "bytes"),
    ] {
        let sql = format!("SELECT id, {column} FROM {table} ORDER BY id");
        let source = sealed(&sql);
        let target: Vec<(i64, Option<Vec<u8>>)> = pg
            .query(&sql, &[])
            .expect("target")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(source, target, "{table}.{column}");
        if column == "token" || column == "bytes" {
            assert!(
                source.iter().any(|(_, b)| b.is_some()),
                "{table}.{column} has values"
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
