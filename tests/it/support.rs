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

/// How long one run of the binary may take before the test fails, naming
/// it (`RXSYNC_TEST_RUN_TIMEOUT`, seconds): a hung run is a failed test with
/// what it printed so far, not a CI job that never ends.
fn run_timeout() -> std::time::Duration {
    let secs = std::env::var("RXSYNC_TEST_RUN_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    std::time::Duration::from_secs(secs)
}

/// `cmd.output()`, but a run past `run_timeout()` is killed and fails the
/// test with its arguments and output.
pub fn output_within(cmd: &mut Command) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rxsync");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let limit = run_timeout();
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait().expect("waits for rxsync") {
            Some(status) => break status,
            None if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
                let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
                panic!(
                    "rxsync {:?} ran past {}s (RXSYNC_TEST_RUN_TIMEOUT) and was killed\nstdout: {stdout}\nstderr: {stderr}",
                    cmd.get_args().collect::<Vec<_>>(),
                    limit.as_secs()
                );
            }
            // Short runs are seen at once, long ones polled less often.
            None => std::thread::sleep((started.elapsed() / 8).clamp(
                std::time::Duration::from_millis(1),
                std::time::Duration::from_millis(50),
            )),
        }
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
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

/// Whether the tests run on PostgreSQL: `RXSYNC_TEST_ENGINE=postgres`
/// with `RXSYNC_TEST_PG_URL` (a throwaway cluster, `.ci/postgres.sh`).
/// Every `TestEnv` then has a fresh database of its own there, and the
/// commands it runs get it as `RXSYNC_DATABASE_URL` instead of `--db`.
pub fn on_postgres() -> bool {
    std::env::var("RXSYNC_TEST_ENGINE").is_ok_and(|e| e == "postgres")
}

/// For a test that reads or edits the SQLite file itself: true (and a
/// note) on PostgreSQL, where the test does not apply.
#[allow(dead_code)] // until a SQLite-only test calls it
pub fn sqlite_only(test: &str) -> bool {
    if on_postgres() {
        eprintln!("{test}: reads the SQLite file itself; not run on PostgreSQL");
        return true;
    }
    false
}

/// Runs `f` on a thread of its own and returns what it returned.
/// PostgreSQL's synchronous client drives a tokio runtime of its own,
/// which cannot run on a thread that is already inside one (every
/// `#[tokio::test]`): the tests' database work runs beside it instead.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// A fresh PostgreSQL database on the test cluster; returns its URL.
pub fn fresh_pg_database() -> String {
    off_runtime(create_pg_database)
}

fn create_pg_database() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let admin = std::env::var("RXSYNC_TEST_PG_URL")
        .expect("RXSYNC_TEST_PG_URL (start one with . .ci/postgres.sh && start_test_postgres)");
    let name = format!(
        "t{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        rand_suffix()
    );
    off_runtime(|| {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("test cluster");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
    });
    let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

fn rand_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    format!("{:x}", h.finish() & 0xffff_ffff)
}

/// Drops a test database made by `fresh_pg_database` (each is a copy of
/// template1: thousands of them would fill the disk).
pub fn drop_pg_database(url: &str) {
    let Ok(admin) = std::env::var("RXSYNC_TEST_PG_URL") else {
        return;
    };
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    off_runtime(|| {
        if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    });
}

/// Reads one number from a home's database, on either engine; unlike the
/// home itself it can be cloned and moved into a task.
#[derive(Clone, Debug)]
#[allow(dead_code)] // not every test module reads from a task
pub struct DbReader {
    db: PathBuf,
    pg: Option<String>,
}

#[allow(dead_code)] // not every test module reads from a task
impl DbReader {
    /// One SQL value, as `TestEnv::query_i64` reads it.
    pub fn query_i64(&self, sql: &str) -> i64 {
        TestEnv::query_i64_at(&self.db, self.pg.as_deref(), sql)
    }
}

/// A temporary rxsync home: a folder, a database path, no config file.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    /// On PostgreSQL (`on_postgres`): this home's database URL.
    pub pg: Option<String>,
    /// Drops that database with the home.
    pub _pg_drop: Option<DropDatabase>,
}

