//! Discovery and dynamic registration: `/fhir/.well-known/smart-configuration`
//! (SMART App Launch 2.x), the `oauth-uris` extension that
//! `/fhir/metadata` carries (SMART 1.0), `/.well-known/openid-configuration`
//! (OpenID Connect Discovery; also under `/fhir`), and `POST
//! /oauth2/register` (RFC 7591), whose clients the token, revocation and
//! introspection endpoints accept like configured ones (`App::client`).
//!
//! Discovery documents advertise the sandbox's own base URL and carry
//! `Cache-Control: max-age=3600`. A registration answers its client id
//! and secret once, in the response; nothing here logs either.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::config::{AllowedPlacement, ClientConfig};
use super::{App, Shared, lock, mint, now, reply};

/// Registered clients at most; past it registrations are refused.
const MAX_REGISTERED: usize = 10_000;

/// The endpoints every document names, under `base`.
struct Endpoints {
    token: String,
    register: String,
    revoke: String,
    introspect: String,
    authorize: String,
}

fn endpoints(base: &str) -> Endpoints {
    Endpoints {
        token: format!("{base}/oauth2/token"),
        register: format!("{base}/oauth2/register"),
        revoke: format!("{base}/oauth2/revoke"),
        introspect: format!("{base}/oauth2/introspect"),
        authorize: format!("{base}/oauth2/authorize"),
    }
}

fn cached(mut r: Response) -> Response {
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    r
}

/// The SMART configuration (`resources::smart_configuration`, served at
/// `/.well-known/smart-configuration` and under `/fhir`) with what
/// discovery and registration add: `registration_endpoint`, PKCE S256, and
/// `Cache-Control: max-age=3600`.
pub(crate) fn smart_extra(base: &str, mut document: Value) -> Response {
    let e = endpoints(base);
    document["registration_endpoint"] = json!(e.register);
    document["code_challenge_methods_supported"] = json!(["S256"]);
    cached(reply::json(StatusCode::OK, &document))
}

/// `GET /.well-known/openid-configuration` (and under `/fhir`).
pub(crate) async fn openid_configuration(
    State(app): State<Shared>,
    headers: HeaderMap,
) -> Response {
    let base = app.base_url(&headers);
    let e = endpoints(&base);
    cached(reply::json(
        StatusCode::OK,
        &json!({
            "issuer": base,
            "authorization_endpoint": e.authorize,
            "token_endpoint": e.token,
            "registration_endpoint": e.register,
            "revocation_endpoint": e.revoke,
            "introspection_endpoint": e.introspect,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": ["offline_access"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["S256"]
        }),
    ))
}

/// The `rest[].security` of the CapabilityStatement: the SMART 1.0
/// `oauth-uris` extension.
pub(crate) fn security(app: &App, headers: &HeaderMap) -> Value {
    let base = app.base_url(headers);
    let e = endpoints(&base);
    json!({
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"
        }]}],
        "extension": [{
            "url": crate::discovery::OAUTH_URIS,
            "extension": [
                {"url": "authorize", "valueUri": e.authorize},
                {"url": "token", "valueUri": e.token},
                {"url": "register", "valueUri": e.register},
                {"url": "revoke", "valueUri": e.revoke},
                {"url": "introspect", "valueUri": e.introspect}
            ]
        }]
    })
}

/// RFC 7591 §2 client metadata, the fields the sandbox checks.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    client_name: Option<String>,
    scope: Option<String>,
}

fn refuse(error: &str, description: &str) -> Response {
    reply::json(
        StatusCode::BAD_REQUEST,
        &json!({"error": error, "error_description": description}),
    )
}

/// `POST /oauth2/register`: RFC 7591 registration, open to any client
/// (no initial access token). Answers 201 with the issued client.
pub(crate) async fn register(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return refuse(
            "invalid_client_metadata",
            "the body must be application/json",
        );
    }
    let m: Metadata = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return refuse("invalid_client_metadata", &e.to_string()),
    };
    let method = m
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "client_secret_basic".to_string());
    if !matches!(
        method.as_str(),
        "client_secret_basic" | "client_secret_post" | "none"
    ) {
        return refuse(
            "invalid_client_metadata",
            &format!("token_endpoint_auth_method {method:?} is not offered here"),
        );
    }
    let grants = if m.grant_types.is_empty() {
        vec!["authorization_code".to_string()]
    } else {
        m.grant_types.clone()
    };
    if let Some(g) = grants
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return refuse(
            "invalid_client_metadata",
            &format!("grant type {g:?} is not offered to registered clients"),
        );
    }
    if grants.iter().any(|g| g == "authorization_code") && m.redirect_uris.is_empty() {
        return refuse(
            "invalid_redirect_uri",
            "redirect_uris is required for authorization_code",
        );
    }
    if let Some(bad) = m
        .redirect_uris
        .iter()
        .find(|u| url::Url::parse(u).map_or(true, |u| u.fragment().is_some()))
    {
        return refuse(
            "invalid_redirect_uri",
            &format!("{bad:?} is not an absolute URL without a fragment"),
        );
    }
    let client_id = format!("reg-{}", &mint()[..16]);
    let secret = (method != "none").then(mint);
    let client = ClientConfig {
        id: client_id.clone(),
        secret: secret.clone().map(SecretString::from),
        rotate_refresh_tokens: true,
        omit_refresh_token: false,
        access_token_ttl: 3600,
        bearer_placement: AllowedPlacement::Either,
        private_key_jwt: false,
    };
    {
        let mut registered = lock(&app.registered);
        if registered.len() >= MAX_REGISTERED {
            return reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many registered clients\n",
            );
        }
        registered.push(client);
    }
    tracing::info!(client = %client_id, method = %method, "sandbox: client registered");
    let mut answer = json!({
        "client_id": client_id,
        "client_id_issued_at": now(),
        "token_endpoint_auth_method": method,
        "grant_types": grants,
        "redirect_uris": m.redirect_uris,
        "client_name": m.client_name,
        "scope": m.scope,
    });
    if let Some(s) = secret {
        answer["client_secret"] = json!(s);
        answer["client_secret_expires_at"] = json!(0);
    }
    reply::json(StatusCode::CREATED, &answer)
}

impl App {
    /// A client by id: a configured one, else one registered at
    /// `/oauth2/register`.
    pub(crate) fn client(&self, id: &str) -> Option<ClientConfig> {
        if let Some(c) = self.settings.client(id) {
            return Some(c.clone());
        }
        lock(&self.registered).iter().find(|c| c.id == id).cloned()
    }
}

/// `GET /admin/oauth2/registrations` (loopback only, like every admin
/// route): the registered clients with their secrets, so that a test can
/// look for a secret by value where it must not be. The admin API hands
/// out tokens already; this is no wider.
pub(crate) async fn registrations(State(app): State<Shared>) -> Response {
    use secrecy::ExposeSecret;
    let list: Vec<Value> = lock(&app.registered)
        .iter()
        .map(|c| {
            json!({
                "client_id": c.id,
                "client_secret": c.secret.as_ref().map(|s| s.expose_secret().to_string()),
            })
        })
        .collect();
    reply::json(StatusCode::OK, &list)
}
