//! GET with our own redirect loop, retries and a bounded body.
//!
//! The reqwest client follows no redirect and sends no `Referer` (reqwest's
//! own policy would forward a stale signature on same-origin hops, and its
//! `Referer` leaks a query-placed credential). Each hop is decided here:
//! 301/302/303/307/308 with a `Location` resolved against the current URL;
//! credentials only for the provider's own and trusted origins, applied anew
//! (a fresh OAuth 1.0a signature) for every request sent; never from https
//! down to http; a bounded number of hops; a loop named as a loop. Every
//! request sent is one entry of the trail, its URL without secrets.

use super::auth::{Anonymous, Credential, redact};
use super::fhir::{Capabilities, CapabilityCache};
use super::limit::RateGate;
use super::redact::Secrets;
use super::settings::{Endpoint, FetchLimits};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::{Origin, Url};

/// One request sent, as recorded in a sync's HTTP trail. Never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    pub url: String,
    pub status: Option<u16>,
    /// Whether credentials went with the request.
    pub credentials: bool,
    pub attempt: u32,
    pub ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// A final (non-redirect) response.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub url: Url,
    /// The media type without parameters, lower-cased.
    pub media_type: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Permanent redirects within the provider's origins: (from, to, status).
    pub moves: Vec<(String, String, u16)>,
    /// Redirect hops followed.
    pub hops: u32,
    /// Whether the final request carried credentials (false after a hop to
    /// an origin that may not receive them).
    pub credentials: bool,
}

impl Fetched {
    /// The redirect facts of `self` (a followed head) with the response of `read`.
    fn with(self, read: Fetched) -> Fetched {
        Fetched {
            hops: self.hops,
            moves: self.moves,
            url: self.url,
            credentials: self.credentials,
            ..read
        }
    }
}

/// A body streamed to a file by `HttpClient::download`.
#[derive(Debug)]
pub enum Downloaded {
    /// A 2xx: the body is in the file, this many bytes.
    Saved { bytes: u64, credentials: bool },
    /// Any other final status: its (bounded) body, nothing written.
    Refused(Box<Fetched>),
}

/// Why a GET failed. URLs are shown without secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url}: no answer within {secs} s ({what})")]
    Timeout {
        url: String,
        what: &'static str,
        secs: u64,
    },
    #[error("{url}: more than max_redirects = {max} redirects")]
    TooManyRedirects { url: String, max: u32 },
    #[error("{url}: redirect loop (this URL was already visited)")]
    RedirectLoop { url: String },
    #[error("{from}: refused a redirect from https down to http ({to})")]
    Downgrade { from: String, to: String },
    #[error("{url}: {status} redirect without a usable Location ({detail})")]
    BadLocation {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url}: the body is over max_document_bytes = {limit}")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: the body was cut off ({detail})")]
    Truncated { url: String, detail: String },
    #[error(
        "{url}: the provider answered {status} and asks to retry after {after_secs} s (max_retry_after = {cap_secs} s; retries used up or the wait too long); try again later"
    )]
    RetryLater {
        url: String,
        status: u16,
        after_secs: u64,
        cap_secs: u64,
    },
    #[error("cannot sign the request for {url}: {detail}")]
    Credential { url: String, detail: String },
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

impl FetchError {
    /// For `RetryLater`: how long the provider asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::RetryLater { after_secs, .. } => Some(Duration::from_secs(*after_secs)),
            _ => None,
        }
    }
}

/// Error bodies (401, 404, …) are read up to this many bytes, for the
/// provider's explanation.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// One provider's HTTP client.
pub struct HttpClient {
    client: reqwest::Client,
    limits: FetchLimits,
    trusted: Vec<Origin>,
    /// The provider's request budget, shared by all its syncs in the process.
    rate: Option<RateGate>,
    /// The provider's CapabilityStatement (FHIR), read once and kept a while.
    capabilities: CapabilityCache,
}

