//! What one user, or one broken row, cannot do to everyone else's sync, on
//! SQLite and PostgreSQL: a store the database refuses is set aside and
//! every other document keeps landing; a refusal is told only once it is
//! kept; a document that cannot be read is never taken for a new one; a
//! change made on another device of the same user is refused; a connection
//! that sends more than the hub takes in is closed and what it queued is
//! dropped unread; refused changes past a user's quarantine bound are not
//! kept and stay on the tablet; documents a connection was creating are
//! forgotten with it; a clean close is answered with the client's code.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::sync_help::{
    SETTLE, holds, metric_or_zero, plan, rejections_with, stored, stored_heads,
};
use common::{Backend, Tablet, TestServer, answer};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use server::client::{Client, ClientError};
use server::db::DbKind;
use server::sync::close;
use sync_core::audit::Cpna;
use sync_core::automerge::sync;
use sync_core::edit::Edit;
use sync_core::engine::Notice;
use sync_core::envelope::{Body, Envelope};
use sync_core::ids::DocumentId;
use tokio_tungstenite::tungstenite::Message;

/// The lead's tablet, connected, with the audits planned as `numbers` made.
async fn lead_with_audits(
    s: &TestServer,
    numbers: &[&str],
) -> Result<(Tablet, Client, Vec<DocumentId>)> {
    let mut planned = Vec::new();
    for number in numbers {
        planned.push(plan(s, number).await?);
    }
    let mut lead = s.tablet("k.iyer").await?;
    let mut iyer = s.connect(&mut lead).await?;
    let mut ids = Vec::new();
    for (id, header) in planned {
        iyer.edit(id, &Edit::CreateAudit(header), &lead.author)
            .await?;
        ids.push(id);
    }
    anyhow::ensure!(iyer.settle(SETTLE).await?, "the lead did not settle");
    Ok((lead, iyer, ids))
}

/// Quarantine rows of a document: (rule, message).
async fn quarantined(s: &TestServer, doc: &DocumentId) -> Result<Vec<(String, String)>> {
    Ok(
        sqlx::query_as("SELECT rule, message FROM quarantine WHERE doc_id = $1 ORDER BY id")
            .bind(doc.to_string())
            .fetch_all(s.db.pool())
            .await?,
    )
}

