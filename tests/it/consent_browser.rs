//! Linking in the browser, end to end over loopback: the real `rxsync
//! serve` with `[review] public_url`, an invitation from the real `link
//! invite`, the sandbox's non-interactive consent, and the review app's
//! `/oauth/callback` — which stores the link, runs the first pull and shows
//! the patient the list. The test plays the browser, one hop at a time:
//! the invitation's page (a GET spends nothing), its *Continue* (a signed
//! form whose POST spends it and starts the consent), the provider, the
//! callback.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::consent::{consent_provider, free_port, get};
use crate::pull::harness::{Home, SECRETS};
use crate::support::Sandbox;

/// A running `rxsync serve` whose public URL is its own loopback address.
pub(crate) struct Served {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A home with the consent provider `ehr` at `sandbox`, patients P1 and P2,
/// and `[review]` listening on a free port that is also its public URL.
pub(crate) fn browser_home(sandbox: &Sandbox) -> (Home, u16) {
    let port = free_port();
    let provider = consent_provider(sandbox, "ehr", "demo-client", free_port(), "");
    let config = format!(
        "[review]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{provider}"
    );
    let home = Home::new(&config);
    let added = home.rx(&["patient", "add", "--id", "P2"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    (home, port)
}

pub(crate) fn serve(home: &Home) -> Served {
    start(home, "serve")
}

/// `rxsync serve`, or `rxsync run` (the daemon, whose review app links
/// through the daemon's puller and writer).
fn start(home: &Home, command: &str) -> Served {
    let mut cmd = home.env.rxsync();
    cmd.arg("--config")
        .arg(&home.config)
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start rxsync serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the URL line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    Served {
        child,
        base: url.trim_end_matches('/').to_string(),
    }
}

/// `link invite` for a patient at `ehr`: the invitation URL.
pub(crate) fn invite(home: &Home, patient: &str, expires: &str) -> String {
    let run = home.rx(&[
        "link",
        "invite",
        "--patient",
        patient,
        "--provider",
        "ehr",
        "--expires",
        expires,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()["url"].as_str().expect("url").to_string()
}

pub(crate) fn count(home: &Home, sql: &str) -> i64 {
    home.env.query_i64(sql)
}

/// The test's own values go into the SQL as literals (`quote`): the
/// helpers that read what is stored run the same text on both engines.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub(crate) fn names(home: &Home, patient: &str) -> Vec<String> {
    home.env
        .query_strings(&format!(
            "SELECT i.name FROM items i JOIN regimens r ON r.id = i.regimen_id
             WHERE r.patient_id = {} AND i.name IS NOT NULL",
            quote(patient)
        ))
        .into_iter()
        .flatten()
        .collect()
}

pub(crate) fn audit(home: &Home, like: &str) -> Vec<String> {
    home.env
        .query_strings(&format!(
            "SELECT action FROM audit WHERE action LIKE {} ORDER BY id",
            quote(like)
        ))
        .into_iter()
        .flatten()
        .collect()
}

fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One HTTP/1.1 exchange on loopback, as a browser would make it:
/// status, headers (names in lower case) and body.
fn exchange(
    method: &str,
    url: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let u = url::Url::parse(url).expect("url");
    let authority = format!(
        "{}:{}",
        u.host_str().expect("host"),
        u.port().expect("port")
    );
    let mut stream = std::net::TcpStream::connect(&authority).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n",
        u.path()
    );
    if let Some(c) = cookie {
        head.push_str(&format!("Cookie: {c}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    write!(stream, "{head}\r\n{body}").expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An invitation's page as the browser got it.
pub(crate) struct Invitation {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) csp: String,
    /// `rxsync_invite=NONCE`, as the browser sends it back.
    pub(crate) cookie: Option<String>,
    /// The *Continue* form's hidden field.
    pub(crate) field: Option<String>,
}

/// The browser opens the invitation's URL (a GET: spends nothing).
pub(crate) fn view(url: &str) -> Invitation {
    let (status, headers, body) = exchange("GET", url, None, None);
    let cookie = header(&headers, "set-cookie")
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    let field = body
        .split_once("name=\"invite_csrf\" value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_string());
    Invitation {
        status,
        csp: header(&headers, "content-security-policy")
            .unwrap_or_default()
            .to_string(),
        body,
        cookie,
        field,
    }
}

/// The browser presses *Continue* on the invitation's page.
pub(crate) fn press_continue(url: &str, page: &Invitation) -> (u16, Option<String>, String) {
    let form = format!("invite_csrf={}", page.field.as_deref().unwrap_or_default());
    let (status, headers, body) = exchange("POST", url, page.cookie.as_deref(), Some(&form));
    (
        status,
        header(&headers, "location").map(str::to_string),
        body,
    )
}

/// The browser opens the invitation, the patient presses *Continue*, and
/// is sent to the sandbox: its authorization URL.
fn open(url: &str, public: &str) -> String {
    let page = view(url);
    assert_eq!(page.status, 200, "the invitation's page: {}", page.body);
    assert!(page.body.contains("Continue to ehr"), "{}", page.body);
    let (status, location, body) = press_continue(url, &page);
    assert_eq!(status, 303, "Continue sends the browser on: {body}");
    let location = location.expect("a Location");
    let auth = url::Url::parse(&location).expect("an authorization URL");
    let q: std::collections::HashMap<String, String> = auth.query_pairs().into_owned().collect();
    assert_eq!(q["redirect_uri"], format!("{public}/oauth/callback"));
    assert_eq!(q["code_challenge_method"], "S256");
    location
}

/// The sandbox consents (or denies) and names the callback.
pub(crate) fn consent_at_sandbox(auth: &str) -> String {
    let (status, location, body) = get(auth);
    assert_eq!(status, 302, "the sandbox's consent redirects: {body}");
    location.expect("a Location")
}

#[test]
fn an_invitation_links_the_account_imports_the_list_and_works_once() {
    let sandbox = Sandbox::start();
    let (home, _) = browser_home(&sandbox);
    let served = serve(&home);
    let url = invite(&home, "P1", "72h");
    assert!(
        url.starts_with(&format!("{}/invite/", served.base)),
        "{url}"
    );
    let token = url.rsplit('/').next().expect("token").to_string();
    assert!(token.len() >= 22, "at least 128 bits: {token}");

    let callback = consent_at_sandbox(&open(&url, &served.base));
    assert!(
        callback.starts_with(&format!("{}/oauth/callback?", served.base)),
        "{callback}"
    );
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your account at ehr is linked"), "{page}");
    let imported = names(&home, "P1");
    assert!(!imported.is_empty(), "the first pull imported a list");
    for name in &imported {
        assert!(page.contains(&escaped(name)), "{name} on the page: {page}");
    }
    for jargon in [
        "exception",
        "needs_review",
        "invalid_ndc",
        "state=",
        "code=",
    ] {
        assert!(
            !page.contains(jargon),
            "{jargon} on the patient's page: {page}"
        );
    }
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM links WHERE patient_id = 'P1' AND state = 'active'"
        ),
        1
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM invitations WHERE outcome = 'linked' AND link_id IS NOT NULL"
        ),
        1
    );

    // The invitation works once: a second opening is refused and changes nothing.
    let flows = count(&home, "SELECT COUNT(*) FROM consent_flows");
    let (status, location, page) = get(&url);
    assert_eq!(status, 410, "{page}");
    assert!(location.is_none());
    assert!(page.contains("already used"), "{page}");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM consent_flows"), flows);

    // The provider's answer cannot be replayed either.
    let (status, _, page) = get(&callback);
    assert_eq!(status, 410, "{page}");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM links"), 1);

    assert_eq!(
        audit(&home, "invitation.%"),
        [
            "invitation.made",
            "invitation.accepted",
            "invitation.used",
            "invitation.refused"
        ]
    );
    // The token is nowhere in the database, only its hash.
    drop(served);
    let bytes = home.stored_bytes();
    assert!(bytes.len() > 4096);
    assert!(
        !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
        "the invitation token is stored in plain"
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM invitations WHERE length(token_sha256) = 64"
        ),
        1
    );
}

/// A mail scanner or a link preview fetches the invitation's URL before
/// the patient does: the page spends nothing, however often it is opened.
/// Only its *Continue* — a form signed for this invitation and this
/// browser — spends it, and a post without that signature (another site's
/// page, a stale page) starts nothing.
#[test]
fn opening_an_invitation_spends_nothing_until_the_patient_continues() {
    let sandbox = Sandbox::start();
    let (home, _) = browser_home(&sandbox);
    let served = serve(&home);
    let url = invite(&home, "P1", "1h");
    assert!(url.starts_with(&served.base), "{url}");
    let unspent = "SELECT COUNT(*) FROM invitations WHERE opened_at IS NULL AND flow_id IS NULL";
    for _ in 0..2 {
        let page = view(&url);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("Link your account at ehr"),
            "{}",
            page.body
        );
        assert!(page.body.contains("What will be shared"), "{}", page.body);
        assert!(page.body.contains("Continue to ehr"), "{}", page.body);
        // The page's form may send the browser on to the provider, and there only.
        assert!(
            page.csp
                .contains(&format!("form-action 'self' {}", sandbox.base)),
            "{}",
            page.csp
        );
        assert!(page.cookie.is_some() && page.field.is_some());
        assert_eq!(count(&home, unspent), 1, "a GET spent the invitation");
        assert_eq!(count(&home, "SELECT COUNT(*) FROM consent_flows"), 0);
    }
    let page = view(&url);
    // Another site posting the form: no cookie, or no signed field.
    let forged = [
        Invitation {
            cookie: None,
            ..view(&url)
        },
        Invitation {
            field: Some("1.00".into()),
            ..view(&url)
        },
    ];
    for f in &forged {
        let (status, location, body) = press_continue(&url, f);
        assert_eq!(status, 403, "{body}");
        assert!(location.is_none());
        assert!(body.contains("open the invitation link"), "{body}");
    }
    // A field signed for another invitation does not pass for this one.
    let other = invite(&home, "P2", "1h");
    let (status, _, _) = press_continue(&other, &page);
    assert_eq!(status, 403);
    assert_eq!(count(&home, unspent), 2, "nothing spent by a refused post");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM consent_flows"), 0);

    // The patient continues: spent, its flow started and remembered, together.
    let (status, location, body) = press_continue(&url, &page);
    assert_eq!(status, 303, "{body}");
    assert!(
        location
            .as_deref()
            .is_some_and(|l| l.starts_with(&format!("{}/oauth2/authorize?", sandbox.base))),
        "{location:?}"
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM invitations i JOIN consent_flows f ON f.id = i.flow_id
             WHERE i.patient_id = 'P1' AND i.opened_at IS NOT NULL AND f.patient_id = 'P1'"
        ),
        1
    );
    // Pressing it again (a double click, a second tab) starts nothing more.
    let (status, _, body) = press_continue(&url, &page);
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("already used"), "{body}");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM consent_flows"), 1);
    let (status, _, _) = get(&url);
    assert_eq!(status, 410);
    // The consent goes on as before.
    let callback = consent_at_sandbox(location.as_deref().expect("location"));
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your account at ehr is linked"), "{page}");
    assert_eq!(
        audit(&home, "invitation.%"),
        [
            "invitation.made",
            "invitation.made",
            "invitation.accepted",
            "invitation.refused",
            "invitation.refused",
            "invitation.used"
        ]
    );
}

