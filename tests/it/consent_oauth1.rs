//! `rxsync link start` for OAuth 1.0a providers, end to end against the
//! sandbox's three-legged endpoints: request token (signed with the
//! consumer credentials and `oauth_callback`), the printed authorize URL
//! followed by the test (the sandbox approves at once, or denies when
//! asked), the callback to the real binary's loopback listener, the access
//! token (signed with the request token credentials and the verifier) —
//! then a pull with the new link. Header and query placement, HMAC-SHA1
//! and RSA-SHA1. Every failure leaves no link and says which.

use std::time::Duration;

use serde_json::Value;

use crate::consent::{get, spawn_link_start};
use crate::pull::harness::{Home, REMOTE, SECRETS, oauth1_ccr};
use crate::support::{Sandbox, repo_path};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An OAuth 1.0a CCR provider at the sandbox that links through `port`.
fn provider(sandbox: &Sandbox, consumer: &str, method: &str, placement: &str, port: u16) -> String {
    format!(
        "{}request_token_url = \"oauth1/request_token\"\nauthorize_url = \"oauth1/authorize\"\naccess_token_url = \"oauth1/access_token\"\nredirect_uri = \"http://127.0.0.1:{port}/callback\"\n",
        oauth1_ccr("ehr", &sandbox.base, consumer, method, placement)
    )
}

fn links(home: &Home) -> Vec<Value> {
    home.rx(&["link", "list", "--format", "json"])
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn actions(home: &Home) -> Vec<String> {
    home.env
        .query_strings("SELECT action FROM audit WHERE action LIKE 'consent.%' ORDER BY id")
        .into_iter()
        .flatten()
        .collect()
}

/// Follows the authorize URL (with `extra` appended) to the sandbox's
/// redirect; returns the callback URL it names.
fn authorize(url: &str, extra: &str) -> String {
    let (status, location, body) = get(&format!("{url}{extra}"));
    assert_eq!(status, 302, "the sandbox's authorization redirects: {body}");
    location.expect("a Location")
}

fn three_legged_then_pull(consumer: &str, method: &str, placement: &str) {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&provider(&sandbox, consumer, method, placement, port));
    let started = spawn_link_start(&home.env, &home.config, "P1", "ehr", &[], SECRETS);
    let url = url::Url::parse(&started.url).expect("the first line is the authorize URL");
    assert_eq!(url.path(), "/oauth1/authorize");
    let request_token: String = url
        .query_pairs()
        .find(|(k, _)| k == "oauth_token")
        .map(|(_, v)| v.into_owned())
        .expect("oauth_token in the authorize URL");
    let callback = authorize(&started.url, &format!("&patient={REMOTE}"));
    assert!(
        callback.starts_with(&format!("http://127.0.0.1:{port}/callback?")),
        "{callback}"
    );
    let verifier = url::Url::parse(&callback)
        .expect("callback")
        .query_pairs()
        .find(|(k, _)| k == "oauth_verifier")
        .map(|(_, v)| v.into_owned())
        .expect("a verifier");
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    let run = started.finish();
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["provider"], "ehr");
    assert_eq!(link["scheme"], "oauth1");
    assert_eq!(link["remote_patient"], REMOTE);
    assert_eq!(link["state"], "active");
    assert_eq!(
        actions(&home),
        [
            "consent.start",
            "consent.callback",
            "consent.exchanged",
            "consent.linked"
        ]
    );
    // Neither the request token, its verifier nor a secret is stored or audited in the clear.
    let stored = home.stored_bytes();
    for value in [request_token.as_str(), verifier.as_str()] {
        assert!(!crate::pull::harness::contains(&stored, value));
        assert!(!run.stdout.contains(value) && !run.stderr.contains(value));
    }
    for (_, secret) in SECRETS {
        assert!(!crate::pull::harness::contains(&stored, secret));
    }
    let pulled = home.pull(Some("ehr"));
    assert_eq!(pulled.code, 0, "{pulled:?}");
    let (documents, regimens, _) = home.imported_rows();
    assert_eq!((documents, regimens), (1, 1));
    // A second consent of the same patient keeps the link's id when it
    // waits for a re-link.
    home.env.execute("UPDATE links SET state = 'needs_relink'");
    let again = spawn_link_start(&home.env, &home.config, "P1", "ehr", &[], SECRETS);
    let callback = authorize(&again.url, &format!("&patient={REMOTE}"));
    get(&callback);
    let relinked = again.finish();
    assert_eq!(relinked.code, 0, "{relinked:?}");
    assert_eq!(relinked.json()["id"], link["id"]);
}

