//! Lifecycles as convergent folds (DESIGN §3).
//!
//! A lifecycle move is an event appended to a document's `events` list. The
//! current state is never stored: every replica folds the list in order
//! (Automerge orders concurrent inserts identically everywhere), applies each
//! move whose `from` matches the state reached so far, and records any other
//! as a visible [`TransitionConflict`]. Who may make a move, and what it
//! requires, is the table [`NC_MOVES`] / [`AUDIT_MOVES`], checked by the
//! validator before a move is accepted, and by the UI before it is offered.

use std::fmt;
use std::str::FromStr;

use automerge::{ChangeHash, ObjId};

use crate::date::{Date, Timestamp};
use crate::ids::UserId;
use crate::schema::{Reader, SchemaError, schema_error};

/// A lifecycle's states, parsed from and written as snake_case names.
pub trait Lifecycle: Copy + Eq + fmt::Debug + fmt::Display + FromStr + 'static {
    /// The state before any move.
    const INITIAL: Self;
    /// The table of permitted moves.
    const MOVES: &'static [Move<Self>];
}

macro_rules! states {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every state, in lifecycle order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| UnknownState(s.chars().take(40).collect()))
            }
        }
    };
}

/// A state name that no lifecycle has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{}' is not a known state", crate::text::quote(.0))]
pub struct UnknownState(pub String);

states!(
    /// The states of a non-conformance.
    NcState {
        /// Raised on the device, not yet issued to the process owner.
        Draft = "draft",
        /// Issued; the process owner must respond.
        Open = "open",
        /// Correction, root cause and action plan submitted for review.
        ResponseSubmitted = "response_submitted",
        /// The auditors accepted the plan; actions are under way.
        PlanAccepted = "plan_accepted",
        /// The process owner reports the actions done; awaiting verification.
        Implemented = "implemented",
        /// Verified effective.
        Closed = "closed",
        /// Withdrawn by the lead auditor (raised in error).
        Withdrawn = "withdrawn",
    }
);

states!(
    /// The states of an audit.
    AuditState {
        /// On the programme, not started.
        Planned = "planned",
        /// Fieldwork under way: the team records answers and findings.
        InProgress = "in_progress",
        /// Fieldwork locked for the lead auditor's review.
        InReview = "in_review",
        /// The audit report has been issued.
        ReportIssued = "report_issued",
        /// Closed: every follow-up is done.
        Closed = "closed",
    }
);

impl AuditState {
    /// Whether the audit's content is locked: later edits are kept as late edits.
    pub fn is_locked(self) -> bool {
        matches!(
            self,
            AuditState::InReview | AuditState::ReportIssued | AuditState::Closed
        )
    }
}

/// Who may make a move, decided from reference data (never from document content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Any member of the audit team (for an NC: the team of its audit).
    AuditTeam,
    /// The lead auditor of the audit.
    AuditLead,
    /// A member of the audit team who does not own the NC's process.
    IndependentAuditor,
    /// The owner or deputy owner of the NC's process.
    ProcessOwner,
    /// A nodal officer of the unit.
    NodalOfficer,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Who::AuditTeam => "a member of the audit team",
            Who::AuditLead => "the lead auditor",
            Who::IndependentAuditor => "an auditor of the team who does not own the process",
            Who::ProcessOwner => "the process owner",
            Who::NodalOfficer => "a nodal officer of the unit",
        })
    }
}

