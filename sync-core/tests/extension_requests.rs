//! A process owner asks for a later due date with a justification; a nodal
//! officer grants the request (an extension naming it, which must still meet
//! the terms of `nc.extension.terms`) or refuses it with a reason. Each
//! request is answered once; only the owner asks and only the nodal officer
//! answers, on the tablet and on the server alike.

use automerge::Automerge;
use sync_core::edit::Edit;
use sync_core::ids::ItemId;
use sync_core::nc::{DueKind, DueRules, Nc};
use sync_core::permissions::Author;
use sync_core::testing::fixtures::Demo;
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

fn id(text: &str) -> ItemId {
    text.parse().expect("item id")
}

fn ask(rid: &str, of: DueKind, days_after_raised: i32) -> Edit {
    let demo = Demo::new();
    Edit::RequestExtension {
        id: id(rid),
        of,
        due: demo.today.add_days(days_after_raised),
        justification: "Records are with the CAG audit party until the 20th.".into(),
    }
}

/// Makes the edit as `who` and checks that the server accepts the same change.
fn accepted(demo: &Demo, doc: &mut Automerge, who: &Author, edit: Edit) {
    let stored = doc.clone();
    demo.must(demo.nc_id, doc, who, edit);
    let change = doc.get_changes(&stored.get_heads());
    validate_batch(demo.nc_id, &stored, change, who, demo.today)
        .unwrap_or_else(|e| panic!("the server refused what the tablet made: {e}"));
}

fn rules() -> DueRules {
    DueRules::default()
}

#[test]
fn the_owner_asks_and_the_nodal_officer_grants_the_date_asked_for() {
    let demo = Demo::new();
    let mut doc = demo.nc_in(NcState::Open);
    let before = Nc::read(&doc).expect("reads").response_due(&rules());
    accepted(
        &demo,
        &mut doc,
        &demo.owner,
        ask("q-1", DueKind::Response, 21),
    );
    let nc = Nc::read(&doc).expect("reads");
    assert_eq!(nc.pending_requests().count(), 1);
    assert_eq!(nc.response_due(&rules()), before, "asking moves nothing");

    accepted(
        &demo,
        &mut doc,
        &demo.nodal,
        Edit::GrantExtension { request: id("q-1") },
    );
    let nc = Nc::read(&doc).expect("reads");
    assert_eq!(nc.pending_requests().count(), 0);
    assert_eq!(nc.response_due(&rules()), demo.today.add_days(21));
    assert_eq!(nc.extensions.len(), 1);
    assert_eq!(nc.extensions[0].request, Some(id("q-1")));
    assert_eq!(nc.extensions[0].by.to_string(), "a.rao");

    // Answered once: a second grant, or a refusal after it, changes nothing.
    for again in [
        Edit::GrantExtension { request: id("q-1") },
        Edit::RefuseExtension {
            request: id("q-1"),
            reason: "Too late now.".into(),
        },
    ] {
        let heads = doc.get_heads();
        let refused = demo
            .edit(demo.nc_id, &mut doc, &demo.nodal, again)
            .expect_err("answered already");
        assert_eq!(refused.rule, "nc.extension", "{refused}");
        assert!(refused.message.contains("answered already"), "{refused}");
        assert_eq!(doc.get_heads(), heads);
    }
}

#[test]
fn a_refused_request_keeps_the_due_date_and_says_why() {
    let demo = Demo::new();
    let mut doc = demo.nc_in(NcState::Open);
    accepted(
        &demo,
        &mut doc,
        &demo.owner,
        ask("q-1", DueKind::Response, 30),
    );
    accepted(
        &demo,
        &mut doc,
        &demo.nodal,
        Edit::RefuseExtension {
            request: id("q-1"),
            reason: "The records can be seen at the CAG party's camp office.".into(),
        },
    );
    let nc = Nc::read(&doc).expect("reads");
    assert_eq!(nc.pending_requests().count(), 0);
    assert!(nc.extensions.is_empty());
    assert_eq!(nc.extension_refusals.len(), 1);
    assert_eq!(nc.extension_refusals[0].request, id("q-1"));
    assert!(nc.extension_refusals[0].reason.contains("camp office"));
    assert_eq!(nc.response_due(&rules()), demo.today.add_days(7));
}

#[test]
fn only_the_owner_asks_and_only_the_nodal_officer_answers() {
    let demo = Demo::new();
    let mut doc = demo.nc_in(NcState::Open);
    for who in [&demo.nodal, &demo.lead] {
        let refused = demo
            .edit(demo.nc_id, &mut doc, who, ask("q-9", DueKind::Response, 21))
            .expect_err("not the owner");
        assert_eq!(refused.rule, "nc.owner_fields", "{}: {refused}", who.user);
    }
    accepted(
        &demo,
        &mut doc,
        &demo.owner,
        ask("q-1", DueKind::Response, 21),
    );
    for who in [&demo.owner, &demo.lead] {
        for answer in [
            Edit::GrantExtension { request: id("q-1") },
            Edit::RefuseExtension {
                request: id("q-1"),
                reason: "No.".into(),
            },
        ] {
            let refused = demo
                .edit(demo.nc_id, &mut doc, who, answer)
                .expect_err("not the nodal officer");
            assert_eq!(refused.rule, "nc.extension", "{}: {refused}", who.user);
        }
    }
    let unknown = demo
        .edit(
            demo.nc_id,
            &mut doc,
            &demo.nodal,
            Edit::GrantExtension { request: id("q-7") },
        )
        .expect_err("no such request");
    assert!(
        unknown.message.contains("no extension request"),
        "{unknown}"
    );
    assert_eq!(Nc::read(&doc).expect("reads").pending_requests().count(), 1);
}

#[test]
fn a_grant_still_meets_the_terms_of_an_extension() {
    let demo = Demo::new();
    let mut doc = demo.nc_in(NcState::Open);
    // The response is due 7 days after raising: asking for day 5 asks for nothing later.
    accepted(
        &demo,
        &mut doc,
        &demo.owner,
        ask("q-1", DueKind::Response, 5),
    );
    let refused = demo
        .edit(
            demo.nc_id,
            &mut doc,
            &demo.nodal,
            Edit::GrantExtension { request: id("q-1") },
        )
        .expect_err("not later");
    assert_eq!(refused.rule, "nc.extension.terms", "{refused}");
    assert_eq!(Nc::read(&doc).expect("reads").pending_requests().count(), 1);
}
