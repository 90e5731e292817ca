//! The writer: commits what the hub hands it in batched transactions (group
//! commit). While one transaction commits, the next jobs queue; the next
//! transaction takes them all. Every commit is durable before the hub hears of
//! it (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit = on`), so
//! batching costs durability nothing and saves one disk flush per job.
//!
//! A failed commit is retried: nothing is acknowledged that is not stored,
//! and the devices keep their changes meanwhile. A batch that fails twice is
//! committed job by job, so that one job the database refuses for what it
//! holds (not for want of a connection: a trivial transaction still commits)
//! cannot stop every other document from landing. Such a job is set aside:
//! its changes go to the quarantine with the database's reason, and the hub
//! tells their sender and reads the document again from storage. Until the
//! hub says it has ([`WriterJob::Reset`]), later jobs of that document, built
//! on what could not be stored, are set aside with it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sync_core::DocKind;
use sync_core::automerge::{Change, ChangeHash};
use sync_core::ids::DocumentId;
use sync_core::permissions::DocContext;
use tokio::sync::mpsc;

use super::hub::HubMsg;
use crate::db::documents::{self, ChainTip, Origin, Quarantined};
use crate::db::{Db, DbError, DbKind, Tx};
use crate::http::metrics::Metrics;
use crate::projection::{Parts, Projection};

/// The most jobs one transaction takes.
const MAX_BATCH: usize = 2048;

/// Documents the writer remembers as recorded (past this it starts again).
const MAX_KNOWN: usize = 100_000;

/// A document is compacted once this many of its changes were stored since
/// (counted by this process; a restart only delays it).
pub const COMPACT_AFTER: usize = 2000;

/// Attempts at committing one job alone before the database is asked whether
/// it commits anything at all.
const ATTEMPTS_ALONE: u32 = 3;

/// The rule of changes set aside because the database refused to store them.
pub const STORE_FAILED: &str = sync_core::rules::Rule::StoreFailed.code();

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
    /// A refused batch, with the engine's ticket to confirm once kept.
    Quarantine(u64, Quarantined),
    /// The hub dropped this document after one of its stores was set aside:
    /// what it hands on for it from now on is built on storage again.
    Reset(DocumentId),
}

/// A store set aside: the changes were quarantined instead.
#[derive(Debug)]
pub struct SetAside {
    /// The engine's ticket.
    pub ticket: u64,
    /// The document.
    pub doc: DocumentId,
}

/// What the sender of a store set aside is told.
pub const SET_ASIDE_MESSAGE: &str = "The server could not store these changes. They are kept aside for an administrator, and you can make them again.";

/// What one round of the writer settled.
#[derive(Debug, Default)]
struct Outcome {
    /// Tickets committed (stores and quarantines).
    stored: Vec<u64>,
    /// Stores set aside.
    set_aside: Vec<SetAside>,
    /// Changes newly stored.
    changes: usize,
    /// Commits made.
    commits: u64,
    /// The server's own changes committed with them: the numbers it gave
    /// new NCs, for the hub to pass to every device holding them.
    numbered: Vec<Numbered>,
}

/// The server's change giving an NC its number, committed with the NC's
/// first store.
#[derive(Clone, Debug)]
pub struct Numbered {
    /// The NC.
    pub doc: DocumentId,
    /// The change's bytes.
    pub change: Vec<u8>,
}

/// The writer's memory between rounds.
struct Writer {
    db: Db,
    server_id: Arc<str>,
    /// Documents known to have their `documents` row (rows are never removed).
    known: HashSet<DocumentId>,
    /// The receipt chain's tip as this task last committed it.
    tip: Option<ChainTip>,
    /// Documents with a store set aside that the hub has not reset yet.
    broken: HashSet<DocumentId>,
    faults: Option<Arc<dyn CommitFaults>>,
}

