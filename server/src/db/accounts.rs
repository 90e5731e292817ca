//! Users, role assignments, devices and their actor ids, login sessions and
//! refresh tokens.

use sqlx::Row;
use sync_core::date::Date;
use sync_core::ids::{UnitCode, UserId};
use sync_core::permissions::Role;

use super::{Db, DbError, Tx, now_ms, parse_col};

/// A user as stored (the password hash stays in the database layer's callers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub username: UserId,
    /// The name people see.
    pub display_name: String,
    /// The post, e.g. "Superintendent".
    pub designation: String,
    /// When the account was disabled, if it is.
    pub disabled_at: Option<i64>,
}

/// A role assignment (an office order giving a user a role in a unit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Its id.
    pub id: String,
    /// Who holds the role.
    pub username: UserId,
    /// Where.
    pub unit: UnitCode,
    /// Which role.
    pub role: Role,
    /// First day in force.
    pub valid_from: Date,
    /// Last day in force, if limited.
    pub valid_until: Option<Date>,
    /// The office order that made it.
    pub office_order: String,
}

/// A new random id: 16 random bytes as 32 hex digits.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    hex(&bytes)
}

/// Fills a buffer from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        // Without randomness no token or id is safe to issue: stop rather than go on weakly.
        panic!("the operating system's random source failed: {e}");
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn user_of(row: &sqlx::any::AnyRow) -> Result<User, DbError> {
    Ok(User {
        username: parse_col("username", &row.try_get::<String, _>(0)?)?,
        display_name: row.try_get(1)?,
        designation: row.try_get(2)?,
        disabled_at: row.try_get(3)?,
    })
}

