//! OAuth 1.0a state the verifier itself does not keep: the token
//! credentials issued through the admin API (each bound to a consumer and a
//! patient) and the nonces seen, so that a replayed request is refused.
//! Pure: the caller passes the clock and mints the random strings.

use std::collections::{BTreeSet, HashMap};

use secrecy::SecretString;

/// Token credentials issued to one consumer for one patient.
#[derive(Debug, Clone)]
pub(crate) struct TokenRecord {
    pub consumer_key: String,
    pub secret: SecretString,
    pub patient: String,
}

/// Issued tokens, by `oauth_token`.
#[derive(Debug, Default)]
pub(crate) struct Oauth1Tokens {
    tokens: HashMap<String, TokenRecord>,
}

/// How issued tokens are written to `state.json` (the demo's sandbox
/// keeps them across restarts; its secrets are demo values on loopback).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedToken {
    token: String,
    consumer_key: String,
    secret: String,
    patient: String,
}

impl Oauth1Tokens {
    pub fn save(&self) -> Vec<SavedToken> {
        use secrecy::ExposeSecret;
        self.tokens
            .iter()
            .map(|(t, r)| SavedToken {
                token: t.clone(),
                consumer_key: r.consumer_key.clone(),
                secret: r.secret.expose_secret().to_string(),
                patient: r.patient.clone(),
            })
            .collect()
    }

