//! The daemon: scheduled pulls of every active link (`rxsync run`), one pass
//! for cron (`rxsync run --once`), and the operations endpoints.
//!
//! The schedule lives in the database (`links.next_due_at`, written with
//! each pull's outcome), so a restart carries on where it stopped. Between
//! reads of the due links the daemon sleeps until the next due time
//! (`Store::next_due_at`), at most `MAX_IDLE`, waking early for a sync that
//! ends, a paused provider's pause that ends, or shutdown. A global
//! semaphore bounds syncs in flight, a per-provider one bounds each
//! provider's share, and a circuit breaker pauses a provider that keeps
//! failing. One sync per link holds across processes through the link's
//! lease, renewed by each sync's heartbeat (`pull::lease`); a lease whose
//! holder stopped renewing is taken over once it runs out, and leases of
//! processes of this host that died are given back at start. On
//! shutdown no new sync starts; in-flight ones get the grace period, then
//! are abandoned — each sync's store work is one job of the store's writer
//! (`store::Writer`), all or nothing, and a job whose sync was abandoned
//! before it started is not run, so an abandoned sync leaves nothing
//! partial — and their leases are given back (through the writer, after
//! every job queued before).

pub mod breaker;
pub mod exports;
pub mod metrics;

use crate::domain::{LinkId, ProviderId};
use crate::pull::{PullOutcome, PullReport, Puller};
use crate::store::{Database, DueLink, Store, StoreError, Writer};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use breaker::Breakers;
use metrics::{Metrics, ProviderLabel};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// What a pass (or a daemon run until shutdown) did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    /// Syncs by outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Links not started because their provider was paused.
    pub paused: usize,
    /// Syncs abandoned at shutdown.
    pub abandoned: usize,
    /// Syncs that ended in a store error (the database, not the provider).
    pub errors: usize,
    /// Syncs that did not succeed ([`SyncOutcome::is_failure`]), counted
    /// beside `outcomes`, which keys them by name for output.
    #[serde(skip)]
    pub failures: usize,
    pub seconds: f64,
}

impl Summary {
    /// Whether anything failed (exit status of `run --once`).
    pub fn failed(&self) -> bool {
        self.errors > 0 || self.failures > 0
    }

    /// All syncs that ran.
    pub fn syncs(&self) -> usize {
        self.outcomes.values().sum()
    }
}

/// The longest the scheduler sleeps between reads of the due links. Links
/// made or re-scheduled by another process (`link add`, another worker)
/// are seen within this; links this process syncs wake it when they end.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// The shortest such sleep: a link due at the very moment of a read is
/// read again after this, not in a busy loop.
const MIN_IDLE: Duration = Duration::from_millis(20);

/// How long the scheduler waits to read the due links again after a read
/// failed (the database locked or gone): soon, without flooding the log.
const ERROR_IDLE: Duration = Duration::from_secs(5);
/// How long a link whose sync could not be recorded waits before it is
/// tried again (its lease, held back that long).
const STORE_ERROR_RETRY: Duration = Duration::from_secs(60);

/// How long a provider whose every `max_in_flight` slot is taken (by
/// this or another worker) waits before its queued links try again.
const SLOT_RETRY: Duration = Duration::from_millis(200);

/// Where `Daemon::drive` gets links to sync. Both feeds claim their links
/// in batches (`Store::claim_due_batch`): a claimed link is leased to this
/// worker, so workers sharing the database never queue the same link.
enum Feed {
    /// `run --once`: batches of due links until none is left that this
    /// pass has not synced already.
    Pass {
        batch: std::collections::VecDeque<DueLink>,
        /// Links this pass has claimed: one claimed again (due again at once)
        /// ends the pass instead of syncing it twice.
        seen: HashSet<LinkId>,
        exhausted: bool,
    },
    /// `run`: the due links, read again when the schedule says.
    Schedule {
        /// Read but not started yet.
        batch: std::collections::VecDeque<DueLink>,
        /// When to read the due links again (once `batch` is empty).
        wake_at: Instant,
    },
}

