//! `rxsync link start` against oidc-provider: the authorization code flow
//! with PKCE through its real login and consent pages (its dev
//! interactions, submitted headless with a cookie jar as a browser would),
//! the code exchanged by rxsync with `client_secret_basic` or
//! `private_key_jwt` (RS384 and ES384), a pull, and a refresh afterwards
//! with the same client authentication.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

use super::server::{OidcServer, SECRET, issued_tokens_in};
use crate::consent::{get, spawn_link_start};
use crate::support::TestEnv;

const SECRET_ENV: &str = "RXSYNC_TEST_OIDC_SECRET";
const SMART_PATIENT: &str = "ehr-2002";

/// A browser's cookie jar, by name only (the flow stays on one origin).
#[derive(Default)]
pub(super) struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    /// One request; keeps the cookies it sets: (status, Location, body).
    fn request(
        &mut self,
        method: &str,
        url: &str,
        form: Option<&str>,
    ) -> (u16, Option<String>, String) {
        let u = url::Url::parse(url).expect("url");
        let authority = format!(
            "{}:{}",
            u.host_str().expect("host"),
            u.port().expect("port")
        );
        let target = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        let mut stream = std::net::TcpStream::connect(&authority).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        if !cookie.is_empty() {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("send");
        stream.write_all(body.as_bytes()).expect("send body");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut location = None;
        for line in head.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("location") {
                // Relative locations resolve against the request URL.
                location = Some(u.join(value).expect("location").to_string());
            } else if name.eq_ignore_ascii_case("set-cookie") {
                let pair = value.split(';').next().unwrap_or("");
                if let Some((k, v)) = pair.split_once('=') {
                    if v.is_empty() {
                        self.cookies.remove(k);
                    } else {
                        self.cookies.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
        (status, location, body.to_string())
    }

    /// Follows the authorization URL through login (as `login`) and
    /// consent; returns the final redirect to the client (not followed).
    pub(super) fn consent(&mut self, authorization_url: &str, login: &str, issuer: &str) -> String {
        let mut url = authorization_url.to_string();
        for _ in 0..12 {
            if !url.starts_with(issuer) {
                return url;
            }
            let (status, location, body) = self.request("GET", &url, None);
            let next = match (status, location) {
                (302 | 303, Some(l)) => l,
                (200, None) if url.contains("/interaction/") => {
                    let form = if body.contains("name=\"login\"") {
                        format!("prompt=login&login={login}&password=x")
                    } else {
                        "prompt=consent".to_string()
                    };
                    let (status, location, body) = self.request("POST", &url, Some(&form));
                    assert!(matches!(status, 302 | 303), "{status} {body}");
                    location.expect("a redirect after the form")
                }
                (status, _) => panic!("unexpected {status} at {url}: {body}"),
            };
            url = next;
        }
        panic!("no redirect back to the client after 12 hops");
    }
}

/// An rxsync home with a provider at the server linking by consent.
fn home(server: &OidcServer, port: u16, auth: &str) -> (TestEnv, String) {
    let env = TestEnv::with_dictionary_and(&["P1"]);
    let e = &server.endpoints;
    let config = env.write(
        "config.toml",
        format!(
            r#"[[providers]]
id = "oidc"
kind = "fhir"
base_url = "{fhir_base}"
resources = ["MedicationRequest"]
[providers.auth]
scheme = "oauth2"
token_url = "{token_url}"
authorize_url = "{authorize_url}"
redirect_uri = "http://127.0.0.1:{port}/callback"
placement = "header"
scopes = ["openid", "offline_access", "patient/MedicationRequest.rs"]
authorize_params = {{ prompt = "consent" }}
{auth}
"#,
            fhir_base = e.fhir_base,
            token_url = e.token_endpoint,
            authorize_url = e.authorization_endpoint,
        )
        .as_bytes(),
    );
    (env, config)
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Consent, pull, expire, pull again (a refresh): with client `client_id`.
fn consent_pull_refresh(
    server: &OidcServer,
    env: &TestEnv,
    config: &str,
    client_id: &str,
    method: &str,
) {
    let secrets = [(SECRET_ENV, SECRET)];
    let started = spawn_link_start(env, config, "P1", "oidc", &[], &secrets);
    let q: BTreeMap<String, String> = url::Url::parse(&started.url)
        .expect("authorization URL")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q.contains_key("nonce"), "openid asks for a nonce");
    let mut browser = Browser::default();
    let callback = browser.consent(&started.url, SMART_PATIENT, &server.endpoints.issuer);
    assert!(callback.contains("code="), "{callback}");
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    let run = started.finish();
    let link: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("link JSON ({e}): {run:?}"));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(link["remote_patient"], SMART_PATIENT);
    let stats = server.stats();
    let exchange = stats["token_log"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["grant_type"] == "authorization_code"))
        .cloned()
        .expect("an authorization_code exchange");
    assert_eq!(exchange["client_id"], client_id, "{exchange}");
    assert_eq!(exchange["client_auth"], method, "{exchange}");
    assert_eq!(exchange["status"], 200, "{exchange}");

    let pull = |what: &str| {
        let mut cmd = env.rxsync();
        cmd.arg("--config")
            .arg(config)
            .args([
                "import",
                "--patient",
                "P1",
                "--provider",
                "oidc",
                "--format",
                "json",
            ])
            .env(SECRET_ENV, SECRET);
        let out = cmd.output().expect("rxsync import");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{what}: {text}");
        text
    };
    let first = pull("first pull");
    server.expire_access(SMART_PATIENT);
    let second = pull("pull after the access token ended");
    let stats = server.stats();
    let refresh = stats["token_log"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["grant_type"] == "refresh_token"))
        .cloned()
        .expect("a refresh");
    assert_eq!(refresh["client_auth"], method, "{refresh}");
    assert_eq!(refresh["status"], 200, "{refresh}");
    let issued = server.issued();
    for text in [&run.stdout, &run.stderr, &first, &second] {
        assert_eq!(issued_tokens_in(text, &issued), 0, "a token leaked: {text}");
        assert!(!text.contains(SECRET));
    }
}

