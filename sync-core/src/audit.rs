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
#[derive(Clone, Debug, PartialEq, Eq)]
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
            let m = tx.insert_object(&list, i, ObjType::Map)?;
            tx.put_str(&m, "sha256", &e.sha256)?;
            tx.put_str(&m, "name", &e.name)?;
            tx.put_str(&m, "mime", &e.mime)?;
            tx.put(&m, "size", e.size)?;
            tx.put_opt_str(&m, "taken_at", e.taken_at)?;
        }
        Ok(())
    }
}

/// Conform / partly conform / not conform / not applicable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YesNo {
    /// Yes.
    Yes,
    /// No.
    No,
    /// Not applicable.
    NotApplicable,
}

/// An answer to one checklist item, of the item's response type.
#[derive(Clone, Debug, PartialEq)]
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
    fn encode(&self) -> (&'static str, String) {
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
        let bad = |what: &str| schema_error(path, format!("'{value}' is not {what}"));
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
                    format!("unknown response type '{other}'"),
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
#[derive(Clone, Debug, PartialEq)]
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

/// An audit's content read at one version of the document.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditContent {
    /// Checklist responses by key.
    pub responses: BTreeMap<ResponseKey, Response>,
    /// Findings by id.
    pub findings: BTreeMap<ItemId, Finding>,
    /// Meeting notes.
    pub notes: String,
}

impl AuditContent {
    pub(crate) fn read(r: &Reader<'_>) -> Result<AuditContent, SchemaError> {
        let mut responses = BTreeMap::new();
        if let Some(obj) = r.opt_map(&ROOT, "responses", "")? {
            for key in r.keys(&obj) {
                let path = join("responses", &key);
                let parsed: ResponseKey = key
                    .parse()
                    .map_err(|e: IdError| schema_error(&path, e.to_string()))?;
                let item = r.map(&obj, &key, "responses")?;
                responses.insert(parsed, Response::read(r, &item, &path)?);
            }
        }
        let mut findings = BTreeMap::new();
        if let Some(obj) = r.opt_map(&ROOT, "findings", "")? {
            for key in r.keys(&obj) {
                let path = join("findings", &key);
                let parsed: ItemId = key
                    .parse()
                    .map_err(|e: IdError| schema_error(&path, e.to_string()))?;
                let item = r.map(&obj, &key, "findings")?;
                findings.insert(parsed, Finding::read(r, &item, &path)?);
            }
        }
        let notes = bounded("notes", r.opt_str(&ROOT, "notes", "")?.unwrap_or_default())?;
        Ok(AuditContent {
            responses,
            findings,
            notes,
        })
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

impl AuditView {
    /// Reads and derives an audit. Never panics; a schema mismatch names its path.
    pub fn read(doc: &Automerge) -> Result<AuditView, SchemaError> {
        let r = Reader::now(doc);
        r.expect_kind(DocKind::Audit)?;
        let id = r.parse(&ROOT, "id", "")?;
        let header = AuditHeader::read(&r)?;
        let events = Event::read_all(&r)?;
        let f = fold::<AuditState>(&events);
        let current = AuditContent::read(&r)?;
        let lock = if f.state.is_locked() {
            f.applied
                .iter()
                .rev()
                .map(|&i| &events[i])
                .find(|e| !e.heads.is_empty())
                .map(|e| e.heads.clone())
        } else {
            None
        };
        let (content, late_edits) = match &lock {
            Some(heads)
                if heads
                    .iter()
                    .all(|h| doc.get_change_meta_by_hash(h).is_some()) =>
            {
                let locked = AuditContent::read(&Reader::at(doc, heads))?;
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
