//! Operations: health and metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;

use super::AppState;
use super::error::ApiError;
use super::extract::{ClientAddr, bearer};

/// `GET /healthz`: 200 when the database answers, 503 when it does not.
pub async fn healthz(
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    state
        .db
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(axum::Json(serde_json::json!({ "status": "ok" })))
}

/// `GET /metrics`: Prometheus text, for the machine itself (loopback) or a
/// scraper holding `SQM_METRICS_TOKEN`.
pub async fn metrics(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let loopback = client
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback());
    let token_ok = match &state.config.metrics_token {
        Some(token) => {
            bearer(&headers).is_some_and(|given| constant_time_eq(given.as_bytes(), token.expose()))
        }
        None => false,
    };
    if !loopback && !token_ok {
        return Err(ApiError::Unauthorized(
            "Metrics are served to this machine, or with the metrics token.".into(),
        ));
    }
    let hasher = state.auth.hasher();
    state.metrics.set_count(
        "sqm_password_hashes_total",
        "Password hashes computed (logins checked, passwords set).",
        hasher.hashes(),
    );
    state.metrics.set_count(
        "sqm_password_hashes_refused_total",
        "Password hashes refused because the hashing queue was full (503).",
        hasher.refused(),
    );
    state.metrics.set_gauge(
        "sqm_password_hashes_waiting",
        "Password hashes waiting for a hashing thread now.",
        i64::try_from(hasher.waiting()).unwrap_or(i64::MAX),
    );
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
