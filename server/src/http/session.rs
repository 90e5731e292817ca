//! Login, refresh and logout.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ClientAddr};
use crate::auth::{Caller, Tokens};
use crate::secret::Secret;

/// `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub(crate) username: String,
    pub(crate) password: Secret,
}

impl Login {
    /// The body with a username that could exist; any other is answered as
    /// bad credentials, without asking the database.
    pub(crate) fn plausible(self) -> Result<Login, ApiError> {
        if self.username.is_empty() || self.username.len() > 64 {
            return Err(ApiError::Unauthorized(
                crate::auth::AuthError::BadCredentials.to_string(),
            ));
        }
        Ok(self)
    }
}

/// Checks the password and starts a session.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<Login>,
) -> Result<axum::Json<Tokens>, ApiError> {
    let body = body.plausible()?;
    let tokens = state
        .auth
        .login(&state.db, &body.username, body.password, &client)
        .await?;
    tracing::info!(user = %body.username, "signed in");
    Ok(axum::Json(tokens))
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    refresh_token: String,
}

/// Exchanges a refresh token for a new pair (each refresh token works once).
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Refresh>,
) -> Result<axum::Json<Tokens>, ApiError> {
    Ok(axum::Json(
        state.auth.refresh(&state.db, &body.refresh_token).await?,
    ))
}

/// Ends the caller's session.
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    state.auth.logout(&state.db, &caller).await?;
    tracing::info!(user = %caller.username, "signed out");
    Ok(StatusCode::NO_CONTENT)
}
