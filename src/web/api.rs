//! The JSON API under `/api/v1`, for scripts: the queue, one exception
//! (read and decide), a patient's regimen (rxsync's JSON, or a FHIR R4
//! Bundle with `?format=fhir`) and its versions. Authenticated
//! with API tokens only (`rxsync token create`); cookies are ignored.
//! `schemas/openapi.yaml` documents every route in `ROUTES`, and a test
//! checks the live answers against it.

use super::AppState;
use super::auth::{self, ApiUser};
use super::error::AppError;
use super::review::{self, QueueQuery, filter_of};
use crate::domain::{Decision, ExceptionState, PatientId};
use crate::present::fhir;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, middleware};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every API route (method, path under `/api/v1`): the router is built from
/// this list, and the OpenAPI test compares it with `schemas/openapi.yaml`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/exceptions"),
    ("GET", "/exceptions/{id}"),
    ("POST", "/exceptions/{id}"),
    ("GET", "/patients/{id}/regimen"),
    ("GET", "/patients/{id}/regimens"),
    ("GET", "/patients/{id}/reconciled"),
];

/// Page size when none is asked for, and the largest allowed.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

fn handler(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("GET", "/exceptions") => get(list),
        ("GET", "/exceptions/{id}") => get(read),
        ("POST", "/exceptions/{id}") => post(decide),
        ("GET", "/patients/{id}/regimen") => get(regimen),
        ("GET", "/patients/{id}/regimens") => get(regimens),
        ("GET", "/patients/{id}/reconciled") => get(reconciled),
        // A route listed without a handler answers 405, which the API test reports.
        _ => MethodRouter::new(),
    }
}

pub fn router(state: AppState) -> Router {
    let mut by_path: BTreeMap<&str, MethodRouter<AppState>> = BTreeMap::new();
    for (method, path) in ROUTES {
        let route = by_path.remove(path).unwrap_or_default();
        by_path.insert(path, route.merge(handler(method, path)));
    }
    let mut router = Router::new();
    for (path, route) in by_path {
        router = router.route(path, route);
    }
    router
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}

/// `{"error": message}` with the error's status (`AppError`'s response).
fn error_json(e: impl Into<AppError>) -> Response {
    e.into().into_response()
}

