//! The admin API (loopback peers only, checked by the front door): the
//! consent dance done by a call, fault injection, the request log and the
//! counters. Bodies are JSON with `deny_unknown_fields`, so a typo in a
//! test is an error rather than a silent default.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::super::generate::RemotePatient;
use super::super::grants::NewGrant;
use super::super::oauth1_tokens::TokenRecord;
use super::super::rules::{Fault, MAX_FAULTS};
use super::{Shared, StatsOut, lock, mint, now, reply};

/// The scope a grant gets when the request names none.
const DEFAULT_SCOPE: &str = "patient/MedicationRequest.rs patient/MedicationStatement.rs patient/MedicationDispense.rs offline_access";

fn read<T: DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| reply::admin_error(StatusCode::BAD_REQUEST, e))
}

fn patient(raw: &str) -> Result<RemotePatient, Response> {
    RemotePatient::parse(raw).map_err(|why| reply::admin_error(StatusCode::BAD_REQUEST, why))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Oauth1TokenRequest {
    consumer_key: String,
    patient: String,
}

/// `POST /admin/oauth1/tokens`: token credentials for a consumer and a patient.
pub(crate) async fn oauth1_token(State(app): State<Shared>, body: Bytes) -> Response {
    let asked: Oauth1TokenRequest = match read(&body) {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let patient = match patient(&asked.patient) {
        Ok(p) => p,
        Err(refusal) => return refusal,
    };
    if app.settings.consumer(&asked.consumer_key).is_none() {
        return reply::admin_error(StatusCode::BAD_REQUEST, "unknown consumer_key");
    }
    let (token, secret) = (mint(), mint());
    lock(&app.oauth1_tokens).issue(
        token.clone(),
        TokenRecord {
            consumer_key: asked.consumer_key,
            secret: SecretString::from(secret.clone()),
            patient: patient.as_str().to_string(),
        },
    );
    app.persist();
    reply::json(
        StatusCode::OK,
        &json!({"token": token, "token_secret": secret, "patient": patient.as_str()}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantRequest {
    client_id: String,
    patient: String,
    scope: Option<String>,
    expires_in: Option<u64>,
    access_token_valid: Option<bool>,
    /// Ask for an ID token with the grant (`sandbox::identity`).
    id_token: Option<super::super::identity::IdTokenRequest>,
    /// Issue the access token as an RFC 9068 JWT (`sandbox::identity`).
    jwt_access_token: Option<bool>,
}

/// `POST /admin/oauth2/grants`: a consent, answered with a real token response.
pub(crate) async fn oauth2_grant(
    State(app): State<Shared>,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    let asked: GrantRequest = match read(&body) {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let patient = match patient(&asked.patient) {
        Ok(p) => p,
        Err(refusal) => return refusal,
    };
    let Some(client) = app.client(&asked.client_id) else {
        return reply::admin_error(StatusCode::BAD_REQUEST, "unknown client_id");
    };
    let scope = asked.scope.unwrap_or_else(|| DEFAULT_SCOPE.to_string());
    let expires_in = asked.expires_in.unwrap_or(client.access_token_ttl);
    // The grant mints its access token first: as a JWT when asked.
    let mut first_jwt = match asked.jwt_access_token {
        Some(true) => match super::identity::access_jwt(
            &app,
            &headers,
            patient.as_str(),
            &client.id,
            &scope,
            expires_in,
        ) {
            Ok(t) => Some(t),
            Err(refusal) => return refusal,
        },
        _ => None,
    };
    let issued = lock(&app.grants).grant(
        NewGrant {
            client_id: &client.id,
            patient: patient.as_str(),
            scope: &scope,
            expires_in,
            access_token_valid: asked.access_token_valid.unwrap_or(true),
        },
        now(),
        &mut || first_jwt.take().unwrap_or_else(mint),
    );
    app.persist();
    let mut answer = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "refresh_token": issued.refresh_token,
        "scope": issued.scope,
        "patient": issued.patient,
    });
    if let Some(asked) = &asked.id_token {
        match super::identity::grant_id_token(&app, &headers, &issued.patient, &client.id, asked) {
            Ok(t) => answer["id_token"] = json!(t),
            Err(refusal) => return refusal,
        }
    }
    lock(&app.consent_knobs).grant_expiration(&mut answer, now());
    reply::no_store(reply::json(StatusCode::OK, &answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    path_prefix: String,
    status: u16,
    times: u32,
    retry_after: Option<u64>,
    body: Option<String>,
}

/// A `path_prefix` of the provider's own routes: under `/`, not `/admin`.
fn provider_prefix(prefix: &str) -> Result<(), Response> {
    if !prefix.starts_with('/') || prefix.starts_with("/admin") {
        return Err(reply::admin_error(
            StatusCode::BAD_REQUEST,
            "path_prefix must start with / and not be under /admin",
        ));
    }
    Ok(())
}

/// `POST /admin/faults`: the next `times` requests under `path_prefix`
/// get `status`.
pub(crate) async fn add_fault(State(app): State<Shared>, body: Bytes) -> Response {
    let asked: FaultRequest = match read(&body) {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    if let Err(refusal) = provider_prefix(&asked.path_prefix) {
        return refusal;
    }
    if !(200..=599).contains(&asked.status) {
        return reply::admin_error(StatusCode::BAD_REQUEST, "status must be 200 to 599");
    }
    let fault = Fault {
        path_prefix: asked.path_prefix,
        status: asked.status,
        remaining: asked.times,
        retry_after: asked.retry_after,
        body: asked.body,
    };
    if !lock(&app.faults).add(fault.clone()) {
        return reply::admin_error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("more than {MAX_FAULTS} faults pending"),
        );
    }
    reply::json(StatusCode::OK, &fault)
}

/// `POST /admin/faults/clear`.
pub(crate) async fn clear_faults(State(app): State<Shared>) -> Response {
    lock(&app.faults).clear();
    reply::json(StatusCode::OK, &json!({"cleared": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyRequest {
    path_prefix: String,
    ms: u64,
}

/// Held-back answers are capped: a test's slow provider, not a hang.
const MAX_LATENCY_MS: u64 = 60_000;

/// `POST /admin/latency`: answers to requests under `path_prefix` are held
/// back `ms` milliseconds from now on (`ms: 0` removes the prefix's delay).
pub(crate) async fn set_latency(State(app): State<Shared>, body: Bytes) -> Response {
    let asked: LatencyRequest = match read(&body) {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    if let Err(refusal) = provider_prefix(&asked.path_prefix) {
        return refusal;
    }
    if asked.ms > MAX_LATENCY_MS {
        return reply::admin_error(
            StatusCode::BAD_REQUEST,
            format!("ms must be at most {MAX_LATENCY_MS}"),
        );
    }
    let mut latency = lock(&app.latency);
    latency.retain(|(prefix, _)| *prefix != asked.path_prefix);
    if asked.ms > 0 {
        latency.push((
            asked.path_prefix.clone(),
            std::time::Duration::from_millis(asked.ms),
        ));
    }
    reply::json(
        StatusCode::OK,
        &json!({"path_prefix": asked.path_prefix, "ms": asked.ms}),
    )
}

/// `GET /admin/requests`: every non-admin request received, oldest first.
pub(crate) async fn requests(State(app): State<Shared>) -> Response {
    let log = lock(&app.log);
    let entries: Vec<_> = log.entries().collect();
    reply::json(StatusCode::OK, &entries)
}

/// `POST /admin/requests/clear`: also starts `max_in_flight` again from
/// the requests in flight now.
pub(crate) async fn clear_requests(State(app): State<Shared>) -> Response {
    lock(&app.log).clear();
    let now = app
        .stats
        .in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    app.stats
        .max_in_flight
        .store(now, std::sync::atomic::Ordering::SeqCst);
    reply::json(StatusCode::OK, &json!({"cleared": true}))
}

/// `GET /admin/stats`.
pub(crate) async fn stats(State(app): State<Shared>) -> Response {
    reply::json(StatusCode::OK, &StatsOut::from(&app.stats))
}
