//! PostgreSQL's LISTEN/NOTIFY (migration 0004_notify, `daemon::listen`): a
//! worker asleep until its next due time syncs a link that another process
//! makes due now, woken by the notification rather than by its timer.

use crate::daemon::Running;
use crate::pull::harness::*;
use crate::support::Sandbox;
use std::time::{Duration, Instant};

fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn on_postgres_a_link_made_due_elsewhere_wakes_the_sleeping_daemon() {
    if !crate::support::on_postgres() {
        eprintln!("skipped: LISTEN/NOTIFY is PostgreSQL's (set RXSYNC_TEST_ENGINE=postgres)");
        return;
    }
    let sb = Sandbox::start();
    let home = Home::new(&format!("[sync]\ninterval = 3600\n{}", ccr_at(&sb, "good")));
    // One link synced by a pass: the next is an hour away.
    let (first, _, _) = home.link_oauth1(&sb, "good", "demo-hmac-header");
    home.rx(&["run", "--once"]).ok();
    let daemon = Running::start(&home, &[]);
    // Asleep: its first look found nothing due and its timer is far off
    // (at most MAX_IDLE, 30 s).
    daemon.metrics_until(10, |m| m.contains("rxsync_scheduler_polls_total"));
    std::thread::sleep(Duration::from_millis(500));
    let before = metric(
        &daemon.get("/metrics").1,
        "rxsync_scheduler_notifications_total",
    );
    // Another process makes a second link (due now).
    home.add_p2(false);
    let (token, secret) = sb.oauth1_token("demo-hmac-header", REMOTE);
    let second = home.link_as(
        "P2",
        "good",
        &serde_json::json!({"token": token, "token_secret": secret, "patient": REMOTE}),
    );
    assert_ne!(first, second);
    let t = Instant::now();
    let body = daemon.metrics_until(25, |m| {
        m.lines().any(|l| {
            l.starts_with("rxsync_syncs_total")
                && l.contains("outcome=\"imported\"")
                && !l.ends_with(" 0")
        })
    });
    let after = metric(&body, "rxsync_scheduler_notifications_total");
    assert!(
        after > before,
        "the daemon was woken by a notification ({before} → {after}), not its timer, after {:?}:\n{body}",
        t.elapsed()
    );
    assert_eq!(
        home.env.query_i64(&format!(
            "SELECT COUNT(*) FROM syncs WHERE link_id = {second}"
        )),
        1
    );
}

/// PostgreSQL: a store whose connection the server closed (a restart, a
/// failover, an operator's pg_terminate_backend) connects again before its
/// next statement outside a transaction; the statement that met the
/// closed connection failed with the server's message, and nothing else.
#[test]
fn on_postgres_a_closed_connection_is_opened_again_between_transactions() {
    if !crate::support::on_postgres() {
        eprintln!("skipped: PostgreSQL only (set RXSYNC_TEST_ENGINE=postgres)");
        return;
    }
    let env = crate::support::TestEnv::new();
    let mut store = env.store();
    let id = rxsync::domain::PatientId::parse("P1").expect("id");
    store
        .add_patient(&rxsync::store::NewPatient::with_id(id), "test")
        .expect("patient");
    let url = env.pg.clone().expect("a PostgreSQL home");
    let db = url.rsplit('/').next().expect("database name").to_string();
    let mut admin = postgres::Client::connect(
        &std::env::var("RXSYNC_TEST_PG_URL").expect("cluster"),
        postgres::NoTls,
    )
    .expect("admin");
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .expect("terminate");
    assert!(
        !killed.is_empty(),
        "the store's connection was there to close"
    );
    // The first statement meets the closed connection (or, if the client
    // already noticed, reconnects); from then on the store works.
    let _ = store.patients();
    let patients = store.patients().expect("connected again");
    assert_eq!(patients.len(), 1);
}

/// PostgreSQL: the client's own statement log (at debug, every statement
/// with its parameters: patient data, sealed tokens) never reaches
/// rxsync's log, even at RXSYNC_LOG=debug or trace.
#[test]
fn on_postgres_the_clients_statement_log_is_never_shown() {
    if !crate::support::on_postgres() {
        eprintln!("skipped: PostgreSQL only (set RXSYNC_TEST_ENGINE=postgres)");
        return;
    }
    let env = crate::support::TestEnv::new();
    for level in ["debug", "trace"] {
        let run = env.run_with_env(
            &[
                "patient",
                "add",
                "--id",
                &format!("P-{level}"),
                "--name",
                "Zelda Quixote-Marlowe",
            ],
            &[("RXSYNC_LOG", level)],
        );
        run.ok();
        assert!(
            !run.stderr.contains("Zelda") && !run.stderr.contains("with parameters"),
            "the PostgreSQL client logged a statement's parameters at {level}: {}",
            run.stderr
        );
    }
}
