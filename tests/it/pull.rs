//! Pulling from providers over loopback: the real binary against running
//! sandbox providers, every path of issue 3 and its failures.

pub mod harness;

use crate::support::{Sandbox, sql_millis_between, sql_now, sql_seconds_between};
use harness::*;
use serde_json::json;

fn items_of(report: &serde_json::Value) -> i64 {
    report["import"]["items"].as_i64().unwrap_or(-1)
}

// ------------------------------------------------------------ OAuth 1.0a

#[test]
fn oauth1_in_the_header_or_the_query_with_every_method_imports_the_whole_document() {
    let sb = Sandbox::start();
    let b = sb.base.clone();
    let home = Home::new(
        &[
            oauth1_ccr("h-sha1", &b, "demo-hmac-header", "HMAC-SHA1", "header"),
            oauth1_ccr("q-sha256", &b, "demo-hmac-query", "HMAC-SHA256", "query"),
            oauth1_ccr("rsa", &b, "demo-rsa", "RSA-SHA1", "header"),
            oauth1_ccr("e-query", &b, "demo-hmac-either", "HMAC-SHA1", "query"),
        ]
        .concat(),
    );
    let mut tokens = Vec::new();
    for (p, c) in [
        ("h-sha1", "demo-hmac-header"),
        ("q-sha256", "demo-hmac-query"),
        ("rsa", "demo-rsa"),
        ("e-query", "demo-hmac-either"),
    ] {
        tokens.push(home.link_oauth1(&sb, p, c));
    }
    let run = home.pull(None);
    run.ok();
    let reports = Home::reports(&run);
    assert_eq!(reports.len(), 4, "{reports:?}");
    for r in &reports {
        assert_eq!(r["outcome"], "imported", "{r}");
        assert_eq!(items_of(r), 20, "{r}");
        assert_eq!(r["import"]["exceptions"], json!({}), "{r}");
    }
    // Each request carried its credentials in exactly one place, the one configured.
    let reqs = requests(&sb);
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    for req in &reqs {
        let header = req["headers"]["authorization"].as_str().unwrap_or("");
        let query = req["query"].as_str().unwrap_or("");
        let in_query = query.contains("oauth_signature=");
        assert!(
            header.starts_with("OAuth ") != in_query,
            "one place only: {req}"
        );
        let consumer = if in_query { query } else { header };
        let expect_query =
            consumer.contains("demo-hmac-query") || consumer.contains("demo-hmac-either");
        assert_eq!(in_query, expect_query, "{req}");
    }
    // Pulled again: fresh nonces (no replay refused), the same bytes, unchanged.
    let again = Home::reports(&home.pull(None));
    assert!(
        again.iter().all(|r| r["outcome"] == "unchanged"),
        "{again:?}"
    );
    // Secrets never reach the stored bytes or the output.
    let stored = home.stored_bytes();
    for (_, token, secret) in &tokens {
        assert!(
            !contains(&stored, secret),
            "a token secret is in the database file"
        );
        assert!(!run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()));
        assert!(!contains(&stored, token), "a token is in the database file");
    }
    for (_, s) in SECRETS {
        assert!(!contains(&stored, s) && !run.stdout.contains(s) && !run.stderr.contains(s));
    }
}

#[test]
fn a_request_signed_in_the_wrong_place_is_refused_and_stores_nothing() {
    let sb = Sandbox::start();
    // demo-hmac-header accepts the header only; this provider signs in the query.
    let home = Home::new(&oauth1_ccr(
        "wrong",
        &sb.base,
        "demo-hmac-header",
        "HMAC-SHA1",
        "query",
    ));
    let (id, _, _) = home.link_oauth1(&sb, "wrong", "demo-hmac-header");
    let before = home.imported_rows();
    let run = home.pull(None);
    let err = run.fails(1);
    assert!(err.contains("parameter_rejected"), "{err}");
    assert!(
        err.contains(&format!("{}/ccr/{REMOTE}", sb.base)),
        "names the URL: {err}"
    );
    assert!(
        !err.contains("oauth_signature"),
        "no signature in the message: {err}"
    );
    assert_eq!(home.imported_rows(), before, "nothing stored");
    // Our mistake, not the patient's: the link stays active.
    let row = home.link_row(id);
    assert_eq!(row["state"], "active");
    assert_eq!(row["last_outcome"], "failed");
    assert_eq!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM syncs WHERE outcome = 'failed' AND link_id IS NOT NULL"
        ),
        1
    );
}

// ------------------------------------------------------------ OAuth 2.0

