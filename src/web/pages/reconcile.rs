//! The reconciled list of one patient (`/patients/{id}/reconciled`): every
//! source's current regimen lined up, one row per drug and a column per
//! source, each cell saying what that source says (status, strength, dose,
//! sig, last date); a drug one source alone lists says so; a disagreement
//! names both sides and links to its `source_conflict` exception, where
//! the clinician decides. The page only reads: decisions are made on the
//! exception page, like every other.

use super::{error_page, layout, render};
use crate::domain::{ExceptionKind, ExceptionState, PatientId};
use crate::reconcile::{Conflict, Listed, Reconciled, Row};
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::error::AppError;
use crate::web::labels::{state_label, status_text};
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let Ok(patient) = PatientId::parse(&id) else {
        return error_page(
            Some(&viewer),
            AppError::not_found(format!("no patient {id:?}")),
        );
    };
    match state.store(move |s| s.reconciled(&patient)).await {
        Ok(Some(r)) => render(StatusCode::OK, reconciled_page(&viewer, &r)),
        Ok(None) => error_page(
            Some(&viewer),
            AppError::not_found(format!("no patient {id:?}")),
        ),
        Err(e) => error_page(Some(&viewer), e),
    }
}

fn reconciled_page(viewer: &Viewer, r: &Reconciled) -> Markup {
    let patient = super::queue::patient_link(&r.patient);
    let conflicts = r.conflicts().count();
    // A decided conflict stays a disagreement of the lists; what is left
    // to the clinician is the open ones.
    let open = r
        .conflicts()
        .filter(|c| {
            c.exception
                .as_ref()
                .is_none_or(|e| e.state == ExceptionState::Open)
        })
        .count();
    layout(
        &format!("Reconciled list of patient {}", r.patient),
        Some(viewer),
        html! {
            p { a href=(patient) { "Back to patient " (r.patient) } }
            @if r.sources.is_empty() {
                p { "No regimen yet." }
            } @else {
                p {
                    (r.rows.len()) " drug(s) across " (r.sources.len()) " source(s); "
                    span #conflict-count class=(if open > 0 { "badge open" } else { "badge reviewed" }) {
                        (conflicts) " conflict(s)"
                        @if conflicts > 0 {
                            @if open == 0 { ", none open" } @else { ", " (open) " open" }
                        }
                    }
                }
                @if conflicts > 0 {
                    p { (ExceptionKind::SourceConflict.description()) " Each is decided on its exception page." }
                }
                table.reconciled {
                    tr {
                        th scope="col" { "drug" }
                        th scope="col" { "matched by" }
                        @for s in &r.sources {
                            th scope="col" data-source=(s.source) { (s.source) br; small { "version " (s.version) ", " (s.items) " item(s)" } }
                        }
                        th scope="col" { "conflicts" }
                    }
                    @for row in &r.rows { (row_markup(row)) }
                }
            }
        },
    )
}

fn row_markup(row: &Row) -> Markup {
    let class = if !row.conflicts.is_empty() {
        "conflict"
    } else if row.only_in.is_some() {
        "single-source"
    } else {
        "agreed"
    };
    html! {
        tr class=(class) {
            th scope="row" { (row.drug) }
            td {
                @if let Some(only) = &row.only_in { "only in " (only) }
                @else if let Some(m) = row.matched_by { (m.label()) }
            }
            @for c in &row.cells {
                td data-source=(c.source) {
                    @if c.items.is_empty() { span.absent { "not listed" } }
                    @for i in &c.items { (said(i)) }
                }
            }
            td { @for c in &row.conflicts { (conflict_markup(c)) } }
        }
    }
}

fn said(i: &Listed) -> Markup {
    html! {
        div.said {
            "#" (i.position) " "
            span class=(format!("badge {}", i.status.as_str())) { (status_text(i.status.as_str())) }
            @if i.evidence == crate::parse::Evidence::Claim { " (claims)" }
            @if let Some(s) = &i.strength { br; "strength " (s) }
            @if let Some(d) = &i.dose { br; "dose " (d) }
            @if let Some(s) = &i.sig { br; "sig " (s) }
            @if let Some(d) = &i.last_date { br; "last " (d) }
        }
    }
}

fn conflict_markup(c: &Conflict) -> Markup {
    let [a, b] = &c.sides;
    html! {
        div.conflict {
            strong { (c.aspect.as_str()) } ": "
            (a.source) " says " (a.says) "; " (b.source) " says " (b.says)
            @if let Some(e) = &c.exception {
                " — "
                a href=(format!("/exceptions/{}", e.id)) { "exception " (e.id) }
                " " span class=(format!("badge {}", e.state.as_str())) { (state_label(e.state)) }
            }
        }
    }
}
