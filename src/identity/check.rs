//! The guard's decisions: what to record for an identity just read
//! (`decide`: compare, or not when it is the recorded or the accepted
//! one), the `identity_mismatch` detail, and `judge_new_link`, which the
//! consent engine calls before it stores a link made by consent.

use super::compare::{self, LocalIdentity, Verdict};
use super::remote::{
    Audience, ReadContext, TokenKind, introspect, read_remote, validate_with_jwks,
};
use super::settings::{IdentitySettings, RemoteSource};
use super::token::Claims;
use super::{IdentityError, RemoteIdentity};
use crate::config::{Provider, ProviderAuth};
use crate::fetch::auth::Credential;
use crate::fetch::http::HttpClient;
use crate::fetch::jwks::JwksCache;
use crate::store::{IdentityWrite, Patient};
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
    read_at: chrono::DateTime<chrono::Utc>,
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
                read_at,
                verdict: None,
                hold: None,
                accesses: Vec::new(),
            },
            None,
        );
    }
    let verdict = compare::compare(settings, local, remote);
    let hold = (!verdict.matches()).then(|| hold_detail(settings, local, remote, &verdict));
    (
        IdentityWrite {
            remote_identity,
            read_at,
            verdict: serde_json::to_value(&verdict).ok(),
            hold,
            accesses: Vec::new(),
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

/// A link the consent engine is about to make, and what came with its tokens.
pub struct NewLinkCheck<'a> {
    pub provider: &'a Provider,
    pub client: &'a HttpClient,
    pub jwks: &'a JwksCache,
    pub patient: &'a Patient,
    /// The new link's credential: a bearer (OAuth 2.0) or an OAuth 1.0a
    /// signer with the access token.
    pub credential: &'a dyn Credential,
    /// OAuth 2.0 only: the access token and what came with it.
    pub oauth2: Option<NewOauth2<'a>>,
    /// The token response's `patient` (SMART, or beside OAuth 1.0a tokens).
    pub remote_patient: Option<&'a str>,
    /// The provider's discovery (`discover = true`), for what
    /// `[providers.identity]` does not configure (`with_discovered`), or
    /// why it could not be read (the check fails, no link is stored).
    pub discovered: Result<Option<&'a crate::discovery::Discovered>, String>,
}

/// What an OAuth 2.0 token answer gives the guard.
pub struct NewOauth2<'a> {
    pub access_token: &'a SecretString,
    /// The resolved client: its id is the tokens' `aud`; it authenticates
    /// introspection.
    pub client_auth: &'a crate::fetch::oauth2::Client,
    /// The token response's `id_token`, and the nonce the authorization request sent.
    pub id_token: Option<&'a str>,
    pub expected_nonce: Option<&'a str>,
}

/// What `judge_new_link` found.
#[derive(Debug)]
pub enum NewLinkOutcome {
    /// The provider has no `[providers.identity]`: the link is trusted as made.
    Unchecked,
    /// The identities match.
    Matched(Verdict),
    /// The link is to be held with an `identity_mismatch` exception.
    Held(Verdict),
}

/// The verdict on a link not yet stored, and what to record with it.
#[derive(Debug)]
pub struct Judged {
    pub outcome: NewLinkOutcome,
    /// The identity and the verdict, to be stored in the transaction that
    /// stores the link (`Store::store_consent_link`); None when unchecked.
    pub write: Option<IdentityWrite>,
    /// The validated ID token's claims, when the token answer carried one
    /// (its `fhirUser` may name the remote patient).
    pub id_token: Option<Claims>,
}

