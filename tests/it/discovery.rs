//! Discovery and registration, driving the real binary against the
//! sandbox: `provider discover` prints a block that, written into a config
//! unchanged (plus the client the user adds), links (by `link add`, and by
//! a consent through `link start` on the block's own `redirect_uri`) and
//! pulls; it falls
//! back from the SMART configuration to `/metadata`'s `oauth-uris` to the
//! OpenID configuration, and refuses plain http to a remote host and bad
//! documents (HTML, wrong JSON, huge) with a clear error. `discover = true`
//! reads the documents when first needed and caches them (the second use
//! sends no discovery request) until they expire (an expired row is read
//! again from the server). `provider register` registers at the
//! sandbox (RFC 7591), keeps the client sealed (neither the secret nor the
//! client id is in the database by value, nor in any output) and pulls
//! with it; a `private_key_jwt` and a public (`none`) registration send
//! what they must (checked in the body an in-test endpoint received). The
//! same against oidc-provider lives in `oidc/registration.rs`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::{Value, json};

use crate::pull::harness::{Home, clear_requests, contains, requests, stats};
use crate::support::{Run, Sandbox};

/// What a user adds to a discovered block: the administrator-registered
/// client (appended lines land in `[providers.auth]`, the block's last table).
const CLIENT: &str = "client_id = \"demo-client\"\nclient_secret_env = \"SANDBOX_CLIENT_SECRET\"\n";

fn discover(home: &Home, url: &str, extra: &[&str]) -> Run {
    let mut args = vec!["provider", "discover", url];
    args.extend(extra);
    home.rx(&args)
}

