//! A clinician's decision on an exception, as one value: what to do and
//! what it needs (the NDC of a mapping, the note of a dismissal), so that
//! "map without an NDC" or "dismiss without a reason" cannot be expressed.
//!
//! `Decision::parse` is the one reading of the outside words (a form, a
//! JSON body, `rxsync queue resolve` flags); every edge calls it and shows
//! its `DecisionError` in its own terms. Whether a decision fits an
//! exception's kind is the store's question (`ExceptionKind::actions`).

use super::exception::Action;
use super::ndc::{self, Ndc11, NdcReading};
use std::fmt;

/// What a clinician decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Map the item to this NDC (remembered for the source's codes).
    Map(Ndc11),
    /// Remove the item from the regimen (kept in the record, marked removed).
    Remove,
    /// Keep both items of a duplicate pair.
    Keep,
    /// Accept the item or the regimen as it is.
    Accept,
    /// Close the exception without acting on it; the note says why and is
    /// never empty.
    Dismiss { note: String },
    /// `identity_mismatch`: the held link is this patient's after all;
    /// it is activated. The note says what was checked.
    Confirm { note: String },
    /// `identity_mismatch`: the held link is someone else's; it is revoked.
    Reject { note: String },
}

/// Why outside words are not a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The action word is none of ours.
    #[error(
        "unknown action {0:?} (expected map, remove, keep, accept, dismiss, confirm or reject)"
    )]
    UnknownAction(String),
    /// `map` without an NDC.
    #[error("map needs an NDC")]
    MapNeedsNdc,
    /// An NDC given with another action.
    #[error("an NDC goes only with map")]
    NdcOnlyWithMap,
    /// The NDC text is not an NDC in any format.
    #[error("{text}: {problem}")]
    BadNdc { text: String, problem: String },
    /// A bare 10-digit code: three readings, no way to choose.
    #[error("{0}: a bare 10-digit NDC is ambiguous; give it with hyphens or as 11 digits")]
    AmbiguousNdc(String),
    /// A new 6-digit labeler's 12-digit code has no 11-digit form.
    #[error(
        "{0}: a 12-digit NDC with a new 6-digit labeler has no 11-digit form, and a mapping needs one"
    )]
    NewLabelerNdc(String),
    /// `dismiss` without a reason.
    #[error("dismissing needs a note saying why")]
    DismissNeedsNote,
    /// `confirm` / `reject` of a held link without a reason.
    #[error("confirming or rejecting a held link needs a note saying what was checked")]
    LinkDecisionNeedsNote,
}

impl DecisionError {
    /// Whether the problem is the NDC's (so an edge can name its NDC field).
    pub fn about_ndc(&self) -> bool {
        matches!(
            self,
            DecisionError::MapNeedsNdc
                | DecisionError::NdcOnlyWithMap
                | DecisionError::BadNdc { .. }
                | DecisionError::AmbiguousNdc(_)
                | DecisionError::NewLabelerNdc(_)
        )
    }
}

impl Decision {
    /// Reads an action word, an optional NDC (any format that names one
    /// 11-digit NDC) and an optional note. Blank texts count as absent.
    pub fn parse(
        action: &str,
        ndc_text: Option<&str>,
        note: Option<&str>,
    ) -> Result<Decision, DecisionError> {
        let ndc_text = ndc_text.map(str::trim).filter(|t| !t.is_empty());
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        let decision = match action.trim() {
            "map" => Decision::Map(exact_ndc(ndc_text.ok_or(DecisionError::MapNeedsNdc)?)?),
            "remove" => Decision::Remove,
            "keep" => Decision::Keep,
            "accept" => Decision::Accept,
            "dismiss" => Decision::Dismiss {
                note: note.ok_or(DecisionError::DismissNeedsNote)?.to_string(),
            },
            "confirm" => Decision::Confirm {
                note: note
                    .ok_or(DecisionError::LinkDecisionNeedsNote)?
                    .to_string(),
            },
            "reject" => Decision::Reject {
                note: note
                    .ok_or(DecisionError::LinkDecisionNeedsNote)?
                    .to_string(),
            },
            other => return Err(DecisionError::UnknownAction(other.to_string())),
        };
        if ndc_text.is_some() && !matches!(decision, Decision::Map(_)) {
            return Err(DecisionError::NdcOnlyWithMap);
        }
        Ok(decision)
    }

