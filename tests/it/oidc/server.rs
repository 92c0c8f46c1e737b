//! The harness around tests/oidc/server.mjs: start it, read its endpoints,
//! call its test endpoints and oidc-provider's own (token, revocation,
//! introspection) with reqwest, and kill it on drop. Also the leak check that
//! looks for issued tokens in text by their SHA-256, and a test of the server
//! on its own. It never prints a token.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::repo_path;

/// The secret of both test clients, `rxsync` and `rxsync-post`.
pub(crate) const SECRET: &str = "rxsync-test-secret";
/// The scope `/test/grant` grants.
pub(super) const SCOPE: &str = "openid offline_access patient/MedicationRequest.rs";

/// What server.mjs prints on its one stdout line.
#[derive(Debug, Deserialize)]
pub(crate) struct Endpoints {
    pub(super) issuer: String,
    pub(super) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
    pub(crate) revocation_endpoint: String,
    pub(super) introspection_endpoint: String,
    pub(super) userinfo_endpoint: String,
    pub(super) jwks_uri: String,
    pub(crate) fhir_base: String,
}

/// A running tests/oidc/server.mjs, killed on drop.
pub(crate) struct OidcServer {
    child: Child,
    pub(crate) endpoints: Endpoints,
    /// The server's stderr (oidc-provider's warnings, any stack trace),
    /// shown when a test fails.
    log: Arc<Mutex<String>>,
}

impl OidcServer {
    pub(crate) fn start() -> OidcServer {
        OidcServer::start_with(&[])
    }

    /// With extra flags (`--redirect-uri URI`, `--client-key PEM:KID`).
    pub(super) fn start_with(args: &[&str]) -> OidcServer {
        let dir = repo_path("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider/package.json").exists(),
            "oidc-provider is not installed: run `npm ci --prefix tests/oidc --no-audit --no-fund` \
             (.ci/run does)"
        );
        // One server starts at a time: a dozen Node processes loading
        // oidc-provider at once on two busy cores took over two minutes
        // to print their endpoints. Held until this one has printed.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .arg("--exit-on-stdin-close")
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20 or later is needed): {e}"));

        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                sink.lock()
                    .expect("log")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });

        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Nothing more is expected; keep the pipe drained regardless.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server.mjs did not print its endpoints ({other:?}); stderr:\n{}",
                    log.lock().expect("log")
                );
            }
        };
        let endpoints: Endpoints = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("server.mjs printed {line:?}, not its endpoints: {e}"));
        assert!(
            endpoints.issuer.starts_with("http://127.0.0.1:"),
            "{endpoints:?}"
        );
        OidcServer {
            child,
            endpoints,
            log,
        }
    }

    /// Mints a grant as the authorization_code grant would, and returns the
    /// raw token response (access and refresh token, `patient`, …).
    pub(crate) fn grant(&self, client_id: &str, patient: &str, expires_in: Option<u64>) -> Value {
        let mut body = json!({"client_id": client_id, "patient": patient});
        if let Some(secs) = expires_in {
            body["expires_in"] = json!(secs);
        }
        let (status, text) = self.post_json("/test/grant", &body);
        assert_eq!(status, 200, "/test/grant: {text}");
        let token: Value = serde_json::from_str(&text).expect("token response JSON");
        assert_eq!(token["patient"], patient);
        assert_eq!(token["scope"], SCOPE);
        token
    }

    /// Ends the patient's current access tokens at the server (as if they
    /// had expired early); the refresh token stays good.
    pub(super) fn expire_access(&self, patient: &str) {
        let (status, text) = self.post_json("/test/expire-access", &json!({"patient": patient}));
        assert_eq!(status, 200, "/test/expire-access: {text}");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert!(v["ended"].as_u64() >= Some(1), "nothing to expire: {v}");
    }

    /// A client as oidc-provider keeps it (`GET /test/client`), secret included.
    pub(super) fn client(&self, client_id: &str) -> Value {
        // oidc-provider's client ids are URL-safe (base64url).
        let url = format!(
            "{}/test/client?client_id={client_id}",
            self.endpoints.issuer
        );
        let (status, text) = http(|c| c.get(url));
        assert_eq!(status, 200, "/test/client: {text}");
        serde_json::from_str(&text).expect("client JSON")
    }

    /// What the server saw: refreshes, token requests, FHIR requests, …
    pub(crate) fn stats(&self) -> Value {
        let url = format!("{}/test/stats", self.endpoints.issuer);
        let (status, text) = http(|c| c.get(url));
        assert_eq!(status, 200, "/test/stats: {text}");
        serde_json::from_str(&text).expect("stats JSON")
    }

    /// SHA-256 (hex) of every token the server has issued.
    pub(super) fn issued(&self) -> BTreeSet<String> {
        self.stats()["issued_token_sha256"]
            .as_array()
            .expect("issued_token_sha256")
            .iter()
            .filter_map(|h| h.as_str().map(str::to_string))
            .collect()
    }

    /// A refresh_token grant as client `rxsync` (client_secret_basic):
    /// (status, token or error response).
    pub(super) fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let form = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ]);
        let url = self.endpoints.token_endpoint.clone();
        let (status, text) = http(|c| {
            c.post(url)
                .basic_auth("rxsync", Some(SECRET))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
        });
        (
            status,
            serde_json::from_str(&text).expect("token endpoint JSON"),
        )
    }

    /// RFC 7009 revocation as client `rxsync` (client_secret_basic), the way
    /// curl would: `curl -u rxsync:SECRET REVOCATION -d token=… -d token_type_hint=…`.
    pub(super) fn revoke(&self, token: &str, hint: &str) {
        let form = form(&[("token", token), ("token_type_hint", hint)]);
        let url = self.endpoints.revocation_endpoint.clone();
        let (status, text) = http(|c| {
            c.post(url)
                .basic_auth("rxsync", Some(SECRET))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
        });
        assert_eq!(status, 200, "revocation: {text}");
    }

    /// RFC 7662 introspection as client `rxsync`: is the token active?
    pub(super) fn active(&self, token: &str) -> bool {
        let form = form(&[("token", token)]);
        let url = self.endpoints.introspection_endpoint.clone();
        let (status, text) = http(|c| {
            c.post(url)
                .basic_auth("rxsync", Some(SECRET))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
        });
        assert_eq!(status, 200, "introspection: {text}");
        let v: Value = serde_json::from_str(&text).expect("introspection JSON");
        v["active"] == true
    }

    fn post_json(&self, path: &str, body: &Value) -> (u16, String) {
        let url = format!("{}{path}", self.endpoints.issuer);
        let bytes = serde_json::to_vec(body).expect("JSON");
        http(|c| {
            c.post(url)
                .header("content-type", "application/json")
                .body(bytes)
        })
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- server.mjs stderr ---\n{}",
                self.log.lock().map(|l| l.clone()).unwrap_or_default()
            );
        }
    }
}

