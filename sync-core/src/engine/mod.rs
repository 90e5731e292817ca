//! The sans-IO sync engine (DESIGN §5).
//!
//! An [`Engine`] keeps every document it holds and an Automerge sync state per
//! (peer, document). The caller feeds it [`Input`]s with the current time and
//! carries out the [`Effect`]s it returns:
//!
//! ```text
//! loop {
//!     let input = next event (socket frame, connect, disconnect, storage done, timer);
//!     for effect in engine.handle(now, input) {
//!         Send    -> write the bytes to that peer's socket
//!         Store   -> append the changes durably, then feed Input::Stored { ticket }
//!         Quarantine -> keep the refused bytes with their reason (never drop them)
//!         Notify  -> tell the UI / the access layer
//!     }
//! }
//! ```
//!
//! Heads are only advertised once stored: while a document has changes handed
//! out in a `Store` that is not yet confirmed, no sync message for it is sent,
//! so a peer never learns of a change that could still be lost.
//!
//! A [`Side::Server`] engine validates every incoming batch against the
//! sending peer's [`Author`] before applying it; refused batches are
//! quarantined and the peer is told why. A [`Side::Device`] engine trusts its
//! server and validates its own user's edits locally ([`Engine::edit`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, Automerge, Change, ChangeHash};

use crate::date::{Date, Timestamp};
use crate::edit::{Edit, apply_edit};
use crate::envelope::{Body, Envelope, ErrorCode};
use crate::ids::DocumentId;
use crate::permissions::{Author, Refusal, refuse};
use crate::rules::Rule;
use crate::validate::Touched;

mod cold;
mod recover;
mod salvage;
// Crate-visible so the `load` fuzz target splits chunks as the engine does.
pub(crate) mod wire;

pub use cold::Saved;
pub use recover::{LocalEdit, Recovery, RefusedEdit};
use wire::{
    ExtractError, MAX_BUNDLE_BYTES, extract_changes, generate_bundled, missing_deps,
    peer_unaware_of_sync, sane_bloom,
};

/// A connection, numbered by the caller.
pub type PeerId = u64;

/// How long to wait for an answer before resending a sync message (ms).
pub const RETRY_AFTER_MS: i64 = 500;

/// A sync message identical to one received this recently (ms) is a network duplicate:
/// a real resend only comes after [`RETRY_AFTER_MS`].
pub const DUPLICATE_WINDOW_MS: i64 = RETRY_AFTER_MS / 2;

/// The bounds one connection is held to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Changes one connection may hold waiting for missing dependencies, all documents together.
    pub max_pending_per_peer: usize,
    /// Documents one connection may have open.
    pub max_docs_per_peer: usize,
    /// Bytes the changes of one sync message may take once decompressed,
    /// each value their columns declare counted as
    /// [`crate::inflate::ROW_WEIGHT`] bytes more (run-length encodings
    /// declare millions of values in a few bytes; see [`crate::inflate`]).
    pub max_inflated_bytes: usize,
    /// Operations one change may declare. The largest change the project
    /// makes has a few hundred (see `tests/declared_ops.rs`).
    pub max_ops_per_change: u64,
    /// Operations the changes of one sync message may declare together; a
    /// whole document sent at once counts all of its operations.
    pub max_ops_per_batch: u64,
    /// Time without an answer after which a sync message is sent again (ms).
    /// On a lossy network, short; over a socket, which loses nothing while it
    /// stays up, only a safety net.
    pub retry_after_ms: i64,
    /// Each unanswered retry doubles the wait, up to this (ms).
    pub max_retry_after_ms: i64,
    /// Count the wait from the last word the peer said about any document,
    /// not only this one. Over a transport that loses nothing while it is up
    /// (a socket), a busy peer is a slow peer, not a lost message: resending
    /// to it would only add to its work.
    pub retry_when_peer_quiet: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending_per_peer: 4096,
            max_docs_per_peer: 10_000,
            max_inflated_bytes: 64 << 20,
            max_ops_per_change: 10_000,
            max_ops_per_batch: 100_000,
            retry_after_ms: RETRY_AFTER_MS,
            max_retry_after_ms: RETRY_AFTER_MS,
            retry_when_peer_quiet: false,
        }
    }
}

/// Which end of the protocol an engine is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// The server: validates every incoming change against its author.
    Server,
    /// A device: edits as its user under this actor id, trusts its server.
    Device(ActorId),
}

