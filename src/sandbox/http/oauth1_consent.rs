//! The OAuth 1.0a three-legged flow (RFC 5849 §2), answered without a
//! person: `/oauth1/request_token` (signed with the consumer credentials
//! and `oauth_callback`, verified by `fetch::oauth1::verify` like every
//! resource request), `/oauth1/authorize` (approves at once — for the
//! patient named by `patient`, default `consent-patient` — or denies when
//! `deny` is present, by a 302 to the callback), and
//! `/oauth1/access_token` (signed with the request token credentials and
//! `oauth_verifier`; a request token is exchanged once, right or wrong),
//! which issues token credentials the resource endpoints accept and names
//! the patient beside them (`patient=`).

use axum::extract::{RawQuery, Request, State};
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;
use secrecy::SecretString;
use url::Url;

use super::super::oauth1_tokens::{NonceError, PendingRequest, REQUEST_TOKEN_TTL, TokenRecord};
use super::auth::{Unknown, refusal};
use super::consent::DEFAULT_CONSENT_PATIENT;
use super::{App, Shared, lock, mint, now, reply};
use crate::fetch::oauth1::{self, ReceivedRequest, VerifiedOauth, VerifierKeys};

/// `/oauth1/request_token` (§2.1).
pub(crate) async fn request_token(State(app): State<Shared>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let verified = match verify(&app, &parts, |_, _| None) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if verified.token.is_some() {
        return reply::oauth_problem(
            StatusCode::BAD_REQUEST,
            "parameter_rejected",
            &[(
                "oauth_problem_advice",
                "a request token request carries no oauth_token".into(),
            )],
        );
    }
    let Some(callback) = verified.callback.filter(|c| {
        c == "oob" || Url::parse(c).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    }) else {
        return reply::oauth_problem(
            StatusCode::BAD_REQUEST,
            "parameter_absent",
            &[("oauth_parameters_absent", "oauth_callback".into())],
        );
    };
    let (token, secret) = (mint(), mint());
    lock(&app.oauth1_pending).issue(
        token.clone(),
        PendingRequest {
            consumer_key: verified.consumer_key,
            secret: SecretString::from(secret.clone()),
            callback,
            verifier: None,
            patient: None,
            expires_at: now() + REQUEST_TOKEN_TTL,
        },
        now(),
    );
    form(&[
        ("oauth_token", &token),
        ("oauth_token_secret", &secret),
        ("oauth_callback_confirmed", "true"),
    ])
}

/// `GET /oauth1/authorize?oauth_token=…[&patient=…][&deny]` (§2.2).
pub(crate) async fn authorize(State(app): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let Some(token) = param("oauth_token") else {
        return reply::text(StatusCode::BAD_REQUEST, "oauth_token is missing\n");
    };
    let Some(callback) = lock(&app.oauth1_pending)
        .get(&token, now())
        .map(|p| p.callback.clone())
    else {
        return reply::text(
            StatusCode::BAD_REQUEST,
            "the request token is unknown, used or expired\n",
        );
    };
    let back = |pairs: &[(&str, &str)]| {
        if callback == "oob" {
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return reply::text(StatusCode::OK, format!("{}\n", shown.join("\n")));
        }
        let Ok(mut to) = Url::parse(&callback) else {
            return reply::text(StatusCode::BAD_REQUEST, "the callback is not a URL\n");
        };
        to.query_pairs_mut().extend_pairs(pairs);
        reply::redirect(302, to.as_str())
    };
    if param("deny").is_some() {
        lock(&app.oauth1_pending).take(&token);
        return back(&[
            ("oauth_token", &token),
            ("oauth_problem", "permission_denied"),
        ]);
    }
    let patient = param("patient")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_CONSENT_PATIENT.to_string());
    let verifier = mint();
    if lock(&app.oauth1_pending)
        .authorize(&token, verifier.clone(), patient, now())
        .is_none()
    {
        return reply::text(StatusCode::BAD_REQUEST, "the request token expired\n");
    }
    back(&[("oauth_token", &token), ("oauth_verifier", &verifier)])
}

