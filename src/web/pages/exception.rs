//! The Exception page, built for deciding: first why it was flagged and the
//! decisions that fit its kind (each button saying what it will do; a
//! dictionary search whose results the page opens at), then what rxsync
//! read beside what the dictionary says, the two items of a duplicate side
//! by side, and the source excerpt, folded. A refused decision comes back
//! to this page with the reason and what was typed; a taken one offers the
//! next open exception of the patient and of the queue filter the user came
//! from (carried in the query string).

use super::queue::patient_link;
use super::{Viewer, csrf_field, error_page, given, layout, render};
use crate::dict::DictEntry;
use crate::domain::{Decision, ExceptionKind, ExceptionState};
use crate::store::ItemView;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::labels::{
    decision_sentence, decision_text, kind_text, ndc_text, severity_text, state_text, status_text,
    time, time_or_dash,
};
use crate::web::review::{self, Loaded, QueueQuery, load, search};
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// The page's query: a dictionary search, the decision just taken, and the
/// queue filter the user came from.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// A dictionary search: an NDC in any format, or part of a name.
    pub q: Option<String>,
    /// The decision just taken (a fixed word, shown as a notice).
    pub done: Option<String>,
    pub kind: Option<String>,
    pub state: Option<String>,
    pub source: Option<String>,
    pub patient: Option<String>,
}

impl PageQuery {
    fn queue_filter(&self) -> QueueQuery {
        QueueQuery {
            kind: self.kind.clone(),
            state: self.state.clone(),
            source: self.source.clone(),
            patient: self.patient.clone(),
            page: None,
        }
    }
}

/// A decision the store refused, shown on the page with what was typed.
struct Refused {
    action: String,
    ndc: Option<String>,
    note: Option<String>,
    message: String,
}

/// What the page draws besides the exception itself.
struct Extras<'a> {
    q: &'a PageQuery,
    results: Option<&'a [DictEntry]>,
    next: (Option<i64>, Option<i64>),
    refused: Option<&'a Refused>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Response {
    let text = given(&q.q).map(str::to_string);
    show(&state, &viewer, id, q, text, None).await
}

/// Reads everything and draws the page (with `refused`, as its status).
async fn show(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    q: PageQuery,
    search_text: Option<String>,
    refused: Option<(StatusCode, Refused)>,
) -> Response {
    let from = q.queue_filter();
    let found = state
        .store(move |s| {
            let loaded = load(s, id)?;
            let results = search_text.as_deref().map(|t| search(s, t)).transpose()?;
            Ok((loaded, results))
        })
        .await;
    let (loaded, results) = match found {
        Ok(f) => f,
        Err(e) => return error_page(Some(viewer), e),
    };
    let patient = loaded.view.patient.clone();
    let next = match state
        .store(move |s| Ok(review::next_open(s, id, &patient, &from)))
        .await
    {
        Ok(Ok(n)) => n,
        Ok(Err(e)) | Err(e) => return error_page(Some(viewer), e),
    };
    let (status, refused) = match refused {
        Some((status, r)) => (status, Some(r)),
        None => (StatusCode::OK, None),
    };
    let extras = Extras {
        q: &q,
        results: results.as_deref(),
        next,
        refused: refused.as_ref(),
    };
    render(status, exception_page(viewer, &loaded, &extras))
}

/// How an item is named on a button: `#7 Prozac 20 mg capsule`.
fn item_words(i: &ItemView) -> String {
    let name = i.name.clone().unwrap_or_default();
    let mut words = vec![format!("#{}", i.position)];
    if !name.trim().is_empty() {
        words.push(name.clone());
    }
    // Strength and form only when the name does not already say them.
    for w in [&i.strength, &i.form].into_iter().flatten() {
        if !w.trim().is_empty() && !name.to_lowercase().contains(&w.to_lowercase()) {
            words.push(w.clone());
        }
    }
    words.join(" ")
}

