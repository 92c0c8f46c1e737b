//! `sandbox.toml` in two steps: the file is deserialized strictly (unknown
//! keys are errors naming the key and the file), then `resolve` checks the
//! values and loads the RSA public keys, giving the `Settings` the server
//! runs with. Without a file the built-in demo setup applies; a list given
//! in the file (`[[consumers]]`, `[[clients]]`, `[[redirects]]`) replaces
//! the built-in list of that name, other keys keep their defaults.
//!
//! The demo secrets below are published on purpose (samples/sandbox/README.md):
//! they only ever open this loopback sandbox.

use std::fmt;
use std::path::{Path, PathBuf};

use rsa::RsaPublicKey;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use url::Url;

use super::SandboxError;
use super::catalog;
use crate::fetch::oauth1::rsa_public_key_from_pem;

/// The file `load` reads from the data directory.
pub const CONFIG_FILE: &str = "sandbox.toml";

/// The public half of oauthlib's RSA test key, for the `demo-rsa` consumer.
pub const DEMO_RSA_PUBLIC_KEY: &str = include_str!("../../samples/sandbox/demo-rsa-public.pem");
/// Its private half (oauthlib's published test key, never a credential):
/// what a demo client signs `demo-rsa` requests with.
pub const DEMO_RSA_PRIVATE_KEY: &str = include_str!("../../samples/sandbox/demo-rsa-key.pem");

/// The sandbox provider's configuration, as `sandbox.toml` writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// What links and `next` URLs advertise; by default the request's
    /// scheme and `Host` header, so that a client sees the origin it used.
    pub base_url: Option<String>,
    /// How many medications a generated document lists.
    pub medications: usize,
    /// The FHIR search page size when a request gives no `_count`.
    pub page_size: usize,
    /// OAuth 1.0a timestamps more than this many seconds away from the
    /// server's clock are refused; nonces are remembered this long.
    pub timestamp_window: u64,
    /// OAuth 1.0a consumers.
    pub consumers: Vec<ConsumerConfig>,
    /// OAuth 2.0 clients.
    pub clients: Vec<ClientConfig>,
    /// Redirect rules, applied before routing in this order (first match wins).
    pub redirects: Vec<RedirectRule>,
    /// Keep issued tokens and grants in `DIR/state.json` across restarts
    /// (the demo uses it so that `rxsync run` can carry on with the same links).
    pub persist_state: bool,
    /// Generated MedicationRequests name their drug only by
    /// `medicationReference` to `Medication/{id}`, served at
    /// `/fhir/Medication/{id}` (US Core EHR style).
    pub medication_reference: bool,
    /// `_include=…:medication` is honoured, and announced in `/fhir/metadata`.
    pub search_include: bool,
    /// FHIR Bulk Data `$export` and its SMART Backend Services clients.
    pub bulk: BulkConfig,
}

/// `[bulk]`: the `$export` the sandbox serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BulkConfig {
    /// The patients every export covers (generated like the others).
    pub patients: Vec<String>,
    /// How many status requests answer 202 (`Retry-After: 1`, `X-Progress`) before the manifest.
    pub polls: u32,
    /// Whether output files need the bearer (`requiresAccessToken`).
    pub require_token: bool,
    /// The first download of each export's second file is cut off mid-body.
    pub interrupt: bool,
    /// Lifetime of a backend-services access token, in seconds.
    pub access_token_ttl: u64,
    /// Clients that authenticate with a `private_key_jwt` client assertion.
    pub clients: Vec<BulkClientConfig>,
}

/// One SMART Backend Services client: its public key (RS384 or ES384).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkClientConfig {
    pub id: String,
    /// The `kid` its assertions name.
    pub kid: String,
    /// `RS384` or `ES384`.
    pub algorithm: String,
    /// A PEM public key (SPKI; PKCS#1 for RSA too), relative to the data directory.
    pub public_key_file: PathBuf,
}

impl Default for BulkConfig {
    fn default() -> BulkConfig {
        BulkConfig {
            patients: vec!["bulk-1".into(), "bulk-2".into(), "bulk-3".into()],
            polls: 2,
            require_token: true,
            interrupt: false,
            access_token_ttl: 300,
            clients: Vec::new(),
        }
    }
}

