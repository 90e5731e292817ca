//! Planned audits of a unit and their teams. The team decides who may write
//! the audit document (its lead's device creates it under the planned id).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use sync_core::date::Date;
use sync_core::ids::{DocumentId, UnitCode, UserId};
use sync_core::permissions::Role;

use super::{STEWARDS, Steward, unit_of};
use crate::access;
use crate::auth::Caller;
use crate::db::accounts::fill_random;
use crate::db::reference::{self, PlannedAudit, TeamMember};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, parse_field};

/// The largest audit team.
pub const MAX_TEAM: usize = 12;

/// `GET /api/v1/admin/units/{unit}/audits`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<axum::Json<Vec<PlannedAudit>>, ApiError> {
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "see planned audits")?;
    Ok(axum::Json(
        reference::planned_audits_of_unit(&state.db, unit.as_str()).await?,
    ))
}

/// A team: its lead and members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    lead: String,
    #[serde(default)]
    members: Vec<String>,
}

/// Checks a team: real users holding the auditor role in the unit, the lead
/// not repeated, at most [`MAX_TEAM`], and none auditing a process they
/// own or deputise for (a process of the unit whose code or clause is in
/// the audit's `scope`): an auditor is independent of what they audit.
async fn team_of(
    state: &AppState,
    unit: &UnitCode,
    team: &Team,
    scope: &[String],
    on: Date,
) -> Result<Vec<TeamMember>, ApiError> {
    let mut out = vec![TeamMember {
        username: team.lead.clone(),
        role: "lead".into(),
    }];
    for m in &team.members {
        if out.iter().any(|t| &t.username == m) {
            return Err(ApiError::Unprocessable(format!(
                "members: {m} is named twice in the team."
            )));
        }
        out.push(TeamMember {
            username: m.clone(),
            role: "member".into(),
        });
    }
    if out.len() > MAX_TEAM {
        return Err(ApiError::Unprocessable(format!(
            "members: a team has at most {MAX_TEAM} auditors."
        )));
    }
    let units = reference::units(&state.db).await?;
    for m in &out {
        let user: UserId = parse_field("team", &m.username)?;
        let grants = access::grants_of(&state.db, user.as_str(), &units).await?;
        if !access::holds(&grants, unit, &[Role::Auditor], on) {
            return Err(ApiError::Unprocessable(format!(
                "team: {user} does not hold the auditor role in {unit} on {}.",
                on.display()
            )));
        }
    }
    let processes = reference::processes_of_unit(&state.db, unit.as_str()).await?;
    for m in &out {
        let own = processes.iter().find(|p| {
            (p.owner == m.username || p.deputy.as_deref() == Some(m.username.as_str()))
                && scope.iter().any(|s| *s == p.code || *s == p.clause)
        });
        if let Some(p) = own {
            return Err(ApiError::Unprocessable(format!(
                "team: {} owns or deputises for process {} ({}), which this audit covers; \
                 an auditor may not audit their own process.",
                m.username, p.code, p.name
            )));
        }
    }
    Ok(out)
}

/// The financial year (April to March) a day falls in, as `2025-26`.
pub fn financial_year(day: Date) -> String {
    let text = day.to_string();
    let (year, month) = (
        text[..4].parse::<u32>().unwrap_or(0),
        text[5..7].parse::<u32>().unwrap_or(0),
    );
    let first = if month >= 4 { year } else { year - 1 };
    format!("{first}-{:02}", (first + 1) % 100)
}

/// A planned audit belongs to its unit's approved programme for the year it
/// starts in (SQM 4.3), and audits only what that programme covers (its
/// processes, their clauses, and the clauses it names).
async fn in_programme(
    state: &AppState,
    unit: &UnitCode,
    from: Date,
    scope: &[String],
) -> Result<(), ApiError> {
    let fy = financial_year(from);
    let programme = reference::programmes_of_unit(&state.db, unit.as_str())
        .await?
        .into_iter()
        .find(|p| p.fy == fy && p.approved_on.is_some())
        .ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "planned_from: {unit} has no approved audit programme for {fy}; a nodal officer makes and approves it first."
            ))
        })?;
    // A process's clause counts as covered when the process is.
    let processes = reference::processes_of_unit(&state.db, unit.as_str()).await?;
    let covered = |s: &String| {
        programme.scope.contains(s)
            || processes
                .iter()
                .any(|p| &p.clause == s && programme.scope.contains(&p.code))
    };
    let outside: Vec<&str> = scope
        .iter()
        .filter(|s| !covered(s))
        .map(String::as_str)
        .collect();
    if !outside.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "scope: {} not in the {fy} programme, which covers {}.",
            outside.join(", "),
            programme.scope.join(", ")
        )));
    }
    Ok(())
}

