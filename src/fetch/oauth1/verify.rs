//! Verification (RFC 5849 §3.2), for the loopback sandbox provider: read
//! the protocol parameters from wherever the client put them, refuse a
//! request that puts them in two places, check freshness, recompute the
//! base string and compare signatures in constant time.
//!
//! Nonce replay tracking needs state, so it is the caller's: `verify`
//! returns the nonce and timestamp for the caller to record.

use rsa::RsaPublicKey;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::encode::{constant_time_eq, form_decode, is_form_content_type, signature_base_string};
use super::header::{self, HeaderError};
use super::sign::{
    Body, body_hash, check_http_method, compute_signature, rsa_sha1_verifies, signing_key,
};
use super::{Placement, SignatureMethod};

/// A request as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedRequest<'a> {
    pub method: &'a str,
    /// The URL as received, query included.
    pub url: &'a Url,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The body, if any: form parameters are part of the signature, and a
    /// non-form body is checked against `oauth_body_hash` when present.
    pub body: Option<Body<'a>>,
}

/// What the server knows about a consumer (and token), returned by the
/// caller's lookup. A method is accepted only if the keys it needs are here:
/// leave `consumer_secret` out for an RSA-only consumer.
#[derive(Debug, Clone, Default)]
pub struct VerifierKeys {
    /// For HMAC-SHA1, HMAC-SHA256 and PLAINTEXT.
    pub consumer_secret: Option<SecretString>,
    /// Must be present when the request names a token.
    pub token_secret: Option<SecretString>,
    /// For RSA-SHA1.
    pub rsa_public_key: Option<RsaPublicKey>,
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOauth {
    pub consumer_key: String,
    pub token: Option<String>,
    /// For the caller's replay check.
    pub nonce: String,
    pub timestamp: u64,
    pub placement: Placement,
    pub method: SignatureMethod,
    /// `oauth_callback`, signed (a temporary-credential request, §2.1).
    pub callback: Option<String>,
    /// `oauth_verifier`, signed (a token request, §2.3).
    pub verifier: Option<String>,
}

/// Why a request was refused. Variants name the problem for the sandbox's
/// `oauth_problem` answer; none carries a secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The `Authorization` header is not a well-formed `OAuth` header.
    #[error("malformed OAuth Authorization header: {0}")]
    MalformedHeader(&'static str),
    /// A protocol parameter appears twice.
    #[error("the OAuth parameter {0:?} appears more than once")]
    DuplicateParameter(String),
    /// Protocol parameters in more than one of header, query and form body.
    #[error("OAuth parameters were sent in more than one place")]
    MultiplePlacements,
    /// Protocol parameters in a form body (§3.5.2): not supported here.
    #[error("OAuth parameters in a form body are not supported")]
    FormBodyPlacement,
    /// No protocol parameters at all, or a required one is missing.
    #[error("the OAuth parameter {0} is missing")]
    MissingParameter(&'static str),
    /// `oauth_signature_method` names a method we do not verify.
    #[error("unknown OAuth signature method {0:?}")]
    UnknownSignatureMethod(String),
    /// `oauth_version` present but not `1.0`.
    #[error("unsupported oauth_version {0:?}")]
    UnsupportedVersion(String),
    /// `oauth_timestamp` is not a decimal number.
    #[error("oauth_timestamp is not a number of seconds")]
    MalformedTimestamp,
    /// The timestamp is outside the allowed skew; `min`–`max` is the range
    /// that would have been accepted (for `oauth_acceptable_timestamps`).
    #[error("oauth_timestamp {timestamp} is outside the acceptable range {min}-{max}")]
    StaleTimestamp { timestamp: u64, min: u64, max: u64 },
    /// A query, body or header value is not UTF-8 once decoded.
    #[error("the {0} is not UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
    /// The consumer key (or token) is unknown to the lookup.
    #[error("unknown consumer key or token")]
    UnknownCredentials,
    /// The consumer has no key for this method (e.g. HMAC for an RSA-only consumer).
    #[error("the signature method {0} is not allowed for this consumer")]
    MethodNotAllowed(SignatureMethod),
    /// PLAINTEXT over anything but https.
    #[error("PLAINTEXT signatures are refused over {0}")]
    PlaintextOverInsecureTransport(String),
    /// The HTTP method is not a token.
    #[error("invalid HTTP method")]
    InvalidHttpMethod,
    /// `oauth_body_hash` does not match the body.
    #[error("oauth_body_hash does not match the body")]
    BodyHashMismatch,
    /// `oauth_body_hash` on a form-encoded body (the draft forbids it).
    #[error("oauth_body_hash is not allowed with a form-encoded body")]
    BodyHashOnFormBody,
    /// The signature does not match.
    #[error("the signature is invalid")]
    BadSignature,
}

/// Verifies `request`. `lookup(consumer_key, token)` returns the keys the
/// server holds, or `None` if either is unknown. `now` is UTC epoch
/// seconds; a timestamp more than `allowed_skew_secs` away is refused.
pub fn verify(
    request: &ReceivedRequest<'_>,
    lookup: impl FnOnce(&str, Option<&str>) -> Option<VerifierKeys>,
    now: u64,
    allowed_skew_secs: u64,
) -> Result<VerifiedOauth, VerifyError> {
    check_http_method(request.method).map_err(|_| VerifyError::InvalidHttpMethod)?;
    let collected = collect(request)?;
    let oauth = &collected.oauth;

    let get = |name: &'static str| {
        oauth
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let require = |name: &'static str| get(name).ok_or(VerifyError::MissingParameter(name));
    let consumer_key = require("oauth_consumer_key")?;
    let method_name = require("oauth_signature_method")?;
    let signature = require("oauth_signature")?;
    let timestamp = require("oauth_timestamp")?;
    // RFC 5849 lets PLAINTEXT omit nonce and timestamp; we never do, and
    // without them a replay could not be detected.
    let nonce = require("oauth_nonce")?;
    let token = get("oauth_token");
    if let Some(version) = get("oauth_version")
        && version != "1.0"
    {
        return Err(VerifyError::UnsupportedVersion(version.to_string()));
    }
    let method = SignatureMethod::parse(method_name)
        .map_err(|_| VerifyError::UnknownSignatureMethod(method_name.to_string()))?;
    if method == SignatureMethod::Plaintext && request.url.scheme() != "https" {
        return Err(VerifyError::PlaintextOverInsecureTransport(
            request.url.scheme().to_string(),
        ));
    }
    let timestamp = check_freshness(timestamp, now, allowed_skew_secs)?;

    let keys = lookup(consumer_key, token).ok_or(VerifyError::UnknownCredentials)?;
    if token.is_some() && keys.token_secret.is_none() {
        return Err(VerifyError::UnknownCredentials);
    }
    // Without a token the key is `enc(consumer secret)&`, whatever token
    // secret the lookup may have returned.
    let token_secret = token.and(keys.token_secret.as_ref());
    check_body_hash(request.body.as_ref(), get("oauth_body_hash"))?;

    let base = signature_base_string(request.method, request.url, &collected.signed);
    let valid = signature_matches(method, &keys, token_secret, &base, signature)?;
    if !valid {
        return Err(VerifyError::BadSignature);
    }
    Ok(VerifiedOauth {
        consumer_key: consumer_key.to_string(),
        token: token.map(str::to_string),
        nonce: nonce.to_string(),
        timestamp,
        placement: collected.placement,
        method,
        callback: get("oauth_callback").map(str::to_string),
        verifier: get("oauth_verifier").map(str::to_string),
    })
}

/// The parameters of a received request, sorted into what is signed and
/// what the protocol parameters are.
struct Collected {
    /// The `oauth_*` parameters, `oauth_signature` included.
    oauth: Vec<(String, String)>,
    /// Every parameter the base string covers (§3.4.1.3.1): query, header
    /// (without `realm`), form body; without `oauth_signature`.
    signed: Vec<(String, String)>,
    placement: Placement,
}

fn collect(request: &ReceivedRequest<'_>) -> Result<Collected, VerifyError> {
    let header_params = match request.authorization {
        Some(value) => {
            header::parse(value)
                .map_err(|e| match e {
                    HeaderError::NotOauth => VerifyError::MalformedHeader("not the OAuth scheme"),
                    HeaderError::Malformed(why) => VerifyError::MalformedHeader(why),
                    HeaderError::Duplicate(name) => VerifyError::DuplicateParameter(name),
                    HeaderError::NotUtf8 => VerifyError::NotUtf8("Authorization header"),
                })?
                .params
        }
        None => Vec::new(),
    };
    let query_params = match request.url.query() {
        Some(q) => form_decode(q).map_err(|_| VerifyError::NotUtf8("query"))?,
        None => Vec::new(),
    };
    let body_params = match &request.body {
        Some(body) if is_form_content_type(body.content_type) => {
            let text =
                std::str::from_utf8(body.bytes).map_err(|_| VerifyError::NotUtf8("form body"))?;
            form_decode(text).map_err(|_| VerifyError::NotUtf8("form body"))?
        }
        _ => Vec::new(),
    };

    let has_oauth =
        |params: &[(String, String)]| params.iter().any(|(n, _)| n.starts_with("oauth_"));
    let in_header = has_oauth(&header_params);
    let in_query = has_oauth(&query_params);
    let in_body = has_oauth(&body_params);
    let placement = match (in_header, in_query, in_body) {
        (true, false, false) => Placement::Header,
        (false, true, false) => Placement::Query,
        (false, false, true) => return Err(VerifyError::FormBodyPlacement),
        (false, false, false) => return Err(VerifyError::MissingParameter("oauth_signature")),
        _ => return Err(VerifyError::MultiplePlacements),
    };

    let mut oauth: Vec<(String, String)> = Vec::new();
    for (name, value) in header_params
        .iter()
        .chain(&query_params)
        .filter(|(n, _)| n.starts_with("oauth_"))
    {
        if oauth.iter().any(|(n, _)| n == name) {
            return Err(VerifyError::DuplicateParameter(name.clone()));
        }
        oauth.push((name.clone(), value.clone()));
    }
    let signed = query_params
        .into_iter()
        .chain(header_params)
        .chain(body_params)
        .filter(|(n, _)| n != "oauth_signature")
        .collect();
    Ok(Collected {
        oauth,
        signed,
        placement,
    })
}

/// Parses `oauth_timestamp` (decimal digits only: `u64::from_str` would
/// also take a leading `+`) and checks it is within `skew` of `now`.
fn check_freshness(raw: &str, now: u64, skew: u64) -> Result<u64, VerifyError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedTimestamp);
    }
    let timestamp: u64 = raw.parse().map_err(|_| VerifyError::MalformedTimestamp)?;
    let (min, max) = (now.saturating_sub(skew), now.saturating_add(skew));
    if timestamp < min || timestamp > max {
        return Err(VerifyError::StaleTimestamp {
            timestamp,
            min,
            max,
        });
    }
    Ok(timestamp)
}

