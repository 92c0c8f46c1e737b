//! Consent: making a link by the OAuth 2.0 authorization code flow with
//! PKCE (RFC 6749 §4.1, RFC 7636 S256 always, `nonce` when `openid` is in
//! scope), or by the OAuth 1.0a three-legged flow (`oauth1`).
//!
//! `begin` makes a flow (fresh state, verifier, nonce; the state stored
//! only as its hash, the others sealed by the vault; ten minutes to live)
//! and returns the URL to send the patient to; `prepare` is its half that
//! stores nothing, which an invitation's acceptance (`invite::accept`)
//! stores in the transaction that spends the invitation. `complete` takes the query
//! the provider sent back to the redirect URI, finds the flow by its state
//! (once: a replayed callback finds it used), exchanges the code at the
//! token endpoint with the provider's client authentication, and hands
//! the answer to `after_exchange`: the wrong-patient guard reads and
//! compares the remote identity first (`judge`), then the link is stored
//! as `link add` does (a `needs_relink` link keeps its id) in its final
//! state — active, or held with its `identity_mismatch` — in one store
//! transaction with the flow's end and the audit rows. An identity that
//! cannot be established stores nothing, and the provider is asked to
//! revoke the tokens it just issued (RFC 7009, where it offers that).
//! Every step is an audit row without a secret: `consent.start`,
//! `consent.callback`, `consent.denied`, `consent.failed`,
//! `consent.exchanged`, `consent.linked`, `identity.match|held`.
//!
//! `resolve` gives the client and the authorization endpoint one consent
//! uses, both resolved as pulls resolve them (`pull::client`): configured
//! over discovered (`discover = true`, the store's discovery cache), a
//! configured client over the one rxsync registered. The same resolved
//! value goes to `begin` and to `complete`.
//!
//! The engine knows nothing of where the callback arrives: `rxsync link
//! start` listens on the provider's loopback redirect URI (`loopback`), the
//! review app can route `[review] public_url` + `/oauth/callback` to the
//! same `complete`. It writes only through the store's `Writer`, and never
//! prints: a failure is a `ConsentError` saying which.

pub mod authorize;
pub mod invite;
pub mod loopback;
pub mod oauth1;

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;

use crate::config::{ConsentSettings, Oauth2Grant, Oauth2Settings, Provider, ProviderAuth};
use crate::domain::{PatientId, ProviderId};
use crate::fetch::auth::redact;
use crate::fetch::http::HttpClient;
use crate::fetch::oauth2::{Client, CodeTokens, ExchangeError, exchange_code};
use crate::store::{FlowLookup, LinkSecrets, NewFlow, NewLink, StoreError, TakenFlow, Writer};
use crate::vault::VaultKey;
use authorize::{CallbackOutcome, RequestSecrets};

/// How long a flow waits for its callback.
pub const FLOW_LIFETIME: Duration = Duration::from_secs(600);

