//! The demo unit of `shared/demo-seed.md`, as authors and documents for tests.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ActorId, Automerge, ChangeHash};

use crate::audit::{Answer, AuditHeader, Cpna, Evidence, FindingClass};
use crate::date::{Date, Timestamp};
use crate::edit::{Edit, apply_edit};
use crate::ids::{DocumentId, ItemId, ResponseKey, UnitCode};
use crate::nc::{Action, EvidenceOf, NcLink, Severity};
use crate::permissions::{Author, PlannedAudit, Refusal, Role, RoleGrant, TeamRole};

/// A deterministic actor id for a device number.
pub fn actor(device: u8) -> ActorId {
    ActorId::from(vec![
        0x5a, 0x51, device, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, device,
    ])
}

/// A change made on a copy of `doc` under device `device`'s actor without
/// the device's own checks, as a tampered or out-of-date client would send it.
pub fn forged(
    doc: &Automerge,
    device: u8,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> automerge::Change {
    let mut copy = doc.clone();
    copy.set_actor(actor(device));
    let mut tx = copy.transaction();
    f(&mut tx);
    tx.commit();
    match copy.get_last_local_change() {
        Some(change) => change,
        None => panic!("the forged edit made no change"),
    }
}

/// The object under `path` (map keys from the root) in a transaction.
pub fn obj_at(tx: &automerge::transaction::Transaction<'_>, path: &[&str]) -> automerge::ObjId {
    use automerge::ReadDoc;
    let mut obj = automerge::ROOT;
    for key in path {
        obj = match tx.get(&obj, *key) {
            Ok(Some((_, id))) => id,
            _ => panic!("no {key} in {path:?}"),
        };
    }
    obj
}

fn parse<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    match s.parse() {
        Ok(v) => v,
        Err(e) => panic!("fixture value {s:?} does not parse: {e:?}"),
    }
}

/// The demo unit: one audit, one NC on process P03, and the people around them.
#[derive(Clone, Debug)]
pub struct Demo {
    /// CGST Commissionerate Demo-I.
    pub unit: UnitCode,
    /// Audit IA/DEMO-I/2025-26/003.
    pub audit_id: DocumentId,
    /// An NC of that audit on P03.
    pub nc_id: DocumentId,
    /// A management review.
    pub review_id: DocumentId,
    /// K. Iyer, lead auditor of the audit (device 1).
    pub lead: Author,
    /// S. Khan, auditor on the team (device 2).
    pub member: Author,
    /// AC Div-II, owner of P02 and P03 (device 3).
    pub owner: Author,
    /// A. Rao, nodal officer (device 4).
    pub nodal: Author,
    /// P. Sharma, auditor not on this audit's team (device 5).
    pub outsider: Author,
    /// The demo's "as of" date.
    pub today: Date,
}

fn grant(unit: &UnitCode, role: Role) -> RoleGrant {
    RoleGrant {
        unit: unit.clone(),
        role,
        from: parse("2025-04-01"),
        until: None,
    }
}

impl Default for Demo {
    fn default() -> Self {
        Demo::new()
    }
}

impl Demo {
    /// Builds the demo unit.
    pub fn new() -> Demo {
        let unit: UnitCode = parse("DEMO-I");
        let audit_id = DocumentId::new_v7(1_768_262_400_000, [3; 10]);
        let person = |user: &str, device: u8, roles: &[Role]| {
            let mut a = Author::new(parse(user));
            a.grants = roles.iter().map(|r| grant(&unit, *r)).collect();
            a.actors = BTreeSet::from([actor(device)]);
            a
        };
        let plan = BTreeMap::from([(
            audit_id,
            PlannedAudit {
                unit: unit.clone(),
                number: "IA/DEMO-I/2025-26/003".into(),
                template_version: 2,
                lead: parse("k.iyer"),
                // Nothing required: tests of the checklist's rules give
                // their own with `Demo::with_checklist`.
                checklist: std::sync::Arc::new(crate::checklist::Checklist {
                    version: 2,
                    items: BTreeMap::new(),
                }),
            },
        )]);
        let mut lead = person("k.iyer", 1, &[Role::Auditor]);
        lead.audits = BTreeMap::from([(audit_id, TeamRole::Lead)]);
        lead.planned = plan.clone();
        let mut member = person("s.khan", 2, &[Role::Auditor]);
        member.audits = BTreeMap::from([(audit_id, TeamRole::Member)]);
        member.planned = plan;
        let mut owner = person("ac.div2", 3, &[Role::ProcessOwner]);
        owner.processes =
            BTreeSet::from([(unit.clone(), parse("P02")), (unit.clone(), parse("P03"))]);
        Demo {
            audit_id,
            nc_id: DocumentId::new_v7(1_768_262_400_000, [8; 10]),
            review_id: DocumentId::new_v7(1_768_262_400_000, [9; 10]),
            lead,
            member,
            owner,
            nodal: person("a.rao", 4, &[Role::NodalOfficer]),
            outsider: person("p.sharma", 5, &[Role::Auditor]),
            today: parse("2026-01-15"),
            unit,
        }
    }

