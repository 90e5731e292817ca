//! Projection rows (DESIGN §6): what reports need from a document, derived by
//! sync-core's readers and written in the same transaction as its changes, so
//! reports are SQL queries, not document loads.

use sync_core::DocKind;
use sync_core::audit::AuditView;
use sync_core::automerge::Automerge;
use sync_core::nc::{DueRules, Nc};
use sync_core::permissions::DocContext;
use sync_core::schema::SchemaError;
use sync_core::workflow::{NcState, fold};

/// The rows of one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projection {
    /// An audit and its findings.
    Audit {
        /// The audit row.
        audit: AuditRow,
        /// One row per finding.
        findings: Vec<FindingRow>,
        /// The blobs its evidence names (`blob_refs` rows).
        evidence: Vec<EvidenceRef>,
    },
    /// An NC.
    Nc(NcRow),
    /// A management review (no rows yet).
    Review,
}

/// `audits` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub unit: String,
    pub number: String,
    pub state: String,
    pub lead: String,
    pub start_on: String,
    pub end_on: Option<String>,
    pub template_version: i64,
    pub responses: i64,
    pub conflicts: i64,
    pub late_edits: i64,
}

/// `findings` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingRow {
    pub finding_id: String,
    pub class: String,
    pub clause: String,
    pub process: Option<String>,
    pub text: String,
}

/// `blob_refs` row: a blob the document's evidence names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceRef {
    pub sha256: String,
    pub mime: String,
}

impl Projection {
    /// The blobs the document's evidence names (NCs and reviews have none).
    pub fn evidence(&self) -> &[EvidenceRef] {
        match self {
            Projection::Audit { evidence, .. } => evidence,
            Projection::Nc(_) | Projection::Review => &[],
        }
    }
}

/// `ncs` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NcRow {
    pub unit: String,
    pub audit_id: String,
    pub finding_id: String,
    pub process: String,
    pub clause: String,
    pub class: String,
    pub state: String,
    pub raised_on: String,
    pub response_due: String,
    pub action_due: String,
    pub closed_on: Option<String>,
    pub conflicts: i64,
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Every blob an audit's responses and findings name: the content in force
/// and the late edits awaiting the lead (its readers see both). One row per
/// hash, with the first media type given for it.
fn evidence_of(v: &AuditView) -> Vec<EvidenceRef> {
    use sync_core::audit::LateEdit;
    let late = v.late_edits.iter().flat_map(|e| match e {
        LateEdit::Response { late, .. } => late.iter().flat_map(|r| &r.evidence).collect(),
        LateEdit::Finding { late, .. } => late.iter().flat_map(|f| &f.evidence).collect(),
        LateEdit::Notes { .. } => Vec::new(),
    });
    let mut seen = std::collections::BTreeMap::new();
    for e in v
        .content
        .responses
        .values()
        .flat_map(|r| &r.evidence)
        .chain(v.content.findings.values().flat_map(|f| &f.evidence))
        .chain(late)
    {
        seen.entry(e.sha256.to_string())
            .or_insert_with(|| e.mime.clone());
    }
    seen.into_iter()
        .map(|(sha256, mime)| EvidenceRef { sha256, mime })
        .collect()
}

/// The projection of a document (its context says which kind it is).
pub fn project(doc: &Automerge, rules: &DueRules) -> Result<Projection, SchemaError> {
    let ctx = DocContext::read(doc)?;
    Ok(match ctx.kind {
        DocKind::Audit => {
            let v = AuditView::read(doc)?;
            let audit = AuditRow {
                unit: v.header.unit.to_string(),
                number: v.header.number.clone(),
                state: v.state.to_string(),
                lead: v.header.lead.to_string(),
                start_on: v.header.start.to_string(),
                end_on: v.header.end.map(|d| d.to_string()),
                template_version: i64::try_from(v.header.template_version).unwrap_or(i64::MAX),
                responses: count(v.content.responses.len()),
                conflicts: count(v.conflicts.len()),
                late_edits: count(v.late_edits.len()),
            };
            let findings = v
                .content
                .findings
                .iter()
                .map(|(id, f)| FindingRow {
                    finding_id: id.to_string(),
                    class: f.class.to_string(),
                    clause: f.clause.to_string(),
                    process: f.process.as_ref().map(ToString::to_string),
                    text: f.text.clone(),
                })
                .collect();
            Projection::Audit {
                audit,
                findings,
                evidence: evidence_of(&v),
            }
        }
        DocKind::Nc => {
            let nc = Nc::read(doc)?;
            let folded = fold::<NcState>(&nc.events);
            // The day of the move that closed it, if closed now.
            let closed_on = (folded.state == NcState::Closed)
                .then(|| {
                    folded
                        .applied
                        .iter()
                        .rev()
                        .filter_map(|&i| nc.events.get(i))
                        .find(|e| e.mv == "verify_effective")
                        .map(|e| sync_core::date::Date::of(e.at).to_string())
                })
                .flatten();
            Projection::Nc(NcRow {
                unit: nc.link.unit.to_string(),
                audit_id: nc.link.audit.to_string(),
                finding_id: nc.link.finding.to_string(),
                process: nc.link.process.to_string(),
                clause: nc.link.clause.to_string(),
                class: nc.link.class.to_string(),
                state: folded.state.to_string(),
                raised_on: nc.link.raised_on.to_string(),
                response_due: nc.response_due(rules).to_string(),
                action_due: nc.action_due(rules).to_string(),
                closed_on,
                conflicts: count(folded.conflicts.len()),
            })
        }
        DocKind::Review => Projection::Review,
    })
}
