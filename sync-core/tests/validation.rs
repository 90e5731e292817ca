//! The validator refuses what a role may not write, whatever the device
//! claims, naming the rule; permitted edits in the same situations are
//! accepted. (It reads the stored document through a shared reference, so
//! that a refusal leaves it as it was is the compiler's guarantee, not a test's.)

use automerge::{Automerge, Change, ReadDoc};
use sync_core::audit::{Answer, AuditView, YesNo};
use sync_core::edit::Edit;
use sync_core::nc::{DueKind, Nc};
use sync_core::permissions::{Author, Field, Target, may_edit};
use sync_core::testing::fixtures::{Demo, actor};
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

/// Makes an edit on a device copy *without* local checks, as a tampered or
/// out-of-date client would, and returns the raw change for the server.
fn forged(
    doc: &Automerge,
    as_actor: u8,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Change {
    let mut copy = doc.clone();
    copy.set_actor(actor(as_actor));
    let mut tx = copy.transaction();
    f(&mut tx);
    tx.commit();
    copy.get_last_local_change().expect("a change was made")
}

fn device_edit(
    demo: &Demo,
    stored: &Automerge,
    id: sync_core::ids::DocumentId,
    author: &Author,
    edit: Edit,
) -> Change {
    let mut copy = stored.clone();
    copy.set_actor(author.actors.iter().next().expect("a device").clone());
    sync_core::edit::apply_edit(id, &mut copy, &edit, author, demo.now()).expect("permitted")
}

#[test]
fn an_auditor_cannot_write_an_ncs_root_cause_but_its_owner_can() {
    let demo = Demo::new();
    let stored = demo.nc_in(NcState::Open);
    let change = forged(&stored, 2, |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "root_cause", "Auditor's guess")
            .expect("put");
    });
    let err = validate_batch(demo.nc_id, &stored, vec![change], &demo.member, demo.today)
        .expect_err("auditor wrote owner field");
    assert_eq!(err.rule, "nc.owner_fields");
    assert!(
        err.message.contains("s.khan") && err.message.contains("process owner"),
        "{err}"
    );
    assert_ne!(
        Nc::read(&stored).expect("readable").root_cause,
        "Auditor's guess"
    );

    let change = device_edit(
        &demo,
        &stored,
        demo.nc_id,
        &demo.owner,
        Edit::SetRootCause("Desk had no ageing report".into()),
    );
    let ok = validate_batch(demo.nc_id, &stored, vec![change], &demo.owner, demo.today)
        .expect("owner may");
    assert_eq!(
        Nc::read(ok.doc.as_ref().expect("applied"))
            .expect("readable")
            .root_cause,
        "Desk had no ageing report"
    );
    assert_eq!(ok.applied.len(), 1);
}

#[test]
fn a_process_owner_cannot_close_their_own_nc_but_an_independent_auditor_can() {
    let demo = Demo::new();
    let stored = demo.nc_in(NcState::Implemented);
    let mut copy = stored.clone();
    let err = demo
        .edit(
            demo.nc_id,
            &mut copy,
            &demo.owner,
            Edit::Move {
                mv: "verify_effective".into(),
                note: "done".into(),
            },
        )
        .expect_err("owner closing own NC");
    assert_eq!(err.rule, "move.who");

    // A tampered client skips the local check: the server refuses the same.
    let change = forged(&stored, 3, |tx| {
        use automerge::transaction::Transactable;
        let list = match tx.get(automerge::ROOT, "events").expect("get") {
            Some((_, id)) => id,
            None => panic!("no events"),
        };
        let at = tx.length(&list);
        let e = tx
            .insert_object(&list, at, automerge::ObjType::Map)
            .expect("insert");
        tx.put(&e, "move", "verify_effective").expect("put");
        tx.put(&e, "from", "implemented").expect("put");
        tx.put(&e, "by", "ac.div2").expect("put");
        tx.put(&e, "at", "2026-01-15T10:00:00Z").expect("put");
        tx.put(&e, "note", "closing my own").expect("put");
    });
    let err = validate_batch(demo.nc_id, &stored, vec![change], &demo.owner, demo.today)
        .expect_err("refused");
    assert_eq!(err.rule, "move.who");

    // An auditor who also owns the process is not independent either.
    let mut both = demo.member.clone();
    both.processes
        .insert((demo.unit.clone(), "P03".parse().expect("code")));
    both.grants.push(sync_core::permissions::RoleGrant {
        unit: demo.unit.clone(),
        role: sync_core::permissions::Role::ProcessOwner,
        from: "2025-04-01".parse().expect("date"),
        until: None,
    });
    let mut copy = stored.clone();
    let err = demo
        .edit(
            demo.nc_id,
            &mut copy,
            &both,
            Edit::Move {
                mv: "verify_effective".into(),
                note: "done".into(),
            },
        )
        .expect_err("owner-auditor");
    assert_eq!(err.rule, "move.who");

    let change = device_edit(
        &demo,
        &stored,
        demo.nc_id,
        &demo.member,
        Edit::Move {
            mv: "verify_effective".into(),
            note: "Verified".into(),
        },
    );
    let ok = validate_batch(demo.nc_id, &stored, vec![change], &demo.member, demo.today)
        .expect("independent auditor");
    let view = Nc::read(ok.doc.as_ref().expect("applied"))
        .expect("readable")
        .view(&Default::default(), demo.today);
    assert_eq!(view.state, NcState::Closed);
}

