//! `[[providers]]`: the service providers rxsync pulls from.
//!
//! Raw tables are deserialized strictly, then checked one by one: every
//! error names the provider, the key and the file. Secrets are never in
//! the file: a provider names an environment variable or a file holding
//! them, read only when a pull needs them (`SecretSource::load`), so a
//! command that never talks to a provider does not need them.

use super::ConfigError;
use crate::discovery::is_loopback;
use crate::domain::ProviderId;
use crate::fetch::fhir::{DEFAULT_MAX_REFERENCE_FETCHES, IncludeMode, SearchSettings};
use crate::fetch::limit::RateLimit;
use crate::fetch::oauth1::{Placement, SignatureMethod};
use crate::fetch::settings::Endpoint;
pub use crate::fetch::settings::{
    AssertionAlg, AssertionKeySettings, BulkLevel, ClientAuth, ConsentSettings, FetchLimits,
    Oauth1Consent, Oauth1Settings, Oauth2Grant, Oauth2Settings, ProviderKind, SecretError,
    SecretSource,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// One `[[providers]]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub base_url: Option<String>,
    /// CCR: the document's URL template (`{patient}` = the remote patient id),
    /// absolute or relative to `base_url`.
    pub document_url: Option<String>,
    /// FHIR: the resource types searched with `patient={patient}`.
    pub resources: Option<Vec<String>>,
    /// Other origins (`https://host[:port]`) that may receive credentials on a redirect.
    #[serde(default)]
    pub trusted_origins: Vec<String>,
    /// Seconds to establish a connection.
    pub connect_timeout: Option<u64>,
    /// Seconds without a byte from the provider.
    pub read_timeout: Option<u64>,
    /// Seconds for a whole request, redirects and body included.
    pub timeout: Option<u64>,
    pub max_redirects: Option<u32>,
    pub max_document_bytes: Option<u64>,
    pub max_pages: Option<u32>,
    /// Extra attempts after a connection error or a 5xx.
    pub retries: Option<u32>,
    /// The longest `Retry-After` (seconds) waited for within one run.
    pub max_retry_after: Option<u64>,
    /// PEM file with extra CA certificates to trust for this provider.
    pub ca_file: Option<PathBuf>,
    /// Seconds between syncs of a link (default: `[sync] interval`).
    pub interval: Option<u64>,
    /// Syncs in flight at once at this provider (default: no limit but `[sync] concurrency`).
    pub max_in_flight: Option<usize>,
    /// `[providers.limits]`: the request budget.
    pub limits: Option<RawLimits>,
    /// `[providers.search]`: FHIR search parameters per resource type,
    /// `include` and `max_reference_fetches`. Kept as a table: its keys are
    /// resource types as well as settings, checked in `resolve_search`.
    pub search: Option<toml::Table>,
    pub auth: Option<RawAuth>,
    /// `true`: the OAuth 2.0 endpoints not spelled out in `[providers.auth]`
    /// are read from the provider's discovery documents when first needed
    /// (`fetch::discover`), and cached in the store with their expiry.
    pub discover: Option<bool>,
    /// `[providers.bulk]`: how a FHIR Bulk Data export's patients are matched.
    pub bulk: Option<RawBulk>,
    /// `[providers.identity]`: the wrong-patient guard.
    pub identity: Option<super::identity::RawIdentity>,
}

/// `[providers.bulk]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBulk {
    /// `"mrn"`: a remote patient no link names is matched by its Patient
    /// resource's identifiers against local MRNs; `"link"` (the default): links only.
    #[serde(rename = "match")]
    pub match_by: Option<String>,
    /// `system`, `group` or `patient` (`rxsync export`).
    pub level: Option<String>,
    /// The Group id (level = "group").
    pub group: Option<String>,
    /// Seconds between the daemon's exports of this provider (none: only on demand).
    pub interval: Option<u64>,
}

/// How `import --bulk` finds the local patient of a remote one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BulkMatch {
    /// Only a link at the provider whose remote patient id is the reference's id.
    #[default]
    Link,
    /// A link, else the export's Patient resource: an identifier value equal
    /// to exactly one local patient's MRN.
    Mrn,
}

/// `[providers.limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Requests per second to this provider, shared by all its syncs in the process.
    pub requests_per_second: Option<f64>,
    /// Requests that may go at once after a quiet time (default: requests_per_second rounded up).
    pub burst: Option<u32>,
}

/// `[providers.auth]` as written: one flat table, checked per scheme so
/// that a key of the other scheme is named as such.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub scheme: Option<String>,
    // OAuth 1.0a
    pub consumer_key: Option<String>,
    pub consumer_secret_env: Option<String>,
    pub consumer_secret_file: Option<PathBuf>,
    pub signature_method: Option<String>,
    pub rsa_private_key_file: Option<PathBuf>,
    pub realm: Option<String>,
    pub body_hash: Option<bool>,
    /// Three-legged consent (RFC 5849 §2): the temporary-credential and
    /// token-credential endpoints (`authorize_url`, `redirect_uri` shared
    /// with OAuth 2.0 below), and the HTTP method both are called with.
    pub request_token_url: Option<String>,
    pub access_token_url: Option<String>,
    pub token_method: Option<String>,
    // OAuth 2.0
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_auth: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub revocation_url: Option<String>,
    pub introspection_url: Option<String>,
    /// RFC 7591 dynamic client registration endpoint (`provider register`).
    pub registration_url: Option<String>,
    /// `authorization_code` (default: links made by consent) or
    /// `client_credentials` (SMART Backend Services).
    pub grant: Option<String>,
    /// `client_auth = "private_key_jwt"`: the PEM private key, its `kid`, RS384 or ES384.
    pub private_key_file: Option<PathBuf>,
    pub key_id: Option<String>,
    pub algorithm: Option<String>,
    /// Key rotation: the key rxsync signed with before, still served in its
    /// JWKS (never used to sign) until the provider has fetched the new one.
    pub previous_private_key_file: Option<PathBuf>,
    pub previous_key_id: Option<String>,
    /// Default: `algorithm`.
    pub previous_algorithm: Option<String>,
    /// Consent (`rxsync link start`): the authorization endpoint.
    pub authorize_url: Option<String>,
    /// The one redirect URI: registered by `provider register` and sent with
    /// authorization requests. For `link start` a loopback URI with its port
    /// (RFC 8252 §7.3), e.g. `http://127.0.0.1:8765/callback`.
    pub redirect_uri: Option<String>,
    /// Send `prompt=login` (OpenID Connect): the patient signs in again.
    pub prompt_login: Option<bool>,
    /// Extra authorization request parameters, e.g. `{ aud = "https://fhir.example/r4" }` (SMART).
    pub authorize_params: Option<std::collections::BTreeMap<String, String>>,
    // both
    pub placement: Option<String>,
}

/// Where a patient's medication list lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentLocation {
    /// A URL template with `{patient}`.
    Ccr { template: String },
    /// FHIR resource types searched under the base URL.
    Fhir { resources: Vec<String> },
}

/// A provider's `[providers.bulk]`: where `$export` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSettings {
    pub level: BulkLevel,
    /// Seconds between scheduled exports; `None`: only `rxsync export start`.
    pub interval: Option<Duration>,
}

/// Authorization request parameters rxsync sets itself: not in `authorize_params`.
pub const RESERVED_AUTHORIZE_PARAMS: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "client_secret",
];

/// A provider's auth scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderAuth {
    Oauth1(Oauth1Settings),
    Oauth2(Box<Oauth2Settings>),
}

impl ProviderAuth {
    pub fn scheme(&self) -> &'static str {
        match self {
            ProviderAuth::Oauth1(_) => "oauth1",
            ProviderAuth::Oauth2(_) => "oauth2",
        }
    }
}

/// A configured service provider, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub base_url: Url,
    pub document: DocumentLocation,
    /// Origins (as `scheme://host:port`) that may receive credentials, the
    /// base URL's own first.
    pub trusted_origins: Vec<url::Origin>,
    pub limits: FetchLimits,
    pub ca_file: Option<PathBuf>,
    pub interval: Duration,
    pub max_in_flight: Option<usize>,
    /// FHIR: how searches are made and referenced Medications fetched.
    pub search: SearchSettings,
    /// `[providers.bulk]`, for `rxsync export` (FHIR providers only).
    pub bulk: Option<BulkSettings>,
    pub auth: ProviderAuth,
    /// How a bulk export's patients are matched (`[providers.bulk] match`).
    pub bulk_match: BulkMatch,
    /// `[providers.identity]`: whose account the link is, checked before
    /// any write (none: links are trusted as made).
    pub identity: Option<crate::identity::IdentitySettings>,
    /// `discover = true`: OAuth 2.0 endpoints not configured are read from
    /// the provider's discovery documents at use time, never at parse time.
    pub discover: bool,
}

