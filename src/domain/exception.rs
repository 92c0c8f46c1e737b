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
}

impl ExceptionKind {
    /// Every kind, in the order of design.md.
    pub const ALL: [ExceptionKind; 12] = [
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
            | ExceptionKind::NdcNameMismatch => Severity::Error,
            ExceptionKind::UnmappedNdc
            | ExceptionKind::NonNdcCode
            | ExceptionKind::TherapeuticDuplicate
            | ExceptionKind::NoneShared => Severity::Warning,
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
