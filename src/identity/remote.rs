//! Reading at the provider: the remote identity (userinfo, a profile,
//! the FHIR `Patient`, introspection, ID token claims) through the
//! provider's own `HttpClient` (its redirect rules, limits and TLS) and the
//! link's credential, and tokens validated with the provider's cached JWKS.
//! Used by the pull (`pull/identity.rs`) and by `judge_new_link`.

use super::read;
use super::settings::{IdentitySettings, RemoteSource};
use super::token::{self, Claims, Expected};
use super::{IdentityError, RemoteIdentity};
use crate::config::{Provider, ProviderAuth};
use crate::fetch::auth::{Credential, redact};
use crate::fetch::http::{Hop, HttpClient};
use crate::fetch::jwks::JwksCache;
use crate::fetch::oauth2::Client;
use secrecy::SecretString;
use url::Url;

/// What reading the identity needs besides the provider's settings.
pub struct ReadContext<'a> {
    pub provider: &'a Provider,
    pub settings: &'a IdentitySettings,
    pub client: &'a HttpClient,
    /// The link's credential (bearer or OAuth 1.0a signer).
    pub credential: &'a dyn Credential,
    /// The OAuth 2.0 access token, for introspection.
    pub access_token: Option<&'a SecretString>,
    /// The resolved client (id and authentication), for introspection and
    /// as the `aud` of tokens.
    pub client_auth: Option<&'a Client>,
    /// Validated ID token claims (consent time only).
    pub id_token: Option<&'a Claims>,
    /// The FHIR Patient the token names (`patient`, else the link's remote patient).
    pub patient: Option<&'a str>,
    pub now: i64,
}

/// Reads the remote identity where `[providers.identity] remote` says.
/// The requests land in `trail`.
pub async fn read_remote(
    cx: &ReadContext<'_>,
    trail: &mut Vec<Hop>,
) -> Result<RemoteIdentity, IdentityError> {
    let s = cx.settings;
    let get_json = |url: Url, what: &'static str, accept: &'static str| async move {
        let mut local = Vec::new();
        let f = cx
            .client
            .get(&url, cx.credential, accept, &mut local)
            .await
            .map_err(|e| IdentityError::Read(format!("{what}: {e}")));
        (f, local)
    };
    let answer = |f: crate::fetch::http::Fetched, what: &str| {
        if (200..300).contains(&f.status) {
            read::json_object(&f.body, what)
        } else {
            Err(IdentityError::Read(format!(
                "{} answered {}",
                redact(&f.url),
                f.status
            )))
        }
    };
    match &s.remote {
        RemoteSource::Userinfo(_) | RemoteSource::Profile(_) => {
            let (url, what) = match &s.remote {
                RemoteSource::Userinfo(_) => (s.userinfo_url.clone(), "userinfo"),
                _ => (s.profile_url.clone(), "the profile"),
            };
            let url = url.ok_or_else(|| {
                config(
                    cx.provider,
                    &format!("no {what} endpoint: neither configured nor discovered"),
                )
            })?;
            // The link's token goes only to an origin the provider trusts
            // (a configured endpoint is trusted by config; a discovered one
            // elsewhere must be added to trusted_origins).
            if !cx.provider.trusted_origins.contains(&url.origin()) {
                return Err(config(
                    cx.provider,
                    &format!(
                        "the {what} endpoint {} is not at a trusted origin; add it to trusted_origins or configure it",
                        redact(&url)
                    ),
                ));
            }
            let (f, hops) = get_json(url, what, "application/json").await;
            trail.extend(hops);
            let v = answer(f?, what)?;
            let mut id = read::from_claims(&v, &s.remote);
            // OIDC Core §5.3.2: userinfo's sub must be the ID token's.
            if let (Some(claims), Some(sub)) = (cx.id_token, &id.subject)
                && claims.get("sub").and_then(|v| v.as_str()) != Some(sub.as_str())
            {
                return Err(IdentityError::Read(
                    "userinfo's sub is not the ID token's sub".into(),
                ));
            }
            if id.subject.is_none() {
                id.subject = cx
                    .id_token
                    .and_then(|c| c.get("sub")?.as_str().map(str::to_string));
            }
            Ok(id)
        }
        RemoteSource::IdToken(_) => {
            let claims = cx.id_token.ok_or_else(|| {
                IdentityError::Read(
                    "the identity is read from the ID token, and there is none".into(),
                )
            })?;
            Ok(read::from_claims(
                &serde_json::Value::Object(claims.clone()),
                &s.remote,
            ))
        }
        RemoteSource::Introspection(_) => {
            let answer = introspect(cx).await?;
            Ok(read::from_claims(&answer, &s.remote))
        }
        RemoteSource::Patient(system) => {
            let id = cx
                .patient
                .map(str::to_string)
                .or_else(|| {
                    cx.id_token
                        .and_then(|c| c.get("fhirUser")?.as_str())
                        .and_then(read::patient_of_fhir_user)
                        .map(str::to_string)
                })
                .ok_or_else(|| IdentityError::Read("no FHIR Patient is named".into()))?;
            let url =
                crate::fetch::fhir::resource_url(&cx.provider.base_url, &format!("Patient/{id}"));
            let (f, hops) = get_json(
                url,
                "the Patient",
                "application/fhir+json, application/json;q=0.9",
            )
            .await;
            trail.extend(hops);
            let v = answer(f?, "the Patient")?;
            read::from_patient(&v, system)
        }
    }
}

