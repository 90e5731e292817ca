//! Blobs (photos, scanned documents) travel outside Automerge (DESIGN §5):
//! content-addressed by SHA-256, uploaded whole or in parts that a device can
//! resume and re-send, refused over a size cap and over its uploader's
//! quota, and served only as [`super::blob_access`] says.
//!
//! Each user uploads a file themselves, even one the server has: an upload
//! in progress is its uploader's own (no one else can restart or fill it),
//! and sending the whole content is what makes a user one of the file's
//! holders, whose evidence makes it readable. Unfinished uploads that do not
//! move for `upload_ttl` are dropped (a sweep at start, then periodically,
//! and before each new upload).
//!
//! - `PUT /api/v1/blobs/{sha256}`: the bytes, whole or one part
//!   (`Content-Range: bytes START-END/TOTAL`). 202 while incomplete; when the
//!   caller's last byte arrived and the content matched its hash, 201 if the
//!   server stored the file now and 200 if it had it already; 200 also when
//!   the caller holds the file already; 409 with `received` for a part after
//!   a gap; 507 over the caller's quota.
//! - `GET /api/v1/blobs/{sha256}/status`: how many bytes of it the server
//!   has from the caller (all of them once the caller holds it).
//! - `GET /api/v1/blobs/{sha256}`: the content, or 404 for anyone who may
//!   not read it (existence is not revealed).
//!
//! The body is read here, not by an extractor, so the API's 64 KiB JSON limit
//! does not apply: a part may be `blob_part_bytes` long, a whole blob sent in
//! one request `blob_bytes` (both in [`crate::config::Limits`]).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sync_core::ids::Sha256Hex;

use super::AppState;
use super::error::ApiError;
use super::extract::parse_field;
use crate::access;
use crate::auth::Caller;
use crate::db::accounts::hex;
use crate::db::{Db, DbError, Tx, blobs, now_ms};

/// How far the caller's upload of a blob has come (every success of PUT and of status).
#[derive(Debug, Serialize)]
pub struct BlobStatus {
    sha256: String,
    /// The blob's size in bytes; null while no byte of it was received.
    size: Option<i64>,
    /// How many bytes the server has, from the first: resume from here.
    received: i64,
    /// Whether every byte arrived and the content matched its hash.
    complete: bool,
}

impl BlobStatus {
    fn of(sha256: &Sha256Hex, state: Option<blobs::BlobState>) -> BlobStatus {
        BlobStatus {
            sha256: sha256.to_string(),
            size: state.map(|s| s.size),
            received: state.map_or(0, |s| s.received),
            complete: state.is_some_and(|s| s.complete),
        }
    }

    fn answer(self, status: StatusCode) -> Response {
        (status, axum::Json(self)).into_response()
    }
}

/// The 409 for a part that would leave a gap: the error body plus the number
/// of bytes the server has, so the device knows where to resume.
#[derive(Debug, Serialize)]
struct Gap {
    error: &'static str,
    message: String,
    received: i64,
}

fn gap(message: String, received: i64) -> Response {
    let body = Gap {
        error: "conflict",
        message,
        received,
    };
    (StatusCode::CONFLICT, axum::Json(body)).into_response()
}

/// The bytes of one request: which part of the blob, of what size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    /// The first byte's offset.
    start: u64,
    /// The last byte's offset (inclusive, as in HTTP).
    end: u64,
    /// The blob's size.
    total: u64,
}

impl Part {
    fn len(self) -> u64 {
        self.end - self.start + 1
    }
}

const RANGE_FORM: &str = "Content-Range must read 'bytes START-END/TOTAL': the offsets of the \
     part's first and last bytes (counted from 0) and the blob's size, e.g. \
     'bytes 0-1048575/3000000'.";

/// Reads `bytes START-END/TOTAL`.
fn parse_range(text: &str) -> Result<Part, ApiError> {
    let bad = || ApiError::BadRequest(RANGE_FORM.into());
    let rest = text.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = rest.split_once('/').ok_or_else(bad)?;
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u64>().map_err(|_| bad())
    };
    let part = Part {
        start: number(start)?,
        end: number(end)?,
        total: number(total)?,
    };
    if part.start > part.end || part.end >= part.total {
        return Err(ApiError::BadRequest(format!(
            "Content-Range '{}' is not a part of the blob: START must not be after END, and END \
             must be less than TOTAL. {RANGE_FORM}",
            text.trim()
        )));
    }
    Ok(part)
}

