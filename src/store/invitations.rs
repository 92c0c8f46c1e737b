//! Invitations (migration `0017_invitations`): single-use URLs that let a
//! patient start a consent without an rxsync account.
//!
//! The store never sees an invitation's token: it arrives as its SHA-256.
//! An invitation is opened once (`open_invitation` marks it in the same
//! transaction that reads it, so two browsers racing on one URL cannot both
//! start a consent), and the consent it started records how it ended. Every
//! step is an audit row: `invitation.made`, `invitation.opened`,
//! `invitation.refused` (unknown, used or expired), `invitation.used`.

use super::{Store, StoreError, now};
use crate::domain::PatientId;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

/// An invitation to record when its URL is handed out.
pub struct NewInvitation<'a> {
    /// Random, not a secret: names the invitation in the audit.
    pub id: &'a str,
    /// Hex SHA-256 of the URL's token.
    pub token_sha256: &'a str,
    pub patient: &'a PatientId,
    pub provider: &'a str,
    /// RFC 3339.
    pub expires_at: &'a str,
}

/// An invitation just opened: whom and where its consent is for.
#[derive(Debug, Clone)]
pub struct OpenedInvitation {
    pub id: String,
    pub patient: String,
    pub provider: String,
}

/// What opening an invitation found.
#[derive(Debug, Clone)]
pub enum InvitationLookup {
    /// A live invitation, now marked opened.
    Opened(OpenedInvitation),
    /// No invitation has this token.
    Unknown,
    /// It was opened before.
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

    /// Opens the invitation whose token hashes to `token_sha256`, once; a
    /// refusal is audited and changes nothing else.
    pub fn open_invitation(
        &mut self,
        token_sha256: &str,
        actor: &str,
    ) -> Result<InvitationLookup, StoreError> {
        let tx = self.tx()?;
        let at = now();
        let row: Option<(String, String, String, String, Option<String>)> = tx
            .query_row(
                "SELECT id, patient_id, provider, expires_at, opened_at FROM invitations WHERE token_sha256 = ?1",
                [token_sha256],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let (lookup, action, reason, patient, subject) = match row {
            None => (
                InvitationLookup::Unknown,
                "invitation.refused",
                "unknown",
                None,
                None,
            ),
            Some((id, patient, _, _, Some(_))) => (
                InvitationLookup::Used,
                "invitation.refused",
                "used",
                Some(patient),
                Some(id),
            ),
            Some((id, patient, _, expires_at, None)) if expires_at <= at => (
                InvitationLookup::Expired,
                "invitation.refused",
                "expired",
                Some(patient),
                Some(id),
            ),
            Some((id, patient, provider, _, None)) => {
                tx.execute(
                    "UPDATE invitations SET opened_at = ?2 WHERE id = ?1",
                    params![id, at],
                )?;
                (
                    InvitationLookup::Opened(OpenedInvitation {
                        id: id.clone(),
                        patient: patient.clone(),
                        provider,
                    }),
                    "invitation.opened",
                    "live",
                    Some(patient),
                    Some(id),
                )
            }
        };
        super::audit::append(
            &tx,
            actor,
            action,
            patient.as_deref(),
            subject.map(|s| format!("invitation:{s}")).as_deref(),
            &json!({"invitation": reason}),
        )?;
        tx.commit()?;
        Ok(lookup)
    }

    /// Remembers the consent flow an opened invitation started.
    pub fn attach_invitation_flow(
        &mut self,
        invitation: &str,
        flow: &str,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        tx.execute(
            "UPDATE invitations SET flow_id = ?2 WHERE id = ?1",
            params![invitation, flow],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records how the consent of `flow` ended on the invitation that
    /// started it (if one did) and audits `invitation.used`.
    pub fn end_invitation_of_flow(
        &mut self,
        flow: &str,
        outcome: &str,
        link: Option<i64>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewPatient;

    #[test]
    fn an_invitation_opens_once_and_not_after_it_expires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("rx.db")).expect("open");
        let p = PatientId::parse("P1").expect("id");
        store
            .add_patient(&NewPatient::with_id(p.clone()), "t")
            .expect("patient");
        let make = |store: &mut Store, id: &str, hash: &str, expires_at: &str| {
            store
                .make_invitation(
                    &NewInvitation {
                        id,
                        token_sha256: hash,
                        patient: &p,
                        provider: "ehr",
                        expires_at,
                    },
                    "t",
                )
                .expect("make");
        };
        make(&mut store, "i1", "aaa", "2999-01-01T00:00:00.000Z");
        make(&mut store, "i2", "bbb", "2000-01-01T00:00:00.000Z");
        assert!(matches!(
            store.open_invitation("zzz", "t"),
            Ok(InvitationLookup::Unknown)
        ));
        assert!(
            matches!(store.open_invitation("aaa", "t"), Ok(InvitationLookup::Opened(o)) if o.id == "i1" && o.provider == "ehr")
        );
        assert!(matches!(
            store.open_invitation("aaa", "t"),
            Ok(InvitationLookup::Used)
        ));
        assert!(matches!(
            store.open_invitation("bbb", "t"),
            Ok(InvitationLookup::Expired)
        ));
        assert!(matches!(
            store.open_invitation("bbb", "t"),
            Ok(InvitationLookup::Expired)
        ));
    }
}