#[test]
fn an_expiring_token_is_refreshed_first_and_the_rotated_pair_is_used_after() {
    let sb = Sandbox::start();
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "header"));
    // Expires within the refresh margin: refreshed before the first request.
    let (id, grant) = home.link_oauth2(&sb, "fh", "demo-client", json!({"expires_in": 30}));
    let run = home.pull(Some("fh"));
    run.ok();
    let r = &Home::reports(&run)[0];
    assert_eq!(r["outcome"], "imported", "{r}");
    assert_eq!(r["refreshed"], true);
    assert_eq!(items_of(r), 20);
    assert_eq!(stats(&sb)["refreshes"], 1);
    // The old access token was never used: every request carried the new one.
    let old = grant["access_token"].as_str().expect("token");
    let used: Vec<String> = requests(&sb)
        .iter()
        .filter(|q| q["path"].as_str().unwrap_or("").starts_with("/fhir/"))
        .filter_map(|q| q["headers"]["authorization"].as_str().map(str::to_string))
        .collect();
    assert!(
        !used.is_empty()
            && used
                .iter()
                .all(|a| a.starts_with("Bearer ") && !a.contains(old)),
        "{used:?}"
    );
    // The rotated refresh token was stored: a later refresh uses it (the
    // sandbox would revoke the grant had the old one been reused).
    force_expiry(&home, id);
    // With every crate's logs at trace level: still no secret on stderr.
    let second = home.rx_with(
        &[
            "import",
            "--patient",
            "P1",
            "--provider",
            "fh",
            "--format",
            "json",
        ],
        b"",
        &[("RXSYNC_LOG", "trace")],
    );
    second.ok();
    assert!(second.stderr.len() > 1000, "trace logs were written");
    assert_eq!(Home::reports(&second)[0]["refreshed"], true);
    let issued: Vec<String> = requests(&sb)
        .iter()
        .filter_map(|q| q["headers"]["authorization"].as_str())
        .filter_map(|a| a.strip_prefix("Bearer ").map(str::to_string))
        .collect();
    for secret in issued.iter().map(String::as_str).chain([
        old,
        grant["refresh_token"].as_str().unwrap_or("-"),
        "demo-client-secret",
        // The HTTP Basic form of the client credentials.
        "ZGVtby1jbGllbnQ6ZGVtby1jbGllbnQtc2VjcmV0",
    ]) {
        assert!(
            !second.stderr.contains(secret),
            "a secret in the trace logs"
        );
        assert!(!second.stdout.contains(secret), "a secret in the output");
    }
    let s = stats(&sb);
    assert_eq!(
        (
            s["refreshes"].as_i64(),
            s["refresh_reuse_revocations"].as_i64()
        ),
        (Some(2), Some(0)),
        "{s}"
    );
    // Neither the tokens handed over nor those the sandbox issued are stored in clear.
    let stored = home.stored_bytes();
    for t in [
        grant["access_token"].as_str(),
        grant["refresh_token"].as_str(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!contains(&stored, t));
    }
    for a in &used {
        assert!(!contains(&stored, a.trim_start_matches("Bearer ")));
    }
    // The audit has a row for the refresh and one per provider access, without secrets.
    let audits = home
        .env
        .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'link.refresh'");
    assert_eq!(audits, 2);
    assert!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'provider.access'")
            >= 4
    );
}

/// Makes the stored access token look expired (time passing, for the test).
fn force_expiry(home: &Home, id: i64) {
    home.env.execute(&format!(
        "UPDATE links SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = {id}"
    ));
}

#[test]
fn a_401_is_answered_by_one_refresh_and_a_second_401_breaks_the_link() {
    let sb = Sandbox::start();
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "query"));
    // The server already refuses the access token the link holds.
    let (id, _) = home.link_oauth2(
        &sb,
        "fh",
        "demo-client",
        json!({"access_token_valid": false}),
    );
    let run = home.pull(None);
    run.ok();
    let r = &Home::reports(&run)[0];
    assert_eq!(
        (r["outcome"].as_str(), r["refreshed"].as_bool()),
        (Some("imported"), Some(true)),
        "{r}"
    );
    assert_eq!(stats(&sb)["refreshes"], 1);
    assert_eq!(home.link_row(id)["state"], "active");
}

#[test]
fn a_provider_that_omits_the_refresh_token_keeps_the_old_one_in_use() {
    let sb = Sandbox::start();
    let home = Home::new(&fhir_at(&sb, "nr", "demo-norotate", "header"));
    let (id, _) = home.link_oauth2(&sb, "nr", "demo-norotate", json!({"expires_in": 5}));
    home.pull(None).ok();
    force_expiry(&home, id);
    let second = home.pull(None);
    second.ok();
    assert_eq!(Home::reports(&second)[0]["refreshed"], true);
    assert_eq!(stats(&sb)["refreshes"], 2);
    assert_eq!(home.link_row(id)["state"], "active");
}

#[test]
fn invalid_grant_needs_relink_with_a_link_broken_exception_until_relinked() {
    let sb = Sandbox::start();
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "header"));
    let (id, grant) = home.link_oauth2(&sb, "fh", "demo-client", json!({"expires_in": 10}));
    // Someone else uses the refresh token first: rxsync's copy is now an
    // old, rotated one, and reusing it revokes the grant.
    let rt = grant["refresh_token"].as_str().expect("refresh token");
    let (status, _) = post_form(
        &sb,
        "/oauth2/token",
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        Some(("demo-client", "demo-client-secret")),
    );
    assert_eq!(status, 200);
    let before = home.imported_rows();
    let run = home.pull(None);
    let err = run.fails(1);
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(!err.contains(rt), "the token is not echoed");
    assert_eq!(home.imported_rows(), before);
    let row = home.link_row(id);
    assert_eq!(row["state"], "needs_relink", "{row}");
    let queue = home.rx(&["queue", "list", "--format", "json"]).json();
    let broken: Vec<_> = queue
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["kind"] == "link_broken")
        .collect();
    assert_eq!(broken.len(), 1, "{queue}");
    let detail = broken[0]["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("rxsync link add --patient P1 --provider fh"),
        "says how to re-link: {detail}"
    );
    // No active link now: the pull says so and does nothing.
    let err = home.pull(None).fails(1).to_string();
    assert!(err.contains("needs_relink"), "{err}");
    // Re-linking with a new consent resolves the exception and pulls again.
    let (again, _) = home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    assert_eq!(again, id);
    home.pull(None).ok();
    assert_eq!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'link_broken' AND state = 'open'"
        ),
        0
    );
}