/// Why a consent did not make a link. No variant carries a code, a
/// token, a state, a verifier or a nonce.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The provider cannot run a consent as configured.
    #[error("provider {provider}: {problem}")]
    NotConfigured { provider: String, problem: String },
    /// The patient (or the provider) said no: `error=access_denied` or another OAuth error.
    #[error("the provider refused the authorization: {code}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        code: String,
        description: Option<String>,
    },
    /// The callback's `state` belongs to no flow of this provider.
    #[error("the callback's state matches no consent started here (a forged or mixed-up callback)")]
    WrongState,
    /// The callback has no `state` at all.
    #[error("the callback carries no state")]
    NoState,
    /// The flow was already used by an earlier callback.
    #[error("this callback was already used (consent {flow}): a replayed callback")]
    Replayed { flow: String },
    /// The flow's ten minutes had passed.
    #[error("the consent {flow} expired before the provider called back; start again")]
    Expired { flow: String },
    /// The callback's query cannot be read.
    #[error("the callback cannot be read: {0}")]
    Malformed(#[from] authorize::CallbackError),
    /// The token endpoint refused or failed the code exchange.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// OAuth 1.0a: the request token or access token request failed.
    #[error(transparent)]
    TokenRequest(#[from] crate::fetch::oauth1_flow::TokenRequestError),
    /// OAuth 1.0a: the callback's `oauth_token` is not the request token this consent got.
    #[error(
        "the callback's oauth_token is not the request token of this consent (a forged or mixed-up callback)"
    )]
    WrongToken,
    /// OAuth 1.0a: the callback carries no `oauth_verifier` (the patient did not authorize).
    #[error(
        "the callback carries no oauth_verifier: the provider did not authorize the request token"
    )]
    NoVerifier,
    /// The provider granted scopes that were not asked for: no link, and
    /// the tokens are revoked where the provider can.
    #[error("the provider granted scopes rxsync did not ask for ({0})")]
    Overgranted(String),
    /// The client's secret or key cannot be read.
    #[error("{0}")]
    Client(String),
    /// The token answer names a remote patient no request could carry.
    #[error(
        "the provider's token answer names the patient \"{0}\", which is not a usable id (empty, over 256 characters, with control characters, or at a FHIR provider not a FHIR id: letters, digits, '-' and '.', at most 64)"
    )]
    BadRemotePatient(String),
    /// A FHIR provider's token answer names no remote patient (no
    /// `patient`, no ID token `fhirUser` naming a Patient on its FHIR
    /// base): the pulls would not know whose records to ask for.
    #[error(
        "no link was made: the provider's token answer names no patient (no \"patient\" field, and no ID token fhirUser naming a Patient on {base}){}",
        .fhir_user.as_deref().map(|f| format!("; the ID token's fhirUser is {f:?}")).unwrap_or_default()
    )]
    NoRemotePatient {
        base: String,
        fhir_user: Option<String>,
    },
    /// The patient's identity at the provider could not be established
    /// (an ID token that fails validation, an inactive token, an identity
    /// endpoint that cannot be read): no link was stored, and the tokens
    /// just issued were dropped (`dropped` says whether the provider was
    /// asked to revoke them).
    #[error("no link was made: the patient's identity at the provider could not be established ({error}){}", .dropped.as_ref().map(|d| format!("; {d}")).unwrap_or_default())]
    Identity {
        error: crate::identity::IdentityError,
        dropped: Option<Dropped>,
    },
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConsentError {
    /// The error with what became of the tokens it left unstored.
    fn with_dropped(self, d: Dropped) -> ConsentError {
        match self {
            ConsentError::Identity { error, .. } => ConsentError::Identity {
                error,
                dropped: Some(d),
            },
            other => other,
        }
    }
}

/// What became of tokens a consent obtained and did not store.
#[derive(Debug, Clone)]
pub enum Dropped {
    /// The provider's RFC 7009 endpoint accepted the revocation.
    Revoked,
    /// The provider has no revocation endpoint.
    NoEndpoint,
    /// The revocation request failed (its words, without a secret).
    Failed(String),
    /// OAuth 1.0a defines no revocation.
    NotOffered,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::Revoked => f.write_str("the provider was asked to revoke the token it had just issued"),
            Dropped::NoEndpoint => f.write_str(
                "the provider has no revocation endpoint (auth.revocation_url), so its token was only dropped",
            ),
            Dropped::Failed(e) => write!(f, "revoking the token at the provider failed ({e}), so it was only dropped"),
            Dropped::NotOffered => f.write_str("OAuth 1.0a has no revocation, so the token was only dropped"),
        }
    }
}

impl Dropped {
    /// As the audit records it.
    fn as_str(&self) -> &'static str {
        match self {
            Dropped::Revoked => "revoked",
            Dropped::NoEndpoint => "no revocation endpoint",
            Dropped::Failed(_) => "revocation failed",
            Dropped::NotOffered => "no revocation in OAuth 1.0a",
        }
    }
}

/// The client and the authorization endpoint one consent uses.
#[derive(Debug)]
pub struct ConsentClient {
    /// Token endpoint, client id and proof (`fetch::oauth2::Client::resolve`).
    pub client: Client,
    /// Configured `authorize_url`, else the discovered `authorization_endpoint`.
    pub authorize_url: Url,
}

/// Resolves the client and the authorization endpoint of `provider` for a
/// consent. Discovery is read (or taken from the store's cache) only when
/// `discover = true` and an endpoint is not configured.
pub async fn resolve(
    writer: &Writer,
    key: &Arc<VaultKey>,
    http: &HttpClient,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    provider: &Provider,
) -> Result<ConsentClient, ConsentError> {
    let (o, consent) = consent_settings(provider)?;
    let not = |problem: String| ConsentError::NotConfigured {
        provider: provider.id.to_string(),
        problem,
    };
    let discovered =
        if provider.discover && (o.token_url.is_none() || consent.authorize_url.is_none()) {
            crate::pull::client::endpoints(writer, http, provider, &mut Vec::new())
                .await
                .map_err(ConsentError::Client)?
        } else {
            None
        };
    let authorize_url = consent
        .authorize_url
        .clone()
        .or_else(|| {
            discovered
                .as_ref()
                .and_then(|d| d.authorization_endpoint.clone())
        })
        .ok_or_else(|| {
            not(format!(
                "no authorization endpoint: auth.authorize_url is not set and discovery at {} announced no authorization_endpoint; set auth.authorize_url",
                redact(&provider.base_url)
            ))
        })?;
    let client =
        crate::pull::client::resolve_client(writer, key, env, provider, o, discovered.as_ref())
            .await
            .map_err(ConsentError::Client)?;
    Ok(ConsentClient {
        client,
        authorize_url,
    })
}

