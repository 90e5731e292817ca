//! Projection rows (DESIGN §6): what reports need from a document, derived by
//! sync-core's readers and written in the same transaction as its changes, so
//! reports are SQL queries, not document loads.

use std::collections::HashMap;

use sync_core::DocKind;
use sync_core::audit::{AuditHeader, AuditView, ContestedValue, Evidence, Finding, LiveAudit};
use sync_core::automerge::{Automerge, ChangeHash};
use sync_core::ids::{DocumentId, ItemId};
use sync_core::nc::{DueRules, Nc};
use sync_core::permissions::DocContext;
use sync_core::schema::SchemaError;
use sync_core::validate::Touched;
use sync_core::workflow::{AuditState, NcState, fold};

/// The rows of one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projection {
    /// An audit and its findings.
    Audit {
        /// The audit row.
        audit: AuditRow,
        /// One row per finding.
        findings: Vec<FindingRow>,
        /// One row per concurrent value of each contested response or
        /// finding (`contested_values` rows), by place.
        contested: Vec<ContestedRow>,
        /// The blobs its evidence names (`blob_refs` rows).
        evidence: Vec<EvidenceRef>,
    },
    /// An NC.
    Nc {
        /// The `ncs` row.
        nc: NcRow,
        /// One row per concurrent value of each contested text, the
        /// verification or an action (`contested_values` rows), by place.
        contested: Vec<ContestedRow>,
        /// The blobs its implementation and verification evidence names.
        evidence: Vec<EvidenceRef>,
    },
    /// A management review (no rows yet).
    Review,
}

/// `audits` row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FindingRow {
    pub finding_id: String,
    pub class: String,
    pub clause: String,
    pub process: Option<String>,
    pub text: String,
}

/// `contested_values` row: one of the values people wrote concurrently to
/// one field of a document (an audit's response, finding or notes; an NC's
/// description, correction, root cause, verification or action), awaiting
/// its settlement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContestedRow {
    /// `responses/<key>`, `findings/<id>`, `notes`, `correction`,
    /// `actions/<id>` ...
    pub place: String,
    pub by_user: String,
    /// The writer's device time, ISO 8601.
    pub at: String,
    /// The value in words (`partly: 19 days`, `minor: register not kept`).
    pub value: String,
}

fn contested_rows<'a>(values: impl Iterator<Item = &'a ContestedValue>) -> Vec<ContestedRow> {
    let mut rows: Vec<ContestedRow> = values
        .map(|v| ContestedRow {
            place: v.place.clone(),
            by_user: v.by.as_ref().map(ToString::to_string).unwrap_or_default(),
            at: v.at.map(|t| t.to_string()).unwrap_or_default(),
            value: v.value.clone(),
        })
        .collect();
    // Each place's values stay in Automerge's order, the same on every replica.
    rows.sort_by(|a, b| a.place.cmp(&b.place));
    rows
}

/// `blob_refs` row: a blob the document's evidence names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EvidenceRef {
    pub sha256: String,
    pub mime: String,
}

/// Which parts of a document's rows differ from the ones handed out before,
/// so that the writer leaves the unchanged ones as they are in the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// The document's own row (`audits` or `ncs`).
    pub row: bool,
    /// An audit's `findings` rows and a document's `contested_values` rows.
    pub entries: bool,
    /// Its `blob_refs` rows.
    pub evidence: bool,
}

impl Parts {
    /// Every part: rows never handed out before, or of another kind.
    pub const ALL: Parts = Parts {
        row: true,
        entries: true,
        evidence: true,
    };

    /// What differs between the rows last handed out and `now`.
    pub fn between(last: Option<&Projection>, now: &Projection) -> Parts {
        match (last, now) {
            (
                Some(Projection::Audit {
                    audit: a,
                    findings: f,
                    contested: c,
                    evidence: e,
                }),
                Projection::Audit {
                    audit,
                    findings,
                    contested,
                    evidence,
                },
            ) => Parts {
                row: a != audit,
                entries: f != findings || c != contested,
                evidence: e != evidence,
            },
            (
                Some(Projection::Nc {
                    nc: a,
                    contested: c,
                    evidence: e,
                }),
                Projection::Nc {
                    nc,
                    contested,
                    evidence,
                },
            ) => Parts {
                row: a != nc,
                entries: c != contested,
                evidence: e != evidence,
            },
            (Some(Projection::Review), Projection::Review) => Parts {
                row: false,
                entries: false,
                evidence: false,
            },
            _ => Parts::ALL,
        }
    }

