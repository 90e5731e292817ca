//! The `nc` document: one non-conformance, its answer and its workflow.
//!
//! Layout (root map): `schema`, `v`, `id`, link fields written once at creation
//! (`unit`, `audit`, `finding`, `process`, `clause`, `class`, `raised_on`,
//! and the device's `provisional` number), the server's `number`,
//! `description`, owner fields (`correction`, `root_cause`, `actions{..}`),
//! `extension_requests[..]` (owner: a later due date asked for, with why),
//! `extensions[..]` (nodal officer; one granting a request names it) and
//! `extension_refusals[..]` (nodal officer: a request refused, with why),
//! `verification{..}` (auditors),
//! `implementation_evidence[..]` (owner) and `verification_evidence[..]`
//! (the verifying auditor): files attached, each with who and when, lists
//! appended to and never changed, so what two devices attach concurrently
//! merges; `events[..]`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjId, ObjType, ROOT};

use crate::audit::{Evidence, FindingClass};
use crate::date::{Date, Timestamp};
use crate::ids::{ClauseKey, DocumentId, IdError, ItemId, ProcessCode, UnitCode, UserId};
use crate::kind::DocKind;
use crate::schema::{Reader, SCHEMA_VERSION, SchemaError, WriteExt, bounded, join, schema_error};
use crate::workflow::{Event, Level, NcState, TransitionConflict, escalation, fold};

/// The root key of the number the server gives an NC when it first stores
/// it (`NC-<n>`), written by the server alone, in a change of its own that
/// reaches every device holding the NC.
pub const SERVER_NUMBER: &str = "number";

/// The actor of the server's own changes (the NC numbers it gives).
pub const SERVER_ACTOR: [u8; 16] = *b"sqm-server-numbr";

/// The server's change giving a new NC its number: made on the NC as the
/// changes of its first store leave it (they start from its creation),
/// under [`SERVER_ACTOR`], timed as the latest of them. The same changes
/// and number always make the same change, so a commit tried again stores
/// it once.
pub fn number_change(
    first_store: &[automerge::Change],
    number: &str,
) -> Result<automerge::Change, AutomergeError> {
    let mut doc = Automerge::new();
    doc.apply_changes(first_store.iter().cloned())?;
    doc.set_actor(automerge::ActorId::from(SERVER_ACTOR.as_slice()));
    let time = first_store
        .iter()
        .map(automerge::Change::timestamp)
        .max()
        .unwrap_or(0);
    let opts = automerge::transaction::CommitOptions::default().with_time(time);
    doc.transact_with(|_| opts, |tx| tx.put(ROOT, SERVER_NUMBER, number))
        .map_err(|f| f.error)?;
    doc.get_last_local_change().ok_or(AutomergeError::Fail)
}

/// The longest provisional number a device may give an NC, in characters.
pub const MAX_PROVISIONAL: usize = 32;

/// NC severity (the finding's class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Major non-conformance.
    Major,
    /// Minor non-conformance.
    Minor,
}

impl Severity {
    /// The severity of a finding class, if it creates an NC.
    pub fn of(class: FindingClass) -> Option<Severity> {
        match class {
            FindingClass::Major => Some(Severity::Major),
            FindingClass::Minor => Some(Severity::Minor),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Major => "major",
            Severity::Minor => "minor",
        })
    }
}

impl FromStr for Severity {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "major" => Ok(Severity::Major),
            "minor" => Ok(Severity::Minor),
            _ => Err(IdError {
                what: "NC class",
                value: s.chars().take(64).collect(),
                rule: "use major or minor",
            }),
        }
    }
}

/// What an NC is about: written once, at creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NcLink {
    /// The unit.
    pub unit: UnitCode,
    /// The audit that raised it.
    pub audit: DocumentId,
    /// The finding it answers.
    pub finding: ItemId,
    /// The process concerned: its owner answers the NC. `None` for an NC
    /// on a clause no process carries (3.4, management review): the unit's
    /// nodal officers answer it.
    pub process: Option<ProcessCode>,
    /// The clause.
    pub clause: ClauseKey,
    /// Major or minor.
    pub class: Severity,
    /// The date the NC was raised (usually the report date): due dates count from it.
    pub raised_on: Date,
}

