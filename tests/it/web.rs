//! The review web application over real HTTP on loopback, against the
//! real binary: sessions, CSRF, roles, escaping, login throttling, and the
//! page flow of a decision.

use crate::review_server::{ADMIN, CLINICIAN, Review, add_user, field_value};

const PAGES: &[&str] = &[
    "/",
    "/queue",
    "/queue?state=all",
    "/exceptions/1",
    "/patients/review-1",
    "/admin/links",
    "/admin/users",
];

const FORMS: &[&str] = &[
    "/exceptions/1/decide",
    "/exceptions/1/reopen",
    "/logout",
    "/admin/links/1/revoke",
    "/admin/users/dr.lee/disable",
];

#[tokio::test]
async fn no_page_form_or_api_call_answers_without_a_session_or_token() {
    let r = Review::start();
    let before = r.env.counts();
    for path in PAGES {
        let a = r.get(path, None).await;
        assert_eq!(
            (a.status, a.location()),
            (303, Some("/login")),
            "GET {path}"
        );
        assert!(!a.body.contains("Lisinopril"), "GET {path}: {}", a.body);
        let a = r.get(path, Some("rxsync_session=forged")).await;
        assert_eq!(
            (a.status, a.location()),
            (303, Some("/login")),
            "GET {path} forged"
        );
    }
    for path in FORMS {
        let fields = [
            ("action", "remove"),
            ("note", "x"),
            ("reason", "x"),
            ("csrf", "x"),
        ];
        let a = r.post_form(path, None, &fields).await;
        assert_eq!(
            (a.status, a.location()),
            (303, Some("/login")),
            "POST {path}"
        );
    }
    assert_eq!(r.env.counts(), before, "nothing changed");
    // The API takes tokens only: not a forged one, not a session cookie.
    let cookie = r.login(CLINICIAN).await;
    for (method, path) in rxsync::web::API_ROUTES {
        let concrete = path.replace(
            "{id}",
            if path.starts_with("/patients") {
                "review-1"
            } else {
                "1"
            },
        );
        let body = (*method == "POST").then(|| serde_json::json!({"action": "remove"}));
        for token in [None, Some("rxs_forged")] {
            let a = r.api(method, &concrete, token, body.clone()).await;
            assert_eq!(a.status, 401, "{method} {concrete} with {token:?}");
            assert!(a.headers.contains_key("www-authenticate"));
            assert!(a.json()["error"].is_string());
        }
        let req = r
            .http
            .get(format!("{}/api/v1{concrete}", r.base))
            .header("cookie", &cookie);
        let status = req.send().await.expect("request").status().as_u16();
        assert!(
            status == 401 || (*method == "POST" && status == 405),
            "{method} {concrete} with a cookie: {status}"
        );
    }
    let login_counts: Vec<(String, i64)> = r
        .env
        .counts()
        .into_iter()
        .filter(|(t, _)| !["audit", "login_attempts", "sessions"].contains(&t.as_str()))
        .collect();
    let before_counts: Vec<(String, i64)> = before
        .into_iter()
        .filter(|(t, _)| !["audit", "login_attempts", "sessions"].contains(&t.as_str()))
        .collect();
    assert_eq!(login_counts, before_counts, "only the login was recorded");
}

