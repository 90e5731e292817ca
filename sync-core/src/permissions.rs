//! Who may write what (DESIGN §4). One set of rules answers both the server's
//! "may this change be stored?" ([`crate::validate`]) and the UI's "may this
//! user edit this field now?" ([`may_edit`]), so the tablet only offers what
//! the server will accept.
//!
//! Rights come from reference data (the [`Author`]: role grants, audit team
//! assignments, owned processes), never from document content; the document
//! only says which unit, audit and process it belongs to, and those link
//! fields are written once, by someone entitled to create it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use automerge::{ActorId, Automerge, ROOT};

use crate::date::Date;
use crate::ids::{DocumentId, ProcessCode, UnitCode, UserId};
use crate::kind::DocKind;
use crate::nc::DueRules;
use crate::rules::Rule;
use crate::schema::{Reader, SchemaError};
use crate::text::quote;
use crate::workflow::{AuditState, Event, Lifecycle, NcState, Who, find_move, fold};

/// A unit-scoped role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Internal auditor (audits are assigned per team).
    Auditor,
    /// Owner or deputy of one or more processes.
    ProcessOwner,
    /// Nodal officer for SQM: reviews the unit, grants extensions, holds reviews.
    NodalOfficer,
    /// Administrator of accounts and reference data (writes no audit content).
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::Auditor,
        Role::ProcessOwner,
        Role::NodalOfficer,
        Role::Admin,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auditor => "auditor",
            Role::ProcessOwner => "process_owner",
            Role::NodalOfficer => "nodal_officer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a role (or team role).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{}' is not a {what}: use {choices}", crate::text::quote(.given))]
pub struct UnknownRole {
    given: String,
    what: &'static str,
    choices: &'static str,
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole {
                given: s.chars().take(40).collect(),
                what: "role",
                choices: "auditor, process_owner, nodal_officer or admin",
            })
    }
}

/// A role held in a unit from one date, optionally until another (an office order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleGrant {
    /// The unit.
    pub unit: UnitCode,
    /// The role.
    pub role: Role,
    /// First day in force.
    pub from: Date,
    /// Last day in force, if limited.
    pub until: Option<Date>,
}

impl RoleGrant {
    /// Whether the grant is in force on a date.
    pub fn in_force(&self, on: Date) -> bool {
        self.from <= on && self.until.is_none_or(|u| on <= u)
    }
}

/// A member's place in an audit team.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamRole {
    /// The lead auditor.
    Lead,
    /// A team member.
    Member,
}

impl TeamRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Lead => "lead",
            TeamRole::Member => "member",
        }
    }
}

impl fmt::Display for TeamRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TeamRole {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<TeamRole, UnknownRole> {
        match s {
            "lead" => Ok(TeamRole::Lead),
            "member" => Ok(TeamRole::Member),
            _ => Err(UnknownRole {
                given: s.chars().take(40).collect(),
                what: "team role",
                choices: "lead or member",
            }),
        }
    }
}

/// An audit on the programme, as reference data plans it: what a new audit
/// document's header must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedAudit {
    /// The unit audited.
    pub unit: UnitCode,
    /// Its number, e.g. `IA/DEMO-I/2025-26/003`.
    pub number: String,
    /// The checklist template version it is pinned to.
    pub template_version: u64,
    /// Its lead auditor.
    pub lead: UserId,
    /// Its pinned template version resolved for its scope: what it must
    /// answer before it goes to review.
    pub checklist: std::sync::Arc<crate::checklist::Checklist>,
}

/// The author of a batch of changes, as reference data knows them now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    /// The user.
    pub user: UserId,
    /// Unit-scoped roles with their validity.
    pub grants: Vec<RoleGrant>,
    /// Audit team assignments, by audit document id.
    pub audits: BTreeMap<DocumentId, TeamRole>,
    /// The planned audits of those assignments, by audit document id: a new
    /// audit must match its plan, a new NC the unit of its audit.
    pub planned: BTreeMap<DocumentId, PlannedAudit>,
    /// Processes the user owns or deputises for.
    pub processes: BTreeSet<(UnitCode, ProcessCode)>,
    /// The Automerge actor ids registered to the user's devices.
    pub actors: BTreeSet<ActorId>,
    /// Reference data: the due-date rules units set for their NCs (a unit
    /// not listed follows [`DueRules::default`]).
    pub due_rules: BTreeMap<UnitCode, DueRules>,
}

