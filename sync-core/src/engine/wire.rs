//! Reading what a peer sends: the changes inside a sync message (bounded in
//! decompressed size before Automerge inflates them), Bloom filters that are
//! safe to use, and what a peer's message says about its view of ours.

use std::collections::HashSet;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use crate::inflate;

/// Whether a peer's Bloom filter can be used safely: Automerge divides by its bit
/// count and allocates one slot per probe, so an empty bit set or an absurd probe
/// count from a damaged or hostile message must never reach it.
pub(super) fn sane_bloom(bloom: &sync::BloomFilter) -> bool {
    let bytes = bloom.to_bytes();
    if bytes.is_empty() {
        return true;
    }
    let mut fields = [0u64; 3];
    let mut at = 0;
    for f in &mut fields {
        let mut shift = 0;
        loop {
            let Some(b) = bytes.get(at) else { return false };
            at += 1;
            *f |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return false;
            }
        }
    }
    let [entries, bits_per_entry, probes] = fields;
    entries > 0
        && (1..=64).contains(&bits_per_entry)
        && (1..=64).contains(&probes)
        && bytes.len() > at
}

/// Whether a peer's message shows the same heads as ours while its last sync
/// point with us is something else (it has not heard that we are in sync).
pub(super) fn peer_unaware_of_sync(doc: &Automerge, msg: &sync::Message) -> bool {
    let mut ours = doc.get_heads();
    ours.sort();
    let mut theirs = msg.heads.clone();
    theirs.sort();
    if theirs != ours {
        return false;
    }
    match msg.have.first() {
        Some(have) => {
            let mut last_sync = have.last_sync.clone();
            last_sync.sort();
            last_sync != ours
        }
        None => true,
    }
}

