//! Sign, then verify: every method and both placements, the refusals the
//! verifier owes the sandbox, and property tests.

use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_700_000_000;
const SKEW: u64 = 600;
const METHODS: [SignatureMethod; 4] = [
    SignatureMethod::HmacSha1,
    SignatureMethod::HmacSha256,
    SignatureMethod::RsaSha1,
    SignatureMethod::Plaintext,
];
const PLACEMENTS: [Placement; 2] = [Placement::Header, Placement::Query];

fn creds() -> Credentials {
    Credentials::new("consumer key", secret("c s&%"))
        .with_token("tok+en", secret("t s é"))
        .with_rsa_key(RsaSigningKey::from_pem(OAUTHLIB_RSA_KEY).expect("key"))
}

/// What the server holds for `creds()`.
fn lookup(consumer: &str, token: Option<&str>) -> Option<VerifierKeys> {
    (consumer == "consumer key" && token == Some("tok+en")).then(|| VerifierKeys {
        consumer_secret: Some(secret("c s&%")),
        token_secret: Some(secret("t s é")),
        rsa_public_key: rsa_public_key_from_pem(OAUTHLIB_RSA_PUBLIC).ok(),
    })
}

fn signing(method: SignatureMethod, placement: Placement) -> SignParams<'static> {
    SignParams {
        method,
        placement,
        include_version: true,
        body_hash: true,
        ..params("nonce123", NOW)
    }
}

fn received<'a>(
    signed: &'a SignedRequest,
    method: &'a str,
    body: Option<Body<'a>>,
) -> ReceivedRequest<'a> {
    ReceivedRequest {
        method,
        url: signed.url(),
        authorization: signed.authorization(),
        body,
    }
}

const URL: &str =
    "https://Api.Example.com:8443/fhir/Medication%20List/~x*?q=a+b&q=&z=%E2%9C%93&bare&eq=%3D%26";
const JSON: Body<'static> = Body {
    content_type: Some("application/json"),
    bytes: br#"{"a":"b c"}"#,
};
const FORM_BODY: Body<'static> = Body {
    content_type: Some("application/x-www-form-urlencoded"),
    bytes: b"f=1+2&f=%21&g",
};

#[test]
fn every_method_and_placement_round_trips() {
    let u = url(URL);
    for method in METHODS {
        for placement in PLACEMENTS {
            for (verb, body) in [
                ("GET", None),
                ("POST", Some(JSON)),
                ("POST", Some(FORM_BODY)),
            ] {
                let request = Oauth1Request {
                    method: verb,
                    url: &u,
                    body,
                };
                let signed = sign(&request, &creds(), &signing(method, placement)).expect("signs");
                assert_eq!(
                    signed.authorization().is_some(),
                    placement == Placement::Header
                );
                let verified = verify(&received(&signed, verb, body), lookup, NOW, SKEW)
                    .unwrap_or_else(|e| panic!("{method} {placement:?} {verb}: {e}"));
                assert_eq!(verified.placement, placement);
                assert_eq!(verified.method, method);
                assert_eq!(verified.nonce, "nonce123");
                assert_eq!(verified.timestamp, NOW);
                assert_eq!(verified.consumer_key, "consumer key");
                assert_eq!(verified.token.as_deref(), Some("tok+en"));
            }
        }
    }
}

#[test]
fn query_placement_keeps_the_original_query_and_appends() {
    let u = url(URL);
    let signed = sign(
        &get(&u),
        &creds(),
        &signing(SignatureMethod::HmacSha1, Placement::Query),
    )
    .expect("signs");
    let query = signed.url().query().expect("query");
    assert!(
        query.starts_with("q=a+b&q=&z=%E2%9C%93&bare&eq=%3D%26&oauth_"),
        "{query}"
    );
    assert!(
        query.contains("oauth_consumer_key=consumer%20key"),
        "{query}"
    );
    assert!(query.contains("oauth_token=tok%2Ben"), "{query}");
    assert_eq!(signed.url().path(), u.path());
    let no_query = url("https://example.com/r");
    let signed = sign(
        &get(&no_query),
        &creds(),
        &signing(SignatureMethod::HmacSha1, Placement::Query),
    )
    .expect("signs");
    assert!(signed.url().query().expect("query").starts_with("oauth_"));
}

