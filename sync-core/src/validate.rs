//! Change validation (DESIGN §4): one function decides whether a batch of
//! incoming changes may be stored, by applying it to a copy of the document
//! and checking every operation of every change against the author's rights.
//!
//! Operations are checked, not patches: a write that loses a concurrent
//! last-writer-wins race makes no visible patch yet stays in the document.
//! The copy with the batch applied is returned on acceptance, so accepting
//! never means applying twice.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, Prop, ROOT, ReadDoc};

use crate::audit::{AuditContent, AuditHeader, Finding, Response};
use crate::date::Date;
use crate::ids::DocumentId;
use crate::kind::DocKind;
use crate::nc::{LINK_FIELDS, Nc};
use crate::permissions::{
    Author, DocContext, Field, Refusal, check_create, check_field, check_move, refuse,
};
use crate::review::Review;
use crate::schema::{Reader, join};
use crate::workflow::{AuditState, Event, Lifecycle, NcState, Requirement};

/// The most changes one batch may carry.
pub const MAX_BATCH_CHANGES: usize = 10_000;

/// A batch that may be stored.
#[derive(Debug)]
pub struct Accepted {
    /// The document with the batch applied: replace the old one with it
    /// (`None` when the batch held nothing new to apply).
    pub doc: Option<Automerge>,
    /// The new changes applied, in dependency order.
    pub applied: Vec<Change>,
    /// Changes that wait for dependencies not yet received (not applied, not judged).
    pub pending: Vec<Change>,
    /// How many changes of the batch the document already had (relays are always allowed).
    pub already_stored: usize,
}

/// Root keys that are written once, when the document is created.
fn write_once(kind: DocKind, key: &str) -> bool {
    matches!(key, "schema" | "v" | "id")
        || match kind {
            DocKind::Nc => LINK_FIELDS.contains(&key),
            DocKind::Review => key == "unit",
            DocKind::Audit => false,
        }
}

/// Where an operation writes: the top-level key and the key below it.
#[derive(Clone, Debug)]
struct Place {
    top: String,
    second: Option<String>,
    /// The object written is a direct child of the root (e.g. the `events` list itself).
    at_top_object: bool,
}

fn prop_text(p: &Prop) -> String {
    match p {
        Prop::Map(k) => k.clone(),
        Prop::Seq(i) => i.to_string(),
    }
}

fn key_text(k: &Key) -> Option<String> {
    match k {
        Key::Map(s) => Some(s.to_string()),
        Key::Seq(_) => None,
    }
}

/// Validates a batch of changes from `author` against document `id` as stored,
/// on the date `today` (the server's date, never the device's).
pub fn validate_batch(
    id: DocumentId,
    doc: &Automerge,
    changes: Vec<Change>,
    author: &Author,
    today: Date,
) -> Result<Accepted, Refusal> {
    if changes.len() > MAX_BATCH_CHANGES {
        return Err(refuse(
            "batch.size",
            format!(
                "A batch of {} changes is over the limit of {MAX_BATCH_CHANGES}.",
                changes.len()
            ),
        ));
    }
    let mut already_stored = 0;
    let mut fresh = Vec::with_capacity(changes.len());
    let mut seen = HashSet::new();
    for c in changes {
        if doc.get_change_meta_by_hash(&c.hash()).is_some() {
            already_stored += 1;
        } else if seen.insert(c.hash()) {
            fresh.push(c);
        }
    }
    let (ready, pending) = split_ready(doc, fresh);
    if ready.is_empty() {
        return Ok(Accepted {
            doc: None,
            applied: Vec::new(),
            pending,
            already_stored,
        });
    }
    for c in &ready {
        if !author.actors.contains(c.actor_id()) {
            return Err(refuse(
                "actor.not_registered",
                format!(
                    "A change was made under actor {} which is not registered to {}'s devices.",
                    c.actor_id(),
                    author.user
                ),
            ));
        }
    }
    let before =
        if doc.get(ROOT, "schema").ok().flatten().is_some() {
            Some(DocContext::read(doc).map_err(|e| {
                refuse("schema", format!("The stored document cannot be read: {e}"))
            })?)
        } else {
            None
        };
    let mut fork = doc.clone();
    fork.apply_changes(ready.iter().cloned()).map_err(|e| {
        refuse(
            "change.malformed",
            format!("The changes could not be applied: {e}"),
        )
    })?;
    let ctx = DocContext::read(&fork).map_err(|e| {
        refuse(
            "schema",
            format!("The document does not match its schema: {e}"),
        )
    })?;
    if ctx.id != id {
        return Err(refuse(
            "doc.id",
            format!(
                "The changes claim document {} but were sent for {id}.",
                ctx.id
            ),
        ));
    }
    match &before {
        Some(b) if *b != ctx => {
            return Err(refuse(
                "doc.write_once",
                "The changes alter what the document belongs to.",
            ));
        }
        Some(_) => {}
        None => check_create(&ctx, author, today)?,
    }
    let mut check = Checker {
        fork: &fork,
        ctx: &ctx,
        author,
        today,
        existed: before.is_some(),
        doc,
        made: HashSet::new(),
        places: HashMap::new(),
        new_events: HashSet::new(),
        new_extensions: false,
        touched: HashSet::new(),
    };
    for c in &ready {
        check.change(c)?;
    }
    check.events()?;
    check.schema()?;
    Ok(Accepted {
        doc: Some(fork),
        applied: ready,
        pending,
        already_stored,
    })
}

