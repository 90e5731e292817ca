//! Blobs (photos, scanned documents): content-addressed by SHA-256.
//!
//! - `blob_uploads`: unfinished uploads, one per (file, user). Each user's
//!   upload is their own: no one else can restart, fill or discard it. Its
//!   declared size counts toward its uploader's quota until it completes or
//!   expires.
//! - `blobs`: complete files, one copy each, whoever sent them.
//! - `blob_holders`: the users who sent all of a file's content, matching its
//!   hash (possession shown, not just the hash known).
//! - `blob_refs`: the documents whose evidence names each file (written with
//!   the projection rows).
//!
//! Every write that moves an upload on is conditional on the number of bytes
//! the writer saw (`received = $n`), so two devices of one user sending the
//! same file at once cannot interleave their bytes: the loser changes nothing
//! and reads the state again.

use sqlx::Row;

use super::{DbError, DbKind, Tx, now_ms};
use crate::projection::EvidenceRef;

/// How far an upload has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobState {
    /// Its size in bytes, as its upload declared it.
    pub size: i64,
    /// How many bytes the server has, from the first.
    pub received: i64,
    /// Whether every byte arrived and the content matched its hash.
    pub complete: bool,
}

/// Where `user` stands with a file: holding it (complete), uploading it, or neither.
pub async fn state_for(
    db: impl sqlx::Executor<'_, Database = sqlx::Any> + Copy,
    sha256: &str,
    user: &str,
) -> Result<Option<BlobState>, DbError> {
    let held: Option<i64> =
        sqlx::query_scalar("SELECT size FROM blob_holders WHERE sha256 = $1 AND username = $2")
            .bind(sha256)
            .bind(user)
            .fetch_optional(db)
            .await?;
    if let Some(size) = held {
        return Ok(Some(BlobState {
            size,
            received: size,
            complete: true,
        }));
    }
    upload(db, sha256, user).await
}

/// The state of `user`'s unfinished upload of a file, if there is one.
pub async fn upload(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sha256: &str,
    user: &str,
) -> Result<Option<BlobState>, DbError> {
    let row =
        sqlx::query("SELECT size, received FROM blob_uploads WHERE sha256 = $1 AND username = $2")
            .bind(sha256)
            .bind(user)
            .fetch_optional(db)
            .await?;
    row.map(|r| {
        Ok(BlobState {
            size: r.try_get(0)?,
            received: r.try_get(1)?,
            complete: false,
        })
    })
    .transpose()
}

/// Takes the user's row lock (PostgreSQL) or the write lock (SQLite) first
/// thing in a transaction, so that one user's uploads are counted against
/// their quota one after another.
pub async fn lock_user(tx: &mut Tx, user: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET disabled_at = disabled_at WHERE username = $1")
        .bind(user)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Bytes counted against a user's quota: the files they hold and the sizes
/// of their unfinished uploads, leaving out their upload of `except`.
pub async fn used_bytes(tx: &mut Tx, user: &str, except: &str) -> Result<i64, DbError> {
    let held: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blob_holders WHERE username = $1",
    )
    .bind(user)
    .fetch_one(&mut **tx)
    .await?;
    let uploading: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blob_uploads \
         WHERE username = $1 AND sha256 <> $2",
    )
    .bind(user)
    .bind(except)
    .fetch_one(&mut **tx)
    .await?;
    Ok(held.saturating_add(uploading))
}

/// Starts `user`'s upload of a file with its first bytes. False if another
/// request of theirs started it first (nothing is written then).
pub async fn start(
    tx: &mut Tx,
    sha256: &str,
    user: &str,
    size: i64,
    first: &[u8],
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO blob_uploads (sha256, username, size, received, data, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256, username) DO NOTHING",
    )
    .bind(sha256)
    .bind(user)
    .bind(size)
    .bind(len(first))
    .bind(first.to_vec())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Starts `user`'s upload over, with another size and its first bytes, if it
/// still has `received` bytes. False if it moved on meanwhile.
pub async fn restart(
    tx: &mut Tx,
    sha256: &str,
    user: &str,
    received: i64,
    size: i64,
    first: &[u8],
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE blob_uploads SET size = $1, received = $2, data = $3, updated_at = $4 \
         WHERE sha256 = $5 AND username = $6 AND received = $7",
    )
    .bind(size)
    .bind(len(first))
    .bind(first.to_vec())
    .bind(now_ms())
    .bind(sha256)
    .bind(user)
    .bind(received)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Appends bytes to `user`'s upload that has `received` bytes. False if it
