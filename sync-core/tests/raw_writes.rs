//! Raw changes, made past the tablet's own checks, that the validator
//! judges by what they write and where: limits just under and just over,
//! the fields each entry, item and event must hold (new or existing), the
//! form of answers and list items, objects and values only where their
//! kind belongs, history that only grows, entries and moves recorded as
//! made by their sender, a move's requirements, and the root as a map.
//! Each test here was written for a rule that a mutant of `validate.rs`
//! showed no test held (docs/testing.md).

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, Change, ObjId, ObjType, ReadDoc};
use sync_core::audit::{Answer, AuditView, YesNo};
use sync_core::edit::Edit;
use sync_core::nc::DueKind;
use sync_core::permissions::Author;
use sync_core::testing::fixtures::{Demo, actor, forged, obj_at};
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

/// The lead writes `text` as the audit's notes and as a new item of its scope.
fn lead_writes_text(stored: &Automerge, text: &str) -> [Change; 2] {
    let notes = forged(stored, 1, |tx| {
        tx.put(automerge::ROOT, "notes", text).expect("put");
    });
    let scope = forged(stored, 1, |tx| {
        let scope = obj_at(tx, &["header", "scope"]);
        tx.insert(&scope, 0, text).expect("insert");
    });
    [notes, scope]
}

#[test]
fn a_text_may_be_as_long_as_the_limit_and_not_one_byte_longer() {
    use sync_core::schema::MAX_TEXT_BYTES;
    let demo = Demo::new();
    let stored = demo.realistic_audit(3, 0);
    let at_limit = "a".repeat(MAX_TEXT_BYTES);
    for change in lead_writes_text(&stored, &at_limit) {
        validate_batch(demo.audit_id, &stored, vec![change], &demo.lead, demo.today)
            .expect("a text of exactly the limit is kept");
    }
    let over = "a".repeat(MAX_TEXT_BYTES + 1);
    for change in lead_writes_text(&stored, &over) {
        let err = validate_batch(demo.audit_id, &stored, vec![change], &demo.lead, demo.today)
            .expect_err("one byte over the limit");
        assert_eq!(err.rule, "schema", "{err}");
    }
}

/// A value to put in a hand-built map.
enum V {
    Text(String),
    Count(u64),
}

/// Writes `fields` (leaving out `skip`) into `obj`.
fn put_fields(tx: &mut Transaction<'_>, obj: &ObjId, fields: &[(&str, V)], skip: &str) {
    for (k, v) in fields.iter().filter(|(k, _)| *k != skip) {
        match v {
            V::Text(t) => tx.put(obj, *k, t.as_str()).expect("put"),
            V::Count(n) => tx.put(obj, *k, *n).expect("put"),
        }
    }
}

fn text(s: &str) -> V {
    V::Text(s.to_string())
}

/// A new map under `key` of the map at `path`, holding `fields` but `skip`.
fn new_map(
    tx: &mut Transaction<'_>,
    path: &[&str],
    key: &str,
    fields: &[(&str, V)],
    skip: &str,
) -> ObjId {
    let parent = obj_at(tx, path);
    let map = tx.put_object(&parent, key, ObjType::Map).expect("put");
    put_fields(tx, &map, fields, skip);
    map
}

/// A new map appended to the list at `path`, holding `fields` but `skip`.
fn appended(tx: &mut Transaction<'_>, path: &[&str], fields: &[(&str, V)], skip: &str) -> ObjId {
    let list = obj_at(tx, path);
    let at = tx.length(&list);
    let map = tx.insert_object(&list, at, ObjType::Map).expect("insert");
    put_fields(tx, &map, fields, skip);
    map
}

