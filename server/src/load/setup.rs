//! Setup: the load accounts (auditors of the demo unit) and their planned
//! audits, written straight into the own server's database, or made through
//! the admin API of a running server.

use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sync_core::date::Date;
use sync_core::ids::DocumentId;
use sync_core::permissions::Role;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::http::Http;
use crate::auth::password::hash_blocking;
use crate::db::accounts::{self, Assignment, User, fill_random, random_id};
use crate::db::reference::{self, PlannedAudit, TeamMember};
use crate::db::{Db, now_ms, parse_col};
use crate::secret::Secret;
use crate::seed::DEMO_UNIT;

/// The password of every load account.
pub const LOAD_PASSWORD: &str = "load-tablet-password";

/// What every planned audit covers: four charter services (their 3.2.1 items
/// are answered once per process) and the general clauses.
pub const SCOPE: &[&str] = &["P01", "P02", "P03", "P04", "2.2", "2.4", "3.3", "3.4"];

/// The checklist template version the audits pin.
pub const TEMPLATE_VERSION: i64 = 2;

/// Idle devices one idle account holds (the server allows four sockets per user).
pub const DEVICES_PER_IDLE_ACCOUNT: usize = 4;

/// One planned audit of the run.
#[derive(Clone, Debug)]
pub struct AuditPlan {
    /// Its number.
    pub number: String,
    /// The lead (a tablet's account).
    pub lead: String,
    /// The members: the partner tablet, and any idle account watching it.
    pub members: Vec<String>,
}

/// The run's accounts and audits.
#[derive(Clone, Debug)]
pub struct Layout {
    /// One account per tablet.
    pub tablets: Vec<String>,
    /// Accounts of the idle devices.
    pub idle: Vec<String>,
    /// Every planned audit: tablet i's audits come i*M .. (i+1)*M.
    pub audits: Vec<AuditPlan>,
}

impl Layout {
    /// Names for `n` tablets with `m` audits each; `tag` keeps runs against one
    /// server apart ("" for an own server).
    pub fn new(n: usize, m: usize, idle_devices: usize, tag: &str) -> Layout {
        let tablets: Vec<String> = (1..=n).map(|i| format!("load.{tag}t{i:03}")).collect();
        let idle: Vec<String> = (1..=idle_devices.div_ceil(DEVICES_PER_IDLE_ACCOUNT))
            .map(|i| format!("load.{tag}i{i:03}"))
            .collect();
        let mut audits = Vec::with_capacity(n * m);
        let series = if tag.is_empty() {
            "LOAD".to_owned()
        } else {
            format!("LOAD-{}", tag.trim_end_matches('.').to_uppercase())
        };
        for (i, lead) in tablets.iter().enumerate() {
            for j in 1..=m {
                let members = if n > 1 {
                    vec![tablets[(i + 1) % n].clone()]
                } else {
                    Vec::new()
                };
                audits.push(AuditPlan {
                    number: format!("IA/{DEMO_UNIT}/{series}/{:03}-{j:02}", i + 1),
                    lead: lead.clone(),
                    members,
                });
            }
        }
        let total = audits.len();
        if total > 0 {
            for (k, user) in idle.iter().enumerate() {
                let at = k * total / idle.len();
                audits[at].members.push(user.clone());
            }
        }
        Layout {
            tablets,
            idle,
            audits,
        }
    }

    fn accounts(&self) -> impl Iterator<Item = &String> {
        self.tablets.iter().chain(&self.idle)
    }
}

/// The first day of the load accounts' roles and of their audits (a week back,
/// so that no time zone puts "today" before it).
fn first_day() -> Date {
    crate::access::today().add_days(-7)
}

fn scope() -> Vec<String> {
    SCOPE.iter().map(|s| (*s).to_owned()).collect()
}

