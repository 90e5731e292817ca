//! What happens to refused changes: the server keeps the permitted part of a
//! batch and quarantines the rest; the device takes the refused changes out,
//! makes its user's still-permitted edits again under a fresh actor id, and
//! lists what stays refused. Also the engine's per-connection limits, and
//! documents kept cold (saved, not loaded) while their peers are in sync.

use std::collections::BTreeSet;

use sync_core::automerge::ReadDoc;
use sync_core::automerge::sync::SyncDoc;
use sync_core::automerge::transaction::Transactable;
use sync_core::automerge::{ActorId, AutoCommit, Automerge, ROOT, sync};
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, Limits, Notice, PeerId, Side};
use sync_core::envelope::{Body, Envelope, ErrorCode};
use sync_core::permissions::Author;
use sync_core::testing::fixtures::{Demo, actor};

const DEVICE: PeerId = 7;
const SERVER: PeerId = 0;

/// A server and one device, carrying frames between them by hand.
struct Pair {
    server: Engine,
    device: Engine,
    quarantined: Vec<Effect>,
    rejected: Vec<Notice>,
    errors: Vec<String>,
    demo: Demo,
}

impl Pair {
    fn new(
        server_author: Author,
        device_actor: ActorId,
        docs: Vec<(sync_core::ids::DocumentId, Automerge)>,
    ) -> Pair {
        Pair::with_limits(server_author, device_actor, docs, Limits::default())
    }

    fn with_limits(
        server_author: Author,
        device_actor: ActorId,
        docs: Vec<(sync_core::ids::DocumentId, Automerge)>,
        limits: Limits,
    ) -> Pair {
        let mut server = Engine::with_limits(Side::Server, limits);
        let ids: Vec<_> = docs.iter().map(|(id, _)| *id).collect();
        for (id, doc) in docs {
            server.insert(id, doc);
        }
        let device = Engine::new(Side::Device(device_actor));
        Pair::connect(server, device, Demo::new(), server_author, Vec::new(), ids)
    }

    /// Connects a server and a device holding what they hold, the device
    /// sharing `device_docs` and the server `server_docs`, and carries the
    /// first exchange through.
    fn connect(
        server: Engine,
        device: Engine,
        demo: Demo,
        server_author: Author,
        device_docs: Vec<sync_core::ids::DocumentId>,
        server_docs: Vec<sync_core::ids::DocumentId>,
    ) -> Pair {
        let mut pair = Pair {
            server,
            device,
            quarantined: Vec::new(),
            rejected: Vec::new(),
            errors: Vec::new(),
            demo,
        };
        let now = pair.demo.now();
        let to_server = pair.device.handle(
            now,
            Input::Connected {
                peer: SERVER,
                author: None,
                docs: device_docs,
            },
        );
        let to_device = pair.server.handle(
            now,
            Input::Connected {
                peer: DEVICE,
                author: Some(server_author),
                docs: server_docs,
            },
        );
        pair.pump(to_server, to_device);
        pair
    }

    /// Carries out both sides' effects until nothing moves.
    fn pump(&mut self, mut from_device: Vec<Effect>, mut from_server: Vec<Effect>) {
        let now = self.demo.now();
        for _ in 0..200 {
            if from_device.is_empty() && from_server.is_empty() {
                return;
            }
            let mut next_device = Vec::new();
            let mut next_server = Vec::new();
            for e in from_device {
                match e {
                    Effect::Send { bytes, .. } => next_server.extend(self.server.handle(
                        now,
                        Input::Received {
                            peer: DEVICE,
                            bytes,
                        },
                    )),
                    Effect::Store { ticket, .. } | Effect::Replace { ticket, .. } => {
                        next_device.extend(self.device.handle(now, Input::Stored { ticket }))
                    }
                    Effect::Notify(n @ Notice::Rejected { .. }) => self.rejected.push(n),
                    _ => {}
                }
            }
            for e in from_server {
                match e {
                    Effect::Send { bytes, .. } => next_device.extend(self.device.handle(
                        now,
                        Input::Received {
                            peer: SERVER,
                            bytes,
                        },
                    )),
                    Effect::Store { ticket, .. } | Effect::Replace { ticket, .. } => {
                        next_server.extend(self.server.handle(now, Input::Stored { ticket }))
                    }
                    q @ Effect::Quarantine { ticket, .. } => {
                        next_server.extend(self.server.handle(now, Input::Stored { ticket }));
                        self.quarantined.push(q);
                    }
                    Effect::Notify(Notice::PeerError { message, .. }) => self.errors.push(message),
                    Effect::Notify(_) => {}
                }
            }
            from_device = next_device;
            from_server = next_server;
        }
        panic!("the pair never stopped talking");
    }

    fn tick(&mut self, ms: i64) {
        let now = sync_core::date::Timestamp(self.demo.now().0 + ms);
        let d = self.device.handle(now, Input::Tick);
        let s = self.server.handle(now, Input::Tick);
        self.pump(d, s);
    }
}