    /// The parts changed by either (two updates written as one).
    pub fn or(self, other: Parts) -> Parts {
        Parts {
            row: self.row || other.row,
            entries: self.entries || other.entries,
            evidence: self.evidence || other.evidence,
        }
    }

    /// Whether any part changed.
    pub fn any(self) -> bool {
        self.row || self.entries || self.evidence
    }
}

impl Projection {
    /// The blobs the document's evidence names (reviews have none).
    pub fn evidence(&self) -> &[EvidenceRef] {
        match self {
            Projection::Audit { evidence, .. } | Projection::Nc { evidence, .. } => evidence,
            Projection::Review => &[],
        }
    }
}

/// `ncs` row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NcRow {
    pub unit: String,
    pub audit_id: String,
    pub finding_id: String,
    pub process: Option<String>,
    pub clause: String,
    pub class: String,
    pub state: String,
    pub raised_on: String,
    pub response_due: String,
    pub action_due: String,
    pub closed_on: Option<String>,
    pub conflicts: i64,
    /// The raising tablet's number (`search_terms`).
    pub provisional: String,
    /// The description (`search_terms`).
    pub words: String,
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
    refs(
        v.content
            .responses
            .values()
            .flat_map(|r| &r.evidence)
            .chain(v.content.findings.values().flat_map(|f| &f.evidence))
            .chain(late),
    )
}

/// One row per hash named, with the first media type given for it, in
/// hash order.
fn refs<'a>(files: impl Iterator<Item = &'a Evidence>) -> Vec<EvidenceRef> {
    let mut seen = std::collections::BTreeMap::new();
    for e in files {
        seen.entry(e.sha256.to_string())
            .or_insert_with(|| e.mime.clone());
    }
    seen.into_iter()
        .map(|(sha256, mime)| EvidenceRef { sha256, mime })
        .collect()
}

fn audit_row(
    header: &AuditHeader,
    state: AuditState,
    responses: usize,
    conflicts: usize,
    late: usize,
) -> AuditRow {
    AuditRow {
        unit: header.unit.to_string(),
        number: header.number.clone(),
        state: state.to_string(),
        lead: header.lead.to_string(),
        start_on: header.start.to_string(),
        end_on: header.end.map(|d| d.to_string()),
        template_version: i64::try_from(header.template_version).unwrap_or(i64::MAX),
        responses: count(responses),
        conflicts: count(conflicts),
        late_edits: count(late),
    }
}

fn finding_row(id: &ItemId, f: &Finding) -> FindingRow {
    FindingRow {
        finding_id: id.to_string(),
        class: f.class.to_string(),
        clause: f.clause.to_string(),
        process: f.process.as_ref().map(ToString::to_string),
        text: f.text.clone(),
    }
}

fn sorted_heads(doc: &Automerge) -> Vec<ChangeHash> {
    let mut h = doc.get_heads();
    h.sort();
    h
}

/// A loaded document's last projection and what it was made from.
#[derive(Debug)]
struct Kept {
    /// The document's heads it was made at, sorted.
    heads: Vec<ChangeHash>,
    /// An audit's view, kept up to date batch by batch.
    audit: Option<LiveAudit>,
    /// What the rows last handed out were.
    rows: Digest,
}

/// Rows, part by part, as SHA-256 digests: enough to tell which parts of
/// the next rows differ, in about a hundred bytes where the rows of an
/// audit with its findings take several KiB (kept for every document held,
/// cold ones included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Digest {
    /// Which kind of rows (audit, NC, review).
    kind: u8,
    /// The document's own row.
    row: [u8; 32],
    /// An audit's findings and contested values.
    entries: [u8; 32],
    /// The evidence references.
    evidence: [u8; 32],
}

