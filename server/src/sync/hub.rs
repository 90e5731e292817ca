//! The hub: one thread that owns sync-core's engine and carries out its
//! effects. Everything that touches the engine arrives as a [`HubMsg`], so the
//! engine needs no lock; database reads run as tasks that answer with a
//! message, so the hub never waits on I/O.
//!
//! A document is loaded before anything is shared or received for it; frames
//! and shares for a document being loaded wait for it. A connection's own
//! frames wait until all its documents are loaded and it is connected.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use sync_core::automerge::Automerge;
use sync_core::date::{Date, Timestamp};
use sync_core::engine::{Effect, Engine, Input, Notice, PeerId, Saved, Side};
use sync_core::envelope::Envelope;
use sync_core::ids::{DocumentId, UnitCode};
use sync_core::nc::DueRules;
use sync_core::permissions::{Author, DocContext};
use sync_core::validate::Touched;
use tokio::sync::mpsc;

use super::writer::{Numbered, SET_ASIDE_MESSAGE, STORE_FAILED, SetAside, StoreJob, WriterJob};
use super::{InFrame, PeerMeta, SyncHandle, close};
use crate::db::documents::{self, Origin, Quarantined};
use crate::db::now_ms;
use crate::projection::Projector;

/// What the hub is told.
#[derive(Debug)]
pub enum HubMsg {
    /// An authenticated socket: share `docs` with it once they are loaded.
    Connect {
        /// The connection.
        peer: PeerId,
        /// Who is on it.
        meta: PeerMeta,
        /// Their rights now.
        author: Box<Author>,
        /// The documents they may see.
        docs: Vec<DocumentId>,
        /// Where its frames go.
        out: mpsc::Sender<Outbound>,
        /// Bytes of the user's refused changes kept in quarantine already.
        quarantined: u64,
    },
    /// A binary frame from a socket.
    Frame {
        /// The connection.
        peer: PeerId,
        /// The frame.
        frame: InFrame,
    },
    /// The socket closed.
    Disconnect {
        /// The connection.
        peer: PeerId,
    },
    /// A document was read from the database (`None`: there is no such document).
    Loaded {
        /// The document.
        doc: DocumentId,
        /// Whether it was read to be held loaded (not saved).
        hot: bool,
        /// It, or why it could not be read.
        result: Result<Option<Read>, String>,
    },
    /// The writer committed these tickets, and set these stores aside
    /// (the database refused them: their changes were quarantined).
    Stored {
        /// The tickets.
        tickets: Vec<u64>,
        /// The stores set aside.
        set_aside: Vec<SetAside>,
        /// The server's changes numbering new NCs, committed with them.
        numbered: Vec<Numbered>,
    },
    /// Hold the hub until the sender is dropped (tests: fill queues in a
    /// known order).
    Hold(std::sync::mpsc::Receiver<()>),
    /// Time passed.
    Tick,
    /// The units' due-date rules, read again.
    DueRules(BTreeMap<UnitCode, DueRules>),
    /// A connection's rights as read again (the sweep).
    Access {
        /// The connection.
        peer: PeerId,
        /// The user's rights now.
        author: Box<Author>,
        /// The documents the user may see now.
        visible: Vec<DocumentId>,
    },
    /// Close a connection.
    Close {
        /// The connection.
        peer: PeerId,
        /// The close code.
        code: u16,
        /// Why, for the person.
        reason: String,
    },
    /// A document was stored by another server process.
    External {
        /// The document.
        doc: DocumentId,
    },
    /// Documents stored while this process heard no notices from the
    /// others: those it holds bring in what they lack.
    CatchUp {
        /// The documents stored meanwhile (held here or not).
        docs: Vec<DocumentId>,
    },
    /// What another server process stored that this one lacks.
    ExternalChanges {
        /// The document.
        doc: DocumentId,
        /// The changes' bytes.
        changes: Vec<Vec<u8>>,
    },
}

/// A document read from the database.
#[derive(Debug)]
pub enum Read {
    /// Loaded, to be held loaded.
    Loaded(Box<Automerge>),
    /// Saved by the reading task, to be held cold: as many documents as may
    /// be are loaded already.
    Saved(Saved),
}

/// What a socket is sent.
#[derive(Debug)]
pub enum Outbound {
    /// A binary frame.
    Frame(Vec<u8>),
    /// Close with this code and reason.
    Close(u16, String),
}

/// Something waiting for a document to be loaded.
#[derive(Debug)]
enum Waiting {
    Frame(PeerId, InFrame),
    Share(PeerId),
    Connect(PeerId),
    /// Stored elsewhere: bring in what this server lacks.
    External,
}

#[derive(Debug)]
struct PeerState {
    meta: PeerMeta,
    author: Author,
    out: mpsc::Sender<Outbound>,
    /// Documents still loading before the engine hears of this connection.
    awaiting: usize,
    docs: Vec<DocumentId>,
    /// Frames that came before the connection was fully set up.
    early: Vec<InFrame>,
    connected: bool,
    /// The day and the documents (sorted) of the last rights read for it.
    swept: Option<(Date, Vec<DocumentId>)>,
}

