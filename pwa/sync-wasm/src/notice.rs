//! The engine's news and the answer to "may I edit this?", as JSON for the UI.

use serde::Serialize;
use sync_core::engine::Notice;
use sync_core::permissions::Refusal;

use crate::view::to_json;

/// `{"ok": true}` or `{"ok": false, "rule": "...", "message": "..."}`.
pub fn may_edit_json(answer: &Result<(), Refusal>) -> String {
    let (rule, message) = match answer {
        Ok(()) => (None, None),
        Err(r) => (Some(r.rule), Some(r.message.as_str())),
    };
    to_json(&MayEditJson {
        ok: answer.is_ok(),
        rule,
        message,
    })
}

/// A JSON array of notices, each `{"kind": ..., ...}`.
pub fn notices_json(notices: &[DeviceNotice]) -> String {
    to_json(&notices)
}

/// News for the UI: the engine's notices, plus changes it kept out of a document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceNotice {
    /// A document's content changed (an edit, or changes from the peer).
    Changed {
        /// The document.
        doc: String,
    },
    /// The peer created a document this device did not have.
    Created {
        /// The document.
        doc: String,
    },
    /// The server refused some of this device's changes.
    Rejected {
        /// The document.
        doc: String,
        /// The rule broken.
        rule: String,
        /// Why, in words.
        message: String,
        /// The refused changes' hashes.
        changes: Vec<String>,
    },
    /// The server no longer shows this document to this device.
    Withdrawn {
        /// The document.
        doc: String,
    },
    /// The peer sent something that could not be used.
    PeerError {
        /// What was wrong.
        message: String,
    },
    /// Changes from the peer that could not be applied and were kept out.
    Quarantined {
        /// The document.
        doc: String,
        /// The rule broken.
        rule: String,
        /// Why, in words.
        message: String,
        /// How many changes.
        changes: usize,
    },
}

impl DeviceNotice {
    /// The UI's form of an engine notice.
    pub fn of(notice: &Notice) -> DeviceNotice {
        match notice {
            Notice::Changed(doc) => DeviceNotice::Changed {
                doc: doc.to_string(),
            },
            Notice::Created { doc, .. } => DeviceNotice::Created {
                doc: doc.to_string(),
            },
            Notice::Rejected {
                doc,
                rule,
                message,
                changes,
            } => DeviceNotice::Rejected {
                doc: doc.to_string(),
                rule: rule.clone(),
                message: message.clone(),
                changes: changes.iter().map(ToString::to_string).collect(),
            },
            Notice::Withdrawn(doc) => DeviceNotice::Withdrawn {
                doc: doc.to_string(),
            },
            // Only a server engine drops a document it could not store.
            Notice::Dropped(doc) => DeviceNotice::PeerError {
                message: format!("document {doc} could not be stored and was read again"),
            },
            // Only a server engine reports faults; shown like a peer's error.
            Notice::PeerError { message, .. } | Notice::Fault { message, .. } => {
                DeviceNotice::PeerError {
                    message: message.clone(),
                }
            }
        }
    }
}

#[derive(Serialize)]
struct MayEditJson<'a> {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}
