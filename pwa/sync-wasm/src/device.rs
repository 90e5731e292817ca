//! The device: a sync-core [`Engine`] on the device side, the signed-in user's
//! [`Author`], and the queue of frames for its one peer (the server). This is
//! the glue's native Rust API; [`crate::js`] exposes it to JS with strings and
//! byte arrays, and the native peer of the Node tests uses it directly.
//!
//! Effects are carried out here: `Send` frames are queued for the caller,
//! `Notify` and `Quarantine` become [`DeviceNotice`]s. `Store` and `Replace`
//! wait for the caller: their documents are listed by [`Device::take_unsaved`],
//! the caller writes each one's [`Device::save`] to durable storage (IndexedDB
//! with strict durability) and then confirms with [`Device::stored`]. Until a
//! document is confirmed, the engine tells the server nothing of its new
//! changes, so the server never holds an acknowledgement for a change the
//! tablet could still lose, and the screen says "saved on this tablet" only
//! after the confirmation.

use std::collections::BTreeMap;

use sync_core::automerge::{ActorId, Automerge, ChangeHash};
use sync_core::date::{Date, Timestamp};
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, PeerId, Side};
use sync_core::ids::DocumentId;
use sync_core::permissions::{Author, DocContext, Refusal, Target, may_edit};

use crate::error::GlueError;
use crate::notice::DeviceNotice;

/// The connection number of the device's one peer.
pub const PEER: PeerId = 0;

/// One user on one device.
#[derive(Debug)]
pub struct Device {
    engine: Engine,
    author: Author,
    outbox: Vec<Vec<u8>>,
    notices: Vec<DeviceNotice>,
    /// Store tickets waiting to be taken by the caller, by document.
    unsaved: BTreeMap<DocumentId, Vec<u64>>,
    /// Store tickets taken by the caller and not yet confirmed, by document.
    saving: BTreeMap<DocumentId, Vec<u64>>,
}

impl Device {
    /// A device editing as `author` under `actor`, which must be one of the
    /// author's registered actors (the server refuses changes under any other).
    pub fn new(actor: ActorId, author: Author) -> Result<Device, GlueError> {
        if !author.actors.contains(&actor) {
            return Err(GlueError::input(
                "actor",
                format!("{actor} is not registered to {}'s devices", author.user),
            ));
        }
        Ok(Device {
            engine: Engine::new(Side::Device(actor)),
            author,
            outbox: Vec::new(),
            notices: Vec::new(),
            unsaved: BTreeMap::new(),
            saving: BTreeMap::new(),
        })
    }

    /// The signed-in user's rights.
    pub fn author(&self) -> &Author {
        &self.author
    }

    /// The ids of every document held.
    pub fn documents(&self) -> Vec<DocumentId> {
        self.engine.doc_ids().copied().collect()
    }

    /// A held document.
    pub fn doc(&self, id: DocumentId) -> Result<&Automerge, GlueError> {
        self.engine.doc(&id).ok_or(GlueError::UnknownDocument(id))
    }

    /// Makes an edit at `now`, checked by the same rules the server applies.
    pub fn edit(&mut self, id: DocumentId, edit: &Edit, now: Timestamp) -> Result<(), GlueError> {
        let effects = self.engine.edit(now, id, edit, &self.author)?;
        self.carry_out(now, effects);
        Ok(())
    }

    /// May the user make this edit on `today`? `Err` only if the document is not held.
    pub fn may_edit(
        &self,
        id: DocumentId,
        target: Target<'_>,
        today: Date,
    ) -> Result<Result<(), Refusal>, GlueError> {
        Ok(may_edit(self.doc(id)?, &self.author, target, today))
    }

    /// The documents the server has not yet said it holds exactly as this
    /// device does (every document while offline). The server says so only of
    /// what it has stored, so a document not listed is saved on the server.
    pub fn unsynced(&self) -> Vec<DocumentId> {
        self.engine
            .doc_ids()
            .filter(|id| !self.engine.in_sync(PEER, id))
            .copied()
            .collect()
    }

