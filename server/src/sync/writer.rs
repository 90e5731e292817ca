//! The writer: commits what the hub hands it in batched transactions (group
//! commit). While one transaction commits, the next jobs queue; the next
//! transaction takes them all. Every commit is durable before the hub hears of
//! it (SQLite `synchronous=FULL`, PostgreSQL's default), so batching costs
//! durability nothing and saves one disk flush per job.
//!
//! A failed commit is retried until it succeeds: nothing is acknowledged that
//! is not stored, and the devices keep their changes meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sync_core::automerge::ChangeHash;
use sync_core::ids::DocumentId;
use sync_core::permissions::DocContext;
use tokio::sync::mpsc;

use super::hub::HubMsg;
use crate::db::documents::{self, ChainTip, Origin, Quarantined};
use crate::db::{Db, DbError, DbKind};
use crate::http::metrics::Metrics;
use crate::projection::{Parts, Projection};

/// The most jobs one transaction takes.
const MAX_BATCH: usize = 2048;

/// Documents the writer remembers as recorded (past this it starts again).
const MAX_KNOWN: usize = 100_000;

/// A document is compacted once this many of its changes were stored since
/// (counted by this process; a restart only delays it).
pub const COMPACT_AFTER: usize = 2000;

/// Accepted changes of one document.
#[derive(Debug)]
pub struct StoreJob {
    /// The engine's ticket, confirmed after the commit.
    pub ticket: u64,
    /// The document.
    pub doc: DocumentId,
    /// Its link fields.
    pub ctx: DocContext,
    /// The changes' hashes.
    pub hashes: Vec<ChangeHash>,
    /// The changes' bytes.
    pub changes: Vec<Vec<u8>>,
    /// Who sent them.
    pub origin: Origin,
    /// The document's projection rows with them applied, and the parts
    /// that differ from the last ones handed to the writer (`None`: the
    /// same as those).
    pub projection: Option<(Projection, Parts)>,
}

/// One thing to write.
#[derive(Debug)]
pub enum WriterJob {
    /// Accepted changes.
    Store(Box<StoreJob>),
    /// A refused batch.
    Quarantine(Quarantined),
}

/// Starts the writer task; returns where to send it jobs.
pub fn start(
    db: Db,
    hub: mpsc::UnboundedSender<HubMsg>,
    metrics: Arc<Metrics>,
    server_id: Arc<str>,
) -> mpsc::UnboundedSender<WriterJob> {
    let (tx, mut rx) = mpsc::unbounded_channel::<WriterJob>();
    tokio::spawn(async move {
        let mut since_snapshot: HashMap<DocumentId, usize> = HashMap::new();
        // Documents known to have their `documents` row (rows are never removed).
        let mut known: HashSet<DocumentId> = HashSet::new();
        // The receipt chain's tip as this task last committed it.
        let mut tip: Option<ChainTip> = None;
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let mut wait = Duration::from_millis(50);
            loop {
                match commit(&db, &jobs, &server_id, &known, tip.as_ref()).await {
                    Ok((stored, chain)) => {
                        if chain.is_some() {
                            tip = chain;
                        }
                        if known.len() > MAX_KNOWN {
                            known.clear();
                        }
                        known.extend(jobs.iter().filter_map(|j| match j {
                            WriterJob::Store(s) => Some(s.doc),
                            WriterJob::Quarantine(_) => None,
                        }));
                        metrics.count(
                            "sqm_sync_changes_stored_total",
                            "Changes committed to the database.",
                            stored as u64,
                        );
                        metrics.count(
                            "sqm_sync_commits_total",
                            "Writer transactions committed.",
                            1,
                        );
                        break;
                    }
                    Err(e) => {
                        // It may have committed or not: read the chain afresh.
                        tip = None;
                        tracing::error!(cause = %e, jobs = jobs.len(), "commit failed; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
            for job in &jobs {
                if let WriterJob::Store(s) = job {
                    let n = since_snapshot.entry(s.doc).or_default();
                    *n += s.hashes.len();
                    if *n >= COMPACT_AFTER {
                        *n = 0;
                        let (db, doc) = (db.clone(), s.doc);
                        tokio::spawn(async move {
                            if let Err(e) = crate::compact::compact(&db, &doc).await {
                                tracing::warn!(%doc, cause = %e, "compaction failed; the changes stay as they are");
                            }
                        });
                    }
                }
            }
            let tickets = jobs
                .iter()
                .filter_map(|j| match j {
                    WriterJob::Store(s) => Some(s.ticket),
                    WriterJob::Quarantine(_) => None,
                })
                .collect();
            if hub.send(HubMsg::Stored { tickets }).is_err() {
                return;
            }
        }
    });
    tx
}

/// Commits a batch of jobs in one transaction; returns how many changes were
/// new and, if it took the receipt chain, the chain's tip it left.
async fn commit(
    db: &Db,
    jobs: &[WriterJob],
    server_id: &str,
    known: &HashSet<DocumentId>,
    tip: Option<&ChainTip>,
) -> Result<(usize, Option<ChainTip>), DbError> {
    let mut tx = db.begin().await?;
    // Taking the receipt chain first also takes the write lock first (SQLite
    // would otherwise have to upgrade a read lock, which can fail under load).
    let mut chain = if jobs.iter().any(|j| matches!(j, WriterJob::Store(_))) {
        Some(documents::lock_receipts(&mut tx, tip).await?)
    } else {
        None
    };
    // The last projection of each document in the batch is the one to keep;
    // a part changed by any of the batch's jobs is written.
    let mut projections: HashMap<DocumentId, (&Projection, Parts)> = HashMap::new();
    let mut docs: HashSet<DocumentId> = HashSet::new();
    // Every job's changes go in the same few statements, in the jobs' order.
    let hashes: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| match j {
            WriterJob::Store(s) => s.hashes.iter().map(ToString::to_string).collect(),
            WriterJob::Quarantine(_) => Vec::new(),
        })
        .collect();
    let mut appended = Vec::new();
    for (job, hashes) in jobs.iter().zip(&hashes) {
        match job {
            WriterJob::Store(s) => {
                if !known.contains(&s.doc) && docs.insert(s.doc) {
                    documents::ensure_document(&mut tx, &s.ctx, None, &s.origin.username).await?;
                }
                docs.insert(s.doc);
                appended.extend(hashes.iter().zip(&s.changes).map(|(hash, bytes)| {
                    documents::NewChange {
                        doc: &s.doc,
                        hash,
                        bytes,
                        origin: &s.origin,
                    }
                }));
                if let Some((rows, parts)) = &s.projection {
                    let parts = projections
                        .get(&s.doc)
                        .map_or(*parts, |(_, before)| before.or(*parts));
                    projections.insert(s.doc, (rows, parts));
                }
            }
            WriterJob::Quarantine(q) => documents::quarantine(&mut tx, q).await?,
        }
    }
    let mut stored = 0;
    if let Some(mut at) = chain.take() {
        let (last, new) = documents::append_all(&mut tx, &appended, at.last).await?;
        at.last = last;
        stored = new;
        chain = Some(at);
    }
    let projections: Vec<(&DocumentId, &Projection, Parts)> = projections
        .iter()
        .map(|(doc, (rows, parts))| (doc, *rows, *parts))
        .collect();
    documents::write_projections(&mut tx, &projections).await?;
    if db.kind() == DbKind::Postgres {
        for doc in &docs {
            super::notify::announce(&mut tx, server_id, doc).await?;
        }
    }
    tx.commit().await?;
    Ok((stored, chain))
}
