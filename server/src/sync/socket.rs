//! `GET /api/v1/sync`: one WebSocket per device, every document it may see.
//!
//! 1. The `Origin` header, when a browser sends one, must be this server's own
//!    or a configured one (403 before the upgrade otherwise).
//! 2. The first message, within [`SyncConfig::auth_timeout`], is a text frame
//!    `{"access_token": "...", "device_id": "..."}` (browsers cannot set
//!    headers on a WebSocket). The answer is `{"ready": true, "user": ...,
//!    "documents": n}`, or a close frame with a code of [`close`] and a reason.
//! 3. Then binary frames carry sync-core envelopes both ways.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::hub::{HubMsg, Outbound};
use super::{InboundQueue, PeerMeta, READ_BUFFER_BYTES, SyncHandle, close};
use crate::access;
use crate::auth::Caller;
use crate::db::accounts;
use crate::http::AppState;
use crate::http::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hello {
    access_token: String,
    device_id: String,
}

/// Whether a browser's `Origin` may open the socket: this server's own, or configured.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        // Not a browser (a native client or a test): the token is the check.
        return true;
    };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// The upgrade.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !origin_allowed(&headers, &state.config.allowed_origins) {
        return Err(ApiError::Forbidden(
            "This page's origin may not open the sync connection.".into(),
        ));
    }
    let limit = state.sync.config.max_frame_bytes;
    Ok(ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| run(socket, state)))
}

/// A close frame's reason, cut to what the frame may carry (123 bytes).
pub(crate) fn close_reason(reason: &str) -> axum::extract::ws::Utf8Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].into()
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: close_reason(reason),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Reads the hello and checks it: the caller and their device.
async fn hello(
    socket: &mut WebSocket,
    state: &AppState,
) -> Result<(Caller, String), (u16, String)> {
    let timeout = state.sync.config.auth_timeout;
    let first = match tokio::time::timeout(timeout, socket.recv()).await {
        Err(_) => {
            return Err((
                close::AUTH_TIMEOUT,
                format!("No sign-in within {} seconds.", timeout.as_secs()),
            ));
        }
        Ok(None | Some(Err(_))) => return Err((close::BAD_HELLO, "The connection ended.".into())),
        Ok(Some(Ok(m))) => m,
    };
    let Message::Text(text) = first else {
        return Err((
            close::BAD_HELLO,
            "The first message must be the sign-in: {\"access_token\", \"device_id\"}.".into(),
        ));
    };
    let hello: Hello = serde_json::from_str(&text).map_err(|e| {
        (
            close::BAD_HELLO,
            format!("The sign-in message could not be read: {e}"),
        )
    })?;
    let caller = state
        .auth
        .authenticate(&state.db, &hello.access_token)
        .await
        .map_err(|_| {
            (
                close::UNAUTHORIZED,
                "Your sign-in is not valid or has expired. Refresh it and connect again.".into(),
            )
        })?;
    let device = accounts::find_device(&state.db, &hello.device_id)
        .await
        .map_err(|_| {
            (
                close::UNAUTHORIZED,
                "The device could not be checked.".into(),
            )
        })?;
    match device {
        Some(d) if d.username == caller.username && d.revoked_at.is_none() => {}
        _ => {
            return Err((
                close::UNAUTHORIZED,
                "This device is not registered to you, or has been revoked.".into(),
            ));
        }
    }
    Ok((caller, hello.device_id))
}

