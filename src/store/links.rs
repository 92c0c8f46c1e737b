//! Links and their sealed secrets: adding, re-linking, reading, revoking
//! a link, and committing refreshed tokens.
//!
//! Secrets arrive sealed (`vault::VaultKey::seal`) and leave sealed; only
//! the caller with the key opens them. A refreshed token pair is committed
//! on its own, before the new access token is used, and only by the sync
//! that holds the link's lease (`leases`).

use super::db::Row;
use super::{Store, StoreError, as_rfc3339, as_rfc3339_opt, now, opt_time_col, rfc3339, time_col};
use crate::domain::{ExceptionKind, LinkId, LinkState, PatientId, ProviderId, SyncOutcome};
use crate::vault::VaultKey;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// The tokens of a link, as handed over or as refreshed.
pub enum LinkSecrets {
    Oauth1 {
        token: SecretString,
        token_secret: SecretString,
    },
    Oauth2 {
        access_token: SecretString,
        refresh_token: Option<SecretString>,
    },
}

impl LinkSecrets {
    fn scheme(&self) -> &'static str {
        match self {
            LinkSecrets::Oauth1 { .. } => "oauth1",
            LinkSecrets::Oauth2 { .. } => "oauth2",
        }
    }
}

/// A link to create (or to re-link: the same patient and provider).
pub struct NewLink<'a> {
    pub patient: &'a PatientId,
    pub provider: &'a ProviderId,
    pub remote_patient: &'a str,
    pub secrets: LinkSecrets,
    /// When the access token expires; OAuth 2.0 only.
    pub expires_at: Option<DateTime<Utc>>,
    pub scope: Option<String>,
    /// When the grant itself ends, when the provider says
    /// (`fetch::grant::grant_expiry`).
    pub grant_expires_at: Option<DateTime<Utc>>,
}

/// A link as shown to people and scripts: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub id: LinkId,
    pub patient: String,
    pub provider: ProviderId,
    pub scheme: String,
    pub remote_patient: String,
    pub state: LinkState,
    pub state_reason: Option<String>,
    #[serde(serialize_with = "as_rfc3339_opt")]
    pub last_sync: Option<DateTime<Utc>>,
    /// What the last sync came to. A `retry_later` read back carries the
    /// link's due time as its `at` (or, once a person re-scheduled the link,
    /// the time of that sync).
    pub last_outcome: Option<SyncOutcome>,
    pub last_error: Option<String>,
    pub failures: i64,
    #[serde(serialize_with = "as_rfc3339_opt")]
    pub next_due_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "as_rfc3339_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    pub scope: Option<String>,
    #[serde(serialize_with = "as_rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Who the patient is at the provider, as last read (`[providers.identity]`).
    pub remote_identity: Option<RemoteIdentityView>,
    /// When the patient's grant at the provider ends, if known.
    #[serde(serialize_with = "as_rfc3339_opt")]
    pub grant_expires_at: Option<DateTime<Utc>>,
}

/// A link's remote identity and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteIdentityView {
    #[serde(flatten)]
    pub identity: crate::identity::RemoteIdentity,
    #[serde(serialize_with = "as_rfc3339_opt")]
    pub read_at: Option<DateTime<Utc>>,
}

/// A link claimed for a sync: its view, its sealed fields and its moves.
#[derive(Clone)]
pub struct ClaimedLink {
    pub view: LinkView,
    pub holder: String,
    key_id: String,
    token: Option<Vec<u8>>,
    token_secret: Option<Vec<u8>>,
    refresh_token: Option<Vec<u8>>,
    /// Remembered permanent redirects: (from, to).
    pub moves: Vec<(String, String)>,
    /// The holder whose lease this claim took over: it had run out
    /// without being renewed or given back (a worker killed or frozen
    /// mid-sync). None when the link was free.
    pub took_over_from: Option<String>,
}

impl ClaimedLink {
    /// The refresh token as it is stored (sealed): what
    /// `Store::take_refresh_lock` compares with the stored one.
    pub fn sealed_refresh_token(&self) -> Option<&[u8]> {
        self.refresh_token.as_deref()
    }

