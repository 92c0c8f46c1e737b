//! Benchmarks of pulling from providers against the sandbox on loopback
//! (issues 3 and 4; BENCHMARKS.md records the figures and how to read them).
//!
//! - **pull** (issue 3): `Puller::pull` in this process, one link after the
//!   other, 1,000 links with 20-medication documents per provider (OAuth
//!   1.0a HMAC-SHA1 header + CCR; OAuth 2.0 bearer + FHIR, 2 pages; OAuth 2.0
//!   bearer + CCR), timed in triples with the same documents imported from
//!   memory (see `throughput.rs`); ratios are medians of per-triple ratios.
//! - **once** (issue 4): the release binary's `rxsync run --once` over N
//!   links (half OAuth 1.0a CCR, half OAuth 2.0 FHIR) for each
//!   `[sync] concurrency`, with its rusage (see `run_once.rs`), then a
//!   second pass over the same links (every document unchanged).
//!
//! The sandbox always runs as its own process (`rxsync sandbox`), so its CPU
//! is reported apart. `cargo bench --bench pull` runs the full measurement;
//! under `cargo test` (no `--bench` argument) it runs once on tiny inputs as
//! a smoke test, ignoring the variables below, so the harness cannot rot.
//!
//! - `RXSYNC_BENCH_ONLY=pull|once|workers`: one of the three;
//! - `RXSYNC_BENCH_PULL_LINKS` (1000), `RXSYNC_BENCH_REPS` (5): issue 3's
//!   links per provider and measured triples;
//! - `RXSYNC_BENCH_LINKS` (`1000,10000`), `RXSYNC_BENCH_CONCURRENCY`
//!   (`1,2,4,8,16`), `RXSYNC_BENCH_ONCE_REPS` (3): issue 4's N, concurrency
//!   levels and runs per level (the median by pass time is reported);
//! - `RXSYNC_BENCH_AGAINST=PATH`: another build of `rxsync` to compare
//!   with: each `run --once` is paired with one of that binary, in
//!   alternating order, and the medians of the per-pair ratios are printed;
//!   `RXSYNC_BENCH_AGAINST_SCHEMA=V` when that build knows SQLite schema
//!   version V only (older than this tree's): its copies are taken back to
//!   V first (`setup::downgrade`; `benches/ab-seam.sh` sets it).
//! - **workers** (issue 13, only with `RXSYNC_BENCH_ONLY=workers` in a full
//!   run; always in the smoke run): `rxsync run --once` over N links by 1,
//!   2 and 4 worker processes on one PostgreSQL database beside one process
//!   on SQLite, in alternating rounds (see `workers.rs`):
//!   `RXSYNC_BENCH_WORKER_LINKS` (10000), `RXSYNC_BENCH_WORKERS` (`1,2,4`),
//!   `RXSYNC_BENCH_WORKER_CONCURRENCY` (16, per process),
//!   `RXSYNC_BENCH_WORKER_ROUNDS` (3), `RXSYNC_BENCH_PG_URL` (else a
//!   throwaway cluster of its own), `RXSYNC_BENCH_PG_SETTINGS`,
//!   `RXSYNC_BENCH_PG_DATA`.

/// The allocator the binary uses (see src/main.rs), so the in-process
/// figures are the binary's.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod run_once;
mod sandbox;
mod setup;
mod throughput;
mod workers;

use sandbox::Sandbox;
use setup::{OAUTH1_CCR, OAUTH2_CCR, OAUTH2_FHIR};
use std::sync::Arc;
use std::time::Duration;

