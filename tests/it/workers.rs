//! Many workers on one database (issue 13): several `rxsync run --once`
//! processes started together against the sandbox, on one PostgreSQL
//! database and on one SQLite file. Each due link is synced exactly once,
//! a SIGKILLed worker's links are finished once its lease runs out, a
//! rotating refresh token is used once, a provider's `max_in_flight` holds
//! across the workers as the sandbox counts it, and the demo's database
//! copied to PostgreSQL works there.
//!
//! The PostgreSQL tests are #[ignore]d (`cargo test` needs no server;
//! `.ci/run` runs them with --include-ignored and its throwaway cluster):
//! without `RXSYNC_TEST_PG_URL` they say so and pass, except under CI.

use crate::pull::harness::*;
use crate::support::{Run, Sandbox, TestEnv, repo_path};
use rxsync::domain::PatientId;
use rxsync::store::{LinkSecrets, NewLink, NewPatient};
use serde_json::{Value, json};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

/// The test cluster's URL, or None (outside CI) when none was given.
fn pg_server(test: &str) -> Option<String> {
    match std::env::var("RXSYNC_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: RXSYNC_TEST_PG_URL is unset under CI (.ci/run starts PostgreSQL)")
        }
        _ => {
            eprintln!(
                "{test}: skipped: RXSYNC_TEST_PG_URL is unset (start a server with `. .ci/postgres.sh && start_test_postgres`)"
            );
            None
        }
    }
}

/// A home with the sample dictionary and `providers`, on a fresh database
/// of `engine` (None: PostgreSQL asked for and no server given).
fn home_on(engine: Engine, test: &str, providers: &str) -> Option<Home> {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("rxsync.db");
    let pg = match engine {
        Engine::Postgres => {
            pg_server(test)?;
            Some(crate::support::fresh_pg_database())
        }
        // Whatever RXSYNC_TEST_ENGINE says: this test is the SQLite twin.
        Engine::Sqlite => None,
    };
    let _pg_drop = pg.clone().map(crate::support::DropDatabase);
    let env = TestEnv {
        dir,
        db,
        pg,
        _pg_drop,
    };
    env.run(&[
        "dict",
        "import",
        "--fda",
        &repo_path("samples/ndc").display().to_string(),
    ])
    .ok();
    let config = env.write("config.toml", providers.as_bytes());
    Some(Home { env, config })
}

/// `[sync]` settings before the providers.
fn with_sync(sync: &str, providers: &str) -> String {
    format!("[sync]\ninterval = 3600\njitter = 0.0\n{sync}\n{providers}")
}

/// `n` patients `W00000…`, each linked to `provider` with real sandbox
/// credentials for remote patient `w-i` (OAuth 1.0a tokens, or OAuth 2.0
/// grants whose access token the store believes expired when `expired`),
/// written through the store (much faster than `link add` per link).
fn seed(home: &Home, sb: &Sandbox, provider: &str, oauth2: bool, expired: bool, n: usize) {
    let (key, _) = rxsync::vault::VaultKey::load(None, &home.key_file()).expect("vault key");
    let mut store = home.env.store();
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    for i in 0..n {
        let patient = PatientId::parse(&format!("W{i:05}")).expect("patient id");
        store
            .add_patient(&NewPatient::with_id(patient.clone()), "test")
            .expect("patient");
        let remote = format!("w-{i}");
        let (secrets, expires_at) = if oauth2 {
            let g = sb.grant("demo-client", &remote);
            let text = |k: &str| g[k].as_str().expect(k).to_string();
            (
                LinkSecrets::Oauth2 {
                    access_token: text("access_token").into(),
                    refresh_token: Some(text("refresh_token").into()),
                },
                expired.then_some(past),
            )
        } else {
            let (token, secret) = sb.oauth1_token("demo-hmac-header", &remote);
            (
                LinkSecrets::Oauth1 {
                    token: token.into(),
                    token_secret: secret.into(),
                },
                None,
            )
        };
        store
            .add_link(
                &NewLink {
                    patient: &patient,
                    provider: &rxsync::domain::ProviderId::parse(provider).expect("provider id"),
                    remote_patient: &remote,
                    secrets,
                    expires_at,
                    scope: None,
                    grant_expires_at: None,
                },
                &key,
                "test",
            )
            .expect("link");
    }
}

