//! What the UI shows, as plain JSON: sync-core's derived views of an audit and
//! of an NC (state, conflicts, content, late edits, due dates). Dates and times
//! are ISO 8601 strings; maps are keyed by item key or id, in key order, so
//! replicas with the same changes produce the same text.

use std::collections::BTreeMap;

use serde::Serialize;
use sync_core::DocKind;
use sync_core::audit::{AuditHeader, AuditView, Finding, LateEdit, Response};
use sync_core::automerge::Automerge;
use sync_core::checklist::{Checklist, Gap};
use sync_core::date::Date;
use sync_core::ids::UnitCode;
use sync_core::nc::{DueRules, Nc, NcEvidence};
use sync_core::permissions::DocContext;
use sync_core::workflow::{Event, TransitionConflict};

use crate::answer::{AnswerJson, EvidenceJson};
use crate::error::GlueError;

/// JSON text of a value made of plain strings, numbers and maps (never fails in practice).
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn unreadable(e: impl std::fmt::Display) -> GlueError {
    GlueError::BadDocument(format!("The document cannot be read: {e}"))
}

/// The view of an audit or an NC, whichever the document is (NC dates as of
/// `as_of`, under its unit's rules).
pub fn document_json(
    doc: &Automerge,
    as_of: Date,
    rules: impl Fn(&UnitCode) -> DueRules,
    checklist: Option<&Checklist>,
) -> Result<String, GlueError> {
    match DocContext::read(doc).map_err(unreadable)?.kind {
        DocKind::Audit => audit_json(doc, checklist),
        DocKind::Nc => nc_json(doc, as_of, rules),
        DocKind::Review => review_json(doc),
    }
}

/// A management review as the UI lists it: its unit, title, the day it was
/// held, its decisions and minutes, and how many action items it holds.
#[derive(Serialize)]
struct ReviewJson {
    kind: &'static str,
    id: String,
    unit: String,
    title: String,
    held_on: Option<String>,
    decisions: Vec<String>,
    minutes: String,
    actions: usize,
}

/// The review as the UI shows it.
pub fn review_json(doc: &Automerge) -> Result<String, GlueError> {
    let r = sync_core::review::Review::read(doc).map_err(unreadable)?;
    Ok(to_json(&ReviewJson {
        kind: "review",
        id: r.id.to_string(),
        unit: r.unit.to_string(),
        title: r.title,
        held_on: r.held_on.map(|d| d.to_string()),
        decisions: r.decisions,
        minutes: r.minutes,
        actions: r.actions.len(),
    }))
}

/// The audit as the UI shows it, with what keeps it from review when the
/// device knows its checklist (the audits the user is on the team of).
pub fn audit_json(doc: &Automerge, checklist: Option<&Checklist>) -> Result<String, GlueError> {
    let v = AuditView::read(doc).map_err(unreadable)?;
    Ok(to_json(&AuditJson {
        gaps: checklist.map(|c| {
            c.gaps(&v.content.responses)
                .iter()
                .map(|g| GapJson {
                    key: g.key().to_string(),
                    kind: match g {
                        Gap::Unanswered(_) => "unanswered",
                        Gap::NeedsEvidence(_) => "needs_evidence",
                    },
                })
                .collect()
        }),
        kind: "audit",
        id: v.id.to_string(),
        header: HeaderJson::of(&v.header),
        state: v.state.to_string(),
        locked: v.state.is_locked(),
        conflicts: v.conflicts.iter().map(ConflictJson::of).collect(),
        responses: v
            .content
            .responses
            .iter()
            .map(|(k, r)| (k.to_string(), ResponseJson::of(r)))
            .collect(),
        findings: v
            .content
            .findings
            .iter()
            .map(|(k, f)| (k.to_string(), FindingJson::of(f)))
            .collect(),
        notes: v.content.notes.clone(),
        contested_notes: v
            .content
            .contested_notes
            .iter()
            .map(ContestedTextJson::of)
            .collect(),
        contested_responses: v
            .content
            .contested_responses
            .iter()
            .map(|(k, all)| (k.to_string(), all.iter().map(ResponseJson::of).collect()))
            .collect(),
        contested_findings: v
            .content
            .contested_findings
            .iter()
            .map(|(k, all)| (k.to_string(), all.iter().map(FindingJson::of).collect()))
            .collect(),
        late_edits: v.late_edits.iter().map(LateEditJson::of).collect(),
        locked_at: v
            .locked_at
            .map(|hs| hs.iter().map(ToString::to_string).collect()),
        events: v.events.iter().map(EventJson::of).collect(),
    }))
}

