//! Report rows written part by part, on SQLite and PostgreSQL: the writer
//! rewrites only the parts of a document's rows that changed, and a part
//! changed by any update of a batch is written.

mod common;

use anyhow::{Context, Result};
use common::{Backend, TestServer};
use server::db::{Db, documents};
use server::projection::{FindingRow, Parts, Projection, project};
use sync_core::DocKind;
use sync_core::ids::DocumentId;
use sync_core::nc::DueRules;

async fn state_of(db: &Db, id: &DocumentId) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT state FROM audits WHERE doc_id = $1")
            .bind(id.to_string())
            .fetch_one(db.pool())
            .await?,
    )
}

async fn findings_of(db: &Db, id: &DocumentId) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT text FROM findings WHERE audit_id = $1 ORDER BY finding_id")
            .bind(id.to_string())
            .fetch_all(db.pool())
            .await?,
    )
}

async fn write(db: &Db, id: &DocumentId, rows: &Projection, parts: Parts) -> Result<()> {
    let mut tx = db.begin().await?;
    documents::write_projection(&mut tx, id, rows, parts).await?;
    tx.commit().await?;
    Ok(())
}

on_both! {
    async fn only_the_changed_parts_of_a_documents_rows_are_rewritten(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let audit = documents::all_meta(&s.db)
            .await?
            .into_iter()
            .find(|m| m.kind == DocKind::Audit)
            .context("a demo audit")?
            .id;
        let doc = documents::load(&s.db, &audit).await?.context("loads")?;
        let stored = project(&doc, &DueRules::default())?;
        write(&s.db, &audit, &stored, Parts::ALL).await?;
        let (state, findings) = (state_of(&s.db, &audit).await?, findings_of(&s.db, &audit).await?);

        // New rows in which both the audit row and the findings differ.
        let mut next = stored.clone();
        let Projection::Audit { audit: row, findings: found, .. } = &mut next else {
            anyhow::bail!("not an audit's rows");
        };
        row.state = "in_review".into();
        found.push(FindingRow {
            finding_id: "zz-new".into(),
            class: "observation".into(),
            clause: "3.2.1.3".into(),
            process: None,
            text: "A finding added by the update".into(),
        });
        let parts = Parts::between(Some(&stored), &next);
        assert_eq!(parts, Parts { row: true, entries: true, evidence: false });

        // Only the row marked changed: the findings stay as they were.
        let row_only = Parts { row: true, entries: false, evidence: false };
        write(&s.db, &audit, &next, row_only).await?;
        assert_eq!(state_of(&s.db, &audit).await?, "in_review");
        assert_ne!(state, "in_review");
        assert_eq!(findings_of(&s.db, &audit).await?, findings, "findings left alone");

        // Two updates of one batch: the findings changed in the first count.
        let batch = Parts { row: false, entries: true, evidence: false }.or(row_only);
        write(&s.db, &audit, &next, batch).await?;
        let mut want = findings.clone();
        want.push("A finding added by the update".into());
        assert_eq!(findings_of(&s.db, &audit).await?, want);

        // Nothing changed: nothing to write.
        assert!(!Parts::between(Some(&next), &next).any());
        Ok(())
    }
}

on_both! {
    async fn several_audits_rows_written_together_each_get_their_own(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let audits: Vec<DocumentId> = documents::all_meta(&s.db)
            .await?
            .into_iter()
            .filter(|m| m.kind == DocKind::Audit)
            .map(|m| m.id)
            .take(2)
            .collect();
        let [a, b] = audits[..] else { anyhow::bail!("two demo audits") };
        let mut rows = Vec::new();
        for (id, state, text) in [(a, "in_review", "Only in the first"), (b, "closed", "Only in the second")] {
            let doc = documents::load(&s.db, &id).await?.context("loads")?;
            let mut p = project(&doc, &DueRules::default())?;
            let Projection::Audit { audit: row, findings, .. } = &mut p else {
                anyhow::bail!("not an audit's rows");
            };
            row.state = state.into();
            findings.clear();
            findings.push(FindingRow {
                finding_id: "f-1".into(),
                class: "observation".into(),
                clause: "3.2.1.3".into(),
                process: None,
                text: text.into(),
            });
            rows.push((id, p));
        }
        let items: Vec<(&DocumentId, &Projection, Parts)> =
            rows.iter().map(|(id, p)| (id, p, Parts::ALL)).collect();
        let mut tx = s.db.begin().await?;
        documents::write_projections(&mut tx, &items).await?;
        tx.commit().await?;
        assert_eq!(state_of(&s.db, &a).await?, "in_review");
        assert_eq!(state_of(&s.db, &b).await?, "closed");
        assert_eq!(findings_of(&s.db, &a).await?, ["Only in the first"]);
        assert_eq!(findings_of(&s.db, &b).await?, ["Only in the second"]);
        Ok(())
    }
}
