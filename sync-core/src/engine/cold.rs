//! Cold documents (server side): a document every peer is in sync with, and
//! that nothing waits to store, is kept saved (Automerge's compressed format,
//! a few KiB) instead of loaded (tens of KiB). Its peers' sync states stay as
//! they were, so the next message about it carries on where sync left off:
//! the engine loads it again first, by itself, with no I/O.

use std::collections::BTreeSet;

use automerge::{Automerge, ChangeHash};

use super::{Doc, Effect, Engine, Notice, PeerId, Side};
use crate::DocKind;
use crate::ids::DocumentId;
use crate::permissions::DocContext;

/// A document saved to be held cold: made by [`Saved::of`] (anywhere, e.g.
/// on the thread that read it from storage) and handed to
/// [`Engine::insert_saved`].
#[derive(Debug)]
pub struct Saved {
    /// The whole document, saved.
    saved: Vec<u8>,
    /// Its heads, sorted.
    heads: Vec<ChangeHash>,
    /// What kind of document it is.
    kind: DocKind,
    /// What it belongs to (`None`: it did not read), for judging who may
    /// see it without loading it.
    ctx: Option<DocContext>,
}

impl Saved {
    /// Saves a document. `None` if it is not one of ours (it has no kind).
    pub fn of(am: &Automerge) -> Option<Saved> {
        let kind = crate::schema::Reader::now(am).kind().ok()?;
        let mut heads = am.get_heads();
        heads.sort();
        Some(Saved {
            saved: am.save(),
            heads,
            kind,
            ctx: DocContext::read(am).ok(),
        })
    }
}

/// A document kept saved while nobody needs it loaded.
#[derive(Debug)]
pub(super) struct Cold {
    /// It, saved.
    doc: Saved,
    /// The peers it is shared with.
    pub(super) peers: BTreeSet<PeerId>,
}

impl Cold {
    /// Its heads, sorted.
    pub(super) fn heads(&self) -> &[ChangeHash] {
        &self.doc.heads
    }

    /// What kind of document it is.
    pub(super) fn kind(&self) -> DocKind {
        self.doc.kind
    }
}

impl Engine {
    /// Keeps a loaded document saved instead of loaded, if nothing needs it
    /// loaded: a server engine, nothing of it unstored, and every peer it is
    /// shared with has said it holds exactly its heads and been told them,
    /// with no change of it held back. Automerge would then have nothing to
    /// send to any of them (nothing to resend either: no message is awaited
    /// any more), until one of them says something. True if it is cold now.
    pub fn cool(&mut self, id: &DocumentId) -> bool {
        if !self.settled(id) {
            return false;
        }
        let Some(saved) = self.docs.get(id).and_then(|d| Saved::of(&d.am)) else {
            return false;
        };
        let Some(doc) = self.docs.remove(id) else {
            return false;
        };
        for peer in &doc.peers {
            if let Some(pd) = self.peers.get_mut(peer).and_then(|p| p.docs.get_mut(id)) {
                pd.state.in_flight = false;
            }
        }
        self.cold.insert(
            *id,
            Cold {
                doc: saved,
                peers: doc.peers,
            },
        );
        true
    }

    /// Holds a document read from storage (already durable) cold, as
    /// [`Engine::insert`] holds one loaded; a server engine only (a device
    /// keeps its documents loaded: there, this is `insert` of it loaded
    /// again). Loaded or cold already, it is replaced, keeping its peers.
    pub fn insert_saved(&mut self, id: DocumentId, doc: Saved) {
        if self.side != Side::Server {
            if let Ok(am) = Automerge::load(&doc.saved) {
                self.insert(id, am);
            }
            return;
        }
        let peers = match (self.docs.remove(&id), self.cold.remove(&id)) {
            (Some(d), _) => d.peers,
            (None, Some(c)) => c.peers,
            (None, None) => BTreeSet::new(),
        };
        self.cold.insert(id, Cold { doc, peers });
    }

