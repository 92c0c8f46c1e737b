//! The FHIR side of a pull that goes beyond paging: whether a search asks
//! for `_include` (the provider's CapabilityStatement, through `fetch`),
//! and the fetch of `medicationReference`s the searches left unanswered.
//!
//! Orchestration only: which URL may be read, what a fetched body becomes
//! and how a reference that is not fetched is written down are
//! `fetch::fhir`'s; the requests go through the pull's own `get_answer`
//! (credentials, refresh, retries, the provider's request budget).

use super::{Failure, Fetching};
use crate::fetch::auth::redact;
use crate::fetch::fhir::{self, IncludeMode};
use crate::fetch::paging::{FHIR_JSON, Gathered, check_media_type, moved};
use std::collections::HashSet;
use url::Url;

impl Fetching<'_> {
    /// Whether the search of `resource` asks for `_include=…:medication`.
    pub(super) async fn include(&mut self, resource: &str) -> bool {
        match self.provider.search.include {
            IncludeMode::Always => true,
            IncludeMode::Never => false,
            IncludeMode::Auto => {
                let before = self.journal.trail.len();
                let caps = self
                    .client
                    .capabilities(&self.provider.base_url, &mut self.journal.trail)
                    .await;
                // The first sync of the process read it: an access like any other.
                for hop in &self.journal.trail[before..] {
                    self.journal.accesses.push(serde_json::json!({
                        "url": hop.url, "status": hop.status, "bytes": hop.bytes.unwrap_or(0),
                        "ms": hop.ms, "purpose": "capabilities",
                        "outcome": if hop.status.is_some_and(|s| (200..300).contains(&s)) { "ok" } else { "refused" },
                    }));
                }
                caps.supports(resource, &fhir::medication_include(resource))
            }
        }
    }

    /// Reads each Medication the entries reference but do not hold (once
    /// each, at most `max_reference_fetches`, only from the provider's
    /// origins) and appends it as an `include` entry; a reference that is
    /// not read gets a note entry saying why. A transport failure, a
    /// refused credential or a 5xx fails the pull as a failed page does; a
    /// 404, 410 or 403 for one Medication, or a body that is not one, is
    /// that reference's note.
    pub(super) async fn fetch_referenced(
        &mut self,
        gathered: &mut Gathered,
    ) -> Result<(), Failure> {
        let wanted = fhir::missing_medications(&gathered.entries);
        let max = self.provider.search.max_reference_fetches;
        let mut fetched = 0u32;
        let mut read: HashSet<Url> = HashSet::new();
        for reference in wanted {
            let url = match fhir::reference_url(
                &self.provider.base_url,
                &reference,
                &self.provider.trusted_origins,
            ) {
                Ok(u) => u,
                Err(why) => {
                    let reason = format!("rxsync did not fetch it: {why}");
                    gathered
                        .entries
                        .push(fhir::note_entry(&reference, "forbidden", &reason));
                    continue;
                }
            };
            // Two spellings of one URL (relative and absolute) are read once.
            if !read.insert(url.clone()) {
                continue;
            }
            if fetched >= max {
                let reason = format!(
                    "rxsync did not fetch it: provider {} allows max_reference_fetches = {max} per sync",
                    self.provider.id
                );
                gathered
                    .entries
                    .push(fhir::note_entry(&reference, "too-costly", &reason));
                continue;
            }
            fetched += 1;
            let url = moved(&self.link.moves, url);
            let answer = self.get_answer(&url, FHIR_JSON, &[403, 404, 410]).await?;
            if !(200..300).contains(&answer.status) {
                let reason = self.journal.secrets.scrub(&format!(
                    "{} answered {} to its read",
                    redact(&answer.url),
                    answer.status
                ));
                gathered
                    .entries
                    .push(fhir::note_entry(&reference, "not-found", &reason));
                continue;
            }
            check_media_type(self.provider.kind, &answer)?;
            gathered.count(answer.body.len(), &answer.url)?;
            // The entry's fullUrl is where it was read from, unless the
            // provider's redirects put a secret of ours in that URL: then
            // where it was asked for (the document is stored).
            let secrets = &self.journal.secrets;
            let read_from = if secrets.carried_by(answer.url.as_str()) {
                &url
            } else {
                &answer.url
            };
            match fhir::medication_entry(read_from, &answer.body) {
                Ok(entry) => gathered.entries.push(entry),
                Err(why) => {
                    let reason = secrets.scrub(&format!("{}: {why}", redact(read_from)));
                    gathered
                        .entries
                        .push(fhir::note_entry(&reference, "not-found", &reason));
                }
            }
        }
        Ok(())
    }
}
