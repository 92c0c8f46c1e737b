//! FHIR medication documents (R4 first; STU3, DSTU2 and R5 shapes), in JSON
//! and XML, read into `MedRecord`s.
//!
//! A Bundle (searchset, collection, batch/transaction response, nested
//! Bundles too) or a single resource. MedicationRequest, MedicationStatement,
//! MedicationDispense, MedicationOrder (DSTU2) and MedicationAdministration
//! become records; a Medication that no record uses becomes a record of its
//! own so that its codes are not lost; an ExplanationOfBenefit (a claim)
//! yields one dispense-evidence record per line that names a drug and a
//! stated reason for each line that does not (`claim`); other resource types
//! in a Bundle are skipped silently. JSON is read typed and borrowed, never as a
//! `serde_json::Value` tree, because a large searchset must be cheap to read.
//!
//! This module must never do I/O, never panic on input, never expand an XML
//! entity and never interpret a code: that is `normalize`'s job.
//!
//! - `model`: the typed serde views of the FHIR elements we read;
//! - `json` and `xml`: from bytes to those views, errors with positions;
//! - `extract`: the document's resources to records, in order, with
//!   references resolved; `record`: one resource to one record; `claim`:
//!   one claim to its lines' records.

mod claim;
mod extract;
mod json;
mod model;
mod record;
mod xml;

#[cfg(test)]
mod tests;

use super::{ParseError, ParsedDocument};

/// Top-level resource types a document may be. Anything else alone (a
/// Patient, say) is not a medication document. A standalone
/// MedicationKnowledge is read like a Medication, because the HL7 examples
/// (and some formularies) send one with an NDC on it.
const READ_TOP_LEVEL: [&str; 10] = [
    "Bundle",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationOrder",
    "MedicationAdministration",
    "Medication",
    "MedicationKnowledge",
    "ExplanationOfBenefit",
    "OperationOutcome",
];

/// How deep Bundles may nest in Bundles (a batch-response holds searchsets).
const MAX_BUNDLE_DEPTH: usize = 4;

/// Reads a FHIR Bundle or single medication resource in JSON.
pub fn parse_json(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    json::parse(bytes)
}

/// Reads a FHIR Bundle or single medication resource in JSON, as `options` ask.
pub fn parse_json_with(
    bytes: &[u8],
    options: super::ParseOptions,
) -> Result<ParsedDocument, ParseError> {
    json::parse_with(bytes, options.excerpts)
}

/// Reads a FHIR Bundle or single medication resource in XML.
pub fn parse_xml(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    xml::parse(bytes)
}
