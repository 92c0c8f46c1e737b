//! Configuration in two steps (style.md): the file is deserialized strictly
//! (unknown keys and wrong types are errors that name the key and the file),
//! then resolved: defaults, the file, `RXSYNC_*` environment overrides,
//! paths made absolute against the file's folder. Reading the environment
//! happens only in `resolve`, which takes it as an argument, so the library
//! itself never reads the process environment.

mod exclusions;
mod identity;
mod providers;
mod review;

pub use exclusions::DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS;

pub use providers::{
    AssertionAlg, AssertionKeySettings, BulkLevel, BulkMatch, BulkSettings, ClientAuth,
    ConsentSettings, DocumentLocation, FetchLimits, Oauth1Consent, Oauth1Settings, Oauth2Grant,
    Oauth2Settings, Provider, ProviderAuth, ProviderKind, RawAuth, RawBulk, RawProvider,
    SecretError, SecretSource,
};
pub use review::{IpRange, PublicUrl, RawReview, ReviewConfig, TlsFiles, parse_listen};

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub database: RawDatabase,
    #[serde(default)]
    pub import: RawImport,
    #[serde(default)]
    pub vault: RawVault,
    #[serde(default)]
    pub sync: RawSync,
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    #[serde(default)]
    pub review: RawReview,
}

/// `[sync]`: the daemon's schedule (`rxsync run`). Durations in seconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    /// How often a link is pulled (a provider's `interval` overrides).
    pub interval: Option<u64>,
    /// Spread of the next run around the interval, as a fraction (0 to 0.5).
    pub jitter: Option<f64>,
    /// Syncs in flight at once, over all providers.
    pub concurrency: Option<usize>,
    /// First wait after a failed sync; doubles per failure in a row.
    pub backoff_base: Option<u64>,
    /// The longest wait after failures.
    pub backoff_max: Option<u64>,
    /// Failures in a row at one provider that pause it (circuit breaker).
    pub breaker_failures: Option<u32>,
    /// How long a tripped provider is paused.
    pub breaker_pause: Option<u64>,
    /// On SIGINT/SIGTERM, how long in-flight syncs may take to finish.
    pub grace: Option<u64>,
    /// Days before a link's grant ends that `link_expiring` is raised.
    pub link_expiring_days: Option<u32>,
    /// How long a sync's claim on its link lasts unless renewed; a worker
    /// that stopped renewing loses the link to another after this.
    pub lease: Option<u64>,
    /// How often a running sync renews its lease (below `lease`).
    pub heartbeat: Option<u64>,
}

/// `[vault]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVault {
    /// The key file (32 random bytes, base64), created with mode 0600 on
    /// first use when `RXSYNC_KEY` is not set. Relative to the
    /// configuration file's folder; default: beside the database.
    pub key_file: Option<PathBuf>,
}

/// `[database]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// The SQLite file, relative to the configuration file's folder.
    pub path: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://user@host/db`) instead of the
    /// SQLite file: every command, the daemon and the review app use it.
    pub url: Option<String>,
    /// A file whose first line is the PostgreSQL password (when the URL
    /// has none), relative to the configuration file's folder.
    pub password_file: Option<PathBuf>,
}

/// `[database] url` (or `RXSYNC_DATABASE_URL`), resolved: a PostgreSQL
/// database. The URL may hold a password, so `Debug` never shows it.
#[derive(Clone, PartialEq)]
pub struct DatabaseUrl {
    /// The URL as written.
    pub url: String,
    /// `[database] password_file`, made absolute.
    pub password_file: Option<PathBuf>,
    /// Where the URL came from, for messages: the file or the variable.
    pub origin: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("url", &"<not shown>")
            .field("password_file", &self.password_file)
            .field("origin", &self.origin)
            .finish()
    }
}

/// `[import]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImport {
    /// Documents larger than this are refused before parsing.
    pub max_document_bytes: Option<u64>,
    /// Regimens with more items raise `too_many`.
    pub max_regimen_items: Option<usize>,
    /// Established Pharmacologic Classes (`Vitamin D [EPC]`) that raise no
    /// `therapeutic_duplicate`; replaces the default list.
    pub therapeutic_class_exclusions: Option<Vec<String>>,
    /// Days after a fill's supply ended before a drug known only from
    /// claims is `completed`.
    pub claims_completed_after: Option<u32>,
}

