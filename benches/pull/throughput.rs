//! Issue 3's benchmark: pull throughput in process (`Puller::pull`, one
//! link after the other, into a fresh database) against the sandbox on
//! loopback, timed in triples with two baselines on the same documents:
//!
//! - **memory**: the bytes each pull stored, read back once and handed to
//!   `rxsync::import::import` (no link, no HTTP) — the pipeline and SQLite;
//! - **memory + link**: the same plus what a pull does to its link without
//!   the network: claim the lease, open the sealed tokens, and import with
//!   the pull's record (lease given back, schedule, sync's link);
//! - **network**: `Puller::pull`, which adds signing, HTTP over loopback,
//!   the sandbox's answer, the trail and one audit row per request.

use crate::sandbox::Sandbox;
use crate::setup::{self, Linked, Provider};
use rxsync::config::{Config, ProviderKind};
use rxsync::domain::{SourceName, Trigger};
use rxsync::import::{ImportRequest, import};
use rxsync::parse::DocFormat;
use rxsync::pull::Puller;
use rxsync::store::{ImportOutcome, PullRecord, Store, SyncContext};
use rxsync::vault::VaultKey;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One document a pull stored, to import again from memory.
struct Doc {
    link: Linked,
    bytes: Vec<u8>,
    origin: Option<String>,
}

/// One measured triple: seconds of each run, and the CPU seconds of the
/// network run (this process, the sandbox).
struct Triple {
    memory: f64,
    with_link: f64,
    network: f64,
    cpu: f64,
    sandbox: f64,
}

/// The medians of one provider's runs.
pub struct Figures {
    pub provider: Provider,
    pub links: usize,
    pub bytes: usize,
    pub memory: Duration,
    pub with_link: Duration,
    pub network: Duration,
    /// Medians of the per-triple ratios to the memory run's time.
    pub with_link_ratio: f64,
    pub network_ratio: f64,
    /// CPU seconds per link-sync of the network run: this process (rxsync's
    /// side) and the sandbox's.
    pub rxsync_cpu: f64,
    pub sandbox_cpu: f64,
}

pub struct Bench<'a> {
    pub dir: &'a Path,
    pub sandbox: &'a Sandbox,
    pub config: Arc<Config>,
    /// What the config's `[import]` asks of normalization.
    pub options: rxsync::normalize::Options,
    pub key: Arc<VaultKey>,
    pub template: &'a Path,
    pub runtime: &'a tokio::runtime::Runtime,
    pub puller: Puller,
}

