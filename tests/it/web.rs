//! The review web application over real HTTP on loopback, against the
//! real binary: sessions, CSRF, roles, escaping, login throttling, and the
//! page flow of a decision.

use crate::review_server::{ADMIN, CLINICIAN, Review, add_user, field_value};
use crate::support::TestEnv;

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
async fn a_link_id_in_the_url_that_is_not_one_is_refused_and_changes_nothing() {
    let r = Review::start();
    let admin = r.login(ADMIN).await;
    let csrf = r.csrf(&admin).await;
    let before = r.env.counts();
    for bad in ["abc", "0", "-1", "1x"] {
        let a = r
            .post_form(
                &format!("/admin/links/{bad}/revoke"),
                Some(&admin),
                &[("csrf", &csrf), ("reason", "moved away")],
            )
            .await;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
        assert!(
            a.body.contains(&format!(
                "/admin/links/{bad}/revoke: link id must be a positive whole number"
            )),
            "{bad}: {}",
            a.body
        );
    }
    assert_eq!(r.env.counts(), before);
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
    // And no page runs a script but the same-origin file that shows times
    // in local time: no inline script, no other origin.
    let csp = a
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self';")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(a.body.matches("<script").count(), 1, "{}", a.body);
    assert!(
        a.body
            .contains("<script src=\"/assets/review.js\" defer></script>")
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
async fn the_login_form_token_is_signed_and_bound_to_its_form() {
    let r = Review::start();
    let form = |cookie: &str, token: &str| {
        (
            cookie.to_string(),
            vec![
                ("name".to_string(), CLINICIAN.0.to_string()),
                ("password".to_string(), CLINICIAN.1.to_string()),
                ("login_csrf".to_string(), token.to_string()),
            ],
        )
    };
    let first = r.get("/login", None).await;
    let second = r.get("/login", None).await;
    let cookie_of = |page: &crate::review_server::Answer| {
        page.set_cookie("rxsync_login")
            .and_then(|c| c.split(';').next().map(str::to_string))
            .unwrap_or_default()
    };
    let token_of = |page: &crate::review_server::Answer| {
        field_value(&page.body, "login_csrf").unwrap_or_default()
    };
    let nonce = cookie_of(&first)
        .trim_start_matches("rxsync_login=")
        .to_string();
    let (mac_issued, mac) = token_of(&first)
        .split_once('.')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_default();
    let forged = [
        // The old double submit: any equal cookie and field.
        form("rxsync_login=abc", "abc"),
        form(&format!("rxsync_login={nonce}"), &nonce),
        // A real token with another form's cookie.
        form(&cookie_of(&second), &token_of(&first)),
        // The right cookie, a token whose time was changed.
        form(
            &cookie_of(&first),
            &format!("{}.{mac}", mac_issued.parse::<i64>().unwrap_or(0) + 1),
        ),
        form(&cookie_of(&first), ""),
    ];
    for (cookie, fields) in forged {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let a = r.post_form("/login", Some(&cookie), &pairs).await;
        assert_eq!(a.status, 403, "{cookie} {pairs:?}: {}", a.body);
        assert!(a.body.contains("out of date"), "{}", a.body);
        assert!(a.set_cookie("rxsync_session").is_none());
    }
    // The token and cookie of one form, as the page gave them, log in.
    let (cookie, fields) = form(&cookie_of(&first), &token_of(&first));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let a = r.post_form("/login", Some(&cookie), &pairs).await;
    assert_eq!(a.status, 303, "{}", a.body);
}

#[tokio::test]
async fn a_new_login_ends_the_session_the_browser_held() {
    let r = Review::start();
    let clinician = r.login(CLINICIAN).await;
    assert_eq!(r.get("/queue", Some(&clinician)).await.status, 200);
    let admin = r
        .try_login_with(ADMIN.0, ADMIN.1, Some(&clinician), &[])
        .await
        .unwrap_or_else(|a| panic!("{} {}", a.status, a.body));
    let old = r.get("/queue", Some(&clinician)).await;
    assert_eq!((old.status, old.location()), (303, Some("/login")));
    assert_eq!(r.get("/queue", Some(&admin)).await.status, 200);
    assert_eq!(
        r.env
            .query_i64("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL"),
        1
    );
}

/// 20 failed logins under distinct names from one client address.
async fn fail_from(r: &Review, client: Option<&str>) {
    for n in 0..20 {
        let headers: Vec<(&str, &str)> =
            client.map(|c| ("x-forwarded-for", c)).into_iter().collect();
        let a = r
            .try_login_with(&format!("nobody-{n}"), "wrong-password", None, &headers)
            .await
            .expect_err("refused");
        assert_eq!(a.status, 401, "attempt {n}: {}", a.body);
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_throttle_counts_each_forwarded_client() {
    let env = TestEnv::with_dictionary_and(&["review-1"]);
    for ((name, password), role) in [(CLINICIAN, "clinician"), (ADMIN, "admin")] {
        add_user(&env, name, password, role);
    }
    let config = env.write(
        "config.toml",
        b"[review]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n",
    );
    let r = Review::serve_with(env, &["--config", &config]);
    fail_from(&r, Some("203.0.113.5")).await;
    // That client now waits, even with a right password…
    let a = r
        .try_login_with(
            CLINICIAN.0,
            CLINICIAN.1,
            None,
            &[("x-forwarded-for", "203.0.113.5")],
        )
        .await
        .expect_err("throttled");
    assert_eq!(a.status, 429, "{}", a.body);
    // …a client that writes a trusted address on the left is still itself…
    let a = r
        .try_login_with(
            CLINICIAN.0,
            CLINICIAN.1,
            None,
            &[("x-forwarded-for", "198.51.100.1, 203.0.113.5")],
        )
        .await
        .expect_err("the right-most untrusted address counts");
    assert_eq!(a.status, 429, "{}", a.body);
    // …and another client behind the same proxy is not locked out.
    r.try_login_with(
        CLINICIAN.0,
        CLINICIAN.1,
        None,
        &[("x-forwarded-for", "203.0.113.9")],
    )
    .await
    .unwrap_or_else(|a| panic!("{} {}", a.status, a.body));
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_header_changes_nothing() {
    let r = Review::start();
    fail_from(&r, Some("203.0.113.5")).await;
    // Counted against the peer (loopback), whatever the header claims.
    let a = r
        .try_login_with(
            CLINICIAN.0,
            CLINICIAN.1,
            None,
            &[("x-forwarded-for", "203.0.113.9")],
        )
        .await
        .expect_err("the header is not believed");
    assert_eq!(a.status, 429, "{}", a.body);
}

#[tokio::test]
async fn sessions_have_safe_cookies_expire_and_end_at_logout() {
    let r = Review::start();
    let page = r.get("/login", None).await;
    let login_cookie = page
        .set_cookie("rxsync_login")
        .and_then(|c| c.split(';').next().map(str::to_string))
        .unwrap_or_default();
    let a = r
        .post_form(
            "/login",
            Some(&login_cookie),
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
    r.env
        .execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z'");
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
    assert!(
        patient.body.contains("Needs review")
            && patient.body.contains("dr.lee reopened exception #2"),
        "{}",
        patient.body
    );
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
    // The home's database: its SQLite file (the config's path, as --db), or
    // on PostgreSQL its URL, which wins over the path.
    let mut child = env
        .rxsync()
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
    let login_cookie = set
        .lines()
        .find(|c| c.starts_with("rxsync_login="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_string();
    let body = login.text().await.expect("body");
    let nonce = field_value(&body, "login_csrf").expect("nonce");
    let a = client
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
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
