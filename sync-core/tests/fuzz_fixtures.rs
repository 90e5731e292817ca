//! Every input the fuzzers ever kept, replayed through the same functions the
//! fuzz targets call (`sync_core::testing::fuzz`): the seed corpus in
//! `fuzz/corpus/<target>/` and the inputs that once crashed or stalled in
//! `tests/fixtures/fuzz/<target>/`. A crash found once stays a test.
//!
//! The ignored tests write the seed corpus and the hand-made fixtures again
//! (`cargo test -p sync-core --test fuzz_fixtures -- --ignored`).

use std::collections::VecDeque;

use sha2::{Digest, Sha256};
use sync_core::automerge::sync;
use sync_core::automerge::{Automerge, Change, ROOT, ReadDoc, ValueRef};
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, PeerId, Side};
use sync_core::envelope::{Body, Envelope, ErrorCode};
use sync_core::ids::DocumentId;
use sync_core::kind::DocKind;
use sync_core::testing::fixtures::{Demo, actor};
use sync_core::testing::fuzz;
use sync_core::testing::fuzz::saved::{replay, root, write};

#[test]
fn saved_envelope_inputs_replay_without_a_finding() {
    replay("envelope", fuzz::envelope);
}

#[test]
fn saved_engine_frames_replay_without_a_finding() {
    replay("engine_frame", fuzz::engine_frame);
}

#[test]
fn saved_validate_programs_replay_without_a_finding() {
    replay("validate", fuzz::validate);
}

#[test]
fn saved_documents_load_without_a_finding() {
    replay("load", fuzz::load);
}

/// A server engine and a device engine of the lead auditor, both holding the
/// demo audit; what each sends the other is delivered until both are quiet.
struct Pair {
    server: Engine,
    device: Engine,
    demo: Demo,
    /// Frames the device sent, in order.
    from_device: Vec<Vec<u8>>,
    /// Frames the server sent, in order.
    from_server: Vec<Vec<u8>>,
}

const SERVER: PeerId = 0;
const DEVICE: PeerId = 1;

impl Pair {
    fn new() -> Pair {
        let demo = Demo::new();
        let mut server = Engine::new(Side::Server);
        server.insert(demo.audit_id, fuzz::demo_audit());
        let mut device = Engine::new(Side::Device(actor(1)));
        device.insert(demo.audit_id, fuzz::demo_audit());
        Pair {
            server,
            device,
            demo,
            from_device: Vec::new(),
            from_server: Vec::new(),
        }
    }

    fn connect(&mut self) {
        let now = self.demo.now();
        let docs: Vec<DocumentId> = self.device.doc_ids().copied().collect();
        let fx = self.device.handle(
            now,
            Input::Connected {
                peer: SERVER,
                author: None,
                docs,
            },
        );
        self.run(fx, Vec::new());
        let fx = self.server.handle(
            now,
            Input::Connected {
                peer: DEVICE,
                author: Some(self.demo.lead.clone()),
                docs: vec![self.demo.audit_id],
            },
        );
        self.run(Vec::new(), fx);
    }

    fn edit(&mut self, doc: DocumentId, edit: &Edit) {
        let lead = self.demo.lead.clone();
        let fx = self
            .device
            .edit(self.demo.now(), doc, edit, &lead)
            .expect("the demo edit is permitted");
        self.run(fx, Vec::new());
    }

    /// Carries out both engines' effects until neither has anything to do.
    fn run(&mut self, device_fx: Vec<Effect>, server_fx: Vec<Effect>) {
        let now = self.demo.now();
        let mut work: VecDeque<(bool, Effect)> = device_fx
            .into_iter()
            .map(|e| (true, e))
            .chain(server_fx.into_iter().map(|e| (false, e)))
            .collect();
        let mut steps = 0;
        while let Some((on_device, effect)) = work.pop_front() {
            steps += 1;
            assert!(steps < 10_000, "the two engines never went quiet");
            let (engine, other, peer) = if on_device {
                (&mut self.device, &mut self.server, DEVICE)
            } else {
                (&mut self.server, &mut self.device, SERVER)
            };
            let next = match effect {
                Effect::Send { bytes, .. } => {
                    if on_device {
                        self.from_device.push(bytes.clone());
                    } else {
                        self.from_server.push(bytes.clone());
                    }
                    let fx = other.handle(now, Input::Received { peer, bytes });
                    fx.into_iter().map(|e| (!on_device, e)).collect()
                }
                Effect::Store { ticket, .. }
                | Effect::Replace { ticket, .. }
                | Effect::Quarantine { ticket, .. } => {
                    let fx = engine.handle(now, Input::Stored { ticket });
                    fx.into_iter().map(|e| (on_device, e)).collect()
                }
                Effect::Notify(_) => Vec::new(),
            };
            work.extend(next);
        }
    }
}

