//! The wrong-patient guard inside a pull (design invariant 7): for a
//! provider with `[providers.identity]`, the remote identity is read with
//! the link's credential before any document is fetched; a new or changed
//! identity is compared with the local patient. A mismatch ends the pull
//! as `held` (the link held, an `identity_mismatch` exception, no document
//! stored); a match or an unchanged identity lets the pull go on, and what
//! was read is recorded in the import's own transaction.

use super::{Failure, Fetching, Session};
use crate::config::ProviderAuth;
use crate::domain::PatientId;
use crate::identity::check;
use crate::identity::remote::{self, ReadContext};
use crate::identity::{IdentityError, IdentitySettings};
use crate::store::StoreError;

impl Fetching<'_> {
    /// Reads and judges the link's remote identity; the journal keeps what
    /// to record.
    pub(super) async fn check_identity(
        &mut self,
        settings: &IdentitySettings,
    ) -> Result<(), Failure> {
        let link_id = self.link.view.id;
        let patient = PatientId::parse(&self.link.view.patient)
            .map_err(|e| Failure::failed(format!("link {link_id}: {e}")))?;
        let (local, state) = self
            .writer
            .run(move |s| {
                let p = s.patient(&patient)?.ok_or_else(|| StoreError::NotFound {
                    what: "patient",
                    id: patient.to_string(),
                })?;
                Ok((p, s.link_identity_state(link_id)?))
            })
            .await
            .map_err(|e| Failure::failed(e.to_string()))?;
        // An ID token is handed over once, at sign-in: the identity it
        // carried was read and judged when the link was made (a held link
        // is never pulled), so a pull has nothing newer to compare.
        if matches!(settings.remote, crate::identity::RemoteSource::IdToken(_))
            && state.recorded.is_some()
        {
            return Ok(());
        }
        let client_auth = match &self.provider.auth {
            ProviderAuth::Oauth2(o) => Some(
                self.puller
                    .oauth2_client(
                        &self.writer,
                        self.provider,
                        o,
                        false,
                        &mut self.journal.trail,
                    )
                    .await
                    .map_err(Failure::failed)?,
            ),
            ProviderAuth::Oauth1(_) => None,
        };
        let access_token = match &self.session {
            Session::Oauth2 { bearer, .. } => Some(&bearer.token),
            Session::Oauth1(_) => None,
        };
        if let (true, Some(token), Some(jwks), Some(c)) = (
            settings.jwt_access_token,
            access_token,
            self.puller.jwks.get(self.provider.id.as_str()),
            client_auth.as_ref(),
        ) {
            use secrecy::ExposeSecret;
            remote::validate_with_jwks(
                &self.client,
                jwks,
                remote::Audience {
                    provider: self.provider,
                    settings,
                    client_id: &c.client_id,
                },
                token.expose_secret(),
                remote::TokenKind::Access,
                chrono::Utc::now().timestamp(),
            )
            .await
            .map_err(|e| {
                Failure::failed(format!(
                    "provider {}: the JWT access token is refused: {e}",
                    self.provider.id
                ))
            })?;
        }
        let cx = ReadContext {
            provider: self.provider,
            settings,
            client: &self.client,
            credential: self.session.credential(),
            access_token,
            client_auth: client_auth.as_ref(),
            id_token: None,
            patient: Some(&self.link.view.remote_patient),
            now: chrono::Utc::now().timestamp(),
        };
        let introspects = matches!(&self.provider.auth,
            ProviderAuth::Oauth2(o) if o.introspection_url.is_some());
        let mut trail = Vec::new();
        let mut grant_end = None;
        let read = async {
            // Introspection vouches for the token even when the identity
            // is read elsewhere, and may say when the grant ends.
            if introspects {
                let answer = remote::introspect(&cx).await?;
                grant_end = crate::fetch::grant::introspected_grant_end(&answer);
                if let crate::identity::RemoteSource::Introspection(_) = settings.remote {
                    return Ok(crate::identity::read::from_claims(
                        &answer,
                        &settings.remote,
                    ));
                }
            }
            remote::read_remote(&cx, &mut trail).await
        }
        .await;
        // Every provider access is audited, the identity reads too.
        if let (true, ProviderAuth::Oauth2(o)) = (introspects, &self.provider.auth)
            && let Some(url) = &o.introspection_url
        {
            self.journal.accesses.push(serde_json::json!({
                "url": crate::fetch::auth::redact(url), "purpose": "introspection",
                "outcome": match &read {
                    Err(IdentityError::Inactive(_)) => "refused",
                    _ => "ok",
                },
            }));
        }
        for hop in &trail {
            self.journal.accesses.push(serde_json::json!({
                "url": hop.url, "status": hop.status, "ms": hop.ms, "purpose": "identity",
                "outcome": match hop.status {
                    Some(200..=299) => "ok",
                    Some(_) => "refused",
                    None => "error",
                },
            }));
        }
        self.journal.trail.extend(trail);
        let remote = read.map_err(|e| match e {
            IdentityError::Inactive(_) => Failure::relink(e.to_string()),
            _ => Failure::failed(format!("provider {}: {e}", self.provider.id)),
        })?;
        let grant_end = grant_end.map(crate::store::rfc3339_at);
        if let Some(end) = grant_end.filter(|e| self.link.view.grant_expires_at.as_ref() != Some(e))
        {
            self.link.view.grant_expires_at = Some(end.clone());
            self.writer
                .run(move |s| s.set_grant_expiry(link_id, &end))
                .await
                .map_err(|e| Failure::failed(format!("link {link_id}: {e}")))?;
        }
        let read_at = crate::store::rfc3339_now();
        let (write, verdict) = check::decide(
            settings,
            &check::local_of(&local),
            &remote,
            state.recorded.as_deref(),
            state.accepted.as_deref(),
            &read_at,
        );
        let held = write.hold.is_some();
        self.journal.identity = Some(write);
        match verdict {
            Some(v) if held => {
                let problems: Vec<String> = v.problems.iter().map(|p| p.to_string()).collect();
                Err(Failure {
                    outcome: "held",
                    error: format!(
                        "link {link_id} is held: {}; nothing imported until a clinician confirms or rejects it",
                        problems.join("; ")
                    ),
                    retry_after: None,
                })
            }
            _ => Ok(()),
        }
    }
}
