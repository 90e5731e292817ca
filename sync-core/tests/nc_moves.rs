//! Every NC move, tried from every state by every role, against a table
//! written by hand from the design: permitted moves are accepted and change
//! the state; forbidden ones are refused with a reason naming the rule, and
//! leave the document as it was.

use sync_core::edit::Edit;
use sync_core::nc::{DueRules, Nc};
use sync_core::permissions::{Author, Role, RoleGrant};
use sync_core::testing::fixtures::Demo;
use sync_core::workflow::NcState;

/// The NC lifecycle as DESIGN §3 and the Service Quality Manual give it,
/// written out by hand (never read from `NC_MOVES`, the table under test):
/// move, from, to, and which of the demo people may make it. The demo NC is
/// on process P03, owned by `owner`; `lead` and `member` are its audit's
/// team and own no process; `nodal` is the unit's nodal officer;
/// `team_owner` is on the team and also owns P03 (assigned before they
/// became its owner): they answer for the process, and may never accept,
/// reject or verify their own response (SQM: independence of the auditor).
const EXPECTED: &[(&str, NcState, NcState, &[&str])] = {
    use NcState::*;
    &[
        ("raise", Draft, Open, &["lead", "member", "team_owner"]),
        ("withdraw", Draft, Withdrawn, &["lead"]),
        ("withdraw", Open, Withdrawn, &["lead"]),
        (
            "submit_response",
            Open,
            ResponseSubmitted,
            &["owner", "team_owner"],
        ),
        (
            "accept_plan",
            ResponseSubmitted,
            PlanAccepted,
            &["lead", "member"],
        ),
        ("reject_plan", ResponseSubmitted, Open, &["lead", "member"]),
        (
            "mark_implemented",
            PlanAccepted,
            Implemented,
            &["owner", "team_owner"],
        ),
        ("verify_effective", Implemented, Closed, &["lead", "member"]),
        (
            "verify_not_effective",
            Implemented,
            Open,
            &["lead", "member"],
        ),
        ("reopen", Closed, Open, &["nodal"]),
    ]
};

/// The member, made owner of P03 as well.
fn team_owner(demo: &Demo) -> Author {
    let mut a = demo.member.clone();
    a.grants.push(RoleGrant {
        unit: demo.unit.clone(),
        role: Role::ProcessOwner,
        from: "2025-04-01".parse().expect("a date"),
        until: None,
    });
    a.processes
        .insert((demo.unit.clone(), "P03".parse().expect("a process")));
    a
}

fn people<'a>(demo: &'a Demo, team_owner: &'a Author) -> [(&'static str, &'a Author); 6] {
    [
        ("lead", &demo.lead),
        ("member", &demo.member),
        ("owner", &demo.owner),
        ("nodal", &demo.nodal),
        ("outsider", &demo.outsider),
        ("team_owner", team_owner),
    ]
}

fn state(doc: &automerge::Automerge, demo: &Demo) -> NcState {
    Nc::read(doc)
        .expect("readable")
        .view(&DueRules::default(), demo.today)
        .state
}

/// Every move name from every state by every person: accepted exactly where
/// the hand-written table says, to the state it says; refused by `move.who`
/// for the wrong person and by `move.table` where no such move exists.
#[test]
fn every_nc_move_from_every_state_by_every_person_is_decided_as_the_lifecycle_says() {
    let demo = Demo::new();
    let both = team_owner(&demo);
    let names: std::collections::BTreeSet<&str> = EXPECTED.iter().map(|e| e.0).collect();
    let mut accepted = 0;
    for from in NcState::ALL {
        for name in &names {
            let row = EXPECTED.iter().find(|e| e.0 == *name && e.1 == *from);
            for (person, author) in people(&demo, &both) {
                let mut doc = demo.nc_in(*from);
                let heads_before = doc.get_heads();
                let result = demo.edit(
                    demo.nc_id,
                    &mut doc,
                    author,
                    Edit::Move {
                        mv: (*name).into(),
                        note: "reason given".into(),
                    },
                );
                match row {
                    Some((_, _, to, who)) if who.contains(&person) => {
                        assert!(
                            result.is_ok(),
                            "{person} may {name} from {from}: {result:?}"
                        );
                        assert_eq!(state(&doc, &demo), *to, "{name} from {from}");
                        accepted += 1;
                    }
                    Some(_) => {
                        let refusal =
                            result.expect_err(&format!("{person} must not {name} from {from}"));
                        assert_eq!(refusal.rule, "move.who", "{person}: {refusal}");
                        assert!(
                            refusal.message.contains(&author.user.to_string()),
                            "{refusal}"
                        );
                        assert_eq!(doc.get_heads(), heads_before, "a refused move left a trace");
                    }
                    None => {
                        let refusal = result.expect_err(&format!("no {name} from {from}"));
                        assert_eq!(
                            refusal.rule, "move.table",
                            "{person} {name} from {from}: {refusal}"
                        );
                        assert_eq!(doc.get_heads(), heads_before, "a refused move left a trace");
                    }
                }
            }
        }
    }
    let rows: usize = EXPECTED.iter().map(|e| e.3.len()).sum();
    assert_eq!(
        accepted, rows,
        "every permitted move was tried and accepted"
    );
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
