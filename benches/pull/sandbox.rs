//! The sandbox provider as a child process (`rxsync sandbox --listen
//! 127.0.0.1:0`, the same binary the benchmark measures), so its CPU is
//! never counted as rxsync's: the harness reads the sandbox's CPU time from
//! `/proc` around each measured phase. Consent is given through its admin
//! API over raw HTTP/1.1, as the integration tests do.

use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::process::{Child, Command, Stdio};

pub struct Sandbox {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the sandbox printed it.
    pub base: String,
}

impl Sandbox {
    /// Starts the built-in demo setup (samples/sandbox/README.md): 20
    /// medications per generated patient, FHIR pages of 10.
    pub fn start(stderr: std::fs::File) -> Sandbox {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxsync"));
        cmd.args(["sandbox", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RXSYNC_")) {
            cmd.env_remove(k);
        }
        let mut child = cmd.spawn().expect("start rxsync sandbox");
        let stdout = child.stdout.take().expect("sandbox stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sandbox first line");
        let base = line
            .trim()
            .strip_prefix("sandbox listening on ")
            .unwrap_or_else(|| panic!("the sandbox did not start: {line:?}"))
            .to_string();
        Sandbox { child, base }
    }

    fn authority(&self) -> &str {
        self.base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, a)| a)
    }

    /// POSTs `body` to an admin path and returns the JSON answer (panics
    /// unless the status is 200).
    pub fn admin(&self, path: &str, body: &Value) -> Value {
        let mut stream = std::net::TcpStream::connect(self.authority()).expect("connect");
        let text = body.to_string();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            self.authority(),
            text.len()
        )
        .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "{path} answered {head}: {body}"
        );
        serde_json::from_str(body).expect("admin JSON")
    }

    /// OAuth 1.0a token credentials for `consumer` and a remote patient.
    pub fn oauth1_token(&self, consumer: &str, patient: &str) -> (String, String) {
        let t = self.admin(
            "/admin/oauth1/tokens",
            &serde_json::json!({"consumer_key": consumer, "patient": patient}),
        );
        (str_of(&t, "token"), str_of(&t, "token_secret"))
    }

    /// An OAuth 2.0 grant (a day long, so no run refreshes): access and
    /// refresh token, and expires_in.
    pub fn oauth2_grant(&self, client: &str, patient: &str) -> (String, String, i64) {
        let g = self.admin(
            "/admin/oauth2/grants",
            &serde_json::json!({"client_id": client, "patient": patient, "expires_in": 86_400}),
        );
        (
            str_of(&g, "access_token"),
            str_of(&g, "refresh_token"),
            g["expires_in"].as_i64().expect("expires_in"),
        )
    }

    /// The sandbox's CPU time so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name: state is the first, utime the 12th, stime the 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map_or(Vec::new(), |(_, rest)| rest.split(' ').collect());
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / clock_ticks()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}
