//! Links and their sealed tokens, leases and remembered moves.
//!
//! Secrets arrive sealed (`vault::VaultKey::seal`) and leave sealed; only
//! the caller with the key opens them. A sync holds the link's lease (one
//! sync per link at a time, across processes sharing the file); every
//! write of a sync checks it still holds it. A refreshed token pair is
//! committed on its own, before the new access token is used.

use super::Cached;
use super::{Store, StoreError, now};
use crate::domain::{ExceptionKind, PatientId};
use crate::schedule::Schedule;
use crate::vault::VaultKey;
use rusqlite::{Connection, OptionalExtension, params};
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
    pub provider: &'a str,
    pub remote_patient: &'a str,
    pub secrets: LinkSecrets,
    /// RFC 3339, OAuth 2.0 only.
    pub expires_at: Option<String>,
    pub scope: Option<String>,
    /// RFC 3339: when the grant itself ends, when the provider says
    /// (`fetch::grant::grant_expiry`).
    pub grant_expires_at: Option<String>,
}

/// A link as shown to people and scripts: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub id: i64,
    pub patient: String,
    pub provider: String,
    pub scheme: String,
    pub remote_patient: String,
    pub state: String,
    pub state_reason: Option<String>,
    pub last_sync: Option<String>,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    pub failures: i64,
    pub next_due_at: Option<String>,
    pub expires_at: Option<String>,
    pub scope: Option<String>,
    pub created_at: String,
    /// Who the patient is at the provider, as last read (`[providers.identity]`).
    pub remote_identity: Option<RemoteIdentityView>,
    /// When the patient's grant at the provider ends (RFC 3339), if known.
    pub grant_expires_at: Option<String>,
}

/// A link's remote identity and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteIdentityView {
    #[serde(flatten)]
    pub identity: crate::identity::RemoteIdentity,
    pub read_at: Option<String>,
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
}

impl ClaimedLink {
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

/// Why a link could not be claimed for a sync.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("link {0} does not exist")]
    NotFound(i64),
    #[error("link {id} is {state}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NotActive {
        id: i64,
        state: String,
        reason: Option<String>,
    },
    #[error(
        "link {id} was synced by another worker since this pass read it (next due at {next_due})"
    )]
    NoLongerDue { id: i64, next_due: String },
    #[error("link {id} is being synced by {holder} until {until}")]
    Busy {
        id: i64,
        holder: String,
        until: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ClaimError {
    fn from(e: rusqlite::Error) -> ClaimError {
        ClaimError::Store(e.into())
    }
}

/// What a pull adds to the import's (or the failure's) transaction.
pub struct PullRecord<'a> {
    pub link_id: i64,
    pub patient: &'a str,
    pub holder: &'a str,
    /// JSON array of the requests made, URLs without secrets.
    pub http_trail: &'a str,
    /// One audit detail per provider access (JSON).
    pub accesses: &'a [serde_json::Value],
    /// Permanent redirects to remember: (from, to, status).
    pub moves: &'a [(String, String, u16)],
    /// When the link is due again follows from the outcome and this.
    pub schedule: Schedule,
    /// The remote identity read by this pull, and the guard's verdict.
    pub identity: Option<&'a super::identity::IdentityWrite>,
}

/// A pull that stored no document.
pub struct FailedPull<'a> {
    pub patient: &'a PatientId,
    pub source: &'a str,
    pub trigger: &'a str,
    pub started_at: &'a str,
    pub actor: &'a str,
    pub error: &'a str,
    /// `failed` (try again on schedule), `retry_later` (the provider asked us
    /// to wait) or `needs_relink` (the consent is gone: raise `link_broken`).
    pub outcome: &'a str,
    /// When the provider said to come back (RFC 3339), for `retry_later`.
    pub retry_at: Option<&'a str>,
    pub record: PullRecord<'a>,
}

/// A link's sealed fields, selected after `VIEW_COLUMNS` (columns 18–21).
const SEALED_COLUMNS: &str = "key_id, token, token_secret, refresh_token";

