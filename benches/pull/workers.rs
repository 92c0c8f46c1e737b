//! Issue 13's benchmark (`RXSYNC_BENCH_ONLY=workers`): `rxsync run --once`
//! over N links by 1, 2 and 4 worker processes sharing one PostgreSQL
//! database, beside one process on a SQLite file, in one run.
//!
//! Every measured run starts from the same data: the SQLite template that
//! `run_once::template` sets up (N patients, half OAuth 1.0a CCR, half
//! OAuth 2.0 FHIR), copied to a file for SQLite, and copied once into a
//! PostgreSQL template database by `db copy`'s code, from which each
//! PostgreSQL run gets a fresh database (`CREATE DATABASE … TEMPLATE`,
//! then a `CHECKPOINT`, both before the clock starts). The workers are
//! spawned together, each `rxsync --config C --log-format json run --once
//! --format json` with `RXSYNC_DATABASE_URL`; the pass is the longest
//! worker's (its summary's `seconds`), and link-syncs/s is N over it. CPU
//! is `wait4`'s rusage of the rxsync processes, summed; the sandbox's CPU
//! and the PostgreSQL server's (its postmaster and every backend, from
//! `/proc`, when the server runs on this machine and the bench knows its
//! data directory) are reported apart. Each run checks that every link
//! was synced exactly once (the workers' outcomes add up to N; on
//! PostgreSQL also N `syncs` rows and no lease left).
//!
//! Rounds: each round runs SQLite and every worker count once, in
//! alternating order (reversed every other round); ratios against SQLite
//! are medians of the per-round ratios, so a neighbour's load moves both
//! sides of a ratio alike.
//!
//! PostgreSQL: `RXSYNC_BENCH_PG_URL` (a role that may CREATE DATABASE);
//! else, in a full run, the bench starts a throwaway cluster with
//! `.ci/postgres.sh` and restarts it with durable settings (fsync on:
//! the test cluster runs with fsync off) plus `RXSYNC_BENCH_PG_SETTINGS`
//! (e.g. `-c synchronous_commit=off`), and removes it at the end. Under
//! `cargo test` (smoke) it never starts one: it uses `RXSYNC_BENCH_PG_URL`
//! or the tests' `RXSYNC_TEST_PG_URL`, else runs the SQLite side alone and
//! says so (under `CI`, where `.ci/run` always provides one, it fails).

use crate::run_once::{self, Runner};
use crate::sandbox::Sandbox;
use crate::setup;
use rxsync::store::pg::{PgTarget, copy_sqlite_to_postgres};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the workers benchmark runs.
pub struct Sizes {
    /// N links.
    pub links: usize,
    /// Worker processes on PostgreSQL, one level each.
    pub workers: Vec<usize>,
    /// `[sync] concurrency` of every process.
    pub concurrency: usize,
    /// Rounds (each: SQLite once and every worker level once).
    pub rounds: usize,
    /// Whether this is the full run (may start a cluster) or the smoke run.
    pub full: bool,
}

/// One measured run: one SQLite process, or k workers on PostgreSQL.
#[derive(Debug, Clone)]
struct Run {
    /// The longest worker's pass (its summary's `seconds`).
    pass: f64,
    /// From the first spawn to the last exit.
    wall: f64,
    /// User + system seconds of the rxsync processes, summed.
    cpu: f64,
    /// The largest worker's peak RSS, KiB.
    max_rss_kib: i64,
    sandbox_cpu: f64,
    /// The PostgreSQL server's CPU seconds, when it can be read.
    server_cpu: Option<f64>,
    /// Daemon-measured sync latency over every worker, p50 / p99 / max, ms.
    latency: (u64, u64, u64),
    outcomes: BTreeMap<String, u64>,
}

impl Run {
    fn per_second(&self, links: usize) -> f64 {
        links as f64 / self.pass
    }
}

/// A level of the benchmark: its label and its runs, one per round.
struct Level {
    label: String,
    runs: Vec<Run>,
}

