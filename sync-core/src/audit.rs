//! The `audit` document: header, checklist responses keyed by stable item key,
//! findings with their classification, evidence references and meeting notes.
//!
//! Layout (root map): `schema`, `v`, `id`, `header{..}`, `responses{<key>: {..}}`,
//! `findings{<id>: {..}}`, `notes`, `events[..]`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ChangeHash, ObjId, ObjType, ROOT};

use crate::date::{Date, Timestamp};
use crate::ids::{
    ClauseKey, DocumentId, IdError, ItemId, ProcessCode, ResponseKey, Sha256Hex, UnitCode, UserId,
};
use crate::kind::DocKind;
use crate::schema::{Reader, SCHEMA_VERSION, SchemaError, WriteExt, bounded, join, schema_error};
use crate::workflow::{AuditState, Event, TransitionConflict, fold};

/// A reference to a blob (photo, scan) held outside the document: hash and metadata, no bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Evidence {
    /// SHA-256 of the blob's bytes.
    pub sha256: Sha256Hex,
    /// File name as the user knows it.
    pub name: String,
    /// Media type, e.g. `image/jpeg`.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// When the photo was taken or the scan made, if known.
    pub taken_at: Option<Timestamp>,
}

impl Evidence {
    pub(crate) fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Evidence, SchemaError> {
        Ok(Evidence {
            sha256: r.parse(obj, "sha256", path)?,
            name: bounded(&join(path, "name"), r.str(obj, "name", path)?)?,
            mime: r.str(obj, "mime", path)?,
            size: r
                .opt_uint(obj, "size", path)?
                .ok_or_else(|| schema_error(&join(path, "size"), "is missing"))?,
            taken_at: r.opt_parse(obj, "taken_at", path)?,
        })
    }

    pub(crate) fn read_list(
        r: &Reader<'_>,
        obj: &ObjId,
        path: &str,
    ) -> Result<Vec<Evidence>, SchemaError> {
        let Some(list) = r.opt_list(obj, "evidence", path)? else {
            return Ok(Vec::new());
        };
        let path = join(path, "evidence");
        (0..r.len(&list))
            .map(|i| Evidence::read(r, &r.map_at(&list, i, &path)?, &join(&path, &i.to_string())))
            .collect()
    }

    pub(crate) fn write_list<T: Transactable>(
        tx: &mut T,
        obj: &ObjId,
        items: &[Evidence],
    ) -> Result<(), AutomergeError> {
        let list = tx.put_object(obj, "evidence", ObjType::List)?;
        for (i, e) in items.iter().enumerate() {
            Evidence::write_item(tx, &list, i, e)?;
        }
        Ok(())
    }

    /// Inserts one file's map at `index` of a list; returns the map.
    pub(crate) fn write_item<T: Transactable>(
        tx: &mut T,
        list: &ObjId,
        index: usize,
        e: &Evidence,
    ) -> Result<ObjId, AutomergeError> {
        let m = tx.insert_object(list, index, ObjType::Map)?;
        tx.put_str(&m, "sha256", &e.sha256)?;
        tx.put_str(&m, "name", &e.name)?;
        tx.put_str(&m, "mime", &e.mime)?;
        tx.put(&m, "size", e.size)?;
        tx.put_opt_str(&m, "taken_at", e.taken_at)?;
        Ok(m)
    }
}

/// Conform / partly conform / not conform / not applicable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cpna {
    /// Conforms.
    Conform,
    /// Partly conforms.
    Partly,
    /// Does not conform.
    NotConform,
    /// Not applicable.
    NotApplicable,
}

/// Yes / no / not applicable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum YesNo {
    /// Yes.
    Yes,
    /// No.
    No,
    /// Not applicable.
    NotApplicable,
}

/// An answer to one checklist item, of the item's response type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Answer {
    /// A `cpna` item.
    Cpna(Cpna),
    /// A `yn` item.
    YesNo(YesNo),
    /// A `text` item.
    Text(String),
    /// A `number` item (counts: whole numbers).
    Number(i64),
    /// A `date` item.
    Date(Date),
    /// A `photo` item: the photos are the response's evidence.
    Photo,
}

impl Answer {
    pub(crate) fn encode(&self) -> (&'static str, String) {
        match self {
            Answer::Cpna(c) => (
                "cpna",
                match c {
                    Cpna::Conform => "conform",
                    Cpna::Partly => "partly",
                    Cpna::NotConform => "not_conform",
                    Cpna::NotApplicable => "na",
                }
                .into(),
            ),
            Answer::YesNo(y) => (
                "yn",
                match y {
                    YesNo::Yes => "yes",
                    YesNo::No => "no",
                    YesNo::NotApplicable => "na",
                }
                .into(),
            ),
            Answer::Text(t) => ("text", t.clone()),
            Answer::Number(n) => ("number", n.to_string()),
            Answer::Date(d) => ("date", d.to_string()),
            Answer::Photo => ("photo", String::new()),
        }
    }