/// The configuration rxsync runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the configuration came from (None: built-in defaults).
    pub file: Option<PathBuf>,
    pub database_path: PathBuf,
    /// `[database] url` / `RXSYNC_DATABASE_URL`: PostgreSQL instead of
    /// `database_path` (None: the SQLite file, the default).
    pub database_url: Option<DatabaseUrl>,
    pub max_document_bytes: u64,
    pub max_regimen_items: usize,
    /// `[import] therapeutic_class_exclusions`, else the default list.
    pub therapeutic_class_exclusions: Vec<String>,
    /// `[import] claims_completed_after`, in days.
    pub claims_completed_after: u32,
    /// The vault's key file (None: beside the database, `<database>.key`).
    pub key_file: Option<PathBuf>,
    pub providers: Vec<Provider>,
    pub sync: SyncSettings,
    /// `[review]`: the clinician review web application.
    pub review: ReviewConfig,
}

/// The daemon's schedule, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    pub interval: std::time::Duration,
    pub jitter: f64,
    pub concurrency: usize,
    pub backoff_base: std::time::Duration,
    pub backoff_max: std::time::Duration,
    pub breaker_failures: u32,
    pub breaker_pause: std::time::Duration,
    pub grace: std::time::Duration,
    /// `[sync] link_expiring_days`: how many days before a link's grant
    /// ends a `link_expiring` exception is raised (default 14).
    pub link_expiring_days: u32,
    /// `[sync] lease`: how long a sync's claim on its link lasts unless its
    /// heartbeat renews it (default 15 minutes). A worker killed, frozen or
    /// cut off mid-sync loses its links to another worker after this.
    pub lease: std::time::Duration,
    /// `[sync] heartbeat`: how often a running sync renews its lease
    /// (default a third of `lease`; always below it).
    pub heartbeat: std::time::Duration,
}

/// `[sync] lease` when the file says nothing.
const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Default for SyncSettings {
    fn default() -> SyncSettings {
        use std::time::Duration;
        SyncSettings {
            interval: Duration::from_secs(6 * 3600),
            jitter: 0.1,
            concurrency: 16,
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(6 * 3600),
            breaker_failures: 5,
            breaker_pause: Duration::from_secs(300),
            grace: Duration::from_secs(30),
            link_expiring_days: 14,
            lease: DEFAULT_LEASE,
            heartbeat: DEFAULT_LEASE / 3,
        }
    }
}

impl Config {
    /// Each OAuth 2.0 provider's id and settings.
    pub fn oauth2_providers(&self) -> impl Iterator<Item = (&str, &Oauth2Settings)> {
        self.providers.iter().filter_map(|p| match &p.auth {
            ProviderAuth::Oauth2(o) => Some((p.id.as_str(), &**o)),
            ProviderAuth::Oauth1(_) => None,
        })
    }

    /// The provider with this id.
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id.as_str() == id)
    }

    /// The vault's key file: `[vault] key_file`, else beside the database.
    pub fn key_file(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| {
            let mut name = self.database_path.as_os_str().to_owned();
            name.push(".key");
            PathBuf::from(name)
        })
    }
}

/// Defaults when neither file nor environment says otherwise.
pub const DEFAULT_DATABASE: &str = "rxsync.db";
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_MAX_REGIMEN_ITEMS: usize = 200;
/// Days after a fill's supply ended before a drug known only from claims is
/// `completed` (`[import] claims_completed_after`).
pub const DEFAULT_CLAIMS_COMPLETED_AFTER: u32 = 30;

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named on the command line or in RXSYNC_CONFIG cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Bad TOML, an unknown key or a wrong type (toml's message names the key, line and column).
    #[error("configuration file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A value that parses but makes no sense.
    #[error("configuration {origin}: {key} {problem}")]
    Value {
        origin: String,
        key: &'static str,
        problem: String,
    },
    /// A `[[providers]]` table that makes no sense.
    #[error("configuration {origin}: provider {provider}: {key} {problem}")]
    Provider {
        origin: String,
        provider: String,
        key: String,
        problem: String,
    },
}

/// Parses configuration text (no I/O). `path` names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Where the configuration file is: `--config`, then RXSYNC_CONFIG, then
/// `./config.toml` when it exists. The bool says whether the file must exist.
pub fn locate(
    flag: Option<&Path>,
    env_config: Option<&str>,
    cwd: &Path,
) -> Option<(PathBuf, bool)> {
    if let Some(p) = flag {
        return Some((cwd.join(p), true));
    }
    if let Some(p) = env_config.filter(|p| !p.is_empty()) {
        return Some((cwd.join(p), true));
    }
    let default = cwd.join("config.toml");
    default.exists().then_some((default, false))
}