/// What must be in place before a move is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The event carries a non-empty note giving the reason.
    Reason,
    /// The NC has a description, a process and a classification.
    Description,
    /// The NC has a correction (immediate fix).
    Correction,
    /// The NC has a root cause.
    RootCause,
    /// The NC has at least one action, each with text, owner and target date.
    ActionPlan,
    /// Every action of the NC is marked done.
    ActionsDone,
    /// The process owner attached at least one file showing the actions done.
    ImplementationEvidence,
    /// The NC has a verification note.
    VerificationNote,
    /// The event records the document heads it applies to (audit locks).
    Heads,
    /// Every required checklist item is answered, and every shortfall on an
    /// item that needs evidence has some (a note or a file).
    ChecklistComplete,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Requirement::Reason => "a reason",
            Requirement::Description => "a description, a process and a classification",
            Requirement::Correction => "a correction",
            Requirement::RootCause => "a root cause",
            Requirement::ActionPlan => "at least one action, each with an owner and a target date",
            Requirement::ActionsDone => "every action marked done",
            Requirement::ImplementationEvidence => "at least one piece of implementation evidence",
            Requirement::VerificationNote => "a verification note",
            Requirement::Heads => "the document version it applies to",
            Requirement::ChecklistComplete => {
                "every required checklist item answered, with evidence for each shortfall that needs it"
            }
        })
    }
}

/// One row of a move table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move<S: 'static> {
    /// The move's stored name, e.g. `submit_response`.
    pub name: &'static str,
    /// The state the move starts from.
    pub from: S,
    /// The state the move leads to.
    pub to: S,
    /// Who may make it.
    pub who: Who,
    /// What must be in place.
    pub requires: &'static [Requirement],
}

use Requirement as R;

/// Every permitted NC move.
pub const NC_MOVES: &[Move<NcState>] = {
    use NcState::*;
    &[
        Move {
            name: "raise",
            from: Draft,
            to: Open,
            who: Who::AuditTeam,
            requires: &[R::Description],
        },
        Move {
            name: "withdraw",
            from: Draft,
            to: Withdrawn,
            who: Who::AuditLead,
            requires: &[R::Reason],
        },
        Move {
            name: "withdraw",
            from: Open,
            to: Withdrawn,
            who: Who::AuditLead,
            requires: &[R::Reason],
        },
        Move {
            name: "submit_response",
            from: Open,
            to: ResponseSubmitted,
            who: Who::ProcessOwner,
            requires: &[R::Correction, R::RootCause, R::ActionPlan],
        },
        Move {
            name: "accept_plan",
            from: ResponseSubmitted,
            to: PlanAccepted,
            who: Who::IndependentAuditor,
            requires: &[],
        },
        Move {
            name: "reject_plan",
            from: ResponseSubmitted,
            to: Open,
            who: Who::IndependentAuditor,
            requires: &[R::Reason],
        },
        Move {
            name: "mark_implemented",
            from: PlanAccepted,
            to: Implemented,
            who: Who::ProcessOwner,
            requires: &[R::ActionsDone, R::ImplementationEvidence],
        },
        Move {
            name: "verify_effective",
            from: Implemented,
            to: Closed,
            who: Who::IndependentAuditor,
            requires: &[R::VerificationNote],
        },
        Move {
            name: "verify_not_effective",
            from: Implemented,
            to: Open,
            who: Who::IndependentAuditor,
            requires: &[R::VerificationNote, R::Reason],
        },
        Move {
            name: "reopen",
            from: Closed,
            to: Open,
            who: Who::NodalOfficer,
            requires: &[R::Reason],
        },
    ]
};

/// Every permitted audit move. `accept_late_edits` keeps the state and moves the lock.
pub const AUDIT_MOVES: &[Move<AuditState>] = {
    use AuditState::*;
    &[
        Move {
            name: "start",
            from: Planned,
            to: InProgress,
            who: Who::AuditLead,
            requires: &[],
        },
        Move {
            name: "submit_for_review",
            from: InProgress,
            to: InReview,
            who: Who::AuditLead,
            requires: &[R::Heads, R::ChecklistComplete],
        },
        Move {
            name: "return_for_edit",
            from: InReview,
            to: InProgress,
            who: Who::AuditLead,
            requires: &[R::Reason],
        },
        Move {
            name: "issue_report",
            from: InReview,
            to: ReportIssued,
            who: Who::AuditLead,
            requires: &[],
        },
        Move {
            name: "close",
            from: ReportIssued,
            to: Closed,
            who: Who::AuditLead,
            requires: &[],
        },
        Move {
            name: "accept_late_edits",
            from: InReview,
            to: InReview,
            who: Who::AuditLead,
            requires: &[R::Heads],
        },
        Move {
            name: "accept_late_edits",
            from: ReportIssued,
            to: ReportIssued,
            who: Who::AuditLead,
            requires: &[R::Heads],
        },
        Move {
            name: "accept_late_edits",
            from: Closed,
            to: Closed,
            who: Who::AuditLead,
            requires: &[R::Heads],
        },
    ]
};

