//! Parsing provider documents into medication records.
//!
//! Pure functions over bytes: no I/O, no clock, no database. A document that
//! cannot be read at all (malformed, hostile, not a medication document) is a
//! `ParseError` that says what and where; anything readable is returned as
//! `MedRecord`s together with the problems met on the way (style.md: bad input
//! becomes data). Parsers never decide what a code means: that is `normalize`.

pub mod ccda;
pub mod ccr;
mod decode;
pub mod fhir;
mod sniff;

pub use sniff::sniff;

use crate::domain::Code;
use serde::Serialize;

/// The kinds of document rxsync reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocFormat {
    /// ASTM E2369 Continuity of Care Record (XML), alone or in an Atom feed.
    Ccr,
    /// HL7 C-CDA (R1.1, R2.1): a `ClinicalDocument` in `urn:hl7-org:v3`.
    Ccda,
    /// A FHIR resource or Bundle in JSON.
    FhirJson,
    /// A FHIR resource or Bundle in XML.
    FhirXml,
}

impl DocFormat {
    /// The media type recorded with a stored document.
    pub fn media_type(&self) -> &'static str {
        match self {
            DocFormat::Ccr | DocFormat::Ccda => "application/xml",
            DocFormat::FhirJson => "application/fhir+json",
            DocFormat::FhirXml => "application/fhir+xml",
        }
    }

    /// The format named by `as_str`, as read back from the database.
    pub fn from_name(name: &str) -> Option<DocFormat> {
        [
            DocFormat::Ccr,
            DocFormat::Ccda,
            DocFormat::FhirJson,
            DocFormat::FhirXml,
        ]
        .into_iter()
        .find(|f| f.as_str() == name)
    }

    /// The short name used on the command line and in the database.
    pub fn as_str(&self) -> &'static str {
        match self {
            DocFormat::Ccr => "ccr",
            DocFormat::Ccda => "ccda",
            DocFormat::FhirJson => "fhir-json",
            DocFormat::FhirXml => "fhir-xml",
        }
    }
}