#[test]
fn oauth1_three_legged_hmac_sha1_in_the_header_then_a_pull() {
    three_legged_then_pull("demo-hmac-header", "HMAC-SHA1", "header");
}

#[test]
fn oauth1_three_legged_hmac_sha1_in_the_query_then_a_pull() {
    three_legged_then_pull("demo-hmac-query", "HMAC-SHA1", "query");
}

#[test]
fn oauth1_three_legged_rsa_sha1_in_the_query_then_a_pull() {
    three_legged_then_pull("demo-rsa", "RSA-SHA1", "query");
}

#[test]
fn oauth1_three_legged_rsa_sha1_in_the_header_then_a_pull() {
    three_legged_then_pull("demo-rsa", "RSA-SHA1", "header");
}

#[test]
fn oauth1_denial_stores_nothing_and_says_so() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&provider(
        &sandbox,
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
        port,
    ));
    let started = spawn_link_start(&home.env, &home.config, "P1", "ehr", &[], SECRETS);
    let callback = authorize(&started.url, "&deny=1");
    assert!(
        callback.contains("oauth_problem=permission_denied"),
        "{callback}"
    );
    let (status, _, page) = get(&callback);
    assert_eq!(status, 400);
    assert!(page.contains("permission_denied"), "{page}");
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("refused the authorization"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing stored"), "{}", run.stderr);
    assert!(links(&home).is_empty());
    assert_eq!(
        actions(&home),
        ["consent.start", "consent.callback", "consent.denied"]
    );
}

#[test]
fn oauth1_a_callback_with_another_token_stores_nothing() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&provider(
        &sandbox,
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
        port,
    ));
    let started = spawn_link_start(&home.env, &home.config, "P1", "ehr", &[], SECRETS);
    let callback = authorize(&started.url, "");
    let forged = crate::consent::with_param(&callback, "oauth_token", "forged");
    let (status, _, _) = get(&forged);
    assert_eq!(status, 400);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("oauth_token is not the request token"),
        "{}",
        run.stderr
    );
    assert!(links(&home).is_empty());
    assert_eq!(
        actions(&home),
        ["consent.start", "consent.callback", "consent.failed"]
    );
    assert_eq!(
        home.env.query_string("SELECT outcome FROM consent_flows"),
        "failed"
    );
}

#[test]
fn oauth1_a_callback_without_a_verifier_stores_nothing() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&provider(
        &sandbox,
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
        port,
    ));
    let started = spawn_link_start(&home.env, &home.config, "P1", "ehr", &[], SECRETS);
    let token = url::Url::parse(&started.url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "oauth_token")
        .map(|(_, v)| v.into_owned())
        .expect("token");
    let (status, _, _) = get(&format!(
        "http://127.0.0.1:{port}/callback?oauth_token={token}"
    ));
    assert_eq!(status, 400);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no oauth_verifier"), "{}", run.stderr);
    assert!(links(&home).is_empty());
}

