//! Invitations (migration `0017_invitations`): single-use URLs that let a
//! patient start a consent without an rxsync account.
//!
//! The store never sees an invitation's token: it arrives as its SHA-256.
//! Looking at an invitation (`look_up_invitation`: what the patient's
//! page shows) spends nothing, so a mail scanner or a link preview that
//! fetches the URL leaves it usable. It is spent once, by
//! `accept_invitation`, in the one transaction that also records the
//! consent flow it starts and remembers that flow on it: two browsers
//! racing on one URL cannot both start a consent, and a crash cannot
//! leave a spent invitation without its flow. The consent's end is then
//! recorded on it. Every step but looking is an audit row:
//! `invitation.made`, `invitation.accepted`, `invitation.refused`
//! (unknown, used or expired, when looked at or accepted),
//! `invitation.used` (how its consent ended). The `opened_at` column
//! holds when it was accepted (spent).

use super::db::Conn;
use super::{Store, StoreError, now};
use crate::domain::{LinkId, PatientId, ProviderId};
use rusqlite::{OptionalExtension, params};
use serde_json::json;

/// An invitation to record when its URL is handed out.
pub struct NewInvitation<'a> {
    /// Random, not a secret: names the invitation in the audit.
    pub id: &'a str,
    /// Hex SHA-256 of the URL's token.
    pub token_sha256: &'a str,
    pub patient: &'a PatientId,
    pub provider: &'a ProviderId,
    /// RFC 3339.
    pub expires_at: &'a str,
}

/// A live invitation: whom and where its consent is for.
#[derive(Debug, Clone)]
pub struct OpenedInvitation {
    pub id: String,
    pub patient: String,
    pub provider: ProviderId,
    /// RFC 3339.
    pub expires_at: String,
}

/// What looking up (or accepting) an invitation found.
#[derive(Debug, Clone)]
pub enum InvitationLookup {
    /// A live invitation (after `accept_invitation`: now spent, its flow recorded).
    Live(OpenedInvitation),
    /// No invitation has this token.
    Unknown,
    /// It was accepted before.
    Used,
    /// Its time had passed.
    Expired,
}