#[test]
fn link_revoke_calls_the_revocation_endpoint_and_the_token_stops_working() {
    let sb = Sandbox::start();
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "header"));
    let (id, _) = home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    home.pull(None).ok();
    let out = home
        .rx(&["link", "revoke", &id.to_string(), "--format", "json"])
        .json();
    assert_eq!(out["state"], "revoked");
    assert!(
        out["provider_revocation"]
            .as_str()
            .unwrap_or("")
            .starts_with("revoked at"),
        "{out}"
    );
    assert_eq!(stats(&sb)["revocations"], 1);
    // The grant is gone at the provider: a fresh link with the revoked
    // refresh token cannot refresh.
    assert!(stored_tokens_dropped(&home, id));
    let err = home.pull(None).fails(1).to_string();
    assert!(err.contains("no active link"), "{err}");
}

fn stored_tokens_dropped(home: &Home, id: i64) -> bool {
    home.env.query_i64(&format!(
        "SELECT COUNT(*) FROM links WHERE id = {id} AND token IS NULL AND refresh_token IS NULL"
    )) == 1
}

// ------------------------------------------------------------ redirects

#[test]
fn a_permanent_redirect_is_remembered_and_a_temporary_one_is_not() {
    let sb = Sandbox::start();
    let providers = [
        oauth2_fhir(
            "moved",
            &format!("{}/moved/fhir", sb.base),
            &sb.base,
            "demo-client",
            "query",
        ),
        oauth1_ccr(
            "temp",
            &format!("{}/temp", sb.base),
            "demo-hmac-query",
            "HMAC-SHA1",
            "query",
        ),
    ]
    .concat();
    let home = Home::new(&providers);
    home.link_oauth2(&sb, "moved", "demo-client", json!({}));
    home.link_oauth1(&sb, "temp", "demo-hmac-query");
    let run = home.pull(None);
    run.ok();
    for r in Home::reports(&run) {
        assert_eq!(r["outcome"], "imported", "{r}");
        assert!(r["redirects"].as_u64() >= Some(1), "{r}");
    }
    // Every hop was signed again for its own URL: the sandbox accepted them
    // (a replayed signature would be refused as a reused nonce).
    assert_eq!(
        home.env.query_i64("SELECT COUNT(*) FROM link_moves"),
        2,
        "two searched resources moved"
    );
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'link.moved'"),
        2
    );
    clear_requests(&sb);
    home.pull(None).ok();
    // The provider's CapabilityStatement is read once per process, for no
    // link in particular: a link's remembered moves do not apply to it.
    let paths: Vec<String> = requests(&sb)
        .iter()
        .map(|r| r["path"].as_str().unwrap_or("").to_string())
        .filter(|p| !p.ends_with("/metadata"))
        .collect();
    assert!(
        paths.iter().all(|p| !p.starts_with("/moved/")),
        "straight to the new URL: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("/temp/")),
        "307 is asked again: {paths:?}"
    );
    // The trail of each sync lists its hops, without secrets.
    let trail: String = home.env.query_string(
        "SELECT http_trail FROM syncs WHERE http_trail LIKE '%/temp/%' ORDER BY id LIMIT 1",
    );
    assert!(
        trail.contains("\"status\":307") && !trail.contains("oauth_signature"),
        "{trail}"
    );
}

#[test]
fn redirect_loops_and_too_many_hops_stop_and_store_nothing() {
    let sb = Sandbox::start();
    let mut looping = oauth1_ccr(
        "loop",
        &format!("{}/loop-a", sb.base),
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
    );
    looping = looping.replace("retries = 1", "retries = 0");
    let mut short = oauth1_ccr(
        "short",
        &format!("{}/moved", sb.base),
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
    );
    short = short.replace("retries = 1", "max_redirects = 0");
    let home = Home::new(&[looping, short].concat());
    home.link_oauth1(&sb, "loop", "demo-hmac-header");
    home.link_oauth1(&sb, "short", "demo-hmac-header");
    let before = home.imported_rows();
    let run = home.pull(None);
    let err = run.fails(1);
    assert!(err.contains("redirect loop"), "{err}");
    assert!(err.contains("more than max_redirects = 0"), "{err}");
    assert_eq!(home.imported_rows(), before);
    let reqs = requests(&sb);
    assert!(
        reqs.len() <= 4,
        "the loop was cut short: {} requests",
        reqs.len()
    );
}