fn header<'a>(
    headers: &'a HeaderMap,
    name: &axum::http::HeaderName,
) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::BadRequest(format!("The {name} header is not readable text."))
            })
        })
        .transpose()
}

/// Reads at most `limit` bytes of the body; `over` is the refusal past that.
async fn read_body(
    body: Body,
    limit: u64,
    over: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::BadRequest(format!("The request body could not be read: {e}"))
        })?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(over());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Refuses a caller with no role in force today: only people at work upload evidence.
async fn may_upload(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let units = crate::db::reference::units(&state.db).await?;
    let grants = access::grants_of(&state.db, &caller.username, &units).await?;
    if access::units_of(&grants, access::today()).is_empty() {
        return Err(ApiError::Forbidden(
            "You hold no role in force today, so you may not upload files.".into(),
        ));
    }
    Ok(())
}

/// How many times a write that lost a race with another upload of the same
/// blob reads the state again before giving up.
const ATTEMPTS: usize = 8;

/// `PUT /api/v1/blobs/{sha256}`: stores the whole blob or one part of it.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sha256: Sha256Hex = parse_field("sha256", &sha256)?;
    may_upload(&state, &caller).await?;
    if let Some(ct) = header(&headers, &CONTENT_TYPE)? {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/octet-stream") {
            return Err(ApiError::BadRequest(format!(
                "Send the file's bytes as the body, with Content-Type: application/octet-stream \
                 (not {essence})."
            )));
        }
    }
    let limits = &state.config.limits;
    let cap = limits.blob_bytes as u64;
    let too_big = |size: u64| {
        ApiError::TooLarge(format!(
            "The file is {size} bytes; the largest file accepted is {cap} bytes."
        ))
    };
    let declared: Option<u64> = match header(&headers, &CONTENT_LENGTH)? {
        Some(n) => Some(
            n.trim()
                .parse()
                .map_err(|_| ApiError::BadRequest("Content-Length is not a number.".into()))?,
        ),
        None => None,
    };
    let (range, bytes) = match header(&headers, &CONTENT_RANGE)? {
        Some(text) => {
            let part = parse_range(text)?;
            if part.total > cap {
                return Err(too_big(part.total));
            }
            let most = limits.blob_part_bytes as u64;
            if part.len() > most {
                return Err(ApiError::TooLarge(format!(
                    "The part is {} bytes; a part may be at most {most} bytes. Send the file in \
                     smaller parts.",
                    part.len()
                )));
            }
            let mismatch = || {
                ApiError::BadRequest(format!(
                    "The body must hold exactly the {} bytes that Content-Range names.",
                    part.len()
                ))
            };
            if declared.is_some_and(|n| n != part.len()) {
                return Err(mismatch());
            }
            let bytes = read_body(body, part.len(), mismatch).await?;
            if bytes.len() as u64 != part.len() {
                return Err(mismatch());
            }
            (part, bytes)
        }
        None => {
            if let Some(n) = declared.filter(|&n| n > cap) {
                return Err(too_big(n));
            }
            let bytes = read_body(body, cap, || {
                ApiError::TooLarge(format!(
                    "The file is larger than the largest file accepted, {cap} bytes."
                ))
            })
            .await?;
            let Some(end) = (bytes.len() as u64).checked_sub(1) else {
                return Err(ApiError::Unprocessable(
                    "The body is empty: a file has at least one byte.".into(),
                ));
            };
            let part = Part {
                start: 0,
                end,
                total: end + 1,
            };
            (part, bytes)
        }
    };
    store(&state, &caller, &sha256, range, &bytes).await
}

