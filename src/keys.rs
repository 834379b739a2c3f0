//! R60: the service's secret keys are never shared constants. A deployment
//! configures them (`CASESHARE_AUDIT_KEY`, `CASESHARE_DOWNLOAD_KEY`;
//! production mode demands both); otherwise the first start of an
//! installation generates 256 random bits for each missing key and keeps
//! them in `key_file` (mode 0600, created atomically, so concurrent first
//! starts agree on one file), and every later start reads them back.

use crate::config::{ConfigError, Settings};
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where an installation's generated keys are kept when `key_file` is empty:
/// `$XDG_STATE_HOME/caseshare/keys`, else `~/.local/state/caseshare/keys`,
/// else `.caseshare/keys` under the working directory.
pub fn default_key_file() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".caseshare"));
    base.join("caseshare").join("keys")
}

/// What [`resolve`] did, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Every key was configured.
    Configured,
    /// Missing keys were read from the installation's key file.
    Read(PathBuf),
    /// The installation's key file was created, with fresh keys.
    Generated(PathBuf),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFile {
    audit_key: String,
    download_key: String,
}

fn invalid(path: &Path, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        var: "CASESHARE_KEY_FILE".into(),
        reason: format!("{}: {reason}", path.display()),
    }
}

fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Fill in the keys `settings` lacks from the installation's key file,
/// creating it on first start. Production mode never gets here without
/// both keys (`Settings::load` refuses it).
pub fn resolve(settings: &mut Settings) -> Result<Resolved, ConfigError> {
    if !settings.audit_key.is_empty() && !settings.download_key.is_empty() {
        return Ok(Resolved::Configured);
    }
    let path = if settings.key_file.is_empty() {
        default_key_file()
    } else {
        PathBuf::from(&settings.key_file)
    };
    let (keys, outcome) = match std::fs::read_to_string(&path) {
        Ok(text) => (
            toml::from_str::<KeyFile>(&text).map_err(|e| invalid(&path, e))?,
            Resolved::Read(path.clone()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create(&path)?;
            let text = std::fs::read_to_string(&path).map_err(|e| invalid(&path, e))?;
            let keys = toml::from_str::<KeyFile>(&text).map_err(|e| invalid(&path, e))?;
            (keys, Resolved::Generated(path.clone()))
        }
        Err(e) => return Err(invalid(&path, e)),
    };
    if keys.audit_key.len() < 32 || keys.download_key.len() < 32 {
        return Err(invalid(&path, "holds a key shorter than 32 characters"));
    }
    if settings.audit_key.is_empty() {
        settings.audit_key = keys.audit_key;
    }
    if settings.download_key.is_empty() {
        settings.download_key = keys.download_key;
    }
    Ok(outcome)
}

/// Write fresh keys to a temporary file readable by the owner only, then
/// link it into place: the link fails if another process got there first,
/// and that process's keys win (the caller reads the file back).
fn create(path: &Path) -> Result<(), ConfigError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| invalid(path, e))?;
    let text = toml::to_string(&KeyFile {
        audit_key: random_key(),
        download_key: random_key(),
    })
    .map_err(|e| invalid(path, e))?;
    let temp = dir.join(format!(".keys-{}", uuid::Uuid::new_v4()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&temp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|_| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(invalid(path, e));
    }
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(invalid(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(file: &Path) -> Settings {
        let mut s = Settings::defaults().unwrap();
        s.key_file = file.display().to_string();
        s
    }

    // R60: without configured keys, the first start generates them into a
    // file only the service reads; later starts read the same keys; two
    // installations get different keys; configured keys are kept.
    #[test]
    fn r60_keys_are_generated_per_installation_and_kept() {
        let dir = std::env::temp_dir().join(format!("caseshare-keys-{}", uuid::Uuid::new_v4()));
        let file = dir.join("keys");
        let mut first = settings(&file);
        assert_eq!(
            resolve(&mut first).unwrap(),
            Resolved::Generated(file.clone())
        );
        assert_eq!(first.audit_key.len(), 64);
        assert_ne!(first.audit_key, first.download_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let mut again = settings(&file);
        assert_eq!(resolve(&mut again).unwrap(), Resolved::Read(file.clone()));
        assert_eq!(
            (&again.audit_key, &again.download_key),
            (&first.audit_key, &first.download_key)
        );
        let other_file = dir.join("other");
        let mut other = settings(&other_file);
        resolve(&mut other).unwrap();
        assert_ne!(other.download_key, first.download_key);
        let mut configured = settings(&dir.join("never"));
        configured.audit_key = "a".repeat(40);
        configured.download_key = "d".repeat(40);
        assert_eq!(resolve(&mut configured).unwrap(), Resolved::Configured);
        assert!(!dir.join("never").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
