//! Resending what got no answer. On a lossy link the engine resends after a
//! short wait; over a socket (`retry_when_peer_quiet`) it resends only once
//! the peer has said nothing at all for that long: a busy server that keeps
//! answering about other documents is slow, not deaf, and resending a whole
//! day of work to it would only add to its load.

use sync_core::date::Timestamp;
use sync_core::engine::{Effect, Engine, Input, Limits, Side};
use sync_core::envelope::{Body, Envelope, ErrorCode};
use sync_core::ids::DocumentId;
use sync_core::testing::fixtures::Demo;

const SERVER: u64 = 0;
const WAIT_MS: i64 = 2_000;

fn sends_for(fx: &[Effect], doc: DocumentId) -> usize {
    fx.iter()
        .filter(|e| match e {
            Effect::Send { bytes, .. } => Envelope::decode(bytes).is_ok_and(|env| env.doc == doc),
            _ => false,
        })
        .count()
}

/// A device holding two audits, connected, with its first message for each in
/// flight. For 6 s the server answers only about the second, every 500 ms.
/// Returns how often the first was sent again then, and within 3 s of silence after.
fn resends_of_the_unanswered_one(quiet_peer: bool) -> (usize, usize) {
    let demo = Demo::new();
    let mut engine = Engine::with_limits(
        Side::Device(demo.lead.actors.iter().next().expect("a device").clone()),
        Limits {
            retry_after_ms: WAIT_MS,
            max_retry_after_ms: WAIT_MS,
            retry_when_peer_quiet: quiet_peer,
            ..Limits::default()
        },
    );
    let (a, b) = (demo.audit_id, demo.nc_id);
    engine.insert(a, demo.audit());
    engine.insert(b, demo.nc());
    let t0 = 1_800_000_000_000;
    let fx = engine.handle(
        Timestamp(t0),
        Input::Connected {
            peer: SERVER,
            author: None,
            docs: vec![a, b],
        },
    );
    assert_eq!(sends_for(&fx, a), 1, "the first message goes out at once");
    let about_b = Envelope {
        doc: b,
        body: Body::Error {
            code: ErrorCode::Internal,
            message: "busy".into(),
        },
    }
    .encode()
    .expect("encodes");
    let (mut busy, mut silent) = (0, 0);
    let mut t = t0;
    while t < t0 + 6_000 {
        t += 250;
        if (t - t0) % 500 == 0 {
            let _ = engine.handle(
                Timestamp(t),
                Input::Received {
                    peer: SERVER,
                    bytes: about_b.clone(),
                },
            );
        }
        busy += sends_for(&engine.handle(Timestamp(t), Input::Tick), a);
    }
    while t < t0 + 9_000 {
        t += 250;
        silent += sends_for(&engine.handle(Timestamp(t), Input::Tick), a);
    }
    (busy, silent)
}

#[test]
fn over_a_socket_a_busy_peer_is_not_sent_the_same_again() {
    let (busy, silent) = resends_of_the_unanswered_one(true);
    assert_eq!(
        busy, 0,
        "resent while the server kept answering about another document"
    );
    assert_eq!(silent, 1, "resent once the server fell silent");
}

#[test]
fn on_a_lossy_link_an_unanswered_message_is_sent_again_after_the_wait() {
    let (busy, _) = resends_of_the_unanswered_one(false);
    assert!(busy >= 2, "resent {busy} times in 6 s with a 2 s wait");
}
