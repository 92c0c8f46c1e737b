//! A hostile provider that echoes the credential it received back under
//! another name — in a redirect's query, in a path segment, encoded as an
//! `Authorization` header, in an error body — and the check, by value, that
//! rxsync stores and shows it nowhere (issue 10, "Hardening found in review").

use crate::pull::harness::{Home, REMOTE, SECRETS, contains, oauth1_ccr, oauth2_fhir};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};

/// A recognizable token with characters that encode differently in a
/// query, a path and base64 (`+`, `/`, `.`, `~`).
const TOKEN: &str = "Echo+Tok/en.9Qx7Zk31~";
const REFRESH: &str = "Echo-Refresh-5Jd02Lmq";
const TOKEN_SECRET: &str = "echo-secret/+&=7Hq2";

/// How the hostile server answers the first request.
#[derive(Clone, Copy)]
enum Echo {
    /// `302 Location: /next?ACCESS_TOKEN=<the bearer token>&x=1`.
    QueryParameter,
    /// `302 Location: /next?auth=<percent-encoded Authorization header>`.
    PercentHeader,
    /// `302 Location: /next?auth=<base64 of the Authorization header>`.
    Base64Header,
    /// `301 Location: /moved/<the token>/MedicationRequest` (a permanent move).
    PathSegment,
    /// `302 Location: /next?s=<percent-encoded OAuth 1.0a token secret>`.
    TokenSecret,
    /// The token endpoint refuses a refresh with an error that echoes the
    /// refresh token and the client's `Authorization: Basic` header.
    RefreshRefused,
}

/// Starts the hostile provider on loopback; returns its base URL. Every
/// request but the first redirect answers 404 with a body that echoes the
/// `Authorization` header again.
fn hostile(echo: Echo) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut auth = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("authorization") {
                        auth = v.trim().to_string();
                    } else if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            if first.starts_with("POST ") {
                let mut body = vec![0u8; length];
                if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
                    continue;
                }
                let refresh = url::form_urlencoded::parse(&body)
                    .find(|(k, _)| k == "refresh_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let answer = json!({"error": "invalid_request",
                    "error_description": format!("refresh_token {refresh} refused for {auth}")})
                .to_string();
                let _ = write!(
                    reader.into_inner(),
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                continue;
            }
            let bearer = auth.strip_prefix("Bearer ").unwrap_or(&auth).to_string();
            let path = first.split(' ').nth(1).unwrap_or("/");
            let first_request = path.contains("/MedicationRequest") && !path.contains("/moved/")
                || path.starts_with("/ccr/");
            let mut stream = reader.into_inner();
            if first_request {
                let (status, location) = match echo {
                    Echo::QueryParameter => (302, format!("/next?ACCESS_TOKEN={bearer}&x=1")),
                    Echo::PercentHeader => (
                        302,
                        format!(
                            "/next?auth={}",
                            utf8_percent_encode(&auth, NON_ALPHANUMERIC)
                        ),
                    ),
                    Echo::Base64Header => (302, format!("/next?auth={}", STANDARD.encode(&auth))),
                    Echo::PathSegment => (301, format!("/fhir/moved/{bearer}/MedicationRequest")),
                    Echo::RefreshRefused => (302, "/next".to_string()),
                    Echo::TokenSecret => (
                        302,
                        format!(
                            "/next?s={}",
                            utf8_percent_encode(TOKEN_SECRET, NON_ALPHANUMERIC)
                        ),
                    ),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            } else {
                // The bearer again where a 200-character excerpt of the
                // body would cut it in half.
                let pad = "-".repeat(190usize.saturating_sub(18 + auth.len()));
                let body = format!("no such grant: {auth} / {pad}{bearer} / {TOKEN_SECRET}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    });
    base
}

/// Every form of `secret` a provider could echo: as is, percent- and
/// form-encoded, base64 of it and of a `Bearer` header.
fn forms(secret: &str) -> Vec<String> {
    let b64 = STANDARD.encode(secret);
    let header = STANDARD.encode(format!("Bearer {secret}"));
    vec![
        secret.to_string(),
        utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        b64.trim_end_matches('=').to_string(),
        header.trim_end_matches('=').to_string(),
        utf8_percent_encode(&header, NON_ALPHANUMERIC).to_string(),
    ]
}

/// Every text value of every table, for a readable failure message.
fn all_text(home: &Home) -> String {
    if home.env.pg.is_some() {
        return home.env.stored_text();
    }
    let conn = rusqlite::Connection::open(&home.env.db).expect("open db");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("tables");
    let mut out = String::new();
    for t in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .expect("select");
        let n = stmt.column_count();
        let mut rows = stmt.query([]).expect("rows");
        while let Ok(Some(row)) = rows.next() {
            for i in 0..n {
                if let Ok(rusqlite::types::ValueRef::Text(b)) = row.get_ref(i) {
                    out.push_str(&format!("{t}: {}\n", String::from_utf8_lossy(b)));
                }
            }
        }
    }
    out
}

/// Asserts that no form of any of `secrets` is in the run's output, the
/// database file (and its WAL), or any text column; and that the echo was
/// recorded, scrubbed, in the sync's HTTP trail.
fn assert_nowhere(home: &Home, run: &crate::support::Run, secrets: &[&str]) {
    let stored = home.stored_bytes();
    let text = all_text(home);
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !run.stdout.contains(&form),
                "{form:?} in stdout: {}",
                run.stdout
            );
            assert!(
                !run.stderr.contains(&form),
                "{form:?} in stderr: {}",
                run.stderr
            );
            assert!(!text.contains(&form), "{form:?} stored:\n{text}");
            assert!(!contains(&stored, &form), "{form:?} in the database file");
        }
        // Not even a part of ours, as a cut excerpt would leave it (the
        // demo consumer secret starts like its public consumer key).
        if !secret.to_lowercase().starts_with("echo") {
            continue;
        }
        let part = secret.get(..8).unwrap_or(secret);
        assert!(
            !run.stdout.contains(part),
            "{part:?} in stdout: {}",
            run.stdout
        );
        assert!(!text.contains(part), "{part:?} stored:\n{text}");
    }
    let trail = home
        .env
        .query_string("SELECT http_trail FROM syncs ORDER BY id DESC LIMIT 1");
    assert!(
        trail.contains("[redacted]"),
        "the echo is recorded, scrubbed: {trail}"
    );
}

