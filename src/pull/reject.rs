//! A held link rejected from the exception queue (`rxsync queue resolve
//! --action reject`, the review app's exception page and API): the store
//! decides first — the rejection is checked and committed under its lock,
//! so a refused or raced decision never reaches the provider — then the
//! provider is told the grant is over (RFC 7009, `Puller::tell_provider`,
//! with the tokens read before the commit dropped them), best effort, and
//! what it answered is added to the link's reason and audited
//! (`link.reject.provider`). It never decides anything itself.

use super::Puller;
use crate::domain::{Decision, LinkId};
use crate::store::{ExceptionView, Resolve, StoreError, Writer};

/// A queue decision as applied, and, for a rejected link, what came of
/// telling its provider.
#[derive(Debug)]
pub struct Resolved {
    pub view: ExceptionView,
    /// The link rejected and the provider's answer in words (None: the
    /// decision revoked no link).
    pub told: Option<(LinkId, String)>,
}

impl Puller {
    /// Applies a clinician's decision on an exception through `writer`; a
    /// `reject` of a held link then tells the provider (see the module).
    pub async fn resolve_exception(
        &self,
        writer: &Writer,
        id: i64,
        decision: Resolve,
    ) -> Result<Resolved, StoreError> {
        let by = decision.by.clone();
        let reject = matches!(decision.decision, Decision::Reject { .. });
        let (held, view) = writer
            .run(move |s| {
                let held = match reject {
                    true => s.held_link_of_exception(id)?,
                    false => None,
                };
                Ok((held, s.resolve_exception(id, &decision)?))
            })
            .await?;
        let Some(link) = held else {
            return Ok(Resolved { view, told: None });
        };
        let told = self.tell_provider(writer, &link).await;
        let (link_id, note) = (link.view.id, told.clone());
        // The rejection stands whatever happens here: a failure to note the
        // provider's answer is logged, not reported as a failed decision.
        if let Err(e) = writer
            .run(move |s| s.record_rejection_told(link_id, &by, &note))
            .await
        {
            tracing::warn!(link = link_id.get(), error = %e, "the provider's answer to a rejection was not recorded");
        }
        Ok(Resolved {
            view,
            told: Some((link_id, told)),
        })
    }
}
