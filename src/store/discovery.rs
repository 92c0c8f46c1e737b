//! Discovery cache and client registrations (migration `0016_discovery`).
//!
//! `provider_discovery` keeps what a provider's discovery documents said,
//! with the time it stops being used; `client_registrations` keeps the
//! client rxsync registered at a provider, every issued field sealed by the
//! vault (`VaultKey::seal_registration`). Registration fields arrive sealed
//! and leave sealed or opened into `secrecy` types; no plaintext secret is
//! written, logged or put in an audit row.

use super::{StoreError, Tx, now};
use crate::discovery::Discovered;
use crate::vault::{VaultError, VaultKey};
use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

/// A cached discovery answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDiscovery {
    pub base_url: String,
    pub document_url: String,
    pub discovered: Discovered,
    pub fetched_at: String,
    pub expires_at: String,
}

/// What a registration endpoint issued, before sealing.
pub struct NewRegistration<'a> {
    pub provider: &'a str,
    pub registration_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: Option<&'a SecretString>,
    pub registration_access_token: Option<&'a SecretString>,
    pub registration_client_uri: Option<&'a str>,
    pub auth_method: &'a str,
    /// RFC 3339, or `None` for a secret that does not expire.
    pub client_secret_expires_at: Option<String>,
}

/// The registered client, opened: what the token endpoint needs.
pub struct Registration {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub auth_method: String,
    pub registration_url: String,
    pub client_secret_expires_at: Option<String>,
    pub created_at: String,
}

