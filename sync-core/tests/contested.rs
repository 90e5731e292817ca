//! Concurrent answers are shown, never hidden (DESIGN §3): when two auditors
//! answer one checklist item (or write one finding) differently offline,
//! every replica shows both values, each with its writer and time, as one
//! contest on that item, in the same order everywhere; the lead auditor
//! settles it with an ordinary write that supersedes them all, and the
//! contest is gone on every replica. Evidence merges, it never conflicts.

use automerge::Automerge;
use sync_core::audit::{Answer, AuditView, ContestedValue, Cpna, Evidence, LiveAudit};
use sync_core::edit::Edit;
use sync_core::ids::{ItemId, ResponseKey};
use sync_core::permissions::Author;
use sync_core::testing::fixtures::{Demo, actor};
use sync_core::validate::validate_batch;

fn key() -> ResponseKey {
    "sd.timeliness@P03".parse().expect("a key")
}

fn photo(n: u8) -> Evidence {
    Evidence {
        sha256: format!("{:064x}", n).parse().expect("a hash"),
        name: format!("register-{n}.jpg"),
        mime: "image/jpeg".into(),
        size: 1000 + u64::from(n),
        taken_at: None,
    }
}

fn answer(cpna: Cpna, note: &str, evidence: Vec<Evidence>) -> Edit {
    Edit::SetResponse {
        key: key(),
        answer: Answer::Cpna(cpna),
        note: note.into(),
        evidence,
    }
}

/// The demo audit on two tablets that went offline after it was made: the
/// lead answers "partly" with one photo, the member "conform" with another.
fn two_answers_offline(demo: &Demo) -> (Automerge, Automerge) {
    let mut lead = demo.audit();
    let mut member = lead.clone();
    demo.must(
        demo.audit_id,
        &mut lead,
        &demo.lead,
        answer(Cpna::Partly, "19 days for two of ten", vec![photo(1)]),
    );
    demo.must(
        demo.audit_id,
        &mut member,
        &demo.member,
        answer(Cpna::Conform, "all ten within 15 days", vec![photo(2)]),
    );
    (lead, member)
}

/// `a` after receiving everything `b` has.
fn synced(mut a: Automerge, b: &Automerge) -> Automerge {
    a.merge(&mut b.clone()).expect("merge");
    a
}

#[test]
fn two_answers_given_offline_are_both_shown_in_the_same_order_on_every_replica() {
    let demo = Demo::new();
    let (lead, member) = two_answers_offline(&demo);
    let on_lead = AuditView::read(&synced(lead.clone(), &member)).expect("reads");
    let on_member = AuditView::read(&synced(member, &lead)).expect("reads");
    assert_eq!(on_lead, on_member, "the same view, whichever synced first");

    let contest = &on_lead.content.contested_responses[&key()];
    let mut seen: Vec<(String, Answer, String)> = contest
        .iter()
        .map(|r| (r.by.to_string(), r.answer.clone(), r.note.clone()))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            (
                "k.iyer".into(),
                Answer::Cpna(Cpna::Partly),
                "19 days for two of ten".into()
            ),
            (
                "s.khan".into(),
                Answer::Cpna(Cpna::Conform),
                "all ten within 15 days".into()
            ),
        ]
    );
    assert!(contest.iter().all(|r| r.at == demo.now()));
    // The value shown is one of them, holding both photos.
    let shown = &on_lead.content.responses[&key()];
    assert!(contest.iter().any(|r| r.answer == shown.answer));
    let mut photos: Vec<_> = shown.evidence.iter().map(|e| e.name.clone()).collect();
    photos.sort();
    assert_eq!(photos, ["register-1.jpg", "register-2.jpg"]);
    assert_eq!(on_lead.content.contested(), 1);
}

