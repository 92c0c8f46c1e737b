//! The two token requests of the OAuth 1.0a three-legged flow (RFC 5849
//! §2.1 temporary credentials, §2.3 token credentials), signed by
//! `oauth1::sign` with the provider's method and placement, and the
//! form-encoded answers read into token pairs.
//!
//! It never follows a redirect (a token endpoint that redirects is
//! refused), and never puts a token, a secret or a verifier in an error:
//! what the provider answered (its `oauth_problem` and advice, a
//! `Location`) is scrubbed by value (`redact::Secrets`) of the consumer
//! secret, the request token and its secret and the verifier, in every
//! encoding, whatever name the provider echoed them under. It knows
//! nothing of flows or the store: `consent::oauth1` does.

use std::time::Duration;

use rand::Rng;
use rand::distributions::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::oauth1::{self, Credentials, Oauth1Request, RsaSigningKey, SignParams};
use super::redact::Secrets;
use super::settings::{Oauth1Consent, Oauth1Settings};

/// A token pair from a token endpoint: a request token (§2.1) or an
/// access token (§2.3). Both halves are credentials.
pub struct TokenPair {
    pub token: SecretString,
    pub secret: SecretString,
    /// The names (never the values) of the other fields of the answer.
    pub other_fields: Vec<String>,
    /// A `patient` field beside the tokens (as SMART puts one beside
    /// OAuth 2.0 tokens): the provider's id of the patient, not a secret.
    pub patient: Option<String>,
}

/// Why a token request made no token pair. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum TokenRequestError {
    /// The endpoint answered with an error status, and the `oauth_problem`
    /// (or `error`) and its advice (or `error_description`) when it gave
    /// them — printable, shortened, and scrubbed of every secret the
    /// request carried, by value.
    #[error("the {step} endpoint {url} refused the request: {status}{}{}", .problem.as_deref().map(|p| format!(" (oauth_problem={p})")).unwrap_or_default(), .advice.as_deref().map(|a| format!(": {a}")).unwrap_or_default())]
    Refused {
        step: &'static str,
        url: String,
        status: u16,
        problem: Option<String>,
        advice: Option<String>,
    },
    /// The request token answer lacks `oauth_callback_confirmed=true` (§2.1).
    #[error(
        "the request token endpoint {url} did not confirm the callback (oauth_callback_confirmed=true is required by OAuth 1.0a)"
    )]
    CallbackNotConfirmed { url: String },
    /// Transport, signing, a redirect, an answer without a token pair.
    #[error("the {step} request to {url} failed: {detail}")]
    Failed {
        step: &'static str,
        url: String,
        detail: String,
    },
}

/// The consumer credentials of a provider: its key, its secret (from env
/// or file) and, for RSA-SHA1, its private key. Errors name the provider
/// and the key, never the secret.
pub fn consumer_credentials(
    provider: &str,
    settings: &Oauth1Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, String> {
    let secret = settings
        .consumer_secret
        .load(provider, "auth.consumer_secret", env)
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| SecretString::from(String::new()));
    let mut credentials = Credentials::new(settings.consumer_key.clone(), secret);
    if let Some(path) = &settings.rsa_private_key_file {
        let where_ = || {
            format!(
                "provider {provider}: auth.rsa_private_key_file = {}",
                path.display()
            )
        };
        let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", where_()))?;
        let key = RsaSigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", where_()))?;
        credentials = credentials.with_rsa_key(key);
    }
    Ok(credentials)
}

impl TokenRequestError {
    /// The error with every form of `secrets` replaced (a provider's words
    /// may echo what it was sent, under any name).
    fn scrubbed(self, secrets: &Secrets) -> TokenRequestError {
        let s = |t: String| secrets.scrub(&t);
        match self {
            TokenRequestError::Refused {
                step,
                url,
                status,
                problem,
                advice,
            } => TokenRequestError::Refused {
                step,
                url: s(url),
                status,
                problem: problem.map(s),
                advice: advice.map(s),
            },
            TokenRequestError::CallbackNotConfirmed { url } => {
                TokenRequestError::CallbackNotConfirmed { url: s(url) }
            }
            TokenRequestError::Failed { step, url, detail } => TokenRequestError::Failed {
                step,
                url: s(url),
                detail: s(detail),
            },
        }
    }
}

/// The secret values a token request carries: the consumer secret, and
/// the request token, its secret and the verifier when they are sent.
fn request_secrets(credentials: &Credentials, verifier: Option<&SecretString>) -> Secrets {
    let mut secrets = Secrets::new();
    secrets.add(credentials.consumer_secret.expose_secret());
    if let Some(t) = &credentials.token {
        secrets.add(&t.token);
        secrets.add(t.secret.expose_secret());
    }
    if let Some(v) = verifier {
        secrets.add(v.expose_secret());
    }
    secrets
}

