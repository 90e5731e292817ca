//! Who may call what, on SQLite and PostgreSQL: each role's allowed and
//! forbidden calls, scoped by unit.

mod common;

use anyhow::Result;
use common::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::db::reference::{Unit, upsert_unit};
use sync_core::permissions::Role;

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

/// A caller of the management table.
struct Who {
    name: &'static str,
    /// The unit in which they try to give the auditor role.
    unit: &'static str,
}

const CALLERS: [Who; 7] = [
    Who {
        name: "sqm.admin",
        unit: "DEMO-I",
    }, // admin of CBIC, at the top
    Who {
        name: "v.nair",
        unit: "DEMO-I",
    }, // nodal officer of DGTS, above Demo-I
    Who {
        name: "a.rao",
        unit: "DEMO-I",
    }, // nodal officer of Demo-I
    Who {
        name: "o.nodal",
        unit: "OTHER",
    }, // nodal officer of OTHER, Demo-I's sibling
    Who {
        name: "k.iyer",
        unit: "DEMO-I",
    }, // auditor
    Who {
        name: "ac.div2",
        unit: "DEMO-I",
    }, // process owner
    Who {
        name: "t.none",
        unit: "DEMO-I",
    }, // no role at all
];

/// A role a target account holds: (unit, role, first day, last day), days relative to today.
type Held = (&'static str, Role, i32, Option<i32>);

const NOW: i32 = 0;
const LONG_AGO: i32 = -2000;

/// A target account: what it holds, who made it, and which callers may
/// manage it (the rest are refused). Written out, not computed.
struct Target {
    what: &'static str,
    held: &'static [Held],
    made_by: Option<&'static str>,
    managers: &'static [&'static str],
}

const fn target_of(
    what: &'static str,
    held: &'static [Held],
    made_by: Option<&'static str>,
    managers: &'static [&'static str],
) -> Target {
    Target {
        what,
        held,
        made_by,
        managers,
    }
}

const AUDITOR_HERE: Held = ("DEMO-I", Role::Auditor, LONG_AGO, None);

const TARGETS: &[Target] = &[
    target_of(
        "no role, made with the command line",
        &[],
        None,
        &["sqm.admin"],
    ),
    target_of(
        "no role, made by a.rao",
        &[],
        Some("a.rao"),
        &["sqm.admin", "a.rao"],
    ),
    target_of(
        "auditor here",
        &[AUDITOR_HERE],
        None,
        &["sqm.admin", "v.nair", "a.rao"],
    ),
    target_of(
        "auditor in a division below",
        &[("DEMO-I-DIV2", Role::Auditor, LONG_AGO, None)],
        None,
        &["sqm.admin", "v.nair", "a.rao"],
    ),
    target_of(
        "auditor elsewhere",
        &[("OTHER", Role::Auditor, LONG_AGO, None)],
        None,
        &["sqm.admin", "v.nair", "o.nodal"],
    ),
    target_of(
        "process owner here",
        &[("DEMO-I", Role::ProcessOwner, LONG_AGO, None)],
        None,
        &["sqm.admin", "v.nair", "a.rao"],
    ),
    target_of(
        "nodal officer here",
        &[("DEMO-I", Role::NodalOfficer, LONG_AGO, None)],
        None,
        &["sqm.admin"],
    ),
    target_of(
        "admin",
        &[("CBIC", Role::Admin, LONG_AGO, None)],
        None,
        &["sqm.admin"],
    ),
    target_of(
        "auditor here and elsewhere",
        &[AUDITOR_HERE, ("OTHER", Role::Auditor, LONG_AGO, None)],
        None,
        &["sqm.admin", "v.nair"],
    ),
    target_of(
        "auditor here and admin (the take-over)",
        &[AUDITOR_HERE, ("CBIC", Role::Admin, LONG_AGO, None)],
        None,
        &["sqm.admin"],
    ),
    target_of(
        "auditor here, admin until yesterday",
        &[AUDITOR_HERE, ("CBIC", Role::Admin, LONG_AGO, Some(-1))],
        None,
        &["sqm.admin", "v.nair", "a.rao"],
    ),
    target_of(
        "auditor here, admin until today",
        &[AUDITOR_HERE, ("CBIC", Role::Admin, LONG_AGO, Some(NOW))],
        None,
        &["sqm.admin"],
    ),
    target_of(
        "auditor here, admin from next month",
        &[AUDITOR_HERE, ("CBIC", Role::Admin, 30, None)],
        None,
        &["sqm.admin"],
    ),
    target_of(
        "only an auditor role here that ended",
        &[("DEMO-I", Role::Auditor, LONG_AGO, Some(-1))],
        None,
        &["sqm.admin"],
    ),
];

