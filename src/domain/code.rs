//! Drug codes as providers send them, with the coding system normalized.
//!
//! Providers spell coding systems many ways (`NDC`, `ndc`, `National Drug
//! Code`, the FHIR URI, the HL7 OID). `CodeSystem::from_label` folds the
//! spellings we know into one value and keeps anything else as `Other`, so a
//! code is never dropped for an unfamiliar label.

use serde::{Deserialize, Serialize};

/// A coding system, normalized from whatever label the document used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeSystem {
    /// National Drug Code (FDA); the only system rxsync maps directly.
    Ndc,
    /// RxNorm concept unique identifier (RxCUI).
    RxNorm,
    /// SNOMED CT.
    Snomed,
    /// Cerner Multum drug identifiers.
    Multum,
    /// Wolters Kluwer Medi-Span identifiers.
    MediSpan,
    /// First Databank (NDDF) identifiers.
    Fdb,
    /// Anything else, with the label as the document gave it (trimmed).
    Other(String),
}

impl CodeSystem {
    /// Folds a coding-system label (a CCR `CodingSystem` text, a FHIR
    /// `system` URI or an HL7 OID) into a known system.
    pub fn from_label(label: &str) -> CodeSystem {
        let trimmed = label.trim();
        let key: String = trimmed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        let key = key.trim_end_matches('/');
        match key {
            "ndc"
            | "nationaldrugcode"
            | "http://hl7.org/fhir/sid/ndc"
            | "urn:oid:2.16.840.1.113883.6.69"
            | "2.16.840.1.113883.6.69"
            | "fdandc"
            | "ndc11"
            | "ndc10" => CodeSystem::Ndc,
            "rxnorm"
            | "rxcui"
            | "http://www.nlm.nih.gov/research/umls/rxnorm"
            | "urn:oid:2.16.840.1.113883.6.88"
            | "2.16.840.1.113883.6.88" => CodeSystem::RxNorm,
            "snomed"
            | "snomedct"
            | "sct"
            | "http://snomed.info/sct"
            | "urn:oid:2.16.840.1.113883.6.96"
            | "2.16.840.1.113883.6.96" => CodeSystem::Snomed,
            "multum" | "multumdrugid" | "cernermultum" => CodeSystem::Multum,
            "medispan" | "medispangpi" | "gpi" => CodeSystem::MediSpan,
            "fdb" | "nddf" | "firstdatabank" | "http://www.fdbhealth.com/nddf" => CodeSystem::Fdb,
            _ => CodeSystem::Other(trimmed.to_string()),
        }
    }

    /// The stable label rxsync writes in its own output and database.
    pub fn label(&self) -> &str {
        match self {
            CodeSystem::Ndc => "NDC",
            CodeSystem::RxNorm => "RxNorm",
            CodeSystem::Snomed => "SNOMED-CT",
            CodeSystem::Multum => "Multum",
            CodeSystem::MediSpan => "MediSpan",
            CodeSystem::Fdb => "FDB",
            CodeSystem::Other(label) => label,
        }
    }
}

/// One code on a drug, as the document carried it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Code {
    /// The normalized coding system.
    pub system: CodeSystem,
    /// The system exactly as the document spelled it (kept for provenance).
    pub system_original: String,
    /// The code value, trimmed of surrounding whitespace.
    pub value: String,
    /// A display text attached to the code, when the document gave one.
    pub display: Option<String>,
}

impl Code {
    /// Builds a code from a system label and a value as found in a document.
    pub fn new(system_label: &str, value: &str, display: Option<&str>) -> Code {
        Code {
            system: CodeSystem::from_label(system_label),
            system_original: system_label.trim().to_string(),
            value: value.trim().to_string(),
            display: display
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coding_system_spellings_fold() {
        let cases = [
            ("NDC", CodeSystem::Ndc),
            ("ndc", CodeSystem::Ndc),
            ("National Drug Code", CodeSystem::Ndc),
            ("http://hl7.org/fhir/sid/ndc", CodeSystem::Ndc),
            ("urn:oid:2.16.840.1.113883.6.69", CodeSystem::Ndc),
            ("RxNorm", CodeSystem::RxNorm),
            (
                "http://www.nlm.nih.gov/research/umls/rxnorm",
                CodeSystem::RxNorm,
            ),
            ("SNOMED-CT", CodeSystem::Snomed),
            ("http://snomed.info/sct", CodeSystem::Snomed),
            ("Multum", CodeSystem::Multum),
            ("MediSpan", CodeSystem::MediSpan),
            ("Medi-Span", CodeSystem::MediSpan),
            (
                "2.16.840.1.113883.6.238",
                CodeSystem::Other("2.16.840.1.113883.6.238".into()),
            ),
        ];
        for (label, want) in cases {
            assert_eq!(CodeSystem::from_label(label), want, "label {label:?}");
        }
    }
}
