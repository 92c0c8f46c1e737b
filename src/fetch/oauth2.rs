//! OAuth 2.0 token requests: the authorization code exchange (RFC 6749
//! §4.1.3 with the PKCE verifier of RFC 7636 §4.5), refresh (§6, through the
//! `oauth2` crate) and revocation (RFC 7009), each with the provider's one
//! client authentication (`ClientProof`): HTTP Basic, form parameters, a
//! public client's bare `client_id`, or a `private_key_jwt` assertion
//! (RFC 7523, signed by `backend::client_assertion`).
//!
//! The code exchange is a plain form POST rather than the crate's
//! `exchange_code`: the identity guard needs the token response's raw
//! fields (`id_token`, SMART's `patient`, `access_grant_expiration`…) and
//! the crate would only hand them back through a custom
//! `ExtraTokenFields` type per provider flavour.
//!
//! The `oauth2` crate's own reqwest client targets reqwest 0.12; ours is
//! 0.13, so the crate gets a closure that sends its requests through the
//! provider's client (no redirects, bounded bodies). Revocation is a plain
//! form POST: the crate's `revoke_token` refuses every non-https URL,
//! loopback included.

use super::backend::{AssertionKey, JWT_BEARER, client_assertion};
use crate::config::{ClientAuth, Oauth2Settings};
use base64::Engine as _;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Token endpoint answers are read up to this many bytes.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// What a refresh returned.
pub struct TokenSet {
    pub access_token: SecretString,
    /// None: the provider sent no new refresh token; keep the stored one.
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub scope: Option<String>,
}

/// Why a refresh failed. Never carries a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefreshError {
    /// The grant is gone (expired, revoked, or a rotated token reused):
    /// only a new consent helps.
    #[error("the token endpoint refused the refresh token (invalid_grant{})", .0.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    InvalidGrant(Option<String>),
    /// The client itself was refused: a configuration problem.
    #[error("the token endpoint refused the client ({code}{}); check client_id, the client secret and client_auth", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Client {
        code: String,
        description: Option<String>,
    },
    /// Anything else (network, 5xx, an answer that is not a token response).
    #[error("the token refresh failed: {0}")]
    Failed(String),
}

/// The error type our HTTP closure gives the `oauth2` crate.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// Sends one `oauth2` crate request through `client`.
async fn send(
    client: &reqwest::Client,
    request: oauth2::HttpRequest,
    timeout: Duration,
) -> Result<oauth2::HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| HttpError(transport(&e)))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = read_limited(resp).await?;
    let mut out = http::Response::builder().status(status);
    if let Some(h) = out.headers_mut() {
        *h = headers;
    }
    out.body(body).map_err(|e| HttpError(e.to_string()))
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| HttpError(transport(&e)))? {
        if body.len() + chunk.len() > TOKEN_BODY_LIMIT {
            return Err(HttpError(format!(
                "the token endpoint's answer is over {TOKEN_BODY_LIMIT} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    match e.url() {
        Some(u) => format!("{what}: {}", super::auth::redact(u)),
        None => what.to_string(),
    }
}

/// How the client authenticates at the token endpoint, with what it needs
/// (the secret loaded, the key read). Never shown: `Debug` names the kind only.
pub enum ClientProof {
    /// `client_secret_basic` (RFC 6749 §2.3.1).
    Basic(SecretString),
    /// `client_secret_post`.
    Post(SecretString),
    /// A public client: `client_id` in the body, nothing else.
    None,
    /// `private_key_jwt` (RFC 7523 §2.2): a fresh assertion per request.
    Assertion(AssertionKey),
}

impl std::fmt::Debug for ClientProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientProof::Basic(_) => "ClientProof::Basic",
            ClientProof::Post(_) => "ClientProof::Post",
            ClientProof::None => "ClientProof::None",
            ClientProof::Assertion(_) => "ClientProof::Assertion",
        })
    }
}

