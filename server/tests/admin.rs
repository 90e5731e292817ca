//! Who may call what, on SQLite and PostgreSQL: each role's allowed and
//! forbidden calls, scoped by unit.

mod common;

use anyhow::Result;
use common::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::db::reference::{Unit, upsert_unit};

const UNIT: &str = "/api/v1/admin/units/DEMO-I";

fn plan(number: &str, lead: &str, members: &[&str]) -> Value {
    json!({
        "number": number,
        "scope": ["P01", "3.4"],
        "planned_from": "2026-02-10",
        "planned_to": "2026-02-11",
        "template_version": 2,
        "lead": lead,
        "members": members,
    })
}

fn grant(username: &str, role: &str) -> Value {
    json!({
        "username": username,
        "role": role,
        "valid_from": "2026-01-01",
        "office_order": "OO 3/2026 dated 01-01-2026",
    })
}

/// Adds a unit OTHER beside Demo-I with its own nodal officer `o.nodal`.
async fn other_unit(s: &TestServer) -> Result<String> {
    let mut tx = s.db.begin().await?;
    upsert_unit(
        &mut tx,
        &Unit {
            code: "OTHER".into(),
            name: "CGST Commissionerate Other".into(),
            parent: Some("DEMO-ZONE".into()),
        },
    )
    .await?;
    tx.commit().await?;
    let admin = s.login("sqm.admin").await?;
    let (status, body) = s
        .post(
            "/api/v1/admin/users",
            &admin,
            json!({"username": "o.nodal", "display_name": "O. Nodal", "password": "another-long-password"}),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = s
        .post(
            "/api/v1/admin/units/OTHER/roles",
            &admin,
            grant("o.nodal", "nodal_officer"),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = s.login_tokens("o.nodal", "another-long-password").await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
}

on_both! {
    async fn a_process_owner_and_an_auditor_may_not_administer(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        for who in ["ac.div2", "k.iyer"] {
            let t = s.login(who).await?;
            let (status, body) = s.post(&format!("{UNIT}/audits"), &t, plan("IA/DEMO-I/2025-26/004", "k.iyer", &["s.khan"])).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} planned an audit: {body}");
            assert!(body["message"].as_str().is_some_and(|m| m.contains("nodal_officer or admin")), "{body}");
            for path in ["roles", "processes", "audits"] {
                let (status, _) = s.get(&format!("{UNIT}/{path}"), &t).await?;
                assert_eq!(status, StatusCode::FORBIDDEN, "{who} listed {path}");
            }
            let (status, _) = s.post(&format!("{UNIT}/roles"), &t, grant("s.khan", "auditor")).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} granted a role");
            let (status, _) = s
                .call(Method::PUT, &format!("{UNIT}/audits/x/team"), Some(&t), Some(json!({"lead": "k.iyer"})))
                .await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} assigned auditors");
            let (status, _) = s.post("/api/v1/admin/users/s.khan/disable", &t, json!({})).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} disabled an account");
            let (status, _) = s.post("/api/v1/admin/users/nobody/disable", &t, json!({})).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} may not learn which accounts exist");
            let (status, _) = s
                .post("/api/v1/admin/users", &t, json!({"username": "x.y", "display_name": "X", "password": "long enough pw"}))
                .await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} created an account");
        }
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn the_nodal_officer_runs_the_unit(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let t = s.login("a.rao").await?;
        let (status, roles) = s.get(&format!("{UNIT}/roles"), &t).await?;
        assert_eq!(status, StatusCode::OK);
        assert!(roles.as_array().is_some_and(|r| r.iter().any(|a| a["username"] == "k.iyer" && a["role"] == "auditor")));
        // Plan an audit with a team; the number is unique.
        let (status, audit) = s.post(&format!("{UNIT}/audits"), &t, plan("IA/DEMO-I/2025-26/004", "p.sharma", &["s.khan"])).await?;
        assert_eq!(status, StatusCode::CREATED, "{audit}");
        assert_eq!(audit["team"][0], json!({"username": "p.sharma", "role": "lead"}));
        let (status, _) = s.post(&format!("{UNIT}/audits"), &t, plan("IA/DEMO-I/2025-26/004", "p.sharma", &[])).await?;
        assert_eq!(status, StatusCode::CONFLICT);
        // A process owner cannot be on an audit team.
        let (status, body) = s.post(&format!("{UNIT}/audits"), &t, plan("IA/DEMO-I/2025-26/005", "ac.div2", &[])).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("ac.div2 does not hold the auditor role")), "{body}");
        let id = audit["id"].as_str().unwrap_or_default();
        let (status, team) = s
            .call(Method::PUT, &format!("{UNIT}/audits/{id}/team"), Some(&t), Some(json!({"lead": "k.iyer", "members": ["p.sharma"]})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{team}");
        assert_eq!(team["team"][1]["username"], "p.sharma");
        // The new lead's rights follow at once: the audit is theirs in the reference bundle.
        let iyer = s.login("k.iyer").await?;
        let (_, bundle) = s.get("/api/v1/reference", &iyer).await?;
        assert_eq!(bundle["author"]["audits"][id], "lead", "{}", bundle["author"]);
        // Processes: change an owner; unknown owners are refused.
        let body = json!({"clause": "3.2.1.3", "name": "Registration amendment", "standard": "15 d", "owner": "ac.tech"});
        let (status, p) = s.call(Method::PUT, &format!("{UNIT}/processes/P03"), Some(&t), Some(body)).await?;
        assert_eq!(status, StatusCode::OK, "{p}");
        let body = json!({"clause": "3.2.1.3", "name": "Registration amendment", "owner": "nobody"});
        let (status, _) = s.call(Method::PUT, &format!("{UNIT}/processes/P03"), Some(&t), Some(body)).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        // Roles: a nodal officer grants auditor, not nodal officer; an admin grants both.
        let (status, g) = s.post(&format!("{UNIT}/roles"), &t, grant("m.das", "auditor")).await?;
        assert_eq!(status, StatusCode::CREATED, "{g}");
        let (status, _) = s.post(&format!("{UNIT}/roles"), &t, grant("m.das", "nodal_officer")).await?;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let admin = s.login("sqm.admin").await?;
        let (status, _) = s.post(&format!("{UNIT}/roles"), &admin, grant("m.das", "nodal_officer")).await?;
        assert_eq!(status, StatusCode::CREATED);
        // Ending a role takes effect today.
        let gid = g["id"].as_str().unwrap_or_default();
        let (status, _) = s.call(Method::DELETE, &format!("{UNIT}/roles/{gid}"), Some(&t), None).await?;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = s.call(Method::DELETE, &format!("{UNIT}/roles/{gid}"), Some(&t), None).await?;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("already ended")), "{body}");
        let das = s.login("m.das").await?;
        let (_, me) = s.get("/api/v1/me", &das).await?;
        let auditor = me["roles"].as_array().and_then(|r| r.iter().find(|x| x["role"] == "auditor").cloned());
        assert_eq!(auditor.map(|a| a["in_force"].clone()), Some(json!(false)), "{me}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_nodal_officer_of_another_unit_sees_nothing_of_this_one(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let other = other_unit(&s).await?;
        for path in ["roles", "processes", "audits"] {
            let (status, body) = s.get(&format!("{UNIT}/{path}"), &other).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
            assert!(!body.to_string().contains("k.iyer"), "{body}");
        }
        let (status, _) = s.get("/api/v1/admin/users?unit=DEMO-I", &other).await?;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = s.post("/api/v1/admin/users/k.iyer/disable", &other, json!({})).await?;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, bundle) = s.get("/api/v1/reference", &other).await?;
        assert_eq!(status, StatusCode::OK);
        let text = bundle.to_string();
        for secret in ["DEMO-I\"", "k.iyer", "IA/DEMO-I", "P03"] {
            assert!(!text.contains(secret), "the other unit's bundle shows {secret}");
        }
        // The apex nodal officer oversees the whole zone, Demo-I included.
        let apex = s.login("v.nair").await?;
        let (status, audits) = s.get(&format!("{UNIT}/audits"), &apex).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(audits.as_array().map(Vec::len), Some(3));
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn the_reference_bundle_holds_what_a_tablet_needs_and_answers_304_when_unchanged(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let t = s.login("k.iyer").await?;
        let res = s.client.get(format!("{}/api/v1/reference", s.base)).bearer_auth(&t).send().await?;
        assert_eq!(res.status(), StatusCode::OK);
        let etag = res.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bundle: Value = res.json().await?;
        assert!(etag.starts_with('"'), "{etag}");
        let templates = bundle["templates"].as_array().cloned().unwrap_or_default();
        assert_eq!(templates.len(), 2);
        assert!(templates[1]["items"].as_array().is_some_and(|i| i.iter().any(|x| x["key"] == "cmp.cpgrams")));
        assert_eq!(bundle["processes"].as_array().map(Vec::len), Some(10));
        let numbers: Vec<&str> = bundle["audits"].as_array().map(|a| a.iter().filter_map(|x| x["number"].as_str()).collect()).unwrap_or_default();
        assert_eq!(numbers, ["IA/DEMO-I/2025-26/001", "IA/DEMO-I/2025-26/003"], "only the audits on Iyer's teams");
        assert_eq!(bundle["author"]["user"], "k.iyer");
        assert_eq!(bundle["author"]["actors"].as_array().map(Vec::len), Some(1));
        let again = s
            .client
            .get(format!("{}/api/v1/reference", s.base))
            .bearer_auth(&t)
            .header("If-None-Match", &etag)
            .send()
            .await?;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        // A change to the reference data changes the ETag.
        let (status, _) = s.post("/api/v1/devices", &t, json!({"name": "Second tablet"})).await?;
        assert_eq!(status, StatusCode::CREATED);
        let changed = s
            .client
            .get(format!("{}/api/v1/reference", s.base))
            .bearer_auth(&t)
            .header("If-None-Match", &etag)
            .send()
            .await?;
        assert_eq!(changed.status(), StatusCode::OK, "a new actor id is new reference data");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn devices_register_get_fresh_actor_ids_and_can_be_revoked(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let t = s.login("s.khan").await?;
        let (status, d) = s.post("/api/v1/devices", &t, json!({"name": "Khan tablet"})).await?;
        assert_eq!(status, StatusCode::CREATED);
        let id = d["device_id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(d["actor"].as_str().map(str::len), Some(32));
        let (status, a2) = s.post(&format!("/api/v1/devices/{id}/actors"), &t, json!({})).await?;
        assert_eq!(status, StatusCode::CREATED);
        assert_ne!(a2["actor"], d["actor"]);
        let other = s.login("k.iyer").await?;
        let (status, _) = s.post(&format!("/api/v1/devices/{id}/actors"), &other, json!({})).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "another user's device");
        let (status, _) = s.post("/api/v1/devices", &t, json!({"name": ""})).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = s.call(Method::DELETE, &format!("/api/v1/devices/{id}"), Some(&t), None).await?;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = s.post(&format!("/api/v1/devices/{id}/actors"), &t, json!({})).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "a revoked device gets no more actor ids");
        let (_, bundle) = s.get("/api/v1/reference", &t).await?;
        let actors = bundle["author"]["actors"].as_array().cloned().unwrap_or_default();
        assert!(!actors.contains(&d["actor"]) && !actors.contains(&a2["actor"]), "revoked actors are no longer the user's");
        s.stop().await;
        Ok(())
    }
}