fn frame(doc: DocumentId, body: Body) -> Vec<u8> {
    Envelope { doc, body }
        .encode()
        .expect("the envelope encodes")
}

fn carrying(changes: Vec<Vec<u8>>) -> Vec<u8> {
    sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: changes.into(),
        flags: None,
        version: sync::MessageVersion::V2,
    }
    .encode()
}

/// The objects directly in a map, in the order the `validate` program walks them.
fn object_keys(doc: &Automerge, obj: &sync_core::automerge::ObjId) -> Vec<String> {
    doc.map_range(obj, ..)
        .filter(|item| matches!(item.value, ValueRef::Object(_)))
        .map(|item| item.key.into_owned())
        .collect()
}

/// A `validate` program, written with the names of its keys and words.
struct Program(Vec<u8>);

impl Program {
    fn new(author: u8, doc: u8) -> Program {
        Program(vec![author, doc])
    }

    fn key(&mut self, key: &str) {
        let at = fuzz::KEYS.iter().position(|k| *k == key);
        self.0.push(at.expect("a dictionary key") as u8);
    }

    fn walk(&mut self, picks: &[usize]) {
        self.0.push(picks.len() as u8);
        self.0.extend(picks.iter().map(|p| *p as u8));
    }

    fn put_word(mut self, picks: &[usize], key: &str, word: &str) -> Program {
        self.0.push(0);
        self.walk(picks);
        self.key(key);
        let at = fuzz::WORDS.iter().position(|w| *w == word);
        self.0.extend([0, at.expect("a dictionary word") as u8]);
        self
    }

    /// A word past [`fuzz::WORDS`]: the demo's document ids (audit, NC,
    /// review, then the id a program's new document is sent under).
    fn put_id(mut self, picks: &[usize], key: &str, which: usize) -> Program {
        self.0.push(0);
        self.walk(picks);
        self.key(key);
        self.0.extend([0, (fuzz::WORDS.len() + which) as u8]);
        self
    }

    fn put_uint(mut self, picks: &[usize], key: &str, value: u8) -> Program {
        self.0.push(0);
        self.walk(picks);
        self.key(key);
        self.0.extend([3, value]);
        self
    }

    fn put_text(mut self, picks: &[usize], key: &str, text: &str) -> Program {
        self.0.push(0);
        self.walk(picks);
        self.key(key);
        self.0.extend([1, text.len() as u8]);
        self.0.extend(text.as_bytes());
        self
    }

    fn put_object(mut self, picks: &[usize], key: &str, list: bool) -> Program {
        self.0.push(1);
        self.walk(picks);
        self.key(key);
        self.0.push(u8::from(list));
        self
    }
}

