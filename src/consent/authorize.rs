//! The pure half of the authorization request: PKCE (RFC 7636, S256
//! always), `state` and `nonce` values and the hash the store keeps of a
//! state, the authorization URL, and the callback's query read into a
//! `Callback`. No I/O, no clock; randomness only from the OS CSPRNG.
//!
//! The URL is built with `url` rather than the `oauth2` crate's
//! `authorize_url`: the crate keeps the state and verifier in its own
//! types and would still need every extra parameter (`aud`, `nonce`,
//! `prompt`) added by hand, while here the state is only ever stored as a
//! hash and the verifier only sealed, so owning the few lines is simpler.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{ConsentSettings, Oauth2Settings};

/// Random bytes behind a PKCE verifier (32 → 43 base64url characters,
/// RFC 7636 §4.1's recommendation), a state and a nonce.
const RANDOM_BYTES: usize = 32;

/// `n` bytes from the OS CSPRNG, base64url without padding.
pub fn random_urlsafe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of a verifier: BASE64URL(SHA256(ASCII(verifier))).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The hex SHA-256 the store keeps of a state.
pub fn state_sha256(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// The secrets of one authorization request, made fresh.
pub struct RequestSecrets {
    /// RFC 7636 code verifier: 43 characters of `[A-Za-z0-9_-]`.
    pub verifier: SecretString,
    pub state: SecretString,
    /// Present when the scope has `openid`.
    pub nonce: Option<SecretString>,
}

impl RequestSecrets {
    pub fn generate(openid: bool) -> RequestSecrets {
        RequestSecrets {
            verifier: SecretString::from(random_urlsafe(RANDOM_BYTES)),
            state: SecretString::from(random_urlsafe(RANDOM_BYTES)),
            nonce: openid.then(|| SecretString::from(random_urlsafe(RANDOM_BYTES))),
        }
    }
}

/// Whether the configured scope asks for OpenID Connect.
pub fn wants_nonce(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == "openid")
}

/// The authorization request URL (RFC 6749 §4.1.1, RFC 7636 §4.3): the
/// configured endpoint with its own query kept, then `response_type=code`,
/// `client_id`, `redirect_uri`, `scope` (exactly the configured scopes),
/// `state`, `code_challenge` + `S256`, `nonce`, `prompt=login` when
/// configured, and the configured extra parameters.
pub fn authorization_url(
    settings: &Oauth2Settings,
    consent: &ConsentSettings,
    authorize_url: &Url,
    client_id: &str,
    redirect_uri: &Url,
    secrets: &RequestSecrets,
) -> Url {
    let mut url = authorize_url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", client_id);
        q.append_pair("redirect_uri", redirect_uri.as_str());
        if !settings.scopes.is_empty() {
            q.append_pair("scope", &settings.scopes.join(" "));
        }
        q.append_pair("state", secrets.state.expose_secret());
        q.append_pair(
            "code_challenge",
            &s256_challenge(secrets.verifier.expose_secret()),
        );
        q.append_pair("code_challenge_method", "S256");
        if let Some(n) = &secrets.nonce {
            q.append_pair("nonce", n.expose_secret());
        }
        // `prompt` is one space-separated list (OIDC Core §3.1.2.1):
        // `login` from prompt_login, then what authorize_params.prompt adds
        // (e.g. `consent`, which oidc-provider needs to grant offline_access).
        let mut prompt: Vec<&str> = Vec::new();
        if consent.prompt_login {
            prompt.push("login");
        }
        for (k, v) in &consent.authorize_params {
            if k == "prompt" {
                prompt.extend(v.split_ascii_whitespace().filter(|p| *p != "login"));
            } else {
                q.append_pair(k, v);
            }
        }
        if !prompt.is_empty() {
            q.append_pair("prompt", &prompt.join(" "));
        }
    }
    url
}

/// What the provider sent back to the redirect URI (RFC 6749 §4.1.2).
#[derive(Debug)]
pub struct Callback {
    pub state: Option<SecretString>,
    pub outcome: CallbackOutcome,
}

/// A code, or the provider's error (§4.1.2.1).
#[derive(Debug)]
pub enum CallbackOutcome {
    Code(SecretString),
    Error {
        /// `access_denied`, `invalid_scope`, … as sent (printable ASCII only is kept).
        code: String,
        description: Option<String>,
    },
}

/// Why a callback query cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("the callback carries {0} more than once")]
    Repeated(&'static str),
    #[error("the callback carries neither a code nor an error")]
    Empty,
}

/// Reads a callback's query string. A parameter given twice is refused
/// (RFC 6749 §3.1): which one would be believed is the attack.
pub fn parse_callback(query: &str) -> Result<Callback, CallbackError> {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let (slot, name) = match k.as_ref() {
            "code" => (&mut code, "code"),
            "state" => (&mut state, "state"),
            "error" => (&mut error, "error"),
            "error_description" => (&mut description, "error_description"),
            _ => continue,
        };
        if slot.is_some() {
            return Err(CallbackError::Repeated(name));
        }
        *slot = Some(v.into_owned());
    }
    let state = state.filter(|s| !s.is_empty()).map(SecretString::from);
    let printable = |s: String| -> String {
        s.chars()
            .filter(|c| (' '..='~').contains(c))
            .take(300)
            .collect()
    };
    let outcome = match (error, code) {
        (Some(e), _) => CallbackOutcome::Error {
            code: printable(e),
            description: description.map(printable),
        },
        (None, Some(c)) if !c.is_empty() => CallbackOutcome::Code(SecretString::from(c)),
        _ => return Err(CallbackError::Empty),
    };
    Ok(Callback { state, outcome })
}

