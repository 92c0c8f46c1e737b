//! The Queue page: exceptions newest first, filtered by kind, state,
//! source (provider) and patient, with counts per kind, in pages.

use super::{Viewer, error_page, given, layout, render};
use crate::domain::{ExceptionKind, ExceptionState};
use crate::store::ExceptionView;
use crate::web::AppState;
use crate::web::labels::{kind_label, kind_text, severity_text, state_label, time};
use crate::web::review::{QueueQuery, filter_of};
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

/// Exceptions per page.
pub const PAGE_SIZE: usize = 50;

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<QueueQuery>,
) -> Response {
    let mut filter = match filter_of(&q) {
        Ok(f) => f,
        Err(e) => return error_page(Some(&viewer), e),
    };
    let page = q.page.unwrap_or(1).max(1);
    filter.limit = Some(PAGE_SIZE);
    filter.offset = (page - 1).saturating_mul(PAGE_SIZE);
    let f = filter.clone();
    let found = state
        .store(move |s| Ok((s.exceptions(&f)?, s.exception_counts(&f)?)))
        .await;
    let (rows, counts) = match found {
        Ok(r) => r,
        Err(e) => return error_page(Some(&viewer), e),
    };
    let total: usize = counts
        .iter()
        .filter(|(k, _)| filter.kind.is_none_or(|want| want.as_str() == k))
        .map(|(_, n)| n)
        .sum();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    render(
        StatusCode::OK,
        layout(
            "Exception queue",
            Some(&viewer),
            html! {
                (filters(&q))
                p.counts {
                    "By kind: "
                    @for (kind, n) in &counts {
                        a href=(link(&q, Some(kind), Some(1))) { (kind_text(kind)) ": " span.count data-kind=(kind) { (n) } }
                    }
                    @if counts.is_empty() { "none" }
                }
                (table(&rows, &q))
                p {
                    "Page " (page) " of " (pages) " (" (total) " exception(s)) "
                    @if page > 1 { a href=(link(&q, None, Some(page - 1))) rel="prev" { "← newer" } " " }
                    @if page < pages { a href=(link(&q, None, Some(page + 1))) rel="next" { "older →" } }
                }
            },
        ),
    )
}

/// The filter form (GET: it changes nothing, and works without scripts).
fn filters(q: &QueueQuery) -> Markup {
    let state = given(&q.state).unwrap_or("open");
    let kind = given(&q.kind).unwrap_or("");
    html! {
        form.filters method="get" action="/queue" {
            label { "Kind "
                select name="kind" id="f-kind" {
                    option value="" selected[kind.is_empty()] { "any" }
                    @for k in ExceptionKind::ALL {
                        option value=(k.as_str()) selected[kind == k.as_str()] { (kind_label(k)) }
                    }
                }
            }
            label { "State "
                select name="state" id="f-state" {
                    @for s in [ExceptionState::Open, ExceptionState::Resolved, ExceptionState::Dismissed] {
                        option value=(s.as_str()) selected[state == s.as_str()] { (state_label(s)) }
                    }
                    option value="all" selected[state == "all"] { "All" }
                }
            }
            label { "Provider/source " input type="text" name="source" value=(given(&q.source).unwrap_or("")); }
            label { "Patient " input type="text" name="patient" value=(given(&q.patient).unwrap_or("")); }
            button type="submit" { "Filter" }
        }
    }
}

/// The queue URL with the same filters, another kind and/or page.
fn link(q: &QueueQuery, kind: Option<&str>, page: Option<usize>) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            url.append_pair(k, v);
        }
    };
    put("kind", kind.or(given(&q.kind)));
    put("state", given(&q.state));
    put("source", given(&q.source));
    put("patient", given(&q.patient));
    let page = page.map(|p| p.to_string());
    put("page", page.as_deref());
    format!("/queue?{}", url.finish())
}

fn table(rows: &[ExceptionView], q: &QueueQuery) -> Markup {
    // An exception opened from here carries the filter, for "next open exception".
    let carried = q.carried();
    let open = |id: i64| format!("/exceptions/{id}?{}", carried.trim_start_matches('&'));
    html! {
        table #queue {
            thead { tr {
                th { "#" } th { "Raised" } th { "Patient" } th { "Source" } th { "Kind" }
                th { "Severity" } th { "State" } th { "Item" } th { "Why" }
            } }
            tbody {
                @for e in rows {
                    tr data-id=(e.id) data-kind=(e.kind) {
                        td { a href=(open(e.id)) { (e.id) } }
                        td { (time(&e.created_at)) }
                        td { a href=(patient_link(&e.patient)) { (e.patient) } }
                        td { (e.source) }
                        td { a href=(open(e.id)) { (kind_text(&e.kind)) } }
                        td { span class=(format!("badge {}", e.severity)) { (severity_text(&e.severity)) } }
                        td { span class=(format!("badge {}", e.state)) { (crate::web::labels::state_text(e.state.as_str())) } }
                        td { @if let Some(i) = &e.item { "#" (i.position) " " (i.name.as_deref().unwrap_or("")) } }
                        td { (e.detail) }
                    }
                }
            }
        }
        @if rows.is_empty() { p { "Nothing here." } }
    }
}

/// The Patient page's URL (patient ids are checked identifiers, but are
/// percent-encoded all the same).
pub fn patient_link(id: &str) -> String {
    const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    format!(
        "/patients/{}",
        percent_encoding::utf8_percent_encode(id, PATH_SEGMENT)
    )
}
