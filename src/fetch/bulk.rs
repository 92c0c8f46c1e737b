//! FHIR Bulk Data `$export`: kick-off, status polling, file downloads and
//! the final `DELETE`, with a SMART Backend Services token.
//!
//! Only the protocol lives here: the kick-off URL, the status answers, the
//! manifest's shape, and which request carries the bearer. What to do next
//! (store, resume, import) is `crate::export`'s. Every request goes through
//! the provider's `HttpClient`, so the credential rules of `fetch` hold: the
//! bearer goes only to the provider's own and trusted origins, never after a
//! hop left them. A manifest file is fetched with the bearer only when the
//! manifest says `requiresAccessToken`.

use super::auth::{Anonymous, Bearer, Credential, redact};
use super::backend::{BackendClient, BackendError};
use super::http::{Downloaded, FetchError, Hop, HttpClient, retry_after};
use super::oauth1::Placement;
use super::settings::{BulkLevel, Endpoint};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
use url::Url;

/// The resource types an export asks for: medication evidence and the patients.
pub const EXPORT_TYPES: &str = "MedicationRequest,MedicationStatement,MedicationDispense,MedicationAdministration,Medication,ExplanationOfBenefit,Patient";
const FHIR_JSON: &str = "application/fhir+json";
const NDJSON: &str = "application/fhir+ndjson";
/// When the server gives no `Retry-After`: wait this long, doubling to the cap.
const DEFAULT_POLL: Duration = Duration::from_secs(2);
/// A `Retry-After` is obeyed between these bounds.
pub const MIN_POLL: Duration = Duration::from_secs(1);
pub const MAX_POLL: Duration = Duration::from_secs(120);

/// Why a bulk request failed. URLs without secrets; never a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BulkError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Token(#[from] BackendError),
    /// The server answered something the protocol does not allow here.
    #[error("{url}: {detail}")]
    Protocol { url: String, detail: String },
    /// The server refused or failed the request (its OperationOutcome text when it sent one).
    #[error("{url} answered {status}{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        detail: Option<String>,
    },
}

impl BulkError {
    /// Whether the status URL is gone (expired or deleted by the server).
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            BulkError::Status {
                status: 404 | 410,
                ..
            }
        )
    }
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// The completed export's manifest (Bulk Data IG, "Response - Complete Status").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub transaction_time: String,
    #[serde(default)]
    pub requires_access_token: bool,
    #[serde(default)]
    pub output: Vec<ManifestFile>,
    #[serde(default)]
    pub error: Vec<ManifestFile>,
}

impl Manifest {
    /// Reads a manifest; `base` resolves relative file URLs.
    pub fn parse(bytes: &[u8], base: &Url) -> Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not valid: {e}"))?;
        chrono::DateTime::parse_from_rfc3339(&m.transaction_time).map_err(|_| {
            format!(
                "the manifest's transactionTime {:?} is not an instant",
                m.transaction_time
            )
        })?;
        for f in m.output.iter().chain(&m.error) {
            let u = base
                .join(&f.url)
                .map_err(|e| format!("a file URL of the manifest is not a URL: {e}"))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(format!(
                    "a file URL of the manifest is {}, not http(s)",
                    u.scheme()
                ));
            }
            if base.scheme() == "https" && u.scheme() == "http" {
                return Err("a file URL of the manifest goes from https down to http".into());
            }
        }
        Ok(m)
    }
}

/// What one status request said.
#[derive(Debug)]
pub enum Status {
    /// Still running: wait this long (the server's `Retry-After`, bounded), its `X-Progress`.
    InProgress {
        wait: Duration,
        progress: Option<String>,
    },
    /// Done: the manifest and its raw bytes.
    Complete(Manifest),
}

/// The kick-off URL: `[base]/$export`, `[base]/Group/[id]/$export` or
/// `[base]/Patient/$export`, with `_type` and `_since`.
pub fn kickoff_url(base: &Url, level: &BulkLevel, since: Option<&str>) -> Url {
    let path = match level {
        BulkLevel::System => "$export".to_string(),
        BulkLevel::Group(id) => {
            let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
            format!("Group/{id}/$export")
        }
        BulkLevel::Patient => "Patient/$export".to_string(),
    };
    // Joining a relative path drops the base's query.
    let mut url = super::fhir::resource_url(base, &path);
    url.query_pairs_mut().append_pair("_type", EXPORT_TYPES);
    if let Some(s) = since {
        url.query_pairs_mut().append_pair("_since", s);
    }
    url
}

/// The wait before the next status request: the server's `Retry-After`
/// within [`MIN_POLL`, `MAX_POLL`], else a doubling default from the poll count.
pub fn poll_wait(retry_after: Option<Duration>, polls: u32) -> Duration {
    match retry_after {
        Some(d) => d.clamp(MIN_POLL, MAX_POLL),
        None => DEFAULT_POLL
            .saturating_mul(1u32 << polls.min(6))
            .min(MAX_POLL / 2),
    }
}

