//! Human numbers, on SQLite and PostgreSQL: an NC raised offline carries the
//! provisional number its tablet gave it; the server gives it `NC-<n>` when
//! it first stores it, in a change of its own that reaches every tablet
//! holding the NC; two NCs raised at the same time on two tablets get
//! distinct numbers; and `GET /api/v1/search` finds them under either
//! number, only for those who may read them.

mod common;

use anyhow::{Context, Result};
use common::sync_help::{SETTLE, finding, nc_link, new_id, plan};
use common::{Backend, Tablet, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use server::client::Client;
use sync_core::edit::Edit;
use sync_core::ids::DocumentId;
use sync_core::nc::Nc;

/// An NC raised from finding `f-01` with the tablet's provisional number.
fn raise(audit: DocumentId, provisional: &str) -> Result<Edit> {
    Ok(Edit::CreateNc {
        link: nc_link(audit)?,
        description: format!("Amendment beyond 15 days ({provisional})."),
        provisional: provisional.into(),
    })
}

/// The server's number of an NC as a tablet holds it.
fn number_on(c: &Client, nc: &DocumentId) -> Option<String> {
    c.engine
        .doc(nc)
        .and_then(|d| Nc::read(d).ok())
        .and_then(|n| n.number)
}

async fn search(s: &TestServer, token: &str, q: &str) -> Result<(StatusCode, Value)> {
    let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/search", s.base), &[("q", q)])?;
    let res = s.client.get(url).bearer_auth(token).send().await?;
    let status = res.status();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

/// The ids of the documents a search found.
fn ids(found: &Value) -> Vec<String> {
    found["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|h| h["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The lead and the member connected, holding the started audit with its finding.
async fn team_online(s: &TestServer) -> Result<(DocumentId, Tablet, Tablet)> {
    let (audit, header) = plan(s, "IA/DEMO-I/2025-26/008").await?;
    let mut lead = s.tablet("k.iyer").await?;
    let mut iyer = s.connect(&mut lead).await?;
    let a = lead.author.clone();
    iyer.edit(audit, &Edit::CreateAudit(header), &a).await?;
    let start = Edit::Move {
        mv: "start".into(),
        note: String::new(),
    };
    iyer.edit(audit, &start, &a).await?;
    iyer.edit(audit, &finding(Vec::new())?, &a).await?;
    anyhow::ensure!(iyer.settle(SETTLE).await?, "the lead did not settle");
    let mut member = s.tablet("s.khan").await?;
    let mut khan = s.connect(&mut member).await?;
    common::sync_help::holds(s, &mut khan, &[audit]).await?;
    lead.park(iyer).await;
    member.park(khan).await;
    Ok((audit, lead, member))
}

on_both! {
    async fn ncs_raised_offline_on_two_tablets_get_distinct_numbers_that_reach_both_and_are_found_by_either(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (audit, mut lead, mut member) = team_online(&s).await?;
        let (first, second) = (new_id(0x71), new_id(0x72));
        lead.edit_offline(first, raise(audit, "D-IYER-01")?)?;
        member.edit_offline(second, raise(audit, "D-KHAN-01")?)?;
        let shown = Nc::read(member.offline().doc(&second).context("held")?)?;
        assert_eq!((shown.number, shown.provisional.as_str()), (None, "D-KHAN-01"), "offline, the tablet's own number");

        // Both come online at once.
        let mut iyer = s.connect(&mut lead).await?;
        let mut khan = s.connect(&mut member).await?;
        let both = |c: &Client| number_on(c, &first).is_some() && number_on(c, &second).is_some();
        for _ in 0..(SETTLE.as_millis() / 100) {
            if both(&iyer) && both(&khan) {
                break;
            }
            iyer.run_until(std::time::Duration::from_millis(50), |_| false).await?;
            khan.run_until(std::time::Duration::from_millis(50), |_| false).await?;
        }
        assert!(both(&iyer) && both(&khan), "the server's numbers did not reach both tablets");
        let numbers = [number_on(&iyer, &first), number_on(&iyer, &second)];
        assert_eq!(numbers, [number_on(&khan, &first), number_on(&khan, &second)], "the same on both tablets");
        let [Some(a), Some(b)] = numbers.clone() else { anyhow::bail!("numbered") };
        assert_ne!(a, b, "two NCs, two numbers");
        for (nc, n) in [(first, &a), (second, &b)] {
            assert!(n.starts_with("NC-"), "{n}");
            let meta = server::db::documents::meta(&s.db, &nc).await?.context("stored")?;
            assert_eq!(meta.number.as_ref(), Some(n), "the tablets show the number the server keeps");
            // The provisional number stays beside it.
            let held = Nc::read(khan.engine.doc(&nc).context("held")?)?;
            assert!(held.provisional.starts_with("D-"), "{}", held.provisional);
        }

        // Search: by either number, any case, for those who may read the NC.
        let token = s.login("s.khan").await?;
        for q in [b.as_str(), "d-khan-01", "D-KHAN"] {
            let (status, found) = search(&s, &token, q).await?;
            assert_eq!(status, StatusCode::OK, "{q}: {found}");
            assert_eq!(ids(&found), [second.to_string()], "{q}: {found}");
            assert_eq!(found["results"][0]["number"], b.as_str());
            assert_eq!(found["results"][0]["provisional"], "D-KHAN-01");
        }
        let (_, found) = search(&s, &token, &a).await?;
        assert_eq!(ids(&found), [first.to_string()], "{found}");
        // An auditor off the team finds neither; a percent sign is only a character.
        let sharma = s.login("p.sharma").await?;
        let (status, found) = search(&s, &sharma, "D-KHAN-01").await?;
        assert_eq!((status, ids(&found)), (StatusCode::OK, Vec::<String>::new()), "{found}");
        let (_, found) = search(&s, &token, "%").await?;
        assert!(ids(&found).is_empty(), "{found}");
        iyer.disconnect().await;
        khan.disconnect().await;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_search_is_one_to_a_hundred_printable_characters(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let token = s.login("a.rao").await?;
        let hundred = "n".repeat(100);
        for (q, want) in [
            ("", StatusCode::BAD_REQUEST),
            ("   ", StatusCode::BAD_REQUEST),
            (hundred.as_str(), StatusCode::OK),
            (&format!("{hundred}n"), StatusCode::BAD_REQUEST),
            ("NC-\u{7}", StatusCode::BAD_REQUEST),
        ] {
            let (status, body) = search(&s, &token, q).await?;
            assert_eq!(status, want, "{} characters: {body}", q.chars().count());
            if want == StatusCode::BAD_REQUEST {
                assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
            }
        }
        // The demo's NCs are numbered in their documents too, and found.
        let (status, found) = search(&s, &token, "NC-01").await?;
        assert_eq!(status, StatusCode::OK);
        let hits = found["results"].as_array().context("results")?;
        assert_eq!(hits.len(), 1, "{found}");
        let id: DocumentId = hits[0]["id"].as_str().context("id")?.parse()?;
        let doc = server::db::documents::load(&s.db, &id).await?.context("stored")?;
        assert_eq!(Nc::read(&doc)?.number.as_deref(), Some("NC-01"));
        let (status, _) = s.call(reqwest::Method::GET, "/api/v1/search?q=NC", None, None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        s.stop().await;
        Ok(())
    }
}
