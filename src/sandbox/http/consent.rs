//! The consent: `GET /oauth2/authorize` (RFC 6749 §4.1.1 with PKCE S256
//! required, RFC 7636) answered without a person — approved at once, or
//! denied when `login_hint=deny` — by a redirect to the client's
//! `redirect_uri` with `code` and the `state` as sent (or `error`); and the
//! `authorization_code` grant at the token endpoint, which checks the code
//! against its client, redirect URI and PKCE verifier once.
//!
//! `login_hint` otherwise names the patient the grant is for (default
//! `consent-patient`), so a test decides whose data the link reaches.
//! When the authorization request's scope holds `openid`, the exchange
//! also issues a signed ID token (RS256, `sandbox::identity`) for the
//! patient, to the client, with the request's `nonce`. `POST /admin/consent`
//! bends what the exchange answers: a broken ID token (`id_token_fault`:
//! another `nonce`, another `aud`, a `signature` that does not verify, an
//! `expired` token, another `issuer`) and an `access_grant_expiration`
//! (`grant_expires_in` seconds from the answer) on every token answer, a
//! `scope` wider than asked (`extra_scope`) on the code exchange, a code
//! exchange that leaves out SMART's `patient` (`omit_patient`; its ID token
//! then names the patient by `fhirUser` instead), and an introspection
//! that calls every token inactive (`introspection_inactive`), so that
//! tests see a provider that lies, overgrants, names its patient only in
//! the ID token, disowns its tokens, and a grant that ends.
//!
//! Requests that cannot be trusted to redirect (an unknown client, a
//! `redirect_uri` that is not an absolute http(s) URL) get a 400 page, not a
//! redirect (§4.1.2.1).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::codes::{CODE_TTL, PendingCode};
use super::super::config::ClientConfig;
use super::super::grants::NewGrant;
use super::super::identity::{self, IdTokenRequest};
use super::{Shared, Stats, lock, mint, now, reply};

/// The patient a consent is for when `login_hint` names none.
pub const DEFAULT_CONSENT_PATIENT: &str = "consent-patient";

/// `GET /oauth2/authorize`.
pub(crate) async fn authorize(State(app): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(n, _)| *n == k) {
            return reply::text(
                StatusCode::BAD_REQUEST,
                format!("the parameter {k} appears more than once\n"),
            );
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(client) = get("client_id").and_then(|id| app.client(id)) else {
        return reply::text(StatusCode::BAD_REQUEST, "unknown client_id\n");
    };
    let Some(redirect) = get("redirect_uri")
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none())
    else {
        return reply::text(
            StatusCode::BAD_REQUEST,
            "redirect_uri must be an absolute http(s) URL without a fragment\n",
        );
    };
    let back = |pairs: &[(&str, &str)]| {
        let mut to = redirect.clone();
        {
            let mut q = to.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(state) = get("state") {
                q.append_pair("state", state);
            }
        }
        reply::redirect(302, to.as_str())
    };
    let refuse = |error: &str, description: &str| {
        back(&[("error", error), ("error_description", description)])
    };
    if get("response_type") != Some("code") {
        return refuse(
            "unsupported_response_type",
            "only response_type=code is served",
        );
    }
    if get("code_challenge_method") != Some("S256") {
        return refuse(
            "invalid_request",
            "PKCE is required: code_challenge_method=S256",
        );
    }
    let Some(challenge) = get("code_challenge").filter(|c| c.len() == 43) else {
        return refuse(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters)",
        );
    };
    let patient = match get("login_hint") {
        Some("deny") => return refuse("access_denied", "the patient declined"),
        Some(p) => p,
        None => DEFAULT_CONSENT_PATIENT,
    };
    let code = mint();
    lock(&app.codes).issue(
        code.clone(),
        PendingCode {
            client_id: client.id.clone(),
            redirect_uri: redirect.to_string(),
            challenge: challenge.to_string(),
            patient: patient.to_string(),
            scope: get("scope").unwrap_or_default().to_string(),
            nonce: get("nonce").map(str::to_string),
            expires_at: now() + CODE_TTL,
        },
        now(),
    );
    back(&[("code", &code)])
}

/// `grant_type=authorization_code` for an authenticated client.
pub(super) fn exchange(
    app: &Shared,
    headers: &http::HeaderMap,
    client: &ClientConfig,
    code: Option<&str>,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Response {
    let Some(code) = code else {
        return reply::oauth2_error("invalid_request", "code is missing");
    };
    let redirect_uri = redirect_uri
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.to_string());
    let pending =
        match lock(&app.codes).redeem(code, &client.id, redirect_uri.as_deref(), verifier, now()) {
            Ok(p) => p,
            Err(e) => return reply::oauth2_error("invalid_grant", e.describe()),
        };
    let knobs = lock(&app.consent_knobs).clone();
    let scope = knobs.granted_scope(&pending.scope);
    let issued = lock(&app.grants).grant(
        NewGrant {
            client_id: &client.id,
            patient: &pending.patient,
            scope: &scope,
            expires_in: client.access_token_ttl,
            access_token_valid: true,
        },
        now(),
        &mut mint,
    );
    app.persist();
    Stats::bump(&app.stats.code_exchanges);
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
        "patient": issued.patient,
    });
    if let Some(refresh) = issued.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    if pending.scope.split(' ').any(|s| s == "openid") {
        match consent_id_token(app, headers, &pending, client, &knobs, &issued.patient) {
            Ok(t) => body["id_token"] = json!(t),
            Err(refusal) => return refusal,
        }
    }
    knobs.grant_expiration(&mut body, now());
    if knobs.omit_patient
        && let Some(o) = body.as_object_mut()
    {
        o.remove("patient");
    }
    reply::no_store(reply::json(StatusCode::OK, &body))
}

