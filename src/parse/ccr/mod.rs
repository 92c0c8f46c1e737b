//! CCR (ASTM E2369) medications, read with quick-xml as a stream.
//!
//! This module turns a Continuity of Care Record (alone, or one or more CCRs
//! inside an Atom `<feed>`/`<entry>`) into one `MedRecord` per
//! `ContinuityOfCareRecord/Body/Medications/Medication`, plus the patient's
//! `ActorID`. It reads the default CCR namespace, a prefixed one, or none.
//!
//! What it must never do:
//! - read anything but `Body/Medications/Medication` as a medication (allergy
//!   agents under `Body/Alerts` also carry "NDC" codes);
//! - expand an entity or accept a DTD (billion laughs, external entities):
//!   any `<!DOCTYPE` is refused, and only the five predefined entities and
//!   character references are resolved;
//! - interpret a code, a date or a status: that is `normalize`'s job;
//! - build a tree or allocate per element outside a Medication: it streams
//!   with a plain quick-xml `Reader` over the bytes and keeps a stack of
//!   one-byte tags, so it stays close to a bare quick-xml scan (namespaces
//!   are resolved only where they decide something: see `own_namespace`);
//! - panic, on any input.

mod medication;
mod tag;
#[cfg(test)]
mod tests;
mod xml;

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::decode;
use super::{DocFormat, ParseError, ParsedDocument, Position, Problem, ProblemKind};
use medication::MedBuilder;
use tag::Tag;
use xml::{local_name, normalize_line_ends, own_namespace};

/// The CCR namespace (compared case-insensitively: a URN's scheme and
/// namespace id are case-insensitive, and exporters vary).
const CCR_NS: &str = "urn:astm-org:CCR";
/// The Atom namespace, for CCRs delivered in a feed.
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
/// How far below its ContinuityOfCareRecord a Medication is
/// (Body/Medications/Medication).
const MEDICATION_DEPTH: usize = 3;
/// How deep elements may nest. Real CCRs stay under 20 levels; the limit
/// only stops hostile input from growing the stack without bound.
const MAX_DEPTH: usize = 256;

/// Reads the medications of a CCR document (or an Atom feed of CCRs),
/// as `options` ask.
pub fn parse_with(
    bytes: &[u8],
    options: super::ParseOptions,
) -> Result<ParsedDocument, ParseError> {
    let text = decode::to_utf8(bytes)?;
    let mut scanner = Scanner::new(&text.bytes, text.has_cr);
    scanner.excerpts = options.excerpts;
    scanner.run().map_err(|e| match e {
        // Binary offsets are reported in the caller's bytes, not ours.
        ParseError::Binary { offset } => ParseError::Binary {
            offset: offset + text.skipped,
        },
        other => other,
    })
}

/// Reads the medications of a CCR document (or an Atom feed of CCRs).
pub fn parse(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    parse_with(bytes, super::ParseOptions::default())
}

/// What the root element turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// No root element seen yet.
    None,
    /// A `ContinuityOfCareRecord` root.
    Ccr,
    /// An Atom `feed` or `entry` that may hold CCRs at any depth.
    Atom,
    /// The root element has been closed; only misc may follow.
    Closed,
}

/// The text collected for the element being read. Almost every element
/// holds one piece of text, which is borrowed from the input as it is: only
/// an element whose text comes in pieces (or needs its line ends
/// normalized) is copied, into `Scanner::buf`. Before this, every text event
/// inside a Medication, indentation included, was copied into the buffer.
#[derive(Debug, Clone, Copy)]
enum Collected<'a> {
    Empty,
    Borrowed(&'a str),
    /// The pieces are joined in `Scanner::buf`.
    Joined,
}

/// The text `collected` stands for (`buf` holds it when it is `Joined`).
fn collected_text<'s>(collected: &Collected<'s>, buf: &'s str) -> &'s str {
    match *collected {
        Collected::Empty => "",
        Collected::Borrowed(text) => text,
        Collected::Joined => buf,
    }
}

/// The tag of an element named `name` (prefixed or not). Most documents
/// use the default namespace, so the name as written is tried first: a
/// known name has no `:`, and finding that out took a scan of every name.
fn classify(name: &str) -> Tag {
    match Tag::of(name) {
        Tag::Other => {
            let local = local_name(name);
            if local.len() == name.len() {
                Tag::Other
            } else {
                Tag::of(local)
            }
        }
        tag => tag,
    }
}

