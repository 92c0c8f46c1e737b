//! The source excerpt of a stored item, for reviewers: the CCR
//! `Medication` element(s) or FHIR resource(s) it was read from; and of an
//! `unreadable_record` exception, the record that could not be read.
//!
//! Excerpts are not copied into the database: the raw document is stored
//! byte for byte, parsing is pure, and each item records the positions of
//! its records in the parse, so parsing the stored document again gives the
//! excerpt back exactly. This reads the store and calls the parser; it
//! writes nothing.

use crate::parse::{self, DocFormat};
use crate::store::{Store, StoreError};

/// The source excerpt a reviewer sees for an exception: its item's
/// records, or for an `unreadable_record` the record that could not be read.
pub fn exception_excerpt(
    store: &Store,
    exception_id: i64,
    item_id: Option<i64>,
) -> Result<Option<String>, StoreError> {
    match item_id {
        Some(item) => item_excerpt(store, item),
        None => unreadable_excerpt(store, exception_id),
    }
}

/// The text of the record an `unreadable_record` exception names; None for
/// any other exception, or when the stored document no longer gives it back.
pub fn unreadable_excerpt(store: &Store, exception_id: i64) -> Result<Option<String>, StoreError> {
    let Some((bytes, format, k)) = store.unreadable_record_document(exception_id)? else {
        return Ok(None);
    };
    let Some(format) = DocFormat::from_name(&format) else {
        return Ok(None);
    };
    let Ok(doc) = parse::parse(&bytes, format) else {
        return Ok(None);
    };
    Ok(doc.unreadable.get(k).map(|u| u.excerpt.clone()))
}

/// The excerpt of an item's source records, joined by newlines; None when
/// the item does not exist or its document no longer parses (a parser
/// change between the import and now).
pub fn item_excerpt(store: &Store, item_id: i64) -> Result<Option<String>, StoreError> {
    let Some(stored) = store.item_document(item_id)? else {
        return Ok(None);
    };
    let Some(format) = DocFormat::from_name(&stored.format) else {
        return Ok(None);
    };
    let Ok(doc) = parse::parse(&stored.bytes, format) else {
        return Ok(None);
    };
    let found: Option<Vec<&crate::parse::MedRecord>> =
        stored.records.iter().map(|&i| doc.records.get(i)).collect();
    let Some(found) = found else {
        return Ok(None);
    };
    // The records must be the ones the item was built from: a parser that
    // changed since the import could number them differently, and a wrong
    // excerpt is worse than none.
    let seen: Vec<&crate::parse::SourceRef> =
        found.iter().filter_map(|r| r.source.as_ref()).collect();
    if seen.len() != stored.sources.len() || seen.iter().zip(&stored.sources).any(|(a, b)| *a != b)
    {
        return Ok(None);
    }
    Ok(Some(
        found
            .iter()
            .map(|r| r.excerpt.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}
