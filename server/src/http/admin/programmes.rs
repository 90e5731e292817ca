//! Audit programmes (SQM 4.3): the plan of a unit's audits for a financial
//! year, its cycles and the processes and clauses it covers, made and then
//! approved by a nodal officer of the unit (or above). Devices receive the
//! programmes in the reference bundle.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sync_core::text;

use super::{STEWARDS, Steward, unit_of};
use crate::auth::Caller;
use crate::db::accounts::fill_random;
use crate::db::reference::{self, Adherence, Programme};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;

/// The most audit cycles in a year.
pub const MAX_CYCLES: i64 = 4;
/// The most processes and clauses a programme covers.
pub const MAX_SCOPE: usize = 100;

/// A programme with how its year is going.
#[derive(Debug, Serialize)]
pub struct ProgrammeStatus {
    #[serde(flatten)]
    programme: Programme,
    adherence: Adherence,
}

/// `GET /api/v1/admin/units/{unit}/programmes`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<axum::Json<Vec<ProgrammeStatus>>, ApiError> {
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "see audit programmes")?;
    let mut out = Vec::new();
    for programme in reference::programmes_of_unit(&state.db, unit.as_str()).await? {
        let adherence = reference::adherence(&state.db, unit.as_str(), &programme.fy).await?;
        out.push(ProgrammeStatus {
            programme,
            adherence,
        });
    }
    Ok(axum::Json(out))
}

/// `POST /api/v1/admin/units/{unit}/programmes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProgramme {
    fy: String,
    cycles: i64,
    scope: Vec<String>,
}

/// Whether `fy` names a financial year as `2025-26`: a year, a hyphen and
/// the last two digits of the next year.
fn is_financial_year(fy: &str) -> bool {
    let Some((first, next)) = fy.split_once('-') else {
        return false;
    };
    let (Ok(year), Ok(end)) = (first.parse::<u32>(), next.parse::<u32>()) else {
        return false;
    };
    first.len() == 4 && next.len() == 2 && (2000..2100).contains(&year) && end == (year + 1) % 100
}

/// Makes a programme, not yet approved.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    ApiJson(body): ApiJson<NewProgramme>,
) -> Result<(StatusCode, axum::Json<Programme>), ApiError> {
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "make audit programmes")?;
    if !is_financial_year(&body.fy) {
        return Err(ApiError::Unprocessable(
            "fy: give the financial year as 2025-26.".into(),
        ));
    }
    if !(1..=MAX_CYCLES).contains(&body.cycles) {
        return Err(ApiError::Unprocessable(format!(
            "cycles: give 1 to {MAX_CYCLES} audit cycles in the year."
        )));
    }
    let bad_item = |s: &String| {
        s.is_empty() || s.len() > 16 || s.contains(',') || text::forbidden(s, false).is_some()
    };
    if body.scope.is_empty() || body.scope.len() > MAX_SCOPE || body.scope.iter().any(bad_item) {
        return Err(ApiError::Unprocessable(format!(
            "scope: list 1 to {MAX_SCOPE} process codes or clauses, e.g. [\"P01\", \"3.4\"]."
        )));
    }
    let mut random = [0u8; 8];
    fill_random(&mut random);
    let id: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let programme = Programme {
        id: format!("{}-{}-{id}", unit.as_str().to_lowercase(), body.fy),
        unit: unit.to_string(),
        fy: body.fy,
        cycles: body.cycles,
        scope: body.scope,
        approved_on: None,
        approved_by: None,
    };
    let mut tx = state.db.begin().await?;
    if !reference::insert_programme(&mut tx, &programme).await? {
        return Err(ApiError::Conflict(format!(
            "{} has a programme for {} already.",
            programme.unit, programme.fy
        )));
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, programme = %programme.id, "audit programme made");
    Ok((StatusCode::CREATED, axum::Json(programme)))
}

/// `POST /api/v1/admin/units/{unit}/programmes/{id}/approve`: approves it
/// today, once.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path((unit, id)): Path<(String, String)>,
) -> Result<axum::Json<Programme>, ApiError> {
    let unit = unit_of(&unit)?;
    let steward = Steward::of(&state, &caller).await?;
    steward.require(&unit, STEWARDS, "approve audit programmes")?;
    let missing = || ApiError::NotFound(format!("{unit} has no programme {id}."));
    let found = reference::programmes_of_unit(&state.db, unit.as_str())
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(missing)?;
    if let Some(on) = &found.approved_on {
        return Err(ApiError::Conflict(format!(
            "This programme was approved on {on} already."
        )));
    }
    let today = steward.today.to_string();
    let mut tx = state.db.begin().await?;
    if !reference::approve_programme(&mut tx, &found.id, &today, &caller.username).await? {
        return Err(ApiError::Conflict(
            "This programme was approved already.".into(),
        ));
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, programme = %found.id, "audit programme approved");
    Ok(axum::Json(Programme {
        approved_on: Some(today),
        approved_by: Some(caller.username),
        ..found
    }))
}

#[cfg(test)]
mod tests {
    use super::is_financial_year;

    #[test]
    fn a_financial_year_is_a_year_and_the_next_years_last_two_digits() {
        for (fy, ok) in [
            ("2025-26", true),
            ("2099-00", true),
            ("2025-27", false),
            ("2025-2026", false),
            ("25-26", false),
            ("2025/26", false),
            ("", false),
            ("abcd-ef", false),
        ] {
            assert_eq!(is_financial_year(fy), ok, "{fy}");
        }
    }
}