/// A finding's fields as a tablet writes them.
fn finding(by: &str, at: &str) -> [(&'static str, V); 5] {
    [
        ("class", text("minor")),
        ("clause", text("3.2.4")),
        ("text", text("Register of documents not kept up to date")),
        ("by", text(by)),
        ("at", text(at)),
    ]
}

/// A lifecycle event's fields as a tablet writes them.
fn event(mv: &str, from: &str, by: &str, at: &str) -> [(&'static str, V); 5] {
    [
        ("move", text(mv)),
        ("from", text(from)),
        ("by", text(by)),
        ("at", text(at)),
        ("note", text("")),
    ]
}

#[test]
fn an_action_an_extension_an_event_or_evidence_without_a_field_it_needs_is_refused_naming_it() {
    let demo = Demo::new();
    let now = demo.now().to_string();
    let open_nc = demo.nc_in(NcState::Open);
    let audit = demo.realistic_audit(2, 0);

    let action = |skip: &str| {
        forged(&open_nc, 3, |tx| {
            let fields = [
                ("text", text("Register updated daily")),
                ("owner", text("Supdt Div-II")),
                ("target", text("2026-02-15")),
            ];
            new_map(tx, &["actions"], "a-9", &fields, skip);
        })
    };
    let extension = |skip: &str| {
        forged(&open_nc, 4, |tx| {
            let fields = [
                ("of", text("response")),
                ("due", text("2026-01-31")),
                ("justification", text("Officer on training")),
                ("by", text(demo.nodal.user.as_str())),
                ("at", text(&now)),
            ];
            appended(tx, &["extensions"], &fields, skip);
        })
    };
    let event = |skip: &str| {
        forged(&audit, 1, |tx| {
            let e = appended(
                tx,
                &["events"],
                &event("start", "planned", "k.iyer", &now),
                skip,
            );
            tx.put_object(&e, "heads", ObjType::List).expect("put");
        })
    };
    let evidence = |skip: &str| {
        forged(&audit, 2, |tx| {
            let f = new_map(tx, &["findings"], "f-09", &finding("s.khan", &now), "");
            let list = tx.put_object(&f, "evidence", ObjType::List).expect("put");
            let e = tx.insert_object(&list, 0, ObjType::Map).expect("insert");
            let fields = [
                ("sha256", text(&"ab".repeat(32))),
                ("name", text("register.jpg")),
                ("mime", text("image/jpeg")),
                ("size", V::Count(48_213)),
            ];
            put_fields(tx, &e, &fields, skip);
        })
    };

    type Make<'a> = &'a dyn Fn(&str) -> Change;
    let cases: [(
        &str,
        Make<'_>,
        &Automerge,
        sync_core::ids::DocumentId,
        &Author,
        &str,
    ); 4] = [
        (
            "actions/a-9",
            &action,
            &open_nc,
            demo.nc_id,
            &demo.owner,
            "owner",
        ),
        (
            "extensions/",
            &extension,
            &open_nc,
            demo.nc_id,
            &demo.nodal,
            "justification",
        ),
        ("events/", &event, &audit, demo.audit_id, &demo.lead, "from"),
        (
            "findings/f-09/evidence",
            &evidence,
            &audit,
            demo.audit_id,
            &demo.member,
            "mime",
        ),
    ];
    for (path, make, stored, id, who, needed) in cases {
        validate_batch(id, stored, vec![make("")], who, demo.today)
            .unwrap_or_else(|e| panic!("{path} whole: {e}"));
        let err = validate_batch(id, stored, vec![make(needed)], who, demo.today)
            .expect_err("a field is missing");
        assert_eq!(err.rule, "schema", "{path}: {err}");
        assert!(
            err.message.contains(path) && err.message.contains(&format!("no '{needed}'")),
            "{path}: {err}"
        );
    }
}

#[test]
fn a_field_written_twice_in_the_change_that_makes_its_entry_counts_once() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    let change = forged(&stored, 2, |tx| {
        let fields = finding("s.khan", &demo.now().to_string());
        let f = new_map(tx, &["findings"], "f-09", &fields, "text");
        tx.put(&f, "text", "first wording").expect("put");
        tx.put(&f, "text", "second wording").expect("put");
    });
    let accepted = validate_batch(
        demo.audit_id,
        &stored,
        vec![change],
        &demo.member,
        demo.today,
    )
    .expect("a whole finding");
    let view = AuditView::read(&accepted.doc.expect("applied")).expect("reads");
    assert!(
        view.content
            .findings
            .values()
            .any(|f| f.text == "second wording")
    );
}

#[test]
fn lists_hold_items_of_their_own_form_and_lose_them_by_deletion() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    let in_header = |doc: &Automerge, list: &str, f: &dyn Fn(&mut Transaction<'_>, &ObjId)| {
        forged(doc, 1, |tx| {
            let obj = obj_at(tx, &["header", list]);
            f(tx, &obj);
        })
    };
    // A team names users by their login; a name that is no login is refused.
    let bad_member = in_header(&stored, "team", &|tx, team| {
        let at = tx.length(team);
        tx.insert(team, at, "Not A Login!").expect("insert");
    });
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![bad_member],
        &demo.lead,
        demo.today,
    )
    .expect_err("not a login");
    assert_eq!(err.rule, "schema", "{err}");
    assert!(err.message.contains("an item of 'team'"), "{err}");

    // The lead adds a scope item, then removes it again.
    let added = in_header(&stored, "scope", &|tx, scope| {
        tx.insert(scope, 0, "Registration of new taxpayers")
            .expect("insert");
    });
    let with_item = validate_batch(demo.audit_id, &stored, vec![added], &demo.lead, demo.today)
        .expect("a scope item")
        .doc
        .expect("applied");
    let removed = in_header(&with_item, "scope", &|tx, scope| {
        tx.delete(scope, 0).expect("delete");
    });
    validate_batch(
        demo.audit_id,
        &with_item,
        vec![removed],
        &demo.lead,
        demo.today,
    )
    .expect("removing a scope item");
}

