//! The pull use case: a link → its provider's document (CCR, or every FHIR
//! search page as one bundle) → the import pipeline, with the link's
//! tokens, refreshes, moves, trail and audit.
//!
//! A pull holds the link's lease from the first read of its tokens to the
//! transaction that records its outcome, so a link is never synced twice at
//! once (and an OAuth 2.0 refresh never races another). A refreshed token
//! pair is committed before the new access token is used. A pull either
//! imports one whole document or stores no document at all: a failed page,
//! an oversized or truncated body, a refused credential all end in one
//! failed sync row, and `invalid_grant` (or a 401 just after a refresh)
//! marks the link `needs_relink` with a `link_broken` exception.
//!
//! It reads as claim → credentials → fetch → prepare → write. The
//! protocols are `fetch`'s: the FHIR paging cursor (`fetch::paging`) and
//! what each answer means (`fetch::policy::judge`); the pull acts on the
//! verdict (take the answer, refresh and commit the new pair, send again)
//! and records what happened.
//!
//! Store work goes through the store's writer (`store::Writer`) as whole
//! jobs: the claim; then the import (parsed here first, `import::prepare`)
//! or the failure, with the link's record, as one job; a refreshed token
//! pair in a transaction of its own (`Writer::run_alone`).

use crate::config::{Config, DocumentLocation, Provider, ProviderAuth};
use crate::domain::{LinkId, LinkState, PatientId, ProviderId, SyncOutcome, Trigger};
use crate::fetch::auth::{Bearer, Oauth1Signer, redact};
use crate::fetch::fhir;
use crate::fetch::http::{FetchError, Fetched, Hop, HttpClient};
use crate::fetch::oauth2;
use crate::fetch::paging::{FHIR_JSON, Gathered, Search, SearchOf, check_media_type, moved};
use crate::fetch::policy::{self, Session, Tries, Verdict};
use crate::fetch::redact::Secrets;
use crate::fetch::refusal::Refusal;
use crate::import::{self, ImportError, ImportReport, ImportRequest};
use crate::parse::DocFormat;
use crate::schedule::Schedule;
use crate::store::{
    ClaimError, ClaimedLink, FailedPull, LinkSecrets, PullRecord, RefreshTurn, Store, StoreError,
    SyncContext, Writer,
};
use crate::vault::VaultKey;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

pub mod client;
mod identity;
mod lease;
mod references;
pub mod reject;

pub use lease::LeaseCounters;
/// How long an on-demand pull waits for another sync of the same link.
const BUSY_WAIT: Duration = Duration::from_secs(120);
/// Refresh an access token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// What one pull of one link did.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub link: LinkId,
    pub patient: String,
    pub provider: ProviderId,
    /// In JSON: `imported`, `unchanged`, `failed`, `needs_relink`,
    /// `retry_later`, `held` (the remote identity does not match: a
    /// clinician decides), `busy` (another sync holds the link) or
    /// `skipped` (not active, held included).
    pub outcome: PullOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Requests sent (redirect hops and retries included).
    pub requests: usize,
    /// Redirect hops followed.
    pub redirects: u32,
    pub refreshed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportReport>,
}

impl PullReport {
    /// Whether the pull failed (busy, skipped and held links are not
    /// failures: they wait for another sync or for a person).
    pub fn failed(&self) -> bool {
        matches!(self.outcome, PullOutcome::Synced(o) if o.is_failure())
    }
}

/// What a pull came to: a sync's outcome, or no sync at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutcome {
    /// The link was synced (or its sync failed): what the sync came to.
    Synced(SyncOutcome),
    /// Another sync holds the link, or finished it a moment ago.
    Busy,
    /// The link is not active (held included): nothing was tried.
    Skipped,
}

