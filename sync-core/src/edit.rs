//! Local edits: the one way a device changes a document. Each edit is made on
//! a copy, checked by the same validator the server runs, and only then kept,
//! so a device never produces a change its server will refuse for its role.

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{Automerge, AutomergeError, ChangeHash, ObjType, ROOT, ReadDoc};

use crate::audit::{
    self, Answer, AuditContent, AuditHeader, Evidence, Finding, FindingClass, Response,
};
use crate::date::{Date, Timestamp};
use crate::ids::{ClauseKey, DocumentId, ItemId, ProcessCode, ResponseKey, UnitCode};
use crate::nc::{self, Action, DueKind, EvidenceOf, Extension, NcEvidence, NcLink};
use crate::permissions::{Author, Refusal, refuse};
use crate::rules::Rule;
use crate::schema::{Reader, WriteExt};
use crate::validate::validate_merged;
use crate::workflow::{AuditState, Event, NcState, fold};
use crate::{DocKind, review};

/// One edit a user can make.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Create an audit document (lead auditor).
    CreateAudit(AuditHeader),
    /// Answer a checklist item.
    SetResponse {
        /// Which item.
        key: ResponseKey,
        /// The answer.
        answer: Answer,
        /// The note.
        note: String,
        /// Supporting photos and scans.
        evidence: Vec<Evidence>,
    },
    /// Remove a checklist answer.
    ClearResponse(ResponseKey),
    /// Record or replace a finding.
    PutFinding {
        /// The finding's id.
        id: ItemId,
        /// Classification.
        class: FindingClass,
        /// Clause.
        clause: ClauseKey,
        /// Process concerned.
        process: Option<ProcessCode>,
        /// What was found.
        text: String,
        /// Supporting photos and scans.
        evidence: Vec<Evidence>,
    },
    /// Replace the meeting notes.
    SetNotes(String),
    /// Create an NC document for a major or minor finding (audit team).
    CreateNc {
        /// What it is about.
        link: NcLink,
        /// The description.
        description: String,
        /// The number the device shows until the server's arrives (at most
        /// [`nc::MAX_PROVISIONAL`] characters; empty for none).
        provisional: String,
    },
    /// Set the NC description (audit team).
    SetDescription(String),
    /// Set the correction (process owner).
    SetCorrection(String),
    /// Set the root cause (process owner).
    SetRootCause(String),
    /// Add or replace a corrective action (NC: process owner) or a review's
    /// action item (nodal officer).
    PutAction {
        /// The action's id.
        id: ItemId,
        /// The action.
        action: Action,
    },
    /// Extend a due date (nodal officer).
    Extend {
        /// Which due date.
        of: DueKind,
        /// The new date.
        due: Date,
        /// Why.
        justification: String,
    },
    /// Ask for a later due date (process owner); a nodal officer answers.
    RequestExtension {
        /// The request's id.
        id: ItemId,
        /// Which due date.
        of: DueKind,
        /// The date asked for.
        due: Date,
        /// Why it is needed.
        justification: String,
    },
    /// Grant an owner's pending request as asked (nodal officer): an
    /// extension to the date asked for, naming the request.
    GrantExtension {
        /// The request granted.
        request: ItemId,
    },
    /// Refuse an owner's pending request, saying why (nodal officer).
    RefuseExtension {
        /// The request refused.
        request: ItemId,
        /// Why.
        reason: String,
    },
    /// Write the verification note (an independent auditor).
    SetVerification {
        /// What was verified.
        note: String,
        /// When.
        on: Date,
    },
    /// Attach a file to an NC: implementation evidence (process owner) or
    /// verification evidence (an independent auditor). Attached files are
    /// never removed; what two devices attach concurrently is all kept.
    AttachNcEvidence {
        /// Which list.
        of: EvidenceOf,
        /// The file (uploaded as a blob).
        file: Evidence,
    },
    /// Make a lifecycle move from the current state.
    Move {
        /// The move's name.
        mv: String,
        /// The reason or remark.
        note: String,
    },
    /// Create a management review (nodal officer).
    CreateReview {
        /// The unit.
        unit: UnitCode,
        /// Its title.
        title: String,
    },
    /// Replace the review minutes (nodal officer).
    SetMinutes(String),
    /// Record the date a review was held (nodal officer).
    HoldReview(Date),
    /// Append a decision to a review (nodal officer).
    AddDecision(String),
}