/// Dependencies of held-back changes that neither the document nor the held-back set has.
pub(super) fn missing_deps(doc: &Automerge, pending: &[Change]) -> Vec<ChangeHash> {
    if pending.is_empty() {
        return Vec::new();
    }
    let held: HashSet<ChangeHash> = pending.iter().map(Change::hash).collect();
    let mut out: Vec<ChangeHash> = pending
        .iter()
        .flat_map(|c| c.deps().iter().copied())
        .filter(|d| !held.contains(d) && doc.get_change_meta_by_hash(d).is_none())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The largest bundle a device sends, in bytes: past it the changes go one
/// by one, as Automerge sends them, so that one refused or lost message
/// never costs a day's work again.
pub(super) const MAX_BUNDLE_BYTES: usize = 16 << 10;

/// A device's next sync message, its changes in one bundle.
///
/// When the peer lacks more than a third of a document, Automerge sends the
/// whole document instead of the changes. The server would then load that
/// document and take the new changes back out of it, which costs it more than
/// applying them. A device therefore offers the changes themselves, packed
/// into one Automerge bundle: columnar and compressed like a document, but
/// only the changes the peer lacks. A single change, a bundle no smaller
/// than the changes or one over `max_bundle` bytes goes as the changes.
pub(super) fn generate_bundled(
    doc: &Automerge,
    state: &mut sync::State,
    max_bundle: usize,
) -> Option<sync::Message> {
    let caps = state.their_capabilities.clone();
    if let Some(c) = state.their_capabilities.as_mut() {
        c.retain(|c| *c != sync::Capability::MessageV2);
    }
    let msg = doc.generate_sync_message(state);
    state.their_capabilities = caps;
    let mut msg = msg?;
    if msg.changes.len() < 2 {
        return Some(msg);
    }
    let raw: usize = msg.changes.iter().map(<[u8]>::len).sum();
    let hashes: Option<Vec<ChangeHash>> = msg
        .changes
        .iter()
        .map(|c| Change::try_from(c).ok().map(|c| c.hash()))
        .collect();
    let bundle = hashes.and_then(|h| doc.bundle(h).ok());
    if let Some(b) = bundle
        && b.bytes().len() < raw
        && b.bytes().len() <= max_bundle
    {
        msg.changes = b.bytes().to_vec().into();
        msg.version = sync::MessageVersion::V2;
    }
    Some(msg)
}

/// What a sync message carried.
#[derive(Debug, Default)]
pub(super) struct Extracted {
    /// The changes (for a whole document: those `have` lacks).
    pub changes: Vec<Change>,
    /// When the message was one whole document: that document merged with
    /// `have`, which is `have` with `changes` applied (no need to apply them
    /// again). `None` when `have` held too much the sender lacks.
    pub merged: Option<Automerge>,
}

/// The changes carried by a sync message: a sequence of storage chunks per entry
/// (single changes, concatenated changes, a whole document or a bundle). What
/// they declare is measured before Automerge reads any of them (see
/// [`crate::inflate`]) and held to `limits`. `have` is the receiver's copy of
/// the document.
pub(super) fn extract_changes(
    msg: &sync::Message,
    limits: &super::Limits,
    have: &Automerge,
) -> Result<Extracted, ExtractError> {
    let mut out = Extracted::default();
    let mut left = inflate::Bounds {
        budget: limits.max_inflated_bytes,
        ops: limits.max_ops_per_batch,
        ops_per_change: limits.max_ops_per_change,
    };
    let mut whole = None;
    let mut split = Vec::new();
    for entry in msg.changes.iter() {
        split.extend(split_chunks(entry).map_err(ExtractError::Malformed)?);
    }
    // Every chunk is measured before any is read: a message refused for
    // what its last chunk declares costs no Automerge work at all.
    for chunk in &split {
        let m = inflate::measure(chunk, left).map_err(|e| match e {
            inflate::InflateError::TooLarge { .. } => {
                ExtractError::TooLarge(limits.max_inflated_bytes)
            }
            inflate::InflateError::ChangeOps { declared, limit } => {
                ExtractError::ChangeOps { declared, limit }
            }
            inflate::InflateError::BatchOps { .. } => {
                ExtractError::BatchOps(limits.max_ops_per_batch)
            }
            inflate::InflateError::Malformed(what) => ExtractError::Malformed(format!(
                "A change in that sync message is malformed: {what}."
            )),
        })?;
        left.budget -= m.cost();
        left.ops -= m.ops;
    }
    let chunks = split.len();
    for chunk in split {
        let unreadable = |e: &dyn std::fmt::Display| {
            ExtractError::Malformed(format!(
                "A change in that sync message could not be read: {e}"
            ))
        };
        match chunk.get(8) {
            Some(1 | 2) => out
                .changes
                .push(Change::try_from(chunk).map_err(|e| unreadable(&e))?),
            Some(0) => {
                let mut doc = Automerge::load(chunk).map_err(|e| unreadable(&e))?;
                let (common, missing) = compare(have, &doc);
                // Only what the receiver lacks: the rest it has.
                out.changes.extend(doc.get_changes(&common));
                // With the few changes only the receiver has, the sender's
                // document becomes the receiver's with the new changes applied.
                if missing.len() <= MAX_MERGE_BACK {
                    let back: Vec<Change> = missing
                        .iter()
                        .filter_map(|h| have.get_change_by_hash(h))
                        .collect();
                    if back.len() == missing.len() && doc.apply_changes(back).is_ok() {
                        whole = Some(doc);
                    }
                }
            }
            Some(3) => out.changes.extend(unbundle(chunk)?),
            _ => {
                return Err(ExtractError::Malformed(
                    "A sync message holds data of an unknown kind.".into(),
                ));
            }
        }
    }
    if chunks == 1 {
        out.merged = whole;
    }
    Ok(out)
}

/// The changes of a bundle chunk. Automerge 0.12's bundle reader unwraps
/// where a bundle's operation table leaves a gap in a change's operations
/// (`MissingOps`, found by the engine_frame fuzzer after the pre-scan had
/// closed three other such panics), so a panic in it is the sender's
/// malformed message, not the receiver's failure. (On wasm32 a panic aborts
/// instead; a tablet reads only what the server sends.)
fn unbundle(chunk: &[u8]) -> Result<Vec<Change>, ExtractError> {
    let read = std::panic::catch_unwind(|| {
        automerge::Bundle::try_from(chunk)
            .map_err(|e| e.to_string())?
            .to_changes()
            .map_err(|e| e.to_string())
    });
    let e = match read {
        Ok(Ok(changes)) => return Ok(changes),
        Ok(Err(e)) => e,
        Err(_) => "its operations do not match its changes".to_owned(),
    };
    Err(ExtractError::Malformed(format!(
        "A change in that sync message could not be read: {}",
        crate::text::quote(&e)
    )))
}

/// The most changes that only the receiver has for which a whole document
/// from the sender is made the merged document (beyond, the receiver applies
/// the sender's new changes to its own copy instead).
const MAX_MERGE_BACK: usize = 64;

/// Compares the receiver's copy of a document with the sender's whole one:
/// the latest changes they share (whose ancestors are all they share) and
/// the changes only the receiver has. Walks back from the receiver's heads,
/// so it costs what the receiver alone has, not the history.
fn compare(have: &Automerge, theirs: &Automerge) -> (Vec<ChangeHash>, Vec<ChangeHash>) {
    let mut common = Vec::new();
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = have.get_heads();
    while let Some(h) = stack.pop() {
        if !seen.insert(h) {
            continue;
        }
        if theirs.get_change_meta_by_hash(&h).is_some() {
            common.push(h);
        } else if let Some(meta) = have.get_change_meta_by_hash(&h) {
            missing.push(h);
            stack.extend(meta.deps.iter().copied());
        }
    }
    // A shared change reached through another is an ancestor of it: only the
    // latest matter, but naming ancestors as well asks for nothing more.
    common.sort();
    (common, missing)
}

/// Why the changes of a sync message could not be taken.
#[derive(Debug)]
pub(super) enum ExtractError {
    /// Malformed, with a sentence for the peer.
    Malformed(String),
    /// Past the decompressed-size budget (the budget).
    TooLarge(usize),
    /// A change declares more operations than one change may hold.
    ChangeOps {
        /// The operations it declares.
        declared: u64,
        /// The limit.
        limit: u64,
    },
    /// The changes together declare more operations than one message may carry (the limit).
    BatchOps(u64),
}

/// Splits concatenated Automerge storage chunks (magic, checksum, type, LEB128 length, data).
pub(crate) fn split_chunks(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let bad = || "A sync message holds a malformed change.".to_string();
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.get(..4) != Some(&MAGIC[..]) {
            return Err(bad());
        }
        let mut len: u64 = 0;
        let mut at = 9;
        let mut shift = 0;
        loop {
            let b = *bytes.get(at).ok_or_else(bad)?;
            at += 1;
            len |= u64::from(b & 0x7f).checked_shl(shift).ok_or_else(bad)?;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(bad());
            }
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(at))
            .filter(|e| *e <= bytes.len())
            .ok_or_else(bad)?;
        let (chunk, rest) = bytes.split_at(end);
        out.push(chunk);
        bytes = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::Demo;

    fn sorted_hashes(changes: &[Change]) -> Vec<ChangeHash> {
        let mut hashes: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
        hashes.sort();
        hashes
    }

    fn carrying(chunk: Vec<u8>) -> sync::Message {
        sync::Message {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: vec![chunk].into(),
            flags: None,
            version: sync::MessageVersion::V2,
        }
    }

    #[test]
    fn a_whole_document_gives_only_what_the_receiver_lacks_and_the_merge() {
        let demo = Demo::new();
        let base = demo.realistic_audit(3, 0);
        // The receiver has a change the sender lacks; the sender has two of its own.
        let mut receiver = base.clone();
        demo.must(
            demo.audit_id,
            &mut receiver,
            &demo.member,
            demo.answer(9, 1),
        );
        let mut sender = base.clone();
        demo.must(demo.audit_id, &mut sender, &demo.lead, demo.answer(10, 0));
        demo.must(demo.audit_id, &mut sender, &demo.lead, demo.finding(1));
        let got = extract_changes(
            &carrying(sender.save()),
            &crate::engine::Limits::default(),
            &receiver,
        )
        .expect("reads");
        assert_eq!(
            sorted_hashes(&got.changes),
            sorted_hashes(&sender.get_changes(&base.get_heads())),
            "only the sender's two new changes"
        );
        let merged = got.merged.expect("a merge");
        assert!(crate::validate::is_merge_of(
            &merged,
            &receiver,
            &got.changes
        ));
    }

    /// The first message `receiver` sends `sender` (its heads, what it has,
    /// its capabilities), received by `sender` on `state`.
    fn heard_from(receiver: &Automerge, sender: &Automerge, state: &mut sync::State) {
        let first = receiver
            .generate_sync_message(&mut sync::State::new())
            .expect("a first message");
        let mut sender = sender.clone();
        sender.receive_sync_message(state, first).expect("received");
    }

    fn kinds(msg: &sync::Message) -> Vec<u8> {
        msg.changes
            .iter()
            .filter_map(|c| c.get(8).copied())
            .collect()
    }

    /// A server's copy, and a device's with a day's edits the server lacks:
    /// more than a third of the document, so plain Automerge would send it whole.
    fn a_day_offline(demo: &Demo) -> (Automerge, Automerge, Vec<ChangeHash>) {
        let server = demo.realistic_audit(2, 0);
        let mut device = server.clone();
        for i in 0..12 {
            demo.must(demo.audit_id, &mut device, &demo.lead, demo.answer(i, 1));
        }
        let fresh = sorted_hashes(&device.get_changes(&server.get_heads()));
        (server, device, fresh)
    }

    #[test]
    fn a_device_offers_what_the_server_lacks_as_one_bundle_not_its_whole_document() {
        let demo = Demo::new();
        let (server, device, fresh) = a_day_offline(&demo);
        let mut plain = sync::State::new();
        heard_from(&server, &device, &mut plain);
        let mut bundled = plain.clone();
        let whole = device.generate_sync_message(&mut plain).expect("a message");
        assert_eq!(kinds(&whole), vec![0], "plain Automerge sends the document");
        let msg = generate_bundled(&device, &mut bundled, MAX_BUNDLE_BYTES).expect("a message");
        assert_eq!(kinds(&msg), vec![3], "one bundle");
        let size = |m: &sync::Message| m.changes.iter().map(<[u8]>::len).sum::<usize>();
        assert!(
            size(&msg) < size(&whole),
            "{} vs {}",
            size(&msg),
            size(&whole)
        );
        // Sent as V2 and still offering V2 to the server.
        let msg = sync::Message::decode(&msg.encode()).expect("decodes");
        assert_eq!(msg.version, sync::MessageVersion::V2);
        assert!(
            bundled
                .their_capabilities
                .is_some_and(|c| c.contains(&sync::Capability::MessageV2))
        );
        let got = extract_changes(&msg, &crate::engine::Limits::default(), &server).expect("reads");
        assert_eq!(
            sorted_hashes(&got.changes),
            fresh,
            "exactly the day's changes"
        );
        let mut applied = server.clone();
        applied.apply_changes(got.changes).expect("they apply");
        assert_eq!(applied.get_heads(), device.get_heads());
    }

    #[test]
    fn one_change_goes_as_itself() {
        let demo = Demo::new();
        let server = demo.realistic_audit(2, 0);
        let mut device = server.clone();
        demo.must(demo.audit_id, &mut device, &demo.lead, demo.answer(5, 1));
        let mut state = sync::State::new();
        heard_from(&server, &device, &mut state);
        let msg = generate_bundled(&device, &mut state, MAX_BUNDLE_BYTES).expect("a message");
        assert_eq!(msg.changes.len(), 1);
        assert!(matches!(kinds(&msg)[..], [1 | 2]), "{:?}", kinds(&msg));
    }

    #[test]
    fn a_bundle_over_the_cap_goes_as_separate_changes() {
        let demo = Demo::new();
        let (server, device, fresh) = a_day_offline(&demo);
        let size = device
            .bundle(fresh.iter().copied())
            .expect("bundles")
            .bytes()
            .len();
        let mut at_cap = sync::State::new();
        heard_from(&server, &device, &mut at_cap);
        let mut over = at_cap.clone();
        let msg = generate_bundled(&device, &mut at_cap, size).expect("a message");
        assert_eq!(kinds(&msg), vec![3], "a bundle of exactly the cap is sent");
        let msg = generate_bundled(&device, &mut over, size - 1).expect("a message");
        assert_eq!(
            msg.changes.len(),
            fresh.len(),
            "one byte over: the changes one by one"
        );
        assert!(kinds(&msg).iter().all(|k| matches!(k, 1 | 2)));
    }

    #[test]
    fn a_receiver_with_nothing_in_common_gets_every_change() {
        let demo = Demo::new();
        let sender = demo.realistic_audit(3, 1);
        let got = extract_changes(
            &carrying(sender.save()),
            &crate::engine::Limits::default(),
            &Automerge::new(),
        )
        .expect("reads");
        assert_eq!(got.changes.len(), sender.get_changes(&[]).len());
        assert!(got.merged.is_some());
    }
}
