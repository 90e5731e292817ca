//! The bound on the operations a sync message declares (issue 14): what the
//! pre-scan of `sync_core::inflate` counts is never below what Automerge
//! really reads, for changes, compressed changes, whole documents and
//! bundles made by Automerge; the engine refuses a change or a message past
//! its limit, at the limit it takes it; and the largest changes the project
//! makes are far under the default limits.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Automerge, Change, ObjType, ROOT, ReadDoc, sync};
use proptest::prelude::*;
use sync_core::audit::{Answer, AuditHeader, Cpna, Evidence};
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, Limits, Side};
use sync_core::envelope::{Body, Envelope, ErrorCode};
use sync_core::ids::{DocumentId, ResponseKey};
use sync_core::inflate::{Bounds, Measure, forge, measure};
use sync_core::testing::fixtures::{Demo, actor};
use sync_core::workflow::NcState;

const PEER: u64 = 7;

fn roomy() -> Bounds {
    Bounds {
        budget: usize::MAX,
        ops: u64::MAX,
        ops_per_change: u64::MAX,
    }
}

fn measured(chunk: &[u8]) -> Measure {
    match measure(chunk, roomy()) {
        Ok(m) => m,
        Err(e) => panic!("a chunk Automerge made does not measure: {e}"),
    }
}

/// Predecessors of a change's operations, all together.
fn preds(c: &Change) -> u64 {
    c.decode()
        .operations
        .iter()
        .map(|op| op.pred.len() as u64)
        .sum()
}

#[derive(Clone, Debug)]
enum Step {
    /// Put a value (a string `n` long, so some columns are large enough to deflate).
    Put { actor: usize, key: u8, n: u16 },
    /// Make a list under a key and insert into it.
    List { actor: usize, key: u8, items: u8 },
    /// Delete a key.
    Delete { actor: usize, key: u8 },
    /// Increment a counter (made on first use).
    Count { actor: usize, by: i8 },
    /// Type into a text object.
    Text { actor: usize, at: u8, text: String },
    /// Merge one replica into another (concurrent histories, several deps and preds).
    Merge { into: usize, from: usize },
    /// Commit what an actor did so far.
    Commit { actor: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, 0..6u8, 0..400u16).prop_map(|(actor, key, n)| Step::Put { actor, key, n }),
        (0..3usize, 0..6u8, 0..20u8).prop_map(|(actor, key, items)| Step::List {
            actor,
            key,
            items
        }),
        (0..3usize, 0..6u8).prop_map(|(actor, key)| Step::Delete { actor, key }),
        (0..3usize, any::<i8>()).prop_map(|(actor, by)| Step::Count { actor, by }),
        (0..3usize, any::<u8>(), "[a-z ]{0,30}").prop_map(|(actor, at, text)| Step::Text {
            actor,
            at,
            text
        }),
        (0..3usize, 0..3usize).prop_map(|(into, from)| Step::Merge { into, from }),
        (0..3usize).prop_map(|actor| Step::Commit { actor }),
    ]
}

