//! OAuth 1.0a against the sandbox: requests signed with rxsync's own
//! `sign()` in every placement each consumer allows, and every refusal a
//! careful provider makes, with its `oauth_problem`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rxsync::fetch::oauth1::{
    self, Credentials, Oauth1Request, Placement, RsaSigningKey, SignParams, SignatureMethod,
    percent_encode,
};
use rxsync::sandbox::DEMO_RSA_PRIVATE_KEY;
use secrecy::SecretString;
use url::Url;

use super::{Client, Reply};
use crate::support::Sandbox;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn fresh_nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("nonce-{}-{}", now(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A consumer with token credentials for one patient.
struct Signer {
    consumer: &'static str,
    credentials: Credentials,
}

impl Signer {
    fn new(sandbox: &Sandbox, consumer: &'static str, patient: &str) -> Signer {
        let (token, token_secret) = sandbox.oauth1_token(consumer, patient);
        let secret = if consumer == "demo-rsa" {
            String::new()
        } else {
            format!("{consumer}-secret")
        };
        let mut credentials = Credentials::new(consumer, SecretString::from(secret))
            .with_token(token, SecretString::from(token_secret));
        if consumer == "demo-rsa" {
            credentials = credentials
                .with_rsa_key(RsaSigningKey::from_pem(DEMO_RSA_PRIVATE_KEY).expect("key"));
        }
        Signer {
            consumer,
            credentials,
        }
    }

    fn method(&self) -> SignatureMethod {
        if self.consumer == "demo-rsa" {
            SignatureMethod::RsaSha1
        } else {
            SignatureMethod::HmacSha1
        }
    }

    /// The URL to request and the `Authorization` value.
    fn sign_with(
        &self,
        url: &str,
        method: SignatureMethod,
        placement: Placement,
        timestamp: u64,
    ) -> (String, Option<String>) {
        let url = Url::parse(url).expect("url");
        let nonce = fresh_nonce();
        let signed = oauth1::sign(
            &Oauth1Request {
                method: "GET",
                url: &url,
                body: None,
            },
            &self.credentials,
            &SignParams {
                method,
                placement,
                realm: None,
                nonce: &nonce,
                timestamp,
                include_version: true,
                body_hash: false,
                callback: None,
                verifier: None,
            },
        )
        .expect("signs");
        (
            signed.url().to_string(),
            signed.authorization().map(str::to_string),
        )
    }

    fn sign(&self, url: &str, placement: Placement) -> (String, Option<String>) {
        self.sign_with(url, self.method(), placement, now())
    }
}

fn send(client: &Client, (url, authorization): &(String, Option<String>)) -> Reply {
    let headers: Vec<(&str, &str)> = authorization
        .as_deref()
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    client.get(url, &headers)
}

/// The decoded `oauth_problem` report of a refusal.
fn problem(reply: &Reply) -> Vec<(String, String)> {
    url::form_urlencoded::parse(reply.body.as_bytes())
        .into_owned()
        .collect()
}

#[track_caller]
fn assert_refused(reply: &Reply, status: u16, oauth_problem: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let report = problem(reply);
    assert_eq!(
        report.first().map(|(n, v)| (n.as_str(), v.as_str())),
        Some(("oauth_problem", oauth_problem)),
        "{}",
        reply.body
    );
    if status == 401 {
        assert_eq!(
            reply.header("www-authenticate"),
            Some("OAuth realm=\"sandbox\"")
        );
    }
}

#[test]
fn every_consumer_is_accepted_in_each_placement_it_allows() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let cases = [
        ("demo-hmac-header", vec![Placement::Header]),
        ("demo-hmac-query", vec![Placement::Query]),
        (
            "demo-hmac-either",
            vec![Placement::Header, Placement::Query],
        ),
        ("demo-rsa", vec![Placement::Header, Placement::Query]),
    ];
    for (consumer, placements) in cases {
        let signer = Signer::new(&sandbox, consumer, "p1");
        let methods: &[SignatureMethod] = if consumer == "demo-rsa" {
            &[SignatureMethod::RsaSha1]
        } else {
            &[SignatureMethod::HmacSha1, SignatureMethod::HmacSha256]
        };
        for &placement in &placements {
            for &method in methods {
                for path in [
                    "/ccr/p1",
                    "/fhir/MedicationRequest?patient=p1&_count=5&note=a+b%20c~*",
                ] {
                    let request = signer.sign_with(&sandbox.url(path), method, placement, now());
                    let reply = send(&client, &request);
                    assert_eq!(
                        reply.status, 200,
                        "{consumer} {placement:?} {method} {path}: {}",
                        reply.body
                    );
                }
            }
        }
    }
    let stats = sandbox.admin("/admin/stats", None).1;
    assert_eq!(stats["oauth1_ok"], 2 * (2 + 2 + 4 + 2));
    assert_eq!(stats["oauth1_refused"], 0);
}

#[test]
fn a_consumer_in_the_wrong_placement_is_refused() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    for (consumer, wrong) in [
        ("demo-hmac-header", Placement::Query),
        ("demo-hmac-query", Placement::Header),
    ] {
        let signer = Signer::new(&sandbox, consumer, "p1");
        let reply = send(&client, &signer.sign(&sandbox.url("/ccr/p1"), wrong));
        assert_refused(&reply, 401, "parameter_rejected");
    }
}