    pub(crate) fn decode(kind: &str, value: String, path: &str) -> Result<Answer, SchemaError> {
        let bad = |what: &str| {
            schema_error(
                path,
                format!("'{}' is not {what}", crate::text::quote(&value)),
            )
        };
        Ok(match kind {
            "cpna" => Answer::Cpna(match value.as_str() {
                "conform" => Cpna::Conform,
                "partly" => Cpna::Partly,
                "not_conform" => Cpna::NotConform,
                "na" => Cpna::NotApplicable,
                _ => return Err(bad("conform, partly, not_conform or na")),
            }),
            "yn" => Answer::YesNo(match value.as_str() {
                "yes" => YesNo::Yes,
                "no" => YesNo::No,
                "na" => YesNo::NotApplicable,
                _ => return Err(bad("yes, no or na")),
            }),
            "text" => Answer::Text(bounded(path, value)?),
            "number" => Answer::Number(value.parse().map_err(|_| bad("a whole number"))?),
            "date" => Answer::Date(value.parse().map_err(|_| bad("a date (YYYY-MM-DD)"))?),
            "photo" => Answer::Photo,
            other => {
                return Err(schema_error(
                    path,
                    format!("unknown response type '{}'", crate::text::quote(other)),
                ));
            }
        })
    }

    /// Whether the answer records a shortfall (partly or not conform, or no).
    pub fn is_shortfall(&self) -> bool {
        matches!(
            self,
            Answer::Cpna(Cpna::Partly | Cpna::NotConform) | Answer::YesNo(YesNo::No)
        )
    }
}

/// One checklist response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Response {
    /// The answer.
    pub answer: Answer,
    /// The auditor's note (objective evidence in words).
    pub note: String,
    /// Photos and scans supporting the answer.
    pub evidence: Vec<Evidence>,
    /// Who answered.
    pub by: UserId,
    /// When, by the device's clock.
    pub at: Timestamp,
}

impl Response {
    pub(crate) fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Response, SchemaError> {
        let kind = r.str(obj, "type", path)?;
        let value = r.opt_str(obj, "value", path)?.unwrap_or_default();
        Ok(Response {
            answer: Answer::decode(&kind, value, &join(path, "value"))?,
            note: bounded(
                &join(path, "note"),
                r.opt_str(obj, "note", path)?.unwrap_or_default(),
            )?,
            evidence: Evidence::read_list(r, obj, path)?,
            by: r.parse(obj, "by", path)?,
            at: r.parse(obj, "at", path)?,
        })
    }

    pub(crate) fn write<T: Transactable>(
        &self,
        tx: &mut T,
        responses: &ObjId,
        key: &ResponseKey,
    ) -> Result<(), AutomergeError> {
        let obj = tx.put_object(responses, key.to_string(), ObjType::Map)?;
        let (kind, value) = self.answer.encode();
        tx.put(&obj, "type", kind)?;
        tx.put(&obj, "value", value)?;
        tx.put_str(&obj, "note", &self.note)?;
        Evidence::write_list(tx, &obj, &self.evidence)?;
        tx.put_str(&obj, "by", &self.by)?;
        tx.put_str(&obj, "at", self.at)
    }
}

/// The five classifications of a finding. Only major and minor create an NC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingClass {
    /// Major non-conformance.
    Major,
    /// Minor non-conformance.
    Minor,
    /// Observation.
    Observation,
    /// Opportunity for improvement.
    Ofi,
    /// Good practice.
    GoodPractice,
}

impl FindingClass {
    /// Every class.
    pub const ALL: [FindingClass; 5] = [
        Self::Major,
        Self::Minor,
        Self::Observation,
        Self::Ofi,
        Self::GoodPractice,
    ];

    /// Whether a finding of this class creates an NC.
    pub fn creates_nc(self) -> bool {
        matches!(self, FindingClass::Major | FindingClass::Minor)
    }
}

impl fmt::Display for FindingClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingClass::Major => "major",
            FindingClass::Minor => "minor",
            FindingClass::Observation => "observation",
            FindingClass::Ofi => "ofi",
            FindingClass::GoodPractice => "good_practice",
        })
    }
}

impl FromStr for FindingClass {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FindingClass::ALL
            .into_iter()
            .find(|c| c.to_string() == s)
            .ok_or_else(|| IdError {
                what: "finding class",
                value: s.chars().take(64).collect(),
                rule: "use major, minor, observation, ofi or good_practice",
            })
    }
}

/// One finding of an audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Classification.
    pub class: FindingClass,
    /// The clause it is raised against.
    pub clause: ClauseKey,
    /// The process concerned, if any.
    pub process: Option<ProcessCode>,
    /// What was found.
    pub text: String,
    /// Photos and scans supporting it.
    pub evidence: Vec<Evidence>,
    /// Who recorded it.
    pub by: UserId,
    /// When, by the device's clock.
    pub at: Timestamp,
}

impl Finding {
    pub(crate) fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Finding, SchemaError> {
        Ok(Finding {
            class: r.parse(obj, "class", path)?,
            clause: r.parse(obj, "clause", path)?,
            process: r.opt_parse(obj, "process", path)?,
            text: bounded(&join(path, "text"), r.str(obj, "text", path)?)?,
            evidence: Evidence::read_list(r, obj, path)?,
            by: r.parse(obj, "by", path)?,
            at: r.parse(obj, "at", path)?,
        })
    }