/// Plays the steps on three replicas and merges them into the first.
fn history(steps: &[Step]) -> AutoCommit {
    let mut docs: Vec<AutoCommit> = (1..=3u8)
        .map(|i| AutoCommit::new().with_actor(ActorId::from([i; 16])))
        .collect();
    for s in steps {
        let _ = match s {
            Step::Put { actor, key, n } => docs[*actor]
                .put(ROOT, format!("k{key}"), "v".repeat(usize::from(*n)))
                .map(|_| ()),
            Step::List { actor, key, items } => {
                let d = &mut docs[*actor];
                d.put_object(ROOT, format!("k{key}"), ObjType::List)
                    .and_then(|l| (0..*items).try_for_each(|i| d.insert(&l, 0, i64::from(i))))
            }
            Step::Delete { actor, key } => docs[*actor].delete(ROOT, format!("k{key}")),
            Step::Count { actor, by } => {
                let d = &mut docs[*actor];
                match d.get(ROOT, "count") {
                    Ok(Some((automerge::Value::Scalar(s), _))) if s.is_counter() => {
                        d.increment(ROOT, "count", i64::from(*by))
                    }
                    _ => d.put(ROOT, "count", automerge::ScalarValue::counter(0)),
                }
            }
            Step::Text { actor, at, text } => {
                let d = &mut docs[*actor];
                let t = match d.get(ROOT, "text") {
                    Ok(Some((automerge::Value::Object(ObjType::Text), t))) => Ok(t),
                    _ => d.put_object(ROOT, "text", ObjType::Text),
                };
                t.and_then(|t| {
                    let len = d.length(&t);
                    d.splice_text(&t, usize::from(*at) % (len + 1), 0, text)
                })
            }
            Step::Merge { into, from } if into != from => {
                let mut other = docs[*from].clone();
                docs[*into].merge(&mut other).map(|_| ())
            }
            Step::Merge { .. } => Ok(()),
            Step::Commit { actor } => {
                docs[*actor].commit();
                Ok(())
            }
        };
    }
    let mut all = docs.remove(0);
    for mut d in docs {
        let _ = all.merge(&mut d);
    }
    all.commit();
    all
}

proptest! {
    // About 200 random histories of three replicas (puts of short and long
    // strings, lists, deletes, counters, text, merges that make concurrent
    // writes with several predecessors and changes with several
    // dependencies): a few seconds.
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_scan_never_counts_fewer_operations_than_automerge_reads(
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let mut doc = history(&steps);
        let changes: Vec<Change> = doc.get_changes(&[]).into_iter().collect();
        prop_assume!(!changes.is_empty());
        let mut total = 0u64;
        let mut largest = 0u64;
        for c in &changes {
            let ops = c.len() as u64;
            total += ops;
            largest = largest.max(ops);
            // A change: exactly its operations, or its predecessors when more.
            let want = ops.max(preds(c));
            let m = measured(c.raw_bytes());
            prop_assert_eq!((m.ops, m.change_ops), (want, want));
            prop_assert_eq!(m.bytes, c.raw_bytes().len());
            prop_assert!(m.rows >= m.ops);
            // The same change compressed, as Automerge sends a large one.
            let mut c = c.clone();
            let sent = c.bytes().to_vec();
            let m = measured(&sent);
            prop_assert_eq!((m.ops, m.change_ops), (want, want));
        }
        // A whole document: every change's operations as declared, all together.
        let saved = doc.save();
        let m = measured(&saved);
        prop_assert_eq!(m.change_ops, largest);
        prop_assert!(m.ops >= total && m.ops >= changes.len() as u64, "{m:?} for {total}");
        let plain = doc.save_nocompress();
        prop_assert_eq!(measured(&plain).ops, m.ops);
        // A bundle of every change.
        let hashes: Vec<_> = changes.iter().map(Change::hash).collect();
        let bundle = doc.bundle(hashes).expect("bundles");
        let m = measured(bundle.bytes());
        prop_assert_eq!(m.change_ops, largest);
        prop_assert!(m.ops >= total && m.ops >= changes.len() as u64, "{m:?} for {total}");
        // What the scan found is what Automerge reads.
        let read = Automerge::load(&saved).expect("loads");
        prop_assert_eq!(read.get_heads().len(), doc.get_heads().len());
    }
}

fn frame(doc: DocumentId, changes: Vec<Vec<u8>>) -> Vec<u8> {
    let msg = sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: changes.into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    Envelope {
        doc,
        body: Body::Sync(msg.encode()),
    }
    .encode()
    .expect("encodes")
}

/// A server holding the demo audit, a member connected, and what it does
/// with one frame of `changes` under `limits`.
fn send(demo: &Demo, limits: Limits, changes: Vec<Vec<u8>>) -> (Engine, Vec<Effect>) {
    let mut server = Engine::with_limits(Side::Server, limits);
    server.insert(demo.audit_id, demo.realistic_audit(3, 1));
    server.handle(
        demo.now(),
        Input::Connected {
            peer: PEER,
            author: Some(demo.member.clone()),
            docs: vec![demo.audit_id],
        },
    );
    let fx = server.handle(
        demo.now(),
        Input::Received {
            peer: PEER,
            bytes: frame(demo.audit_id, changes),
        },
    );
    (server, fx)
}

