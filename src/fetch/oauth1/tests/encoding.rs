//! The traps of `oauth-notes.md` ("Where signers go wrong"), one row each.

use super::*;
use crate::fetch::oauth1::encode::{form_decode, normalize_parameters};
use crate::fetch::oauth1::header;
use crate::fetch::oauth1::sign::{request_params, signing_key};
use secrecy::ExposeSecret;

/// Decoded `(name, value)` pairs in a table row.
type Pairs = &'static [(&'static str, &'static str)];

#[test]
fn percent_encoding_leaves_only_unreserved_literal() {
    let table = [
        ("unreserved stay literal", "AZaz09-._~", "AZaz09-._~"),
        ("space is %20, never +", "a b", "a%20b"),
        ("plus is encoded", "a+b", "a%2Bb"),
        ("star is encoded", "*", "%2A"),
        ("bang is encoded", "!", "%21"),
        ("quote and parens are encoded", "'()", "%27%28%29"),
        ("percent is encoded", "%", "%25"),
        ("already-encoded text is encoded again", "%20", "%2520"),
        (
            "reserved delimiters are encoded",
            "=&?/:#[]@,;$",
            "%3D%26%3F%2F%3A%23%5B%5D%40%2C%3B%24",
        ),
        ("UTF-8 with upper-case hex", "é", "%C3%A9"),
        ("astral plane", "💊", "%F0%9F%92%8A"),
        ("empty", "", ""),
    ];
    for (rule, input, expected) in table {
        assert_eq!(percent_encode(input), expected, "{rule}");
    }
}

#[test]
fn query_and_form_inputs_are_form_decoded_first() {
    let pairs = |s: &str| form_decode(s).expect("UTF-8");
    let table: &[(&str, &str, Pairs)] = &[
        ("plus is a space", "q=a+b", &[("q", "a b")]),
        ("%20 is a space", "q=a%20b", &[("q", "a b")]),
        ("%2B is a plus", "q=a%2Bb", &[("q", "a+b")]),
        ("bare name is an empty value", "q", &[("q", "")]),
        ("empty value", "q=", &[("q", "")]),
        ("only the first = splits", "q=a=b", &[("q", "a=b")]),
        (
            "empty segments are skipped",
            "a=1&&b=2&",
            &[("a", "1"), ("b", "2")],
        ),
        ("stray percent stays literal", "q=100%", &[("q", "100%")]),
        ("bad hex stays literal", "q=%zz", &[("q", "%zz")]),
        ("encoded names decode", "c%40=", &[("c@", "")]),
        (
            "repeated names are kept",
            "a=2&a=1",
            &[("a", "2"), ("a", "1")],
        ),
    ];
    for (rule, input, expected) in table {
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs(input), expected, "{rule}");
    }
    assert!(
        form_decode("q=%FF").is_err(),
        "invalid UTF-8 is refused, not replaced"
    );
}

#[test]
fn plus_and_percent20_sign_identically() {
    let creds = Credentials::new("ck", secret("cs"));
    let a = url("http://example.com/r?q=a+b");
    let b = url("http://example.com/r?q=a%20b");
    let sa = sign(&get(&a), &creds, &params("n", 1)).expect("signs");
    let sb = sign(&get(&b), &creds, &params("n", 1)).expect("signs");
    assert_eq!(
        sa.oauth_param("oauth_signature"),
        sb.oauth_param("oauth_signature")
    );
    let c = url("http://example.com/r?q=a%2Bb");
    let sc = sign(&get(&c), &creds, &params("n", 1)).expect("signs");
    assert_ne!(
        sa.oauth_param("oauth_signature"),
        sc.oauth_param("oauth_signature")
    );
}

#[test]
fn parameters_sort_by_encoded_name_then_value_in_byte_order() {
    let p = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let table: &[(&str, Pairs, &str)] = &[
        ("by name", &[("b", "1"), ("a", "2")], "a=2&b=1"),
        (
            "repeated names by value",
            &[("a", "z"), ("a", "b")],
            "a=b&a=z",
        ),
        (
            "upper case before lower case",
            &[("a", "1"), ("B", "1")],
            "B=1&a=1",
        ),
        ("empty value first", &[("a", "x"), ("a", "")], "a=&a=x"),
        // "%7E" would sort before "a", but "~" is literal and sorts last.
        ("tilde is literal", &[("~", "1"), ("a", "1")], "a=1&~=1"),
        // Sorting happens on encoded bytes: "%20" (0x25) sorts before "-" (0x2D).
        (
            "encoded before sorting",
            &[("a", "-"), ("a", " ")],
            "a=%20&a=-",
        ),
        (
            "name wins over value",
            &[("ab", "1"), ("a", "2")],
            "a=2&ab=1",
        ),
    ];
    for (rule, input, expected) in table {
        assert_eq!(normalize_parameters(&p(input)), *expected, "{rule}");
    }
}

#[test]
fn signing_key_keeps_the_ampersand_for_empty_secrets() {
    let table: &[(&str, &str, Option<&str>, &str)] = &[
        ("both", "cs", Some("ts"), "cs&ts"),
        ("no token", "cs", None, "cs&"),
        ("empty token secret", "cs", Some(""), "cs&"),
        ("empty consumer secret", "", Some("ts"), "&ts"),
        (
            "secrets are encoded",
            "a b&c",
            Some("x+y"),
            "a%20b%26c&x%2By",
        ),
    ];
    for (rule, cs, ts, key) in table {
        let k = signing_key(&secret(cs), ts.map(secret).as_ref());
        assert_eq!(k.expose_secret(), *key, "{rule}");
    }
}

