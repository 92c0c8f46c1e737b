//! The sandbox provider, driven as the real binary (`rxsync sandbox
//! --listen 127.0.0.1:0`) over loopback HTTP with reqwest: no mocks.
//! OAuth 2.0 in `oauth2`, OAuth 1.0a in `oauth1`, the oauthlib oracle in
//! `oracle`, https in `tls`; documents, paging, redirects, faults, latency, the
//! request log and the command line here.

mod oauth1;
mod oauth2;
mod oracle;
mod tls;

use std::collections::BTreeSet;

use rxsync::parse::{DocFormat, parse};
use serde_json::{Value, json};

use crate::support::{Sandbox, TestEnv, repo_path};

/// A reqwest client that never follows redirects, on its own runtime.
pub struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// An answer, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Every `WWW-Authenticate` value.
    pub fn challenges(&self) -> Vec<&str> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

impl Client {
    pub fn new() -> Client {
        Client::with(|b| b)
    }

    /// With extra builder settings (root certificates).
    pub fn with(
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Client {
        // reqwest is built without a default crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false);
        let http = configure(builder).build().expect("client");
        Client { rt, http }
    }

    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        self.rt.block_on(async {
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            Reply {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: response.text().await.expect("body"),
            }
        })
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", url, headers, None)
    }

    /// A form POST; `basic` is HTTP Basic client authentication.
    pub fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let authorization = basic.map(|(id, secret)| {
            use base64::Engine;
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    encode(id),
                    encode(secret)
                ))
            )
        });
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        self.send(
            "POST",
            url,
            &headers,
            Some(("application/x-www-form-urlencoded", body)),
        )
    }
}

/// `Authorization: Bearer …` for a grant's access token.
pub fn bearer(grant: &Value) -> String {
    format!(
        "Bearer {}",
        grant["access_token"].as_str().expect("access_token")
    )
}

/// The NDC codes of a parsed document's records, as a set.
fn ndcs(bytes: &[u8], format: DocFormat) -> BTreeSet<String> {
    let doc = parse(bytes, format).unwrap_or_else(|e| panic!("parses: {e}"));
    doc.records
        .iter()
        .flat_map(|r| r.codes.iter().map(|c| c.value.clone()))
        .collect()
}

#[test]
fn a_ccr_is_served_to_its_patients_credential_only() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let grant = sandbox.grant("demo-client", "p1");
    let auth = bearer(&grant);

    let ccr = client.get(&sandbox.url("/ccr/p1"), &[("authorization", &auth)]);
    assert_eq!(ccr.status, 200, "{}", ccr.body);
    assert_eq!(
        ccr.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    let doc = parse(ccr.body.as_bytes(), DocFormat::Ccr).expect("the CCR parses");
    assert_eq!(doc.records.len(), 20);
    assert_eq!(doc.patient_ref.as_deref(), Some("p1"));
    // The same patient gets the same bytes again.
    let again = client.get(&sandbox.url("/ccr/p1"), &[("authorization", &auth)]);
    assert_eq!(again.body, ccr.body);

    let other = client.get(&sandbox.url("/ccr/p2"), &[("authorization", &auth)]);
    assert_eq!(other.status, 403);
    let none = client.get(&sandbox.url("/ccr/p1"), &[]);
    assert_eq!(none.status, 401);
    assert_eq!(
        none.challenges(),
        ["OAuth realm=\"sandbox\"", "Bearer realm=\"sandbox\""]
    );
}

