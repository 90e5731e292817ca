//! `GET /api/v1/search?q=`: documents by the server's number (`NC-09`,
//! `IA/DEMO-I/2025-26/003`), the provisional number the raising tablet gave
//! an NC (`D-IYER-01`) or words of its description; only documents the
//! caller may read, newest first.

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use sync_core::text;

use super::AppState;
use super::error::ApiError;
use crate::access;
use crate::auth::Caller;
use crate::db::documents;

/// The longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 100;
/// The most results returned.
pub const MAX_RESULTS: usize = 50;
/// The most matching documents looked at for the caller's rights.
const SCANNED: i64 = 500;

/// The query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
}

/// One document found.
#[derive(Debug, Serialize)]
pub struct Hit {
    id: String,
    kind: String,
    unit: String,
    /// The server's number.
    number: Option<String>,
    /// The raising tablet's number (NCs), if it gave one.
    provisional: Option<String>,
    /// The NC's description.
    description: Option<String>,
}

/// The results.
#[derive(Debug, Serialize)]
pub struct Results {
    results: Vec<Hit>,
}

/// Finds documents the caller may read.
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SearchQuery>,
) -> Result<axum::Json<Results>, ApiError> {
    let text = q.q.unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::BadRequest(
            "Say what to look for: ?q=<number or words>.".into(),
        ));
    }
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::BadRequest(format!(
            "Search for at most {MAX_QUERY_CHARS} characters."
        )));
    }
    if let Some(c) = text::forbidden(text, false) {
        return Err(ApiError::BadRequest(format!(
            "The search text holds a character that cannot be searched for ({}).",
            text::code_point(c)
        )));
    }
    let author = access::author_of(&state.db, &caller.username).await?;
    let today = access::today();
    let mut results = Vec::new();
    for found in documents::search(&state.db, text, SCANNED).await? {
        if results.len() == MAX_RESULTS {
            break;
        }
        if !author.may_read(&found.meta.context()?, today) {
            continue;
        }
        results.push(Hit {
            id: found.meta.id.to_string(),
            kind: found.meta.kind.to_string(),
            unit: found.meta.unit,
            number: found.meta.number,
            provisional: found.provisional.filter(|p| !p.is_empty()),
            description: found.words,
        });
    }
    Ok(axum::Json(Results { results }))
}
