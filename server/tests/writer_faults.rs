//! The acknowledgement order, tested deterministically on SQLite and
//! PostgreSQL through the writer's fault seam (`CommitFaults`): while a
//! commit is held open no device is told its change is safe and no other
//! device hears of it; a failed commit is retried with nothing acknowledged
//! before it lands; a commit whose reply was lost is committed again with no
//! duplicate change, receipt or quarantine row, and the receipt chain
//! verifies.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use common::sync_help::{SETTLE, holds, plan, stored};
use common::{Backend, Tablet, TestServer, answer};
use futures_util::future::BoxFuture;
use server::client::Client;
use server::sync::writer::CommitFaults;
use sync_core::audit::Cpna;
use sync_core::edit::Edit;
use sync_core::ids::DocumentId;
use tokio::sync::watch;

/// Commits wait while the gate is shut; the first `fail_before` commits are
/// refused and the first `lose_after` successful ones lose their reply
/// (only commits of at least one job count: the writer's probe passes).
#[derive(Debug)]
struct Faults {
    open: watch::Sender<bool>,
    fail_before: AtomicUsize,
    lose_after: AtomicUsize,
    /// Commits of at least one job waiting at the gate now.
    waiting: AtomicUsize,
    /// Commits of at least one job that succeeded (reply lost or not).
    committed: AtomicUsize,
}

impl Faults {
    fn new() -> Arc<Faults> {
        Arc::new(Faults {
            open: watch::channel(true).0,
            fail_before: AtomicUsize::new(0),
            lose_after: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            committed: AtomicUsize::new(0),
        })
    }

    fn shut(&self) {
        self.open.send_replace(false);
    }

    fn reopen(&self) {
        self.open.send_replace(true);
    }
}

/// Takes one from a counter if it is above zero.
fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

impl CommitFaults for Faults {
    fn before(&self, jobs: usize) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if jobs == 0 {
                return Ok(());
            }
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let mut open = self.open.subscribe();
            let _ = open.wait_for(|o| *o).await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if take_one(&self.fail_before) {
                return Err("the database refused the commit".into());
            }
            Ok(())
        })
    }

    fn after(&self, jobs: usize) -> Result<(), String> {
        if jobs == 0 {
            return Ok(());
        }
        self.committed.fetch_add(1, Ordering::SeqCst);
        if take_one(&self.lose_after) {
            return Err("the reply to the commit was lost".into());
        }
        Ok(())
    }
}

/// A server with the seam, an audit the lead made, and the lead's and the
/// member's tablets connected and holding it.
async fn setup(
    backend: Backend,
    faults: Arc<Faults>,
) -> Result<(TestServer, DocumentId, Tablet, Client, Client)> {
    let s = TestServer::start_configured(backend, true, |c| {
        c.sync.faults = Some(faults.clone());
    })
    .await?;
    let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/006").await?;
    let mut lead = s.tablet("k.iyer").await?;
    let mut iyer = s.connect(&mut lead).await?;
    iyer.edit(audit, &Edit::CreateAudit(header), &lead.author)
        .await?;
    anyhow::ensure!(iyer.settle(SETTLE).await?, "the lead did not settle");
    let mut member = s.tablet("s.khan").await?;
    let mut khan = s.connect(&mut member).await?;
    holds(&s, &mut khan, &[audit]).await?;
    Ok((s, audit, lead, iyer, khan))
}

fn change_count(c: &Client, doc: &DocumentId) -> usize {
    c.engine.doc(doc).map_or(0, |d| d.get_changes(&[]).len())
}

async fn count(s: &TestServer, sql: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(s.db.pool())
        .await?)
}

