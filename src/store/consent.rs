//! Consent flows (migration `0014_consent`): the authorization requests
//! rxsync started and is waiting to hear back about.
//!
//! The store never sees a `state`, a PKCE verifier or a nonce in the clear:
//! the state arrives as its SHA-256 (the callback is looked up by it) and
//! the other two arrive sealed by `vault::VaultKey::seal_flow`. For an
//! OAuth 1.0a flow the "state" is the request token and the
//! `pkce_verifier` column holds the request token secret, sealed likewise. A flow is
//! taken once: the first callback naming it marks it used, in the same
//! transaction that reads it, so a replayed callback finds it used — and
//! drops its sealed verifier (or request token secret) and nonce, which the
//! taker alone needed.

use super::db::Conn;
use super::{Store, StoreError, now};
use crate::domain::{LinkId, PatientId, ProviderId};
use rusqlite::{OptionalExtension, params};

/// A flow to record when its authorization URL is handed out.
pub struct NewFlow<'a> {
    /// Random, not a secret (`consent::flow_id`); the vault binds the sealed fields to it.
    pub id: &'a str,
    pub provider: &'a ProviderId,
    pub patient: &'a PatientId,
    /// Hex SHA-256 of the `state` sent.
    pub state_sha256: &'a str,
    /// The vault key id that sealed `pkce_verifier` and `nonce`.
    pub key_id: &'a str,
    /// The flow's sealed secret: the PKCE verifier (OAuth 2.0), or the
    /// request token secret (OAuth 1.0a).
    pub pkce_verifier: Vec<u8>,
    pub nonce: Option<Vec<u8>>,
    pub redirect_uri: &'a str,
    /// RFC 3339.
    pub expires_at: &'a str,
    /// The audit detail of `consent.start` (never a secret); the store adds
    /// `relink_of`.
    pub detail: serde_json::Value,
}

/// A flow taken by its callback, with its sealed fields.
#[derive(Debug, Clone)]
pub struct TakenFlow {
    pub id: String,
    pub provider: ProviderId,
    pub patient: String,
    pub key_id: String,
    pub pkce_verifier: Vec<u8>,
    pub nonce: Option<Vec<u8>>,
    pub redirect_uri: String,
    pub relink_of: Option<LinkId>,
}

/// What a callback's state found.
#[derive(Debug, Clone)]
pub enum FlowLookup {
    /// A live flow, now marked used.
    Taken(TakenFlow),
    /// No flow was started with this state.
    Unknown,
    /// The flow was used before (a replayed callback).
    Used { flow: String },
    /// The flow expired before its callback came (now marked used).
    Expired { flow: String },
}

impl Store {
    /// Records a new flow — with the `needs_relink` link of the same
    /// patient and provider it would renew, read in the same transaction —
    /// and the `consent.start` audit row.
    pub fn start_consent_flow(&mut self, f: &NewFlow<'_>, actor: &str) -> Result<(), StoreError> {
        let tx = self.tx()?;
        insert_flow(&tx, f, actor)?;
        tx.commit()?;
        Ok(())
    }

    /// Takes the flow a callback's state names, once: marks it used and
    /// audits `consent.callback` (with what was found) in one transaction.
    /// `provider` is the provider the callback arrived for (a flow of
    /// another provider is `Unknown` to it).
    pub fn take_consent_flow(
        &mut self,
        state_sha256: &str,
        provider: &ProviderId,
        actor: &str,
        detail: &serde_json::Value,
    ) -> Result<FlowLookup, StoreError> {
        let tx = self.tx()?;
        let at = now();
        let row = tx
            .query_row(
                "SELECT id, provider, patient_id, key_id, pkce_verifier, nonce, redirect_uri, relink_of,
                 expires_at, used_at FROM consent_flows WHERE state_sha256 = ?1 AND provider = ?2",
                params![state_sha256, provider],
                |r| {
                    Ok((
                        TakenFlow {
                            id: r.get(0)?,
                            provider: r.get(1)?,
                            patient: r.get(2)?,
                            key_id: r.get(3)?,
                            pkce_verifier: r.get(4)?,
                            nonce: r.get(5)?,
                            redirect_uri: r.get(6)?,
                            relink_of: r.get(7)?,
                        },
                        r.get::<_, String>(8)?,
                        r.get::<_, Option<String>>(9)?,
                    ))
                },
            )
            .optional()?;
        let (found, patient, subject, lookup) = match row {
            None => ("unknown", None, None, FlowLookup::Unknown),
            Some((flow, _, Some(_))) => (
                "replayed",
                Some(flow.patient.clone()),
                Some(flow.id.clone()),
                FlowLookup::Used { flow: flow.id },
            ),
            Some((flow, expires_at, None)) => {
                let expired = expires_at <= at;
                tx.execute(
                    "UPDATE consent_flows SET used_at = ?2, outcome = CASE WHEN ?3 THEN 'expired' ELSE NULL END,
                     pkce_verifier = ?4, nonce = NULL
                     WHERE id = ?1",
                    params![flow.id, at, expired, Vec::<u8>::new()],
                )?;
                let patient = Some(flow.patient.clone());
                let subject = Some(flow.id.clone());
                if expired {
                    (
                        "expired",
                        patient,
                        subject,
                        FlowLookup::Expired { flow: flow.id },
                    )
                } else {
                    ("live", patient, subject, FlowLookup::Taken(flow))
                }
            }
        };
        let mut detail = detail.clone();
        detail["flow"] = serde_json::json!(found);
        super::audit::append(
            &tx,
            actor,
            "consent.callback",
            patient.as_deref(),
            subject.map(|s| format!("consent:{s}")).as_deref(),
            &detail,
        )?;
        tx.commit()?;
        Ok(lookup)
    }

