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
//!
//! All three take a `Client`: the token endpoint, the client id and its
//! proof as one exchange uses them, resolved by `Client::resolve` from the
//! configuration, the discovered endpoints and the registered client.

use super::backend::{AssertionKey, JWT_BEARER, client_assertion};
use super::settings::{ClientAuth, Oauth2Settings};
use crate::discovery::Discovered;
use base64::Engine as _;
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, ExtraTokenFields, RefreshToken, RequestTokenError,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use url::Url;

/// Token endpoint answers are read up to this many bytes.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// What a refresh returned.
pub struct TokenSet {
    pub access_token: SecretString,
    /// None: the provider sent no new refresh token; keep the stored one.
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub scope: Option<String>,
    /// When the grant ends, if the answer says (`fetch::grant`: its
    /// `access_grant_expiration`, else a rotated JWT refresh token's `exp`).
    pub grant_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The one non-token field of a refresh answer rxsync reads besides the
/// standard ones: a grant end may move with every refresh.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct GrantFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_grant_expiration: Option<serde_json::Value>,
}

impl ExtraTokenFields for GrantFields {}

/// The `oauth2` crate's basic client, reading `GrantFields` too.
type RefreshClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<GrantFields, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

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

/// Reads a token endpoint's answer, at most 64 KiB (OAuth 2.0 and the
/// OAuth 1.0a token requests alike); more is an error saying so.
pub(crate) async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, HttpError> {
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

pub(crate) fn transport(e: &reqwest::Error) -> String {
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

    /// Adds this proof's secret (and its Basic header form with
    /// `client_id`) to `secrets`, so an echo of it is scrubbed.
    pub fn add_secrets(&self, client_id: &str, secrets: &mut super::redact::Secrets) {
        match self {
            ClientProof::Basic(s) | ClientProof::Post(s) => {
                secrets.add_basic(client_id, s.expose_secret())
            }
            ClientProof::None | ClientProof::Assertion(_) => {}
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

    /// The form pairs this proof adds to a request's body (an assertion made
    /// now with `aud` = `audience`), and the Basic header value if any. Only
    /// `Client::proof_parts` calls it, so the audience has one rule.
    fn apply(&self, client_id: &str, audience: &url::Url) -> Result<ProofParts, String> {
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
                let assertion = client_assertion(client_id, audience, key, chrono::Utc::now())
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

/// The client rxsync is at a provider, as one exchange uses it.
#[derive(Debug)]
pub struct Client {
    /// Configured `token_url`, else the discovered `token_endpoint`.
    pub token_url: Url,
    /// Configured `revocation_url`, else the discovered `revocation_endpoint`.
    pub revocation_url: Option<Url>,
    pub client_id: String,
    /// How this client authenticates at the token endpoint, loaded.
    pub proof: ClientProof,
    /// Where the client id came from, for messages: "config" or "registration".
    pub from: &'static str,
}

/// The client registered at a provider, as `Client::resolve` needs it.
pub struct Registered {
    pub client_id: String,
    pub secret: Option<SecretString>,
    /// `token_endpoint_auth_method` as the server registered it.
    pub auth_method: String,
}

impl Client {
    /// Resolves the client for one exchange. Precedence: a configured
    /// endpoint over a discovered one; a configured client id (with its
    /// configured proof) over a registered client, which is used only when
    /// the configuration names no client id. A registered client
    /// authenticates as it was registered: `none` → a public client,
    /// `client_secret_post` → form parameters, `private_key_jwt` → the
    /// configured key's assertion, anything else → HTTP Basic.
    pub fn resolve(
        o: &Oauth2Settings,
        discovered: Option<&Discovered>,
        configured: ClientProof,
        registered: Option<Registered>,
    ) -> Result<Client, String> {
        let token_url = o
            .token_url
            .clone()
            .or_else(|| discovered.and_then(|d| d.token_endpoint.clone()))
            .ok_or("no token endpoint: auth.token_url is not set and discovery found none")?;
        let revocation_url = o
            .revocation_url
            .clone()
            .or_else(|| discovered.and_then(|d| d.revocation_endpoint.clone()));
        match (&o.client_id, registered) {
            (Some(id), _) => Ok(Client {
                token_url,
                revocation_url,
                client_id: id.clone(),
                proof: configured,
                from: "config",
            }),
            (None, Some(r)) => {
                let proof = match (r.auth_method.as_str(), r.secret, configured) {
                    ("none", _, _) => ClientProof::None,
                    ("private_key_jwt", _, ClientProof::Assertion(key)) => {
                        ClientProof::Assertion(key)
                    }
                    ("private_key_jwt", _, _) => {
                        return Err(
                            "the client was registered for private_key_jwt but no private_key_file is configured"
                                .into(),
                        );
                    }
                    (_, None, _) => ClientProof::None,
                    ("client_secret_post", Some(s), _) => ClientProof::Post(s),
                    (_, Some(s), _) => ClientProof::Basic(s),
                };
                Ok(Client {
                    token_url,
                    revocation_url,
                    client_id: r.client_id,
                    proof,
                    from: "registration",
                })
            }
            (None, None) => Err(
                "no client: auth.client_id is not set and no client is registered (run rxsync provider register)"
                    .into(),
            ),
        }
    }

    /// The one `aud` of a `private_key_jwt` assertion (RFC 7523 §3): the
    /// token endpoint, for every request the client authenticates
    /// (exchange, refresh, revocation, introspection).
    fn assertion_audience(&self) -> &Url {
        &self.token_url
    }

    /// The form pairs and Basic header that authenticate this client on one
    /// request to any of its endpoints (an assertion made now).
    fn proof_parts(&self) -> Result<ProofParts, String> {
        self.proof.apply(&self.client_id, self.assertion_audience())
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

/// Exchanges a refresh token for new tokens, authenticating as `c.proof`.
pub async fn refresh(
    client: &reqwest::Client,
    c: &Client,
    refresh_token: &SecretString,
    timeout: Duration,
) -> Result<TokenSet, RefreshError> {
    let proof = &c.proof;
    let mut oauth = RefreshClient::new(ClientId::new(c.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(c.token_url.clone()))
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
                &c.client_id,
                c.assertion_audience(),
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
            grant_expires_at: refreshed_grant_end(&r),
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

/// The grant end a refresh answer gives (`fetch::grant`): its
/// `access_grant_expiration`, else its rotated refresh token's `exp`.
fn refreshed_grant_end(
    r: &StandardTokenResponse<GrantFields, BasicTokenType>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let mut fields = serde_json::Map::new();
    if let Some(v) = &r.extra_fields().access_grant_expiration {
        fields.insert("access_grant_expiration".into(), v.clone());
    }
    super::grant::grant_expiry(&fields, r.refresh_token().map(|t| t.secret().as_str()))
}

/// Revokes a token at the provider's RFC 7009 endpoint. 200 means revoked
/// (or unknown, which is the same to us).
pub async fn revoke(
    client: &reqwest::Client,
    c: &Client,
    url: &url::Url,
    token: &SecretString,
    hint: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut form: Vec<(&str, SecretString)> = vec![
        ("token", token.clone()),
        ("token_type_hint", SecretString::from(hint.to_string())),
    ];
    let (auth, header) = c.proof_parts()?;
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
/// authenticating as the resolved client `c` (as at the token endpoint: an
/// assertion's `aud` is the token endpoint here too). Returns the answer's JSON (its checks are
/// `identity::read::check_introspection`).
pub async fn introspect(
    client: &reqwest::Client,
    c: &Client,
    url: &url::Url,
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
    let (auth, header) = c.proof_parts()?;
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

/// Exchanges an authorization code (RFC 6749 §4.1.3) with its PKCE
/// verifier. A refusal's words come from the provider and may echo what it
/// was sent: the code, the verifier and the client's secret are scrubbed
/// from them by value before the error leaves here (it is audited, printed
/// and shown on pages).
pub async fn exchange_code(
    client: &reqwest::Client,
    c: &Client,
    code: &SecretString,
    verifier: &SecretString,
    redirect_uri: &str,
    timeout: Duration,
) -> Result<CodeTokens, ExchangeError> {
    exchange(client, c, code, verifier, redirect_uri, timeout)
        .await
        .map_err(|e| {
            let mut secrets = super::redact::Secrets::new();
            secrets.add(code.expose_secret());
            secrets.add(verifier.expose_secret());
            c.proof.add_secrets(&c.client_id, &mut secrets);
            match e {
                ExchangeError::Refused {
                    url,
                    code,
                    description,
                } => ExchangeError::Refused {
                    url,
                    code: secrets.scrub(&code),
                    description: description.map(|d| secrets.scrub(&d)),
                },
                ExchangeError::Failed { url, detail } => ExchangeError::Failed {
                    url,
                    detail: secrets.scrub(&detail),
                },
            }
        })
}

async fn exchange(
    client: &reqwest::Client,
    c: &Client,
    code: &SecretString,
    verifier: &SecretString,
    redirect_uri: &str,
    timeout: Duration,
) -> Result<CodeTokens, ExchangeError> {
    let url = super::auth::redact(&c.token_url);
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
    let (auth, header) = c.proof_parts().map_err(&failed)?;
    form.extend(auth);
    let (status, body) = post_form(client, &c.token_url, &form, header, timeout)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::oauth1::Placement;
    use crate::fetch::settings::{Oauth2Grant, SecretSource};

    fn settings(token_url: Option<&str>, client_id: Option<&str>) -> Oauth2Settings {
        Oauth2Settings {
            token_url: token_url.map(|u| Url::parse(u).unwrap()),
            client_id: client_id.map(str::to_string),
            client_secret: SecretSource::None,
            client_auth: ClientAuth::Basic,
            placement: Placement::Header,
            scopes: Vec::new(),
            revocation_url: None,
            introspection_url: None,
            grant: Oauth2Grant::AuthorizationCode,
            private_key_jwt: None,
            previous_private_key_jwt: None,
            consent: None,
            registration_url: None,
            redirect_uri: None,
        }
    }

    fn registered(auth_method: &str, secret: Option<&str>) -> Registered {
        Registered {
            client_id: "reg-1".into(),
            secret: secret.map(|s| SecretString::from(s.to_string())),
            auth_method: auth_method.into(),
        }
    }

    fn secret_of(p: &ClientProof) -> Option<&str> {
        match p {
            ClientProof::Basic(s) | ClientProof::Post(s) => Some(s.expose_secret()),
            _ => None,
        }
    }

    #[test]
    fn configured_values_take_precedence_over_discovered_and_registered_ones() {
        let discovered = Discovered {
            token_endpoint: Some(Url::parse("https://found.example/token").unwrap()),
            revocation_endpoint: Some(Url::parse("https://found.example/revoke").unwrap()),
            ..Discovered::default()
        };
        // Configured token endpoint and client: both win.
        let c = Client::resolve(
            &settings(Some("https://conf.example/token"), Some("admin-client")),
            Some(&discovered),
            ClientProof::Basic(SecretString::from("conf-secret")),
            Some(registered("client_secret_post", Some("reg-secret"))),
        )
        .unwrap();
        assert_eq!(c.token_url.as_str(), "https://conf.example/token");
        assert_eq!(c.client_id, "admin-client");
        assert!(matches!(c.proof, ClientProof::Basic(_)));
        assert_eq!(secret_of(&c.proof), Some("conf-secret"));
        assert_eq!(c.from, "config");
        // The discovered revocation endpoint fills what config leaves out.
        assert_eq!(
            c.revocation_url.as_ref().map(Url::as_str),
            Some("https://found.example/revoke")
        );
        // No configured client: the registered one, authenticating as registered.
        let c = Client::resolve(
            &settings(None, None),
            Some(&discovered),
            ClientProof::None,
            Some(registered("client_secret_post", Some("reg-secret"))),
        )
        .unwrap();
        assert_eq!(c.token_url.as_str(), "https://found.example/token");
        assert_eq!((c.client_id.as_str(), c.from), ("reg-1", "registration"));
        assert!(matches!(c.proof, ClientProof::Post(_)));
        assert_eq!(secret_of(&c.proof), Some("reg-secret"));
        // Neither: each gap is named.
        let e = Client::resolve(
            &settings(None, None),
            Some(&discovered),
            ClientProof::None,
            None,
        )
        .err()
        .unwrap();
        assert!(e.contains("run rxsync provider register"), "{e}");
        let e = Client::resolve(&settings(None, Some("c")), None, ClientProof::None, None)
            .err()
            .unwrap();
        assert!(e.contains("discovery found none"), "{e}");
    }

    #[test]
    fn a_registered_client_authenticates_as_its_registered_method() {
        let o = settings(Some("https://conf.example/token"), None);
        let proof = |method: &str, secret: Option<&str>| {
            Client::resolve(
                &o,
                None,
                ClientProof::None,
                Some(registered(method, secret)),
            )
            .map(|c| format!("{:?}", c.proof))
        };
        let table = [
            ("none", Some("s"), "ClientProof::None"),
            ("client_secret_post", Some("s"), "ClientProof::Post"),
            ("client_secret_basic", Some("s"), "ClientProof::Basic"),
            ("something_else", Some("s"), "ClientProof::Basic"),
            ("client_secret_basic", None, "ClientProof::None"),
        ];
        for (method, secret, want) in table {
            assert_eq!(proof(method, secret).as_deref(), Ok(want), "{method}");
        }
        // private_key_jwt needs the configured key.
        let e = proof("private_key_jwt", None).err().unwrap();
        assert!(e.contains("private_key_file"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_exchange_never_carries_the_code_verifier_or_secret_it_echoes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // A token endpoint that answers with everything it was sent.
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.expect("read");
            let request = String::from_utf8_lossy(&buf[..n]).replace(['"', '\r', '\n'], " ");
            let body = format!(
                "{{\"error\":\"invalid_grant\",\"error_description\":\"you sent {request}\"}}"
            );
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
        });
        let c = Client {
            token_url: Url::parse(&format!("http://127.0.0.1:{port}/token")).expect("url"),
            revocation_url: None,
            client_id: "cid".into(),
            proof: ClientProof::Post(SecretString::from("client-secret-value".to_string())),
            from: "config",
        };
        let code = SecretString::from("authorization-code-value".to_string());
        let verifier = SecretString::from("pkce-verifier-value-0123456789".to_string());
        crate::fetch::http::install_crypto_provider();
        let err = exchange_code(
            &reqwest::Client::new(),
            &c,
            &code,
            &verifier,
            "http://127.0.0.1:1/cb",
            Duration::from_secs(5),
        )
        .await
        .err()
        .expect("refused");
        let text = err.to_string();
        assert!(text.contains("invalid_grant"), "{text}");
        for secret in [
            "authorization-code-value",
            "pkce-verifier-value-0123456789",
            "client-secret-value",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn every_assertion_names_the_token_endpoint_as_its_audience() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pem = dir.path().join("k.pem");
        let ok = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
            ])
            .arg("-out")
            .arg(&pem)
            .status()
            .expect("openssl runs")
            .success();
        assert!(ok, "openssl genpkey");
        let text = std::fs::read_to_string(&pem).expect("pem");
        let key = AssertionKey::from_pem(
            crate::fetch::settings::AssertionAlg::Es384,
            "k1",
            &SecretString::from(text),
        )
        .expect("key");
        let c = Client {
            token_url: Url::parse("https://auth.example/token").unwrap(),
            revocation_url: Some(Url::parse("https://auth.example/revoke").unwrap()),
            client_id: "rxsync".into(),
            proof: ClientProof::Assertion(key),
            from: "config",
        };
        let (form, header) = c.proof_parts().expect("parts");
        assert!(header.is_none());
        let jwt = form
            .iter()
            .find(|(k, _)| *k == "client_assertion")
            .map(|(_, v)| v.expose_secret().to_string())
            .expect("an assertion");
        let payload = jwt.split('.').nth(1).expect("a JWS");
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64url"),
        )
        .expect("JSON claims");
        assert_eq!(claims["aud"], "https://auth.example/token");
    }
}
