//! Admin pages: every link (relink instructions, revoke) and the users
//! (disable). Reached only through `require_admin`.
//!
//! Revoking here tells the provider first (RFC 7009, `Puller::tell_provider`,
//! as `rxsync link revoke` does) when the server holds the vault key (`rxsync
//! serve` started with it), then marks the link revoked in the store and
//! drops its sealed tokens (`Store::revoke_link`). Without the key, or when
//! the provider cannot revoke, the link is revoked here all the same and the
//! link's reason — shown on the page — says the provider was not told.

use super::patient::{link_note, links as links_table};
use super::{csrf_field, error_page, layout, render};
use crate::domain::{LinkId, LinkState};
use crate::store::{LinkView, UserName, UserView};
use crate::web::AppState;
use crate::web::auth::Viewer;
use crate::web::error::AppError;
use axum::extract::{Extension, Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

pub async fn links_page(state: &AppState, viewer: &Viewer) -> Response {
    let found: Result<Vec<LinkView>, AppError> = state.store(|s| s.links(None)).await;
    let all = match found {
        Ok(l) => l,
        Err(e) => return error_page(Some(viewer), e),
    };
    render(
        StatusCode::OK,
        layout(
            "Provider links",
            Some(viewer),
            html! {
                p { "To link or re-link a patient, the patient authorizes rxsync at the provider; an admin then stores the tokens with "
                    code { "rxsync link add --patient ID --provider ID < tokens.json" } "." }
                p { "Revoking here stops rxsync from using the link and deletes its tokens, and tells the provider (RFC 7009) where it can. " @if state.revoker().is_none() { "This server holds no vault key, so it cannot tell the provider: to also revoke the grant at the provider, run " code { "rxsync link revoke LINK" } " instead." } @else { "Whether the provider was told is shown in the link's state." } }
                (links_table(&all))
                h2 { "Revoke a link" }
                table {
                    tr { th { "link" } th { "patient" } th { "provider" } th { "state" } th { "" } }
                    @for l in &all {
                        tr {
                            td { (l.id) }
                            td { a href=(super::queue::patient_link(&l.patient)) { (l.patient) } }
                            td { (l.provider) }
                            td { (l.state) " " (link_note(l)) }
                            td { @if l.state != LinkState::Revoked {
                                form.inline method="post" action=(format!("/admin/links/{}/revoke", l.id)) {
                                    (csrf_field(viewer))
                                    label { "Reason " input type="text" name="reason" required; }
                                    button type="submit" { "Revoke" }
                                }
                            } }
                        }
                    }
                }
            },
        ),
    )
}

pub async fn links(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    links_page(&state, &viewer).await
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    pub reason: Option<String>,
}

pub async fn revoke_link(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Response {
    let id = match LinkId::parse(&id) {
        Ok(id) => id,
        Err(e) => {
            return error_page(
                Some(&viewer),
                AppError::bad_request(format!("/admin/links/{id}/revoke: {e}")),
            );
        }
    };
    let Some(reason) = form
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
    else {
        return error_page(
            Some(&viewer),
            AppError::bad_request("revoking needs a reason"),
        );
    };
    let by = viewer.user.name.clone();
    let told = match state.revoker() {
        Some((puller, writer)) => {
            let link = state.store(move |s| s.peek_link(id)).await;
            match link {
                Ok(Some(link)) if link.view.state != LinkState::Revoked => {
                    puller.tell_provider(writer, &link).await
                }
                // Not found or revoked already: the store says which.
                Ok(_) => String::new(),
                Err(e) => return error_page(Some(&viewer), e),
            }
        }
        None => "this server holds no vault key: the provider was not told; the tokens were dropped here only".to_string(),
    };
    let reason = match told.is_empty() {
        true => format!("revoked in the review UI: {reason}"),
        false => format!("revoked in the review UI: {reason}; {told}"),
    };
    match state.store(move |s| s.revoke_link(id, &by, &reason)).await {
        Ok(_) => Redirect::to("/admin/links").into_response(),
        Err(e) => error_page(Some(&viewer), e),
    }
}

pub async fn users(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let found: Result<Vec<UserView>, AppError> = state.store(|s| s.users()).await;
    let all = match found {
        Ok(u) => u,
        Err(e) => return error_page(Some(&viewer), e),
    };
    render(
        StatusCode::OK,
        layout(
            "Users",
            Some(&viewer),
            html! {
                p { "Add users with " code { "rxsync user add --name NAME --role clinician|admin" } "; API tokens with " code { "rxsync token create --user NAME" } "." }
                table #users {
                    tr { th { "name" } th { "role" } th { "created" } th { "state" } th { "" } }
                    @for u in &all {
                        tr {
                            td { (u.name) } td { (u.role) } td { (u.created_at) }
                            td { @match &u.disabled_at { Some(at) => { "disabled " (at) }, None => "active" } }
                            td { @if u.disabled_at.is_none() && u.name != viewer.user.name {
                                form.inline method="post" action=(format!("/admin/users/{}/disable", u.name)) {
                                    (csrf_field(&viewer))
                                    button type="submit" { "Disable" }
                                }
                            } }
                        }
                    }
                }
            },
        ),
    )
}

pub async fn disable_user(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    let Ok(name) = UserName::parse(&name) else {
        return error_page(Some(&viewer), AppError::not_found("no such user"));
    };
    if name.as_str() == viewer.user.name {
        return error_page(
            Some(&viewer),
            AppError::bad_request("you cannot disable yourself (another admin can)"),
        );
    }
    let by = viewer.user.name.clone();
    match state.store(move |s| s.disable_user(&name, &by)).await {
        Ok(_) => Redirect::to("/admin/users").into_response(),
        Err(e) => error_page(Some(&viewer), e),
    }
}
