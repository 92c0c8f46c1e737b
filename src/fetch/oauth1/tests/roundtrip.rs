//! Sign, then verify: every method and both placements, tampering, and
//! redirects.

use super::fixtures::*;
use super::*;

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

/// A temporary-credential request (§2.1) has no token: the key is
/// `enc(consumer secret)&` even if the server's lookup hands back a token
/// secret, and the callback is signed.
#[test]
fn tokenless_requests_verify() {
    let u = url("https://photos.example.net/initiate");
    let consumer_only = Credentials::new("consumer key", secret("c s&%"))
        .with_rsa_key(RsaSigningKey::from_pem(OAUTHLIB_RSA_KEY).expect("key"));
    for method in METHODS {
        for placement in PLACEMENTS {
            let p = SignParams {
                callback: Some("http://printer.example.com/ready"),
                ..signing(method, placement)
            };
            let request = Oauth1Request {
                method: "POST",
                url: &u,
                body: None,
            };
            let signed = sign(&request, &consumer_only, &p).expect("signs");
            let keys = |_: &str, token: Option<&str>| {
                assert_eq!(token, None);
                Some(VerifierKeys {
                    consumer_secret: Some(secret("c s&%")),
                    token_secret: Some(secret("ignored")),
                    rsa_public_key: rsa_public_key_from_pem(OAUTHLIB_RSA_PUBLIC).ok(),
                })
            };
            let verified = verify(&received(&signed, "POST", None), keys, NOW, SKEW)
                .unwrap_or_else(|e| panic!("{method} {placement:?}: {e}"));
            assert_eq!(verified.token, None);
            assert_eq!(
                signed.oauth_param("oauth_callback"),
                Some("http://printer.example.com/ready")
            );
        }
    }
}
