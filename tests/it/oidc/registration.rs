//! `rxsync provider register` against oidc-provider's RFC 7591 endpoint
//! (`features.registration`), found by discovery (`discover = true`): the
//! issued client is sealed in the database (neither its id nor its secret
//! is there by value, nor in any output), and the refresh of a grant made
//! for it authenticates as it, the way the server registered it.

use std::time::Duration;

use super::linked::{LOCAL_PATIENT, SMART_PATIENT, items_of};
use super::server::{OidcServer, SCOPE};
use crate::support::{Run, TestEnv, repo_path};

fn rx(env: &TestEnv, config: &str, args: &[&str], stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut cmd = env.rxsync();
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run rxsync");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin).expect("stdin");
    }
    Run::from(child.wait_with_output().expect("rxsync output"))
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_client_registered_at_oidc_provider_is_sealed_and_refreshes_as_registered() {
    let server = OidcServer::start();
    let env = TestEnv::new();
    let scopes: Vec<String> = SCOPE.split(' ').map(|s| format!("\"{s}\"")).collect();
    let config = env.write(
        "config.toml",
        format!(
            r#"[[providers]]
id = "oidc"
kind = "fhir"
base_url = "{}"
resources = ["MedicationRequest"]
discover = true
[providers.auth]
scheme = "oauth2"
redirect_uri = "http://127.0.0.1:8765/callback"
scopes = [{}]
"#,
            server.endpoints.fhir_base,
            scopes.join(", ")
        )
        .as_bytes(),
    );
    let mut outputs = Vec::new();
    let mut run = |args: &[&str], stdin: &[u8]| {
        let r = rx(&env, &config, args, stdin);
        outputs.push(r.stdout.clone());
        outputs.push(r.stderr.clone());
        r
    };

    let answer = run(
        &[
            "provider",
            "register",
            "--provider",
            "oidc",
            "--format",
            "json",
        ],
        b"",
    )
    .json();
    let client_id = answer["client_id"].as_str().expect("client_id").to_string();
    assert_eq!(answer["client_secret"], true, "{answer}");
    let kept = server.client(&client_id);
    assert_eq!(
        kept["token_endpoint_auth_method"], "client_secret_basic",
        "{kept}"
    );
    assert_eq!(
        kept["redirect_uris"],
        serde_json::json!(["http://127.0.0.1:8765/callback"]),
        "{kept}"
    );
    assert_eq!(kept["scope"], SCOPE, "{kept}");
    let secret = kept["client_secret"].as_str().expect("secret").to_string();

    run(
        &[
            "dict",
            "import",
            "--fda",
            &repo_path("samples/ndc").display().to_string(),
        ],
        b"",
    )
    .ok();
    run(&["patient", "add", "--id", LOCAL_PATIENT], b"").ok();
    let token = server.grant(&client_id, SMART_PATIENT, Some(1));
    let stdin = serde_json::to_vec(&token).expect("JSON");
    run(
        &[
            "link",
            "add",
            "--patient",
            LOCAL_PATIENT,
            "--provider",
            "oidc",
        ],
        &stdin,
    )
    .ok();
    std::thread::sleep(Duration::from_millis(1500));
    let pulled = run(
        &[
            "import",
            "--patient",
            LOCAL_PATIENT,
            "--provider",
            "oidc",
            "--format",
            "json",
        ],
        b"",
    );
    let reports: serde_json::Value = serde_json::from_str(pulled.ok()).expect("pull JSON");
    assert_eq!(reports[0]["outcome"], "imported", "{reports}");
    assert_eq!(items_of(&reports[0]), 3, "{reports}");

    let stats = server.stats();
    let refreshes: Vec<&serde_json::Value> = stats["token_log"]
        .as_array()
        .expect("token_log")
        .iter()
        .filter(|t| t["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1, "{stats}");
    assert_eq!(refreshes[0]["client_id"], client_id.as_str(), "{stats}");
    assert_eq!(
        refreshes[0]["client_auth"], "client_secret_basic",
        "{stats}"
    );
    assert_eq!(refreshes[0]["status"], 200, "{stats}");

    let stored = env.stored_bytes();
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
}
