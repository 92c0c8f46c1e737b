//! `rxsync key rotate`: re-encrypt every stored secret with a new vault key.

use super::context::Global;
use super::{CliResult, Failure};
use anyhow::anyhow;
use rxsync::vault::{KeySource, VaultKey};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Re-encrypt every link secret with a new key, in one transaction.
    ///
    /// With a key file: a new key is generated (KEYFILE.new), the secrets are
    /// re-sealed, then the new key replaces the file (the old one is kept
    /// beside it as KEYFILE.old-ID for backups made before the rotation); an
    /// interrupted rotation is finished by running it again. With RXSYNC_KEY:
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
    let mut store = ctx.store;
    let pending = rxsync::vault::pending_key_path(&key_file);
    if env_key.is_none() && pending.exists() {
        return finish_interrupted(&mut store, &key_file, &pending);
    }
    let (old, source) =
        VaultKey::load(env_key.as_deref(), &key_file).map_err(|e| Failure::Failed(e.into()))?;
    let new_env = std::env::var("RXSYNC_NEW_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
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
            // The new key is on disk (never over an existing file) before
            // any secret depends on it.
            rxsync::vault::write_new_key_file(&pending, &text)
                .map_err(|e| Failure::Failed(anyhow!("{}: {e}", pending.display())))?;
            let (links, secrets) = match store.rekey_links(&old, &new) {
                Ok(n) => n,
                Err(e) => {
                    // Nothing was re-sealed: the pending key seals nothing.
                    let _ = std::fs::remove_file(&pending);
                    return Err(e.into());
                }
            };
            let kept = swap_in(&key_file, &pending, &old)?;
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

/// A rotation stopped between sealing the database with the pending key
/// and putting that key in place: finish it when the database says so.
fn finish_interrupted(
    store: &mut rxsync::store::Store,
    key_file: &std::path::Path,
    pending: &std::path::Path,
) -> CliResult {
    let new = rxsync::vault::read_key_file(pending)
        .map_err(|e| Failure::Failed(e.into()))?
        .ok_or_else(|| Failure::Failed(anyhow!("{} vanished", pending.display())))?;
    let ids = store.link_key_ids()?;
    if !ids.is_empty() && ids.iter().all(|i| i == new.id()) {
        let old = rxsync::vault::read_key_file(key_file).map_err(|e| Failure::Failed(e.into()))?;
        let kept = match &old {
            Some(old) => swap_in(key_file, pending, old)?,
            None => {
                std::fs::rename(pending, key_file).map_err(|e| {
                    Failure::Failed(anyhow!(
                        "cannot move {} to {}: {e}",
                        pending.display(),
                        key_file.display()
                    ))
                })?;
                key_file.to_path_buf()
            }
        };
        println!(
            "finished an interrupted rotation: {} holds key {} that seals the database{}",
            key_file.display(),
            new.id(),
            if old.is_some() {
                format!("; the old key is in {}", kept.display())
            } else {
                String::new()
            }
        );
        return Ok(());
    }
    Err(Failure::Failed(anyhow!(
        "{} holds key {}, which seals nothing in this database (sealed with: {}): an earlier rotation stopped before sealing. Check it is not needed, remove it, and run rxsync key rotate again",
        pending.display(),
        new.id(),
        if ids.is_empty() {
            "no links".to_string()
        } else {
            ids.join(", ")
        }
    )))
}

/// Puts the pending key in place, keeping the old one as `KEYFILE.old-ID`
/// (a hard link first, so that the key file never goes missing). Returns
/// where the old key is.
fn swap_in(
    key_file: &std::path::Path,
    pending: &std::path::Path,
    old: &VaultKey,
) -> Result<std::path::PathBuf, Failure> {
    let kept = sibling(key_file, &format!("old-{}", old.id()));
    match std::fs::hard_link(key_file, &kept) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Failure::Failed(anyhow!(
                "the secrets are sealed with the new key in {}, but keeping the old key as {} failed: {e}. Run rxsync key rotate again to finish.",
                pending.display(),
                kept.display()
            )));
        }
    }
    std::fs::rename(pending, key_file).map_err(|e| {
        Failure::Failed(anyhow!(
            "the secrets are sealed with the new key in {}, but moving it to {} failed: {e}. Run rxsync key rotate again to finish.",
            pending.display(),
            key_file.display()
        ))
    })?;
    Ok(kept)
}

fn sibling(path: &std::path::Path, ext: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    std::path::PathBuf::from(name)
}