#[test]
fn parameters_in_both_header_and_query_are_refused() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let signer = Signer::new(&sandbox, "demo-hmac-either", "p1");
    let url = sandbox.url("/ccr/p1");
    let (_, header) = signer.sign(&url, Placement::Header);
    let (query_url, _) = signer.sign(&url, Placement::Query);
    let reply = send(&client, &(query_url, header));
    assert_refused(&reply, 400, "parameter_rejected");
    let advice = problem(&reply)
        .into_iter()
        .find(|(n, _)| n == "oauth_problem_advice")
        .map(|(_, v)| v)
        .unwrap_or_default();
    assert!(advice.contains("more than one place"), "{advice}");
}

#[test]
fn a_replayed_nonce_is_refused() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let signer = Signer::new(&sandbox, "demo-hmac-header", "p1");
    let request = signer.sign(&sandbox.url("/ccr/p1"), Placement::Header);
    assert_eq!(send(&client, &request).status, 200);
    assert_refused(&send(&client, &request), 401, "nonce_used");
}

#[test]
fn a_stale_timestamp_is_refused_with_the_acceptable_range() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let signer = Signer::new(&sandbox, "demo-hmac-header", "p1");
    for skew in [-3600_i64, 3600] {
        let timestamp = now().saturating_add_signed(skew);
        let request = signer.sign_with(
            &sandbox.url("/ccr/p1"),
            SignatureMethod::HmacSha1,
            Placement::Header,
            timestamp,
        );
        let reply = send(&client, &request);
        assert_refused(&reply, 401, "timestamp_refused");
        let range = problem(&reply)
            .into_iter()
            .find(|(n, _)| n == "oauth_acceptable_timestamps")
            .map(|(_, v)| v)
            .expect("the acceptable range");
        let (min, max) = range.split_once('-').expect("MIN-MAX");
        let (min, max): (u64, u64) = (min.parse().expect("min"), max.parse().expect("max"));
        let t = now();
        assert!(min <= t && t <= max && max - min == 1200, "{range}");
    }
}

#[test]
fn a_tampered_signature_or_request_is_refused() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let signer = Signer::new(&sandbox, "demo-hmac-either", "p1");

    let (url, header) = signer.sign(&sandbox.url("/ccr/p1"), Placement::Header);
    let header = header.expect("a header");
    let start = header.find("oauth_signature=\"").expect("a signature") + 17;
    let mut forged = header.clone();
    let first = &header[start..start + 1];
    forged.replace_range(start..start + 1, if first == "A" { "B" } else { "A" });
    assert_refused(
        &send(&client, &(url, Some(forged))),
        401,
        "signature_invalid",
    );

    // The query changed after signing.
    let (url, _) = signer.sign(
        &sandbox.url("/fhir/MedicationRequest?patient=p1"),
        Placement::Query,
    );
    let tampered = url.replacen("patient=p1", "patient=p1&_count=1", 1);
    assert_refused(&send(&client, &(tampered, None)), 401, "signature_invalid");

    // RSA-SHA1 keys do not sign HMAC requests.
    let rsa = Signer::new(&sandbox, "demo-rsa", "p1");
    let request = rsa.sign_with(
        &sandbox.url("/ccr/p1"),
        SignatureMethod::HmacSha1,
        Placement::Header,
        now(),
    );
    assert_refused(&send(&client, &request), 401, "signature_method_rejected");
}

#[test]
fn plaintext_over_plain_http_is_refused() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let consumer = "demo-hmac-query";
    let (token, token_secret) = sandbox.oauth1_token(consumer, "p1");
    // `sign()` refuses PLAINTEXT over http, so the request is built by hand.
    let signature = format!(
        "{}&{}",
        percent_encode(&format!("{consumer}-secret")),
        percent_encode(&token_secret)
    );
    let url = format!(
        "{}?oauth_consumer_key={consumer}&oauth_token={}&oauth_signature_method=PLAINTEXT&oauth_timestamp={}&oauth_nonce={}&oauth_signature={}",
        sandbox.url("/ccr/p1"),
        percent_encode(&token),
        now(),
        fresh_nonce(),
        percent_encode(&signature)
    );
    assert_refused(
        &send(&client, &(url, None)),
        401,
        "signature_method_rejected",
    );
}

#[test]
fn unknown_consumers_and_tokens_are_named_as_such() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let url = sandbox.url("/ccr/p1");

    let stranger = Signer {
        consumer: "nobody",
        credentials: Credentials::new("nobody", SecretString::from("x"))
            .with_token("t", SecretString::from("s")),
    };
    assert_refused(
        &send(&client, &stranger.sign(&url, Placement::Header)),
        401,
        "consumer_key_unknown",
    );

    // A token of another consumer is no token for this one.
    let (other_token, other_secret) = sandbox.oauth1_token("demo-hmac-query", "p1");
    let borrowed = Signer {
        consumer: "demo-hmac-header",
        credentials: Credentials::new(
            "demo-hmac-header",
            SecretString::from("demo-hmac-header-secret"),
        )
        .with_token(other_token, SecretString::from(other_secret)),
    };
    assert_refused(
        &send(&client, &borrowed.sign(&url, Placement::Header)),
        401,
        "token_rejected",
    );

    // A valid credential for another patient.
    let signer = Signer::new(&sandbox, "demo-hmac-header", "p2");
    assert_eq!(
        send(&client, &signer.sign(&url, Placement::Header)).status,
        403
    );

    let (status, _) = sandbox.admin(
        "/admin/oauth1/tokens",
        Some(&serde_json::json!({"consumer_key": "nobody", "patient": "p1"})),
    );
    assert_eq!(status, 400);
}