on_both! {
    async fn while_a_commit_is_held_no_device_hears_of_its_changes(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, mut khan) = setup(backend, faults.clone()).await?;
        let member_had = change_count(&khan, &audit);
        let stored_before = count(&s, "SELECT COUNT(*) FROM changes").await?;
        let commits = faults.committed.load(Ordering::SeqCst);
        faults.shut();
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held.")?, &lead.author).await?;
        // The commit is at the gate: from here on it is held.
        let at_gate = iyer.run_until(SETTLE, |_| faults.waiting.load(Ordering::SeqCst) > 0).await?;
        assert!(at_gate, "the writer never reached the commit");
        iyer.run_until(Duration::from_millis(500), |_| false).await?;
        khan.run_until(Duration::from_millis(500), |_| false).await?;
        assert_eq!(iyer.engine.unacknowledged(&audit).len(), 1, "acknowledged before the commit");
        assert_eq!(change_count(&khan, &audit), member_had, "another device heard of an uncommitted change");
        assert_eq!(count(&s, "SELECT COUNT(*) FROM changes").await?, stored_before);
        faults.reopen();
        let acked = iyer.run_until(SETTLE, |c| c.engine.unacknowledged(&audit).is_empty()).await?;
        assert!(acked, "not acknowledged once committed");
        assert_eq!(faults.committed.load(Ordering::SeqCst) - commits, 1);
        let heard = khan.run_until(SETTLE, |c| change_count(c, &audit) == member_had + 1).await?;
        assert!(heard, "the member never heard of the committed change");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_failed_commit_is_retried_and_nothing_is_acknowledged_before_it_lands(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, _khan) = setup(backend, faults.clone()).await?;
        let committed = faults.committed.load(Ordering::SeqCst);
        faults.fail_before.store(2, Ordering::SeqCst);
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held.")?, &lead.author).await?;
        // Watch every step: the acknowledgement must not come before the commit.
        let mut early = false;
        let acked = iyer
            .run_until(SETTLE, |c| {
                let done = c.engine.unacknowledged(&audit).is_empty();
                early |= done && faults.committed.load(Ordering::SeqCst) == committed;
                done
            })
            .await?;
        assert!(acked, "never acknowledged");
        assert!(!early, "acknowledged before any commit succeeded");
        assert_eq!(faults.fail_before.load(Ordering::SeqCst), 0, "both failures were met");
        stored(&s, &mut iyer, &[audit]).await?;
        assert!(server::verify::verify(&s.db).await?.ok());
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_commit_whose_reply_was_lost_is_committed_again_without_duplicates(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, mut khan) = setup(backend, faults.clone()).await?;
        // A refused batch whose commit's reply is lost twice: committed
        // three times, kept once.
        let commits = faults.committed.load(Ordering::SeqCst);
        faults.lose_after.store(2, Ordering::SeqCst);
        let mut believed = server::access::author_of(&s.db, "s.khan").await?;
        believed.audits.insert(audit, sync_core::permissions::TeamRole::Lead);
        khan.edit(audit, &Edit::Move { mv: "start".into(), note: String::new() }, &believed).await?;
        let told = khan.run_until(SETTLE, |c| !c.rejections.is_empty()).await?;
        assert!(told, "the member was never told");
        assert_eq!(faults.committed.load(Ordering::SeqCst) - commits, 3, "committed three times");
        assert_eq!(count(&s, "SELECT COUNT(*) FROM quarantine").await?, 1, "kept more than once");
        // An accepted change whose commit's reply is lost twice: stored once,
        // with one receipt, acknowledged once it is.
        let commits = faults.committed.load(Ordering::SeqCst);
        faults.lose_after.store(2, Ordering::SeqCst);
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held.")?, &lead.author).await?;
        let acked = iyer.run_until(SETTLE, |c| c.engine.unacknowledged(&audit).is_empty()).await?;
        assert!(acked, "never acknowledged");
        assert_eq!(faults.committed.load(Ordering::SeqCst) - commits, 3, "committed three times");
        let changes = count(&s, "SELECT COUNT(*) FROM changes").await?;
        let receipts = count(&s, "SELECT COUNT(*) FROM receipts").await?;
        let unique = count(&s, "SELECT COUNT(DISTINCT hash) FROM changes").await?;
        assert_eq!((changes, receipts), (unique, unique), "a change or receipt was stored twice");
        let report = server::verify::verify(&s.db).await?;
        assert!(report.ok(), "{report}");
        s.stop().await;
        Ok(())
    }
}