/// One corrective action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// What will be done.
    pub text: String,
    /// Who will do it (a name or post, as the owner writes it).
    pub owner: String,
    /// When it will be done by.
    pub target: Date,
    /// When it was done, once done.
    pub done_on: Option<Date>,
}

/// One of several versions of an action written at the same time by
/// people who had not seen each other's: the action, who wrote it and when
/// (absent for a version written without them, by a raw change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContestedAction {
    /// The action as this version has it.
    pub action: Action,
    /// Who wrote it.
    pub by: Option<UserId>,
    /// When, by the writer's device clock.
    pub at: Option<Timestamp>,
    /// Whether this is the version `actions` shows.
    pub shown: bool,
}

/// The actions of an NC or a review, by id.
pub type Actions = BTreeMap<ItemId, Action>;

/// The contested actions of an NC or a review: every version, by id.
pub type ContestedActions = BTreeMap<ItemId, Vec<ContestedAction>>;

/// Reads the `actions` map of an NC or a review: the version of each
/// action Automerge shows, and every version of those written at the same
/// time by people who had not seen each other's.
pub(crate) fn read_actions(r: &Reader<'_>) -> Result<(Actions, ContestedActions), SchemaError> {
    let mut actions = BTreeMap::new();
    let mut contested = BTreeMap::new();
    let Some(obj) = r.opt_map(&ROOT, "actions", "")? else {
        return Ok((actions, contested));
    };
    for key in r.keys(&obj) {
        let path = join("actions", &key);
        let id: ItemId = key
            .parse()
            .map_err(|e: IdError| schema_error(&path, e.to_string()))?;
        let shown_obj = r.map(&obj, &key, "actions")?;
        let shown = Action::read(r, &shown_obj, &path)?;
        if r.is_contested(&obj, &key) {
            let fresh = r.fresh();
            let mut versions = Vec::new();
            for o in r.all_maps(&obj, &key, "actions")? {
                versions.push(ContestedAction {
                    action: Action::read(&fresh, &o, &path)?,
                    by: fresh.opt_parse(&o, "by", &path)?,
                    at: fresh.opt_parse(&o, "at", &path)?,
                    shown: o == shown_obj,
                });
            }
            contested.insert(id.clone(), versions);
        }
        actions.insert(id, shown);
    }
    Ok((actions, contested))
}

impl Action {
    fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Action, SchemaError> {
        Ok(Action {
            text: bounded(&join(path, "text"), r.str(obj, "text", path)?)?,
            owner: bounded(&join(path, "owner"), r.str(obj, "owner", path)?)?,
            target: r.parse(obj, "target", path)?,
            done_on: r.opt_parse(obj, "done_on", path)?,
        })
    }

    /// Writes the action under `id` of the `actions` map, with who wrote
    /// it and when.
    pub(crate) fn write<T: Transactable>(
        &self,
        tx: &mut T,
        actions: &ObjId,
        id: &ItemId,
        by: &UserId,
        at: Timestamp,
    ) -> Result<(), AutomergeError> {
        let obj = tx.put_object(actions, id.as_str(), ObjType::Map)?;
        tx.put_str(&obj, "text", &self.text)?;
        tx.put_str(&obj, "owner", &self.owner)?;
        tx.put_str(&obj, "target", self.target)?;
        tx.put_opt_str(&obj, "done_on", self.done_on)?;
        tx.put_str(&obj, "by", by)?;
        tx.put_str(&obj, "at", at)
    }
}

/// Which due date an extension moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueKind {
    /// The date the owner's response is due.
    Response,
    /// The date the actions are due.
    Action,
}

