//! The page frame every HTML answer shares: who is signed in (`Viewer`),
//! the layout (title, navigation, logout), the CSRF field of a form, and
//! the stylesheet and script links. It sits below `error`, `auth` and
//! `pages`, so that an error page can be drawn by any of them without one
//! importing another; it knows nothing of the store or of any route's work.

use crate::store::{Role, UserView};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The form field every state-changing form carries.
pub const CSRF_FIELD: &str = "csrf";

/// The signed-in user of a page request, and the CSRF token its forms carry.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: UserView,
    pub csrf: String,
    /// The hash of the session id (for logout).
    pub session_hash: String,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// The shared page frame: title, navigation, who is signed in, logout.
pub fn layout(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — rxsync review" }
                link rel="stylesheet" href="/assets/review.css";
                // The one script: it rewrites <time> elements into the
                // viewer's local time. Same origin (the CSP allows 'self'
                // only, never inline), deferred; the pages read well without it.
                script src="/assets/review.js" defer {}
            }
            body {
                header {
                    nav aria-label="main" {
                        strong { "rxsync review" }
                        @if let Some(v) = viewer {
                            a href="/queue" { "Queue" }
                            @if v.is_admin() {
                                a href="/admin/links" { "Links" }
                                a href="/admin/users" { "Users" }
                            }
                            span.who { (v.user.name) " (" (v.user.role) ")" }
                            form.inline method="post" action="/logout" {
                                (csrf_field(v))
                                button type="submit" id="logout" { "Log out" }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(v: &Viewer) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(v.csrf); }
}

/// A page as a response.
pub fn render(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}