impl PullOutcome {
    /// The name shown in output and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            PullOutcome::Synced(o) => o.as_str(),
            PullOutcome::Busy => "busy",
            PullOutcome::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for PullOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PullOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a revoked link's report says when the provider has no revocation endpoint.
const NO_REVOCATION: &str = "provider has no revocation_url: the tokens were dropped here only; ask the provider to end the grant";

/// Looks up an environment variable (secrets named by `*_secret_env`).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Pulls links. Holds one HTTP client per provider; cheap to share.
pub struct Puller {
    config: Arc<Config>,
    key: Arc<VaultKey>,
    clients: HashMap<String, Arc<HttpClient>>,
    /// Each provider's JWKS (`[providers.identity] jwt_access_token`).
    jwks: HashMap<String, Arc<crate::fetch::jwks::JwksCache>>,
    env: EnvLookup,
    holder: String,
    /// This worker's claims and takeovers (`/metrics`).
    leases: LeaseCounters,
    /// Held (read) by every token refresh in flight; shutdown takes it
    /// (write) to wait for them.
    refresh_gate: Arc<tokio::sync::RwLock<()>>,
}

/// A pull that went wrong after the link was claimed.
struct Failure {
    outcome: SyncOutcome,
    error: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn failed(error: impl Into<String>) -> Failure {
        Failure {
            outcome: SyncOutcome::Failed,
            error: error.into(),
            retry_after: None,
        }
    }
    fn relink(error: impl Into<String>) -> Failure {
        Failure {
            outcome: SyncOutcome::NeedsRelink,
            error: error.into(),
            retry_after: None,
        }
    }
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Failure {
        match r {
            Refusal::Failed(error) => Failure::failed(error),
            Refusal::Relink(error) => Failure::relink(error),
            Refusal::RetryLater { error, after } => Failure {
                outcome: SyncOutcome::RetryLater {
                    at: chrono::Utc::now() + chrono::Duration::from_std(after).unwrap_or_default(),
                },
                error,
                retry_after: Some(after),
            },
        }
    }
}

impl From<FetchError> for Failure {
    fn from(e: FetchError) -> Failure {
        Refusal::from(e).into()
    }
}

/// The requests of one pull, for the trail and the audit.
#[derive(Default)]
struct Journal {
    /// The secret values the pull holds (link tokens, refreshed tokens,
    /// client and consumer secrets): everything recorded is scrubbed by them.
    secrets: Secrets,
    trail: Vec<Hop>,
    accesses: Vec<serde_json::Value>,
    moves: Vec<(String, String, u16)>,
    redirects: u32,
    refreshed: bool,
    /// The remote identity read and judged (`[providers.identity]`).
    identity: Option<crate::store::IdentityWrite>,
}

impl Journal {
    fn access(&mut self, url: &Url, started: Instant, result: &Result<Fetched, FetchError>) {
        let ms = started.elapsed().as_millis() as u64;
        self.accesses.push(match result {
            Ok(f) => serde_json::json!({
                "url": redact(url), "final_url": redact(&f.url), "status": f.status,
                "bytes": f.body.len(), "hops": f.hops, "ms": ms,
                "outcome": if (200..300).contains(&f.status) { "ok" } else { "refused" },
            }),
            Err(e) => serde_json::json!({
                "url": redact(url), "status": null, "bytes": 0, "ms": ms,
                "outcome": "error", "error": e.to_string(),
            }),
        });
    }

    /// What the pull records, scrubbed by the secret values it holds: the
    /// HTTP trail (as JSON), the accesses and the permanent moves. A move
    /// whose URLs carried a secret is not remembered at all: the next pull
    /// would send its requests to a URL the provider built from a token.
    fn into_record(self) -> (String, Vec<serde_json::Value>, Vec<(String, String, u16)>) {
        let s = &self.secrets;
        let trail: Vec<Hop> = self
            .trail
            .into_iter()
            .map(|h| Hop {
                url: s.scrub(&h.url),
                location: h.location.map(|l| s.scrub(&l)),
                error: h.error.map(|e| s.scrub(&e)),
                ..h
            })
            .collect();
        let accesses = self.accesses.iter().map(|a| s.scrub_json(a)).collect();
        let moves = self
            .moves
            .into_iter()
            .filter(|(from, to, _)| !s.carried_by(from) && !s.carried_by(to))
            .collect();
        let trail = serde_json::to_string(&trail).unwrap_or_else(|_| "[]".into());
        (trail, accesses, moves)
    }
}

/// A pulled document, ready to import.
struct Pulled {
    bytes: Vec<u8>,
    format: Option<DocFormat>,
    origin: String,
}

/// The end of a pull, owned so that it can be handed to the writer: the
/// sync's context, its pull record set.
struct PullEnd {
    /// Scrubs the failure's text before it is stored or reported.
    secrets: Secrets,
    sync: SyncContext,
}

/// A pulled document to import, and how.
struct ToImport {
    doc: Pulled,
    max_document_bytes: u64,
    options: crate::normalize::Options,
    expected_patient: String,
}

/// How a pull ended, as stored.
enum Ended {
    Imported(ImportReport),
    Failed(Failure),
}

impl PullEnd {
    /// `f` with its text scrubbed of the pull's secret values.
    fn scrubbed(&self, f: Failure) -> Failure {
        Failure {
            error: self.secrets.scrub(&f.error),
            ..f
        }
    }

    /// The import of the pulled document, in the pull's sync.
    fn request<'a>(&'a self, to: &'a ToImport) -> ImportRequest<'a> {
        ImportRequest {
            sync: &self.sync,
            bytes: &to.doc.bytes,
            format: to.doc.format,
            keep_unreadable: true,
            max_document_bytes: to.max_document_bytes,
            options: &to.options,
            expected_patient: Some(&to.expected_patient),
        }
    }