#[test]
fn a_denial_an_expired_invitation_and_a_forged_callback_link_nothing() {
    let sandbox = Sandbox::start();
    let (home, _) = browser_home(&sandbox);
    let served = serve(&home);

    // The patient says no at the provider.
    let auth = open(&invite(&home, "P2", "1h"), &served.base);
    let callback = consent_at_sandbox(&format!("{auth}&login_hint=deny"));
    let (status, _, page) = get(&callback);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("You did not allow access"), "{page}");
    assert!(!page.contains("access_denied"), "{page}");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM links"), 0);
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM invitations WHERE outcome = 'denied'"
        ),
        1
    );

    // An expired invitation is refused and starts nothing.
    let url = invite(&home, "P2", "1s");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let flows = count(&home, "SELECT COUNT(*) FROM consent_flows");
    let (status, location, page) = get(&url);
    assert_eq!(status, 410, "{page}");
    assert!(location.is_none());
    assert!(page.contains("expired"), "{page}");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM consent_flows"), flows);

    // An unknown invitation and a callback with a state of no flow of ours.
    let (status, _, _) = get(&format!(
        "{}/invite/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        served.base
    ));
    assert_eq!(status, 404);
    let (status, _, page) = get(&format!(
        "{}/oauth/callback?code=stolen-code&state=forged-state",
        served.base
    ));
    assert_eq!(status, 400, "{page}");
    assert!(
        !page.contains("forged-state") && !page.contains("stolen-code"),
        "{page}"
    );
    assert_eq!(count(&home, "SELECT COUNT(*) FROM links"), 0);
    assert!(audit(&home, "consent.callback").len() >= 2);
    assert!(audit(&home, "invitation.refused").len() == 2);
}