/// Writes the seed corpus of the four sync-core targets: real frames from a
/// device engine, real envelopes, programs of writes the app makes, and the
/// demo documents saved.
#[test]
#[ignore = "writes fuzz/corpus; run by hand to regenerate it"]
fn write_seed_corpus() {
    let corpus = root().join("fuzz/corpus");
    let demo = Demo::new();

    // A device reconnecting with an answer made offline, then making a
    // finding and a new NC online; a day of answers offline goes as a bundle.
    let mut pair = Pair::new();
    pair.edit(demo.audit_id, &demo.answer(7, 1));
    pair.connect();
    pair.edit(demo.audit_id, &demo.finding(4));
    let new_nc = DocumentId::new_v7(1_768_262_400_000, [6; 10]);
    let mut link = demo.nc_link();
    link.finding = "f-04".parse().expect("an item id");
    pair.edit(
        new_nc,
        &Edit::CreateNc {
            link,
            description: "Register not kept for P03".into(),
            provisional: String::new(),
        },
    );
    let mut offline = Pair::new();
    for i in 10..22 {
        offline.edit(demo.audit_id, &demo.answer(i, i % 3));
    }
    offline.connect();
    let mut frames: Vec<Vec<u8>> = pair.from_device.clone();
    frames.extend(offline.from_device.iter().cloned());
    frames.dedup();
    // What a plain Automerge peer sends when the server lacks most of a
    // document: the whole document, with one answer the server lacks.
    let mut whole = fuzz::demo_audit();
    demo.must(demo.audit_id, &mut whole, &demo.lead, demo.answer(30, 2));
    frames.push(frame(
        demo.audit_id,
        Body::Sync(carrying(vec![whole.save()])),
    ));
    let dir = corpus.join("engine_frame");
    for (i, f) in frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.len() <= 8 << 10)
    {
        write(&dir, &format!("device-{i:02}"), f);
    }

    let dir = corpus.join("envelope");
    for (i, f) in pair.from_device.iter().chain(&pair.from_server).enumerate() {
        if f.len() <= 4 << 10 {
            write(&dir, &format!("real-{i:02}"), f);
        }
    }
    let bodies = [
        (
            "rejection",
            Body::Rejection {
                rule: "field.not_permitted".into(),
                message: "Only the process owner may answer this NC.".into(),
                changes: whole.get_heads(),
            },
        ),
        ("new-document", Body::NewDocument { kind: DocKind::Nc }),
        ("withdrawn", Body::Withdrawn),
        (
            "error",
            Body::Error {
                code: ErrorCode::LimitExceeded,
                message: "This connection already has 10000 documents open.".into(),
            },
        ),
        (
            "error-unknown-code",
            Body::Error {
                code: ErrorCode::Unknown(9),
                message: String::new(),
            },
        ),
    ];
    for (name, body) in bodies {
        write(&dir, name, &frame(demo.audit_id, body));
    }

    let dir = corpus.join("load");
    write(&dir, "audit", &fuzz::demo_audit().save());
    write(&dir, "nc", &fuzz::demo_nc().save());
    write(&dir, "review", &fuzz::demo_review().save());
    let mut long = demo.realistic_audit(6, 1);
    let notes = Edit::SetNotes("Opening meeting held with the AC. ".repeat(20));
    demo.must(demo.audit_id, &mut long, &demo.lead, notes);
    write(&dir, "audit-long-notes", &long.save());

    // Programs of the writes the app makes: the lead's notes, an answer by
    // the team member (an entry map and its fields), the owner's correction,
    // the nodal officer's minutes; and a new NC's first writes.
    let audit = fuzz::demo_audit();
    let at_root = object_keys(&audit, &ROOT);
    let responses = at_root
        .iter()
        .position(|k| k == "responses")
        .expect("responses");
    let (_, responses_id) = audit
        .get(ROOT, "responses")
        .ok()
        .flatten()
        .expect("the audit has responses");
    let mut keys = object_keys(&audit, &responses_id);
    keys.push("sd.item_9@P08".into());
    keys.sort();
    let entry = keys
        .iter()
        .position(|k| k == "sd.item_9@P08")
        .expect("the new key");
    let inside = [responses, entry];
    let programs = [
        (
            "lead-notes",
            Program::new(0, 0).put_text(&[], "notes", "Desk visited at 11:00"),
        ),
        (
            "member-answer",
            Program::new(1, 0)
                .put_object(&[responses], "sd.item_9@P08", false)
                .put_word(&inside, "type", "cpna")
                .put_word(&inside, "value", "partly")
                .put_text(&inside, "note", "Sampled 10 files")
                .put_word(&inside, "by", "s.khan")
                .put_word(&inside, "at", "2026-01-15T10:00:00Z"),
        ),
        (
            "owner-correction",
            Program::new(2, 1).put_text(&[], "correction", "Pending amendments cleared"),
        ),
        (
            "nodal-minutes",
            Program::new(3, 2).put_text(&[], "minutes", "Reviewed the open NCs"),
        ),
        (
            "member-new-nc",
            Program::new(1, 3)
                .put_word(&[], "schema", "sqm.nc")
                .put_uint(&[], "v", 1)
                .put_id(&[], "id", 3)
                .put_word(&[], "unit", "DEMO-I")
                .put_id(&[], "audit", 0)
                .put_word(&[], "finding", "f-01")
                .put_word(&[], "process", "P03")
                .put_word(&[], "clause", "3.2.1.3")
                .put_word(&[], "class", "minor")
                .put_word(&[], "raised_on", "2026-01-15")
                .put_text(&[], "description", "Register not kept")
                .put_text(&[], "correction", "")
                .put_text(&[], "root_cause", "")
                .put_object(&[], "actions", false)
                .put_object(&[], "extensions", true)
                .put_object(&[], "verification", false)
                .put_object(&[], "events", true),
        ),
    ];
    let dir = corpus.join("validate");
    for (name, program) in programs {
        write(&dir, name, &program.0);
    }
    assert_eq!(
        sync_core::audit::AuditView::read(&audit).map(|_| ()),
        Ok(()),
        "the demo audit reads"
    );
}

