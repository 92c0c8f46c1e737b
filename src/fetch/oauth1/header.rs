//! The `Authorization: OAuth ...` header of RFC 5849 §3.5.1: writing it
//! for the signer and reading it back for the verifier.

use percent_encoding::percent_decode_str;

use super::encode::percent_encode;

/// Writes the header value: `OAuth realm="…", name="value", …`. Names and
/// values are percent-encoded (§3.6), so no value can contain a quote; the
/// realm has been checked by the caller to hold none either.
pub fn write(realm: Option<&str>, params: &[(String, String)]) -> String {
    let mut parts = Vec::with_capacity(params.len() + 1);
    if let Some(realm) = realm {
        parts.push(format!("realm=\"{realm}\""));
    }
    for (name, value) in params {
        parts.push(format!(
            "{}=\"{}\"",
            percent_encode(name),
            percent_encode(value)
        ));
    }
    format!("OAuth {}", parts.join(", "))
}

/// Why an `Authorization` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The scheme is not `OAuth` (e.g. `Bearer`).
    NotOauth,
    /// Broken syntax: the text says where.
    Malformed(&'static str),
    /// A parameter appears twice (§3.5.1 lists each once).
    Duplicate(String),
    /// A value is not UTF-8 once percent-decoded.
    NotUtf8,
}

/// The parsed header: `realm` (unsigned, reported for completeness) and the
/// other parameters, percent-decoded, in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedHeader {
    pub realm: Option<String>,
    pub params: Vec<(String, String)>,
}

/// Reads an `OAuth` header value. The scheme is case-insensitive; values
/// may be quoted strings (with `\` escapes) or bare tokens, and line
/// folding or extra commas between parameters are tolerated, as in the
/// RFC's own multi-line examples.
pub fn parse(value: &str) -> Result<ParsedHeader, HeaderError> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(char::is_whitespace).unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return Err(HeaderError::NotOauth);
    }
    let mut parsed = ParsedHeader::default();
    let mut seen: Vec<String> = Vec::new();
    let mut chars = rest.char_indices().peekable();
    loop {
        while chars
            .next_if(|(_, c)| c.is_whitespace() || *c == ',')
            .is_some()
        {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut end = start;
        while let Some((i, c)) = chars.next_if(|(_, c)| is_token_char(*c)) {
            end = i + c.len_utf8();
        }
        let raw_name = &rest[start..end];
        if raw_name.is_empty() {
            return Err(HeaderError::Malformed("expected a parameter name"));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(HeaderError::Malformed(
                "expected '=' after a parameter name",
            ));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let raw_value = if chars.next_if(|(_, c)| *c == '"').is_some() {
            let mut out = String::new();
            loop {
                match chars.next() {
                    None => return Err(HeaderError::Malformed("unterminated quoted string")),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => out.push(c),
                        None => return Err(HeaderError::Malformed("unterminated quoted string")),
                    },
                    Some((_, c)) => out.push(c),
                }
            }
            out
        } else {
            let mut out = String::new();
            while let Some((_, c)) = chars.next_if(|(_, c)| is_token_char(*c)) {
                out.push(c);
            }
            out
        };
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == ',').is_none() && chars.peek().is_some() {
            return Err(HeaderError::Malformed("expected ',' between parameters"));
        }

        let name = decode(raw_name)?;
        if seen.contains(&name) {
            return Err(HeaderError::Duplicate(name));
        }
        seen.push(name.clone());
        if name == "realm" {
            // The realm is a plain quoted string, not percent-encoded, and
            // is never signed (§3.4.1.3.1).
            parsed.realm = Some(raw_value);
        } else {
            parsed.params.push((name, decode(&raw_value)?));
        }
    }
    Ok(parsed)
}

/// RFC 7230 `tchar`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Header values are percent-encoded (§3.5.1), not form-encoded: `+` is a
/// literal plus here.
fn decode(raw: &str) -> Result<String, HeaderError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| HeaderError::NotUtf8)
}
