//! Revocation and expiry, on SQLite and PostgreSQL: a disabled user or a
//! revoked device is disconnected; offline edits of a user whose rights ended
//! meanwhile are quarantined on upload, not applied and not lost; an expired
//! access token never stops local editing, and after a refresh everything the
//! tablet holds syncs.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{Backend, TestServer, answer};
use reqwest::Method;
use serde_json::{Value, json};
use server::client::{Client, ClientError};
use server::sync::close;
use sync_core::audit::Cpna;
use sync_core::ids::DocumentId;

const SETTLE: Duration = Duration::from_secs(20);

/// Waits for the server to close the socket (at most `within`); returns the code.
async fn wait_closed(c: &mut Client, within: Duration) -> Option<u16> {
    match c.run_until(within, |_| false).await {
        Err(ClientError::Closed { code, .. }) => Some(code),
        _ => None,
    }
}

/// The demo's audit 003 (Iyer lead, Khan member).
async fn audit_003(s: &TestServer) -> Result<DocumentId> {
    let id: String =
        sqlx::query_scalar("SELECT id FROM planned_audits WHERE number = 'IA/DEMO-I/2025-26/003'")
            .fetch_one(s.db.pool())
            .await?;
    Ok(id.parse()?)
}

on_both! {
    async fn a_user_disabled_outside_the_api_is_disconnected_by_the_sweep(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| c.sync.sweep_interval = Duration::from_millis(500)).await?;
        let mut t = s.tablet("s.khan").await?;
        let mut c = s.connect(&mut t).await?;
        assert!(c.settle(SETTLE).await?);
        // As `sqm user disable` does: straight in the database.
        assert!(server::db::accounts::set_disabled(&s.db, "s.khan", true).await?);
        let code = wait_closed(&mut c, Duration::from_secs(60)).await;
        assert_eq!(code, Some(close::UNAUTHORIZED));
        // And cannot come back.
        t.engine = Some(c.disconnect().await);
        assert!(s.connect(&mut t).await.is_err());
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn the_sweep_withdraws_and_reopens_a_document_for_one_user_and_leaves_the_others_alone(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| c.sync.sweep_interval = Duration::from_millis(300)).await?;
        let audit = audit_003(&s).await?;
        let server_peer = server::client::SERVER;
        let mut khan = s.tablet("s.khan").await?;
        let mut k = s.connect(&mut khan).await?;
        let mut iyer = s.tablet("k.iyer").await?;
        let mut i = s.connect(&mut iyer).await?;
        for c in [&mut k, &mut i] {
            let ok = c.run_until(SETTLE, |c| c.engine.is_shared(server_peer, &audit) && c.in_sync()).await?;
            assert!(ok, "both tablets hold audit 003");
        }
        // Straight in the database, as another process would: Khan's role ends.
        let row: (String, String, String, String, String, Option<String>, String, String, i64) = sqlx::query_as(
            "SELECT id, username, unit, role, valid_from, valid_until, office_order, created_by, created_at \
             FROM role_assignments WHERE id = 'demo-s.khan-auditor'",
        )
        .fetch_one(s.db.pool())
        .await?;
        sqlx::query("DELETE FROM role_assignments WHERE id = 'demo-s.khan-auditor'").execute(s.db.pool()).await?;
        let gone = k.run_until(SETTLE, |c| !c.engine.is_shared(server_peer, &audit)).await?;
        assert!(gone, "the sweep withdrew audit 003 from Khan's tablet");
        assert!(k.engine.doc(&audit).is_some(), "the tablet keeps its own copy");
        // Several more rounds: Iyer, in the same unit and on the same audit, keeps it.
        i.run_until(Duration::from_millis(1500), |_| false).await?;
        assert!(i.engine.is_shared(server_peer, &audit), "Iyer's tablet still has audit 003 open");
        let edit = answer("mr.inputs", Cpna::Partly, "Checked after the sweep")?;
        i.edit(audit, &edit, &iyer.author).await?;
        assert!(i.settle(SETTLE).await?, "Iyer's edit is stored");
        // The role comes back: the sweep opens the audit on Khan's tablet again.
        sqlx::query(
            "INSERT INTO role_assignments (id, username, unit, role, valid_from, valid_until, office_order, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(row.0).bind(row.1).bind(row.2).bind(row.3).bind(row.4).bind(row.5).bind(row.6).bind(row.7).bind(row.8)
        .execute(s.db.pool())
        .await?;
        let want = i.engine.doc(&audit).context("Iyer's copy")?.get_heads();
        let back = k
            .run_until(SETTLE, |c| {
                c.engine.is_shared(server_peer, &audit)
                    && c.engine.doc(&audit).is_some_and(|d| want.iter().all(|h| d.get_change_meta_by_hash(h).is_some()))
            })
            .await?;
        assert!(back, "audit 003 is open again on Khan's tablet, with Iyer's edit");
        s.stop().await;
        Ok(())
    }
}

