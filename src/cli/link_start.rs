//! `rxsync link start`: a consent from the terminal (OAuth 2.0, or the
//! OAuth 1.0a three-legged flow for an oauth1 provider). The provider's
//! loopback `redirect_uri` is bound first (so the URL is never printed for a
//! callback nobody can receive), the authorization URL goes alone on the
//! first line of stdout, and the one callback on the redirect path is
//! handed to `consent::complete`. Whatever goes wrong after the flow is
//! made ends it (`consent::abandon`), so it can never be taken later.

use super::context::{Global, runtime};
use super::link::{configured, print_link};
use super::output::Format;
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::config::Provider;
use rxsync::consent::{self, ConsentClient, ConsentError, Linked, loopback};
use rxsync::domain::PatientId;
use rxsync::store::Writer;
use rxsync::vault::VaultKey;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

pub fn run(
    global: &Global,
    patient: &str,
    provider_id: &str,
    timeout: u64,
    format: Format,
) -> CliResult {
    let patient = PatientId::parse(patient).map_err(|e| usage(format!("--patient: {e}")))?;
    if timeout == 0 {
        return Err(usage("--timeout must be at least 1 second"));
    }
    let ctx = global.open()?;
    let file = ctx
        .config
        .file
        .as_ref()
        .map_or("the defaults".to_string(), |f| f.display().to_string());
    let provider = configured(&ctx.config, provider_id)?;
    let oauth1 = matches!(provider.auth, rxsync::config::ProviderAuth::Oauth1(_));
    let redirect = if oauth1 {
        let (_, settings) = consent::oauth1::oauth1_consent_settings(provider)
            .map_err(|e| usage(format!("{e} (in {file})")))?;
        settings.redirect_uri.clone()
    } else {
        let (settings, _) =
            consent::consent_settings(provider).map_err(|e| usage(format!("{e} (in {file})")))?;
        settings.redirect_uri.clone()
    };
    let redirect = redirect.ok_or_else(|| {
        usage(format!(
            "provider {provider_id}: auth.redirect_uri is missing in {file} (link start listens on a loopback redirect URI such as http://127.0.0.1:8765/callback)"
        ))
    })?;
    loopback::loopback_target(&redirect)
        .map_err(|e| usage(format!("provider {provider_id}: auth.{e} (in {file})")))?;
    let key = Arc::new(ctx.vault_key()?);
    let client = rxsync::fetch::http::HttpClient::for_provider(provider)
        .map_err(|e| Failure::Failed(e.into()))?;
    let provider = provider.clone();
    let store = ctx.store;
    if store.patient(&patient)?.is_none() {
        return Err(Failure::Failed(anyhow!(
            "patient {patient} does not exist (add it: rxsync patient add --id {patient}); nothing stored"
        )));
    }
    let writer = Writer::start(store)?;
    let rt = runtime()?;
    let linked = rt.block_on(async {
        let linked = async {
            // OAuth 2.0: the client and the authorization endpoint,
            // configured or else discovered (OAuth 1.0a has neither).
            let resolved = if oauth1 {
                None
            } else {
                let env = |k: &str| std::env::var(k).ok();
                Some(consent::resolve(&writer, &key, &client, &env, &provider).await?)
            };
            Consent {
                writer: &writer,
                key: &key,
                provider: &provider,
                resolved: resolved.as_ref(),
                http: client.inner(),
                redirect: &redirect,
            }
            .run(&patient, Duration::from_secs(timeout))
            .await
        }
        .await;
        writer.close().await;
        linked
    });
    let linked = linked.map_err(|e| Failure::Failed(anyhow!("{e:#}; nothing stored")))?;
    let ctx = global.open_existing()?;
    print_link(&ctx.store, linked.link, linked.relinked, format)
}