    pub(crate) fn write<T: Transactable>(
        &self,
        tx: &mut T,
        findings: &ObjId,
        id: &ItemId,
    ) -> Result<(), AutomergeError> {
        let obj = tx.put_object(findings, id.as_str(), ObjType::Map)?;
        tx.put_str(&obj, "class", self.class)?;
        tx.put_str(&obj, "clause", &self.clause)?;
        tx.put_opt_str(&obj, "process", self.process.as_ref())?;
        tx.put_str(&obj, "text", &self.text)?;
        Evidence::write_list(tx, &obj, &self.evidence)?;
        tx.put_str(&obj, "by", &self.by)?;
        tx.put_str(&obj, "at", self.at)
    }
}

/// The audit header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHeader {
    /// The audited unit.
    pub unit: UnitCode,
    /// The audit number, `IA/<UNIT>/<FY>/<seq>` (provisional until the server assigns it).
    pub number: String,
    /// What is audited: process codes and clauses.
    pub scope: Vec<String>,
    /// The checklist template version the audit is pinned to.
    pub template_version: u64,
    /// The lead auditor (display; rights come from reference data).
    pub lead: UserId,
    /// The team (display; rights come from reference data).
    pub team: Vec<UserId>,
    /// First day of fieldwork.
    pub start: Date,
    /// Last day of fieldwork.
    pub end: Option<Date>,
}

impl AuditHeader {
    pub(crate) fn read(r: &Reader<'_>) -> Result<AuditHeader, SchemaError> {
        let h = r.map(&ROOT, "header", "")?;
        let p = "header";
        Ok(AuditHeader {
            unit: r.parse(&h, "unit", p)?,
            number: r.str(&h, "number", p)?,
            scope: r.str_list(&h, "scope", p)?,
            template_version: r
                .opt_uint(&h, "template", p)?
                .ok_or_else(|| schema_error("header/template", "is missing"))?,
            lead: r.parse(&h, "lead", p)?,
            team: r
                .str_list(&h, "team", p)?
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse().map_err(|e: IdError| {
                        schema_error(&format!("header/team/{i}"), e.to_string())
                    })
                })
                .collect::<Result<_, _>>()?,
            start: r.parse(&h, "start", p)?,
            end: r.opt_parse(&h, "end", p)?,
        })
    }

    pub(crate) fn write<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        let h = tx.put_object(ROOT, "header", ObjType::Map)?;
        tx.put_str(&h, "unit", &self.unit)?;
        tx.put_str(&h, "number", &self.number)?;
        tx.put_str_list(&h, "scope", &self.scope)?;
        tx.put(&h, "template", self.template_version)?;
        tx.put_str(&h, "lead", &self.lead)?;
        tx.put_str_list(&h, "team", &self.team)?;
        tx.put_str(&h, "start", self.start)?;
        tx.put_opt_str(&h, "end", self.end)
    }
}

/// Writes a new audit document's skeleton and header.
pub(crate) fn write_new<T: Transactable>(
    tx: &mut T,
    id: DocumentId,
    header: &AuditHeader,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, "schema", DocKind::Audit.schema())?;
    tx.put(ROOT, "v", SCHEMA_VERSION)?;
    tx.put_str(&ROOT, "id", id)?;
    header.write(tx)?;
    tx.put_object(ROOT, "responses", ObjType::Map)?;
    tx.put_object(ROOT, "findings", ObjType::Map)?;
    tx.put(ROOT, "notes", "")?;
    tx.put_object(ROOT, "events", ObjType::List)?;
    Ok(())
}

/// An entry of an audit that people can write concurrently: a response or
/// a finding, written whole, with its writer and evidence.
pub(crate) trait Entry: Clone + Sized {
    fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Self, SchemaError>;
    fn evidence(&self) -> &[Evidence];
    fn evidence_mut(&mut self) -> &mut Vec<Evidence>;
}

impl Entry for Response {
    fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Self, SchemaError> {
        Response::read(r, obj, path)
    }
    fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }
    fn evidence_mut(&mut self) -> &mut Vec<Evidence> {
        &mut self.evidence
    }
}

impl Entry for Finding {
    fn read(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Self, SchemaError> {
        Finding::read(r, obj, path)
    }
    fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }
    fn evidence_mut(&mut self) -> &mut Vec<Evidence> {
        &mut self.evidence
    }
}

