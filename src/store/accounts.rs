//! Accounts of the review web application: users and their roles, login
//! sessions, API tokens and recent login attempts.
//!
//! The store never sees a secret: it keeps the argon2id PHC string of a
//! password (hashed by the caller, `web::auth`), and the SHA-256 of a
//! session id or an API token, which the caller computes from what the
//! client presents. A disabled user's sessions and tokens stop working at
//! once, because every lookup joins the user and checks `disabled_at`.

use super::db::Row;
use super::{Store, StoreError, now};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// What a user may do: clinicians resolve exceptions; admins also manage
/// links and users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Clinician,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "clinician" => Ok(Role::Clinician),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (expected clinician or admin)"
            )),
        }
    }
}

/// A user's login name: 1 to 64 characters of letters, digits and `._@-`,
/// so that it can stand in the audit log and in `resolved_by` as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<UserName, String> {
        if s.is_empty() || s.len() > 64 {
            return Err("a user name has 1 to 64 characters".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
        {
            return Err(format!(
                "user name {s:?}: only letters, digits and . _ @ - are allowed"
            ));
        }
        Ok(UserName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user as shown to people: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub disabled_at: Option<String>,
}

/// Failed login attempts that count against a name and an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures for this name since its last success (within the window).
    pub by_name: u32,
    /// Failures from this address (within the window), any name.
    pub by_remote: u32,
    /// The time of the latest failure counted (RFC 3339).
    pub last: Option<String>,
}

const USER_COLUMNS: &str = "u.id, u.name, u.role, u.created_at, u.disabled_at";

fn row_to_user(r: &Row<'_>) -> rusqlite::Result<UserView> {
    let role: String = r.get(2)?;
    Ok(UserView {
        id: r.get(0)?,
        name: r.get(1)?,
        role: role.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                Box::<dyn std::error::Error + Send + Sync>::from(e),
            )
        })?,
        created_at: r.get(3)?,
        disabled_at: r.get(4)?,
    })
}

