//! ID token (OpenID Connect Core §3.1.3.7) and JWT access token (RFC 9068)
//! validation against the provider's JWKS, with `jsonwebtoken`. Pure: the
//! caller hands over the key set (fetched and cached by `fetch::identity`)
//! and the clock.
//!
//! Never accepted: an algorithm the provider does not announce (so `none`
//! and HMAC with a public key as secret are out), a key the set does not
//! hold, a JWK whose own `alg` contradicts the header.

use super::IdentityError;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};

/// The claims of a validated token.
pub type Claims = Map<String, Value>;

/// How far `iat` may lie in the future (clock skew), and the leeway on `exp`.
pub const SKEW_SECS: i64 = 300;

/// What a token must say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// `iss`, exactly.
    pub issuer: &'a str,
    /// Our client id: in `aud` (ID token), or `client_id` (access token).
    pub client_id: &'a str,
    /// The nonce sent with the authorization request (ID tokens).
    pub nonce: Option<&'a str>,
    /// The algorithms the provider announces.
    pub algorithms: &'a [Algorithm],
    /// UTC epoch seconds.
    pub now: i64,
}

/// Validates an ID token: signature by a key of `jwks` with an announced
/// algorithm, `iss`, `aud` containing our client id (and `azp` naming us
/// when there are several audiences), `exp`, `iat` within the skew, and
/// `nonce` when one is expected.
pub fn validate_id_token(
    token: &str,
    jwks: &JwkSet,
    expected: &Expected<'_>,
) -> Result<Claims, IdentityError> {
    let claims = verify(token, jwks, expected, true)?;
    if let Some(Value::Array(auds)) = claims.get("aud")
        && auds.len() > 1
        && claims.get("azp").and_then(Value::as_str) != Some(expected.client_id)
    {
        return Err(IdentityError::WrongAudience(
            "several audiences and azp does not name this client".into(),
        ));
    }
    if let Some(nonce) = expected.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(IdentityError::NonceMismatch);
    }
    Ok(claims)
}

/// Validates an ID token that came straight from the token endpoint of a
/// provider with no JWKS configured or discovered: `aud` naming us (and
/// `azp` when there are several), `iss` present, `exp`, `iat` within the
/// skew, and `nonce` when one is expected — but not the signature.
/// OpenID Connect Core §3.1.3.7 (6) lets the TLS server validation of the
/// token endpoint stand in for the signature of a token received there
/// directly; the claims still catch a token injected from another
/// authorization (its nonce), for another client, or out of date.
pub fn validate_id_token_claims(
    token: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: i64,
) -> Result<Claims, IdentityError> {
    use base64::Engine;
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdentityError::Malformed(
            "the ID token is not a signed JWT (three dot-separated parts)".into(),
        ));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| IdentityError::Malformed(format!("the ID token's payload: {e}")))?;
    let claims: Claims = serde_json::from_slice(&bytes)
        .map_err(|e| IdentityError::Malformed(format!("the ID token's claims: {e}")))?;
    if !claims.get("iss").is_some_and(Value::is_string) {
        return Err(IdentityError::Malformed("no iss claim".into()));
    }
    let names_us = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        Some(_) => false,
        None => return Err(IdentityError::Malformed("no aud claim".into())),
    };
    if !names_us {
        return Err(IdentityError::WrongAudience(
            "aud does not name this client".into(),
        ));
    }
    if let Some(Value::Array(auds)) = claims.get("aud")
        && auds.len() > 1
        && claims.get("azp").and_then(Value::as_str) != Some(client_id)
    {
        return Err(IdentityError::WrongAudience(
            "several audiences and azp does not name this client".into(),
        ));
    }
    match claims.get("exp").and_then(Value::as_i64) {
        None => return Err(IdentityError::Malformed("no exp claim".into())),
        Some(exp) if exp + SKEW_SECS < now => return Err(IdentityError::Expired),
        Some(_) => {}
    }
    match claims.get("iat").and_then(Value::as_i64) {
        None => return Err(IdentityError::Malformed("no iat claim".into())),
        Some(iat) if iat > now + SKEW_SECS => return Err(IdentityError::IssuedInFuture),
        Some(_) => {}
    }
    if let Some(nonce) = nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(IdentityError::NonceMismatch);
    }
    Ok(claims)
}

