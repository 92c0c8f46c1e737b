//! The token vault: link secrets sealed field by field with AES-256-GCM.
//!
//! The key is 32 random bytes from `RXSYNC_KEY` (base64) or from a key file
//! created on first use with mode 0600; it is never written to the
//! database. Each sealed field is `version ‖ nonce ‖ ciphertext+tag` with a
//! fresh random 96-bit nonce, and the associated data binds it to its link
//! and field, so a sealed value copied to another link or another column
//! does not open. A key fingerprint (an HMAC of a fixed label under the key,
//! not the key) is stored beside the fields, so a wrong key is named as
//! such instead of surfacing as "decryption failed".
//!
//! What this module must never do: return, log or format a key or a
//! plaintext (errors carry link ids, field names and fingerprints only).

use crate::domain::LinkId;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first byte of every sealed value.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why the vault could not be opened or a field not be unsealed. No variant
/// carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "RXSYNC_KEY is not base64 for 32 bytes (generate one with: head -c 32 /dev/urandom | base64)"
    )]
    BadEnvKey,
    #[error("key file {path} does not hold base64 for 32 bytes")]
    BadKeyFile { path: PathBuf },
    #[error("key file {path} can be read by others (mode {mode:o}); run: chmod 600 {path}")]
    KeyFileMode { path: PathBuf, mode: u32 },
    #[error("key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "link {link} was sealed with vault key {sealed_with}, but the key in use is {in_use} (set RXSYNC_KEY or [vault] key_file to the key this database was written with)"
    )]
    WrongKey {
        link: LinkId,
        sealed_with: String,
        in_use: String,
    },
    #[error("link {link}: the sealed {field} does not open (damaged, or moved from another link)")]
    Damaged { link: LinkId, field: &'static str },
    #[error(
        "the consent flow was sealed with vault key {sealed_with}, but the key in use is {in_use}: start the consent again"
    )]
    FlowWrongKey { sealed_with: String, in_use: String },
    #[error(
        "the consent flow's sealed {field} does not open (damaged, or moved from another flow)"
    )]
    FlowDamaged { field: &'static str },
    #[error(
        "the client registered at provider {provider} was sealed with vault key {sealed_with}, but the key in use is {in_use}"
    )]
    RegistrationWrongKey {
        provider: String,
        sealed_with: String,
        in_use: String,
    },
    #[error(
        "the client registered at provider {provider}: the sealed {field} does not open (damaged, or moved from another provider)"
    )]
    RegistrationDamaged {
        provider: String,
        field: &'static str,
    },
    #[error(
        "key file {path} is missing but {pending} exists: a key rotation was interrupted; run rxsync key rotate to finish it (no new key was made)"
    )]
    InterruptedRotation { path: PathBuf, pending: PathBuf },
}

/// Where `rxsync key rotate` keeps the new key until the database is sealed with it.
pub fn pending_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Where the key came from, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
    /// The key file did not exist and was created now.
    Created(PathBuf),
}

/// The vault key. Debug and Display show the fingerprint only.
pub struct VaultKey {
    cipher: Aes256Gcm,
    id: String,
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultKey({})", self.id)
    }
}

