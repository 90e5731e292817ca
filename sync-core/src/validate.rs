//! Change validation (DESIGN §4): one function decides whether a batch of
//! incoming changes may be stored, by applying it to a copy of the document
//! and checking every operation of every change against the author's rights.
//!
//! Operations are checked, not patches: a write that loses a concurrent
//! last-writer-wins race makes no visible patch yet stays in the document.
//! The copy with the batch applied is returned on acceptance, so accepting
//! never means applying twice.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{
    ActorId, Automerge, Change, ChangeHash, ExpandedChange, ObjId, Prop, ROOT, ReadDoc,
};

use crate::audit::{Answer, AuditContent, AuditHeader};
use crate::date::Date;
use crate::fields::{self, Form, Object, Shape, Writer};
use crate::ids::DocumentId;
use crate::kind::DocKind;
use crate::nc::Nc;
use crate::permissions::{
    Author, DocContext, Field, Refusal, check_create, check_field, check_move, refuse,
};
use crate::review::Review;
use crate::rules::Rule;
use crate::schema::{MAX_TEXT_BYTES, Reader, SchemaError, join};
use crate::text::{code_point, forbidden, quote};
use crate::workflow::{AuditState, Event, Lifecycle, NcState, Requirement, Who};

mod reread;

/// The most changes one batch may carry.
pub const MAX_BATCH_CHANGES: usize = 10_000;

/// The fewest characters an extension's justification has, not counting
/// spaces at either end.
pub const MIN_JUSTIFICATION: usize = 15;

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
    /// The parts of the document the applied changes wrote.
    pub touched: Touched,
}

/// The parts of a document a batch wrote, so that what is derived from the
/// document (report rows) can be brought up to date by reading only those
/// parts again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Nothing is known of what was written: read everything again.
    pub everything: bool,
    /// Root keys written directly (their whole value replaced or removed).
    pub roots: BTreeSet<String>,
    /// Root keys with a write somewhere below them.
    pub below: BTreeSet<String>,
    /// Entries of root maps with a write in or under them: (root key, entry key).
    pub entries: BTreeSet<(String, String)>,
}

impl Touched {
    /// Unknown writes: everything may have changed.
    pub fn unknown() -> Touched {
        Touched {
            everything: true,
            ..Touched::default()
        }
    }

    /// Adds what another batch wrote.
    pub fn merge(&mut self, other: Touched) {
        self.everything |= other.everything;
        self.roots.extend(other.roots);
        self.below.extend(other.below);
        self.entries.extend(other.entries);
    }

    /// Whether anything at or below root key `top` may have been written.
    pub fn any(&self, top: &str) -> bool {
        self.everything || self.roots.contains(top) || self.below.contains(top)
    }

    /// Whether root key `top` must be read whole again (replaced, or unknown).
    pub fn whole(&self, top: &str) -> bool {
        self.everything || self.roots.contains(top)
    }

    /// The entries of root map `top` that were written in or under.
    pub fn entries_of<'a>(&'a self, top: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(t, _)| t == top)
            .map(|(_, e)| e.as_str())
    }
}

/// Whether `merged` is `doc` with exactly `changes` applied: it holds every
/// change of both, and its heads are what applying them would give.
pub fn is_merge_of(merged: &Automerge, doc: &Automerge, changes: &[Change]) -> bool {
    let mut heads: BTreeSet<ChangeHash> = doc.get_heads().into_iter().collect();
    heads.extend(changes.iter().map(Change::hash));
    // What a change of the batch depends on is no head any more.
    for c in changes {
        for d in c.deps() {
            heads.remove(d);
        }
    }
    let mut theirs = merged.get_heads();
    theirs.sort();
    theirs.len() == heads.len()
        && theirs.iter().zip(&heads).all(|(a, b)| a == b)
        && changes
            .iter()
            .all(|c| merged.get_change_meta_by_hash(&c.hash()).is_some())
}

/// Checks one write's shape against the object it goes into: objects where
/// objects belong, values of the right form, keys the object has.
/// `key` is the key written, `None` for an item of a list (named `list`).
fn check_write(
    object: Object,
    key: Option<&str>,
    list: &str,
    action: &OpType,
) -> Result<(), String> {
    let Some(k) = key else {
        let ok = match (object, action) {
            (Object::Maps(_), OpType::Make(automerge::ObjType::Map)) | (_, OpType::Delete) => true,
            (Object::Values(form), OpType::Put(v)) => check_value("", form, v).is_ok(),
            _ => false,
        };
        return if ok {
            Ok(())
        } else {
            Err(format!("an item of '{}' has the wrong form", quote(list)))
        };
    };
    let spec = object
        .field(k)
        .ok_or_else(|| format!("'{}' is not a known field", quote(k)))?;
    match (spec.shape, action) {
        (_, OpType::Delete) => Ok(()),
        (Shape::Object(o), OpType::Make(t))
            if matches!(
                (o, t),
                (
                    Object::Fields(_) | Object::Entries(..),
                    automerge::ObjType::Map
                ) | (
                    Object::Maps(_) | Object::Values(_),
                    automerge::ObjType::List
                )
            ) =>
        {
            Ok(())
        }
        (_, OpType::Make(_)) => Err(format!("'{}' cannot hold an object of that kind", quote(k))),
        (Shape::Object(_), OpType::Put(_)) => {
            Err(format!("'{}' must be an object, not a value", quote(k)))
        }
        (Shape::Value(form), OpType::Put(v)) => check_value(k, form, v),
        (_, OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_)) => {
            Err("counters and marks are not used in these documents".into())
        }
    }
}

