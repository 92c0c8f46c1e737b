//! What providers answer → `RemoteIdentity`. Pure: bytes and JSON in,
//! values out; the requests are made by `fetch` (and the pull).

use super::settings::RemoteSource;
use super::{IdentityError, RemoteIdentity};
use serde_json::Value;

/// A JSON value as identifier text: strings as they are, numbers printed.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(text)
}

/// OpenID Connect claims (userinfo, ID token, introspection answers use the
/// same names): `sub`, `name`, `family_name`, `birthdate`; the identifier
/// is read from `source`'s claim (or JSON pointer, for a profile).
pub fn from_claims(claims: &Value, source: &RemoteSource) -> RemoteIdentity {
    let identifier = match source {
        RemoteSource::Profile(pointer) => claims.pointer(pointer).and_then(text),
        other => str_field(claims, other.name()),
    };
    RemoteIdentity {
        subject: str_field(claims, "sub").or_else(|| str_field(claims, "id")),
        identifiers: identifier
            .map(|v| [(source.to_string(), v)].into())
            .unwrap_or_default(),
        name: str_field(claims, "name"),
        family_name: str_field(claims, "family_name"),
        birth_date: str_field(claims, "birthdate").or_else(|| str_field(claims, "birth_date")),
    }
}

/// A JSON object from bytes, or a `Read` error naming `what`.
pub fn json_object(bytes: &[u8], what: &str) -> Result<Value, IdentityError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| IdentityError::Read(format!("{what} is not JSON: {e}")))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(IdentityError::Read(format!("{what} is not a JSON object")))
    }
}

/// An RFC 7662 answer, checked: `active` true, `exp` not passed,
/// `client_id` ours when given, and a `scope` sharing at least one of the
/// configured scopes when both are given.
pub fn check_introspection(
    answer: &Value,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), IdentityError> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(IdentityError::Inactive("the token is not active".into()));
    }
    if let Some(exp) = answer.get("exp").and_then(Value::as_i64)
        && exp <= now
    {
        return Err(IdentityError::Inactive(
            "the token has expired (exp)".into(),
        ));
    }
    if let Some(c) = answer.get("client_id").and_then(Value::as_str)
        && c != client_id
    {
        return Err(IdentityError::Inactive(format!(
            "the token was issued to client {c:?}, not {client_id:?}"
        )));
    }
    if let Some(scope) = answer.get("scope").and_then(Value::as_str)
        && !scopes.is_empty()
        && !scope
            .split_whitespace()
            .any(|s| scopes.iter().any(|c| c == s))
    {
        return Err(IdentityError::Inactive(format!(
            "the token's scope {scope:?} holds none of the configured scopes"
        )));
    }
    Ok(())
}

/// A FHIR `Patient` resource: its id, the identifier of `system`, the
/// first name's family and text, `birthDate`.
pub fn from_patient(resource: &Value, system: &str) -> Result<RemoteIdentity, IdentityError> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(IdentityError::Read(
            "the provider's answer is not a FHIR Patient".into(),
        ));
    }
    let identifier = resource
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(system))
        .and_then(|i| str_field(i, "value"));
    let name = resource
        .get("name")
        .and_then(Value::as_array)
        .and_then(|n| n.first());
    let family = name.and_then(|n| str_field(n, "family"));
    let full = name.and_then(|n| {
        str_field(n, "text").or_else(|| {
            let given: Vec<&str> = n
                .get("given")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let parts: Vec<&str> = given.into_iter().chain(family.as_deref()).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    });
    Ok(RemoteIdentity {
        subject: str_field(resource, "id"),
        identifiers: identifier
            .map(|v| [(format!("patient:{system}"), v)].into())
            .unwrap_or_default(),
        name: full,
        family_name: family,
        birth_date: str_field(resource, "birthDate"),
    })
}

/// The FHIR Patient id a `fhirUser` claim names (`Patient/123` or a URL
/// ending so); none for a Practitioner or anything else.
pub fn patient_of_fhir_user(fhir_user: &str) -> Option<&str> {
    let (kind, id) = fhir_user.trim_end_matches('/').rsplit_once('/')?;
    let kind = kind.rsplit('/').next()?;
    (kind == "Patient" && !id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_patients_and_profiles_read() {
        let src = RemoteSource::Userinfo("mrn".into());
        let id = from_claims(
            &json!({"sub": "s1", "mrn": "MRN-1", "family_name": "Doe", "birthdate": "1980-04-02"}),
            &src,
        );
        assert_eq!(id.identifiers["userinfo:mrn"], "MRN-1");
        assert_eq!(id.subject.as_deref(), Some("s1"));
        let src = RemoteSource::Profile("/patient/ids/0".into());
        let id = from_claims(&json!({"id": 7, "patient": {"ids": [1001]}}), &src);
        assert_eq!(id.identifiers["profile:/patient/ids/0"], "1001");
        assert_eq!(id.subject.as_deref(), Some("7"));
        let p = json!({"resourceType": "Patient", "id": "p9",
            "identifier": [{"system": "urn:other", "value": "X"}, {"system": "urn:mrn", "value": "MRN-9"}],
            "name": [{"family": "Doe", "given": ["Jane", "Q"]}], "birthDate": "1980-04-02"});
        let id = from_patient(&p, "urn:mrn").expect("a Patient");
        assert_eq!(id.identifiers["patient:urn:mrn"], "MRN-9");
        assert_eq!(id.name.as_deref(), Some("Jane Q Doe"));
        assert!(from_patient(&json!({"resourceType": "Practitioner"}), "urn:mrn").is_err());
        assert_eq!(
            patient_of_fhir_user("https://h/fhir/Patient/123"),
            Some("123")
        );
        assert_eq!(patient_of_fhir_user("Practitioner/1"), None);
    }

    #[test]
    fn introspection_rules() {
        let scopes = vec!["patient/MedicationRequest.rs".to_string()];
        let ok = json!({"active": true, "client_id": "rx", "exp": 200, "scope": "patient/MedicationRequest.rs openid"});
        assert!(check_introspection(&ok, "rx", &scopes, 100).is_ok());
        for (name, answer) in [
            ("inactive", json!({"active": false})),
            ("no active", json!({})),
            ("expired", json!({"active": true, "exp": 50})),
            (
                "another client",
                json!({"active": true, "client_id": "other"}),
            ),
            (
                "no scope of ours",
                json!({"active": true, "scope": "openid"}),
            ),
        ] {
            assert!(
                matches!(
                    check_introspection(&answer, "rx", &scopes, 100),
                    Err(IdentityError::Inactive(_))
                ),
                "{name}"
            );
        }
    }
}
