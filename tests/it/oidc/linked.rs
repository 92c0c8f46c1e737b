//! An rxsync home wired to a running test server (config file, sample
//! dictionary, a patient linked with a fresh grant), run as the real binary
//! with the client secret in its environment; and readers for what rxsync
//! and the server report.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use super::server::{OidcServer, SECRET, issued_tokens_in};
use crate::support::{Run, TestEnv, repo_path};

/// The environment variable the config names for the client secret.
const SECRET_ENV: &str = "RXSYNC_TEST_OIDC_SECRET";
/// rxsync's own patient id, and the patient id at the provider (SMART's
/// `patient` in the token response): deliberately different, since the
/// provider knows nothing of rxsync's ids.
pub(super) const LOCAL_PATIENT: &str = "P1";
pub(super) const SMART_PATIENT: &str = "ehr-1001";
/// The three package NDCs the server's MedicationRequests carry, as NDC-11.
const NDC11S: [&str; 3] = ["00003519410", "00006010654", "00054429925"];

/// How rxsync sends the client secret: config `client_auth`, and the
/// server's client registered for it.
#[derive(Clone, Copy)]
pub(super) enum ClientAuth {
    Basic,
    Post,
}

impl ClientAuth {
    pub(super) fn client_id(self) -> &'static str {
        match self {
            ClientAuth::Basic => "rxsync",
            ClientAuth::Post => "rxsync-post",
        }
    }
    pub(super) fn config(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::Post => "post",
        }
    }
    pub(super) fn method(self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
        }
    }
}

/// An rxsync home wired to a running server: config file, sample
/// dictionary, patient P1 linked to provider `oidc` with a fresh grant.
pub(super) struct Linked {
    pub(super) server: OidcServer,
    env: TestEnv,
    config: String,
    /// The link id `rxsync link add` printed.
    pub(super) link: String,
    /// The raw token response handed to `link add`.
    pub(super) token: Value,
    /// Everything rxsync printed, for the leak check.
    outputs: RefCell<Vec<String>>,
}

impl Linked {
    pub(super) fn new(auth: ClientAuth, expires_in: Option<u64>) -> Linked {
        Linked::with_identity(auth, expires_in, |_| String::new(), &[])
    }