/// The issuer a token signed with `id_token_fault = "issuer"` names.
const ANOTHER_ISSUER: &str = "https://another-issuer.example";

/// How long before the exchange a token with `id_token_fault = "expired"`
/// is signed: its `exp` (600 s after signing) is then 600 s past, beyond a
/// client's clock skew allowance (rxsync's is 300 s).
const EXPIRED_BACKDATE_SECS: u64 = 1200;

/// The code exchange's ID token for the patient, to the client, with the
/// request's `nonce` — broken as `id_token_fault` says.
fn consent_id_token(
    app: &Shared,
    headers: &http::HeaderMap,
    pending: &PendingCode,
    client: &ClientConfig,
    knobs: &Knobs,
    patient: &str,
) -> Result<String, Response> {
    let fault = knobs.id_token_fault;
    let nonce = match fault {
        Some(IdTokenFault::Nonce) => Some("not-the-flow-nonce".to_string()),
        _ => pending.nonce.clone(),
    };
    let audience = match fault {
        Some(IdTokenFault::Aud) => "another-client",
        _ => client.id.as_str(),
    };
    let issuer = match fault {
        Some(IdTokenFault::Issuer) => ANOTHER_ISSUER.to_string(),
        _ => app.base_url(headers),
    };
    let signed_at = match fault {
        Some(IdTokenFault::Expired) => now().saturating_sub(EXPIRED_BACKDATE_SECS),
        _ => now(),
    };
    let fhir_user = knobs
        .omit_patient
        .then(|| format!("{}/fhir/Patient/{patient}", app.base_url(headers)));
    let asked = IdTokenRequest {
        alg: None,
        nonce,
        fhir_user,
    };
    let person = lock(&app.identities).person(&pending.patient);
    let token = identity::id_token(
        &person,
        &pending.patient,
        &issuer,
        audience,
        &asked,
        signed_at,
    )
    .map_err(|e| reply::admin_error(StatusCode::BAD_REQUEST, e))?;
    Ok(match fault {
        Some(IdTokenFault::Signature) => identity::break_signature(&token),
        _ => token,
    })
}

/// How an ID token is broken on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IdTokenFault {
    /// A `nonce` that is not the authorization request's.
    Nonce,
    /// An `aud` that is another client.
    Aud,
    /// A signature that does not verify: one bit of it flipped.
    Signature,
    /// An `exp` ten minutes past (signed twenty minutes before the exchange).
    Expired,
    /// An `iss` that is not the sandbox (`https://another-issuer.example`).
    Issuer,
}

/// What `POST /admin/consent` set; each call replaces all of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Knobs {
    /// Break the ID tokens of the next exchanges this way.
    #[serde(default)]
    pub id_token_fault: Option<IdTokenFault>,
    /// Answer `access_grant_expiration` (Unix seconds) this far ahead on
    /// every token answer (exchange, refresh, admin grant) and every
    /// active introspection answer.
    #[serde(default)]
    pub grant_expires_in: Option<u64>,
    /// Grant these scopes (space-separated) on top of those the
    /// authorization request asked for, at the next exchanges: a provider
    /// that over-grants.
    #[serde(default)]
    pub extra_scope: Option<String>,
    /// Leave SMART's `patient` out of the code exchange's answer; an ID
    /// token (with `openid`) names the patient by `fhirUser` instead.
    #[serde(default)]
    pub omit_patient: bool,
    /// Introspection answers `{"active": false}` for every token: a
    /// provider that no longer (or never) honours the token it issued.
    #[serde(default)]
    pub introspection_inactive: bool,
}

impl Knobs {
    /// The scope an exchange grants: the asked-for one, plus `extra_scope`.
    fn granted_scope(&self, asked: &str) -> String {
        match self.extra_scope.as_deref().map(str::trim) {
            Some(extra) if !extra.is_empty() => format!("{asked} {extra}").trim().to_string(),
            _ => asked.to_string(),
        }
    }

    /// Adds `access_grant_expiration` to a token answer when asked for.
    pub fn grant_expiration(&self, body: &mut Value, now: u64) {
        if let Some(secs) = self.grant_expires_in {
            body["access_grant_expiration"] = json!(now + secs);
        }
    }
}

/// `POST /admin/consent`: sets the knobs (see `Knobs`).
pub(crate) async fn admin_knobs(State(app): State<Shared>, body: Bytes) -> Response {
    match serde_json::from_slice::<Knobs>(&body) {
        Ok(knobs) => {
            *lock(&app.consent_knobs) = knobs.clone();
            reply::json(StatusCode::OK, &knobs)
        }
        Err(e) => reply::admin_error(StatusCode::BAD_REQUEST, e),
    }
}
