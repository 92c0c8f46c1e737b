//! SMART Backend Services: an access token for the client itself, by the
//! `client_credentials` grant with a `private_key_jwt` client assertion
//! (RFC 7523 §2.2, SMART Backend Services, RS384 or ES384).
//!
//! The JWS is made by the `jsonwebtoken` crate; nothing here signs by hand.
//! `client_assertion` is reusable by any token request that authenticates
//! with `private_key_jwt` (an authorization-code exchange too). The private
//! key, the assertion and the access token travel only as `SecretString`s
//! or sensitive header values: no error, log line or `Debug` shows them.

use super::auth::redact;
use super::settings::{AssertionAlg, AssertionKeySettings, Oauth2Settings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use rand::distributions::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use url::Url;

/// The assertion type of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An assertion is valid this long (SMART: no more than five minutes).
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);
/// A cached token is used until this long before it expires.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Token endpoint answers are read up to this many bytes.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// Why a backend token could not be had. Never carries a key or a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The private key file could not be read or is not a key for the algorithm.
    #[error("the private key for {alg} cannot be used: {detail}")]
    Key { alg: &'static str, detail: String },
    /// The token endpoint refused the client or its assertion.
    #[error("the token endpoint {url} refused the client ({code}{})", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        url: String,
        code: String,
        description: Option<String>,
    },
    /// Anything else: transport, a non-JSON answer, no access token.
    #[error("the token request to {url} failed: {detail}")]
    Failed { url: String, detail: String },
}

/// A private key ready to sign client assertions.
pub struct AssertionKey {
    alg: AssertionAlg,
    kid: String,
    key: EncodingKey,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AssertionKey {
    /// Reads a PEM private key: PKCS#8 for ES384 (P-384), PKCS#1 or PKCS#8 for RS384.
    pub fn from_pem(
        alg: AssertionAlg,
        kid: &str,
        pem: &SecretString,
    ) -> Result<Self, BackendError> {
        let bytes = pem.expose_secret().as_bytes();
        let key = match alg {
            AssertionAlg::Rs384 => EncodingKey::from_rsa_pem(bytes),
            AssertionAlg::Es384 => EncodingKey::from_ec_pem(bytes),
        }
        .map_err(|e| BackendError::Key {
            alg: alg.as_str(),
            // jsonwebtoken's key errors name the problem, never the key.
            detail: e.to_string(),
        })?;
        Ok(AssertionKey {
            alg,
            kid: kid.to_string(),
            key,
        })
    }

    /// Reads the key file named by the settings.
    pub fn load(s: &AssertionKeySettings) -> Result<Self, BackendError> {
        let text = std::fs::read_to_string(&s.private_key_file).map_err(|e| BackendError::Key {
            alg: s.algorithm.as_str(),
            detail: format!("{}: {e}", s.private_key_file.display()),
        })?;
        AssertionKey::from_pem(s.algorithm, &s.key_id, &SecretString::from(text))
    }
}

/// The public half of a `private_key_jwt` key as a JWK (RFC 7517 §4, RFC
/// 7518 §6): what a provider verifies rxsync's assertions with, served in
/// the review app's JWKS. Reads the private key file; never shows it.
pub fn public_jwk(s: &AssertionKeySettings) -> Result<serde_json::Value, BackendError> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let key_err = |detail: String| BackendError::Key {
        alg: s.algorithm.as_str(),
        detail,
    };
    let text = SecretString::from(
        std::fs::read_to_string(&s.private_key_file)
            .map_err(|e| key_err(format!("{}: {e}", s.private_key_file.display())))?,
    );
    let pem = text.expose_secret();
    let file = s.private_key_file.display();
    match s.algorithm {
        AssertionAlg::Rs384 => {
            use rsa::pkcs1::DecodeRsaPrivateKey as _;
            use rsa::pkcs8::DecodePrivateKey as _;
            use rsa::traits::PublicKeyParts as _;
            let k = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                .map_err(|_| {
                    key_err(format!(
                        "{file} is not an RSA private key (PKCS#8 or PKCS#1 PEM)"
                    ))
                })?;
            Ok(serde_json::json!({
                "kty": "RSA", "use": "sig", "alg": "RS384", "kid": s.key_id,
                "n": b64(&k.n().to_bytes_be()), "e": b64(&k.e().to_bytes_be()),
            }))
        }
        AssertionAlg::Es384 => {
            use p384::elliptic_curve::sec1::ToEncodedPoint as _;
            use p384::pkcs8::DecodePrivateKey as _;
            let k = p384::SecretKey::from_pkcs8_pem(pem)
                .or_else(|_| p384::SecretKey::from_sec1_pem(pem))
                .map_err(|_| {
                    key_err(format!(
                        "{file} is not a P-384 private key (PKCS#8 or SEC1 PEM)"
                    ))
                })?;
            let point = k.public_key().to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(key_err(format!("{file}: the public point is the identity")));
            };
            Ok(serde_json::json!({
                "kty": "EC", "use": "sig", "alg": "ES384", "kid": s.key_id, "crv": "P-384",
                "x": b64(x), "y": b64(y),
            }))
        }
    }
}