/// Recomputes (HMAC, PLAINTEXT) or checks (RSA-SHA1) the signature. The
/// consumer must hold the key the method needs.
fn signature_matches(
    method: SignatureMethod,
    keys: &VerifierKeys,
    token_secret: Option<&SecretString>,
    base: &str,
    signature: &str,
) -> Result<bool, VerifyError> {
    let not_allowed = VerifyError::MethodNotAllowed(method);
    if method == SignatureMethod::RsaSha1 {
        let public = keys.rsa_public_key.as_ref().ok_or(not_allowed)?;
        return Ok(rsa_sha1_verifies(public, base, signature));
    }
    let consumer_secret = keys.consumer_secret.as_ref().ok_or(not_allowed)?;
    let expected = if method == SignatureMethod::Plaintext {
        signing_key(consumer_secret, token_secret)
    } else {
        SecretString::from(
            compute_signature(method, base, consumer_secret, token_secret, None)
                .map_err(|_| VerifyError::BadSignature)?,
        )
    };
    Ok(constant_time_eq(
        expected.expose_secret().as_bytes(),
        signature.as_bytes(),
    ))
}

fn check_body_hash(body: Option<&Body<'_>>, sent: Option<&str>) -> Result<(), VerifyError> {
    let Some(sent) = sent else {
        return Ok(());
    };
    match body {
        Some(body) if is_form_content_type(body.content_type) => {
            Err(VerifyError::BodyHashOnFormBody)
        }
        Some(body) => {
            if constant_time_eq(body_hash(body.bytes).as_bytes(), sent.as_bytes()) {
                Ok(())
            } else {
                Err(VerifyError::BodyHashMismatch)
            }
        }
        // A bodiless request is hashed as the empty body (the draft's rule).
        None => {
            if constant_time_eq(body_hash(b"").as_bytes(), sent.as_bytes()) {
                Ok(())
            } else {
                Err(VerifyError::BodyHashMismatch)
            }
        }
    }
}
