//! Nothing a peer sends can panic the validator or the engine: arbitrary
//! well-formed changes at arbitrary paths, arbitrary and mutated frames.
//! Whatever is refused leaves the stored document exactly as it was.

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

#[derive(Clone, Debug)]
enum Write {
    Put { depth: u8, key: usize, value: u8 },
    Make { depth: u8, key: usize, list: bool },
    Delete { depth: u8, key: usize },
    Insert { depth: u8, value: u8 },
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        (0u8..3, 0..KEYS.len(), any::<u8>()).prop_map(|(depth, key, value)| Write::Put {
            depth,
            key,
            value
        }),
        (0u8..3, 0..KEYS.len(), any::<bool>()).prop_map(|(depth, key, list)| Write::Make {
            depth,
            key,
            list
        }),
        (0u8..3, 0..KEYS.len()).prop_map(|(depth, key)| Write::Delete { depth, key }),
        (0u8..3, any::<u8>()).prop_map(|(depth, value)| Write::Insert { depth, value }),
    ]
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

/// Walks `depth` levels down through whatever objects exist, then writes.
fn apply(tx: &mut automerge::transaction::Transaction<'_>, w: &Write) {
    let depth = match w {
        Write::Put { depth, .. }
        | Write::Make { depth, .. }
        | Write::Delete { depth, .. }
        | Write::Insert { depth, .. } => *depth,
    };
    let mut obj = ROOT;
    for _ in 0..depth {
        let next = tx.map_range(&obj, ..).find_map(|item| match item.value {
            automerge::ValueRef::Object(_) => Some(item.id()),
            _ => None,
        });
        match next {
            Some(o) => obj = o,
            None => break,
        }
    }
    let is_list = matches!(tx.object_type(&obj), Ok(ObjType::List));
    let _ = match w {
        Write::Put { key, value, .. } if !is_list => tx.put(&obj, KEYS[*key], scalar(*value)),
        Write::Make { key, list, .. } if !is_list => tx
            .put_object(
                &obj,
                KEYS[*key],
                if *list { ObjType::List } else { ObjType::Map },
            )
            .map(|_| ()),
        Write::Delete { key, .. } if !is_list => tx.delete(&obj, KEYS[*key]),
        Write::Insert { value, .. } if is_list => tx.insert(&obj, 0, scalar(*value)),
        Write::Delete { .. } if is_list && tx.length(&obj) > 0 => tx.delete(&obj, 0),
        _ => Ok(()),
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_documents_read_and_arbitrary_changes_get_a_verdict_never_a_panic(
        nc in any::<bool>(),
        who in 0usize..5,
        writes in prop::collection::vec(write(), 1..12),
    ) {
        let demo = Demo::new();
        let (id, stored) = if nc { (demo.nc_id, demo.nc_in(NcState::Open)) } else { (demo.audit_id, demo.realistic_audit(4, 2)) };
        let author = [&demo.lead, &demo.member, &demo.owner, &demo.nodal, &demo.outsider][who];
        let mut device = stored.clone();
        device.set_actor(actor(who as u8 + 1));
        let mut tx = device.transaction();
        for w in &writes {
            apply(&mut tx, w);
        }
        tx.commit();
        // Reading whatever the device now holds gives a value or a typed error, never a panic.
        let _ = sync_core::audit::AuditView::read(&device);
        let _ = sync_core::nc::Nc::read(&device).map(|nc| nc.view(&Default::default(), demo.today));
        let _ = sync_core::review::Review::read(&device);
        let _ = sync_core::permissions::DocContext::read(&device);
        let _ = sync_core::permissions::may_edit(&device, author, sync_core::permissions::Target::Move("raise"), demo.today);
        let heads = stored.get_heads();
        let changes = device.get_changes(&heads);
        match validate_batch(id, &stored, changes, author, demo.today) {
            Ok(accepted) => {
                // Whatever is accepted still reads as a typed document.
                if let Some(doc) = accepted.doc {
                    let readable = if nc { sync_core::nc::Nc::read(&doc).is_ok() } else { sync_core::audit::AuditView::read(&doc).is_ok() };
                    prop_assert!(readable, "an accepted batch left the document unreadable: {writes:?}");
                }
            }
            Err(refusal) => prop_assert!(!refusal.rule.is_empty() && !refusal.message.is_empty()),
        }
        prop_assert_eq!(stored.get_heads(), heads);
    }

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