/// The JWK Set of every configured `private_key_jwt` key, current and
/// previous (two overlap during a rotation), each `kid` once: what the
/// review app serves at `/.well-known/jwks.json`. `providers`: each OAuth
/// 2.0 provider's id and settings (`Config::oauth2_providers`). Errors
/// name the provider.
pub fn client_jwks<'a>(
    providers: impl IntoIterator<Item = (&'a str, &'a Oauth2Settings)>,
) -> Result<serde_json::Value, String> {
    let mut keys: Vec<serde_json::Value> = Vec::new();
    for (id, o) in providers {
        for k in o.private_key_jwt.iter().chain(&o.previous_private_key_jwt) {
            if keys.iter().any(|j| j["kid"] == k.key_id.as_str()) {
                continue;
            }
            keys.push(public_jwk(k).map_err(|e| format!("provider {id}: {e}"))?);
        }
    }
    Ok(serde_json::json!({ "keys": keys }))
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: String,
}

/// A client assertion (RFC 7523 §3): `iss` = `sub` = the client id, `aud` =
/// the token URL, `exp` five minutes after `now`, a random `jti`; the
/// header names the key (`kid`) and the algorithm.
pub fn client_assertion(
    client_id: &str,
    token_url: &Url,
    key: &AssertionKey,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<SecretString, BackendError> {
    let mut header = Header::new(match key.alg {
        AssertionAlg::Rs384 => Algorithm::RS384,
        AssertionAlg::Es384 => Algorithm::ES384,
    });
    header.typ = Some("JWT".into());
    header.kid = Some(key.kid.clone());
    let jti: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let claims = AssertionClaims {
        iss: client_id,
        sub: client_id,
        aud: token_url.as_str(),
        exp: now.timestamp() + ASSERTION_LIFETIME.as_secs() as i64,
        iat: now.timestamp(),
        jti,
    };
    jsonwebtoken::encode(&header, &claims, &key.key)
        .map(SecretString::from)
        .map_err(|e| BackendError::Key {
            alg: key.alg.as_str(),
            detail: e.to_string(),
        })
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A backend-services client with its cached access token.
pub struct BackendClient {
    client_id: String,
    token_url: Url,
    scopes: Vec<String>,
    key: AssertionKey,
    /// The token and when to stop using it (`EXPIRY_MARGIN` before it expires).
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl BackendClient {
    pub fn new(client_id: &str, token_url: &Url, scopes: &[String], key: AssertionKey) -> Self {
        BackendClient {
            client_id: client_id.to_string(),
            token_url: token_url.clone(),
            scopes: scopes.to_vec(),
            key,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid access token: the cached one, else a new one. Concurrent
    /// callers wait for one token request.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<SecretString, BackendError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.request(http, timeout).await?;
        let usable = lifetime.saturating_sub(EXPIRY_MARGIN);
        *cached = Some((token.clone(), Instant::now() + usable));
        Ok(token)
    }

    /// Forgets the cached token (after a 401 with it).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<(SecretString, Duration), BackendError> {
        let url = redact(&self.token_url);
        let failed = |detail: String| BackendError::Failed {
            url: url.clone(),
            detail,
        };
        let assertion = client_assertion(
            &self.client_id,
            &self.token_url,
            &self.key,
            chrono::Utc::now(),
        )?;
        let scope = self.scopes.join(" ");
        // The serializer is not Send: build the body in a block of its own.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if !scope.is_empty() {
                form.append_pair("scope", &scope);
            }
            form.append_pair("client_assertion_type", JWT_BEARER);
            form.append_pair("client_assertion", assertion.expose_secret());
            form.finish()
        };
        let mut resp = http
            .post(self.token_url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                failed(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "cannot connect or send".into()
                })
            })?;
        let status = resp.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|_| failed("the answer was cut off".into()))?
        {
            if bytes.len() + chunk.len() > TOKEN_BODY_LIMIT {
                return Err(failed(format!(
                    "the answer is over {TOKEN_BODY_LIMIT} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| {
            failed(format!(
                "answered {status} with a body that is not a token response"
            ))
        })?;
        if let Some(code) = answer.error {
            return Err(BackendError::Refused {
                url: url.clone(),
                code,
                description: answer.error_description,
            });
        }
        if !status.is_success() {
            return Err(failed(format!("answered {status}")));
        }
        if let Some(t) = &answer.token_type
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Err(failed(format!("token_type {t:?} is not bearer")));
        }
        let token = answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed("the answer has no access_token".into()))?;
        // Without expires_in, assume the five minutes SMART recommends.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
        Ok((SecretString::from(token), lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use std::process::Command;

    /// A fresh key pair made by the `openssl` command: (private PKCS#8 PEM, public SPKI PEM).
    pub(crate) fn openssl_key(alg: AssertionAlg, dir: &std::path::Path) -> (String, String) {
        let private = dir.join(format!("{}.pem", alg.as_str()));
        let public = dir.join(format!("{}.pub.pem", alg.as_str()));
        let algorithm: &[&str] = match alg {
            AssertionAlg::Rs384 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            AssertionAlg::Es384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        };
        let ok = Command::new("openssl")
            .arg("genpkey")
            .args(algorithm)
            .arg("-out")
            .arg(&private)
            .status()
            .expect("openssl runs")
            .success();
        assert!(ok, "openssl genpkey");
        let ok = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .expect("openssl runs")
            .success();
        assert!(ok, "openssl pkey");
        (
            std::fs::read_to_string(private).expect("private"),
            std::fs::read_to_string(public).expect("public"),
        )
    }

    #[test]
    fn assertions_follow_rfc7523_and_verify_with_the_public_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = Url::parse("https://auth.example/token").expect("url");
        for alg in [AssertionAlg::Rs384, AssertionAlg::Es384] {
            let (private, public) = openssl_key(alg, dir.path());
            let key = AssertionKey::from_pem(alg, "kid-1", &SecretString::from(private.clone()))
                .expect("key");
            assert!(!format!("{key:?}").contains("PRIVATE"));
            let now = chrono::Utc::now();
            let a = client_assertion("rxsync", &url, &key, now).expect("signs");
            let b = client_assertion("rxsync", &url, &key, now).expect("signs");
            let header = jsonwebtoken::decode_header(a.expose_secret()).expect("header");
            assert_eq!(header.kid.as_deref(), Some("kid-1"));
            let (jalg, dkey) = match alg {
                AssertionAlg::Rs384 => (
                    Algorithm::RS384,
                    DecodingKey::from_rsa_pem(public.as_bytes()).expect("public"),
                ),
                AssertionAlg::Es384 => (
                    Algorithm::ES384,
                    DecodingKey::from_ec_pem(public.as_bytes()).expect("public"),
                ),
            };
            assert_eq!(header.alg, jalg);
            let mut v = Validation::new(jalg);
            v.set_audience(&["https://auth.example/token"]);
            v.set_issuer(&["rxsync"]);
            let claims = jsonwebtoken::decode::<serde_json::Value>(a.expose_secret(), &dkey, &v)
                .expect("verifies")
                .claims;
            assert_eq!(claims["sub"], "rxsync");
            assert!(claims["exp"].as_i64().expect("exp") - now.timestamp() <= 300);
            let jti_b = jsonwebtoken::decode::<serde_json::Value>(b.expose_secret(), &dkey, &v)
                .expect("verifies")
                .claims["jti"]
                .clone();
            assert_ne!(claims["jti"], jti_b, "a fresh jti each time");
            // The JWK we serve verifies what we sign.
            let file = dir.path().join(format!("{}.jwk.pem", alg.as_str()));
            std::fs::write(&file, &private).expect("write");
            let jwk = public_jwk(&AssertionKeySettings {
                private_key_file: file,
                key_id: "kid-1".into(),
                algorithm: alg,
            })
            .expect("jwk");
            assert!(!jwk.to_string().contains("\"d\""), "no private part: {jwk}");
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).expect("a JWK");
            let from_jwk = DecodingKey::from_jwk(&jwk).expect("decoding key");
            jsonwebtoken::decode::<serde_json::Value>(a.expose_secret(), &from_jwk, &v)
                .expect("verifies with the served JWK");
            // A key of the other family is refused with words, not the key.
            let other = match alg {
                AssertionAlg::Rs384 => AssertionAlg::Es384,
                AssertionAlg::Es384 => AssertionAlg::Rs384,
            };
            let msg = AssertionKey::from_pem(other, "k", &SecretString::from(private.clone()))
                .expect_err("wrong family")
                .to_string();
            assert!(!msg.contains("PRIVATE KEY"), "{msg}");
        }
    }
}
