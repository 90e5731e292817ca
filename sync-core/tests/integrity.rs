//! An audit's own people cannot break it (issue 14): the fields that
//! identify a document are written once, the fields its reader needs cannot
//! be removed at any depth, a new audit must match its planned audit, and a
//! batch after which the document no longer reads is refused whole. A
//! property test writes at random into every depth of every kind of
//! document as each permitted author, and whatever is accepted still reads.

use std::sync::OnceLock;

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, Change, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ValueRef};
use proptest::prelude::*;
use sync_core::DocKind;
use sync_core::audit::{AuditHeader, AuditView};
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, Side};
use sync_core::ids::DocumentId;
use sync_core::nc::Nc;
use sync_core::permissions::{Author, Refusal};
use sync_core::review::Review;
use sync_core::testing::fixtures::Demo;
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

/// A change made on a copy of `doc` without the device's own checks.
fn forged(doc: &Automerge, author: &Author, f: impl FnOnce(&mut Transaction<'_>)) -> Change {
    let mut copy = doc.clone();
    copy.set_actor(author.actors.iter().next().expect("a device").clone());
    let mut tx = copy.transaction();
    f(&mut tx);
    tx.commit();
    copy.get_last_local_change().expect("a change was made")
}

fn obj(tx: &Transaction<'_>, parent: &ObjId, key: &str) -> ObjId {
    match tx.get(parent, key) {
        Ok(Some((_, id))) => id,
        _ => panic!("no {key}"),
    }
}

fn refused(id: DocumentId, doc: &Automerge, changes: Vec<Change>, author: &Author) -> Refusal {
    match validate_batch(id, doc, changes, author, Demo::new().today) {
        Ok(a) => panic!(
            "accepted; the document {} reads",
            if a.doc
                .as_ref()
                .is_some_and(|d| AuditView::read(d).is_ok() || Nc::read(d).is_ok())
            {
                "still"
            } else {
                "no longer"
            }
        ),
        Err(r) => r,
    }
}

#[test]
fn the_lead_cannot_remove_or_change_what_identifies_an_audit() {
    let demo = Demo::new();
    let audit = demo.realistic_audit(3, 1);
    let header = |tx: &Transaction<'_>| obj(tx, &ROOT, "header");
    let cases: Vec<(&str, Change)> = vec![
        (
            "header/unit",
            forged(&audit, &demo.lead, |tx| {
                tx.delete(header(tx), "unit").expect("delete")
            }),
        ),
        (
            "header/lead",
            forged(&audit, &demo.lead, |tx| {
                tx.delete(header(tx), "lead").expect("delete")
            }),
        ),
        (
            "header/unit",
            forged(&audit, &demo.lead, |tx| {
                tx.put(header(tx), "unit", "NOWHERE").expect("put")
            }),
        ),
        (
            "header/unit",
            forged(&audit, &demo.lead, |tx| {
                tx.put(header(tx), "unit", "DEMO-II").expect("put")
            }),
        ),
        (
            "header/number",
            forged(&audit, &demo.lead, |tx| {
                tx.put(header(tx), "number", "IA/X/1").expect("put")
            }),
        ),
        (
            "header/template",
            forged(&audit, &demo.lead, |tx| {
                tx.put(header(tx), "template", 1u64).expect("put")
            }),
        ),
        (
            "header/lead",
            forged(&audit, &demo.lead, |tx| {
                tx.put(header(tx), "lead", "s.khan").expect("put")
            }),
        ),
    ];
    for (field, change) in cases {
        let r = refused(demo.audit_id, &audit, vec![change], &demo.lead);
        assert_eq!(r.rule, "doc.write_once", "{field}: {r}");
        assert!(r.message.contains(field), "{r}");
    }
    // A field the header's reader needs, not an identity: kept all the same.
    let change = forged(&audit, &demo.lead, |tx| {
        tx.delete(header(tx), "start").expect("delete")
    });
    let r = refused(demo.audit_id, &audit, vec![change], &demo.lead);
    assert_eq!(r.rule, "schema", "{r}");
    assert!(
        r.message.contains("'start'") && r.message.contains("header"),
        "{r}"
    );
    // What the lead may still change: the planned dates.
    let change = forged(&audit, &demo.lead, |tx| {
        tx.put(header(tx), "end", "2026-01-16").expect("put")
    });
    let ok = validate_batch(demo.audit_id, &audit, vec![change], &demo.lead, demo.today);
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn a_new_entry_cannot_lose_a_required_field_in_the_batch_that_makes_it() {
    let demo = Demo::new();
    let audit = demo.realistic_audit(3, 1);
    let change = forged(&audit, &demo.member, |tx| {
        let r = obj(tx, &ROOT, "responses");
        let e = tx
            .put_object(&r, "sd.item_8@P03", ObjType::Map)
            .expect("make");
        tx.put(&e, "type", "yn").expect("put");
        tx.put(&e, "value", "yes").expect("put");
        tx.put(&e, "by", "s.khan").expect("put");
        tx.put(&e, "at", "2026-01-15T10:00:00Z").expect("put");
        tx.delete(&e, "by").expect("delete");
    });
    let r = refused(demo.audit_id, &audit, vec![change], &demo.member);
    assert_eq!(r.rule, "schema", "{r}");
    assert!(r.message.contains("removes 'by'"), "{r}");
}

/// A new audit's first change, with `f` applied to the planned header.
fn new_audit(demo: &Demo, f: impl FnOnce(&mut AuditHeader)) -> Result<(), Refusal> {
    let mut header = demo.header();
    f(&mut header);
    let mut doc = Automerge::new();
    demo.edit(
        demo.audit_id,
        &mut doc,
        &demo.lead,
        Edit::CreateAudit(header),
    )
    .map(|_| ())
}

#[test]
fn a_new_audit_must_match_its_planned_audit() {
    let demo = Demo::new();
    assert_eq!(new_audit(&demo, |_| {}), Ok(()));
    // The lead is an auditor in a second unit too: a grant does not make
    // the audit that unit's.
    let mut lead = demo.lead.clone();
    let mut grant = lead.grants[0].clone();
    grant.unit = "DEMO-II".parse().expect("a unit");
    lead.grants.push(grant);
    let mut header = demo.header();
    header.unit = "DEMO-II".parse().expect("a unit");
    let mut doc = Automerge::new();
    let r = demo
        .edit(demo.audit_id, &mut doc, &lead, Edit::CreateAudit(header))
        .expect_err("another unit");
    assert_eq!(r.rule, "audit.plan", "{r}");
    assert!(
        r.message.contains("DEMO-II") && r.message.contains("DEMO-I."),
        "{r}"
    );
    type Alter = fn(&mut AuditHeader);
    let cases: [(&str, Alter); 4] = [
        ("NOWHERE", |h| {
            h.unit = "NOWHERE".parse().expect("a unit code")
        }),
        ("IA/X/9", |h| h.number = "IA/X/9".into()),
        ("checklist version", |h| h.template_version = 1),
        ("lead", |h| h.lead = "s.khan".parse().expect("a user")),
    ];
    for (named, f) in cases {
        let r = new_audit(&demo, f).expect_err(named);
        // A unit no grant names fails the creator's rights first.
        assert!(
            matches!(r.rule, "audit.plan" | "doc.create"),
            "{named}: {r}"
        );
        if named != "NOWHERE" {
            assert_eq!(r.rule, "audit.plan", "{named}: {r}");
            assert!(r.message.contains(named), "{named}: {r}");
        }
    }
    // Without the plan the lead cannot create it at all.
    let mut lead = demo.lead.clone();
    lead.planned.clear();
    let mut doc = Automerge::new();
    let r = demo
        .edit(
            demo.audit_id,
            &mut doc,
            &lead,
            Edit::CreateAudit(demo.header()),
        )
        .expect_err("unplanned");
    assert_eq!(r.rule, "audit.plan", "{r}");
}

#[test]
fn a_new_nc_is_of_its_audits_unit() {
    let demo = Demo::new();
    let mut member = demo.member.clone();
    let mut grant = member.grants[0].clone();
    grant.unit = "DEMO-II".parse().expect("a unit");
    member.grants.push(grant);
    let mut link = demo.nc_link();
    link.unit = "DEMO-II".parse().expect("a unit");
    let mut doc = Automerge::new();
    let r = demo
        .edit(
            demo.nc_id,
            &mut doc,
            &member,
            Edit::CreateNc {
                link,
                description: "x".into(),
                provisional: String::new(),
            },
        )
        .expect_err("another unit");
    assert_eq!(r.rule, "audit.plan", "{r}");
}

#[test]
fn a_batch_after_which_the_document_no_longer_reads_is_refused_whole_and_never_stored() {
    let demo = Demo::new();
    let nc = demo.nc_in(NcState::Open);
    // A verification note without who verified it: every write is one the
    // verifier may make, but the NC no longer reads.
    let fine = forged(&nc, &demo.member, |tx| {
        tx.put(ROOT, "description", "Amendment approved in 19 days")
            .expect("put");
    });
    let mut after = nc.clone();
    after.apply_changes([fine.clone()]).expect("applies");
    let breaking = forged(&after, &demo.member, |tx| {
        let v = obj(tx, &ROOT, "verification");
        tx.delete(&v, "by").expect("delete");
    });
    let r = refused(
        demo.nc_id,
        &nc,
        vec![fine.clone(), breaking.clone()],
        &demo.member,
    );
    assert_eq!(r.rule, "doc.unreadable", "{r}");
    assert!(r.message.contains("verification/by"), "{r}");
    // Through the engine: the change that breaks it is quarantined, the one
    // before it stored, and the server's NC reads.
    let mut server = Engine::new(Side::Server);
    server.insert(demo.nc_id, nc.clone());
    server.handle(
        demo.now(),
        Input::Connected {
            peer: 1,
            author: Some(demo.member.clone()),
            docs: vec![demo.nc_id],
        },
    );
    let msg = automerge::sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: vec![fine.raw_bytes().to_vec(), breaking.raw_bytes().to_vec()].into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };
    let bytes = sync_core::envelope::Envelope {
        doc: demo.nc_id,
        body: sync_core::envelope::Body::Sync(msg.encode()),
    }
    .encode()
    .expect("encodes");
    let fx = server.handle(demo.now(), Input::Received { peer: 1, bytes });
    let quarantined: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Quarantine { rule, changes, .. } => Some((rule.clone(), changes.len())),
            _ => None,
        })
        .collect();
    assert_eq!(quarantined, vec![("doc.unreadable".to_owned(), 1)]);
    let held = server.doc(&demo.nc_id).expect("held");
    assert!(Nc::read(held).is_ok());
    assert!(held.get_change_by_hash(&breaking.hash()).is_none());
}

