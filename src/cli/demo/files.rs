//! The files `rxsync demo` writes in its folder: the sandbox's data, the
//! provider secrets (mode 0600, under `DIR/secrets/`) and the
//! `config.toml` that names them with `*_file` keys, so that every
//! follow-up command works from a fresh shell with nothing in the
//! environment.

use super::{DEMO_CCR, DEMO_FHIR, remote};
use crate::cli::Failure;
use anyhow::Context as _;
use rxsync::sandbox::{self, SandboxConfig};
use secrecy::ExposeSecret as _;
use std::net::SocketAddr;
use std::path::Path;

/// The folder, under the demo's, of the provider secrets.
const SECRETS: &str = "secrets";

/// The demo's providers that sign with a secret, the key of its `_file`
/// setting, and the sandbox consumer or client whose secret it is.
const SECRET_FILES: [(&str, Holder); 4] = [
    ("demo-hmac-header", Holder::Consumer),
    ("demo-hmac-query", Holder::Consumer),
    ("demo-client", Holder::Client),
    ("demo-norotate", Holder::Client),
];

#[derive(Clone, Copy)]
enum Holder {
    Consumer,
    Client,
}

/// The RSA private key the `demo-ccr-rsa` provider signs with.
const RSA_KEY_FILE: &str = "demo-rsa-key.pem";

/// The sandbox's data: its configuration (persisting its tokens) and the
/// two sample documents with exceptions for the first two patients.
pub fn write_sandbox_data(dir: &Path) -> Result<(), Failure> {
    let w = |rel: &str, bytes: &[u8]| -> Result<(), Failure> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        Ok(())
    };
    w(
        "sandbox.toml",
        b"# Written by `rxsync demo`: the built-in demo consumers, clients and redirects,\n# with issued tokens kept in state.json across restarts.\npersist_state = true\n",
    )?;
    w(&format!("ccr/{}.xml", remote("demo-ccr-1")), DEMO_CCR)?;
    w(&format!("fhir/{}.json", remote("demo-fhir-1")), DEMO_FHIR)?;
    Ok(())
}

/// Writes the secrets the demo's providers need, each in its own file of
/// `DIR/secrets/` (the folder 0700, the files 0600): the values the
/// sandbox (`sandbox`) checks, and the RSA private key.
pub fn write_secrets(dir: &Path, sandbox: &SandboxConfig) -> Result<(), Failure> {
    let folder = dir.join(SECRETS);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    set_mode(&folder, 0o700)?;
    for (name, holder) in SECRET_FILES {
        let secret = match holder {
            Holder::Consumer => sandbox
                .consumers
                .iter()
                .find(|c| c.key == name)
                .and_then(|c| c.secret.as_ref()),
            Holder::Client => sandbox
                .clients
                .iter()
                .find(|c| c.id == name)
                .and_then(|c| c.secret.as_ref()),
        }
        .ok_or_else(|| anyhow::anyhow!("the sandbox has no secret for {name}"))?;
        write_private(
            &folder.join(secret_file(name)),
            secret.expose_secret().as_bytes(),
        )?;
    }
    write_private(
        &folder.join(RSA_KEY_FILE),
        sandbox::DEMO_RSA_PRIVATE_KEY.as_bytes(),
    )
}

/// The file name of a consumer's or client's secret.
fn secret_file(name: &str) -> String {
    format!("{name}.secret")
}

/// Writes `bytes` to `path` readable by the owner only (also when the
/// file was there before with another mode).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    set_mode(path, 0o600)?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(())
}