/// The names of the answer's other fields (audited) scrubbed like errors;
/// a `patient` that echoes a secret of the request is refused (it would be
/// stored and shown as the remote patient).
fn checked(
    mut pair: TokenPair,
    secrets: &Secrets,
    step: &'static str,
    url: &Url,
) -> Result<TokenPair, TokenRequestError> {
    if pair
        .patient
        .as_deref()
        .is_some_and(|p| secrets.carried_by(p))
    {
        return Err(TokenRequestError::Failed {
            step,
            url: secrets.scrub(&super::auth::redact(url)),
            detail: "the answer's patient echoes a credential of the request".into(),
        });
    }
    pair.other_fields = pair.other_fields.iter().map(|f| secrets.scrub(f)).collect();
    Ok(pair)
}

/// §2.1: asks for temporary credentials with `oauth_callback`; the answer
/// must confirm the callback. Errors carry no secret of the request.
pub async fn request_token(
    client: &reqwest::Client,
    settings: &Oauth1Settings,
    consent: &Oauth1Consent,
    consumer: &Credentials,
    callback: &Url,
    timeout: Duration,
) -> Result<TokenPair, TokenRequestError> {
    let secrets = request_secrets(consumer, None);
    ask_request_token(client, settings, consent, consumer, callback, timeout)
        .await
        .map_err(|e| e.scrubbed(&secrets))
        .and_then(|p| checked(p, &secrets, "request token", &consent.request_token_url))
}

async fn ask_request_token(
    client: &reqwest::Client,
    settings: &Oauth1Settings,
    consent: &Oauth1Consent,
    consumer: &Credentials,
    callback: &Url,
    timeout: Duration,
) -> Result<TokenPair, TokenRequestError> {
    let step = "request token";
    let url = &consent.request_token_url;
    let fields = signed_call(
        client,
        settings,
        consent.token_method,
        url,
        consumer,
        Extra::Callback(callback.as_str()),
        step,
        timeout,
    )
    .await?;
    if !fields
        .iter()
        .any(|(k, v)| k == "oauth_callback_confirmed" && v == "true")
    {
        return Err(TokenRequestError::CallbackNotConfirmed {
            url: super::auth::redact(url),
        });
    }
    pair(fields, step, url)
}

/// §2.3: exchanges the request token (in `credentials`) and the verifier
/// for token credentials. Errors carry no secret of the request.
pub async fn access_token(
    client: &reqwest::Client,
    settings: &Oauth1Settings,
    consent: &Oauth1Consent,
    credentials: &Credentials,
    verifier: &SecretString,
    timeout: Duration,
) -> Result<TokenPair, TokenRequestError> {
    let secrets = request_secrets(credentials, Some(verifier));
    ask_access_token(client, settings, consent, credentials, verifier, timeout)
        .await
        .map_err(|e| e.scrubbed(&secrets))
        .and_then(|p| checked(p, &secrets, "access token", &consent.access_token_url))
}

async fn ask_access_token(
    client: &reqwest::Client,
    settings: &Oauth1Settings,
    consent: &Oauth1Consent,
    credentials: &Credentials,
    verifier: &SecretString,
    timeout: Duration,
) -> Result<TokenPair, TokenRequestError> {
    let step = "access token";
    let url = &consent.access_token_url;
    let fields = signed_call(
        client,
        settings,
        consent.token_method,
        url,
        credentials,
        Extra::Verifier(verifier.expose_secret()),
        step,
        timeout,
    )
    .await?;
    pair(fields, step, url)
}

