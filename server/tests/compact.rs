//! Compaction, on SQLite and PostgreSQL: every document folds into a snapshot
//! and loads the same; changes stored afterwards load after it; a compaction
//! that does not commit changes nothing; `verify` checks snapshots too.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{Backend, TestServer};
use server::compact::{candidates, compact};
use server::db::documents;
use sync_core::automerge::ChangeHash;
use sync_core::edit::Edit;
use sync_core::ids::DocumentId;

async fn heads(s: &TestServer, id: &DocumentId) -> Result<Vec<ChangeHash>> {
    let mut h = documents::load(&s.db, id)
        .await?
        .context("loads")?
        .get_heads();
    h.sort();
    Ok(h)
}

on_both! {
    async fn documents_fold_into_snapshots_and_load_the_same(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let docs: Vec<DocumentId> = documents::all_meta(&s.db).await?.into_iter().map(|m| m.id).collect();
        assert_eq!(docs.len(), 12);
        let mut before = Vec::new();
        for d in &docs {
            before.push(heads(&s, d).await?);
        }
        assert_eq!(candidates(&s.db, 1).await?.len(), 12);
        let mut folded = 0;
        for d in &docs {
            folded += compact(&s.db, d).await?.folded;
        }
        assert_eq!(folded, 194, "every change of the demo folded");
        assert!(candidates(&s.db, 1).await?.is_empty());
        for (d, h) in docs.iter().zip(&before) {
            assert_eq!(&heads(&s, d).await?, h, "document {d} loads the same");
            assert_eq!(compact(&s.db, d).await?.folded, 0, "nothing more to fold");
        }
        let report = server::verify::verify(&s.db).await?;
        assert!(report.ok(), "{report}");
        assert_eq!(report.changes, 194, "the change rows stay, with their bytes");

        // A change stored after compaction loads after the snapshot.
        let review = docs.iter().copied().find(|d| d.to_string().ends_with("6060606060")).context("the review")?;
        let mut t = s.tablet("a.rao").await?;
        let mut c = s.connect(&mut t).await?;
        let ok = c.run_until(Duration::from_secs(20), |c| c.engine.doc(&review).is_some() && c.in_sync()).await?;
        assert!(ok);
        let author = t.author.clone();
        c.edit(review, &Edit::SetMinutes("Minutes amended after the review.".into()), &author).await?;
        assert!(c.settle(Duration::from_secs(20)).await?);
        let mut device = c.engine.doc(&review).context("doc")?.get_heads();
        device.sort();
        assert_eq!(heads(&s, &review).await?, device);
        assert_eq!(candidates(&s.db, 1).await?, [review]);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn verify_finds_a_snapshot_that_lacks_a_change_marked_as_in_it(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let doc = documents::all_meta(&s.db).await?.first().context("a doc")?.id;
        compact(&s.db, &doc).await?;
        // Another document's snapshot put in its place: the marked changes are not in it.
        let other = documents::all_meta(&s.db).await?.get(1).context("a doc")?.id;
        compact(&s.db, &other).await?;
        sqlx::query("UPDATE documents SET snapshot = (SELECT snapshot FROM documents WHERE id = $1) WHERE id = $2")
            .bind(other.to_string())
            .bind(doc.to_string())
            .execute(s.db.pool())
            .await?;
        let report = server::verify::verify(&s.db).await?;
        assert!(!report.ok());
        assert!(report.to_string().contains("marked as compacted but its snapshot lacks it"), "{report}");
        s.stop().await;
        Ok(())
    }
}

/// A document of `n` changes stored straight in the database (compaction
/// needs no schema), with its receipts.
async fn big_document(db: &server::db::Db, n: usize) -> Result<DocumentId> {
    use sync_core::automerge::transaction::Transactable;
    let id = DocumentId::new_v7(server::db::now_ms(), [0x42; 10]);
    let mut doc = sync_core::automerge::AutoCommit::new();
    for i in 0..n {
        doc.put(
            sync_core::automerge::ROOT,
            format!("k{}", i % 500),
            i as i64,
        )?;
        doc.commit();
    }
    let changes: Vec<(String, Vec<u8>)> = doc
        .get_changes(&[])
        .iter()
        .map(|c| (c.hash().to_string(), c.raw_bytes().to_vec()))
        .collect();
    let ctx = sync_core::permissions::DocContext {
        kind: sync_core::DocKind::Audit,
        id,
        unit: "DEMO-I".parse()?,
        audit: Some(id),
        process: None,
    };
    let mut tx = db.begin().await?;
    documents::ensure_document(&mut tx, &ctx, Some("IA/BIG/1"), "k.iyer").await?;
    let prev = documents::lock_receipts(&mut tx, None).await?.last;
    let pairs: Vec<(String, &[u8])> = changes
        .iter()
        .map(|(h, b)| (h.clone(), b.as_slice()))
        .collect();
    let origin = documents::Origin {
        username: "k.iyer".into(),
        device: "test".into(),
    };
    documents::append_changes(&mut tx, &id, &pairs, &origin, prev).await?;
    tx.commit().await?;
    Ok(id)
}

on_both! {
    async fn a_compaction_killed_in_the_middle_loses_nothing(backend: Backend) -> Result<()> {
        let (url, dir, pg) = common::fresh_database(backend).await?;
        let db = server::db::Db::connect(&url).await?;
        db.migrate().await?;
        server::seed::demo(&db).await?;
        let id = big_document(&db, 20_000).await?;
        let mut want = documents::load(&db, &id).await?.context("loads")?.get_heads();
        want.sort();
        let compact = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_sqm"))
                .args(["--db", &url, "--data-dir"])
                .arg(&dir)
                .arg("compact")
                .env("SQM_LOG", "error")
                .stdout(std::process::Stdio::null())
                .spawn()
        };
        // Killed at different points: before, during and after the big document's transaction.
        for wait_ms in [30u64, 120, 250, 400, 700] {
            let mut child = compact()?;
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            let _ = std::process::Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
            let _ = child.wait();
            let mut h = documents::load(&db, &id).await?.context("loads")?.get_heads();
            h.sort();
            assert_eq!(h, want, "after a kill at {wait_ms} ms");
            let report = server::verify::verify(&db).await?;
            assert!(report.ok(), "after a kill at {wait_ms} ms: {report}");
            assert_eq!(report.changes, 194 + 20_000);
        }
        // Left alone, it finishes; the document then loads from its snapshot.
        let done = compact()?.wait()?;
        assert!(done.success());
        assert!(candidates(&db, 1).await?.is_empty());
        let mut h = documents::load(&db, &id).await?.context("loads")?.get_heads();
        h.sort();
        assert_eq!(h, want);
        db.close().await;
        common::drop_database(&dir, pg.as_deref()).await;
        Ok(())
    }
}

