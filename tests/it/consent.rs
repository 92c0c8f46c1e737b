//! `rxsync link start` end to end: the real binary listens on its loopback
//! redirect URI, the test plays the browser (follows the printed URL to the
//! sandbox's non-interactive consent, then the redirect to the callback by
//! hand), and the link is made — or, for a denial, a wrong state, a
//! replayed callback, a failed exchange or a timeout, not made.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::pull::harness::{Home, SECRETS, fhir_at, stats};
use crate::support::{Run, Sandbox, TestEnv};

/// A free loopback port (bound, read, released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A FHIR provider at the sandbox that links by consent through `port`.
pub(crate) fn consent_provider(
    sandbox: &Sandbox,
    id: &str,
    client: &str,
    port: u16,
    extra: &str,
) -> String {
    format!(
        "{}authorize_url = \"{}/oauth2/authorize\"\nredirect_uri = \"http://127.0.0.1:{port}/callback\"\nscopes = [\"patient/MedicationRequest.rs\", \"offline_access\"]\nauthorize_params = {{ aud = \"{}/fhir\" }}\n{extra}",
        fhir_at(sandbox, id, client, "header"),
        sandbox.base,
        sandbox.base,
    )
}

/// A running `rxsync link start` and the first line it printed.
pub(crate) struct Started {
    child: Child,
    pub(crate) url: String,
    /// Reads the rest of stdout (the link, as JSON).
    rest: std::thread::JoinHandle<String>,
}

/// Starts `link start --patient P1 --provider ID --format json` with the
/// demo secrets (and `env` after them) and reads its first stdout line.
fn start(home: &Home, provider: &str, extra: &[&str], env: &[(&str, &str)]) -> Started {
    let env: Vec<(&str, &str)> = SECRETS.iter().chain(env).copied().collect();
    spawn_link_start(&home.env, &home.config, "P1", provider, extra, &env)
}

/// Starts `rxsync --config C --db D link start --patient P --provider ID
/// --format json EXTRA` with `env`, and reads its first stdout line.
pub(crate) fn spawn_link_start(
    home: &TestEnv,
    config: &str,
    patient: &str,
    provider: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Started {
    let mut cmd = home.rxsync();
    cmd.arg("--config")
        .arg(config)
        .args([
            "link",
            "start",
            "--patient",
            patient,
            "--provider",
            provider,
            "--format",
            "json",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run rxsync link start");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first line");
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        rest
    });
    Started {
        child,
        url: line.trim_end().to_string(),
        rest,
    }
}

