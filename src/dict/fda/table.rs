//! The FDA directory's file format, below the meaning of any column: decoding
//! the bytes, splitting lines and fields, and finding columns by header name.
//!
//! It knows nothing of products or packages. It must never allocate per
//! field (the full directory has about six million fields) and never panic
//! on any input.

use super::FdaError;
use encoding_rs::WINDOWS_1252;
use std::borrow::Cow;
use std::collections::HashMap;

/// Turns the file's bytes into text once, up front.
///
/// The FDA publishes Windows-1252. A file that starts with a UTF-8 byte order
/// mark has been re-saved by some tool as UTF-8, so it is read as UTF-8
/// (invalid sequences become U+FFFD rather than failing the whole load).
pub(super) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => String::from_utf8_lossy(rest),
        None => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// The lines of a decoded file, numbered from 1, with `\r\n` or `\n`
/// endings removed. A final line ending does not make an extra empty line.
pub(super) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    // An empty file has no lines at all, not one empty line.
    let pieces = if text.is_empty() {
        None
    } else {
        Some(body.split('\n'))
    };
    pieces
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
}

/// Where each column the reader needs sits in this file's header.
pub(super) struct Header {
    /// How many fields every row must have (the header's own count).
    pub(super) width: usize,
    /// Column name → position, for the names this file has.
    positions: HashMap<String, usize>,
    /// The file's name, for error messages.
    file: &'static str,
}

impl Header {
    /// Reads the header line. Names are matched exactly after trimming, as
    /// the FDA writes them in upper case; their order does not matter.
    pub(super) fn parse(
        file: &'static str,
        line: Option<(usize, &str)>,
    ) -> Result<Header, FdaError> {
        let line = match line {
            Some((_, l)) if !l.trim().is_empty() => l,
            _ => return Err(FdaError::Empty { file }),
        };
        let mut positions = HashMap::new();
        let mut width = 0;
        for (i, name) in line.split('\t').enumerate() {
            // The first name wins if the FDA ever repeats one.
            positions.entry(name.trim().to_string()).or_insert(i);
            width = i + 1;
        }
        Ok(Header {
            width,
            positions,
            file,
        })
    }

    /// The position of a column the reader cannot do without.
    pub(super) fn require(&self, column: &'static str) -> Result<usize, FdaError> {
        self.optional(column).ok_or(FdaError::MissingColumn {
            file: self.file,
            column,
        })
    }

    /// The position of a column older files may lack.
    pub(super) fn optional(&self, column: &str) -> Option<usize> {
        self.positions.get(column).copied()
    }
}

/// Splits a row into `fields` (cleared first, so one buffer serves every
/// row) and says whether it has exactly `width` fields.
pub(super) fn split_row<'a>(line: &'a str, width: usize, fields: &mut Vec<&'a str>) -> bool {
    fields.clear();
    // Stop collecting past width + 1: the row is wrong either way, and a
    // hostile line of tabs should not grow the buffer without bound.
    fields.extend(line.split('\t').take(width + 1));
    fields.len() == width
}

/// Counts a row's fields, for the message about a row of the wrong width.
pub(super) fn field_count(line: &str) -> usize {
    line.bytes().filter(|&b| b == b'\t').count() + 1
}