/// Defaults for provider limits.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
pub const DEFAULT_READ_TIMEOUT: u64 = 30;
pub const DEFAULT_TIMEOUT: u64 = 120;
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;
pub const DEFAULT_MAX_PAGES: u32 = 50;
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_MAX_RETRY_AFTER: u64 = 30;
/// FHIR resources searched when `resources` is not given.
pub const DEFAULT_FHIR_RESOURCES: [&str; 3] = [
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
];

/// Checks every `[[providers]]` table. `base` resolves relative file paths;
/// `max_document_bytes` is the `[import]` default for providers that set none.
pub fn resolve_providers(
    raw: Vec<RawProvider>,
    origin: &str,
    base: &Path,
    max_document_bytes: u64,
    default_interval: Duration,
) -> Result<Vec<Provider>, ConfigError> {
    let mut out: Vec<Provider> = Vec::with_capacity(raw.len());
    for (n, p) in raw.into_iter().enumerate() {
        let provider = resolve_one(p, n, origin, base, max_document_bytes, default_interval)?;
        if out.iter().any(|q| q.id == provider.id) {
            return Err(err(
                origin,
                provider.id.as_str(),
                "id",
                "is used by two providers",
            ));
        }
        out.push(provider);
    }
    Ok(out)
}

fn err(origin: &str, provider: &str, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Provider {
        origin: origin.to_string(),
        provider: provider.to_string(),
        key: key.to_string(),
        problem: problem.into(),
    }
}

fn resolve_one(
    p: RawProvider,
    n: usize,
    origin: &str,
    base: &Path,
    max_document_bytes: u64,
    default_interval: Duration,
) -> Result<Provider, ConfigError> {
    let unnamed = format!("#{}", n + 1);
    let raw_id =
        p.id.ok_or_else(|| err(origin, &unnamed, "id", "is missing"))?;
    let id = ProviderId::parse(&raw_id).map_err(|e| err(origin, &raw_id, "id", e.to_string()))?;
    if id.as_str() == "file" {
        return Err(err(
            origin,
            &raw_id,
            "id",
            "\"file\" is the source name of imported files; choose another",
        ));
    }
    let name = id.as_str().to_string();
    let e = |key: &str, problem: String| err(origin, &name, key, problem);

    let kind = match p.kind.as_deref() {
        Some("ccr") => ProviderKind::Ccr,
        Some("fhir") => ProviderKind::Fhir,
        Some(other) => {
            return Err(e(
                "kind",
                format!("must be \"ccr\" or \"fhir\", not {other:?}"),
            ));
        }
        None => return Err(e("kind", "is missing (\"ccr\" or \"fhir\")".into())),
    };
    let base_url = p
        .base_url
        .as_deref()
        .ok_or_else(|| match p.discover {
            Some(true) => e(
                "base_url",
                "is missing (discover = true reads the discovery documents under it)".into(),
            ),
            _ => e("base_url", "is missing".into()),
        })
        .and_then(|u| http_url(u).map_err(|m| e("base_url", m)))?;
    let document = match kind {
        ProviderKind::Ccr => {
            if p.resources.is_some() {
                return Err(e(
                    "resources",
                    "is for fhir providers; ccr uses document_url".into(),
                ));
            }
            let template = p
                .document_url
                .ok_or_else(|| e("document_url", "is missing (a URL with {patient})".into()))?;
            if !template.contains("{patient}") {
                return Err(e("document_url", "must contain {patient}".into()));
            }
            let probe = template.replace("{patient}", "p");
            base_url
                .join(&probe)
                .map_err(|x| e("document_url", format!("is not a URL: {x}")))
                .and_then(|u| {
                    check_scheme(&u)
                        .map(|_| ())
                        .map_err(|m| e("document_url", m))
                })?;
            DocumentLocation::Ccr { template }
        }
        ProviderKind::Fhir => {
            if p.document_url.is_some() {
                return Err(e(
                    "document_url",
                    "is for ccr providers; fhir uses resources".into(),
                ));
            }
            let resources = p.resources.unwrap_or_else(|| {
                DEFAULT_FHIR_RESOURCES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            });
            if resources.is_empty() {
                return Err(e(
                    "resources",
                    "must name at least one resource type".into(),
                ));
            }
            if let Some(bad) = resources
                .iter()
                .find(|r| r.is_empty() || !r.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                return Err(e(
                    "resources",
                    format!("{bad:?} is not a FHIR resource type"),
                ));
            }
            DocumentLocation::Fhir { resources }
        }
    };
    let mut trusted_origins = vec![base_url.origin()];
    for o in &p.trusted_origins {
        let u = http_url(o).map_err(|m| e("trusted_origins", format!("{o:?}: {m}")))?;
        if u.path() != "/" || u.query().is_some() {
            return Err(e(
                "trusted_origins",
                format!("{o:?} must be an origin (scheme://host[:port]) without a path"),
            ));
        }
        trusted_origins.push(u.origin());
    }
    let positive = |key: &str, v: Option<u64>, default: u64| -> Result<u64, ConfigError> {
        match v {
            Some(0) => Err(e(key, "must be above 0".into())),
            Some(v) => Ok(v),
            None => Ok(default),
        }
    };
    let limits = FetchLimits {
        connect_timeout: Duration::from_secs(positive(
            "connect_timeout",
            p.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
        )?),
        read_timeout: Duration::from_secs(positive(
            "read_timeout",
            p.read_timeout,
            DEFAULT_READ_TIMEOUT,
        )?),
        timeout: Duration::from_secs(positive("timeout", p.timeout, DEFAULT_TIMEOUT)?),
        max_redirects: p.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
        max_document_bytes: positive(
            "max_document_bytes",
            p.max_document_bytes,
            max_document_bytes,
        )?,
        max_pages: positive(
            "max_pages",
            p.max_pages.map(u64::from),
            DEFAULT_MAX_PAGES.into(),
        )? as u32,
        retries: p.retries.unwrap_or(DEFAULT_RETRIES),
        max_retry_after: Duration::from_secs(p.max_retry_after.unwrap_or(DEFAULT_MAX_RETRY_AFTER)),
        rate: resolve_rate(p.limits, &e)?,
    };
    let search = match (&document, p.search) {
        (DocumentLocation::Fhir { resources }, Some(table)) => {
            resolve_search(table, resources, &e)?
        }
        (DocumentLocation::Fhir { .. }, None) => SearchSettings::default(),
        (DocumentLocation::Ccr { .. }, Some(_)) => {
            return Err(e(
                "search",
                "is for fhir providers; a ccr provider reads one document_url".into(),
            ));
        }
        (DocumentLocation::Ccr { .. }, None) => SearchSettings::default(),
    };
    if p.max_redirects.is_some_and(|m| m > 20) {
        return Err(e("max_redirects", "must be at most 20".into()));
    }
    let ca_file = p.ca_file.map(|f| base.join(f));
    let interval = Duration::from_secs(positive(
        "interval",
        p.interval,
        default_interval.as_secs(),
    )?);
    if p.max_in_flight == Some(0) {
        return Err(e("max_in_flight", "must be above 0".into()));
    }
    let raw_auth = p.auth.ok_or_else(|| {
        e(
            "auth",
            "is missing ([providers.auth] with scheme = \"oauth1\" or \"oauth2\")".into(),
        )
    })?;
    let discover = p.discover.unwrap_or(false);
    if discover && base_url.scheme() != "https" && !is_loopback(&base_url) {
        return Err(e(
            "discover",
            format!(
                "reads discovery documents over https only (plain http only to a loopback address), and base_url is {base_url}"
            ),
        ));
    }
    let auth = resolve_auth(raw_auth, &base_url, base, discover, &e)?;
    let bulk_match = match p.bulk.as_ref().and_then(|b| b.match_by.as_deref()) {
        None | Some("link") => BulkMatch::Link,
        Some("mrn") => BulkMatch::Mrn,
        Some(other) => {
            return Err(e(
                "bulk.match",
                format!("is {other:?}; expected \"link\" or \"mrn\""),
            ));
        }
    };
    let bulk = p.bulk.map(|b| resolve_bulk(b, kind, &e)).transpose()?;
    let identity = p
        .identity
        .map(|i| {
            super::identity::resolve_identity(
                i,
                super::identity::ProviderFacts {
                    auth: &auth,
                    fhir: kind == ProviderKind::Fhir,
                    discover,
                    base_url: &base_url,
                },
                &e,
            )
        })
        .transpose()?;
    // The token goes to the identity endpoints the provider names.
    for u in identity
        .iter()
        .flat_map(|i| [&i.userinfo_url, &i.profile_url])
        .flatten()
    {
        if !trusted_origins.contains(&u.origin()) {
            trusted_origins.push(u.origin());
        }
    }
    Ok(Provider {
        id,
        kind,
        base_url,
        document,
        trusted_origins,
        limits,
        ca_file,
        interval,
        max_in_flight: p.max_in_flight,
        search,
        bulk,
        auth,
        bulk_match,
        identity,
        discover,
    })
}