impl Started {
    /// Waits for the process; its stdout after the first line, its stderr, its exit code.
    pub(crate) fn finish(mut self) -> Run {
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let status = self.child.wait().expect("wait");
        let stdout = self.rest.join().expect("stdout reader");
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

/// One raw HTTP/1.1 GET: (status, Location, body).
pub(crate) fn get(url: &str) -> (u16, Option<String>, String) {
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
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .map(str::to_string);
    (status, location, body.to_string())
}

/// Plays the browser at the provider: follows the authorization URL to the
/// consent's redirect and returns the callback URL it names (not followed).
pub(crate) fn consent(url: &str) -> String {
    let (status, location, body) = get(url);
    assert_eq!(status, 302, "the sandbox's consent redirects: {body}");
    location.expect("a Location")
}

fn links(home: &Home) -> Vec<Value> {
    home.rx(&["link", "list", "--format", "json"])
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn audit_actions(home: &Home) -> Vec<String> {
    home.env
        .query_strings("SELECT action FROM audit WHERE action LIKE 'consent.%' ORDER BY id")
        .into_iter()
        .flatten()
        .collect()
}

/// `url` with its query parameter `name` set to `value` (a forged callback).
pub(crate) fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = url::Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

#[test]
fn link_start_links_by_consent_and_a_pull_works() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let started = start(&home, "ehr", &[], &[]);
    let auth = url::Url::parse(&started.url).expect("the first line is the authorization URL");
    let q: std::collections::HashMap<String, String> = auth.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert_eq!(
        q["redirect_uri"],
        format!("http://127.0.0.1:{port}/callback")
    );
    assert_eq!(q["scope"], "patient/MedicationRequest.rs offline_access");
    assert_eq!(q["aud"], format!("{}/fhir", sandbox.base));
    assert!(!q.contains_key("nonce"), "no openid, no nonce");
    let callback = consent(&format!("{}&login_hint=remote-p1", started.url));
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You can close this window"), "{page}");
    let run = started.finish();
    let link = run.json();
    assert_eq!(link["provider"], "ehr");
    assert_eq!(link["remote_patient"], "remote-p1");
    assert_eq!(link["state"], "active");
    assert_eq!(stats(&sandbox)["code_exchanges"], 1);
    // The state is stored only as a hash, the verifier only sealed.
    let state = q["state"].clone();
    let stored = home.stored_bytes();
    assert!(!crate::pull::harness::contains(&stored, &state));
    assert_eq!(
        audit_actions(&home),
        [
            "consent.start",
            "consent.callback",
            "consent.exchanged",
            "consent.linked"
        ]
    );
    let pulled = home.pull(Some("ehr"));
    assert_eq!(pulled.code, 0, "{pulled:?}");
    let (documents, regimens, _) = home.imported_rows();
    assert_eq!((documents, regimens), (1, 1));
    // A consent of a linked patient re-links the same link.
    let again = start(&home, "ehr", &[], &[]);
    let callback = consent(&again.url);
    get(&callback);
    let relinked = again.finish().json();
    assert_eq!(relinked["id"], link["id"]);
}

/// `discover = true` with only a client id, its secret and a redirect URI:
/// the authorization endpoint (like the token endpoint) comes from the
/// sandbox's SMART configuration, read once and cached for the pull.
#[test]
fn link_start_with_discover_true_takes_the_discovered_authorization_endpoint_then_pulls() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&format!(
        "[[providers]]\nid = \"sbx\"\nkind = \"fhir\"\nbase_url = \"{}/fhir\"\ndiscover = true\n[providers.auth]\nscheme = \"oauth2\"\nclient_id = \"demo-client\"\nclient_secret_env = \"SANDBOX_CLIENT_SECRET\"\nredirect_uri = \"http://127.0.0.1:{port}/callback\"\n",
        sandbox.base
    ));
    let started = start(&home, "sbx", &[], &[]);
    let auth = url::Url::parse(&started.url).expect("the first line is the authorization URL");
    assert!(
        started
            .url
            .starts_with(&format!("{}/oauth2/authorize?", sandbox.base)),
        "the discovered authorization_endpoint: {}",
        started.url
    );
    let q: std::collections::HashMap<String, String> = auth.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "demo-client");
    assert_eq!(
        q["redirect_uri"],
        format!("http://127.0.0.1:{port}/callback")
    );
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM provider_discovery WHERE provider = 'sbx'"),
        1,
        "discovery was read and cached"
    );
    let callback = consent(&format!("{}&login_hint=remote-p1", started.url));
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    let run = started.finish();
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["provider"], "sbx");
    assert_eq!(link["state"], "active");
    assert_eq!(stats(&sandbox)["code_exchanges"], 1);
    // The secret never reaches the output.
    assert!(
        !run.stdout.contains("demo-client-secret") && !run.stderr.contains("demo-client-secret")
    );
    let pulled = home.pull(Some("sbx"));
    assert_eq!(pulled.code, 0, "{pulled:?}");
    let (documents, regimens, _) = home.imported_rows();
    assert_eq!((documents, regimens), (1, 1));
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'provider.discovered'"),
        1,
        "the pull used the cached discovery"
    );
}

/// `discover = true` and no client id: the client rxsync registered
/// (`provider register`, sealed) is the one the consent sends and the
/// code exchange authenticates as.
#[test]
fn link_start_uses_the_registered_client_when_none_is_configured() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&format!(
        "[[providers]]\nid = \"sbx\"\nkind = \"fhir\"\nbase_url = \"{}/fhir\"\ndiscover = true\n[providers.auth]\nscheme = \"oauth2\"\nredirect_uri = \"http://127.0.0.1:{port}/callback\"\n",
        sandbox.base
    ));
    let registered = home
        .rx(&[
            "provider",
            "register",
            "--provider",
            "sbx",
            "--format",
            "json",
        ])
        .json();
    let client_id = registered["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let started = start(&home, "sbx", &[], &[]);
    let auth = url::Url::parse(&started.url).expect("the first line is the authorization URL");
    let q: std::collections::HashMap<String, String> = auth.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], client_id);
    let callback = consent(&started.url);
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    let run = started.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["state"], "active");
    assert_eq!(stats(&sandbox)["code_exchanges"], 1);
    let pulled = home.pull(Some("sbx"));
    assert_eq!(pulled.code, 0, "{pulled:?}");
}