#[test]
fn only_the_lead_settles_a_contested_answer_and_the_contest_is_gone_everywhere() {
    let demo = Demo::new();
    let (lead, member) = two_answers_offline(&demo);
    let mut on_member = synced(member, &lead);

    // The member sees both and may not pick one: the tablet refuses it as the server would.
    let view = AuditView::read(&on_member).expect("reads");
    let pick = Edit::settle_response(&view.content, &key(), 1).expect("contested");
    let refused = demo
        .edit(demo.audit_id, &mut on_member, &demo.member, pick.clone())
        .expect_err("a member does not settle");
    assert_eq!(refused.rule, "audit.settle", "{refused}");
    assert!(refused.message.contains("responses/sd.timeliness@P03"));
    // Nor may they clear it, which would hide both.
    let cleared = demo
        .edit(
            demo.audit_id,
            &mut on_member,
            &demo.member,
            Edit::ClearResponse(key()),
        )
        .expect_err("a member does not clear a contest");
    assert_eq!(cleared.rule, "audit.settle");

    // The lead picks the member's value; both photos stay.
    let mut on_lead = synced(lead, &on_member);
    let view = AuditView::read(&on_lead).expect("reads");
    let members = view.content.contested_responses[&key()]
        .iter()
        .position(|r| r.by.as_str() == "s.khan")
        .expect("the member's value");
    let before = on_lead.get_heads();
    demo.must(
        demo.audit_id,
        &mut on_lead,
        &demo.lead,
        Edit::settle_response(&view.content, &key(), members).expect("contested"),
    );
    // The server accepts the settlement from the lead.
    let change = on_lead.get_changes(&before);
    validate_batch(demo.audit_id, &on_member, change, &demo.lead, demo.today)
        .expect("the lead settles");

    let settled_member = synced(on_member, &on_lead);
    for doc in [&on_lead, &settled_member] {
        let v = AuditView::read(doc).expect("reads");
        assert!(v.content.contested_responses.is_empty(), "contest gone");
        let r = &v.content.responses[&key()];
        assert_eq!(r.answer, Answer::Cpna(Cpna::Conform));
        assert_eq!(r.note, "all ten within 15 days");
        assert_eq!(r.by.as_str(), "k.iyer", "the lead settled it");
        assert_eq!(r.evidence.len(), 2, "no photo lost in the settlement");
    }
    // Now that it is settled, the member may answer it again.
    let mut again = settled_member.clone();
    demo.must(
        demo.audit_id,
        &mut again,
        &demo.member,
        answer(Cpna::Conform, "rechecked", vec![]),
    );
}

#[test]
fn a_raw_change_by_a_member_that_supersedes_both_values_is_refused() {
    let demo = Demo::new();
    let (lead, member) = two_answers_offline(&demo);
    let stored = synced(lead, &member);
    // The member's tablet skips its own check: the server still refuses.
    let mut tablet = stored.clone();
    tablet.set_actor(actor(2));
    let mut tx = tablet.transaction();
    use automerge::transaction::Transactable;
    let responses = sync_core::testing::fixtures::obj_at(&tx, &["responses"]);
    let r = tx
        .put_object(&responses, key().to_string(), automerge::ObjType::Map)
        .expect("put");
    for (k, v) in [
        ("type", "cpna"),
        ("value", "conform"),
        ("note", "mine wins"),
        ("by", "s.khan"),
        ("at", "2026-01-15T10:00:00Z"),
    ] {
        tx.put(&r, k, v).expect("put");
    }
    tx.commit();
    let batch = tablet.get_changes(&stored.get_heads());
    let refused = validate_batch(demo.audit_id, &stored, batch, &demo.member, demo.today)
        .expect_err("not the member's to settle");
    assert_eq!(refused.rule, "audit.settle");
}

#[test]
fn an_auditor_settles_values_that_are_all_their_own() {
    let demo = Demo::new();
    let mut member: Author = demo.member.clone();
    member.actors.insert(actor(6));
    let start = demo.audit();
    let (mut tablet, mut phone) = (start.clone(), start);
    demo.must(
        demo.audit_id,
        &mut tablet,
        &member,
        answer(Cpna::Partly, "on the tablet", vec![]),
    );
    phone.set_actor(actor(6));
    sync_core::edit::apply_edit(
        demo.audit_id,
        &mut phone,
        &answer(Cpna::Conform, "on the phone", vec![]),
        &member,
        demo.now(),
    )
    .expect("the member's second device");
    let mut both = synced(tablet, &phone);
    assert_eq!(
        AuditView::read(&both)
            .expect("reads")
            .content
            .contested_responses[&key()]
            .len(),
        2
    );
    demo.must(
        demo.audit_id,
        &mut both,
        &member,
        answer(Cpna::Partly, "settled by its only writer", vec![]),
    );
    assert!(
        AuditView::read(&both)
            .expect("reads")
            .content
            .contested_responses
            .is_empty()
    );
}

