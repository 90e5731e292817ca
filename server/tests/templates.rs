//! Checklist versions as data and the checklist's own rules, on SQLite and
//! PostgreSQL: an admin publishes a version from its JSON file (every mistake
//! named by line); each unit's own nodal officer acknowledges the amendment
//! it implements, and stewards see which units have not; an audit keeps the
//! version it pinned when a new one is published while it is offline; and
//! the server refuses a submission for review while a required item is
//! unanswered, as the tablet does.

mod common;

use anyhow::{Context, Result};
use common::sync_help::{SETTLE, plan};
use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::templates::MAX_FILE;
use sync_core::audit::{Answer, AuditView, Cpna, YesNo};
use sync_core::checklist::{Checklist, Gap};
use sync_core::edit::Edit;

const V2: &str = include_str!("../../templates/sqm-03-v2.json");

/// Version 2's file as version `version`, implementing amendment `amendment`.
fn version(version: u32, amendment: &str) -> String {
    V2.replacen("\"version\": 2", &format!("\"version\": {version}"), 1)
        .replacen("\"id\": \"A-01\"", &format!("\"id\": \"{amendment}\""), 1)
}

/// POSTs a template file's text as it is.
async fn publish(s: &TestServer, token: &str, text: &str) -> Result<(StatusCode, Value)> {
    let res = s
        .client
        .post(format!("{}/api/v1/admin/templates", s.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(text.to_owned())
        .send()
        .await?;
    let status = res.status();
    let body = res.text().await?;
    Ok((
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    ))
}

on_both! {
    async fn an_admin_publishes_a_checklist_version_and_every_mistake_is_named_by_line(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let admin = s.login("sqm.admin").await?;
        let v3 = version(3, "A-02");
        for user in ["a.rao", "k.iyer"] {
            let token = s.login(user).await?;
            let (status, body) = publish(&s, &token, &v3).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{user}: {body}");
        }
        // Mistakes: every one, by line, and nothing published.
        let broken = v3
            .replacen("\"type\": \"yn\"", "\"type\": \"yes-no\"", 1)
            .replacen("\"answers\": [\n          \"not_conform\"", "\"answers\": [\n          \"never\"", 1);
        let (status, body) = publish(&s, &admin, &broken).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        let line = |needle: &str| broken[..broken.find(needle).unwrap_or(0)].matches('\n').count() + 1;
        assert_eq!(
            message,
            format!(
                "The template has 2 mistake(s):\nline {}: item 'chr.review': type: 'yes-no' is not one of cpna, yn, text, number, date, photo\nline {}: item 'grv.sample': required.answers: list answers of 'grv.ack' from conform, partly, not_conform, na",
                line("\"yes-no\""),
                line("\"required\": {\n        \"when\": \"grv.ack\""),
            ),
        );
        let (status, made) = publish(&s, &admin, &v3).await?;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made, json!({"version": 3, "items": 49, "amendment": "A-02"}));
        let (status, again) = publish(&s, &admin, &v3).await?;
        assert_eq!(status, StatusCode::CONFLICT, "{again}");
        assert!(again["message"].as_str().unwrap_or_default().contains("never changes"));
        // A new version may not record an amendment already recorded.
        let (status, twice) = publish(&s, &admin, &version(4, "A-02")).await?;
        assert_eq!(status, StatusCode::CONFLICT, "{twice}");

        // A file as large as the limit is read (past the 64 KiB of other
        // JSON bodies); one byte more is refused before it is read.
        let padded = |v: u32, size: usize| {
            let mut t = version(v, &format!("A-{v:02}")).trim_end().to_owned();
            t.push_str(&" ".repeat(size - t.len()));
            t
        };
        let (status, body) = publish(&s, &admin, &padded(5, MAX_FILE)).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = publish(&s, &admin, &padded(6, MAX_FILE + 1)).await?;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

        // Tablets receive the new version, with its rules, in the reference data.
        let iyer = s.login("k.iyer").await?;
        let (_, bundle) = s.get("/api/v1/reference", &iyer).await?;
        let versions: Vec<i64> = bundle["templates"]
            .as_array()
            .context("templates")?
            .iter()
            .filter_map(|t| t["version"].as_i64())
            .collect();
        assert_eq!(versions, [1, 2, 3, 5]);
        let sample = bundle["templates"][2]["items"]
            .as_array()
            .and_then(|i| i.iter().find(|i| i["key"] == "grv.sample"))
            .cloned()
            .context("grv.sample")?;
        assert_eq!(
            (&sample["required"], &sample["required_item"], &sample["required_answers"]),
            (&json!("when"), &json!("grv.ack"), &json!(["not_conform"]))
        );
        s.stop().await;
        Ok(())
    }
}

/// The amendments as the caller sees them: (id, acknowledged units, pending units).
fn amendments(list: &Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    let units = |v: &Value, field: &str| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        if field.is_empty() {
                            x.as_str()
                        } else {
                            x[field].as_str()
                        }
                        .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["id"].as_str().unwrap_or_default().to_owned(),
                        units(&x["acknowledged"], "unit"),
                        units(&x["pending"], ""),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

on_both! {
    async fn a_units_own_nodal_officer_acknowledges_an_amendment_once_and_stewards_see_who_has_not(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let admin = s.login("sqm.admin").await?;
        let (status, made) = publish(&s, &admin, &version(3, "A-02")).await?;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let rao = s.login("a.rao").await?;
        let nair = s.login("v.nair").await?;
        let iyer = s.login("k.iyer").await?;
        let demo_units = ["DEMO-I", "DEMO-I-DIV2", "DEMO-I-DIV2-R4"].map(String::from).to_vec();
        // The demo unit acknowledged A-01 when it came; A-02 is pending everywhere.
        let (status, list) = s.get("/api/v1/admin/amendments", &rao).await?;
        assert_eq!(status, StatusCode::OK, "{list}");
        let seen = amendments(&list);
        assert_eq!(seen[0], ("A-01".into(), vec!["DEMO-I".into()], demo_units[1..].to_vec()));
        assert_eq!(seen[1], ("A-02".into(), vec![], demo_units.clone()));
        let (status, _) = s.get("/api/v1/admin/amendments", &iyer).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "an auditor follows no amendments");

        let ack = "/api/v1/admin/units/DEMO-I/amendments/A-02/ack";
        // Not an auditor, and not the nodal officer above the unit: the unit's own.
        for token in [&iyer, &nair] {
            let (status, body) = s.post(ack, token, json!({})).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        }
        let (status, body) = s.post(ack, &rao, json!({})).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!((&body["unit"], &body["by"]), (&json!("DEMO-I"), &json!("a.rao")));
        let (status, body) = s.post(ack, &rao, json!({})).await?;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, _) = s
            .post("/api/v1/admin/units/DEMO-I/amendments/A-99/ack", &rao, json!({}))
            .await?;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // The apex nodal officer sees it in the reference data, with the units yet to.
        let (_, bundle) = s.get("/api/v1/reference", &nair).await?;
        let seen = amendments(&bundle["amendments"]);
        let a02 = seen.iter().find(|a| a.0 == "A-02").context("A-02")?;
        assert_eq!(a02.1, ["DEMO-I"]);
        assert!(a02.2.contains(&"DEMO-I-DIV2".to_owned()) && !a02.2.contains(&"DEMO-I".to_owned()), "{a02:?}");
        // An auditor's bundle lists the amendments, with no unit's follow-up.
        let (_, bundle) = s.get("/api/v1/reference", &iyer).await?;
        let seen = amendments(&bundle["amendments"]);
        assert_eq!(seen.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["A-01", "A-02"]);
        assert!(seen.iter().all(|a| a.1.is_empty() && a.2.is_empty()), "{seen:?}");
        s.stop().await;
        Ok(())
    }
}