/// Something that happened, fed to [`Engine::handle`].
#[derive(Clone, Debug)]
pub enum Input {
    /// A peer connected. `author` is the authenticated user (server side);
    /// `docs` are the documents shared with it (server: those it may see;
    /// device: every document it holds).
    Connected {
        /// The connection.
        peer: PeerId,
        /// Who is on the other end (server side), if known.
        author: Option<Author>,
        /// The documents shared on this connection.
        docs: Vec<DocumentId>,
    },
    /// A peer went away; its sync states are dropped.
    Disconnected {
        /// The connection.
        peer: PeerId,
    },
    /// A binary frame arrived from a peer.
    Received {
        /// The connection.
        peer: PeerId,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// The peer may now see a document (server side).
    Share {
        /// The connection.
        peer: PeerId,
        /// The document.
        doc: DocumentId,
    },
    /// The peer may no longer see a document (server side).
    Unshare {
        /// The connection.
        peer: PeerId,
        /// The document.
        doc: DocumentId,
    },
    /// The rights of a connection's user changed (server side): later batches
    /// are judged by these.
    Reauthor {
        /// The connection.
        peer: PeerId,
        /// The user's rights as they are now.
        author: Author,
    },
    /// Changes of a document made durable elsewhere (another server process):
    /// apply them, without judging or storing, and pass them on.
    External {
        /// The document.
        doc: DocumentId,
        /// The changes' bytes.
        changes: Vec<Vec<u8>>,
    },
    /// A `Store` or `Quarantine` effect has been made durable.
    Stored {
        /// The ticket of that effect.
        ticket: u64,
    },
    /// A `Store` effect can never be made durable (storage refuses it, not
    /// for want of a connection): its changes were kept aside instead (the
    /// server's quarantine). The document is dropped from memory, with every
    /// change built on them, and read from storage again on its next message;
    /// the sender is told which changes were refused and why.
    StoreFailed {
        /// The ticket of that effect.
        ticket: u64,
        /// The rule, for the sender.
        rule: String,
        /// Why, in words, for the sender.
        message: String,
    },
    /// Time passed: resend what got no answer.
    Tick,
}

/// Something the caller must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send a frame to a peer.
    Send {
        /// The connection.
        peer: PeerId,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// Store these changes durably, then feed back [`Input::Stored`].
    Store {
        /// The ticket to confirm.
        ticket: u64,
        /// The document.
        doc: DocumentId,
        /// The connection they came from (`None`: a local edit).
        peer: Option<PeerId>,
        /// The changes' hashes, in the order of `changes`.
        hashes: Vec<ChangeHash>,
        /// The changes' bytes, in dependency order.
        changes: Vec<Vec<u8>>,
        /// What they wrote, by part of the document (what derived rows to read again).
        touched: Touched,
        /// The document's heads before they were applied.
        base: Vec<ChangeHash>,
    },
    /// Store this saved document in place of the one held, then feed back
    /// [`Input::Stored`] (a device after a refusal: changes were taken out).
    Replace {
        /// The ticket to confirm.
        ticket: u64,
        /// The document.
        doc: DocumentId,
        /// The whole document, saved.
        saved: Vec<u8>,
    },
    /// Keep refused changes out of the document, with why (never drop them),
    /// then feed back [`Input::Stored`]: the sender is told of the refusal
    /// only once they are kept.
    Quarantine {
        /// The ticket to confirm.
        ticket: u64,
        /// Who sent them.
        peer: PeerId,
        /// The document.
        doc: DocumentId,
        /// The rule broken.
        rule: String,
        /// Why, in words.
        message: String,
        /// The refused changes' bytes.
        changes: Vec<Vec<u8>>,
    },
    /// Tell the application something.
    Notify(Notice),
}

/// A store handed out and not yet confirmed.
#[derive(Debug)]
struct Ticket {
    doc: DocumentId,
    /// The connection the changes came from, told if they cannot be stored.
    peer: Option<PeerId>,
    hashes: Vec<ChangeHash>,
}

/// News for the application.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A document's content changed.
    Changed(DocumentId),
    /// A peer created a document this engine did not have (server: decide who may see it).
    Created {
        /// The document.
        doc: DocumentId,
        /// The peer that created it.
        peer: PeerId,
    },
    /// The server refused some of this device's changes (device side).
    Rejected {
        /// The document.
        doc: DocumentId,
        /// The rule broken.
        rule: String,
        /// Why, in words.
        message: String,
        /// The refused changes.
        changes: Vec<ChangeHash>,
    },
    /// The server may no longer show this document to this device (device side).
    Withdrawn(DocumentId),
    /// A document was dropped from memory because changes it held could
    /// not be stored (server side): forget what is derived from it; it is
    /// read from storage again on its next message.
    Dropped(DocumentId),
    /// Something went wrong inside the engine (logged as a fault).
    Fault {
        /// The document.
        doc: DocumentId,
        /// What went wrong.
        message: String,
    },
    /// A peer sent something that could not be used (logged; the peer is told).
    PeerError {
        /// The connection.
        peer: PeerId,
        /// What was wrong.
        message: String,
    },
}

/// Changes refused on a peer's document, and what each was built on.
type Refused = (
    HashSet<ChangeHash>,
    std::collections::HashMap<ChangeHash, Vec<ChangeHash>>,
);

#[derive(Debug, Default)]
struct PeerDoc {
    state: sync::State,
    last_send: i64,
    /// Retries since the peer last said anything about this document.
    retries: u32,
    /// Fingerprints and arrival times of the last few sync messages from the peer.
    recent: std::collections::VecDeque<(u64, i64)>,
    pending: Vec<Change>,
    refused: HashSet<ChangeHash>,
    /// What each change refused here was built on (server side): a peer
    /// that keeps a refused change as its head holds what it was built on.
    refused_deps: std::collections::HashMap<ChangeHash, Vec<ChangeHash>>,
}

#[derive(Debug)]
struct Peer {
    author: Option<Author>,
    docs: BTreeMap<DocumentId, PeerDoc>,
    /// Changes held for missing dependencies, over all documents.
    pending: usize,
    /// Changes to documents it may not see, already quarantined (not again).
    quarantined: HashSet<ChangeHash>,
    /// What was refused on documents dropped from memory since (see
    /// [`Input::StoreFailed`]), for when they are shared again: a refused
    /// change the peer offers again is not judged, stored or kept again.
    refusals_kept: BTreeMap<DocumentId, Refused>,
    /// When it last sent anything (ms).
    last_heard: i64,
}

#[derive(Debug)]
struct Doc {
    am: Automerge,
    unstored: usize,
    peers: BTreeSet<PeerId>,
}