    /// On the writer: the import of the prepared document, or the failed
    /// sync, in one job. An unreadable document is kept with its exception;
    /// any other refusal of the import is recorded as a failed sync.
    fn finish(
        mut self,
        store: &mut Store,
        ending: Result<(ToImport, import::Prepared), Failure>,
    ) -> Result<Ended, StoreError> {
        let failure = match ending {
            Err(f) => f,
            Ok((to, prepared)) => {
                let origin = &to.doc.origin;
                self.sync.origin = Some(origin.clone());
                let request = self.request(&to);
                match import::commit(store, &request, prepared) {
                    Ok(r) => return Ok(Ended::Imported(r)),
                    Err(ImportError::Unreadable { error, kept }) => {
                        let error = format!("{origin}: the document cannot be read: {error}");
                        if kept.is_some() {
                            return Ok(Ended::Failed(self.scrubbed(Failure::failed(format!(
                                "{error} (kept, with an unreadable exception; the regimen is unchanged)"
                            )))));
                        }
                        Failure::failed(error)
                    }
                    Err(ImportError::Store(e)) => return Err(e),
                    Err(e) => Failure::failed(format!("{origin}: {e}")),
                }
            }
        };
        // The one place a failure becomes stored text (last_error, the
        // failed sync, its exception and audit) and the report's error.
        let failure = self.scrubbed(failure);
        store.write_failed_pull(&FailedPull {
            sync: &self.sync,
            error: &failure.error,
            outcome: failure.outcome,
        })?;
        Ok(Ended::Failed(failure))
    }
}

/// How long a link's refresh lock lasts if its holder never gives it back
/// (killed mid-refresh): longer than a refresh exchange can take.
const REFRESH_LOCK_TTL: Duration = Duration::from_secs(120);
/// How long a sync waits for another worker's refresh of the same link.
const REFRESH_LOCK_WAIT: Duration = Duration::from_secs(60);

/// A `[sync] lease` as the store takes it.
pub fn lease_ttl(lease: std::time::Duration) -> chrono::Duration {
    lease::ttl(lease)
}

impl Puller {
    /// A puller for the configured providers. `env` looks up secrets named
    /// by `*_secret_env`.
    pub fn new(
        config: Arc<Config>,
        key: Arc<VaultKey>,
        env: EnvLookup,
    ) -> Result<Puller, FetchError> {
        let mut clients = HashMap::new();
        for p in &config.providers {
            clients.insert(
                p.id.as_str().to_string(),
                Arc::new(HttpClient::for_provider(p)?),
            );
        }
        let holder = crate::worker::lease_holder_name();
        let jwks = config
            .providers
            .iter()
            .map(|p| (p.id.as_str().to_string(), Arc::default()))
            .collect();
        Ok(Puller {
            config,
            key,
            clients,
            jwks,
            env,
            holder,
            leases: LeaseCounters::default(),
            refresh_gate: Arc::new(tokio::sync::RwLock::new(())),
        })
    }

    /// The vault key that opens (and seals) link secrets.
    pub fn key(&self) -> &Arc<VaultKey> {
        &self.key
    }

    /// Where `*_secret_env` secrets are looked up.
    pub fn env(&self) -> &EnvLookup {
        &self.env
    }

    /// The HTTP client of `provider` (no redirects followed), for a
    /// consent's code exchange beside the pulls.
    pub fn client(&self, provider: &str) -> Option<&HttpClient> {
        self.clients.get(provider).map(|c| c.as_ref())
    }