impl Lifecycle for NcState {
    const INITIAL: Self = NcState::Draft;
    const MOVES: &'static [Move<Self>] = NC_MOVES;
}

impl Lifecycle for AuditState {
    const INITIAL: Self = AuditState::Planned;
    const MOVES: &'static [Move<Self>] = AUDIT_MOVES;
}

/// The row for a move name from a state, if the table has one.
pub fn find_move<S: Lifecycle>(name: &str, from: S) -> Option<&'static Move<S>> {
    S::MOVES.iter().find(|m| m.name == name && m.from == from)
}

/// One lifecycle event as stored in a document's `events` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The move's name.
    pub mv: String,
    /// The state the author saw when making the move.
    pub from: String,
    /// Who made it.
    pub by: UserId,
    /// When, by the device's clock (shown to people; never trusted for rules).
    pub at: Timestamp,
    /// The reason or remark typed with the move (may be empty).
    pub note: String,
    /// For audit locks: the document heads the lock applies to.
    pub heads: Vec<ChangeHash>,
}

impl Event {
    /// Reads the event at `events/<index>`.
    pub(crate) fn read(r: &Reader<'_>, list: &ObjId, index: usize) -> Result<Event, SchemaError> {
        let obj = r.map_at(list, index, "events")?;
        Event::read_map(r, &obj, &format!("events/{index}"))
    }

    /// Reads an event from its map object.
    pub(crate) fn read_map(r: &Reader<'_>, obj: &ObjId, path: &str) -> Result<Event, SchemaError> {
        let (obj, path) = (obj.clone(), path.to_owned());
        let heads = r
            .str_list(&obj, "heads", &path)?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                h.parse::<ChangeHash>().map_err(|_| {
                    schema_error(&format!("{path}/heads/{i}"), "expected a change hash")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Event {
            mv: r.str(&obj, "move", &path)?,
            from: r.str(&obj, "from", &path)?,
            by: r.parse(&obj, "by", &path)?,
            at: r.parse(&obj, "at", &path)?,
            note: r.opt_str(&obj, "note", &path)?.unwrap_or_default(),
            heads,
        })
    }

    /// Reads every event of a document (absent list reads as none).
    pub(crate) fn read_all(r: &Reader<'_>) -> Result<Vec<Event>, SchemaError> {
        let Some(list) = r.opt_list(&automerge::ROOT, "events", "")? else {
            return Ok(Vec::new());
        };
        (0..r.len(&list))
            .map(|i| Event::read(r, &list, i))
            .collect()
    }
}

/// A move that could not be applied because the state had moved on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionConflict {
    /// Position of the event in the `events` list.
    pub index: usize,
    /// The move attempted.
    pub mv: String,
    /// The state its author saw.
    pub claimed_from: String,
    /// The state it met when folded.
    pub actual: String,
    /// Who made it.
    pub by: UserId,
    /// When, by the author's device.
    pub at: Timestamp,
}

/// The result of folding a lifecycle's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold<S> {
    /// The state reached.
    pub state: S,
    /// Indexes of the events that were applied, in order.
    pub applied: Vec<usize>,
    /// The events that were not applied, with why.
    pub conflicts: Vec<TransitionConflict>,
}