#[test]
fn a_denial_stores_no_link_and_says_so() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let started = start(&home, "ehr", &[], &[]);
    let callback = consent(&format!("{}&login_hint=deny", started.url));
    assert!(callback.contains("error=access_denied"), "{callback}");
    let (status, _, page) = get(&callback);
    assert_eq!(status, 400);
    assert!(page.contains("access_denied"), "{page}");
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("access_denied"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing stored"), "{}", run.stderr);
    assert!(links(&home).is_empty());
    assert_eq!(
        audit_actions(&home),
        ["consent.start", "consent.callback", "consent.denied"]
    );
}

#[test]
fn a_wrong_state_stores_no_link() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let started = start(&home, "ehr", &[], &[]);
    let callback = consent(&started.url);
    let forged = with_param(&callback, "state", "forged");
    let (status, _, _) = get(&forged);
    assert_eq!(status, 400);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("state matches no consent"),
        "{}",
        run.stderr
    );
    assert!(links(&home).is_empty());
    assert_eq!(
        home.env.query_string("SELECT outcome FROM consent_flows"),
        "abandoned",
        "our own flow cannot be taken later"
    );
    assert_eq!(
        stats(&sandbox)["code_exchanges"],
        0,
        "no exchange was tried"
    );
}

#[test]
fn a_replayed_callback_stores_nothing_more() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let first = start(&home, "ehr", &[], &[]);
    let callback = consent(&first.url);
    get(&callback);
    assert_eq!(first.finish().code, 0);
    let before = home
        .env
        .query_i64("SELECT COUNT(*) FROM audit WHERE action IN ('link.add', 'link.relink')");
    // The same callback again, to a second `link start`.
    let second = start(&home, "ehr", &[], &[]);
    let (status, _, _) = get(&callback);
    assert_eq!(status, 400);
    let run = second.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("already used"), "{}", run.stderr);
    assert_eq!(links(&home).len(), 1);
    let after = home
        .env
        .query_i64("SELECT COUNT(*) FROM audit WHERE action IN ('link.add', 'link.relink')");
    assert_eq!(before, after, "no re-link either");
    assert_eq!(stats(&sandbox)["code_exchanges"], 1);
}

#[test]
fn a_timeout_stores_no_link() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let started = start(&home, "ehr", &["--timeout", "1"], &[]);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(links(&home).is_empty());
    assert_eq!(
        home.env.query_string("SELECT outcome FROM consent_flows"),
        "abandoned"
    );
}

#[test]
fn a_failed_exchange_stores_no_link() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let started = start(
        &home,
        "ehr",
        &[],
        &[("SANDBOX_CLIENT_SECRET", "not-the-secret")],
    );
    let callback = consent(&started.url);
    let (status, _, _) = get(&callback);
    assert_eq!(status, 400);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-secret"));
    assert!(links(&home).is_empty());
    assert_eq!(
        audit_actions(&home),
        ["consent.start", "consent.callback", "consent.failed"]
    );
}