    /// Pulls one link now and records the outcome. The store work (the
    /// claim, then the import or the failure) runs on `writer`; fetching
    /// and parsing run here.
    pub async fn pull(
        &self,
        writer: &Writer,
        link_id: LinkId,
        trigger: Trigger,
        actor: &str,
    ) -> Result<PullReport, StoreError> {
        let started_at = chrono::Utc::now();
        let holder = self.holder.clone();
        let lease = lease::ttl(self.config.sync.lease);
        // A scheduled sync claims only a link that is still due (another
        // worker may have synced it since the pass read it); a sync asked
        // for now claims it whenever it is free.
        let due_only = trigger == Trigger::Schedule;
        let claimed = writer
            .run(move |s| {
                let claim = if due_only {
                    s.claim_due_link(link_id, &holder, lease)
                } else {
                    s.claim_link(link_id, &holder, lease)
                };
                match claim {
                    Ok(link) => Ok(Ok(link)),
                    Err(ClaimError::Store(e)) => Err(e),
                    Err(e) => Ok(Err((e, s.link(link_id)?))),
                }
            })
            .await?;
        let mut link = match claimed {
            Ok(l) => l,
            Err((e, link)) => {
                let outcome = match &e {
                    ClaimError::Busy { .. } | ClaimError::NoLongerDue { .. } => PullOutcome::Busy,
                    _ => PullOutcome::Skipped,
                };
                // A link that does not exist has no provider to report a
                // sync at: that is an error, not a skipped sync.
                let Some(link) = link else {
                    return Err(StoreError::NotFound {
                        what: "link",
                        id: link_id.to_string(),
                    });
                };
                return Ok(PullReport {
                    link: link_id,
                    patient: link.patient,
                    provider: link.provider,
                    outcome,
                    error: Some(e.to_string()),
                    retry_after_secs: None,
                    requests: 0,
                    redirects: 0,
                    refreshed: false,
                    import: None,
                });
            }
        };
        // Renewed while the sync runs, given back by the job that records
        // its outcome.
        let _heartbeat = self.hold_lease(writer, &link);
        // A grant that ends soon is said before the pull, whatever comes of
        // it (once per grant end: `Store::raise_link_expiring`).
        let days = self.config.sync.link_expiring_days;
        writer.run(move |s| s.raise_link_expiring(days)).await?;
        let mut journal = Journal::default();
        let fetched = self
            .fetch_document(writer, &mut link, &mut journal)
            .await
            .map(|mut doc| {
                // The origin is stored with the document.
                doc.origin = journal.secrets.scrub(&doc.origin);
                doc
            });
        let corrupt = |e: String| StoreError::Corrupt(format!("link {link_id}: {e}"));
        let patient = PatientId::parse(&link.view.patient).map_err(|e| corrupt(e.to_string()))?;
        let source = link.view.provider.as_source();
        let mut report = PullReport {
            link: link_id,
            patient: link.view.patient.clone(),
            provider: link.view.provider.clone(),
            // Set below, once the store has recorded what the sync came to.
            outcome: PullOutcome::Synced(SyncOutcome::Failed),
            error: None,
            retry_after_secs: None,
            requests: journal.trail.len(),
            redirects: journal.redirects,
            refreshed: journal.refreshed,
            import: None,
        };
        let ending = match fetched {
            Ok(doc) => {
                let provider = self.config.provider(link.view.provider.as_str());
                let max_document_bytes = provider.map_or(self.config.max_document_bytes, |p| {
                    p.limits.max_document_bytes
                });
                // Size, hash and parse here, in parallel with other syncs;
                // the writer only normalizes and writes.
                let prepared =
                    blocking(|| import::prepare(&doc.bytes, doc.format, max_document_bytes));
                match prepared {
                    Ok(prepared) => Ok((
                        ToImport {
                            max_document_bytes,
                            options: self.config.normalize_options(),
                            expected_patient: link.view.remote_patient.clone(),
                            doc,
                        },
                        prepared,
                    )),
                    Err(e) => Err(Failure::failed(format!("{}: {e}", doc.origin))),
                }
            }
            Err(f) => Err(f),
        };
        let secrets = journal.secrets.clone();
        let identity = journal.identity.take();
        let (trail, accesses, moves) = journal.into_record();
        let end = PullEnd {
            secrets,
            sync: SyncContext {
                patient,
                source,
                trigger,
                actor: actor.to_string(),
                started_at,
                // Set with the document, when one was read.
                origin: None,
                pull: Some(PullRecord {
                    link_id,
                    holder: self.holder.clone(),
                    http_trail: trail,
                    accesses,
                    moves,
                    schedule: self.schedule_of(link.view.provider.as_str()),
                    identity,
                }),
            },
        };
        let ended = writer.run(move |s| end.finish(s, ending)).await;
        match ended {
            Ok(Ended::Imported(r)) => {
                report.outcome = PullOutcome::Synced(match &r.outcome {
                    crate::store::ImportOutcome::Unchanged { .. } => SyncOutcome::Unchanged,
                    _ => SyncOutcome::Imported,
                });
                report.import = Some(r);
            }
            Ok(Ended::Failed(f)) => {
                report.outcome = PullOutcome::Synced(f.outcome);
                report.error = Some(f.error);
                report.retry_after_secs = f.retry_after.map(|d| d.as_secs());
            }
            Err(e) => {
                // Nothing was stored: give the link back for the next try.
                let holder = self.holder.clone();
                let _ = writer.run(move |s| s.release_link(link_id, &holder)).await;
                return Err(e);
            }
        }
        Ok(report)
    }

