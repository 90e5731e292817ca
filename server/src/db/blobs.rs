//! Blobs (photos, scanned documents): content-addressed by SHA-256, uploaded
//! in parts and kept in the `blobs` table until complete; and `blob_refs`, the
//! documents whose evidence names each blob (written with the projection rows).
//!
//! Every write that moves an upload on is conditional on the number of bytes
//! the writer saw (`received = $n`), so two devices sending the same blob at
//! once cannot interleave their bytes: the loser changes nothing and reads the
//! state again.

use sqlx::Row;

use super::{DbError, DbKind, Tx, now_ms};
use crate::projection::EvidenceRef;

/// How far the upload of a blob has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobState {
    /// Its size in bytes, as its upload declared it.
    pub size: i64,
    /// How many bytes the server has, from the first.
    pub received: i64,
    /// Whether every byte arrived and the content matched its hash.
    pub complete: bool,
}

/// The state of a blob's upload, if one was started.
pub async fn state(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sha256: &str,
) -> Result<Option<BlobState>, DbError> {
    let row = sqlx::query("SELECT size, received, complete_at FROM blobs WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(db)
        .await?;
    row.map(|r| {
        Ok(BlobState {
            size: r.try_get(0)?,
            received: r.try_get(1)?,
            complete: r.try_get::<Option<i64>, _>(2)?.is_some(),
        })
    })
    .transpose()
}

/// Starts the upload of a blob with its first bytes. False if another
/// upload of it started first (nothing is written then).
pub async fn start(
    tx: &mut Tx,
    sha256: &str,
    size: i64,
    first: &[u8],
    by: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO blobs (sha256, size, received, data, complete_at, uploaded_by, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5, $6) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(size)
    .bind(len(first))
    .bind(first.to_vec())
    .bind(by)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Starts an incomplete upload over, with another size and its first bytes,
/// if it still has `received` bytes. False if it moved on meanwhile.
pub async fn restart(
    tx: &mut Tx,
    sha256: &str,
    received: i64,
    size: i64,
    first: &[u8],
    by: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE blobs SET size = $1, received = $2, data = $3, uploaded_by = $4, created_at = $5 \
         WHERE sha256 = $6 AND received = $7 AND complete_at IS NULL",
    )
    .bind(size)
    .bind(len(first))
    .bind(first.to_vec())
    .bind(by)
    .bind(now_ms())
    .bind(sha256)
    .bind(received)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Appends bytes to an incomplete upload that has `received` bytes. False if
/// it moved on meanwhile (nothing is written then).
pub async fn append(
    tx: &mut Tx,
    kind: DbKind,
    sha256: &str,
    received: i64,
    bytes: &[u8],
) -> Result<bool, DbError> {
    // SQLite's `||` makes TEXT even of two BLOBs (the bytes survive, the type
    // does not), so it is cast back there; PostgreSQL joins bytea as bytea and
    // has no type named BLOB. The only statement that differs by database.
    let sql = match kind {
        DbKind::Sqlite => {
            "UPDATE blobs SET data = CAST(data || $1 AS BLOB), received = received + $2 \
             WHERE sha256 = $3 AND received = $4 AND complete_at IS NULL"
        }
        DbKind::Postgres => {
            "UPDATE blobs SET data = data || $1, received = received + $2 \
             WHERE sha256 = $3 AND received = $4 AND complete_at IS NULL"
        }
    };
    let done = sqlx::query(sql)
        .bind(bytes.to_vec())
        .bind(len(bytes))
        .bind(sha256)
        .bind(received)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Every byte received of a blob, complete or not.
pub async fn content(tx: &mut Tx, sha256: &str) -> Result<Vec<u8>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT data FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Marks a blob complete (its content matched its hash).
pub async fn complete(tx: &mut Tx, sha256: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE blobs SET complete_at = $1 WHERE sha256 = $2")
        .bind(now_ms())
        .bind(sha256)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Forgets an incomplete upload (its content did not match its hash).
pub async fn discard(tx: &mut Tx, sha256: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM blobs WHERE sha256 = $1 AND complete_at IS NULL")
        .bind(sha256)
        .execute(&mut **tx)
        .await?;
    Ok(())
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
