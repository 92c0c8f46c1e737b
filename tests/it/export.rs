//! `rxsync export` (FHIR Bulk Data `$export`, SMART Backend Services)
//! against an independent server: tests/oracle/bulk_server.py, Python's
//! http.server with PyJWT verifying the client assertion (RS384 and ES384
//! public keys made here with the `openssl` command). The binary runs the
//! whole flow; the server records what it received.
//!
//! Without PyJWT (pip install 'oauthlib[signedtoken]') or openssl these
//! tests fail; they never skip.

use crate::support::{Run, TestEnv, repo_path};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Oracle {
    child: Child,
    port: u16,
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Oracle {
    fn start(keys: &std::path::Path, flags: &[&str]) -> Oracle {
        let mut child = Command::new("python3")
            .arg(repo_path("tests/oracle/bulk_server.py"))
            .arg(keys)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server prints its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bulk_server.py did not start: {line:?}"));
        Oracle { child, port }
    }

    fn record(&self) -> Value {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1]).read().decode())",
            ])
            .arg(format!("http://127.0.0.1:{}/_record", self.port))
            .output()
            .expect("python3 runs");
        serde_json::from_slice(&out.stdout).expect("record JSON")
    }
}

/// Makes a key pair with openssl; returns the private key's path and the public key's.
fn keypair(dir: &std::path::Path, alg: &str) -> (String, String) {
    let private = dir.join(format!("{alg}.pem"));
    let public = dir.join(format!("{alg}.pub.pem"));
    let opts: &[&str] = match alg {
        "RS384" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    };
    assert!(
        Command::new("openssl")
            .arg("genpkey")
            .args(opts)
            .arg("-out")
            .arg(&private)
            .stderr(Stdio::null())
            .status()
            .expect("openssl")
            .success()
    );
    assert!(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .expect("openssl")
            .success()
    );
    (private.display().to_string(), public.display().to_string())
}

/// A backend-services provider's `[[providers]]` table: `fhir` is its FHIR
/// base, `bulk` the body of its `[providers.bulk]`, the client assertion
/// signed with the key of `alg` among the two made (`RS384` → `kid-rs`,
/// else `kid-es`). Returns the table and the private key's text.
fn bulk_provider(
    id: &str,
    fhir: &str,
    token_url: &str,
    bulk: &str,
    scopes: &str,
    alg: &str,
    keys: [&str; 2],
) -> (String, String) {
    let (key, kid) = if alg == "RS384" {
        (keys[0], "kid-rs")
    } else {
        (keys[1], "kid-es")
    };
    let private = std::fs::read_to_string(key).expect("key");
    let table = format!(
        r#"
[[providers]]
id = "{id}"
kind = "fhir"
base_url = "{fhir}"
[providers.bulk]
{bulk}
[providers.auth]
scheme = "oauth2"
grant = "client_credentials"
token_url = "{token_url}"
client_id = "rxsync"
client_auth = "private_key_jwt"
private_key_file = "{key}"
key_id = "{kid}"
algorithm = "{alg}"
scopes = {scopes}
"#
    );
    (table, private)
}

/// A home with both keys, a keys file for the server, and a config for `alg`.
fn setup(alg: &str, flags: &[&str]) -> (TestEnv, Oracle, String) {
    let env = TestEnv::new();
    let (rs_priv, rs_pub) = keypair(env.dir.path(), "RS384");
    let (es_priv, es_pub) = keypair(env.dir.path(), "ES384");
    let keys = serde_json::json!({
        "kid-rs": {"alg": "RS384", "pem": rs_pub},
        "kid-es": {"alg": "ES384", "pem": es_pub},
    });
    let keys_path = env.write("keys.json", keys.to_string().as_bytes());
    let oracle = Oracle::start(std::path::Path::new(&keys_path), flags);
    let base = format!("http://127.0.0.1:{}", oracle.port);
    let (table, private) = bulk_provider(
        "payer-bulk",
        &format!("{base}/fhir"),
        &format!("{base}/token"),
        "level = \"group\"\ngroup = \"medicare-cohort-1\"",
        r#"["system/MedicationRequest.rs", "system/Patient.rs"]"#,
        alg,
        [&rs_priv, &es_priv],
    );
    env.write("config.toml", table.as_bytes());
    (env, oracle, private)
}

fn no_secret(run: &Run, private: &str) {
    let body: String = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains(&body[..40]), "the private key leaked: {out}");
        assert!(!out.contains("eyJ"), "a JWT leaked: {out}");
    }
}

