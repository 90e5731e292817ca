//! Every audit move, tried from every state by every role, against a table
//! written by hand from the design (never read from `AUDIT_MOVES`, the table
//! under test): permitted moves are accepted and reach the state the table
//! names; the wrong person is refused by `move.who`, a move that does not
//! exist from that state by `move.table`, and neither leaves a trace.

use sync_core::audit::AuditView;
use sync_core::edit::Edit;
use sync_core::permissions::Author;
use sync_core::testing::fixtures::Demo;
use sync_core::workflow::AuditState;

/// The audit lifecycle: planned, fieldwork, the lead's review (fieldwork
/// locked), the report issued, closed; the lead alone moves it, may send it
/// back for more fieldwork with a reason, and accepts edits that reached it
/// while locked without changing its state.
const EXPECTED: &[(&str, AuditState, AuditState, &[&str])] = {
    use AuditState::*;
    &[
        ("start", Planned, InProgress, &["lead"]),
        ("submit_for_review", InProgress, InReview, &["lead"]),
        ("return_for_edit", InReview, InProgress, &["lead"]),
        ("issue_report", InReview, ReportIssued, &["lead"]),
        ("close", ReportIssued, Closed, &["lead"]),
        ("accept_late_edits", InReview, InReview, &["lead"]),
        ("accept_late_edits", ReportIssued, ReportIssued, &["lead"]),
        ("accept_late_edits", Closed, Closed, &["lead"]),
    ]
};

/// The lead's moves from a planned audit to each state.
fn path_to(state: AuditState) -> &'static [&'static str] {
    use AuditState::*;
    match state {
        Planned => &[],
        InProgress => &["start"],
        InReview => &["start", "submit_for_review"],
        ReportIssued => &["start", "submit_for_review", "issue_report"],
        Closed => &["start", "submit_for_review", "issue_report", "close"],
    }
}

fn audit_in(demo: &Demo, state: AuditState) -> sync_core::automerge::Automerge {
    let mut doc = demo.audit();
    for mv in path_to(state) {
        demo.must(
            demo.audit_id,
            &mut doc,
            &demo.lead,
            Edit::Move {
                mv: (*mv).into(),
                note: "as planned".into(),
            },
        );
    }
    doc
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

#[test]
fn every_audit_move_from_every_state_by_every_person_is_decided_as_the_lifecycle_says() {
    let demo = Demo::new();
    let names: std::collections::BTreeSet<&str> = EXPECTED.iter().map(|e| e.0).collect();
    let mut accepted = 0;
    for from in AuditState::ALL {
        let start = audit_in(&demo, *from);
        assert_eq!(AuditView::read(&start).expect("reads").state, *from);
        for name in &names {
            let row = EXPECTED.iter().find(|e| e.0 == *name && e.1 == *from);
            for (person, author) in people(&demo) {
                let mut doc = start.clone();
                let heads_before = doc.get_heads();
                let result = demo.edit(
                    demo.audit_id,
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
                        let view = AuditView::read(&doc).expect("reads");
                        assert_eq!(view.state, *to, "{name} from {from}");
                        assert!(view.conflicts.is_empty(), "{:?}", view.conflicts);
                        accepted += 1;
                    }
                    Some(_) => {
                        let refusal =
                            result.expect_err(&format!("{person} must not {name} from {from}"));
                        assert_eq!(refusal.rule, "move.who", "{person}: {refusal}");
                        assert_eq!(doc.get_heads(), heads_before, "a refused move left a trace");
                    }
                    None => {
                        let refusal = result.expect_err(&format!("no {name} from {from}"));
                        assert!(
                            ["move.table", "move.who"].contains(&refusal.rule),
                            "{person} {name} from {from}: {refusal}"
                        );
                        if person == "lead" {
                            // Only the lead could make an audit move at all:
                            // for the lead, the table is what refuses.
                            assert_eq!(refusal.rule, "move.table", "{name} from {from}: {refusal}");
                        }
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
fn returning_an_audit_for_more_fieldwork_needs_a_reason() {
    let demo = Demo::new();
    let mut doc = audit_in(&demo, AuditState::InReview);
    let err = demo
        .edit(
            demo.audit_id,
            &mut doc,
            &demo.lead,
            Edit::Move {
                mv: "return_for_edit".into(),
                note: "   ".into(),
            },
        )
        .expect_err("no reason");
    assert_eq!(err.rule, "move.requirement", "{err}");
    assert!(err.message.contains("reason"), "{err}");
}
