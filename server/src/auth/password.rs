//! Password hashing: argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane),
//! run on blocking threads, never on the async workers, with a bound on how
//! many run at once (each holds 19 MiB). Unknown users are checked against a
//! dummy hash so that a login takes the same time whether or not the user exists.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::secret::Secret;

/// OWASP's minimum for argon2id: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The shortest password accepted for a new account.
pub const MIN_LENGTH: usize = 8;
/// The longest password accepted (hashing cost is bounded, not the input).
pub const MAX_LENGTH: usize = 256;

/// Why a password could not be set or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("The password must be {MIN_LENGTH} to {MAX_LENGTH} characters long.")]
    Length,
    /// The hasher failed or its thread was lost.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

fn argon2() -> Argon2<'static> {
    // The constants are valid parameters (and argon2's default is the same OWASP minimum).
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (blocking: call from a blocking thread).
pub fn hash_blocking(password: &Secret) -> Result<String, PasswordError> {
    let len = std::str::from_utf8(password.expose())
        .map(|s| s.chars().count())
        .unwrap_or(0);
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&len) {
        return Err(PasswordError::Length);
    }
    argon2()
        .hash_password(password.expose())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

fn verify_blocking(password: &Secret, hash: &str) -> bool {
    password.expose().len() <= MAX_LENGTH * 4
        && argon2().verify_password(password.expose(), hash).is_ok()
}

/// Hashes and verifies passwords off the async threads, a bounded number at a time.
#[derive(Clone, Debug)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy: Arc<String>,
}

impl Hasher {
    /// A hasher allowing `concurrent` hashes at once.
    pub fn new(concurrent: usize) -> Result<Hasher, PasswordError> {
        let dummy = hash_blocking(&Secret::from("dummy password for timing".to_owned()))?;
        Ok(Hasher {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
            dummy: Arc::new(dummy),
        })
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: Secret) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?
    }

    /// Checks a password against a stored hash, or against the dummy hash when
    /// there is none (the answer is then always false, after the same work).
    pub async fn verify(&self, password: Secret, hash: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_str().to_owned());
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &hash))
            .await
            .unwrap_or(false);
        ok && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() -> Result<(), PasswordError> {
        let hash = hash_blocking(&Secret::from("correct horse".to_owned()))?;
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking(
            &Secret::from("correct horse".to_owned()),
            &hash
        ));
        assert!(!verify_blocking(
            &Secret::from("correct hors".to_owned()),
            &hash
        ));
        Ok(())
    }

    #[test]
    fn lengths_are_bounded_at_both_ends() {
        let len = |n: usize| hash_blocking(&Secret::from("x".repeat(n)));
        assert!(matches!(len(MIN_LENGTH - 1), Err(PasswordError::Length)));
        assert!(len(MIN_LENGTH).is_ok());
        assert!(len(MAX_LENGTH).is_ok());
        assert!(matches!(len(MAX_LENGTH + 1), Err(PasswordError::Length)));
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() -> Result<(), PasswordError> {
        let hasher = Hasher::new(2)?;
        assert!(
            !hasher
                .verify(Secret::from("dummy password for timing".to_owned()), None)
                .await
        );
        Ok(())
    }
}