/// A started flow: where to send the patient.
#[derive(Debug)]
pub struct Started {
    pub flow: String,
    /// The authorization URL. It holds the state: show it only to the patient.
    pub url: Url,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A link made by consent.
pub struct Linked {
    pub link: crate::domain::LinkId,
    pub relinked: bool,
    pub flow: String,
    /// What the wrong-patient guard found (`Held`: the link was stored
    /// held, and no regimen is written from it until a clinician confirms it).
    pub identity: crate::identity::NewLinkOutcome,
}

/// The provider's OAuth 2.0 and consent settings, or why it cannot consent.
pub fn consent_settings(
    provider: &Provider,
) -> Result<(&Oauth2Settings, &ConsentSettings), ConsentError> {
    let not = |problem: &str| ConsentError::NotConfigured {
        provider: provider.id.to_string(),
        problem: problem.to_string(),
    };
    let ProviderAuth::Oauth2(o) = &provider.auth else {
        return Err(not(
            "consent by OAuth 2.0 needs scheme = \"oauth2\" (OAuth 1.0a consent is another flow)",
        ));
    };
    if o.grant != Oauth2Grant::AuthorizationCode {
        return Err(not(
            "grant = \"client_credentials\" links no patient; consent needs authorization_code",
        ));
    }
    let consent = o.consent.as_ref().ok_or_else(|| {
        not("[providers.auth] has no authorize_url (the provider's authorization endpoint; or set discover = true to read it from the provider)")
    })?;
    Ok((o, consent))
}

/// Whether `provider` can make a link by consent, by either flow (OAuth
/// 2.0 authorization code, OAuth 1.0a three-legged), or why not.
pub fn can_consent(provider: &Provider) -> Result<(), ConsentError> {
    match &provider.auth {
        ProviderAuth::Oauth1(_) => oauth1::oauth1_consent_settings(provider).map(|_| ()),
        _ => consent_settings(provider).map(|_| ()),
    }
}

/// Starts a consent flow for `patient` at `provider`, to come back at
/// `redirect_uri`: stores it and returns the authorization URL.
pub async fn begin(
    writer: &Writer,
    key: &VaultKey,
    provider: &Provider,
    resolved: &ConsentClient,
    patient: &PatientId,
    redirect_uri: &Url,
    actor: &str,
) -> Result<Started, ConsentError> {
    let (flow, started) = prepare(key, provider, resolved, patient, redirect_uri)?;
    let actor = actor.to_string();
    writer
        .run(move |store| store.start_consent_flow(&flow.as_new(), &actor))
        .await?;
    Ok(started)
}

/// A flow made but not yet stored: what the store keeps of it (the state
/// as its hash, the verifier and nonce sealed). Owned, so that a writer
/// job can take it.
pub(crate) struct PreparedFlow {
    id: String,
    provider: ProviderId,
    patient: PatientId,
    state_sha256: String,
    key_id: String,
    pkce_verifier: Vec<u8>,
    nonce: Option<Vec<u8>>,
    redirect_uri: String,
    expires_at: String,
    detail: serde_json::Value,
}

impl PreparedFlow {
    /// The store's view of it.
    pub(crate) fn as_new(&self) -> NewFlow<'_> {
        NewFlow {
            id: &self.id,
            provider: &self.provider,
            patient: &self.patient,
            state_sha256: &self.state_sha256,
            key_id: &self.key_id,
            pkce_verifier: self.pkce_verifier.clone(),
            nonce: self.nonce.clone(),
            redirect_uri: &self.redirect_uri,
            expires_at: &self.expires_at,
            detail: self.detail.clone(),
        }
    }
}

