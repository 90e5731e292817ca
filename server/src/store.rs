//! Storing accepted changes: the document's row, its changes with one receipt
//! each, and its projection rows, all in one transaction. Only after the
//! commit may anyone be told the changes are safe.

use sync_core::automerge::{Automerge, Change};
use sync_core::ids::DocumentId;
use sync_core::nc::DueRules;
use sync_core::permissions::DocContext;

use crate::db::documents::{self, Origin};
use crate::db::{Db, DbError, Tx};
use crate::projection::{Parts, project};

/// Writes accepted changes of one document inside `tx`; `doc` is the document
/// with them applied. `number` is the human number to record for a new
/// document (an NC without one gets NC-<n>). Returns how many were new.
pub async fn write_changes(
    tx: &mut Tx,
    id: &DocumentId,
    doc: &Automerge,
    changes: &[Change],
    origin: &Origin,
    number: Option<&str>,
) -> Result<usize, DbError> {
    let ctx = DocContext::read(doc)
        .map_err(|e| DbError::Corrupt(format!("document {id} cannot be read: {e}")))?;
    if ctx.id != *id {
        return Err(DbError::Corrupt(format!(
            "document {id} claims to be {}",
            ctx.id
        )));
    }
    documents::ensure_document(tx, &ctx, number, &origin.username).await?;
    let prev = documents::lock_receipts(tx, None).await?.last;
    let pairs: Vec<(String, &[u8])> = changes
        .iter()
        .map(|c| (c.hash().to_string(), c.raw_bytes()))
        .collect();
    let (_, new) = documents::append_changes(tx, id, &pairs, origin, prev).await?;
    if new > 0 {
        let rules: DueRules = crate::db::reference::due_rules(&mut **tx)
            .await?
            .get(&ctx.unit)
            .copied()
            .unwrap_or_default();
        let projection = project(doc, &rules)
            .map_err(|e| DbError::Corrupt(format!("document {id} cannot be projected: {e}")))?;
        documents::write_projection(tx, id, &projection, Parts::ALL).await?;
    }
    Ok(new)
}

/// [`write_changes`] in a transaction of its own, committed before returning.
pub async fn commit_changes(
    db: &Db,
    id: &DocumentId,
    doc: &Automerge,
    changes: &[Change],
    origin: &Origin,
    number: Option<&str>,
) -> Result<usize, DbError> {
    let mut tx = db.begin().await?;
    let new = write_changes(&mut tx, id, doc, changes, origin, number).await?;
    tx.commit().await?;
    Ok(new)
}