impl fmt::Display for DueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DueKind::Response => "response",
            DueKind::Action => "action",
        })
    }
}

impl FromStr for DueKind {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "response" => Ok(DueKind::Response),
            "action" => Ok(DueKind::Action),
            _ => Err(IdError {
                what: "due date kind",
                value: s.chars().take(64).collect(),
                rule: "use response or action",
            }),
        }
    }
}

/// An extension of a due date, granted by a nodal officer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// Which due date.
    pub of: DueKind,
    /// The new due date.
    pub due: Date,
    /// Why.
    pub justification: String,
    /// Who granted it.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
    /// The owner's request it grants, if it answers one.
    pub request: Option<ItemId>,
}

impl Extension {
    fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Extension, SchemaError> {
        Ok(Extension {
            of: r.parse(obj, "of", path)?,
            due: r.parse(obj, "due", path)?,
            justification: bounded(
                &join(path, "justification"),
                r.str(obj, "justification", path)?,
            )?,
            by: r.parse(obj, "by", path)?,
            at: r.parse(obj, "at", path)?,
            request: r.opt_parse(obj, "request", path)?,
        })
    }
}

/// The process owner's request for a later due date, which a nodal officer
/// grants (an [`Extension`] naming it) or refuses (an [`ExtensionRefusal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionRequest {
    /// The request's id, which the answer names.
    pub id: ItemId,
    /// Which due date.
    pub of: DueKind,
    /// The date asked for.
    pub due: Date,
    /// Why the owner needs it.
    pub justification: String,
    /// Who asked.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

impl ExtensionRequest {
    fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<ExtensionRequest, SchemaError> {
        Ok(ExtensionRequest {
            id: r.parse(obj, "id", path)?,
            of: r.parse(obj, "of", path)?,
            due: r.parse(obj, "due", path)?,
            justification: bounded(
                &join(path, "justification"),
                r.str(obj, "justification", path)?,
            )?,
            by: r.parse(obj, "by", path)?,
            at: r.parse(obj, "at", path)?,
        })
    }
}

/// A nodal officer's refusal of an extension request, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionRefusal {
    /// The request refused.
    pub request: ItemId,
    /// Why.
    pub reason: String,
    /// Who refused it.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

impl ExtensionRefusal {
    fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<ExtensionRefusal, SchemaError> {
        Ok(ExtensionRefusal {
            request: r.parse(obj, "request", path)?,
            reason: bounded(&join(path, "reason"), r.str(obj, "reason", path)?)?,
            by: r.parse(obj, "by", path)?,
            at: r.parse(obj, "at", path)?,
        })
    }
}

/// The root keys of the request and refusal lists.
pub const EXTENSION_REQUESTS: &str = "extension_requests";
/// See [`EXTENSION_REQUESTS`].
pub const EXTENSION_REFUSALS: &str = "extension_refusals";

/// Every map of the list at `key` of the root, read with `read` (none if the list is absent).
fn read_list<T>(
    r: &Reader<'_>,
    key: &str,
    read: impl Fn(&Reader<'_>, &ObjId, &str) -> Result<T, SchemaError>,
) -> Result<Vec<T>, SchemaError> {
    let Some(list) = r.opt_list(&ROOT, key, "")? else {
        return Ok(Vec::new());
    };
    (0..r.len(&list))
        .map(|i| read(r, &r.map_at(&list, i, key)?, &format!("{key}/{i}")))
        .collect()
}

/// Which of an NC's evidence lists a file is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceOf {
    /// The process owner's proof that the actions were carried out.
    Implementation,
    /// What the verifying auditor saw.
    Verification,
}

impl EvidenceOf {
    /// The root key of the list.
    pub fn key(self) -> &'static str {
        match self {
            EvidenceOf::Implementation => "implementation_evidence",
            EvidenceOf::Verification => "verification_evidence",
        }
    }
}

