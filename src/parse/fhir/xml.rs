//! FHIR XML: each resource element is turned into FHIR's JSON shape (a
//! `serde_json::Value`) and read with the same typed structs as JSON.
//!
//! The mapping follows the FHIR XML/JSON correspondence as far as rxsync
//! needs it: a `value` attribute is the primitive, an element under
//! `resource` or `contained` is a resource whose type is its name, repeated
//! elements become arrays, the XHTML narrative and extensions are left out.
//! This module must never expand a DTD or entity (roxmltree refuses them and
//! so do we, up front) and never recurse without a bound.

use super::extract::{self, Builder, Entry, Source};
use super::model::Resource;
use super::{MAX_BUNDLE_DEPTH, READ_TOP_LEVEL};
use crate::parse::{
    DocFormat, ParseError, ParsedDocument, Position, Positions, SourceRef, UnreadableRecord,
};
use roxmltree::{Document, Node};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

const FHIR_NS: &str = "http://hl7.org/fhir";

/// Elements nested deeper than this are refused (FHIR resources need ~15).
const XML_DEPTH_LIMIT: usize = 128;

/// One resource element, converted, waiting to be read.
struct Pending<'t> {
    full_url: Option<&'t str>,
    excerpt: &'t str,
    /// The entry's `search.mode` is `include`.
    included: bool,
    /// Where the resource element starts.
    start: usize,
    /// A Bundle nested deeper than `MAX_BUNDLE_DEPTH`: not read, only
    /// named (`value` holds only its type and id).
    too_deep: bool,
    /// Its entry's place among every Bundle entry of the document (nested
    /// ones and ones without a resource counted too, as a reader counts).
    ordinal: usize,
    value: Value,
}

/// Reads a FHIR XML document.
pub fn parse(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if let Some(offset) = body.iter().position(|&b| b == 0) {
        return Err(ParseError::Binary { offset });
    }
    let text = std::str::from_utf8(body).map_err(|e| ParseError::Binary {
        offset: e.valid_up_to(),
    })?;
    // Refused before parsing, so that no parser setting can ever let one in.
    if let Some(offset) = text.find("<!DOCTYPE").or_else(|| text.find("<!ENTITY")) {
        return Err(ParseError::Dtd {
            at: Position::of_offset(body, offset),
        });
    }
    let doc = Document::parse(text).map_err(crate::parse::roxml_error)?;
    let root = doc.root_element();
    let at = |node: Node| {
        let pos = doc.text_pos_at(node.range().start);
        Position {
            line: pos.row as usize,
            column: pos.col as usize,
        }
    };
    let kind = root.tag_name().name();
    if root.tag_name().namespace() != Some(FHIR_NS) {
        return Err(ParseError::NotFhir {
            found: format!("XML root element {kind:?} outside {FHIR_NS}"),
            at: at(root),
        });
    }
    if !READ_TOP_LEVEL.contains(&kind) {
        return Err(ParseError::NotFhir {
            found: format!("a {kind} resource"),
            at: at(root),
        });
    }
    let mut pending = Vec::new();
    if kind == "Bundle" {
        let mut ordinal = 0;
        collect_bundle(root, 0, &mut ordinal, &mut pending)?;
    } else {
        pending.push(Pending {
            full_url: None,
            excerpt: &text[root.range()],
            included: false,
            start: root.range().start,
            too_deep: false,
            ordinal: 0,
            value: resource_value(root)?,
        });
    }
    let source = Source {
        format: DocFormat::FhirXml,
    };
    let mut builder = Builder::new(source, pending.len());
    // Pending entries are in document order: positions are counted on.
    let mut positions = Positions::new(text.as_bytes());
    for item in &pending {
        if item.too_deep {
            let reason = super::json::too_deep();
            builder.unreadable(unreadable_entry(&mut positions, item, reason));
            continue;
        }
        match Resource::deserialize(&item.value) {
            Ok(resource) => {
                if kind != "Bundle" {
                    extract::refuse_outcome(&resource)?;
                }
                let full_url = item.full_url.map(Cow::Borrowed);
                builder.push(Entry {
                    full_url,
                    excerpt: item.excerpt,
                    included: item.included,
                    resource,
                });
            }
            Err(e) if kind != "Bundle" => {
                let message = e.to_string();
                return Err(ParseError::Malformed {
                    syntax: "FHIR XML",
                    at: at(root),
                    message,
                });
            }
            Err(e) => {
                // Another type's fields may not fit the typed view of the
                // types rxsync reads: such a resource is left out.
                let field = |name: &str| item.value.get(name).and_then(Value::as_str);
                if !builder.not_evidence(field("resourceType"), field("id")) {
                    builder.unreadable(unreadable_entry(&mut positions, item, e.to_string()));
                }
            }
        }
    }
    builder.finish()
}

