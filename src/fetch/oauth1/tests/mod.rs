//! Unit tests: the RFC 5849 vectors, the traps listed in
//! `oauth-notes.md`, and sign-then-verify round trips.

mod encoding;
mod fixtures;
mod props;
mod refusals;
mod roundtrip;
mod vectors;

use secrecy::SecretString;
use url::Url;

use super::*;

/// oauthlib's 1024-bit RSA test key (tests/oauth1/rfc5849/test_signatures.py).
pub(super) const OAUTHLIB_RSA_KEY: &str =
    include_str!("../../../../tests/fixtures/oauthlib-rsa-test-key.pem");

/// Its public half, as oauthlib's tests give it (PKCS#1).
pub(super) const OAUTHLIB_RSA_PUBLIC: &str = "-----BEGIN RSA PUBLIC KEY-----
MIGJAoGBAOTX9vHJLxDyOKF4d5hin/isQomil5BFEoqlkjizmL5Q/BWm6kYCXBdZ
/NfBIxoo8Cgok127u2opGeKqy3m6gdfD3yCPTHvNqa7QKTUu1DhzukUxVqHkhgaE
GLYT3Jw1Lfb1bbuck9Y0JsRJO7uydWUbxXyZ+8YaDfE2NMw7sh2vAgMBAAE=
-----END RSA PUBLIC KEY-----
";

pub(super) fn url(s: &str) -> Url {
    Url::parse(s).expect("test URL parses")
}

pub(super) fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

/// HMAC-SHA1, header placement, no realm, no version, no body hash.
pub(super) fn params<'a>(nonce: &'a str, timestamp: u64) -> SignParams<'a> {
    SignParams {
        method: SignatureMethod::HmacSha1,
        placement: Placement::Header,
        realm: None,
        nonce,
        timestamp,
        include_version: false,
        body_hash: false,
        callback: None,
        verifier: None,
    }
}

pub(super) fn get(url: &Url) -> Oauth1Request<'_> {
    Oauth1Request {
        method: "GET",
        url,
        body: None,
    }
}