    /// Audits a consent step taken before any flow exists (an OAuth 1.0a
    /// request token that was refused) under its patient and provider.
    pub fn audit_consent_attempt(
        &mut self,
        patient: &PatientId,
        provider: &ProviderId,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        super::audit::append(
            &tx,
            actor,
            action,
            Some(patient.as_str()),
            Some(&format!("provider:{provider}")),
            detail,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Audits one step of a flow (`consent.exchanged`) under its patient.
    pub fn audit_consent_step(
        &mut self,
        flow: &str,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let patient: String = tx
            .query_row(
                "SELECT patient_id FROM consent_flows WHERE id = ?1",
                [flow],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "consent flow",
                id: flow.to_string(),
            })?;
        super::audit::append(
            &tx,
            actor,
            action,
            Some(&patient),
            Some(&format!("consent:{flow}")),
            detail,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The link a consent made, in its final state, in one transaction:
    /// the exchange audited (`consent.exchanged`), the link stored as `link
    /// add` stores it (a `needs_relink` link of the patient and provider
    /// keeps its id), the wrong-patient guard's verdict on it (`identity`,
    /// judged before this call: the identity recorded and `identity.match`
    /// audited, or the link held with its `identity_mismatch` exception),
    /// and the flow ended `linked` with `detail` and the link. A crash or an
    /// error at any point stores none of it. Returns the link id and
    /// whether it was a re-link. Both flows (OAuth 2.0 and 1.0a) end here.
    #[allow(clippy::too_many_arguments)]
    pub fn store_consent_link(
        &mut self,
        flow: &str,
        actor: &str,
        exchanged: &serde_json::Value,
        link: &super::NewLink<'_>,
        key: &crate::vault::VaultKey,
        identity: Option<&super::IdentityWrite>,
        mut detail: serde_json::Value,
    ) -> Result<(LinkId, bool), StoreError> {
        self.in_one_transaction(|store| {
            store.audit_consent_step(flow, actor, "consent.exchanged", exchanged)?;
            let (id, relinked) = store.add_link(link, key, actor)?;
            if let Some(w) = identity {
                super::identity::write_identity(&store.conn, id, link.patient.as_str(), None, w)?;
                store.audit_link_accesses(id, link.patient, &w.accesses)?;
            }
            detail["link"] = serde_json::json!(id);
            detail["relinked"] = serde_json::json!(relinked);
            detail["identity"] = serde_json::json!(match identity {
                None => "unchecked",
                Some(w) if w.hold.is_some() => "held",
                Some(_) => "matched",
            });
            store.end_consent_flow(flow, "linked", Some(id), actor, "consent.linked", &detail)?;
            Ok((id, relinked))
        })
    }

    /// One `provider.access` audit row per request a new link's identity
    /// check made (`IdentityWrite::accesses`, URLs already redacted), as a
    /// pull audits its own.
    fn audit_link_accesses(
        &mut self,
        link: LinkId,
        patient: &crate::domain::PatientId,
        accesses: &[serde_json::Value],
    ) -> Result<(), StoreError> {
        if accesses.is_empty() {
            return Ok(());
        }
        let tx = self.tx()?;
        for access in accesses {
            super::audit::append(
                &tx,
                "rxsync",
                "provider.access",
                Some(patient.as_str()),
                Some(&format!("link:{link}")),
                access,
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs `work` (which may call other store writes, each its own
    /// savepoint) all or nothing: in a transaction of its own, or in a
    /// savepoint of the one already open (a `Writer` job's).
    fn in_one_transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let top = self.conn.is_autocommit();
        if top {
            self.conn.begin()?;
        } else {
            self.conn.execute_batch("SAVEPOINT rxsync_consent")?;
        }
        let done = work(self);
        let end = match &done {
            Ok(_) if top => self.conn.commit(),
            Ok(_) => self.conn.execute_batch("RELEASE rxsync_consent"),
            Err(_) if top => self.conn.rollback(),
            Err(_) => self
                .conn
                .execute_batch("ROLLBACK TO rxsync_consent; RELEASE rxsync_consent"),
        };
        if let Err(e) = end {
            // A failed COMMIT may leave the transaction open.
            if top && !self.conn.is_autocommit() {
                let _ = self.conn.rollback();
            }
            return Err(e.into());
        }
        done
    }

    /// Records how a taken (or abandoned) flow ended — `denied`, `failed`,
    /// `abandoned`, or `linked` with its link — and audits it under `action`.
    /// A flow not yet used is marked used too (an abandoned one cannot be
    /// taken later).
    pub fn end_consent_flow(
        &mut self,
        flow: &str,
        outcome: &str,
        link: Option<LinkId>,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let patient: Option<String> = tx
            .query_row(
                "SELECT patient_id FROM consent_flows WHERE id = ?1",
                [flow],
                |r| r.get(0),
            )
            .optional()?;
        let Some(patient) = patient else {
            return Err(StoreError::NotFound {
                what: "consent flow",
                id: flow.to_string(),
            });
        };
        tx.execute(
            "UPDATE consent_flows SET used_at = COALESCE(used_at, ?2), outcome = ?3, link_id = ?4 WHERE id = ?1",
            params![flow, now(), outcome, link],
        )?;
        super::audit::append(
            &tx,
            actor,
            action,
            Some(&patient),
            Some(&format!("consent:{flow}")),
            detail,
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// Inserts a flow and audits `consent.start`, inside the caller's
/// transaction (`start_consent_flow`, and an invitation's acceptance,
/// which spends the invitation in the same one).
pub(super) fn insert_flow(tx: &Conn, f: &NewFlow<'_>, actor: &str) -> Result<(), StoreError> {
    super::patients::require_patient(tx, f.patient)?;
    let relink_of: Option<LinkId> = tx
        .query_row(
            "SELECT id FROM links WHERE patient_id = ?1 AND provider = ?2 AND state = 'needs_relink'",
            params![f.patient.as_str(), f.provider],
            |r| r.get(0),
        )
        .optional()?;
    let mut detail = f.detail.clone();
    detail["relink_of"] = serde_json::json!(relink_of);
    tx.execute(
        "INSERT INTO consent_flows (id, provider, patient_id, state_sha256, key_id, pkce_verifier,
         nonce, redirect_uri, relink_of, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            f.id,
            f.provider,
            f.patient.as_str(),
            f.state_sha256,
            f.key_id,
            f.pkce_verifier,
            f.nonce,
            f.redirect_uri,
            relink_of,
            now(),
            f.expires_at
        ],
    )?;
    super::audit::append(
        tx,
        actor,
        "consent.start",
        Some(f.patient.as_str()),
        Some(&format!("consent:{}", f.id)),
        &detail,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewPatient;

    fn pid(id: &str) -> ProviderId {
        ProviderId::parse(id).expect("id")
    }

    fn store_with_flow(expires_at: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = crate::store::test_store(dir.path());
        let p = PatientId::parse("P1").expect("id");
        store
            .add_patient(
                &NewPatient {
                    id: p.clone(),
                    mrn: None,
                    name: None,
                    birth_date: None,
                },
                "test",
            )
            .expect("patient");
        store
            .start_consent_flow(
                &NewFlow {
                    id: "f1",
                    provider: &pid("ehr"),
                    patient: &p,
                    state_sha256: "abc",
                    key_id: "k",
                    pkce_verifier: vec![1, 2, 3],
                    nonce: None,
                    redirect_uri: "http://127.0.0.1:1/cb",
                    expires_at,
                    detail: serde_json::json!({}),
                },
                "test",
            )
            .expect("start");
        (dir, store)
    }

    #[test]
    fn a_flow_is_taken_once_and_only_by_its_state_and_provider() {
        let (_d, mut store) = store_with_flow("9999-01-01T00:00:00.000Z");
        let d = serde_json::json!({});
        assert!(matches!(
            store
                .take_consent_flow("abc", &pid("other"), "t", &d)
                .expect("take"),
            FlowLookup::Unknown
        ));
        assert!(matches!(
            store
                .take_consent_flow("xyz", &pid("ehr"), "t", &d)
                .expect("take"),
            FlowLookup::Unknown
        ));
        match store
            .take_consent_flow("abc", &pid("ehr"), "t", &d)
            .expect("take")
        {
            FlowLookup::Taken(f) => {
                assert_eq!(f.id, "f1");
                assert_eq!(f.pkce_verifier, vec![1, 2, 3]);
            }
            other => panic!("{other:?}"),
        }
        // The taker got the sealed verifier; the row keeps it no longer.
        let kept: Vec<u8> = store
            .conn
            .query_row(
                "SELECT pkce_verifier FROM consent_flows WHERE id = 'f1'",
                (),
                |r| r.get(0),
            )
            .expect("row");
        assert!(kept.is_empty(), "{kept:?}");
        assert!(matches!(
            store
                .take_consent_flow("abc", &pid("ehr"), "t", &d)
                .expect("take"),
            FlowLookup::Used { .. }
        ));
    }

    #[test]
    fn an_expired_flow_is_refused_and_used_up() {
        let (_d, mut store) = store_with_flow("2000-01-01T00:00:00.000Z");
        let d = serde_json::json!({});
        assert!(matches!(
            store
                .take_consent_flow("abc", &pid("ehr"), "t", &d)
                .expect("take"),
            FlowLookup::Expired { .. }
        ));
        assert!(matches!(
            store
                .take_consent_flow("abc", &pid("ehr"), "t", &d)
                .expect("take"),
            FlowLookup::Used { .. }
        ));
    }

    /// A consent's link with a held verdict, as `store_consent_link` stores it.
    fn store_held(store: &mut Store) -> Result<(LinkId, bool), StoreError> {
        use crate::store::{IdentityWrite, LinkSecrets, NewLink};
        let (key, _) = crate::vault::VaultKey::generate();
        let p = PatientId::parse("P1").expect("id");
        store.store_consent_link(
            "f1",
            "test",
            &serde_json::json!({}),
            &NewLink {
                patient: &p,
                provider: &ProviderId::parse("ehr").expect("id"),
                remote_patient: "r1",
                secrets: LinkSecrets::Oauth2 {
                    access_token: secrecy::SecretString::from("at-123456".to_string()),
                    refresh_token: None,
                },
                expires_at: None,
                scope: None,
                grant_expires_at: None,
            },
            &key,
            Some(&IdentityWrite {
                remote_identity: r#"{"subject":"s","identifiers":{"profile:/mrn":"X"}}"#.into(),
                read_at: crate::store::parse_time("2026-01-01T00:00:00.000Z").expect("time"),
                verdict: Some(serde_json::json!({"problems": ["differ"]})),
                hold: Some("both identities".into()),
                accesses: Vec::new(),
            }),
            serde_json::json!({}),
        )
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn.query_row(sql, (), |r| r.get(0)).expect("counts")
    }

    #[test]
    fn a_consent_s_link_is_stored_in_its_final_state_with_its_verdict_at_once() {
        let (_d, mut store) = store_with_flow("9999-01-01T00:00:00.000Z");
        let (id, relinked) = store_held(&mut store).expect("stores");
        assert!(!relinked);
        let link = store.link(id).expect("reads").expect("exists");
        assert_eq!(link.state, crate::domain::LinkState::Held);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'"
            ),
            1
        );
        let linked: String = store
            .conn
            .query_row(
                "SELECT detail FROM audit WHERE action = 'consent.linked'",
                (),
                |r| r.get(0),
            )
            .expect("consent.linked");
        let linked: serde_json::Value = serde_json::from_str(&linked).expect("JSON");
        assert_eq!(linked["identity"], "held", "{linked}");
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM audit WHERE action = 'identity.held'"
            ),
            1
        );
    }

    #[test]
    fn a_failure_after_the_link_is_written_leaves_no_link_no_verdict_and_the_flow_open() {
        let (_d, mut store) = store_with_flow("9999-01-01T00:00:00.000Z");
        let audit = count(&store, "SELECT COUNT(*) FROM audit");
        // The flow's end (the last write) fails: everything before it goes too.
        store
            .conn
            .execute_batch(store.conn.dialect(
                "CREATE TRIGGER boom BEFORE UPDATE OF outcome ON consent_flows
                 BEGIN SELECT RAISE(ABORT, 'boom'); END;",
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$;
                 CREATE TRIGGER boom BEFORE UPDATE OF outcome ON consent_flows
                 FOR EACH ROW EXECUTE FUNCTION boom();",
            ))
            .expect("trigger");
        store_held(&mut store).expect_err("the flow's end fails");
        assert_eq!(count(&store, "SELECT COUNT(*) FROM links"), 0);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM exceptions"), 0);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM audit"), audit);
        assert!(store.conn.is_autocommit(), "no transaction left open");
    }
}
