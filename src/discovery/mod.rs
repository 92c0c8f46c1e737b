//! Discovery documents: what a provider says about its OAuth endpoints.
//!
//! Three shapes are read into one `Discovered` value: SMART App Launch's
//! `.well-known/smart-configuration`, the `oauth-uris` extension of a FHIR
//! CapabilityStatement (`/metadata`, the SMART 1.0 fallback), and OpenID
//! Connect's `.well-known/openid-configuration`. `toml` turns a
//! `Discovered` into a ready `[[providers]]` block.
//!
//! Pure: bytes in, values out. This module never touches the network, the
//! clock or the store (`fetch::discover` reads the documents, `store`
//! caches them). A document that is not JSON, not an object, or has no
//! usable token endpoint is an error that says which; a field that is
//! absent or unusable is listed in `Discovered::missing`, never guessed.

pub mod toml;

use serde::{Deserialize, Serialize};
use url::Url;

/// Where a discovery document comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `{base}/.well-known/smart-configuration`.
    SmartConfiguration,
    /// The `oauth-uris` extension of `{base}/metadata`.
    CapabilityStatement,
    /// `{base}/.well-known/openid-configuration`.
    OpenidConfiguration,
}

impl Source {
    /// The path under the base URL the document is read from.
    pub fn path(self) -> &'static str {
        match self {
            Source::SmartConfiguration => ".well-known/smart-configuration",
            Source::CapabilityStatement => "metadata",
            Source::OpenidConfiguration => ".well-known/openid-configuration",
        }
    }

    /// The order discovery tries them in.
    pub const ORDER: [Source; 3] = [
        Source::SmartConfiguration,
        Source::CapabilityStatement,
        Source::OpenidConfiguration,
    ];
}

/// What a provider announced. Endpoints are absolute URLs; the lists are
/// as announced (empty when not announced: see `missing`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Discovered {
    pub source: Option<Source>,
    pub issuer: Option<Url>,
    /// `issuer` exactly as announced, for comparing with a token's `iss`
    /// (OpenID Connect Discovery §4.3: identical), which the URL parser
    /// would change (`https://idp` becomes `https://idp/`). Set with
    /// `issuer`; absent from a cache row an older build wrote.
    #[serde(default)]
    pub issuer_text: Option<String>,
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    pub registration_endpoint: Option<Url>,
    pub introspection_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Option<Url>,
    /// SMART 1.0 `oauth-uris` `manage`: where a patient manages grants.
    pub manage_endpoint: Option<Url>,
    pub code_challenge_methods: Vec<String>,
    pub client_auth_methods: Vec<String>,
    pub client_auth_signing_algs: Vec<String>,
    /// `id_token_signing_alg_values_supported`, as announced (OpenID
    /// Connect; empty when not announced, which is no `missing` line: a
    /// SMART server need not sign ID tokens). `identity` validates ID
    /// tokens with these, intersected with what rxsync verifies.
    #[serde(default)]
    pub id_token_signing_algs: Vec<String>,
    pub scopes: Vec<String>,
    /// SMART capabilities (`launch-standalone`, `permission-v2`, …).
    pub capabilities: Vec<String>,
    /// The CapabilityStatement's `fhirVersion`, when `/metadata` was read.
    pub fhir_version: Option<String>,
    /// Fields the document did not give (or gave unusably), each with why.
    pub missing: Vec<String>,
}

impl Discovered {
    /// Whether every endpoint it holds passes `is_secure` (true of what
    /// `parse` makes; a cache row an older build wrote may not be).
    pub fn endpoints_secure(&self) -> bool {
        [
            &self.issuer,
            &self.authorization_endpoint,
            &self.token_endpoint,
            &self.registration_endpoint,
            &self.introspection_endpoint,
            &self.revocation_endpoint,
            &self.userinfo_endpoint,
            &self.jwks_uri,
            &self.manage_endpoint,
        ]
        .into_iter()
        .flatten()
        .all(is_secure)
    }
}

/// Why a discovery document could not be used. Never holds a secret:
/// discovery documents are public.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON at all (an HTML page, a login form, garbage).
    #[error("is not JSON ({detail}); it begins {excerpt:?}")]
    NotJson { detail: String, excerpt: String },
    /// JSON, but not the shape the source has.
    #[error("is not a {expected}: {detail}")]
    Shape {
        expected: &'static str,
        detail: String,
    },
    /// The document names no token endpoint rxsync could use.
    #[error("names no usable token endpoint ({detail})")]
    NoTokenEndpoint { detail: String },
}