fn outcome(run: &Run) -> String {
    let reports = Home::reports(run);
    assert_eq!(reports.len(), 1, "{run:?}");
    reports[0]["outcome"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_discovered_block_written_unchanged_links_and_pulls() {
    let sandbox = Sandbox::start();
    let home = Home::new("");
    let run = discover(&home, &format!("{}/fhir", sandbox.base), &["--id", "sbx"]);
    let block = run.ok().to_string();
    assert!(
        block.contains(&format!("token_url = \"{}/oauth2/token\"", sandbox.base)),
        "{block}"
    );
    assert!(
        block.contains("# FHIR version (CapabilityStatement fhirVersion): 4.0.1"),
        "{block}"
    );
    assert!(
        block.contains("# PKCE (code_challenge_methods_supported): S256"),
        "{block}"
    );
    // What was not found is said on stderr too.
    assert!(
        run.stderr
            .contains("note: not found: userinfo_endpoint: not announced"),
        "{}",
        run.stderr
    );
    std::fs::write(&home.config, format!("{block}{CLIENT}")).unwrap();

    // An expired access token: the pull refreshes at the discovered token endpoint.
    let (link, _) = home.link_oauth2(&sandbox, "sbx", "demo-client", json!({"expires_in": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    run.ok();
    assert_eq!(outcome(&run), "imported", "{run:?}");
    assert_eq!(stats(&sandbox)["refreshes"], 1);
    // And the discovered revocation endpoint ends the grant.
    let revoked = home.rx(&["link", "revoke", &link.to_string()]);
    assert!(revoked.ok().contains("revoked at"), "{revoked:?}");
    assert_eq!(stats(&sandbox)["revocations"], 1);
}

/// The port of the `redirect_uri` a discovered block carries.
const DISCOVERED_REDIRECT_PORT: &str = "8765";

/// `link start` on a block discovered and written unchanged (plus only the
/// client it asks for): it listens on the block's own loopback
/// `redirect_uri`, sends the patient to the discovered authorization
/// endpoint with the discovered scopes and SMART `aud`, exchanges the code
/// at the discovered token endpoint, and the link pulls. The block's port
/// is fixed, so a busy port is waited for, not changed.
#[test]
fn a_discovered_block_written_unchanged_drives_a_consent_with_link_start() {
    let sandbox = Sandbox::start();
    let home = Home::new("");
    let block = discover(&home, &format!("{}/fhir", sandbox.base), &["--id", "sbx"])
        .ok()
        .to_string();
    let redirect =
        format!("redirect_uri = \"http://127.0.0.1:{DISCOVERED_REDIRECT_PORT}/callback\"");
    assert!(block.contains(&redirect), "{block}");
    assert!(
        block.contains(&format!(
            "authorize_url = \"{}/oauth2/authorize\"",
            sandbox.base
        )),
        "{block}"
    );
    let config = format!("{block}{CLIENT}");
    std::fs::write(&home.config, &config).unwrap();
    assert_eq!(std::fs::read_to_string(&home.config).unwrap(), config);

    let started = (0..40)
        .find_map(|_| {
            let s = crate::consent::spawn_link_start(
                &home.env,
                &home.config,
                "P1",
                "sbx",
                &[],
                crate::pull::harness::SECRETS,
            );
            if !s.url.is_empty() {
                return Some(s);
            }
            // Another test's listener holds the port: try again shortly.
            let run = s.finish();
            assert!(run.stderr.contains(DISCOVERED_REDIRECT_PORT), "{run:?}");
            std::thread::sleep(Duration::from_millis(250));
            None
        })
        .expect("the redirect_uri's port stayed busy");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&started.url)
        .expect("the first line is the authorization URL")
        .query_pairs()
        .into_owned()
        .collect();
    assert!(
        started
            .url
            .starts_with(&format!("{}/oauth2/authorize?", sandbox.base)),
        "{}",
        started.url
    );
    assert_eq!(q["client_id"], "demo-client");
    assert_eq!(q["aud"], format!("{}/fhir", sandbox.base));
    assert_eq!(
        q["redirect_uri"],
        format!("http://127.0.0.1:{DISCOVERED_REDIRECT_PORT}/callback")
    );
    assert!(q["scope"].contains("patient/MedicationRequest"), "{q:?}");
    let callback = crate::consent::consent(&format!("{}&login_hint=remote-p1", started.url));
    let (status, _, page) = crate::consent::get(&callback);
    assert_eq!(status, 200, "{page}");
    let run = started.finish();
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["provider"], "sbx");
    assert_eq!(link["remote_patient"], "remote-p1");
    assert_eq!(link["state"], "active");
    assert_eq!(stats(&sandbox)["code_exchanges"], 1);
    assert!(
        !run.stdout.contains("demo-client-secret") && !run.stderr.contains("demo-client-secret")
    );

    let run = home.pull(Some("sbx"));
    run.ok();
    assert_eq!(outcome(&run), "imported", "{run:?}");
    assert_eq!(home.imported_rows().0, 1);
}

#[test]
fn discovery_falls_back_to_oauth_uris_then_to_the_openid_configuration() {
    let sandbox = Sandbox::start();
    let home = Home::new("");
    let fault = |path: &str, times: u32| {
        let (status, _) = sandbox.admin(
            "/admin/faults",
            Some(&json!({"path_prefix": path, "status": 404, "times": times})),
        );
        assert_eq!(status, 200);
    };
    let base = format!("{}/fhir", sandbox.base);

    fault("/fhir/.well-known/smart-configuration", 1);
    let v = discover(&home, &base, &["--format", "json"]).json();
    assert_eq!(v["discovered"]["source"], "capability_statement", "{v}");
    assert_eq!(v["discovered"]["fhir_version"], "4.0.1", "{v}");
    assert_eq!(
        v["discovered"]["registration_endpoint"],
        format!("{}/oauth2/register", sandbox.base)
    );
    let missing = v["discovered"]["missing"].to_string();
    assert!(
        missing.contains("smart-configuration answered 404"),
        "{missing}"
    );
    // The sandbox's oauth-uris name its authorization endpoint too (consent).
    assert_eq!(
        v["discovered"]["authorization_endpoint"],
        format!("{}/oauth2/authorize", sandbox.base),
        "{v}"
    );
    assert!(!missing.contains("authorize"), "{missing}");
    // /metadata says nothing of caching: the default day.
    assert_eq!(v["max_age_secs"], 86400, "{v}");

    fault("/fhir/.well-known/smart-configuration", 1);
    fault("/fhir/metadata", 2);
    let v = discover(&home, &base, &["--format", "json"]).json();
    assert_eq!(v["discovered"]["source"], "openid_configuration", "{v}");
    assert_eq!(v["discovered"]["fhir_version"], Value::Null, "{v}");
    assert!(
        v["toml"]
            .as_str()
            .unwrap()
            .contains("# FHIR version: not found"),
        "{v}"
    );
}

/// A loopback server answering every request with `status`, `content_type`
/// and `body`, for documents the sandbox would never serve.
fn static_server(status: u16, content_type: &'static str, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = reader.into_inner();
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/fhir")
}

#[test]
fn bad_discovery_documents_and_remote_http_are_refused_clearly() {
    let home = Home::new("");
    let run = discover(&home, "http://ehr.example.org/fhir", &[]);
    assert!(run.fails(2).contains("https URLs only"), "{run:?}");

    let huge = {
        let mut b = b"{\"token_endpoint\": \"https://x/t\", \"pad\": \"".to_vec();
        b.resize(2 * 1024 * 1024, b'a');
        b.extend_from_slice(b"\"}");
        b
    };
    let cases: [(&str, u16, &str, Vec<u8>, &str); 4] = [
        (
            "an HTML page",
            200,
            "text/html",
            b"<!doctype html><html><body>Sign in</body></html>".to_vec(),
            "is not JSON",
        ),
        (
            "wrong JSON",
            200,
            "application/json",
            b"[\"token_endpoint\"]".to_vec(),
            "the top level is an array",
        ),
        (
            "a huge document",
            200,
            "application/json",
            huge,
            "is over 1048576 bytes",
        ),
        (
            "nothing there",
            404,
            "text/plain",
            b"no".to_vec(),
            "answered 404",
        ),
    ];
    for (name, status, content_type, body, says) in cases {
        let url = static_server(status, content_type, body);
        let run = discover(&home, &url, &[]);
        let err = run.fails(1);
        assert!(
            err.contains("found no usable discovery document"),
            "{name}: {err}"
        );
        assert!(err.contains(says), "{name}: {err}");
        assert!(
            run.stdout.is_empty(),
            "{name}: nothing printed on stdout: {run:?}"
        );
    }
}

fn discovering_config(base: &str, auth: &str) -> String {
    format!(
        "[[providers]]\nid = \"sbx\"\nkind = \"fhir\"\nbase_url = \"{base}/fhir\"\ndiscover = true\n[providers.auth]\nscheme = \"oauth2\"\n{auth}"
    )
}

fn well_known_requests(sandbox: &Sandbox) -> usize {
    requests(sandbox)
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or_default()
                .contains("/.well-known/")
        })
        .count()
}

#[test]
fn discover_true_reads_the_documents_when_first_needed_and_caches_them() {
    let sandbox = Sandbox::start();
    let home = Home::new(&discovering_config(&sandbox.base, CLIENT));
    // Linking reads nothing: the endpoints are needed only by a token exchange.
    home.link_oauth2(&sandbox, "sbx", "demo-client", json!({"expires_in": 1}));
    assert_eq!(well_known_requests(&sandbox), 0);
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM provider_discovery"),
        0
    );

    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    assert_eq!(outcome(&run), "imported", "{run:?}");
    assert_eq!(well_known_requests(&sandbox), 1);
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM provider_discovery"),
        1
    );
    // Cache-Control: max-age=3600 sets the expiry.
    let expires = home.env.query_i64(if crate::support::on_postgres() {
        "SELECT CAST(ROUND(EXTRACT(EPOCH FROM expires_at - fetched_at)) AS INTEGER) FROM provider_discovery"
    } else {
        "SELECT CAST((julianday(expires_at) - julianday(fetched_at)) * 86400 + 0.5 AS INTEGER) FROM provider_discovery"
    });
    assert_eq!(expires, 3600);

    // Another expired token, another refresh: no discovery request.
    clear_requests(&sandbox);
    home.link_oauth2(&sandbox, "sbx", "demo-client", json!({"expires_in": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    // The same document again: pulled and refreshed, nothing new to write.
    assert_eq!(outcome(&run), "unchanged", "{run:?}");
    assert_eq!(Home::reports(&run)[0]["refreshed"], true, "{run:?}");
    assert_eq!(stats(&sandbox)["refreshes"], 2);
    assert_eq!(well_known_requests(&sandbox), 0, "{:?}", requests(&sandbox));
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'provider.discovered'"),
        1
    );
}

/// Sets every cached discovery row's expiry into the past, as time would.
fn expire_cached_discovery(home: &Home) {
    let n = home
        .env
        .execute("UPDATE provider_discovery SET expires_at = '2000-01-01T00:00:00.000Z'");
    assert_eq!(n, 1);
}

/// The cached discovery is used only until it expires: while it holds,
/// what the server now announces is not read; once expired, the next use
/// reads the documents again, caches the new answer and uses it (the new
/// registration endpoint is where `provider register` then posts).
#[test]
fn an_expired_cached_discovery_is_read_again_from_the_server() {
    let sandbox = Sandbox::start();
    let home = Home::new(&discovering_config(&sandbox.base, CLIENT));
    home.link_oauth2(&sandbox, "sbx", "demo-client", json!({"expires_in": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    assert_eq!(outcome(&run), "imported", "{run:?}");
    assert_eq!(well_known_requests(&sandbox), 1);
    let cached = || {
        home.env
            .query_string("SELECT discovered FROM provider_discovery WHERE provider = 'sbx'")
    };
    let old_register = format!("{}/oauth2/register", sandbox.base);
    let new_register = format!("{}/oauth2/register-v2", sandbox.base);
    assert!(
        cached().contains(&format!("{old_register}\"")),
        "{}",
        cached()
    );

    // The server now announces another registration endpoint.
    let (status, _, document) = crate::consent::get(&format!(
        "{}/fhir/.well-known/smart-configuration",
        sandbox.base
    ));
    assert_eq!(status, 200, "{document}");
    let mut document: Value = serde_json::from_str(&document).expect("the SMART configuration");
    assert_eq!(document["registration_endpoint"], old_register.as_str());
    document["registration_endpoint"] = json!(new_register);
    let (code, _) = sandbox.admin(
        "/admin/faults",
        Some(&json!({
            "path_prefix": "/fhir/.well-known/smart-configuration",
            "status": 200,
            "times": 1,
            "body": document.to_string(),
        })),
    );
    assert_eq!(code, 200);

    // Unexpired, the cache is used: nothing is read from the server.
    clear_requests(&sandbox);
    home.link_oauth2(&sandbox, "sbx", "demo-client", json!({"expires_in": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    assert_eq!(Home::reports(&run)[0]["refreshed"], true, "{run:?}");
    assert_eq!(well_known_requests(&sandbox), 0, "{:?}", requests(&sandbox));
    assert!(!cached().contains(&new_register), "{}", cached());

    // Expired, the next use reads the documents again and caches the new one.
    expire_cached_discovery(&home);
    clear_requests(&sandbox);
    home.link_oauth2(&sandbox, "sbx", "demo-client", json!({"expires_in": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    assert_eq!(Home::reports(&run)[0]["refreshed"], true, "{run:?}");
    assert_eq!(stats(&sandbox)["refreshes"], 3);
    assert_eq!(well_known_requests(&sandbox), 1, "{:?}", requests(&sandbox));
    assert!(cached().contains(&new_register), "{}", cached());
    assert_eq!(
        home.env.query_i64(&format!(
            "SELECT COUNT(*) FROM provider_discovery WHERE expires_at > '{}'",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
        )),
        1,
        "the new answer has a new expiry"
    );
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'provider.discovered'"),
        2
    );

    // And the new document is the one used: registration (with no client
    // configured) posts to the newly announced endpoint.
    std::fs::write(
        &home.config,
        discovering_config(
            &sandbox.base,
            "redirect_uri = \"http://127.0.0.1:8765/callback\"\n",
        ),
    )
    .unwrap();
    clear_requests(&sandbox);
    let run = home.rx(&["provider", "register", "--provider", "sbx"]);
    assert!(
        run.fails(1).contains("refused the registration (404"),
        "{run:?}"
    );
    let posted: Vec<String> = requests(&sandbox)
        .iter()
        .filter(|r| r["method"] == "POST")
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(posted, ["/oauth2/register-v2"], "{:?}", requests(&sandbox));
    assert_eq!(well_known_requests(&sandbox), 0);
}

#[test]
fn a_registered_client_is_sealed_never_shown_and_used_for_refresh() {
    let sandbox = Sandbox::start();
    let auth = "redirect_uri = \"http://127.0.0.1:8765/callback\"\nscopes = [\"patient/MedicationRequest.rs\", \"offline_access\"]\n";
    let home = Home::new(&discovering_config(&sandbox.base, auth));
    let run = home.rx(&[
        "provider",
        "register",
        "--provider",
        "sbx",
        "--format",
        "json",
    ]);
    let answer = run.json();
    let client_id = answer["client_id"].as_str().unwrap().to_string();
    assert!(client_id.starts_with("reg-"), "{answer}");
    assert_eq!(answer["client_secret"], true, "{answer}");
    assert_eq!(answer["token_endpoint_auth_method"], "client_secret_basic");

    let (status, registered) = sandbox.admin("/admin/oauth2/registrations", None);
    assert_eq!(status, 200);
    let secret = registered[0]["client_secret"].as_str().unwrap().to_string();
    assert_eq!(registered[0]["client_id"], client_id.as_str());
    let mut outputs = vec![run.stdout.clone(), run.stderr.clone()];

    // The registration endpoint got rxsync's metadata.
    let posted: Vec<Value> = requests(&sandbox)
        .into_iter()
        .filter(|r| r["path"] == "/oauth2/register")
        .collect();
    assert_eq!(posted.len(), 1);

    // The sandbox accepts the registered client at its token endpoint.
    home.link_oauth2(&sandbox, "sbx", &client_id, json!({"expires_in": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    assert_eq!(outcome(&run), "imported", "{run:?}");
    assert_eq!(stats(&sandbox)["refreshes"], 1);
    outputs.extend([run.stdout.clone(), run.stderr.clone()]);

    // Sealed: neither the secret nor the client id is stored by value,
    // nor shown anywhere but the client id on register's own stdout.
    let stored = home.stored_bytes();
    assert!(
        !contains(&stored, &secret),
        "the client secret is stored in the clear"
    );
    assert!(
        !contains(&stored, &client_id),
        "the client id is stored in the clear"
    );
    for o in &outputs {
        assert!(!o.contains(&secret), "the client secret was printed: {o}");
    }
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'provider.registered'"),
        1
    );
    let audit = home
        .env
        .query_string("SELECT detail FROM audit WHERE action = 'provider.registered'");
    assert!(
        !audit.contains(&secret) && !audit.contains(&client_id),
        "{audit}"
    );

    // A key rotation re-seals the registration: the next refresh still
    // authenticates as the registered client.
    let rotated = home.rx(&["key", "rotate"]);
    rotated.ok();
    home.link_oauth2(&sandbox, "sbx", &client_id, json!({"expires_in": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    assert_eq!(Home::reports(&run)[0]["refreshed"], true, "{run:?}");
    assert_eq!(stats(&sandbox)["refreshes"], 2);

    // A configured client takes precedence: register refuses to shadow it.
    let admin_client = Home::new(&discovering_config(&sandbox.base, CLIENT));
    let run = admin_client.rx(&["provider", "register", "--provider", "sbx"]);
    assert!(run.fails(2).contains("takes precedence"), "{run:?}");
}

/// A registration endpoint on loopback that answers the next request with
/// `status` and the JSON `answer`; the request's head and body come back.
fn registration_endpoint(
    status: u16,
    answer: Value,
) -> (String, std::thread::JoinHandle<(String, Value)>) {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a header line");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().expect("a length");
            }
            head.push_str(&line);
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("the body");
        let answer = answer.to_string();
        let _ = reader.into_inner().write_all(
            format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .as_bytes(),
        );
        (head, serde_json::from_slice(&body).expect("a JSON body"))
    });
    (format!("http://{addr}/register"), served)
}

/// A provider that registers at `registration_url` with `auth` added.
fn registering_config(sandbox: &Sandbox, registration_url: &str, auth: &str) -> String {
    format!(
        "[[providers]]\nid = \"sbx\"\nkind = \"fhir\"\nbase_url = \"{base}/fhir\"\n[providers.auth]\nscheme = \"oauth2\"\ntoken_url = \"{base}/oauth2/token\"\nregistration_url = \"{registration_url}\"\nredirect_uri = \"http://127.0.0.1:8765/callback\"\nscopes = [\"patient/MedicationRequest.rs\"]\n{auth}",
        base = sandbox.base
    )
}

/// `client_auth = "private_key_jwt"`: the registration asks for it and
/// names the JWKS the provider fetches rxsync's keys from (`--jwks-uri`),
/// sends no secret, and keeps the client the server issued. Without
/// `--jwks-uri` it is refused before anything is sent.
#[test]
fn a_private_key_jwt_registration_sends_its_method_and_jwks_uri() {
    let sandbox = Sandbox::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let (private, _) = crate::consent::keypair(keys.path(), "RS384");
    let jwt = format!(
        "client_auth = \"private_key_jwt\"\nprivate_key_file = \"{private}\"\nkey_id = \"kid-1\"\nalgorithm = \"RS384\"\n"
    );
    let (url, served) = registration_endpoint(
        201,
        json!({"client_id": "jwt-registered-1", "token_endpoint_auth_method": "private_key_jwt"}),
    );
    let home = Home::new(&registering_config(&sandbox, &url, &jwt));

    let run = home.rx(&["provider", "register", "--provider", "sbx"]);
    let err = run.fails(2);
    assert!(
        err.contains("provider sbx") && err.contains("needs --jwks-uri"),
        "{err}"
    );

    let jwks = "https://rxsync.example.org/.well-known/jwks.json";
    let run = home.rx(&[
        "provider",
        "register",
        "--provider",
        "sbx",
        "--jwks-uri",
        jwks,
        "--format",
        "json",
    ]);
    let answer = run.json();
    let (head, body) = served.join().expect("the endpoint");
    assert!(head.starts_with("POST /register "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert_eq!(
        body["token_endpoint_auth_method"], "private_key_jwt",
        "{body}"
    );
    assert_eq!(body["jwks_uri"], jwks, "{body}");
    assert_eq!(
        body["redirect_uris"],
        json!(["http://127.0.0.1:8765/callback"]),
        "{body}"
    );
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"]),
        "{body}"
    );
    assert_eq!(body["scope"], "patient/MedicationRequest.rs", "{body}");
    assert!(body.get("client_secret").is_none(), "{body}");
    assert_eq!(answer["client_id"], "jwt-registered-1", "{answer}");
    assert_eq!(answer["client_secret"], false, "{answer}");
    assert_eq!(answer["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(
        home.env
            .query_string("SELECT auth_method FROM client_registrations WHERE provider = 'sbx'"),
        "private_key_jwt"
    );
}

/// `client_auth = "none"`: a public client (RFC 8252) registers with
/// `token_endpoint_auth_method = "none"` and no JWKS; the sandbox issues
/// no secret, and none is kept.
#[test]
fn a_public_client_registers_without_a_secret() {
    let sandbox = Sandbox::start();
    let (url, served) = registration_endpoint(
        201,
        json!({"client_id": "public-registered-1", "token_endpoint_auth_method": "none"}),
    );
    let home = Home::new(&registering_config(
        &sandbox,
        &url,
        "client_auth = \"none\"\n",
    ));
    let run = home.rx(&["provider", "register", "--provider", "sbx"]);
    let out = run.ok().to_string();
    assert!(
        out.contains("client_id public-registered-1 (none)"),
        "{out}"
    );
    assert!(!out.contains("with a client secret"), "{out}");
    let (_, body) = served.join().expect("the endpoint");
    assert_eq!(body["token_endpoint_auth_method"], "none", "{body}");
    assert!(body.get("jwks_uri").is_none(), "{body}");
    let run = home.rx(&[
        "provider",
        "register",
        "--provider",
        "sbx",
        "--jwks-uri",
        "https://rxsync.example.org/jwks",
    ]);
    assert!(run.fails(2).contains("--jwks-uri is only for"), "{run:?}");

    // At the sandbox (discovered registration endpoint): it issues no secret.
    let at_sandbox = Home::new(&discovering_config(
        &sandbox.base,
        "redirect_uri = \"http://127.0.0.1:8765/callback\"\nclient_auth = \"none\"\n",
    ));
    let run = at_sandbox.rx(&[
        "provider",
        "register",
        "--provider",
        "sbx",
        "--format",
        "json",
    ]);
    let answer = run.json();
    assert_eq!(answer["token_endpoint_auth_method"], "none", "{answer}");
    assert_eq!(answer["client_secret"], false, "{answer}");
    let (status, registered) = sandbox.admin("/admin/oauth2/registrations", None);
    assert_eq!(status, 200);
    assert_eq!(registered[0]["client_id"], answer["client_id"]);
    assert_eq!(registered[0]["client_secret"], Value::Null, "{registered}");
}

/// An answer that issues no `client_id` is a clear error; a secret it
/// carried is neither printed nor stored (by value).
#[test]
fn a_registration_answer_without_a_client_id_stores_nothing() {
    let sandbox = Sandbox::start();
    const SECRET: &str = "orphan-client-secret-value-41c";
    let (url, served) = registration_endpoint(201, json!({"client_secret": SECRET}));
    let home = Home::new(&registering_config(&sandbox, &url, ""));
    let run = home.rx(&["provider", "register", "--provider", "sbx"]);
    served.join().expect("the endpoint");
    let err = run.fails(1);
    assert!(
        err.contains("provider sbx") && err.contains("no client_id string"),
        "{err}"
    );
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM client_registrations"),
        0
    );
    assert!(!contains(&home.stored_bytes(), SECRET));
}

#[test]
fn registration_needs_an_endpoint_and_a_redirect_uri() {
    let sandbox = Sandbox::start();
    let no_redirect = Home::new(&discovering_config(&sandbox.base, ""));
    let run = no_redirect.rx(&["provider", "register", "--provider", "sbx"]);
    let err = run.fails(2);
    assert!(
        err.contains("provider sbx") && err.contains("auth.redirect_uri is missing"),
        "{err}"
    );
    assert!(err.contains("config.toml"), "names the file: {err}");

    let no_endpoint = Home::new(&format!(
        "[[providers]]\nid = \"sbx\"\nkind = \"fhir\"\nbase_url = \"{}/fhir\"\n[providers.auth]\nscheme = \"oauth2\"\ntoken_url = \"{}/oauth2/token\"\nregistration_url = \"{}/nowhere\"\nredirect_uri = \"http://127.0.0.1:8765/callback\"\n",
        sandbox.base, sandbox.base, sandbox.base
    ));
    let run = no_endpoint.rx(&["provider", "register", "--provider", "sbx"]);
    let err = run.fails(1);
    assert!(err.contains("refused the registration (404"), "{err}");
    assert_eq!(
        no_endpoint
            .env
            .query_i64("SELECT COUNT(*) FROM client_registrations"),
        0
    );
}

#[test]
fn discover_true_with_unusable_documents_fails_the_pull_saying_why_and_stores_nothing() {
    let sandbox = Sandbox::start();
    let home = Home::new(&discovering_config(&sandbox.base, CLIENT));
    home.link_oauth2(&sandbox, "sbx", "demo-client", json!({"expires_in": 1}));
    for (path, status, body) in [
        (
            "/fhir/.well-known/smart-configuration",
            200,
            "<html><body>Sign in</body></html>",
        ),
        ("/fhir/metadata", 500, "down"),
        ("/fhir/.well-known/openid-configuration", 404, "no"),
    ] {
        let (code, _) = sandbox.admin(
            "/admin/faults",
            Some(&json!({"path_prefix": path, "status": status, "times": 10, "body": body})),
        );
        assert_eq!(code, 200);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let run = home.pull(None);
    run.fails(1);
    let report = &Home::reports(&run)[0];
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("discover = true") && error.contains("is not JSON"),
        "{report}"
    );
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM provider_discovery"),
        0
    );
    assert_eq!(home.imported_rows(), (0, 0, 0));
    assert_eq!(stats(&sandbox)["refreshes"], 0);
}
