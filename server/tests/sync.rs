//! Sync end to end over real WebSockets, on SQLite and PostgreSQL: tablets
//! edit offline, reconnect and converge; refused edits are quarantined while
//! the permitted ones land.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::sync_help::{
    SETTLE, finding, gauge, heads, holds, metric_or_zero, nc_link, new_id, plan, stored_heads,
};
use common::{Backend, Tablet, TestServer, answer};
use serde_json::json;
use server::client::Client;
use sync_core::audit::{AuditHeader, AuditView, Cpna, Evidence};
use sync_core::edit::Edit;
use sync_core::ids::DocumentId;
use sync_core::nc::{Action, Nc};
use sync_core::workflow::NcState;

/// The lead makes the audit with a finding, and raises its NC; returns the NC's id.
async fn audit_with_nc(
    s: &TestServer,
    iyer: &mut Client,
    lead: &Tablet,
    audit: DocumentId,
    header: AuditHeader,
) -> Result<DocumentId> {
    let a = &lead.author;
    iyer.edit(audit, &Edit::CreateAudit(header), a).await?;
    iyer.edit(
        audit,
        &Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
        a,
    )
    .await?;
    iyer.edit(audit, &finding(Vec::new())?, a).await?;
    let nc = new_id(0x51);
    iyer.edit(
        nc,
        &Edit::CreateNc {
            link: nc_link(audit)?,
            description: "Amendment beyond 15 days.".into(),
            provisional: String::new(),
        },
        a,
    )
    .await?;
    iyer.edit(
        nc,
        &Edit::Move {
            mv: "raise".into(),
            note: String::new(),
        },
        a,
    )
    .await?;
    anyhow::ensure!(
        iyer.settle(SETTLE).await?,
        "the lead's tablet did not settle"
    );
    let stored = server::db::documents::meta(&s.db, &nc)
        .await?
        .context("the NC is stored")?;
    anyhow::ensure!(stored.number.as_deref() == Some("NC-09"), "{stored:?}");
    Ok(nc)
}

/// The `contested_values` rows of `doc` whose place is like `place`:
/// (place, writer, value), by writer.
async fn contested_rows(
    db: &server::db::Db,
    doc: sync_core::ids::DocumentId,
    place: &str,
) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT place, by_user, value FROM contested_values WHERE doc_id = $1 \
         AND place LIKE $2 ORDER BY by_user",
    )
    .bind(doc.to_string())
    .bind(place)
    .fetch_all(db.pool())
    .await?)
}

