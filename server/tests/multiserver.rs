//! Two `sqm serve` processes on one PostgreSQL: a change stored through one
//! reaches the devices connected to the other, and so does a new document;
//! the receipt chain both write stays unbroken.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{Backend, TestServer, answer, drop_database, fresh_database};
use sync_core::audit::Cpna;
use sync_core::edit::Edit;
use sync_core::ids::DocumentId;

const SETTLE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_stored_by_one_server_reaches_devices_on_the_other() -> Result<()> {
    let (url, dir, pg) = fresh_database(Backend::Postgres).await?;
    let a = TestServer::start_at(&url, dir.clone(), None, true, |_| {}).await?;
    let b = TestServer::start_at(&url, dir.clone(), None, false, |_| {}).await?;
    let audit: DocumentId = sqlx::query_scalar::<_, String>(
        "SELECT id FROM planned_audits WHERE number = 'IA/DEMO-I/2025-26/003'",
    )
    .fetch_one(a.db.pool())
    .await?
    .parse()?;
    // K. Iyer on server A, S. Khan on server B, both holding audit 003.
    let mut iyer = a.tablet("k.iyer").await?;
    let mut khan = b.tablet("s.khan").await?;
    let mut on_a = a.connect(&mut iyer).await?;
    let mut on_b = b.connect(&mut khan).await?;
    for c in [&mut on_a, &mut on_b] {
        let ok = c
            .run_until(SETTLE, |c| c.engine.doc(&audit).is_some() && c.in_sync())
            .await?;
        assert!(ok, "the tablet downloaded audit 003");
    }
    // Iyer edits through A; Khan, on B, receives it.
    let author = iyer.author.clone();
    let edit = answer("mr.held", Cpna::Conform, "through server A")?;
    on_a.edit(audit, &edit, &author).await?;
    assert!(on_a.settle(SETTLE).await?);
    let mut want = on_a.engine.doc(&audit).context("doc")?.get_heads();
    want.sort();
    let reached = on_b
        .run_until(SETTLE, |c| {
            let mut h = c
                .engine
                .doc(&audit)
                .map(|d| d.get_heads())
                .unwrap_or_default();
            h.sort();
            h == want
        })
        .await?;
    assert!(
        reached,
        "the change never reached the device on the other server"
    );
    // A new document made through A (an NC of audit 003) reaches Khan on B.
    let nc = DocumentId::new_v7(server::db::now_ms(), [0x77; 10]);
    let link = sync_core::nc::NcLink {
        unit: "DEMO-I".parse()?,
        audit,
        finding: "f-15".parse()?,
        process: Some("P08".parse()?),
        clause: "3.2.3".parse()?,
        class: sync_core::nc::Severity::Minor,
        raised_on: "2026-01-15".parse()?,
    };
    on_a.edit(
        nc,
        &Edit::CreateNc {
            link,
            description: "Grievances analysed quarterly.".into(),
            provisional: String::new(),
        },
        &author,
    )
    .await?;
    assert!(on_a.settle(SETTLE).await?);
    let got = on_b
        .run_until(SETTLE, |c| c.engine.doc(&nc).is_some() && c.in_sync())
        .await?;
    assert!(
        got,
        "the new NC never reached the device on the other server"
    );
    // Receipts written through B, then through A again: A's remembered tip
    // of the receipt chain is stale by then, and the chain stays one line.
    let by_khan = answer("mr.inputs", Cpna::Partly, "through server B")?;
    on_b.edit(audit, &by_khan, &khan.author.clone()).await?;
    assert!(on_b.settle(SETTLE).await?);
    let again = answer("mr.held", Cpna::Partly, "through server A again")?;
    on_a.edit(audit, &again, &author).await?;
    assert!(on_a.settle(SETTLE).await?);
    let report = server::verify::verify(&a.db).await?;
    assert!(report.ok(), "{report}");
    drop((on_a, on_b));
    a.stop().await;
    b.stop().await;
    drop_database(&dir, pg.as_deref()).await;
    Ok(())
}

/// The heads of a document a tablet holds, sorted.
fn heads_of(c: &server::client::Client, doc: &DocumentId) -> Vec<sync_core::automerge::ChangeHash> {
    let mut h = c.engine.doc(doc).map(|d| d.get_heads()).unwrap_or_default();
    h.sort();
    h
}

