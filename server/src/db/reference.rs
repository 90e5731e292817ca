//! Reference data: units, processes and their owners, manual issues and
//! versioned checklist templates, audit programmes, planned audits and their
//! teams. Devices cache it read-only; access decisions are made from it.

use serde::Serialize;
use std::collections::BTreeMap;

use sqlx::Row;
use sync_core::checklist::Checklist;
use sync_core::ids::{DocumentId, ProcessCode, UnitCode, UserId};
use sync_core::nc::DueRules;
use sync_core::permissions::{self, TeamRole};

use super::{Db, DbError, Tx, now_ms, parse_col};

/// A unit of the organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unit {
    /// Its code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// The unit above it.
    pub parent: Option<String>,
}

/// Every unit.
pub async fn units(db: &Db) -> Result<Vec<Unit>, DbError> {
    let rows = sqlx::query("SELECT code, name, parent FROM units ORDER BY code")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Unit {
                code: r.try_get(0)?,
                name: r.try_get(1)?,
                parent: r.try_get(2)?,
            })
        })
        .collect()
}

/// Adds a unit, or renames it and moves it under another parent.
pub async fn upsert_unit(tx: &mut Tx, unit: &Unit) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO units (code, name, parent, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent = excluded.parent",
    )
    .bind(&unit.code)
    .bind(&unit.name)
    .bind(unit.parent.as_deref())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The units at and below `top` in the hierarchy, `top` first.
pub fn subtree(units: &[Unit], top: &str) -> Vec<String> {
    let mut out = vec![top.to_owned()];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].clone();
        out.extend(
            units
                .iter()
                .filter(|u| u.parent.as_deref() == Some(parent.as_str()))
                .map(|u| u.code.clone()),
        );
        i += 1;
    }
    out
}

/// The units above `unit`, nearest first.
pub fn ancestors(units: &[Unit], unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = unit.to_owned();
    while let Some(parent) = units
        .iter()
        .find(|u| u.code == at)
        .and_then(|u| u.parent.clone())
    {
        if out.contains(&parent) || out.len() > units.len() {
            break;
        }
        out.push(parent.clone());
        at = parent;
    }
    out
}

/// A process of a unit and who owns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Process {
    /// The unit.
    pub unit: String,
    /// Its code, e.g. P04.
    pub code: String,
    /// The clause of the manual it answers, e.g. 3.2.1.4.
    pub clause: String,
    /// Its name.
    pub name: String,
    /// The charter standard, e.g. "60 d".
    pub standard: String,
    /// The process owner.
    pub owner: String,
    /// The deputy owner.
    pub deputy: Option<String>,
}

fn process_of(r: &sqlx::any::AnyRow) -> Result<Process, DbError> {
    Ok(Process {
        unit: r.try_get(0)?,
        code: r.try_get(1)?,
        clause: r.try_get(2)?,
        name: r.try_get(3)?,
        standard: r.try_get(4)?,
        owner: r.try_get(5)?,
        deputy: r.try_get(6)?,
    })
}

/// The processes of a unit.
pub async fn processes_of_unit(db: &Db, unit: &str) -> Result<Vec<Process>, DbError> {
    let rows = sqlx::query(
        "SELECT unit, code, clause, name, standard, owner, deputy FROM processes \
         WHERE unit = $1 ORDER BY code",
    )
    .bind(unit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(process_of).collect()
}

/// The processes a user owns or deputises for.
pub async fn processes_owned_by(
    db: &Db,
    username: &str,
) -> Result<Vec<(UnitCode, ProcessCode)>, DbError> {
    let rows = sqlx::query(
        "SELECT unit, code FROM processes WHERE owner = $1 OR deputy = $1 ORDER BY unit, code",
    )
    .bind(username)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                parse_col("unit", &r.try_get::<String, _>(0)?)?,
                parse_col("process", &r.try_get::<String, _>(1)?)?,
            ))
        })
        .collect()
}

/// Adds or replaces a process.
pub async fn upsert_process(tx: &mut Tx, p: &Process) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO processes (unit, code, clause, name, standard, owner, deputy, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (unit, code) DO UPDATE SET clause = excluded.clause, name = excluded.name, \
         standard = excluded.standard, owner = excluded.owner, deputy = excluded.deputy, \
         updated_at = excluded.updated_at",
    )
    .bind(&p.unit)
    .bind(&p.code)
    .bind(&p.clause)
    .bind(&p.name)
    .bind(&p.standard)
    .bind(&p.owner)
    .bind(p.deputy.as_deref())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An issue of the service quality manual.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManualIssue {
    /// Its id, e.g. SQM-03.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The standard it is based on.
    pub based_on: String,
    /// When it was published.
    pub published_on: String,
}

