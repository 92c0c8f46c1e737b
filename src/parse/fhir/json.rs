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
use crate::parse::{
    DocFormat, ParseError, ParsedDocument, Position, Positions, SourceRef, UnreadableRecord,
    unreadable_excerpt,
};
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
    #[serde(borrow, default)]
    search: Option<Search<'a>>,
}

/// A search result entry's `search`: why the server returned it.
#[derive(Deserialize)]
struct Search<'a> {
    #[serde(borrow, default)]
    mode: Option<Str<'a>>,
}

impl Search<'_> {
    /// `search.mode` is `include`.
    fn included(search: Option<&Search>) -> bool {
        search.and_then(|s| s.mode.as_deref()).map(str::trim) == Some("include")
    }
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
    };
    if kind == "Bundle" {
        let mut builder = Builder::new(source, head.entry.len());
        let mut at = Walk {
            doc: body,
            ordinal: 0,
            positions: Positions::new(body),
        };
        collect_bundle(head.entry, 0, &mut at, &mut builder);
        return builder.finish();
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
        included: false,
        resource,
    });
    builder.finish()
}

/// Where a Bundle's reading stands: its entries are met in document
/// order, so each one's place is counted on from the last one's.
struct Walk<'a> {
    doc: &'a [u8],
    /// Every Bundle entry met so far, nested ones and ones without a
    /// resource included (as a reader counts them), so that an unreadable
    /// one can be named by its place.
    ordinal: usize,
    positions: Positions<'a>,
}

/// Reads each entry's resource; a nested Bundle (a batch-response carries
/// searchset Bundles) contributes its own entries.
fn collect_bundle<'a>(
    raw_entries: Vec<BundleEntry<'a>>,
    depth: usize,
    walk: &mut Walk<'a>,
    builder: &mut Builder<'a>,
) {
    for raw_entry in raw_entries {
        let ordinal = walk.ordinal;
        walk.ordinal += 1;
        let Some(raw) = raw_entry.resource else {
            continue; // Transaction and batch responses carry entries without one.
        };
        let text = raw.get();
        let resource: Resource = match serde_json::from_str(text) {
            Ok(resource) => resource,
            Err(e) => {
                // The typed view is the union of the types rxsync reads; a
                // resource of another type may use its field names for
                // other shapes, which says nothing about a medication.
                let (kind, id) = loose_ident(text);
                if !builder.not_evidence(kind.as_deref(), id.as_deref()) {
                    builder.unreadable(unreadable_entry(walk, text, ordinal, &e));
                }
                continue;
            }
        };
        if resource.resource_type.is_none() {
            // FHIR JSON requires it: without it the resource cannot be told
            // apart from a medication record, so it is unreadable, not left out.
            builder.unreadable(untyped_entry(walk, text, ordinal, &resource));
            continue;
        }
        if resource.resource_type.as_deref() == Some("Bundle") {
            if depth + 1 >= MAX_BUNDLE_DEPTH {
                // Not read, and not dropped either: its entries may be the
                // patient's medications, so it is named for a clinician
                // (and the document is never "none shared").
                let base = (text.as_ptr() as usize).saturating_sub(walk.doc.as_ptr() as usize);
                builder.unreadable(UnreadableRecord {
                    source: Some(SourceRef {
                        kind: "Bundle".to_string(),
                        id: resource.id.as_deref().map(|id| id.trim().to_string()),
                    }),
                    at: Some(walk.positions.at(base)),
                    entry: Some(ordinal),
                    reason: too_deep(),
                    excerpt: unreadable_excerpt(text),
                });
                continue;
            }
            match serde_json::from_str::<Head>(text) {
                Ok(inner) => collect_bundle(inner.entry, depth + 1, walk, builder),
                Err(e) => builder.unreadable(unreadable_entry(walk, text, ordinal, &e)),
            }
            continue;
        }
        builder.push(Entry {
            full_url: raw_entry.full_url,
            excerpt: text,
            included: Search::included(raw_entry.search.as_ref()),
            resource,
        });
    }
}

