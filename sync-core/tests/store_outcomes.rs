//! What a device is told, and when, about the changes it sent: a refusal only
//! once the refused changes are kept (a device drops what it is told was
//! refused), a store that can never succeed as a refusal of exactly its
//! changes, and a client that keeps a refused change as its head is answered
//! once rather than sent the whole document again and again.
//!
//! Every store and quarantine here waits until the test confirms it, so each
//! test says exactly what happens before and after the confirmation.

use sync_core::automerge::sync::{self, SyncDoc};
use sync_core::automerge::transaction::Transactable;
use sync_core::automerge::{Automerge, ChangeHash, ROOT};
use sync_core::date::Timestamp;
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, Notice, PeerId, Side};
use sync_core::envelope::{Body, Envelope};
use sync_core::ids::DocumentId;
use sync_core::permissions::Author;
use sync_core::testing::fixtures::{Demo, actor};
use sync_core::workflow::NcState;

const DEVICE: PeerId = 7;
const SERVER: PeerId = 0;

/// A server and one device engine; stores and quarantines wait for the test.
struct Held {
    server: Engine,
    device: Engine,
    /// Server tickets handed out and not yet confirmed: (ticket, is a quarantine).
    unconfirmed: Vec<(u64, bool)>,
    /// The server's `Store` effects, in order.
    stores: Vec<(u64, Vec<ChangeHash>)>,
    /// What the device was sent, in order.
    to_device: Vec<Body>,
    rejected: Vec<Notice>,
    dropped: Vec<DocumentId>,
    now: Timestamp,
}

impl Held {
    fn connect(demo: &Demo, author: Author, doc: (DocumentId, Automerge)) -> Held {
        let mut server = Engine::new(Side::Server);
        server.insert(doc.0, doc.1);
        let mut held = Held {
            server,
            device: Engine::new(Side::Device(actor(2))),
            unconfirmed: Vec::new(),
            stores: Vec::new(),
            to_device: Vec::new(),
            rejected: Vec::new(),
            dropped: Vec::new(),
            now: demo.now(),
        };
        held.reconnect(author, vec![doc.0], Vec::new());
        held
    }

    fn reconnect(
        &mut self,
        author: Author,
        server_docs: Vec<DocumentId>,
        device_docs: Vec<DocumentId>,
    ) {
        let d = self.device.handle(
            self.now,
            Input::Connected {
                peer: SERVER,
                author: None,
                docs: device_docs,
            },
        );
        let s = self.server.handle(
            self.now,
            Input::Connected {
                peer: DEVICE,
                author: Some(author),
                docs: server_docs,
            },
        );
        self.pump(d, s);
    }

    fn offline(&mut self) {
        let now = self.now;
        self.device
            .handle(now, Input::Disconnected { peer: SERVER });
        self.server
            .handle(now, Input::Disconnected { peer: DEVICE });
    }

    fn pump(&mut self, mut from_device: Vec<Effect>, mut from_server: Vec<Effect>) {
        let now = self.now;
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
                        next_device.extend(self.device.handle(now, Input::Stored { ticket }));
                    }
                    Effect::Notify(n @ Notice::Rejected { .. }) => self.rejected.push(n),
                    _ => {}
                }
            }
            for e in from_server {
                match e {
                    Effect::Send { bytes, .. } => {
                        if let Ok(env) = Envelope::decode(&bytes) {
                            self.to_device.push(env.body);
                        }
                        next_device.extend(self.device.handle(
                            now,
                            Input::Received {
                                peer: SERVER,
                                bytes,
                            },
                        ));
                    }
                    Effect::Store { ticket, hashes, .. } => {
                        self.unconfirmed.push((ticket, false));
                        self.stores.push((ticket, hashes));
                    }
                    Effect::Quarantine { ticket, .. } => self.unconfirmed.push((ticket, true)),
                    Effect::Notify(Notice::Dropped(doc)) => self.dropped.push(doc),
                    _ => {}
                }
            }
            from_device = next_device;
            from_server = next_server;
        }
        panic!("the pair never stopped talking");
    }

    /// Confirms every unconfirmed ticket of one kind (quarantines or stores).
    fn confirm(&mut self, quarantines: bool) {
        let (now, mut fx) = (self.now, Vec::new());
        let (these, rest) = std::mem::take(&mut self.unconfirmed)
            .into_iter()
            .partition(|(_, q)| *q == quarantines);
        self.unconfirmed = rest;
        for (ticket, _) in these {
            fx.extend(self.server.handle(now, Input::Stored { ticket }));
        }
        self.pump(Vec::new(), fx);
    }

    fn told_rejection(&self) -> bool {
        self.to_device
            .iter()
            .any(|b| matches!(b, Body::Rejection { .. }))
    }
}

