//! Resolving the configuration and opening the store for a command.

use super::{Failure, usage};
use anyhow::Context as _;
use rxsync::config::{self, Config};
use rxsync::store::pg::PgTarget;
use rxsync::store::{Database, Store};
use std::path::Path;
use std::path::PathBuf;

/// The global flags.
#[derive(Debug, Clone)]
pub struct Global {
    pub config: Option<PathBuf>,
    pub db: Option<PathBuf>,
}

/// What a command runs with.
pub struct Context {
    pub config: Config,
    pub store: Store,
    /// Where `store` lives (a command that opens more connections opens them here).
    pub database: Database,
}

impl Global {
    /// Reads and resolves the configuration (errors are usage errors: exit 2).
    pub fn config(&self) -> Result<Config, Failure> {
        self.config_any_engine()
    }

    /// The database the configuration names: PostgreSQL when `[database]
    /// url` (or `RXSYNC_DATABASE_URL`) is set and no `--db` overrides it,
    /// else the SQLite file.
    pub fn database(&self, config: &Config) -> Result<Database, Failure> {
        match &config.database_url {
            Some(url) if self.db.is_none() => Ok(Database::Postgres(Box::new(pg_target(
                &url.url,
                url.password_file.as_deref(),
            )?))),
            _ => Ok(Database::Sqlite(config.database_path.clone())),
        }
    }

    /// The configuration, whichever engine it names.
    pub fn config_any_engine(&self) -> Result<Config, Failure> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let env_config = std::env::var("RXSYNC_CONFIG").ok();
        let located = config::locate(self.config.as_deref(), env_config.as_deref(), &cwd);
        let (raw, file) = match located {
            Some((path, _required)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| config::ConfigError::Read {
                        path: path.clone(),
                        source,
                    })
                    .map_err(|e| Failure::Usage(e.into()))?;
                (
                    config::parse(&text, &path).map_err(|e| Failure::Usage(e.into()))?,
                    Some(path),
                )
            }
            None => (config::RawConfig::default(), None),
        };
        let env = |k: &str| std::env::var(k).ok();
        let mut resolved = config::resolve(raw, file.as_deref(), &cwd, &env)
            .map_err(|e| Failure::Usage(e.into()))?;
        if let Some(db) = &self.db {
            resolved.database_path = cwd.join(db);
        }
        Ok(resolved)
    }

    /// Resolves the configuration and opens the database.
    pub fn open(&self) -> Result<Context, Failure> {
        let config = self.config()?;
        let database = self.database(&config)?;
        if let Database::Postgres(_) = &database {
            let store = Store::connect(&database)?;
            return Ok(Context {
                config,
                store,
                database,
            });
        }
        if let Some(parent) = config.database_path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            return Err(usage(format!(
                "the database folder {} does not exist (set [database] path or --db)",
                parent.display()
            )));
        }
        let new = !config.database_path.exists();
        let store = Store::open(&config.database_path)?;
        if new {
            eprintln!(
                "note: created the database {} ({})",
                config.database_path.display(),
                where_from(self, &config)
            );
        }
        Ok(Context {
            config,
            store,
            database,
        })
    }

    /// Like `open`, for commands that only read: a database that does not
    /// exist is not created (an empty one would show an empty queue as if
    /// all were well); the error says which path was looked for and how to
    /// point at another.
    pub fn open_existing(&self) -> Result<Context, Failure> {
        let config = self.config()?;
        if let Database::Sqlite(_) = self.database(&config)?
            && !config.database_path.exists()
        {
            return Err(usage(format!(
                "no database at {} ({}); point at one with --db PATH, --config FILE or RXSYNC_CONFIG, or create it with a command that writes (rxsync patient add, rxsync dict import, rxsync import)",
                config.database_path.display(),
                where_from(self, &config)
            )));
        }
        self.open()
    }
}

/// A PostgreSQL target from a URL, the password file and the PG* variables.
pub fn pg_target(url: &str, password_file: Option<&Path>) -> Result<PgTarget, Failure> {
    let password = match password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                usage(format!(
                    "cannot read [database] password_file {}: {e}",
                    path.display()
                ))
            })?;
            Some(text.lines().next().unwrap_or("").to_string())
        }
        None => None,
    };
    let env = |k: &str| std::env::var(k).ok();
    PgTarget::parse(url, password.as_deref(), &env).map_err(|e| Failure::Usage(e.into()))
}

/// Where the database path came from, for people.
fn where_from(global: &Global, config: &Config) -> String {
    if global.db.is_some() {
        "from --db".to_string()
    } else if let Some(file) = &config.file {
        format!("[database] path of {}", file.display())
    } else {
        "the default: no --db, --config, RXSYNC_CONFIG, RXSYNC_DATABASE_PATH or ./config.toml"
            .to_string()
    }
}

impl Context {
    /// The vault key: `RXSYNC_KEY`, else the key file (created on first use,
    /// with a note on stderr saying where and that it must be kept).
    pub fn vault_key(&self) -> Result<rxsync::vault::VaultKey, Failure> {
        let env = std::env::var("RXSYNC_KEY").ok();
        let file = self.config.key_file();
        let (key, source) = rxsync::vault::VaultKey::load(env.as_deref(), &file)
            .map_err(|e| Failure::Failed(e.into()))?;
        if let rxsync::vault::KeySource::Created(path) = source {
            eprintln!(
                "note: created the vault key file {} (mode 0600). Back it up: the stored tokens cannot be read without it.",
                path.display()
            );
        }
        Ok(key)
    }

    /// A puller for the configured providers, and the store, for commands
    /// that talk to providers.
    pub fn puller(self) -> Result<(rxsync::pull::Puller, Store), Failure> {
        let key = self.vault_key()?;
        let env: rxsync::pull::EnvLookup = std::sync::Arc::new(|k: &str| std::env::var(k).ok());
        let puller = rxsync::pull::Puller::new(
            std::sync::Arc::new(self.config),
            std::sync::Arc::new(key),
            env,
        )
        .map_err(|e| Failure::Failed(e.into()))?;
        Ok((puller, self.store))
    }
}

/// A tokio runtime for commands that talk to providers.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot start the async runtime: {e}")))
}