/// A [`std::hash::Hasher`] that feeds SHA-256 (derived `Hash` spells each
/// value unambiguously: strings end with a marker, lists start with their length).
struct Sha(sha2::Sha256);

impl std::hash::Hasher for Sha {
    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    fn finish(&self) -> u64 {
        // Only the whole digest is used (see `sha`).
        0
    }
}

fn sha<T: std::hash::Hash + ?Sized>(value: &T) -> [u8; 32] {
    let mut h = Sha(<sha2::Sha256 as sha2::Digest>::new());
    value.hash(&mut h);
    sha2::Digest::finalize(h.0).into()
}

impl Digest {
    fn of(rows: &Projection) -> Digest {
        match rows {
            Projection::Audit {
                audit,
                findings,
                contested,
                evidence,
            } => Digest {
                kind: 0,
                row: sha(audit),
                entries: sha(&(findings, contested)),
                evidence: sha(evidence),
            },
            Projection::Nc {
                nc,
                contested,
                evidence,
            } => Digest {
                kind: 1,
                row: sha(nc),
                entries: sha(contested),
                evidence: sha(evidence),
            },
            Projection::Review => Digest {
                kind: 2,
                row: [0; 32],
                entries: [0; 32],
                evidence: [0; 32],
            },
        }
    }

    /// The parts of `now` that differ from these.
    fn parts_to(&self, now: &Digest) -> Parts {
        if self.kind != now.kind {
            return Parts::ALL;
        }
        Parts {
            row: self.row != now.row,
            entries: self.entries != now.entries,
            evidence: self.evidence != now.evidence,
        }
    }
}

/// Projections brought up to date batch by batch. For each loaded audit it
/// keeps its view ([`LiveAudit`]) and the heads it was read at; a batch
/// applied on exactly those heads costs a read of what it wrote (see
/// [`Touched`]), anything else a read of the whole document. NCs and reviews
/// are small and read whole.
#[derive(Debug, Default)]
pub struct Projector {
    kept: HashMap<DocumentId, Kept>,
}

impl Projector {
    /// The projection of `doc` after a batch that `touched` it, applied on
    /// `base`, with the parts that differ from the rows last handed out for
    /// it; `None` when none do.
    pub fn project(
        &mut self,
        id: DocumentId,
        doc: &Automerge,
        base: &[ChangeHash],
        touched: &Touched,
        rules: &DueRules,
    ) -> Result<Option<(Projection, Parts)>, SchemaError> {
        let mut base = base.to_vec();
        base.sort();
        let before = self.kept.remove(&id);
        // `follows`: the batch was applied on exactly the heads of the rows
        // last handed out, so those are what the database holds for it.
        let (audit, last, follows) = match before {
            Some(k) if k.heads == base => {
                let view = k.audit.filter(|_| !touched.everything);
                (view, Some(k.rows), true)
            }
            Some(k) => (None, Some(k.rows), false),
            None => (None, None, false),
        };
        let (audit, rows) = match audit {
            Some(mut live) => {
                live.update(doc, touched)?;
                let rows = live_projection(&live);
                (Some(live), rows)
            }
            None if DocContext::read(doc)?.kind == DocKind::Audit => {
                let live = LiveAudit::read(doc)?;
                let rows = live_projection(&live);
                (Some(live), rows)
            }
            None => (None, project(doc, rules)?),
        };
        // Unchanged rows are not written. Changed rows that do not follow the
        // last ones handed out (changes stored by another server process came
        // in between, say) may differ from the database in any part: every
        // part is written again.
        let now = Digest::of(&rows);
        let parts = match &last {
            Some(l) if follows || *l == now => l.parts_to(&now),
            _ => Parts::ALL,
        };
        self.kept.insert(
            id,
            Kept {
                heads: sorted_heads(doc),
                audit,
                rows: now,
            },
        );
        Ok(parts.any().then_some((rows, parts)))
    }

    /// Forgets a document (unloaded), or after its rows could not be written.
    pub fn forget(&mut self, id: &DocumentId) {
        self.kept.remove(id);
    }

    /// How many audits' views are kept.
    pub fn views(&self) -> usize {
        self.kept.values().filter(|k| k.audit.is_some()).count()
    }