impl Feed {
    /// When the drive's loop should look again if nothing else happens.
    fn wake_at(&self) -> Instant {
        match self {
            Feed::Pass { .. } => Instant::now() + Duration::from_millis(50),
            Feed::Schedule { wake_at, .. } => *wake_at,
        }
    }

    fn forever(&self) -> bool {
        matches!(self, Feed::Schedule { .. })
    }

    /// Reads the due links at the next look (a link became due elsewhere).
    fn wake_now(&mut self) {
        if let Feed::Schedule { wake_at, .. } = self {
            *wake_at = Instant::now();
        }
    }

    /// Takes a claimed link that was not started (at the end of a drive).
    fn drain_one(&mut self) -> Option<DueLink> {
        match self {
            Feed::Pass { batch, .. } | Feed::Schedule { batch, .. } => batch.pop_front(),
        }
    }
}

/// The daemon's shared state.
pub struct Daemon {
    /// Shared with the review app's browser linking (`linking_parts`).
    puller: Arc<Puller>,
    /// Every sync's store work, committed in batches (see `store::Writer`).
    writer: Writer,
    /// Reads: the due links, the metrics' counts, readiness.
    reader: Reader,
    metrics: Metrics,
    breakers: Mutex<Breakers>,
    ready: AtomicBool,
    /// The database engine, as `/readyz` names it.
    engine: &'static str,
    /// Rung when another process makes a link due now (PostgreSQL's
    /// LISTEN/NOTIFY, `listen`): the schedule reads the due links at once
    /// instead of at its next due time.
    woken: Arc<tokio::sync::Notify>,
}

/// The daemon's read connection (its writes go through the writer).
struct Reader(Mutex<Store>);

