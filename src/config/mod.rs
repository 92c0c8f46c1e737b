//! Configuration in two steps (style.md): the file is deserialized strictly
//! (unknown keys and wrong types are errors that name the key and the file),
//! then resolved: defaults, the file, `RXSYNC_*` environment overrides,
//! paths made absolute against the file's folder. Reading the environment
//! happens only in `resolve`, which takes it as an argument, so the library
//! itself never reads the process environment.

mod providers;
mod review;

pub use providers::{
    ClientAuth, DocumentLocation, FetchLimits, Oauth1Settings, Oauth2Settings, Provider,
    ProviderAuth, ProviderKind, RawAuth, RawProvider, SecretError, SecretSource,
};
pub use review::{RawReview, ReviewConfig, TlsFiles, parse_listen};

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
    pub providers: Vec<RawProvider>,
    #[serde(default)]
    pub review: RawReview,
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
}

/// `[import]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImport {
    /// Documents larger than this are refused before parsing.
    pub max_document_bytes: Option<u64>,
    /// Regimens with more items raise `too_many`.
    pub max_regimen_items: Option<usize>,
}

/// The configuration rxsync runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the configuration came from (None: built-in defaults).
    pub file: Option<PathBuf>,
    pub database_path: PathBuf,
    pub max_document_bytes: u64,
    pub max_regimen_items: usize,
    /// The vault's key file (None: beside the database, `<database>.key`).
    pub key_file: Option<PathBuf>,
    pub providers: Vec<Provider>,
    /// `[review]`: the clinician review web application.
    pub review: ReviewConfig,
}

impl Config {
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
    let providers =
        providers::resolve_providers(raw.providers, &origin, &base, max_document_bytes)?;
    let review = review::resolve_review(raw.review, &origin, &base, env)?;
    Ok(Config {
        file: file.map(Path::to_path_buf),
        database_path,
        max_document_bytes,
        max_regimen_items,
        key_file: raw.vault.key_file.map(|f| base.join(f)),
        providers,
        review,
    })
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
