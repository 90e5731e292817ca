//! The model behind the contest property tests: it knows nothing of
//! Automerge. Each tablet keeps its copy of a document and the ids of the
//! writes it has seen; a write to a place supersedes exactly the writes to
//! that place its tablet had seen; a value is in force on a tablet when the
//! tablet has seen it and nothing it has seen superseded it. A contest is
//! two or more values in force at one place.

use std::collections::{BTreeMap, BTreeSet};

use automerge::Automerge;

use crate::permissions::Author;

/// One tablet: its copy, its user, and the writes the model says it has seen.
#[derive(Debug)]
pub struct Tablet {
    /// The tablet's copy of the document.
    pub doc: Automerge,
    /// Who edits on it.
    pub author: Author,
    /// The ids of the writes it has seen.
    pub seen: BTreeSet<usize>,
}

/// One write: where, the value it shows (`None`: it shows nothing, e.g. a
/// clearing or an empty text), and the writes it superseded.
#[derive(Debug)]
pub struct Write<P> {
    /// The place written (an item, a field).
    pub place: P,
    /// The value shown while it is in force.
    pub shown: Option<String>,
    /// The writes to the same place its tablet had seen.
    pub supersedes: BTreeSet<usize>,
}

/// Every write of one history, by id (ids count up from 0).
#[derive(Debug)]
pub struct Writes<P>(BTreeMap<usize, Write<P>>);

impl<P: Copy + Eq> Default for Writes<P> {
    fn default() -> Self {
        Writes(BTreeMap::new())
    }
}

impl<P: Copy + Eq> Writes<P> {
    /// The id the next write gets.
    pub fn next_id(&self) -> usize {
        self.0.len()
    }

    /// Records a write `tablet` made to `place` (it supersedes what the
    /// tablet had seen there) and marks it seen there. Returns its id.
    pub fn record(&mut self, tablet: &mut Tablet, place: P, shown: Option<String>) -> usize {
        let id = self.next_id();
        let supersedes = tablet
            .seen
            .iter()
            .copied()
            .filter(|w| self.0[w].place == place)
            .collect();
        self.0.insert(
            id,
            Write {
                place,
                shown,
                supersedes,
            },
        );
        tablet.seen.insert(id);
        id
    }

    /// The values in force at `place` on `tablet`.
    pub fn in_force(&self, tablet: &Tablet, place: P) -> BTreeSet<String> {
        let superseded: BTreeSet<usize> = tablet
            .seen
            .iter()
            .flat_map(|w| self.0[w].supersedes.iter().copied())
            .collect();
        tablet
            .seen
            .iter()
            .filter(|w| !superseded.contains(w))
            .map(|w| &self.0[w])
            .filter(|w| w.place == place)
            .filter_map(|w| w.shown.clone())
            .collect()
    }
}

/// Tablet `to` receives everything tablet `from` holds.
pub fn sync(tablets: &mut [Tablet], to: usize, from: usize) {
    if to == from {
        return;
    }
    let mut other = tablets[from].doc.clone();
    let seen = tablets[from].seen.clone();
    tablets[to].doc.merge(&mut other).expect("merge");
    tablets[to].seen.extend(seen);
}

/// Every tablet receives everything every other holds.
pub fn sync_all(tablets: &mut [Tablet]) {
    for to in 0..tablets.len() {
        for from in 0..tablets.len() {
            sync(tablets, to, from);
        }
    }
}
