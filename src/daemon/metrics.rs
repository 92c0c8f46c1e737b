//! The daemon's Prometheus metrics (text exposition via `prometheus-client`).
//! Counters are kept in memory; the gauges read from the database (open
//! exceptions by kind, links by state) are set at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    pub provider: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    pub syncs: Family<SyncLabels, Counter>,
    pub sync_seconds: Family<ProviderLabel, Histogram>,
    pub token_refreshes: Family<ProviderLabel, Counter>,
    pub redirects: Family<ProviderLabel, Counter>,
    /// Records of pulled documents that could not be read (each an
    /// `unreadable_record` exception): a provider sending partial data.
    pub unreadable_records: Family<ProviderLabel, Counter>,
    pub breaker_open: Family<ProviderLabel, Gauge>,
    pub breaker_trips: Family<ProviderLabel, Counter>,
    pub open_exceptions: Family<KindLabel, Gauge>,
    pub links: Family<StateLabel, Gauge>,
    pub store_batch_jobs: Histogram,
    pub store_batch_seconds: Histogram,
    pub store_failed_batches: Counter,
    /// Reads of the due links by the scheduler: one when a sleep ends, not
    /// on a fixed beat (`Daemon::run` sleeps until the next due time).
    pub due_polls: Counter,
    /// Time this worker waited on the shared database for its claims and
    /// provider slots (row locks on PostgreSQL, the write lock on SQLite),
    /// labelled with the worker once `register_worker` ran.
    pub claim_wait_seconds: Histogram,
    /// PostgreSQL notifications that a link became due (LISTEN/NOTIFY).
    pub due_notifications: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rxsync");
        let syncs = Family::<SyncLabels, Counter>::default();
        registry.register("syncs", "Link syncs by provider and outcome", syncs.clone());
        let sync_seconds = Family::<ProviderLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "sync_duration_seconds",
            "Duration of a link sync, fetch and import included",
            sync_seconds.clone(),
        );
        let token_refreshes = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "token_refreshes",
            "OAuth 2.0 access tokens refreshed",
            token_refreshes.clone(),
        );
        let unreadable_records = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "unreadable_records",
            "Records of pulled documents that could not be read",
            unreadable_records.clone(),
        );
        let redirects = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "redirects_followed",
            "HTTP redirect hops followed",
            redirects.clone(),
        );
        let breaker_open = Family::<ProviderLabel, Gauge>::default();
        registry.register(
            "provider_paused",
            "1 while a provider's circuit breaker pauses its syncs",
            breaker_open.clone(),
        );
        let breaker_trips = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "provider_pauses",
            "Times a provider's circuit breaker tripped",
            breaker_trips.clone(),
        );
        let open_exceptions = Family::<KindLabel, Gauge>::default();
        registry.register(
            "open_exceptions",
            "Open exceptions in the review queue by kind",
            open_exceptions.clone(),
        );
        let links = Family::<StateLabel, Gauge>::default();
        registry.register("links", "Links by state", links.clone());
        let store_batch_jobs = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "store_batch_jobs",
            "Store jobs (claims, imports, failed syncs, token commits) per write transaction of the store's writer",
            store_batch_jobs.clone(),
        );
        let store_batch_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 12));
        registry.register(
            "store_batch_seconds",
            "How long each write transaction of the store's writer held the write lock (its sum over time is the writer's busy share)",
            store_batch_seconds.clone(),
        );
        let store_failed_batches = Counter::default();
        registry.register(
            "store_failed_batches",
            "Write transactions of the store's writer that did not commit (every job in them failed)",
            store_failed_batches.clone(),
        );
        let due_polls = Counter::default();
        let due_notifications = Counter::default();
        registry.register(
            "scheduler_notifications",
            "Notifications from PostgreSQL that a link became due now (another process linked, re-linked or scheduled it): each wakes the scheduler at once",
            due_notifications.clone(),
        );
        registry.register(
            "scheduler_polls",
            "Reads of the due links by the scheduler (it sleeps until the next due time between them)",
            due_polls.clone(),
        );
        Metrics {
            registry,
            syncs,
            sync_seconds,
            token_refreshes,
            redirects,
            unreadable_records,
            breaker_open,
            breaker_trips,
            open_exceptions,
            links,
            store_batch_jobs,
            store_batch_seconds,
            store_failed_batches,
            due_polls,
            claim_wait_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            due_notifications,
        }
    }

    /// Exports this worker's lease claims and takeovers, labelled with its
    /// holder name (pid, host, random id), so that the workers sharing a
    /// database can be told apart once their metrics are gathered.
    pub fn register_worker(&mut self, worker: &str, counters: &crate::pull::LeaseCounters) {
        let sub = self.registry.sub_registry_with_label((
            std::borrow::Cow::Borrowed("worker"),
            std::borrow::Cow::Owned(worker.to_string()),
        ));
        sub.register(
            "lock_wait_seconds",
            "Time this worker waited on the shared database to claim due links and provider slots (row locks on PostgreSQL, the write lock on SQLite)",
            self.claim_wait_seconds.clone(),
        );
        sub.register(
            "lease_claims",
            "Links this worker claimed for a sync",
            counters.claims.clone(),
        );
        sub.register(
            "lease_takeovers",
            "Claims that took over a lease its holder stopped renewing (a worker killed, frozen or cut off mid-sync)",
            counters.takeovers.clone(),
        );
    }

    /// Records one batch of the store's writer (see `store::Writer::start_observed`).
    pub fn store_observer(&self) -> crate::store::WriterObserver {
        let (jobs, seconds, failed) = (
            self.store_batch_jobs.clone(),
            self.store_batch_seconds.clone(),
            self.store_failed_batches.clone(),
        );
        Box::new(move |b: &crate::store::WriterBatch| {
            jobs.observe(b.jobs as f64);
            seconds.observe(b.held.as_secs_f64());
            if !b.committed {
                failed.inc();
            }
        })
    }

    /// One wait on the database for a claim or a provider slot.
    pub fn observe_claim_wait(&self, waited: std::time::Duration) {
        self.claim_wait_seconds.observe(waited.as_secs_f64());
    }

    /// Counts one finished sync.
    pub fn record_sync(&self, r: &crate::pull::PullReport, seconds: f64) {
        let provider = ProviderLabel {
            provider: r.provider.to_string(),
        };
        self.syncs
            .get_or_create(&SyncLabels {
                provider: r.provider.to_string(),
                outcome: r.outcome.as_str().to_string(),
            })
            .inc();
        self.sync_seconds.get_or_create(&provider).observe(seconds);
        if r.refreshed {
            self.token_refreshes.get_or_create(&provider).inc();
        }
        if r.redirects > 0 {
            self.redirects
                .get_or_create(&provider)
                .inc_by(u64::from(r.redirects));
        }
        // Created at the first sync, so a provider that never sends an
        // unreadable record shows 0 rather than nothing.
        let unreadable = self.unreadable_records.get_or_create(&provider);
        if let Some(n) = r.import.as_ref().map(|i| i.unreadable_records())
            && n > 0
        {
            unreadable.inc_by(n as u64);
        }
    }

    /// Sets the database-derived gauges and renders the text exposition.
    pub fn render(
        &self,
        exceptions: &[(String, i64)],
        links: &[(crate::domain::LinkState, i64)],
    ) -> Result<String, std::fmt::Error> {
        // Every kind, zeros included, so that a dashboard sees a series drop to 0.
        self.open_exceptions.clear();
        for kind in crate::domain::ExceptionKind::ALL {
            let n = exceptions
                .iter()
                .find(|(k, _)| k == kind.as_str())
                .map_or(0, |(_, n)| *n);
            self.open_exceptions
                .get_or_create(&KindLabel {
                    kind: kind.as_str().to_string(),
                })
                .set(n);
        }
        self.links.clear();
        for state in crate::domain::LinkState::ALL {
            let n = links
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            self.links
                .get_or_create(&StateLabel {
                    state: state.as_str().to_string(),
                })
                .set(n);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;
    use crate::import::ImportReport;
    use crate::parse::DocFormat;
    use crate::pull::PullReport;
    use crate::store::ImportOutcome;

    fn pulled(unreadable_records: usize) -> PullReport {
        PullReport {
            link: crate::domain::LinkId::new(1),
            patient: "p".into(),
            provider: crate::domain::ProviderId::parse("good").expect("id"),
            outcome: crate::pull::PullOutcome::Synced(crate::domain::SyncOutcome::Imported),
            error: None,
            retry_after_secs: None,
            requests: 1,
            redirects: 0,
            refreshed: false,
            import: Some(ImportReport {
                patient: "p".into(),
                source: "good".into(),
                format: DocFormat::FhirJson,
                sha256: "0".repeat(64),
                records: 3,
                outcome: ImportOutcome::Imported {
                    sync_id: 1,
                    document_id: 1,
                    regimen_id: 1,
                    version: 1,
                    status: "needs_review".into(),
                    items: 2,
                    exceptions: Default::default(),
                    skipped_count: unreadable_records,
                    unreadable_records,
                },
                skipped: Vec::new(),
                problems: Vec::new(),
            }),
        }
    }

    #[test]
    fn a_workers_lease_claims_and_takeovers_carry_its_name() {
        let mut m = Metrics::new();
        let counters = crate::pull::LeaseCounters::default();
        m.register_worker("pid 7 on h (0000002a)", &counters);
        counters.claims.inc_by(3);
        counters.takeovers.inc();
        m.due_polls.inc();
        let text = m.render(&[], &[]).unwrap_or_default();
        for line in [
            "rxsync_lease_claims_total{worker=\"pid 7 on h (0000002a)\"} 3",
            "rxsync_lease_takeovers_total{worker=\"pid 7 on h (0000002a)\"} 1",
            "rxsync_scheduler_polls_total 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn unreadable_records_of_pulled_documents_are_counted_per_provider() {
        let m = Metrics::new();
        m.record_sync(&pulled(0), 0.01);
        m.record_sync(&pulled(2), 0.01);
        m.record_sync(&pulled(1), 0.01);
        let text = m.render(&[], &[]).unwrap_or_default();
        assert!(
            text.contains("rxsync_unreadable_records_total{provider=\"good\"} 3"),
            "{text}"
        );
    }
}