/// A position in a document, 1-based, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Positions of ever larger byte offsets in one document, in linear work
/// for the whole document: it carries its line and column from one offset
/// to the next instead of rescanning the prefix (`Position::of_offset`),
/// which thousands of unreadable entries made quadratic. Columns count
/// characters (UTF-8 lead bytes); an offset behind the last one asked
/// restarts from the top.
pub struct Positions<'a> {
    bytes: &'a [u8],
    /// The offset the line and column below are for.
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> Positions<'a> {
    pub fn new(bytes: &'a [u8]) -> Positions<'a> {
        Positions {
            bytes,
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    /// The line and column of `offset` (clamped to the document).
    pub fn at(&mut self, offset: usize) -> Position {
        let end = offset.min(self.bytes.len());
        if end < self.offset {
            *self = Positions::new(self.bytes);
        }
        for &b in &self.bytes[self.offset..end] {
            if b == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if b & 0xC0 != 0x80 {
                self.column += 1;
            }
        }
        self.offset = end;
        Position {
            line: self.line,
            column: self.column,
        }
    }
}

impl Position {
    /// The line and column (in characters) of a byte offset in `bytes`.
    pub fn of_offset(bytes: &[u8], offset: usize) -> Position {
        let end = offset.min(bytes.len());
        let before = &bytes[..end];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Position { line, column }
    }
}

/// Why a document could not be read. Every variant says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The document had no bytes, or only whitespace.
    #[error("the document is empty")]
    Empty,
    /// The bytes are not text (NUL bytes or invalid UTF-8 where text was required).
    #[error("the document is binary, not text (at byte {offset})")]
    Binary { offset: usize },
    /// Neither XML nor JSON.
    #[error("the document is neither XML nor JSON (it starts with {start:?})")]
    UnknownFormat { start: String },
    /// XML or JSON that is not well-formed.
    #[error("malformed {syntax} at {at}: {message}")]
    Malformed {
        syntax: &'static str,
        at: Position,
        message: String,
    },
    /// A DTD or entity declaration: refused, never expanded.
    #[error("a DTD or entity declaration at {at} is refused (rxsync never expands entities)")]
    Dtd { at: Position },
    /// Well-formed XML whose root is not a CCR (a CDA/CCD, say).
    #[error(
        "expected a CCR (ContinuityOfCareRecord in urn:astm-org:CCR), found root element {root:?} at {at}"
    )]
    NotCcr { root: String, at: Position },
    /// Well-formed XML read as C-CDA whose root is not a v3 ClinicalDocument.
    #[error(
        "expected a C-CDA (ClinicalDocument in urn:hl7-org:v3), found root element {root:?} at {at}"
    )]
    NotCcda { root: String, at: Position },
    /// A ClinicalDocument without a structuredBody: an unstructured
    /// document (a scanned PDF, plain text) or a header alone. What it
    /// lists cannot be told, so it is neither read nor taken as "none".
    #[error(
        "the C-CDA ClinicalDocument at {at} has {what}: rxsync reads medications only from the sections of a structuredBody"
    )]
    NoStructuredBody { what: &'static str, at: Position },
    /// Well-formed JSON that is not a FHIR resource or one we do not read.
    #[error("expected a FHIR Bundle or medication resource, found {found} at {at}")]
    NotFhir { found: String, at: Position },
    /// A FHIR document made only of drug resources (Medication,
    /// MedicationKnowledge, Substance) that names no patient: formulary or
    /// reference data, not anybody's medication list.
    #[error(
        "the document is drug data ({found}), not a patient's medication list: it names no patient and holds no MedicationRequest, MedicationStatement, MedicationDispense, MedicationAdministration or claim"
    )]
    DrugData { found: String },
    /// The provider answered with an OperationOutcome instead of data.
    #[error("the provider answered with an OperationOutcome: {issues}")]
    OperationOutcome { issues: String },
    /// The XML declared an encoding we cannot decode.
    #[error("unsupported encoding {encoding:?} declared at {at}")]
    Encoding { encoding: String, at: Position },
    /// A structure nested deeper than rxsync accepts (a defence against hostile input).
    #[error("nesting deeper than {limit} levels at {at}")]
    TooDeep { limit: usize, at: Position },
}

/// A roxmltree error (FHIR XML, C-CDA) as ours, with its line and column:
/// a DTD or an entity loop is refused as such, anything else is malformed.
pub(crate) fn roxml_error(e: roxmltree::Error) -> ParseError {
    let pos = e.pos();
    let at = Position {
        line: pos.row as usize,
        column: pos.col as usize,
    };
    match e {
        roxmltree::Error::DtdDetected | roxmltree::Error::EntityReferenceLoop(_) => {
            ParseError::Dtd { at }
        }
        other => ParseError::Malformed {
            syntax: "XML",
            at,
            message: other.to_string(),
        },
    }
}

/// A problem met while reading a document that did not stop the reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// What was found, in words a clinician or operator can act on.
    pub detail: String,
}

/// Problems the parsers report as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A `medicationReference` that points at nothing in the document.
    UnresolvedReference,
    /// A medication entry with neither a code nor a name.
    NoDrug,
    /// A resource or element that was skipped (not a medication, or not readable).
    Skipped,
    /// The document names more than one patient (an Atom feed of several
    /// patients' CCRs, a FHIR search across subjects): it cannot all belong
    /// to the one local patient it is imported for.
    SeveralPatients,
}

/// A strength as written: a value and its unit (combination products have several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Strength {
    pub value: String,
    pub unit: Option<String>,
}

/// Where a record came from inside its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceRef {
    /// `Medication` for a CCR entry, `substanceAdministration` for a C-CDA
    /// entry; the FHIR resource type otherwise.
    pub kind: String,
    /// CCRDataObjectID, the C-CDA `id` (`root^extension`, or its position
    /// `10160-0 entry 2` when it has none), or the FHIR resource id.
    pub id: Option<String>,
}

/// What a record shows of the patient's medication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// An order, a statement, a dispense, an administration, a CCR entry:
    /// what the document says of the drug and its use.
    #[default]
    Record,
    /// A pharmacy claim line (`ExplanationOfBenefit`): dispense evidence. It
    /// shows that a drug was filled, never that it is taken now.
    Claim,
}