/// Drops its test database when the home goes.
pub struct DropDatabase(pub String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        drop_pg_database(&self.0);
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("rxsync.db");
        let pg = on_postgres().then(fresh_pg_database);
        let _pg_drop = pg.clone().map(DropDatabase);
        TestEnv {
            dir,
            db,
            pg,
            _pg_drop,
        }
    }

    /// The database as the store opens it.
    #[allow(dead_code)] // until a test opens the store itself
    pub fn database(&self) -> rxsync::store::Database {
        match &self.pg {
            Some(url) => rxsync::store::Database::Postgres(Box::new(
                rxsync::store::pg::PgTarget::parse(url, None, &|_| None).expect("test URL"),
            )),
            None => rxsync::store::Database::Sqlite(self.db.clone()),
        }
    }

    /// Opens the store (either engine).
    #[allow(dead_code)] // until a test opens the store itself
    pub fn store(&self) -> rxsync::store::Store {
        let database = self.database();
        off_runtime(|| rxsync::store::Store::connect(&database).expect("open the test database"))
    }

    /// `rxsync` in the temp folder on this home's database (`--db PATH`,
    /// or `RXSYNC_DATABASE_URL` on PostgreSQL), with a clean RXSYNC_*
    /// environment otherwise: add the arguments and run it.
    pub fn rxsync(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxsync"));
        cmd.current_dir(self.dir.path());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RXSYNC_")) {
            cmd.env_remove(k);
        }
        match &self.pg {
            Some(url) => {
                cmd.env("RXSYNC_DATABASE_URL", url);
            }
            None => {
                cmd.arg("--db").arg(&self.db);
            }
        }
        cmd
    }

    /// `--db PATH` on SQLite, nothing on PostgreSQL.
    #[allow(dead_code)] // until a test runs rxsync itself
    pub fn db_args(&self) -> Vec<String> {
        match &self.pg {
            Some(_) => Vec::new(),
            None => vec!["--db".into(), self.db.display().to_string()],
        }
    }

    /// Runs `rxsync --db <db> ARGS` in the temp folder (so no ./config.toml
    /// of the repository is picked up), with a clean RXSYNC_* environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxsync"));
        cmd.current_dir(self.dir.path());
        if self.pg.is_none() {
            cmd.arg("--db").arg(&self.db);
        }
        cmd.args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RXSYNC_")) {
            cmd.env_remove(k);
        }
        if let Some(url) = &self.pg {
            cmd.env("RXSYNC_DATABASE_URL", url);
        }
        // Tables fit $COLUMNS: a test sees them whole unless it sets it.
        cmd.env_remove("COLUMNS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(output_within(&mut cmd))
    }

    /// Runs without the `--db` flag (for configuration tests).
    pub fn run_bare(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxsync"));
        cmd.current_dir(self.dir.path()).args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RXSYNC_")) {
            cmd.env_remove(k);
        }
        // Tables fit $COLUMNS: a test sees them whole unless it sets it.
        cmd.env_remove("COLUMNS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(output_within(&mut cmd))
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
        if let Some(url) = &self.pg {
            return off_runtime(|| {
                let mut c = pg_client(url);
                let tables = pg_tables(&mut c);
                tables
                    .into_iter()
                    .map(|t| {
                        let n: i64 = c
                            .query_one(&format!("SELECT COUNT(*) FROM \"{t}\""), &[])
                            .expect("count")
                            .get(0);
                        (t, n)
                    })
                    .collect()
            });
        }
        let conn = self.sqlite();
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
        TestEnv::query_i64_at(&self.db, self.pg.as_deref(), sql)
    }

    fn query_i64_at(db: &Path, pg: Option<&str>, sql: &str) -> i64 {
        if let Some(url) = pg {
            let wrapped = format!("SELECT (({}))::bigint", sql.trim().trim_end_matches(';'));
            return off_runtime(|| pg_client(url).query_one(&wrapped, &[]).expect(sql).get(0));
        }
        let conn = rusqlite::Connection::open(db).expect("open db");
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    /// A reader of this home's database that a task can own.
    #[allow(dead_code)] // not every test module reads from a task
    pub fn reader(&self) -> DbReader {
        DbReader {
            db: self.db.clone(),
            pg: self.pg.clone(),
        }
    }

    /// Runs one statement (SQL both engines take) on this home's database,
    /// for a test that alters what is stored behind rxsync's back; returns
    /// the number of rows it changed.
    #[allow(dead_code)] // until a test alters the store itself
    /// Several statements (separated by `;`) run as a batch and count 0.
    pub fn execute(&self, sql: &str) -> u64 {
        let several = sql.trim().trim_end_matches(';').contains(';');
        if let Some(url) = &self.pg {
            return off_runtime(|| {
                let mut c = pg_client(url);
                if several {
                    c.batch_execute(sql).expect(sql);
                    return 0;
                }
                c.execute(sql, &[]).expect(sql)
            });
        }
        let conn = self.sqlite();
        if several {
            conn.execute_batch(sql).expect(sql);
            return 0;
        }
        conn.execute(sql, []).expect(sql) as u64
    }

    /// Every row of a query (SQL both engines take), each column as JSON:
    /// integers and booleans as numbers (a flag is 0/1, as SQLite stores
    /// it), text as strings, a JSON column as its text (parse it: the
    /// engines space it differently), times as the RFC 3339 text rxsync
    /// writes, NULL as null.
    #[allow(dead_code)] // until a test reads rows itself
    pub fn query_rows(&self, sql: &str) -> Vec<Vec<Value>> {
        if let Some(url) = &self.pg {
            use postgres::types::Type;
            return off_runtime(|| {
                let mut c = pg_client(url);
                let rows = c.query(sql, &[]).expect(sql);
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| {
                                let ty = row.columns()[i].type_().clone();
                                let v: Option<Value> = match ty {
                                    Type::INT8 => row.get::<_, Option<i64>>(i).map(Value::from),
                                    Type::INT4 => row.get::<_, Option<i32>>(i).map(Value::from),
                                    Type::INT2 => row.get::<_, Option<i16>>(i).map(Value::from),
                                    Type::BOOL => row
                                        .get::<_, Option<bool>>(i)
                                        .map(|b| Value::from(i64::from(b))),
                                    Type::FLOAT8 => row.get::<_, Option<f64>>(i).map(Value::from),
                                    Type::JSON | Type::JSONB => row
                                        .get::<_, Option<Value>>(i)
                                        .map(|j| Value::from(j.to_string())),
                                    Type::TIMESTAMPTZ => row
                                        .get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
                                        .map(|t| {
                                            Value::from(t.to_rfc3339_opts(
                                                chrono::SecondsFormat::Millis,
                                                true,
                                            ))
                                        }),
                                    _ => row.get::<_, Option<String>>(i).map(Value::from),
                                };
                                v.unwrap_or(Value::Null)
                            })
                            .collect()
                    })
                    .collect()
            });
        }
        let conn = self.sqlite();
        let mut stmt = conn.prepare(sql).expect(sql);
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(v) => Value::from(v),
                        rusqlite::types::ValueRef::Real(v) => Value::from(v),
                        rusqlite::types::ValueRef::Text(t) => {
                            Value::from(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(b) => {
                            Value::from(String::from_utf8_lossy(b).into_owned())
                        }
                    })
                })
                .collect()
        })
        .and_then(|rows| rows.collect())
        .expect(sql)
    }

    /// Everything stored, as text, for assertions that a secret is not
    /// there: on SQLite the database file and its WAL byte for byte (free
    /// pages included); on PostgreSQL every row of every table as text.
    #[allow(dead_code)] // until a test looks for a secret in the store
    pub fn stored_text(&self) -> String {
        if let Some(url) = &self.pg {
            return off_runtime(|| {
                let mut c = pg_client(url);
                let tables = pg_tables(&mut c);
                let mut out = String::new();
                for t in tables {
                    for row in c
                        .query(&format!("SELECT t::text FROM \"{t}\" t"), &[])
                        .expect("read a table")
                    {
                        out.push_str(row.get::<_, &str>(0));
                        out.push('\n');
                    }
                }
                out
            });
        }
        let mut db = std::fs::read(&self.db).expect("db");
        db.extend(std::fs::read(self.db.with_extension("db-wal")).unwrap_or_default());
        String::from_utf8_lossy(&db).into_owned()
    }

    /// The SQLite test database, opened directly (for assertions on what is stored).
    fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open db")
    }

    /// One SQL text value, for assertions on what is stored (a time as the
    /// store writes it on SQLite, RFC 3339 with milliseconds, on both).
    pub fn query_string(&self, sql: &str) -> String {
        if self.pg.is_some() {
            return self
                .query_row_text(sql)
                .into_iter()
                .next()
                .flatten()
                .unwrap_or_else(|| panic!("NULL or no column: {sql}"));
        }
        let conn = self.sqlite();
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    /// The first row of a query, every column as the text SQLite would give
    /// (NULL as None; on PostgreSQL a time as the store writes it on SQLite,
    /// a boolean as 1 or 0, JSON compact).
    #[allow(dead_code)] // until a test reads a row
    pub fn query_row_text(&self, sql: &str) -> Vec<Option<String>> {
        if let Some(url) = &self.pg {
            return off_runtime(|| {
                let mut c = pg_client(url);
                let rows = c.query(sql, &[]).expect(sql);
                let row = rows.first().unwrap_or_else(|| panic!("no row: {sql}"));
                (0..row.len()).map(|i| pg_text(row, i)).collect()
            });
        }
        let conn = self.sqlite();
        conn.query_row(sql, [], |r| {
            (0..r.as_ref().column_count())
                .map(|i| {
                    use rusqlite::types::ValueRef;
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(n) => Some(n.to_string()),
                        ValueRef::Real(x) => Some(x.to_string()),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect()
        })
        .expect(sql)
    }

    /// One SQL blob value (a sealed secret, a document's bytes).
    #[allow(dead_code)] // until a test reads a blob
    pub fn query_blob(&self, sql: &str) -> Vec<u8> {
        if let Some(url) = &self.pg {
            return off_runtime(|| {
                let mut c = pg_client(url);
                c.query_one(sql, &[]).expect(sql).get(0)
            });
        }
        let conn = self.sqlite();
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }
    /// The first column of every row, as text (NULL as None), for
    /// assertions on what is stored.
    #[allow(dead_code)] // not every test module reads lists
    pub fn query_strings(&self, sql: &str) -> Vec<Option<String>> {
        if let Some(url) = &self.pg {
            return off_runtime(|| {
                let mut c = pg_client(url);
                let text = format!(
                    "SELECT CAST(q.c AS TEXT) FROM ({}) AS q(c)",
                    sql.trim().trim_end_matches(';')
                );
                c.query(&text, &[])
                    .expect(sql)
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            });
        }
        let conn = self.sqlite();
        let mut stmt = conn.prepare(sql).expect(sql);
        stmt.query_map([], |r| {
            Ok(match r.get_ref(0)? {
                rusqlite::types::ValueRef::Null => None,
                rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
                rusqlite::types::ValueRef::Real(f) => Some(f.to_string()),
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    Some(String::from_utf8_lossy(t).into_owned())
                }
            })
        })
        .expect(sql)
        .collect::<Result<_, _>>()
        .expect(sql)
    }

    /// Every byte the database holds, for assertions that a secret is
    /// not stored in the clear: the SQLite file with its WAL, or on
    /// PostgreSQL every column of every row (text as its UTF-8 text,
    /// `bytea` as its bytes).
    #[allow(dead_code)] // not every test module looks for secrets
    pub fn stored_bytes(&self) -> Vec<u8> {
        if let Some(url) = &self.pg {
            return off_runtime(|| pg_stored_bytes(url));
        }
        let mut all = Vec::new();
        for ext in ["", "-wal", "-shm"] {
            let mut p = self.db.as_os_str().to_owned();
            p.push(ext);
            if let Ok(b) = std::fs::read(PathBuf::from(p)) {
                all.extend(b);
            }
        }
        all
    }
}

/// The tables of a PostgreSQL test database, by name.
fn pg_tables(c: &mut postgres::Client) -> Vec<String> {
    c.query(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' ORDER BY 1",
        &[],
    )
    .expect("list tables")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// A PostgreSQL column as the text SQLite would give for it.
fn pg_text(row: &postgres::Row, i: usize) -> Option<String> {
    use postgres::types::Type;
    match row.columns()[i].type_().clone() {
        Type::TIMESTAMPTZ => row
            .get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        Type::BOOL => row
            .get::<_, Option<bool>>(i)
            .map(|b| i32::from(b).to_string()),
        Type::INT2 => row.get::<_, Option<i16>>(i).map(|n| n.to_string()),
        Type::INT4 => row.get::<_, Option<i32>>(i).map(|n| n.to_string()),
        Type::INT8 => row.get::<_, Option<i64>>(i).map(|n| n.to_string()),
        Type::FLOAT8 => row.get::<_, Option<f64>>(i).map(|x| x.to_string()),
        Type::JSON | Type::JSONB => row
            .get::<_, Option<serde_json::Value>>(i)
            .map(|v| v.to_string()),
        Type::BYTEA => row
            .get::<_, Option<Vec<u8>>>(i)
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        _ => row.get::<_, Option<String>>(i),
    }
}

/// SQL for the current time on the test engine, as a value the time
/// columns compare with (RFC 3339 text on SQLite, `timestamptz` on
/// PostgreSQL).
#[allow(dead_code)] // until a test compares with now
pub fn sql_now() -> &'static str {
    if on_postgres() {
        "clock_timestamp()"
    } else {
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    }
}

/// SQL for the whole milliseconds from the time `from` to the time `to`
/// (columns, or `sql_now()`), truncated toward zero, on the test engine.
#[allow(dead_code)] // until a test measures a time
pub fn sql_millis_between(from: &str, to: &str) -> String {
    if on_postgres() {
        format!("CAST(TRUNC(EXTRACT(EPOCH FROM ({to}) - ({from})) * 1000) AS BIGINT)")
    } else {
        format!("CAST((julianday({to}) - julianday({from})) * 86400000 AS INTEGER)")
    }
}

/// SQL for the whole seconds from `from` to `to`, as `sql_millis_between`.
#[allow(dead_code)] // until a test measures a time
pub fn sql_seconds_between(from: &str, to: &str) -> String {
    if on_postgres() {
        format!("CAST(TRUNC(EXTRACT(EPOCH FROM ({to}) - ({from}))) AS BIGINT)")
    } else {
        format!("CAST((julianday({to}) - julianday({from})) * 86400 AS INTEGER)")
    }
}

/// A running `rxsync sandbox --listen 127.0.0.1:0` child process (the
/// loopback OAuth provider), killed when dropped.
pub struct Sandbox {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` (or `https://…` with TLS), as the sandbox printed it.
    pub base: String,
    /// Holds the child's stderr, shown when it fails to start.
    _logs: tempfile::TempDir,
}

impl Sandbox {
    /// The built-in demo setup.
    pub fn start() -> Sandbox {
        Sandbox::start_with(&[])
    }

    /// With extra arguments, such as `["--data", DIR]`.
    pub fn start_with(args: &[&str]) -> Sandbox {
        Sandbox::start_on("127.0.0.1:0", args)
    }

    /// On a given listen address (a test that must name its own port in
    /// the sandbox's redirect rules picks a free one first).
    pub fn start_on(listen: &str, args: &[&str]) -> Sandbox {
        use std::io::BufRead;
        let logs = tempfile::tempdir().expect("temp dir");
        let stderr_path = logs.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxsync"));
        cmd.args(["sandbox", "--listen", listen])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RXSYNC_")) {
            cmd.env_remove(k);
        }
        let mut child = cmd.spawn().expect("start rxsync sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let read = std::io::BufReader::new(stdout).read_line(&mut line);
        let base = line
            .trim()
            .strip_prefix("sandbox listening on ")
            .map(str::to_string);
        match (read, base) {
            (Ok(_), Some(base)) => Sandbox {
                child,
                base,
                _logs: logs,
            },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the sandbox did not start: stdout {line:?}, stderr {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> &str {
        self.base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, a)| a)
    }

    /// Calls the admin API over plain http (a raw HTTP/1.1 exchange, so
    /// that any test can use it without an HTTP client): POST with a JSON
    /// body, or GET when `body` is None. Returns the status and the JSON answer.
    pub fn admin(&self, path: &str, body: Option<&Value>) -> (u16, Value) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.authority()).expect("connect");
        let request = match body {
            Some(json) => {
                let text = json.to_string();
                format!(
                    "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    self.authority(),
                    text.len()
                )
            }
            None => format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.authority()
            ),
        };
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let json = serde_json::from_str(body).unwrap_or(Value::Null);
        (status, json)
    }

    /// An OAuth 2.0 grant for `client_id` and `patient` (the admin API's
    /// token response).
    pub fn grant(&self, client_id: &str, patient: &str) -> Value {
        let (status, json) = self.admin(
            "/admin/oauth2/grants",
            Some(&serde_json::json!({"client_id": client_id, "patient": patient})),
        );
        assert_eq!(status, 200, "grant: {json}");
        json
    }

    /// OAuth 1.0a token credentials for `consumer_key` and `patient`:
    /// (token, token secret).
    pub fn oauth1_token(&self, consumer_key: &str, patient: &str) -> (String, String) {
        let (status, json) = self.admin(
            "/admin/oauth1/tokens",
            Some(&serde_json::json!({"consumer_key": consumer_key, "patient": patient})),
        );
        assert_eq!(status, 200, "token: {json}");
        let field = |name: &str| json[name].as_str().expect(name).to_string();
        (field("token"), field("token_secret"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pg_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("test database")
}

fn pg_stored_bytes(url: &str) -> Vec<u8> {
    let mut c = pg_client(url);
    let columns: Vec<(String, String, String)> = c
        .query(
            "SELECT table_name::text, column_name::text, data_type::text
             FROM information_schema.columns WHERE table_schema = 'public'
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .expect("list columns")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut all = Vec::new();
    for (table, column, kind) in columns {
        let rows = if kind == "bytea" {
            c.query(&format!("SELECT \"{column}\" FROM \"{table}\""), &[])
        } else {
            c.query(
                &format!("SELECT convert_to(CAST(\"{column}\" AS TEXT), 'UTF8') FROM \"{table}\""),
                &[],
            )
        };
        for row in rows.expect("read a column") {
            if let Some(b) = row.get::<_, Option<Vec<u8>>>(0) {
                all.extend(b);
                all.push(0);
            }
        }
    }
    all
}
