//! When a patient's grant at the provider ends, as far as the provider
//! says: `access_grant_expiration` in a token answer (Unix seconds, or an
//! RFC 3339 time), else the `exp` of a refresh token that is a JWT (read,
//! not verified: it only dates a reminder, it authorizes nothing); and
//! `access_grant_expiration` in an introspection answer (never its `exp`,
//! the token's own expiry). Pure.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The grant's end from a token answer's non-secret `fields` and its
/// refresh token, if either says.
pub fn grant_expiry(
    fields: &Map<String, Value>,
    refresh_token: Option<&str>,
) -> Option<DateTime<Utc>> {
    fields
        .get("access_grant_expiration")
        .and_then(time_of)
        .or_else(|| refresh_token.and_then(jwt_exp))
}

/// The grant's end from an RFC 7662 introspection answer, if it says:
/// only `access_grant_expiration` (the field providers use in token
/// answers) dates the grant. The answer's `exp` is the introspected
/// token's own expiry (§2.2), never the grant's; RFC 7662 has no field
/// for the grant's end.
pub fn introspected_grant_end(answer: &Value) -> Option<DateTime<Utc>> {
    answer.get("access_grant_expiration").and_then(time_of)
}

/// Unix seconds (a number or digits) or RFC 3339.
fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => DateTime::from_timestamp(n.as_i64()?, 0),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(secs) => DateTime::from_timestamp(secs, 0),
            Err(_) => DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        },
        _ => None,
    }
}

/// The `exp` claim of a compact JWS, unverified.
fn jwt_exp(token: &str) -> Option<DateTime<Utc>> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    time_of(claims.get("exp")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_grant_end_is_read_where_providers_put_it() {
        let jwt = format!("h.{}.s", URL_SAFE_NO_PAD.encode(br#"{"exp": 1900000000}"#));
        let rows: [(&str, Value, Option<&str>, Option<i64>); 6] = [
            (
                "unix seconds",
                json!({"access_grant_expiration": 1800000000}),
                None,
                Some(1_800_000_000),
            ),
            (
                "digits",
                json!({"access_grant_expiration": "1800000000"}),
                None,
                Some(1_800_000_000),
            ),
            (
                "rfc 3339",
                json!({"access_grant_expiration": "2027-01-15T00:00:00Z"}),
                None,
                Some(1_799_971_200),
            ),
            (
                "a JWT refresh token's exp",
                json!({}),
                Some(jwt.as_str()),
                Some(1_900_000_000),
            ),
            (
                "the token answer wins",
                json!({"access_grant_expiration": 1800000000}),
                Some(jwt.as_str()),
                Some(1_800_000_000),
            ),
            (
                "an opaque refresh token says nothing",
                json!({}),
                Some("opaque"),
                None,
            ),
        ];
        for (rule, f, refresh, want) in rows {
            assert_eq!(
                grant_expiry(&fields(f), refresh).map(|t| t.timestamp()),
                want,
                "{rule}"
            );
        }
    }

    #[test]
    fn introspection_dates_the_grant_only_by_a_grant_field() {
        let rows: [(&str, Value, Option<i64>); 3] = [
            (
                "access_grant_expiration",
                json!({"active": true, "exp": 1700000000, "access_grant_expiration": 1800000000}),
                Some(1_800_000_000),
            ),
            (
                "exp is the token's, not the grant's",
                json!({"active": true, "exp": 1700000000}),
                None,
            ),
            (
                "an unreadable value says nothing",
                json!({"active": true, "access_grant_expiration": "soon"}),
                None,
            ),
        ];
        for (rule, answer, want) in rows {
            assert_eq!(
                introspected_grant_end(&answer).map(|t| t.timestamp()),
                want,
                "{rule}"
            );
        }
    }
}