impl ClientProof {
    /// The proof `settings` ask for: `key` when `private_key_jwt`, else the
    /// client secret (none: a public client, sending only `client_id`).
    pub fn new(
        settings: &Oauth2Settings,
        secret: Option<SecretString>,
        key: Option<AssertionKey>,
    ) -> ClientProof {
        match (key, settings.client_auth, secret) {
            (Some(key), _, _) => ClientProof::Assertion(key),
            (None, ClientAuth::Basic, Some(s)) => ClientProof::Basic(s),
            (None, ClientAuth::Post, Some(s)) => ClientProof::Post(s),
            _ => ClientProof::None,
        }
    }

    /// Reads what `settings` name: the secret through `env`, the key file.
    pub fn load(
        settings: &Oauth2Settings,
        provider: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ClientProof, String> {
        let key = settings
            .private_key_jwt
            .as_ref()
            .map(AssertionKey::load)
            .transpose()
            .map_err(|e| format!("provider {provider}: {e}"))?;
        let secret = settings
            .client_secret
            .load(provider, "auth.client_secret", env)
            .map_err(|e| e.to_string())?;
        Ok(ClientProof::new(settings, secret, key))
    }

    /// The form pairs this proof adds to a token request's body (the
    /// assertion made now for `token_url`), and the Basic header value if any.
    fn apply(&self, client_id: &str, token_url: &url::Url) -> Result<ProofParts, String> {
        let plain = |s: &str| SecretString::from(s.to_string());
        match self {
            ClientProof::Basic(secret) => Ok((Vec::new(), Some(basic_header(client_id, secret)?))),
            ClientProof::Post(secret) => Ok((
                vec![
                    ("client_id", plain(client_id)),
                    ("client_secret", secret.clone()),
                ],
                None,
            )),
            ClientProof::None => Ok((vec![("client_id", plain(client_id))], None)),
            ClientProof::Assertion(key) => {
                let assertion = client_assertion(client_id, token_url, key, chrono::Utc::now())
                    .map_err(|e| e.to_string())?;
                Ok((
                    vec![
                        ("client_id", plain(client_id)),
                        ("client_assertion_type", plain(JWT_BEARER)),
                        ("client_assertion", assertion),
                    ],
                    None,
                ))
            }
        }
    }
}

/// What a proof adds to a token request: form pairs, and a Basic header.
type ProofParts = (
    Vec<(&'static str, SecretString)>,
    Option<reqwest::header::HeaderValue>,
);

/// `Authorization: Basic …` (RFC 6749 §2.3.1: both parts form-encoded before base64), sensitive.
fn basic_header(
    client_id: &str,
    secret: &SecretString,
) -> Result<reqwest::header::HeaderValue, String> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(secret.expose_secret()));
    let mut v = reqwest::header::HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
    .map_err(|_| "the client credentials are not a valid header".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}

/// Exchanges a refresh token for new tokens, authenticating as `proof`.
pub async fn refresh(
    client: &reqwest::Client,
    settings: &Oauth2Settings,
    proof: &ClientProof,
    refresh_token: &SecretString,
    timeout: Duration,
) -> Result<TokenSet, RefreshError> {
    let mut oauth = BasicClient::new(ClientId::new(settings.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(settings.token_url.clone()))
        .set_auth_type(match proof {
            ClientProof::Basic(_) => AuthType::BasicAuth,
            _ => AuthType::RequestBody,
        });
    if let ClientProof::Basic(s) | ClientProof::Post(s) = proof {
        oauth = oauth.set_client_secret(ClientSecret::new(s.expose_secret().to_string()));
    }
    let assertion = match proof {
        ClientProof::Assertion(key) => Some(
            client_assertion(
                &settings.client_id,
                &settings.token_url,
                key,
                chrono::Utc::now(),
            )
            .map_err(|e| RefreshError::Failed(e.to_string()))?,
        ),
        _ => None,
    };
    // Each request's future owns its client handle (a cheap Arc clone), so
    // the whole refresh future is Send for any caller's lifetimes.
    let http_client = |req: oauth2::HttpRequest| {
        let client = client.clone();
        async move { send(&client, req, timeout).await }
    };
    let token = RefreshToken::new(refresh_token.expose_secret().to_string());
    let mut request = oauth.exchange_refresh_token(&token);
    if let Some(a) = &assertion {
        request = request
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", a.expose_secret().to_string());
    }
    let answer = request.request_async(&http_client).await;
    match answer {
        Ok(r) => Ok(TokenSet {
            access_token: SecretString::from(r.access_token().secret().clone()),
            refresh_token: r
                .refresh_token()
                .map(|t| SecretString::from(t.secret().clone())),
            expires_at: r.expires_in().and_then(|d| {
                chrono::Duration::from_std(d)
                    .ok()
                    .map(|d| chrono::Utc::now() + d)
            }),
            scope: r
                .scopes()
                .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")),
        }),
        Err(RequestTokenError::ServerResponse(e)) => {
            let description = e.error_description().cloned();
            match e.error() {
                BasicErrorResponseType::InvalidGrant => {
                    Err(RefreshError::InvalidGrant(description))
                }
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => Err(RefreshError::Client {
                    code: e.error().to_string(),
                    description,
                }),
                other => Err(RefreshError::Failed(format!(
                    "{other}{}",
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                ))),
            }
        }
        Err(RequestTokenError::Request(e)) => Err(RefreshError::Failed(e.to_string())),
        Err(RequestTokenError::Parse(_, body)) => Err(RefreshError::Failed(format!(
            "the answer is not a token response ({} bytes)",
            body.len()
        ))),
        Err(RequestTokenError::Other(m)) => Err(RefreshError::Failed(m)),
    }
}

/// Revokes a token at the provider's RFC 7009 endpoint. 200 means revoked
/// (or unknown, which is the same to us).
pub async fn revoke(
    client: &reqwest::Client,
    settings: &Oauth2Settings,
    url: &url::Url,
    proof: &ClientProof,
    token: &SecretString,
    hint: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut form: Vec<(&str, SecretString)> = vec![
        ("token", token.clone()),
        ("token_type_hint", SecretString::from(hint.to_string())),
    ];
    let (auth, header) = proof.apply(&settings.client_id, url)?;
    form.extend(auth);
    let status = post_form(client, url, &form, header, timeout)
        .await
        .map(|(status, _)| status)?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{} answered {status}", super::auth::redact(url)))
    }
}

/// Asks the provider's RFC 7662 endpoint about an access token,
/// authenticating as `proof` (the client authentication the token endpoint
/// uses). Returns the answer's JSON (its checks are
/// `identity::read::check_introspection`).
pub async fn introspect(
    client: &reqwest::Client,
    settings: &Oauth2Settings,
    url: &url::Url,
    proof: &ClientProof,
    token: &SecretString,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let mut form: Vec<(&str, SecretString)> = vec![
        ("token", token.clone()),
        (
            "token_type_hint",
            SecretString::from("access_token".to_string()),
        ),
    ];
    let (auth, header) = proof.apply(&settings.client_id, url)?;
    form.extend(auth);
    let (status, body) = post_form(client, url, &form, header, timeout).await?;
    if !status.is_success() {
        return Err(format!("{} answered {status}", super::auth::redact(url)));
    }
    serde_json::from_slice(&body).map_err(|e| {
        format!(
            "{}: the introspection answer is not JSON: {e}",
            super::auth::redact(url)
        )
    })
}

/// POSTs a form (bounded answer); the status and the body.
async fn post_form(
    client: &reqwest::Client,
    url: &url::Url,
    form: &[(&str, SecretString)],
    basic: Option<reqwest::header::HeaderValue>,
    timeout: Duration,
) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.expose_secret())))
        .finish();
    let mut req = client
        .post(url.clone())
        .timeout(timeout)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(h) = basic {
        req = req.header(reqwest::header::AUTHORIZATION, h);
    }
    let resp = req.body(body).send().await.map_err(|e| transport(&e))?;
    let status = resp.status();
    let body = read_limited(resp).await.map_err(|e| e.0)?;
    Ok((status, body))
}