/// `[providers.limits]`: a token bucket, or none.
fn resolve_rate(
    raw: Option<RawLimits>,
    e: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<RateLimit>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let Some(rps) = raw.requests_per_second else {
        if raw.burst.is_some() {
            return Err(e("limits.burst", "needs limits.requests_per_second".into()));
        }
        return Ok(None);
    };
    if !(rps.is_finite() && rps > 0.0 && rps <= 100_000.0) {
        return Err(e(
            "limits.requests_per_second",
            format!("must be above 0 and at most 100000, not {rps}"),
        ));
    }
    let burst = match raw.burst {
        Some(0) => return Err(e("limits.burst", "must be at least 1".into())),
        Some(b) => b,
        None => rps.ceil() as u32,
    };
    Ok(Some(RateLimit {
        interval: Duration::from_secs_f64(1.0 / rps),
        burst,
    }))
}

/// `[providers.search]`: `include`, `max_reference_fetches`, and a table
/// of extra search parameters per searched resource type (replacing that
/// type's defaults).
fn resolve_search(
    table: toml::Table,
    resources: &[String],
    e: &dyn Fn(&str, String) -> ConfigError,
) -> Result<SearchSettings, ConfigError> {
    let mut settings = SearchSettings::default();
    for (key, value) in table {
        let at = format!("search.{key}");
        match key.as_str() {
            "include" => {
                settings.include = match &value {
                    toml::Value::Boolean(true) => IncludeMode::Always,
                    toml::Value::Boolean(false) => IncludeMode::Never,
                    toml::Value::String(s) if s == "auto" => IncludeMode::Auto,
                    other => {
                        return Err(e(
                            &at,
                            format!("must be true, false or \"auto\", not {other}"),
                        ));
                    }
                }
            }
            "max_reference_fetches" => {
                settings.max_reference_fetches = value
                    .as_integer()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n <= 10_000)
                    .ok_or_else(|| {
                        e(
                            &at,
                            format!(
                                "must be a whole number from 0 to 10000 (default {DEFAULT_MAX_REFERENCE_FETCHES}), not {value}"
                            ),
                        )
                    })?;
            }
            resource => {
                if !resources.iter().any(|r| r == resource) {
                    return Err(e(
                        &at,
                        format!(
                            "is neither a setting (include, max_reference_fetches) nor a resource type this provider searches ({})",
                            resources.join(", ")
                        ),
                    ));
                }
                let toml::Value::Table(params) = value else {
                    return Err(e(
                        &at,
                        "must be a table of search parameters, e.g. { intent = \"order,plan\" }"
                            .into(),
                    ));
                };
                let mut list = Vec::with_capacity(params.len());
                for (name, v) in params {
                    let toml::Value::String(v) = v else {
                        return Err(e(
                            &format!("{at}.{name}"),
                            format!("must be a string, not {v}"),
                        ));
                    };
                    if matches!(name.as_str(), "patient" | "_include" | "access_token")
                        || name.starts_with("oauth_")
                    {
                        return Err(e(
                            &format!("{at}.{name}"),
                            "is set by rxsync itself (patient, _include) or is a credential; leave it out".into(),
                        ));
                    }
                    list.push((name, v));
                }
                settings.params.insert(resource.to_string(), list);
            }
        }
    }
    Ok(settings)
}

fn resolve_bulk(
    b: RawBulk,
    kind: ProviderKind,
    e: &dyn Fn(&str, String) -> ConfigError,
) -> Result<BulkSettings, ConfigError> {
    if kind != ProviderKind::Fhir {
        return Err(e("bulk", "is only for fhir providers".into()));
    }
    let level = match (b.level.as_deref(), b.group) {
        (Some("system") | None, None) => BulkLevel::System,
        (Some("patient"), None) => BulkLevel::Patient,
        (Some("group"), Some(g)) => {
            if g.is_empty()
                || !g
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(e(
                    "bulk.group",
                    format!("{g:?} is not a FHIR id (A-Z a-z 0-9 - .)"),
                ));
            }
            BulkLevel::Group(g)
        }
        (Some("group"), None) => {
            return Err(e("bulk.group", "is missing (level = \"group\")".into()));
        }
        (Some("system" | "patient") | None, Some(_)) => {
            return Err(e("bulk.group", "is only for level = \"group\"".into()));
        }
        (Some(other), _) => {
            return Err(e(
                "bulk.level",
                format!("must be \"system\", \"group\" or \"patient\", not {other:?}"),
            ));
        }
    };
    let interval = match b.interval {
        Some(0) => return Err(e("bulk.interval", "must be above 0".into())),
        Some(s) if s < 60 => return Err(e("bulk.interval", "must be at least 60 seconds".into())),
        other => other.map(Duration::from_secs),
    };
    Ok(BulkSettings { level, interval })
}