#[test]
fn credentials_never_follow_a_redirect_to_another_origin_unless_trusted() {
    let other = Sandbox::start();
    let data = tempfile::tempdir().expect("dir");
    std::fs::write(
        data.path().join("sandbox.toml"),
        format!(
            "[[redirects]]\nfrom = \"/away/\"\nto = \"{}/\"\nstatus = 302\n",
            other.base
        ),
    )
    .expect("write");
    let sb = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    let away = format!("{}/away", sb.base);
    let providers = [
        oauth1_ccr("o1-query", &away, "demo-hmac-query", "HMAC-SHA1", "query"),
        oauth1_ccr(
            "o1-header",
            &away,
            "demo-hmac-header",
            "HMAC-SHA1",
            "header",
        ),
        oauth2_fhir(
            "o2-query",
            &format!("{away}/fhir"),
            &sb.base,
            "demo-client",
            "query",
        ),
        oauth2_fhir(
            "o2-header",
            &format!("{away}/fhir"),
            &sb.base,
            "demo-public",
            "header",
        ),
    ]
    .concat();
    let home = Home::new(&providers);
    let ids = [
        home.link_oauth1(&sb, "o1-query", "demo-hmac-query").0,
        home.link_oauth1(&sb, "o1-header", "demo-hmac-header").0,
        home.link_oauth2(&sb, "o2-query", "demo-client", json!({}))
            .0,
        home.link_oauth2(&sb, "o2-header", "demo-public", json!({}))
            .0,
    ];
    let run = home.pull(None);
    let err = run.fails(1);
    assert!(err.contains("trusted_origins"), "{err}");
    let seen = requests(&other);
    assert!(seen.len() >= 4, "the other origin was asked: {seen:?}");
    for req in &seen {
        assert!(
            !carries_credentials(req),
            "a credential reached another origin: {req}"
        );
    }
    // Not the patient's fault: every link stays active.
    for id in ids {
        assert_eq!(home.link_row(id)["state"], "active");
    }
    // Listed in trusted_origins, the other origin does receive them.
    let trusting = oauth1_ccr("trusting", &away, "demo-hmac-header", "HMAC-SHA1", "header")
        .replace(
            "retries = 1",
            &format!("trusted_origins = [\"{}\"]", other.base),
        );
    let home2 = Home::new(&trusting);
    home2.link_oauth1(&sb, "trusting", "demo-hmac-header");
    clear_requests(&other);
    home2.pull(None).fails(1);
    assert!(requests(&other).iter().any(carries_credentials));
}

// ------------------------------------------------------------ FHIR paging

#[test]
fn all_fhir_pages_make_one_regimen_and_max_pages_is_a_limit_not_a_cut() {
    let sb = Sandbox::start();
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "header"));
    home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    let run = home.pull(None);
    run.ok();
    assert_eq!(items_of(&Home::reports(&run)[0]), 20);
    let pages = requests(&sb)
        .iter()
        .filter(|r| r["query"].as_str().unwrap_or("").contains("_page=2"))
        .count();
    assert_eq!(pages, 1, "the second page was followed");
    assert_eq!(home.env.query_i64("SELECT COUNT(*) FROM regimens"), 1);

    let limited =
        fhir_at(&sb, "lim", "demo-client", "header").replace("retries = 1", "max_pages = 1");
    let home2 = Home::new(&limited);
    home2.link_oauth2(&sb, "lim", "demo-client", json!({}));
    let err = home2.pull(None).fails(1).to_string();
    assert!(err.contains("max_pages = 1"), "{err}");
    assert_eq!(home2.imported_rows(), (0, 0, 0), "never a partial regimen");
}

// ------------------------------------------------------------ retries, limits, bad bodies

#[test]
fn retry_after_is_honoured_up_to_the_cap_and_5xx_is_retried() {
    let sb = Sandbox::start();
    let home = Home::new(&ccr_at(&sb, "c"));
    let (id, _, _) = home.link_oauth1(&sb, "c", "demo-hmac-header");
    let fault = |status: u16, times: u32, retry_after: Option<u64>| {
        let mut f = json!({"path_prefix": "/ccr/", "status": status, "times": times});
        if let Some(r) = retry_after {
            f["retry_after"] = json!(r);
        }
        let (s, body) = sb.admin("/admin/faults", Some(&f));
        assert_eq!(s, 200, "{body}");
    };
    // A short Retry-After: waited for, then imported.
    fault(503, 1, Some(1));
    let run = home.pull(None);
    run.ok();
    assert_eq!(Home::reports(&run)[0]["requests"], 2);
    // The sync's record spans the whole pull, the wait included.
    let ms = home.env.query_i64(&format!(
        "SELECT {} FROM syncs",
        sql_millis_between("started_at", "ended_at")
    ));
    assert!(
        ms >= 900,
        "the sync started before its first request: {ms} ms"
    );
    // A long one: give up this run, come back when the provider said.
    fault(429, 1, Some(3600));
    let err = home.pull(None).fails(1).to_string();
    assert!(
        err.contains("retry after 3600 s") && err.contains("try again later"),
        "{err}"
    );
    let row = home.link_row(id);
    assert_eq!(row["last_outcome"], "retry_later");
    let due = home.env.query_i64(&format!(
        "SELECT {} FROM links WHERE id = {id}",
        sql_seconds_between(sql_now(), "next_due_at")
    ));
    assert!(
        (3500..=3600).contains(&due),
        "due again in about an hour: {due}"
    );
    // 5xx without Retry-After: one retry (retries = 1), then failed.
    sb.admin("/admin/faults/clear", Some(&json!({})));
    fault(500, 5, None);
    clear_requests(&sb);
    let err = home.pull(None).fails(1).to_string();
    assert!(err.contains("answered 500"), "{err}");
    assert_eq!(requests(&sb).len(), 2, "the first attempt and one retry");
    // 429 with a short Retry-After, every time: once the retries are used
    // up, the link comes back when the provider said, not after a backoff.
    sb.admin("/admin/faults/clear", Some(&json!({})));
    fault(429, 5, Some(2));
    let err = home.pull(None).fails(1).to_string();
    assert!(
        err.contains("answered 429") && err.contains("retries used up"),
        "{err}"
    );
    assert_eq!(home.link_row(id)["last_outcome"], "retry_later");
    let due = home.env.query_i64(&format!(
        "SELECT {} FROM links WHERE id = {id}",
        sql_seconds_between(sql_now(), "next_due_at")
    ));
    assert!(
        (0..=2).contains(&due),
        "due again when the provider said: {due}"
    );
}