impl HttpClient {
    /// A client for a provider: its timeouts, its CA file, no redirects, no Referer.
    pub fn for_provider<'a>(p: impl Into<Endpoint<'a>>) -> Result<HttpClient, FetchError> {
        let p = p.into();
        Self::new(p.limits.clone(), p.trusted_origins.to_vec(), p.ca_file)
    }

    /// A client with these limits, trusting `trusted` origins with
    /// credentials (none for anonymous reads such as discovery).
    pub fn new(
        limits: FetchLimits,
        trusted: Vec<Origin>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<HttpClient, FetchError> {
        install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.read_timeout)
            .user_agent(concat!("rxsync/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64);
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| FetchError::Client(format!("{}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| FetchError::Client(format!("{}: {e}", ca.display())))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b.build().map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(HttpClient {
            client,
            rate: limits.rate.map(RateGate::new),
            limits,
            trusted,
            capabilities: CapabilityCache::default(),
        })
    }

    /// The provider's CapabilityStatement (`GET {base}/metadata`, without
    /// credentials: FHIR servers publish it), read on first use and kept
    /// for a bounded time. A failed or unreadable read announces nothing.
    pub async fn capabilities(&self, base: &Url, trail: &mut Vec<Hop>) -> Arc<Capabilities> {
        self.capabilities
            .get_or_read(|| async {
                let url = super::fhir::resource_url(base, "metadata");
                let f = self
                    .get(
                        &url,
                        &Anonymous,
                        "application/fhir+json, application/json;q=0.9",
                        trail,
                    )
                    .await
                    .ok()?;
                (200..300)
                    .contains(&f.status)
                    .then(|| Capabilities::parse(&f.body))
            })
            .await
    }

    /// The provider's limits.
    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// Whether credentials may go to `url`'s origin.
    pub fn trusts(&self, url: &Url) -> bool {
        self.trusted.contains(&url.origin())
    }

    /// The reqwest client (for token endpoint calls).
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// GETs `start`, following redirects, with `cred` on every request to a
    /// trusted origin. Returns the final response (any status); redirects,
    /// retries, limits and transport failures are decided here.
    pub async fn get(
        &self,
        start: &Url,
        cred: &dyn Credential,
        accept: &str,
        trail: &mut Vec<Hop>,
    ) -> Result<Fetched, FetchError> {
        self.get_with(start, cred, accept, &HeaderMap::new(), trail)
            .await
    }

    /// `get` with extra request headers (FHIR Bulk Data's `Prefer: respond-async`).
    pub async fn get_with(
        &self,
        start: &Url,
        cred: &dyn Credential,
        accept: &str,
        extra: &HeaderMap,
        trail: &mut Vec<Hop>,
    ) -> Result<Fetched, FetchError> {
        let total = self.limits.timeout;
        let fetch = async {
            let (resp, f) = self.follow(start, cred, accept, extra, trail).await?;
            let read = self.read_body(resp, &f.url, trail).await?;
            Ok(f.with(read))
        };
        match tokio::time::timeout(total, fetch).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: redact(start),
                what: "timeout, the whole request",
                secs: total.as_secs(),
            }),
        }
    }

    /// Follows redirects from `start` to a final response, whose body is
    /// left unread; the `Fetched` returned has an empty body.
    async fn follow(
        &self,
        start: &Url,
        cred: &dyn Credential,
        accept: &str,
        extra: &HeaderMap,
        trail: &mut Vec<Hop>,
    ) -> Result<(reqwest::Response, Fetched), FetchError> {
        let mut url = cred.strip(start);
        let mut visited = vec![url.clone()];
        let mut moves = Vec::new();
        let mut hops = 0u32;
        // Once a hop leaves the trusted origins, a later hop back does not
        // bring the credentials back: the untrusted server chose that URL.
        let mut may_credential = true;
        loop {
            let attach = may_credential && self.trusts(&url);
            let use_cred: &dyn Credential = if attach { cred } else { &Anonymous };
            let resp = self
                .send_with_retries(&url, use_cred, accept, extra, trail)
                .await?;
            let status = resp.status();
            if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                let head = Fetched {
                    status: status.as_u16(),
                    url,
                    media_type: None,
                    headers: HeaderMap::new(),
                    body: Vec::new(),
                    hops,
                    moves,
                    credentials: attach,
                };
                return Ok((resp, head));
            }
            let location = resp
                .headers()
                .get(header::LOCATION)
                .ok_or("no Location header".to_string())
                .and_then(|v| v.to_str().map_err(|_| "Location is not ASCII".to_string()))
                .and_then(|l| {
                    url.join(l)
                        .map_err(|e| format!("Location is not a URL: {e}"))
                })
                .map_err(|detail| FetchError::BadLocation {
                    url: redact(&url),
                    status: status.as_u16(),
                    detail,
                })?;
            // Our own credential parameters never travel in a Location.
            let next = cred.strip(&location);
            if let Some(h) = trail.last_mut() {
                h.location = Some(scrub(cred, &redact(&next)));
            }
            if !matches!(next.scheme(), "http" | "https") {
                return Err(FetchError::BadLocation {
                    url: redact(&url),
                    status: status.as_u16(),
                    detail: format!("Location scheme {} is not http(s)", next.scheme()),
                });
            }
            if url.scheme() == "https" && next.scheme() == "http" {
                return Err(FetchError::Downgrade {
                    from: redact(&url),
                    to: redact(&next),
                });
            }
            hops += 1;
            if hops > self.limits.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    url: redact(start),
                    max: self.limits.max_redirects,
                });
            }
            if visited.contains(&next) {
                return Err(FetchError::RedirectLoop { url: redact(&next) });
            }
            if matches!(status.as_u16(), 301 | 308)
                && may_credential
                && url.origin() == next.origin()
                && self.trusts(&next)
            {
                moves.push((redact(&url), redact(&next), status.as_u16()));
            }
            if !self.trusts(&next) {
                may_credential = false;
            }
            visited.push(next.clone());
            url = next;
        }
    }

    /// Sends one GET, retrying connection failures and 5xx with exponential
    /// backoff and jitter, and 429/503 after their `Retry-After` (up to the cap).
    async fn send_with_retries(
        &self,
        url: &Url,
        cred: &dyn Credential,
        accept: &str,
        extra: &HeaderMap,
        trail: &mut Vec<Hop>,
    ) -> Result<reqwest::Response, FetchError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // The budget is taken before signing, so that an OAuth 1.0a
            // timestamp is not already old when the request leaves.
            if let Some(gate) = &self.rate {
                gate.admit().await;
            }
            let (request_url, auth) = cred.apply(url).map_err(|detail| FetchError::Credential {
                url: redact(url),
                detail,
            })?;
            let credentials = auth.is_some() || cred.strip(&request_url) != request_url;
            let mut req = self
                .client
                .get(request_url)
                .header(header::ACCEPT, accept)
                .headers(extra.clone());
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let t0 = Instant::now();
            let sent = req.send().await;
            let ms = t0.elapsed().as_millis() as u64;
            let last = attempt > self.limits.retries;
            match sent {
                Err(e) => {
                    let (error, retryable) = describe(&e);
                    let error = scrub(cred, &error);
                    trail.push(Hop {
                        url: redact(url),
                        status: None,
                        credentials,
                        attempt,
                        ms,
                        location: None,
                        error: Some(error.clone()),
                        bytes: None,
                    });
                    if last || !retryable {
                        return Err(if e.is_timeout() {
                            FetchError::Timeout {
                                url: redact(url),
                                what: "connect or read timeout",
                                secs: self.limits.read_timeout.as_secs(),
                            }
                        } else {
                            FetchError::Connect {
                                url: redact(url),
                                detail: error,
                            }
                        });
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Ok(resp) => {
                    let status = resp.status();
                    trail.push(Hop {
                        url: redact(url),
                        status: Some(status.as_u16()),
                        credentials,
                        attempt,
                        ms,
                        location: None,
                        error: None,
                        bytes: None,
                    });
                    let retry_after = retry_after(resp.headers());
                    let asks_to_wait = matches!(status.as_u16(), 429 | 503);
                    if let (true, Some(after)) = (asks_to_wait, retry_after)
                        && after > self.limits.max_retry_after
                    {
                        return Err(FetchError::RetryLater {
                            url: redact(url),
                            status: status.as_u16(),
                            after_secs: after.as_secs(),
                            cap_secs: self.limits.max_retry_after.as_secs(),
                        });
                    }
                    let retryable = asks_to_wait
                        || matches!(
                            status,
                            StatusCode::INTERNAL_SERVER_ERROR
                                | StatusCode::BAD_GATEWAY
                                | StatusCode::GATEWAY_TIMEOUT
                        );
                    if let (true, true, Some(after)) = (last, asks_to_wait, retry_after) {
                        // Out of attempts, but the provider said when: come back then.
                        return Err(FetchError::RetryLater {
                            url: redact(url),
                            status: status.as_u16(),
                            after_secs: after.as_secs(),
                            cap_secs: self.limits.max_retry_after.as_secs(),
                        });
                    }
                    if !retryable || last {
                        return Ok(resp);
                    }
                    let wait = match (asks_to_wait, retry_after) {
                        (true, Some(after)) => after,
                        _ => backoff(attempt),
                    };
                    drop(resp);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// GETs `start` like `get`, but streams a successful body into `file`
    /// (created or truncated), refusing more than `limit` bytes. The whole
    /// request is bounded by the provider's `timeout` times four: bulk
    /// files are larger than documents, and the read timeout still bounds
    /// a stalled body.
    pub async fn download(
        &self,
        start: &Url,
        cred: &dyn Credential,
        accept: &str,
        file: &std::path::Path,
        limit: u64,
        trail: &mut Vec<Hop>,
    ) -> Result<Downloaded, FetchError> {
        let total = self.limits.timeout.saturating_mul(4);
        let fetch = async {
            let (resp, head) = self
                .follow(start, cred, accept, &HeaderMap::new(), trail)
                .await?;
            if !resp.status().is_success() {
                let read = self.read_body(resp, &head.url, trail).await?;
                return Ok(Downloaded::Refused(Box::new(head.with(read))));
            }
            let bytes = self.stream_to(resp, &head.url, file, limit, trail).await?;
            Ok(Downloaded::Saved {
                bytes,
                credentials: head.credentials,
            })
        };
        match tokio::time::timeout(total, fetch).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: redact(start),
                what: "timeout × 4, the whole download",
                secs: total.as_secs(),
            }),
        }
    }

    /// The next chunk of a body; a read timeout or a broken connection is
    /// the error either reader reports.
    async fn next_chunk(
        &self,
        resp: &mut reqwest::Response,
        url: &Url,
    ) -> Result<Option<impl std::ops::Deref<Target = [u8]> + use<>>, FetchError> {
        resp.chunk().await.map_err(|e| {
            if e.is_timeout() {
                FetchError::Timeout {
                    url: redact(url),
                    what: "read timeout, the body",
                    secs: self.limits.read_timeout.as_secs(),
                }
            } else {
                FetchError::Truncated {
                    url: redact(url),
                    detail: describe(&e).0,
                }
            }
        })
    }

    async fn stream_to(
        &self,
        mut resp: reqwest::Response,
        url: &Url,
        file: &std::path::Path,
        limit: u64,
        trail: &mut [Hop],
    ) -> Result<u64, FetchError> {
        use tokio::io::AsyncWriteExt as _;
        let too_large = || FetchError::TooLarge {
            url: redact(url),
            limit,
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let io = |e: std::io::Error| FetchError::Truncated {
            url: redact(url),
            detail: format!("cannot write {}: {e}", file.display()),
        };
        let mut out = tokio::fs::File::create(file).await.map_err(io)?;
        let mut written = 0u64;
        while let Some(chunk) = self.next_chunk(&mut resp, url).await? {
            written += chunk.len() as u64;
            if written > limit {
                return Err(too_large());
            }
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.sync_all().await.map_err(io)?;
        if let Some(h) = trail.last_mut() {
            h.bytes = Some(written);
        }
        Ok(written)
    }

    /// Reads a final response's body, streamed and cut at the limit:
    /// `max_document_bytes` for a success, a small limit for an error.
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        url: &Url,
        trail: &mut [Hop],
    ) -> Result<Fetched, FetchError> {
        let status = resp.status().as_u16();
        let success = resp.status().is_success();
        let limit = if success {
            self.limits.max_document_bytes
        } else {
            ERROR_BODY_LIMIT
        };
        let too_large = || FetchError::TooLarge {
            url: redact(url),
            limit: self.limits.max_document_bytes,
        };
        if success && resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let headers = resp.headers().clone();
        let media_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
        let capacity = resp.content_length().unwrap_or(0).min(limit) as usize;
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = self.next_chunk(&mut resp, url).await? {
            if (body.len() + chunk.len()) as u64 > limit {
                if success {
                    return Err(too_large());
                }
                let room = (limit as usize).saturating_sub(body.len());
                body.extend_from_slice(&chunk[..room.min(chunk.len())]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(h) = trail.last_mut() {
            h.bytes = Some(body.len() as u64);
        }
        Ok(Fetched {
            status,
            url: url.clone(),
            media_type,
            headers,
            body,
            moves: Vec::new(),
            hops: 0,
            credentials: false,
        })
    }
}

/// Exponential backoff with jitter: 250 ms, 500 ms, 1 s, … capped at 8 s,
/// each between half and the whole of it.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 250u64
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(5))
        .min(8000);
    let ms = rand::thread_rng().gen_range(ceiling / 2..=ceiling);
    Duration::from_millis(ms)
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

/// A transport error as words, and whether trying again may help.
fn describe(e: &reqwest::Error) -> (String, bool) {
    use std::error::Error as _;
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    // reqwest's messages include the URL, which may carry a query credential.
    if let Some(u) = e.url() {
        detail = detail.replace(u.as_str(), &redact(u));
    }
    (detail, e.is_connect() || e.is_timeout() || e.is_request())
}

/// `text` without the values of `cred` (a `Location` or a transport error
/// may echo a token under another name or encoded). The pull scrubs again
/// with every secret it holds; this covers the other users of the client.
fn scrub(cred: &dyn Credential, text: &str) -> String {
    let mut secrets = Secrets::new();
    cred.secrets(&mut secrets);
    secrets.scrub(text)
}

/// rustls needs its crypto provider chosen once per process (ring).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, "120".parse().expect("value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        h.insert(header::RETRY_AFTER, later.parse().expect("value"));
        let got = retry_after(&h).expect("date").as_secs();
        assert!((85..=90).contains(&got), "{got}");
        h.insert(header::RETRY_AFTER, "soon".parse().expect("value"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt).as_millis() as u64;
            let ceiling = (250u64 << (attempt - 1).min(5)).min(8000);
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d}");
        }
    }
}