    pub fn restore(saved: Vec<SavedToken>) -> Oauth1Tokens {
        Oauth1Tokens {
            tokens: saved
                .into_iter()
                .map(|s| {
                    (
                        s.token,
                        TokenRecord {
                            consumer_key: s.consumer_key,
                            secret: SecretString::from(s.secret),
                            patient: s.patient,
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn issue(&mut self, token: String, record: TokenRecord) {
        self.tokens.insert(token, record);
    }

    /// The token's record when it was issued to `consumer_key`.
    pub fn lookup(&self, consumer_key: &str, token: &str) -> Option<&TokenRecord> {
        self.tokens
            .get(token)
            .filter(|t| t.consumer_key == consumer_key)
    }
}

/// How long a request token waits for its authorization and exchange.
pub(crate) const REQUEST_TOKEN_TTL: u64 = 600;

/// A request token (temporary credentials, RFC 5849 §2.1) on its way
/// through the three-legged flow.
#[derive(Debug, Clone)]
pub(crate) struct PendingRequest {
    pub consumer_key: String,
    pub secret: SecretString,
    /// `oauth_callback` as the consumer signed it.
    pub callback: String,
    /// Set by the authorization (with the patient it is for).
    pub verifier: Option<String>,
    pub patient: Option<String>,
    pub expires_at: u64,
}

/// Request tokens by `oauth_token`; each one is exchanged at most once.
#[derive(Debug, Default)]
pub(crate) struct PendingRequests {
    tokens: HashMap<String, PendingRequest>,
}

impl PendingRequests {
    /// Records a fresh request token, forgetting expired ones.
    pub fn issue(&mut self, token: String, pending: PendingRequest, now: u64) {
        self.tokens.retain(|_, p| p.expires_at > now);
        self.tokens.insert(token, pending);
    }

    /// A live request token.
    pub fn get(&self, token: &str, now: u64) -> Option<&PendingRequest> {
        self.tokens.get(token).filter(|p| p.expires_at > now)
    }

    /// Authorizes a live request token for `patient` with `verifier`;
    /// returns its callback.
    pub fn authorize(
        &mut self,
        token: &str,
        verifier: String,
        patient: String,
        now: u64,
    ) -> Option<String> {
        let p = self.tokens.get_mut(token).filter(|p| p.expires_at > now)?;
        p.verifier = Some(verifier);
        p.patient = Some(patient);
        Some(p.callback.clone())
    }

    /// Removes a request token (an exchange uses it up, right or wrong).
    pub fn take(&mut self, token: &str) -> Option<PendingRequest> {
        self.tokens.remove(token)
    }
}

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceError {
    /// The same (consumer, token, timestamp, nonce) was seen before.
    Replayed,
    /// The store is full of nonces still inside the window.
    Full,
}

/// Nonces seen within the timestamp window. A request older than the
/// window is refused for its timestamp, so older entries can be dropped
/// without letting a replay through.
#[derive(Debug)]
pub(crate) struct NonceStore {
    /// Ordered by timestamp first, so that expiry is one split.
    seen: BTreeSet<(u64, String, String, String)>,
    window: u64,
    capacity: usize,
}

impl NonceStore {
    pub fn new(window: u64, capacity: usize) -> NonceStore {
        NonceStore {
            seen: BTreeSet::new(),
            window,
            capacity,
        }
    }

    /// Records the nonce unless it was seen; drops entries that left the window.
    pub fn check_and_record(
        &mut self,
        consumer: &str,
        token: &str,
        timestamp: u64,
        nonce: &str,
        now: u64,
    ) -> Result<(), NonceError> {
        let oldest = now.saturating_sub(self.window);
        // Everything strictly below `oldest` is outside the window.
        let kept = self
            .seen
            .split_off(&(oldest, String::new(), String::new(), String::new()));
        self.seen = kept;
        let key = (
            timestamp,
            consumer.to_string(),
            token.to_string(),
            nonce.to_string(),
        );
        if self.seen.contains(&key) {
            return Err(NonceError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(NonceError::Full);
        }
        self.seen.insert(key);
        Ok(())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_refused_the_second_time_within_the_window() {
        let mut store = NonceStore::new(600, 100);
        assert_eq!(store.check_and_record("c", "t", 1000, "n", 1000), Ok(()));
        assert_eq!(
            store.check_and_record("c", "t", 1000, "n", 1001),
            Err(NonceError::Replayed)
        );
        // Another timestamp, token or consumer makes another request.
        assert_eq!(store.check_and_record("c", "t", 1001, "n", 1001), Ok(()));
        assert_eq!(store.check_and_record("c", "u", 1000, "n", 1001), Ok(()));
        assert_eq!(store.check_and_record("d", "t", 1000, "n", 1001), Ok(()));
    }

    #[test]
    fn entries_older_than_the_window_are_dropped() {
        let mut store = NonceStore::new(600, 100);
        for i in 0..10 {
            store
                .check_and_record("c", "t", 1000 + i, "n", 1000 + i)
                .expect("fresh");
        }
        assert_eq!(store.len(), 10);
        store
            .check_and_record("c", "t", 1605, "m", 1605)
            .expect("fresh");
        // 1605 - 600 = 1005: timestamps 1000..=1004 are gone.
        assert_eq!(store.len(), 6);
    }

    #[test]
    fn a_full_store_refuses_instead_of_forgetting_a_live_nonce() {
        let mut store = NonceStore::new(600, 2);
        store
            .check_and_record("c", "t", 1000, "a", 1000)
            .expect("a");
        store
            .check_and_record("c", "t", 1000, "b", 1000)
            .expect("b");
        assert_eq!(
            store.check_and_record("c", "t", 1000, "c", 1000),
            Err(NonceError::Full)
        );
        assert_eq!(store.check_and_record("c", "t", 1700, "c", 1700), Ok(()));
    }

    #[test]
    fn a_request_token_is_authorized_before_it_expires_and_taken_once() {
        let mut pending = PendingRequests::default();
        let record = |expires_at| PendingRequest {
            consumer_key: "c".into(),
            secret: SecretString::from("s"),
            callback: "http://127.0.0.1:1/cb".into(),
            verifier: None,
            patient: None,
            expires_at,
        };
        pending.issue("rt".into(), record(1600), 1000);
        assert!(pending.get("rt", 1599).is_some());
        assert!(pending.get("rt", 1600).is_none(), "expired");
        assert_eq!(
            pending
                .authorize("rt", "v".into(), "p".into(), 1001)
                .as_deref(),
            Some("http://127.0.0.1:1/cb")
        );
        assert!(
            pending
                .authorize("rt", "v".into(), "p".into(), 1600)
                .is_none()
        );
        let taken = pending.take("rt").expect("first exchange");
        assert_eq!(taken.verifier.as_deref(), Some("v"));
        assert_eq!(taken.patient.as_deref(), Some("p"));
        assert!(
            pending.take("rt").is_none(),
            "a request token is exchanged once"
        );
        // Issuing forgets the expired ones.
        pending.issue("old".into(), record(1100), 1000);
        pending.issue("new".into(), record(2000), 1200);
        assert!(pending.take("old").is_none());
    }

    #[test]
    fn a_token_belongs_to_its_consumer() {
        let mut tokens = Oauth1Tokens::default();
        tokens.issue(
            "tok".into(),
            TokenRecord {
                consumer_key: "c".into(),
                secret: SecretString::from("s"),
                patient: "p".into(),
            },
        );
        assert!(tokens.lookup("c", "tok").is_some());
        assert!(tokens.lookup("d", "tok").is_none());
        assert!(tokens.lookup("c", "other").is_none());
    }
}
