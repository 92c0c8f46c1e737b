//! The wrong-patient guard's records: a link's remote identity as read,
//! the verdict (audited), a held link with its `identity_mismatch`
//! exception, and a clinician's confirmation or rejection. Only this file
//! puts a link in or out of `held`.

use super::db::Conn;
use super::{ClaimedLink, Store, StoreError, now};
use crate::domain::{ExceptionKind, LinkId, LinkState};
use rusqlite::{OptionalExtension, params};

/// What a pull (or a new link's check) records of the remote identity.
#[derive(Debug, Clone)]
pub struct IdentityWrite {
    /// `identity::RemoteIdentity` as JSON.
    pub remote_identity: String,
    /// When it was read.
    pub read_at: chrono::DateTime<chrono::Utc>,
    /// The guard's verdict (what was compared), when it compared: audited
    /// as `identity.match` or `identity.held`. None: the identity is the
    /// one already recorded or accepted, so nothing was compared again.
    pub verdict: Option<serde_json::Value>,
    /// Some: hold the link, with this `identity_mismatch` detail (both
    /// identities, what differs and what to do).
    pub hold: Option<String>,
    /// A new link's check only: one `provider.access` audit detail per
    /// request made to read the identity (URLs without secrets), recorded
    /// by `Store::store_consent_link` with the link. A pull records its
    /// own accesses with its sync, so it leaves this empty.
    pub accesses: Vec<serde_json::Value>,
}