/// The demo's `config.toml`: the sandbox at `base`, the review app at
/// `review` (also its public URL: invitations point there and consents come
/// back to its `/oauth/callback`), secrets in the files `write_secrets`
/// wrote (paths relative to the configuration's folder).
pub fn demo_config(base: &str, review: &SocketAddr) -> String {
    let secret = |name: &str| format!("{SECRETS}/{}", secret_file(name));
    // Listening on every address, the app is reached on loopback.
    let mut public = *review;
    if public.ip().is_unspecified() {
        public.set_ip(match public.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    // Only a loopback address is written as `listen`: the configuration
    // wants TLS on any other (`rxsync serve` would refuse it), which the
    // demo does not set up. The demo itself serves where it was told.
    let listen = if review.ip().is_loopback() {
        format!("listen = \"{review}\"\n")
    } else {
        String::new()
    };
    format!(
        r#"# Written by `rxsync demo` (rewritten on each run: the sandbox's port may change).
# Use it with: rxsync --config THIS-FILE ...   The provider secrets are the
# sandbox's published demo values, each in a file of {SECRETS}/ (mode 0600)
# beside this one; nothing needs to be set in the environment.

[database]
path = "rxsync.db"

# The review app (rxsync serve / run): invitations are URLs under
# public_url, and the providers' consents come back to public_url/oauth/callback.
[review]
{listen}public_url = "http://{public}"

[import]
max_document_bytes = 16777216
max_regimen_items = 200

[sync]
interval = 600
concurrency = 8

[[providers]]
id = "demo-ccr-hmac-header"
kind = "ccr"
base_url = "{base}/"
document_url = "ccr/{{patient}}"
[providers.auth]
scheme = "oauth1"
consumer_key = "demo-hmac-header"
consumer_secret_file = "{hmac_header}"
signature_method = "HMAC-SHA1"
placement = "header"

[[providers]]
id = "demo-ccr-hmac-query"
kind = "ccr"
base_url = "{base}/"
document_url = "ccr/{{patient}}"
[providers.auth]
scheme = "oauth1"
consumer_key = "demo-hmac-query"
consumer_secret_file = "{hmac_query}"
signature_method = "HMAC-SHA256"
placement = "query"

[[providers]]
id = "demo-ccr-rsa"
kind = "ccr"
base_url = "{base}/"
document_url = "ccr/{{patient}}"
[providers.auth]
scheme = "oauth1"
consumer_key = "demo-rsa"
signature_method = "RSA-SHA1"
rsa_private_key_file = "{SECRETS}/{RSA_KEY_FILE}"
placement = "header"

[[providers]]
id = "demo-fhir-oauth2"
kind = "fhir"
base_url = "{base}/fhir"
[providers.auth]
scheme = "oauth2"
token_url = "{base}/oauth2/token"
revocation_url = "{base}/oauth2/revoke"
client_id = "demo-client"
client_secret_file = "{client}"
placement = "header"

[[providers]]
id = "demo-fhir-moved"
kind = "fhir"
base_url = "{base}/moved/fhir"
[providers.auth]
scheme = "oauth2"
token_url = "{base}/oauth2/token"
client_id = "demo-norotate"
client_secret_file = "{norotate}"
placement = "query"

[[providers]]
id = "demo-fhir-revoked"
kind = "fhir"
base_url = "{base}/fhir"
[providers.auth]
scheme = "oauth2"
token_url = "{base}/oauth2/token"
revocation_url = "{base}/oauth2/revoke"
client_id = "demo-public"
placement = "header"

# Linked by consent (an invitation, or "Link an account" on a patient's
# page): OpenID Connect at the sandbox, authorization code + PKCE, and the
# wrong-patient guard: the ID token's mrn must be the local patient's MRN,
# with the same family name and birth date.
[[providers]]
id = "demo-fhir-consent"
kind = "fhir"
base_url = "{base}/fhir"
[providers.auth]
scheme = "oauth2"
authorize_url = "{base}/oauth2/authorize"
token_url = "{base}/oauth2/token"
revocation_url = "{base}/oauth2/revoke"
client_id = "demo-client"
client_secret_file = "{client}"
placement = "header"
scopes = ["openid", "patient/MedicationRequest.rs", "offline_access"]
authorize_params = {{ aud = "{base}/fhir" }}
[providers.identity]
remote = "id_token:mrn"
local = "mrn"
also = ["family_name", "birth_date"]
jwks_url = "{base}/oauth2/jwks"
issuer = "{base}"
"#,
        hmac_header = secret("demo-hmac-header"),
        hmac_query = secret("demo-hmac-query"),
        client = secret("demo-client"),
        norotate = secret("demo-norotate"),
    )
}