/// RFC 7662: the provider's answer about the link's access token, checked.
pub async fn introspect(cx: &ReadContext<'_>) -> Result<serde_json::Value, IdentityError> {
    let ProviderAuth::Oauth2(o) = &cx.provider.auth else {
        return Err(config(
            cx.provider,
            "introspection needs an oauth2 provider",
        ));
    };
    let url = cx
        .settings
        .introspection_url
        .as_ref()
        .or(o.introspection_url.as_ref())
        .ok_or_else(|| {
            config(
                cx.provider,
                "no introspection endpoint: auth.introspection_url is not set and discovery announced none",
            )
        })?;
    let token = cx
        .access_token
        .ok_or_else(|| IdentityError::Read("no access token to introspect".into()))?;
    let c = cx.client_auth.ok_or_else(|| {
        config(
            cx.provider,
            "introspection needs the client's authentication",
        )
    })?;
    let answer = crate::fetch::oauth2::introspect(
        cx.client.inner(),
        c,
        url,
        token,
        cx.client.limits().timeout,
    )
    .await
    .map_err(IdentityError::Read)?;
    read::check_introspection(&answer, &c.client_id, &o.scopes, cx.now)?;
    Ok(answer)
}

fn config(p: &Provider, problem: &str) -> IdentityError {
    IdentityError::Config {
        provider: p.id.to_string(),
        problem: problem.to_string(),
    }
}

/// The expectations of a provider's tokens.
fn expected<'a>(
    provider: &'a Provider,
    settings: &'a IdentitySettings,
    client_id: &'a str,
    nonce: Option<&'a str>,
    now: i64,
) -> Result<Expected<'a>, IdentityError> {
    if !matches!(provider.auth, ProviderAuth::Oauth2(_)) {
        return Err(config(
            provider,
            "tokens are validated for oauth2 providers only",
        ));
    }
    Ok(Expected {
        issuer: settings.issuer.as_deref().ok_or_else(|| {
            config(
                provider,
                "no issuer: identity.issuer is not set and discovery announced none",
            )
        })?,
        client_id,
        nonce,
        algorithms: &settings.algorithms,
        now,
    })
}

/// Which token `validate_with_jwks` checks.
#[derive(Debug, Clone, Copy)]
pub enum TokenKind<'a> {
    /// An ID token, and the nonce the authorization request sent.
    Id { nonce: Option<&'a str> },
    /// An RFC 9068 JWT access token.
    Access,
}

/// Whose tokens are validated: the provider, its identity settings
/// (issuer, JWKS URL, algorithms) and the client id they must be for.
#[derive(Clone, Copy)]
pub struct Audience<'a> {
    pub provider: &'a Provider,
    pub settings: &'a IdentitySettings,
    pub client_id: &'a str,
}

/// Validates a token with the provider's JWKS, fetching it again once
/// when the token names a key the cached set lacks.
pub async fn validate_with_jwks(
    client: &HttpClient,
    jwks: &JwksCache,
    audience: Audience<'_>,
    token: &str,
    kind: TokenKind<'_>,
    now: i64,
) -> Result<Claims, IdentityError> {
    let Audience {
        provider,
        settings,
        client_id,
    } = audience;
    let url = settings.jwks_url.as_ref().ok_or_else(|| {
        config(
            provider,
            "no JWKS: identity.jwks_url is not set and discovery announced no jwks_uri",
        )
    })?;
    let nonce = match kind {
        TokenKind::Id { nonce } => nonce,
        TokenKind::Access => None,
    };
    let expected = expected(provider, settings, client_id, nonce, now)?;
    let check = |set: &jsonwebtoken::jwk::JwkSet| match kind {
        TokenKind::Access => token::validate_access_token(token, set, &expected),
        TokenKind::Id { .. } => token::validate_id_token(token, set, &expected),
    };
    let set = jwks
        .get(client, url, false)
        .await
        .map_err(IdentityError::Read)?;
    match check(&set) {
        Err(IdentityError::UnknownKid(_)) => {
            let set = jwks
                .get(client, url, true)
                .await
                .map_err(IdentityError::Read)?;
            check(&set)
        }
        other => other,
    }
}