    /// Everything between claiming the link and importing: credentials,
    /// refreshes, requests.
    async fn fetch_document(
        &self,
        writer: &Writer,
        link: &mut ClaimedLink,
        journal: &mut Journal,
    ) -> Result<Pulled, Failure> {
        let provider = self
            .config
            .provider(link.view.provider.as_str())
            .ok_or_else(|| {
                Failure::failed(format!(
                    "link {} names provider {}, which is not in the configuration",
                    link.view.id, link.view.provider
                ))
            })?;
        if provider.auth.scheme() != link.view.scheme {
            return Err(Failure::failed(format!(
                "link {} holds {} tokens but provider {} is configured for {}",
                link.view.id,
                link.view.scheme,
                provider.id,
                provider.auth.scheme()
            )));
        }
        let client = self
            .clients
            .get(provider.id.as_str())
            .cloned()
            .ok_or_else(|| Failure::failed("no HTTP client for the provider"))?;
        let secrets = link
            .secrets(&self.key)
            .map_err(|e| Failure::failed(e.to_string()))?;
        let session = match secrets {
            LinkSecrets::Oauth1 {
                token,
                token_secret,
            } => Session::Oauth1(Box::new(self.oauth1_signer(
                provider,
                token,
                token_secret,
            )?)),
            LinkSecrets::Oauth2 {
                access_token,
                refresh_token,
            } => Session::Oauth2 {
                bearer: Bearer {
                    token: access_token,
                    placement: match &provider.auth {
                        ProviderAuth::Oauth2(o) => o.placement,
                        ProviderAuth::Oauth1(o) => o.placement,
                    },
                },
                refresh_token,
                refreshed: false,
            },
        };
        session.credential().secrets(&mut journal.secrets);
        if let Session::Oauth2 {
            refresh_token: Some(r),
            ..
        } = &session
        {
            journal.secrets.add(r.expose_secret());
        }
        let expiring = matches!(session, Session::Oauth2 { .. }) && self.expires_soon(link);
        let remote = link.view.remote_patient.clone();
        let mut f = Fetching {
            puller: self,
            writer: writer.clone(),
            provider,
            client,
            link,
            session,
            journal,
        };
        if expiring {
            f.refresh().await?;
        }
        // Right patient before any write: the guard runs before the document is fetched.
        if let Some(settings) = &provider.identity {
            f.check_identity(settings).await?;
        }
        match &provider.document {
            DocumentLocation::Ccr { .. } => {
                let url = provider.ccr_url(&remote).ok_or_else(|| {
                    Failure::failed(format!(
                        "provider {}: document_url does not make a URL for patient {remote}",
                        provider.id
                    ))
                })?;
                let url = moved(&f.link.moves, url);
                let doc = f.get_ok(&url, "application/xml, text/xml;q=0.9").await?;
                check_media_type(provider.kind, &doc)?;
                Ok(Pulled {
                    origin: redact(&doc.url),
                    bytes: doc.body,
                    format: None,
                })
            }
            DocumentLocation::Fhir { resources } => {
                let mut gathered = Gathered::new(provider.limits.max_document_bytes);
                for resource in resources {
                    let include = f.include(resource).await;
                    let first = provider.fhir_search_url(resource, &remote, include);
                    let of = SearchOf {
                        provider: provider.id.as_str(),
                        kind: provider.kind,
                        resource,
                        max_pages: provider.limits.max_pages,
                    };
                    let mut search = Search::new(moved(&f.link.moves, first), of);
                    while let Some(url) = search.next_url()? {
                        let page = f.get_ok(&url, FHIR_JSON).await?;
                        search.read(&page, &mut gathered, &f.client, f.session.credential())?;
                    }
                }
                f.fetch_referenced(&mut gathered).await?;
                Ok(Pulled {
                    bytes: fhir::collection(&gathered.entries),
                    format: Some(DocFormat::FhirJson),
                    origin: gathered
                        .origin
                        .unwrap_or_else(|| redact(&provider.base_url)),
                })
            }
        }
    }