/// `/oauth1/access_token` (§2.3).
pub(crate) async fn access_token(State(app): State<Shared>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let verified = verify(&app, &parts, |consumer, token| {
        lock(&app.oauth1_pending)
            .get(token, now())
            .filter(|p| p.consumer_key == consumer)
            .map(|p| p.secret.clone())
    });
    let verified = match verified {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(token) = verified.token.as_deref() else {
        return reply::oauth_problem(
            StatusCode::BAD_REQUEST,
            "parameter_absent",
            &[("oauth_parameters_absent", "oauth_token".into())],
        );
    };
    // Used up whatever follows: a request token is exchanged once.
    let Some(pending) = lock(&app.oauth1_pending).take(token) else {
        return reply::oauth_problem(StatusCode::UNAUTHORIZED, "token_used", &[]);
    };
    let (Some(expected), Some(patient)) = (pending.verifier, pending.patient) else {
        return reply::oauth_problem(
            StatusCode::UNAUTHORIZED,
            "permission_unknown",
            &[(
                "oauth_problem_advice",
                "the request token was not authorized".into(),
            )],
        );
    };
    if verified.verifier.as_deref() != Some(expected.as_str()) {
        return reply::oauth_problem(StatusCode::UNAUTHORIZED, "verifier_invalid", &[]);
    }
    let (access, secret) = (mint(), mint());
    lock(&app.oauth1_tokens).issue(
        access.clone(),
        TokenRecord {
            consumer_key: verified.consumer_key.clone(),
            secret: SecretString::from(secret.clone()),
            patient: patient.clone(),
        },
    );
    app.persist();
    form(&[
        ("oauth_token", &access),
        ("oauth_token_secret", &secret),
        ("patient", &patient),
    ])
}

fn form(pairs: &[(&str, &str)]) -> Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    reply::no_store(reply::with_type(
        StatusCode::OK,
        "application/x-www-form-urlencoded",
        body,
    ))
}

/// Verifies a token request as the resource endpoints verify theirs: the
/// signature (with the request token's secret, found by `token_secret`),
/// the consumer's placement, the nonce.
fn verify(
    app: &App,
    parts: &Parts,
    token_secret: impl FnOnce(&str, &str) -> Option<SecretString>,
) -> Result<VerifiedOauth, Response> {
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let raw = format!(
        "{}://{}{}",
        app.scheme(),
        app.host(&parts.headers),
        path_and_query
    );
    let Ok(url) = Url::parse(&raw) else {
        return Err(reply::text(
            StatusCode::BAD_REQUEST,
            "the request URL cannot be read\n",
        ));
    };
    let authorization = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|a| {
            a.split_ascii_whitespace()
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case("oauth"))
        });
    let mut unknown = None;
    let now = now();
    let verified = oauth1::verify(
        &ReceivedRequest {
            method: parts.method.as_str(),
            url: &url,
            authorization,
            body: None,
        },
        |consumer_key, token| {
            let Some(consumer) = app.settings.consumer(consumer_key) else {
                unknown = Some(Unknown::Consumer);
                return None;
            };
            let token_secret = match token {
                None => None,
                Some(t) => match token_secret(consumer_key, t) {
                    Some(s) => Some(s),
                    None => {
                        unknown = Some(Unknown::Token);
                        return None;
                    }
                },
            };
            Some(VerifierKeys {
                consumer_secret: consumer.secret.clone(),
                token_secret,
                rsa_public_key: consumer.rsa_public_key.clone(),
            })
        },
        now,
        app.settings.timestamp_window,
    )
    .map_err(|e| refusal(&e, unknown))?;
    let placement_ok = app
        .settings
        .consumer(&verified.consumer_key)
        .is_some_and(|c| {
            c.placement
                .allows(verified.placement == oauth1::Placement::Header)
        });
    if !placement_ok {
        return Err(reply::oauth_problem(
            StatusCode::UNAUTHORIZED,
            "parameter_rejected",
            &[(
                "oauth_problem_advice",
                "this consumer must send its OAuth parameters in another place".into(),
            )],
        ));
    }
    let seen = lock(&app.nonces).check_and_record(
        &verified.consumer_key,
        verified.token.as_deref().unwrap_or(""),
        verified.timestamp,
        &verified.nonce,
        now,
    );
    match seen {
        Ok(()) => Ok(verified),
        Err(NonceError::Replayed) => Err(reply::oauth_problem(
            StatusCode::UNAUTHORIZED,
            "nonce_used",
            &[],
        )),
        Err(NonceError::Full) => Err(reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests within the timestamp window\n",
        )),
    }
}
