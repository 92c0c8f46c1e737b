//! End to end in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, fantoccini) against the real binary's `serve`, seeded
//! with the real CLI. Two walks:
//!
//! - The queue: a clinician logs in, opens the queue, opens the unmapped
//!   NDC (what was read beside what the dictionary says, the excerpt
//!   folded), maps it through the dictionary search (the page opens at the
//!   results), goes on to the next open exception — the duplicate, both
//!   items side by side with links — removes the repeat, sees the regimen
//!   become reviewed on the patient page, and logs out.
//! - The reconciled list: for a patient whose clinic and pharmacy lists
//!   disagree (`reconcile::two_sources`), the clinician goes from the
//!   patient page to the reconciled list (each source's say in its column,
//!   a drug only one source lists said so, both sides of each conflict),
//!   follows the status conflict to its `source_conflict` exception (the
//!   two sides headed by their sources), accepts it with a note, goes on
//!   to the next open exception — the dose conflict — and dismisses it
//!   with a note; the patient page's audit trail says both, and the
//!   reconciled list shows both conflicts decided, none open.
//!
//! Every page passes basic accessibility checks run in the browser (every
//! input has a label, headings in order, text contrast at least 4.5:1) and
//! is saved as a screenshot under `target/e2e-screenshots/` (`01-…` for the
//! queue walk, `c01-…` for the reconciled one).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them), hence `#[ignore]` for a plain `cargo test`.

use crate::review_server::{CLINICIAN, Review};
use crate::support::DbReader;
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        // A viewer away from UTC, to see times rewritten to local time.
        .env("TZ", "America/Chicago")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {CHROMEDRIVER} ({e}): run .ci/run, which installs chromium-driver")
        });
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, port }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1100", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless Chromium")
}

/// Saves a screenshot of the current page as a test artifact.
async fn shot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Clicks an element, then waits for an element only the next page has
/// (a click that submits a form returns before the next page is there).
async fn click(c: &Client, css: &str, next: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(next))
        .await
        .unwrap_or_else(|e| panic!("after clicking {css}, no {next}: {e}"));
}

async fn path(c: &Client) -> String {
    c.current_url().await.expect("url").path().to_string()
}

/// Accessibility basics of the page in the browser: every visible form
/// control has a label, one h1 first and no skipped heading level, and
/// text contrast of at least 4.5:1 against its (nearest opaque) background.
const A11Y: &str = r#"
const problems = [];
for (const el of document.querySelectorAll('input, select, textarea')) {
  if (el.type === 'hidden') continue;
  const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
  if (!labelled) problems.push('unlabelled control ' + el.outerHTML);
}
const levels = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => Number(h.tagName[1]));
if (levels[0] !== 1) problems.push('the first heading is h' + levels[0]);
if (levels.filter(l => l === 1).length !== 1) problems.push('not exactly one h1');
for (let i = 1; i < levels.length; i++) {
  if (levels[i] > levels[i - 1] + 1) problems.push('heading h' + levels[i - 1] + ' then h' + levels[i]);
}
const rgb = s => (s.match(/[\d.]+/g) || ['0', '0', '0']).map(Number);
const lum = c => {
  const a = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
};
const background = el => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0) return c;
  }
  return [255, 255, 255];
};
for (const el of document.querySelectorAll('p, a, td, th, button, label, summary, span, li, h1, h2, h3, time, strong')) {
  if (!el.textContent.trim() || el.offsetParent === null) continue;
  const f = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
  const ratio = (Math.max(f, b) + 0.05) / (Math.min(f, b) + 0.05);
  if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ' of ' + el.tagName + ' "' + el.textContent.trim().slice(0, 40) + '"');
}
return problems;
"#;

/// Runs the accessibility checks on the current page and saves a screenshot.
async fn check(c: &Client, name: &str) {
    shot(c, name).await;
    let problems = c.execute(A11Y, vec![]).await.expect("run the checks");
    assert_eq!(
        problems,
        serde_json::json!([]),
        "{name}: accessibility problems on {}",
        c.current_url().await.expect("url")
    );
}