/// The sync engine: documents, peers and their sync states. No I/O.
#[derive(Debug)]
pub struct Engine {
    side: Side,
    limits: Limits,
    docs: BTreeMap<DocumentId, Doc>,
    /// Server side: documents kept saved while every peer is in sync with them.
    cold: BTreeMap<DocumentId, cold::Cold>,
    peers: BTreeMap<PeerId, Peer>,
    tickets: BTreeMap<u64, Ticket>,
    next_ticket: u64,
    /// Frames held until a quarantine is kept (by its ticket): a sender
    /// told of a refusal drops the refused changes, so they must be safe first.
    held: BTreeMap<u64, Vec<(PeerId, DocumentId, Body)>>,
    out: Vec<Effect>,
    /// Device side: this user's edits the server has not yet acknowledged, per document.
    local: BTreeMap<DocumentId, Vec<LocalEdit>>,
    /// Device side: edits the server refused that could not be made again.
    refused_edits: Vec<RefusedEdit>,
}

impl Engine {
    /// A new engine for one side.
    pub fn new(side: Side) -> Engine {
        Engine::with_limits(side, Limits::default())
    }

    /// A new engine holding its connections to `limits`.
    pub fn with_limits(side: Side, limits: Limits) -> Engine {
        Engine {
            side,
            limits,
            docs: BTreeMap::new(),
            cold: BTreeMap::new(),
            peers: BTreeMap::new(),
            tickets: BTreeMap::new(),
            next_ticket: 1,
            held: BTreeMap::new(),
            out: Vec::new(),
            local: BTreeMap::new(),
            refused_edits: Vec::new(),
        }
    }

    /// Adds a document loaded from storage (already durable).
    pub fn insert(&mut self, id: DocumentId, mut am: Automerge) {
        if let Side::Device(actor) = &self.side {
            am.set_actor(actor.clone());
        }
        let peers = match (self.docs.remove(&id), self.cold.remove(&id)) {
            (Some(d), _) => d.peers,
            (None, Some(c)) => c.peers,
            (None, None) => BTreeSet::new(),
        };
        self.docs.insert(
            id,
            Doc {
                am,
                unstored: 0,
                peers,
            },
        );
    }

    /// A document held by the engine and loaded. A server's cold document
    /// (see [`Engine::cool`]) is held but not loaded: [`Engine::hot`] loads it.
    pub fn doc(&self, id: &DocumentId) -> Option<&Automerge> {
        self.docs.get(id).map(|d| &d.am)
    }

    /// Every document id held, loaded or cold.
    pub fn doc_ids(&self) -> impl Iterator<Item = &DocumentId> {
        self.docs.keys().chain(self.cold.keys())
    }