/// A backend-services client as the token endpoint needs it.
#[derive(Debug, Clone)]
pub(crate) struct BulkClient {
    pub id: String,
    pub kid: String,
    pub rsa: bool,
    /// The PEM public key, checked when the configuration was resolved.
    pub public_pem: String,
}

/// Where a credential may travel: the `Authorization` header, the query, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowedPlacement {
    Header,
    Query,
    Either,
}

impl AllowedPlacement {
    /// Whether a credential sent in the header (`true`) or query (`false`) is allowed.
    pub fn allows(self, in_header: bool) -> bool {
        match self {
            AllowedPlacement::Either => true,
            AllowedPlacement::Header => in_header,
            AllowedPlacement::Query => !in_header,
        }
    }
}

/// One OAuth 1.0a consumer: a shared secret (HMAC-SHA1, HMAC-SHA256,
/// PLAINTEXT over TLS) or an RSA public key (RSA-SHA1).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// `oauth_consumer_key`.
    pub key: String,
    /// The consumer secret.
    #[serde(default, deserialize_with = "optional_secret")]
    pub secret: Option<SecretString>,
    /// A PEM public key file (PKCS#1 or SPKI), relative to the data directory.
    #[serde(default)]
    pub rsa_public_key_file: Option<PathBuf>,
    /// The PEM public key itself (what the built-in `demo-rsa` uses).
    #[serde(default)]
    pub rsa_public_key: Option<String>,
    /// Where this consumer's protocol parameters must be.
    #[serde(default = "either")]
    pub placement: AllowedPlacement,
}

/// One OAuth 2.0 client.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// `client_id`.
    pub id: String,
    /// The client secret; absent for a public client.
    #[serde(default, deserialize_with = "optional_secret")]
    pub secret: Option<SecretString>,
    /// Each refresh returns a new refresh token and consumes the old one.
    #[serde(default = "yes")]
    pub rotate_refresh_tokens: bool,
    /// Refresh responses carry no `refresh_token`; the old one stays valid.
    #[serde(default)]
    pub omit_refresh_token: bool,
    /// Lifetime of an access token, in seconds.
    #[serde(default = "default_ttl")]
    pub access_token_ttl: u64,
    /// Where the bearer token may travel (RFC 6750 §2.1 header, §2.3 query).
    #[serde(default = "either")]
    pub bearer_placement: AllowedPlacement,
    /// The client authenticates with a `private_key_jwt` assertion (RFC
    /// 7523), verified against the `[[bulk.clients]]` key of the same id;
    /// a bare `client_id` is then refused.
    #[serde(default)]
    pub private_key_jwt: bool,
}

/// A redirect rule: a request whose path starts with `from` is answered
/// with `status` and a `Location` where `to` replaces that prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectRule {
    /// A path prefix starting with `/`.
    pub from: String,
    /// A path prefix (a relative `Location`) or an absolute URL prefix
    /// (another origin).
    pub to: String,
    /// 301, 302, 303, 307 or 308.
    #[serde(default = "found")]
    pub status: u16,
}

fn either() -> AllowedPlacement {
    AllowedPlacement::Either
}
fn yes() -> bool {
    true
}
fn default_ttl() -> u64 {
    3600
}
fn found() -> u16 {
    302
}

fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
}

// Secrets are never shown, even by `{:?}` in a log line.
impl fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerConfig")
            .field("key", &self.key)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("rsa_public_key_file", &self.rsa_public_key_file)
            .field("rsa_public_key", &self.rsa_public_key.is_some())
            .field("placement", &self.placement)
            .finish()
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .field("omit_refresh_token", &self.omit_refresh_token)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("bearer_placement", &self.bearer_placement)
            .field("private_key_jwt", &self.private_key_jwt)
            .finish()
    }
}

