//! Baselines measured on the same day's work: what plain Automerge needs to
//! apply the changes in memory, and how many bytes plain Automerge sync
//! exchanges to bring the server copy and both tablet copies together.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sync_core::automerge::sync::{Message, State, SyncDoc};
use sync_core::automerge::{Automerge, Change};
use sync_core::ids::DocumentId;

use super::tablet::Tablet;

/// The baselines.
#[derive(Debug, Default)]
pub struct Baselines {
    /// Time spent in `Automerge::apply_changes` only.
    pub apply: Duration,
    /// Changes applied.
    pub changes: usize,
    /// Bytes of the encoded sync messages, both ways.
    pub sync_bytes: u64,
    /// Sync messages, both ways.
    pub sync_messages: u64,
    /// Documents whose plain sync did not end with equal heads (none expected).
    pub sync_mismatches: usize,
}

impl Baselines {
    /// Microseconds per change applied.
    pub fn apply_us_per_change(&self) -> f64 {
        if self.changes == 0 {
            0.0
        } else {
            self.apply.as_secs_f64() * 1e6 / self.changes as f64
        }
    }
}

/// Measures both baselines; `before` holds each audit as stored before the day.
pub fn measure(tablets: &[Tablet], before: &HashMap<DocumentId, Automerge>) -> Result<Baselines> {
    let mut holders: HashMap<DocumentId, Vec<usize>> = HashMap::new();
    for (k, t) in tablets.iter().enumerate() {
        for d in t.documents() {
            holders.entry(d).or_default().push(k);
        }
    }
    let mut out = Baselines::default();
    for (id, server) in before {
        let copies: Vec<&Automerge> = holders
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|k| tablets[*k].engine.as_ref().and_then(|e| e.doc(id)))
            .collect();
        let base = server.get_heads();
        let mut seen = HashSet::new();
        let mut changes: Vec<Change> = Vec::new();
        for copy in &copies {
            for c in copy.get_changes(&base) {
                if seen.insert(c.hash()) {
                    changes.push(c);
                }
            }
        }
        let mut fresh = server.clone();
        let batch = changes.clone();
        let started = Instant::now();
        fresh
            .apply_changes(batch)
            .with_context(|| format!("plain Automerge cannot apply the day's changes of {id}"))?;
        out.apply += started.elapsed();
        out.changes += changes.len();

        // Each tablet copy meets the server copy over a fresh connection;
        // then the first again, to take what the others brought.
        let mut server_copy = server.clone();
        let mut tablet_copies: Vec<Automerge> = copies.iter().map(|c| (*c).clone()).collect();
        let order: Vec<usize> = (0..tablet_copies.len())
            .chain((tablet_copies.len() > 1).then_some(0))
            .collect();
        for k in order {
            let (bytes, messages) = plain_sync(
                &mut tablet_copies[k],
                &mut State::new(),
                &mut server_copy,
                &mut State::new(),
            )?;
            out.sync_bytes += bytes;
            out.sync_messages += messages;
        }
        let mut want = server_copy.get_heads();
        want.sort();
        for c in &tablet_copies {
            let mut h = c.get_heads();
            h.sort();
            if h != want {
                out.sync_mismatches += 1;
            }
        }
    }
    Ok(out)
}

/// Syncs two documents with plain Automerge sync, each on its sync state
/// with the other, until neither has anything to say; returns the bytes and
/// the number of the encoded messages.
pub fn plain_sync(
    a: &mut Automerge,
    sa: &mut State,
    b: &mut Automerge,
    sb: &mut State,
) -> Result<(u64, u64)> {
    let mut bytes = 0u64;
    let mut messages = 0u64;
    for _ in 0..100 {
        let mut quiet = true;
        if let Some(m) = a.generate_sync_message(sa) {
            let encoded = m.encode();
            bytes += encoded.len() as u64;
            messages += 1;
            b.receive_sync_message(sb, Message::decode(&encoded)?)?;
            quiet = false;
        }
        if let Some(m) = b.generate_sync_message(sb) {
            let encoded = m.encode();
            bytes += encoded.len() as u64;
            messages += 1;
            a.receive_sync_message(sa, Message::decode(&encoded)?)?;
            quiet = false;
        }
        if quiet {
            return Ok((bytes, messages));
        }
    }
    anyhow::bail!("plain Automerge sync did not go quiet in 100 rounds")
}