#[test]
fn fhir_paging_links_chain_through_every_page_and_cover_the_medication_list() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let grant = sandbox.grant("demo-public", "p-fhir");
    let token = grant["access_token"].as_str().expect("token");
    // A query-placed token must not leak into the links.
    let mut url = sandbox.url(&format!(
        "/fhir/MedicationRequest?patient=p-fhir&_count=7&access_token={token}"
    ));
    let mut pages = 0;
    let mut entries = Vec::new();
    let mut union = BTreeSet::new();
    loop {
        let page = client.get(&url, &[]);
        assert_eq!(page.status, 200, "{url}: {}", page.body);
        assert_eq!(page.header("content-type"), Some("application/fhir+json"));
        let json = page.json();
        assert_eq!(json["type"], "searchset");
        assert_eq!(json["total"], 20);
        assert!(!page.body.contains(token), "a link carries the token");
        union.extend(ndcs(page.body.as_bytes(), DocFormat::FhirJson));
        entries.extend(json["entry"].as_array().cloned().unwrap_or_default());
        pages += 1;
        let next = json["link"]
            .as_array()
            .expect("links")
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().expect("url").to_string());
        match next {
            Some(next) => {
                assert!(next.starts_with(&sandbox.base), "{next}");
                url = format!("{next}&access_token={token}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(entries.len(), 20);
    // All pages' entries together parse as one searchset too.
    let all = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    let together = ndcs(all.to_string().as_bytes(), DocFormat::FhirJson);
    assert_eq!(together, union);
    // The same medications as the patient's CCR.
    let ccr = client.get(
        &sandbox.url(&format!("/ccr/p-fhir?access_token={token}")),
        &[],
    );
    assert_eq!(union, ndcs(ccr.body.as_bytes(), DocFormat::Ccr));
    assert_eq!(union.len(), 20);

    let statements = client.get(
        &sandbox.url(&format!(
            "/fhir/MedicationStatement?patient=Patient/p-fhir&access_token={token}"
        )),
        &[],
    );
    assert_eq!(statements.status, 200);
    assert_eq!(statements.json()["total"], 0);
    let unknown = client.get(
        &sandbox.url(&format!(
            "/fhir/Observation?patient=p-fhir&access_token={token}"
        )),
        &[],
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["resourceType"], "OperationOutcome");
}

#[test]
fn redirects_answer_with_the_configured_status_and_location_and_loops_stay_loops() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let cases = [
        ("/moved/ccr/p1?x=1", 301, "/ccr/p1?x=1"),
        (
            "/temp/fhir/MedicationRequest?patient=p1",
            307,
            "/fhir/MedicationRequest?patient=p1",
        ),
        ("/loop-a/ccr/p1", 302, "/loop-b/ccr/p1"),
        ("/loop-b/ccr/p1", 302, "/loop-a/ccr/p1"),
    ];
    for (path, status, location) in cases {
        // Before authentication: no credentials needed to be redirected.
        let reply = client.get(&sandbox.url(path), &[]);
        assert_eq!(reply.status, status, "{path}");
        assert_eq!(reply.header("location"), Some(location), "{path}");
    }
}

#[test]
fn faults_answer_their_count_of_requests_with_retry_after() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let auth = bearer(&sandbox.grant("demo-client", "p1"));
    let (status, _) = sandbox.admin(
        "/admin/faults",
        Some(&json!({"path_prefix": "/ccr/", "status": 503, "times": 2, "retry_after": 7})),
    );
    assert_eq!(status, 200);
    for _ in 0..2 {
        let reply = client.get(&sandbox.url("/ccr/p1"), &[("authorization", &auth)]);
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("7"));
    }
    assert_eq!(
        client
            .get(&sandbox.url("/ccr/p1"), &[("authorization", &auth)])
            .status,
        200
    );

    sandbox.admin(
        "/admin/faults",
        Some(&json!({"path_prefix": "/fhir/", "status": 500, "times": 5, "body": "{\"oops\":1}"})),
    );
    let faulted = client.get(
        &sandbox.url("/fhir/MedicationRequest?patient=p1"),
        &[("authorization", &auth)],
    );
    assert_eq!(
        (faulted.status, faulted.body.as_str()),
        (500, "{\"oops\":1}")
    );
    sandbox.admin("/admin/faults/clear", Some(&json!({})));
    let cleared = client.get(
        &sandbox.url("/fhir/MedicationRequest?patient=p1"),
        &[("authorization", &auth)],
    );
    assert_eq!(cleared.status, 200);

    let (status, _) = sandbox.admin(
        "/admin/faults",
        Some(&json!({"path_prefix": "/ccr/", "status": 503, "times": 1, "typo": true})),
    );
    assert_eq!(status, 400, "unknown fields are refused");
}