fn heads(doc: &Automerge) -> Vec<sync_core::automerge::ChangeHash> {
    let mut h = doc.get_heads();
    h.sort();
    h
}

#[test]
fn the_server_keeps_the_permitted_part_of_a_refused_batch() {
    let demo = Demo::new();
    let mut pair = Pair::new(
        demo.member.clone(),
        actor(2),
        vec![(demo.audit_id, demo.audit())],
    );
    assert!(
        pair.device.doc(&demo.audit_id).is_some(),
        "the device downloaded the audit"
    );
    // Offline: two answers, then a start of the audit (the lead's alone: the
    // tablet wrongly believes its user leads), then one more answer built on it.
    pair.device
        .handle(demo.now(), Input::Disconnected { peer: SERVER });
    let mut believed = demo.member.clone();
    believed
        .audits
        .insert(demo.audit_id, sync_core::permissions::TeamRole::Lead);
    let now = demo.now();
    let mut made = Vec::new();
    for edit in [
        demo.answer(0, 0),
        demo.answer(1, 1),
        Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
        demo.answer(2, 1),
    ] {
        let fx = pair
            .device
            .edit(now, demo.audit_id, &edit, &believed)
            .expect("local edit");
        made.push(
            pair.device
                .unacknowledged(&demo.audit_id)
                .last()
                .map(|e| e.hash),
        );
        pair.pump(fx, Vec::new());
    }
    let fx = pair.device.handle(
        now,
        Input::Connected {
            peer: SERVER,
            author: None,
            docs: vec![demo.audit_id],
        },
    );
    pair.pump(fx, Vec::new());
    // The two answers land; the start and the answer built on it are kept aside.
    let server = pair.server.doc(&demo.audit_id).expect("held");
    for hash in made[..2].iter().flatten() {
        assert!(
            server.get_change_meta_by_hash(hash).is_some(),
            "a permitted answer was not kept"
        );
    }
    for hash in made[2..].iter().flatten() {
        assert!(
            server.get_change_meta_by_hash(hash).is_none(),
            "a refused change was applied"
        );
    }
    let [Effect::Quarantine { rule, changes, .. }] = pair.quarantined.as_slice() else {
        panic!("one quarantine expected: {:?}", pair.quarantined);
    };
    assert_eq!((rule.as_str(), changes.len()), ("move.who", 2));
    assert!(
        matches!(pair.rejected.as_slice(), [Notice::Rejected { changes, .. }] if changes.len() == 2),
        "the device was told of both: {:?}",
        pair.rejected
    );
}

#[test]
fn a_refused_edit_is_taken_out_and_the_later_permitted_edits_land_under_a_fresh_actor() {
    let demo = Demo::new();
    // The NC in the open state; the device's user believes he owns process P03.
    let nc = demo.nc_in(sync_core::workflow::NcState::Open);
    let mut believed = demo.member.clone();
    believed
        .processes
        .insert((demo.unit.clone(), "P03".parse().expect("code")));
    believed.grants.push(sync_core::permissions::RoleGrant {
        unit: demo.unit.clone(),
        role: sync_core::permissions::Role::ProcessOwner,
        from: "2025-04-01".parse().expect("date"),
        until: None,
    });
    let mut pair = Pair::new(demo.member.clone(), actor(2), vec![(demo.nc_id, nc)]);
    pair.device
        .handle(demo.now(), Input::Disconnected { peer: SERVER });
    let now = demo.now();
    // A permitted edit, then one the server refuses (owner field), then one built on it.
    for edit in [
        Edit::SetDescription("Refund files lack a retention period.".into()),
        Edit::SetRootCause("Not the member's to write".into()),
        Edit::SetDescription("Refund files (2019 onwards) lack a retention period.".into()),
    ] {
        let fx = pair
            .device
            .edit(now, demo.nc_id, &edit, &believed)
            .expect("local edit");
        pair.pump(fx, Vec::new());
    }
    assert_eq!(pair.device.unacknowledged(&demo.nc_id).len(), 3);
    let fx = pair.device.handle(
        now,
        Input::Connected {
            peer: SERVER,
            author: None,
            docs: vec![demo.nc_id],
        },
    );
    pair.pump(fx, Vec::new());
    // The server took the first edit and refused the second and the third (built on it).
    assert_eq!(pair.quarantined.len(), 1, "{:?}", pair.quarantined);
    let Some(Effect::Quarantine { rule, changes, .. }) = pair.quarantined.first() else {
        unreachable!()
    };
    assert_eq!(rule, "nc.owner_fields");
    assert_eq!(changes.len(), 2);
    let Some(Notice::Rejected {
        changes: refused,
        rule,
        message,
        ..
    }) = pair.rejected.first().cloned()
    else {
        panic!("the device was not told: {:?}", pair.rejected);
    };
    let server_doc = pair.server.doc(&demo.nc_id).cloned().expect("server doc");
    let server_nc = sync_core::nc::Nc::read(&server_doc).expect("reads");
    assert_eq!(
        server_nc.description,
        "Refund files lack a retention period."
    );
    assert_ne!(server_nc.root_cause, "Not the member's to write");

    // The device recovers under a fresh actor, with its rights as the server knows them.
    let fresh = actor(22);
    let mut actual = demo.member.clone();
    actual.actors.insert(fresh.clone());
    pair.server.handle(
        now,
        Input::Reauthor {
            peer: DEVICE,
            author: actual.clone(),
        },
    );
    let refusal = sync_core::permissions::Refusal {
        rule: "nc.owner_fields",
        message,
    };
    assert_eq!(rule, "nc.owner_fields");
    let recovery = pair
        .device
        .recover(demo.nc_id, &refused, &refusal, fresh.clone(), &actual)
        .expect("recovers");
    assert_eq!(recovery.removed, 2);
    assert_eq!(
        recovery.replayed, 1,
        "the later description edit is made again"
    );
    assert_eq!(recovery.refused.len(), 1, "the root cause stays refused");
    assert_eq!(
        recovery.refused[0].edit,
        Some(Edit::SetRootCause("Not the member's to write".into()))
    );
    assert_eq!(recovery.refused[0].rule, "nc.owner_fields");
    assert_eq!(pair.device.refused_edits().len(), 1, "the user can see it");
    pair.pump(recovery.effects, Vec::new());
    pair.tick(1000);
    let d = pair.device.doc(&demo.nc_id).cloned().expect("device doc");
    assert_eq!(
        heads(&d),
        pair.server.doc(&demo.nc_id).map(heads).unwrap_or_default(),
        "converged"
    );
    let nc = sync_core::nc::Nc::read(&d).expect("reads");
    assert_eq!(
        nc.description,
        "Refund files (2019 onwards) lack a retention period."
    );
    assert_ne!(nc.root_cause, "Not the member's to write");
    assert_eq!(pair.quarantined.len(), 1, "the replayed edit was accepted");
    let actors: BTreeSet<ActorId> = d
        .get_changes(&[])
        .iter()
        .map(|c| c.actor_id().clone())
        .collect();
    assert!(
        actors.contains(&fresh),
        "the replay is under the fresh actor"
    );
    assert!(pair.device.unacknowledged(&demo.nc_id).is_empty());
}