/// Resolves a raw configuration against defaults and environment overrides
/// (`RXSYNC_DATABASE_PATH`, `RXSYNC_IMPORT_MAX_DOCUMENT_BYTES`,
/// `RXSYNC_IMPORT_MAX_REGIMEN_ITEMS`); `env` looks a variable up.
pub fn resolve(
    raw: RawConfig,
    file: Option<&Path>,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let base = file
        .and_then(Path::parent)
        .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf);
    let origin = file.map_or_else(|| "defaults".to_string(), |f| f.display().to_string());
    let number = |key: &'static str, var: &str| -> Result<Option<u64>, ConfigError> {
        env(var)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| ConfigError::Value {
                    origin: format!("environment {var}"),
                    key,
                    problem: format!("must be a whole number, not {v:?}"),
                })
            })
            .transpose()
    };
    let database_url = resolve_database_url(&raw.database, &origin, &base, env)?;
    let database_path = match env("RXSYNC_DATABASE_PATH").filter(|v| !v.is_empty()) {
        Some(p) => cwd.join(p),
        None => base.join(
            raw.database
                .path
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATABASE)),
        ),
    };
    let max_document_bytes = number(
        "import.max_document_bytes",
        "RXSYNC_IMPORT_MAX_DOCUMENT_BYTES",
    )?
    .or(raw.import.max_document_bytes)
    .unwrap_or(DEFAULT_MAX_DOCUMENT_BYTES);
    let max_regimen_items = number(
        "import.max_regimen_items",
        "RXSYNC_IMPORT_MAX_REGIMEN_ITEMS",
    )?
    .map(|n| n as usize)
    .or(raw.import.max_regimen_items)
    .unwrap_or(DEFAULT_MAX_REGIMEN_ITEMS);
    let claims_completed_after = match number(
        "import.claims_completed_after",
        "RXSYNC_IMPORT_CLAIMS_COMPLETED_AFTER",
    )? {
        Some(n) => u32::try_from(n).map_err(|_| ConfigError::Value {
            origin: "environment RXSYNC_IMPORT_CLAIMS_COMPLETED_AFTER".into(),
            key: "import.claims_completed_after",
            problem: format!("must be at most {} days", u32::MAX),
        })?,
        None => raw
            .import
            .claims_completed_after
            .unwrap_or(DEFAULT_CLAIMS_COMPLETED_AFTER),
    };
    if max_document_bytes == 0 {
        return Err(ConfigError::Value {
            origin,
            key: "import.max_document_bytes",
            problem: "must be above 0".into(),
        });
    }
    if max_regimen_items == 0 {
        return Err(ConfigError::Value {
            origin,
            key: "import.max_regimen_items",
            problem: "must be above 0".into(),
        });
    }
    let therapeutic_class_exclusions = match raw.import.therapeutic_class_exclusions {
        Some(list) => class_list(list, &origin)?,
        None => DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS
            .iter()
            .map(|c| c.to_string())
            .collect(),
    };
    let sync = resolve_sync(&raw.sync, &origin)?;
    let providers = providers::resolve_providers(
        raw.providers,
        &origin,
        &base,
        max_document_bytes,
        sync.interval,
    )?;
    let review = review::resolve_review(raw.review, &origin, &base, env)?;
    Ok(Config {
        file: file.map(Path::to_path_buf),
        database_path,
        database_url,
        max_document_bytes,
        max_regimen_items,
        therapeutic_class_exclusions,
        claims_completed_after,
        key_file: raw.vault.key_file.map(|f| base.join(f)),
        providers,
        sync,
        review,
    })
}