impl VaultKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> VaultKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).unwrap_or_else(|_| {
            // HMAC accepts keys of any length; this cannot happen.
            unreachable!("HMAC-SHA256 takes any key length")
        });
        mac.update(b"rxsync vault key id v1");
        let id = hex::encode(&mac.finalize().into_bytes()[..8]);
        VaultKey {
            cipher: Aes256Gcm::new(bytes.into()),
            id,
        }
    }

    /// Parses base64 text (standard alphabet, padding optional, surrounding
    /// whitespace ignored) holding exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<VaultKey> {
        let t = text.trim();
        let decoded = STANDARD
            .decode(t)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t))
            .ok()?;
        let bytes: [u8; 32] = decoded.as_slice().try_into().ok()?;
        Some(VaultKey::from_bytes(&bytes))
    }

    /// A fresh random key and its base64 text.
    pub fn generate() -> (VaultKey, SecretString) {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let text = SecretString::from(STANDARD.encode(bytes));
        let key = VaultKey::from_bytes(&bytes);
        bytes.fill(0);
        (key, text)
    }

    /// `RXSYNC_KEY` when set, else the key file, created (mode 0600) when missing.
    pub fn load(
        env_key: Option<&str>,
        key_file: &Path,
    ) -> Result<(VaultKey, KeySource), VaultError> {
        if let Some(text) = env_key.filter(|t| !t.trim().is_empty()) {
            return VaultKey::from_base64(text)
                .map(|k| (k, KeySource::Env))
                .ok_or(VaultError::BadEnvKey);
        }
        match read_key_file(key_file)? {
            Some(key) => Ok((key, KeySource::File(key_file.to_path_buf()))),
            None => {
                let pending = pending_key_path(key_file);
                if pending.exists() {
                    return Err(VaultError::InterruptedRotation {
                        path: key_file.to_path_buf(),
                        pending,
                    });
                }
                create_key_file(key_file)
            }
        }
    }

    /// The key's fingerprint (16 hex digits), stored beside sealed fields.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals a field of a link.
    pub fn seal(&self, link: LinkId, field: &'static str, plaintext: &str) -> Vec<u8> {
        self.seal_with(&associated_data(link, field), plaintext)
    }

    /// Seals a field of a consent flow (its PKCE verifier, its nonce): bound
    /// to the flow id and the field, never openable as a link's field.
    pub fn seal_flow(&self, flow: &str, field: &'static str, plaintext: &str) -> Vec<u8> {
        self.seal_with(&flow_associated_data(flow, field), plaintext)
    }

    /// Opens a consent flow's sealed field. `sealed_with` is the key id stored with the flow.
    pub fn open_flow(
        &self,
        flow: &str,
        field: &'static str,
        sealed_with: &str,
        sealed: &[u8],
    ) -> Result<SecretString, VaultError> {
        if sealed_with != self.id {
            return Err(VaultError::FlowWrongKey {
                sealed_with: sealed_with.to_string(),
                in_use: self.id.clone(),
            });
        }
        self.open_with(&flow_associated_data(flow, field), sealed)
            .ok_or(VaultError::FlowDamaged { field })
    }

    /// Seals a field of the client rxsync registered at a provider
    /// (`provider register`): bound to the provider and the field.
    pub fn seal_registration(
        &self,
        provider: &str,
        field: &'static str,
        plaintext: &str,
    ) -> Vec<u8> {
        self.seal_with(&registration_data(provider, field), plaintext)
    }

    /// Opens a field sealed by `seal_registration`.
    pub fn open_registration(
        &self,
        provider: &str,
        field: &'static str,
        sealed_with: &str,
        sealed: &[u8],
    ) -> Result<SecretString, VaultError> {
        if sealed_with != self.id {
            return Err(VaultError::RegistrationWrongKey {
                provider: provider.to_string(),
                sealed_with: sealed_with.to_string(),
                in_use: self.id.clone(),
            });
        }
        self.open_with(&registration_data(provider, field), sealed)
            .ok_or_else(|| VaultError::RegistrationDamaged {
                provider: provider.to_string(),
                field,
            })
    }

    fn seal_with(&self, aad: &[u8], plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce only fails for plaintexts
        // over 64 GiB, which no token is.
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a sealed field. `sealed_with` is the key id stored with the link.
    pub fn open(
        &self,
        link: LinkId,
        field: &'static str,
        sealed_with: &str,
        sealed: &[u8],
    ) -> Result<SecretString, VaultError> {
        if sealed_with != self.id {
            return Err(VaultError::WrongKey {
                link,
                sealed_with: sealed_with.to_string(),
                in_use: self.id.clone(),
            });
        }
        self.open_with(&associated_data(link, field), sealed)
            .ok_or(VaultError::Damaged { link, field })
    }

    /// Opens sealed bytes under `aad`; None when they are damaged or another's.
    fn open_with(&self, aad: &[u8], sealed: &[u8]) -> Option<SecretString> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return None;
        }
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&sealed[1..1 + NONCE_LEN]),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .ok()?;
        String::from_utf8(plain).ok().map(SecretString::from)
    }
}

fn flow_associated_data(flow: &str, field: &str) -> Vec<u8> {
    format!("rxsync vault v1\0consent flow {flow}\0{field}").into_bytes()
}

fn registration_data(provider: &str, field: &str) -> Vec<u8> {
    format!("rxsync vault v1\0registration {provider}\0{field}").into_bytes()
}

/// The bytes a link's sealed field is bound to. They hold the link's row
/// id as decimal digits, as since the vault's first version: a `LinkId`
/// changes nothing in them (sealed fields stored before it still open).
fn associated_data(link: LinkId, field: &str) -> Vec<u8> {
    format!("rxsync vault v1\0link {}\0{field}", link.get()).into_bytes()
}