#[test]
fn a_user_not_on_the_audit_team_cannot_edit_the_audit() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(6, 2);
    // The outsider's own device makes a well-formed answer, bypassing local checks.
    let change = forged(&stored, 5, |tx| {
        use automerge::transaction::Transactable;
        let responses = match tx.get(automerge::ROOT, "responses").expect("get") {
            Some((_, id)) => id,
            None => panic!("no responses"),
        };
        let r = tx
            .put_object(&responses, "chr.review", automerge::ObjType::Map)
            .expect("put");
        tx.put(&r, "type", "yn").expect("put");
        tx.put(&r, "value", "no").expect("put");
        tx.put(&r, "by", "p.sharma").expect("put");
        tx.put(&r, "at", "2026-01-15T10:00:00Z").expect("put");
    });
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![change],
        &demo.outsider,
        demo.today,
    )
    .expect_err("outsider");
    assert_eq!(err.rule, "audit.content");
    assert!(err.message.contains("p.sharma"), "{err}");
    assert!(
        may_edit(
            &stored,
            &demo.outsider,
            Target::Field(Field::AuditContent),
            demo.today
        )
        .is_err()
    );

    let edit = Edit::SetResponse {
        key: "chr.review".parse().expect("key"),
        answer: Answer::YesNo(YesNo::No),
        note: "No review recorded since 2023".into(),
        evidence: Vec::new(),
    };
    assert!(
        may_edit(
            &stored,
            &demo.member,
            Target::Field(Field::AuditContent),
            demo.today
        )
        .is_ok()
    );
    let change = device_edit(&demo, &stored, demo.audit_id, &demo.member, edit);
    let ok = validate_batch(
        demo.audit_id,
        &stored,
        vec![change],
        &demo.member,
        demo.today,
    )
    .expect("team member");
    let view = AuditView::read(ok.doc.as_ref().expect("applied")).expect("readable");
    assert!(
        view.content
            .responses
            .contains_key(&"chr.review".parse().expect("key"))
    );
}

#[test]
fn a_change_carrying_someone_elses_actor_id_is_refused() {
    let demo = Demo::new();
    let stored = demo.nc_in(NcState::Open);
    // The owner's edit, made under the lead auditor's actor id (device 1).
    let change = forged(&stored, 1, |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "correction", "Cleared")
            .expect("put");
    });
    let err = validate_batch(
        demo.nc_id,
        &stored,
        vec![change.clone()],
        &demo.owner,
        demo.today,
    )
    .expect_err("foreign actor");
    assert_eq!(err.rule, "actor.not_registered");
    // The same edit under the owner's own actor is accepted.
    let own = forged(&stored, 3, |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "correction", "Cleared")
            .expect("put");
    });
    assert!(validate_batch(demo.nc_id, &stored, vec![own], &demo.owner, demo.today).is_ok());
    // A change the server already stores may be relayed by anyone.
    let mut with = stored.clone();
    with.apply_changes(vec![change.clone()]).expect("apply");
    let relayed =
        validate_batch(demo.nc_id, &with, vec![change], &demo.nodal, demo.today).expect("relay");
    assert_eq!(relayed.already_stored, 1);
    assert!(relayed.applied.is_empty());
}