/// Runs a script in the page and returns its value.
async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Runs `flow` in a fresh headless Chromium against `r`. The flow runs as
/// its own task so that a failed step still closes the browser before the
/// failure is reported.
async fn in_browser<F, Fut>(r: &Review, flow: F)
where
    F: FnOnce(Client, String, DbReader) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let driver = start_driver();
    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&driver, profile.path()).await;
    let outcome = tokio::spawn(flow(c.clone(), r.base.clone(), r.env.reader())).await;
    let _ = c.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("the browser flow did not finish: {e}"),
        }
    }
}

/// Opens the queue with no session, checks the login page, and logs in as
/// the clinician: the queue.
async fn log_in(c: &Client, base: &str, shot_name: &str) {
    c.goto(&format!("{base}/queue"))
        .await
        .expect("open the queue");
    assert_eq!(path(c).await, "/login", "no session: the login page");
    check(c, shot_name).await;
    c.find(Locator::Id("name"))
        .await
        .expect("name")
        .send_keys(CLINICIAN.0)
        .await
        .expect("type");
    c.find(Locator::Id("password"))
        .await
        .expect("password")
        .send_keys(CLINICIAN.1)
        .await
        .expect("type");
    click(c, "#login", "#queue").await;
    assert_eq!(path(c).await, "/queue");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium and chromium-driver (installed by .ci/run)"]
async fn a_clinician_reviews_the_queue_in_a_real_browser() {
    let r = Review::start();
    in_browser(&r, flow).await;
}

async fn flow(client: Client, base: String, db: DbReader) {
    let c = &client;
    log_in(c, &base, "01-login").await;
    check(c, "02-queue").await;
    assert_eq!(text(c, "span.count[data-kind='unmapped_ndc']").await, "1");
    assert_eq!(text(c, "span.count[data-kind='duplicate']").await, "1");
    assert_eq!(
        text(c, "tr[data-kind='unmapped_ndc'] td:nth-child(5)").await,
        "Unmapped NDC",
        "kinds in words"
    );
    assert_eq!(
        js(c, "const t = document.querySelector('time'); return t.hasAttribute('data-local') && !t.textContent.includes('UTC') && t.title.endsWith(' UTC');").await,
        serde_json::json!(true),
        "times rewritten to local time by the same-origin script (the CSP lets it run)"
    );

    // The unmapped NDC: the decision first, what was read beside what the
    // dictionary says, the excerpt folded.
    click(c, "tr[data-kind='unmapped_ndc'] td a", "#why").await;
    assert!(text(c, "#why").await.contains("68180-0513-01"));
    assert_eq!(
        js(c, "const d = document.getElementById('decide'), x = document.getElementById('compare'), s = document.getElementById('source'); return d.getBoundingClientRect().top < x.getBoundingClientRect().top && x.getBoundingClientRect().top < s.getBoundingClientRect().top && !s.open;").await,
        serde_json::json!(true),
        "decision panel, then the side by side, then the folded excerpt"
    );
    assert!(text(c, "#compare").await.contains("68180-0513-01"));
    c.find(Locator::Css("#source summary"))
        .await
        .expect("the excerpt's summary")
        .click()
        .await
        .expect("unfold");
    assert!(
        text(c, "#excerpt").await.contains("<Medication>"),
        "the CCR excerpt"
    );
    check(c, "03-exception-unmapped").await;

    // Map through the dictionary search: the page opens at its results.
    c.find(Locator::Id("dict-q"))
        .await
        .expect("search box")
        .send_keys("cozaar")
        .await
        .expect("type");
    click(c, "#dict-search", "#dict-results").await;
    let url = c.current_url().await.expect("url");
    assert_eq!(url.fragment(), Some("results"), "{url}");
    assert_eq!(
        js(c, "const r = document.getElementById('results').getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight;").await,
        serde_json::json!(true),
        "the results are in view"
    );
    let map = text(c, "button.map-to[data-ndc='00006095231']").await;
    assert!(
        map.starts_with("Map #") && map.ends_with("to 00006-0952-31"),
        "{map}"
    );
    check(c, "04-dictionary-search").await;
    click(c, "button.map-to[data-ndc='00006095231']", "p.notice").await;
    assert_eq!(text(c, "#state").await, "Resolved");
    assert!(text(c, "#decision").await.contains("00006-0952-31"));
    check(c, "05-mapped").await;

    // Next open exception: the duplicate, both items side by side.
    click(c, "a.next-after", "#pair").await;
    assert!(text(c, "h1").await.contains("Duplicate"));
    let links = c
        .find_all(Locator::Css("#pair a.item-link"))
        .await
        .expect("links");
    assert_eq!(links.len(), 2, "a link to each item");
    for l in &links {
        let href = l.attr("href").await.expect("href").unwrap_or_default();
        assert!(href.starts_with("/patients/review-1#item-"), "{href}");
    }
    let remove = text(c, "#do-remove").await;
    assert!(
        remove.starts_with("Remove #") && remove.contains(", keep #"),
        "says what it removes and keeps: {remove}"
    );
    check(c, "06-exception-duplicate").await;
    click(c, "#do-remove", "p.notice").await;
    assert_eq!(text(c, "#state").await, "Resolved");
    check(c, "07-removed").await;

    // The regimen is reviewed; the audit trail reads as sentences.
    click(c, "#patient", "#status-file").await;
    assert_eq!(text(c, "#status-file").await, "Reviewed");
    let audit = text(c, "#audit").await;
    assert!(
        audit
            .contains("dr.lee mapped the item of exception #2 (Unmapped NDC) to NDC 00006-0952-31"),
        "{audit}"
    );
    assert!(
        audit.contains("dr.lee removed the item of exception #1 (Duplicate)"),
        "{audit}"
    );
    check(c, "08-patient-reviewed").await;

    click(c, "#logout", "#login").await;
    assert_eq!(path(c).await, "/login");
    shot(c, "09-logged-out").await;
    c.goto(&format!("{base}/queue"))
        .await
        .expect("open the queue again");
    assert_eq!(path(c).await, "/login", "the session ended");
    let reviewed = db.query_i64("SELECT COUNT(*) FROM regimens WHERE status = 'reviewed'");
    assert_eq!(reviewed, 1);
}

/// Types `text` into the input with this id.
async fn type_into(c: &Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into #{id}: {e}"));
}

/// The text of the reconciled list's row of a drug (by its name) in one
/// column, `td[data-source=…]` or the conflicts (`td:last-child`).
async fn cell(c: &Client, drug: &str, column: &str) -> String {
    let xpath = format!("//table[contains(@class, 'reconciled')]//tr[th[contains(., '{drug}')]]");
    c.find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("the row of {drug}: {e}"))
        .find(Locator::Css(column))
        .await
        .unwrap_or_else(|e| panic!("{column} in the row of {drug}: {e}"))
        .text()
        .await
        .expect("text")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium and chromium-driver (installed by .ci/run)"]
async fn a_clinician_settles_a_source_conflict_in_a_real_browser() {
    let env = crate::reconcile::two_sources();
    crate::review_server::add_user(&env, CLINICIAN.0, CLINICIAN.1, "clinician");
    let r = Review::serve(env);
    in_browser(&r, conflict_flow).await;
}

/// Clinic: lisinopril active, Zocor 1 tablet. Pharmacy: lisinopril
/// stopped, Zocor 2 tablets, Cozaar (see `reconcile::two_sources`).
async fn conflict_flow(client: Client, base: String, db: DbReader) {
    let c = &client;
    log_in(c, &base, "c01-login").await;
    assert_eq!(
        text(c, "span.count[data-kind='source_conflict']").await,
        "2",
        "one exception per disagreement"
    );
    check(c, "c02-queue").await;

    // From the patient page to the reconciled list.
    c.goto(&format!("{base}/patients/p1"))
        .await
        .expect("open the patient");
    check(c, "c03-patient-two-sources").await;
    click(c, "#reconciled", "table.reconciled").await;
    assert_eq!(path(c).await, "/patients/p1/reconciled");
    assert!(
        text(c, "h1")
            .await
            .contains("Reconciled list of patient p1")
    );
    assert!(
        text(c, "#conflict-count")
            .await
            .starts_with("2 conflict(s)"),
        "{}",
        text(c, "#conflict-count").await
    );
    assert!(
        cell(c, "Lisinopril", "td[data-source='clinic']")
            .await
            .contains("Active")
    );
    assert!(
        cell(c, "Lisinopril", "td[data-source='pharmacy']")
            .await
            .contains("Stopped")
    );
    let conflict = cell(c, "Lisinopril", "td:last-child").await;
    assert!(
        conflict.contains("clinic says active; pharmacy says stopped") && conflict.contains("Open"),
        "both sides, and the exception open: {conflict}"
    );
    assert!(
        cell(c, "Cozaar", "td:nth-child(2)")
            .await
            .contains("only in pharmacy")
    );
    assert!(
        cell(c, "Cozaar", "td[data-source='clinic']")
            .await
            .contains("not listed")
    );
    check(c, "c04-reconciled").await;

    // The status conflict's exception: both sides, then accept with a note.
    let link = "//table[contains(@class, 'reconciled')]//tr[th[contains(., 'Lisinopril')]]//a[starts-with(@href, '/exceptions/')]";
    c.find(Locator::XPath(link))
        .await
        .expect("the conflict's link")
        .click()
        .await
        .expect("follow it");
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#why"))
        .await
        .expect("the exception page");
    assert!(text(c, "h1").await.contains("Sources disagree"));
    let why = text(c, "#why").await;
    assert!(
        why.contains("clinic (item 1) says active; pharmacy (item 1) says stopped"),
        "{why}"
    );
    let pair = text(c, "#pair").await;
    assert!(
        pair.contains("clinic — #1") && pair.contains("pharmacy — #1"),
        "each side headed by its source: {pair}"
    );
    assert!(
        pair.contains("Status Active Stopped"),
        "statuses in words: {pair}"
    );
    assert_eq!(
        text(c, "#do-accept").await,
        "Accept: clinic #1 and pharmacy #1 stay as each source lists them",
        "says what accepting does"
    );
    assert_eq!(
        js(c, "const p = document.getElementById('pair'), x = document.getElementById('compare'); return p.getBoundingClientRect().top < x.getBoundingClientRect().top;").await,
        serde_json::json!(true),
        "the two sides before what the dictionary says of one"
    );
    check(c, "c05-exception-conflict").await;
    type_into(c, "accept-note", "stopped in clinic last week").await;
    click(c, "#do-accept", "p.notice").await;
    assert_eq!(text(c, "#state").await, "Resolved");
    let decision = text(c, "#decision").await;
    assert!(
        decision.starts_with("Accepted by dr.lee")
            && decision.contains("stopped in clinic last week"),
        "{decision}"
    );
    check(c, "c06-conflict-accepted").await;

    // Next open exception: the dose conflict; dismissed with a note.
    click(c, "a.next-after", "#do-dismiss").await;
    let why = text(c, "#why").await;
    assert!(why.contains("dose"), "{why}");
    check(c, "c07-next-conflict").await;
    type_into(c, "dismiss-note", "pharmacy filled a titration").await;
    click(c, "#do-dismiss", "p.notice").await;
    assert_eq!(text(c, "#state").await, "Dismissed");
    assert!(
        text(c, "p.notice")
            .await
            .contains("No other exception is open."),
        "{}",
        text(c, "p.notice").await
    );
    check(c, "c08-conflict-dismissed").await;

    // The patient page: the decisions as sentences in the audit trail.
    click(c, "#patient", "#audit").await;
    let audit = text(c, "#audit").await;
    assert!(
        audit.contains("dr.lee accepted exception #")
            && audit.contains("stopped in clinic last week"),
        "{audit}"
    );
    assert!(
        audit.contains("dr.lee dismissed exception #")
            && audit.contains("pharmacy filled a titration"),
        "{audit}"
    );
    check(c, "c09-patient-decided").await;

    // The reconciled list: the sources still disagree, and both are decided.
    click(c, "#reconciled", "table.reconciled").await;
    let lisinopril = cell(c, "Lisinopril", "td:last-child").await;
    assert!(lisinopril.contains("Resolved"), "{lisinopril}");
    let zocor = cell(c, "Zocor", "td:last-child").await;
    assert!(zocor.contains("Dismissed"), "{zocor}");
    let count = text(c, "#conflict-count").await;
    assert!(count.contains("none open"), "{count}");
    check(c, "c10-reconciled-decided").await;

    let open = db.query_i64(
        "SELECT COUNT(*) FROM exceptions WHERE kind = 'source_conflict' AND state = 'open'",
    );
    assert_eq!(open, 0);
}

/// Linking in the browser, both ways in. A patient opens an invitation
/// URL (no rxsync account: a page that spends nothing) and presses
/// *Continue*, the sandbox consents non-interactively, the
/// review app's callback stores the link, runs the first pull and shows the
/// list it imported. Then a clinician, on another patient's page, clicks
/// "Link an account" (a CSRF-protected form) and lands on the same kind of
/// page; "Make an invitation" shows a fresh URL once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium and chromium-driver (installed by .ci/run)"]
async fn a_patient_links_an_account_from_an_invitation_in_a_real_browser() {
    let sandbox = crate::support::Sandbox::start();
    let (home, _) = crate::consent_browser::browser_home(&sandbox);
    crate::review_server::add_user(&home.env, CLINICIAN.0, CLINICIAN.1, "clinician");
    let served = crate::consent_browser::serve(&home);
    let url = crate::consent_browser::invite(&home, "P1", "1h");
    let driver = start_driver();
    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&driver, profile.path()).await;
    let outcome = tokio::spawn(linking_flow(
        c.clone(),
        served.base.clone(),
        url,
        home.env.reader(),
    ))
    .await;
    let _ = c.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("the browser flow did not finish: {e}"),
        }
    }
}

