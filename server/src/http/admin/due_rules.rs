//! A unit's due-date rules (DESIGN §3): days from raising an NC to its
//! response and to its actions being due, by class. The unit's nodal
//! officer sets them; until then the defaults apply. The NCs' rows are
//! brought up to the new rules in the same transaction, and tablets receive
//! them with the author's reference data.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use sync_core::ids::UnitCode;
use sync_core::nc::DueRules;

use super::{STEWARDS, Steward, unit_of};
use crate::auth::Caller;
use crate::db::{documents, reference};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::projection::{Parts, project};

/// The most days a rule may give.
pub const MAX_DAYS: i32 = 365;

/// `GET`/`PUT /api/v1/admin/units/{unit}/due-rules`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    response_days_major: i32,
    response_days_minor: i32,
    action_days_major: i32,
    action_days_minor: i32,
}

/// A unit's rules as the API answers them.
#[derive(Debug, Serialize)]
pub struct RulesView {
    unit: String,
    #[serde(flatten)]
    rules: RulesBody,
    /// False while the unit follows the defaults.
    set: bool,
}

fn view(unit: &UnitCode, r: DueRules, set: bool) -> RulesView {
    RulesView {
        unit: unit.to_string(),
        rules: RulesBody {
            response_days_major: r.response_days_major,
            response_days_minor: r.response_days_minor,
            action_days_major: r.action_days_major,
            action_days_minor: r.action_days_minor,
        },
        set,
    }
}

/// The unit's rules.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<axum::Json<RulesView>, ApiError> {
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "see due-date rules")?;
    let all = reference::due_rules(state.db.pool()).await?;
    let set = all.get(&unit).copied();
    Ok(axum::Json(view(
        &unit,
        set.unwrap_or_default(),
        set.is_some(),
    )))
}

/// Sets the unit's rules and brings its NCs' rows up to them.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    ApiJson(body): ApiJson<RulesBody>,
) -> Result<axum::Json<RulesView>, ApiError> {
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "set due-date rules")?;
    let days = [
        ("response_days_major", body.response_days_major),
        ("response_days_minor", body.response_days_minor),
        ("action_days_major", body.action_days_major),
        ("action_days_minor", body.action_days_minor),
    ];
    if let Some((name, _)) = days.iter().find(|(_, d)| !(1..=MAX_DAYS).contains(d)) {
        return Err(ApiError::Unprocessable(format!(
            "{name}: give 1 to {MAX_DAYS} days."
        )));
    }
    if body.response_days_major > body.action_days_major
        || body.response_days_minor > body.action_days_minor
    {
        return Err(ApiError::Unprocessable(
            "The response cannot be due after the actions: give at least as many days for the actions.".into(),
        ));
    }
    let rules = DueRules {
        response_days_major: body.response_days_major,
        response_days_minor: body.response_days_minor,
        action_days_major: body.action_days_major,
        action_days_minor: body.action_days_minor,
    };
    // The unit's NCs as stored now, projected under the new rules.
    let mut rows = Vec::new();
    for id in documents::ncs_of_unit(&state.db, unit.as_str()).await? {
        if let Some(doc) = documents::load(&state.db, &id).await? {
            let p = project(&doc, &rules)
                .map_err(|e| ApiError::Internal(format!("NC {id} cannot be projected: {e}")))?;
            rows.push((id, p));
        }
    }
    let mut tx = state.db.begin().await?;
    reference::put_due_rules(&mut tx, unit.as_str(), &rules, &caller.username).await?;
    let row_only = Parts {
        row: true,
        entries: false,
        evidence: false,
    };
    for (id, p) in &rows {
        documents::write_projection(&mut tx, id, p, row_only).await?;
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, %unit, ncs = rows.len(), "due-date rules set");
    state.sync.reload_due_rules().await;
    state.sync.refresh_all();
    Ok(axum::Json(view(&unit, rules, true)))
}