    /// Reads every provider's secrets and RSA key now, so that `run` can say
    /// at start what will fail at pull time. Returns the problems.
    pub fn check_providers(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for p in &self.config.providers {
            let loaded = match &p.auth {
                // The same reading a pull does: the consumer secret and the RSA key.
                ProviderAuth::Oauth1(_) => self
                    .oauth1_signer(
                        p,
                        SecretString::from(String::new()),
                        SecretString::from(String::new()),
                    )
                    .map(|_| ())
                    .map_err(|f| f.error),
                ProviderAuth::Oauth2(o) => o
                    .client_secret
                    .load(p.id.as_str(), "auth.client_secret", &*self.env)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = loaded {
                problems.push(e);
            }
        }
        problems
    }

    /// Waits until no token refresh is in flight (their answers committed),
    /// for a shutdown that abandons syncs.
    pub async fn refreshes_settled(&self) {
        let _ = self.refresh_gate.write().await;
    }

    /// Who this puller's leases say holds a link.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The configuration it pulls with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The schedule of a provider's links (the `[sync]` defaults for an
    /// unknown provider).
    pub fn schedule_of(&self, provider: &str) -> Schedule {
        let s = &self.config.sync;
        Schedule {
            interval: self
                .config
                .provider(provider)
                .map_or(s.interval, |p| p.interval),
            jitter: s.jitter,
            backoff_base: s.backoff_base,
            backoff_max: s.backoff_max,
        }
    }

    fn expires_soon(&self, link: &ClaimedLink) -> bool {
        link.view.expires_at.is_some_and(|t| {
            t < chrono::Utc::now() + chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default()
        })
    }

    fn oauth1_signer(
        &self,
        provider: &Provider,
        token: SecretString,
        token_secret: SecretString,
    ) -> Result<Oauth1Signer, Failure> {
        let ProviderAuth::Oauth1(o) = &provider.auth else {
            return Err(Failure::failed("not an OAuth 1.0a provider"));
        };
        let credentials =
            crate::fetch::oauth1_flow::consumer_credentials(provider.id.as_str(), o, &*self.env)
                .map_err(Failure::failed)?
                // The token travels in the clear as `oauth_token`; its secret never does.
                .with_token(token.expose_secret().to_string(), token_secret);
        Ok(Oauth1Signer {
            credentials,
            method: o.signature_method,
            placement: o.placement,
            realm: o.realm.clone(),
            body_hash: o.body_hash,
            clock_skew: 0,
        })
    }

    /// Revokes a link: at the provider's RFC 7009 endpoint when one is
    /// configured (OAuth 2.0), then in the store. The link is marked revoked
    /// even when the provider cannot be reached; the report says so.
    pub async fn revoke(
        &self,
        writer: &Writer,
        link_id: LinkId,
        actor: &str,
    ) -> Result<(crate::store::LinkView, Option<String>), StoreError> {
        // Usually the link is free: claim it, so no sync starts meanwhile.
        // A link that needs re-linking (its tokens may still be live at the
        // provider) or that a sync holds is revoked all the same: its sealed
        // tokens are read without the lease.
        let holder = self.holder.clone();
        let link = writer
            .run(move |s| {
                let not_found = || StoreError::NotFound {
                    what: "link",
                    id: link_id.to_string(),
                };
                match s.claim_link(link_id, &holder, chrono::Duration::minutes(1)) {
                    Ok(link) => Ok(link),
                    Err(ClaimError::Store(e)) => Err(e),
                    Err(ClaimError::NotFound(_)) => Err(not_found()),
                    Err(_) => s.peek_link(link_id)?.ok_or_else(not_found),
                }
            })
            .await?;
        if link.view.state == LinkState::Revoked {
            return Err(crate::store::StoreError::Conflict(format!(
                "link {link_id} is already revoked"
            )));
        }
        let provider_note = Some(self.tell_provider(writer, &link).await);
        let reason = match &provider_note {
            Some(n) => format!("revoked by {actor}; {n}"),
            None => format!("revoked by {actor}"),
        };
        let actor = actor.to_string();
        let view = writer
            .run(move |s| s.revoke_link(link_id, &actor, &reason))
            .await?;
        Ok((view, provider_note))
    }

    /// Tells the provider a link's grant is over (RFC 7009, the refresh
    /// token when there is one) and says what came of it, in words for the
    /// person who removed the link. Never fails: a provider without a
    /// revocation endpoint, or one that cannot be reached, is said so.
    pub async fn tell_provider(&self, writer: &Writer, link: &ClaimedLink) -> String {
        let provider = self.config.provider(link.view.provider.as_str());
        match provider.map(|p| (p, &p.auth)) {
            Some((p, ProviderAuth::Oauth2(o)))
                if (o.revocation_url.is_some() || p.discover)
                    && self.clients.contains_key(p.id.as_str()) =>
            {
                let mut secrets = Secrets::new();
                let result = async {
                    let c = self.oauth2_client(writer, p, o, true, &mut Vec::new()).await?;
                    let Some(url) = c.revocation_url.clone() else {
                        return Ok(None);
                    };
                    let link_secrets = link.secrets(&self.key).map_err(|e| e.to_string())?;
                    let LinkSecrets::Oauth2 {
                        access_token,
                        refresh_token,
                    } = link_secrets
                    else {
                        return Err("not an OAuth 2.0 link".to_string());
                    };
                    // The provider's error may echo what it was sent.
                    secrets.add(access_token.expose_secret());
                    if let Some(r) = &refresh_token {
                        secrets.add(r.expose_secret());
                    }
                    c.proof.add_secrets(&c.client_id, &mut secrets);
                    // Revoking the refresh token ends the grant (RFC 7009 §2.1).
                    let (token, hint) = match &refresh_token {
                        Some(r) => (r, "refresh_token"),
                        None => (&access_token, "access_token"),
                    };
                    let http = &self.clients[p.id.as_str()];
                    oauth2::revoke(http.inner(), &c, &url, token, hint, http.limits().timeout)
                        .await
                        .map(|()| Some(url))
                }
                .await;
                match result {
                    Ok(Some(url)) => format!("revoked at {}", redact(&url)),
                    Ok(None) => NO_REVOCATION.to_string(),
                    Err(e) => format!(
                        "the provider's revocation failed: {}; the tokens were dropped here",
                        secrets.scrub(&e)
                    ),
                }
            }
            Some((_, ProviderAuth::Oauth2(_))) => NO_REVOCATION.to_string(),
            Some(_) => "OAuth 1.0a has no revocation endpoint: the tokens were dropped here only; ask the provider to end the grant".to_string(),
            None => "the provider is not in the configuration: the tokens were dropped here only".to_string(),
        }
    }

    /// A clinician rejects a held link (`link reject`): the provider is told
    /// first, as `revoke` does, then the store revokes it, drops its tokens
    /// and resolves its `identity_mismatch`. A link that is not held is
    /// refused before the provider hears anything.
    pub async fn reject(
        &self,
        writer: &Writer,
        link_id: LinkId,
        by: &str,
        note: &str,
    ) -> Result<String, StoreError> {
        let link = writer
            .run(move |s| {
                s.peek_link(link_id)?.ok_or_else(|| StoreError::NotFound {
                    what: "link",
                    id: link_id.to_string(),
                })
            })
            .await?;
        if link.view.state != LinkState::Held {
            return Err(StoreError::Refused(format!(
                "link {link_id} is {}, not held: there is no identity to reject",
                link.view.state
            )));
        }
        let told = self.tell_provider(writer, &link).await;
        let (by, note) = (by.to_string(), format!("{note} ({told})"));
        writer
            .run(move |s| s.reject_link(link_id, &by, &note))
            .await?;
        Ok(told)
    }
}

/// One pull's requests: the link, its provider, its credentials and the
/// journal of what was asked.
struct Fetching<'a> {
    puller: &'a Puller,
    /// Commits refreshed tokens.
    writer: Writer,
    provider: &'a Provider,
    client: Arc<HttpClient>,
    link: &'a mut ClaimedLink,
    session: Session,
    journal: &'a mut Journal,
}

impl Fetching<'_> {
    /// GETs `url` and insists on a 2xx, as `fetch::policy::judge` rules: a
    /// 401 is answered once (OAuth 2.0 refreshes unless it just did, OAuth
    /// 1.0a corrects its clock when the provider says which timestamps it
    /// accepts).
    async fn get_ok(&mut self, url: &Url, accept: &str) -> Result<Fetched, Failure> {
        self.get_answer(url, accept, &[]).await
    }

