//! OAuth 2.0 grants and their tokens, as an authorization server keeps
//! them: access tokens that expire, refresh tokens that rotate, reuse of a
//! consumed refresh token that revokes the whole grant (the OAuth 2.0
//! Security BCP's reuse detection), revocation (RFC 7009) and
//! introspection (RFC 7662). Pure: the caller passes the clock and mints
//! the random token strings.

use std::collections::HashMap;

/// How many access tokens are kept before expired ones are swept out.
const MAX_ACCESS_TOKENS: usize = 100_000;

/// One consent: a client, a patient and a scope. Every token issued under
/// it dies with it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Grant {
    client_id: String,
    patient: String,
    scope: String,
    revoked: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct AccessToken {
    grant: u64,
    /// UTC epoch seconds; the token is refused from then on.
    expires_at: u64,
    /// False for a token issued "already refused" (admin `access_token_valid`).
    valid: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RefreshToken {
    grant: u64,
    /// Set when a rotation replaced it: using it again is reuse.
    consumed: bool,
}

/// How a client's refresh tokens behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshPolicy {
    /// Each refresh returns a new refresh token; the old one is consumed.
    Rotate,
    /// The response carries no refresh token; the old one stays valid.
    Omit,
    /// The same refresh token is returned again.
    Keep,
}

/// A token response's fields (RFC 6749 §5.1, plus SMART's `patient`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub scope: String,
    pub patient: String,
}

/// Why a refresh was refused (all are `invalid_grant` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshError {
    /// Unknown token, another client's, or its grant is revoked.
    Invalid,
    /// A consumed refresh token came back: the grant is now revoked.
    Reused,
}

/// What a valid access token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Access {
    pub client_id: String,
    pub patient: String,
    pub scope: String,
}

/// RFC 7662's answer for an active token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Introspection {
    pub client_id: String,
    pub patient: String,
    pub scope: String,
    /// Access tokens only.
    pub exp: Option<u64>,
    pub token_type: &'static str,
}

/// Every grant and token the server has issued.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct GrantStore {
    next_grant: u64,
    grants: HashMap<u64, Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
}

/// What a new grant needs.
pub(crate) struct NewGrant<'a> {
    pub client_id: &'a str,
    pub patient: &'a str,
    pub scope: &'a str,
    /// Lifetime of the first access token.
    pub expires_in: u64,
    /// False: the access token is refused from the start.
    pub access_token_valid: bool,
}

impl GrantStore {
    /// Records a consent and issues its first access and refresh tokens.
    pub fn grant(
        &mut self,
        new: NewGrant<'_>,
        now: u64,
        mint: &mut impl FnMut() -> String,
    ) -> Issued {
        self.next_grant += 1;
        let id = self.next_grant;
        self.grants.insert(
            id,
            Grant {
                client_id: new.client_id.to_string(),
                patient: new.patient.to_string(),
                scope: new.scope.to_string(),
                revoked: false,
            },
        );
        self.forget_expired(now);
        let access_token = mint();
        self.access.insert(
            access_token.clone(),
            AccessToken {
                grant: id,
                expires_at: now.saturating_add(new.expires_in),
                valid: new.access_token_valid,
            },
        );
        let refresh_token = mint();
        self.refresh.insert(
            refresh_token.clone(),
            RefreshToken {
                grant: id,
                consumed: false,
            },
        );
        Issued {
            access_token,
            expires_in: new.expires_in,
            refresh_token: Some(refresh_token),
            scope: new.scope.to_string(),
            patient: new.patient.to_string(),
        }
    }

    /// `grant_type=refresh_token` for an authenticated `client_id`.
    pub fn refresh(
        &mut self,
        client_id: &str,
        refresh_token: &str,
        policy: RefreshPolicy,
        ttl: u64,
        now: u64,
        mint: &mut impl FnMut() -> String,
    ) -> Result<Issued, RefreshError> {
        let Some(old) = self.refresh.get(refresh_token).cloned() else {
            return Err(RefreshError::Invalid);
        };
        let Some(grant) = self.grants.get(&old.grant).cloned() else {
            return Err(RefreshError::Invalid);
        };
        if grant.client_id != client_id || grant.revoked {
            return Err(RefreshError::Invalid);
        }
        if old.consumed {
            self.revoke_grant(old.grant);
            return Err(RefreshError::Reused);
        }
        self.forget_expired(now);
        let access_token = mint();
        self.access.insert(
            access_token.clone(),
            AccessToken {
                grant: old.grant,
                expires_at: now.saturating_add(ttl),
                valid: true,
            },
        );
        let refresh_token = match policy {
            RefreshPolicy::Omit => None,
            RefreshPolicy::Keep => Some(refresh_token.to_string()),
            RefreshPolicy::Rotate => {
                if let Some(used) = self.refresh.get_mut(refresh_token) {
                    used.consumed = true;
                }
                let new = mint();
                self.refresh.insert(
                    new.clone(),
                    RefreshToken {
                        grant: old.grant,
                        consumed: false,
                    },
                );
                Some(new)
            }
        };
        Ok(Issued {
            access_token,
            expires_in: ttl,
            refresh_token,
            scope: grant.scope,
            patient: grant.patient,
        })
    }