/// Each row changes one thing after signing; the verifier must refuse.
#[test]
fn tampering_is_refused() {
    let u = url(URL);
    for method in METHODS {
        for placement in PLACEMENTS {
            let request = Oauth1Request {
                method: "POST",
                url: &u,
                body: Some(FORM_BODY),
            };
            let signed = sign(&request, &creds(), &signing(method, placement)).expect("signs");
            let tamper_query = |from: &str, to: &str| {
                let mut t = signed.url().clone();
                t.set_query(Some(&t.query().unwrap_or_default().replacen(from, to, 1)));
                t
            };
            let changed_param = tamper_query("q=a+b", "q=a+c");
            let mut changed_path = signed.url().clone();
            changed_path.set_path("/fhir/Other");
            let mut changed_port = signed.url().clone();
            changed_port.set_port(Some(9443)).expect("port");
            let cases: Vec<(&str, &Url, &str, Option<Body<'_>>)> = vec![
                (
                    "changed query value",
                    &changed_param,
                    "POST",
                    Some(FORM_BODY),
                ),
                ("changed path", &changed_path, "POST", Some(FORM_BODY)),
                ("changed port", &changed_port, "POST", Some(FORM_BODY)),
                ("changed method", signed.url(), "PUT", Some(FORM_BODY)),
                (
                    "changed form body",
                    signed.url(),
                    "POST",
                    Some(Body {
                        bytes: b"f=1+3&f=%21&g",
                        ..FORM_BODY
                    }),
                ),
                ("dropped form body", signed.url(), "POST", None),
            ];
            for (what, tampered, verb, body) in cases {
                let r = ReceivedRequest {
                    method: verb,
                    url: tampered,
                    authorization: signed.authorization(),
                    body,
                };
                if method == SignatureMethod::Plaintext {
                    // PLAINTEXT signs nothing but the secrets (§3.4.4): only
                    // TLS protects the request, so tampering goes unnoticed.
                    continue;
                }
                assert_eq!(
                    verify(&r, lookup, NOW, SKEW),
                    Err(VerifyError::BadSignature),
                    "{method} {placement:?}: {what}"
                );
            }
        }
    }
}

#[test]
fn changed_json_body_is_refused_through_the_body_hash() {
    let u = url(URL);
    for method in METHODS {
        let request = Oauth1Request {
            method: "POST",
            url: &u,
            body: Some(JSON),
        };
        let signed = sign(&request, &creds(), &signing(method, Placement::Header)).expect("signs");
        let other = Body {
            bytes: br#"{"a":"evil"}"#,
            ..JSON
        };
        let r = received(&signed, "POST", Some(other));
        assert_eq!(
            verify(&r, lookup, NOW, SKEW),
            Err(VerifyError::BodyHashMismatch),
            "{method}"
        );
    }
}

/// A redirect must be signed again: the old signature replayed on the new
/// URL is refused, and re-signing after stripping the old oauth params works.
#[test]
fn redirected_request_needs_a_new_signature() {
    let first = url("https://ehr.example.com/fhir/Medication?patient=1");
    for placement in PLACEMENTS {
        let signed = sign(
            &get(&first),
            &creds(),
            &signing(SignatureMethod::HmacSha1, placement),
        )
        .expect("signs");
        // The provider redirects to another path, keeping the query as sent.
        let mut location = signed.url().clone();
        location.set_path("/fhir/r4/Medication");
        let replay = ReceivedRequest {
            method: "GET",
            url: &location,
            authorization: signed.authorization(),
            body: None,
        };
        assert_eq!(
            verify(&replay, lookup, NOW, SKEW),
            Err(VerifyError::BadSignature),
            "{placement:?}"
        );

        let stripped = strip_oauth_params(&location);
        assert_eq!(
            stripped.as_str(),
            "https://ehr.example.com/fhir/r4/Medication?patient=1"
        );
        let mut again = signing(SignatureMethod::HmacSha1, placement);
        again.nonce = "fresh-nonce";
        let resigned = sign(&get(&stripped), &creds(), &again).expect("signs");
        let ok = received(&resigned, "GET", None);
        assert_eq!(
            verify(&ok, lookup, NOW, SKEW).map(|v| v.nonce),
            Ok("fresh-nonce".to_string())
        );
        // Signing the unstripped Location is refused, not silently doubled.
        if placement == Placement::Query {
            assert!(matches!(
                sign(&get(&location), &creds(), &again),
                Err(Oauth1Error::OauthParamInRequest(_))
            ));
        }
    }
}