/// Makes a flow's secrets and its authorization URL, without storing it:
/// `begin` stores it alone, an invitation's acceptance together with
/// spending the invitation (`invite::accept`).
pub(crate) fn prepare(
    key: &VaultKey,
    provider: &Provider,
    resolved: &ConsentClient,
    patient: &PatientId,
    redirect_uri: &Url,
) -> Result<(PreparedFlow, Started), ConsentError> {
    let (o, consent) = consent_settings(provider)?;
    let secrets = RequestSecrets::generate(authorize::wants_nonce(&o.scopes));
    let url = authorize::authorization_url(
        o,
        consent,
        &resolved.authorize_url,
        &resolved.client.client_id,
        redirect_uri,
        &secrets,
    );
    let flow = authorize::random_urlsafe(16);
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(FLOW_LIFETIME).unwrap_or(chrono::Duration::minutes(10));
    let pkce_verifier = key.seal_flow(&flow, "pkce_verifier", secrets.verifier.expose_secret());
    let nonce = secrets
        .nonce
        .as_ref()
        .map(|n| key.seal_flow(&flow, "nonce", n.expose_secret()));
    let detail = json!({
        "provider": provider.id.as_str(),
        "authorize_url": redact(&resolved.authorize_url),
        "redirect_uri": redact(redirect_uri),
        "scope": o.scopes.join(" "),
        "pkce": "S256",
        "nonce": nonce.is_some(),
        "prompt_login": consent.prompt_login,
        "expires_at": crate::store::rfc3339_at(expires_at),
    });
    let prepared = PreparedFlow {
        id: flow.clone(),
        provider: provider.id.clone(),
        patient: patient.clone(),
        state_sha256: authorize::state_sha256(secrets.state.expose_secret()),
        key_id: key.id().to_string(),
        pkce_verifier,
        nonce,
        redirect_uri: redirect_uri.to_string(),
        expires_at: crate::store::rfc3339_at(expires_at),
        detail,
    };
    Ok((
        prepared,
        Started {
            flow,
            url,
            expires_at,
        },
    ))
}

/// Ends a flow that got no callback (a timeout, an interrupted `link start`):
/// it can no longer be taken.
pub async fn abandon(
    writer: &Writer,
    flow: &str,
    why: &str,
    actor: &str,
) -> Result<(), ConsentError> {
    let (flow, why, actor) = (flow.to_string(), why.to_string(), actor.to_string());
    writer
        .run(move |store| {
            store.end_consent_flow(
                &flow,
                "abandoned",
                None,
                &actor,
                "consent.failed",
                &json!({"step": "callback", "error": why}),
            )
        })
        .await?;
    Ok(())
}

/// Finishes a consent from the callback's query: the flow by its state
/// (once), the provider's answer, the code exchange, the link.
pub async fn complete(
    writer: &Writer,
    key: &Arc<VaultKey>,
    provider: &Provider,
    resolved: &ConsentClient,
    http: &reqwest::Client,
    query: &str,
    actor: &str,
) -> Result<Linked, ConsentError> {
    let (o, _) = consent_settings(provider)?;
    let callback = authorize::parse_callback(query);
    let state = match &callback {
        Ok(c) => c.state.clone(),
        // A malformed callback still names its state when it can.
        Err(_) => url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "state")
            .map(|(_, v)| SecretString::from(v.into_owned())),
    };
    let detail = json!({
        "provider": provider.id.as_str(),
        "has_code": matches!(&callback, Ok(c) if matches!(c.outcome, CallbackOutcome::Code(_))),
        "error": match &callback {
            Ok(authorize::Callback { outcome: CallbackOutcome::Error { code, .. }, .. }) => Some(code.clone()),
            Err(e) => Some(e.to_string()),
            _ => None,
        },
    });
    let Some(state) = state else {
        return Err(ConsentError::NoState);
    };
    let hash = authorize::state_sha256(state.expose_secret());
    let flow = take_flow(writer, hash, provider, actor, detail).await?;
    let fail = |outcome: &'static str, action: &'static str, detail: serde_json::Value| {
        end_unlinked(writer, &flow.id, actor, outcome, action, detail)
    };
    let code = match callback {
        Err(e) => {
            fail(
                "failed",
                "consent.failed",
                json!({"step": "callback", "error": e.to_string()}),
            )
            .await;
            return Err(e.into());
        }
        Ok(authorize::Callback {
            outcome: CallbackOutcome::Error { code, description },
            ..
        }) => {
            fail(
                "denied",
                "consent.denied",
                json!({"error": code, "error_description": description}),
            )
            .await;
            return Err(ConsentError::Denied { code, description });
        }
        Ok(authorize::Callback {
            outcome: CallbackOutcome::Code(code),
            ..
        }) => code,
    };
    let exchanged = async {
        let verifier =
            key.open_flow(&flow.id, "pkce_verifier", &flow.key_id, &flow.pkce_verifier)?;
        let nonce = flow
            .nonce
            .as_deref()
            .map(|n| key.open_flow(&flow.id, "nonce", &flow.key_id, n))
            .transpose()?;
        let tokens = exchange_code(
            http,
            &resolved.client,
            &code,
            &verifier,
            &flow.redirect_uri,
            provider.limits.timeout,
        )
        .await?;
        Ok::<_, ConsentError>((tokens, nonce))
    }
    .await;
    let (tokens, nonce) = match exchanged {
        Ok(t) => t,
        Err(e) => {
            fail(
                "failed",
                "consent.failed",
                json!({"step": "exchange", "url": redact(&resolved.client.token_url), "error": e.to_string()}),
            )
            .await;
            return Err(e);
        }
    };
    let (access_token, refresh_token) = (tokens.access_token.clone(), tokens.refresh_token.clone());
    let unasked = authorize::unasked_scopes(&o.scopes, tokens.scope.as_deref());
    let linked = if !o.scopes.is_empty() && !unasked.is_empty() {
        Err(ConsentError::Overgranted(unasked.join(" ")))
    } else {
        after_exchange(
            writer,
            key,
            provider,
            &resolved.client,
            &flow,
            tokens,
            nonce,
            actor,
        )
        .await
    };
    match linked {
        Ok(linked) => Ok(linked),
        Err(e) => {
            // Nothing was stored: the tokens just issued are of no use to
            // anyone, so the provider is asked to forget them.
            let dropped = revoke_unstored(
                http,
                &resolved.client,
                provider,
                &access_token,
                refresh_token.as_ref(),
            )
            .await;
            let step = match e {
                ConsentError::Identity { .. } => "identity",
                ConsentError::Overgranted(_) => "scope",
                _ => "link",
            };
            fail(
                "failed",
                "consent.failed",
                json!({"step": step, "error": e.to_string(), "token": dropped.as_str()}),
            )
            .await;
            Err(e.with_dropped(dropped))
        }
    }
}

