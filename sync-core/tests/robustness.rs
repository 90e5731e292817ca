//! Nothing a peer sends can panic the validator or the engine: arbitrary
//! well-formed changes at arbitrary paths (a random child at every level,
//! with a count of where the writes landed), arbitrary and mutated frames.

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc, ScalarValue};
use proptest::prelude::*;
use sync_core::date::Timestamp;
use sync_core::engine::{Engine, Input, Side};
use sync_core::envelope::{Body, Envelope};
use sync_core::testing::fixtures::{Demo, actor};
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

const KEYS: &[&str] = &[
    "schema",
    "v",
    "id",
    "unit",
    "audit",
    "process",
    "class",
    "header",
    "responses",
    "findings",
    "notes",
    "events",
    "correction",
    "root_cause",
    "actions",
    "extensions",
    "verification",
    "by",
    "at",
    "move",
    "from",
    "note",
    "type",
    "value",
    "evidence",
    "heads",
    "sd.item_1@P03",
    "f-01",
    "a-1",
    "due",
    "of",
    "x",
];

/// One raw write: where (a random child at every level, as many levels as
/// `path` has or until a scalar is met) and what.
#[derive(Clone, Debug)]
struct Write {
    path: Vec<u8>,
    what: What,
}

#[derive(Clone, Debug)]
enum What {
    Put { key: usize, value: u8 },
    Make { key: usize, list: bool },
    Delete { key: usize },
    Insert { value: u8 },
}

fn write() -> impl Strategy<Value = Write> {
    let what = prop_oneof![
        (0..KEYS.len(), any::<u8>()).prop_map(|(key, value)| What::Put { key, value }),
        (0..KEYS.len(), any::<bool>()).prop_map(|(key, list)| What::Make { key, list }),
        (0..KEYS.len()).prop_map(|key| What::Delete { key }),
        any::<u8>().prop_map(|value| What::Insert { value }),
    ];
    (prop::collection::vec(any::<u8>(), 0..4), what).prop_map(|(path, what)| Write { path, what })
}

fn scalar(v: u8) -> ScalarValue {
    match v % 6 {
        0 => ScalarValue::Str("k.iyer".into()),
        1 => ScalarValue::Str("2026-01-15".into()),
        2 => ScalarValue::Uint(u64::from(v)),
        3 => ScalarValue::Int(-i64::from(v)),
        4 => ScalarValue::Str("x".repeat(usize::from(v) * 400).into()),
        _ => ScalarValue::Boolean(true),
    }
}

