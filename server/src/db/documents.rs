//! Documents: their link fields, append-only changes, snapshots, projection
//! rows, receipts (a hash chain over every accepted change) and quarantine.

use sha2::{Digest, Sha256};
use sqlx::Row;
use sync_core::DocKind;
use sync_core::automerge::Automerge;
use sync_core::ids::DocumentId;
use sync_core::permissions::DocContext;

use super::accounts::hex;
use super::{Db, DbError, Tx, now_ms, parse_col};
use crate::projection::{Parts, Projection};

/// The receipt before the first one.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A stored document's link fields and human number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocMeta {
    /// Its id.
    pub id: DocumentId,
    /// audit, nc or review.
    pub kind: DocKind,
    /// Its unit.
    pub unit: String,
    /// Its audit (an audit: itself).
    pub audit: Option<String>,
    /// Its process (NCs).
    pub process: Option<String>,
    /// The human number the server gave it.
    pub number: Option<String>,
}

impl DocMeta {
    /// The link fields as sync-core's rules read them.
    pub fn context(&self) -> Result<DocContext, DbError> {
        Ok(DocContext {
            kind: self.kind,
            id: self.id,
            unit: parse_col("unit", &self.unit)?,
            audit: self
                .audit
                .as_deref()
                .map(|a| parse_col("audit", a))
                .transpose()?,
            process: self
                .process
                .as_deref()
                .map(|p| parse_col("process", p))
                .transpose()?,
        })
    }
}

/// Who an accepted batch of changes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The user.
    pub username: String,
    /// The device ("seed" for the demo loader).
    pub device: String,
}

fn kind_of(text: &str) -> Result<DocKind, DbError> {
    match text {
        "audit" => Ok(DocKind::Audit),
        "nc" => Ok(DocKind::Nc),
        "review" => Ok(DocKind::Review),
        other => Err(DbError::Corrupt(format!("document kind '{other}'"))),
    }
}

/// The stored name of a document kind.
pub fn kind_name(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Audit => "audit",
        DocKind::Nc => "nc",
        DocKind::Review => "review",
    }
}

fn meta_of(r: &sqlx::any::AnyRow) -> Result<DocMeta, DbError> {
    Ok(DocMeta {
        id: parse_col("document id", &r.try_get::<String, _>(0)?)?,
        kind: kind_of(&r.try_get::<String, _>(1)?)?,
        unit: r.try_get(2)?,
        audit: r.try_get(3)?,
        process: r.try_get(4)?,
        number: r.try_get(5)?,
    })
}

/// A document's link fields, if it is stored.
pub async fn meta(db: &Db, id: &DocumentId) -> Result<Option<DocMeta>, DbError> {
    let row =
        sqlx::query("SELECT id, kind, unit, audit, process, number FROM documents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(db.pool())
            .await?;
    row.as_ref().map(meta_of).transpose()
}

/// Every stored document's link fields.
pub async fn all_meta(db: &Db) -> Result<Vec<DocMeta>, DbError> {
    let rows =
        sqlx::query("SELECT id, kind, unit, audit, process, number FROM documents ORDER BY id")
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(meta_of).collect()
}

/// Loads a document from its snapshot and the changes after it, both read
/// in one consistent transaction (a compaction may commit in between).
pub async fn load(db: &Db, id: &DocumentId) -> Result<Option<Automerge>, DbError> {
    let mut tx = crate::compact::consistent(db).await?;
    let doc = crate::compact::load_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(doc.map(|(doc, _)| doc))
}

/// Records a document the first time one of its changes is stored, giving an
/// NC its number (NC-<n>, counted per unit). Does nothing if it is stored.
pub async fn ensure_document(
    tx: &mut Tx,
    ctx: &DocContext,
    number: Option<&str>,
    by: &str,
) -> Result<(), DbError> {
    let id = ctx.id.to_string();
    let exists = sqlx::query("SELECT 1 FROM documents WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_some() {
        return Ok(());
    }
    let number = match (ctx.kind, number) {
        (_, Some(n)) => Some(n.to_owned()),
        (DocKind::Nc, None) => {
            let n = next_counter(tx, &format!("nc/{}", ctx.unit)).await?;
            Some(format!("NC-{n:02}"))
        }
        _ => None,
    };
    let now = now_ms();
    sqlx::query(
        "INSERT INTO documents (id, kind, unit, audit, process, number, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(kind_name(ctx.kind))
    .bind(ctx.unit.as_str())
    .bind(ctx.audit.map(|a| a.to_string()))
    .bind(ctx.process.as_ref().map(ToString::to_string))
    .bind(number)
    .bind(by)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The next value of a named counter (1 for a new one).
pub async fn next_counter(tx: &mut Tx, scope: &str) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO counters (scope, value) VALUES ($1, 1) \
         ON CONFLICT (scope) DO UPDATE SET value = counters.value + 1",
    )
    .bind(scope)
    .execute(&mut **tx)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM counters WHERE scope = $1")
            .bind(scope)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Where the receipt chain stands after a transaction that took it: the
/// chain counter's value and the last receipt's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTip {
    /// The `receipts` counter, bumped once by every transaction that takes the chain.
    pub counter: i64,
    /// The hash of the last receipt ([`GENESIS`] before the first).
    pub last: String,
}

/// Takes the receipt chain for this transaction and returns its tip. Call
/// before writing receipts: the counter row's lock makes concurrent writers
/// (other servers on PostgreSQL) wait, so the chain never forks.
///
/// `known` is the tip this process committed last, if it is sure of it. Every
/// writer of receipts bumps the counter first, so when the counter is one past
/// `known`'s, nobody has written receipts since and `known`'s last hash is
/// still the last: the receipts table is not read.
pub async fn lock_receipts(tx: &mut Tx, known: Option<&ChainTip>) -> Result<ChainTip, DbError> {
    let counter: i64 = sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE scope = 'receipts' RETURNING value",
    )
    .fetch_one(&mut **tx)
    .await?;
    if let Some(k) = known.filter(|k| k.counter.checked_add(1) == Some(counter)) {
        return Ok(ChainTip {
            counter,
            last: k.last.clone(),
        });
    }
    let last: Option<String> =
        sqlx::query_scalar("SELECT hash FROM receipts ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    Ok(ChainTip {
        counter,
        last: last.unwrap_or_else(|| GENESIS.to_owned()),
    })
}

