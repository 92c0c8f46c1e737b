//! Key rotation: every link secret re-sealed under a new vault key, in
//! one transaction.

use super::{Store, StoreError, now};
use crate::domain::LinkId;
use crate::vault::VaultKey;
use rusqlite::{OptionalExtension, params};
use secrecy::ExposeSecret;

impl Store {
    /// The vault key ids the links are sealed with.
    pub fn link_key_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT key_id FROM links ORDER BY key_id")?;
        let rows = stmt.query_map((), |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Re-seals every link secret under `new`, in one transaction: either
    /// every secret moves to the new key or none does. Returns the number
    /// of links and of secrets re-sealed.
    pub fn rekey_links(
        &mut self,
        old: &VaultKey,
        new: &VaultKey,
    ) -> Result<(usize, usize), StoreError> {
        let tx = self.tx()?;
        // A sync holding a link may be about to store refreshed tokens
        // under the old key: rotating now would throw them away.
        let busy: Option<(LinkId, String)> = tx
            .cached_row(
                "SELECT id, lease_holder FROM links WHERE lease_holder IS NOT NULL AND lease_until > ?1 LIMIT 1",
                [now()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, holder)) = busy {
            return Err(StoreError::Refused(format!(
                "link {id} is being synced by {holder}: stop the daemon and let on-demand imports finish before rotating the key"
            )));
        }
        type Row = (
            LinkId,
            String,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
        );
        let rows: Vec<Row> = {
            let mut stmt = tx.prepare(
                "SELECT id, key_id, token, token_secret, refresh_token FROM links
                 WHERE token IS NOT NULL OR token_secret IS NOT NULL OR refresh_token IS NOT NULL",
            )?;
            stmt.query_map((), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let mut secrets = 0;
        for (id, key_id, token, token_secret, refresh) in &rows {
            let mut reseal =
                |field: &'static str, v: &Option<Vec<u8>>| -> Result<Option<Vec<u8>>, StoreError> {
                    let Some(sealed) = v else { return Ok(None) };
                    let plain = old
                        .open(*id, field, key_id, sealed)
                        .map_err(|e| StoreError::Refused(e.to_string()))?;
                    secrets += 1;
                    Ok(Some(new.seal(*id, field, plain.expose_secret())))
                };
            let t = reseal("token", token)?;
            let s = reseal("token_secret", token_secret)?;
            let r = reseal("refresh_token", refresh)?;
            tx.cached_execute(
                "UPDATE links SET token = ?2, token_secret = ?3, refresh_token = ?4, key_id = ?5 WHERE id = ?1",
                params![id, t, s, r, new.id()],
            )?;
        }
        // Links without secrets (revoked) carry the new id too.
        tx.cached_execute("UPDATE links SET key_id = ?1", [new.id()])?;
        secrets += super::discovery::reseal(&tx, old, new)?;
        super::audit::append(
            &tx,
            "cli",
            "vault.rotate",
            None,
            None,
            &serde_json::json!({"from": old.id(), "to": new.id(), "links": rows.len(), "secrets": secrets}),
        )?;
        tx.commit()?;
        Ok((rows.len(), secrets))
    }
}
