//! Issue 4's benchmark: the real binary's `rxsync --config C --db D run
//! --once --format json` over N links against the sandbox (a separate
//! process), from a fresh copy of a template database each time. Its CPU
//! seconds and peak RSS come from `wait4`'s rusage of that child alone.
//! Sync latency is the daemon's own per-sync measurement (its `sync` log
//! line's `ms`, from before the link's claim to after its transaction),
//! read from its JSON log; the `syncs` table's `ended_at - started_at` is
//! reported beside it, but for an imported pull it covers the import only
//! (import::import takes its own `started_at` after the fetch).

use crate::sandbox::Sandbox;
use crate::setup::{self, OAUTH1_CCR, OAUTH2_FHIR};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one `run --once` did and cost.
#[derive(Debug, Clone)]
pub struct Once {
    pub links: usize,
    pub concurrency: usize,
    /// From spawn to exit.
    pub wall: Duration,
    /// The pass alone, as the summary reports it (no start-up, no exit).
    pub pass: Duration,
    /// Syncs by outcome, from the summary.
    pub outcomes: serde_json::Value,
    pub cpu_user: f64,
    pub cpu_sys: f64,
    pub max_rss_kib: i64,
    pub sandbox_cpu: f64,
    /// Daemon-measured sync latency, p50 / p99 / max, milliseconds.
    pub latency: (u64, u64, u64),
    /// The syncs table's ended_at - started_at (the import stage), p50 / p99, ms.
    pub import_latency: (i64, i64),
}

impl Once {
    pub fn per_second(&self) -> f64 {
        self.links as f64 / self.pass.as_secs_f64()
    }
    pub fn cpu(&self) -> f64 {
        self.cpu_user + self.cpu_sys
    }
}

/// A database of `n` patients, each with one link: even ones to the OAuth
/// 1.0a CCR provider, odd ones to the OAuth 2.0 FHIR provider.
pub fn template(dir: &Path, sandbox: &Sandbox, key: &rxsync::vault::VaultKey, n: usize) -> PathBuf {
    let path = dir.join(format!("once-template-{n}.db"));
    setup::template(&path, sandbox, key, n, |i| {
        vec![if i % 2 == 0 { OAUTH1_CCR } else { OAUTH2_FHIR }]
    });
    path
}

/// Runs one rxsync binary's `run --once` against the sandbox.
pub struct Runner<'a> {
    pub dir: &'a Path,
    pub sandbox: &'a Sandbox,
    /// RXSYNC_KEY for the child.
    pub key_text: &'a str,
    /// The binary: the one cargo built, or another build to compare with.
    pub bin: PathBuf,
    /// The SQLite schema version that binary knows, when it is older than
    /// the template's (`RXSYNC_BENCH_AGAINST_SCHEMA`): fresh copies are
    /// taken back to it (`setup::downgrade`).
    pub schema: Option<usize>,
}

impl Runner<'_> {
    /// Runs `rxsync run --once` with `[sync] concurrency = concurrency` on
    /// `db` (as it is: the caller copies a template first, or not, for a
    /// second pass) and measures it.
    pub fn run(&self, db: &Path, links: usize, concurrency: usize) -> Once {
        run_once(self, db, links, concurrency)
    }
}

fn run_once(r: &Runner<'_>, db: &Path, links: usize, concurrency: usize) -> Once {
    let (dir, sandbox, key_text) = (r.dir, r.sandbox, r.key_text);
    let (config, _) = setup::write_config(dir, &sandbox.base, concurrency);
    let syncs_before = max_sync_id(db);
    let log_path = dir.join("run-once.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut cmd = Command::new(&r.bin);
    cmd.arg("--config")
        .arg(&config)
        .arg("--db")
        .arg(db)
        .args(["--log-format", "json", "run", "--once", "--format", "json"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RXSYNC_")) {
        cmd.env_remove(k);
    }
    cmd.env("RXSYNC_KEY", key_text)
        .env("RXSYNC_LOG", "warn,rxsync::daemon=info");
    for (k, v) in setup::SECRETS {
        cmd.env(k, v);
    }
    let sandbox_cpu0 = sandbox.cpu_seconds();
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn rxsync run --once");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read the summary");
    let (status, usage) = wait4(child);
    let wall = t0.elapsed();
    let sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu0;
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status == 0,
        "rxsync run --once exited with status {status}: {stdout}\n{}",
        log_text
            .lines()
            .filter(|l| !l.contains("\"sync\""))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("summary JSON");
    let syncs = summary["outcomes"]
        .as_object()
        .map_or(0, |o| o.values().filter_map(|v| v.as_u64()).sum::<u64>());
    assert_eq!(syncs as usize, links, "every link synced once: {summary}");
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Once {
        links,
        concurrency,
        wall,
        pass: Duration::from_secs_f64(summary["seconds"].as_f64().expect("seconds")),
        outcomes: summary["outcomes"].clone(),
        cpu_user: secs(usage.ru_utime),
        cpu_sys: secs(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
        sandbox_cpu,
        latency: daemon_latency(&log_text),
        import_latency: import_latency(db, syncs_before),
    }
}

/// Reaps the child and returns its exit status (or 128 + signal) and rusage
/// (std's `Child::wait` gives no rusage).
pub fn wait4(child: std::process::Child) -> (i32, libc::rusage) {
    let pid = child.id();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped (std's Child never waits
    // unless asked, and we did not ask); both pointers are to live locals.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as libc::pid_t, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    (code, usage)
}

/// p50, p99 and max of the daemon's `sync` log lines' `ms`.
pub fn daemon_latency(log: &str) -> (u64, u64, u64) {
    let mut ms: Vec<u64> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            matches!(
                v["fields"]["message"].as_str(),
                Some("sync" | "sync failed")
            )
        })
        .filter_map(|v| v["fields"]["ms"].as_u64())
        .collect();
    ms.sort_unstable();
    (
        percentile(&ms, 50),
        percentile(&ms, 99),
        ms.last().copied().unwrap_or(0),
    )
}

fn percentile<T: Copy + Default>(sorted: &[T], p: usize) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() - 1) * p).div_ceil(100).min(sorted.len() - 1)]
}

fn read_only(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database read-only")
}

fn max_sync_id(db: &Path) -> i64 {
    read_only(db)
        .query_row("SELECT COALESCE(MAX(id), 0) FROM syncs", [], |r| r.get(0))
        .unwrap_or(0)
}

/// p50 and p99 of `ended_at - started_at` (ms) of the syncs after `after`.
fn import_latency(db: &Path, after: i64) -> (i64, i64) {
    let conn = read_only(db);
    let mut stmt = conn
        .prepare("SELECT started_at, ended_at FROM syncs WHERE id > ?1")
        .expect("syncs query");
    let parse = |t: String| chrono::DateTime::parse_from_rfc3339(&t).ok();
    let mut ms: Vec<i64> = stmt
        .query_map([after], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .expect("syncs rows")
        .filter_map(Result::ok)
        .filter_map(|(s, e)| Some((parse(e)? - parse(s)?).num_milliseconds()))
        .collect();
    ms.sort_unstable();
    (percentile(&ms, 50), percentile(&ms, 99))
}
