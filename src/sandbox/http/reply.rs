//! Response shapes: plain text, JSON, FHIR OperationOutcomes, the OAuth
//! 1.0a problem reports (form-encoded `oauth_problem=…`), RFC 6750 bearer
//! challenges and RFC 6749 error bodies, redirects and injected faults.

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::super::rules::Fault;

/// The realm every challenge names.
pub const REALM: &str = "sandbox";

pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    with_type(status, "text/plain; charset=utf-8", body.into())
}

pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_type(status, "application/json", body)
}

/// A JSON error for the admin API.
pub fn admin_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json(status, &json!({ "error": message.to_string() }))
}

/// A FHIR OperationOutcome with one issue.
pub fn outcome(status: StatusCode, code: &str, diagnostics: impl std::fmt::Display) -> Response {
    let body = json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics.to_string()}]
    });
    with_type(
        status,
        "application/fhir+json",
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// An OAuth 1.0a problem report (the Problem Reporting extension): the
/// body is form-encoded `oauth_problem=…` plus `extra` pairs; a 401 carries
/// the `OAuth` challenge.
pub fn oauth_problem(status: StatusCode, problem: &str, extra: &[(&str, String)]) -> Response {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("oauth_problem", problem);
    for (name, value) in extra {
        form.append_pair(name, value);
    }
    let mut response = with_type(status, "application/x-www-form-urlencoded", form.finish());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("OAuth realm=\"sandbox\""),
        );
    }
    response
}

/// An RFC 6750 §3 bearer error: the challenge carries `error` (when there
/// is one) and its description; the body repeats them as JSON.
pub fn bearer_error(status: StatusCode, error: Option<&str>, description: &str) -> Response {
    let challenge = match error {
        Some(error) => format!(
            "Bearer realm=\"{REALM}\", error=\"{error}\", error_description=\"{}\"",
            description.replace(['"', '\\'], "'")
        ),
        None => format!("Bearer realm=\"{REALM}\""),
    };
    let mut response = json(
        status,
        &json!({"error": error.unwrap_or("invalid_request"), "error_description": description}),
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// A 401 for a request without credentials: both schemes are offered.
pub fn no_credentials() -> Response {
    let mut response = text(
        StatusCode::UNAUTHORIZED,
        "this resource needs OAuth 1.0a or an OAuth 2.0 bearer token\n",
    );
    let headers = response.headers_mut();
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("OAuth realm=\"sandbox\""),
    );
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"sandbox\""),
    );
    response
}

/// Token endpoint answers (RFC 6749 §5): JSON, never cached.
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An RFC 6749 §5.2 error; `invalid_client` is a 401 with a Basic challenge.
pub fn oauth2_error(error: &str, description: &str) -> Response {
    let status = if error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut response = json(
        status,
        &json!({"error": error, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sandbox\""),
        );
    }
    no_store(response)
}

/// A redirect to `location` (validated by the configuration).
pub fn redirect(status: u16, location: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
    let mut response = text(status, format!("moved to {location}\n"));
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
            response
        }
        Err(_) => text(StatusCode::BAD_REQUEST, "cannot redirect this path\n"),
    }
}

/// An injected fault; a body that is JSON is served as JSON.
pub fn fault(fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = fault
        .body
        .clone()
        .unwrap_or_else(|| format!("injected fault: {}\n", status));
    let is_json = serde_json::from_str::<serde_json::Value>(&body).is_ok();
    let mut response = if is_json {
        with_type(status, "application/json", body)
    } else {
        text(status, body)
    };
    if let Some(seconds) = fault.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
