//! Concurrent values of an NC's and a review's fields are shown, never
//! hidden (DESIGN §3, issue 15 item 1): two people who write the same
//! verification, description, correction, root cause or review minutes
//! offline each see every value, with who wrote it and when, in the same
//! order on every replica; someone who may write the field settles it with
//! one more write over them all, and the contest is gone everywhere. Who
//! wrote a text is recorded beside it and must be its sender.

use automerge::Automerge;
use sync_core::edit::Edit;
use sync_core::nc::{ConcurrentVerification, Nc};
use sync_core::testing::fixtures::Demo;
use sync_core::validate::validate_batch;

fn verify(note: &str) -> Edit {
    Edit::SetVerification {
        note: note.into(),
        on: "2026-01-15".parse().expect("a date"),
    }
}

/// `a` after receiving everything `b` has.
fn synced(mut a: Automerge, b: &Automerge) -> Automerge {
    a.merge(&mut b.clone()).expect("merge");
    a
}

/// The NC, implemented, on the lead's and the member's tablets, each
/// verified offline with its own note.
fn two_verifications(demo: &Demo) -> (Automerge, Automerge, Automerge) {
    let stored = demo.nc_in(sync_core::workflow::NcState::Implemented);
    let (mut lead, mut member) = (stored.clone(), stored.clone());
    demo.must(
        demo.nc_id,
        &mut lead,
        &demo.lead,
        verify("Ageing report seen for all 20 days."),
    );
    demo.must(
        demo.nc_id,
        &mut member,
        &demo.member,
        verify("Two days missing from the report."),
    );
    (stored, lead, member)
}

fn contest(doc: &Automerge) -> Vec<ConcurrentVerification> {
    Nc::read(doc).expect("reads").contested_verification
}

