//! Turning an XML document's bytes (CCR, C-CDA) into UTF-8 text before the
//! XML reader sees them.
//!
//! quick-xml reads UTF-8 only, so a document that declares another encoding
//! is transcoded here with encoding_rs (one allocation, only for those
//! documents); a UTF-8 document is borrowed as it is. This module also
//! refuses the inputs that are not text at all: empty, NUL bytes, and an
//! encoding we cannot decode. It never guesses an undeclared encoding.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

use crate::parse::{ParseError, Position};

/// The document as UTF-8 text, ready for the XML reader.
pub(in crate::parse) struct Utf8Text<'a> {
    /// The text (without any byte-order mark). Positions in errors are
    /// computed over these bytes; lines and character columns are the same
    /// as in the original document.
    pub(in crate::parse) bytes: Cow<'a, [u8]>,
    /// How many bytes of the original were skipped at the start (a UTF-8 BOM),
    /// so byte offsets into `bytes` can be mapped back to the original when
    /// the bytes were borrowed.
    pub(in crate::parse) skipped: usize,
    /// Whether the text has a CR anywhere (so line ends may need
    /// normalizing); found in the same pass as the NUL check.
    pub(in crate::parse) has_cr: bool,
}

/// Checks that `bytes` is text and returns it as UTF-8.
pub(in crate::parse) fn to_utf8(bytes: &[u8]) -> Result<Utf8Text<'_>, ParseError> {
    // A UTF-16 document can only be recognised by its byte-order mark; it is
    // decoded first because its NUL bytes are legitimate.
    if let Some((encoding, bom)) = Encoding::for_bom(bytes)
        && (encoding == UTF_16LE || encoding == UTF_16BE)
    {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        let text = text.into_owned().into_bytes();
        let has_cr = check_text(&text, 0)?;
        return Ok(Utf8Text {
            bytes: Cow::Owned(text),
            skipped: 0,
            has_cr,
        });
    }
    let skipped = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let body = &bytes[skipped..];
    // windows-1252 maps CR to CR, so this holds for a transcoded body too.
    let has_cr = check_text(body, skipped)?;
    match declared_encoding(body) {
        None => Ok(Utf8Text {
            bytes: Cow::Borrowed(body),
            skipped,
            has_cr,
        }),
        Some((label, offset)) => match Encoding::for_label(label.as_bytes()) {
            // encoding_rs follows the WHATWG table, which folds ISO-8859-1,
            // US-ASCII and their aliases into windows-1252 (a superset for
            // every printable character these documents carry).
            Some(enc) if enc == UTF_8 || skipped > 0 => Ok(Utf8Text {
                bytes: Cow::Borrowed(body),
                skipped,
                has_cr,
            }),
            Some(enc) if enc == WINDOWS_1252 => {
                let (text, _) = WINDOWS_1252.decode_without_bom_handling(body);
                Ok(Utf8Text {
                    bytes: Cow::Owned(text.into_owned().into_bytes()),
                    skipped: 0,
                    has_cr,
                })
            }
            // Anything else, including UTF-16 declared over bytes that have
            // no UTF-16 byte-order mark (and no NULs), cannot be read safely.
            _ => Err(ParseError::Encoding {
                encoding: label.to_string(),
                at: Position::of_offset(body, offset),
            }),
        },
    }
}

/// Refuses empty and binary input; tells whether the text has a CR.
fn check_text(body: &[u8], skipped: usize) -> Result<bool, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    // Found first with a vectorized check; the byte-by-byte `position`
    // runs only for a document that is refused anyway.
    let (nul, cr) = contains_bytes(body, 0, b'\r');
    if nul {
        let offset = body.iter().position(|&b| b == 0).unwrap_or(0);
        return Err(ParseError::Binary {
            offset: offset + skipped,
        });
    }
    Ok(cr)
}