    /// `get_ok`, but the statuses in `tolerated` are answers too (a read
    /// whose 404 is data, not a failed pull).
    async fn get_answer(
        &mut self,
        url: &Url,
        accept: &str,
        tolerated: &[u16],
    ) -> Result<Fetched, Failure> {
        let mut tries = Tries::default();
        loop {
            let t0 = Instant::now();
            let result = self
                .client
                .get(
                    url,
                    self.session.credential(),
                    accept,
                    &mut self.journal.trail,
                )
                .await;
            self.journal.access(url, t0, &result);
            let f = result?;
            self.journal.moves.extend(f.moves.iter().cloned());
            self.journal.redirects += f.hops;
            let secrets = &self.journal.secrets;
            match policy::judge(&f, &mut self.session, tolerated, &mut tries, secrets)? {
                Verdict::Take => return Ok(f),
                Verdict::Refresh => self.refresh().await?,
                Verdict::Resend => {}
            }
        }
    }

    /// Refreshes the access token and commits the new pair before it is used.
    async fn refresh(&mut self) -> Result<(), Failure> {
        let provider = self.provider;
        let ProviderAuth::Oauth2(o) = &provider.auth else {
            return Err(Failure::failed("not an OAuth 2.0 provider"));
        };
        let Session::Oauth2 {
            bearer,
            refresh_token,
            refreshed,
        } = &mut self.session
        else {
            return Err(Failure::failed("not an OAuth 2.0 link"));
        };
        let Some(current) = refresh_token.as_ref() else {
            return Err(Failure::relink(
                "the access token expired and the link holds no refresh token",
            ));
        };
        // One refresh per link across all workers: the link's refresh lock,
        // taken before the refresh token is sent (`Store::take_refresh_lock`)
        // and given back with the rotated pair's commit.
        let (link_id, lock_holder) = (self.link.view.id, self.link.holder.clone());
        let sent = self.link.sealed_refresh_token().map(<[u8]>::to_vec);
        let give_up_at = Instant::now() + REFRESH_LOCK_WAIT;
        loop {
            let (h, s) = (lock_holder.clone(), sent.clone());
            let turn = self
                .writer
                .run(move |st| {
                    st.take_refresh_lock(link_id, &h, s.as_deref(), lease::ttl(REFRESH_LOCK_TTL))
                })
                .await
                .map_err(|e| Failure::failed(e.to_string()))?;
            match turn {
                RefreshTurn::Taken => break,
                RefreshTurn::Rotated => {
                    return Err(Failure::failed(
                        "another sync rotated this link's tokens since this one read them: stopped without refreshing (sending the old refresh token would be a reuse); the next sync uses the new pair",
                    ));
                }
                RefreshTurn::Busy { .. } if Instant::now() < give_up_at => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                RefreshTurn::Busy { holder, until } => {
                    return Err(Failure::failed(format!(
                        "another worker ({holder}) is refreshing this link's tokens (until {until})"
                    )));
                }
            }
        }
        let c = match self
            .puller
            .oauth2_client(&self.writer, provider, o, false, &mut self.journal.trail)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                give_back_refresh_lock(&self.writer, link_id, lock_holder.clone()).await;
                return Err(Failure::failed(e));
            }
        };
        let token_url = c.token_url.clone();
        c.proof.add_secrets(&c.client_id, &mut self.journal.secrets);
        let mut secrets = self.journal.secrets.clone();
        // The exchange and the commit of its answer run as their own task:
        // once the provider has rotated the refresh token, the new one must
        // reach the vault even if this sync is abandoned (shutdown), or the
        // next sync would reuse the old one and lose the grant. Shutdown
        // waits for these tasks (`Puller::refreshes_settled`).
        let gate = Arc::clone(&self.puller.refresh_gate).read_owned().await;
        let client = self.client.inner().clone();
        let current = current.clone();
        let timeout = self.client.limits().timeout;
        let writer = self.writer.clone();
        let key = Arc::clone(&self.puller.key);
        let mut claimed = self.link.clone();
        let exchange = tokio::spawn(async move {
            let _gate = gate;
            let t0 = Instant::now();
            let answer = oauth2::refresh(&client, &c, &current, timeout).await;
            let ms = t0.elapsed().as_millis() as u64;
            if let Ok(t) = &answer {
                secrets.add(t.access_token.expose_secret());
                if let Some(r) = &t.refresh_token {
                    secrets.add(r.expose_secret());
                }
            }
            // Stored with the refreshed pair (audit): scrubbed here, since
            // it does not pass through the journal.
            let detail = secrets.scrub_json(&serde_json::json!({
                "url": redact(&c.token_url), "grant_type": "refresh_token", "ms": ms,
                "outcome": if answer.is_ok() { "ok" } else { "error" },
                "error": answer.as_ref().err().map(|e| e.to_string()),
                "rotated": answer.as_ref().ok().map(|t| t.refresh_token.is_some()),
            }));
            let committed = match &answer {
                Ok(tokens) => {
                    let expires_at = tokens.expires_at;
                    let access = tokens.access_token.clone();
                    let refresh = tokens.refresh_token.clone();
                    let scope = tokens.scope.clone();
                    let detail = detail.clone();
                    // The answer's `access_grant_expiration` (or a rotated
                    // JWT refresh token's `exp`) dates the grant anew.
                    let grant_end = tokens.grant_expires_at;
                    // In a transaction of its own: the provider has already
                    // rotated the pair, so no other sync's trouble may fail
                    // it. The grant end is part of the same job, so it
                    // commits (or rolls back) with the pair.
                    writer
                        .run_alone(move |store| {
                            store.store_refreshed_tokens(
                                &mut claimed,
                                &key,
                                &access,
                                refresh.as_ref(),
                                expires_at,
                                scope.as_deref(),
                                &detail,
                            )?;
                            if let Some(end) = grant_end {
                                store.set_grant_expiry(claimed.view.id, end)?;
                            }
                            Ok(claimed)
                        })
                        .await
                        .map_err(|e| e.to_string())
                }
                Err(_) => Ok(claimed),
            };
            // Not committed: the refresh lock goes back (a commit gives it back itself).
            if answer.is_err() || committed.is_err() {
                give_back_refresh_lock(&writer, link_id, lock_holder).await;
            }
            (answer, committed, detail, ms)
        });
        let (answer, committed, detail, ms) = exchange
            .await
            .map_err(|e| Failure::failed(format!("the token refresh task failed: {e}")))?;
        self.journal.trail.push(Hop {
            url: redact(&token_url),
            status: None,
            credentials: true,
            attempt: 1,
            ms,
            location: None,
            error: answer.as_ref().err().map(|e| e.to_string()),
            bytes: None,
        });
        let tokens = match answer {
            Ok(t) => t,
            Err(e) => {
                self.journal.accesses.push(detail);
                return Err(policy::refresh_refused(&e).into());
            }
        };
        *self.link = committed.map_err(Failure::failed)?;
        self.journal
            .secrets
            .add(tokens.access_token.expose_secret());
        if let Some(r) = &tokens.refresh_token {
            self.journal.secrets.add(r.expose_secret());
        }
        bearer.token = tokens.access_token;
        if let Some(r) = tokens.refresh_token {
            *refresh_token = Some(r);
        }
        *refreshed = true;
        self.journal.refreshed = true;
        Ok(())
    }
}