impl fmt::Display for EvidenceOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvidenceOf::Implementation => "implementation",
            EvidenceOf::Verification => "verification",
        })
    }
}

impl FromStr for EvidenceOf {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "implementation" => Ok(EvidenceOf::Implementation),
            "verification" => Ok(EvidenceOf::Verification),
            _ => Err(IdError {
                what: "evidence list",
                value: s.chars().take(64).collect(),
                rule: "use implementation or verification",
            }),
        }
    }
}

/// A file attached to an NC: the blob reference, who attached it and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NcEvidence {
    /// The file.
    pub file: Evidence,
    /// Who attached it.
    pub by: UserId,
    /// When (the device's clock).
    pub at: Timestamp,
}

fn read_evidence(r: &Reader<'_>, of: EvidenceOf) -> Result<Vec<NcEvidence>, SchemaError> {
    let key = of.key();
    let Some(list) = r.opt_list(&ROOT, key, "")? else {
        return Ok(Vec::new());
    };
    (0..r.len(&list))
        .map(|i| {
            let path = format!("{key}/{i}");
            let obj = r.map_at(&list, i, key)?;
            Ok(NcEvidence {
                file: Evidence::read(r, &obj, &path)?,
                by: r.parse(&obj, "by", &path)?,
                at: r.parse(&obj, "at", &path)?,
            })
        })
        .collect()
}

/// Appends a file to one of an NC's evidence lists.
pub(crate) fn write_evidence<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    e: &NcEvidence,
) -> Result<(), AutomergeError> {
    let at = tx.length(list);
    let obj = Evidence::write_item(tx, list, at, &e.file)?;
    tx.put_str(&obj, "by", &e.by)?;
    tx.put_str(&obj, "at", e.at)
}

/// The result of verifying the actions' effectiveness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// What the auditor saw.
    pub note: String,
    /// Who verified.
    pub by: UserId,
    /// When.
    pub on: Date,
}

/// One of several verifications written at the same time: its note, and
/// who verified and on what date as its change left them (absent only when
/// no change before it ever wrote them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConcurrentVerification {
    /// What the auditor saw.
    pub note: String,
    /// Who verified.
    pub by: Option<UserId>,
    /// When.
    pub on: Option<Date>,
    /// Whether this is the value Automerge shows (`Nc::verification`).
    pub shown: bool,
}

/// One concurrent value: its text, the fields beside it as its change left
/// them, and whether it is the value shown.
type Concurrent = (String, Vec<Option<String>>, bool);

/// The concurrent values of `key` in map `obj`, when there are several:
/// each value's text, the texts of `beside` as its change left them (the
/// change wrote them, or found them so and left them), and whether it is
/// the value Automerge shows. In the same order on every replica.
fn concurrent_values(
    doc: &Automerge,
    heads: Option<&[automerge::ChangeHash]>,
    obj: &ObjId,
    key: &str,
    beside: &[&str],
    path: &str,
) -> Result<Vec<Concurrent>, SchemaError> {
    use automerge::ReadDoc;
    let failed = |e: automerge::AutomergeError| schema_error(&join(path, key), e.to_string());
    let values = match heads {
        Some(h) => doc.get_all_at(obj, key, h),
        None => doc.get_all(obj, key),
    }
    .map_err(failed)?;
    if values.len() < 2 {
        return Ok(Vec::new());
    }
    let shown = match heads {
        Some(h) => doc.get_at(obj, key, h),
        None => doc.get(obj, key),
    }
    .map_err(failed)?
    .map(|(_, id)| id);
    let mut out = Vec::with_capacity(values.len());
    for (value, id) in values {
        let at: Vec<automerge::ChangeHash> = doc.hash_for_opid(&id).into_iter().collect();
        let fields = beside
            .iter()
            .map(|b| match doc.get_at(obj, *b, &at) {
                Ok(Some((found, _))) => found.as_str().map(str::to_owned),
                _ => None,
            })
            .collect();
        let text = bounded(
            &join(path, key),
            value.as_str().unwrap_or_default().to_owned(),
        )?;
        out.push((text, fields, shown.as_ref() == Some(&id)));
    }
    Ok(out)
}

