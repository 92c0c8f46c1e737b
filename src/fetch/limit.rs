//! A provider's request budget: a token bucket shared by every sync of
//! that provider in the process (it lives in the provider's `HttpClient`).
//!
//! The bucket itself is pure: it is given the time, and answers how long
//! the caller must wait before its request may go. `RateGate` wraps it in a
//! lock held only for that arithmetic (never across an await) and sleeps
//! outside it. It never decides anything about a response: 429 and
//! `Retry-After` stay with the retry loop in `http`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `[providers.limits] requests_per_second` and `burst`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Time between two tokens (1 / requests_per_second).
    pub interval: Duration,
    /// Tokens the bucket holds when full: requests that may go at once.
    pub burst: u32,
}

/// A token bucket over an injected clock. Tokens may go negative: each
/// caller reserves its token at once and waits its turn, so waiters are
/// served in arrival order and none starves.
#[derive(Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Tokens available at `at`, in units of one token; may be negative
    /// (reserved by callers still waiting).
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(limit: RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            at: now,
        }
    }

    /// Takes one token at `now`; returns how long to wait before sending
    /// (zero when a token was there).
    pub fn take(&mut self, now: Instant) -> Duration {
        let per_token = self.limit.interval.as_secs_f64();
        if now > self.at {
            let earned = if per_token > 0.0 {
                now.duration_since(self.at).as_secs_f64() / per_token
            } else {
                f64::INFINITY
            };
            self.tokens = (self.tokens + earned).min(f64::from(self.limit.burst.max(1)));
            self.at = now;
        }
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens * per_token)
        }
    }
}

/// The bucket of one provider, shared by its syncs.
#[derive(Debug)]
pub struct RateGate {
    bucket: Mutex<TokenBucket>,
}

impl RateGate {
    pub fn new(limit: RateLimit) -> RateGate {
        RateGate {
            bucket: Mutex::new(TokenBucket::new(limit, Instant::now())),
        }
    }

    /// Waits until this request may go.
    pub async fn admit(&self) {
        let wait = self
            .bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(per_second: u64, burst: u32) -> (TokenBucket, Instant) {
        let t0 = Instant::now();
        let limit = RateLimit {
            interval: Duration::from_secs(1) / per_second as u32,
            burst,
        };
        (TokenBucket::new(limit, t0), t0)
    }

    #[test]
    fn a_full_bucket_lets_its_burst_go_at_once_then_spaces_requests() {
        let (mut b, t0) = bucket(2, 3);
        let waits: Vec<Duration> = (0..6).map(|_| b.take(t0)).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        // Three at once, then one every 500 ms, each waiter behind the last.
        assert_eq!(ms, [0, 0, 0, 500, 1000, 1500]);
    }

    #[test]
    fn tokens_come_back_with_time_but_never_above_the_burst() {
        let (mut b, t0) = bucket(10, 2);
        assert_eq!(b.take(t0), Duration::ZERO);
        assert_eq!(b.take(t0), Duration::ZERO);
        assert_eq!(b.take(t0).as_millis(), 100);
        // An hour idle refills to the burst only.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(b.take(later), Duration::ZERO);
        assert_eq!(b.take(later), Duration::ZERO);
        assert_eq!(b.take(later).as_millis(), 100);
        // Half a token's time later, the waiter ahead still holds it.
        let soon = later + Duration::from_millis(50);
        assert_eq!(b.take(soon).as_millis(), 150);
    }

    #[test]
    fn a_burst_of_one_is_a_steady_rate() {
        let (mut b, t0) = bucket(4, 1);
        for n in 0..5u32 {
            let at = t0 + Duration::from_millis(250) * n;
            assert_eq!(b.take(at), Duration::ZERO, "request {n}");
        }
    }
}