    /// What an access token grants, if it is known, valid, unexpired and
    /// its grant stands.
    pub fn access(&self, token: &str, now: u64) -> Option<Access> {
        let t = self.access.get(token)?;
        let grant = self.grants.get(&t.grant)?;
        (t.valid && now < t.expires_at && !grant.revoked).then(|| Access {
            client_id: grant.client_id.clone(),
            patient: grant.patient.clone(),
            scope: grant.scope.clone(),
        })
    }

    /// RFC 7009: revokes the grant `token` (access or refresh) belongs to,
    /// when it is `client_id`'s. Returns whether a grant was revoked; an
    /// unknown token, or another client's, changes nothing.
    pub fn revoke(&mut self, client_id: &str, token: &str) -> bool {
        let grant = self
            .access
            .get(token)
            .map(|t| t.grant)
            .or_else(|| self.refresh.get(token).map(|t| t.grant));
        match grant {
            Some(id)
                if self
                    .grants
                    .get(&id)
                    .is_some_and(|g| g.client_id == client_id && !g.revoked) =>
            {
                self.revoke_grant(id);
                true
            }
            _ => false,
        }
    }

    /// RFC 7662 for `client_id`: `None` (inactive) unless the token is
    /// usable and the client's own.
    pub fn introspect(&self, client_id: &str, token: &str, now: u64) -> Option<Introspection> {
        if let Some(access) = self.access(token, now) {
            let exp = self.access.get(token).map(|t| t.expires_at);
            return (access.client_id == client_id).then_some(Introspection {
                client_id: access.client_id,
                patient: access.patient,
                scope: access.scope,
                exp,
                token_type: "Bearer",
            });
        }
        let refresh = self.refresh.get(token).filter(|t| !t.consumed)?;
        let grant = self.grants.get(&refresh.grant)?;
        (!grant.revoked && grant.client_id == client_id).then(|| Introspection {
            client_id: grant.client_id.clone(),
            patient: grant.patient.clone(),
            scope: grant.scope.clone(),
            exp: None,
            token_type: "refresh_token",
        })
    }

    /// Past `MAX_ACCESS_TOKENS`, expired access tokens are forgotten (they
    /// are refused whether known or not), so that a long run stays bounded.
    fn forget_expired(&mut self, now: u64) {
        if self.access.len() >= MAX_ACCESS_TOKENS {
            self.access.retain(|_, t| now < t.expires_at);
        }
    }