fn resolve_auth(
    a: RawAuth,
    base_url: &Url,
    base: &Path,
    discover: bool,
    e: &dyn Fn(&str, String) -> ConfigError,
) -> Result<ProviderAuth, ConfigError> {
    let secret = |env_key: &str,
                  env: Option<String>,
                  file_key: &str,
                  file: Option<PathBuf>|
     -> Result<SecretSource, ConfigError> {
        match (env, file) {
            (Some(_), Some(_)) => Err(e(
                &format!("auth.{env_key}"),
                format!("and auth.{file_key} are both set; choose one"),
            )),
            (Some(var), None) if var.is_empty() => {
                Err(e(&format!("auth.{env_key}"), "must not be empty".into()))
            }
            (Some(var), None) => Ok(SecretSource::Env(var)),
            (None, Some(f)) => Ok(SecretSource::File(base.join(f))),
            (None, None) => Ok(SecretSource::None),
        }
    };
    let placement = |v: Option<&str>| -> Result<Placement, ConfigError> {
        match v {
            None | Some("header") => Ok(Placement::Header),
            Some("query") => Ok(Placement::Query),
            Some(other) => Err(e(
                "auth.placement",
                format!("must be \"header\" or \"query\", not {other:?}"),
            )),
        }
    };
    let refuse = |scheme: &str, keys: &[(&str, bool)]| -> Result<(), ConfigError> {
        match keys.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(e(
                &format!("auth.{key}"),
                format!("is not used by scheme = \"{scheme}\""),
            )),
            None => Ok(()),
        }
    };
    match a.scheme.as_deref() {
        Some("oauth1") => {
            if discover {
                return Err(e(
                    "discover",
                    "is for scheme = \"oauth2\" providers (OAuth 1.0a has no discovery)".into(),
                ));
            }
            refuse(
                "oauth1",
                &[
                    ("registration_url", a.registration_url.is_some()),
                    ("token_url", a.token_url.is_some()),
                    ("client_id", a.client_id.is_some()),
                    ("client_secret_env", a.client_secret_env.is_some()),
                    ("client_secret_file", a.client_secret_file.is_some()),
                    ("client_auth", a.client_auth.is_some()),
                    ("scopes", a.scopes.is_some()),
                    ("revocation_url", a.revocation_url.is_some()),
                    ("introspection_url", a.introspection_url.is_some()),
                    ("grant", a.grant.is_some()),
                    ("private_key_file", a.private_key_file.is_some()),
                    ("key_id", a.key_id.is_some()),
                    ("algorithm", a.algorithm.is_some()),
                    ("prompt_login", a.prompt_login.is_some()),
                    ("authorize_params", a.authorize_params.is_some()),
                    (
                        "previous_private_key_file",
                        a.previous_private_key_file.is_some(),
                    ),
                    ("previous_key_id", a.previous_key_id.is_some()),
                    ("previous_algorithm", a.previous_algorithm.is_some()),
                ],
            )?;
            let consent = resolve_oauth1_consent(&a, base_url, e)?;
            let consumer_key = a
                .consumer_key
                .filter(|k| !k.is_empty())
                .ok_or_else(|| e("auth.consumer_key", "is missing".into()))?;
            let method_name = a.signature_method.as_deref().unwrap_or("HMAC-SHA1");
            let signature_method = SignatureMethod::parse(method_name).map_err(|_| {
                e(
                    "auth.signature_method",
                    format!(
                        "must be HMAC-SHA1, HMAC-SHA256, RSA-SHA1 or PLAINTEXT, not {method_name:?}"
                    ),
                )
            })?;
            let consumer_secret = secret(
                "consumer_secret_env",
                a.consumer_secret_env,
                "consumer_secret_file",
                a.consumer_secret_file,
            )?;
            let rsa_private_key_file = a.rsa_private_key_file.map(|f| base.join(f));
            match signature_method {
                SignatureMethod::RsaSha1 if rsa_private_key_file.is_none() => {
                    return Err(e(
                        "auth.rsa_private_key_file",
                        "is missing (RSA-SHA1 signs with a PEM private key)".into(),
                    ));
                }
                SignatureMethod::RsaSha1 => {}
                _ if rsa_private_key_file.is_some() => {
                    return Err(e(
                        "auth.rsa_private_key_file",
                        format!("is only for RSA-SHA1, not {signature_method}"),
                    ));
                }
                _ if consumer_secret == SecretSource::None => {
                    return Err(e(
                        "auth.consumer_secret_env",
                        format!(
                            "(or auth.consumer_secret_file) is missing; {signature_method} signs with the consumer secret"
                        ),
                    ));
                }
                SignatureMethod::Plaintext if base_url.scheme() != "https" => {
                    return Err(e(
                        "auth.signature_method",
                        "PLAINTEXT sends the secrets themselves and is only allowed with an https base_url".into(),
                    ));
                }
                _ => {}
            }
            let placement = placement(a.placement.as_deref())?;
            if let Some(realm) = &a.realm {
                if placement != Placement::Header {
                    return Err(e(
                        "auth.realm",
                        "is only sent in the Authorization header (placement = \"header\")".into(),
                    ));
                }
                if realm
                    .chars()
                    .any(|c| c == '"' || c == '\\' || !(' '..='~').contains(&c))
                {
                    return Err(e(
                        "auth.realm",
                        "must be printable ASCII without quotes or backslashes".into(),
                    ));
                }
            }
            Ok(ProviderAuth::Oauth1(Oauth1Settings {
                consumer_key,
                consumer_secret,
                signature_method,
                rsa_private_key_file,
                placement,
                realm: a.realm,
                body_hash: a.body_hash.unwrap_or(false),
                consent,
            }))
        }
        Some("oauth2") => {
            refuse(
                "oauth2",
                &[
                    ("consumer_key", a.consumer_key.is_some()),
                    ("consumer_secret_env", a.consumer_secret_env.is_some()),
                    ("consumer_secret_file", a.consumer_secret_file.is_some()),
                    ("signature_method", a.signature_method.is_some()),
                    ("rsa_private_key_file", a.rsa_private_key_file.is_some()),
                    ("realm", a.realm.is_some()),
                    ("body_hash", a.body_hash.is_some()),
                    ("request_token_url", a.request_token_url.is_some()),
                    ("access_token_url", a.access_token_url.is_some()),
                    ("token_method", a.token_method.is_some()),
                ],
            )?;
            let grant = match a.grant.as_deref() {
                None | Some("authorization_code") => Oauth2Grant::AuthorizationCode,
                Some("client_credentials") => Oauth2Grant::ClientCredentials,
                Some(other) => {
                    return Err(e(
                        "auth.grant",
                        format!(
                            "must be \"authorization_code\" or \"client_credentials\", not {other:?}"
                        ),
                    ));
                }
            };
            let url_key = |key: &str, v: Option<&str>| -> Result<Option<Url>, ConfigError> {
                v.map(|u| {
                    base_url
                        .join(u)
                        .map_err(|x| x.to_string())
                        .and_then(|u| check_scheme(&u).map(|_| u))
                })
                .transpose()
                .map_err(|m| e(key, m))
            };
            let token_url = url_key("auth.token_url", a.token_url.as_deref())?;
            if token_url.is_none() && !discover {
                return Err(e(
                    "auth.token_url",
                    "is missing (or set discover = true to read it from the provider)".into(),
                ));
            }
            let registration_url = url_key("auth.registration_url", a.registration_url.as_deref())?;
            let redirect_uri = resolve_redirect_uri(a.redirect_uri.as_deref(), e)?;
            let consent = resolve_consent(&a, grant, discover, &url_key, e)?;
            if a.client_id.as_deref() == Some("") {
                return Err(e("auth.client_id", "must not be empty".into()));
            }
            let client_id = a.client_id;
            let may_register = registration_url.is_some() || discover;
            if client_id.is_none() && (!may_register || grant == Oauth2Grant::ClientCredentials) {
                return Err(e(
                    "auth.client_id",
                    "is missing (set it, or set registration_url or discover = true and run rxsync provider register)".into(),
                ));
            }
            if client_id.is_none() && a.client_secret_env.is_some()
                || client_id.is_none() && a.client_secret_file.is_some()
            {
                return Err(e(
                    "auth.client_secret_env",
                    "(or client_secret_file) is set without client_id: a configured secret belongs to a configured client".into(),
                ));
            }
            let client_secret = secret(
                "client_secret_env",
                a.client_secret_env,
                "client_secret_file",
                a.client_secret_file,
            )?;
            let jwt = a.client_auth.as_deref() == Some("private_key_jwt");
            let mut previous = None;
            let client_auth = match a.client_auth.as_deref() {
                None | Some("basic") => ClientAuth::Basic,
                Some("post" | "private_key_jwt") => ClientAuth::Post,
                Some("none") => ClientAuth::None,
                Some(other) => {
                    return Err(e(
                        "auth.client_auth",
                        format!(
                            "must be \"basic\", \"post\", \"none\" or \"private_key_jwt\", not {other:?}"
                        ),
                    ));
                }
            };
            if client_auth == ClientAuth::None && client_secret != SecretSource::None {
                return Err(e(
                    "auth.client_secret_env",
                    "(or client_secret_file) is not used with client_auth = \"none\" (a public client)".into(),
                ));
            }
            let private_key_jwt = if jwt {
                if client_secret != SecretSource::None {
                    return Err(e(
                        "auth.client_secret_env",
                        "(or client_secret_file) is not used with client_auth = \"private_key_jwt\"".into(),
                    ));
                }
                let private_key_file =
                    a.private_key_file.map(|f| base.join(f)).ok_or_else(|| {
                        e(
                            "auth.private_key_file",
                            "is missing (a PEM private key)".into(),
                        )
                    })?;
                let key_id = a
                    .key_id
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| e("auth.key_id", "is missing (the key's kid)".into()))?;
                let alg = |key: &str, v: Option<&str>| match v {
                    Some("RS384") => Ok(AssertionAlg::Rs384),
                    Some("ES384") => Ok(AssertionAlg::Es384),
                    Some(other) => Err(e(
                        key,
                        format!("must be \"RS384\" or \"ES384\", not {other:?}"),
                    )),
                    None => Err(e(key, "is missing (RS384 or ES384)".into())),
                };
                let algorithm = alg("auth.algorithm", a.algorithm.as_deref())?;
                previous = match (&a.previous_private_key_file, &a.previous_key_id) {
                    (Some(f), Some(k)) if !k.is_empty() => Some(AssertionKeySettings {
                        private_key_file: base.join(f),
                        key_id: k.clone(),
                        algorithm: match a.previous_algorithm.as_deref() {
                            None => algorithm,
                            v => alg("auth.previous_algorithm", v)?,
                        },
                    }),
                    (None, None) if a.previous_algorithm.is_none() => None,
                    _ => {
                        return Err(e(
                            "auth.previous_private_key_file",
                            "and auth.previous_key_id go together (the key before the current one, published in the JWKS during a rotation)".into(),
                        ));
                    }
                };
                Some(AssertionKeySettings {
                    private_key_file,
                    key_id,
                    algorithm,
                })
            } else {
                refuse(
                    "oauth2",
                    &[
                        ("private_key_file", a.private_key_file.is_some()),
                        ("key_id", a.key_id.is_some()),
                        ("algorithm", a.algorithm.is_some()),
                        (
                            "previous_private_key_file",
                            a.previous_private_key_file.is_some(),
                        ),
                        ("previous_key_id", a.previous_key_id.is_some()),
                        ("previous_algorithm", a.previous_algorithm.is_some()),
                    ],
                )
                .map_err(|_| {
                    e(
                        "auth.private_key_file",
                        "(and key_id, algorithm, previous_*) are only for client_auth = \"private_key_jwt\""
                            .into(),
                    )
                })?;
                None
            };
            if grant == Oauth2Grant::ClientCredentials && private_key_jwt.is_none() {
                return Err(e(
                    "auth.client_auth",
                    "must be \"private_key_jwt\" with grant = \"client_credentials\" (SMART Backend Services)".into(),
                ));
            }
            Ok(ProviderAuth::Oauth2(Box::new(Oauth2Settings {
                token_url,
                client_id,
                client_secret,
                client_auth,
                placement: placement(a.placement.as_deref())?,
                scopes: a.scopes.unwrap_or_default(),
                revocation_url: url_key("auth.revocation_url", a.revocation_url.as_deref())?,
                introspection_url: url_key(
                    "auth.introspection_url",
                    a.introspection_url.as_deref(),
                )?,
                grant,
                private_key_jwt,
                previous_private_key_jwt: previous,
                consent,
                registration_url,
                redirect_uri,
            })))
        }
        Some(other) => Err(e(
            "auth.scheme",
            format!("must be \"oauth1\" or \"oauth2\", not {other:?}"),
        )),
        None => Err(e(
            "auth.scheme",
            "is missing (\"oauth1\" or \"oauth2\")".into(),
        )),
    }
}