#[test]
fn strip_oauth_params_keeps_everything_else_verbatim() {
    let table = [
        (
            "https://x.test/p?a=1&oauth_token=t&b=%20+&oauth_signature=s%3D",
            "https://x.test/p?a=1&b=%20+",
        ),
        ("https://x.test/p?oauth_nonce=1", "https://x.test/p"),
        ("https://x.test/p?oauth%5Fnonce=1&q", "https://x.test/p?q"),
        (
            "https://x.test/p?q=oauth_x&oauthy=1#frag",
            "https://x.test/p?q=oauth_x&oauthy=1#frag",
        ),
        ("https://x.test/p", "https://x.test/p"),
    ];
    for (input, expected) in table {
        assert_eq!(
            strip_oauth_params(&url(input)).as_str(),
            expected,
            "{input}"
        );
    }
}

#[test]
fn oauth_params_in_two_places_are_refused() {
    let u = url("https://example.com/r?x=1");
    let header = sign(
        &get(&u),
        &creds(),
        &signing(SignatureMethod::HmacSha1, Placement::Header),
    )
    .expect("signs");
    let query = sign(
        &get(&u),
        &creds(),
        &signing(SignatureMethod::HmacSha1, Placement::Query),
    )
    .expect("signs");
    let both = ReceivedRequest {
        method: "GET",
        url: query.url(),
        authorization: header.authorization(),
        body: None,
    };
    assert_eq!(
        verify(&both, lookup, NOW, SKEW),
        Err(VerifyError::MultiplePlacements)
    );
    let form = Body {
        content_type: Some("application/x-www-form-urlencoded"),
        bytes: b"oauth_token=x",
    };
    let header_and_body = ReceivedRequest {
        body: Some(form),
        ..received(&header, "POST", None)
    };
    assert_eq!(
        verify(&header_and_body, lookup, NOW, SKEW),
        Err(VerifyError::MultiplePlacements)
    );
    let body_only = ReceivedRequest {
        method: "POST",
        url: &u,
        authorization: None,
        body: Some(form),
    };
    assert_eq!(
        verify(&body_only, lookup, NOW, SKEW),
        Err(VerifyError::FormBodyPlacement)
    );
    // The signer cannot produce two placements: a form body with oauth params is refused.
    let request = Oauth1Request {
        method: "POST",
        url: &u,
        body: Some(form),
    };
    assert_eq!(
        sign(
            &request,
            &creds(),
            &signing(SignatureMethod::HmacSha1, Placement::Header)
        )
        .err(),
        Some(Oauth1Error::OauthParamInRequest("oauth_token".into()))
    );
}