    /// Revokes a grant and forgets its tokens (they are refused either way;
    /// forgetting keeps the maps from growing with dead tokens).
    fn revoke_grant(&mut self, id: u64) {
        if let Some(grant) = self.grants.get_mut(&id) {
            grant.revoked = true;
        }
        self.access.retain(|_, t| t.grant != id);
        // Consumed refresh tokens are kept (and keep answering "revoked"):
        // a later reuse must still be recognised as reuse, not as unknown.
        self.refresh.retain(|_, t| t.grant != id || t.consumed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Minter(u32);
    impl Minter {
        fn mint(&mut self) -> String {
            self.0 += 1;
            format!("t{}", self.0)
        }
    }

    fn store_with_grant(valid: bool) -> (GrantStore, Issued, Minter) {
        let mut store = GrantStore::default();
        let mut m = Minter(0);
        let issued = store.grant(
            NewGrant {
                client_id: "c",
                patient: "p",
                scope: "s",
                expires_in: 100,
                access_token_valid: valid,
            },
            1000,
            &mut || m.mint(),
        );
        (store, issued, m)
    }

    fn refresh_token(issued: &Issued) -> &str {
        issued.refresh_token.as_deref().expect("a refresh token")
    }

    #[test]
    fn an_access_token_works_until_it_expires() {
        let (store, issued, _) = store_with_grant(true);
        assert!(store.access(&issued.access_token, 1099).is_some());
        assert!(store.access(&issued.access_token, 1100).is_none());
        assert!(store.access("nope", 1000).is_none());
    }

    #[test]
    fn an_access_token_issued_invalid_is_refused_but_refresh_still_works() {
        let (mut store, issued, mut m) = store_with_grant(false);
        assert!(store.access(&issued.access_token, 1000).is_none());
        let fresh = store
            .refresh(
                "c",
                refresh_token(&issued),
                RefreshPolicy::Rotate,
                50,
                1000,
                &mut || m.mint(),
            )
            .expect("refresh");
        assert!(store.access(&fresh.access_token, 1049).is_some());
        assert_eq!((fresh.patient.as_str(), fresh.scope.as_str()), ("p", "s"));
    }

    #[test]
    fn rotation_consumes_the_old_refresh_token_and_reuse_revokes_the_grant() {
        let (mut store, first, mut m) = store_with_grant(true);
        let second = store
            .refresh(
                "c",
                refresh_token(&first),
                RefreshPolicy::Rotate,
                50,
                1000,
                &mut || m.mint(),
            )
            .expect("first refresh");
        assert_ne!(second.refresh_token, first.refresh_token);
        assert!(store.access(&second.access_token, 1001).is_some());
        // The consumed token comes back: the whole grant dies.
        let reuse = store.refresh(
            "c",
            refresh_token(&first),
            RefreshPolicy::Rotate,
            50,
            1002,
            &mut || m.mint(),
        );
        assert_eq!(reuse, Err(RefreshError::Reused));
        assert!(store.access(&second.access_token, 1003).is_none());
        assert!(store.access(&first.access_token, 1003).is_none());
        let after = store.refresh(
            "c",
            refresh_token(&second),
            RefreshPolicy::Rotate,
            50,
            1004,
            &mut || m.mint(),
        );
        assert_eq!(after, Err(RefreshError::Invalid));
        let again = store.refresh(
            "c",
            refresh_token(&first),
            RefreshPolicy::Rotate,
            50,
            1005,
            &mut || m.mint(),
        );
        assert!(again.is_err());
    }

    #[test]
    fn omission_keeps_the_old_refresh_token_valid() {
        let (mut store, first, mut m) = store_with_grant(true);
        for now in [1000, 1001] {
            let issued = store
                .refresh(
                    "c",
                    refresh_token(&first),
                    RefreshPolicy::Omit,
                    50,
                    now,
                    &mut || m.mint(),
                )
                .expect("refresh");
            assert_eq!(issued.refresh_token, None);
        }
    }

    #[test]
    fn another_clients_refresh_token_is_invalid() {
        let (mut store, first, mut m) = store_with_grant(true);
        let other = store.refresh(
            "d",
            refresh_token(&first),
            RefreshPolicy::Rotate,
            50,
            1000,
            &mut || m.mint(),
        );
        assert_eq!(other, Err(RefreshError::Invalid));
    }

    #[test]
    fn revocation_by_either_token_ends_the_grant_and_only_for_its_client() {
        for by_refresh in [false, true] {
            let (mut store, issued, _) = store_with_grant(true);
            let token = if by_refresh {
                refresh_token(&issued).to_string()
            } else {
                issued.access_token.clone()
            };
            assert!(!store.revoke("d", &token));
            assert!(store.access(&issued.access_token, 1000).is_some());
            assert!(store.revoke("c", &token));
            assert!(store.access(&issued.access_token, 1000).is_none());
            assert!(!store.revoke("c", &token));
            assert!(!store.revoke("c", "unknown"));
        }
    }

    #[test]
    fn introspection_answers_only_the_owning_client_for_usable_tokens() {
        let (store, issued, _) = store_with_grant(true);
        let active = store
            .introspect("c", &issued.access_token, 1000)
            .expect("active");
        assert_eq!(active.exp, Some(1100));
        assert_eq!(active.patient, "p");
        assert!(store.introspect("d", &issued.access_token, 1000).is_none());
        assert!(store.introspect("c", &issued.access_token, 1100).is_none());
        let refresh = store
            .introspect("c", refresh_token(&issued), 5000)
            .expect("refresh token active");
        assert_eq!((refresh.exp, refresh.token_type), (None, "refresh_token"));
    }
}