/// A provider's bulk client: its HTTP client and its backend-services token.
pub struct BulkClient {
    http: HttpClient,
    backend: BackendClient,
    /// The provider's base URL (resolves relative file URLs).
    base: Url,
    timeout: Duration,
}

impl BulkClient {
    pub fn new<'a>(
        provider: impl Into<Endpoint<'a>>,
        backend: BackendClient,
    ) -> Result<Self, BulkError> {
        let provider = provider.into();
        Ok(BulkClient {
            http: HttpClient::for_provider(provider)?,
            backend,
            base: provider.base_url.clone(),
            timeout: provider.limits.timeout,
        })
    }

    async fn bearer(&self) -> Result<Bearer, BulkError> {
        Ok(Bearer {
            token: self.backend.token(self.http.inner(), self.timeout).await?,
            placement: Placement::Header,
        })
    }

    /// A GET with the bearer; a 401 forgets the cached token and tries once more.
    async fn get_authorized(
        &self,
        url: &Url,
        accept: &str,
        extra: &HeaderMap,
        trail: &mut Vec<Hop>,
    ) -> Result<super::http::Fetched, BulkError> {
        let first = self
            .http
            .get_with(url, &self.bearer().await?, accept, extra, trail)
            .await?;
        if first.status != 401 {
            return Ok(first);
        }
        self.backend.forget().await;
        Ok(self
            .http
            .get_with(url, &self.bearer().await?, accept, extra, trail)
            .await?)
    }

    /// Kicks the export off; returns the status URL (`Content-Location` of a 202).
    pub async fn kick_off(&self, url: &Url, trail: &mut Vec<Hop>) -> Result<Url, BulkError> {
        let mut extra = HeaderMap::new();
        extra.insert("prefer", HeaderValue::from_static("respond-async"));
        let f = self.get_authorized(url, FHIR_JSON, &extra, trail).await?;
        if f.status != 202 {
            return Err(status_error(&f));
        }
        let location = f
            .headers
            .get(reqwest::header::CONTENT_LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| f.url.join(l).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| BulkError::Protocol {
                url: redact(url),
                detail: "202 without a usable Content-Location (the status URL)".into(),
            })?;
        Ok(location)
    }

    /// One status request.
    pub async fn status(
        &self,
        status_url: &Url,
        polls: u32,
        trail: &mut Vec<Hop>,
    ) -> Result<Status, BulkError> {
        let f = self
            .get_authorized(status_url, "application/json", &HeaderMap::new(), trail)
            .await?;
        match f.status {
            202 => Ok(Status::InProgress {
                wait: poll_wait(retry_after(&f.headers), polls),
                progress: f
                    .headers
                    .get("x-progress")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.chars().take(100).collect()),
            }),
            200 => Manifest::parse(&f.body, &f.url)
                .map(Status::Complete)
                .map_err(|detail| BulkError::Protocol {
                    url: redact(status_url),
                    detail,
                }),
            _ => Err(status_error(&f)),
        }
    }

    /// Downloads one manifest file into `path` (at most `limit` bytes), with
    /// the bearer only when `requires_token`; returns the bytes written.
    pub async fn download(
        &self,
        file_url: &str,
        requires_token: bool,
        path: &Path,
        limit: u64,
        trail: &mut Vec<Hop>,
    ) -> Result<u64, BulkError> {
        let url = self.base.join(file_url).map_err(|e| BulkError::Protocol {
            url: file_url.chars().take(200).collect(),
            detail: format!("not a URL: {e}"),
        })?;
        let mut retried = false;
        loop {
            let bearer;
            let cred: &dyn Credential = if requires_token {
                bearer = self.bearer().await?;
                &bearer
            } else {
                &Anonymous
            };
            match self
                .http
                .download(&url, cred, NDJSON, path, limit, trail)
                .await?
            {
                Downloaded::Saved { bytes, .. } => return Ok(bytes),
                Downloaded::Refused(f) if f.status == 401 && requires_token && !retried => {
                    self.backend.forget().await;
                    retried = true;
                }
                Downloaded::Refused(f) => return Err(status_error(&f)),
            }
        }
    }

    /// `DELETE` of the status URL: the server may discard the files (and
    /// cancels a running export). 404/410 count as done.
    pub async fn delete(&self, status_url: &Url) -> Result<(), BulkError> {
        let mut req = self
            .http
            .inner()
            .delete(status_url.clone())
            .timeout(self.timeout);
        if self.http.trusts(status_url) {
            let (_, auth) =
                self.bearer()
                    .await?
                    .apply(status_url)
                    .map_err(|detail| BulkError::Protocol {
                        url: redact(status_url),
                        detail,
                    })?;
            if let Some(a) = auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
        }
        let resp = req.send().await.map_err(|e| BulkError::Protocol {
            url: redact(status_url),
            detail: if e.is_timeout() {
                "DELETE timed out".into()
            } else {
                "cannot send the DELETE".into()
            },
        })?;
        let status = resp.status().as_u16();
        if resp.status().is_success() || status == 404 || status == 410 {
            Ok(())
        } else {
            Err(BulkError::Status {
                url: redact(status_url),
                status,
                detail: None,
            })
        }
    }
}

