//! `rxsync sandbox`: runs the loopback sandbox provider until interrupted.
//! Its first line on stdout is `sandbox listening on URL`, flushed at once,
//! so that a test that asked for port 0 learns the real port.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use rxsync::sandbox::{self, SandboxConfig};

use super::{CliResult, Failure, usage};

/// Run the loopback sandbox provider: CCR and FHIR documents behind OAuth
/// 1.0a and OAuth 2.0, with an admin API for consent, faults and the request
/// log (samples/sandbox/README.md).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on, e.g. 127.0.0.1:0 (port 0: any free port)
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Data directory: sandbox.toml, ccr/PATIENT.xml, fhir/PATIENT.json
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Allow a non-loopback listen address (the admin API still answers loopback peers only)
    #[arg(long)]
    allow_remote: bool,
    /// Serve https with this PEM certificate chain
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

pub fn run(args: Args) -> CliResult {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(usage(format!(
            "refusing to listen on {}, which is not a loopback address (pass --allow-remote to mean it)",
            args.listen
        )));
    }
    let config = SandboxConfig::load(args.data.as_deref()).map_err(|e| Failure::Usage(e.into()))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(sandbox::tls_server_config(cert, key).map_err(|e| Failure::Usage(e.into()))?)
        }
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "sandbox listening on {scheme}://{addr}")
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
        drop(stdout);
        let data = args.data.clone();
        match tls {
            Some(tls) => {
                sandbox::serve_tls_with_shutdown(listener, tls, config, data, interrupted()).await?
            }
            None => sandbox::serve_with_shutdown(listener, config, data, interrupted()).await?,
        }
        Ok::<(), Failure>(())
    })
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
