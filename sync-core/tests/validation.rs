//! The validator refuses what a role may not write, whatever the device
//! claims, naming the rule; permitted edits in the same situations are
//! accepted. (It reads the stored document through a shared reference, so
//! that a refusal leaves it as it was is the compiler's guarantee, not a test's.)

use automerge::{Automerge, Change, ReadDoc};
use sync_core::audit::{Answer, AuditView, YesNo};
use sync_core::edit::Edit;
use sync_core::nc::{DueKind, Nc};
use sync_core::permissions::{Author, Field, Target, may_edit};
use sync_core::testing::fixtures::{Demo, actor, forged};
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

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
    // Days overdue and the level, as of each date (the extended date is
    // 31-01-2026; by hand from DESIGN §3: L1 from the due date, L2 after
    // 15 days, L3 after 30).
    use sync_core::workflow::Level::{L1, L2, L3};
    for (as_of, days, level) in [
        ("2026-01-30", None, None),
        ("2026-01-31", None, Some(L1)),
        ("2026-02-01", Some(1), Some(L1)),
        ("2026-02-15", Some(15), Some(L1)),
        ("2026-02-16", Some(16), Some(L2)),
        ("2026-03-02", Some(30), Some(L2)),
        ("2026-03-03", Some(31), Some(L3)),
    ] {
        let view = nc.view(&Default::default(), as_of.parse().expect("date"));
        assert_eq!(
            (view.days_overdue, view.escalation),
            (days, level),
            "as of {as_of}"
        );
    }
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
