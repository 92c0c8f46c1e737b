//! The sandbox's OAuth 1.0a verifier checked by an independent signer:
//! Python's oauthlib (tests/oracle/sandbox_oracle.py) signs a few hundred
//! requests for every built-in consumer, placement and method, with tricky
//! queries, and sends them to the real sandbox over loopback HTTP. Every
//! request must be accepted and every tampered copy refused.
//!
//! Without oauthlib this test fails (it never skips): `.ci/run` installs
//! it, locally `pip install 'oauthlib[signedtoken]==4.0.1'`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Sandbox, repo_path};

#[test]
fn oauthlib_signed_requests_are_accepted_and_tampered_copies_refused() {
    let sandbox = Sandbox::start();
    let patient = "p-oracle";
    let consumers: Vec<Value> = [
        ("demo-hmac-header", vec!["header"]),
        ("demo-hmac-query", vec!["query"]),
        ("demo-hmac-either", vec!["header", "query"]),
        ("demo-rsa", vec!["header", "query"]),
    ]
    .into_iter()
    .map(|(key, placements)| {
        let (token, token_secret) = sandbox.oauth1_token(key, patient);
        let rsa = key == "demo-rsa";
        json!({
            "key": key,
            "secret": (!rsa).then(|| format!("{key}-secret")),
            "token": token,
            "token_secret": token_secret,
            "placements": placements,
            "methods": if rsa { vec!["RSA-SHA1"] } else { vec!["HMAC-SHA1", "HMAC-SHA256"] },
        })
    })
    .collect();
    let input = json!({
        "base": sandbox.base,
        "patient": patient,
        "rsa_key_file": repo_path("samples/sandbox/demo-rsa-key.pem"),
        "consumers": consumers,
    });

    let mut child = Command::new("python3")
        .arg(repo_path("tests/oracle/sandbox_oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 (the oracle needs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write the cases");
    let out = child.wait_with_output().expect("the oracle finishes");
    assert!(
        out.status.success(),
        "the oracle failed (exit {:?}); it needs Python's oauthlib with RSA support: \
         pip install 'oauthlib[signedtoken]==4.0.1'\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the oracle answers JSON");
    let failures = summary["failures"].as_array().expect("failures");
    assert!(
        failures.is_empty(),
        "{} of {} oauthlib cases failed: {:#}",
        failures.len(),
        summary["total"],
        Value::Array(failures.iter().take(10).cloned().collect())
    );
    assert!(
        summary["total"].as_u64().is_some_and(|n| n >= 300),
        "{summary}"
    );
    assert_eq!(summary["passed"], summary["total"]);
}