/// Adds a user; false if the name is taken.
pub async fn insert_user(tx: &mut Tx, user: &User, password_hash: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO users (username, display_name, designation, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING",
    )
    .bind(user.username.as_str())
    .bind(&user.display_name)
    .bind(&user.designation)
    .bind(password_hash)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A user by name.
pub async fn find_user(db: &Db, username: &str) -> Result<Option<User>, DbError> {
    let row = sqlx::query(
        "SELECT username, display_name, designation, disabled_at FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(user_of).transpose()
}

/// A user's password hash and whether the account is disabled.
pub async fn credentials(db: &Db, username: &str) -> Result<Option<(String, bool)>, DbError> {
    let row = sqlx::query("SELECT password_hash, disabled_at FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get::<Option<i64>, _>(1)?.is_some())),
        None => None,
    })
}

/// Every user, by name.
pub async fn list_users(db: &Db) -> Result<Vec<User>, DbError> {
    let rows = sqlx::query(
        "SELECT username, display_name, designation, disabled_at FROM users ORDER BY username",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(user_of).collect()
}

/// Sets a user's password hash and ends their sessions (whoever knew the old
/// password keeps no way in); false if there is no such user.
pub async fn set_password(db: &Db, username: &str, hash: &str) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
        .bind(hash)
        .bind(username)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    revoke_sessions_of(&mut tx, username, "password changed").await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends every live session of a user (an administrator signs them out everywhere).
pub async fn revoke_all_sessions(db: &Db, username: &str, why: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    revoke_sessions_of(&mut tx, username, why).await?;
    tx.commit().await?;
    Ok(())
}

/// Records who made an account through the API.
pub async fn set_made_by(tx: &mut Tx, username: &str, by: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET created_by = $1 WHERE username = $2")
        .bind(by)
        .bind(username)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Who made an account through the API (none for the command line and the demo).
pub async fn made_by(db: &Db, username: &str) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT created_by FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(db.pool())
            .await?
            .flatten(),
    )
}

async fn revoke_sessions_of(tx: &mut Tx, username: &str, why: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_why = $2 \
         WHERE username = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(why)
    .bind(username)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Disables or enables a user. Disabling revokes every session at once.
/// False if there is no such user.
pub async fn set_disabled(db: &Db, username: &str, disabled: bool) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    let done = sqlx::query("UPDATE users SET disabled_at = $1 WHERE username = $2")
        .bind(disabled.then_some(now))
        .bind(username)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if disabled {
        revoke_sessions_of(&mut tx, username, "account disabled").await?;
    }
    tx.commit().await?;
    Ok(true)
}

fn assignment_of(row: &sqlx::any::AnyRow) -> Result<Assignment, DbError> {
    let until: Option<String> = row.try_get(5)?;
    Ok(Assignment {
        id: row.try_get(0)?,
        username: parse_col("username", &row.try_get::<String, _>(1)?)?,
        unit: parse_col("unit", &row.try_get::<String, _>(2)?)?,
        role: parse_col("role", &row.try_get::<String, _>(3)?)?,
        valid_from: parse_col("valid_from", &row.try_get::<String, _>(4)?)?,
        valid_until: until.map(|u| parse_col("valid_until", &u)).transpose()?,
        office_order: row.try_get(6)?,
    })
}

const ASSIGNMENT_COLUMNS: &str =
    "SELECT id, username, unit, role, valid_from, valid_until, office_order FROM role_assignments";

/// Records a role assignment.
pub async fn insert_assignment(tx: &mut Tx, a: &Assignment, by: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO role_assignments \
         (id, username, unit, role, valid_from, valid_until, office_order, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&a.id)
    .bind(a.username.as_str())
    .bind(a.unit.as_str())
    .bind(a.role.as_str())
    .bind(a.valid_from.to_string())
    .bind(a.valid_until.map(|d| d.to_string()))
    .bind(&a.office_order)
    .bind(by)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A user's role assignments.
pub async fn assignments_of_user(db: &Db, username: &str) -> Result<Vec<Assignment>, DbError> {
    let sql = format!("{ASSIGNMENT_COLUMNS} WHERE username = $1 ORDER BY unit, role, valid_from");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(username)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(assignment_of).collect()
}

/// The role assignments in a unit.
pub async fn assignments_in_unit(db: &Db, unit: &str) -> Result<Vec<Assignment>, DbError> {
    let sql = format!("{ASSIGNMENT_COLUMNS} WHERE unit = $1 ORDER BY username, role, valid_from");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(unit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(assignment_of).collect()
}

/// One role assignment by id.
pub async fn find_assignment(db: &Db, id: &str) -> Result<Option<Assignment>, DbError> {
    let sql = format!("{ASSIGNMENT_COLUMNS} WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(assignment_of).transpose()
}

/// Ends a role assignment on a date (it stays on record).
pub async fn end_assignment(db: &Db, id: &str, until: Date) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE role_assignments SET valid_until = $1 WHERE id = $2")
        .bind(until.to_string())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A registered device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its id.
    pub id: String,
    /// Whose it is.
    pub username: String,
    /// What the user called it.
    pub name: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// Registers a device for a user with its first actor id.
pub async fn insert_device(
    db: &Db,
    username: &str,
    name: &str,
) -> Result<(Device, String), DbError> {
    let mut tx = db.begin().await?;
    let device = Device {
        id: random_id(),
        username: username.to_owned(),
        name: name.to_owned(),
        revoked_at: None,
    };
    sqlx::query("INSERT INTO devices (id, username, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&device.id)
        .bind(username)
        .bind(name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    let actor = insert_actor(&mut tx, &device.id, username).await?;
    tx.commit().await?;
    Ok((device, actor))
}

/// Registers a device with a given id and actor, unless it is there (the demo loader).
pub async fn ensure_device(
    tx: &mut Tx,
    id: &str,
    username: &str,
    name: &str,
    actor: &str,
) -> Result<(), DbError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO devices (id, username, name, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(username)
    .bind(name)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO device_actors (actor, device_id, username, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (actor) DO NOTHING",
    )
    .bind(actor)
    .bind(id)
    .bind(username)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Binds a fresh actor id to a device, returning it (hex).
pub async fn insert_actor(tx: &mut Tx, device_id: &str, username: &str) -> Result<String, DbError> {
    let actor = random_id();
    sqlx::query(
        "INSERT INTO device_actors (actor, device_id, username, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&actor)
    .bind(device_id)
    .bind(username)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(actor)
}

/// How many actor ids a device holds.
pub async fn actor_count(tx: &mut Tx, device_id: &str) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM device_actors WHERE device_id = $1")
            .bind(device_id)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// A device by id.
pub async fn find_device(db: &Db, id: &str) -> Result<Option<Device>, DbError> {
    let row = sqlx::query("SELECT id, username, name, revoked_at FROM devices WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => Some(Device {
            id: r.try_get(0)?,
            username: r.try_get(1)?,
            name: r.try_get(2)?,
            revoked_at: r.try_get(3)?,
        }),
        None => None,
    })
}

/// A user's devices.
pub async fn devices_of(db: &Db, username: &str) -> Result<Vec<Device>, DbError> {
    let rows = sqlx::query(
        "SELECT id, username, name, revoked_at FROM devices WHERE username = $1 ORDER BY created_at",
    )
    .bind(username)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Device {
                id: r.try_get(0)?,
                username: r.try_get(1)?,
                name: r.try_get(2)?,
                revoked_at: r.try_get(3)?,
            })
        })
        .collect()
}

/// Revokes a device; false if it is not the user's or already revoked.
pub async fn revoke_device(db: &Db, id: &str, username: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND username = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .bind(username)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The actor ids of a user's devices that are not revoked (hex).
pub async fn live_actors(db: &Db, username: &str) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(
        "SELECT a.actor FROM device_actors a JOIN devices d ON d.id = a.device_id \
         WHERE a.username = $1 AND d.revoked_at IS NULL ORDER BY a.actor",
    )
    .bind(username)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>(0)?))
        .collect()
}