#[test]
fn link_fields_and_history_cannot_be_rewritten() {
    let demo = Demo::new();
    let stored = demo.nc_in(NcState::Open);
    // Moving the NC onto another process, even by a team member.
    let change = forged(&stored, 2, |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "process", "P04").expect("put");
    });
    let err = validate_batch(demo.nc_id, &stored, vec![change], &demo.member, demo.today)
        .expect_err("link");
    assert_eq!(err.rule, "doc.write_once");
    // Deleting a lifecycle event.
    let change = forged(&stored, 2, |tx| {
        use automerge::transaction::Transactable;
        let list = match tx.get(automerge::ROOT, "events").expect("get") {
            Some((_, id)) => id,
            None => panic!("no events"),
        };
        tx.delete(&list, 0).expect("delete");
    });
    let err = validate_batch(demo.nc_id, &stored, vec![change], &demo.member, demo.today)
        .expect_err("history");
    assert_eq!(err.rule, "events.append_only");
}

#[test]
fn extensions_are_the_nodal_officers_and_move_the_due_date() {
    let demo = Demo::new();
    let mut doc = demo.nc_in(NcState::Open);
    let extend = Edit::Extend {
        of: DueKind::Response,
        due: "2026-01-31".parse().expect("date"),
        justification: "Officer on training".into(),
    };
    let err = demo
        .edit(demo.nc_id, &mut doc, &demo.owner, extend.clone())
        .expect_err("owner cannot extend");
    assert_eq!(err.rule, "nc.extension");
    demo.must(demo.nc_id, &mut doc, &demo.nodal, extend);
    let nc = Nc::read(&doc).expect("readable");
    let view = nc.view(&Default::default(), "2026-02-20".parse().expect("date"));
    assert_eq!(
        view.due.map(|d| d.to_string()).as_deref(),
        Some("2026-01-31")
    );
    assert_eq!(view.escalation, Some(sync_core::workflow::Level::L2));
}

#[test]
fn malformed_values_are_refused_naming_the_path() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(3, 1);
    let change = forged(&stored, 2, |tx| {
        use automerge::transaction::Transactable;
        let findings = match tx.get(automerge::ROOT, "findings").expect("get") {
            Some((_, id)) => id,
            None => panic!("no findings"),
        };
        let f = tx
            .put_object(&findings, "f-09", automerge::ObjType::Map)
            .expect("put");
        tx.put(&f, "class", "catastrophic").expect("put");
    });
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![change],
        &demo.member,
        demo.today,
    )
    .expect_err("schema");
    assert_eq!(err.rule, "schema");
    assert!(err.message.contains("findings/f-09/class"), "{err}");
}

#[test]
fn the_management_review_is_the_nodal_officers_to_write() {
    let demo = Demo::new();
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
    let nodal_edits = [
        Edit::HoldReview("2025-08-20".parse().expect("date")),
        Edit::AddDecision("Train the facilitation staff.".into()),
        Edit::PutAction {
            id: "a-1".parse().expect("id"),
            action: sync_core::nc::Action {
                text: "Train 2 staff".into(),
                owner: "AC Div-II".into(),
                target: "2025-09-30".parse().expect("date"),
                done_on: None,
            },
        },
    ];
    for edit in nodal_edits.iter().cloned() {
        let change = device_edit(&demo, &review, demo.review_id, &demo.nodal, edit);
        let accepted = validate_batch(
            demo.review_id,
            &review,
            vec![change],
            &demo.nodal,
            demo.today,
        );
        review = accepted
            .expect("the nodal officer may")
            .doc
            .expect("applied");
    }
    let read = sync_core::review::Review::read(&review).expect("reads");
    assert_eq!(read.held_on, Some("2025-08-20".parse().expect("date")));
    assert_eq!(read.decisions, ["Train the facilitation staff."]);
    assert_eq!(read.actions.len(), 1);
    // An auditor's device, tampered, writing a decision: refused, nothing changed.
    let change = forged(&review, 1, |tx| {
        use automerge::transaction::Transactable;
        if let Ok(Some((_, list))) = tx.get(automerge::ROOT, "decisions") {
            let _ = tx.insert(&list, 1, "Close every NC.");
        }
    });
    let refused = validate_batch(
        demo.review_id,
        &review,
        vec![change],
        &demo.lead,
        demo.today,
    );
    assert_eq!(refused.err().map(|r| r.rule), Some("review.content"));
    // Removing the title a review is read by: refused even for its nodal officer.
    let change = forged(&review, 4, |tx| {
        use automerge::transaction::Transactable;
        let _ = tx.delete(automerge::ROOT, "title");
    });
    let refused = validate_batch(
        demo.review_id,
        &review,
        vec![change],
        &demo.nodal,
        demo.today,
    );
    assert_eq!(refused.err().map(|r| r.rule), Some("schema"));
}

