//! The bodies of the fuzz targets in `fuzz/`, as plain functions: the
//! libFuzzer target and the replay test (`tests/fuzz_fixtures.rs`) call the
//! same code, so an input that once crashed stays a test under `cargo test`.
//!
//! Each function takes any bytes, never panics on them unless a property
//! fails (that panic is the finding), and bounds its work by the limits the
//! engine holds a peer to. The demo documents they start from are built once
//! per thread.

use std::rc::Rc;

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ValueRef};

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
use crate::schema::MAX_TEXT_BYTES;
use crate::testing::fixtures::Demo;
use crate::validate::validate_batch;
use crate::workflow::NcState;

/// The most writes one `validate` program makes: enough for any edit the
/// app makes (an entry map and its five fields), few enough to stay quick.
pub const MAX_WRITES: usize = 32;

/// Keys a `validate` program writes under, by index: every key of the three
/// schemas, and the entry keys the demo documents hold.
pub const KEYS: &[&str] = &[
    "schema",
    "v",
    "id",
    "unit",
    "audit",
    "process",
    "finding",
    "class",
    "clause",
    "raised_on",
    "header",
    "number",
    "scope",
    "template",
    "lead",
    "team",
    "start",
    "end",
    "responses",
    "findings",
    "notes",
    "events",
    "description",
    "correction",
    "root_cause",
    "actions",
    "extensions",
    "verification",
    "title",
    "minutes",
    "inputs",
    "decisions",
    "held_on",
    "by",
    "at",
    "move",
    "from",
    "note",
    "type",
    "value",
    "text",
    "evidence",
    "sha256",
    "name",
    "mime",
    "size",
    "taken_at",
    "owner",
    "target",
    "done_on",
    "on",
    "due",
    "of",
    "justification",
    "heads",
    "sd.item_0@P02",
    "sd.item_0@P03",
    "sd.item_1@P02",
    "sd.item_9@P08",
    "f-00",
    "f-01",
    "f-02",
    "a-1",
    "a-2",
];

/// Text values a `validate` program writes, by index (the demo's document
/// ids follow them): each is of the form some field requires.
pub const WORDS: &[&str] = &[
    "sqm.audit",
    "sqm.nc",
    "sqm.review",
    "DEMO-I",
    "P02",
    "P03",
    "P08",
    "3.2.1.3",
    "3.4",
    "k.iyer",
    "s.khan",
    "ac.div2",
    "a.rao",
    "p.sharma",
    "2026-01-15",
    "2026-02-15",
    "2025-04-01",
    "2026-01-15T10:00:00Z",
    "2026-01-15T10:00:00.250Z",
    "major",
    "minor",
    "observation",
    "ofi",
    "good_practice",
    "cpna",
    "yn",
    "text",
    "number",
    "date",
    "photo",
    "conform",
    "partly",
    "not_conform",
    "na",
    "yes",
    "no",
    "raise",
    "submit_response",
    "accept_plan",
    "reject_plan",
    "mark_implemented",
    "verify_effective",
    "verify_not_effective",
    "withdraw",
    "reopen",
    "submit_for_review",
    "return_for_edit",
    "issue_report",
    "accept_late_edits",
    "draft",
    "open",
    "in_progress",
    "in_review",
    "report_issued",
    "response",
    "action",
    "f-01",
    "a-1",
    "image/jpeg",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "",
];

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
    let mut left = Limits::default().max_inflated_bytes;
    for chunk in chunks {
        let Ok(size) = crate::inflate::chunk_size(chunk, left) else {
            return;
        };
        left -= size;
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

/// The bytes of a `validate` program, read from the front; reading past the end gives `None`.
struct Program<'a>(&'a [u8]);

impl<'a> Program<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn text(&mut self, n: usize) -> String {
        String::from_utf8_lossy(self.take(n)).into_owned()
    }
}

