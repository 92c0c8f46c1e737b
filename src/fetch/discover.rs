//! Reading a provider's discovery documents (SMART, `oauth-uris`, OIDC).
//!
//! Tries `{base}/.well-known/smart-configuration`, then the
//! CapabilityStatement at `{base}/metadata` (its `oauth-uris` extension),
//! then `{base}/.well-known/openid-configuration`, through the same
//! redirect loop, TLS settings and body bound as every other request, and
//! without credentials. `/metadata` is read in any case for `fhirVersion`.
//! A source that answers non-2xx, or 2xx with a body that is not its
//! shape, is noted and the next one tried; when none serves, the error
//! lists what each answered. Discovery runs over https only, except to a
//! loopback address (tests, the sandbox, a local proxy).

use super::auth::{Anonymous, redact};
use super::fhir::resource_url;
use super::http::{FetchError, Hop, HttpClient};
use super::settings::FetchLimits;
use crate::discovery::{self, Discovered, Source};
use reqwest::header::{CACHE_CONTROL, HeaderMap};
use std::time::Duration;
use url::Url;

/// A discovery document larger than this is refused.
pub const MAX_DISCOVERY_BYTES: u64 = 1024 * 1024;
/// How long a discovery answer is used without Cache-Control `max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The longest a discovery answer is used, whatever the server says.
const MAX_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Found {
    pub discovered: Discovered,
    /// The document the endpoints came from.
    pub document_url: Url,
    /// How long it may be used (Cache-Control `max-age`, else 24 h).
    pub max_age: Duration,
}

/// Why discovery failed. URLs are shown without secrets.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(
        "{url}: discovery reads https URLs only (plain http only to a loopback address such as 127.0.0.1)"
    )]
    NotHttps { url: String },
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("found no usable discovery document under {base}: {}", .tried.join("; "))]
    NothingFound { base: String, tried: Vec<String> },
}

/// The limits of a discovery read without a configured provider: short
/// timeouts, a 1 MiB body, one retry.
pub fn limits() -> FetchLimits {
    FetchLimits {
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(30),
        timeout: Duration::from_secs(60),
        max_redirects: 5,
        max_document_bytes: MAX_DISCOVERY_BYTES,
        max_pages: 1,
        retries: 1,
        max_retry_after: Duration::from_secs(5),
        rate: None,
    }
}

/// Refuses a URL discovery must not read: not http(s), or plain http to a
/// host that is not loopback.
pub fn check_url(url: &Url) -> Result<(), DiscoverError> {
    if crate::discovery::is_secure(url) {
        Ok(())
    } else {
        Err(DiscoverError::NotHttps { url: redact(url) })
    }
}

/// Reads the discovery documents under `base` (see the module documentation).
pub async fn discover(
    http: &HttpClient,
    base: &Url,
    trail: &mut Vec<Hop>,
) -> Result<Found, DiscoverError> {
    check_url(base)?;
    let mut tried: Vec<String> = Vec::new();
    let mut fhir_version: Option<Option<String>> = None;
    let mut found: Option<Found> = None;
    for source in Source::ORDER {
        let url = resource_url(base, source.path());
        let accept = match source {
            Source::CapabilityStatement => "application/fhir+json, application/json;q=0.9",
            _ => "application/json",
        };
        let f = match http.get(&url, &Anonymous, accept, trail).await {
            Ok(f) => f,
            Err(FetchError::TooLarge { url, limit }) => {
                tried.push(format!("{url} is over {limit} bytes"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !(200..300).contains(&f.status) {
            tried.push(format!("{} answered {}", redact(&url), f.status));
            continue;
        }
        if f.body.len() as u64 > MAX_DISCOVERY_BYTES {
            tried.push(format!(
                "{} is over {MAX_DISCOVERY_BYTES} bytes",
                redact(&url)
            ));
            continue;
        }
        if source == Source::CapabilityStatement {
            fhir_version = Some(discovery::fhir_version(&f.body));
        }
        match discovery::parse(source, &f.body, &f.url) {
            Ok(mut d) => {
                for t in &tried {
                    d.missing.push(format!("earlier source: {t}"));
                }
                found = Some(Found {
                    discovered: d,
                    document_url: f.url.clone(),
                    max_age: max_age(&f.headers),
                });
                break;
            }
            Err(e) => tried.push(format!("{} {e}", redact(&url))),
        }
    }
    let Some(mut found) = found else {
        return Err(DiscoverError::NothingFound {
            base: redact(base),
            tried,
        });
    };
    // `fhirVersion` comes from /metadata even when the endpoints did not.
    let version = match fhir_version {
        Some(v) => v,
        None => {
            let url = resource_url(base, "metadata");
            match http
                .get(
                    &url,
                    &Anonymous,
                    "application/fhir+json, application/json;q=0.9",
                    trail,
                )
                .await
            {
                Ok(f) if (200..300).contains(&f.status) => discovery::fhir_version(&f.body),
                _ => None,
            }
        }
    };
    let d = &mut found.discovered;
    if d.fhir_version.is_none() {
        d.fhir_version = version;
        if d.fhir_version.is_none() && !d.missing.iter().any(|m| m.starts_with("fhirVersion")) {
            d.missing
                .push("fhirVersion: /metadata gave no CapabilityStatement fhirVersion".into());
        }
    }
    Ok(found)
}

/// Cache-Control `max-age` (capped at a week; `no-store`/`no-cache`: 0),
/// else 24 hours.
pub fn max_age(headers: &HeaderMap) -> Duration {
    let Some(value) = headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()) else {
        return DEFAULT_MAX_AGE;
    };
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age.map_or(DEFAULT_MAX_AGE, |a| a.min(MAX_MAX_AGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_read() {
        let ok = [
            "https://ehr.example/fhir",
            "http://127.0.0.1:8080/fhir",
            "http://[::1]/",
            "http://localhost:9/",
        ];
        for u in ok {
            assert!(check_url(&Url::parse(u).unwrap()).is_ok(), "{u}");
        }
        let refused = [
            "http://ehr.example/fhir",
            "http://10.0.0.1/fhir",
            "ftp://ehr.example/",
        ];
        for u in refused {
            let e = check_url(&Url::parse(u).unwrap()).unwrap_err().to_string();
            assert!(e.contains("https URLs only"), "{u}: {e}");
        }
    }

    #[test]
    fn max_age_reads_cache_control() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(CACHE_CONTROL, v.parse().unwrap());
            m
        };
        assert_eq!(max_age(&HeaderMap::new()), DEFAULT_MAX_AGE);
        assert_eq!(max_age(&h("public, max-age=600")), Duration::from_secs(600));
        assert_eq!(max_age(&h("no-store")), Duration::ZERO);
        assert_eq!(max_age(&h("max-age=99999999")), MAX_MAX_AGE);
        assert_eq!(max_age(&h("max-age=soon")), DEFAULT_MAX_AGE);
    }
}
