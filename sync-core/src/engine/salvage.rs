//! Judging a batch on the server: accept it whole when it passes, and when it
//! does not, keep what can be kept. Each change is then judged alone, in
//! dependency order; a refused change takes with it every change that depends
//! on it, and the rest are accepted. A device thus loses only the edits that
//! broke a rule (and those built on them), which it makes again or shows to
//! its user as refused.

use std::collections::HashSet;

use automerge::{Automerge, Change, ChangeHash};

use crate::date::Date;
use crate::ids::DocumentId;
use crate::permissions::{Author, Refusal};
use crate::validate::{Accepted, Touched, split_ready, validate_batch, validate_merged};

/// Past this many changes a refused batch is refused whole: judging changes
/// one by one costs a copy of the document each, and a hostile peer must not
/// turn that into unbounded work.
pub const MAX_SALVAGE: usize = 256;

/// What the server does with a batch.
#[derive(Debug)]
pub struct Verdict {
    /// What is accepted (and what waits for missing dependencies).
    pub accepted: Accepted,
    /// What is refused, with the first rule broken.
    pub refused: Option<(Refusal, Vec<Change>)>,
}

impl Verdict {
    /// Refuses every change of a batch.
    pub fn refuse_all(batch: Vec<Change>, refusal: Refusal) -> Verdict {
        Verdict {
            accepted: Accepted {
                doc: None,
                applied: Vec::new(),
                pending: Vec::new(),
                already_stored: 0,
                touched: Touched::default(),
            },
            refused: Some((refusal, batch)),
        }
    }
}

/// Judges a batch from `author` against `doc`.
/// `merged`, if given, is `doc` with the whole batch applied (see
/// [`crate::validate::validate_merged`]).
pub fn judge(
    id: DocumentId,
    doc: &Automerge,
    batch: Vec<Change>,
    merged: Option<Automerge>,
    author: &Author,
    today: Date,
) -> Verdict {
    let whole = if batch.len() <= MAX_SALVAGE {
        validate_merged(id, doc, batch.clone(), merged, author, today)
    } else {
        return match validate_merged(id, doc, batch.clone(), merged, author, today) {
            Ok(accepted) => Verdict {
                accepted,
                refused: None,
            },
            Err(refusal) => Verdict::refuse_all(batch, refusal),
        };
    };
    match whole {
        Ok(accepted) => Verdict {
            accepted,
            refused: None,
        },
        Err(refusal) => one_by_one(id, doc, batch, author, today, refusal),
    }
}

fn one_by_one(
    id: DocumentId,
    doc: &Automerge,
    batch: Vec<Change>,
    author: &Author,
    today: Date,
    batch_refusal: Refusal,
) -> Verdict {
    let mut seen = HashSet::new();
    let fresh: Vec<Change> = batch
        .into_iter()
        .filter(|c| doc.get_change_meta_by_hash(&c.hash()).is_none() && seen.insert(c.hash()))
        .collect();
    let (ready, mut pending) = split_ready(doc, fresh);
    let mut current: Option<Automerge> = None;
    let mut applied = Vec::new();
    let mut refused = Vec::new();
    let mut bad: HashSet<ChangeHash> = HashSet::new();
    let mut first = None;
    let mut touched = Touched::default();
    for change in ready {
        if change.deps().iter().any(|d| bad.contains(d)) {
            bad.insert(change.hash());
            refused.push(change);
            continue;
        }
        let base = current.as_ref().unwrap_or(doc);
        match validate_batch(id, base, vec![change.clone()], author, today) {
            Ok(acc) => {
                if let Some(d) = acc.doc {
                    current = Some(d);
                }
                applied.extend(acc.applied);
                touched.merge(acc.touched);
            }
            Err(r) => {
                first.get_or_insert(r);
                bad.insert(change.hash());
                refused.push(change);
            }
        }
    }
    // Changes still waiting that build on a refused one are refused too.
    loop {
        let (tainted, rest): (Vec<Change>, Vec<Change>) = pending
            .into_iter()
            .partition(|c| c.deps().iter().any(|d| bad.contains(d)));
        pending = rest;
        if tainted.is_empty() {
            break;
        }
        bad.extend(tainted.iter().map(Change::hash));
        refused.extend(tainted);
    }
    let refused = if refused.is_empty() {
        None
    } else {
        Some((first.unwrap_or(batch_refusal), refused))
    };
    Verdict {
        accepted: Accepted {
            doc: current,
            applied,
            pending,
            already_stored: 0,
            touched,
        },
        refused,
    }
}
