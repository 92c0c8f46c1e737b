//! One sync's context: who and what a sync is about, what started it and
//! when, and — for a pull — the link's part of its last transaction. It is
//! built once by the caller (`pull`, `import`, `bulk`, the CLI) and handed
//! by reference through the import to the store's writes, which turn its
//! trigger and times into text only when they bind them.

use super::pulls::PullRecord;
use crate::domain::{PatientId, SourceName, Trigger};
use chrono::{DateTime, Utc};

/// One sync's context, from its start to the transaction that records it.
pub struct SyncContext {
    pub patient: PatientId,
    pub source: SourceName,
    /// What started the sync (`syncs.trigger`).
    pub trigger: Trigger,
    /// Who asked (an operator name, `rxsync` for scheduled pulls).
    pub actor: String,
    /// When the sync began (a pull: before its first request).
    pub started_at: DateTime<Utc>,
    /// Where the bytes came from (a path or a URL without secrets), for the
    /// record; None when no document was read.
    pub origin: Option<String>,
    /// Set when the sync is a pull from a provider.
    pub pull: Option<PullRecord>,
}