/// Starts the writer task; returns where to send it jobs.
pub fn start(
    db: Db,
    hub: mpsc::UnboundedSender<HubMsg>,
    metrics: Arc<Metrics>,
    server_id: Arc<str>,
    faults: Option<Arc<dyn CommitFaults>>,
) -> mpsc::UnboundedSender<WriterJob> {
    let (tx, mut rx) = mpsc::unbounded_channel::<WriterJob>();
    tokio::spawn(async move {
        let mut since_snapshot: HashMap<DocumentId, usize> = HashMap::new();
        let mut writer = Writer {
            db: db.clone(),
            server_id,
            known: HashSet::new(),
            tip: None,
            broken: HashSet::new(),
            faults,
        };
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let outcome = writer.round(jobs.iter().collect()).await;
            metrics.count(
                "sqm_sync_changes_stored_total",
                "Changes committed to the database.",
                outcome.changes as u64,
            );
            metrics.count(
                "sqm_sync_commits_total",
                "Writer transactions committed.",
                outcome.commits,
            );
            if !outcome.set_aside.is_empty() {
                metrics.count(
                    "sqm_sync_stores_set_aside_total",
                    "Batches of accepted changes the database refused to store, kept in quarantine instead.",
                    outcome.set_aside.len() as u64,
                );
            }
            let stored: HashSet<u64> = outcome.stored.iter().copied().collect();
            for job in &jobs {
                if let WriterJob::Store(s) = job
                    && stored.contains(&s.ticket)
                {
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
            let msg = HubMsg::Stored {
                tickets: outcome.stored,
                set_aside: outcome.set_aside,
                numbered: outcome.numbered,
            };
            if hub.send(msg).is_err() {
                return;
            }
        }
    });
    tx
}

impl Writer {
    /// Commits the jobs: all in one transaction if it can, else one by one,
    /// setting aside those the database refuses.
    async fn round(&mut self, jobs: Vec<&WriterJob>) -> Outcome {
        let mut out = Outcome::default();
        // Jobs of a document whose store was set aside, up to the hub's reset.
        let mut todo: Vec<&WriterJob> = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                WriterJob::Reset(doc) => {
                    self.broken.remove(doc);
                }
                WriterJob::Store(s) if self.broken.contains(&s.doc) => {
                    self.set_aside(s, DEPENDS_ON_FAILED.into(), &mut out).await;
                }
                _ => todo.push(job),
            }
        }
        if todo.is_empty() {
            return out;
        }
        let mut wait = Duration::from_millis(50);
        for attempt in 0..2 {
            match self.commit(&todo).await {
                Ok((changes, numbered)) => {
                    out.changes += changes;
                    out.commits += 1;
                    out.numbered.extend(numbered);
                    out.stored.extend(todo.iter().filter_map(|j| ticket_of(j)));
                    return out;
                }
                Err(e) => {
                    tracing::error!(cause = %e, jobs = todo.len(), attempt, "commit failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        for job in todo {
            self.alone(job, &mut out).await;
        }
        out
    }

    /// Commits one job alone: retried while the database commits nothing
    /// at all (it is away), set aside once it refuses this job alone.
    async fn alone(&mut self, job: &WriterJob, out: &mut Outcome) {
        if let WriterJob::Store(s) = job
            && self.broken.contains(&s.doc)
        {
            return self.set_aside(s, DEPENDS_ON_FAILED.into(), out).await;
        }
        let mut wait = Duration::from_millis(50);
        let mut failures = 0;
        loop {
            match self.commit(&[job]).await {
                Ok((changes, numbered)) => {
                    out.changes += changes;
                    out.commits += 1;
                    out.numbered.extend(numbered);
                    out.stored.extend(ticket_of(job));
                    return;
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(cause = %e, failures, "commit of one job failed");
                    if failures >= ATTEMPTS_ALONE
                        && let WriterJob::Store(s) = job
                        && self.db_commits().await
                    {
                        // The database's reason is kept with the changes,
                        // for an administrator; the sender is told plainly.
                        let reason = format!("The database refused to store these changes: {e}");
                        return self.set_aside(s, reason, out).await;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Whether the database commits a transaction that writes nothing.
    async fn db_commits(&self) -> bool {
        if let Some(f) = &self.faults
            && f.before(0).await.is_err()
        {
            return false;
        }
        match self.db.begin().await {
            Ok(tx) => tx.commit().await.is_ok(),
            Err(_) => false,
        }
    }

    /// Keeps a store's changes in quarantine instead, with `reason` (retried
    /// until kept: they are the only copy the server has), and marks its
    /// document broken.
    async fn set_aside(&mut self, s: &StoreJob, reason: String, out: &mut Outcome) {
        tracing::error!(doc = %s.doc, user = %s.origin.username, changes = s.hashes.len(), %reason, "changes set aside");
        self.broken.insert(s.doc);
        let q = WriterJob::Quarantine(
            s.ticket,
            Quarantined {
                doc: s.doc.to_string(),
                origin: s.origin.clone(),
                rule: STORE_FAILED.into(),
                message: reason,
                bytes: s.changes.concat(),
            },
        );
        let mut wait = Duration::from_millis(50);
        loop {
            match self.commit(&[&q]).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(cause = %e, "cannot keep changes set aside; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
        out.commits += 1;
        out.set_aside.push(SetAside {
            ticket: s.ticket,
            doc: s.doc,
        });
    }

    /// One transaction; the writer's memory follows what it committed.
    async fn commit(&mut self, jobs: &[&WriterJob]) -> Result<(usize, Vec<Numbered>), DbError> {
        if let Some(f) = &self.faults {
            f.before(jobs.len()).await.map_err(DbError::Injected)?;
        }
        let done = commit(
            &self.db,
            jobs,
            &self.server_id,
            &self.known,
            self.tip.as_ref(),
        )
        .await;
        let done = match (done, &self.faults) {
            (Ok(ok), Some(f)) => f.after(jobs.len()).map(|()| ok).map_err(DbError::Injected),
            (other, _) => other,
        };
        match done {
            Ok((stored, chain, numbered)) => {
                if chain.is_some() {
                    self.tip = chain;
                }
                if self.known.len() > MAX_KNOWN {
                    self.known.clear();
                }
                self.known.extend(jobs.iter().filter_map(|j| match j {
                    WriterJob::Store(s) => Some(s.doc),
                    _ => None,
                }));
                Ok((stored, numbered))
            }
            Err(e) => {
                // It may have committed or not: read the chain afresh.
                self.tip = None;
                Err(e)
            }
        }
    }
}

/// A seam in the writer's commits for the tests of the acknowledgement
/// order (DESIGN §4, §5: nothing is acknowledged that is not committed):
/// they hold a commit open, fail it, or lose its reply. A server sets none.
pub trait CommitFaults: Send + Sync + std::fmt::Debug {
    /// Awaited before each commit of `jobs` jobs (0: the writer's probe of
    /// whether the database commits at all). An error stands for the
    /// database refusing the commit.
    fn before(&self, jobs: usize) -> futures_util::future::BoxFuture<'_, Result<(), String>>;
    /// Called once a commit of `jobs` jobs has succeeded. An error stands
    /// for its reply being lost: the commit stands, the writer cannot know.
    fn after(&self, jobs: usize) -> Result<(), String>;
}

/// Why a store built on one set aside is set aside too.
const DEPENDS_ON_FAILED: &str = "These changes were made on top of changes the server could not store; they are kept aside with them.";

fn ticket_of(job: &WriterJob) -> Option<u64> {
    match job {
        WriterJob::Store(s) => Some(s.ticket),
        WriterJob::Quarantine(ticket, _) => Some(*ticket),
        WriterJob::Reset(_) => None,
    }
}

/// Commits a batch of jobs in one transaction; returns how many changes were
/// new, if it took the receipt chain the chain's tip it left, and the
/// server's changes numbering the new NCs among them.
async fn commit(
    db: &Db,
    jobs: &[&WriterJob],
    server_id: &str,
    known: &HashSet<DocumentId>,
    tip: Option<&ChainTip>,
) -> Result<(usize, Option<ChainTip>, Vec<Numbered>), DbError> {
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
            _ => Vec::new(),
        })
        .collect();
    // The server's change numbering each NC first stored here, with its
    // hash, by the index of the job it follows.
    let mut numbering: HashMap<usize, (Numbered, String)> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        // A document this writer stored before has its first store behind it.
        if let WriterJob::Store(s) = job
            && !known.contains(&s.doc)
        {
            if docs.insert(s.doc) {
                documents::ensure_document(&mut tx, &s.ctx, None, &s.origin.username).await?;
            }
            if let Some(n) = number_change(&mut tx, s).await? {
                numbering.insert(i, n);
            }
        }
    }
    let server = documents::Origin {
        username: "server".into(),
        device: "server".into(),
    };
    let mut appended = Vec::new();
    for (i, (job, hashes)) in jobs.iter().zip(&hashes).enumerate() {
        match job {
            WriterJob::Store(s) => {
                docs.insert(s.doc);
                appended.extend(hashes.iter().zip(&s.changes).map(|(hash, bytes)| {
                    documents::NewChange {
                        doc: &s.doc,
                        hash,
                        bytes,
                        origin: &s.origin,
                    }
                }));
                if let Some((n, hash)) = numbering.get(&i) {
                    appended.push(documents::NewChange {
                        doc: &n.doc,
                        hash,
                        bytes: &n.change,
                        origin: &server,
                    });
                }
                if let Some((rows, parts)) = &s.projection {
                    let parts = projections
                        .get(&s.doc)
                        .map_or(*parts, |(_, before)| before.or(*parts));
                    projections.insert(s.doc, (rows, parts));
                }
            }
            WriterJob::Quarantine(_, q) => documents::quarantine(&mut tx, q).await?,
            WriterJob::Reset(_) => {}
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
    let mut numbered: Vec<(usize, Numbered)> =
        numbering.into_iter().map(|(i, (n, _))| (i, n)).collect();
    numbered.sort_by_key(|(i, _)| *i);
    Ok((
        stored,
        chain,
        numbered.into_iter().map(|(_, n)| n).collect(),
    ))
}

/// The server's change giving an NC its number, if this store is the NC's
/// first (it holds the change that created it: one with no dependencies).
async fn number_change(tx: &mut Tx, s: &StoreJob) -> Result<Option<(Numbered, String)>, DbError> {
    if s.ctx.kind != DocKind::Nc {
        return Ok(None);
    }
    let changes: Vec<Change> = s
        .changes
        .iter()
        .filter_map(|b| Change::try_from(b.as_slice()).ok())
        .collect();
    if !changes.iter().any(|c| c.deps().is_empty()) {
        return Ok(None);
    }
    let Some(number) = documents::number_of(tx, &s.doc).await? else {
        return Ok(None);
    };
    match sync_core::nc::number_change(&changes, &number) {
        Ok(mut change) => {
            let hash = change.hash().to_string();
            let numbered = Numbered {
                doc: s.doc,
                change: change.bytes().to_vec(),
            };
            Ok(Some((numbered, hash)))
        }
        Err(e) => {
            // The NC keeps its number in the database; devices see it in
            // search and reports, not in the document.
            tracing::error!(doc = %s.doc, cause = %e, "cannot make the change numbering an NC");
            Ok(None)
        }
    }
}
