//! `rxsync demo`, the README's first command: from nothing to links of every
//! kind, two of them made by consent through the review app (one linked,
//! one held for identity review), one scheduled pass, the queue, the review
//! UI with its printed login.

use crate::review_server::field_value;
use crate::support::{Run, TestEnv, repo_path};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

/// A home for the demo: its folder is `DIR/demo`, and its database the
/// demo's own — `DIR/demo/rxsync.db` (the `[database] path` the demo's
/// config.toml names) or, on PostgreSQL, the home's fresh database, which
/// `demo` is given as `RXSYNC_DATABASE_URL`.
fn demo_env() -> (TestEnv, std::path::PathBuf) {
    let mut env = TestEnv::new();
    let dir = env.dir.path().join("demo");
    env.db = dir.join("rxsync.db");
    (env, dir)
}

/// `rxsync ARGS` as a person runs it after the demo (no `--db`: the
/// demo's config.toml names its database), with `RXSYNC_DATABASE_URL` on
/// PostgreSQL.
fn demo_rx(env: &TestEnv, args: &[&str]) -> Run {
    match &env.pg {
        Some(url) => env.run_bare(args, &[("RXSYNC_DATABASE_URL", url.as_str())]),
        None => env.run_bare(args, &[]),
    }
}

fn q(env: &TestEnv, sql: &str) -> i64 {
    env.query_i64(sql)
}

/// The consent-related audit actions about `patient`, in order.
fn consent_audit(env: &TestEnv, patient: &str) -> Vec<String> {
    env.query_strings(&format!(
        "SELECT action FROM audit WHERE patient_id = '{patient}'
         AND (action LIKE 'invitation.%' OR action LIKE 'consent.%'
              OR action LIKE 'identity.%' OR action IN ('link.add', 'import'))
         ORDER BY id"
    ))
    .into_iter()
    .flatten()
    .collect()
}

/// Where `action` is in `actions` (it must be there once).
fn once(actions: &[String], action: &str) -> usize {
    let at: Vec<usize> = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == action)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{action} once in {actions:?}");
    at[0]
}