/// An entry whose elements are not the shape FHIR gives them (a repeated
/// element where one is allowed, say): named by its type and id, with
/// where it starts and its text.
fn unreadable_entry(
    positions: &mut Positions<'_>,
    item: &Pending,
    reason: String,
) -> UnreadableRecord {
    let field = |name: &str| {
        item.value
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    UnreadableRecord {
        source: field("resourceType").map(|kind| SourceRef {
            kind,
            id: field("id"),
        }),
        at: Some(positions.at(item.start)),
        entry: Some(item.ordinal),
        reason,
        excerpt: crate::parse::unreadable_excerpt(item.excerpt),
    }
}

/// Collects the entries of a Bundle element; nested Bundles contribute theirs.
fn collect_bundle<'t>(
    bundle: Node<'t, 't>,
    depth: usize,
    ordinal: &mut usize,
    out: &mut Vec<Pending<'t>>,
) -> Result<(), ParseError> {
    for entry in fhir_children(bundle, "entry") {
        let this = *ordinal;
        *ordinal += 1;
        let full_url = fhir_children(entry, "fullUrl")
            .next()
            .and_then(|n| n.attribute("value"));
        let Some(resource) = fhir_children(entry, "resource")
            .next()
            .and_then(|r| r.children().find(Node::is_element))
        else {
            continue; // Transaction and batch responses carry entries without one.
        };
        if resource.tag_name().name() == "Bundle" {
            if depth + 1 >= MAX_BUNDLE_DEPTH {
                // Not read, and not dropped either: named for a clinician.
                let id = fhir_children(resource, "id")
                    .next()
                    .and_then(|n| n.attribute("value"))
                    .map(|id| Value::String(id.to_string()));
                let mut value = Map::new();
                value.insert("resourceType".into(), Value::String("Bundle".into()));
                if let Some(id) = id {
                    value.insert("id".into(), id);
                }
                let text = resource.document().input_text();
                out.push(Pending {
                    full_url,
                    excerpt: &text[resource.range()],
                    included: false,
                    start: resource.range().start,
                    too_deep: true,
                    ordinal: this,
                    value: Value::Object(value),
                });
            } else {
                collect_bundle(resource, depth + 1, ordinal, out)?;
            }
            continue;
        }
        let included = fhir_children(entry, "search")
            .flat_map(|s| fhir_children(s, "mode"))
            .filter_map(|m| m.attribute("value"))
            .any(|mode| mode.trim() == "include");
        let text = resource.document().input_text();
        out.push(Pending {
            full_url,
            excerpt: &text[resource.range()],
            included,
            start: resource.range().start,
            too_deep: false,
            ordinal: this,
            value: resource_value(resource)?,
        });
    }
    Ok(())
}

fn fhir_children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(FHIR_NS)
    })
}

/// A resource element as FHIR JSON, with its `resourceType`.
fn resource_value(node: Node) -> Result<Value, ParseError> {
    let mut map = element_map(node, 0)?;
    map.insert(
        "resourceType".to_string(),
        Value::String(node.tag_name().name().to_string()),
    );
    Ok(Value::Object(map))
}

fn element_value(node: Node, depth: usize) -> Result<Value, ParseError> {
    if let Some(value) = node.attribute("value") {
        return Ok(Value::String(value.to_string()));
    }
    element_map(node, depth).map(Value::Object)
}

fn element_map(node: Node, depth: usize) -> Result<Map<String, Value>, ParseError> {
    if depth > XML_DEPTH_LIMIT {
        let pos = node.document().text_pos_at(node.range().start);
        return Err(ParseError::TooDeep {
            limit: XML_DEPTH_LIMIT,
            at: Position {
                line: pos.row as usize,
                column: pos.col as usize,
            },
        });
    }
    let mut map = Map::new();
    for child in node.children().filter(Node::is_element) {
        let name = child.tag_name().name();
        if child.tag_name().namespace() != Some(FHIR_NS)
            || (name == "extension" && !claim_line(node))
            || name == "modifierExtension"
        {
            // The narrative `div` (XHTML) and extensions are not read, but
            // for a claim line's (where payers put NDCs).
            continue;
        }
        let value = if name == "resource" || name == "contained" {
            match child.children().find(Node::is_element) {
                Some(inner) => {
                    let mut inner_map = element_map(inner, depth + 1)?;
                    inner_map.insert(
                        "resourceType".to_string(),
                        Value::String(inner.tag_name().name().to_string()),
                    );
                    Value::Object(inner_map)
                }
                None => continue,
            }
        } else {
            element_value(child, depth + 1)?
        };
        match map.get_mut(name) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(name.to_string(), value);
            }
        }
    }
    Ok(map)
}

/// A claim's line or line detail, whose extensions may carry its NDC.
fn claim_line(node: Node) -> bool {
    matches!(node.tag_name().name(), "item" | "detail")
}
