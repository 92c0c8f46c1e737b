//! The sandbox's HTTP face: the shared state, the router, and the front
//! door every request passes first (admin requests checked for a loopback
//! peer; other requests logged, then redirected or faulted as configured,
//! before routing and so before authentication, as a load balancer would).
//!
//! Handlers are thin: they read the request, ask the pure stores, and
//! shape the answer. Nothing here logs a secret, a token or a signature.

// A refusal is the response itself, built once per refused request and
// returned straight to axum: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod admin;
mod auth;
mod bulk;
mod consent;
mod discovery;
mod identity;
mod oauth1_consent;
mod oauth2;
mod reply;
mod resources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode};
use rand::RngCore;
use serde::Serialize;

use super::bulk::BulkState;
use super::config::Settings;
use super::documents::DocCache;
use super::grants::GrantStore;
use super::oauth1_tokens::{NonceStore, Oauth1Tokens};
use super::rules::{self, Faults, LoggedRequest, RequestLog};

/// Form and JSON bodies larger than this are refused (413).
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// Requests kept for `GET /admin/requests`, and the text they may hold.
const REQUEST_LOG_CAPACITY: usize = 10_000;
const REQUEST_LOG_BYTES: usize = 64 * 1024 * 1024;
/// A logged header value or query longer than this is cut (marked `…`).
const LOGGED_VALUE_LIMIT: usize = 8 * 1024;
/// Nonces remembered at most; past it requests are refused with 503
/// rather than a live nonce forgotten.
const NONCE_CAPACITY: usize = 1_000_000;
/// Patients whose documents are cached.
const DOC_CACHE_CAPACITY: usize = 20_000;

/// The peer of a connection, for the admin API's loopback check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// Counters for `GET /admin/stats`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub refreshes: AtomicU64,
    pub refresh_reuse_revocations: AtomicU64,
    pub revocations: AtomicU64,
    pub oauth1_ok: AtomicU64,
    pub oauth1_refused: AtomicU64,
    pub bearer_ok: AtomicU64,
    pub bearer_refused: AtomicU64,
    /// Authorization codes exchanged for tokens.
    pub code_exchanges: AtomicU64,
    /// Non-admin requests being answered now (from the front door to the
    /// handler's answer, any delay included), and the most there ever were
    /// at once since the start or the last `POST /admin/requests/clear`:
    /// how a test sees a client's concurrency from the provider's side.
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
}

impl Stats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request in flight until the guard is dropped (also when
    /// the client goes away and its future is cancelled).
    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }
}

/// One request in flight (`Stats::enter`).
struct InFlight<'s>(&'s Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Everything the handlers share. Each store has its own lock, held only
/// for a synchronous call, never across an await.
pub(crate) struct App {
    pub settings: Settings,
    /// Per-patient overrides and RSA key files live here.
    pub data_dir: Option<PathBuf>,
    /// Whether this server speaks https: the scheme of the URL a client
    /// signed, and whether PLAINTEXT may be accepted.
    pub tls: bool,
    /// Stands in for a missing `Host` header.
    pub local_addr: SocketAddr,
    pub grants: Mutex<GrantStore>,
    pub oauth1_tokens: Mutex<Oauth1Tokens>,
    /// Request tokens of the three-legged flow (never persisted).
    pub oauth1_pending: Mutex<super::oauth1_tokens::PendingRequests>,
    pub nonces: Mutex<NonceStore>,
    pub faults: Mutex<Faults>,
    /// Answers under these path prefixes are held back this long
    /// (`POST /admin/latency`): a slow provider, seen by every client.
    pub latency: Mutex<Vec<(String, std::time::Duration)>>,
    pub log: Mutex<RequestLog>,
    pub stats: Stats,
    pub docs: DocCache,
    /// Backend-services tokens and bulk exports.
    pub bulk: Mutex<BulkState>,
    /// Authorization codes waiting for their exchange (never persisted).
    pub codes: Mutex<super::codes::CodeStore>,
    /// Patients' identities as changed by the admin API (userinfo, ID tokens).
    pub identities: Mutex<super::identity::Identities>,
    /// Clients registered at `/oauth2/register` (RFC 7591), not persisted.
    pub registered: Mutex<Vec<super::config::ClientConfig>>,
    /// How the consent's token answers are bent for tests (broken ID
    /// tokens, a grant expiry), set by `POST /admin/consent`.
    pub consent_knobs: Mutex<consent::Knobs>,
}

pub(crate) type Shared = std::sync::Arc<App>;

