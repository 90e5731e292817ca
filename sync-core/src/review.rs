//! The `review` document: a management review of a unit, written by its nodal officers.
//!
//! Layout (root map): `schema`, `v`, `id`, `unit`, `title`, `held_on`,
//! `inputs` (the frozen snapshot of review inputs, as text), `decisions[..]`,
//! `actions{<id>: {text, owner, target, done_on}}`, `minutes`.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ROOT};

use crate::date::Date;
use crate::ids::{DocumentId, ItemId, UnitCode};
use crate::kind::DocKind;
use crate::nc::Action;
use crate::schema::{Reader, SCHEMA_VERSION, SchemaError, bounded};

/// A management review, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// The document id.
    pub id: DocumentId,
    /// The unit reviewed.
    pub unit: UnitCode,
    /// Title, e.g. `MR-1`.
    pub title: String,
    /// The date the review was held, once held.
    pub held_on: Option<Date>,
    /// The frozen inputs snapshot (previous actions, audit results, NC status, ...).
    pub inputs: String,
    /// Decisions recorded, in order.
    pub decisions: Vec<String>,
    /// Action items by id.
    pub actions: BTreeMap<ItemId, Action>,
    /// Action items written at the same time by nodal officers who had not
    /// seen each other's: every version, until one writes the item again.
    pub contested_actions: crate::nc::ContestedActions,
    /// Minutes.
    pub minutes: String,
    /// Minutes written at the same time by nodal officers who had not seen
    /// each other's: every value, with who wrote it and when, until one
    /// writes minutes over them all. Empty when uncontested.
    pub contested_minutes: Vec<crate::nc::ContestedText>,
}

impl Review {
    /// Reads a review document. Never panics; a schema mismatch names its path.
    pub fn read(doc: &Automerge) -> Result<Review, SchemaError> {
        let r = Reader::whole(doc, None);
        r.expect_kind(DocKind::Review)?;
        let (actions, contested_actions) = crate::nc::read_actions(&r)?;
        Ok(Review {
            id: r.parse(&ROOT, "id", "")?,
            unit: r.parse(&ROOT, "unit", "")?,
            title: bounded("title", r.str(&ROOT, "title", "")?)?,
            held_on: r.opt_parse(&ROOT, "held_on", "")?,
            inputs: r.opt_str(&ROOT, "inputs", "")?.unwrap_or_default(),
            decisions: r.str_list(&ROOT, "decisions", "")?,
            actions,
            contested_actions,
            contested_minutes: crate::nc::contested_text_of(doc, None, "minutes")?,
            minutes: bounded(
                "minutes",
                r.opt_str(&ROOT, "minutes", "")?.unwrap_or_default(),
            )?,
        })
    }
}

/// Writes a new review document's skeleton.
pub(crate) fn write_new<T: Transactable>(
    tx: &mut T,
    id: DocumentId,
    unit: &UnitCode,
    title: &str,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, "schema", DocKind::Review.schema())?;
    tx.put(ROOT, "v", SCHEMA_VERSION)?;
    tx.put(ROOT, "id", id.to_string())?;
    tx.put(ROOT, "unit", unit.to_string())?;
    tx.put(ROOT, "title", title)?;
    tx.put(ROOT, "inputs", "")?;
    tx.put_object(ROOT, "decisions", ObjType::List)?;
    tx.put_object(ROOT, "actions", ObjType::Map)?;
    tx.put(ROOT, "minutes", "")?;
    Ok(())
}