struct Sizes {
    pull_links: usize,
    reps: usize,
    once_links: Vec<usize>,
    concurrency: Vec<usize>,
    once_reps: usize,
    workers: workers::Sizes,
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_string());
    text.split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {s:?} is not a number"))
        })
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    env_list(name, &default.to_string())[0]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            pull_links: env_number("RXSYNC_BENCH_PULL_LINKS", 1000),
            reps: env_number("RXSYNC_BENCH_REPS", 5),
            once_links: env_list("RXSYNC_BENCH_LINKS", "1000,10000"),
            concurrency: env_list("RXSYNC_BENCH_CONCURRENCY", "1,2,4,8,16"),
            once_reps: env_number("RXSYNC_BENCH_ONCE_REPS", 3),
            workers: workers::Sizes {
                links: env_number("RXSYNC_BENCH_WORKER_LINKS", 10_000),
                workers: env_list("RXSYNC_BENCH_WORKERS", "1,2,4"),
                concurrency: env_number("RXSYNC_BENCH_WORKER_CONCURRENCY", 16),
                rounds: env_number("RXSYNC_BENCH_WORKER_ROUNDS", 3),
                full: true,
            },
        }
    } else {
        Sizes {
            pull_links: 3,
            reps: 1,
            once_links: vec![4],
            concurrency: vec![1, 4],
            once_reps: 1,
            workers: workers::Sizes {
                links: 6,
                workers: vec![1, 2],
                concurrency: 4,
                rounds: 1,
                full: false,
            },
        }
    };
    println!(
        "rxsync pull benchmarks ({} mode, {} CPUs)",
        if full { "full" } else { "smoke" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let only = if full {
        std::env::var("RXSYNC_BENCH_ONLY").unwrap_or_default()
    } else {
        String::new()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox_log = std::fs::File::create(dir.path().join("sandbox.log")).expect("log file");
    let sandbox = Sandbox::start(sandbox_log);
    let (key, key_text) = setup::vault_key();
    if only.is_empty() || only == "pull" {
        pull_throughput(dir.path(), &sandbox, &key, &sizes);
    }
    if only.is_empty() || only == "once" {
        let against = full
            .then(|| std::env::var_os("RXSYNC_BENCH_AGAINST"))
            .flatten()
            .map(std::path::PathBuf::from);
        run_once_scaling(
            dir.path(),
            &sandbox,
            &setup::key_env(&key_text),
            &key,
            &sizes,
            against,
        );
    }
    if only == "workers" || !full {
        workers::run(
            dir.path(),
            &sandbox,
            &setup::key_env(&key_text),
            &key,
            &sizes.workers,
        );
    }
    if !full {
        // Closing line in the plain form CI reads: the smoke run passed.
        println!("bench smoke: 1 passed, 0 failed");
    }
}

fn pull_throughput(
    dir: &std::path::Path,
    sandbox: &Sandbox,
    key: &Arc<rxsync::vault::VaultKey>,
    s: &Sizes,
) {
    let providers = [OAUTH1_CCR, OAUTH2_FHIR, OAUTH2_CCR];
    let template = dir.join("pull-template.db");
    let t = std::time::Instant::now();
    let links = setup::template(&template, sandbox, key, s.pull_links, |_| {
        providers.to_vec()
    });
    println!(
        "pull: set up {} patients with {} links in {:.1} s",
        s.pull_links,
        links.len(),
        t.elapsed().as_secs_f64()
    );
    let (_, config) = setup::write_config(dir, &sandbox.base, 1);
    let config = Arc::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let puller = rxsync::pull::Puller::new(config.clone(), key.clone(), setup::secrets_env())
        .expect("puller");
    let bench = throughput::Bench {
        dir,
        sandbox,
        options: config.normalize_options(),
        config,
        key: key.clone(),
        template: &template,
        runtime: &runtime,
        puller,
    };
    for p in providers {
        let of_p: Vec<_> = links.iter().filter(|l| l.provider == p).cloned().collect();
        let f = bench.measure(&of_p, s.reps);
        let rate = |d: Duration| f.links as f64 / d.as_secs_f64();
        println!(
            "pull, {} ({} links, {:.1} KB per stored document, one link at a time): \
             memory {:.0} link-syncs/s; memory + link {:.0}/s ({:.2}x the memory time); \
             network {:.0}/s ({:.2}x the memory time); CPU per network link-sync: rxsync {:.2} ms, sandbox {:.2} ms",
            f.provider.label,
            f.links,
            f.bytes as f64 / f.links as f64 / 1e3,
            rate(f.memory),
            rate(f.with_link),
            f.with_link_ratio,
            rate(f.network),
            f.network_ratio,
            f.rxsync_cpu * 1e3,
            f.sandbox_cpu * 1e3,
        );
    }
}

fn run_once_scaling(
    dir: &std::path::Path,
    sandbox: &Sandbox,
    key_text: &str,
    key: &rxsync::vault::VaultKey,
    s: &Sizes,
    against: Option<std::path::PathBuf>,
) {
    let db = dir.join("once.db");
    let runner = run_once::Runner {
        dir,
        sandbox,
        key_text,
        bin: std::path::PathBuf::from(env!("CARGO_BIN_EXE_rxsync")),
        schema: None,
    };
    let schema = std::env::var("RXSYNC_BENCH_AGAINST_SCHEMA").ok().map(|v| {
        v.parse::<usize>()
            .unwrap_or_else(|_| panic!("RXSYNC_BENCH_AGAINST_SCHEMA: {v:?} is not a number"))
    });
    let baseline = against.map(|bin| run_once::Runner {
        bin,
        schema,
        ..runner
    });
    for &n in &s.once_links {
        let t = std::time::Instant::now();
        let template = run_once::template(dir, sandbox, key, n);
        println!(
            "run --once: set up {n} links in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // Warm-up (not reported): the sandbox builds and caches each
        // patient's documents, the binary's pages are in memory.
        let warm = *s.concurrency.iter().max().unwrap_or(&16);
        setup::fresh_copy(&template, &db);
        runner.run(&db, n, warm);
        let mut best: Option<run_once::Once> = None;
        for &c in &s.concurrency {
            let mut runs = Vec::with_capacity(s.once_reps);
            let mut ratios = Vec::new();
            for rep in 0..s.once_reps {
                let fresh = |r: &run_once::Runner<'_>| {
                    setup::fresh_copy(&template, &db);
                    if let Some(v) = r.schema {
                        setup::downgrade(&db, v);
                    }
                    r.run(&db, n, c)
                };
                match &baseline {
                    // Paired, in alternating order: the ratio of pass times
                    // (this build / the other) and of CPU seconds.
                    Some(b) => {
                        let (ours, theirs) = if rep % 2 == 0 {
                            let ours = fresh(&runner);
                            (ours, fresh(b))
                        } else {
                            let theirs = fresh(b);
                            (fresh(&runner), theirs)
                        };
                        ratios.push((
                            ours.pass.as_secs_f64() / theirs.pass.as_secs_f64(),
                            ours.cpu() / theirs.cpu(),
                        ));
                        runs.push(ours);
                    }
                    None => runs.push(fresh(&runner)),
                }
            }
            runs.sort_by_key(|r| r.pass);
            let median = runs[runs.len() / 2].clone();
            print_once("first pass", &median);
            if !ratios.is_empty() {
                let mut time: Vec<f64> = ratios.iter().map(|r| r.0).collect();
                let mut cpu: Vec<f64> = ratios.iter().map(|r| r.1).collect();
                time.sort_by(f64::total_cmp);
                cpu.sort_by(f64::total_cmp);
                println!(
                    "  against RXSYNC_BENCH_AGAINST ({} pairs): pass time {:.3}x, CPU {:.3}x (medians of per-pair ratios, this build / that one)",
                    ratios.len(),
                    time[time.len() / 2],
                    cpu[cpu.len() / 2]
                );
            }
            if best.as_ref().is_none_or(|b| median.pass < b.pass) {
                best = Some(median);
            }
        }
        // Steady state: the same links again once due (interval 1 s); every
        // document comes back with the same bytes, so every sync is `unchanged`.
        if let Some(b) = &best {
            std::thread::sleep(Duration::from_millis(1200));
            let again = runner.run(&db, n, *s.concurrency.last().unwrap_or(&16));
            print_once("second pass, unchanged", &again);
            // The goal is about N >= 1,000 (the smoke run's N is not a measurement).
            if n < 1000 {
                continue;
            }
            println!(
                "run --once, N = {n}: best first pass {:.0} link-syncs/s at concurrency {} (goal >= 1,000: {})",
                b.per_second(),
                b.concurrency,
                if b.per_second() >= 1000.0 {
                    "met"
                } else {
                    "missed"
                }
            );
        }
    }
}

fn print_once(what: &str, r: &run_once::Once) {
    println!(
        "run --once, N = {}, concurrency {:>2}, {what}: {:.0} link-syncs/s (pass {:.2} s, process {:.2} s); \
         sync latency p50 {} ms, p99 {} ms, max {} ms (import stage p50 {} ms, p99 {} ms); \
         rxsync CPU {:.2} s (user {:.2} + sys {:.2}) = {:.2} ms per link-sync; peak RSS {:.1} MiB; \
         sandbox CPU {:.2} s; outcomes {}",
        r.links,
        r.concurrency,
        r.per_second(),
        r.pass.as_secs_f64(),
        r.wall.as_secs_f64(),
        r.latency.0,
        r.latency.1,
        r.latency.2,
        r.import_latency.0,
        r.import_latency.1,
        r.cpu(),
        r.cpu_user,
        r.cpu_sys,
        r.cpu() / r.links as f64 * 1e3,
        r.max_rss_kib as f64 / 1024.0,
        r.sandbox_cpu,
        r.outcomes
    );
}
