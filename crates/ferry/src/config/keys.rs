//! The master key: from `FERRY_MASTER_KEY` (base64), from a key file, or
//! generated into `<data dir>/master.key` (mode 0600) on first start.

use super::bad;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::SecretBox;
use std::path::{Path, PathBuf};

/// A master key and the file it came from (none: `FERRY_MASTER_KEY`).
pub type LoadedKey = (SecretBox<[u8; 32]>, Option<PathBuf>);

/// Reads the master key: `inline` (base64) first, then `file`, then the
/// data directory's `master.key`, which is created when missing (an
/// explicit `file` that is missing is an error).
pub fn load_or_create(
    inline: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<LoadedKey> {
    if let Some(text) = inline.filter(|s| !s.trim().is_empty()) {
        return Ok((decode_key("FERRY_MASTER_KEY", text)?, None));
    }
    let (path, explicit) = match file.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => (p.to_path_buf(), true),
        None => (data_dir.join("master.key"), false),
    };
    if !path.exists() {
        if explicit {
            bail!(bad(
                "FERRY_MASTER_KEY_FILE",
                format!("{} does not exist", path.display())
            ));
        }
        generate_key_file(&path)
            .with_context(|| format!("generating the master key at {}", path.display()))?;
        tracing::info!(path = %path.display(), "generated a new master key");
    }
    check_private(&path)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad(
            "FERRY_MASTER_KEY_FILE",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    Ok((decode_key("FERRY_MASTER_KEY_FILE", &text)?, Some(path)))
}

fn decode_key(setting: &'static str, text: &str) -> anyhow::Result<SecretBox<[u8; 32]>> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|_| bad(setting, "is not base64"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| bad(setting, "must decode to exactly 32 bytes (a 256-bit key)"))?;
    Ok(SecretBox::new(Box::new(key)))
}

/// Writes a new key file with mode 0600 (replacing nothing: `create_new`).
pub fn write_key_file(path: &Path, key: &[u8; 32]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(B64.encode(key).as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

fn generate_key_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_key_file(path, &rand::random::<[u8; 32]>())
}

#[cfg(unix)]
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(bad(
            "FERRY_MASTER_KEY_FILE",
            format!(
                "{} is readable by other users (mode {mode:o}); run chmod 600 on it",
                path.display()
            )
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> anyhow::Result<()> {
    Ok(())
}