#[test]
fn an_edit_refused_twice_is_not_made_a_third_time() {
    let demo = Demo::new();
    let nc = demo.nc_in(sync_core::workflow::NcState::Open);
    let mut believed = demo.member.clone();
    believed
        .processes
        .insert((demo.unit.clone(), "P03".parse().expect("code")));
    believed.grants.push(sync_core::permissions::RoleGrant {
        unit: demo.unit.clone(),
        role: sync_core::permissions::Role::ProcessOwner,
        from: "2025-04-01".parse().expect("date"),
        until: None,
    });
    let mut pair = Pair::new(demo.member.clone(), actor(2), vec![(demo.nc_id, nc)]);
    let now = demo.now();
    let fx = pair
        .device
        .edit(
            now,
            demo.nc_id,
            &Edit::SetRootCause("mine".into()),
            &believed,
        )
        .expect("local edit");
    pair.pump(fx, Vec::new());
    for (round, fresh) in [(0usize, actor(31)), (1, actor(32))] {
        let Some(Notice::Rejected {
            changes, message, ..
        }) = pair.rejected.get(round).cloned()
        else {
            panic!("round {round}: no rejection: {:?}", pair.rejected);
        };
        // The device still believes itself the owner: it tries again once.
        let mut b = believed.clone();
        b.actors.insert(fresh.clone());
        let mut server_side = demo.member.clone();
        server_side.actors.insert(fresh.clone());
        pair.server.handle(
            now,
            Input::Reauthor {
                peer: DEVICE,
                author: server_side,
            },
        );
        let refusal = sync_core::permissions::Refusal {
            rule: "nc.owner_fields",
            message,
        };
        let r = pair
            .device
            .recover(demo.nc_id, &changes, &refusal, fresh, &b)
            .expect("recovers");
        assert_eq!(
            (r.replayed, r.refused.len()),
            if round == 0 { (1, 0) } else { (0, 1) },
            "round {round}"
        );
        pair.pump(r.effects, Vec::new());
    }
    assert_eq!(pair.rejected.len(), 2, "no third attempt");
    assert_eq!(pair.device.refused_edits().len(), 1);
}

/// A sync message for `doc` carrying `changes` (bytes), as a device would send it.
fn frame(doc: sync_core::ids::DocumentId, changes: Vec<Vec<u8>>) -> Vec<u8> {
    let msg = sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: changes.into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    Envelope {
        doc,
        body: Body::Sync(msg.encode()),
    }
    .encode()
    .expect("encodes")
}