#[test]
fn link_start_through_oidc_provider_login_and_consent_with_client_secret_basic() {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let server = OidcServer::start_with(&["--redirect-uri", &redirect]);
    let (env, config) = home(
        &server,
        port,
        &format!(
            "client_id = \"rxsync\"\nclient_auth = \"basic\"\nclient_secret_env = \"{SECRET_ENV}\""
        ),
    );
    consent_pull_refresh(&server, &env, &config, "rxsync", "client_secret_basic");
}

fn private_key_jwt(alg: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let private = dir.path().join("key.pem");
    let public = dir.path().join("key.pub.pem");
    let opts: &[&str] = match alg {
        "RS384" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    };
    assert!(
        std::process::Command::new("openssl")
            .arg("genpkey")
            .args(opts)
            .arg("-out")
            .arg(&private)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl")
            .success()
    );
    assert!(
        std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .expect("openssl")
            .success()
    );
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let key = format!("{}:kid-{alg}", public.display());
    let server = OidcServer::start_with(&["--redirect-uri", &redirect, "--client-key", &key]);
    let (env, config) = home(
        &server,
        port,
        &format!(
            "client_id = \"rxsync-jwt\"\nclient_auth = \"private_key_jwt\"\nprivate_key_file = \"{}\"\nkey_id = \"kid-{alg}\"\nalgorithm = \"{alg}\"",
            private.display()
        ),
    );
    consent_pull_refresh(&server, &env, &config, "rxsync-jwt", "private_key_jwt");
}

#[test]
fn link_start_through_oidc_provider_with_private_key_jwt_rs384() {
    private_key_jwt("RS384");
}

#[test]
fn link_start_through_oidc_provider_with_private_key_jwt_es384() {
    private_key_jwt("ES384");
}