impl Author {
    /// An author with no rights yet.
    pub fn new(user: UserId) -> Author {
        Author {
            user,
            grants: Vec::new(),
            audits: BTreeMap::new(),
            planned: BTreeMap::new(),
            processes: BTreeSet::new(),
            actors: BTreeSet::new(),
            due_rules: BTreeMap::new(),
        }
    }

    /// The due-date rules of a unit's NCs.
    pub fn due_rules_of(&self, unit: &UnitCode) -> DueRules {
        self.due_rules.get(unit).copied().unwrap_or_default()
    }

    fn has_role(&self, unit: &UnitCode, role: Role, on: Date) -> bool {
        self.grants
            .iter()
            .any(|g| &g.unit == unit && g.role == role && g.in_force(on))
    }

    fn team_role(&self, ctx: &DocContext, on: Date) -> Option<TeamRole> {
        let audit = ctx.audit?;
        let role = *self.audits.get(&audit)?;
        self.has_role(&ctx.unit, Role::Auditor, on).then_some(role)
    }

    fn owns(&self, ctx: &DocContext, on: Date) -> bool {
        match &ctx.process {
            Some(p) => {
                self.processes.contains(&(ctx.unit.clone(), p.clone()))
                    && self.has_role(&ctx.unit, Role::ProcessOwner, on)
            }
            None => false,
        }
    }

    /// Whether the author is `who` for a document, on a date.
    pub fn is(&self, who: Who, ctx: &DocContext, on: Date) -> bool {
        match who {
            Who::AuditTeam => self.team_role(ctx, on).is_some(),
            Who::AuditLead => self.team_role(ctx, on) == Some(TeamRole::Lead),
            Who::IndependentAuditor => {
                self.team_role(ctx, on).is_some() && !self.is(Who::ProcessOwner, ctx, on)
            }
            // An NC on no process (a clause such as 3.4, management
            // review) is answered by the unit's nodal officers.
            Who::ProcessOwner if ctx.kind == DocKind::Nc && ctx.process.is_none() => {
                self.has_role(&ctx.unit, Role::NodalOfficer, on)
            }
            Who::ProcessOwner => self.owns(ctx, on),
            Who::NodalOfficer => self.has_role(&ctx.unit, Role::NodalOfficer, on),
        }
    }

    /// Whether the author may read a document (its team, its process owner, the unit's nodal officers).
    pub fn may_read(&self, ctx: &DocContext, on: Date) -> bool {
        match ctx.kind {
            DocKind::Audit => {
                self.is(Who::AuditTeam, ctx, on) || self.is(Who::NodalOfficer, ctx, on)
            }
            DocKind::Nc => [Who::AuditTeam, Who::ProcessOwner, Who::NodalOfficer]
                .into_iter()
                .any(|w| self.is(w, ctx, on)),
            DocKind::Review => self.is(Who::NodalOfficer, ctx, on),
        }
    }
}

/// What a document belongs to, read from its write-once link fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocContext {
    /// The document's kind.
    pub kind: DocKind,
    /// The document's id.
    pub id: DocumentId,
    /// Its unit.
    pub unit: UnitCode,
    /// The audit it belongs to (an audit: itself).
    pub audit: Option<DocumentId>,
    /// The process concerned (NCs).
    pub process: Option<ProcessCode>,
}

impl DocContext {
    /// Reads the context of a document.
    pub fn read(doc: &Automerge) -> Result<DocContext, SchemaError> {
        let r = Reader::now(doc);
        let kind = r.kind()?;
        let id: DocumentId = r.parse(&ROOT, "id", "")?;
        Ok(match kind {
            DocKind::Audit => {
                let header = r.map(&ROOT, "header", "")?;
                DocContext {
                    kind,
                    id,
                    unit: r.parse(&header, "unit", "header")?,
                    audit: Some(id),
                    process: None,
                }
            }
            DocKind::Nc => DocContext {
                kind,
                id,
                unit: r.parse(&ROOT, "unit", "")?,
                audit: Some(r.parse(&ROOT, "audit", "")?),
                process: r.opt_parse(&ROOT, "process", "")?,
            },
            DocKind::Review => DocContext {
                kind,
                id,
                unit: r.parse(&ROOT, "unit", "")?,
                audit: None,
                process: None,
            },
        })
    }
}

/// A refused write: the rule broken and a sentence for the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// A stable code naming the rule, e.g. `nc.owner_fields` (the code of
    /// a [`Rule`]).
    pub rule: &'static str,
    /// What happened, in plain English.
    pub message: String,
}

