//! The demo unit (`sqm seed demo`) shows what issue 15 built, on SQLite and
//! PostgreSQL: an answer two auditors gave at the same time, awaiting the
//! lead; NCs with their implementation and verification evidence, whose
//! files their readers can open; every NC's number in its document, as the
//! tablets receive it.

mod common;

use anyhow::Context;
use common::sync_help::holds;
use common::{Backend, TestServer};
use reqwest::StatusCode;
use sync_core::DocKind;
use sync_core::audit::AuditView;
use sync_core::nc::Nc;

on_both! {
    async fn the_demo_shows_a_contest_awaiting_the_lead_nc_evidence_and_numbers(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        // Audit 003: both answers to one item, each with its auditor.
        let audit: String =
            sqlx::query_scalar("SELECT id FROM planned_audits WHERE number = 'IA/DEMO-I/2025-26/003'")
                .fetch_one(s.db.pool())
                .await?;
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT place, by_user FROM contested_values WHERE doc_id = $1 ORDER BY seq")
                .bind(&audit)
                .fetch_all(s.db.pool())
                .await?;
        let mut by: Vec<&str> = rows.iter().map(|(_, b)| b.as_str()).collect();
        by.sort_unstable();
        assert_eq!(by, ["k.iyer", "s.khan"], "{rows:?}");
        assert!(rows.iter().all(|(p, _)| p == "responses/sd.interim_reply@P04"), "{rows:?}");
        let audit = audit.parse()?;
        let mut lead = s.tablet("k.iyer").await?;
        let mut iyer = s.connect(&mut lead).await?;
        holds(&s, &mut iyer, &[audit]).await?;
        let view = AuditView::read(iyer.engine.doc(&audit).context("held")?)?;
        let key = "sd.interim_reply@P04".parse()?;
        let values = view.content.contested_responses.get(&key).context("contested on the lead's tablet")?;
        assert_eq!(values.len(), 2);

        // The NCs: numbered in their documents; the implemented ones carry
        // their owner's evidence, NC-01 its verifier's too.
        let mut evidence = 0;
        for meta in server::db::documents::all_meta(&s.db).await? {
            if meta.kind != DocKind::Nc {
                continue;
            }
            let doc = server::db::documents::load(&s.db, &meta.id).await?.context("stored")?;
            let nc = Nc::read(&doc)?;
            assert_eq!(nc.number, meta.number, "{}", meta.id);
            let state = nc.view(&Default::default(), "2026-01-15".parse()?).state.to_string();
            if ["implemented", "closed"].contains(&state.as_str()) {
                assert!(!nc.implementation_evidence.is_empty(), "{:?} {state} without evidence", nc.number);
            }
            if nc.number.as_deref() == Some("NC-01") {
                assert_eq!(nc.verification_evidence.len(), 1);
            }
            evidence += nc.implementation_evidence.len() + nc.verification_evidence.len();
        }
        assert_eq!(evidence, 4, "the demo's files");
        // Its owner and its nodal officer open NC-01's scan.
        let found: Vec<(String,)> = sqlx::query_as(
            "SELECT r.sha256 FROM blob_refs r JOIN documents d ON d.id = r.doc_id WHERE d.number = 'NC-01' ORDER BY r.sha256",
        )
        .fetch_all(s.db.pool())
        .await?;
        assert_eq!(found.len(), 2, "NC-01's two files");
        for user in ["ac.tech", "a.rao"] {
            let token = s.login(user).await?;
            let res = s
                .client
                .get(format!("{}/api/v1/blobs/{}", s.base, found[0].0))
                .bearer_auth(&token)
                .send()
                .await?;
            assert_eq!(res.status(), StatusCode::OK, "{user}");
            let bytes = res.bytes().await?;
            assert!(bytes.starts_with(b"%PDF-1.4") && bytes.ends_with(b"%%EOF\n"), "{user}: not a PDF");
        }
        iyer.disconnect().await;
        s.stop().await;
        Ok(())
    }
}
