//! The device's side of a refusal (DESIGN §4). The device keeps a log of its
//! user's edits until the server's heads cover them. When the server refuses
//! some changes, [`Engine::recover`] takes them (and every change built on
//! them) out of the document, makes the user's refused or orphaned edits again
//! under a fresh actor id where the rules still allow them, and keeps the rest
//! in a list the user can see and export. Nothing is dropped silently.

use std::collections::HashSet;

use automerge::{ActorId, Automerge, Change, ChangeHash};

use super::{Effect, Engine, PeerDoc, Side};
use crate::date::Timestamp;
use crate::edit::{Edit, apply_edit};
use crate::ids::DocumentId;
use crate::permissions::{Author, Refusal, refuse};
use crate::rules::Rule;

/// Edits the server refused twice are not made a third time.
const MAX_REPLAYS: u8 = 1;

/// One edit of this device's user, kept until the server acknowledges it.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalEdit {
    /// The change the edit made.
    pub hash: ChangeHash,
    /// The edit.
    pub edit: Edit,
    /// When the user made it.
    pub at: Timestamp,
    /// How many times the server has refused it.
    pub refusals: u8,
}

/// An edit the server refused and the device could not make again.
#[derive(Clone, Debug, PartialEq)]
pub struct RefusedEdit {
    /// The document.
    pub doc: DocumentId,
    /// The edit, when the device still knew it (else only the change's bytes).
    pub edit: Option<Edit>,
    /// The refused change, as Automerge saved it.
    pub change: Vec<u8>,
    /// When it was made.
    pub at: Option<Timestamp>,
    /// The rule that refused it.
    pub rule: String,
    /// Why, in words.
    pub message: String,
}

/// What [`Engine::recover`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovery {
    /// Changes taken out of the document.
    pub removed: usize,
    /// Edits made again under the fresh actor id.
    pub replayed: usize,
    /// Edits that stay refused (also added to [`Engine::refused_edits`]).
    pub refused: Vec<RefusedEdit>,
    /// The effects to carry out (store the document anew, then sync).
    pub effects: Vec<Effect>,
}

