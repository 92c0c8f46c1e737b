//! A sync's lease on its link while the sync runs: the claims and
//! takeovers this worker made (counted for `/metrics`), and the heartbeat
//! that renews the lease every `[sync] heartbeat` until the sync ends.
//!
//! The heartbeat only extends the lease: it never gives it back. The
//! transaction that records the sync's outcome does (`Store::finish_pull`
//! through the import or the failed sync), so an abandoned sync (shutdown)
//! keeps its lease until the refresh it may still have to commit is in.

use super::Puller;
use crate::domain::LinkId;
use crate::store::{ClaimedLink, Writer};
use prometheus_client::metrics::counter::Counter;
use std::time::Duration;

/// What this worker's claims did, shared with the daemon's metrics
/// (`Metrics::register_worker`).
#[derive(Debug, Clone, Default)]
pub struct LeaseCounters {
    /// Links this worker claimed for a sync.
    pub claims: Counter,
    /// Claims that took over a lease whose holder stopped renewing it.
    pub takeovers: Counter,
}

/// Renews a link's lease until dropped (when its sync's pull returns).
pub(super) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Puller {
    /// Counts the claim of `link` and starts its heartbeat.
    pub(super) fn hold_lease(&self, writer: &Writer, link: &ClaimedLink) -> Heartbeat {
        self.leases.claims.inc();
        if let Some(previous) = &link.took_over_from {
            self.leases.takeovers.inc();
            tracing::warn!(link = link.view.id.get(), previous = %previous, "took over a lease its holder stopped renewing");
        }
        let s = &self.config.sync;
        heartbeat(
            writer.clone(),
            link.view.id,
            link.holder.clone(),
            s.lease,
            s.heartbeat,
        )
    }

    /// This worker's claims and takeovers.
    pub fn lease_counters(&self) -> &LeaseCounters {
        &self.leases
    }
}

/// The lease's length as the store takes it.
pub(super) fn ttl(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::minutes(15))
}

/// Every `every`, extends `holder`'s lease of the link to `lease` from
/// then, until the lease is lost or the heartbeat dropped.
fn heartbeat(
    writer: Writer,
    link_id: LinkId,
    holder: String,
    lease: Duration,
    every: Duration,
) -> Heartbeat {
    Heartbeat(tokio::spawn(async move {
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beat.tick().await;
            let h = holder.clone();
            match writer
                .run(move |s| s.renew_lease(link_id, &h, ttl(lease)))
                .await
            {
                Ok(true) => tracing::debug!(link = link_id.get(), "lease renewed"),
                // Given back by the sync's end (a beat racing it), or taken
                // over after it ran out: then the sync's end says so, as its
                // error ("no longer held by this sync").
                Ok(false) => {
                    tracing::debug!(
                        link = link_id.get(),
                        "lease no longer held; heartbeat stops"
                    );
                    return;
                }
                // Tried again at the next beat: the lease lasts several.
                Err(e) => {
                    tracing::warn!(link = link_id.get(), error = %e, "cannot renew the lease")
                }
            }
        }
    }))
}
