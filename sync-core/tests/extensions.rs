//! Due-date extensions of an NC, as a table (rule `nc.extension.terms`): an
//! extension is justified in at least 15 characters (not counting spaces at
//! either end) and moves its due date later than the one in force, which is
//! the rule's date (raised on + 7 days for a response, + 60 for the actions
//! of a minor NC) or the last extension of that date. The tablet and the
//! server give the same answer: both run the validator.

use sync_core::date::Date;
use sync_core::edit::Edit;
use sync_core::nc::{DueKind, Nc};
use sync_core::testing::fixtures::Demo;
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

fn extend(of: DueKind, due: Date, why: &str) -> Edit {
    Edit::Extend {
        of,
        due,
        justification: why.into(),
    }
}

#[test]
fn extensions_are_justified_and_only_ever_move_a_due_date_later() {
    let demo = Demo::new();
    let raised = demo.today;
    let response_due = raised.add_days(7);
    let action_due = raised.add_days(60);
    let fifteen = "Officer on tour"; // 15 characters
    assert_eq!(fifteen.chars().count(), 15);
    // (what, earlier extensions granted, the extension, accepted?)
    let rows: Vec<(&str, Vec<Edit>, Edit, bool)> = vec![
        (
            "one day after the rule's date, 15 characters",
            vec![],
            extend(DueKind::Response, response_due.add_days(1), fifteen),
            true,
        ),
        (
            "14 characters",
            vec![],
            extend(
                DueKind::Response,
                response_due.add_days(1),
                "Officer on tou",
            ),
            false,
        ),
        (
            "14 characters padded with spaces",
            vec![],
            extend(
                DueKind::Response,
                response_due.add_days(1),
                "   Officer on tou    ",
            ),
            false,
        ),
        (
            "the rule's date itself",
            vec![],
            extend(DueKind::Response, response_due, fifteen),
            false,
        ),
        (
            "before the NC was raised",
            vec![],
            extend(DueKind::Response, raised.add_days(-1), fifteen),
            false,
        ),
        (
            "after an earlier extension",
            vec![extend(
                DueKind::Response,
                response_due.add_days(10),
                fifteen,
            )],
            extend(DueKind::Response, response_due.add_days(11), fifteen),
            true,
        ),
        (
            "back before an earlier extension, though after the rule's date",
            vec![extend(
                DueKind::Response,
                response_due.add_days(10),
                fifteen,
            )],
            extend(DueKind::Response, response_due.add_days(5), fifteen),
            false,
        ),
        (
            "the actions' date is its own: after the rule's, before the response's extension",
            vec![extend(DueKind::Response, action_due.add_days(30), fifteen)],
            extend(DueKind::Action, action_due.add_days(1), fifteen),
            true,
        ),
        (
            "the actions' date itself",
            vec![],
            extend(DueKind::Action, action_due, fifteen),
            false,
        ),
    ];
    for (what, earlier, ext, ok) in rows {
        let mut doc = demo.nc_in(NcState::Open);
        for e in earlier {
            demo.must(demo.nc_id, &mut doc, &demo.nodal, e);
        }
        let stored = doc.clone();
        let result = demo.edit(demo.nc_id, &mut doc, &demo.nodal, ext.clone());
        match (ok, result) {
            (true, Ok(_)) => {
                // The server accepts the same change.
                let change = doc.get_changes(&stored.get_heads());
                validate_batch(demo.nc_id, &stored, change, &demo.nodal, demo.today)
                    .unwrap_or_else(|e| panic!("{what}: the server refused {e}"));
            }
            (false, Err(e)) => {
                assert_eq!(e.rule, "nc.extension.terms", "{what}: {e}");
                assert_eq!(doc.get_heads(), stored.get_heads(), "{what}: left a trace");
            }
            (ok, result) => panic!("{what}: expected accepted={ok}, got {result:?}"),
        }
    }
}

#[test]
fn the_server_refuses_an_unjustified_extension_the_tablet_did_not_check() {
    let demo = Demo::new();
    let stored = demo.nc_in(NcState::Open);
    let change = sync_core::testing::fixtures::forged(&stored, 4, |tx| {
        use automerge::transaction::Transactable;
        let list = sync_core::testing::fixtures::obj_at(tx, &["extensions"]);
        let e = tx
            .insert_object(&list, 0, automerge::ObjType::Map)
            .expect("insert");
        for (k, v) in [
            ("of", "response"),
            ("due", "2026-03-31"),
            ("justification", "   short   "),
            ("by", "a.rao"),
            ("at", "2026-01-15T10:00:00Z"),
        ] {
            tx.put(&e, k, v).expect("put");
        }
    });
    let refused = validate_batch(demo.nc_id, &stored, vec![change], &demo.nodal, demo.today)
        .expect_err("unjustified");
    assert_eq!(refused.rule, "nc.extension.terms");
    assert!(
        refused.message.contains("at least 15 characters"),
        "{refused}"
    );
    let nc = Nc::read(&stored).expect("reads");
    assert!(nc.extensions.is_empty());
}

#[test]
fn the_due_date_in_force_follows_the_units_own_rules() {
    let demo = Demo::new();
    // Demo-I gives 10 days for a response where the default gives 7.
    let mut nodal = demo.nodal.clone();
    nodal.due_rules.insert(
        demo.unit.clone(),
        sync_core::nc::DueRules {
            response_days_major: 10,
            response_days_minor: 10,
            ..Default::default()
        },
    );
    let eight_days = extend(DueKind::Response, demo.today.add_days(8), "Officer on tour");
    // Later than the default's date, not later than the unit's: refused.
    let mut doc = demo.nc_in(NcState::Open);
    let refused = demo
        .edit(demo.nc_id, &mut doc, &nodal, eight_days.clone())
        .expect_err("before the unit's date");
    assert_eq!(refused.rule, "nc.extension.terms");
    // Under the default rules the same extension moves the date later.
    demo.must(demo.nc_id, &mut doc, &demo.nodal, eight_days);
    let eleven_days = extend(
        DueKind::Response,
        demo.today.add_days(11),
        "Officer on tour",
    );
    let mut doc = demo.nc_in(NcState::Open);
    demo.must(demo.nc_id, &mut doc, &nodal, eleven_days);
    // And the view counts from the unit's rules.
    let nc = Nc::read(&demo.nc_in(NcState::Open)).expect("reads");
    let rules = nodal.due_rules_of(&demo.unit);
    assert_eq!(
        nc.view(&rules, demo.today).response_due,
        demo.today.add_days(10)
    );
}
