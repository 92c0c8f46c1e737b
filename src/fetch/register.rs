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

/// What is wrong with an answer that is not the JSON expected, without a
/// word of what it held.
fn answer_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Data => "a field has the wrong type",
        Category::Syntax => "not JSON",
        Category::Eof => "the JSON ends early",
        Category::Io => "unreadable",
    };
    format!("{what}, at line {} column {}", e.line(), e.column())
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
    // serde_json's message may quote the value it read ("invalid type:
    // string \"…\"", which could be an issued secret under an unexpected
    // name): only its kind and position are shown.
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| RegisterError::BadAnswer {
        url: shown.clone(),
        detail: answer_problem(&e),
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn metadata(method: &str, jwks_uri: Option<&str>) -> ClientMetadata {
        ClientMetadata {
            client_name: "rxsync".into(),
            redirect_uris: vec!["http://127.0.0.1:8765/callback".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: method.into(),
            scope: None,
            jwks_uri: jwks_uri.map(str::to_string),
        }
    }

    /// A registration endpoint on loopback that answers `status` with
    /// `body` once; the request it read (head and body) comes back.
    async fn endpoint(
        status: u16,
        body: String,
    ) -> (Url, tokio::task::JoinHandle<(String, String)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let served = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut read = Vec::new();
            let mut buf = vec![0u8; 8192];
            let (head, body_start, length) = loop {
                let n = sock.read(&mut buf).await.expect("read");
                read.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&read).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let head = text[..end].to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    break (head, end + 4, length);
                }
                assert!(n > 0, "the request ended in its head");
            };
            while read.len() < body_start + length {
                let n = sock.read(&mut buf).await.expect("read");
                assert!(n > 0, "the request ended in its body");
                read.extend_from_slice(&buf[..n]);
            }
            let request_body = String::from_utf8_lossy(&read[body_start..]).to_string();
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            (head, request_body)
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}/register")).expect("url");
        (url, served)
    }

    async fn run(
        status: u16,
        answer: &str,
        metadata: &ClientMetadata,
    ) -> (Result<Issued, RegisterError>, String, serde_json::Value) {
        crate::fetch::http::install_crypto_provider();
        let (url, served) = endpoint(status, answer.to_string()).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let result = register(&client, &url, metadata, Duration::from_secs(5)).await;
        let (head, body) = served.await.expect("the endpoint");
        let body = serde_json::from_str(&body).expect("the request body is JSON");
        (result, head, body)
    }

    #[test]
    fn the_metadata_carries_what_is_set_and_omits_what_is_not() {
        let public = serde_json::to_value(metadata("none", None)).expect("json");
        assert_eq!(
            public,
            serde_json::json!({
                "client_name": "rxsync",
                "redirect_uris": ["http://127.0.0.1:8765/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            })
        );
        let mut jwt = metadata(
            "private_key_jwt",
            Some("https://rx.example/.well-known/jwks.json"),
        );
        jwt.scope = Some("openid patient/MedicationRequest.rs".into());
        let jwt = serde_json::to_value(jwt).expect("json");
        assert_eq!(jwt["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(jwt["jwks_uri"], "https://rx.example/.well-known/jwks.json");
        assert_eq!(jwt["scope"], "openid patient/MedicationRequest.rs");
    }

    #[tokio::test]
    async fn a_registration_posts_the_metadata_as_json_and_reads_the_issued_client() {
        let asked = metadata("private_key_jwt", Some("https://rx.example/jwks"));
        let (result, head, body) = run(
            201,
            r#"{"client_id":"issued-client-1","client_secret":"issued-secret-value-1",
                "registration_access_token":"reg-access-token-value-1",
                "registration_client_uri":"https://as.example/register/issued-client-1",
                "client_secret_expires_at":1893456000,
                "token_endpoint_auth_method":"private_key_jwt"}"#,
            &asked,
        )
        .await;
        assert!(head.starts_with("POST /register HTTP/1.1"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("accept: application/json"), "{head}");
        assert_eq!(body, serde_json::to_value(&asked).expect("json"));
        let issued = result.expect("issued");
        assert_eq!(issued.client_id, "issued-client-1");
        use secrecy::ExposeSecret;
        assert_eq!(
            issued.client_secret.as_ref().map(|s| s.expose_secret()),
            Some("issued-secret-value-1")
        );
        assert_eq!(
            issued
                .registration_access_token
                .as_ref()
                .map(|s| s.expose_secret()),
            Some("reg-access-token-value-1")
        );
        assert_eq!(
            issued.registration_client_uri.as_deref(),
            Some("https://as.example/register/issued-client-1")
        );
        assert_eq!(issued.client_secret_expires_at, Some(1_893_456_000));
        assert_eq!(issued.token_endpoint_auth_method, "private_key_jwt");
        // The secrets are `secrecy` types: their Debug shows no value.
        let shown = format!(
            "{:?} {:?}",
            issued.client_secret, issued.registration_access_token
        );
        assert!(
            !shown.contains("issued-secret-value-1") && !shown.contains("reg-access-token-value-1"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_public_client_answer_has_no_secret_and_keeps_what_was_asked() {
        let (result, _, body) = run(
            201,
            r#"{"client_id":"public-1","client_secret":"","client_secret_expires_at":0}"#,
            &metadata("none", None),
        )
        .await;
        assert_eq!(body["token_endpoint_auth_method"], "none");
        assert!(body.get("jwks_uri").is_none(), "{body}");
        let issued = result.expect("issued");
        assert_eq!(issued.client_id, "public-1");
        assert!(issued.client_secret.is_none(), "an empty secret is none");
        assert!(issued.registration_access_token.is_none());
        assert_eq!(issued.client_secret_expires_at, None, "0: never expires");
        // The server did not say: what was asked is what was registered.
        assert_eq!(issued.token_endpoint_auth_method, "none");
    }

    /// Every answer that makes no client is a clear error that never
    /// carries a secret the answer held, checked by value.
    #[tokio::test]
    async fn answers_without_a_client_are_clear_errors_without_the_secret() {
        const SECRET: &str = "leaked-client-secret-value-9d2";
        let cases: [(u16, String, &str); 6] = [
            (
                201,
                format!(r#"{{"client_secret":"{SECRET}"}}"#),
                "the answer is not a client registration (no client_id string)",
            ),
            (
                201,
                format!(r#"{{"client_id":"","client_secret":"{SECRET}"}}"#),
                "no client_id string",
            ),
            (
                201,
                format!(r#"{{"client_id":42,"client_secret":"{SECRET}"}}"#),
                "no client_id string",
            ),
            (
                201,
                format!(r#"{{"client_id":"c","client_secret_expires_at":"{SECRET}"}}"#),
                "the answer is not a client registration",
            ),
            (
                201,
                format!("<html>{SECRET}</html>"),
                "the answer is not a client registration",
            ),
            (
                400,
                format!(
                    r#"{{"error":"invalid_redirect_uri","error_description":"no fragments","client_secret":"{SECRET}"}}"#
                ),
                "refused the registration (400: invalid_redirect_uri: no fragments)",
            ),
        ];
        for (status, answer, says) in cases {
            let (result, _, _) = run(status, &answer, &metadata("client_secret_basic", None)).await;
            let err = result.err().expect("no client").to_string();
            assert!(err.contains(says), "{answer}: {err}");
            assert!(
                err.starts_with("http://127.0.0.1:"),
                "names the endpoint: {err}"
            );
            assert!(!err.contains(SECRET), "{answer}: {err}");
        }
    }

    #[tokio::test]
    async fn a_redirect_is_refused_not_followed() {
        let (result, _, _) = run(
            307,
            r#"{"client_id":"elsewhere"}"#,
            &metadata("client_secret_basic", None),
        )
        .await;
        let err = result.err().expect("refused").to_string();
        assert!(
            err.contains("refused the registration (307") && err.contains("not re-sent"),
            "{err}"
        );
    }
}
