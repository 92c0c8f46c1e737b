//! The exception vocabulary of the review queue (design.md, "Exceptions the
//! queue must know"): kinds, severities, states and clinician actions.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Why an item or a sync needs a clinician.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    UnmappedNdc,
    InvalidNdc,
    NonNdcCode,
    Duplicate,
    TherapeuticDuplicate,
    TooMany,
    NoneShared,
    LinkBroken,
    IdentityMismatch,
    Unreadable,
    /// One record of a readable document could not be read; it is named,
    /// with its excerpt, instead of disappearing.
    UnreadableRecord,
    /// The document's drug text (or strength) contradicts what the
    /// dictionary says of the record's NDC.
    NdcNameMismatch,
    /// Two sources of one patient disagree on a drug a clinician must
    /// settle: one says it is taken and another that it stopped, or they
    /// give it at another strength or dose (`reconcile`).
    SourceConflict,
    /// A link's grant at the provider ends soon (`[sync]
    /// link_expiring_days`): the patient should consent again in time.
    LinkExpiring,
}

impl ExceptionKind {
    /// Every kind, in the order of design.md.
    pub const ALL: [ExceptionKind; 14] = [
        ExceptionKind::UnmappedNdc,
        ExceptionKind::InvalidNdc,
        ExceptionKind::NonNdcCode,
        ExceptionKind::Duplicate,
        ExceptionKind::TherapeuticDuplicate,
        ExceptionKind::TooMany,
        ExceptionKind::NoneShared,
        ExceptionKind::LinkBroken,
        ExceptionKind::IdentityMismatch,
        ExceptionKind::Unreadable,
        ExceptionKind::UnreadableRecord,
        ExceptionKind::NdcNameMismatch,
        ExceptionKind::SourceConflict,
        ExceptionKind::LinkExpiring,
    ];

    /// The snake_case name used in the database, the CLI and JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExceptionKind::UnmappedNdc => "unmapped_ndc",
            ExceptionKind::InvalidNdc => "invalid_ndc",
            ExceptionKind::NonNdcCode => "non_ndc_code",
            ExceptionKind::Duplicate => "duplicate",
            ExceptionKind::TherapeuticDuplicate => "therapeutic_duplicate",
            ExceptionKind::TooMany => "too_many",
            ExceptionKind::NoneShared => "none_shared",
            ExceptionKind::LinkBroken => "link_broken",
            ExceptionKind::IdentityMismatch => "identity_mismatch",
            ExceptionKind::Unreadable => "unreadable",
            ExceptionKind::UnreadableRecord => "unreadable_record",
            ExceptionKind::NdcNameMismatch => "ndc_name_mismatch",
            ExceptionKind::SourceConflict => "source_conflict",
            ExceptionKind::LinkExpiring => "link_expiring",
        }
    }

    /// How serious the kind is. Every open exception blocks review,
    /// whatever its severity; severity orders the queue and colours the UI.
    pub fn severity(&self) -> Severity {
        match self {
            ExceptionKind::InvalidNdc
            | ExceptionKind::Duplicate
            | ExceptionKind::TooMany
            | ExceptionKind::LinkBroken
            | ExceptionKind::IdentityMismatch
            | ExceptionKind::Unreadable
            | ExceptionKind::UnreadableRecord
            | ExceptionKind::NdcNameMismatch
            // Which of two lists is right about a drug decides what the
            // patient takes: as serious as a wrong code.
            | ExceptionKind::SourceConflict => Severity::Error,
            ExceptionKind::UnmappedNdc
            | ExceptionKind::NonNdcCode
            | ExceptionKind::TherapeuticDuplicate
            | ExceptionKind::NoneShared
            | ExceptionKind::LinkExpiring => Severity::Warning,
        }
    }

    /// The clinician actions that fit this kind (besides `dismiss`).
    pub fn actions(&self) -> &'static [Action] {
        match self {
            ExceptionKind::UnmappedNdc | ExceptionKind::InvalidNdc | ExceptionKind::NonNdcCode => {
                &[Action::Map, Action::Remove, Action::Accept]
            }
            ExceptionKind::Duplicate | ExceptionKind::TherapeuticDuplicate => {
                &[Action::Remove, Action::Keep, Action::Accept]
            }
            // The item is the NDC's product or it is not: remove it, or
            // accept it as the dictionary reads it.
            ExceptionKind::NdcNameMismatch => &[Action::Remove, Action::Accept],
            // The link is the patient's, or it is not.
            ExceptionKind::IdentityMismatch => &[Action::Confirm, Action::Reject],
            ExceptionKind::TooMany
            | ExceptionKind::NoneShared
            | ExceptionKind::LinkBroken
            | ExceptionKind::Unreadable
            | ExceptionKind::UnreadableRecord => &[Action::Accept],
            // Each list stays as its source wrote it: the clinician says
            // the conflict is settled (accept), or dismisses it with a
            // note. Removing either side would change what a source said.
            ExceptionKind::SourceConflict => &[Action::Accept],
            // Nothing to fix in the data: the clinician notes that the
            // patient was asked to consent again (accept), or dismisses.
            ExceptionKind::LinkExpiring => &[Action::Accept],
        }
    }

    /// The kind as people read it ("Unmapped NDC"); the API keeps the code.
    pub fn label(&self) -> &'static str {
        match self {
            ExceptionKind::UnmappedNdc => "Unmapped NDC",
            ExceptionKind::InvalidNdc => "Invalid NDC",
            ExceptionKind::NonNdcCode => "Not coded as NDC",
            ExceptionKind::Duplicate => "Duplicate",
            ExceptionKind::TherapeuticDuplicate => "Therapeutic duplicate",
            ExceptionKind::TooMany => "Too many items",
            ExceptionKind::NoneShared => "No medications shared",
            ExceptionKind::LinkBroken => "Link broken",
            ExceptionKind::IdentityMismatch => "Identity mismatch",
            ExceptionKind::Unreadable => "Unreadable document",
            ExceptionKind::UnreadableRecord => "Unreadable record",
            ExceptionKind::NdcNameMismatch => "NDC and name disagree",
            ExceptionKind::SourceConflict => "Sources disagree",
            ExceptionKind::LinkExpiring => "Consent ends soon",
        }
    }

    /// What the kind asks of the clinician, in one sentence.
    pub fn description(&self) -> &'static str {
        match self {
            ExceptionKind::UnmappedNdc => {
                "The NDC is valid but not in the drug dictionary: map it to the product it is, remove the item, or accept it unmapped."
            }
            ExceptionKind::InvalidNdc => {
                "The code claims to be an NDC but no single NDC reads from it: map the item to the right NDC, remove it, or accept it."
            }
            ExceptionKind::NonNdcCode => {
                "The drug carries no NDC (RxNorm, SNOMED, a local code or free text only): map it to an NDC, remove it, or accept it."
            }
            ExceptionKind::Duplicate => {
                "The same drug is listed twice: remove one, or keep both when both are meant."
            }
            ExceptionKind::TherapeuticDuplicate => {
                "Two drugs of the same ingredient or class: remove one, keep both, or accept."
            }
            ExceptionKind::TooMany => {
                "The list holds more items than the configured limit: check it is this patient's list."
            }
            ExceptionKind::NoneShared => {
                "The document holds no medication records: accept that the source shared none, or dismiss."
            }
            ExceptionKind::LinkBroken => {
                "The provider refuses rxsync's authorization: the patient must link again."
            }
            ExceptionKind::IdentityMismatch => {
                "The provider's patient may not be this patient: nothing is written from the link until confirmed."
            }
            ExceptionKind::Unreadable => {
                "The document could not be read; it is kept, and nothing was written from it."
            }
            ExceptionKind::UnreadableRecord => {
                "One record of the document could not be read; its excerpt is below."
            }
            ExceptionKind::NdcNameMismatch => {
                "The drug's text contradicts the dictionary's product for its NDC: remove the item, or accept it as the dictionary reads it."
            }
            ExceptionKind::SourceConflict => {
                "Two sources of the patient disagree on a drug (one says it is taken and another that it stopped, or another strength or dose): settle which is right and accept, or dismiss with a note."
            }
            ExceptionKind::LinkExpiring => {
                "The patient's consent at the provider ends soon: ask the patient to link again before it does (a new consent closes this), or accept or dismiss it."
            }
        }
    }
}