/// The NC as the UI shows it, with due dates and escalation as of a date
/// under its unit's due-date rules (`rules` gives them by unit).
pub fn nc_json(
    doc: &Automerge,
    as_of: Date,
    rules: impl Fn(&UnitCode) -> DueRules,
) -> Result<String, GlueError> {
    let nc = Nc::read(doc).map_err(unreadable)?;
    let v = nc.view(&rules(&nc.link.unit), as_of);
    let l = &nc.link;
    Ok(to_json(&NcJson {
        kind: "nc",
        id: nc.id.to_string(),
        unit: l.unit.to_string(),
        audit: l.audit.to_string(),
        finding: l.finding.to_string(),
        process: l.process.as_ref().map(ToString::to_string),
        clause: l.clause.to_string(),
        class: l.class.to_string(),
        raised_on: l.raised_on.to_string(),
        number: nc.number.clone(),
        provisional: nc.provisional.clone(),
        description: nc.description.clone(),
        correction: nc.correction.clone(),
        root_cause: nc.root_cause.clone(),
        actions: nc
            .actions
            .iter()
            .map(|(id, a)| (id.to_string(), ActionJson::of(a)))
            .collect(),
        contested_actions: nc
            .contested_actions
            .iter()
            .map(|(id, versions)| {
                let versions = versions
                    .iter()
                    .map(|v| ContestedActionJson {
                        action: ActionJson::of(&v.action),
                        by: v.by.as_ref().map(ToString::to_string),
                        at: v.at.map(|t| t.to_string()),
                        shown: v.shown,
                    })
                    .collect();
                (id.to_string(), versions)
            })
            .collect(),
        extensions: nc
            .extensions
            .iter()
            .map(|e| ExtensionJson {
                of: e.of.to_string(),
                due: e.due.to_string(),
                justification: e.justification.clone(),
                by: e.by.to_string(),
                at: e.at.to_string(),
                request: e.request.as_ref().map(ToString::to_string),
            })
            .collect(),
        extension_requests: nc
            .extension_requests
            .iter()
            .map(|q| RequestJson::of(&nc, q))
            .collect(),
        verification: nc.verification.as_ref().map(|v| VerificationJson {
            note: v.note.clone(),
            by: v.by.to_string(),
            on: v.on.to_string(),
        }),
        contested_text: nc
            .contested_text
            .iter()
            .map(|(field, values)| {
                let values = values.iter().map(ContestedTextJson::of).collect();
                (field.clone(), values)
            })
            .collect(),
        contested_verification: nc
            .contested_verification
            .iter()
            .map(|v| ContestedVerificationJson {
                note: v.note.clone(),
                by: v.by.as_ref().map(ToString::to_string),
                on: v.on.map(|d| d.to_string()),
                shown: v.shown,
            })
            .collect(),
        implementation_evidence: nc
            .implementation_evidence
            .iter()
            .map(AttachedJson::of)
            .collect(),
        verification_evidence: nc
            .verification_evidence
            .iter()
            .map(AttachedJson::of)
            .collect(),
        state: v.state.to_string(),
        conflicts: v.conflicts.iter().map(ConflictJson::of).collect(),
        as_of: as_of.to_string(),
        response_due: v.response_due.to_string(),
        action_due: v.action_due.to_string(),
        due: v.due.map(|d| d.to_string()),
        days_overdue: v.days_overdue,
        escalation: v.escalation.map(|l| l.to_string()),
        events: nc.events.iter().map(EventJson::of).collect(),
    }))
}

