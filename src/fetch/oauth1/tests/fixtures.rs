//! Shared fixtures for the round-trip tests: one set of credentials that
//! exercises encoding (spaces, `&`, `%`, `+`, non-ASCII) and the server's view
//! of them.

use super::*;

pub(super) const NOW: u64 = 1_700_000_000;
pub(super) const SKEW: u64 = 600;
pub(super) const METHODS: [SignatureMethod; 4] = [
    SignatureMethod::HmacSha1,
    SignatureMethod::HmacSha256,
    SignatureMethod::RsaSha1,
    SignatureMethod::Plaintext,
];
pub(super) const PLACEMENTS: [Placement; 2] = [Placement::Header, Placement::Query];

pub(super) fn creds() -> Credentials {
    Credentials::new("consumer key", secret("c s&%"))
        .with_token("tok+en", secret("t s é"))
        .with_rsa_key(RsaSigningKey::from_pem(OAUTHLIB_RSA_KEY).expect("key"))
}

/// What the server holds for `creds()`.
pub(super) fn lookup(consumer: &str, token: Option<&str>) -> Option<VerifierKeys> {
    (consumer == "consumer key" && token == Some("tok+en")).then(|| VerifierKeys {
        consumer_secret: Some(secret("c s&%")),
        token_secret: Some(secret("t s é")),
        rsa_public_key: rsa_public_key_from_pem(OAUTHLIB_RSA_PUBLIC).ok(),
    })
}

pub(super) fn signing(method: SignatureMethod, placement: Placement) -> SignParams<'static> {
    SignParams {
        method,
        placement,
        include_version: true,
        body_hash: true,
        ..params("nonce123", NOW)
    }
}

pub(super) fn received<'a>(
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

pub(super) const URL: &str =
    "https://Api.Example.com:8443/fhir/Medication%20List/~x*?q=a+b&q=&z=%E2%9C%93&bare&eq=%3D%26";
pub(super) const JSON: Body<'static> = Body {
    content_type: Some("application/json"),
    bytes: br#"{"a":"b c"}"#,
};
pub(super) const FORM_BODY: Body<'static> = Body {
    content_type: Some("application/x-www-form-urlencoded"),
    bytes: b"f=1+2&f=%21&g",
};