/// A refusal. Its message is scrubbed of anything unprintable: it is sent
/// to the device and stored with the quarantined changes.
pub(crate) fn refuse(rule: Rule, message: impl Into<String>) -> Refusal {
    Refusal {
        rule: rule.code(),
        message: crate::text::scrub(message.into()),
    }
}

/// A part of a document that a write touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// An audit's header.
    AuditHeader,
    /// An audit's responses, findings, evidence or notes.
    AuditContent,
    /// An NC's description.
    NcDescription,
    /// An NC's correction, root cause and actions.
    NcOwnerFields,
    /// An NC's verification.
    NcVerification,
    /// A due-date extension of an NC.
    NcExtension,
    /// The files an NC's process owner attaches to show the actions done.
    NcImplementationEvidence,
    /// The files the verifying auditor attaches to an NC.
    NcVerificationEvidence,
    /// Anything in a management review.
    ReviewContent,
}

impl Field {
    /// Who may write the field.
    pub fn who(self) -> Who {
        match self {
            Field::AuditHeader => Who::AuditLead,
            Field::AuditContent | Field::NcDescription => Who::AuditTeam,
            Field::NcOwnerFields | Field::NcImplementationEvidence => Who::ProcessOwner,
            Field::NcVerification | Field::NcVerificationEvidence => Who::IndependentAuditor,
            Field::NcExtension | Field::ReviewContent => Who::NodalOfficer,
        }
    }

    fn rule(self) -> Rule {
        match self {
            Field::AuditHeader => Rule::AuditHeader,
            Field::AuditContent => Rule::AuditContent,
            Field::NcDescription => Rule::NcDescription,
            Field::NcOwnerFields | Field::NcImplementationEvidence => Rule::NcOwnerFields,
            Field::NcVerification | Field::NcVerificationEvidence => Rule::NcVerification,
            Field::NcExtension => Rule::NcExtension,
            Field::ReviewContent => Rule::ReviewContent,
        }
    }

    /// The part a top-level key of a document belongs to, if it is a
    /// writable field (its kind's table, [`crate::fields`], says).
    pub fn of(kind: DocKind, top: &str) -> Option<Field> {
        crate::fields::field(kind, top)?.part()
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::AuditHeader => "the audit header",
            Field::AuditContent => "the checklist, findings and notes",
            Field::NcDescription => "the NC description",
            Field::NcOwnerFields => "the correction, root cause and actions",
            Field::NcVerification => "the verification",
            Field::NcExtension => "due-date extensions",
            Field::NcImplementationEvidence => "the implementation evidence",
            Field::NcVerificationEvidence => "the verification evidence",
            Field::ReviewContent => "the management review",
        })
    }
}

/// Checks that the author may write a field of a document on a date.
pub fn check_field(
    ctx: &DocContext,
    author: &Author,
    field: Field,
    on: Date,
) -> Result<(), Refusal> {
    let who = field.who();
    if author.is(who, ctx, on) {
        Ok(())
    } else {
        Err(refuse(
            field.rule(),
            format!("{} may not write {field}: only {who} may.", author.user),
        ))
    }
}

/// Checks that the author may create a document with this context.
pub fn check_create(ctx: &DocContext, author: &Author, on: Date) -> Result<(), Refusal> {
    let who = match ctx.kind {
        DocKind::Audit => Who::AuditLead,
        DocKind::Nc => Who::AuditTeam,
        DocKind::Review => Who::NodalOfficer,
    };
    if author.is(who, ctx, on) {
        Ok(())
    } else {
        Err(refuse(
            Rule::DocCreate,
            format!(
                "{} may not create this {}: only {who} may.",
                author.user, ctx.kind
            ),
        ))
    }
}

/// Checks that the author may make a lifecycle move from a state (role only; requirements apart).
pub fn check_move<S: Lifecycle>(
    ctx: &DocContext,
    author: &Author,
    mv: &str,
    from: S,
    on: Date,
) -> Result<(), Refusal> {
    let Some(row) = find_move(mv, from) else {
        return Err(refuse(
            Rule::MoveTable,
            format!(
                "'{}' is not a move that can be made from '{from}'.",
                quote(mv)
            ),
        ));
    };
    if author.is(row.who, ctx, on) {
        Ok(())
    } else {
        Err(refuse(
            Rule::MoveWho,
            format!(
                "{} may not {} from '{from}': only {} may.",
                author.user,
                quote(mv),
                row.who
            ),
        ))
    }
}