/// RFC 7009 for tokens a consent did not store: the refresh token (the
/// grant) and the access token, where the provider has a revocation endpoint.
async fn revoke_unstored(
    http: &reqwest::Client,
    client: &Client,
    provider: &Provider,
    access_token: &SecretString,
    refresh_token: Option<&SecretString>,
) -> Dropped {
    let Some(url) = &client.revocation_url else {
        return Dropped::NoEndpoint;
    };
    let timeout = provider.limits.timeout;
    let mut failed = None;
    let tokens = refresh_token
        .map(|r| (r, "refresh_token"))
        .into_iter()
        .chain([(access_token, "access_token")]);
    for (token, hint) in tokens {
        if let Err(e) = crate::fetch::oauth2::revoke(http, client, url, token, hint, timeout).await
        {
            failed.get_or_insert(e);
        }
    }
    match failed {
        None => Dropped::Revoked,
        Some(e) => {
            let mut secrets = crate::fetch::redact::Secrets::new();
            secrets.add(access_token.expose_secret());
            if let Some(r) = refresh_token {
                secrets.add(r.expose_secret());
            }
            client.proof.add_secrets(&client.client_id, &mut secrets);
            Dropped::Failed(secrets.scrub(&e))
        }
    }
}

/// The flow a callback's state (its SHA-256) names, taken once for
/// `provider` with the callback audited as `detail`; the refusals say why
/// none is (unknown, used, expired). Both flows (OAuth 2.0 `state`, OAuth
/// 1.0a request token) end their callbacks here.
pub(crate) async fn take_flow(
    writer: &Writer,
    state_hash: String,
    provider: &Provider,
    actor: &str,
    detail: serde_json::Value,
) -> Result<TakenFlow, ConsentError> {
    let (provider_id, actor) = (provider.id.clone(), actor.to_string());
    let lookup = writer
        .run(move |store| store.take_consent_flow(&state_hash, &provider_id, &actor, &detail))
        .await?;
    match lookup {
        FlowLookup::Taken(f) => Ok(f),
        FlowLookup::Unknown => Err(ConsentError::WrongState),
        FlowLookup::Used { flow } => Err(ConsentError::Replayed { flow }),
        FlowLookup::Expired { flow } => Err(ConsentError::Expired { flow }),
    }
}

/// Ends a taken flow that made no link (`outcome`, audited as `action`).
/// The failure is what the caller reports; a store error here would only
/// hide it, so it is logged instead.
pub(crate) async fn end_unlinked(
    writer: &Writer,
    flow: &str,
    actor: &str,
    outcome: &'static str,
    action: &'static str,
    detail: serde_json::Value,
) {
    let (flow, actor) = (flow.to_string(), actor.to_string());
    if let Err(e) = writer
        .run(move |store| store.end_consent_flow(&flow, outcome, None, &actor, action, &detail))
        .await
    {
        tracing::warn!(error = %e, "cannot record the consent's end");
    }
}

/// The patient's id at the provider from a token answer (SMART's
/// `patient`, OAuth 1.0a's `patient=`): none given means the local id (as
/// `link add` does); one given but unusable (empty, over 256 characters,
/// control characters; at a FHIR provider anything but a FHIR id) makes no
/// link — falling back to the local id would have the pulls ask the
/// provider for another patient's records, and a FHIR search for
/// `patient=1,2` asks for two patients.
pub(crate) fn remote_patient(
    given: Option<&str>,
    local: &PatientId,
    kind: crate::fetch::settings::ProviderKind,
) -> Result<String, ConsentError> {
    let usable = |p: &str| match kind {
        crate::fetch::settings::ProviderKind::Fhir => is_fhir_id(p),
        crate::fetch::settings::ProviderKind::Ccr => {
            !p.is_empty() && p.len() <= 256 && !p.chars().any(char::is_control)
        }
    };
    match given {
        None => Ok(local.to_string()),
        Some(p) if usable(p) => Ok(p.to_string()),
        Some(p) => Err(ConsentError::BadRemotePatient(
            p.chars().take(40).flat_map(char::escape_debug).collect(),
        )),
    }
}