/// Documents the server holds in memory, loaded or saved (cold), once
/// `want` holds of their number (the gauges are set on the hub's tick), or
/// as last read after a few seconds.
async fn held_in_memory(s: &TestServer, k: &mut Client, want: impl Fn(i64) -> bool) -> Result<i64> {
    let mut held = 0;
    for _ in 0..100 {
        held = common::sync_help::metric_or_zero(s, "sqm_sync_loaded_documents").await?
            + common::sync_help::metric_or_zero(s, "sqm_sync_cold_documents").await?;
        if want(held) {
            break;
        }
        k.run_until(Duration::from_millis(50), |_| false).await?;
    }
    Ok(held)
}

on_both! {
    async fn documents_withdrawn_from_the_only_tablet_that_had_them_open_leave_the_servers_memory(backend: Backend) -> Result<()> {
        // The tablet stays connected: what it opened when it connected is
        // not kept for it once its rights to it have ended.
        let s = TestServer::start_configured(backend, true, |c| {
            c.sync.tick_interval = Duration::from_millis(50);
            c.sync.sweep_interval = Duration::from_secs(24 * 3600);
        })
        .await?;
        let audit = audit_003(&s).await?;
        let mut khan = s.tablet("s.khan").await?;
        let mut k = s.connect(&mut khan).await?;
        let ok = k.run_until(SETTLE, |c| c.engine.is_shared(server::client::SERVER, &audit) && c.in_sync()).await?;
        assert!(ok, "Khan's tablet has audit 003");
        assert!(held_in_memory(&s, &mut k, |n| n > 0).await? > 0, "the server holds what the tablet opened");
        let rao = s.login("a.rao").await?;
        let (status, _) = s.call(Method::DELETE, "/api/v1/admin/units/DEMO-I/roles/demo-s.khan-auditor", Some(&rao), None).await?;
        assert_eq!(status.as_u16(), 204);
        let gone = k.run_until(SETTLE, |c| !c.engine.is_shared(server::client::SERVER, &audit)).await?;
        assert!(gone, "audit 003 withdrawn from Khan's tablet");
        let held = held_in_memory(&s, &mut k, |n| n == 0).await?;
        assert_eq!(held, 0, "documents no connection may read are still held");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn disabling_a_user_or_revoking_a_device_through_the_api_disconnects_at_once(backend: Backend) -> Result<()> {
        // No sweep runs within the test: "at once" means the API call itself
        // closes the socket, before any sweep could.
        let s = TestServer::start_configured(backend, true, |c| {
            c.sync.sweep_interval = Duration::from_secs(24 * 3600);
        })
        .await?;
        let admin = s.login("sqm.admin").await?;
        let mut khan = s.tablet("s.khan").await?;
        let mut k = s.connect(&mut khan).await?;
        let (status, _) = s.post("/api/v1/admin/users/s.khan/disable", &admin, json!({})).await?;
        assert_eq!(status.as_u16(), 204);
        let code = wait_closed(&mut k, Duration::from_secs(60)).await;
        assert_eq!(code, Some(close::UNAUTHORIZED));
        let mut iyer = s.tablet("k.iyer").await?;
        let mut i = s.connect(&mut iyer).await?;
        let (status, _) = s.call(Method::DELETE, &format!("/api/v1/devices/{}", iyer.device), Some(&iyer.token), None).await?;
        assert_eq!(status.as_u16(), 204);
        let code = wait_closed(&mut i, Duration::from_secs(60)).await;
        assert_eq!(code, Some(close::UNAUTHORIZED), "a revoked device is disconnected");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn offline_edits_of_a_user_whose_role_ended_are_quarantined_not_applied_not_lost(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let audit = audit_003(&s).await?;
        let mut khan = s.tablet("s.khan").await?;
        let mut k = s.connect(&mut khan).await?;
        let ok = k.run_until(SETTLE, |c| c.engine.doc(&audit).is_some() && c.in_sync()).await?;
        assert!(ok, "Khan's tablet has audit 003");
        khan.park(k).await;
        let before = server::db::documents::load(&s.db, &audit).await?.context("audit")?.get_heads();
        // Offline, Khan answers; meanwhile the nodal officer ends his auditor role.
        let edit = answer("mr.inputs", Cpna::Partly, "MR lacked feedback data")?;
        khan.edit_offline(audit, edit)?;
        let rao = s.login("a.rao").await?;
        let (status, _) = s.call(Method::DELETE, "/api/v1/admin/units/DEMO-I/roles/demo-s.khan-auditor", Some(&rao), None).await?;
        assert_eq!(status.as_u16(), 204);
        // On upload: told, quarantined, the audit unchanged.
        let mut k = s.connect(&mut khan).await?;
        let told = k.run_until(SETTLE, |c| !c.rejections.is_empty()).await?;
        assert!(told, "the tablet was told");
        let Some(sync_core::engine::Notice::Rejected { rule, .. }) = k.rejections.first() else { anyhow::bail!("no rejection") };
        assert_eq!(rule, "doc.not_permitted");
        let mut rows: Vec<(String, String)> = Vec::new();
        for _ in 0..100 {
            rows = sqlx::query_as("SELECT username, rule FROM quarantine WHERE doc_id = $1")
                .bind(audit.to_string())
                .fetch_all(s.db.pool())
                .await?;
            if !rows.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(rows, [("s.khan".to_owned(), "doc.not_permitted".to_owned())]);
        let after = server::db::documents::load(&s.db, &audit).await?.context("audit")?.get_heads();
        assert_eq!(before, after, "not applied");
        // Not lost either: the tablet still holds its edit (a late edit: 003 is locked for review).
        let view = sync_core::audit::AuditView::read(k.engine.doc(&audit).context("kept")?)?;
        let key = "mr.inputs".parse()?;
        assert!(
            view.late_edits.iter().any(|e| matches!(e, sync_core::audit::LateEdit::Response { key: k, late: Some(_), .. } if *k == key)),
            "{:?}",
            view.late_edits
        );
        s.stop().await;
        Ok(())
    }
}

/// An access token like `access`, but expired a minute ago (signed with the test key).
fn expired(access: &str) -> Result<String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let payload = access.split('.').nth(1).context("payload")?;
    let mut claims: Value = serde_json::from_slice(&decode_b64url(payload))?;
    claims["exp"] = json!(jsonwebtoken::get_current_timestamp() - 60);
    // The server's key provider is installed by the server in this process.
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"test signing key, 32 bytes long!"),
    )?)
}

