//! End to end in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, fantoccini) against the real binary's `serve`, seeded
//! with the real CLI. A clinician logs in, opens the queue, maps an
//! unmapped NDC through the dictionary search, removes a duplicate, sees
//! the regimen become `reviewed`, and logs out. Every page is saved as a
//! screenshot under `target/e2e-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them), hence `#[ignore]` for a plain `cargo test`.

use crate::review_server::{CLINICIAN, Review};
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

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium and chromium-driver (installed by .ci/run)"]
async fn a_clinician_reviews_the_queue_in_a_real_browser() {
    let r = Review::start();
    let driver = start_driver();
    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&driver, profile.path()).await;
    // The flow runs as its own task so that a failed step still closes the
    // browser before the failure is reported.
    let outcome = tokio::spawn(flow(c.clone(), r.base.clone(), r.env.db.clone())).await;
    let _ = c.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("the browser flow did not finish: {e}"),
        }
    }
}

async fn flow(client: Client, base: String, db: PathBuf) {
    let c = &client;
    c.goto(&format!("{base}/queue"))
        .await
        .expect("open the queue");
    assert_eq!(path(c).await, "/login", "no session: the login page");
    shot(c, "01-login").await;
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
    shot(c, "02-queue").await;
    assert_eq!(text(c, "span.count[data-kind='unmapped_ndc']").await, "1");
    assert_eq!(text(c, "span.count[data-kind='duplicate']").await, "1");

    // Map the unmapped NDC through the dictionary search.
    click(c, "tr[data-kind='unmapped_ndc'] td a", "#why").await;
    assert!(text(c, "#why").await.contains("68180-0513-01"));
    assert!(
        text(c, "#excerpt").await.contains("<Medication>"),
        "the CCR excerpt"
    );
    shot(c, "03-exception-unmapped").await;
    c.find(Locator::Id("dict-q"))
        .await
        .expect("search box")
        .send_keys("cozaar")
        .await
        .expect("type");
    click(c, "#dict-search", "#dict-results").await;
    shot(c, "04-dictionary-search").await;
    click(c, "button.map-to[data-ndc='00006095231']", "p.notice").await;
    assert_eq!(text(c, "#state").await, "resolved");
    assert!(text(c, "#decision").await.contains("00006095231"));
    shot(c, "05-mapped").await;

    // Remove the duplicate.
    click(c, "header a[href='/queue']", "#queue").await;
    click(c, "tr[data-kind='duplicate'] td a", "#do-remove").await;
    shot(c, "06-exception-duplicate").await;
    click(c, "#do-remove", "p.notice").await;
    assert_eq!(text(c, "#state").await, "resolved");
    shot(c, "07-removed").await;

    // The regimen is reviewed.
    click(c, "#patient", "#status-file").await;
    assert_eq!(text(c, "#status-file").await, "reviewed");
    shot(c, "08-patient-reviewed").await;

    click(c, "#logout", "#login").await;
    assert_eq!(path(c).await, "/login");
    shot(c, "09-logged-out").await;
    c.goto(&format!("{base}/queue"))
        .await
        .expect("open the queue again");
    assert_eq!(path(c).await, "/login", "the session ended");
    let reviewed: i64 = rusqlite::Connection::open(&db)
        .and_then(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM regimens WHERE status = 'reviewed'",
                [],
                |row| row.get(0),
            )
        })
        .expect("read the database");
    assert_eq!(reviewed, 1);
}