impl Reader {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A PostgreSQL call made here runs off the runtime by itself
        // (`store::db::off_runtime`); SQLite's are simply made.
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Daemon {
    /// A daemon over `database`. Gives back the leases of dead processes
    /// first.
    pub fn new(puller: Puller, database: &Database) -> Result<Arc<Daemon>, StoreError> {
        let s = &puller.config().sync;
        let mut store = Store::connect(database)?;
        let own = puller.holder();
        let released =
            store.release_dead_leases(|h| crate::worker::lease_holder_is_dead(h, own))?;
        if released > 0 {
            tracing::warn!(released, "gave back leases of processes that no longer run");
        }
        let engine = store.engine().name();
        let woken = Arc::new(tokio::sync::Notify::new());
        let mut metrics = Metrics::new();
        if let Database::Postgres(target) = database {
            listen(
                target,
                Arc::downgrade(&woken),
                metrics.due_notifications.clone(),
            );
        }
        metrics.register_worker(puller.holder(), puller.lease_counters());
        Ok(Arc::new(Daemon {
            breakers: Mutex::new(Breakers::new(s.breaker_failures, s.breaker_pause)),
            writer: Writer::start_observed(store, metrics.store_observer())?,
            reader: Reader(Mutex::new(Store::connect(database)?)),
            metrics,
            ready: AtomicBool::new(false),
            engine,
            woken,
            puller: Arc::new(puller),
        }))
    }

    /// The puller and the writer, for the review app's browser linking: its
    /// consents and first pulls then write through this process's one writer.
    pub fn linking_parts(&self) -> (Arc<Puller>, Writer) {
        (Arc::clone(&self.puller), self.writer.clone())
    }

    /// Closes the store's writer (after its batch in progress) and with it
    /// the database: call when no pass or run is left to make.
    pub async fn close(&self) {
        self.writer.close().await;
    }

    /// The metrics, for tests and the review server.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// One pass over every link due now (claimed in batches, shared with
    /// the other workers of the database), then return.
    pub async fn pass(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> Summary {
        // The database must answer before anything is claimed.
        if let Err(e) = self.reader.with(|s| s.ping()) {
            tracing::error!(error = %e, "cannot read the due links");
            return Summary {
                errors: 1,
                ..Summary::default()
            };
        }
        self.ready.store(true, Ordering::Relaxed);
        let feed = Feed::Pass {
            batch: Default::default(),
            seen: HashSet::new(),
            exhausted: false,
        };
        self.drive(feed, shutdown).await
    }

    /// How many due links one claim takes: enough to keep every sync slot
    /// busy until the next claim, few enough to leave the rest to the
    /// other workers.
    fn batch_size(&self) -> usize {
        (self.puller.config().sync.concurrency * 2).clamp(8, 512)
    }

    /// Claims the next batch of due links for this worker (None: the
    /// database could not be read; the error is logged).
    fn claim_batch(&self, paused: &[ProviderId]) -> Option<Vec<DueLink>> {
        let holder = self.puller.holder().to_string();
        let ttl = crate::pull::lease_ttl(self.puller.config().sync.lease);
        let limit = self.batch_size();
        let waited = Instant::now();
        let claimed = self
            .reader
            .with(|s| s.claim_due_batch(&holder, ttl, limit, paused));
        self.metrics.observe_claim_wait(waited.elapsed());
        match claimed {
            Ok(links) => Some(links),
            Err(e) => {
                tracing::error!(error = %e, "cannot claim the due links");
                None
            }
        }
    }

    /// A link that cannot start now (its provider is at its limit): the
    /// breaker's trial it may have been given goes back, and the link waits
    /// in its provider's queue.
    fn wait_in_queue(
        &self,
        link: DueLink,
        queued: &mut HashSet<LinkId>,
        deferred: &mut HashMap<ProviderId, std::collections::VecDeque<DueLink>>,
    ) {
        self.breakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .abstain(link.provider.as_str(), Instant::now());
        queued.insert(link.id);
        deferred
            .entry(link.provider.clone())
            .or_default()
            .push_back(link);
    }

    /// Gives back the leases of claimed links that will not be synced now
    /// (a paused provider's, or shutdown's).
    fn give_back(&self, links: impl IntoIterator<Item = LinkId>) {
        let holder = self.puller.holder().to_string();
        let ids: Vec<LinkId> = links.into_iter().collect();
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.reader.with(|s| {
            for id in &ids {
                s.release_link(*id, &holder)?;
            }
            Ok(())
        }) {
            tracing::warn!(error = %e, "cannot give back the leases of links not synced; they expire by themselves");
        }
    }

    /// Syncs due links until `shutdown` turns true.
    pub async fn run(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> Summary {
        self.ready.store(true, Ordering::Relaxed);
        let feed = Feed::Schedule {
            batch: Default::default(),
            wake_at: Instant::now(),
        };
        self.drive(feed, shutdown).await
    }

    /// The next link of `feed` to start, not one of `skip` (queued or in
    /// flight). The schedule reads the due links when its batch is empty
    /// and its wake time has come; finding none, it sets the wake time to
    /// the next due time.
    fn next_link(&self, feed: &mut Feed, skip: &HashSet<LinkId>) -> Option<DueLink> {
        let (batch, wake_at) = match feed {
            Feed::Pass {
                batch,
                seen,
                exhausted,
            } => {
                if batch.is_empty() && !*exhausted {
                    let paused = self.paused_providers();
                    match self.claim_batch(&paused) {
                        Some(links) => {
                            let (again, fresh): (Vec<DueLink>, Vec<DueLink>) =
                                links.into_iter().partition(|d| seen.contains(&d.id));
                            self.give_back(again.iter().map(|d| d.id));
                            if fresh.is_empty() {
                                *exhausted = true;
                            }
                            seen.extend(fresh.iter().map(|d| d.id));
                            batch.extend(fresh);
                        }
                        None => *exhausted = true,
                    }
                }
                return batch.pop_front();
            }
            Feed::Schedule { batch, wake_at } => (batch, wake_at),
        };
        if batch.is_empty() && Instant::now() >= *wake_at {
            self.metrics.due_polls.inc();
            // Paused providers' links are not read at all: however many
            // they are, they cannot crowd out the others.
            let paused = self.paused_providers();
            let wait = match self.claim_batch(&paused) {
                // `claim_batch` said why.
                None => ERROR_IDLE,
                Some(due) => {
                    let fresh: Vec<DueLink> =
                        due.into_iter().filter(|d| !skip.contains(&d.id)).collect();
                    if fresh.is_empty() {
                        let skipped: Vec<LinkId> = skip.iter().copied().collect();
                        match self.reader.with(|s| s.next_due_at(&paused, &skipped)) {
                            Ok(next) => self.idle_until(next),
                            Err(e) => {
                                tracing::error!(error = %e, "cannot read the next due time");
                                ERROR_IDLE
                            }
                        }
                    } else {
                        // More may be due than were claimed: claim again once these started.
                        batch.extend(fresh);
                        Duration::ZERO
                    }
                }
            };
            *wake_at = Instant::now() + wait;
        }
        batch.pop_front()
    }

    /// How long to sleep when no link is due: until `next_due`, or the end
    /// of a provider's pause, within the bounds.
    fn idle_until(&self, next_due: Option<chrono::DateTime<chrono::Utc>>) -> Duration {
        let until_due = next_due.map_or(MAX_IDLE, |t| {
            (t - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO)
        });
        let now = Instant::now();
        let until_reopen = self
            .breakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_reopen(now)
            .map_or(MAX_IDLE, |t| t - now);
        until_due.min(until_reopen).clamp(MIN_IDLE, MAX_IDLE)
    }

    /// Providers whose circuit breaker pauses them now: this worker's own
    /// (which lets one trial through) or the one all workers share in the
    /// database (`Store::record_provider_outcome`).
    fn paused_providers(&self) -> Vec<ProviderId> {
        let now = Instant::now();
        let shared = self
            .reader
            .with(|s| s.paused_providers())
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the shared circuit breakers");
                Vec::new()
            });
        let b = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        self.puller
            .config()
            .providers
            .iter()
            .map(|p| p.id.clone())
            .filter(|p| b.is_open(p.as_str(), now) || shared.contains(p))
            .collect()
    }

    /// Starts syncs from `feed` within the limits until it runs dry (pass)
    /// or until shutdown (daemon), then winds down.
    async fn drive(
        self: &Arc<Self>,
        mut feed: Feed,
        mut shutdown: watch::Receiver<bool>,
    ) -> Summary {
        let forever = feed.forever();
        let started = Instant::now();
        let config = self.puller.config();
        let global = Arc::new(Semaphore::new(config.sync.concurrency));
        let per_provider: HashMap<ProviderId, Arc<Semaphore>> = config
            .providers
            .iter()
            .filter_map(|p| {
                p.max_in_flight
                    .map(|n| (p.id.clone(), Arc::new(Semaphore::new(n))))
            })
            .collect();
        let mut tasks: JoinSet<(LinkId, Option<PullReport>)> = JoinSet::new();
        let mut in_flight: HashSet<LinkId> = HashSet::new();
        let mut summary = Summary::default();
        // Links waiting for their provider's max_in_flight, per provider, and
        // every link queued or running (so a poll does not queue it twice).
        let mut deferred: HashMap<ProviderId, std::collections::VecDeque<DueLink>> = HashMap::new();
        let mut queued: HashSet<LinkId> = HashSet::new();
        let mut paused_links: HashSet<LinkId> = HashSet::new();
        // Providers whose max_in_flight slots (shared in the database) were
        // all taken, and when their queued links try again.
        let mut slot_blocked: HashMap<ProviderId, Instant> = HashMap::new();
        let holder = self.puller.holder().to_string();
        let slot_ttl = crate::pull::lease_ttl(config.sync.lease);
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Start what may start now: first the deferred links whose
            // provider has room again, then new ones; a saturated provider's
            // links wait in its queue while the others go ahead.
            let mut started_any = false;
            let now = Instant::now();
            slot_blocked.retain(|_, until| *until > now);
            let ready_providers: Vec<ProviderId> = deferred
                .iter()
                .filter(|(p, q)| {
                    !q.is_empty()
                        && !slot_blocked.contains_key(*p)
                        && per_provider
                            .get(*p)
                            .is_some_and(|s| s.available_permits() > 0)
                })
                .map(|(p, _)| p.clone())
                .collect();
            let mut from_deferred: std::collections::VecDeque<DueLink> = ready_providers
                .iter()
                .filter_map(|p| deferred.get_mut(p).and_then(|q| q.pop_front()))
                .collect();
            loop {
                if global.available_permits() == 0 || *shutdown.borrow() {
                    break;
                }
                // Enough queued behind saturated providers: claim no more for now.
                let deferred_total: usize = deferred.values().map(|q| q.len()).sum();
                let candidate = match from_deferred.pop_front() {
                    Some(d) => Some(d),
                    None if deferred_total >= self.batch_size() => None,
                    None => self.next_link(&mut feed, &queued),
                };
                let Some(link) = candidate else { break };
                if in_flight.contains(&link.id) {
                    continue;
                }
                let allowed = self
                    .breakers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .allow(link.provider.as_str(), Instant::now());
                if !allowed {
                    queued.remove(&link.id);
                    paused_links.insert(link.id);
                    self.give_back([link.id]);
                    continue;
                }
                let blocked = slot_blocked.contains_key(&link.provider);
                let provider_permit = match per_provider.get(&link.provider) {
                    Some(sem) if !blocked => match sem.clone().try_acquire_owned() {
                        Ok(p) => {
                            // The provider's max_in_flight counts every
                            // worker's syncs: a slot in the database too.
                            let n = config
                                .provider(link.provider.as_str())
                                .and_then(|c| c.max_in_flight)
                                .unwrap_or(usize::MAX);
                            let waited = Instant::now();
                            let took = self.reader.with(|s| {
                                s.take_provider_slot(&link.provider, n, &holder, link.id, slot_ttl)
                            });
                            self.metrics.observe_claim_wait(waited.elapsed());
                            match took {
                                Ok(true) => Some(p),
                                other => {
                                    if let Err(e) = other {
                                        tracing::warn!(provider = %link.provider, error = %e, "cannot take a provider slot");
                                    }
                                    drop(p);
                                    slot_blocked
                                        .insert(link.provider.clone(), Instant::now() + SLOT_RETRY);
                                    self.wait_in_queue(link, &mut queued, &mut deferred);
                                    continue;
                                }
                            }
                        }
                        Err(_) => {
                            // The breaker let it through: give the trial back.
                            self.wait_in_queue(link, &mut queued, &mut deferred);
                            continue;
                        }
                    },
                    Some(_) => {
                        // Its slots are all taken elsewhere: wait in its queue.
                        self.wait_in_queue(link, &mut queued, &mut deferred);
                        continue;
                    }
                    None => None,
                };
                let Ok(permit) = global.clone().try_acquire_owned() else {
                    if provider_permit.is_some() {
                        let (p, h, id) = (link.provider.clone(), holder.clone(), link.id);
                        let _ = self.reader.with(|s| s.give_back_provider_slot(&p, &h, id));
                    }
                    queued.insert(link.id);
                    deferred
                        .entry(link.provider.clone())
                        .or_default()
                        .push_front(link);
                    break;
                };
                queued.insert(link.id);
                in_flight.insert(link.id);
                let me = Arc::clone(self);
                let slot_holder = holder.clone();
                tasks.spawn(async move {
                    let report = me.sync_one(&link).await;
                    if provider_permit.is_some() {
                        let (p, id) = (link.provider.clone(), link.id);
                        if let Err(e) = me
                            .writer
                            .run(move |s| s.give_back_provider_slot(&p, &slot_holder, id))
                            .await
                        {
                            tracing::warn!(link = link.id.get(), error = %e, "cannot give back the provider slot; it expires with the lease");
                        }
                    }
                    drop(permit);
                    drop(provider_permit);
                    (link.id, report)
                });
                started_any = true;
            }
            // Links pulled from a provider's queue but not started go back in front.
            for link in from_deferred.into_iter().rev() {
                deferred
                    .entry(link.provider.clone())
                    .or_default()
                    .push_front(link);
            }
            let waiting = deferred.values().any(|q| !q.is_empty());
            if tasks.is_empty() && !started_any && !waiting && !forever {
                break;
            }
            // Wait for a sync to end, for shutdown, or (daemon) for the next
            // due time — or for a provider's shared slots to be tried again.
            let mut wake = feed.wake_at();
            if let Some(t) = slot_blocked.values().min() {
                wake = wake.min(*t);
            }
            let wake_at = tokio::time::Instant::from_std(wake);
            tokio::select! {
                done = tasks.join_next(), if !tasks.is_empty() => {
                    if let Some(joined) = done {
                        self.finished(joined, &mut in_flight, &mut queued, &mut summary);
                    }
                }
                _ = shutdown.changed() => {}
                _ = self.woken.notified(), if forever => feed.wake_now(),
                _ = tokio::time::sleep_until(wake_at),
                    if tasks.is_empty() || global.available_permits() > 0 => {}
            }
        }
        // Wind down: in-flight syncs get the grace period.
        if !tasks.is_empty() {
            let grace = config.sync.grace;
            tracing::info!(
                in_flight = tasks.len(),
                grace_secs = grace.as_secs(),
                "waiting for syncs in flight"
            );
            let deadline = tokio::time::sleep(grace);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    done = tasks.join_next() => match done {
                        Some(joined) => self.finished(joined, &mut in_flight, &mut queued, &mut summary),
                        None => break,
                    },
                    _ = &mut deadline => {
                        summary.abandoned = tasks.len();
                        tasks.abort_all();
                        while tasks.join_next().await.is_some() {}
                        // A refresh answered before the abort is committed
                        // first, under the lease it needs.
                        self.puller.refreshes_settled().await;
                        let holder = self.puller.holder().to_string();
                        match self.writer.run(move |s| s.release_leases_of(&holder)).await {
                            Ok(n) => tracing::warn!(abandoned = summary.abandoned, released = n, "abandoned syncs at shutdown; nothing partial was written"),
                            Err(e) => tracing::error!(error = %e, "cannot give back leases"),
                        }
                        break;
                    }
                }
            }
        }
        // Claimed but never started (shutdown, or a pass ended early):
        // their leases go back so another worker need not wait them out.
        let mut unstarted: Vec<LinkId> = deferred.values().flatten().map(|d| d.id).collect();
        while let Some(d) = feed.drain_one() {
            unstarted.push(d.id);
        }
        self.give_back(unstarted.into_iter().filter(|id| !in_flight.contains(id)));
        self.ready.store(false, Ordering::Relaxed);
        summary.paused = paused_links.len();
        summary.seconds = started.elapsed().as_secs_f64();
        summary
    }

    fn finished(
        &self,
        joined: Result<(LinkId, Option<PullReport>), tokio::task::JoinError>,
        in_flight: &mut HashSet<LinkId>,
        queued: &mut HashSet<LinkId>,
        summary: &mut Summary,
    ) {
        match joined {
            Ok((id, report)) => {
                in_flight.remove(&id);
                queued.remove(&id);
                match report {
                    Some(r) => {
                        if r.failed() {
                            summary.failures += 1;
                        }
                        *summary
                            .outcomes
                            .entry(r.outcome.as_str().to_string())
                            .or_default() += 1;
                    }
                    None => summary.errors += 1,
                }
            }
            Err(e) => {
                summary.errors += 1;
                tracing::error!(error = %e, "a sync task ended abnormally");
            }
        }
    }

    /// One scheduled sync: pull, then metrics, breaker and a log line (ids only).
    async fn sync_one(&self, link: &DueLink) -> Option<PullReport> {
        let t0 = Instant::now();
        let result = self
            .puller
            .pull(
                &self.writer,
                link.id,
                crate::domain::Trigger::Schedule,
                "rxsync",
            )
            .await;
        let secs = t0.elapsed().as_secs_f64();
        match result {
            Ok(r) => {
                self.metrics.record_sync(&r, secs);
                if let PullOutcome::Synced(outcome) = r.outcome {
                    let failed = outcome.is_provider_failure();
                    let now = Instant::now();
                    // The breaker all workers share: failures in a row at the
                    // provider, whichever worker saw them.
                    let s = &self.puller.config().sync;
                    let (threshold, pause) = (s.breaker_failures, s.breaker_pause);
                    let provider = r.provider.clone();
                    let shared = self
                        .writer
                        .run(move |st| {
                            st.record_provider_outcome(
                                &provider,
                                failed,
                                threshold,
                                chrono::Duration::from_std(pause)
                                    .unwrap_or_else(|_| chrono::Duration::minutes(5)),
                            )
                        })
                        .await;
                    let shared_tripped = match shared {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::warn!(provider = %r.provider, error = %e, "cannot record the outcome in the shared circuit breaker");
                            false
                        }
                    };
                    let mut b = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
                    if b.record(r.provider.as_str(), failed, now) || shared_tripped {
                        self.metrics
                            .breaker_trips
                            .get_or_create(&ProviderLabel {
                                provider: r.provider.to_string(),
                            })
                            .inc();
                        tracing::warn!(provider = %r.provider, "provider paused after failures in a row (circuit breaker)");
                    }
                } else {
                    // Busy or skipped: no request went to the provider.
                    self.breakers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .abstain(r.provider.as_str(), Instant::now());
                }
                let ms = (secs * 1000.0) as u64;
                let import = r.import.as_ref().map(|i| i.summary());
                if r.failed() {
                    tracing::warn!(link = r.link.get(), provider = %r.provider, outcome = %r.outcome, ms, "sync failed");
                } else if r
                    .import
                    .as_ref()
                    .is_some_and(|i| i.unreadable_records() > 0)
                {
                    tracing::warn!(link = r.link.get(), provider = %r.provider, outcome = %r.outcome, ms, import = import.as_deref(), "sync read the document only in part");
                } else {
                    tracing::info!(link = r.link.get(), provider = %r.provider, outcome = %r.outcome, ms, import = import.as_deref(), "sync");
                }
                Some(r)
            }
            Err(e) => {
                self.breakers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .abstain(link.provider.as_str(), Instant::now());
                tracing::error!(link = link.id.get(), error = %e, "sync could not be recorded");
                // Nothing was recorded: this worker holds the link's lease
                // for `STORE_ERROR_RETRY` more (kept if the sync still held
                // it, taken again if the pull gave it back), so the link is
                // tried again then — not at once, which would call the
                // provider in a loop while the store keeps failing — and
                // not only when a whole lease runs out.
                let (id, holder) = (link.id, self.puller.holder().to_string());
                let retry = chrono::Duration::from_std(STORE_ERROR_RETRY)
                    .unwrap_or_else(|_| chrono::Duration::minutes(1));
                let held = self
                    .writer
                    .run(move |s| {
                        if s.renew_lease(id, &holder, retry)? {
                            return Ok(true);
                        }
                        match s.claim_link(id, &holder, retry) {
                            Ok(_) => Ok(true),
                            Err(crate::store::ClaimError::Store(e)) => Err(e),
                            // Revoked, held, another worker's: not ours to hold.
                            Err(_) => Ok(false),
                        }
                    })
                    .await;
                match held {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            link = id.get(),
                            "the link's lease is not this worker's to hold back"
                        )
                    }
                    Err(e) => {
                        tracing::error!(link = id.get(), error = %e, "cannot hold the lease back")
                    }
                }
                None
            }
        }
    }

    /// `/healthz`, `/readyz` and `/metrics`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .with_state(Arc::clone(self))
    }
}