impl Evidence {
    /// The snake_case name stored and shown (`record`, `claim`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Evidence::Record => "record",
            Evidence::Claim => "claim",
        }
    }
}

/// A resource or element of a readable document that yields no record,
/// and why (design.md invariant 8: every record is read, skipped with a
/// stated reason, or raised as an exception).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// The resource or element, when it can be named.
    pub source: Option<SourceRef>,
    /// Why it is not a record, in words an operator can act on.
    pub reason: String,
}

/// A record of a readable document that could not be read (a field of the
/// wrong JSON type, a duplicated key, a required element missing): it is
/// named, with its text, so that it becomes an `unreadable_record`
/// exception instead of disappearing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadableRecord {
    /// The resource type and id, as far as they could be read.
    pub source: Option<SourceRef>,
    /// Where the record starts in the document, when known.
    pub at: Option<Position>,
    /// Its position among the document's entries (0-based), when it was one.
    pub entry: Option<usize>,
    /// What could not be read, and where.
    pub reason: String,
    /// The record's source text, cut to `UNREADABLE_EXCERPT_LIMIT` bytes.
    pub excerpt: String,
}

/// How much of an unreadable record's text is kept for the reviewer.
pub const UNREADABLE_EXCERPT_LIMIT: usize = 2048;

/// An unreadable record's excerpt: at most `UNREADABLE_EXCERPT_LIMIT`
/// bytes of `text`, cut at a character boundary, with `…` when cut.
pub(crate) fn unreadable_excerpt(text: &str) -> String {
    if text.len() <= UNREADABLE_EXCERPT_LIMIT {
        return text.to_string();
    }
    let mut end = UNREADABLE_EXCERPT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// How many unreadable records of one document are listed one by one.
/// Beyond them, one more `UnreadableRecord` (the first entry left
/// unlisted, its reason saying how many more could not be read) stands for
/// the rest: a document of thousands of broken entries must neither cost
/// thousands of exceptions nor hide that it has them.
pub const MAX_UNREADABLE_RECORDS: usize = 100;

/// One medication entry as the document states it. Nothing is interpreted
/// yet: codes are as given, dates are the document's text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MedRecord {
    /// The element or resource this record was read from.
    pub source: Option<SourceRef>,
    /// The document section the record was listed in, when the format has
    /// sections (C-CDA: `Medications`, `Medications Administered`,
    /// `Discharge Medications`, `Admission Medications`).
    pub section: Option<String>,
    /// References to other records of the same document that describe the
    /// same medication (a dispense's `authorizingPrescription`, a statement's
    /// `basedOn`/`derivedFrom`, a request's `priorPrescription`), as
    /// `Type/id`. Used to fold record-level repeats.
    pub related: Vec<String>,
    /// The drug's name text (CCR ProductName/Text, FHIR code text or display).
    pub name: Option<String>,
    /// The brand name, when the document gives one separately.
    pub brand: Option<String>,
    /// Every code on the drug itself, in document order.
    pub codes: Vec<Code>,
    /// Codes of the drug's ingredients (FHIR `Medication.ingredient`), kept
    /// apart: an ingredient's NDC does not identify the product (a compound
    /// of three NDC-coded ingredients is not the first of them).
    pub ingredient_codes: Vec<Code>,
    /// Strengths (value and unit).
    pub strengths: Vec<Strength>,
    /// Dose form (tablet, capsule, …).
    pub form: Option<String>,
    /// Route of administration.
    pub route: Option<String>,
    /// Dose per administration, as text (`1 tablet`, `10 mg`).
    pub dose: Option<String>,
    /// Frequency or timing, as text (`BID`, `every 8 hours`).
    pub frequency: Option<String>,
    /// Directions / sig texts.
    pub directions: Vec<String>,
    /// Status as the document wrote it.
    pub status: Option<String>,
    /// Start date text.
    pub start: Option<String>,
    /// Stop date text.
    pub stop: Option<String>,
    /// Prescription / authored / handed-over date text.
    pub prescribed: Option<String>,
    /// Prescriber, when given (name or reference display).
    pub prescriber: Option<String>,
    /// A record, or a claim line (dispense evidence only).
    pub evidence: Evidence,
    /// Days supply of a fill, as the document wrote it (claims, dispenses).
    pub days_supply: Option<String>,
    /// Quantity dispensed, as text (`30 tablet`).
    pub quantity: Option<String>,
    /// The pharmacy (or other dispenser), when given.
    pub dispenser: Option<String>,
    /// The source text of the element or resource this record was read from,
    /// for reviewers.
    pub excerpt: String,
    /// Problems with this record.
    pub problems: Vec<Problem>,
}

