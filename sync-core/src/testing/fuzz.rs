//! The bodies of the fuzz targets in `fuzz/`, as plain functions: the
//! libFuzzer target and the replay test (`tests/fuzz_fixtures.rs`) call the
//! same code, so an input that once crashed stays a test under `cargo test`.
//!
//! Each function takes any bytes, never panics on them unless a property
//! fails (that panic is the finding), and bounds its work by the limits the
//! engine holds a peer to. The demo documents they start from are built once
//! per thread.

use std::rc::Rc;

use automerge::Automerge;

use crate::audit::{AuditView, LiveAudit};
use crate::date::Timestamp;
use crate::edit::Edit;
use crate::engine::{Effect, Engine, Input, Limits, RETRY_AFTER_MS, Side};
use crate::envelope::Envelope;
use crate::ids::DocumentId;
use crate::kind::DocKind;
use crate::nc::{DueRules, Nc};
use crate::permissions::{Author, DocContext};
use crate::review::Review;
use crate::testing::fixtures::Demo;
use crate::validate::validate_batch;
use crate::workflow::NcState;

mod program;
pub mod saved;

pub use program::{KEYS, MAX_WRITES, WORDS};
use program::{Program, write};

/// The demo unit and its documents, built once per thread.
struct Base {
    demo: Demo,
    audit: Automerge,
    nc: Automerge,
    review: Automerge,
    /// [`WORDS`] followed by the demo's document ids.
    words: Vec<String>,
    /// The id a `validate` program's new document is sent under.
    new_id: DocumentId,
}

impl Base {
    fn new() -> Base {
        let demo = Demo::new();
        let mut review = Automerge::new();
        demo.must(
            demo.review_id,
            &mut review,
            &demo.nodal,
            Edit::CreateReview {
                unit: demo.unit.clone(),
                title: "Management review Q3".into(),
            },
        );
        let new_id = DocumentId::new_v7(1_768_262_400_000, [7; 10]);
        let mut words: Vec<String> = WORDS.iter().map(|w| (*w).to_owned()).collect();
        words.extend(
            [demo.audit_id, demo.nc_id, demo.review_id, new_id]
                .iter()
                .map(DocumentId::to_string),
        );
        Base {
            audit: demo.realistic_audit(4, 2),
            nc: demo.nc_in(NcState::Open),
            review,
            words,
            new_id,
            demo,
        }
    }
}

thread_local! {
    static BASE: Rc<Base> = Rc::new(Base::new());
}

fn base() -> Rc<Base> {
    BASE.with(Rc::clone)
}

/// The demo audit as the `engine_frame` target's server holds it (for seeds).
pub fn demo_audit() -> Automerge {
    base().audit.clone()
}

/// The demo NC (open, every field filled) as the `validate` target holds it (for seeds).
pub fn demo_nc() -> Automerge {
    base().nc.clone()
}

/// The demo management review as the `validate` target holds it (for seeds).
pub fn demo_review() -> Automerge {
    base().review.clone()
}

/// Envelope decoding: whatever decodes re-encodes to exactly the input (the
/// format is canonical), and that decodes to the same envelope.
pub fn envelope(data: &[u8]) {
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    let bytes = match env.encode() {
        Ok(b) => b,
        Err(e) => panic!("a decoded envelope does not encode: {e} ({env:?})"),
    };
    assert_eq!(bytes, data, "decode then encode changed the bytes");
    assert_eq!(
        Envelope::decode(&bytes).as_ref(),
        Ok(&env),
        "decode, encode, decode changed the envelope"
    );
}

/// A frame from a connected peer: a server engine holds the demo audit, the
/// lead auditor (who may write it) is connected, the bytes arrive as one
/// frame, every store is confirmed, and a retry tick follows. Whatever was
/// accepted, the audit still reads as an audit.
pub fn engine_frame(data: &[u8]) {
    let base = base();
    let demo = &base.demo;
    let now = demo.now();
    let mut server = Engine::new(Side::Server);
    server.insert(demo.audit_id, base.audit.clone());
    let peer = 1;
    let fx = server.handle(
        now,
        Input::Connected {
            peer,
            author: Some(demo.lead.clone()),
            docs: vec![demo.audit_id],
        },
    );
    confirm(&mut server, now, fx);
    let fx = server.handle(
        now,
        Input::Received {
            peer,
            bytes: data.to_vec(),
        },
    );
    confirm(&mut server, now, fx);
    let later = Timestamp(now.0 + RETRY_AFTER_MS);
    let fx = server.handle(later, Input::Tick);
    confirm(&mut server, later, fx);
    if let Some(doc) = server.doc(&demo.audit_id)
        && let Err(e) = AuditView::read(doc)
    {
        panic!("a frame left the server's audit unreadable: {e}");
    }
}

/// Confirms every store and quarantine, as the server's writer does, until
/// the engine has nothing more to store (a few rounds at most: each round
/// only answers the effects of the one before).
fn confirm(engine: &mut Engine, now: Timestamp, mut fx: Vec<Effect>) {
    for _ in 0..8 {
        let tickets: Vec<u64> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Store { ticket, .. }
                | Effect::Replace { ticket, .. }
                | Effect::Quarantine { ticket, .. } => Some(*ticket),
                _ => None,
            })
            .collect();
        if tickets.is_empty() {
            return;
        }
        fx = tickets
            .into_iter()
            .flat_map(|ticket| engine.handle(now, Input::Stored { ticket }))
            .collect();
    }
}