    /// A time on the demo's date.
    pub fn now(&self) -> Timestamp {
        Timestamp(Timestamp::start_of(self.today).0 + 10 * 3_600_000)
    }

    /// Makes an edit as `author` on their first device.
    pub fn edit(
        &self,
        id: DocumentId,
        doc: &mut Automerge,
        author: &Author,
        edit: Edit,
    ) -> Result<ChangeHash, Refusal> {
        if let Some(a) = author.actors.iter().next() {
            doc.set_actor(a.clone());
        }
        apply_edit(id, doc, &edit, author, self.now()).map(|c| c.hash())
    }

    /// Makes an edit that the fixture knows is permitted.
    pub fn must(
        &self,
        id: DocumentId,
        doc: &mut Automerge,
        author: &Author,
        edit: Edit,
    ) -> ChangeHash {
        match self.edit(id, doc, author, edit.clone()) {
            Ok(h) => h,
            Err(e) => panic!(
                "fixture edit {edit:?} by {} refused: {e} ({})",
                author.user, e.rule
            ),
        }
    }

    /// The audit header of IA/DEMO-I/2025-26/003.
    pub fn header(&self) -> AuditHeader {
        AuditHeader {
            unit: self.unit.clone(),
            number: "IA/DEMO-I/2025-26/003".into(),
            scope: ["P03", "P04", "P08", "3.4"].map(String::from).to_vec(),
            template_version: 2,
            lead: self.lead.user.clone(),
            team: vec![self.lead.user.clone(), self.member.user.clone()],
            start: parse("2026-01-13"),
            end: Some(parse("2026-01-14")),
        }
    }

    /// A new audit document created by the lead.
    pub fn audit(&self) -> Automerge {
        let mut doc = Automerge::new();
        self.must(
            self.audit_id,
            &mut doc,
            &self.lead,
            Edit::CreateAudit(self.header()),
        );
        doc
    }

    /// A realistic audit: `answers` checklist answers and `findings` findings.
    pub fn realistic_audit(&self, answers: usize, findings: usize) -> Automerge {
        let mut doc = self.audit();
        for i in 0..answers {
            self.must(
                self.audit_id,
                &mut doc,
                if i % 2 == 0 { &self.lead } else { &self.member },
                self.answer(i, i % 3),
            );
        }
        for i in 0..findings {
            self.must(self.audit_id, &mut doc, &self.lead, self.finding(i));
        }
        doc
    }

    /// The demo unit with the audit's checklist (as its team's tablets and
    /// the server know it) replaced.
    pub fn with_checklist(mut self, checklist: crate::checklist::Checklist) -> Demo {
        let checklist = std::sync::Arc::new(checklist);
        for author in [&mut self.lead, &mut self.member] {
            if let Some(plan) = author.planned.get_mut(&self.audit_id) {
                plan.checklist = checklist.clone();
            }
        }
        self
    }

    /// Moves the demo audit `doc` (planned) to in review, which locks it:
    /// the lead starts it and submits it for review.
    pub fn lock(&self, doc: &mut Automerge) {
        for mv in ["start", "submit_for_review"] {
            self.must(
                self.audit_id,
                doc,
                &self.lead,
                Edit::Move {
                    mv: mv.into(),
                    note: String::new(),
                },
            );
        }
    }

    /// The `i`-th checklist answer edit, with one of three answers.
    pub fn answer(&self, i: usize, variant: usize) -> Edit {
        let key: ResponseKey = parse(&format!("sd.item_{}@P0{}", i / 3, 2 + i % 3));
        Edit::SetResponse {
            key,
            answer: Answer::Cpna([Cpna::Conform, Cpna::Partly, Cpna::NotConform][variant % 3]),
            note: format!("Sampled 10 files; answer {variant}"),
            evidence: Vec::new(),
        }
    }