/// What one consent over the loopback redirect works with.
struct Consent<'a> {
    writer: &'a Writer,
    key: &'a Arc<VaultKey>,
    provider: &'a Provider,
    /// OAuth 2.0: the client and authorization endpoint (configured, else
    /// discovered); None for OAuth 1.0a.
    resolved: Option<&'a ConsentClient>,
    /// The provider's client (no redirects followed) for the token endpoint.
    http: &'a reqwest::Client,
    redirect: &'a Url,
}

impl Consent<'_> {
    /// Listen, start the flow, print its URL, wait for the callback, complete.
    async fn run(&self, patient: &PatientId, timeout: Duration) -> anyhow::Result<Linked> {
        let listener = loopback::Listener::bind(self.redirect).await?;
        let Some(resolved) = self.resolved else {
            return self.run_oauth1(&listener, patient, timeout).await;
        };
        let started = consent::begin(
            self.writer,
            self.key,
            self.provider,
            resolved,
            patient,
            self.redirect,
            "cli",
        )
        .await?;
        print_first_line(&started.url)?;
        let (query, responder) = self.wait(&listener, &started.flow, timeout).await?;
        let done = consent::complete(
            self.writer,
            self.key,
            self.provider,
            resolved,
            self.http,
            &query,
            "cli",
        )
        .await;
        match &done {
            Ok(_) => {
                responder
                    .answer(true, "rxsync has linked your account.")
                    .await
            }
            Err(e) => responder.answer(false, &e.to_string()).await,
        }
        // A callback that named no flow of ours leaves ours waiting: end
        // it, since this command stops listening now.
        if let Err(ConsentError::WrongState | ConsentError::NoState) = &done {
            let why = "a callback without our state arrived";
            consent::abandon(self.writer, &started.flow, why, "cli").await?;
        }
        Ok(done?)
    }

    /// The OAuth 1.0a three-legged flow: request token, authorize URL,
    /// callback with the verifier, access token.
    async fn run_oauth1(
        &self,
        listener: &loopback::Listener,
        patient: &PatientId,
        timeout: Duration,
    ) -> anyhow::Result<Linked> {
        let env = |k: &str| std::env::var(k).ok();
        let started = consent::oauth1::begin(
            self.writer,
            self.key,
            self.provider,
            patient,
            self.http,
            &env,
            self.redirect,
            "cli",
        )
        .await?;
        print_first_line(&started.url)?;
        let flow = started.flow.clone();
        let (query, responder) = self.wait(listener, &flow, timeout).await?;
        let done = consent::oauth1::complete(
            self.writer,
            self.key,
            self.provider,
            self.http,
            &env,
            started,
            &query,
            "cli",
        )
        .await;
        match &done {
            Ok(_) => {
                responder
                    .answer(true, "rxsync has linked your account.")
                    .await
            }
            Err(e) => responder.answer(false, &e.to_string()).await,
        }
        Ok(done?)
    }

    /// Waits for the one callback; a timeout or a listener failure ends the flow.
    async fn wait(
        &self,
        listener: &loopback::Listener,
        flow: &str,
        timeout: Duration,
    ) -> anyhow::Result<(String, loopback::Responder)> {
        match tokio::time::timeout(timeout, listener.callback()).await {
            Ok(Ok(got)) => Ok(got),
            Ok(Err(e)) => {
                consent::abandon(self.writer, flow, &e.to_string(), "cli").await?;
                Err(e.into())
            }
            Err(_) => {
                let why = format!("no callback within {} s", timeout.as_secs());
                consent::abandon(self.writer, flow, &why, "cli").await?;
                Err(anyhow!(
                    "timed out: the provider did not redirect back to {} within {} s",
                    rxsync::fetch::auth::redact(self.redirect),
                    timeout.as_secs()
                ))
            }
        }
    }
}

/// The URL alone on the first line, flushed: a script or a test reads it
/// and opens it while we wait.
fn print_first_line(url: &Url) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{url}")
        .and_then(|_| out.flush())
        .map_err(|e| anyhow!("cannot write to stdout: {e}"))
}