    /// The document's heads, sorted.
    pub fn heads(&self, id: DocumentId) -> Result<Vec<ChangeHash>, GlueError> {
        let mut heads = self.doc(id)?.get_heads();
        heads.sort();
        Ok(heads)
    }

    /// The document in Automerge's saved form.
    pub fn save(&self, id: DocumentId) -> Result<Vec<u8>, GlueError> {
        Ok(self.doc(id)?.save())
    }

    /// Puts a saved document in place of whatever is held under `id` (as
    /// read from device storage: already durable). The bytes must be that document.
    pub fn load(&mut self, id: DocumentId, bytes: &[u8]) -> Result<(), GlueError> {
        let am = read_saved(id, bytes)?;
        self.engine.insert(id, am);
        Ok(())
    }

    /// Merges a saved copy of a document (e.g. from a file) into the one held,
    /// keeping both sides' changes. A connected peer hears of the merged
    /// changes at its next exchange with this device.
    pub fn merge(&mut self, id: DocumentId, bytes: &[u8]) -> Result<(), GlueError> {
        let mut other = read_saved(id, bytes)?;
        let mut am = self.engine.doc(&id).cloned().unwrap_or_default();
        am.merge(&mut other)
            .map_err(|e| GlueError::BadDocument(format!("The documents cannot be merged: {e}")))?;
        self.engine.insert(id, am);
        Ok(())
    }

    /// The peer connected: share every held document with it. Returns frames to send.
    pub fn connect(&mut self, now: Timestamp) -> Vec<Vec<u8>> {
        let docs = self.documents();
        self.handle(
            now,
            Input::Connected {
                peer: PEER,
                author: None,
                docs,
            },
        )
    }

    /// The peer went away: frames not yet sent are dropped, and sync starts
    /// afresh on the next [`Device::connect`].
    pub fn disconnect(&mut self, now: Timestamp) {
        // `handle` hands back (here: drops) whatever the queue held.
        self.handle(now, Input::Disconnected { peer: PEER });
    }

    /// A frame arrived from the peer. Returns frames to send.
    pub fn receive(&mut self, bytes: Vec<u8>, now: Timestamp) -> Vec<Vec<u8>> {
        self.handle(now, Input::Received { peer: PEER, bytes })
    }

    /// Time passed: resend what got no answer. Returns frames to send.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Vec<u8>> {
        self.handle(now, Input::Tick)
    }

    /// Frames queued since the last call (an edit while connected queues some).
    pub fn outgoing(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outbox)
    }

    /// The documents with changes not yet in durable storage. The caller
    /// saves each one now ([`Device::save`], before any other call changes
    /// them), writes the bytes durably, then calls [`Device::stored`] with
    /// these ids, or [`Device::store_failed`] if the write failed.
    pub fn take_unsaved(&mut self) -> Vec<DocumentId> {
        let ids: Vec<DocumentId> = self.unsaved.keys().copied().collect();
        for (id, tickets) in std::mem::take(&mut self.unsaved) {
            self.saving.entry(id).or_default().extend(tickets);
        }
        ids
    }

    /// Whether any change is not yet confirmed as durable.
    pub fn has_unsaved(&self) -> bool {
        !self.unsaved.is_empty() || !self.saving.is_empty()
    }

    /// The documents taken by [`Device::take_unsaved`] are durable: their
    /// changes may now be offered to the server. Returns frames to send.
    pub fn stored(&mut self, ids: &[DocumentId], now: Timestamp) -> Vec<Vec<u8>> {
        let mut effects = Vec::new();
        for id in ids {
            for ticket in self.saving.remove(id).unwrap_or_default() {
                effects.extend(self.engine.handle(now, Input::Stored { ticket }));
            }
        }
        self.carry_out(now, effects);
        self.outgoing()
    }

    /// Writing the documents taken by [`Device::take_unsaved`] failed: they
    /// are listed again by the next [`Device::take_unsaved`].
    pub fn store_failed(&mut self, ids: &[DocumentId]) {
        for id in ids {
            if let Some(tickets) = self.saving.remove(id) {
                self.unsaved.entry(*id).or_default().extend(tickets);
            }
        }
    }

    /// News since the last call.
    pub fn take_notices(&mut self) -> Vec<DeviceNotice> {
        std::mem::take(&mut self.notices)
    }

    fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Vec<u8>> {
        let effects = self.engine.handle(now, input);
        self.carry_out(now, effects);
        self.outgoing()
    }

    fn carry_out(&mut self, now: Timestamp, effects: Vec<Effect>) {
        let mut queue = effects;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for effect in queue {
                match effect {
                    Effect::Send { bytes, .. } => self.outbox.push(bytes),
                    // Confirmed by the caller: see the module docs. A `Replace`
                    // holds the document the engine now holds, so saving that is storing it.
                    Effect::Store { ticket, doc, .. } | Effect::Replace { ticket, doc, .. } => {
                        self.unsaved.entry(doc).or_default().push(ticket);
                    }
                    Effect::Notify(notice) => self.notices.push(DeviceNotice::of(&notice)),
                    Effect::Quarantine {
                        ticket,
                        doc,
                        rule,
                        message,
                        changes,
                        ..
                    } => {
                        self.notices.push(DeviceNotice::Quarantined {
                            doc: doc.to_string(),
                            rule,
                            message,
                            changes: changes.len(),
                        });
                        // Kept in the notice the page shows and stores.
                        next.extend(self.engine.handle(now, Input::Stored { ticket }));
                    }
                }
            }
            queue = next;
        }
    }
}