fn errors_of(fx: &[Effect]) -> Vec<(ErrorCode, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { bytes, .. } => match Envelope::decode(bytes) {
                Ok(Envelope {
                    body: Body::Error { code, message },
                    ..
                }) => Some((code, message)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn changes_that_inflate_past_the_limit_are_refused_and_just_under_are_read() {
    let demo = Demo::new();
    let mut doc = AutoCommit::new().with_actor(actor(2));
    doc.put(ROOT, "big", "x".repeat(200_000)).expect("put");
    let change = doc
        .get_last_local_change()
        .expect("a change")
        .bytes()
        .to_vec();
    let inflated = sync_core::inflate::measure(
        &change,
        sync_core::inflate::Bounds {
            budget: usize::MAX,
            ops: u64::MAX,
            ops_per_change: u64::MAX,
        },
    )
    .expect("measures")
    .cost();
    assert!(change.len() * 20 < inflated, "the change is compressed");
    for (budget, refused) in [(inflated - 1, true), (inflated, false)] {
        let limits = Limits {
            max_inflated_bytes: budget,
            ..Limits::default()
        };
        let mut server = Engine::with_limits(Side::Server, limits);
        server.handle(
            demo.now(),
            Input::Connected {
                peer: DEVICE,
                author: Some(demo.member.clone()),
                docs: Vec::new(),
            },
        );
        let fx = server.handle(
            demo.now(),
            Input::Received {
                peer: DEVICE,
                bytes: frame(demo.audit_id, vec![change.clone()]),
            },
        );
        let errors = errors_of(&fx);
        let over = errors
            .iter()
            .any(|(c, m)| *c == ErrorCode::LimitExceeded && m.contains("decompressed"));
        assert_eq!(over, refused, "budget {budget}: {errors:?}");
    }
}

#[test]
fn a_flood_of_changes_with_missing_dependencies_never_holds_more_than_the_limit() {
    let demo = Demo::new();
    let limit = 50;
    let limits = Limits {
        max_pending_per_peer: limit,
        ..Limits::default()
    };
    let mut server = Engine::with_limits(Side::Server, limits);
    server.insert(demo.audit_id, demo.audit());
    server.insert(demo.nc_id, demo.nc());
    server.handle(
        demo.now(),
        Input::Connected {
            peer: DEVICE,
            author: Some(demo.member.clone()),
            docs: vec![demo.audit_id, demo.nc_id],
        },
    );
    // Chains of changes whose first link is never sent.
    let mut salt = 0;
    let mut chain = |n: usize| -> Vec<Vec<u8>> {
        salt += 1;
        let mut doc = AutoCommit::new().with_actor(actor(2));
        (0..=n)
            .map(|i| {
                doc.put(ROOT, "k", (salt * 1000 + i) as i64).expect("put");
                doc.get_last_local_change()
                    .expect("change")
                    .raw_bytes()
                    .to_vec()
            })
            .skip(1)
            .collect()
    };
    // Just under: 49 held across two documents is fine.
    let fx = server.handle(
        demo.now(),
        Input::Received {
            peer: DEVICE,
            bytes: frame(demo.audit_id, chain(30)),
        },
    );
    assert!(errors_of(&fx).is_empty(), "{:?}", errors_of(&fx));
    let fx = server.handle(
        demo.now(),
        Input::Received {
            peer: DEVICE,
            bytes: frame(demo.nc_id, chain(19)),
        },
    );
    assert!(errors_of(&fx).is_empty(), "{:?}", errors_of(&fx));
    assert_eq!(server.pending_changes(), 49);
    // Over: the flood is dropped from memory and the peer told.
    for _ in 0..20 {
        let fx = server.handle(
            demo.now(),
            Input::Received {
                peer: DEVICE,
                bytes: frame(demo.nc_id, chain(40)),
            },
        );
        assert!(
            server.pending_changes() <= limit,
            "{} held",
            server.pending_changes()
        );
        let _ = fx;
    }
    let fx = server.handle(
        demo.now(),
        Input::Received {
            peer: DEVICE,
            bytes: frame(demo.nc_id, chain(2)),
        },
    );
    let _ = fx;
    let fx = server.handle(
        demo.now(),
        Input::Received {
            peer: DEVICE,
            bytes: frame(demo.audit_id, chain(25)),
        },
    );
    assert!(
        errors_of(&fx)
            .iter()
            .any(|(c, _)| *c == ErrorCode::LimitExceeded),
        "{:?}",
        errors_of(&fx)
    );
    assert!(server.pending_changes() <= limit);
}

#[test]
fn a_connection_opens_at_most_its_limit_of_documents() {
    let demo = Demo::new();
    let limits = Limits {
        max_docs_per_peer: 2,
        ..Limits::default()
    };
    let mut server = Engine::with_limits(Side::Server, limits);
    server.handle(
        demo.now(),
        Input::Connected {
            peer: DEVICE,
            author: Some(demo.lead.clone()),
            docs: Vec::new(),
        },
    );
    let ids: Vec<_> = (0..3u8)
        .map(|i| sync_core::ids::DocumentId::new_v7(1_768_262_400_000, [i + 40; 10]))
        .collect();
    let mut opened = 0;
    for (i, id) in ids.iter().enumerate() {
        let mut doc = AutoCommit::new().with_actor(actor(1));
        doc.put(ROOT, "k", 1).expect("put");
        let change = doc
            .get_last_local_change()
            .expect("change")
            .raw_bytes()
            .to_vec();
        let fx = server.handle(
            demo.now(),
            Input::Received {
                peer: DEVICE,
                bytes: frame(*id, vec![change]),
            },
        );
        let limited = errors_of(&fx)
            .iter()
            .any(|(c, m)| *c == ErrorCode::LimitExceeded && m.contains("documents open"));
        assert_eq!(limited, i >= 2, "document {i}: {:?}", errors_of(&fx));
        if server.is_shared(DEVICE, id) {
            opened += 1;
        }
    }
    assert_eq!(opened, 2);
}

#[test]
fn an_idle_document_can_be_evicted_and_a_shared_one_cannot() {
    let demo = Demo::new();
    let mut server = Engine::new(Side::Server);
    server.insert(demo.audit_id, demo.audit());
    server.insert(demo.nc_id, demo.nc());
    server.handle(
        demo.now(),
        Input::Connected {
            peer: DEVICE,
            author: Some(demo.lead.clone()),
            docs: vec![demo.audit_id],
        },
    );
    assert!(!server.evict(&demo.audit_id), "shared with a connection");
    assert!(server.evict(&demo.nc_id));
    assert!(server.doc(&demo.nc_id).is_none());
    server.handle(demo.now(), Input::Disconnected { peer: DEVICE });
    assert!(server.evict(&demo.audit_id));
}

/// Whether the effects hold a sync message or a store for `doc`.
fn speaks_of(fx: &[Effect], doc: sync_core::ids::DocumentId) -> bool {
    fx.iter().any(|e| match e {
        Effect::Send { bytes, .. } => Envelope::decode(bytes).is_ok_and(|env| env.doc == doc),
        Effect::Store { doc: d, .. } => *d == doc,
        _ => false,
    })
}

#[test]
fn a_document_in_sync_goes_cold_and_the_next_edit_carries_on_from_where_sync_left_off() {
    let demo = Demo::new();
    let mut pair = Pair::new(
        demo.member.clone(),
        actor(2),
        vec![(demo.audit_id, demo.audit())],
    );
    let synced = pair.server.doc(&demo.audit_id).map(heads);
    assert!(
        pair.server.cool(&demo.audit_id),
        "in sync with its one peer"
    );
    assert!(pair.server.doc(&demo.audit_id).is_none(), "not loaded");
    assert!(pair.server.holds(&demo.audit_id) && pair.server.is_cold(&demo.audit_id));
    assert!(pair.server.in_sync(DEVICE, &demo.audit_id));
    assert_eq!(pair.server.doc_peers(&demo.audit_id), vec![DEVICE]);
    assert_eq!(pair.server.cold_count(), 1);
    assert!(
        !pair.server.evict(&demo.audit_id),
        "cold is still shared: not evicted"
    );
    // Time passes: a cold document has nothing to resend.
    let fx = pair.server.handle(demo.now(), Input::Tick);
    assert!(!speaks_of(&fx, demo.audit_id));
    assert!(pair.server.is_cold(&demo.audit_id));

    // The device edits: the server loads it again, stores and acknowledges.
    let fx = pair
        .device
        .edit(demo.now(), demo.audit_id, &demo.answer(3, 1), &demo.member)
        .expect("local edit");
    pair.pump(fx, Vec::new());
    assert!(
        pair.quarantined.is_empty() && pair.errors.is_empty(),
        "{:?}",
        pair.errors
    );
    assert!(!pair.server.is_cold(&demo.audit_id), "loaded again");
    let now = pair.server.doc(&demo.audit_id).map(heads);
    assert_ne!(now, synced, "the edit landed");
    assert_eq!(now, pair.device.doc(&demo.audit_id).map(heads));
    assert!(pair.device.unacknowledged(&demo.audit_id).is_empty());
    // In sync again: it may go cold again, and once unshared be evicted.
    assert!(pair.server.cool(&demo.audit_id));
    pair.server
        .handle(demo.now(), Input::Disconnected { peer: DEVICE });
    assert!(pair.server.doc_peers(&demo.audit_id).is_empty());
    assert!(pair.server.evict(&demo.audit_id));
    assert!(!pair.server.holds(&demo.audit_id));
}

#[test]
fn a_document_stays_loaded_while_anything_of_it_is_unstored_or_unanswered() {
    let demo = Demo::new();
    let mut pair = Pair::new(
        demo.member.clone(),
        actor(2),
        vec![(demo.audit_id, demo.audit())],
    );
    let fx = pair
        .device
        .edit(demo.now(), demo.audit_id, &demo.answer(4, 0), &demo.member)
        .expect("local edit");
    // The device stores its edit, then sends it.
    let mut sends = Vec::new();
    for e in fx {
        if let Effect::Store { ticket, .. } = e {
            sends.extend(pair.device.handle(demo.now(), Input::Stored { ticket }));
        }
    }
    // It reaches the server; the server's store of it is not confirmed yet.
    let mut stores = Vec::new();
    for e in sends {
        if let Effect::Send { bytes, .. } = e {
            let out = pair.server.handle(
                demo.now(),
                Input::Received {
                    peer: DEVICE,
                    bytes,
                },
            );
            stores.extend(out.into_iter().filter_map(|e| match e {
                Effect::Store { ticket, .. } => Some(ticket),
                _ => None,
            }));
        }
    }
    assert_eq!(stores.len(), 1, "one batch to store");
    assert!(!pair.server.cool(&demo.audit_id), "unstored");
    let sent = pair
        .server
        .handle(demo.now(), Input::Stored { ticket: stores[0] });
    pair.pump(Vec::new(), sent);
    assert!(pair.server.cool(&demo.audit_id), "stored and in sync");
    // A change stored by another server process: sent to the device, which
    // has not said yet that it holds it.
    let mut other = pair.server.hot(&demo.audit_id).cloned().expect("held");
    let hash = demo.must(demo.audit_id, &mut other, &demo.lead, demo.answer(5, 1));
    let change = other
        .get_change_by_hash(&hash)
        .expect("change")
        .raw_bytes()
        .to_vec();
    assert!(pair.server.cool(&demo.audit_id));
    let sent = pair.server.handle(
        demo.now(),
        Input::External {
            doc: demo.audit_id,
            changes: vec![change],
        },
    );
    assert!(
        speaks_of(&sent, demo.audit_id),
        "a cold document takes changes stored elsewhere"
    );
    assert!(
        !pair.server.cool(&demo.audit_id),
        "the device has not said it holds the server's heads"
    );
    pair.pump(Vec::new(), sent);
    assert!(pair.server.cool(&demo.audit_id), "answered: in sync");
    assert_eq!(
        pair.server.hot(&demo.audit_id).map(heads),
        pair.device.doc(&demo.audit_id).map(heads)
    );
    // A device engine never goes cold.
    assert!(!pair.device.cool(&demo.audit_id));
    assert!(pair.device.doc(&demo.audit_id).is_some());
}

#[test]
fn a_cold_document_stays_closed_to_a_stranger_and_opens_to_a_new_connection() {
    let demo = Demo::new();
    let mut pair = Pair::new(
        demo.member.clone(),
        actor(2),
        vec![(demo.audit_id, demo.audit())],
    );
    const OTHER: PeerId = 8;
    const STRANGER: PeerId = 9;
    let mut forged = pair.server.doc(&demo.audit_id).cloned().expect("held");
    let hash = demo.must(demo.audit_id, &mut forged, &demo.member, demo.answer(6, 2));
    let change = forged
        .get_change_by_hash(&hash)
        .expect("change")
        .raw_bytes()
        .to_vec();
    assert!(pair.server.cool(&demo.audit_id));
    // A connection it is not shared with writes to it: a held cold document
    // is not taken for a new one; the write is refused and kept.
    pair.server.handle(
        demo.now(),
        Input::Connected {
            peer: STRANGER,
            author: Some(demo.member.clone()),
            docs: Vec::new(),
        },
    );
    let fx = pair.server.handle(
        demo.now(),
        Input::Received {
            peer: STRANGER,
            bytes: frame(demo.audit_id, vec![change]),
        },
    );
    assert!(
        !fx.iter().any(|e| matches!(
            e,
            Effect::Notify(Notice::Created { .. }) | Effect::Store { .. }
        )),
        "{fx:?}"
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Quarantine { rule, .. } if rule == "doc.not_permitted")),
        "{fx:?}"
    );
    // A second device of the team is given it while it is cold: it is sent at once.
    assert!(pair.server.cool(&demo.audit_id));
    pair.server.handle(
        demo.now(),
        Input::Connected {
            peer: OTHER,
            author: Some(demo.lead.clone()),
            docs: Vec::new(),
        },
    );
    let fx = pair.server.handle(
        demo.now(),
        Input::Share {
            peer: OTHER,
            doc: demo.audit_id,
        },
    );
    assert!(
        speaks_of(&fx, demo.audit_id),
        "the new connection is sent it"
    );
    assert_eq!(pair.server.doc_peers(&demo.audit_id), vec![DEVICE, OTHER]);
    assert!(
        !pair.server.cool(&demo.audit_id),
        "the new connection is not in sync yet"
    );
}

#[test]
fn changes_stored_elsewhere_reach_the_connected_devices() {
    let demo = Demo::new();
    let mut pair = Pair::new(
        demo.lead.clone(),
        actor(1),
        vec![(demo.audit_id, demo.audit())],
    );
    let mut other = pair.server.doc(&demo.audit_id).cloned().expect("doc");
    let hash = demo.must(demo.audit_id, &mut other, &demo.member, demo.answer(5, 1));
    let change = other
        .get_change_by_hash(&hash)
        .expect("change")
        .raw_bytes()
        .to_vec();
    let fx = pair.server.handle(
        demo.now(),
        Input::External {
            doc: demo.audit_id,
            changes: vec![change],
        },
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Store { .. })),
        "already stored elsewhere"
    );
    pair.pump(Vec::new(), fx);
    assert_eq!(
        pair.device.doc(&demo.audit_id).map(heads),
        Some(heads(&other))
    );
    assert!(pair.server.in_sync(DEVICE, &demo.audit_id));
}

