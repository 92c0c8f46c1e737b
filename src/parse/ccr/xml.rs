//! Small XML helpers for the CCR reader: names, namespaces, references and
//! line ends, each done the cheap way because most run once per element.
//! Nothing here allocates unless the document makes it necessary, and
//! nothing here ever looks an entity up anywhere.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart};
use quick_xml::name::PrefixDeclaration;

/// The character a reference stands for, when it is one of the five
/// predefined entities or a valid character reference. A document without a
/// DTD defines no other entity, so anything else is `None`, never a lookup.
pub(super) fn resolve_ref(r: &BytesRef<'_>) -> Option<char> {
    let name: &str = r;
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ if r.is_char_ref() => r.resolve_char_ref().ok().flatten(),
        _ => None,
    }
}

/// XML 1.0 line-end normalization (§2.11): `\r\n` and a lone `\r` become `\n`.
pub(super) fn normalize_line_ends(raw: &str) -> Cow<'_, str> {
    if raw.as_bytes().contains(&b'\r') {
        Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(raw)
    }
}

/// The namespace that an element's own `xmlns`/`xmlns:prefix` attributes
/// bind its name to: `Ok(None)` when they bind none, `Err(prefix)` when the
/// name has a prefix they do not declare.
///
/// rxsync reads with a plain `Reader` rather than `NsReader`: resolving the
/// bindings of every element costs about a sixth of the throughput, and
/// below the root the reader decides by local name anyway (a CCR has one
/// vocabulary). Only the root, whose scope is its own attributes, and a CCR
/// inside a feed need a namespace.
pub(super) fn own_namespace(e: &BytesStart<'_>) -> Result<Option<String>, String> {
    let name = e.name();
    let prefix = name.prefix();
    for attribute in e.attributes().with_checks(false).flatten() {
        let bound = match (attribute.key.as_namespace_binding(), prefix) {
            (Some(PrefixDeclaration::Default), None) => true,
            (Some(PrefixDeclaration::Named(declared)), Some(prefix)) => declared == prefix.as_ref(),
            _ => false,
        };
        if bound {
            // An empty default namespace (`xmlns=""`) means no namespace.
            return Ok(Some(attribute.value.into_owned()).filter(|ns| !ns.is_empty()));
        }
    }
    match prefix {
        Some(prefix) => Err(prefix.as_ref().to_string()),
        None => Ok(None),
    }
}

/// The part of an element name after its prefix. Names are short, so a
/// plain byte loop beats a general substring search here (this runs for
/// every element of the document).
pub(super) fn local_name(name: &str) -> &str {
    match name.bytes().rposition(|b| b == b':') {
        Some(colon) => name.get(colon + 1..).unwrap_or(name),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_drop_the_prefix() {
        for (name, want) in [
            ("ccr:Medication", "Medication"),
            ("Medication", "Medication"),
            ("a:", ""),
        ] {
            assert_eq!(local_name(name), want);
        }
    }

    #[test]
    fn line_ends_are_normalized() {
        for (raw, want) in [("a\r\nb", "a\nb"), ("a\rb", "a\nb"), ("a\nb", "a\nb")] {
            assert_eq!(normalize_line_ends(raw), want);
        }
    }
}