#[test]
fn an_oversized_truncated_or_mistyped_body_stores_nothing() {
    let sb = Sandbox::start();
    let small = ccr_at(&sb, "small").replace("retries = 1", "max_document_bytes = 2000");
    let raw = RawServer::start();
    let cut = oauth2_fhir(
        "cut",
        &format!("{}/cut", raw.base),
        &sb.base,
        "demo-client",
        "header",
    );
    let html = oauth2_fhir(
        "html",
        &format!("{}/html", raw.base),
        &sb.base,
        "demo-client",
        "header",
    );
    let home = Home::new(&[small, cut, html].concat());
    home.link_oauth1(&sb, "small", "demo-hmac-header");
    for p in ["cut", "html"] {
        let (_, grant) = home.link_oauth2(&sb, p, "demo-client", json!({}));
        assert!(grant["access_token"].is_string());
    }
    let before = home.imported_rows();
    let err = home.pull(None).fails(1).to_string();
    assert!(err.contains("over max_document_bytes = 2000"), "{err}");
    assert!(err.contains("cut off"), "{err}");
    assert!(err.contains("media type text/html"), "{err}");
    assert_eq!(home.imported_rows(), before);
}

/// A loopback server that misbehaves on purpose: `/cut/...` promises 5000
/// bytes and sends 100; `/html/...` answers a login page.
struct RawServer {
    base: String,
}

impl RawServer {
    fn start() -> RawServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                }
                let mut stream = reader.into_inner();
                if first.contains(" /cut/") {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 5000\r\n\r\n",
                    );
                    let _ = stream.write_all(&[b' '; 100]);
                } else {
                    let body = "<html><body>Please log in</body></html>";
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            }
        });
        RawServer { base }
    }
}

// ------------------------------------------------------------ tokens handed over