    /// Whether a document is shared with a peer.
    pub fn is_shared(&self, peer: PeerId, id: &DocumentId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.docs.contains_key(id))
    }

    /// Whether any stored change or quarantine is still unconfirmed.
    pub fn has_unstored(&self) -> bool {
        !self.tickets.is_empty() || !self.held.is_empty()
    }

    /// The limits this engine holds its connections to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits (e.g. a device moving from a lossy link to a socket).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The documents shared with a peer.
    pub fn peer_docs(&self, peer: PeerId) -> Vec<DocumentId> {
        self.peers
            .get(&peer)
            .map(|p| p.docs.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The peers a document is shared with.
    pub fn doc_peers(&self, id: &DocumentId) -> Vec<PeerId> {
        let peers = match self.docs.get(id) {
            Some(d) => Some(&d.peers),
            None => self.cold.get(id).map(|c| &c.peers),
        };
        peers
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether a peer has said it holds exactly this engine's heads of a
    /// document, with nothing of ours unstored and nothing of its held back.
    pub fn in_sync(&self, peer: PeerId, id: &DocumentId) -> bool {
        let Some(pd) = self.peers.get(&peer).and_then(|p| p.docs.get(id)) else {
            return false;
        };
        let (ours, unstored) = match (self.docs.get(id), self.cold.get(id)) {
            (Some(doc), _) => {
                let mut h = doc.am.get_heads();
                h.sort();
                (h, doc.unstored)
            }
            (None, Some(c)) => (c.heads().to_vec(), 0),
            (None, None) => return false,
        };
        let theirs = pd.state.their_heads.clone().map(|mut h| {
            h.sort();
            h
        });
        unstored == 0 && pd.pending.is_empty() && theirs == Some(ours)
    }

    /// Changes held for missing dependencies, over every connection.
    pub fn pending_changes(&self) -> usize {
        self.peers.values().map(|p| p.pending).sum()
    }

    /// Drops a document no connection holds and nothing waits to store
    /// (a server unloading a cold document). False if it is still in use.
    pub fn evict(&mut self, id: &DocumentId) -> bool {
        let idle = match (self.docs.get(id), self.cold.get(id)) {
            (Some(d), _) => d.peers.is_empty() && d.unstored == 0,
            (None, Some(c)) => c.peers.is_empty(),
            (None, None) => false,
        };
        if idle {
            self.docs.remove(id);
            self.cold.remove(id);
        }
        idle
    }

    /// Makes a local edit (device side) and returns what to do: store it, then sync it.
    pub fn edit(
        &mut self,
        now: Timestamp,
        id: DocumentId,
        edit: &Edit,
        author: &Author,
    ) -> Result<Vec<Effect>, Refusal> {
        let Side::Device(actor) = &self.side else {
            return Err(refuse(
                Rule::EngineSide,
                "Only a device engine makes local edits.",
            ));
        };
        let existed = self.docs.contains_key(&id);
        let doc = self.docs.entry(id).or_insert_with(|| Doc {
            am: Automerge::new(),
            unstored: 0,
            peers: BTreeSet::new(),
        });
        let base = doc.am.get_heads();
        doc.am.set_actor(actor.clone());
        // On a refusal the document is left as it was.
        let made = apply_edit(id, &mut doc.am, edit, author, now);
        let change = match made {
            Ok(c) => c,
            Err(r) => {
                if !existed {
                    // A new document whose first edit was refused: there is none.
                    self.docs.remove(&id);
                }
                return Err(r);
            }
        };
        self.local.entry(id).or_default().push(LocalEdit {
            hash: change.hash(),
            edit: edit.clone(),
            at: now,
            refusals: 0,
        });
        // A document made on this device is shared with every connected server.
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for p in peers {
            self.share(p, id);
        }
        self.store(id, None, vec![change], Touched::unknown(), base);
        self.out.push(Effect::Notify(Notice::Changed(id)));
        Ok(std::mem::take(&mut self.out))
    }

    /// Handles one input at time `now`, returning the effects to carry out.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Effect> {
        match input {
            Input::Connected { peer, author, docs } => {
                self.peers.insert(
                    peer,
                    Peer {
                        author,
                        docs: BTreeMap::new(),
                        pending: 0,
                        quarantined: HashSet::new(),
                        refusals_kept: BTreeMap::new(),
                        last_heard: now.0,
                    },
                );
                for d in docs {
                    // A cold document stays cold: the peer is told it is
                    // shared and speaks first (see `flush_doc_peer`).
                    if self.share(peer, d) && self.cold.contains_key(&d) {
                        self.send(
                            peer,
                            d,
                            Body::NewDocument {
                                kind: self.kind_of(&d),
                            },
                        );
                    }
                }
                self.flush_peer(peer, now);
            }
            Input::Disconnected { peer } => {
                if let Some(p) = self.peers.remove(&peer) {
                    for d in p.docs.keys() {
                        if let Some(doc) = self.docs.get_mut(d) {
                            doc.peers.remove(&peer);
                        }
                        if let Some(cold) = self.cold.get_mut(d) {
                            cold.peers.remove(&peer);
                        }
                    }
                }
            }
            Input::Share { peer, doc } => {
                if self.share(peer, doc) {
                    self.send(
                        peer,
                        doc,
                        Body::NewDocument {
                            kind: self.kind_of(&doc),
                        },
                    );
                    self.flush_doc_peer(peer, doc, now);
                }
            }
            Input::Unshare { peer, doc } => {
                if self.unshare(peer, doc) {
                    self.send(peer, doc, Body::Withdrawn);
                }
            }
            Input::Received { peer, bytes } => self.received(peer, &bytes, now),
            Input::Reauthor { peer, author } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.author = Some(author);
                }
            }
            Input::External { doc, changes } => self.external(doc, &changes, now),
            Input::Stored { ticket } => {
                for (peer, doc, body) in self.held.remove(&ticket).unwrap_or_default() {
                    if self.peers.contains_key(&peer) {
                        self.send(peer, doc, body);
                    }
                }
                if let Some(Ticket { doc: id, .. }) = self.tickets.remove(&ticket) {
                    let flush = match self.docs.get_mut(&id) {
                        Some(d) => {
                            d.unstored = d.unstored.saturating_sub(1);
                            d.unstored == 0
                        }
                        None => false,
                    };
                    if flush {
                        self.flush_doc(id, now);
                    }
                }
            }
            Input::StoreFailed {
                ticket,
                rule,
                message,
            } => self.store_failed(ticket, rule, message),
            Input::Tick => self.retry(now),
        }
        std::mem::take(&mut self.out)
    }

    /// A store that can never succeed: the sender is told its changes were
    /// refused, and the document, which holds them, is dropped from memory
    /// (see [`Input::StoreFailed`]).
    fn store_failed(&mut self, ticket: u64, rule: String, message: String) {
        let Some(Ticket { doc, peer, hashes }) = self.tickets.remove(&ticket) else {
            return;
        };
        if let Some(peer) = peer
            && let Some(pd) = self.peers.get_mut(&peer).and_then(|p| p.docs.get_mut(&doc))
        {
            pd.refused.extend(hashes.iter().copied());
            for body in rejections(&rule, &message, &hashes) {
                self.send(peer, doc, body);
            }
        }
        if self.docs.contains_key(&doc) || self.cold.contains_key(&doc) {
            self.drop_doc(&doc);
            self.out.push(Effect::Notify(Notice::Dropped(doc)));
        }
    }

    /// Forgets a document and its sharings; its peers' next messages about
    /// it are taken as about a document this engine does not hold.
    fn drop_doc(&mut self, id: &DocumentId) {
        self.docs.remove(id);
        self.cold.remove(id);
        for p in self.peers.values_mut() {
            if let Some(pd) = p.docs.remove(id) {
                p.pending -= pd.pending.len();
                if !pd.refused.is_empty() {
                    p.refusals_kept.insert(*id, (pd.refused, pd.refused_deps));
                }
            }
        }
    }

    fn kind_of(&self, id: &DocumentId) -> crate::DocKind {
        if let Some(c) = self.cold.get(id) {
            return c.kind();
        }
        self.docs
            .get(id)
            .and_then(|d| crate::schema::Reader::now(&d.am).kind().ok())
            .unwrap_or(crate::DocKind::Audit)
    }

    /// Shares a document with a peer; true if newly shared.
    fn share(&mut self, peer: PeerId, id: DocumentId) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if p.docs.contains_key(&id) {
            return false;
        }
        // A server shares a cold document without loading it: the peer's
        // first message about it loads it.
        let cold = self.side == Side::Server && self.cold.contains_key(&id);
        if !cold && !self.thaw(&id) {
            return false;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if p.docs.len() >= self.limits.max_docs_per_peer {
            let message = format!(
                "This connection already has {} documents open, the most it may; document {id} was not opened.",
                self.limits.max_docs_per_peer
            );
            self.error(peer, id, ErrorCode::LimitExceeded, message);
            return false;
        }
        let (refused, refused_deps) = p.refusals_kept.remove(&id).unwrap_or_default();
        p.docs.insert(
            id,
            PeerDoc {
                refused,
                refused_deps,
                ..PeerDoc::default()
            },
        );
        if let Some(c) = self.cold.get_mut(&id) {
            c.peers.insert(peer);
            return true;
        }
        let actor = match &self.side {
            Side::Device(a) => Some(a.clone()),
            Side::Server => None,
        };
        self.docs
            .entry(id)
            .or_insert_with(|| Doc {
                am: actor.map_or_else(Automerge::new, |a| Automerge::new().with_actor(a)),
                unstored: 0,
                peers: BTreeSet::new(),
            })
            .peers
            .insert(peer);
        true
    }

    /// Stops sharing a document with a peer; true if it was shared.
    fn unshare(&mut self, peer: PeerId, id: DocumentId) -> bool {
        let removed = self
            .peers
            .get_mut(&peer)
            .is_some_and(|p| match p.docs.remove(&id) {
                Some(pd) => {
                    p.pending -= pd.pending.len();
                    true
                }
                None => false,
            });
        if let Some(d) = self.docs.get_mut(&id) {
            d.peers.remove(&peer);
        }
        if let Some(c) = self.cold.get_mut(&id) {
            c.peers.remove(&peer);
        }
        removed
    }

    fn send(&mut self, peer: PeerId, doc: DocumentId, body: Body) {
        match (Envelope { doc, body }).encode() {
            Ok(bytes) => self.out.push(Effect::Send { peer, bytes }),
            Err(e) => self.out.push(Effect::Notify(Notice::PeerError {
                peer,
                message: format!("could not encode a message for {doc}: {e}"),
            })),
        }
    }

    fn ticket(&mut self, id: DocumentId, peer: Option<PeerId>, hashes: Vec<ChangeHash>) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.tickets.insert(
            ticket,
            Ticket {
                doc: id,
                peer,
                hashes,
            },
        );
        if let Some(d) = self.docs.get_mut(&id) {
            d.unstored += 1;
        }
        ticket
    }

    /// Keeps refused changes aside; `then` is sent once they are kept.
    fn quarantine(
        &mut self,
        peer: PeerId,
        doc: DocumentId,
        refusal: &Refusal,
        changes: &[Change],
        then: Vec<Body>,
    ) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.out.push(Effect::Quarantine {
            ticket,
            peer,
            doc,
            rule: refusal.rule.to_owned(),
            message: refusal.message.clone(),
            changes: changes.iter().map(|c| c.raw_bytes().to_vec()).collect(),
        });
        self.held
            .insert(ticket, then.into_iter().map(|b| (peer, doc, b)).collect());
    }

    fn store(
        &mut self,
        id: DocumentId,
        peer: Option<PeerId>,
        changes: Vec<Change>,
        touched: Touched,
        base: Vec<ChangeHash>,
    ) {
        if changes.is_empty() {
            return;
        }
        let hashes: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
        let ticket = self.ticket(id, peer, hashes.clone());
        self.out.push(Effect::Store {
            ticket,
            doc: id,
            peer,
            hashes,
            changes: changes.iter().map(|c| c.raw_bytes().to_vec()).collect(),
            touched,
            base,
        });
    }

    fn flush_peer(&mut self, peer: PeerId, now: Timestamp) {
        let docs: Vec<DocumentId> = self
            .peers
            .get(&peer)
            .map(|p| p.docs.keys().copied().collect())
            .unwrap_or_default();
        for d in docs {
            self.flush_doc_peer(peer, d, now);
        }
    }

    fn flush_doc(&mut self, id: DocumentId, now: Timestamp) {
        let peers: Vec<PeerId> = self
            .docs
            .get(&id)
            .map(|d| d.peers.iter().copied().collect())
            .unwrap_or_default();
        for p in peers {
            self.flush_doc_peer(p, id, now);
        }
    }

    /// Sends the next sync message for (peer, doc), if there is one and nothing is unstored.
    fn flush_doc_peer(&mut self, peer: PeerId, id: DocumentId, now: Timestamp) {
        // A cold document has nothing to say to a peer it has not heard from
        // about it yet: the peer was told it is shared, and speaks first.
        if self.cold.contains_key(&id)
            && self
                .peers
                .get(&peer)
                .and_then(|p| p.docs.get(&id))
                .is_some_and(|pd| pd.state.their_heads.is_none() && !pd.state.in_flight)
        {
            return;
        }
        if !self.thaw(&id) {
            return;
        }
        let Some(doc) = self.docs.get(&id) else {
            return;
        };
        if doc.unstored > 0 {
            return;
        }
        let Some(pd) = self.peers.get_mut(&peer).and_then(|p| p.docs.get_mut(&id)) else {
            return;
        };
        // Changes held back for missing dependencies are invisible to Automerge, so ask for
        // those dependencies ourselves (a Bloom filter false positive would otherwise stall).
        let missing = missing_deps(&doc.am, &pd.pending);
        let generated = match self.side {
            Side::Device(_) => generate_bundled(&doc.am, &mut pd.state, MAX_BUNDLE_BYTES),
            Side::Server => doc.am.generate_sync_message(&mut pd.state),
        };
        let msg = match generated {
            Some(mut msg) => {
                msg.need.extend(missing);
                msg.need.sort();
                msg.need.dedup();
                Some(msg)
            }
            None if !missing.is_empty() && !pd.state.in_flight => {
                pd.state.in_flight = true;
                Some(sync::Message {
                    heads: doc.am.get_heads(),
                    need: missing,
                    have: Vec::new(),
                    changes: Vec::<Vec<u8>>::new().into(),
                    flags: None,
                    version: sync::MessageVersion::V1,
                })
            }
            None => None,
        };
        if let Some(msg) = msg {
            pd.last_send = now.0;
            self.send(peer, id, Body::Sync(msg.encode()));
        }
    }

    fn retry(&mut self, now: Timestamp) {
        let mut due = Vec::new();
        let (base, cap) = (self.limits.retry_after_ms, self.limits.max_retry_after_ms);
        let quiet = self.limits.retry_when_peer_quiet;
        for (peer, p) in &mut self.peers {
            let heard = if quiet { p.last_heard } else { i64::MIN };
            for (id, pd) in &mut p.docs {
                let wait = base
                    .saturating_mul(1i64 << pd.retries.min(20))
                    .min(cap.max(base));
                if pd.state.in_flight && now.0 - pd.last_send.max(heard) >= wait {
                    pd.retries += 1;
                    // The message or its answer was lost: forget what we think we sent.
                    pd.state.in_flight = false;
                    pd.state.sent_hashes.clear();
                    due.push((*peer, *id));
                }
            }
        }
        for (peer, id) in due {
            self.flush_doc_peer(peer, id, now);
        }
    }

    fn error(&mut self, peer: PeerId, doc: DocumentId, code: ErrorCode, message: String) {
        // Some messages carry Automerge's words about a peer's bytes.
        let message = crate::text::scrub(message);
        self.out.push(Effect::Notify(Notice::PeerError {
            peer,
            message: message.clone(),
        }));
        self.send(peer, doc, Body::Error { code, message });
    }

    fn received(&mut self, peer: PeerId, bytes: &[u8], now: Timestamp) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.last_heard = now.0;
        let env = match Envelope::decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                self.out.push(Effect::Notify(Notice::PeerError {
                    peer,
                    message: format!("undecodable frame: {e}"),
                }));
                return;
            }
        };
        let id = env.doc;
        match env.body {
            Body::Sync(payload) => self.sync(peer, id, &payload, now),
            Body::Rejection {
                rule,
                message,
                changes,
            } => {
                if let Some(pd) = self.peers.get_mut(&peer).and_then(|p| p.docs.get_mut(&id)) {
                    pd.refused.extend(changes.iter().copied());
                }
                self.out.push(Effect::Notify(Notice::Rejected {
                    doc: id,
                    rule,
                    message,
                    changes,
                }));
            }
            Body::NewDocument { .. } => {
                if self.side != Side::Server {
                    self.share(peer, id);
                    self.flush_doc_peer(peer, id, now);
                }
            }
            Body::Withdrawn => {
                self.unshare(peer, id);
                self.out.push(Effect::Notify(Notice::Withdrawn(id)));
            }
            Body::Error { message, .. } => self
                .out
                .push(Effect::Notify(Notice::PeerError { peer, message })),
        }
    }

    /// Whether this payload repeats one received from the peer within [`DUPLICATE_WINDOW_MS`].
    fn is_duplicate(
        &mut self,
        peer: PeerId,
        id: DocumentId,
        payload: &[u8],
        now: Timestamp,
    ) -> bool {
        use std::hash::{Hash, Hasher};
        let Some(pd) = self.peers.get_mut(&peer).and_then(|p| p.docs.get_mut(&id)) else {
            return false;
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        payload.hash(&mut h);
        let print = h.finish();
        pd.recent.retain(|(_, at)| now.0 - at < DUPLICATE_WINDOW_MS);
        if pd.recent.iter().any(|(p, _)| *p == print) {
            return true;
        }
        if pd.recent.len() >= 8 {
            pd.recent.pop_front();
        }
        pd.recent.push_back((print, now.0));
        false
    }

    fn sync(&mut self, peer: PeerId, id: DocumentId, payload: &[u8], now: Timestamp) {
        if self.is_duplicate(peer, id, payload, now) {
            return;
        }
        // A cold document that no longer loads is not taken for a new one:
        // the message is dropped (the peer sends it again).
        if !self.thaw(&id) {
            return;
        }
        if let Some(pd) = self.peers.get_mut(&peer).and_then(|p| p.docs.get_mut(&id)) {
            pd.retries = 0;
        }
        let mut msg = match sync::Message::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                return self.error(
                    peer,
                    id,
                    ErrorCode::Malformed,
                    format!("That sync message could not be read: {e}"),
                );
            }
        };
        if !msg.have.iter().all(|h| sane_bloom(&h.bloom)) {
            return self.error(
                peer,
                id,
                ErrorCode::Malformed,
                "That sync message has a damaged summary of changes.".into(),
            );
        }
        let shared = self
            .peers
            .get(&peer)
            .is_some_and(|p| p.docs.contains_key(&id));
        if !shared {
            let known = self.docs.contains_key(&id);
            if self.side == Side::Server && known {
                return self.not_permitted(peer, id, &msg);
            }
            self.share(peer, id);
            if self.side == Side::Server {
                self.out
                    .push(Effect::Notify(Notice::Created { doc: id, peer }));
            }
        }
        let Some(have) = self.docs.get(&id).map(|d| &d.am) else {
            return;
        };
        let extracted = match extract_changes(&msg, &self.limits, have) {
            Ok(c) => c,
            Err(ExtractError::Malformed(e)) => {
                return self.error(peer, id, ErrorCode::Malformed, e);
            }
            Err(ExtractError::TooLarge(budget)) => {
                let message = format!(
                    "The changes of that sync message would take more than {budget} bytes once decompressed and expanded; it was not used."
                );
                return self.error(peer, id, ErrorCode::LimitExceeded, message);
            }
            Err(ExtractError::ChangeOps { declared, limit }) => {
                let message = format!(
                    "A change in that sync message declares {declared} operations, more than the {limit} one change may hold; the message was not used."
                );
                return self.error(peer, id, ErrorCode::LimitExceeded, message);
            }
            Err(ExtractError::BatchOps(limit)) => {
                let message = format!(
                    "The changes of that sync message declare more than {limit} operations together, more than one message may carry; it was not used."
                );
                return self.error(peer, id, ErrorCode::LimitExceeded, message);
            }
        };
        msg.changes = Vec::<Vec<u8>>::new().into();
        let today = Date::in_offices(now);
        let is_server = self.side == Side::Server;
        let author = self.peers.get(&peer).and_then(|p| p.author.clone());
        let max_pending = self.limits.max_pending_per_peer;
        let (Some(doc), Some(p)) = (self.docs.get_mut(&id), self.peers.get_mut(&peer)) else {
            return;
        };
        let Some(pd) = p.docs.get_mut(&id) else {
            return;
        };
        p.pending -= pd.pending.len();
        let mut batch = std::mem::take(&mut pd.pending);
        let offered = extracted.changes.len();
        batch.extend(
            extracted
                .changes
                .into_iter()
                .filter(|c| !pd.refused.contains(&c.hash())),
        );
        // The sender's whole document stands for the batch only when the
        // batch is exactly what it adds to ours.
        let merged = extracted.merged.filter(|_| batch.len() == offered);
        let mut stored = Vec::new();
        let mut touched = Touched::default();
        let base = doc.am.get_heads();
        let mut refused = None;
        let mut overflow = false;
        if !batch.is_empty() {
            let verdict = if is_server {
                match &author {
                    Some(a) => salvage::judge(id, &doc.am, batch, merged, a, today),
                    None => salvage::Verdict::refuse_all(
                        batch,
                        refuse(Rule::Auth, "This connection has no authenticated user."),
                    ),
                }
            } else {
                match trust(&doc.am, batch, merged) {
                    Ok(acc) => salvage::Verdict {
                        accepted: acc,
                        refused: None,
                    },
                    Err((refusal, batch)) => salvage::Verdict::refuse_all(batch, refusal),
                }
            };
            let acc = verdict.accepted;
            if let Some(new) = acc.doc {
                doc.am = new;
                if let Side::Device(a) = &self.side {
                    doc.am.set_actor(a.clone());
                }
            }
            overflow = p.pending + acc.pending.len() > max_pending;
            if overflow {
                // A flood of changes whose dependencies never come: drop them from
                // memory (they will be asked for again) rather than grow without bound.
                pd.state = sync::State::new();
            } else {
                p.pending += acc.pending.len();
                pd.pending = acc.pending;
            }
            stored = acc.applied;
            touched = acc.touched;
            refused = verdict.refused;
        }
        if let Some((refusal, batch)) = refused {
            let hashes: Vec<ChangeHash> = batch.iter().map(Change::hash).collect();
            pd.refused.extend(hashes.iter().copied());
            pd.refused_deps
                .extend(batch.iter().map(|c| (c.hash(), c.deps().to_vec())));
            let tell = rejections(refusal.rule, &refusal.message, &hashes);
            self.quarantine(peer, id, &refusal, &batch, tell);
        }
        if overflow {
            let message = format!(
                "More than {max_pending} changes are waiting for changes never sent; they were dropped from memory and will be asked for again."
            );
            self.error(peer, id, ErrorCode::LimitExceeded, message);
            if !stored.is_empty() {
                self.store(id, Some(peer), stored, touched, base);
                self.out.push(Effect::Notify(Notice::Changed(id)));
            }
            return;
        }
        // Bookkeeping only: the changes were applied (or refused) above.
        let Some(pd) = self.peers.get_mut(&peer).and_then(|p| p.docs.get_mut(&id)) else {
            return;
        };
        // A refused change the peer keeps (a plain Automerge peer does not
        // take it out) stands for what it was built on: dropped from its
        // heads alone, the peer would look as if it held nothing, and be
        // sent the whole document on every exchange.
        if msg.heads.iter().any(|h| pd.refused.contains(h)) {
            msg.heads = heads_without_refused(&msg.heads, pd);
        }
        // Changes the peer asks for by name never arrived: a message was lost. Send them again.
        for h in &msg.need {
            pd.state.sent_hashes.remove(h);
        }
        let Some(doc) = self.docs.get_mut(&id) else {
            return;
        };
        // A peer whose heads equal ours but who does not know it (its last sync
        // point is not our heads: our last word to it was lost) is always answered,
        // even with nothing new to say. Left unanswered, it would resend on every
        // retry forever.
        if peer_unaware_of_sync(&doc.am, &msg) {
            pd.state.have_responded = false;
        }
        if let Err(e) = doc.am.receive_sync_message(&mut pd.state, msg) {
            return self.error(
                peer,
                id,
                ErrorCode::Malformed,
                format!("That sync message could not be applied: {e}"),
            );
        }
        if !is_server {
            self.prune_acknowledged(peer, id);
        }
        if !stored.is_empty() {
            self.store(id, Some(peer), stored, touched, base);
            self.out.push(Effect::Notify(Notice::Changed(id)));
        }
        self.flush_doc(id, now);
    }

    /// A peer wrote to a document it may not see (its rights ended while it
    /// was offline). Changes it holds that the server lacks are asked for and,
    /// once sent, quarantined: never applied and never dropped, and the peer
    /// is told which were refused and why. Then the document is withdrawn
    /// from it (it keeps its own copy).
    fn not_permitted(&mut self, peer: PeerId, id: DocumentId, msg: &sync::Message) {
        let message = format!("You may no longer see or edit document {id}.");
        let Some(doc) = self.docs.get(&id) else {
            return;
        };
        let changes = extract_changes(msg, &self.limits, &doc.am)
            .map(|e| e.changes)
            .unwrap_or_default();
        let seen = self.peers.get(&peer).map(|p| &p.quarantined);
        let new_here = |h: &ChangeHash| {
            doc.am.get_change_meta_by_hash(h).is_none() && seen.is_none_or(|q| !q.contains(h))
        };
        let fresh: Vec<Change> = changes
            .into_iter()
            .filter(|c| new_here(&c.hash()))
            .collect();
        // What it holds that is neither here nor sent: its heads, and what
        // the changes it sent build on. Asked for by name: a change asked for
        // only by the summary of what the server has could hide behind a
        // false positive of that summary, and never be sent.
        let sent: BTreeSet<ChangeHash> = fresh.iter().map(Change::hash).collect();
        let wanted: BTreeSet<ChangeHash> = msg
            .heads
            .iter()
            .chain(fresh.iter().flat_map(|c| c.deps()))
            .filter(|h| new_here(h) && !sent.contains(h))
            .copied()
            .collect();
        let ask = (!wanted.is_empty())
            .then(|| doc.am.generate_sync_message(&mut sync::State::new()))
            .flatten()
            .map(|mut ask| {
                ask.need = wanted.into_iter().collect();
                ask.encode()
            });
        let withdraw = Body::Error {
            code: ErrorCode::NotPermitted,
            message: message.clone(),
        };
        if fresh.is_empty() {
            if let Some(ask) = ask {
                // It holds changes we have not seen: ask for them, so they reach quarantine.
                self.send(peer, id, Body::Sync(ask));
                return;
            }
            self.out.push(Effect::Notify(Notice::PeerError {
                peer,
                message: message.clone(),
            }));
            self.send(peer, id, withdraw);
            // The device stops offering it (and keeps its own copy).
            self.send(peer, id, Body::Withdrawn);
            return;
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.quarantined.extend(fresh.iter().map(Change::hash));
        }
        let refusal = refuse(Rule::DocNotPermitted, message.clone());
        let hashes: Vec<ChangeHash> = fresh.iter().map(Change::hash).collect();
        let mut then = rejections(refusal.rule, &message, &hashes);
        // Those they build on, still on the device: asked for before it
        // stops offering the document.
        then.extend(ask.map(Body::Sync));
        then.extend([withdraw, Body::Withdrawn]);
        self.out
            .push(Effect::Notify(Notice::PeerError { peer, message }));
        // All of it once the refused changes are kept: the device drops
        // what it is told was refused.
        self.quarantine(peer, id, &refusal, &fresh, then);
    }

    /// Applies changes made durable elsewhere and passes them on to the peers.
    fn external(&mut self, id: DocumentId, changes: &[Vec<u8>], now: Timestamp) {
        if !self.thaw(&id) {
            return;
        }
        let Some(doc) = self.docs.get_mut(&id) else {
            return;
        };
        let parsed: Vec<Change> = changes
            .iter()
            .filter_map(|b| Change::try_from(b.as_slice()).ok())
            .collect();
        match trust(&doc.am, parsed, None) {
            Ok(acc) => {
                if let Some(new) = acc.doc {
                    doc.am = new;
                    self.out.push(Effect::Notify(Notice::Changed(id)));
                    self.flush_doc(id, now);
                }
            }
            Err((refusal, _)) => self.out.push(Effect::Notify(Notice::PeerError {
                peer: 0,
                message: format!("stored changes of {id} do not apply: {refusal}"),
            })),
        }
    }
}