#[test]
fn a_role_ends_at_midnight_in_india_not_at_midnight_utc() {
    let demo = Demo::new();
    let stored = demo.audit();
    // Made while the role was in force; uploaded around the end of its last day.
    let mut copy = stored.clone();
    let hash = demo
        .edit(demo.audit_id, &mut copy, &demo.member, demo.answer(0, 0))
        .expect("permitted while the role is in force");
    let change = copy
        .get_change_by_hash(&hash)
        .expect("made")
        .raw_bytes()
        .to_vec();
    let mut ended = demo.member.clone();
    for g in &mut ended.grants {
        g.until = Some(demo.today);
    }
    // 18:30 UTC is midnight in India: the first moment of the next office day.
    for (time, refused) in [("18:29:59", false), ("18:30:00", true)] {
        let at: sync_core::date::Timestamp =
            format!("{}T{time}Z", demo.today).parse().expect("a time");
        let mut server = Engine::new(Side::Server);
        server.insert(demo.audit_id, stored.clone());
        server.handle(
            at,
            Input::Connected {
                peer: DEVICE,
                author: Some(ended.clone()),
                docs: vec![demo.audit_id],
            },
        );
        let fx = server.handle(
            at,
            Input::Received {
                peer: DEVICE,
                bytes: frame(demo.audit_id, vec![change.clone()]),
            },
        );
        let quarantined = fx.iter().any(|e| matches!(e, Effect::Quarantine { .. }));
        let stored_it = fx.iter().any(|e| matches!(e, Effect::Store { .. }));
        assert_eq!((quarantined, stored_it), (refused, !refused), "at {at}");
    }
}