fn failed(e: AutomergeError) -> Refusal {
    refuse(Rule::EditFailed, format!("The edit could not be made: {e}"))
}

/// Makes an edit as `author` at `now`, validating it as the server will.
/// On success the document holds the new change, which is returned.
pub fn apply_edit(
    id: DocumentId,
    doc: &mut Automerge,
    edit: &Edit,
    author: &Author,
    now: Timestamp,
) -> Result<automerge::Change, Refusal> {
    let mut work = doc.clone();
    let kind = if work.get(ROOT, "schema").ok().flatten().is_some() {
        Some(
            Reader::now(&work)
                .kind()
                .map_err(|e| refuse(Rule::Schema, format!("The document cannot be read: {e}")))?,
        )
    } else {
        None
    };
    let heads = work.get_heads();
    let state = match kind {
        Some(DocKind::Audit) => Some(fold::<AuditState>(&events(&work)?).state.to_string()),
        Some(DocKind::Nc) => Some(fold::<NcState>(&events(&work)?).state.to_string()),
        _ => None,
    };
    let request = answered_request(&work, kind, edit)?;
    let opts = CommitOptions::default().with_time(now.0 / 1000);
    work.transact_with(
        |_| opts,
        |tx| {
            let at = Now {
                heads: &heads,
                state: state.as_deref(),
                request: request.as_ref(),
            };
            write(tx, id, kind, edit, author, now, &at)
        },
    )
    .map_err(|f| f.error)?;
    let change = work
        .get_last_local_change()
        .ok_or_else(|| refuse(Rule::EditFailed, "The edit made no change."))?;
    // The working copy is the document with exactly this change: the
    // validator checks it in place instead of applying the change again.
    let accepted = validate_merged(
        id,
        doc,
        vec![change],
        Some(work),
        author,
        Date::in_offices(now),
    )?;
    let (Some(new), Some(change)) = (accepted.doc, accepted.applied.into_iter().next()) else {
        return Err(refuse(Rule::EditFailed, "The edit made no change."));
    };
    *doc = new;
    Ok(change)
}

fn events(doc: &Automerge) -> Result<Vec<Event>, Refusal> {
    Event::read_all(&Reader::now(doc))
        .map_err(|e| refuse(Rule::Schema, format!("The document cannot be read: {e}")))
}

fn need(kind: Option<DocKind>, want: DocKind) -> Result<(), Refusal> {
    match kind {
        Some(k) if k == want => Ok(()),
        Some(k) => Err(refuse(
            Rule::EditKind,
            format!("This edit is for a {want}, not a {k}."),
        )),
        None => Err(refuse(Rule::EditKind, "The document does not exist yet.")),
    }
}

fn new_doc(kind: Option<DocKind>) -> Result<(), Refusal> {
    match kind {
        None => Ok(()),
        Some(k) => Err(refuse(
            Rule::EditKind,
            format!("This document is already a {k}."),
        )),
    }
}

impl Edit {
    /// The edit by which the lead auditor settles a contested response on
    /// its `pick`-th concurrent value (see [`AuditContent::contested_responses`]):
    /// that value's answer and note, with the evidence of every concurrent
    /// value, so that nothing attached is lost. To settle on a new answer,
    /// make a [`Edit::SetResponse`] with it instead. `None`: the response
    /// is not contested or has no such value.
    pub fn settle_response(content: &AuditContent, key: &ResponseKey, pick: usize) -> Option<Edit> {
        let chosen = content.contested_responses.get(key)?.get(pick)?;
        Some(Edit::SetResponse {
            key: key.clone(),
            answer: chosen.answer.clone(),
            note: chosen.note.clone(),
            evidence: content.responses.get(key)?.evidence.clone(),
        })
    }

    /// The edit by which the lead auditor settles a contested finding on
    /// its `pick-th` concurrent value, keeping every value's evidence.
    pub fn settle_finding(content: &AuditContent, id: &ItemId, pick: usize) -> Option<Edit> {
        let chosen = content.contested_findings.get(id)?.get(pick)?;
        Some(Edit::PutFinding {
            id: id.clone(),
            class: chosen.class,
            clause: chosen.clause.clone(),
            process: chosen.process.clone(),
            text: chosen.text.clone(),
            evidence: content.findings.get(id)?.evidence.clone(),
        })
    }
}

