//! Documents: their link fields, append-only changes, snapshots, projection
//! rows, receipts (a hash chain over every accepted change) and quarantine.

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use sqlx::Row;
use sync_core::DocKind;
use sync_core::automerge::Automerge;
use sync_core::ids::DocumentId;
use sync_core::permissions::DocContext;

use super::accounts::hex;
use super::{Db, DbError, Params, Tx, now_ms, parse_col};
use crate::projection::{ContestedRow, Parts, Projection};

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

/// The stored NCs of a unit.
pub async fn ncs_of_unit(db: &Db, unit: &str) -> Result<Vec<DocumentId>, DbError> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM documents WHERE kind = 'nc' AND unit = $1 ORDER BY id")
            .bind(unit)
            .fetch_all(db.pool())
            .await?;
    ids.iter().map(|id| parse_col("documents.id", id)).collect()
}

/// The human number a stored document was given, if any.
pub async fn number_of(tx: &mut Tx, id: &DocumentId) -> Result<Option<String>, DbError> {
    let number: Option<Option<String>> =
        sqlx::query_scalar("SELECT number FROM documents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(number.flatten())
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

/// Statements of more rows than this are prepared for one use and not kept:
/// each row count is a statement of its own, and a connection's cache keeps
/// only the common small ones (a live edit is one row).
const CACHED_ROWS: usize = 8;

/// A change to append: its document, hash and bytes, and who sent it.
#[derive(Clone, Copy, Debug)]
pub struct NewChange<'a> {
    /// The document.
    pub doc: &'a DocumentId,
    /// The change's hash, as hex.
    pub hash: &'a str,
    /// The change's bytes.
    pub bytes: &'a [u8],
    /// Who sent it.
    pub origin: &'a Origin,
}

/// Appends changes of a document, (hash, bytes) each, with one receipt each,
/// skipping any already stored. See [`append_all`].
pub async fn append_changes(
    tx: &mut Tx,
    doc: &DocumentId,
    changes: &[(String, &[u8])],
    origin: &Origin,
    prev: String,
) -> Result<(String, usize), DbError> {
    let rows: Vec<NewChange<'_>> = changes
        .iter()
        .map(|(hash, bytes)| NewChange {
            doc,
            hash,
            bytes,
            origin,
        })
        .collect();
    append_all(tx, &rows, prev).await
}

/// Appends changes of any documents, with one receipt each in their order,
/// skipping any already stored (another server may have stored the same
/// change, or a device sent it twice). `prev` is the chain's last hash (from
/// [`lock_receipts`], whose lock keeps other writers of changes out until the
/// commit); returns the new last hash and how many were new.
///
/// Rows go in multi-row statements that return nothing: which of them are
/// stored already is asked first (for more than one row) and is almost always
/// none, so no row comes back from the database for each change.
pub async fn append_all(
    tx: &mut Tx,
    rows: &[NewChange<'_>],
    prev: String,
) -> Result<(String, usize), DbError> {
    let at = now_ms();
    let mut seen: HashSet<(&DocumentId, &str)> = HashSet::with_capacity(rows.len());
    let mut fresh: Vec<&NewChange<'_>> = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let candidates: Vec<&NewChange<'_>> = chunk
            .iter()
            .filter(|r| seen.insert((r.doc, r.hash)))
            .collect();
        let stored = if candidates.len() > 1 {
            stored_of(tx, &candidates).await?
        } else {
            HashSet::new()
        };
        let new: Vec<&NewChange<'_>> = candidates
            .into_iter()
            .filter(|r| !stored.contains(&(r.doc.to_string(), r.hash.to_owned())))
            .collect();
        if new.is_empty() {
            continue;
        }
        let inserted = insert_changes(tx, &new, at).await?;
        if inserted == new.len() {
            fresh.extend(new);
        } else if new.len() > 1 || inserted > 1 {
            // A single row that was there already is skipped; more rows than
            // were asked about mean another writer got past the receipts lock.
            return Err(DbError::Raced(format!(
                "{inserted} of {} changes were new",
                new.len()
            )));
        }
    }
    let mut prev = prev;
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        prev = insert_receipts(tx, chunk, prev, at).await?;
    }
    let mut docs: Vec<String> = fresh.iter().map(|r| r.doc.to_string()).collect();
    docs.sort_unstable();
    docs.dedup();
    for chunk in docs.chunks(ROWS_PER_INSERT) {
        let mut p = Params::of(tx);
        let mut sql = String::from("UPDATE documents SET updated_at = ");
        p.list(&mut sql, 1);
        sql.push_str(" WHERE id IN (");
        p.list(&mut sql, chunk.len());
        sql.push(')');
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(chunk.len() <= CACHED_ROWS)
            .bind(at);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok((prev, fresh.len()))
}

/// Which of `rows` are stored already, as (document, hash).
async fn stored_of(
    tx: &mut Tx,
    rows: &[&NewChange<'_>],
) -> Result<HashSet<(String, String)>, DbError> {
    // A join, so that each pair is one lookup in the (doc_id, hash) index:
    // `(doc_id, hash) IN (VALUES ...)` makes SQLite scan the whole index.
    let mut sql = String::from("SELECT c.doc_id, c.hash FROM (VALUES ");
    Params::of(tx).rows(&mut sql, rows.len(), 2);
    sql.push_str(") AS v JOIN changes AS c ON c.doc_id = v.column1 AND c.hash = v.column2");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows.len() <= CACHED_ROWS);
    for r in rows {
        q = q.bind(r.doc.to_string()).bind(r.hash);
    }
    let found = q.fetch_all(&mut **tx).await?;
    found
        .iter()
        .map(|row| Ok((row.try_get("doc_id")?, row.try_get("hash")?)))
        .collect()
}

/// Inserts changes (none of them stored, as far as this transaction knows);
/// returns how many rows went in.
async fn insert_changes(tx: &mut Tx, rows: &[&NewChange<'_>], at: i64) -> Result<usize, DbError> {
    let mut sql = String::from("INSERT INTO changes (doc_id, hash, bytes, stored_at) VALUES ");
    Params::of(tx).rows(&mut sql, rows.len(), 4);
    sql.push_str(" ON CONFLICT (doc_id, hash) DO NOTHING");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows.len() <= CACHED_ROWS);
    for r in rows {
        q = q
            .bind(r.doc.to_string())
            .bind(r.hash)
            .bind(r.bytes.to_vec())
            .bind(at);
    }
    let done = q.execute(&mut **tx).await?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

/// Appends one receipt per change, chained from `prev`; returns the last hash.
async fn insert_receipts(
    tx: &mut Tx,
    rows: &[&NewChange<'_>],
    prev: String,
    at: i64,
) -> Result<String, DbError> {
    let mut sql = String::from(
        "INSERT INTO receipts (doc_id, change_hash, username, device_id, at, prev, hash) VALUES ",
    );
    Params::of(tx).rows(&mut sql, rows.len(), 7);
    let mut prev = prev;
    let mut chain = Vec::with_capacity(rows.len());
    for r in rows {
        let doc = r.doc.to_string();
        let receipt = receipt_hash(
            &prev,
            &doc,
            r.hash,
            &r.origin.username,
            &r.origin.device,
            at,
        );
        chain.push((doc, std::mem::replace(&mut prev, receipt.clone()), receipt));
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows.len() <= CACHED_ROWS);
    for (r, (doc, before, receipt)) in rows.iter().zip(chain) {
        q = q
            .bind(doc)
            .bind(r.hash)
            .bind(r.origin.username.as_str())
            .bind(r.origin.device.as_str())
            .bind(at)
            .bind(before)
            .bind(receipt);
    }
    q.execute(&mut **tx).await?;
    Ok(prev)
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

/// Writes the projection rows of one document (the parts in `parts`).
pub async fn write_projection(
    tx: &mut Tx,
    doc: &DocumentId,
    projection: &Projection,
    parts: Parts,
) -> Result<(), DbError> {
    write_projections(tx, &[(doc, projection, parts)]).await
}

/// Writes the projection rows of several documents, each the parts in its
/// [`Parts`]: the audits' rows and their findings in multi-row statements.
pub async fn write_projections(
    tx: &mut Tx,
    items: &[(&DocumentId, &Projection, Parts)],
) -> Result<(), DbError> {
    let now = now_ms();
    let mut audits = Vec::new();
    let mut findings = Vec::new();
    let mut contested_rows = Vec::new();
    for (doc, projection, parts) in items {
        let id = doc.to_string();
        match projection {
            Projection::Audit {
                audit,
                findings: rows,
                contested,
                ..
            } => {
                if parts.row {
                    audits.push((id.clone(), audit));
                }
                if parts.entries {
                    findings.push((id.clone(), rows.as_slice()));
                    contested_rows.push((id.clone(), contested.as_slice()));
                }
            }
            Projection::Nc { nc, contested, .. } => {
                if parts.row {
                    write_nc_row(tx, &id, nc, now).await?;
                }
                if parts.entries {
                    contested_rows.push((id.clone(), contested.as_slice()));
                }
            }
            Projection::Review => {}
        }
        if parts.evidence {
            super::blobs::write_refs(tx, &id, projection.evidence()).await?;
        }
    }
    for chunk in audits.chunks(ROWS_PER_INSERT / 2) {
        write_audit_rows(tx, chunk, now).await?;
    }
    if !findings.is_empty() {
        write_findings(tx, &findings).await?;
    }
    if !contested_rows.is_empty() {
        write_contested(tx, &contested_rows).await?;
    }
    Ok(())
}

async fn write_audit_rows(
    tx: &mut Tx,
    rows: &[(String, &crate::projection::AuditRow)],
    now: i64,
) -> Result<(), DbError> {
    let mut sql = String::from(
        "INSERT INTO audits (doc_id, unit, number, state, lead, start_on, end_on, \
         template_version, responses, conflicts, late_edits, updated_at) VALUES ",
    );
    Params::of(tx).rows(&mut sql, rows.len(), 12);
    sql.push_str(
        " ON CONFLICT (doc_id) DO UPDATE SET unit = excluded.unit, number = excluded.number, \
         state = excluded.state, lead = excluded.lead, start_on = excluded.start_on, \
         end_on = excluded.end_on, template_version = excluded.template_version, \
         responses = excluded.responses, conflicts = excluded.conflicts, \
         late_edits = excluded.late_edits, updated_at = excluded.updated_at",
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows.len() <= CACHED_ROWS);
    for (id, audit) in rows {
        q = q
            .bind(id.as_str())
            .bind(audit.unit.as_str())
            .bind(audit.number.as_str())
            .bind(audit.state.as_str())
            .bind(audit.lead.as_str())
            .bind(audit.start_on.as_str())
            .bind(audit.end_on.as_deref())
            .bind(audit.template_version)
            .bind(audit.responses)
            .bind(audit.conflicts)
            .bind(audit.late_edits)
            .bind(now);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Deletes the rows of `table` whose `column` is one of `ids`.
async fn delete_rows<T>(
    tx: &mut Tx,
    table: &str,
    column: &str,
    ids: &[(String, T)],
) -> Result<(), DbError> {
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let mut sql = format!("DELETE FROM {table} WHERE {column} IN (");
        Params::of(tx).list(&mut sql, chunk.len());
        sql.push(')');
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(chunk.len() <= CACHED_ROWS);
        for (id, _) in chunk {
            q = q.bind(id.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Replaces the findings rows of each audit given.
async fn write_findings(
    tx: &mut Tx,
    audits: &[(String, &[crate::projection::FindingRow])],
) -> Result<(), DbError> {
    delete_rows(tx, "findings", "audit_id", audits).await?;
    let rows: Vec<(&str, &crate::projection::FindingRow)> = audits
        .iter()
        .flat_map(|(id, rows)| rows.iter().map(move |f| (id.as_str(), f)))
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO findings (audit_id, finding_id, class, clause, process, text) VALUES ",
        );
        Params::of(tx).rows(&mut sql, chunk.len(), 6);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(chunk.len() <= CACHED_ROWS);
        for (id, f) in chunk {
            q = q
                .bind(*id)
                .bind(f.finding_id.as_str())
                .bind(f.class.as_str())
                .bind(f.clause.as_str())
                .bind(f.process.as_deref())
                .bind(f.text.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Replaces the contested-values rows of each document given.
async fn write_contested(tx: &mut Tx, docs: &[(String, &[ContestedRow])]) -> Result<(), DbError> {
    delete_rows(tx, "contested_values", "doc_id", docs).await?;
    let values: Vec<(&str, i64, &ContestedRow)> = docs
        .iter()
        .flat_map(|(id, values)| {
            values
                .iter()
                .enumerate()
                .map(move |(i, v)| (id.as_str(), i64::try_from(i).unwrap_or(i64::MAX), v))
        })
        .collect();
    for chunk in values.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO contested_values (doc_id, place, seq, by_user, at, value) VALUES ",
        );
        Params::of(tx).rows(&mut sql, chunk.len(), 6);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(chunk.len() <= CACHED_ROWS);
        for (id, seq, v) in chunk {
            q = q
                .bind(*id)
                .bind(v.place.as_str())
                .bind(*seq)
                .bind(v.by_user.as_str())
                .bind(v.at.as_str())
                .bind(v.value.as_str());
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
    .bind(nc.process.as_deref())
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
    sqlx::query(
        "INSERT INTO search_terms (doc_id, provisional, words) VALUES ($1, $2, $3) \
         ON CONFLICT (doc_id) DO UPDATE SET provisional = excluded.provisional, words = excluded.words",
    )
    .bind(id)
    .bind(&nc.provisional)
    .bind(&nc.words)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One document found by [`search`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its stored row.
    pub meta: DocMeta,
    /// The raising tablet's number (NCs).
    pub provisional: Option<String>,
    /// Its description (NCs).
    pub words: Option<String>,
}

/// Documents whose number, provisional number or description holds `text`
/// (case does not matter), newest first, at most `limit`. Who may read
/// them is for the caller to decide.
pub async fn search(db: &Db, text: &str, limit: i64) -> Result<Vec<Found>, DbError> {
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let pattern = format!("%{escaped}%");
    let rows = sqlx::query(
        "SELECT d.id, s.provisional, s.words FROM documents d \
         LEFT JOIN search_terms s ON s.doc_id = d.id \
         WHERE LOWER(COALESCE(d.number, '')) LIKE $1 ESCAPE '\\' \
            OR LOWER(COALESCE(s.provisional, '')) LIKE $1 ESCAPE '\\' \
            OR LOWER(COALESCE(s.words, '')) LIKE $1 ESCAPE '\\' \
         ORDER BY d.created_at DESC, d.id LIMIT $2",
    )
    .bind(pattern)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0)?;
        let id: DocumentId = parse_col("documents.id", &id)?;
        let Some(meta) = meta(db, &id).await? else {
            continue;
        };
        found.push(Found {
            meta,
            provisional: row.try_get(1)?,
            words: row.try_get(2)?,
        });
    }
    Ok(found)
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

/// The documents whose changes were stored at or after `from` (ms).
pub async fn updated_since(db: &Db, from: i64) -> Result<Vec<DocumentId>, DbError> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM documents WHERE updated_at >= $1")
        .bind(from)
        .fetch_all(db.pool())
        .await?;
    ids.iter().map(|id| parse_col("document id", id)).collect()
}

/// Bytes of refused changes kept in quarantine for a user.
pub async fn quarantined_bytes(db: &Db, username: &str) -> Result<u64, DbError> {
    let total: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(LENGTH(bytes)) AS BIGINT) FROM quarantine WHERE username = $1",
    )
    .bind(username)
    .fetch_one(db.pool())
    .await?;
    Ok(u64::try_from(total.unwrap_or(0)).unwrap_or(0))
}

/// Text as a database column and a message may hold it: at most
/// `max_chars` characters, control characters (NUL among them, which
/// PostgreSQL's text refuses) written as `\u{..}` escapes.
pub fn storable_text(text: &str, max_chars: usize) -> String {
    let mut cut: String = text.chars().take(max_chars).collect();
    if text.chars().nth(max_chars).is_some() {
        cut.push('…');
    }
    sync_core::text::scrub(cut)
}

/// The most characters of a quarantine's message kept.
const MAX_QUARANTINE_MESSAGE: usize = 2000;

/// Keeps a refused batch, once (its message made storable first: it may
/// quote what a device sent, or a database's error).
pub async fn quarantine(tx: &mut Tx, q: &Quarantined) -> Result<(), DbError> {
    // Kept once: a commit whose reply was lost is committed again, and the
    // same refused changes from the same device under the same rule are
    // already here.
    sqlx::query(
        "INSERT INTO quarantine (doc_id, username, device_id, rule, message, bytes, received_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM quarantine \
         WHERE doc_id = $1 AND device_id = $3 AND rule = $4 AND bytes = $6)",
    )
    .bind(&q.doc)
    .bind(&q.origin.username)
    .bind(&q.origin.device)
    .bind(storable_text(&q.rule, 100))
    .bind(storable_text(&q.message, MAX_QUARANTINE_MESSAGE))
    .bind(q.bytes.clone())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