/// The `oauth-uris` extension URL (SMART App Launch 1.0).
pub const OAUTH_URIS: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// The SMART and OIDC metadata fields both JSON shapes share (RFC 8414 names).
#[derive(Debug, Default, Deserialize)]
struct Metadata {
    issuer: Option<serde_json::Value>,
    authorization_endpoint: Option<serde_json::Value>,
    token_endpoint: Option<serde_json::Value>,
    registration_endpoint: Option<serde_json::Value>,
    introspection_endpoint: Option<serde_json::Value>,
    revocation_endpoint: Option<serde_json::Value>,
    userinfo_endpoint: Option<serde_json::Value>,
    jwks_uri: Option<serde_json::Value>,
    management_endpoint: Option<serde_json::Value>,
    code_challenge_methods_supported: Option<serde_json::Value>,
    token_endpoint_auth_methods_supported: Option<serde_json::Value>,
    token_endpoint_auth_signing_alg_values_supported: Option<serde_json::Value>,
    id_token_signing_alg_values_supported: Option<serde_json::Value>,
    scopes_supported: Option<serde_json::Value>,
    capabilities: Option<serde_json::Value>,
}

/// Reads `.well-known/smart-configuration` or `.well-known/openid-configuration`.
/// Relative endpoint URLs resolve against `at` (the document's URL).
pub fn parse_metadata(source: Source, bytes: &[u8], at: &Url) -> Result<Discovered, DocumentError> {
    let expected = match source {
        Source::OpenidConfiguration => "OpenID Connect configuration (a JSON object)",
        _ => "SMART configuration (a JSON object)",
    };
    let value = json(bytes)?;
    if !value.is_object() {
        return Err(DocumentError::Shape {
            expected,
            detail: format!("the top level is {}", kind_of(&value)),
        });
    }
    let m: Metadata = serde_json::from_value(value).map_err(|e| DocumentError::Shape {
        expected,
        detail: e.to_string(),
    })?;
    let mut d = Discovered {
        source: Some(source),
        ..Discovered::default()
    };
    let mut url = |name: &str, v: Option<serde_json::Value>| url_field(&mut d.missing, name, v, at);
    let token = url("token_endpoint", m.token_endpoint);
    let authorize = url("authorization_endpoint", m.authorization_endpoint);
    let registration = url("registration_endpoint", m.registration_endpoint);
    let introspection = url("introspection_endpoint", m.introspection_endpoint);
    let revocation = url("revocation_endpoint", m.revocation_endpoint);
    let userinfo = url("userinfo_endpoint", m.userinfo_endpoint);
    let jwks = url("jwks_uri", m.jwks_uri);
    let issuer_text = m
        .issuer
        .as_ref()
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let issuer = url("issuer", m.issuer);
    let manage = match m.management_endpoint {
        None => None,
        some => url("management_endpoint", some),
    };
    d.token_endpoint = token;
    d.authorization_endpoint = authorize;
    d.registration_endpoint = registration;
    d.introspection_endpoint = introspection;
    d.revocation_endpoint = revocation;
    d.userinfo_endpoint = userinfo;
    d.jwks_uri = jwks;
    // Only an absolute issuer that is the URL read (not a relative one resolved).
    d.issuer_text = issuer_text.filter(|t| issuer.is_some() && Url::parse(t).ok() == issuer);
    d.issuer = issuer;
    d.manage_endpoint = manage;
    let mut list = |name: &str, v: Option<serde_json::Value>| string_list(&mut d.missing, name, v);
    let pkce = list(
        "code_challenge_methods_supported",
        m.code_challenge_methods_supported,
    );
    let auth = list(
        "token_endpoint_auth_methods_supported",
        m.token_endpoint_auth_methods_supported,
    );
    let algs = list(
        "token_endpoint_auth_signing_alg_values_supported",
        m.token_endpoint_auth_signing_alg_values_supported,
    );
    let scopes = list("scopes_supported", m.scopes_supported);
    // Only when announced: its absence is not worth a `missing` line.
    let id_token_algs = match m.id_token_signing_alg_values_supported {
        None => Vec::new(),
        some => list("id_token_signing_alg_values_supported", some),
    };
    let capabilities = match source {
        Source::OpenidConfiguration => Vec::new(),
        _ => list("capabilities", m.capabilities),
    };
    d.code_challenge_methods = pkce;
    d.client_auth_methods = auth;
    d.client_auth_signing_algs = algs;
    d.scopes = scopes;
    d.id_token_signing_algs = id_token_algs;
    d.capabilities = capabilities;
    require_token(d)
}