/// Checks a value's form ([`Form::fits`]) and the length of text.
fn check_value(key: &str, form: Form, value: &automerge::ScalarValue) -> Result<(), String> {
    use automerge::ScalarValue as S;
    match value {
        S::Str(t) if t.len() > MAX_TEXT_BYTES => Err(format!(
            "'{}' is {} bytes, over the limit of {MAX_TEXT_BYTES}",
            quote(key),
            t.len()
        )),
        _ if form.fits(value) => Ok(()),
        S::Str(_) if form == Form::Provisional => Err(format!(
            "'{}' is longer than {} characters",
            quote(key),
            crate::nc::MAX_PROVISIONAL
        )),
        S::Str(_) => Err(format!("'{}' has a value of the wrong form", quote(key))),
        _ if form == Form::Count => Err(format!("'{}' has a value of the wrong form", quote(key))),
        _ => Err(format!("'{}' must be text", quote(key))),
    }
}

/// Where an object sits: the top-level key, the key below it, and its own key.
#[derive(Debug)]
struct Place {
    top: String,
    second: Option<String>,
    /// The key (or index) the object itself sits under in its parent.
    own: String,
    /// The object is a direct child of the root (e.g. the `events` list itself).
    at_top_object: bool,
    /// The key of the map or list the object is an entry or item of, if any.
    container: String,
    /// What the object holds, by its kind's table; `None` for an object
    /// at a place the table has not (refused when written into).
    object: Option<Object>,
    /// `top/second`, as errors name a write below the top-level object.
    path: String,
    /// Made by this batch.
    made: bool,
    /// A lifecycle event appended by this batch.
    new_event: bool,
    /// Its part of the document is in the batch's [`Touched`] already.
    noted: Cell<bool>,
    /// Which of the fields it must hold ([`Object::required`]) the batch
    /// wrote into it, a bit each.
    written: Cell<u16>,
}

impl Place {
    fn new(
        top: String,
        second: Option<String>,
        own: String,
        at_top_object: bool,
        container: String,
        object: Option<Object>,
    ) -> Place {
        let path = join(&join("", &top), second.as_deref().unwrap_or(""));
        Place {
            top,
            second,
            own,
            at_top_object,
            container,
            object,
            path,
            made: false,
            new_event: false,
            noted: Cell::new(false),
            written: Cell::new(0),
        }
    }

    /// The same place, for an object this batch makes.
    fn made_here(self, new_event: bool) -> Rc<Place> {
        Rc::new(Place {
            made: true,
            new_event,
            ..self
        })
    }

    /// The fields it must hold.
    fn required(&self) -> impl Iterator<Item = &'static str> {
        self.object.into_iter().flat_map(Object::required)
    }

    /// Records a write of `key` into this object (only those of the fields
    /// it must hold count).
    fn wrote(&self, key: &str) {
        if let Some(i) = self.required().position(|r| r == key) {
            self.written.set(self.written.get() | 1 << i);
        }
    }

    /// The first field it must hold that it does not.
    fn missing(&self) -> Option<&'static str> {
        let written = self.written.get();
        self.required()
            .enumerate()
            .find(|(i, _)| written & (1 << i) == 0)
            .map(|(_, k)| k)
    }

    /// The path of field `key` of this object, as refusals name it.
    fn field_path(&self, key: &str) -> String {
        if self.at_top_object {
            join(&join("", &self.top), key)
        } else {
            join(&self.object_path(), key)
        }
    }

    /// The path of this object below a top-level one, as refusals name it.
    fn object_path(&self) -> String {
        if !self.container.is_empty() && self.container != self.top {
            // An item of a list inside an entry (a response's evidence).
            join(&self.path, &self.container)
        } else {
            self.path.clone()
        }
    }

    /// The path a write of `key` into this object is named by in errors.
    fn path_of(&self, key: Option<&str>) -> String {
        match (self.at_top_object, key) {
            (true, key) => join(&join("", &self.top), key.unwrap_or("")),
            (false, _) => self.path.clone(),
        }
    }
}

/// Refuses a write that puts a control character where a person's text
/// goes (rule `text.control`): in a key it writes, or in a text value (a tab
/// or line break only in text of several lines, [`Form::Lines`]).
/// `path` names the place; `object` is what the value goes in, if known.
fn check_text(
    path: impl Fn() -> String,
    key: Option<&str>,
    object: Option<Object>,
    action: &OpType,
) -> Result<(), Refusal> {
    if let Some(k) = key
        && !matches!(action, OpType::Delete)
        && let Some(c) = forbidden(k, false)
    {
        return Err(refuse(
            Rule::TextControl,
            format!(
                "The change writes the key '{}', which holds the control character {}; keys cannot hold control characters.",
                path(),
                code_point(c)
            ),
        ));
    }
    if let OpType::Put(automerge::ScalarValue::Str(s)) = action {
        let multi_line = object.and_then(|o| o.form(key)).is_some_and(Form::lines);
        if let Some(c) = forbidden(s, multi_line) {
            let message = if matches!(c, '\t' | '\n') {
                format!(
                    "'{}' holds a tab or line break ({}), which only notes and other text of several lines may hold.",
                    path(),
                    code_point(c)
                )
            } else {
                format!(
                    "'{}' holds {}, {}, which no text may hold.",
                    path(),
                    code_point(c),
                    if c.is_control() {
                        "a control character"
                    } else {
                        "a character Unicode reserves"
                    }
                )
            };
            return Err(refuse(Rule::TextControl, message));
        }
    }
    Ok(())
}

