//! The HTML pages: routes, the shared layout, login and logout, error
//! pages and response headers. Each page is a function of what the store
//! returned; maud escapes every value it interpolates, so text from
//! documents (drug names, notes, excerpts) is always shown as text.

mod admin;
mod consent;
pub mod exception;
mod patient;
pub mod queue;
mod reconcile;

use super::AppState;
use super::auth;
use super::error::{AppError, PageError};
pub use super::frame::{Viewer, csrf_field, layout, render};
pub use super::review::given;
use axum::Router;
use axum::extract::{Extension, Form, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use std::time::Duration;

/// The page routes. `/login` and the stylesheet are public; the rest need
/// a session, their POSTs a CSRF token, and `/admin` an admin.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/admin/links", get(admin::links))
        .route("/admin/links/{id}/revoke", post(admin::revoke_link))
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{name}/disable", post(admin::disable_user))
        .route_layer(from_fn(auth::require_admin));
    let signed_in = Router::new()
        .route("/", get(|| async { Redirect::to("/queue") }))
        .route("/queue", get(queue::page))
        .route("/exceptions/{id}", get(exception::page))
        .route("/exceptions/{id}/decide", post(exception::decide))
        .route("/exceptions/{id}/reopen", post(exception::reopen))
        .route("/patients/{id}", get(patient::page))
        .route("/patients/{id}/reconciled", get(reconcile::page))
        .route("/patients/{id}/link", post(consent::start_link))
        .route("/patients/{id}/invite", post(consent::make_invitation))
        .route("/logout", post(logout))
        .merge(admin)
        .route_layer(from_fn(auth::require_csrf))
        .route_layer(from_fn_with_state(state.clone(), auth::require_session));
    Router::new()
        .route("/login", get(login_page).post(login))
        // The patient's side of linking: no session (no rxsync account).
        .route(
            "/invite/{token}",
            get(consent::show_invitation).post(consent::accept_invitation),
        )
        .route("/oauth/callback", get(consent::callback))
        .route("/assets/review.css", get(stylesheet))
        .route("/assets/review.js", get(script))
        .merge(signed_in)
        .with_state(state)
}

/// The pages' Content Security Policy. `form-action` binds where a form
/// posts and where its answer redirects.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Set on a page (a response extension) whose form's answer sends the
/// browser to another origin: an invitation's *Continue*, answered with a
/// 303 to the provider's authorization endpoint. That origin (scheme, host
/// and port only) joins `form-action` on that page alone.
#[derive(Clone, Debug)]
pub struct FormTarget(pub url::Url);

/// Headers on every answer: no caching of patient data, no framing,
/// scripts and styles only from this origin's files (never inline), forms
/// only to this origin (and to a `FormTarget`'s).
pub async fn security_headers(mut r: Response) -> Response {
    let csp = r
        .extensions()
        .get::<FormTarget>()
        .and_then(|t| match t.0.origin() {
            origin @ url::Origin::Tuple(..) if matches!(t.0.scheme(), "http" | "https") => {
                HeaderValue::from_str(&CSP.replace(
                    "form-action 'self'",
                    &format!("form-action 'self' {}", origin.ascii_serialization()),
                ))
                .ok()
            }
            _ => None,
        })
        .unwrap_or(HeaderValue::from_static(CSP));
    let h = r.headers_mut();
    let asset = h.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"text/css") || v.as_bytes().starts_with(b"text/javascript")
    });
    if !asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("review.js"),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("review.css"),
    )
}

/// An error as a page.
pub fn error_page(viewer: Option<&Viewer>, e: AppError) -> Response {
    PageError::new(viewer, e).into_response()
}

fn login_form(token: &str, problem: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            @if let Some(p) = problem { p.error role="alert" { (p) } }
            form method="post" action="/login" {
                input type="hidden" name="login_csrf" value=(token);
                label { "Name " input type="text" name="name" id="name" autocomplete="username" required; }
                label { "Password " input type="password" name="password" id="password" autocomplete="current-password" required; }
                button type="submit" id="login" { "Log in" }
            }
        },
    )
}