/// `[database] url` and `password_file`, `RXSYNC_DATABASE_URL` first. The
/// URL's scheme is checked here; the rest when it is used
/// (`store::pg::PgTarget`). Errors never quote the URL (it may hold a password).
fn resolve_database_url(
    raw: &RawDatabase,
    origin: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<DatabaseUrl>, ConfigError> {
    let (url, from) = match env("RXSYNC_DATABASE_URL").filter(|v| !v.is_empty()) {
        Some(u) => (u, "environment RXSYNC_DATABASE_URL".to_string()),
        None => match &raw.url {
            Some(u) => (u.clone(), origin.to_string()),
            None => {
                if raw.password_file.is_some() {
                    return Err(ConfigError::Value {
                        origin: origin.to_string(),
                        key: "database.password_file",
                        problem: "is for a PostgreSQL [database] url, and none is set".into(),
                    });
                }
                return Ok(None);
            }
        },
    };
    if !crate::store::pg::is_postgres_url(&url) {
        return Err(ConfigError::Value {
            origin: from,
            key: "database.url",
            problem:
                "must be a postgres:// or postgresql:// URL (the SQLite file is [database] path)"
                    .into(),
        });
    }
    Ok(Some(DatabaseUrl {
        url,
        password_file: raw.password_file.as_ref().map(|p| base.join(p)),
        origin: from,
    }))
}

impl Config {
    /// How imports turn records into a regimen, from `[import]`. `today`
    /// is left for the import to set from its sync's start.
    pub fn normalize_options(&self) -> crate::normalize::Options {
        crate::normalize::Options {
            max_regimen_items: self.max_regimen_items,
            therapeutic_class_exclusions: self.therapeutic_class_exclusions.clone(),
            claims_completed_after: self.claims_completed_after,
            today: None,
        }
    }
}

/// The configured class exclusions, trimmed. Each must be an Established
/// Pharmacologic Class as the FDA writes it (ending in `[EPC]`): any other
/// text would match no class and exclude nothing, silently.
fn class_list(list: Vec<String>, origin: &str) -> Result<Vec<String>, ConfigError> {
    list.into_iter()
        .map(|c| {
            let c = c.trim();
            if c.ends_with("[EPC]") {
                Ok(c.to_string())
            } else {
                Err(ConfigError::Value {
                    origin: origin.to_string(),
                    key: "import.therapeutic_class_exclusions",
                    problem: format!(
                        "entry {c:?} is not an Established Pharmacologic Class as the FDA writes it (like \"Vitamin D [EPC]\")"
                    ),
                })
            }
        })
        .collect()
}

fn resolve_sync(raw: &RawSync, origin: &str) -> Result<SyncSettings, ConfigError> {
    use std::time::Duration;
    let d = SyncSettings::default();
    let err = |key: &'static str, problem: &str| ConfigError::Value {
        origin: origin.to_string(),
        key,
        problem: problem.to_string(),
    };
    let secs = |key: &'static str, v: Option<u64>, default: Duration| match v {
        Some(0) => Err(err(key, "must be above 0")),
        Some(s) => Ok(Duration::from_secs(s)),
        None => Ok(default),
    };
    let jitter = raw.jitter.unwrap_or(d.jitter);
    if !(0.0..=0.5).contains(&jitter) {
        return Err(err("sync.jitter", "must be between 0 and 0.5"));
    }
    let concurrency = raw.concurrency.unwrap_or(d.concurrency);
    if !(1..=1024).contains(&concurrency) {
        return Err(err("sync.concurrency", "must be between 1 and 1024"));
    }
    let s = SyncSettings {
        interval: secs("sync.interval", raw.interval, d.interval)?,
        jitter,
        concurrency,
        backoff_base: secs("sync.backoff_base", raw.backoff_base, d.backoff_base)?,
        backoff_max: secs("sync.backoff_max", raw.backoff_max, d.backoff_max)?,
        breaker_failures: match raw.breaker_failures {
            Some(0) => return Err(err("sync.breaker_failures", "must be above 0")),
            Some(n) => n,
            None => d.breaker_failures,
        },
        breaker_pause: secs("sync.breaker_pause", raw.breaker_pause, d.breaker_pause)?,
        grace: raw.grace.map_or(d.grace, Duration::from_secs),
        link_expiring_days: raw.link_expiring_days.unwrap_or(d.link_expiring_days),
        lease: secs("sync.lease", raw.lease, d.lease)?,
        heartbeat: d.heartbeat,
    };
    // Without its own value the heartbeat follows the lease: three beats
    // per lease, so one late or lost renewal does not lose the link.
    let s = SyncSettings {
        heartbeat: secs("sync.heartbeat", raw.heartbeat, s.lease / 3)?,
        ..s
    };
    if s.heartbeat >= s.lease {
        return Err(err(
            "sync.heartbeat",
            &format!(
                "must be below sync.lease ({} s): a lease must be renewed before it runs out",
                s.lease.as_secs()
            ),
        ));
    }
    if s.backoff_max < s.backoff_base {
        return Err(err(
            "sync.backoff_max",
            "must not be below sync.backoff_base",
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key_and_file() {
        let path = Path::new("/etc/rxsync/config.toml");
        let rows = [
            ("[import]\nmax_regimen_itemz = 3\n", "max_regimen_itemz"),
            (
                "[import]\nmax_regimen_items = \"many\"\n",
                "max_regimen_items",
            ),
            ("[databse]\npath = \"x.db\"\n", "databse"),
            ("[import\n", "line 1"),
        ];
        for (text, needle) in rows {
            let err = parse(text, path).expect_err(text).to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.contains("/etc/rxsync/config.toml"), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_postgres_url_comes_from_the_file_or_the_environment_and_is_never_shown() {
        let file = Path::new("/srv/rx/config.toml");
        let raw = parse(
            "[database]\nurl = \"postgres://rx:file-secret@db/rx\"\npassword_file = \"pg.pw\"\n",
            file,
        )
        .expect("valid");
        let c = resolve(raw, Some(file), Path::new("/home/op"), &no_env).expect("resolves");
        let url = c.database_url.as_ref().expect("a url");
        assert_eq!(url.url, "postgres://rx:file-secret@db/rx");
        assert_eq!(
            url.password_file.as_deref(),
            Some(Path::new("/srv/rx/pg.pw"))
        );
        assert_eq!(url.origin, "/srv/rx/config.toml");
        assert!(
            !format!("{c:?}").contains("file-secret"),
            "Debug shows no URL"
        );
        assert_eq!(
            c.database_path,
            Path::new("/srv/rx/rxsync.db"),
            "path keeps its default"
        );

        let env =
            |k: &str| (k == "RXSYNC_DATABASE_URL").then(|| "postgresql://rx@h/db".to_string());
        let c = resolve(RawConfig::default(), None, Path::new("/"), &env).expect("resolves");
        let url = c.database_url.expect("from the environment");
        assert_eq!(url.origin, "environment RXSYNC_DATABASE_URL");

        let c = resolve(RawConfig::default(), None, Path::new("/"), &no_env).expect("resolves");
        assert_eq!(c.database_url, None, "SQLite is the default");

        for (text, key) in [
            (
                "[database]\nurl = \"sqlite:rx.db\"\n",
                "database.url must be a postgres://",
            ),
            (
                "[database]\npassword_file = \"pw\"\n",
                "database.password_file is for a PostgreSQL",
            ),
        ] {
            let raw = parse(text, file).expect("valid TOML");
            let err = resolve(raw, Some(file), Path::new("/"), &no_env)
                .expect_err(text)
                .to_string();
            assert!(
                err.contains(key) && err.contains("/srv/rx/config.toml"),
                "{err}"
            );
        }
    }

    #[test]
    fn paths_resolve_against_the_file_and_env_overrides_win() {
        let raw = parse(
            "[database]\npath = \"data/rx.db\"\n[import]\nmax_regimen_items = 7\n",
            Path::new("c.toml"),
        )
        .expect("valid");
        let file = Path::new("/srv/rx/config.toml");
        let c = resolve(raw, Some(file), Path::new("/home/op"), &no_env).expect("resolves");
        assert_eq!(c.database_path, Path::new("/srv/rx/data/rx.db"));
        assert_eq!(c.max_regimen_items, 7);
        assert_eq!(c.max_document_bytes, DEFAULT_MAX_DOCUMENT_BYTES);
        assert_eq!(c.claims_completed_after, DEFAULT_CLAIMS_COMPLETED_AFTER);

        let env = |k: &str| match k {
            "RXSYNC_IMPORT_MAX_REGIMEN_ITEMS" => Some("9".to_string()),
            "RXSYNC_DATABASE_PATH" => Some("other.db".to_string()),
            _ => None,
        };
        let c = resolve(
            RawConfig::default(),
            Some(file),
            Path::new("/home/op"),
            &env,
        )
        .expect("resolves");
        assert_eq!(c.max_regimen_items, 9);
        assert_eq!(c.database_path, Path::new("/home/op/other.db"));
        let raw = parse(
            "[import]\nclaims_completed_after = 60\n",
            Path::new("c.toml"),
        )
        .expect("valid");
        let c = resolve(raw, Some(file), Path::new("/home/op"), &no_env).expect("resolves");
        assert_eq!(c.normalize_options().claims_completed_after, 60);

        let bad = |k: &str| (k == "RXSYNC_IMPORT_MAX_DOCUMENT_BYTES").then(|| "lots".to_string());
        let err = resolve(RawConfig::default(), None, Path::new("/"), &bad)
            .expect_err("bad env")
            .to_string();
        assert!(
            err.contains("RXSYNC_IMPORT_MAX_DOCUMENT_BYTES") && err.contains("lots"),
            "{err}"
        );
    }

    #[test]
    fn the_lease_and_its_heartbeat_default_follow_each_other_and_are_checked() {
        use std::time::Duration;
        let file = Path::new("/srv/rx/config.toml");
        // (rule, [sync] text, (lease, heartbeat) in seconds or the error's text)
        type Row = (&'static str, &'static str, Result<(u64, u64), &'static str>);
        let rows: [Row; 7] = [
            ("defaults: 15 minutes, a third of it", "", Ok((900, 300))),
            (
                "the heartbeat follows a set lease",
                "lease = 60",
                Ok((60, 20)),
            ),
            ("both set", "lease = 60\nheartbeat = 50", Ok((60, 50))),
            ("a lease of 0", "lease = 0", Err("sync.lease")),
            ("a heartbeat of 0", "heartbeat = 0", Err("sync.heartbeat")),
            (
                "a heartbeat as long as the lease",
                "lease = 60\nheartbeat = 60",
                Err("sync.heartbeat"),
            ),
            (
                "a heartbeat above the default lease",
                "heartbeat = 1000",
                Err("must be below sync.lease (900 s)"),
            ),
        ];
        for (rule, text, expected) in rows {
            let raw = parse(&format!("[sync]\n{text}\n"), file).expect(rule);
            let got = resolve(raw, Some(file), Path::new("/"), &no_env);
            match (got, expected) {
                (Ok(c), Ok((lease, heartbeat))) => {
                    assert_eq!(c.sync.lease, Duration::from_secs(lease), "{rule}");
                    assert_eq!(c.sync.heartbeat, Duration::from_secs(heartbeat), "{rule}");
                }
                (Err(e), Err(needle)) => {
                    let e = e.to_string();
                    assert!(e.contains(needle), "{rule}: {e}");
                    assert!(e.contains("/srv/rx/config.toml"), "{rule}: {e}");
                }
                (got, expected) => panic!("{rule}: {got:?} is not {expected:?}"),
            }
        }
    }

    #[test]
    fn therapeutic_class_exclusions_default_replace_and_must_name_an_epc() {
        let file = Path::new("/srv/rx/config.toml");
        // (rule, [import] text, the list resolved or the error's text)
        let defaults: Vec<String> = DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS
            .iter()
            .map(|c| c.to_string())
            .collect();
        type Row = (
            &'static str,
            &'static str,
            Result<Vec<String>, &'static str>,
        );
        let rows: Vec<Row> = vec![
            ("unset: the default list", "", Ok(defaults)),
            (
                "set: replaces the default",
                "therapeutic_class_exclusions = [\" Vitamin D [EPC] \"]",
                Ok(vec!["Vitamin D [EPC]".to_string()]),
            ),
            (
                "empty: nothing excluded",
                "therapeutic_class_exclusions = []",
                Ok(vec![]),
            ),
            (
                "not an EPC",
                "therapeutic_class_exclusions = [\"Vitamin D\"]",
                Err("import.therapeutic_class_exclusions"),
            ),
        ];
        for (rule, text, want) in rows {
            let raw = parse(&format!("[import]\n{text}\n"), file).expect(rule);
            let got = resolve(raw, Some(file), Path::new("/"), &no_env);
            match (got, want) {
                (Ok(c), Ok(list)) => {
                    assert_eq!(c.therapeutic_class_exclusions, list, "rule: {rule}");
                    assert_eq!(
                        c.normalize_options().therapeutic_class_exclusions,
                        list,
                        "rule: {rule}"
                    );
                }
                (Err(e), Err(needle)) => {
                    let e = e.to_string();
                    assert!(
                        e.contains(needle) && e.contains("config.toml"),
                        "rule: {rule}: {e}"
                    );
                }
                (got, want) => panic!("rule: {rule}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            crate::normalize::Options::default().therapeutic_class_exclusions,
            DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS
        );
    }

    #[test]
    fn the_repository_default_config_is_valid() {
        let text = include_str!("../../config.toml");
        let raw = parse(text, Path::new("config.toml")).expect("config.toml parses");
        resolve(
            raw,
            Some(Path::new("/x/config.toml")),
            Path::new("/x"),
            &no_env,
        )
        .expect("config.toml resolves");
    }
}