/// [`check_text`] over every operation of a new document's first batch,
/// before anything is read from it (every object in it is made by the batch,
/// so each one's place follows from the operation that made it).
fn new_texts(changes: &[ExpandedChange]) -> Result<(), Refusal> {
    // The kind the batch names decides which text may run over lines
    // (none, if it names none: the document is refused as unreadable).
    let kind = changes.iter().flat_map(|c| &c.operations).find_map(|op| {
        match (&op.obj, key_text(&op.key), &op.action) {
            (ObjectId::Root, Some("schema"), OpType::Put(automerge::ScalarValue::Str(s))) => {
                DocKind::from_schema(s)
            }
            _ => None,
        }
    });
    // Each object made: its path and what it holds.
    let mut made: HashMap<OpKey, (String, Option<Object>)> = HashMap::new();
    for c in changes {
        let start = c.start_op.get();
        for (i, op) in c.operations.iter().enumerate() {
            let (parent, object) = match &op.obj {
                ObjectId::Root => (String::new(), kind.map(fields::root)),
                ObjectId::Id(o) => match made.get(&(o.counter(), o.actor().clone())) {
                    Some(p) => p.clone(),
                    // Written into an object this batch did not make: the
                    // checker names it in place.
                    None => continue,
                },
            };
            let key = key_text(&op.key);
            let path = match key {
                Some(k) => join(&parent, k),
                None => parent,
            };
            check_text(|| path.clone(), key, object, &op.action)?;
            if matches!(op.action, OpType::Make(_)) {
                let child = object.and_then(|o| o.child(key));
                made.insert((start + i as u64, c.actor_id.clone()), (path, child));
            }
        }
    }
    Ok(())
}

/// The refusal of a write to what is set when a document is made (`what`
/// names it, quoted).
fn set_once(kind: DocKind, what: impl std::fmt::Display) -> Refusal {
    refuse(
        Rule::DocWriteOnce,
        format!("'{what}' is set when the {kind} is created and cannot be changed."),
    )
}

fn prop_text(p: &Prop) -> String {
    match p {
        Prop::Map(k) => k.clone(),
        Prop::Seq(i) => i.to_string(),
    }
}

fn key_text(k: &Key) -> Option<&str> {
    match k {
        Key::Map(s) => Some(s.as_str()),
        Key::Seq(_) => None,
    }
}

fn schema_refusal(e: SchemaError) -> Refusal {
    refuse(
        Rule::Schema,
        format!("The change does not match the schema: {e}"),
    )
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
    validate_merged(id, doc, changes, None, author, today)
}

/// [`validate_batch`], given the document with the batch already applied
/// when the sender sent it whole (`merged`; checked with [`is_merge_of`] and
/// used instead of applying the batch to a copy).
pub fn validate_merged(
    id: DocumentId,
    doc: &Automerge,
    changes: Vec<Change>,
    merged: Option<Automerge>,
    author: &Author,
    today: Date,
) -> Result<Accepted, Refusal> {
    if changes.len() > MAX_BATCH_CHANGES {
        return Err(refuse(
            Rule::BatchSize,
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
            touched: Touched::default(),
        });
    }
    if let Some(c) = ready.iter().find(|c| !author.actors.contains(c.actor_id())) {
        return Err(refuse(
            Rule::ActorNotRegistered,
            format!(
                "A change was made under actor {} which is not registered to {}'s devices.",
                c.actor_id(),
                author.user
            ),
        ));
    }
    // Decoded once: checked before Automerge applies them, judged after.
    let expanded: Vec<ExpandedChange> = ready.iter().map(Change::decode).collect();
    objects_known(doc, &expanded)?;
    let existed = doc.get(ROOT, "schema").ok().flatten().is_some();
    if !existed {
        // A new document's skeleton is read before its operations are
        // checked: its text is checked first, so that a control character
        // in it is named as such rather than as a field that does not parse.
        new_texts(&expanded)?;
    }
    let before = if existed {
        Some(DocContext::read(doc).map_err(|e| {
            refuse(
                Rule::Schema,
                format!("The stored document cannot be read: {e}"),
            )
        })?)
    } else {
        None
    };
    let fork = match merged {
        Some(m) if pending.is_empty() && is_merge_of(&m, doc, &ready) => m,
        _ => {
            let mut fork = doc.clone();
            fork.apply_changes(ready.iter().cloned()).map_err(|e| {
                refuse(
                    Rule::ChangeMalformed,
                    format!("The changes could not be applied: {e}"),
                )
            })?;
            fork
        }
    };
    let ctx = match before {
        Some(ctx) => ctx,
        None => {
            // A new document: its skeleton must read whole, and its creator be entitled.
            let ctx = DocContext::read(&fork).map_err(schema_refusal)?;
            let r = Reader::now(&fork);
            match ctx.kind {
                DocKind::Audit => AuditHeader::read(&r)
                    .and_then(|_| AuditContent::read(&r))
                    .map(|_| ()),
                DocKind::Nc => Nc::read(&fork).map(|_| ()),
                DocKind::Review => Review::read(&fork).map(|_| ()),
            }
            .map_err(schema_refusal)?;
            check_create(&ctx, author, today)?;
            check_plan(&ctx, &fork, author)?;
            ctx
        }
    };
    if ctx.id != id {
        return Err(refuse(
            Rule::DocId,
            format!(
                "The changes claim document {} but were sent for {id}.",
                ctx.id
            ),
        ));
    }
    let mut check = Checker {
        fork: &fork,
        doc,
        ctx: &ctx,
        author,
        today,
        existed,
        places: HashMap::with_capacity(ready.len() * 2),
        made: Vec::new(),
        entitled: Vec::new(),
        new_events: Vec::new(),
        new_extensions: Vec::new(),
        answers: HashMap::new(),
        event_fields: HashMap::new(),
        touched: Touched::default(),
    };
    for c in &expanded {
        check.change(c)?;
    }
    check.complete()?;
    check.answers()?;
    check.extensions()?;
    check.events()?;
    let touched = std::mem::take(&mut check.touched);
    reread::reread(&fork, ctx.kind, &touched, !existed).map_err(|e| {
        refuse(
            Rule::DocUnreadable,
            format!(
                "After these changes the {} could no longer be read ({e}), so they were not applied.",
                ctx.kind
            ),
        )
    })?;
    Ok(Accepted {
        doc: Some(fork),
        applied: ready,
        pending,
        already_stored,
        touched,
    })
}