/// Splits changes into those whose dependencies are all present (in the document or
/// earlier in the batch) and those that must wait.
pub(crate) fn split_ready(doc: &Automerge, mut rest: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
    let mut ready = Vec::with_capacity(rest.len());
    let mut have: HashSet<ChangeHash> = HashSet::new();
    loop {
        let before = rest.len();
        let mut waiting = Vec::new();
        for c in rest {
            if c.deps()
                .iter()
                .all(|d| have.contains(d) || doc.get_change_meta_by_hash(d).is_some())
            {
                have.insert(c.hash());
                ready.push(c);
            } else {
                waiting.push(c);
            }
        }
        rest = waiting;
        if rest.len() == before || rest.is_empty() {
            return (ready, rest);
        }
    }
}

struct Checker<'a> {
    fork: &'a Automerge,
    doc: &'a Automerge,
    ctx: &'a DocContext,
    author: &'a Author,
    today: Date,
    existed: bool,
    /// Objects made by this batch: (counter, actor).
    made: HashSet<(u64, ActorId)>,
    places: HashMap<(u64, ActorId), Place>,
    /// Event maps inserted by this batch.
    new_events: HashSet<(u64, ActorId)>,
    new_extensions: bool,
    /// (top, second) keys written, for the schema check.
    touched: HashSet<(String, Option<String>)>,
}

