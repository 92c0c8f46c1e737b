//! A benchmark home: the providers' config.toml (as tests/it/pull/harness.rs
//! writes it, secrets through environment variables), the vault key, and
//! template databases set up through the library — the sample dictionary
//! loaded by the code `rxsync dict import` runs, patients, and links whose
//! tokens come from the sandbox's admin API — then copied for every
//! measured run, so each run starts from the same fresh database.

use crate::sandbox::Sandbox;
use rxsync::config::{self, Config};
use rxsync::dict::fda;
use rxsync::domain::{LinkId, PatientId, ProviderId};
use rxsync::store::{LinkSecrets, NewLink, NewPatient, Store};
use rxsync::vault::VaultKey;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The demo secrets (samples/sandbox/README.md), passed to rxsync through
/// the environment as a deployment would.
pub const SECRETS: &[(&str, &str)] = &[
    ("SANDBOX_HMAC_HEADER_SECRET", "demo-hmac-header-secret"),
    ("SANDBOX_CLIENT_SECRET", "demo-client-secret"),
];

/// One configured provider of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    pub id: &'static str,
    pub label: &'static str,
    oauth2: bool,
}

/// OAuth 1.0a, HMAC-SHA1, oauth parameters in the Authorization header; a CCR document.
pub const OAUTH1_CCR: Provider = Provider {
    id: "oauth1-ccr",
    label: "OAuth 1.0a HMAC-SHA1 header, CCR",
    oauth2: false,
};
/// OAuth 2.0 bearer in the header; FHIR MedicationRequest search, 2 pages of 10.
pub const OAUTH2_FHIR: Provider = Provider {
    id: "oauth2-fhir",
    label: "OAuth 2.0 bearer header, FHIR 2 pages",
    oauth2: true,
};
/// OAuth 2.0 bearer in the header; the CCR document (one request, like OAuth 1.0a's).
pub const OAUTH2_CCR: Provider = Provider {
    id: "oauth2-ccr",
    label: "OAuth 2.0 bearer header, CCR",
    oauth2: true,
};

/// config.toml for the sandbox at `base`, with `[sync] concurrency`. The
/// interval is 1 s without jitter so that a second pass finds every link
/// due again (the steady-state figure); nothing else runs between passes.
pub fn config_text(base: &str, concurrency: usize) -> String {
    format!(
        r#"[sync]
concurrency = {concurrency}
interval = 1
jitter = 0.0

[[providers]]
id = "oauth1-ccr"
kind = "ccr"
base_url = "{base}/"
document_url = "ccr/{{patient}}"
[providers.auth]
scheme = "oauth1"
consumer_key = "demo-hmac-header"
consumer_secret_env = "SANDBOX_HMAC_HEADER_SECRET"
signature_method = "HMAC-SHA1"
placement = "header"

[[providers]]
id = "oauth2-fhir"
kind = "fhir"
base_url = "{base}/fhir"
resources = ["MedicationRequest"]
[providers.auth]
scheme = "oauth2"
token_url = "{base}/oauth2/token"
client_id = "demo-client"
client_secret_env = "SANDBOX_CLIENT_SECRET"
placement = "header"

[[providers]]
id = "oauth2-ccr"
kind = "ccr"
base_url = "{base}/"
document_url = "ccr/{{patient}}"
[providers.auth]
scheme = "oauth2"
token_url = "{base}/oauth2/token"
client_id = "demo-client"
client_secret_env = "SANDBOX_CLIENT_SECRET"
placement = "header"
"#
    )
}

/// Writes config.toml into `dir` and resolves it as the CLI does.
pub fn write_config(dir: &Path, base: &str, concurrency: usize) -> (PathBuf, Config) {
    let path = dir.join("config.toml");
    let text = config_text(base, concurrency);
    std::fs::write(&path, &text).expect("write config.toml");
    let raw = config::parse(&text, &path).expect("config parses");
    let env = |k: &str| {
        SECRETS
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    };
    let resolved = config::resolve(raw, Some(&path), dir, &env).expect("config resolves");
    (path, resolved)
}

/// The environment lookup the in-process puller uses for secrets.
pub fn secrets_env() -> rxsync::pull::EnvLookup {
    Arc::new(|k: &str| {
        SECRETS
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    })
}

/// A fresh vault key and its base64 text (for RXSYNC_KEY).
pub fn vault_key() -> (Arc<VaultKey>, SecretString) {
    let (key, text) = VaultKey::generate();
    (Arc::new(key), text)
}

/// `RXSYNC_KEY` for a child process.
pub fn key_env(text: &SecretString) -> String {
    text.expose_secret().to_string()
}