/// Checks a new audit's header against its planned audit, and a new NC's
/// unit against its audit's (rule `audit.plan`): reference data, not the
/// device, says which unit an audit is of, its number, its pinned checklist
/// version and its lead.
fn check_plan(ctx: &DocContext, doc: &Automerge, author: &Author) -> Result<(), Refusal> {
    let Some(audit) = ctx.audit else {
        return Ok(());
    };
    let plan = author.planned.get(&audit).ok_or_else(|| {
        refuse(
            Rule::AuditPlan,
            format!(
                "Audit {audit} is not on the audit programme {} knows.",
                author.user
            ),
        )
    })?;
    if ctx.unit != plan.unit {
        return Err(refuse(
            Rule::AuditPlan,
            format!(
                "The {} names unit {}, but audit {} is planned for unit {}.",
                ctx.kind,
                ctx.unit,
                quote(&plan.number),
                plan.unit
            ),
        ));
    }
    if ctx.kind != DocKind::Audit {
        return Ok(());
    }
    let header = AuditHeader::read(&Reader::now(doc)).map_err(schema_refusal)?;
    let differs = |what: &str, has: String, planned: String| {
        refuse(
            Rule::AuditPlan,
            format!(
                "The audit's {what} is {}, but audit {} is planned with {}.",
                quote(&has),
                quote(&plan.number),
                quote(&planned)
            ),
        )
    };
    if header.number != plan.number {
        return Err(differs("number", header.number, plan.number.clone()));
    }
    if header.template_version != plan.template_version {
        return Err(differs(
            "checklist version",
            header.template_version.to_string(),
            plan.template_version.to_string(),
        ));
    }
    if header.lead != plan.lead {
        return Err(differs(
            "lead",
            header.lead.to_string(),
            plan.lead.to_string(),
        ));
    }
    Ok(())
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

type OpKey = (u64, ActorId);

fn unknown_object() -> Refusal {
    refuse(
        Rule::ChangeUnknownObject,
        "A change writes into an object the document does not have.",
    )
}

/// Refuses a batch with an operation into an object that neither the stored
/// document nor an operation of the batch makes, or into the root as a list. Automerge 0.12 panics
/// applying one ("Missing from Index", `op_set2/change/batch.rs`), and a
/// peer can send one (no change Automerge makes has it), so it is refused
/// before the batch is applied.
fn objects_known(doc: &Automerge, changes: &[ExpandedChange]) -> Result<(), Refusal> {
    let mut known: HashSet<OpKey> = changes
        .iter()
        .flat_map(|c| {
            let start = c.start_op.get();
            c.operations
                .iter()
                .enumerate()
                .filter(|(_, op)| matches!(op.action, OpType::Make(_)))
                .map(move |(i, _)| (start + i as u64, c.actor_id.clone()))
        })
        .collect();
    for op in changes.iter().flat_map(|c| &c.operations) {
        let ObjectId::Id(obj) = &op.obj else {
            // The root is a map: a write to it as a list makes Automerge
            // 0.12 panic applying it too (a debug assertion).
            if op.insert || matches!(op.key, Key::Seq(_)) {
                return Err(refuse(
                    Rule::SchemaRoot,
                    "A change writes to the document's root as a list; the root is a map.",
                ));
            }
            continue;
        };
        let key = (obj.counter(), obj.actor().clone());
        if known.contains(&key) {
            continue;
        }
        if doc
            .object_type(ObjId::Id(key.0, key.1.clone(), usize::MAX))
            .is_err()
        {
            return Err(unknown_object());
        }
        known.insert(key);
    }
    Ok(())
}

/// A response's answer as written by the batch: its type and value, if written.
#[derive(Default)]
struct AnswerWrite {
    path: String,
    kind: Option<String>,
    value: Option<String>,
}

struct Checker<'a> {
    fork: &'a Automerge,
    doc: &'a Automerge,
    ctx: &'a DocContext,
    author: &'a Author,
    today: Date,
    existed: bool,
    /// Where each object the batch writes into sits.
    places: HashMap<OpKey, Rc<Place>>,
    /// Objects made by this batch, in the order made.
    made: Vec<Rc<Place>>,
    /// Fields the author was found entitled to write in this batch.
    entitled: Vec<Field>,
    /// Event maps inserted by this batch, in order.
    new_events: Vec<OpKey>,
    /// Extension maps of an NC inserted by this batch.
    new_extensions: Vec<OpKey>,
    /// Responses whose type or value the batch wrote.
    answers: HashMap<OpKey, AnswerWrite>,
    /// The text fields the batch wrote into each new event map.
    event_fields: HashMap<OpKey, HashMap<String, String>>,
    /// What the batch wrote, by part of the document.
    touched: Touched,
}

