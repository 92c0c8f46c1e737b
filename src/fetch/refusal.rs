//! Why a provider's answer ends a pull, as `fetch` judges it: the pull
//! failed (try again at the next sync), the consent is gone (the link must
//! be made again), or the provider asked to be asked later. The words name
//! the URL, redacted; `pull` scrubs them by the secret values it holds
//! before they are stored. This module never decides what a pull stores.

use super::http::FetchError;
use std::time::Duration;

/// A provider's answer (or its absence) that ends a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The pull failed; the next scheduled one may do better.
    Failed(String),
    /// The grant is gone (a refused token, a 401 after a refresh): the link
    /// needs re-linking.
    Relink(String),
    /// The provider asked to be asked again later, and when.
    RetryLater { error: String, after: Duration },
}

impl From<FetchError> for Refusal {
    fn from(e: FetchError) -> Refusal {
        match e.retry_after() {
            Some(after) => Refusal::RetryLater {
                error: e.to_string(),
                after,
            },
            None => Refusal::Failed(e.to_string()),
        }
    }
}
