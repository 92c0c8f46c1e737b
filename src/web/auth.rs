//! Who is asking: passwords (argon2id), session cookies, CSRF tokens, API
//! tokens, and how failed logins slow further attempts down.
//!
//! The client holds the only copy of a session id or an API token; the
//! store keeps their SHA-256. A form's CSRF token is derived from the
//! session id, so it needs no storage and dies with the session.

use super::AppState;
use super::error::{AppError, PageError};
pub use super::frame::{CSRF_FIELD, Viewer};
use crate::store::{LoginFailures, UserView};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;

/// The session cookie.
pub const SESSION_COOKIE: &str = "rxsync_session";
/// The login form's double-submit cookie (there is no session to tie it to yet).
pub const LOGIN_COOKIE: &str = "rxsync_login";
/// An invitation page's double-submit cookie (the patient has no session).
pub const INVITE_COOKIE: &str = "rxsync_invite";
/// Form bodies larger than this are refused.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Failed logins for one name before attempts are slowed down.
pub const MAX_FAILURES_PER_NAME: u32 = 5;
/// Failed logins from one address (any name) before attempts are slowed down.
pub const MAX_FAILURES_PER_REMOTE: u32 = 20;
/// How far back failed logins count.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The first wait once over the limit; it doubles with every further failure.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(30);
/// The longest wait.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// A password that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password has 8 to 1024 characters")]
    Length,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Hashes a password with argon2id (default parameters, random salt) into
/// a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let n = password.chars().count();
    if !(8..=1024).contains(&n) {
        return Err(PasswordError::Length);
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches a stored PHC string.
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so that the
/// answer takes as long as for a real one.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password never used").unwrap_or_default())
}

/// 32 random bytes, base64url: session ids, API tokens, login cookies.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API token (`rxs_…`) and the hash to store.
pub fn new_api_token() -> (String, String) {
    let token = format!("rxs_{}", random_secret());
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a session id or API token: hex SHA-256.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session.
fn csrf_for(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"rxsync csrf\0");
    h.update(session_id.as_bytes());
    hex::encode(h.finalize())
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value with our attributes.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if state.tls() { "; Secure" } else { "" }
    )
}

/// The user of an API request.
#[derive(Clone, Debug)]
pub struct ApiUser(pub UserView);

/// The client's address, when the server was started with connect info:
/// the peer, or — when the peer is one of `[review] trusted_proxies` — the
/// nearest address in `X-Forwarded-For` that is not a trusted proxy (read
/// from the right, since a client can write anything on the left).
pub fn remote(
    state: &AppState,
    req_extensions: &axum::http::Extensions,
    headers: &HeaderMap,
) -> Option<String> {
    let peer = req_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| {
            req_extensions
                .get::<ConnectInfo<super::tls::TlsPeer>>()
                .map(|c| c.0.0)
        })?
        .ip();
    Some(client_behind(peer, headers, &state.review().trusted_proxies).to_string())
}

/// `peer`, or the client a trusted proxy forwarded for.
fn client_behind(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[crate::config::IpRange],
) -> std::net::IpAddr {
    let is_trusted = |a: std::net::IpAddr| trusted.iter().any(|r| r.contains(a));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse::<std::net::IpAddr>())
        .collect::<Result<_, _>>()
        // A list that does not parse whole is not believed.
        .unwrap_or_default();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !is_trusted(*a))
        .unwrap_or(peer)
}

/// Pages: a live session, else a redirect to the login page.
pub async fn require_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(id) = cookie(req.headers(), SESSION_COOKIE) else {
        return Redirect::to("/login").into_response();
    };
    let hash = token_hash(&id);
    let lookup = hash.clone();
    match state.store(move |s| s.session_user(&lookup)).await {
        Ok(Some(user)) => {
            req.extensions_mut().insert(Viewer {
                user,
                csrf: csrf_for(&id),
                session_hash: hash,
            });
            next.run(req).await
        }
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => PageError::new(None, e).into_response(),
    }
}