on_both! {
    async fn a_document_folds_into_a_snapshot_by_itself_once_enough_changes_are_stored(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (audit, header) = common::sync_help::plan(&s, "IA/DEMO-I/2025-26/009").await?;
        let mut lead = s.tablet("k.iyer").await?;
        // A long day offline: the audit and enough answers to pass the bound.
        lead.edit_offline(audit, Edit::CreateAudit(header))?;
        let n = server::sync::writer::COMPACT_AFTER;
        for i in 0..n {
            let cpna = [sync_core::audit::Cpna::Conform, sync_core::audit::Cpna::Partly][i % 2];
            lead.edit_offline(audit, common::answer(&format!("sd.item_{}@P03", i % 40), cpna, &format!("take {i}"))?)?;
        }
        let mut iyer = s.connect(&mut lead).await?;
        anyhow::ensure!(iyer.settle(common::sync_help::SETTLE).await?, "the tablet did not settle");
        let folded = "SELECT COUNT(*) FROM documents WHERE id = $1 AND snapshot IS NOT NULL";
        let deadline = std::time::Instant::now() + common::sync_help::SETTLE;
        let mut snapshots = 0i64;
        while std::time::Instant::now() < deadline {
            snapshots = sqlx::query_scalar(folded).bind(audit.to_string()).fetch_one(s.db.pool()).await?;
            if snapshots == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(snapshots, 1, "the audit was never compacted");
        assert_eq!(heads(&s, &audit).await?, common::sync_help::heads(&iyer.engine, &audit));
        s.stop().await;
        Ok(())
    }
}
