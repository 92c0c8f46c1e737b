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
use super::{Cached, Store, StoreError};
use rusqlite::{OptionalExtension, params};

/// Why a link could not be claimed for a sync.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("link {0} does not exist")]
    NotFound(i64),
    #[error("link {id} is {state}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NotActive {
        id: i64,
        state: String,
        reason: Option<String>,
    },
    #[error(
        "link {id} was synced by another worker since this pass read it (next due at {next_due})"
    )]
    NoLongerDue { id: i64, next_due: String },
    #[error("link {id} is being synced by {holder} until {until}")]
    Busy {
        id: i64,
        holder: String,
        until: String,
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
    pub id: i64,
    pub provider: String,
}

impl Store {
    /// Takes the link's lease for a sync: the link must be active and not
    /// held by another sync (an expired lease is taken over).
    pub fn claim_link(
        &mut self,
        id: i64,
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
        id: i64,
        holder: &str,
        ttl: chrono::Duration,
    ) -> Result<ClaimedLink, ClaimError> {
        self.claim(id, holder, ttl, true)
    }

    fn claim(
        &mut self,
        id: i64,
        holder: &str,
        ttl: chrono::Duration,
        due_only: bool,
    ) -> Result<ClaimedLink, ClaimError> {
        let tx = self.tx()?;
        let at = chrono::Utc::now();
        let now_text = super::rfc3339(at);
        let row = tx
            .cached_row(
                &format!(
                    "SELECT {VIEW_COLUMNS}, {SEALED_COLUMNS}, lease_holder, lease_until FROM links WHERE id = ?1"
                ),
                [id],
                |r| {
                    Ok((
                        claimed(r, holder)?,
                        r.get::<_, Option<String>>(22)?,
                        r.get::<_, Option<String>>(23)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut link, lease, until)) = row else {
            return Err(ClaimError::NotFound(id));
        };
        if link.view.state != "active" {
            return Err(ClaimError::NotActive {
                id,
                state: link.view.state,
                reason: link.view.state_reason,
            });
        }
        if due_only
            && let Some(next_due) = link.view.next_due_at.as_ref()
            && *next_due > now_text
        {
            return Err(ClaimError::NoLongerDue {
                id,
                next_due: next_due.clone(),
            });
        }
        if let (Some(other), Some(until)) = (lease, until)
            && until > now_text
        {
            return Err(ClaimError::Busy {
                id,
                holder: other,
                until,
            });
        }
        tx.prepare_cached("UPDATE links SET lease_holder = ?2, lease_until = ?3 WHERE id = ?1")?
            .execute(params![id, holder, super::rfc3339(at + ttl)])?;
        link.moves = {
            let mut stmt =
                tx.prepare("SELECT from_url, to_url FROM link_moves WHERE link_id = ?1")?;
            stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok(link)
    }

    /// Gives a lease back without recording a sync (the sync never started).
    pub fn release_link(&mut self, id: i64, holder: &str) -> Result<(), StoreError> {
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
        now: &str,
        limit: usize,
        skip_providers: &[String],
    ) -> Result<Vec<DueLink>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, provider FROM links
             WHERE state = 'active' AND (next_due_at IS NULL OR next_due_at <= ?1)
               AND (lease_until IS NULL OR lease_until <= ?1)
               AND provider NOT IN (SELECT value FROM json_each(?3))
             ORDER BY next_due_at IS NOT NULL, next_due_at, id LIMIT ?2",
        )?;
        let skip = serde_json::to_string(skip_providers).unwrap_or_else(|_| "[]".into());
        let rows = stmt.query_map(params![now, limit as i64, skip], |r| {
            Ok(DueLink {
                id: r.get(0)?,
                provider: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The earliest `next_due_at` of the active links (None: none scheduled).
    pub fn next_due_at(&self) -> Result<Option<String>, StoreError> {
        Ok(self.conn.cached_row(
            "SELECT MIN(COALESCE(next_due_at, '')) FROM links WHERE state = 'active'",
            [],
            |r| r.get(0),
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
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut released = 0;
        for h in holders {
            if is_dead(&h) {
                released += self.conn.cached_execute(
                    "UPDATE links SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ?1",
                    [&h],
                )?;
            }
        }
        Ok(released)
    }

    /// Gives back every lease held by `holder` (a shutdown that abandoned syncs).
    pub fn release_leases_of(&mut self, holder: &str) -> Result<usize, StoreError> {
        Ok(self.conn.cached_execute(
            "UPDATE links SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ?1",
            [holder],
        )?)
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
}