#[test]
fn garbage_tokens_are_refused_without_echo_and_store_nothing() {
    let sb = Sandbox::start();
    let home = Home::new(
        &[
            fhir_at(&sb, "fh", "demo-client", "header"),
            ccr_at(&sb, "c"),
        ]
        .concat(),
    );
    let before = home.env.counts();
    let cases: &[(&str, &str, &str)] = &[
        ("fh", "not json at all SECRETVALUE", "not valid JSON"),
        (
            "fh",
            r#"{"access_token": "has space SECRETVALUE"}"#,
            "access_token holds characters",
        ),
        ("fh", r#"{"access_token": 12345}"#, "wrong type"),
        (
            "fh",
            r#"{"refresh_token": "SECRETVALUE"}"#,
            "access_token is missing",
        ),
        (
            "fh",
            r#"{"access_token": "SECRETVALUE", "token_type": "mac"}"#,
            "only Bearer",
        ),
        (
            "fh",
            r#"{"access_token": "SECRETVALUE", "expires_in": "soon"}"#,
            "expires_in",
        ),
        (
            "c",
            r#"{"token": "SECRETVALUE"}"#,
            "token_secret is missing",
        ),
        (
            "c",
            "{\"token\": \"a\", \"token_secret\": \"SECRET\\nVALUE\"}",
            "token_secret holds",
        ),
    ];
    for (provider, input, expect) in cases {
        let run = home.rx_stdin(
            &["link", "add", "--patient", "P1", "--provider", provider],
            input.as_bytes(),
        );
        let err = run.fails(1);
        assert!(err.contains(expect), "{input}: {err}");
        assert!(
            !err.contains("SECRETVALUE") && !run.stdout.contains("SECRETVALUE"),
            "{input}: {err}"
        );
    }
    let huge = format!("{{\"access_token\": \"{}\"}}", "a".repeat(70_000));
    home.rx_stdin(
        &["link", "add", "--patient", "P1", "--provider", "fh"],
        huge.as_bytes(),
    )
    .fails(1);
    assert_eq!(home.env.counts(), before, "nothing stored");
}

// ------------------------------------------------------------ one sync per link

#[test]
fn an_on_demand_pull_waits_for_a_sync_of_the_same_link() {
    let sb = Sandbox::start();
    let home = Home::new(&ccr_at(&sb, "c"));
    home.link_oauth1(&sb, "c", "demo-hmac-header");
    // The first pull is held up by a 503 with Retry-After: 2.
    sb.admin(
        "/admin/faults",
        Some(&json!({"path_prefix": "/ccr/", "status": 503, "times": 1, "retry_after": 2})),
    );
    std::thread::scope(|s| {
        let first = s.spawn(|| home.pull(None));
        std::thread::sleep(std::time::Duration::from_millis(700));
        let second = s.spawn(|| home.pull(None));
        let (a, b) = (first.join().expect("first"), second.join().expect("second"));
        let outcomes: Vec<String> = [&a, &b]
            .iter()
            .map(|r| {
                Home::reports(r)[0]["outcome"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(outcomes, ["imported", "unchanged"], "{a:?} {b:?}");
    });
    assert_eq!(home.env.query_i64("SELECT COUNT(*) FROM regimens"), 1);
}

// ------------------------------------------------------------ https

#[test]
fn over_https_plaintext_signs_and_a_redirect_down_to_http_is_refused() {
    let plain = Sandbox::start();
    let data = tempfile::tempdir().expect("dir");
    std::fs::write(
        data.path().join("sandbox.toml"),
        format!(
            "[[redirects]]\nfrom = \"/down/\"\nto = \"{}/\"\nstatus = 302\n",
            plain.base
        ),
    )
    .expect("write");
    let cert = crate::support::repo_path("tests/fixtures/sandbox-tls-cert.pem");
    let key = crate::support::repo_path("tests/fixtures/sandbox-tls-key.pem");
    let tls = Sandbox::start_with(&[
        "--data",
        &data.path().display().to_string(),
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
    ]);
    assert!(tls.base.starts_with("https://"), "{}", tls.base);
    let client = crate::sandbox::Client::with(|b| {
        b.tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(&cert).expect("cert")).expect("pem"),
        ])
    });
    let reply = client.send(
        "POST",
        &tls.url("/admin/oauth1/tokens"),
        &[],
        Some((
            "application/json",
            json!({"consumer_key": "demo-hmac-header", "patient": REMOTE}).to_string(),
        )),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.json();
    let ca = format!("ca_file = \"{}\"", cert.display());
    let providers = [
        oauth1_ccr("pt", &tls.base, "demo-hmac-header", "PLAINTEXT", "header")
            .replace("retries = 1", &ca),
        oauth1_ccr(
            "down",
            &format!("{}/down", tls.base),
            "demo-hmac-header",
            "HMAC-SHA1",
            "header",
        )
        .replace("retries = 1", &ca),
    ]
    .concat();
    let home = Home::new(&providers);
    for p in ["pt", "down"] {
        home.link(p, &json!({"token": token["token"], "token_secret": token["token_secret"], "patient": REMOTE}));
    }
    let run = home.pull(Some("pt"));
    run.ok();
    assert_eq!(Home::reports(&run)[0]["outcome"], "imported");
    let err = home.pull(Some("down")).fails(1).to_string();
    assert!(
        err.contains("refused a redirect from https down to http"),
        "{err}"
    );
    assert!(
        requests(&plain).is_empty(),
        "nothing was sent over plain http"
    );
}

// ------------------------------------------------------------ identity

#[test]
fn a_fhir_list_about_another_patient_raises_identity_mismatch() {
    let data = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(data.path().join("fhir")).expect("dir");
    let bundle = json!({
        "resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": {
            "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/somebody-else"},
            "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0071-0155-23"}]}
        }}]
    });
    std::fs::write(
        data.path().join(format!("fhir/{REMOTE}.json")),
        bundle.to_string(),
    )
    .expect("write");
    let sb = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "header"));
    home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    let run = home.pull(None);
    run.ok();
    let r = &Home::reports(&run)[0];
    assert_eq!(r["import"]["exceptions"]["identity_mismatch"], 1, "{r}");
    let queue = home.rx(&["queue", "list", "--format", "json"]).json();
    let detail = queue
        .as_array()
        .and_then(|q| q.iter().find(|e| e["kind"] == "identity_mismatch"))
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(
        detail.contains("somebody-else") && detail.contains(REMOTE),
        "{detail}"
    );
}

// ------------------------------------------------------------ partial readings

#[test]
fn a_pulled_record_that_cannot_be_read_is_an_open_exception_never_a_silent_drop() {
    let data = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(data.path().join("fhir")).expect("dir");
    let request = |id: &str, ndc: &str| {
        json!({
            "resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
            "subject": {"reference": format!("Patient/{REMOTE}")},
            "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": ndc}]}
        })
    };
    let mut bad = request("warfarin-1", "0056-0172-70");
    bad["authoredOn"] = json!(20240101);
    let bundle = json!({
        "resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": request("ok-1", "0071-0155-23")}, {"resource": bad}]
    });
    std::fs::write(
        data.path().join(format!("fhir/{REMOTE}.json")),
        bundle.to_string(),
    )
    .expect("write");
    let sb = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "header"));
    home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    let run = home.pull(None);
    run.ok();
    let r = &Home::reports(&run)[0];
    let import = &r["import"];
    assert_eq!(import["records"], 1, "{r}");
    assert_eq!(import["unreadable_records"], 1, "{r}");
    assert_eq!(import["exceptions"]["unreadable_record"], 1, "{r}");
    assert_eq!(import["status"], "needs_review", "{r}");
    let skipped = import["skipped"].as_array().cloned().unwrap_or_default();
    assert!(
        skipped.iter().any(|s| s["source"]["id"] == "warfarin-1"
            && s["reason"].as_str().unwrap_or("").contains("invalid type")),
        "{r}"
    );
    // The reviewer sees which record, why, and its text.
    let queue = home.rx(&["queue", "list", "--format", "json"]).json();
    let exception = queue
        .as_array()
        .and_then(|q| q.iter().find(|e| e["kind"] == "unreadable_record"))
        .cloned()
        .unwrap_or_else(|| panic!("no unreadable_record in {queue}"));
    let detail = exception["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("MedicationRequest/warfarin-1") && detail.contains("invalid type"),
        "{detail}"
    );
    let id = exception["id"].to_string();
    let shown = home.rx(&["queue", "show", &id, "--format", "json"]).json();
    let excerpt = shown["excerpt"].as_str().unwrap_or("");
    assert!(
        excerpt.contains("warfarin-1") && excerpt.contains("20240101"),
        "{shown}"
    );
    // The audit row of the import says so too.
    let audit: String = home
        .env
        .query_string("SELECT detail FROM audit WHERE action = 'import' ORDER BY id DESC LIMIT 1");
    let detail: serde_json::Value =
        serde_json::from_str(&audit).expect("the audit's detail is JSON");
    assert_eq!(detail["unreadable_records"], 1, "{audit}");
}

