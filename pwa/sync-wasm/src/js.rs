//! The JS face of [`Device`]: JSON text in and out, `Uint8Array` for saved
//! documents and frames, ISO 8601 for times (`new Date().toISOString()`) and
//! dates. Every failure is a thrown `Error` whose message names the argument
//! or the rule; nothing here panics on bad input.

use js_sys::Uint8Array;
use sync_core::date::{Date, Timestamp};
use sync_core::ids::DocumentId;
use wasm_bindgen::prelude::*;

use crate::author::{actor, parse_author};
use crate::device::Device;
use crate::edit::{parse_edit, parse_target};
use crate::error::{GlueError, parse};
use crate::notice::{may_edit_json, notices_json};
use crate::view::{audit_json, nc_json, review_json};

/// One user on one device (see the crate docs for the loop the caller runs).
#[wasm_bindgen(js_name = Device)]
#[derive(Debug)]
pub struct JsDevice(Device);

#[wasm_bindgen(js_class = Device)]
impl JsDevice {
    /// A device for the user in `author_json`, editing under the actor `actor_hex`.
    #[wasm_bindgen(constructor)]
    pub fn new(actor_hex: &str, author_json: &str) -> Result<JsDevice, JsError> {
        let author = parse_author(author_json)?;
        Ok(JsDevice(Device::new(actor("actor", actor_hex)?, author)?))
    }

    /// The signed-in user's id.
    pub fn user(&self) -> String {
        self.0.author().user.to_string()
    }

    /// The ids of every document held.
    pub fn documents(&self) -> Vec<String> {
        self.0.documents().iter().map(ToString::to_string).collect()
    }

    /// Makes an edit (see `edit.rs` for the JSON); throws `refused (<rule>): ...` if the rules forbid it.
    pub fn edit(&mut self, doc_id: &str, edit_json: &str, now_iso: &str) -> Result<(), JsError> {
        let edit = parse_edit(edit_json)?;
        Ok(self.0.edit(doc_id_of(doc_id)?, &edit, time(now_iso)?)?)
    }

    /// `{"ok": true}` or `{"ok": false, "rule", "message"}` for `{"field": ...}` or `{"move": ...}`.
    pub fn may_edit(
        &self,
        doc_id: &str,
        target_json: &str,
        today_iso: &str,
    ) -> Result<String, JsError> {
        let target = parse_target(target_json)?;
        let answer = self
            .0
            .may_edit(doc_id_of(doc_id)?, target.as_target(), date(today_iso)?)?;
        Ok(may_edit_json(&answer))
    }

    /// The audit as JSON text, with `gaps`: what keeps it from review.
    pub fn audit_view(&self, doc_id: &str) -> Result<String, JsError> {
        let id = doc_id_of(doc_id)?;
        let checklist = self.0.author().planned.get(&id).map(|p| &*p.checklist);
        Ok(audit_json(self.0.doc(id)?, checklist)?)
    }

    /// The NC as JSON text, with due dates and escalation as of a date.
    pub fn nc_view(&self, doc_id: &str, as_of_iso: &str) -> Result<String, JsError> {
        let author = self.0.author();
        Ok(nc_json(
            self.0.doc(doc_id_of(doc_id)?)?,
            date(as_of_iso)?,
            |unit| author.due_rules_of(unit),
        )?)
    }

    /// The management review as JSON text.
    pub fn review_view(&self, doc_id: &str) -> Result<String, JsError> {
        Ok(review_json(self.0.doc(doc_id_of(doc_id)?)?)?)
    }

    /// The document in Automerge's saved form.
    pub fn save(&self, doc_id: &str) -> Result<Vec<u8>, JsError> {
        Ok(self.0.save(doc_id_of(doc_id)?)?)
    }

    /// Puts a saved document in place of the one held (from device storage).
    pub fn load(&mut self, doc_id: &str, bytes: &[u8]) -> Result<(), JsError> {
        Ok(self.0.load(doc_id_of(doc_id)?, bytes)?)
    }

    /// Merges a saved copy of a document into the one held.
    pub fn merge(&mut self, doc_id: &str, bytes: &[u8]) -> Result<(), JsError> {
        Ok(self.0.merge(doc_id_of(doc_id)?, bytes)?)
    }

