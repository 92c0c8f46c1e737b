//! Consent by the OAuth 1.0a three-legged flow (RFC 5849 §2).
//!
//! `begin` asks the provider for temporary credentials (signed with the
//! consumer credentials and `oauth_callback`, in the header or the query
//! as configured), requires `oauth_callback_confirmed=true`, records a
//! flow keyed by the SHA-256 of the request token (the `state` column:
//! the request token plays the role of OAuth 2.0's `state`) and returns
//! the authorize URL. The request token secret is stored only sealed by
//! the vault (in the flow's `pkce_verifier` column, the flow's sealed
//! secret, bound to the flow id and the field `oauth1_request_secret`),
//! because the review app's callback arrives in another request; `link
//! start` also keeps it in memory, in `Oauth1Started`. `prepare` is
//! `begin` without storing the flow, for an invitation's acceptance
//! (`invite::accept_oauth1`).
//!
//! `complete` (`link start`) and `complete_stored` (the review app's
//! `/oauth/callback`, which finds the flow — once — by the hash of the
//! callback's `oauth_token` and opens the sealed secret) take the callback's query: its `oauth_token` must be the
//! request token (else the flow ends refused), an `oauth_problem` or
//! `error` is a denial, a missing `oauth_verifier` too; then the access
//! token request (signed with the request token credentials and the
//! verifier), the wrong-patient guard when the provider has
//! `[providers.identity]` (the identity read with the new token
//! credentials: a `profile:` or `patient:` source), and the link, stored
//! as `link add` stores an oauth1 link (a `needs_relink` link keeps its
//! id) in its final state — active, or held — in one store transaction.
//! An identity that cannot be read stores nothing. Every step is an audit row of the
//! same names as the OAuth 2.0 flow's, without a secret.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;

use super::{ConsentError, FLOW_LIFETIME, Linked, PreparedFlow, authorize};
use crate::config::{Oauth1Consent, Oauth1Settings, Provider, ProviderAuth};
use crate::domain::PatientId;
use crate::fetch::auth::redact;
use crate::fetch::oauth1_flow::{self, TokenPair};
use crate::store::{LinkSecrets, Writer};
use crate::vault::VaultKey;

/// A started three-legged flow: where to send the patient, and the
/// request token credentials (in memory only) to finish it with.
pub struct Oauth1Started {
    pub flow: String,
    /// `authorize_url?oauth_token=…`: show it only to the patient.
    pub url: Url,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    request: TokenPair,
}

/// The provider's OAuth 1.0a settings and three-legged endpoints, or why it cannot consent.
pub fn oauth1_consent_settings(
    provider: &Provider,
) -> Result<(&Oauth1Settings, &Oauth1Consent), ConsentError> {
    let not = |problem: &str| ConsentError::NotConfigured {
        provider: provider.id.to_string(),
        problem: problem.to_string(),
    };
    let ProviderAuth::Oauth1(o) = &provider.auth else {
        return Err(not("the three-legged flow needs scheme = \"oauth1\""));
    };
    let consent = o.consent.as_deref().ok_or_else(|| {
        not("[providers.auth] has no request_token_url, authorize_url and access_token_url (the three-legged flow's endpoints)")
    })?;
    Ok((o, consent))
}

/// The authorize URL for a request token (§2.2).
pub fn authorize_url(consent: &Oauth1Consent, request_token: &str) -> Url {
    let mut url = consent.authorize_url.clone();
    url.query_pairs_mut()
        .append_pair("oauth_token", request_token);
    url
}

/// Step one (§2.1): temporary credentials, then a flow to wait on.
#[allow(clippy::too_many_arguments)]
pub async fn begin(
    writer: &Writer,
    key: &VaultKey,
    provider: &Provider,
    patient: &PatientId,
    http: &reqwest::Client,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    callback: &Url,
    actor: &str,
) -> Result<Oauth1Started, ConsentError> {
    let (flow, started) =
        prepare(writer, key, provider, patient, http, env, callback, actor).await?;
    let actor = actor.to_string();
    writer
        .run(move |store| store.start_consent_flow(&flow.as_new(), &actor))
        .await?;
    Ok(started)
}