#[test]
fn verifier_refusals() {
    let u = url("https://example.com/r?x=1");
    let signed = sign(
        &get(&u),
        &creds(),
        &signing(SignatureMethod::HmacSha1, Placement::Header),
    )
    .expect("signs");
    let auth = signed.authorization().expect("header").to_string();
    let verify_header = |h: &str| {
        let r = ReceivedRequest {
            method: "GET",
            url: &u,
            authorization: Some(h),
            body: None,
        };
        verify(&r, lookup, NOW, SKEW)
    };
    let table: Vec<(&str, String, VerifyError)> = vec![
        (
            "missing nonce",
            auth.replace("oauth_nonce=\"nonce123\", ", ""),
            VerifyError::MissingParameter("oauth_nonce"),
        ),
        (
            "missing signature",
            auth.replace("oauth_signature=", "oauth_sig="),
            VerifyError::MissingParameter("oauth_signature"),
        ),
        (
            "unknown method",
            auth.replace("HMAC-SHA1", "HMAC-MD5"),
            VerifyError::UnknownSignatureMethod("HMAC-MD5".into()),
        ),
        (
            "wrong version",
            auth.replace("oauth_version=\"1.0\"", "oauth_version=\"2.0\""),
            VerifyError::UnsupportedVersion("2.0".into()),
        ),
        (
            "timestamp not a number",
            auth.replace(&format!("\"{NOW}\""), "\"12ab\""),
            VerifyError::MalformedTimestamp,
        ),
        (
            "duplicated parameter",
            format!("{auth}, oauth_nonce=\"again\""),
            VerifyError::DuplicateParameter("oauth_nonce".into()),
        ),
        (
            "other scheme",
            auth.replace("OAuth ", "Bearer "),
            VerifyError::MalformedHeader("not the OAuth scheme"),
        ),
        (
            "unknown consumer",
            auth.replace("consumer%20key", "someone%20else"),
            VerifyError::UnknownCredentials,
        ),
    ];
    for (what, header, expected) in table {
        assert_eq!(verify_header(&header), Err(expected), "{what}");
    }
    // realm is ignored: adding one does not break the signature.
    assert!(verify_header(&auth.replace("OAuth ", "OAuth realm=\"Anything\", ")).is_ok());

    for (now, ok) in [
        (NOW + SKEW, true),
        (NOW - SKEW, true),
        (NOW + SKEW + 1, false),
        (NOW - SKEW - 1, false),
    ] {
        let r = received(&signed, "GET", None);
        let got = verify(&r, lookup, now, SKEW);
        if ok {
            assert!(got.is_ok(), "now={now}");
        } else {
            assert_eq!(
                got,
                Err(VerifyError::StaleTimestamp {
                    timestamp: NOW,
                    min: now - SKEW,
                    max: now + SKEW
                })
            );
        }
    }

    // A consumer registered for RSA only cannot be verified with HMAC.
    let rsa_only = |_: &str, _: Option<&str>| {
        Some(VerifierKeys {
            consumer_secret: None,
            token_secret: Some(secret("t s é")),
            rsa_public_key: rsa_public_key_from_pem(OAUTHLIB_RSA_PUBLIC).ok(),
        })
    };
    assert_eq!(
        verify(&received(&signed, "GET", None), rsa_only, NOW, SKEW),
        Err(VerifyError::MethodNotAllowed(SignatureMethod::HmacSha1))
    );
    // A wrong token secret is a bad signature.
    let wrong = |_: &str, _: Option<&str>| {
        Some(VerifierKeys {
            consumer_secret: Some(secret("c s&%")),
            token_secret: Some(secret("other")),
            rsa_public_key: None,
        })
    };
    assert_eq!(
        verify(&received(&signed, "GET", None), wrong, NOW, SKEW),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn plaintext_is_refused_over_http() {
    let u = url("http://example.com/r");
    let p = signing(SignatureMethod::Plaintext, Placement::Header);
    assert_eq!(
        sign(&get(&u), &creds(), &p).err(),
        Some(Oauth1Error::PlaintextOverInsecureTransport {
            scheme: "http".into()
        })
    );
    // A PLAINTEXT request that arrives over http is refused by the verifier too.
    let https = url("https://example.com/r");
    let signed = sign(&get(&https), &creds(), &p).expect("signs over https");
    let r = ReceivedRequest {
        method: "GET",
        url: &u,
        authorization: signed.authorization(),
        body: None,
    };
    assert_eq!(
        verify(&r, lookup, NOW, SKEW),
        Err(VerifyError::PlaintextOverInsecureTransport("http".into()))
    );
}

#[test]
fn signer_input_errors() {
    let u = url("https://example.com/r");
    let c = creds();
    let base = signing(SignatureMethod::HmacSha1, Placement::Header);
    let ftp = url("ftp://example.com/r");
    let bad_query = url("https://example.com/r?q=%FF");
    let cases: Vec<(&str, Oauth1Request<'_>, SignParams<'_>, Oauth1Error)> = vec![
        (
            "empty nonce",
            get(&u),
            SignParams { nonce: "", ..base },
            Oauth1Error::EmptyNonce,
        ),
        (
            "ftp",
            get(&ftp),
            base,
            Oauth1Error::UnsupportedScheme("ftp".into()),
        ),
        (
            "bad method",
            Oauth1Request {
                method: "GE T",
                ..get(&u)
            },
            base,
            Oauth1Error::InvalidHttpMethod("GE T".into()),
        ),
        (
            "realm in query",
            get(&u),
            SignParams {
                realm: Some("r"),
                placement: Placement::Query,
                ..base
            },
            Oauth1Error::RealmNeedsHeader,
        ),
        (
            "quote in realm",
            get(&u),
            SignParams {
                realm: Some("a\"b"),
                ..base
            },
            Oauth1Error::InvalidRealm,
        ),
        (
            "non-UTF-8 query",
            get(&bad_query),
            base,
            Oauth1Error::NotUtf8("query"),
        ),
    ];
    for (what, request, p, expected) in cases {
        assert_eq!(sign(&request, &c, &p).err(), Some(expected), "{what}");
    }
    let no_rsa = Credentials::new("k", secret("s"));
    let rsa = SignParams {
        method: SignatureMethod::RsaSha1,
        ..base
    };
    assert_eq!(
        sign(&get(&u), &no_rsa, &rsa).err(),
        Some(Oauth1Error::MissingRsaKey)
    );
    assert_eq!(
        SignatureMethod::parse("HMAC-SHA1"),
        Ok(SignatureMethod::HmacSha1)
    );
    assert_eq!(
        SignatureMethod::parse("hmac-sha1"),
        Err(Oauth1Error::UnknownSignatureMethod("hmac-sha1".into()))
    );
    for m in METHODS {
        assert_eq!(SignatureMethod::parse(m.as_str()), Ok(m));
    }
}

fn any_text() -> impl Strategy<Value = String> {
    // Unicode, the form-encoding specials and the characters signers
    // mis-encode, in any mix.
    proptest::collection::vec(
        prop_oneof![
            any::<char>().prop_filter("no NUL", |c| *c != '\0'),
            proptest::sample::select(vec![
                ' ', '+', '%', '&', '=', '~', '*', '!', '\'', '"', '#', '?', '/'
            ]),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn prop_signed_requests_verify_and_a_changed_value_does_not(
        pairs in proptest::collection::vec((any_text(), any_text()), 0..5),
        consumer_secret in any_text(),
        token_secret in any_text(),
        method_index in 0usize..3,
        query_placement in any::<bool>(),
    ) {
        let method = [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256, SignatureMethod::RsaSha1][method_index];
        let placement = if query_placement { Placement::Query } else { Placement::Header };
        let mut u = url("https://example.com/r");
        if !pairs.is_empty() {
            u.query_pairs_mut().extend_pairs(pairs.iter().filter(|(n, _)| !n.starts_with("oauth_")));
        }
        let creds = Credentials::new("ck", secret(&consumer_secret))
            .with_token("tk", secret(&token_secret))
            .with_rsa_key(RsaSigningKey::from_pem(OAUTHLIB_RSA_KEY).expect("key"));
        let signed = sign(&get(&u), &creds, &signing(method, placement)).expect("signs");
        let keys = |_: &str, _: Option<&str>| Some(VerifierKeys {
            consumer_secret: Some(secret(&consumer_secret)),
            token_secret: Some(secret(&token_secret)),
            rsa_public_key: rsa_public_key_from_pem(OAUTHLIB_RSA_PUBLIC).ok(),
        });
        let r = received(&signed, "GET", None);
        prop_assert!(verify(&r, keys, NOW, SKEW).is_ok());

        let mut tampered = signed.url().clone();
        let extra = format!("{}&tampered=1", tampered.query().unwrap_or_default());
        tampered.set_query(Some(&extra));
        let t = ReceivedRequest { url: &tampered, ..r };
        prop_assert_eq!(verify(&t, keys, NOW, SKEW), Err(VerifyError::BadSignature));
    }

    #[test]
    fn prop_percent_encoding_round_trips_and_uses_only_unreserved(s in any_text()) {
        let encoded = percent_encode(&s);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        let decoded = percent_encoding::percent_decode_str(&encoded).decode_utf8().expect("UTF-8");
        prop_assert_eq!(decoded, s);
    }

    #[test]
    fn prop_header_written_is_header_read(
        pairs in proptest::collection::btree_map(any_text().prop_filter("name", |n| !n.is_empty()), any_text(), 0..6),
    ) {
        let params: Vec<(String, String)> = pairs.into_iter().filter(|(n, _)| n != "realm").collect();
        let written = crate::fetch::oauth1::header::write(Some("R, x"), &params);
        let parsed = crate::fetch::oauth1::header::parse(&written).expect("parses");
        prop_assert_eq!(parsed.realm.as_deref(), Some("R, x"));
        prop_assert_eq!(parsed.params, params);
    }
}
