//! Due links, claims and leases: one sync per link at a time, across the
//! processes that share the database.
//!
//! A sync claims its link's lease (holder and expiry) before it reads the
//! link's tokens and gives it back in the transaction that records its
//! outcome (`pulls::finish_pull`); every write of a sync checks that it
//! still holds the lease. An expired lease is taken over. The store knows
//! nothing of processes: which holders are dead is the caller's question
//! (`worker`).

use super::links::{ClaimedLink, SEALED_COLUMNS, VIEW_COLUMNS, claimed};
use super::{Store, StoreError, opt_time_col, rfc3339};
use crate::domain::{LinkId, LinkState, ProviderId};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

/// Why a link could not be claimed for a sync.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("link {0} does not exist")]
    NotFound(LinkId),
    #[error("link {id} is {state}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NotActive {
        id: LinkId,
        state: LinkState,
        reason: Option<String>,
    },
    #[error(
        "link {id} was synced by another worker since this pass read it (next due at {})",
        rfc3339(*next_due)
    )]
    NoLongerDue { id: LinkId, next_due: DateTime<Utc> },
    #[error("link {id} is being synced by {holder} until {}", rfc3339(*until))]
    Busy {
        id: LinkId,
        holder: String,
        until: DateTime<Utc>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ClaimError {
    fn from(e: rusqlite::Error) -> ClaimError {
        ClaimError::Store(e.into())
    }
}

/// A link that is due for a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueLink {
    pub id: LinkId,
    pub provider: ProviderId,
}

impl Store {
    /// Takes the link's lease for a sync: the link must be active and not
    /// held by another sync (an expired lease is taken over).
    pub fn claim_link(
        &mut self,
        id: LinkId,
        holder: &str,
        ttl: chrono::Duration,
    ) -> Result<ClaimedLink, ClaimError> {
        self.claim(id, holder, ttl, false)
    }

    /// [`Store::claim_link`] for a scheduled sync: the link must still be
    /// due when it is claimed. A pass reads its due links once; another
    /// worker may sync one of them a moment later, and that sync moved the
    /// link's `next_due_at` into the future — it is not synced twice.
    pub fn claim_due_link(
        &mut self,
        id: LinkId,
        holder: &str,
        ttl: chrono::Duration,
    ) -> Result<ClaimedLink, ClaimError> {
        self.claim(id, holder, ttl, true)
    }

