//! Configuration: one typed struct from flags and environment, with defaults
//! that run on a laptop (SQLite under ./data, 127.0.0.1:8080).

use std::net::{IpAddr, SocketAddr};
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
    /// Bytes of files one user may have stored: the files they hold and the
    /// sizes of their unfinished uploads.
    pub blob_quota_bytes: u64,
    /// How long an unfinished upload is kept after its last part.
    pub upload_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            json_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            blob_bytes: 20 * 1024 * 1024,
            blob_part_bytes: 4 * 1024 * 1024,
            blob_quota_bytes: 2 * 1024 * 1024 * 1024,
            upload_ttl: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// Login limits and the password hashing queue.
#[derive(Clone, Debug)]
pub struct LoginLimits {
    /// Logins allowed per account and per client address in `window`
    /// (counted before the password is checked; a right password is taken
    /// back); past it, 429.
    pub max_failures: usize,
    /// The window those logins are counted in.
    pub window: Duration,
    /// Accounts and addresses the limiter remembers at most.
    pub max_keys: usize,
    /// Threads that hash passwords (each holds 19 MiB while it hashes).
    pub hash_threads: usize,
    /// Hashes that may wait for a thread; past it, 503 with Retry-After.
    pub hash_queue: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            max_failures: 100,
            window: Duration::from_secs(3600),
            max_keys: 100_000,
            // Hashing is all CPU: more threads than cores would only hold
            // more 19 MiB working memories, not hash faster.
            hash_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_queue: 64,
        }
    }
}

/// A reverse proxy (or a range of them) whose `X-Forwarded-For` is believed:
/// an address, or an address and prefix length (`10.0.0.0/8`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedProxy {
    net: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    /// Whether `ip` is this proxy or in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for TrustedProxy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("'{s}' is not an IP address or range (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let net = net.to_canonical();
        let most = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= most)
                .ok_or_else(bad)?,
            None => most,
        };
        Ok(TrustedProxy { net, prefix })
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
    /// Login limits and the password hashing queue.
    pub login: LoginLimits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (none: the
    /// peer's address is the client's).
    pub trusted_proxies: Vec<TrustedProxy>,
    /// The browser client's files, served at `/` (none: the API alone).
    pub web: Option<std::sync::Arc<crate::http::web::WebFiles>>,
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
            login: LoginLimits::default(),
            trusted_proxies: Vec::new(),
            web: None,
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
    fn trusted_proxies_are_addresses_or_ranges() -> Result<(), String> {
        let one: TrustedProxy = "10.1.2.3".parse()?;
        let range: TrustedProxy = "10.0.0.0/8".parse()?;
        let v6: TrustedProxy = "fd00::/8".parse()?;
        let ip = |s: &str| s.parse::<IpAddr>().map_err(|e| e.to_string());
        assert!(one.contains(ip("10.1.2.3")?));
        assert!(!one.contains(ip("10.1.2.4")?));
        assert!(range.contains(ip("10.255.0.1")?));
        assert!(
            range.contains(ip("::ffff:10.9.9.9")?),
            "an IPv4 peer on an IPv6 socket"
        );
        assert!(!range.contains(ip("11.0.0.1")?));
        assert!(v6.contains(ip("fd12::1")?));
        assert!(!v6.contains(ip("10.0.0.1")?));
        assert!(
            "0.0.0.0/0"
                .parse::<TrustedProxy>()?
                .contains(ip("8.8.8.8")?)
        );
        for bad in ["", "10.0.0.0/33", "fd00::/129", "example.org", "10.0.0.0/x"] {
            assert!(bad.parse::<TrustedProxy>().is_err(), "{bad}");
        }
        Ok(())
    }

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
