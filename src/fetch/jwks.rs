//! A provider's JWKS (the keys its ID tokens and JWT access tokens are
//! signed with): fetched through the provider's client without credentials,
//! kept an hour, fetched again once when a token names a key the cached
//! set lacks (the provider rotated its keys).

use super::auth::{Anonymous, redact};
use super::http::HttpClient;
use jsonwebtoken::jwk::JwkSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;

/// How long a fetched key set is used without asking again.
const KEEP: Duration = Duration::from_secs(3600);
/// An unknown `kid` makes at most one fetch in this time (a flood of
/// unknown `kid`s must not become a flood of requests).
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// One provider's key set.
#[derive(Default)]
pub struct JwksCache {
    cached: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    /// The set and when it was fetched.
    set: Option<(Instant, Arc<JwkSet>)>,
    /// When an unknown `kid` last made a fetch.
    forced_at: Option<Instant>,
}

impl JwksCache {
    /// The key set: the cached one unless it is older than an hour, or
    /// `refresh` asks for a fresh one (an unknown `kid`).
    pub async fn get(
        &self,
        client: &HttpClient,
        url: &Url,
        refresh: bool,
    ) -> Result<Arc<JwkSet>, String> {
        let mut cached = self.cached.lock().await;
        let forced_lately = cached.forced_at.is_some_and(|t| t.elapsed() < MIN_REFETCH);
        if let Some((at, set)) = cached.set.as_ref()
            && at.elapsed() < KEEP
            && (!refresh || forced_lately)
        {
            return Ok(Arc::clone(set));
        }
        if refresh {
            cached.forced_at = Some(Instant::now());
        }
        let mut trail = Vec::new();
        let f = client
            .get(
                url,
                &Anonymous,
                "application/json, application/jwk-set+json",
                &mut trail,
            )
            .await
            .map_err(|e| e.to_string())?;
        if !(200..300).contains(&f.status) {
            return Err(format!("{} answered {}", redact(&f.url), f.status));
        }
        let set: JwkSet = serde_json::from_slice(&f.body)
            .map_err(|e| format!("{}: not a JWKS: {e}", redact(&f.url)))?;
        let set = Arc::new(set);
        cached.set = Some((Instant::now(), Arc::clone(&set)));
        Ok(set)
    }
}