    /// Drops a document's view but keeps its rows' digest (the document is
    /// cold): its next batch reads it whole, and writes only the parts that differ.
    pub fn drop_view(&mut self, id: &DocumentId) {
        if let Some(k) = self.kept.get_mut(id) {
            k.audit = None;
        }
    }
}

/// The rows of an audit kept up to date (the same as [`audit_projection`]
/// of its view read whole).
fn live_projection(live: &LiveAudit) -> Projection {
    let mut evidence = std::collections::BTreeMap::new();
    for (sha256, mime) in live.evidence() {
        evidence.entry(sha256.to_string()).or_insert(mime);
    }
    Projection::Audit {
        audit: audit_row(
            live.header(),
            live.state(),
            live.responses(),
            live.conflicts(),
            live.late_edits(),
        ),
        findings: live
            .findings()
            .iter()
            .map(|(id, f)| finding_row(id, f))
            .collect(),
        contested: contested_rows(live.contested()),
        evidence: evidence
            .into_iter()
            .map(|(sha256, mime)| EvidenceRef { sha256, mime })
            .collect(),
    }
}

fn audit_projection(v: &AuditView) -> Projection {
    Projection::Audit {
        audit: audit_row(
            &v.header,
            v.state,
            v.content.responses.len(),
            v.conflicts.len(),
            v.late_edits.len(),
        ),
        findings: v
            .content
            .findings
            .iter()
            .map(|(id, f)| finding_row(id, f))
            .collect(),
        contested: contested_rows(ContestedValue::all_of(&v.content).iter()),
        evidence: evidence_of(v),
    }
}