/// Resolves an optional URL key against the base URL (its errors name the key).
type UrlKey<'a> = dyn Fn(&str, Option<&str>) -> Result<Option<Url>, ConfigError> + 'a;

/// `auth.redirect_uri`: http(s), no fragment (RFC 6749 §3.1.2). OAuth
/// 2.0's redirect URI and OAuth 1.0a's `oauth_callback` both.
fn resolve_redirect_uri(
    text: Option<&str>,
    e: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<Url>, ConfigError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let parsed = http_url(text).map_err(|m| e("auth.redirect_uri", m))?;
    if parsed.fragment().is_some() {
        return Err(e(
            "auth.redirect_uri",
            "must not have a fragment (RFC 6749 §3.1.2)".into(),
        ));
    }
    Ok(Some(parsed))
}

/// `authorize_url`, `prompt_login`, `authorize_params`. With `discover =
/// true` the authorization endpoint may come from the discovery documents at
/// use time, so consent exists without a configured `authorize_url`.
fn resolve_consent(
    a: &RawAuth,
    grant: Oauth2Grant,
    discover: bool,
    url_key: &UrlKey<'_>,
    e: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<ConsentSettings>, ConfigError> {
    let authorize_url = url_key("auth.authorize_url", a.authorize_url.as_deref())?;
    if authorize_url.is_some() && grant != Oauth2Grant::AuthorizationCode {
        return Err(e(
            "auth.authorize_url",
            "is only for grant = \"authorization_code\"".into(),
        ));
    }
    if authorize_url.is_none() && !(discover && grant == Oauth2Grant::AuthorizationCode) {
        for (key, set) in [
            ("prompt_login", a.prompt_login.is_some()),
            ("authorize_params", a.authorize_params.is_some()),
        ] {
            if set {
                return Err(e(
                    &format!("auth.{key}"),
                    "needs auth.authorize_url (the provider's authorization endpoint) or discover = true".into(),
                ));
            }
        }
        return Ok(None);
    }
    let mut authorize_params = Vec::new();
    for (name, value) in a.authorize_params.iter().flatten() {
        if RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str()) {
            return Err(e(
                &format!("auth.authorize_params.{name}"),
                "is set by rxsync itself; leave it out".into(),
            ));
        }
        if name.is_empty() {
            return Err(e("auth.authorize_params", "has an empty name".into()));
        }
        authorize_params.push((name.clone(), value.clone()));
    }
    Ok(Some(ConsentSettings {
        authorize_url,
        prompt_login: a.prompt_login.unwrap_or(false),
        authorize_params,
    }))
}