/// The entry under `key` of the section map `obj` (`responses`,
/// `findings`): the value shown, and every concurrent value when people
/// wrote it without seeing each other's (empty when there is one value).
///
/// Nothing is hidden (DESIGN §3): the value shown is the one Automerge
/// picks, and it carries the evidence of every concurrent value (evidence
/// lists merge, they never conflict); the concurrent values are shown
/// beside it, each with its writer and time, until the lead auditor writes
/// a value that supersedes them all.
pub(crate) fn read_entry<T: Entry>(
    r: &Reader<'_>,
    obj: &ObjId,
    key: &str,
    section: &str,
) -> Result<(T, Vec<T>), SchemaError> {
    let path = join(section, key);
    let shown_obj = r.map(obj, key, section)?;
    let mut shown = T::read(r, &shown_obj, &path)?;
    if !r.is_contested(obj, key) {
        return Ok((shown, Vec::new()));
    }
    let all = r.all_maps(obj, key, section)?;
    let fresh = r.fresh();
    let mut values = Vec::with_capacity(all.len());
    for o in &all {
        values.push(if *o == shown_obj {
            shown.clone()
        } else {
            T::read(&fresh, o, &path)?
        });
    }
    for e in values.iter().flat_map(|v| v.evidence()) {
        if !shown.evidence().iter().any(|h| h.sha256 == e.sha256) {
            shown.evidence_mut().push(e.clone());
        }
    }
    Ok((shown, values))
}

/// An audit's content read at one version of the document.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditContent {
    /// Checklist responses by key: for a contested one, the value Automerge
    /// shows, holding the evidence of every concurrent value.
    pub responses: BTreeMap<ResponseKey, Response>,
    /// Findings by id (for a contested one, as for responses).
    pub findings: BTreeMap<ItemId, Finding>,
    /// Meeting notes.
    pub notes: String,
    /// Meeting notes written at the same time by auditors who had not seen
    /// each other's: every value, with who wrote it and when, until one of
    /// the team writes notes over them all. Empty when uncontested.
    pub contested_notes: Vec<crate::nc::ContestedText>,
    /// Responses that auditors wrote concurrently, none seeing the others':
    /// every value, in the same order on every replica, until the lead
    /// auditor settles them.
    pub contested_responses: BTreeMap<ResponseKey, Vec<Response>>,
    /// Findings written concurrently (as for responses).
    pub contested_findings: BTreeMap<ItemId, Vec<Finding>>,
}

impl AuditContent {
    pub(crate) fn read(r: &Reader<'_>) -> Result<AuditContent, SchemaError> {
        let mut content = AuditContent {
            responses: BTreeMap::new(),
            findings: BTreeMap::new(),
            notes: AuditContent::notes(r)?,
            contested_notes: crate::nc::contested_text_of(r.doc, r.heads, "notes")?,
            contested_responses: BTreeMap::new(),
            contested_findings: BTreeMap::new(),
        };
        if let Some(obj) = r.opt_map(&ROOT, "responses", "")? {
            for key in r.keys(&obj) {
                let (k, v, all) = AuditContent::response(r, &obj, &key)?;
                if !all.is_empty() {
                    content.contested_responses.insert(k.clone(), all);
                }
                content.responses.insert(k, v);
            }
        }
        if let Some(obj) = r.opt_map(&ROOT, "findings", "")? {
            for key in r.keys(&obj) {
                let (k, v, all) = AuditContent::finding(r, &obj, &key)?;
                if !all.is_empty() {
                    content.contested_findings.insert(k.clone(), all);
                }
                content.findings.insert(k, v);
            }
        }
        Ok(content)
    }

    /// The response under `key` of the `responses` map `obj`, and its
    /// concurrent values if it is contested (see [`read_entry`]).
    pub(crate) fn response(
        r: &Reader<'_>,
        obj: &ObjId,
        key: &str,
    ) -> Result<(ResponseKey, Response, Vec<Response>), SchemaError> {
        let parsed: ResponseKey = key
            .parse()
            .map_err(|e: IdError| schema_error(&join("responses", key), e.to_string()))?;
        let (shown, all) = read_entry(r, obj, key, "responses")?;
        Ok((parsed, shown, all))
    }

    /// The finding under `key` of the `findings` map `obj`, and its
    /// concurrent values if it is contested.
    pub(crate) fn finding(
        r: &Reader<'_>,
        obj: &ObjId,
        key: &str,
    ) -> Result<(ItemId, Finding, Vec<Finding>), SchemaError> {
        let parsed: ItemId = key
            .parse()
            .map_err(|e: IdError| schema_error(&join("findings", key), e.to_string()))?;
        let (shown, all) = read_entry(r, obj, key, "findings")?;
        Ok((parsed, shown, all))
    }

    /// The meeting notes.
    pub(crate) fn notes(r: &Reader<'_>) -> Result<String, SchemaError> {
        bounded("notes", r.opt_str(&ROOT, "notes", "")?.unwrap_or_default())
    }

    /// How many responses, findings and notes hold concurrent values.
    pub fn contested(&self) -> usize {
        self.contested_responses.len()
            + self.contested_findings.len()
            + usize::from(!self.contested_notes.is_empty())
    }
}

/// An edit that reached a locked audit: kept, shown, not applied until the lead accepts it.
#[derive(Clone, Debug, PartialEq)]
pub enum LateEdit {
    /// A response that differs from the locked one (`None`: removed after the lock).
    Response {
        /// Which response.
        key: ResponseKey,
        /// The value in force (as locked).
        locked: Option<Response>,
        /// The late value.
        late: Option<Response>,
    },
    /// A finding that differs from the locked one.
    Finding {
        /// Which finding.
        id: ItemId,
        /// The value in force (as locked).
        locked: Option<Finding>,
        /// The late value.
        late: Option<Finding>,
    },
    /// Meeting notes changed after the lock.
    Notes {
        /// The late notes.
        late: String,
    },
}

