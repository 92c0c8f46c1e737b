//! The guard's decisions: what to record for an identity just read
//! (`decide`: compare, or not when it is the recorded or the accepted
//! one), the `identity_mismatch` detail, and `check_new_link`, which the
//! consent engine calls right after a link is made.

use super::compare::{self, LocalIdentity, Verdict};
use super::remote::{
    Audience, ReadContext, TokenKind, introspect, read_remote, validate_with_jwks,
};
use super::settings::{IdentitySettings, RemoteSource};
use super::{IdentityError, RemoteIdentity};
use crate::config::{Provider, ProviderAuth};
use crate::fetch::http::HttpClient;
use crate::fetch::jwks::JwksCache;
use crate::store::{IdentityWrite, Patient, StoreError, Writer};
use secrecy::SecretString;

/// The local patient as the guard sees it.
pub fn local_of(p: &Patient) -> LocalIdentity<'_> {
    LocalIdentity {
        id: &p.id,
        mrn: p.mrn.as_deref(),
        name: p.name.as_deref(),
        birth_date: p.birth_date.as_deref(),
    }
}

/// Decides what to record for an identity just read. `recorded` and
/// `accepted` are the link's stored JSON. The same identity as recorded
/// (on an active link) or as a clinician accepted is not compared again.
pub fn decide(
    settings: &IdentitySettings,
    local: &LocalIdentity<'_>,
    remote: &RemoteIdentity,
    recorded: Option<&str>,
    accepted: Option<&str>,
    read_at: &str,
) -> (IdentityWrite, Option<Verdict>) {
    let same = |json: Option<&str>| {
        json.and_then(|j| serde_json::from_str::<RemoteIdentity>(j).ok())
            .is_some_and(|r| &r == remote)
    };
    let remote_identity = serde_json::to_string(remote).unwrap_or_else(|_| "{}".into());
    if same(recorded) || same(accepted) {
        return (
            IdentityWrite {
                remote_identity,
                read_at: read_at.to_string(),
                verdict: None,
                hold: None,
            },
            None,
        );
    }
    let verdict = compare::compare(settings, local, remote);
    let hold = (!verdict.matches()).then(|| hold_detail(settings, local, remote, &verdict));
    (
        IdentityWrite {
            remote_identity,
            read_at: read_at.to_string(),
            verdict: serde_json::to_value(&verdict).ok(),
            hold,
        },
        Some(verdict),
    )
}

/// The `identity_mismatch` detail: both identities, what differs, what to do.
fn hold_detail(
    settings: &IdentitySettings,
    local: &LocalIdentity<'_>,
    remote: &RemoteIdentity,
    verdict: &Verdict,
) -> String {
    let problems: Vec<String> = verdict.problems.iter().map(|p| p.to_string()).collect();
    let opt = |o: Option<&str>| o.unwrap_or("—").to_string();
    let identifiers: Vec<String> = remote
        .identifiers
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "The account at the provider may not be this patient's ({}). Local patient: id {}, MRN {}, name {}, born {}. Remote identity ({}): subject {}, identifiers [{}], name {}, family name {}, born {}. Nothing is imported from this link until a clinician confirms it (rxsync link confirm LINK --by NAME --note TEXT) or rejects it (rxsync link reject …, which revokes it).",
        problems.join("; "),
        local.id,
        opt(local.mrn),
        opt(local.name),
        opt(local.birth_date),
        settings.remote,
        opt(remote.subject.as_deref()),
        identifiers.join(", "),
        opt(remote.name.as_deref()),
        opt(remote.family_name.as_deref()),
        opt(remote.birth_date.as_deref()),
    )
}

/// A link the consent engine has just made, and what came with its tokens.
pub struct NewLinkCheck<'a> {
    pub provider: &'a Provider,
    pub client: &'a HttpClient,
    pub jwks: &'a JwksCache,
    pub link_id: i64,
    pub patient: &'a Patient,
    pub access_token: &'a SecretString,
    /// The resolved client: its id is the tokens' `aud`; it authenticates
    /// introspection.
    pub client_auth: &'a crate::fetch::oauth2::Client,
    /// The token response's `id_token`, and the nonce the authorization request sent.
    pub id_token: Option<&'a str>,
    pub expected_nonce: Option<&'a str>,
    /// The token response's `patient` (SMART).
    pub remote_patient: Option<&'a str>,
    /// The provider's discovery (`discover = true`), for what
    /// `[providers.identity]` does not configure (`with_discovered`), or
    /// why it could not be read (the check fails, the link is revoked).
    pub discovered: Result<Option<&'a crate::discovery::Discovered>, String>,
}