impl fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExceptionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExceptionKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ExceptionKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown exception kind {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// How serious an exception is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Where an exception stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionState {
    Open,
    Resolved,
    Dismissed,
}

impl ExceptionState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ExceptionState::Open => "open",
            ExceptionState::Resolved => "resolved",
            ExceptionState::Dismissed => "dismissed",
        }
    }
}

impl fmt::Display for ExceptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExceptionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(ExceptionState::Open),
            "resolved" => Ok(ExceptionState::Resolved),
            "dismissed" => Ok(ExceptionState::Dismissed),
            _ => Err(format!(
                "unknown state {s:?} (expected open, resolved or dismissed)"
            )),
        }
    }
}

/// What a clinician decided for an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Map the item to an NDC (remembered for the provider's code).
    Map,
    /// Remove the item from the regimen (kept in the record, marked removed).
    Remove,
    /// Keep both items of a duplicate pair.
    Keep,
    /// Accept the item or the regimen as it is.
    Accept,
    /// Confirm a held link's remote identity (`identity_mismatch`): the link
    /// is active again.
    Confirm,
    /// Reject a held link's remote identity: the link is revoked.
    Reject,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Map => "map",
            Action::Remove => "remove",
            Action::Keep => "keep",
            Action::Accept => "accept",
            Action::Confirm => "confirm",
            Action::Reject => "reject",
        }
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "map" => Ok(Action::Map),
            "remove" => Ok(Action::Remove),
            "keep" => Ok(Action::Keep),
            "accept" => Ok(Action::Accept),
            "confirm" => Ok(Action::Confirm),
            "reject" => Ok(Action::Reject),
            _ => Err(format!(
                "unknown action {s:?} (expected map, remove, keep, accept, confirm or reject)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name_and_says_what_it_means() {
        for k in ExceptionKind::ALL {
            assert_eq!(k.as_str().parse::<ExceptionKind>(), Ok(k));
            assert!(k.description().ends_with('.'), "{k}");
        }
    }

    #[test]
    fn a_source_conflict_is_an_error_a_clinician_settles_by_accepting() {
        let k: ExceptionKind = "source_conflict".parse().expect("known kind");
        assert_eq!(k, ExceptionKind::SourceConflict);
        assert_eq!(k.severity(), Severity::Error);
        assert_eq!(k.actions(), &[Action::Accept]);
        // Right after ndc_name_mismatch, as in design.md's table.
        let at = |k| ExceptionKind::ALL.iter().position(|x| *x == k);
        assert_eq!(
            at(ExceptionKind::SourceConflict),
            at(ExceptionKind::NdcNameMismatch).map(|i| i + 1)
        );
    }
}
