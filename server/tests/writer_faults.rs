//! The acknowledgement order, tested deterministically on SQLite and
//! PostgreSQL through the writer's fault seam (`CommitFaults`): while a
//! commit is held open no device is told its change is safe and no other
//! device hears of it; a failed commit is retried with nothing acknowledged
//! before it lands; a commit whose reply was lost is committed again with no
//! duplicate change, receipt or quarantine row, and the receipt chain
//! verifies; a new document is announced to the other tablets that may read
//! it only once its first store is committed, each of several queued
//! together, and also while another store is being set aside.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use common::sync_help::{
    SETTLE, finding, holds, metric_or_zero, nc_link, new_id, plan, rejections_with, stored,
};
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
    /// While set, the database commits nothing at all, not even the
    /// writer's empty probe: it is away.
    down: AtomicBool,
    /// Commits of at least one job tried.
    attempts: AtomicUsize,
}

impl Faults {
    fn new() -> Arc<Faults> {
        Arc::new(Faults {
            open: watch::channel(true).0,
            fail_before: AtomicUsize::new(0),
            lose_after: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            committed: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            attempts: AtomicUsize::new(0),
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
            if self.down.load(Ordering::SeqCst) {
                self.attempts
                    .fetch_add(usize::from(jobs > 0), Ordering::SeqCst);
                return Err("the database is away".into());
            }
            if jobs == 0 {
                return Ok(());
            }
            self.attempts.fetch_add(1, Ordering::SeqCst);
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
        c.sync.sweep_interval = Duration::from_secs(24 * 3600);
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

/// The writer's counters: changes stored, commits, stores set aside, and
/// changes the hub accepted (queued for the writer).
async fn counters(s: &TestServer) -> Result<[i64; 4]> {
    Ok([
        metric_or_zero(s, "sqm_sync_changes_stored_total").await?,
        metric_or_zero(s, "sqm_sync_commits_total").await?,
        metric_or_zero(s, "sqm_sync_stores_set_aside_total").await?,
        metric_or_zero(s, "sqm_sync_changes_accepted_total").await?,
    ])
}

/// Waits until the hub has accepted `n` more changes than `before` (they
/// are queued for the writer once accepted).
async fn accepted(s: &TestServer, c: &mut Client, before: i64, n: i64) -> Result<()> {
    let deadline = std::time::Instant::now() + SETTLE;
    while std::time::Instant::now() < deadline {
        if counters(s).await?[3] >= before + n {
            return Ok(());
        }
        c.run_until(Duration::from_millis(20), |_| false).await?;
    }
    anyhow::bail!("the hub never accepted {n} more changes")
}

on_both! {
    async fn jobs_that_queue_behind_a_held_commit_are_committed_together_and_counted(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, mut khan) = setup(backend, faults.clone()).await?;
        let member = server::access::author_of(&s.db, "s.khan").await?;
        let [stored0, commits0, _, accepted0] = counters(&s).await?;
        let committed = faults.committed.load(Ordering::SeqCst);
        faults.shut();
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held.")?, &lead.author).await?;
        let at_gate = iyer.run_until(SETTLE, |_| faults.waiting.load(Ordering::SeqCst) > 0).await?;
        assert!(at_gate, "the writer never reached the commit");
        // Two more stores queue behind the held one.
        khan.edit(audit, &answer("mr.inputs", Cpna::Partly, "Two of five.")?, &member).await?;
        iyer.edit(audit, &answer("sd.timeliness@P03", Cpna::Conform, "All in time.")?, &lead.author).await?;
        accepted(&s, &mut khan, accepted0, 3).await?;
        faults.reopen();
        for c in [&mut iyer, &mut khan] {
            let acked = c.run_until(SETTLE, |c| c.engine.unacknowledged(&audit).is_empty()).await?;
            assert!(acked, "not acknowledged");
        }
        assert_eq!(
            faults.committed.load(Ordering::SeqCst) - committed,
            2,
            "the held store, then the two queued behind it in one commit"
        );
        let [stored1, commits1, set_aside, _] = counters(&s).await?;
        assert_eq!((stored1 - stored0, commits1 - commits0, set_aside), (3, 2, 0));
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_store_that_fails_alone_once_is_tried_again_and_never_set_aside(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, _khan) = setup(backend, faults.clone()).await?;
        let [stored0, commits0, _, _] = counters(&s).await?;
        // The batch's two tries fail, then the store's first try alone.
        faults.fail_before.store(3, Ordering::SeqCst);
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held.")?, &lead.author).await?;
        let acked = iyer.run_until(SETTLE, |c| c.engine.unacknowledged(&audit).is_empty()).await?;
        assert!(acked, "never acknowledged");
        assert_eq!(faults.fail_before.load(Ordering::SeqCst), 0, "every failure was met");
        assert!(iyer.rejections.is_empty(), "{:?}", iyer.rejections);
        assert_eq!(count(&s, "SELECT COUNT(*) FROM quarantine").await?, 0, "set aside");
        let [stored1, commits1, set_aside, _] = counters(&s).await?;
        assert_eq!((stored1 - stored0, commits1 - commits0, set_aside), (1, 1, 0));
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn while_the_database_commits_nothing_a_store_waits_and_is_never_set_aside(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, _khan) = setup(backend, faults.clone()).await?;
        faults.down.store(true, Ordering::SeqCst);
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held.")?, &lead.author).await?;
        // Well past the tries after which a store the database refuses alone is set aside.
        let tried = iyer.run_until(SETTLE, |_| faults.attempts.load(Ordering::SeqCst) >= 8).await?;
        assert!(tried, "the writer stopped trying");
        assert_eq!(iyer.engine.unacknowledged(&audit).len(), 1, "acknowledged while the database was away");
        faults.down.store(false, Ordering::SeqCst);
        let acked = iyer.run_until(SETTLE, |c| c.engine.unacknowledged(&audit).is_empty()).await?;
        assert!(acked, "never acknowledged once the database was back");
        assert!(iyer.rejections.is_empty(), "{:?}", iyer.rejections);
        assert_eq!(count(&s, "SELECT COUNT(*) FROM quarantine").await?, 0, "set aside");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_store_queued_behind_one_set_aside_is_set_aside_with_it(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, _khan) = setup(backend, faults.clone()).await?;
        let [_, commits0, set_aside0, accepted0] = counters(&s).await?;
        let committed0 = faults.committed.load(Ordering::SeqCst);
        faults.shut();
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held.")?, &lead.author).await?;
        let at_gate = iyer.run_until(SETTLE, |_| faults.waiting.load(Ordering::SeqCst) > 0).await?;
        assert!(at_gate, "the writer never reached the commit");
        // A second store of the same document, made on the first, queues behind it.
        iyer.edit(audit, &answer("mr.inputs", Cpna::Partly, "Two of five.")?, &lead.author).await?;
        accepted(&s, &mut iyer, accepted0, 2).await?;
        // The first is refused in its batch and alone: set aside. The
        // second, which depends on it, must not be stored after it.
        faults.fail_before.store(2 + 3, Ordering::SeqCst);
        faults.reopen();
        // The sender is told once (its tablet starts again from what the
        // server holds and makes both edits anew); both stores are kept aside.
        let told = iyer.run_until(SETTLE, |c| rejections_with(c, "store.failed") > 0).await?;
        assert!(told, "the sender was never told");
        let both = "SELECT COUNT(*) FROM quarantine WHERE rule = 'store.failed'";
        let deadline = std::time::Instant::now() + SETTLE;
        while count(&s, both).await? < 2 && std::time::Instant::now() < deadline {
            iyer.run_until(Duration::from_millis(50), |_| false).await?;
        }
        assert_eq!(count(&s, both).await?, 2, "the second store was not kept aside with the first");
        let [_, _, set_aside, _] = counters(&s).await?;
        assert_eq!(set_aside - set_aside0, 2, "both counted");
        // Keeping a store aside is a commit, and it is counted like any
        // other: the counter comes to show every commit the database made.
        let made = || faults.committed.load(Ordering::SeqCst) - committed0;
        let deadline = std::time::Instant::now() + SETTLE;
        while counters(&s).await?[1] - commits0 != made() as i64 && std::time::Instant::now() < deadline {
            iyer.run_until(Duration::from_millis(50), |_| false).await?;
        }
        assert!(made() >= 2, "the two stores kept aside were not committed");
        assert_eq!(counters(&s).await?[1] - commits0, made() as i64, "commits counted");
        s.stop().await;
        Ok(())
    }
}

/// Starts the audit and writes its finding `f-01`, from which NCs are raised.
async fn with_finding(iyer: &mut Client, audit: DocumentId, lead: &Tablet) -> Result<()> {
    let start = Edit::Move {
        mv: "start".into(),
        note: String::new(),
    };
    iyer.edit(audit, &start, &lead.author).await?;
    iyer.edit(audit, &finding(Vec::new())?, &lead.author)
        .await?;
    anyhow::ensure!(iyer.settle(SETTLE).await?, "the lead did not settle");
    Ok(())
}

/// The lead raises a new NC on finding `f-01`; returns its id.
async fn raise(iyer: &mut Client, audit: DocumentId, lead: &Tablet, tag: u8) -> Result<DocumentId> {
    let nc = new_id(tag);
    let create = Edit::CreateNc {
        link: nc_link(audit)?,
        description: "Amendment beyond 15 days.".into(),
        provisional: String::new(),
    };
    iyer.edit(nc, &create, &lead.author).await?;
    Ok(nc)
}

// In the next two tests the rights sweep never runs after the start
// (`setup` sets it to a day): a connected reader can learn of a new
// document only from the hub's announcement once its first store is
// committed.

on_both! {
    async fn documents_created_behind_a_held_commit_each_reach_a_connected_reader_once_stored(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, mut khan) = setup(backend, faults.clone()).await?;
        with_finding(&mut iyer, audit, &lead).await?;
        let [_, _, _, accepted0] = counters(&s).await?;
        faults.shut();
        let first = raise(&mut iyer, audit, &lead, 0x61).await?;
        let at_gate = iyer.run_until(SETTLE, |_| faults.waiting.load(Ordering::SeqCst) > 0).await?;
        assert!(at_gate, "the writer never reached the commit");
        // The second NC's first store queues behind the first's.
        let second = raise(&mut iyer, audit, &lead, 0x62).await?;
        accepted(&s, &mut iyer, accepted0, 2).await?;
        khan.run_until(Duration::from_millis(300), |_| false).await?;
        assert!(khan.engine.doc(&first).is_none(), "announced before its first store was committed");
        faults.reopen();
        anyhow::ensure!(iyer.settle(SETTLE).await?, "the lead did not settle");
        holds(&s, &mut khan, &[first, second]).await?;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_document_created_while_another_store_is_set_aside_still_reaches_a_connected_reader(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, mut khan) = setup(backend, faults.clone()).await?;
        with_finding(&mut iyer, audit, &lead).await?;
        let [_, _, _, accepted0] = counters(&s).await?;
        faults.shut();
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held.")?, &lead.author).await?;
        let at_gate = iyer.run_until(SETTLE, |_| faults.waiting.load(Ordering::SeqCst) > 0).await?;
        assert!(at_gate, "the writer never reached the commit");
        // A new NC's first store queues behind the audit's, which is then
        // refused in its batch and alone, set aside, and the audit dropped
        // from memory while the NC's store waits.
        let nc = raise(&mut iyer, audit, &lead, 0x63).await?;
        accepted(&s, &mut iyer, accepted0, 2).await?;
        faults.fail_before.store(2 + 3, Ordering::SeqCst);
        faults.reopen();
        let told = iyer.run_until(SETTLE, |c| rejections_with(c, "store.failed") > 0).await?;
        assert!(told, "the sender was never told");
        let acked = iyer.run_until(SETTLE, |c| c.engine.unacknowledged(&nc).is_empty()).await?;
        assert!(acked, "the NC was never stored");
        holds(&s, &mut khan, &[nc]).await?;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn an_ncs_first_store_whose_reply_was_lost_gets_its_number_once_and_every_tablet_hears_it(backend: Backend) -> Result<()> {
        let faults = Faults::new();
        let (s, audit, lead, mut iyer, mut khan) = setup(backend, faults.clone()).await?;
        with_finding(&mut iyer, audit, &lead).await?;
        let commits = faults.committed.load(Ordering::SeqCst);
        faults.lose_after.store(2, Ordering::SeqCst);
        let nc = raise(&mut iyer, audit, &lead, 0x64).await?;
        let acked = iyer.run_until(SETTLE, |c| c.engine.unacknowledged(&nc).is_empty()).await?;
        assert!(acked, "never acknowledged");
        assert_eq!(faults.committed.load(Ordering::SeqCst) - commits, 3, "committed three times");
        // The server's numbering change was made at each try, the same each
        // time: stored once.
        let id = nc.to_string();
        let by_server = format!("SELECT COUNT(*) FROM receipts WHERE doc_id = '{id}' AND username = 'server'");
        assert_eq!(count(&s, &by_server).await?, 1, "numbered more than once");
        let number = server::db::documents::meta(&s.db, &nc).await?.and_then(|m| m.number);
        let numbered = |c: &Client| {
            c.engine
                .doc(&nc)
                .and_then(|d| sync_core::nc::Nc::read(d).ok())
                .and_then(|n| n.number)
        };
        for c in [&mut iyer, &mut khan] {
            let heard = c.run_until(SETTLE, |c| numbered(c).is_some()).await?;
            assert!(heard, "a tablet never heard the number");
            assert_eq!(numbered(c), number);
        }
        let report = server::verify::verify(&s.db).await?;
        assert!(report.ok(), "{report}");
        s.stop().await;
        Ok(())
    }
}