/// Applies one part to the caller's upload, verifying the content when it is whole.
async fn store(
    state: &AppState,
    caller: &Caller,
    sha256: &Sha256Hex,
    part: Part,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let db = &state.db;
    let (key, user) = (sha256.as_str(), caller.username.as_str());
    let (start, end, total) = (as_i64(part.start), as_i64(part.end), as_i64(part.total));
    let now = blobs::state_for(db.pool(), key, user).await?;
    if now.is_some_and(|s| s.complete) {
        return Ok(BlobStatus::of(sha256, now).answer(StatusCode::OK));
    }
    if part.start == 0 && part.len() == part.total {
        return whole(state, caller, sha256, bytes).await;
    }
    for _ in 0..ATTEMPTS {
        let now = blobs::upload(db.pool(), key, user).await?;
        if now.is_none() {
            expire_uploads(db, state.config.limits.upload_ttl).await?;
        }
        let mut tx = db.begin().await?;
        let moved = match now {
            None if start > 0 => {
                return Ok(gap(
                    format!(
                        "The server has no bytes of this file from you yet; send it from byte \
                         0, not byte {start}."
                    ),
                    0,
                ));
            }
            None => {
                tx = reserve(state, tx, user, key, total).await?;
                blobs::start(&mut tx, key, user, total, bytes).await?
            }
            Some(s) if s.size != total && start > 0 => {
                return Ok(gap(
                    format!(
                        "Your upload in progress is of a file of {} bytes, not {total}: the \
                         content cannot match its hash both ways. Send the file from byte 0 \
                         to start over.",
                        s.size
                    ),
                    0,
                ));
            }
            Some(s) if s.size != total => {
                tx = reserve(state, tx, user, key, total).await?;
                blobs::restart(&mut tx, key, user, s.received, total, bytes).await?
            }
            Some(s) if end < s.received => {
                // A part the server has: accepted again, nothing rewritten.
                return Ok(BlobStatus::of(sha256, now).answer(StatusCode::ACCEPTED));
            }
            Some(s) if start > s.received => {
                return Ok(gap(
                    format!(
                        "The server has the first {} bytes of this file; a part from byte \
                         {start} would leave a gap. Send the file from byte {}.",
                        s.received, s.received
                    ),
                    s.received,
                ));
            }
            Some(s) => {
                let skip = usize::try_from(s.received - start).unwrap_or(usize::MAX);
                let tail = bytes.get(skip..).unwrap_or_default();
                blobs::append(&mut tx, db.kind(), key, user, s.received, tail).await?
            }
        };
        if !moved {
            // Another request of the same user wrote first: read its state again.
            tx.rollback().await.map_err(DbError::from)?;
            continue;
        }
        let after = blobs::upload(&mut *tx, key, user).await?;
        let Some(after) = after.filter(|a| a.received == a.size) else {
            tx.commit().await.map_err(DbError::from)?;
            return Ok(BlobStatus::of(sha256, after).answer(StatusCode::ACCEPTED));
        };
        let content = blobs::upload_content(&mut tx, key, user).await?;
        let actual = hex(&Sha256::digest(&content));
        if actual != key {
            blobs::discard(&mut tx, key, user).await?;
            tx.commit().await.map_err(DbError::from)?;
            return Err(mismatch(&actual, key));
        }
        let stored = blobs::complete(&mut tx, key, user, &content).await?;
        tx.commit().await.map_err(DbError::from)?;
        return Ok(held(sha256, after.size, stored));
    }
    let received = blobs::upload(db.pool(), key, user)
        .await?
        .map_or(0, |s| s.received);
    Ok(gap(
        format!(
            "Other uploads of this file from you kept changing it while this part was stored. \
             The server has the first {received} bytes; resume from there."
        ),
        received,
    ))
}

/// The whole file in one request: checked in memory, then stored (or, if the
/// server has it, only the caller recorded as a holder).
async fn whole(
    state: &AppState,
    caller: &Caller,
    sha256: &Sha256Hex,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let (key, user) = (sha256.as_str(), caller.username.as_str());
    let actual = hex(&Sha256::digest(bytes));
    if actual != key {
        return Err(mismatch(&actual, key));
    }
    let tx = state.db.begin().await?;
    let mut tx = reserve(state, tx, user, key, as_i64(bytes.len() as u64)).await?;
    let stored = blobs::complete(&mut tx, key, user, bytes).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(held(sha256, as_i64(bytes.len() as u64), stored))
}

/// The answer once the caller holds the file: 201 if it was stored now.
fn held(sha256: &Sha256Hex, size: i64, stored: bool) -> Response {
    let done = blobs::BlobState {
        size,
        received: size,
        complete: true,
    };
    let status = if stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    BlobStatus::of(sha256, Some(done)).answer(status)
}

fn mismatch(actual: &str, key: &str) -> ApiError {
    ApiError::Unprocessable(format!(
        "The content does not match its hash: its SHA-256 is {actual}, not {key}. The upload \
         was discarded; send the file again from byte 0."
    ))
}

