//! Linking an account in the browser: the patient's side (`GET` and `POST
//! /invite/{token}`, `GET /oauth/callback`, all without a session: the
//! patient has no rxsync account) and the clinician's side on the patient
//! page (`POST /patients/{id}/link`, `POST /patients/{id}/invite`).
//!
//! The work is the consent engine's (`consent::begin`, `consent::complete`)
//! and the puller's (the first pull), through the app's `Linking`. The
//! patient's pages speak plainly: what happened and what to do next — never
//! an error code, a state, a token, an exception kind or a stack of causes
//! (those go to the audit and the server log).

use super::{Viewer, error_page, layout, render};
use crate::consent::{self, ConsentError, invite};
use crate::domain::PatientId;
use crate::store::{InvitationLookup, ItemView, NewInvitation, OpenedInvitation, StoreError};
use crate::web::AppState;
use crate::web::auth;
use crate::web::error::AppError;
use crate::web::labels::time;
use axum::extract::{Extension, Form, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::time::Duration;

/// The audit actor of what a patient's browser does.
const PATIENT: &str = "patient";

/// A page for the patient, in the shared frame without navigation.
fn patient_page(status: StatusCode, title: &str, body: Markup) -> Response {
    render(status, layout(title, None, body))
}

/// The page for a request this installation cannot serve (no `public_url`).
fn not_offered() -> Response {
    patient_page(
        StatusCode::NOT_FOUND,
        "Linking is not available",
        html! { p { "This address does not link accounts. Please ask your care team for help." } },
    )
}

/// A problem at our end or the provider's, in words for the patient.
fn trouble(status: StatusCode) -> Response {
    patient_page(
        status,
        "Something went wrong",
        html! {
            p #outcome data-outcome="trouble" { "We could not finish linking your account because of a technical problem. Nothing was linked." }
            p { "Please try again later, or ask your care team for a new invitation." }
        },
    )
}

/// A 303 to where the browser goes next.
fn see_other(url: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response()
}

/// What an invitation's form is signed for: that invitation alone.
fn form_purpose(token_sha256: &str) -> String {
    format!("invitation {token_sha256}")
}

/// Looks the invitation up (spending nothing; a refusal is audited at `step`).
async fn look_up(
    linking: &crate::web::Linking,
    token: &str,
    step: &'static str,
) -> Result<InvitationLookup, StoreError> {
    let hash = invite::token_sha256(token);
    if invite::plausible_token(token) {
        linking
            .writer
            .run(move |s| s.look_up_invitation(&hash, PATIENT, step))
            .await
    } else {
        Ok(InvitationLookup::Unknown)
    }
}

/// The page for an invitation that cannot be used, in the patient's words.
fn refused_invitation(found: Result<InvitationLookup, StoreError>) -> Response {
    match found {
        Ok(InvitationLookup::Live(_)) | Ok(InvitationLookup::Unknown) => patient_page(
            StatusCode::NOT_FOUND,
            "This invitation is not valid",
            html! {
                p #outcome data-outcome="unknown" { "We do not recognise this invitation link. Please check that you opened the whole link, or ask your care team for a new one." }
            },
        ),
        Ok(InvitationLookup::Used) => patient_page(
            StatusCode::GONE,
            "This invitation was already used",
            html! {
                p #outcome data-outcome="used" { "An invitation link works only once, and this one has been used. If your account is not linked yet, please ask your care team for a new invitation." }
            },
        ),
        Ok(InvitationLookup::Expired) => patient_page(
            StatusCode::GONE,
            "This invitation has expired",
            html! {
                p #outcome data-outcome="expired" { "This invitation link is too old to use. Please ask your care team for a new invitation." }
            },
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot read an invitation");
            trouble(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// How a provider's consent runs: OAuth 2.0 with its resolved client, or
/// the OAuth 1.0a three-legged flow (whose endpoints are configured).
enum Way {
    Oauth2(Box<consent::ConsentClient>),
    Oauth1,
}

impl Way {
    /// The provider's authorization endpoint, where the invitation's form
    /// answer sends the browser (the page's CSP must allow it).
    fn authorize_url(&self, provider: &crate::config::Provider) -> Option<url::Url> {
        match self {
            Way::Oauth2(resolved) => Some(resolved.authorize_url.clone()),
            Way::Oauth1 => consent::oauth1::oauth1_consent_settings(provider)
                .ok()
                .map(|(_, c)| c.authorize_url.clone()),
        }
    }
}

/// The live invitation a request names, its provider and how that
/// provider's consent runs, or the page that says why not.
async fn live_invitation<'s>(
    linking: &'s crate::web::Linking,
    token: &str,
    step: &'static str,
) -> Result<(OpenedInvitation, &'s crate::config::Provider, Way), Response> {
    let invitation = match look_up(linking, token, step).await {
        Ok(InvitationLookup::Live(i)) => i,
        other => return Err(refused_invitation(other)),
    };
    let Some(provider) = linking.provider(invitation.provider.as_str()) else {
        tracing::error!(invitation = %invitation.id, provider = %invitation.provider, "the invitation's provider is no longer configured");
        return Err(trouble(StatusCode::SERVICE_UNAVAILABLE));
    };
    match way(linking, provider).await {
        Ok(way) => Ok((invitation, provider, way)),
        Err(e) => {
            tracing::error!(invitation = %invitation.id, error = %e, "cannot resolve the invitation's consent client");
            Err(trouble(StatusCode::SERVICE_UNAVAILABLE))
        }
    }
}

/// `GET /invite/{token}`: what the invitation is for, in the patient's
/// words, and a *Continue to PROVIDER* button. Spends nothing: a mail
/// scanner or a link preview fetching the URL leaves it usable. The button
/// posts a form signed for this invitation and this browser (a
/// `SameSite=Strict` cookie nonce and the server's HMAC of it, as the login
/// form is), and the page's CSP lets that form's answer go on to the
/// provider's authorization endpoint.
pub async fn show_invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(linking) = state.linking() else {
        return not_offered();
    };
    let (invitation, provider, way) = match live_invitation(linking, &token, "look").await {
        Ok(l) => l,
        Err(page) => return page,
    };
    let name = provider.id.as_str();
    let (nonce, field) = auth::form_token(
        state.login_key(),
        &form_purpose(&invite::token_sha256(&token)),
        auth::cookie(&headers, auth::INVITE_COOKIE),
    );
    let mut page = patient_page(
        StatusCode::OK,
        &format!("Link your account at {name}"),
        html! {
            p #outcome data-outcome="invited" { "Your care team invites you to link your account at " (name) ", so that they can see the medicines " (name) " has on record for you." }
            h2 { "What will be shared" }
            ul #shared {
                li { "The medicines " (name) " has on record for you: their names, how to take them and whether you still take them." }
                @if provider.identity.is_some() {
                    li { "So we can make sure the account is yours: your name, your date of birth and the number " (name) " knows you by." }
                }
            }
            h2 { "What happens next" }
            p { "You will sign in at " (name) " and choose whether to allow this. Nothing is shared until you do, and you can say no." }
            p { "This invitation works once, until " (time(&invitation.expires_at)) "." }
            // Relative: the page's own URL, under `public_url`'s path
            // (behind a proxy it need not be `/`). The token is plausible
            // (letters, digits, `-`, `_`), or the page would not be here.
            form method="post" action=(token) {
                input type="hidden" name="invite_csrf" value=(field);
                button #continue type="submit" { "Continue to " (name) }
            }
        },
    );
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(
        &state,
        auth::INVITE_COOKIE,
        &nonce,
        Duration::from_secs(3600),
    )) {
        page.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Some(target) = way.authorize_url(provider) {
        page.extensions_mut().insert(super::FormTarget(target));
    }
    page
}

/// The *Continue* form of an invitation's page.
#[derive(Deserialize)]
pub struct ContinueForm {
    #[serde(default)]
    invite_csrf: String,
}

/// `POST /invite/{token}` (the page's *Continue*): spends the invitation,
/// starts its consent and remembers the flow on it — one store
/// transaction (`invite::accept`) — and sends the browser (303) to the
/// provider. A form not signed for this invitation and this browser (a
/// post from another site, a stale page) starts nothing.
pub async fn accept_invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ContinueForm>,
) -> Response {
    let Some(linking) = state.linking() else {
        return not_offered();
    };
    let hash = invite::token_sha256(&token);
    if !auth::form_ok(
        state.login_key(),
        &headers,
        auth::INVITE_COOKIE,
        &form_purpose(&hash),
        &form.invite_csrf,
    ) {
        return patient_page(
            StatusCode::FORBIDDEN,
            "Please open your invitation again",
            html! {
                p #outcome data-outcome="stale" { "This page is out of date, or it was not opened from your invitation link, so nothing was started." }
                p { "Please open the invitation link you were sent again and press the button there." }
            },
        );
    }
    let (invitation, provider, way) = match live_invitation(linking, &token, "accept").await {
        Ok(l) => l,
        Err(page) => return page,
    };
    let actor = format!("{PATIENT} (invitation {})", invitation.id);
    let accepted = match way {
        Way::Oauth2(resolved) => {
            invite::accept(
                &linking.writer,
                linking.puller.key(),
                provider,
                &resolved,
                &invitation,
                &hash,
                &linking.public.callback(),
                &actor,
            )
            .await
        }
        Way::Oauth1 => match linking.puller.client(provider.id.as_str()) {
            Some(client) => {
                let env = linking.puller.env();
                invite::accept_oauth1(
                    &linking.writer,
                    linking.puller.key(),
                    provider,
                    client.inner(),
                    &**env,
                    &invitation,
                    &hash,
                    &linking.public.callback(),
                    &actor,
                )
                .await
            }
            None => Err(no_client(provider)),
        },
    };
    match accepted {
        Ok(invite::Acceptance::Started(started)) => see_other(started.url.as_str()),
        Ok(invite::Acceptance::Refused(found)) => refused_invitation(Ok(found)),
        Err(e) => {
            tracing::error!(invitation = %invitation.id, error = %e, "cannot start the invitation's consent");
            trouble(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// `GET /oauth/callback`: the provider sends the browser back here; the
/// consent is finished, the link stored, its first pull run, and the
/// patient shown the result.
pub async fn callback(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let Some(linking) = state.linking() else {
        return not_offered();
    };
    let query = query.unwrap_or_default();
    // OAuth 2.0 names its flow by `state`; an OAuth 1.0a callback carries
    // no state, and names its flow by the request token (`oauth_token`).
    // Exactly one of them, each parameter once: the flow checked here is
    // then the flow the protocol's completion takes, and the invitation
    // ended below is that flow's.
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let count = |name: &str| pairs.iter().filter(|(k, _)| k == name).count();
    let repeated = ["state", "oauth_token", "oauth_verifier", "code", "error"]
        .iter()
        .any(|n| count(n) > 1);
    let (named_by, state_param) = match (count("state"), count("oauth_token")) {
        (1, 0) => ("state", pairs.iter().find(|(k, _)| k == "state")),
        (0, 1) => (
            "oauth_token",
            pairs.iter().find(|(k, _)| k == "oauth_token"),
        ),
        _ => ("", None),
    };
    let state_param = state_param
        .filter(|_| !repeated)
        .map(|(_, v)| consent::authorize::state_sha256(v));
    let has_state = state_param.is_some();
    let found = match state_param {
        Some(hash) => state.store(move |s| s.consent_flow_by_state(&hash)).await,
        None => Ok(None),
    };
    // A flow started for another redirect URI (`link start`'s loopback
    // listener) is not finished here: it is left for its own callback.
    let callback_uri = linking.public.callback().to_string();
    let (flow, provider_id) = match found {
        Ok(Some((flow, provider, redirect))) if redirect == callback_uri => (flow, provider),
        Ok(_) => return stray_callback(linking, has_state).await,
        Err(e) => {
            tracing::error!(error = %e.message, "cannot read the consent flow");
            return trouble(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let Some((provider, client)) = linking
        .provider(&provider_id)
        .zip(linking.puller.client(&provider_id))
    else {
        tracing::error!(provider = %provider_id, "the consent's provider is no longer configured");
        return trouble(StatusCode::SERVICE_UNAVAILABLE);
    };
    let way = way(linking, provider).await;
    // The flow is named the way its protocol names it, or it is not ours:
    // an OAuth 1.0a flow named by a `state` would end its invitation
    // without being taken.
    match (&way, named_by) {
        (Ok(Way::Oauth2(_)), "state") | (Ok(Way::Oauth1), "oauth_token") | (Err(_), _) => {}
        _ => return stray_callback(linking, has_state).await,
    }
    let done = match way {
        Ok(Way::Oauth2(resolved)) => {
            consent::complete(
                &linking.writer,
                linking.puller.key(),
                provider,
                &resolved,
                client.inner(),
                &query,
                PATIENT,
            )
            .await
        }
        Ok(Way::Oauth1) => {
            let env = linking.puller.env();
            consent::oauth1::complete_stored(
                &linking.writer,
                linking.puller.key(),
                provider,
                client.inner(),
                &**env,
                &query,
                PATIENT,
            )
            .await
        }
        Err(e) => Err(e),
    };
    // Only an active link is "linked": the wrong-patient guard may have
    // held it (or something else left it inactive), and then nothing from
    // the store is shown and no pull is run.
    let active = match &done {
        Ok(l) if matches!(l.identity, crate::identity::NewLinkOutcome::Held(_)) => false,
        Ok(l) => {
            let id = l.link;
            match state.store(move |s| s.link(id)).await {
                Ok(Some(v)) => v.state == crate::domain::LinkState::Active,
                Ok(None) => false,
                Err(e) => {
                    tracing::error!(error = %e.message, "cannot read the new link's state");
                    false
                }
            }
        }
        Err(_) => false,
    };
    let (outcome, link) = match &done {
        Ok(l) if active => ("linked", Some(l.link)),
        Ok(l) => ("held", Some(l.link)),
        Err(ConsentError::Denied { .. }) => ("denied", None),
        Err(ConsentError::Replayed { .. }) => ("replayed", None),
        Err(ConsentError::Expired { .. }) => ("expired", None),
        Err(_) => ("failed", None),
    };
    // A replayed callback does not speak for the invitation: the first one did.
    if outcome != "replayed" {
        let flow = flow.clone();
        if let Err(e) = linking
            .writer
            .run(move |s| s.end_invitation_of_flow(&flow, outcome, link, PATIENT))
            .await
        {
            tracing::warn!(error = %e, "cannot record the invitation's end");
        }
    }
    match done {
        Ok(linked) if active => linked_page(&state, provider, linked.link).await,
        Ok(linked) => {
            tracing::warn!(
                link = linked.link.get(),
                "a browser consent's link is held for a check"
            );
            held_page()
        }
        Err(e) => refused_page(provider, &e),
    }
}

/// A callback that names no flow of this app's (none, an unknown one, one
/// for another redirect URI, or named ambiguously): audited, refused.
async fn stray_callback(linking: &crate::web::Linking, has_state: bool) -> Response {
    let detail = serde_json::json!({"route": "/oauth/callback", "has_state": has_state});
    if let Err(e) = linking
        .writer
        .run(move |s| s.audit_stray_callback(PATIENT, &detail))
        .await
    {
        tracing::warn!(error = %e, "cannot audit a stray callback");
    }
    not_ours()
}

/// The link is stored but not active (the wrong-patient guard held it):
/// the patient is told nothing about the list, not even whose it is.
fn held_page() -> Response {
    patient_page(
        StatusCode::ACCEPTED,
        "Thank you",
        html! {
            p #outcome data-outcome="held" { "Thank you. Your care team needs to check this link before your medicines can be shown; nothing more is needed from you now." }
            p { "You can close this page." }
        },
    )
}

/// A callback that names no consent started here.
fn not_ours() -> Response {
    patient_page(
        StatusCode::BAD_REQUEST,
        "This link could not be finished",
        html! {
            p #outcome data-outcome="unknown" { "We could not match this page to an account link you started. Nothing was linked. Please start again from your invitation, or ask your care team for a new one." }
        },
    )
}

/// What went wrong, for the patient; the details go to the log.
fn refused_page(provider: &crate::config::Provider, e: &ConsentError) -> Response {
    let name = provider.id.as_str();
    match e {
        // OAuth 2.0's `access_denied`; OAuth 1.0a providers say
        // `oauth_problem=permission_denied` or `user_refused`.
        ConsentError::Denied { code, .. }
            if matches!(
                code.as_str(),
                "access_denied" | "permission_denied" | "user_refused"
            ) =>
        {
            patient_page(
                StatusCode::FORBIDDEN,
                "Your account was not linked",
                html! {
                    p #outcome data-outcome="denied" { "You did not allow access to your account at " (name) ", so nothing was linked and none of your information was shared." }
                    p { "If you change your mind, ask your care team for a new invitation." }
                },
            )
        }
        ConsentError::Expired { .. } => patient_page(
            StatusCode::GONE,
            "This link took too long",
            html! {
                p #outcome data-outcome="expired" { "Linking your account at " (name) " has to be finished within ten minutes, and this time has passed. Nothing was linked." }
                p { "Please ask your care team for a new invitation and try again." }
            },
        ),
        ConsentError::Replayed { .. } => patient_page(
            StatusCode::GONE,
            "This page was already used",
            html! {
                p #outcome data-outcome="used" { "This answer from " (name) " has already been used once, so it cannot be used again." }
                p { "If your account is not linked yet, please ask your care team for a new invitation." }
            },
        ),
        ConsentError::WrongState | ConsentError::NoState | ConsentError::WrongToken => not_ours(),
        ConsentError::Identity { dropped, .. } => {
            tracing::warn!(provider = name, error = %e, "a browser consent's identity could not be established");
            let revoked = matches!(dropped, Some(consent::Dropped::Revoked));
            patient_page(
                StatusCode::BAD_GATEWAY,
                "Your account was not linked",
                html! {
                    p #outcome data-outcome="identity" { "We could not confirm with " (name) " who you are, so your account was not linked and nothing was kept." }
                    @if revoked {
                        p { "We have asked " (name) " to cancel the access you just gave." }
                    }
                    p { "Please try again later, or ask your care team for help." }
                },
            )
        }
        other => {
            tracing::warn!(provider = name, error = %other, "a browser consent failed");
            patient_page(
                StatusCode::BAD_GATEWAY,
                "Your account was not linked",
                html! {
                    p #outcome data-outcome="provider" { "There was a problem at " (name) " or between " (name) " and us, so your account was not linked." }
                    p { "Please try again later, or ask your care team for a new invitation." }
                },
            )
        }
    }
}

/// The linked page: the first pull, then the list it imported.
async fn linked_page(
    state: &AppState,
    provider: &crate::config::Provider,
    link: crate::domain::LinkId,
) -> Response {
    let Some(linking) = state.linking() else {
        return not_offered();
    };
    let pulled = linking
        .puller
        .pull(&linking.writer, link, crate::domain::Trigger::Pull, PATIENT)
        .await;
    let pulled_ok = match &pulled {
        Ok(r) if !r.failed() => true,
        Ok(r) => {
            tracing::warn!(link = link.get(), outcome = %r.outcome, error = ?r.error, "the first pull after a consent failed");
            false
        }
        Err(e) => {
            tracing::warn!(link = link.get(), error = %e, "the first pull after a consent failed");
            false
        }
    };
    let source = provider.id.to_string();
    let items = state
        .store(move |s| {
            let Some(l) = s.link(link)? else {
                return Ok(None);
            };
            let patient =
                PatientId::parse(&l.patient).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(s.regimen(&patient, &source, None)?.map(|r| r.items))
        })
        .await;
    let items = match items {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e.message, "cannot read the imported list");
            None
        }
    };
    let name = provider.id.as_str();
    patient_page(
        StatusCode::OK,
        &format!("Your account at {name} is linked"),
        html! {
            p #outcome data-outcome="linked" { "Thank you. Your care team can now see the medicines " (name) " has on record for you." }
            @match (&items, pulled_ok) {
                (Some(items), _) if !items.is_empty() => {
                    h2 { "The medicines we received" }
                    table #medications {
                        thead { tr { th { "Medicine" } th { "How to take it" } th { "Status" } } }
                        tbody { @for i in items { (medication_row(i)) } }
                    }
                    p { "Your care team will review this list with you. If something looks wrong, tell them." }
                }
                (_, true) => p #empty { (name) " did not send any medicines for you." }
                (_, false) => p #later { "We could not get your medicine list from " (name) " just now. We will try again; your care team will see it when it arrives." }
            }
            p { "You can close this page." }
        },
    )
}

fn medication_row(i: &ItemView) -> Markup {
    // The name as the provider wrote it usually carries the strength and
    // form already; they stand in only for a nameless item.
    let drug = i.name.clone().unwrap_or_else(|| {
        [i.strength.as_deref(), i.form.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let how = i
        .sig
        .clone()
        .or_else(|| {
            let parts: Vec<&str> = [
                i.dose.as_deref(),
                i.route.as_deref(),
                i.frequency.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        })
        .unwrap_or_else(|| "—".into());
    html! {
        tr.medication {
            td.drug { @if drug.is_empty() { "(a medicine without a name)" } @else { (drug) } }
            td.sig { (how) }
            td.status { (med_status(&i.status)) }
        }
    }
}

/// An item's status in plain words.
fn med_status(code: &str) -> &'static str {
    match code {
        "active" => "Taking",
        "completed" => "Finished",
        "stopped" | "discontinued" | "cancelled" => "Stopped",
        "on_hold" | "on-hold" | "suspended" => "Paused",
        "dispensed" => "Filled at a pharmacy",
        "draft" | "intended" | "planned" => "Planned",
        "never_taken" | "not_taken" => "Not taken",
        _ => "Unknown",
    }
}

/// The clinician's forms name a provider.
#[derive(Deserialize)]
pub struct ProviderForm {
    #[serde(default)]
    provider: String,
}

/// `POST /patients/{id}/link`: a consent for this patient started from the
/// clinician's browser (the patient consents there), back at
/// `/oauth/callback`; answers a page whose link goes to the provider.
pub async fn start_link(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<ProviderForm>,
) -> Response {
    let (linking, provider, patient) = match chosen(&state, &viewer, &id, &form).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let started = match way(linking, provider).await {
        Ok(Way::Oauth2(resolved)) => {
            consent::begin(
                &linking.writer,
                linking.puller.key(),
                provider,
                &resolved,
                &patient,
                &linking.public.callback(),
                &viewer.user.name,
            )
            .await
        }
        Ok(Way::Oauth1) => match linking.puller.client(provider.id.as_str()) {
            Some(client) => {
                let env = linking.puller.env();
                consent::oauth1::begin(
                    &linking.writer,
                    linking.puller.key(),
                    provider,
                    &patient,
                    client.inner(),
                    &**env,
                    &linking.public.callback(),
                    &viewer.user.name,
                )
                .await
                .map(|s| consent::Started {
                    flow: s.flow.clone(),
                    url: s.url.clone(),
                    expires_at: s.expires_at,
                })
            }
            None => Err(no_client(provider)),
        },
        Err(e) => Err(e),
    };
    // A page with a link, not a redirect: the pages' CSP allows forms to
    // post to this origin only (`form-action 'self'`), and browsers apply
    // that to where a form's answer redirects too.
    match started {
        Ok(s) => render(
            StatusCode::OK,
            layout(
                &format!("Link an account at {}", provider.id),
                Some(&viewer),
                html! {
                    p { "The patient signs in at " (provider.id.as_str()) " and allows access; this browser then comes back here and shows the medicines imported. The link below works once, for ten minutes." }
                    p { a #continue href=(s.url.as_str()) { "Continue to " (provider.id.as_str()) } }
                },
            ),
        ),
        Err(e) => error_page(Some(&viewer), AppError::internal(e)),
    }
}

/// `POST /patients/{id}/invite`: makes an invitation and shows its URL,
/// this once.
pub async fn make_invitation(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<ProviderForm>,
) -> Response {
    let (linking, provider, patient) = match chosen(&state, &viewer, &id, &form).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let fresh = invite::fresh(&linking.public, invite::DEFAULT_LIFETIME);
    let expires_at = crate::store::rfc3339_at(fresh.expires_at);
    let (fid, hash, p, prov, exp, actor) = (
        fresh.id.clone(),
        fresh.token_sha256.clone(),
        patient.clone(),
        provider.id.clone(),
        expires_at.clone(),
        viewer.user.name.clone(),
    );
    let made = linking
        .writer
        .run(move |s| {
            s.make_invitation(
                &NewInvitation {
                    id: &fid,
                    token_sha256: &hash,
                    patient: &p,
                    provider: &prov,
                    expires_at: &exp,
                },
                &actor,
            )
        })
        .await;
    if let Err(e) = made {
        return error_page(Some(&viewer), AppError::internal(e));
    }
    let back = super::queue::patient_link(patient.as_str());
    render(
        StatusCode::OK,
        layout(
            "Invitation",
            Some(&viewer),
            html! {
                p { "Give this link to patient " (patient.as_str()) " to link their account at " (provider.id.as_str()) ". It works once, until " (time(&expires_at)) ". It is shown only now: rxsync keeps no copy of it." }
                p { input #invitation-url type="text" readonly value=(fresh.url.expose_secret()) size="80"; }
                p { a href=(back) { "Back to the patient" } }
            },
        ),
    )
}

/// The linking, provider and patient a clinician's form names, or the error page.
async fn chosen<'s>(
    state: &'s AppState,
    viewer: &Viewer,
    id: &str,
    form: &ProviderForm,
) -> Result<
    (
        &'s crate::web::Linking,
        &'s crate::config::Provider,
        PatientId,
    ),
    Response,
> {
    let Some(linking) = state.linking() else {
        return Err(error_page(
            Some(viewer),
            AppError::not_found(
                "linking in the browser needs [review] public_url in the configuration",
            ),
        ));
    };
    let Ok(patient) = PatientId::parse(id) else {
        return Err(error_page(
            Some(viewer),
            AppError::not_found(format!("no patient {id:?}")),
        ));
    };
    let Some(provider) = linking
        .consent_providers()
        .into_iter()
        .find(|p| p.id.as_str() == form.provider)
    else {
        return Err(error_page(
            Some(viewer),
            AppError::bad_request(format!(
                "provider {:?} is not configured for consent",
                form.provider
            )),
        ));
    };
    let p = patient.clone();
    match state.store(move |s| s.patient(&p)).await {
        Ok(Some(_)) => Ok((linking, provider, patient)),
        Ok(None) => Err(error_page(
            Some(viewer),
            AppError::not_found(format!("no patient {id:?}")),
        )),
        Err(e) => Err(error_page(Some(viewer), e)),
    }
}

/// The patient page's "Link an account" section: per consent provider, a
/// form that starts the consent here and one that makes an invitation.
pub fn link_forms(state: &AppState, viewer: &Viewer, patient: &str) -> Markup {
    let Some(linking) = state.linking() else {
        return html! {};
    };
    let providers = linking.consent_providers();
    let base = super::queue::patient_link(patient);
    html! {
        @if !providers.is_empty() {
            h2 { "Link an account" }
            ul #link-accounts {
                @for p in providers {
                    li data-provider=(p.id.as_str()) {
                        (p.id.as_str()) " "
                        form.inline method="post" action=(format!("{base}/link")) {
                            (super::csrf_field(viewer))
                            input type="hidden" name="provider" value=(p.id.as_str());
                            button type="submit" class="link-account" { "Link an account" }
                        }
                        " "
                        form.inline method="post" action=(format!("{base}/invite")) {
                            (super::csrf_field(viewer))
                            input type="hidden" name="provider" value=(p.id.as_str());
                            button type="submit" class="make-invitation" { "Make an invitation" }
                        }
                    }
                }
            }
        }
    }
}

/// How `provider`'s consent runs: OAuth 1.0a, or OAuth 2.0 with its client.
async fn way(
    linking: &crate::web::Linking,
    provider: &crate::config::Provider,
) -> Result<Way, ConsentError> {
    if matches!(provider.auth, crate::config::ProviderAuth::Oauth1(_)) {
        consent::oauth1::oauth1_consent_settings(provider)?;
        return Ok(Way::Oauth1);
    }
    consent_client(linking, provider)
        .await
        .map(|c| Way::Oauth2(Box::new(c)))
}

/// The error of a provider the puller has no HTTP client for.
fn no_client(provider: &crate::config::Provider) -> ConsentError {
    ConsentError::NotConfigured {
        provider: provider.id.to_string(),
        problem: "no HTTP client for the provider".into(),
    }
}

/// The provider's consent client and authorization endpoint (configured,
/// else discovered), with the review app's puller's HTTP client and secrets.
async fn consent_client(
    linking: &crate::web::Linking,
    provider: &crate::config::Provider,
) -> Result<consent::ConsentClient, ConsentError> {
    let http =
        linking
            .puller
            .client(provider.id.as_str())
            .ok_or_else(|| ConsentError::NotConfigured {
                provider: provider.id.to_string(),
                problem: "no HTTP client for the provider".into(),
            })?;
    let env = linking.puller.env();
    consent::resolve(
        &linking.writer,
        linking.puller.key(),
        http,
        &**env,
        provider,
    )
    .await
}