/// Waits until a connected tablet holds every listed document with exactly
/// the heads the server has stored.
async fn two_auditors(backend: Backend, khan_first: bool) -> Result<()> {
    let s = TestServer::start(backend).await?;
    let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/004").await?;
    let mut lead = s.tablet("k.iyer").await?;
    let mut member = s.tablet("s.khan").await?;
    let mut owner = s.tablet("ac.div2").await?;
    let mut iyer = s.connect(&mut lead).await?;
    let nc = audit_with_nc(&s, &mut iyer, &lead, audit, header).await?;
    // The owner responds, so that the auditors can then move the NC concurrently.
    let mut div2 = s.connect(&mut owner).await?;
    holds(&s, &mut div2, &[nc]).await?;
    let o = owner.author.clone();
    div2.edit(
        nc,
        &Edit::SetCorrection("Applicant told of the delay.".into()),
        &o,
    )
    .await?;
    div2.edit(
        nc,
        &Edit::SetRootCause("No tracking of the 15-day clock.".into()),
        &o,
    )
    .await?;
    let action = Action {
        text: "Daily ageing list".into(),
        owner: "AC Div-II".into(),
        target: "2026-03-31".parse()?,
        done_on: None,
    };
    div2.edit(
        nc,
        &Edit::PutAction {
            id: "a-1".parse()?,
            action,
        },
        &o,
    )
    .await?;
    div2.edit(
        nc,
        &Edit::Move {
            mv: "submit_response".into(),
            note: String::new(),
        },
        &o,
    )
    .await?;
    anyhow::ensure!(div2.settle(SETTLE).await?);
    let mut khan = s.connect(&mut member).await?;
    holds(&s, &mut khan, &[audit, nc]).await?;
    holds(&s, &mut iyer, &[audit, nc]).await?;
    assert_eq!(heads(&iyer.engine, &nc), heads(&khan.engine, &nc));
    lead.park(iyer).await;
    member.park(khan).await;

    // A day offline: the same item answered differently, other items, concurrent moves.
    lead.edit_offline(
        audit,
        answer("sd.timeliness@P03", Cpna::Partly, "iyer: 1 of 10 late")?,
    )?;
    lead.edit_offline(audit, answer("mr.held", Cpna::Conform, "iyer")?)?;
    // Meeting notes and the NC's description, written by both at once.
    lead.edit_offline(
        audit,
        Edit::SetNotes("iyer: opening meeting at 10:00".into()),
    )?;
    lead.edit_offline(nc, Edit::SetDescription("iyer: 1 of 10 files late".into()))?;
    member.edit_offline(
        audit,
        Edit::SetNotes("khan: opening meeting at 10:15".into()),
    )?;
    member.edit_offline(nc, Edit::SetDescription("khan: 2 of 10 files late".into()))?;
    lead.edit_offline(
        nc,
        Edit::Move {
            mv: "accept_plan".into(),
            note: "Plan is adequate.".into(),
        },
    )?;
    member.edit_offline(
        audit,
        answer("sd.timeliness@P03", Cpna::NotConform, "khan: 2 of 10 late")?,
    )?;
    member.edit_offline(audit, answer("mr.inputs", Cpna::Partly, "khan")?)?;
    member.edit_offline(
        nc,
        Edit::Move {
            mv: "reject_plan".into(),
            note: "Root cause too thin.".into(),
        },
    )?;

    let (first, second) = if khan_first {
        (&mut member, &mut lead)
    } else {
        (&mut lead, &mut member)
    };
    let mut a = s.connect(first).await?;
    anyhow::ensure!(a.settle(SETTLE).await?, "the first tablet did not settle");
    let mut b = s.connect(second).await?;
    anyhow::ensure!(b.settle(SETTLE).await?, "the second tablet did not settle");
    let server = [
        stored_heads(&s, &audit).await?,
        stored_heads(&s, &nc).await?,
    ];
    let caught_up =
        |c: &Client| heads(&c.engine, &audit) == server[0] && heads(&c.engine, &nc) == server[1];
    anyhow::ensure!(
        a.run_until(SETTLE, caught_up).await?,
        "the first tablet did not catch up"
    );
    anyhow::ensure!(
        b.run_until(SETTLE, caught_up).await?,
        "the second tablet did not catch up"
    );
    for d in [audit, nc] {
        let server = stored_heads(&s, &d).await?;
        assert_eq!(heads(&a.engine, &d), server, "first tablet vs server");
        assert_eq!(heads(&b.engine, &d), server, "second tablet vs server");
    }
    let va = AuditView::read(a.engine.doc(&audit).context("audit")?)?;
    let vb = AuditView::read(b.engine.doc(&audit).context("audit")?)?;
    assert_eq!(format!("{va:?}"), format!("{vb:?}"), "one derived state");
    let keys: Vec<String> = va
        .content
        .responses
        .keys()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        keys,
        ["mr.held", "mr.inputs", "sd.timeliness@P03"],
        "every answer kept"
    );
    let na = Nc::read(a.engine.doc(&nc).context("nc")?)?;
    let nb = Nc::read(b.engine.doc(&nc).context("nc")?)?;
    let (va, vb) = (
        na.view(&Default::default(), "2026-02-12".parse()?),
        nb.view(&Default::default(), "2026-02-12".parse()?),
    );
    assert_eq!(va, vb);
    assert_eq!(
        va.conflicts.len(),
        1,
        "the losing move is a visible conflict: {va:?}"
    );
    assert!(
        matches!(va.state, NcState::PlanAccepted | NcState::Open),
        "{:?}",
        va.state
    );

    // The item both answered: both values shown on both tablets and in the
    // server's rows, each with its auditor, until the lead settles it.
    let item: sync_core::ids::ResponseKey = "sd.timeliness@P03".parse()?;
    let notes = |c: &Client| -> Result<Vec<String>> {
        let v = AuditView::read(c.engine.doc(&audit).context("audit")?)?;
        let mut n: Vec<String> = v
            .content
            .contested_responses
            .get(&item)
            .map(|all| {
                all.iter()
                    .map(|r| format!("{}: {}", r.by, r.note))
                    .collect()
            })
            .unwrap_or_default();
        n.sort();
        Ok(n)
    };
    let both = [
        "k.iyer: iyer: 1 of 10 late".to_owned(),
        "s.khan: khan: 2 of 10 late".to_owned(),
    ];
    assert_eq!(notes(&a)?, both, "first tablet shows both answers");
    assert_eq!(notes(&b)?, both, "second tablet shows both answers");
    let rows = || contested_rows(&s.db, audit, "responses/%");
    // The notes and the description: both values in the server's rows.
    let texts = || async {
        let mut all = contested_rows(&s.db, audit, "notes").await?;
        all.extend(contested_rows(&s.db, nc, "description").await?);
        anyhow::Ok(all)
    };
    let both_texts = [
        ("notes", "k.iyer", "iyer: opening meeting at 10:00"),
        ("notes", "s.khan", "khan: opening meeting at 10:15"),
        ("description", "k.iyer", "iyer: 1 of 10 files late"),
        ("description", "s.khan", "khan: 2 of 10 files late"),
    ]
    .map(|(p, b, v)| (p.to_owned(), b.to_owned(), v.to_owned()));
    assert_eq!(
        texts().await?,
        both_texts,
        "the server's rows hold both texts"
    );
    assert_eq!(
        rows().await?,
        [
            (
                "responses/sd.timeliness@P03".to_owned(),
                "k.iyer".to_owned(),
                "partly: iyer: 1 of 10 late".to_owned()
            ),
            (
                "responses/sd.timeliness@P03".to_owned(),
                "s.khan".to_owned(),
                "not_conform: khan: 2 of 10 late".to_owned()
            ),
        ],
        "the server's rows hold both"
    );
    // The lead settles on the member's answer; the contest is gone everywhere.
    let (iyer, khan) = if khan_first {
        (&mut b, &mut a)
    } else {
        (&mut a, &mut b)
    };
    let content = AuditView::read(iyer.engine.doc(&audit).context("audit")?)?.content;
    let pick = content.contested_responses[&item]
        .iter()
        .position(|r| r.by.as_str() == "s.khan")
        .context("the member's answer")?;
    let settle = Edit::settle_response(&content, &item, pick).context("contested")?;
    iyer.edit(audit, &settle, &lead.author).await?;
    // One write over each text settles it (any auditor of the team may).
    iyer.edit(
        audit,
        &Edit::SetNotes("Opening meeting 10:00-10:40".into()),
        &lead.author,
    )
    .await?;
    iyer.edit(
        nc,
        &Edit::SetDescription("2 of 10 files late".into()),
        &lead.author,
    )
    .await?;
    anyhow::ensure!(iyer.settle(SETTLE).await?, "the settlement was not stored");
    holds(&s, khan, &[audit, nc]).await?;
    assert!(texts().await?.is_empty(), "no contested text left");
    let nc_now = Nc::read(khan.engine.doc(&nc).context("nc")?)?;
    assert!(
        nc_now.contested_text.is_empty(),
        "{:?}",
        nc_now.contested_text
    );
    assert!(
        notes(iyer)?.is_empty() && notes(khan)?.is_empty(),
        "no contest left"
    );
    assert!(rows().await?.is_empty(), "no contested rows left");
    let v = AuditView::read(khan.engine.doc(&audit).context("audit")?)?;
    assert_eq!(v.content.responses[&item].note, "khan: 2 of 10 late");
    s.stop().await;
    Ok(())
}