/// The device's user believes he owns P03 (he does not): his root cause is refused.
fn believed_owner(demo: &Demo) -> Author {
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
    believed
}

#[test]
fn a_device_is_told_of_a_refusal_only_once_the_refused_changes_are_kept() {
    let demo = Demo::new();
    let nc = demo.nc_in(NcState::Open);
    let mut pair = Held::connect(&demo, demo.member.clone(), (demo.nc_id, nc));
    pair.offline();
    let fx = pair
        .device
        .edit(
            pair.now,
            demo.nc_id,
            &Edit::SetRootCause("Not the member's to write".into()),
            &believed_owner(&demo),
        )
        .expect("local edit");
    pair.pump(fx, Vec::new());
    pair.reconnect(demo.member.clone(), vec![demo.nc_id], vec![demo.nc_id]);

    assert!(
        pair.unconfirmed.iter().any(|(_, q)| *q),
        "the refused change went to quarantine"
    );
    assert!(
        !pair.told_rejection() && pair.rejected.is_empty(),
        "told before the quarantine was kept: {:?}",
        pair.to_device
    );
    assert_eq!(
        pair.device.unacknowledged(&demo.nc_id).len(),
        1,
        "the device still holds its edit"
    );
    pair.confirm(true);
    assert!(pair.told_rejection(), "told once kept");
    assert_eq!(pair.rejected.len(), 1, "{:?}", pair.rejected);
}

#[test]
fn a_device_whose_rights_ended_is_told_only_once_its_offline_changes_are_kept() {
    let demo = Demo::new();
    let id = demo.audit_id;
    let stored = demo.audit();
    let mut copy = stored.clone();
    demo.must(id, &mut copy, &demo.member, demo.answer(0, 1));
    let mut revoked = demo.member.clone();
    revoked.audits.clear();
    let mut server = Engine::new(Side::Server);
    server.insert(id, stored);
    let mut device = Engine::new(Side::Device(actor(2)));
    device.insert(id, copy);
    let mut pair = Held {
        server,
        device,
        unconfirmed: Vec::new(),
        stores: Vec::new(),
        to_device: Vec::new(),
        rejected: Vec::new(),
        dropped: Vec::new(),
        now: demo.now(),
    };
    pair.reconnect(revoked, Vec::new(), vec![id]);
    assert!(
        pair.unconfirmed.iter().any(|(_, q)| *q),
        "the offline answer went to quarantine"
    );
    assert!(
        !pair
            .to_device
            .iter()
            .any(|b| matches!(b, Body::Rejection { .. } | Body::Withdrawn)),
        "told before the quarantine was kept: {:?}",
        pair.to_device
    );
    pair.confirm(true);
    assert!(pair.told_rejection(), "told once kept");
    assert!(
        pair.to_device.iter().any(|b| matches!(b, Body::Withdrawn)),
        "and the document withdrawn"
    );
}

