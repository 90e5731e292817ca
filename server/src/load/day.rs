//! Phase "offline day": every tablet is disconnected and does a day of work
//! on each audit it leads, plus a few edits on the audits it is a member of
//! (its partner's, at the same time as the partner). Each edit is checked by
//! sync-core's rules and stored on the tablet at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use sync_core::automerge::Automerge;
use sync_core::ids::DocumentId;

use super::tablet::Tablet;
use super::work::Checklist;

/// What the day did.
#[derive(Debug, Default)]
pub struct Day {
    /// Changes the leads made.
    pub lead_changes: usize,
    /// Changes the partners made.
    pub partner_changes: usize,
    /// Edits refused on the tablet (none are expected), with the first reason.
    pub refused: usize,
    /// The first refusal.
    pub first_refusal: Option<String>,
    /// Seconds it took (all tablets at once).
    pub seconds: f64,
    /// Every audit as the server stored it before the day (for the baselines).
    pub before: HashMap<DocumentId, Automerge>,
}

impl Day {
    /// Changes made in all.
    pub fn changes(&self) -> usize {
        self.lead_changes + self.partner_changes
    }
}

/// How a document's changes are split between its lead and its partner.
pub fn split(per_doc: usize, tablets: usize) -> (usize, usize) {
    let partner = match per_doc {
        _ if tablets < 2 => 0,
        20.. => 3,
        4.. => 1,
        _ => 0,
    };
    (per_doc - partner, partner)
}

/// Runs the day on every tablet (each on a thread of its own).
pub async fn offline_day(
    tablets: Vec<Tablet>,
    checklist: Arc<Checklist>,
    per_doc: usize,
) -> Result<(Vec<Tablet>, Day)> {
    let mut day = Day::default();
    for t in &tablets {
        let Some(engine) = &t.engine else { continue };
        for (id, _) in &t.leads {
            if let Some(doc) = engine.doc(id) {
                day.before.insert(*id, doc.clone());
            }
        }
    }
    let (lead_n, partner_n) = split(per_doc, tablets.len());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut tablet in tablets {
        let checklist = checklist.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut made = (0, 0);
            let mut refused: Vec<String> = Vec::new();
            let leads: Vec<_> = tablet.leads.iter().map(|(d, _)| *d).collect();
            for (j, doc) in leads.iter().enumerate() {
                let seed = ((tablet.index as u64) << 20) ^ j as u64;
                let rules = tablet
                    .author
                    .planned
                    .get(doc)
                    .map(|p| p.checklist.clone())
                    .unwrap_or_default();
                for edit in checklist.lead_day(seed, lead_n, &rules)? {
                    match tablet.edit_offline(*doc, &edit) {
                        Ok(()) => made.0 += 1,
                        Err(e) => refused.push(e.to_string()),
                    }
                }
            }
            let members = tablet.member_of.clone();
            for (j, doc) in members.iter().enumerate() {
                let seed = ((tablet.index as u64) << 20) ^ (j as u64) ^ 0x5555;
                for edit in checklist.partner_day(seed, partner_n, tablet.index)? {
                    match tablet.edit_offline(*doc, &edit) {
                        Ok(()) => made.1 += 1,
                        Err(e) => refused.push(e.to_string()),
                    }
                }
            }
            anyhow::Ok((tablet, made, refused))
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (tablet, made, refused) = task.await??;
        day.lead_changes += made.0;
        day.partner_changes += made.1;
        day.refused += refused.len();
        if day.first_refusal.is_none() {
            day.first_refusal = refused.into_iter().next();
        }
        out.push(tablet);
    }
    day.seconds = started.elapsed().as_secs_f64();
    Ok((out, day))
}