/// Makes the database refuse every change of one document (a row it cannot
/// take, as PostgreSQL refuses a NUL in text), or take them again.
async fn refuse_changes_of(s: &TestServer, doc: &DocumentId, refuse: bool) -> Result<()> {
    let statements: Vec<String> = match (s.db.kind(), refuse) {
        (DbKind::Sqlite, true) => vec![format!(
            "CREATE TRIGGER refuse_changes BEFORE INSERT ON changes WHEN NEW.doc_id = '{doc}' \
             BEGIN SELECT RAISE(ABORT, 'this row cannot be stored'); END"
        )],
        (DbKind::Sqlite, false) => vec!["DROP TRIGGER refuse_changes".into()],
        (DbKind::Postgres, true) => vec![
            format!(
                "CREATE FUNCTION refuse_changes() RETURNS trigger AS $$ BEGIN \
                 IF NEW.doc_id = '{doc}' THEN RAISE EXCEPTION 'this row cannot be stored'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER refuse_changes BEFORE INSERT ON changes FOR EACH ROW \
             EXECUTE FUNCTION refuse_changes()"
                .into(),
        ],
        (DbKind::Postgres, false) => vec![
            "DROP TRIGGER refuse_changes ON changes".into(),
            "DROP FUNCTION refuse_changes()".into(),
        ],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(s.db.pool())
            .await?;
    }
    Ok(())
}

on_both! {
    async fn a_store_the_database_refuses_is_set_aside_and_every_other_document_keeps_landing(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (mut lead, mut iyer, ids) =
            lead_with_audits(&s, &["IA/DEMO-I/2025-26/006", "IA/DEMO-I/2025-26/007"]).await?;
        let (broken, fine) = (ids[0], ids[1]);
        refuse_changes_of(&s, &broken, true).await?;
        // Both edits go out together, so they may share the writer's transaction.
        iyer.edit(broken, &answer("mr.held", Cpna::Conform, "Register seen.")?, &lead.author).await?;
        iyer.edit(fine, &answer("mr.held", Cpna::Partly, "Two files late.")?, &lead.author).await?;
        let told = iyer.run_until(SETTLE, |c| rejections_with(c, "store.failed") > 0).await?;
        assert!(told, "the author was told");
        stored(&s, &mut iyer, &[fine]).await?;
        let kept = quarantined(&s, &broken).await?;
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0].0, "store.failed");
        assert!(kept[0].1.contains("cannot be stored"), "the database's reason is kept: {}", kept[0].1);
        let Some(Notice::Rejected { message, changes, .. }) = iyer.rejections.first().cloned() else {
            anyhow::bail!("no rejection");
        };
        assert!(!message.contains("cannot be stored"), "the database's words stay on the server: {message}");
        // The writer goes on: the other audit takes another edit.
        iyer.edit(fine, &answer("sd.timeliness@P03", Cpna::Conform, "")?, &lead.author).await?;
        stored(&s, &mut iyer, &[fine]).await?;
        // Once the database takes the rows again, the tablet makes the refused
        // edit again under a fresh actor, and it lands; it was kept aside once.
        refuse_changes_of(&s, &broken, false).await?;
        let (status, fresh) = s.post(&format!("/api/v1/devices/{}/actors", lead.device), &lead.token, json!({})).await?;
        assert_eq!(status.as_u16(), 201);
        let fresh: sync_core::automerge::ActorId = fresh["actor"].as_str().context("actor")?.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        lead.author = server::access::author_of(&s.db, "k.iyer").await?;
        let refusal = sync_core::permissions::Refusal { rule: "store.failed", message };
        let recovery = iyer.engine.recover(broken, &changes, &refusal, fresh, &lead.author).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(recovery.replayed, 1);
        iyer.carry_out(recovery.effects).await?;
        anyhow::ensure!(iyer.settle(SETTLE).await?, "did not settle after recovery");
        let audit = sync_core::audit::AuditView::read(&server::db::documents::load(&s.db, &broken).await?.context("stored")?)?;
        let answered: Vec<String> = audit.content.responses.keys().map(ToString::to_string).collect();
        assert!(answered.iter().any(|k| k == "mr.held"), "the edit landed: {answered:?}");
        assert_eq!(quarantined(&s, &broken).await?.len(), 1, "kept aside once");
        s.stop().await;
        Ok(())
    }
}

/// The member's tablet believes it leads the audit and starts it offline
/// (a move the lead's alone: refused on the server).
fn start_as_if_lead(member: &mut Tablet, audit: DocumentId) -> Result<()> {
    member
        .author
        .audits
        .insert(audit, sync_core::permissions::TeamRole::Lead);
    member.edit_offline(
        audit,
        Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
    )
}

/// Holds the quarantine table so that nothing can be added to it until the
/// returned transaction ends; reads through it see what is committed.
async fn lock_quarantine(s: &TestServer) -> Result<server::db::Tx> {
    let mut tx = s.db.begin().await?;
    let sql = match s.db.kind() {
        // Any write waits for this one (busy), reads do not.
        DbKind::Sqlite => "UPDATE quarantine SET rule = rule WHERE 0",
        DbKind::Postgres => "LOCK TABLE quarantine IN SHARE MODE",
    };
    sqlx::query(sql).execute(&mut *tx).await?;
    Ok(tx)
}

