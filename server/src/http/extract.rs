//! Extractors that turn every way a request can be wrong into an [`ApiError`]
//! with a clear message: JSON bodies, path values and the bearer token.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::auth::Caller;

/// A JSON body; bad JSON is 400, a body of the wrong shape 422, too big 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(value)| ApiJson(value))
            .map_err(|e| json_error(&e, state.config.limits.json_body_bytes))
    }
}

/// What a JSON body that could not be taken is answered with (`limit`: the
/// body limit in bytes). The fuzz target of the login body maps its errors
/// here too, so it checks what a client is really told.
pub(crate) fn json_error(rejection: &JsonRejection, limit: usize) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!(
            "The request body is not valid JSON: {}",
            e.body_text()
                .trim_start_matches("Failed to parse the request body as JSON: ")
        )),
        JsonRejection::JsonDataError(e) => ApiError::Unprocessable(format!(
            "The request body does not have the expected fields: {}",
            e.body_text()
                .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        )),
        JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
            "Send the body as JSON, with the header Content-Type: application/json.".into(),
        ),
        e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(format!(
            "The request body is larger than the limit of {limit} bytes."
        )),
        e => ApiError::BadRequest(format!(
            "The request body could not be read: {}",
            e.body_text()
        )),
    }
}

/// The signed-in caller, from `Authorization: Bearer <access token>`.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::Unauthorized(
                "Sign in first: send the access token as 'Authorization: Bearer <token>'.".into(),
            )
        })?;
        Ok(state.auth.authenticate(&state.db, token).await?)
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme in any case).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The client's address (for login limits).
#[derive(Clone, Debug)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

/// Parses a path or body value with its type's `FromStr`, as a 422 naming the field.
pub fn parse_field<T>(field: &str, text: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| ApiError::Unprocessable(format!("{field}: {e}")))
}