#[test]
fn oauth1_a_timeout_stores_nothing() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&provider(
        &sandbox,
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
        port,
    ));
    let started = spawn_link_start(
        &home.env,
        &home.config,
        "P1",
        "ehr",
        &["--timeout", "1"],
        SECRETS,
    );
    assert!(started.url.contains("/oauth1/authorize?oauth_token="));
    std::thread::sleep(Duration::from_millis(50));
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
fn oauth1_a_failed_exchange_or_request_token_stores_nothing() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let home = Home::new(&provider(
        &sandbox,
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
        port,
    ));
    // A wrong consumer secret: the request token request is refused.
    let wrong: Vec<(&str, &str)> = SECRETS
        .iter()
        .copied()
        .map(|(k, v)| {
            if k == "SANDBOX_HMAC_HEADER_SECRET" {
                (k, "not-the-secret")
            } else {
                (k, v)
            }
        })
        .collect();
    let run = home.rx_with(
        &["link", "start", "--patient", "P1", "--provider", "ehr"],
        b"",
        &wrong,
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("request token"), "{}", run.stderr);
    assert!(run.stderr.contains("signature_invalid"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-secret"));
    assert!(run.stdout.is_empty(), "no URL printed");
    assert!(links(&home).is_empty());
    assert_eq!(actions(&home), ["consent.failed"]);
    // The access token request fails when the verifier is wrong.
    let started = spawn_link_start(&home.env, &home.config, "P1", "ehr", &[], SECRETS);
    let callback = authorize(&started.url, "");
    let mut forged = url::Url::parse(&callback).expect("url");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "oauth_verifier" {
                (k, "wrong".into())
            } else {
                (k, v)
            }
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, _, _) = get(forged.as_str());
    assert_eq!(status, 400);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("access token"), "{}", run.stderr);
    assert!(run.stderr.contains("verifier_invalid"), "{}", run.stderr);
    assert!(links(&home).is_empty());
    assert_eq!(
        actions(&home)[1..],
        ["consent.start", "consent.callback", "consent.failed"]
    );
}

/// A request token endpoint on loopback that answers one request with
/// `answer` (status line and headers included) and hands back the
/// request's head.
fn answer_once(answer: Vec<u8>) -> (u16, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 8192];
        let n = s.read(&mut buf).unwrap_or(0);
        let _ = s.write_all(&answer);
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    (port, server)
}

/// The sandbox provider `ehr` with its request token endpoint at
/// `127.0.0.1:at`.
fn with_request_token_url(sandbox: &Sandbox, port: u16, at: u16) -> String {
    provider(sandbox, "demo-hmac-header", "HMAC-SHA1", "header", port).replace(
        "request_token_url = \"oauth1/request_token\"",
        &format!("request_token_url = \"http://127.0.0.1:{at}/request_token\""),
    )
}

/// `link start` for P1 at `ehr` that gives up after 5 s.
fn start_briefly(home: &Home) -> crate::support::Run {
    home.rx_with(
        &[
            "link",
            "start",
            "--patient",
            "P1",
            "--provider",
            "ehr",
            "--timeout",
            "5",
        ],
        b"",
        SECRETS,
    )
}

