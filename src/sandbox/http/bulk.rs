//! FHIR Bulk Data `$export` (system, Group and Patient level) with SMART
//! Backend Services: the `client_credentials` token request with a
//! `private_key_jwt` assertion verified against the configured public keys
//! (RS384, ES384: `iss` = `sub` = the client, `aud` = this token URL, `exp`
//! at most five minutes away, a `jti` never seen), the async status URL
//! (`Retry-After: 1` and `X-Progress` for `[bulk] polls` requests, then the
//! manifest), NDJSON files made from the configured patients' generated
//! resources, an `error` file, `DELETE`, and the interruption mode (the
//! first download of an export's second file is cut off mid-body).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use super::super::bulk::Export;
use super::super::documents::SearchType;
use super::{Shared, lock, mint, now, reply};

/// The types the sandbox exports, in file order.
const TYPES: [&str; 4] = [
    "Patient",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
];

/// `grant_type=client_credentials` at `/oauth2/token`.
pub(super) fn token(
    app: &Shared,
    headers: &HeaderMap,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
    scope: Option<&str>,
) -> Response {
    if assertion_type != Some(crate::fetch::backend::JWT_BEARER) {
        return reply::oauth2_error(
            "invalid_request",
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        );
    }
    let Some(assertion) = assertion else {
        return reply::oauth2_error("invalid_request", "client_assertion is missing");
    };
    let token_url = format!("{}/oauth2/token", app.base_url(headers));
    let exp = match verify(app, assertion, &token_url) {
        Ok((exp, jti, _)) => (exp, jti),
        Err(why) => return reply::oauth2_error("invalid_client", &why),
    };
    let t = now();
    let mut state = lock(&app.bulk);
    if !state.fresh_jti(&exp.1, exp.0, t) {
        return reply::oauth2_error("invalid_client", "the assertion's jti was used before");
    }
    let access = mint();
    let ttl = app.settings.bulk.access_token_ttl;
    state.issue(access.clone(), t + ttl);
    drop(state);
    reply::json(
        StatusCode::OK,
        &json!({"access_token": access, "token_type": "bearer", "expires_in": ttl, "scope": scope.unwrap_or("")}),
    )
}

/// Checks a client assertion; its (`exp`, `jti`, client id) when good, else why not.
pub(super) fn verify(
    app: &Shared,
    assertion: &str,
    token_url: &str,
) -> Result<(u64, String, String), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| "the client assertion is not a JWS".to_string())?;
    let kid = header.kid.ok_or("the assertion's header has no kid")?;
    let client = app
        .settings
        .bulk_clients
        .iter()
        .find(|c| c.kid == kid)
        .ok_or("no client has this kid")?;
    let (alg, key) = if client.rsa {
        (
            Algorithm::RS384,
            DecodingKey::from_rsa_pem(client.public_pem.as_bytes()),
        )
    } else {
        (
            Algorithm::ES384,
            DecodingKey::from_ec_pem(client.public_pem.as_bytes()),
        )
    };
    if header.alg != alg {
        return Err(format!("the key {kid} signs {alg:?}, not {:?}", header.alg));
    }
    let key = key.map_err(|_| "the configured key cannot be read".to_string())?;
    let mut v = Validation::new(alg);
    v.set_audience(&[token_url]);
    v.set_issuer(&[&client.id]);
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud", "jti"]);
    v.leeway = 0;
    let claims = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v)
        .map_err(|e| format!("the client assertion is refused: {e}"))?
        .claims;
    if claims["sub"].as_str() != Some(client.id.as_str()) {
        return Err("sub is not the client id".into());
    }
    let exp = claims["exp"].as_u64().ok_or("exp is not a number")?;
    if exp > now() + 300 {
        return Err("exp is more than five minutes away".into());
    }
    let jti = claims["jti"].as_str().ok_or("jti is not a string")?;
    Ok((exp, jti.to_string(), client.id.clone()))
}

/// Whether the request carries a bearer token issued here.
fn authorized(app: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| lock(&app.bulk).valid(t, now()))
}

fn unauthorized() -> Response {
    reply::outcome(
        StatusCode::UNAUTHORIZED,
        "login",
        "a valid bearer token is required",
    )
}

pub(crate) async fn kickoff_system(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    kickoff(&app, &headers, q.as_deref())
}

pub(crate) async fn kickoff_patient(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    kickoff(&app, &headers, q.as_deref())
}

pub(crate) async fn kickoff_group(
    State(app): State<Shared>,
    Path(group): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if group.is_empty()
        || !group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return reply::outcome(StatusCode::NOT_FOUND, "not-found", "no such Group");
    }
    kickoff(&app, &headers, q.as_deref())
}

