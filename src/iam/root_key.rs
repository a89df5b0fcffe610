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

/// The stored root key, if there is one.
pub fn read_root_key(data_dir: &Path) -> io::Result<Option<Credentials>> {
    let path = data_dir.join(ROOT_KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            // Copied in by hand with the usual 0644: it holds the root
            // secret, so only its owner may read it.
            use std::os::unix::fs::PermissionsExt;
            if fs::metadata(&path)?.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
                tracing::warn!(file = %path.display(), "the root key file was readable by others; it is now 0600");
            }
            let stored: RootKeyFile = toml::from_str(&text)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {error}", path.display())))?;
            Ok(Some(Credentials { access_key: stored.access_key, secret_key: stored.secret_key }))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Returns the root key: `given` if set, else the stored one, else a new
/// one written with mode 0600.
pub fn load_or_create_root_key(
    data_dir: &Path,
    given: Option<Credentials>,
) -> io::Result<(Credentials, RootKeySource)> {
    if let Some(credentials) = given {
        return Ok((credentials, RootKeySource::Environment));
    }
    if let Some(credentials) = read_root_key(data_dir)? {
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
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
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
        let (created, source) = load_or_create_root_key(&dir, None).unwrap();
        assert_eq!(source, RootKeySource::Created);
        let mode = fs::metadata(dir.join(ROOT_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (stored, source) = load_or_create_root_key(&dir, None).unwrap();
        assert_eq!((stored, source), (created.clone(), RootKeySource::Stored));
        let given = Credentials { access_key: "A".into(), secret_key: "B".into() };
        assert_eq!(load_or_create_root_key(&dir, Some(given.clone())).unwrap(), (given, RootKeySource::Environment));
        fs::remove_dir_all(&dir).unwrap();
    }
}