#[test]
fn a_new_entry_without_a_field_its_kind_requires_is_refused_naming_it() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(3, 1);
    let finding = |with_by: bool| {
        forged(&stored, 2, |tx| {
            use automerge::transaction::Transactable;
            let findings = match tx.get(automerge::ROOT, "findings").expect("get") {
                Some((_, id)) => id,
                None => panic!("no findings"),
            };
            let f = tx
                .put_object(&findings, "f-09", automerge::ObjType::Map)
                .expect("put");
            tx.put(&f, "class", "minor").expect("put");
            tx.put(&f, "clause", "3.2.4").expect("put");
            tx.put(&f, "text", "Register of documents not kept up to date")
                .expect("put");
            if with_by {
                tx.put(&f, "by", "s.khan").expect("put");
            }
            tx.put(&f, "at", demo.now().to_string()).expect("put");
        })
    };
    let err = validate_batch(
        demo.audit_id,
        &stored,
        vec![finding(false)],
        &demo.member,
        demo.today,
    )
    .expect_err("no 'by'");
    assert_eq!(err.rule, "schema");
    assert!(err.message.contains("findings/f-09 has no 'by'"), "{err}");

    let accepted = validate_batch(
        demo.audit_id,
        &stored,
        vec![finding(true)],
        &demo.member,
        demo.today,
    )
    .expect("a whole finding");
    let doc = accepted.doc.expect("applied");
    let view = AuditView::read(&doc).expect("reads");
    assert_eq!(view.content.findings.len(), 2);
    assert!(
        accepted
            .touched
            .entries
            .contains(&("findings".into(), "f-09".into()))
    );
}

#[test]
fn a_lock_is_accepted_only_when_the_server_holds_the_version_it_names() {
    let demo = Demo::new();
    let mut stored = demo.realistic_audit(3, 1);
    demo.must(
        demo.audit_id,
        &mut stored,
        &demo.lead,
        Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
    );
    let held: Vec<String> = stored.get_heads().iter().map(ToString::to_string).collect();
    let unknown = vec!["ab".repeat(32)];
    let lock = |heads: &[String]| {
        forged(&stored, 1, |tx| {
            use automerge::transaction::Transactable;
            let events = match tx.get(automerge::ROOT, "events").expect("get") {
                Some((_, id)) => id,
                None => panic!("no events"),
            };
            let at = tx.length(&events);
            let e = tx
                .insert_object(&events, at, automerge::ObjType::Map)
                .expect("insert");
            tx.put(&e, "move", "submit_for_review").expect("put");
            tx.put(&e, "from", "in_progress").expect("put");
            tx.put(&e, "by", "k.iyer").expect("put");
            tx.put(&e, "at", demo.now().to_string()).expect("put");
            tx.put(&e, "note", "").expect("put");
            let list = tx
                .put_object(&e, "heads", automerge::ObjType::List)
                .expect("put");
            for (i, h) in heads.iter().enumerate() {
                tx.insert(&list, i, h.as_str()).expect("insert");
            }
        })
    };
    for (heads, why) in [
        (&unknown, "a version it lacks"),
        (&Vec::new(), "no version"),
    ] {
        let err = validate_batch(
            demo.audit_id,
            &stored,
            vec![lock(heads)],
            &demo.lead,
            demo.today,
        )
        .expect_err(why);
        assert_eq!(err.rule, "move.requirement", "{why}: {err}");
    }
    let accepted = validate_batch(
        demo.audit_id,
        &stored,
        vec![lock(&held)],
        &demo.lead,
        demo.today,
    )
    .expect("a lock at the stored version");
    let view = AuditView::read(&accepted.doc.expect("applied")).expect("reads");
    assert!(view.state.is_locked());
}

