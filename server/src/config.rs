//! Configuration: one typed struct from flags and environment, with defaults
//! that run on a laptop (SQLite under ./data, 127.0.0.1:8080).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::db::accounts::{fill_random, hex};
use crate::secret::Secret;

/// Where the data lives and which database to use (every subcommand).
#[derive(Clone, Debug, clap::Args)]
pub struct DataArgs {
    /// Database URL: sqlite:<file> or postgres://... (default: SQLite in the data folder).
    #[arg(long = "db", env = "DATABASE_URL", global = true)]
    pub db: Option<String>,
    /// The data folder: the SQLite file and the token signing key live here.
    #[arg(long, env = "SQM_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
}

impl DataArgs {
    /// The database URL to connect to.
    pub fn database_url(&self) -> String {
        match &self.db {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("sqm.db").display()),
        }
    }
}

/// The limits every request and connection is held to.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest JSON request body, in bytes.
    pub json_body_bytes: usize,
    /// Longest time to answer one HTTP request.
    pub request_timeout: Duration,
    /// Largest blob (a photo, a scan), in bytes.
    pub blob_bytes: usize,
    /// Largest part of a blob sent with Content-Range, in bytes.
    pub blob_part_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            json_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            blob_bytes: 20 * 1024 * 1024,
            blob_part_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Everything the running server needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Web origins allowed to open the sync socket (empty: same host only).
    pub allowed_origins: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// The bearer token a remote metrics scraper must send (loopback needs none).
    pub metrics_token: Option<Secret>,
    /// Sync's limits and timings.
    pub sync: crate::sync::SyncConfig,
}

impl Config {
    /// Defaults for a server on `listen`.
    pub fn new(listen: SocketAddr) -> Config {
        Config {
            listen,
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            metrics_token: None,
            sync: crate::sync::SyncConfig::default(),
        }
    }
}

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The environment's key is too short.
    #[error("SQM_JWT_SECRET must be at least 32 bytes long")]
    TooShort,
    /// The key file could not be read or written.
    #[error("token signing key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The token signing key: `SQM_JWT_SECRET` if set, else the key file in the
/// data folder, made on first run with owner-only permissions.
pub fn signing_key(data_dir: &Path) -> Result<Secret, KeyError> {
    if let Ok(secret) = std::env::var("SQM_JWT_SECRET") {
        if secret.len() < 32 {
            return Err(KeyError::TooShort);
        }
        return Ok(Secret::from(secret));
    }
    let path = data_dir.join("jwt.key");
    let err = |source| KeyError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(Secret::from(text.trim().to_owned())),
        Ok(_) => {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the key file holds less than 32 characters",
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    let key = hex(&bytes);
    write_owner_only(&path, &key).map_err(err)?;
    Ok(Secret::from(key))
}

#[cfg(unix)]
fn write_owner_only(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn the_key_file_is_made_once_and_readable_by_its_owner_only() -> Result<(), KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("sqm-key-{}", crate::db::accounts::random_id()));
        let first = signing_key(&dir)?;
        let again = signing_key(&dir)?;
        assert_eq!(first.expose(), again.expose());
        let mode = std::fs::metadata(dir.join("jwt.key"))
            .map_err(|source| KeyError::File {
                path: "jwt.key".into(),
                source,
            })?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