    /// Opens the link's secrets with the vault key.
    pub fn secrets(&self, key: &VaultKey) -> Result<LinkSecrets, crate::vault::VaultError> {
        let id = self.view.id;
        let open = |field: &'static str, sealed: &Option<Vec<u8>>| {
            sealed
                .as_deref()
                .map(|s| key.open(id, field, &self.key_id, s))
                .transpose()
        };
        let missing = |field| crate::vault::VaultError::Damaged { link: id, field };
        if self.view.scheme == "oauth1" {
            Ok(LinkSecrets::Oauth1 {
                token: open("token", &self.token)?.ok_or_else(|| missing("token"))?,
                token_secret: open("token_secret", &self.token_secret)?
                    .ok_or_else(|| missing("token_secret"))?,
            })
        } else {
            Ok(LinkSecrets::Oauth2 {
                access_token: open("token", &self.token)?.ok_or_else(|| missing("token"))?,
                refresh_token: open("refresh_token", &self.refresh_token)?,
            })
        }
    }
}

/// A link's sealed fields, selected after `VIEW_COLUMNS` (columns 18–21).
pub(super) const SEALED_COLUMNS: &str = "key_id, token, token_secret, refresh_token";

/// What `Store::take_refresh_lock` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshTurn {
    /// This sync may refresh (and must commit or give the lock back).
    Taken,
    /// Another worker is refreshing this link until `until`.
    Busy {
        holder: String,
        until: DateTime<Utc>,
    },
    /// The stored refresh token is no longer the one this sync read:
    /// another sync rotated the pair since.
    Rotated,
}

/// A link read with `VIEW_COLUMNS, SEALED_COLUMNS`, for `holder`.
pub(super) fn claimed(r: &Row<'_>, holder: &str) -> rusqlite::Result<ClaimedLink> {
    Ok(ClaimedLink {
        view: view(r)?,
        holder: holder.to_string(),
        key_id: r.get(18)?,
        token: r.get(19)?,
        token_secret: r.get(20)?,
        refresh_token: r.get(21)?,
        moves: Vec::new(),
        took_over_from: None,
    })
}

pub(super) const VIEW_COLUMNS: &str =
    "id, patient_id, provider, scheme, remote_patient, state, state_reason, last_sync_at,
    last_outcome, last_error, failures, next_due_at, expires_at, scope, created_at,
    remote_identity, identity_read_at, grant_expires_at";

pub(super) fn view(r: &Row<'_>) -> rusqlite::Result<LinkView> {
    Ok(LinkView {
        id: r.get(0)?,
        patient: r.get(1)?,
        provider: r.get(2)?,
        scheme: r.get(3)?,
        remote_patient: r.get(4)?,
        state: link_state(r, 5)?,
        state_reason: r.get(6)?,
        last_sync: opt_time_col(r, 7, "links.last_sync_at")?,
        last_outcome: sync_outcome(r, 8, 11, 7)?,
        last_error: r.get(9)?,
        failures: r.get(10)?,
        next_due_at: opt_time_col(r, 11, "links.next_due_at")?,
        expires_at: opt_time_col(r, 12, "links.expires_at")?,
        scope: r.get(13)?,
        created_at: time_col(r, 14, "links.created_at")?,
        remote_identity: {
            let read_at = opt_time_col(r, 16, "links.identity_read_at")?;
            r.get::<_, Option<String>>(15)?
                .and_then(|j| serde_json::from_str(&j).ok())
                .map(|identity| RemoteIdentityView { identity, read_at })
        },
        grant_expires_at: opt_time_col(r, 17, "links.grant_expires_at")?,
    })
}

/// Reads `links.state` (column `at`) as a [`LinkState`].
pub(super) fn link_state(r: &Row<'_>, at: usize) -> rusqlite::Result<LinkState> {
    let text: String = r.get(at)?;
    LinkState::from_stored(&text).ok_or_else(|| super::bad_text(at, format!("link state {text:?}")))
}

/// Reads `links.last_outcome` (column `at`) as a [`SyncOutcome`]; a
/// `retry_later` waits for `next_due_at` (column `due`), else it is dated by
/// the sync itself (column `synced`).
fn sync_outcome(
    r: &Row<'_>,
    at: usize,
    due: usize,
    synced: usize,
) -> rusqlite::Result<Option<SyncOutcome>> {
    let Some(text) = r.get::<_, Option<String>>(at)? else {
        return Ok(None);
    };
    let when = |i: usize| -> rusqlite::Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(r.get::<_, Option<String>>(i)?
            .as_deref()
            .and_then(super::parse_time))
    };
    let retry_at = when(due)?.or(when(synced)?);
    SyncOutcome::from_stored(&text, retry_at)
        .map(Some)
        .ok_or_else(|| super::bad_text(at, format!("sync outcome {text:?}")))
}