#[test]
fn oauth1_a_token_answer_over_64_kib_is_refused_and_stores_nothing() {
    let sandbox = Sandbox::start();
    let port = free_port();
    // A request token endpoint whose answer never ends within 64 KiB.
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\noauth_token=t&oauth_token_secret=s&oauth_callback_confirmed=true&pad=".to_vec();
    answer.extend(vec![b'a'; 200 * 1024]);
    let (big, server) = answer_once(answer);
    let home = Home::new(&with_request_token_url(&sandbox, port, big));
    // Read whole, the padded answer would be accepted and the flow would
    // wait for a callback: a short timeout keeps that failure quick.
    let run = start_briefly(&home);
    let _ = server.join();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("request token"), "{}", run.stderr);
    assert!(
        run.stderr.contains("answer is over 65536 bytes"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no URL printed");
    assert!(links(&home).is_empty());
    assert_eq!(actions(&home), ["consent.failed"]);
}

/// A request token answer that does not confirm the callback (RFC 5849
/// §2.1: `oauth_callback_confirmed=true` is required) is refused: an
/// answer without the field, and one with `false`. `link start` exits 1
/// saying so, prints no authorize URL, and nothing is stored — not the
/// link, and not the request token or its secret.
#[test]
fn oauth1_a_request_token_without_oauth_callback_confirmed_is_refused() {
    let sandbox = Sandbox::start();
    let port = free_port();
    const TOKEN: &str = "unconfirmed-request-token-7f3a";
    const SECRET: &str = "unconfirmed-request-secret-c91e";
    for (name, answer) in [
        (
            "no oauth_callback_confirmed",
            format!("oauth_token={TOKEN}&oauth_token_secret={SECRET}"),
        ),
        (
            "oauth_callback_confirmed=false",
            format!(
                "oauth_token={TOKEN}&oauth_token_secret={SECRET}&oauth_callback_confirmed=false"
            ),
        ),
    ] {
        let (at, server) = answer_once(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .into_bytes(),
        );
        let home = Home::new(&with_request_token_url(&sandbox, port, at));
        let run = start_briefly(&home);
        let request = server.join().expect("the provider thread");
        // It was the request token request, carrying the callback.
        assert!(request.contains(" /request_token"), "{name}: {request}");
        assert!(request.contains("oauth_callback"), "{name}: {request}");
        assert_eq!(run.code, 1, "{name}: {run:?}");
        assert!(
            run.stderr.contains("did not confirm the callback")
                && run
                    .stderr
                    .contains("oauth_callback_confirmed=true is required"),
            "{name}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{name}: no URL printed: {run:?}");
        for shown in [&run.stdout, &run.stderr] {
            assert!(!shown.contains(SECRET), "{name}: {shown}");
        }
        assert!(links(&home).is_empty(), "{name}");
        assert_eq!(actions(&home), ["consent.failed"], "{name}");
        let stored = home.stored_bytes();
        for value in [TOKEN, SECRET] {
            assert!(
                !crate::pull::harness::contains(&stored, value),
                "{name}: {value} is stored"
            );
        }
    }
}

#[test]
fn oauth1_consent_config_errors_name_provider_key_and_file() {
    let sandbox = Sandbox::start();
    let text = provider(&sandbox, "demo-hmac-header", "HMAC-SHA1", "header", 8765)
        .replace("access_token_url = \"oauth1/access_token\"\n", "");
    let home = Home::new(&text);
    let run = home.rx(&["link", "start", "--patient", "P1", "--provider", "ehr"]);
    assert_eq!(run.code, 2, "{run:?}");
    for part in ["ehr", "auth.access_token_url", "config.toml"] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    let text = oauth1_ccr(
        "ehr",
        &sandbox.base,
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
    );
    let home = Home::new(&text);
    let run = home.rx(&["link", "start", "--patient", "P1", "--provider", "ehr"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("request_token_url"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

/// tests/oracle/oauth1_server.py: oauthlib 4.0.1's OAuth 1.0a endpoints
/// behind a small http.server, serving samples/ccr/demo.xml as the one
/// protected resource.
pub(crate) struct Oracle {
    child: std::process::Child,
    pub(crate) port: u16,
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Oracle {
    pub(crate) fn start() -> Oracle {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .arg(repo_path("tests/oracle/oauth1_server.py"))
            .arg(repo_path("samples/ccr/demo.xml"))
            .arg(repo_path("tests/fixtures/oauthlib-rsa-test-key.pem"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server prints its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("oauth1_server.py did not start (is oauthlib installed? see tests/oracle/requirements.txt): {line:?}")
            });
        Oracle { child, port }
    }

    pub(crate) fn record(&self) -> Value {
        let (status, _, body) = get(&format!("http://127.0.0.1:{}/_record", self.port));
        assert_eq!(status, 200);
        serde_json::from_str(&body).expect("record JSON")
    }

    /// A CCR provider at the oracle, linking through `port`.
    pub(crate) fn provider(&self, method: &str, placement: &str, port: u16) -> String {
        let credentials = match method {
            "RSA-SHA1" => format!(
                "consumer_key = \"rxsync-oracle-rsa\"\nrsa_private_key_file = \"{}\"",
                repo_path("tests/fixtures/oauthlib-rsa-test-key.pem").display()
            ),
            _ => "consumer_key = \"rxsync-oracle-hmac\"\nconsumer_secret_env = \"ORACLE_CONSUMER_SECRET\"".to_string(),
        };
        format!(
            r#"
[[providers]]
id = "oracle"
kind = "ccr"
base_url = "http://127.0.0.1:{}/"
document_url = "ccr/{{patient}}"
retries = 1
[providers.auth]
scheme = "oauth1"
{credentials}
signature_method = "{method}"
placement = "{placement}"
request_token_url = "oauth/request_token"
authorize_url = "oauth/authorize"
access_token_url = "oauth/access_token"
redirect_uri = "http://127.0.0.1:{port}/callback"
"#,
            self.port
        )
    }
}

const ORACLE_SECRET: (&str, &str) = ("ORACLE_CONSUMER_SECRET", "oracle-hmac-consumer-secret");

fn oracle_three_legged_then_pull(method: &str, placement: &str) {
    let oracle = Oracle::start();
    let port = free_port();
    let home = Home::new(&oracle.provider(method, placement, port));
    let started = spawn_link_start(
        &home.env,
        &home.config,
        "P1",
        "oracle",
        &[],
        &[ORACLE_SECRET],
    );
    if started.url.is_empty() {
        panic!("link start printed no URL: {:?}", started.finish());
    }
    assert!(
        started.url.starts_with(&format!(
            "http://127.0.0.1:{}/oauth/authorize?oauth_token=",
            oracle.port
        )),
        "{}",
        started.url
    );
    let callback = authorize(&started.url, "");
    assert!(callback.contains("oauth_verifier="), "{callback}");
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    let run = started.finish();
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["provider"], "oracle");
    assert_eq!(link["remote_patient"], "oracle-p1");
    let pulled = home.rx_with(
        &[
            "import",
            "--patient",
            "P1",
            "--provider",
            "oracle",
            "--format",
            "json",
        ],
        b"",
        &[ORACLE_SECRET],
    );
    assert_eq!(pulled.code, 0, "{pulled:?}");
    let (documents, regimens, _) = home.imported_rows();
    assert_eq!((documents, regimens), (1, 1));
    let record = oracle.record();
    assert_eq!(record["request_tokens"], 1, "{record}");
    assert_eq!(record["access_tokens"], 1, "{record}");
    assert_eq!(record["resources_ok"], 1, "{record}");
    assert_eq!(record["refused"], serde_json::json!([]), "{record}");
    // oauthlib saw every request signed in the configured place and way.
    let expected = if placement == "header" {
        "AUTH_HEADER"
    } else {
        "QUERY"
    };
    let types = record["signature_types"].as_array().expect("types");
    assert_eq!(types.len(), 3, "{record}");
    assert!(types.iter().all(|t| t == expected), "{record}");
    assert!(
        record["methods"]
            .as_array()
            .expect("methods")
            .iter()
            .all(|m| m == method)
    );
}

#[test]
#[ignore = "needs Python oauthlib 4.0.1 (tests/oracle/requirements.txt); .ci/run runs it"]
fn oracle_oauthlib_three_legged_hmac_sha1_in_the_header_then_a_pull() {
    oracle_three_legged_then_pull("HMAC-SHA1", "header");
}

#[test]
#[ignore = "needs Python oauthlib 4.0.1 (tests/oracle/requirements.txt); .ci/run runs it"]
fn oracle_oauthlib_three_legged_hmac_sha1_in_the_query_then_a_pull() {
    oracle_three_legged_then_pull("HMAC-SHA1", "query");
}

#[test]
#[ignore = "needs Python oauthlib 4.0.1 (tests/oracle/requirements.txt); .ci/run runs it"]
fn oracle_oauthlib_three_legged_rsa_sha1_in_the_query_then_a_pull() {
    oracle_three_legged_then_pull("RSA-SHA1", "query");
}

#[test]
#[ignore = "needs Python oauthlib 4.0.1 (tests/oracle/requirements.txt); .ci/run runs it"]
fn oracle_oauthlib_three_legged_hmac_sha256_in_the_header_then_a_pull() {
    oracle_three_legged_then_pull("HMAC-SHA256", "header");
}

#[test]
#[ignore = "needs Python oauthlib 4.0.1 (tests/oracle/requirements.txt); .ci/run runs it"]
fn oracle_oauthlib_denial_stores_nothing() {
    let oracle = Oracle::start();
    let port = free_port();
    let home = Home::new(&oracle.provider("HMAC-SHA1", "query", port));
    let started = spawn_link_start(
        &home.env,
        &home.config,
        "P1",
        "oracle",
        &[],
        &[ORACLE_SECRET],
    );
    let callback = authorize(&started.url, "&deny=1");
    let (status, _, _) = get(&callback);
    assert_eq!(status, 400);
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("permission_denied"), "{}", run.stderr);
    assert!(links(&home).is_empty());
    assert_eq!(oracle.record()["access_tokens"], 0);
}

/// What the echoing provider knows and answers with: the consumer secret
/// (shared with it), the request token and its secret (it issued them) and
/// the verifier (it issued it).
const ECHO_CONSUMER_SECRET: &str = "echo-consumer-secret-77";
const ECHO_REQUEST_TOKEN: &str = "echo-request-token-4242";
const ECHO_REQUEST_SECRET: &str = "echo-request-secret-ABCDEF";
const ECHO_VERIFIER: &str = "echo-verifier-XYZ-98765";

/// A provider whose token endpoints echo every secret it knows back in
/// their errors, under other names, plain and encoded: `/rt_refuse`
/// refuses the request token, `/rt_ok` issues one, `/at_refuse` refuses the
/// access token, `/at_redirect` redirects with the secrets in `Location`.
fn echoing_provider() -> u16 {
    use base64::Engine;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or("");
            let b64 = base64::engine::general_purpose::STANDARD.encode(ECHO_CONSUMER_SECRET);
            let echoed = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("oauth_problem", ECHO_VERIFIER)
                .append_pair(
                    "oauth_problem_advice",
                    &format!(
                        "consumer {ECHO_CONSUMER_SECRET} ({b64}) token {ECHO_REQUEST_TOKEN} secret {ECHO_REQUEST_SECRET} verifier {ECHO_VERIFIER}"
                    ),
                )
                .finish();
            let answer = if path.starts_with("/rt_ok") {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\noauth_token={ECHO_REQUEST_TOKEN}&oauth_token_secret={ECHO_REQUEST_SECRET}&oauth_callback_confirmed=true"
                )
            } else if path.starts_with("/at_redirect") {
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: /elsewhere/{ECHO_REQUEST_SECRET}?v={ECHO_VERIFIER}&c={ECHO_CONSUMER_SECRET}&oauth_token={ECHO_REQUEST_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            } else {
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n{echoed}"
                )
            };
            let _ = s.write_all(answer.as_bytes());
        }
    });
    port
}

