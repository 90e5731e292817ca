//! The receipt chain's tip, on SQLite and PostgreSQL: a writer that remembers
//! the tip it committed skips reading the receipts table only while nobody
//! else has written receipts; after another writer it reads the real last
//! receipt, so the chain stays one line.

mod common;

use anyhow::{Context, Result};
use common::{Backend, TestServer};
use server::db::documents::{self, ChainTip, GENESIS, Origin};
use server::db::{Db, Tx};

/// A made-up change hash (the chain does not look inside changes).
fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// Takes the chain, appends one change and commits; returns the tip left.
async fn append_one(
    db: &Db,
    doc: &sync_core::ids::DocumentId,
    n: u8,
    known: Option<&ChainTip>,
) -> Result<ChainTip> {
    let origin = Origin {
        username: "s.khan".into(),
        device: "demo-tablet-s.khan".into(),
    };
    let mut tx = db.begin().await?;
    let tip = documents::lock_receipts(&mut tx, known).await?;
    let bytes = [n; 8];
    let (last, new) =
        documents::append_changes(&mut tx, doc, &[(hash(n), &bytes[..])], &origin, tip.last)
            .await?;
    assert_eq!(new, 1);
    tx.commit().await?;
    Ok(ChainTip {
        counter: tip.counter,
        last,
    })
}

async fn take(db: &Db, known: Option<&ChainTip>) -> Result<(Tx, ChainTip)> {
    let mut tx = db.begin().await?;
    let tip = documents::lock_receipts(&mut tx, known).await?;
    Ok((tx, tip))
}