/// An error answer, with the first OperationOutcome diagnostics when the body has one.
fn status_error(f: &super::http::Fetched) -> BulkError {
    BulkError::Status {
        url: redact(&f.url),
        status: f.status,
        detail: operation_outcome_text(&f.body),
    }
}

/// The issues of one OperationOutcome as one line (`severity code: diagnostics`; …).
pub fn operation_outcome_text(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if v.get("resourceType")?.as_str()? != "OperationOutcome" {
        return None;
    }
    let issues: Vec<String> = v
        .get("issue")?
        .as_array()?
        .iter()
        .map(|i| {
            let s = |k: &str| i.get(k).and_then(|x| x.as_str()).unwrap_or("");
            let text = i
                .pointer("/details/text")
                .and_then(|x| x.as_str())
                .unwrap_or_else(|| s("diagnostics"));
            format!("{} {}: {}", s("severity"), s("code"), text)
                .chars()
                .take(300)
                .collect()
        })
        .collect();
    (!issues.is_empty()).then(|| issues.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kickoff_urls_per_level() {
        let base = Url::parse("https://fhir.example/r4").expect("url");
        let rows: &[(BulkLevel, Option<&str>, &str)] = &[
            (
                BulkLevel::System,
                None,
                "https://fhir.example/r4/$export?_type=",
            ),
            (
                BulkLevel::Group("medicare-cohort-1".into()),
                None,
                "https://fhir.example/r4/Group/medicare-cohort-1/$export?_type=",
            ),
            (
                BulkLevel::Patient,
                Some("2026-01-02T03:04:05.000Z"),
                "https://fhir.example/r4/Patient/$export?_type=",
            ),
        ];
        for (level, since, prefix) in rows {
            let u = kickoff_url(&base, level, *since);
            assert!(u.as_str().starts_with(prefix), "{u}");
            let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
            assert_eq!(pairs[0], ("_type".into(), EXPORT_TYPES.into()));
            assert_eq!(pairs.get(1).map(|p| p.1.as_str()), *since);
        }
    }

    #[test]
    fn retry_after_is_bounded_and_the_default_backs_off() {
        assert_eq!(poll_wait(Some(Duration::from_secs(0)), 0), MIN_POLL);
        assert_eq!(
            poll_wait(Some(Duration::from_secs(5)), 9),
            Duration::from_secs(5)
        );
        assert_eq!(poll_wait(Some(Duration::from_secs(86400)), 0), MAX_POLL);
        assert_eq!(poll_wait(None, 0), Duration::from_secs(2));
        assert_eq!(poll_wait(None, 1), Duration::from_secs(4));
        assert_eq!(poll_wait(None, 30), MAX_POLL / 2);
    }

    #[test]
    fn manifests_are_checked() {
        let base = Url::parse("https://fhir.example/status/1").expect("url");
        let ok =
            br#"{"transactionTime":"2026-12-01T00:00:00Z","request":"x","requiresAccessToken":true,
            "output":[{"type":"Patient","url":"/files/1.ndjson","count":2}],
            "error":[{"type":"OperationOutcome","url":"https://fhir.example/files/e.ndjson"}]}"#;
        let m = Manifest::parse(ok, &base).expect("valid");
        assert!(m.requires_access_token);
        assert_eq!(m.output[0].kind, "Patient");
        assert_eq!(m.error.len(), 1);
        let bad: &[&[u8]] = &[
            b"[]",
            br#"{"transactionTime":"yesterday","output":[]}"#,
            br#"{"transactionTime":"2026-12-01T00:00:00Z","output":[{"type":"P","url":"file:///etc/passwd"}]}"#,
            br#"{"transactionTime":"2026-12-01T00:00:00Z","output":[{"type":"P","url":"http://fhir.example/x"}]}"#,
        ];
        for b in bad {
            assert!(
                Manifest::parse(b, &base).is_err(),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn operation_outcomes_read_as_one_line() {
        let oo = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"Patient/9 could not be read"}]}"#;
        assert_eq!(
            operation_outcome_text(oo).as_deref(),
            Some("error processing: Patient/9 could not be read")
        );
        assert_eq!(operation_outcome_text(b"{}"), None);
    }
}
