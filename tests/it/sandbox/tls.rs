//! The sandbox over https (tests/fixtures/sandbox-tls-*.pem): the request
//! URL a client signed is rebuilt with the https scheme, and PLAINTEXT,
//! refused over plain http, is accepted here.

use rxsync::fetch::oauth1::{
    self, Credentials, Oauth1Request, Placement, SignParams, SignatureMethod,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

use super::Client;
use crate::support::{Sandbox, repo_path};

fn https_client() -> Client {
    let pem = std::fs::read(repo_path("tests/fixtures/sandbox-tls-cert.pem")).expect("cert");
    let cert = reqwest::Certificate::from_pem(&pem).expect("a PEM certificate");
    Client::with(|b| b.tls_certs_only([cert]))
}

fn admin(client: &Client, sandbox: &Sandbox, path: &str, body: Value) -> Value {
    let reply = client.send(
        "POST",
        &sandbox.url(path),
        &[],
        Some(("application/json", body.to_string())),
    );
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.json()
}

#[test]
fn over_https_oauth1_plaintext_and_hmac_and_bearer_tokens_are_accepted() {
    let cert = repo_path("tests/fixtures/sandbox-tls-cert.pem")
        .display()
        .to_string();
    let key = repo_path("tests/fixtures/sandbox-tls-key.pem")
        .display()
        .to_string();
    let sandbox = Sandbox::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    assert!(
        sandbox.base.starts_with("https://127.0.0.1:"),
        "{}",
        sandbox.base
    );
    let client = https_client();

    let tokens = admin(
        &client,
        &sandbox,
        "/admin/oauth1/tokens",
        json!({"consumer_key": "demo-hmac-either", "patient": "p1"}),
    );
    let credentials = Credentials::new(
        "demo-hmac-either",
        SecretString::from("demo-hmac-either-secret"),
    )
    .with_token(
        tokens["token"].as_str().expect("token"),
        SecretString::from(tokens["token_secret"].as_str().expect("secret")),
    );
    let url = Url::parse(&sandbox.url("/fhir/MedicationRequest?patient=p1")).expect("url");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for (i, method) in [SignatureMethod::Plaintext, SignatureMethod::HmacSha256]
        .into_iter()
        .enumerate()
    {
        for placement in [Placement::Header, Placement::Query] {
            let nonce = format!("tls-{i}-{placement:?}");
            let signed = oauth1::sign(
                &Oauth1Request {
                    method: "GET",
                    url: &url,
                    body: None,
                },
                &credentials,
                &SignParams {
                    method,
                    placement,
                    realm: None,
                    nonce: &nonce,
                    timestamp: now,
                    include_version: false,
                    body_hash: false,
                    callback: None,
                    verifier: None,
                },
            )
            .expect("signs");
            let headers: Vec<(&str, &str)> = signed
                .authorization()
                .map(|a| ("authorization", a))
                .into_iter()
                .collect();
            let reply = client.get(signed.url().as_str(), &headers);
            assert_eq!(reply.status, 200, "{method} {placement:?}: {}", reply.body);
            let json = reply.json();
            let next = json["link"][1]["url"].as_str().expect("a next link");
            assert!(next.starts_with("https://127.0.0.1:"), "{next}");
        }
    }

    let grant = admin(
        &client,
        &sandbox,
        "/admin/oauth2/grants",
        json!({"client_id": "demo-client", "patient": "p1"}),
    );
    let auth = format!("Bearer {}", grant["access_token"].as_str().expect("token"));
    let ccr = client.get(&sandbox.url("/ccr/p1"), &[("authorization", &auth)]);
    assert_eq!(ccr.status, 200);
    let smart = client
        .get(&sandbox.url("/.well-known/smart-configuration"), &[])
        .json();
    assert_eq!(smart["token_endpoint"], sandbox.url("/oauth2/token"));
}
