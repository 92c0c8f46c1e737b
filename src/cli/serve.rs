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
    let jwks = rxsync::fetch::backend::client_jwks(ctx.config.oauth2_providers()).map_err(usage)?;
    let mut state = AppState::new(&ctx.database, &review)
        .map_err(|e| Failure::Usage(e.into()))?
        .with_jwks(jwks);
    // With a vault key (never created here unless the app links accounts),
    // the admin page's revoke tells the provider as `link revoke` does; with
    // a public URL the app also links accounts in the browser. Both write
    // through one writer on this process's one extra connection; without
    // either, that connection is not needed.
    let has_key = std::env::var("RXSYNC_KEY").is_ok() || ctx.config.key_file().exists();
    let public = review.public_url.clone();
    if public.is_some() || has_key {
        let (puller, store) = ctx.puller()?;
        let puller = std::sync::Arc::new(puller);
        let writer = rxsync::store::Writer::start(store)?;
        state = state.with_revoker(std::sync::Arc::clone(&puller), writer.clone());
        if let Some(public) = public {
            state = state.with_linking(public, puller, writer);
        }
    } else {
        drop(ctx.store);
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