/// Where a persisting sandbox keeps its tokens, in its data directory.
const STATE_FILE: &str = "state.json";

#[derive(Serialize, serde::Deserialize)]
struct SavedState {
    oauth1: Vec<super::oauth1_tokens::SavedToken>,
    grants: serde_json::Value,
}

struct LoadedState {
    oauth1: Vec<super::oauth1_tokens::SavedToken>,
    grants: GrantStore,
}

fn load_state(dir: &std::path::Path) -> Option<LoadedState> {
    let text = std::fs::read(dir.join(STATE_FILE)).ok()?;
    let saved: SavedState = serde_json::from_slice(&text).ok()?;
    Some(LoadedState {
        oauth1: saved.oauth1,
        grants: serde_json::from_value(saved.grants).ok()?,
    })
}

impl App {
    pub fn new(
        settings: Settings,
        data_dir: Option<PathBuf>,
        tls: bool,
        local_addr: SocketAddr,
    ) -> App {
        let window = settings.timestamp_window;
        let saved = if settings.persist_state {
            data_dir.as_deref().and_then(load_state)
        } else {
            None
        };
        let (grants, oauth1_tokens) = match saved {
            Some(s) => (s.grants, Oauth1Tokens::restore(s.oauth1)),
            None => (GrantStore::default(), Oauth1Tokens::default()),
        };
        App {
            settings,
            data_dir,
            tls,
            local_addr,
            grants: Mutex::new(grants),
            oauth1_tokens: Mutex::new(oauth1_tokens),
            oauth1_pending: Mutex::new(Default::default()),
            nonces: Mutex::new(NonceStore::new(window, NONCE_CAPACITY)),
            faults: Mutex::new(Faults::default()),
            latency: Mutex::new(Vec::new()),
            log: Mutex::new(RequestLog::new(REQUEST_LOG_CAPACITY, REQUEST_LOG_BYTES)),
            stats: Stats::default(),
            docs: DocCache::new(DOC_CACHE_CAPACITY),
            bulk: Mutex::new(BulkState::default()),
            codes: Mutex::new(super::codes::CodeStore::default()),
            identities: Mutex::new(super::identity::Identities::default()),
            registered: Mutex::new(Vec::new()),
            consent_knobs: Mutex::new(consent::Knobs::default()),
        }
    }

    /// Writes the issued tokens and grants to `DIR/state.json` when the
    /// configuration asks for it (atomically: a temporary file renamed).
    pub fn persist(&self) {
        if !self.settings.persist_state {
            return;
        }
        let Some(dir) = &self.data_dir else { return };
        let state = SavedState {
            oauth1: lock(&self.oauth1_tokens).save(),
            grants: serde_json::to_value(&*lock(&self.grants)).unwrap_or_default(),
        };
        let Ok(text) = serde_json::to_vec(&state) else {
            return;
        };
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let written =
            std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, dir.join(STATE_FILE)));
        if let Err(e) = written {
            tracing::warn!(error = %e, "the sandbox cannot save its state");
        }
    }

    /// The scheme clients use to reach this server.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// What links advertise: `base_url`, else scheme and `Host`.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        match &self.settings.base_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("{}://{}", self.scheme(), self.host(headers)),
        }
    }

    /// The `Host` header when it is a plain authority, else the local address.
    pub fn host(&self, headers: &HeaderMap) -> String {
        headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| is_authority(h))
            .map_or_else(|| self.local_addr.to_string(), str::to_string)
    }
}

/// A host and optional port, nothing else (no user info, path or spaces).
fn is_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