/// A FHIR resource id (FHIR R4 `id`: `[A-Za-z0-9\-\.]{1,64}`), and not
/// `.` or `..`, which a URL would resolve to another path.
fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && id != "."
        && id != ".."
}

/// The remote patient of an OAuth 2.0 consent: the token answer's
/// `patient` (checked by `remote_patient`), else the Patient the validated
/// ID token's `fhirUser` names on the provider's FHIR base (`Patient/ID`,
/// or that URL under `base_url`). A FHIR provider with neither makes no
/// link; a CCR provider falls back to the local id, as `link add` does.
pub(crate) fn oauth2_remote_patient(
    provider: &Provider,
    given: Option<&str>,
    id_token: Option<&crate::identity::Claims>,
    local: &PatientId,
) -> Result<String, ConsentError> {
    if given.is_some() {
        return remote_patient(given, local, provider.kind);
    }
    let fhir_user = id_token
        .and_then(|c| c.get("fhirUser"))
        .and_then(serde_json::Value::as_str);
    let base = provider.base_url.as_str().trim_end_matches('/');
    let named = fhir_user.and_then(|f| {
        let relative = match f.strip_prefix(base) {
            Some(rest) => rest.strip_prefix('/')?,
            None if !f.contains("://") => f,
            None => return None,
        };
        let id = relative.strip_prefix("Patient/")?;
        (!id.contains('/')).then_some(id)
    });
    match (named, provider.kind) {
        (Some(id), _) => remote_patient(Some(id), local, provider.kind),
        (None, crate::fetch::settings::ProviderKind::Ccr) => Ok(local.to_string()),
        (None, crate::fetch::settings::ProviderKind::Fhir) => Err(ConsentError::NoRemotePatient {
            base: redact(&provider.base_url),
            fhir_user: fhir_user
                .map(|f| f.chars().take(200).flat_map(char::escape_debug).collect()),
        }),
    }
}

/// The wrong-patient guard on a link about to be stored (design invariant
/// 7): the ID token validated against the provider's JWKS with the flow's
/// nonce, the remote identity read with the new credential and compared.
/// Nothing is written: the verdict goes to the store with the link, in
/// one transaction. Providers without `[providers.identity]` are not
/// compared, but an ID token that came back is validated all the same
/// (with the JWKS `discover = true` finds, else its claims alone). Both
/// flows call it.
pub(crate) async fn judge(
    writer: &Writer,
    provider: &Provider,
    patient: &PatientId,
    credential: &dyn crate::fetch::auth::Credential,
    oauth2: Option<crate::identity::NewOauth2<'_>>,
    remote_patient: Option<&str>,
) -> Result<crate::identity::Judged, ConsentError> {
    let id_token = oauth2.as_ref().is_some_and(|o| o.id_token.is_some());
    if provider.identity.is_none() && !id_token {
        return Ok(crate::identity::Judged {
            outcome: crate::identity::NewLinkOutcome::Unchecked,
            write: None,
            id_token: None,
        });
    }
    let client = crate::fetch::http::HttpClient::for_provider(provider)
        .map_err(|e| ConsentError::Client(e.to_string()))?;
    let local = {
        let pid = patient.clone();
        writer
            .run(move |s| {
                s.patient(&pid)?.ok_or_else(|| StoreError::NotFound {
                    what: "patient",
                    id: pid.to_string(),
                })
            })
            .await?
    };
    // Discovery (`discover = true`: the cached document, else read now)
    // gives what `[providers.identity]` leaves out — the JWKS, issuer and
    // endpoints — and the keys of an ID token none are configured for.
    let keys_configured = provider
        .identity
        .as_ref()
        .is_some_and(|s| s.jwks_url.is_some() && s.issuer.is_some());
    let wants_discovery = provider
        .identity
        .as_ref()
        .is_some_and(|s| s.wants_discovery())
        || (id_token && !keys_configured);
    let discovered = if wants_discovery {
        crate::pull::client::endpoints(writer, &client, provider, &mut Vec::new()).await
    } else {
        Ok(None)
    };
    let jwks = crate::fetch::jwks::JwksCache::default();
    // The identity reads' trail is recorded with the link: scrubbed of the
    // new credential (and the ID token) by value first.
    let mut secrets = crate::fetch::redact::Secrets::new();
    credential.secrets(&mut secrets);
    if let Some(o) = &oauth2 {
        secrets.add(o.access_token.expose_secret());
        if let Some(t) = o.id_token {
            secrets.add(t);
        }
        o.client_auth
            .proof
            .add_secrets(&o.client_auth.client_id, &mut secrets);
    }
    let mut judged = crate::identity::judge_new_link(crate::identity::NewLinkCheck {
        provider,
        client: &client,
        jwks: &jwks,
        patient: &local,
        credential,
        oauth2,
        remote_patient,
        discovered: discovered
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone),
    })
    .await
    .map_err(|error| ConsentError::Identity {
        error,
        dropped: None,
    })?;
    if let Some(w) = &mut judged.write {
        w.accesses = w.accesses.iter().map(|a| secrets.scrub_json(a)).collect();
    }
    Ok(judged)
}