/// The objects directly inside `obj` (map values or list items), in order.
fn children(
    tx: &automerge::transaction::Transaction<'_>,
    obj: &automerge::ObjId,
) -> Vec<(String, automerge::ObjId)> {
    match tx.object_type(obj) {
        Ok(ObjType::Map) => tx
            .map_range(obj, ..)
            .filter_map(|item| match item.value {
                automerge::ValueRef::Object(_) => Some((item.key.to_string(), item.id())),
                _ => None,
            })
            .collect(),
        Ok(ObjType::List) => (0..tx.length(obj))
            .filter_map(|i| match tx.get(obj, i) {
                Ok(Some((automerge::Value::Object(_), id))) => Some((i.to_string(), id)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Walks down a random child at every level of `w.path`, then writes;
/// returns the root key the write landed under (`""` for the root itself).
fn apply(tx: &mut automerge::transaction::Transaction<'_>, w: &Write) -> String {
    let mut obj = ROOT;
    let mut top = String::new();
    for (level, pick) in w.path.iter().enumerate() {
        let kids = children(tx, &obj);
        if kids.is_empty() {
            break;
        }
        let (key, next) = kids[usize::from(*pick) % kids.len()].clone();
        if level == 0 {
            top = key;
        }
        obj = next;
    }
    let is_list = matches!(tx.object_type(&obj), Ok(ObjType::List));
    let _ = match &w.what {
        What::Put { key, value } if !is_list => tx.put(&obj, KEYS[*key], scalar(*value)),
        What::Make { key, list } if !is_list => tx
            .put_object(
                &obj,
                KEYS[*key],
                if *list { ObjType::List } else { ObjType::Map },
            )
            .map(|_| ()),
        What::Delete { key } if !is_list => tx.delete(&obj, KEYS[*key]),
        What::Insert { value } if is_list => tx.insert(&obj, 0, scalar(*value)),
        What::Delete { .. } if is_list && tx.length(&obj) > 0 => tx.delete(&obj, 0),
        _ => Ok(()),
    };
    top
}

/// The parts of a document the walk must reach, and how often it did.
const MUST_REACH: &[(&str, bool)] = &[
    // (root key, in an NC)
    ("header", false),
    ("responses", false),
    ("findings", false),
    ("events", false),
    ("actions", true),
    ("verification", true),
    ("extensions", true),
    ("events", true),
];

/// Nothing a device writes, anywhere, panics the readers or the validator;
/// every batch gets a verdict, and what is accepted still reads. Run by hand
/// (not the `proptest!` macro) so that the run can count where its writes
/// landed and fail if a part of the documents was never reached.
#[test]
fn arbitrary_documents_read_and_arbitrary_changes_get_a_verdict_never_a_panic() {
    use proptest::test_runner::{Config, TestRunner};
    let reached: std::cell::RefCell<std::collections::BTreeMap<(String, bool), usize>> =
        Default::default();
    let verdicts: std::cell::RefCell<(usize, usize)> = Default::default();
    let mut runner = TestRunner::new(Config {
        cases: 512,
        source_file: Some(file!()),
        ..Config::default()
    });
    let cases = (
        any::<bool>(),
        0usize..5,
        prop::collection::vec(write(), 1..12),
    );
    let result = runner.run(&cases, |(nc, who, writes)| {
        let demo = Demo::new();
        let (id, stored) = if nc {
            (demo.nc_id, demo.nc_in(NcState::Implemented))
        } else {
            (demo.audit_id, demo.realistic_audit(4, 2))
        };
        let author = [
            &demo.lead,
            &demo.member,
            &demo.owner,
            &demo.nodal,
            &demo.outsider,
        ][who];
        let mut device = stored.clone();
        device.set_actor(actor(who as u8 + 1));
        let mut tx = device.transaction();
        for w in &writes {
            let top = apply(&mut tx, w);
            *reached.borrow_mut().entry((top, nc)).or_default() += 1;
        }
        tx.commit();
        // Reading whatever the device now holds gives a value or a typed error, never a panic.
        let _ = sync_core::audit::AuditView::read(&device);
        let _ = sync_core::nc::Nc::read(&device).map(|nc| nc.view(&Default::default(), demo.today));
        let _ = sync_core::review::Review::read(&device);
        let _ = sync_core::permissions::DocContext::read(&device);
        let _ = sync_core::permissions::may_edit(
            &device,
            author,
            sync_core::permissions::Target::Move("raise"),
            demo.today,
        );
        let heads = stored.get_heads();
        let changes = device.get_changes(&heads);
        match validate_batch(id, &stored, changes, author, demo.today) {
            Ok(accepted) => {
                verdicts.borrow_mut().0 += 1;
                // Whatever is accepted still reads as a typed document.
                if let Some(doc) = accepted.doc {
                    let readable = if nc {
                        sync_core::nc::Nc::read(&doc).is_ok()
                    } else {
                        sync_core::audit::AuditView::read(&doc).is_ok()
                    };
                    prop_assert!(
                        readable,
                        "an accepted batch left the document unreadable: {writes:?}"
                    );
                }
            }
            Err(refusal) => {
                verdicts.borrow_mut().1 += 1;
                prop_assert!(!refusal.rule.is_empty() && !refusal.message.is_empty());
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let reached = reached.into_inner();
    let (accepted, refused) = verdicts.into_inner();
    eprintln!(
        "writes by where they landed (root key, in an NC): {reached:?}; batches accepted {accepted}, refused {refused}"
    );
    for (key, nc) in MUST_REACH {
        let n = reached
            .get(&((*key).to_string(), *nc))
            .copied()
            .unwrap_or(0);
        assert!(
            n >= 20,
            "only {n} writes reached {key} of an {}",
            if *nc { "NC" } else { "audit" }
        );
    }
    assert!(
        accepted >= 5 && refused >= 100,
        "accepted {accepted}, refused {refused}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_survives_arbitrary_and_mutated_frames(
        junk in prop::collection::vec(any::<u8>(), 0..512),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let demo = Demo::new();
        let mut server = Engine::new(Side::Server);
        server.insert(demo.nc_id, demo.nc_in(NcState::Open));
        let now = Timestamp::start_of(demo.today);
        let _ = server.handle(now, Input::Connected { peer: 1, author: Some(demo.owner.clone()), docs: vec![demo.nc_id] });
        // A real frame from a device, then damaged copies of it.
        let mut device = demo.nc_in(NcState::Open);
        device.set_actor(actor(3));
        let mut state = automerge::sync::State::new();
        let _ = automerge::sync::SyncDoc::generate_sync_message(&device, &mut state);
        let mut tx = device.transaction();
        let _ = tx.put(ROOT, "correction", "Cleared");
        tx.commit();
        let mut state = automerge::sync::State::new();
        let msg = automerge::sync::SyncDoc::generate_sync_message(&device, &mut state).map(|m| m.encode()).unwrap_or_default();
        let frame = Envelope { doc: demo.nc_id, body: Body::Sync(msg.clone()) }.encode().unwrap_or_default();
        let mut mutated = frame.clone();
        for (at, byte) in &flips {
            if !mutated.is_empty() {
                let i = at % mutated.len();
                mutated[i] ^= byte;
            }
        }
        let truncated = frame[..cut % (frame.len() + 1)].to_vec();
        let mut bad_payload = msg;
        for (at, byte) in &flips {
            if !bad_payload.is_empty() {
                let i = at % bad_payload.len();
                bad_payload[i] ^= byte;
            }
        }
        let wrapped = Envelope { doc: demo.nc_id, body: Body::Sync(bad_payload) }.encode().unwrap_or_default();
        for bytes in [junk, mutated, truncated, wrapped] {
            let _ = server.handle(now, Input::Received { peer: 1, bytes });
        }
        prop_assert!(server.doc(&demo.nc_id).is_some_and(|d| sync_core::nc::Nc::read(d).is_ok()));
    }
}
