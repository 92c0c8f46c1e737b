//! Pull outcomes: what a pull adds to its last transaction — the failed
//! sync (when no document was stored), the link's new state and schedule,
//! its lease given back, remembered moves and the provider accesses.

use super::context::SyncContext;
use super::db::Conn;
use super::{Store, StoreError, now, rfc3339};
use crate::domain::{ExceptionKind, LinkId, PatientId, SyncOutcome};
use crate::schedule::Schedule;
use rusqlite::{OptionalExtension, params};

/// What a pull adds to the import's (or the failure's) transaction: the
/// pull part of its `SyncContext`.
pub struct PullRecord {
    pub link_id: LinkId,
    /// The lease this sync holds (given back by the same transaction).
    pub holder: String,
    /// JSON array of the requests made, URLs without secrets.
    pub http_trail: String,
    /// One audit detail per provider access (JSON).
    pub accesses: Vec<serde_json::Value>,
    /// Permanent redirects to remember: (from, to, status).
    pub moves: Vec<(String, String, u16)>,
    /// When the link is due again follows from the outcome and this.
    pub schedule: Schedule,
    /// The remote identity read by this pull, and the guard's verdict.
    pub identity: Option<super::identity::IdentityWrite>,
}

/// A pull that stored no document.
pub struct FailedPull<'a> {
    /// The sync; its `pull` record is required.
    pub sync: &'a SyncContext,
    pub error: &'a str,
    /// `Failed` (try again on schedule), `RetryLater` (the provider asked us
    /// to wait until its time), `NeedsRelink` (the consent is gone: raise
    /// `link_broken`) or `Held` (the remote identity does not match).
    pub outcome: SyncOutcome,
}

impl Store {
    /// Records a pull that stored no document: the failed sync, the link's
    /// new state, a `link_broken` exception when the consent is gone, and
    /// the provider accesses — in one transaction.
    pub fn write_failed_pull(&mut self, w: &FailedPull<'_>) -> Result<i64, StoreError> {
        let sync = w.sync;
        let record = sync.pull.as_ref().ok_or_else(|| {
            StoreError::Refused(format!(
                "a failed pull of patient {} from {} has no pull record",
                sync.patient, sync.source
            ))
        })?;
        let tx = self.tx()?;
        let ended = now();
        let inserted: i64 = tx.cached_row(
            "INSERT INTO syncs (patient_id, source, trigger, started_at, ended_at, outcome, error, http_trail, link_id)
             VALUES (?1, ?2, ?3, ?4, ?5, 'failed', ?6, ?7, ?8) RETURNING id",
            params![
                sync.patient.as_str(),
                sync.source.as_str(),
                sync.trigger.as_str(),
                rfc3339(sync.started_at),
                ended,
                w.error,
                record.http_trail,
                record.link_id
            ],
            |r| r.get(0),
        )?;
        let sync_id = inserted;
        if w.outcome == SyncOutcome::NeedsRelink {
            let open: bool = tx.cached_row(
                "SELECT EXISTS(SELECT 1 FROM exceptions WHERE state = 'open' AND kind = ?1 AND patient_id = ?2
                 AND source = ?3)",
                params![ExceptionKind::LinkBroken.as_str(), sync.patient.as_str(), sync.source.as_str()],
                |r| r.get(0),
            )?;
            if !open {
                tx.cached_execute(
                    "INSERT INTO exceptions (patient_id, sync_id, source, kind, severity, state, detail, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7)",
                    params![
                        sync.patient.as_str(),
                        sync_id,
                        sync.source.as_str(),
                        ExceptionKind::LinkBroken.as_str(),
                        ExceptionKind::LinkBroken.severity().as_str(),
                        format!(
                            "link {} to {} is broken: {}. The patient must consent again; then hand the new tokens to: rxsync link add --patient {} --provider {}",
                            record.link_id, sync.source, w.error, sync.patient, sync.source
                        ),
                        ended
                    ],
                )?;
            }
            tx.cached_execute(
                "UPDATE links SET state = 'needs_relink', state_reason = ?2, updated_at = ?3 WHERE id = ?1",
                params![record.link_id, w.error, ended],
            )?;
        }
        finish_pull(
            &tx,
            &sync.patient,
            record,
            &w.outcome,
            Some(w.error),
            sync_id,
        )?;
        super::audit::append(
            &tx,
            &sync.actor,
            "pull.failed",
            Some(sync.patient.as_str()),
            Some(&format!("link:{}", record.link_id)),
            &serde_json::json!({"sync_id": sync_id, "outcome": w.outcome.as_str(), "error": w.error}),
        )?;
        tx.commit()?;
        Ok(sync_id)
    }
}

