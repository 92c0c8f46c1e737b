//! Authenticating a resource request: OAuth 1.0a (RFC 5849, verified by
//! `fetch::oauth1::verify`, with the consumer's placement, the token's
//! patient and a nonce store on top) or an OAuth 2.0 bearer token (RFC
//! 6750, header or `access_token` query parameter per the client). One
//! credential in one place per request; anything else is refused with the
//! answer a careful provider gives.

use axum::response::Response;
use http::StatusCode;
use http::request::Parts;
use secrecy::SecretString;
use url::Url;

use super::super::oauth1_tokens::NonceError;
use super::reply;
use super::{App, Stats, lock, now};
use crate::fetch::oauth1::{self, ReceivedRequest, VerifierKeys, VerifyError};

/// Authenticates `parts` and checks that the credential is bound to
/// `patient` (when the request names one). Returns the bound patient, or
/// the refusal to send.
pub(crate) fn authenticate(
    app: &App,
    parts: &Parts,
    patient: Option<&str>,
) -> Result<String, Response> {
    let authorization = match parts.headers.get(http::header::AUTHORIZATION) {
        None => None,
        Some(value) => match value.to_str() {
            Ok(v) => Some(v),
            Err(_) => {
                return Err(reply::text(
                    StatusCode::BAD_REQUEST,
                    "the Authorization header is not ASCII\n",
                ));
            }
        },
    };
    let scheme = authorization.map(|a| {
        a.split_ascii_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    });
    let query = parts.uri.query().unwrap_or("");
    let names: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name.into_owned())
        .collect();
    let oauth1_header = scheme.as_deref() == Some("oauth");
    let bearer_header = scheme.as_deref() == Some("bearer");
    let oauth1_query = names.iter().any(|n| n.starts_with("oauth_"));
    let bearer_query = names.iter().any(|n| n == "access_token");

    let bearer = bearer_header || bearer_query;
    let oauth1 = oauth1_header || oauth1_query;
    let result = if bearer && oauth1 {
        Stats::bump(&app.stats.bearer_refused);
        return Err(reply::bearer_error(
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "the request carries both OAuth 1.0a and bearer credentials",
        ));
    } else if bearer {
        authenticate_bearer(
            app,
            authorization.filter(|_| bearer_header),
            query,
            bearer_query,
        )
    } else if oauth1 {
        authenticate_oauth1(app, parts, authorization)
    } else {
        return Err(reply::no_credentials());
    };
    let counters = if bearer {
        (&app.stats.bearer_ok, &app.stats.bearer_refused)
    } else {
        (&app.stats.oauth1_ok, &app.stats.oauth1_refused)
    };
    let checked = result.and_then(|bound| match patient {
        Some(asked) if asked != bound => Err(reply::text(
            StatusCode::FORBIDDEN,
            "this credential is for another patient\n",
        )),
        _ => Ok(bound),
    });
    Stats::bump(if checked.is_ok() {
        counters.0
    } else {
        counters.1
    });
    checked
}

/// RFC 6750: `Authorization: Bearer <token>` (§2.1) or `access_token` in
/// the query (§2.3), never both.
fn authenticate_bearer(
    app: &App,
    header: Option<&str>,
    query: &str,
    in_query: bool,
) -> Result<String, Response> {
    if header.is_some() && in_query {
        return Err(reply::bearer_error(
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "the access token was sent in more than one place",
        ));
    }
    let token = match header {
        Some(value) => {
            let mut words = value.split_ascii_whitespace();
            let _scheme = words.next();
            match (words.next(), words.next()) {
                (Some(token), None) => token.to_string(),
                _ => {
                    return Err(reply::bearer_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalid_request"),
                        "malformed Bearer Authorization header",
                    ));
                }
            }
        }
        None => {
            let mut tokens = url::form_urlencoded::parse(query.as_bytes())
                .filter(|(name, _)| name == "access_token")
                .map(|(_, value)| value.into_owned());
            match (tokens.next(), tokens.next()) {
                (Some(token), None) => token,
                _ => {
                    return Err(reply::bearer_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalid_request"),
                        "access_token appears more than once",
                    ));
                }
            }
        }
    };
    let access = lock(&app.grants).access(&token, now());
    let Some(access) = access else {
        return Err(reply::bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the access token is unknown, expired or revoked",
        ));
    };
    let allowed = app
        .client(&access.client_id)
        .is_some_and(|c| c.bearer_placement.allows(header.is_some()));
    if !allowed {
        return Err(reply::bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_request"),
            "this client must send its access token in another place",
        ));
    }
    Ok(access.patient)
}

/// Which credential an OAuth 1.0a lookup could not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unknown {
    Consumer,
    Token,
}