fn errors(fx: &[Effect]) -> Vec<(ErrorCode, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { bytes, .. } => match Envelope::decode(bytes) {
                Ok(Envelope {
                    body: Body::Error { code, message },
                    ..
                }) => Some((code, message)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn stored(fx: &[Effect]) -> usize {
    fx.iter()
        .map(|e| match e {
            Effect::Store { changes, .. } => changes.len(),
            _ => 0,
        })
        .sum()
}

/// A member's answers to checklist items, made on a device copy of the audit.
fn answers(demo: &Demo, n: usize) -> Vec<Change> {
    let mut device = demo.realistic_audit(3, 1);
    (0..n)
        .map(|i| {
            device.set_actor(actor(2));
            sync_core::edit::apply_edit(
                demo.audit_id,
                &mut device,
                &demo.answer(10 + i, i),
                &demo.member,
                demo.now(),
            )
            .expect("permitted")
        })
        .collect()
}

#[test]
fn a_hundred_byte_change_declaring_millions_of_operations_is_refused_before_automerge_reads_it() {
    let demo = Demo::new();
    let bomb = forge::many_ops(actor(2).to_bytes(), 4_000_000);
    assert!(bomb.len() <= 100, "{} bytes", bomb.len());
    let (server, fx) = send(&demo, Limits::default(), vec![bomb]);
    // The count in the message is the one the change's columns declare:
    // only the pre-scan knows it (Automerge reads operations one by one).
    assert_eq!(
        errors(&fx),
        vec![(
            ErrorCode::LimitExceeded,
            "A change in that sync message declares 4000000 operations, more than the 10000 one change may hold; the message was not used.".to_owned()
        )]
    );
    assert_eq!(stored(&fx), 0);
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Quarantine { .. } | Effect::Store { .. }))
    );
    let doc = server.doc(&demo.audit_id).expect("held");
    assert_eq!(doc.get_heads(), demo.realistic_audit(3, 1).get_heads());
}

#[test]
fn a_change_at_the_per_change_limit_is_taken_and_one_operation_over_is_refused() {
    let demo = Demo::new();
    let change = answers(&demo, 1).remove(0);
    let ops = measured(change.raw_bytes()).change_ops;
    assert_eq!(ops, change.len() as u64);
    for (limit, taken) in [(ops, true), (ops - 1, false)] {
        let limits = Limits {
            max_ops_per_change: limit,
            ..Limits::default()
        };
        let (_, fx) = send(&demo, limits, vec![change.raw_bytes().to_vec()]);
        assert_eq!(stored(&fx), usize::from(taken), "limit {limit}");
        let refused = errors(&fx).iter().any(|(c, m)| {
            *c == ErrorCode::LimitExceeded
                && m == &format!("A change in that sync message declares {ops} operations, more than the {limit} one change may hold; the message was not used.")
        });
        assert_eq!(refused, !taken, "limit {limit}: {:?}", errors(&fx));
    }
}

#[test]
fn a_message_at_the_per_batch_limit_is_taken_and_one_operation_over_is_refused() {
    let demo = Demo::new();
    let batch = answers(&demo, 5);
    let total: u64 = batch.iter().map(|c| c.len() as u64).sum();
    let bytes: Vec<Vec<u8>> = batch.iter().map(|c| c.raw_bytes().to_vec()).collect();
    for (limit, taken) in [(total, 5), (total - 1, 0)] {
        let limits = Limits {
            max_ops_per_batch: limit,
            ..Limits::default()
        };
        let (_, fx) = send(&demo, limits, bytes.clone());
        assert_eq!(stored(&fx), taken, "limit {limit}");
        let refused = errors(&fx).iter().any(|(c, m)| {
            *c == ErrorCode::LimitExceeded
                && m == &format!("The changes of that sync message declare more than {limit} operations together, more than one message may carry; it was not used.")
        });
        assert_eq!(refused, taken == 0, "limit {limit}: {:?}", errors(&fx));
    }
}