/// `POST /admin/latency` holds answers under a prefix back; `/admin/stats`
/// counts the requests in flight and the most at once (two slow requests
/// sent together: 2), and `/admin/requests/clear` starts that count again.
#[test]
fn latency_holds_answers_back_and_stats_count_the_requests_in_flight() {
    let sandbox = Sandbox::start();
    let auth = bearer(&sandbox.grant("demo-client", "p1"));
    let (status, _) = sandbox.admin(
        "/admin/latency",
        Some(&json!({"path_prefix": "/ccr/", "ms": 400})),
    );
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        let slow: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    Client::new()
                        .get(&sandbox.url("/ccr/p1"), &[("authorization", &auth)])
                        .status
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (_, stats) = sandbox.admin("/admin/stats", None);
        assert_eq!(stats["in_flight"], 2, "{stats}");
        for s in slow {
            assert_eq!(s.join().expect("request"), 200);
        }
    });
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    let (_, stats) = sandbox.admin("/admin/stats", None);
    assert_eq!(
        (&stats["in_flight"], &stats["max_in_flight"]),
        (&json!(0), &json!(2))
    );
    sandbox.admin("/admin/requests/clear", Some(&json!({})));
    let (_, stats) = sandbox.admin("/admin/stats", None);
    assert_eq!(stats["max_in_flight"], 0, "{stats}");
    // 0 ms takes the delay away; a prefix under /admin and a long delay are refused.
    sandbox.admin(
        "/admin/latency",
        Some(&json!({"path_prefix": "/ccr/", "ms": 0})),
    );
    let quick = std::time::Instant::now();
    let reply = Client::new().get(&sandbox.url("/ccr/p1"), &[("authorization", &auth)]);
    assert_eq!(reply.status, 200);
    assert!(quick.elapsed() < std::time::Duration::from_millis(400));
    for bad in [
        json!({"path_prefix": "/admin/stats", "ms": 10}),
        json!({"path_prefix": "ccr", "ms": 10}),
        json!({"path_prefix": "/ccr/", "ms": 600_000}),
        json!({"path_prefix": "/ccr/", "ms": 10, "typo": 1}),
    ] {
        let (status, _) = sandbox.admin("/admin/latency", Some(&bad));
        assert_eq!(status, 400, "{bad}");
    }
}

#[test]
fn the_request_log_records_method_path_query_and_headers_but_not_admin_calls() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    sandbox.admin("/admin/requests/clear", Some(&json!({})));
    client.get(
        &sandbox.url("/ccr/p1?q=a%20b&r"),
        &[("x-probe", "one"), ("authorization", "Bearer nope")],
    );
    let (status, log) = sandbox.admin("/admin/requests", None);
    assert_eq!(status, 200);
    let log = log.as_array().expect("an array");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["method"], "GET");
    assert_eq!(log[0]["path"], "/ccr/p1");
    assert_eq!(log[0]["query"], "q=a%20b&r");
    assert_eq!(log[0]["headers"]["x-probe"], "one");
    assert_eq!(log[0]["headers"]["authorization"], "Bearer nope");
    assert_eq!(log[0]["headers"]["host"], sandbox.authority());
}

#[test]
fn smart_configuration_names_the_endpoints_without_authentication() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
    ] {
        let reply = client.get(&sandbox.url(path), &[]);
        assert_eq!(reply.status, 200);
        let json = reply.json();
        assert_eq!(json["token_endpoint"], sandbox.url("/oauth2/token"));
        assert_eq!(
            json["authorization_endpoint"],
            sandbox.url("/oauth2/authorize")
        );
        assert_eq!(json["code_challenge_methods_supported"][0], "S256");
        assert_eq!(json["revocation_endpoint"], sandbox.url("/oauth2/revoke"));
        assert_eq!(
            json["introspection_endpoint"],
            sandbox.url("/oauth2/introspect")
        );
        assert!(
            json["capabilities"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        );
    }
}