/// Makes a target account straight in the database, with a live session
/// and a registered device: (device id, session id).
async fn target(
    s: &TestServer,
    username: &str,
    hash: &str,
    held: &[Held],
    made_by: Option<&str>,
) -> Result<(String, String)> {
    use server::db::accounts::{self, Assignment, User, random_id};
    let today = server::access::today();
    let mut tx = s.db.begin().await?;
    let user = User {
        username: username.parse()?,
        display_name: username.into(),
        designation: String::new(),
        disabled_at: None,
    };
    anyhow::ensure!(
        accounts::insert_user(&mut tx, &user, hash).await?,
        "{username} exists"
    );
    if let Some(by) = made_by {
        accounts::set_made_by(&mut tx, username, by).await?;
    }
    for (unit, role, from, until) in held {
        let a = Assignment {
            id: random_id(),
            username: user.username.clone(),
            unit: unit.parse()?,
            role: *role,
            valid_from: today.add_days(*from),
            valid_until: until.map(|d| today.add_days(d)),
            office_order: "OO 9/2026".into(),
        };
        accounts::insert_assignment(&mut tx, &a, "test").await?;
    }
    let session = accounts::insert_session(&mut tx, username).await?;
    tx.commit().await?;
    let (device, _) = accounts::insert_device(&s.db, username, "tablet").await?;
    Ok((device.id, session))
}