/// The protocol parameter a token request adds to the signed ones.
enum Extra<'a> {
    Callback(&'a str),
    Verifier(&'a str),
}

#[allow(clippy::too_many_arguments)]
async fn signed_call(
    client: &reqwest::Client,
    settings: &Oauth1Settings,
    method: &str,
    url: &Url,
    credentials: &Credentials,
    extra: Extra<'_>,
    step: &'static str,
    timeout: Duration,
) -> Result<Vec<(String, String)>, TokenRequestError> {
    let shown = super::auth::redact(url);
    let failed = |detail: String| TokenRequestError::Failed {
        step,
        url: shown.clone(),
        detail,
    };
    let nonce: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let timestamp = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let (callback, verifier) = match extra {
        Extra::Callback(c) => (Some(c), None),
        Extra::Verifier(v) => (None, Some(v)),
    };
    let signed = oauth1::sign(
        &Oauth1Request {
            method,
            url,
            body: None,
        },
        credentials,
        &SignParams {
            method: settings.signature_method,
            placement: settings.placement,
            realm: settings.realm.as_deref(),
            nonce: &nonce,
            timestamp,
            include_version: true,
            body_hash: false,
            callback,
            verifier,
        },
    )
    .map_err(|e| failed(format!("cannot sign: {e}")))?;
    let http_method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| failed(format!("invalid HTTP method {method:?}")))?;
    let mut request = client
        .request(http_method, signed.url().clone())
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, "application/x-www-form-urlencoded");
    if let Some(authorization) = signed.authorization() {
        let mut value = reqwest::header::HeaderValue::from_str(authorization)
            .map_err(|_| failed("the Authorization header is not valid".into()))?;
        value.set_sensitive(true);
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    if method == "POST" {
        request = request.header(reqwest::header::CONTENT_LENGTH, "0");
    }
    let response = request.send().await.map_err(|e| {
        failed(if e.is_timeout() {
            "timed out".to_string()
        } else {
            "cannot connect or the connection failed".to_string()
        })
    })?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = super::oauth2::read_limited(response)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if status.is_redirection() {
        // Where it pointed, as the trail shows URLs (credential parameters
        // stripped by name; the caller scrubs by value).
        let to = location
            .as_deref()
            .and_then(|l| url.join(l).ok())
            .map(|l| format!(" to {}", super::auth::redact(&l)))
            .unwrap_or_default();
        return Err(failed(format!(
            "answered {status}{to}: a token endpoint that redirects is not followed"
        )));
    }
    if !status.is_success() {
        let said = |names: &[&str]| {
            fields
                .iter()
                .find(|(k, _)| names.contains(&k.as_str()))
                .map(|(_, v)| printable(v))
                .filter(|v| !v.is_empty())
        };
        return Err(TokenRequestError::Refused {
            step,
            url: shown,
            status: status.as_u16(),
            problem: said(&["oauth_problem", "error"]),
            advice: said(&["oauth_problem_advice", "error_description"]),
        });
    }
    Ok(fields)
}

/// A provider's words, kept short and printable for messages and the audit.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn pair(
    fields: Vec<(String, String)>,
    step: &'static str,
    url: &Url,
) -> Result<TokenPair, TokenRequestError> {
    let mut token = None;
    let mut secret = None;
    let mut other_fields = Vec::new();
    let mut patient = None;
    for (k, v) in fields {
        match k.as_str() {
            "patient" if !v.is_empty() && v.len() <= 256 && !v.chars().any(char::is_control) => {
                patient = Some(v);
                other_fields.push(k);
            }
            "oauth_token" if !v.is_empty() => token = Some(SecretString::from(v)),
            "oauth_token_secret" => secret = Some(SecretString::from(v)),
            _ => other_fields.push(k),
        }
    }
    match (token, secret) {
        (Some(token), Some(secret)) => Ok(TokenPair {
            token,
            secret,
            other_fields,
            patient,
        }),
        _ => Err(TokenRequestError::Failed {
            step,
            url: super::auth::redact(url),
            detail: "the answer has no oauth_token and oauth_token_secret".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn errors_and_field_names_lose_every_secret_of_the_request_by_value() {
        let credentials = Credentials::new("ck", secret("consumer-secret-1"))
            .with_token("request-token-2", secret("request-secret-3"));
        let secrets = request_secrets(&credentials, Some(&secret("verifier-4")));
        let all = [
            "consumer-secret-1",
            "request-token-2",
            "request-secret-3",
            "verifier-4",
        ];
        let e = TokenRequestError::Refused {
            step: "access token",
            url: "https://p.example/at".into(),
            status: 401,
            problem: Some("verifier-4".into()),
            advice: Some(format!(
                "got consumer-secret-1 and request%2Dsecret%2D3 and {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    "request-token-2"
                )
            )),
        }
        .scrubbed(&secrets)
        .to_string();
        assert!(e.contains("401") && e.contains("[redacted]"), "{e}");
        let failed = TokenRequestError::Failed {
            step: "access token",
            url: "https://p.example/at".into(),
            detail: "answered 302 to https://p.example/x/request-secret-3".into(),
        }
        .scrubbed(&secrets)
        .to_string();
        for text in [&e, &failed] {
            for s in all {
                assert!(!text.contains(s), "{s} in {text}");
            }
        }
        let url = Url::parse("https://p.example/at").expect("url");
        let pair = |patient: Option<&str>, other: &str| TokenPair {
            token: secret("t"),
            secret: secret("s"),
            other_fields: vec![other.to_string()],
            patient: patient.map(str::to_string),
        };
        let ok = checked(
            pair(Some("p-1"), "verifier-4"),
            &secrets,
            "access token",
            &url,
        )
        .expect("a plain patient");
        assert_eq!(ok.other_fields, ["[redacted]"]);
        let refused = checked(
            pair(Some("verifier-4"), "x"),
            &secrets,
            "access token",
            &url,
        )
        .err()
        .expect("a patient echoing the verifier");
        assert!(!refused.to_string().contains("verifier-4"), "{refused}");
    }
}
