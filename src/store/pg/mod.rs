//! PostgreSQL: where to connect, the schema's migrations, and the
//! operations that work on it today (`db migrate`, `db check`, `db copy`).
//! The store functions (imports, links, the queue) do not run on
//! PostgreSQL yet: this module is the schema and the operator's tools, not
//! a second store. It never reads the process environment (the caller
//! passes a lookup) and never prints; a password never appears in its
//! errors or in `PgTarget`'s `Debug` and `Display`.

mod copy;
mod migrate;

pub use copy::{CopyReport, TableCount, copy_sqlite_to_postgres};
pub use migrate::{check_postgres, migrate_postgres, postgres_known_version, postgres_version};

use std::fmt;
use std::path::PathBuf;

/// What went wrong in a database operation (`db migrate|check|copy`).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A SQLite store error (opening, migrating).
    #[error(transparent)]
    Store(#[from] super::StoreError),
    /// A SQLite error reading the source or the checked file.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite file named does not exist.
    #[error("no SQLite database at {0}")]
    NoDatabase(PathBuf),
    /// The connection settings cannot be used (the message never holds the password).
    #[error("database url: {0}")]
    Target(String),
    /// The server could not be reached or refused the login.
    #[error("cannot connect to {target}: {cause}")]
    Connect { target: String, cause: PgCause },
    /// PostgreSQL refused or failed (its message, with the server's detail).
    #[error("PostgreSQL: {0}")]
    Postgres(PgCause),
    /// A database at a schema version this operation cannot work on.
    #[error("{0}")]
    Version(String),
    /// `db copy` into a database that already holds rows.
    #[error(
        "the target database is not empty: table {table} has {rows} row(s); db copy only fills an empty database"
    )]
    NotEmpty { table: String, rows: i64 },
    /// A value of the source that does not fit the target's column.
    #[error("table {table}, row {row}, column {column}: {problem}")]
    Value {
        table: String,
        row: i64,
        column: String,
        problem: String,
    },
    /// The two databases do not have the same tables or counts.
    #[error("{0}")]
    Mismatch(String),
}

/// A `postgres::Error` shown with the server's message and detail (its own
/// Display says only "db error").
#[derive(Debug)]
pub struct PgCause(pub postgres::Error);

impl fmt::Display for PgCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(f, "{}", db.message())?;
                if let Some(detail) = db.detail() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            None => {
                write!(f, "{}", self.0)?;
                let mut source = std::error::Error::source(&self.0);
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
        }
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        DbError::Postgres(PgCause(e))
    }
}

/// A PostgreSQL database to connect to: `[database] url` (or
/// `RXSYNC_DATABASE_URL`, or `db copy --to`) completed by `password_file`
/// and the standard `PG*` variables for what the URL leaves out.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    /// The URL as it can be shown: no password.
    shown: String,
}

impl PgTarget {
    /// Reads a `postgres://` or `postgresql://` URL. What it does not say
    /// comes from `password` (a `password_file`'s first line, when
    /// configured), then `PGPASSWORD`, `PGUSER`, `PGHOST`, `PGPORT`,
    /// `PGDATABASE` and `PGSSLMODE` through `env`.
    pub fn parse(
        url: &str,
        password: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgTarget, DbError> {
        if !is_postgres_url(url) {
            return Err(DbError::Target(
                "must start with postgres:// or postgresql://".into(),
            ));
        }
        // tokio-postgres's parse errors quote no part of the URL.
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| DbError::Target(e.to_string()))?;
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        if config.get_password().is_none()
            && let Some(p) = password.map(str::to_string).or_else(|| var("PGPASSWORD"))
        {
            config.password(p);
        }
        if config.get_user().is_none() {
            match var("PGUSER") {
                Some(u) => {
                    config.user(&u);
                }
                None => {
                    return Err(DbError::Target(
                        "names no user: write postgres://USER@HOST/DB, or set PGUSER".into(),
                    ));
                }
            }
        }
        if config.get_hosts().is_empty() {
            config.host(var("PGHOST").as_deref().unwrap_or("localhost"));
        }
        if config.get_ports().is_empty()
            && let Some(p) = var("PGPORT")
        {
            let port = p
                .parse::<u16>()
                .map_err(|_| DbError::Target(format!("PGPORT {p:?} is not a port number")))?;
            config.port(port);
        }
        if config.get_dbname().is_none()
            && let Some(d) = var("PGDATABASE")
        {
            config.dbname(&d);
        }
        if !url.contains("sslmode=")
            && let Some(mode) = var("PGSSLMODE")
        {
            config.ssl_mode(match mode.as_str() {
                "disable" => postgres::config::SslMode::Disable,
                "prefer" | "allow" => postgres::config::SslMode::Prefer,
                "require" => postgres::config::SslMode::Require,
                other => {
                    return Err(DbError::Target(format!(
                        "PGSSLMODE {other:?} is not disable, prefer or require"
                    )));
                }
            });
        }
        let shown = show(&config);
        Ok(PgTarget { config, shown })
    }