impl Store {
    /// Adds a link, or re-links the live link of the same patient and
    /// provider (new tokens, state `active` — a `held` link stays held —,
    /// its open `link_broken` exceptions resolved). Returns the link id and whether it was a re-link.
    pub fn add_link(
        &mut self,
        new: &NewLink<'_>,
        key: &VaultKey,
        actor: &str,
    ) -> Result<(LinkId, bool), StoreError> {
        let tx = self.tx()?;
        super::patients::require_patient(&tx, new.patient)?;
        let at = now();
        let live: Option<(LinkId, String)> = tx
            .cached_row(
                "SELECT id, scheme FROM links WHERE patient_id = ?1 AND provider = ?2 AND state <> 'revoked'",
                params![new.patient.as_str(), new.provider],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (id, relinked) = match live {
            Some((id, scheme)) if scheme != new.secrets.scheme() => {
                return Err(StoreError::Conflict(format!(
                    "link {id} of patient {} to {} uses {scheme}; revoke it before linking with {}",
                    new.patient,
                    new.provider,
                    new.secrets.scheme()
                )));
            }
            Some((id, _)) => (id, true),
            None => {
                let inserted: LinkId = tx.cached_row(
                    "INSERT INTO links (patient_id, provider, scheme, remote_patient, state, key_id, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?6) RETURNING id",
                    params![
                        new.patient.as_str(),
                        new.provider,
                        new.secrets.scheme(),
                        new.remote_patient,
                        key.id(),
                        at
                    ],
                    |r| r.get(0),
                )?;
                (inserted, false)
            }
        };
        let (token, token_secret, refresh) = match &new.secrets {
            LinkSecrets::Oauth1 {
                token,
                token_secret,
            } => (
                key.seal(id, "token", token.expose_secret()),
                Some(key.seal(id, "token_secret", token_secret.expose_secret())),
                None,
            ),
            LinkSecrets::Oauth2 {
                access_token,
                refresh_token,
            } => (
                key.seal(id, "token", access_token.expose_secret()),
                None,
                refresh_token
                    .as_ref()
                    .map(|t| key.seal(id, "refresh_token", t.expose_secret())),
            ),
        };
        tx.cached_execute(
            // A held link stays held with its new tokens: only a clinician
            // lets it import again (`confirm_link`), whoever re-links it.
            "UPDATE links SET remote_patient = ?2, state = CASE state WHEN 'held' THEN 'held' ELSE 'active' END,
             state_reason = CASE state WHEN 'held' THEN state_reason END, key_id = ?3, token = ?4,
             token_secret = ?5, refresh_token = ?6, expires_at = ?7, scope = ?8, updated_at = ?9, failures = 0,
             next_due_at = NULL, lease_holder = NULL, lease_until = NULL, grant_expires_at = ?10,
             grant_warned_for = NULL WHERE id = ?1",
            params![
                id,
                new.remote_patient,
                key.id(),
                token,
                token_secret,
                refresh,
                new.expires_at.map(rfc3339),
                new.scope,
                at,
                new.grant_expires_at.map(rfc3339)
            ],
        )?;
        let resolved = if relinked {
            tx.cached_execute(
                "UPDATE exceptions SET state = 'resolved', resolution = 'relink', resolved_by = ?1, resolved_at = ?2,
                 note = ?3 WHERE state = 'open' AND kind IN (?4, ?7) AND patient_id = ?5 AND source = ?6",
                params![
                    actor,
                    at,
                    format!("re-linked (link {id})"),
                    ExceptionKind::LinkBroken.as_str(),
                    new.patient.as_str(),
                    new.provider,
                    // A new consent is a new grant: "ends soon" is over.
                    ExceptionKind::LinkExpiring.as_str()
                ],
            )?
        } else {
            0
        };
        super::audit::append(
            &tx,
            actor,
            if relinked { "link.relink" } else { "link.add" },
            Some(new.patient.as_str()),
            Some(&format!("link:{id}")),
            &serde_json::json!({"provider": new.provider, "scheme": new.secrets.scheme(),
                "remote_patient": new.remote_patient, "link_broken_resolved": resolved}),
        )?;
        tx.commit()?;
        Ok((id, relinked))
    }

    /// Links, of one patient or all, oldest first.
    pub fn links(&self, patient: Option<&PatientId>) -> Result<Vec<LinkView>, StoreError> {
        let sql = format!(
            "SELECT {VIEW_COLUMNS} FROM links WHERE (CAST(?1 AS TEXT) IS NULL OR patient_id = ?1) ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([patient.map(PatientId::as_str)], view)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One link.
    pub fn link(&self, id: LinkId) -> Result<Option<LinkView>, StoreError> {
        let sql = format!("SELECT {VIEW_COLUMNS} FROM links WHERE id = ?1");
        Ok(self.conn.cached_row(&sql, [id], view).optional()?)
    }

    /// A link's view and sealed fields without taking its lease (for
    /// revoking a link that a sync holds or that needs re-linking).
    pub fn peek_link(&self, id: LinkId) -> Result<Option<ClaimedLink>, StoreError> {
        let sql = format!("SELECT {VIEW_COLUMNS}, {SEALED_COLUMNS} FROM links WHERE id = ?1");
        Ok(self
            .conn
            .cached_row(&sql, [id], |r| claimed(r, ""))
            .optional()?)
    }

    /// Takes the link's refresh lock for `holder` until `ttl` from now,
    /// before its refresh token is sent: one refresh per link across all
    /// workers. `sent` is the sealed refresh token the sync would send:
    /// when the stored one differs, another sync rotated the pair since
    /// this one read it, and sending the old one would be a reuse
    /// (`RefreshTurn::Rotated`: the sync stops without refreshing).
    pub fn take_refresh_lock(
        &mut self,
        id: LinkId,
        holder: &str,
        sent: Option<&[u8]>,
        ttl: chrono::Duration,
    ) -> Result<RefreshTurn, StoreError> {
        let at = chrono::Utc::now();
        let tx = self.tx()?;
        let lock = tx.dialect("", " FOR UPDATE");
        // The stored refresh token (sealed), and the refresh lock's holder and end.
        type LockRow = (Option<Vec<u8>>, Option<String>, Option<DateTime<Utc>>);
        let row: Option<LockRow> = tx
            .cached_row(
                &format!(
                    "SELECT refresh_token, refresh_holder, refresh_until FROM links WHERE id = ?1{lock}"
                ),
                [id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        opt_time_col(r, 2, "links.refresh_until")?,
                    ))
                },
            )
            .optional()?;
        let Some((stored, other, until)) = row else {
            return Err(StoreError::NotFound {
                what: "link",
                id: id.to_string(),
            });
        };
        if let (Some(other), Some(until)) = (other, until)
            && other != holder
            && until > at
        {
            return Ok(RefreshTurn::Busy {
                holder: other,
                until,
            });
        }
        if stored.as_deref() != sent {
            return Ok(RefreshTurn::Rotated);
        }
        tx.cached_execute(
            "UPDATE links SET refresh_holder = ?2, refresh_until = ?3 WHERE id = ?1",
            params![id, holder, super::rfc3339(at + ttl)],
        )?;
        tx.commit()?;
        Ok(RefreshTurn::Taken)
    }

    /// Gives back a refresh lock whose refresh failed (a committed refresh
    /// gives it back itself).
    pub fn release_refresh_lock(&mut self, id: LinkId, holder: &str) -> Result<(), StoreError> {
        self.conn.cached_execute(
            "UPDATE links SET refresh_holder = NULL, refresh_until = NULL WHERE id = ?1 AND refresh_holder = ?2",
            params![id, holder],
        )?;
        Ok(())
    }

    /// Commits refreshed OAuth 2.0 tokens, before the new access token is
    /// used. `refresh_token: None` keeps the stored one (the provider sent none).
    #[allow(clippy::too_many_arguments)]
    pub fn store_refreshed_tokens(
        &mut self,
        link: &mut ClaimedLink,
        key: &VaultKey,
        access_token: &SecretString,
        refresh_token: Option<&SecretString>,
        expires_at: Option<DateTime<Utc>>,
        scope: Option<&str>,
        audit: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let id = link.view.id;
        let tx = self.tx()?;
        let sealed_access = key.seal(id, "token", access_token.expose_secret());
        let sealed_refresh =
            refresh_token.map(|t| key.seal(id, "refresh_token", t.expose_secret()));
        // Stored while this sync holds the lease — or, after its lease was
        // taken over, while it holds the link's refresh lock and the stored
        // refresh token is still the one this refresh sent: the provider
        // has rotated it, and the pair it gave back is the only one that
        // still works (no lost rotation). The
        // link's refresh lock (`take_refresh_lock`) is given back with it.
        let changed = tx.cached_execute(
            "UPDATE links SET token = ?3, refresh_token = COALESCE(?4, refresh_token), key_id = ?5, expires_at = ?6,
             scope = COALESCE(?7, scope), updated_at = ?8, refresh_holder = NULL, refresh_until = NULL
             WHERE id = ?1 AND key_id = ?5
               AND (lease_holder = ?2 OR (refresh_holder = ?2 AND refresh_token = ?9))",
            params![id, link.holder, sealed_access, sealed_refresh, key.id(), expires_at.map(rfc3339), scope, now(), link.refresh_token],
        )?;
        if changed != 1 {
            let (holder, key_id): (Option<String>, String) = tx.cached_row(
                "SELECT lease_holder, key_id FROM links WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            return Err(StoreError::Conflict(
                if holder.as_deref() != Some(link.holder.as_str()) {
                    format!(
                        "link {id} is no longer held by this sync; the refreshed tokens were not stored"
                    )
                } else {
                    format!(
                        "the vault key of link {id} changed during this sync (key {key_id}, this sync has {}); the refreshed tokens were not stored",
                        key.id()
                    )
                },
            ));
        }
        super::audit::append(
            &tx,
            "rxsync",
            "link.refresh",
            Some(&link.view.patient),
            Some(&format!("link:{id}")),
            audit,
        )?;
        tx.commit()?;
        link.token = Some(sealed_access);
        if let Some(r) = sealed_refresh {
            link.refresh_token = Some(r);
        }
        link.key_id = key.id().to_string();
        link.view.expires_at = expires_at;
        Ok(())
    }