#[test]
fn an_expired_token_without_refresh_and_a_rejected_oauth1_token_become_link_broken() {
    let sb = Sandbox::start();
    let home = Home::new(
        &[
            fhir_at(&sb, "fh", "demo-client", "header"),
            ccr_at(&sb, "c"),
        ]
        .concat(),
    );
    let (_, grant) = home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    // Handed over already expired and without its refresh token.
    let fh = home.link(
        "fh",
        &json!({"access_token": grant["access_token"], "expires_in": 0, "patient": REMOTE}),
    );
    // A token the provider never issued (or has since withdrawn).
    let c = home.link(
        "c",
        &json!({"token": "not-issued-token", "token_secret": "whatever", "patient": REMOTE}),
    );
    let run = home.pull(None);
    let err = run.fails(1);
    assert!(err.contains("no refresh token"), "{err}");
    assert!(err.contains("token_rejected"), "{err}");
    for id in [fh, c] {
        assert_eq!(home.link_row(id)["state"], "needs_relink");
    }
    assert_eq!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'link_broken' AND state = 'open'"
        ),
        2
    );
}

#[test]
fn a_401_right_after_a_refresh_breaks_the_link_and_revoke_still_ends_the_grant() {
    let sb = Sandbox::start();
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "header"));
    let (id, _) = home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    // Two 401s: the first triggers a refresh, the second answers the new token.
    // (On the searches: the CapabilityStatement is read without credentials.)
    sb.admin(
        "/admin/faults",
        Some(&json!({"path_prefix": "/fhir/Medication", "status": 401, "times": 2})),
    );
    let err = home.pull(None).fails(1).to_string();
    assert!(err.contains("freshly refreshed token"), "{err}");
    assert_eq!(stats(&sb)["refreshes"], 1);
    assert_eq!(home.link_row(id)["state"], "needs_relink");
    // The refreshed grant is still live at the provider: revoking the
    // needs_relink link ends it there too.
    let out = home
        .rx(&["link", "revoke", &id.to_string(), "--format", "json"])
        .json();
    assert_eq!(out["state"], "revoked");
    assert!(
        out["provider_revocation"]
            .as_str()
            .unwrap_or("")
            .starts_with("revoked at"),
        "{out}"
    );
    assert_eq!(stats(&sb)["revocations"], 1);
}

#[test]
fn a_missing_secret_file_is_named_with_its_key_at_start_and_at_pull_time() {
    let sb = Sandbox::start();
    let home = Home::new(&ccr_at(&sb, "c").replace(
        "consumer_secret_env = \"SANDBOX_HMAC_HEADER_SECRET\"",
        "consumer_secret_file = \"secrets/consumer.txt\"",
    ));
    home.link_oauth1(&sb, "c", "demo-hmac-header");
    let run = home.rx(&["run", "--once"]);
    let err = run.fails(1);
    assert!(
        err.contains("warning: provider c: auth.consumer_secret_file =")
            && err.contains("secrets/consumer.txt"),
        "{err}"
    );
    let pull = home.pull(None).fails(1).to_string();
    assert!(pull.contains("auth.consumer_secret_file"), "{pull}");
}

// ------------------------------------------------------------ origins

/// A sandbox on a port chosen first, whose redirect rules may send a client
/// from `http://127.0.0.1:PORT` to `http://localhost:PORT`: the same server,
/// another origin.
fn sandbox_with_origin_rules(rules: &[(&str, &str, u16)]) -> (Sandbox, u16, tempfile::TempDir) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let data = tempfile::tempdir().expect("dir");
    let toml: String = rules
        .iter()
        .map(|(from, to, status)| {
            format!(
                "[[redirects]]\nfrom = \"{from}\"\nto = \"{}\"\nstatus = {status}\n",
                to.replace("PORT", &port.to_string())
            )
        })
        .collect();
    std::fs::write(data.path().join("sandbox.toml"), toml).expect("write");
    let sb = Sandbox::start_on(
        &format!("127.0.0.1:{port}"),
        &["--data", &data.path().display().to_string()],
    );
    (sb, port, data)
}

