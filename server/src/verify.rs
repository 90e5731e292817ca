//! `sqm verify`: the database's integrity. Every stored change must decode and
//! hash to the hash it is stored under; every change must have a receipt; the
//! receipts must form one unbroken hash chain; every document must load.

use std::fmt;

use sqlx::Row;
use sync_core::automerge::Change;

use crate::db::documents::{self, GENESIS, receipt_hash};
use crate::db::{Db, DbError};

/// Rows read per query while scanning.
const PAGE: i64 = 1000;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Documents checked.
    pub documents: usize,
    /// Changes checked.
    pub changes: usize,
    /// Receipts checked.
    pub receipts: usize,
    /// Everything wrong, in words.
    pub problems: Vec<String>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, text: String) {
        // A damaged database could list millions; the first hundred say enough.
        if self.problems.len() < 100 {
            self.problems.push(text);
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Checked {} documents, {} changes and {} receipts.",
            self.documents, self.changes, self.receipts
        )?;
        if self.ok() {
            writeln!(
                f,
                "OK: every change matches its hash and the receipt chain is unbroken."
            )
        } else {
            writeln!(f, "FAILED: {} problem(s):", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
            Ok(())
        }
    }
}

/// Checks the whole database.
pub async fn verify(db: &Db) -> Result<Report, DbError> {
    let mut report = Report::default();
    check_changes(db, &mut report).await?;
    check_receipts(db, &mut report).await?;
    let unreceipted: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.doc_id, c.hash FROM changes c LEFT JOIN receipts r \
         ON r.doc_id = c.doc_id AND r.change_hash = c.hash WHERE r.seq IS NULL LIMIT 100",
    )
    .fetch_all(db.pool())
    .await?;
    for (doc, hash) in unreceipted {
        report.problem(format!("change {hash} of document {doc} has no receipt"));
    }
    for meta in documents::all_meta(db).await? {
        report.documents += 1;
        if let Err(e) = documents::load(db, &meta.id).await {
            report.problem(format!("document {} does not load: {e}", meta.id));
        }
        check_snapshot(db, &meta.id, &mut report).await?;
    }
    Ok(report)
}

async fn check_changes(db: &Db, report: &mut Report) -> Result<(), DbError> {
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT seq, doc_id, hash, bytes FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(db.pool())
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            let doc: String = r.try_get(1)?;
            let hash: String = r.try_get(2)?;
            let bytes: Vec<u8> = r.try_get(3)?;
            after = seq;
            report.changes += 1;
            match Change::try_from(bytes.as_slice()) {
                Ok(c) if c.hash().to_string() == hash => {}
                Ok(c) => report.problem(format!(
                    "change #{seq} of document {doc} is stored as {hash} but its bytes hash to {}",
                    c.hash()
                )),
                Err(e) => report.problem(format!(
                    "change #{seq} ({hash}) of document {doc} is damaged: {e}"
                )),
            }
        }
    }
}

async fn check_receipts(db: &Db, report: &mut Report) -> Result<(), DbError> {
    let mut after = 0i64;
    let mut prev = GENESIS.to_owned();
    loop {
        let rows = sqlx::query(
            "SELECT seq, doc_id, change_hash, username, device_id, at, prev, hash FROM receipts \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(db.pool())
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            let doc: String = r.try_get(1)?;
            let change: String = r.try_get(2)?;
            let user: String = r.try_get(3)?;
            let device: String = r.try_get(4)?;
            let at: i64 = r.try_get(5)?;
            let stored_prev: String = r.try_get(6)?;
            let hash: String = r.try_get(7)?;
            after = seq;
            report.receipts += 1;
            if stored_prev != prev {
                report.problem(format!(
                    "receipt #{seq} does not follow the one before it (the chain is broken)"
                ));
            }
            if receipt_hash(&stored_prev, &doc, &change, &user, &device, at) != hash {
                report.problem(format!(
                    "receipt #{seq} (change {change} of document {doc}) has been altered"
                ));
            }
            prev = hash;
        }
    }
}

/// A compacted document's snapshot must hold every change marked as in it.
async fn check_snapshot(
    db: &Db,
    id: &sync_core::ids::DocumentId,
    report: &mut Report,
) -> Result<(), DbError> {
    let snapshot: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT snapshot FROM documents WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(db.pool())
            .await?;
    let Some(bytes) = snapshot else {
        return Ok(());
    };
    let Ok(doc) = sync_core::automerge::Automerge::load(&bytes) else {
        report.problem(format!("the snapshot of document {id} is damaged"));
        return Ok(());
    };
    let marked: Vec<String> =
        sqlx::query_scalar("SELECT hash FROM changes WHERE doc_id = $1 AND in_snapshot = 1")
            .bind(id.to_string())
            .fetch_all(db.pool())
            .await?;
    for hash in marked {
        let held = hash
            .parse::<sync_core::automerge::ChangeHash>()
            .is_ok_and(|h| doc.get_change_meta_by_hash(&h).is_some());
        if !held {
            report.problem(format!(
                "change {hash} of document {id} is marked as compacted but its snapshot lacks it"
            ));
        }
    }
    Ok(())
}