/// After a successful code exchange: the identity guard first, then the
/// link stored as `link add` does (a `needs_relink` link of the same
/// patient and provider keeps its id) in its final state — active, or held
/// with its `identity_mismatch` exception — with the flow ended
/// `consent.linked`, all in one store transaction. The flow names the
/// provider; `client` is the one the code was exchanged with. On an error
/// nothing is stored (the caller ends the flow and drops the tokens).
#[allow(clippy::too_many_arguments)]
pub async fn after_exchange(
    writer: &Writer,
    key: &Arc<VaultKey>,
    provider: &Provider,
    client: &Client,
    flow: &TakenFlow,
    tokens: CodeTokens,
    nonce: Option<SecretString>,
    actor: &str,
) -> Result<Linked, ConsentError> {
    let patient = PatientId::parse(&flow.patient)
        .map_err(|e| StoreError::Corrupt(format!("consent flow {}: patient id: {e}", flow.id)))?;
    // A `patient` given but unusable stops the consent before any identity read.
    if tokens.patient.is_some() {
        remote_patient(tokens.patient.as_deref(), &patient, provider.kind)?;
    }
    let placement = match &provider.auth {
        ProviderAuth::Oauth2(o) => o.placement,
        ProviderAuth::Oauth1(o) => o.placement,
    };
    let bearer = crate::fetch::auth::Bearer {
        token: tokens.access_token.clone(),
        placement,
    };
    let id_token = tokens
        .id_token
        .as_ref()
        .map(|t| t.expose_secret().to_string());
    let expected_nonce = nonce.as_ref().map(|n| n.expose_secret().to_string());
    let judged = judge(
        writer,
        provider,
        &patient,
        &bearer,
        Some(crate::identity::NewOauth2 {
            access_token: &tokens.access_token,
            client_auth: client,
            id_token: id_token.as_deref(),
            expected_nonce: expected_nonce.as_deref(),
        }),
        tokens.patient.as_deref(),
    )
    .await?;
    let remote = oauth2_remote_patient(
        provider,
        tokens.patient.as_deref(),
        judged.id_token.as_ref(),
        &patient,
    )?;
    let detail = json!({
        "provider": flow.provider.as_str(),
        "remote_patient": remote,
        "scope": tokens.scope,
        "refresh_token": tokens.refresh_token.is_some(),
        "id_token": tokens.id_token.is_some(),
        "expires_at": tokens.expires_at.map(crate::store::rfc3339_at),
        "relink_of": flow.relink_of,
    });
    let grant_expires_at = crate::fetch::grant::grant_expiry(
        &tokens.fields,
        tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
    );
    let exchanged = json!({
        "provider": flow.provider.as_str(),
        "token_url": redact(&client.token_url),
        "fields": tokens.fields.keys().collect::<Vec<_>>(),
    });
    let link = LinkToStore {
        patient,
        remote,
        secrets: LinkSecrets::Oauth2 {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        },
        expires_at: tokens.expires_at,
        scope: tokens.scope,
        grant_expires_at,
    };
    store_linked(writer, key, flow, actor, link, exchanged, detail, judged).await
}

