//! Who each sandbox patient is: the identity its userinfo, introspection,
//! FHIR `Patient` and ID tokens carry. Every patient has a default (sub =
//! the patient id, `mrn` = `MRN-{id}`, Pat Doe, born 1980-04-02); the admin
//! API replaces any part of it, or takes the MRN away, so tests can make a
//! remote identity that does not match the local patient. Pure, except for
//! signing ID tokens with the embedded demo keys (RS256, ES256).

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The demo JWKS: the public halves of the two signing keys.
pub const JWKS: &str = include_str!("../../samples/sandbox/demo-jwks.json");
const RS256_KEY: &str = include_str!("../../samples/sandbox/demo-rsa-key.pem");
const ES256_KEY: &str = include_str!("../../samples/sandbox/demo-ec-p256-key.pem");
/// The system of the MRN identifier on sandbox `Patient` resources.
pub const MRN_SYSTEM: &str = "urn:rxsync:sandbox:mrn";

/// An identity change asked through `POST /admin/identities`: each field
/// given replaces the default; `mrn: null` removes the MRN.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityPatch {
    pub patient: String,
    #[serde(default, deserialize_with = "some")]
    pub mrn: Option<Option<String>>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub birth_date: Option<String>,
}

/// `Some(None)` for an explicit null, `None` for an absent field.
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// One patient's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub sub: String,
    pub mrn: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: String,
}

/// The identities changed by the admin API; everyone else has the default.
#[derive(Debug, Default)]
pub struct Identities {
    changed: HashMap<String, Person>,
}

impl Identities {
    pub fn person(&self, patient: &str) -> Person {
        self.changed
            .get(patient)
            .cloned()
            .unwrap_or_else(|| Person {
                sub: patient.to_string(),
                mrn: Some(format!("MRN-{patient}")),
                given_name: "Pat".into(),
                family_name: "Doe".into(),
                birth_date: "1980-04-02".into(),
            })
    }

    pub fn patch(&mut self, p: IdentityPatch) {
        let mut person = self.person(&p.patient);
        if let Some(mrn) = p.mrn {
            person.mrn = mrn;
        }
        if let Some(g) = p.given_name {
            person.given_name = g;
        }
        if let Some(f) = p.family_name {
            person.family_name = f;
        }
        if let Some(b) = p.birth_date {
            person.birth_date = b;
        }
        self.changed.insert(p.patient, person);
    }
}

impl Person {
    /// OpenID Connect standard claims plus `mrn` and SMART's `fhirUser`.
    pub fn claims(&self, patient: &str) -> Value {
        let mut c = json!({
            "sub": self.sub,
            "name": format!("{} {}", self.given_name, self.family_name),
            "given_name": self.given_name,
            "family_name": self.family_name,
            "birthdate": self.birth_date,
            "fhirUser": format!("Patient/{patient}"),
        });
        if let Some(mrn) = &self.mrn {
            c["mrn"] = json!(mrn);
        }
        c
    }

    /// The FHIR R4 `Patient` resource.
    pub fn patient_resource(&self, patient: &str) -> Value {
        let identifier: Vec<Value> = self
            .mrn
            .iter()
            .map(|m| json!({"system": MRN_SYSTEM, "value": m}))
            .collect();
        json!({
            "resourceType": "Patient",
            "id": patient,
            "identifier": identifier,
            "name": [{"family": self.family_name, "given": [self.given_name]}],
            "birthDate": self.birth_date,
        })
    }
}

/// An ID token asked for with a grant (`POST /admin/oauth2/grants`
/// `"id_token": {...}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdTokenRequest {
    /// `RS256` (default) or `ES256`.
    pub alg: Option<String>,
    pub nonce: Option<String>,
    /// A SMART `fhirUser` claim (the Patient's URL).
    #[serde(default)]
    pub fhir_user: Option<String>,
}

