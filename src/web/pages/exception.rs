//! The Exception page: what rxsync read and how it normalized it, the
//! source excerpt, why it was flagged, and the decisions that fit its kind
//! (map with a dictionary search, remove, keep, accept, dismiss), or the
//! decision taken and a way to reverse it while the regimen is under review.

use super::queue::patient_link;
use super::{csrf_field, error_page, given, layout, render};
use crate::dict::DictEntry;
use crate::domain::ndc::{self, NdcReading};
use crate::domain::{Action, Ndc11};
use crate::store::{DecisionView, ExceptionView, ItemView, Resolve, Store, StoreError};
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::error::AppError;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// Dictionary search results shown at most.
const SEARCH_LIMIT: usize = 25;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// A dictionary search: an NDC in any format, or part of a name.
    pub q: Option<String>,
    /// The decision just taken (a fixed word, shown as a notice).
    pub done: Option<String>,
}

/// Everything the page shows, read in one go.
pub struct Loaded {
    pub view: ExceptionView,
    pub item: Option<ItemView>,
    pub excerpt: Option<String>,
    pub decisions: Vec<DecisionView>,
    /// Why the decision cannot be reversed (None: it can, or it is open).
    pub final_because: Option<String>,
}

/// Reads an exception with its item, excerpt and decisions.
pub fn load(s: &mut Store, id: i64) -> Result<Loaded, StoreError> {
    let (view, item) = s.exception(id)?;
    let excerpt = crate::excerpt::exception_excerpt(s, id, item.as_ref().map(|i| i.id))?;
    let final_because = if view.state == "open" {
        None
    } else {
        s.reopen_refusal(id)?
    };
    Ok(Loaded {
        decisions: s.decisions(id)?,
        view,
        item,
        excerpt,
        final_because,
    })
}

