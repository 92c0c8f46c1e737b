//! `schemas/openapi.yaml` against the server: the documented operations are
//! exactly the API's routes, and live answers — successes and errors — have
//! the documented status and match the documented schema, property for
//! property (objects are closed, so an undocumented field fails too).

use crate::review_server::{CLINICIAN, Review};
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub fn document() -> Value {
    let text = std::fs::read_to_string(crate::support::repo_path("schemas/openapi.yaml"))
        .expect("schemas/openapi.yaml");
    serde_norway::from_str(&text).expect("openapi.yaml is YAML")
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {r}")),
            )
        }
        None => v,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown type {other} in the schema"),
    }
}

/// The ways `value` breaks `schema` (JSON Schema as OpenAPI 3.1 uses it:
/// type (one or several), enum, properties, required,
/// additionalProperties, items, anyOf, $ref).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let fits = any.iter().any(|s| {
            let mut e = Vec::new();
            validate(doc, s, value, at, &mut e);
            e.is_empty()
        });
        if !fits {
            errors.push(format!("{at}: matches no anyOf branch: {value}"));
        }
        return;
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| type_ok(t, value)) {
            errors.push(format!("{at}: expected {types:?}, got {value}"));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {e:?}"));
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = r.as_str().unwrap_or_default();
            if !obj.contains_key(name) {
                errors.push(format!("{at}: required {name} is missing"));
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(doc, s, v, &format!("{at}.{k}"), errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{at}: undocumented property {k}"))
                    }
                    Some(s @ Value::Object(_)) => validate(doc, s, v, &format!("{at}.{k}"), errors),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            validate(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Checks a JSON answer against the documented response of an operation.
pub fn check(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    check_as(doc, method, path, status, "application/json", body)
}

/// Checks an answer of a given media type against the documented response.
pub fn check_as(doc: &Value, method: &str, path: &str, status: u16, media: &str, body: &Value) {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    let response = op["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{method} {path}: status {status} is not documented: {body}"));
    let response = resolve(doc, response);
    let schema = &response["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no {media} schema"
    );
    let mut errors = Vec::new();
    validate(doc, schema, body, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {path} {status}:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_validator_catches_what_it_should() {
    let doc = document();
    let schema = json!({"$ref": "#/components/schemas/ItemRef"});
    let rows = [
        (
            json!({"id": 1, "position": 1, "name": null, "ndc11": "x"}),
            true,
        ),
        (json!({"id": 1, "position": 1, "name": null}), false),
        (
            json!({"id": "1", "position": 1, "name": null, "ndc11": null}),
            false,
        ),
        (
            json!({"id": 1, "position": 1, "name": null, "ndc11": null, "extra": 1}),
            false,
        ),
    ];
    for (value, ok) in rows {
        let mut errors = Vec::new();
        validate(&doc, &schema, &value, "$", &mut errors);
        assert_eq!(errors.is_empty(), ok, "{value}: {errors:?}");
    }
}

#[tokio::test]
async fn the_api_matches_schemas_openapi_yaml() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .filter(|(m, _)| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |(m, _)| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = rxsync::web::API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, served,
        "documented operations = the API's routes"
    );

    let r = Review::start();
    let token = r.token(CLINICIAN.0);
    let t = Some(token.as_str());
    // (method, documented path, concrete path, body, expected status)
    let calls: Vec<(&str, &str, String, Option<Value>, u16)> = vec![
        ("GET", "/exceptions", "/exceptions".into(), None, 200),
        (
            "GET",
            "/exceptions",
            "/exceptions?state=all&kind=duplicate&limit=1".into(),
            None,
            200,
        ),
        (
            "GET",
            "/exceptions",
            "/exceptions?kind=nonsense".into(),
            None,
            400,
        ),
        (
            "GET",
            "/exceptions",
            "/exceptions?limit=lots".into(),
            None,
            400,
        ),
        ("GET", "/exceptions/{id}", "/exceptions/2".into(), None, 200),
        (
            "GET",
            "/exceptions/{id}",
            "/exceptions/999".into(),
            None,
            404,
        ),
        (
            "POST",
            "/exceptions/{id}",
            "/exceptions/2".into(),
            Some(json!({"action": "keep"})),
            422,
        ),
        (
            "POST",
            "/exceptions/{id}",
            "/exceptions/2".into(),
            Some(json!({"action": "map"})),
            400,
        ),
        (
            "POST",
            "/exceptions/{id}",
            "/exceptions/2".into(),
            Some(json!({"action": "map", "ndc": "0006-0952-31", "note": "Cozaar"})),
            200,
        ),
        ("GET", "/exceptions/{id}", "/exceptions/2".into(), None, 200),
        (
            "POST",
            "/exceptions/{id}",
            "/exceptions/2".into(),
            Some(json!({"action": "reopen", "note": "wrong"})),
            200,
        ),
        (
            "POST",
            "/exceptions/{id}",
            "/exceptions/1".into(),
            Some(json!({"action": "dismiss", "note": "duplicate on purpose"})),
            200,
        ),
        (
            "POST",
            "/exceptions/{id}",
            "/exceptions/1".into(),
            Some(json!({"action": "dismiss", "note": "again"})),
            422,
        ),
        (
            "POST",
            "/exceptions/{id}",
            "/exceptions/1".into(),
            Some(json!({"verb": "x"})),
            400,
        ),
        (
            "POST",
            "/exceptions/{id}",
            "/exceptions/999".into(),
            Some(json!({"action": "accept"})),
            404,
        ),
        (
            "GET",
            "/patients/{id}/regimen",
            "/patients/review-1/regimen".into(),
            None,
            200,
        ),
        (
            "GET",
            "/patients/{id}/regimen",
            "/patients/review-1/regimen?format=fhir".into(),
            None,
            200,
        ),
        (
            "GET",
            "/patients/{id}/regimen",
            "/patients/review-1/regimen?format=xml".into(),
            None,
            400,
        ),
        (
            "GET",
            "/patients/{id}/regimen",
            "/patients/review-1/regimen?version=7".into(),
            None,
            404,
        ),
        (
            "GET",
            "/patients/{id}/regimen",
            "/patients/nobody/regimen".into(),
            None,
            404,
        ),
        (
            "GET",
            "/patients/{id}/regimens",
            "/patients/review-1/regimens".into(),
            None,
            200,
        ),
        (
            "GET",
            "/patients/{id}/regimens",
            "/patients/nobody/regimens".into(),
            None,
            404,
        ),
        (
            "GET",
            "/patients/{id}/reconciled",
            "/patients/review-1/reconciled".into(),
            None,
            200,
        ),
        (
            "GET",
            "/patients/{id}/reconciled",
            "/patients/nobody/reconciled".into(),
            None,
            404,
        ),
    ];
    let mut seen = BTreeSet::new();
    for (method, path, concrete, body, status) in calls {
        let a = r.api(method, &concrete, t, body).await;
        assert_eq!(a.status, status, "{method} {concrete}: {}", a.body);
        let json = a.json();
        let media = a
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        check_as(&doc, method, path, a.status, media, &json);
        seen.insert((method.to_string(), path.to_string()));
    }
    assert_eq!(seen, served, "every route was called");
    // Without a token: the documented 401.
    for (method, path) in rxsync::web::API_ROUTES {
        let concrete = path.replace(
            "{id}",
            if path.starts_with("/patients") {
                "review-1"
            } else {
                "1"
            },
        );
        let a = r.api(method, &concrete, None, None).await;
        check(&doc, method, path, a.status, &a.json());
    }
    // The decisions went through the store with the token's user.
    assert_eq!(
        r.env
            .query_i64("SELECT COUNT(*) FROM decisions WHERE decided_by = 'dr.lee'"),
        2
    );
}