    /// Whether [`Engine::cool`] would keep a loaded document cold now.
    pub fn settled(&self, id: &DocumentId) -> bool {
        if self.side != Side::Server {
            return false;
        }
        let Some(doc) = self.docs.get(id) else {
            return false;
        };
        if doc.unstored > 0 {
            return false;
        }
        let mut heads = doc.am.get_heads();
        heads.sort();
        doc.peers.iter().all(|peer| {
            self.peers
                .get(peer)
                .and_then(|p| p.docs.get(id))
                .is_some_and(|pd| {
                    let mut theirs = pd.state.their_heads.clone().unwrap_or_default();
                    theirs.sort();
                    let mut told = pd.state.last_sent_heads.clone();
                    told.sort();
                    pd.state.have_responded
                        && pd.pending.is_empty()
                        && theirs == heads
                        && told == heads
                })
        })
    }

    /// Whether a document is held, loaded or cold.
    pub fn holds(&self, id: &DocumentId) -> bool {
        self.docs.contains_key(id) || self.cold.contains_key(id)
    }

    /// Whether a document is held cold.
    pub fn is_cold(&self, id: &DocumentId) -> bool {
        self.cold.contains_key(id)
    }

    /// A held document, loaded first if it is cold. `None` if it is not
    /// held (or its saved copy no longer loads: see [`Engine::thaw`]).
    pub fn hot(&mut self, id: &DocumentId) -> Option<&Automerge> {
        if self.thaw(id) { self.doc(id) } else { None }
    }

    /// A held document's heads, sorted, read without loading a cold one.
    pub fn heads(&self, id: &DocumentId) -> Option<Vec<ChangeHash>> {
        match (self.docs.get(id), self.cold.get(id)) {
            (Some(d), _) => {
                let mut h = d.am.get_heads();
                h.sort();
                Some(h)
            }
            (None, Some(c)) => Some(c.heads().to_vec()),
            (None, None) => None,
        }
    }

    /// The loaded documents (hot), as opposed to the cold ones.
    pub fn hot_ids(&self) -> impl Iterator<Item = &DocumentId> {
        self.docs.keys()
    }

    /// How many documents are loaded (hot).
    pub fn hot_count(&self) -> usize {
        self.docs.len()
    }

    /// What a held document belongs to, read without loading a cold one.
    /// `None` if it is not held or does not read.
    pub fn context(&self, id: &DocumentId) -> Option<DocContext> {
        match self.docs.get(id) {
            Some(doc) => DocContext::read(&doc.am).ok(),
            None => self.cold.get(id).and_then(|c| c.doc.ctx.clone()),
        }
    }

    /// How many documents are held cold.
    pub fn cold_count(&self) -> usize {
        self.cold.len()
    }

    /// Loads a cold document again. A saved copy that no longer loads (a
    /// fault: it was saved by this process) is dropped with every sharing of
    /// it, and reported: the caller reads it from storage again, and the
    /// peers' next messages open it afresh. False only then: whoever
    /// wanted it must not take it for a document never held.
    #[must_use]
    pub(super) fn thaw(&mut self, id: &DocumentId) -> bool {
        let Some(cold) = self.cold.remove(id) else {
            return true;
        };
        match Automerge::load(&cold.doc.saved) {
            Ok(am) => {
                self.docs.insert(
                    *id,
                    Doc {
                        am,
                        unstored: 0,
                        peers: cold.peers,
                    },
                );
                true
            }
            Err(e) => {
                for peer in &cold.peers {
                    if let Some(p) = self.peers.get_mut(peer)
                        && let Some(pd) = p.docs.remove(id)
                    {
                        p.pending -= pd.pending.len();
                    }
                }
                self.out.push(Effect::Notify(Notice::Fault {
                    doc: *id,
                    message: format!("the saved copy of {id} held in memory does not load: {e}"),
                }));
                false
            }
        }
    }
}