async fn run(mut socket: WebSocket, state: AppState) {
    let (caller, device) = match hello(&mut socket, &state).await {
        Ok(ok) => ok,
        Err((code, reason)) => {
            close_with(&mut socket, code, &reason).await;
            return;
        }
    };
    let sync: SyncHandle = state.sync.clone();
    let peer = sync.next_peer();
    let meta = PeerMeta {
        username: caller.username.clone(),
        device: device.clone(),
        session: caller.session.clone(),
    };
    if !sync.register(peer, meta.clone()) {
        let reason = format!(
            "You already have {} sync connections open; close one first.",
            sync.config.max_connections_per_user
        );
        close_with(&mut socket, close::TOO_MANY_CONNECTIONS, &reason).await;
        return;
    }
    let setup = async {
        let author = access::author_on_device(&state.db, &caller.username, &device).await?;
        let docs = super::sweep::visible_docs(&state.db, &author).await?;
        let quarantined =
            crate::db::documents::quarantined_bytes(&state.db, &caller.username).await?;
        Ok::<_, crate::db::DbError>((author, docs, quarantined))
    };
    let (author, docs, quarantined) = match setup.await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(cause = %e, "cannot read a connection's rights");
            sync.unregister(peer);
            close_with(
                &mut socket,
                1011,
                "The server could not read your rights; try again.",
            )
            .await;
            return;
        }
    };
    let ready = serde_json::json!({
        "ready": true,
        "user": caller.username,
        "documents": docs.len(),
    });
    if socket
        .send(Message::Text(ready.to_string().into()))
        .await
        .is_err()
    {
        sync.unregister(peer);
        return;
    }
    let (out_tx, out_rx) = mpsc::channel(sync.config.outbox_frames);
    sync.send(HubMsg::Connect {
        peer,
        meta,
        author: Box::new(author),
        docs,
        out: out_tx,
        quarantined,
    });
    tracing::info!(peer, user = %caller.username, %device, "sync connected");
    pump(socket, out_rx, &sync, peer, &caller.username).await;
    sync.send(HubMsg::Disconnect { peer });
    sync.unregister(peer);
    tracing::info!(peer, user = %caller.username, "sync disconnected");
}

/// Frames both ways until either side ends.
async fn pump(
    socket: WebSocket,
    mut out: mpsc::Receiver<Outbound>,
    sync: &SyncHandle,
    peer: u64,
    user: &str,
) {
    let (mut sink, mut stream) = socket.split();
    let queue = std::sync::Arc::new(InboundQueue::default());
    let limit = sync.config.inbound_bytes;
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Binary(bytes))) => match queue.admit(bytes.to_vec(), limit) {
                    Some(frame) => sync.send(HubMsg::Frame { peer, frame }),
                    None => {
                        tracing::warn!(peer, %user, limit, "sync socket sent more than the hub takes in; closing");
                        sync.metrics.count(
                            "sqm_sync_queue_full_total",
                            "Connections closed for sending more than the hub takes in.",
                            1,
                        );
                        let reason = format!("More than {} MiB sent before the server read it; wait, then reconnect.", limit >> 20);
                        let frame = CloseFrame { code: close::QUEUE_FULL, reason: close_reason(&reason) };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        let _ = tokio::time::timeout(Duration::from_secs(2), sink.flush()).await;
                        return;
                    }
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    let frame = CloseFrame { code: close::BAD_HELLO, reason: "Only binary frames after sign-in.".into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
                Some(Ok(Message::Close(_))) => {
                    // The WebSocket library queues the answer (the client's
                    // own code); sending it lets the client see a clean close
                    // rather than an abnormal one (1006).
                    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
                    return;
                }
                None => return,
                Some(Err(e)) => {
                    // Over the size limit, or a broken connection.
                    let too_big = e.to_string().to_lowercase().contains("too long")
                        || e.to_string().to_lowercase().contains("size");
                    if too_big {
                        let reason = format!("A message was larger than {} bytes.", sync.config.max_frame_bytes);
                        let frame = CloseFrame { code: close::TOO_BIG, reason: reason.into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                    }
                    return;
                }
            },
            outgoing = out.recv() => match outgoing {
                Some(Outbound::Frame(bytes)) => {
                    if sink.send(Message::Binary(bytes.into())).await.is_err() {
                        return;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let frame = CloseFrame { code, reason: close_reason(&reason) };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    // Give the close frame a moment to leave before the socket drops.
                    let _ = tokio::time::timeout(Duration::from_secs(2), sink.flush()).await;
                    return;
                }
                None => {
                    // The hub dropped this connection: it could not keep up.
                    let frame = CloseFrame { code: close::TOO_SLOW, reason: "The connection could not keep up; reconnect.".into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
            },
        }
    }
}