impl Checker<'_> {
    fn change(&mut self, expanded: &ExpandedChange) -> Result<(), Refusal> {
        let start = expanded.start_op.get();
        for (i, op) in expanded.operations.iter().enumerate() {
            let opid = (start + i as u64, expanded.actor_id.clone());
            let is_make = matches!(op.action, OpType::Make(_));
            match &op.obj {
                ObjectId::Root => {
                    let key = key_text(&op.key).ok_or_else(|| {
                        refuse(Rule::SchemaRoot, "The document root must be a map.")
                    })?;
                    let root = fields::root(self.ctx.kind);
                    check_text(|| join("", key), Some(key), Some(root), &op.action)?;
                    self.root_op(key, &op.action)?;
                    self.touched.roots.insert(key.to_owned());
                    if is_make {
                        let object = root.child(Some(key));
                        let child =
                            Place::new(key.into(), None, key.into(), true, String::new(), object)
                                .made_here(false);
                        self.made.push(Rc::clone(&child));
                        self.places.insert(opid, child);
                    }
                }
                ObjectId::Id(obj) => {
                    let obj = (obj.counter(), obj.actor().clone());
                    let place = self.place(&obj)?;
                    let key = key_text(&op.key);
                    match key {
                        Some(k) => {
                            check_text(|| place.field_path(k), key, place.object, &op.action)?
                        }
                        None => check_text(|| place.path_of(None), None, place.object, &op.action)?,
                    }
                    if op.pred.len() > 1 {
                        self.settles(&place, key, op.pred.iter())?;
                    }
                    self.nested_op(&place, &obj, key, op.insert, &op.action, &opid)?;
                    if place.at_top_object {
                        // A write into a top-level map or list: the entry is its key.
                        self.touched.below.insert(place.top.clone());
                        if let Some(k) = key {
                            self.touched
                                .entries
                                .insert((place.top.clone(), k.to_owned()));
                        }
                    } else if !place.noted.replace(true) {
                        // Every write into this object touches the same entry.
                        self.touched.below.insert(place.top.clone());
                        if let Some(e) = &place.second {
                            self.touched.entries.insert((place.top.clone(), e.clone()));
                        }
                    }
                    if is_make {
                        // The new object's place follows from its parent's: no path lookup needed.
                        let own = key.unwrap_or("#");
                        let second = if place.at_top_object {
                            Some(own.to_owned())
                        } else {
                            place.second.clone()
                        };
                        let container = match key {
                            Some(_) if place.at_top_object => place.top.clone(),
                            Some(_) => String::new(),
                            None => place.own.clone(),
                        };
                        let new_event = place.at_top_object && place.top == "events";
                        let object = place.object.and_then(|o| o.child(key));
                        let child = Place::new(
                            place.top.clone(),
                            second,
                            own.to_owned(),
                            false,
                            container,
                            object,
                        )
                        .made_here(new_event);
                        self.made.push(Rc::clone(&child));
                        self.places.insert(opid, child);
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks a write that supersedes several concurrent values at once
    /// (its operation has more than one predecessor): settling a contested
    /// response or finding is the lead auditor's (DESIGN §3). Elsewhere
    /// whoever may write the field may settle it, and anyone may settle
    /// values that are all their own (written on two of their devices).
    fn settles(
        &self,
        place: &Place,
        key: Option<&str>,
        mut superseded: std::slice::Iter<'_, automerge::legacy::OpId>,
    ) -> Result<(), Refusal> {
        let entry = self.ctx.kind == DocKind::Audit
            && place.at_top_object
            && matches!(place.top.as_str(), "responses" | "findings");
        if !entry || self.author.is(Who::AuditLead, self.ctx, self.today) {
            return Ok(());
        }
        let own = superseded.all(|p| {
            let value = ObjId::Id(p.counter(), p.actor().clone(), usize::MAX);
            matches!(
                self.fork.get(&value, "by"),
                Ok(Some((automerge::Value::Scalar(by), _)))
                    if by.as_str() == Some(self.author.user.as_str())
            )
        });
        if !own {
            return Err(refuse(
                Rule::AuditSettle,
                format!(
                    "{} wrote {} over answers given at the same time by different auditors; only the lead auditor may settle them.",
                    self.author.user,
                    join(&place.top, key.unwrap_or("")),
                ),
            ));
        }
        Ok(())
    }

    /// Checks that the author may write `field`, once per field and batch.
    fn entitled(&mut self, field: Field) -> Result<(), Refusal> {
        if !self.entitled.contains(&field) {
            check_field(self.ctx, self.author, field, self.today)?;
            self.entitled.push(field);
        }
        Ok(())
    }

    fn root_op(&mut self, key: &str, action: &OpType) -> Result<(), Refusal> {
        let kind = self.ctx.kind;
        let Some(spec) = fields::field(kind, key) else {
            return Err(refuse(
                Rule::SchemaUnknownField,
                format!("'{}' is not a field of a {kind}.", quote(key)),
            ));
        };
        if spec.writer == Writer::Server {
            return Err(refuse(
                Rule::DocWriteOnce,
                format!(
                    "'{}' is given by the server when it first stores the {kind}.",
                    quote(key)
                ),
            ));
        }
        let replaces =
            matches!(action, OpType::Make(_)) && self.doc.get(ROOT, key).ok().flatten().is_some();
        if self.existed && (spec.writer == Writer::Once || replaces) {
            return Err(set_once(kind, quote(key)));
        }
        if matches!(action, OpType::Delete) && spec.required {
            return Err(refuse(
                Rule::Schema,
                format!(
                    "The change removes '{}', which a {kind} must keep.",
                    quote(key)
                ),
            ));
        }
        if self.existed {
            match spec.part() {
                Some(Field::NcExtension) => {
                    return Err(refuse(
                        Rule::NcExtensionAppendOnly,
                        "Extensions can only be added, never changed.",
                    ));
                }
                Some(field) if spec.append_only => {
                    return Err(refuse(
                        Rule::EventsAppendOnly,
                        format!("Files can only be added to {field}, never replaced or removed."),
                    ));
                }
                Some(field) => self.entitled(field)?,
                // A field no part holds is nobody's to change.
                None => {
                    return Err(set_once(kind, quote(key)));
                }
            }
        }
        if spec.shape == Shape::Value(Form::Sender)
            && let OpType::Put(automerge::ScalarValue::Str(by)) = action
            && by.as_str() != self.author.user.as_str()
        {
            // Who wrote a text is its sender, always.
            return Err(refuse(
                Rule::EntryBy,
                format!(
                    "'{}' is recorded as written by '{}' but was sent by {}.",
                    quote(key.trim_end_matches("_by")),
                    quote(by),
                    self.author.user
                ),
            ));
        }
        check_write(fields::root(kind), Some(key), key, action).map_err(|e| {
            refuse(
                Rule::Schema,
                format!("The change does not match the schema: {e}."),
            )
        })
    }

    fn place(&mut self, obj: &OpKey) -> Result<Rc<Place>, Refusal> {
        if let Some(p) = self.places.get(obj) {
            return Ok(Rc::clone(p));
        }
        let ex = ObjId::Id(obj.0, obj.1.clone(), usize::MAX);
        let unknown = unknown_object;
        // Every object the batch made has its place already: this one was
        // in the stored document, where its place is what it is in the fork
        // (objects never move), and where a batch that deletes it and writes
        // into it does not make Automerge look for a deleted list item.
        let path: Vec<_> = self.doc.parents(&ex).map_err(|_| unknown())?.collect();
        let top = path.last().ok_or_else(unknown)?;
        // An entry map sits under a top-level map (responses/x); a list item under its list's key.
        let container = match (path.len(), path.first().map(|p| &p.prop)) {
            (2, Some(Prop::Map(_))) => prop_text(&top.prop),
            (n, Some(Prop::Seq(_))) if n >= 2 => {
                path.get(1).map(|p| prop_text(&p.prop)).unwrap_or_default()
            }
            _ => String::new(),
        };
        // What it holds: its kind's table, followed down from the root.
        let object = path
            .iter()
            .rev()
            .try_fold(fields::root(self.ctx.kind), |o, p| match &p.prop {
                Prop::Map(k) => o.child(Some(k)),
                Prop::Seq(_) => o.child(None),
            });
        let place = Rc::new(Place::new(
            prop_text(&top.prop),
            path.len()
                .checked_sub(2)
                .and_then(|i| path.get(i))
                .map(|p| prop_text(&p.prop)),
            path.first().map(|p| prop_text(&p.prop)).unwrap_or_default(),
            path.len() == 1,
            container,
            object,
        ));
        self.places.insert(obj.clone(), Rc::clone(&place));
        Ok(place)
    }

    fn nested_op(
        &mut self,
        place: &Place,
        obj: &OpKey,
        key: Option<&str>,
        insert: bool,
        action: &OpType,
        opid: &OpKey,
    ) -> Result<(), Refusal> {
        let kind = self.ctx.kind;
        let (Some(top), Some(object)) = (fields::field(kind, &place.top), place.object) else {
            return Err(refuse(
                Rule::SchemaUnknownField,
                format!("'{}' is not a field of a {kind}.", place.object_path()),
            ));
        };
        if top.append_only {
            let ok = if place.at_top_object {
                insert && matches!(action, OpType::Make(automerge::ObjType::Map))
            } else {
                place.made
            };
            if !ok {
                return Err(refuse(
                    Rule::EventsAppendOnly,
                    format!(
                        "The {} of a {kind} can only be appended to, never changed or removed.",
                        place.top
                    ),
                ));
            }
            if place.at_top_object && place.top == "events" {
                self.new_events.push(opid.clone());
            }
            if place.at_top_object && place.top == "extensions" {
                self.new_extensions.push(opid.clone());
            }
        }
        match top.part() {
            Some(field) => self.entitled(field)?,
            // The events: each new move is judged by the move table.
            None if top.append_only => {}
            None => {
                if self.existed {
                    return Err(set_once(kind, quote(&place.top)));
                }
            }
        }
        if let (Some(k), OpType::Put(automerge::ScalarValue::Str(v))) = (key, action)
            && place.new_event
        {
            self.event_fields
                .entry(obj.clone())
                .or_default()
                .insert(k.to_owned(), v.to_string());
        }
        // Named only when something is wrong (or an answer needs it later).
        let path = || place.path_of(key);
        let bad = |e: String| {
            refuse(
                Rule::Schema,
                format!("The change does not match the schema: {}: {e}.", path()),
            )
        };
        match key {
            // A new entry of responses/findings/actions: a parsable id holding a map.
            Some(k) if matches!(object, Object::Entries(..)) => {
                let id_ok = matches!(object, Object::Entries(ids, _) if ids.fits(k));
                let shape_ok = matches!(
                    action,
                    OpType::Make(automerge::ObjType::Map) | OpType::Delete
                );
                if !id_ok || !shape_ok {
                    return Err(bad(format!("'{}' is not a valid entry", quote(k))));
                }
            }
            Some(k) => {
                if self.existed && object.field(k).is_some_and(|f| f.writer == Writer::Once) {
                    return Err(set_once(kind, place.field_path(k)));
                }
                // Also in a map this batch made: a field written and then
                // removed would count as written.
                if matches!(action, OpType::Delete) && place.required().any(|r| r == k) {
                    return Err(refuse(
                        Rule::Schema,
                        format!(
                            "The change removes '{}', which {} must keep.",
                            quote(k),
                            path()
                        ),
                    ));
                }
                if place.made {
                    place.wrote(k);
                }
                if object.form(key) == Some(Form::Sender)
                    && let OpType::Put(automerge::ScalarValue::Str(by)) = action
                    && by.as_str() != self.author.user.as_str()
                {
                    // Who made an entry or a move is its sender, always.
                    let (rule, what) = if place.container == "events" {
                        (Rule::MoveBy, "A move")
                    } else {
                        (Rule::EntryBy, "An entry")
                    };
                    return Err(refuse(
                        rule,
                        format!(
                            "{what} is recorded as made by '{}' but was sent by {}.",
                            quote(by),
                            self.author.user
                        ),
                    ));
                }
                check_write(object, key, &place.own, action).map_err(|e| {
                    refuse(
                        Rule::Schema,
                        format!(
                            "The change does not match the schema: {}: {e}.",
                            join(&path(), k)
                        ),
                    )
                })?;
                if place.top == "responses" && !place.at_top_object && (k == "type" || k == "value")
                {
                    let w = self.answers.entry(obj.clone()).or_default();
                    if w.path.is_empty() {
                        w.path = path();
                    }
                    let text = match action {
                        OpType::Put(automerge::ScalarValue::Str(s)) => Some(s.to_string()),
                        _ => None,
                    };
                    if k == "type" {
                        w.kind = text;
                    } else {
                        w.value = text;
                    }
                }
            }
            None => check_write(object, None, &place.own, action).map_err(bad)?,
        }
        Ok(())
    }

    /// Every map the batch made holds the fields its kind requires.
    fn complete(&self) -> Result<(), Refusal> {
        for place in &self.made {
            if let Some(missing) = place.missing() {
                return Err(refuse(
                    Rule::Schema,
                    format!(
                        "The change does not match the schema: {} has no '{missing}'.",
                        if place.at_top_object {
                            place.path.clone()
                        } else {
                            place.object_path()
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Each extension the batch adds to an NC must give its reasons (at
    /// least [`MIN_JUSTIFICATION`] characters besides spaces at either end)
    /// and move its due date later than the one in force before it (the
    /// rule's date, or the last extension of that date before it in the
    /// list), hence never before the NC was raised (rule `nc.extension.terms`).
    /// The rule's dates are the NC's unit's (reference data the author
    /// carries; sync-core's defaults for a unit that set none).
    fn extensions(&self) -> Result<(), Refusal> {
        if self.new_extensions.is_empty() || self.ctx.kind != DocKind::Nc {
            return Ok(());
        }
        let nc = Nc::read(self.fork).map_err(schema_refusal)?;
        let r = Reader::now(self.fork);
        let list = r
            .opt_list(&ROOT, "extensions", "")
            .map_err(schema_refusal)?
            .ok_or_else(unknown_object)?;
        let rules = self.author.due_rules_of(&self.ctx.unit);
        for (i, e) in nc.extensions.iter().enumerate() {
            let obj = r.map_at(&list, i, "extensions").map_err(schema_refusal)?;
            if !self
                .new_extensions
                .iter()
                .any(|k| obj == ObjId::Id(k.0, k.1.clone(), usize::MAX))
            {
                continue;
            }
            let before = Nc {
                extensions: nc.extensions[..i].to_vec(),
                ..nc.clone()
            };
            let current = match e.of {
                crate::nc::DueKind::Response => before.response_due(&rules),
                crate::nc::DueKind::Action => before.action_due(&rules),
            };
            let terms = |why: String| {
                refuse(
                    Rule::NcExtensionTerms,
                    format!("The extension of the {} due date {why}", e.of),
                )
            };
            if e.justification.trim().chars().count() < MIN_JUSTIFICATION {
                return Err(terms(format!(
                    "needs a justification of at least {MIN_JUSTIFICATION} characters."
                )));
            }
            if e.due <= current {
                return Err(terms(format!(
                    "must give a date after the one in force, {}; {} is not.",
                    current.display(),
                    e.due.display()
                )));
            }
        }
        Ok(())
    }

    /// A response's value must suit its type, whichever of the two the batch wrote.
    fn answers(&self) -> Result<(), Refusal> {
        for (obj, w) in &self.answers {
            let kind = match &w.kind {
                Some(k) => Some(k.clone()),
                None => Reader::now(self.fork)
                    .opt_str(
                        &ObjId::Id(obj.0, obj.1.clone(), usize::MAX),
                        "type",
                        &w.path,
                    )
                    .map_err(schema_refusal)?,
            };
            let value = match &w.value {
                Some(v) => Some(v.clone()),
                None => Reader::now(self.fork)
                    .opt_str(
                        &ObjId::Id(obj.0, obj.1.clone(), usize::MAX),
                        "value",
                        &w.path,
                    )
                    .map_err(schema_refusal)?,
            };
            if let (Some(k), Some(v)) = (kind, value) {
                Answer::decode(&k, v, &join(&w.path, "value")).map_err(schema_refusal)?;
            }
        }
        Ok(())
    }

    /// Checks every new lifecycle event: its author, the move table and the move's requirements.
    fn events(&self) -> Result<(), Refusal> {
        for opid in &self.new_events {
            let mut e = self.new_event(opid)?;
            if e.by != self.author.user {
                return Err(refuse(
                    Rule::MoveBy,
                    format!(
                        "A move is recorded as made by {} but was sent by {}.",
                        e.by, self.author.user
                    ),
                ));
            }
            let requires = match self.ctx.kind {
                DocKind::Nc => self.allowed::<NcState>(&e)?,
                DocKind::Audit => self.allowed::<AuditState>(&e)?,
                DocKind::Review => {
                    return Err(refuse(
                        Rule::MoveTable,
                        "Management reviews have no lifecycle moves.",
                    ));
                }
            };
            if requires.contains(&Requirement::Heads) {
                // A lock names the heads it locks at, in a list nested in the event.
                let obj = ObjId::Id(opid.0, opid.1.clone(), usize::MAX);
                e.heads = Event::read_map(&Reader::now(self.fork), &obj, "events/new")
                    .map_err(schema_refusal)?
                    .heads;
            }
            for req in requires {
                if !self.met(*req, &e)? {
                    return Err(refuse(
                        Rule::MoveRequirement,
                        format!("'{}' needs {req} first.", quote(&e.mv)),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A new event, from the fields the batch wrote into it (events are append-only,
    /// so a new event holds exactly what its change wrote), without the heads
    /// a lock names (read only when a move requires them).
    fn new_event(&self, opid: &OpKey) -> Result<Event, Refusal> {
        let empty = HashMap::new();
        let f = self.event_fields.get(opid).unwrap_or(&empty);
        let field = |k: &str| -> Result<String, Refusal> {
            f.get(k)
                .cloned()
                .ok_or_else(|| refuse(Rule::Schema, format!("A lifecycle event has no '{k}'.")))
        };
        let bad = |k: &str| {
            refuse(
                Rule::Schema,
                format!("A lifecycle event's '{k}' has the wrong form."),
            )
        };
        Ok(Event {
            mv: field("move")?,
            from: field("from")?,
            by: field("by")?.parse().map_err(|_| bad("by"))?,
            at: field("at")?.parse().map_err(|_| bad("at"))?,
            note: f.get("note").cloned().unwrap_or_default(),
            heads: Vec::new(),
        })
    }

    /// The requirements of a move the author may make.
    fn allowed<S: Lifecycle>(&self, e: &Event) -> Result<&'static [Requirement], Refusal> {
        let from: S = e.from.parse().map_err(|_| {
            refuse(
                Rule::MoveTable,
                format!("'{}' is not a state a move can start from.", quote(&e.from)),
            )
        })?;
        check_move(self.ctx, self.author, &e.mv, from, self.today)?;
        crate::workflow::find_move(&e.mv, from)
            .map(|row| row.requires)
            .ok_or_else(|| refuse(Rule::MoveTable, "unknown move"))
    }

    /// Refuses a move while the audit's checklist has gaps, naming them:
    /// required items unanswered, shortfalls with no evidence.
    fn checklist_complete(&self, e: &Event) -> Result<(), Refusal> {
        let Some(plan) = self.author.planned.get(&self.ctx.id) else {
            return Err(refuse(
                Rule::MoveRequirement,
                format!(
                    "'{}' needs the audit's checklist, which is not known here.",
                    quote(&e.mv)
                ),
            ));
        };
        let responses = crate::audit::AuditContent::read(&Reader::now(self.fork))
            .map_err(schema_refusal)?
            .responses;
        let gaps = plan.checklist.gaps(&responses);
        if gaps.is_empty() {
            return Ok(());
        }
        const SHOWN: usize = 20;
        let mut list: Vec<String> = gaps.iter().take(SHOWN).map(ToString::to_string).collect();
        if gaps.len() > SHOWN {
            list.push(format!("and {} more", gaps.len() - SHOWN));
        }
        Err(refuse(
            Rule::AuditChecklist,
            format!(
                "'{}' needs {} first: {}.",
                quote(&e.mv),
                Requirement::ChecklistComplete,
                list.join("; ")
            ),
        ))
    }

    /// Whether one requirement holds in the document with the batch applied (reads only what it needs).
    fn met(&self, req: Requirement, e: &Event) -> Result<bool, Refusal> {
        let r = Reader::now(self.fork);
        let filled = |key: &str| -> Result<bool, Refusal> {
            Ok(r.opt_str(&ROOT, key, "")
                .map_err(schema_refusal)?
                .is_some_and(|s| !s.trim().is_empty()))
        };
        Ok(match req {
            Requirement::Reason => !e.note.trim().is_empty(),
            Requirement::Description => filled("description")?,
            Requirement::Correction => filled("correction")?,
            Requirement::RootCause => filled("root_cause")?,
            Requirement::ActionPlan | Requirement::ActionsDone => {
                let (actions, _) = crate::nc::read_actions(&r).map_err(schema_refusal)?;
                !actions.is_empty()
                    && actions.values().all(|a| match req {
                        Requirement::ActionPlan => {
                            !a.text.trim().is_empty() && !a.owner.trim().is_empty()
                        }
                        _ => a.done_on.is_some(),
                    })
            }
            Requirement::ImplementationEvidence => r
                .opt_list(&ROOT, crate::nc::EvidenceOf::Implementation.key(), "")
                .map_err(schema_refusal)?
                .is_some_and(|list| r.len(&list) > 0),
            Requirement::VerificationNote => match r
                .opt_map(&ROOT, "verification", "")
                .map_err(schema_refusal)?
            {
                Some(v) => r
                    .opt_str(&v, "note", "verification")
                    .map_err(schema_refusal)?
                    .is_some_and(|s| !s.trim().is_empty()),
                None => false,
            },
            Requirement::ChecklistComplete => {
                self.checklist_complete(e)?;
                true
            }
            Requirement::Heads => {
                !e.heads.is_empty()
                    && e.heads
                        .iter()
                        .all(|h| self.fork.get_change_meta_by_hash(h).is_some())
            }
        })
    }
}