fn decode_b64url(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            _ => 63,
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (val(*c) << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push(((n >> (16 - 8 * i)) & 0xff) as u8);
        }
    }
    out
}

on_both! {
    async fn an_expired_token_never_stops_local_editing_and_after_a_refresh_everything_syncs(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let audit = audit_003(&s).await?;
        let mut iyer = s.tablet("k.iyer").await?;
        let mut c = s.connect(&mut iyer).await?;
        let ok = c.run_until(SETTLE, |c| c.engine.doc(&audit).is_some() && c.in_sync()).await?;
        assert!(ok);
        iyer.park(c).await;
        // The token expires while the tablet works offline: editing goes on.
        iyer.token = expired(&iyer.token)?;
        for (i, key) in ["mr.held", "mr.decisions", "ia.followup"].iter().enumerate() {
            let edit = answer(key, Cpna::Conform, &format!("late note {i}"))?;
            iyer.edit_offline(audit, edit)?;
        }
        let held = iyer.offline().doc(&audit).context("audit")?.get_heads();
        // Connecting with it is refused, and nothing is lost.
        let refused = s.connect(&mut iyer).await;
        let code = refused.err().and_then(|e| match e.downcast_ref::<ClientError>() {
            Some(ClientError::Closed { code, .. }) => Some(*code),
            _ => None,
        });
        assert_eq!(code, Some(close::UNAUTHORIZED));
        assert_eq!(iyer.offline().doc(&audit).context("audit")?.get_heads(), held, "nothing lost");
        // A refresh gives a new pair; with it, everything the tablet holds syncs.
        let (status, tokens) = s.call(Method::POST, "/api/v1/auth/refresh", None, Some(json!({"refresh_token": iyer.refresh}))).await?;
        assert_eq!(status.as_u16(), 200, "{tokens}");
        iyer.token = tokens["access_token"].as_str().context("token")?.to_owned();
        let mut c = s.connect(&mut iyer).await?;
        assert!(c.settle(SETTLE).await?, "did not sync after the refresh");
        let stored = server::db::documents::load(&s.db, &audit).await?.context("audit")?;
        let mut a = stored.get_heads();
        let mut b = held.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "the server holds every offline edit");
        s.stop().await;
        Ok(())
    }
}
