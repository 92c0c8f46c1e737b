//! Signing (RFC 5849 §3.1–3.5): collect the request parameters, build the
//! base string, sign it, and place the protocol parameters in the header or
//! the query as the caller chose.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use url::Url;

use super::encode::{
    form_decode, form_decode_component, is_form_content_type, percent_encode, signature_base_string,
};
use super::{Credentials, Oauth1Error, Placement, SignatureMethod, header};

/// A request body as it will be sent.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// The `Content-Type` header; form parameters are signed only when this
    /// is `application/x-www-form-urlencoded` (§3.4.1.3.1).
    pub content_type: Option<&'a str>,
    /// The exact bytes sent.
    pub bytes: &'a [u8],
}

/// The request to sign.
#[derive(Debug, Clone, Copy)]
pub struct Oauth1Request<'a> {
    /// The HTTP method; upper-cased in the base string.
    pub method: &'a str,
    /// The full request URL, query included.
    pub url: &'a Url,
    /// The body, if any.
    pub body: Option<Body<'a>>,
}

/// Everything about one signature that is not a credential. Nonce and
/// timestamp come from the caller so that signing stays deterministic.
#[derive(Debug, Clone, Copy)]
pub struct SignParams<'a> {
    pub method: SignatureMethod,
    /// Chosen by the provider's configuration, never guessed here.
    pub placement: Placement,
    /// Sent in the header only, never signed.
    pub realm: Option<&'a str>,
    /// Unique per request (the provider refuses replays).
    pub nonce: &'a str,
    /// UTC seconds since the epoch.
    pub timestamp: u64,
    /// Send `oauth_version="1.0"` (optional in §3.1; some providers want it).
    pub include_version: bool,
    /// Send `oauth_body_hash` (draft-eaton-oauth-bodyhash) for a body that
    /// is not form-encoded, so the body is covered by the signature.
    pub body_hash: bool,
    /// `oauth_callback`, for a temporary-credential request (§2.1).
    pub callback: Option<&'a str>,
    /// `oauth_verifier`, for a token request (§2.3).
    pub verifier: Option<&'a str>,
}

/// A signed request: the URL to send (with the oauth parameters appended
/// for the query placement) and the `Authorization` value for the header
/// placement. Exactly one of the two carries the protocol parameters.
#[derive(Clone)]
pub struct SignedRequest {
    url: Url,
    authorization: Option<String>,
    oauth_params: Vec<(String, String)>,
}

impl SignedRequest {
    /// The URL to request.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The `Authorization` header value (header placement only).
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }

    /// The protocol parameters sent, `oauth_signature` included, decoded.
    pub fn oauth_params(&self) -> &[(String, String)] {
        &self.oauth_params
    }

    /// The value of one protocol parameter.
    pub fn oauth_param(&self, name: &str) -> Option<&str> {
        self.oauth_params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for SignedRequest {
    // A PLAINTEXT signature *is* the secrets, and any signature is a
    // credential until its nonce expires: show neither.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.oauth_params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SignedRequest")
            .field("base_string_uri", &super::base_string_uri(&self.url))
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[REDACTED]"),
            )
            .field("oauth_params", &names)
            .finish()
    }
}

/// Signs `request` with `credentials`.
pub fn sign(
    request: &Oauth1Request<'_>,
    credentials: &Credentials,
    params: &SignParams<'_>,
) -> Result<SignedRequest, Oauth1Error> {
    check_inputs(request, params)?;
    let mut all_params = request_params(request.url, request.body.as_ref())?;
    if let Some((name, _)) = all_params.iter().find(|(n, _)| n.starts_with("oauth_")) {
        return Err(Oauth1Error::OauthParamInRequest(name.clone()));
    }
    let mut oauth = protocol_params(request, credentials, params);
    all_params.extend(oauth.iter().cloned());
    let base = signature_base_string(request.method, request.url, &all_params);
    let signature = compute_signature(
        params.method,
        &base,
        &credentials.consumer_secret,
        credentials.token.as_ref().map(|t| &t.secret),
        credentials.rsa_key.as_ref().map(|k| k.key()),
    )?;
    oauth.push(("oauth_signature".to_string(), signature));

    let mut url = request.url.clone();
    let authorization = match params.placement {
        Placement::Header => Some(header::write(params.realm, &oauth)),
        Placement::Query => {
            append_to_query(&mut url, &oauth);
            None
        }
    };
    Ok(SignedRequest {
        url,
        authorization,
        oauth_params: oauth,
    })
}