#[test]
fn link_invite_refuses_bad_input_and_stores_nothing() {
    let sandbox = Sandbox::start();
    let (home, _) = browser_home(&sandbox);
    for (args, says) in [
        (
            vec!["--patient", "P1", "--provider", "ehr", "--expires", "3w"],
            "--expires",
        ),
        (
            vec!["--patient", "P1", "--provider", "nope"],
            "--provider nope",
        ),
        (
            vec!["--patient", "NOBODY", "--provider", "ehr"],
            "does not exist",
        ),
    ] {
        let mut all = vec!["link", "invite"];
        all.extend(args);
        let run = home.rx(&all);
        assert_ne!(run.code, 0, "{all:?}");
        assert!(run.stderr.contains(says), "{all:?}: {}", run.stderr);
    }
    assert_eq!(count(&home, "SELECT COUNT(*) FROM invitations"), 0);
}

#[test]
fn the_daemon_s_review_app_links_by_invitation_too() {
    let sandbox = Sandbox::start();
    let (home, _) = browser_home(&sandbox);
    let served = start(&home, "run");
    let url = invite(&home, "P1", "1h");
    let callback = consent_at_sandbox(&open(&url, &served.base));
    let (status, _, page) = get(&callback);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your account at ehr is linked"), "{page}");
    assert!(!names(&home, "P1").is_empty());
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM links WHERE state = 'active'"),
        1
    );
}

