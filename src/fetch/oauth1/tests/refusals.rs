//! What the signer and the verifier refuse, one row per rule.

use super::fixtures::*;
use super::*;

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
            "non-ASCII realm",
            get(&u),
            SignParams {
                realm: Some("Réalm"),
                ..base
            },
            Oauth1Error::InvalidRealm,
        ),
        (
            "newline in realm",
            get(&u),
            SignParams {
                realm: Some("a\nb"),
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