/// One HTTP exchange with reqwest on a throwaway runtime: (status, body).
fn http(request: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder) -> (u16, String) {
    static CRYPTO: Once = Once::new();
    CRYPTO.call_once(|| {
        // reqwest is built with rustls-no-provider; plain http needs none,
        // but building a client asks for the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        let response = request(&client).send().await.expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("HTTP body"))
    })
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// How many words of `text` are tokens whose SHA-256 (hex) is in `issued`.
/// A word is a run of base64url characters and dots (oidc-provider's opaque
/// tokens are 43 base64url characters, its id_tokens JWTs); the run, the run
/// without dots at its ends, and each dot-separated part are tried.
pub(super) fn issued_tokens_in(text: &str, issued: &BTreeSet<String>) -> usize {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let sha = |w: &str| hex::encode(Sha256::digest(w.as_bytes()));
    text.split(|c: char| !is_token_char(c))
        .filter(|run| run.len() >= 16)
        .filter(|run| {
            std::iter::once(*run)
                .chain(std::iter::once(run.trim_matches('.')))
                .chain(run.split('.'))
                .any(|w| w.len() >= 16 && issued.contains(&sha(w)))
        })
        .count()
}

/// The server itself, without rxsync: what tests/oidc/README.md says
/// oidc-provider does on rotation and reuse, and that the leak check finds
/// an issued token in text. (The by-hand version is tests/oidc/check.sh.)
#[test]
fn the_test_server_rotates_refresh_tokens_and_a_reuse_revokes_the_grant() {
    let server = OidcServer::start();
    let token = server.grant("rxsync", "ehr-1001", None);
    let first = token["refresh_token"].as_str().expect("rt");

    let (status, refreshed) = server.refresh(first);
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["patient"], "ehr-1001", "SMART patient added");
    assert_eq!(refreshed["token_type"], "Bearer");
    let second = refreshed["refresh_token"].as_str().expect("rotated rt");
    assert_ne!(second, first, "rotated");
    assert!(server.active(second));
    assert!(!server.active(first), "the rotated-out token is spent");
    let first_at = token["access_token"].as_str().expect("at");
    assert!(server.active(first_at), "earlier access tokens stay valid");

    let (status, reused) = server.refresh(first);
    assert_eq!(status, 400, "{reused}");
    assert_eq!(reused["error"], "invalid_grant", "{reused}");
    assert!(!server.active(second), "the reuse revoked the whole grant");
    let at = refreshed["access_token"].as_str().expect("at");
    assert!(!server.active(at), "access tokens of the grant too");

    let stats = server.stats();
    assert_eq!(stats["refreshes"], 1, "{stats}");
    assert_eq!(stats["token_errors"], json!(["invalid_grant"]), "{stats}");
    let issued = server.issued();
    assert_eq!(issued_tokens_in(&format!("Bearer {at}."), &issued), 1);
    let id_token = refreshed["id_token"].as_str().expect("id_token");
    assert_eq!(issued_tokens_in(&format!("got \"{id_token}\""), &issued), 1);
    assert_eq!(issued_tokens_in(SECRET, &issued), 0);
}