/// Pages: every POST carries the session's CSRF token in its form body.
pub async fn require_csrf(req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(viewer) = req.extensions().get::<Viewer>().cloned() else {
        return Redirect::to("/login").into_response();
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return PageError::new(
            Some(&viewer),
            AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"),
        )
        .into_response();
    };
    let sent = form_field(&bytes, CSRF_FIELD);
    if !sent.is_some_and(|t| same(&t, &viewer.csrf)) {
        return PageError::new(
            Some(&viewer),
            AppError::new(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or out of date: go back, reload the page and try again",
            ),
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// The first value of a field in a form body.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Admin pages: admins only.
pub async fn require_admin(req: Request, next: Next) -> Response {
    match req.extensions().get::<Viewer>() {
        Some(v) if v.is_admin() => next.run(req).await,
        v => PageError::new(
            v,
            AppError::new(StatusCode::FORBIDDEN, "this page is for admins"),
        )
        .into_response(),
    }
}

/// The API: `Authorization: Bearer <token>`; cookies are not accepted, so
/// no API call can be forged from a page.
pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, t)| t.trim().to_string());
    let unauthorized = |message: &str| {
        let mut r = AppError::new(StatusCode::UNAUTHORIZED, message).into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"rxsync\""),
        );
        r
    };
    let Some(token) = bearer.filter(|t| !t.is_empty()) else {
        return unauthorized("an API token is required (Authorization: Bearer TOKEN)");
    };
    let hash = token_hash(&token);
    match state.store(move |s| s.token_user(&hash)).await {
        Ok(Some(user)) => {
            req.extensions_mut().insert(ApiUser(user));
            next.run(req).await
        }
        Ok(None) => unauthorized("the API token is unknown, revoked, or its user is disabled"),
        Err(e) => e.into_response(),
    }
}

/// How long a login for this name and address must wait, if at all.
pub fn login_wait(
    failures: &LoginFailures,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let over = |count: u32, limit: u32| count.checked_sub(limit).map(|n| n + 1);
    let excess = over(failures.by_name, MAX_FAILURES_PER_NAME)
        .into_iter()
        .chain(over(failures.by_remote, MAX_FAILURES_PER_REMOTE))
        .max()?;
    let last = chrono::DateTime::parse_from_rfc3339(failures.last.as_deref()?)
        .ok()?
        .with_timezone(&chrono::Utc);
    let wait = FIRST_LOCKOUT
        .checked_mul(2u32.saturating_pow(excess.saturating_sub(1).min(16)))
        .unwrap_or(MAX_LOCKOUT)
        .min(MAX_LOCKOUT);
    let until = last + chrono::Duration::from_std(wait).ok()?;
    (until > now)
        .then(|| (until - now).to_std().ok())
        .flatten()
        .map(|d| d.max(Duration::from_secs(1)))
}

/// The outcome of checking a login.
pub enum LoginCheck {
    /// The password matched: the user to start a session for.
    Ok(UserView),
    /// Wrong name or password (the same answer for both).
    Wrong,
    /// Too many failures: try again after this long.
    Wait(Duration),
}

/// Checks a login: first whether this name or address must wait (then the
/// password is not even looked at), then the password; records the attempt.
pub async fn check_login(
    state: &AppState,
    name: String,
    password: String,
    remote: Option<String>,
) -> Result<LoginCheck, AppError> {
    let since = crate::store::rfc3339_at(
        chrono::Utc::now()
            - chrono::Duration::from_std(FAILURE_WINDOW).unwrap_or(chrono::Duration::zero()),
    );
    state
        .store(move |s| {
            let failures = s.login_failures(&name, remote.as_deref(), &since)?;
            if let Some(wait) = login_wait(&failures, chrono::Utc::now()) {
                s.audit(
                    &name,
                    "login.throttled",
                    None,
                    Some(&format!("user:{name}")),
                    &serde_json::json!({"remote": remote, "wait_seconds": wait.as_secs()}),
                )?;
                return Ok(LoginCheck::Wait(wait));
            }
            let candidate = s.login_candidate(&name)?;
            let ok = match &candidate {
                Some((_, hash)) => verify_password(hash, &password),
                None => {
                    verify_password(decoy_hash(), &password);
                    false
                }
            };
            s.record_login_attempt(&name, remote.as_deref(), ok)?;
            Ok(match candidate {
                Some((user, _)) if ok => LoginCheck::Ok(user),
                _ => LoginCheck::Wrong,
            })
        })
        .await
}

