//! The review work both the pages and the JSON API do: read an exception
//! with everything a decision needs, search the dictionary, read the
//! queue's filter, and apply a decision through the store (the functions
//! `rxsync queue` uses). It renders nothing: `pages` draws HTML from it and
//! `api` answers JSON, and neither imports the other.

use super::AppState;
use super::error::AppError;
use crate::dict::DictEntry;
use crate::domain::ndc;
use crate::domain::{Decision, ExceptionKind, ExceptionState};
use crate::store::{
    DecisionView, ExceptionFilter, ExceptionView, ItemView, Resolve, Store, StoreError,
};
use serde::Deserialize;

/// Dictionary search results shown at most.
pub const SEARCH_LIMIT: usize = 25;

/// An empty optional text from a form or query is no value.
pub fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Everything an exception's review shows, read in one go.
pub struct Loaded {
    pub view: ExceptionView,
    pub item: Option<ItemView>,
    pub excerpt: Option<String>,
    pub decisions: Vec<DecisionView>,
    /// Why the decision cannot be reversed (None: it can, or it is open).
    pub final_because: Option<String>,
    /// The other item of a duplicate pair, in full.
    pub related: Option<ItemView>,
    /// The sources of `item` and `related`: the same for a duplicate, two
    /// for a `source_conflict`, whose sides the page names by them.
    pub sources: [Option<String>; 2],
}

/// Reads an exception with its item, excerpt and decisions.
pub fn load(s: &mut Store, id: i64) -> Result<Loaded, StoreError> {
    let (view, item) = s.exception(id)?;
    let excerpt = crate::excerpt::exception_excerpt(s, id, item.as_ref().map(|i| i.id))?;
    let final_because = if view.state == ExceptionState::Open {
        None
    } else {
        s.reopen_refusal(id)?
    };
    let related = match &view.related_item {
        Some(r) => s.item(r.id)?,
        None => None,
    };
    let source_of = |i: &Option<ItemView>| i.as_ref().map(|i| s.item_source(i.id)).transpose();
    let sources = [source_of(&item)?.flatten(), source_of(&related)?.flatten()];
    Ok(Loaded {
        related,
        sources,
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

/// The queue's filters, as the filter form and the API's query send them.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct QueueQuery {
    pub kind: Option<String>,
    /// open (default), resolved, dismissed or all.
    pub state: Option<String>,
    pub source: Option<String>,
    pub patient: Option<String>,
    /// 1-based.
    pub page: Option<usize>,
}

impl QueueQuery {
    /// The filter as query-string pairs (the given ones only, page aside),
    /// so a page reached from the queue can carry it on.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("kind", given(&self.kind)),
            ("state", given(&self.state)),
            ("source", given(&self.source)),
            ("patient", given(&self.patient)),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
    }

    /// `pairs` as a query string (empty, or starting with `&`).
    pub fn carried(&self) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs() {
            url.append_pair(k, v);
        }
        let q = url.finish();
        if q.is_empty() { q } else { format!("&{q}") }
    }
}

/// The next open exceptions after `id`: of the same patient, and of the
/// queue filter the user came from (always among open ones).
pub fn next_open(
    s: &Store,
    id: i64,
    patient: &str,
    from: &QueueQuery,
) -> Result<(Option<i64>, Option<i64>), AppError> {
    let of_patient = ExceptionFilter {
        patient: Some(patient.to_string()),
        ..Default::default()
    };
    let of_queue = filter_of(from)?;
    Ok((
        s.next_open_exception(&of_patient, id)?,
        s.next_open_exception(&of_queue, id)?,
    ))
}

/// The filter a query asks for (kind and state checked).
pub fn filter_of(q: &QueueQuery) -> Result<ExceptionFilter, AppError> {
    let state = match given(&q.state).unwrap_or("open") {
        "all" => None,
        s => Some(
            s.parse::<ExceptionState>()
                .map_err(|e| AppError::bad_request(format!("state: {e} or all")))?,
        ),
    };
    let kind = given(&q.kind)
        .map(str::parse::<ExceptionKind>)
        .transpose()
        .map_err(|e| AppError::bad_request(format!("kind: {e}")))?;
    Ok(ExceptionFilter {
        state,
        kind,
        patient: given(&q.patient).map(str::to_string),
        source: given(&q.source).map(str::to_string),
        limit: None,
        offset: 0,
    })
}

/// Applies a decision through the store, as `by`. A rejected held link is
/// then revoked at its provider when this server holds the vault key
/// (`Puller::resolve_exception`); without it, its reason says the provider
/// was not told.
pub async fn apply(
    state: &AppState,
    id: i64,
    by: &str,
    decision: Decision,
    note: Option<&str>,
) -> Result<ExceptionView, AppError> {
    let resolve = Resolve {
        decision,
        by: by.to_string(),
        note: note
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
    };
    if let Some((puller, writer)) = state.revoker() {
        // A rejected link's provider is told, as `link reject` tells it.
        return Ok(puller.resolve_exception(writer, id, resolve).await?.view);
    }
    let reject = matches!(resolve.decision, Decision::Reject { .. });
    state
        .store(move |s| {
            let held = match reject {
                true => s.held_link_of_exception(id)?,
                false => None,
            };
            let view = s.resolve_exception(id, &resolve)?;
            if let Some(link) = held {
                s.record_rejection_told(link.view.id, &resolve.by, NOT_TOLD)?;
            }
            Ok(view)
        })
        .await
}

/// A rejected link's reason when this server cannot tell the provider.
const NOT_TOLD: &str =
    "this server holds no vault key: the provider was not told; the tokens were dropped here only";