/// Loads saved bytes and checks that they hold the SQM document `id`.
fn read_saved(id: DocumentId, bytes: &[u8]) -> Result<Automerge, GlueError> {
    let am = Automerge::load(bytes)
        .map_err(|e| GlueError::BadDocument(format!("The bytes are not a saved document: {e}")))?;
    let ctx = DocContext::read(&am)
        .map_err(|e| GlueError::BadDocument(format!("The bytes are not an SQM document: {e}")))?;
    if ctx.id != id {
        return Err(GlueError::BadDocument(format!(
            "The bytes hold document {}, not {id}.",
            ctx.id
        )));
    }
    Ok(am)
}

#[cfg(test)]
mod tests {
    use sync_core::testing::fixtures::{Demo, actor};

    use super::*;

    #[test]
    fn an_actor_not_registered_to_the_user_is_refused() {
        let demo = Demo::new();
        let err = Device::new(actor(2), demo.lead.clone()).err();
        assert!(
            err.is_some_and(|e| e.to_string().contains("not registered to k.iyer")),
            "device made for an unregistered actor"
        );
    }

    #[test]
    fn a_forbidden_edit_is_refused_with_its_rule_and_changes_nothing() -> Result<(), GlueError> {
        let demo = Demo::new();
        let mut device = Device::new(actor(1), demo.lead.clone())?;
        device.load(demo.nc_id, &demo.nc().save())?;
        let before = device.heads(demo.nc_id)?;
        let refused = device.edit(demo.nc_id, &Edit::SetCorrection("fixed".into()), demo.now());
        assert!(
            matches!(&refused, Err(GlueError::Refused(r)) if r.rule == "nc.owner_fields"),
            "{refused:?}"
        );
        assert_eq!(device.heads(demo.nc_id)?, before);
        Ok(())
    }