pub fn run(
    dir: &Path,
    sandbox: &Sandbox,
    key_text: &str,
    key: &rxsync::vault::VaultKey,
    s: &Sizes,
) {
    let pg = Postgres::find(s.full);
    let n = s.links;
    let t = Instant::now();
    let template = run_once::template(dir, sandbox, key, n);
    println!(
        "workers: set up {n} links in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let runner = Runner {
        dir,
        sandbox,
        key_text,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_rxsync")),
        schema: None,
    };
    let db = dir.join("workers.db");
    let pg_template = pg.as_ref().map(|pg| {
        let t = Instant::now();
        let name = pg.template_from(&template);
        println!(
            "workers: copied the template into PostgreSQL database {name} in {:.1} s ({})",
            t.elapsed().as_secs_f64(),
            pg.describe()
        );
        name
    });
    // Warm-up (not reported): the sandbox builds and caches every
    // patient's documents; the binary and the databases' pages are read.
    setup::fresh_copy(&template, &db);
    let _ = sqlite_run(&runner, &db, n, s.concurrency);
    if let (Some(pg), Some(t)) = (&pg, &pg_template) {
        let k = s.workers.iter().copied().max().unwrap_or(1);
        let _ = pg.run(&runner, t, n, k, s.concurrency);
    }
    let mut sqlite = Level {
        label: "SQLite, 1 process".into(),
        runs: Vec::new(),
    };
    let mut on_pg: Vec<(usize, Level)> = s
        .workers
        .iter()
        .map(|&k| {
            (
                k,
                Level {
                    label: format!("PostgreSQL, {k} worker{}", if k == 1 { "" } else { "s" }),
                    runs: Vec::new(),
                },
            )
        })
        .collect();
    for round in 0..s.rounds {
        // Alternating order: SQLite first, then 1, 2, 4 workers; the next
        // round the other way round.
        let mut order: Vec<Option<usize>> = std::iter::once(None)
            .chain((0..on_pg.len()).map(Some))
            .collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for step in order {
            match step {
                None => {
                    setup::fresh_copy(&template, &db);
                    let r = sqlite_run(&runner, &db, n, s.concurrency);
                    print_run(round, &sqlite.label, n, &r);
                    sqlite.runs.push(r);
                }
                Some(i) => {
                    let (Some(pg), Some(t)) = (&pg, &pg_template) else {
                        continue;
                    };
                    let (k, level) = &mut on_pg[i];
                    let r = pg.run(&runner, t, n, *k, s.concurrency);
                    print_run(round, &level.label, n, &r);
                    level.runs.push(r);
                }
            }
        }
    }
    println!(
        "workers, N = {n}, [sync] concurrency {} per process, {} round(s); medians; ratios are medians of per-round ratios to SQLite's run of the same round:",
        s.concurrency, s.rounds
    );
    print_level(&sqlite, &sqlite, n);
    for (_, level) in &on_pg {
        if !level.runs.is_empty() {
            print_level(level, &sqlite, n);
        }
    }
    if pg.is_none() {
        println!("workers: PostgreSQL not measured (see above)");
    }
}

