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
/// A fresh fetch is not repeated within this time (a flood of unknown
/// `kid`s must not become a flood of requests).
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// One provider's key set.
#[derive(Default)]
pub struct JwksCache {
    cached: Mutex<Option<(Instant, Arc<JwkSet>)>>,
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
        if let Some((at, set)) = cached.as_ref() {
            let age = at.elapsed();
            if age < KEEP && (!refresh || age < MIN_REFETCH) {
                return Ok(Arc::clone(set));
            }
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
        *cached = Some((Instant::now(), Arc::clone(&set)));
        Ok(set)
    }
}