/// The hash of a receipt, from the one before it and its fields.
pub fn receipt_hash(
    prev: &str,
    doc: &str,
    change: &str,
    user: &str,
    device: &str,
    at: i64,
) -> String {
    let mut h = Sha256::new();
    for field in [prev, doc, change, user, device, &at.to_string()] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex(&h.finalize())
}

/// Rows per INSERT statement when appending (both databases take far more
/// parameters than this needs).
const ROWS_PER_INSERT: usize = 200;

/// Appends changes of a document, (hash, bytes) each, with one receipt each,
/// skipping any already stored (another server may have stored the same
/// change). `prev` is the chain's last hash (from [`lock_receipts`]); returns
/// the new last hash and how many were new. Rows go in multi-row statements.
pub async fn append_changes(
    tx: &mut Tx,
    doc: &DocumentId,
    changes: &[(String, &[u8])],
    origin: &Origin,
    prev: String,
) -> Result<(String, usize), DbError> {
    use std::fmt::Write;
    let id = doc.to_string();
    let at = now_ms();
    let mut prev = prev;
    let mut new = 0;
    for chunk in changes.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from("INSERT INTO changes (doc_id, hash, bytes, stored_at) VALUES ");
        for i in 0..chunk.len() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}($1, ${}, ${}, $2)", 3 + 2 * i, 4 + 2 * i);
        }
        sql.push_str(" ON CONFLICT (doc_id, hash) DO NOTHING RETURNING hash");
        let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .bind(&id)
            .bind(at);
        for (hash, bytes) in chunk {
            q = q.bind(hash.as_str()).bind(bytes.to_vec());
        }
        let inserted: std::collections::HashSet<String> =
            q.fetch_all(&mut **tx).await?.into_iter().collect();
        // Receipts in the order the changes came (the chain's order), new ones only.
        let fresh: Vec<&String> = chunk
            .iter()
            .map(|(h, _)| h)
            .filter(|h| inserted.contains(*h))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        new += fresh.len();
        let mut sql = String::from(
            "INSERT INTO receipts (doc_id, change_hash, username, device_id, at, prev, hash) VALUES ",
        );
        let mut chain = Vec::with_capacity(fresh.len());
        for (i, hash) in fresh.iter().enumerate() {
            let receipt = receipt_hash(&prev, &id, hash, &origin.username, &origin.device, at);
            chain.push((
                *hash,
                std::mem::replace(&mut prev, receipt.clone()),
                receipt,
            ));
            let sep = if i == 0 { "" } else { ", " };
            let base = 5 + 3 * i;
            let _ = write!(
                sql,
                "{sep}($1, ${base}, $2, $3, $4, ${}, ${})",
                base + 1,
                base + 2
            );
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&id)
            .bind(&origin.username)
            .bind(&origin.device)
            .bind(at);
        for (hash, before, receipt) in chain {
            q = q.bind(hash.as_str()).bind(before).bind(receipt);
        }
        q.execute(&mut **tx).await?;
    }
    if new > 0 {
        sqlx::query("UPDATE documents SET updated_at = $1 WHERE id = $2")
            .bind(at)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
    }
    Ok((prev, new))
}