/// The derived view of an audit, identical on every replica with the same changes.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditView {
    /// The document id.
    pub id: DocumentId,
    /// The header.
    pub header: AuditHeader,
    /// The lifecycle state.
    pub state: AuditState,
    /// Moves that met a state other than the one their author saw.
    pub conflicts: Vec<TransitionConflict>,
    /// The content in force: as locked (plus accepted late edits) while locked, else current.
    pub content: AuditContent,
    /// Edits that reached the audit after it was locked, awaiting the lead's acceptance.
    pub late_edits: Vec<LateEdit>,
    /// The heads the content in force is read at, when locked.
    pub locked_at: Option<Vec<ChangeHash>>,
    /// The lifecycle events.
    pub events: Vec<Event>,
}

/// The heads an audit's content in force is read at: those of the last
/// applied move that carries heads, while the audit is locked.
fn lock_heads(state: AuditState, applied: &[usize], events: &[Event]) -> Option<Vec<ChangeHash>> {
    if !state.is_locked() {
        return None;
    }
    applied
        .iter()
        .rev()
        .map(|&i| &events[i])
        .find(|e| !e.heads.is_empty())
        .map(|e| e.heads.clone())
}

/// Whether the document holds every change of `heads` (a lock can name
/// changes that have not arrived yet).
fn knows(doc: &Automerge, heads: &[ChangeHash]) -> bool {
    heads
        .iter()
        .all(|h| doc.get_change_meta_by_hash(h).is_some())
}

impl AuditView {
    /// Reads and derives an audit. Never panics; a schema mismatch names its path.
    pub fn read(doc: &Automerge) -> Result<AuditView, SchemaError> {
        let r = Reader::whole(doc, None);
        r.expect_kind(DocKind::Audit)?;
        let id = r.parse(&ROOT, "id", "")?;
        let header = AuditHeader::read(&r)?;
        let events = Event::read_all(&r)?;
        let f = fold::<AuditState>(&events);
        let current = AuditContent::read(&r)?;
        let lock = lock_heads(f.state, &f.applied, &events);
        let (content, late_edits) = match &lock {
            Some(heads) if knows(doc, heads) => {
                let locked = AuditContent::read(&Reader::whole(doc, Some(heads)))?;
                let late = diff(&locked, &current);
                (locked, late)
            }
            _ => (current, Vec::new()),
        };
        Ok(AuditView {
            id,
            header,
            state: f.state,
            conflicts: f.conflicts,
            content,
            late_edits,
            locked_at: lock,
            events,
        })
    }
}

/// A blob an entry names: its hash and media type.
pub type BlobRef = (Sha256Hex, String);

/// One of the concurrent values of a contested response or finding, as a
/// report row shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContestedValue {
    /// Where: `responses/<key>`, `findings/<id>` or `notes`.
    pub place: String,
    /// Who wrote it (unknown only for notes written without their writer,
    /// by a raw change).
    pub by: Option<UserId>,
    /// When, by the writer's device (unknown as the writer is).
    pub at: Option<Timestamp>,
    /// The value in words: an answer (`partly: 19 days`), a finding
    /// (`minor: register not kept`) or notes.
    pub value: String,
}

impl ContestedValue {
    fn of_response(key: &ResponseKey, r: &Response) -> ContestedValue {
        let (_, answer) = r.answer.encode();
        let answer = if matches!(r.answer, Answer::Photo) {
            "photo".to_owned()
        } else {
            answer
        };
        ContestedValue {
            place: format!("responses/{key}"),
            by: Some(r.by.clone()),
            at: Some(r.at),
            value: if r.note.is_empty() {
                answer
            } else {
                format!("{answer}: {}", r.note)
            },
        }
    }

    fn of_finding(id: &ItemId, f: &Finding) -> ContestedValue {
        ContestedValue {
            place: format!("findings/{id}"),
            by: Some(f.by.clone()),
            at: Some(f.at),
            value: format!("{}: {}", f.class, f.text),
        }
    }

    /// The concurrent values of contested notes.
    fn of_notes(values: &[crate::nc::ContestedText]) -> impl Iterator<Item = ContestedValue> {
        values.iter().map(|v| ContestedValue::of_text("notes", v))
    }

    /// One concurrent value of the root text field `place`.
    pub(crate) fn of_text(place: &str, v: &crate::nc::ContestedText) -> ContestedValue {
        ContestedValue {
            place: place.to_owned(),
            by: v.by.clone(),
            at: v.at,
            value: v.value.clone(),
        }
    }

    /// Every concurrent value of a content's contested responses, findings
    /// and notes.
    pub fn all_of(content: &AuditContent) -> Vec<ContestedValue> {
        let mut out: Vec<ContestedValue> =
            ContestedValue::of_notes(&content.contested_notes).collect();
        for (key, values) in &content.contested_responses {
            out.extend(values.iter().map(|r| ContestedValue::of_response(key, r)));
        }
        for (id, values) in &content.contested_findings {
            out.extend(values.iter().map(|f| ContestedValue::of_finding(id, f)));
        }
        out
    }
}