    /// The action word, as stored in `exceptions.resolution` and the audit
    /// (`dismiss` for a dismissal).
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Dismiss { .. } => "dismiss",
            other => other.action().map_or("dismiss", |a| a.as_str()),
        }
    }

    /// The fitting-action word this decision is (None for a dismissal,
    /// which fits every kind).
    pub fn action(&self) -> Option<Action> {
        match self {
            Decision::Map(_) => Some(Action::Map),
            Decision::Remove => Some(Action::Remove),
            Decision::Keep => Some(Action::Keep),
            Decision::Accept => Some(Action::Accept),
            Decision::Confirm { .. } => Some(Action::Confirm),
            Decision::Reject { .. } => Some(Action::Reject),
            Decision::Dismiss { .. } => None,
        }
    }

    /// The note a decision cannot be made without (dismiss, confirm, reject).
    pub fn required_note(&self) -> Option<&str> {
        match self {
            Decision::Dismiss { note } | Decision::Confirm { note } | Decision::Reject { note } => {
                Some(note)
            }
            _ => None,
        }
    }

    /// The NDC a mapping maps to.
    pub fn ndc(&self) -> Option<Ndc11> {
        match self {
            Decision::Map(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Map(n) => write!(f, "map to {}", n.hyphenated()),
            other => f.write_str(other.as_str()),
        }
    }
}

/// One 11-digit NDC from text in any format, or why not.
fn exact_ndc(text: &str) -> Result<Ndc11, DecisionError> {
    match ndc::parse(text) {
        Ok(p) => match p.reading {
            NdcReading::Exact(n) => Ok(n),
            NdcReading::Ambiguous(_) => Err(DecisionError::AmbiguousNdc(text.to_string())),
            NdcReading::NewLabeler(_) => Err(DecisionError::NewLabelerNdc(text.to_string())),
        },
        Err(e) => Err(DecisionError::BadNdc {
            text: text.to_string(),
            problem: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ndc(digits: &str) -> Ndc11 {
        Ndc11::from_digits(digits).expect("valid test NDC")
    }

    /// Action, NDC text, note, and what they read as.
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Result<Decision, DecisionError>,
    );

    #[test]
    fn parse_reads_every_decision_and_refuses_what_cannot_be_one() {
        use DecisionError as E;
        let cases: &[Case] = &[
            (
                "map",
                Some("0777-3105-02"),
                None,
                Ok(Decision::Map(ndc("00777310502"))),
            ),
            (
                "map",
                Some(" 00777310502 "),
                Some("n"),
                Ok(Decision::Map(ndc("00777310502"))),
            ),
            ("remove", None, Some(" "), Ok(Decision::Remove)),
            ("keep", Some(""), None, Ok(Decision::Keep)),
            ("accept", None, None, Ok(Decision::Accept)),
            (
                "dismiss",
                None,
                Some(" not ours "),
                Ok(Decision::Dismiss {
                    note: "not ours".into(),
                }),
            ),
            ("map", None, None, Err(E::MapNeedsNdc)),
            ("map", Some("  "), None, Err(E::MapNeedsNdc)),
            ("remove", Some("0777-3105-02"), None, Err(E::NdcOnlyWithMap)),
            (
                "map",
                Some("0777310502"),
                None,
                Err(E::AmbiguousNdc("0777310502".into())),
            ),
            ("dismiss", None, None, Err(E::DismissNeedsNote)),
            ("dismiss", None, Some("   "), Err(E::DismissNeedsNote)),
            ("merge", None, None, Err(E::UnknownAction("merge".into()))),
        ];
        for (action, ndc_text, note, want) in cases {
            assert_eq!(
                &Decision::parse(action, *ndc_text, *note),
                want,
                "{action} {ndc_text:?} {note:?}"
            );
        }
    }

    #[test]
    fn a_bad_ndc_is_named_with_its_problem() {
        let e = Decision::parse("map", Some("12-34"), None).unwrap_err();
        assert!(
            matches!(&e, DecisionError::BadNdc { text, .. } if text == "12-34"),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("12-34: "), "{e}");
        assert!(e.about_ndc());
        assert!(!DecisionError::DismissNeedsNote.about_ndc());
    }

    #[test]
    fn words_and_actions_agree() {
        for (d, word) in [
            (Decision::Map(ndc("00777310502")), "map"),
            (Decision::Remove, "remove"),
            (Decision::Keep, "keep"),
            (Decision::Accept, "accept"),
            (Decision::Dismiss { note: "x".into() }, "dismiss"),
        ] {
            assert_eq!(d.as_str(), word);
            assert_eq!(
                d.action().map(|a| a.as_str()),
                (word != "dismiss").then_some(word)
            );
        }
    }
}