/// Step one without storing the flow: the request token (a refusal is
/// audited as `consent.failed`), the authorize URL and the flow to store —
/// its request token as its SHA-256, its request token secret sealed by
/// the vault. `begin` stores it alone, an invitation's acceptance
/// (`invite::accept_oauth1`) with spending the invitation.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn prepare(
    writer: &Writer,
    key: &VaultKey,
    provider: &Provider,
    patient: &PatientId,
    http: &reqwest::Client,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    callback: &Url,
    actor: &str,
) -> Result<(PreparedFlow, Oauth1Started), ConsentError> {
    let (o, consent) = oauth1_consent_settings(provider)?;
    let consumer = oauth1_flow::consumer_credentials(provider.id.as_str(), o, env)
        .map_err(ConsentError::Client)?;
    let asked = oauth1_flow::request_token(
        http,
        o,
        consent,
        &consumer,
        callback,
        provider.limits.timeout,
    )
    .await;
    let request = match asked {
        Ok(pair) => pair,
        Err(e) => {
            let (patient, provider_id, actor) =
                (patient.clone(), provider.id.clone(), actor.to_string());
            let detail = json!({
                "provider": provider_id,
                "protocol": "oauth1",
                "step": "request_token",
                "url": redact(&consent.request_token_url),
                "error": e.to_string(),
            });
            writer
                .run(move |store| {
                    store.audit_consent_attempt(
                        &patient,
                        &provider_id,
                        &actor,
                        "consent.failed",
                        &detail,
                    )
                })
                .await?;
            return Err(e.into());
        }
    };
    let url = authorize_url(consent, request.token.expose_secret());
    let flow = authorize::random_urlsafe(16);
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(FLOW_LIFETIME).unwrap_or(chrono::Duration::minutes(10));
    let detail = json!({
        "provider": provider.id.as_str(),
        "protocol": "oauth1",
        "request_token_url": redact(&consent.request_token_url),
        "authorize_url": redact(&consent.authorize_url),
        "oauth_callback": redact(callback),
        "signature_method": o.signature_method.as_str(),
        "placement": match o.placement {
            crate::fetch::oauth1::Placement::Header => "header",
            crate::fetch::oauth1::Placement::Query => "query",
        },
        "callback_confirmed": true,
        "expires_at": crate::store::rfc3339_at(expires_at),
    });
    let prepared = PreparedFlow {
        id: flow.clone(),
        provider: provider.id.clone(),
        patient: patient.clone(),
        state_sha256: authorize::state_sha256(request.token.expose_secret()),
        key_id: key.id().to_string(),
        // No PKCE in OAuth 1.0a: the flow's sealed secret is the request
        // token secret, which the callback (in another request, or another
        // process) needs to sign the access token request.
        pkce_verifier: key.seal_flow(&flow, REQUEST_SECRET, request.secret.expose_secret()),
        nonce: None,
        redirect_uri: callback.to_string(),
        expires_at: crate::store::rfc3339_at(expires_at),
        detail,
    };
    Ok((
        prepared,
        Oauth1Started {
            flow,
            url,
            expires_at,
            request,
        },
    ))
}

/// What the callback said, read without keeping a value longer than needed.
struct Callback {
    token: Option<String>,
    verifier: Option<SecretString>,
    /// `oauth_problem` or `error`, with `error_description` / `oauth_problem_advice`.
    refusal: Option<(String, Option<String>)>,
}

fn read_callback(query: &str) -> Callback {
    let mut c = Callback {
        token: None,
        verifier: None,
        refusal: None,
    };
    let mut description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "oauth_token" => c.token = Some(v.into_owned()),
            "oauth_verifier" if !v.is_empty() => {
                c.verifier = Some(SecretString::from(v.into_owned()))
            }
            "oauth_problem" | "error" => c.refusal = Some((printable(&v), None)),
            "error_description" | "oauth_problem_advice" => description = Some(printable(&v)),
            _ => {}
        }
    }
    if let Some((_, d)) = &mut c.refusal {
        *d = description;
    }
    c
}

impl Callback {
    /// The refusal's words with every known secret replaced — the
    /// callback's own `oauth_verifier` too.
    fn scrub(&mut self, secrets: &crate::fetch::redact::Secrets) {
        let mut secrets = secrets.clone();
        if let Some(v) = &self.verifier {
            secrets.add(v.expose_secret());
        }
        self.refusal = self
            .refusal
            .take()
            .map(|(code, d)| (secrets.scrub(&code), d.map(|d| secrets.scrub(&d))));
    }
}