fn fhir_home(base: &str) -> (Home, i64) {
    fhir_home_with(base, json!({}))
}

/// A home linked to the hostile provider with `TOKEN` and `REFRESH`
/// (`extra` fields join the token response, e.g. `expires_in`).
fn fhir_home_with(base: &str, extra: serde_json::Value) -> (Home, i64) {
    let home = Home::new(&oauth2_fhir(
        "hostile",
        &format!("{base}/fhir"),
        base,
        "demo-client",
        "header",
    ));
    let mut tokens = json!({"access_token": TOKEN, "refresh_token": REFRESH,
        "token_type": "Bearer", "patient": REMOTE});
    if let (Some(t), Some(e)) = (tokens.as_object_mut(), extra.as_object()) {
        t.extend(e.clone());
    }
    let id = home.link("hostile", &tokens);
    (home, id)
}

/// The link's last error: the provider's refusal, with the echo scrubbed.
fn last_error(home: &Home) -> String {
    home.env
        .query_string("SELECT last_error FROM links LIMIT 1")
}

#[test]
fn a_token_echoed_under_another_parameter_name_is_stored_and_shown_nowhere() {
    for echo in [
        Echo::QueryParameter,
        Echo::PercentHeader,
        Echo::Base64Header,
    ] {
        let base = hostile(echo);
        let (home, _) = fhir_home(&base);
        let run = home.pull(None);
        let reports = Home::reports(&run);
        assert_eq!(reports[0]["outcome"], "failed", "{reports:?}");
        assert_nowhere(&home, &run, &[TOKEN, REFRESH, "demo-client-secret"]);
        let error = last_error(&home);
        assert!(
            error.contains("answered 404: no such grant: [redacted]"),
            "{error}"
        );
        // The link list and the sync's error, as the CLI shows them, too.
        let list = home.rx(&["link", "list", "--format", "json"]);
        for form in forms(TOKEN) {
            assert!(!list.stdout.contains(&form), "{}", list.stdout);
        }
    }
}

#[test]
fn a_permanent_move_to_a_url_carrying_the_token_is_not_remembered() {
    let base = hostile(Echo::PathSegment);
    let (home, _) = fhir_home(&base);
    let run = home.pull(None);
    assert_eq!(
        Home::reports(&run)[0]["outcome"],
        "failed",
        "{}",
        run.stdout
    );
    assert_nowhere(&home, &run, &[TOKEN, REFRESH]);
    assert_eq!(home.env.query_i64("SELECT COUNT(*) FROM link_moves"), 0);
}

#[test]
fn an_oauth1_token_secret_echoed_percent_encoded_is_stored_and_shown_nowhere() {
    let base = hostile(Echo::TokenSecret);
    let home = Home::new(&oauth1_ccr(
        "hostile1",
        &base,
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
    ));
    home.link(
        "hostile1",
        &json!({"token": "echo-oauth1-token-88", "token_secret": TOKEN_SECRET, "patient": REMOTE}),
    );
    let run = home.pull(None);
    assert_eq!(
        Home::reports(&run)[0]["outcome"],
        "failed",
        "{}",
        run.stdout
    );
    let consumer = SECRETS
        .iter()
        .find(|(k, _)| *k == "SANDBOX_HMAC_HEADER_SECRET")
        .map(|(_, v)| *v)
        .expect("consumer secret");
    assert_nowhere(
        &home,
        &run,
        &[TOKEN_SECRET, consumer, "echo-oauth1-token-88"],
    );
}

#[test]
fn a_refused_refresh_that_echoes_the_refresh_token_and_basic_header_leaves_neither() {
    let base = hostile(Echo::RefreshRefused);
    // About to expire: the pull refreshes first, and the provider refuses.
    let (home, _) = fhir_home_with(&base, json!({"expires_in": 5}));
    let run = home.pull(None);
    assert_eq!(
        Home::reports(&run)[0]["outcome"],
        "failed",
        "{}",
        run.stdout
    );
    let basic = STANDARD.encode("demo-client:demo-client-secret");
    assert_nowhere(&home, &run, &[TOKEN, REFRESH, "demo-client-secret", &basic]);
    assert!(!contains(&home.stored_bytes(), basic.trim_end_matches('=')));
    let error = last_error(&home);
    assert!(
        error.contains("[redacted]"),
        "the refusal is kept, scrubbed: {error}"
    );
    let audit = home.env.query_string(if crate::support::on_postgres() {
        "SELECT COALESCE(string_agg(detail::text, ' '), '') FROM audit WHERE detail::text LIKE '%refresh_token%'"
    } else {
        "SELECT COALESCE(group_concat(detail, ' '), '') FROM audit WHERE detail LIKE '%refresh_token%'"
    });
    assert!(audit.contains("[redacted]"), "{audit}");
}
