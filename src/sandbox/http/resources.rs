//! The protected resources (a patient's CCR and C-CDA, FHIR medication searches) and
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
    xml_document(app, request, "/ccr/", |docs| &docs.ccr).await
}

/// `GET /ccda/{patient}`: the patient's C-CDA CCD.
pub(crate) async fn ccda(State(app): State<Shared>, request: Request) -> Response {
    xml_document(app, request, "/ccda/", |docs| &docs.ccda).await
}

/// A patient's XML document at `prefix{patient}`, for its token's patient only.
async fn xml_document(
    app: Shared,
    request: Request,
    prefix: &str,
    pick: fn(&PatientDocs) -> &Arc<[u8]>,
) -> Response {
    let (parts, _) = request.into_parts();
    let asked = parts
        .uri
        .path()
        .strip_prefix(prefix)
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
            axum::body::Bytes::copy_from_slice(pick(&docs)),
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
    /// The `_include` values asked for.
    includes: Vec<String>,
}

fn read_search(query: &str, page_size: usize) -> Result<Search, Response> {
    let mut search = Search {
        patient: None,
        spec: PageSpec {
            count: page_size,
            page: 1,
        },
        kept: Vec::new(),
        includes: Vec::new(),
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
            "_include" => {
                search.includes.push(value.to_string());
                search.kept.push(raw.to_string());
            }
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
    if kind == "metadata" {
        return capability_statement(&app, &parts.headers);
    }
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

/// `GET /fhir/metadata`: a CapabilityStatement, unauthenticated as FHIR
/// servers publish it. It lists `searchInclude`s only when the sandbox
/// honours `_include` (`search_include`).
fn capability_statement(app: &App, headers: &http::HeaderMap) -> Response {
    let resources: Vec<serde_json::Value> = SearchType::ALL
        .iter()
        .map(|t| {
            let mut r = json!({
                "type": t.as_str(),
                "interaction": [{"code": "search-type"}],
                "searchParam": [{"name": "patient", "type": "reference"}]
            });
            if app.settings.search_include {
                r["searchInclude"] = json!([format!("{}:medication", t.as_str())]);
            }
            r
        })
        .chain(std::iter::once(
            json!({"type": "Medication", "interaction": [{"code": "read"}]}),
        ))
        .collect();
    reply::with_type(
        StatusCode::OK,
        "application/fhir+json",
        serde_json::to_vec(&json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [{"mode": "server", "resource": resources,
                      "security": super::discovery::security(app, headers)}]
        }))
        .unwrap_or_default(),
    )
}

/// `GET /fhir/Medication/{id}`: a Medication the bound patient's records
/// reference (reference mode).
pub(crate) async fn read(State(app): State<Shared>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let path = parts.uri.path().strip_prefix("/fhir/").unwrap_or("");
    let (kind, id) = path.split_once('/').unwrap_or((path, ""));
    let (kind, id) = (kind.to_string(), id.to_string());
    let bound = match authenticate(&app, &parts, None) {
        Ok(bound) => bound,
        Err(refusal) => return refusal,
    };
    if kind == "Patient" {
        return super::identity::patient_read(&app, &bound, &id);
    }
    if kind != "Medication" {
        return reply::outcome(
            StatusCode::NOT_FOUND,
            "not-supported",
            format!("this server reads Medication resources only, not {kind:?}"),
        );
    }
    let docs = match patient_docs(&app, &bound).await {
        Ok(docs) => docs,
        Err(response) => return response,
    };
    match docs.medication(&id) {
        Some(m) => reply::with_type(
            StatusCode::OK,
            "application/fhir+json",
            axum::body::Bytes::copy_from_slice(m.resource.get().as_bytes()),
        ),
        None => reply::outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no Medication/{id}"),
        ),
    }
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
    // `_include` is honoured only when the sandbox announces it.
    let include = app.settings.search_include
        && search
            .includes
            .iter()
            .any(|i| *i == format!("{}:medication", kind.as_str()));
    documents::searchset(
        docs,
        kind,
        search.spec,
        &link_base,
        &format!("{base}/fhir"),
        include,
    )
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
            worker.settings.medication_reference,
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
/// `registration_endpoint` and PKCE come from `discovery::smart_extra`.
pub(crate) async fn smart_configuration(State(app): State<Shared>, parts: Parts) -> Response {
    let base = app.base_url(&parts.headers);
    super::discovery::smart_extra(
        &base,
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/oauth2/authorize"),
            "token_endpoint": format!("{base}/oauth2/token"),
            "revocation_endpoint": format!("{base}/oauth2/revoke"),
            "introspection_endpoint": format!("{base}/oauth2/introspect"),
            "jwks_uri": format!("{base}/oauth2/jwks"),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post", "none", "private_key_jwt"
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "scopes_supported": [
                "patient/MedicationRequest.rs", "patient/MedicationStatement.rs",
                "patient/MedicationDispense.rs", "offline_access"
            ],
            "capabilities": [
                "launch-standalone", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric", "context-standalone-patient",
                "permission-offline", "permission-patient"
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
