//! Concurrent verifications of an NC are shown, never hidden (DESIGN §3,
//! issue 15 item 1): two auditors who verify the same NC offline each see
//! both notes, with who wrote them and on what date, in the same order on
//! every replica; an auditor who may verify settles it with one more
//! verification written over both, and the contest is gone everywhere.

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