/// `/readyz`: 200 when the scheduler and the store's writer run and the
/// database answers. The body names the engine either way.
async fn readyz(State(d): State<Arc<Daemon>>) -> impl IntoResponse {
    let me = Arc::clone(&d);
    let answers = tokio::task::spawn_blocking(move || me.reader.with(|s| s.ping()))
        .await
        .is_ok_and(|r| r.is_ok());
    let engine = d.engine;
    let database = if answers {
        "the database answers"
    } else {
        "the database does not answer"
    };
    let problem = if !d.ready.load(Ordering::Relaxed) {
        Some("the scheduler is not running")
    } else if d.writer.is_closed() {
        Some("the store's writer has stopped")
    } else if !answers {
        Some("the database cannot be read")
    } else {
        None
    };
    match problem {
        None => (
            StatusCode::OK,
            format!("ready (engine {engine}; {database})\n"),
        ),
        Some(p) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {p} (engine {engine}; {database})\n"),
        ),
    }
}

async fn metrics_text(State(d): State<Arc<Daemon>>) -> axum::response::Response {
    let me = Arc::clone(&d);
    let counts = tokio::task::spawn_blocking(move || {
        me.reader
            .with(|s| Ok((s.open_exception_counts()?, s.link_state_counts()?)))
    })
    .await;
    let (exceptions, links) = match counts {
        Ok(Ok(c)) => c,
        _ => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database cannot be read\n",
            )
                .into_response();
        }
    };
    // Paused providers as the breakers see them now (a pause ends by itself).
    let paused = d.paused_providers();
    for p in &d.puller.config().providers {
        d.metrics
            .breaker_open
            .get_or_create(&ProviderLabel {
                provider: p.id.to_string(),
            })
            .set(i64::from(paused.contains(&p.id)));
    }
    match d.metrics.render(&exceptions, &links) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// How long the listener waits before connecting again after its