#[test]
fn objects_and_values_go_only_where_their_kind_belongs() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    // A new finding whose `text` is an object, or whose `evidence` is a value.
    let finding = |shape: &dyn Fn(&mut Transaction<'_>, &ObjId)| {
        forged(&stored, 2, |tx| {
            let fields = finding("s.khan", &demo.now().to_string());
            let f = new_map(tx, &["findings"], "f-09", &fields, "text");
            shape(tx, &f);
        })
    };
    let cases: [(&str, Change, &str); 3] = [
        (
            "text as a list",
            finding(&|tx, f| {
                tx.put_object(f, "text", ObjType::List).expect("put");
            }),
            "'text' cannot hold an object",
        ),
        (
            "text as a map",
            finding(&|tx, f| {
                tx.put_object(f, "text", ObjType::Map).expect("put");
            }),
            "'text' cannot hold an object",
        ),
        (
            "evidence as text",
            finding(&|tx, f| {
                tx.put(f, "text", "Register not kept").expect("put");
                tx.put(f, "evidence", "none").expect("put");
            }),
            "'evidence' must be an object, not a value",
        ),
    ];
    for (what, change, says) in cases {
        let err = validate_batch(
            demo.audit_id,
            &stored,
            vec![change],
            &demo.member,
            demo.today,
        )
        .expect_err(what);
        assert_eq!(err.rule, "schema", "{what}: {err}");
        assert!(err.message.contains(says), "{what}: {err}");
    }
}

#[test]
fn a_lock_naming_a_version_that_is_no_change_hash_is_refused_by_its_form() {
    let demo = Demo::new();
    let mut stored = demo.realistic_audit(2, 0);
    demo.must(
        demo.audit_id,
        &mut stored,
        &demo.lead,
        Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
    );
    let lock = forged(&stored, 1, |tx| {
        let fields = event(
            "submit_for_review",
            "in_progress",
            "k.iyer",
            &demo.now().to_string(),
        );
        let e = appended(tx, &["events"], &fields, "");
        let list = tx.put_object(&e, "heads", ObjType::List).expect("put");
        tx.insert(&list, 0, "yesterday's version").expect("insert");
    });
    let err = validate_batch(demo.audit_id, &stored, vec![lock], &demo.lead, demo.today)
        .expect_err("not a hash");
    assert_eq!(err.rule, "schema", "{err}");
    assert!(err.message.contains("an item of 'heads'"), "{err}");
}

#[test]
fn a_batch_may_hold_as_many_changes_as_the_limit_and_not_one_more() {
    use sync_core::validate::MAX_BATCH_CHANGES;
    let demo = Demo::new();
    let stored = demo.realistic_audit(1, 0);
    let mut device = stored.clone();
    device.set_actor(actor(1));
    for i in 0..=MAX_BATCH_CHANGES {
        let mut tx = device.transaction();
        tx.put(
            automerge::ROOT,
            "notes",
            format!("Opening meeting, draft {i}"),
        )
        .expect("put");
        tx.commit();
    }
    let mut batch = device.get_changes(&stored.get_heads());
    assert_eq!(batch.len(), MAX_BATCH_CHANGES + 1);
    let err = validate_batch(
        demo.audit_id,
        &stored,
        batch.clone(),
        &demo.lead,
        demo.today,
    )
    .expect_err("one over the limit");
    assert_eq!(err.rule, "batch.size", "{err}");
    batch.pop();
    let accepted = validate_batch(demo.audit_id, &stored, batch, &demo.lead, demo.today)
        .expect("exactly the limit");
    assert_eq!(accepted.applied.len(), MAX_BATCH_CHANGES);
}