/// Whether the screens offer a part of an NC for writing at its step: the
/// description while it is drafted or open; the plan (correction, root
/// cause, actions) and a request for more time while it is open, and the
/// actions' completion and its evidence once the plan is accepted; the
/// verification once the actions are reported done; extensions while a due
/// date runs; nothing once it is closed or withdrawn. As with the audit
/// lock, the validator does not refuse a write made at another step: one
/// made offline before the move reached the tablet is kept, with its time.
fn nc_step_offers(state: NcState, field: Field) -> bool {
    use NcState::*;
    match field {
        Field::NcDescription => matches!(state, Draft | Open),
        Field::NcOwnerFields | Field::NcExtension => matches!(state, Open | PlanAccepted),
        Field::NcImplementationEvidence => state == PlanAccepted,
        Field::NcVerification | Field::NcVerificationEvidence => state == Implemented,
        Field::AuditHeader | Field::AuditContent | Field::ReviewContent => true,
    }
}

/// What the UI asks about before offering an edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A field of the document.
    Field(Field),
    /// A lifecycle move, by name.
    Move(&'a str),
}

/// May this user make this edit now? The same rules as the validator, plus
/// the audit lock (a locked audit's content is not offered for editing) and
/// the NC's steps ([`nc_step_offers`]).
pub fn may_edit(
    doc: &Automerge,
    author: &Author,
    target: Target<'_>,
    today: Date,
) -> Result<(), Refusal> {
    let ctx = DocContext::read(doc)
        .map_err(|e| refuse(Rule::Schema, format!("The document cannot be read: {e}")))?;
    let events = Event::read_all(&Reader::now(doc))
        .map_err(|e| refuse(Rule::Schema, format!("The document cannot be read: {e}")))?;
    match target {
        Target::Field(field) => {
            check_field(&ctx, author, field, today)?;
            if ctx.kind == DocKind::Audit
                && field == Field::AuditContent
                && fold::<AuditState>(&events).state.is_locked()
            {
                return Err(refuse(
                    Rule::AuditLocked,
                    "The audit is locked for review: edits are kept as late edits for the lead auditor.",
                ));
            }
            if ctx.kind == DocKind::Nc {
                let state = fold::<NcState>(&events).state;
                if !nc_step_offers(state, field) {
                    return Err(refuse(
                        Rule::NcStep,
                        format!("{field} is not written while the NC is '{state}'."),
                    ));
                }
            }
            Ok(())
        }
        Target::Move(mv) => match ctx.kind {
            DocKind::Audit => {
                check_move(&ctx, author, mv, fold::<AuditState>(&events).state, today)
            }
            DocKind::Nc => check_move(&ctx, author, mv, fold::<NcState>(&events).state, today),
            DocKind::Review => Err(refuse(
                Rule::MoveTable,
                "Management reviews have no lifecycle moves.",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::Demo;

    #[test]
    fn roles_and_team_roles_are_spelled_as_stored_and_read_back() {
        let spelled: Vec<(String, String)> = Role::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), r.to_string()))
            .collect();
        let want = ["auditor", "process_owner", "nodal_officer", "admin"];
        assert_eq!(spelled, want.map(|w| (w.to_owned(), w.to_owned())).to_vec());
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("auditors".parse::<Role>().is_err());
        for (t, name) in [(TeamRole::Lead, "lead"), (TeamRole::Member, "member")] {
            assert_eq!((t.as_str(), t.to_string()), (name, name.to_owned()));
            assert_eq!(name.parse::<TeamRole>(), Ok(t));
        }
        assert!("leader".parse::<TeamRole>().is_err());
    }

    #[test]
    fn a_process_owner_owns_only_their_processes_and_only_while_their_role_is_in_force() {
        let demo = Demo::new();
        let nc = crate::permissions::DocContext::read(&demo.nc()).expect("reads");
        assert!(demo.owner.is(Who::ProcessOwner, &nc, demo.today));
        // Another process's owner in the same unit.
        let mut other = demo.owner.clone();
        other.processes = [(demo.unit.clone(), "P04".parse().expect("code"))].into();
        assert!(!other.is(Who::ProcessOwner, &nc, demo.today));
        // The process still listed, the role ended.
        let mut ended = demo.owner.clone();
        for g in &mut ended.grants {
            g.until = Some("2025-12-31".parse().expect("date"));
        }
        assert!(!ended.is(Who::ProcessOwner, &nc, demo.today));
    }
}
