//! Evidence on NCs: the process owner attaches implementation evidence (the
//! files that show the actions done) and an independent auditor of the team
//! attaches verification evidence; each list only grows, so what two devices
//! attach at once is all kept; and an NC is marked implemented only with at
//! least one piece of implementation evidence. The tablet and the server
//! give the same answers: both run the validator.

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc};
use sync_core::audit::Evidence;
use sync_core::edit::Edit;
use sync_core::nc::{Action, EvidenceOf, Nc};
use sync_core::permissions::Author;
use sync_core::testing::fixtures::{Demo, actor, forged, obj_at};
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

fn attach(of: EvidenceOf, name: &str, fill: u8) -> Edit {
    Edit::AttachNcEvidence {
        of,
        file: Demo::scan(name, fill),
    }
}

fn people(demo: &Demo) -> [(&'static str, &Author); 5] {
    [
        ("lead", &demo.lead),
        ("member", &demo.member),
        ("owner", &demo.owner),
        ("nodal", &demo.nodal),
        ("outsider", &demo.outsider),
    ]
}

fn mv(name: &str) -> Edit {
    Edit::Move {
        mv: name.into(),
        note: String::new(),
    }
}

#[test]
fn implementation_evidence_is_the_owners_and_verification_evidence_an_independent_auditors() {
    let demo = Demo::new();
    // Written by hand from DESIGN §2 and the SQM: who may attach to each
    // list of an open NC on P03, and the rule that refuses everyone else.
    let expected: [(EvidenceOf, &[&str], &str); 2] = [
        (EvidenceOf::Implementation, &["owner"], "nc.owner_fields"),
        (
            EvidenceOf::Verification,
            &["lead", "member"],
            "nc.verification",
        ),
    ];
    for (of, who, rule) in expected {
        for (name, author) in people(&demo) {
            let mut doc = demo.nc_in(NcState::Open);
            let got = demo.edit(demo.nc_id, &mut doc, author, attach(of, "scan.pdf", 0x11));
            match got {
                Ok(_) => {
                    assert!(who.contains(&name), "{name} attached {of} evidence");
                    let nc = Nc::read(&doc).expect("reads");
                    let list = match of {
                        EvidenceOf::Implementation => &nc.implementation_evidence,
                        EvidenceOf::Verification => &nc.verification_evidence,
                    };
                    let last = list.last().expect("attached");
                    assert_eq!(last.by, author.user);
                    assert_eq!(last.at, demo.now());
                    assert_eq!(last.file, Demo::scan("scan.pdf", 0x11));
                }
                Err(r) => {
                    assert!(!who.contains(&name), "{name} may attach {of}: {r}");
                    assert_eq!(r.rule, rule, "{name}: {r}");
                    assert!(r.message.contains(&format!("the {of} evidence")), "{r}");
                }
            }
        }
    }
}

/// An NC with its plan accepted and every action done, but no evidence.
fn accepted_without_evidence(demo: &Demo) -> Automerge {
    let mut doc = demo.nc();
    let id = demo.nc_id;
    demo.must(id, &mut doc, &demo.member, mv("raise"));
    for edit in [
        Edit::SetCorrection("Pending amendments cleared".into()),
        Edit::SetRootCause("No daily ageing report at the desk".into()),
        Edit::PutAction {
            id: "a-1".parse().expect("an id"),
            action: Action {
                text: "Daily ageing report to AC".into(),
                owner: "Supdt Div-II".into(),
                target: "2026-02-15".parse().expect("a date"),
                done_on: Some("2026-02-10".parse().expect("a date")),
            },
        },
        mv("submit_response"),
    ] {
        demo.must(id, &mut doc, &demo.owner, edit);
    }
    demo.must(id, &mut doc, &demo.member, mv("accept_plan"));
    doc
}

#[test]
fn an_nc_is_marked_implemented_only_once_its_owner_has_attached_evidence() {
    let demo = Demo::new();
    let id = demo.nc_id;
    let mut doc = accepted_without_evidence(&demo);
    let err = demo
        .edit(id, &mut doc, &demo.owner, mv("mark_implemented"))
        .expect_err("no evidence");
    assert_eq!(err.rule, "move.requirement");
    assert!(err.message.contains("implementation evidence"), "{err}");
    // The auditor's verification evidence is not the owner's proof.
    demo.must(
        id,
        &mut doc,
        &demo.member,
        attach(EvidenceOf::Verification, "site-visit.pdf", 0x21),
    );
    let err = demo
        .edit(id, &mut doc, &demo.owner, mv("mark_implemented"))
        .expect_err("only verification evidence");
    assert_eq!(err.rule, "move.requirement");
    demo.must(
        id,
        &mut doc,
        &demo.owner,
        attach(EvidenceOf::Implementation, "ageing-report.pdf", 0x22),
    );
    demo.must(id, &mut doc, &demo.owner, mv("mark_implemented"));
    let nc = Nc::read(&doc).expect("reads");
    assert_eq!(
        nc.view(&Default::default(), demo.today).state,
        NcState::Implemented
    );
}

#[test]
fn files_attached_on_two_devices_at_once_are_all_kept_in_the_same_order_everywhere() {
    let demo = Demo::new();
    let id = demo.nc_id;
    let mut owner = demo.owner.clone();
    owner.actors.insert(actor(13));
    let base = demo.nc_in(NcState::PlanAccepted);
    let mut phone = base.clone();
    let mut tablet = base.clone();
    let before = Nc::read(&base)
        .expect("reads")
        .implementation_evidence
        .len();
    demo.must(
        id,
        &mut phone,
        &owner,
        attach(EvidenceOf::Implementation, "register-page-1.pdf", 0x31),
    );
    tablet.set_actor(actor(13));
    let second = attach(EvidenceOf::Implementation, "register-page-2.pdf", 0x32);
    sync_core::edit::apply_edit(id, &mut tablet, &second, &owner, demo.now()).expect("accepted");
    let mut one = phone.clone();
    one.merge(&mut tablet.clone()).expect("merges");
    let mut two = tablet.clone();
    two.merge(&mut phone.clone()).expect("merges");
    let a = Nc::read(&one).expect("reads").implementation_evidence;
    let b = Nc::read(&two).expect("reads").implementation_evidence;
    assert_eq!(a, b, "the same list on both replicas");
    assert_eq!(a.len(), before + 2, "both kept");
    let names: Vec<&str> = a[before..].iter().map(|e| e.file.name.as_str()).collect();
    assert!(names.contains(&"register-page-1.pdf") && names.contains(&"register-page-2.pdf"));
}

#[test]
fn attached_files_are_never_changed_or_removed_and_name_their_sender() {
    let demo = Demo::new();
    let stored = demo.nc_in(NcState::Implemented);
    let list = "implementation_evidence";
    // (what, the owner's raw change on their device 3, the rule that refuses it)
    let cases: Vec<(&str, automerge::Change, &str)> = vec![
        (
            "an attached file removed",
            forged(&stored, 3, |tx| {
                let l = obj_at(tx, &[list]);
                tx.delete(&l, 0).expect("delete");
            }),
            "events.append_only",
        ),
        (
            "an attached file renamed",
            forged(&stored, 3, |tx| {
                let l = obj_at(tx, &[list]);
                let (_, item) = tx.get(&l, 0).expect("get").expect("an item");
                tx.put(&item, "name", "other.pdf").expect("put");
            }),
            "events.append_only",
        ),
        (
            "the list replaced by an empty one",
            forged(&stored, 3, |tx| {
                tx.put_object(automerge::ROOT, list, ObjType::List)
                    .expect("put");
            }),
            "doc.write_once",
        ),
        (
            "the list removed",
            forged(&stored, 3, |tx| {
                tx.delete(automerge::ROOT, list).expect("delete");
            }),
            "events.append_only",
        ),
        (
            "a file recorded as attached by someone else",
            forged(&stored, 3, |tx| {
                let l = obj_at(tx, &[list]);
                let at = tx.length(&l);
                let e = tx.insert_object(&l, at, ObjType::Map).expect("insert");
                write_file(tx, &e, &Demo::scan("x.pdf", 0x41));
                tx.put(&e, "by", "k.iyer").expect("put");
                tx.put(&e, "at", demo.now().to_string()).expect("put");
            }),
            "entry.by",
        ),
    ];
    for (what, change, rule) in cases {
        let err = validate_batch(demo.nc_id, &stored, vec![change], &demo.owner, demo.today)
            .expect_err(what);
        assert_eq!(err.rule, rule, "{what}: {err}");
    }
    // A file appended with every field it needs is accepted; without `by`
    // or `at` it is refused, naming the field.
    let append = |skip: &str| {
        forged(&stored, 3, |tx| {
            let l = obj_at(tx, &[list]);
            let at = tx.length(&l);
            let e = tx.insert_object(&l, at, ObjType::Map).expect("insert");
            write_file(tx, &e, &Demo::scan("y.pdf", 0x42));
            for (k, v) in [
                ("by", demo.owner.user.to_string()),
                ("at", demo.now().to_string()),
            ] {
                if k != skip {
                    tx.put(&e, k, v).expect("put");
                }
            }
        })
    };
    validate_batch(
        demo.nc_id,
        &stored,
        vec![append("")],
        &demo.owner,
        demo.today,
    )
    .expect("a whole file is accepted");
    for needed in ["by", "at"] {
        let err = validate_batch(
            demo.nc_id,
            &stored,
            vec![append(needed)],
            &demo.owner,
            demo.today,
        )
        .expect_err("a field is missing");
        assert_eq!(err.rule, "schema", "{err}");
        assert!(err.message.contains(&format!("no '{needed}'")), "{err}");
    }
}

fn write_file(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: &automerge::ObjId,
    e: &Evidence,
) {
    tx.put(obj, "sha256", e.sha256.to_string()).expect("put");
    tx.put(obj, "name", e.name.as_str()).expect("put");
    tx.put(obj, "mime", e.mime.as_str()).expect("put");
    tx.put(obj, "size", e.size).expect("put");
}