fn echo_home(echo: u16, request_token: &str, access_token: &str, port: u16) -> Home {
    Home::new(&format!(
        r#"
[[providers]]
id = "echo"
kind = "ccr"
base_url = "http://127.0.0.1:{echo}/"
document_url = "ccr/{{patient}}"
[providers.auth]
scheme = "oauth1"
consumer_key = "echo-consumer"
consumer_secret_env = "ECHO_CONSUMER_SECRET"
signature_method = "HMAC-SHA1"
placement = "header"
request_token_url = "{request_token}"
authorize_url = "authorize"
access_token_url = "{access_token}"
redirect_uri = "http://127.0.0.1:{port}/callback"
"#
    ))
}

/// None of `secrets` (what rxsync sent or received: a provider echoing a
/// value rxsync never saw cannot be recognised) reaches stdout, stderr,
/// the store (the audit included) or the page the browser got.
fn nothing_echoed(home: &Home, secrets: &[&str], texts: &[&str]) {
    let stored = home.stored_bytes();
    for &secret in secrets {
        assert!(
            !crate::pull::harness::contains(&stored, secret),
            "{secret} stored"
        );
        for t in texts {
            assert!(!t.contains(secret), "{secret} in {t}");
        }
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(ECHO_CONSUMER_SECRET);
    assert!(!crate::pull::harness::contains(&stored, &b64));
    for t in texts {
        assert!(!t.contains(&b64), "{b64} in {t}");
    }
}

#[test]
fn oauth1_token_endpoint_errors_never_carry_an_echoed_secret() {
    let echo = echoing_provider();
    let env = [("ECHO_CONSUMER_SECRET", ECHO_CONSUMER_SECRET)];
    // The request token is refused with every secret echoed.
    let home = echo_home(echo, "rt_refuse", "at_refuse", free_port());
    let run = home.rx_with(
        &["link", "start", "--patient", "P1", "--provider", "echo"],
        b"",
        &env,
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("request token") && run.stderr.contains("[redacted]"),
        "{}",
        run.stderr
    );
    assert_eq!(actions(&home), ["consent.failed"]);
    nothing_echoed(&home, &[ECHO_CONSUMER_SECRET], &[&run.stdout, &run.stderr]);
    assert!(links(&home).is_empty());

    // The access token request is refused, then redirected, echoing them.
    for (endpoint, says) in [("at_refuse", "401"), ("at_redirect", "302")] {
        let port = free_port();
        let home = echo_home(echo, "rt_ok", endpoint, port);
        let started = spawn_link_start(&home.env, &home.config, "P1", "echo", &[], &env);
        assert!(started.url.contains(ECHO_REQUEST_TOKEN), "{}", started.url);
        let (status, _, page) = get(&format!(
            "http://127.0.0.1:{port}/callback?oauth_token={ECHO_REQUEST_TOKEN}&oauth_verifier={ECHO_VERIFIER}"
        ));
        assert_eq!(status, 400, "{page}");
        let run = started.finish();
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stderr.contains("access token") && run.stderr.contains(says),
            "{}",
            run.stderr
        );
        nothing_echoed(
            &home,
            &[
                ECHO_CONSUMER_SECRET,
                ECHO_REQUEST_TOKEN,
                ECHO_REQUEST_SECRET,
                ECHO_VERIFIER,
            ],
            &[&run.stdout, &run.stderr, &page],
        );
        assert!(links(&home).is_empty());
        assert_eq!(
            actions(&home),
            ["consent.start", "consent.callback", "consent.failed"]
        );
    }

    // A denial whose words echo the secrets the provider knows.
    let port = free_port();
    let home = echo_home(echo, "rt_ok", "at_refuse", port);
    let started = spawn_link_start(&home.env, &home.config, "P1", "echo", &[], &env);
    let (status, _, page) = get(&format!(
        "http://127.0.0.1:{port}/callback?oauth_token={ECHO_REQUEST_TOKEN}&oauth_problem={ECHO_REQUEST_SECRET}&oauth_problem_advice=consumer+{ECHO_CONSUMER_SECRET}"
    ));
    assert_eq!(status, 400, "{page}");
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("refused the authorization"),
        "{}",
        run.stderr
    );
    nothing_echoed(
        &home,
        &[
            ECHO_CONSUMER_SECRET,
            ECHO_REQUEST_TOKEN,
            ECHO_REQUEST_SECRET,
        ],
        &[&run.stdout, &run.stderr, &page],
    );
    assert_eq!(
        actions(&home),
        ["consent.start", "consent.callback", "consent.denied"]
    );
}