on_both! {
    async fn a_device_is_told_of_a_refusal_only_once_the_quarantine_row_is_committed(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (_lead, iyer, ids) = lead_with_audits(&s, &["IA/DEMO-I/2025-26/006"]).await?;
        let audit = ids[0];
        let mut member = s.tablet("s.khan").await?;
        let mut khan = s.connect(&mut member).await?;
        holds(&s, &mut khan, &[audit]).await?;
        member.park(khan).await;
        start_as_if_lead(&mut member, audit)?;
        let lock = lock_quarantine(&s).await?;
        let mut khan = s.connect(&mut member).await?;
        let early = khan.run_until(Duration::from_secs(2), |c| !c.rejections.is_empty()).await?;
        assert!(!early, "told while the quarantine row was not committed");
        lock.commit().await?;
        let told = khan.run_until(SETTLE, |c| !c.rejections.is_empty()).await?;
        assert!(told, "told once committed");
        assert_eq!(quarantined(&s, &audit).await?.len(), 1, "the row was there when the tablet heard");
        drop(iyer.disconnect().await);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_document_that_cannot_be_read_is_never_taken_for_a_new_one(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| {
            c.sync.tick_interval = Duration::from_millis(50);
        })
        .await?;
        let (_lead, iyer, ids) = lead_with_audits(&s, &["IA/DEMO-I/2025-26/006"]).await?;
        drop(iyer.disconnect().await);
        let audit = ids[0];
        let mut member = s.tablet("s.khan").await?;
        let mut khan = s.connect(&mut member).await?;
        holds(&s, &mut khan, &[audit]).await?;
        member.park(khan).await;
        member.edit_offline(audit, answer("mr.held", Cpna::Conform, "Seen offline.")?)?;
        // Nobody holds the audit now: it is unloaded on the next ticks.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let first: (i64, Vec<u8>) = sqlx::query_as("SELECT seq, bytes FROM changes WHERE doc_id = $1 ORDER BY seq LIMIT 1")
            .bind(audit.to_string())
            .fetch_one(s.db.pool())
            .await?;
        sqlx::query("UPDATE changes SET bytes = $1 WHERE seq = $2")
            .bind(vec![0u8; 8])
            .bind(first.0)
            .execute(s.db.pool())
            .await?;
        let stored = count_changes(&s, &audit).await?;
        let mut khan = s.connect(&mut member).await?;
        // Nothing is said about it, nothing stored, nothing kept aside.
        let heard = khan.run_until(Duration::from_secs(2), |c| !c.rejections.is_empty()).await?;
        assert!(!heard, "{:?}", khan.rejections);
        assert_eq!(count_changes(&s, &audit).await?, stored);
        assert!(quarantined(&s, &audit).await?.is_empty());
        // Once it reads again, the offline answer lands.
        sqlx::query("UPDATE changes SET bytes = $1 WHERE seq = $2")
            .bind(first.1)
            .bind(first.0)
            .execute(s.db.pool())
            .await?;
        anyhow::ensure!(khan.settle(Duration::from_secs(60)).await?, "did not settle once the document read");
        assert_eq!(count_changes(&s, &audit).await?, stored + 1);
        assert!(khan.rejections.is_empty(), "{:?}", khan.rejections);
        s.stop().await;
        Ok(())
    }
}

async fn count_changes(s: &TestServer, doc: &DocumentId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM changes WHERE doc_id = $1")
            .bind(doc.to_string())
            .fetch_one(s.db.pool())
            .await?,
    )
}

/// A sync message carrying exactly these changes.
fn carrying(doc: DocumentId, changes: Vec<Vec<u8>>) -> Result<Vec<u8>> {
    let msg = sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: changes.into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    Ok(Envelope {
        doc,
        body: Body::Sync(msg.encode()),
    }
    .encode()?)
}

