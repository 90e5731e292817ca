//! Reading what a peer sends: the changes inside a sync message (bounded in
//! decompressed size before Automerge inflates them), Bloom filters that are
//! safe to use, and what a peer's message says about its view of ours.

use std::collections::HashSet;

use automerge::sync;
use automerge::{Automerge, Change, ChangeHash};

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

/// The changes carried by a sync message: a sequence of storage chunks per entry
/// (single changes, concatenated changes, a whole document or a bundle). Their
/// decompressed size together may not pass `budget`.
pub(super) fn extract_changes(
    msg: &sync::Message,
    budget: usize,
) -> Result<Vec<Change>, ExtractError> {
    let mut out = Vec::new();
    let mut left = budget;
    for entry in msg.changes.iter() {
        for chunk in split_chunks(entry).map_err(ExtractError::Malformed)? {
            let size = inflate::chunk_size(chunk, left).map_err(|e| match e {
                inflate::InflateError::TooLarge { .. } => ExtractError::TooLarge(budget),
                inflate::InflateError::Malformed(what) => ExtractError::Malformed(format!(
                    "A change in that sync message is malformed: {what}."
                )),
            })?;
            left -= size;
            let unreadable = |e: &dyn std::fmt::Display| {
                ExtractError::Malformed(format!(
                    "A change in that sync message could not be read: {e}"
                ))
            };
            match chunk.get(8) {
                Some(1 | 2) => out.push(Change::try_from(chunk).map_err(|e| unreadable(&e))?),
                Some(0) => out.extend(
                    Automerge::load(chunk)
                        .map_err(|e| unreadable(&e))?
                        .get_changes(&[]),
                ),
                Some(3) => out.extend(
                    automerge::Bundle::try_from(chunk)
                        .map_err(|e| unreadable(&e))?
                        .to_changes()
                        .map_err(|e| unreadable(&e))?,
                ),
                _ => {
                    return Err(ExtractError::Malformed(
                        "A sync message holds data of an unknown kind.".into(),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Why the changes of a sync message could not be taken.
#[derive(Debug)]
pub(super) enum ExtractError {
    /// Malformed, with a sentence for the peer.
    Malformed(String),
    /// Past the decompressed-size budget (the budget).
    TooLarge(usize),
}

/// Splits concatenated Automerge storage chunks (magic, checksum, type, LEB128 length, data).
fn split_chunks(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
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