// --- The property test -------------------------------------------------

/// Keys written at random: the fields of every kind of document and some
/// that are none.
const KEYS: &[&str] = &[
    "schema",
    "v",
    "id",
    "unit",
    "number",
    "template",
    "lead",
    "team",
    "scope",
    "start",
    "end",
    "header",
    "responses",
    "findings",
    "notes",
    "events",
    "audit",
    "finding",
    "process",
    "clause",
    "class",
    "raised_on",
    "description",
    "correction",
    "root_cause",
    "actions",
    "extensions",
    "verification",
    "title",
    "held_on",
    "inputs",
    "decisions",
    "minutes",
    "type",
    "value",
    "note",
    "by",
    "at",
    "on",
    "evidence",
    "sha256",
    "name",
    "mime",
    "size",
    "text",
    "owner",
    "target",
    "done_on",
    "move",
    "from",
    "heads",
    "of",
    "due",
    "justification",
    "sd.item_1@P03",
    "f-09",
    "a-2",
    "x",
];

/// Values written at random: half the time one of the right form for the
/// key (or nearly: a date that does not exist, a unit no one plans), else
/// anything.
fn value(v: usize, key: &str, demo: &Demo) -> ScalarValue {
    let s = |t: &[&str]| ScalarValue::Str(t[(v / 2) % t.len()].into());
    let dates = ["2026-01-15", "2026-01-16", "2026-02-30"];
    let people = ["k.iyer", "s.khan", "a.rao", "ac.div2"];
    let texts = ["Sampled 10 files", "", "Line one\nline two"];
    if v.is_multiple_of(2) {
        return match key {
            "unit" => s(&["DEMO-I", "DEMO-II", "NOWHERE"]),
            "number" => s(&["IA/DEMO-I/2025-26/003", "IA/X/1"]),
            "template" | "v" => ScalarValue::Uint(1 + (v as u64 / 2) % 2),
            "size" => ScalarValue::Uint(10),
            "lead" | "by" => s(&people),
            "start" | "end" | "due" | "target" | "done_on" | "on" | "raised_on" | "held_on" => {
                s(&dates)
            }
            "at" | "taken_at" => s(&["2026-01-15T10:00:00Z", "yesterday"]),
            "type" => s(&["cpna", "yn", "text", "number", "date", "photo"]),
            "value" => s(&[
                "conform",
                "partly",
                "yes",
                "no",
                "12",
                "2026-01-15",
                "free text",
            ]),
            "class" => s(&["minor", "major", "observation", "good_practice"]),
            "clause" => s(&["3.2.1.3", "2.2"]),
            "process" => s(&["P03", "P99"]),
            "mime" => s(&["image/jpeg"]),
            "sha256" => ScalarValue::Str("a".repeat(64).into()),
            "move" => s(MOVES),
            "from" => s(STATES),
            "of" => s(&["response", "action"]),
            "id" | "audit" => ScalarValue::Str(demo.audit_id.to_string().into()),
            "finding" => s(&["f-01", "f-02"]),
            "schema" => s(&["sqm.audit", "sqm.nc"]),
            _ => s(&texts),
        };
    }
    let any = [
        "k.iyer",
        "DEMO-I",
        "NOWHERE",
        "2026-01-15",
        "2026-02-30",
        "2026-01-15T10:00:00Z",
        "IA/DEMO-I/2025-26/003",
        "3.2.1.3",
        "P03",
        "minor",
        "cpna",
        "conform",
        "12",
        "",
        "a note",
        "f-01",
        "sqm.audit",
    ];
    match (v / 2) % (any.len() + 4) {
        i if i < any.len() => ScalarValue::Str(any[i].into()),
        i if i == any.len() => ScalarValue::Uint(2),
        i if i == any.len() + 1 => ScalarValue::Int(-1),
        i if i == any.len() + 2 => ScalarValue::Str("x".repeat(70_000).into()),
        _ => ScalarValue::Boolean(true),
    }
}