/// No issued access token, in output, debug logs or the database.
fn no_token(oracle: &Oracle, env: &TestEnv, runs: &[&Run]) {
    let rec = oracle.record();
    let issued: Vec<&str> = rec["issued"]
        .as_array()
        .expect("issued")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(!issued.is_empty());
    let db = env.stored_text();
    for t in issued {
        for run in runs {
            assert!(
                !run.stdout.contains(t) && !run.stderr.contains(t),
                "a token leaked"
            );
        }
        assert!(!db.contains(t), "a token is in the database");
    }
}

#[test]
fn an_es384_group_export_runs_end_to_end_and_the_next_asks_since() {
    let (env, oracle, private) = setup("ES384", &["--require-token"]);
    let run = env.run_with_env(
        &["export", "start", "--provider", "payer-bulk"],
        &[("RXSYNC_LOG", "trace")],
    );
    no_secret(&run, &private);
    no_token(&oracle, &env, &[&run]);
    let out = run.ok().to_string();
    assert!(out.contains("completed"), "{out}");
    assert!(
        out.contains("ERROR FILE: error processing: Patient/p3 could not be exported"),
        "{out}"
    );
    let rec = oracle.record();
    let token = &rec["tokens"][0];
    assert_eq!(token["verified"], true, "{rec}");
    assert_eq!(token["alg"], "ES384");
    assert_eq!(token["kid"], "kid-es");
    assert_eq!(
        token["scope"],
        "system/MedicationRequest.rs system/Patient.rs"
    );
    let k = &rec["kickoffs"][0];
    assert_eq!(k["path"], "/fhir/Group/medicare-cohort-1/$export");
    assert_eq!(k["prefer"], "respond-async");
    assert_eq!(k["accept"], "application/fhir+json");
    assert!(
        k["query"]["_type"][0]
            .as_str()
            .expect("_type")
            .contains("MedicationDispense")
    );
    assert!(k["query"].get("_since").is_none(), "{k}");
    assert!(rec["status_polls"].as_i64().expect("polls") >= 3, "{rec}");
    assert_eq!(rec["deletes"], 1);
    assert_eq!(
        rec["refused"].as_array().expect("refused").len(),
        0,
        "{rec}"
    );

    let status = env
        .run(&[
            "export",
            "status",
            "--provider",
            "payer-bulk",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(status["state"], "completed");
    assert_eq!(status["transaction_time"], "2026-12-01T10:00:00.000Z");
    assert_eq!(status["progress"], "step 2 of 2");
    let files = status["files"].as_array().expect("files");
    assert_eq!(files.len(), 3);
    let first = std::fs::read_to_string(files[0]["path"].as_str().expect("path")).expect("file");
    assert_eq!(first.lines().count(), 2);
    let note = files[0]["import_note"].as_str().expect("note");
    assert!(
        note.contains("0 patient(s) imported") && note.contains("2 unknown"),
        "the oracle's patients are nobody here: {note}"
    );
    assert_eq!(files[2]["kind"], "error");

    // The next export asks only for what changed since the last one.
    env.run(&["export", "start", "--provider", "payer-bulk"])
        .ok();
    let rec = oracle.record();
    assert_eq!(
        rec["kickoffs"][1]["query"]["_since"][0],
        "2026-12-01T10:00:00.000Z"
    );
}

#[test]
fn an_interrupted_rs384_export_resumes_without_starting_over() {
    let (env, oracle, private) = setup("RS384", &["--interrupt"]);
    let run = env.run(&[
        "export",
        "start",
        "--provider",
        "payer-bulk",
        "--group",
        "g2",
    ]);
    no_secret(&run, &private);
    let err = run.fails(1).to_string();
    assert!(err.contains("could not be downloaded"), "{err}");
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    let status = env
        .run(&[
            "export",
            "status",
            "--provider",
            "payer-bulk",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(status["state"], "failed");
    assert!(status["files"][0]["downloaded_at"].is_string(), "{status}");
    assert!(status["files"][1]["downloaded_at"].is_null());

    let resumed = env.run(&["export", "resume", "--provider", "payer-bulk"]);
    no_secret(&resumed, &private);
    assert!(resumed.ok().contains("completed"));
    let rec = oracle.record();
    assert_eq!(rec["tokens"][0]["alg"], "RS384");
    assert_eq!(
        rec["kickoffs"].as_array().expect("kickoffs").len(),
        1,
        "{rec}"
    );
    assert_eq!(rec["kickoffs"][0]["path"], "/fhir/Group/g2/$export");
    assert_eq!(
        rec["downloads"]["0"], 1,
        "file 0 was not downloaded again: {rec}"
    );
    assert_eq!(rec["downloads"]["1"], 2, "{rec}");
    assert_eq!(rec["deletes"], 1);
    assert!(
        rec.get("unexpected_bearer").is_none(),
        "no bearer when the manifest does not require it: {rec}"
    );
    // Nothing left to resume.
    let again = env.run(&["export", "resume", "--provider", "payer-bulk"]);
    assert!(
        again.fails(1).contains("no unfinished export"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_refused_assertion_is_a_clear_error_without_the_key() {
    let (env, _oracle, private) = setup("ES384", &[]);
    // The server knows kid-es as ES384: claim the RS key under its name.
    let config = std::fs::read_to_string(env.dir.path().join("config.toml"))
        .expect("config")
        .replace("ES384.pem", "RS384.pem")
        .replace("algorithm = \"ES384\"", "algorithm = \"RS384\"");
    env.write("config.toml", config.as_bytes());
    let run = env.run(&["export", "start", "--provider", "payer-bulk"]);
    no_secret(&run, &private);
    let err = run.fails(1);
    assert!(err.contains("refused the client (invalid_client"), "{err}");
}

#[test]
fn a_sigkill_mid_download_is_resumed_from_the_stored_manifest() {
    let (env, oracle, _private) = setup("ES384", &["--stall"]);
    let mut child = env
        .rxsync()
        .args(["export", "start", "--provider", "payer-bulk"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rxsync runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while oracle.record()["downloads"]["1"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "file 1 was never requested"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let status = env
        .run(&[
            "export",
            "status",
            "--provider",
            "payer-bulk",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(status["state"], "downloading", "{status}");
    assert!(status["files"][0]["downloaded_at"].is_string(), "{status}");
    assert!(status["files"][1]["downloaded_at"].is_null(), "{status}");

    let resumed = env.run(&["export", "resume", "--provider", "payer-bulk"]);
    assert!(resumed.ok().contains("completed"), "{}", resumed.stdout);
    let rec = oracle.record();
    assert_eq!(
        rec["kickoffs"].as_array().expect("kickoffs").len(),
        1,
        "{rec}"
    );
    assert_eq!(rec["downloads"]["0"], 1, "{rec}");
    assert_eq!(rec["downloads"]["1"], 2, "{rec}");
    let status = env
        .run(&[
            "export",
            "status",
            "--provider",
            "payer-bulk",
            "--format",
            "json",
        ])
        .json();
    let path = status["files"][1]["path"].as_str().expect("path");
    assert_eq!(
        std::fs::read_to_string(path)
            .expect("file 1")
            .lines()
            .count(),
        2,
        "file 1 is whole"
    );
    assert!(!std::path::Path::new(&format!("{path}.part")).exists());
}

/// A sink that imports, counting what it was handed.
struct Counting(Vec<String>);

impl rxsync::export::ExportSink for Counting {
    fn import_files(
        &mut self,
        _provider: &str,
        paths: &[std::path::PathBuf],
    ) -> Result<Vec<rxsync::export::FileOutcome>, String> {
        Ok(paths
            .iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.0.push(name);
                rxsync::export::FileOutcome::Imported("counted".into())
            })
            .collect())
    }
}

#[test]
fn a_resumed_export_never_hands_an_imported_file_over_again() {
    let (env, _oracle, _private) = setup("RS384", &["--interrupt"]);
    let path = env.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let raw = rxsync::config::parse(&text, &path).expect("parses");
    let config =
        rxsync::config::resolve(raw, Some(&path), env.dir.path(), &|_| None).expect("resolves");
    let provider = config.provider("payer-bulk").expect("provider");
    let exporter = rxsync::export::Exporter::new(provider, &env.db).expect("exporter");
    let mut store = env.store();
    let mut sink = Counting(Vec::new());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (id, _) = rt
        .block_on(exporter.start(&mut store, &mut sink, None, None, "test"))
        .expect_err("file 1 is cut off");
    let id = id.expect("recorded");
    // A patient's resources are spread over files: nothing is imported
    // until every output file is on disk.
    assert!(sink.0.is_empty(), "{:?}", sink.0);
    rt.block_on(exporter.resume(&mut store, &mut sink, id))
        .expect("resumes");
    assert_eq!(
        sink.0,
        ["0-MedicationRequest.ndjson", "1-Patient.ndjson"],
        "imported together, once"
    );
    // Completed: nothing is left to resume, so nothing is handed over again.
    assert!(
        rt.block_on(exporter.resume(&mut store, &mut sink, id))
            .is_err()
    );
    assert_eq!(
        sink.0.len(),
        2,
        "an imported file is never handed over again"
    );
    let files = store.export_files(id).expect("files");
    assert!(files[..2].iter().all(|f| f.imported_at.is_some()));
    assert!(
        files[2].imported_at.is_none(),
        "an error file is never imported"
    );
    assert!(
        files[2]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Patient/p3 could not be exported"))
    );
}

/// A home wired to a sandbox whose `[bulk]` knows our ES384 and RS384 keys.
fn sandbox_setup(alg: &str, bulk_extra: &str) -> (TestEnv, crate::support::Sandbox, String) {
    let env = TestEnv::new();
    let data = env.dir.path().join("sandbox");
    std::fs::create_dir_all(&data).expect("data dir");
    let (rs_priv, rs_pub) = keypair(&data, "RS384");
    let (es_priv, es_pub) = keypair(&data, "ES384");
    std::fs::write(
        data.join("sandbox.toml"),
        format!(
            r#"
[bulk]
patients = ["bulk-1", "bulk-2"]
{bulk_extra}
[[bulk.clients]]
id = "rxsync"
kid = "kid-rs"
algorithm = "RS384"
public_key_file = "{rs_pub}"
[[bulk.clients]]
id = "rxsync"
kid = "kid-es"
algorithm = "ES384"
public_key_file = "{es_pub}"
"#
        ),
    )
    .expect("sandbox.toml");
    let sandbox = crate::support::Sandbox::start_with(&["--data", &data.display().to_string()]);
    let (table, private) = bulk_provider(
        "sandbox-bulk",
        &format!("{}/fhir", sandbox.base),
        &format!("{}/oauth2/token", sandbox.base),
        "level = \"patient\"\nmatch = \"mrn\"",
        r#"["system/*.rs"]"#,
        alg,
        [&rs_priv, &es_priv],
    );
    env.write("config.toml", table.as_bytes());
    (env, sandbox, private)
}

#[test]
fn the_sandbox_exports_its_patients_to_an_es384_client() {
    let (env, _sandbox, private) = sandbox_setup("ES384", "");
    // bulk-1 is a local patient (by MRN); bulk-2 is nobody here.
    env.run(&["patient", "add", "--id", "local-b1", "--mrn", "MRN-bulk-1"])
        .ok();
    let run = env.run(&["export", "start", "--provider", "sandbox-bulk"]);
    no_secret(&run, &private);
    let out = run.ok().to_string();
    assert!(out.contains("completed"), "{out}");
    assert!(
        out.contains("ERROR FILE: error not-found: Patient/bulk-gone"),
        "{out}"
    );
    let status = env
        .run(&[
            "export",
            "status",
            "--provider",
            "sandbox-bulk",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(status["level"], "patient");
    assert!(status["deleted_at"].is_string(), "{status}");
    let files = status["files"].as_array().expect("files");
    assert_eq!(files[0]["type"], "Patient");
    assert_eq!(files.len(), 5, "{status}");
    let requests = std::fs::read_to_string(files[1]["path"].as_str().expect("path")).expect("file");
    assert!(requests.lines().count() >= 2);
    assert!(requests.contains("Patient/bulk-1") && requests.contains("Patient/bulk-2"));
    let note = files[1]["import_note"].as_str().expect("note");
    assert!(
        note.contains("1 patient(s) imported") && note.contains("1 unknown"),
        "{note}"
    );
    // The export's files were imported together, into the local patient's
    // regimen from this provider.
    let regimen = env
        .run(&[
            "regimen",
            "show",
            "--patient",
            "local-b1",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(regimen["source"], "sandbox-bulk", "{regimen}");
    assert!(
        regimen["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{regimen}"
    );
    // Exported again: the same resources make no new version.
    env.run(&["export", "start", "--provider", "sandbox-bulk"])
        .ok();
    let again = env
        .run(&[
            "regimen",
            "show",
            "--patient",
            "local-b1",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(again["version"], regimen["version"], "{again}");
}

#[test]
fn the_sandbox_interruption_is_resumed_with_an_rs384_client() {
    let (env, sandbox, private) = sandbox_setup("RS384", "interrupt = true\npolls = 1");
    let run = env.run(&["export", "start", "--provider", "sandbox-bulk"]);
    no_secret(&run, &private);
    run.fails(1);
    let resumed = env.run(&["export", "resume", "--provider", "sandbox-bulk"]);
    assert!(resumed.ok().contains("completed"), "{}", resumed.stdout);
    let (_, log) = sandbox.admin("/admin/requests", None);
    let paths: Vec<String> = log
        .as_array()
        .or_else(|| log["requests"].as_array())
        .expect("request log")
        .iter()
        .filter_map(|r| r["path"].as_str().map(str::to_string))
        .collect();
    let count = |p: &str| paths.iter().filter(|x| x.ends_with(p)).count();
    assert_eq!(count("$export"), 1, "{paths:?}");
    assert_eq!(count("/0"), 1, "{paths:?}");
    assert_eq!(count("/1"), 2, "{paths:?}");
}

#[test]
fn cancel_deletes_the_status_url_and_bad_input_is_a_usage_error() {
    let (env, oracle, _private) = setup("ES384", &["--interrupt"]);
    env.run(&["export", "start", "--provider", "payer-bulk"])
        .fails(1);
    let out = env.run(&["export", "cancel", "--provider", "payer-bulk"]);
    assert!(out.ok().contains("cancelled"));
    assert_eq!(oracle.record()["deletes"], 1);
    let status = env
        .run(&[
            "export",
            "status",
            "--provider",
            "payer-bulk",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(status["state"], "cancelled");
    assert!(
        env.run(&["export", "resume", "--provider", "payer-bulk"])
            .fails(1)
            .contains("no unfinished export")
    );
    let usage: &[&[&str]] = &[
        &["export", "start", "--provider", "nobody"],
        &[
            "export",
            "start",
            "--provider",
            "payer-bulk",
            "--since",
            "yesterday",
        ],
        &[
            "export",
            "start",
            "--provider",
            "payer-bulk",
            "--group",
            "a/b",
        ],
    ];
    for args in usage {
        let run = env.run(args);
        assert!(!run.fails(2).is_empty(), "{args:?}");
    }
    // A provider without [providers.bulk] is named as such.
    let text = std::fs::read_to_string(env.dir.path().join("config.toml"))
        .expect("config")
        .replace(
            "[providers.bulk]\nlevel = \"group\"\ngroup = \"medicare-cohort-1\"\n",
            "",
        );
    env.write("config.toml", text.as_bytes());
    let err = env.run(&["export", "start", "--provider", "payer-bulk"]);
    assert!(err.fails(2).contains("[providers.bulk]"), "{}", err.stderr);
}

#[test]
fn the_daemon_exports_a_provider_with_a_bulk_interval() {
    let (env, oracle, _private) = setup("ES384", &[]);
    let text = std::fs::read_to_string(env.dir.path().join("config.toml"))
        .expect("config")
        .replace(
            "group = \"medicare-cohort-1\"\n",
            "group = \"medicare-cohort-1\"\ninterval = 3600\n",
        );
    env.write("config.toml", text.as_bytes());
    let mut daemon = env
        .rxsync()
        .args(["run", "--listen", "127.0.0.1:0"])
        .env("RXSYNC_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rxsync run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut state = Value::Null;
    while std::time::Instant::now() < deadline {
        let run = env.run(&[
            "export",
            "status",
            "--provider",
            "payer-bulk",
            "--format",
            "json",
        ]);
        if run.code == 0 {
            state = run.json()["state"].clone();
            if state == "completed" {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Not due again for an hour: one export only.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(state, "completed");
    assert_eq!(
        oracle.record()["kickoffs"]
            .as_array()
            .expect("kickoffs")
            .len(),
        1
    );
}

#[test]
fn the_bearer_never_goes_to_a_file_on_another_origin() {
    let (env, oracle, _private) = setup("ES384", &["--require-token", "--foreign-error-file"]);
    let run = env.run(&["export", "start", "--provider", "payer-bulk"]);
    run.fails(1);
    assert!(
        run.stdout.contains("FAILED") && run.stdout.contains("401"),
        "{}",
        run.stdout
    );
    let rec = oracle.record();
    assert_eq!(rec["file_auth"]["0.ndjson"], true, "{rec}");
    assert_eq!(rec["file_auth"]["error.ndjson"], false, "{rec}");
    // The export is not deleted while a file is missing.
    assert_eq!(rec["deletes"], 0);
}