#[test]
fn a_redirect_uri_that_is_not_loopback_is_a_config_error() {
    let sandbox = Sandbox::start();
    let text = consent_provider(&sandbox, "ehr", "demo-client", 8765, "").replace(
        "http://127.0.0.1:8765/callback",
        "http://localhost:8765/callback",
    );
    let home = Home::new(&text);
    let run = home.rx(&["link", "start", "--patient", "P1", "--provider", "ehr"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("redirect_uri") && run.stderr.contains("loopback"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no URL printed");
}

/// Makes a key pair with openssl: (private key path, public key path).
pub(crate) fn keypair(dir: &std::path::Path, alg: &str) -> (String, String) {
    let private = dir.join(format!("{alg}.pem"));
    let public = dir.join(format!("{alg}.pub.pem"));
    let opts: &[&str] = match alg {
        "RS384" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    };
    let ok = Command::new("openssl")
        .arg("genpkey")
        .args(opts)
        .arg("-out")
        .arg(&private)
        .stderr(Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl genpkey");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl pkey");
    (private.display().to_string(), public.display().to_string())
}

/// Consent with `private_key_jwt` (SMART App Launch 2.x asymmetric client
/// authentication) at the exchange and at the refresh afterwards.
fn private_key_jwt(alg: &str) {
    let data = tempfile::tempdir().expect("tempdir");
    let (private, public) = keypair(data.path(), alg);
    std::fs::write(
        data.path().join("sandbox.toml"),
        format!(
            r#"
[[clients]]
id = "jwt-client"
private_key_jwt = true
[[bulk.clients]]
id = "jwt-client"
kid = "kid-1"
algorithm = "{alg}"
public_key_file = "{public}"
"#
        ),
    )
    .expect("sandbox.toml");
    let sandbox = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    let port = free_port();
    let extra = format!(
        "client_auth = \"private_key_jwt\"\nprivate_key_file = \"{private}\"\nkey_id = \"kid-1\"\nalgorithm = \"{alg}\"\n"
    );
    let home = Home::new(&consent_provider(
        &sandbox,
        "ehr",
        "jwt-client",
        port,
        &extra,
    ));
    let started = start(&home, "ehr", &[], &[]);
    get(&consent(&started.url));
    let run = started.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(stats(&sandbox)["code_exchanges"], 1);
    // One 401 at the FHIR server: the pull refreshes, signing a new assertion.
    let (status, _) = sandbox.admin(
        "/admin/faults",
        Some(&serde_json::json!({"path_prefix": "/fhir/Medication", "status": 401, "times": 1})),
    );
    assert_eq!(status, 200);
    let pulled = home.pull(Some("ehr"));
    assert_eq!(pulled.code, 0, "{pulled:?}");
    assert!(stats(&sandbox)["refreshes"].as_u64().unwrap_or(0) >= 1);
}

#[test]
fn private_key_jwt_rs384_links_and_refreshes() {
    private_key_jwt("RS384");
}

#[test]
fn private_key_jwt_es384_links_and_refreshes() {
    private_key_jwt("ES384");
}

/// The review app serves rxsync's public `private_key_jwt` keys — the
/// current one and the previous one during a rotation — as a JWK Set that
/// verifies what rxsync signs, and never the private halves.
#[test]
fn the_review_app_serves_current_and_previous_keys_as_a_jwks() {
    let env = TestEnv::new();
    let (new_private, _) = keypair(env.dir.path(), "RS384");
    let (old_private, _) = keypair(env.dir.path(), "ES384");
    let config = env.write(
        "config.toml",
        format!(
            r#"[[providers]]
id = "ehr"
kind = "fhir"
base_url = "https://fhir.example.org/r4"
[providers.auth]
scheme = "oauth2"
token_url = "https://auth.example.org/token"
authorize_url = "https://auth.example.org/authorize"
redirect_uri = "http://127.0.0.1:8765/callback"
client_id = "rxsync"
client_auth = "private_key_jwt"
private_key_file = "{new_private}"
key_id = "kid-2026-12"
algorithm = "RS384"
previous_private_key_file = "{old_private}"
previous_key_id = "kid-2026-06"
previous_algorithm = "ES384"
"#
        )
        .as_bytes(),
    );
    let review = crate::review_server::Review::serve_with(env, &["--config", &config]);
    let (status, _, body) = get(&format!("{}/.well-known/jwks.json", review.base));
    assert_eq!(status, 200, "{body}");
    let set: Value = serde_json::from_str(&body).expect("JSON");
    let keys = set["keys"].as_array().expect("keys");
    let kids: Vec<&str> = keys.iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids, ["kid-2026-12", "kid-2026-06"]);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[1]["crv"], "P-384");
    assert!(!body.contains("\"d\""), "no private part: {body}");
    // What rxsync signs with the current key verifies with the served key.
    let key = rxsync::fetch::backend::AssertionKey::load(&rxsync::config::AssertionKeySettings {
        private_key_file: new_private.into(),
        key_id: "kid-2026-12".into(),
        algorithm: rxsync::config::AssertionAlg::Rs384,
    })
    .expect("key");
    let token_url = url::Url::parse("https://auth.example.org/token").expect("url");
    let assertion =
        rxsync::fetch::backend::client_assertion("rxsync", &token_url, &key, chrono::Utc::now())
            .expect("signs");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).expect("a JWK");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS384);
    v.set_audience(&["https://auth.example.org/token"]);
    use secrecy::ExposeSecret as _;
    jsonwebtoken::decode::<Value>(
        assertion.expose_secret(),
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key"),
        &v,
    )
    .expect("verifies");
}