on_both! {
    async fn two_auditors_offline_converge_when_the_lead_reconnects_first(backend: Backend) -> Result<()> {
        two_auditors(backend, false).await
    }
}

on_both! {
    async fn two_auditors_offline_converge_when_the_member_reconnects_first(backend: Backend) -> Result<()> {
        two_auditors(backend, true).await
    }
}

on_both! {
    async fn an_owner_answers_while_an_auditor_adds_evidence_and_the_nodal_officer_sees_both(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/005").await?;
        let mut lead = s.tablet("k.iyer").await?;
        let mut owner = s.tablet("ac.div2").await?;
        let mut iyer = s.connect(&mut lead).await?;
        let nc = audit_with_nc(&s, &mut iyer, &lead, audit, header).await?;
        let mut div2 = s.connect(&mut owner).await?;
        holds(&s, &mut div2, &[nc]).await?;
        assert!(div2.engine.doc(&audit).is_none(), "the owner sees the NC, not the audit");
        owner.park(div2).await;
        lead.park(iyer).await;
        owner.edit_offline(nc, Edit::SetCorrection("Applicant told of the delay.".into()))?;
        owner.edit_offline(nc, Edit::SetRootCause("No tracking of the 15-day clock.".into()))?;
        let action = Action { text: "Daily ageing list".into(), owner: "AC Div-II".into(), target: "2026-03-31".parse()?, done_on: None };
        owner.edit_offline(nc, Edit::PutAction { id: "a-1".parse()?, action })?;
        owner.edit_offline(nc, Edit::Move { mv: "submit_response".into(), note: String::new() })?;
        let photo = Evidence {
            sha256: "9f2feb0f1ef425b292f2f94bdd7f2e8b8d3e0f8c8b1a1f1f0e0d0c0b0a090807".parse()?,
            name: "register-page-14.jpg".into(),
            mime: "image/jpeg".into(),
            size: 182_044,
            taken_at: None,
        };
        lead.edit_offline(audit, finding(vec![photo])?)?;
        let mut div2 = s.connect(&mut owner).await?;
        let mut iyer = s.connect(&mut lead).await?;
        anyhow::ensure!(div2.settle(SETTLE).await? && iyer.settle(SETTLE).await?);
        // The nodal officer's tablet, new, downloads the merged state of the unit.
        let mut nodal = s.tablet("a.rao").await?;
        let mut rao = s.connect(&mut nodal).await?;
        holds(&s, &mut rao, &[audit, nc]).await?;
        let seen = Nc::read(rao.engine.doc(&nc).context("nc")?)?;
        assert_eq!(seen.view(&Default::default(), "2026-02-12".parse()?).state, NcState::ResponseSubmitted);
        assert_eq!(seen.root_cause, "No tracking of the 15-day clock.");
        let view = AuditView::read(rao.engine.doc(&audit).context("audit")?)?;
        let f = view.content.findings.values().next().context("finding")?;
        assert_eq!(f.evidence.len(), 1);
        assert_eq!(f.evidence[0].name, "register-page-14.jpg");
        // The demo unit's own documents come too: every document of the unit.
        let all = rao.run_until(SETTLE, |c| c.engine.doc_ids().count() == 14 && c.in_sync()).await?;
        assert!(all, "{} documents", rao.engine.doc_ids().count());
        // The report rows follow the merged state.
        let state: String = sqlx::query_scalar("SELECT state FROM ncs WHERE doc_id = $1")
            .bind(nc.to_string())
            .fetch_one(s.db.pool())
            .await?;
        assert_eq!(state, "response_submitted");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_forbidden_edit_is_quarantined_and_its_author_told_while_the_permitted_ones_land(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/006").await?;
        let mut lead = s.tablet("k.iyer").await?;
        let mut member = s.tablet("s.khan").await?;
        let mut iyer = s.connect(&mut lead).await?;
        let nc = audit_with_nc(&s, &mut iyer, &lead, audit, header).await?;
        let mut khan = s.connect(&mut member).await?;
        holds(&s, &mut khan, &[nc]).await?;
        member.park(khan).await;
        // The tablet believes (wrongly) that its user owns P03.
        let honest = member.author.clone();
        member.author.processes.insert(("DEMO-I".parse()?, "P03".parse()?));
        member.author.grants.push(sync_core::permissions::RoleGrant {
            unit: "DEMO-I".parse()?,
            role: sync_core::permissions::Role::ProcessOwner,
            from: "2025-04-01".parse()?,
            until: None,
        });
        member.edit_offline(nc, Edit::SetDescription("Amendment took 19 days (file 2026/114).".into()))?;
        member.edit_offline(nc, Edit::SetRootCause("Written by an auditor".into()))?;
        member.edit_offline(nc, Edit::SetDescription("Amendment took 19 days (file 2026/114); interim reply missing.".into()))?;
        let mut khan = s.connect(&mut member).await?;
        let told = khan.run_until(SETTLE, |c| !c.rejections.is_empty()).await?;
        assert!(told, "the author was told");
        let Some(sync_core::engine::Notice::Rejected { rule, message, changes, .. }) = khan.rejections.first().cloned() else {
            anyhow::bail!("no rejection");
        };
        assert_eq!(rule, "nc.owner_fields");
        assert!(message.contains("s.khan may not write the correction, root cause and actions"), "{message}");
        assert_eq!(changes.len(), 2, "the refused edit and the one built on it");
        // Quarantined, never applied, never dropped (the writer commits it just after).
        let mut row: Option<(String, String, Vec<u8>)> = None;
        for _ in 0..100 {
            row = sqlx::query_as("SELECT username, rule, bytes FROM quarantine WHERE doc_id = $1")
                .bind(nc.to_string())
                .fetch_optional(s.db.pool())
                .await?;
            if row.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let row = row.context("the refused changes were never quarantined")?;
        assert_eq!((row.0.as_str(), row.1.as_str()), ("s.khan", "nc.owner_fields"));
        assert!(!row.2.is_empty());
        // The permitted edit lands too (its commit may come just after the quarantine's).
        let mut stored = Nc::read(&server::db::documents::load(&s.db, &nc).await?.context("nc")?)?;
        for _ in 0..100 {
            if stored.description != "Amendment beyond 15 days." {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            stored = Nc::read(&server::db::documents::load(&s.db, &nc).await?.context("nc")?)?;
        }
        assert_eq!(stored.description, "Amendment took 19 days (file 2026/114).", "the permitted edit landed");
        assert_eq!(stored.root_cause, "");
        // The tablet recovers: a fresh actor, its rights as they really are.
        let (status, fresh) = s.post(&format!("/api/v1/devices/{}/actors", member.device), &member.token, json!({})).await?;
        assert_eq!(status.as_u16(), 201);
        let fresh: sync_core::automerge::ActorId = fresh["actor"].as_str().context("actor")?.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let author = server::access::author_of(&s.db, "s.khan").await?;
        assert_eq!(author.processes, honest.processes);
        let refusal = sync_core::permissions::Refusal { rule: "nc.owner_fields", message };
        let recovery = khan.engine.recover(nc, &changes, &refusal, fresh, &author).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!((recovery.replayed, recovery.refused.len()), (1, 1));
        khan.carry_out(recovery.effects).await?;
        anyhow::ensure!(khan.settle(SETTLE).await?, "did not settle after recovery");
        let stored = Nc::read(&server::db::documents::load(&s.db, &nc).await?.context("nc")?)?;
        assert_eq!(stored.description, "Amendment took 19 days (file 2026/114); interim reply missing.");
        assert_eq!(heads(&khan.engine, &nc), stored_heads(&s, &nc).await?);
        assert_eq!(khan.engine.refused_edits().len(), 1, "the user sees the refused edit");
        let quarantined: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine").fetch_one(s.db.pool()).await?;
        assert_eq!(quarantined, 1, "the replay was accepted");
        s.stop().await;
        Ok(())
    }
}

/// Whether the projector still has its view of a cold audit's report rows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ColdView {
    /// Kept: the audit went cold moments ago (its next batch reads only what it wrote).
    Kept,
    /// Dropped: it went cold longer ago than views are kept for.
    Expired,
    /// Dropped: no cold audit's view may be kept.
    OverTheBound,
}

/// The lead answers an item of an audit the server holds cold: the server
/// loads it again, stores the answer, keeps its report row right and passes
/// the answer to the member, whether or not the projector kept its view of
/// the audit (a view kept reads what the batch wrote; one dropped, the whole).
async fn an_edit_of_a_cold_audit(backend: Backend, case: ColdView) -> Result<()> {
    let s = TestServer::start_configured(backend, true, |c| {
        c.sync.cool_after = Duration::from_millis(300);
        c.sync.cold_view_for = match case {
            ColdView::Expired => Duration::from_millis(300),
            ColdView::Kept | ColdView::OverTheBound => Duration::from_secs(600),
        };
        if case == ColdView::OverTheBound {
            c.sync.cold_views = 0;
        }
    })
    .await?;
    let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/006").await?;
    let mut lead = s.tablet("k.iyer").await?;
    let mut member = s.tablet("s.khan").await?;
    let mut iyer = s.connect(&mut lead).await?;
    let author = lead.author.clone();
    iyer.edit(audit, &Edit::CreateAudit(header), &author)
        .await?;
    let start = Edit::Move {
        mv: "start".into(),
        note: String::new(),
    };
    iyer.edit(audit, &start, &author).await?;
    anyhow::ensure!(iyer.settle(SETTLE).await?, "the audit is stored");
    let mut khan = s.connect(&mut member).await?;
    holds(&s, &mut iyer, &[audit]).await?;
    holds(&s, &mut khan, &[audit]).await?;
    // Both in sync and quiet: every open document goes cold on the server,
    // and the new audit's report view stays or goes.
    let mut settled = false;
    for _ in 0..40 {
        iyer.run_until(Duration::from_millis(200), |_| false)
            .await?;
        khan.run_until(Duration::from_millis(200), |_| false)
            .await?;
        let (cold, loaded, views) = (
            gauge(&s, "sqm_sync_cold_documents").await?,
            gauge(&s, "sqm_sync_loaded_documents").await?,
            gauge(&s, "sqm_sync_report_views").await?,
        );
        if cold > 0 && loaded == 0 && (views > 0) == (case == ColdView::Kept) {
            settled = true;
            break;
        }
    }
    anyhow::ensure!(settled, "the open documents never went cold");
    let responses = |s: &TestServer| {
        let pool = s.db.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT responses FROM audits WHERE doc_id = $1")
                .bind(audit.to_string())
                .fetch_one(&pool)
                .await
        }
    };
    let before = responses(&s).await?;
    iyer.edit(
        audit,
        &answer("mr.held", Cpna::Conform, "minutes seen")?,
        &author,
    )
    .await?;
    anyhow::ensure!(iyer.settle(SETTLE).await?, "the answer is stored");
    holds(&s, &mut khan, &[audit]).await?;
    assert!(iyer.rejections.is_empty(), "{:?}", iyer.rejections);
    let view = AuditView::read(khan.engine.doc(&audit).context("audit")?)?;
    let key = "mr.held".parse()?;
    let seen = view
        .content
        .responses
        .get(&key)
        .context("the answer reached the member")?;
    assert_eq!(seen.note, "minutes seen");
    assert_eq!(responses(&s).await?, before + 1, "the report row follows");
    s.stop().await;
    Ok(())
}

on_both! {
    async fn a_document_gone_cold_moments_ago_takes_the_next_edit_from_its_report_view(backend: Backend) -> Result<()> {
        an_edit_of_a_cold_audit(backend, ColdView::Kept).await
    }
}

on_both! {
    async fn a_document_gone_cold_a_while_ago_takes_the_next_edit_and_passes_it_on(backend: Backend) -> Result<()> {
        an_edit_of_a_cold_audit(backend, ColdView::Expired).await
    }
}

on_both! {
    async fn a_document_gone_cold_past_the_bound_on_report_views_takes_the_next_edit(backend: Backend) -> Result<()> {
        an_edit_of_a_cold_audit(backend, ColdView::OverTheBound).await
    }
}

/// The nodal officer's tablet opens every document of the unit on a server
/// that may load `hot` of them at once, with `waiting_bytes` of frames
/// allowed to wait for a place. Returns the most documents loaded at once,
/// the frames that waited, and how many documents the unit has.
async fn open_the_unit(
    backend: Backend,
    hot: Option<usize>,
    waiting_bytes: usize,
) -> Result<(i64, i64, usize)> {
    let s = TestServer::start_configured(backend, true, |c| {
        if let Some(hot) = hot {
            c.sync.hot_documents = hot;
        }
        c.sync.deferred_bytes = waiting_bytes;
        // Long enough that no frame is let through for having waited.
        c.sync.defer_for = Duration::from_secs(300);
    })
    .await?;
    let ids: Vec<DocumentId> = sqlx::query_scalar::<_, String>(
        "SELECT id FROM documents WHERE unit = 'DEMO-I' ORDER BY id",
    )
    .fetch_all(s.db.pool())
    .await?
    .iter()
    .map(|id| id.parse())
    .collect::<Result<_, _>>()?;
    anyhow::ensure!(ids.len() > 4, "the demo unit has {} documents", ids.len());
    let mut tablet = s.tablet("a.rao").await?;
    let mut rao = s.connect(&mut tablet).await?;
    holds(&s, &mut rao, &ids).await?;
    assert!(rao.rejections.is_empty(), "{:?}", rao.rejections);
    // Let a few ticks of the hub publish its gauges.
    rao.run_until(Duration::from_millis(800), |_| false).await?;
    let most = gauge(&s, "sqm_sync_loaded_documents_most").await?;
    let waited = metric_or_zero(&s, "sqm_sync_frames_deferred_total").await?;
    assert_eq!(
        gauge(&s, "sqm_sync_deferred_documents").await?,
        0,
        "nothing left waiting"
    );
    let loaded = gauge(&s, "sqm_sync_loaded_documents").await?;
    if let Some(hot) = hot {
        assert!(
            loaded <= i64::try_from(hot)?,
            "{loaded} loaded once quiet, past {hot}"
        );
    }
    s.stop().await;
    Ok((most, waited, ids.len()))
}

on_both! {
    async fn a_device_opening_more_documents_than_may_be_loaded_gets_them_all_a_few_at_a_time(backend: Backend) -> Result<()> {
        let (most, waited, docs) = open_the_unit(backend, Some(2), 64 << 20).await?;
        assert!(most <= 2, "{most} documents loaded at once, past the limit of 2");
        assert!(most >= 1);
        assert!(waited > 0, "frames about cold documents waited for a place");
        // Just at the limit: every document has its place, nothing waits.
        let (most, waited, _) = open_the_unit(backend, Some(docs), 64 << 20).await?;
        assert_eq!(waited, 0, "nothing waits when every document has a place");
        assert!(most <= i64::try_from(docs)?);
        Ok(())
    }
}

on_both! {
    async fn frames_past_the_waiting_bytes_are_not_held_back(backend: Backend) -> Result<()> {
        // No byte may wait: every frame is let through at once, past the limit.
        let (most, _, docs) = open_the_unit(backend, Some(2), 0).await?;
        assert!(most > 2, "with no room to wait, documents are loaded past the limit ({most} of {docs})");
        Ok(())
    }
}