impl super::Store {
    /// The cached discovery of `provider` read under `base_url`, if it has
    /// not expired at `now` (RFC 3339).
    pub fn cached_discovery(
        &self,
        provider: &str,
        base_url: &str,
        at: &str,
    ) -> Result<Option<CachedDiscovery>, StoreError> {
        let row = self
            .conn
            .cached_row(
                "SELECT base_url, document_url, discovered, fetched_at, expires_at FROM provider_discovery
                 WHERE provider = ?1 AND base_url = ?2 AND expires_at > ?3",
                params![provider, base_url, at],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((base_url, document_url, json, fetched_at, expires_at)) = row else {
            return Ok(None);
        };
        // A row an older build wrote in another shape is read again, not trusted.
        let Ok(discovered) = serde_json::from_str::<Discovered>(&json) else {
            return Ok(None);
        };
        // So is one holding an endpoint an older build accepted in plain http
        // to a host that is not loopback: it is never used.
        if !discovered.endpoints_secure() {
            return Ok(None);
        }
        Ok(Some(CachedDiscovery {
            base_url,
            document_url,
            discovered,
            fetched_at,
            expires_at,
        }))
    }

    /// Caches a discovery answer until `expires_at` (RFC 3339), replacing
    /// the provider's earlier one, with an audit row.
    pub fn save_discovery(
        &mut self,
        provider: &str,
        entry: &CachedDiscovery,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let json = serde_json::to_string(&entry.discovered)
            .map_err(|e| StoreError::Refused(format!("cannot encode the discovery: {e}")))?;
        tx.cached_execute(
            "INSERT INTO provider_discovery (provider, base_url, document_url, discovered, fetched_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (provider) DO UPDATE SET base_url = ?2, document_url = ?3, discovered = ?4,
                 fetched_at = ?5, expires_at = ?6",
            params![
                provider,
                entry.base_url,
                entry.document_url,
                json,
                entry.fetched_at,
                entry.expires_at
            ],
        )?;
        super::audit::append(
            &tx,
            "rxsync",
            "provider.discovered",
            None,
            Some(provider),
            &serde_json::json!({
                "document": entry.document_url,
                "source": entry.discovered.source,
                "expires_at": entry.expires_at,
            }),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps a new registration (sealed), replacing the provider's earlier
    /// one, with an audit row naming the client id's existence, never a secret.
    pub fn save_registration(
        &mut self,
        key: &VaultKey,
        r: &NewRegistration<'_>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let seal = |field: &'static str, v: &str| key.seal_registration(r.provider, field, v);
        let replaced: bool = tx
            .cached_row(
                "SELECT 1 FROM client_registrations WHERE provider = ?1",
                [r.provider],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        tx.cached_execute(
            "INSERT INTO client_registrations (provider, registration_url, key_id, client_id, client_secret,
                 registration_access_token, registration_client_uri, auth_method, client_secret_expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (provider) DO UPDATE SET registration_url = ?2, key_id = ?3, client_id = ?4,
                 client_secret = ?5, registration_access_token = ?6, registration_client_uri = ?7,
                 auth_method = ?8, client_secret_expires_at = ?9, created_at = ?10",
            params![
                r.provider,
                r.registration_url,
                key.id(),
                seal("client_id", r.client_id),
                r.client_secret
                    .map(|s| seal("client_secret", s.expose_secret())),
                r.registration_access_token
                    .map(|s| seal("registration_access_token", s.expose_secret())),
                r.registration_client_uri
                    .map(|u| seal("registration_client_uri", u)),
                r.auth_method,
                r.client_secret_expires_at,
                now()
            ],
        )?;
        super::audit::append(
            &tx,
            actor,
            "provider.registered",
            None,
            Some(r.provider),
            &serde_json::json!({
                "registration_url": r.registration_url,
                "auth_method": r.auth_method,
                "client_secret": r.client_secret.is_some(),
                "registration_access_token": r.registration_access_token.is_some(),
                "client_secret_expires_at": r.client_secret_expires_at,
                "replaced": replaced,
            }),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The client registered at `provider`, opened with `key`.
    pub fn registration(
        &self,
        key: &VaultKey,
        provider: &str,
    ) -> Result<Option<Registration>, StoreError> {
        type Row = (
            String,
            String,
            Vec<u8>,
            Option<Vec<u8>>,
            String,
            Option<String>,
            String,
        );
        let row: Option<Row> = self
            .conn
            .cached_row(
                "SELECT registration_url, key_id, client_id, client_secret, auth_method,
                        client_secret_expires_at, created_at
                 FROM client_registrations WHERE provider = ?1",
                [provider],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((registration_url, key_id, id, secret, auth_method, expires, created_at)) = row
        else {
            return Ok(None);
        };
        let open = |field: &'static str, sealed: &[u8]| -> Result<SecretString, StoreError> {
            key.open_registration(provider, field, &key_id, sealed)
                .map_err(|e: VaultError| StoreError::Refused(e.to_string()))
        };
        let client_id = open("client_id", &id)?.expose_secret().to_string();
        let client_secret = secret
            .as_deref()
            .map(|s| open("client_secret", s))
            .transpose()?;
        Ok(Some(Registration {
            client_id,
            client_secret,
            auth_method,
            registration_url,
            client_secret_expires_at: expires,
            created_at,
        }))
    }
}

/// Re-seals every registration under `new` inside a key rotation's
/// transaction. Returns the number of fields re-sealed.
pub(super) fn reseal(tx: &Tx<'_>, old: &VaultKey, new: &VaultKey) -> Result<usize, StoreError> {
    type Row = (
        String,
        String,
        Vec<u8>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    );
    let rows: Vec<Row> = {
        let mut stmt = tx.prepare(
            "SELECT provider, key_id, client_id, client_secret, registration_access_token, registration_client_uri
             FROM client_registrations",
        )?;
        stmt.query_map((), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut fields = 0;
    for (provider, key_id, id, secret, token, uri) in &rows {
        let mut reseal =
            |field: &'static str, v: Option<&Vec<u8>>| -> Result<Option<Vec<u8>>, StoreError> {
                let Some(sealed) = v else { return Ok(None) };
                let plain = old
                    .open_registration(provider, field, key_id, sealed)
                    .map_err(|e| StoreError::Refused(e.to_string()))?;
                fields += 1;
                Ok(Some(new.seal_registration(
                    provider,
                    field,
                    plain.expose_secret(),
                )))
            };
        let id = reseal("client_id", Some(id))?;
        let secret = reseal("client_secret", secret.as_ref())?;
        let token = reseal("registration_access_token", token.as_ref())?;
        let uri = reseal("registration_client_uri", uri.as_ref())?;
        tx.cached_execute(
            "UPDATE client_registrations SET client_id = ?2, client_secret = ?3,
                 registration_access_token = ?4, registration_client_uri = ?5, key_id = ?6
             WHERE provider = ?1",
            params![provider, id, secret, token, uri, new.id()],
        )?;
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    #[test]
    fn a_cached_discovery_with_an_insecure_endpoint_is_read_again_not_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = crate::store::test_store(dir.path());
        let url = |u: &str| Some(url::Url::parse(u).expect("url"));
        let mut entry = CachedDiscovery {
            base_url: "https://ehr.example/fhir".into(),
            document_url: "https://ehr.example/fhir/.well-known/smart-configuration".into(),
            discovered: Discovered {
                token_endpoint: url("https://ehr.example/token"),
                ..Discovered::default()
            },
            fetched_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-02T00:00:00Z".into(),
        };
        store.save_discovery("ehr", &entry).expect("save");
        let at = "2026-01-01T01:00:00Z";
        let read = |s: &Store| {
            s.cached_discovery("ehr", "https://ehr.example/fhir", at)
                .expect("read")
        };
        assert!(read(&store).is_some());
        // As an older build could have cached it: never used.
        entry.discovered.revocation_endpoint = url("http://evil.example/revoke");
        store.save_discovery("ehr", &entry).expect("save");
        assert!(read(&store).is_none());
    }
}