/// Reads a key file (None when it does not exist); refuses one others can read.
pub fn read_key_file(path: &Path) -> Result<Option<VaultKey>, VaultError> {
    let io = |source| VaultError::KeyFileIo {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::KeyFileMode {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    VaultKey::from_base64(&text)
        .map(Some)
        .ok_or_else(|| VaultError::BadKeyFile {
            path: path.to_path_buf(),
        })
}

/// Writes key text to a file that must not exist yet, owner-only (0600),
/// synced to disk before it returns.
pub fn write_new_key_file(path: &Path, text: &SecretString) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.expose_secret().as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Writes a new key to a private temporary file and links it into place,
/// so a concurrent first use never reads a half-written key: whoever links
/// first wins and the other reads the winner's key.
fn create_key_file(path: &Path) -> Result<(VaultKey, KeySource), VaultError> {
    let io = |source| VaultError::KeyFileIo {
        path: path.to_path_buf(),
        source,
    };
    let (key, text) = VaultKey::generate();
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    if let Err(e) = write_new_key_file(&tmp, &text) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((key, KeySource::Created(path.to_path_buf()))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path)?
            .map(|k| (k, KeySource::File(path.to_path_buf())))
            .ok_or_else(|| io(e)),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_fields_open_only_for_their_provider_and_field() {
        let (key, _) = VaultKey::generate();
        let sealed = key.seal_registration("ehr", "client_secret", "s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        let opened = key
            .open_registration("ehr", "client_secret", key.id(), &sealed)
            .expect("opens");
        assert_eq!(opened.expose_secret(), "s3cret");
        // Another provider, another field, or a link's slot: none opens it.
        assert!(matches!(
            key.open_registration("other", "client_secret", key.id(), &sealed),
            Err(VaultError::RegistrationDamaged { .. })
        ));
        assert!(
            key.open_registration("ehr", "client_id", key.id(), &sealed)
                .is_err()
        );
        assert!(
            key.open(LinkId::new(0), "client_secret", key.id(), &sealed)
                .is_err()
        );
        let (other, _) = VaultKey::generate();
        let err = other
            .open_registration("ehr", "client_secret", key.id(), &sealed)
            .expect_err("wrong key");
        assert!(err.to_string().contains(key.id()) && !err.to_string().contains("s3cret"));
    }

    #[test]
    fn sealed_fields_open_only_for_their_link_and_field() {
        let (key, _) = VaultKey::generate();
        let sealed = key.seal(LinkId::new(7), "token", "tok-123");
        assert!(!sealed.windows(7).any(|w| w == b"tok-123"));
        let opened = key
            .open(LinkId::new(7), "token", key.id(), &sealed)
            .expect("opens");
        assert_eq!(opened.expose_secret(), "tok-123");
        assert!(matches!(
            key.open(LinkId::new(8), "token", key.id(), &sealed),
            Err(VaultError::Damaged { link, .. }) if link == LinkId::new(8)
        ));
        assert!(
            key.open(LinkId::new(7), "refresh_token", key.id(), &sealed)
                .is_err()
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(
            key.open(LinkId::new(7), "token", key.id(), &flipped)
                .is_err()
        );
        // Two seals of the same text differ (fresh nonces).
        assert_ne!(sealed, key.seal(LinkId::new(7), "token", "tok-123"));
        let (other, _) = VaultKey::generate();
        let err = other
            .open(LinkId::new(7), "token", key.id(), &sealed)
            .expect_err("wrong key");
        assert!(err.to_string().contains(key.id()), "{err}");
        assert!(!format!("{other:?}").contains("cipher"));
    }

    #[test]
    fn a_link_fields_associated_data_is_the_row_id_in_digits() {
        // The format every stored link secret is bound to: a `LinkId`
        // must not change it, or no stored token would open again.
        assert_eq!(
            associated_data(LinkId::new(12), "refresh_token"),
            b"rxsync vault v1\0link 12\0refresh_token".to_vec()
        );
        let (key, _) = VaultKey::generate();
        let sealed = key.seal_with(b"rxsync vault v1\0link 12\0token", "tok-1");
        let opened = key
            .open(LinkId::new(12), "token", key.id(), &sealed)
            .expect("a field sealed before LinkId opens");
        assert_eq!(opened.expose_secret(), "tok-1");
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rx.key");
        let (a, source) = VaultKey::load(None, &path).expect("creates");
        assert_eq!(source, KeySource::Created(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let (b, source) = VaultKey::load(None, &path).expect("reads");
            assert_eq!(source, KeySource::File(path.clone()));
            assert_eq!(a.id(), b.id());
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let err = VaultKey::load(None, &path)
                .expect_err("too open")
                .to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn the_environment_key_wins_and_bad_keys_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rx.key");
        let text = STANDARD.encode([5u8; 32]);
        let (k, source) = VaultKey::load(Some(&text), &path).expect("env key");
        assert_eq!(source, KeySource::Env);
        assert_eq!(k.id(), VaultKey::from_bytes(&[5u8; 32]).id());
        assert!(!path.exists(), "no key file when RXSYNC_KEY is set");
        for bad in ["not base64!", &STANDARD.encode([1u8; 16])] {
            let err = VaultKey::load(Some(bad), &path).expect_err(bad).to_string();
            assert!(err.contains("RXSYNC_KEY") && !err.contains(bad), "{err}");
        }
        std::fs::write(&path, "short").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let err = VaultKey::load(None, &path)
            .expect_err("bad file")
            .to_string();
        assert!(err.contains("rx.key"), "{err}");
    }
}