/// The OAuth 1.0a three-legged endpoints: `request_token_url`,
/// `authorize_url`, `access_token_url` (relative to `base_url`, all three or
/// none), `redirect_uri` (the `oauth_callback`), `token_method`.
fn resolve_oauth1_consent(
    a: &RawAuth,
    base_url: &Url,
    e: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<Box<Oauth1Consent>>, ConfigError> {
    let url = |key: &str, v: Option<&str>| -> Result<Option<Url>, ConfigError> {
        v.map(|u| {
            base_url
                .join(u)
                .map_err(|x| x.to_string())
                .and_then(|u| check_scheme(&u).map(|_| u))
        })
        .transpose()
        .map_err(|m| e(&format!("auth.{key}"), m))
    };
    let request = url("request_token_url", a.request_token_url.as_deref())?;
    let authorize = url("authorize_url", a.authorize_url.as_deref())?;
    let access = url("access_token_url", a.access_token_url.as_deref())?;
    let (request_token_url, authorize_url, access_token_url) = match (request, authorize, access) {
        (None, None, None) => {
            for (key, set) in [
                ("redirect_uri", a.redirect_uri.is_some()),
                ("token_method", a.token_method.is_some()),
            ] {
                if set {
                    return Err(e(
                        &format!("auth.{key}"),
                        "needs auth.request_token_url, auth.authorize_url and auth.access_token_url (the three-legged flow)".into(),
                    ));
                }
            }
            return Ok(None);
        }
        (Some(r), Some(z), Some(x)) => (r, z, x),
        (r, z, _) => {
            let missing = if r.is_none() {
                "request_token_url"
            } else if z.is_none() {
                "authorize_url"
            } else {
                "access_token_url"
            };
            return Err(e(
                &format!("auth.{missing}"),
                "is missing (the three-legged flow needs request_token_url, authorize_url and access_token_url)".into(),
            ));
        }
    };
    // The same rule as OAuth 2.0's redirect URI: it is the `oauth_callback`.
    let redirect_uri = resolve_redirect_uri(a.redirect_uri.as_deref(), e)?;
    let token_method = match a.token_method.as_deref() {
        None | Some("POST") => "POST",
        Some("GET") => "GET",
        Some(other) => {
            return Err(e(
                "auth.token_method",
                format!("must be \"POST\" or \"GET\", not {other:?}"),
            ));
        }
    };
    Ok(Some(Box::new(Oauth1Consent {
        request_token_url,
        authorize_url,
        access_token_url,
        redirect_uri,
        token_method,
    })))
}

fn http_url(text: &str) -> Result<Url, String> {
    let u = Url::parse(text).map_err(|x| format!("is not a URL: {x}"))?;
    check_scheme(&u)?;
    Ok(u)
}

fn check_scheme(u: &Url) -> Result<(), String> {
    match u.scheme() {
        "http" | "https" if u.host().is_some() => {
            if !u.username().is_empty() || u.password().is_some() {
                return Err("must not carry a user name or password".into());
            }
            Ok(())
        }
        "http" | "https" => Err("has no host".into()),
        other => Err(format!("must be http or https, not {other}")),
    }
}

impl<'a> From<&'a Provider> for Endpoint<'a> {
    fn from(p: &'a Provider) -> Endpoint<'a> {
        Endpoint {
            base_url: &p.base_url,
            limits: &p.limits,
            trusted_origins: &p.trusted_origins,
            ca_file: p.ca_file.as_deref(),
        }
    }
}

impl Provider {
    /// The document URL for a remote patient (CCR providers), or the first
    /// search URL of a resource type (FHIR providers).
    pub fn ccr_url(&self, remote_patient: &str) -> Option<Url> {
        match &self.document {
            DocumentLocation::Ccr { template } => {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(remote_patient.as_bytes()).collect();
                // `+` is a form-encoding of space; in a path it must be %20.
                let encoded = encoded.replace('+', "%20");
                self.base_url
                    .join(&template.replace("{patient}", &encoded))
                    .ok()
            }
            DocumentLocation::Fhir { .. } => None,
        }
    }

    /// The first search URL of one FHIR resource type for a remote patient:
    /// `patient`, the configured parameters, `_include` when `include`.
    pub fn fhir_search_url(&self, resource: &str, remote_patient: &str, include: bool) -> Url {
        crate::fetch::fhir::search_url(
            &self.base_url,
            resource,
            remote_patient,
            &self.search,
            include,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers(text: &str) -> Result<Vec<Provider>, ConfigError> {
        let raw = super::super::parse(text, Path::new("/etc/rx/config.toml"))?;
        resolve_providers(
            raw.providers,
            "/etc/rx/config.toml",
            Path::new("/etc/rx"),
            1000,
            Duration::from_secs(3600),
        )
    }

    const HMAC: &str = r#"
[[providers]]
id = "acme"
kind = "ccr"
base_url = "https://ccr.example.com/api/"
document_url = "patients/{patient}/ccr"
trusted_origins = ["https://cdn.example.com"]
[providers.auth]
scheme = "oauth1"
consumer_key = "ck"
consumer_secret_env = "ACME_SECRET"
signature_method = "HMAC-SHA256"
placement = "query"
"#;

    #[test]
    fn a_full_oauth1_provider_resolves() {
        let p = providers(HMAC).expect("valid").remove(0);
        assert_eq!(p.id.as_str(), "acme");
        assert_eq!(p.kind, ProviderKind::Ccr);
        assert_eq!(
            p.ccr_url("a b/c").expect("ccr").as_str(),
            "https://ccr.example.com/api/patients/a%20b%2Fc/ccr"
        );
        assert_eq!(p.trusted_origins.len(), 2);
        assert_eq!(p.limits.max_redirects, DEFAULT_MAX_REDIRECTS);
        assert_eq!(p.limits.max_document_bytes, 1000);
        match &p.auth {
            ProviderAuth::Oauth1(o) => {
                assert_eq!(o.signature_method, SignatureMethod::HmacSha256);
                assert_eq!(o.placement, Placement::Query);
                assert_eq!(o.consumer_secret, SecretSource::Env("ACME_SECRET".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fhir_defaults_and_search_urls() {
        let p = providers(
            r#"
[[providers]]
id = "smart"
kind = "fhir"
base_url = "https://fhir.example.org/r4"
[providers.auth]
scheme = "oauth2"
token_url = "/oauth/token"
client_id = "rx"
"#,
        )
        .expect("valid")
        .remove(0);
        assert_eq!(
            p.document,
            DocumentLocation::Fhir {
                resources: DEFAULT_FHIR_RESOURCES.map(String::from).to_vec()
            }
        );
        assert_eq!(
            p.fhir_search_url("MedicationRequest", "p 1&x", false)
                .as_str(),
            "https://fhir.example.org/r4/MedicationRequest?patient=p+1%26x&intent=order%2Cplan"
        );
        assert_eq!(
            p.fhir_search_url("ExplanationOfBenefit", "bb-1", true)
                .as_str(),
            "https://fhir.example.org/r4/ExplanationOfBenefit?patient=bb-1&type=pharmacy"
        );
        assert_eq!(
            p.fhir_search_url("MedicationStatement", "p", true).as_str(),
            "https://fhir.example.org/r4/MedicationStatement?patient=p&_include=MedicationStatement%3Amedication"
        );
        assert_eq!(p.search.include, IncludeMode::Auto);
        assert_eq!(
            p.search.max_reference_fetches,
            DEFAULT_MAX_REFERENCE_FETCHES
        );
        assert_eq!(p.limits.rate, None);
        match &p.auth {
            ProviderAuth::Oauth2(o) => {
                assert_eq!(
                    o.token_url.as_ref().map(Url::as_str),
                    Some("https://fhir.example.org/oauth/token")
                );
                assert_eq!(o.client_secret, SecretSource::None);
                assert_eq!(o.client_auth, ClientAuth::Basic);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_provider_the_key_and_the_file() {
        let rows: &[(&str, &str, &str)] = &[
            (
                "consumer_secret_env = \"ACME_SECRET\"",
                "consumer_secret = \"inline\"",
                "consumer_secret",
            ),
            (
                "signature_method = \"HMAC-SHA256\"",
                "signature_method = \"HMAC-MD5\"",
                "auth.signature_method",
            ),
            (
                "signature_method = \"HMAC-SHA256\"",
                "signature_method = \"RSA-SHA1\"",
                "auth.rsa_private_key_file",
            ),
            (
                "placement = \"query\"",
                "placement = \"body\"",
                "auth.placement",
            ),
            (
                "placement = \"query\"",
                "placement = \"query\"\nrealm = \"x\"",
                "auth.realm",
            ),
            (
                "placement = \"query\"",
                "placement = \"query\"\ntoken_url = \"https://x/t\"",
                "auth.token_url",
            ),
            ("kind = \"ccr\"", "kind = \"hl7v2\"", "kind"),
            (
                "base_url = \"https://ccr.example.com/api/\"",
                "base_url = \"ftp://x/\"",
                "base_url",
            ),
            (
                "document_url = \"patients/{patient}/ccr\"",
                "document_url = \"patients/ccr\"",
                "document_url",
            ),
            (
                "trusted_origins = [\"https://cdn.example.com\"]",
                "trusted_origins = [\"https://cdn.example.com/path\"]",
                "trusted_origins",
            ),
            ("scheme = \"oauth1\"", "scheme = \"saml\"", "auth.scheme"),
            ("id = \"acme\"", "id = \"file\"", "id"),
        ];
        for (from, to, key) in rows {
            assert!(HMAC.contains(from), "{from}");
            let text = HMAC.replace(from, to);
            let msg = providers(&text).expect_err(to).to_string();
            assert!(msg.contains(key), "{to}: {msg}");
            assert!(msg.contains("/etc/rx/config.toml"), "{to}: {msg}");
            if *key != "consumer_secret" {
                assert!(msg.contains("acme") || *key == "id", "{to}: {msg}");
            }
        }
        let plaintext = HMAC
            .replace("HMAC-SHA256", "PLAINTEXT")
            .replace("https://ccr", "http://ccr");
        let msg = providers(&plaintext)
            .expect_err("plaintext over http")
            .to_string();
        assert!(msg.contains("PLAINTEXT") && msg.contains("acme"), "{msg}");
        let twice = format!("{HMAC}{HMAC}");
        let msg = providers(&twice).expect_err("duplicate id").to_string();
        assert!(msg.contains("two providers"), "{msg}");
    }

    const FHIR: &str = r#"
[[providers]]
id = "ehr"
kind = "fhir"
base_url = "https://fhir.example.org/r4"
[providers.auth]
scheme = "oauth2"
token_url = "/oauth/token"
client_id = "rx"
"#;

    #[test]
    fn search_and_limits_tables_resolve() {
        let text = format!(
            "{FHIR}[providers.search]\ninclude = false\nmax_reference_fetches = 3\nMedicationRequest = {{ intent = \"order\", status = \"active\" }}\nMedicationStatement = {{}}\n[providers.limits]\nrequests_per_second = 2.5\n"
        );
        let p = providers(&text).expect("valid").remove(0);
        assert_eq!(p.search.include, IncludeMode::Never);
        assert_eq!(p.search.max_reference_fetches, 3);
        assert_eq!(
            p.fhir_search_url("MedicationRequest", "x", false).as_str(),
            "https://fhir.example.org/r4/MedicationRequest?patient=x&intent=order&status=active"
        );
        let rate = p.limits.rate.expect("a rate");
        assert_eq!(rate.interval, Duration::from_millis(400));
        assert_eq!(rate.burst, 3, "the default burst rounds the rate up");
        let auto = providers(&format!("{FHIR}[providers.search]\ninclude = \"auto\"\n"))
            .expect("valid")
            .remove(0);
        assert_eq!(auto.search.include, IncludeMode::Auto);
    }

    #[test]
    fn search_and_limits_errors_name_the_provider_the_key_and_the_file() {
        let rows: &[(&str, &str)] = &[
            (
                "[providers.search]\ninclude = \"sometimes\"\n",
                "search.include",
            ),
            (
                "[providers.search]\nmax_reference_fetches = -1\n",
                "search.max_reference_fetches",
            ),
            (
                "[providers.search]\nObservation = { code = \"x\" }\n",
                "search.Observation",
            ),
            (
                "[providers.search]\nMedicationRequest = \"intent=order\"\n",
                "search.MedicationRequest",
            ),
            (
                "[providers.search]\nMedicationRequest = { _include = \"x\" }\n",
                "search.MedicationRequest._include",
            ),
            (
                "[providers.search]\nMedicationRequest = { intent = 1 }\n",
                "search.MedicationRequest.intent",
            ),
            (
                "[providers.limits]\nrequests_per_second = 0\n",
                "limits.requests_per_second",
            ),
            (
                "[providers.limits]\nrequests_per_second = 1\nburst = 0\n",
                "limits.burst",
            ),
            ("[providers.limits]\nburst = 4\n", "limits.burst"),
            ("[providers.limits]\nper_minute = 4\n", "per_minute"),
        ];
        for (table, key) in rows {
            let msg = providers(&format!("{FHIR}{table}"))
                .expect_err(table)
                .to_string();
            assert!(msg.contains(key), "{table}: {msg}");
            assert!(msg.contains("/etc/rx/config.toml"), "{table}: {msg}");
            assert!(
                msg.contains("ehr") || *key == "per_minute",
                "{table}: {msg}"
            );
        }
        let msg = providers(&format!("{HMAC}[providers.search]\ninclude = true\n"))
            .expect_err("ccr")
            .to_string();
        assert!(msg.contains("search") && msg.contains("acme"), "{msg}");
    }

    const BULK: &str = r#"
[[providers]]
id = "payer-bulk"
kind = "fhir"
base_url = "https://fhir.payer.example/r4"
[providers.bulk]
level = "group"
group = "medicare-cohort-1"
interval = 86400
[providers.auth]
scheme = "oauth2"
grant = "client_credentials"
token_url = "https://auth.payer.example/token"
client_id = "rxsync"
client_auth = "private_key_jwt"
private_key_file = "keys/payer-es384.pem"
key_id = "rxsync-2026-12"
algorithm = "ES384"
scopes = ["system/MedicationRequest.rs", "system/Patient.rs"]
"#;

    #[test]
    fn a_backend_services_bulk_provider_resolves() {
        let p = providers(BULK).expect("valid").remove(0);
        let bulk = p.bulk.expect("bulk");
        assert_eq!(bulk.level, BulkLevel::Group("medicare-cohort-1".into()));
        assert_eq!(bulk.interval, Some(Duration::from_secs(86400)));
        match &p.auth {
            ProviderAuth::Oauth2(o) => {
                assert_eq!(o.grant, Oauth2Grant::ClientCredentials);
                let k = o.private_key_jwt.as_ref().expect("key");
                assert_eq!(k.algorithm, AssertionAlg::Es384);
                assert_eq!(k.key_id, "rxsync-2026-12");
                assert_eq!(
                    k.private_key_file,
                    Path::new("/etc/rx/keys/payer-es384.pem")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bulk_and_backend_errors_name_the_key() {
        let rows: &[(&str, &str, &str)] = &[
            ("level = \"group\"", "level = \"everything\"", "bulk.level"),
            (
                "group = \"medicare-cohort-1\"",
                "group = \"a/b\"",
                "bulk.group",
            ),
            ("level = \"group\"", "level = \"system\"", "bulk.group"),
            ("interval = 86400", "interval = 5", "bulk.interval"),
            (
                "algorithm = \"ES384\"",
                "algorithm = \"HS256\"",
                "auth.algorithm",
            ),
            ("key_id = \"rxsync-2026-12\"", "", "auth.key_id"),
            (
                "private_key_file = \"keys/payer-es384.pem\"",
                "",
                "auth.private_key_file",
            ),
            (
                "grant = \"client_credentials\"",
                "grant = \"password\"",
                "auth.grant",
            ),
            (
                "client_auth = \"private_key_jwt\"",
                "client_auth = \"post\"",
                "auth.private_key_file",
            ),
            (
                "kind = \"fhir\"",
                "kind = \"ccr\"\ndocument_url = \"{patient}\"",
                "bulk",
            ),
        ];
        for (from, to, key) in rows {
            assert!(BULK.contains(from), "{from}");
            let msg = providers(&BULK.replace(from, to))
                .expect_err(to)
                .to_string();
            assert!(
                msg.contains(key) && msg.contains("payer-bulk"),
                "{to}: {msg}"
            );
        }
        let no_key = BULK
            .replace("client_auth = \"private_key_jwt\"\n", "")
            .replace("private_key_file = \"keys/payer-es384.pem\"\n", "")
            .replace("key_id = \"rxsync-2026-12\"\n", "")
            .replace("algorithm = \"ES384\"\n", "");
        let msg = providers(&no_key).expect_err("no key").to_string();
        assert!(msg.contains("private_key_jwt"), "{msg}");
    }

    const CONSENT: &str = r#"
[[providers]]
id = "portal"
kind = "fhir"
base_url = "https://fhir.example.org/r4"
[providers.auth]
scheme = "oauth2"
token_url = "/oauth/token"
authorize_url = "/oauth/authorize"
redirect_uri = "http://127.0.0.1:8765/callback"
client_id = "rx"
client_auth = "none"
prompt_login = true
scopes = ["openid", "patient/MedicationRequest.rs"]
authorize_params = { aud = "https://fhir.example.org/r4" }
"#;

    #[test]
    fn consent_settings_resolve() {
        let p = providers(CONSENT).expect("valid").remove(0);
        let ProviderAuth::Oauth2(o) = &p.auth else {
            panic!("oauth2")
        };
        assert_eq!(o.client_auth, ClientAuth::None);
        let c = o.consent.as_ref().expect("consent");
        assert_eq!(
            c.authorize_url.as_ref().map(Url::as_str),
            Some("https://fhir.example.org/oauth/authorize")
        );
        // One redirect_uri, on the OAuth 2.0 settings (registration and consent).
        assert_eq!(
            o.redirect_uri.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:8765/callback")
        );
        assert!(c.prompt_login);
        assert_eq!(
            c.authorize_params,
            vec![("aud".to_string(), "https://fhir.example.org/r4".to_string())]
        );
        let none = providers(FHIR).expect("valid").remove(0);
        let ProviderAuth::Oauth2(o) = &none.auth else {
            panic!("oauth2")
        };
        assert!(o.consent.is_none());
    }

    #[test]
    fn consent_errors_name_the_provider_the_key_and_the_file() {
        let rows: &[(&str, &str, &str)] = &[
            (
                "authorize_url = \"/oauth/authorize\"\n",
                "",
                "auth.prompt_login",
            ),
            (
                "redirect_uri = \"http://127.0.0.1:8765/callback\"",
                "redirect_uri = \"ftp://127.0.0.1/cb\"",
                "auth.redirect_uri",
            ),
            (
                "redirect_uri = \"http://127.0.0.1:8765/callback\"",
                "redirect_uri = \"http://127.0.0.1:8765/callback#x\"",
                "auth.redirect_uri",
            ),
            (
                "aud = \"https://fhir.example.org/r4\"",
                "state = \"fixed\"",
                "auth.authorize_params.state",
            ),
            (
                "client_auth = \"none\"",
                "client_auth = \"none\"\nclient_secret_env = \"X\"",
                "auth.client_secret_env",
            ),
            (
                "client_auth = \"none\"",
                "client_auth = \"jwt\"",
                "auth.client_auth",
            ),
        ];
        for (from, to, key) in rows {
            assert!(CONSENT.contains(from), "{from}");
            let msg = providers(&CONSENT.replace(from, to))
                .expect_err(to)
                .to_string();
            assert!(
                msg.contains(key) && msg.contains("portal") && msg.contains("/etc/rx/config.toml"),
                "{to}: {msg}"
            );
        }
    }

    const OAUTH1_CONSENT: &str = r#"
[[providers]]
id = "legacy"
kind = "ccr"
base_url = "https://ccr.example.org/api/"
document_url = "ccr/{patient}"
[providers.auth]
scheme = "oauth1"
consumer_key = "rx"
consumer_secret_env = "LEGACY_SECRET"
placement = "query"
request_token_url = "oauth/request_token"
authorize_url = "https://login.example.org/authorize"
access_token_url = "oauth/access_token"
redirect_uri = "http://127.0.0.1:8765/callback"
"#;

    #[test]
    fn oauth1_consent_settings_resolve() {
        let p = providers(OAUTH1_CONSENT).expect("valid").remove(0);
        let ProviderAuth::Oauth1(o) = &p.auth else {
            panic!("oauth1")
        };
        let c = o.consent.as_deref().expect("consent");
        assert_eq!(
            c.request_token_url.as_str(),
            "https://ccr.example.org/api/oauth/request_token"
        );
        assert_eq!(
            c.authorize_url.as_str(),
            "https://login.example.org/authorize"
        );
        assert_eq!(
            c.access_token_url.as_str(),
            "https://ccr.example.org/api/oauth/access_token"
        );
        assert_eq!(
            c.redirect_uri.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:8765/callback")
        );
        assert_eq!(c.token_method, "POST");
    }

    #[test]
    fn oauth1_consent_errors_name_the_provider_the_key_and_the_file() {
        let rows: &[(&str, &str, &str)] = &[
            (
                "access_token_url = \"oauth/access_token\"\n",
                "",
                "auth.access_token_url",
            ),
            (
                "request_token_url = \"oauth/request_token\"\n",
                "",
                "auth.request_token_url",
            ),
            (
                "authorize_url = \"https://login.example.org/authorize\"\n",
                "",
                "auth.authorize_url",
            ),
            (
                "redirect_uri = \"http://127.0.0.1:8765/callback\"",
                "redirect_uri = \"ftp://127.0.0.1/cb\"",
                "auth.redirect_uri",
            ),
            (
                "placement = \"query\"",
                "placement = \"query\"\ntoken_method = \"PUT\"",
                "auth.token_method",
            ),
            (
                "placement = \"query\"",
                "placement = \"query\"\nprompt_login = true",
                "auth.prompt_login",
            ),
            // OAuth 2.0's key-rotation keys mean nothing here: refused, not ignored.
            (
                "placement = \"query\"",
                "placement = \"query\"\nprevious_key_id = \"k0\"",
                "auth.previous_key_id",
            ),
            (
                "placement = \"query\"",
                "placement = \"query\"\nprevious_algorithm = \"ES384\"",
                "auth.previous_algorithm",
            ),
        ];
        for (from, to, key) in rows {
            assert!(OAUTH1_CONSENT.contains(from), "{from}");
            let msg = providers(&OAUTH1_CONSENT.replace(from, to))
                .expect_err(to)
                .to_string();
            assert!(
                msg.contains(key) && msg.contains("legacy") && msg.contains("/etc/rx/config.toml"),
                "{to}: {msg}"
            );
        }
        // One rule for the redirect URI of both protocols: the same words.
        let fragment = |text: &str| {
            providers(&text.replace(
                "redirect_uri = \"http://127.0.0.1:8765/callback\"",
                "redirect_uri = \"http://127.0.0.1:8765/callback#x\"",
            ))
            .expect_err("a fragment")
            .to_string()
        };
        let (one, two) = (fragment(OAUTH1_CONSENT), fragment(CONSENT));
        let rule = "auth.redirect_uri must not have a fragment (RFC 6749 §3.1.2)";
        assert!(one.contains(rule) && two.contains(rule), "{one}\n{two}");
        // Without the three endpoints, redirect_uri alone is an error too.
        let text = OAUTH1_CONSENT
            .replace("request_token_url = \"oauth/request_token\"\n", "")
            .replace(
                "authorize_url = \"https://login.example.org/authorize\"\n",
                "",
            )
            .replace("access_token_url = \"oauth/access_token\"\n", "");
        let msg = providers(&text).expect_err("redirect alone").to_string();
        assert!(msg.contains("auth.redirect_uri"), "{msg}");
    }

    #[test]
    fn secrets_load_from_env_or_file_and_errors_never_hold_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").expect("write");
        use secrecy::ExposeSecret;
        let got = SecretSource::File(path.clone())
            .load("acme", "auth.consumer_secret", &|_| None)
            .expect("reads")
            .expect("some");
        assert_eq!(got.expose_secret(), "s3cret");
        let env = |k: &str| (k == "X").then(|| "from-env".to_string());
        let got = SecretSource::Env("X".into())
            .load("acme", "auth.consumer_secret", &env)
            .expect("reads")
            .expect("some");
        assert_eq!(got.expose_secret(), "from-env");
        let msg = SecretSource::Env("MISSING".into())
            .load("acme", "auth.consumer_secret", &env)
            .expect_err("unset")
            .to_string();
        assert!(msg.contains("MISSING") && msg.contains("acme"), "{msg}");
        std::fs::write(&path, "\n").expect("write");
        assert!(
            SecretSource::File(path)
                .load("acme", "k", &|_| None)
                .is_err()
        );
    }

    #[test]
    fn discover_and_registration_keys_resolve_and_their_errors_name_the_key() {
        let fhir = |extra_provider: &str, auth: &str| {
            format!(
                "[[providers]]\nid = \"ehr\"\nkind = \"fhir\"\n{extra_provider}\n[providers.auth]\nscheme = \"oauth2\"\n{auth}\n"
            )
        };
        // discover = true: no token_url, no client_id (registered later).
        let p = &providers(&fhir(
            "base_url = \"https://ehr.example/fhir\"\ndiscover = true",
            "redirect_uri = \"http://127.0.0.1:8765/callback\"",
        ))
        .unwrap()[0];
        assert!(p.discover);
        let ProviderAuth::Oauth2(o) = &p.auth else {
            panic!("oauth2")
        };
        assert_eq!(o.token_url, None);
        assert_eq!(o.client_id, None);
        assert_eq!(
            o.redirect_uri.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:8765/callback")
        );
        // Consent with discover = true: the authorization endpoint is left
        // to discovery (resolved at use time), prompt_login is accepted.
        let consent = o.consent.as_ref().expect("consent with discover = true");
        assert_eq!(consent.authorize_url, None);
        let p = &providers(&fhir(
            "base_url = \"https://ehr.example/fhir\"\ndiscover = true",
            "client_id = \"c\"\nauthorize_url = \"/authorize\"\nprompt_login = true",
        ))
        .unwrap()[0];
        let ProviderAuth::Oauth2(o) = &p.auth else {
            panic!("oauth2")
        };
        // A configured authorize_url is kept (it wins over a discovered one).
        let consent = o.consent.as_ref().expect("consent");
        assert_eq!(
            consent.authorize_url.as_ref().map(Url::as_str),
            Some("https://ehr.example/authorize")
        );
        assert!(consent.prompt_login);
        // Without discovery, no authorize_url: no consent; redirect_uri alone is fine (registration).
        let p = &providers(&fhir(
            "base_url = \"https://e/\"",
            "token_url = \"https://e/t\"\nclient_id = \"c\"\nredirect_uri = \"http://127.0.0.1:8765/cb\"",
        ))
        .unwrap()[0];
        let ProviderAuth::Oauth2(o) = &p.auth else {
            panic!("oauth2")
        };
        assert!(o.consent.is_none() && o.redirect_uri.is_some());
        let rows: &[(String, &str, &str)] = &[
            (
                fhir(
                    "base_url = \"https://e/\"",
                    "token_url = \"https://e/t\"\nclient_id = \"c\"\nprompt_login = true",
                ),
                "auth.prompt_login",
                "needs auth.authorize_url (the provider's authorization endpoint) or discover = true",
            ),
            (
                fhir(
                    "base_url = \"https://e/\"\ndiscover = true",
                    "client_id = \"c\"\nredirect_uri = \"http://127.0.0.1:8765/cb#x\"",
                ),
                "auth.redirect_uri",
                "must not have a fragment",
            ),
            (
                fhir("discover = true", ""),
                "base_url",
                "discover = true reads the discovery documents under it",
            ),
            (
                fhir("base_url = \"https://e/\"", "client_id = \"c\""),
                "auth.token_url",
                "or set discover = true",
            ),
            (
                fhir("base_url = \"https://e/\"", "token_url = \"https://e/t\""),
                "auth.client_id",
                "run rxsync provider register",
            ),
            (
                fhir(
                    "base_url = \"https://e/\"\ndiscover = true",
                    "client_secret_env = \"S\"",
                ),
                "auth.client_secret_env",
                "without client_id",
            ),
            (
                fhir(
                    "base_url = \"https://e/\"",
                    "token_url = \"https://e/t\"\nregistration_url = \"e:x\"",
                ),
                "auth.registration_url",
                "must be http or https",
            ),
            (
                fhir(
                    "base_url = \"http://ehr.example/fhir\"\ndiscover = true",
                    "client_id = \"c\"",
                ),
                "discover",
                "over https only",
            ),
            (
                "[[providers]]\nid = \"ehr\"\nkind = \"ccr\"\nbase_url = \"https://e/\"\ndocument_url = \"{patient}\"\ndiscover = true\n[providers.auth]\nscheme = \"oauth1\"\nconsumer_key = \"k\"\nconsumer_secret_env = \"S\"\n".to_string(),
                "discover",
                "is for scheme = \"oauth2\"",
            ),
        ];
        for (text, key, says) in rows {
            let e = providers(text).unwrap_err().to_string();
            assert!(
                e.contains("/etc/rx/config.toml")
                    && e.contains("ehr")
                    && e.contains(key)
                    && e.contains(says),
                "{key}: {e}"
            );
        }
    }
}