/// Answers every item of `checklist` still keeping the audit from review, as
/// conforming (0 for a count, the start for a date).
fn answer_rest(checklist: &Checklist, doc: &sync_core::automerge::Automerge) -> Result<Vec<Edit>> {
    let view = AuditView::read(doc)?;
    let mut edits = Vec::new();
    for gap in checklist.gaps(&view.content.responses) {
        let Gap::Unanswered(key) = gap else {
            anyhow::bail!("{gap}");
        };
        let answer = match checklist.rule(&key).context("a rule")?.answer.as_str() {
            "cpna" => Answer::Cpna(Cpna::Conform),
            "yn" => Answer::YesNo(YesNo::Yes),
            "number" => Answer::Number(0),
            "date" => Answer::Date(view.header.start),
            _ => Answer::Text("Seen.".into()),
        };
        edits.push(Edit::SetResponse {
            key,
            answer,
            note: String::new(),
            evidence: vec![],
        });
    }
    Ok(edits)
}

fn mv(name: &str) -> Edit {
    Edit::Move {
        mv: name.into(),
        note: String::new(),
    }
}

on_both! {
    async fn an_audit_keeps_its_pinned_version_when_a_new_one_is_published_while_it_is_offline(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/012").await?;
        let mut lead = s.tablet("k.iyer").await?;
        let pinned = lead.author.planned.get(&audit).context("planned")?.checklist.clone();
        assert_eq!(pinned.version, 2);
        lead.edit_offline(audit, Edit::CreateAudit(header))?;
        lead.edit_offline(audit, mv("start"))?;

        // While the tablet is offline, version 3 makes the minutes' photo
        // required under 3.4, which is in this audit's scope.
        let v3 = version(3, "A-02").replacen(
            "\"key\": \"mr.decisions\"",
            "\"key\": \"mr.minutes\",\n      \"clause\": \"3.4\",\n      \"question\": \"Are the minutes signed and filed?\",\n      \"type\": \"yn\"\n    },\n    {\n      \"key\": \"mr.decisions\"",
            1,
        );
        let admin = s.login("sqm.admin").await?;
        let (status, made) = publish(&s, &admin, &v3).await?;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        // The audit's checklist, as the server gives it now, is still version 2's.
        let now = server::access::author_of(&s.db, "k.iyer").await?;
        let after = now.planned.get(&audit).context("planned")?.checklist.clone();
        assert_eq!(after, pinned, "the pinned version, unchanged");
        assert!(!after.items.keys().any(|k| k.to_string() == "mr.minutes"));

        // The tablet completes version 2's checklist offline and submits.
        let doc = lead.offline().doc(&audit).context("the audit")?.clone();
        for edit in answer_rest(&pinned, &doc)? {
            lead.edit_offline(audit, edit)?;
        }
        lead.edit_offline(audit, mv("submit_for_review"))?;
        let mut c = s.connect(&mut lead).await?;
        common::sync_help::stored(&s, &mut c, &[audit]).await?;
        assert!(c.rejections.is_empty(), "{:?}", c.rejections);
        let state: String = sqlx::query_scalar("SELECT state FROM audits WHERE doc_id = $1")
            .bind(audit.to_string())
            .fetch_one(s.db.pool())
            .await?;
        assert_eq!(state, "in_review");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn the_server_refuses_a_submission_for_review_with_an_item_unanswered(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/013").await?;
        let mut lead = s.tablet("k.iyer").await?;
        let checklist = lead.author.planned.get(&audit).context("planned")?.checklist.clone();
        lead.edit_offline(audit, Edit::CreateAudit(header))?;
        lead.edit_offline(audit, mv("start"))?;
        let doc = lead.offline().doc(&audit).context("the audit")?.clone();
        let mut rest = answer_rest(&checklist, &doc)?;
        let left_out = rest.pop().context("an item")?;
        let Edit::SetResponse { key, .. } = &left_out else { anyhow::bail!("not an answer") };
        let key = key.to_string();
        for edit in rest {
            lead.edit_offline(audit, edit)?;
        }
        // The tablet refuses it, naming the item ...
        let refused = lead
            .edit_offline(audit, mv("submit_for_review"))
            .expect_err("the tablet knows the checklist");
        assert!(refused.to_string().contains(&format!("{key} is not answered")), "{refused}");
        // ... and so does the server, for a tablet with out-of-date rules.
        lead.author
            .planned
            .get_mut(&audit)
            .context("planned")?
            .checklist = std::sync::Arc::new(Checklist::default());
        lead.edit_offline(audit, mv("submit_for_review"))?;
        let mut c = s.connect(&mut lead).await?;
        let deadline = std::time::Instant::now() + SETTLE;
        while common::sync_help::rejections_with(&c, "audit.checklist") == 0 {
            anyhow::ensure!(std::time::Instant::now() < deadline, "no refusal came");
            c.run_until(std::time::Duration::from_millis(100), |_| false).await?;
        }
        let state: String = sqlx::query_scalar("SELECT state FROM audits WHERE doc_id = $1")
            .bind(audit.to_string())
            .fetch_one(s.db.pool())
            .await?;
        assert_eq!(state, "in_progress", "the answers are kept, the move is not");
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine WHERE doc_id = $1 AND rule = 'audit.checklist'")
            .bind(audit.to_string())
            .fetch_one(s.db.pool())
            .await?;
        assert_eq!(kept, 1, "the refused change is kept aside, never dropped");
        s.stop().await;
        Ok(())
    }
}
