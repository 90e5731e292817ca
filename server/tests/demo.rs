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

/// The shipped tablet fixture, as the file holds it.
fn shipped_fixture() -> anyhow::Result<server::seed::tablet::TabletFixture> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(server::seed::tablet::FIXTURE_FILE);
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| path.display().to_string())?,
    )?)
}

on_both! {
    async fn the_draft_on_iyers_demo_tablet_is_the_shipped_fixture_and_reaches_the_server_with_both_numbers(backend: Backend) -> Result<()> {
        use sync_core::engine::{Engine, Side};
        let s = TestServer::start(backend).await?;
        // The file the browser client loads is the one the seed makes
        // (`SQM_BLESS=1` writes it again after a deliberate change).
        let made = server::seed::tablet::iyers_tablet(&s.db).await?;
        if std::env::var_os("SQM_BLESS").is_some() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(server::seed::tablet::FIXTURE_FILE);
            std::fs::write(path, server::seed::tablet::to_file_text(&made)?)?;
        }
        let fixture = shipped_fixture()?;
        assert_eq!(fixture, made, "the shipped fixture differs from what the seed makes");
        let [draft] = fixture.documents.as_slice() else {
            anyhow::bail!("one draft expected");
        };
        let id: sync_core::ids::DocumentId = draft.id.parse()?;
        let bytes: Vec<u8> = (0..draft.saved.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&draft.saved[i..i + 2], 16))
            .collect::<Result<_, _>>()?;
        let doc = sync_core::automerge::Automerge::load(&bytes)?;
        let nc = Nc::read(&doc)?;
        assert_eq!(nc.provisional, "D-IYER-01");
        assert_eq!((nc.link.process.as_ref(), nc.link.clause.to_string().as_str()), (None, "3.4"));
        assert!(server::db::documents::meta(&s.db, &id).await?.is_none(), "the server has never seen it");

        // The tablet signs in on its demo device and syncs the draft.
        let token = s.login(&fixture.user).await?;
        let actor: sync_core::automerge::ActorId =
            fixture.actor.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut engine = Engine::new(Side::Device(actor));
        engine.insert(id, doc);
        let socket = server::client::Client::open(&s.ws_url(), &token, &fixture.device).await?;
        let mut tablet = server::client::Client::attach(socket, engine).await;
        let numbered = |c: &server::client::Client| {
            c.engine.doc(&id).and_then(|d| Nc::read(d).ok()).and_then(|n| n.number).is_some()
        };
        anyhow::ensure!(
            tablet.run_until(common::sync_help::SETTLE, numbered).await?,
            "the server's number did not reach the tablet"
        );
        let on_tablet = Nc::read(tablet.engine.doc(&id).context("held")?)?;
        let stored = server::db::documents::meta(&s.db, &id).await?.context("stored")?;
        assert_eq!(on_tablet.number, stored.number);
        assert_eq!(stored.number.as_deref(), Some("NC-09"), "after the demo's eight");
        assert_eq!(on_tablet.provisional, "D-IYER-01", "both numbers kept");

        // The unit's nodal officer answers an NC on no process, finds it
        // under either number, and the owner of P03 sees nothing of it.
        let rao = s.login("a.rao").await?;
        for q in ["D-IYER-01", "NC-09"] {
            let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/search", s.base), &[("q", q)])?;
            let found: serde_json::Value = s.client.get(url).bearer_auth(&rao).send().await?.json().await?;
            let hits: Vec<&str> = found["results"]
                .as_array()
                .map(|r| r.iter().filter_map(|h| h["id"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(hits, [draft.id.as_str()], "{q}");
        }
        let nodal = server::access::author_of(&s.db, "a.rao").await?;
        let owner = server::access::author_of(&s.db, "ac.div2").await?;
        let ctx = sync_core::permissions::DocContext::read(tablet.engine.doc(&id).context("held")?)?;
        let today = "2026-01-15".parse()?;
        assert!(nodal.is(sync_core::workflow::Who::ProcessOwner, &ctx, today));
        assert!(!owner.may_read(&ctx, today));
        tablet.disconnect().await;
        s.stop().await;
        Ok(())
    }
}