/// The values of root text field `key` written at the same time, each with
/// the `<key>_by` and `<key>_at` its change left (empty when uncontested),
/// in the document as it is or at `heads`.
pub(crate) fn contested_text_of(
    doc: &Automerge,
    heads: Option<&[automerge::ChangeHash]>,
    key: &str,
) -> Result<Vec<ContestedText>, SchemaError> {
    Ok(concurrent_values(
        doc,
        heads,
        &ROOT,
        key,
        &[&format!("{key}_by"), &format!("{key}_at")],
        "",
    )?
    .into_iter()
    .map(|(value, fields, shown)| ContestedText {
        value,
        by: fields[0].as_ref().and_then(|t| t.parse().ok()),
        at: fields[1].as_ref().and_then(|t| t.parse().ok()),
        shown,
    })
    .collect())
}

/// The concurrent verifications in the verification map `v`.
fn concurrent_verifications(
    doc: &Automerge,
    v: &ObjId,
) -> Result<Vec<ConcurrentVerification>, SchemaError> {
    Ok(
        concurrent_values(doc, None, v, "note", &["by", "on"], "verification")?
            .into_iter()
            .map(|(note, fields, shown)| ConcurrentVerification {
                note,
                by: fields[0].as_ref().and_then(|t| t.parse().ok()),
                on: fields[1].as_ref().and_then(|t| t.parse().ok()),
                shown,
            })
            .collect(),
    )
}

/// One of several values of a text field written at the same time by people
/// who had not seen each other's: the text, who wrote it and when (absent
/// for a value written without them, by a raw change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContestedText {
    /// The text.
    pub value: String,
    /// Who wrote it.
    pub by: Option<UserId>,
    /// When, by the writer's device clock.
    pub at: Option<Timestamp>,
    /// Whether this is the value shown in the field.
    pub shown: bool,
}

/// The due-date rules of a unit (reference data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueRules {
    /// Days from raising to the response being due, for a major NC.
    pub response_days_major: i32,
    /// Days from raising to the response being due, for a minor NC.
    pub response_days_minor: i32,
    /// Days from raising to the actions being due, for a major NC.
    pub action_days_major: i32,
    /// Days from raising to the actions being due, for a minor NC.
    pub action_days_minor: i32,
}

impl Default for DueRules {
    fn default() -> Self {
        DueRules {
            response_days_major: 7,
            response_days_minor: 7,
            action_days_major: 30,
            action_days_minor: 60,
        }
    }
}

/// Everything stored in an NC document, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nc {
    /// The document id.
    pub id: DocumentId,
    /// What it is about.
    pub link: NcLink,
    /// The number the server gave it (`NC-<n>`), once the device has heard.
    pub number: Option<String>,
    /// The number the device that raised it gave it until the server's
    /// arrives (e.g. `D-IYER-01`); empty if it gave none.
    pub provisional: String,
    /// The auditor's description of the non-conformance.
    pub description: String,
    /// The owner's immediate correction.
    pub correction: String,
    /// The owner's root cause analysis.
    pub root_cause: String,
    /// Signed text fields ([`crate::fields::Spec::signed`]) written at the same time by people
    /// who had not seen each other's: every value, with its writer and
    /// time, until someone who may write the field writes over them all.
    pub contested_text: BTreeMap<String, Vec<ContestedText>>,
    /// Actions written at the same time by people who had not seen each
    /// other's: every version, with its writer and time, until the process
    /// owner writes the action again. Empty when uncontested.
    pub contested_actions: ContestedActions,
    /// Corrective actions by id.
    pub actions: BTreeMap<ItemId, Action>,
    /// Due-date extensions, in order.
    pub extensions: Vec<Extension>,
    /// The owner's requests for extensions, in order.
    pub extension_requests: Vec<ExtensionRequest>,
    /// Requests the nodal officers refused, in order.
    pub extension_refusals: Vec<ExtensionRefusal>,
    /// The auditor's verification, once written.
    pub verification: Option<Verification>,
    /// Verifications written at the same time by auditors who had not seen
    /// each other's: every one, in the same order on every replica, until an
    /// auditor who may verify writes one over them all. Empty when there is
    /// no contest.
    pub contested_verification: Vec<ConcurrentVerification>,
    /// The owner's evidence that the actions were carried out, in order.
    pub implementation_evidence: Vec<NcEvidence>,
    /// The verifying auditor's evidence, in order.
    pub verification_evidence: Vec<NcEvidence>,
    /// Lifecycle events, in order.
    pub events: Vec<Event>,
}

