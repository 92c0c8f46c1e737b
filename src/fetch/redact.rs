//! Scrubbing by value: the secrets one pull holds, and every form in which
//! a provider could echo them back, replaced by a fixed marker in any text
//! before it is recorded or shown.
//!
//! `auth::redact` strips credentials by parameter *name* (`oauth_*`,
//! `access_token`); a provider may still echo a token under another name
//! (`Location: …?ACCESS_TOKEN=…`), in a path segment, inside an error body,
//! or encoded (an `Authorization: Basic` header's base64, a percent-encoded
//! value). `Secrets` knows the values themselves. It is pure: no I/O, no
//! logging, and it never hands a secret back out (`Debug` shows a count).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

/// What replaces a secret.
pub const MARKER: &str = "[redacted]";

/// Values shorter than this are not scrubbed as substrings: a 3-character
/// "secret" such as `abc` or `123` occurs by chance in ordinary text (dates,
/// ids, words), so replacing every occurrence would garble the record and
/// still say which characters the secret has. Such a value is replaced only
/// where it stands as a whole URL parameter value (`=value` up to `&`, `#`,
/// a quote, whitespace or the end).
pub const MIN_SUBSTRING_LEN: usize = 6;

/// How many scrubbing passes may run before the text is withheld whole.
/// One pass suffices unless a secret overlaps the marker itself.
const MAX_PASSES: usize = 4;

/// The secret values of one pull and their derived forms.
#[derive(Clone, Default)]
pub struct Secrets {
    /// Every form to replace, longest first (so that a form containing
    /// another is replaced whole).
    forms: Vec<SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} forms)", self.forms.len())
    }
}

impl Secrets {
    /// No secrets: scrubbing changes nothing.
    pub fn new() -> Secrets {
        Secrets::default()
    }

