//! `rxsync serve`: the clinician review web application on its own.
//!
//! The first line on stdout is the URL it listens on (so a script or a test
//! that asked for port 0 learns the port); it runs until SIGINT or SIGTERM,
//! letting requests in flight finish.

use super::context::{Global, runtime};
use super::{CliResult, Failure, usage};
use anyhow::{Context as _, anyhow};
use rxsync::web::{self, AppState};
use std::io::Write as _;

/// Serve the clinician review web application (pages and JSON API)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: [review] listen, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

pub fn run(global: &Global, args: Args) -> CliResult {
    let ctx = global.open()?;
    let mut review = ctx.config.review.clone();
    if let Some(text) = &args.listen {
        let addr =
            rxsync::config::parse_listen(text).map_err(|e| usage(format!("--listen: {e}")))?;
        review = review
            .with_listen(addr)
            .map_err(|e| usage(format!("--listen: {e}")))?;
    }
    // The state opens its own connections; this one is not needed.
    drop(ctx.store);
    let jwks = rxsync::fetch::backend::client_jwks(&ctx.config.providers).map_err(usage)?;
    let mut state = AppState::new(&ctx.config.database_path, &review)
        .map_err(|e| Failure::Usage(e.into()))?
        .with_jwks(jwks);
    // With the vault key (never created here), the admin page's revoke
    // tells the provider as `link revoke` does.
    let key_env = std::env::var("RXSYNC_KEY").ok();
    let key_file = ctx.config.key_file();
    if key_env.is_some() || key_file.exists() {
        let (key, _) = rxsync::vault::VaultKey::load(key_env.as_deref(), &key_file)
            .map_err(|e| Failure::Failed(e.into()))?;
        let env: rxsync::pull::EnvLookup = std::sync::Arc::new(|k: &str| std::env::var(k).ok());
        let puller = rxsync::pull::Puller::new(
            std::sync::Arc::new(ctx.config.clone()),
            std::sync::Arc::new(key),
            env,
        )
        .map_err(|e| Failure::Failed(e.into()))?;
        state = state.with_revoker(std::sync::Arc::new(puller));
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(review.listen)
            .await
            .with_context(|| format!("cannot listen on {}", review.listen))?;
        let bound = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let scheme = if state.tls() { "https" } else { "http" };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{scheme}://{bound}/")?;
        out.flush()?;
        drop(out);
        tracing::info!(%bound, "review server listening");
        web::serve(listener, state, shutdown_signal())
            .await
            .map_err(|e| anyhow!("the review server stopped: {e}"))
    })?;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
