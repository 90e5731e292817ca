//! Baselines measured on the same day's work: what plain Automerge needs to
//! apply the changes in memory, what sync-core's validator needs to judge
//! and apply the same changes as the server receives them (one batch per
//! tablet and document), and how many bytes plain Automerge sync exchanges
//! to bring the server copy and both tablet copies together.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sync_core::automerge::sync::{Message, State, SyncDoc};
use sync_core::automerge::{Automerge, Change};
use sync_core::date::{Date, Timestamp};
use sync_core::ids::DocumentId;
use sync_core::validate::validate_batch;

use super::tablet::Tablet;

/// The baselines.
#[derive(Debug, Default)]
pub struct Baselines {
    /// Time spent in `Automerge::apply_changes` only.
    pub apply: Duration,
    /// Changes applied.
    pub changes: usize,
    /// Time spent in sync-core's `validate_batch` (the copy it makes, the
    /// batch applied to it, every operation checked) on each tablet's batch.
    pub validate: Duration,
    /// Changes judged (and accepted) by the validator.
    pub validated: usize,
    /// Batches the validator refused (none expected: the tablets check
    /// their own edits by the same rules).
    pub validator_refusals: Vec<String>,
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

    /// Microseconds per change judged and applied by the validator.
    pub fn validate_us_per_change(&self) -> f64 {
        if self.validated == 0 {
            0.0
        } else {
            self.validate.as_secs_f64() * 1e6 / self.validated as f64
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
    let today = Date::in_offices(Timestamp(crate::db::now_ms()));
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

        // The validator, as the server runs it: each tablet's own changes
        // as one batch from its user, on the document as it stands.
        let mut judged = server.clone();
        for k in holders.get(id).into_iter().flatten() {
            let t = &tablets[*k];
            let own: Vec<Change> = changes
                .iter()
                .filter(|c| t.author.actors.contains(c.actor_id()))
                .cloned()
                .collect();
            if own.is_empty() {
                continue;
            }
            let n = own.len();
            let started = Instant::now();
            let verdict = validate_batch(*id, &judged, own, &t.author, today);
            out.validate += started.elapsed();
            match verdict {
                Ok(accepted) => {
                    out.validated += n;
                    if let Some(doc) = accepted.doc {
                        judged = doc;
                    }
                }
                Err(refusal) => out
                    .validator_refusals
                    .push(format!("{}'s day on {id}: {refusal}", t.user)),
            }
        }

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