impl Default for SandboxConfig {
    /// The demo setup (samples/sandbox/README.md lists it).
    fn default() -> SandboxConfig {
        let consumer = |key: &str, placement| ConsumerConfig {
            key: key.to_string(),
            secret: Some(SecretString::from(format!("{key}-secret"))),
            rsa_public_key_file: None,
            rsa_public_key: None,
            placement,
        };
        let client = |id: &str, secret: bool, omit: bool| ClientConfig {
            id: id.to_string(),
            secret: secret.then(|| SecretString::from(format!("{id}-secret"))),
            rotate_refresh_tokens: !omit,
            omit_refresh_token: omit,
            access_token_ttl: default_ttl(),
            bearer_placement: AllowedPlacement::Either,
            private_key_jwt: false,
        };
        let redirect = |from: &str, to: &str, status| RedirectRule {
            from: from.to_string(),
            to: to.to_string(),
            status,
        };
        SandboxConfig {
            base_url: None,
            medications: 20,
            page_size: 10,
            timestamp_window: 600,
            consumers: vec![
                consumer("demo-hmac-header", AllowedPlacement::Header),
                consumer("demo-hmac-query", AllowedPlacement::Query),
                consumer("demo-hmac-either", AllowedPlacement::Either),
                ConsumerConfig {
                    key: "demo-rsa".to_string(),
                    secret: None,
                    rsa_public_key_file: None,
                    rsa_public_key: Some(DEMO_RSA_PUBLIC_KEY.to_string()),
                    placement: AllowedPlacement::Either,
                },
            ],
            clients: vec![
                client("demo-client", true, false),
                client("demo-public", false, false),
                client("demo-norotate", true, true),
            ],
            redirects: vec![
                redirect("/moved/", "/", 301),
                redirect("/temp/", "/", 307),
                redirect("/loop-a/", "/loop-b/", 302),
                redirect("/loop-b/", "/loop-a/", 302),
            ],
            persist_state: false,
            medication_reference: false,
            search_include: false,
            bulk: BulkConfig::default(),
        }
    }
}

impl SandboxConfig {
    /// Reads `DIR/sandbox.toml` when there is one, else the demo setup, and
    /// checks it (RSA key files included). Errors name the file and the key.
    pub fn load(data_dir: Option<&Path>) -> Result<SandboxConfig, SandboxError> {
        let Some(dir) = data_dir else {
            return Ok(SandboxConfig::default());
        };
        let path = dir.join(CONFIG_FILE);
        let config = match std::fs::read_to_string(&path) {
            Ok(text) => SandboxConfig::parse(&text, &path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SandboxConfig::default(),
            Err(source) => return Err(SandboxError::ReadConfig { path, source }),
        };
        resolve(&config, Some(dir), &path.display().to_string())?;
        Ok(config)
    }

    /// Parses configuration text (no I/O); `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<SandboxConfig, SandboxError> {
        toml::from_str(text).map_err(|e| SandboxError::InvalidConfig {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// A consumer as the verifier needs it.
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    pub key: String,
    pub secret: Option<SecretString>,
    pub rsa_public_key: Option<RsaPublicKey>,
    pub placement: AllowedPlacement,
}

/// What the server runs with: the configuration checked, keys loaded.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub base_url: Option<Url>,
    pub medications: usize,
    pub page_size: usize,
    pub timestamp_window: u64,
    pub consumers: Vec<Consumer>,
    pub clients: Vec<ClientConfig>,
    pub redirects: Vec<RedirectRule>,
    pub persist_state: bool,
    pub medication_reference: bool,
    pub search_include: bool,
    pub bulk: BulkConfig,
    pub bulk_clients: Vec<BulkClient>,
}

impl Settings {
    pub fn consumer(&self, key: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.key == key)
    }

    pub fn client(&self, id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.id == id)
    }
}

/// Largest FHIR page a request may ask for.
pub(crate) const MAX_PAGE_SIZE: usize = 1000;