/// Refuses what cannot be signed safely before any work is done.
fn check_inputs(request: &Oauth1Request<'_>, params: &SignParams<'_>) -> Result<(), Oauth1Error> {
    let scheme = request.url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(Oauth1Error::UnsupportedScheme(scheme.to_string()));
    }
    if params.method == SignatureMethod::Plaintext && scheme != "https" {
        return Err(Oauth1Error::PlaintextOverInsecureTransport {
            scheme: scheme.to_string(),
        });
    }
    check_http_method(request.method)?;
    if params.nonce.is_empty() {
        return Err(Oauth1Error::EmptyNonce);
    }
    if let Some(realm) = params.realm {
        if params.placement != Placement::Header {
            return Err(Oauth1Error::RealmNeedsHeader);
        }
        // The realm goes into the header as a quoted string, unencoded:
        // only printable ASCII without `"` and `\` fits there safely.
        if !realm
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\')
        {
            return Err(Oauth1Error::InvalidRealm);
        }
    }
    Ok(())
}

/// The protocol parameters of §3.1, without `oauth_signature`.
fn protocol_params(
    request: &Oauth1Request<'_>,
    credentials: &Credentials,
    params: &SignParams<'_>,
) -> Vec<(String, String)> {
    let mut oauth = vec![
        (
            "oauth_consumer_key".to_string(),
            credentials.consumer_key.clone(),
        ),
        ("oauth_nonce".to_string(), params.nonce.to_string()),
        (
            "oauth_signature_method".to_string(),
            params.method.as_str().to_string(),
        ),
        ("oauth_timestamp".to_string(), params.timestamp.to_string()),
    ];
    if let Some(token) = &credentials.token {
        oauth.push(("oauth_token".to_string(), token.token.clone()));
    }
    if params.include_version {
        oauth.push(("oauth_version".to_string(), "1.0".to_string()));
    }
    if let Some(callback) = params.callback {
        oauth.push(("oauth_callback".to_string(), callback.to_string()));
    }
    if let Some(verifier) = params.verifier {
        oauth.push(("oauth_verifier".to_string(), verifier.to_string()));
    }
    if params.body_hash
        && let Some(body) = &request.body
        && !is_form_content_type(body.content_type)
    {
        // Only a body that is not form-encoded: form parameters are already
        // signed one by one, and the draft forbids the hash for them. A
        // request without a body gets none, as oauthlib does.
        oauth.push(("oauth_body_hash".to_string(), body_hash(body.bytes)));
    }
    oauth
}

/// The query placement (§3.5.3): the protocol parameters are appended to
/// the query, percent-encoded per §3.6. The original query is kept byte for
/// byte: re-serializing it could change what the server decodes (and so
/// what it signs).
fn append_to_query(url: &mut Url, oauth: &[(String, String)]) {
    let appended: Vec<String> = oauth
        .iter()
        .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
        .collect();
    let appended = appended.join("&");
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{appended}"),
        _ => appended,
    };
    url.set_query(Some(&query));
}