/// The streaming state: where we are, and what we have collected.
struct Scanner<'a> {
    /// The UTF-8 text being read (for excerpts and error positions).
    text: &'a [u8],
    reader: Reader<&'a [u8]>,
    /// One tag per open element, root first.
    stack: Vec<Tag>,
    root: Root,
    /// The root element's name as written, for the unclosed-root message.
    root_name: String,
    /// Stack index of the ContinuityOfCareRecord being read, if inside one.
    ccr_at: Option<usize>,
    /// How many ContinuityOfCareRecords were read (for an Atom feed).
    ccrs: usize,
    /// The Medication being read: its stack index and start offset.
    med: Option<(usize, usize)>,
    /// Reads Medications; one for the document, so its buffers are reused.
    builder: MedBuilder,
    /// Whether text events are collected (inside a Medication, or in the
    /// patient's ActorID); everywhere else text is never materialized.
    capture: bool,
    /// The text of the innermost element being read, when capturing.
    collected: Collected<'a>,
    /// Whether the document has a CR at all. Most have none, and then no
    /// text needs line-end normalization: one vectorized pass over the
    /// document replaces a search in every text event.
    has_cr: bool,
    /// Where pieces of text are joined when an element has more than one
    /// (entities, CDATA, comments, CR line ends); reused for the document.
    buf: String,
    patient_ref: Option<String>,
    /// Other patients named by the CCRs of a feed (a few suffice to say so).
    other_patients: Vec<String>,
    /// Whether to copy each Medication's source text into its record.
    excerpts: bool,
    records: Vec<super::MedRecord>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a [u8], has_cr: bool) -> Scanner<'a> {
        let mut reader = Reader::from_reader(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        Scanner {
            text,
            reader,
            stack: Vec::with_capacity(32),
            root: Root::None,
            root_name: String::new(),
            ccr_at: None,
            ccrs: 0,
            med: None,
            builder: MedBuilder::default(),
            capture: false,
            collected: Collected::Empty,
            has_cr,
            buf: String::new(),
            patient_ref: None,
            other_patients: Vec::new(),
            excerpts: true,
            records: Vec::new(),
        }
    }

    fn run(mut self) -> Result<ParsedDocument, ParseError> {
        loop {
            // With text events untrimmed, the end of the previous event is
            // the first byte of this one: the `<` of a tag.
            let before = self.reader.buffer_position() as usize;
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(error) => return Err(self.xml_error(&error)),
            };
            match event {
                Event::Start(e) => self.start(&e, before)?,
                Event::Empty(e) => {
                    self.start(&e, before)?;
                    self.end(before)?;
                }
                Event::End(_) => self.end(before)?,
                // Most text is indentation between elements we skip: only
                // look at it when it is collected or outside the root.
                Event::Text(t) if self.capture || self.stack.is_empty() => {
                    self.text(t.into_inner(), before)?;
                }
                Event::Text(_) => {}
                Event::CData(_) if self.stack.is_empty() => {
                    return Err(self.malformed(
                        before,
                        "a CDATA section outside the root element".to_string(),
                    ));
                }
                Event::CData(t) => self.text(t.into_inner(), before)?,
                Event::GeneralRef(r) => {
                    let resolved = self.resolve_ref(&r, before)?;
                    if self.capture {
                        self.push_owned(resolved.encode_utf8(&mut [0; 4]));
                    } else if self.stack.is_empty() {
                        self.text(Cow::Owned(resolved.to_string()), before)?;
                    }
                }
                Event::DocType(_) => {
                    return Err(ParseError::Dtd {
                        at: self.at(before),
                    });
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        self.finish()
    }

    fn start(&mut self, e: &BytesStart<'a>, before: usize) -> Result<(), ParseError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(ParseError::TooDeep {
                limit: MAX_DEPTH,
                at: self.at(before),
            });
        }
        // Outside a Medication, a CCR's elements matter only down to
        // Body/Medications/Medication (and Patient/ActorID): deeper ones,
        // most of a real CCR (Problems, Results, Alerts…), are never
        // looked at again, so their names are not classified.
        let irrelevant = self.med.is_none()
            && self
                .ccr_at
                .is_some_and(|ccr| self.stack.len() > ccr + MEDICATION_DEPTH);
        let tag = if irrelevant {
            Tag::Other
        } else {
            classify(e.name().as_ref())
        };
        if let Some((at, _)) = self.med {
            self.stack.push(tag);
            self.builder.start(&self.stack[at + 1..]);
            self.collected = Collected::Empty;
            return Ok(());
        }
        match (self.root, self.ccr_at) {
            (Root::None, _) => self.open_root(e, tag, before)?,
            (Root::Closed, _) => {
                return Err(self.malformed(
                    before,
                    format!("a second root element <{}>", e.name().as_ref()),
                ));
            }
            (_, Some(ccr)) => match (tag, &self.stack[ccr + 1..]) {
                (Tag::Medication, [Tag::Body, Tag::Medications]) => {
                    self.builder.begin();
                    self.med = Some((self.stack.len(), before));
                    self.capture = true;
                    self.collected = Collected::Empty;
                }
                (Tag::ActorId, [Tag::Patient]) => {
                    self.capture = true;
                    self.collected = Collected::Empty;
                }
                _ => {}
            },
            (_, None) => {
                if tag == Tag::Ccr && self.is_ccr_namespace(e) {
                    self.ccr_at = Some(self.stack.len());
                }
            }
        }
        self.stack.push(tag);
        Ok(())
    }

    fn end(&mut self, before: usize) -> Result<(), ParseError> {
        if self.stack.is_empty() {
            return Err(self.malformed(before, "an end tag with no open element".to_string()));
        }
        if let Some((at, start)) = self.med {
            if self.stack.len() > at + 1 {
                let text = collected_text(&self.collected, &self.buf);
                self.builder.end(&self.stack[at + 1..], text);
            } else {
                let end = self.reader.buffer_position() as usize;
                let excerpt = if self.excerpts {
                    self.text
                        .get(start..end)
                        .and_then(|s| std::str::from_utf8(s).ok())
                        .unwrap_or("")
                } else {
                    ""
                };
                self.records.push(self.builder.finish(excerpt));
                self.med = None;
                self.capture = false;
            }
            self.collected = Collected::Empty;
        } else if self.capture {
            self.capture = false;
            let id = collected_text(&self.collected, &self.buf).trim();
            // Every CCR of a feed names its patient: the first is the
            // document's; any other is a reason to stop and ask.
            match &self.patient_ref {
                _ if id.is_empty() => {}
                None => self.patient_ref = Some(id.to_string()),
                Some(first) if first != id && self.other_patients.len() < 8 => {
                    if !self.other_patients.iter().any(|p| p == id) {
                        self.other_patients.push(id.to_string());
                    }
                }
                Some(_) => {}
            }
            self.collected = Collected::Empty;
        }
        self.stack.pop();
        if self.ccr_at == Some(self.stack.len()) {
            self.ccr_at = None;
            self.ccrs += 1;
        }
        if self.stack.is_empty() {
            self.root = Root::Closed;
        }
        Ok(())
    }

    /// Collects text when capturing; outside the root element only
    /// whitespace may appear. `raw` is the text as written (before line-end
    /// normalization), so offsets into it are offsets into the document.
    fn text(&mut self, raw: Cow<'a, str>, before: usize) -> Result<(), ParseError> {
        if self.capture {
            match raw {
                Cow::Borrowed(piece) if !self.has_cr => self.push_borrowed(piece),
                Cow::Borrowed(piece) => match normalize_line_ends(piece) {
                    Cow::Borrowed(piece) => self.push_borrowed(piece),
                    Cow::Owned(piece) => self.push_owned(&piece),
                },
                Cow::Owned(piece) => self.push_owned(&normalize_line_ends(&piece)),
            }
        } else if self.stack.is_empty()
            && let Some(i) = raw
                .bytes()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            let place = if self.root == Root::Closed {
                "after"
            } else {
                "before"
            };
            return Err(self.malformed(before + i, format!("text {place} the root element")));
        }
        Ok(())
    }

    /// Adds a piece of the input to the collected text, copying only when
    /// it is not the first.
    fn push_borrowed(&mut self, piece: &'a str) {
        match self.collected {
            Collected::Empty => self.collected = Collected::Borrowed(piece),
            Collected::Borrowed(_) | Collected::Joined => self.push_owned(piece),
        }
    }

    /// Adds text that is not a slice of the input (or follows other text).
    fn push_owned(&mut self, piece: &str) {
        match self.collected {
            Collected::Empty => self.buf.clear(),
            Collected::Borrowed(first) => {
                self.buf.clear();
                self.buf.push_str(first);
            }
            Collected::Joined => {}
        }
        self.buf.push_str(piece);
        self.collected = Collected::Joined;
    }

    /// Decides what the document is from its root element.
    fn open_root(&mut self, e: &BytesStart<'a>, tag: Tag, before: usize) -> Result<(), ParseError> {
        self.root_name = e.name().as_ref().to_string();
        let local = e.local_name();
        // The root has no ancestors, so its own attributes are all the
        // namespace declarations in scope.
        let namespace = match own_namespace(e) {
            Ok(namespace) => namespace,
            Err(prefix) => {
                let message = format!(
                    "the namespace prefix {prefix:?} of <{}> is not declared",
                    self.root_name
                );
                return Err(self.malformed(before, message));
            }
        };
        let namespace = namespace.as_deref();
        if tag == Tag::Ccr && namespace.is_none_or(|ns| ns.eq_ignore_ascii_case(CCR_NS)) {
            self.root = Root::Ccr;
            self.ccr_at = Some(0);
        } else if matches!(local.as_ref(), "feed" | "entry")
            && namespace.is_none_or(|ns| ns == ATOM_NS)
        {
            self.root = Root::Atom;
        } else {
            let root = match namespace {
                Some(ns) => format!("{{{ns}}}{}", local.as_ref()),
                None => local.as_ref().to_string(),
            };
            return Err(ParseError::NotCcr {
                root,
                at: self.at(before),
            });
        }
        Ok(())
    }

    /// A CCR nested in an Atom feed may be in the CCR namespace, in none, or
    /// (when the exporter forgot its xmlns) in the Atom default namespace. A
    /// prefix declared on an ancestor is not resolved: inside a feed the
    /// local name decides, unless the element itself binds another namespace.
    fn is_ccr_namespace(&self, e: &BytesStart<'a>) -> bool {
        match own_namespace(e) {
            Ok(Some(ns)) => ns.eq_ignore_ascii_case(CCR_NS) || ns == ATOM_NS,
            Ok(None) | Err(_) => true,
        }
    }

    /// Only the predefined entities and character references exist in a
    /// document without a DTD; anything else is an error, never a lookup.
    fn resolve_ref(&self, r: &BytesRef<'a>, before: usize) -> Result<char, ParseError> {
        let name: &str = r;
        xml::resolve_ref(r).ok_or_else(|| {
            let what = if r.is_char_ref() {
                "an invalid character reference"
            } else {
                "an unknown entity reference"
            };
            self.malformed(
                before,
                format!("{what} &{name}; (rxsync expands no entities)"),
            )
        })
    }

    fn finish(self) -> Result<ParsedDocument, ParseError> {
        let end = self.text.len();
        match self.root {
            Root::None => return Err(self.malformed(end, "no root element".to_string())),
            Root::Closed => {}
            Root::Ccr | Root::Atom => {
                let message = format!(
                    "the document ends before the root element <{}> is closed",
                    self.root_name
                );
                return Err(self.malformed(end, message));
            }
        }
        let mut problems = Vec::new();
        if self.ccrs == 0 {
            problems.push(Problem {
                kind: ProblemKind::Skipped,
                detail: format!(
                    "the Atom <{}> holds no ContinuityOfCareRecord",
                    self.root_name
                ),
            });
        }
        if !self.other_patients.is_empty() {
            let mut all: Vec<&str> = self.patient_ref.iter().map(String::as_str).collect();
            all.extend(self.other_patients.iter().map(String::as_str));
            problems.push(Problem {
                kind: ProblemKind::SeveralPatients,
                detail: format!(
                    "the feed's CCRs name {} patients (ActorID {})",
                    all.len(),
                    all.join(", ")
                ),
            });
        }
        Ok(ParsedDocument {
            format: DocFormat::Ccr,
            records: self.records,
            problems,
            left_out: Vec::new(),
            unreadable: Vec::new(),
            patient_ref: self.patient_ref,
        })
    }

    /// Maps a quick-xml error to ours, naming what and where.
    fn xml_error(&self, error: &XmlError) -> ParseError {
        let offset = self.reader.error_position() as usize;
        let message = match error {
            XmlError::Encoding(_) => {
                // quick-xml only reads UTF-8; report the first byte that is not.
                let offset = std::str::from_utf8(self.text)
                    .err()
                    .map_or(offset, |e| e.valid_up_to());
                return ParseError::Binary { offset };
            }
            // quick-xml only knows DOCTYPE among declarations; a stray
            // entity or element declaration is still DTD syntax, refused as such.
            XmlError::Syntax(SyntaxError::InvalidBangMarkup)
                if self.text.get(offset..).is_some_and(|rest| {
                    [&b"<!ENTITY"[..], b"<!ELEMENT", b"<!ATTLIST", b"<!NOTATION"]
                        .iter()
                        .any(|decl| rest.starts_with(decl))
                }) =>
            {
                return ParseError::Dtd {
                    at: self.at(offset),
                };
            }
            XmlError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
                format!("end tag </{found}> does not match the open element <{expected}>")
            }
            XmlError::IllFormed(IllFormedError::UnmatchedEndTag(found)) => {
                format!("end tag </{found}> closes no open element")
            }
            other => other.to_string(),
        };
        self.malformed(offset, message)
    }

    fn malformed(&self, offset: usize, message: String) -> ParseError {
        ParseError::Malformed {
            syntax: "XML",
            at: self.at(offset),
            message,
        }
    }

    fn at(&self, offset: usize) -> Position {
        Position::of_offset(self.text, offset)
    }
}
