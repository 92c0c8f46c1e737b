//! `rxsync key rotate`: re-encrypt every stored secret with a new vault key.

use super::context::Global;
use super::{CliResult, Failure};
use anyhow::anyhow;
use rxsync::vault::{KeySource, VaultKey};
use secrecy::ExposeSecret;
use std::io::Write;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Re-encrypt every link secret with a new key, in one transaction.
    ///
    /// With a key file: a new key is generated, the secrets are re-sealed,
    /// then the new key replaces the file (the old one is kept beside it as
    /// KEYFILE.old for backups made before the rotation). With RXSYNC_KEY:
    /// give the new key in RXSYNC_NEW_KEY, then switch RXSYNC_KEY to it.
    Rotate,
}

pub fn run(global: &Global, c: Command) -> CliResult {
    match c {
        Command::Rotate => rotate(global),
    }
}

fn rotate(global: &Global) -> CliResult {
    let ctx = global.open()?;
    let env_key = std::env::var("RXSYNC_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let key_file = ctx.config.key_file();
    let (old, source) =
        VaultKey::load(env_key.as_deref(), &key_file).map_err(|e| Failure::Failed(e.into()))?;
    let new_env = std::env::var("RXSYNC_NEW_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let mut store = ctx.store;
    match (source, new_env) {
        (KeySource::Env, None) => Err(Failure::Failed(anyhow!(
            "the vault key comes from RXSYNC_KEY: put the new key in RXSYNC_NEW_KEY (head -c 32 /dev/urandom | base64), run rxsync key rotate, then set RXSYNC_KEY to it"
        ))),
        (_, Some(text)) => {
            let new = VaultKey::from_base64(&text).ok_or_else(|| {
                Failure::Failed(anyhow!("RXSYNC_NEW_KEY is not base64 for 32 bytes"))
            })?;
            let (links, secrets) = store.rekey_links(&old, &new)?;
            println!(
                "re-encrypted {secrets} secret(s) of {links} link(s): key {} → {}. Now set RXSYNC_KEY to the new key{}.",
                old.id(),
                new.id(),
                if env_key.is_none() {
                    format!(" (or write it to {})", key_file.display())
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        (KeySource::File(_) | KeySource::Created(_), None) => {
            let (new, text) = VaultKey::generate();
            // The new key is on disk before any secret depends on it.
            let pending = sibling(&key_file, "new");
            write_private(&pending, text.expose_secret())?;
            let (links, secrets) = match store.rekey_links(&old, &new) {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&pending);
                    return Err(e.into());
                }
            };
            let kept = sibling(&key_file, "old");
            std::fs::copy(&key_file, &kept)
                .and_then(|_| std::fs::rename(&pending, &key_file))
                .map_err(|e| {
                    Failure::Failed(anyhow!(
                        "the secrets are re-sealed with the new key, but moving {} to {} failed: {e}. Move it by hand before the next run.",
                        pending.display(),
                        key_file.display()
                    ))
                })?;
            println!(
                "re-encrypted {secrets} secret(s) of {links} link(s): key {} → {}; {} holds the new key, {} the old one (delete it once no backup needs it)",
                old.id(),
                new.id(),
                key_file.display(),
                kept.display()
            );
            Ok(())
        }
    }
}

fn sibling(path: &std::path::Path, ext: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    std::path::PathBuf::from(name)
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::Failed(anyhow!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(|e| Failure::Failed(anyhow!("{}: {e}", path.display())))
}
