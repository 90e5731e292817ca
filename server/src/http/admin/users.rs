//! Accounts: list a unit's people, create accounts, disable or enable them,
//! set a new password.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sync_core::ids::UserId;

use super::{STEWARDS, Steward, manage, unit_of};
use crate::auth::Caller;
use crate::db::accounts::{self, User};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, parse_field};
use crate::secret::Secret;

/// `?unit=` of the list.
#[derive(Debug, Deserialize)]
pub struct UnitQuery {
    unit: Option<String>,
}

/// A person as an administrator sees them.
#[derive(Debug, Serialize)]
pub struct UserView {
    username: String,
    display_name: String,
    designation: String,
    disabled: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> UserView {
        UserView {
            username: u.username.to_string(),
            display_name: u.display_name,
            designation: u.designation,
            disabled: u.disabled_at.is_some(),
        }
    }
}

/// `GET /api/v1/admin/users?unit=`: the people holding roles in a unit.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UnitQuery>,
) -> Result<axum::Json<Vec<UserView>>, ApiError> {
    let Some(unit) = q.unit else {
        return Err(ApiError::BadRequest(
            "Say which unit's people to list: ?unit=<unit code>.".into(),
        ));
    };
    let unit = unit_of(&unit)?;
    Steward::of(&state, &caller)
        .await?
        .require(&unit, STEWARDS, "list people")?;
    let mut out = Vec::new();
    for p in crate::db::reference::people_of_unit(&state.db, unit.as_str()).await? {
        if let Some(u) = accounts::find_user(&state.db, &p.username).await? {
            out.push(UserView::from(u));
        }
    }
    Ok(axum::Json(out))
}

/// `POST /api/v1/admin/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    display_name: String,
    #[serde(default)]
    designation: String,
    password: Secret,
}

/// Creates an account (no roles yet: grant them in a unit).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    let steward = Steward::of(&state, &caller).await?;
    if !steward.holds_anywhere(STEWARDS) {
        return Err(ApiError::Forbidden(
            "Only nodal officers and admins may create accounts.".into(),
        ));
    }
    let username: UserId = parse_field("username", &body.username)?;
    let display_name = body.display_name.trim().to_owned();
    if display_name.is_empty() || display_name.chars().count() > 120 {
        return Err(ApiError::Unprocessable(
            "display_name: give a name of 1 to 120 characters.".into(),
        ));
    }
    if body.designation.chars().count() > 120 {
        return Err(ApiError::Unprocessable(
            "designation: at most 120 characters.".into(),
        ));
    }
    let hash = state.auth.hasher().hash(body.password).await?;
    let user = User {
        username,
        display_name,
        designation: body.designation.trim().to_owned(),
        disabled_at: None,
    };
    let mut tx = state.db.begin().await?;
    if !accounts::insert_user(&mut tx, &user, &hash).await? {
        return Err(ApiError::Conflict(format!(
            "There is already an account named {}.",
            user.username
        )));
    }
    // Its maker may manage it while it holds no role (see `manage`).
    accounts::set_made_by(&mut tx, user.username.as_str(), &caller.username).await?;
    tx.commit().await.map_err(crate::db::DbError::from)?;
    tracing::info!(by = %caller.username, user = %user.username, "account created");
    Ok((StatusCode::CREATED, axum::Json(UserView::from(user))))
}

async fn switch(
    state: AppState,
    caller: Caller,
    username: String,
    disabled: bool,
) -> Result<StatusCode, ApiError> {
    // Said before the rule, which would refuse a nodal officer their own
    // account: the reason that matters here is that it is their own.
    if disabled
        && username == caller.username
        && Steward::of(&state, &caller).await?.holds_anywhere(STEWARDS)
    {
        return Err(ApiError::Conflict(
            "You cannot disable your own account.".into(),
        ));
    }
    manage::require(&state, &caller, &username).await?;
    accounts::set_disabled(&state.db, &username, disabled).await?;
    tracing::info!(by = %caller.username, user = %username, disabled, "account switched");
    state.sync.refresh_all();
    Ok(StatusCode::NO_CONTENT)
}

/// Disables an account: its sessions end at once.
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    switch(state, caller, username, true).await
}

/// Enables an account again.
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    switch(state, caller, username, false).await
}

/// `PUT /api/v1/admin/users/{username}/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: Secret,
}

/// Sets a new password; the account's sessions end (sign in again with it).
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    manage::require(&state, &caller, &username).await?;
    let hash = state.auth.hasher().hash(body.password).await?;
    accounts::set_password(&state.db, &username, &hash).await?;
    tracing::info!(by = %caller.username, user = %username, "password set");
    state.sync.refresh_all();
    Ok(StatusCode::NO_CONTENT)
}
