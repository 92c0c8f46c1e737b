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
pub(super) const OAUTHLIB_RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDk1/bxyS8Q8jiheHeYYp/4rEKJopeQRRKKpZI4s5i+UPwVpupG
AlwXWfzXwSMaKPAoKJNdu7tqKRniqst5uoHXw98gj0x7zamu0Ck1LtQ4c7pFMVah
5IYGhBi2E9ycNS329W27nJPWNCbESTu7snVlG8V8mfvGGg3xNjTMO7IdrwIDAQAB
AoGBAOQ2KuH8S5+OrsL4K+wfjoCi6MfxCUyqVU9GxocdM1m30WyWRFMEz2nKJ8fR
p3vTD4w8yplTOhcoXdQZl0kRoaDzrcYkm2VvJtQRrX7dKFT8dR8D/Tr7dNQLOXfC
DY6xveQczE7qt7Vk7lp4FqmxBsaaEuokt78pOOjywZoInjZhAkEA9wz3zoZNT0/i
rf6qv2qTIeieUB035N3dyw6f1BGSWYaXSuerDCD/J1qZbAPKKhyHZbVawFt3UMhe
542UftBaxQJBAO0iJy1I8GQjGnS7B3yvyH3CcLYGy296+XO/2xKp/d/ty1OIeovx
C60pLNwuFNF3z9d2GVQAdoQ89hUkOtjZLeMCQQD0JO6oPHUeUjYT+T7ImAv7UKVT
Suy30sKjLzqoGw1kR+wv7C5PeDRvscs4wa4CW9s6mjSrMDkDrmCLuJDtmf55AkEA
kmaMg2PNrjUR51F0zOEFycaaqXbGcFwe1/xx9zLmHzMDXd4bsnwt9kk+fe0hQzVS
JzatanQit3+feev1PN3QewJAWv4RZeavEUhKv+kLe95Yd0su7lTLVduVgh4v5yLT
Ga6FHdjGPcfajt+nrpB1n8UQBEH9ZxniokR/IPvdMlxqXA==
-----END RSA PRIVATE KEY-----
";

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