#[test]
fn a_field_an_existing_entry_or_item_must_keep_cannot_be_removed() {
    let demo = Demo::new();
    let mut stored = demo.realistic_audit(2, 0);
    demo.must(
        demo.audit_id,
        &mut stored,
        &demo.member,
        Edit::SetResponse {
            key: "sd.item_1@P02".parse().expect("a key"),
            answer: Answer::YesNo(YesNo::Yes),
            note: "Register seen".into(),
            evidence: vec![sync_core::audit::Evidence {
                sha256: "ab".repeat(32).parse().expect("a hash"),
                name: "register.jpg".into(),
                mime: "image/jpeg".into(),
                size: 48_213,
                taken_at: None,
            }],
        },
    );
    let removes_by = forged(&stored, 2, |tx| {
        let r = obj_at(tx, &["responses", "sd.item_1@P02"]);
        tx.delete(&r, "by").expect("delete");
    });
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![removes_by],
        &demo.member,
        demo.today,
    )
    .expect_err("a response keeps its author");
    assert_eq!(err.rule, "schema", "{err}");
    assert!(err.message.contains("removes 'by'"), "{err}");

    let removes_mime = forged(&stored, 2, |tx| {
        let list = obj_at(tx, &["responses", "sd.item_1@P02", "evidence"]);
        let item = match tx.get(&list, 0).expect("get") {
            Some((_, id)) => id,
            None => panic!("no evidence"),
        };
        tx.delete(&item, "mime").expect("delete");
    });
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![removes_mime],
        &demo.member,
        demo.today,
    )
    .expect_err("evidence keeps its media type");
    assert_eq!(err.rule, "schema", "{err}");
    assert!(err.message.contains("removes 'mime'"), "{err}");

    // What an entry need not hold can go.
    let removes_note = forged(&stored, 2, |tx| {
        let r = obj_at(tx, &["responses", "sd.item_1@P02"]);
        tx.delete(&r, "note").expect("delete");
    });
    validate_batch(
        demo.audit_id,
        &stored,
        vec![removes_note],
        &demo.member,
        demo.today,
    )
    .expect("a note is optional");
}

#[test]
fn an_answer_must_suit_its_type_whichever_of_the_two_the_batch_wrote() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    let now = demo.now().to_string();
    let new_response = |value: &str| {
        forged(&stored, 2, |tx| {
            let fields = [
                ("type", text("yn")),
                ("value", text(value)),
                ("by", text("s.khan")),
                ("at", text(&now)),
            ];
            new_map(tx, &["responses"], "sd.item_1@P02", &fields, "");
        })
    };
    validate_batch(
        demo.audit_id,
        &stored,
        vec![new_response("no")],
        &demo.member,
        demo.today,
    )
    .expect("a yes-no answer");
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![new_response("partly")],
        &demo.member,
        demo.today,
    )
    .expect_err("'partly' is no yes-no answer");
    assert_eq!(err.rule, "schema", "{err}");
    assert!(err.message.contains("sd.item_1@P02"), "{err}");

    // Only the value of an existing conform/partly/not answer: its stored type judges it.
    let value_only = |value: &str| {
        forged(&stored, 2, |tx| {
            let r = obj_at(tx, &["responses", "sd.item_0@P03"]);
            tx.put(&r, "value", value).expect("put");
        })
    };
    validate_batch(
        demo.audit_id,
        &stored,
        vec![value_only("partly")],
        &demo.member,
        demo.today,
    )
    .expect("another conformity answer");
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![value_only("yes")],
        &demo.member,
        demo.today,
    )
    .expect_err("'yes' does not answer conform/partly/not");
    assert_eq!(err.rule, "schema", "{err}");
}