/// Ends the servers' LISTEN connections and waits until they are gone.
async fn drop_listeners(db: &server::db::Db) -> Result<()> {
    let sql = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()";
    let ended: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()) t",
    )
    .fetch_one(db.pool())
    .await?;
    anyhow::ensure!(ended == 2, "{ended} LISTEN connections were found");
    for _ in 0..100 {
        let left: i64 = sqlx::query_scalar(sql).fetch_one(db.pool()).await?;
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the LISTEN connections did not end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_writing_at_once_through_a_dropped_listen_keep_one_chain_and_lose_nothing()
-> Result<()> {
    let (url, dir, pg) = fresh_database(Backend::Postgres).await?;
    let a = TestServer::start_at(&url, dir.clone(), None, true, |_| {}).await?;
    let b = TestServer::start_at(&url, dir.clone(), None, false, |_| {}).await?;
    let audit: DocumentId = sqlx::query_scalar::<_, String>(
        "SELECT id FROM planned_audits WHERE number = 'IA/DEMO-I/2025-26/003'",
    )
    .fetch_one(a.db.pool())
    .await?
    .parse()?;
    let mut iyer = a.tablet("k.iyer").await?;
    let mut khan = b.tablet("s.khan").await?;
    let mut on_a = a.connect(&mut iyer).await?;
    let mut on_b = b.connect(&mut khan).await?;
    for c in [&mut on_a, &mut on_b] {
        let ok = c
            .run_until(SETTLE, |c| c.engine.doc(&audit).is_some() && c.in_sync())
            .await?;
        assert!(ok, "the tablet downloaded audit 003");
    }
    let (ia, ka) = (iyer.author.clone(), khan.author.clone());
    // Both write at once, each through its own server, twenty answers each.
    let (left, right) = tokio::join!(
        async {
            for i in 0..20 {
                let e = answer(
                    &format!("sd.item_{}@P03", i % 8 + 1),
                    Cpna::Conform,
                    &format!("A {i}"),
                )?;
                on_a.edit(audit, &e, &ia).await?;
                on_a.run_until(Duration::from_millis(20), |_| false).await?;
            }
            anyhow::Ok(())
        },
        async {
            for i in 0..20 {
                let e = answer(
                    &format!("sd.item_{}@P02", i % 8 + 1),
                    Cpna::Partly,
                    &format!("B {i}"),
                )?;
                on_b.edit(audit, &e, &ka).await?;
                on_b.run_until(Duration::from_millis(20), |_| false).await?;
            }
            anyhow::Ok(())
        }
    );
    left?;
    right?;
    // Neither server hears the other for a moment; server A stores an edit then.
    drop_listeners(&a.db).await?;
    let e = answer("mr.held", Cpna::NotConform, "while nobody listened")?;
    on_a.edit(audit, &e, &ia).await?;
    assert!(on_a.settle(SETTLE).await?, "A's tablet did not settle");
    // Once listening again, server B brings it in: both tablets converge.
    let want = heads_of(&on_a, &audit);
    let reached = on_b
        .run_until(SETTLE, |c| heads_of(c, &audit) == want)
        .await?;
    assert!(
        reached,
        "the edit stored while nobody listened never reached the other server's tablet"
    );
    assert!(on_b.settle(SETTLE).await?, "B's tablet did not settle");
    let stored = server::db::documents::load(&a.db, &audit)
        .await?
        .context("stored")?;
    let mut stored_heads = stored.get_heads();
    stored_heads.sort();
    assert_eq!(
        stored_heads, want,
        "the database holds what both tablets hold"
    );
    for c in [&on_a, &on_b] {
        let doc = c.engine.doc(&audit).context("held")?;
        for change in doc.get_changes(&[]) {
            assert!(
                stored.get_change_meta_by_hash(&change.hash()).is_some(),
                "a change was lost"
            );
        }
    }
    let report = server::verify::verify(&a.db).await?;
    assert!(report.ok(), "the receipt chain is not one line: {report}");
    drop((on_a, on_b));
    a.stop().await;
    b.stop().await;
    drop_database(&dir, pg.as_deref()).await;
    Ok(())
}
