//! A link's state. Travels typed through `pull`, `cli` and `web`; only the
//! store's row mappers turn it into text (`links.state`) and back, and
//! output prints [`LinkState::as_str`].

use serde::{Serialize, Serializer};
use std::fmt;

/// Where a link to a provider stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkState {
    /// Synced on schedule.
    Active,
    /// The remote identity does not match: a clinician confirms or rejects it.
    Held,
    /// The consent is gone: the patient must link again.
    NeedsRelink,
    /// Revoked: its tokens are gone, it is never synced again.
    Revoked,
}

impl LinkState {
    /// Every state, in the order `/metrics` lists them.
    pub const ALL: [LinkState; 4] = [
        LinkState::Active,
        LinkState::Held,
        LinkState::NeedsRelink,
        LinkState::Revoked,
    ];

    /// The snake_case name stored in `links.state` and shown in output.
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkState::Active => "active",
            LinkState::Held => "held",
            LinkState::NeedsRelink => "needs_relink",
            LinkState::Revoked => "revoked",
        }
    }

    /// Reads a stored state. None: not a state rxsync writes.
    pub fn from_stored(text: &str) -> Option<LinkState> {
        LinkState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LinkState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_refuse_other_text() {
        for s in LinkState::ALL {
            assert_eq!(LinkState::from_stored(s.as_str()), Some(s));
        }
        assert_eq!(LinkState::from_stored("Active"), None);
        assert_eq!(
            serde_json::to_value(LinkState::NeedsRelink).ok(),
            Some(serde_json::json!("needs_relink"))
        );
    }
}
