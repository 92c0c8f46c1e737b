//! FHIR JSON: from bytes to typed resources, without building a tree.
//!
//! With excerpts, a Bundle is read once with each entry's `resource` kept as
//! a borrowed `RawValue` (its exact text, which is also the reviewer's
//! excerpt), then each resource is read into the typed `Resource` view.
//! Without excerpts (the import path) `one_pass` reads each entry's resource
//! typed where it stands and hands it to the `Builder` at once; whatever it
//! does not handle exactly like the two-pass reader (a single resource, a
//! nested Bundle, any error, bytes that are not UTF-8) makes it give up, and
//! the two-pass reader decides, so both paths return the same. This module must
//! never build a `serde_json::Value` and never panic on hostile input: every
//! serde error becomes a `ParseError` (for the document) or a `Problem` (for
//! one entry), with a position.

use super::extract::{self, Builder, Entry, Source};
use super::model::{Resource, Str};
use super::{MAX_BUNDLE_DEPTH, READ_TOP_LEVEL};
use crate::parse::{DocFormat, ParseError, ParsedDocument, Position, Problem, ProblemKind};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// What a document or a nested Bundle says before its resources are read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    #[serde(borrow, default)]
    resource_type: Option<Str<'a>>,
    #[serde(borrow, default)]
    entry: Vec<BundleEntry<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleEntry<'a> {
    #[serde(borrow, default)]
    full_url: Option<Str<'a>>,
    /// Absent in transaction and batch responses.
    #[serde(borrow, default)]
    resource: Option<&'a RawValue>,
}

/// serde_json's default recursion limit, which it reports as a syntax error.
const JSON_DEPTH_LIMIT: usize = 128;

/// Reads a FHIR JSON document, with or without excerpts.
pub fn parse_with(bytes: &[u8], excerpts: bool) -> Result<ParsedDocument, ParseError> {
    if !excerpts && let Some(doc) = one_pass(strip_bom(bytes)) {
        return Ok(doc);
    }
    let mut doc = parse(bytes)?;
    if !excerpts {
        for rec in &mut doc.records {
            rec.excerpt = String::new();
        }
    }
    Ok(doc)
}

/// serde_json refuses a byte-order mark; providers send one now and then.
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Reads a FHIR JSON document, with excerpts.
pub fn parse(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    let body = strip_bom(bytes);
    let Some(start) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(ParseError::Empty);
    };
    if body[start] != b'{' {
        // A JSON array, string or number: let serde_json judge the syntax
        // first, so that garbage is reported as malformed, not as "not FHIR".
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| document_error(&e))?;
        return Err(not_fhir(body, start, "JSON that is not an object"));
    }
    let head: Head = serde_json::from_slice(body).map_err(|e| document_error(&e))?;
    let Some(kind) = head.resource_type.as_deref() else {
        return Err(not_fhir(body, start, "JSON without resourceType"));
    };
    if !READ_TOP_LEVEL.contains(&kind) {
        return Err(not_fhir(body, start, &format!("a {kind} resource")));
    }
    let source = Source {
        format: DocFormat::FhirJson,
        top_kind: kind,
    };
    if kind == "Bundle" {
        let mut builder = Builder::new(source, head.entry.len());
        collect_bundle(body, head.entry, 0, &mut builder);
        return Ok(builder.finish());
    }
    // A single resource: its whole text is the excerpt. It was already read
    // once as `Head`, so a failure here is a type error.
    let text = std::str::from_utf8(body).map_err(|e| ParseError::Binary {
        offset: e.valid_up_to(),
    })?;
    let resource: Resource = serde_json::from_str(text).map_err(|e| document_error(&e))?;
    extract::refuse_outcome(&resource)?;
    let mut builder = Builder::new(source, 1);
    builder.push(Entry {
        full_url: None,
        excerpt: text.trim(),
        resource,
    });
    Ok(builder.finish())
}