impl Nc {
    /// Reads an NC document. Never panics; a schema mismatch names its path.
    pub fn read(doc: &Automerge) -> Result<Nc, SchemaError> {
        let r = Reader::whole(doc, None);
        r.expect_kind(DocKind::Nc)?;
        let root = &ROOT;
        let link = NcLink {
            unit: r.parse(root, "unit", "")?,
            audit: r.parse(root, "audit", "")?,
            finding: r.parse(root, "finding", "")?,
            process: r.opt_parse(root, "process", "")?,
            clause: r.parse(root, "clause", "")?,
            class: r.parse(root, "class", "")?,
            raised_on: r.parse(root, "raised_on", "")?,
        };
        let text = |key: &str| -> Result<String, SchemaError> {
            bounded(key, r.opt_str(root, key, "")?.unwrap_or_default())
        };
        let (actions, contested_actions) = read_actions(&r)?;
        let extensions = read_list(&r, "extensions", Extension::read)?;
        let mut contested_text = BTreeMap::new();
        for key in crate::fields::signed(DocKind::Nc) {
            let values = contested_text_of(doc, None, key)?;
            if !values.is_empty() {
                contested_text.insert(key.to_owned(), values);
            }
        }
        let verification_map = r.opt_map(root, "verification", "")?;
        let contested_verification = match &verification_map {
            Some(v) => concurrent_verifications(doc, v)?,
            None => Vec::new(),
        };
        let mut verification = match verification_map {
            Some(v) if r.opt_str(&v, "note", "verification")?.is_some() => Some(Verification {
                note: bounded("verification/note", r.str(&v, "note", "verification")?)?,
                by: r.parse(&v, "by", "verification")?,
                on: r.parse(&v, "on", "verification")?,
            }),
            _ => None,
        };
        // Contested, the note shown goes with its own writer and date (the
        // fields read one by one could pair one auditor's note with
        // another's name).
        if let Some(v) = verification.as_mut()
            && let Some(own) = contested_verification
                .iter()
                .find(|c| c.shown && c.note == v.note)
        {
            if let Some(by) = &own.by {
                v.by = by.clone();
            }
            if let Some(on) = own.on {
                v.on = on;
            }
        }
        Ok(Nc {
            id: r.parse(root, "id", "")?,
            link,
            number: r.opt_str(root, SERVER_NUMBER, "")?,
            provisional: text("provisional")?,
            description: text("description")?,
            correction: text("correction")?,
            root_cause: text("root_cause")?,
            contested_text,
            actions,
            contested_actions,
            extensions,
            extension_requests: read_list(&r, EXTENSION_REQUESTS, ExtensionRequest::read)?,
            extension_refusals: read_list(&r, EXTENSION_REFUSALS, ExtensionRefusal::read)?,
            verification,
            contested_verification,
            implementation_evidence: read_evidence(&r, EvidenceOf::Implementation)?,
            verification_evidence: read_evidence(&r, EvidenceOf::Verification)?,
            events: Event::read_all(&r)?,
        })
    }