/// moved on meanwhile (nothing is written then).
pub async fn append(
    tx: &mut Tx,
    kind: DbKind,
    sha256: &str,
    user: &str,
    received: i64,
    bytes: &[u8],
) -> Result<bool, DbError> {
    // SQLite's `||` makes TEXT even of two BLOBs (the bytes survive, the type
    // does not), so it is cast back there; PostgreSQL joins bytea as bytea and
    // has no type named BLOB. The only statement that differs by database.
    let sql = match kind {
        DbKind::Sqlite => {
            "UPDATE blob_uploads SET data = CAST(data || $1 AS BLOB), received = received + $2, \
             updated_at = $3 WHERE sha256 = $4 AND username = $5 AND received = $6"
        }
        DbKind::Postgres => {
            "UPDATE blob_uploads SET data = data || $1, received = received + $2, \
             updated_at = $3 WHERE sha256 = $4 AND username = $5 AND received = $6"
        }
    };
    let done = sqlx::query(sql)
        .bind(bytes.to_vec())
        .bind(len(bytes))
        .bind(now_ms())
        .bind(sha256)
        .bind(user)
        .bind(received)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Every byte of `user`'s upload of a file.
pub async fn upload_content(tx: &mut Tx, sha256: &str, user: &str) -> Result<Vec<u8>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT data FROM blob_uploads WHERE sha256 = $1 AND username = $2")
            .bind(sha256)
            .bind(user)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Forgets `user`'s upload of a file (its content did not match its hash, or it completed).
pub async fn discard(tx: &mut Tx, sha256: &str, user: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM blob_uploads WHERE sha256 = $1 AND username = $2")
        .bind(sha256)
        .bind(user)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records that `user` sent all of a file whose content matched its hash:
/// stores the file unless it is stored already (true if it was stored now),
/// makes them a holder and drops their upload of it.
pub async fn complete(
    tx: &mut Tx,
    sha256: &str,
    user: &str,
    content: &[u8],
) -> Result<bool, DbError> {
    let now = now_ms();
    let size = len(content);
    let stored = sqlx::query(
        "INSERT INTO blobs (sha256, size, received, data, complete_at, uploaded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(size)
    .bind(size)
    .bind(content.to_vec())
    .bind(now)
    .bind(user)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO blob_holders (sha256, username, size, held_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sha256, username) DO NOTHING",
    )
    .bind(sha256)
    .bind(user)
    .bind(size)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    discard(tx, sha256, user).await?;
    Ok(stored.rows_affected() == 1)
}

/// Whether a file is stored complete.
pub async fn is_complete(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sha256: &str,
) -> Result<bool, DbError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT size FROM blobs WHERE sha256 = $1 AND complete_at IS NOT NULL")
            .bind(sha256)
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}

/// Drops the unfinished uploads that have not moved since `before` (ms):
/// how many.
pub async fn expire_uploads(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
    before: i64,
) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM blob_uploads WHERE updated_at <= $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// The content of a complete blob.
pub async fn complete_content(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sha256: &str,
) -> Result<Option<Vec<u8>>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT data FROM blobs WHERE sha256 = $1 AND complete_at IS NOT NULL")
            .bind(sha256)
            .fetch_optional(db)
            .await?,
    )
}

/// The users who hold a file (sent all of it, matching its hash).
pub async fn holders(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sha256: &str,
) -> Result<Vec<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT username FROM blob_holders WHERE sha256 = $1 ORDER BY username")
            .bind(sha256)
            .fetch_all(db)
            .await?,
    )
}

/// The documents whose evidence names a blob, with the media type each gives
/// it: (document id, mime), in document order.
pub async fn referencing(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sha256: &str,
) -> Result<Vec<(String, String)>, DbError> {
    Ok(
        sqlx::query_as("SELECT doc_id, mime FROM blob_refs WHERE sha256 = $1 ORDER BY doc_id")
            .bind(sha256)
            .fetch_all(db)
            .await?,
    )
}

/// Replaces the blobs a document's evidence names.
pub async fn write_refs(tx: &mut Tx, doc_id: &str, refs: &[EvidenceRef]) -> Result<(), DbError> {
    sqlx::query("DELETE FROM blob_refs WHERE doc_id = $1")
        .bind(doc_id)
        .execute(&mut **tx)
        .await?;
    // Rows per statement: three parameters each, far under either database's limit.
    for chunk in refs.chunks(200) {
        let mut sql = String::from("INSERT INTO blob_refs (doc_id, sha256, mime) VALUES ");
        super::Params::of(tx).rows(&mut sql, chunk.len(), 3);
        sql.push_str(" ON CONFLICT (doc_id, sha256) DO NOTHING");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(chunk.len() <= 8);
        for r in chunk {
            q = q.bind(doc_id).bind(r.sha256.as_str()).bind(r.mime.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn len(bytes: &[u8]) -> i64 {
    i64::try_from(bytes.len()).unwrap_or(i64::MAX)
}
