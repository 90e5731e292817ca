//! Sync over WebSockets (DESIGN §5): the server's driver of sync-core's engine.
//!
//! - [`socket`]: `GET /api/v1/sync`. The origin is checked before the upgrade;
//!   the first frame authenticates (access token and device id) within a few
//!   seconds; then binary frames carry sync-core envelopes both ways.
//! - [`hub`]: one thread owns the [`Engine`](sync_core::engine::Engine) and
//!   carries out its effects: it loads documents on demand, hands accepted
//!   changes to the writer and sends frames to sockets.
//! - [`writer`]: commits changes, receipts, projection rows and quarantined
//!   batches in batched transactions; only after the commit does the hub learn
//!   the changes are stored, and only then are their heads advertised.
//! - [`sweep`]: every few seconds, rights are read again from the database:
//!   revoked sessions and devices are disconnected, and each connection's set
//!   of documents grows or shrinks with its user's rights.
//! - [`notify`]: on PostgreSQL, changes stored by another `sqm serve` process
//!   reach the devices connected to this one (LISTEN/NOTIFY).

pub mod hub;
pub mod notify;
pub mod socket;
pub mod sweep;
pub mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sync_core::engine::{Limits as EngineLimits, PeerId};
use tokio::sync::mpsc;

use crate::db::Db;
use crate::http::metrics::Metrics;
use hub::HubMsg;

/// What a sync socket reads into at once (both ends). The WebSocket library
/// zero-fills this much before every read and keeps it per connection, so its
/// default of 128 KiB cost 200 connections 25 MiB and zeroed 128 KiB for a
/// frame of a few hundred bytes; a larger frame still reserves its own length.
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Documents kept loaded at most, by default (`sqm serve --hot-documents`).
/// Through a mass reconnect of 1,200 open audits, 400 places keep the
/// server's memory under 64 KiB per open document, with no slower
/// convergence than 1,000 (README, "Performance").
pub const HOT_DOCUMENTS: u64 = 400;

/// The limits and timings of sync.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// Largest WebSocket message, in bytes.
    pub max_frame_bytes: usize,
    /// Time a new socket has to authenticate.
    pub auth_timeout: Duration,
    /// Sockets one user may hold open at once.
    pub max_connections_per_user: usize,
    /// Changes one user may have stored per second, sustained.
    pub changes_per_second: f64,
    /// Changes one user may have stored at once (a day's offline work).
    pub change_burst: f64,
    /// How often rights are read again (revocation takes at most this long).
    pub sweep_interval: Duration,
    /// How often the engine resends what got no answer.
    pub tick_interval: Duration,
    /// The engine's limits per connection.
    pub engine: EngineLimits,
    /// Frames waiting to be written to one socket before it is dropped as too slow.
    pub outbox_frames: usize,
    /// A loaded document every connection is in sync with is kept saved
    /// (cold) once nothing touched it for this long.
    pub cool_after: Duration,
    /// How long the projector keeps a cold audit's report-row view, so that
    /// its next batch costs a read of what it wrote rather than of the whole
    /// audit (a view is about 16 KiB; the audit saved a few).
    pub cold_view_for: Duration,
    /// Cold audits whose views are kept at most (those cooled longest ago
    /// lose theirs first): by default half as many as may be loaded, 3 to
    /// 4 MiB, so that the memory a mass reconnect needs stays bounded.
    pub cold_views: usize,
    /// Documents kept loaded at most: past this, the least recently touched
    /// of those in sync go cold at once. Documents still syncing stay loaded,
    /// and a frame that would load one more waits (see `defer_for`).
    pub hot_documents: usize,
    /// How long a frame about a cold document waits, at most, for a place
    /// among the `hot_documents` before it is taken anyway (so that peers
    /// that never finish syncing cannot hold the others back for ever).
    pub defer_for: Duration,
    /// Bytes of frames that may wait for a place at once; past this, the
    /// document waiting longest is loaded at once.
    pub deferred_bytes: usize,
    /// Bytes of one connection's frames received and not yet handled by the
    /// hub (queued, waiting for a document to load or for a place); past
    /// this the connection is closed ([`close::QUEUE_FULL`]) and its queued
    /// frames are dropped unread, so that one sender cannot hold the hub.
    pub inbound_bytes: usize,
    /// Bytes of refused changes kept in quarantine per user; past this,
    /// more refused changes are not kept: the connection is closed
    /// ([`close::QUARANTINE_FULL`]) and the device keeps them.
    pub quarantine_bytes_per_user: u64,
    /// Faults put in the writer's commits by tests; `None` in a server.
    pub faults: Option<Arc<dyn writer::CommitFaults>>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_frame_bytes: 4 << 20,
            auth_timeout: Duration::from_secs(5),
            max_connections_per_user: 4,
            changes_per_second: 500.0,
            change_burst: 20_000.0,
            sweep_interval: Duration::from_secs(10),
            tick_interval: Duration::from_millis(250),
            engine: socket_limits(EngineLimits::default()),
            outbox_frames: 4096,
            cool_after: Duration::from_secs(60),
            cold_view_for: Duration::from_secs(60),
            cold_views: HOT_DOCUMENTS as usize / 2,
            hot_documents: HOT_DOCUMENTS as usize,
            defer_for: Duration::from_secs(5),
            deferred_bytes: 64 << 20,
            inbound_bytes: 16 << 20,
            quarantine_bytes_per_user: 64 << 20,
            faults: None,
        }
    }
}