/// The demo's consents, as the database and its output tell them: demo-6
/// linked through an invitation, the review app, the sandbox's consent, the
/// callback and the first pull; demo-7 held for identity review with
/// nothing imported.
fn assert_consents(db: &TestEnv, out: &str) {
    let link = |patient: &str| -> (i64, String) {
        let row =
            format!("FROM links WHERE provider = 'demo-fhir-consent' AND patient_id = '{patient}'");
        (
            db.query_i64(&format!("SELECT id {row}")),
            db.query_string(&format!("SELECT state {row}")),
        )
    };
    let (linked, state) = link("demo-6");
    assert_eq!(state, "active");
    let (held, state) = link("demo-7");
    assert_eq!(state, "held");

    // Both were made by invitations accepted at the review app, once each.
    for (patient, id, outcome) in [("demo-6", linked, "linked"), ("demo-7", held, "held")] {
        assert_eq!(
            q(
                db,
                &format!(
                    "SELECT COUNT(*) FROM invitations WHERE patient_id = '{patient}'
                     AND provider = 'demo-fhir-consent' AND opened_at IS NOT NULL
                     AND flow_id IS NOT NULL AND outcome = '{outcome}' AND link_id = {id}"
                )
            ),
            1,
            "{patient}'s invitation made link {id} ({outcome})"
        );
        let actions = consent_audit(db, patient);
        // Invitation made; authorization started and the invitation accepted
        // (one transaction); callback received, code exchanged — in this
        // order, each once.
        let steps = [
            "invitation.made",
            "consent.start",
            "invitation.accepted",
            "consent.callback",
            "consent.exchanged",
        ]
        .map(|a| once(&actions, a));
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "{actions:?}");
        let exchanged = steps[4];
        // Then the link, the identity read and compared, the invitation used.
        let verdict = if outcome == "linked" {
            "identity.match"
        } else {
            "identity.held"
        };
        for after in ["link.add", "consent.linked", verdict, "invitation.used"] {
            assert!(once(&actions, after) > exchanged, "{after}: {actions:?}");
        }
        assert!(
            once(&actions, "invitation.used") > once(&actions, verdict),
            "{actions:?}"
        );
        if outcome == "linked" {
            assert!(
                once(&actions, "import") > once(&actions, "consent.linked"),
                "the first pull after the link: {actions:?}"
            );
        } else {
            assert!(!actions.iter().any(|a| a == "import"), "{actions:?}");
        }
    }
    // The identity was read from the ID token and compared: what was read
    // and each comparison are on the audit row.
    let verdict = |action: &str, patient: &str| -> serde_json::Value {
        let detail = db.query_string(&format!(
            "SELECT detail FROM audit WHERE action = '{action}' AND patient_id = '{patient}'"
        ));
        serde_json::from_str(&detail).expect("json")
    };
    let compared = |v: &serde_json::Value| -> Vec<(String, bool)> {
        v["verdict"]["compared"]
            .as_array()
            .expect("compared")
            .iter()
            .map(|c| {
                (
                    c["what"].as_str().unwrap_or_default().to_string(),
                    c["equal"].as_bool().unwrap_or_default(),
                )
            })
            .collect()
    };
    let matched = verdict("identity.match", "demo-6");
    assert_eq!(
        matched["remote_identity"]["identifiers"]["id_token:mrn"], "MRN-demo-6",
        "{matched}"
    );
    assert_eq!(
        compared(&matched),
        [("mrn", true), ("family_name", true), ("birth_date", true)]
            .map(|(w, e)| (w.to_string(), e))
            .to_vec()
    );
    let differs = verdict("identity.held", "demo-7");
    assert_eq!(
        differs["remote_identity"]["identifiers"]["id_token:mrn"], "MRN-demo-7-spouse",
        "{differs}"
    );
    assert_eq!(
        compared(&differs),
        [("mrn", false), ("family_name", true), ("birth_date", false)]
            .map(|(w, e)| (w.to_string(), e))
            .to_vec()
    );

    // The first pull ran from the callback (trigger pull, by the patient's
    // browser), imported, and is the link's only sync.
    assert_eq!(
        q(
            db,
            &format!(
                "SELECT COUNT(*) FROM syncs WHERE link_id = {linked} AND trigger = 'pull' AND outcome = 'imported'"
            )
        ),
        1
    );
    assert_eq!(
        q(
            db,
            "SELECT COUNT(*) FROM regimens WHERE patient_id = 'demo-6' AND source = 'demo-fhir-consent'"
        ),
        1
    );
    // The held link: an open identity_mismatch naming both identities,
    // no sync, no regimen, no document.
    let mismatch = db.query_string(
        "SELECT detail FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'
         AND patient_id = 'demo-7' AND source = 'demo-fhir-consent'",
    );
    assert!(
        mismatch.contains("MRN-demo-7-spouse") && mismatch.contains("Hedy Testcase"),
        "{mismatch}"
    );
    assert_eq!(
        q(
            db,
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'identity_mismatch'"
        ),
        1
    );
    assert_eq!(
        q(
            db,
            "SELECT COUNT(*) FROM regimens WHERE patient_id = 'demo-7'"
        ),
        0
    );
    assert_eq!(
        q(
            db,
            &format!("SELECT COUNT(*) FROM syncs WHERE link_id = {held}")
        ),
        0
    );

    // The output says which link consent made, how, and what the
    // patient's page showed; and the one held, with its decisions.
    let first_item = db.query_string(
        "SELECT i.name FROM items i JOIN regimens r ON r.id = i.regimen_id
         WHERE r.patient_id = 'demo-6' ORDER BY i.position LIMIT 1",
    );
    for said in [
        "Linked by consent at demo-fhir-consent, as patients do (invitation → sandbox consent → callback → first pull):".to_string(),
        format!("link {linked} demo-6: active — the invitation (made as `rxsync link invite` does) opened in a browser: review app /invite/…"),
        "sandbox /oauth2/authorize 302 → review app /oauth/callback 200;".to_string(),
        "sandbox /oauth2/authorize 302 → review app /oauth/callback 202;".to_string(),
        "| Your account at demo-fhir-consent is linked".to_string(),
        format!("| {first_item} · "),
        "| Thank you. Your care team needs to check this link before your medicines can be shown".to_string(),
        "1 held for identity review".to_string(),
        format!("link {held} demo-7 → demo-fhir-consent, exception "),
        format!("link confirm {held} --by NAME --note TEXT"),
        format!("link reject {held} --by NAME --note TEXT"),
    ] {
        assert!(out.contains(&said), "{said:?} in:\n{out}");
    }
    for secret in ["code=", "state=", "login_hint"] {
        assert!(!out.contains(secret), "{secret} in:\n{out}");
    }
}

