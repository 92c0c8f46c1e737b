//! A circuit breaker per provider: after `threshold` failed syncs in a row
//! the provider is paused for `pause`; then one sync is let through (half
//! open) and its outcome closes or re-opens the circuit. Pure: the caller
//! passes the clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial sync is in flight.
    HalfOpen,
}

/// The breakers of all providers.
#[derive(Debug)]
pub struct Breakers {
    threshold: u32,
    pause: Duration,
    states: HashMap<String, State>,
}

impl Breakers {
    pub fn new(threshold: u32, pause: Duration) -> Breakers {
        Breakers {
            threshold,
            pause,
            states: HashMap::new(),
        }
    }

    /// Whether a sync at `provider` may start now (a half-open breaker lets
    /// exactly one through).
    pub fn allow(&mut self, provider: &str, now: Instant) -> bool {
        let state = self
            .states
            .entry(provider.to_string())
            .or_insert(State::Closed { failures: 0 });
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    /// Records a sync's outcome. Returns true when this outcome tripped the breaker.
    pub fn record(&mut self, provider: &str, failed: bool, now: Instant) -> bool {
        let state = self
            .states
            .entry(provider.to_string())
            .or_insert(State::Closed { failures: 0 });
        let next = match (*state, failed) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 >= self.threshold => State::Open {
                until: now + self.pause,
            },
            (State::Closed { failures }, true) => State::Closed {
                failures: failures + 1,
            },
            (State::HalfOpen, true) | (State::Open { .. }, true) => State::Open {
                until: now + self.pause,
            },
        };
        let tripped = matches!(next, State::Open { .. }) && !matches!(*state, State::Open { .. });
        *state = next;
        tripped
    }

    /// A sync let through gave no verdict (the link was busy, not active, or
    /// not started): a half-open breaker may let another trial through.
    pub fn abstain(&mut self, provider: &str, now: Instant) {
        if let Some(state) = self.states.get_mut(provider)
            && *state == State::HalfOpen
        {
            *state = State::Open { until: now };
        }
    }

    /// When the first pause ends (None: no provider is paused): the
    /// scheduler wakes then to read the paused providers' due links.
    pub fn next_reopen(&self, now: Instant) -> Option<Instant> {
        self.states
            .values()
            .filter_map(|s| match s {
                State::Open { until } if *until > now => Some(*until),
                _ => None,
            })
            .min()
    }

    /// Whether the provider is paused now.
    pub fn is_open(&self, provider: &str, now: Instant) -> bool {
        matches!(self.states.get(provider), Some(State::Open { until }) if now < *until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_after_the_threshold_pauses_then_lets_one_through() {
        let t0 = Instant::now();
        let mut b = Breakers::new(3, Duration::from_secs(60));
        assert!(b.allow("p", t0));
        assert!(!b.record("p", true, t0));
        assert!(!b.record("p", true, t0));
        assert!(b.record("p", true, t0), "third failure trips");
        assert!(b.is_open("p", t0));
        assert_eq!(b.next_reopen(t0), Some(t0 + Duration::from_secs(60)));
        assert!(!b.allow("p", t0 + Duration::from_secs(59)));
        assert!(b.allow("other", t0), "other providers are not affected");
        let later = t0 + Duration::from_secs(60);
        assert!(b.allow("p", later), "half open: one trial");
        assert!(!b.allow("p", later), "only one");
        assert!(b.record("p", true, later), "a failed trial re-opens");
        let again = later + Duration::from_secs(60);
        assert!(b.allow("p", again));
        assert!(!b.record("p", false, again), "a good trial closes");
        assert!(b.allow("p", again) && b.allow("p", again));
    }

    #[test]
    fn a_trial_without_a_verdict_lets_another_trial_through() {
        let t0 = Instant::now();
        let mut b = Breakers::new(1, Duration::from_secs(10));
        b.record("p", true, t0);
        let later = t0 + Duration::from_secs(10);
        assert!(b.allow("p", later), "half open");
        assert!(!b.allow("p", later));
        b.abstain("p", later);
        assert!(
            b.allow("p", later),
            "the trial was busy: another one may go"
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breakers::new(2, Duration::from_secs(1));
        b.record("p", true, t0);
        b.record("p", false, t0);
        assert!(!b.record("p", true, t0));
        assert!(!b.is_open("p", t0));
    }
}
