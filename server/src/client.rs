//! A native sync client: sync-core's device engine over a real WebSocket, as
//! a tablet runs it. The load tool and the end-to-end tests drive it; it keeps
//! its documents in memory (a tablet keeps them in IndexedDB).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sync_core::date::Timestamp;
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, Notice, PeerId};
use sync_core::ids::DocumentId;
use sync_core::permissions::{Author, Refusal};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::db::now_ms;

/// The server, as the device's engine numbers it.
pub const SERVER: PeerId = 0;

/// How often the client lets its engine resend what got no answer.
const TICK: Duration = Duration::from_millis(100);

/// Why the client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed.
    #[error("websocket: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server closed the socket.
    #[error("closed by the server ({code}): {reason}")]
    Closed {
        /// The close code.
        code: u16,
        /// The reason given.
        reason: String,
    },
    /// The server's first answer was not `ready`.
    #[error("unexpected answer to the sign-in: {0}")]
    Hello(String),
    /// An edit was refused locally.
    #[error("refused ({}): {}", .0.rule, .0.message)]
    Refused(Refusal),
}

/// A socket that has signed in (see [`Client::open`]).
pub struct SignedIn(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedIn(..)")
    }
}

/// One device's connection.
pub struct Client {
    /// The device's engine (its documents).
    pub engine: Engine,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Refusals the server sent.
    pub rejections: Vec<Notice>,
    /// Bytes sent and received in binary frames.
    pub bytes: (u64, u64),
    /// Frames sent and received.
    pub frames: (u64, u64),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bytes", &self.bytes)
            .finish()
    }
}

fn now() -> Timestamp {
    Timestamp(now_ms())
}

impl Client {
    /// Opens the socket at `url` (`ws://host/api/v1/sync`), signs in, and
    /// connects the engine with every document it holds.
    pub async fn connect(
        url: &str,
        token: &str,
        device: &str,
        engine: Engine,
    ) -> Result<Client, ClientError> {
        Ok(Client::attach(Client::open(url, token, device).await?, engine).await)
    }

    /// Opens the socket and signs in, without an engine yet: a refusal leaves
    /// the device's documents where they are.
    pub async fn open(url: &str, token: &str, device: &str) -> Result<SignedIn, ClientError> {
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(crate::sync::READ_BUFFER_BYTES);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        let hello = serde_json::json!({ "access_token": token, "device_id": device });
        ws.send(Message::Text(hello.to_string().into())).await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"ready\":true") => Ok(SignedIn(ws)),
            Some(Ok(Message::Close(Some(f)))) => Err(ClientError::Closed {
                code: f.code.into(),
                reason: f.reason.to_string(),
            }),
            other => Err(ClientError::Hello(format!("{other:?}"))),
        }
    }

    /// Connects an engine over a signed-in socket, sharing every document it
    /// holds. A socket that breaks at once shows at the next exchange (whose
    /// error hands the caller the client, and with it the engine, back).
    pub async fn attach(socket: SignedIn, mut engine: Engine) -> Client {
        engine.set_limits(crate::sync::socket_limits(engine.limits().clone()));
        let docs: Vec<DocumentId> = engine.doc_ids().copied().collect();
        let fx = engine.handle(
            now(),
            Input::Connected {
                peer: SERVER,
                author: None,
                docs,
            },
        );
        let mut client = Client {
            engine,
            ws: socket.0,
            rejections: Vec::new(),
            bytes: (0, 0),
            frames: (0, 0),
        };
        if let Err(e) = client.carry_out(fx).await {
            tracing::debug!(cause = %e, "the socket broke as it opened");
        }
        client
    }

    /// Makes an edit (checked by the same rules as the server) and sends it.
    pub async fn edit(
        &mut self,
        doc: DocumentId,
        edit: &Edit,
        author: &Author,
    ) -> Result<(), ClientError> {
        let fx = self
            .engine
            .edit(now(), doc, edit, author)
            .map_err(ClientError::Refused)?;
        self.carry_out(fx).await
    }

    /// Carries out the engine's effects: frames go out, storage is confirmed at once.
    pub async fn carry_out(&mut self, effects: Vec<Effect>) -> Result<(), ClientError> {
        let mut queue = effects;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for effect in queue {
                match effect {
                    Effect::Send { bytes, .. } => {
                        self.bytes.0 += bytes.len() as u64;
                        self.frames.0 += 1;
                        if let Err(e) = self.ws.send(Message::Binary(bytes.into())).await {
                            return Err(self.why_closed(e).await);
                        }
                    }
                    Effect::Store { ticket, .. }
                    | Effect::Replace { ticket, .. }
                    | Effect::Quarantine { ticket, .. } => {
                        next.extend(self.engine.handle(now(), Input::Stored { ticket }));
                    }
                    Effect::Notify(n @ Notice::Rejected { .. }) => self.rejections.push(n),
                    Effect::Notify(_) => {}
                }
            }
            queue = next;
        }
        Ok(())
    }

    /// After a failed send: the server may have closed the socket with a
    /// reason that is still waiting to be read.
    async fn why_closed(&mut self, e: tokio_tungstenite::tungstenite::Error) -> ClientError {
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_millis(200), self.ws.next()).await
        {
            if let Message::Close(Some(f)) = msg {
                return ClientError::Closed {
                    code: f.code.into(),
                    reason: f.reason.to_string(),
                };
            }
        }
        e.into()
    }

    /// Exchanges frames until `done` holds or `within` passes; true if it held.
    pub async fn run_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&Client) -> bool,
    ) -> Result<bool, ClientError> {
        let deadline = Instant::now() + within;
        let mut next_tick = Instant::now() + TICK;
        loop {
            if done(self) {
                return Ok(true);
            }
            let now_i = Instant::now();
            if now_i >= deadline {
                return Ok(false);
            }
            if now_i >= next_tick {
                let fx = self.engine.handle(now(), Input::Tick);
                self.carry_out(fx).await?;
                next_tick = now_i + TICK;
            }
            let wait = next_tick
                .min(deadline)
                .saturating_duration_since(Instant::now());
            match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => {}
                Ok(Some(Ok(Message::Binary(bytes)))) => {
                    self.bytes.1 += bytes.len() as u64;
                    self.frames.1 += 1;
                    let fx = self.engine.handle(
                        now(),
                        Input::Received {
                            peer: SERVER,
                            bytes: bytes.to_vec(),
                        },
                    );
                    self.carry_out(fx).await?;
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f: CloseFrame| {
                        (f.code.into(), f.reason.to_string())
                    });
                    return Err(ClientError::Closed { code, reason });
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(None) => {
                    return Err(ClientError::Closed {
                        code: 1006,
                        reason: "the connection dropped".into(),
                    });
                }
            }
        }
    }

    /// Whether the server holds exactly this device's heads of every document it holds.
    pub fn in_sync(&self) -> bool {
        self.engine
            .doc_ids()
            .all(|d| self.engine.in_sync(SERVER, d))
    }

    /// Syncs until in sync (or `within` passes).
    pub async fn settle(&mut self, within: Duration) -> Result<bool, ClientError> {
        self.run_until(within, Client::in_sync).await
    }

    /// Sends raw bytes (a test's malformed or oversized frame).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        match self.ws.send(Message::Binary(bytes.into())).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.why_closed(e).await),
        }
    }

    /// Closes the socket; the engine (the device's documents) lives on, offline.
    pub async fn disconnect(mut self) -> Engine {
        let _ = self.ws.close(None).await;
        let mut engine = self.engine;
        let _ = engine.handle(now(), Input::Disconnected { peer: SERVER });
        engine
    }
}