/// Something that keeps an audit from review: a required item not answered,
/// or a shortfall on an item that needs evidence with neither note nor file.
#[derive(Serialize)]
struct GapJson {
    key: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct AuditJson {
    /// What keeps the audit from review (`submit_for_review` is refused
    /// while any remains), or null when this device does not know its
    /// checklist.
    gaps: Option<Vec<GapJson>>,
    kind: &'static str,
    id: String,
    header: HeaderJson,
    state: String,
    locked: bool,
    conflicts: Vec<ConflictJson>,
    responses: BTreeMap<String, ResponseJson>,
    findings: BTreeMap<String, FindingJson>,
    notes: String,
    /// Notes written concurrently by auditors who had not seen each
    /// other's: every value, with its writer and time, until one of the team
    /// writes notes over them (`set_notes`). Empty when uncontested.
    contested_notes: Vec<ContestedTextJson>,
    /// Items answered concurrently by auditors who had not seen each
    /// other's answer: every value, with its writer and time, until the
    /// lead settles them with a `set_response` (the value shown in
    /// `responses` holds every value's evidence, to keep in the settlement).
    contested_responses: BTreeMap<String, Vec<ResponseJson>>,
    /// Findings written concurrently (as for responses; `put_finding` settles).
    contested_findings: BTreeMap<String, Vec<FindingJson>>,
    late_edits: Vec<LateEditJson>,
    locked_at: Option<Vec<String>>,
    events: Vec<EventJson>,
}

#[derive(Serialize)]
struct HeaderJson {
    unit: String,
    number: String,
    scope: Vec<String>,
    template_version: u64,
    lead: String,
    team: Vec<String>,
    start: String,
    end: Option<String>,
}

impl HeaderJson {
    fn of(h: &AuditHeader) -> HeaderJson {
        HeaderJson {
            unit: h.unit.to_string(),
            number: h.number.clone(),
            scope: h.scope.clone(),
            template_version: h.template_version,
            lead: h.lead.to_string(),
            team: h.team.iter().map(ToString::to_string).collect(),
            start: h.start.to_string(),
            end: h.end.map(|d| d.to_string()),
        }
    }
}

#[derive(Serialize)]
struct ResponseJson {
    answer: AnswerJson,
    note: String,
    evidence: Vec<EvidenceJson>,
    by: String,
    at: String,
}

impl ResponseJson {
    fn of(r: &Response) -> ResponseJson {
        ResponseJson {
            answer: AnswerJson::of(&r.answer),
            note: r.note.clone(),
            evidence: r.evidence.iter().map(EvidenceJson::of).collect(),
            by: r.by.to_string(),
            at: r.at.to_string(),
        }
    }
}

#[derive(Serialize)]
struct FindingJson {
    class: String,
    clause: String,
    process: Option<String>,
    text: String,
    evidence: Vec<EvidenceJson>,
    by: String,
    at: String,
}

impl FindingJson {
    fn of(f: &Finding) -> FindingJson {
        FindingJson {
            class: f.class.to_string(),
            clause: f.clause.to_string(),
            process: f.process.as_ref().map(ToString::to_string),
            text: f.text.clone(),
            evidence: f.evidence.iter().map(EvidenceJson::of).collect(),
            by: f.by.to_string(),
            at: f.at.to_string(),
        }
    }
}

/// An edit that reached a locked audit: the value in force and the late one (`null`: absent).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum LateEditJson {
    Response {
        key: String,
        locked: Option<ResponseJson>,
        late: Option<ResponseJson>,
    },
    Finding {
        id: String,
        locked: Option<FindingJson>,
        late: Option<FindingJson>,
    },
    Notes {
        late: String,
    },
}

impl LateEditJson {
    fn of(e: &LateEdit) -> LateEditJson {
        match e {
            LateEdit::Response { key, locked, late } => LateEditJson::Response {
                key: key.to_string(),
                locked: locked.as_ref().map(ResponseJson::of),
                late: late.as_ref().map(ResponseJson::of),
            },
            LateEdit::Finding { id, locked, late } => LateEditJson::Finding {
                id: id.to_string(),
                locked: locked.as_ref().map(FindingJson::of),
                late: late.as_ref().map(FindingJson::of),
            },
            LateEdit::Notes { late } => LateEditJson::Notes { late: late.clone() },
        }
    }
}

#[derive(Serialize)]
struct ConflictJson {
    index: usize,
    #[serde(rename = "move")]
    mv: String,
    claimed_from: String,
    actual: String,
    by: String,
    at: String,
}

impl ConflictJson {
    fn of(c: &TransitionConflict) -> ConflictJson {
        ConflictJson {
            index: c.index,
            mv: c.mv.clone(),
            claimed_from: c.claimed_from.clone(),
            actual: c.actual.clone(),
            by: c.by.to_string(),
            at: c.at.to_string(),
        }
    }
}

#[derive(Serialize)]
struct EventJson {
    #[serde(rename = "move")]
    mv: String,
    from: String,
    by: String,
    at: String,
    note: String,
    heads: Vec<String>,
}