fn print_run(round: usize, label: &str, n: usize, r: &Run) {
    println!(
        "  round {}, {label}: {:.0} link-syncs/s (pass {:.2} s, wall {:.2} s); rxsync CPU {:.2} s = {:.2} ms per link-sync; server CPU {}; sandbox CPU {:.2} s; outcomes {:?}",
        round + 1,
        r.per_second(n),
        r.pass,
        r.wall,
        r.cpu,
        r.cpu / n as f64 * 1e3,
        r.server_cpu
            .map_or("n/a".to_string(), |c| format!("{c:.2} s")),
        r.sandbox_cpu,
        r.outcomes
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_level(level: &Level, sqlite: &Level, n: usize) {
    let runs = &level.runs;
    let rate = median(runs.iter().map(|r| r.per_second(n)).collect());
    let cpu = median(runs.iter().map(|r| r.cpu / n as f64 * 1e3).collect());
    let server = runs
        .iter()
        .map(|r| r.server_cpu)
        .collect::<Option<Vec<f64>>>()
        .map(|v| median(v.into_iter().map(|c| c / n as f64 * 1e3).collect()));
    let sandbox = median(
        runs.iter()
            .map(|r| r.sandbox_cpu / n as f64 * 1e3)
            .collect(),
    );
    let pairs = runs.iter().zip(&sqlite.runs);
    let rate_ratio = median(
        pairs
            .clone()
            .map(|(r, b)| r.per_second(n) / b.per_second(n))
            .collect(),
    );
    let cpu_ratio = median(pairs.map(|(r, b)| r.cpu / b.cpu).collect());
    let p99 = median(runs.iter().map(|r| r.latency.1 as f64).collect());
    let p50 = median(runs.iter().map(|r| r.latency.0 as f64).collect());
    let rss = runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);
    println!(
        "workers, N = {n}, {}: {rate:.0} link-syncs/s ({rate_ratio:.2}x SQLite's); CPU per link-sync: rxsync {cpu:.2} ms ({cpu_ratio:.2}x SQLite's), PostgreSQL server {}, sandbox {sandbox:.2} ms; sync latency p50 {p50:.0} ms, p99 {p99:.0} ms; peak RSS per process {:.1} MiB",
        level.label,
        server.map_or("n/a".to_string(), |c| format!("{c:.2} ms")),
        rss as f64 / 1024.0
    );
}

/// One `run --once` on the SQLite file, through the same code as the
/// workers; then every link synced exactly once and no lease left.
fn sqlite_run(runner: &Runner<'_>, db: &Path, n: usize, concurrency: usize) -> Run {
    let run = spawn_workers(runner, Target::Sqlite(db), n, 1, concurrency, || None);
    let conn = rusqlite::Connection::open(db).expect("open the run's database");
    let count = |sql: &str| -> i64 {
        conn.query_row(sql, [], |row| row.get(0))
            .unwrap_or_else(|e| panic!("workers: {sql}: {e}"))
    };
    let syncs = count("SELECT COUNT(*) FROM syncs");
    let leased = count("SELECT COUNT(*) FROM links WHERE lease_holder IS NOT NULL");
    assert_eq!(
        syncs as usize, n,
        "SQLite: every link synced exactly once ({syncs} syncs rows for {n} links)"
    );
    assert_eq!(leased, 0, "SQLite: no lease left after the pass");
    run
}

fn outcome_map(v: &serde_json::Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The PostgreSQL server the benchmark uses.
struct Postgres {
    /// The URL as given (it may hold a password: never printed).
    url: String,
    /// The server's database the URL names: CREATE/DROP DATABASE run there.
    admin: PgTarget,
    /// The postmaster's pid, when the server runs here and its data
    /// directory is known (its CPU is then measured).
    postmaster: Option<u32>,
    /// A cluster this benchmark started (stopped and removed on drop).
    cluster: Option<PathBuf>,
    /// Databases made here, dropped at the end.
    made: std::cell::RefCell<Vec<String>>,
}

impl Postgres {
    /// `RXSYNC_BENCH_PG_URL`; else (smoke) the tests' cluster, or (full)
    /// a cluster of its own; else None, saying why.
    fn find(full: bool) -> Option<Postgres> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(url) = var("RXSYNC_BENCH_PG_URL") {
            let data = var("RXSYNC_BENCH_PG_DATA").map(PathBuf::from);
            return Some(Postgres::at(url, data.as_deref(), None));
        }
        if !full {
            if let Some(url) = var("RXSYNC_TEST_PG_URL") {
                let data = var("RXSYNC_TEST_PG_DIR").map(|d| PathBuf::from(d).join("data"));
                return Some(Postgres::at(url, data.as_deref(), None));
            }
            assert!(
                var("CI").is_none(),
                "workers: no PostgreSQL under CI (.ci/run exports RXSYNC_TEST_PG_URL)"
            );
            println!(
                "workers: PostgreSQL skipped (smoke run without RXSYNC_BENCH_PG_URL or RXSYNC_TEST_PG_URL); the SQLite side runs alone"
            );
            return None;
        }
        let (url, cluster) = start_cluster();
        let data = cluster.join("data");
        Some(Postgres::at(url, Some(&data), Some(cluster)))
    }

    fn at(url: String, data: Option<&Path>, cluster: Option<PathBuf>) -> Postgres {
        let env = |k: &str| std::env::var(k).ok();
        let admin = PgTarget::parse(&url, None, &env)
            .unwrap_or_else(|e| panic!("workers: the PostgreSQL URL: {e}"));
        let postmaster = data.and_then(|d| {
            let pid = std::fs::read_to_string(d.join("postmaster.pid")).ok()?;
            pid.lines().next()?.trim().parse().ok()
        });
        Postgres {
            url,
            admin,
            postmaster,
            cluster,
            made: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The server, its version and the settings that move the figures.
    fn describe(&self) -> String {
        let mut c = self.admin.connect().expect("connect to PostgreSQL");
        let show = |c: &mut postgres::Client, what: &str| {
            c.query_one(&format!("SHOW {what}"), &[])
                .map(|r| r.get::<_, String>(0))
                .unwrap_or_else(|_| "?".into())
        };
        format!(
            "{}, PostgreSQL {}, fsync {}, synchronous_commit {}, shared_buffers {}, max_connections {}, server CPU {}",
            self.admin,
            show(&mut c, "server_version"),
            show(&mut c, "fsync"),
            show(&mut c, "synchronous_commit"),
            show(&mut c, "shared_buffers"),
            show(&mut c, "max_connections"),
            if self.postmaster.is_some() {
                "measured"
            } else {
                "not measured (set RXSYNC_BENCH_PG_DATA to the server's data directory when it runs here)"
            }
        )
    }

    fn admin_sql(&self, sql: &str) {
        let mut c = self.admin.connect().expect("connect to PostgreSQL");
        c.batch_execute(sql)
            .unwrap_or_else(|e| panic!("workers: {sql}: {e}"));
    }

    /// A template database holding the SQLite template, copied as `rxsync
    /// db copy` copies (COPY BINARY, one transaction, counts verified).
    fn template_from(&self, sqlite: &Path) -> String {
        let name = format!("rxsync_bench_{}_template", std::process::id());
        self.admin_sql(&format!("DROP DATABASE IF EXISTS {name}"));
        self.admin_sql(&format!("CREATE DATABASE {name}"));
        self.made.borrow_mut().push(name.clone());
        copy_sqlite_to_postgres(sqlite, &self.admin.with_dbname(&name))
            .unwrap_or_else(|e| panic!("workers: copy the template into PostgreSQL: {e}"));
        name
    }

    /// `k` workers' `run --once` on a fresh copy of `template`.
    fn run(&self, r: &Runner<'_>, template: &str, n: usize, k: usize, concurrency: usize) -> Run {
        let name = format!("rxsync_bench_{}_run", std::process::id());
        self.admin_sql(&format!("DROP DATABASE IF EXISTS {name}"));
        self.admin_sql(&format!("CREATE DATABASE {name} TEMPLATE {template}"));
        if !self.made.borrow().contains(&name) {
            self.made.borrow_mut().push(name.clone());
        }
        // What the copy wrote is on disk before the clock starts (a
        // checkpoint during the run would be the copy's, not the run's).
        let mut c = self.admin.connect().expect("connect to PostgreSQL");
        let _ = c.batch_execute("CHECKPOINT");
        drop(c);
        let url = with_dbname(&self.url, &name);
        let run = spawn_workers(r, Target::Postgres(&url), n, k, concurrency, || {
            self.server_cpu()
        });
        let mut c = self
            .admin
            .with_dbname(&name)
            .connect()
            .expect("connect to the run's database");
        let count = |c: &mut postgres::Client, sql: &str| -> i64 {
            c.query_one(sql, &[])
                .map(|row| row.get(0))
                .unwrap_or_else(|e| panic!("workers: {sql}: {e}"))
        };
        let syncs = count(&mut c, "SELECT COUNT(*) FROM syncs");
        let leased = count(
            &mut c,
            "SELECT COUNT(*) FROM links WHERE lease_holder IS NOT NULL",
        );
        assert_eq!(
            syncs as usize, n,
            "{k} workers: every link synced exactly once ({syncs} syncs rows for {n} links)"
        );
        assert_eq!(leased, 0, "{k} workers: no lease left after the pass");
        run
    }

    /// The server's CPU seconds so far: the postmaster's own and its reaped
    /// children's, and every live child's (backends, checkpointer, WAL writer…).
    fn server_cpu(&self) -> Option<f64> {
        let pm = self.postmaster?;
        let (_, own, reaped) = proc_stat(pm)?;
        let mut total = own + reaped;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((ppid, cpu, _)) = proc_stat(pid)
                && ppid == pm
            {
                total += cpu;
            }
        }
        Some(total)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.cluster {
            stop_cluster(dir);
            return;
        }
        for name in self.made.borrow().iter().rev() {
            if let Ok(mut c) = self.admin.connect() {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"));
            }
        }
    }
}

/// A process's parent, CPU seconds (user + system) and its reaped
/// children's CPU seconds, from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(u32, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name: state, ppid, … utime is the 12th,
    // stime the 13th, cutime the 14th, cstime the 15th.
    let (_, rest) = stat.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = clock_ticks();
    Some((
        f.get(1)?.parse().ok()?,
        (ticks(11) + ticks(12)) / hz,
        (ticks(13) + ticks(14)) / hz,
    ))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// The URL with another database name (query parameters kept).
fn with_dbname(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(a, _)| a);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// Spawns `k` workers together on `url` and measures them until the last exits.
/// Where the workers' database is.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// The SQLite file (`--db`).
    Sqlite(&'a Path),
    /// The PostgreSQL URL (`RXSYNC_DATABASE_URL`, never on the command line).
    Postgres(&'a str),
}

/// config.toml as the other parts write it, but with a long `[sync]
/// interval`: a link synced in this pass is not due again before every
/// worker has ended (with the other parts' 1 s, a worker would rightly
/// sync again a link another synced more than a second before).
fn write_config(dir: &Path, base: &str, concurrency: usize) -> PathBuf {
    let text = setup::config_text(base, concurrency);
    let long = text.replacen("interval = 1\n", "interval = 86400\n", 1);
    assert_ne!(text, long, "the benchmark config names [sync] interval = 1");
    let path = dir.join("workers-config.toml");
    std::fs::write(&path, long).expect("write workers-config.toml");
    path
}

fn spawn_workers(
    r: &Runner<'_>,
    target: Target<'_>,
    n: usize,
    k: usize,
    concurrency: usize,
    server_cpu: impl Fn() -> Option<f64>,
) -> Run {
    let config = write_config(r.dir, &r.sandbox.base, concurrency);
    let files = |i: usize, ext: &str| r.dir.join(format!("worker-{i}.{ext}"));
    let sandbox_cpu0 = r.sandbox.cpu_seconds();
    let server_cpu0 = server_cpu();
    let t0 = Instant::now();
    let children: Vec<_> = (0..k)
        .map(|i| {
            let mut cmd = Command::new(&r.bin);
            cmd.arg("--config")
                .arg(&config)
                .current_dir(r.dir)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(files(i, "out")).expect("summary file"))
                .stderr(std::fs::File::create(files(i, "log")).expect("log file"));
            for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("RXSYNC_")) {
                cmd.env_remove(key);
            }
            match target {
                Target::Sqlite(db) => cmd.arg("--db").arg(db),
                Target::Postgres(url) => cmd.env("RXSYNC_DATABASE_URL", url),
            };
            cmd.args(["--log-format", "json", "run", "--once", "--format", "json"])
                .env("RXSYNC_KEY", r.key_text)
                .env("RXSYNC_LOG", "warn,rxsync::daemon=info");
            for (key, v) in setup::SECRETS {
                cmd.env(key, v);
            }
            cmd.spawn().expect("spawn rxsync run --once")
        })
        .collect();
    let mut cpu = 0.0;
    let mut max_rss_kib = 0;
    let mut statuses = Vec::new();
    for child in children {
        let (status, usage) = run_once::wait4(child);
        let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        cpu += secs(usage.ru_utime) + secs(usage.ru_stime);
        max_rss_kib = max_rss_kib.max(usage.ru_maxrss);
        statuses.push(status);
    }
    let wall = t0.elapsed().as_secs_f64();
    // The backends end when their workers' connections close: give the
    // postmaster a moment to reap them, so their CPU is counted.
    std::thread::sleep(Duration::from_millis(300));
    let server = server_cpu()
        .zip(server_cpu0)
        .map(|(after, before)| after - before);
    let sandbox_cpu = r.sandbox.cpu_seconds() - sandbox_cpu0;
    let mut pass: f64 = 0.0;
    let mut outcomes = BTreeMap::new();
    let mut logs = String::new();
    for (i, status) in statuses.iter().enumerate() {
        let log = std::fs::read_to_string(files(i, "log")).unwrap_or_default();
        let out = std::fs::read_to_string(files(i, "out")).unwrap_or_default();
        assert!(
            *status == 0,
            "worker {i} of {k} exited with status {status}: {out}\n{}",
            log.lines()
                .filter(|l| !l.contains("\"sync\""))
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        let summary: serde_json::Value = serde_json::from_str(&out).expect("summary JSON");
        pass = pass.max(summary["seconds"].as_f64().expect("seconds"));
        for (o, c) in outcome_map(&summary["outcomes"]) {
            *outcomes.entry(o).or_insert(0) += c;
        }
        logs.push_str(&log);
    }
    let synced: u64 = outcomes.values().sum();
    assert_eq!(
        synced as usize, n,
        "{k} workers: every link synced once: {outcomes:?}"
    );
    Run {
        pass,
        wall,
        cpu,
        max_rss_kib,
        sandbox_cpu,
        server_cpu: server,
        latency: run_once::daemon_latency(&logs),
        outcomes,
    }
}

/// Starts a throwaway cluster with `.ci/postgres.sh` and restarts it with
/// durable settings (the test cluster's fsync=off left out) and
/// `RXSYNC_BENCH_PG_SETTINGS`; returns its URL and its folder.
fn start_cluster() -> (String, PathBuf) {
    let script = r#"
set -e
. .ci/postgres.sh
start_test_postgres >&2
port=${RXSYNC_TEST_PG_URL##*:}; port=${port%%/*}
as_owner "$(pg_bin)/pg_ctl" -D "$RXSYNC_TEST_PG_DIR/data" -l "$RXSYNC_TEST_PG_DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $RXSYNC_TEST_PG_DIR -c max_connections=200 ${RXSYNC_BENCH_PG_SETTINGS:-}" \
  restart >/dev/null
printf '%s\n%s\n' "$RXSYNC_TEST_PG_URL" "$RXSYNC_TEST_PG_DIR"
"#;
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run bash");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    match (out.status.success(), lines.next(), lines.next()) {
        (true, Some(url), Some(dir)) => (url.to_string(), PathBuf::from(dir)),
        _ => panic!(
            "workers: could not start a PostgreSQL cluster with .ci/postgres.sh (install Debian's postgresql, or set RXSYNC_BENCH_PG_URL)"
        ),
    }
}

fn stop_cluster(dir: &Path) {
    let _ = Command::new("bash")
        .args(["-c", ". .ci/postgres.sh && stop_test_postgres"])
        .env("RXSYNC_TEST_PG_DIR", dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
}
