//! FHIR JSON: from bytes to typed resources, without building a tree.
//!
//! A Bundle is read once with each entry's `resource` kept as a borrowed
//! `RawValue` (its exact text, which is also the reviewer's excerpt), then
//! each resource is read into the typed `Resource` view. This module must
//! never build a `serde_json::Value` and never panic on hostile input: every
//! serde error becomes a `ParseError` (for the document) or a `Problem` (for
//! one entry), with a position.

use super::extract::{self, Builder, Entry, Source};
use super::model::{Resource, Str};
use super::{MAX_BUNDLE_DEPTH, READ_TOP_LEVEL};
use crate::parse::{DocFormat, ParseError, ParsedDocument, Position, Problem, ProblemKind};
use serde::Deserialize;
use serde_json::value::RawValue;

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

/// Reads a FHIR JSON document.
pub fn parse(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    // serde_json refuses a byte-order mark; providers send one now and then.
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
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