    /// The document's heads (change hashes, hex), sorted.
    pub fn heads(&self, doc_id: &str) -> Result<Vec<String>, JsError> {
        let heads = self.0.heads(doc_id_of(doc_id)?)?;
        Ok(heads.iter().map(ToString::to_string).collect())
    }

    /// The server connected. Returns the frames to send it.
    pub fn connect(&mut self, now_iso: &str) -> Result<Vec<Uint8Array>, JsError> {
        Ok(frames(self.0.connect(time(now_iso)?)))
    }

    /// The server went away.
    pub fn disconnect(&mut self, now_iso: &str) -> Result<(), JsError> {
        self.0.disconnect(time(now_iso)?);
        Ok(())
    }

    /// A frame arrived from the server. Returns the frames to send back.
    pub fn receive(&mut self, bytes: &[u8], now_iso: &str) -> Result<Vec<Uint8Array>, JsError> {
        Ok(frames(self.0.receive(bytes.to_vec(), time(now_iso)?)))
    }

    /// Time passed (call every few hundred ms while connected). Returns frames to send.
    pub fn tick(&mut self, now_iso: &str) -> Result<Vec<Uint8Array>, JsError> {
        Ok(frames(self.0.tick(time(now_iso)?)))
    }

    /// Frames queued since the last call (edits made while connected queue some).
    pub fn outgoing(&mut self) -> Vec<Uint8Array> {
        frames(self.0.outgoing())
    }

    /// The ids of the documents not yet saved on the server as they are here.
    pub fn unsynced(&self) -> Vec<String> {
        self.0.unsynced().iter().map(ToString::to_string).collect()
    }

    /// The documents with changes not yet kept on the tablet. Save each one at
    /// once (`save(id)`), write the bytes durably, then call `stored(ids, now)`,
    /// or `store_failed(ids)` if the write failed. Until then the server is told
    /// nothing of those changes.
    pub fn take_unsaved(&mut self) -> Vec<String> {
        self.0
            .take_unsaved()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Whether a change is not yet confirmed as kept on the tablet.
    pub fn has_unsaved(&self) -> bool {
        self.0.has_unsaved()
    }

    /// The documents from `take_unsaved` are kept. Returns frames to send.
    pub fn stored(
        &mut self,
        doc_ids: Vec<String>,
        now_iso: &str,
    ) -> Result<Vec<Uint8Array>, JsError> {
        let ids = doc_ids
            .iter()
            .map(|d| doc_id_of(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(frames(self.0.stored(&ids, time(now_iso)?)))
    }

    /// Writing the documents from `take_unsaved` failed: they are listed again.
    pub fn store_failed(&mut self, doc_ids: Vec<String>) -> Result<(), JsError> {
        let ids = doc_ids
            .iter()
            .map(|d| doc_id_of(d))
            .collect::<Result<Vec<_>, _>>()?;
        self.0.store_failed(&ids);
        Ok(())
    }

    /// News since the last call, as a JSON array of `{"kind": ...}` objects.
    pub fn notices(&mut self) -> String {
        notices_json(&self.0.take_notices())
    }
}

/// A new document id (UUIDv7) from the time and ten random bytes
/// (`Date.now()`, `crypto.getRandomValues(new Uint8Array(10))`).
#[wasm_bindgen]
pub fn new_document_id(unix_ms: f64, random: &[u8]) -> Result<String, JsError> {
    let random: [u8; 10] = random.try_into().map_err(|_| {
        GlueError::input("random", format!("{} bytes given, 10 needed", random.len()))
    })?;
    if !(unix_ms.is_finite() && unix_ms >= 0.0 && unix_ms < 2f64.powi(48)) {
        return Err(GlueError::input("unix_ms", format!("{unix_ms} is not a time in ms")).into());
    }
    Ok(DocumentId::new_v7(unix_ms as i64, random).to_string())
}

/// The version of this crate (the workspace version).
#[wasm_bindgen]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

fn doc_id_of(text: &str) -> Result<DocumentId, GlueError> {
    parse("document id", text)
}

fn time(text: &str) -> Result<Timestamp, GlueError> {
    parse("time", text)
}

fn date(text: &str) -> Result<Date, GlueError> {
    parse("date", text)
}

fn frames(frames: Vec<Vec<u8>>) -> Vec<Uint8Array> {
    frames
        .iter()
        .map(|f| Uint8Array::from(f.as_slice()))
        .collect()
}