/// Changes a user may have stored, refilled over time.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// An [`Effect::Store`], taken apart.
struct StoreEffect {
    ticket: u64,
    doc: DocumentId,
    peer: Option<PeerId>,
    hashes: Vec<sync_core::automerge::ChangeHash>,
    changes: Vec<Vec<u8>>,
    touched: Touched,
    base: Vec<sync_core::automerge::ChangeHash>,
}

struct Hub {
    sync: SyncHandle,
    engine: Engine,
    rt: tokio::runtime::Handle,
    me: mpsc::UnboundedSender<HubMsg>,
    writer: mpsc::UnboundedSender<WriterJob>,
    peers: HashMap<PeerId, PeerState>,
    loading: HashMap<DocumentId, Vec<Waiting>>,
    /// Documents a connection created that are not stored yet, and which
    /// connection (forgotten when it goes, or the document is dropped).
    created: HashMap<DocumentId, PeerId>,
    /// Tickets of the first store of a created document.
    first_stores: HashMap<u64, DocumentId>,
    buckets: HashMap<String, Bucket>,
    /// Documents that may have no connection left (unloaded on the next tick).
    maybe_idle: HashSet<DocumentId>,
    /// The units' due-date rules (a unit not listed follows the defaults).
    rules: BTreeMap<UnitCode, DueRules>,
    /// Report rows of the loaded documents, kept up to date batch by batch.
    projector: Projector,
    /// When each loaded document was last touched (a frame, a store).
    touched: HashMap<DocumentId, Instant>,
    /// Frames about cold documents waiting for a place among the loaded
    /// ones ([`SyncConfig::hot_documents`]), by document, in arrival order.
    ///
    /// [`SyncConfig::hot_documents`]: super::SyncConfig::hot_documents
    deferred: HashMap<DocumentId, Vec<(PeerId, InFrame)>>,
    /// The documents waiting, longest first, and since when (a document
    /// whose frames went ahead meanwhile stays listed until its turn).
    deferred_order: VecDeque<(DocumentId, Instant)>,
    /// Bytes of the frames waiting.
    deferred_len: usize,
    /// Most documents loaded at once since the server started.
    most_hot: usize,
    /// Loaded documents left in sync by their last frame, the longest ago
    /// first: the first to go cold when a waiting frame needs a place.
    settled: VecDeque<DocumentId>,
    /// Documents being read from the database to be held loaded.
    loading_hot: usize,
    /// Cold documents whose report-row view the projector keeps, and when
    /// each went cold (see [`Hub::keep_cold_view`]).
    cold_views: HashMap<DocumentId, Instant>,
    /// The same, in the order they went cold.
    cold_views_order: VecDeque<(DocumentId, Instant)>,
    /// Bytes of refused changes kept in quarantine, by user (read from the
    /// database when a user connects, counted on since).
    quarantined: HashMap<String, u64>,
    /// Failed reads of documents, by document: read again after a wait
    /// that grows with them.
    read_failures: HashMap<DocumentId, u32>,
}