#[test]
fn two_verifications_written_offline_are_both_shown_with_their_authors() {
    let demo = Demo::new();
    let (stored, lead, member) = two_verifications(&demo);
    assert!(contest(&stored).is_empty(), "one verification, no contest");
    let on_lead = synced(lead.clone(), &member);
    let on_member = synced(member, &lead);
    let (a, b) = (contest(&on_lead), contest(&on_member));
    assert_eq!(a, b, "the same values in the same order on both tablets");
    let mut seen: Vec<(String, String)> = a
        .iter()
        .map(|v| {
            (
                v.by.as_ref().map(ToString::to_string).unwrap_or_default(),
                v.note.clone(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "k.iyer".into(),
                "Ageing report seen for all 20 days.".into()
            ),
            ("s.khan".into(), "Two days missing from the report.".into()),
        ]
    );
    assert!(
        a.iter()
            .all(|v| v.on == Some("2026-01-15".parse().expect("a date")))
    );
    // The value shown is one of them.
    let shown = Nc::read(&on_lead)
        .expect("reads")
        .verification
        .expect("verified");
    assert!(
        a.iter()
            .any(|v| v.note == shown.note && v.by.as_ref() == Some(&shown.by))
    );
}

#[test]
fn a_verification_written_over_both_settles_the_contest_on_every_replica() {
    let demo = Demo::new();
    let (_, lead, member) = two_verifications(&demo);
    let mut on_member = synced(member, &lead);
    let before = on_member.get_heads();
    demo.must(
        demo.nc_id,
        &mut on_member,
        &demo.member,
        verify("Report rechecked with the owner: 18 of 20 days, two added."),
    );
    // The server, holding both verifications, accepts it from the member, who may verify.
    let on_server = synced(lead, &on_member_before(&on_member, &before));
    let settle = on_member.get_changes(&before);
    let accepted = validate_batch(demo.nc_id, &on_server, settle, &demo.member, demo.today)
        .expect("permitted")
        .doc
        .expect("applied");
    for doc in [&on_member, &accepted] {
        assert!(contest(doc).is_empty(), "settled");
        let v = Nc::read(doc)
            .expect("reads")
            .verification
            .expect("verified");
        assert_eq!(
            v.note,
            "Report rechecked with the owner: 18 of 20 days, two added."
        );
        assert_eq!(v.by.as_str(), "s.khan");
    }
}

/// The member's tablet as it was at `heads` (both verifications merged).
fn on_member_before(doc: &Automerge, heads: &[automerge::ChangeHash]) -> Automerge {
    doc.fork_at(heads).expect("a fork at those heads")
}

/// The owner of P03 and a deputy (on their own tablet), both entitled to
/// write the NC's correction.
fn deputy(demo: &Demo) -> sync_core::permissions::Author {
    let mut d = demo.owner.clone();
    d.user = "dy.div2".parse().expect("a user");
    d.actors = [sync_core::testing::fixtures::actor(7)].into();
    d
}

fn contested(doc: &Automerge, field: &str) -> Vec<sync_core::nc::ContestedText> {
    Nc::read(doc)
        .expect("reads")
        .contested_text
        .get(field)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_correction_two_owners_write_offline_shows_both_with_their_writers_until_one_writes_over_them()
{
    let demo = Demo::new();
    let deputy = deputy(&demo);
    let stored = demo.nc_in(sync_core::workflow::NcState::Open);
    let (mut owner, mut other) = (stored.clone(), stored.clone());
    demo.must(
        demo.nc_id,
        &mut owner,
        &demo.owner,
        Edit::SetCorrection("Register reopened on 16-01-2026.".into()),
    );
    demo.must(
        demo.nc_id,
        &mut other,
        &deputy,
        Edit::SetCorrection("Pending amendments listed and sent.".into()),
    );
    let on_owner = synced(owner.clone(), &other);
    let on_deputy = synced(other, &owner);
    let (a, b) = (
        contested(&on_owner, "correction"),
        contested(&on_deputy, "correction"),
    );
    assert_eq!(a, b, "the same values in the same order on both tablets");
    let mut seen: Vec<(String, String)> = a
        .iter()
        .map(|v| {
            (
                v.by.as_ref().map(ToString::to_string).unwrap_or_default(),
                v.value.clone(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("ac.div2".into(), "Register reopened on 16-01-2026.".into()),
            (
                "dy.div2".into(),
                "Pending amendments listed and sent.".into()
            ),
        ]
    );
    assert!(a.iter().all(|v| v.at == Some(demo.now())));
    let shown = Nc::read(&on_owner).expect("reads").correction;
    assert_eq!(
        a.iter()
            .filter(|v| v.shown)
            .map(|v| &v.value)
            .collect::<Vec<_>>(),
        [&shown]
    );
    assert!(
        contested(&on_owner, "root_cause").is_empty(),
        "only the correction is contested"
    );

    // The owner writes one correction over both: the server takes it and the contest is gone.
    let mut settling = on_owner.clone();
    let before = settling.get_heads();
    demo.must(
        demo.nc_id,
        &mut settling,
        &demo.owner,
        Edit::SetCorrection("Register reopened; pending amendments listed and sent.".into()),
    );
    let batch = settling.get_changes(&before);
    let accepted = validate_batch(demo.nc_id, &on_deputy, batch, &demo.owner, demo.today)
        .expect("the owner may")
        .doc
        .expect("applied");
    for doc in [&settling, &accepted] {
        assert!(contested(doc, "correction").is_empty());
        assert_eq!(
            Nc::read(doc).expect("reads").correction,
            "Register reopened; pending amendments listed and sent."
        );
    }
}

#[test]
fn a_description_the_lead_and_a_member_write_at_once_shows_both() {
    let demo = Demo::new();
    let stored = demo.nc();
    let (mut lead, mut member) = (stored.clone(), stored.clone());
    demo.must(
        demo.nc_id,
        &mut lead,
        &demo.lead,
        Edit::SetDescription("Amendment approved in 19 days.".into()),
    );
    demo.must(
        demo.nc_id,
        &mut member,
        &demo.member,
        Edit::SetDescription("1 of 10 amendments past 15 days.".into()),
    );
    let merged = synced(lead, &member);
    let by: Vec<String> = contested(&merged, "description")
        .iter()
        .filter_map(|v| v.by.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(by.len(), 2);
    assert!(
        by.contains(&"k.iyer".to_owned()) && by.contains(&"s.khan".to_owned()),
        "{by:?}"
    );
}

#[test]
fn a_text_recorded_as_written_by_someone_else_is_refused() {
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let stored = demo.nc_in(sync_core::workflow::NcState::Open);
    let change = sync_core::testing::fixtures::forged(&stored, 3, |tx| {
        tx.put(automerge::ROOT, "correction", "Register reopened.")
            .expect("put");
        tx.put(automerge::ROOT, "correction_by", "dy.div2")
            .expect("put");
    });
    let refused = validate_batch(demo.nc_id, &stored, vec![change], &demo.owner, demo.today)
        .expect_err("not the sender");
    assert_eq!(refused.rule, "entry.by", "{refused}");
    assert!(
        refused
            .message
            .contains("'correction' is recorded as written by 'dy.div2'"),
        "{refused}"
    );
    // Written by the sender, with a time that is not one, it is refused by its form.
    let change = sync_core::testing::fixtures::forged(&stored, 3, |tx| {
        tx.put(automerge::ROOT, "correction_at", "yesterday")
            .expect("put");
    });
    let refused = validate_batch(demo.nc_id, &stored, vec![change], &demo.owner, demo.today)
        .expect_err("not a time");
    assert_eq!(refused.rule, "schema", "{refused}");
}

#[test]
fn review_minutes_two_nodal_officers_write_at_once_show_both_until_one_writes_over_them() {
    let demo = Demo::new();
    let mut second = demo.nodal.clone();
    second.user = "n.two".parse().expect("a user");
    second.actors = [sync_core::testing::fixtures::actor(8)].into();
    let mut stored = Automerge::new();
    demo.must(
        demo.review_id,
        &mut stored,
        &demo.nodal,
        Edit::CreateReview {
            unit: demo.unit.clone(),
            title: "MR-2".into(),
        },
    );
    let (mut rao, mut two) = (stored.clone(), stored.clone());
    demo.must(
        demo.review_id,
        &mut rao,
        &demo.nodal,
        Edit::SetMinutes("Resources: two posts to be filled.".into()),
    );
    demo.must(
        demo.review_id,
        &mut two,
        &second,
        Edit::SetMinutes("Resources deferred to MR-3.".into()),
    );
    let merged = synced(rao.clone(), &two);
    let contest = sync_core::review::Review::read(&merged)
        .expect("reads")
        .contested_minutes;
    assert_eq!(
        contest,
        sync_core::review::Review::read(&synced(two, &rao))
            .expect("reads")
            .contested_minutes
    );
    let mut by: Vec<String> = contest
        .iter()
        .filter_map(|v| v.by.as_ref().map(ToString::to_string))
        .collect();
    by.sort();
    assert_eq!(by, ["a.rao", "n.two"]);
    let mut settled = merged.clone();
    demo.must(
        demo.review_id,
        &mut settled,
        &second,
        Edit::SetMinutes("Resources: two posts to be filled by March.".into()),
    );
    let review = sync_core::review::Review::read(&settled).expect("reads");
    assert!(review.contested_minutes.is_empty());
    assert_eq!(
        review.minutes,
        "Resources: two posts to be filled by March."
    );
}

#[test]
fn an_action_written_on_two_tablets_at_once_shows_both_versions_until_the_owner_writes_it_again() {
    use sync_core::edit::apply_edit;
    use sync_core::testing::fixtures::actor;
    let mut demo = Demo::new();
    // The process owner's second tablet.
    demo.owner.actors.insert(actor(6));
    let stored = demo.nc_in(sync_core::workflow::NcState::Open);
    let action = |text: &str, target: &str| Edit::PutAction {
        id: "a-1".parse().expect("an id"),
        action: sync_core::nc::Action {
            text: text.into(),
            owner: "Supdt Div-II".into(),
            target: target.parse().expect("a date"),
            done_on: None,
        },
    };
    let on = |device: u8, edit: Edit| {
        let mut doc = stored.clone();
        doc.set_actor(actor(device));
        apply_edit(demo.nc_id, &mut doc, &edit, &demo.owner, demo.now()).expect("permitted");
        doc
    };
    let desk = on(3, action("Daily ageing report to the AC", "2026-02-15"));
    let field = on(6, action("Weekly ageing report to the AC", "2026-02-28"));
    let (a, b) = (synced(desk.clone(), &field), synced(field, &desk));
    let (na, nb) = (Nc::read(&a).expect("reads"), Nc::read(&b).expect("reads"));
    assert_eq!(
        na.contested_actions, nb.contested_actions,
        "the same on both"
    );
    let versions = &na.contested_actions[&"a-1".parse().expect("an id")];
    let mut texts: Vec<_> = versions.iter().map(|v| v.action.text.as_str()).collect();
    texts.sort_unstable();
    assert_eq!(
        texts,
        [
            "Daily ageing report to the AC",
            "Weekly ageing report to the AC"
        ]
    );
    assert!(
        versions
            .iter()
            .all(|v| v.by.as_ref() == Some(&demo.owner.user))
    );
    assert!(versions.iter().all(|v| v.at == Some(demo.now())));
    let shown = versions.iter().find(|v| v.shown).expect("one is shown");
    assert_eq!(na.actions[&"a-1".parse().expect("an id")], shown.action);

    // The owner keeps the weekly one: one write over both ends the contest.
    let pick = versions
        .iter()
        .position(|v| v.action.text.starts_with("Weekly"))
        .expect("weekly");
    let settle = Edit::settle_action(&na.contested_actions, &"a-1".parse().expect("an id"), pick)
        .expect("contested");
    let mut settled = a.clone();
    demo.must(demo.nc_id, &mut settled, &demo.owner, settle);
    let nc = Nc::read(&synced(b, &settled)).expect("reads");
    assert!(nc.contested_actions.is_empty());
    assert_eq!(
        nc.actions[&"a-1".parse().expect("an id")].text,
        "Weekly ageing report to the AC"
    );
}