    /// Every concurrent value of the NC's contested fields, as report rows
    /// show them: the texts by field name, the verification
    /// (`verification`), then the actions (`actions/<id>`).
    pub fn contested_values(&self) -> Vec<crate::audit::ContestedValue> {
        use crate::audit::ContestedValue;
        let mut out = Vec::new();
        for (field, values) in &self.contested_text {
            out.extend(values.iter().map(|v| ContestedValue::of_text(field, v)));
        }
        out.extend(self.contested_verification.iter().map(|v| ContestedValue {
            place: "verification".into(),
            by: v.by.clone(),
            at: None,
            value: match v.on {
                Some(on) => format!("{on}: {}", v.note),
                None => v.note.clone(),
            },
        }));
        for (id, versions) in &self.contested_actions {
            out.extend(versions.iter().map(|v| ContestedValue {
                place: format!("actions/{id}"),
                by: v.by.clone(),
                at: v.at,
                value: format!(
                    "{} ({}, by {})",
                    v.action.text, v.action.owner, v.action.target
                ),
            }));
        }
        out
    }

    /// The date the response is due: the last response extension, else the rule.
    pub fn response_due(&self, rules: &DueRules) -> Date {
        let days = match self.link.class {
            Severity::Major => rules.response_days_major,
            Severity::Minor => rules.response_days_minor,
        };
        self.extended(DueKind::Response)
            .unwrap_or(self.link.raised_on.add_days(days))
    }

    /// The date the actions are due: the last action extension, else the rule.
    pub fn action_due(&self, rules: &DueRules) -> Date {
        let days = match self.link.class {
            Severity::Major => rules.action_days_major,
            Severity::Minor => rules.action_days_minor,
        };
        self.extended(DueKind::Action)
            .unwrap_or(self.link.raised_on.add_days(days))
    }

    /// The owner's requests no nodal officer has answered yet (granted or refused), in order.
    pub fn pending_requests(&self) -> impl Iterator<Item = &ExtensionRequest> {
        self.extension_requests.iter().filter(|q| {
            !self
                .extensions
                .iter()
                .any(|e| e.request.as_ref() == Some(&q.id))
                && !self.extension_refusals.iter().any(|f| f.request == q.id)
        })
    }

    /// The request of this id, if the owner made it.
    pub fn request(&self, id: &ItemId) -> Option<&ExtensionRequest> {
        self.extension_requests.iter().find(|q| &q.id == id)
    }

    fn extended(&self, of: DueKind) -> Option<Date> {
        self.extensions
            .iter()
            .rev()
            .find(|e| e.of == of)
            .map(|e| e.due)
    }

    /// Derives the NC's state, conflicts, due dates and escalation as of a date.
    pub fn view(&self, rules: &DueRules, as_of: Date) -> NcView {
        let f = fold::<NcState>(&self.events);
        let due = match f.state {
            NcState::Open => Some(self.response_due(rules)),
            NcState::PlanAccepted => Some(self.action_due(rules)),
            _ => None,
        };
        NcView {
            state: f.state,
            conflicts: f.conflicts,
            response_due: self.response_due(rules),
            action_due: self.action_due(rules),
            due,
            days_overdue: due.map(|d| as_of.days_since(d)).filter(|days| *days > 0),
            escalation: due.and_then(|d| escalation(d, as_of)),
        }
    }
}

/// The derived state of an NC, identical on every replica with the same changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NcView {
    /// Current state.
    pub state: NcState,
    /// Moves that met a state other than the one their author saw.
    pub conflicts: Vec<TransitionConflict>,
    /// When the response is (or was) due.
    pub response_due: Date,
    /// When the actions are (or were) due.
    pub action_due: Date,
    /// The due date that applies in the current state, if any.
    pub due: Option<Date>,
    /// Days past that date as of the date asked (none on the day itself or
    /// before): computed when asked, never stored.
    pub days_overdue: Option<i32>,
    /// The escalation level as of the date asked, if overdue.
    pub escalation: Option<Level>,
}