/// A version of the checklist template with its items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Template {
    /// The version.
    pub version: i64,
    /// The manual issue its clause numbers follow.
    pub manual_issue: String,
    /// When it was published.
    pub published_on: String,
    /// What changed.
    pub note: String,
    /// Its items in order.
    pub items: Vec<TemplateItem>,
}

/// One checklist item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TemplateItem {
    /// The stable key, e.g. sd.timeliness.
    pub key: String,
    /// The clause as printed in the manual issue ("" for general items).
    pub clause: String,
    /// The question.
    pub question: String,
    /// cpna, yn, text, number, date or photo.
    pub response_type: String,
    /// Whether objective evidence is required for a shortfall.
    pub evidence: bool,
    /// Whether the item is answered once per process in scope.
    pub per_process: bool,
    /// When it must be answered before review: always, optional, or when
    /// (the answer to `required_item` is one of `required_answers`).
    pub required: String,
    /// The item whose answer decides, when `required` is `when`.
    pub required_item: Option<String>,
    /// The answers of that item that make this one required.
    pub required_answers: Vec<String>,
}

impl TemplateItem {
    /// The item as the checklist rules read it; `None` if a stored value
    /// does not read (published items are checked, so this is corruption).
    pub fn rule(&self) -> Option<sync_core::checklist::TemplateItem> {
        use sync_core::checklist::Required;
        Some(sync_core::checklist::TemplateItem {
            key: self.key.parse().ok()?,
            clause: self.clause.clone(),
            answer: self.response_type.clone(),
            evidence: self.evidence,
            per_process: self.per_process,
            required: match self.required.as_str() {
                "always" => Required::Always,
                "optional" => Required::Optional,
                "when" => Required::When {
                    item: self.required_item.as_deref()?.parse().ok()?,
                    answers: self.required_answers.clone(),
                },
                _ => return None,
            },
        })
    }
}

/// An amendment to the manual and the template version that implements it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Amendment {
    /// Its id, e.g. A-01.
    pub id: String,
    /// The manual issue it amends.
    pub manual_issue: String,
    /// When the authority issued it.
    pub issued_on: String,
    /// The issuing authority.
    pub authority: String,
    /// What it changes.
    pub note: String,
    /// The checklist version that implements it.
    pub template_version: i64,
}

/// Records an amendment; false if its id is taken.
pub async fn insert_amendment(tx: &mut Tx, a: &Amendment, by: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO amendments \
         (id, manual_issue, issued_on, authority, note, template_version, published_by, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&a.id)
    .bind(&a.manual_issue)
    .bind(&a.issued_on)
    .bind(&a.authority)
    .bind(&a.note)
    .bind(a.template_version)
    .bind(by)
    .bind(super::now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every amendment, oldest first.
pub async fn amendments(db: &Db) -> Result<Vec<Amendment>, DbError> {
    let rows = sqlx::query(
        "SELECT id, manual_issue, issued_on, authority, note, template_version FROM amendments \
         ORDER BY issued_on, id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Amendment {
                id: r.try_get(0)?,
                manual_issue: r.try_get(1)?,
                issued_on: r.try_get(2)?,
                authority: r.try_get(3)?,
                note: r.try_get(4)?,
                template_version: r.try_get(5)?,
            })
        })
        .collect()
}

/// A unit's acknowledgement of an amendment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AmendmentAck {
    /// The amendment.
    pub amendment: String,
    /// The unit.
    pub unit: String,
    /// The nodal officer who acknowledged it.
    pub by: String,
    /// When (Unix milliseconds).
    pub at: i64,
}

/// Records that `unit` acknowledged amendment `id`; false if it had already.
pub async fn acknowledge_amendment(
    tx: &mut Tx,
    id: &str,
    unit: &str,
    by: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO amendment_acks (amendment_id, unit, acked_by, acked_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (amendment_id, unit) DO NOTHING",
    )
    .bind(id)
    .bind(unit)
    .bind(by)
    .bind(super::now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every acknowledgement.
pub async fn amendment_acks(db: &Db) -> Result<Vec<AmendmentAck>, DbError> {
    let rows = sqlx::query(
        "SELECT amendment_id, unit, acked_by, acked_at FROM amendment_acks \
         ORDER BY amendment_id, unit",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AmendmentAck {
                amendment: r.try_get(0)?,
                unit: r.try_get(1)?,
                by: r.try_get(2)?,
                at: r.try_get(3)?,
            })
        })
        .collect()
}