const MOVES: &[&str] = &[
    "start",
    "submit_for_review",
    "issue_report",
    "close",
    "raise",
    "submit_response",
    "accept_plan",
    "reject_plan",
    "mark_implemented",
    "verify_effective",
    "verify_not_effective",
    "withdraw",
    "reopen",
    "bogus",
];
const STATES: &[&str] = &[
    "planned",
    "in_progress",
    "in_review",
    "reported",
    "closed",
    "draft",
    "open",
    "response_submitted",
    "plan_accepted",
    "implemented",
    "withdrawn",
];

#[derive(Clone, Debug)]
enum Write {
    /// Put a value under a key of the object reached by `path`.
    Put {
        path: Vec<usize>,
        key: usize,
        value: usize,
    },
    /// Make a map or list under a key.
    Make {
        path: Vec<usize>,
        key: usize,
        list: bool,
    },
    /// Delete a key (or a list's first item).
    Delete { path: Vec<usize>, key: usize },
    /// Insert a value at the start of a list.
    Insert { path: Vec<usize>, value: usize },
    /// Append a lifecycle move, as a device does (with the heads, for an audit).
    Move { mv: usize, from: usize },
    /// End the change so far and start another.
    Commit,
}

fn path() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..4)
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        4 => (path(), any::<usize>(), any::<usize>()).prop_map(|(path, key, value)| Write::Put { path, key, value }),
        1 => (path(), any::<usize>(), any::<bool>()).prop_map(|(path, key, list)| Write::Make { path, key, list }),
        3 => (path(), any::<usize>()).prop_map(|(path, key)| Write::Delete { path, key }),
        1 => (path(), any::<usize>()).prop_map(|(path, value)| Write::Insert { path, value }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(mv, from)| Write::Move { mv, from }),
        1 => Just(Write::Commit),
    ]
}