impl Checker<'_> {
    fn change(&mut self, c: &Change) -> Result<(), Refusal> {
        let expanded = c.decode();
        let start = expanded.start_op.get();
        for (i, op) in expanded.operations.iter().enumerate() {
            let opid = (start + i as u64, expanded.actor_id.clone());
            let is_make = matches!(op.action, OpType::Make(_));
            if is_make {
                self.made.insert(opid.clone());
            }
            match &op.obj {
                ObjectId::Root => {
                    let key = key_text(&op.key)
                        .ok_or_else(|| refuse("schema.root", "The document root must be a map."))?;
                    self.root_op(&key, is_make)?;
                    self.touched.insert((key, None));
                }
                ObjectId::Id(obj) => {
                    let obj_key = (obj.counter(), obj.actor().clone());
                    let place = self.place(&obj_key)?;
                    let second = if place.at_top_object {
                        key_text(&op.key)
                    } else {
                        place.second.clone()
                    };
                    self.nested_op(&place, &obj_key, op.insert, is_make, &op.action, opid)?;
                    self.touched.insert((place.top.clone(), second));
                }
            }
        }
        Ok(())
    }

    fn root_op(&mut self, key: &str, is_make: bool) -> Result<(), Refusal> {
        let kind = self.ctx.kind;
        if write_once(kind, key)
            || key == "events"
            || (is_make && self.doc.get(ROOT, key).ok().flatten().is_some())
        {
            if self.existed {
                return Err(refuse(
                    "doc.write_once",
                    format!("'{key}' is set when the {kind} is created and cannot be changed."),
                ));
            }
            return Ok(());
        }
        match Field::of(kind, key) {
            Some(Field::NcExtension) if self.existed => Err(refuse(
                "nc.extension.append_only",
                "Extensions can only be added, never changed.",
            )),
            Some(field) if self.existed => check_field(self.ctx, self.author, field, self.today),
            // A new document's skeleton is written by its creator, already checked.
            Some(_) => Ok(()),
            None => Err(refuse(
                "schema.unknown_field",
                format!("'{key}' is not a field of a {kind}."),
            )),
        }
    }

    fn place(&mut self, obj: &(u64, ActorId)) -> Result<Place, Refusal> {
        if let Some(p) = self.places.get(obj) {
            return Ok(p.clone());
        }
        let ex = ObjId::Id(obj.0, obj.1.clone(), usize::MAX);
        let unknown = || {
            refuse(
                "change.unknown_object",
                "A change writes into an object the document does not have.",
            )
        };
        let path: Vec<_> = self.fork.parents(&ex).map_err(|_| unknown())?.collect();
        let top = path.last().ok_or_else(unknown)?;
        let place = Place {
            top: prop_text(&top.prop),
            second: path
                .len()
                .checked_sub(2)
                .and_then(|i| path.get(i))
                .map(|p| prop_text(&p.prop)),
            at_top_object: path.len() == 1,
        };
        self.places.insert(obj.clone(), place.clone());
        Ok(place)
    }

    fn nested_op(
        &mut self,
        place: &Place,
        obj: &(u64, ActorId),
        insert: bool,
        is_make: bool,
        action: &OpType,
        opid: (u64, ActorId),
    ) -> Result<(), Refusal> {
        let kind = self.ctx.kind;
        let append_only =
            place.top == "events" || (kind == DocKind::Nc && place.top == "extensions");
        if append_only {
            let ok = if place.at_top_object {
                insert && matches!(action, OpType::Make(automerge::ObjType::Map))
            } else {
                self.made.contains(obj)
            };
            if !ok {
                return Err(refuse(
                    "events.append_only",
                    format!(
                        "The {} of a {kind} can only be appended to, never changed or removed.",
                        place.top
                    ),
                ));
            }
            if place.at_top_object {
                if place.top == "events" {
                    self.new_events.insert(opid);
                } else {
                    self.new_extensions = true;
                }
            }
            if place.top == "events" {
                return Ok(());
            }
        }
        let _ = is_make;
        match Field::of(kind, &place.top) {
            Some(field) => check_field(self.ctx, self.author, field, self.today),
            None => Err(refuse(
                "schema.unknown_field",
                format!("'{}' is not a field of a {kind}.", place.top),
            )),
        }
    }

    /// Checks every new lifecycle event: its author, the move table and the move's requirements.
    fn events(&self) -> Result<(), Refusal> {
        if self.new_events.is_empty() {
            return Ok(());
        }
        let r = Reader::now(self.fork);
        let bad = |e: crate::schema::SchemaError| {
            refuse(
                "schema",
                format!("A lifecycle event does not match the schema: {e}"),
            )
        };
        let list = r
            .opt_list(&ROOT, "events", "")
            .map_err(bad)?
            .ok_or_else(|| refuse("schema", "events is missing"))?;
        for i in 0..r.len(&list) {
            let obj = r.map_at(&list, i, "events").map_err(bad)?;
            let ObjId::Id(counter, actor, _) = &obj else {
                continue;
            };
            if !self.new_events.contains(&(*counter, actor.clone())) {
                continue;
            }
            let e = Event::read(&r, &list, i).map_err(bad)?;
            if e.by != self.author.user {
                return Err(refuse(
                    "move.by",
                    format!(
                        "A move is recorded as made by {} but was sent by {}.",
                        e.by, self.author.user
                    ),
                ));
            }
            match self.ctx.kind {
                DocKind::Nc => self.nc_move(&e)?,
                DocKind::Audit => self.audit_move(&e)?,
                DocKind::Review => {
                    return Err(refuse(
                        "move.table",
                        "Management reviews have no lifecycle moves.",
                    ));
                }
            }
        }
        Ok(())
    }

    fn from_state<S: Lifecycle>(e: &Event) -> Result<S, Refusal> {
        e.from.parse::<S>().map_err(|_| {
            refuse(
                "move.table",
                format!("'{}' is not a state a move can start from.", e.from),
            )
        })
    }

    fn nc_move(&self, e: &Event) -> Result<(), Refusal> {
        let from: NcState = Self::from_state(e)?;
        check_move(self.ctx, self.author, &e.mv, from, self.today)?;
        let nc = Nc::read(self.fork)
            .map_err(|err| refuse("schema", format!("The NC does not match its schema: {err}")))?;
        let row = crate::workflow::find_move(&e.mv, from)
            .ok_or_else(|| refuse("move.table", "unknown move"))?;
        for req in row.requires {
            let met = match req {
                Requirement::Reason => !e.note.trim().is_empty(),
                Requirement::Description => !nc.description.trim().is_empty(),
                Requirement::Correction => !nc.correction.trim().is_empty(),
                Requirement::RootCause => !nc.root_cause.trim().is_empty(),
                Requirement::ActionPlan => {
                    !nc.actions.is_empty()
                        && nc
                            .actions
                            .values()
                            .all(|a| !a.text.trim().is_empty() && !a.owner.trim().is_empty())
                }
                Requirement::ActionsDone => {
                    !nc.actions.is_empty() && nc.actions.values().all(|a| a.done_on.is_some())
                }
                Requirement::VerificationNote => nc
                    .verification
                    .as_ref()
                    .is_some_and(|v| !v.note.trim().is_empty()),
                Requirement::Heads => !e.heads.is_empty(),
            };
            if !met {
                return Err(refuse(
                    "move.requirement",
                    format!("'{}' needs {req} first.", e.mv),
                ));
            }
        }
        Ok(())
    }

    fn audit_move(&self, e: &Event) -> Result<(), Refusal> {
        let from: AuditState = Self::from_state(e)?;
        check_move(self.ctx, self.author, &e.mv, from, self.today)?;
        let row = crate::workflow::find_move(&e.mv, from)
            .ok_or_else(|| refuse("move.table", "unknown move"))?;
        for req in row.requires {
            let met = match req {
                Requirement::Reason => !e.note.trim().is_empty(),
                Requirement::Heads => {
                    !e.heads.is_empty()
                        && e.heads
                            .iter()
                            .all(|h| self.fork.get_change_meta_by_hash(h).is_some())
                }
                _ => true,
            };
            if !met {
                return Err(refuse(
                    "move.requirement",
                    format!("'{}' needs {req} first.", e.mv),
                ));
            }
        }
        Ok(())
    }

    /// Reads what the batch touched, typed: a write that breaks the schema is refused.
    fn schema(&self) -> Result<(), Refusal> {
        let r = Reader::now(self.fork);
        let bad = |e: crate::schema::SchemaError| {
            refuse(
                "schema",
                format!("The change does not match the schema: {e}"),
            )
        };
        match self.ctx.kind {
            DocKind::Nc => {
                let nc = Nc::read(self.fork).map_err(bad)?;
                if self.new_extensions
                    && nc
                        .extensions
                        .last()
                        .is_some_and(|x| x.by != self.author.user)
                {
                    return Err(refuse(
                        "nc.extension.by",
                        "An extension must name the officer who grants it.",
                    ));
                }
                Ok(())
            }
            DocKind::Review => Review::read(self.fork).map(|_| ()).map_err(bad),
            DocKind::Audit if !self.existed => {
                AuditHeader::read(&r).map_err(bad)?;
                AuditContent::read(&r).map(|_| ()).map_err(bad)
            }
            DocKind::Audit => {
                for (top, second) in &self.touched {
                    match (top.as_str(), second) {
                        ("header", _) => AuditHeader::read(&r).map(|_| ()).map_err(bad)?,
                        ("responses", Some(key)) => {
                            self.read_entry(&r, "responses", key, |r, o, p| {
                                Response::read(r, o, p).map(|_| ())
                            })?
                        }
                        ("findings", Some(key)) => {
                            self.read_entry(&r, "findings", key, |r, o, p| {
                                Finding::read(r, o, p).map(|_| ())
                            })?
                        }
                        ("notes", _) => {
                            r.opt_str(&ROOT, "notes", "").map_err(bad)?;
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
        }
    }

    fn read_entry(
        &self,
        r: &Reader<'_>,
        top: &str,
        key: &str,
        read: impl Fn(&Reader<'_>, &ObjId, &str) -> Result<(), crate::schema::SchemaError>,
    ) -> Result<(), Refusal> {
        let bad = |e: crate::schema::SchemaError| {
            refuse(
                "schema",
                format!("The change does not match the schema: {e}"),
            )
        };
        let path = join(top, key);
        let checked_key = match top {
            "responses" => key
                .parse::<crate::ids::ResponseKey>()
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => key
                .parse::<crate::ids::ItemId>()
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        checked_key.map_err(|e| {
            refuse(
                "schema",
                format!("The change does not match the schema: {path}: {e}"),
            )
        })?;
        let container = r.map(&ROOT, top, "").map_err(bad)?;
        match r.opt_map(&container, key, top).map_err(bad)? {
            Some(obj) => read(r, &obj, &path).map_err(bad),
            None => Ok(()), // removed
        }
    }
}