#[tokio::test]
async fn a_form_post_without_the_right_csrf_token_is_refused() {
    let r = Review::start();
    let cookie = r.login(CLINICIAN).await;
    let before = r.env.counts();
    for csrf in [None, Some(""), Some("0000")] {
        let mut fields = vec![("action", "remove"), ("note", "dup")];
        if let Some(c) = csrf {
            fields.push(("csrf", c));
        }
        let a = r
            .post_form("/exceptions/1/decide", Some(&cookie), &fields)
            .await;
        assert_eq!(a.status, 403, "csrf {csrf:?}: {}", a.body);
        assert!(a.body.contains("CSRF"), "{}", a.body);
    }
    // Another session's token does not fit this session.
    let other = r.login(ADMIN).await;
    let foreign = r.csrf(&other).await;
    let a = r
        .post_form(
            "/exceptions/1/decide",
            Some(&cookie),
            &[("action", "remove"), ("csrf", &foreign)],
        )
        .await;
    assert_eq!(a.status, 403);
    let after: Vec<_> = r
        .env
        .counts()
        .into_iter()
        .filter(|(t, _)| t != "sessions" && t != "login_attempts" && t != "audit")
        .collect();
    let was: Vec<_> = before
        .into_iter()
        .filter(|(t, _)| t != "sessions" && t != "login_attempts" && t != "audit")
        .collect();
    assert_eq!(after, was, "a refused form changes nothing");
    assert_eq!(
        r.env
            .query_i64("SELECT COUNT(*) FROM exceptions WHERE state = 'open'"),
        2
    );

    let csrf = r.csrf(&cookie).await;
    let a = r
        .post_form(
            "/exceptions/1/decide",
            Some(&cookie),
            &[
                ("action", "remove"),
                ("note", "the same lisinopril"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(
        (a.status, a.location()),
        (303, Some("/exceptions/1?done=resolve")),
        "{}",
        a.body
    );
    assert_eq!(
        r.env.query_i64("SELECT COUNT(*) FROM exceptions WHERE id = 1 AND state = 'resolved' AND resolved_by = 'dr.lee'"),
        1
    );
    assert_eq!(
        r.env.query_i64(
            "SELECT COUNT(*) FROM audit WHERE action = 'exception.remove' AND actor = 'dr.lee'"
        ),
        1,
        "the decision is audited under the signed-in user"
    );
}

#[tokio::test]
async fn a_clinician_cannot_reach_admin_pages() {
    let r = Review::start();
    let cookie = r.login(CLINICIAN).await;
    let csrf = r.csrf(&cookie).await;
    for path in ["/admin/links", "/admin/users"] {
        let a = r.get(path, Some(&cookie)).await;
        assert_eq!(a.status, 403, "{path}");
    }
    let a = r
        .post_form(
            "/admin/users/admin/disable",
            Some(&cookie),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        r.env
            .query_i64("SELECT COUNT(*) FROM users WHERE disabled_at IS NOT NULL"),
        0
    );
    let page = r.get("/queue", Some(&cookie)).await;
    assert!(
        !page.body.contains("/admin/links"),
        "no admin links in the menu"
    );

    let admin = r.login(ADMIN).await;
    for path in ["/admin/links", "/admin/users"] {
        assert_eq!(r.get(path, Some(&admin)).await.status, 200, "{path}");
    }
    let csrf = r.csrf(&admin).await;
    let a = r
        .post_form(
            "/admin/users/dr.lee/disable",
            Some(&admin),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    // A disabled user's session ends at once.
    let a = r.get("/queue", Some(&cookie)).await;
    assert_eq!((a.status, a.location()), (303, Some("/login")));
    assert!(r.try_login(CLINICIAN.0, CLINICIAN.1).await.is_err());
}

#[tokio::test]
async fn markup_in_a_drug_name_is_shown_as_text() {
    let r = Review::start_with(&[("markup-1", "samples/ccr/markup-name.xml")]);
    add_user(&r.env, "viewer", "viewer-password", "clinician");
    let cookie = r.login(("viewer", "viewer-password")).await;
    for path in ["/queue", "/exceptions/1", "/patients/markup-1"] {
        let a = r.get(path, Some(&cookie)).await;
        assert_eq!(a.status, 200, "{path}");
        assert!(
            !a.body.contains("<script>"),
            "{path}: raw markup in {}",
            a.body
        );
        assert!(!a.body.contains("<b>81"), "{path}");
        assert!(
            a.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: the name is shown as text"
        );
    }
    // The excerpt shows the XML as text too (its own escapes escaped again).
    let a = r.get("/exceptions/1", Some(&cookie)).await;
    assert!(a.body.contains("&amp;lt;script&amp;gt;"), "{}", a.body);
    // And no page allows scripts at all.
    let csp = a
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
}

#[tokio::test]
async fn wrong_passwords_slow_further_logins_down() {
    let r = Review::start();
    for n in 1..=5 {
        let a = r
            .try_login(CLINICIAN.0, "wrong-password")
            .await
            .expect_err("refused");
        assert_eq!(a.status, 401, "attempt {n}");
        assert!(a.body.contains("wrong name or password"));
    }
    // Now even the right password waits.
    let started = std::time::Instant::now();
    let a = r
        .try_login(CLINICIAN.0, CLINICIAN.1)
        .await
        .expect_err("throttled");
    assert_eq!(a.status, 429, "{}", a.body);
    let wait: u64 = a
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused without hashing"
    );
    assert!(
        r.env.query_i64(
            "SELECT COUNT(*) FROM audit WHERE action = 'login.failed' AND actor = 'dr.lee'"
        ) == 5
    );
    assert!(
        r.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'login.throttled'")
            == 1
    );
    // Another user is not locked out by them.
    r.login(ADMIN).await;
    // An unknown name gets the same answer as a wrong password.
    let a = r
        .try_login("nobody", "whatever-password")
        .await
        .expect_err("refused");
    assert_eq!(a.status, 401);
    assert!(a.body.contains("wrong name or password"));
}

#[tokio::test]
async fn sessions_have_safe_cookies_expire_and_end_at_logout() {
    let r = Review::start();
    let page = r.get("/login", None).await;
    let a = r
        .post_form(
            "/login",
            Some(&format!(
                "rxsync_login={}",
                field_value(&page.body, "login_csrf").unwrap_or_default()
            )),
            &[
                ("name", CLINICIAN.0),
                ("password", CLINICIAN.1),
                (
                    "login_csrf",
                    &field_value(&page.body, "login_csrf").unwrap_or_default(),
                ),
            ],
        )
        .await;
    let set = a.set_cookie("rxsync_session").expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let id = set
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_start_matches("rxsync_session=")
        .to_string();
    assert_eq!(
        r.env.query_i64(&format!(
            "SELECT COUNT(*) FROM sessions WHERE id_hash = '{id}'"
        )),
        0,
        "the session id itself is not stored"
    );
    let cookie = format!("rxsync_session={id}");
    assert_eq!(r.get("/queue", Some(&cookie)).await.status, 200);

    // Logout ends the session server-side: the old cookie is worthless.
    let csrf = r.csrf(&cookie).await;
    let a = r
        .post_form("/logout", Some(&cookie), &[("csrf", &csrf)])
        .await;
    assert_eq!((a.status, a.location()), (303, Some("/login")));
    assert!(
        a.set_cookie("rxsync_session")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert_eq!(
        r.get("/queue", Some(&cookie)).await.location(),
        Some("/login")
    );
    assert_eq!(
        r.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'logout'"),
        1
    );

    // An expired session is refused.
    let cookie = r.login(CLINICIAN).await;
    rusqlite::Connection::open(&r.env.db)
        .and_then(|c| {
            c.execute(
                "UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z'",
                [],
            )
        })
        .expect("expire");
    assert_eq!(
        r.get("/queue", Some(&cookie)).await.location(),
        Some("/login")
    );
}

#[tokio::test]
async fn the_pages_take_a_decision_and_reverse_it_without_javascript() {
    let r = Review::start();
    let cookie = r.login(CLINICIAN).await;
    let queue = r.get("/queue?kind=unmapped_ndc", Some(&cookie)).await;
    assert!(
        queue.body.contains("Losartan") && !queue.body.contains("data-id=\"1\""),
        "filtered"
    );
    // The dictionary search finds the product by name and by any NDC format.
    for q in ["cozaar", "0006-0952-31", "00006095231"] {
        let a = r.get(&format!("/exceptions/2?q={q}"), Some(&cookie)).await;
        assert!(a.body.contains("data-ndc=\"00006095231\""), "search {q}");
    }
    let csrf = r.csrf(&cookie).await;
    let a = r
        .post_form(
            "/exceptions/2/decide",
            Some(&cookie),
            &[("action", "map"), ("ndc", "00006095231"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let page = r.get("/exceptions/2", Some(&cookie)).await;
    assert!(
        page.body.contains("do-reopen"),
        "reversible while under review"
    );
    let a = r
        .post_form(
            "/exceptions/2/reopen",
            Some(&cookie),
            &[("note", "wrong strength"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        a.location(),
        Some("/exceptions/2?done=reopen"),
        "{}",
        a.body
    );
    assert_eq!(
        r.env
            .query_i64("SELECT COUNT(*) FROM exceptions WHERE id = 2 AND state = 'open'"),
        1
    );
    // A refused decision says why, with the status.
    let a = r
        .post_form(
            "/exceptions/2/decide",
            Some(&cookie),
            &[("action", "keep"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.body.contains("does not fit"));
    let patient = r.get("/patients/review-1", Some(&cookie)).await;
    assert!(patient.body.contains("needs_review") && patient.body.contains("exception.reopen"));
}

#[test]
fn a_network_address_without_tls_is_refused() {
    let env = crate::support::TestEnv::new();
    let err = env
        .run(&["serve", "--listen", "0.0.0.0:0"])
        .fails(2)
        .to_string();
    assert!(err.contains("not a loopback address"), "{err}");
}

#[tokio::test]
async fn over_tls_the_session_cookie_is_secure() {
    use std::io::{BufRead, BufReader};
    let env = crate::support::TestEnv::with_dictionary_and(&[]);
    add_user(&env, CLINICIAN.0, CLINICIAN.1, "clinician");
    let fixtures = crate::support::repo_path("tests/fixtures");
    let config = env.write(
        "config.toml",
        format!(
            "[database]\npath = \"rxsync.db\"\n[review]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            fixtures.join("review-tls-cert.pem").display(),
            fixtures.join("review-tls-key.pem").display()
        )
        .as_bytes(),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rxsync"))
        .current_dir(env.dir.path())
        .args(["--config", &config, "serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("URL line");
    let base = line.trim().trim_end_matches('/').to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "{line}");
    rxsync::fetch::http::install_crypto_provider();
    let pem = std::fs::read(fixtures.join("review-tls-cert.pem")).expect("cert");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("https");
    let set = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(set.contains("Secure") && set.contains("HttpOnly"), "{set}");
    let body = login.text().await.expect("body");
    let nonce = field_value(&body, "login_csrf").expect("nonce");
    let a = client
        .post(format!("{base}/login"))
        .header("cookie", format!("rxsync_login={nonce}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("name", CLINICIAN.0),
                    ("password", CLINICIAN.1),
                    ("login_csrf", nonce.as_str()),
                ])
                .finish(),
        )
        .send()
        .await
        .expect("login");
    let session = a
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        session.starts_with("rxsync_session=") && session.contains("; Secure"),
        "{session}"
    );
    // Plain HTTP to the TLS port gets no page.
    let plain = reqwest::Client::new()
        .get(base.replace("https://", "http://") + "/login")
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));
    let _ = child.kill();
    let _ = child.wait();
}
