//! The one error type at the HTTP edge: a status and a JSON body
//! `{"error": code, "message": text}` that a person can read. Internal causes
//! are logged here and never sent to the client.

use axum::http::StatusCode;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::auth::password::PasswordError;
use crate::db::DbError;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing (or none the caller may see).
    #[error("{0}")]
    NotFound(String),
    /// 409: it conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 422: readable, but a value is not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// 429: too many attempts.
    #[error("{0}")]
    TooMany(String),
    /// 503: the request ran past the time limit and was stopped.
    #[error(
        "The request took too long and was stopped; it may not have been carried out. Please try again."
    )]
    Timeout,
    /// 503: a dependency (the database) is down.
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: too much work is waiting (password hashes);
    /// nothing was done, the same request may be sent again shortly.
    #[error("{0}")]
    Busy(String),
    /// 507: the caller's storage quota would be exceeded.
    #[error("{0}")]
    OverQuota(String),
    /// 500: a fault on our side; the cause goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Seconds a client told [`ApiError::Busy`] waits before it tries again.
pub const BUSY_RETRY_AFTER: &str = "2";

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::OverQuota(_) => (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "Something went wrong on the server. The request was not carried out; please try again.".to_owned()
            }
            ApiError::Unavailable(cause) => {
                tracing::error!(%cause, "dependency unavailable");
                "The server cannot reach its database just now.".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            axum::Json(Body {
                error: code,
                message: &message,
            }),
        )
            .into_response();
        match status {
            StatusCode::UNAUTHORIZED => {
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
            }
            StatusCode::TOO_MANY_REQUESTS => {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("3600"));
            }
            _ if code == "busy" => {
                response.headers_mut().insert(
                    RETRY_AFTER,
                    axum::http::HeaderValue::from_static(BUSY_RETRY_AFTER),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> ApiError {
        match e {
            PasswordError::Length => ApiError::Unprocessable(e.to_string()),
            PasswordError::Hashing(cause) => ApiError::Internal(cause),
            PasswordError::Busy => ApiError::Busy(e.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::BadCredentials | AuthError::Reused => ApiError::Unauthorized(e.to_string()),
            AuthError::InvalidToken(cause) => {
                tracing::debug!(%cause, "token refused");
                ApiError::Unauthorized(
                    "Your sign-in is not valid or has expired. Please sign in again.".into(),
                )
            }
            AuthError::TooManyAttempts => ApiError::TooMany(e.to_string()),
            AuthError::Db(e) => e.into(),
            AuthError::Password(e) => e.into(),
        }
    }
}
