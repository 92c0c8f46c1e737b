//! Invitations: a single-use URL (`[review] public_url` + `/invite/TOKEN`)
//! that starts a consent for one patient at one provider, for a patient
//! who has no rxsync account.
//!
//! The token is 32 random bytes from the OS CSPRNG (256 bits), shown once
//! and stored only as its SHA-256 (`store::invitations`). Making one, its
//! lifetime and its token are pure (no store, no clock of its own beyond
//! `now` for the expiry). Opening its URL only shows the patient what it
//! is for (`Store::look_up_invitation`); `accept` — the patient's
//! *Continue* — is the one place it is spent: the consent flow is made and
//! stored, the invitation spent and the flow remembered on it, in one
//! store transaction (`accept_oauth1` for an OAuth 1.0a provider asks
//! for the request token first). Never prints.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{ConsentClient, ConsentError, Started};
use crate::config::{Provider, PublicUrl};
use crate::domain::PatientId;
use crate::store::{InvitationLookup, OpenedInvitation, StoreError, Writer};
use crate::vault::VaultKey;

/// The longest an invitation may live.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an invitation lives unless told otherwise.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(72 * 3600);

/// A fresh invitation: what the store keeps and what the clinician is shown.
pub struct Fresh {
    /// Random, not a secret: names it in the audit.
    pub id: String,
    /// The URL to give the patient. It holds the token: show it once.
    pub url: SecretString,
    pub token_sha256: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Makes an invitation under `public` that lives `lifetime`.
pub fn fresh(public: &PublicUrl, lifetime: Duration) -> Fresh {
    let token = super::authorize::random_urlsafe(32);
    let url: Url = public.join(&format!("/invite/{token}"));
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(lifetime.min(MAX_LIFETIME))
            .unwrap_or(chrono::Duration::hours(72));
    Fresh {
        id: super::authorize::random_urlsafe(12),
        token_sha256: token_sha256(&token),
        url: SecretString::from(url.to_string()),
        expires_at,
    }
}

/// The hash an invitation is stored and found under.
pub fn token_sha256(token: &str) -> String {
    super::authorize::state_sha256(token)
}

/// Reads a lifetime such as `72h`, `30m`, `7d`, `90s` (a bare number is seconds).
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 72h, 30m, 7d or 90s"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    let lifetime = Duration::from_secs(secs);
    if secs == 0 || lifetime > MAX_LIFETIME {
        return Err(format!("{text:?} must be between 1s and 30d"));
    }
    Ok(lifetime)
}

/// Whether `token` can be an invitation token (so a junk path never reaches the store).
pub fn plausible_token(token: &str) -> bool {
    (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The URL as text, for the one place that shows it.
pub fn reveal(fresh: &Fresh) -> &str {
    fresh.url.expose_secret()
}

/// What accepting an invitation came to.
#[derive(Debug)]
pub enum Acceptance {
    /// Spent, its consent started: send the patient to `Started::url`.
    Started(Started),
    /// Refused and audited, nothing started: unknown, used (a racing
    /// accept included) or expired.
    Refused(InvitationLookup),
}

/// Accepts the live `invitation` (as `Store::look_up_invitation` found it
/// under `token_sha256`) for its patient at `provider`: one store
/// transaction spends it, stores the consent flow back at `redirect_uri`
/// and remembers the flow on it.
#[allow(clippy::too_many_arguments)]
pub async fn accept(
    writer: &Writer,
    key: &VaultKey,
    provider: &Provider,
    resolved: &ConsentClient,
    invitation: &OpenedInvitation,
    token_sha256: &str,
    redirect_uri: &Url,
    actor: &str,
) -> Result<Acceptance, ConsentError> {
    let patient = PatientId::parse(&invitation.patient).map_err(|e| {
        StoreError::Corrupt(format!("invitation {}: patient id: {e}", invitation.id))
    })?;
    let (flow, started) = super::prepare(key, provider, resolved, &patient, redirect_uri)?;
    let (hash, actor) = (token_sha256.to_string(), actor.to_string());
    let found = writer
        .run(move |store| store.accept_invitation(&hash, &flow.as_new(), &actor))
        .await?;
    Ok(match found {
        InvitationLookup::Live(_) => Acceptance::Started(started),
        other => Acceptance::Refused(other),
    })
}

/// `accept` for an OAuth 1.0a provider: the request token first (the
/// provider is asked before anything is spent; a refusal is audited and
/// spends nothing), then one store transaction spends the invitation and
/// stores the flow (its request token secret sealed), back at `callback`.
#[allow(clippy::too_many_arguments)]
pub async fn accept_oauth1(
    writer: &Writer,
    key: &VaultKey,
    provider: &Provider,
    http: &reqwest::Client,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    invitation: &OpenedInvitation,
    token_sha256: &str,
    callback: &Url,
    actor: &str,
) -> Result<Acceptance, ConsentError> {
    let patient = PatientId::parse(&invitation.patient).map_err(|e| {
        StoreError::Corrupt(format!("invitation {}: patient id: {e}", invitation.id))
    })?;
    let (flow, started) =
        super::oauth1::prepare(writer, key, provider, &patient, http, env, callback, actor).await?;
    let (hash, actor) = (token_sha256.to_string(), actor.to_string());
    let found = writer
        .run(move |store| store.accept_invitation(&hash, &flow.as_new(), &actor))
        .await?;
    Ok(match found {
        InvitationLookup::Live(_) => Acceptance::Started(Started {
            flow: started.flow.clone(),
            url: started.url.clone(),
            expires_at: started.expires_at,
        }),
        other => Acceptance::Refused(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_with_their_unit_and_are_bounded() {
        let rows: &[(&str, Option<u64>)] = &[
            ("72h", Some(72 * 3600)),
            ("30m", Some(1800)),
            ("7d", Some(7 * 86_400)),
            ("1s", Some(1)),
            ("90", Some(90)),
            ("0s", None),
            ("31d", None),
            ("h", None),
            ("3w", None),
            ("-1h", None),
        ];
        for (text, secs) in rows {
            assert_eq!(
                parse_lifetime(text).ok().map(|d| d.as_secs()),
                *secs,
                "{text}"
            );
        }
    }

    #[test]
    fn a_fresh_invitation_has_a_256_bit_token_kept_only_as_its_hash() {
        let public = PublicUrl::parse("https://rx.example.org").expect("url");
        let a = fresh(&public, DEFAULT_LIFETIME);
        let b = fresh(&public, DEFAULT_LIFETIME);
        let token = reveal(&a)
            .strip_prefix("https://rx.example.org/invite/")
            .expect("path");
        assert_eq!(token.len(), 43);
        assert!(plausible_token(token));
        assert_eq!(a.token_sha256, token_sha256(token));
        assert!(!a.token_sha256.contains(token));
        assert_ne!(reveal(&a), reveal(&b));
    }
}