/// The link's part of a pull's last transaction: its sync outcome, the
/// lease given back, remembered moves and one audit row per provider access.
pub(super) fn finish_pull(
    tx: &Conn,
    patient: &PatientId,
    r: &PullRecord,
    outcome: &SyncOutcome,
    error: Option<&str>,
    sync_id: i64,
) -> Result<(), StoreError> {
    let at = now();
    let failed = !outcome.is_success();
    let failures: u32 = tx
        .cached_row(
            "SELECT failures FROM links WHERE id = ?1",
            [r.link_id],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .map_or(0, |f| u32::try_from(f).unwrap_or(u32::MAX));
    let next_due = r
        .schedule
        .next_due(outcome, failures, chrono::Utc::now(), rand::random::<f64>())
        .map(super::rfc3339);
    let released = tx
        .prepare_cached(
            "UPDATE links SET last_sync_at = ?3, last_outcome = ?4, last_error = ?5,
             failures = CASE WHEN ?6 THEN failures + 1 ELSE 0 END,
             next_due_at = ?7, lease_holder = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_holder = ?2",
        )?
        .execute(params![
            r.link_id,
            r.holder,
            at,
            outcome.as_str(),
            error,
            failed,
            next_due
        ])?;
    if released != 1 {
        return Err(StoreError::Conflict(format!(
            "link {} is no longer held by this sync (its lease expired); nothing was stored",
            r.link_id
        )));
    }
    tx.prepare_cached("UPDATE syncs SET link_id = ?2, http_trail = ?3 WHERE id = ?1")?
        .execute(params![sync_id, r.link_id, r.http_trail])?;
    // Only a sync that worked teaches a new address (a 301 to a page that
    // then failed is not to be trusted).
    let moves: &[(String, String, u16)] = if failed { &[] } else { &r.moves };
    for (from, to, status) in moves {
        tx.cached_execute(
            "INSERT INTO link_moves (link_id, from_url, to_url, status, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (link_id, from_url) DO UPDATE SET to_url = excluded.to_url, status = excluded.status,
             at = excluded.at",
            params![r.link_id, from, to, status, at],
        )?;
        super::audit::append(
            tx,
            "rxsync",
            "link.moved",
            Some(patient.as_str()),
            Some(&format!("link:{}", r.link_id)),
            &serde_json::json!({"from": from, "to": to, "status": status}),
        )?;
    }
    if let Some(w) = &r.identity {
        super::identity::write_identity(tx, r.link_id, patient.as_str(), Some(sync_id), w)?;
    }
    for access in &r.accesses {
        super::audit::append(
            tx,
            "rxsync",
            "provider.access",
            Some(patient.as_str()),
            Some(&format!("link:{}", r.link_id)),
            access,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LinkState, SourceName, Trigger};
    use crate::store::links::testing::{add, oauth2, store_with_patient};
    use crate::store::{ClaimError, LinkSecrets, NewLink};
    use crate::vault::VaultKey;
    use secrecy::SecretString;

    #[test]
    fn a_broken_link_raises_one_exception_and_relinking_resolves_it() {
        let (_dir, mut store, patient) = store_with_patient();
        let (key, _) = VaultKey::generate();
        let (id, _) = add(&mut store, &patient, &key, oauth2("a1", Some("r1")));
        for _ in 0..2 {
            // The second round finds the link needs_relink and cannot claim it.
            let Ok(link) = store.claim_link(id, "h", chrono::Duration::minutes(5)) else {
                continue;
            };
            let sync = SyncContext {
                patient: patient.clone(),
                source: SourceName::parse("prov").expect("source"),
                trigger: Trigger::Pull,
                actor: "test".to_string(),
                started_at: crate::store::parse_time("2026-01-01T00:00:00.000Z").expect("time"),
                origin: None,
                pull: Some(PullRecord {
                    link_id: id,
                    holder: link.holder.clone(),
                    http_trail: "[]".to_string(),
                    accesses: vec![serde_json::json!({"url": "http://x/"})],
                    moves: Vec::new(),
                    identity: None,
                    schedule: Schedule {
                        interval: std::time::Duration::from_secs(60),
                        jitter: 0.0,
                        backoff_base: std::time::Duration::from_secs(1),
                        backoff_max: std::time::Duration::from_secs(2),
                    },
                }),
            };
            store
                .write_failed_pull(&FailedPull {
                    sync: &sync,
                    error: "invalid_grant",
                    outcome: SyncOutcome::NeedsRelink,
                })
                .expect("records");
        }
        let view = store.link(id).expect("reads").expect("exists");
        assert_eq!(view.state, LinkState::NeedsRelink);
        assert!(matches!(
            store.claim_link(id, "h", chrono::Duration::minutes(5)),
            Err(ClaimError::NotActive { .. })
        ));
        let open = |store: &Store| -> i64 {
            store
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM exceptions WHERE kind = 'link_broken' AND state = 'open'",
                    (),
                    |r| r.get(0),
                )
                .expect("count")
        };
        assert_eq!(open(&store), 1);
        let (again, relinked) = add(&mut store, &patient, &key, oauth2("a3", Some("r3")));
        assert_eq!((again, relinked), (id, true));
        assert_eq!(open(&store), 0);
        assert_eq!(
            store.link(id).expect("reads").expect("exists").state,
            LinkState::Active
        );
        // The scheme cannot change under a live link.
        let err = store.add_link(
            &NewLink {
                patient: &patient,
                provider: &crate::domain::ProviderId::parse("prov").expect("id"),
                remote_patient: "r1",
                secrets: LinkSecrets::Oauth1 {
                    token: SecretString::from("t".to_string()),
                    token_secret: SecretString::from("s".to_string()),
                },
                expires_at: None,
                scope: None,
                grant_expires_at: None,
            },
            &key,
            "test",
        );
        assert!(matches!(err, Err(StoreError::Conflict(_))));
        let revoked = store.revoke_link(id, "test", "done").expect("revokes");
        assert_eq!(revoked.state, LinkState::Revoked);
        let sealed: Option<Vec<u8>> = store
            .conn
            .query_row("SELECT token FROM links WHERE id = ?1", [id], |r| r.get(0))
            .expect("reads");
        assert!(sealed.is_none(), "revoking drops the sealed tokens");
        // After a revocation the patient may link again: a new link.
        let (fresh, relinked) = add(&mut store, &patient, &key, oauth2("a4", None));
        assert!(fresh != id && !relinked);
    }

    #[test]
    fn a_failed_pull_without_its_pull_record_is_refused_and_stores_nothing() {
        let (_dir, mut store, patient) = store_with_patient();
        let sync = SyncContext {
            patient,
            source: SourceName::parse("prov").expect("source"),
            trigger: Trigger::Pull,
            actor: "test".to_string(),
            started_at: chrono::Utc::now(),
            origin: None,
            pull: None,
        };
        let err = store
            .write_failed_pull(&FailedPull {
                sync: &sync,
                error: "boom",
                outcome: SyncOutcome::Failed,
            })
            .expect_err("refused");
        assert!(err.to_string().contains("no pull record"), "{err}");
        let syncs: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM syncs", (), |r| r.get(0))
            .expect("count");
        assert_eq!(syncs, 0);
    }
}