on_both! {
    async fn a_change_made_on_another_device_of_the_same_user_is_refused_unless_stored(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (_lead, iyer, ids) = lead_with_audits(&s, &["IA/DEMO-I/2025-26/006"]).await?;
        drop(iyer.disconnect().await);
        let audit = ids[0];
        let mut first = s.tablet("s.khan").await?;
        let mut second = s.tablet("s.khan").await?;
        let mut a = s.connect(&mut first).await?;
        holds(&s, &mut a, &[audit]).await?;
        first.park(a).await;
        first.edit_offline(audit, answer("mr.held", Cpna::Conform, "Made on the first tablet.")?)?;
        let change = {
            let doc = first.offline().doc(&audit).context("held")?;
            let stored = server::db::documents::load(&s.db, &audit).await?.context("stored")?;
            let new = doc.get_changes(&stored.get_heads());
            anyhow::ensure!(new.len() == 1, "one new change");
            new[0].raw_bytes().to_vec()
        };
        // The second tablet sends the first one's change: not its actor.
        let mut b = s.connect(&mut second).await?;
        holds(&s, &mut b, &[audit]).await?;
        b.send_raw(carrying(audit, vec![change.clone()])?).await?;
        let told = b.run_until(SETTLE, |c| !c.rejections.is_empty()).await?;
        assert!(told, "the second tablet was told");
        let kept = quarantined(&s, &audit).await?;
        assert_eq!(kept.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(), ["actor.not_registered"]);
        // From the first tablet it lands; then the second, on a new
        // connection, may relay it.
        let mut a = s.connect(&mut first).await?;
        anyhow::ensure!(a.settle(SETTLE).await?, "the first tablet did not settle");
        drop(a.disconnect().await);
        second.park(b).await;
        let mut b = s.connect(&mut second).await?;
        b.send_raw(carrying(audit, vec![change])?).await?;
        holds(&s, &mut b, &[audit]).await?;
        assert!(b.rejections.is_empty(), "{:?}", b.rejections);
        assert_eq!(quarantined(&s, &audit).await?.len(), 1, "a stored change is relayed freely");
        s.stop().await;
        Ok(())
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw socket signed in as a tablet.
async fn raw_socket(s: &TestServer, t: &Tablet) -> Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url()).await?;
    let hello = json!({"access_token": t.token, "device_id": t.device});
    ws.send(Message::Text(hello.to_string().into())).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"ready\":true") => Ok(ws),
        other => anyhow::bail!("no ready: {other:?}"),
    }
}