    fn claim(
        &mut self,
        id: LinkId,
        holder: &str,
        ttl: chrono::Duration,
        due_only: bool,
    ) -> Result<ClaimedLink, ClaimError> {
        let tx = self.tx()?;
        let at = chrono::Utc::now();
        let now_text = super::rfc3339(at);
        // PostgreSQL: the row stays locked until this claim commits, so a
        // second worker claiming it at the same moment waits and then sees
        // this claim's lease (SQLite's IMMEDIATE transaction serializes).
        let lock = tx.dialect("", " FOR UPDATE");
        let row = tx
            .cached_row(
                &format!(
                    "SELECT {VIEW_COLUMNS}, {SEALED_COLUMNS}, lease_holder, lease_until, lease_taken_from
                     FROM links WHERE id = ?1{lock}"
                ),
                [id],
                |r| {
                    Ok((
                        claimed(r, holder)?,
                        r.get::<_, Option<String>>(22)?,
                        opt_time_col(r, 23, "links.lease_until")?,
                        r.get::<_, Option<String>>(24)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut link, lease, until, taken_from)) = row else {
            return Err(ClaimError::NotFound(id));
        };
        if link.view.state != LinkState::Active {
            return Err(ClaimError::NotActive {
                id,
                state: link.view.state,
                reason: link.view.state_reason,
            });
        }
        if due_only
            && let Some(next_due) = link.view.next_due_at
            && next_due > at
        {
            return Err(ClaimError::NoLongerDue { id, next_due });
        }
        // A live lease of another holder; this holder's own (a batch claim,
        // `claim_due_batch`, took it for this sync) is this sync's.
        if let (Some(other), Some(until)) = (&lease, until)
            && until > at
            && other != holder
        {
            return Err(ClaimError::Busy {
                id,
                holder: other.clone(),
                until,
            });
        }
        // Another holder is still named: its sync never finished, and its
        // lease ran out without a heartbeat renewing it. This claim takes it
        // over (or the batch claim that leased it to this holder did). A
        // holder's own lease, held back after a sync it could not record,
        // is not a takeover.
        link.took_over_from = lease.filter(|h| h != holder).or(taken_from);
        tx.prepare_cached(
            "UPDATE links SET lease_holder = ?2, lease_until = ?3, lease_renewed_at = ?4,
             lease_taken_from = NULL WHERE id = ?1",
        )?
        .execute(params![id, holder, super::rfc3339(at + ttl), now_text])?;
        link.moves = {
            let mut stmt =
                tx.prepare("SELECT from_url, to_url FROM link_moves WHERE link_id = ?1")?;
            stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok(link)
    }

    /// The heartbeat of a sync in progress: extends `holder`'s lease of the
    /// link to `ttl` from now. Returns false when `holder` no longer holds
    /// it (given back, or taken over after it expired): the sync's outcome
    /// will not be stored (`pulls::finish_pull` refuses it).
    pub fn renew_lease(
        &mut self,
        id: LinkId,
        holder: &str,
        ttl: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let at = chrono::Utc::now();
        let until = super::rfc3339(at + ttl);
        let renewed = self.conn.cached_execute(
            "UPDATE links SET lease_until = ?3, lease_renewed_at = ?4 WHERE id = ?1 AND lease_holder = ?2",
            params![id, holder, until, super::rfc3339(at)],
        )?;
        if renewed == 1 {
            // The provider slot this sync holds (`take_provider_slot`), if any.
            self.conn.cached_execute(
                "UPDATE provider_slots SET until = ?3 WHERE link_id = ?1 AND holder = ?2",
                params![id, holder, until],
            )?;
        }
        Ok(renewed == 1)
    }

    /// Gives a lease back without recording a sync (the sync never started).
    pub fn release_link(&mut self, id: LinkId, holder: &str) -> Result<(), StoreError> {
        self.conn.cached_execute(
            "UPDATE links SET lease_holder = NULL, lease_until = NULL WHERE id = ?1 AND lease_holder = ?2",
            params![id, holder],
        )?;
        Ok(())
    }

    /// Active links due at `now` and not held by a live lease, soonest
    /// first (never-synced links first of all).
    /// `skip_providers`: providers not to read (paused ones).
    pub fn due_links(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        skip_providers: &[ProviderId],
    ) -> Result<Vec<DueLink>, StoreError> {
        let mut stmt = self.conn.prepare_cached(self.conn.dialect(
            "SELECT id, provider FROM links
             WHERE state = 'active' AND (next_due_at IS NULL OR next_due_at <= ?1)
               AND (lease_until IS NULL OR lease_until <= ?1)
               AND provider NOT IN (SELECT value FROM json_each(?3))
             ORDER BY next_due_at IS NOT NULL, next_due_at, id LIMIT ?2",
            "SELECT id, provider FROM links
             WHERE state = 'active' AND (next_due_at IS NULL OR next_due_at <= ?1)
               AND (lease_until IS NULL OR lease_until <= ?1)
               AND provider NOT IN (SELECT jsonb_array_elements_text(?3::jsonb))
             ORDER BY next_due_at IS NOT NULL, next_due_at, id LIMIT ?2",
        ))?;
        let skip = serde_json::to_string(skip_providers).unwrap_or_else(|_| "[]".into());
        let rows = stmt.query_map(params![rfc3339(now), limit as i64, skip], |r| {
            Ok(DueLink {
                id: r.get(0)?,
                provider: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the scheduler should look again: the earliest time an active
    /// link falls due and is free to claim — the later of its `next_due_at`
    /// and the end of a lease another sync holds on it (a never-synced link
    /// is due now). `skip_providers` (paused) and `skip_links` (queued or in
    /// flight in the caller) are left out. None: no link to wait for.
    pub fn next_due_at(
        &self,
        skip_providers: &[ProviderId],
        skip_links: &[LinkId],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let providers = serde_json::to_string(skip_providers).unwrap_or_else(|_| "[]".into());
        let links = serde_json::to_string(skip_links).unwrap_or_else(|_| "[]".into());
        Ok(self.conn.cached_row(
            self.conn.dialect(
                "SELECT MIN(MAX(COALESCE(next_due_at, ''), COALESCE(lease_until, ''))) FROM links
                 WHERE state = 'active' AND provider NOT IN (SELECT value FROM json_each(?1))
                   AND id NOT IN (SELECT value FROM json_each(?2))",
                // GREATEST ignores NULLs; a never-synced, unleased link is due now.
                "SELECT MIN(COALESCE(GREATEST(next_due_at, lease_until), now())) FROM links
                 WHERE state = 'active'
                   AND provider NOT IN (SELECT jsonb_array_elements_text(?1::jsonb))
                   AND id NOT IN (SELECT jsonb_array_elements_text(?2::jsonb)::bigint)",
            ),
            params![providers, links],
            |r| {
                // SQLite's '' is a never-synced, unleased link: due now.
                match r.get::<_, Option<String>>(0)?.as_deref() {
                    Some("") => Ok(Some(Utc::now())),
                    _ => opt_time_col(r, 0, "links.next_due_at"),
                }
            },
        )?)
    }

    /// Gives back the leases whose holder `is_dead` says no longer runs (a
    /// daemon killed mid-sync), so their links are due again at once. The
    /// caller knows processes (`worker::lease_holder_is_dead`); the store
    /// does not. Returns how many were released.
    pub fn release_dead_leases(
        &mut self,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<usize, StoreError> {
        let holders: Vec<String> = {
            let mut stmt = self.conn.prepare(
                "SELECT DISTINCT lease_holder FROM links WHERE lease_holder IS NOT NULL",
            )?;
            stmt.query_map((), |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut released = 0;
        for h in holders {
            if is_dead(&h) {
                released += self.conn.cached_execute(
                    "UPDATE links SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ?1",
                    [&h],
                )?;
                self.free_slots_of(&h)?;
            }
        }
        Ok(released)
    }

    /// Gives back every lease held by `holder` (a shutdown that abandoned syncs).
    pub fn release_leases_of(&mut self, holder: &str) -> Result<usize, StoreError> {
        self.free_slots_of(holder)?;
        Ok(self.conn.cached_execute(
            "UPDATE links SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ?1",
            [holder],
        )?)
    }

    fn free_slots_of(&mut self, holder: &str) -> Result<(), StoreError> {
        self.conn.cached_execute(
            "UPDATE provider_slots SET holder = NULL, link_id = NULL, until = NULL WHERE holder = ?1",
            [holder],
        )?;
        Ok(())
    }

    /// Claims up to `limit` due links for `holder` at once, soonest due
    /// first: each gets `holder`'s lease until `ttl` from now, so no other
    /// worker reads or claims it while it waits in this worker's queue
    /// (its sync's own claim, `claim_due_link`, then finds it still due and
    /// held by this holder). On PostgreSQL the candidates are locked with
    /// `FOR UPDATE SKIP LOCKED`: workers claiming at the same moment take
    /// different links without waiting for each other. An expired lease
    /// taken over here is remembered (`lease_taken_from`) for the sync to
    /// count. `skip_providers`: providers not to read (paused ones).
    pub fn claim_due_batch(
        &mut self,
        holder: &str,
        ttl: chrono::Duration,
        limit: usize,
        skip_providers: &[ProviderId],
    ) -> Result<Vec<DueLink>, StoreError> {
        let at = chrono::Utc::now();
        let now = super::rfc3339(at);
        let until = super::rfc3339(at + ttl);
        let skip = serde_json::to_string(skip_providers).unwrap_or_else(|_| "[]".into());
        let tx = self.tx()?;
        let picked: Vec<(LinkId, ProviderId, Option<String>)> = {
            let mut stmt = tx.prepare_cached(tx.dialect(
                "SELECT id, provider, lease_holder FROM links
                 WHERE state = 'active' AND (next_due_at IS NULL OR next_due_at <= ?1)
                   AND (lease_until IS NULL OR lease_until <= ?1)
                   AND provider NOT IN (SELECT value FROM json_each(?3))
                 ORDER BY next_due_at IS NOT NULL, next_due_at, id LIMIT ?2",
                "SELECT id, provider, lease_holder FROM links
                 WHERE state = 'active' AND (next_due_at IS NULL OR next_due_at <= ?1)
                   AND (lease_until IS NULL OR lease_until <= ?1)
                   AND provider NOT IN (SELECT jsonb_array_elements_text(?3::jsonb))
                 ORDER BY next_due_at IS NOT NULL, next_due_at, id LIMIT ?2
                 FOR UPDATE SKIP LOCKED",
            ))?;
            stmt.query_map(params![now, limit as i64, skip], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?
        };
        {
            let mut lease = tx.prepare_cached(
                "UPDATE links SET lease_holder = ?2, lease_until = ?3, lease_renewed_at = ?4,
                 lease_taken_from = ?5 WHERE id = ?1",
            )?;
            for (id, _, previous) in &picked {
                let taken_from = previous.as_deref().filter(|p| *p != holder);
                lease.execute(params![id, holder, until, now, taken_from])?;
            }
        }
        tx.commit()?;
        Ok(picked
            .into_iter()
            .map(|(id, provider, _)| DueLink { id, provider })
            .collect())
    }

    /// Takes one of `provider`'s `slots` (its `max_in_flight`, counted
    /// across every worker on this database) for the sync of `link_id` by
    /// `holder`, until `ttl` from now (the sync's heartbeat renews it with
    /// the lease). False: every slot is taken by a live sync.
    pub fn take_provider_slot(
        &mut self,
        provider: &ProviderId,
        slots: usize,
        holder: &str,
        link_id: LinkId,
        ttl: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let at = chrono::Utc::now();
        let tx = self.tx()?;
        // The slot rows are made once. An insert that meets an existing
        // row waits for whichever worker's transaction is updating it, so
        // they are only inserted when some are missing.
        let made: i64 = tx.cached_row(
            "SELECT count(*) FROM provider_slots WHERE provider = ?1 AND slot <= ?2",
            params![provider, slots as i64],
            |r| r.get(0),
        )?;
        if made < slots as i64 {
            let mut make = tx.prepare_cached(
                "INSERT INTO provider_slots (provider, slot) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?;
            for slot in 1..=slots as i64 {
                make.execute(params![provider, slot])?;
            }
        }
        let free: Option<i64> = tx
            .cached_row(
                tx.dialect(
                    "SELECT slot FROM provider_slots
                     WHERE provider = ?1 AND slot <= ?2 AND (holder IS NULL OR until <= ?3)
                     ORDER BY slot LIMIT 1",
                    "SELECT slot FROM provider_slots
                     WHERE provider = ?1 AND slot <= ?2 AND (holder IS NULL OR until <= ?3)
                     ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED",
                ),
                params![provider, slots as i64, super::rfc3339(at)],
                |r| r.get(0),
            )
            .optional()?;
        let Some(slot) = free else {
            return Ok(false);
        };
        tx.cached_execute(
            "UPDATE provider_slots SET holder = ?3, link_id = ?4, until = ?5 WHERE provider = ?1 AND slot = ?2",
            params![provider, slot, holder, link_id, super::rfc3339(at + ttl)],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Gives back the provider slot `holder` took for the sync of `link_id`.
    pub fn give_back_provider_slot(
        &mut self,
        provider: &ProviderId,
        holder: &str,
        link_id: LinkId,
    ) -> Result<(), StoreError> {
        self.conn.cached_execute(
            "UPDATE provider_slots SET holder = NULL, link_id = NULL, until = NULL
             WHERE provider = ?1 AND holder = ?2 AND link_id = ?3",
            params![provider, holder, link_id],
        )?;
        Ok(())
    }

    /// Records a sync's outcome in `provider`'s shared circuit breaker:
    /// failures in a row, across every worker; the `threshold`-th pauses
    /// the provider for `pause` (then one more failure pauses it again, a
    /// success closes it). Returns true when this outcome paused it.
    ///
    /// The breaker's row is one per provider, shared by every worker's
    /// every sync: a success on a closed breaker (the common case) only
    /// reads it, so workers do not queue behind each other's commits for
    /// its row lock; a failure is one upsert.
    pub fn record_provider_outcome(
        &mut self,
        provider: &ProviderId,
        failed: bool,
        threshold: u32,
        pause: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let at = chrono::Utc::now();
        if !failed {
            let open: bool = self.conn.cached_row(
                "SELECT EXISTS(SELECT 1 FROM provider_breakers
                 WHERE provider = ?1 AND (failures <> 0 OR paused_until IS NOT NULL))",
                [provider],
                |r| r.get(0),
            )?;
            if open {
                self.conn.cached_execute(
                    "UPDATE provider_breakers SET failures = 0, paused_until = NULL
                     WHERE provider = ?1 AND (failures <> 0 OR paused_until IS NOT NULL)",
                    [provider],
                )?;
            }
            return Ok(false);
        }
        let tx = self.tx()?;
        let failures: i64 = tx.cached_row(
            "INSERT INTO provider_breakers (provider, failures) VALUES (?1, 1)
             ON CONFLICT (provider) DO UPDATE SET failures = provider_breakers.failures + 1
             RETURNING failures",
            [provider],
            |r| r.get(0),
        )?;
        let tripped = threshold > 0 && failures >= i64::from(threshold);
        if tripped {
            // Half open after the pause: the next failure pauses it again.
            tx.cached_execute(
                "UPDATE provider_breakers SET failures = ?2, paused_until = ?3 WHERE provider = ?1",
                params![
                    provider,
                    i64::from(threshold) - 1,
                    super::rfc3339(at + pause)
                ],
            )?;
        }
        tx.commit()?;
        Ok(tripped)
    }

    /// Providers a shared circuit breaker pauses now.
    pub fn paused_providers(&self) -> Result<Vec<ProviderId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT provider FROM provider_breakers WHERE paused_until > ?1 ORDER BY provider",
        )?;
        let rows = stmt.query_map([super::now()], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::links::testing::{add, oauth2, store_with_patient};
    use crate::store::{LinkSecrets, StoreError};
    use crate::vault::VaultKey;
    use secrecy::{ExposeSecret, SecretString};

    #[test]
    fn a_scheduled_claim_refuses_a_link_synced_since_the_pass_read_it() {
        let (_dir, mut store, patient) = store_with_patient();
        let (key, _) = VaultKey::generate();
        let (id, _) = add(&mut store, &patient, &key, oauth2("a1", Some("r1")));
        // Never synced: due.
        store
            .claim_due_link(id, "one", chrono::Duration::minutes(5))
            .expect("due");
        // Another worker synced it meanwhile: next due in an hour, lease gone.
        store
            .conn
            .execute(
                "UPDATE links SET next_due_at = ?2, lease_holder = NULL, lease_until = NULL
                 WHERE id = ?1",
                params![
                    id,
                    super::super::rfc3339(chrono::Utc::now() + chrono::Duration::hours(1))
                ],
            )
            .expect("reschedule");
        let refused = store.claim_due_link(id, "two", chrono::Duration::minutes(5));
        assert!(
            matches!(refused, Err(ClaimError::NoLongerDue { id: i, .. }) if i == id),
            "{:?}",
            refused.err()
        );
        // Asked for now (import --patient), it is claimed all the same.
        store
            .claim_link(id, "two", chrono::Duration::minutes(5))
            .expect("an on-demand claim ignores the schedule");
    }

    #[test]
    fn the_shared_breaker_counts_failures_in_a_row_and_a_success_on_a_closed_one_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = crate::store::test_store(dir.path());
        let pause = chrono::Duration::minutes(5);
        let p = ProviderId::parse("p").expect("provider id");
        let row = |store: &Store| -> Option<(i64, Option<String>)> {
            store
                .conn
                .query_row(
                    "SELECT failures, paused_until FROM provider_breakers WHERE provider = 'p'",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .expect("reads the breaker")
        };
        // Successes on a breaker never opened make no row at all.
        assert!(
            !store
                .record_provider_outcome(&p, false, 3, pause)
                .expect("records")
        );
        assert_eq!(row(&store), None);
        assert!(
            !store
                .record_provider_outcome(&p, true, 3, pause)
                .expect("records")
        );
        assert!(
            !store
                .record_provider_outcome(&p, true, 3, pause)
                .expect("records")
        );
        assert_eq!(row(&store), Some((2, None)));
        // The third failure in a row pauses it; one more failure pauses it again.
        assert!(
            store
                .record_provider_outcome(&p, true, 3, pause)
                .expect("records")
        );
        assert_eq!(store.paused_providers().expect("paused"), ["p"]);
        assert!(
            store
                .record_provider_outcome(&p, true, 3, pause)
                .expect("records")
        );
        // A success closes it.
        assert!(
            !store
                .record_provider_outcome(&p, false, 3, pause)
                .expect("records")
        );
        assert_eq!(row(&store), Some((0, None)));
        assert!(store.paused_providers().expect("paused").is_empty());

        // Another worker holds the breaker's row in an open transaction: a
        // success on the closed breaker does not wait for it (before, every
        // sync of every worker queued for this one row's lock).
        let mut other = Store::connect(store.database()).expect("a second connection");
        let tx = other.tx().expect("begins");
        tx.execute(
            "UPDATE provider_breakers SET failures = 0 WHERE provider = 'p'",
            params![],
        )
        .expect("locks the row");
        let (done, finished) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let r = store.record_provider_outcome(&p, false, 3, pause);
            let _ = done.send(r.map_err(|e| e.to_string()));
            store
        });
        let recorded = finished.recv_timeout(std::time::Duration::from_secs(60));
        drop(tx);
        let _ = worker.join();
        assert_eq!(
            recorded.expect("a success waited for another worker's lock on the breaker's row"),
            Ok(false)
        );
    }

    #[test]
    fn one_sync_per_link_and_an_expired_lease_is_taken_over() {
        let (_dir, mut store, patient) = store_with_patient();
        let (key, _) = VaultKey::generate();
        let (id, relinked) = add(&mut store, &patient, &key, oauth2("a1", Some("r1")));
        assert!(!relinked);
        let first = store
            .claim_link(id, "one", chrono::Duration::minutes(5))
            .expect("claims");
        match first.secrets(&key).expect("opens") {
            LinkSecrets::Oauth2 {
                access_token,
                refresh_token,
            } => {
                assert_eq!(access_token.expose_secret(), "a1");
                assert_eq!(refresh_token.expect("refresh").expose_secret(), "r1");
            }
            LinkSecrets::Oauth1 { .. } => panic!("oauth2 expected"),
        }
        let busy = store.claim_link(id, "two", chrono::Duration::minutes(5));
        assert!(
            matches!(busy, Err(ClaimError::Busy { .. })),
            "second claim refused"
        );
        // An expired lease (a crashed sync) is taken over.
        store
            .conn
            .execute(
                "UPDATE links SET lease_until = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
                [id],
            )
            .expect("expire");
        let mut second = store
            .claim_link(id, "two", chrono::Duration::minutes(5))
            .expect("takes over");
        // The first holder can no longer store tokens; the second can.
        let mut stale = first;
        let refused = store.store_refreshed_tokens(
            &mut stale,
            &key,
            &SecretString::from("a2".to_string()),
            None,
            None,
            None,
            &serde_json::json!({}),
        );
        assert!(matches!(refused, Err(StoreError::Conflict(_))));
        store
            .store_refreshed_tokens(
                &mut second,
                &key,
                &SecretString::from("a2".to_string()),
                None,
                None,
                None,
                &serde_json::json!({}),
            )
            .expect("holder stores");
        // No refresh token in the answer: the old one is kept.
        match second.secrets(&key).expect("opens") {
            LinkSecrets::Oauth2 {
                access_token,
                refresh_token,
            } => {
                assert_eq!(access_token.expose_secret(), "a2");
                assert_eq!(refresh_token.expect("kept").expose_secret(), "r1");
            }
            LinkSecrets::Oauth1 { .. } => panic!("oauth2 expected"),
        }
    }

    fn lease_of(store: &Store, id: LinkId) -> (Option<String>, Option<String>, Option<String>) {
        store
            .conn
            .query_row(
                "SELECT lease_holder, lease_until, lease_renewed_at FROM links WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("reads the lease")
    }

    fn expire(store: &Store, id: LinkId) {
        store
            .conn
            .execute(
                "UPDATE links SET lease_until = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
                [id],
            )
            .expect("expires");
    }

    #[test]
    fn a_live_lease_is_kept_by_its_heartbeat_and_an_expired_one_is_taken_over_once() {
        let (_dir, mut store, patient) = store_with_patient();
        let (key, _) = VaultKey::generate();
        let (id, _) = add(&mut store, &patient, &key, oauth2("a1", None));
        let ttl = chrono::Duration::minutes(5);
        let first = store.claim_due_link(id, "one", ttl).expect("claims");
        assert_eq!(first.took_over_from, None, "the link was free");
        let (holder, until, renewed) = lease_of(&store, id);
        assert_eq!(holder.as_deref(), Some("one"));
        assert!(until.is_some() && renewed.is_some());
        // A live lease: another worker neither sees the link as due nor claims it.
        let now = chrono::Utc::now();
        assert!(store.due_links(now, 10, &[]).expect("due").is_empty());
        assert!(matches!(
            store.claim_link(id, "two", ttl),
            Err(ClaimError::Busy { .. })
        ));
        assert!(
            !store.renew_lease(id, "two", ttl).expect("renews"),
            "only the holder renews"
        );
        // The heartbeat: a lease about to run out is extended by its holder.
        expire(&store, id);
        assert!(store.renew_lease(id, "one", ttl).expect("renews"));
        let (_, until, _) = lease_of(&store, id);
        assert!(until.expect("until") > crate::store::rfc3339_now());
        assert!(matches!(
            store.claim_link(id, "two", ttl),
            Err(ClaimError::Busy { .. })
        ));
        // The holder stops renewing: once its lease ran out the link is due
        // again, and the next claim takes it over and says from whom.
        expire(&store, id);
        let now = chrono::Utc::now();
        assert_eq!(
            store.due_links(now, 10, &[]).expect("due"),
            vec![DueLink {
                id,
                provider: ProviderId::parse("prov").expect("id")
            }]
        );
        let second = store.claim_due_link(id, "two", ttl).expect("takes over");
        assert_eq!(second.took_over_from.as_deref(), Some("one"));
        // The old holder can neither renew nor give back what it lost.
        assert!(!store.renew_lease(id, "one", ttl).expect("renews"));
        store.release_link(id, "one").expect("releases");
        assert_eq!(lease_of(&store, id).0.as_deref(), Some("two"));
        // Given back by its holder: free, and the next claim is no takeover.
        store.release_link(id, "two").expect("releases");
        assert_eq!(lease_of(&store, id).0, None);
        let third = store.claim_link(id, "three", ttl).expect("claims");
        assert_eq!(third.took_over_from, None);
        assert_eq!(store.release_leases_of("three").expect("releases"), 1);
        assert_eq!(lease_of(&store, id).0, None, "no lease left");
    }

    #[test]
    fn the_next_due_time_waits_for_a_live_lease_and_skips_what_the_caller_holds() {
        let (_dir, mut store, patient) = store_with_patient();
        let (key, _) = VaultKey::generate();
        let (id, _) = add(&mut store, &patient, &key, oauth2("a1", None));
        // Never synced: due now ('' on SQLite, the time of the read on
        // PostgreSQL, whose column holds only times).
        let due = store.next_due_at(&[], &[]).expect("reads").expect("a time");
        assert!(due <= chrono::Utc::now(), "{due}");
        let in_an_hour = crate::store::rfc3339_at(chrono::Utc::now() + chrono::Duration::hours(1));
        store
            .conn
            .execute(
                "UPDATE links SET next_due_at = ?2 WHERE id = ?1",
                params![id, in_an_hour],
            )
            .expect("reschedules");
        assert_eq!(
            store
                .next_due_at(&[], &[])
                .expect("reads")
                .map(crate::store::rfc3339_at),
            Some(in_an_hour.clone())
        );
        // Due now but held by another sync: free when its lease runs out.
        let lease_end =
            crate::store::rfc3339_at(chrono::Utc::now() + chrono::Duration::minutes(10));
        store
            .conn
            .execute(
                "UPDATE links SET next_due_at = NULL, lease_holder = 'other', lease_until = ?2
                 WHERE id = ?1",
                params![id, lease_end],
            )
            .expect("leases");
        assert_eq!(
            store
                .next_due_at(&[], &[])
                .expect("reads")
                .map(crate::store::rfc3339_at),
            Some(lease_end)
        );
        assert_eq!(store.next_due_at(&[], &[id]).expect("reads"), None);
        assert_eq!(
            store
                .next_due_at(&[ProviderId::parse("prov").expect("id")], &[])
                .expect("reads"),
            None
        );
    }
}