/// Walks down the objects of `doc` by `path` (each step one of the objects
/// held, chosen by the number), as deep as it goes.
fn walk(doc: &Automerge, path: &[usize]) -> ObjId {
    let mut at = ROOT;
    for step in path {
        let children: Vec<ObjId> = match doc.object_type(&at) {
            Ok(ObjType::Map) => doc
                .map_range(&at, ..)
                .filter_map(|m| matches!(m.value, ValueRef::Object(_)).then(|| m.id()))
                .collect(),
            Ok(ObjType::List) => doc
                .list_range(&at, ..)
                .filter_map(|l| matches!(l.value, ValueRef::Object(_)).then(|| l.id()))
                .collect(),
            _ => Vec::new(),
        };
        if children.is_empty() {
            break;
        }
        at = children[step % children.len()].clone();
    }
    at
}

/// A key of `obj` (three times in four one it holds) or of [`KEYS`].
fn key_of(doc: &Automerge, obj: &ObjId, n: usize) -> String {
    let held: Vec<String> = doc.keys(obj).collect();
    if held.is_empty() || n.is_multiple_of(4) {
        KEYS[(n / 4) % KEYS.len()].to_owned()
    } else {
        held[(n / 4) % held.len()].clone()
    }
}

/// Plays `writes` on a copy of `doc` as `author`; the changes made.
fn play(
    doc: &Automerge,
    author: &Author,
    kind: DocKind,
    writes: &[Write],
    demo: &Demo,
) -> Vec<Change> {
    let mut device = doc.clone();
    device.set_actor(author.actors.iter().next().expect("a device").clone());
    let base = device.get_heads();
    let mut pending: Vec<&Write> = Vec::new();
    let mut batches: Vec<Vec<&Write>> = Vec::new();
    for w in writes {
        if matches!(w, Write::Commit) {
            batches.push(std::mem::take(&mut pending));
        } else {
            pending.push(w);
        }
    }
    batches.push(pending);
    for batch in batches.into_iter().filter(|b| !b.is_empty()) {
        let heads = device.get_heads();
        let snapshot = device.clone();
        let mut tx = device.transaction();
        for w in batch {
            let _ = match w {
                Write::Put {
                    path,
                    key,
                    value: v,
                } => {
                    let o = walk(&snapshot, path);
                    match snapshot.object_type(&o) {
                        Ok(ObjType::Map) => {
                            let k = key_of(&snapshot, &o, *key);
                            tx.put(&o, k.as_str(), value(*v, &k, demo))
                        }
                        _ => Ok(()),
                    }
                }
                Write::Make { path, key, list } => {
                    let o = walk(&snapshot, path);
                    let t = if *list { ObjType::List } else { ObjType::Map };
                    match snapshot.object_type(&o) {
                        Ok(ObjType::Map) => tx
                            .put_object(&o, key_of(&snapshot, &o, *key), t)
                            .map(|_| ()),
                        Ok(ObjType::List) => tx.insert_object(&o, 0, t).map(|_| ()),
                        _ => Ok(()),
                    }
                }
                Write::Delete { path, key } => {
                    let o = walk(&snapshot, path);
                    match snapshot.object_type(&o) {
                        Ok(ObjType::Map) => tx.delete(&o, key_of(&snapshot, &o, *key)),
                        Ok(ObjType::List) if snapshot.length(&o) > 0 => {
                            tx.delete(&o, key % snapshot.length(&o))
                        }
                        _ => Ok(()),
                    }
                }
                Write::Insert { path, value: v } => {
                    let o = walk(&snapshot, path);
                    match snapshot.object_type(&o) {
                        Ok(ObjType::List) => tx.insert(&o, 0, value(*v, "", demo)),
                        _ => Ok(()),
                    }
                }
                Write::Move { mv, from } => match tx.get(ROOT, "events") {
                    Ok(Some((_, list))) => {
                        let at = tx.length(&list);
                        tx.insert_object(&list, at, ObjType::Map).and_then(|e| {
                            tx.put(&e, "move", MOVES[mv % MOVES.len()])?;
                            tx.put(&e, "from", STATES[from % STATES.len()])?;
                            tx.put(&e, "by", author.user.as_str())?;
                            tx.put(&e, "at", "2026-01-15T10:00:00Z")?;
                            tx.put(&e, "note", "as planned")?;
                            if kind == DocKind::Audit {
                                let hs = tx.put_object(&e, "heads", ObjType::List)?;
                                for (i, h) in heads.iter().enumerate() {
                                    tx.insert(&hs, i, h.to_string())?;
                                }
                            }
                            Ok(())
                        })
                    }
                    _ => Ok(()),
                },
                Write::Commit => Ok(()),
            };
        }
        tx.commit();
    }
    device.get_changes(&base).into_iter().collect()
}