    /// Marks a link revoked (after the provider's revocation endpoint, when
    /// there is one, was called by the caller).
    pub fn revoke_link(
        &mut self,
        id: LinkId,
        actor: &str,
        reason: &str,
    ) -> Result<LinkView, StoreError> {
        let tx = self.tx()?;
        let sql = format!("SELECT {VIEW_COLUMNS} FROM links WHERE id = ?1");
        let Some(link) = tx.cached_row(&sql, [id], view).optional()? else {
            return Err(StoreError::NotFound {
                what: "link",
                id: id.to_string(),
            });
        };
        if link.state == LinkState::Revoked {
            return Err(StoreError::Conflict(format!(
                "link {id} is already revoked"
            )));
        }
        // The sealed tokens are of no use any more: drop them.
        tx.cached_execute(
            "UPDATE links SET state = 'revoked', state_reason = ?2, token = NULL, token_secret = NULL,
             refresh_token = NULL, updated_at = ?3, lease_holder = NULL, lease_until = NULL WHERE id = ?1",
            params![id, reason, now()],
        )?;
        super::audit::append(
            &tx,
            actor,
            "link.revoke",
            Some(&link.patient),
            Some(&format!("link:{id}")),
            &serde_json::json!({"provider": link.provider, "reason": reason}),
        )?;
        tx.commit()?;
        Ok(LinkView {
            state: LinkState::Revoked,
            state_reason: Some(reason.to_string()),
            ..link
        })
    }

