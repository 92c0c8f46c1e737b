//! Errors of the web layer: `WebError` for setting the server up,
//! `AppError` for one request (rendered as a page or as API JSON by the caller).

use crate::store::StoreError;
use axum::http::StatusCode;
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