/// Granted scopes that were not asked for (RFC 6749 §3.3: the server may
/// grant fewer, and then says so; more is refused by the caller).
pub fn unasked_scopes(asked: &[String], granted: Option<&str>) -> Vec<String> {
    granted
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter(|g| !asked.iter().any(|a| a == g))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn secrets_are_fresh_and_verifiers_are_rfc7636_shaped() {
        let a = RequestSecrets::generate(true);
        let b = RequestSecrets::generate(false);
        let v = a.verifier.expose_secret();
        assert!((43..=128).contains(&v.len()), "{}", v.len());
        assert!(
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(v, b.verifier.expose_secret());
        assert_ne!(a.state.expose_secret(), b.state.expose_secret());
        assert!(a.nonce.is_some() && b.nonce.is_none());
    }

    #[test]
    fn callbacks_read_code_or_error_and_refuse_repeats() {
        let c = parse_callback("code=abc&state=xyz&iss=ignored").expect("reads");
        assert_eq!(c.state.as_ref().map(|s| s.expose_secret()), Some("xyz"));
        assert!(matches!(c.outcome, CallbackOutcome::Code(ref s) if s.expose_secret() == "abc"));
        let d = parse_callback("error=access_denied&error_description=no+thanks&state=s")
            .expect("reads");
        match d.outcome {
            CallbackOutcome::Error { code, description } => {
                assert_eq!(code, "access_denied");
                assert_eq!(description.as_deref(), Some("no thanks"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_callback("code=a&code=b&state=s").expect_err("twice"),
            CallbackError::Repeated("code")
        );
        assert_eq!(
            parse_callback("state=s").expect_err("empty"),
            CallbackError::Empty
        );
    }

    #[test]
    fn the_authorization_url_carries_pkce_state_nonce_prompt_and_extras() {
        let raw = crate::config::parse(
            r#"
[[providers]]
id = "portal"
kind = "fhir"
base_url = "https://fhir.example.org/r4"
[providers.auth]
scheme = "oauth2"
token_url = "/oauth/token"
authorize_url = "https://auth.example.org/authorize?tenant=7"
client_id = "rx"
prompt_login = true
scopes = ["openid", "patient/MedicationRequest.rs"]
authorize_params = { aud = "https://fhir.example.org/r4", prompt = "consent" }
"#,
            std::path::Path::new("/x/config.toml"),
        )
        .expect("parses");
        let config = crate::config::resolve(
            raw,
            Some(std::path::Path::new("/x/config.toml")),
            std::path::Path::new("/x"),
            &|_| None,
        )
        .expect("valid");
        let p = &config.providers[0];
        let crate::config::ProviderAuth::Oauth2(o) = &p.auth else {
            panic!("oauth2")
        };
        let consent = o.consent.as_ref().expect("consent");
        let secrets = RequestSecrets::generate(wants_nonce(&o.scopes));
        let redirect = Url::parse("http://127.0.0.1:8765/callback").expect("url");
        let authorize_url = consent.authorize_url.as_ref().expect("authorize_url");
        let url = authorization_url(o, consent, authorize_url, "rx", &redirect, &secrets);
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| {
            q.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{k} in {url}"))
        };
        assert_eq!(get("tenant"), "7", "the endpoint's own query is kept");
        assert_eq!(get("response_type"), "code");
        assert_eq!(get("client_id"), "rx");
        assert_eq!(get("redirect_uri"), "http://127.0.0.1:8765/callback");
        assert_eq!(get("scope"), "openid patient/MedicationRequest.rs");
        assert_eq!(get("state"), secrets.state.expose_secret());
        assert_eq!(
            get("code_challenge"),
            s256_challenge(secrets.verifier.expose_secret())
        );
        assert_eq!(get("code_challenge_method"), "S256");
        assert_eq!(
            get("nonce"),
            secrets.nonce.as_ref().expect("nonce").expose_secret()
        );
        assert_eq!(get("prompt"), "login consent");
        assert_eq!(get("aud"), "https://fhir.example.org/r4");
        assert!(
            !url.as_str().contains(secrets.verifier.expose_secret()),
            "the verifier never travels in the URL"
        );
    }

    #[test]
    fn scopes_beyond_the_asked_ones_are_named() {
        let asked = vec!["openid".to_string(), "patient/Medication.rs".to_string()];
        assert!(unasked_scopes(&asked, Some("openid")).is_empty());
        assert_eq!(
            unasked_scopes(&asked, Some("openid user/*.cruds")),
            vec!["user/*.cruds".to_string()]
        );
    }
}