    /// `new`, with `identity(endpoints)` appended to the provider (e.g. an
    /// `introspection_url` and a `[providers.identity]` table) and the
    /// local patient registered with `patient_args` (`--mrn …`).
    pub(super) fn with_identity(
        auth: ClientAuth,
        expires_in: Option<u64>,
        identity: impl Fn(&super::server::Endpoints) -> String,
        patient_args: &[&str],
    ) -> Linked {
        let server = OidcServer::start();
        let env = TestEnv::new();
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
client_id = "{client_id}"
client_secret_env = "{SECRET_ENV}"
client_auth = "{client_auth}"
placement = "header"
scopes = ["openid", "offline_access", "patient/MedicationRequest.rs"]
revocation_url = "{revocation_url}"
{identity}
"#,
                identity = identity(e),
                fhir_base = e.fhir_base,
                token_url = e.token_endpoint,
                client_id = auth.client_id(),
                client_auth = auth.config(),
                revocation_url = e.revocation_endpoint,
            )
            .as_bytes(),
        );
        let token = server.grant(auth.client_id(), SMART_PATIENT, expires_in);
        let mut linked = Linked {
            server,
            env,
            config,
            link: String::new(),
            token,
            outputs: RefCell::new(Vec::new()),
        };
        linked
            .rxsync(&[
                "dict",
                "import",
                "--fda",
                &repo_path("samples/ndc").display().to_string(),
            ])
            .ok();
        let mut add = vec!["patient", "add", "--id", LOCAL_PATIENT];
        add.extend_from_slice(patient_args);
        linked.rxsync(&add).ok();
        let stdin = serde_json::to_vec(&linked.token).expect("JSON");
        let run = linked.rxsync_stdin(
            &[
                "link",
                "add",
                "--patient",
                LOCAL_PATIENT,
                "--provider",
                "oidc",
                "--format",
                "json",
            ],
            &stdin,
        );
        let added: serde_json::Value = serde_json::from_str(run.ok())
            .unwrap_or_else(|e| panic!("link add --format json: {e}: {run:?}"));
        assert_eq!(added["state"], "active", "{run:?}");
        let link = added["id"].as_i64().expect("link id").to_string();
        linked.link = link;
        linked
    }

    /// Runs `rxsync --db DB --config CONFIG ARGS` with the client secret in
    /// its environment.
    pub(super) fn rxsync(&self, args: &[&str]) -> Run {
        self.rxsync_stdin(args, b"")
    }

    pub(super) fn rxsync_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut cmd = self.env.rxsync();
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.env(SECRET_ENV, SECRET);
        let mut child = cmd.spawn().expect("run rxsync");
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(stdin).expect("write stdin");
        drop(pipe);
        let out = child.wait_with_output().expect("rxsync output");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.outputs
            .borrow_mut()
            .extend([run.stdout.clone(), run.stderr.clone()]);
        run
    }

    /// `rxsync import --patient P1 --provider oidc --format json`.
    pub(super) fn pull(&self) -> Run {
        self.rxsync(&[
            "import",
            "--patient",
            LOCAL_PATIENT,
            "--provider",
            "oidc",
            "--format",
            "json",
        ])
    }

    /// The one per-link result of a pull's JSON, for this link.
    #[track_caller]
    pub(super) fn result_of(&self, run: &Run) -> Value {
        let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "pull stdout is not JSON ({e})\nstdout: {}\nstderr: {}",
                run.stdout, run.stderr
            )
        });
        let results = v
            .as_array()
            .unwrap_or_else(|| panic!("pull JSON is not a list: {v}"));
        assert_eq!(results.len(), 1, "one link, one result: {v}");
        assert_eq!(id_text(&results[0]["link"]), self.link, "{v}");
        results[0].clone()
    }

    /// This link's row of `rxsync link list --format json`.
    #[track_caller]
    pub(super) fn link_row(&self) -> Value {
        let v = self.rxsync(&["link", "list", "--format", "json"]).json();
        let rows = v
            .as_array()
            .unwrap_or_else(|| panic!("link list is not a list: {v}"));
        let row = rows
            .iter()
            .find(|r| id_text(&r["id"]) == self.link)
            .unwrap_or_else(|| panic!("link {} not listed: {v}", self.link))
            .clone();
        for key in ["id", "patient", "provider", "state", "last_sync"] {
            assert!(row.get(key).is_some(), "link row lacks {key}: {row}");
        }
        assert_eq!(row["patient"], LOCAL_PATIENT, "{row}");
        assert_eq!(row["provider"], "oidc", "{row}");
        row
    }

    /// The NDC-11s of P1's current regimen.
    pub(super) fn regimen_ndcs(&self) -> BTreeSet<String> {
        let r = self
            .rxsync(&[
                "regimen",
                "show",
                "--patient",
                LOCAL_PATIENT,
                "--format",
                "json",
            ])
            .json();
        r["items"]
            .as_array()
            .unwrap_or_else(|| panic!("regimen has no items: {r}"))
            .iter()
            .filter_map(|i| i["ndc11"].as_str().map(str::to_string))
            .collect()
    }

    /// Neither the client secret nor any token the server issued (it keeps
    /// their SHA-256) appears in anything rxsync printed.
    #[track_caller]
    pub(super) fn assert_nothing_leaked(&self) {
        let issued = self.server.issued();
        assert!(!issued.is_empty());
        for (n, text) in self.outputs.borrow().iter().enumerate() {
            assert!(
                !text.contains(SECRET),
                "output #{n} of rxsync shows the client secret"
            );
            assert_eq!(
                issued_tokens_in(text, &issued),
                0,
                "output #{n} of rxsync shows a token the server issued"
            );
        }
        // Also the tokens that went in on stdin, spelled out.
        for key in ["access_token", "refresh_token"] {
            let token = self.token[key].as_str().expect("token");
            assert!(
                self.outputs.borrow().iter().all(|t| !t.contains(token)),
                "rxsync printed the {key} it was given"
            );
        }
    }
}

/// A link or id as text, whether rxsync prints it as a number or a string.
pub(super) fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The item count of a successful per-link result: `items` on the result
/// itself or in its nested import summary (the contract says "with the
/// import summary"; either shape is accepted), a number or a list.
#[track_caller]
pub(super) fn items_of(result: &Value) -> u64 {
    let count = |v: &Value| v.as_u64().or_else(|| v.as_array().map(|a| a.len() as u64));
    if let Some(n) = result.get("items").and_then(count) {
        return n;
    }
    result
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .find_map(|v| v.get("items").and_then(count))
        .unwrap_or_else(|| panic!("no import summary with items in {result}"))
}

/// The successful token requests in the server's log.
pub(super) fn refreshes(stats: &Value) -> Vec<Value> {
    stats["token_log"]
        .as_array()
        .expect("token_log")
        .iter()
        .filter(|e| e["grant_type"] == "refresh_token" && e["error"].is_null())
        .cloned()
        .collect()
}

/// The pages of MedicationRequest searches the server answered, by status.
pub(super) fn fhir_requests(stats: &Value) -> Vec<(u64, u64)> {
    stats["fhir_requests"]
        .as_array()
        .expect("fhir_requests")
        .iter()
        .filter(|r| r["path"] == "/fhir/MedicationRequest")
        .map(|r| {
            (
                r["page"].as_u64().unwrap_or(0),
                r["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

pub(super) fn expected_ndcs() -> BTreeSet<String> {
    NDC11S.iter().map(|s| s.to_string()).collect()
}
