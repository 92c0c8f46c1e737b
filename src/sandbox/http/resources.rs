//! The protected resources (a patient's CCR, FHIR medication searches) and
//! the unauthenticated SMART discovery document.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;
use serde_json::json;

use super::super::config::MAX_PAGE_SIZE;
use super::super::documents::{self, PageSpec, PatientDocs, SearchType};
use super::super::generate::RemotePatient;
use super::auth::authenticate;
use super::{App, Shared, reply};

/// `GET /ccr/{patient}`.
pub(crate) async fn ccr(State(app): State<Shared>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let asked = parts
        .uri
        .path()
        .strip_prefix("/ccr/")
        .unwrap_or("")
        .to_string();
    let bound = match authenticate(&app, &parts, Some(&asked)) {
        Ok(bound) => bound,
        Err(refusal) => return refusal,
    };
    match patient_docs(&app, &bound).await {
        Ok(docs) => reply::with_type(
            StatusCode::OK,
            "application/xml; charset=utf-8",
            axum::body::Bytes::copy_from_slice(&docs.ccr),
        ),
        Err(response) => response,
    }
}

/// What a FHIR search asks for.
struct Search {
    patient: Option<String>,
    spec: PageSpec,
    /// The search URL's other parameters, raw, for the links.
    kept: Vec<String>,
}

fn read_search(query: &str, page_size: usize) -> Result<Search, Response> {
    let mut search = Search {
        patient: None,
        spec: PageSpec {
            count: page_size,
            page: 1,
        },
        kept: Vec::new(),
    };
    let number = |name: &str, value: &str| {
        value.parse::<usize>().map_err(|_| {
            reply::outcome(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("{name} must be a whole number"),
            )
        })
    };
    for raw in query.split('&').filter(|s| !s.is_empty()) {
        let (name, value) = url::form_urlencoded::parse(raw.as_bytes())
            .next()
            .unwrap_or_default();
        match name.as_ref() {
            "patient" => {
                if search.patient.is_some() {
                    return Err(reply::outcome(
                        StatusCode::BAD_REQUEST,
                        "invalid",
                        "patient appears more than once",
                    ));
                }
                let id = value.strip_prefix("Patient/").unwrap_or(&value);
                search.patient = Some(id.to_string());
                search.kept.push(raw.to_string());
            }
            // FHIR servers may lower a page size; ours caps it.
            "_count" => search.spec.count = number("_count", &value)?.min(MAX_PAGE_SIZE),
            "_page" => search.spec.page = number("_page", &value)?.max(1),
            // Credentials never travel into links.
            "access_token" => {}
            n if n.starts_with("oauth_") => {}
            _ => search.kept.push(raw.to_string()),
        }
    }
    Ok(search)
}

/// `GET /fhir/{Type}?patient=…[&_count=N][&_page=K]`.
pub(crate) async fn fhir(State(app): State<Shared>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let kind = parts
        .uri
        .path()
        .strip_prefix("/fhir/")
        .unwrap_or("")
        .to_string();
    let search = match read_search(parts.uri.query().unwrap_or(""), app.settings.page_size) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let bound = match authenticate(&app, &parts, search.patient.as_deref()) {
        Ok(bound) => bound,
        Err(refusal) => return refusal,
    };
    let Some(kind) = SearchType::parse(&kind) else {
        return reply::outcome(
            StatusCode::NOT_FOUND,
            "not-supported",
            format!(
                "unknown resource type {kind:?}: this server searches MedicationRequest, MedicationStatement, MedicationDispense and ExplanationOfBenefit"
            ),
        );
    };
    if search.patient.is_none() {
        return reply::outcome(
            StatusCode::BAD_REQUEST,
            "required",
            "a search needs the patient parameter",
        );
    }
    let docs = match patient_docs(&app, &bound).await {
        Ok(docs) => docs,
        Err(response) => return response,
    };
    let body = page(&app, &parts, &docs, kind, &search);
    reply::with_type(StatusCode::OK, "application/fhir+json", body)
}

fn page(
    app: &App,
    parts: &Parts,
    docs: &PatientDocs,
    kind: SearchType,
    search: &Search,
) -> Vec<u8> {
    let base = app.base_url(&parts.headers);
    let mut link_base = format!("{base}/fhir/{}?", kind.as_str());
    for raw in &search.kept {
        link_base.push_str(raw);
        link_base.push('&');
    }
    documents::searchset(docs, kind, search.spec, &link_base, &format!("{base}/fhir"))
}

/// The patient's documents, built on first use (off the async threads,
/// since a data directory means file reads).
pub(super) async fn patient_docs(
    app: &Shared,
    patient: &str,
) -> Result<Arc<PatientDocs>, Response> {
    let Ok(patient) = RemotePatient::parse(patient) else {
        return Err(reply::outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such patient",
        ));
    };
    if let Some(docs) = app.docs.get(&patient) {
        return Ok(docs);
    }
    let worker = app.clone();
    let key = patient.clone();
    let built = tokio::task::spawn_blocking(move || {
        documents::build(
            &key,
            worker.settings.medications,
            worker.data_dir.as_deref(),
        )
    })
    .await;
    match built {
        Ok(Ok(docs)) => {
            let docs = Arc::new(docs);
            app.docs.insert(patient, docs.clone());
            Ok(docs)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "sandbox: a patient's documents cannot be built");
            Err(reply::outcome(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                e,
            ))
        }
        Err(_) => Err(reply::outcome(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "building the documents failed",
        )),
    }
}

/// `GET /.well-known/smart-configuration` (also under `/fhir/`).
pub(crate) async fn smart_configuration(State(app): State<Shared>, parts: Parts) -> Response {
    let base = app.base_url(&parts.headers);
    reply::json(
        StatusCode::OK,
        &json!({
            "issuer": base,
            "token_endpoint": format!("{base}/oauth2/token"),
            "revocation_endpoint": format!("{base}/oauth2/revoke"),
            "introspection_endpoint": format!("{base}/oauth2/introspect"),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "grant_types_supported": ["refresh_token"],
            "scopes_supported": [
                "patient/MedicationRequest.rs", "patient/MedicationStatement.rs",
                "patient/MedicationDispense.rs", "offline_access"
            ],
            "capabilities": [
                "client-public", "client-confidential-symmetric",
                "context-standalone-patient", "permission-offline", "permission-patient"
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::read_search;

    #[test]
    fn searches_read_paging_and_keep_only_harmless_parameters_for_links() {
        let s = read_search(
            "patient=Patient%2Fp1&_count=3&_page=2&access_token=x&oauth_nonce=n&code=a+b",
            10,
        )
        .unwrap_or_else(|_| panic!("valid search"));
        assert_eq!(s.patient.as_deref(), Some("p1"));
        assert_eq!((s.spec.count, s.spec.page), (3, 2));
        assert_eq!(s.kept, ["patient=Patient%2Fp1", "code=a+b"]);
        let defaults = read_search("patient=p", 10).unwrap_or_else(|_| panic!("valid"));
        assert_eq!((defaults.spec.count, defaults.spec.page), (10, 1));
        assert!(read_search("_count=x", 10).is_err());
        assert!(read_search("patient=a&patient=b", 10).is_err());
        let capped = read_search("_count=999999", 10).unwrap_or_else(|_| panic!("valid"));
        assert_eq!(capped.spec.count, 1000);
    }
}