async fn linking_flow(client: Client, base: String, invitation: String, db: DbReader) {
    let c = &client;
    // Opening the invitation shows what it is for and spends nothing (a
    // mail scanner may have fetched it first): twice, to be sure.
    let unspent = || {
        db.query_i64(
            "SELECT COUNT(*) FROM invitations WHERE patient_id = 'P1' AND opened_at IS NULL",
        )
    };
    for _ in 0..2 {
        c.goto(&invitation).await.expect("open the invitation");
        assert!(text(c, "h1").await.contains("Link your account at ehr"));
        assert_eq!(unspent(), 1, "opening the invitation spent it");
    }
    check(c, "19-invitation").await;
    // Continue: the form posts, and its answer sends the browser to the
    // provider (the page's CSP allows that one origin), which consents and
    // sends it back to the callback.
    c.find(Locator::Css("#continue"))
        .await
        .expect("the Continue button")
        .click()
        .await
        .expect("click Continue");
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#outcome[data-outcome=linked]"))
        .await
        .expect("the linked page");
    assert_eq!(unspent(), 0);
    assert_eq!(path(c).await, "/oauth/callback");
    assert!(
        text(c, "h1")
            .await
            .contains("Your account at ehr is linked")
    );
    let rows = c
        .find_all(Locator::Css("#medications tr.medication"))
        .await
        .expect("rows");
    let imported = db.query_i64(
        "SELECT COUNT(*) FROM items i JOIN regimens r ON r.id = i.regimen_id WHERE r.patient_id = 'P1'",
    );
    assert!(imported > 0);
    assert_eq!(
        rows.len() as i64,
        imported,
        "every imported medicine is listed"
    );
    check(c, "20-invitation-linked").await;

    // The same invitation a second time: refused, in plain words.
    c.goto(&invitation).await.expect("open it again");
    assert!(text(c, "#outcome").await.contains("works only once"));
    shot(c, "21-invitation-used").await;

    // A clinician links P2 from the patient page.
    c.goto(&format!("{base}/login")).await.expect("login page");
    c.find(Locator::Id("name"))
        .await
        .expect("name")
        .send_keys(CLINICIAN.0)
        .await
        .expect("type");
    c.find(Locator::Id("password"))
        .await
        .expect("password")
        .send_keys(CLINICIAN.1)
        .await
        .expect("type");
    click(c, "#login", "#queue").await;
    c.goto(&format!("{base}/patients/P2"))
        .await
        .expect("patient page");
    check(c, "22-patient-link-forms").await;
    click(
        c,
        "#link-accounts li[data-provider=ehr] button.make-invitation",
        "#invitation-url",
    )
    .await;
    let shown = c
        .find(Locator::Id("invitation-url"))
        .await
        .expect("the URL")
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default();
    assert!(shown.starts_with(&format!("{base}/invite/")), "{shown}");
    shot(c, "23-invitation-made").await;
    c.goto(&format!("{base}/patients/P2"))
        .await
        .expect("patient page");
    click(
        c,
        "#link-accounts li[data-provider=ehr] button.link-account",
        "#continue",
    )
    .await;
    click(c, "#continue", "#outcome").await;
    assert_eq!(
        js(
            c,
            "return document.querySelector('#outcome').dataset.outcome"
        )
        .await,
        serde_json::json!("linked")
    );
    shot(c, "24-clinician-linked").await;
}