/// Each way of authenticating the client at the code exchange: Basic
/// (`Authorization` header), form parameters, and a public client's bare
/// `client_id` (`client_auth = "none"`); the sandbox refuses any other.
#[test]
fn the_code_exchange_authenticates_as_configured() {
    let sandbox = Sandbox::start();
    for (client, auth, header) in [
        ("demo-client", "basic", true),
        ("demo-client", "post", false),
        ("demo-public", "none", false),
    ] {
        let port = free_port();
        let extra = format!("client_auth = \"{auth}\"\n");
        let home = Home::new(&consent_provider(&sandbox, "ehr", client, port, &extra));
        crate::pull::harness::clear_requests(&sandbox);
        let started = start(&home, "ehr", &[], &[]);
        let callback = consent(&started.url);
        let code = url::Url::parse(&callback)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("a code");
        get(&callback);
        let run = started.finish();
        assert_eq!(run.code, 0, "{auth}: {run:?}");
        let token_requests: Vec<Value> = crate::pull::harness::requests(&sandbox)
            .into_iter()
            .filter(|r| r["path"] == "/oauth2/token")
            .collect();
        assert_eq!(token_requests.len(), 1, "{auth}");
        assert_eq!(
            token_requests[0]["headers"].get("authorization").is_some(),
            header,
            "{auth}"
        );
        // Neither the code nor the state is kept or shown.
        let stored = home.stored_bytes();
        assert!(!crate::pull::harness::contains(&stored, &code), "{auth}");
        assert!(!run.stdout.contains(&code) && !run.stderr.contains(&code));
    }
}

/// A callback after the flow's ten minutes: refused, nothing stored, and
/// the code never reaches the token endpoint.
#[test]
fn an_expired_consent_stores_no_link() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let started = start(&home, "ehr", &[], &[]);
    let callback = consent(&started.url);
    // Ten minutes pass (the flow's expiry moved into the past).
    home.env
        .execute("UPDATE consent_flows SET expires_at = '2000-01-01T00:00:00.000Z'");
    let (status, _, _) = get(&callback);
    assert_eq!(status, 400);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    assert!(links(&home).is_empty());
    assert_eq!(stats(&sandbox)["code_exchanges"], 0);
    assert_eq!(
        home.env.query_string("SELECT outcome FROM consent_flows"),
        "expired"
    );
}

#[test]
fn a_token_answer_naming_an_unusable_remote_patient_stores_no_link() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let started = start(&home, "ehr", &[], &[]);
    // The sandbox names the consenting patient after login_hint: 300
    // characters are no id any request could carry.
    let hint = "p".repeat(300);
    let callback = consent(&format!("{}&login_hint={hint}", started.url));
    let _ = get(&callback);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("not a usable id"), "{}", run.stderr);
    assert!(!run.stderr.contains(&hint), "quoted whole: {}", run.stderr);
    assert!(links(&home).is_empty());
}

/// Scopes are limited to what is configured: a provider that grants more
/// than was asked makes no link, the flow ended at its `scope` step, and
/// the tokens it issued revoked there (RFC 7009).
#[test]
fn an_overgranted_consent_stores_no_link_and_revokes_the_tokens() {
    let sandbox = Sandbox::start();
    let (status, answer) = sandbox.admin(
        "/admin/consent",
        Some(&serde_json::json!({"extra_scope": "patient/*.write user/*.*"})),
    );
    assert_eq!(status, 200, "{answer}");
    let port = free_port();
    let home = Home::new(&consent_provider(&sandbox, "ehr", "demo-client", port, ""));
    let started = start(&home, "ehr", &[], &[]);
    let (status, _, _) = get(&consent(&started.url));
    assert_eq!(status, 400);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("did not ask for (patient/*.write user/*.*)"),
        "{}",
        run.stderr
    );
    assert!(links(&home).is_empty());
    assert_eq!(
        audit_actions(&home),
        ["consent.start", "consent.callback", "consent.failed"]
    );
    let failed: serde_json::Value = serde_json::from_str(
        &home
            .env
            .query_string("SELECT detail FROM audit WHERE action = 'consent.failed'"),
    )
    .expect("JSON");
    assert_eq!(failed["step"], "scope", "{failed}");
    assert_eq!(failed["token"], "revoked", "{failed}");
    let stats = crate::pull::harness::stats(&sandbox);
    assert_eq!(stats["code_exchanges"], 1, "the code was exchanged");
    assert_eq!(stats["revocations"], 1);
    assert_eq!(home.env.query_i64("SELECT COUNT(*) FROM links"), 0);
}