/// Checks `config` and loads its RSA keys (files relative to `data_dir`).
/// `origin` names the file (or "defaults") in errors.
pub(crate) fn resolve(
    config: &SandboxConfig,
    data_dir: Option<&Path>,
    origin: &str,
) -> Result<Settings, SandboxError> {
    let bad = |key: String, problem: String| SandboxError::ConfigValue {
        origin: origin.to_string(),
        key,
        problem,
    };
    let base_url = match &config.base_url {
        None => None,
        Some(raw) => {
            let url = Url::parse(raw)
                .map_err(|e| bad("base_url".into(), format!("is not a URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
                return Err(bad(
                    "base_url".into(),
                    "must be an http(s) URL without a query".into(),
                ));
            }
            Some(url)
        }
    };
    let most = catalog::catalog().len();
    if config.medications > most {
        return Err(bad(
            "medications".into(),
            format!("must be at most {most}, the distinct drugs of the sample dictionary"),
        ));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&config.page_size) {
        return Err(bad(
            "page_size".into(),
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let mut consumers: Vec<Consumer> = Vec::new();
    for (i, c) in config.consumers.iter().enumerate() {
        let key = |field: &str| format!("consumers[{i}].{field}");
        if c.key.is_empty() || consumers.iter().any(|d| d.key == c.key) {
            return Err(bad(key("key"), "must be present and unique".into()));
        }
        let rsa_pem = match (&c.rsa_public_key, &c.rsa_public_key_file) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    key("rsa_public_key_file"),
                    "and rsa_public_key cannot both be given".into(),
                ));
            }
            (Some(pem), None) => Some(pem.clone()),
            (None, Some(file)) => {
                let path = data_dir.map_or_else(|| file.clone(), |d| d.join(file));
                Some(std::fs::read_to_string(&path).map_err(|e| {
                    bad(
                        key("rsa_public_key_file"),
                        format!("cannot be read ({}: {e})", path.display()),
                    )
                })?)
            }
            (None, None) => None,
        };
        let rsa_public_key =
            match rsa_pem {
                Some(pem) => Some(rsa_public_key_from_pem(&pem).map_err(|_| {
                    bad(key("rsa_public_key"), "is not a PEM RSA public key".into())
                })?),
                None => None,
            };
        if c.secret.is_some() == rsa_public_key.is_some() {
            return Err(bad(
                key("secret"),
                "or an RSA public key is required, and only one of them".into(),
            ));
        }
        consumers.push(Consumer {
            key: c.key.clone(),
            secret: c.secret.clone(),
            rsa_public_key,
            placement: c.placement,
        });
    }
    for (i, c) in config.clients.iter().enumerate() {
        if c.id.is_empty() || config.clients[..i].iter().any(|d| d.id == c.id) {
            return Err(bad(
                format!("clients[{i}].id"),
                "must be present and unique".into(),
            ));
        }
    }
    for (i, r) in config.redirects.iter().enumerate() {
        if !r.from.starts_with('/') || r.from.starts_with("/admin/") {
            return Err(bad(
                format!("redirects[{i}].from"),
                "must be a path starting with / (and not under /admin/)".into(),
            ));
        }
        if !r.to.starts_with('/') && Url::parse(&r.to).is_err() {
            return Err(bad(
                format!("redirects[{i}].to"),
                "must be a path starting with / or an absolute URL".into(),
            ));
        }
        if !matches!(r.status, 301 | 302 | 303 | 307 | 308) {
            return Err(bad(
                format!("redirects[{i}].status"),
                "must be 301, 302, 303, 307 or 308".into(),
            ));
        }
    }
    let mut bulk_clients = Vec::new();
    for (i, c) in config.bulk.clients.iter().enumerate() {
        let key = |field: &str| format!("bulk.clients[{i}].{field}");
        let rsa = match c.algorithm.as_str() {
            "RS384" => true,
            "ES384" => false,
            other => {
                return Err(bad(
                    key("algorithm"),
                    format!("must be RS384 or ES384, not {other:?}"),
                ));
            }
        };
        let path =
            data_dir.map_or_else(|| c.public_key_file.clone(), |d| d.join(&c.public_key_file));
        let pem = std::fs::read_to_string(&path).map_err(|e| {
            bad(
                key("public_key_file"),
                format!("cannot be read ({}: {e})", path.display()),
            )
        })?;
        let parsed = if rsa {
            jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
        } else {
            jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes())
        };
        if parsed.is_err() {
            return Err(bad(
                key("public_key_file"),
                format!("is not a PEM {} public key", c.algorithm),
            ));
        }
        bulk_clients.push(BulkClient {
            id: c.id.clone(),
            kid: c.kid.clone(),
            rsa,
            public_pem: pem,
        });
    }
    if config
        .bulk
        .patients
        .iter()
        .any(|p| super::generate::RemotePatient::parse(p).is_err())
    {
        return Err(bad(
            "bulk.patients".into(),
            "holds a name that is not a patient id".into(),
        ));
    }
    Ok(Settings {
        bulk: config.bulk.clone(),
        bulk_clients,
        base_url,
        medications: config.medications,
        page_size: config.page_size,
        timestamp_window: config.timestamp_window,
        consumers,
        clients: config.clients.clone(),
        redirects: config.redirects.clone(),
        persist_state: config.persist_state,
        medication_reference: config.medication_reference,
        search_include: config.search_include,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_text(text: &str) -> Result<Settings, SandboxError> {
        let config = SandboxConfig::parse(text, Path::new("sandbox.toml"))?;
        resolve(&config, None, "sandbox.toml")
    }

    #[test]
    fn the_defaults_are_the_demo_set_and_resolve() {
        let s = resolve(&SandboxConfig::default(), None, "defaults").expect("defaults resolve");
        let keys: Vec<&str> = s.consumers.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "demo-hmac-header",
                "demo-hmac-query",
                "demo-hmac-either",
                "demo-rsa"
            ]
        );
        assert!(
            s.consumer("demo-rsa")
                .is_some_and(|c| c.rsa_public_key.is_some())
        );
        let public = s.client("demo-public").expect("public client");
        assert!(public.secret.is_none() && public.rotate_refresh_tokens);
        let norotate = s.client("demo-norotate").expect("norotate client");
        assert!(norotate.omit_refresh_token);
        assert_eq!(
            (s.medications, s.page_size, s.timestamp_window),
            (20, 10, 600)
        );
        assert_eq!(s.redirects.len(), 4);
    }

    #[test]
    fn the_embedded_public_key_belongs_to_the_private_key() {
        let private = crate::fetch::oauth1::RsaSigningKey::from_pem(DEMO_RSA_PRIVATE_KEY)
            .expect("private key");
        let public = rsa_public_key_from_pem(DEMO_RSA_PUBLIC_KEY).expect("public key");
        assert_eq!(private.public_key(), public);
    }

    #[test]
    fn a_list_in_the_file_replaces_the_built_in_list_and_other_keys_keep_defaults() {
        let s = resolve_text(
            "page_size = 3\n[[clients]]\nid = \"only\"\nbearer_placement = \"header\"\n",
        )
        .expect("valid");
        assert_eq!(s.clients.len(), 1);
        assert_eq!(s.clients[0].bearer_placement, AllowedPlacement::Header);
        assert!(s.clients[0].rotate_refresh_tokens);
        assert_eq!(s.page_size, 3);
        assert_eq!(s.consumers.len(), 4);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            ("medication = 3", "medication"),
            ("medications = 100000", "medications"),
            ("page_size = 0", "page_size"),
            ("base_url = \"not a url\"", "base_url"),
            ("[[consumers]]\nkey = \"k\"", "consumers[0].secret"),
            (
                "[[consumers]]\nkey = \"k\"\nsecret = \"s\"\nplacement = \"body\"",
                "placement",
            ),
            (
                "[[consumers]]\nkey = \"k\"\nrsa_public_key_file = \"missing.pem\"",
                "consumers[0].rsa_public_key_file",
            ),
            (
                "[[clients]]\nid = \"a\"\n[[clients]]\nid = \"a\"",
                "clients[1].id",
            ),
            (
                "[[redirects]]\nfrom = \"x\"\nto = \"/\"",
                "redirects[0].from",
            ),
            (
                "[[redirects]]\nfrom = \"/x/\"\nto = \"/\"\nstatus = 200",
                "redirects[0].status",
            ),
        ];
        for (text, key) in cases {
            let err = resolve_text(text).err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("{text:?} should be refused"));
            assert!(err.contains("sandbox.toml"), "{text:?}: {err}");
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let shown = format!("{:?}", SandboxConfig::default());
        assert!(!shown.contains("-secret"), "{shown}");
    }
}