#[test]
fn demo_links_every_kind_syncs_once_and_carries_on_from_where_it_stopped() {
    let (env, dir) = demo_env();
    let d = dir.display().to_string();
    let first = demo_rx(&env, &["demo", "--dir", &d, "--once"]);
    let out = first.ok().to_string();
    // The SQLite files hold health data: owner only (the WAL as a reader
    // opens it: a connection is held while they are looked at).
    let reading = env.pg.is_none().then(|| {
        let conn = rusqlite::Connection::open(dir.join("rxsync.db")).expect("the demo database");
        conn.query_row("SELECT COUNT(*) FROM links", [], |r| r.get::<_, i64>(0))
            .expect("read");
        conn
    });
    #[cfg(unix)]
    for file in ["rxsync.db", "rxsync.db-wal"] {
        use std::os::unix::fs::PermissionsExt;
        if env.pg.is_some() {
            break; // the health data is in PostgreSQL
        }
        let mode = std::fs::metadata(dir.join(file))
            .expect(file)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} holds health data: owner only");
    }
    drop(reading);
    assert!(out.contains("One scheduled pass"), "{out}");
    // The consents' links had their first pull at the callback (or are
    // held): the pass syncs the six links `link add` made.
    assert!(
        out.contains("pass: 6 sync(s): 5 imported, 1 needs relink"),
        "{out}"
    );
    let db = &env;
    assert_eq!(q(db, "SELECT COUNT(*) FROM links"), 8);
    assert_eq!(
        q(db, "SELECT COUNT(*) FROM links WHERE state = 'active'"),
        6
    );
    assert_eq!(q(db, "SELECT COUNT(*) FROM links WHERE state = 'held'"), 1);
    assert_consents(db, &out);
    assert_eq!(
        q(
            db,
            "SELECT COUNT(*) FROM links WHERE state = 'needs_relink' AND provider = 'demo-fhir-revoked'"
        ),
        1
    );
    assert_eq!(
        q(db, "SELECT COUNT(*) FROM regimens"),
        6,
        "one per active link"
    );
    assert!(
        q(db, "SELECT COUNT(*) FROM link_moves") >= 1,
        "the 301 is remembered"
    );
    assert!(
        q(
            db,
            "SELECT COUNT(*) FROM audit WHERE action = 'link.refresh'"
        ) >= 1,
        "a refresh happened"
    );
    for kind in [
        "unmapped_ndc",
        "invalid_ndc",
        "non_ndc_code",
        "duplicate",
        "link_broken",
        "identity_mismatch",
    ] {
        assert!(
            q(
                db,
                &format!(
                    "SELECT COUNT(*) FROM exceptions WHERE state = 'open' AND kind = '{kind}'"
                )
            ) >= 1,
            "the queue shows {kind}"
        );
    }
    for scheme in ["oauth1", "oauth2"] {
        assert!(
            q(
                db,
                &format!("SELECT COUNT(*) FROM links WHERE scheme = '{scheme}'")
            ) >= 2
        );
    }
    let config = std::fs::read_to_string(dir.join("config.toml")).expect("config");
    assert!(
        !config.contains("_env") && config.contains("consumer_secret_file"),
        "secrets in files, none in the environment: {config}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in std::fs::read_dir(dir.join("secrets")).expect("secrets") {
            let file = file.expect("entry").path();
            let mode = std::fs::metadata(&file)
                .expect("secret")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        let mode = std::fs::metadata(dir.join("rxsync.db.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Again on the same folder: nothing is due, nothing is repeated.
    let again = demo_rx(&env, &["demo", "--dir", &d, "--once"]);
    let out = again.ok().to_string();
    assert!(out.contains("pass: 0 sync(s)"), "{out}");
    assert!(
        out.contains("demo-6: active — made by consent in an earlier run of the demo")
            && out.contains("1 held for identity review"),
        "{out}"
    );
    assert_eq!(q(db, "SELECT COUNT(*) FROM regimens"), 6);
    assert_eq!(q(db, "SELECT COUNT(*) FROM links"), 8);
    assert_eq!(
        q(db, "SELECT COUNT(*) FROM invitations"),
        2,
        "no new consent"
    );

    // Without the demo: its sandbox on its port with its data, and `run`.
    let port = std::fs::read_to_string(dir.join("sandbox/port")).expect("port");
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_rxsync"))
        .args([
            "sandbox",
            "--listen",
            &format!("127.0.0.1:{}", port.trim()),
            "--data",
        ])
        .arg(dir.join("sandbox"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sandbox");
    let mut line = String::new();
    BufReader::new(sandbox.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("sandbox line");
    env.execute("UPDATE links SET next_due_at = NULL");
    // Nothing in the environment: the secrets are the files config.toml names.
    let config = dir.join("config.toml").display().to_string();
    let run = demo_rx(
        &env,
        &["--config", &config, "run", "--once", "--format", "json"],
    );
    let summary = run.json();
    assert_eq!(
        summary["outcomes"]["unchanged"], 6,
        "the tokens the sandbox kept still work, the consent's too; the held link is not pulled: {summary}"
    );
    assert_eq!(
        q(
            db,
            "SELECT COUNT(*) FROM regimens WHERE patient_id = 'demo-7'"
        ),
        0
    );

    // A secret file gone: named with its provider, key and path, once.
    let gone = dir.join("secrets/demo-hmac-query.secret");
    std::fs::remove_file(&gone).expect("remove a secret");
    env.execute("UPDATE links SET next_due_at = NULL");
    let run = demo_rx(&env, &["--config", &config, "run", "--once"]);
    let err = run.fails(1);
    let _ = sandbox.kill();
    let _ = sandbox.wait();
    let named = format!(
        "warning: provider demo-ccr-hmac-query: auth.consumer_secret_file = {}",
        gone.display()
    );
    assert_eq!(err.matches(&named).count(), 1, "once: {err}");
    assert_eq!(
        err.matches("auth.consumer_secret_file").count(),
        1,
        "no second copy as a log event: {err}"
    );
    // A pull for people says why once (stdout), the error names the link.
    let pull = demo_rx(
        &env,
        &[
            "--config",
            &config,
            "import",
            "--patient",
            "demo-3",
            "--provider",
            "demo-ccr-hmac-query",
        ],
    );
    let err = pull.fails(1);
    let both = format!("{}{err}", pull.stdout);
    assert_eq!(both.matches(&named[9..]).count(), 1, "once: {both}");
    assert!(
        err.contains("1 of 1 pull(s) failed (why: above)") && err.contains("demo-ccr-hmac-query"),
        "{err}"
    );
}

/// With `RXSYNC_DATABASE_URL` set, the demo runs on that PostgreSQL
/// database — the URL wins over the `[database] path` its config.toml
/// writes — and says so (the URL without its password); no SQLite file is
/// made, and the follow-ups say the variable must stay set. Runs when the
/// tests run on PostgreSQL (`RXSYNC_TEST_ENGINE=postgres`); the test above
/// runs the whole demo on either engine.
#[test]
fn with_rxsync_database_url_the_demo_runs_on_postgresql_and_says_so() {
    if !crate::support::on_postgres() {
        eprintln!("the demo on PostgreSQL: runs with RXSYNC_TEST_ENGINE=postgres");
        return;
    }
    let (env, dir) = demo_env();
    let url = url::Url::parse(env.pg.as_deref().expect("a PostgreSQL home")).expect("URL");
    let password = url
        .password()
        .expect("the test cluster's password")
        .to_string();
    let d = dir.display().to_string();
    let run = demo_rx(&env, &["demo", "--dir", &d, "--once"]);
    let out = run.ok();
    let mut shown = url.clone();
    shown.set_password(None).expect("a URL with a password");
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!(
            "(database: PostgreSQL {shown}, from RXSYNC_DATABASE_URL,"
        )),
        "{first}"
    );
    assert!(
        out.contains("Next, from a shell with RXSYNC_DATABASE_URL set as now"),
        "{out}"
    );
    for text in [out, run.stderr.as_str()] {
        assert!(
            !text.contains(&password),
            "the password was printed: {text}"
        );
    }
    let config = std::fs::read_to_string(dir.join("config.toml")).expect("config");
    assert!(config.contains("path = \"rxsync.db\""), "{config}");
    assert!(
        !dir.join("rxsync.db").exists(),
        "the URL won: no SQLite database in {d}"
    );
    assert_eq!(q(&env, "SELECT COUNT(*) FROM links"), 8);
    assert_eq!(q(&env, "SELECT COUNT(*) FROM regimens"), 6);
    assert_eq!(
        q(&env, "SELECT COUNT(*) FROM links WHERE state = 'held'"),
        1
    );
}

/// Runs one printed command line as a person would paste it: `sh -c`, in
/// `cwd`, with nothing in the environment but a PATH that finds `rxsync`.
fn shell(line: &str, cwd: &std::path::Path) -> Command {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_rxsync"))
        .parent()
        .expect("bin dir")
        .display()
        .to_string();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(line)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", format!("{bin}:/usr/bin:/bin"))
        .env("HOME", cwd);
    cmd
}

/// The command lines of `text` (a demo's output, a README block): every
/// line that starts, after indentation, with `rxsync ` or the path of the
/// binary (which the demo prints when `rxsync` on PATH is not it).
fn command_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            let program = l.split_whitespace().next().unwrap_or("").trim_matches('\'');
            program == "rxsync" || program.ends_with("/rxsync")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_follow_ups_the_demo_and_the_readme_print_work_as_printed_in_a_clean_shell() {
    let env = TestEnv::new();
    // As the README runs it: no --dir, so ./rxsync-demo.
    let first = env.run_bare(&["demo", "--once"], &[]);
    let out = first.ok().to_string();
    let next = out
        .split("Next, from any shell")
        .nth(1)
        .unwrap_or_else(|| panic!("no follow-ups in:\n{out}"));
    let lines = command_lines(next);
    assert!(
        lines.iter().all(|l| l.starts_with('/')),
        "rxsync on PATH is not this build: the demo prints its path: {next}"
    );
    assert!(
        lines.iter().any(|l| l.contains("queue resolve")),
        "the mapping example is printed with its id: {next}"
    );
    assert!(
        next.contains("the sample dictionary holds only 118 products")
            && next.contains("Ibuprofen"),
        "the demo says why its Ibuprofen cannot be mapped: {next}"
    );
    let elsewhere = tempfile::tempdir().expect("another folder");
    let mut sandbox = None;
    for line in &lines {
        if line.contains("--fda DIR") {
            continue; // needs the FDA download: its DIR is the reader's.
        }
        if line.contains(" sandbox --listen ") {
            let mut child = shell(&format!("exec {line}"), elsewhere.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("sandbox");
            let mut first = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut first)
                .expect("sandbox line");
            assert!(first.starts_with("sandbox listening on"), "{line}: {first}");
            sandbox = Some(child);
            continue;
        }
        let run = Run::from(shell(line, elsewhere.path()).output().expect("run"));
        let stdout = run.ok();
        if line.contains("import --patient") {
            assert!(stdout.contains("unchanged"), "{line}: {stdout}");
        }
        if line.contains("queue resolve") {
            assert!(stdout.contains("resolved"), "{line}: {stdout}");
        }
    }
    let mut sandbox = sandbox.expect("the demo says how to start its sandbox");
    let _ = sandbox.kill();
    let _ = sandbox.wait();

    // The README's own examples, from the folder the demo ran in.
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README");
    let block = readme
        .split("Then, for example:")
        .nth(1)
        .and_then(|rest| rest.split("```sh").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README's follow-up block");
    let lines = command_lines(block);
    assert!(lines.len() >= 3, "{block}");
    for line in &lines {
        let run = Run::from(shell(line, env.dir.path()).output().expect("run"));
        run.ok();
    }
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_a_file() {
    let env = TestEnv::new();
    let dir = env.dir.path().join("demo");
    let log = env.dir.path().join("stderr.log");
    let status = Command::new(env!("CARGO_BIN_EXE_rxsync"))
        .current_dir(env.dir.path())
        .args(["demo", "--once", "--dir"])
        .arg(&dir)
        .env_remove("RXSYNC_CONFIG")
        .env_remove("RXSYNC_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .status()
        .expect("demo");
    assert!(status.success());
    let text = std::fs::read(&log).expect("log");
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("WARN") && text.contains("sync failed"),
        "the revoked link logs a warning: {text}"
    );
    assert!(!text.contains('\u{1b}'), "no ESC byte: {text:?}");
}

#[test]
fn demo_serves_the_review_ui_with_the_login_it_prints() {
    rxsync::fetch::http::install_crypto_provider();
    let env = TestEnv::new();
    let dir = env.dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rxsync"))
        .current_dir(env.dir.path())
        .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&dir)
        .env_remove("RXSYNC_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut login_line = String::new();
    let mut seen = String::new();
    for _ in 0..2000 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if line.starts_with("Review the queue in the browser:") {
            login_line = line;
            break;
        }
    }
    assert!(!login_line.is_empty(), "no login line in:\n{seen}");
    let url = login_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("URL")
        .to_string();
    let password = login_line
        .trim()
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .expect("password")
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let queue = rt.block_on(async {
        let page = http
            .get(format!("{url}/login"))
            .send()
            .await
            .expect("login page");
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("rxsync_login="))
            .and_then(|c| c.split(';').next())
            .expect("login cookie")
            .to_string();
        let body = page.text().await.expect("body");
        let nonce = field_value(&body, "login_csrf").expect("login_csrf");
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("name", "demo"),
                ("password", password.as_str()),
                ("login_csrf", &nonce),
            ])
            .finish();
        let answer = http
            .post(format!("{url}/login"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("login");
        assert_eq!(answer.status().as_u16(), 303, "the printed login works");
        let session = answer
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("rxsync_session="))
            .and_then(|c| c.split(';').next())
            .expect("session")
            .to_string();
        let queue = http
            .get(format!("{url}/queue"))
            .header("cookie", session.as_str())
            .send()
            .await
            .expect("queue");
        assert_eq!(queue.status().as_u16(), 200);
        // The served review app links in the browser: its public URL is
        // where it listens, and the consent provider is offered.
        let patient = http
            .get(format!("{url}/patients/demo-6"))
            .header("cookie", session.as_str())
            .send()
            .await
            .expect("patient page")
            .text()
            .await
            .expect("patient page");
        assert!(
            patient.contains("data-provider=\"demo-fhir-consent\""),
            "Link an account at demo-fhir-consent: {patient}"
        );
        let metrics = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(metrics.status().as_u16(), 200);
        queue.text().await.expect("queue page")
    });
    assert!(
        queue.contains("Losartan") && queue.contains("demo-ccr-1"),
        "the demo queue: {queue}"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(0),
        "Ctrl-C ends the demo cleanly: {rest}"
    );
    assert!(
        rest.contains("Ctrl-C: the demo stopped after serving for") && rest.contains("carries on."),
        "the last words say what happened: {rest}"
    );
    assert!(
        !rest.contains("pass: 0 sync(s)"),
        "not a bare pass summary: {rest}"
    );
}

#[test]
fn no_source_file_writes_the_process_environment() {
    // The demo once handed its secrets over with std::env::set_var on a
    // running multi-threaded runtime; the invariant is kept by looking.
    fn scan(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                scan(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for needle in ["set_var(", "remove_var("] {
                    if text.contains(needle) {
                        found.push(format!("{}: {needle}", path.display()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    scan(&repo_path("src"), &mut found);
    assert!(found.is_empty(), "{found:?}");
}
