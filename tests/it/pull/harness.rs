//! A temporary rxsync home wired to running sandboxes: a config file with
//! providers, the sample dictionary, patient P1, helpers to link and pull.

use crate::support::{Run, Sandbox, TestEnv, repo_path};
use serde_json::{Value, json};

/// The demo consumer secrets, passed to rxsync through the environment as
/// a deployment would (never inline in the config file).
pub const SECRETS: &[(&str, &str)] = &[
    ("SANDBOX_HMAC_HEADER_SECRET", "demo-hmac-header-secret"),
    ("SANDBOX_HMAC_QUERY_SECRET", "demo-hmac-query-secret"),
    ("SANDBOX_HMAC_EITHER_SECRET", "demo-hmac-either-secret"),
    ("SANDBOX_CLIENT_SECRET", "demo-client-secret"),
    ("SANDBOX_NOROTATE_SECRET", "demo-norotate-secret"),
];

/// The remote patient id the sandbox's tokens are bound to.
pub const REMOTE: &str = "remote-p1";

pub struct Home {
    pub env: TestEnv,
    pub config: String,
}

/// An OAuth 1.0a CCR provider at `base` (a sandbox URL, maybe with a prefix such as /moved).
pub fn oauth1_ccr(id: &str, base: &str, consumer: &str, method: &str, placement: &str) -> String {
    let secret = match consumer {
        "demo-rsa" => format!(
            "rsa_private_key_file = \"{}\"",
            repo_path("samples/sandbox/demo-rsa-key.pem").display()
        ),
        other => format!(
            "consumer_secret_env = \"SANDBOX_{}_SECRET\"",
            other
                .trim_start_matches("demo-")
                .replace('-', "_")
                .to_uppercase()
        ),
    };
    format!(
        r#"
[[providers]]
id = "{id}"
kind = "ccr"
base_url = "{base}/"
document_url = "ccr/{{patient}}"
retries = 1
max_retry_after = 5
[providers.auth]
scheme = "oauth1"
consumer_key = "{consumer}"
{secret}
signature_method = "{method}"
placement = "{placement}"
"#
    )
}

/// An OAuth 2.0 FHIR provider at `base` (the FHIR base, e.g. `{sandbox}/fhir`).
pub fn oauth2_fhir(
    id: &str,
    base: &str,
    token_base: &str,
    client: &str,
    placement: &str,
) -> String {
    let secret = match client {
        "demo-client" => "client_secret_env = \"SANDBOX_CLIENT_SECRET\"",
        "demo-norotate" => "client_secret_env = \"SANDBOX_NOROTATE_SECRET\"",
        _ => "",
    };
    format!(
        r#"
[[providers]]
id = "{id}"
kind = "fhir"
base_url = "{base}"
resources = ["MedicationRequest", "MedicationStatement"]
retries = 1
max_retry_after = 5
[providers.auth]
scheme = "oauth2"
token_url = "{token_base}/oauth2/token"
revocation_url = "{token_base}/oauth2/revoke"
client_id = "{client}"
{secret}
placement = "{placement}"
"#
    )
}

/// The usual OAuth 1.0a CCR provider at a sandbox: `demo-hmac-header`, HMAC-SHA1, header.
pub fn ccr_at(sandbox: &Sandbox, id: &str) -> String {
    oauth1_ccr(id, &sandbox.base, "demo-hmac-header", "HMAC-SHA1", "header")
}

/// An OAuth 2.0 FHIR provider at a sandbox's own `/fhir` base and token endpoint.
pub fn fhir_at(sandbox: &Sandbox, id: &str, client: &str, placement: &str) -> String {
    oauth2_fhir(
        id,
        &format!("{}/fhir", sandbox.base),
        &sandbox.base,
        client,
        placement,
    )
}

impl Home {
    /// A home whose config holds `providers` (TOML `[[providers]]` tables).
    pub fn new(providers: &str) -> Home {
        let env = TestEnv::with_dictionary_and(&["P1"]);
        let config = env.write("config.toml", providers.as_bytes());
        Home { env, config }
    }

    /// Adds patient P2, who is the sandbox's `REMOTE` (its MRN is
    /// `MRN-remote-p1`), and when `named` also the sandbox account's name
    /// and birth date.
    pub fn add_p2(&self, named: bool) {
        let mrn = format!("MRN-{REMOTE}");
        let mut args = vec!["patient", "add", "--id", "P2", "--mrn", &mrn];
        if named {
            args.extend(["--name", "Pat Doe", "--birth-date", "1980-04-02"]);
        }
        self.rx(&args).ok();
    }

    /// `rxsync --config C --db D ARGS` with the demo secrets in the environment.
    pub fn rx(&self, args: &[&str]) -> Run {
        self.rx_stdin(args, b"")
    }

