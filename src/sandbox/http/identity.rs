//! The sandbox's OpenID Connect face: userinfo (bearer), the JWKS, the
//! FHIR `Patient` read, the admin API that changes a patient's identity,
//! and the identity fields added to introspection answers and to grants
//! that ask for an ID token. Kept apart from the OAuth 2.0 handlers.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::super::identity::{self, IdTokenRequest, IdentityPatch};
use super::{App, Shared, auth, lock, reply};

/// `GET /oauth2/userinfo`: the token's patient's claims.
pub(crate) async fn userinfo(State(app): State<Shared>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let patient = match auth::authenticate(&app, &parts, None) {
        Ok(p) => p,
        Err(refusal) => return refusal,
    };
    let claims = lock(&app.identities).person(&patient).claims(&patient);
    reply::no_store(reply::json(StatusCode::OK, &claims))
}

/// `GET /oauth2/jwks`: the keys ID tokens are signed with.
pub(crate) async fn jwks() -> Response {
    reply::with_type(
        StatusCode::OK,
        "application/json",
        Bytes::from_static(identity::JWKS.as_bytes()),
    )
}

/// `GET /fhir/Patient/{id}`: the token's own patient only.
pub(crate) fn patient_read(app: &App, bound: &str, id: &str) -> Response {
    if id != bound {
        return reply::outcome(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the token is not for this patient",
        );
    }
    let resource = lock(&app.identities).person(bound).patient_resource(bound);
    reply::with_type(
        StatusCode::OK,
        "application/fhir+json",
        Bytes::from(resource.to_string()),
    )
}

/// `POST /admin/identities`: changes a patient's identity (see `IdentityPatch`).
pub(crate) async fn admin_patch(State(app): State<Shared>, body: Bytes) -> Response {
    let patch: IdentityPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return reply::admin_error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(why) = super::super::generate::RemotePatient::parse(&patch.patient) {
        return reply::admin_error(StatusCode::BAD_REQUEST, why);
    }
    let patient = patch.patient.clone();
    lock(&app.identities).patch(patch);
    let claims = lock(&app.identities).person(&patient).claims(&patient);
    reply::json(StatusCode::OK, &claims)
}

/// The identity fields of an active introspection answer (`sub`, `mrn`).
pub(crate) fn introspection_fields(app: &App, patient: &str, body: &mut Value) {
    let person = lock(&app.identities).person(patient);
    body["sub"] = Value::String(person.sub);
    if let Some(mrn) = person.mrn {
        body["mrn"] = Value::String(mrn);
    }
}

/// An ID token for a grant that asked for one (issuer: the sandbox's base URL).
pub(crate) fn grant_id_token(
    app: &App,
    headers: &http::HeaderMap,
    patient: &str,
    client_id: &str,
    asked: &IdTokenRequest,
) -> Result<String, Response> {
    let person = lock(&app.identities).person(patient);
    identity::id_token(
        &person,
        patient,
        &app.base_url(headers),
        client_id,
        asked,
        super::now(),
    )
    .map_err(|e| reply::admin_error(StatusCode::BAD_REQUEST, e))
}

/// An RFC 9068 access token for a grant that asked for one.
pub(crate) fn access_jwt(
    app: &App,
    headers: &http::HeaderMap,
    patient: &str,
    client_id: &str,
    scope: &str,
    expires_in: u64,
) -> Result<String, Response> {
    identity::access_jwt(
        patient,
        &app.base_url(headers),
        client_id,
        scope,
        expires_in,
        super::now(),
        &super::mint(),
    )
    .map_err(|e| reply::admin_error(StatusCode::BAD_REQUEST, e))
}