/// A link in a template database.
#[derive(Debug, Clone)]
pub struct Linked {
    pub link: LinkId,
    pub patient: PatientId,
    /// The patient's id at the sandbox.
    pub remote: String,
    pub provider: Provider,
}

/// Creates a template database at `path`: the sample dictionary, patients
/// `P000000…` and, for patient `i`, a link to each provider `links_of(i)`
/// names, with tokens from the sandbox for remote patient `bench-i`.
pub fn template(
    path: &Path,
    sandbox: &Sandbox,
    key: &VaultKey,
    patients: usize,
    links_of: impl Fn(usize) -> Vec<Provider>,
) -> Vec<Linked> {
    let mut store = Store::open(path).expect("template store");
    load_sample_dictionary(&mut store);
    let mut out = Vec::new();
    let now = chrono::Utc::now();
    for i in 0..patients {
        let patient = PatientId::parse(&format!("P{i:06}")).expect("patient id");
        store
            .add_patient(&NewPatient::with_id(patient.clone()), "bench")
            .expect("patient");
        let remote = format!("bench-{i:06}");
        for provider in links_of(i) {
            let (secrets, expires_at) = if provider.oauth2 {
                let (access, refresh, expires_in) = sandbox.oauth2_grant("demo-client", &remote);
                (
                    LinkSecrets::Oauth2 {
                        access_token: SecretString::from(access),
                        refresh_token: Some(SecretString::from(refresh)),
                    },
                    Some(now + chrono::Duration::seconds(expires_in)),
                )
            } else {
                let (token, secret) = sandbox.oauth1_token("demo-hmac-header", &remote);
                (
                    LinkSecrets::Oauth1 {
                        token: SecretString::from(token),
                        token_secret: SecretString::from(secret),
                    },
                    None,
                )
            };
            let (link, _) = store
                .add_link(
                    &NewLink {
                        patient: &patient,
                        provider: &ProviderId::parse(provider.id).expect("provider id"),
                        remote_patient: &remote,
                        secrets,
                        expires_at,
                        scope: None,
                        grant_expires_at: None,
                    },
                    key,
                    "bench",
                )
                .expect("link");
            out.push(Linked {
                link,
                patient: patient.clone(),
                remote: remote.clone(),
                provider,
            });
        }
    }
    // Dropping the last connection checkpoints the WAL into the file, so
    // copying the file alone copies the whole database.
    drop(store);
    out
}

/// A fresh copy of the template for one run.
pub fn fresh_copy(template: &Path, to: &Path) {
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(to, ext));
    }
    std::fs::copy(template, to).expect("copy the template database");
}

/// What undoes each SQLite migration the benchmark knows how to undo, by
/// the version it made: for `RXSYNC_BENCH_AGAINST_SCHEMA`, a build from
/// before that migration (which refuses a database newer than it knows).
/// The rows are the template's; only the migration's own tables and
/// columns go.
const DOWNGRADES: &[(usize, &str)] = &[
    (
        21,
        "DROP TABLE provider_breakers; DROP TABLE provider_slots; \
         ALTER TABLE links DROP COLUMN lease_taken_from;",
    ),
    (
        22,
        "ALTER TABLE links DROP COLUMN refresh_holder; \
         ALTER TABLE links DROP COLUMN refresh_until;",
    ),
];

/// Takes a fresh copy back to schema version `to` (see `DOWNGRADES`).
pub fn downgrade(db: &Path, to: usize) {
    let conn = rusqlite::Connection::open(db).expect("open the copy");
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    for v in (to + 1..=version).rev() {
        let (_, sql) = DOWNGRADES
            .iter()
            .find(|(n, _)| *n == v)
            .unwrap_or_else(|| panic!("the benchmark cannot undo SQLite migration {v}"));
        conn.execute_batch(sql)
            .unwrap_or_else(|e| panic!("undo migration {v}: {e}"));
        conn.pragma_update(None, "user_version", v - 1)
            .expect("user_version");
    }
}

fn with_suffix(p: &Path, ext: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// The sample FDA directory, read and loaded as `rxsync dict import --fda samples/ndc` does.
fn load_sample_dictionary(store: &mut Store) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/ndc");
    let products = std::fs::read(dir.join("product.txt")).expect("samples/ndc/product.txt");
    let packages = std::fs::read(dir.join("package.txt")).expect("samples/ndc/package.txt");
    let (products, _) = fda::read_products(&products).expect("sample products");
    let (packages, _) = fda::read_packages(&packages).expect("sample packages");
    store
        .replace_dictionary(&products, &packages, &dir.display().to_string(), "bench")
        .expect("load the dictionary");
}