/// Signs an ID token for `person` to `client_id`, issued by `issuer`.
pub fn id_token(
    person: &Person,
    patient: &str,
    issuer: &str,
    client_id: &str,
    asked: &IdTokenRequest,
    now: u64,
) -> Result<String, String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let (alg, kid, key) = match asked.alg.as_deref().unwrap_or("RS256") {
        "RS256" => (
            Algorithm::RS256,
            "sandbox-rs256",
            EncodingKey::from_rsa_pem(RS256_KEY.as_bytes()),
        ),
        "ES256" => (
            Algorithm::ES256,
            "sandbox-es256",
            EncodingKey::from_ec_pem(ES256_KEY.as_bytes()),
        ),
        other => return Err(format!("alg {other:?}: the sandbox signs RS256 or ES256")),
    };
    let key = key.map_err(|e| e.to_string())?;
    let mut claims = person.claims(patient);
    claims["iss"] = json!(issuer);
    claims["aud"] = json!(client_id);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 600);
    if let Some(n) = &asked.nonce {
        claims["nonce"] = json!(n);
    }
    if let Some(f) = &asked.fhir_user {
        claims["fhirUser"] = json!(f);
    }
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    encode(&header, &claims, &key).map_err(|e| e.to_string())
}

/// The same token with one bit of its signature flipped (in the middle,
/// so the base64url stays canonical and an RSA signature stays below the
/// modulus): well-formed, signed by a known key id, and not verifying.
pub fn break_signature(token: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return token.to_string();
    };
    let Ok(mut bytes) = URL_SAFE_NO_PAD.decode(signature) else {
        return token.to_string();
    };
    let middle = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(middle) {
        *b ^= 0x01;
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// An RFC 9068 JWT access token (`typ` at+jwt, RS256) for `patient`,
/// issued by `issuer` to `client_id`. `jti` makes each one unique.
pub fn access_jwt(
    patient: &str,
    issuer: &str,
    client_id: &str,
    scope: &str,
    expires_in: u64,
    now: u64,
    jti: &str,
) -> Result<String, String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let key = EncodingKey::from_rsa_pem(RS256_KEY.as_bytes()).map_err(|e| e.to_string())?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("sandbox-rs256".into());
    header.typ = Some("at+jwt".into());
    let claims = json!({
        "iss": issuer, "sub": patient, "aud": format!("{issuer}/fhir"), "client_id": client_id,
        "scope": scope, "iat": now, "exp": now + expires_in, "jti": jti,
    });
    encode(&header, &claims, &key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_patches_and_an_mrn_taken_away() {
        let mut ids = Identities::default();
        assert_eq!(ids.person("p1").mrn.as_deref(), Some("MRN-p1"));
        ids.patch(
            serde_json::from_str(r#"{"patient": "p1", "family_name": "Roe"}"#).expect("patch"),
        );
        assert_eq!(ids.person("p1").family_name, "Roe");
        assert_eq!(ids.person("p1").mrn.as_deref(), Some("MRN-p1"));
        ids.patch(serde_json::from_str(r#"{"patient": "p1", "mrn": null}"#).expect("patch"));
        assert_eq!(ids.person("p1").mrn, None);
        assert_eq!(ids.person("p1").family_name, "Roe");
        assert!(ids.person("p1").claims("p1").get("mrn").is_none());
    }

    /// A token with a broken signature still reads (same header, same
    /// claims) but no longer verifies with the JWKS; the intact one does.
    #[test]
    fn a_broken_signature_reads_but_does_not_verify() {
        use jsonwebtoken::errors::ErrorKind;
        use jsonwebtoken::jwk::JwkSet;
        use jsonwebtoken::{DecodingKey, Validation, decode};
        let set: JwkSet = serde_json::from_str(JWKS).expect("the demo JWKS");
        let now = jsonwebtoken::get_current_timestamp();
        for alg in ["RS256", "ES256"] {
            let asked = IdTokenRequest {
                alg: Some(alg.into()),
                nonce: None,
                fhir_user: None,
            };
            let person = Identities::default().person("p1");
            let good = id_token(&person, "p1", "https://iss", "c", &asked, now).expect("signed");
            let bad = break_signature(&good);
            assert_ne!(bad, good);
            let (signed, _) = good.rsplit_once('.').expect("three parts");
            assert!(bad.starts_with(signed), "only the signature differs");
            let header = jsonwebtoken::decode_header(&bad).expect("the header still reads");
            let kid = header.kid.clone().expect("kid");
            let key = DecodingKey::from_jwk(set.find(&kid).expect("the key")).expect("a key");
            let mut v = Validation::new(header.alg);
            v.set_audience(&["c"]);
            v.set_issuer(&["https://iss"]);
            decode::<serde_json::Value>(&good, &key, &v).expect("the intact token verifies");
            let e = decode::<serde_json::Value>(&bad, &key, &v).expect_err("refused");
            assert_eq!(*e.kind(), ErrorKind::InvalidSignature, "{alg}");
        }
    }
}
