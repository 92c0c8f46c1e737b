//! `rxsync run [--once]`: the scheduled sync daemon.

use super::context::{Global, runtime};
use super::output::{self, Format};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::daemon::{Daemon, Summary};
use rxsync::web::AppState;
use std::net::SocketAddr;
use tokio::sync::watch;

/// Sync every active link on its schedule until SIGINT/SIGTERM, serving
/// /healthz, /readyz and /metrics. With --once: one pass over the links due
/// now, then exit (status 1 when a sync failed) — for cron or a systemd timer.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One pass over every due link, then exit
    #[arg(long)]
    once: bool,
    /// Address for the review UI and /healthz, /readyz, /metrics [default: [review] listen, 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Summary format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(global: &Global, a: Args) -> CliResult {
    let ctx = global.open()?;
    let mut review = ctx.config.review.clone();
    if let Some(text) = &a.listen {
        let addr =
            rxsync::config::parse_listen(text).map_err(|e| usage(format!("--listen: {e}")))?;
        review = review
            .with_listen(addr)
            .map_err(|e| usage(format!("--listen: {e}")))?;
    }
    let listen: SocketAddr = review.listen;
    let db = ctx.config.database_path.clone();
    let web = if a.once {
        None
    } else {
        let jwks =
            rxsync::fetch::backend::client_jwks(ctx.config.oauth2_providers()).map_err(usage)?;
        Some(
            AppState::new(&ctx.database, &review)
                .map_err(|e| Failure::Usage(e.into()))?
                .with_jwks(jwks),
        )
    };
    let providers = ctx.config.providers.clone();
    let database = ctx.database.clone();
    let normalize_options = ctx.config.normalize_options();
    let (puller, store) = ctx.puller()?;
    drop(store);
    // Secrets are read per pull; say now what will fail then — once: the
    // line is for the person or the journal reading stderr, where a log
    // event of the same would say it a second time.
    for problem in puller.check_providers() {
        eprintln!("warning: {problem}; this provider's syncs will fail until it is fixed");
    }
    let daemon = Daemon::new(puller, &database)?;
    // With `[review] public_url`, the review app links accounts in the
    // browser through the daemon's own puller and writer.
    let web = match (web, review.public_url.clone()) {
        (Some(web), Some(public)) => {
            let (puller, writer) = daemon.linking_parts();
            Some(web.with_linking(public, puller, writer))
        }
        (web, _) => web,
    };
    let rt = runtime()?;
    let signal_seen = std::sync::Arc::new(std::sync::OnceLock::new());
    let started = std::time::Instant::now();
    let summary = rt.block_on(async {
        let (stop, stopped) = watch::channel(false);
        let signalled = wait_for_signal();
        let signal = signal_seen.clone();
        tokio::spawn(async move {
            let _ = signal.set(signalled.await);
            let _ = stop.send(true);
        });
        let Some(web) = web else {
            let summary = daemon.pass(stopped).await;
            daemon.close().await;
            return Ok::<_, Failure>(summary);
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Failure::Failed(anyhow!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::Failed(anyhow!("cannot listen on {listen}: {e}")))?;
        let scheme = if web.tls() { "https" } else { "http" };
        println!(
            "rxsync run: serving {scheme}://{addr} (review UI, /healthz /readyz /metrics); Ctrl-C stops"
        );
        let server = spawn_server(listener, web, daemon.router(), stopped.clone());
        let mut exports = rxsync::daemon::exports::spawn(
            &providers,
            &database,
            &db,
            &normalize_options,
            stopped.clone(),
        );
        let summary = daemon.run(stopped).await;
        let _ = server.await;
        while exports.join_next().await.is_some() {}
        daemon.close().await;
        Ok(summary)
    })?;
    match (a.once, a.format) {
        // The daemon ran until a signal: say so, not "pass".
        (false, Format::Table) => println!(
            "rxsync run stopped on {} after {}: {}",
            signal_seen.get().copied().unwrap_or("a signal"),
            human(started.elapsed()),
            syncs_sentence(&summary)
        ),
        _ => print_summary(&summary, a.format)?,
    }
    if a.once && summary.failed() {
        return Err(Failure::Failed(anyhow!(
            "{} sync(s) did not succeed (see rxsync link list and the queue)",
            summary.failures + summary.errors
        )));
    }
    Ok(())
}

/// Serves the review UI with the daemon's routes until `stopped` turns true.
pub fn spawn_server(
    listener: tokio::net::TcpListener,
    web: AppState,
    ops: axum::Router,
    mut stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        rxsync::web::serve_with(listener, web, ops, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await
    })
}

/// SIGINT (Ctrl-C) or SIGTERM; the future's value names which. The
/// handlers are installed when this is called (not when the future is
/// first polled), so a signal that arrives right after startup is not lost
/// to the default action.
pub fn wait_for_signal() -> impl std::future::Future<Output = &'static str> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => "SIGTERM",
            _ = wait(int) => "Ctrl-C",
        }
    }
}

/// What a daemon's run did, for people: "5 sync(s) ran (5 unchanged)".
pub fn syncs_sentence(s: &Summary) -> String {
    if s.syncs() == 0 && s.abandoned == 0 {
        return "no sync ran (no link fell due)".into();
    }
    let outcomes: Vec<String> = s
        .outcomes
        .iter()
        .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
        .collect();
    format!(
        "{} sync(s) ran ({}){}",
        s.syncs(),
        outcomes.join(", "),
        if s.abandoned > 0 {
            format!(
                "; {} in flight were abandoned, writing nothing partial",
                s.abandoned
            )
        } else {
            String::new()
        }
    )
}

/// A duration for people: "45 s", "3 min 24 s", "2 h 5 min".
pub fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 if s.is_multiple_of(60) => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

pub fn print_summary(s: &Summary, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::json(s);
    }
    let parts: Vec<String> = s
        .outcomes
        .iter()
        .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
        .collect();
    println!(
        "pass: {} sync(s){}{}{}{} in {:.2} s",
        s.syncs(),
        if !parts.is_empty() {
            format!(": {}", parts.join(", "))
        } else if s.paused == 0 && s.abandoned == 0 {
            " (no link was due)".to_string()
        } else {
            String::new()
        },
        if s.paused > 0 {
            format!("; {} not started (provider paused)", s.paused)
        } else {
            String::new()
        },
        if s.abandoned > 0 {
            format!("; {} abandoned at shutdown", s.abandoned)
        } else {
            String::new()
        },
        if s.errors > 0 {
            format!("; {} database error(s)", s.errors)
        } else {
            String::new()
        },
        s.seconds
    );
    Ok(())
}