/// The documents written to: an audit (open, and locked for review), an NC
/// in two states and a review, each with the authors permitted to write in it.
/// A document of a kind, its id, and the authors permitted to write in it.
type Written = (DocKind, DocumentId, Automerge, Vec<Author>);

fn documents() -> &'static Vec<Written> {
    static DOCS: OnceLock<Vec<Written>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let demo = Demo::new();
        let audit = demo.realistic_audit(4, 3);
        let mut locked = audit.clone();
        demo.lock(&mut locked);
        let mut review = Automerge::new();
        demo.must(
            demo.review_id,
            &mut review,
            &demo.nodal,
            Edit::CreateReview {
                unit: demo.unit.clone(),
                title: "MR-1".into(),
            },
        );
        demo.must(
            demo.review_id,
            &mut review,
            &demo.nodal,
            Edit::AddDecision("Train staff".into()),
        );
        let auditors = vec![demo.lead.clone(), demo.member.clone(), demo.nodal.clone()];
        let nc_people = vec![
            demo.owner.clone(),
            demo.member.clone(),
            demo.lead.clone(),
            demo.nodal.clone(),
        ];
        vec![
            (DocKind::Audit, demo.audit_id, audit, auditors.clone()),
            (DocKind::Audit, demo.audit_id, locked, auditors),
            (
                DocKind::Nc,
                demo.nc_id,
                demo.nc_in(NcState::Open),
                nc_people.clone(),
            ),
            (
                DocKind::Nc,
                demo.nc_id,
                demo.nc_in(NcState::Implemented),
                nc_people,
            ),
            (
                DocKind::Review,
                demo.review_id,
                review,
                vec![demo.nodal.clone()],
            ),
        ]
    })
}