impl Edit {
    /// The edit by which the writer of an NC's (or a review's) actions
    /// settles a contested action on its `pick`-th version (see
    /// [`crate::nc::Nc::contested_actions`]). `None`: the action is not
    /// contested or has no such version.
    pub fn settle_action(
        contested: &crate::nc::ContestedActions,
        id: &ItemId,
        pick: usize,
    ) -> Option<Edit> {
        let chosen = contested.get(id)?.get(pick)?;
        Some(Edit::PutAction {
            id: id.clone(),
            action: chosen.action.clone(),
        })
    }
}

fn container(tx: &Transaction<'_>, key: &str) -> Result<automerge::ObjId, Refusal> {
    match tx.get(ROOT, key) {
        Ok(Some((automerge::Value::Object(_), obj))) => Ok(obj),
        _ => Err(refuse(
            Rule::Schema,
            format!("The document has no '{key}'."),
        )),
    }
}

/// The pending request a grant or a refusal answers, read before the
/// edit's transaction (or the refusal: no such request, or answered already).
fn answered_request(
    doc: &Automerge,
    kind: Option<DocKind>,
    edit: &Edit,
) -> Result<Option<nc::ExtensionRequest>, Refusal> {
    let (Edit::GrantExtension { request } | Edit::RefuseExtension { request, .. }) = edit else {
        return Ok(None);
    };
    need(kind, DocKind::Nc)?;
    let nc = nc::Nc::read(doc)
        .map_err(|e| refuse(Rule::Schema, format!("The document cannot be read: {e}")))?;
    let Some(asked) = nc.request(request) else {
        return Err(refuse(
            Rule::NcExtension,
            format!("This NC has no extension request '{request}'."),
        ));
    };
    if !nc.pending_requests().any(|q| &q.id == request) {
        return Err(refuse(
            Rule::NcExtension,
            format!("The extension request '{request}' has been answered already."),
        ));
    }
    Ok(Some(asked.clone()))
}

/// What the document holds before the edit, as the edit needs it.
struct Now<'a> {
    heads: &'a [ChangeHash],
    state: Option<&'a str>,
    /// The request a grant or refusal answers.
    request: Option<&'a nc::ExtensionRequest>,
}