/// Locks the caller's uploads (first thing in `tx`) and refuses, rolling
/// `tx` back, a file of `size` bytes that would take them past their quota.
/// Their upload of this same file is not counted: it is being replaced.
async fn reserve(
    state: &AppState,
    mut tx: Tx,
    user: &str,
    key: &str,
    size: i64,
) -> Result<Tx, ApiError> {
    blobs::lock_user(&mut tx, user).await?;
    let used = blobs::used_bytes(&mut tx, user, key).await?;
    let quota = i64::try_from(state.config.limits.blob_quota_bytes).unwrap_or(i64::MAX);
    if used.saturating_add(size) <= quota {
        return Ok(tx);
    }
    tx.rollback().await.map_err(DbError::from)?;
    Err(ApiError::OverQuota(format!(
        "Your files on the server take {used} of the {quota} bytes you may store; this file of \
         {size} bytes would go over. Ask an administrator to raise your limit."
    )))
}

/// Drops the unfinished uploads that have not moved for `ttl`.
pub async fn expire_uploads(db: &Db, ttl: std::time::Duration) -> Result<u64, DbError> {
    let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let dropped = blobs::expire_uploads(db.pool(), now_ms().saturating_sub(ttl)).await?;
    if dropped > 0 {
        tracing::info!(dropped, "unfinished uploads expired");
    }
    Ok(dropped)
}

/// Expires unfinished uploads now and then, while the pool is open.
pub async fn sweep_uploads(db: Db, ttl: std::time::Duration) {
    let every = (ttl / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(3600),
    );
    while !db.pool().is_closed() {
        if let Err(e) = expire_uploads(&db, ttl).await {
            tracing::warn!(cause = %e, "expiring unfinished uploads failed");
        }
        tokio::time::sleep(every).await;
    }
}

/// `GET /api/v1/blobs/{sha256}/status`: how many bytes of it the server has from the caller.
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    let sha256: Sha256Hex = parse_field("sha256", &sha256)?;
    may_upload(&state, &caller).await?;
    let now = blobs::state_for(state.db.pool(), sha256.as_str(), &caller.username).await?;
    Ok(BlobStatus::of(&sha256, now).answer(StatusCode::OK))
}

/// A media type fit to send as Content-Type, else none.
fn media_type(mime: &str) -> Option<HeaderValue> {
    let (kind, sub) = mime.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let sub = sub.split(';').next().unwrap_or_default().trim();
    (mime.len() <= 127 && token(kind) && token(sub))
        .then(|| HeaderValue::from_str(mime).ok())
        .flatten()
}

/// `GET /api/v1/blobs/{sha256}`: the content, for a caller who may read it
/// ([`super::blob_access`]).
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    let sha256: Sha256Hex = parse_field("sha256", &sha256)?;
    let hidden = || ApiError::NotFound("There is no such file, or none you may see.".into());
    let mime = super::blob_access::readable(&state, &caller, sha256.as_str())
        .await?
        .ok_or_else(hidden)?;
    let content = blobs::complete_content(state.db.pool(), sha256.as_str())
        .await?
        .ok_or_else(hidden)?;
    let content_type =
        media_type(&mime).unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let etag = HeaderValue::from_str(&format!("\"{sha256}\""))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        StatusCode::OK,
        [
            (CONTENT_TYPE, content_type),
            (ETAG, etag),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=31536000, immutable"),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        content,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_reads_start_end_and_total() {
        let p = parse_range("bytes 0-99/300").ok();
        assert_eq!(
            p,
            Some(Part {
                start: 0,
                end: 99,
                total: 300
            })
        );
        assert_eq!(p.map(Part::len), Some(100));
        assert!(parse_range("bytes 299-299/300").is_ok());
        for bad in [
            "bytes 0-99/*",
            "bytes */300",
            "0-99/300",
            "bytes 100-99/300",
            "bytes 0-300/300",
            "bytes -1-99/300",
            "bytes +0-99/300",
            "bytes 0-99/",
            "items 0-99/300",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_plain_media_types_are_sent() {
        assert!(media_type("image/jpeg").is_some());
        assert!(media_type("application/pdf").is_some());
        assert!(media_type("text/plain; charset=utf-8").is_some());
        assert!(media_type("jpeg").is_none());
        assert!(media_type("image/").is_none());
        assert!(media_type("image/jpeg\r\nSet-Cookie: x").is_none());
    }
}