fn kickoff(app: &Shared, headers: &HeaderMap, query: Option<&str>) -> Response {
    if !authorized(app, headers) {
        return unauthorized();
    }
    if headers.get("prefer").and_then(|v| v.to_str().ok()) != Some("respond-async") {
        return reply::outcome(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Prefer: respond-async is required",
        );
    }
    let mut types: Vec<String> = TYPES.iter().map(|t| t.to_string()).collect();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "_type" {
            let asked: Vec<&str> = v.split(',').map(str::trim).collect();
            types.retain(|t| asked.contains(&t.as_str()));
        }
    }
    let id = lock(&app.bulk).start(Export {
        patients: app.settings.bulk.patients.clone(),
        types,
        polls: 0,
        downloads: Default::default(),
        transaction_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let mut r = reply::with_type(StatusCode::ACCEPTED, "application/fhir+json", Vec::new());
    if let Ok(v) = HeaderValue::from_str(&format!("{}/bulk/status/{id}", app.base_url(headers))) {
        r.headers_mut().insert(http::header::CONTENT_LOCATION, v);
    }
    r
}

pub(crate) async fn status(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&app, &headers) {
        return unauthorized();
    }
    let Some(e) = lock(&app.bulk).poll(&id) else {
        return reply::outcome(StatusCode::NOT_FOUND, "not-found", "no such export");
    };
    let polls = app.settings.bulk.polls;
    if e.polls <= polls {
        let mut r = reply::with_type(StatusCode::ACCEPTED, "application/json", Vec::new());
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        if let Ok(v) = HeaderValue::from_str(&format!("{} of {polls}", e.polls)) {
            r.headers_mut().insert("x-progress", v);
        }
        return r;
    }
    let base = app.base_url(&headers);
    let output: Vec<_> = e
        .types
        .iter()
        .enumerate()
        .map(|(n, t)| json!({"type": t, "url": format!("{base}/bulk/files/{id}/{n}")}))
        .collect();
    reply::json(
        StatusCode::OK,
        &json!({
            "transactionTime": e.transaction_time,
            "request": format!("{base}/fhir/$export"),
            "requiresAccessToken": app.settings.bulk.require_token,
            "output": output,
            "error": [{"type": "OperationOutcome", "url": format!("{base}/bulk/files/{id}/error")}],
        }),
    )
}

pub(crate) async fn delete(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&app, &headers) {
        return unauthorized();
    }
    if lock(&app.bulk).delete(&id) {
        reply::with_type(StatusCode::ACCEPTED, "application/json", Vec::new())
    } else {
        reply::outcome(StatusCode::NOT_FOUND, "not-found", "no such export")
    }
}

pub(crate) async fn file(
    State(app): State<Shared>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if app.settings.bulk.require_token && !authorized(&app, &headers) {
        return unauthorized();
    }
    let n = if name == "error" {
        usize::MAX
    } else {
        match name.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return reply::outcome(StatusCode::NOT_FOUND, "not-found", "no such file"),
        }
    };
    let Some((e, count)) = lock(&app.bulk).download(&id, n) else {
        return reply::outcome(StatusCode::NOT_FOUND, "not-found", "no such export");
    };
    let body = if n == usize::MAX {
        let line = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found",
            "diagnostics": "Patient/bulk-gone could not be exported: no such patient"}]});
        format!("{line}\n").into_bytes()
    } else {
        let Some(ty) = e.types.get(n) else {
            return reply::outcome(StatusCode::NOT_FOUND, "not-found", "no such file");
        };
        match ndjson(&app, &e.patients, ty).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
    if app.settings.bulk.interrupt && n == 1 && count == 1 {
        // Half the body, flushed; a moment later the connection fails (an
        // error at once would drop the connection before the headers, which
        // a client rightly retries as a transport failure).
        let half = body[..body.len() / 2].to_vec();
        let parts = futures_util::stream::unfold(0u8, move |step| {
            let half = half.clone();
            async move {
                match step {
                    0 => Some((Ok(half), 1)),
                    1 => {
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        Some((Err(std::io::Error::other("interrupted by the sandbox")), 2))
                    }
                    _ => None,
                }
            }
        });
        let mut r = Response::new(Body::from_stream(parts));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+ndjson"),
        );
        return r;
    }
    reply::with_type(StatusCode::OK, "application/fhir+ndjson", body)
}

/// One type's resources of the patients, one JSON object a line.
async fn ndjson(app: &Shared, patients: &[String], ty: &str) -> Result<Vec<u8>, Response> {
    let mut out = Vec::new();
    for p in patients {
        if ty == "Patient" {
            out.extend_from_slice(
                json!({
                    "resourceType": "Patient",
                    "id": p,
                    // An MRN, for importers that match patients by it.
                    "identifier": [{"system": "urn:sandbox:mrn", "value": format!("MRN-{p}")}]
                })
                .to_string()
                .as_bytes(),
            );
            out.push(b'\n');
            continue;
        }
        let Some(kind) = SearchType::parse(ty) else {
            continue;
        };
        let docs = super::resources::patient_docs(app, p).await?;
        for entry in docs.matches(kind) {
            // Compact: a line is one resource whatever the source's layout.
            let v: serde_json::Value =
                serde_json::from_str(entry.resource.get()).unwrap_or(serde_json::Value::Null);
            out.extend_from_slice(v.to_string().as_bytes());
            out.push(b'\n');
        }
    }
    Ok(out)
}