fn reads(kind: DocKind, doc: &Automerge) -> Result<(), String> {
    match kind {
        DocKind::Audit => AuditView::read(doc).map(|_| ()),
        DocKind::Nc => Nc::read(doc).map(|_| ()),
        DocKind::Review => Review::read(doc).map(|_| ()),
    }
    .map_err(|e| e.to_string())
}

proptest! {
    // 400 batches of 1 to 10 writes in up to four changes, each by one of
    // the authors permitted in the document: puts of well- and ill-formed
    // values, makes, deletes and list inserts at every depth (the root,
    // header, entries, their evidence and event maps), and lifecycle moves.
    // About one batch in five is accepted. A few seconds.
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_batches_by_a_permitted_author_never_leave_a_document_that_fails_to_read(
        which in any::<usize>(),
        who in any::<usize>(),
        writes in prop::collection::vec(write(), 1..5),
    ) {
        let demo = Demo::new();
        let docs = documents();
        let (kind, id, stored, authors) = &docs[which % docs.len()];
        let author = &authors[who % authors.len()];
        let changes = play(stored, author, *kind, &writes, &demo);
        prop_assume!(!changes.is_empty());
        if let Ok(accepted) = validate_batch(*id, stored, changes, author, demo.today)
            && let Some(doc) = accepted.doc
        {
            let read = reads(*kind, &doc);
            prop_assert!(read.is_ok(), "accepted, and then: {read:?} after {writes:?}");
        }
    }
}