/// Reads each entry's resource; a nested Bundle (a batch-response carries
/// searchset Bundles) contributes its own entries.
fn collect_bundle<'a>(
    doc: &'a [u8],
    raw_entries: Vec<BundleEntry<'a>>,
    depth: usize,
    builder: &mut Builder<'a, '_>,
) {
    for raw_entry in raw_entries {
        let Some(raw) = raw_entry.resource else {
            continue; // Transaction and batch responses carry entries without one.
        };
        let text = raw.get();
        let resource: Resource = match serde_json::from_str(text) {
            Ok(resource) => resource,
            Err(e) => {
                builder.problem(entry_problem(doc, text, &e));
                continue;
            }
        };
        if resource.resource_type.as_deref() == Some("Bundle") {
            if depth + 1 >= MAX_BUNDLE_DEPTH {
                builder.problem(Problem {
                    kind: ProblemKind::Skipped,
                    detail: format!(
                        "a Bundle nested deeper than {MAX_BUNDLE_DEPTH} levels was skipped"
                    ),
                });
                continue;
            }
            match serde_json::from_str::<Head>(text) {
                Ok(inner) => collect_bundle(doc, inner.entry, depth + 1, builder),
                Err(e) => builder.problem(entry_problem(doc, text, &e)),
            }
            continue;
        }
        builder.push(Entry {
            full_url: raw_entry.full_url,
            excerpt: text,
            resource,
        });
    }
}

/// A Bundle read in one pass, each entry's resource typed where it stands
/// and handed to the builder as soon as it is read (so that thousands of
/// typed resources are never held at once), without excerpts.
///
/// `None` whenever the result might differ from the two-pass reader's:
/// - bytes that are not UTF-8 anywhere (the two-pass reader refuses invalid
///   UTF-8 inside an entry's resource, even in a field it skips, because it
///   captures the resource as text; checking the whole body once up front
///   also lets serde_json read from a `str` without checking each string);
/// - any serde error, even in one entry: the two-pass reader turns an
///   unreadable entry into a problem with a position and reads on, which a
///   single serde pass cannot do (an error ends it);
/// - a top level that is not a Bundle (a single resource is small: its two
///   passes cost nothing worth the code);
/// - a nested Bundle (a batch-response holding searchsets): its entries are
///   in a field the typed `Resource` skips.
pub(super) fn one_pass(body: &[u8]) -> Option<ParsedDocument> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(|c: char| !c.is_ascii_whitespace())?;
    if !text[start..].starts_with('{') {
        return None;
    }
    // `top_kind` is only read by `finish`, and only a Bundle gets that far.
    let source = Source {
        format: DocFormat::FhirJson,
        top_kind: "Bundle",
    };
    // Entries are streamed, so their number is unknown: guess it from the
    // size (a medication entry is rarely under 1 KB) rather than let the
    // builder's per-entry vectors grow by copying their records again
    // (bounded, so that a huge document does not reserve hundreds of MB).
    let mut builder = Builder::new(source, (body.len() / 1024).min(1 << 16));
    let mut de = serde_json::Deserializer::from_str(text);
    let kind = de
        .deserialize_map(BundleVisitor {
            builder: &mut builder,
        })
        .ok()?;
    de.end().ok()?;
    (kind.as_deref() == Some("Bundle")).then(|| builder.finish())
}

/// The top-level object: `resourceType`, and `entry` streamed into the builder.
struct BundleVisitor<'b, 'a, 'k> {
    builder: &'b mut Builder<'a, 'k>,
}

impl<'de, 'b, 'k> Visitor<'de> for BundleVisitor<'b, 'de, 'k> {
    /// The top-level `resourceType`.
    type Value = Option<Str<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a FHIR resource")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kind: Option<Option<Str<'de>>> = None;
        let mut entries = false;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_ref() {
                // Duplicates are errors, as serde's derive makes them for
                // the two-pass `Head` (any error hands over to it).
                "resourceType" if kind.is_none() => kind = Some(map.next_value()?),
                "entry" if !entries => {
                    entries = true;
                    map.next_value_seed(Entries {
                        builder: &mut *self.builder,
                    })?;
                }
                "resourceType" | "entry" => return Err(de::Error::custom("duplicate field")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(kind.flatten())
    }
}