fn uleb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb(out: &mut Vec<u8>, mut n: i64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let done = (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// How many operations the hand-made change's columns declare.
const DECLARED_OPS: i64 = 4_000_000;

/// A change chunk of about a hundred bytes whose columns declare four
/// million operations by run-length encoding: each puts null under key "a"
/// of the root, by the lead's device. Written byte by byte from Automerge's
/// storage format (`storage/change.rs`, `columnar/encoding/rle.rs`):
///
/// ```text
/// magic 85 6f 4a 83, checksum (first 4 bytes of SHA-256 of type, length,
/// data), type 1 (change), LEB128 length, then the data:
///   deps (count 0), actor (length 16 + bytes), seq 1, start op 1, time 0,
///   message (length 0), other actors (count 0),
///   column count, then (spec, length) per column, then the columns:
///     spec = id << 4 | type; a run is a signed LEB128 count and one value
///     key string  (1, string)     run of N × "a"
///     insert      (3, boolean)    N × false
///     action      (4, integer)    run of N × 1 (put)
///     value meta  (5, value meta) run of N × 0 (null, no bytes)
///     pred        (7, group)      run of N × 0 (no predecessors)
/// ```
fn hostile_change(actor: &[u8]) -> Vec<u8> {
    let n = DECLARED_OPS;
    let run = |value: &[u8]| {
        let mut col = Vec::new();
        sleb(&mut col, n);
        col.extend_from_slice(value);
        col
    };
    let mut insert = Vec::new();
    uleb(&mut insert, n as u64);
    let columns: [(u64, Vec<u8>); 5] = [
        (1 << 4 | 5, run(&[1, b'a'])),
        (3 << 4 | 4, insert),
        (4 << 4 | 2, run(&[1])),
        (5 << 4 | 6, run(&[0])),
        (7 << 4, run(&[0])),
    ];
    let mut data = Vec::new();
    uleb(&mut data, 0);
    uleb(&mut data, actor.len() as u64);
    data.extend_from_slice(actor);
    uleb(&mut data, 1);
    uleb(&mut data, 1);
    sleb(&mut data, 0);
    uleb(&mut data, 0);
    uleb(&mut data, 0);
    uleb(&mut data, columns.len() as u64);
    for (spec, col) in &columns {
        uleb(&mut data, *spec);
        uleb(&mut data, col.len() as u64);
    }
    for (_, col) in &columns {
        data.extend_from_slice(col);
    }
    let mut typed = vec![1u8];
    uleb(&mut typed, data.len() as u64);
    let hash = Sha256::new()
        .chain_update(&typed)
        .chain_update(&data)
        .finalize();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83];
    chunk.extend_from_slice(&hash[..4]);
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&data);
    chunk
}

/// Writes the hand-made hostile frame: a sync message about the demo audit
/// carrying [`hostile_change`]. Reading it costs Automerge four million
/// operations' work, and the validator expands them all before applying
/// them: its replay takes seconds until sync-core refuses such changes
/// before reading them.
#[test]
#[ignore = "writes tests/fixtures/fuzz/engine_frame; run by hand to regenerate it"]
fn write_hostile_frame() {
    let demo = Demo::new();
    let chunk = hostile_change(actor(1).to_bytes());
    let change = Change::try_from(chunk.as_slice()).expect("the hand-made change parses");
    assert_eq!(change.len(), DECLARED_OPS as usize);
    assert_eq!(&change.hash().0[..4], &chunk[4..8], "the checksum is right");
    let bytes = frame(demo.audit_id, Body::Sync(carrying(vec![chunk.clone()])));
    eprintln!(
        "change: {} bytes; frame: {} bytes",
        chunk.len(),
        bytes.len()
    );
    write(
        &root().join("tests/fixtures/fuzz/engine_frame"),
        "rle-four-million-ops",
        &bytes,
    );
}