/// The rejections telling a peer its changes were refused: as many frames
/// as it takes, each naming at most [`MAX_REJECTED_CHANGES`] of them.
///
/// [`MAX_REJECTED_CHANGES`]: crate::envelope::MAX_REJECTED_CHANGES
fn rejections(rule: &str, message: &str, hashes: &[ChangeHash]) -> Vec<Body> {
    hashes
        .chunks(crate::envelope::MAX_REJECTED_CHANGES)
        .map(|part| Body::Rejection {
            rule: rule.to_owned(),
            message: message.to_owned(),
            changes: part.to_vec(),
        })
        .collect()
}

/// A peer's heads with each refused change replaced by what it was built
/// on (through refused changes built on refused changes); a refused change
/// whose ancestry is unknown here is left out.
fn heads_without_refused(heads: &[ChangeHash], pd: &PeerDoc) -> Vec<ChangeHash> {
    let mut out = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<ChangeHash> = heads.to_vec();
    while let Some(h) = stack.pop() {
        if !seen.insert(h) {
            continue;
        }
        if !pd.refused.contains(&h) {
            out.insert(h);
        } else if let Some(deps) = pd.refused_deps.get(&h) {
            stack.extend(deps.iter().copied());
        }
    }
    out.into_iter().collect()
}

/// The device side applies what its server sends without judging it. On
/// failure the batch comes back with the reason.
fn trust(
    doc: &Automerge,
    changes: Vec<Change>,
    merged: Option<Automerge>,
) -> Result<crate::validate::Accepted, (Refusal, Vec<Change>)> {
    let fresh = changes
        .into_iter()
        .filter(|c| doc.get_change_meta_by_hash(&c.hash()).is_none())
        .collect();
    let (ready, pending) = crate::validate::split_ready(doc, fresh);
    if ready.is_empty() {
        return Ok(crate::validate::Accepted {
            doc: None,
            applied: ready,
            pending,
            already_stored: 0,
            touched: crate::validate::Touched::default(),
        });
    }
    let fork = match merged {
        Some(m) if pending.is_empty() && crate::validate::is_merge_of(&m, doc, &ready) => m,
        _ => {
            let mut fork = doc.clone();
            if let Err(e) = fork.apply_changes(ready.iter().cloned()) {
                let refusal = refuse(
                    Rule::ChangeMalformed,
                    format!("The server's changes could not be applied: {e}"),
                );
                return Err((refusal, ready));
            }
            fork
        }
    };
    Ok(crate::validate::Accepted {
        doc: Some(fork),
        applied: ready,
        pending,
        already_stored: 0,
        touched: crate::validate::Touched::unknown(),
    })
}
