//! The OAuth 2.0 client of a provider at use time: configured endpoints,
//! else discovered ones (`discover = true`, read when first needed and
//! cached in the store until they expire); the configured client, else
//! the one rxsync registered (`provider register`, sealed in the store).
//! Precedence lives in `fetch::oauth2::Client::resolve`. The consent
//! engine resolves its client here too (`endpoints`, `resolve_client`), so
//! pulls, revocation and consent share one client and one discovery cache.

use super::Puller;
use crate::config::{Oauth2Settings, Provider};
use crate::discovery::Discovered;
use crate::fetch::discover;
use crate::fetch::http::{Hop, HttpClient};
use crate::fetch::oauth2::{Client, ClientProof, Registered};
use crate::store::{CachedDiscovery, StoreError, Writer};
use crate::vault::VaultKey;
use std::sync::Arc;

/// The provider's discovered endpoints: the store's cached answer while it
/// has not expired, else read now (and cached with its expiry). A provider
/// without `discover = true` has none.
pub async fn endpoints(
    writer: &Writer,
    http: &HttpClient,
    p: &Provider,
    trail: &mut Vec<Hop>,
) -> Result<Option<Discovered>, String> {
    if !p.discover {
        return Ok(None);
    }
    let id = p.id.as_str().to_string();
    let base = p.base_url.to_string();
    let now = chrono::Utc::now();
    let at = crate::store::rfc3339_at(now);
    let cached = {
        let (id, base) = (id.clone(), base.clone());
        writer
            .run(move |s| s.cached_discovery(&id, &base, &at))
            .await
            .map_err(|e| e.to_string())?
    };
    if let Some(c) = cached {
        return Ok(Some(c.discovered));
    }
    let found = discover::discover(http, &p.base_url, trail)
        .await
        .map_err(|e| format!("provider {id}: discover = true: {e}"))?;
    let expires = now + chrono::Duration::from_std(found.max_age).unwrap_or_default();
    let entry = CachedDiscovery {
        base_url: base,
        document_url: found.document_url.to_string(),
        discovered: found.discovered.clone(),
        fetched_at: crate::store::rfc3339_at(now),
        expires_at: crate::store::rfc3339_at(expires),
    };
    writer
        .run(move |s| s.save_discovery(&id, &entry))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(found.discovered))
}

impl Puller {
    /// The client `p`'s OAuth 2.0 exchanges use now (see the module
    /// documentation). `revoking`: the revocation endpoint is needed too, so
    /// discovery is read for it when it is not configured; otherwise only a
    /// missing token endpoint makes discovery read.
    pub(super) async fn oauth2_client(
        &self,
        writer: &Writer,
        p: &Provider,
        o: &Oauth2Settings,
        revoking: bool,
        trail: &mut Vec<Hop>,
    ) -> Result<Client, String> {
        let http = self
            .clients
            .get(p.id.as_str())
            .ok_or_else(|| format!("provider {} has no HTTP client", p.id.as_str()))?;
        let discovered = if o.token_url.is_none() || (revoking && o.revocation_url.is_none()) {
            endpoints(writer, http, p, trail).await?
        } else {
            None
        };
        resolve_client(writer, &self.key, &*self.env, p, o, discovered.as_ref()).await
    }
}

/// The client of `p` given what discovery found (`None`: not read): the
/// configured proof (the secret, read through `env`, and the private_key_jwt
/// key), else the client rxsync registered, opened from the store.
pub async fn resolve_client(
    writer: &Writer,
    key: &Arc<VaultKey>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    p: &Provider,
    o: &Oauth2Settings,
    discovered: Option<&Discovered>,
) -> Result<Client, String> {
    // The configured proof: the secret (only with a configured client id;
    // config refuses a secret without one), and the private_key_jwt key,
    // which a registered client may sign with too.
    let configured = ClientProof::load(o, p.id.as_str(), env)?;
    let registered = match &o.client_id {
        Some(_) => None,
        None => {
            let key = Arc::clone(key);
            let id = p.id.as_str().to_string();
            writer
                .run(move |s| -> Result<_, StoreError> { s.registration(&key, &id) })
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let registered = match registered {
        // RFC 7591 §3.2.1: a secret past client_secret_expires_at is refused
        // by the server; say what to do instead of sending it.
        Some(r)
            if r.client_secret_expires_at
                .as_deref()
                .is_some_and(|t| t <= crate::store::rfc3339_now().as_str()) =>
        {
            return Err(format!(
                "provider {}: the registered client's secret expired at {}; run rxsync provider register --provider {} again",
                p.id.as_str(),
                r.client_secret_expires_at.unwrap_or_default(),
                p.id.as_str()
            ));
        }
        Some(r) => Some(Registered {
            client_id: r.client_id,
            secret: r.client_secret,
            auth_method: r.auth_method,
        }),
        None => None,
    };
    Client::resolve(o, discovered, configured, registered)
        .map_err(|e| format!("provider {}: {e}", p.id.as_str()))
}