/// Folds events into a state. Deterministic: the same list gives the same fold everywhere.
pub fn fold<S: Lifecycle>(events: &[Event]) -> Fold<S> {
    let mut state = S::INITIAL;
    let mut applied = Vec::new();
    let mut conflicts = Vec::new();
    for (index, e) in events.iter().enumerate() {
        let row = if e.from == state.to_string() {
            find_move(&e.mv, state)
        } else {
            None
        };
        match row {
            Some(row) => {
                state = row.to;
                applied.push(index);
            }
            None => conflicts.push(TransitionConflict {
                index,
                mv: e.mv.clone(),
                claimed_from: e.from.clone(),
                actual: state.to_string(),
                by: e.by.clone(),
                at: e.at,
            }),
        }
    }
    Fold {
        state,
        applied,
        conflicts,
    }
}

/// How far past its due date an NC is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// At or past the due date.
    L1,
    /// More than 15 days overdue.
    L2,
    /// More than 30 days overdue.
    L3,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::L1 => "L1",
            Level::L2 => "L2",
            Level::L3 => "L3",
        })
    }
}

/// The escalation of something due on `due`, as of `as_of` (derived, never stored).
pub fn escalation(due: Date, as_of: Date) -> Option<Level> {
    match as_of.days_since(due) {
        d if d > 30 => Some(Level::L3),
        d if d > 15 => Some(Level::L2),
        d if d >= 0 => Some(Level::L1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(mv: &str, from: &str) -> Event {
        Event {
            mv: mv.into(),
            from: from.into(),
            by: "k.iyer".parse().expect("valid"),
            at: Timestamp(0),
            note: String::new(),
            heads: Vec::new(),
        }
    }

    #[test]
    fn escalation_levels_are_named_as_the_sqm_names_them() {
        let names: Vec<String> = [Level::L1, Level::L2, Level::L3]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["L1", "L2", "L3"]);
    }

    #[test]
    fn concurrent_moves_from_one_state_apply_once_and_flag_the_other() {
        let events = [
            ev("raise", "draft"),
            ev("submit_response", "open"),
            ev("accept_plan", "response_submitted"),
            ev("reject_plan", "response_submitted"),
        ];
        let f = fold::<NcState>(&events);
        assert_eq!(f.state, NcState::PlanAccepted);
        assert_eq!(f.applied, vec![0, 1, 2]);
        assert_eq!(f.conflicts.len(), 1);
        assert_eq!(f.conflicts[0].mv, "reject_plan");
        assert_eq!(f.conflicts[0].actual, "plan_accepted");
    }

    #[test]
    fn unknown_moves_are_conflicts_not_errors() {
        let f = fold::<NcState>(&[ev("teleport", "draft"), ev("raise", "draft")]);
        assert_eq!(f.state, NcState::Open);
        assert_eq!(f.conflicts[0].mv, "teleport");
    }

    #[test]
    fn escalation_levels_follow_days_overdue() {
        let due: Date = "2025-08-01".parse().expect("valid");
        let cases = [
            (-1, None),
            (0, Some(Level::L1)),
            (15, Some(Level::L1)),
            (16, Some(Level::L2)),
            (30, Some(Level::L2)),
            (31, Some(Level::L3)),
        ];
        for (days, level) in cases {
            assert_eq!(escalation(due, due.add_days(days)), level, "{days} days");
        }
    }

    #[test]
    fn every_state_is_reachable_from_the_initial_one() {
        for target in NcState::ALL {
            let mut seen = vec![NcState::INITIAL];
            let mut i = 0;
            while i < seen.len() {
                let from = seen[i];
                for m in NC_MOVES.iter().filter(|m| m.from == from) {
                    if !seen.contains(&m.to) {
                        seen.push(m.to);
                    }
                }
                i += 1;
            }
            assert!(seen.contains(target), "{target} unreachable");
        }
    }
}