    /// The same server and credentials, another database (tests, `db copy`
    /// into a database made for it).
    pub fn with_dbname(&self, name: &str) -> PgTarget {
        let mut config = self.config.clone();
        config.dbname(name);
        let shown = show(&config);
        PgTarget { config, shown }
    }

    /// Connects. TLS as the URL asks (`sslmode`: `prefer` by default,
    /// `require`, `disable`), with rustls and the platform's certificate
    /// verification (as the HTTP client); the certificate is always verified.
    pub fn connect(&self) -> Result<postgres::Client, DbError> {
        // Outside the caller's async runtime: the synchronous client
        // starts one of its own (see `db::outside_async`).
        let client = match self.config.get_ssl_mode() {
            postgres::config::SslMode::Disable => {
                super::db::outside_async(|| self.config.connect(postgres::NoTls))
            }
            _ => {
                use rustls_platform_verifier::ConfigVerifierExt as _;
                let tls = rustls::ClientConfig::with_platform_verifier()
                    .map_err(|e| DbError::Target(format!("TLS setup: {e}")))?;
                super::db::outside_async(|| {
                    self.config
                        .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
                })
            }
        };
        client.map_err(|e| DbError::Connect {
            target: self.shown.clone(),
            cause: PgCause(e),
        })
    }
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgTarget({})", self.shown)
    }
}

/// Whether a database setting names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `postgres://user@host:port/db`, never the password.
fn show(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    format!(
        "postgres://{}@{host}{port}/{}",
        config.get_user().unwrap_or(""),
        config
            .get_dbname()
            .unwrap_or(config.get_user().unwrap_or(""))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_never_shows_its_password_and_fills_gaps_from_pg_variables() {
        let env = |k: &str| match k {
            "PGPASSWORD" => Some("env-secret-pw".to_string()),
            "PGDATABASE" => Some("rx".to_string()),
            _ => None,
        };
        let t = PgTarget::parse("postgres://op:url-secret-pw@db.example:5433/", None, &env)
            .expect("parses");
        assert_eq!(t.to_string(), "postgres://op@db.example:5433/rx");
        assert!(!format!("{t:?}").contains("secret"));
        assert_eq!(t.config.get_password(), Some(&b"url-secret-pw"[..]));

        let t =
            PgTarget::parse("postgres://op@db.example/x", Some("file-pw"), &env).expect("parses");
        assert_eq!(t.config.get_password(), Some(&b"file-pw"[..]));
        let t = PgTarget::parse("postgres://op@db.example/x", None, &env).expect("parses");
        assert_eq!(t.config.get_password(), Some(&b"env-secret-pw"[..]));
    }

    #[test]
    fn a_url_of_another_kind_or_without_a_user_is_refused_without_echoing_it() {
        let none = |_: &str| None;
        let e = PgTarget::parse("mysql://u:hunter2@h/d", None, &none).expect_err("refused");
        assert!(e.to_string().contains("postgres://"), "{e}");
        assert!(!e.to_string().contains("hunter2"));
        let e = PgTarget::parse("postgres://h/d", None, &none).expect_err("no user");
        assert!(e.to_string().contains("PGUSER"), "{e}");
    }
}