    #[test]
    fn two_devices_sync_to_the_same_heads() -> Result<(), GlueError> {
        let demo = Demo::new();
        let mut lead = Device::new(actor(1), demo.lead.clone())?;
        let mut member = Device::new(actor(2), demo.member.clone())?;
        lead.edit(demo.audit_id, &Edit::CreateAudit(demo.header()), demo.now())?;
        assert_eq!(lead.unsynced(), vec![demo.audit_id], "not connected yet");
        let (mut to_member, mut to_lead) = (lead.connect(demo.now()), member.connect(demo.now()));
        to_member.extend(keep(&mut lead, demo.now()));
        for _ in 0..20 {
            let (a, b) = (std::mem::take(&mut to_lead), std::mem::take(&mut to_member));
            for f in a {
                to_member.extend(lead.receive(f, demo.now()));
                to_member.extend(keep(&mut lead, demo.now()));
            }
            for f in b {
                to_lead.extend(member.receive(f, demo.now()));
                to_lead.extend(keep(&mut member, demo.now()));
            }
        }
        assert!(to_lead.is_empty() && to_member.is_empty(), "still talking");
        assert_eq!(
            lead.unsynced(),
            Vec::<DocumentId>::new(),
            "the peer holds it all"
        );
        assert_eq!(lead.heads(demo.audit_id)?, member.heads(demo.audit_id)?);
        lead.edit(demo.audit_id, &Edit::SetNotes("later".into()), demo.now())?;
        assert_eq!(lead.unsynced(), vec![demo.audit_id], "a new edit");
        Ok(())
    }

    /// What the PWA does after every call: save what changed, then confirm it.
    fn keep(device: &mut Device, now: Timestamp) -> Vec<Vec<u8>> {
        let ids = device.take_unsaved();
        device.stored(&ids, now)
    }

    #[test]
    fn nothing_is_offered_to_the_server_before_the_tablet_has_kept_it() -> Result<(), GlueError> {
        let demo = Demo::new();
        let mut lead = Device::new(actor(1), demo.lead.clone())?;
        assert!(lead.connect(demo.now()).is_empty(), "nothing held yet");
        lead.edit(demo.audit_id, &Edit::CreateAudit(demo.header()), demo.now())?;
        assert!(lead.has_unsaved());
        assert!(lead.outgoing().is_empty(), "offered before it was kept");
        assert!(
            lead.tick(demo.now()).is_empty(),
            "offered on a tick before it was kept"
        );

        // The write failed: the document is listed again and still not offered.
        let ids = lead.take_unsaved();
        assert_eq!(ids, vec![demo.audit_id]);
        assert!(lead.take_unsaved().is_empty(), "taken twice");
        lead.store_failed(&ids);
        assert!(lead.tick(demo.now()).is_empty());
        let ids = lead.take_unsaved();
        assert_eq!(ids, vec![demo.audit_id], "lost after a failed write");

        let frames = lead.stored(&ids, demo.now());
        assert!(!frames.is_empty(), "kept, but not offered");
        assert!(!lead.has_unsaved());
        Ok(())
    }

    #[test]
    fn a_review_opened_by_the_nodal_officer_reads_back_as_the_dashboard_lists_it()
    -> Result<(), GlueError> {
        let demo = Demo::new();
        let mut nodal = Device::new(actor(4), demo.nodal.clone())?;
        let open = Edit::CreateReview {
            unit: demo.unit.clone(),
            title: "MR-3".into(),
        };
        nodal.edit(demo.review_id, &open, demo.now())?;
        let view: serde_json::Value =
            serde_json::from_str(&crate::view::review_json(nodal.doc(demo.review_id)?)?)
                .map_err(|e| GlueError::BadDocument(e.to_string()))?;
        assert_eq!(view["kind"], "review");
        assert_eq!(view["title"], "MR-3");
        assert_eq!(view["unit"], demo.unit.to_string());
        assert_eq!(view["held_on"], serde_json::Value::Null);
        // An NC is no review: the view says so rather than showing it as one.
        nodal.load(demo.nc_id, &demo.nc().save())?;
        assert!(crate::view::review_json(nodal.doc(demo.nc_id)?).is_err());
        Ok(())
    }

    #[test]
    fn loading_checks_the_document_id() -> Result<(), GlueError> {
        let demo = Demo::new();
        let mut device = Device::new(actor(1), demo.lead.clone())?;
        let wrong = device.load(demo.audit_id, &demo.nc().save());
        assert!(matches!(wrong, Err(GlueError::BadDocument(_))), "{wrong:?}");
        assert!(device.load(demo.audit_id, b"junk").is_err());
        assert!(matches!(
            device.save(demo.audit_id),
            Err(GlueError::UnknownDocument(_))
        ));
        Ok(())
    }
}