/// Whether a manual issue is known.
pub async fn manual_issue_exists(tx: &mut Tx, id: &str) -> Result<bool, DbError> {
    Ok(sqlx::query("SELECT 1 FROM manual_issues WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

/// Adds a manual issue if it is not there.
pub async fn insert_manual_issue(tx: &mut Tx, m: &ManualIssue) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO manual_issues (id, title, based_on, published_on) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&m.id)
    .bind(&m.title)
    .bind(&m.based_on)
    .bind(&m.published_on)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds a template version with its items, if that version is not there.
/// Published versions never change.
pub async fn insert_template(tx: &mut Tx, t: &Template) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO checklist_templates (version, manual_issue, published_on, note) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO NOTHING",
    )
    .bind(t.version)
    .bind(&t.manual_issue)
    .bind(&t.published_on)
    .bind(&t.note)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    for (position, item) in t.items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO template_items \
             (version, key, position, clause, question, response_type, evidence, per_process, \
              required, required_item, required_answers) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(t.version)
        .bind(&item.key)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(&item.clause)
        .bind(&item.question)
        .bind(&item.response_type)
        .bind(i64::from(item.evidence))
        .bind(i64::from(item.per_process))
        .bind(&item.required)
        .bind(item.required_item.as_deref())
        .bind(item.required_answers.join(","))
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

/// Every manual issue.
pub async fn manual_issues(db: &Db) -> Result<Vec<ManualIssue>, DbError> {
    let rows =
        sqlx::query("SELECT id, title, based_on, published_on FROM manual_issues ORDER BY id")
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| {
            Ok(ManualIssue {
                id: r.try_get(0)?,
                title: r.try_get(1)?,
                based_on: r.try_get(2)?,
                published_on: r.try_get(3)?,
            })
        })
        .collect()
}

/// Every template version with its items.
pub async fn templates(db: &Db) -> Result<Vec<Template>, DbError> {
    let heads = sqlx::query(
        "SELECT version, manual_issue, published_on, note FROM checklist_templates ORDER BY version",
    )
    .fetch_all(db.pool())
    .await?;
    let items = sqlx::query(
        "SELECT version, key, clause, question, response_type, evidence, per_process, \
         required, required_item, required_answers \
         FROM template_items ORDER BY version, position",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for h in &heads {
        let version: i64 = h.try_get(0)?;
        let mut t = Template {
            version,
            manual_issue: h.try_get(1)?,
            published_on: h.try_get(2)?,
            note: h.try_get(3)?,
            items: Vec::new(),
        };
        for r in items
            .iter()
            .filter(|r| r.try_get::<i64, _>(0).ok() == Some(version))
        {
            t.items.push(TemplateItem {
                key: r.try_get(1)?,
                clause: r.try_get(2)?,
                question: r.try_get(3)?,
                response_type: r.try_get(4)?,
                evidence: r.try_get::<i64, _>(5)? != 0,
                per_process: r.try_get::<i64, _>(6)? != 0,
                required: r.try_get(7)?,
                required_item: r.try_get(8)?,
                required_answers: split_list(&r.try_get::<String, _>(9)?),
            });
        }
        out.push(t);
    }
    Ok(out)
}

/// An audit programme of a unit for a financial year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Programme {
    /// Its id.
    pub id: String,
    /// The unit.
    pub unit: String,
    /// The financial year, e.g. 2025-26.
    pub fy: String,
    /// Audit cycles in the year.
    pub cycles: i64,
    /// Processes and clauses covered.
    pub scope: Vec<String>,
    /// When it was approved.
    pub approved_on: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
}

/// Adds or replaces a programme.
pub async fn upsert_programme(tx: &mut Tx, p: &Programme) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO programmes (id, unit, fy, cycles, scope, approved_on, approved_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
         fy = excluded.fy, cycles = excluded.cycles, scope = excluded.scope, \
         approved_on = excluded.approved_on, approved_by = excluded.approved_by",
    )
    .bind(&p.id)
    .bind(&p.unit)
    .bind(&p.fy)
    .bind(p.cycles)
    .bind(p.scope.join(","))
    .bind(p.approved_on.as_deref())
    .bind(p.approved_by.as_deref())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds a programme unless its unit has one for that year (false then).