fn write(
    tx: &mut Transaction<'_>,
    id: DocumentId,
    kind: Option<DocKind>,
    edit: &Edit,
    author: &Author,
    now: Timestamp,
    at: &Now<'_>,
) -> Result<(), Refusal> {
    let (heads, state) = (at.heads, at.state);
    let by = author.user.clone();
    match edit {
        Edit::CreateAudit(header) => {
            new_doc(kind)?;
            audit::write_new(tx, id, header).map_err(failed)
        }
        Edit::SetResponse {
            key,
            answer,
            note,
            evidence,
        } => {
            need(kind, DocKind::Audit)?;
            let responses = container(tx, "responses")?;
            let r = Response {
                answer: answer.clone(),
                note: note.clone(),
                evidence: evidence.clone(),
                by,
                at: now,
            };
            r.write(tx, &responses, key).map_err(failed)
        }
        Edit::ClearResponse(key) => {
            need(kind, DocKind::Audit)?;
            let responses = container(tx, "responses")?;
            tx.delete(&responses, key.to_string()).map_err(failed)
        }
        Edit::PutFinding {
            id: fid,
            class,
            clause,
            process,
            text,
            evidence,
        } => {
            need(kind, DocKind::Audit)?;
            let findings = container(tx, "findings")?;
            let f = Finding {
                class: *class,
                clause: clause.clone(),
                process: process.clone(),
                text: text.clone(),
                evidence: evidence.clone(),
                by,
                at: now,
            };
            f.write(tx, &findings, fid).map_err(failed)
        }
        Edit::SetNotes(notes) => {
            need(kind, DocKind::Audit)?;
            nc::write_text(tx, "notes", notes, &author.user, now).map_err(failed)
        }
        Edit::CreateNc {
            link,
            description,
            provisional,
        } => {
            new_doc(kind)?;
            nc::write_new(tx, id, link, description, provisional, &author.user, now).map_err(failed)
        }
        Edit::SetDescription(text) | Edit::SetCorrection(text) | Edit::SetRootCause(text) => {
            need(kind, DocKind::Nc)?;
            let key = match edit {
                Edit::SetDescription(_) => "description",
                Edit::SetCorrection(_) => "correction",
                _ => "root_cause",
            };
            nc::write_text(tx, key, text, &author.user, now).map_err(failed)
        }
        Edit::PutAction { id: aid, action } => {
            if kind != Some(DocKind::Review) {
                need(kind, DocKind::Nc)?;
            }
            let actions = container(tx, "actions")?;
            action
                .write(tx, &actions, aid, &author.user, now)
                .map_err(failed)
        }
        Edit::Extend {
            of,
            due,
            justification,
        } => {
            need(kind, DocKind::Nc)?;
            let list = container(tx, "extensions")?;
            let e = Extension {
                of: *of,
                due: *due,
                justification: justification.clone(),
                by,
                at: now,
                request: None,
            };
            nc::write_extension(tx, &list, &e).map_err(failed)
        }
        Edit::RequestExtension {
            id: rid,
            of,
            due,
            justification,
        } => {
            need(kind, DocKind::Nc)?;
            let list = container(tx, nc::EXTENSION_REQUESTS)?;
            let q = nc::ExtensionRequest {
                id: rid.clone(),
                of: *of,
                due: *due,
                justification: justification.clone(),
                by,
                at: now,
            };
            nc::write_request(tx, &list, &q).map_err(failed)
        }
        Edit::GrantExtension { .. } => {
            let Some(q) = at.request else {
                return Err(refuse(Rule::NcExtension, "No request to grant."));
            };
            let list = container(tx, "extensions")?;
            let e = Extension {
                of: q.of,
                due: q.due,
                justification: q.justification.clone(),
                by,
                at: now,
                request: Some(q.id.clone()),
            };
            nc::write_extension(tx, &list, &e).map_err(failed)
        }
        Edit::RefuseExtension { request, reason } => {
            let list = container(tx, nc::EXTENSION_REFUSALS)?;
            let f = nc::ExtensionRefusal {
                request: request.clone(),
                reason: reason.clone(),
                by,
                at: now,
            };
            nc::write_refusal(tx, &list, &f).map_err(failed)
        }
        Edit::SetVerification { note, on } => {
            need(kind, DocKind::Nc)?;
            let v = container(tx, "verification")?;
            tx.put_str(&v, "note", note).map_err(failed)?;
            tx.put_str(&v, "by", &by).map_err(failed)?;
            tx.put_str(&v, "on", on).map_err(failed)
        }
        Edit::AttachNcEvidence { of, file } => {
            need(kind, DocKind::Nc)?;
            let list = container(tx, of.key())?;
            let e = NcEvidence {
                file: file.clone(),
                by,
                at: now,
            };
            nc::write_evidence(tx, &list, &e).map_err(failed)
        }
        Edit::Move { mv, note } => {
            if !matches!(kind, Some(DocKind::Audit | DocKind::Nc)) {
                return Err(refuse(
                    Rule::MoveTable,
                    "Only audits and NCs have lifecycle moves.",
                ));
            }
            let list = container(tx, "events")?;
            let at = tx.length(&list);
            let e = tx.insert_object(&list, at, ObjType::Map).map_err(failed)?;
            tx.put(&e, "move", mv.as_str()).map_err(failed)?;
            tx.put(&e, "from", state.unwrap_or_default())
                .map_err(failed)?;
            tx.put_str(&e, "by", &by).map_err(failed)?;
            tx.put_str(&e, "at", now).map_err(failed)?;
            tx.put(&e, "note", note.as_str()).map_err(failed)?;
            if kind == Some(DocKind::Audit) {
                let hs: Vec<String> = heads.iter().map(ToString::to_string).collect();
                tx.put_str_list(&e, "heads", &hs).map_err(failed)?;
            }
            Ok(())
        }
        Edit::CreateReview { unit, title } => {
            new_doc(kind)?;
            review::write_new(tx, id, unit, title).map_err(failed)
        }
        Edit::SetMinutes(text) => {
            need(kind, DocKind::Review)?;
            nc::write_text(tx, "minutes", text, &author.user, now).map_err(failed)
        }
        Edit::HoldReview(on) => {
            need(kind, DocKind::Review)?;
            tx.put_str(&ROOT, "held_on", on).map_err(failed)
        }
        Edit::AddDecision(text) => {
            need(kind, DocKind::Review)?;
            let list = container(tx, "decisions")?;
            let at = tx.length(&list);
            tx.insert(&list, at, text.as_str()).map_err(failed)
        }
    }
}