/// PostgreSQL connection failed (the schedule's own timer still runs).
const LISTEN_RETRY: Duration = Duration::from_secs(5);

/// PostgreSQL: a thread with a connection of its own that LISTENs on
/// `rxsync_links_due` (sent by the `links` triggers of migration
/// 0004_notify when a link becomes due now: a new link, a re-link, a
/// schedule moved to now, a lease given back) and rings `woken`. It ends
/// when the daemon is gone. The scheduler does not depend on it: without
/// notifications it still wakes at the next due time (at most `MAX_IDLE`).
fn listen(
    target: &crate::store::pg::PgTarget,
    woken: std::sync::Weak<tokio::sync::Notify>,
    count: prometheus_client::metrics::counter::Counter,
) {
    let target = target.clone();
    let spawned = std::thread::Builder::new()
        .name("rxsync-listen".into())
        .spawn(move || {
            while woken.strong_count() > 0 {
                let mut client = match target.connect() {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for due links; the schedule's timer still runs");
                        std::thread::sleep(LISTEN_RETRY);
                        continue;
                    }
                };
                if let Err(e) = client.batch_execute("LISTEN rxsync_links_due") {
                    tracing::warn!(error = %crate::store::pg::PgCause(e), "cannot listen for due links");
                    std::thread::sleep(LISTEN_RETRY);
                    continue;
                }
                loop {
                    let mut notes = client.notifications();
                    let mut iter = notes.timeout_iter(Duration::from_secs(1));
                    let mut rung = false;
                    let failed = loop {
                        use postgres::fallible_iterator::FallibleIterator as _;
                        match iter.next() {
                            Ok(Some(_)) => rung = true,
                            Ok(None) => break None,
                            Err(e) => break Some(e),
                        }
                    };
                    let Some(w) = woken.upgrade() else { return };
                    if rung {
                        count.inc();
                        w.notify_one();
                    }
                    if let Some(e) = failed {
                        tracing::warn!(error = %crate::store::pg::PgCause(e), "the due-link listener lost its connection; connecting again");
                        std::thread::sleep(LISTEN_RETRY);
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the due-link listener; the schedule's timer still runs");
    }
}
