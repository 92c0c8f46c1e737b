//! The guard's shell: read the remote identity at the provider (through
//! `fetch`: the provider's own client, its redirect rules and limits),
//! validate tokens, compare, and hand the store what to record. Used by
//! the pull before a link's first import and whenever its identity
//! changes, and by the consent engine right after a link is made
//! (`check_new_link`).

use super::compare::{self, LocalIdentity, Verdict};
use super::read;
use super::settings::{IdentitySettings, RemoteSource};
use super::token::{self, Claims, Expected};
use super::{IdentityError, RemoteIdentity};
use crate::config::{Provider, ProviderAuth};
use crate::fetch::auth::{Credential, redact};
use crate::fetch::http::{Hop, HttpClient};
use crate::fetch::jwks::JwksCache;
use crate::store::{IdentityWrite, Patient, StoreError, Writer};
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
    /// The OAuth 2.0 client secret, for introspection.
    pub client_secret: Option<&'a SecretString>,
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
            let url = url.ok_or_else(|| config(cx.provider, "the identity endpoint is missing"))?;
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
    let url = o
        .introspection_url
        .as_ref()
        .ok_or_else(|| config(cx.provider, "auth.introspection_url is missing"))?;
    let token = cx
        .access_token
        .ok_or_else(|| IdentityError::Read("no access token to introspect".into()))?;
    let answer = crate::fetch::oauth2::introspect(
        cx.client.inner(),
        o,
        url,
        cx.client_secret,
        token,
        cx.client.limits().timeout,
    )
    .await
    .map_err(IdentityError::Read)?;
    read::check_introspection(&answer, &o.client_id, &o.scopes, cx.now)?;
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
    nonce: Option<&'a str>,
    now: i64,
) -> Result<Expected<'a>, IdentityError> {
    let ProviderAuth::Oauth2(o) = &provider.auth else {
        return Err(config(
            provider,
            "tokens are validated for oauth2 providers only",
        ));
    };
    Ok(Expected {
        issuer: settings
            .issuer
            .as_deref()
            .ok_or_else(|| config(provider, "identity.issuer is missing"))?,
        client_id: &o.client_id,
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

/// Validates a token with the provider's JWKS, fetching it again once
/// when the token names a key the cached set lacks.
pub async fn validate_with_jwks(
    client: &HttpClient,
    jwks: &JwksCache,
    provider: &Provider,
    settings: &IdentitySettings,
    token: &str,
    kind: TokenKind<'_>,
    now: i64,
) -> Result<Claims, IdentityError> {
    let url = settings
        .jwks_url
        .as_ref()
        .ok_or_else(|| config(provider, "identity.jwks_url is missing"))?;
    let nonce = match kind {
        TokenKind::Id { nonce } => nonce,
        TokenKind::Access => None,
    };
    let expected = expected(provider, settings, nonce, now)?;
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
    pub client_secret: Option<&'a SecretString>,
    /// The token response's `id_token`, and the nonce the authorization request sent.
    pub id_token: Option<&'a str>,
    pub expected_nonce: Option<&'a str>,
    /// The token response's `patient` (SMART).
    pub remote_patient: Option<&'a str>,
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
/// compares and records. A token that fails validation, or an inactive
/// introspection, revokes the link (its tokens dropped) and returns the
/// error: such a link must not be used.
pub async fn check_new_link(
    writer: &Writer,
    c: NewLinkCheck<'_>,
) -> Result<NewLinkOutcome, IdentityError> {
    let Some(settings) = &c.provider.identity else {
        return Ok(NewLinkOutcome::Unchecked);
    };
    let result = read_new_link(&c, settings).await;
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
    let claims = match c.id_token {
        Some(t) => Some(
            validate_with_jwks(
                c.client,
                c.jwks,
                c.provider,
                settings,
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
            c.provider,
            settings,
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
        client_secret: c.client_secret,
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
