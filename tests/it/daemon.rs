//! The daemon (`rxsync run`, `run --once`), `key rotate` and the crash-safety
//! trials, against running sandbox providers.

use crate::pull::harness::*;
use crate::support::{Sandbox, on_postgres, sql_millis_between, sql_now, sql_seconds_between};
use serde_json::{Value, json};
use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A `rxsync run` child process; killed when dropped.
pub struct Running {
    pub child: std::process::Child,
    pub base: String,
    /// Kept open: the daemon prints its summary at exit (a closed pipe would kill it).
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Running {
    pub fn start(home: &Home, extra_env: &[(&str, &str)]) -> Running {
        let mut cmd = home.env.rxsync();
        cmd.args(["--config", &home.config])
            .args(["--log-format", "json", "run", "--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in SECRETS.iter().chain(extra_env) {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start rxsync run");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(stdout);
        stdout.read_line(&mut line).expect("first line");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        Running {
            child,
            base,
            stdout,
        }
    }

    /// GET a path of the operations server: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let authority = self.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(authority).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }

    /// Polls /metrics until `pred` holds (or panics after `secs`).
    pub fn metrics_until(&self, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (_, body) = self.get("/metrics");
            if pred(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "metrics never matched:\n{body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then the exit code and stderr.
    pub fn terminate(mut self) -> (i32, String) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` patients `PREFIX0…`, each linked to `provider` with a dummy
/// OAuth 2.0 token, written straight into the store (faster than the CLI).
fn seed_links(home: &Home, provider: &str, prefix: &str, count: usize) {
    use rxsync::store::{LinkSecrets, NewLink};
    use rxsync::vault::VaultKey;
    let (key, _) = VaultKey::load(None, &home.key_file()).expect("key");
    let mut store = home.env.store();
    for n in 0..count {
        let id = rxsync::domain::PatientId::parse(&format!("{prefix}{n}")).expect("id");
        store
            .add_patient(&rxsync::store::NewPatient::with_id(id.clone()), "test")
            .expect("patient");
        store
            .add_link(
                &NewLink {
                    patient: &id,
                    provider: &rxsync::domain::ProviderId::parse(provider).expect("provider id"),
                    remote_patient: "x",
                    secrets: LinkSecrets::Oauth2 {
                        access_token: "t".to_string().into(),
                        refresh_token: None,
                    },
                    expires_at: None,
                    scope: None,
                    grant_expires_at: None,
                },
                &key,
                "test",
            )
            .expect("link");
    }
}

fn with_sync(providers: &str, sync: &str) -> String {
    format!("[sync]\n{sync}\n{providers}")
}

fn seconds_until(home: &Home, id: i64) -> i64 {
    home.env.query_i64(&format!(
        "SELECT {} FROM links WHERE id = {id}",
        sql_seconds_between(sql_now(), "next_due_at")
    ))
}

#[test]
fn run_once_syncs_what_is_due_reports_failures_and_a_restart_resumes_the_schedule() {
    let sb = Sandbox::start();
    let providers = [
        ccr_at(&sb, "good"),
        // Signs in the query for a header-only consumer: always refused.
        oauth1_ccr("bad", &sb.base, "demo-hmac-header", "HMAC-SHA1", "query"),
    ]
    .concat();
    let home = Home::new(&with_sync(
        &providers,
        "interval = 3600\njitter = 0.1\nbackoff_base = 120\nbackoff_max = 600",
    ));
    let (good, _, _) = home.link_oauth1(&sb, "good", "demo-hmac-header");
    let (bad, _, _) = home.link_oauth1(&sb, "bad", "demo-hmac-header");
    let run = home.rx(&["run", "--once", "--format", "json"]);
    run.fails(1);
    let summary: Value = serde_json::from_str(&run.stdout).expect("summary");
    assert_eq!(
        summary["outcomes"],
        json!({"imported": 1, "failed": 1}),
        "{summary}"
    );
    let g = seconds_until(&home, good);
    assert!((3240..=3960).contains(&g), "the interval with jitter: {g}");
    let b = seconds_until(&home, bad);
    assert!((108..=132).contains(&b), "backoff after one failure: {b}");
    assert_eq!(home.link_row(bad)["failures"], 1);
    // A new process carries on from the stored schedule: nothing is due.
    let again = home.rx(&["run", "--once", "--format", "json"]);
    again.ok();
    assert_eq!(again.json()["outcomes"], json!({}));
    // Once due again, the failing link backs off twice as long.
    home.env.execute(&format!(
        "UPDATE links SET next_due_at = NULL WHERE id = {bad}"
    ));
    home.rx(&["run", "--once"]).fails(1);
    let b = seconds_until(&home, bad);
    assert!((216..=264).contains(&b), "doubled: {b}");
}

#[test]
fn the_daemon_pauses_a_failing_provider_serves_health_and_metrics_and_stops_on_sigterm() {
    let sb = Sandbox::start();
    let providers = [
        ccr_at(&sb, "good"),
        oauth2_fhir(
            "flaky",
            &format!("{}/flaky/fhir", sb.base),
            &sb.base,
            "demo-client",
            "header",
        )
        .replace("retries = 1", "retries = 0"),
    ]
    .concat();
    let home = Home::new(&with_sync(
        &providers,
        "concurrency = 1\nbreaker_failures = 2\nbreaker_pause = 300\nbackoff_base = 1\nbackoff_max = 1",
    ));
    home.link_oauth1(&sb, "good", "demo-hmac-header");
    // flaky has no route in the sandbox: every sync ends in a 404 (failed).
    let patients = ["P2", "P3", "P4", "P5"];
    for p in patients {
        home.env.run(&["patient", "add", "--id", p]).ok();
        let (status, grant) = sb.admin(
            "/admin/oauth2/grants",
            Some(&json!({"client_id": "demo-client", "patient": REMOTE})),
        );
        assert_eq!(status, 200);
        home.link_as(p, "flaky", &grant);
    }
    let daemon = Running::start(&home, &[("RXSYNC_LOG", "info")]);
    assert_eq!(daemon.get("/healthz"), (200, "ok\n".to_string()));
    let metrics = daemon.metrics_until(20, |m| {
        m.contains("rxsync_provider_paused{provider=\"flaky\"} 1")
            && m.contains("rxsync_syncs_total{provider=\"good\",outcome=\"imported\"} 1")
    });
    assert!(
        metrics.contains("rxsync_syncs_total{provider=\"flaky\",outcome=\"failed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rxsync_provider_pauses_total{provider=\"flaky\"} 1"),
        "{metrics}"
    );
    // Every record of the good provider's document was read.
    assert!(
        metrics.contains("rxsync_unreadable_records_total{provider=\"good\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rxsync_sync_duration_seconds_count{provider=\"good\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rxsync_links{state=\"active\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rxsync_open_exceptions{kind=\"link_broken\"} 0"),
        "{metrics}"
    );
    // The store's writer: every sync so far is a claim and an ending (an
    // import or a failed sync), each a job, in batches that all committed.
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    let (jobs, batches) = (
        value("rxsync_store_batch_jobs_sum"),
        value("rxsync_store_batch_jobs_count"),
    );
    assert!(
        jobs >= 6.0 && batches >= 1.0 && batches <= jobs,
        "{metrics}"
    );
    assert_eq!(value("rxsync_store_batch_seconds_count"), batches);
    assert_eq!(value("rxsync_store_failed_batches_total"), 0.0);
    assert_eq!(daemon.get("/readyz").0, 200);
    // Paused: the other flaky links were not tried while the breaker is open.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, later) = daemon.get("/metrics");
    assert!(
        later.contains("rxsync_syncs_total{provider=\"flaky\",outcome=\"failed\"} 2"),
        "{later}"
    );
    let (code, logs) = daemon.terminate();
    assert_eq!(code, 0, "{logs}");
    // Logs are JSON lines with ids, never tokens.
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["link"].is_number()),
        "{logs}"
    );
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("circuit breaker"))),
        "{logs}"
    );
    for (_, s) in SECRETS {
        assert!(!logs.contains(s));
    }
}

#[test]
fn shutdown_lets_a_sync_in_flight_finish_or_abandons_it_without_a_trace() {
    for (grace, finished) in [(10, true), (0, false)] {
        let sb = Sandbox::start();
        let home = Home::new(&with_sync(
            &ccr_at(&sb, "slow"),
            &format!("grace = {grace}"),
        ));
        let (id, _, _) = home.link_oauth1(&sb, "slow", "demo-hmac-header");
        // The sync waits 2 s on a Retry-After before it can fetch.
        sb.admin(
            "/admin/faults",
            Some(&json!({"path_prefix": "/ccr/", "status": 503, "times": 1, "retry_after": 2})),
        );
        let daemon = Running::start(&home, &[]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while requests(&sb).is_empty() {
            assert!(Instant::now() < deadline, "the sync never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (code, logs) = daemon.terminate();
        assert_eq!(code, 0, "{logs}");
        let syncs = home.env.query_i64("SELECT COUNT(*) FROM syncs");
        let regimens = home.env.query_i64("SELECT COUNT(*) FROM regimens");
        let leased = home.env.query_i64(&format!(
            "SELECT COUNT(*) FROM links WHERE id = {id} AND lease_holder IS NOT NULL"
        ));
        if finished {
            assert_eq!(
                (syncs, regimens),
                (1, 1),
                "the sync in flight finished: {logs}"
            );
        } else {
            assert_eq!(
                (syncs, regimens),
                (0, 0),
                "abandoned, nothing written: {logs}"
            );
            assert!(logs.contains("abandoned"), "{logs}");
        }
        assert_eq!(leased, 0, "the lease was given back");
    }
}

#[test]
fn key_rotate_reseals_every_secret_and_a_wrong_key_is_named() {
    let sb = Sandbox::start();
    let home = Home::new(
        &[
            ccr_at(&sb, "c"),
            oauth2_fhir(
                "f",
                &format!("{}/fhir", sb.base),
                &sb.base,
                "demo-client",
                "header",
            ),
        ]
        .concat(),
    );
    let (_, _, secret) = home.link_oauth1(&sb, "c", "demo-hmac-header");
    home.link_oauth2(&sb, "f", "demo-client", json!({}));
    let key_file = home.key_file();
    let before = std::fs::read(&key_file).expect("key file");
    let sealed_before: Vec<u8> = home
        .env
        .query_blob("SELECT token_secret FROM links WHERE provider = 'c'");
    let out = home.rx(&["key", "rotate"]);
    assert!(
        out.ok().contains("re-encrypted 4 secret(s) of 2 link(s)"),
        "{out:?}"
    );
    assert_ne!(std::fs::read(&key_file).expect("new key"), before);
    let kept: Vec<_> = std::fs::read_dir(key_file.parent().expect("dir"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".key.old-"))
        .collect();
    assert_eq!(kept.len(), 1, "the old key is kept once");
    assert_eq!(std::fs::read(kept[0].path()).expect("old key"), before);
    let sealed_after: Vec<u8> = home
        .env
        .query_blob("SELECT token_secret FROM links WHERE provider = 'c'");
    assert_ne!(sealed_before, sealed_after);
    assert!(!contains(&home.stored_bytes(), &secret));
    // Every link still pulls with the new key.
    let run = home.pull(None);
    run.ok();
    assert!(
        Home::reports(&run)
            .iter()
            .all(|r| r["outcome"] == "imported")
    );
    // A wrong key is named as such and changes nothing.
    let counts = home.env.counts();
    let wrong = home.env.run_with_env(
        &["--config", &home.config, "import", "--patient", "P1"],
        &[("RXSYNC_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")],
    );
    // The reason is told once: beside the link in the table (stdout),
    // with stderr pointing at it.
    let err = wrong.fails(1);
    assert!(
        wrong.stdout.contains("sealed with vault key"),
        "{}\n{err}",
        wrong.stdout
    );
    let after: Vec<_> = home
        .env
        .counts()
        .into_iter()
        .filter(|(t, _)| !matches!(t.as_str(), "syncs" | "audit"))
        .collect();
    let expected: Vec<_> = counts
        .into_iter()
        .filter(|(t, _)| !matches!(t.as_str(), "syncs" | "audit"))
        .collect();
    assert_eq!(after, expected);
}

// ------------------------------------------------------------ crash safety

/// SIGKILL the daemon at random moments during syncs, restart, and check
/// what is stored. `RXSYNC_CRASH_TRIALS` sets the number of trials.
#[test]
fn killing_the_daemon_mid_sync_leaves_a_consistent_database() {
    use rand::Rng;
    let trials: usize = std::env::var("RXSYNC_CRASH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(6);
    let sb = Sandbox::start();
    let providers = [
        ccr_at(&sb, "ccr"),
        oauth2_fhir(
            "fhir",
            &format!("{}/fhir", sb.base),
            &sb.base,
            "demo-client",
            "header",
        ),
    ]
    .concat();
    let home = Home::new(&with_sync(&providers, "concurrency = 4\ninterval = 3600"));
    let mut tokens = Vec::new();
    let mut links = 0;
    // New links each trial: their first sync imports (the heavy write).
    let add_links = |tokens: &mut Vec<String>, from: usize, n: usize| {
        for n in from..from + n {
            let patient = format!("C{n}");
            home.env.run(&["patient", "add", "--id", &patient]).ok();
            let remote = format!("remote-c{n}");
            let tokens_json = if n % 2 == 0 {
                let (status, t) = sb.admin(
                    "/admin/oauth1/tokens",
                    Some(&json!({"consumer_key": "demo-hmac-header", "patient": remote})),
                );
                assert_eq!(status, 200);
                tokens.push(t["token_secret"].as_str().unwrap_or_default().to_string());
                json!({"token": t["token"], "token_secret": t["token_secret"], "patient": remote})
            } else {
                let (status, g) = sb.admin(
                    "/admin/oauth2/grants",
                    Some(&json!({"client_id": "demo-client", "patient": remote})),
                );
                assert_eq!(status, 200);
                tokens.push(g["access_token"].as_str().unwrap_or_default().to_string());
                g
            };
            let provider = if n % 2 == 0 { "ccr" } else { "fhir" };
            home.link_as(&patient, provider, &tokens_json);
        }
    };
    add_links(&mut tokens, 0, 16);
    links += 16;
    let mut rng = rand::thread_rng();
    let mut killed_mid_pass = 0;
    for trial in 0..trials {
        add_links(&mut tokens, links, 6);
        links += 6;
        // Every link due again.
        home.env.execute("UPDATE links SET next_due_at = NULL");
        // Two syncs wait 1 s on a Retry-After, so the pass outlasts the
        // kill, however fast or slow the machine.
        sb.admin("/admin/faults/clear", Some(&json!({})));
        sb.admin(
            "/admin/faults",
            Some(&json!({"path_prefix": "/ccr/", "status": 503, "times": 2, "retry_after": 1})),
        );
        let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let daemon = Running::start(&home, &[]);
        // Kill once syncing has begun: at a random moment of the pass.
        let deadline = Instant::now() + Duration::from_secs(20);
        while home.env.query_i64(&format!(
            "SELECT COUNT(*) FROM links WHERE last_sync_at >= '{started}'"
        )) == 0
        {
            assert!(Instant::now() < deadline, "trial {trial}: no sync began");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
        let mut child = daemon;
        // SAFETY: killing our own child.
        unsafe { libc::kill(child.child.id() as i32, libc::SIGKILL) };
        let _ = child.child.wait();
        check_invariants(&home, trial, &started);
        let unfinished = home.env.query_i64(&format!(
            "SELECT COUNT(*) FROM links WHERE last_sync_at IS NULL OR last_sync_at < '{started}'"
        ));
        if unfinished > 0 && unfinished < links as i64 {
            killed_mid_pass += 1;
        }
    }
    assert!(
        killed_mid_pass > 0,
        "no trial killed the daemon in the middle of a pass"
    );
    // After a restart every link syncs again and every token still opens.
    home.env.execute("UPDATE links SET next_due_at = NULL");
    let all = home.rx(&["run", "--once", "--format", "json"]);
    all.ok();
    let s = all.json();
    let total: i64 = ["imported", "unchanged"]
        .iter()
        .map(|o| s["outcomes"][o].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(
        total, links as i64,
        "every link synced and its tokens opened: {s}"
    );
    assert_eq!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM links WHERE state = 'active' AND lease_holder IS NULL"
        ),
        links as i64
    );
    let stored = home.stored_bytes();
    for t in &tokens {
        assert!(!contains(&stored, t));
    }
    check_invariants(&home, trials, "1970-01-01T00:00:00.000Z");
}

fn check_invariants(home: &Home, trial: usize, started: &str) {
    if !on_postgres() {
        let integrity = home.env.query_string("PRAGMA integrity_check");
        assert_eq!(integrity, "ok", "trial {trial}");
    }
    let q = |sql: &str| -> i64 { home.env.query_i64(sql) };
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM regimens r WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.regimen_id = r.id)"
        ),
        0,
        "trial {trial}: a regimen without items"
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM regimens WHERE status = 'needs_review' AND id NOT IN (SELECT regimen_id FROM exceptions WHERE regimen_id IS NOT NULL)"
        ),
        0,
        "trial {trial}: a regimen that needs review without its exceptions"
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM syncs s WHERE s.document_id = d.id)"
        ),
        0,
        "trial {trial}: a document without its sync outcome"
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM syncs WHERE link_id IS NOT NULL AND outcome = 'imported' AND regimen_id IS NULL"
        ),
        0,
        "trial {trial}: an imported sync without its regimen"
    );
    // Every link was synced in this trial or is still due (its dead lease
    // is given back when the next daemon starts).
    let stuck: i64 = q(&format!(
        "SELECT COUNT(*) FROM links WHERE state = 'active' AND NOT (last_sync_at >= '{started}'
         OR next_due_at IS NULL OR next_due_at <= {})",
        sql_now()
    ));
    assert_eq!(stuck, 0, "trial {trial}: a link neither synced nor due");
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM links WHERE state = 'active' AND (token IS NULL OR key_id IS NULL)"
        ),
        0,
        "trial {trial}: a token lost"
    );
}

#[test]
fn max_in_flight_bounds_one_providers_syncs_at_once() {
    let sb = Sandbox::start();
    let provider = ccr_at(&sb, "one").replace("retries = 1", "retries = 1\nmax_in_flight = 1");
    let home = Home::new(&with_sync(&provider, "concurrency = 8"));
    for p in ["P2", "P3", "P4"] {
        home.env.run(&["patient", "add", "--id", p]).ok();
    }
    for p in ["P1", "P2", "P3", "P4"] {
        let remote = format!("r-{p}");
        let (token, secret) = sb.oauth1_token("demo-hmac-header", &remote);
        home.link_as(
            p,
            "one",
            &json!({"token": token, "token_secret": secret, "patient": remote}),
        );
        // Each sync's first request waits 1 s on a Retry-After.
        sb.admin(
            "/admin/faults",
            Some(&json!({"path_prefix": format!("/ccr/{remote}"), "status": 503, "times": 1, "retry_after": 1})),
        );
    }
    let t0 = Instant::now();
    let run = home.rx(&["run", "--once", "--format", "json"]);
    let elapsed = t0.elapsed();
    assert_eq!(run.json()["outcomes"]["imported"], 4);
    // One at a time: four waits in a row (in parallel they would overlap in about 1 s).
    assert!(elapsed >= Duration::from_millis(3900), "{elapsed:?}");
}

#[test]
fn a_provider_at_its_limit_does_not_hold_up_the_others() {
    let sb = Sandbox::start();
    let providers = [
        ccr_at(&sb, "a").replace("retries = 1", "retries = 1\nmax_in_flight = 1"),
        ccr_at(&sb, "b"),
    ]
    .concat();
    let home = Home::new(&with_sync(&providers, "concurrency = 8"));
    home.env.run(&["patient", "add", "--id", "P2"]).ok();
    for (patient, provider, remote) in [("P1", "a", "slow"), ("P2", "a", "a2"), ("P1", "b", "b1")] {
        let (token, secret) = sb.oauth1_token("demo-hmac-header", remote);
        home.link_as(
            patient,
            provider,
            &json!({"token": token, "token_secret": secret, "patient": remote}),
        );
    }
    sb.admin(
        "/admin/faults",
        Some(&json!({"path_prefix": "/ccr/slow", "status": 503, "times": 1, "retry_after": 3})),
    );
    let run = home.rx(&["run", "--once", "--format", "json"]);
    assert_eq!(run.json()["outcomes"]["imported"], 3);
    let ended_after_b = home.env.query_i64(&format!(
        "SELECT {} FROM syncs b JOIN links lb ON lb.id = b.link_id, syncs s JOIN links ls ON ls.id = s.link_id
         WHERE lb.remote_patient = 'b1' AND ls.remote_patient = 'slow'",
        sql_millis_between("b.ended_at", "s.ended_at")
    ));
    // b's sync ended long before the slow one of a, whose second link waited its turn.
    assert!(ended_after_b > 2000, "b waited for a: {ended_after_b} ms");
}

#[test]
fn a_paused_provider_with_many_due_links_does_not_crowd_out_the_others() {
    let sb = Sandbox::start();
    let providers = [
        oauth2_fhir(
            "gone",
            &format!("{}/gone/fhir", sb.base),
            &sb.base,
            "demo-client",
            "header",
        )
        .replace("retries = 1", "retries = 0"),
        ccr_at(&sb, "fine"),
    ]
    .concat();
    let home = Home::new(&with_sync(
        &providers,
        "concurrency = 4\nbreaker_failures = 2\nbreaker_pause = 300",
    ));
    // The good link, due last (it was added last).
    seed_links(&home, "gone", "G", 600);
    let (fine, _, _) = home.link_oauth1(&sb, "fine", "demo-hmac-header");
    let daemon = Running::start(&home, &[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while home.link_row(fine)["last_outcome"] != "imported" {
        assert!(
            Instant::now() < deadline,
            "the good provider's link never synced"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = daemon.metrics_until(5, |m| {
        m.contains("rxsync_provider_paused{provider=\"gone\"} 1")
    });
    assert!(
        metrics.contains("rxsync_provider_paused{provider=\"fine\"} 0"),
        "{metrics}"
    );
    let (code, _) = daemon.terminate();
    assert_eq!(code, 0);
}

#[test]
fn an_interrupted_key_rotation_is_finished_by_running_it_again_and_never_loses_a_key() {
    use rxsync::vault::{VaultKey, pending_key_path, read_key_file};
    let sb = Sandbox::start();
    let home = Home::new(&ccr_at(&sb, "c"));
    home.link_oauth1(&sb, "c", "demo-hmac-header");
    let key_file = home.key_file();
    let pending = pending_key_path(&key_file);
    // A pending key that seals nothing: refused, and nothing is deleted.
    let (stray, stray_text) = VaultKey::generate();
    std::fs::write(
        &pending,
        format!("{}\n", secrecy::ExposeSecret::expose_secret(&stray_text)),
    )
    .expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pending, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let err = home.rx(&["key", "rotate"]).fails(1).to_string();
    assert!(
        err.contains("seals nothing") && err.contains(stray.id()),
        "{err}"
    );
    assert!(pending.exists() && key_file.exists());
    // The database sealed with the pending key, the key file not yet swapped
    // (a rotation stopped between its commit and the rename).
    let old = read_key_file(&key_file).expect("read").expect("old key");
    home.env.store().rekey_links(&old, &stray).expect("rekey");
    let out = home.rx(&["key", "rotate"]);
    assert!(
        out.ok().contains("finished an interrupted rotation"),
        "{out:?}"
    );
    assert!(!pending.exists());
    assert_eq!(
        read_key_file(&key_file).expect("read").expect("key").id(),
        stray.id()
    );
    home.pull(None).ok();
    // A missing key file beside a pending key is never replaced by a fresh key.
    let (next, next_text) = VaultKey::generate();
    std::fs::write(
        &pending,
        format!("{}\n", secrecy::ExposeSecret::expose_secret(&next_text)),
    )
    .expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pending, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    home.env.store().rekey_links(&stray, &next).expect("rekey");
    std::fs::remove_file(&key_file).expect("remove");
    let err = home.pull(None).fails(1).to_string();
    assert!(err.contains("interrupted"), "{err}");
    assert!(!key_file.exists(), "no new key was made");
    home.rx(&["key", "rotate"]).ok();
    assert_eq!(
        read_key_file(&key_file).expect("read").expect("key").id(),
        next.id()
    );
    home.pull(None).ok();
}

#[test]
fn key_rotate_waits_for_no_sync_to_hold_a_link() {
    let sb = Sandbox::start();
    let home = Home::new(&ccr_at(&sb, "c"));
    let (id, _, _) = home.link_oauth1(&sb, "c", "demo-hmac-header");
    home.env.execute(&format!(
        "UPDATE links SET lease_holder = 'pid 4242 on elsewhere (1)', lease_until = '2999-01-01T00:00:00.000Z' WHERE id = {id}"
    ));
    let err = home.rx(&["key", "rotate"]).fails(1).to_string();
    assert!(err.contains("being synced"), "{err}");
    let pending = rxsync::vault::pending_key_path(&home.key_file());
    assert!(!pending.exists(), "no pending key left behind");
}

/// A TCP proxy to `target` that holds every answer back for `delay`.
fn slow_proxy(target: String, delay: Duration) -> String {
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    slow_proxy_with(target, Arc::new(AtomicU64::new(millis)))
}

/// [`slow_proxy`] whose delay (in milliseconds) the test may change while
/// it runs: an answer is held back by the delay set when it arrives.
fn slow_proxy_with(target: String, delay_ms: Arc<AtomicU64>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let target = target.clone();
            let delay_ms = Arc::clone(&delay_ms);
            std::thread::spawn(move || {
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    return;
                };
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let mut first = [0u8; 1];
                if s_read.read_exact(&mut first).is_ok() {
                    std::thread::sleep(Duration::from_millis(delay_ms.load(Ordering::SeqCst)));
                    let _ = c_write.write_all(&first);
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_shutdown_during_a_token_refresh_still_stores_the_rotated_tokens() {
    let sb = Sandbox::start();
    let proxy = slow_proxy(sb.authority().to_string(), Duration::from_secs(2));
    let provider = oauth2_fhir(
        "fh",
        &format!("{}/fhir", sb.base),
        &proxy,
        "demo-client",
        "header",
    )
    .replace(&format!("revocation_url = \"{proxy}/oauth2/revoke\""), "");
    let home = Home::new(&with_sync(&provider, "grace = 0"));
    // Expiring: the first sync refreshes (rotating) through the slow proxy.
    let (id, _) = home.link_oauth2(&sb, "fh", "demo-client", json!({"expires_in": 30}));
    let daemon = Running::start(&home, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats(&sb)["refreshes"] != 1 {
        assert!(Instant::now() < deadline, "no refresh reached the provider");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The provider has rotated the refresh token; its answer is still on the way.
    let (code, logs) = daemon.terminate();
    assert_eq!(code, 0, "{logs}");
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'link.refresh'"),
        1,
        "the rotated pair was committed before exit: {logs}"
    );
    // The next pass uses the rotated refresh token's pair: no reuse, no broken grant.
    let run = home.rx(&["run", "--once", "--format", "json"]);
    assert_eq!(run.json()["outcomes"]["imported"], 1);
    assert_eq!(stats(&sb)["refresh_reuse_revocations"], 0);
    assert_eq!(home.link_row(id)["state"], "active");
}

/// Three `run --once` processes started together on one SQLite file: each
/// due link is synced by exactly one of them. A pass reads its due links
/// once, so without the claim's re-check a link another process has just
/// synced would be synced again (its outcome counted twice).
#[test]
fn three_passes_started_together_sync_each_due_link_once() {
    const LINKS: usize = 900;
    let sb = Sandbox::start();
    // Every sync fails fast (no such FHIR base at the sandbox): a failure is
    // a sync all the same, and it moves the link's next due time ahead.
    let provider = oauth2_fhir(
        "gone",
        &format!("{}/gone/fhir", sb.base),
        &sb.base,
        "demo-client",
        "header",
    )
    .replace("retries = 1", "retries = 0");
    let home = Home::new(&with_sync(
        &provider,
        "concurrency = 8\nbreaker_failures = 1000000\nbackoff_base = 3600",
    ));
    seed_links(&home, "gone", "T", LINKS);
    let runs: Vec<Value> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|_| s.spawn(|| home.rx(&["run", "--once", "--format", "json"])))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                let run = w.join().expect("worker");
                serde_json::from_str(&run.stdout).expect("summary")
            })
            .collect()
    });
    let synced: u64 = runs
        .iter()
        .flat_map(|r| r["outcomes"].as_object().cloned().unwrap_or_default())
        .filter(|(outcome, _)| outcome != "busy")
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(synced, LINKS as u64, "each link synced once: {runs:?}");
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM links WHERE failures != 1"),
        0,
        "every link failed exactly once"
    );
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM links WHERE lease_holder IS NOT NULL"),
        0,
        "no lease left"
    );
}

#[test]
fn the_daemon_stopped_by_a_signal_says_so_and_what_it_did() {
    let env = crate::support::TestEnv::new();
    let mut child = env
        .rxsync()
        .args(["run", "--listen", "127.0.0.1:0"])
        .env_remove("RXSYNC_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start rxsync run");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    assert!(first.starts_with("rxsync run: serving"), "{first}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    assert!(
        rest.starts_with("rxsync run stopped on SIGTERM after ")
            && rest.contains("no sync ran (no link fell due)"),
        "{rest}"
    );
}

// ------------------------------------------------------------ leases

/// A link's lease as stored: (holder, until, last renewed).
fn lease_row(home: &Home, id: i64) -> (Option<String>, Option<String>, Option<String>) {
    let mut row = home
        .env
        .query_row_text(&format!(
            "SELECT lease_holder, lease_until, lease_renewed_at FROM links WHERE id = {id}"
        ))
        .into_iter();
    let mut next = || row.next().flatten();
    (next(), next(), next())
}

/// Waits until some worker holds the link's lease; returns the holder.
fn wait_for_lease(home: &Home, id: i64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let (Some(holder), _, _) = lease_row(home, id) {
            return holder;
        }
        assert!(Instant::now() < deadline, "no worker claimed link {id}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of a metric line of `metrics` whose name and labels start
/// with `prefix` and whose labels contain `label`.
fn metric(metrics: &str, prefix: &str, label: &str) -> Option<u64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(label))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

/// An OAuth 2.0 FHIR provider `fh` whose FHIR answers come through `proxy`.
fn fhir_behind(sb: &Sandbox, proxy: &str) -> String {
    oauth2_fhir(
        "fh",
        &format!("{proxy}/fhir"),
        &sb.base,
        "demo-client",
        "header",
    )
}

/// Two daemons on one database. The first claims the link and its sync
/// hangs at the provider; while it lives its heartbeat keeps the lease, and
/// the second never takes the link, past the lease's length. Killed
/// (SIGKILL) mid-sync, the first stops renewing: once its lease runs out,
/// the second takes the link over, counts the takeover, syncs it, and
/// leaves no lease behind.
#[test]
fn a_live_workers_lease_is_never_taken_and_a_killed_ones_is_taken_over_once_it_runs_out() {
    let sb = Sandbox::start();
    let delay = Arc::new(AtomicU64::new(120_000));
    let proxy = slow_proxy_with(sb.authority().to_string(), Arc::clone(&delay));
    let home = Home::new(&with_sync(
        &fhir_behind(&sb, &proxy),
        "interval = 3600\nlease = 4\nheartbeat = 1",
    ));
    let (id, _) = home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    let first = Running::start(&home, &[]);
    let holder = wait_for_lease(&home, id);
    assert!(
        holder.starts_with(&format!("pid {} on ", first.child.id())),
        "{holder}"
    );
    let second = Running::start(&home, &[]);
    let pid = format!("pid {} on ", second.child.id());
    // Longer than the lease: only the heartbeat keeps the link with the first.
    let watch_until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < watch_until {
        assert_eq!(
            lease_row(&home, id).0.as_deref(),
            Some(holder.as_str()),
            "a live worker's lease was taken"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, until, renewed) = lease_row(&home, id);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert!(until.is_some_and(|u| u > now), "the lease is renewed ahead");
    assert!(renewed.is_some());
    let (_, m) = second.get("/metrics");
    assert_eq!(
        metric(&m, "rxsync_lease_claims_total{", &pid),
        Some(0),
        "{m}"
    );
    // SIGKILL mid-sync: no heartbeat, no goodbye.
    let mut first = first;
    // SAFETY: killing our own child.
    unsafe { libc::kill(first.child.id() as i32, libc::SIGKILL) };
    let _ = first.child.wait();
    delay.store(0, Ordering::SeqCst);
    let m = second.metrics_until(30, |m| {
        m.contains("rxsync_syncs_total{provider=\"fh\",outcome=\"imported\"} 1")
    });
    assert_eq!(
        metric(&m, "rxsync_lease_takeovers_total{", &pid),
        Some(1),
        "{m}"
    );
    assert_eq!(
        metric(&m, "rxsync_lease_claims_total{", &pid),
        Some(1),
        "{m}"
    );
    assert_eq!(lease_row(&home, id).0, None, "no lease left");
    assert_eq!(
        home.env
            .query_i64(&format!("SELECT COUNT(*) FROM syncs WHERE link_id = {id}")),
        1,
        "the killed sync recorded nothing; the takeover's sync is the one"
    );
    let (code, logs) = second.terminate();
    assert_eq!(code, 0, "{logs}");
}

/// A sync longer than its lease keeps its link: its heartbeat renews the
/// lease, so a pass started meanwhile syncs nothing; when the sync ends its
/// lease is given back with its outcome.
#[test]
fn the_heartbeat_renews_a_long_syncs_lease_and_a_pass_leaves_no_lease() {
    let sb = Sandbox::start();
    // The proxy holds back the first answer of each connection (the
    // client keeps one open): the sync takes longer than the 3 s lease.
    let proxy = slow_proxy(sb.authority().to_string(), Duration::from_secs(8));
    let home = Home::new(&with_sync(
        &fhir_behind(&sb, &proxy),
        "interval = 3600\nlease = 3\nheartbeat = 1",
    ));
    let (id, _) = home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    std::thread::scope(|s| {
        let long = s.spawn(|| home.rx(&["run", "--once", "--format", "json"]));
        let holder = wait_for_lease(&home, id);
        let (_, claimed_until, claimed_at) = lease_row(&home, id);
        // Past the lease's length, the same holder holds it, renewed.
        std::thread::sleep(Duration::from_millis(4000));
        // The first answer is still held back: the sync is running.
        let (now_holder, until, renewed) = lease_row(&home, id);
        assert_eq!(now_holder.as_deref(), Some(holder.as_str()));
        assert!(
            until > claimed_until,
            "renewed: {until:?} {claimed_until:?}"
        );
        assert!(renewed > claimed_at);
        let other = home.rx(&["run", "--once", "--format", "json"]);
        other.ok();
        assert_eq!(
            other.json()["outcomes"],
            json!({}),
            "a pass during the sync takes nothing"
        );
        let run = long.join().expect("the long pass");
        run.ok();
        assert_eq!(run.json()["outcomes"], json!({"imported": 1}));
    });
    // The sync was long enough for its lease to need the heartbeat.
    let took: i64 = home.env.query_i64(&format!(
        "SELECT {} FROM syncs WHERE link_id = {id}",
        sql_millis_between("started_at", "ended_at")
    ));
    assert!(took > 4000, "the sync took {took} ms");
    assert_eq!(lease_row(&home, id).0, None, "no lease left");
}

/// One link due in a few seconds: the daemon reads the due links, sleeps
/// until then, syncs it on time and sleeps again — it does not read the
/// database on a beat (counted by `rxsync_scheduler_polls_total`).
#[test]
fn the_daemon_sleeps_until_the_next_due_link_and_syncs_it_on_time() {
    let sb = Sandbox::start();
    let home = Home::new(&with_sync(&ccr_at(&sb, "c"), "interval = 3600"));
    let (id, _, _) = home.link_oauth1(&sb, "c", "demo-hmac-header");
    let due = chrono::Utc::now() + chrono::Duration::seconds(3);
    let due_text = due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    home.env.execute(&format!(
        "UPDATE links SET next_due_at = '{due_text}' WHERE id = {id}"
    ));
    let daemon = Running::start(&home, &[]);
    let m = daemon.metrics_until(30, |m| {
        m.contains("rxsync_syncs_total{provider=\"c\",outcome=\"imported\"} 1")
    });
    let synced = home.env.query_string(&format!(
        "SELECT started_at FROM syncs WHERE link_id = {id}"
    ));
    assert!(synced >= due_text, "synced at {synced}, due at {due_text}");
    // A read at start, one at the due time, one when the sync was under
    // way; a beat of two reads a second would have made six or more.
    let polls = metric(&m, "rxsync_scheduler_polls_total", "").expect("polls");
    assert!((2..=4).contains(&polls), "{m}");
    // Nothing due for an hour: the daemon sleeps (at most MAX_IDLE, 30 s).
    std::thread::sleep(Duration::from_secs(2));
    let (_, later) = daemon.get("/metrics");
    assert_eq!(
        metric(&later, "rxsync_scheduler_polls_total", ""),
        Some(polls),
        "{later}"
    );
    let (status, body) = daemon.get("/readyz");
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            if on_postgres() {
                "ready (engine postgres; the database answers)\n"
            } else {
                "ready (engine sqlite; the database answers)\n"
            }
        )
    );
    let (code, logs) = daemon.terminate();
    assert_eq!(code, 0, "{logs}");
}

/// A sync whose outcome cannot be recorded (the database refuses the sync
/// row) is not tried again at once: the worker holds the link's lease back
/// for a minute, so the provider is not called in a loop while the store
/// keeps failing.
#[test]
fn a_sync_that_cannot_be_recorded_is_held_back_not_retried_in_a_loop() {
    let sb = Sandbox::start();
    let home = Home::new(&with_sync(&ccr_at(&sb, "c"), "interval = 3600"));
    let (id, _, _) = home.link_oauth1(&sb, "c", "demo-hmac-header");
    home.env.execute(if on_postgres() {
        "CREATE FUNCTION refuse_syncs() RETURNS trigger LANGUAGE plpgsql
         AS $$ BEGIN RAISE EXCEPTION 'the disk is full'; END $$;
         CREATE TRIGGER refuse_syncs BEFORE INSERT ON syncs
         FOR EACH ROW EXECUTE FUNCTION refuse_syncs();"
    } else {
        "CREATE TRIGGER refuse_syncs BEFORE INSERT ON syncs
         BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;"
    });
    let daemon = Running::start(&home, &[]);
    let holder = wait_for_lease(&home, id);
    // Long enough for dozens of tries had the link been due again at once.
    std::thread::sleep(Duration::from_secs(4));
    let (lease_holder, until, _) = lease_row(&home, id);
    assert_eq!(lease_holder.as_deref(), Some(holder.as_str()));
    let until = chrono::DateTime::parse_from_rfc3339(&until.expect("lease_until"))
        .expect("a time")
        .with_timezone(&chrono::Utc);
    let ahead = (until - chrono::Utc::now()).num_seconds();
    assert!((40..=60).contains(&ahead), "held back {ahead} s");
    assert_eq!(home.env.query_i64("SELECT COUNT(*) FROM syncs"), 0);
    let (code, logs) = daemon.terminate();
    assert_eq!(code, 0, "{logs}");
    assert_eq!(
        logs.matches("sync could not be recorded").count(),
        1,
        "tried once: {logs}"
    );
}
