//! The shared test environment: a temporary folder with its own SQLite
//! file, and the real `rxsync` binary run against it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where samples/ and tests/corpus/ live).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under the repository root.
pub fn repo_path(rel: &str) -> PathBuf {
    repo().join(rel)
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts the exit code and returns stderr.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stderr
    }

    /// Parses stdout as JSON (after asserting success).
    #[track_caller]
    pub fn json(&self) -> Value {
        let out = self.ok();
        serde_json::from_str(out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"))
    }
}

/// A temporary rxsync home: a folder, a database path, no config file.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("rxsync.db");
        TestEnv { dir, db }
    }

    /// Runs `rxsync --db <db> ARGS` in the temp folder (so no ./config.toml
    /// of the repository is picked up), with a clean RXSYNC_* environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxsync"));
        cmd.current_dir(self.dir.path())
            .arg("--db")
            .arg(&self.db)
            .args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RXSYNC_")) {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run rxsync"))
    }

    /// Runs without the `--db` flag (for configuration tests).
    pub fn run_bare(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxsync"));
        cmd.current_dir(self.dir.path()).args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RXSYNC_")) {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run rxsync"))
    }

    /// Writes a file in the temp folder and returns its path as text.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("write fixture");
        p.display().to_string()
    }

    /// The demo CCR with a comment added: other bytes (a new version), the
    /// same medications. Returns the copy's path.
    pub fn demo_ccr_with_other_bytes(&self, name: &str) -> String {
        let text = std::fs::read_to_string(repo_path("samples/ccr/demo.xml")).expect("demo CCR");
        let edited = text.replacen(
            "</ContinuityOfCareRecord>",
            "<!-- other bytes --></ContinuityOfCareRecord>",
            1,
        );
        self.write(name, edited.as_bytes())
    }

    /// Loads the sample dictionary and registers `patients`.
    pub fn with_dictionary_and(patients: &[&str]) -> TestEnv {
        let env = TestEnv::new();
        env.run(&[
            "dict",
            "import",
            "--fda",
            &repo_path("samples/ndc").display().to_string(),
        ])
        .ok();
        for p in patients {
            env.run(&["patient", "add", "--id", p]).ok();
        }
        env
    }

    /// Imports a file for a patient and returns the JSON summary.
    pub fn import(&self, file: &Path, patient: &str) -> Value {
        self.run(&[
            "import",
            "--file",
            &file.display().to_string(),
            "--patient",
            patient,
            "--format",
            "json",
        ])
        .json()
    }

    /// Row counts of every table: equal before and after means nothing was stored.
    pub fn counts(&self) -> Vec<(String, i64)> {
        let conn = rusqlite::Connection::open(&self.db).expect("open db");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("list tables");
        tables
            .into_iter()
            .map(|t| {
                let n: i64 = conn
                    .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                    .expect("count");
                (t, n)
            })
            .collect()
    }

    /// One SQL value, for assertions on what is stored.
    pub fn query_i64(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(&self.db).expect("open db");
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }
}