/// A peer's whole document: split into chunks and measured by the inflate
/// bound as the engine measures a sync message's changes, then each document
/// chunk loaded and read by every reader. Nothing may panic.
pub fn load(data: &[u8]) {
    let Ok(chunks) = crate::engine::wire::split_chunks(data) else {
        return;
    };
    let limits = Limits::default();
    let mut left = crate::inflate::Bounds {
        budget: limits.max_inflated_bytes,
        ops: limits.max_ops_per_batch,
        ops_per_change: limits.max_ops_per_change,
    };
    // Every chunk is measured before any is read, as the engine does.
    for chunk in &chunks {
        let Ok(m) = crate::inflate::measure(chunk, left) else {
            return;
        };
        left.budget -= m.cost();
        left.ops -= m.ops;
    }
    for chunk in chunks {
        if chunk.get(8) != Some(&0) {
            continue;
        }
        if let Ok(doc) = Automerge::load(chunk) {
            read_every_way(&doc);
        }
    }
}

fn read_every_way(doc: &Automerge) {
    let today = base().demo.today;
    let _ = DocContext::read(doc);
    let _ = AuditView::read(doc);
    let _ = LiveAudit::read(doc);
    let _ = Nc::read(doc).map(|nc| nc.view(&DueRules::default(), today));
    let _ = Review::read(doc);
}

/// A permitted author's raw Automerge writes, judged by the validator.
///
/// Random change bytes would almost all fail Automerge's checksum, so the
/// bytes are a small program of writes instead, committed as one change by
/// the author's registered device:
///
/// ```text
/// byte 0   author: lead, member, process owner, nodal officer (mod 4)
/// byte 1   document: the demo audit, the demo NC (open), the demo review,
///          a new empty document (mod 4)
/// then at most MAX_WRITES writes, each:
///   op      (mod 6) 0 put value, 1 put object, 2 delete, 3 insert value,
///           4 insert object, 5 increment
///   depth   then depth % 4 bytes, each choosing a child object (mod their
///           count) one level further from the root
///   place   in a map a key: below KEYS.len() that key, otherwise random
///           text of (byte - KEYS.len()) % 17 following bytes; in a list an
///           index (mod length, plus one for inserts)
///   operand put and insert value: a value; put and insert object: its
///           kind (map, list, text: mod 3); increment: the amount
///   value   (mod 12) 0 a word (next byte: WORDS, then the demo's ids),
///           1 random text (next byte: length mod 33), 2 text one byte over
///           MAX_TEXT_BYTES, 3 uint, 4 negative int, 5 int, 6 boolean,
///           7 null, 8 float, 9 timestamp, 10 bytes, 11 counter (next byte)
/// ```
///
/// A batch the validator accepts leaves a document its kind's reader reads;
/// a refusal names its rule; the stored document is never touched.
pub fn validate(data: &[u8]) {
    let base = base();
    let demo = &base.demo;
    let mut p = Program(data);
    let (Some(who), Some(which)) = (p.byte(), p.byte()) else {
        return;
    };
    let author: &Author =
        [&demo.lead, &demo.member, &demo.owner, &demo.nodal][usize::from(who % 4)];
    let empty = Automerge::new();
    let (id, stored) = match which % 4 {
        0 => (demo.audit_id, &base.audit),
        1 => (demo.nc_id, &base.nc),
        2 => (demo.review_id, &base.review),
        _ => (base.new_id, &empty),
    };
    let mut doc = stored.clone();
    if let Some(actor) = author.actors.iter().next() {
        doc.set_actor(actor.clone());
    }
    let mut tx = doc.transaction();
    for _ in 0..MAX_WRITES {
        if !write(&mut tx, &mut p, &base.words) {
            break;
        }
    }
    tx.commit();
    let heads = stored.get_heads();
    let changes = doc.get_changes(&heads);
    if changes.is_empty() {
        return;
    }
    match validate_batch(id, stored, changes, author, demo.today) {
        Ok(accepted) => {
            if let Some(doc) = accepted.doc {
                assert_reads(&doc);
            }
        }
        Err(refusal) => assert!(
            !refusal.rule.is_empty() && !refusal.message.is_empty(),
            "a refusal without a rule or a reason: {refusal:?}"
        ),
    }
    assert_eq!(
        stored.get_heads(),
        heads,
        "validation changed the stored document"
    );
}

/// An accepted document reads with its kind's reader.
fn assert_reads(doc: &Automerge) {
    let ctx = match DocContext::read(doc) {
        Ok(c) => c,
        Err(e) => panic!("an accepted batch left a document without its context: {e}"),
    };
    let read = match ctx.kind {
        DocKind::Audit => AuditView::read(doc).map(|_| ()),
        DocKind::Nc => Nc::read(doc).map(|_| ()),
        DocKind::Review => Review::read(doc).map(|_| ()),
    };
    if let Err(e) = read {
        panic!("an accepted batch left the {} unreadable: {e}", ctx.kind);
    }
}