fn exception_page(viewer: &Viewer, l: &Loaded, x: &Extras<'_>) -> Markup {
    let e = &l.view;
    let kind = e.kind.parse::<ExceptionKind>().ok();
    let notice = match given(&x.q.done) {
        Some("reopen") => Some("The decision was reversed: the exception is open again."),
        Some("dismiss") => Some("Dismissed."),
        Some(_) => Some("Resolved."),
        None => None,
    };
    layout(
        &format!("Exception #{} — {}", e.id, kind_text(&e.kind)),
        Some(viewer),
        html! {
            @if let Some(n) = notice {
                p.notice role="status" { (n) " " (next_links(x, true)) }
            }
            @if let Some(k) = kind { p.lede { (k.description()) } }
            p #why { strong { "Why: " } (e.detail) }
            p.facts {
                span #state class=(format!("badge {}", e.state)) data-state=(e.state.as_str()) { (state_text(e.state.as_str())) } " "
                span class=(format!("badge {}", e.severity)) { (severity_text(&e.severity)) } " · patient "
                a #patient href=(patient_link(&e.patient)) { (e.patient) } " · from " (e.source)
                @if let Some(v) = e.regimen_version { " · regimen version " (v) }
                " · raised " (time(&e.created_at))
            }
            @if e.state == ExceptionState::Open {
                (actions(viewer, l, x))
            } @else {
                p #decision {
                    (decision_text(e.resolution.as_deref().unwrap_or(e.state.as_str())))
                    @if let Some(n) = &e.resolution_ndc { " to NDC " (ndc_text(n)) }
                    " by " (e.resolved_by.as_deref().unwrap_or("?")) " on " (time_or_dash(e.resolved_at.as_deref()))
                    @if let Some(n) = &e.note { " — “" (n) "”" }
                }
                (reverse(viewer, l))
            }
            (next_links(x, false))
            // A source conflict is decided on its two sides: they come
            // before what the dictionary says of one of them.
            @if kind == Some(ExceptionKind::SourceConflict) {
                (both(l))
                @if let Some(item) = &l.item { (side_by_side(item)) }
            } @else {
                @if let Some(item) = &l.item { (side_by_side(item)) }
                (both(l))
            }
            h2 { "Source excerpt" }
            @match &l.excerpt {
                Some(text) => details #source {
                    summary { "The record as the document gave it" }
                    pre #excerpt { (crate::web::pretty_excerpt(text)) }
                },
                None => p { "No excerpt (no item, or the stored document no longer gives this item's records back)." },
            }
            @if let Some(item) = &l.item {
                details { summary { "The item in full (JSON)" }
                    pre { (serde_json::to_string_pretty(item).unwrap_or_default()) }
                }
            }
            @if !l.decisions.is_empty() {
                h2 { "Decisions" }
                ul #decisions {
                    @for d in &l.decisions {
                        li {
                            (decision_sentence(&d.decided_by, &d.action)) " on " (time(&d.decided_at))
                            @if let Some(by) = &d.reversed_by {
                                "; reversed by " (by) " on " (time_or_dash(d.reversed_at.as_deref()))
                                @if let Some(n) = &d.reversal_note { ": “" (n) "”" }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The two items side by side, when the exception has two.
fn both(l: &Loaded) -> Markup {
    html! {
        @if let (Some(item), Some(other)) = (&l.item, &l.related) {
            (pair(&l.view.patient, [item, other], &l.sources))
        }
    }
}

/// "Next open exception" of this patient and of the queue filter, and the
/// way back to that queue.
fn next_links(x: &Extras<'_>, after_decision: bool) -> Markup {
    let from = x.q.queue_filter();
    let carried = from.carried();
    let queue = format!("/queue?{}", carried.trim_start_matches('&'));
    let (of_patient, of_queue) = x.next;
    html! {
        @if after_decision {
            @match of_queue.or(of_patient) {
                Some(n) => a.next-after href=(format!("/exceptions/{n}?{}", carried.trim_start_matches('&'))) { "Go to the next open exception →" },
                None => "No other exception is open.",
            }
        } @else {
            nav.next aria-label="next" {
                @if let Some(n) = of_patient {
                    a #next-patient href=(format!("/exceptions/{n}?{}", carried.trim_start_matches('&'))) { "Next open exception of this patient" }
                }
                @if let Some(n) = of_queue {
                    a #next-queue href=(format!("/exceptions/{n}?{}", carried.trim_start_matches('&'))) { "Next open exception in the queue" }
                }
                a href=(queue) { "Back to the queue" }
            }
        }
    }
}

/// What rxsync read beside what the dictionary says of the item's NDC.
fn side_by_side(i: &ItemView) -> Markup {
    let p = i.product.as_ref();
    let dict = |k: &str| p.and_then(|p| p[k].as_str()).unwrap_or("").to_string();
    let strength = p
        .and_then(|p| p["ingredients"].as_array())
        .map(|ings| {
            ings.iter()
                .map(|g| {
                    format!(
                        "{} {} {}",
                        g["name"].as_str().unwrap_or(""),
                        g["strength"].as_str().unwrap_or(""),
                        g["unit"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let read_ndc = match (&i.ndc_original, &i.ndc11) {
        (Some(o), Some(n)) if *o != ndc_text(n) && o != n => {
            format!("{o} (as 11 digits: {})", ndc_text(n))
        }
        (Some(o), _) => o.clone(),
        (None, Some(n)) => ndc_text(n),
        (None, None) => "—".to_string(),
    };
    let name = [i.name.clone(), i.brand.clone().map(|b| format!("({b})"))]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let rows: [(&str, String, String); 7] = [
        (
            "Name",
            name,
            p.map(|_| {
                format!(
                    "{} ({})",
                    dict("proprietary_name"),
                    dict("nonproprietary_name")
                )
            })
            .unwrap_or_default(),
        ),
        ("Strength", i.strength.clone().unwrap_or_default(), strength),
        (
            "Form",
            i.form.clone().unwrap_or_default(),
            dict("dosage_form"),
        ),
        ("Route", i.route.clone().unwrap_or_default(), dict("route")),
        ("NDC", read_ndc, dict("package_ndc")),
        ("Package", String::new(), dict("package")),
        ("Labeler", String::new(), dict("labeler")),
    ];
    html! {
        h2 { "What rxsync read and what the dictionary says" }
        table #compare.compare {
            thead { tr { th scope="col" { "" } th scope="col" { "Read from the document" } th scope="col" { "The dictionary, for this NDC" } } }
            tbody {
                @for (n, (label, read, said)) in rows.iter().enumerate() {
                    tr {
                        th scope="row" { (label) }
                        td { @if read.is_empty() { "—" } @else { (read) } }
                        @if p.is_some() {
                            td { @if said.is_empty() { "—" } @else { (said) } }
                        } @else if n == 0 {
                            td.none rowspan=(rows.len()) { "This NDC is not in the dictionary." }
                        }
                    }
                }
                tr { th scope="row" { "Sig" } td { (i.sig.as_deref().unwrap_or("—")) } td { "" } }
                tr { th scope="row" { "Status" } td { (status_text(&i.status)) @if let Some(o) = &i.status_original { " (as written: " (o) ")" } } td { "" } }
                @if i.evidence == "claim" { tr { th scope="row" { "Evidence" } td { "pharmacy claims only: filled, not proof that it is taken" } td { "" } } }
                @if let Some(s) = &i.section { tr { th scope="row" { "Listed in" } td { "the document's " (s) " section" } td { "" } } }
                @if let Some(m) = &i.mapping {
                    tr { th scope="row" { "Mapped" } td {} td { "by " (m["decided_by"].as_str().unwrap_or("")) " on " (time(m["decided_at"].as_str().unwrap_or(""))) } }
                }
                @if let Some(r) = &i.removed { tr { th scope="row" { "Removed" } td { "by " (r.by) " on " (time(&r.at)) } td {} } }
            }
        }
    }
}

/// The two items of a duplicate (or the two sides of a source conflict),
/// side by side, each with its links; items of two sources are headed by
/// their source.
fn pair(patient: &str, items: [&ItemView; 2], sources: &[Option<String>; 2]) -> Markup {
    let (title, heads) = match sources {
        [Some(a), Some(b)] if a != b => ("What each source says", [a.clone(), b.clone()]),
        _ => (
            "The two items",
            ["This item".to_string(), "The other item".to_string()],
        ),
    };
    let [this, other] = items;
    let [this_head, other_head] = &heads;
    let cols = [(this_head, this), (other_head, other)];
    let field = |i: &ItemView, k: &str| -> String {
        match k {
            "name" => i.name.clone(),
            "strength" => i.strength.clone(),
            "form" => i.form.clone(),
            "route" => i.route.clone(),
            "ndc" => i.ndc11.as_deref().map(ndc_text),
            "sig" => i.sig.clone(),
            _ => Some(status_text(&i.status)),
        }
        .unwrap_or_else(|| "—".to_string())
    };
    html! {
        h2 { (title) }
        table #pair.compare {
            thead { tr { th scope="col" { "" } @for (h, i) in &cols { th scope="col" { (h) " — #" (i.position) } } } }
            tbody {
                @for (label, k) in [("Name", "name"), ("Strength", "strength"), ("Form", "form"), ("Route", "route"), ("NDC-11", "ndc"), ("Sig", "sig"), ("Status", "status")] {
                    tr { th scope="row" { (label) } @for (_, i) in &cols { td { (field(i, k)) } } }
                }
                tr { th scope="row" { "Links" } @for (_, i) in &cols {
                    td {
                        a.item-link href=(format!("{}#item-{}", patient_link(patient), i.id)) { "#" (i.position) " in the regimen" }
                        @for f in &i.exceptions {
                            " · " a href=(format!("/exceptions/{}", f.id)) { (kind_text(&f.kind)) " #" (f.id) " (" (state_text(f.state.as_str())) ")" }
                        }
                    }
                } }
            }
        }
    }
}

/// Hidden fields carrying the queue filter through a form.
fn carried_fields(q: &PageQuery) -> Markup {
    let from = q.queue_filter();
    html! { @for (k, v) in from.pairs() { input type="hidden" name=(k) value=(v); } }
}

/// The decision panel for an open exception: one form per fitting action
/// (its button says what it will do), and dismiss.
fn actions(viewer: &Viewer, l: &Loaded, x: &Extras<'_>) -> Markup {
    let e = &l.view;
    let post = format!("/exceptions/{}/decide", e.id);
    let fits = |a: &str| e.actions.contains(&a);
    let this = l.item.as_ref().map(item_words);
    let this_text = this.as_deref().unwrap_or("the item");
    let other = l.related.as_ref().map(item_words);
    let kept = |action: &str, field: &str| -> String {
        x.refused
            .filter(|r| r.action == action)
            .and_then(|r| {
                if field == "ndc" {
                    r.ndc.clone()
                } else {
                    r.note.clone()
                }
            })
            .unwrap_or_default()
    };
    let remove_label = match &other {
        Some(o) => format!("Remove {this_text}, keep {o}"),
        None => format!("Remove {this_text} from the regimen"),
    };
    let keep_label = match &other {
        Some(o) => format!("Keep both {this_text} and {o}"),
        None => "Keep both".to_string(),
    };
    let accept_label = match (&l.item, &l.related, &l.sources) {
        // Accepting a conflict changes neither list: it records that the
        // clinician settled it, so the same disagreement is not raised again.
        (Some(a), Some(b), [Some(sa), Some(sb)]) if sa != sb => format!(
            "Accept: {sa} #{} and {sb} #{} stay as each source lists them",
            a.position, b.position
        ),
        _ => match &this {
            Some(t) => format!("Accept {t} as it is"),
            None => "Accept as it is".to_string(),
        },
    };
    html! {
        section #decide aria-labelledby="decide-h" {
            h2 #decide-h { "Decide" }
            @if let Some(r) = x.refused {
                p.error #refused role="alert" { "Not done: " (r.message) }
            }
            @if fits("map") {
                form.action method="get" action=(format!("/exceptions/{}#results", e.id)) {
                    (carried_fields(x.q))
                    label for="dict-q" { "Search the dictionary (NDC in any format, or a name)" }
                    " " input type="search" name="q" id="dict-q" value=(given(&x.q.q).unwrap_or(""));
                    " " button type="submit" id="dict-search" { "Search" }
                }
                @if let Some(found) = x.results {
                    section #results aria-labelledby="results-h" {
                        h3 #results-h { "Dictionary matches for “" (given(&x.q.q).unwrap_or("")) "”" }
                        @if found.is_empty() { p { "Nothing in the dictionary matches." } }
                        @else {
                            table #dict-results {
                                thead { tr { th scope="col" { "NDC" } th scope="col" { "Product" } th scope="col" { "Strength" } th scope="col" { "Form" } th scope="col" { "Route" } th scope="col" { "Package" } th scope="col" { "Labeler" } th scope="col" { "Decision" } } }
                                tbody {
                                    @for d in found {
                                        tr {
                                            td { (d.package.package_ndc) }
                                            td { (d.product.proprietary_name) " (" (d.product.nonproprietary_name) ")" }
                                            td { (d.product.strength_text()) }
                                            td { (d.product.dosage_form) }
                                            td { (d.product.route) }
                                            td { (d.package.description) }
                                            td { (d.product.labeler) }
                                            td { @if d.product.excluded { "excluded from the NDC Directory" } @else if let Some(ndc11) = d.package.ndc11() {
                                                form.inline method="post" action=(post) {
                                                    (csrf_field(viewer))
                                                    (carried_fields(x.q))
                                                    input type="hidden" name="action" value="map";
                                                    input type="hidden" name="ndc" value=(ndc11.as_str());
                                                    button type="submit" class="map-to" data-ndc=(ndc11.as_str()) { "Map " (this_text) " to " (ndc11.hyphenated()) }
                                                }
                                            } @else { "no 11-digit form: cannot be mapped to yet" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form.action method="post" action=(post) {
                    (csrf_field(viewer))
                    (carried_fields(x.q))
                    input type="hidden" name="action" value="map";
                    label for="map-ndc" { "NDC to map to" } " "
                    input type="text" name="ndc" id="map-ndc" required value=(kept("map", "ndc"));
                    " " label for="map-note" { "Note" } " "
                    input type="text" name="note" id="map-note" value=(kept("map", "note"));
                    " " button type="submit" id="do-map" { "Map " (this_text) " to this NDC" }
                }
            }
            @for (action, label) in [("remove", &remove_label), ("keep", &keep_label), ("accept", &accept_label)] {
                @if fits(action) {
                    form.action method="post" action=(post) {
                        (csrf_field(viewer))
                        (carried_fields(x.q))
                        input type="hidden" name="action" value=(action);
                        label for=(format!("{action}-note")) { "Note" } " "
                        input type="text" name="note" id=(format!("{action}-note")) value=(kept(action, "note"));
                        " " button type="submit" id=(format!("do-{action}")) { (label) }
                    }
                }
            }
            // identity_mismatch: a decision on the held link, with a note.
            @for (action, label) in [("confirm", "Confirm: this is the patient's account (the link imports again)"), ("reject", "Reject: not this patient (the link is revoked)")] {
                @if fits(action) {
                    form.action method="post" action=(post) {
                        (csrf_field(viewer))
                        (carried_fields(x.q))
                        input type="hidden" name="action" value=(action);
                        label for=(format!("{action}-note")) { "Why" } " "
                        input type="text" name="note" id=(format!("{action}-note")) required value=(kept(action, "note"));
                        " " button type="submit" id=(format!("do-{action}")) { (label) }
                    }
                }
            }
            @if !fits("confirm") {
                form.action method="post" action=(post) {
                    (csrf_field(viewer))
                    (carried_fields(x.q))
                    input type="hidden" name="action" value="dismiss";
                    label for="dismiss-note" { "Why dismiss" } " "
                    input type="text" name="note" id="dismiss-note" required value=(kept("dismiss", "note"));
                    " " button type="submit" id="do-dismiss" { "Dismiss without acting on it" }
                }
            }
        }
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
                label for="reopen-note" { "Why" } " "
                input type="text" name="note" id="reopen-note" required;
                " " button type="submit" id="do-reopen" { "Reopen" }
            },
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    pub action: String,
    pub ndc: Option<String>,
    pub note: Option<String>,
    pub kind: Option<String>,
    pub state: Option<String>,
    pub source: Option<String>,
    pub patient: Option<String>,
}

pub async fn decide(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Form(form): Form<DecideForm>,
) -> Response {
    let q = PageQuery {
        q: None,
        done: None,
        kind: form.kind.clone(),
        state: form.state.clone(),
        source: form.source.clone(),
        patient: form.patient.clone(),
    };
    let refused = |e: AppError| Refused {
        action: form.action.clone(),
        ndc: form.ndc.clone(),
        note: form.note.clone(),
        message: e.message,
    };
    let outcome = match Decision::parse(&form.action, form.ndc.as_deref(), form.note.as_deref()) {
        Ok(d) => {
            let done = if matches!(d, Decision::Dismiss { .. }) {
                "dismiss"
            } else {
                "resolve"
            };
            review::apply(&state, id, &viewer.user.name, d, form.note.as_deref())
                .await
                .map(|_| done)
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(done) => Redirect::to(&format!(
            "/exceptions/{id}?done={done}{}",
            q.queue_filter().carried()
        ))
        .into_response(),
        // A missing exception or our own failure has no page to stay on.
        Err(e) if e.status == StatusCode::NOT_FOUND || e.status.is_server_error() => {
            error_page(Some(&viewer), e)
        }
        Err(e) => {
            let status = e.status;
            show(&state, &viewer, id, q, None, Some((status, refused(e)))).await
        }
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
