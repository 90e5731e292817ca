//! The signed-in user: who they are, their roles, and their devices with the
//! Automerge actor ids registered to them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::access;
use crate::auth::Caller;
use crate::db::accounts;

/// A role as the user sees it.
#[derive(Debug, Serialize)]
pub struct RoleView {
    unit: String,
    role: String,
    valid_from: String,
    valid_until: Option<String>,
    office_order: String,
    in_force: bool,
}

/// `GET /api/v1/me`.
#[derive(Debug, Serialize)]
pub struct Me {
    username: String,
    display_name: String,
    designation: String,
    roles: Vec<RoleView>,
    /// Units in which a role is in force today (nodal and admin roles reach the units below).
    units: Vec<String>,
}

/// Who the caller is.
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Me>, ApiError> {
    let user = accounts::find_user(&state.db, &caller.username)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("This account no longer exists.".into()))?;
    let today = access::today();
    let roles = accounts::assignments_of_user(&state.db, &caller.username)
        .await?
        .into_iter()
        .map(|a| RoleView {
            in_force: a.valid_from <= today && a.valid_until.is_none_or(|u| today <= u),
            unit: a.unit.to_string(),
            role: a.role.to_string(),
            valid_from: a.valid_from.to_string(),
            valid_until: a.valid_until.map(|d| d.to_string()),
            office_order: a.office_order,
        })
        .collect();
    let units = crate::db::reference::units(&state.db).await?;
    let grants = access::grants_of(&state.db, &caller.username, &units).await?;
    Ok(axum::Json(Me {
        username: user.username.to_string(),
        display_name: user.display_name,
        designation: user.designation,
        roles,
        units: access::units_of(&grants, today)
            .iter()
            .map(ToString::to_string)
            .collect(),
    }))
}

/// A device as its owner sees it.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    id: String,
    name: String,
    revoked: bool,
}

impl From<accounts::Device> for DeviceView {
    fn from(d: accounts::Device) -> DeviceView {
        DeviceView {
            id: d.id,
            name: d.name,
            revoked: d.revoked_at.is_some(),
        }
    }
}

/// `GET /api/v1/devices`: the caller's devices.
pub async fn devices(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<DeviceView>>, ApiError> {
    let devices = accounts::devices_of(&state.db, &caller.username).await?;
    Ok(axum::Json(
        devices.into_iter().map(DeviceView::from).collect(),
    ))
}

/// `POST /api/v1/devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    name: String,
}

/// A device id and an actor id bound to it.
#[derive(Debug, Serialize)]
pub struct Registered {
    device_id: String,
    actor: String,
}

/// The most devices one user may register (revoked ones included).
pub const MAX_DEVICES: usize = 20;

/// Registers a device of the caller and binds its first actor id.
pub async fn register_device(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewDevice>,
) -> Result<(StatusCode, axum::Json<Registered>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(ApiError::Unprocessable(
            "name: give the device a name of 1 to 80 characters, e.g. 'Iyer tablet'.".into(),
        ));
    }
    if accounts::devices_of(&state.db, &caller.username)
        .await?
        .len()
        >= MAX_DEVICES
    {
        return Err(ApiError::Conflict(format!(
            "You already have {MAX_DEVICES} devices registered; ask an administrator to remove old ones."
        )));
    }
    let (device, actor) = accounts::insert_device(&state.db, &caller.username, name).await?;
    tracing::info!(user = %caller.username, device = %device.id, "device registered");
    Ok((
        StatusCode::CREATED,
        axum::Json(Registered {
            device_id: device.id,
            actor,
        }),
    ))
}

/// The most actor ids one device may hold (a fresh one after each refusal).
pub const MAX_ACTORS_PER_DEVICE: i64 = 1000;

/// Binds a fresh actor id to one of the caller's live devices.
pub async fn new_actor(
    State(state): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
) -> Result<(StatusCode, axum::Json<Registered>), ApiError> {
    let found = accounts::find_device(&state.db, &device).await?;
    let Some(found) = found.filter(|d| d.username == caller.username) else {
        return Err(ApiError::NotFound(
            "You have no device with this id.".into(),
        ));
    };
    if found.revoked_at.is_some() {
        return Err(ApiError::Forbidden("This device has been revoked.".into()));
    }
    let mut tx = state.db.begin().await?;
    if accounts::actor_count(&mut tx, &device).await? >= MAX_ACTORS_PER_DEVICE {
        return Err(ApiError::Conflict(format!(
            "This device already holds {MAX_ACTORS_PER_DEVICE} actor ids; register it again."
        )));
    }
    let actor = accounts::insert_actor(&mut tx, &device, &caller.username).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    // The open sync connections accept changes under it from now on.
    state.sync.refresh_user(&caller.username).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(Registered {
            device_id: device,
            actor,
        }),
    ))
}

/// Revokes one of the caller's devices (a lost tablet): its actor ids stop being accepted.
pub async fn revoke_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
) -> Result<StatusCode, ApiError> {
    if accounts::revoke_device(&state.db, &device, &caller.username).await? {
        tracing::info!(user = %caller.username, %device, "device revoked");
        state.sync.refresh_user(&caller.username).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(
            "You have no live device with this id.".into(),
        ))
    }
}