/// Gives back a link's refresh lock that no commit gave back (the refresh
/// failed or was not stored); if even that fails, the lock expires by itself.
async fn give_back_refresh_lock(writer: &Writer, link_id: LinkId, holder: String) {
    if let Err(e) = writer
        .run(move |st| st.release_refresh_lock(link_id, &holder))
        .await
    {
        tracing::warn!(link = link_id.get(), error = %e, "cannot give back the refresh lock; it expires by itself");
    }
}

/// Runs store work that may take a while (parsing, writing) without
/// stalling the async workers: on a multi-threaded runtime the worker hands
/// its other tasks over first.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Pulls every active link of a patient (or the one of `provider`), one
/// after the other.
pub async fn pull_patient(
    puller: &Puller,
    writer: &Writer,
    patient: &PatientId,
    provider: Option<&ProviderId>,
    actor: &str,
) -> Result<Vec<PullReport>, crate::store::StoreError> {
    let patient = patient.clone();
    let links = writer.run(move |s| s.links(Some(&patient))).await?;
    let mut out = Vec::new();
    for l in links
        .iter()
        .filter(|l| l.state == LinkState::Active && provider.is_none_or(|p| *p == l.provider))
    {
        // A scheduled sync (or another on-demand pull) of the same link
        // holds it: wait for it to finish, then pull.
        let deadline = Instant::now() + BUSY_WAIT;
        loop {
            let r = puller.pull(writer, l.id, Trigger::Pull, actor).await?;
            if r.outcome != PullOutcome::Busy || Instant::now() >= deadline {
                out.push(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(out)
}

/// The daemon runs pulls on a multi-threaded runtime: their futures must
/// be Send (a compile-time check).
#[allow(dead_code)]
fn pull_futures_are_send(
    p: &Puller,
    s: &Writer,
    c: &reqwest::Client,
    o: &oauth2::Client,
    t: &SecretString,
) {
    fn is_send<T: Send>(_: T) {}
    is_send(oauth2::refresh(c, o, t, Duration::from_secs(1)));
    is_send(p.pull(s, LinkId::new(1), Trigger::Pull, ""));
    is_send(p.revoke(s, LinkId::new(1), ""));
}
