//! Checklist versions and the amendments they implement (issue 15):
//! publishing a version is an admin's (`POST /api/v1/admin/templates`, the
//! file's JSON as the body, as `sqm template publish FILE` reads it); each
//! unit's own nodal officer acknowledges an amendment once; stewards see
//! which of their units have not yet.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use sync_core::date::Date;
use sync_core::permissions::{Role, RoleGrant};

use super::{STEWARDS, Steward, unit_of};
use crate::auth::Caller;
use crate::db::accounts;
use crate::db::reference::{self, Amendment};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::templates::{self, PublishError};

/// What a publication made.
#[derive(Debug, Serialize)]
pub struct Published {
    version: i64,
    items: usize,
    amendment: Option<String>,
}

/// `POST /api/v1/admin/templates`: publishes a checklist version; 422 with
/// every mistake by line, 409 if the version or amendment exists.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<Published>), ApiError> {
    let steward = Steward::of(&state, &caller).await?;
    if !steward.holds_anywhere(&[Role::Admin]) {
        return Err(ApiError::Forbidden(
            "Only an administrator may publish a checklist version.".into(),
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("The template must be UTF-8 JSON text.".into()))?;
    let parsed = templates::publish(&state.db, text, &caller.username)
        .await
        .map_err(|e| match e {
            PublishError::Invalid(mistakes) => ApiError::Unprocessable(format!(
                "The template has {} mistake(s):\n{}",
                mistakes.len(),
                mistakes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
            PublishError::Exists(v) => ApiError::Conflict(format!(
                "Checklist version {v} is published already; a published version never changes. Give the new one the next number."
            )),
            PublishError::AmendmentExists(id) => ApiError::Conflict(format!(
                "Amendment {id} is recorded already, with the version that implements it."
            )),
            PublishError::Db(e) => e.into(),
        })?;
    tracing::info!(
        by = %caller.username,
        version = parsed.template.version,
        "checklist version published"
    );
    // Devices receive it with the reference data; audits already planned
    // keep the version they pinned.
    Ok((
        StatusCode::CREATED,
        axum::Json(Published {
            version: parsed.template.version,
            items: parsed.template.items.len(),
            amendment: parsed.amendment.map(|a| a.id),
        }),
    ))
}

/// An amendment and, among the units the caller stewards, those that have
/// acknowledged it and those that have not yet.
#[derive(Debug, Serialize)]
pub struct AmendmentStatus {
    #[serde(flatten)]
    amendment: Amendment,
    acknowledged: Vec<reference::AmendmentAck>,
    pending: Vec<String>,
}

/// The amendments with each steward unit's acknowledgement, for a nodal
/// officer or admin (their units and the units below them).
pub async fn status_for(
    state: &AppState,
    grants: &[RoleGrant],
    today: Date,
) -> Result<Vec<AmendmentStatus>, ApiError> {
    // Grants of nodal officers and admins already reach the units below theirs.
    let mine: Vec<String> = grants
        .iter()
        .filter(|g| STEWARDS.contains(&g.role) && g.in_force(today))
        .map(|g| g.unit.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let acks = reference::amendment_acks(&state.db).await?;
    Ok(reference::amendments(&state.db)
        .await?
        .into_iter()
        .map(|amendment| {
            let acknowledged: Vec<_> = acks
                .iter()
                .filter(|a| a.amendment == amendment.id && mine.contains(&a.unit))
                .cloned()
                .collect();
            let pending = mine
                .iter()
                .filter(|u| !acknowledged.iter().any(|a| &&a.unit == u))
                .cloned()
                .collect();
            AmendmentStatus {
                amendment,
                acknowledged,
                pending,
            }
        })
        .collect())
}

/// `GET /api/v1/admin/amendments`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<AmendmentStatus>>, ApiError> {
    let steward = Steward::of(&state, &caller).await?;
    if !steward.holds_anywhere(STEWARDS) {
        return Err(ApiError::Forbidden(
            "Only nodal officers and administrators follow amendments.".into(),
        ));
    }
    Ok(axum::Json(
        status_for(&state, steward.grants(), steward.today).await?,
    ))
}

/// `POST /api/v1/admin/units/{unit}/amendments/{id}/ack`: the unit's own
/// nodal officer acknowledges that the unit received and applies it.
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path((unit, id)): Path<(String, String)>,
) -> Result<(StatusCode, axum::Json<reference::AmendmentAck>), ApiError> {
    let unit = unit_of(&unit)?;
    let today = crate::access::today();
    let own = accounts::assignments_of_user(&state.db, &caller.username)
        .await?
        .iter()
        .any(|a| {
            a.unit == unit
                && a.role == Role::NodalOfficer
                && a.valid_from <= today
                && a.valid_until.is_none_or(|u| today <= u)
        });
    if !own {
        return Err(ApiError::Forbidden(format!(
            "Only a nodal officer of {unit} itself may acknowledge an amendment for it."
        )));
    }
    if !reference::amendments(&state.db)
        .await?
        .iter()
        .any(|a| a.id == id)
    {
        return Err(ApiError::NotFound(format!("There is no amendment {id}.")));
    }
    let mut tx = state.db.begin().await?;
    if !reference::acknowledge_amendment(&mut tx, &id, unit.as_str(), &caller.username).await? {
        return Err(ApiError::Conflict(format!(
            "{unit} has acknowledged amendment {id} already."
        )));
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, %unit, amendment = %id, "amendment acknowledged");
    let ack = reference::amendment_acks(&state.db)
        .await?
        .into_iter()
        .find(|a| a.amendment == id && a.unit == unit.as_str())
        .ok_or_else(|| ApiError::Internal("the acknowledgement just stored is missing".into()))?;
    Ok((StatusCode::CREATED, axum::Json(ack)))
}