fn authenticate_oauth1(
    app: &App,
    parts: &Parts,
    authorization: Option<&str>,
) -> Result<String, Response> {
    let refuse = |status: StatusCode, problem: &str, extra: &[(&str, String)]| {
        reply::oauth_problem(status, problem, extra)
    };
    // The URL the client signed: our scheme, the Host it used, the path
    // and query exactly as sent.
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let raw = format!(
        "{}://{}{}",
        app.scheme(),
        app.host(&parts.headers),
        path_and_query
    );
    let Ok(url) = Url::parse(&raw) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "parameter_rejected",
            &[(
                "oauth_problem_advice",
                "the request URL cannot be read".into(),
            )],
        ));
    };
    let now = now();
    let window = app.settings.timestamp_window;
    let mut unknown = None;
    let mut bound_patient = None;
    let request = ReceivedRequest {
        method: parts.method.as_str(),
        url: &url,
        authorization: authorization.filter(|a| {
            a.split_ascii_whitespace()
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case("oauth"))
        }),
        body: None,
    };
    let verified = oauth1::verify(
        &request,
        |consumer_key, token| {
            let Some(consumer) = app.settings.consumer(consumer_key) else {
                unknown = Some(Unknown::Consumer);
                return None;
            };
            let token_secret: Option<SecretString> = match token {
                None => None,
                Some(token) => match lock(&app.oauth1_tokens).lookup(consumer_key, token) {
                    Some(record) => {
                        bound_patient = Some(record.patient.clone());
                        Some(record.secret.clone())
                    }
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
        window,
    );
    let verified = match verified {
        Ok(v) => v,
        Err(e) => return Err(refusal(&e, unknown)),
    };
    let placement_ok = app
        .settings
        .consumer(&verified.consumer_key)
        .is_some_and(|c| {
            c.placement
                .allows(verified.placement == oauth1::Placement::Header)
        });
    if !placement_ok {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "parameter_rejected",
            &[(
                "oauth_problem_advice",
                "this consumer must send its OAuth parameters in another place".into(),
            )],
        ));
    }
    let (Some(token), Some(patient)) = (verified.token.as_deref(), bound_patient) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "parameter_absent",
            &[("oauth_parameters_absent", "oauth_token".into())],
        ));
    };
    let seen = lock(&app.nonces).check_and_record(
        &verified.consumer_key,
        token,
        verified.timestamp,
        &verified.nonce,
        now,
    );
    match seen {
        Ok(()) => Ok(patient),
        Err(NonceError::Replayed) => Err(refuse(StatusCode::UNAUTHORIZED, "nonce_used", &[])),
        Err(NonceError::Full) => Err(reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests within the timestamp window\n",
        )),
    }
}

/// The problem report for a verification failure. The advice is the
/// error's own text, which never holds a secret or a signature.
pub(super) fn refusal(e: &VerifyError, unknown: Option<Unknown>) -> Response {
    let advice = || vec![("oauth_problem_advice", e.to_string())];
    let unauthorized = StatusCode::UNAUTHORIZED;
    let bad = StatusCode::BAD_REQUEST;
    match e {
        VerifyError::UnknownCredentials => match unknown {
            Some(Unknown::Consumer) => {
                reply::oauth_problem(unauthorized, "consumer_key_unknown", &[])
            }
            _ => reply::oauth_problem(unauthorized, "token_rejected", &[]),
        },
        VerifyError::StaleTimestamp { min, max, .. } => reply::oauth_problem(
            unauthorized,
            "timestamp_refused",
            &[("oauth_acceptable_timestamps", format!("{min}-{max}"))],
        ),
        VerifyError::BadSignature
        | VerifyError::BodyHashMismatch
        | VerifyError::BodyHashOnFormBody => {
            reply::oauth_problem(unauthorized, "signature_invalid", &[])
        }
        VerifyError::PlaintextOverInsecureTransport(_)
        | VerifyError::MethodNotAllowed(_)
        | VerifyError::UnknownSignatureMethod(_) => {
            reply::oauth_problem(unauthorized, "signature_method_rejected", &advice())
        }
        VerifyError::MissingParameter(name) => reply::oauth_problem(
            bad,
            "parameter_absent",
            &[("oauth_parameters_absent", (*name).to_string())],
        ),
        VerifyError::UnsupportedVersion(_) => reply::oauth_problem(
            bad,
            "version_rejected",
            &[("oauth_acceptable_versions", "1.0-1.0".into())],
        ),
        VerifyError::MultiplePlacements
        | VerifyError::FormBodyPlacement
        | VerifyError::MalformedHeader(_)
        | VerifyError::DuplicateParameter(_)
        | VerifyError::MalformedTimestamp
        | VerifyError::NotUtf8(_)
        | VerifyError::InvalidHttpMethod => {
            reply::oauth_problem(bad, "parameter_rejected", &advice())
        }
    }
}