/// A provider's words, kept short and printable (they end up in messages and the audit).
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Steps three and four (§2.2 callback, §2.3 token credentials) for the
/// process that started the flow and holds its request token (`link
/// start`): the link.
#[allow(clippy::too_many_arguments)]
pub async fn complete(
    writer: &Writer,
    key: &Arc<VaultKey>,
    provider: &Provider,
    http: &reqwest::Client,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    started: Oauth1Started,
    query: &str,
    actor: &str,
) -> Result<Linked, ConsentError> {
    let (o, _) = oauth1_consent_settings(provider)?;
    let mut callback = read_callback(query);
    // A refusal's words are the provider's: they may echo what it knows
    // (the consumer secret, the request token and its secret) under any name.
    let secrets = known_secrets(
        provider,
        o,
        env,
        &started.request.token,
        Some(&started.request.secret),
    );
    callback.scrub(&secrets);
    let ours = started.request.token.expose_secret();
    let token_matches = callback.token.as_deref() == Some(ours);
    let detail = json!({
        "provider": provider.id.as_str(),
        "protocol": "oauth1",
        "oauth_token": if token_matches { "matches the request token" } else if callback.token.is_some() { "another token" } else { "absent" },
        "has_verifier": callback.verifier.is_some(),
        "error": callback.refusal.as_ref().map(|(c, _)| c.clone()),
    });
    let hash = authorize::state_sha256(ours);
    let flow = super::take_flow(writer, hash, provider, actor, detail).await?;
    if !token_matches && callback.refusal.is_none() {
        let why = if callback.token.is_some() {
            "another oauth_token"
        } else {
            "no oauth_token"
        };
        super::end_unlinked(
            writer,
            &flow.id,
            actor,
            "failed",
            "consent.failed",
            json!({"step": "callback", "error": format!("the callback carries {why}")}),
        )
        .await;
        return Err(ConsentError::WrongToken);
    }
    finish(
        writer,
        key,
        provider,
        http,
        env,
        &flow,
        started.request,
        callback,
        actor,
    )
    .await
}

/// Steps three and four for a callback that arrives without the process
/// that started the flow (the review app's `/oauth/callback`): the flow is
/// found — once — by the SHA-256 of the callback's `oauth_token`, and the
/// request token secret opened from its sealed field.
#[allow(clippy::too_many_arguments)]
pub async fn complete_stored(
    writer: &Writer,
    key: &Arc<VaultKey>,
    provider: &Provider,
    http: &reqwest::Client,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    query: &str,
    actor: &str,
) -> Result<Linked, ConsentError> {
    let (o, _) = oauth1_consent_settings(provider)?;
    let mut callback = read_callback(query);
    let Some(token) = callback.token.clone().map(SecretString::from) else {
        return Err(ConsentError::WrongToken);
    };
    // The request token secret is not known before the flow is opened: the
    // refusal's words are scrubbed of what is known, and the callback's
    // audit row names only that there was a refusal.
    callback.scrub(&known_secrets(provider, o, env, &token, None));
    let detail = json!({
        "provider": provider.id.as_str(),
        "protocol": "oauth1",
        "oauth_token": "names this consent",
        "has_verifier": callback.verifier.is_some(),
        "refused": callback.refusal.is_some(),
    });
    let hash = authorize::state_sha256(token.expose_secret());
    let flow = super::take_flow(writer, hash, provider, actor, detail).await?;
    let secret = match key.open_flow(&flow.id, REQUEST_SECRET, &flow.key_id, &flow.pkce_verifier) {
        Ok(s) => s,
        Err(e) => {
            super::end_unlinked(
                writer,
                &flow.id,
                actor,
                "failed",
                "consent.failed",
                json!({"step": "callback", "error": e.to_string()}),
            )
            .await;
            return Err(e.into());
        }
    };
    callback.scrub(&known_secrets(provider, o, env, &token, Some(&secret)));
    let request = TokenPair {
        token,
        secret,
        other_fields: Vec::new(),
        patient: None,
    };
    finish(
        writer, key, provider, http, env, &flow, request, callback, actor,
    )
    .await
}

/// The vault's field name of a flow's sealed request token secret.
const REQUEST_SECRET: &str = "oauth1_request_secret";

/// What a provider's words may echo: the consumer secret, the request
/// token and (when known) its secret.
fn known_secrets(
    provider: &Provider,
    o: &Oauth1Settings,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    token: &SecretString,
    secret: Option<&SecretString>,
) -> crate::fetch::redact::Secrets {
    let mut secrets = crate::fetch::redact::Secrets::new();
    secrets.add(token.expose_secret());
    if let Some(s) = secret {
        secrets.add(s.expose_secret());
    }
    if let Ok(c) = oauth1_flow::consumer_credentials(provider.id.as_str(), o, env) {
        secrets.add(c.consumer_secret.expose_secret());
    }
    secrets
}