fn query_error(e: QueryRejection) -> Response {
    error_json(AppError::bad_request(e.body_text()))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    state: Option<String>,
    kind: Option<String>,
    source: Option<String>,
    patient: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

#[derive(Serialize)]
struct ExceptionList {
    exceptions: Vec<crate::store::ExceptionView>,
    /// How many match the filter in all.
    total: usize,
    limit: usize,
    offset: usize,
    /// Matching exceptions per kind (whatever `kind` asks).
    counts: BTreeMap<String, usize>,
}

async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let mut filter = match filter_of(&QueueQuery {
        kind: q.kind,
        state: q.state,
        source: q.source,
        patient: q.patient,
        page: None,
    }) {
        Ok(f) => f,
        Err(e) => return error_json(e),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let offset = q.offset.unwrap_or(0);
    filter.limit = Some(limit);
    filter.offset = offset;
    let kind = filter.kind;
    match state
        .store(move |s| Ok((s.exceptions(&filter)?, s.exception_counts(&filter)?)))
        .await
    {
        Ok((exceptions, counts)) => {
            let counts: BTreeMap<String, usize> = counts.into_iter().collect();
            let total = counts
                .iter()
                .filter(|(k, _)| kind.is_none_or(|want| want.as_str() == k.as_str()))
                .map(|(_, n)| n)
                .sum();
            Json(ExceptionList {
                exceptions,
                total,
                limit,
                offset,
                counts,
            })
            .into_response()
        }
        Err(e) => error_json(e),
    }
}

async fn read(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    match state.store(move |s| review::load(s, id)).await {
        Ok(l) => Json(serde_json::json!({
            "exception": l.view,
            "item": l.item,
            "excerpt": l.excerpt,
            "decisions": l.decisions,
            "reversible": l.view.state != ExceptionState::Open && l.final_because.is_none(),
            "final_because": l.final_because,
        }))
        .into_response(),
        Err(e) => error_json(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// map, remove, keep, accept, dismiss or reopen.
    action: String,
    ndc: Option<String>,
    note: Option<String>,
}

async fn decide(
    State(state): State<AppState>,
    Extension(ApiUser(user)): Extension<ApiUser>,
    Path(id): Path<i64>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error_json(AppError::bad_request(e.body_text())),
    };
    let result = if body.action == "reopen" {
        let note = body.note.unwrap_or_default();
        state
            .store(move |s| s.reopen_exception(id, &user.name, &note))
            .await
    } else {
        match Decision::parse(&body.action, body.ndc.as_deref(), body.note.as_deref()) {
            Ok(d) => review::apply(&state, id, &user.name, d, body.note.as_deref()).await,
            Err(e) => Err(e.into()),
        }
    };
    match result {
        Ok(view) => Json(view).into_response(),
        Err(e) => error_json(e),
    }
}

fn patient_id(id: &str) -> Result<PatientId, AppError> {
    PatientId::parse(id).map_err(|e| AppError::not_found(format!("patient {id:?}: {e}")))
}

#[derive(Debug, Default, Deserialize)]
struct RegimenQuery {
    source: Option<String>,
    version: Option<i64>,
    format: Option<RegimenFormat>,
}

/// `?format=`: rxsync's own JSON (the default), or a FHIR R4 Bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RegimenFormat {
    Json,
    Fhir,
}

async fn regimen(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<RegimenQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let patient = match patient_id(&id) {
        Ok(p) => p,
        Err(e) => return error_json(e),
    };
    let found = state
        .store(move |s| {
            let Some(record) = s.patient(&patient)? else {
                return Ok(Err(AppError::not_found(format!("unknown patient {patient}"))));
            };
            let source = match q.source {
                Some(s) => s,
                None => match s.regimen_sources(&patient)?.as_slice() {
                    [] => return Ok(Err(AppError::not_found(format!("patient {patient} has no regimen yet")))),
                    [one] => one.clone(),
                    many => {
                        return Ok(Err(AppError::new(
                            StatusCode::CONFLICT,
                            format!("patient {patient} has regimens from several sources ({}): name one with ?source=", many.join(", ")),
                        )));
                    }
                },
            };
            let missing = || AppError::not_found(format!("patient {patient} has no such regimen from {source}"));
            Ok(match q.format.unwrap_or(RegimenFormat::Json) {
                RegimenFormat::Json => s.regimen(&patient, &source, q.version)?.map(|r| Json(r).into_response()),
                RegimenFormat::Fhir => s.source_regimen(&patient, &source, q.version)?.map(|r| {
                    let bundle = fhir::regimen_bundle(&record, &r, Utc::now());
                    ([(header::CONTENT_TYPE, fhir::MEDIA_TYPE)], Json(bundle)).into_response()
                }),
            }
            .ok_or_else(missing))
        })
        .await;
    match found {
        Ok(Ok(r)) => r,
        Ok(Err(e)) | Err(e) => error_json(e),
    }
}

/// `?format=` of the reconciled list.
#[derive(Debug, Deserialize)]
struct ReconciledQuery {
    format: Option<RegimenFormat>,
}

/// Every source's current regimen of a patient, lined up
/// (`reconcile::Reconciled`; the shape is `Reconciled` in the OpenAPI
/// file), or with `?format=fhir` every source's statements and the open
/// findings as one FHIR R4 Bundle.
async fn reconciled(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<ReconciledQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let patient = match patient_id(&id) {
        Ok(p) => p,
        Err(e) => return error_json(e),
    };
    let found = state
        .store(move |s| {
            Ok(match q.format.unwrap_or(RegimenFormat::Json) {
                RegimenFormat::Json => s.reconciled(&patient)?.map(|r| Json(r).into_response()),
                RegimenFormat::Fhir => s
                    .patient(&patient)?
                    .map(|record| {
                        let lists = s.reconciled_sources(&patient)?;
                        let bundle = fhir::sources_bundle(&record, &lists, Utc::now());
                        Ok::<_, crate::store::StoreError>(
                            ([(header::CONTENT_TYPE, fhir::MEDIA_TYPE)], Json(bundle))
                                .into_response(),
                        )
                    })
                    .transpose()?,
            })
        })
        .await;
    match found {
        Ok(Some(r)) => r,
        Ok(None) => error_json(AppError::not_found(format!("unknown patient {id}"))),
        Err(e) => error_json(e),
    }
}

async fn regimens(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let patient = match patient_id(&id) {
        Ok(p) => p,
        Err(e) => return error_json(e),
    };
    let found = state
        .store(move |s| {
            if s.patient(&patient)?.is_none() {
                return Ok(None);
            }
            Ok(Some(s.regimen_history(&patient, None)?))
        })
        .await;
    match found {
        Ok(Some(h)) => Json(h).into_response(),
        Ok(None) => error_json(AppError::not_found(format!("unknown patient {id}"))),
        Err(e) => error_json(e),
    }
}