/// The engine's limits over a WebSocket: a socket loses no message while it
/// stays up (a drop closes it, and sync starts afresh on the next one), so a
/// resend is only a safety net, backing off while the peer stays silent. Its
/// first wait is long: a server busy with every tablet's day at once can be
/// silent towards one tablet for several seconds, and a resend then (a whole
/// day of work again) only adds to what it is busy with.
pub fn socket_limits(limits: EngineLimits) -> EngineLimits {
    EngineLimits {
        retry_after_ms: 30_000,
        max_retry_after_ms: 120_000,
        retry_when_peer_quiet: true,
        ..limits
    }
}

/// Application close codes of the sync socket.
pub mod close {
    /// The first frame was not an authentication frame.
    pub const BAD_HELLO: u16 = 4400;
    /// Not signed in, or signed out, disabled or revoked since.
    pub const UNAUTHORIZED: u16 = 4401;
    /// No authentication frame in time.
    pub const AUTH_TIMEOUT: u16 = 4408;
    /// Too many sockets for this user.
    pub const TOO_MANY_CONNECTIONS: u16 = 4409;
    /// Too many changes per second for this user.
    pub const RATE_LIMITED: u16 = 4429;
    /// The socket could not keep up with what it was sent.
    pub const TOO_SLOW: u16 = 4503;
    /// It sent more than the server takes in before handling it.
    pub const QUEUE_FULL: u16 = 4413;
    /// The user's refused changes kept in quarantine reached their limit.
    pub const QUARANTINE_FULL: u16 = 4507;
    /// A message the server failed to read (WebSocket's own code).
    pub const UNREADABLE: u16 = 1007;
    /// A message over the size limit (WebSocket's own code).
    pub const TOO_BIG: u16 = 1009;
    /// The server is going away.
    pub const GOING_AWAY: u16 = 1001;
}

/// What one connection has sent that the hub has not handled yet.
#[derive(Debug, Default)]
pub struct InboundQueue {
    bytes: AtomicUsize,
    closed: AtomicBool,
}

impl InboundQueue {
    /// Counts a frame in; `None` once over `limit` (the connection is then
    /// closed, and what it queued is dropped unread).
    pub(crate) fn admit(self: &Arc<Self>, bytes: Vec<u8>, limit: usize) -> Option<InFrame> {
        let len = bytes.len();
        let held = self.bytes.fetch_add(len, Ordering::AcqRel) + len;
        let frame = InFrame {
            bytes,
            queue: self.clone(),
            len,
        };
        if held > limit {
            self.closed.store(true, Ordering::Release);
            return None;
        }
        Some(frame)
    }

    /// Whether the connection was closed for sending too much.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A frame from a socket, counted in its connection's [`InboundQueue`]
/// until it is handled or dropped.
#[derive(Debug)]
pub struct InFrame {
    bytes: Vec<u8>,
    queue: Arc<InboundQueue>,
    len: usize,
}

impl InFrame {
    /// The frame's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether its connection was closed for sending too much (drop it unread).
    pub(crate) fn dropped(&self) -> bool {
        self.queue.is_closed()
    }