impl Store {
    /// Records a new invitation (its patient must exist) and `invitation.made`.
    pub fn make_invitation(
        &mut self,
        inv: &NewInvitation<'_>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM patients WHERE id = ?1",
                [inv.patient.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound {
                what: "patient",
                id: inv.patient.to_string(),
            });
        }
        tx.execute(
            "INSERT INTO invitations (id, token_sha256, patient_id, provider, created_by, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                inv.id,
                inv.token_sha256,
                inv.patient.as_str(),
                inv.provider,
                actor,
                now(),
                inv.expires_at
            ],
        )?;
        super::audit::append(
            &tx,
            actor,
            "invitation.made",
            Some(inv.patient.as_str()),
            Some(&format!("invitation:{}", inv.id)),
            &json!({"provider": inv.provider, "expires_at": inv.expires_at}),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// What the invitation whose token hashes to `token_sha256` is, without
    /// spending it (a `GET` of its URL: mail scanners fetch it too). A
    /// refusal is audited (`invitation.refused` at `step`: `look` for its
    /// page, `accept` for its *Continue*); nothing else is written.
    pub fn look_up_invitation(
        &mut self,
        token_sha256: &str,
        actor: &str,
        step: &str,
    ) -> Result<InvitationLookup, StoreError> {
        let tx = self.tx()?;
        let (lookup, patient, id) = find(&tx, token_sha256)?;
        if !matches!(lookup, InvitationLookup::Live(_)) {
            refused(&tx, actor, &lookup, patient.as_deref(), id.as_deref(), step)?;
        }
        tx.commit()?;
        Ok(lookup)
    }

    /// Spends the invitation whose token hashes to `token_sha256` and starts
    /// its consent, in one transaction: the invitation marked accepted, the
    /// consent `flow` recorded (`consent.start`), the flow remembered on
    /// the invitation, `invitation.accepted`. The flow must be for the
    /// invitation's patient and provider (read by `look_up_invitation`
    /// before it was made). A refusal (unknown, used — a racing accept
    /// included — or expired) is audited and records no flow.
    pub fn accept_invitation(
        &mut self,
        token_sha256: &str,
        flow: &super::NewFlow<'_>,
        actor: &str,
    ) -> Result<InvitationLookup, StoreError> {
        let tx = self.tx()?;
        let (lookup, patient, id) = find(&tx, token_sha256)?;
        let InvitationLookup::Live(inv) = &lookup else {
            refused(
                &tx,
                actor,
                &lookup,
                patient.as_deref(),
                id.as_deref(),
                "accept",
            )?;
            tx.commit()?;
            return Ok(lookup);
        };
        if inv.patient != flow.patient.as_str() || inv.provider != *flow.provider {
            return Err(StoreError::Conflict(format!(
                "invitation {} is for patient {} at {}, not for the consent of patient {} at {}",
                inv.id,
                inv.patient,
                inv.provider,
                flow.patient.as_str(),
                flow.provider
            )));
        }
        super::consent::insert_flow(&tx, flow, actor)?;
        let spent = tx.execute(
            "UPDATE invitations SET opened_at = ?2, flow_id = ?3 WHERE id = ?1 AND opened_at IS NULL",
            params![inv.id, now(), flow.id],
        )?;
        if spent != 1 {
            return Err(StoreError::Conflict(format!(
                "invitation {} was accepted twice",
                inv.id
            )));
        }
        super::audit::append(
            &tx,
            actor,
            "invitation.accepted",
            Some(&inv.patient),
            Some(&format!("invitation:{}", inv.id)),
            &json!({"provider": inv.provider, "flow": flow.id}),
        )?;
        tx.commit()?;
        Ok(lookup)
    }

    /// Records how the consent of `flow` ended on the invitation that
    /// started it (if one did) and audits `invitation.used`.
    pub fn end_invitation_of_flow(
        &mut self,
        flow: &str,
        outcome: &str,
        link: Option<LinkId>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT id, patient_id FROM invitations WHERE flow_id = ?1",
                [flow],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, patient)) = row {
            tx.execute(
                "UPDATE invitations SET outcome = ?2, link_id = ?3 WHERE id = ?1",
                params![id, outcome, link],
            )?;
            super::audit::append(
                &tx,
                actor,
                "invitation.used",
                Some(&patient),
                Some(&format!("invitation:{id}")),
                &json!({"flow": flow, "outcome": outcome, "link": link}),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Audits a callback whose state names no flow at all (`consent.callback`,
    /// `flow: unknown`): forged, mixed up, or from another installation.
    pub fn audit_stray_callback(
        &mut self,
        actor: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let mut detail = detail.clone();
        detail["flow"] = json!("unknown");
        super::audit::append(&tx, actor, "consent.callback", None, None, &detail)?;
        tx.commit()?;
        Ok(())
    }

    /// The flow (id, provider, redirect URI) a callback's state names, if
    /// any: the review app's one callback route learns from it which
    /// provider's consent is finishing, and that it was started for it.
    pub fn consent_flow_by_state(
        &self,
        state_sha256: &str,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, provider, redirect_uri FROM consent_flows WHERE state_sha256 = ?1",
                [state_sha256],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }
}

/// The invitation a token's hash names, judged at `now()`: the lookup,
/// and its patient and id when there is one.
fn find(
    conn: &Conn,
    token_sha256: &str,
) -> Result<(InvitationLookup, Option<String>, Option<String>), StoreError> {
    let row: Option<(String, String, ProviderId, String, Option<String>)> = conn
        .query_row(
            "SELECT id, patient_id, provider, expires_at, opened_at FROM invitations WHERE token_sha256 = ?1",
            [token_sha256],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    Ok(match row {
        None => (InvitationLookup::Unknown, None, None),
        Some((id, patient, _, _, Some(_))) => (InvitationLookup::Used, Some(patient), Some(id)),
        Some((id, patient, _, expires_at, None)) if expires_at <= now() => {
            (InvitationLookup::Expired, Some(patient), Some(id))
        }
        Some((id, patient, provider, expires_at, None)) => (
            InvitationLookup::Live(OpenedInvitation {
                id: id.clone(),
                patient: patient.clone(),
                provider,
                expires_at,
            }),
            Some(patient),
            Some(id),
        ),
    })
}

/// Audits a refused invitation (`invitation.refused`): why, and at which
/// step (`look`: its page; `accept`: its *Continue* button).
fn refused(
    conn: &Conn,
    actor: &str,
    lookup: &InvitationLookup,
    patient: Option<&str>,
    id: Option<&str>,
    step: &str,
) -> Result<(), StoreError> {
    let reason = match lookup {
        InvitationLookup::Live(_) => "live",
        InvitationLookup::Unknown => "unknown",
        InvitationLookup::Used => "used",
        InvitationLookup::Expired => "expired",
    };
    super::audit::append(
        conn,
        actor,
        "invitation.refused",
        patient,
        id.map(|s| format!("invitation:{s}")).as_deref(),
        &json!({"invitation": reason, "step": step}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewFlow, NewPatient};

    fn flow<'a>(id: &'a str, patient: &'a PatientId, provider: &'a str) -> NewFlow<'a> {
        NewFlow {
            id,
            provider: Box::leak(Box::new(ProviderId::parse(provider).expect("id"))),
            patient,
            state_sha256: id,
            key_id: "k",
            pkce_verifier: vec![1, 2, 3],
            nonce: None,
            redirect_uri: "http://127.0.0.1:1/oauth/callback",
            expires_at: "2999-01-01T00:00:00.000Z",
            detail: json!({}),
        }
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn.query_row(sql, (), |r| r.get(0)).expect("count")
    }

    #[test]
    fn looking_spends_nothing_and_accepting_spends_once_with_its_flow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = crate::store::test_store(dir.path());
        let p = PatientId::parse("P1").expect("id");
        let other = PatientId::parse("P2").expect("id");
        for id in [&p, &other] {
            store
                .add_patient(&NewPatient::with_id(id.clone()), "t")
                .expect("patient");
        }
        let make = |store: &mut Store, id: &str, hash: &str, expires_at: &str| {
            store
                .make_invitation(
                    &NewInvitation {
                        id,
                        token_sha256: hash,
                        patient: &p,
                        provider: &ProviderId::parse("ehr").expect("id"),
                        expires_at,
                    },
                    "t",
                )
                .expect("make");
        };
        make(&mut store, "i1", "aaa", "2999-01-01T00:00:00.000Z");
        make(&mut store, "i2", "bbb", "2000-01-01T00:00:00.000Z");
        assert!(matches!(
            store.look_up_invitation("zzz", "t", "look"),
            Ok(InvitationLookup::Unknown)
        ));
        // A mail scanner, a link preview, the patient: as often as they like.
        for _ in 0..3 {
            assert!(
                matches!(store.look_up_invitation("aaa", "t", "look"), Ok(InvitationLookup::Live(o)) if o.id == "i1" && o.provider == "ehr")
            );
        }
        // A flow for another patient or provider is refused and spends nothing.
        assert!(
            store
                .accept_invitation("aaa", &flow("f0", &other, "ehr"), "t")
                .is_err()
        );
        assert!(
            store
                .accept_invitation("aaa", &flow("f0", &p, "elsewhere"), "t")
                .is_err()
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM consent_flows"), 0);
        assert!(matches!(
            store.accept_invitation("aaa", &flow("f1", &p, "ehr"), "t"),
            Ok(InvitationLookup::Live(_))
        ));
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM invitations i JOIN consent_flows f ON f.id = i.flow_id
                 WHERE i.id = 'i1' AND i.opened_at IS NOT NULL AND f.patient_id = 'P1'"
            ),
            1,
            "spent, with its flow, in one go"
        );
        assert!(matches!(
            store.accept_invitation("aaa", &flow("f2", &p, "ehr"), "t"),
            Ok(InvitationLookup::Used)
        ));
        assert!(matches!(
            store.look_up_invitation("aaa", "t", "look"),
            Ok(InvitationLookup::Used)
        ));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM consent_flows"), 1);
        assert!(matches!(
            store.look_up_invitation("bbb", "t", "look"),
            Ok(InvitationLookup::Expired)
        ));
        assert!(matches!(
            store.accept_invitation("bbb", &flow("f3", &p, "ehr"), "t"),
            Ok(InvitationLookup::Expired)
        ));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM consent_flows"), 1);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM audit WHERE action = 'invitation.refused'"
            ),
            5,
            "unknown, used twice, expired twice"
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM audit WHERE action = 'invitation.accepted'"
            ),
            1
        );
    }
}