/// A link read with `VIEW_COLUMNS, SEALED_COLUMNS`, for `holder`.
fn claimed(r: &rusqlite::Row<'_>, holder: &str) -> rusqlite::Result<ClaimedLink> {
    Ok(ClaimedLink {
        view: view(r)?,
        holder: holder.to_string(),
        key_id: r.get(18)?,
        token: r.get(19)?,
        token_secret: r.get(20)?,
        refresh_token: r.get(21)?,
        moves: Vec::new(),
    })
}

const VIEW_COLUMNS: &str =
    "id, patient_id, provider, scheme, remote_patient, state, state_reason, last_sync_at,
    last_outcome, last_error, failures, next_due_at, expires_at, scope, created_at,
    remote_identity, identity_read_at, grant_expires_at";

fn view(r: &rusqlite::Row<'_>) -> rusqlite::Result<LinkView> {
    Ok(LinkView {
        id: r.get(0)?,
        patient: r.get(1)?,
        provider: r.get(2)?,
        scheme: r.get(3)?,
        remote_patient: r.get(4)?,
        state: r.get(5)?,
        state_reason: r.get(6)?,
        last_sync: r.get(7)?,
        last_outcome: r.get(8)?,
        last_error: r.get(9)?,
        failures: r.get(10)?,
        next_due_at: r.get(11)?,
        expires_at: r.get(12)?,
        scope: r.get(13)?,
        created_at: r.get(14)?,
        remote_identity: r
            .get::<_, Option<String>>(15)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .map(|identity| RemoteIdentityView {
                identity,
                read_at: r.get(16).ok().flatten(),
            }),
        grant_expires_at: r.get(17)?,
    })
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
    ) -> Result<(i64, bool), StoreError> {
        let tx = self.tx()?;
        super::imports::require_patient(&tx, new.patient)?;
        let at = now();
        let live: Option<(i64, String)> = tx
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
                tx.cached_execute(
                    "INSERT INTO links (patient_id, provider, scheme, remote_patient, state, key_id, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?6)",
                    params![
                        new.patient.as_str(),
                        new.provider,
                        new.secrets.scheme(),
                        new.remote_patient,
                        key.id(),
                        at
                    ],
                )?;
                (tx.last_insert_rowid(), false)
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
                new.expires_at,
                new.scope,
                at,
                new.grant_expires_at
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
            "SELECT {VIEW_COLUMNS} FROM links WHERE (?1 IS NULL OR patient_id = ?1) ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([patient.map(PatientId::as_str)], view)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One link.
    pub fn link(&self, id: i64) -> Result<Option<LinkView>, StoreError> {
        let sql = format!("SELECT {VIEW_COLUMNS} FROM links WHERE id = ?1");
        Ok(self.conn.cached_row(&sql, [id], view).optional()?)
    }

    /// Takes the link's lease for a sync: the link must be active and not
    /// held by another sync (an expired lease is taken over).
    pub fn claim_link(
        &mut self,
        id: i64,
        holder: &str,
        ttl: chrono::Duration,
    ) -> Result<ClaimedLink, ClaimError> {
        self.claim(id, holder, ttl, false)
    }

    /// [`Store::claim_link`] for a scheduled sync: the link must still be
    /// due when it is claimed. A pass reads its due links once; another
    /// worker may sync one of them a moment later, and that sync moved the
    /// link's `next_due_at` into the future — it is not synced twice.
    pub fn claim_due_link(
        &mut self,
        id: i64,
        holder: &str,
        ttl: chrono::Duration,
    ) -> Result<ClaimedLink, ClaimError> {
        self.claim(id, holder, ttl, true)
    }

    fn claim(
        &mut self,
        id: i64,
        holder: &str,
        ttl: chrono::Duration,
        due_only: bool,
    ) -> Result<ClaimedLink, ClaimError> {
        let tx = self.tx()?;
        let at = chrono::Utc::now();
        let now_text = super::rfc3339(at);
        let row = tx
            .cached_row(
                &format!(
                    "SELECT {VIEW_COLUMNS}, {SEALED_COLUMNS}, lease_holder, lease_until FROM links WHERE id = ?1"
                ),
                [id],
                |r| {
                    Ok((
                        claimed(r, holder)?,
                        r.get::<_, Option<String>>(22)?,
                        r.get::<_, Option<String>>(23)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut link, lease, until)) = row else {
            return Err(ClaimError::NotFound(id));
        };
        if link.view.state != "active" {
            return Err(ClaimError::NotActive {
                id,
                state: link.view.state,
                reason: link.view.state_reason,
            });
        }
        if due_only
            && let Some(next_due) = link.view.next_due_at.as_ref()
            && *next_due > now_text
        {
            return Err(ClaimError::NoLongerDue {
                id,
                next_due: next_due.clone(),
            });
        }
        if let (Some(other), Some(until)) = (lease, until)
            && until > now_text
        {
            return Err(ClaimError::Busy {
                id,
                holder: other,
                until,
            });
        }
        tx.prepare_cached("UPDATE links SET lease_holder = ?2, lease_until = ?3 WHERE id = ?1")?
            .execute(params![id, holder, super::rfc3339(at + ttl)])?;
        link.moves = {
            let mut stmt =
                tx.prepare("SELECT from_url, to_url FROM link_moves WHERE link_id = ?1")?;
            stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok(link)
    }

    /// A link's view and sealed fields without taking its lease (for
    /// revoking a link that a sync holds or that needs re-linking).
    pub fn peek_link(&self, id: i64) -> Result<Option<ClaimedLink>, StoreError> {
        let sql = format!("SELECT {VIEW_COLUMNS}, {SEALED_COLUMNS} FROM links WHERE id = ?1");
        Ok(self
            .conn
            .cached_row(&sql, [id], |r| claimed(r, ""))
            .optional()?)
    }

    /// Gives a lease back without recording a sync (the sync never started).
    pub fn release_link(&mut self, id: i64, holder: &str) -> Result<(), StoreError> {
        self.conn.cached_execute(
            "UPDATE links SET lease_holder = NULL, lease_until = NULL WHERE id = ?1 AND lease_holder = ?2",
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
        expires_at: Option<&str>,
        scope: Option<&str>,
        audit: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let id = link.view.id;
        let tx = self.tx()?;
        let sealed_access = key.seal(id, "token", access_token.expose_secret());
        let sealed_refresh =
            refresh_token.map(|t| key.seal(id, "refresh_token", t.expose_secret()));
        let changed = tx.cached_execute(
            "UPDATE links SET token = ?3, refresh_token = COALESCE(?4, refresh_token), key_id = ?5, expires_at = ?6,
             scope = COALESCE(?7, scope), updated_at = ?8 WHERE id = ?1 AND lease_holder = ?2 AND key_id = ?5",
            params![id, link.holder, sealed_access, sealed_refresh, key.id(), expires_at, scope, now()],
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
        link.view.expires_at = expires_at.map(str::to_string);
        Ok(())
    }

    /// Marks a link revoked (after the provider's revocation endpoint, when
    /// there is one, was called by the caller).
    pub fn revoke_link(
        &mut self,
        id: i64,
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
        if link.state == "revoked" {
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
            state: "revoked".into(),
            state_reason: Some(reason.to_string()),
            ..link
        })
    }

    /// Records a pull that stored no document: the failed sync, the link's
    /// new state, a `link_broken` exception when the consent is gone, and
    /// the provider accesses — in one transaction.
    pub fn write_failed_pull(&mut self, w: &FailedPull<'_>) -> Result<i64, StoreError> {
        let tx = self.tx()?;
        let ended = now();
        tx.cached_execute(
            "INSERT INTO syncs (patient_id, source, trigger, started_at, ended_at, outcome, error, http_trail, link_id)
             VALUES (?1, ?2, ?3, ?4, ?5, 'failed', ?6, ?7, ?8)",
            params![
                w.patient.as_str(),
                w.source,
                w.trigger,
                w.started_at,
                ended,
                w.error,
                w.record.http_trail,
                w.record.link_id
            ],
        )?;
        let sync_id = tx.last_insert_rowid();
        if w.outcome == "needs_relink" {
            let open: bool = tx.cached_row(
                "SELECT EXISTS(SELECT 1 FROM exceptions WHERE state = 'open' AND kind = ?1 AND patient_id = ?2
                 AND source = ?3)",
                params![ExceptionKind::LinkBroken.as_str(), w.patient.as_str(), w.source],
                |r| r.get(0),
            )?;
            if !open {
                tx.cached_execute(
                    "INSERT INTO exceptions (patient_id, sync_id, source, kind, severity, state, detail, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7)",
                    params![
                        w.patient.as_str(),
                        sync_id,
                        w.source,
                        ExceptionKind::LinkBroken.as_str(),
                        ExceptionKind::LinkBroken.severity().as_str(),
                        format!(
                            "link {} to {} is broken: {}. The patient must consent again; then hand the new tokens to: rxsync link add --patient {} --provider {}",
                            w.record.link_id, w.source, w.error, w.patient, w.source
                        ),
                        ended
                    ],
                )?;
            }
            tx.cached_execute(
                "UPDATE links SET state = 'needs_relink', state_reason = ?2, updated_at = ?3 WHERE id = ?1",
                params![w.record.link_id, w.error, ended],
            )?;
        }
        finish_pull(
            &tx,
            &w.record,
            w.outcome,
            Some(w.error),
            w.retry_at,
            sync_id,
        )?;
        super::audit::append(
            &tx,
            w.actor,
            "pull.failed",
            Some(w.patient.as_str()),
            Some(&format!("link:{}", w.record.link_id)),
            &serde_json::json!({"sync_id": sync_id, "outcome": w.outcome, "error": w.error}),
        )?;
        tx.commit()?;
        Ok(sync_id)
    }
}

/// The link's part of a pull's last transaction: its sync outcome, the
/// lease given back, remembered moves and one audit row per provider access.
pub(super) fn finish_pull(
    tx: &Connection,
    r: &PullRecord<'_>,
    outcome: &str,
    error: Option<&str>,
    retry_at: Option<&str>,
    sync_id: i64,
) -> Result<(), StoreError> {
    let at = now();
    let failed = !matches!(outcome, "imported" | "unchanged");
    let failures: u32 = tx
        .cached_row(
            "SELECT failures FROM links WHERE id = ?1",
            [r.link_id],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .map_or(0, |f| u32::try_from(f).unwrap_or(u32::MAX));
    let retry_at = retry_at
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let next_due = r
        .schedule
        .next_due(
            outcome,
            failures,
            retry_at,
            chrono::Utc::now(),
            rand::random::<f64>(),
        )
        .map(super::rfc3339);
    let released = tx
        .prepare_cached(
            "UPDATE links SET last_sync_at = ?3, last_outcome = ?4, last_error = ?5,
             failures = CASE WHEN ?6 THEN failures + 1 ELSE 0 END,
             next_due_at = ?7, lease_holder = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_holder = ?2",
        )?
        .execute(params![
            r.link_id, r.holder, at, outcome, error, failed, next_due
        ])?;
    if released != 1 {
        return Err(StoreError::Conflict(format!(
            "link {} is no longer held by this sync (its lease expired); nothing was stored",
            r.link_id
        )));
    }
    tx.prepare_cached("UPDATE syncs SET link_id = ?2, http_trail = ?3 WHERE id = ?1")?
        .execute(params![sync_id, r.link_id, r.http_trail])?;
    // Only a sync that worked teaches a new address (a 301 to a page that
    // then failed is not to be trusted).
    let moves: &[(String, String, u16)] = if failed { &[] } else { r.moves };
    for (from, to, status) in moves {
        tx.cached_execute(
            "INSERT INTO link_moves (link_id, from_url, to_url, status, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (link_id, from_url) DO UPDATE SET to_url = excluded.to_url, status = excluded.status,
             at = excluded.at",
            params![r.link_id, from, to, status, at],
        )?;
        super::audit::append(
            tx,
            "rxsync",
            "link.moved",
            Some(r.patient),
            Some(&format!("link:{}", r.link_id)),
            &serde_json::json!({"from": from, "to": to, "status": status}),
        )?;
    }
    if let Some(w) = r.identity {
        super::identity::write_identity(tx, r.link_id, r.patient, Some(sync_id), w)?;
    }
    for access in r.accesses {
        super::audit::append(
            tx,
            "rxsync",
            "provider.access",
            Some(r.patient),
            Some(&format!("link:{}", r.link_id)),
            access,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewPatient;

    fn store_with_patient() -> (tempfile::TempDir, Store, PatientId) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("t.db")).expect("opens");
        let patient = PatientId::parse("P1").expect("id");
        store
            .add_patient(&NewPatient::with_id(patient.clone()), "test")
            .expect("patient");
        (dir, store, patient)
    }

    fn oauth2(access: &str, refresh: Option<&str>) -> LinkSecrets {
        LinkSecrets::Oauth2 {
            access_token: SecretString::from(access.to_string()),
            refresh_token: refresh.map(|r| SecretString::from(r.to_string())),
        }
    }

    fn add(store: &mut Store, patient: &PatientId, key: &VaultKey, s: LinkSecrets) -> (i64, bool) {
        store
            .add_link(
                &NewLink {
                    patient,
                    provider: "prov",
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

    #[test]
    fn dead_lease_holders_are_told_from_live_and_foreign_ones() {
        let own = lease_holder_name();
        let host = host_name();
        let me = std::process::id();
        assert!(!lease_holder_is_dead(&own, &own), "our own lease");
        assert!(
            lease_holder_is_dead(&format!("pid {me} on {host} (00000000)"), &own),
            "our pid under another name: a predecessor (a restarted container's pid 1)"
        );
        assert!(!lease_holder_is_dead("pid 1 on some-other-host (1)", &own));
        assert!(!lease_holder_is_dead("garbage", &own));
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let gone = child.id();
        child.wait().expect("wait");
        assert!(lease_holder_is_dead(
            &format!("pid {gone} on {host} (1)"),
            &own
        ));
        let mut live = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn");
        assert!(!lease_holder_is_dead(
            &format!("pid {} on {host} (1)", live.id()),
            &own
        ));
        let _ = live.kill();
        let _ = live.wait();
    }

    #[test]
    fn a_scheduled_claim_refuses_a_link_synced_since_the_pass_read_it() {
        let (_dir, mut store, patient) = store_with_patient();
        let (key, _) = VaultKey::generate();
        let (id, _) = add(&mut store, &patient, &key, oauth2("a1", Some("r1")));
        // Never synced: due.
        store
            .claim_due_link(id, "one", chrono::Duration::minutes(5))
            .expect("due");
        // Another worker synced it meanwhile: next due in an hour, lease gone.
        store
            .conn
            .execute(
                "UPDATE links SET next_due_at = ?2, lease_holder = NULL, lease_until = NULL
                 WHERE id = ?1",
                params![
                    id,
                    super::super::rfc3339(chrono::Utc::now() + chrono::Duration::hours(1))
                ],
            )
            .expect("reschedule");
        let refused = store.claim_due_link(id, "two", chrono::Duration::minutes(5));
        assert!(
            matches!(refused, Err(ClaimError::NoLongerDue { id: i, .. }) if i == id),
            "{:?}",
            refused.err()
        );
        // Asked for now (import --patient), it is claimed all the same.
        store
            .claim_link(id, "two", chrono::Duration::minutes(5))
            .expect("an on-demand claim ignores the schedule");
    }

    #[test]
    fn one_sync_per_link_and_an_expired_lease_is_taken_over() {
        let (_dir, mut store, patient) = store_with_patient();
        let (key, _) = VaultKey::generate();
        let (id, relinked) = add(&mut store, &patient, &key, oauth2("a1", Some("r1")));
        assert!(!relinked);
        let first = store
            .claim_link(id, "one", chrono::Duration::minutes(5))
            .expect("claims");
        match first.secrets(&key).expect("opens") {
            LinkSecrets::Oauth2 {
                access_token,
                refresh_token,
            } => {
                assert_eq!(access_token.expose_secret(), "a1");
                assert_eq!(refresh_token.expect("refresh").expose_secret(), "r1");
            }
            LinkSecrets::Oauth1 { .. } => panic!("oauth2 expected"),
        }
        let busy = store.claim_link(id, "two", chrono::Duration::minutes(5));
        assert!(
            matches!(busy, Err(ClaimError::Busy { .. })),
            "second claim refused"
        );
        // An expired lease (a crashed sync) is taken over.
        store
            .conn
            .execute(
                "UPDATE links SET lease_until = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
                [id],
            )
            .expect("expire");
        let mut second = store
            .claim_link(id, "two", chrono::Duration::minutes(5))
            .expect("takes over");
        // The first holder can no longer store tokens; the second can.
        let mut stale = first;
        let refused = store.store_refreshed_tokens(
            &mut stale,
            &key,
            &SecretString::from("a2".to_string()),
            None,
            None,
            None,
            &serde_json::json!({}),
        );
        assert!(matches!(refused, Err(StoreError::Conflict(_))));
        store
            .store_refreshed_tokens(
                &mut second,
                &key,
                &SecretString::from("a2".to_string()),
                None,
                None,
                None,
                &serde_json::json!({}),
            )
            .expect("holder stores");
        // No refresh token in the answer: the old one is kept.
        match second.secrets(&key).expect("opens") {
            LinkSecrets::Oauth2 {
                access_token,
                refresh_token,
            } => {
                assert_eq!(access_token.expose_secret(), "a2");
                assert_eq!(refresh_token.expect("kept").expose_secret(), "r1");
            }
            LinkSecrets::Oauth1 { .. } => panic!("oauth2 expected"),
        }
    }

    #[test]
    fn a_broken_link_raises_one_exception_and_relinking_resolves_it() {
        let (_dir, mut store, patient) = store_with_patient();
        let (key, _) = VaultKey::generate();
        let (id, _) = add(&mut store, &patient, &key, oauth2("a1", Some("r1")));
        for _ in 0..2 {
            // The second round finds the link needs_relink and cannot claim it.
            let Ok(link) = store.claim_link(id, "h", chrono::Duration::minutes(5)) else {
                continue;
            };
            store
                .write_failed_pull(&FailedPull {
                    patient: &patient,
                    source: "prov",
                    trigger: "pull",
                    started_at: "2026-01-01T00:00:00.000Z",
                    actor: "test",
                    error: "invalid_grant",
                    outcome: "needs_relink",
                    retry_at: None,
                    record: PullRecord {
                        link_id: id,
                        patient: "P1",
                        holder: &link.holder,
                        http_trail: "[]",
                        accesses: &[serde_json::json!({"url": "http://x/"})],
                        moves: &[],
                        identity: None,
                        schedule: Schedule {
                            interval: std::time::Duration::from_secs(60),
                            jitter: 0.0,
                            backoff_base: std::time::Duration::from_secs(1),
                            backoff_max: std::time::Duration::from_secs(2),
                        },
                    },
                })
                .expect("records");
        }
        let view = store.link(id).expect("reads").expect("exists");
        assert_eq!(view.state, "needs_relink");
        assert!(matches!(
            store.claim_link(id, "h", chrono::Duration::minutes(5)),
            Err(ClaimError::NotActive { .. })
        ));
        let open = |store: &Store| -> i64 {
            store
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM exceptions WHERE kind = 'link_broken' AND state = 'open'",
                    [],
                    |r| r.get(0),
                )
                .expect("count")
        };
        assert_eq!(open(&store), 1);
        let (again, relinked) = add(&mut store, &patient, &key, oauth2("a3", Some("r3")));
        assert_eq!((again, relinked), (id, true));
        assert_eq!(open(&store), 0);
        assert_eq!(
            store.link(id).expect("reads").expect("exists").state,
            "active"
        );
        // The scheme cannot change under a live link.
        let err = store.add_link(
            &NewLink {
                patient: &patient,
                provider: "prov",
                remote_patient: "r1",
                secrets: LinkSecrets::Oauth1 {
                    token: SecretString::from("t".to_string()),
                    token_secret: SecretString::from("s".to_string()),
                },
                expires_at: None,
                scope: None,
                grant_expires_at: None,
            },
            &key,
            "test",
        );
        assert!(matches!(err, Err(StoreError::Conflict(_))));
        let revoked = store.revoke_link(id, "test", "done").expect("revokes");
        assert_eq!(revoked.state, "revoked");
        let sealed: Option<Vec<u8>> = store
            .conn
            .query_row("SELECT token FROM links WHERE id = ?1", [id], |r| r.get(0))
            .expect("reads");
        assert!(sealed.is_none(), "revoking drops the sealed tokens");
        // After a revocation the patient may link again: a new link.
        let (fresh, relinked) = add(&mut store, &patient, &key, oauth2("a4", None));
        assert!(fresh != id && !relinked);
    }
}

/// A link that is due for a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueLink {
    pub id: i64,
    pub provider: String,
}

impl Store {
    /// Active links due at `now` and not held by a live lease, soonest
    /// first (never-synced links first of all).
    /// `skip_providers`: providers not to read (paused ones).
    pub fn due_links(
        &self,
        now: &str,
        limit: usize,
        skip_providers: &[String],
    ) -> Result<Vec<DueLink>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, provider FROM links
             WHERE state = 'active' AND (next_due_at IS NULL OR next_due_at <= ?1)
               AND (lease_until IS NULL OR lease_until <= ?1)
               AND provider NOT IN (SELECT value FROM json_each(?3))
             ORDER BY next_due_at IS NOT NULL, next_due_at, id LIMIT ?2",
        )?;
        let skip = serde_json::to_string(skip_providers).unwrap_or_else(|_| "[]".into());
        let rows = stmt.query_map(params![now, limit as i64, skip], |r| {
            Ok(DueLink {
                id: r.get(0)?,
                provider: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The earliest `next_due_at` of the active links (None: none scheduled).
    pub fn next_due_at(&self) -> Result<Option<String>, StoreError> {
        Ok(self.conn.cached_row(
            "SELECT MIN(COALESCE(next_due_at, '')) FROM links WHERE state = 'active'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Gives back the leases of processes on this machine that no longer
    /// run (a daemon killed mid-sync), so their links are due again at once.
    /// `own` is the caller's holder name: a holder with the caller's pid but
    /// another name was a previous process with the same pid (a restarted
    /// container's pid 1). Returns how many were released.
    pub fn release_dead_leases(&mut self, own: &str) -> Result<usize, StoreError> {
        let holders: Vec<String> = {
            let mut stmt = self.conn.prepare(
                "SELECT DISTINCT lease_holder FROM links WHERE lease_holder IS NOT NULL",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut released = 0;
        for h in holders {
            if lease_holder_is_dead(&h, own) {
                released += self.conn.cached_execute(
                    "UPDATE links SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ?1",
                    [&h],
                )?;
            }
        }
        Ok(released)
    }

    /// Gives back every lease held by `holder` (a shutdown that abandoned syncs).
    pub fn release_leases_of(&mut self, holder: &str) -> Result<usize, StoreError> {
        Ok(self.conn.cached_execute(
            "UPDATE links SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ?1",
            [holder],
        )?)
    }

    /// Links by state, for metrics.
    pub fn link_state_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM links GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Open exceptions by kind, for metrics.
    pub fn open_exception_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, COUNT(*) FROM exceptions WHERE state = 'open' GROUP BY kind ORDER BY kind",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// This process's name for the leases it takes: `pid N on HOST (random)`.
pub fn lease_holder_name() -> String {
    format!(
        "pid {} on {} ({:08x})",
        std::process::id(),
        host_name(),
        rand::random::<u32>()
    )
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a lease holder is a process of this host that no longer runs.
/// Holders of other hosts (or another PID namespace's view), and anything
/// unparsable, are left to their lease's expiry.
fn lease_holder_is_dead(holder: &str, own: &str) -> bool {
    let Some((pid, host)) = holder
        .strip_prefix("pid ")
        .and_then(|r| r.split_once(" on "))
        .and_then(|(pid, rest)| {
            let host = rest.rsplit_once(" (").map_or(rest, |(h, _)| h);
            pid.parse::<i32>().ok().map(|p| (p, host))
        })
    else {
        return false;
    };
    if host != host_name() || pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        // Our pid: ours if it is our name, else a dead predecessor's.
        return holder != own;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

impl Store {
    /// The vault key ids the links are sealed with.
    pub fn link_key_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT key_id FROM links ORDER BY key_id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
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
        let busy: Option<(i64, String)> = tx
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
            i64,
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
            stmt.query_map([], |r| {
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
