//! Property tests for the sync envelope codec: exact round trips, and a decoder
//! that never panics and accepts only canonical frames, whatever it is given.

use proptest::collection::vec;
use proptest::prelude::*;
use sync_core::DocKind;
use sync_core::automerge::ChangeHash;
use sync_core::envelope::*;
use sync_core::ids::DocumentId;

/// Text of at most `max` bytes: often ASCII up to the exact limit, sometimes any Unicode.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        vec(0x20u8..0x7f, 0..=max).prop_map(|b| b.into_iter().map(char::from).collect()),
        vec(any::<char>(), 0..=max).prop_map(move |chars| {
            let mut s = String::new();
            for c in chars {
                if s.len() + c.len_utf8() > max {
                    break;
                }
                s.push(c);
            }
            s
        }),
    ]
}

/// Any ASCII rule code up to the limit, control characters included.
fn rule() -> impl Strategy<Value = String> {
    vec(0u8..0x80, 0..=MAX_RULE_BYTES).prop_map(|b| b.into_iter().map(char::from).collect())
}

/// A sync payload: small and random, or large (up to `max_large`) with cheap filler.
fn payload(max_large: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..512),
        1 => (0..=max_large, any::<u8>()).prop_map(|(len, seed)| {
            (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
        }),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        (1u16..=5).prop_map(ErrorCode::from_code),
        any::<u16>().prop_map(ErrorCode::from_code),
    ]
}

/// Every body kind; `large` lets lengths reach their limits (slower).
fn body(large: bool) -> impl Strategy<Value = Body> {
    let max_changes = if large { MAX_REJECTED_CHANGES } else { 16 };
    let changes = prop_oneof![
        3 => vec(any::<[u8; 32]>(), 0..8),
        1 => vec(any::<[u8; 32]>(), 0..=max_changes),
    ];
    prop_oneof![
        payload(if large { 1 << 20 } else { 4096 }).prop_map(Body::Sync),
        (rule(), text(MAX_MESSAGE_BYTES), changes).prop_map(|(rule, message, changes)| {
            let changes = changes.into_iter().map(ChangeHash).collect();
            Body::Rejection {
                rule,
                message,
                changes,
            }
        }),
        proptest::sample::select(DocKind::ALL.to_vec()).prop_map(|kind| Body::NewDocument { kind }),
        Just(Body::Withdrawn),
        (error_code(), text(MAX_MESSAGE_BYTES))
            .prop_map(|(code, message)| Body::Error { code, message }),
    ]
}

fn envelope(large: bool) -> impl Strategy<Value = Envelope> {
    (any::<[u8; 16]>(), body(large)).prop_map(|(id, body)| Envelope {
        doc: DocumentId::from_bytes(id),
        body,
    })
}

/// Decoding must not panic; when it succeeds the frame must be canonical.
fn decodes_canonically_or_fails(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(env) = Envelope::decode(bytes) {
        let again = env.encode();
        prop_assert_eq!(again.as_deref(), Ok(bytes));
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Flip { at, bit } if !bytes.is_empty() => {
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
        }
        Mutation::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
        Mutation::Delete { at } if !bytes.is_empty() => {
            bytes.remove(at % bytes.len());
        }
        _ => {}
    }
}

/// Bytes to throw at the decoder: fully random, or behind a valid header so
/// the body parsers are reached, with a random tail or a short one of small
/// values (small lengths, so reads run past the end).
fn arbitrary_frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    let tail = prop_oneof![vec(any::<u8>(), 0..4077), vec(0u8..4, 0..64)];
    prop_oneof![
        vec(any::<u8>(), 0..4096),
        (0u8..=6, any::<[u8; 16]>(), tail).prop_map(|(tag, id, tail)| {
            let mut b = vec![0x53, 1, tag];
            b.extend_from_slice(&id);
            b.extend(tail);
            b
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_envelopes_round_trip_exactly(env in envelope(true)) {
        let bytes = env.encode().expect("within limits");
        prop_assert!(bytes.len() <= MAX_ENVELOPE_BYTES);
        prop_assert_eq!(Envelope::decode(&bytes), Ok(env));
    }

    #[test]
    fn truncated_envelopes_are_refused_at_every_length(env in envelope(false)) {
        let bytes = env.encode().expect("within limits");
        for len in 0..bytes.len() {
            let result = Envelope::decode(&bytes[..len]);
            prop_assert!(
                matches!(result, Err(EnvelopeError::Truncated { .. })),
                "prefix of {} of {} bytes gave {:?}", len, bytes.len(), result
            );
        }
        prop_assert_eq!(Envelope::decode(&bytes), Ok(env));
    }

    #[test]
    fn mutated_envelopes_never_panic_the_decoder(
        env in envelope(false),
        mutations in vec(mutation(), 1..=4),
    ) {
        let mut bytes = env.encode().expect("within limits");
        for m in &mutations {
            apply(&mut bytes, m);
        }
        decodes_canonically_or_fails(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in arbitrary_frame_bytes()) {
        decodes_canonically_or_fails(&bytes)?;
    }
}
