//! What the review app needs to make links in the browser: the public URL
//! patients reach it at, a `Puller` (the configuration, the vault key, one
//! HTTP client per provider) for the code exchange and the first pull, and
//! a `store::Writer` for the consent engine's and the pull's writes.
//!
//! The consent engine and the puller write only through a `Writer`, as
//! they do in `link start`, `import --patient` and the daemon; the pages'
//! own short transactions stay on the pool. So the review process has, as
//! every process does, one writer for its consent and pull work.

use crate::config::{Provider, PublicUrl};
use crate::pull::Puller;
use crate::store::Writer;
use std::sync::Arc;

/// Browser linking, when `[review] public_url` is set.
pub struct Linking {
    /// `[review] public_url`: invitations and the callback live under it.
    pub public: PublicUrl,
    /// The code exchange's clients and key, and the first pull.
    pub puller: Arc<Puller>,
    /// The one writer of the consent flows, invitations, links and pulls.
    pub writer: Writer,
}

impl Linking {
    /// The configured providers a patient can link by consent.
    pub fn consent_providers(&self) -> Vec<&Provider> {
        self.puller
            .config()
            .providers
            .iter()
            .filter(|p| crate::consent::can_consent(p).is_ok())
            .collect()
    }

    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.puller.config().provider(id)
    }
}