#[test]
fn a_data_directory_configures_the_sandbox_and_overrides_documents() {
    let env = TestEnv::new();
    let dir = env.dir.path();
    std::fs::create_dir_all(dir.join("ccr")).expect("ccr dir");
    std::fs::create_dir_all(dir.join("fhir")).expect("fhir dir");
    let demo = std::fs::read(repo_path("samples/ccr/demo.xml")).expect("demo CCR");
    std::fs::write(dir.join("ccr/own.xml"), &demo).expect("write");
    std::fs::copy(
        repo_path("samples/fhir/searchset.json"),
        dir.join("fhir/own.json"),
    )
    .expect("copy");
    env.write(
        "sandbox.toml",
        br#"medications = 5
page_size = 2
base_url = "http://sandbox.example:1234"
[[clients]]
id = "header-only"
bearer_placement = "header"
[[redirects]]
from = "/away/"
to = "http://127.0.0.1:9/elsewhere/"
status = 308
"#,
    );
    let data = dir.display().to_string();
    let sandbox = Sandbox::start_with(&["--data", &data]);
    let client = Client::new();
    let own = sandbox.grant("header-only", "own");
    let auth = bearer(&own);
    let ccr = client.get(&sandbox.url("/ccr/own"), &[("authorization", &auth)]);
    assert_eq!(ccr.body.as_bytes(), demo.as_slice(), "served as is");

    let page = client.get(
        &sandbox.url("/fhir/MedicationRequest?patient=own"),
        &[("authorization", &auth)],
    );
    let json = page.json();
    assert_eq!(json["total"], 2);
    assert_eq!(
        json["link"][0]["url"],
        "http://sandbox.example:1234/fhir/MedicationRequest?patient=own&_count=2&_page=1"
    );

    let other = bearer(&sandbox.grant("header-only", "generated"));
    let generated = client.get(&sandbox.url("/ccr/generated"), &[("authorization", &other)]);
    let doc = parse(generated.body.as_bytes(), DocFormat::Ccr).expect("parses");
    assert_eq!(doc.records.len(), 5);

    // A query token for a header-only client is refused.
    let token = own["access_token"].as_str().expect("token");
    let query = client.get(&sandbox.url(&format!("/ccr/own?access_token={token}")), &[]);
    assert_eq!(query.status, 401);

    let away = client.get(&sandbox.url("/away/ccr/own?x=1"), &[]);
    assert_eq!(away.status, 308);
    assert_eq!(
        away.header("location"),
        Some("http://127.0.0.1:9/elsewhere/ccr/own?x=1")
    );
}

#[test]
fn the_command_line_refuses_bad_configuration_and_remote_addresses() {
    let env = TestEnv::new();
    env.write("sandbox.toml", b"page_size = 0\n");
    let data = env.dir.path().display().to_string();
    let bad = env.run_bare(
        &["sandbox", "--listen", "127.0.0.1:0", "--data", &data],
        &[],
    );
    let stderr = bad.fails(2);
    assert!(
        stderr.contains("sandbox.toml") && stderr.contains("page_size"),
        "{stderr}"
    );

    env.write(
        "sandbox.toml",
        b"[[clients]]\nid = \"x\"\nsecrets = \"typo\"\n",
    );
    let typo = env.run_bare(
        &["sandbox", "--listen", "127.0.0.1:0", "--data", &data],
        &[],
    );
    let stderr = typo.fails(2);
    assert!(
        stderr.contains("sandbox.toml") && stderr.contains("secrets"),
        "{stderr}"
    );

    let remote = env.run_bare(&["sandbox", "--listen", "0.0.0.0:0"], &[]);
    assert!(remote.fails(2).contains("--allow-remote"));
}

#[test]
fn in_process_the_sandbox_serves_until_its_shutdown_future_completes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(rxsync::sandbox::serve_with_shutdown(
            listener,
            rxsync::sandbox::SandboxConfig::default(),
            None,
            async {
                let _ = stopped.await;
            },
        ));
        let http = reqwest::Client::new();
        let smart = http
            .get(format!("{base}/.well-known/smart-configuration"))
            .send()
            .await
            .expect("request");
        assert_eq!(smart.status(), 200);
        drop(http);
        stop.send(()).expect("the server is running");
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("shuts down in time")
            .expect("the task ends");
        assert!(result.is_ok(), "{result:?}");
    });
}