/// A Bundle's `entry` array, each entry pushed to the builder as it is read.
struct Entries<'b, 'a, 'k> {
    builder: &'b mut Builder<'a, 'k>,
}

impl<'de, 'b, 'k> DeserializeSeed<'de> for Entries<'b, 'de, 'k> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, 'b, 'k> Visitor<'de> for Entries<'b, 'de, 'k> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of bundle entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(()) = seq.next_element_seed(EntrySeed {
            builder: &mut *self.builder,
        })? {}
        Ok(())
    }
}

/// One bundle entry: its resource is read typed and pushed to the builder
/// from here, so that the (large) typed resource is not moved through an
/// entry struct first.
struct EntrySeed<'b, 'a, 'k> {
    builder: &'b mut Builder<'a, 'k>,
}

impl<'de, 'b, 'k> DeserializeSeed<'de> for EntrySeed<'b, 'de, 'k> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'b, 'k> Visitor<'de> for EntrySeed<'b, 'de, 'k> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a bundle entry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut full_url: Option<Option<Str<'de>>> = None;
        let mut resource: Option<Option<Resource<'de>>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_ref() {
                "fullUrl" if full_url.is_none() => full_url = Some(map.next_value()?),
                "resource" if resource.is_none() => resource = Some(map.next_value()?),
                // Duplicates are errors for the two-pass `BundleEntry` too.
                "fullUrl" | "resource" => return Err(de::Error::custom("duplicate field")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some(resource) = resource.flatten() else {
            return Ok(()); // Transaction and batch responses carry entries without one.
        };
        if resource.resource_type.as_deref() == Some("Bundle") {
            return Err(de::Error::custom("a nested Bundle: read in two passes"));
        }
        self.builder.push(Entry {
            full_url: full_url.flatten(),
            excerpt: "",
            resource,
        });
        Ok(())
    }
}

/// An entry whose JSON is well-formed but not the shape FHIR gives it.
fn entry_problem(doc: &[u8], text: &str, e: &serde_json::Error) -> Problem {
    // `text` is a slice of `doc`, so its distance from the start of `doc` is
    // its offset (computed on addresses, never dereferenced).
    let base = (text.as_ptr() as usize).saturating_sub(doc.as_ptr() as usize);
    let at = Position::of_offset(doc, base + offset_in(text.as_bytes(), e.line(), e.column()));
    Problem {
        kind: ProblemKind::Skipped,
        detail: format!("a bundle entry could not be read at {at}: {e}"),
    }
}

/// The byte offset of serde_json's (line, column) in `text`.
fn offset_in(text: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0;
    for _ in 1..line {
        match text[offset..].iter().position(|&b| b == b'\n') {
            Some(i) => offset += i + 1,
            None => return text.len(),
        }
    }
    (offset + column.saturating_sub(1)).min(text.len())
}

fn not_fhir(body: &[u8], offset: usize, found: &str) -> ParseError {
    ParseError::NotFhir {
        found: found.to_string(),
        at: Position::of_offset(body, offset),
    }
}

/// Maps a serde_json error on the whole document to what went wrong where.
fn document_error(e: &serde_json::Error) -> ParseError {
    let at = Position {
        line: e.line().max(1),
        column: e.column().max(1),
    };
    let message = e.to_string();
    if message.starts_with("recursion limit exceeded") {
        return ParseError::TooDeep {
            limit: JSON_DEPTH_LIMIT,
            at,
        };
    }
    match e.classify() {
        // Well-formed JSON whose fields have the wrong types for FHIR.
        serde_json::error::Category::Data => ParseError::Malformed {
            syntax: "FHIR JSON",
            at,
            message,
        },
        _ => ParseError::Malformed {
            syntax: "JSON",
            at,
            message,
        },
    }
}