#[test]
fn form_body_is_signed_only_when_form_encoded() {
    let u = url("http://example.com/r?q=1");
    let form = |ct: Option<&'static str>| Body {
        content_type: ct,
        bytes: b"a=1&b=2",
    };
    let names = |ct| -> Vec<String> {
        request_params(&u, Some(&form(ct)))
            .expect("params")
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    assert_eq!(
        names(Some("application/x-www-form-urlencoded")),
        ["q", "a", "b"]
    );
    assert_eq!(
        names(Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8")),
        ["q", "a", "b"]
    );
    assert_eq!(names(Some("application/json")), ["q"]);
    assert_eq!(names(Some("text/plain")), ["q"]);
    assert_eq!(names(None), ["q"]);
}

#[test]
fn body_hash_covers_non_form_bodies_only() {
    let creds = Credentials::new("ck", secret("cs"));
    let u = url("https://example.com/r");
    let with_body = |ct: &'static str, bytes: &'static [u8]| Oauth1Request {
        method: "POST",
        url: &u,
        body: Some(Body {
            content_type: Some(ct),
            bytes,
        }),
    };
    let p = SignParams {
        body_hash: true,
        ..params("n", 1)
    };
    let json = sign(&with_body("application/json", b"Hello World!"), &creds, &p).expect("signs");
    // base64(SHA-1("Hello World!")), the draft's own example.
    assert_eq!(
        json.oauth_param("oauth_body_hash"),
        Some("Lve95gjOVATpfV8EL5X4nxwjKHE=")
    );
    let form = sign(
        &with_body("application/x-www-form-urlencoded", b"a=1"),
        &creds,
        &p,
    )
    .expect("signs");
    assert_eq!(form.oauth_param("oauth_body_hash"), None);
    let bodiless = sign(&get(&u), &creds, &p).expect("signs");
    assert_eq!(bodiless.oauth_param("oauth_body_hash"), None);
    let off = sign(
        &with_body("application/json", b"{}"),
        &creds,
        &params("n", 1),
    )
    .expect("signs");
    assert_eq!(off.oauth_param("oauth_body_hash"), None);
}

#[test]
fn header_parsing_rules() {
    let ok = header::parse(
        "OAuth realm=\"Example, Inc\",\n   oauth_consumer_key=\"a%20b\", oauth_token=tok,oauth_nonce=\"q\\\"x\"",
    )
    .expect("parses");
    assert_eq!(ok.realm.as_deref(), Some("Example, Inc"));
    assert_eq!(
        ok.params,
        vec![
            ("oauth_consumer_key".to_string(), "a b".to_string()),
            ("oauth_token".to_string(), "tok".to_string()),
            ("oauth_nonce".to_string(), "q\"x".to_string()),
        ]
    );
    assert!(
        header::parse("oauth oauth_nonce=\"1\"").is_ok(),
        "scheme is case-insensitive"
    );
    assert_eq!(
        header::parse("OAuth a=\"1+2\"").expect("ok").params[0].1,
        "1+2",
        "+ is literal in headers"
    );
    let bad = [
        ("Bearer abc", header::HeaderError::NotOauth),
        (
            "OAuth a=\"1\", a=\"2\"",
            header::HeaderError::Duplicate("a".into()),
        ),
        (
            "OAuth realm=\"x\", realm=\"y\"",
            header::HeaderError::Duplicate("realm".into()),
        ),
        (
            "OAuth a=\"1",
            header::HeaderError::Malformed("unterminated quoted string"),
        ),
        (
            "OAuth a",
            header::HeaderError::Malformed("expected '=' after a parameter name"),
        ),
        (
            "OAuth a=\"1\" b=\"2\"",
            header::HeaderError::Malformed("expected ',' between parameters"),
        ),
        (
            "OAuth =\"1\"",
            header::HeaderError::Malformed("expected a parameter name"),
        ),
        ("OAuth a=\"%FF\"", header::HeaderError::NotUtf8),
    ];
    for (input, expected) in bad {
        assert_eq!(header::parse(input), Err(expected), "{input}");
    }
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let creds = Credentials::new("ck", secret("consumer-SECRET"))
        .with_token("tok", secret("token-SECRET"))
        .with_rsa_key(RsaSigningKey::from_pem(OAUTHLIB_RSA_KEY).expect("key"));
    let shown = format!("{creds:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(!shown.contains("MIIC"), "{shown}");
    assert!(shown.contains("ck") && shown.contains("tok"));

    let u = url("https://example.com/r?x=1");
    let p = SignParams {
        method: SignatureMethod::Plaintext,
        ..params("n", 1)
    };
    let signed = sign(&get(&u), &creds, &p).expect("signs");
    let shown = format!("{signed:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    let query = SignParams {
        placement: Placement::Query,
        ..p
    };
    let signed = sign(&get(&u), &creds, &query).expect("signs");
    let shown = format!("{signed:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[test]
fn realm_and_oauth_signature_are_never_signed() {
    let creds = Credentials::new("ck", secret("cs"));
    let u = url("https://example.com/r?x=1");
    let signature_with = |realm: Option<&'static str>| {
        let p = SignParams {
            realm,
            ..params("n", 1)
        };
        let signed = sign(&get(&u), &creds, &p).expect("signs");
        signed.oauth_param("oauth_signature").map(str::to_string)
    };
    assert_eq!(signature_with(None), signature_with(Some("A")));
    assert_eq!(signature_with(Some("A")), signature_with(Some("B")));
    // Only the header's realm is excluded: a query parameter that happens
    // to be called `realm` is an ordinary, signed parameter.
    let with_query_realm = url("https://example.com/r?x=1&realm=A");
    let signed = sign(&get(&with_query_realm), &creds, &params("n", 1)).expect("signs");
    assert_ne!(
        signed.oauth_param("oauth_signature").map(str::to_string),
        signature_with(None)
    );
}