/// Every change of a document, measured: the most operations of one, and all.
fn ops_of(doc: &Automerge) -> (u64, u64) {
    doc.get_changes(&[]).iter().fold((0, 0), |(most, all), c| {
        let n = measured(c.raw_bytes()).change_ops;
        (most.max(n), all + n)
    })
}

#[test]
fn the_largest_changes_the_project_makes_are_far_under_the_default_limits() {
    let demo = Demo::new();
    let limits = Limits::default();
    // The demo's documents, made as the seed makes them (one edit, one change).
    let audit = demo.realistic_audit(60, 20);
    let nc = demo.nc_in(NcState::Closed);
    let mut largest = [ops_of(&audit).0, ops_of(&nc).0];
    // Beyond the seed: an audit with the whole of template version 2 in
    // scope (16 processes and 12 clauses) and a team of ten; an answer with
    // twenty photos; a lock naming fifty concurrent heads.
    let mut header: AuditHeader = demo.header();
    header.scope = (1..=16)
        .map(|p| format!("P{p:02}"))
        .chain(
            [
                "2.2", "2.4", "3.1", "3.2.2", "3.2.3", "3.2.4", "3.2.5", "3.3", "3.4", "4.2",
                "4.3", "3.2.1",
            ]
            .map(String::from),
        )
        .collect();
    header.team = (0..10)
        .map(|i| format!("auditor.{i}").parse().expect("a user"))
        .collect();
    let mut big = Automerge::new();
    demo.must(
        demo.audit_id,
        &mut big,
        &demo.lead,
        Edit::CreateAudit(header),
    );
    let photo = |i: u8| Evidence {
        sha256: format!("{:064x}", i).parse().expect("a hash"),
        name: format!("IMG_{i:04}.jpg"),
        mime: "image/jpeg".into(),
        size: 2_000_000,
        taken_at: Some(demo.now()),
    };
    demo.must(
        demo.audit_id,
        &mut big,
        &demo.lead,
        Edit::SetResponse {
            key: "sd.timeliness@P03".parse::<ResponseKey>().expect("a key"),
            answer: Answer::Cpna(Cpna::Partly),
            note: "Twenty files photographed.".into(),
            evidence: (0..20).map(photo).collect(),
        },
    );
    demo.must(
        demo.audit_id,
        &mut big,
        &demo.lead,
        Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
    );
    for i in 0..50u8 {
        let mut branch = big.fork();
        branch.set_actor(actor(100 + i));
        let mut tx = branch.transaction();
        tx.put(ROOT, "notes", format!("branch {i}")).expect("put");
        tx.commit();
        big.merge(&mut branch).expect("merge");
    }
    big.set_actor(actor(1));
    demo.must(
        demo.audit_id,
        &mut big,
        &demo.lead,
        Edit::Move {
            mv: "submit_for_review".into(),
            note: "Fieldwork complete.".into(),
        },
    );
    let (most, all) = ops_of(&big);
    largest[0] = largest[0].max(most);
    let most = largest.iter().copied().max().unwrap_or(0);
    eprintln!(
        "largest legitimate change: {most} operations (seed-like documents {:?}); a busy audit's whole history {} operations",
        [ops_of(&audit).0, ops_of(&nc).0],
        ops_of(&audit).1 + all
    );
    assert!(most * 20 <= limits.max_ops_per_change, "{most}");
    assert!(
        (ops_of(&audit).1 + all) * 20 <= limits.max_ops_per_batch,
        "{}",
        ops_of(&audit).1 + all
    );
    // And a whole document of them goes in one message.
    let whole = measure(
        &audit.save(),
        Bounds {
            budget: limits.max_inflated_bytes,
            ops: limits.max_ops_per_batch,
            ops_per_change: limits.max_ops_per_change,
        },
    );
    assert!(whole.is_ok(), "{whole:?}");
}