    pub fn rx_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.rx_with(args, stdin, &[])
    }

    /// With extra environment variables (e.g. `RXSYNC_LOG=trace`).
    pub fn rx_with(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
        use std::io::Write;
        let mut cmd = self.env.rxsync();
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());

        for (k, v) in SECRETS.iter().chain(env) {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run rxsync");
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin).expect("stdin");
        }
        Run::from(child.wait_with_output().expect("rxsync output"))
    }

    /// Links P1 to an OAuth 1.0a provider with a fresh sandbox token.
    pub fn link_oauth1(
        &self,
        sandbox: &Sandbox,
        provider: &str,
        consumer: &str,
    ) -> (i64, String, String) {
        let (token, secret) = sandbox.oauth1_token(consumer, REMOTE);
        let body = json!({"token": token, "token_secret": secret, "patient": REMOTE});
        let id = self.link(provider, &body);
        (id, token, secret)
    }

    /// Links P1 to an OAuth 2.0 provider with a sandbox grant (extra fields
    /// go to the admin API, e.g. `expires_in`, `access_token_valid`).
    pub fn link_oauth2(
        &self,
        sandbox: &Sandbox,
        provider: &str,
        client: &str,
        extra: Value,
    ) -> (i64, Value) {
        let mut req = json!({"client_id": client, "patient": REMOTE});
        if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        let (status, grant) = sandbox.admin("/admin/oauth2/grants", Some(&req));
        assert_eq!(status, 200, "{grant}");
        let id = self.link(provider, &grant);
        (id, grant)
    }

    /// `link add` for P1 with `tokens` on stdin; returns the link id.
    pub fn link(&self, provider: &str, tokens: &Value) -> i64 {
        self.link_as("P1", provider, tokens)
    }

    /// `link add` for `patient` with `tokens` on stdin; returns the link id.
    pub fn link_as(&self, patient: &str, provider: &str, tokens: &Value) -> i64 {
        let run = self.rx_stdin(
            &[
                "link",
                "add",
                "--patient",
                patient,
                "--provider",
                provider,
                "--format",
                "json",
            ],
            tokens.to_string().as_bytes(),
        );
        run.json()["id"].as_i64().expect("link id")
    }

    /// The vault's key file (beside the database: no `[vault]` in the config).
    pub fn key_file(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("{}.key", self.env.db.display()))
    }

    /// `import --patient P1 [--provider X] --format json`.
    pub fn pull(&self, provider: Option<&str>) -> Run {
        let mut args = vec!["import", "--patient", "P1", "--format", "json"];
        if let Some(p) = provider {
            args.extend(["--provider", p]);
        }
        self.rx(&args)
    }

    /// The per-link reports of a pull that printed them (success or not).
    pub fn reports(run: &Run) -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&run.stdout)
            .unwrap_or_else(|e| panic!("pull output is not a JSON list ({e}): {run:?}"))
    }

    /// A link's row, as `link list --format json` shows it.
    pub fn link_row(&self, id: i64) -> Value {
        let list = self.rx(&["link", "list", "--format", "json"]).json();
        list.as_array()
            .and_then(|a| a.iter().find(|l| l["id"] == id).cloned())
            .unwrap_or_else(|| panic!("no link {id} in {list}"))
    }

    /// The tables that hold imported data: documents, regimens, items.
    pub fn imported_rows(&self) -> (i64, i64, i64) {
        (
            self.env.query_i64("SELECT COUNT(*) FROM documents"),
            self.env.query_i64("SELECT COUNT(*) FROM regimens"),
            self.env.query_i64("SELECT COUNT(*) FROM items"),
        )
    }

    /// Every byte rxsync keeps on disk: the database, its WAL, the key file's folder excluded.
    /// On PostgreSQL: every row of every table as text, and the raw bytes
    /// of every bytea column (a plaintext there would hide in the hex).
    pub fn stored_bytes(&self) -> Vec<u8> {
        self.env.stored_bytes()
    }
}

/// Requests a sandbox received (admin calls excluded).
pub fn requests(sandbox: &Sandbox) -> Vec<Value> {
    let (status, json) = sandbox.admin("/admin/requests", None);
    assert_eq!(status, 200);
    json.as_array().cloned().unwrap_or_default()
}

pub fn clear_requests(sandbox: &Sandbox) {
    let (status, _) = sandbox.admin("/admin/requests/clear", Some(&json!({})));
    assert_eq!(status, 200);
}

pub fn stats(sandbox: &Sandbox) -> Value {
    let (status, json) = sandbox.admin("/admin/stats", None);
    assert_eq!(status, 200);
    json
}

/// Whether a recorded request carried any credential: an Authorization
/// header, or an oauth_* / access_token query parameter.
pub fn carries_credentials(req: &Value) -> bool {
    let header = req["headers"].get("authorization").is_some();
    let query = req["query"].as_str().unwrap_or("");
    let in_query = url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, _)| k.starts_with("oauth_") || k == "access_token");
    header || in_query
}

/// True when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A form POST over raw HTTP (the token endpoint, as another client would call it).
pub fn post_form(
    sandbox: &Sandbox,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let auth = basic
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
        .unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(sandbox.authority()).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sandbox.authority(),
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}
