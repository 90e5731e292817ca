//! Every NC move, tried by every role: permitted moves are accepted and change
//! the state; forbidden ones are refused with a reason naming the rule, and
//! leave the document as it was.

use sync_core::edit::Edit;
use sync_core::nc::{DueRules, Nc};
use sync_core::permissions::Author;
use sync_core::testing::fixtures::Demo;
use sync_core::workflow::{NC_MOVES, NcState, Who};

/// Which demo people are `who` for the demo NC — written out, not computed by the rules under test.
fn expected(who: Who) -> &'static [&'static str] {
    match who {
        Who::AuditTeam => &["lead", "member"],
        Who::AuditLead => &["lead"],
        Who::IndependentAuditor => &["lead", "member"],
        Who::ProcessOwner => &["owner"],
        Who::NodalOfficer => &["nodal"],
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

fn state(doc: &automerge::Automerge, demo: &Demo) -> NcState {
    Nc::read(doc)
        .expect("readable")
        .view(&DueRules::default(), demo.today)
        .state
}

#[test]
fn every_nc_move_is_accepted_for_its_role_and_refused_for_every_other() {
    let demo = Demo::new();
    let mut checked = 0;
    for row in NC_MOVES {
        for (name, author) in people(&demo) {
            let mut doc = demo.nc_in(row.from);
            let heads_before = doc.get_heads();
            let result = demo.edit(
                demo.nc_id,
                &mut doc,
                author,
                Edit::Move {
                    mv: row.name.into(),
                    note: "reason given".into(),
                },
            );
            if expected(row.who).contains(&name) {
                assert!(
                    result.is_ok(),
                    "{name} should be able to {} from {}: {:?}",
                    row.name,
                    row.from,
                    result
                );
                assert_eq!(state(&doc, &demo), row.to, "{} from {}", row.name, row.from);
            } else {
                let refusal =
                    result.expect_err(&format!("{name} must not {} from {}", row.name, row.from));
                assert_eq!(refusal.rule, "move.who", "{name}: {refusal}");
                assert!(
                    refusal.message.contains(&author.user.to_string()),
                    "{refusal}"
                );
                assert_eq!(doc.get_heads(), heads_before, "a refused move left a trace");
                assert_eq!(state(&doc, &demo), row.from);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, NC_MOVES.len() * 5);
}

#[test]
fn moves_missing_from_the_table_are_refused_naming_the_table() {
    let demo = Demo::new();
    for from in NcState::ALL {
        for mv in ["raise", "accept_plan", "verify_effective", "reopen"] {
            if NC_MOVES.iter().any(|r| r.name == mv && r.from == *from) {
                continue;
            }
            let mut doc = demo.nc_in(*from);
            let err = demo
                .edit(
                    demo.nc_id,
                    &mut doc,
                    &demo.lead,
                    Edit::Move {
                        mv: mv.into(),
                        note: "x".into(),
                    },
                )
                .expect_err("not in the table");
            assert_eq!(err.rule, "move.table", "{mv} from {from}: {err}");
        }
    }
}

#[test]
fn moves_are_refused_until_their_requirements_are_met() {
    let demo = Demo::new();
    // submit_response needs correction, root cause and a plan.
    let mut doc = demo.nc();
    demo.must(
        demo.nc_id,
        &mut doc,
        &demo.member,
        Edit::Move {
            mv: "raise".into(),
            note: String::new(),
        },
    );
    let err = demo
        .edit(
            demo.nc_id,
            &mut doc,
            &demo.owner,
            Edit::Move {
                mv: "submit_response".into(),
                note: String::new(),
            },
        )
        .expect_err("nothing filled in");
    assert_eq!(err.rule, "move.requirement");
    assert!(err.message.contains("correction"), "{err}");
    // reject_plan needs a reason.
    let mut doc = demo.nc_in(NcState::ResponseSubmitted);
    let err = demo
        .edit(
            demo.nc_id,
            &mut doc,
            &demo.member,
            Edit::Move {
                mv: "reject_plan".into(),
                note: "  ".into(),
            },
        )
        .expect_err("no reason");
    assert_eq!(err.rule, "move.requirement");
    assert!(err.message.contains("reason"), "{err}");
    demo.must(
        demo.nc_id,
        &mut doc,
        &demo.member,
        Edit::Move {
            mv: "reject_plan".into(),
            note: "Root cause is a symptom".into(),
        },
    );
    assert_eq!(state(&doc, &demo), NcState::Open);
}
