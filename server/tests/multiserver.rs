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
        process: "P08".parse()?,
        clause: "3.2.3".parse()?,
        class: sync_core::nc::Severity::Minor,
        raised_on: "2026-01-15".parse()?,
    };
    on_a.edit(
        nc,
        &Edit::CreateNc {
            link,
            description: "Grievances analysed quarterly.".into(),
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