    /// Links by state, for metrics.
    pub fn link_state_counts(&self) -> Result<Vec<(LinkState, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM links GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map((), |r| Ok((link_state(r, 0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Open exceptions by kind, for metrics.
    pub fn open_exception_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, COUNT(*) FROM exceptions WHERE state = 'open' GROUP BY kind ORDER BY kind",
        )?;
        let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::store::NewPatient;

    pub(in crate::store) fn store_with_patient() -> (tempfile::TempDir, Store, PatientId) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = crate::store::test_store(dir.path());
        let patient = PatientId::parse("P1").expect("id");
        store
            .add_patient(&NewPatient::with_id(patient.clone()), "test")
            .expect("patient");
        (dir, store, patient)
    }

    pub(in crate::store) fn oauth2(access: &str, refresh: Option<&str>) -> LinkSecrets {
        LinkSecrets::Oauth2 {
            access_token: SecretString::from(access.to_string()),
            refresh_token: refresh.map(|r| SecretString::from(r.to_string())),
        }
    }

    pub(in crate::store) fn add(
        store: &mut Store,
        patient: &PatientId,
        key: &VaultKey,
        s: LinkSecrets,
    ) -> (LinkId, bool) {
        store
            .add_link(
                &NewLink {
                    patient,
                    provider: &ProviderId::parse("prov").expect("id"),
                    remote_patient: "r1",
                    secrets: s,
                    expires_at: None,
                    scope: None,
                    grant_expires_at: None,
                },
                key,
                "test",
            )
            .expect("link")
    }
}
