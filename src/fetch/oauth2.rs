//! OAuth 2.0 token refresh (RFC 6749 §6, through the `oauth2` crate) and
//! revocation (RFC 7009).
//!
//! The `oauth2` crate's own reqwest client targets reqwest 0.12; ours is
//! 0.13, so the crate gets a closure that sends its requests through the
//! provider's client (no redirects, bounded bodies). Revocation is a plain
//! form POST: the crate's `revoke_token` refuses every non-https URL,
//! loopback included.
//!
//! Both take a `Client`: the token endpoint and the client credentials
//! as one exchange uses them, resolved by `Client::resolve` from the
//! configuration, the discovered endpoints and the registered client.

use crate::config::{ClientAuth, Oauth2Settings};
use crate::discovery::Discovered;
use base64::Engine as _;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenResponse, TokenUrl,
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

/// The client rxsync is at a provider, as one exchange uses it.
#[derive(Clone)]
pub struct Client {
    pub token_url: Url,
    pub revocation_url: Option<Url>,
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub auth: ClientAuth,
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
    /// configured secret) over a registered client, which is used only
    /// when the configuration names no client id.
    pub fn resolve(
        o: &Oauth2Settings,
        discovered: Option<&Discovered>,
        configured_secret: Option<SecretString>,
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
                secret: configured_secret,
                auth: o.client_auth,
                from: "config",
            }),
            (None, Some(r)) => Ok(Client {
                token_url,
                revocation_url,
                client_id: r.client_id,
                auth: match r.auth_method.as_str() {
                    "client_secret_post" | "none" => ClientAuth::Post,
                    _ => ClientAuth::Basic,
                },
                secret: r.secret,
                from: "registration",
            }),
            (None, None) => Err(
                "no client: auth.client_id is not set and no client is registered (run rxsync provider register)"
                    .into(),
            ),
        }
    }
}

/// Exchanges a refresh token for new tokens.
pub async fn refresh(
    client: &reqwest::Client,
    c: &Client,
    refresh_token: &SecretString,
    timeout: Duration,
) -> Result<TokenSet, RefreshError> {
    let mut oauth = BasicClient::new(ClientId::new(c.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(c.token_url.clone()))
        .set_auth_type(match c.auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Post => AuthType::RequestBody,
        });
    if let Some(s) = &c.secret {
        oauth = oauth.set_client_secret(ClientSecret::new(s.expose_secret().to_string()));
    }
    // Each request's future owns its client handle (a cheap Arc clone), so
    // the whole refresh future is Send for any caller's lifetimes.
    let http_client = |req: oauth2::HttpRequest| {
        let client = client.clone();
        async move { send(&client, req, timeout).await }
    };
    let token = RefreshToken::new(refresh_token.expose_secret().to_string());
    let answer = oauth
        .exchange_refresh_token(&token)
        .request_async(&http_client)
        .await;
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
    c: &Client,
    url: &url::Url,
    token: &SecretString,
    hint: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut form: Vec<(&str, &str)> =
        vec![("token", token.expose_secret()), ("token_type_hint", hint)];
    let mut req = client.post(url.clone()).timeout(timeout);
    match (c.auth, c.secret.as_ref()) {
        (ClientAuth::Basic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts form-encoded before base64.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&c.client_id), enc(secret.expose_secret()));
            let mut v = reqwest::header::HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
            .map_err(|_| "the client credentials are not a valid header".to_string())?;
            v.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, v);
        }
        (ClientAuth::Post, Some(secret)) => {
            form.push(("client_id", &c.client_id));
            form.push(("client_secret", secret.expose_secret()));
        }
        (_, None) => form.push(("client_id", &c.client_id)),
    }
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = req
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| transport(&e))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{} answered {status}", super::auth::redact(url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Oauth2Grant, SecretSource};
    use crate::fetch::oauth1::Placement;

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
            registration_url: None,
            redirect_uri: None,
        }
    }

    fn registered() -> Registered {
        Registered {
            client_id: "reg-1".into(),
            secret: Some(SecretString::from("reg-secret")),
            auth_method: "client_secret_post".into(),
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
            Some(SecretString::from("conf-secret")),
            Some(registered()),
        )
        .unwrap();
        assert_eq!(c.token_url.as_str(), "https://conf.example/token");
        assert_eq!(c.client_id, "admin-client");
        assert_eq!(
            c.secret.as_ref().map(|s| s.expose_secret()),
            Some("conf-secret")
        );
        assert_eq!((c.auth, c.from), (ClientAuth::Basic, "config"));
        // The discovered revocation endpoint fills what config leaves out.
        assert_eq!(
            c.revocation_url.as_ref().map(Url::as_str),
            Some("https://found.example/revoke")
        );
        // No configured client: the registered one, authenticating as registered.
        let c = Client::resolve(
            &settings(None, None),
            Some(&discovered),
            None,
            Some(registered()),
        )
        .unwrap();
        assert_eq!(c.token_url.as_str(), "https://found.example/token");
        assert_eq!(
            (c.client_id.as_str(), c.auth, c.from),
            ("reg-1", ClientAuth::Post, "registration")
        );
        // Neither: each gap is named.
        let e = Client::resolve(&settings(None, None), Some(&discovered), None, None)
            .err()
            .unwrap();
        assert!(e.contains("run rxsync provider register"), "{e}");
        let e = Client::resolve(&settings(None, Some("c")), None, None, None)
            .err()
            .unwrap();
        assert!(e.contains("discovery found none"), "{e}");
    }
}