/// The bodies of the frames sent for `doc`.
fn bodies_for(fx: &[Effect], doc: sync_core::ids::DocumentId) -> Vec<Body> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { bytes, .. } => Envelope::decode(bytes).ok(),
            _ => None,
        })
        .filter(|env| env.doc == doc)
        .map(|env| env.body)
        .collect()
}

#[test]
fn a_cold_document_shared_with_a_new_connection_stays_cold_until_the_device_speaks() {
    let demo = Demo::new();
    let mut server = Engine::new(Side::Server);
    server.insert(demo.audit_id, demo.audit());
    let ctx = sync_core::permissions::DocContext::read(&demo.audit()).ok();
    assert!(server.cool(&demo.audit_id), "shared with nobody: in sync");
    assert_eq!(server.hot_count(), 0);
    assert_eq!(server.context(&demo.audit_id), ctx, "read without loading");
    assert!(server.is_cold(&demo.audit_id));

    let fx = server.handle(
        demo.now(),
        Input::Connected {
            peer: DEVICE,
            author: Some(demo.member.clone()),
            docs: vec![demo.audit_id],
        },
    );
    assert!(server.is_cold(&demo.audit_id), "sharing did not load it");
    assert!(server.is_shared(DEVICE, &demo.audit_id));
    assert_eq!(server.doc_peers(&demo.audit_id), vec![DEVICE]);
    let bodies = bodies_for(&fx, demo.audit_id);
    assert!(
        matches!(bodies.as_slice(), [Body::NewDocument { .. }]),
        "the device is only told it is shared: {bodies:?}"
    );
    // Time passes: still nothing to say until the device speaks.
    let fx = server.handle(demo.now(), Input::Tick);
    assert!(!speaks_of(&fx, demo.audit_id));
    assert!(server.is_cold(&demo.audit_id));

    // A device that does not hold it yet asks for it, and receives it whole.
    let mut pair = Pair {
        server,
        device: Engine::new(Side::Device(actor(2))),
        quarantined: Vec::new(),
        rejected: Vec::new(),
        errors: Vec::new(),
        demo: Demo::new(),
    };
    let to_server = pair.device.handle(
        demo.now(),
        Input::Connected {
            peer: SERVER,
            author: None,
            docs: Vec::new(),
        },
    );
    let told = pair.device.handle(
        demo.now(),
        Input::Received {
            peer: SERVER,
            bytes: Envelope {
                doc: demo.audit_id,
                body: Body::NewDocument {
                    kind: sync_core::DocKind::Audit,
                },
            }
            .encode()
            .expect("encode"),
        },
    );
    pair.pump([to_server, told].concat(), Vec::new());
    assert!(pair.errors.is_empty(), "{:?}", pair.errors);
    assert!(
        !pair.server.is_cold(&demo.audit_id),
        "loaded by the device's ask"
    );
    assert_eq!(
        pair.device.doc(&demo.audit_id).map(heads),
        pair.server.doc(&demo.audit_id).map(heads)
    );
    assert!(pair.server.cool(&demo.audit_id), "in sync: cold again");
}