/// The lead's answer as a device sends it, rewritten to write into an object
/// no document has (counter 100 of the lead's actor). The engine_frame
/// fuzzer made such a change out of a day's answers sent as one bundle by
/// changing two bytes (tests/fixtures/fuzz/engine_frame/write-into-missing-object).
fn into_a_missing_object(demo: &Demo, stored: &Automerge) -> Change {
    let change = device_edit(demo, stored, demo.audit_id, &demo.lead, demo.answer(9, 1));
    let mut expanded = change.decode();
    let missing = automerge::legacy::OpId::new(100, &actor(1));
    for op in &mut expanded.operations {
        if op.obj != automerge::legacy::ObjectId::Root {
            op.obj = automerge::legacy::ObjectId::Id(missing.clone());
        }
    }
    Change::from(expanded)
}

#[test]
fn a_write_into_an_object_the_document_lacks_is_refused_before_automerge_applies_it() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(4, 2);
    let heads = stored.get_heads();
    // Automerge 0.12 panics applying this change ("Missing from Index").
    let change = into_a_missing_object(&demo, &stored);
    let err = validate_batch(demo.audit_id, &stored, vec![change], &demo.lead, demo.today)
        .expect_err("no such object");
    assert_eq!(err.rule, "change.unknown_object");
    assert_eq!(stored.get_heads(), heads);
}

#[test]
fn a_write_into_an_event_the_same_change_deletes_gets_a_verdict() {
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let stored = demo.nc_in(NcState::Open);
    let (_, events) = stored
        .get(automerge::ROOT, "events")
        .ok()
        .flatten()
        .expect("an NC has events");
    let (_, first) = stored
        .get(&events, 0)
        .ok()
        .flatten()
        .expect("an open NC was raised");
    // Found by the validate fuzzer (tests/fixtures/fuzz/validate/
    // write-into-deleted-event): the event's place was asked of the document
    // with the batch applied, where its list item is gone, and Automerge's
    // debug build asserted.
    let change = forged(&stored, 3, |tx| {
        tx.put(&first, "note", "rewritten").expect("put");
        tx.delete(&events, 0).expect("delete");
    });
    let err = validate_batch(demo.nc_id, &stored, vec![change], &demo.owner, demo.today)
        .expect_err("history cannot be rewritten");
    assert!(!err.rule.is_empty(), "{err}");
}

