//! What a client signs with: the consumer (client) credentials, the token
//! credentials, and an RSA private key for RSA-SHA1. Secrets live in
//! `SecretString` or behind a redacting `Debug`, so that logging a
//! `Credentials` value cannot leak them.

use std::fmt;

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::SecretString;

use super::Oauth1Error;

/// An RSA private key for RSA-SHA1 signing, parsed from PEM.
#[derive(Clone)]
pub struct RsaSigningKey(RsaPrivateKey);

impl RsaSigningKey {
    /// Parses a PEM private key, PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8
    /// (`BEGIN PRIVATE KEY`). The error never quotes the PEM text.
    pub fn from_pem(pem: &str) -> Result<RsaSigningKey, Oauth1Error> {
        let pem = pem.trim();
        RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
            .map(RsaSigningKey)
            .map_err(|_| Oauth1Error::InvalidRsaKey)
    }

    /// The matching public key, for a verifier (or a test) to check with.
    pub fn public_key(&self) -> RsaPublicKey {
        self.0.to_public_key()
    }

    pub(crate) fn key(&self) -> &RsaPrivateKey {
        &self.0
    }
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaSigningKey([REDACTED])")
    }
}

/// Parses a PEM RSA public key: PKCS#1 (`BEGIN RSA PUBLIC KEY`) or SPKI
/// (`BEGIN PUBLIC KEY`). Public keys are not secret; this is for verifiers.
pub fn rsa_public_key_from_pem(pem: &str) -> Result<RsaPublicKey, Oauth1Error> {
    let pem = pem.trim();
    RsaPublicKey::from_pkcs1_pem(pem)
        .or_else(|_| RsaPublicKey::from_public_key_pem(pem))
        .map_err(|_| Oauth1Error::InvalidRsaKey)
}

/// Token credentials (§2.3): the token identifier goes on the wire, the
/// secret only into the signing key.
#[derive(Debug, Clone)]
pub struct TokenCredentials {
    /// Sent as `oauth_token`.
    pub token: String,
    /// Half of the HMAC/PLAINTEXT key; never sent except as part of a
    /// PLAINTEXT signature over TLS.
    pub secret: SecretString,
}

/// Everything a client needs to sign for one link.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Sent as `oauth_consumer_key`.
    pub consumer_key: String,
    /// The first half of the HMAC/PLAINTEXT key. May be empty for a
    /// consumer that signs only with RSA.
    pub consumer_secret: SecretString,
    /// Absent for temporary-credential requests (§2.1).
    pub token: Option<TokenCredentials>,
    /// Required for RSA-SHA1, unused otherwise.
    pub rsa_key: Option<RsaSigningKey>,
}

impl Credentials {
    /// Consumer credentials only, for a temporary-credential request.
    pub fn new(consumer_key: impl Into<String>, consumer_secret: SecretString) -> Credentials {
        Credentials {
            consumer_key: consumer_key.into(),
            consumer_secret,
            token: None,
            rsa_key: None,
        }
    }

    /// Adds token credentials (a request token or an access token).
    pub fn with_token(mut self, token: impl Into<String>, secret: SecretString) -> Credentials {
        self.token = Some(TokenCredentials {
            token: token.into(),
            secret,
        });
        self
    }

    /// Adds the RSA private key used by RSA-SHA1.
    pub fn with_rsa_key(mut self, key: RsaSigningKey) -> Credentials {
        self.rsa_key = Some(key);
        self
    }
}