#[test]
fn entries_are_maps_under_ids_and_history_lists_only_grow() {
    let demo = Demo::new();
    let mut audit = demo.realistic_audit(2, 0);
    demo.must(
        demo.audit_id,
        &mut audit,
        &demo.lead,
        Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
    );
    // A finding under a good id, but as text rather than a map.
    let flat = forged(&audit, 2, |tx| {
        let findings = obj_at(tx, &["findings"]);
        tx.put(&findings, "f-09", "Register not kept").expect("put");
    });
    let err = validate_batch(demo.audit_id, &audit, vec![flat], &demo.member, demo.today)
        .expect_err("an entry is a map");
    assert_eq!(err.rule, "schema", "{err}");
    assert!(err.message.contains("'f-09' is not a valid entry"), "{err}");

    // An existing event replaced in place by a new one.
    let replaced = forged(&audit, 1, |tx| {
        let events = obj_at(tx, &["events"]);
        let e = tx.put_object(&events, 0, ObjType::Map).expect("put");
        tx.put(&e, "move", "start").expect("put");
    });
    let err = validate_batch(
        demo.audit_id,
        &audit,
        vec![replaced],
        &demo.lead,
        demo.today,
    )
    .expect_err("history is appended to");
    assert_eq!(err.rule, "events.append_only", "{err}");

    // An NC's extensions: an existing one is never changed, the list never removed.
    let mut nc = demo.nc_in(NcState::Open);
    demo.must(
        demo.nc_id,
        &mut nc,
        &demo.nodal,
        Edit::Extend {
            of: DueKind::Response,
            due: "2026-01-31".parse().expect("date"),
            justification: "Officer on training".into(),
        },
    );
    let redated = forged(&nc, 4, |tx| {
        let list = obj_at(tx, &["extensions"]);
        let e = match tx.get(&list, 0).expect("get") {
            Some((_, id)) => id,
            None => panic!("no extension"),
        };
        tx.put(&e, "due", "2026-03-31").expect("put");
    });
    let err = validate_batch(demo.nc_id, &nc, vec![redated], &demo.nodal, demo.today)
        .expect_err("an extension is never changed");
    assert_eq!(err.rule, "events.append_only", "{err}");
    let removed = forged(&nc, 4, |tx| {
        tx.delete(automerge::ROOT, "extensions").expect("delete");
    });
    let err = validate_batch(demo.nc_id, &nc, vec![removed], &demo.nodal, demo.today)
        .expect_err("extensions are never removed");
    assert_eq!(err.rule, "nc.extension.append_only", "{err}");
}

#[test]
fn an_entry_or_a_move_is_recorded_as_made_by_its_sender() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    let now = demo.now().to_string();
    let finding_by = |by: &str| {
        forged(&stored, 2, |tx| {
            new_map(tx, &["findings"], "f-09", &finding(by, &now), "");
        })
    };
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![finding_by("k.iyer")],
        &demo.member,
        demo.today,
    )
    .expect_err("the lead did not write it");
    assert_eq!(err.rule, "entry.by", "{err}");
    let start_by = |by: &str| {
        forged(&stored, 1, |tx| {
            let e = appended(tx, &["events"], &event("start", "planned", by, &now), "");
            tx.put_object(&e, "heads", ObjType::List).expect("put");
        })
    };
    validate_batch(
        demo.audit_id,
        &stored,
        vec![start_by("k.iyer")],
        &demo.lead,
        demo.today,
    )
    .expect("the lead starts the audit");
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![start_by("s.khan")],
        &demo.lead,
        demo.today,
    )
    .expect_err("the member did not start it");
    assert_eq!(err.rule, "move.by", "{err}");
}

#[test]
fn a_response_is_submitted_only_with_a_whole_action_plan() {
    let demo = Demo::new();
    let planned = demo.nc_in(NcState::Open);
    let submit = |doc: &Automerge| {
        forged(doc, 3, |tx| {
            let now = demo.now().to_string();
            let fields = event("submit_response", "open", demo.owner.user.as_str(), &now);
            appended(tx, &["events"], &fields, "");
        })
    };
    // A plan is actions with owners and targets, none of them done yet.
    let with_action = |owner: &str| {
        let mut doc = planned.clone();
        demo.must(
            demo.nc_id,
            &mut doc,
            &demo.owner,
            Edit::PutAction {
                id: "a-9".parse().expect("an id"),
                action: sync_core::nc::Action {
                    text: "Train the dealing staff".into(),
                    owner: owner.into(),
                    target: demo.today,
                    done_on: None,
                },
            },
        );
        doc
    };
    let owned = with_action("Supdt Div-II");
    validate_batch(
        demo.nc_id,
        &owned,
        vec![submit(&owned)],
        &demo.owner,
        demo.today,
    )
    .expect("a plan of actions not yet done");
    let unowned = with_action("  ");
    let err = validate_batch(
        demo.nc_id,
        &unowned,
        vec![submit(&unowned)],
        &demo.owner,
        demo.today,
    )
    .expect_err("an action without an owner");
    assert_eq!(err.rule, "move.requirement", "{err}");
}

#[test]
fn the_root_is_written_only_as_a_map() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(1, 0);
    // The lead's notes, rewritten to put them at a list position of the root.
    let change = forged(&stored, 1, |tx| {
        tx.put(automerge::ROOT, "notes", "Opening meeting held")
            .expect("put");
    });
    let mut expanded = change.decode();
    for op in &mut expanded.operations {
        op.key = automerge::legacy::Key::Seq(automerge::legacy::ElementId::Head);
        op.insert = false;
    }
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![Change::from(expanded)],
        &demo.lead,
        demo.today,
    )
    .expect_err("the root is a map");
    assert_eq!(err.rule, "schema.root", "{err}");
}
