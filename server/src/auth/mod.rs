//! Authentication (DESIGN §4): passwords, login sessions with rotating
//! refresh tokens and reuse detection, short-lived access tokens, and the
//! per-request check that the session is live and the user enabled.

pub mod jwt;
pub mod limiter;
pub mod password;

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::LoginLimits;
use crate::db::accounts::{self, RefreshState, hex, random_id};
use crate::db::{Db, DbError};
use crate::secret::Secret;
use jwt::{AUDIENCE, Claims, ISSUER, Keys, TokenType};
use limiter::Limiter;
use password::{Hasher, PasswordError};

/// How long an access token lives.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a refresh token lives (a tablet may stay offline for days).
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why authentication failed. The HTTP edge turns these into 401 or 429
/// without saying more than the client needs.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or disabled account: one answer for all three.
    #[error("The username or password is not correct.")]
    BadCredentials,
    /// Too many logins for this account or address in the window.
    #[error("Too many failed logins; try again later.")]
    TooManyAttempts,
    /// The token is missing, malformed, expired, of the wrong type, or revoked.
    #[error("{0}")]
    InvalidToken(String),
    /// A refresh token was used twice: its whole session is now revoked.
    #[error("This refresh token was already used; the session has been ended for safety.")]
    Reused,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Hashing failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// A fresh token pair.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tokens {
    /// The access token (JWT).
    pub access_token: String,
    /// The refresh token (JWT, usable once).
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub username: String,
    /// The login session.
    pub session: String,
}

/// Issues and checks credentials.
#[derive(Debug)]
pub struct Auth {
    keys: Keys,
    hasher: Hasher,
    limiter: Limiter,
}

fn now_secs() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn jti_hash(jti: &str) -> String {
    hex(&Sha256::digest(jti.as_bytes()))
}

impl Auth {
    /// Authentication with the token signing secret and the default limits.
    pub fn new(secret: &Secret) -> Result<Auth, PasswordError> {
        Auth::with_limits(secret, &LoginLimits::default())
    }

    /// Authentication with the token signing secret and these login limits.
    pub fn with_limits(secret: &Secret, limits: &LoginLimits) -> Result<Auth, PasswordError> {
        Ok(Auth {
            keys: Keys::new(secret),
            hasher: Hasher::new(limits.hash_threads, limits.hash_queue)?,
            limiter: Limiter::new(limits.max_failures, limits.window, limits.max_keys),
        })
    }

    /// The password hasher (for accounts made through the API, and its figures).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The login limiter.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Checks a username and password and starts a session.
    ///
    /// The attempt is counted against the account and the address before the
    /// password is hashed (so concurrent guesses cannot all slip under the
    /// limit), and taken back if the password was right or never checked.
    pub async fn login(
        &self,
        db: &Db,
        username: &str,
        password: Secret,
        client: &str,
    ) -> Result<Tokens, AuthError> {
        let keys = [format!("user:{username}"), format!("addr:{client}")];
        let Some(attempt) = self.limiter.attempt(&keys, Instant::now()) else {
            return Err(AuthError::TooManyAttempts);
        };
        let checked = match accounts::credentials(db, username).await {
            Ok(stored) => {
                let (hash, disabled) = match stored {
                    Some((hash, disabled)) => (Some(hash), disabled),
                    None => (None, false),
                };
                self.hasher
                    .verify(password, hash)
                    .await
                    .map(|ok| ok && !disabled)
                    .map_err(AuthError::from)
            }
            Err(e) => Err(e.into()),
        };
        match checked {
            Ok(true) => self.limiter.refund(attempt),
            // A failure: the attempt stays counted.
            Ok(false) => return Err(AuthError::BadCredentials),
            Err(e) => {
                // Nothing was checked (the queue was full, the database failed).
                self.limiter.refund(attempt);
                return Err(e);
            }
        }
        let mut tx = db.begin().await?;
        let session = accounts::insert_session(&mut tx, username).await?;
        let tokens = self.issue(&mut tx, username, &session).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(tokens)
    }

    async fn issue(
        &self,
        tx: &mut crate::db::Tx,
        username: &str,
        session: &str,
    ) -> Result<Tokens, AuthError> {
        let now = now_secs();
        let claims = |typ, ttl: Duration| Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: username.into(),
            exp: now + ttl.as_secs(),
            iat: now,
            typ,
            sid: session.into(),
            jti: random_id(),
        };
        let access = claims(TokenType::Access, ACCESS_TTL);
        let refresh = claims(TokenType::Refresh, REFRESH_TTL);
        let expires_ms = i64::try_from(refresh.exp)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        accounts::insert_refresh(tx, &jti_hash(&refresh.jti), session, expires_ms).await?;
        let sign = |c: &Claims| {
            self.keys
                .sign(c)
                .map_err(|e| AuthError::InvalidToken(e.to_string()))
        };
        Ok(Tokens {
            access_token: sign(&access)?,
            refresh_token: sign(&refresh)?,
            expires_in: ACCESS_TTL.as_secs(),
        })
    }

    /// Exchanges a refresh token for a new pair. A token used twice ends its session.
    pub async fn refresh(&self, db: &Db, token: &str) -> Result<Tokens, AuthError> {
        let claims = self
            .keys
            .verify(token, TokenType::Refresh)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        let mut tx = db.begin().await?;
        let state = accounts::use_refresh(&mut tx, &jti_hash(&claims.jti), &claims.sid).await?;
        if state != RefreshState::Usable {
            // Rolled back at once: it holds SQLite's write lock, which the
            // revocation below needs.
            tx.rollback().await.map_err(DbError::from)?;
            return self.refused(db, &claims, state).await;
        }
        let tokens = self.issue(&mut tx, &claims.sub, &claims.sid).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(tokens)
    }

    /// The answer to a refresh token that may not be used; a reused one ends its session.
    async fn refused(
        &self,
        db: &Db,
        claims: &Claims,
        state: RefreshState,
    ) -> Result<Tokens, AuthError> {
        match state {
            RefreshState::Usable | RefreshState::Reused => {
                accounts::revoke_session(db, &claims.sid, "refresh token reused").await?;
                tracing::warn!(user = %claims.sub, session = %claims.sid, "refresh token reused; session revoked");
                Err(AuthError::Reused)
            }
            RefreshState::Revoked => Err(AuthError::InvalidToken("session revoked".into())),
            RefreshState::Unknown => Err(AuthError::InvalidToken("unknown refresh token".into())),
        }
    }

    /// Checks an access token and that its session is still live.
    pub async fn authenticate(&self, db: &Db, token: &str) -> Result<Caller, AuthError> {
        let claims = self
            .keys
            .verify(token, TokenType::Access)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        if !accounts::session_live(db, &claims.sid, &claims.sub).await? {
            return Err(AuthError::InvalidToken(
                "session revoked or user disabled".into(),
            ));
        }
        Ok(Caller {
            username: claims.sub,
            session: claims.sid,
        })
    }

    /// Ends the caller's session: its refresh tokens stop working, and so do its access tokens.
    pub async fn logout(&self, db: &Db, caller: &Caller) -> Result<(), AuthError> {
        accounts::revoke_session(db, &caller.session, "logout").await?;
        Ok(())
    }
}
