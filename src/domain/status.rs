//! Medication status, normalized across FHIR DSTU2, STU3, R4, R5 and CCR's
//! free text. The original text always travels beside the normalized value.

use serde::Serialize;

/// A medication's status in rxsync's own vocabulary (R4 MedicationRequest
/// codes plus the statement-only ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MedStatus {
    Active,
    OnHold,
    Completed,
    Stopped,
    Cancelled,
    Draft,
    Intended,
    NotTaken,
    EnteredInError,
    Unknown,
    /// Known only from fills (pharmacy claims, dispenses): filled recently
    /// enough that the supply may still last, which is not proof that the
    /// drug is taken.
    Dispensed,
}

impl MedStatus {
    /// Normalizes a FHIR status code or a CCR `Status/Text`, case-insensitively.
    pub fn normalize(raw: &str) -> MedStatus {
        let key: String = raw
            .trim()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "active" | "current" | "inprogress" | "recorded" => MedStatus::Active,
            "onhold" | "suspended" | "hold" => MedStatus::OnHold,
            "completed" | "complete" | "ended" | "inactive" | "priorhistory" | "expired" => {
                MedStatus::Completed
            }
            "stopped" | "discontinued" | "dc" => MedStatus::Stopped,
            "cancelled" | "canceled" | "declined" => MedStatus::Cancelled,
            "draft" | "preparation" => MedStatus::Draft,
            "intended" | "planned" => MedStatus::Intended,
            "nottaken" | "notdone" => MedStatus::NotTaken,
            "enteredinerror" | "nullified" | "error" => MedStatus::EnteredInError,
            "dispensed" | "filled" => MedStatus::Dispensed,
            _ => MedStatus::Unknown,
        }
    }

    /// The kebab-case code rxsync writes.
    pub fn as_str(&self) -> &'static str {
        match self {
            MedStatus::Active => "active",
            MedStatus::OnHold => "on-hold",
            MedStatus::Completed => "completed",
            MedStatus::Stopped => "stopped",
            MedStatus::Cancelled => "cancelled",
            MedStatus::Draft => "draft",
            MedStatus::Intended => "intended",
            MedStatus::NotTaken => "not-taken",
            MedStatus::EnteredInError => "entered-in-error",
            MedStatus::Unknown => "unknown",
            MedStatus::Dispensed => "dispensed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_every_version_normalize() {
        let rows = [
            ("active", MedStatus::Active),
            ("ACTIVE", MedStatus::Active),
            ("Active", MedStatus::Active),
            ("on-hold", MedStatus::OnHold),
            ("completed", MedStatus::Completed),
            ("ended", MedStatus::Completed),
            ("Discontinued", MedStatus::Stopped),
            ("stopped", MedStatus::Stopped),
            ("cancelled", MedStatus::Cancelled),
            ("entered-in-error", MedStatus::EnteredInError),
            ("intended", MedStatus::Intended),
            ("not-taken", MedStatus::NotTaken),
            ("recorded", MedStatus::Active),
            ("dispensed", MedStatus::Dispensed),
            ("whatever", MedStatus::Unknown),
        ];
        for (raw, want) in rows {
            assert_eq!(MedStatus::normalize(raw), want, "status {raw:?}");
        }
    }
}