/// The lead writes `text` as the audit's notes and as a new item of its scope.
fn lead_writes_text(stored: &Automerge, text: &str) -> [Change; 2] {
    use automerge::transaction::Transactable;
    let notes = forged(stored, 1, |tx| {
        tx.put(automerge::ROOT, "notes", text).expect("put");
    });
    let scope = forged(stored, 1, |tx| {
        let header = match tx.get(automerge::ROOT, "header").expect("get") {
            Some((_, id)) => id,
            None => panic!("no header"),
        };
        let scope = match tx.get(&header, "scope").expect("get") {
            Some((_, id)) => id,
            None => panic!("no scope"),
        };
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
fn put_fields(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: &automerge::ObjId,
    fields: &[(&str, V)],
    skip: &str,
) {
    use automerge::transaction::Transactable;
    for (k, v) in fields.iter().filter(|(k, _)| *k != skip) {
        match v {
            V::Text(t) => tx.put(obj, *k, t.as_str()).expect("put"),
            V::Count(n) => tx.put(obj, *k, *n).expect("put"),
        }
    }
}

fn root_obj(tx: &automerge::transaction::Transaction<'_>, key: &str) -> automerge::ObjId {
    match tx.get(automerge::ROOT, key).expect("get") {
        Some((_, id)) => id,
        None => panic!("no {key}"),
    }
}

fn text(s: &str) -> V {
    V::Text(s.to_string())
}

#[test]
fn an_action_an_extension_an_event_or_evidence_without_a_field_it_needs_is_refused_naming_it() {
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let now = demo.now().to_string();
    let open_nc = demo.nc_in(NcState::Open);
    let audit = demo.realistic_audit(2, 0);

    let action = |skip: &str| {
        forged(&open_nc, 3, |tx| {
            let actions = root_obj(tx, "actions");
            let a = tx
                .put_object(&actions, "a-9", automerge::ObjType::Map)
                .expect("put");
            let fields = [
                ("text", text("Register updated daily")),
                ("owner", text("Supdt Div-II")),
                ("target", text("2026-02-15")),
            ];
            put_fields(tx, &a, &fields, skip);
        })
    };
    let extension = |skip: &str| {
        forged(&open_nc, 4, |tx| {
            let list = root_obj(tx, "extensions");
            let at = tx.length(&list);
            let e = tx
                .insert_object(&list, at, automerge::ObjType::Map)
                .expect("insert");
            let fields = [
                ("of", text("response")),
                ("due", text("2026-01-31")),
                ("justification", text("Officer on training")),
                ("by", text(demo.nodal.user.as_str())),
                ("at", text(&now)),
            ];
            put_fields(tx, &e, &fields, skip);
        })
    };
    let event = |skip: &str| {
        forged(&audit, 1, |tx| {
            let list = root_obj(tx, "events");
            let at = tx.length(&list);
            let e = tx
                .insert_object(&list, at, automerge::ObjType::Map)
                .expect("insert");
            let fields = [
                ("move", text("start")),
                ("from", text("planned")),
                ("by", text("k.iyer")),
                ("at", text(&now)),
                ("note", text("")),
            ];
            put_fields(tx, &e, &fields, skip);
            tx.put_object(&e, "heads", automerge::ObjType::List)
                .expect("put");
        })
    };
    let evidence = |skip: &str| {
        forged(&audit, 2, |tx| {
            let findings = root_obj(tx, "findings");
            let f = tx
                .put_object(&findings, "f-09", automerge::ObjType::Map)
                .expect("put");
            let fields = [
                ("class", text("minor")),
                ("clause", text("3.2.4")),
                ("text", text("Register of documents not kept up to date")),
                ("by", text("s.khan")),
                ("at", text(&now)),
            ];
            put_fields(tx, &f, &fields, "");
            let list = tx
                .put_object(&f, "evidence", automerge::ObjType::List)
                .expect("put");
            let e = tx
                .insert_object(&list, 0, automerge::ObjType::Map)
                .expect("insert");
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
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    let change = forged(&stored, 2, |tx| {
        let findings = root_obj(tx, "findings");
        let f = tx
            .put_object(&findings, "f-09", automerge::ObjType::Map)
            .expect("put");
        tx.put(&f, "text", "first wording").expect("put");
        let fields = [
            ("class", text("minor")),
            ("clause", text("3.2.4")),
            ("text", text("second wording")),
            ("by", text("s.khan")),
            ("at", text(&demo.now().to_string())),
        ];
        put_fields(tx, &f, &fields, "");
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
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    let in_header =
        |doc: &Automerge,
         list: &str,
         f: &dyn Fn(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId)| {
            forged(doc, 1, |tx| {
                let header = root_obj(tx, "header");
                let obj = match tx.get(&header, list).expect("get") {
                    Some((_, id)) => id,
                    None => panic!("no {list}"),
                };
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
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    // A new finding whose `text` is an object, or whose `evidence` is a value.
    let finding =
        |shape: &dyn Fn(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId)| {
            forged(&stored, 2, |tx| {
                let findings = root_obj(tx, "findings");
                let f = tx
                    .put_object(&findings, "f-09", automerge::ObjType::Map)
                    .expect("put");
                let fields = [
                    ("class", text("minor")),
                    ("clause", text("3.2.4")),
                    ("by", text("s.khan")),
                    ("at", text(&demo.now().to_string())),
                ];
                put_fields(tx, &f, &fields, "");
                shape(tx, &f);
            })
        };
    let cases: [(&str, Change, &str); 3] = [
        (
            "text as a list",
            finding(&|tx, f| {
                tx.put_object(f, "text", automerge::ObjType::List)
                    .expect("put");
            }),
            "'text' cannot hold an object",
        ),
        (
            "text as a map",
            finding(&|tx, f| {
                tx.put_object(f, "text", automerge::ObjType::Map)
                    .expect("put");
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
    use automerge::transaction::Transactable;
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
        let events = root_obj(tx, "events");
        let at = tx.length(&events);
        let e = tx
            .insert_object(&events, at, automerge::ObjType::Map)
            .expect("insert");
        tx.put(&e, "move", "submit_for_review").expect("put");
        tx.put(&e, "from", "in_progress").expect("put");
        tx.put(&e, "by", "k.iyer").expect("put");
        tx.put(&e, "at", demo.now().to_string()).expect("put");
        tx.put(&e, "note", "").expect("put");
        let list = tx
            .put_object(&e, "heads", automerge::ObjType::List)
            .expect("put");
        tx.insert(&list, 0, "yesterday's version").expect("insert");
    });
    let err = validate_batch(demo.audit_id, &stored, vec![lock], &demo.lead, demo.today)
        .expect_err("not a hash");
    assert_eq!(err.rule, "schema", "{err}");
    assert!(err.message.contains("an item of 'heads'"), "{err}");
}

#[test]
fn a_batch_may_hold_as_many_changes_as_the_limit_and_not_one_more() {
    use automerge::transaction::Transactable;
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

/// The object under `path` (map keys from the root).
fn obj_at(tx: &automerge::transaction::Transaction<'_>, path: &[&str]) -> automerge::ObjId {
    let mut obj = automerge::ROOT;
    for key in path {
        obj = match tx.get(&obj, *key).expect("get") {
            Some((_, id)) => id,
            None => panic!("no {key} in {path:?}"),
        };
    }
    obj
}

#[test]
fn a_field_an_existing_entry_or_item_must_keep_cannot_be_removed() {
    use automerge::transaction::Transactable;
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
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    let now = demo.now().to_string();
    let new_response = |value: &str| {
        forged(&stored, 2, |tx| {
            let responses = obj_at(tx, &["responses"]);
            let r = tx
                .put_object(&responses, "sd.item_1@P02", automerge::ObjType::Map)
                .expect("put");
            let fields = [
                ("type", text("yn")),
                ("value", text(value)),
                ("by", text("s.khan")),
                ("at", text(&now)),
            ];
            put_fields(tx, &r, &fields, "");
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
    use automerge::transaction::Transactable;
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
        let e = tx
            .put_object(&events, 0, automerge::ObjType::Map)
            .expect("put");
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
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let stored = demo.realistic_audit(2, 0);
    let now = demo.now().to_string();
    let finding_by = |by: &str| {
        forged(&stored, 2, |tx| {
            let findings = obj_at(tx, &["findings"]);
            let f = tx
                .put_object(&findings, "f-09", automerge::ObjType::Map)
                .expect("put");
            let fields = [
                ("class", text("minor")),
                ("clause", text("3.2.4")),
                ("text", text("Register not kept")),
                ("by", text(by)),
                ("at", text(&now)),
            ];
            put_fields(tx, &f, &fields, "");
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
            let events = obj_at(tx, &["events"]);
            let at = tx.length(&events);
            let e = tx
                .insert_object(&events, at, automerge::ObjType::Map)
                .expect("insert");
            let fields = [
                ("move", text("start")),
                ("from", text("planned")),
                ("by", text(by)),
                ("at", text(&now)),
                ("note", text("")),
            ];
            put_fields(tx, &e, &fields, "");
            tx.put_object(&e, "heads", automerge::ObjType::List)
                .expect("put");
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
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let planned = demo.nc_in(NcState::Open);
    let submit = |doc: &Automerge| {
        forged(doc, 3, |tx| {
            let events = obj_at(tx, &["events"]);
            let at = tx.length(&events);
            let e = tx
                .insert_object(&events, at, automerge::ObjType::Map)
                .expect("insert");
            let fields = [
                ("move", text("submit_response")),
                ("from", text("open")),
                ("by", text(demo.owner.user.as_str())),
                ("at", text(&demo.now().to_string())),
                ("note", text("")),
            ];
            put_fields(tx, &e, &fields, "");
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
        use automerge::transaction::Transactable;
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
