//! The Patient page: per source, the current regimen (or a chosen version)
//! with its status, the versions before it and what changed between two of
//! them; the patient's links and their state; the audit trail.

use super::{error_page, layout, render};
use crate::domain::{LinkState, PatientId};
use crate::store::{AuditEntry, ItemView, LinkView, Patient, RegimenSummary, RegimenView};
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::error::AppError;
use crate::web::labels::{audit_sentence, kind_text, state_text, status_text, time, time_at};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Audit records shown.
const AUDIT_LIMIT: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct PatientQuery {
    /// The source whose version and comparison are chosen below.
    pub source: Option<String>,
    pub version: Option<i64>,
    /// Compare version `from` with version `to` of `source`.
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One source's part of the page.
struct SourcePart {
    source: String,
    shown: Option<RegimenView>,
    history: Vec<RegimenSummary>,
    compared: Option<(i64, i64, Vec<Change>)>,
}

struct Loaded {
    patient: Patient,
    sources: Vec<SourcePart>,
    links: Vec<LinkView>,
    audit: Vec<AuditEntry>,
}

/// A difference between two versions of a regimen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// added, removed or changed.
    pub what: &'static str,
    pub drug: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The drug an item is, for comparing versions: its NDC-11, else its name.
fn key(i: &ItemView) -> String {
    i.ndc11
        .clone()
        .unwrap_or_else(|| i.name.as_deref().unwrap_or("").to_lowercase())
}

fn describe(i: &ItemView) -> String {
    [&i.strength, &i.form, &i.route, &i.sig]
        .into_iter()
        .flatten()
        .cloned()
        .chain(std::iter::once(i.status.clone()))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// What changed from `old` to `new`, among the items in force.
pub fn diff(old: &RegimenView, new: &RegimenView) -> Vec<Change> {
    let index = |r: &RegimenView| -> BTreeMap<String, ItemView> {
        r.items.iter().map(|i| (key(i), i.clone())).collect()
    };
    let (a, b) = (index(old), index(new));
    let name = |i: &ItemView| i.name.clone().unwrap_or_else(|| key(i));
    let mut out = Vec::new();
    for (k, i) in &a {
        match b.get(k) {
            None => out.push(Change {
                what: "removed",
                drug: name(i),
                before: Some(describe(i)),
                after: None,
            }),
            Some(j) if describe(i) != describe(j) => out.push(Change {
                what: "changed",
                drug: name(j),
                before: Some(describe(i)),
                after: Some(describe(j)),
            }),
            Some(_) => {}
        }
    }
    for (k, j) in &b {
        if !a.contains_key(k) {
            out.push(Change {
                what: "added",
                drug: name(j),
                before: None,
                after: Some(describe(j)),
            });
        }
    }
    out
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<PatientQuery>,
) -> Response {
    let Ok(patient) = PatientId::parse(&id) else {
        return error_page(
            Some(&viewer),
            AppError::not_found(format!("no patient {id:?}")),
        );
    };
    let found = state
        .store(move |s| {
            let Some(p) = s.patient(&patient)? else {
                return Ok(None);
            };
            let mut sources = Vec::new();
            for source in s.regimen_sources(&patient)? {
                let chosen = q.source.as_deref() == Some(source.as_str());
                let version = if chosen { q.version } else { None };
                let shown = s.regimen(&patient, &source, version)?;
                let compared = match (chosen, q.from, q.to) {
                    (true, Some(from), Some(to)) => {
                        match (
                            s.regimen(&patient, &source, Some(from))?,
                            s.regimen(&patient, &source, Some(to))?,
                        ) {
                            (Some(a), Some(b)) => Some((from, to, diff(&a, &b))),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                sources.push(SourcePart {
                    history: s.regimen_history(&patient, Some(&source))?,
                    source,
                    shown,
                    compared,
                });
            }
            Ok(Some(Loaded {
                links: s.links(Some(&patient))?,
                audit: s.audit_trail(&patient, AUDIT_LIMIT)?,
                patient: p,
                sources,
            }))
        })
        .await;
    match found {
        Ok(Some(l)) => {
            let forms = super::consent::link_forms(&state, &viewer, &l.patient.id);
            render(StatusCode::OK, patient_page(&viewer, &l, forms))
        }
        Ok(None) => error_page(
            Some(&viewer),
            AppError::not_found(format!("no patient {id:?}")),
        ),
        Err(e) => error_page(Some(&viewer), e),
    }
}

fn patient_page(viewer: &Viewer, l: &Loaded, link_forms: Markup) -> Markup {
    let p = &l.patient;
    layout(
        &format!("Patient {}", p.id),
        Some(viewer),
        html! {
            p { (p.name.as_deref().unwrap_or("")) @if let Some(b) = &p.birth_date { ", born " (b) } @if let Some(m) = &p.mrn { ", MRN " (m) } }
            @if l.sources.len() > 1 { p { a #reconciled href=(format!("{}/reconciled", super::queue::patient_link(&p.id))) { "Reconciled list across " (l.sources.len()) " sources" } } }
            @if l.sources.is_empty() { p { "No regimen yet." } }
            @for part in &l.sources { (source_part(&p.id, part)) }
            h2 { "Links" }
            (links(&l.links))
            (link_forms)
            h2 { "Audit trail" }
            ol #audit {
                @for a in &l.audit {
                    li data-action=(a.action) {
                        (time(&a.at)) ": " (audit_sentence(a)) "."
                        @if let Some(id) = a.subject.as_deref().and_then(|s| s.strip_prefix("exception/")) {
                            " " a href=(format!("/exceptions/{id}")) { "Open exception #" (id) }
                        }
                        @if let Some(d) = &a.detail {
                            details { summary { "Details" } pre { (pretty_json(d)) } }
                        }
                    }
                }
            }
        },
    )
}

fn source_part(patient: &str, part: &SourcePart) -> Markup {
    let base = super::queue::patient_link(patient);
    let with = |extra: &str| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("source", &part.source);
        format!("{base}?{}&{extra}", s.finish())
    };
    html! {
        section.source data-source=(part.source) {
            h2 { "Regimen from " (part.source) }
            @if let Some(r) = &part.shown {
                p {
                    "Version " (r.version) " — "
                    span class=(format!("badge regimen-status {}", r.status)) id=(format!("status-{}", part.source)) data-status=(r.status) { (status_text(&r.status)) }
                    " — " (r.open_exceptions) " open exception(s), created " (time(&r.created_at))
                    @if let Some(at) = &r.reviewed_at { ", reviewed " (time(at)) }
                }
                @for f in &r.flags { p.error { "Regimen flag: " (f) } }
                table.regimen {
                    tr { th { "#" } th { "drug" } th { "NDC-11" } th { "strength" } th { "form" } th { "route" } th { "sig" } th { "status" } th { "exceptions" } }
                    @for i in &r.items { (item_row(i, false)) }
                    @for i in &r.removed_items { (item_row(i, true)) }
                }
            }
            h3 { "Versions" }
            table.history {
                tr { th { "version" } th { "status" } th { "items" } th { "open" } th { "created" } }
                @for h in &part.history {
                    tr { td { a href=(with(&format!("version={}", h.version))) { (h.version) } } td { (status_text(&h.status)) } td { (h.items) } td { (h.open_exceptions) } td { (time(&h.created_at)) } }
                }
            }
            @if part.history.len() > 1 {
                form.filters method="get" action=(base) {
                    input type="hidden" name="source" value=(part.source);
                    label { "Compare version " (version_select("from", &part.history, 1)) }
                    label { " with " (version_select("to", &part.history, 0)) }
                    button type="submit" { "Compare" }
                }
            }
            @if let Some((from, to, changes)) = &part.compared {
                h3 { "From version " (from) " to " (to) }
                @if changes.is_empty() { p { "No change in the items in force." } }
                table.diff {
                    tr { th { "" } th { "drug" } th { "before" } th { "after" } }
                    @for c in changes { tr { td { (c.what) } td { (c.drug) } td { (c.before.as_deref().unwrap_or("")) } td { (c.after.as_deref().unwrap_or("")) } } }
                }
            }
        }
    }
}

fn version_select(name: &str, history: &[RegimenSummary], pick: usize) -> Markup {
    html! {
        select name=(name) {
            @for (n, h) in history.iter().enumerate() {
                option value=(h.version) selected[n == pick] { (h.version) }
            }
        }
    }
}

fn item_row(i: &ItemView, removed: bool) -> Markup {
    html! {
        tr id=(format!("item-{}", i.id)) class=[removed.then_some("removed")] {
            td { (i.position) }
            td { (i.name.as_deref().unwrap_or("")) @if removed { " (removed)" } }
            td { (i.ndc11.as_deref().unwrap_or("—")) @if i.mapping.is_some() { " (mapped)" } @if i.ndc_inferred { " (inferred)" } }
            td { (i.strength.as_deref().unwrap_or("")) }
            td { (i.form.as_deref().unwrap_or("")) }
            td { (i.route.as_deref().unwrap_or("")) }
            td { (i.sig.as_deref().unwrap_or("")) }
            td { (status_text(&i.status)) @if i.evidence == "claim" { " (claims only)" } }
            td { @for f in &i.exceptions { a href=(format!("/exceptions/{}", f.id)) { (kind_text(&f.kind)) " (" (state_text(f.state.as_str())) ")" } " " } }
        }
    }
}

/// An audit record's detail, indented when it is JSON.
fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_string())
}

/// The links table; a link that needs re-linking says so in words.
pub fn links(links: &[LinkView]) -> Markup {
    html! {
        @if links.is_empty() { p { "No provider links." } }
        @else {
            table.links {
                tr { th { "link" } th { "provider" } th { "state" } th { "last sync" } th { "consent ends" } th { "note" } }
                @for l in links {
                    tr data-link=(l.id) {
                        td { (l.id) } td { (l.provider) }
                        td { span class=(format!("badge {}", l.state)) { (status_text(l.state.as_str())) } }
                        td { @if let Some(t) = l.last_sync { (time_at(t)) } @else { "never" } " " (l.last_outcome.map(|o| status_text(o.as_str())).unwrap_or_default()) }
                        td.grant { @if let Some(t) = l.grant_expires_at { (time_at(t)) } @else { "not said" } }
                        td { (link_note(l)) }
                    }
                }
            }
        }
    }
}

/// What a link's state means for people.
pub fn link_note(l: &LinkView) -> String {
    match l.state {
        LinkState::NeedsRelink => format!(
            "Needs re-linking: the provider no longer accepts rxsync's authorization{}. No new medication lists arrive from {} until the patient authorizes again and an admin runs: rxsync link add --patient {} --provider {} < tokens.json",
            l.state_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            l.provider,
            l.patient,
            l.provider
        ),
        LinkState::Held => format!(
            "Held: the account at {} may not be this patient's{}. Nothing is imported from it until a clinician confirms or rejects the link (its identity_mismatch exception, or: rxsync link confirm {} --by NAME --note TEXT).",
            l.provider,
            l.remote_identity
                .as_ref()
                .map(|r| {
                    let ids: Vec<String> = r
                        .identity
                        .identifiers
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect();
                    format!(" (remote identity: {})", ids.join(", "))
                })
                .unwrap_or_default(),
            l.id
        ),
        LinkState::Revoked => format!(
            "Revoked{}.",
            l.state_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        LinkState::Active => l.last_error.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ndc: Option<&str>, name: &str, sig: &str) -> ItemView {
        ItemView {
            id: 0,
            position: 0,
            ndc11: ndc.map(str::to_string),
            ndc_original: None,
            ndc_inferred: false,
            name: Some(name.to_string()),
            brand: None,
            codes: vec![],
            ingredient_codes: vec![],
            strength: None,
            form: None,
            route: None,
            dose: None,
            frequency: None,
            sig: Some(sig.to_string()),
            status: "active".into(),
            status_original: None,
            start: None,
            stop: None,
            prescribed: None,
            prescriber: None,
            evidence: "record".into(),
            days_supply: None,
            quantity: None,
            dispenser: None,
            section: None,
            flags: vec![],
            exceptions: vec![],
            mapping: None,
            product: None,
            sources: serde_json::Value::Null,
            removed: None,
        }
    }

    fn regimen(items: Vec<ItemView>) -> RegimenView {
        RegimenView {
            patient: "p".into(),
            version: 1,
            status: "needs_review".into(),
            source: "s".into(),
            id: 1,
            created_at: String::new(),
            reviewed_at: None,
            document_id: 1,
            items,
            removed_items: vec![],
            flags: vec![],
            open_exceptions: 0,
        }
    }

    #[test]
    fn versions_differ_by_added_removed_and_changed_drugs() {
        let old = regimen(vec![
            item(Some("00006010654"), "Lisinopril", "once daily"),
            item(None, "Warfarin", "daily"),
        ]);
        let new = regimen(vec![
            item(Some("00006010654"), "Lisinopril", "twice daily"),
            item(Some("00087606005"), "Metformin", "with meals"),
        ]);
        let d = diff(&old, &new);
        let got: Vec<(&str, &str)> = d.iter().map(|c| (c.what, c.drug.as_str())).collect();
        assert_eq!(
            got,
            [
                ("changed", "Lisinopril"),
                ("removed", "Warfarin"),
                ("added", "Metformin")
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }
}