pub async fn insert_programme(tx: &mut Tx, p: &Programme) -> Result<bool, DbError> {
    let taken: Option<String> =
        sqlx::query_scalar("SELECT id FROM programmes WHERE unit = $1 AND fy = $2")
            .bind(&p.unit)
            .bind(&p.fy)
            .fetch_optional(&mut **tx)
            .await?;
    if taken.is_some() {
        return Ok(false);
    }
    upsert_programme(tx, p).await?;
    Ok(true)
}

/// The due-date rules units set, by unit (a unit not listed follows the
/// defaults).
pub async fn due_rules(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
) -> Result<BTreeMap<UnitCode, DueRules>, DbError> {
    let rows = sqlx::query(
        "SELECT unit, response_days_major, response_days_minor, action_days_major, \
         action_days_minor FROM due_rules ORDER BY unit",
    )
    .fetch_all(db)
    .await?;
    let day = |r: &sqlx::any::AnyRow, i: usize| -> Result<i32, DbError> {
        let n: i64 = r.try_get(i)?;
        i32::try_from(n).map_err(|_| DbError::Corrupt(format!("due_rules: {n} days")))
    };
    rows.iter()
        .map(|r| {
            let unit: String = r.try_get(0)?;
            let rules = DueRules {
                response_days_major: day(r, 1)?,
                response_days_minor: day(r, 2)?,
                action_days_major: day(r, 3)?,
                action_days_minor: day(r, 4)?,
            };
            Ok((parse_col("due_rules.unit", &unit)?, rules))
        })
        .collect()
}