/// Why a Bundle nested too deep is an unreadable record (JSON and XML).
pub(super) fn too_deep() -> String {
    format!("a Bundle nested deeper than {MAX_BUNDLE_DEPTH} levels is not read")
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
    let source = Source {
        format: DocFormat::FhirJson,
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
    if kind.as_deref() != Some("Bundle") {
        return None;
    }
    // A refusal (drug data only) is the two-pass reader's to make too.
    builder.finish().ok()
}

/// The top-level object: `resourceType`, and `entry` streamed into the builder.
struct BundleVisitor<'b, 'a> {
    builder: &'b mut Builder<'a>,
}

impl<'de, 'b> Visitor<'de> for BundleVisitor<'b, 'de> {
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
struct Entries<'b, 'a> {
    builder: &'b mut Builder<'a>,
}

impl<'de, 'b> DeserializeSeed<'de> for Entries<'b, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, 'b> Visitor<'de> for Entries<'b, 'de> {
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
struct EntrySeed<'b, 'a> {
    builder: &'b mut Builder<'a>,
}

impl<'de, 'b> DeserializeSeed<'de> for EntrySeed<'b, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'b> Visitor<'de> for EntrySeed<'b, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a bundle entry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut full_url: Option<Option<Str<'de>>> = None;
        let mut resource: Option<Option<Resource<'de>>> = None;
        let mut search: Option<Option<Search<'de>>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_ref() {
                "fullUrl" if full_url.is_none() => full_url = Some(map.next_value()?),
                "resource" if resource.is_none() => resource = Some(map.next_value()?),
                "search" if search.is_none() => search = Some(map.next_value()?),
                // Duplicates are errors for the two-pass `BundleEntry` too.
                "fullUrl" | "resource" | "search" => {
                    return Err(de::Error::custom("duplicate field"));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some(resource) = resource.flatten() else {
            return Ok(()); // Transaction and batch responses carry entries without one.
        };
        match resource.resource_type.as_deref() {
            Some("Bundle") => return Err(de::Error::custom("a nested Bundle: read in two passes")),
            None => return Err(de::Error::custom("no resourceType: read in two passes")),
            Some(_) => {}
        }
        self.builder.push(Entry {
            full_url: full_url.flatten(),
            excerpt: "",
            included: Search::included(search.flatten().as_ref()),
            resource,
        });
        Ok(())
    }
}

/// An entry whose JSON is well-formed but not the shape FHIR gives it (a
/// field of another type, a duplicated key): named by its type and id as
/// far as they can be read, with where it starts, what failed where, and
/// its text.
fn unreadable_entry(
    walk: &mut Walk<'_>,
    text: &str,
    entry: usize,
    e: &serde_json::Error,
) -> UnreadableRecord {
    // `text` is a slice of `doc`, so its distance from the start of `doc` is
    // its offset (computed on addresses, never dereferenced).
    let base = (text.as_ptr() as usize).saturating_sub(walk.doc.as_ptr() as usize);
    // In document order: where it starts, then where it failed.
    let at = walk.positions.at(base);
    let failed_at = walk
        .positions
        .at(base + offset_in(text.as_bytes(), e.line(), e.column()));
    // serde_json's message ends with its own (entry-relative) position.
    let message = e.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    let (kind, id) = loose_ident(text);
    UnreadableRecord {
        source: kind.map(|kind| SourceRef { kind, id }),
        at: Some(at),
        entry: Some(entry),
        reason: format!("{message} at {failed_at}"),
        excerpt: unreadable_excerpt(text),
    }
}

/// An entry whose resource has no `resourceType` (a FHIR Bulk Data line
/// without one lands here too): named by its id, with its text.
fn untyped_entry(
    walk: &mut Walk<'_>,
    text: &str,
    entry: usize,
    resource: &Resource,
) -> UnreadableRecord {
    let base = (text.as_ptr() as usize).saturating_sub(walk.doc.as_ptr() as usize);
    let at = walk.positions.at(base);
    let id = resource
        .id
        .as_deref()
        .map(|id| format!(" (id {id:?})"))
        .unwrap_or_default();
    UnreadableRecord {
        source: None,
        at: Some(at),
        entry: Some(entry),
        reason: format!("the resource{id} has no resourceType at {at}"),
        excerpt: unreadable_excerpt(text),
    }
}

/// The `resourceType` and `id` of an entry that failed to read typed: the
/// first string value of each, whatever else is wrong with the object
/// (duplicate keys, values of other types).
fn loose_ident(text: &str) -> (Option<String>, Option<String>) {
    struct Ident(Option<String>, Option<String>);
    impl<'de> Visitor<'de> for Ident {
        type Value = Ident;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Ident, A::Error> {
            while let Some(key) = map.next_key::<Str<'de>>()? {
                let value = map.next_value::<LooseStr>()?.0;
                match key.as_ref() {
                    "resourceType" if self.0.is_none() => self.0 = value,
                    "id" if self.1.is_none() => self.1 = value,
                    _ => {}
                }
            }
            Ok(self)
        }
    }
    impl<'de> serde::Deserialize<'de> for Ident {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ident, D::Error> {
            d.deserialize_map(Ident(None, None))
        }
    }
    match serde_json::from_str::<Ident>(text) {
        Ok(Ident(kind, id)) => (kind, id),
        Err(_) => (None, None),
    }
}

/// Any JSON value; a string is kept (trimmed, when not blank).
struct LooseStr(Option<String>);

impl<'de> serde::Deserialize<'de> for LooseStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LooseStr, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseStr, E> {
                let v = v.trim();
                Ok(LooseStr((!v.is_empty()).then(|| v.to_string())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<LooseStr, E> {
                Ok(LooseStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<LooseStr, E> {
                Ok(LooseStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<LooseStr, E> {
                Ok(LooseStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<LooseStr, E> {
                Ok(LooseStr(None))
            }
            fn visit_unit<E>(self) -> Result<LooseStr, E> {
                Ok(LooseStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LooseStr, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LooseStr, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
        }
        d.deserialize_any(V)
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