/// The stored changes of a document this caller does not have yet.
pub async fn changes_not_in(
    db: &Db,
    id: &DocumentId,
    have: impl Fn(&str) -> bool,
) -> Result<Vec<Vec<u8>>, DbError> {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT hash, bytes FROM changes WHERE doc_id = $1 ORDER BY seq")
            .bind(id.to_string())
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .filter(|(h, _)| !have(h))
        .map(|(_, b)| b)
        .collect())
}

/// The link fields of the documents of a unit.
pub async fn meta_of_unit(db: &Db, unit: &str) -> Result<Vec<DocMeta>, DbError> {
    let rows =
        sqlx::query("SELECT id, kind, unit, audit, process, number FROM documents WHERE unit = $1")
            .bind(unit)
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(meta_of).collect()
}

/// Replaces a document's projection rows.
pub async fn write_projection(
    tx: &mut Tx,
    doc: &DocumentId,
    projection: &Projection,
    parts: Parts,
) -> Result<(), DbError> {
    let id = doc.to_string();
    let now = now_ms();
    match projection {
        Projection::Audit {
            audit, findings, ..
        } => {
            if parts.row {
                write_audit_row(tx, &id, audit, now).await?;
            }
            if parts.findings {
                write_findings(tx, &id, findings).await?;
            }
        }
        Projection::Nc(nc) if parts.row => write_nc_row(tx, &id, nc, now).await?,
        Projection::Nc(_) | Projection::Review => {}
    }
    if parts.evidence {
        super::blobs::write_refs(tx, &id, projection.evidence()).await?;
    }
    Ok(())
}

async fn write_audit_row(
    tx: &mut Tx,
    id: &str,
    audit: &crate::projection::AuditRow,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
                "INSERT INTO audits (doc_id, unit, number, state, lead, start_on, end_on, \
                 template_version, responses, conflicts, late_edits, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (doc_id) DO UPDATE SET unit = excluded.unit, number = excluded.number, \
                 state = excluded.state, lead = excluded.lead, start_on = excluded.start_on, \
                 end_on = excluded.end_on, template_version = excluded.template_version, \
                 responses = excluded.responses, conflicts = excluded.conflicts, \
                 late_edits = excluded.late_edits, updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(&audit.unit)
            .bind(&audit.number)
            .bind(&audit.state)
            .bind(&audit.lead)
            .bind(&audit.start_on)
            .bind(audit.end_on.as_deref())
            .bind(audit.template_version)
            .bind(audit.responses)
            .bind(audit.conflicts)
            .bind(audit.late_edits)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    Ok(())
}

async fn write_findings(
    tx: &mut Tx,
    id: &str,
    findings: &[crate::projection::FindingRow],
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM findings WHERE audit_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for chunk in findings.chunks(ROWS_PER_INSERT) {
        use std::fmt::Write;
        let mut sql = String::from(
            "INSERT INTO findings (audit_id, finding_id, class, clause, process, text) VALUES ",
        );
        for i in 0..chunk.len() {
            let sep = if i == 0 { "" } else { ", " };
            let b = 2 + 5 * i;
            let _ = write!(
                sql,
                "{sep}($1, ${b}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4
            );
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id);
        for f in chunk {
            q = q
                .bind(&f.finding_id)
                .bind(&f.class)
                .bind(&f.clause)
                .bind(f.process.as_deref())
                .bind(&f.text);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_nc_row(
    tx: &mut Tx,
    id: &str,
    nc: &crate::projection::NcRow,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO ncs (doc_id, number, unit, audit_id, finding_id, process, clause, class, \
         state, raised_on, response_due, action_due, closed_on, conflicts, updated_at) \
         VALUES ($1, (SELECT number FROM documents WHERE id = $1), $2, $3, $4, $5, $6, $7, \
         $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (doc_id) DO UPDATE SET state = excluded.state, \
         response_due = excluded.response_due, action_due = excluded.action_due, \
         closed_on = excluded.closed_on, conflicts = excluded.conflicts, \
         updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(&nc.unit)
    .bind(&nc.audit_id)
    .bind(&nc.finding_id)
    .bind(&nc.process)
    .bind(&nc.clause)
    .bind(&nc.class)
    .bind(&nc.state)
    .bind(&nc.raised_on)
    .bind(&nc.response_due)
    .bind(&nc.action_due)
    .bind(nc.closed_on.as_deref())
    .bind(nc.conflicts)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A refused batch, kept out of the document but never dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// The document it was for.
    pub doc: String,
    /// Who sent it.
    pub origin: Origin,
    /// The rule broken.
    pub rule: String,
    /// Why, in words.
    pub message: String,
    /// The refused changes' bytes, concatenated.
    pub bytes: Vec<u8>,
}

/// Keeps a refused batch.
pub async fn quarantine(tx: &mut Tx, q: &Quarantined) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO quarantine (doc_id, username, device_id, rule, message, bytes, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&q.doc)
    .bind(&q.origin.username)
    .bind(&q.origin.device)
    .bind(&q.rule)
    .bind(&q.message)
    .bind(q.bytes.clone())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