#[test]
fn credentials_do_not_come_back_after_a_hop_through_an_untrusted_origin() {
    // 127.0.0.1 → localhost (untrusted) → back to 127.0.0.1.
    let (sb, _, _data) = sandbox_with_origin_rules(&[
        ("/bounce/", "http://localhost:PORT/back/", 302),
        ("/back/", "http://127.0.0.1:PORT/", 302),
    ]);
    let home = Home::new(&oauth1_ccr(
        "c",
        &format!("{}/bounce", sb.base),
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
    ));
    home.link_oauth1(&sb, "c", "demo-hmac-header");
    let err = home.pull(None).fails(1).to_string();
    assert!(err.contains("does not receive credentials"), "{err}");
    let reqs = requests(&sb);
    let last = reqs
        .iter()
        .rev()
        .find(|r| r["path"].as_str().unwrap_or("").starts_with("/ccr/"))
        .expect("the hop back was made");
    assert!(!carries_credentials(last), "credentials came back: {last}");
    assert!(
        reqs.iter()
            .filter(|r| r["path"].as_str().unwrap_or("").starts_with("/back/"))
            .all(|r| !carries_credentials(r)),
        "the untrusted origin got credentials"
    );
}

#[test]
fn a_permanent_redirect_to_another_origin_is_followed_but_never_remembered() {
    let (sb, port, _data) =
        sandbox_with_origin_rules(&[("/hop301/", "http://localhost:PORT/", 301)]);
    let trusted = oauth1_ccr(
        "c",
        &format!("{}/hop301", sb.base),
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
    )
    .replace(
        "retries = 1",
        &format!("trusted_origins = [\"http://localhost:{port}\"]"),
    );
    let home = Home::new(&trusted);
    home.link_oauth1(&sb, "c", "demo-hmac-header");
    let run = home.pull(None);
    run.ok();
    assert_eq!(
        Home::reports(&run)[0]["outcome"],
        "imported",
        "signed anew for the trusted origin"
    );
    assert_eq!(
        home.env.query_i64("SELECT COUNT(*) FROM link_moves"),
        0,
        "a move to another origin is not remembered"
    );
}

#[test]
fn a_fhir_next_page_outside_the_providers_origins_is_refused() {
    let other = Sandbox::start();
    let data = tempfile::tempdir().expect("dir");
    // This sandbox writes its next links with the other one's base.
    std::fs::write(
        data.path().join("sandbox.toml"),
        format!("base_url = \"{}\"\n", other.base),
    )
    .expect("write");
    let sb = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    let home = Home::new(&fhir_at(&sb, "fh", "demo-client", "header"));
    home.link_oauth2(&sb, "fh", "demo-client", json!({}));
    let err = home.pull(None).fails(1).to_string();
    assert!(err.contains("outside the provider's origins"), "{err}");
    assert!(
        requests(&other).is_empty(),
        "the other origin was not asked"
    );
    assert_eq!(home.imported_rows(), (0, 0, 0));
}

// ------------------------------------------------------------ claims

#[test]
fn a_blue_button_provider_pulls_pharmacy_claims_page_by_page() {
    // The CARIN fixture, about the linked patient, with ten more fills of
    // its first claim: two pages of claims at the sandbox's page size.
    let fixture = std::fs::read_to_string(crate::support::repo_path(
        "samples/fhir/eob-carin-searchset.json",
    ))
    .expect("fixture")
    .replace("Patient/bb-1", &format!("Patient/{REMOTE}"));
    let mut bundle: serde_json::Value = serde_json::from_str(&fixture).expect("json");
    let first = bundle["entry"][0].clone();
    let entries = bundle["entry"].as_array_mut().expect("entries");
    for n in 0..10 {
        let mut fill = first.clone();
        fill["resource"]["id"] = json!(format!("eob-refill-{n}"));
        fill["resource"]["item"][0]["servicedDate"] = json!(format!("2026-0{}-01", n % 9 + 1));
        entries.push(fill);
    }
    let data = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(data.path().join("fhir")).expect("dir");
    std::fs::write(
        data.path().join(format!("fhir/{REMOTE}.json")),
        bundle.to_string(),
    )
    .expect("write");
    let sb = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    let provider = fhir_at(&sb, "bb", "demo-client", "header").replace(
        r#"resources = ["MedicationRequest", "MedicationStatement"]"#,
        r#"resources = ["ExplanationOfBenefit"]"#,
    );
    let home = Home::new(&provider);
    home.link_oauth2(&sb, "bb", "demo-client", json!({}));
    let run = home.pull(None);
    run.ok();
    let r = &Home::reports(&run)[0];
    assert_eq!(r["outcome"], "imported", "{r}");
    // Lipitor (eleven fills folded) and the placeholder: never none_shared.
    assert_eq!(items_of(r), 2, "{r}");
    assert_eq!(r["import"]["exceptions"]["invalid_ndc"], 1, "{r}");
    assert!(r["import"]["exceptions"]["none_shared"].is_null(), "{r}");
    let searches: Vec<String> = requests(&sb)
        .iter()
        .filter(|q| q["path"] == "/fhir/ExplanationOfBenefit")
        .map(|q| q["query"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        searches.len() == 2
            && searches.iter().all(|q| q.contains("type=pharmacy"))
            && searches[1].contains("_page=2"),
        "{searches:?}"
    );
    let items = home
        .rx(&["regimen", "show", "--patient", "P1", "--format", "json"])
        .json();
    let lipitor = items["items"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["ndc11"] == "00071015523"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        lipitor["sources"].as_array().map(Vec::len),
        Some(11),
        "{lipitor}"
    );
    assert_eq!(
        lipitor["prescribed"], "2026-10-01",
        "the latest fill: {lipitor}"
    );
}