/// `rxsync run --once --format json`, started (not waited for).
fn spawn_pass(home: &Home) -> Child {
    spawn_pass_with(home, &[])
}

/// With more environment (another provider's secret).
fn spawn_pass_with(home: &Home, env: &[(&str, &str)]) -> Child {
    let mut cmd = home.env.rxsync();
    cmd.args([
        "--config",
        &home.config,
        "run",
        "--once",
        "--format",
        "json",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in SECRETS.iter().chain(env) {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start rxsync run --once")
}

/// Starts `n` passes together and returns their summaries.
fn passes_together(home: &Home, n: usize) -> Vec<Value> {
    passes_together_with(home, n, &[])
}

fn passes_together_with(home: &Home, n: usize, env: &[(&str, &str)]) -> Vec<Value> {
    let children: Vec<Child> = (0..n).map(|_| spawn_pass_with(home, env)).collect();
    children
        .into_iter()
        .map(|c| {
            let run = Run::from(c.wait_with_output().expect("pass output"));
            run.json()
        })
        .collect()
}

/// Syncs the passes report, busy links (held by another) left out.
fn synced(summaries: &[Value]) -> u64 {
    summaries
        .iter()
        .flat_map(|s| s["outcomes"].as_object().cloned().unwrap_or_default())
        .filter(|(outcome, _)| outcome != "busy")
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum()
}

/// Outcome → count over the passes.
fn outcomes(summaries: &[Value]) -> std::collections::BTreeMap<String, u64> {
    let mut all = std::collections::BTreeMap::new();
    for s in summaries {
        for (k, v) in s["outcomes"].as_object().cloned().unwrap_or_default() {
            *all.entry(k).or_default() += v.as_u64().unwrap_or(0);
        }
    }
    all
}

/// What must hold after the workers are done with `n` links synced once
/// each: one `syncs` row per link, one regimen version 1 per patient and
/// source, no lease left, and `db check` clean.
fn assert_each_link_synced_once(home: &Home, n: i64) {
    let q = |sql: &str| home.env.query_i64(sql);
    assert_eq!(q("SELECT COUNT(*) FROM links"), n);
    assert_eq!(q("SELECT COUNT(*) FROM syncs"), n, "one sync row per link");
    assert_eq!(
        q("SELECT COUNT(DISTINCT link_id) FROM syncs"),
        n,
        "every link synced"
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM syncs WHERE outcome <> 'imported'"),
        0,
        "every sync imported"
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM regimens"),
        n,
        "one regimen per link"
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM regimens WHERE version <> 1"),
        0,
        "no second version of any regimen"
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM links WHERE lease_holder IS NOT NULL OR lease_until IS NOT NULL"),
        0,
        "no lease left"
    );
    assert_db_check_clean(home);
}

fn assert_db_check_clean(home: &Home) {
    let run = home.rx(&["db", "check", "--format", "json"]);
    let report = run.json();
    let checks = report["checks"].as_array().expect("checks");
    assert!(!checks.is_empty(), "{report}");
    assert!(checks.iter().all(|c| c["ok"] == true), "db check: {report}");
}

// ------------------------------------------------ each due link once

/// 3 `run --once` passes started together over `n` due links: together
/// they sync each once.
fn three_passes_over(engine: Engine, test: &str, n: usize) {
    let sb = Sandbox::start();
    let Some(home) = home_on(
        engine,
        test,
        &with_sync("concurrency = 16", &ccr_at(&sb, "ccr")),
    ) else {
        return;
    };
    seed(&home, &sb, "ccr", false, false, n);
    let started = Instant::now();
    let summaries = passes_together(&home, 3);
    eprintln!("{test}: {n} links, 3 passes in {:?}", started.elapsed());
    assert_eq!(synced(&summaries), n as u64, "{summaries:?}");
    assert_eq!(
        outcomes(&summaries).get("imported").copied(),
        Some(n as u64),
        "{summaries:?}"
    );
    assert!(
        summaries
            .iter()
            .filter(|s| synced(&[(*s).clone()]) > 0)
            .count()
            >= 2,
        "the work was shared: {summaries:?}"
    );
    assert_each_link_synced_once(&home, n as i64);
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn workers_pg_three_passes_sync_3000_due_links_each_exactly_once() {
    three_passes_over(
        Engine::Postgres,
        "workers_pg_three_passes_sync_3000_due_links_each_exactly_once",
        3000,
    );
}

#[test]
fn workers_three_passes_on_one_sqlite_file_sync_each_due_link_exactly_once() {
    three_passes_over(
        Engine::Sqlite,
        "workers_three_passes_on_one_sqlite_file_sync_each_due_link_exactly_once",
        600,
    );
}

// ------------------------------------------------ a worker SIGKILLed

/// 3 passes with short leases over slow documents; one is SIGKILLed mid
/// pass. What it was syncing stored nothing; once its leases run out the
/// next pass finishes its links, and each link is synced once in the end.
fn a_killed_worker(engine: Engine, test: &str) {
    const N: usize = 120;
    let sb = Sandbox::start();
    let Some(home) = home_on(
        engine,
        test,
        &with_sync(
            "concurrency = 4\nlease = 3\nheartbeat = 1",
            &ccr_at(&sb, "ccr"),
        ),
    ) else {
        return;
    };
    seed(&home, &sb, "ccr", false, false, N);
    let (status, _) = sb.admin(
        "/admin/latency",
        Some(&json!({"path_prefix": "/ccr", "ms": 150})),
    );
    assert_eq!(status, 200);
    let mut victim = spawn_pass(&home);
    let others: Vec<Child> = (0..2).map(|_| spawn_pass(&home)).collect();
    // Mid pass: some links are done, the victim holds leases.
    let holder = format!("pid {} on ", victim.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = home.env.query_i64(&format!(
            "SELECT COUNT(*) FROM links WHERE lease_holder LIKE '{holder}%'"
        ));
        let done = home.env.query_i64("SELECT COUNT(*) FROM syncs");
        if held > 0 && done >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "the victim never held a lease");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: killing our own child.
    unsafe { libc::kill(victim.id() as i32, libc::SIGKILL) };
    let _ = victim.wait();
    let killed_at = Instant::now();
    let stranded = home.env.query_i64(&format!(
        "SELECT COUNT(*) FROM links WHERE lease_holder LIKE '{holder}%'"
    ));
    assert!(stranded > 0, "the victim died holding leases");
    let mut summaries: Vec<Value> = others
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().expect("pass")).json())
        .collect();
    // Passes after the leases ran out take the rest over.
    let (status, _) = sb.admin(
        "/admin/latency",
        Some(&json!({"path_prefix": "/ccr", "ms": 0})),
    );
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    while home.env.query_i64(
        "SELECT COUNT(*) FROM links WHERE next_due_at IS NULL OR lease_holder IS NOT NULL",
    ) > 0
    {
        assert!(
            Instant::now() < deadline,
            "the stranded links were never finished"
        );
        if killed_at.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(Duration::from_secs(4) - killed_at.elapsed());
        }
        summaries.extend(passes_together(&home, 1));
    }
    eprintln!(
        "{test}: the victim left {stranded} leases; finished {:?} after the kill",
        killed_at.elapsed()
    );
    assert_each_link_synced_once(&home, N as i64);
    assert!(
        synced(&summaries) < N as u64,
        "the victim synced some links before it died: {summaries:?}"
    );
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn workers_pg_a_sigkilled_workers_links_are_finished_once_its_leases_run_out() {
    a_killed_worker(
        Engine::Postgres,
        "workers_pg_a_sigkilled_workers_links_are_finished_once_its_leases_run_out",
    );
}

#[test]
fn workers_sqlite_a_sigkilled_workers_links_are_finished_once_its_leases_run_out() {
    a_killed_worker(
        Engine::Sqlite,
        "workers_sqlite_a_sigkilled_workers_links_are_finished_once_its_leases_run_out",
    );
}

// ------------------------------------------------ one refresh per link

/// 3 passes over links whose access tokens all expired, at a provider
/// that rotates single-use refresh tokens and revokes the grant when one
/// is used twice: each link refreshes once, no grant is revoked, and the
/// stored (rotated) refresh tokens all work in a second round.
fn refresh_single_flight(engine: Engine, test: &str) {
    const N: usize = 150;
    let sb = Sandbox::start();
    let Some(home) = home_on(
        engine,
        test,
        &with_sync(
            "concurrency = 8",
            &fhir_at(&sb, "fh", "demo-client", "header"),
        ),
    ) else {
        return;
    };
    seed(&home, &sb, "fh", true, true, N);
    for round in 1..=2u64 {
        let summaries = passes_together(&home, 3);
        let by = outcomes(&summaries);
        assert_eq!(synced(&summaries), N as u64, "round {round}: {summaries:?}");
        assert_eq!(
            by.get(if round == 1 { "imported" } else { "unchanged" })
                .copied(),
            Some(N as u64),
            "round {round}: no failure, no relink: {by:?}"
        );
        let s = stats(&sb);
        assert_eq!(
            s["refreshes"],
            json!(N as u64 * round),
            "round {round}: {s}"
        );
        assert_eq!(
            s["refresh_reuse_revocations"], 0,
            "no refresh token used twice: {s}"
        );
        assert_eq!(
            home.env
                .query_i64("SELECT COUNT(*) FROM links WHERE state <> 'active' OR failures <> 0"),
            0,
            "round {round}: every link active"
        );
        assert_eq!(
            home.env
                .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'link.refresh'"),
            N as i64 * round as i64,
            "round {round}: one refresh per link"
        );
        // Every token expired again, every link due again.
        home.env.execute(
            "UPDATE links SET next_due_at = NULL, expires_at = '2000-01-01T00:00:00.000Z'",
        );
    }
    assert_db_check_clean(&home);
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn workers_pg_expired_tokens_refresh_once_per_link_and_no_rotation_is_lost() {
    refresh_single_flight(
        Engine::Postgres,
        "workers_pg_expired_tokens_refresh_once_per_link_and_no_rotation_is_lost",
    );
}

#[test]
fn workers_sqlite_expired_tokens_refresh_once_per_link_and_no_rotation_is_lost() {
    refresh_single_flight(
        Engine::Sqlite,
        "workers_sqlite_expired_tokens_refresh_once_per_link_and_no_rotation_is_lost",
    );
}

/// The same at npm oidc-provider (tests/oidc/server.mjs: refresh tokens
/// rotate and a reused one is refused with invalid_grant): 3 passes over
/// links whose access tokens expired, twice; every refresh succeeds, one
/// per link and round.
fn refresh_single_flight_at_oidc_provider(engine: Engine, test: &str) {
    use crate::oidc::server::{OidcServer, SECRET};
    const N: usize = 20;
    let server = OidcServer::start();
    let e = &server.endpoints;
    let provider = format!(
        r#"[[providers]]
id = "oidc"
kind = "fhir"
base_url = "{}"
resources = ["MedicationRequest"]
[providers.auth]
scheme = "oauth2"
token_url = "{}"
client_id = "rxsync"
client_secret_env = "RXSYNC_TEST_OIDC_SECRET"
client_auth = "basic"
placement = "header"
scopes = ["openid", "offline_access", "patient/MedicationRequest.rs"]
revocation_url = "{}"
"#,
        e.fhir_base, e.token_endpoint, e.revocation_endpoint
    );
    let Some(home) = home_on(engine, test, &with_sync("concurrency = 4", &provider)) else {
        return;
    };
    let (key, _) = rxsync::vault::VaultKey::load(None, &home.key_file()).expect("vault key");
    let mut store = home.env.store();
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    for i in 0..N {
        let patient = PatientId::parse(&format!("O{i:03}")).expect("patient id");
        store
            .add_patient(&NewPatient::with_id(patient.clone()), "test")
            .expect("patient");
        let g = server.grant("rxsync", "ehr-1001", None);
        let text = |k: &str| g[k].as_str().expect(k).to_string();
        store
            .add_link(
                &NewLink {
                    patient: &patient,
                    provider: &rxsync::domain::ProviderId::parse("oidc").expect("provider id"),
                    remote_patient: "ehr-1001",
                    secrets: LinkSecrets::Oauth2 {
                        access_token: text("access_token").into(),
                        refresh_token: Some(text("refresh_token").into()),
                    },
                    expires_at: Some(past),
                    scope: None,
                    grant_expires_at: None,
                },
                &key,
                "test",
            )
            .expect("link");
    }
    drop(store);
    let secret = [("RXSYNC_TEST_OIDC_SECRET", SECRET)];
    for round in 1..=2usize {
        let summaries = passes_together_with(&home, 3, &secret);
        let by = outcomes(&summaries);
        assert_eq!(synced(&summaries), N as u64, "round {round}: {summaries:?}");
        assert_eq!(
            by.get(if round == 1 { "imported" } else { "unchanged" })
                .copied(),
            Some(N as u64),
            "round {round}: no failure, no relink: {by:?}"
        );
        let stats = server.stats();
        let refreshes: Vec<&Value> = stats["token_log"]
            .as_array()
            .expect("token_log")
            .iter()
            .filter(|t| t["grant_type"] == "refresh_token")
            .collect();
        assert!(
            refreshes.iter().all(|t| t["error"].is_null()),
            "round {round}: a refresh was refused (invalid_grant: a rotated token used twice?): {refreshes:?}"
        );
        assert_eq!(
            refreshes.len(),
            N * round,
            "round {round}: one refresh per link"
        );
        home.env.execute(
            "UPDATE links SET next_due_at = NULL, expires_at = '2000-01-01T00:00:00.000Z'",
        );
    }
    assert_db_check_clean(&home);
}

#[test]
fn workers_oidc_provider_expired_tokens_refresh_once_per_link_across_three_workers() {
    refresh_single_flight_at_oidc_provider(
        Engine::Sqlite,
        "workers_oidc_provider_expired_tokens_refresh_once_per_link_across_three_workers",
    );
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn workers_pg_oidc_provider_expired_tokens_refresh_once_per_link_across_three_workers() {
    refresh_single_flight_at_oidc_provider(
        Engine::Postgres,
        "workers_pg_oidc_provider_expired_tokens_refresh_once_per_link_across_three_workers",
    );
}

// ------------------------------------------------ max_in_flight across workers

/// 3 passes, each allowed 8 syncs at once, at a provider whose
/// `max_in_flight` is 2 and whose documents are slow: the sandbox never
/// sees more than 2 requests at once (and does see 2).
fn max_in_flight_across(engine: Engine, test: &str) {
    const N: usize = 40;
    let sb = Sandbox::start();
    let provider = ccr_at(&sb, "ccr").replace("retries = 1", "retries = 1\nmax_in_flight = 2");
    let Some(home) = home_on(engine, test, &with_sync("concurrency = 8", &provider)) else {
        return;
    };
    seed(&home, &sb, "ccr", false, false, N);
    let (status, _) = sb.admin(
        "/admin/latency",
        Some(&json!({"path_prefix": "/ccr", "ms": 100})),
    );
    assert_eq!(status, 200);
    clear_requests(&sb);
    let started = Instant::now();
    let summaries = passes_together(&home, 3);
    eprintln!("{test}: {N} slow links in {:?}", started.elapsed());
    assert_eq!(
        outcomes(&summaries).get("imported").copied(),
        Some(N as u64),
        "{summaries:?}"
    );
    let s = stats(&sb);
    assert_eq!(s["in_flight"], 0, "{s}");
    assert_eq!(
        s["max_in_flight"], 2,
        "max_in_flight = 2 across the 3 workers, as the provider saw it: {s}"
    );
    assert_eq!(requests(&sb).len(), N, "one request per sync");
    assert_each_link_synced_once(&home, N as i64);
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM provider_slots WHERE holder IS NOT NULL"),
        0,
        "every slot given back"
    );
}

#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn workers_pg_max_in_flight_holds_across_three_workers_at_the_provider() {
    max_in_flight_across(
        Engine::Postgres,
        "workers_pg_max_in_flight_holds_across_three_workers_at_the_provider",
    );
}

#[test]
fn workers_sqlite_max_in_flight_holds_across_three_workers_at_the_provider() {
    max_in_flight_across(
        Engine::Sqlite,
        "workers_sqlite_max_in_flight_holds_across_three_workers_at_the_provider",
    );
}

// ------------------------------------------------ the demo copied to PostgreSQL

/// `rxsync demo --once` on SQLite, `db copy` to a fresh PostgreSQL
/// database: `db check` clean there, the same rows, the vault's
/// ciphertexts byte for byte; the copy answers `regimen show` and `queue
/// list` exactly as the SQLite file does, and a scheduled pass against the
/// demo's sandbox (restarted on its port with its data) works on it.
#[test]
#[ignore = "needs PostgreSQL (RXSYNC_TEST_PG_URL); run by .ci/run"]
fn workers_pg_the_demo_copied_to_postgres_checks_clean_and_works_as_on_sqlite() {
    use std::io::BufRead;
    let test = "workers_pg_the_demo_copied_to_postgres_checks_clean_and_works_as_on_sqlite";
    let Some(_) = pg_server(test) else { return };
    let url = crate::support::fresh_pg_database();
    let env = TestEnv {
        db: std::path::PathBuf::new(),
        dir: tempfile::tempdir().expect("temp dir"),
        pg: None,
        _pg_drop: None,
    };
    let dir = env.dir.path().join("demo");
    env.run_bare(
        &["demo", "--dir", &dir.display().to_string(), "--once"],
        &[],
    )
    .ok();
    let db = dir.join("rxsync.db");
    let config = dir.join("config.toml").display().to_string();
    let on_pg = [("RXSYNC_DATABASE_URL", url.as_str())];
    let from = format!("sqlite:{}", db.display());
    let report = env
        .run_bare(&["db", "copy", "--from", &from, "--format", "json"], &on_pg)
        .json();
    let sqlite = rusqlite::Connection::open(&db).expect("the demo database");
    let mut pg = postgres::Client::connect(&url, postgres::NoTls).expect("the copy");
    for t in report["tables"].as_array().expect("tables") {
        let name = t["table"].as_str().expect("name");
        let source: i64 = sqlite
            .query_row(&format!("SELECT COUNT(*) FROM {name}"), [], |r| r.get(0))
            .expect("count");
        let target: i64 = pg
            .query_one(&format!("SELECT COUNT(*) FROM {name}"), &[])
            .expect("count")
            .get(0);
        assert_eq!((source, target), (source, source), "{name}");
    }
    let check = env
        .run_bare(&["db", "check", "--format", "json"], &on_pg)
        .json();
    assert!(
        check["checks"]
            .as_array()
            .is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["ok"] == true)),
        "{check}"
    );
    // The vault's ciphertexts and the documents, byte for byte.
    for (table, column) in [
        ("links", "token"),
        ("links", "token_secret"),
        ("links", "refresh_token"),
        ("documents", "bytes"),
    ] {
        let sql = format!("SELECT id, {column} FROM {table} ORDER BY id");
        let source: Vec<(i64, Option<Vec<u8>>)> = sqlite
            .prepare(&sql)
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("source");
        let target: Vec<(i64, Option<Vec<u8>>)> = pg
            .query(&sql, &[])
            .expect("target")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert!(!source.is_empty(), "{table}");
        assert_eq!(source, target, "{table}.{column}");
    }
    // The same answers from the copy as from the file.
    let (patient, source): (String, String) = sqlite
        .query_row(
            "SELECT patient_id, source FROM regimens ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("a regimen");
    for args in [
        vec![
            "regimen",
            "show",
            "--patient",
            &patient,
            "--source",
            &source,
            "--format",
            "json",
        ],
        vec!["queue", "list", "--state", "all", "--format", "json"],
        vec!["link", "list", "--format", "json"],
    ] {
        let mut with_config = vec!["--config", &config];
        with_config.extend(&args);
        let on_sqlite = env.run_bare(&with_config, &[]).json();
        let on_postgres = env.run_bare(&with_config, &on_pg).json();
        assert_eq!(on_sqlite, on_postgres, "{args:?}");
    }
    // The demo's sandbox on its port with its data: the copied tokens work.
    let port = std::fs::read_to_string(dir.join("sandbox/port")).expect("port");
    let mut sandbox = std::process::Command::new(env!("CARGO_BIN_EXE_rxsync"))
        .args([
            "sandbox",
            "--listen",
            &format!("127.0.0.1:{}", port.trim()),
            "--data",
        ])
        .arg(dir.join("sandbox"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sandbox");
    let mut line = String::new();
    std::io::BufReader::new(sandbox.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("sandbox line");
    pg.batch_execute("UPDATE links SET next_due_at = NULL")
        .expect("due");
    let run = env.run_bare(
        &["--config", &config, "run", "--once", "--format", "json"],
        &on_pg,
    );
    let _ = sandbox.kill();
    let _ = sandbox.wait();
    let summary = run.json();
    assert_eq!(
        summary["outcomes"]["unchanged"], 6,
        "the copied tokens work at the demo's sandbox: {summary}"
    );
    let check = env
        .run_bare(&["db", "check", "--format", "json"], &on_pg)
        .json();
    assert!(
        check["checks"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["ok"] == true)),
        "{check}"
    );
}
