//! Extractors that turn every way a request can be wrong into an [`ApiError`]
//! with a clear message: JSON bodies, path values and the bearer token.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::auth::Caller;
use crate::config::TrustedProxy;

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

/// The client's address (for login limits and the metrics' loopback check):
/// the peer's, or, when the peer is a configured trusted proxy, the address
/// that proxy puts in `X-Forwarded-For`. Read from the right, the first
/// address that is not a trusted proxy is the client's (a client can put
/// anything on the left, nothing to the right of what the proxy appends).
/// From any other peer the header is ignored.
#[derive(Clone, Debug)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip().to_canonical());
        let Some(peer) = peer else {
            return Ok(ClientAddr("unknown".into()));
        };
        Ok(ClientAddr(
            client_of(peer, &parts.headers, &state.config.trusted_proxies).to_string(),
        ))
    }
}

/// The client behind `peer`, believing `X-Forwarded-For` only from `trusted` proxies.
pub fn client_of(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[TrustedProxy],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        hops.extend(text.split(',').map(str::trim));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A proxy that passed on something unreadable: keep the last address known.
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|a| a.ip().to_canonical())
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append("x-forwarded-for", v);
            }
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies_and_read_from_the_right() {
        let trusted: Vec<TrustedProxy> = ["10.0.0.0/8"]
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect();
        let h = forwarded(&["6.6.6.6, 203.0.113.9"]);
        assert_eq!(
            client_of(ip("192.0.2.1"), &h, &trusted),
            ip("192.0.2.1"),
            "an untrusted peer"
        );
        assert_eq!(
            client_of(ip("10.0.0.2"), &h, &trusted),
            ip("203.0.113.9"),
            "the proxy's entry, not the client's own"
        );
        let chain = forwarded(&["6.6.6.6", "203.0.113.9, 10.0.0.7"]);
        assert_eq!(
            client_of(ip("10.0.0.2"), &chain, &trusted),
            ip("203.0.113.9"),
            "through two proxies"
        );
        assert_eq!(
            client_of(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2"),
            "no header"
        );
        let garbage = forwarded(&["203.0.113.9, not-an-address"]);
        assert_eq!(
            client_of(ip("10.0.0.2"), &garbage, &trusted),
            ip("10.0.0.2")
        );
        let ported = forwarded(&["[2001:db8::1]:4711"]);
        assert_eq!(
            client_of(ip("10.0.0.2"), &ported, &trusted),
            ip("2001:db8::1")
        );
    }
}
