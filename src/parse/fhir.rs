//! FHIR medication resources (R4 first; STU3, DSTU2 and R5 shapes).
//! (Being written: see the helper's task.)

use super::{ParseError, ParsedDocument};

/// Reads a FHIR Bundle or single medication resource in JSON.
pub fn parse_json(_bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    Err(ParseError::Empty)
}

/// Reads a FHIR Bundle or single medication resource in XML.
pub fn parse_xml(_bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    Err(ParseError::Empty)
}