/// What an authorization code bought: the tokens, sealed in `SecretString`s,
/// and every other field of the token response as given (`patient`,
/// `scope`, `expires_in`, `access_grant_expiration`, `refresh_expires_in`…),
/// for the identity guard and the link's expiry.
pub struct CodeTokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// OpenID Connect: to be validated by the identity guard before it is trusted.
    pub id_token: Option<SecretString>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub scope: Option<String>,
    /// SMART's launch context: the patient's id at the provider.
    pub patient: Option<String>,
    /// The other fields of the answer (never a token: those three are taken out).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Why a code exchange failed. Never carries a token, a code or a verifier.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// The token endpoint answered with an OAuth error (RFC 6749 §5.2).
    #[error("the token endpoint {url} refused the code ({code}{})", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        url: String,
        code: String,
        description: Option<String>,
    },
    /// Transport, a non-JSON answer, no access token, a token type other than bearer.
    #[error("the code exchange at {url} failed: {detail}")]
    Failed { url: String, detail: String },
}

/// Exchanges an authorization code (RFC 6749 §4.1.3) with its PKCE verifier.
pub async fn exchange_code(
    client: &reqwest::Client,
    settings: &Oauth2Settings,
    proof: &ClientProof,
    code: &SecretString,
    verifier: &SecretString,
    redirect_uri: &str,
    timeout: Duration,
) -> Result<CodeTokens, ExchangeError> {
    let url = super::auth::redact(&settings.token_url);
    let failed = |detail: String| ExchangeError::Failed {
        url: url.clone(),
        detail,
    };
    let plain = |s: &str| SecretString::from(s.to_string());
    let mut form = vec![
        ("grant_type", plain("authorization_code")),
        ("code", code.clone()),
        ("redirect_uri", plain(redirect_uri)),
        ("code_verifier", verifier.clone()),
    ];
    let (auth, header) = proof
        .apply(&settings.client_id, &settings.token_url)
        .map_err(&failed)?;
    form.extend(auth);
    let (status, body) = post_form(client, &settings.token_url, &form, header, timeout)
        .await
        .map_err(&failed)?;
    let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|_| {
            failed(format!(
                "answered {status} with a body that is not a JSON object ({} bytes)",
                body.len()
            ))
        })?;
    if let Some(code) = fields.get("error").and_then(|v| v.as_str()) {
        return Err(ExchangeError::Refused {
            url: url.clone(),
            code: code.to_string(),
            description: fields
                .get("error_description")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        });
    }
    if !status.is_success() {
        return Err(failed(format!("answered {status}")));
    }
    let mut take = |name: &str| -> Option<String> {
        match fields.remove(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        }
    };
    let access_token = take("access_token")
        .map(SecretString::from)
        .ok_or_else(|| failed("the answer has no access_token".into()))?;
    let refresh_token = take("refresh_token").map(SecretString::from);
    let id_token = take("id_token").map(SecretString::from);
    match fields.get("token_type").and_then(|v| v.as_str()) {
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        Some(t) => return Err(failed(format!("token_type {t:?} is not Bearer"))),
        None => return Err(failed("the answer has no token_type".into())),
    }
    let expires_at = fields
        .get("expires_in")
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()))
        .filter(|s| (0..=10 * 365 * 86_400).contains(s))
        .map(|s| chrono::Utc::now() + chrono::Duration::seconds(s));
    let scope = fields
        .get("scope")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let patient = fields
        .get("patient")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Ok(CodeTokens {
        access_token,
        refresh_token,
        id_token,
        expires_at,
        scope,
        patient,
        fields,
    })
}
