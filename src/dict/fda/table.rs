//! The FDA directory's file format, below the meaning of any column: the
//! text encoding, lines and fields, and finding columns by header name.
//!
//! Lines and fields are split on the raw bytes, and each field is decoded
//! once, straight into the `String` it becomes. That is exact, not a
//! shortcut: in Windows-1252 every character is one byte, and in UTF-8 the
//! bytes of tab, newline and `;` never occur inside another character. It
//! spares the load a decoded copy of the whole file (43 MB for the 2019
//! `product.txt`). This module knows nothing of products or packages; it
//! must never allocate per field beyond the decoded value and never panic
//! on any input.

use super::FdaError;
use encoding_rs::WINDOWS_1252;
use std::borrow::Cow;
use std::collections::HashMap;

/// How a file's bytes become text.
#[derive(Debug, Clone, Copy)]
pub(super) enum Encoding {
    /// What the FDA publishes.
    Windows1252,
    /// A file that starts with a UTF-8 byte order mark was re-saved as UTF-8
    /// by some tool; invalid sequences become U+FFFD rather than failing.
    Utf8,
}

impl Encoding {
    /// Picks the encoding and returns the bytes without any byte order mark.
    pub(super) fn sniff(bytes: &[u8]) -> (Encoding, &[u8]) {
        match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => (Encoding::Utf8, rest),
            None => (Encoding::Windows1252, bytes),
        }
    }

    /// A field as text, borrowed when it is plain ASCII.
    pub(super) fn text<'a>(self, bytes: &'a [u8]) -> Cow<'a, str> {
        match self {
            Encoding::Windows1252 => WINDOWS_1252.decode_without_bom_handling(bytes).0,
            Encoding::Utf8 => String::from_utf8_lossy(bytes),
        }
    }

    /// A field as an owned, trimmed `String` (after decoding, so that a
    /// Windows-1252 no-break space at either end is trimmed as well).
    pub(super) fn field(self, bytes: &[u8]) -> String {
        self.text(bytes).trim().to_string()
    }
}

/// The lines of a file, numbered from 1, with `\r\n` or `\n` endings
/// removed. A final line ending does not make an extra empty line.
pub(super) fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    // An empty file has no lines at all, not one empty line.
    let pieces = if bytes.is_empty() {
        None
    } else {
        Some(body.split(|&b| b == b'\n'))
    };
    pieces
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
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
        encoding: Encoding,
        line: Option<(usize, &[u8])>,
    ) -> Result<Header, FdaError> {
        let line = match line {
            Some((_, l)) if !l.trim_ascii().is_empty() => l,
            _ => return Err(FdaError::Empty { file }),
        };
        let mut positions = HashMap::new();
        let mut width = 0;
        for (i, name) in line.split(|&b| b == b'\t').enumerate() {
            // The first name wins if the FDA ever repeats one.
            positions.entry(encoding.field(name)).or_insert(i);
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
pub(super) fn split_row<'a>(line: &'a [u8], width: usize, fields: &mut Vec<&'a [u8]>) -> bool {
    fields.clear();
    // Stop collecting past width + 1: the row is wrong either way, and a
    // hostile line of tabs should not grow the buffer without bound.
    fields.extend(line.split(|&b| b == b'\t').take(width + 1));
    fields.len() == width
}

/// Counts a row's fields, for the message about a row of the wrong width.
pub(super) fn field_count(line: &[u8]) -> usize {
    line.iter().filter(|&&b| b == b'\t').count() + 1
}