/// Reads the `oauth-uris` extension of a CapabilityStatement
/// (`rest[].security.extension[]`: `authorize`, `token`, `register`,
/// `manage`, `introspect`, `revoke`) and its `fhirVersion`.
pub fn parse_capability_statement(bytes: &[u8], at: &Url) -> Result<Discovered, DocumentError> {
    const EXPECTED: &str = "FHIR CapabilityStatement";
    let value = json(bytes)?;
    let resource_type = value.get("resourceType").and_then(|t| t.as_str());
    if resource_type != Some("CapabilityStatement") {
        return Err(DocumentError::Shape {
            expected: EXPECTED,
            detail: match resource_type {
                Some(t) => format!("its resourceType is {t:?}"),
                None => "it has no resourceType".to_string(),
            },
        });
    }
    let mut d = Discovered {
        source: Some(Source::CapabilityStatement),
        fhir_version: value
            .get("fhirVersion")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        ..Discovered::default()
    };
    if d.fhir_version.is_none() {
        d.missing
            .push("fhirVersion: not in the CapabilityStatement".to_string());
    }
    let oauth_uris = value
        .get("rest")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|rest| rest.pointer("/security/extension")?.as_array())
        .flatten()
        .find(|e| e.get("url").and_then(|u| u.as_str()) == Some(OAUTH_URIS));
    let Some(oauth_uris) = oauth_uris else {
        return Err(DocumentError::NoTokenEndpoint {
            detail: format!("no rest[].security extension {OAUTH_URIS}"),
        });
    };
    let inner: Vec<&serde_json::Value> = oauth_uris
        .get("extension")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut uri = |name: &str| {
        let v = inner
            .iter()
            .find(|e| e.get("url").and_then(|u| u.as_str()) == Some(name))
            .and_then(|e| e.get("valueUri").or_else(|| e.get("valueUrl")))
            .cloned();
        url_field(&mut d.missing, &format!("oauth-uris {name}"), v, at)
    };
    let token = uri("token");
    let authorize = uri("authorize");
    let register = uri("register");
    let introspect = uri("introspect");
    let revoke = uri("revoke");
    let manage = uri("manage");
    d.token_endpoint = token;
    d.authorization_endpoint = authorize;
    d.registration_endpoint = register;
    d.introspection_endpoint = introspect;
    d.revocation_endpoint = revoke;
    d.manage_endpoint = manage;
    d.missing.push(
        "PKCE methods, client authentication methods, scopes: a CapabilityStatement does not announce them"
            .to_string(),
    );
    require_token(d)
}

/// Reads `fhirVersion` of a CapabilityStatement, if that is what `bytes` is.
pub fn fhir_version(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    (value.get("resourceType")?.as_str()? == "CapabilityStatement")
        .then(|| value.get("fhirVersion")?.as_str().map(str::to_string))
        .flatten()
}

/// Parses a document of `source`.
pub fn parse(source: Source, bytes: &[u8], at: &Url) -> Result<Discovered, DocumentError> {
    match source {
        Source::CapabilityStatement => parse_capability_statement(bytes, at),
        other => parse_metadata(other, bytes, at),
    }
}

fn require_token(d: Discovered) -> Result<Discovered, DocumentError> {
    if d.token_endpoint.is_some() {
        return Ok(d);
    }
    let why = d
        .missing
        .iter()
        .find(|m| m.starts_with("token_endpoint:") || m.starts_with("oauth-uris token:"))
        .cloned()
        .unwrap_or_else(|| "token_endpoint is missing".to_string());
    Err(DocumentError::NoTokenEndpoint { detail: why })
}

fn json(bytes: &[u8]) -> Result<serde_json::Value, DocumentError> {
    serde_json::from_slice(bytes).map_err(|e| DocumentError::NotJson {
        detail: e.to_string(),
        excerpt: excerpt(bytes),
    })
}

/// The first 60 characters of a body, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(240)])
        .chars()
        .filter(|c| !c.is_control())
        .take(60)
        .collect()
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The one loopback rule (discovery, endpoints read from documents, and the
/// provider config all use it): an IPv4 or IPv6 loopback address, or the
/// name `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether credentials may be sent to `url`: https with a host, or plain
/// http to a loopback host (`is_loopback`).
pub fn is_secure(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(url),
        _ => false,
    }
}

/// An endpoint field, resolved against `at`: https, or http to a loopback
/// host (`is_secure`); else a line in `missing` saying why, and `None`.
fn url_field(
    missing: &mut Vec<String>,
    name: &str,
    v: Option<serde_json::Value>,
    at: &Url,
) -> Option<Url> {
    let problem = match &v {
        None | Some(serde_json::Value::Null) => "not announced".to_string(),
        Some(serde_json::Value::String(s)) => match at.join(s) {
            Ok(u) if is_secure(&u) => return Some(u),
            Ok(u) if u.scheme() == "http" => {
                format!("{s:?} is plain http to a host that is not loopback, not used")
            }
            Ok(u) if u.scheme() == "https" => format!("{s:?} is an https URL with no host"),
            Ok(u) => format!("{s:?} is a {} URL, not http(s)", u.scheme()),
            Err(e) => format!("{s:?} is not a URL ({e})"),
        },
        Some(other) => format!("is {}, not a URL string", kind_of(other)),
    };
    missing.push(format!("{name}: {problem}"));
    None
}

/// A list of strings; else a line in `missing` and an empty list.
fn string_list(missing: &mut Vec<String>, name: &str, v: Option<serde_json::Value>) -> Vec<String> {
    let problem = match &v {
        None | Some(serde_json::Value::Null) => "not announced".to_string(),
        Some(serde_json::Value::Array(items)) => {
            let strings: Vec<String> = items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect();
            if strings.len() == items.len() && !strings.is_empty() {
                return strings;
            }
            if items.is_empty() {
                "an empty list".to_string()
            } else {
                "holds values that are not strings".to_string()
            }
        }
        Some(other) => format!("is {}, not a list of strings", kind_of(other)),
    };
    missing.push(format!("{name}: {problem}"));
    Vec::new()
}

#[cfg(test)]
mod tests;
