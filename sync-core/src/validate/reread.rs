//! Reading a document again once a batch is applied: a batch after which
//! the document no longer reads with its kind's reader is refused whole
//! (rule `doc.unreadable`), so that no stored document ever fails to read.
//! The rules before it make such a batch rare (required fields, write-once
//! identity fields, the form of each value); this is the guarantee.
//!
//! The readers are the ones the server's projector and the tablet use:
//! [`AuditView`], [`Nc`], [`Review`]. An audit grows with its checklist, so
//! it is read again only where the batch wrote ([`Touched`]). That is
//! sound because the document read before the batch, and an audit's parts
//! read independently of one another: the header, each response, each
//! finding, the notes; the events are read whole, with the content a lock
//! names (historic content, which only the events can point elsewhere).
//! NCs and reviews are small and are read whole.

use automerge::{Automerge, ROOT};

use super::Touched;
use crate::audit::{AuditContent, AuditHeader, AuditView};
use crate::kind::DocKind;
use crate::nc::Nc;
use crate::review::Review;
use crate::schema::{Reader, SchemaError};

/// Root keys of an audit whose reading depends on more than what a batch
/// wrote into them, or which a batch replaced whole: the audit is read whole.
const WHOLE_WHEN_TOUCHED: &[&str] = &["events", "responses", "findings", "header"];

/// Reads `doc` (a document of `kind` with a batch applied) with its kind's
/// reader: whole if `whole` (a new document), else where `touched` says the
/// batch wrote.
pub(super) fn reread(
    doc: &Automerge,
    kind: DocKind,
    touched: &Touched,
    whole: bool,
) -> Result<(), SchemaError> {
    if whole || touched.everything || kind != DocKind::Audit {
        return read_whole(doc, kind);
    }
    if touched.any("events") || WHOLE_WHEN_TOUCHED.iter().any(|k| touched.whole(k)) {
        return AuditView::read(doc).map(|_| ());
    }
    let r = Reader::now(doc);
    if touched.any("header") {
        AuditHeader::read(&r)?;
    }
    if let Some(obj) = r.opt_map(&ROOT, "responses", "")? {
        for key in touched.entries_of("responses") {
            if r.opt_map(&obj, key, "responses")?.is_some() {
                AuditContent::response(&r, &obj, key)?;
            }
        }
    }
    if let Some(obj) = r.opt_map(&ROOT, "findings", "")? {
        for key in touched.entries_of("findings") {
            if r.opt_map(&obj, key, "findings")?.is_some() {
                AuditContent::finding(&r, &obj, key)?;
            }
        }
    }
    if touched.any("notes") {
        AuditContent::notes(&r)?;
    }
    Ok(())
}

fn read_whole(doc: &Automerge, kind: DocKind) -> Result<(), SchemaError> {
    match kind {
        DocKind::Audit => AuditView::read(doc).map(|_| ()),
        DocKind::Nc => Nc::read(doc).map(|_| ()),
        DocKind::Review => Review::read(doc).map(|_| ()),
    }
}