/// The actor ids registered to a user's devices that are not revoked, as
/// (device, actor).
pub async fn live_actors_by_device(
    db: &Db,
    username: &str,
) -> Result<Vec<(String, String)>, DbError> {
    let rows = sqlx::query(
        "SELECT a.device_id, a.actor FROM device_actors a JOIN devices d ON d.id = a.device_id \
         WHERE a.username = $1 AND d.revoked_at IS NULL ORDER BY a.actor",
    )
    .bind(username)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect()
}

/// The user an actor id is registered to (its device revoked or not).
pub async fn user_of_actor(db: &Db, actor: &str) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT username FROM device_actors WHERE actor = $1")
            .bind(actor)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Starts a login session (a refresh token family).
pub async fn insert_session(tx: &mut Tx, username: &str) -> Result<String, DbError> {
    let id = random_id();
    sqlx::query("INSERT INTO sessions (id, username, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(username)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// Records a refresh token of a session by the hash of its id.
pub async fn insert_refresh(
    tx: &mut Tx,
    id_hash: &str,
    session: &str,
    expires_at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id_hash)
    .bind(session)
    .bind(now_ms())
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What a refresh token's record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshState {
    /// Unknown to the server.
    Unknown,
    /// Usable: not used, its session live, its user enabled.
    Usable,
    /// Already used once: presenting it again means it was stolen.
    Reused,
    /// Its session was revoked or its user disabled.
    Revoked,
}

/// Marks a refresh token used, if it may be, in the caller's transaction
/// (commit it only when the answer is [`RefreshState::Usable`]).
///
/// The write comes first. On SQLite, a transaction that has read cannot take
/// the write lock once another writer committed after that read (SQLITE_BUSY
/// at once, which no waiting cures), so when two requests used one token at
/// the same moment, one of them failed with an error instead of being seen as
/// a reuse. Writing first, a transaction waits for the lock before it reads
/// anything, and the second use finds the token used. On PostgreSQL the
/// second update waits for the first's row lock and then matches no row.
pub async fn use_refresh(
    tx: &mut Tx,
    id_hash: &str,
    session: &str,
) -> Result<RefreshState, DbError> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 \
         WHERE id_hash = $2 AND session_id = $3 AND used_at IS NULL",
    )
    .bind(now_ms())
    .bind(id_hash)
    .bind(session)
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query(
        "SELECT s.revoked_at, u.disabled_at FROM refresh_tokens t \
         JOIN sessions s ON s.id = t.session_id JOIN users u ON u.username = s.username \
         WHERE t.id_hash = $1 AND t.session_id = $2",
    )
    .bind(id_hash)
    .bind(session)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(RefreshState::Unknown);
    };
    let revoked: Option<i64> = row.try_get(0)?;
    let disabled: Option<i64> = row.try_get(1)?;
    Ok(if revoked.is_some() || disabled.is_some() {
        RefreshState::Revoked
    } else if done.rows_affected() == 1 {
        RefreshState::Usable
    } else {
        RefreshState::Reused
    })
}

/// Revokes a session (logout, or a refresh token reused); false if it already was.
pub async fn revoke_session(db: &Db, session: &str, why: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_why = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(why)
    .bind(session)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a session is live and its user enabled (checked on every request).
pub async fn session_live(db: &Db, session: &str, username: &str) -> Result<bool, DbError> {
    let row = sqlx::query(
        "SELECT s.revoked_at, u.disabled_at FROM sessions s JOIN users u ON u.username = s.username \
         WHERE s.id = $1 AND s.username = $2",
    )
    .bind(session)
    .bind(username)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(r) => {
            r.try_get::<Option<i64>, _>(0)?.is_none() && r.try_get::<Option<i64>, _>(1)?.is_none()
        }
        None => false,
    })
}
