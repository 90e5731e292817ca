//! Role assignments of a unit. Admins grant any role; nodal officers grant
//! the auditor and process owner roles, and only to accounts they may
//! manage ([`super::manage`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sync_core::date::Date;
use sync_core::ids::UnitCode;
use sync_core::permissions::Role;

use super::{STEWARDS, Steward, granters_of, manage, unit_of};
use crate::auth::Caller;
use crate::db::accounts::{self, Assignment, random_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, parse_field};

/// A role assignment as the API shows it.
#[derive(Debug, Serialize)]
pub struct AssignmentView {
    id: String,
    username: String,
    unit: String,
    role: String,
    valid_from: String,
    valid_until: Option<String>,
    office_order: String,
}

impl From<Assignment> for AssignmentView {
    fn from(a: Assignment) -> AssignmentView {
        AssignmentView {
            id: a.id,
            username: a.username.to_string(),
            unit: a.unit.to_string(),
            role: a.role.to_string(),
            valid_from: a.valid_from.to_string(),
            valid_until: a.valid_until.map(|d| d.to_string()),
            office_order: a.office_order,
        }
    }
}

/// `GET /api/v1/admin/units/{unit}/roles`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<axum::Json<Vec<AssignmentView>>, ApiError> {
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "see role assignments")?;
    let list = accounts::assignments_in_unit(&state.db, unit.as_str()).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

/// Which roles the caller may give or end in a unit.
fn may_grant(steward: &Steward, unit: &UnitCode, role: Role) -> Result<(), ApiError> {
    steward.require(
        unit,
        granters_of(role),
        &format!("give or end the {role} role"),
    )
}

/// `POST /api/v1/admin/units/{unit}/roles`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAssignment {
    username: String,
    role: String,
    valid_from: String,
    #[serde(default)]
    valid_until: Option<String>,
    office_order: String,
}

/// Gives a user a role in the unit, by an office order.
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    ApiJson(body): ApiJson<NewAssignment>,
) -> Result<(StatusCode, axum::Json<AssignmentView>), ApiError> {
    let unit = unit_of(&unit)?;
    let role: Role = parse_field("role", &body.role)?;
    let steward = Steward::of(&state, &caller).await?;
    may_grant(&steward, &unit, role)?;
    let username = parse_field("username", &body.username)?;
    if !crate::db::reference::user_exists(&state.db, &username).await? {
        return Err(ApiError::Unprocessable(format!(
            "username: there is no account named {username}."
        )));
    }
    // A role makes its giver a manager of the account (if it was the only
    // obstacle): never give one to an account the caller may not manage.
    manage::require_found(&state, &steward, username.as_str()).await?;
    let valid_from: Date = parse_field("valid_from", &body.valid_from)?;
    let valid_until: Option<Date> = body
        .valid_until
        .as_deref()
        .map(|d| parse_field("valid_until", d))
        .transpose()?;
    if valid_until.is_some_and(|u| u < valid_from) {
        return Err(ApiError::Unprocessable(
            "valid_until: the last day cannot come before valid_from.".into(),
        ));
    }
    let office_order = body.office_order.trim().to_owned();
    if office_order.is_empty() || office_order.chars().count() > 200 {
        return Err(ApiError::Unprocessable(
            "office_order: give the office order's number and date (1 to 200 characters).".into(),
        ));
    }
    let assignment = Assignment {
        id: random_id(),
        username,
        unit,
        role,
        valid_from,
        valid_until,
        office_order,
    };
    let mut tx = state.db.begin().await?;
    accounts::insert_assignment(&mut tx, &assignment, &caller.username).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, user = %assignment.username, unit = %assignment.unit, role = %role, "role granted");
    state.sync.refresh_all();
    Ok((StatusCode::CREATED, axum::Json(assignment.into())))
}

/// Ends a role assignment: from today it is no longer in force (it stays on
/// record). 409 if it has already ended.
pub async fn end(
    State(state): State<AppState>,
    caller: Caller,
    Path((unit, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let unit = unit_of(&unit)?;
    let steward = Steward::of(&state, &caller).await?;
    steward.require(&unit, STEWARDS, "end role assignments")?;
    let found = accounts::find_assignment(&state.db, &id).await?;
    let Some(found) = found.filter(|a| a.unit == unit) else {
        return Err(ApiError::NotFound(format!(
            "There is no role assignment {id} in {unit}."
        )));
    };
    may_grant(&steward, &unit, found.role)?;
    let yesterday = steward.today.add_days(-1);
    if let Some(until) = found.valid_until.filter(|u| *u <= yesterday) {
        return Err(ApiError::Conflict(format!(
            "This role assignment already ended on {}.",
            until.display()
        )));
    }
    // One that has not begun is cancelled: its last day falls before its first,
    // so it is never in force, and it stays on record.
    let last_day = if found.valid_from > yesterday {
        found.valid_from.add_days(-1)
    } else {
        yesterday
    };
    accounts::end_assignment(&state.db, &id, last_day).await?;
    tracing::info!(by = %caller.username, user = %found.username, %unit, role = %found.role, "role ended");
    state.sync.refresh_all();
    Ok(StatusCode::NO_CONTENT)
}