/// What `check_new_link` found.
#[derive(Debug)]
pub enum NewLinkOutcome {
    /// The provider has no `[providers.identity]`: the link is trusted as made.
    Unchecked,
    /// The identities match; recorded and audited.
    Matched(Verdict),
    /// The link is held with an `identity_mismatch` exception.
    Held(Verdict),
}

/// Right after the consent engine stored a link: validates the ID token
/// (and a JWT access token when configured), reads the remote identity,
/// compares and records. A token that fails validation, an inactive
/// introspection, or a discovery that could not be read (`discovered`),
/// revokes the link (its tokens dropped) and returns the error: such a
/// link must not be used. Settings left to discovery are filled first
/// (`IdentitySettings::with_discovered`).
pub async fn check_new_link(
    writer: &Writer,
    c: NewLinkCheck<'_>,
) -> Result<NewLinkOutcome, IdentityError> {
    let Some(configured) = &c.provider.identity else {
        return Ok(NewLinkOutcome::Unchecked);
    };
    let settings = &match &c.discovered {
        Ok(d) => configured.with_discovered(*d),
        Err(_) => configured.clone(),
    };
    let result = match &c.discovered {
        Ok(_) => read_new_link(&c, settings).await,
        Err(e) => Err(IdentityError::Read(e.clone())),
    };
    let link_id = c.link_id;
    let remote = match result {
        Ok(r) => r,
        Err(e) => {
            let reason = format!("the identity check failed: {e}");
            let revoked = writer
                .run(move |s| s.revoke_link(link_id, "rxsync", &reason).map(|_| ()))
                .await;
            if let Err(StoreError::Conflict(_)) | Ok(()) = revoked {
                return Err(e);
            }
            return Err(revoked.err().map_or(e, IdentityError::Store));
        }
    };
    let read_at = crate::store::rfc3339_now();
    let (write, verdict) = decide(
        settings,
        &local_of(c.patient),
        &remote,
        None,
        None,
        &read_at,
    );
    let verdict = verdict.unwrap_or(Verdict {
        compared: vec![],
        problems: vec![],
    });
    let held = write.hold.is_some();
    writer
        .run(move |s| s.record_link_identity(link_id, &write))
        .await?;
    Ok(if held {
        NewLinkOutcome::Held(verdict)
    } else {
        NewLinkOutcome::Matched(verdict)
    })
}

async fn read_new_link(
    c: &NewLinkCheck<'_>,
    settings: &IdentitySettings,
) -> Result<RemoteIdentity, IdentityError> {
    let now = chrono::Utc::now().timestamp();
    // An ID token is validated when the identity is read from it, or when
    // its keys are known (configured or discovered) — then its `sub` must
    // also be userinfo's. Otherwise it is not read at all: the identity
    // comes from elsewhere, and a token nobody checked vouches for nothing.
    let reads_id_token = matches!(settings.remote, RemoteSource::IdToken(_));
    let id_token = c
        .id_token
        .filter(|_| reads_id_token || (settings.jwks_url.is_some() && settings.issuer.is_some()));
    let claims = match id_token {
        Some(t) => Some(
            validate_with_jwks(
                c.client,
                c.jwks,
                Audience {
                    provider: c.provider,
                    settings,
                    client_id: &c.client_auth.client_id,
                },
                t,
                TokenKind::Id {
                    nonce: c.expected_nonce,
                },
                now,
            )
            .await?,
        ),
        None if matches!(settings.remote, RemoteSource::IdToken(_)) => {
            return Err(IdentityError::Malformed(
                "the token response carries no id_token".into(),
            ));
        }
        None => None,
    };
    if settings.jwt_access_token {
        use secrecy::ExposeSecret;
        validate_with_jwks(
            c.client,
            c.jwks,
            Audience {
                provider: c.provider,
                settings,
                client_id: &c.client_auth.client_id,
            },
            c.access_token.expose_secret(),
            TokenKind::Access,
            now,
        )
        .await?;
    }
    let placement = match &c.provider.auth {
        ProviderAuth::Oauth2(o) => o.placement,
        ProviderAuth::Oauth1(o) => o.placement,
    };
    let bearer = crate::fetch::auth::Bearer {
        token: c.access_token.clone(),
        placement,
    };
    let cx = ReadContext {
        provider: c.provider,
        settings,
        client: c.client,
        credential: &bearer,
        access_token: Some(c.access_token),
        client_auth: Some(c.client_auth),
        id_token: claims.as_ref(),
        patient: c.remote_patient,
        now,
    };
    // Introspection checks the token even when the identity is read elsewhere.
    if !matches!(settings.remote, RemoteSource::Introspection(_))
        && let ProviderAuth::Oauth2(o) = &c.provider.auth
        && o.introspection_url.is_some()
    {
        introspect(&cx).await?;
    }
    let mut trail = Vec::new();
    read_remote(&cx, &mut trail).await
}
