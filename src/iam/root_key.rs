//! The root key: made on first start and kept, mode 0600, in the data
//! folder; or given by the environment for automation.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Credentials;

pub const ROOT_KEY_FILE: &str = "root-key.toml";

#[derive(Serialize, Deserialize)]
struct RootKeyFile {
    access_key: String,
    secret_key: String,
}

/// Where the root key came from, so the caller can tell the user once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKeySource {
    Environment,
    Stored,
    /// Made just now: print it, it is never shown again.
    Created,
}

/// The root key file's mode: its owner's alone, or with group access
/// also readable by the data folder's group.
fn key_file_mode(group_access: bool) -> u32 {
    if group_access {
        0o640
    } else {
        0o600
    }
}

/// The stored root key, if there is one. `group_access` as the server's
/// configuration says (see `Config::group_access`).
pub fn read_root_key(data_dir: &Path, group_access: bool) -> io::Result<Option<Credentials>> {
    let path = data_dir.join(ROOT_KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            // Copied in by hand with the usual 0644: it holds the root
            // secret, so only its owner (and perhaps group) may read it.
            use std::os::unix::fs::PermissionsExt;
            let wanted = key_file_mode(group_access);
            let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & !wanted != 0 {
                match fs::set_permissions(&path, fs::Permissions::from_mode(wanted)) {
                    Ok(()) => {
                        tracing::warn!(file = %path.display(), now = format!("{wanted:o}"), "the root key file was readable by others; it is now private")
                    }
                    // Not its owner: say so, and use it anyway.
                    Err(error) => {
                        tracing::warn!(file = %path.display(), %error, "the root key file is readable by others")
                    }
                }
            }
            let stored: RootKeyFile = toml::from_str(&text)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {error}", path.display())))?;
            Ok(Some(Credentials { access_key: stored.access_key, secret_key: stored.secret_key }))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// The root key: `given` (from the environment), else the stored one,
/// else a new one, stored with [`key_file_mode`].
pub fn load_or_create_root_key(
    data_dir: &Path,
    given: Option<Credentials>,
    group_access: bool,
) -> io::Result<(Credentials, RootKeySource)> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(credentials) = given {
        return Ok((credentials, RootKeySource::Environment));
    }
    let mode = key_file_mode(group_access);
    if let Some(credentials) = read_root_key(data_dir, group_access)? {
        // Group access turned on (or off) after the key was made.
        let path = data_dir.join(ROOT_KEY_FILE);
        if fs::metadata(&path)?.permissions().mode() & 0o777 != mode {
            if let Err(error) = fs::set_permissions(&path, fs::Permissions::from_mode(mode)) {
                tracing::warn!(file = %path.display(), %error, wanted = format!("{mode:o}"), "cannot set the root key file's mode");
            }
        }
        return Ok((credentials, RootKeySource::Stored));
    }
    fs::create_dir_all(data_dir)?;
    let credentials = Credentials::generate();
    let text = toml::to_string(&RootKeyFile {
        access_key: credentials.access_key.clone(),
        secret_key: credentials.secret_key.clone(),
    })
    .map_err(io::Error::other)?;
    let tmp = data_dir.join(format!("{ROOT_KEY_FILE}.tmp"));
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    // The umask must not narrow what group access asks for.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, data_dir.join(ROOT_KEY_FILE))?;
    fs::File::open(data_dir)?.sync_all()?;
    Ok((credentials, RootKeySource::Created))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_then_stored_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("larder-root-key-{}", crate::store::BlobId::random().to_hex()));
        let (created, source) = load_or_create_root_key(&dir, None, false).unwrap();
        assert_eq!(source, RootKeySource::Created);
        let mode = fs::metadata(dir.join(ROOT_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (stored, source) = load_or_create_root_key(&dir, None, false).unwrap();
        assert_eq!((stored, source), (created.clone(), RootKeySource::Stored));
        let given = Credentials { access_key: "A".into(), secret_key: "B".into() };
        assert_eq!(
            load_or_create_root_key(&dir, Some(given.clone()), false).unwrap(),
            (given, RootKeySource::Environment)
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