/// What a document yielded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedDocument {
    /// The format the document was read as.
    pub format: DocFormat,
    /// The medication records, in document order.
    pub records: Vec<MedRecord>,
    /// Problems that concern the document rather than one record.
    pub problems: Vec<Problem>,
    /// Resources or elements that yield no record, each with its reason.
    pub left_out: Vec<LeftOut>,
    /// Records that could not be read, named with their text.
    pub unreadable: Vec<UnreadableRecord>,
    /// The remote patient's id as the document names it (CCR Patient ActorID,
    /// FHIR subject reference), when present.
    pub patient_ref: Option<String>,
}

/// What a caller needs from a parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Fill `MedRecord::excerpt` with each record's source text. Importing
    /// does not need it (the document is stored and excerpts are re-derived
    /// when a reviewer asks), and skipping it spares a copy, or for FHIR
    /// JSON a second pass, per record. Without it `excerpt` is empty.
    pub excerpts: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { excerpts: true }
    }
}

/// Reads `bytes` as `format`, with excerpts.
pub fn parse(bytes: &[u8], format: DocFormat) -> Result<ParsedDocument, ParseError> {
    parse_with(bytes, format, ParseOptions::default())
}

/// Reads `bytes` as `format`. Everything but `excerpt` is the same whatever
/// the options.
pub fn parse_with(
    bytes: &[u8],
    format: DocFormat,
    options: ParseOptions,
) -> Result<ParsedDocument, ParseError> {
    match format {
        DocFormat::Ccr => ccr::parse_with(bytes, options),
        DocFormat::Ccda => ccda::parse_with(bytes, options),
        DocFormat::FhirJson => fhir::parse_json_with(bytes, options),
        DocFormat::FhirXml => {
            // The XML reader builds its excerpts along the way (from the
            // tree it maps); without them the records must still say so.
            let mut doc = fhir::parse_xml(bytes)?;
            if !options.excerpts {
                doc.records.iter_mut().for_each(|r| r.excerpt.clear());
            }
            Ok(doc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_honours_the_excerpt_option() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
        for (file, format) in [
            ("ccr/demo.xml", DocFormat::Ccr),
            ("ccda/r21-ccd.xml", DocFormat::Ccda),
            ("fhir/demo.json", DocFormat::FhirJson),
            ("fhir/bundle.xml", DocFormat::FhirXml),
        ] {
            let bytes =
                std::fs::read(format!("{dir}/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
            let with = parse_with(&bytes, format, ParseOptions { excerpts: true })
                .unwrap_or_else(|e| panic!("{e}"));
            let without = parse_with(&bytes, format, ParseOptions { excerpts: false })
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !with.records.is_empty() && with.records.iter().all(|r| !r.excerpt.is_empty()),
                "{file}"
            );
            assert!(
                without.records.iter().all(|r| r.excerpt.is_empty()),
                "{file}"
            );
            assert_eq!(with.records.len(), without.records.len(), "{file}");
        }
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let text = b"ab\ncd\xc3\xa9f\n";
        assert_eq!(
            Position::of_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        assert_eq!(
            Position::of_offset(text, 3),
            Position { line: 2, column: 1 }
        );
        assert_eq!(
            Position::of_offset(text, 7),
            Position { line: 2, column: 4 }
        );
        assert_eq!(
            Position::of_offset(text, 999),
            Position { line: 3, column: 1 }
        );
    }
}