/// The oracle's provider with `[providers.identity]` reading the MRN from
/// its OAuth 1.0a-signed `/profile` (or from `profile_path`).
fn oracle_with_identity(oracle: &Oracle, port: u16, profile_path: &str) -> Home {
    let block = format!(
        "{}[providers.identity]\nremote = \"profile:/patient/mrn\"\nprofile_url = \"http://127.0.0.1:{}/{profile_path}\"\nlocal = \"mrn\"\nalso = [\"family_name\"]\n",
        oracle.provider("HMAC-SHA1", "header", port),
        oracle.port
    );
    Home::new(&block)
}

/// Patient P2 with `mrn`, linked at the oracle by `link start`.
fn oracle_link_start(oracle: &Oracle, home: &Home, port: u16, mrn: &str) -> crate::support::Run {
    home.rx(&[
        "patient",
        "add",
        "--id",
        "P2",
        "--mrn",
        mrn,
        "--name",
        "Ora Oracle",
    ])
    .ok();
    let started = spawn_link_start(
        &home.env,
        &home.config,
        "P2",
        "oracle",
        &[],
        &[ORACLE_SECRET],
    );
    assert!(
        started
            .url
            .starts_with(&format!("http://127.0.0.1:{}/oauth/authorize", oracle.port)),
        "{}",
        started.url
    );
    let callback = authorize(&started.url, "");
    assert!(
        callback.starts_with(&format!("http://127.0.0.1:{port}/")),
        "{callback}"
    );
    get(&callback);
    started.finish()
}

