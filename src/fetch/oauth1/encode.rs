//! The byte-level rules of RFC 5849 §3.4.1 and §3.6: percent-encoding,
//! x-www-form-urlencoded decoding, the base string URI and the signature
//! base string. Pure functions over strings; both the signer and the
//! verifier build their base string here, so the two cannot drift apart.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};
use url::Url;

/// Everything except the RFC 3986 unreserved set `A-Za-z0-9-._~` is encoded
/// (§3.6). `*`, `!`, `'`, `(`, `)` and `+` are encoded too, unlike in
/// JavaScript's `encodeURIComponent` or form encoding.
const RFC5849_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `s` per RFC 5849 §3.6: UTF-8, upper-case hex, space as
/// `%20` (never `+`), only `A-Za-z0-9-._~` left literal.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC5849_ENCODE).to_string()
}

/// A query string or form body that is not UTF-8 once percent-decoded.
///
/// We refuse instead of decoding lossily: two different byte strings that
/// both decode to U+FFFD would otherwise share one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUtf8;

/// Decodes one x-www-form-urlencoded component: `+` is a space, then
/// `%XX` sequences are decoded; a `%` not followed by two hex digits stays
/// literal (as in the WHATWG URL standard and Python's `unquote`).
pub fn form_decode_component(raw: &str) -> Result<String, NotUtf8> {
    let spaced = raw.replace('+', " ");
    let bytes: Vec<u8> = percent_decode(spaced.as_bytes()).collect();
    String::from_utf8(bytes).map_err(|_| NotUtf8)
}

/// Parses an x-www-form-urlencoded string into decoded `(name, value)`
/// pairs, in order. Empty segments (`a=1&&b=2`) are skipped; a bare name
/// (`q`) is the pair `("q", "")`, as §3.4.1.3.1 requires.
pub fn form_decode(raw: &str) -> Result<Vec<(String, String)>, NotUtf8> {
    raw_pairs(raw)
        .map(|(name, value)| Ok((form_decode_component(name)?, form_decode_component(value)?)))
        .collect()
}

/// Splits an x-www-form-urlencoded string into raw, still-encoded
/// `(name, value)` slices, splitting each pair at its first `=`.
fn raw_pairs(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| segment.split_once('=').unwrap_or((segment, "")))
}

/// The base string URI of §3.4.1.2: lower-case scheme and host, the port
/// only when it is not the scheme's default, the path as sent (`/` when
/// empty), and neither query nor fragment nor user info.
///
/// `url::Url` has already lower-cased the scheme and host and dropped a
/// default port while parsing, and its path is the percent-encoded form the
/// request line carries, so this is mostly a matter of leaving things out.
pub fn base_string_uri(url: &Url) -> String {
    let mut out = String::with_capacity(url.as_str().len());
    out.push_str(&url.scheme().to_ascii_lowercase());
    out.push_str("://");
    if let Some(host) = url.host_str() {
        out.push_str(&host.to_ascii_lowercase());
    }
    // `port()` is None when the port is the scheme's default, which is
    // exactly when §3.4.1.2 says to leave it out.
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let path = url.path();
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(path);
    }
    out
}

/// The normalized request parameters of §3.4.1.3.2: every name and value
/// encoded, sorted by name then value in byte order, joined as
/// `name=value` pairs with `&`.
pub fn normalize_parameters(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| (percent_encode(name), percent_encode(value)))
        .collect();
    // Sorting the *encoded* strings is what the RFC asks for; sorting the
    // decoded ones differs for characters such as `~` versus `%7E`.
    encoded.sort();
    let pairs: Vec<String> = encoded
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    pairs.join("&")
}

/// The signature base string of §3.4.1.1:
/// `METHOD&enc(base string URI)&enc(normalized parameters)`.
///
/// `params` are the decoded request parameters (query, form body and oauth
/// protocol parameters) without `oauth_signature` and `realm`.
pub fn signature_base_string(method: &str, url: &Url, params: &[(String, String)]) -> String {
    format!(
        "{}&{}&{}",
        percent_encode(&method.to_ascii_uppercase()),
        percent_encode(&base_string_uri(url)),
        percent_encode(&normalize_parameters(params))
    )
}

/// Whether a `Content-Type` value names a form body, ignoring case and
/// parameters such as `; charset=utf-8`.
pub fn is_form_content_type(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Compares two byte strings without an early exit, so that the time taken
/// does not tell an attacker how many leading bytes of a forged signature
/// were right. The length is not secret (signatures have fixed lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