impl Store {
    /// Adds a user with an already hashed password; an existing name is a conflict.
    pub fn add_user(
        &mut self,
        name: &UserName,
        role: Role,
        password_hash: &str,
        actor: &str,
    ) -> Result<UserView, StoreError> {
        let tx = self.tx()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
            [name.as_str()],
            |r| r.get(0),
        )?;
        if exists {
            return Err(StoreError::Conflict(format!("user {name} already exists")));
        }
        tx.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name.as_str(), role.as_str(), password_hash, now()],
        )?;
        super::audit::append(
            &tx,
            actor,
            "user.add",
            None,
            Some(&format!("user:{name}")),
            &serde_json::json!({"role": role.as_str()}),
        )?;
        tx.commit()?;
        self.user(name)?.ok_or_else(|| StoreError::NotFound {
            what: "user",
            id: name.to_string(),
        })
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserView>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"
        ))?;
        let rows = stmt
            .query_map((), row_to_user)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// One user, enabled or not.
    pub fn user(&self, name: &UserName) -> Result<Option<UserView>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = ?1"),
                [name.as_str()],
                row_to_user,
            )
            .optional()?)
    }

    /// The user and password hash to check a login against (None: no such
    /// user, or disabled).
    pub fn login_candidate(&self, name: &str) -> Result<Option<(UserView, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, u.password_hash FROM users u
                     WHERE u.name = ?1 AND u.disabled_at IS NULL"
                ),
                [name],
                |r| Ok((row_to_user(r)?, r.get(5)?)),
            )
            .optional()?)
    }

    /// Disables a user: no more logins; their sessions end and their API
    /// tokens are revoked, in the same transaction.
    pub fn disable_user(&mut self, name: &UserName, actor: &str) -> Result<UserView, StoreError> {
        let tx = self.tx()?;
        let at = now();
        let id: Option<(i64, Option<String>)> = tx
            .query_row(
                "SELECT id, disabled_at FROM users WHERE name = ?1",
                [name.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, disabled)) = id else {
            return Err(StoreError::NotFound {
                what: "user",
                id: name.to_string(),
            });
        };
        if disabled.is_some() {
            return Err(StoreError::Conflict(format!(
                "user {name} is already disabled"
            )));
        }
        tx.execute(
            "UPDATE users SET disabled_at = ?1 WHERE id = ?2",
            params![at, id],
        )?;
        let sessions = tx.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL",
            params![at, id],
        )?;
        let tokens = tx.execute(
            "UPDATE api_tokens SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
            params![at, id],
        )?;
        super::audit::append(
            &tx,
            actor,
            "user.disable",
            None,
            Some(&format!("user:{name}")),
            &serde_json::json!({"sessions_ended": sessions, "tokens_revoked": tokens}),
        )?;
        tx.commit()?;
        self.user(name)?.ok_or_else(|| StoreError::NotFound {
            what: "user",
            id: name.to_string(),
        })
    }

    /// Records a login attempt (and audits it), and prunes attempts older
    /// than a day.
    pub fn record_login_attempt(
        &mut self,
        name: &str,
        remote: Option<&str>,
        ok: bool,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let at = now();
        tx.execute(
            "INSERT INTO login_attempts (at, name, remote, ok) VALUES (?1, ?2, ?3, ?4)",
            params![at, name, remote, ok],
        )?;
        let day_ago = super::rfc3339(chrono::Utc::now() - chrono::Duration::days(1));
        tx.execute("DELETE FROM login_attempts WHERE at < ?1", [day_ago])?;
        super::audit::append(
            &tx,
            name,
            if ok { "login" } else { "login.failed" },
            None,
            Some(&format!("user:{name}")),
            &serde_json::json!({"remote": remote}),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Failed attempts since `since` (RFC 3339) for a name (only after its
    /// last success) and from an address.
    pub fn login_failures(
        &self,
        name: &str,
        remote: Option<&str>,
        since: &str,
    ) -> Result<LoginFailures, StoreError> {
        // `ok` is compared with a parameter (a boolean on PostgreSQL, 0/1
        // on SQLite), and "after the last success" is "no success at or
        // after it" (no empty-text default for a time).
        let (by_name, last): (u32, Option<String>) = self.conn.query_row(
            "SELECT COUNT(*), MAX(f.at) FROM login_attempts f WHERE f.name = ?1 AND f.ok = ?3 AND f.at >= ?2
             AND NOT EXISTS (SELECT 1 FROM login_attempts s WHERE s.name = ?1 AND s.ok = ?4 AND s.at >= f.at)",
            params![name, since, false, true],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (by_remote, last_remote): (u32, Option<String>) = match remote {
            Some(remote) => self.conn.query_row(
                "SELECT COUNT(*), MAX(at) FROM login_attempts WHERE remote = ?1 AND ok = ?3 AND at >= ?2",
                params![remote, since, false],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
            None => (0, None),
        };
        Ok(LoginFailures {
            by_name,
            by_remote,
            last: last.max(last_remote),
        })
    }

    /// Starts a session for a user (the caller holds the id; only its hash is stored).
    pub fn create_session(
        &mut self,
        user_id: i64,
        id_hash: &str,
        expires_at: &str,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let at = now();
        // Sessions are not a record: drop the ones long gone.
        tx.execute(
            "DELETE FROM sessions WHERE expires_at < ?1 OR ended_at IS NOT NULL",
            [&at],
        )?;
        tx.execute(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![id_hash, user_id, at, expires_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The user of a live session (not ended, not expired, user enabled).
    pub fn session_user(&self, id_hash: &str) -> Result<Option<UserView>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id_hash = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2 AND u.disabled_at IS NULL"
                ),
                params![id_hash, now()],
                row_to_user,
            )
            .optional()?)
    }

    /// Ends a session (logout) and audits it; an unknown session changes nothing.
    pub fn end_session(&mut self, id_hash: &str) -> Result<(), StoreError> {
        let tx = self.tx()?;
        let user: Option<String> = tx
            .query_row(
                "SELECT u.name FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id_hash = ?1 AND s.ended_at IS NULL",
                [id_hash],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(name) = user {
            tx.execute(
                "UPDATE sessions SET ended_at = ?1 WHERE id_hash = ?2",
                params![now(), id_hash],
            )?;
            super::audit::append(
                &tx,
                &name,
                "logout",
                None,
                Some(&format!("user:{name}")),
                &serde_json::json!({}),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores the hash of a new API token for an enabled user; returns the token's id.
    pub fn add_api_token(
        &mut self,
        name: &UserName,
        token_hash: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let tx = self.tx()?;
        let user: Option<(i64, Option<String>)> = tx
            .query_row(
                "SELECT id, disabled_at FROM users WHERE name = ?1",
                [name.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let user_id = match user {
            None => {
                return Err(StoreError::NotFound {
                    what: "user",
                    id: name.to_string(),
                });
            }
            Some((_, Some(_))) => {
                return Err(StoreError::Refused(format!("user {name} is disabled")));
            }
            Some((id, None)) => id,
        };
        let inserted: i64 = tx.query_row(
            "INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES (?1, ?2, ?3) RETURNING id",
            params![user_id, token_hash, now()],
            |r| r.get(0),
        )?;
        let id = inserted;
        super::audit::append(
            &tx,
            actor,
            "token.create",
            None,
            Some(&format!("user:{name}")),
            &serde_json::json!({"token_id": id}),
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// The user an API token belongs to (not revoked, user enabled).
    pub fn token_user(&self, token_hash: &str) -> Result<Option<UserView>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL"
                ),
                [token_hash],
                row_to_user,
            )
            .optional()?)
    }

    /// Appends an audit record for an action outside the other store
    /// functions (a page of patient data read, a refused request).
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        patient: Option<&str>,
        subject: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        super::audit::append(&self.conn, actor, action, patient, subject, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn user_names_are_checked() {
        for ok in ["dr.lee", "a", "nurse_1@ward-3"] {
            assert!(UserName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "dr lee", "<b>", &"x".repeat(65), "ünï"] {
            assert!(UserName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_disabled_user_loses_sessions_and_tokens() {
        let (_d, mut s) = store();
        let name = UserName::parse("dr.lee").expect("name");
        let user = s
            .add_user(&name, Role::Clinician, "$argon2id$fake", "test")
            .expect("add");
        assert!(matches!(
            s.add_user(&name, Role::Admin, "x", "test"),
            Err(StoreError::Conflict(_))
        ));
        s.create_session(user.id, "sess", "9999-01-01T00:00:00.000Z")
            .expect("session");
        s.add_api_token(&name, "tok", "test").expect("token");
        assert_eq!(
            s.session_user("sess").expect("q").map(|u| u.id),
            Some(user.id)
        );
        assert_eq!(s.token_user("tok").expect("q").map(|u| u.id), Some(user.id));
        s.disable_user(&name, "test").expect("disable");
        assert_eq!(s.session_user("sess").expect("q"), None);
        assert_eq!(s.token_user("tok").expect("q"), None);
        assert!(s.login_candidate("dr.lee").expect("q").is_none());
        assert!(matches!(
            s.add_api_token(&name, "tok2", "test"),
            Err(StoreError::Refused(_))
        ));
    }

    #[test]
    fn expired_and_ended_sessions_find_no_user() {
        let (_d, mut s) = store();
        let name = UserName::parse("a").expect("name");
        let user = s.add_user(&name, Role::Admin, "h", "t").expect("add");
        s.create_session(user.id, "old", "2000-01-01T00:00:00.000Z")
            .expect("session");
        assert_eq!(s.session_user("old").expect("q"), None);
        s.create_session(user.id, "live", "9999-01-01T00:00:00.000Z")
            .expect("session");
        s.end_session("live").expect("end");
        assert_eq!(s.session_user("live").expect("q"), None);
    }

    #[test]
    fn failures_count_since_the_last_success() {
        let (_d, mut s) = store();
        for _ in 0..3 {
            s.record_login_attempt("a", Some("127.0.0.1"), false)
                .expect("rec");
        }
        let f = s
            .login_failures("a", Some("127.0.0.1"), "2000-01-01")
            .expect("q");
        assert_eq!((f.by_name, f.by_remote), (3, 3));
        assert!(f.last.is_some());
        s.record_login_attempt("a", Some("127.0.0.1"), true)
            .expect("rec");
        let f = s
            .login_failures("a", Some("127.0.0.1"), "2000-01-01")
            .expect("q");
        assert_eq!((f.by_name, f.by_remote), (0, 3));
    }
}
