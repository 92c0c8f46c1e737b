//! What `fetch` needs to know of a provider, as types `fetch` owns:
//! `config` resolves the file into them (and re-exports them), so `fetch`
//! never imports `config` (no import cycle: config → fetch, never back).
//! `Endpoint` is the part of a provider an HTTP client is made of; the
//! rest are the auth schemes' settings, the request limits and where a
//! secret is read from. Nothing here reads a file or the environment
//! except `SecretSource::load`, which is handed its environment.

use super::limit::RateLimit;
use super::oauth1::{Placement, SignatureMethod};
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// A provider as `fetch` reaches it: where it is, how long and how much
/// its requests may take, which origins may receive credentials, which CA
/// to trust. `config::Provider` gives one (`From<&Provider>`).
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub base_url: &'a Url,
    pub limits: &'a FetchLimits,
    /// Origins (as `scheme://host:port`) that may receive credentials, the
    /// base URL's own first.
    pub trusted_origins: &'a [url::Origin],
    pub ca_file: Option<&'a Path>,
}

/// What a provider serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Ccr,
    Fhir,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Ccr => "ccr",
            ProviderKind::Fhir => "fhir",
        }
    }
}

/// Limits of one provider's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub timeout: Duration,
    pub max_redirects: u32,
    pub max_document_bytes: u64,
    pub max_pages: u32,
    pub retries: u32,
    pub max_retry_after: Duration,
    /// `[providers.limits]`: none when not configured.
    pub rate: Option<RateLimit>,
}

/// Where a secret comes from. The secret itself is read only when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    /// A public client, or a consumer that signs with RSA only.
    None,
}

/// Why a secret could not be read. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "provider {provider}: {key}_env names the environment variable {var}, which is not set"
    )]
    EnvMissing {
        provider: String,
        key: &'static str,
        var: String,
    },
    #[error("provider {provider}: {key}_file = {path}: {source}")]
    File {
        provider: String,
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("provider {provider}: {key}_file = {path} is empty")]
    Empty {
        provider: String,
        key: &'static str,
        path: PathBuf,
    },
}

impl SecretSource {
    /// Reads the secret (`None` for `SecretSource::None`). A file's trailing
    /// newline is not part of the secret. `key` is the key's stem as
    /// configured (`auth.consumer_secret`): errors add `_env` or `_file`.
    pub fn load(
        &self,
        provider: &str,
        key: &'static str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<SecretString>, SecretError> {
        match self {
            SecretSource::None => Ok(None),
            SecretSource::Env(var) => env(var)
                .filter(|v| !v.is_empty())
                .map(|v| Some(SecretString::from(v)))
                .ok_or_else(|| SecretError::EnvMissing {
                    provider: provider.to_string(),
                    key,
                    var: var.clone(),
                }),
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    provider: provider.to_string(),
                    key,
                    path: path.clone(),
                    source,
                })?;
                let trimmed = text.trim_end_matches(['\r', '\n']);
                if trimmed.is_empty() {
                    return Err(SecretError::Empty {
                        provider: provider.to_string(),
                        key,
                        path: path.clone(),
                    });
                }
                Ok(Some(SecretString::from(trimmed.to_string())))
            }
        }
    }
}

/// OAuth 1.0a settings of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oauth1Settings {
    pub consumer_key: String,
    pub consumer_secret: SecretSource,
    pub signature_method: SignatureMethod,
    pub rsa_private_key_file: Option<PathBuf>,
    pub placement: Placement,
    pub realm: Option<String>,
    pub body_hash: bool,
    /// The three-legged flow of `link start`; `None` when no endpoint is configured.
    pub consent: Option<Box<Oauth1Consent>>,
}

/// The three-legged flow's endpoints (RFC 5849 §2), all required together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oauth1Consent {
    pub request_token_url: Url,
    pub authorize_url: Url,
    pub access_token_url: Url,
    /// Sent as `oauth_callback`; `link start` listens on it (a loopback IP literal).
    pub redirect_uri: Option<Url>,
    /// `POST` (default) or `GET`, for both token requests.
    pub token_method: &'static str,
}

/// How an OAuth 2.0 client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Basic,
    Post,
    /// A public client (`client_auth = "none"`): only `client_id` in the body.
    None,
}

/// The algorithm of `private_key_jwt` client assertions (SMART asks for these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlg {
    Rs384,
    Es384,
}

impl AssertionAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionAlg::Rs384 => "RS384",
            AssertionAlg::Es384 => "ES384",
        }
    }
}

/// The key of `client_auth = "private_key_jwt"` (RFC 7523). The file is
/// read only when a token is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionKeySettings {
    pub private_key_file: PathBuf,
    pub key_id: String,
    pub algorithm: AssertionAlg,
}

/// The OAuth 2.0 grant a provider is used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oauth2Grant {
    /// Per-patient links made by consent (the default).
    AuthorizationCode,
    /// SMART Backend Services: a token for rxsync itself (bulk export).
    ClientCredentials,
}

/// The level of a `$export` kick-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkLevel {
    System,
    Group(String),
    Patient,
}

impl BulkLevel {
    pub fn as_str(&self) -> &'static str {
        match self {
            BulkLevel::System => "system",
            BulkLevel::Group(_) => "group",
            BulkLevel::Patient => "patient",
        }
    }
}

/// OAuth 2.0 settings of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oauth2Settings {
    /// `None` only with `discover = true`: read from the discovery
    /// documents when first needed (`Provider::discover`).
    pub token_url: Option<Url>,
    /// An administrator-registered client. `None`: the client rxsync
    /// registered itself (`provider register`), sealed in the store. A
    /// configured client id always takes precedence over a registration.
    pub client_id: Option<String>,
    pub client_secret: SecretSource,
    pub client_auth: ClientAuth,
    /// RFC 6750 §2.1 (header) or §2.3 (`access_token` query parameter).
    pub placement: Placement,
    pub scopes: Vec<String>,
    pub revocation_url: Option<Url>,
    pub introspection_url: Option<Url>,
    pub grant: Oauth2Grant,
    /// `client_auth = "private_key_jwt"`: the assertion rides in the request
    /// body (so `client_auth` is `Post`) and is signed with this key.
    pub private_key_jwt: Option<AssertionKeySettings>,
    /// The key before the current one (rotation): only published in the JWKS.
    pub previous_private_key_jwt: Option<AssertionKeySettings>,
    /// How links are made by consent (`authorize_url` …); `None` when the
    /// grant is not `authorization_code`, or when neither `authorize_url`
    /// nor `discover = true` can give an authorization endpoint.
    pub consent: Option<ConsentSettings>,
    /// RFC 7591 registration endpoint (else discovered, with `discover = true`).
    pub registration_url: Option<Url>,
    /// The one redirect URI: registered by `provider register` and sent
    /// with authorization requests; `link start` listens on it (a loopback
    /// IP literal), the review app's callback uses its own.
    pub redirect_uri: Option<Url>,
}

/// The authorization request of a provider (authorization code + PKCE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSettings {
    /// The configured authorization endpoint; `None` with `discover = true`:
    /// read from the discovery documents at use time (configured wins).
    pub authorize_url: Option<Url>,
    pub prompt_login: bool,
    /// Extra parameters, in key order (never one rxsync sets itself).
    pub authorize_params: Vec<(String, String)>,
}
