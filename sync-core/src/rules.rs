//! Every rule a change or an edit can be refused by, with the stable code a
//! refusal carries (`Refusal::rule`), sent to the device and stored with the
//! quarantined changes. A refusal can only name a rule of this list (see
//! `permissions::refuse`), and a test (`tests/rules.rs`) fails when a rule
//! is asserted by no test.

macro_rules! rules {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// A rule a change or an edit can be refused by.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $($(#[$doc])* $variant,)*
        }

        impl Rule {
            /// Every rule.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The stable code that names it in refusals.
            pub const fn code(self) -> &'static str {
                match self {
                    $(Rule::$variant => $code,)*
                }
            }
        }
    };
}

rules! {
    /// The document does not read as its kind after the change, or cannot be read at all.
    Schema = "schema",
    /// The document's root is not a map.
    SchemaRoot = "schema.root",
    /// A field no document of that kind has.
    SchemaUnknownField = "schema.unknown_field",
    /// A control character (or a tab or line break where text is one line).
    TextControl = "text.control",
    /// The changes could not be applied.
    ChangeMalformed = "change.malformed",
    /// A write into an object the document does not have.
    ChangeUnknownObject = "change.unknown_object",
    /// A change made under an actor id not registered to the sending device.
    ActorNotRegistered = "actor.not_registered",
    /// More changes in one batch than may be judged at once.
    BatchSize = "batch.size",
    /// The changes claim another document than the one they were sent for.
    DocId = "doc.id",
    /// The author may not create a document of that kind there.
    DocCreate = "doc.create",
    /// The author may no longer see or edit the document.
    DocNotPermitted = "doc.not_permitted",
    /// A field written when the document is made, never again.
    DocWriteOnce = "doc.write_once",
    /// After the batch the document no longer reads.
    DocUnreadable = "doc.unreadable",
    /// An audit's header: its lead's alone.
    AuditHeader = "audit.header",
    /// An audit's answers, findings, evidence and notes: its team's.
    AuditContent = "audit.content",
    /// A write that settles concurrent answers or findings: the lead auditor's.
    AuditSettle = "audit.settle",
    /// A write to an audit locked for review, other than a late edit.
    AuditLocked = "audit.locked",
    /// A new audit or NC that does not match its planned audit.
    AuditPlan = "audit.plan",
    /// An audit goes to review only with every required checklist item
    /// answered and evidence for every shortfall that needs it.
    AuditChecklist = "audit.checklist",
    /// An NC's description: its audit team's.
    NcDescription = "nc.description",
    /// An NC's correction, root cause and actions: its process owner's.
    NcOwnerFields = "nc.owner_fields",
    /// An NC's verification: an independent auditor's.
    NcVerification = "nc.verification",
    /// A due-date extension of an NC: a nodal officer's.
    NcExtension = "nc.extension",
    /// An extension must be justified and move its due date later.
    NcExtensionTerms = "nc.extension.terms",
    /// Extensions are only ever added.
    NcExtensionAppendOnly = "nc.extension.append_only",
    /// Each part of an NC is written at its step (the plan while open, the
    /// actions' completion once the plan is accepted, the verification once
    /// they are reported done, nothing once closed): the tablet's own check,
    /// like the audit lock.
    NcStep = "nc.step",
    /// A management review: its unit's nodal officers'.
    ReviewContent = "review.content",
    /// Lifecycle events are only ever appended.
    EventsAppendOnly = "events.append_only",
    /// A move's `by` must name its sender.
    MoveBy = "move.by",
    /// An entry's `by` (an answer, a finding, an extension ...) must name its sender.
    EntryBy = "entry.by",
    /// No such move from the state it names.
    MoveTable = "move.table",
    /// The author may not make that move.
    MoveWho = "move.who",
    /// What the move requires is not in place.
    MoveRequirement = "move.requirement",
    /// The connection has no authenticated user.
    Auth = "auth",
    /// The server's database refused to store the changes (kept aside).
    StoreFailed = "store.failed",
    /// An edit of the wrong kind for the document (the tablet's own check).
    EditKind = "edit.kind",
    /// An edit Automerge could not make, or a refused document the tablet
    /// could not rebuild without its refused changes (the tablet's own check).
    EditFailed = "edit.failed",
    /// A device's operation asked of a server engine.
    EngineSide = "engine.side",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_dotted_lower_case() {
        let mut seen = std::collections::BTreeSet::new();
        for rule in Rule::ALL {
            let code = rule.code();
            assert!(seen.insert(code), "{code} twice");
            assert!(
                code.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{code}"
            );
        }
    }
}
