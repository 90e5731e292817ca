//! Control characters in what people type (issue 14): refused wherever a
//! device's text goes, by rule `text.control`, with tabs and line breaks
//! allowed only in text of several lines; and a refusal that quotes a
//! device's text (a schema name, a key, a value) carries no control
//! character itself.

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, Change, ObjId, ObjType, ROOT, ReadDoc};
use sync_core::audit::{Answer, Cpna, Evidence};
use sync_core::edit::{Edit, apply_edit};
use sync_core::ids::DocumentId;
use sync_core::nc::Action;
use sync_core::permissions::{Author, Refusal};
use sync_core::testing::fixtures::{Demo, actor, forged};
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

fn obj(tx: &Transaction<'_>, parent: &ObjId, key: &str) -> ObjId {
    match tx.get(parent, key) {
        Ok(Some((_, id))) => id,
        _ => panic!("no {key}"),
    }
}

fn refused(id: DocumentId, doc: &Automerge, change: Change, author: &Author) -> Refusal {
    let demo = Demo::new();
    match validate_batch(id, doc, vec![change], author, demo.today) {
        Ok(_) => panic!("accepted"),
        Err(r) => r,
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[test]
fn control_characters_are_refused_in_every_kind_of_place_by_rule_text_control() {
    let demo = Demo::new();
    let audit = demo.realistic_audit(3, 2);
    let nc = demo.nc_in(NcState::Open);
    let cases: Vec<(&str, DocumentId, &Automerge, Change, &Author)> = vec![
        (
            "findings/f-01/text",
            demo.audit_id,
            &audit,
            forged(&audit, 2, |tx| {
                let f = obj(tx, &obj(tx, &ROOT, "findings"), "f-01");
                tx.put(&f, "text", "19 days\0 late").expect("put");
            }),
            &demo.member,
        ),
        (
            "notes",
            demo.audit_id,
            &audit,
            forged(&audit, 2, |tx| {
                tx.put(ROOT, "notes", "opening \u{1b}[31m meeting")
                    .expect("put");
            }),
            &demo.member,
        ),
        (
            "header/end",
            demo.audit_id,
            &audit,
            forged(&audit, 1, |tx| {
                let h = obj(tx, &ROOT, "header");
                tx.put(&h, "end", "2026-01-1\u{7f}").expect("put");
            }),
            &demo.lead,
        ),
        (
            "an entry id",
            demo.audit_id,
            &audit,
            forged(&audit, 2, |tx| {
                let r = obj(tx, &ROOT, "responses");
                tx.put_object(&r, "sd.item_9\0@P03", ObjType::Map)
                    .expect("make");
            }),
            &demo.member,
        ),
        (
            "header/scope",
            demo.audit_id,
            &audit,
            forged(&audit, 1, |tx| {
                let s = obj(tx, &obj(tx, &ROOT, "header"), "scope");
                tx.insert(&s, 0, "P0\u{9f}").expect("insert");
            }),
            &demo.lead,
        ),
        (
            "correction",
            demo.nc_id,
            &nc,
            forged(&nc, 3, |tx| {
                tx.put(ROOT, "correction", "cleared\u{85}").expect("put");
            }),
            &demo.owner,
        ),
        (
            "a noncharacter in a note",
            demo.audit_id,
            &audit,
            forged(&audit, 2, |tx| {
                tx.put(ROOT, "notes", "byte order \u{fffe}").expect("put");
            }),
            &demo.member,
        ),
    ];
    for (place, id, doc, change, author) in cases {
        let r = refused(id, doc, change, author);
        assert_eq!(r.rule, "text.control", "{place}: {r}");
        assert!(r.message.contains("U+"), "{place}: {r}");
        assert!(!has_control(&r.message), "{place}: {r:?}");
    }
}

#[test]
fn a_new_documents_control_characters_are_named_as_such_before_it_is_read() {
    let demo = Demo::new();
    for (what, schema, number) in [
        ("schema", "sqm.\0audit", "IA/DEMO-I/2025-26/003"),
        ("header/number", "sqm.audit", "IA/DEMO-I/2025-26/\u{0}003"),
    ] {
        let change = forged(&Automerge::new(), 1, |tx| {
            tx.put(ROOT, "schema", schema).expect("put");
            tx.put(ROOT, "v", 1u64).expect("put");
            tx.put(ROOT, "id", demo.audit_id.to_string()).expect("put");
            let h = tx.put_object(ROOT, "header", ObjType::Map).expect("make");
            tx.put(&h, "unit", "DEMO-I").expect("put");
            tx.put(&h, "number", number).expect("put");
            tx.put(&h, "template", 2u64).expect("put");
            tx.put(&h, "lead", "k.iyer").expect("put");
            tx.put(&h, "start", "2026-01-13").expect("put");
        });
        let r = refused(demo.audit_id, &Automerge::new(), change, &demo.lead);
        assert_eq!(r.rule, "text.control", "{what}: {r}");
        assert!(
            r.message.contains(what) && r.message.contains("U+0000"),
            "{r}"
        );
        assert!(!has_control(&r.message), "{r:?}");
    }
}

#[test]
fn tabs_and_line_breaks_are_kept_in_a_note_and_refused_in_a_single_line_field() {
    let demo = Demo::new();
    let mut doc = demo.realistic_audit(3, 1);
    doc.set_actor(actor(2));
    let note = "Sampled 10 files:\n\t8 on time\n\t2 late";
    let photo = |name: &str| Evidence {
        sha256: "a".repeat(64).parse().expect("a hash"),
        name: name.into(),
        mime: "image/jpeg".into(),
        size: 10,
        taken_at: None,
    };
    let answer = |note: &str, photo_name: &str| Edit::SetResponse {
        key: "sd.item_7@P03".parse().expect("a key"),
        answer: Answer::Cpna(Cpna::Partly),
        note: note.into(),
        evidence: vec![photo(photo_name)],
    };
    apply_edit(
        demo.audit_id,
        &mut doc,
        &answer(note, "IMG_1.jpg"),
        &demo.member,
        demo.now(),
    )
    .expect("a note of several lines is kept");
    let view = sync_core::audit::AuditView::read(&doc).expect("reads");
    let key = "sd.item_7@P03".parse().expect("a key");
    assert_eq!(view.content.responses[&key].note, note);
    // A file name is one line: the device refuses it as the server does.
    for name in ["IMG\t1.jpg", "IMG\n1.jpg"] {
        let r = apply_edit(
            demo.audit_id,
            &mut doc,
            &answer("", name),
            &demo.member,
            demo.now(),
        )
        .expect_err("a file name of two lines");
        assert_eq!(r.rule, "text.control", "{r}");
        assert!(r.message.contains("tab or line break"), "{r}");
    }
    // So is an action's owner.
    let mut nc = demo.nc_in(NcState::Open);
    nc.set_actor(actor(3));
    let r = apply_edit(
        demo.nc_id,
        &mut nc,
        &Edit::PutAction {
            id: "a-2".parse().expect("an id"),
            action: Action {
                text: "Daily report\nto the AC".into(),
                owner: "Supdt\nDiv-II".into(),
                target: demo.today,
                done_on: None,
            },
        },
        &demo.owner,
        demo.now(),
    )
    .expect_err("an owner of two lines");
    assert_eq!(r.rule, "text.control", "{r}");
    assert!(r.message.contains("actions/a-2/owner"), "{r}");
}

#[test]
fn a_refusal_quoting_a_hostile_schema_name_or_key_holds_no_control_character() {
    let demo = Demo::new();
    let audit = demo.realistic_audit(3, 1);
    // A key the schema does not know, with characters that reorder the text
    // around them, and far longer than a message needs.
    let key = format!("x\u{202e}{}", "k".repeat(500));
    let change = forged(&audit, 2, |tx| {
        tx.put(ROOT, key.as_str(), "v").expect("put");
    });
    let r = refused(demo.audit_id, &audit, change, &demo.member);
    assert_eq!(r.rule, "schema.unknown_field");
    assert!(!r.message.contains('\u{202e}'), "{r:?}");
    assert!(r.message.contains("x\\u{202e}kkk"), "{r}");
    assert!(r.message.len() < 200, "the quote is cut short: {r}");
    // One that would rewrite a terminal.
    let change = forged(&audit, 2, |tx| {
        tx.put(ROOT, "x\u{1b}[2J", "v").expect("put");
    });
    let r = refused(demo.audit_id, &audit, change, &demo.member);
    assert!(!has_control(&r.message), "{r:?}");
    // A schema name that does not parse is quoted escaped.
    let change = forged(&Automerge::new(), 1, |tx| {
        tx.put(ROOT, "schema", "sqm.\u{202e}tidua").expect("put");
        tx.put(ROOT, "v", 1u64).expect("put");
    });
    let r = refused(demo.audit_id, &Automerge::new(), change, &demo.lead);
    assert!(r.message.contains("sqm.\\u{202e}tidua"), "{r}");
    // A stored document holding what no device can write now (from before
    // this rule) is still described without it.
    let mut old = Automerge::new();
    let mut tx = old.transaction();
    tx.put(ROOT, "schema", "sqm.\u{7}audit").expect("put");
    tx.commit();
    let err = sync_core::audit::AuditView::read(&old).expect_err("unknown schema");
    assert!(!has_control(&err.to_string()), "{err:?}");
}