/// Removes every `oauth_*` parameter from a URL's query, keeping the other
/// parameters exactly as spelled. A redirect's `Location` built from a
/// query-signed URL carries the old protocol parameters; they must go
/// before the new URL is signed again.
pub fn strip_oauth_params(url: &Url) -> Url {
    let mut out = url.clone();
    let Some(query) = url.query() else {
        return out;
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .filter(|segment| {
            let raw_name = segment.split('=').next().unwrap_or_default();
            // A name that is not UTF-8 cannot be an oauth parameter; keep it.
            form_decode_component(raw_name).map_or(true, |name| !name.starts_with("oauth_"))
        })
        .collect();
    if kept.is_empty() {
        out.set_query(None);
    } else {
        out.set_query(Some(&kept.join("&")));
    }
    out
}

/// The request parameters of §3.4.1.3.1 other than the protocol ones: the
/// query, and the body when it is form-encoded.
pub(super) fn request_params(
    url: &Url,
    body: Option<&Body<'_>>,
) -> Result<Vec<(String, String)>, Oauth1Error> {
    let mut out = match url.query() {
        Some(q) => form_decode(q).map_err(|_| Oauth1Error::NotUtf8("query"))?,
        None => Vec::new(),
    };
    if let Some(body) = body
        && is_form_content_type(body.content_type)
    {
        let text =
            std::str::from_utf8(body.bytes).map_err(|_| Oauth1Error::NotUtf8("form body"))?;
        out.extend(form_decode(text).map_err(|_| Oauth1Error::NotUtf8("form body"))?);
    }
    Ok(out)
}

/// The HMAC and PLAINTEXT key of §3.4.2: `enc(consumer secret)&enc(token
/// secret)`. The `&` stays even when a secret is empty.
pub(super) fn signing_key(consumer: &SecretString, token: Option<&SecretString>) -> SecretString {
    let token = token.map(|t| percent_encode(t.expose_secret()));
    SecretString::from(format!(
        "{}&{}",
        percent_encode(consumer.expose_secret()),
        token.as_deref().unwrap_or("")
    ))
}

/// The `oauth_signature` value for `base`.
pub(super) fn compute_signature(
    method: SignatureMethod,
    base: &str,
    consumer_secret: &SecretString,
    token_secret: Option<&SecretString>,
    rsa_key: Option<&RsaPrivateKey>,
) -> Result<String, Oauth1Error> {
    let key = signing_key(consumer_secret, token_secret);
    let key = key.expose_secret();
    Ok(match method {
        SignatureMethod::HmacSha1 => BASE64.encode(hmac_sha1(key.as_bytes(), base.as_bytes())),
        SignatureMethod::HmacSha256 => BASE64.encode(hmac_sha256(key.as_bytes(), base.as_bytes())),
        // §3.4.4: the signature is the key itself, nothing is hashed.
        SignatureMethod::Plaintext => key.to_string(),
        SignatureMethod::RsaSha1 => {
            let rsa_key = rsa_key.ok_or(Oauth1Error::MissingRsaKey)?;
            let digest = Sha1::digest(base.as_bytes());
            let sig = rsa_key
                .sign(Pkcs1v15Sign::new::<Sha1>(), &digest)
                .map_err(|_| Oauth1Error::RsaSigning)?;
            BASE64.encode(sig)
        }
    })
}

/// Checks an RSA-SHA1 signature (§3.4.3) against the consumer's public key.
pub(super) fn rsa_sha1_verifies(public: &RsaPublicKey, base: &str, signature: &str) -> bool {
    let Ok(sig) = BASE64.decode(signature) else {
        return false;
    };
    let digest = Sha1::digest(base.as_bytes());
    public
        .verify(Pkcs1v15Sign::new::<Sha1>(), &digest, &sig)
        .is_ok()
}

fn hmac_sha1(key: &[u8], text: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this constructor cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

/// `oauth_body_hash`: base64 of the SHA-1 of the exact body bytes.
pub(super) fn body_hash(bytes: &[u8]) -> String {
    BASE64.encode(Sha1::digest(bytes))
}

/// The method must be an HTTP token (RFC 7230), since it is copied into
/// the base string; an empty or spaced method is a caller bug.
pub(super) fn check_http_method(method: &str) -> Result<(), Oauth1Error> {
    let ok = !method.is_empty()
        && method
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Oauth1Error::InvalidHttpMethod(method.to_string()))
    }
}