/// One response as [`LiveAudit`] keeps it: a fingerprint of the whole (to
/// tell late edits) and the blobs it names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ResponsePrint {
    print: u64,
    evidence: Vec<BlobRef>,
}

impl ResponsePrint {
    fn of(r: &Response) -> ResponsePrint {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        r.hash(&mut h);
        ResponsePrint {
            print: h.finish(),
            evidence: r
                .evidence
                .iter()
                .map(|e| (e.sha256.clone(), e.mime.clone()))
                .collect(),
        }
    }
}

/// One version of an audit's content, as [`LiveAudit`] keeps it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Kept {
    responses: BTreeMap<ResponseKey, ResponsePrint>,
    findings: BTreeMap<ItemId, Finding>,
    notes: String,
    /// The concurrent values of each contested entry, by place.
    contested: BTreeMap<String, Vec<ContestedValue>>,
}

impl Kept {
    fn of(c: &AuditContent) -> Kept {
        let mut contested: BTreeMap<String, Vec<ContestedValue>> = BTreeMap::new();
        for v in ContestedValue::all_of(c) {
            contested.entry(v.place.clone()).or_default().push(v);
        }
        Kept {
            responses: c
                .responses
                .iter()
                .map(|(k, r)| (k.clone(), ResponsePrint::of(r)))
                .collect(),
            findings: c.findings.clone(),
            notes: c.notes.clone(),
            contested,
        }
    }

    /// Records the concurrent values of the entry at `place` (none: it is not contested).
    fn contest(&mut self, place: String, values: Vec<ContestedValue>) {
        if values.is_empty() {
            self.contested.remove(&place);
        } else {
            self.contested.insert(place, values);
        }
    }

    fn read(r: &Reader<'_>) -> Result<Kept, SchemaError> {
        Ok(Kept::of(&AuditContent::read(r)?))
    }
}

/// What an audit's report rows are made of, kept up to date batch by batch:
/// after a batch, only what it wrote is read again (see
/// [`crate::validate::Touched`]), and every figure is what [`AuditView::read`]
/// would give. Responses are kept as a fingerprint and the blobs they name,
/// not whole: a server keeps one of these per open audit.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveAudit {
    header: AuditHeader,
    state: AuditState,
    conflicts: usize,
    locked_at: Option<Vec<ChangeHash>>,
    /// The content in force: as locked while locked (at known heads), else current.
    in_force: Kept,
    /// While locked (at known heads): the current content.
    current: Option<Kept>,
}

impl LiveAudit {
    /// Reads an audit whole.
    pub fn read(doc: &Automerge) -> Result<LiveAudit, SchemaError> {
        let r = Reader::whole(doc, None);
        r.expect_kind(DocKind::Audit)?;
        let header = AuditHeader::read(&r)?;
        let events = Event::read_all(&r)?;
        let f = fold::<AuditState>(&events);
        let current = Kept::read(&r)?;
        let lock = lock_heads(f.state, &f.applied, &events);
        let (in_force, current) = match &lock {
            Some(heads) if knows(doc, heads) => {
                (Kept::read(&Reader::whole(doc, Some(heads)))?, Some(current))
            }
            _ => (current, None),
        };
        Ok(LiveAudit {
            header,
            state: f.state,
            conflicts: f.conflicts.len(),
            locked_at: lock,
            in_force,
            current,
        })
    }

    /// The header.
    pub fn header(&self) -> &AuditHeader {
        &self.header
    }

    /// The lifecycle state.
    pub fn state(&self) -> AuditState {
        self.state
    }

    /// How many moves met a state other than the one their author saw.
    pub fn conflicts(&self) -> usize {
        self.conflicts
    }

    /// How many responses are in force.
    pub fn responses(&self) -> usize {
        self.in_force.responses.len()
    }

    /// The findings in force.
    pub fn findings(&self) -> &BTreeMap<ItemId, Finding> {
        &self.in_force.findings
    }

    /// The concurrent values of the contested responses and findings in
    /// force, by place (as [`ContestedValue::all_of`] gives them).
    pub fn contested(&self) -> impl Iterator<Item = &ContestedValue> {
        self.in_force.contested.values().flatten()
    }

    /// The responses and findings that differ from those in force (late
    /// edits), and whether the notes do.
    fn late(&self) -> (Vec<&ResponseKey>, Vec<&ItemId>, bool) {
        let Some(current) = &self.current else {
            return (Vec::new(), Vec::new(), false);
        };
        let locked = &self.in_force;
        let keys: std::collections::BTreeSet<_> = locked
            .responses
            .keys()
            .chain(current.responses.keys())
            .collect();
        let responses = keys
            .into_iter()
            .filter(|k| locked.responses.get(*k) != current.responses.get(*k))
            .collect();
        let ids: std::collections::BTreeSet<_> = locked
            .findings
            .keys()
            .chain(current.findings.keys())
            .collect();
        let findings = ids
            .into_iter()
            .filter(|id| locked.findings.get(*id) != current.findings.get(*id))
            .collect();
        (responses, findings, locked.notes != current.notes)
    }