/// Whether `bytes` holds `a`, and whether it holds `b`, in one pass over a
/// whole document. Folding each 64-byte block with `|` compiles to SIMD
/// compares without any `unsafe`; `<[u8]>::contains` is a word-at-a-time
/// loop, several times slower on a large document, and two separate passes
/// read a document that does not fit in cache twice (both showed in
/// profiles).
fn contains_bytes(bytes: &[u8], a: u8, b: u8) -> (bool, bool) {
    let (mut found_a, mut found_b) = (false, false);
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        let (in_a, in_b) = block.iter().fold((false, false), |(in_a, in_b), &byte| {
            (in_a | (byte == a), in_b | (byte == b))
        });
        found_a |= in_a;
        found_b |= in_b;
    }
    let rest = blocks.remainder();
    (found_a || rest.contains(&a), found_b || rest.contains(&b))
}

/// Reads the `encoding` pseudo-attribute of an XML declaration at the start
/// of `body`, with its byte offset. Whitespace before the declaration is
/// tolerated (real exports have it); a declaration that is not closed is
/// left for the XML reader to report.
fn declared_encoding(body: &[u8]) -> Option<(&str, usize)> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &body[start..];
    if !rest.starts_with(b"<?xml")
        || !matches!(rest.get(5), Some(b' ' | b'\t' | b'\r' | b'\n' | b'?'))
    {
        return None;
    }
    let window = &rest[..rest.len().min(1024)];
    let end = window.windows(2).position(|w| w == b"?>")?;
    let decl = &window[..end];
    let key = decl.windows(8).position(|w| w == b"encoding")?;
    let mut at = key + 8;
    while decl.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    if decl.get(at) != Some(&b'=') {
        return None;
    }
    at += 1;
    while decl.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    let quote = *decl.get(at).filter(|q| matches!(q, b'"' | b'\''))?;
    let value_start = at + 1;
    let len = decl[value_start..].iter().position(|&b| b == quote)?;
    let label = std::str::from_utf8(&decl[value_start..value_start + len]).ok()?;
    Some((label.trim(), start + value_start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_found_in_blocks_and_remainders() {
        let mut text = vec![b'a'; 200];
        assert_eq!(contains_bytes(&text, 0, b'\r'), (false, false));
        for at in [0, 63, 64, 127, 128, 199] {
            text[at] = 0;
            assert_eq!(contains_bytes(&text, 0, b'\r'), (true, false), "{at}");
            text[at] = b'\r';
            assert_eq!(contains_bytes(&text, 0, b'\r'), (false, true), "{at}");
            text[at] = b'a';
        }
        assert_eq!(contains_bytes(b"", 0, b'\r'), (false, false));
    }

    #[test]
    fn declared_encodings_are_found_or_not() {
        let cases: [(&[u8], Option<&str>); 6] = [
            (
                b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
                Some("ISO-8859-1"),
            ),
            (
                b"  <?xml version='1.0' encoding = 'utf-8' ?><a/>",
                Some("utf-8"),
            ),
            (b"<?xml version=\"1.0\"?><a/>", None),
            (b"<?xml-stylesheet href=\"x.xsl\"?><a/>", None),
            (b"<a/>", None),
            (b"<?xml version=\"1.0\" encoding=\"", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                declared_encoding(input).map(|(l, _)| l),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn latin1_is_transcoded_and_utf16_with_bom_is_decoded() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xbd</a>";
        assert_eq!(
            to_utf8(latin1).map(|t| t.bytes.into_owned()).ok(),
            Some(
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>½</a>"
                    .as_bytes()
                    .to_vec()
            )
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<a/>".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(
            to_utf8(&utf16).map(|t| t.bytes.into_owned()).ok(),
            Some(b"<a/>".to_vec())
        );
        assert!(matches!(
            to_utf8(b"<?xml version=\"1.0\" encoding=\"EBCDIC-XYZ\"?><a/>"),
            Err(ParseError::Encoding { ref encoding, at }) if encoding == "EBCDIC-XYZ" && at.line == 1
        ));
    }
}