/// The projection of a document (its context says which kind it is).
pub fn project(doc: &Automerge, rules: &DueRules) -> Result<Projection, SchemaError> {
    let ctx = DocContext::read(doc)?;
    Ok(match ctx.kind {
        DocKind::Audit => audit_projection(&AuditView::read(doc)?),
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
                        .map(|e| sync_core::date::Date::in_offices(e.at).to_string())
                })
                .flatten();
            let evidence = refs(
                nc.implementation_evidence
                    .iter()
                    .chain(&nc.verification_evidence)
                    .map(|e| &e.file),
            );
            Projection::Nc {
                evidence,
                contested: contested_rows(nc.contested_values().iter()),
                nc: NcRow {
                    unit: nc.link.unit.to_string(),
                    audit_id: nc.link.audit.to_string(),
                    finding_id: nc.link.finding.to_string(),
                    process: nc.link.process.as_ref().map(ToString::to_string),
                    clause: nc.link.clause.to_string(),
                    class: nc.link.class.to_string(),
                    state: folded.state.to_string(),
                    raised_on: nc.link.raised_on.to_string(),
                    response_due: nc.response_due(rules).to_string(),
                    action_due: nc.action_due(rules).to_string(),
                    closed_on,
                    conflicts: count(folded.conflicts.len()),
                    provisional: nc.provisional.clone(),
                    words: nc.description.clone(),
                },
            }
        }
        DocKind::Review => Projection::Review,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sync_core::audit::{Answer, Cpna, Evidence, FindingClass};
    use sync_core::automerge::Automerge;
    use sync_core::edit::Edit;
    use sync_core::permissions::Author;
    use sync_core::testing::fixtures::Demo;
    use sync_core::validate::validate_batch;

    use super::*;

    /// One step of the test: an edit on the lead's or the member's tablet,
    /// or a tablet's upload to the server.
    #[derive(Clone, Debug)]
    enum Step {
        Answer {
            member: bool,
            item: u8,
            photo: Option<u8>,
        },
        Clear {
            member: bool,
            item: u8,
        },
        Finding {
            member: bool,
            id: u8,
            class: u8,
            photo: Option<u8>,
        },
        Notes {
            member: bool,
        },
        Move(u8),
        Upload {
            member: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (any::<bool>(), 0..12u8, proptest::option::of(0..4u8))
                .prop_map(|(member, item, photo)| Step::Answer { member, item, photo }),
            1 => (any::<bool>(), 0..12u8).prop_map(|(member, item)| Step::Clear { member, item }),
            2 => (any::<bool>(), 0..6u8, 0..5u8, proptest::option::of(0..4u8))
                .prop_map(|(member, id, class, photo)| Step::Finding { member, id, class, photo }),
            1 => any::<bool>().prop_map(|member| Step::Notes { member }),
            1 => (0..4u8).prop_map(Step::Move),
            3 => any::<bool>().prop_map(|member| Step::Upload { member }),
        ]
    }

    fn photo(n: u8) -> Vec<Evidence> {
        vec![Evidence {
            sha256: format!("{:064x}", n).parse().expect("a hash"),
            name: format!("photo-{n}.jpg"),
            mime: if n.is_multiple_of(2) {
                "image/jpeg"
            } else {
                "image/png"
            }
            .into(),
            size: 1000 + u64::from(n),
            taken_at: None,
        }]
    }

    fn edit_of(demo: &Demo, step: &Step, n: usize) -> Option<Edit> {
        Some(match step {
            Step::Answer { item, photo: p, .. } => Edit::SetResponse {
                key: format!("sd.item_{item}").parse().ok()?,
                answer: Answer::Cpna([Cpna::Conform, Cpna::Partly][n % 2]),
                note: format!("note {n}"),
                evidence: p.map(photo).unwrap_or_default(),
            },
            Step::Clear { item, .. } => {
                Edit::ClearResponse(format!("sd.item_{item}").parse().ok()?)
            }
            Step::Finding {
                id,
                class,
                photo: p,
                ..
            } => match demo.finding(usize::from(*id)) {
                Edit::PutFinding {
                    id,
                    clause,
                    process,
                    ..
                } => Edit::PutFinding {
                    id,
                    class: FindingClass::ALL[usize::from(*class)],
                    clause,
                    process,
                    text: format!("finding text {n}"),
                    evidence: p.map(photo).unwrap_or_default(),
                },
                other => other,
            },
            Step::Notes { .. } => Edit::SetNotes(format!("notes {n}")),
            Step::Move(m) => Edit::Move {
                mv: [
                    "start",
                    "submit_for_review",
                    "return_for_edit",
                    "issue_report",
                ][usize::from(*m)]
                .into(),
                note: "moved".into(),
            },
            Step::Upload { .. } => return None,
        })
    }

    /// Sends what the tablet has and the server lacks; then the tablet takes
    /// everything the server has.
    fn upload(
        demo: &Demo,
        projector: &mut Projector,
        last: &mut Option<Projection>,
        server: &mut Automerge,
        tablet: &mut Automerge,
        author: &Author,
    ) -> Result<(), TestCaseError> {
        let batch = tablet.get_changes(&server.get_heads());
        let fresh: Vec<_> = batch
            .into_iter()
            .filter(|c| server.get_change_meta_by_hash(&c.hash()).is_none())
            .collect();
        if !fresh.is_empty() {
            let base = server.get_heads();
            let accepted = validate_batch(demo.audit_id, server, fresh, author, demo.today)
                .map_err(|r| TestCaseError::fail(format!("refused: {r}")))?;
            if let Some(doc) = accepted.doc {
                *server = doc;
                let rules = DueRules::default();
                let kept = projector
                    .project(demo.audit_id, server, &base, &accepted.touched, &rules)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let whole =
                    project(server, &rules).map_err(|e| TestCaseError::fail(e.to_string()))?;
                match kept {
                    // New rows: the rows read whole, and the parts that
                    // differ from the last ones handed out.
                    Some((rows, parts)) => {
                        prop_assert_ne!(Some(&rows), last.as_ref());
                        prop_assert_eq!(&rows, &whole);
                        // Every part that differs is written (more may be).
                        let differ = Parts::between(last.as_ref(), &whole);
                        prop_assert_eq!(parts.or(differ), parts);
                    }
                    // "Unchanged": the rows read whole are the last ones handed out.
                    None => prop_assert_eq!(last.as_ref(), Some(&whole)),
                }
                *last = Some(whole);
            }
        }
        tablet
            .apply_changes(server.get_changes(&tablet.get_heads()))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(())
    }

    #[test]
    fn digests_tell_which_part_of_the_rows_changed() {
        let demo = Demo::new();
        let rows = project(&demo.audit(), &DueRules::default()).expect("rows");
        let Projection::Audit {
            audit, evidence, ..
        } = rows
        else {
            panic!("the demo audit projects as an audit");
        };
        let finding = |id: &str, text: &str| FindingRow {
            finding_id: id.into(),
            class: "minor".into(),
            clause: "3.2.1.1".into(),
            process: Some("P01".into()),
            text: text.into(),
        };
        let rows_of = |audit: &AuditRow, findings: Vec<FindingRow>| Projection::Audit {
            audit: audit.clone(),
            findings,
            contested: Vec::new(),
            evidence: evidence.clone(),
        };
        let findings = vec![
            finding("f-01", "4 of 20 letters acknowledged late."),
            finding("f-02", "Charter not displayed."),
        ];
        let rows = rows_of(&audit, findings.clone());
        let before = Digest::of(&rows);
        assert_eq!(
            before.parts_to(&Digest::of(&rows)),
            Parts::between(Some(&rows), &rows)
        );
        assert!(
            !before.parts_to(&before).any(),
            "the same rows: nothing to write"
        );
        let mut edited = findings.clone();
        edited[0].text.push('.');
        let text = rows_of(&audit, edited);
        let want = Parts {
            row: false,
            entries: true,
            evidence: false,
        };
        assert_eq!(before.parts_to(&Digest::of(&text)), want);
        assert_eq!(Parts::between(Some(&rows), &text), want);
        let mut row = audit.clone();
        row.responses += 1;
        let want = Parts {
            row: true,
            entries: false,
            evidence: false,
        };
        assert_eq!(before.parts_to(&Digest::of(&rows_of(&row, findings))), want);
        // Text moved from one finding to the next is a change.
        let moved = rows_of(
            &audit,
            vec![
                finding(
                    "f-01",
                    "4 of 20 letters acknowledged late.Charter not displayed.",
                ),
                finding("f-02", ""),
            ],
        );
        assert!(before.parts_to(&Digest::of(&moved)).entries);
        assert_eq!(
            before.parts_to(&Digest::of(&Projection::Review)),
            Parts::ALL
        );
    }

    /// A batch applied on heads the projector did not see (changes came in
    /// from elsewhere between): every part of the rows is written again,
    /// whatever differs from the rows it last handed out.
    #[test]
    fn rows_after_changes_the_projector_did_not_see_are_written_whole() {
        let demo = Demo::new();
        let rules = DueRules::default();
        let mut server = demo.audit();
        let mut projector = Projector::default();
        let first = projector
            .project(demo.audit_id, &server, &[], &Touched::unknown(), &rules)
            .expect("projects");
        assert_eq!(first.map(|(_, p)| p), Some(Parts::ALL));
        let batch = |server: &Automerge, edit: Edit| {
            let mut tablet = server.clone();
            demo.must(demo.audit_id, &mut tablet, &demo.lead, edit);
            let fresh = tablet.get_changes(&server.get_heads());
            validate_batch(demo.audit_id, server, fresh, &demo.lead, demo.today).expect("accepted")
        };
        // Seen batch by batch: only the audit row changes with an answer.
        let base = server.get_heads();
        let accepted = batch(&server, demo.answer(0, 0));
        server = accepted.doc.expect("applied");
        let seen = projector
            .project(demo.audit_id, &server, &base, &accepted.touched, &rules)
            .expect("projects");
        let row_only = Parts {
            row: true,
            entries: false,
            evidence: false,
        };
        assert_eq!(seen.map(|(_, p)| p), Some(row_only));
        // An answer stored by another server process, which this projector
        // never saw, then another answer: everything is written.
        server = batch(&server, demo.answer(1, 1)).doc.expect("applied");
        let base = server.get_heads();
        let accepted = batch(&server, demo.answer(2, 2));
        server = accepted.doc.expect("applied");
        let unseen = projector
            .project(demo.audit_id, &server, &base, &accepted.touched, &rules)
            .expect("projects");
        assert_eq!(unseen.map(|(_, p)| p), Some(Parts::ALL));
    }

    /// A locked audit that gets late edits, then is reopened: each batch's
    /// rows, kept up to date, are the rows read whole, late edits included.
    #[test]
    fn late_edits_of_a_locked_audit_are_kept_up_to_date() {
        let demo = Demo::new();
        let mut server = demo.audit();
        let (mut lead, mut member) = (server.clone(), server.clone());
        let mut projector = Projector::default();
        let mut last = None;
        let mut go = |server: &mut Automerge, tablet: &mut Automerge, author: &Author| {
            upload(&demo, &mut projector, &mut last, server, tablet, author).expect("rows agree");
            last.clone()
        };
        let start = Edit::Move {
            mv: "start".into(),
            note: String::new(),
        };
        demo.must(demo.audit_id, &mut lead, &demo.lead, start);
        go(&mut server, &mut lead, &demo.lead);
        go(&mut server, &mut member, &demo.member);
        demo.must(demo.audit_id, &mut lead, &demo.lead, demo.answer(0, 0));
        let review = Edit::Move {
            mv: "submit_for_review".into(),
            note: "done".into(),
        };
        demo.must(demo.audit_id, &mut lead, &demo.lead, review);
        // The member answers and adds a photo, not knowing of the lock.
        let late = Edit::SetResponse {
            key: "sd.item_9".parse().expect("a key"),
            answer: Answer::Cpna(Cpna::Partly),
            note: "seen late".into(),
            evidence: photo(7),
        };
        demo.must(demo.audit_id, &mut member, &demo.member, late);
        go(&mut server, &mut lead, &demo.lead);
        let rows = go(&mut server, &mut member, &demo.member).expect("rows");
        let Projection::Audit {
            audit, evidence, ..
        } = &rows
        else {
            panic!("not an audit: {rows:?}");
        };
        assert_eq!(audit.state, "in_review");
        assert_eq!(audit.late_edits, 1);
        assert_eq!(audit.responses, 1, "the late answer is not in force");
        assert_eq!(evidence.len(), 1, "a late edit's photo is still named");
        let reopen = Edit::Move {
            mv: "return_for_edit".into(),
            note: "fix".into(),
        };
        demo.must(demo.audit_id, &mut lead, &demo.lead, reopen);
        let rows = go(&mut server, &mut lead, &demo.lead).expect("rows");
        let Projection::Audit { audit, .. } = &rows else {
            panic!("not an audit: {rows:?}");
        };
        assert_eq!(
            (audit.state.as_str(), audit.late_edits, audit.responses),
            ("in_progress", 0, 2)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Rows brought up to date batch by batch are the rows read from the
        /// whole document, whatever the tablets wrote (answers with and
        /// without photos, answers cleared, findings replaced, concurrent
        /// edits of one entry, the audit locked and reopened).
        #[test]
        fn rows_kept_up_to_date_equal_rows_read_whole(steps in proptest::collection::vec(step(), 1..40)) {
            let demo = Demo::new();
            let mut server = demo.audit();
            let mut projector = Projector::default();
            let mut last = None;
            let mut lead = server.clone();
            let mut member = server.clone();
            for (n, step) in steps.iter().enumerate() {
                let is_member = matches!(
                    step,
                    Step::Answer { member: true, .. }
                        | Step::Clear { member: true, .. }
                        | Step::Finding { member: true, .. }
                        | Step::Notes { member: true }
                        | Step::Upload { member: true }
                );
                let (tablet, author) = if is_member {
                    (&mut member, &demo.member)
                } else {
                    (&mut lead, &demo.lead)
                };
                match edit_of(&demo, step, n) {
                    // Refused on the tablet (e.g. an edit of a locked audit): nothing to send.
                    Some(edit) => { let _ = demo.edit(demo.audit_id, tablet, author, edit); }
                    None => upload(&demo, &mut projector, &mut last, &mut server, tablet, author)?,
                }
            }
            upload(&demo, &mut projector, &mut last, &mut server, &mut lead, &demo.lead)?;
            upload(&demo, &mut projector, &mut last, &mut server, &mut member, &demo.member)?;
        }
    }
}
