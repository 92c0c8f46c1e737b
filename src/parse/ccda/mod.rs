//! C-CDA (HL7 Consolidated CDA, R1.1 and R2.1) medications, read with
//! roxmltree.
//!
//! A `ClinicalDocument` in `urn:hl7-org:v3` with a `structuredBody` is read
//! section by section: the Medications section (LOINC 10160-0, entries
//! optional or required), Medications Administered (29549-3), Discharge
//! Medications (10183-2 / 75311-1) and Admission Medications (42346-7). Each
//! `substanceAdministration` of mood EVN (taken) or INT (prescribed) becomes
//! a `MedRecord` labelled with its section; a negated one
//! (`negationInd="true"`) is left out with the reason; a section that says
//! there are no medications yields none and says so. A document with no
//! structured body (unstructured, or none) is refused: rxsync cannot tell
//! what it lists.
//!
//! A tree is built (unlike the CCR reader's stream) because entries point
//! into the section narrative by ID (`originalText/reference`), and the
//! reviewer's excerpt is the entry plus the narrative row it references.
//!
//! What it must never do:
//! - read a `substanceAdministration` outside a medications section as a
//!   medication (immunizations and procedures use the same element);
//! - expand an entity or accept a DTD: any `<!DOCTYPE`/`<!ENTITY` is refused
//!   before parsing, and roxmltree is told to refuse DTDs too;
//! - nest deeper than `MAX_DEPTH` or recurse over the tree (walks are
//!   iterative);
//! - interpret a code, a date or a status beyond naming v3 statuses in
//!   `MedStatus`'s words: that is `normalize`'s job;
//! - panic, on any input.

mod activity;
mod dosage;
mod narrative;
mod pretty;
mod section;
#[cfg(test)]
mod tests;
mod xml;

use roxmltree::{Document, Node, ParsingOptions};

use super::decode;
use super::{DocFormat, ParseError, ParsedDocument, Position, Problem, ProblemKind};
use narrative::Narrative;
use xml::{Edge, attr, child, children, identifier, is, text_of, traverse};

/// How deep elements may nest. Real C-CDAs stay under 30 levels (narrative
/// tables inside sections inside components); the limit stops hostile input.
const MAX_DEPTH: usize = 256;

/// Reads the medications of a C-CDA document, as `options` ask.
pub fn parse_with(
    bytes: &[u8],
    options: super::ParseOptions,
) -> Result<ParsedDocument, ParseError> {
    let decoded = decode::to_utf8(bytes)?;
    let text = std::str::from_utf8(&decoded.bytes).map_err(|e| ParseError::Binary {
        offset: e.valid_up_to() + decoded.skipped,
    })?;
    // Refused before parsing, so that no parser setting can ever let one in.
    if let Some(offset) = text.find("<!DOCTYPE").or_else(|| text.find("<!ENTITY")) {
        return Err(ParseError::Dtd {
            at: Position::of_offset(text.as_bytes(), offset),
        });
    }
    let parsing = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, parsing).map_err(crate::parse::roxml_error)?;
    let at = |offset: usize| Position::of_offset(text.as_bytes(), offset);
    check_depth(&doc, &at)?;
    let root = doc.root_element();
    if !is(root, "ClinicalDocument") {
        let name = root.tag_name().name();
        let root_name = match root.tag_name().namespace() {
            Some(ns) => format!("{{{ns}}}{name}"),
            None => name.to_string(),
        };
        return Err(ParseError::NotCcda {
            root: root_name,
            at: at(root.range().start),
        });
    }
    let Some(body) = child(root, "component").and_then(|c| child(c, "structuredBody")) else {
        let what = if child(root, "component")
            .and_then(|c| child(c, "nonXMLBody"))
            .is_some()
        {
            "an unstructured body (nonXMLBody)"
        } else {
            "no body"
        };
        return Err(ParseError::NoStructuredBody {
            what,
            at: at(root.range().start),
        });
    };
    let narrative = Narrative::index(&doc);
    let mut found = section::Found::default();
    section::read(body, &narrative, text, options.excerpts, &mut found, at);
    let mut problems = Vec::new();
    let patients: Vec<String> = children(root, "recordTarget")
        .filter_map(|t| child(t, "patientRole"))
        .filter_map(patient_id)
        .collect();
    if patients.len() > 1 {
        problems.push(Problem {
            kind: ProblemKind::SeveralPatients,
            detail: format!(
                "the C-CDA names {} patients (recordTarget {})",
                patients.len(),
                patients.join(", ")
            ),
        });
    }
    if found.sections == 0 && found.unreadable.is_empty() {
        found.left_out.push(super::LeftOut {
            source: None,
            reason: format!(
                "the C-CDA ({}) has no medications section: it lists no medications",
                document_kind(root)
            ),
        });
    }
    Ok(ParsedDocument {
        format: DocFormat::Ccda,
        records: found.records,
        problems,
        left_out: found.left_out,
        unreadable: found.unreadable,
        patient_ref: patients.into_iter().next(),
    })
}

/// Reads the medications of a C-CDA document, with excerpts.
pub fn parse(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    parse_with(bytes, super::ParseOptions::default())
}

/// The patient's first identifier: its extension (an MRN, usually), else
/// the whole `root^extension` form.
fn patient_id(role: Node) -> Option<String> {
    children(role, "id").find_map(|id| {
        attr(id, "extension")
            .map(str::to_string)
            .or_else(|| identifier(id))
    })
}

/// The document's type, for messages: its code's display name or title.
fn document_kind(root: Node) -> String {
    let code = child(root, "code");
    let title = child(root, "title").and_then(text_of);
    match (code.and_then(|c| attr(c, "code")), title) {
        (Some(code), Some(title)) => format!("{title}, LOINC {code}"),
        (Some(code), None) => match code_display(root) {
            Some(display) => format!("{display}, LOINC {code}"),
            None => format!("LOINC {code}"),
        },
        (None, Some(title)) => title,
        (None, None) => "a ClinicalDocument".to_string(),
    }
}

fn code_display(root: Node) -> Option<String> {
    child(root, "code")
        .and_then(|c| attr(c, "displayName"))
        .map(str::to_string)
}

/// Refuses nesting deeper than `MAX_DEPTH`, walking the tree without recursion.
fn check_depth(doc: &Document, at: &impl Fn(usize) -> Position) -> Result<(), ParseError> {
    let mut depth = 0usize;
    for edge in traverse(doc.root()) {
        match edge {
            Edge::Open(n) if n.is_element() => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ParseError::TooDeep {
                        limit: MAX_DEPTH,
                        at: at(n.range().start),
                    });
                }
            }
            Edge::Close(n) if n.is_element() => depth -= 1,
            _ => {}
        }
    }
    Ok(())
}