fn linked_detail(home: &Home) -> Value {
    serde_json::from_str(
        &home
            .env
            .query_string("SELECT detail FROM audit WHERE action = 'consent.linked'"),
    )
    .expect("JSON")
}

#[test]
#[ignore = "needs Python oauthlib 4.0.1 (tests/oracle/requirements.txt); .ci/run runs it"]
fn oracle_oauthlib_identity_read_at_consent_matches_and_links_active() {
    let oracle = Oracle::start();
    let port = free_port();
    let home = oracle_with_identity(&oracle, port, "profile");
    let run = oracle_link_start(&oracle, &home, port, "MRN-ORACLE-1");
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["state"], "active", "{link}");
    assert_eq!(linked_detail(&home)["identity"], "matched");
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'identity.match'"),
        1
    );
    let row = home.link_row(link["id"].as_i64().expect("id"));
    assert_eq!(
        row["remote_identity"]["identifiers"]["profile:/patient/mrn"], "MRN-ORACLE-1",
        "{row}"
    );
    assert_eq!(
        oracle.record()["profiles_ok"],
        1,
        "read with the new, signed token"
    );
    // The profile read is audited with the link, as a pull's reads are.
    let access: Value = serde_json::from_str(&home.env.query_string(&format!(
        "SELECT detail FROM audit WHERE action = 'provider.access' AND subject = 'link:{}'",
        link["id"]
    )))
    .expect("JSON");
    assert_eq!(access["purpose"], "identity", "{access}");
    assert!(
        access["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/profile")),
        "{access}"
    );
}

