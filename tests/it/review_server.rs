//! A review server for tests: the real binary's `serve` on a loopback
//! port, seeded through the real CLI, and a small HTTP client that keeps
//! cookies by hand (so tests see exactly what the server sets).

use crate::support::{TestEnv, repo_path};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

pub const CLINICIAN: (&str, &str) = ("dr.lee", "clinician-password");
pub const ADMIN: (&str, &str) = ("admin", "admin-password");

/// A running `rxsync serve` over a seeded database.
pub struct Review {
    pub env: TestEnv,
    pub base: String,
    pub http: reqwest::Client,
    child: Child,
}

impl Drop for Review {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an HTTP answer said.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// The `Set-Cookie` header for a cookie name.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The value of the first `name="field" value="…"` in a page.
pub fn field_value(html: &str, field: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{field}\" value=\""))?;
    let rest = &html[at + field.len() + 15..];
    rest.split('"').next().map(str::to_string)
}

impl Review {
    /// Dictionary, the review sample for `review-1`, two users; then serve.
    pub fn start() -> Review {
        Review::start_with(&[("review-1", "samples/ccr/review.xml")])
    }

    pub fn start_with(documents: &[(&str, &str)]) -> Review {
        let patients: Vec<&str> = documents.iter().map(|(p, _)| *p).collect();
        let env = TestEnv::with_dictionary_and(&patients);
        for (patient, file) in documents {
            env.import(&repo_path(file), patient);
        }
        for ((name, password), role) in [(CLINICIAN, "clinician"), (ADMIN, "admin")] {
            add_user(&env, name, password, role);
        }
        Review::serve(env)
    }

    /// Serves an already seeded environment.
    pub fn serve(env: TestEnv) -> Review {
        Review::serve_with(env, &[])
    }

    /// With extra global arguments (`--config FILE`).
    pub fn serve_with(env: TestEnv, args: &[&str]) -> Review {
        Review::serve_with_env(env, args, &[])
    }

    /// With extra global arguments and environment variables (provider secrets).
    pub fn serve_with_env(env: TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Review {
        rxsync::fetch::http::install_crypto_provider();
        let mut child = env
            .rxsync()
            .args(args)
            .args(["serve", "--listen", "127.0.0.1:0"])
            // The sandbox providers' secrets, as a deployment's environment
            // holds them (a consent started from a page resolves its client).
            .envs(crate::pull::harness::SECRETS.iter().copied())
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rxsync serve");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the URL line");
        let base = line.trim().trim_end_matches('/').to_string();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "first line: {line:?}"
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Review {
            env,
            base,
            http,
            child,
        }
    }

    async fn answer(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.expect("request");
        Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.answer(req).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.answer(req).await
    }

    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Answer {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        self.answer(req).await
    }

    /// Logs in through the form; returns the `Cookie` header value of the
    /// session, or the failed answer.
    pub async fn try_login(&self, name: &str, password: &str) -> Result<String, Answer> {
        self.try_login_with(name, password, None, &[]).await
    }

    /// Logs in with another cookie sent along (a session the browser
    /// already holds) and extra request headers (`X-Forwarded-For`).
    pub async fn try_login_with(
        &self,
        name: &str,
        password: &str,
        held: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<String, Answer> {
        let page = self.get("/login", None).await;
        let token = field_value(&page.body, "login_csrf").expect("login_csrf field");
        let login_cookie = page
            .set_cookie("rxsync_login")
            .and_then(|c| c.split(';').next().map(str::to_string))
            .expect("login cookie");
        let cookie = match held {
            Some(h) => format!("{login_cookie}; {h}"),
            None => login_cookie,
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("name", name),
                ("password", password),
                ("login_csrf", &token),
            ])
            .finish();
        let mut req = self
            .http
            .post(format!("{}/login", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let a = self.answer(req).await;
        match a.set_cookie("rxsync_session") {
            Some(c) if a.status == 303 => Ok(c.split(';').next().unwrap_or_default().to_string()),
            _ => Err(a),
        }
    }

    pub async fn login(&self, who: (&str, &str)) -> String {
        match self.try_login(who.0, who.1).await {
            Ok(c) => c,
            Err(a) => panic!("login failed: {} {}", a.status, a.body),
        }
    }

    /// The CSRF token the forms of a page carry.
    pub async fn csrf(&self, cookie: &str) -> String {
        let page = self.get("/queue", Some(cookie)).await;
        field_value(&page.body, "csrf").expect("csrf field")
    }

    /// A new API token for a user, through the CLI.
    pub fn token(&self, user: &str) -> String {
        self.env
            .run(&["token", "create", "--user", user])
            .ok()
            .trim()
            .to_string()
    }
}

/// `rxsync user add` with the password on stdin.
pub fn add_user(env: &TestEnv, name: &str, password: &str, role: &str) {
    use std::io::Write as _;
    let mut child = env
        .rxsync()
        .args(["user", "add", "--name", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("user add output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(password), "the password is never printed");
}