/// The login page sets a fresh cookie for its form, whose hidden field
/// carries the server's signature of it (`auth::login_form_token`).
fn login_response(state: &AppState, status: StatusCode, problem: Option<&str>) -> Response {
    let (nonce, token) = auth::login_form_token(state.login_key());
    let mut r = render(status, login_form(&token, problem));
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(
        state,
        auth::LOGIN_COOKIE,
        &nonce,
        Duration::from_secs(3600),
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login_page(State(state): State<AppState>) -> Response {
    login_response(&state, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    login_csrf: String,
}

async fn login(State(state): State<AppState>, req: Request) -> Response {
    let remote = auth::remote(&state, req.extensions(), req.headers());
    let headers = req.headers().clone();
    let form =
        <Form<LoginForm> as axum::extract::FromRequest<AppState>>::from_request(req, &state).await;
    let Ok(Form(form)) = form else {
        return login_response(
            &state,
            StatusCode::BAD_REQUEST,
            Some("the form is incomplete"),
        );
    };
    if !auth::login_form_ok(state.login_key(), &headers, &form.login_csrf) {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("the login form is out of date (CSRF check): try again"),
        );
    }
    let name = form.name.trim().to_string();
    match auth::check_login(&state, name, form.password, remote).await {
        Ok(auth::LoginCheck::Ok(user)) => {
            // A new login ends whatever session this browser held (another
            // user's, say): one browser, one session.
            if let Some(old) =
                auth::cookie(&headers, auth::SESSION_COOKIE).filter(|c| !c.is_empty())
            {
                let hash = auth::token_hash(&old);
                if let Err(e) = state.store(move |s| s.end_session(&hash)).await {
                    return error_page(None, e);
                }
            }
            match auth::start_session(&state, user.id).await {
                Ok(id) => {
                    let mut r = Redirect::to("/queue").into_response();
                    let cookies = [
                        auth::set_cookie(
                            &state,
                            auth::SESSION_COOKIE,
                            &id,
                            state.review().session_lifetime,
                        ),
                        auth::set_cookie(&state, auth::LOGIN_COOKIE, "", Duration::ZERO),
                    ];
                    for c in cookies {
                        if let Ok(v) = HeaderValue::from_str(&c) {
                            r.headers_mut().append(header::SET_COOKIE, v);
                        }
                    }
                    r
                }
                Err(e) => error_page(None, e),
            }
        }
        Ok(auth::LoginCheck::Wrong) => login_response(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("wrong name or password"),
        ),
        Ok(auth::LoginCheck::Wait(wait)) => {
            let mut r = login_response(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "too many failed logins: wait {} seconds and try again",
                    wait.as_secs()
                )),
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(e) => error_page(None, e),
    }
}

async fn logout(State(state): State<AppState>, Extension(viewer): Extension<Viewer>) -> Response {
    let hash = viewer.session_hash.clone();
    if let Err(e) = state.store(move |s| s.end_session(&hash)).await {
        return error_page(Some(&viewer), e);
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(
        &state,
        auth::SESSION_COOKIE,
        "",
        Duration::ZERO,
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn csp_with(target: Option<&str>) -> String {
        let mut r = Response::new(axum::body::Body::empty());
        if let Some(t) = target {
            r.extensions_mut()
                .insert(FormTarget(url::Url::parse(t).expect("url")));
        }
        let r = security_headers(r).await;
        r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii")
            .to_string()
    }

    #[tokio::test]
    async fn a_form_target_adds_only_its_http_origin_to_form_action() {
        assert!(csp_with(None).await.contains("form-action 'self';"));
        assert!(
            csp_with(Some("https://idp.example.org:8443/oauth2/authorize?x=1"))
                .await
                .contains("form-action 'self' https://idp.example.org:8443;")
        );
        for opaque in ["data:text/html,hi", "javascript:alert(1)"] {
            assert!(
                csp_with(Some(opaque)).await.contains("form-action 'self';"),
                "{opaque}"
            );
        }
    }
}