on_both! {
    async fn a_remembered_chain_tip_is_used_only_while_nobody_else_wrote_receipts(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let doc = documents::all_meta(&s.db).await?.first().context("a demo document")?.id;
        let mine = append_one(&s.db, &doc, 1, None).await?;

        // Nobody wrote since: the remembered last hash is taken as it is, unread.
        let unread = ChainTip { counter: mine.counter, last: "remembered".into() };
        let (tx, tip) = take(&s.db, Some(&unread)).await?;
        assert_eq!(tip, ChainTip { counter: mine.counter + 1, last: "remembered".into() });
        tx.rollback().await?;

        // Another writer appends without knowing this one's tip.
        let theirs = append_one(&s.db, &doc, 2, None).await?;
        assert_eq!(theirs.counter, mine.counter + 1);
        assert_ne!(theirs.last, mine.last);

        // The remembered tip is now stale: the real last receipt is read.
        let (tx, tip) = take(&s.db, Some(&mine)).await?;
        assert_eq!(tip, ChainTip { counter: mine.counter + 2, last: theirs.last.clone() });
        tx.rollback().await?;
        let after = append_one(&s.db, &doc, 3, Some(&mine)).await?;

        // One line: every receipt names the one before it.
        let chain: Vec<(String, String)> = sqlx::query_as("SELECT prev, hash FROM receipts ORDER BY seq")
            .fetch_all(s.db.pool())
            .await?;
        let mut before = GENESIS.to_owned();
        for (prev, hash) in &chain {
            assert_eq!(prev, &before, "the chain forks at {hash}");
            before = hash.clone();
        }
        assert_eq!(before, after.last);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn one_append_of_many_documents_stores_each_new_change_once_with_one_receipt_in_order(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let metas = documents::all_meta(&s.db).await?;
        let (a, b) = (metas.first().context("a demo document")?.id, metas.get(1).context("two")?.id);
        append_one(&s.db, &a, 1, None).await?;
        let lead = Origin { username: "s.khan".into(), device: "demo-tablet-s.khan".into() };
        let partner = Origin { username: "r.iyer".into(), device: "demo-tablet-r.iyer".into() };
        // More rows than one statement takes (200), from two documents and two
        // senders: one stored before, one sent twice (in different statements).
        let hashes: Vec<String> = (0..450u32).map(|n| format!("{n:064x}")).collect();
        let bytes = [7u8; 8];
        let stored_before = hash(1);
        let mut rows = vec![documents::NewChange { doc: &a, hash: &stored_before, bytes: &bytes, origin: &lead }];
        for (n, h) in hashes.iter().enumerate() {
            let (doc, origin) = if n % 2 == 0 { (&a, &lead) } else { (&b, &partner) };
            rows.push(documents::NewChange { doc, hash: h, bytes: &bytes, origin });
        }
        rows.push(documents::NewChange { doc: &a, hash: &hashes[10], bytes: &bytes, origin: &lead });
        let mut tx = s.db.begin().await?;
        let tip = documents::lock_receipts(&mut tx, None).await?;
        let (last, new) = documents::append_all(&mut tx, &rows, tip.last).await?;
        tx.commit().await?;
        assert_eq!(new, 450, "the stored change and the repeat are skipped");

        let receipts: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT doc_id, change_hash, username, prev, hash FROM receipts ORDER BY seq",
        )
        .fetch_all(s.db.pool())
        .await?;
        let mine: Vec<&(String, String, String, String, String)> =
            receipts.iter().filter(|r| hashes.contains(&r.1)).collect();
        assert_eq!(mine.len(), 450, "one receipt per new change");
        for (n, r) in mine.iter().enumerate() {
            let (doc, who) = if n % 2 == 0 { (a, "s.khan") } else { (b, "r.iyer") };
            assert_eq!((r.0.as_str(), r.1.as_str(), r.2.as_str()), (doc.to_string().as_str(), hashes[n].as_str(), who));
        }
        assert_eq!(receipts.last().map(|r| r.4.clone()), Some(last));
        let mut before = GENESIS.to_owned();
        for r in &receipts {
            assert_eq!(r.3, before, "the chain forks at {}", r.4);
            before = r.4.clone();
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM changes WHERE hash = $1")
            .bind(&hashes[10])
            .fetch_one(s.db.pool())
            .await?;
        assert_eq!(count, 1);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_database_written_before_receipts_lost_their_hash_index_upgrades_with_its_chain_whole(backend: Backend) -> Result<()> {
        let (url, dir, pg) = common::fresh_database(backend).await?;
        let db = Db::connect(&url).await?;
        // The schema as sqm left it before migration 4, with the demo unit's
        // changes and receipts in it.
        db.migrate_through(3).await?;
        // Today's seeder writes today's projection rows and the holders of
        // the demo's files: the tables later migrations add for them are
        // made for it, and dropped again before the upgrade meets the
        // schema of migration 3 (they hold no receipts; migration 6 makes
        // the holders again from the files).
        let holders = match db.kind() {
            server::db::DbKind::Sqlite => include_str!("../../migrations/sqlite/0006_blob_holders.sql"),
            server::db::DbKind::Postgres => include_str!("../../migrations/postgres/0006_blob_holders.sql"),
        };
        let rules = match db.kind() {
            server::db::DbKind::Sqlite => include_str!("../../migrations/sqlite/0010_checklist_rules.sql"),
            server::db::DbKind::Postgres => include_str!("../../migrations/postgres/0010_checklist_rules.sql"),
        };
        let any_document = match db.kind() {
            server::db::DbKind::Sqlite => include_str!("../../migrations/sqlite/0011_contested_any_document.sql"),
            server::db::DbKind::Postgres => include_str!("../../migrations/postgres/0011_contested_any_document.sql"),
        };
        for later in [
            holders,
            include_str!("../../migrations/sqlite/0007_contested_values.sql"),
            include_str!("../../migrations/sqlite/0008_search.sql"),
            include_str!("../../migrations/sqlite/0009_due_rules.sql"),
            rules,
            any_document,
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(later)).execute(db.pool()).await?;
        }
        server::seed::demo(&db).await?;
        for table in ["blob_uploads", "blob_holders", "contested_values", "search_terms", "due_rules", "amendment_acks", "amendments"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}"))).execute(db.pool()).await?;
        }
        for column in ["required", "required_item", "required_answers"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("ALTER TABLE template_items DROP COLUMN {column}")))
                .execute(db.pool())
                .await?;
        }
        let before: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT seq, prev, hash FROM receipts ORDER BY seq")
                .fetch_all(db.pool())
                .await?;
        assert!(before.len() > 10, "the demo unit stores receipts");

        db.migrate().await?;
        let after: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT seq, prev, hash FROM receipts ORDER BY seq")
                .fetch_all(db.pool())
                .await?;
        assert_eq!(after, before, "every receipt keeps its number and hashes");
        let report = server::verify::verify(&db).await?;
        assert!(report.ok(), "{report}");
        assert_eq!(report.receipts, before.len());

        // The chain carries on from where it was, under the next number (the
        // appended change is made up: `verify` would call it damaged).
        let doc = documents::all_meta(&db).await?.first().context("a demo document")?.id;
        let tip = append_one(&db, &doc, 1, None).await?;
        let (seq, prev): (i64, String) =
            sqlx::query_as("SELECT seq, prev FROM receipts WHERE hash = $1")
                .bind(&tip.last)
                .fetch_one(db.pool())
                .await?;
        let (last_seq, _, last_hash) = before.last().context("receipts")?.clone();
        assert!(seq > last_seq, "receipt #{seq} after #{last_seq}");
        assert_eq!(prev, last_hash);
        db.close().await;
        common::drop_database(&dir, pg.as_deref()).await;
        Ok(())
    }
}
