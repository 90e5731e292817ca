//! An account's sessions and devices, for those who may manage it
//! ([`super::manage`]): sign it out everywhere, list its devices, revoke one
//! (a lost tablet, or one of the [`crate::http::me::MAX_DEVICES`] no longer used).

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::manage;
use crate::auth::Caller;
use crate::db::accounts;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::me::DeviceView;

/// `DELETE /api/v1/admin/users/{username}/sessions`: ends every session of
/// the account (its tokens stop working and its sync sockets close); its
/// password and devices stay.
pub async fn end_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    manage::require(&state, &caller, &username).await?;
    accounts::revoke_all_sessions(&state.db, &username, "ended by an administrator").await?;
    tracing::info!(by = %caller.username, user = %username, "sessions ended");
    state.sync.refresh_user(&username).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/admin/users/{username}/devices`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<axum::Json<Vec<DeviceView>>, ApiError> {
    manage::require(&state, &caller, &username).await?;
    let devices = accounts::devices_of(&state.db, &username).await?;
    Ok(axum::Json(
        devices.into_iter().map(DeviceView::from).collect(),
    ))
}

/// `DELETE /api/v1/admin/users/{username}/devices/{device}`: revokes one of
/// the account's devices; its actor ids stop being accepted and its socket closes.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((username, device)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    manage::require(&state, &caller, &username).await?;
    if !accounts::revoke_device(&state.db, &device, &username).await? {
        return Err(ApiError::NotFound(format!(
            "{username} has no live device with this id."
        )));
    }
    tracing::info!(by = %caller.username, user = %username, %device, "device revoked");
    state.sync.refresh_user(&username).await;
    Ok(StatusCode::NO_CONTENT)
}