    /// How many late edits await the lead (as [`AuditView::late_edits`] counts them).
    pub fn late_edits(&self) -> usize {
        let (responses, findings, notes) = self.late();
        responses.len() + findings.len() + usize::from(notes)
    }

    /// Every blob named by the content in force (responses, then findings),
    /// then by the late edits (responses, then findings), in that order; a
    /// blob can be named more than once.
    pub fn evidence(&self) -> Vec<BlobRef> {
        let of_finding = |f: &Finding| -> Vec<BlobRef> {
            f.evidence
                .iter()
                .map(|e| (e.sha256.clone(), e.mime.clone()))
                .collect()
        };
        let mut out: Vec<BlobRef> = self
            .in_force
            .responses
            .values()
            .flat_map(|r| r.evidence.iter().cloned())
            .collect();
        out.extend(self.in_force.findings.values().flat_map(of_finding));
        if let Some(current) = &self.current {
            let (responses, findings, _) = self.late();
            for k in responses {
                if let Some(r) = current.responses.get(k) {
                    out.extend(r.evidence.iter().cloned());
                }
            }
            for id in findings {
                if let Some(f) = current.findings.get(id) {
                    out.extend(of_finding(f));
                }
            }
        }
        out
    }

    /// Brings the figures up to date with `doc` after a batch that wrote
    /// `touched`, applied on the version they were read at.
    pub fn update(
        &mut self,
        doc: &Automerge,
        touched: &crate::validate::Touched,
    ) -> Result<(), SchemaError> {
        if touched.everything || touched.any("id") || touched.any("schema") || touched.any("v") {
            *self = LiveAudit::read(doc)?;
            return Ok(());
        }
        let parts = AuditParts::new(doc)?;
        if touched.any("header") {
            self.header = parts.header()?;
        }
        let current = match self.current.as_mut() {
            Some(c) => c,
            None => &mut self.in_force,
        };
        if touched.whole("responses") {
            current.responses.clear();
            current
                .contested
                .retain(|place, _| !place.starts_with("responses/"));
            for key in parts.response_keys()? {
                if let Some((r, all)) = parts.response(&key)? {
                    current.responses.insert(key.clone(), ResponsePrint::of(&r));
                    current.contest(
                        format!("responses/{key}"),
                        all.iter()
                            .map(|v| ContestedValue::of_response(&key, v))
                            .collect(),
                    );
                }
            }
        } else {
            for entry in touched.entries_of("responses") {
                let key = match entry.parse::<ResponseKey>() {
                    Ok(k) => k,
                    // A key that does not parse is an error only if it is there.
                    Err(e) if parts.has_entry("responses", entry)? => {
                        return Err(schema_error(&join("responses", entry), e.to_string()));
                    }
                    Err(_) => continue,
                };
                let place = format!("responses/{key}");
                match parts.response(&key)? {
                    Some((r, all)) => {
                        current.contest(
                            place,
                            all.iter()
                                .map(|v| ContestedValue::of_response(&key, v))
                                .collect(),
                        );
                        current.responses.insert(key, ResponsePrint::of(&r));
                    }
                    None => {
                        current.contested.remove(&place);
                        current.responses.remove(&key);
                    }
                }
            }
        }
        if touched.whole("findings") {
            current.findings.clear();
            current
                .contested
                .retain(|place, _| !place.starts_with("findings/"));
            for id in parts.finding_ids()? {
                if let Some((f, all)) = parts.finding(&id)? {
                    current.contest(
                        format!("findings/{id}"),
                        all.iter()
                            .map(|v| ContestedValue::of_finding(&id, v))
                            .collect(),
                    );
                    current.findings.insert(id, f);
                }
            }
        } else {
            for entry in touched.entries_of("findings") {
                let id = match entry.parse::<ItemId>() {
                    Ok(id) => id,
                    Err(e) if parts.has_entry("findings", entry)? => {
                        return Err(schema_error(&join("findings", entry), e.to_string()));
                    }
                    Err(_) => continue,
                };
                let place = format!("findings/{id}");
                match parts.finding(&id)? {
                    Some((f, all)) => {
                        current.contest(
                            place,
                            all.iter()
                                .map(|v| ContestedValue::of_finding(&id, v))
                                .collect(),
                        );
                        current.findings.insert(id, f);
                    }
                    None => {
                        current.contested.remove(&place);
                        current.findings.remove(&id);
                    }
                }
            }
        }
        if touched.any("notes") {
            current.notes = parts.notes()?;
            let contested = crate::nc::contested_text_of(doc, None, "notes")?;
            current.contest(
                "notes".into(),
                ContestedValue::of_notes(&contested).collect(),
            );
        }
        if touched.any("events") {
            let events = parts.events()?;
            let f = fold::<AuditState>(&events);
            let lock = lock_heads(f.state, &f.applied, &events);
            if lock != self.locked_at {
                // Locked, unlocked or the lock moved: the content in force changes.
                let current = match self.current.take() {
                    Some(c) => c,
                    None => std::mem::take(&mut self.in_force),
                };
                match &lock {
                    Some(heads) if knows(doc, heads) => {
                        self.in_force = Kept::read(&Reader::whole(doc, Some(heads)))?;
                        self.current = Some(current);
                    }
                    _ => self.in_force = current,
                }
            }
            self.state = f.state;
            self.conflicts = f.conflicts.len();
            self.locked_at = lock;
        } else if let Some(heads) = &self.locked_at
            && self.current.is_none()
            && knows(doc, heads)
        {
            // The changes the lock names have arrived: the locked content can be read now.
            let locked = Kept::read(&Reader::whole(doc, Some(heads)))?;
            self.current = Some(std::mem::replace(&mut self.in_force, locked));
        }
        Ok(())
    }
}