#[test]
fn a_store_that_can_never_succeed_is_a_refusal_of_exactly_its_changes_and_the_document_is_read_again()
 {
    let demo = Demo::new();
    let mut pair = Held::connect(&demo, demo.member.clone(), (demo.audit_id, demo.audit()));
    let fx = pair
        .device
        .edit(pair.now, demo.audit_id, &demo.answer(0, 1), &demo.member)
        .expect("local edit");
    pair.pump(fx, Vec::new());
    let (ticket, hashes) = pair.stores.last().cloned().expect("a store");
    assert!(
        !pair.told_rejection(),
        "nothing is said while the store is open"
    );
    let fx = pair.server.handle(
        pair.now,
        Input::StoreFailed {
            ticket,
            rule: "store.failed".into(),
            message: "The database refused these changes.".into(),
        },
    );
    pair.pump(Vec::new(), fx);
    let told: Vec<(String, Vec<ChangeHash>)> = pair
        .to_device
        .iter()
        .filter_map(|b| match b {
            Body::Rejection { rule, changes, .. } => Some((rule.clone(), changes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(told, vec![("store.failed".to_string(), hashes)]);
    assert_eq!(
        pair.dropped,
        vec![demo.audit_id],
        "the caller reads it again"
    );
    assert!(
        !pair.server.holds(&demo.audit_id),
        "the copy holding the unstorable change is gone"
    );
    // A confirmation for a ticket already failed changes nothing.
    let fx = pair.server.handle(pair.now, Input::Stored { ticket });
    assert!(fx.is_empty(), "{fx:?}");
    // Read again from storage and shared again: the device, which has not
    // taken the change out yet, offers it again; it is not judged, stored or
    // kept again.
    pair.server.insert(demo.audit_id, demo.audit());
    let stores_before = pair.stores.len();
    let fx = pair.server.handle(
        pair.now,
        Input::Share {
            peer: DEVICE,
            doc: demo.audit_id,
        },
    );
    pair.pump(Vec::new(), fx);
    assert_eq!(pair.stores.len(), stores_before, "stored again");
    assert!(pair.unconfirmed.iter().all(|(_, q)| !q), "kept again");
}

/// A plain Automerge peer over the envelope: it ignores rejections and
/// keeps whatever it made.
struct PlainClient {
    doc: Automerge,
    state: sync::State,
}

impl PlainClient {
    fn message(&mut self, id: DocumentId) -> Option<Vec<u8>> {
        let msg = self.doc.generate_sync_message(&mut self.state)?;
        Envelope {
            doc: id,
            body: Body::Sync(msg.encode()),
        }
        .encode()
        .ok()
    }
}

#[test]
fn a_plain_client_keeping_a_refused_change_is_answered_once_not_sent_the_document_again_and_again()
{
    let demo = Demo::new();
    let id = demo.audit_id;
    let stored = demo.audit();
    let mut server = Engine::with_limits(
        Side::Server,
        sync_core::engine::Limits {
            retry_after_ms: 30_000,
            max_retry_after_ms: 120_000,
            retry_when_peer_quiet: true,
            ..Default::default()
        },
    );
    server.insert(id, stored.clone());
    // The client holds the audit and writes a field no schema knows: refused.
    let mut doc = stored.fork().with_actor(actor(2));
    doc.transact::<_, _, sync_core::automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "bogus", "x")?;
        Ok(())
    })
    .expect("raw write");
    let mut client = PlainClient {
        doc,
        state: sync::State::new(),
    };
    let mut now = demo.now();
    let mut fx = server.handle(
        now,
        Input::Connected {
            peer: DEVICE,
            author: Some(demo.member.clone()),
            docs: vec![id],
        },
    );
    let mut sent_to_client = 0usize;
    let mut bytes_to_client = 0usize;
    let mut quarantined = 0usize;
    // Ten minutes of a connected client that answers everything at once.
    for second in 0..600 {
        for _ in 0..50 {
            let mut next = Vec::new();
            let mut replies = Vec::new();
            for e in fx {
                match e {
                    Effect::Send { bytes, .. } => {
                        sent_to_client += 1;
                        bytes_to_client += bytes.len();
                        if let Ok(Envelope {
                            body: Body::Sync(payload),
                            ..
                        }) = Envelope::decode(&bytes)
                        {
                            let msg = sync::Message::decode(&payload).expect("a sync message");
                            client
                                .doc
                                .receive_sync_message(&mut client.state, msg)
                                .expect("applies");
                            replies.extend(client.message(id));
                        }
                    }
                    Effect::Quarantine { ticket, .. } => {
                        quarantined += 1;
                        next.extend(server.handle(now, Input::Stored { ticket }));
                    }
                    Effect::Store { ticket, .. } => {
                        next.extend(server.handle(now, Input::Stored { ticket }));
                    }
                    _ => {}
                }
            }
            if second == 0 && sent_to_client == 0 {
                replies.extend(client.message(id));
            }
            for bytes in replies {
                next.extend(server.handle(
                    now,
                    Input::Received {
                        peer: DEVICE,
                        bytes,
                    },
                ));
            }
            fx = next;
            if fx.is_empty() {
                break;
            }
        }
        now = Timestamp(now.0 + 1_000);
        fx = server.handle(now, Input::Tick);
    }
    assert_eq!(quarantined, 1, "the refused change is kept once");
    let whole = stored.save().len();
    assert!(
        bytes_to_client < whole,
        "in ten minutes the client was sent {bytes_to_client} bytes in {sent_to_client} frames (the document saved is {whole})"
    );
    // The rejection and an answer or two; before, the document every 30 s.
    assert!(
        sent_to_client <= 3,
        "in ten minutes the client was sent {sent_to_client} frames"
    );
}