    /// The bytes, to hand on; the frame stays counted until `done` is dropped.
    pub(crate) fn take(mut self) -> (Vec<u8>, InFrame) {
        (std::mem::take(&mut self.bytes), self)
    }
}

impl Drop for InFrame {
    fn drop(&mut self) {
        self.queue.bytes.fetch_sub(self.len, Ordering::AcqRel);
    }
}

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub struct PeerMeta {
    /// The user.
    pub username: String,
    /// The device.
    pub device: String,
    /// The login session.
    pub session: String,
}

/// The running sync service, shared by the sockets.
#[derive(Clone, Debug)]
pub struct SyncHandle {
    /// This server's id among several on one PostgreSQL.
    pub id: Arc<str>,
    hub: mpsc::UnboundedSender<HubMsg>,
    next_peer: Arc<AtomicU64>,
    peers: Arc<Mutex<HashMap<PeerId, PeerMeta>>>,
    /// The configuration.
    pub config: Arc<SyncConfig>,
    /// The database.
    pub db: Db,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl SyncHandle {
    /// Starts the hub, the writer, the timers and (on PostgreSQL) the listener.
    pub fn start(db: Db, config: SyncConfig, metrics: Arc<Metrics>) -> SyncHandle {
        let (hub_tx, hub_rx) = mpsc::unbounded_channel();
        let handle = SyncHandle {
            id: notify::new_server_id().into(),
            hub: hub_tx.clone(),
            next_peer: Arc::new(AtomicU64::new(1)),
            peers: Arc::default(),
            config: Arc::new(config),
            db: db.clone(),
            metrics: metrics.clone(),
        };
        let writer = writer::start(
            db.clone(),
            hub_tx.clone(),
            metrics.clone(),
            handle.id.clone(),
            handle.config.faults.clone(),
        );
        hub::start(handle.clone(), hub_rx, writer);
        let ticker = hub_tx.clone();
        let every = handle.config.tick_interval;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                if ticker.send(HubMsg::Tick).is_err() {
                    return;
                }
            }
        });
        let rules = handle.clone();
        tokio::spawn(async move { rules.reload_due_rules().await });
        tokio::spawn(sweep::run(handle.clone()));
        notify::start(handle.clone());
        handle
    }

    /// Reads the units' due-date rules again and hands them to the hub,
    /// which projects NCs under them (at start, after a change through the
    /// API, and on every sweep, which carries a change made on another
    /// server).
    pub async fn reload_due_rules(&self) {
        match crate::db::reference::due_rules(self.db.pool()).await {
            Ok(rules) => self.send(HubMsg::DueRules(rules)),
            Err(e) => tracing::warn!(cause = %e, "cannot read the units' due-date rules"),
        }
    }

    /// A new connection number.
    pub fn next_peer(&self) -> PeerId {
        self.next_peer.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn send(&self, msg: HubMsg) {
        // The hub lives as long as the process; a send can only fail at shutdown.
        let _ = self.hub.send(msg);
    }

    /// Records a connection; false if its user already holds the most allowed.
    pub(crate) fn register(&self, peer: PeerId, meta: PeerMeta) -> bool {
        let Ok(mut peers) = self.peers.lock() else {
            return false;
        };
        let held = peers
            .values()
            .filter(|m| m.username == meta.username)
            .count();
        if held >= self.config.max_connections_per_user {
            return false;
        }
        peers.insert(peer, meta);
        self.metrics
            .gauge("sqm_sync_connections", "Sync sockets open now.", 1);
        true
    }

    pub(crate) fn unregister(&self, peer: PeerId) {
        if let Ok(mut peers) = self.peers.lock()
            && peers.remove(&peer).is_some()
        {
            self.metrics
                .gauge("sqm_sync_connections", "Sync sockets open now.", -1);
        }
    }

    /// Reads the rights of `username`'s open connections again, now (after a
    /// change to them: a new actor id, a role, a team). The hub hears of it
    /// before anything the user sends after this returns.
    pub async fn refresh_user(&self, username: &str) {
        sweep::sweep_all(self, Some(username)).await;
    }

    /// Reads every connection's rights again, in the background (after a
    /// change to reference data that may concern many users).
    pub fn refresh_all(&self) {
        let sync = self.clone();
        tokio::spawn(async move { sweep::sweep_all(&sync, None).await });
    }

    /// Holds the hub until the returned value is dropped: what arrives
    /// meanwhile queues (tests: fill a connection's queue in a known order).
    #[doc(hidden)]
    pub fn hold_hub(&self) -> std::sync::mpsc::Sender<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send(HubMsg::Hold(rx));
        tx
    }

    /// Every open connection.
    pub fn connections(&self) -> Vec<(PeerId, PeerMeta)> {
        self.peers
            .lock()
            .map(|p| p.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }
}