impl Engine {
    /// This user's edits of a document the server has not acknowledged yet.
    pub fn unacknowledged(&self, id: &DocumentId) -> &[LocalEdit] {
        self.local.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    /// Every edit the server refused that could not be made again.
    pub fn refused_edits(&self) -> &[RefusedEdit] {
        &self.refused_edits
    }

    /// The actor id this device edits under.
    pub fn actor(&self) -> Option<&ActorId> {
        match &self.side {
            Side::Device(a) => Some(a),
            Side::Server => None,
        }
    }

    /// Drops from the log the edits the server's heads now cover.
    pub(super) fn prune_acknowledged(&mut self, peer: super::PeerId, id: DocumentId) {
        let Some(log) = self.local.get_mut(&id).filter(|l| !l.is_empty()) else {
            return;
        };
        let (Some(doc), Some(pd)) = (
            self.docs.get(&id),
            self.peers.get(&peer).and_then(|p| p.docs.get(&id)),
        ) else {
            return;
        };
        let shared = &pd.state.shared_heads;
        if shared.is_empty() {
            return;
        }
        let not_shared: HashSet<ChangeHash> = doc
            .am
            .get_changes(shared)
            .iter()
            .map(Change::hash)
            .collect();
        log.retain(|e| {
            not_shared.contains(&e.hash) || doc.am.get_change_meta_by_hash(&e.hash).is_none()
        });
    }

    /// Takes refused changes (and those built on them) out of a document and
    /// makes this user's affected edits again under `fresh`, an actor id newly
    /// registered to this user and device, where `author`'s rights still allow.
    pub fn recover(
        &mut self,
        id: DocumentId,
        refused: &[ChangeHash],
        refusal: &Refusal,
        fresh: ActorId,
        author: &Author,
    ) -> Result<Recovery, Refusal> {
        if !matches!(self.side, Side::Device(_)) {
            return Err(refuse(
                Rule::EngineSide,
                "Only a device recovers from a refusal.",
            ));
        }
        if !author.actors.contains(&fresh) {
            return Err(refuse(
                Rule::ActorNotRegistered,
                format!("{fresh} is not registered to {}'s devices.", author.user),
            ));
        }
        let Some(doc) = self.docs.get(&id) else {
            return Err(refuse(
                Rule::EditKind,
                format!("There is no document {id} here."),
            ));
        };
        let refused: HashSet<ChangeHash> = refused.iter().copied().collect();
        let mut tainted: HashSet<ChangeHash> = HashSet::new();
        let mut keep = Vec::new();
        let mut taken = Vec::new();
        for change in doc.am.get_changes(&[]) {
            let hash = change.hash();
            if refused.contains(&hash) || change.deps().iter().any(|d| tainted.contains(d)) {
                tainted.insert(hash);
                taken.push(change.clone());
            } else {
                keep.push(change.clone());
            }
        }
        let mut rebuilt = Automerge::new().with_actor(fresh.clone());
        rebuilt.apply_changes(keep).map_err(|e| {
            refuse(
                Rule::EditFailed,
                format!("The document could not be rebuilt without the refused changes: {e}"),
            )
        })?;
        let mut recovery = Recovery {
            removed: taken.len(),
            ..Recovery::default()
        };
        let log = self.local.remove(&id).unwrap_or_default();
        let logged: HashSet<ChangeHash> = log.iter().map(|e| e.hash).collect();
        let mut new_log = Vec::new();
        for entry in log {
            if !tainted.contains(&entry.hash) {
                new_log.push(entry);
                continue;
            }
            let bytes = taken
                .iter()
                .find(|c| c.hash() == entry.hash)
                .map(|c| c.raw_bytes().to_vec())
                .unwrap_or_default();
            let gave_up = |rule: &str, message: &str| RefusedEdit {
                doc: id,
                edit: Some(entry.edit.clone()),
                change: bytes.clone(),
                at: Some(entry.at),
                rule: rule.to_owned(),
                message: message.to_owned(),
            };
            if entry.refusals >= MAX_REPLAYS {
                recovery
                    .refused
                    .push(gave_up(refusal.rule, &refusal.message));
                continue;
            }
            match apply_edit(id, &mut rebuilt, &entry.edit, author, entry.at) {
                Ok(change) => {
                    recovery.replayed += 1;
                    new_log.push(LocalEdit {
                        hash: change.hash(),
                        edit: entry.edit,
                        at: entry.at,
                        refusals: entry.refusals + 1,
                    });
                }
                Err(r) => recovery.refused.push(gave_up(r.rule, &r.message)),
            }
        }
        // Refused changes this device has no edit for (made before the log was
        // kept, or restored from a backup): kept by their bytes.
        for change in taken.iter().filter(|c| !logged.contains(&c.hash())) {
            recovery.refused.push(RefusedEdit {
                doc: id,
                edit: None,
                change: change.raw_bytes().to_vec(),
                at: None,
                rule: refusal.rule.to_owned(),
                message: refusal.message.clone(),
            });
        }
        self.local.insert(id, new_log);
        self.side = Side::Device(fresh);
        let saved = rebuilt.save();
        if let Some(d) = self.docs.get_mut(&id) {
            d.am = rebuilt;
        }
        for p in self.peers.values_mut() {
            if let Some(pd) = p.docs.get_mut(&id) {
                let refused_before = std::mem::take(&mut pd.refused);
                p.pending -= pd.pending.len();
                *pd = PeerDoc {
                    refused: refused_before,
                    ..PeerDoc::default()
                };
            }
        }
        // Every held document edits under the fresh actor from now on.
        let fresh_actor = self.actor().cloned();
        if let Some(actor) = fresh_actor {
            for d in self.docs.values_mut() {
                d.am.set_actor(actor.clone());
            }
        }
        self.refused_edits.extend(recovery.refused.iter().cloned());
        let ticket = self.ticket(id, None, Vec::new());
        self.out.push(Effect::Replace {
            ticket,
            doc: id,
            saved,
        });
        self.out.push(Effect::Notify(super::Notice::Changed(id)));
        recovery.effects = std::mem::take(&mut self.out);
        Ok(recovery)
    }
}