/// Dictionary entries for a search: an NDC in any format (every reading of
/// a bare 10-digit code), else part of a brand or generic name.
pub fn search(s: &Store, text: &str) -> Result<Vec<DictEntry>, StoreError> {
    match ndc::parse(text) {
        Ok(parsed) => {
            let mut found = Vec::new();
            for n in parsed.reading.keys() {
                found.extend(s.dict_entry(&n)?);
            }
            Ok(found)
        }
        Err(_) => s.dict_search(text, SEARCH_LIMIT),
    }
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Response {
    let text = given(&q.q).map(str::to_string);
    let found = state
        .store(move |s| {
            let loaded = load(s, id)?;
            let results = text.as_deref().map(|t| search(s, t)).transpose()?;
            Ok((loaded, results))
        })
        .await;
    match found {
        Ok((loaded, results)) => render(
            StatusCode::OK,
            exception_page(&viewer, &loaded, &q, results.as_deref()),
        ),
        Err(e) => error_page(Some(&viewer), e),
    }
}

fn exception_page(
    viewer: &Viewer,
    l: &Loaded,
    q: &PageQuery,
    results: Option<&[DictEntry]>,
) -> Markup {
    let e = &l.view;
    let notice = match given(&q.done) {
        Some("reopen") => Some("The decision was reversed: the exception is open again."),
        Some("dismiss") => Some("Dismissed."),
        Some(_) => Some("Resolved."),
        None => None,
    };
    layout(
        &format!("Exception {} — {}", e.id, e.kind),
        Some(viewer),
        html! {
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            table.facts {
                tr { th { "state" } td { span #state class=(format!("badge {}", e.state)) { (e.state) } } }
                tr { th { "severity" } td { (e.severity) } }
                tr { th { "patient" } td { a #patient href=(patient_link(&e.patient)) { (e.patient) } } }
                tr { th { "source" } td { (e.source) } }
                tr { th { "regimen version" } td { (e.regimen_version.map(|v| v.to_string()).unwrap_or_default()) } }
                tr { th { "why" } td #why { (e.detail) } }
                @if let Some(r) = &e.related_item {
                    tr { th { "the other item" } td { "#" (r.position) " " (r.name.as_deref().unwrap_or("")) " " (r.ndc11.as_deref().unwrap_or("")) } }
                }
                @if e.state != "open" {
                    tr { th { "decision" } td #decision {
                        (e.resolution.as_deref().unwrap_or(e.state.as_str()))
                        @if let Some(n) = &e.resolution_ndc { " → " (n) }
                        " by " (e.resolved_by.as_deref().unwrap_or("?")) " at " (e.resolved_at.as_deref().unwrap_or("?"))
                    } }
                    @if let Some(n) = &e.note { tr { th { "note" } td { (n) } } }
                }
            }
            @if let Some(item) = &l.item { (item_table(item)) }
            h2 { "Source excerpt" }
            @match &l.excerpt {
                Some(x) => pre #excerpt { (crate::web::pretty_excerpt(x)) },
                None => p { "No excerpt (no item, or the stored document no longer gives this item's records back)." },
            }
            @if e.state == "open" {
                (actions(viewer, e, q, results))
            } @else {
                (reverse(viewer, l))
            }
            @if !l.decisions.is_empty() {
                h2 { "Decisions" }
                table { tr { th { "action" } th { "by" } th { "at" } th { "reversed" } }
                    @for d in &l.decisions {
                        tr { td { (d.action) } td { (d.decided_by) } td { (d.decided_at) }
                            td { @if let Some(by) = &d.reversed_by {
                                "by " (by) " at " (d.reversed_at.as_deref().unwrap_or("")) ": " (d.reversal_note.as_deref().unwrap_or(""))
                            } }
                        }
                    }
                }
            }
            p { a href="/queue" { "Back to the queue" } }
        },
    )
}

fn item_table(i: &ItemView) -> Markup {
    let codes = |c: &[crate::store::CodeView]| {
        c.iter()
            .map(|c| format!("{} {}", c.system_original, c.code))
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        h2 { "What rxsync read" }
        table #item {
            tr { th { "drug" } td #item-name { (i.name.as_deref().unwrap_or("")) } }
            tr { th { "brand" } td { (i.brand.as_deref().unwrap_or("")) } }
            tr { th { "codes as written" } td { (codes(&i.codes)) } }
            @if !i.ingredient_codes.is_empty() { tr { th { "ingredient codes" } td { (codes(&i.ingredient_codes)) } } }
            tr { th { "NDC as written" } td { (i.ndc_original.as_deref().unwrap_or("")) } }
            tr { th { "strength / form / route" } td { (i.strength.as_deref().unwrap_or("")) " / " (i.form.as_deref().unwrap_or("")) " / " (i.route.as_deref().unwrap_or("")) } }
            tr { th { "sig" } td { (i.sig.as_deref().unwrap_or("")) } }
            tr { th { "status" } td { (i.status) @if let Some(o) = &i.status_original { " (as written: " (o) ")" } } }
            @if i.evidence == "claim" { tr { th { "evidence" } td { "pharmacy claims only: filled, not proof that it is taken" } } }
            @if let Some(s) = &i.section { tr { th { "listed in" } td { "the document's " (s) " section" } } }
            @if i.days_supply.is_some() || i.quantity.is_some() || i.dispenser.is_some() {
                tr { th { "latest fill" } td {
                    (i.quantity.as_deref().unwrap_or("—")) ", " (i.days_supply.as_deref().unwrap_or("—")) " days supply, " (i.dispenser.as_deref().unwrap_or("pharmacy not given"))
                } }
            }
        }
        h2 { "As normalized" }
        table {
            tr { th { "NDC-11" } td #item-ndc11 { (i.ndc11.as_deref().unwrap_or("—")) @if i.ndc_inferred { " (inferred)" } } }
            @if let Some(p) = &i.product {
                tr { th { "dictionary" } td {
                    (p["proprietary_name"].as_str().unwrap_or("")) " — " (p["nonproprietary_name"].as_str().unwrap_or(""))
                    ", " (p["dosage_form"].as_str().unwrap_or("")) ", " (p["labeler"].as_str().unwrap_or(""))
                } }
            }
            @if let Some(m) = &i.mapping {
                tr { th { "mapped by" } td { (m["decided_by"].as_str().unwrap_or("")) " at " (m["decided_at"].as_str().unwrap_or("")) } }
            }
            @if let Some(r) = &i.removed { tr { th { "removed" } td { "by " (r.by) " at " (r.at) } } }
        }
        details { summary { "The item in full (JSON)" }
            pre { (serde_json::to_string_pretty(i).unwrap_or_default()) }
        }
    }
}

/// The forms for an open exception: one per fitting action, and dismiss.
fn actions(
    viewer: &Viewer,
    e: &ExceptionView,
    q: &PageQuery,
    results: Option<&[DictEntry]>,
) -> Markup {
    let post = format!("/exceptions/{}/decide", e.id);
    let fits = |a: &str| e.actions.contains(&a);
    html! {
        h2 { "Decide" }
        @if fits("map") {
            form.action method="get" action=(format!("/exceptions/{}", e.id)) {
                label { "Search the dictionary (NDC in any format, or a name) "
                    input type="search" name="q" id="dict-q" value=(given(&q.q).unwrap_or("")); }
                button type="submit" id="dict-search" { "Search" }
            }
            @if let Some(found) = results {
                @if found.is_empty() { p { "Nothing in the dictionary matches." } }
                @else {
                    table #dict-results {
                        tr { th { "NDC" } th { "product" } th { "strength" } th { "form" } th { "labeler" } th {} }
                        @for d in found {
                            tr {
                                td { (d.package.package_ndc) }
                                td { (d.product.proprietary_name) " (" (d.product.nonproprietary_name) ")" }
                                td { (d.product.strength_text()) }
                                td { (d.product.dosage_form) }
                                td { (d.product.labeler) }
                                td { @if d.product.excluded { "excluded" } @else if let Some(ndc11) = d.package.ndc11() {
                                    form.inline method="post" action=(post) {
                                        (csrf_field(viewer))
                                        input type="hidden" name="action" value="map";
                                        input type="hidden" name="ndc" value=(ndc11.as_str());
                                        button type="submit" class="map-to" data-ndc=(ndc11.as_str()) { "Map to this" }
                                    }
                                } @else { "no 11-digit form: cannot be mapped to yet" } }
                            }
                        }
                    }
                }
            }
            form.action method="post" action=(post) {
                (csrf_field(viewer))
                input type="hidden" name="action" value="map";
                label { "Map to NDC " input type="text" name="ndc" id="map-ndc" required; }
                label { "Note " input type="text" name="note"; }
                button type="submit" { "Map" }
            }
        }
        @for (action, label) in [("remove", "Remove the item"), ("keep", "Keep both"), ("accept", "Accept as is")] {
            @if fits(action) {
                form.action method="post" action=(post) {
                    (csrf_field(viewer))
                    input type="hidden" name="action" value=(action);
                    label { "Note " input type="text" name="note"; }
                    button type="submit" id=(format!("do-{action}")) { (label) }
                }
            }
        }
        // identity_mismatch: a decision on the held link, with a note.
        @for (action, label) in [("confirm", "Confirm: this is the patient's account (the link imports again)"), ("reject", "Reject: not this patient (the link is revoked)")] {
            @if fits(action) {
                form.action method="post" action=(post) {
                    (csrf_field(viewer))
                    input type="hidden" name="action" value=(action);
                    label { "Why " input type="text" name="note" required; }
                    button type="submit" id=(format!("do-{action}")) { (label) }
                }
            }
        }
        @if !fits("confirm") { form.action method="post" action=(post) {
            (csrf_field(viewer))
            input type="hidden" name="action" value="dismiss";
            label { "Why dismiss " input type="text" name="note" required; }
            button type="submit" id="do-dismiss" { "Dismiss" }
        } }
    }
}

/// The reversal form, or why the decision is final.
fn reverse(viewer: &Viewer, l: &Loaded) -> Markup {
    html! {
        h2 { "Reverse the decision" }
        @match &l.final_because {
            Some(why) => p #final { "Final: " (why) },
            None => form.action method="post" action=(format!("/exceptions/{}/reopen", l.view.id)) {
                (csrf_field(viewer))
                label { "Why " input type="text" name="note" required; }
                button type="submit" id="do-reopen" { "Reopen" }
            },
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    pub action: String,
    pub ndc: Option<String>,
    pub note: Option<String>,
}

/// A decision from a form or the API, checked: the same rules as `rxsync queue resolve`.
pub enum Decision {
    Resolve(Resolve),
    Dismiss { by: String, note: String },
}

/// Checks a decision's action, NDC and note.
pub fn decision(
    by: &str,
    action: &str,
    ndc_text: Option<&str>,
    note: Option<&str>,
) -> Result<Decision, AppError> {
    let note = note
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    if action == "dismiss" {
        let note =
            note.ok_or_else(|| AppError::bad_request("dismissing needs a note saying why"))?;
        return Ok(Decision::Dismiss {
            by: by.to_string(),
            note,
        });
    }
    let action: Action = action.parse().map_err(AppError::bad_request)?;
    if matches!(action, Action::Confirm | Action::Reject) && note.is_none() {
        return Err(AppError::bad_request(
            "confirming or rejecting a link needs a note saying why",
        ));
    }
    let ndc = match (action, ndc_text.map(str::trim).filter(|t| !t.is_empty())) {
        (Action::Map, Some(t)) => Some(exact_ndc(t)?),
        (Action::Map, None) => return Err(AppError::bad_request("map needs an NDC")),
        (_, Some(_)) => return Err(AppError::bad_request("an NDC goes only with map")),
        (_, None) => None,
    };
    Ok(Decision::Resolve(Resolve {
        action,
        by: by.to_string(),
        ndc,
        note,
    }))
}

fn exact_ndc(text: &str) -> Result<Ndc11, AppError> {
    match ndc::parse(text) {
        Ok(p) => match p.reading {
            NdcReading::Exact(n) => Ok(n),
            NdcReading::Ambiguous(_) => Err(AppError::bad_request(format!(
                "{text}: a bare 10-digit NDC is ambiguous; give it with hyphens or as 11 digits"
            ))),
            NdcReading::NewLabeler(_) => Err(AppError::bad_request(format!(
                "{text}: a 12-digit NDC with a new 6-digit labeler has no 11-digit form, and a mapping needs one"
            ))),
        },
        Err(e) => Err(AppError::bad_request(format!("{text}: {e}"))),
    }
}

/// Applies a checked decision through the store (the functions `rxsync queue` uses).
pub async fn apply(state: &AppState, id: i64, d: Decision) -> Result<ExceptionView, AppError> {
    state
        .store(move |s| match d {
            Decision::Resolve(r) => s.resolve_exception(id, &r),
            Decision::Dismiss { by, note } => s.dismiss_exception(id, &by, &note),
        })
        .await
}

pub async fn decide(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Form(form): Form<DecideForm>,
) -> Response {
    let d = match decision(
        &viewer.user.name,
        &form.action,
        form.ndc.as_deref(),
        form.note.as_deref(),
    ) {
        Ok(d) => d,
        Err(e) => return error_page(Some(&viewer), e),
    };
    let done = if matches!(d, Decision::Dismiss { .. }) {
        "dismiss"
    } else {
        "resolve"
    };
    match apply(&state, id, d).await {
        Ok(_) => Redirect::to(&format!("/exceptions/{id}?done={done}")).into_response(),
        Err(e) => error_page(Some(&viewer), e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReopenForm {
    pub note: Option<String>,
}

pub async fn reopen(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Form(form): Form<ReopenForm>,
) -> Response {
    let by = viewer.user.name.clone();
    let note = form.note.unwrap_or_default();
    match state
        .store(move |s| s.reopen_exception(id, &by, &note))
        .await
    {
        Ok(_) => Redirect::to(&format!("/exceptions/{id}?done=reopen")).into_response(),
        Err(e) => error_page(Some(&viewer), e),
    }
}