/// An audit read part by part (its header, its events, one response, one
/// finding), so that rows derived from it can be brought up to date after a
/// batch by reading only what the batch wrote (see
/// [`crate::validate::Touched`]). Each part reads as it does in
/// [`AuditView::read`], errors included; it is the current content, not the
/// content in force of a locked audit.
#[derive(Debug)]
pub struct AuditParts<'a> {
    r: Reader<'a>,
}

impl<'a> AuditParts<'a> {
    /// Starts reading an audit document.
    pub fn new(doc: &'a Automerge) -> Result<AuditParts<'a>, SchemaError> {
        let r = Reader::now(doc);
        r.expect_kind(DocKind::Audit)?;
        Ok(AuditParts { r })
    }

    /// The header.
    pub fn header(&self) -> Result<AuditHeader, SchemaError> {
        AuditHeader::read(&self.r)
    }

    /// The lifecycle events.
    pub fn events(&self) -> Result<Vec<Event>, SchemaError> {
        Event::read_all(&self.r)
    }

    /// The keys of the `responses` or `findings` map, unparsed.
    fn keys_of(&self, section: &str) -> Result<Vec<String>, SchemaError> {
        Ok(match self.r.opt_map(&ROOT, section, "")? {
            Some(obj) => self.r.keys(&obj),
            None => Vec::new(),
        })
    }

    /// The meeting notes.
    pub fn notes(&self) -> Result<String, SchemaError> {
        bounded(
            "notes",
            self.r.opt_str(&ROOT, "notes", "")?.unwrap_or_default(),
        )
    }

    /// Whether `section` has an entry under `key` (of any kind).
    fn has_entry(&self, section: &str, key: &str) -> Result<bool, SchemaError> {
        Ok(self.keys_of(section)?.iter().any(|k| k == key))
    }

    /// Every response key.
    pub fn response_keys(&self) -> Result<Vec<ResponseKey>, SchemaError> {
        self.keys_of("responses")?
            .into_iter()
            .map(|k| {
                k.parse()
                    .map_err(|e: IdError| schema_error(&join("responses", &k), e.to_string()))
            })
            .collect()
    }

    /// One response and its concurrent values, if contested (`None`:
    /// there is none under that key).
    pub fn response(
        &self,
        key: &ResponseKey,
    ) -> Result<Option<(Response, Vec<Response>)>, SchemaError> {
        self.entry_values("responses", &key.to_string())
    }

    /// The entry `section/key` as [`read_entry`] reads it, if there is one.
    fn entry_values<T: Entry>(
        &self,
        section: &str,
        key: &str,
    ) -> Result<Option<(T, Vec<T>)>, SchemaError> {
        match self.r.opt_map(&ROOT, section, "")? {
            Some(obj) if self.r.opt_map(&obj, key, section)?.is_some() => {
                read_entry(&self.r, &obj, key, section).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Every finding id.
    pub fn finding_ids(&self) -> Result<Vec<ItemId>, SchemaError> {
        self.keys_of("findings")?
            .into_iter()
            .map(|k| {
                k.parse()
                    .map_err(|e: IdError| schema_error(&join("findings", &k), e.to_string()))
            })
            .collect()
    }

    /// One finding and its concurrent values, if contested (`None`: there
    /// is none with that id).
    pub fn finding(&self, id: &ItemId) -> Result<Option<(Finding, Vec<Finding>)>, SchemaError> {
        self.entry_values("findings", id.as_str())
    }
}

fn diff(locked: &AuditContent, current: &AuditContent) -> Vec<LateEdit> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<_> = locked
        .responses
        .keys()
        .chain(current.responses.keys())
        .collect();
    for key in keys {
        let (a, b) = (locked.responses.get(key), current.responses.get(key));
        if a != b {
            out.push(LateEdit::Response {
                key: key.clone(),
                locked: a.cloned(),
                late: b.cloned(),
            });
        }
    }
    let ids: std::collections::BTreeSet<_> = locked
        .findings
        .keys()
        .chain(current.findings.keys())
        .collect();
    for id in ids {
        let (a, b) = (locked.findings.get(id), current.findings.get(id));
        if a != b {
            out.push(LateEdit::Finding {
                id: id.clone(),
                locked: a.cloned(),
                late: b.cloned(),
            });
        }
    }
    if locked.notes != current.notes {
        out.push(LateEdit::Notes {
            late: current.notes.clone(),
        });
    }
    out
}
