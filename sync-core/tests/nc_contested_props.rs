//! Over random offline histories of four tablets (the process owner's two
//! devices writing an NC's correction, root cause and action, and two
//! auditors writing its description) syncing pairwise in any order: every
//! value that no later write by someone who had seen it superseded is
//! visible (as the value shown or inside the field's contest), no
//! superseded value is, and replicas holding the same changes show the
//! same NC.
//!
//! The model knows nothing of Automerge: it tracks which writes each
//! tablet has seen, and a write supersedes exactly the writes to its field
//! that its tablet had seen.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sync_core::edit::{Edit, apply_edit};
use sync_core::ids::ItemId;
use sync_core::nc::{Action, Nc};
use sync_core::testing::contest::{Tablet, Writes, sync, sync_all};
use sync_core::testing::fixtures::{Demo, actor};
use sync_core::workflow::NcState;

/// The fields written: three texts and one action.
const FIELDS: [&str; 4] = ["correction", "root_cause", "actions/a-1", "description"];

#[derive(Clone, Debug)]
enum Op {
    /// Tablet `device` writes field `field` of those its person may write.
    Write {
        device: usize,
        field: usize,
    },
    Sync {
        to: usize,
        from: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..4usize, 0..3usize).prop_map(|(device, field)| Op::Write { device, field }),
        4 => (0..4usize, 0..4usize).prop_map(|(to, from)| Op::Sync { to, from }),
    ]
}

fn action_id() -> ItemId {
    "a-1".parse().expect("an id")
}

/// The field tablet `device` writes for choice `field`: the owner's two
/// tablets write the correction, root cause or action, the auditors the
/// description.
fn field_of(device: usize, field: usize) -> usize {
    if device < 2 { field } else { 3 }
}

fn edit_of(field: usize, text: String) -> Edit {
    match FIELDS[field] {
        "correction" => Edit::SetCorrection(text),
        "root_cause" => Edit::SetRootCause(text),
        "description" => Edit::SetDescription(text),
        _ => Edit::PutAction {
            id: action_id(),
            action: Action {
                text,
                owner: "Supdt Div-II".into(),
                target: "2026-02-15".parse().expect("a date"),
                done_on: None,
            },
        },
    }
}

/// The values of field `f` the NC shows: every concurrent value if
/// contested, else the one value.
fn shown(nc: &Nc, f: usize) -> BTreeSet<String> {
    let field = FIELDS[f];
    if field.starts_with("actions/") {
        return match nc.contested_actions.get(&action_id()) {
            Some(versions) => versions.iter().map(|v| v.action.text.clone()).collect(),
            None => nc
                .actions
                .get(&action_id())
                .map(|a| a.text.clone())
                .into_iter()
                .collect(),
        };
    }
    match nc.contested_text.get(field) {
        Some(values) => values.iter().map(|v| v.value.clone()).collect(),
        None => [match field {
            "correction" => nc.correction.clone(),
            "root_cause" => nc.root_cause.clone(),
            _ => nc.description.clone(),
        }]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect(),
    }
}

fn history(ops: Vec<Op>) -> Result<usize, TestCaseError> {
    let demo = Demo::new();
    let mut owner = demo.owner.clone();
    owner.actors.insert(actor(6));
    let start = demo.nc_in(NcState::Open);
    let first = Nc::read(&start).expect("reads");
    // What every tablet starts from: one write per field (an empty text
    // shows nothing), seen by all.
    let mut writes: Writes<usize> = Writes::default();
    let mut origin = Tablet {
        doc: start.clone(),
        author: demo.owner.clone(),
        seen: BTreeSet::new(),
    };
    for (f, value) in [
        first.correction.clone(),
        first.root_cause.clone(),
        first.actions[&action_id()].text.clone(),
        first.description.clone(),
    ]
    .into_iter()
    .enumerate()
    {
        writes.record(&mut origin, f, Some(value).filter(|v| !v.is_empty()));
    }
    let all = origin.seen;
    let mut tablets: Vec<Tablet> = [
        (owner.clone(), 3),
        (owner, 6),
        (demo.lead.clone(), 1),
        (demo.member.clone(), 2),
    ]
    .into_iter()
    .map(|(author, a)| {
        let mut doc = start.clone();
        doc.set_actor(actor(a));
        Tablet {
            doc,
            author,
            seen: all.clone(),
        }
    })
    .collect();
    let mut contests = 0;
    for op in ops {
        let touched = match op {
            Op::Write { device, field } => {
                let f = field_of(device, field);
                let id = writes.next_id();
                let value = format!("w{id}");
                let t = &mut tablets[device];
                apply_edit(
                    demo.nc_id,
                    &mut t.doc,
                    &edit_of(f, value.clone()),
                    &t.author,
                    demo.now(),
                )
                .map_err(|e| TestCaseError::fail(format!("{} refused: {e}", FIELDS[f])))?;
                writes.record(t, f, Some(value));
                device
            }
            Op::Sync { to, from } => {
                if to == from {
                    continue;
                }
                sync(&mut tablets, to, from);
                to
            }
        };
        let t = &tablets[touched];
        let nc = Nc::read(&t.doc).expect("reads");
        contests += usize::from(!nc.contested_text.is_empty() || !nc.contested_actions.is_empty());
        for (f, name) in FIELDS.iter().enumerate() {
            prop_assert_eq!(
                shown(&nc, f),
                writes.in_force(t, f),
                "{} on tablet {}",
                name,
                touched
            );
        }
    }
    sync_all(&mut tablets);
    let ncs: Vec<Nc> = tablets
        .iter()
        .map(|t| Nc::read(&t.doc).expect("reads"))
        .collect();
    for nc in &ncs[1..] {
        prop_assert_eq!(nc, &ncs[0]);
    }
    for f in 0..FIELDS.len() {
        prop_assert_eq!(shown(&ncs[0], f), writes.in_force(&tablets[0], f));
    }
    Ok(contests)
}

/// The property over 1,000 random histories, which must reach contests often.
#[test]
fn no_value_of_an_nc_is_hidden_unless_someone_who_saw_it_replaced_it() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    });
    let totals = std::cell::RefCell::new((0usize, 0usize));
    runner
        .run(&prop::collection::vec(op(), 1..30), |ops| {
            let contests = history(ops)?;
            let mut t = totals.borrow_mut();
            t.0 += 1;
            t.1 += usize::from(contests > 0);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (cases, contested) = totals.into_inner();
    eprintln!("{contested} of {cases} histories showed a contest");
    assert!(
        contested * 4 >= cases,
        "only {contested} of {cases} histories reached a contest"
    );
}