/// Loads the demo unit and the run's accounts and audits into a fresh database.
pub async fn into_database(db: &Db, layout: &Layout) -> Result<()> {
    crate::seed::demo(db)
        .await
        .context("cannot load the demo unit")?;
    let password = Secret::from(LOAD_PASSWORD.to_owned());
    // One hash for every load account.
    let hash = tokio::task::spawn_blocking(move || hash_blocking(&password)).await??;
    let from = first_day();
    let mut tx = db.begin().await?;
    for (k, username) in layout.accounts().enumerate() {
        let user = User {
            username: parse_col("username", username)?,
            display_name: format!("Load auditor {}", k + 1),
            designation: "Inspector (load test)".into(),
            disabled_at: None,
        };
        accounts::insert_user(&mut tx, &user, &hash).await?;
        let grant = Assignment {
            id: random_id(),
            username: user.username.clone(),
            unit: parse_col("unit", DEMO_UNIT)?,
            role: Role::Auditor,
            valid_from: from,
            valid_until: None,
            office_order: "Load test".into(),
        };
        accounts::insert_assignment(&mut tx, &grant, "sqm load").await?;
    }
    for a in &layout.audits {
        let mut random = [0u8; 10];
        fill_random(&mut random);
        let team = std::iter::once(TeamMember {
            username: a.lead.clone(),
            role: "lead".into(),
        })
        .chain(a.members.iter().map(|m| TeamMember {
            username: m.clone(),
            role: "member".into(),
        }))
        .collect();
        let planned = PlannedAudit {
            id: DocumentId::new_v7(now_ms(), random).to_string(),
            unit: DEMO_UNIT.into(),
            number: a.number.clone(),
            scope: scope(),
            planned_from: from.add_days(7).to_string(),
            planned_to: from.add_days(8).to_string(),
            template_version: TEMPLATE_VERSION,
            begun: false,
            team,
        };
        reference::insert_planned_audit(&mut tx, &planned, "sqm load").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Makes the run's accounts and audits through a running server's admin API.
pub async fn through_api(http: &Http, admin: &str, password: &str, layout: &Layout) -> Result<()> {
    let tokens = http
        .post(
            "/api/v1/auth/login",
            None,
            &json!({ "username": admin, "password": password }),
            200,
        )
        .await
        .context("the admin login failed (see --admin-user, --admin-password)")?;
    let token: Arc<str> = tokens["access_token"]
        .as_str()
        .context("no access_token")?
        .into();
    let from = first_day().to_string();
    let limit = Arc::new(Semaphore::new(8));
    let mut tasks = JoinSet::new();
    for (k, username) in layout.accounts().enumerate() {
        let (http, token, limit, from) = (http.clone(), token.clone(), limit.clone(), from.clone());
        let username = username.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let user = json!({
                "username": username, "display_name": format!("Load auditor {}", k + 1),
                "designation": "Inspector (load test)", "password": LOAD_PASSWORD,
            });
            http.post("/api/v1/admin/users", Some(&token), &user, 201)
                .await?;
            let grant = json!({
                "username": username, "role": "auditor", "valid_from": from,
                "office_order": "Load test",
            });
            let path = format!("/api/v1/admin/units/{DEMO_UNIT}/roles");
            http.post(&path, Some(&token), &grant, 201).await?;
            anyhow::Ok(())
        });
    }
    join_all(&mut tasks).await?;
    let today = crate::access::today();
    programme_for(http, &token, today).await?;
    for a in &layout.audits {
        let (http, token, limit) = (http.clone(), token.clone(), limit.clone());
        let body = json!({
            "number": a.number, "scope": scope(), "planned_from": today.to_string(),
            "planned_to": today.add_days(1).to_string(), "template_version": TEMPLATE_VERSION,
            "lead": a.lead, "members": a.members,
        });
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let path = format!("/api/v1/admin/units/{DEMO_UNIT}/audits");
            http.post(&path, Some(&token), &body, 201).await?;
            anyhow::Ok(())
        });
    }
    join_all(&mut tasks).await
}

/// Makes and approves the unit's programme for the year of `day`, covering
/// the load's scope, unless an approved one covering it is there already:
/// planned audits belong to an approved programme.
async fn programme_for(http: &Http, token: &str, day: Date) -> Result<()> {
    let fy = crate::http::admin::audits::financial_year(day);
    let path = format!("/api/v1/admin/units/{DEMO_UNIT}/programmes");
    let listed = http.get(&path, token).await?;
    let covers = |p: &Value| {
        p["fy"] == fy.as_str()
            && !p["approved_on"].is_null()
            && scope().iter().all(|s| {
                p["scope"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == s))
            })
    };
    if listed.as_array().is_some_and(|l| l.iter().any(covers)) {
        return Ok(());
    }
    let body = json!({ "fy": fy, "cycles": 2, "scope": scope() });
    let made = http.post(&path, Some(token), &body, 201).await?;
    let id = made["id"].as_str().context("the programme's id")?;
    http.post(
        &format!("{path}/{id}/approve"),
        Some(token),
        &json!({}),
        200,
    )
    .await?;
    Ok(())
}

async fn join_all(tasks: &mut JoinSet<Result<()>>) -> Result<()> {
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}
