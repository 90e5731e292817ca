//! Helpers of the sync tests: a planned audit, what a tablet and the
//! database hold, the server's metrics.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use server::client::Client;
use sync_core::audit::{AuditHeader, Evidence, FindingClass};
use sync_core::automerge::ChangeHash;
use sync_core::edit::Edit;
use sync_core::ids::DocumentId;
use sync_core::nc::{NcLink, Severity};

use super::TestServer;

/// The minor finding `f-01` on P03 (clause 3.2.1.3) with its evidence.
pub fn finding(evidence: Vec<Evidence>) -> Result<Edit> {
    Ok(Edit::PutFinding {
        id: "f-01".parse()?,
        class: FindingClass::Minor,
        clause: "3.2.1.3".parse()?,
        process: Some("P03".parse()?),
        text: "An amendment took 19 days.".into(),
        evidence,
    })
}

/// The link of an NC raised from finding `f-01` of `audit`.
pub fn nc_link(audit: DocumentId) -> Result<NcLink> {
    Ok(NcLink {
        unit: "DEMO-I".parse()?,
        audit,
        finding: "f-01".parse()?,
        process: Some("P03".parse()?),
        clause: "3.2.1.3".parse()?,
        class: Severity::Minor,
        raised_on: "2026-02-11".parse()?,
    })
}

/// A fresh document id, told apart from others by `tag`.
pub fn new_id(tag: u8) -> DocumentId {
    DocumentId::new_v7(server::db::now_ms(), [tag; 10])
}

/// How long a tablet is given to settle.
pub const SETTLE: Duration = Duration::from_secs(20);

/// Plans an audit of Demo-I with K. Iyer as lead and S. Khan on the team.
pub async fn plan(s: &TestServer, number: &str) -> Result<(DocumentId, AuditHeader)> {
    let rao = s.login("a.rao").await?;
    let (status, audit) = s
        .post(
            "/api/v1/admin/units/DEMO-I/audits",
            &rao,
            json!({
                "number": number, "scope": ["P03", "3.4"], "planned_from": "2026-02-10",
                "planned_to": "2026-02-11", "template_version": 2, "lead": "k.iyer", "members": ["s.khan"]
            }),
        )
        .await?;
    anyhow::ensure!(status.as_u16() == 201, "{audit}");
    let id: DocumentId = audit["id"].as_str().context("id")?.parse()?;
    let header = AuditHeader {
        unit: "DEMO-I".parse()?,
        number: number.into(),
        scope: vec!["P03".into(), "3.4".into()],
        template_version: 2,
        lead: "k.iyer".parse()?,
        team: vec!["k.iyer".parse()?, "s.khan".parse()?],
        start: "2026-02-10".parse()?,
        end: Some("2026-02-11".parse()?),
    };
    Ok((id, header))
}

/// Syncs until the tablet holds what the database holds of `docs`.
pub async fn holds(s: &TestServer, c: &mut Client, docs: &[DocumentId]) -> Result<()> {
    let mut want = Vec::new();
    for d in docs {
        want.push(stored_heads(s, d).await?);
    }
    let ok = c
        .run_until(SETTLE, |c| {
            docs.iter()
                .zip(&want)
                .all(|(d, w)| heads(&c.engine, d) == *w)
        })
        .await?;
    anyhow::ensure!(ok, "the tablet never caught up with {docs:?}");
    Ok(())
}

pub fn heads(e: &sync_core::engine::Engine, d: &DocumentId) -> Vec<ChangeHash> {
    let mut h = e.doc(d).map(|d| d.get_heads()).unwrap_or_default();
    h.sort();
    h
}

pub async fn stored_heads(s: &TestServer, d: &DocumentId) -> Result<Vec<ChangeHash>> {
    let doc = server::db::documents::load(&s.db, d)
        .await?
        .context("stored")?;
    let mut h = doc.get_heads();
    h.sort();
    Ok(h)
}

/// A gauge of the server's metrics.
pub async fn gauge(s: &TestServer, name: &str) -> Result<i64> {
    let text = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await?
        .text()
        .await?;
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .with_context(|| format!("no {name} in the metrics"))?;
    Ok(value.trim().parse()?)
}

/// A counter or gauge of the server's metrics; 0 if nothing counted it yet.
pub async fn metric_or_zero(s: &TestServer, name: &str) -> Result<i64> {
    match gauge(s, name).await {
        Ok(n) => Ok(n),
        Err(e) if e.to_string().starts_with("no ") => Ok(0),
        Err(e) => Err(e),
    }
}

/// Syncs until the database holds what the tablet holds of `docs` (its
/// other documents may stay out of sync).
pub async fn stored(s: &TestServer, c: &mut Client, docs: &[DocumentId]) -> Result<()> {
    let deadline = std::time::Instant::now() + SETTLE;
    while std::time::Instant::now() < deadline {
        c.run_until(Duration::from_millis(100), |_| false).await?;
        let mut all = true;
        for d in docs {
            all &= stored_heads(s, d).await? == heads(&c.engine, d);
        }
        if all {
            return Ok(());
        }
    }
    anyhow::bail!("the database never held the tablet's {docs:?}")
}

/// How many refusals under `rule` the tablet has been told of.
pub fn rejections_with(c: &Client, rule: &str) -> usize {
    c.rejections
        .iter()
        .filter(|n| matches!(n, sync_core::engine::Notice::Rejected { rule: r, .. } if r == rule))
        .count()
}
