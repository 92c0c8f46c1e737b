//! Errors of the web layer: `WebError` for setting the server up,
//! `AppError` for one request. Both kinds of answer render through
//! `IntoResponse`: an `AppError` as the API's JSON, a `PageError` (an
//! `AppError` and who was looking) as a page in the shared frame — so the
//! middleware in `auth` answers either without importing `api` or `pages`.

use super::frame::{Viewer, layout, render};
use crate::domain::DecisionError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use std::path::PathBuf;

/// Why the review server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The database cannot be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS certificate or key cannot be read or used.
    #[error("TLS {what} {path}: {problem}")]
    Tls {
        what: &'static str,
        path: PathBuf,
        problem: String,
    },
}

/// A request that failed: the status and a message safe to show.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::NOT_FOUND, message)
    }

    /// An error of ours: logged in full, shown as a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> AppError {
        tracing::error!(%detail, "review request failed");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (the server log says more)",
        )
    }
}

impl From<DecisionError> for AppError {
    fn from(e: DecisionError) -> AppError {
        AppError::bad_request(e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::NotFound { .. } => AppError::not_found(e.to_string()),
            StoreError::Conflict(m) => AppError::new(StatusCode::CONFLICT, m),
            StoreError::Refused(m) => AppError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            other => AppError::internal(other),
        }
    }
}

/// An API error answers `{"error": message}` with its status.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// An error met while serving a page, drawn as a page in the shared frame
/// (with the viewer's navigation when someone is signed in).
#[derive(Debug)]
pub struct PageError {
    viewer: Option<Viewer>,
    error: AppError,
}

impl PageError {
    pub fn new(viewer: Option<&Viewer>, error: impl Into<AppError>) -> PageError {
        PageError {
            viewer: viewer.cloned(),
            error: error.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.error;
        let title = match e.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            s if s.is_server_error() => "Something went wrong",
            _ => "Cannot do that",
        };
        render(
            e.status,
            layout(
                title,
                self.viewer.as_ref(),
                html! {
                    p.error role="alert" { (e.message) }
                    p { a href="/queue" { "Back to the queue" } }
                },
            ),
        )
    }
}
