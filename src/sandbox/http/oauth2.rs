//! The OAuth 2.0 endpoints: token (the `authorization_code` grant of the
//! consent in `consent.rs`, and refresh; grants are also made through the
//! admin API), revocation (RFC 7009) and introspection (RFC 7662), each
//! with client authentication by HTTP Basic (RFC 6749 §2.3.1), form
//! parameters, a `private_key_jwt` assertion (RFC 7523) for a client so
//! configured, or a bare `client_id` for a public client.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;
use serde_json::json;

use super::super::config::ClientConfig;
use super::super::grants::{RefreshError, RefreshPolicy};
use super::{Shared, Stats, lock, mint, now, reply};

/// A form body's parameters, each at most once (RFC 6749 §3.2).
struct Form(Vec<(String, String)>);

impl Form {
    fn read(headers: &HeaderMap, body: &Bytes) -> Result<Form, Response> {
        let form_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(reply::oauth2_error(
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(reply::oauth2_error(
                    "invalid_request",
                    &format!("the parameter {name} appears more than once"),
                ));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Form(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Decodes one form-urlencoded component of a Basic credential (§2.3.1
/// encodes the id and the secret before base64).
fn form_component(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// A client's form request (token, revoke, introspect): the form and the
/// client it authenticates as, or the refusal.
fn client_request(
    app: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Form, ClientConfig), Response> {
    let form = Form::read(headers, body)?;
    let client = authenticate_client(app, headers, &form)?;
    Ok((form, client))
}

/// The client a request authenticates as, or the refusal.
fn authenticate_client(
    app: &Shared,
    headers: &HeaderMap,
    form: &Form,
) -> Result<ClientConfig, Response> {
    let invalid_client = || reply::oauth2_error("invalid_client", "client authentication failed");
    if let Some(assertion) = form.get("client_assertion") {
        return assertion_client(app, headers, form, assertion);
    }
    let basic = match headers.get(http::header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| invalid_client())?;
            let (scheme, credentials) = value.trim().split_once(' ').ok_or_else(invalid_client)?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(invalid_client());
            }
            let decoded = STANDARD
                .decode(credentials.trim())
                .map_err(|_| invalid_client())?;
            let decoded = String::from_utf8(decoded).map_err(|_| invalid_client())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(invalid_client)?;
            Some((
                form_component(id).ok_or_else(invalid_client)?,
                form_component(secret).ok_or_else(invalid_client)?,
            ))
        }
    };
    let (id, secret) = match basic {
        Some((id, secret)) => {
            // RFC 6749 §2.3: one authentication method per request.
            if form.get("client_secret").is_some() {
                return Err(reply::oauth2_error(
                    "invalid_request",
                    "client credentials were sent in more than one place",
                ));
            }
            if form.get("client_id").is_some_and(|f| f != id) {
                return Err(reply::oauth2_error(
                    "invalid_request",
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, Some(secret).filter(|s| !s.is_empty()))
        }
        None => match form.get("client_id") {
            Some(id) => (
                id.to_string(),
                form.get("client_secret").map(str::to_string),
            ),
            None => return Err(invalid_client()),
        },
    };
    let client = app.client(&id).ok_or_else(invalid_client)?;
    let ok = match (&client.secret, &secret) {
        (Some(expected), Some(given)) => {
            constant_time_eq(expected.expose_secret().as_bytes(), given.as_bytes())
        }
        // A public client proves nothing but its id, and must not pretend to;
        // a private_key_jwt client must sign.
        (None, None) => !client.private_key_jwt,
        _ => false,
    };
    if ok {
        Ok(client)
    } else {
        Err(invalid_client())
    }
}

/// A `private_key_jwt` client (RFC 7523 §2.2): the assertion verified
/// against the client's configured public key, its `jti` used once.
fn assertion_client(
    app: &Shared,
    headers: &HeaderMap,
    form: &Form,
    assertion: &str,
) -> Result<ClientConfig, Response> {
    if headers.contains_key(http::header::AUTHORIZATION) || form.get("client_secret").is_some() {
        return Err(reply::oauth2_error(
            "invalid_request",
            "client credentials were sent in more than one place",
        ));
    }
    if form.get("client_assertion_type") != Some(crate::fetch::backend::JWT_BEARER) {
        return Err(reply::oauth2_error(
            "invalid_request",
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let token_url = format!("{}/oauth2/token", app.base_url(headers));
    let (exp, jti, id) = super::bulk::verify(app, assertion, &token_url)
        .map_err(|why| reply::oauth2_error("invalid_client", &why))?;
    if form.get("client_id").is_some_and(|c| c != id) {
        return Err(reply::oauth2_error(
            "invalid_client",
            "client_id differs from the assertion's",
        ));
    }
    if !lock(&app.bulk).fresh_jti(&jti, exp, now()) {
        return Err(reply::oauth2_error(
            "invalid_client",
            "the assertion's jti was used before",
        ));
    }
    app.settings
        .client(&id)
        .filter(|c| c.private_key_jwt)
        .cloned()
        .ok_or_else(|| {
            reply::oauth2_error(
                "invalid_client",
                "no [[clients]] entry with private_key_jwt = true has this id",
            )
        })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `POST /oauth2/token`.
pub(crate) async fn token(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    // SMART Backend Services: the client authenticates by its assertion.
    if let Ok(form) = Form::read(&headers, &body)
        && form.get("grant_type") == Some("client_credentials")
    {
        return super::bulk::token(
            &app,
            &headers,
            form.get("client_assertion_type"),
            form.get("client_assertion"),
            form.get("scope"),
        );
    }
    let (form, client) = match client_request(&app, &headers, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    match form.get("grant_type") {
        None => return reply::oauth2_error("invalid_request", "grant_type is missing"),
        Some("refresh_token") => {}
        Some("authorization_code") => {
            return super::consent::exchange(
                &app,
                &headers,
                &client,
                form.get("code"),
                form.get("redirect_uri"),
                form.get("code_verifier"),
            );
        }
        Some(_) => {
            return reply::oauth2_error(
                "unsupported_grant_type",
                "this server takes authorization_code, refresh_token and client_credentials",
            );
        }
    }
    let Some(refresh_token) = form.get("refresh_token") else {
        return reply::oauth2_error("invalid_request", "refresh_token is missing");
    };
    let policy = if client.omit_refresh_token {
        RefreshPolicy::Omit
    } else if client.rotate_refresh_tokens {
        RefreshPolicy::Rotate
    } else {
        RefreshPolicy::Keep
    };
    let result = lock(&app.grants).refresh(
        &client.id,
        refresh_token,
        policy,
        client.access_token_ttl,
        now(),
        &mut mint,
    );
    app.persist();
    match result {
        Ok(issued) => {
            Stats::bump(&app.stats.refreshes);
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
            lock(&app.consent_knobs).grant_expiration(&mut body, now());
            reply::no_store(reply::json(StatusCode::OK, &body))
        }
        Err(RefreshError::Reused) => {
            Stats::bump(&app.stats.refresh_reuse_revocations);
            reply::oauth2_error(
                "invalid_grant",
                "the refresh token was already used: the grant is revoked",
            )
        }
        Err(RefreshError::Invalid) => reply::oauth2_error(
            "invalid_grant",
            "the refresh token is unknown, revoked or another client's",
        ),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): 200 whether or not the token was
/// known, so that the answer reveals nothing.
pub(crate) async fn revoke(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (form, client) = match client_request(&app, &headers, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    // `token_type_hint` only speeds up a real server's search; both
    // token kinds are looked up here anyway.
    let Some(token) = form.get("token") else {
        return reply::oauth2_error("invalid_request", "token is missing");
    };
    if lock(&app.grants).revoke(&client.id, token) {
        Stats::bump(&app.stats.revocations);
        app.persist();
    }
    reply::no_store(reply::with_type(StatusCode::OK, "application/json", "{}"))
}

/// `POST /oauth2/introspect` (RFC 7662), for the token's own client.
pub(crate) async fn introspect(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, client) = match client_request(&app, &headers, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let Some(token) = form.get("token") else {
        return reply::oauth2_error("invalid_request", "token is missing");
    };
    // `introspection_inactive` (admin knob): the provider disowns every token.
    let disowned = lock(&app.consent_knobs).introspection_inactive;
    let answer = lock(&app.grants)
        .introspect(&client.id, token, now())
        .filter(|_| !disowned);
    let body = match answer {
        Some(i) => {
            let mut body = json!({
                "active": true,
                "scope": i.scope,
                "client_id": i.client_id,
                "patient": i.patient,
                "token_type": i.token_type,
            });
            // Refresh tokens do not expire here; RFC 7662 leaves `exp` out then.
            if let Some(exp) = i.exp {
                body["exp"] = json!(exp);
            }
            super::identity::introspection_fields(&app, &i.patient, &mut body);
            // The grant's end, as a provider may also say it here.
            lock(&app.consent_knobs).grant_expiration(&mut body, now());
            body
        }
        None => json!({ "active": false }),
    };
    reply::no_store(reply::json(StatusCode::OK, &body))
}