#[test]
fn a_flow_started_for_the_terminal_is_not_finished_at_the_review_app() {
    let sandbox = Sandbox::start();
    let (home, _) = browser_home(&sandbox);
    let served = serve(&home);
    // `link start` listens on the provider's loopback redirect URI; its
    // callback, sent to the review app instead, is refused and the flow
    // stays untouched for its own listener.
    let started = crate::consent::spawn_link_start(
        &home.env,
        &home.config,
        "P1",
        "ehr",
        &["--timeout", "3"],
        SECRETS,
    );
    let loopback = consent_at_sandbox(&started.url);
    let query = loopback.split_once('?').expect("a query").1;
    let (status, _, page) = get(&format!("{}/oauth/callback?{query}", served.base));
    assert_eq!(status, 400, "{page}");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM consent_flows WHERE used_at IS NOT NULL"
        ),
        0
    );
    let run = started.finish();
    assert_eq!(run.code, 1, "link start times out: {}", run.stderr);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM links"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_patient_page_links_and_invites_with_csrf_protected_forms() {
    use crate::review_server::{CLINICIAN, Review, add_user};
    let sandbox = Sandbox::start();
    let (home, _) = browser_home(&sandbox);
    let Home { env, config } = home;
    add_user(&env, CLINICIAN.0, CLINICIAN.1, "clinician");
    let r = Review::serve_with(env, &["--config", &config]);
    let cookie = r.login(CLINICIAN).await;
    let csrf = r.csrf(&cookie).await;
    let page = r.get("/patients/P2", Some(&cookie)).await;
    assert!(page.body.contains("Link an account"), "{}", page.body);
    assert!(page.body.contains("Make an invitation"));

    // Without the CSRF token: refused, nothing started or made.
    for path in ["/patients/P2/link", "/patients/P2/invite"] {
        let a = r
            .post_form(path, Some(&cookie), &[("provider", "ehr")])
            .await;
        assert_eq!(a.status, 403, "{path}: {}", a.body);
    }
    let rows = |sql: &str| -> i64 { r.env.query_i64(sql) };
    assert_eq!(rows("SELECT COUNT(*) FROM consent_flows"), 0);
    assert_eq!(rows("SELECT COUNT(*) FROM invitations"), 0);

    // With it: a consent toward the provider, and an invitation shown once.
    let a = r
        .post_form(
            "/patients/P2/link",
            Some(&cookie),
            &[("provider", "ehr"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body
            .contains(&format!("href=\"{}/oauth2/authorize?", sandbox.base)),
        "{}",
        a.body
    );
    assert_eq!(
        rows("SELECT COUNT(*) FROM consent_flows WHERE patient_id = 'P2'"),
        1
    );
    let a = r
        .post_form(
            "/patients/P2/invite",
            Some(&cookie),
            &[("provider", "ehr"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("http://127.0.0.1:"), "{}", a.body);
    assert!(a.body.contains("/invite/"), "{}", a.body);
    assert_eq!(
        rows("SELECT COUNT(*) FROM invitations WHERE patient_id = 'P2'"),
        1
    );
    // An unknown provider is refused.
    let a = r
        .post_form(
            "/patients/P2/invite",
            Some(&cookie),
            &[("provider", "nope"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(rows("SELECT COUNT(*) FROM invitations"), 1);
}

/// The wrong-patient guard in the browser: P2 already has a list from a
/// matched link; a second consent by someone else (the sandbox's identity
/// changed) holds the link, and the callback page shows nothing of P2's.
#[test]
fn a_held_consent_shows_the_patient_nothing_of_the_existing_list() {
    use crate::pull::harness::{REMOTE, fhir_at};
    let sandbox = Sandbox::start();
    let port = free_port();
    let base = &sandbox.base;
    let config = format!(
        "[review]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{}authorize_url = \"{base}/oauth2/authorize\"\nredirect_uri = \"http://127.0.0.1:{}/callback\"\nscopes = [\"openid\", \"patient/MedicationRequest.rs\", \"offline_access\"]\nauthorize_params = {{ aud = \"{base}/fhir\" }}\n[providers.identity]\nremote = \"id_token:mrn\"\njwks_url = \"{base}/oauth2/jwks\"\nissuer = \"{base}\"\nalso = [\"family_name\", \"birth_date\"]\n",
        fhir_at(&sandbox, "ehr", "demo-client", "header"),
        free_port(),
    );
    let home = Home::new(&config);
    home.add_p2(true);
    let served = serve(&home);

    // First, P2's own consent: matched, linked, the list imported.
    let auth = open(&invite(&home, "P2", "1h"), &served.base);
    let (status, _, page) = get(&consent_at_sandbox(&format!("{auth}&login_hint={REMOTE}")));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("is linked"), "{page}");
    let existing = names(&home, "P2");
    assert!(!existing.is_empty(), "the matched link imported P2's list");

    // Then someone else signs in at the provider for P2's invitation.
    let (status, answer) = sandbox.admin(
        "/admin/identities",
        Some(&serde_json::json!({"patient": REMOTE, "family_name": "Roe"})),
    );
    assert_eq!(status, 200, "{answer}");
    let regimens = count(
        &home,
        "SELECT COUNT(*) FROM regimens WHERE patient_id = 'P2'",
    );
    let auth = open(&invite(&home, "P2", "1h"), &served.base);
    let (status, _, page) = get(&consent_at_sandbox(&format!("{auth}&login_hint={REMOTE}")));
    assert_eq!(status, 202, "{page}");
    assert!(page.contains("data-outcome=\"held\""), "{page}");
    assert!(
        page.contains("Your care team needs to check this link"),
        "{page}"
    );
    assert!(!page.to_lowercase().contains("linked"), "{page}");
    for name in &existing {
        assert!(
            !page.contains(&escaped(name)) && !page.contains(name.as_str()),
            "P2's {name} shown to whoever consented: {page}"
        );
    }
    assert!(!page.contains("medications"), "{page}");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM links WHERE patient_id = 'P2' AND state = 'held'"
        ),
        1
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'"
        ),
        1
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM regimens WHERE patient_id = 'P2'"
        ),
        regimens,
        "no pull ran for the held link"
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM invitations WHERE outcome = 'held' AND link_id IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM audit WHERE action = 'invitation.used'
             AND detail ->> 'outcome' = 'held'"
        ),
        1
    );
}