/// Validates an RFC 9068 JWT access token: `typ` `at+jwt`, the signature,
/// `iss`, `exp`, `iat`, and `client_id` naming us. (Its `aud` names the
/// resource server, not us.)
pub fn validate_access_token(
    token: &str,
    jwks: &JwkSet,
    expected: &Expected<'_>,
) -> Result<Claims, IdentityError> {
    let header = decode_header(token).map_err(|e| IdentityError::Malformed(e.to_string()))?;
    let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
    if !matches!(typ.as_deref(), Some("at+jwt" | "application/at+jwt")) {
        return Err(IdentityError::Malformed(format!(
            "the access token's typ is {:?}, not at+jwt (RFC 9068)",
            header.typ
        )));
    }
    let claims = verify(token, jwks, expected, false)?;
    if claims.get("client_id").and_then(Value::as_str) != Some(expected.client_id) {
        return Err(IdentityError::WrongAudience(
            "the access token's client_id is not this client".into(),
        ));
    }
    Ok(claims)
}

/// The checks both token kinds share.
fn verify(
    token: &str,
    jwks: &JwkSet,
    expected: &Expected<'_>,
    check_aud: bool,
) -> Result<Claims, IdentityError> {
    let header = decode_header(token).map_err(|e| IdentityError::Malformed(e.to_string()))?;
    if !expected.algorithms.contains(&header.alg) {
        return Err(IdentityError::Algorithm(format!("{:?}", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks
            .find(kid)
            .ok_or_else(|| IdentityError::UnknownKid(kid.clone()))?,
        // Without a kid, only a set of one key says which key it is.
        None => match jwks.keys.as_slice() {
            [only] => only,
            _ => return Err(IdentityError::UnknownKid("(none given)".into())),
        },
    };
    if let Some(alg) = jwk.common.key_algorithm
        && alg.to_string() != format!("{:?}", header.alg)
    {
        return Err(IdentityError::Algorithm(format!(
            "{:?} with a key for {alg}",
            header.alg
        )));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdentityError::Malformed(e.to_string()))?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[expected.issuer]);
    if check_aud {
        v.set_audience(&[expected.client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
    } else {
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "iss"]);
    }
    v.leeway = SKEW_SECS as u64;
    use jsonwebtoken::errors::ErrorKind as K;
    let data = decode::<Claims>(token, &key, &v).map_err(|e| match e.kind() {
        K::InvalidSignature => IdentityError::BadSignature,
        K::ExpiredSignature => IdentityError::Expired,
        K::InvalidIssuer => IdentityError::WrongIssuer,
        K::InvalidAudience => IdentityError::WrongAudience("aud does not name this client".into()),
        K::MissingRequiredClaim(c) => IdentityError::Malformed(format!("no {c} claim")),
        K::InvalidAlgorithm => IdentityError::Algorithm(format!("{:?}", header.alg)),
        _ => IdentityError::Malformed(e.to_string()),
    })?;
    let claims = data.claims;
    // jsonwebtoken reads its own clock for exp; `iat` and exp against the
    // caller's clock are checked here, so tests can pin the time.
    let exp = claims.get("exp").and_then(Value::as_i64);
    if exp.is_some_and(|exp| exp + SKEW_SECS < expected.now) {
        return Err(IdentityError::Expired);
    }
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat > expected.now + SKEW_SECS => Err(IdentityError::IssuedInFuture),
        Some(_) => Ok(claims),
        None => Err(IdentityError::Malformed("no iat claim".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const RSA_KEY: &str = include_str!("../../samples/sandbox/demo-rsa-key.pem");
    const EC_KEY: &str = include_str!("../../samples/sandbox/demo-ec-p256-key.pem");
    const JWKS: &str = include_str!("../../samples/sandbox/demo-jwks.json");
    /// Another RSA key: its signatures are not the provider's.
    const OTHER_RSA_KEY: &str = include_str!("../../tests/fixtures/identity-other-rsa-key.pem");
    const NOW: i64 = 1_800_000_000;
    const ALGS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

    fn jwks() -> JwkSet {
        serde_json::from_str(JWKS).expect("the demo JWKS parses")
    }

    fn expected(nonce: Option<&str>) -> Expected<'_> {
        Expected {
            issuer: "https://idp.example",
            client_id: "rxsync",
            nonce,
            algorithms: &ALGS,
            now: NOW,
        }
    }

    fn claims() -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": "https://idp.example", "aud": "rxsync", "sub": "p1", "nonce": "n-1",
               "iat": NOW, "exp": now.max(NOW) + 600, "mrn": "MRN-1001"})
    }

    fn sign(alg: Algorithm, kid: Option<&str>, pem: &str, claims: &Value) -> String {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_string);
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("test key");
        encode(&h, claims, &key).expect("signs")
    }

    fn rs(claims: &Value) -> String {
        sign(Algorithm::RS256, Some("sandbox-rs256"), RSA_KEY, claims)
    }

    #[test]
    fn valid_rs256_and_es256_tokens_pass() {
        let c = validate_id_token(&rs(&claims()), &jwks(), &expected(Some("n-1"))).expect("RS256");
        assert_eq!(c["mrn"], "MRN-1001");
        let es = sign(Algorithm::ES256, Some("sandbox-es256"), EC_KEY, &claims());
        validate_id_token(&es, &jwks(), &expected(Some("n-1"))).expect("ES256");
    }

    #[test]
    fn each_failure_has_its_kind() {
        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            c
        };
        let far_future = chrono::Utc::now().timestamp() + 10_000;
        let rows: Vec<(&str, String, Option<&str>, &str)> = vec![
            (
                "bad signature",
                sign(
                    Algorithm::RS256,
                    Some("sandbox-rs256"),
                    OTHER_RSA_KEY,
                    &claims(),
                ),
                Some("n-1"),
                "BadSignature",
            ),
            (
                "wrong aud",
                rs(&with("aud", json!("someone-else"))),
                Some("n-1"),
                "WrongAudience",
            ),
            (
                "wrong iss",
                rs(&with("iss", json!("https://evil.example"))),
                Some("n-1"),
                "WrongIssuer",
            ),
            (
                "expired",
                rs(&with("exp", json!(NOW - 3600))),
                Some("n-1"),
                "Expired",
            ),
            (
                "iat in the future",
                rs(&with("iat", json!(far_future.max(NOW + 3600)))),
                Some("n-1"),
                "IssuedInFuture",
            ),
            (
                "nonce mismatch",
                rs(&claims()),
                Some("n-2"),
                "NonceMismatch",
            ),
            (
                "no nonce",
                rs(&with("nonce", Value::Null)),
                Some("n-1"),
                "NonceMismatch",
            ),
            (
                "unknown kid",
                sign(Algorithm::RS256, Some("rotated-away"), RSA_KEY, &claims()),
                Some("n-1"),
                "UnknownKid",
            ),
            (
                "unannounced algorithm",
                sign(Algorithm::RS384, Some("sandbox-rs256"), RSA_KEY, &claims()),
                Some("n-1"),
                "Algorithm",
            ),
            (
                "the key is for another algorithm",
                sign(Algorithm::RS256, Some("sandbox-es256"), RSA_KEY, &claims()),
                Some("n-1"),
                "Algorithm",
            ),
        ];
        for (name, token, nonce, kind) in rows {
            let e = validate_id_token(&token, &jwks(), &expected(nonce)).expect_err(name);
            assert!(format!("{e:?}").starts_with(kind), "{name}: {e:?}");
        }
    }

    #[test]
    fn without_a_jwks_the_claims_are_still_checked() {
        let ok = rs(&claims());
        let now = chrono::Utc::now().timestamp().max(NOW);
        let c = validate_id_token_claims(&ok, "rxsync", Some("n-1"), now).expect("valid");
        assert_eq!(c["mrn"], "MRN-1001");
        let mut late = claims();
        late["exp"] = json!(NOW - 1000);
        for (name, token, client, nonce, want) in [
            ("nonce", ok.clone(), "rxsync", Some("n-2"), "nonce"),
            (
                "aud",
                ok.clone(),
                "other",
                Some("n-1"),
                "not for this client",
            ),
            ("exp", rs(&late), "rxsync", Some("n-1"), "expired"),
            ("not a JWT", "abc.def".to_string(), "rxsync", None, "three"),
        ] {
            let at = if name == "exp" { NOW } else { now };
            let e = validate_id_token_claims(&token, client, nonce, at).expect_err(name);
            assert!(e.to_string().contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn an_hmac_token_is_refused() {
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"public"),
        )
        .expect("signs");
        let e = validate_id_token(&token, &jwks(), &expected(None)).expect_err("HS256");
        assert!(matches!(e, IdentityError::Algorithm(_)), "{e:?}");
    }

    #[test]
    fn jwt_access_tokens_need_at_jwt_and_our_client_id() {
        let mut c = claims();
        c["client_id"] = json!("rxsync");
        c["aud"] = json!("https://fhir.example");
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("sandbox-rs256".into());
        h.typ = Some("at+jwt".into());
        let key = EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).expect("key");
        let token = encode(&h, &c, &key).expect("signs");
        validate_access_token(&token, &jwks(), &expected(None)).expect("valid");
        let plain = rs(&c);
        assert!(matches!(
            validate_access_token(&plain, &jwks(), &expected(None)),
            Err(IdentityError::Malformed(_))
        ));
        c["client_id"] = json!("other");
        let token = encode(&h, &c, &key).expect("signs");
        assert!(matches!(
            validate_access_token(&token, &jwks(), &expected(None)),
            Err(IdentityError::WrongAudience(_))
        ));
    }
}