/// A consent's link, ready for its one store job.
pub(crate) struct LinkToStore {
    pub patient: PatientId,
    pub remote: String,
    pub secrets: LinkSecrets,
    /// OAuth 2.0 only, as `NewLink`'s.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub scope: Option<String>,
    pub grant_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The one store job that ends a consent, for both protocols
/// (`Store::store_consent_link`): `consent.exchanged`, the link in its
/// final state with the guard's verdict, and the flow's end, in one
/// transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_linked(
    writer: &Writer,
    key: &Arc<VaultKey>,
    flow: &TakenFlow,
    actor: &str,
    link: LinkToStore,
    exchanged: serde_json::Value,
    detail: serde_json::Value,
    judged: crate::identity::Judged,
) -> Result<Linked, ConsentError> {
    let (provider_id, flow_id, actor, key) = (
        flow.provider.clone(),
        flow.id.clone(),
        actor.to_string(),
        Arc::clone(key),
    );
    let write = judged.write;
    let (id, relinked) = writer
        .run(move |store| {
            store.store_consent_link(
                &flow_id,
                &actor,
                &exchanged,
                &NewLink {
                    patient: &link.patient,
                    provider: &provider_id,
                    remote_patient: &link.remote,
                    secrets: link.secrets,
                    expires_at: link.expires_at,
                    scope: link.scope,
                    grant_expires_at: link.grant_expires_at,
                },
                &key,
                write.as_ref(),
                detail,
            )
        })
        .await?;
    Ok(Linked {
        link: id,
        relinked,
        flow: flow.id.clone(),
        identity: judged.outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: &str) -> Provider {
        let extra = match kind {
            "ccr" => "document_url = \"ccr/{patient}\"\n",
            _ => "",
        };
        let text = format!(
            "[[providers]]\nid = \"p\"\nkind = \"{kind}\"\nbase_url = \"https://ehr.example/fhir\"\n{extra}[providers.auth]\nscheme = \"oauth2\"\ntoken_url = \"https://ehr.example/token\"\nclient_id = \"rx\"\n"
        );
        let path = std::path::Path::new("/c/config.toml");
        let raw = crate::config::parse(&text, path).expect("parses");
        let mut config =
            crate::config::resolve(raw, Some(path), std::path::Path::new("/"), &|_| None)
                .expect("resolves");
        config.providers.remove(0)
    }

    #[test]
    fn fhir_user_names_the_remote_patient_on_the_provider_s_base_only() {
        let local = PatientId::parse("P1").expect("id");
        let fhir = provider("fhir");
        let claims = |f: &str| {
            serde_json::json!({"fhirUser": f})
                .as_object()
                .cloned()
                .expect("object")
        };
        let of = |f: &str| oauth2_remote_patient(&fhir, None, Some(&claims(f)), &local);
        // The token answer's `patient` wins over fhirUser.
        let given = oauth2_remote_patient(&fhir, Some("t-1"), Some(&claims("Patient/9")), &local);
        assert_eq!(given.expect("given"), "t-1");
        assert_eq!(of("Patient/9").expect("relative"), "9");
        assert_eq!(
            of("https://ehr.example/fhir/Patient/9").expect("absolute"),
            "9"
        );
        for bad in [
            "https://other.example/fhir/Patient/9",
            "https://ehr.example/fhirx/Patient/9",
            "Practitioner/4",
            "Patient/9/_history/2",
        ] {
            let e = of(bad).expect_err(bad);
            assert!(
                matches!(e, ConsentError::NoRemotePatient { .. }),
                "{bad}: {e}"
            );
        }
        let none = oauth2_remote_patient(&fhir, None, None, &local).expect_err("none");
        assert!(none.to_string().contains("names no patient"), "{none}");
        // A CCR provider keeps the documented fallback: the local id.
        let ccr = provider("ccr");
        assert_eq!(
            oauth2_remote_patient(&ccr, None, None, &local).expect("ccr"),
            "P1"
        );
    }

    #[test]
    fn a_token_answer_s_patient_is_taken_when_usable_and_refused_when_not() {
        use crate::fetch::settings::ProviderKind::{Ccr, Fhir};
        let local = PatientId::parse("P1").expect("id");
        assert_eq!(remote_patient(None, &local, Fhir).expect("none"), "P1");
        assert_eq!(
            remote_patient(Some("abc-9"), &local, Fhir).expect("ok"),
            "abc-9"
        );
        assert_eq!(
            remote_patient(Some("a b/c"), &local, Ccr).expect("ok"),
            "a b/c"
        );
        // At a FHIR provider only a FHIR id: `1,2` would search for two
        // patients, `..` resolve to another path.
        for bad in [
            "1,2",
            "..",
            ".",
            "1?x",
            "1#x",
            "a/b",
            "%2e%2e",
            &"z".repeat(65),
        ] {
            let e = remote_patient(Some(bad), &local, Fhir).expect_err(bad);
            assert!(matches!(e, ConsentError::BadRemotePatient(_)), "{e}");
        }
        for bad in ["", "a\nb", "x\u{7f}", &"y".repeat(257)] {
            let e = remote_patient(Some(bad), &local, Ccr).expect_err(bad);
            assert!(matches!(e, ConsentError::BadRemotePatient(_)), "{e}");
            // The message quotes at most 40 characters, escaped.
            assert!(!e.to_string().contains('\n'), "{e}");
            assert!(e.to_string().len() < 300, "{e}");
        }
    }
}