on_both! {
    async fn accounts_are_managed_only_by_callers_who_could_give_every_role_they_hold(backend: Backend) -> Result<()> {
        use server::db::accounts;
        let s = TestServer::start(backend).await?;
        let other = other_unit(&s).await?;
        let password = server::secret::Secret::from("a password for every target".to_owned());
        let hash = tokio::task::spawn_blocking(move || server::auth::password::hash_blocking(&password)).await??;
        target(&s, "t.none", &hash, &[], None).await?;
        let mut tokens = Vec::new();
        for who in &CALLERS {
            tokens.push(match who.name {
                "o.nodal" => other.clone(),
                "t.none" => {
                    let (status, body) = s.login_tokens("t.none", "a password for every target").await?;
                    anyhow::ensure!(status == StatusCode::OK, "{body}");
                    body["access_token"].as_str().unwrap_or_default().to_owned()
                }
                name => s.login(name).await?,
            });
        }
        let mut wrong = Vec::new();
        for (ti, t) in TARGETS.iter().enumerate() {
            let (what, held, made_by, managers) = (t.what, t.held, t.made_by, t.managers);
            for (ci, who) in CALLERS.iter().enumerate() {
                let user = format!("t{ti}.c{ci}");
                let (device, session) = target(&s, &user, &hash, held, made_by).await?;
                let allowed = managers.contains(&who.name);
                let token = Some(tokens[ci].as_str());
                let admin = format!("/api/v1/admin/users/{user}");
                let calls: [(&str, Method, String, Option<Value>, StatusCode); 7] = [
                    ("list devices", Method::GET, format!("{admin}/devices"), None, StatusCode::OK),
                    ("revoke a device", Method::DELETE, format!("{admin}/devices/{device}"), None, StatusCode::NO_CONTENT),
                    ("end sessions", Method::DELETE, format!("{admin}/sessions"), None, StatusCode::NO_CONTENT),
                    ("disable", Method::POST, format!("{admin}/disable"), None, StatusCode::NO_CONTENT),
                    ("enable", Method::POST, format!("{admin}/enable"), None, StatusCode::NO_CONTENT),
                    ("set the password", Method::PUT, format!("{admin}/password"), Some(json!({"password": "taken over!"})), StatusCode::NO_CONTENT),
                    ("grant auditor", Method::POST, format!("/api/v1/admin/units/{}/roles", who.unit), Some(grant(&user, "auditor")), StatusCode::CREATED),
                ];
                for (op, method, path, body, ok) in calls {
                    let (status, answer) = s.call(method, &path, token, body).await?;
                    let want = if allowed { ok } else { StatusCode::FORBIDDEN };
                    if status != want {
                        wrong.push(format!("{} on '{what}': {op} answered {status}, not {want}: {answer}", who.name));
                    }
                }
                // A refusal changed nothing; a success did what it said.
                let live = accounts::session_live(&s.db, &session, &user).await?;
                let revoked = accounts::find_device(&s.db, &device).await?.is_some_and(|d| d.revoked_at.is_some());
                let same_password = accounts::credentials(&s.db, &user).await?.is_some_and(|(h, _)| h == hash);
                let roles = accounts::assignments_of_user(&s.db, &user).await?.len();
                let untouched = live && !revoked && same_password && roles == held.len();
                let done = !live && revoked && !same_password && roles == held.len() + 1;
                if (allowed && !done) || (!allowed && !untouched) {
                    wrong.push(format!(
                        "{} on '{what}': session live {live}, device revoked {revoked}, same password {same_password}, {roles} roles",
                        who.name
                    ));
                }
            }
        }
        anyhow::ensure!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_nodal_officer_cannot_take_an_admin_account_through_their_unit(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let rao = s.login("a.rao").await?;
        let (status, body) = s.post(&format!("{UNIT}/roles"), &rao, grant("sqm.admin", "auditor")).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "the auditor role was given to the admin: {body}");
        let (status, _) = s
            .call(Method::PUT, "/api/v1/admin/users/sqm.admin/password", Some(&rao), Some(json!({"password": "now the admin is mine"})))
            .await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "the admin's password was set");
        assert!(s.login("sqm.admin").await.is_ok(), "the admin still signs in with their own password");
        // An account the nodal officer makes is theirs to give a first role and a password.
        let (status, body) = s
            .post("/api/v1/admin/users", &rao, json!({"username": "n.new", "display_name": "N. New", "password": "long enough password"}))
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = s.post(&format!("{UNIT}/roles"), &rao, grant("n.new", "auditor")).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // Once an admin makes it a nodal officer, it is no longer theirs.
        let admin = s.login("sqm.admin").await?;
        let (status, _) = s.post(&format!("{UNIT}/roles"), &admin, grant("n.new", "nodal_officer")).await?;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = s.post("/api/v1/admin/users/n.new/disable", &rao, json!({})).await?;
        assert_eq!(status, StatusCode::FORBIDDEN);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn an_auditor_is_never_on_the_team_of_an_audit_of_a_process_they_own_or_deputise(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let t = s.login("a.rao").await?;
        // P. Sharma, an auditor of the unit, becomes deputy owner of P01.
        let (status, processes) = s.get(&format!("{UNIT}/processes"), &t).await?;
        assert_eq!(status, StatusCode::OK, "{processes}");
        let p01 = processes.as_array().and_then(|p| p.iter().find(|p| p["code"] == "P01").cloned()).unwrap_or_default();
        let body = json!({"clause": p01["clause"], "name": p01["name"], "standard": p01["standard"], "owner": p01["owner"], "deputy": "p.sharma"});
        let (status, p) = s.call(Method::PUT, &format!("{UNIT}/processes/P01"), Some(&t), Some(body)).await?;
        assert_eq!(status, StatusCode::OK, "{p}");
        // An audit covering P01: not as lead, not as member.
        for (lead, members) in [("p.sharma", vec![]), ("k.iyer", vec!["p.sharma"])] {
            let (status, body) = s.post(&format!("{UNIT}/audits"), &t, plan("IA/DEMO-I/2025-26/006", lead, &members)).await?;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            let m = body["message"].as_str().unwrap_or_default();
            assert!(m.contains("p.sharma owns or deputises for process P01"), "{m}");
        }
        // An audit of other processes may have them.
        let mut other = plan("IA/DEMO-I/2025-26/007", "k.iyer", &["p.sharma"]);
        other["scope"] = json!(["P04"]);
        let (status, audit) = s.post(&format!("{UNIT}/audits"), &t, other).await?;
        assert_eq!(status, StatusCode::CREATED, "{audit}");
        // Nor may a team change bring them onto an audit of P01 (named by its clause here).
        let mut by_clause = plan("IA/DEMO-I/2025-26/008", "k.iyer", &[]);
        by_clause["scope"] = json!([p01["clause"]]);
        let (status, audit) = s.post(&format!("{UNIT}/audits"), &t, by_clause).await?;
        assert_eq!(status, StatusCode::CREATED, "{audit}");
        let id = audit["id"].as_str().unwrap_or_default();
        let (status, body) = s
            .call(Method::PUT, &format!("{UNIT}/audits/{id}/team"), Some(&t), Some(json!({"lead": "k.iyer", "members": ["p.sharma"]})))
            .await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("may not audit their own process")), "{body}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn the_units_nodal_officer_makes_and_approves_its_programme_sees_its_adherence_and_tablets_receive_it(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let programmes = format!("{UNIT}/programmes");
        let next = json!({ "fy": "2026-27", "cycles": 2, "scope": ["P01", "P08", "3.4"] });
        // An auditor, a process owner and another unit's nodal officer may not.
        let other = other_unit(&s).await?;
        for user in ["k.iyer", "ac.div2", "o.nodal"] {
            let token = match user {
                "o.nodal" => other.clone(),
                _ => s.login(user).await?,
            };
            let (status, body) = s.post(&programmes, &token, next.clone()).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{user}: {body}");
            let (status, _) = s.get(&programmes, &token).await?;
            assert_eq!(status, StatusCode::FORBIDDEN, "{user}");
        }
        let rao = s.login("a.rao").await?;
        // The demo's 2025-26: audits 001 (closed), 002 (report issued) and
        // 003 (in review) planned and started, two reported; a fourth
        // planned for February, not started.
        let adherence = |list: &Value| list[0]["adherence"].clone();
        let (status, list) = s.get(&programmes, &rao).await?;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(adherence(&list), json!({"planned": 3, "started": 3, "reported": 2}), "{list}");
        let (status, body) = s.post(&format!("{UNIT}/audits"), &rao, plan("IA/DEMO-I/2025-26/004", "k.iyer", &[])).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, list) = s.get(&programmes, &rao).await?;
        assert_eq!(adherence(&list), json!({"planned": 4, "started": 3, "reported": 2}), "{list}");
        let (status, made) = s.post(&programmes, &rao, next).await?;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let id = made["id"].as_str().unwrap_or_default().to_owned();
        // A planned audit belongs to an approved programme: none yet for 2026-27.
        let in_may = |number: &str, scope: &[&str]| {
            let mut body = plan(number, "k.iyer", &[]);
            body["planned_from"] = json!("2026-05-04");
            body["planned_to"] = json!("2026-05-05");
            body["scope"] = json!(scope);
            body
        };
        let audits = format!("{UNIT}/audits");
        let (status, refused) = s.post(&audits, &rao, in_may("IA/DEMO-I/2026-27/001", &["P01"])).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(
            refused["message"],
            "planned_from: DEMO-I has no approved audit programme for 2026-27; a nodal officer makes and approves it first."
        );
        let approve = format!("{programmes}/{id}/approve");
        let iyer = s.login("k.iyer").await?;
        let (status, _) = s.post(&approve, &iyer, json!({})).await?;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // The nodal officer at the apex, above the unit, may approve it.
        let nair = s.login("v.nair").await?;
        let (status, approved) = s.post(&approve, &nair, json!({})).await?;
        assert_eq!(status, StatusCode::OK, "{approved}");
        assert_eq!(approved["approved_by"], "v.nair");
        // Approved, it takes audits of what it covers, and only those.
        let (status, refused) = s.post(&audits, &rao, in_may("IA/DEMO-I/2026-27/001", &["P01", "P02"])).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(
            refused["message"],
            "scope: P02 not in the 2026-27 programme, which covers P01, P08, 3.4."
        );
        let (status, body) = s.post(&audits, &rao, in_may("IA/DEMO-I/2026-27/001", &["P01", "3.4"])).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, list) = s.get(&programmes, &rao).await?;
        assert_eq!(list[1]["adherence"], json!({"planned": 1, "started": 0, "reported": 0}), "{list}");
        // Tablets find it, approved, in the reference bundle.
        let (status, bundle) = s.get("/api/v1/reference", &iyer).await?;
        assert_eq!(status, StatusCode::OK);
        let held = bundle["programmes"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["id"] == id.as_str()).cloned())
            .unwrap_or_default();
        assert_eq!(held["approved_on"], approved["approved_on"], "{bundle}");
        assert_eq!(held["scope"], json!(["P01", "P08", "3.4"]));
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn the_nodal_officer_sets_the_units_due_date_rules_and_every_nc_follows_them(backend: Backend) -> Result<()> {
        use common::sync_help::{SETTLE, finding, nc_link, new_id, plan as plan_audit};
        use sync_core::edit::Edit;
        let s = TestServer::start(backend).await?;
        let rules = format!("{UNIT}/due-rules");
        let rao = s.login("a.rao").await?;
        let (status, now) = s.get(&rules, &rao).await?;
        assert_eq!(status, StatusCode::OK, "{now}");
        assert_eq!(
            now,
            json!({"unit": "DEMO-I", "response_days_major": 7, "response_days_minor": 7,
                   "action_days_major": 30, "action_days_minor": 60, "set": false})
        );
        let body = |r: i32, a: i32| json!({"response_days_major": r, "response_days_minor": r,
                                           "action_days_major": a, "action_days_minor": a});
        let iyer = s.login("k.iyer").await?;
        let (status, _) = s.call(Method::PUT, &rules, Some(&iyer), Some(body(10, 60))).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "an auditor");
        for (r, a, want) in [
            (0, 60, StatusCode::UNPROCESSABLE_ENTITY),
            (1, 365, StatusCode::OK),
            (10, 366, StatusCode::UNPROCESSABLE_ENTITY),
            (61, 60, StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            let (status, answer) = s.call(Method::PUT, &rules, Some(&rao), Some(body(r, a))).await?;
            assert_eq!(status, want, "{r}/{a}: {answer}");
        }
        // The open NCs' rows before and after: due 10 days after raising, not 7.
        let open = "SELECT raised_on, response_due FROM ncs WHERE state = 'open' ORDER BY doc_id";
        let before: Vec<(String, String)> = sqlx::query_as(open).fetch_all(s.db.pool()).await?;
        let (status, set) = s.call(Method::PUT, &rules, Some(&rao), Some(body(10, 60))).await?;
        assert_eq!((status, set["set"].clone()), (StatusCode::OK, json!(true)), "{set}");
        let after: Vec<(String, String)> = sqlx::query_as(open).fetch_all(s.db.pool()).await?;
        assert!(!after.is_empty());
        assert_ne!(before, after);
        // None is due 7 days after raising any more; those not extended are
        // due 10 days after (an extended one keeps its extension's date).
        let days = |(raised, due): &(String, String)| -> Result<i32> {
            let raised: sync_core::date::Date = raised.parse()?;
            Ok(due.parse::<sync_core::date::Date>()?.days_since(raised))
        };
        let mut counted = Vec::new();
        for row in &after {
            counted.push(days(row)?);
        }
        assert!(!counted.contains(&7) && counted.contains(&10), "{after:?}");
        // Tablets receive the rules with their reference data.
        let (_, bundle) = s.get("/api/v1/reference", &iyer).await?;
        assert_eq!(bundle["author"]["due_rules"]["DEMO-I"]["response_days_minor"], 10, "{}", bundle["author"]);
        // An NC raised from now on is projected by the hub under them.
        let (audit, header) = plan_audit(&s, "IA/DEMO-I/2025-26/031").await?;
        let mut lead = s.tablet("k.iyer").await?;
        let mut client = s.connect(&mut lead).await?;
        let a = lead.author.clone();
        client.edit(audit, &Edit::CreateAudit(header), &a).await?;
        client.edit(audit, &Edit::Move { mv: "start".into(), note: String::new() }, &a).await?;
        client.edit(audit, &finding(Vec::new())?, &a).await?;
        let nc = new_id(0x73);
        let create = Edit::CreateNc { link: nc_link(audit)?, description: "Beyond 15 days.".into(), provisional: String::new() };
        client.edit(nc, &create, &a).await?;
        assert!(client.settle(SETTLE).await?, "the lead's tablet did not settle");
        let (raised, due): (String, String) = sqlx::query_as("SELECT raised_on, response_due FROM ncs WHERE doc_id = $1")
            .bind(nc.to_string())
            .fetch_one(s.db.pool())
            .await?;
        assert_eq!(due, raised.parse::<sync_core::date::Date>()?.add_days(10).to_string());
        lead.park(client).await;
        s.stop().await;
        Ok(())
    }
}
