//! Convergence under an unreliable network: 3–5 devices edit offline
//! (checklist answers, findings, NC moves including concurrent moves on the
//! same NC, audit locks), the network drops, duplicates, delays and reorders,
//! devices come and go; then everyone reconnects. Every replica must end with
//! the same heads and the same derived state, within a bounded number of
//! rounds, and nothing a device's user made may be refused or lost.

use proptest::prelude::*;
use sync_core::edit::Edit;
use sync_core::nc::DueKind;
use sync_core::permissions::{Author, TeamRole};
use sync_core::testing::fixtures::{Demo, actor};
use sync_core::testing::sim::{NetConfig, Sim, derived};
use sync_core::workflow::NcState;

/// Rounds (10 ms each) allowed for the final convergence after everyone reconnects.
const MAX_ROUNDS: usize = 400;

/// Rounds (more than one retry period) after which a converged, idle network must send nothing more.
const QUIET_AFTER_ROUNDS: usize = 60;

#[derive(Clone, Debug)]
enum Op {
    Answer {
        device: usize,
        item: u8,
        variant: u8,
    },
    Finding {
        device: usize,
        n: u8,
    },
    NcMove {
        device: usize,
        mv: u8,
    },
    AuditMove {
        device: usize,
        mv: u8,
    },
    RootCause {
        n: u8,
    },
    Extend {
        days: u8,
    },
    Toggle {
        device: usize,
    },
    Steps {
        n: u8,
    },
}

const NC_MOVES: [&str; 7] = [
    "submit_response",
    "accept_plan",
    "reject_plan",
    "mark_implemented",
    "verify_effective",
    "verify_not_effective",
    "reopen",
];
const AUDIT_MOVES: [&str; 4] = [
    "start",
    "submit_for_review",
    "return_for_edit",
    "accept_late_edits",
];

fn op() -> impl Strategy<Value = Op> {
    let d = 0usize..5;
    prop_oneof![
        4 => (d.clone(), 0u8..12, 0u8..3).prop_map(|(device, item, variant)| Op::Answer { device, item, variant }),
        2 => (d.clone(), 0u8..6).prop_map(|(device, n)| Op::Finding { device, n }),
        4 => (d.clone(), 0u8..7).prop_map(|(device, mv)| Op::NcMove { device, mv }),
        1 => (d.clone(), 0u8..4).prop_map(|(device, mv)| Op::AuditMove { device, mv }),
        1 => (0u8..4).prop_map(|n| Op::RootCause { n }),
        1 => (1u8..60).prop_map(|days| Op::Extend { days }),
        2 => d.prop_map(|device| Op::Toggle { device }),
        3 => (1u8..20).prop_map(|n| Op::Steps { n }),
    ]
}

/// Devices: 0 lead auditor, 1 auditor, 2 process owner, 3 nodal officer, 4 a second auditor.
fn authors(demo: &Demo, n: usize) -> Vec<Author> {
    let mut second = demo.outsider.clone();
    second.audits.insert(demo.audit_id, TeamRole::Member);
    second.actors = [actor(5)].into();
    [
        demo.lead.clone(),
        demo.member.clone(),
        demo.owner.clone(),
        demo.nodal.clone(),
        second,
    ]
    .into_iter()
    .take(n)
    .collect()
}

