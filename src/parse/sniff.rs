//! Telling a CCR, a C-CDA, FHIR JSON or FHIR XML apart by looking at the
//! first bytes.

use super::{DocFormat, ParseError};

/// Guesses the format of a document from its first significant bytes and,
/// for XML, the root element's name and namespace.
pub fn sniff(bytes: &[u8]) -> Result<DocFormat, ParseError> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(ParseError::Empty);
    };
    if let Some(offset) = body.iter().position(|&b| b == 0) {
        return Err(ParseError::Binary { offset });
    }
    match body[start] {
        b'{' | b'[' => Ok(DocFormat::FhirJson),
        b'<' => Ok(sniff_xml_root(body).unwrap_or(DocFormat::Ccr)),
        _ => Err(ParseError::UnknownFormat {
            start: String::from_utf8_lossy(&body[start..body.len().min(start + 16)]).into_owned(),
        }),
    }
}

/// Finds the root element's name and namespace well enough to tell FHIR
/// XML and C-CDA (a `ClinicalDocument` in `urn:hl7-org:v3`, prefixed or
/// not) from the rest. Anything else is handed to the CCR reader, which
/// gives the precise error for XML that is not a CCR.
fn sniff_xml_root(body: &[u8]) -> Option<DocFormat> {
    let head = &body[..body.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let mut rest = text.as_ref();
    loop {
        let open = rest.find('<')?;
        rest = &rest[open + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = name.rsplit(':').next().unwrap_or(name);
        return Some(if tag.contains("http://hl7.org/fhir") {
            DocFormat::FhirXml
        } else if local == "ClinicalDocument" && tag.contains("urn:hl7-org:v3") {
            DocFormat::Ccda
        } else {
            DocFormat::Ccr
        });
    }
}