#[test]
fn contested_findings_are_shown_and_settled_like_answers() {
    let demo = Demo::new();
    let id: ItemId = "f-01".parse().expect("an id");
    let mut lead = demo.audit();
    let mut member = lead.clone();
    let finding = |class, text: &str, n| Edit::PutFinding {
        id: id.clone(),
        class,
        clause: "3.2.1.3".parse().expect("a clause"),
        process: Some("P03".parse().expect("a process")),
        text: text.into(),
        evidence: vec![photo(n)],
    };
    use sync_core::audit::FindingClass::{Minor, Observation};
    demo.must(
        demo.audit_id,
        &mut lead,
        &demo.lead,
        finding(Minor, "register not kept", 3),
    );
    demo.must(
        demo.audit_id,
        &mut member,
        &demo.member,
        finding(Observation, "register kept late", 4),
    );
    let mut merged = synced(member, &lead);
    let view = AuditView::read(&merged).expect("reads");
    let mut values: Vec<String> = ContestedValue::all_of(&view.content)
        .into_iter()
        .map(|v| {
            let by = v.by.expect("a finding has its writer");
            format!("{} {by} {}", v.place, v.value)
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        [
            "findings/f-01 k.iyer minor: register not kept",
            "findings/f-01 s.khan observation: register kept late",
        ]
    );
    assert_eq!(view.content.findings[&id].evidence.len(), 2);
    let refused = demo
        .edit(
            demo.audit_id,
            &mut merged.clone(),
            &demo.member,
            Edit::settle_finding(&view.content, &id, 0).expect("contested"),
        )
        .expect_err("the member does not settle a finding");
    assert_eq!(refused.rule, "audit.settle");
    demo.must(
        demo.audit_id,
        &mut merged,
        &demo.lead,
        Edit::settle_finding(&view.content, &id, 0).expect("contested"),
    );
    let view = AuditView::read(&merged).expect("reads");
    assert!(view.content.contested_findings.is_empty());
    assert_eq!(view.content.findings[&id].evidence.len(), 2);
}

#[test]
fn the_live_rows_show_the_same_contests_as_the_view_batch_by_batch() {
    let demo = Demo::new();
    let (lead, member) = two_answers_offline(&demo);
    let mut doc = lead.clone();
    let mut live = LiveAudit::read(&doc).expect("reads");
    assert_eq!(live.contested().count(), 0);
    // The member's answer arrives as a batch: the rows are updated from what it touched.
    let batch = member.get_changes(&lead.get_heads());
    let accepted =
        validate_batch(demo.audit_id, &doc, batch, &demo.member, demo.today).expect("permitted");
    doc = accepted.doc.expect("applied");
    live.update(&doc, &accepted.touched).expect("updates");
    let view = AuditView::read(&doc).expect("reads");
    let from_view = ContestedValue::all_of(&view.content);
    assert_eq!(from_view.len(), 2);
    assert_eq!(
        live.contested().cloned().collect::<Vec<_>>(),
        from_view,
        "updated rows"
    );
    assert_eq!(
        live,
        LiveAudit::read(&doc).expect("reads"),
        "as if read whole"
    );

    // The lead settles; the rows lose the contest.
    let before = doc.get_heads();
    demo.must(
        demo.audit_id,
        &mut doc,
        &demo.lead,
        Edit::settle_response(&view.content, &key(), 0).expect("contested"),
    );
    let settle = doc.get_changes(&before);
    let stored = synced(lead, &member);
    let accepted =
        validate_batch(demo.audit_id, &stored, settle, &demo.lead, demo.today).expect("lead");
    live.update(accepted.doc.as_ref().expect("applied"), &accepted.touched)
        .expect("updates");
    assert_eq!(live.contested().count(), 0);
}

/// Only a whole answer or finding can be contested: a field inside one that
/// was written twice at once (here the note, on two of the member's devices)
/// is settled by whoever may write that field, with no lead needed.
#[test]
fn a_field_inside_an_answer_written_twice_at_once_is_settled_by_its_writer() {
    use automerge::transaction::Transactable;
    use sync_core::testing::fixtures::{forged, obj_at};
    let demo = Demo::new();
    let mut member: Author = demo.member.clone();
    member.actors.insert(actor(6));
    let mut stored = demo.audit();
    demo.must(
        demo.audit_id,
        &mut stored,
        &member,
        answer(Cpna::Conform, "first look", vec![]),
    );
    let note = |text: &'static str| {
        move |tx: &mut automerge::transaction::Transaction<'_>| {
            let r = obj_at(tx, &["responses", &key().to_string()]);
            tx.put(&r, "note", text).expect("put");
        }
    };
    // The same note edited on the tablet and on the phone, offline.
    let tablet = forged(&stored, 2, note("ten files seen"));
    let phone = forged(&stored, 6, note("ten files, two late"));
    let accepted = validate_batch(
        demo.audit_id,
        &stored,
        vec![tablet, phone],
        &member,
        demo.today,
    )
    .expect("each device may edit its own note");
    let both = accepted.doc.expect("applied");
    // One write over both notes: two predecessors, inside the answer.
    let settle = forged(&both, 2, note("ten files, two late, both noted"));
    assert_eq!(
        settle.decode().operations.last().map(|op| op.pred.len()),
        Some(2),
        "the write supersedes both notes"
    );
    let settled = validate_batch(demo.audit_id, &both, vec![settle], &member, demo.today)
        .expect("the note's writer settles it")
        .doc
        .expect("applied");
    let view = AuditView::read(&settled).expect("reads");
    assert_eq!(
        view.content.responses[&key()].note,
        "ten files, two late, both noted"
    );
    assert!(view.content.contested_responses.is_empty());
}

