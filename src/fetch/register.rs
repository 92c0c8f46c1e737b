//! OAuth 2.0 Dynamic Client Registration (RFC 7591): one JSON POST of
//! rxsync's client metadata to the provider's registration endpoint.
//!
//! The answer's `client_id` and, when issued, `client_secret`,
//! `registration_access_token` and `registration_client_uri` are handed
//! back in `secrecy` types for the store to seal; nothing here prints,
//! logs or puts them in an error. A refusal is named by the server's
//! `error` and `error_description` (RFC 7591 §3.2.2) only, never by echoing
//! the body. No redirect is followed: a registration is not re-sent to
//! another URL.

use super::auth::redact;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// Registration answers are read up to this many bytes.
const ANSWER_LIMIT: usize = 64 * 1024;

/// rxsync's client metadata (RFC 7591 §2).
#[derive(Debug, Clone, Serialize)]
pub struct ClientMetadata {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

/// What the server issued.
pub struct Issued {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub registration_access_token: Option<SecretString>,
    pub registration_client_uri: Option<String>,
    /// Epoch seconds; `None` or 0: the secret does not expire.
    pub client_secret_expires_at: Option<i64>,
    /// As registered (the server may change what was asked for).
    pub token_endpoint_auth_method: String,
}

/// Why a registration failed. Never carries an issued value.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{url}: {detail}")]
    Transport { url: String, detail: String },
    #[error("{url} refused the registration ({status}{}{})", .error.as_deref().map(|e| format!(": {e}")).unwrap_or_default(), .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        url: String,
        status: u16,
        error: Option<String>,
        description: Option<String>,
    },
    #[error("{url}: the answer is not a client registration ({detail})")]
    BadAnswer { url: String, detail: String },
}

#[derive(Deserialize)]
struct Answer {
    client_id: Option<serde_json::Value>,
    client_secret: Option<String>,
    registration_access_token: Option<String>,
    registration_client_uri: Option<String>,
    client_secret_expires_at: Option<i64>,
    token_endpoint_auth_method: Option<String>,
}

#[derive(Deserialize)]
struct Refusal {
    error: Option<String>,
    error_description: Option<String>,
}

/// Registers `metadata` at `url`. `client` must follow no redirects (the
/// provider clients of `fetch::http` do not).
pub async fn register(
    client: &reqwest::Client,
    url: &Url,
    metadata: &ClientMetadata,
    timeout: Duration,
) -> Result<Issued, RegisterError> {
    let shown = redact(url);
    let transport = |detail: String| RegisterError::Transport {
        url: shown.clone(),
        detail,
    };
    let mut resp = client
        .post(url.clone())
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(metadata).unwrap_or_default())
        .send()
        .await
        .map_err(|e| transport(super::oauth2::transport(&e)))?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport(super::oauth2::transport(&e)))?
    {
        if body.len() + chunk.len() > ANSWER_LIMIT {
            return Err(RegisterError::BadAnswer {
                url: shown,
                detail: format!("over {ANSWER_LIMIT} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    if (300..400).contains(&status) {
        return Err(RegisterError::Refused {
            url: shown,
            status,
            error: None,
            description: Some("a redirect; a registration is not re-sent elsewhere".into()),
        });
    }
    if !(200..300).contains(&status) {
        let refusal: Option<Refusal> = serde_json::from_slice(&body).ok();
        return Err(RegisterError::Refused {
            url: shown,
            status,
            error: refusal.as_ref().and_then(|r| r.error.clone()),
            description: refusal.and_then(|r| r.error_description),
        });
    }
    // serde_json's message names a position and an expected type, never
    // the value read, so it may be shown.
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| RegisterError::BadAnswer {
        url: shown.clone(),
        detail: e.to_string(),
    })?;
    let client_id = match answer.client_id {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        _ => {
            return Err(RegisterError::BadAnswer {
                url: shown,
                detail: "no client_id string".into(),
            });
        }
    };
    Ok(Issued {
        client_id,
        client_secret: answer
            .client_secret
            .filter(|s| !s.is_empty())
            .map(SecretString::from),
        registration_access_token: answer
            .registration_access_token
            .filter(|s| !s.is_empty())
            .map(SecretString::from),
        registration_client_uri: answer.registration_client_uri,
        client_secret_expires_at: answer.client_secret_expires_at.filter(|t| *t > 0),
        token_endpoint_auth_method: answer
            .token_endpoint_auth_method
            .unwrap_or_else(|| metadata.token_endpoint_auth_method.clone()),
    })
}