/// Locks a store; a panic elsewhere while holding it does not make the
/// data unusable for a test server, so poisoning is ignored.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// UTC epoch seconds.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh unguessable token: 256 random bits, base64url.
pub(crate) fn mint() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The whole application.
pub(crate) fn router(app: Shared) -> Router {
    Router::new()
        .route("/ccr/{patient}", get(resources::ccr))
        .route("/ccda/{patient}", get(resources::ccda))
        .route("/fhir/{kind}", get(resources::fhir))
        .route("/fhir/$export", get(bulk::kickoff_system))
        .route("/fhir/Patient/$export", get(bulk::kickoff_patient))
        .route("/fhir/Group/{id}/$export", get(bulk::kickoff_group))
        .route("/bulk/status/{id}", get(bulk::status).delete(bulk::delete))
        .route("/bulk/files/{id}/{name}", get(bulk::file))
        .route("/fhir/{kind}/{id}", get(resources::read))
        .route(
            "/.well-known/smart-configuration",
            get(resources::smart_configuration),
        )
        .route(
            "/fhir/.well-known/smart-configuration",
            get(resources::smart_configuration),
        )
        .route("/oauth2/authorize", get(consent::authorize))
        .route(
            "/fhir/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/oauth2/register", post(discovery::register))
        .route(
            "/oauth1/request_token",
            get(oauth1_consent::request_token).post(oauth1_consent::request_token),
        )
        .route("/oauth1/authorize", get(oauth1_consent::authorize))
        .route(
            "/oauth1/access_token",
            get(oauth1_consent::access_token).post(oauth1_consent::access_token),
        )
        .route("/oauth2/token", post(oauth2::token))
        .route("/oauth2/revoke", post(oauth2::revoke))
        .route("/oauth2/introspect", post(oauth2::introspect))
        .route("/oauth2/userinfo", get(identity::userinfo))
        .route("/oauth2/jwks", get(identity::jwks))
        .route("/admin/identities", post(identity::admin_patch))
        .route("/admin/consent", post(consent::admin_knobs))
        .route("/admin/oauth1/tokens", post(admin::oauth1_token))
        .route("/admin/oauth2/grants", post(admin::oauth2_grant))
        .route("/admin/oauth2/registrations", get(discovery::registrations))
        .route("/admin/faults", post(admin::add_fault))
        .route("/admin/faults/clear", post(admin::clear_faults))
        .route("/admin/latency", post(admin::set_latency))
        .route("/admin/requests", get(admin::requests))
        .route("/admin/requests/clear", post(admin::clear_requests))
        .route("/admin/stats", get(admin::stats))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(app.clone(), front_door))
        .with_state(app)
}

async fn not_found() -> Response {
    reply::text(StatusCode::NOT_FOUND, "no such resource\n")
}

/// Runs before routing: see the module documentation.
async fn front_door(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/admin" || path.starts_with("/admin/") {
        if !peer.0.ip().is_loopback() {
            return reply::text(
                StatusCode::FORBIDDEN,
                "the admin API answers loopback peers only\n",
            );
        }
        return next.run(request).await;
    }
    lock(&app.log).push(logged(&request));
    let _in_flight = app.stats.enter();
    let delay = lock(&app.latency)
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix.as_str()))
        .map(|(_, d)| *d);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let query = request.uri().query();
    if let Some((status, location)) = rules::redirect(&app.settings.redirects, path, query) {
        return reply::redirect(status, &location);
    }
    let fault = lock(&app.faults).take(path);
    if let Some(fault) = fault {
        return reply::fault(&fault);
    }
    next.run(request).await
}

fn logged(request: &Request) -> LoggedRequest {
    let mut headers = serde_json::Map::new();
    for (name, value) in request.headers() {
        let value = cut(&String::from_utf8_lossy(value.as_bytes()));
        match headers.get_mut(name.as_str()) {
            Some(serde_json::Value::String(earlier)) => {
                earlier.push_str(", ");
                earlier.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), serde_json::Value::String(value));
            }
        }
    }
    LoggedRequest {
        method: request.method().as_str().to_string(),
        path: cut(request.uri().path()),
        query: request.uri().query().map(cut),
        headers,
    }
}

fn cut(s: &str) -> String {
    if s.len() <= LOGGED_VALUE_LIMIT {
        return s.to_string();
    }
    let mut end = LOGGED_VALUE_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Counters as JSON.
#[derive(Serialize)]
pub(crate) struct StatsOut {
    refreshes: u64,
    refresh_reuse_revocations: u64,
    revocations: u64,
    oauth1_ok: u64,
    oauth1_refused: u64,
    bearer_ok: u64,
    bearer_refused: u64,
    code_exchanges: u64,
    in_flight: u64,
    max_in_flight: u64,
}

impl From<&Stats> for StatsOut {
    fn from(s: &Stats) -> StatsOut {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsOut {
            refreshes: get(&s.refreshes),
            refresh_reuse_revocations: get(&s.refresh_reuse_revocations),
            revocations: get(&s.revocations),
            oauth1_ok: get(&s.oauth1_ok),
            oauth1_refused: get(&s.oauth1_refused),
            bearer_ok: get(&s.bearer_ok),
            bearer_refused: get(&s.bearer_refused),
            code_exchanges: get(&s.code_exchanges),
            in_flight: get(&s.in_flight),
            max_in_flight: get(&s.max_in_flight),
        }
    }
}