/// Sets a unit's due-date rules.
pub async fn put_due_rules(tx: &mut Tx, unit: &str, r: &DueRules, by: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO due_rules (unit, response_days_major, response_days_minor, \
         action_days_major, action_days_minor, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (unit) DO UPDATE SET \
         response_days_major = excluded.response_days_major, \
         response_days_minor = excluded.response_days_minor, \
         action_days_major = excluded.action_days_major, \
         action_days_minor = excluded.action_days_minor, \
         updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(unit)
    .bind(i64::from(r.response_days_major))
    .bind(i64::from(r.response_days_minor))
    .bind(i64::from(r.action_days_major))
    .bind(i64::from(r.action_days_minor))
    .bind(by)
    .bind(super::now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How a programme's year is going: audits planned in it, started (their
/// document exists and has left `planned`) and reported (report issued or
/// closed), read from the planned audits and the audits' projection rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Adherence {
    /// Audits planned to start within the financial year.
    pub planned: i64,
    /// Of those, started.
    pub started: i64,
    /// Of those, reported.
    pub reported: i64,
}

/// The adherence of `unit`'s audits in the financial year `fy` (`2025-26`:
/// 1 April 2025 to 31 March 2026).
pub async fn adherence(db: &Db, unit: &str, fy: &str) -> Result<Adherence, DbError> {
    let Some(year) = fy.get(..4).and_then(|y| y.parse::<i32>().ok()) else {
        return Ok(Adherence::default());
    };
    let (from, to) = (format!("{year}-04-01"), format!("{}-03-31", year + 1));
    let row = sqlx::query(
        "SELECT COUNT(*), \
         COALESCE(SUM(CASE WHEN a.state IS NOT NULL AND a.state <> 'planned' THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN a.state IN ('report_issued', 'closed') THEN 1 ELSE 0 END), 0) \
         FROM planned_audits p LEFT JOIN audits a ON a.doc_id = p.id \
         WHERE p.unit = $1 AND p.planned_from >= $2 AND p.planned_from <= $3",
    )
    .bind(unit)
    .bind(from)
    .bind(to)
    .fetch_one(db.pool())
    .await?;
    Ok(Adherence {
        planned: row.try_get(0)?,
        started: row.try_get(1)?,
        reported: row.try_get(2)?,
    })
}

/// Approves a programme not approved yet (false if it was).
pub async fn approve_programme(tx: &mut Tx, id: &str, on: &str, by: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE programmes SET approved_on = $1, approved_by = $2 WHERE id = $3 AND approved_on IS NULL",
    )
    .bind(on)
    .bind(by)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The programmes of a unit.
pub async fn programmes_of_unit(db: &Db, unit: &str) -> Result<Vec<Programme>, DbError> {
    let rows = sqlx::query(
        "SELECT id, unit, fy, cycles, scope, approved_on, approved_by FROM programmes \
         WHERE unit = $1 ORDER BY fy",
    )
    .bind(unit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let scope: String = r.try_get(4)?;
            Ok(Programme {
                id: r.try_get(0)?,
                unit: r.try_get(1)?,
                fy: r.try_get(2)?,
                cycles: r.try_get(3)?,
                scope: split_list(&scope),
                approved_on: r.try_get(5)?,
                approved_by: r.try_get(6)?,
            })
        })
        .collect()
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An audit on the programme, with its team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedAudit {
    /// The audit document's id.
    pub id: String,
    /// The unit audited.
    pub unit: String,
    /// Its number, e.g. IA/DEMO-I/2025-26/003.
    pub number: String,
    /// Processes and clauses in scope.
    pub scope: Vec<String>,
    /// First planned day.
    pub planned_from: String,
    /// Last planned day.
    pub planned_to: String,
    /// The checklist template version it uses.
    pub template_version: i64,
    /// Whether its document exists on the server (the lead has begun it).
    pub begun: bool,
    /// The team: (user, lead or member).
    pub team: Vec<TeamMember>,
}

/// One member of an audit team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TeamMember {
    /// The auditor.
    pub username: String,
    /// lead or member.
    pub role: String,
}

/// Adds a planned audit; false if its id or number is taken.
pub async fn insert_planned_audit(
    tx: &mut Tx,
    a: &PlannedAudit,
    by: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO planned_audits \
         (id, unit, number, scope, planned_from, planned_to, template_version, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(&a.id)
    .bind(&a.unit)
    .bind(&a.number)
    .bind(a.scope.join(","))
    .bind(&a.planned_from)
    .bind(&a.planned_to)
    .bind(a.template_version)
    .bind(by)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    set_team(tx, &a.id, &a.team).await?;
    Ok(true)
}

/// Replaces an audit's team.
pub async fn set_team(tx: &mut Tx, audit: &str, team: &[TeamMember]) -> Result<(), DbError> {
    sqlx::query("DELETE FROM audit_team WHERE audit_id = $1")
        .bind(audit)
        .execute(&mut **tx)
        .await?;
    for m in team {
        sqlx::query("INSERT INTO audit_team (audit_id, username, team_role) VALUES ($1, $2, $3)")
            .bind(audit)
            .bind(&m.username)
            .bind(&m.role)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn teams(db: &Db, audits: &mut [PlannedAudit]) -> Result<(), DbError> {
    for a in audits.iter_mut() {
        let rows = sqlx::query(
            "SELECT username, team_role FROM audit_team WHERE audit_id = $1 \
             ORDER BY CASE team_role WHEN 'lead' THEN 0 ELSE 1 END, username",
        )
        .bind(&a.id)
        .fetch_all(db.pool())
        .await?;
        a.team = rows
            .iter()
            .map(|r| {
                Ok(TeamMember {
                    username: r.try_get(0)?,
                    role: r.try_get(1)?,
                })
            })
            .collect::<Result<_, DbError>>()?;
    }
    Ok(())
}

const PLANNED_COLUMNS: &str = "SELECT id, unit, number, scope, planned_from, planned_to, \
     template_version, (SELECT COUNT(*) FROM documents d WHERE d.id = planned_audits.id) \
     FROM planned_audits";

fn planned_of(r: &sqlx::any::AnyRow) -> Result<PlannedAudit, DbError> {
    let scope: String = r.try_get(3)?;
    Ok(PlannedAudit {
        id: r.try_get(0)?,
        unit: r.try_get(1)?,
        number: r.try_get(2)?,
        scope: split_list(&scope),
        planned_from: r.try_get(4)?,
        planned_to: r.try_get(5)?,
        template_version: r.try_get(6)?,
        begun: r.try_get::<i64, _>(7)? > 0,
        team: Vec::new(),
    })
}

/// The planned audits of a unit, with their teams.
pub async fn planned_audits_of_unit(db: &Db, unit: &str) -> Result<Vec<PlannedAudit>, DbError> {
    let sql = format!("{PLANNED_COLUMNS} WHERE unit = $1 ORDER BY number");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(unit)
        .fetch_all(db.pool())
        .await?;
    let mut out = rows.iter().map(planned_of).collect::<Result<Vec<_>, _>>()?;
    teams(db, &mut out).await?;
    Ok(out)
}

/// One planned audit with its team.
pub async fn planned_audit(db: &Db, id: &str) -> Result<Option<PlannedAudit>, DbError> {
    let sql = format!("{PLANNED_COLUMNS} WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut out = [planned_of(&row)?];
    teams(db, &mut out).await?;
    let [a] = out;
    Ok(Some(a))
}

/// The audits on whose team a user is, with the user's place.
pub async fn teams_of_user(
    db: &Db,
    username: &str,
) -> Result<Vec<(DocumentId, TeamRole)>, DbError> {
    let rows = sqlx::query("SELECT audit_id, team_role FROM audit_team WHERE username = $1")
        .bind(username)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                parse_col("audit id", &r.try_get::<String, _>(0)?)?,
                parse_col("team role", &r.try_get::<String, _>(1)?)?,
            ))
        })
        .collect()
}

/// The planned audits on whose team a user is, as sync-core plans them:
/// unit, number, pinned template version and lead, which a new audit
/// document must repeat. An audit planned without a lead has no plan here
/// (no one may create it).
pub async fn plans_of_user(
    db: &Db,
    username: &str,
) -> Result<Vec<(DocumentId, permissions::PlannedAudit)>, DbError> {
    let rows = sqlx::query(
        "SELECT p.id, p.unit, p.number, p.template_version, l.username, p.scope \
         FROM audit_team t JOIN planned_audits p ON p.id = t.audit_id \
         JOIN audit_team l ON l.audit_id = p.id AND l.team_role = 'lead' \
         WHERE t.username = $1",
    )
    .bind(username)
    .fetch_all(db.pool())
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let templates = templates(db).await?;
    let mut processes: BTreeMap<String, Vec<Process>> = BTreeMap::new();
    let mut out = Vec::new();
    for r in &rows {
        let version: i64 = r.try_get(3)?;
        let unit: String = r.try_get(1)?;
        let scope = split_list(&r.try_get::<String, _>(5)?);
        if !processes.contains_key(&unit) {
            processes.insert(unit.clone(), processes_of_unit(db, &unit).await?);
        }
        let of_unit = processes.get(&unit).map(Vec::as_slice).unwrap_or_default();
        let checklist = checklist_of(&templates, version, &scope, of_unit)?;
        out.push((
            parse_col("audit id", &r.try_get::<String, _>(0)?)?,
            permissions::PlannedAudit {
                unit: parse_col("unit", &unit)?,
                number: r.try_get(2)?,
                template_version: u64::try_from(version).unwrap_or(0),
                lead: parse_col("lead", &r.try_get::<String, _>(4)?)?,
                checklist: std::sync::Arc::new(checklist),
            },
        ));
    }
    Ok(out)
}

/// The checklist an audit of `scope` on template `version` answers: the
/// template's items resolved for the scope and the unit's processes. A
/// version the server does not have gives an empty checklist (an audit may
/// not pin one: the admin API refuses it).
pub fn checklist_of(
    templates: &[Template],
    version: i64,
    scope: &[String],
    processes: &[Process],
) -> Result<Checklist, DbError> {
    let Some(t) = templates.iter().find(|t| t.version == version) else {
        return Ok(Checklist::default());
    };
    let items = t
        .items
        .iter()
        .map(|i| {
            i.rule().ok_or_else(|| {
                DbError::Corrupt(format!(
                    "checklist version {version} item {} has rules that do not read",
                    i.key
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Checklist::resolve(
        u64::try_from(version).unwrap_or(0),
        &items,
        scope,
        |p| {
            processes
                .iter()
                .find(|x| x.code == p.as_str())
                .map(|x| x.clause.clone())
        },
    ))
}

/// A person as devices show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Login name.
    pub username: String,
    /// Name.
    pub display_name: String,
    /// Post.
    pub designation: String,
}

/// The people holding any role in a unit.
pub async fn people_of_unit(db: &Db, unit: &str) -> Result<Vec<Person>, DbError> {
    let rows = sqlx::query(
        "SELECT DISTINCT u.username, u.display_name, u.designation FROM users u \
         JOIN role_assignments r ON r.username = u.username WHERE r.unit = $1 ORDER BY u.username",
    )
    .bind(unit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Person {
                username: r.try_get(0)?,
                display_name: r.try_get(1)?,
                designation: r.try_get(2)?,
            })
        })
        .collect()
}

/// Whether a user exists (and is a valid name).
pub async fn user_exists(db: &Db, username: &UserId) -> Result<bool, DbError> {
    let row = sqlx::query("SELECT 1 FROM users WHERE username = $1")
        .bind(username.as_str())
        .fetch_optional(db.pool())
        .await?;
    Ok(row.is_some())
}