#[test]
fn offline_edits_to_a_document_the_server_holds_cold_land_on_reconnect() {
    let demo = Demo::new();
    let mut pair = Pair::new(
        demo.member.clone(),
        actor(2),
        vec![(demo.audit_id, demo.audit())],
    );
    pair.server
        .handle(demo.now(), Input::Disconnected { peer: DEVICE });
    pair.device
        .handle(demo.now(), Input::Disconnected { peer: SERVER });
    assert!(pair.server.cool(&demo.audit_id));
    // A day offline.
    for (i, n) in [(3, 1), (4, 0), (5, 2)] {
        let fx = pair
            .device
            .edit(demo.now(), demo.audit_id, &demo.answer(i, n), &demo.member)
            .expect("local edit");
        for e in fx {
            if let Effect::Store { ticket, .. } = e {
                pair.device.handle(demo.now(), Input::Stored { ticket });
            }
        }
    }
    let to_server = pair.device.handle(
        demo.now(),
        Input::Connected {
            peer: SERVER,
            author: None,
            docs: vec![demo.audit_id],
        },
    );
    let to_device = pair.server.handle(
        demo.now(),
        Input::Connected {
            peer: DEVICE,
            author: Some(demo.member.clone()),
            docs: vec![demo.audit_id],
        },
    );
    assert!(pair.server.is_cold(&demo.audit_id), "shared cold");
    pair.pump(to_server, to_device);
    assert!(
        pair.quarantined.is_empty() && pair.errors.is_empty(),
        "{:?}",
        pair.errors
    );
    let server = pair.server.doc(&demo.audit_id).map(heads);
    assert_eq!(server, pair.device.doc(&demo.audit_id).map(heads));
    assert!(
        pair.device.unacknowledged(&demo.audit_id).is_empty(),
        "all stored"
    );
    assert!(pair.server.in_sync(DEVICE, &demo.audit_id));
}