/// Before the consent engine stores a link: validates the ID token (and a
/// JWT access token when configured), reads the remote identity and
/// compares. It writes nothing: the caller stores the link in its final
/// state (active, or held) with `Judged::write` in one transaction. A
/// token that fails validation, an inactive introspection, an identity
/// that cannot be read: an error, and the caller stores no link.
pub async fn judge_new_link(c: NewLinkCheck<'_>) -> Result<Judged, IdentityError> {
    let Some(configured) = &c.provider.identity else {
        // No guard, but an ID token that came back is still validated: a
        // token that fails validation makes no link.
        let now = chrono::Utc::now().timestamp();
        let id_token = match c.oauth2.as_ref().and_then(|o| o.id_token.map(|t| (o, t))) {
            Some((o, t)) => Some(validate_new_id_token(&c, None, o, t, now).await?),
            None => None,
        };
        return Ok(Judged {
            outcome: NewLinkOutcome::Unchecked,
            write: None,
            id_token,
        });
    };
    let settings = &match &c.discovered {
        Ok(d) => configured.with_discovered(*d),
        Err(e) => return Err(IdentityError::Read(e.clone())),
    };
    let mut accesses = Vec::new();
    let read = read_new_link(&c, settings, &mut accesses).await;
    let (remote, id_token) = read?;
    let (mut write, verdict) = decide(
        settings,
        &local_of(c.patient),
        &remote,
        None,
        None,
        chrono::Utc::now(),
    );
    // The requests the check made go to the audit with the link.
    write.accesses = accesses;
    let verdict = verdict.unwrap_or(Verdict {
        compared: vec![],
        problems: vec![],
    });
    let outcome = if write.hold.is_some() {
        NewLinkOutcome::Held(verdict)
    } else {
        NewLinkOutcome::Matched(verdict)
    };
    Ok(Judged {
        outcome,
        write: Some(write),
        id_token,
    })
}

/// Validates the ID token of a new link: with the JWKS and issuer of
/// `[providers.identity]`, else the discovered ones; a provider with
/// neither has its claims checked without the signature
/// (`token::validate_id_token_claims`: the token came straight from the
/// token endpoint over TLS, OpenID Connect Core §3.1.3.7 (6)).
async fn validate_new_id_token(
    c: &NewLinkCheck<'_>,
    settings: Option<&IdentitySettings>,
    o: &NewOauth2<'_>,
    token: &str,
    now: i64,
) -> Result<Claims, IdentityError> {
    let client_id = &o.client_auth.client_id;
    let kind = TokenKind::Id {
        nonce: o.expected_nonce,
    };
    let configured = settings.filter(|s| s.jwks_url.is_some() && s.issuer.is_some());
    if let Some(settings) = configured {
        let audience = Audience {
            provider: c.provider,
            settings,
            client_id,
        };
        return validate_with_jwks(c.client, c.jwks, audience, token, kind, now).await;
    }
    let discovered = match &c.discovered {
        Ok(d) => d.and_then(|d| Some((d.jwks_uri.clone()?, d.issuer.clone()?))),
        Err(e) => {
            return Err(IdentityError::Read(format!(
                "the provider's JWKS could not be discovered to validate its ID token: {e}"
            )));
        }
    };
    let Some((jwks_url, issuer)) = discovered else {
        // An identity read from the ID token needs its signature checked:
        // unsigned claims are never the identity compared with the patient.
        if let Some(s) = settings
            && matches!(s.remote, RemoteSource::IdToken(_))
        {
            return Err(IdentityError::Read(
                "no JWKS to check the ID token's signature: identity.jwks_url and identity.issuer \
                 are not both set and discovery announced no jwks_uri and issuer"
                    .into(),
            ));
        }
        // The identity comes from elsewhere (or is not checked): the
        // token, straight from the token endpoint over TLS, has its claims
        // checked (OpenID Connect Core §3.1.3.7 (6)): `aud`, `exp`, `iat`,
        // `nonce`.
        return super::token::validate_id_token_claims(token, client_id, o.expected_nonce, now);
    };
    // A URL issuer compares without the trailing slash `Url` may add.
    let unverified = super::token::validate_id_token_claims(token, client_id, None, now)?;
    let said = unverified
        .get("iss")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let issuer = if said.trim_end_matches('/') == issuer.as_str().trim_end_matches('/') {
        said.to_string()
    } else {
        return Err(IdentityError::WrongIssuer);
    };
    let mut settings = match settings {
        Some(s) => s.clone(),
        None => IdentitySettings {
            discover: true,
            ..IdentitySettings::comparing(
                RemoteSource::IdToken("sub".into()),
                super::LocalField::Id,
            )
        }
        // The algorithms the provider announces, where it does.
        .with_discovered(c.discovered.as_ref().ok().copied().flatten()),
    };
    settings.jwks_url = Some(jwks_url);
    settings.issuer = Some(issuer);
    let audience = Audience {
        provider: c.provider,
        settings: &settings,
        client_id,
    };
    validate_with_jwks(c.client, c.jwks, audience, token, kind, now).await
}