/// Starts the hub on a thread of its own.
pub fn start(
    sync: SyncHandle,
    mut rx: mpsc::UnboundedReceiver<HubMsg>,
    writer: mpsc::UnboundedSender<WriterJob>,
) {
    let rt = tokio::runtime::Handle::current();
    let me = sync.hub.clone();
    let engine = Engine::with_limits(Side::Server, sync.config.engine.clone());
    let mut hub = Hub {
        sync,
        engine,
        rt,
        me,
        writer,
        peers: HashMap::new(),
        loading: HashMap::new(),
        created: HashMap::new(),
        first_stores: HashMap::new(),
        buckets: HashMap::new(),
        maybe_idle: HashSet::new(),
        rules: BTreeMap::new(),
        projector: Projector::default(),
        touched: HashMap::new(),
        deferred: HashMap::new(),
        deferred_order: VecDeque::new(),
        deferred_len: 0,
        most_hot: 0,
        settled: VecDeque::new(),
        loading_hot: 0,
        cold_views: HashMap::new(),
        cold_views_order: VecDeque::new(),
        quarantined: HashMap::new(),
        read_failures: HashMap::new(),
    };
    let spawned = std::thread::Builder::new()
        .name("sqm-sync-hub".into())
        .spawn(move || {
            while let Some(msg) = rx.blocking_recv() {
                hub.handle(msg);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(cause = %e, "cannot start the sync hub thread");
    }
}

fn now() -> Timestamp {
    Timestamp(now_ms())
}

impl Hub {
    fn handle(&mut self, msg: HubMsg) {
        match msg {
            HubMsg::Connect {
                peer,
                meta,
                author,
                docs,
                out,
                quarantined,
            } => {
                let q = self.quarantined.entry(meta.username.clone()).or_default();
                *q = (*q).max(quarantined);
                self.connect(peer, meta, *author, docs, out)
            }
            HubMsg::Frame { peer, frame } => self.frame(peer, frame),
            HubMsg::Disconnect { peer } => self.disconnect(peer),
            HubMsg::Loaded { doc, hot, result } => {
                if hot {
                    self.loading_hot = self.loading_hot.saturating_sub(1);
                }
                self.loaded(doc, result);
            }
            HubMsg::Stored {
                tickets,
                set_aside,
                numbered,
            } => {
                for ticket in tickets {
                    let fx = self.engine.handle(now(), Input::Stored { ticket });
                    self.carry_out(fx);
                    if let Some(doc) = self.first_stores.remove(&ticket) {
                        self.created.remove(&doc);
                        self.fan_out_new(doc);
                    }
                }
                for s in set_aside {
                    self.set_aside(s);
                }
                // Stored already: passed to every device holding the NC.
                for n in numbered {
                    let fx = self.engine.handle(
                        now(),
                        Input::External {
                            doc: n.doc,
                            changes: vec![n.change],
                        },
                    );
                    self.carry_out(fx);
                }
            }
            HubMsg::Hold(until) => {
                let _ = until.recv();
            }
            HubMsg::Tick => {
                let fx = self.engine.handle(now(), Input::Tick);
                self.carry_out(fx);
                let idle: Vec<DocumentId> = self.maybe_idle.drain().collect();
                let awaited: HashSet<DocumentId> = self
                    .peers
                    .values()
                    .filter(|p| !p.connected)
                    .flat_map(|p| p.docs.iter().copied())
                    .collect();
                for doc in idle {
                    if awaited.contains(&doc) {
                        // A connection being set up is about to open it.
                        self.maybe_idle.insert(doc);
                        continue;
                    }
                    if self.loading.contains_key(&doc) {
                        continue;
                    }
                    if self.engine.evict(&doc) {
                        self.projector.forget(&doc);
                        self.touched.remove(&doc);
                        self.created.remove(&doc);
                    } else if self.engine.doc_peers(&doc).is_empty() {
                        // Still storing: try again on the next tick.
                        self.maybe_idle.insert(doc);
                    }
                }
                let held = self.engine.pending_changes();
                self.sync.metrics.set_gauge(
                    "sqm_sync_pending_changes",
                    "Changes held in memory waiting for their dependencies.",
                    i64::try_from(held).unwrap_or(i64::MAX),
                );
                self.cool_quiet();
                self.drop_cold_views();
                self.admit();
                self.release_overdue();
                self.note_hot();
                self.sync.metrics.set_gauge(
                    "sqm_sync_loaded_documents_most",
                    "Most documents held in memory loaded at once since the server started.",
                    i64::try_from(self.most_hot).unwrap_or(i64::MAX),
                );
                self.sync.metrics.set_gauge(
                    "sqm_sync_deferred_documents",
                    "Cold documents whose frames wait for a place among the loaded ones.",
                    i64::try_from(self.deferred.len()).unwrap_or(i64::MAX),
                );
                let loaded = self.engine.hot_count();
                self.sync.metrics.set_gauge(
                    "sqm_sync_loaded_documents",
                    "Documents held in memory, loaded.",
                    i64::try_from(loaded).unwrap_or(i64::MAX),
                );
                let cold = self.engine.cold_count();
                self.sync.metrics.set_gauge(
                    "sqm_sync_cold_documents",
                    "Documents held in memory saved (cold): every connection is in sync with them.",
                    i64::try_from(cold).unwrap_or(i64::MAX),
                );
                self.sync.metrics.set_gauge(
                    "sqm_sync_documents_being_created",
                    "Documents a connection created whose first changes are not stored yet.",
                    i64::try_from(self.created.len()).unwrap_or(i64::MAX),
                );
                self.sync.metrics.set_gauge(
                    "sqm_sync_report_views",
                    "Audits whose report rows are kept up to date from what each batch wrote (loaded ones, and cold ones for a while).",
                    i64::try_from(self.projector.views()).unwrap_or(i64::MAX),
                );
            }
            HubMsg::Access {
                peer,
                author,
                visible,
            } => self.access(peer, *author, visible),
            HubMsg::Close { peer, code, reason } => {
                if let Some(p) = self.peers.get(&peer) {
                    let _ = p.out.try_send(Outbound::Close(code, reason));
                }
            }
            HubMsg::External { doc } => self.ensure(doc, Waiting::External),
            HubMsg::CatchUp { docs } => {
                for doc in docs {
                    if self.engine.holds(&doc) {
                        self.ensure(doc, Waiting::External);
                    }
                }
            }
            HubMsg::DueRules(rules) => self.rules = rules,
            HubMsg::ExternalChanges { doc, changes } => {
                let fx = self.engine.handle(now(), Input::External { doc, changes });
                self.carry_out(fx);
            }
        }
    }

    fn connect(
        &mut self,
        peer: PeerId,
        meta: PeerMeta,
        author: Author,
        docs: Vec<DocumentId>,
        out: mpsc::Sender<Outbound>,
    ) {
        self.peers.insert(
            peer,
            PeerState {
                meta,
                author,
                out,
                awaiting: docs.len() + 1,
                docs: docs.clone(),
                early: Vec::new(),
                connected: false,
                swept: None,
            },
        );
        for doc in docs {
            self.ensure(doc, Waiting::Connect(peer));
        }
        self.connect_step(peer);
    }

    /// One more document of a connection is loaded; at the last, connect it.
    fn connect_step(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.awaiting = p.awaiting.saturating_sub(1);
        if p.awaiting > 0 || p.connected {
            return;
        }
        p.connected = true;
        let (loaded, unloaded): (Vec<DocumentId>, Vec<DocumentId>) =
            p.docs.iter().partition(|d| self.engine.holds(d));
        let author = Some(p.author.clone());
        let early = std::mem::take(&mut p.early);
        let fx = self.engine.handle(
            now(),
            Input::Connected {
                peer,
                author,
                docs: loaded,
            },
        );
        self.carry_out(fx);
        // Unloaded again before the last one came in: load and open them now.
        for doc in unloaded {
            self.ensure(doc, Waiting::Share(peer));
        }
        for bytes in early {
            self.frame(peer, bytes);
        }
    }

    /// Runs `then` once `doc` is loaded (at once if it is).
    fn ensure(&mut self, doc: DocumentId, then: Waiting) {
        if self.engine.holds(&doc) && !self.loading.contains_key(&doc) {
            self.resume(doc, then);
            return;
        }
        let waiting = self.loading.entry(doc).or_default();
        // A document whose read keeps failing is asked for again by every
        // sweep: one share per connection is enough.
        let again = matches!(&then, Waiting::Share(p) if waiting.iter().any(|w| matches!(w, Waiting::Share(q) if q == p)));
        if !again {
            waiting.push(then);
        }
        if waiting.len() > 1 || again {
            return;
        }
        // Past the documents that may be loaded, the reading task saves it
        // (a few KiB) so that no more than that many are ever loaded here,
        // even while the hub works through a queue of documents read.
        self.read(doc, std::time::Duration::ZERO);
    }

    /// Reads a document from the database, after `wait`; the hub hears of
    /// it as [`HubMsg::Loaded`].
    fn read(&mut self, doc: DocumentId, wait: std::time::Duration) {
        let saved = self.engine.hot_count() + self.loading_hot >= self.sync.config.hot_documents;
        if !saved {
            self.loading_hot += 1;
        }
        let db = self.sync.db.clone();
        let me = self.me.clone();
        self.rt.spawn(async move {
            tokio::time::sleep(wait).await;
            let result = match documents::load(&db, &doc).await {
                Ok(Some(am)) if saved => match Saved::of(&am) {
                    Some(s) => Ok(Some(Read::Saved(s))),
                    None => Ok(Some(Read::Loaded(Box::new(am)))),
                },
                Ok(Some(am)) => Ok(Some(Read::Loaded(Box::new(am)))),
                Ok(None) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            let _ = me.send(HubMsg::Loaded {
                doc,
                hot: !saved,
                result,
            });
        });
    }

    fn loaded(&mut self, doc: DocumentId, result: Result<Option<Read>, String>) {
        match result {
            Ok(Some(Read::Saved(saved))) => {
                if !self.engine.holds(&doc) {
                    self.engine.insert_saved(doc, saved);
                    self.maybe_idle.insert(doc);
                }
            }
            Ok(Some(Read::Loaded(am))) => {
                if !self.engine.holds(&doc) {
                    self.engine.insert(doc, *am);
                    self.maybe_idle.insert(doc);
                    // Past the limit, it is kept saved until a frame about it
                    // finds a place (shared with nobody yet: nothing to wait for).
                    let over = self.engine.hot_count() > self.sync.config.hot_documents;
                    if !(over && self.engine.cool(&doc)) {
                        self.touched.insert(doc, Instant::now());
                    }
                    self.note_hot();
                }
            }
            Ok(None) => {}
            Err(cause) => {
                // Failing closed: what waits for it keeps waiting (nothing
                // is taken for a new document, nobody is told anything), and
                // it is read again after a wait. Connections being set up go
                // ahead without it; it opens on them once read.
                let failures = self.read_failures.entry(doc).or_default();
                *failures += 1;
                let wait = std::time::Duration::from_millis(250)
                    .saturating_mul(1 << (*failures).min(7))
                    .min(std::time::Duration::from_secs(30));
                tracing::error!(%doc, %cause, failures = *failures, "cannot load a document; reading it again later");
                let waiting = self.loading.entry(doc).or_default();
                let connecting: Vec<PeerId> = waiting
                    .iter()
                    .filter_map(|w| match w {
                        Waiting::Connect(p) => Some(*p),
                        _ => None,
                    })
                    .collect();
                waiting.retain(|w| !matches!(w, Waiting::Connect(_)));
                self.read(doc, wait);
                for peer in connecting {
                    self.connect_step(peer);
                }
                return;
            }
        }
        self.read_failures.remove(&doc);
        for then in self.loading.remove(&doc).unwrap_or_default() {
            self.resume(doc, then);
        }
    }

    fn resume(&mut self, doc: DocumentId, then: Waiting) {
        match then {
            Waiting::Frame(peer, frame) => self.hand_to_engine(peer, frame),
            Waiting::Connect(peer) => self.connect_step(peer),
            Waiting::Share(peer) => {
                if self.engine.holds(&doc) {
                    let fx = self.engine.handle(now(), Input::Share { peer, doc });
                    self.carry_out(fx);
                }
            }
            Waiting::External => self.external(doc),
        }
    }

    fn frame(&mut self, peer: PeerId, frame: InFrame) {
        if frame.dropped() {
            return self.drop_frame();
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        self.sync.metrics.count(
            "sqm_sync_bytes_in_total",
            "Bytes of sync frames received.",
            frame.bytes().len() as u64,
        );
        if !p.connected {
            p.early.push(frame);
            return;
        }
        match Envelope::peek_doc(frame.bytes()) {
            Some(doc) if !self.engine.holds(&doc) || self.loading.contains_key(&doc) => {
                self.ensure(doc, Waiting::Frame(peer, frame));
            }
            _ => self.hand_to_engine(peer, frame),
        }
    }

    /// A frame of a connection closed for sending too much, dropped unread.
    fn drop_frame(&self) {
        self.sync.metrics.count(
            "sqm_sync_frames_dropped_total",
            "Frames of connections closed for sending more than the hub takes in, dropped unread.",
            1,
        );
    }

    /// Hands a frame to the engine, or, if it is about a cold document and
    /// as many documents as may be are loaded, keeps it until one goes cold.
    fn hand_to_engine(&mut self, peer: PeerId, frame: InFrame) {
        let Some(doc) = Envelope::peek_doc(frame.bytes()) else {
            return self.deliver(peer, frame);
        };
        if !self.engine.is_cold(&doc)
            && let Some(frames) = self.deferred.remove(&doc)
        {
            // Loaded meanwhile by something else: what waited goes first.
            for (peer, frame) in frames {
                self.deferred_len -= frame.bytes().len();
                self.deliver(peer, frame);
            }
        }
        let waits = self.deferred.contains_key(&doc)
            || (self.engine.is_cold(&doc)
                && self.engine.hot_count() >= self.sync.config.hot_documents);
        if !waits {
            self.deliver(peer, frame);
            return self.admit();
        }
        self.deferred_len += frame.bytes().len();
        self.deferred
            .entry(doc)
            .or_insert_with(|| {
                self.deferred_order.push_back((doc, Instant::now()));
                Vec::new()
            })
            .push((peer, frame));
        self.make_room();
        self.sync.metrics.count(
            "sqm_sync_frames_deferred_total",
            "Frames about cold documents that waited for a place among the loaded ones.",
            1,
        );
        // Too much waiting: the document waiting longest is loaded now.
        while self.deferred_len > self.sync.config.deferred_bytes {
            if !self.release_first() {
                break;
            }
        }
    }

    /// Makes room for the documents whose frames wait: those left in sync
    /// longest ago go cold, then the waiting frames are handed on.
    fn make_room(&mut self) {
        let limit = self.sync.config.hot_documents;
        while self.engine.hot_count() >= limit {
            let Some(doc) = self.settled.pop_front() else {
                break;
            };
            // Touched since (or gone cold already): it is no candidate.
            self.cool(doc);
        }
        self.admit();
    }

    /// Keeps a loaded document cold if nothing needs it loaded (see
    /// [`Engine::cool`]); true if it is cold now.
    fn cool(&mut self, doc: DocumentId) -> bool {
        if self.loading.contains_key(&doc) || !self.engine.cool(&doc) {
            return false;
        }
        self.keep_cold_view(doc);
        self.touched.remove(&doc);
        true
    }

    /// The projector keeps its view of a document gone cold for
    /// [`SyncConfig::cold_view_for`], and the views of at most
    /// [`SyncConfig::cold_views`] cold documents: an audit cooled to make
    /// room for others is often edited again soon, and with its view its next
    /// batch costs a read of what it wrote rather than of the whole audit.
    ///
    /// [`SyncConfig::cold_view_for`]: super::SyncConfig::cold_view_for
    /// [`SyncConfig::cold_views`]: super::SyncConfig::cold_views
    fn keep_cold_view(&mut self, doc: DocumentId) {
        let now = Instant::now();
        self.cold_views.insert(doc, now);
        self.cold_views_order.push_back((doc, now));
        self.drop_cold_views();
    }

    /// Drops the views of the documents cold for longer than
    /// [`SyncConfig::cold_view_for`], and of those cooled longest ago past
    /// [`SyncConfig::cold_views`] (their next batch reads them whole): a
    /// quiet server keeps only their saved copies and row digests.
    ///
    /// [`SyncConfig::cold_view_for`]: super::SyncConfig::cold_view_for
    /// [`SyncConfig::cold_views`]: super::SyncConfig::cold_views
    fn drop_cold_views(&mut self) {
        let (most, keep_for) = (self.sync.config.cold_views, self.sync.config.cold_view_for);
        while let Some((doc, since)) = self.cold_views_order.front().copied() {
            if self.cold_views.len() <= most && since.elapsed() < keep_for {
                return;
            }
            self.cold_views_order.pop_front();
            // Only the latest cooling of a document counts.
            if self.cold_views.get(&doc) == Some(&since) {
                self.cold_views.remove(&doc);
                // Loaded again since, the view is in use.
                if self.engine.is_cold(&doc) {
                    self.projector.drop_view(&doc);
                }
            }
        }
    }

    /// Hands the waiting frames to the engine while there is room for
    /// documents to be loaded.
    fn admit(&mut self) {
        while self.engine.hot_count() < self.sync.config.hot_documents {
            if !self.release_first() {
                return;
            }
        }
    }

    /// Hands the frames waiting longer than [`SyncConfig::defer_for`] to the engine.
    ///
    /// [`SyncConfig::defer_for`]: super::SyncConfig::defer_for
    fn release_overdue(&mut self) {
        let most = self.sync.config.defer_for;
        while self
            .deferred_order
            .front()
            .is_some_and(|(_, since)| since.elapsed() >= most)
        {
            self.release_first();
        }
    }

    /// Hands the frames of the document waiting longest to the engine (none
    /// if they went ahead already); false if no document waits.
    fn release_first(&mut self) -> bool {
        let Some((doc, _)) = self.deferred_order.pop_front() else {
            return false;
        };
        for (peer, frame) in self.deferred.remove(&doc).unwrap_or_default() {
            self.deferred_len -= frame.bytes().len();
            self.deliver(peer, frame);
        }
        true
    }

    /// Notes how many documents are loaded, for the high-water gauge.
    fn note_hot(&mut self) {
        self.most_hot = self.most_hot.max(self.engine.hot_count());
    }

    fn deliver(&mut self, peer: PeerId, frame: InFrame) {
        if frame.dropped() {
            return self.drop_frame();
        }
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let doc = Envelope::peek_doc(frame.bytes());
        if let Some(doc) = doc {
            self.touched.insert(doc, Instant::now());
        }
        // A document the connection may read but that is not open on it yet
        // (it was created, or unloaded and loaded again, while the connection
        // was being set up): open it first, so its frames are not taken as
        // writes to a document it may not see.
        if let Some(doc) = doc
            && !self.engine.is_shared(peer, &doc)
            && let Some(ctx) = self.engine.context(&doc)
            && p.author.may_read(&ctx, crate::access::today())
        {
            let fx = self.engine.handle(now(), Input::Share { peer, doc });
            self.carry_out(fx);
        }
        // The frame stays counted against its connection until handled.
        let (bytes, handled) = frame.take();
        // Automerge reads what a peer sends; should some input still make
        // it panic (sync-core measures every chunk first, so none is known
        // to), the sender's connection is closed and everyone else's sync
        // goes on: the hub thread must not die with it.
        let engine = &mut self.engine;
        let fx = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.handle(now(), Input::Received { peer, bytes })
        }));
        drop(handled);
        let Ok(fx) = fx else {
            tracing::error!(
                peer,
                ?doc,
                "a frame made the sync engine panic; closing its connection"
            );
            self.sync.metrics.count(
                "sqm_sync_frames_failed_total",
                "Frames whose handling failed inside the sync engine (their connection is closed).",
                1,
            );
            return self.close(
                peer,
                close::UNREADABLE,
                "A message could not be read.".into(),
            );
        };
        self.carry_out(fx);
        self.note_hot();
        if let Some(doc) = doc {
            self.cool_if_crowded(doc);
        }
    }

    /// Past the limit of loaded documents, or with frames waiting for a
    /// place, a document a frame left in sync with every connection goes
    /// cold at once.
    fn cool_if_crowded(&mut self, doc: DocumentId) {
        let (hot, limit) = (self.engine.hot_count(), self.sync.config.hot_documents);
        let crowded = hot > limit || (hot == limit && !self.deferred.is_empty());
        if self.loading.contains_key(&doc) || !self.engine.settled(&doc) {
            return;
        }
        if crowded && self.cool(doc) {
            return;
        }
        // A candidate for the next place needed. Stale entries (documents
        // touched or cooled since) are skipped when taken; past a bound the
        // oldest are forgotten (the tick's pass still finds them).
        self.settled.push_back(doc);
        if self.settled.len() > 2 * limit + 1024 {
            self.settled.pop_front();
        }
    }

    fn disconnect(&mut self, peer: PeerId) {
        if self.peers.remove(&peer).is_none() {
            return;
        }
        for frames in self.deferred.values_mut() {
            frames.retain(|(p, frame)| {
                let keep = *p != peer;
                if !keep {
                    self.deferred_len -= frame.bytes().len();
                }
                keep
            });
        }
        for waiting in self.loading.values_mut() {
            waiting.retain(|w| !matches!(w, Waiting::Frame(p, _) if *p == peer));
        }
        // Documents it was creating that are not being stored are forgotten.
        let storing: HashSet<DocumentId> = self.first_stores.values().copied().collect();
        self.created
            .retain(|doc, by| *by != peer || storing.contains(doc));
        let docs = self.engine.peer_docs(peer);
        let fx = self.engine.handle(now(), Input::Disconnected { peer });
        self.carry_out(fx);
        self.maybe_idle.extend(docs);
    }

    fn access(&mut self, peer: PeerId, author: Author, mut visible: Vec<DocumentId>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let today = crate::access::today();
        visible.sort_unstable();
        // Rights, day and documents as at the last read: every open document
        // was found readable under them when it was opened, so only the ones
        // not open yet need a look.
        let unchanged = p.author == author
            && p.swept
                .as_ref()
                .is_some_and(|(d, v)| *d == today && *v == visible);
        if unchanged {
            self.open_visible(peer, visible);
            return;
        }
        p.swept = Some((today, visible.clone()));
        p.author = author.clone();
        let fx = self.engine.handle(
            now(),
            Input::Reauthor {
                peer,
                author: author.clone(),
            },
        );
        self.carry_out(fx);
        for doc in self.engine.peer_docs(peer) {
            let readable = self
                .engine
                .context(&doc)
                .map(|ctx| author.may_read(&ctx, today));
            // Only a stored, readable document is withdrawn: one still being
            // created on this connection has nothing to judge yet.
            if readable == Some(false) && !self.created.contains_key(&doc) {
                let fx = self.engine.handle(now(), Input::Unshare { peer, doc });
                self.carry_out(fx);
                self.maybe_idle.insert(doc);
            }
        }
        self.open_visible(peer, visible);
    }

    /// Opens on the connection those of `visible` it does not have open.
    fn open_visible(&mut self, peer: PeerId, visible: Vec<DocumentId>) {
        for doc in visible {
            if !self.engine.is_shared(peer, &doc) {
                self.ensure(doc, Waiting::Share(peer));
            }
        }
    }

    /// A document first stored: open it to every other connection that may see it.
    fn fan_out_new(&mut self, doc: DocumentId) {
        let Some(ctx) = self.engine.context(&doc) else {
            return;
        };
        let today = crate::access::today();
        let peers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| {
                p.connected && !self.engine.is_shared(**id, &doc) && p.author.may_read(&ctx, today)
            })
            .map(|(id, _)| *id)
            .collect();
        for peer in peers {
            let fx = self.engine.handle(now(), Input::Share { peer, doc });
            self.carry_out(fx);
        }
    }

    /// Changes stored by another process: apply what is missing here.
    fn external(&mut self, doc: DocumentId) {
        if !self.engine.holds(&doc) {
            return;
        }
        self.touched.insert(doc, Instant::now());
        let have: HashSet<String> = self
            .engine
            .hot(&doc)
            .map(|d| {
                d.get_changes(&[])
                    .iter()
                    .map(|c| c.hash().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let db = self.sync.db.clone();
        let me = self.me.clone();
        self.rt.spawn(async move {
            match documents::changes_not_in(&db, &doc, |h| have.contains(h)).await {
                Ok(changes) if !changes.is_empty() => {
                    let _ = me.send(HubMsg::ExternalChanges { doc, changes });
                }
                Ok(_) => {}
                Err(e) => tracing::error!(%doc, cause = %e, "cannot read changes stored elsewhere"),
            }
        });
        // New to this server's connections? Open it to those who may see it.
        self.fan_out_new(doc);
    }

    /// Keeps saved (cold) the loaded documents every connection is in sync
    /// with that nothing touched for [`SyncConfig::cool_after`], and, past
    /// seven eighths of [`SyncConfig::hot_documents`] loaded or wanted, the
    /// least recently touched of those in sync whatever their age.
    ///
    /// [`SyncConfig::cool_after`]: super::SyncConfig::cool_after
    /// [`SyncConfig::hot_documents`]: super::SyncConfig::hot_documents
    fn cool_quiet(&mut self) {
        let now = Instant::now();
        let quiet = self.sync.config.cool_after;
        // Never touched since loaded sorts first (`None`), as the oldest.
        let mut hot: Vec<(Option<Instant>, DocumentId)> = self
            .engine
            .hot_ids()
            .map(|d| (self.touched.get(d).copied(), *d))
            .collect();
        // Documents whose frames wait for a place count as wanting one. An
        // eighth of the places is kept free, so that the next frame about a
        // cold document finds one without first saving another document.
        let wanted = hot.len() + self.deferred.len();
        let limit = self.sync.config.hot_documents;
        let mut over = wanted.saturating_sub(limit - limit / 8);
        hot.sort_unstable();
        for (at, doc) in hot {
            let old = at.is_none_or(|t| now.duration_since(t) >= quiet);
            if !old && over == 0 {
                break;
            }
            if self.cool(doc) {
                over = over.saturating_sub(1);
            }
        }
    }

    fn close(&mut self, peer: PeerId, code: u16, reason: String) {
        if let Some(p) = self.peers.get(&peer) {
            let _ = p.out.try_send(Outbound::Close(code, reason));
        }
    }

    /// Takes `n` changes from the user's bucket; false if they are over the rate.
    fn take(&mut self, user: &str, n: usize) -> bool {
        let rate = self.sync.config.changes_per_second;
        let burst = self.sync.config.change_burst;
        let now = Instant::now();
        let b = self.buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        b.tokens -= n as f64;
        b.tokens >= 0.0
    }

    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { peer, bytes } => {
                    let Some(p) = self.peers.get(&peer) else {
                        continue;
                    };
                    let len = bytes.len() as u64;
                    if p.out.try_send(Outbound::Frame(bytes)).is_err() {
                        // Too slow to read what it is sent: drop it; it will reconnect.
                        tracing::warn!(peer, user = %p.meta.username, "sync socket too slow; closing");
                        self.peers.remove(&peer);
                        let fx = self.engine.handle(now(), Input::Disconnected { peer });
                        self.carry_out(fx);
                        continue;
                    }
                    self.sync.metrics.count(
                        "sqm_sync_bytes_out_total",
                        "Bytes of sync frames sent.",
                        len,
                    );
                }
                Effect::Store {
                    ticket,
                    doc,
                    peer,
                    hashes,
                    changes,
                    touched,
                    base,
                } => self.store(StoreEffect {
                    ticket,
                    doc,
                    peer,
                    hashes,
                    changes,
                    touched,
                    base,
                }),
                Effect::Replace { ticket, .. } => {
                    // Only devices replace documents; confirm so nothing waits on it.
                    let fx = self.engine.handle(now(), Input::Stored { ticket });
                    self.carry_out(fx);
                }
                Effect::Quarantine {
                    ticket,
                    peer,
                    doc,
                    rule,
                    message,
                    changes,
                } => {
                    let origin = self.origin(Some(peer));
                    let bytes = changes.concat();
                    let size = bytes.len() as u64;
                    let kept = self.quarantined.entry(origin.username.clone()).or_default();
                    let limit = self.sync.config.quarantine_bytes_per_user;
                    if kept.saturating_add(size) > limit {
                        // Not kept, so not acknowledged: the device keeps
                        // the changes (it is never told they were refused).
                        tracing::warn!(%doc, user = %origin.username, %rule, limit, "quarantine full; connection closed");
                        let reason =
                            "Too many of your changes are kept aside; your tablet keeps these. Ask your nodal officer."
                                .to_string();
                        self.close(peer, close::QUARANTINE_FULL, reason);
                        continue;
                    }
                    *kept += size;
                    tracing::info!(%doc, user = %origin.username, %rule, "changes refused and quarantined");
                    // Refused changes cost their sender the same as accepted ones.
                    if !self.take(&origin.username, changes.len()) {
                        let reason = format!(
                            "More than {} changes per second: wait a moment and reconnect.",
                            self.sync.config.changes_per_second
                        );
                        self.close(peer, close::RATE_LIMITED, reason);
                    }
                    self.sync.metrics.count(
                        "sqm_sync_changes_quarantined_total",
                        "Changes refused and kept in quarantine.",
                        changes.len() as u64,
                    );
                    let _ = self.writer.send(WriterJob::Quarantine(
                        ticket,
                        Quarantined {
                            doc: doc.to_string(),
                            origin,
                            rule,
                            message,
                            bytes,
                        },
                    ));
                }
                Effect::Notify(Notice::Created { doc, peer }) => {
                    self.created.insert(doc, peer);
                }
                Effect::Notify(Notice::Dropped(doc)) => {
                    self.projector.forget(&doc);
                    self.touched.remove(&doc);
                    self.created.remove(&doc);
                    self.first_stores.retain(|_, d| *d != doc);
                    // What the hub hands the writer for it from now on is
                    // built on storage again.
                    let _ = self.writer.send(WriterJob::Reset(doc));
                }
                Effect::Notify(Notice::Fault { doc, message }) => {
                    // Its frames are read from storage again from the next one on.
                    tracing::error!(%doc, cause = %message, "a cold document was lost from memory");
                    self.projector.forget(&doc);
                    self.touched.remove(&doc);
                }
                Effect::Notify(Notice::PeerError { peer, message }) => {
                    tracing::debug!(peer, %message, "sync peer error");
                    self.sync.metrics.count(
                        "sqm_sync_peer_errors_total",
                        "Frames a peer sent that could not be used.",
                        1,
                    );
                }
                Effect::Notify(_) => {}
            }
        }
    }

    /// A store the database refused: its sender is told, and the document
    /// is read again from storage and opened again on the connections that
    /// had it open.
    fn set_aside(&mut self, s: SetAside) {
        let peers = self.engine.doc_peers(&s.doc);
        let fx = self.engine.handle(
            now(),
            Input::StoreFailed {
                ticket: s.ticket,
                rule: STORE_FAILED.into(),
                message: SET_ASIDE_MESSAGE.into(),
            },
        );
        self.carry_out(fx);
        if self.engine.holds(&s.doc) {
            return;
        }
        for peer in peers {
            if self.peers.contains_key(&peer) {
                self.ensure(s.doc, Waiting::Share(peer));
            }
        }
    }

    fn origin(&self, peer: Option<PeerId>) -> Origin {
        match peer.and_then(|p| self.peers.get(&p)) {
            Some(p) => Origin {
                username: p.meta.username.clone(),
                device: p.meta.device.clone(),
            },
            None => Origin {
                username: "server".into(),
                device: "server".into(),
            },
        }
    }

    fn store(&mut self, e: StoreEffect) {
        let StoreEffect {
            ticket,
            doc,
            peer,
            hashes,
            changes,
            touched,
            base,
        } = e;
        let origin = self.origin(peer);
        self.touched.insert(doc, Instant::now());
        let Some(am) = self.engine.hot(&doc) else {
            return;
        };
        // The validator only accepts documents that read; failing to is a fault.
        let ctx = match DocContext::read(am) {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::error!(%doc, cause = %e, "an accepted document does not read");
                return;
            }
        };
        let rules = self.rules.get(&ctx.unit).copied().unwrap_or_default();
        let projection = match self.projector.project(doc, am, &base, &touched, &rules) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%doc, cause = %e, "an accepted document does not read");
                return;
            }
        };
        if self.created.contains_key(&doc) && !self.first_stores.values().any(|d| *d == doc) {
            self.first_stores.insert(ticket, doc);
        }
        let n = hashes.len();
        self.sync.metrics.count(
            "sqm_sync_batches_accepted_total",
            "Batches of changes accepted from devices (one store each).",
            1,
        );
        self.sync.metrics.count(
            "sqm_sync_changes_accepted_total",
            "Changes accepted from devices (stored once committed).",
            n as u64,
        );
        let _ = self.writer.send(WriterJob::Store(Box::new(StoreJob {
            ticket,
            doc,
            ctx,
            hashes,
            changes,
            origin: origin.clone(),
            projection,
        })));
        if let Some(peer) = peer
            && !self.take(&origin.username, n)
        {
            let reason = format!(
                "More than {} changes per second: wait a moment and reconnect.",
                self.sync.config.changes_per_second
            );
            self.close(peer, close::RATE_LIMITED, reason);
        }
    }
}
