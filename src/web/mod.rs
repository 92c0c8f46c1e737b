//! The clinician review web application: server-rendered HTML pages (maud,
//! which escapes every interpolated value) and a JSON API under `/api/v1`,
//! both thin shells over the same store functions `rxsync queue` uses.
//!
//! `router(state)` is what the daemon merges with its own routes (it never
//! uses `/healthz`, `/readyz` or `/metrics`); `serve(listener, state,
//! shutdown)` runs it alone, over TLS when `[review]` names a certificate.
//! Pages work without JavaScript: forms post, the server answers with a
//! redirect. Every page and API call except the login page needs a session
//! (cookie `HttpOnly; SameSite=Strict`, `Secure` over TLS) or an API token;
//! every form that changes something carries a CSRF token; admins alone
//! reach `/admin`. Store work runs in `spawn_blocking` on a small pool of
//! connections, one short transaction per action, because the daemon
//! writes the same file from its own connections.
//!
//! This module never writes SQL, never prints and never reads the process
//! environment; it never logs or returns a password, a session id or a token.

mod api;
mod auth;
mod error;
mod frame;
mod labels;
mod linking;
mod pages;
mod pretty;
mod review;
mod tls;

pub use api::ROUTES as API_ROUTES;
pub use auth::{PasswordError, hash_password, new_api_token, token_hash};
pub use error::WebError;
pub use linking::Linking;
pub use pretty::pretty_excerpt;

use crate::config::{Config, ReviewConfig};
use crate::store::{Database, Store, StoreError};
use std::net::SocketAddr;

use std::sync::{Arc, Mutex};

/// Connections kept for reuse; more are opened under load and closed after.
const POOL_SIZE: usize = 8;

/// What every handler shares: where the database is, a few open
/// connections, the review settings and the TLS configuration.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    /// The database; connections are opened on demand.
    database: Database,
    /// Idle connections (each `Store` is used by one request at a time).
    pool: Mutex<Vec<Store>>,
    /// Session lifetime and the rest of `[review]`.
    review: ReviewConfig,
    /// The server's TLS configuration when `[review]` names a certificate;
    /// it also decides whether cookies are `Secure`.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The key that signs the login form's anti-CSRF token: random per
    /// process (a form older than the server is refused, and asked again).
    login_key: [u8; 32],
    /// rxsync's public `private_key_jwt` keys (`/.well-known/jwks.json`);
    /// none: the route answers 404.
    jwks: Option<serde_json::Value>,
    /// Invitations, "Link an account" and `/oauth/callback`; none without
    /// `[review] public_url` (the routes answer 404, the buttons are not shown).
    linking: Option<Linking>,
    /// Tells providers that a link the admin page revokes is over (RFC
    /// 7009, `Puller::tell_provider`, through this writer for the discovery
    /// cache); none when the process holds no vault key: the page then says
    /// the provider was not told.
    revoker: Option<(Arc<crate::pull::Puller>, crate::store::Writer)>,
}

impl AppState {
    /// Opens (and migrates) the database once, and loads the TLS
    /// certificate and key when configured.
    pub fn new(database: &Database, review: &ReviewConfig) -> Result<AppState, WebError> {
        let store = Store::connect(database)?;
        let tls = review.tls.as_ref().map(tls::server_config).transpose()?;
        Ok(AppState {
            inner: Arc::new(Inner {
                database: database.clone(),
                pool: Mutex::new(vec![store]),
                review: review.clone(),
                tls: tls.map(Arc::new),
                login_key: rand::random(),
                jwks: None,
                linking: None,
                revoker: None,
            }),
        })
    }

    /// Serves `jwks` (`fetch::backend::client_jwks`) at `/.well-known/jwks.json`.
    pub fn with_jwks(mut self, jwks: serde_json::Value) -> AppState {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.jwks = Some(jwks);
        }
        self
    }

    /// Revokes at the provider, too, when the admin page revokes a link.
    pub fn with_revoker(
        mut self,
        puller: Arc<crate::pull::Puller>,
        writer: crate::store::Writer,
    ) -> AppState {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.revoker = Some((puller, writer));
        }
        self
    }

    /// Makes links in the browser with `puller` and `writer` (see `Linking`).
    pub fn with_linking(
        mut self,
        public: crate::config::PublicUrl,
        puller: Arc<crate::pull::Puller>,
        writer: crate::store::Writer,
    ) -> AppState {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.linking = Some(Linking {
                public,
                puller,
                writer,
            });
        }
        self
    }

    /// Who tells providers a revoked link is over (and the writer it
    /// uses), if anyone.
    pub fn revoker(&self) -> Option<(&crate::pull::Puller, &crate::store::Writer)> {
        self.inner.revoker.as_ref().map(|(p, w)| (p.as_ref(), w))
    }

    pub(crate) fn linking(&self) -> Option<&Linking> {
        self.inner.linking.as_ref()
    }

    /// The state for a resolved configuration (its SQLite file).
    pub fn from_config(config: &Config) -> Result<AppState, WebError> {
        AppState::new(
            &Database::Sqlite(config.database_path.clone()),
            &config.review,
        )
    }

    /// Whether the server speaks HTTPS (and cookies are `Secure`).
    pub fn tls(&self) -> bool {
        self.inner.tls.is_some()
    }

    pub(crate) fn review(&self) -> &ReviewConfig {
        &self.inner.review
    }

    pub(crate) fn login_key(&self) -> &[u8; 32] {
        &self.inner.login_key
    }

    /// Runs store work on the blocking pool with a pooled connection.
    pub(crate) async fn store<T, F>(&self, work: F) -> Result<T, error::AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .pool
                .lock()
                .map_err(|_| error::AppError::internal("connection pool poisoned"))?
                .pop();
            let mut store = match pooled {
                Some(s) => s,
                None => Store::connect(&inner.database)?,
            };
            let result = work(&mut store);
            if let Ok(mut pool) = inner.pool.lock()
                && pool.len() < POOL_SIZE
            {
                pool.push(store);
            }
            Ok(result?)
        })
        .await
        .map_err(|e| error::AppError::internal(format!("store task failed: {e}")))?
    }
}

/// The whole application: pages, the JSON API and the stylesheet.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/.well-known/jwks.json", axum::routing::get(jwks))
        .with_state(state.clone())
        .merge(pages::router(state.clone()))
        .nest("/api/v1", api::router(state))
        .layer(axum::middleware::map_response(pages::security_headers))
}

/// `GET /.well-known/jwks.json`: the public keys providers verify rxsync's
/// client assertions with. Public (no session): it holds no secret.
async fn jwks(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match &state.inner.jwks {
        Some(set) => (
            [(http::header::CONTENT_TYPE, "application/jwk-set+json")],
            set.to_string(),
        )
            .into_response(),
        None => (
            http::StatusCode::NOT_FOUND,
            "no private_key_jwt keys are configured\n",
        )
            .into_response(),
    }
}

/// Serves the application on `listener` until `shutdown` completes
/// (in-flight requests finish first); over TLS when the state has it.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    serve_with(listener, state, axum::Router::new(), shutdown).await
}

/// The same, with `extra` routes beside the application's (the daemon's
/// `/healthz`, `/readyz` and `/metrics`), on one server.
pub async fn serve_with<F>(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: axum::Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let tls = state.inner.tls.clone();
    let app = router(state).merge(extra);
    match tls {
        None => {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(config) => {
            axum::serve(
                tls::TlsListener::new(listener, config),
                app.into_make_service_with_connect_info::<tls::TlsPeer>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    }
}