impl EventJson {
    fn of(e: &Event) -> EventJson {
        EventJson {
            mv: e.mv.clone(),
            from: e.from.clone(),
            by: e.by.to_string(),
            at: e.at.to_string(),
            note: e.note.clone(),
            heads: e.heads.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Serialize)]
struct NcJson {
    kind: &'static str,
    id: String,
    unit: String,
    audit: String,
    finding: String,
    /// Absent for an NC on a clause no process carries (its nodal officers answer it).
    process: Option<String>,
    clause: String,
    class: String,
    raised_on: String,
    /// The server's number, once heard.
    number: Option<String>,
    /// The device's number, shown until the server's arrives.
    provisional: String,
    description: String,
    correction: String,
    root_cause: String,
    actions: BTreeMap<String, ActionJson>,
    /// Actions written at the same time by people who had not seen each
    /// other's, by id: every version with who wrote it and when, until the
    /// process owner writes the action again (`put_action`). Others absent.
    contested_actions: BTreeMap<String, Vec<ContestedActionJson>>,
    extensions: Vec<ExtensionJson>,
    /// The owner's requests for a later due date, each with its answer
    /// (`granted` or `refused`, with who, when and why) once a nodal officer gave one.
    extension_requests: Vec<RequestJson>,
    verification: Option<VerificationJson>,
    /// Verifications written at the same time by auditors who had not seen
    /// each other's: every one, with who and when, until an auditor who may
    /// verify writes one over them all (`set_verification`). Empty otherwise.
    contested_verification: Vec<ContestedVerificationJson>,
    /// The description, correction or root cause written at the same time
    /// by people who had not seen each other's, by field: every value with
    /// who wrote it and when, until someone who may write the field writes
    /// over them all. Fields not contested are absent.
    contested_text: BTreeMap<String, Vec<ContestedTextJson>>,
    implementation_evidence: Vec<AttachedJson>,
    verification_evidence: Vec<AttachedJson>,
    state: String,
    conflicts: Vec<ConflictJson>,
    as_of: String,
    response_due: String,
    action_due: String,
    due: Option<String>,
    days_overdue: Option<i32>,
    escalation: Option<String>,
    events: Vec<EventJson>,
}

#[derive(Serialize)]
struct ActionJson {
    text: String,
    owner: String,
    target: String,
    done_on: Option<String>,
}

impl ActionJson {
    fn of(a: &sync_core::nc::Action) -> ActionJson {
        ActionJson {
            text: a.text.clone(),
            owner: a.owner.clone(),
            target: a.target.to_string(),
            done_on: a.done_on.map(|d| d.to_string()),
        }
    }
}

#[derive(Serialize)]
struct ContestedActionJson {
    action: ActionJson,
    by: Option<String>,
    at: Option<String>,
    /// Whether this is the version `actions` shows.
    shown: bool,
}

#[derive(Serialize)]
struct ExtensionJson {
    of: String,
    due: String,
    justification: String,
    by: String,
    at: String,
    request: Option<String>,
}

#[derive(Serialize)]
struct RequestJson {
    id: String,
    of: String,
    due: String,
    justification: String,
    by: String,
    at: String,
    answer: Option<AnswerOfRequest>,
}

#[derive(Serialize)]
struct AnswerOfRequest {
    granted: bool,
    by: String,
    at: String,
    /// The refusal's reason; empty for a grant.
    reason: String,
}

impl RequestJson {
    fn of(nc: &Nc, q: &sync_core::nc::ExtensionRequest) -> RequestJson {
        let granted = nc
            .extensions
            .iter()
            .find(|e| e.request.as_ref() == Some(&q.id))
            .map(|e| AnswerOfRequest {
                granted: true,
                by: e.by.to_string(),
                at: e.at.to_string(),
                reason: String::new(),
            });
        let refused = || {
            nc.extension_refusals
                .iter()
                .find(|f| f.request == q.id)
                .map(|f| AnswerOfRequest {
                    granted: false,
                    by: f.by.to_string(),
                    at: f.at.to_string(),
                    reason: f.reason.clone(),
                })
        };
        RequestJson {
            id: q.id.to_string(),
            of: q.of.to_string(),
            due: q.due.to_string(),
            justification: q.justification.clone(),
            by: q.by.to_string(),
            at: q.at.to_string(),
            answer: granted.or_else(refused),
        }
    }
}

/// A file attached to an NC, with who attached it and when.
#[derive(Serialize)]
struct AttachedJson {
    #[serde(flatten)]
    file: EvidenceJson,
    by: String,
    at: String,
}

impl AttachedJson {
    fn of(e: &NcEvidence) -> AttachedJson {
        AttachedJson {
            file: EvidenceJson::of(&e.file),
            by: e.by.to_string(),
            at: e.at.to_string(),
        }
    }
}

#[derive(Serialize)]
struct VerificationJson {
    note: String,
    by: String,
    on: String,
}

#[derive(Serialize)]
struct ContestedTextJson {
    value: String,
    by: Option<String>,
    at: Option<String>,
    /// Whether this is the value the field shows.
    shown: bool,
}

impl ContestedTextJson {
    fn of(v: &sync_core::nc::ContestedText) -> ContestedTextJson {
        ContestedTextJson {
            value: v.value.clone(),
            by: v.by.as_ref().map(ToString::to_string),
            at: v.at.map(|t| t.to_string()),
            shown: v.shown,
        }
    }
}

#[derive(Serialize)]
struct ContestedVerificationJson {
    note: String,
    by: Option<String>,
    on: Option<String>,
    /// Whether this is the one `verification` shows.
    shown: bool,
}
