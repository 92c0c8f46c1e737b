//! What a link's sync came to, and what started it. They travel typed
//! through `pull`, `schedule`, `daemon` and `cli`; only the store's row
//! mappers turn them into text (`links.last_outcome`, `syncs.trigger`) and
//! back, and JSON output uses [`SyncOutcome::as_str`].

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::fmt;

/// The outcome of one sync of one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncOutcome {
    /// A new regimen version was stored.
    Imported,
    /// The document was the one already stored.
    Unchanged,
    /// The sync failed; it is tried again after a backoff.
    Failed,
    /// The consent is gone: the patient must link again.
    NeedsRelink,
    /// The provider asked us to come back at `at`.
    RetryLater { at: DateTime<Utc> },
    /// The remote identity does not match: a clinician decides.
    Held,
}

impl SyncOutcome {
    /// The snake_case name stored in `links.last_outcome` and shown in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            SyncOutcome::Imported => "imported",
            SyncOutcome::Unchanged => "unchanged",
            SyncOutcome::Failed => "failed",
            SyncOutcome::NeedsRelink => "needs_relink",
            SyncOutcome::RetryLater { .. } => "retry_later",
            SyncOutcome::Held => "held",
        }
    }

    /// Reads a stored outcome; `retry_at` is the time a `retry_later` waits
    /// for (the link's `next_due_at`). None: not an outcome rxsync writes.
    pub fn from_stored(text: &str, retry_at: Option<DateTime<Utc>>) -> Option<SyncOutcome> {
        Some(match text {
            "imported" => SyncOutcome::Imported,
            "unchanged" => SyncOutcome::Unchanged,
            "failed" => SyncOutcome::Failed,
            "needs_relink" => SyncOutcome::NeedsRelink,
            "retry_later" => SyncOutcome::RetryLater { at: retry_at? },
            "held" => SyncOutcome::Held,
            _ => return None,
        })
    }

    /// Whether the sync did not succeed (the exit status of `run --once`,
    /// the daemon's warning). A held link waits for a person: not a failure.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            SyncOutcome::Failed | SyncOutcome::NeedsRelink | SyncOutcome::RetryLater { .. }
        )
    }

    /// Whether the provider failed us (what the circuit breaker counts): a
    /// lost consent or a held identity is the link's matter, not the provider's.
    pub fn is_provider_failure(&self) -> bool {
        matches!(self, SyncOutcome::Failed | SyncOutcome::RetryLater { .. })
    }

    /// Whether the link's failures-in-a-row count resets (a document was read).
    pub fn is_success(&self) -> bool {
        matches!(self, SyncOutcome::Imported | SyncOutcome::Unchanged)
    }
}

impl fmt::Display for SyncOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SyncOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What started a sync: stored in `syncs.trigger` (and shown as a
/// regimen's `arrived_by`) by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// `rxsync import` of a file handed over by an operator.
    File,
    /// A pull asked for now (`rxsync pull`, a consent's first pull).
    Pull,
    /// The daemon's schedule found the link due.
    Schedule,
    /// One patient's lines of a FHIR bulk export.
    Bulk,
}

impl Trigger {
    /// The snake_case name stored in `syncs.trigger`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::File => "file",
            Trigger::Pull => "pull",
            Trigger::Schedule => "schedule",
            Trigger::Bulk => "bulk",
        }
    }

    /// Reads a stored trigger. None: not a trigger rxsync writes.
    pub fn from_stored(text: &str) -> Option<Trigger> {
        Some(match text {
            "file" => Trigger::File,
            "pull" => Trigger::Pull,
            "schedule" => Trigger::Schedule,
            "bulk" => Trigger::Bulk,
            _ => return None,
        })
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_round_trip_through_their_stored_names() {
        let all = [
            (Trigger::File, "file"),
            (Trigger::Pull, "pull"),
            (Trigger::Schedule, "schedule"),
            (Trigger::Bulk, "bulk"),
        ];
        for (t, stored) in all {
            assert_eq!(t.as_str(), stored);
            assert_eq!(Trigger::from_stored(stored), Some(t));
        }
        assert_eq!(Trigger::from_stored("Pull"), None);
        assert_eq!(Trigger::from_stored(""), None);
    }

    #[test]
    fn outcomes_round_trip_and_classify() {
        let at = Utc::now();
        let all = [
            SyncOutcome::Imported,
            SyncOutcome::Unchanged,
            SyncOutcome::Failed,
            SyncOutcome::NeedsRelink,
            SyncOutcome::RetryLater { at },
            SyncOutcome::Held,
        ];
        for o in all {
            assert_eq!(SyncOutcome::from_stored(o.as_str(), Some(at)), Some(o));
        }
        assert_eq!(SyncOutcome::from_stored("retry_later", None), None);
        assert_eq!(SyncOutcome::from_stored("busy", Some(at)), None);
        let failures: Vec<_> = all
            .iter()
            .filter(|o| o.is_failure())
            .map(|o| o.as_str())
            .collect();
        assert_eq!(failures, ["failed", "needs_relink", "retry_later"]);
        assert!(!SyncOutcome::Held.is_provider_failure());
        assert!(!SyncOutcome::NeedsRelink.is_provider_failure());
        assert_eq!(
            serde_json::to_value(SyncOutcome::RetryLater { at }).ok(),
            Some(serde_json::json!("retry_later"))
        );
    }
}
