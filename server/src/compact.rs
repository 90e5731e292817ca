//! Compaction (DESIGN §6): a document's changes folded into a snapshot, so it
//! loads from one saved form instead of replaying every change.
//!
//! One transaction reads the document, saves the snapshot and marks the
//! changes it holds; killed at any point before the commit, nothing changes;
//! after it, the snapshot holds every marked change. The change rows keep
//! their bytes, so `sqm verify` still checks each against its hash and its
//! receipt, and a change is never lost. Changes stored while compaction runs
//! are not marked and load after the snapshot.

use sqlx::Row;
use sync_core::automerge::{Automerge, Change};
use sync_core::ids::DocumentId;

use crate::db::{Db, DbError, DbKind, Tx};

/// What compaction did to one document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Changes folded into the snapshot by this run.
    pub folded: usize,
    /// Bytes of the snapshot.
    pub snapshot_bytes: usize,
}

/// Starts a transaction that sees one consistent state of the database for
/// every statement in it (PostgreSQL's default would let a compaction that
/// commits between two reads split a document).
pub async fn consistent(db: &Db) -> Result<Tx, DbError> {
    let mut tx = db.begin().await?;
    if db.kind() == DbKind::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// Reads a document inside `tx`: its snapshot and the changes after it, with
/// the highest change sequence number read.
pub async fn load_in(tx: &mut Tx, id: &DocumentId) -> Result<Option<(Automerge, i64)>, DbError> {
    let snapshot: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT snapshot FROM documents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    let mut doc = match snapshot {
        Some(bytes) => Automerge::load(&bytes)
            .map_err(|e| DbError::Corrupt(format!("snapshot of {id}: {e}")))?,
        None => Automerge::new(),
    };
    let rows = sqlx::query(
        "SELECT seq, bytes FROM changes WHERE doc_id = $1 AND in_snapshot = 0 ORDER BY seq",
    )
    .bind(id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let mut last = 0;
    let mut changes = Vec::with_capacity(rows.len());
    for r in &rows {
        last = r.try_get::<i64, _>(0)?;
        let bytes: Vec<u8> = r.try_get(1)?;
        changes.push(
            Change::try_from(bytes.as_slice())
                .map_err(|e| DbError::Corrupt(format!("a change of {id}: {e}")))?,
        );
    }
    doc.apply_changes(changes)
        .map_err(|e| DbError::Corrupt(format!("changes of {id} do not apply: {e}")))?;
    Ok(Some((doc, last)))
}

/// Compacts one document in one transaction. Does nothing (and returns
/// `folded: 0`) when no change is outside the snapshot.
pub async fn compact(db: &Db, id: &DocumentId) -> Result<Compacted, DbError> {
    let mut tx = db.begin().await?;
    // Take the document's row first: the write lock before any read (SQLite),
    // the row lock against a concurrent compaction (PostgreSQL).
    let exists = sqlx::query("UPDATE documents SET snapshot = snapshot WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    if exists.rows_affected() == 0 {
        return Ok(Compacted::default());
    }
    let Some((doc, last)) = load_in(&mut tx, id).await? else {
        return Ok(Compacted::default());
    };
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM changes WHERE doc_id = $1 AND in_snapshot = 0 AND seq <= $2",
    )
    .bind(id.to_string())
    .bind(last)
    .fetch_one(&mut *tx)
    .await?;
    if pending == 0 {
        return Ok(Compacted::default());
    }
    let snapshot = doc.save();
    let snapshot_bytes = snapshot.len();
    sqlx::query("UPDATE documents SET snapshot = $1 WHERE id = $2")
        .bind(snapshot)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    let folded = sqlx::query(
        "UPDATE changes SET in_snapshot = 1 WHERE doc_id = $1 AND in_snapshot = 0 AND seq <= $2",
    )
    .bind(id.to_string())
    .bind(last)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Compacted {
        folded: usize::try_from(folded).unwrap_or(usize::MAX),
        snapshot_bytes,
    })
}

/// The documents with at least `min` changes outside their snapshot.
pub async fn candidates(db: &Db, min: i64) -> Result<Vec<DocumentId>, DbError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT doc_id FROM changes WHERE in_snapshot = 0 GROUP BY doc_id HAVING COUNT(*) >= $1 \
         ORDER BY doc_id",
    )
    .bind(min)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| crate::db::parse_col("document id", r))
        .collect()
}
