//! The sandbox provider: a loopback OAuth service provider with real
//! protocol behaviour, for the integration tests, the benchmark and `rxsync
//! demo`. It serves CCR documents and FHIR medication searches behind OAuth
//! 1.0a (verified by `fetch::oauth1::verify`) or OAuth 2.0 bearer tokens
//! (refresh with rotation and reuse detection, revocation, introspection),
//! applies redirect rules and injected faults before routing, and records
//! every request it received. Consent is given through an admin API that
//! answers loopback peers only.
//!
//! - `config`: `sandbox.toml` (raw, then resolved into `Settings`);
//! - `catalog`, `generate`, `documents`: the drugs, the per-patient
//!   documents (generated or from the data directory), FHIR paging;
//! - `grants`, `oauth1_tokens`, `rules`: the pure stores (tokens, nonces,
//!   redirects, faults, the request log);
//! - `http`: the axum router over them; `tls`: https.
//!
//! What it must never do: log or print a secret, a token or a signature;
//! answer the admin API to a remote peer; read a file outside the data
//! directory (patient ids are validated before they name a file); hold a
//! lock across an await.

mod bulk;
mod catalog;
mod codes;
mod config;
mod documents;
mod generate;
mod grants;
mod http;
mod identity;
mod oauth1_tokens;
mod rules;
mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::{
    AllowedPlacement, CONFIG_FILE, ClientConfig, ConsumerConfig, DEMO_RSA_PRIVATE_KEY,
    DEMO_RSA_PUBLIC_KEY, RedirectRule, SandboxConfig,
};
pub use tls::server_config as tls_server_config;

/// Why the sandbox could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// `sandbox.toml` exists but cannot be read.
    #[error("cannot read sandbox configuration {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Bad TOML, an unknown key or a wrong type (toml's message names the key).
    #[error("sandbox configuration {path}: {message}")]
    InvalidConfig { path: PathBuf, message: String },
    /// A value that parses but cannot be used.
    #[error("sandbox configuration {origin}: {key} {problem}")]
    ConfigValue {
        origin: String,
        key: String,
        problem: String,
    },
    /// The TLS certificate or key cannot be used.
    #[error("sandbox TLS: {0}")]
    Tls(String),
    /// The listener failed.
    #[error("sandbox server: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SandboxConfig,
    data_dir: Option<PathBuf>,
) -> Result<(), SandboxError> {
    serve_with_shutdown(listener, config, data_dir, std::future::pending()).await
}

/// Serves plain http on `listener` until `shutdown` completes, then
/// finishes the requests in flight and returns.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    config: SandboxConfig,
    data_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    let app = build_app(&config, data_dir, false, listener.local_addr()?)?;
    let service = http::router(app).into_make_service_with_connect_info::<http::Peer>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Serves https on `listener` (see `tls_server_config`) until `shutdown`
/// completes. OAuth 1.0a PLAINTEXT is accepted only here.
pub async fn serve_tls_with_shutdown(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    config: SandboxConfig,
    data_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    let app = build_app(&config, data_dir, true, listener.local_addr()?)?;
    let listener = tls::TlsListener::new(listener, tls)?;
    let service = http::router(app).into_make_service_with_connect_info::<http::Peer>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

fn build_app(
    config: &SandboxConfig,
    data_dir: Option<PathBuf>,
    tls: bool,
    local_addr: std::net::SocketAddr,
) -> Result<http::Shared, SandboxError> {
    let origin = data_dir.as_ref().map_or_else(
        || "defaults".to_string(),
        |d| d.join(CONFIG_FILE).display().to_string(),
    );
    let settings = config::resolve(config, data_dir.as_deref(), &origin)?;
    Ok(Arc::new(http::App::new(
        settings, data_dir, tls, local_addr,
    )))
}