/// Starts a session: returns the cookie value (the only copy of the id).
pub async fn start_session(state: &AppState, user_id: i64) -> Result<String, AppError> {
    let id = random_secret();
    let hash = token_hash(&id);
    let expires = crate::store::rfc3339_at(
        chrono::Utc::now()
            + chrono::Duration::from_std(state.review().session_lifetime)
                .unwrap_or(chrono::Duration::hours(8)),
    );
    state
        .store(move |s| s.create_session(user_id, &hash, &expires))
        .await?;
    Ok(id)
}

/// How long a login (or invitation) form stays good.
const LOGIN_FORM_LIFETIME: i64 = 3600;

/// A fresh login form: the value of its cookie (a random nonce) and of its
/// hidden field, an HMAC of that nonce and the time with the server's key
/// (`issued.mac`). Without the key no pair of cookie and field can be made
/// up: an equal cookie and field prove nothing.
pub fn login_form_token(key: &[u8; 32]) -> (String, String) {
    form_token(key, "login form", None)
}

/// Whether the login form's field was signed by this server for the form
/// whose cookie came with it, within the form's lifetime.
pub fn login_form_ok(key: &[u8; 32], headers: &HeaderMap, sent: &str) -> bool {
    form_ok(key, headers, LOGIN_COOKIE, "login form", sent)
}

