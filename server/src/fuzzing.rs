//! The bodies of the server's fuzz targets in `fuzz/`, as plain functions:
//! the libFuzzer target and the replay test (`tests/fuzz_fixtures.rs`) call
//! the same code, so an input that once crashed stays a test. Not part of
//! the server's API.
//!
//! Each takes any bytes and never panics on them unless a property fails
//! (that panic is the finding).

use std::sync::LazyLock;

use serde_json::Value;

use crate::auth::jwt::{Keys, TokenType};
use crate::http::error::ApiError;
use crate::http::extract::json_error;
use crate::http::session::Login;
use crate::secret::Secret;

/// The signing key of the `jwt` target. The seed tokens are signed with it,
/// and all of them have expired, so no input may ever be accepted.
pub const FUZZ_KEY: &[u8; 32] = b"sqm-fuzz-signing-key-not-secret!";

/// The keys the `jwt` target verifies with: made once, as the server makes
/// them once at start.
pub fn keys() -> &'static Keys {
    static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys::new(&Secret::new(FUZZ_KEY.to_vec())));
    &KEYS
}

/// The login body, taken as `POST /api/v1/auth/login` takes it (the body
/// limit, axum's JSON extractor, the answer to a body it refuses, the check
/// of the username). A body taken shows its password to no `Debug`; a body
/// refused is answered the same whatever its password says, so the answer
/// (sent to the client, and logged) cannot carry it.
pub fn login_json(data: &[u8]) {
    let limit = crate::config::Limits::default().json_body_bytes;
    match parse_login(data, limit) {
        Ok(login) => {
            let shown = format!("{login:?}");
            let redacted = format!(
                "Login {{ username: {:?}, password: Secret([redacted; {} bytes]) }}",
                login.username,
                login.password.expose().len()
            );
            assert_eq!(shown, redacted, "a login body shows more than its username");
        }
        Err(error) => {
            if let Some(masked) = masked_password(data) {
                let again = parse_login(&masked, limit).err().map(|e| e.to_string());
                assert_eq!(
                    again,
                    Some(error.to_string()),
                    "the answer to a refused login body depends on its password"
                );
            }
        }
    }
}

fn parse_login(data: &[u8], limit: usize) -> Result<Login, ApiError> {
    if data.len() > limit {
        return Err(ApiError::TooLarge(format!(
            "The request body is larger than the limit of {limit} bytes."
        )));
    }
    axum::Json::<Login>::from_bytes(data)
        .map_err(|e| json_error(&e, limit))
        .and_then(|axum::Json(login)| login.plausible())
}

/// The password text of a JSON body (an object's `password`, or the second
/// item of an array, which serde also takes for a struct).
fn password_of(value: &Value) -> Option<&str> {
    match value {
        Value::Object(fields) => fields.get("password")?.as_str(),
        Value::Array(items) => items.get(1)?.as_str(),
        _ => None,
    }
}

/// The body with its password's characters replaced by as many `x`, when
/// the password is written once, plainly, and so can be told from the rest
/// (the same length keeps every position an error names the same).
fn masked_password(data: &[u8]) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_slice(data).ok()?;
    let password = password_of(&value)?;
    let literal = serde_json::to_string(password).ok()?;
    let literal = literal.as_bytes();
    let mut at = data
        .windows(literal.len())
        .enumerate()
        .filter(|(_, w)| *w == literal)
        .map(|(i, _)| i);
    let (Some(start), None) = (at.next(), at.next()) else {
        return None;
    };
    let mut masked = data.to_vec();
    let inner = start + 1..start + literal.len() - 1;
    let width = inner.len();
    masked[inner].fill(b'x');
    // Only if that text was the password (not a key that reads the same).
    let value: Value = serde_json::from_slice(&masked).ok()?;
    (password_of(&value)? == "x".repeat(width)).then_some(masked)
}

/// Token verification, as every request and the refresh exchange do it:
/// the bytes as an access token and as a refresh token. No input is ever
/// accepted (every token signed with [`FUZZ_KEY`] has expired).
pub fn jwt(data: &[u8]) {
    // A token reaches the server as text (a header or a JSON string).
    let token = String::from_utf8_lossy(data);
    for want in [TokenType::Access, TokenType::Refresh] {
        if let Ok(claims) = keys().verify(&token, want) {
            panic!("a token was accepted as {want:?}: {claims:?}");
        }
    }
}