impl Bench<'_> {
    /// Warm-up, then `reps` triples (memory, memory + link, network).
    pub fn measure(&self, links: &[Linked], reps: usize) -> Figures {
        let provider = links[0].provider;
        let db = self.dir.join(format!("{}.db", provider.id));
        // Warm-up: the sandbox builds and caches each patient's documents,
        // and the documents this pull stores are the memory runs' input.
        setup::fresh_copy(self.template, &db);
        self.network(&db, links);
        let docs = stored_documents(&db, links);
        let bytes = docs.iter().map(|d| d.bytes.len()).sum();
        self.memory(&db, &docs);
        self.with_link(&db, &docs);
        let mut runs = Vec::with_capacity(reps);
        for _ in 0..reps {
            let m = self.memory(&db, &docs);
            let l = self.with_link(&db, &docs);
            let (cpu0, sandbox0) = (process_cpu(), self.sandbox.cpu_seconds());
            let n = self.network(&db, links);
            let (cpu, sandbox) = (process_cpu() - cpu0, self.sandbox.cpu_seconds() - sandbox0);
            runs.push(Triple {
                memory: m.as_secs_f64(),
                with_link: l.as_secs_f64(),
                network: n.as_secs_f64(),
                cpu,
                sandbox,
            });
        }
        let med = |f: &dyn Fn(&Triple) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let n = links.len() as f64;
        Figures {
            provider,
            links: links.len(),
            bytes,
            memory: Duration::from_secs_f64(med(&|r| r.memory)),
            with_link: Duration::from_secs_f64(med(&|r| r.with_link)),
            network: Duration::from_secs_f64(med(&|r| r.network)),
            with_link_ratio: med(&|r| r.with_link / r.memory),
            network_ratio: med(&|r| r.network / r.memory),
            rxsync_cpu: med(&|r| r.cpu) / n,
            sandbox_cpu: med(&|r| r.sandbox) / n,
        }
    }

    /// Pulls every link once into a fresh copy of the template.
    fn network(&self, db: &Path, links: &[Linked]) -> Duration {
        setup::fresh_copy(self.template, db);
        let store = rxsync::store::Writer::start(Store::open(db).expect("store")).expect("writer");
        self.runtime.block_on(async {
            let t = Instant::now();
            for l in links {
                let r = self
                    .puller
                    .pull(&store, l.link, Trigger::Schedule, "rxsync")
                    .await
                    .expect("pull recorded");
                assert_eq!(
                    r.outcome.as_str(),
                    "imported",
                    "link {}: {:?}",
                    l.link,
                    r.error
                );
            }
            let took = t.elapsed();
            // The next measurement replaces the file: close it first.
            store.close().await;
            took
        })
    }

    /// Imports the stored documents from memory into a fresh copy.
    fn memory(&self, db: &Path, docs: &[Doc]) -> Duration {
        setup::fresh_copy(self.template, db);
        let mut store = Store::open(db).expect("store");
        let t = Instant::now();
        for d in docs {
            let source = SourceName::parse(d.link.provider.id).expect("source");
            let sync = self.sync(d, source, None);
            let outcome = import(&mut store, &self.request(d, &sync))
                .expect("import")
                .outcome;
            assert!(!matches!(outcome, ImportOutcome::Unchanged { .. }));
        }
        t.elapsed()
    }

    /// The memory import plus the link's lease, tokens and pull record.
    fn with_link(&self, db: &Path, docs: &[Doc]) -> Duration {
        setup::fresh_copy(self.template, db);
        let mut store = Store::open(db).expect("store");
        let holder = self.puller.holder().to_string();
        let t = Instant::now();
        for d in docs {
            let source = SourceName::parse(d.link.provider.id).expect("source");
            let claimed = store
                .claim_link(d.link.link, &holder, chrono::Duration::minutes(15))
                .expect("claim");
            std::hint::black_box(claimed.secrets(&self.key).expect("tokens open"));
            let record = PullRecord {
                link_id: d.link.link,
                holder: holder.clone(),
                http_trail: "[]".to_string(),
                accesses: Vec::new(),
                moves: Vec::new(),
                identity: None,
                schedule: self.puller.schedule_of(d.link.provider.id),
            };
            let sync = self.sync(d, source, Some(record));
            let outcome = import(&mut store, &self.request(d, &sync))
                .expect("import")
                .outcome;
            assert!(!matches!(outcome, ImportOutcome::Unchanged { .. }));
        }
        t.elapsed()
    }

    /// The sync `Puller::pull` records for this document.
    fn sync(&self, d: &Doc, source: SourceName, pull: Option<PullRecord>) -> SyncContext {
        SyncContext {
            patient: d.link.patient.clone(),
            source,
            trigger: Trigger::Schedule,
            actor: "rxsync".to_string(),
            started_at: chrono::Utc::now(),
            origin: d.origin.clone(),
            pull,
        }
    }

    /// The request `Puller::pull` makes for this document.
    fn request<'a>(&'a self, d: &'a Doc, sync: &'a SyncContext) -> ImportRequest<'a> {
        let provider = self.config.provider(d.link.provider.id).expect("provider");
        ImportRequest {
            sync,
            bytes: &d.bytes,
            format: match provider.kind {
                ProviderKind::Ccr => None,
                ProviderKind::Fhir => Some(DocFormat::FhirJson),
            },
            keep_unreadable: true,
            max_document_bytes: provider.limits.max_document_bytes,
            options: &self.options,
            // As `Puller::pull` asks: the document must be about the link's patient.
            expected_patient: Some(&d.link.remote),
        }
    }
}

/// The documents the pulls stored, in link order (read-only SQL: the store
/// has no reader for a document's bytes by patient).
fn stored_documents(db: &Path, links: &[Linked]) -> Vec<Doc> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open read-only");
    let mut stmt = conn
        .prepare("SELECT bytes, origin FROM documents WHERE patient_id = ?1 AND source = ?2")
        .expect("documents query");
    links
        .iter()
        .map(|l| {
            let (bytes, origin) = stmt
                .query_row([l.patient.as_str(), l.provider.id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .expect("the pulled document");
            Doc {
                link: l.clone(),
                bytes,
                origin,
            }
        })
        .collect()
}

/// This process's CPU time so far (user + system), in seconds.
fn process_cpu() -> f64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a pointer to a live local.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}