/// The browser path with an ID token that fails validation: the patient
/// is told the account was not linked because who they are could not be
/// confirmed, nothing is stored, and the grant is revoked at the provider.
#[test]
fn an_identity_that_cannot_be_established_links_nothing_and_says_why() {
    use crate::pull::harness::{REMOTE, fhir_at, stats};
    let sandbox = Sandbox::start();
    let port = free_port();
    let base = &sandbox.base;
    let config = format!(
        "[review]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{}authorize_url = \"{base}/oauth2/authorize\"\nredirect_uri = \"http://127.0.0.1:{}/callback\"\nscopes = [\"openid\", \"patient/MedicationRequest.rs\", \"offline_access\"]\nauthorize_params = {{ aud = \"{base}/fhir\" }}\n[providers.identity]\nremote = \"id_token:mrn\"\njwks_url = \"{base}/oauth2/jwks\"\nissuer = \"{base}\"\n",
        fhir_at(&sandbox, "ehr", "demo-client", "header"),
        free_port(),
    );
    let home = Home::new(&config);
    home.add_p2(false);
    let (status, answer) = sandbox.admin(
        "/admin/consent",
        Some(&serde_json::json!({"id_token_fault": "nonce"})),
    );
    assert_eq!(status, 200, "{answer}");
    let served = serve(&home);
    let auth = open(&invite(&home, "P2", "1h"), &served.base);
    let (status, _, page) = get(&consent_at_sandbox(&format!("{auth}&login_hint={REMOTE}")));
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("data-outcome=\"identity\""), "{page}");
    assert!(page.contains("could not confirm"), "{page}");
    assert!(page.contains("asked ehr to cancel"), "{page}");
    assert!(
        !page.contains("nonce"),
        "no technical words for the patient: {page}"
    );
    assert_eq!(count(&home, "SELECT COUNT(*) FROM links"), 0);
    assert_eq!(stats(&sandbox)["revocations"], 1);
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM audit WHERE action = 'consent.failed'
             AND detail ->> 'step' = 'identity'
             AND detail ->> 'token' = 'revoked'"
        ),
        1
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM invitations WHERE outcome = 'failed' AND link_id IS NULL"
        ),
        1
    );
}