/// Reads and makes one write; false once the program has ended.
fn write(tx: &mut Transaction<'_>, p: &mut Program<'_>, words: &[String]) -> bool {
    let (Some(op), Some(depth)) = (p.byte(), p.byte()) else {
        return false;
    };
    let mut obj = ROOT;
    for _ in 0..depth % 4 {
        let Some(pick) = p.byte() else {
            return false;
        };
        let children = child_objects(tx, &obj);
        if children.is_empty() {
            break;
        }
        obj = children[usize::from(pick) % children.len()].clone();
    }
    // Automerge refuses writes that do not fit the object (a key into a list,
    // a counter that is not one): the refusal is the outcome, and the
    // program goes on.
    match tx.object_type(&obj) {
        Ok(ObjType::Map | ObjType::Table) => {
            let Some(key) = key(p) else {
                return false;
            };
            let _ = match op % 6 {
                0 | 3 => match value(p, words) {
                    Some(v) => tx.put(&obj, key, v),
                    None => return false,
                },
                1 | 4 => match p.byte() {
                    Some(k) => tx.put_object(&obj, key, obj_type(k)).map(|_| ()),
                    None => return false,
                },
                2 => tx.delete(&obj, key),
                _ => match p.byte() {
                    Some(by) => tx.increment(&obj, key, i64::from(by)),
                    None => return false,
                },
            };
        }
        Ok(ObjType::List) => {
            let Some(at) = p.byte() else {
                return false;
            };
            let len = tx.length(&obj);
            let within = |n: usize| usize::from(at) % n.max(1);
            let _ = match op % 6 {
                0 => match value(p, words) {
                    Some(v) => tx.put(&obj, within(len), v),
                    None => return false,
                },
                1 => match p.byte() {
                    Some(k) => tx.put_object(&obj, within(len), obj_type(k)).map(|_| ()),
                    None => return false,
                },
                2 => tx.delete(&obj, within(len)),
                3 => match value(p, words) {
                    Some(v) => tx.insert(&obj, within(len + 1), v),
                    None => return false,
                },
                4 => match p.byte() {
                    Some(k) => tx
                        .insert_object(&obj, within(len + 1), obj_type(k))
                        .map(|_| ()),
                    None => return false,
                },
                _ => match p.byte() {
                    Some(by) => tx.increment(&obj, within(len), i64::from(by)),
                    None => return false,
                },
            };
        }
        // Text is not used by these documents; its objects only hold the place.
        _ => {}
    }
    true
}

/// The objects directly inside `obj`, in the document's order.
fn child_objects(tx: &Transaction<'_>, obj: &ObjId) -> Vec<ObjId> {
    let is_object = |v: &ValueRef<'_>| matches!(v, ValueRef::Object(_));
    match tx.object_type(obj) {
        Ok(ObjType::List) => tx
            .list_range(obj, ..)
            .filter(|item| is_object(&item.value))
            .map(|item| item.id())
            .collect(),
        Ok(ObjType::Map | ObjType::Table) => tx
            .map_range(obj, ..)
            .filter(|item| is_object(&item.value))
            .map(|item| item.id())
            .collect(),
        _ => Vec::new(),
    }
}

fn key(p: &mut Program<'_>) -> Option<String> {
    let k = usize::from(p.byte()?);
    Some(match KEYS.get(k) {
        Some(key) => (*key).to_owned(),
        None => p.text((k - KEYS.len()) % 17),
    })
}

fn obj_type(k: u8) -> ObjType {
    [ObjType::Map, ObjType::List, ObjType::Text][usize::from(k % 3)]
}

fn value(p: &mut Program<'_>, words: &[String]) -> Option<ScalarValue> {
    let kind = p.byte()?;
    Some(match kind % 12 {
        0 => {
            let i = usize::from(p.byte()?) % words.len().max(1);
            ScalarValue::Str(words.get(i).map_or("", String::as_str).into())
        }
        1 => {
            let n = usize::from(p.byte()?) % 33;
            ScalarValue::Str(p.text(n).into())
        }
        2 => ScalarValue::Str("x".repeat(MAX_TEXT_BYTES + 1).into()),
        3 => ScalarValue::Uint(u64::from(p.byte()?)),
        4 => ScalarValue::Int(-i64::from(p.byte()?)),
        5 => ScalarValue::Int(i64::from(p.byte()?)),
        6 => ScalarValue::Boolean(p.byte()? % 2 == 1),
        7 => ScalarValue::Null,
        8 => ScalarValue::F64(f64::from(p.byte()?) / 7.0),
        9 => ScalarValue::Timestamp(i64::from(p.byte()?) * 86_400_000),
        10 => ScalarValue::Bytes(p.take(4).to_vec()),
        _ => ScalarValue::counter(i64::from(p.byte()?)),
    })
}