    /// Adds a secret value (an access or refresh token, a token secret, a
    /// consumer or client secret) with its encodings: as is, percent-encoded
    /// (`%20` and form `+`, upper- and lower-case hex), base64 (standard and
    /// URL-safe) and a `Bearer ` header value. An empty value is ignored.
    pub fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        let bearer = format!("Bearer {value}");
        let mut forms = encodings(value);
        // Base64 without its padding (a prefix of the padded form, so both
        // are caught), of the value and of a whole `Bearer` header value,
        // and those percent-encoded in turn (base64 has `+` and `/`).
        for b64 in [
            STANDARD_NO_PAD.encode(value),
            URL_SAFE_NO_PAD.encode(value),
            STANDARD_NO_PAD.encode(&bearer),
            URL_SAFE_NO_PAD.encode(&bearer),
        ] {
            forms.extend(encodings(&b64));
        }
        forms.push(bearer);
        for f in forms {
            self.push(f);
        }
    }

    /// Adds an HTTP Basic credential pair (`client_secret_basic`, RFC 6749
    /// §2.3.1): the base64 of `id:secret`, with and without the form
    /// encoding of each half, and those in their percent-encoded forms
    /// (base64 has `+`, `/` and `=`). The secret itself is added too.
    pub fn add_basic(&mut self, id: &str, secret: &str) {
        if secret.is_empty() {
            return;
        }
        self.add(secret);
        let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        for pair in [
            format!("{id}:{secret}"),
            format!("{}:{}", form(id), form(secret)),
        ] {
            for b64 in [STANDARD_NO_PAD.encode(&pair), URL_SAFE_NO_PAD.encode(&pair)] {
                for f in encodings(&b64) {
                    self.push(f);
                }
            }
        }
    }

    /// Adds every secret of `other`.
    pub fn extend(&mut self, other: &Secrets) {
        for f in &other.forms {
            self.push(f.expose_secret().to_string());
        }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `text` with every secret form replaced by `MARKER`. Text that holds
    /// none is returned unchanged.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for _ in 0..MAX_PASSES {
            let next = self.pass(&out);
            if next == out {
                return out;
            }
            out = next;
        }
        // A secret that keeps reappearing (it overlaps the marker): the
        // text is withheld rather than shown in part — as the marker, or as
        // nothing if the secret is part of the marker itself.
        if !self.carried_by(&out) {
            out
        } else if !self.carried_by(MARKER) {
            MARKER.to_string()
        } else {
            String::new()
        }
    }

    /// Whether `text` holds a secret form (what `scrub` would change).
    pub fn carried_by(&self, text: &str) -> bool {
        self.pass(text) != text
    }

    /// Every string in a JSON value scrubbed (object keys too).
    pub fn scrub_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.scrub(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.scrub_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.scrub(k), self.scrub_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn push(&mut self, form: String) {
        if form.is_empty()
            || self
                .forms
                .iter()
                .any(|f| f.expose_secret() == form.as_str())
        {
            return;
        }
        let at = self
            .forms
            .iter()
            .position(|f| f.expose_secret().len() < form.len())
            .unwrap_or(self.forms.len());
        self.forms.insert(at, SecretString::from(form));
    }

    /// One left-to-right pass: at each position the longest form that
    /// matches is replaced.
    fn pass(&self, text: &str) -> String {
        if self.forms.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while let Some(c) = rest.chars().next() {
            let at = text.len() - rest.len();
            for f in &self.forms {
                let f = f.expose_secret();
                if !rest.starts_with(f) {
                    continue;
                }
                if f.len() >= MIN_SUBSTRING_LEN || whole_value(text, at, f.len()) {
                    out.push_str(MARKER);
                    rest = &rest[f.len()..];
                    continue 'scan;
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// `value` as is and percent-encoded the ways a server may write it.
fn encodings(value: &str) -> Vec<String> {
    let pct = utf8_percent_encode(value, NON_ALPHANUMERIC).to_string();
    let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let mut out = vec![value.to_string(), pct.clone(), form.clone()];
    for encoded in [pct, form] {
        let lower = lower_hex(&encoded);
        if lower != encoded {
            out.push(lower);
        }
    }
    // The `url` crate's own query encoding (what `Url::to_string` shows
    // after `query_pairs_mut`) is the form encoding; a path segment keeps
    // more characters as they are.
    out.push(
        percent_encoding::utf8_percent_encode(value, percent_encoding::CONTROLS)
            .to_string()
            .replace(' ', "%20"),
    );
    out
}

/// `%2F` → `%2f`: the hex digits after each `%` in lower case.
fn lower_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hex_left = 0;
    for c in s.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `text[at..at + len]` is a whole URL parameter value: after `=`
/// and before a delimiter or the end.
fn whole_value(text: &str, at: usize, len: usize) -> bool {
    let before = text[..at].chars().next_back();
    let after = text[at + len..].chars().next();
    before == Some('=')
        && after.is_none_or(|c| {
            matches!(c, '&' | '#' | ';' | '"' | '\'' | ')' | ',') || c.is_whitespace()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    fn secrets(values: &[&str]) -> Secrets {
        let mut s = Secrets::new();
        for v in values {
            s.add(v);
        }
        s
    }

    #[test]
    fn each_echoed_form_is_replaced() {
        let s = secrets(&["tok en/+=ABC", "refresh-77Q"]);
        let cases = [
            (
                "raw under another name",
                "http://h/n?ACCESS_TOKEN=tok en/+=ABC&x=1",
            ),
            ("form encoded", "http://h/n?t=tok+en%2F%2B%3DABC&x=1"),
            ("percent encoded", "http://h/n?t=tok%20en%2F%2B%3DABC"),
            ("lower-case hex", "http://h/n?t=tok%20en%2f%2b%3dABC"),
            ("path segment", "http://h/tok%20en/+=ABC/x"),
            ("bearer header", "Authorization: Bearer tok en/+=ABC"),
            ("base64", "auth=dG9rIGVuLys9QUJD"),
            (
                "base64 of the header",
                "auth=QmVhcmVyIHRvayBlbi8rPUFCQw%3D%3D",
            ),
            ("error body", "invalid_grant: refresh-77Q is unknown"),
        ];
        for (rule, text) in cases {
            let out = s.scrub(text);
            assert!(out.contains(MARKER), "{rule}: {out}");
            assert!(!out.contains("tok"), "{rule}: {out}");
            assert!(!out.contains("77Q"), "{rule}: {out}");
        }
    }

    #[test]
    fn a_basic_header_is_replaced_in_its_encodings() {
        let mut s = Secrets::new();
        s.add_basic("client-1", "s3cret value");
        let b64 = STANDARD.encode("client-1:s3cret value");
        let form_b64 = STANDARD.encode("client-1:s3cret+value");
        for text in [
            format!("Authorization: Basic {b64}"),
            format!(
                "auth=Basic%20{}",
                utf8_percent_encode(&form_b64, NON_ALPHANUMERIC)
            ),
            format!(
                "auth={}",
                url::form_urlencoded::byte_serialize(form_b64.as_bytes()).collect::<String>()
            ),
        ] {
            let out = s.scrub(&text);
            assert!(out.contains(MARKER), "{text} → {out}");
            assert!(
                !out.contains(&b64) && !out.contains(&form_b64[..20]),
                "{out}"
            );
        }
    }

    #[test]
    fn a_short_value_is_replaced_only_as_a_whole_parameter_value() {
        let s = secrets(&["ab1"]);
        assert_eq!(
            s.scrub("http://h/p?t=ab1&x=ab12"),
            "http://h/p?t=[redacted]&x=ab12"
        );
        assert_eq!(s.scrub("http://h/p?t=ab1"), "http://h/p?t=[redacted]");
        assert_eq!(s.scrub("cab1 and ab1"), "cab1 and ab1");
    }

    #[test]
    fn a_secret_overlapping_the_marker_withholds_the_text() {
        let s = secrets(&["[redacted]x"]);
        assert_eq!(s.scrub("a [redacted]x b"), "a [redacted] b");
        let s = secrets(&["acted]"]);
        assert!(!s.scrub("[redacted]").contains("acted]"));
    }

    #[test]
    fn json_strings_and_keys_are_scrubbed() {
        let s = secrets(&["tok-123456"]);
        let v = serde_json::json!({"url": "http://h/?a=tok-123456", "n": 1,
            "list": ["tok-123456"], "tok-123456": true});
        let out = s.scrub_json(&v).to_string();
        assert!(!out.contains("tok-123456"), "{out}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let s = secrets(&["tok-123456"]);
        assert!(!format!("{s:?}").contains("tok"));
    }

    fn all_forms(v: &str) -> Vec<String> {
        let mut f = encodings(v);
        f.push(STANDARD.encode(v));
        f.push(URL_SAFE_NO_PAD.encode(v));
        f.push(STANDARD.encode(format!("Bearer {v}")));
        f
    }

    proptest! {
        #[test]
        fn no_secret_form_survives(
            secret in "[ -~]{6,24}",
            pre in "[ -~]{0,30}",
            post in "[ -~]{0,30}",
            which in 0usize..7,
        ) {
            let s = secrets(&[&secret]);
            let forms = all_forms(&secret);
            let form = &forms[which % forms.len()];
            let out = s.scrub(&format!("{pre}{form}{post}"));
            for f in &forms {
                prop_assert!(!out.contains(f.as_str()), "{:?} left {:?} in {:?}", secret, f, out);
            }
        }

        #[test]
        fn text_without_secrets_is_unchanged(
            secret in "[A-Za-z0-9]{6,24}",
            text in "[ -~]{0,80}",
        ) {
            let s = secrets(&[&secret]);
            prop_assume!(!s.carried_by(&text));
            prop_assert_eq!(s.scrub(&text), text);
        }

        #[test]
        fn text_with_a_secret_never_shows_it(
            secret in "[A-Za-z0-9._~-]{6,24}",
            text in "[ -~]{0,40}",
        ) {
            let s = secrets(&[&secret]);
            let out = s.scrub(&format!("{text}?x={secret}&{text}"));
            prop_assert!(!out.contains(&secret));
        }
    }
}