fn run(
    seed: u64,
    devices: usize,
    drop: f64,
    duplicate: f64,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let demo = Demo::new();
    let audit = demo.realistic_audit(3, 1);
    let nc = demo.nc_in(NcState::Open);
    let net = NetConfig {
        drop,
        duplicate,
        max_delay_ms: 40,
    };
    let mut sim = Sim::new(
        seed,
        NetConfig::RELIABLE,
        demo.today,
        authors(&demo, devices),
        vec![(demo.audit_id, audit), (demo.nc_id, nc)],
    );
    for i in 0..devices {
        sim.set_online(i, true);
    }
    prop_assert!(
        sim.run_until_converged(MAX_ROUNDS).is_some(),
        "initial download did not converge"
    );
    sim.net = net;
    for op in ops {
        // A move or edit the local rules refuse is simply not offered by the UI: skip it.
        let _ = match op {
            Op::Answer {
                device,
                item,
                variant,
            } if device < devices => sim.edit(
                device,
                demo.audit_id,
                &demo.answer(item as usize, variant as usize),
            ),
            Op::Finding { device, n } if device < devices => {
                sim.edit(device, demo.audit_id, &demo.finding(n as usize))
            }
            Op::NcMove { device, mv } if device < devices => sim.edit(
                device,
                demo.nc_id,
                &Edit::Move {
                    mv: NC_MOVES[mv as usize].into(),
                    note: format!("by device {device}"),
                },
            ),
            Op::AuditMove { device, mv } if device < devices => sim.edit(
                device,
                demo.audit_id,
                &Edit::Move {
                    mv: AUDIT_MOVES[mv as usize].into(),
                    note: "lead's decision".into(),
                },
            ),
            Op::RootCause { n } if devices > 2 => sim.edit(
                2,
                demo.nc_id,
                &Edit::SetRootCause(format!("Root cause, take {n}")),
            ),
            Op::Extend { days } if devices > 3 => sim.edit(
                3,
                demo.nc_id,
                &Edit::Extend {
                    of: DueKind::Response,
                    due: demo.today.add_days(days as i32),
                    justification: "Staff on leave".into(),
                },
            ),
            Op::Toggle { device } if device < devices => {
                let online = sim.devices[device].online;
                sim.set_online(device, !online);
                Ok(())
            }
            Op::Steps { n } => {
                for _ in 0..n {
                    sim.step();
                }
                Ok(())
            }
            _ => Ok(()),
        };
    }
    // Everyone reconnects; the network still delays, reorders and duplicates, but stops losing.
    sim.net = NetConfig { drop: 0.0, ..net };
    for i in 0..devices {
        sim.set_online(i, true);
    }
    let rounds = sim.run_until_converged(MAX_ROUNDS);
    prop_assert!(
        rounds.is_some(),
        "no convergence within {} rounds",
        MAX_ROUNDS
    );
    prop_assert!(
        sim.quarantined.is_empty(),
        "a locally permitted edit was refused: {:?}",
        sim.quarantined.first()
    );
    // Once converged, an idle network goes quiet: retries stop once every peer
    // has heard that the other has everything (no endless resending).
    for _ in 0..QUIET_AFTER_ROUNDS {
        sim.step();
    }
    let sent = sim.sent;
    for _ in 0..QUIET_AFTER_ROUNDS {
        sim.step();
    }
    prop_assert_eq!(
        sim.sent,
        sent,
        "messages still flow on an idle, converged network"
    );
    let heads = sim.heads();
    for (i, h) in heads.iter().enumerate().skip(1) {
        for (doc, dh) in h {
            prop_assert_eq!(
                Some(dh),
                heads[0].get(doc),
                "device {} heads differ from the server's",
                i - 1
            );
        }
    }
    for id in [demo.audit_id, demo.nc_id] {
        let server = derived(sim.server.doc(&id).expect("server has it"), demo.today);
        prop_assert!(!server.starts_with("unreadable"), "{}", server);
        for d in &sim.devices {
            if let Some(doc) = d.engine.doc(&id) {
                prop_assert_eq!(&derived(doc, demo.today), &server);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn offline_edits_over_a_lossy_network_converge_to_one_state(
        seed in any::<u64>(),
        devices in 3usize..=5,
        drop in 0.0f64..0.3,
        duplicate in 0.0f64..0.2,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run(seed, devices, drop, duplicate, ops)?;
    }
}

#[test]
fn concurrent_moves_on_one_nc_keep_both_events_and_flag_the_loser() {
    let demo = Demo::new();
    let nc = demo.nc_in(NcState::ResponseSubmitted);
    let mut sim = Sim::new(
        7,
        NetConfig::RELIABLE,
        demo.today,
        authors(&demo, 5),
        vec![(demo.nc_id, nc)],
    );
    for i in 0..5 {
        sim.set_online(i, true);
    }
    assert!(sim.run_until_converged(MAX_ROUNDS).is_some());
    sim.set_online(0, false);
    sim.set_online(1, false);
    sim.edit(
        0,
        demo.nc_id,
        &Edit::Move {
            mv: "accept_plan".into(),
            note: String::new(),
        },
    )
    .expect("lead accepts");
    sim.edit(
        1,
        demo.nc_id,
        &Edit::Move {
            mv: "reject_plan".into(),
            note: "Actions too vague".into(),
        },
    )
    .expect("member rejects");
    sim.set_online(0, true);
    sim.set_online(1, true);
    assert!(sim.run_until_converged(MAX_ROUNDS).is_some());
    let nc = sync_core::nc::Nc::read(sim.server.doc(&demo.nc_id).expect("held")).expect("readable");
    let view = nc.view(&Default::default(), demo.today);
    assert_eq!(
        nc.events
            .iter()
            .filter(|e| e.from == "response_submitted")
            .count(),
        2,
        "both moves kept"
    );
    assert_eq!(view.conflicts.len(), 1, "exactly one move conflicts");
    assert!(matches!(view.state, NcState::PlanAccepted | NcState::Open));
    for d in &sim.devices {
        assert_eq!(
            derived(d.engine.doc(&demo.nc_id).expect("held"), demo.today),
            derived(sim.server.doc(&demo.nc_id).expect("held"), demo.today)
        );
    }
}

#[test]
fn a_late_edit_to_a_locked_audit_is_kept_and_flagged_not_applied() {
    let demo = Demo::new();
    let audit = demo.realistic_audit(3, 1);
    let mut sim = Sim::new(
        11,
        NetConfig::RELIABLE,
        demo.today,
        authors(&demo, 2),
        vec![(demo.audit_id, audit)],
    );
    sim.set_online(0, true);
    sim.set_online(1, true);
    assert!(sim.run_until_converged(MAX_ROUNDS).is_some());
    sim.set_online(1, false);
    sim.edit(
        0,
        demo.audit_id,
        &Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
    )
    .expect("start");
    sim.edit(
        0,
        demo.audit_id,
        &Edit::Move {
            mv: "submit_for_review".into(),
            note: String::new(),
        },
    )
    .expect("lock");
    // The auditor, offline, still answers an item.
    sim.edit(1, demo.audit_id, &demo.answer(40, 2))
        .expect("offline answer");
    sim.set_online(1, true);
    assert!(sim.run_until_converged(MAX_ROUNDS).is_some());
    let view = sync_core::audit::AuditView::read(sim.server.doc(&demo.audit_id).expect("held"))
        .expect("readable");
    assert!(view.state.is_locked());
    assert_eq!(view.late_edits.len(), 1, "{:?}", view.late_edits);
    let key = "sd.item_13@P03".parse().expect("key");
    assert!(
        !view.content.responses.contains_key(&key),
        "late edit applied"
    );
    // The lead accepts: the edit now counts.
    sim.edit(
        0,
        demo.audit_id,
        &Edit::Move {
            mv: "accept_late_edits".into(),
            note: String::new(),
        },
    )
    .expect("accept");
    assert!(sim.run_until_converged(MAX_ROUNDS).is_some());
    let view = sync_core::audit::AuditView::read(sim.server.doc(&demo.audit_id).expect("held"))
        .expect("readable");
    assert!(view.late_edits.is_empty());
    assert!(view.content.responses.contains_key(&key));
}