/// The next close frame's (code, reason), skipping other messages.
async fn closed(ws: &mut Ws) -> Result<(u16, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await? {
            Some(Ok(Message::Close(Some(f)))) => return Ok((f.code.into(), f.reason.to_string())),
            Some(Ok(Message::Close(None))) | None => return Ok((1005, String::new())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

on_both! {
    async fn a_connection_sending_more_than_the_hub_takes_in_is_closed_and_its_frames_dropped_unread(backend: Backend) -> Result<()> {
        const LIMIT: usize = 256 << 10;
        const FRAME: usize = 64 << 10;
        let s = TestServer::start_configured(backend, true, |c| c.sync.inbound_bytes = LIMIT).await?;
        let (_lead, mut iyer, ids) = lead_with_audits(&s, &["IA/DEMO-I/2025-26/006"]).await?;
        let audit = ids[0];
        let mut member = s.tablet("s.khan").await?;
        let mut khan = s.connect(&mut member).await?;
        holds(&s, &mut khan, &[audit]).await?;
        let sender = s.tablet("p.sharma").await?;
        let mut flood = raw_socket(&s, &sender).await?;
        let received_before = metric_or_zero(&s, "sqm_sync_bytes_in_total").await?;
        // With the hub held, the sender's frames queue: the limit's worth is
        // taken in, one frame more closes the connection.
        let hold = s.sync_handle().hold_hub();
        let junk = vec![0xEE; FRAME];
        for _ in 0..LIMIT / FRAME {
            flood.send(Message::Binary(junk.clone().into())).await?;
        }
        flood.send(Message::Binary(junk.clone().into())).await?;
        let (code, reason) = closed(&mut flood).await?;
        assert_eq!(code, close::QUEUE_FULL, "{reason}");
        // Meanwhile the lead answers; the member hears of it once the hub goes on.
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Live.")?, &_lead.author).await?;
        drop(hold);
        anyhow::ensure!(iyer.settle(SETTLE).await?, "the lead did not settle");
        holds(&s, &mut khan, &[audit]).await?;
        assert_eq!(heads_of(&khan, &audit), stored_heads(&s, &audit).await?);
        // None of the flood was read: every frame it queued was dropped.
        let dropped = metric_or_zero(&s, "sqm_sync_frames_dropped_total").await?;
        assert_eq!(dropped, (LIMIT / FRAME) as i64, "the frames queued before the close");
        let received = metric_or_zero(&s, "sqm_sync_bytes_in_total").await? - received_before;
        assert!(received < FRAME as i64, "{received} bytes of frames were read");
        // Just under the limit, nothing closes.
        let mut calm = raw_socket(&s, &sender).await?;
        let hold = s.sync_handle().hold_hub();
        for _ in 0..LIMIT / FRAME {
            calm.send(Message::Binary(junk.clone().into())).await?;
        }
        drop(hold);
        calm.send(Message::Close(None)).await?;
        let (code, _) = closed(&mut calm).await?;
        assert_ne!(code, close::QUEUE_FULL);
        s.stop().await;
        Ok(())
    }
}

fn heads_of(c: &Client, doc: &DocumentId) -> Vec<sync_core::automerge::ChangeHash> {
    common::sync_help::heads(&c.engine, doc)
}

/// The member's offline start of each of `audits` audits (the lead's
/// alone) is refused; returns the quarantine rows of all of them, the close
/// code if the connection closed, and the bytes of each refused start.
async fn member_refused_with_quarantine_bound(
    backend: Backend,
    bound: Option<u64>,
    audits: usize,
) -> Result<(Vec<(String, String)>, Option<u16>, Vec<u64>)> {
    let s = TestServer::start_configured(backend, true, |c| {
        if let Some(b) = bound {
            c.sync.quarantine_bytes_per_user = b;
        }
    })
    .await?;
    let numbers = ["IA/DEMO-I/2025-26/006", "IA/DEMO-I/2025-26/007"];
    let (_lead, iyer, ids) = lead_with_audits(&s, &numbers[..audits]).await?;
    drop(iyer.disconnect().await);
    let mut member = s.tablet("s.khan").await?;
    let mut khan = s.connect(&mut member).await?;
    holds(&s, &mut khan, &ids).await?;
    member.park(khan).await;
    let mut sizes = Vec::new();
    for audit in &ids {
        start_as_if_lead(&mut member, *audit)?;
        let doc = member.offline().doc(audit).context("held")?;
        let stored = server::db::documents::load(&s.db, audit)
            .await?
            .context("stored")?;
        sizes.push(
            doc.get_changes(&stored.get_heads())
                .iter()
                .map(|c| c.raw_bytes().len() as u64)
                .sum(),
        );
    }
    let mut khan = s.connect(&mut member).await?;
    let told_of_all = |c: &Client| {
        ids.iter().all(|d| {
            c.rejections
                .iter()
                .any(|n| matches!(n, Notice::Rejected { doc, .. } if doc == d))
        })
    };
    let outcome = khan.run_until(SETTLE, told_of_all).await;
    let code = match outcome {
        Ok(true) => None,
        Ok(false) => anyhow::bail!("neither told nor closed"),
        Err(ClientError::Closed { code, .. }) => Some(code),
        Err(e) => return Err(e.into()),
    };
    // The writer commits the quarantine before the tablet is told; after a
    // close, a refusal kept before it may still be committing: its row is
    // waited for (never longer than a tablet is given to settle).
    let deadline = std::time::Instant::now() + SETTLE;
    let mut rows = Vec::new();
    loop {
        rows.clear();
        for audit in &ids {
            rows.extend(quarantined(&s, audit).await?);
        }
        if code.is_none() || rows.len() >= audits - 1 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
    Ok((rows, code, sizes))
}

on_both! {
    async fn refused_changes_past_a_users_quarantine_bound_are_not_kept_and_stay_on_the_tablet(backend: Backend) -> Result<()> {
        let (rows, code, size) = member_refused_with_quarantine_bound(backend, None, 1).await?;
        assert_eq!((rows.len(), code), (1, None), "kept under the default bound");
        let (rows, code, _) = member_refused_with_quarantine_bound(backend, Some(size[0]), 1).await?;
        assert_eq!((rows.len(), code), (1, None), "kept at exactly the bound");
        let (rows, code, _) = member_refused_with_quarantine_bound(backend, Some(size[0] - 1), 1).await?;
        assert_eq!(code, Some(close::QUARANTINE_FULL), "one byte over closes");
        assert!(rows.is_empty(), "nothing kept past the bound: {rows:?}");
        Ok(())
    }
}

on_both! {
    async fn the_quarantine_bound_counts_every_refusal_a_user_has_had_kept(backend: Backend) -> Result<()> {
        // Two refusals, each well under the bound, that reach it together.
        let (_, _, sizes) = member_refused_with_quarantine_bound(backend, None, 2).await?;
        let both: u64 = sizes.iter().sum();
        let (rows, code, _) = member_refused_with_quarantine_bound(backend, Some(both), 2).await?;
        assert_eq!((rows.len(), code), (2, None), "both kept at exactly the bound");
        let (rows, code, _) = member_refused_with_quarantine_bound(backend, Some(both - 1), 2).await?;
        assert_eq!(code, Some(close::QUARANTINE_FULL), "the second, one byte over, closes");
        assert_eq!(rows.len(), 1, "the first kept, the second not: {rows:?}");
        Ok(())
    }
}

/// Whether the gauge of documents being created shows `n` within a few
/// seconds (it is set on the hub's tick).
async fn gauge_reaches(s: &TestServer, n: i64) -> Result<bool> {
    for _ in 0..100 {
        if metric_or_zero(s, "sqm_sync_documents_being_created").await? == n {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(false)
}

on_both! {
    async fn documents_a_connection_was_creating_are_forgotten_when_it_goes(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| {
            c.sync.tick_interval = Duration::from_millis(50);
        })
        .await?;
        let mut outsider = s.tablet("p.sharma").await?;
        let mut sharma = s.connect(&mut outsider).await?;
        // Ten documents no reader of which is this user: each refused.
        for tag in 0..10u8 {
            let id = DocumentId::new_v7(server::db::now_ms(), [tag; 10]);
            let mut doc = sync_core::automerge::AutoCommit::new();
            doc.set_actor(outsider.author.actors.iter().next().context("actor")?.clone());
            sync_core::automerge::transaction::Transactable::put(&mut doc, sync_core::automerge::ROOT, "schema", "nonsense")?;
            sharma.send_raw(carrying(id, vec![doc.save()])?).await?;
        }
        let told = sharma.run_until(SETTLE, |c| c.rejections.len() >= 10).await?;
        assert!(told, "{} told", sharma.rejections.len());
        assert!(gauge_reaches(&s, 10).await?, "the ten are being created");
        outsider.park(sharma).await;
        assert!(gauge_reaches(&s, 0).await?, "still remembered after the connection went");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_clean_close_is_answered_with_the_clients_own_code(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let t = s.tablet("s.khan").await?;
        let mut ws = raw_socket(&s, &t).await?;
        ws.send(Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "done for the day".into(),
        })))
        .await?;
        let (code, _) = closed(&mut ws).await?;
        assert_eq!(code, 1000);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_nul_in_text_is_refused_and_kept_aside_and_every_later_edit_lands(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (lead, mut iyer, ids) = lead_with_audits(&s, &["IA/DEMO-I/2025-26/006"]).await?;
        let audit = ids[0];
        // The lead's own actor writes meeting notes with a NUL in them, past
        // the tablet's own checks (a raw change).
        let change = {
            let held = iyer.engine.doc(&audit).context("held")?;
            // The tablet's own actor (the user may have other devices).
            let mut doc = held.fork().with_actor(held.get_actor().clone());
            let before = doc.get_heads();
            doc.transact::<_, _, sync_core::automerge::AutomergeError>(|tx| {
                sync_core::automerge::transaction::Transactable::put(tx, sync_core::automerge::ROOT, "notes", "Opening\0meeting")?;
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let new = doc.get_changes(&before);
            new[0].raw_bytes().to_vec()
        };
        iyer.send_raw(carrying(audit, vec![change])?).await?;
        let told = iyer.run_until(SETTLE, |c| rejections_with(c, "text.control") > 0).await?;
        assert!(told, "{:?}", iyer.rejections);
        let kept = quarantined(&s, &audit).await?;
        assert_eq!(kept.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(), ["text.control"]);
        assert!(!kept[0].1.chars().any(char::is_control), "{}", kept[0].1);
        // The writer goes on.
        iyer.edit(audit, &answer("mr.held", Cpna::Conform, "Held on time.")?, &lead.author).await?;
        stored(&s, &mut iyer, &[audit]).await?;
        s.stop().await;
        Ok(())
    }
}
