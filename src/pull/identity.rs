//! The wrong-patient guard inside a pull (design invariant 7): for a
//! provider with `[providers.identity]`, the remote identity is read with
//! the link's credential before any document is fetched; a new or changed
//! identity is compared with the local patient. A mismatch ends the pull
//! as `held` (the link held, an `identity_mismatch` exception, no document
//! stored); a match or an unchanged identity lets the pull go on, and what
//! was read is recorded in the import's own transaction.
//!
//! The identity is read with a fresh token: a token the provider refuses
//! while it is read (a 401, an inactive introspection, an expired JWT
//! access token) is refreshed once through the pull's own refresh (the
//! new pair committed before it is used) and the read tried again.

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
        // What `[providers.identity]` leaves to discovery (`discover = true`).
        let discovered = if settings.wants_discovery() {
            crate::pull::client::endpoints(
                &self.writer,
                &self.client,
                self.provider,
                &mut self.journal.trail,
            )
            .await
            .map_err(Failure::failed)?
        } else {
            None
        };
        let settings = &settings.with_discovered(discovered.as_ref());
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
        // The identity is read with a fresh token: an access token the
        // provider refuses (a 401, an inactive introspection, an expired
        // JWT) is refreshed once — through the pull's own refresh, which
        // commits the new pair before it is used — and the read tried
        // again. The document fetch after it then needs no refresh of its
        // own (one refresh per pull).
        let remote = loop {
            let (read, token_refused) = self.read_identity(settings, client_auth.as_ref()).await;
            if token_refused && self.can_refresh() {
                self.refresh().await?;
                continue;
            }
            break read;
        };
        let remote = remote?;
        let (write, verdict) = check::decide(
            settings,
            &check::local_of(&local),
            &remote,
            state.recorded.as_deref(),
            state.accepted.as_deref(),
            chrono::Utc::now(),
        );
        let held = write.hold.is_some();
        self.journal.identity = Some(write);
        match verdict {
            Some(v) if held => {
                let problems: Vec<String> = v.problems.iter().map(|p| p.to_string()).collect();
                Err(Failure {
                    outcome: crate::domain::SyncOutcome::Held,
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

    /// Whether a refused token may still be refreshed in this pull: an
    /// OAuth 2.0 link with a refresh token, not refreshed yet.
    fn can_refresh(&self) -> bool {
        matches!(
            &self.session,
            Session::Oauth2 {
                refresh_token: Some(_),
                refreshed: false,
                ..
            }
        )
    }

    /// One attempt at reading the remote identity with the session's
    /// current credential: the JWT access token validated (when
    /// configured), introspection, the identity source. Every provider
    /// access lands in the journal. Says too whether the provider refused
    /// the token itself (so a refresh may help).
    async fn read_identity(
        &mut self,
        settings: &IdentitySettings,
        client_auth: Option<&crate::fetch::oauth2::Client>,
    ) -> (Result<crate::identity::RemoteIdentity, Failure>, bool) {
        let access_token = match &self.session {
            Session::Oauth2 { bearer, .. } => Some(&bearer.token),
            Session::Oauth1(_) => None,
        };
        if let (true, Some(token), Some(jwks), Some(c)) = (
            settings.jwt_access_token,
            access_token,
            self.puller.jwks.get(self.provider.id.as_str()),
            client_auth,
        ) {
            use secrecy::ExposeSecret;
            let valid = remote::validate_with_jwks(
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
            .await;
            if let Err(e) = valid {
                let expired = matches!(e, IdentityError::Expired);
                return (
                    Err(Failure::failed(format!(
                        "provider {}: the JWT access token is refused: {e}",
                        self.provider.id
                    ))),
                    expired,
                );
            }
        }
        let cx = ReadContext {
            provider: self.provider,
            settings,
            client: &self.client,
            credential: self.session.credential(),
            access_token,
            client_auth,
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
        let introspected = introspects
            || matches!(
                settings.remote,
                crate::identity::RemoteSource::Introspection(_)
            );
        if introspected && let Some(url) = &settings.introspection_url {
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
        let refused = matches!(read, Err(IdentityError::Inactive(_)))
            || (read.is_err() && trail.last().is_some_and(|h| h.status == Some(401)));
        self.journal.trail.extend(trail);
        let read = read.map_err(|e| match e {
            IdentityError::Inactive(_) => Failure::relink(e.to_string()),
            _ => Failure::failed(format!("provider {}: {e}", self.provider.id)),
        });
        // The grant's end, when the introspection answer says it and it
        // moved: recorded before the identity is judged.
        if read.is_ok()
            && let Some(end) = grant_end.filter(|e| self.link.view.grant_expires_at != Some(*e))
        {
            let link_id = self.link.view.id;
            self.link.view.grant_expires_at = Some(end);
            if let Err(e) = self
                .writer
                .run(move |s| s.set_grant_expiry(link_id, end))
                .await
            {
                return (Err(Failure::failed(format!("link {link_id}: {e}"))), false);
            }
        }
        (read, refused)
    }
}