/// Reads the new link's identity; the requests it made land in `accesses`
/// as `provider.access` details, whatever the outcome.
async fn read_new_link(
    c: &NewLinkCheck<'_>,
    settings: &IdentitySettings,
    accesses: &mut Vec<serde_json::Value>,
) -> Result<(RemoteIdentity, Option<Claims>), IdentityError> {
    let now = chrono::Utc::now().timestamp();
    let o = c.oauth2.as_ref();
    let audience = |client_id| Audience {
        provider: c.provider,
        settings,
        client_id,
    };
    let claims = match o.and_then(|o| o.id_token.map(|t| (o, t))) {
        Some((o, t)) => Some(validate_new_id_token(c, Some(settings), o, t, now).await?),
        None if matches!(settings.remote, RemoteSource::IdToken(_)) => {
            return Err(IdentityError::Malformed(
                "the token response carries no id_token".into(),
            ));
        }
        None => None,
    };
    if settings.jwt_access_token {
        use secrecy::ExposeSecret;
        let o = o.ok_or_else(|| IdentityError::Config {
            provider: c.provider.id.to_string(),
            problem: "identity.jwt_access_token is for oauth2 providers".into(),
        })?;
        validate_with_jwks(
            c.client,
            c.jwks,
            audience(&o.client_auth.client_id),
            o.access_token.expose_secret(),
            TokenKind::Access,
            now,
        )
        .await?;
    }
    let cx = ReadContext {
        provider: c.provider,
        settings,
        client: c.client,
        credential: c.credential,
        access_token: o.map(|o| o.access_token),
        client_auth: o.map(|o| o.client_auth),
        id_token: claims.as_ref(),
        patient: c.remote_patient,
        now,
    };
    let auth_introspection = match &c.provider.auth {
        ProviderAuth::Oauth2(o) => o.introspection_url.as_ref(),
        ProviderAuth::Oauth1(_) => None,
    };
    let reads_introspection = matches!(settings.remote, RemoteSource::Introspection(_));
    let mut trail = Vec::new();
    let read = async {
        // Introspection checks the token even when the identity is read elsewhere.
        if !reads_introspection && auth_introspection.is_some() {
            introspect(&cx).await?;
        }
        read_remote(&cx, &mut trail).await
    }
    .await;
    // As the pull audits its identity reads (`pull::identity`), naming the
    // endpoint `introspect` called: `[providers.identity]`'s (or the
    // discovered one), else `auth.introspection_url`.
    let introspected = reads_introspection || auth_introspection.is_some();
    let called = settings.introspection_url.as_ref().or(auth_introspection);
    if introspected && let Some(url) = called {
        accesses.push(serde_json::json!({
            "url": crate::fetch::auth::redact(url), "purpose": "introspection",
            "outcome": match &read {
                Err(IdentityError::Inactive(_)) => "refused",
                _ => "ok",
            },
        }));
    }
    for hop in &trail {
        accesses.push(serde_json::json!({
            "url": hop.url, "status": hop.status, "ms": hop.ms, "purpose": "identity",
            "outcome": match hop.status {
                Some(200..=299) => "ok",
                Some(_) => "refused",
                None => "error",
            },
        }));
    }
    Ok((read?, claims))
}