/// A form for a visitor without a session (the login form, an
/// invitation's *Continue* button): a cookie nonce and a hidden field that
/// is the server's HMAC of it, the issue time and `purpose` (what the form
/// is for: a field for one invitation does not pass for another). The
/// cookie is `SameSite=Strict`, so another site's page cannot post the
/// form with it. A nonce the browser already holds (`reuse`, from its
/// cookie) is kept, so two such pages open side by side both work.
pub fn form_token(key: &[u8; 32], purpose: &str, reuse: Option<String>) -> (String, String) {
    let nonce = reuse
        .filter(|n| {
            (16..=128).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(random_secret);
    let issued = chrono::Utc::now().timestamp();
    let field = format!("{issued}.{}", form_mac(key, purpose, &nonce, issued));
    (nonce, field)
}

fn form_mac(key: &[u8; 32], purpose: &str, nonce: &str, issued: i64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes a key of any length: this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(b"rxsync ");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(nonce.as_bytes());
    mac.update(b"\0");
    mac.update(issued.to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a form's field was signed by this server for `purpose` and for
/// the form whose cookie (`cookie_name`) came with it, within the form's
/// lifetime.
pub fn form_ok(
    key: &[u8; 32],
    headers: &HeaderMap,
    cookie_name: &str,
    purpose: &str,
    sent: &str,
) -> bool {
    let Some(nonce) = cookie(headers, cookie_name).filter(|c| !c.is_empty()) else {
        return false;
    };
    let Some((issued, mac)) = sent.split_once('.') else {
        return false;
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return false;
    };
    let age = chrono::Utc::now().timestamp() - issued;
    (-60..=LOGIN_FORM_LIFETIME).contains(&age) && same(&form_mac(key, purpose, &nonce, issued), mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(by_name: u32, by_remote: u32, last: &str) -> LoginFailures {
        LoginFailures {
            by_name,
            by_remote,
            last: Some(last.to_string()),
        }
    }

    #[test]
    fn logins_slow_down_after_too_many_failures() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:10Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let t = "2024-01-01T00:00:00Z";
        let rows = [
            (4, 0, None),
            (5, 0, Some(20)),
            (6, 0, Some(50)),
            (7, 0, Some(110)),
            (0, 19, None),
            (0, 20, Some(20)),
            (40, 0, Some(MAX_LOCKOUT.as_secs() - 10)),
        ];
        for (by_name, by_remote, wait) in rows {
            assert_eq!(
                login_wait(&failures(by_name, by_remote, t), now).map(|d| d.as_secs()),
                wait,
                "{by_name} by name, {by_remote} by address"
            );
        }
        let later = now + chrono::Duration::seconds(60);
        assert_eq!(login_wait(&failures(5, 0, t), later), None, "waited enough");
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("not a hash", "x"));
        assert!(matches!(hash_password("short"), Err(PasswordError::Length)));
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client_and_only_from_the_right() {
        let trusted = [
            crate::config::IpRange::parse("10.0.0.0/8").unwrap_or_else(|e| panic!("{e}")),
            crate::config::IpRange::parse("127.0.0.1").unwrap_or_else(|e| panic!("{e}")),
        ];
        let ip = |s: &str| {
            s.parse::<std::net::IpAddr>()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let rows: &[(&str, &[&str], &str)] = &[
            // An untrusted peer is the client, whatever it sends.
            ("203.0.113.7", &["198.51.100.1"], "203.0.113.7"),
            // A trusted peer: the nearest untrusted address, from the right.
            ("127.0.0.1", &["198.51.100.1"], "198.51.100.1"),
            (
                "127.0.0.1",
                &["6.6.6.6, 198.51.100.1, 10.1.2.3"],
                "198.51.100.1",
            ),
            ("127.0.0.1", &["6.6.6.6", "198.51.100.1"], "198.51.100.1"),
            // Nothing usable: the peer.
            ("127.0.0.1", &[], "127.0.0.1"),
            ("127.0.0.1", &["not-an-address"], "127.0.0.1"),
            ("127.0.0.1", &["10.0.0.1"], "127.0.0.1"),
        ];
        for (peer, forwarded, want) in rows {
            let mut headers = HeaderMap::new();
            for f in *forwarded {
                if let Ok(v) = axum::http::HeaderValue::from_str(f) {
                    headers.append("x-forwarded-for", v);
                }
            }
            assert_eq!(
                client_behind(ip(peer), &headers, &trusted),
                ip(want),
                "{peer} {forwarded:?}"
            );
        }
    }

    #[test]
    fn a_login_token_is_good_only_with_its_cookie_and_key() {
        let key = [7u8; 32];
        let (nonce, token) = login_form_token(&key);
        let with = |cookie: &str| {
            let mut h = HeaderMap::new();
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!("{LOGIN_COOKIE}={cookie}")) {
                h.insert(header::COOKIE, v);
            }
            h
        };
        assert!(login_form_ok(&key, &with(&nonce), &token));
        assert!(
            !login_form_ok(&[8u8; 32], &with(&nonce), &token),
            "another key"
        );
        assert!(!login_form_ok(&key, &with("other"), &token), "another form");
        assert!(
            !login_form_ok(&key, &with(&nonce), &nonce),
            "the cookie echoed"
        );
        let old = chrono::Utc::now().timestamp() - LOGIN_FORM_LIFETIME - 1;
        let stale = format!("{old}.{}", form_mac(&key, "login form", &nonce, old));
        assert!(!login_form_ok(&key, &with(&nonce), &stale), "expired");
    }

    #[test]
    fn a_form_token_is_good_only_for_its_purpose_and_keeps_a_held_nonce() {
        let key = [7u8; 32];
        let with = |cookie: &str| {
            let mut h = HeaderMap::new();
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!("{INVITE_COOKIE}={cookie}")) {
                h.insert(header::COOKIE, v);
            }
            h
        };
        let (nonce, field) = form_token(&key, "invitation aaa", None);
        assert!(form_ok(
            &key,
            &with(&nonce),
            INVITE_COOKIE,
            "invitation aaa",
            &field
        ));
        assert!(
            !form_ok(&key, &with(&nonce), INVITE_COOKIE, "invitation bbb", &field),
            "another invitation"
        );
        assert!(
            !form_ok(&key, &with(&nonce), LOGIN_COOKIE, "invitation aaa", &field),
            "another cookie"
        );
        assert!(
            !login_form_ok(&key, &with(&nonce), &field),
            "not a login form"
        );
        // A second page in the same browser keeps the nonce its cookie holds,
        // so the first page's form still passes.
        let (again, second) = form_token(&key, "invitation bbb", Some(nonce.clone()));
        assert_eq!(again, nonce);
        assert!(form_ok(
            &key,
            &with(&nonce),
            INVITE_COOKIE,
            "invitation aaa",
            &field
        ));
        assert!(form_ok(
            &key,
            &with(&nonce),
            INVITE_COOKIE,
            "invitation bbb",
            &second
        ));
        // A nonce that could not have come from us is not kept.
        for junk in ["", "short", "bad;value=with-a-semicolon-and-more"] {
            let (fresh, _) = form_token(&key, "x", Some(junk.to_string()));
            assert_ne!(fresh, junk);
        }
    }

    #[test]
    fn cookies_and_tokens() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; rxsync_session=abc; b=2".parse().expect("value"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let (token, hash) = new_api_token();
        assert!(token.starts_with("rxs_") && token.len() > 40);
        assert_eq!(hash, token_hash(&token));
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