/// The taken flow's end: a refusal, a missing verifier, or the access
/// token request and the link. One path for both callers.
#[allow(clippy::too_many_arguments)]
async fn finish(
    writer: &Writer,
    key: &Arc<VaultKey>,
    provider: &Provider,
    http: &reqwest::Client,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    flow: &crate::store::TakenFlow,
    request: TokenPair,
    callback: Callback,
    actor: &str,
) -> Result<Linked, ConsentError> {
    let (o, consent) = oauth1_consent_settings(provider)?;
    let end = |outcome: &'static str, action: &'static str, detail: serde_json::Value| {
        super::end_unlinked(writer, &flow.id, actor, outcome, action, detail)
    };
    if let Some((code, description)) = callback.refusal {
        end(
            "denied",
            "consent.denied",
            json!({"error": code, "error_description": description}),
        )
        .await;
        return Err(ConsentError::Denied { code, description });
    }
    let Some(verifier) = callback.verifier else {
        end(
            "denied",
            "consent.denied",
            json!({"error": "no oauth_verifier"}),
        )
        .await;
        return Err(ConsentError::NoVerifier);
    };
    let exchanged = async {
        let consumer = oauth1_flow::consumer_credentials(provider.id.as_str(), o, env)
            .map_err(ConsentError::Client)?;
        let credentials = consumer.with_token(
            request.token.expose_secret().to_string(),
            request.secret.clone(),
        );
        Ok::<_, ConsentError>(
            oauth1_flow::access_token(
                http,
                o,
                consent,
                &credentials,
                &verifier,
                provider.limits.timeout,
            )
            .await?,
        )
    }
    .await;
    let access = match exchanged {
        Ok(a) => a,
        Err(e) => {
            end(
                "failed",
                "consent.failed",
                json!({"step": "exchange", "url": redact(&consent.access_token_url), "error": e.to_string()}),
            )
            .await;
            return Err(e);
        }
    };
    let linked = store_link(writer, key, provider, env, flow, access, actor).await;
    match linked {
        Ok(l) => Ok(l),
        Err(e) => {
            // Nothing was stored; OAuth 1.0a defines no revocation, so the
            // token credentials are only dropped.
            let step = if matches!(e, ConsentError::Identity { .. }) {
                "identity"
            } else {
                "link"
            };
            let dropped = super::Dropped::NotOffered;
            end(
                "failed",
                "consent.failed",
                json!({"step": step, "error": e.to_string(), "token": dropped.as_str()}),
            )
            .await;
            Err(e.with_dropped(dropped))
        }
    }
}

/// The wrong-patient guard (with the new token credentials), then the link
/// in its final state with the flow's end, in one store transaction.
async fn store_link(
    writer: &Writer,
    key: &Arc<VaultKey>,
    provider: &Provider,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    flow: &crate::store::TakenFlow,
    access: TokenPair,
    actor: &str,
) -> Result<Linked, ConsentError> {
    let patient = PatientId::parse(&flow.patient).map_err(|e| {
        crate::store::StoreError::Corrupt(format!("consent flow {}: patient id: {e}", flow.id))
    })?;
    let (o, consent) = oauth1_consent_settings(provider)?;
    let remote = super::remote_patient(access.patient.as_deref(), &patient, provider.kind)?;
    let signer = crate::fetch::auth::Oauth1Signer {
        credentials: oauth1_flow::consumer_credentials(provider.id.as_str(), o, env)
            .map_err(ConsentError::Client)?
            .with_token(
                access.token.expose_secret().to_string(),
                access.secret.clone(),
            ),
        method: o.signature_method,
        placement: o.placement,
        realm: o.realm.clone(),
        body_hash: o.body_hash,
        clock_skew: 0,
    };
    // The identity is read about the patient the token answer names, else
    // (as the pulls do) about the link's remote patient.
    let judged = super::judge(writer, provider, &patient, &signer, None, Some(&remote)).await?;
    let exchanged = json!({
        "provider": provider.id.as_str(),
        "protocol": "oauth1",
        "access_token_url": redact(&consent.access_token_url),
        "fields": access.other_fields,
    });
    let detail = json!({
        "provider": provider.id.as_str(),
        "protocol": "oauth1",
        "remote_patient": remote,
        "relink_of": flow.relink_of,
    });
    let link = super::LinkToStore {
        patient,
        remote,
        secrets: LinkSecrets::Oauth1 {
            token: access.token,
            token_secret: access.secret,
        },
        expires_at: None,
        scope: None,
        grant_expires_at: None,
    };
    super::store_linked(writer, key, flow, actor, link, exchanged, detail, judged).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_is_read_into_token_verifier_and_refusal() {
        let c = read_callback("oauth_token=rt&oauth_verifier=v1");
        assert_eq!(c.token.as_deref(), Some("rt"));
        assert!(c.verifier.is_some());
        assert!(c.refusal.is_none());
        let c = read_callback(
            "oauth_token=rt&oauth_problem=permission_denied&oauth_problem_advice=no%0Athanks",
        );
        assert_eq!(
            c.refusal,
            Some(("permission_denied".into(), Some("nothanks".into())))
        );
        let c = read_callback("error=access_denied");
        assert_eq!(c.refusal.map(|r| r.0).as_deref(), Some("access_denied"));
        assert!(
            read_callback("oauth_token=rt&oauth_verifier=")
                .verifier
                .is_none()
        );
    }
}
