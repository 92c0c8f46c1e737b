//! When a link is due again: the interval after a good sync, exponential
//! backoff after failures, the provider's own time after a `Retry-After`,
//! each spread by jitter so that links added together do not fire together.
//! Pure: the caller passes the clock and the random draw.

use crate::domain::SyncOutcome;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The schedule of one provider's links.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub interval: Duration,
    /// Fraction (0–0.5) by which a wait is spread, both ways.
    pub jitter: f64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Schedule {
    /// The next run after a sync with `outcome`. `failures` is the count of
    /// failures in a row *before* this sync; `draw` is uniform in [0, 1).
    /// None: the link waits for a person (needs_relink, held).
    pub fn next_due(
        &self,
        outcome: &SyncOutcome,
        failures: u32,
        now: DateTime<Utc>,
        draw: f64,
    ) -> Option<DateTime<Utc>> {
        let spread = |d: Duration| {
            let factor = 1.0 + self.jitter * (2.0 * draw.clamp(0.0, 1.0) - 1.0);
            d.mul_f64(factor.max(0.0))
        };
        let wait = match outcome {
            SyncOutcome::Imported | SyncOutcome::Unchanged => spread(self.interval),
            // A person decides: re-link, or confirm / reject the identity.
            SyncOutcome::NeedsRelink | SyncOutcome::Held => return None,
            SyncOutcome::RetryLater { at } => return Some((*at).max(now)),
            SyncOutcome::Failed => {
                let doubled = self.backoff_base.saturating_mul(1u32 << failures.min(20));
                spread(doubled.min(self.backoff_max))
            }
        };
        chrono::Duration::from_std(wait).ok().map(|w| now + w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            interval: Duration::from_secs(3600),
            jitter: 0.1,
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(900),
        }
    }

    #[test]
    fn good_syncs_wait_the_interval_give_or_take_the_jitter() {
        let now = Utc::now();
        let s = schedule();
        let secs = |draw| {
            (s.next_due(&SyncOutcome::Imported, 0, now, draw)
                .expect("due")
                - now)
                .num_seconds()
        };
        assert_eq!(secs(0.5), 3600);
        assert_eq!(secs(0.0), 3240);
        assert!((3959..=3960).contains(&secs(0.999_999)));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let now = Utc::now();
        let s = schedule();
        let waits: Vec<i64> = (0..6)
            .map(|f| {
                (s.next_due(&SyncOutcome::Failed, f, now, 0.5).expect("due") - now).num_seconds()
            })
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 900, 900]);
        assert_eq!(
            (s.next_due(&SyncOutcome::Failed, u32::MAX, now, 0.5)
                .expect("due")
                - now)
                .num_seconds(),
            900
        );
    }

    #[test]
    fn retry_later_goes_by_the_provider_and_relinks_wait_for_a_person() {
        let now = Utc::now();
        let s = schedule();
        let at = now + chrono::Duration::hours(2);
        assert_eq!(
            s.next_due(&SyncOutcome::RetryLater { at }, 0, now, 0.3),
            Some(at)
        );
        assert_eq!(s.next_due(&SyncOutcome::NeedsRelink, 3, now, 0.3), None);
        // A retry time in the past means now.
        let past = now - chrono::Duration::hours(1);
        assert_eq!(
            s.next_due(&SyncOutcome::RetryLater { at: past }, 0, now, 0.3),
            Some(now)
        );
    }
}
