//! The refusals no server gives a raw change: a server engine's answer to a
//! connection with no authenticated user (`auth`), and the tablet's own
//! checks, made before a change exists (`edit.kind`, `edit.failed`,
//! `engine.side`, `audit.locked`). The server's refusals of raw changes are
//! the tampered-change matrix of `server/tests/tampered.rs`.

use sync_core::automerge::sync;
use sync_core::automerge::{Automerge, Change};
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, PeerId, Side};
use sync_core::envelope::{Body, Envelope};
use sync_core::ids::DocumentId;
use sync_core::permissions::{Refusal, Target, may_edit};
use sync_core::testing::fixtures::{Demo, actor};

const DEVICE: PeerId = 7;

/// A device engine holding a document, editing under the actor of device `device`.
fn device_holding(id: DocumentId, doc: Automerge, device: u8) -> Engine {
    let mut engine = Engine::new(Side::Device(actor(device)));
    engine.insert(id, doc);
    engine
}

fn rule_of(result: Result<Vec<Effect>, Refusal>) -> &'static str {
    match result {
        Ok(fx) => panic!("the edit was made: {fx:?}"),
        Err(r) => r.rule,
    }
}

#[test]
fn a_server_engine_refuses_every_change_from_a_connection_with_no_authenticated_user() {
    let demo = Demo::new();
    let mut server = Engine::new(Side::Server);
    server.insert(demo.audit_id, demo.audit());
    let now = demo.now();
    let _ = server.handle(
        now,
        Input::Connected {
            peer: DEVICE,
            author: None,
            docs: vec![demo.audit_id],
        },
    );
    // The lead's answer, made as the lead's tablet would make it.
    let mut doc = demo.audit();
    let before = doc.get_heads();
    demo.must(demo.audit_id, &mut doc, &demo.lead, demo.answer(0, 0));
    let changes: Vec<Change> = doc.get_changes(&before).into_iter().collect();
    let hash = changes[0].hash();
    let msg = sync::Message {
        heads: doc.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: changes
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>()
            .into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    let frame = Envelope {
        doc: demo.audit_id,
        body: Body::Sync(msg.encode()),
    }
    .encode()
    .expect("encodes");
    let fx = server.handle(
        now,
        Input::Received {
            peer: DEVICE,
            bytes: frame,
        },
    );
    let mut kept = None;
    for e in &fx {
        match e {
            Effect::Quarantine { ticket, rule, .. } => kept = Some((*ticket, rule.clone())),
            Effect::Store { .. } => panic!("a change with no author was stored"),
            _ => {}
        }
    }
    let (ticket, rule) = kept.expect("the change was kept aside");
    assert_eq!(rule, "auth");
    // Told once kept: a rejection naming the change and the rule.
    let told: Vec<(String, Vec<_>)> = server
        .handle(now, Input::Stored { ticket })
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { bytes, .. } => match Envelope::decode(&bytes).ok()?.body {
                Body::Rejection { rule, changes, .. } => Some((rule, changes)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(told, vec![("auth".to_owned(), vec![hash])]);
    let held = server.doc(&demo.audit_id).expect("held");
    assert!(
        held.get_change_meta_by_hash(&hash).is_none(),
        "the change is not in the server's document"
    );
}

#[test]
fn an_nc_edit_on_an_audit_is_refused_by_the_tablet_as_the_wrong_kind() {
    let demo = Demo::new();
    let mut tablet = device_holding(demo.audit_id, demo.audit(), 2);
    let now = demo.now();
    let rule = rule_of(tablet.edit(
        now,
        demo.audit_id,
        &Edit::SetDescription("Amendment approved in 19 days".into()),
        &demo.member,
    ));
    assert_eq!(rule, "edit.kind");
    // Creating a document where one already is: the wrong kind too.
    let rule = rule_of(tablet.edit(
        now,
        demo.audit_id,
        &Edit::CreateAudit(demo.header()),
        &demo.lead,
    ));
    assert_eq!(rule, "edit.kind");
    // A review edit on a document the tablet does not have.
    let missing = DocumentId::new_v7(1_768_262_400_000, [77; 10]);
    let rule = rule_of(tablet.edit(
        now,
        missing,
        &Edit::SetMinutes("Minutes".into()),
        &demo.nodal,
    ));
    assert_eq!(rule, "edit.kind");
    assert!(tablet.doc(&missing).is_none(), "no document was made");
    assert!(tablet.unacknowledged(&demo.audit_id).is_empty());
}

#[test]
fn an_edit_that_changes_nothing_is_refused_by_the_tablet_as_failed() {
    let demo = Demo::new();
    let mut tablet = device_holding(demo.audit_id, demo.audit(), 2);
    let heads = tablet
        .doc(&demo.audit_id)
        .map(Automerge::get_heads)
        .expect("held");
    // Clearing an answer that was never given writes nothing.
    let rule = rule_of(tablet.edit(
        demo.now(),
        demo.audit_id,
        &Edit::ClearResponse("mr.held".parse().expect("key")),
        &demo.member,
    ));
    assert_eq!(rule, "edit.failed");
    assert_eq!(
        tablet.doc(&demo.audit_id).map(Automerge::get_heads),
        Some(heads),
        "the document is as it was"
    );
    assert!(tablet.unacknowledged(&demo.audit_id).is_empty());
}

#[test]
fn a_server_engine_makes_no_edits_and_recovers_from_no_refusal() {
    let demo = Demo::new();
    let mut server = Engine::new(Side::Server);
    server.insert(demo.audit_id, demo.audit());
    let heads = server
        .doc(&demo.audit_id)
        .map(Automerge::get_heads)
        .expect("held");
    let rule = rule_of(server.edit(demo.now(), demo.audit_id, &demo.answer(0, 0), &demo.lead));
    assert_eq!(rule, "engine.side");
    let refusal = Refusal {
        rule: "audit.content",
        message: "refused".into(),
    };
    let mut lead = demo.lead.clone();
    lead.actors.insert(actor(11));
    match server.recover(demo.audit_id, &heads, &refusal, actor(11), &lead) {
        Ok(r) => panic!("a server engine recovered: {r:?}"),
        Err(r) => assert_eq!(r.rule, "engine.side"),
    }
    assert_eq!(
        server.doc(&demo.audit_id).map(Automerge::get_heads),
        Some(heads),
        "the server's document is as it was"
    );
}

#[test]
fn a_locked_audits_content_is_not_offered_for_editing_but_its_late_edits_are_made() {
    let demo = Demo::new();
    let mut doc = demo.audit();
    demo.lock(&mut doc);
    let today = demo.today;
    let content = Target::Field(sync_core::permissions::Field::AuditContent);
    for who in [&demo.lead, &demo.member] {
        match may_edit(&doc, who, content, today) {
            Ok(()) => panic!("{} was offered a locked audit's content", who.user),
            Err(r) => assert_eq!(r.rule, "audit.locked", "{}", who.user),
        }
    }
    // Not the team's: refused for that, whether locked or not.
    match may_edit(&doc, &demo.owner, content, today) {
        Ok(()) => panic!("the process owner was offered the audit's content"),
        Err(r) => assert_eq!(r.rule, "audit.content"),
    }
    // The header stays the lead's to edit, locked or not.
    let header = Target::Field(sync_core::permissions::Field::AuditHeader);
    assert_eq!(may_edit(&doc, &demo.lead, header, today), Ok(()));
    // Made anyway (offline, or by a tablet that did not ask), the edit is a
    // late edit: kept, and not in force until the lead accepts it (DESIGN §3).
    let mut tablet = device_holding(demo.audit_id, doc, 2);
    let made = tablet.edit(demo.now(), demo.audit_id, &demo.answer(0, 0), &demo.member);
    assert!(made.is_ok(), "{made:?}");
    let view = sync_core::audit::AuditView::read(tablet.doc(&demo.audit_id).expect("held"))
        .expect("reads");
    assert_eq!(view.late_edits.len(), 1, "{:?}", view.late_edits);
    assert!(view.content.responses.is_empty(), "not in force");
}