#[test]
fn meeting_notes_written_offline_by_two_auditors_are_both_shown_until_one_writes_over_them() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(1, 0);
    let (mut lead, mut member) = (stored.clone(), stored.clone());
    let notes = |text: &str| Edit::SetNotes(text.into());
    demo.must(
        demo.audit_id,
        &mut lead,
        &demo.lead,
        notes("Opening meeting 10:00, AC present"),
    );
    demo.must(
        demo.audit_id,
        &mut member,
        &demo.member,
        notes("Opening meeting 10:15; AC joined late"),
    );
    // On the server: the member's notes arrive over the lead's, as a batch.
    let batch = member.get_changes(&stored.get_heads());
    let mut live = LiveAudit::read(&lead).expect("reads");
    let accepted =
        validate_batch(demo.audit_id, &lead, batch, &demo.member, demo.today).expect("permitted");
    let merged = accepted.doc.expect("applied");
    live.update(&merged, &accepted.touched).expect("updates");

    let on_member = synced(member, &lead);
    let (a, b) = (
        AuditView::read(&merged).expect("reads").content,
        AuditView::read(&on_member).expect("reads").content,
    );
    assert_eq!(a.contested_notes, b.contested_notes, "the same on both");
    let mut seen: Vec<(String, String)> = a
        .contested_notes
        .iter()
        .map(|v| {
            let by = v.by.as_ref().map(ToString::to_string).unwrap_or_default();
            (by, v.value.clone())
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("k.iyer".into(), "Opening meeting 10:00, AC present".into()),
            (
                "s.khan".into(),
                "Opening meeting 10:15; AC joined late".into()
            ),
        ]
    );
    assert!(a.contested_notes.iter().all(|v| v.at == Some(demo.now())));
    assert_eq!(a.contested_notes.iter().filter(|v| v.shown).count(), 1);
    assert_eq!(a.contested(), 1, "the notes are one contest");
    // The server's rows show both, as the view does.
    let rows: Vec<_> = live.contested().cloned().collect();
    assert_eq!(rows, ContestedValue::all_of(&a));
    assert_eq!(rows.iter().filter(|v| v.place == "notes").count(), 2);

    // Any auditor of the team settles notes: the member writes over both.
    let mut settled = merged.clone();
    let before = settled.get_heads();
    demo.must(
        demo.audit_id,
        &mut settled,
        &demo.member,
        notes("Opening meeting 10:00-10:40; AC joined at 10:15"),
    );
    let accepted = validate_batch(
        demo.audit_id,
        &merged,
        settled.get_changes(&before),
        &demo.member,
        demo.today,
    )
    .expect("the team settles notes");
    let doc = accepted.doc.expect("applied");
    live.update(&doc, &accepted.touched).expect("updates");
    let content = AuditView::read(&doc).expect("reads").content;
    assert!(content.contested_notes.is_empty());
    assert_eq!(
        content.notes,
        "Opening meeting 10:00-10:40; AC joined at 10:15"
    );
    assert_eq!(live.contested().count(), 0);
    assert_eq!(
        live,
        LiveAudit::read(&doc).expect("reads"),
        "as if read whole"
    );
}