/// Khan answers offline while his auditor role ends, his first change being
/// one that Automerge's summary of the server's changes wrongly claims the
/// server has, then makes `more` further edits on top of it; he reconnects.
/// Every one of them must reach quarantine, and he must be told of each.
fn hidden_offline_changes_reach_quarantine(more: usize) {
    let demo = Demo::new();
    let stored = demo.audit();
    let id = demo.audit_id;
    // What the server says it has when it asks a stranger for its changes:
    // Automerge's summary (a Bloom filter) of every change it holds.
    let ask = stored
        .clone()
        .generate_sync_message(&mut sync::State::new())
        .expect("a first message");
    let bloom = &ask.have.first().expect("a summary").bloom;
    // Khan answered offline while his role ended; his answer is one the
    // summary wrongly claims the server has (about one change in a hundred).
    let mut copy = stored.clone();
    let mut found = None;
    for variant in 0..20_000 {
        let mut attempt = stored.clone();
        let edit = Edit::SetNotes(format!("Opening meeting notes, draft {variant}"));
        let hash = demo.must(id, &mut attempt, &demo.member, edit);
        if bloom.contains_hash(&hash) {
            copy = attempt;
            found = Some(hash);
            break;
        }
    }
    let mut offline = vec![found.expect("a change the summary wrongly claims")];
    for i in 0..more {
        offline.push(demo.must(id, &mut copy, &demo.member, demo.answer(i + 1, 2)));
    }
    let mut revoked = demo.member.clone();
    revoked.audits.clear();

    let mut server = Engine::new(Side::Server);
    server.insert(id, stored.clone());
    let mut device = Engine::new(Side::Device(actor(2)));
    device.insert(id, copy);
    let mut pair = Pair::connect(server, device, demo, revoked, vec![id], Vec::new());
    pair.tick(1_000);

    let kept: Vec<Vec<u8>> = pair
        .quarantined
        .iter()
        .filter_map(|q| match q {
            Effect::Quarantine { rule, changes, .. } if rule == "doc.not_permitted" => {
                Some(changes.clone())
            }
            _ => None,
        })
        .flatten()
        .collect();
    let mut kept: Vec<_> = kept
        .iter()
        .map(|b| sync_core::automerge::Change::try_from(b.as_slice()).map(|c| c.hash()))
        .collect::<Result<_, _>>()
        .expect("changes");
    kept.sort();
    let mut want = offline.clone();
    want.sort();
    assert_eq!(kept, want, "each quarantined once, by the server");
    let mut told: Vec<_> = pair
        .rejected
        .iter()
        .filter_map(|n| match n {
            Notice::Rejected { rule, changes, .. } if rule == "doc.not_permitted" => {
                Some(changes.clone())
            }
            _ => None,
        })
        .flatten()
        .collect();
    told.sort();
    assert_eq!(told, want, "the tablet is told of each");
    assert_eq!(
        heads(pair.server.doc(&id).expect("held")),
        heads(&stored),
        "not applied"
    );
}

#[test]
fn an_offline_change_on_a_document_no_longer_permitted_is_asked_for_by_name_and_quarantined() {
    hidden_offline_changes_reach_quarantine(0);
}

#[test]
fn offline_changes_built_on_one_the_summary_hides_are_all_asked_for_and_quarantined() {
    hidden_offline_changes_reach_quarantine(2);
}