/// `POST /api/v1/admin/units/{unit}/audits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAudit {
    number: String,
    scope: Vec<String>,
    planned_from: String,
    planned_to: String,
    template_version: i64,
    lead: String,
    #[serde(default)]
    members: Vec<String>,
}

/// Puts an audit on the programme with its team; returns its document id.
pub async fn plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    ApiJson(body): ApiJson<NewAudit>,
) -> Result<(StatusCode, axum::Json<PlannedAudit>), ApiError> {
    let unit = unit_of(&unit)?;
    let steward = Steward::of(&state, &caller).await?;
    steward.require(&unit, STEWARDS, "plan audits")?;
    let number = body.number.trim().to_owned();
    if number.is_empty() || number.chars().count() > 60 {
        return Err(ApiError::Unprocessable(
            "number: give the audit number, e.g. IA/DEMO-I/2025-26/004.".into(),
        ));
    }
    if body.scope.is_empty()
        || body.scope.len() > 100
        || body
            .scope
            .iter()
            .any(|s| s.is_empty() || s.len() > 16 || s.contains(','))
    {
        return Err(ApiError::Unprocessable(
            "scope: list 1 to 100 process codes or clauses, e.g. [\"P03\", \"3.4\"].".into(),
        ));
    }
    let from: Date = parse_field("planned_from", &body.planned_from)?;
    let to: Date = parse_field("planned_to", &body.planned_to)?;
    if to < from {
        return Err(ApiError::Unprocessable(
            "planned_to: the last day cannot come before planned_from.".into(),
        ));
    }
    if !reference::templates(&state.db)
        .await?
        .iter()
        .any(|t| t.version == body.template_version)
    {
        return Err(ApiError::Unprocessable(format!(
            "template_version: there is no checklist template version {}.",
            body.template_version
        )));
    }
    in_programme(&state, &unit, from, &body.scope).await?;
    let team = Team {
        lead: body.lead,
        members: body.members,
    };
    let team = team_of(&state, &unit, &team, &body.scope, steward.today.max(from)).await?;
    let mut random = [0u8; 10];
    fill_random(&mut random);
    let audit = PlannedAudit {
        id: DocumentId::new_v7(crate::db::now_ms(), random).to_string(),
        unit: unit.to_string(),
        number,
        scope: body.scope,
        planned_from: from.to_string(),
        planned_to: to.to_string(),
        template_version: body.template_version,
        begun: false,
        team,
    };
    let mut tx = state.db.begin().await?;
    if !reference::insert_planned_audit(&mut tx, &audit, &caller.username).await? {
        return Err(ApiError::Conflict(format!(
            "An audit numbered {} is already planned.",
            audit.number
        )));
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, audit = %audit.id, number = %audit.number, "audit planned");
    state.sync.refresh_all();
    Ok((StatusCode::CREATED, axum::Json(audit)))
}

/// `PUT /api/v1/admin/units/{unit}/audits/{id}/team`: replaces the team.
pub async fn set_team(
    State(state): State<AppState>,
    caller: Caller,
    Path((unit, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Team>,
) -> Result<axum::Json<PlannedAudit>, ApiError> {
    let unit = unit_of(&unit)?;
    let steward = Steward::of(&state, &caller).await?;
    steward.require(&unit, STEWARDS, "change audit teams")?;
    let found = reference::planned_audit(&state.db, &id).await?;
    let Some(mut audit) = found.filter(|a| a.unit == unit.as_str()) else {
        return Err(ApiError::NotFound(format!(
            "There is no planned audit {id} in {unit}."
        )));
    };
    audit.team = team_of(&state, &unit, &body, &audit.scope, steward.today).await?;
    let mut tx = state.db.begin().await?;
    reference::set_team(&mut tx, &audit.id, &audit.team).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, audit = %audit.id, "audit team changed");
    state.sync.refresh_all();
    Ok(axum::Json(audit))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_financial_year_runs_from_april_to_march() {
        for (day, fy) in [
            ("2026-04-01", "2026-27"),
            ("2026-03-31", "2025-26"),
            ("2026-02-10", "2025-26"),
            ("2099-12-31", "2099-00"),
        ] {
            let day = day.parse().expect("a date");
            assert_eq!(super::financial_year(day), fy);
        }
    }
}
