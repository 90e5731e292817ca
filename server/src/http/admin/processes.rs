//! The processes of a unit and their owners.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use sync_core::ids::{ClauseKey, ProcessCode, UserId};

use super::{STEWARDS, Steward, unit_of};
use crate::auth::Caller;
use crate::db::reference::{self, Process};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, parse_field};

/// `GET /api/v1/admin/units/{unit}/processes`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<axum::Json<Vec<Process>>, ApiError> {
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "see processes")?;
    Ok(axum::Json(
        reference::processes_of_unit(&state.db, unit.as_str()).await?,
    ))
}

/// `PUT /api/v1/admin/units/{unit}/processes/{code}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessBody {
    clause: String,
    name: String,
    #[serde(default)]
    standard: String,
    owner: String,
    #[serde(default)]
    deputy: Option<String>,
}

/// Adds (201) or replaces (200) a process with its owner and deputy.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((unit, code)): Path<(String, String)>,
    ApiJson(body): ApiJson<ProcessBody>,
) -> Result<(StatusCode, axum::Json<Process>), ApiError> {
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "change processes")?;
    let code: ProcessCode = parse_field("code", &code)?;
    let clause: ClauseKey = parse_field("clause", &body.clause)?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::Unprocessable(
            "name: give the process a name of 1 to 200 characters.".into(),
        ));
    }
    if body.standard.chars().count() > 100 {
        return Err(ApiError::Unprocessable(
            "standard: at most 100 characters.".into(),
        ));
    }
    let owner: UserId = parse_field("owner", &body.owner)?;
    let deputy: Option<UserId> = body
        .deputy
        .as_deref()
        .map(|d| parse_field("deputy", d))
        .transpose()?;
    for (field, user) in
        std::iter::once(("owner", &owner)).chain(deputy.iter().map(|d| ("deputy", d)))
    {
        if !reference::user_exists(&state.db, user).await? {
            return Err(ApiError::Unprocessable(format!(
                "{field}: there is no account named {user}."
            )));
        }
    }
    let process = Process {
        unit: unit.to_string(),
        code: code.to_string(),
        clause: clause.to_string(),
        name,
        standard: body.standard.trim().to_owned(),
        owner: owner.to_string(),
        deputy: deputy.map(|d| d.to_string()),
    };
    let existed = reference::processes_of_unit(&state.db, unit.as_str())
        .await?
        .iter()
        .any(|p| p.code == process.code);
    let mut tx = state.db.begin().await?;
    reference::upsert_process(&mut tx, &process).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, %unit, process = %code, "process saved");
    state.sync.refresh_all();
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(process)))
}