#[test]
#[ignore = "needs Python oauthlib 4.0.1 (tests/oracle/requirements.txt); .ci/run runs it"]
fn oracle_oauthlib_identity_mismatch_at_consent_holds_the_link() {
    let oracle = Oracle::start();
    let port = free_port();
    let home = oracle_with_identity(&oracle, port, "profile");
    let run = oracle_link_start(&oracle, &home, port, "MRN-SOMEONE-ELSE");
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.json()["id"].as_i64().expect("id");
    assert_eq!(home.link_row(id)["state"], "held");
    assert_eq!(linked_detail(&home)["identity"], "held");
    assert_eq!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'"
        ),
        1
    );
    home.rx_with(
        &["import", "--patient", "P2", "--provider", "oracle"],
        b"",
        &[ORACLE_SECRET],
    );
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM regimens WHERE patient_id = 'P2'"),
        0,
        "a held link wrote a regimen"
    );
    assert_eq!(
        oracle.record()["resources_ok"],
        0,
        "nothing fetched from a held link"
    );
}

#[test]
#[ignore = "needs Python oauthlib 4.0.1 (tests/oracle/requirements.txt); .ci/run runs it"]
fn oracle_oauthlib_an_unreadable_identity_at_consent_stores_nothing() {
    let oracle = Oracle::start();
    let port = free_port();
    let home = oracle_with_identity(&oracle, port, "no-such-profile");
    let run = oracle_link_start(&oracle, &home, port, "MRN-ORACLE-1");
    assert_eq!(run.code, 1, "{run:?}");
    for part in [
        "could not be established",
        "answered 404",
        "OAuth 1.0a has no revocation",
        "nothing stored",
    ] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    assert!(links(&home).is_empty());
    assert_eq!(home.env.query_i64("SELECT COUNT(*) FROM links"), 0);
    assert_eq!(
        actions(&home),
        ["consent.start", "consent.callback", "consent.failed"]
    );
    assert_eq!(oracle.record()["access_tokens"], 1);
}
