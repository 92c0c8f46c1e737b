//! OAuth 1.0a (RFC 5849) request signing and verification.
//!
//! The signer turns a request (method, URL, optional body) plus credentials
//! into the `oauth_*` protocol parameters and places them where the caller
//! asked: in the `Authorization` header or in the query, never both. The
//! verifier does the reverse for the loopback sandbox provider. Both are
//! pure: no HTTP, no clock, no randomness — the caller passes the nonce,
//! the timestamp and "now", so every signature is reproducible in tests.
//!
//! What this module must never do: log, print or return a secret (consumer
//! secret, token secret, RSA key) anywhere but inside a signature; decide the
//! placement on its own (a provider's configuration does); sign PLAINTEXT
//! over a non-https URL; or re-use a signature for another URL — a redirect
//! is signed again, after `strip_oauth_params`, with a fresh nonce.

mod credentials;
mod encode;
mod header;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

pub use credentials::{Credentials, RsaSigningKey, TokenCredentials, rsa_public_key_from_pem};
pub use encode::{base_string_uri, normalize_parameters, percent_encode, signature_base_string};
pub use sign::{Body, Oauth1Request, SignParams, SignedRequest, sign, strip_oauth_params};
pub use verify::{ReceivedRequest, VerifiedOauth, VerifierKeys, VerifyError, verify};

use std::fmt;

/// The signature methods we sign and verify with. HMAC-SHA256 is not in
/// RFC 5849 but is what newer providers (and oauthlib) call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
    RsaSha1,
    /// The shared secrets themselves; only ever over https.
    Plaintext,
}

impl SignatureMethod {
    /// Parses the wire name (`oauth_signature_method`), case-sensitively as
    /// the RFC spells them.
    pub fn parse(name: &str) -> Result<SignatureMethod, Oauth1Error> {
        match name {
            "HMAC-SHA1" => Ok(SignatureMethod::HmacSha1),
            "HMAC-SHA256" => Ok(SignatureMethod::HmacSha256),
            "RSA-SHA1" => Ok(SignatureMethod::RsaSha1),
            "PLAINTEXT" => Ok(SignatureMethod::Plaintext),
            other => Err(Oauth1Error::UnknownSignatureMethod(other.to_string())),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
            SignatureMethod::RsaSha1 => "RSA-SHA1",
            SignatureMethod::Plaintext => "PLAINTEXT",
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the protocol parameters travel (§3.5). The form-body placement of
/// §3.5.2 is deliberately absent: no provider we talk to needs it, and it
/// would make the body part of the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// `Authorization: OAuth ...` (§3.5.1).
    Header,
    /// Appended to the request URI's query (§3.5.3).
    Query,
}

/// Why a request could not be signed. No variant carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Oauth1Error {
    /// `oauth_signature_method` named something we do not implement.
    #[error("unknown OAuth signature method {0:?}")]
    UnknownSignatureMethod(String),
    /// PLAINTEXT sends the secrets themselves, so TLS is not optional.
    #[error("PLAINTEXT signatures are refused over {scheme}; use https or an HMAC method")]
    PlaintextOverInsecureTransport { scheme: String },
    /// RSA-SHA1 was asked for but the credentials hold no private key.
    #[error("RSA-SHA1 needs an RSA private key in the credentials")]
    MissingRsaKey,
    /// The PEM text is not an RSA key in PKCS#1 or PKCS#8 form.
    #[error("the RSA key is not a PEM PKCS#1 or PKCS#8 RSA key")]
    InvalidRsaKey,
    /// The RSA signing operation itself failed.
    #[error("RSA signing failed")]
    RsaSigning,
    /// Only http and https requests can be signed (§3.4.1.2).
    #[error("cannot sign a {0:?} URL: only http and https")]
    UnsupportedScheme(String),
    /// The HTTP method is empty or not an HTTP token.
    #[error("invalid HTTP method {0:?}")]
    InvalidHttpMethod(String),
    /// The nonce is empty (§3.3 requires one).
    #[error("the nonce is empty")]
    EmptyNonce,
    /// The request already carries `oauth_*` parameters (for instance a
    /// redirect's `Location`): signing it would put protocol parameters in
    /// two places. Strip them with `strip_oauth_params` first.
    #[error("the request already carries the OAuth parameter {0:?}; strip it before signing")]
    OauthParamInRequest(String),
    /// The query or the form body is not valid UTF-8 once decoded.
    #[error("the {0} is not UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
    /// `realm` only exists in the `Authorization` header.
    #[error("a realm can only be sent with the Authorization header placement")]
    RealmNeedsHeader,
    /// The realm would break out of its quoted string or is not printable ASCII.
    #[error("the realm must be printable ASCII without quotes or backslashes")]
    InvalidRealm,
}