    /// The `i`-th finding edit.
    pub fn finding(&self, i: usize) -> Edit {
        Edit::PutFinding {
            id: parse::<ItemId>(&format!("f-{i:02}")),
            class: FindingClass::ALL[i % 5],
            clause: parse("3.2.1.3"),
            process: Some(parse("P03")),
            text: format!("Finding {i}: amendment approved in 19 days"),
            evidence: Vec::new(),
        }
    }

    /// The link of the demo NC (minor, P03, raised 15-01-2026).
    pub fn nc_link(&self) -> NcLink {
        NcLink {
            unit: self.unit.clone(),
            audit: self.audit_id,
            finding: parse("f-01"),
            process: Some(parse("P03")),
            clause: parse("3.2.1.3"),
            class: Severity::Minor,
            raised_on: self.today,
        }
    }

    /// A new NC document in draft, created by the team member.
    pub fn nc(&self) -> Automerge {
        let mut doc = Automerge::new();
        self.must(
            self.nc_id,
            &mut doc,
            &self.member,
            Edit::CreateNc {
                link: self.nc_link(),
                description: "Amendment approved in 19 days against 15".into(),
                provisional: String::new(),
            },
        );
        doc
    }

    /// Fills every field the NC workflow can require, each by its rightful author.
    pub fn fill_nc(&self, doc: &mut Automerge) {
        let id = self.nc_id;
        self.must(
            id,
            doc,
            &self.owner,
            Edit::SetCorrection("Pending amendments cleared".into()),
        );
        self.must(
            id,
            doc,
            &self.owner,
            Edit::SetRootCause("No daily ageing report at the desk".into()),
        );
        self.must(
            id,
            doc,
            &self.owner,
            Edit::PutAction {
                id: parse("a-1"),
                action: Action {
                    text: "Daily ageing report to AC".into(),
                    owner: "Supdt Div-II".into(),
                    target: parse("2026-02-15"),
                    done_on: Some(parse("2026-02-10")),
                },
            },
        );
        self.must(
            id,
            doc,
            &self.owner,
            Edit::AttachNcEvidence {
                of: EvidenceOf::Implementation,
                file: Demo::scan("ageing-report.pdf", 0x5a),
            },
        );
        self.must(
            id,
            doc,
            &self.member,
            Edit::SetVerification {
                note: "Ageing report seen for 20 days".into(),
                on: self.today,
            },
        );
    }

    /// A scanned PDF's reference; `fill` makes its hash.
    pub fn scan(name: &str, fill: u8) -> Evidence {
        Evidence {
            sha256: parse(&format!("{fill:02x}").repeat(32)),
            name: name.into(),
            mime: "application/pdf".into(),
            size: 48_213,
            taken_at: None,
        }
    }

    /// The author who makes each move on the way to a state.
    pub fn mover(&self, mv: &str) -> &Author {
        match mv {
            "submit_response" | "mark_implemented" => &self.owner,
            "withdraw" => &self.lead,
            "reopen" => &self.nodal,
            _ => &self.member,
        }
    }

    /// The moves that lead from draft to a state.
    pub fn path_to(state: crate::workflow::NcState) -> &'static [&'static str] {
        use crate::workflow::NcState::*;
        match state {
            Draft => &[],
            Open => &["raise"],
            ResponseSubmitted => &["raise", "submit_response"],
            PlanAccepted => &["raise", "submit_response", "accept_plan"],
            Implemented => &[
                "raise",
                "submit_response",
                "accept_plan",
                "mark_implemented",
            ],
            Closed => &[
                "raise",
                "submit_response",
                "accept_plan",
                "mark_implemented",
                "verify_effective",
            ],
            Withdrawn => &["withdraw"],
        }
    }

    /// An NC with every field filled, moved to `state`.
    pub fn nc_in(&self, state: crate::workflow::NcState) -> Automerge {
        let mut doc = self.nc();
        self.fill_nc(&mut doc);
        for mv in Demo::path_to(state) {
            self.must(
                self.nc_id,
                &mut doc,
                self.mover(mv),
                Edit::Move {
                    mv: (*mv).into(),
                    note: "as planned".into(),
                },
            );
        }
        doc
    }
}