/// Records the identity on the link, audits the verdict and, for a hold,
/// marks the link `held` with an open `identity_mismatch` exception (one
/// per link: a new hold replaces the detail of an open one).
pub(super) fn write_identity(
    tx: &Conn,
    link_id: LinkId,
    patient: &str,
    sync_id: Option<i64>,
    w: &IdentityWrite,
) -> Result<(), StoreError> {
    let at = now();
    let (source, state): (String, LinkState) = tx
        .query_row(
            "SELECT provider, state FROM links WHERE id = ?1",
            [link_id],
            |r| Ok((r.get(0)?, super::links::link_state(r, 1)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: "link",
            id: link_id.to_string(),
        })?;
    if state == LinkState::Revoked {
        return Err(StoreError::Conflict(format!("link {link_id} is revoked")));
    }
    tx.execute(
        "UPDATE links SET remote_identity = ?2, identity_read_at = ?3, updated_at = ?4 WHERE id = ?1",
        params![link_id, w.remote_identity, super::rfc3339(w.read_at), at],
    )?;
    let subject = format!("link:{link_id}");
    if let Some(detail) = &w.hold {
        tx.execute(
            "UPDATE links SET state = 'held', state_reason = ?2 WHERE id = ?1",
            params![
                link_id,
                "the remote identity does not match the local patient: a clinician must confirm or reject the link"
            ],
        )?;
        let open: Option<i64> = tx
            .query_row(
                "SELECT id FROM exceptions WHERE state = 'open' AND kind = ?1 AND patient_id = ?2 AND source = ?3",
                params![ExceptionKind::IdentityMismatch.as_str(), patient, source],
                |r| r.get(0),
            )
            .optional()?;
        match open {
            Some(id) => {
                tx.execute(
                    "UPDATE exceptions SET detail = ?2, sync_id = COALESCE(?3, sync_id) WHERE id = ?1",
                    params![id, detail, sync_id],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO exceptions (patient_id, sync_id, source, kind, severity, state, detail, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7)",
                    params![
                        patient,
                        sync_id,
                        source,
                        ExceptionKind::IdentityMismatch.as_str(),
                        ExceptionKind::IdentityMismatch.severity().as_str(),
                        detail,
                        at
                    ],
                )?;
            }
        }
    }
    if let Some(verdict) = &w.verdict {
        super::audit::append(
            tx,
            "rxsync",
            if w.hold.is_some() {
                "identity.held"
            } else {
                "identity.match"
            },
            Some(patient),
            Some(&subject),
            &serde_json::json!({"provider": source, "remote_identity":
                serde_json::from_str::<serde_json::Value>(&w.remote_identity).unwrap_or_default(),
                "verdict": verdict}),
        )?;
    }
    Ok(())
}

/// What a link's guard needs from the store before a pull compares.
#[derive(Debug, Clone, Default)]
pub struct IdentityState {
    /// The identity recorded last (JSON), if any.
    pub recorded: Option<String>,
    /// The identity a clinician confirmed (JSON), if any.
    pub accepted: Option<String>,
}

impl Store {
    /// The recorded and the accepted remote identity of a link.
    pub fn link_identity_state(&self, link_id: LinkId) -> Result<IdentityState, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT remote_identity, identity_accepted FROM links WHERE id = ?1",
                [link_id],
                |r| {
                    Ok(IdentityState {
                        recorded: r.get(0)?,
                        accepted: r.get(1)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Records a new link's identity check (outside a pull: no lease, no sync).
    pub fn record_link_identity(
        &mut self,
        link_id: LinkId,
        w: &IdentityWrite,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let patient: String = tx
            .query_row(
                "SELECT patient_id FROM links WHERE id = ?1",
                [link_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "link",
                id: link_id.to_string(),
            })?;
        write_identity(&tx, link_id, &patient, None, w)?;
        tx.commit()?;
        Ok(())
    }

    /// A clinician confirms a held link: it becomes active and due now, its
    /// remote identity is remembered as accepted (the same identity read
    /// again does not hold it again; another one is compared afresh), and
    /// its open `identity_mismatch` exceptions are resolved.
    pub fn confirm_link(&mut self, id: LinkId, by: &str, note: &str) -> Result<(), StoreError> {
        self.decide_held(id, by, note, true)
    }

    /// A clinician rejects a held link: it is revoked (its tokens dropped)
    /// and its open `identity_mismatch` exceptions resolved.
    pub fn reject_link(&mut self, id: LinkId, by: &str, note: &str) -> Result<(), StoreError> {
        self.decide_held(id, by, note, false)
    }

    /// The held link an open `identity_mismatch` exception is about, with
    /// its sealed tokens: read before the queue's `reject` drops them, so
    /// the provider can be told once the store has revoked the link. None
    /// when the exception is of another kind or no link of its patient and
    /// source is held.
    pub fn held_link_of_exception(&self, id: i64) -> Result<Option<ClaimedLink>, StoreError> {
        let link: Option<LinkId> = self
            .conn
            .query_row(
                "SELECT l.id FROM exceptions e JOIN links l
                 ON l.patient_id = e.patient_id AND l.provider = e.source AND l.state = 'held'
                 WHERE e.id = ?1 AND e.kind = ?2 AND e.state = 'open'",
                params![id, ExceptionKind::IdentityMismatch.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        match link {
            Some(link) => self.peek_link(link),
            None => Ok(None),
        }
    }

    /// What the provider said when told that a link rejected after its
    /// commit (the queue's and the review app's `reject`) is over (RFC
    /// 7009, `Puller::tell_provider`): added to the link's reason, as `link
    /// reject` and `link revoke` add it, and audited as
    /// `link.reject.provider`.
    pub fn record_rejection_told(
        &mut self,
        id: LinkId,
        by: &str,
        told: &str,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT patient_id, provider FROM links WHERE id = ?1 AND state = 'revoked'",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((patient, provider)) = row else {
            return Err(StoreError::Refused(format!(
                "link {id} is not revoked: there is no rejection to record"
            )));
        };
        tx.execute(
            "UPDATE links SET state_reason = COALESCE(state_reason || ' (' || ?2 || ')', ?2), updated_at = ?3
             WHERE id = ?1",
            params![id, told, now()],
        )?;
        super::audit::append(
            &tx,
            by,
            "link.reject.provider",
            Some(&patient),
            Some(&format!("link:{id}")),
            &serde_json::json!({"provider": provider, "result": told}),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn decide_held(
        &mut self,
        id: LinkId,
        by: &str,
        note: &str,
        confirm: bool,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        decide_held_in(&tx, id, by, note, confirm)?;
        tx.commit()?;
        Ok(())
    }
}

/// `confirm_link` / `reject_link` inside a transaction (the queue's
/// `confirm` and `reject` actions use it too).
pub(super) fn decide_held_in(
    tx: &Conn,
    id: LinkId,
    by: &str,
    note: &str,
    confirm: bool,
) -> Result<(), StoreError> {
    let at = now();
    let row: Option<(String, String, LinkState, Option<String>)> = tx
        .query_row(
            "SELECT patient_id, provider, state, remote_identity FROM links WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    super::links::link_state(r, 2)?,
                    r.get(3)?,
                ))
            },
        )
        .optional()?;
    let Some((patient, provider, state, identity)) = row else {
        return Err(StoreError::NotFound {
            what: "link",
            id: id.to_string(),
        });
    };
    if state != LinkState::Held {
        return Err(StoreError::Refused(format!(
            "link {id} is {state}, not held: there is no identity to {}",
            if confirm { "confirm" } else { "reject" }
        )));
    }
    if confirm {
        tx.execute(
            "UPDATE links SET state = 'active', state_reason = NULL, identity_accepted = remote_identity,
             next_due_at = NULL, failures = 0, updated_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
    } else {
        tx.execute(
            "UPDATE links SET state = 'revoked', state_reason = ?2, token = NULL, token_secret = NULL,
             refresh_token = NULL, lease_holder = NULL, lease_until = NULL, updated_at = ?3 WHERE id = ?1",
            params![id, format!("identity rejected by {by}: {note}"), at],
        )?;
    }
    let resolution = if confirm { "confirm" } else { "reject" };
    let resolved = tx.execute(
        "UPDATE exceptions SET state = 'resolved', resolution = ?1, resolved_by = ?2, resolved_at = ?3, note = ?4
         WHERE state = 'open' AND kind = ?5 AND patient_id = ?6 AND source = ?7",
        params![
            resolution,
            by,
            at,
            note,
            ExceptionKind::IdentityMismatch.as_str(),
            patient,
            provider
        ],
    )?;
    super::audit::append(
        tx,
        by,
        if confirm {
            "link.confirm"
        } else {
            "link.reject"
        },
        Some(&patient),
        Some(&format!("link:{id}")),
        &serde_json::json!({"provider": provider, "note": note, "exceptions_resolved": resolved,
            "remote_identity": identity.and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())}),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PatientId;
    use crate::store::{LinkSecrets, NewLink, NewPatient};
    use crate::vault::VaultKey;
    use secrecy::SecretString;

    fn held_link() -> (tempfile::TempDir, Store, LinkId) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = crate::store::test_store(dir.path());
        let patient = PatientId::parse("P1").expect("id");
        store
            .add_patient(&NewPatient::with_id(patient.clone()), "test")
            .expect("patient");
        let (key, _) = VaultKey::generate();
        let (id, _) = store
            .add_link(
                &NewLink {
                    patient: &patient,
                    provider: &crate::domain::ProviderId::parse("prov").expect("id"),
                    remote_patient: "r1",
                    secrets: LinkSecrets::Oauth2 {
                        access_token: SecretString::from("at".to_string()),
                        refresh_token: None,
                    },
                    expires_at: None,
                    scope: None,
                    grant_expires_at: None,
                },
                &key,
                "test",
            )
            .expect("link");
        store
            .record_link_identity(
                id,
                &IdentityWrite {
                    remote_identity: r#"{"subject":"s","identifiers":{"userinfo:mrn":"X"}}"#.into(),
                    read_at: crate::store::parse_time("2026-01-01T00:00:00.000Z").expect("time"),
                    verdict: Some(serde_json::json!({"problems": ["differ"]})),
                    hold: Some("both identities".into()),
                    accesses: Vec::new(),
                },
            )
            .expect("holds");
        (dir, store, id)
    }

    fn open_mismatches(store: &Store) -> i64 {
        store
            .conn
            .query_row(
                "SELECT COUNT(*) FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'", (),
                |r| r.get(0),
            )
            .expect("counts")
    }

    #[test]
    fn a_hold_is_a_state_with_its_exception_and_confirm_accepts_the_identity() {
        let (_dir, mut store, id) = held_link();
        let view = store.link(id).expect("reads").expect("exists");
        assert_eq!(view.state, LinkState::Held);
        let identity = view.remote_identity.expect("recorded");
        assert_eq!(identity.identity.identifiers["userinfo:mrn"], "X");
        assert_eq!(open_mismatches(&store), 1);
        assert!(
            store
                .claim_link(id, "h", chrono::Duration::minutes(1))
                .is_err()
        );
        // Still a CHECK: a state nobody knows is refused.
        assert!(
            store
                .conn
                .execute("UPDATE links SET state = 'bogus'", ())
                .is_err()
        );
        store
            .confirm_link(id, "dr-a", "checked the ID")
            .expect("confirms");
        assert_eq!(
            store.link(id).expect("reads").expect("exists").state,
            LinkState::Active
        );
        assert_eq!(open_mismatches(&store), 0);
        let accepted = store.link_identity_state(id).expect("reads").accepted;
        assert_eq!(
            accepted,
            store.link_identity_state(id).expect("reads").recorded
        );
        assert!(matches!(
            store.confirm_link(id, "dr-a", "again"),
            Err(StoreError::Refused(_))
        ));
    }

    #[test]
    fn reject_revokes_and_drops_the_tokens() {
        let (_dir, mut store, id) = held_link();
        store.reject_link(id, "dr-a", "not her").expect("rejects");
        let view = store.link(id).expect("reads").expect("exists");
        assert_eq!(view.state, LinkState::Revoked);
        assert!(
            view.state_reason
                .as_deref()
                .is_some_and(|r| r.contains("not her"))
        );
        let token: Option<Vec<u8>> = store
            .conn
            .query_row("SELECT token FROM links WHERE id = ?1", [id], |r| r.get(0))
            .expect("reads");
        assert!(token.is_none());
        assert_eq!(open_mismatches(&store), 0);
    }
}