/// Writes text field `key` with who wrote it and when, so that values two
/// people write at the same time each show their writer.
pub(crate) fn write_text<T: Transactable>(
    tx: &mut T,
    key: &str,
    text: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, key, text)?;
    tx.put_str(&ROOT, &format!("{key}_by"), by)?;
    tx.put_str(&ROOT, &format!("{key}_at"), at)
}

/// Writes a new NC document's skeleton.
pub(crate) fn write_new<T: Transactable>(
    tx: &mut T,
    id: DocumentId,
    link: &NcLink,
    description: &str,
    provisional: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, "schema", DocKind::Nc.schema())?;
    tx.put(ROOT, "v", SCHEMA_VERSION)?;
    tx.put_str(&ROOT, "id", id)?;
    tx.put_str(&ROOT, "unit", &link.unit)?;
    tx.put_str(&ROOT, "audit", link.audit)?;
    tx.put_str(&ROOT, "finding", &link.finding)?;
    tx.put_opt_str(&ROOT, "process", link.process.as_ref())?;
    tx.put_str(&ROOT, "clause", &link.clause)?;
    tx.put_str(&ROOT, "class", link.class)?;
    tx.put_str(&ROOT, "raised_on", link.raised_on)?;
    if !provisional.is_empty() {
        tx.put(ROOT, "provisional", provisional)?;
    }
    write_text(tx, "description", description, by, at)?;
    tx.put(ROOT, "correction", "")?;
    tx.put(ROOT, "root_cause", "")?;
    tx.put_object(ROOT, "actions", ObjType::Map)?;
    tx.put_object(ROOT, "extensions", ObjType::List)?;
    tx.put_object(ROOT, EXTENSION_REQUESTS, ObjType::List)?;
    tx.put_object(ROOT, EXTENSION_REFUSALS, ObjType::List)?;
    tx.put_object(ROOT, "verification", ObjType::Map)?;
    tx.put_object(ROOT, EvidenceOf::Implementation.key(), ObjType::List)?;
    tx.put_object(ROOT, EvidenceOf::Verification.key(), ObjType::List)?;
    tx.put_object(ROOT, "events", ObjType::List)?;
    Ok(())
}

/// Appends an extension.
pub(crate) fn write_extension<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    e: &Extension,
) -> Result<(), AutomergeError> {
    let at = tx.length(list);
    let obj = tx.insert_object(list, at, ObjType::Map)?;
    tx.put_str(&obj, "of", e.of)?;
    tx.put_str(&obj, "due", e.due)?;
    tx.put_str(&obj, "justification", &e.justification)?;
    tx.put_str(&obj, "by", &e.by)?;
    tx.put_str(&obj, "at", e.at)?;
    if let Some(request) = &e.request {
        tx.put_str(&obj, "request", request)?;
    }
    Ok(())
}

/// Appends an owner's extension request.
pub(crate) fn write_request<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    q: &ExtensionRequest,
) -> Result<(), AutomergeError> {
    let at = tx.length(list);
    let obj = tx.insert_object(list, at, ObjType::Map)?;
    tx.put_str(&obj, "id", &q.id)?;
    tx.put_str(&obj, "of", q.of)?;
    tx.put_str(&obj, "due", q.due)?;
    tx.put_str(&obj, "justification", &q.justification)?;
    tx.put_str(&obj, "by", &q.by)?;
    tx.put_str(&obj, "at", q.at)
}

/// Appends a nodal officer's refusal of a request.
pub(crate) fn write_refusal<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    f: &ExtensionRefusal,
) -> Result<(), AutomergeError> {
    let at = tx.length(list);
    let obj = tx.insert_object(list, at, ObjType::Map)?;
    tx.put_str(&obj, "request", &f.request)?;
    tx.put_str(&obj, "reason", &f.reason)?;
    tx.put_str(&obj, "by", &f.by)?;
    tx.put_str(&obj, "at", f.at)
}
