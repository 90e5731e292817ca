//! One table per document kind: every field an audit, an NC and a
//! management review holds, with its shape, the form of its values, whether
//! the document must hold it, whether it is written only when the document
//! is made, and which part of the document (hence which role, see
//! [`Field::who`]) it belongs to.
//!
//! These tables are the one definition of each kind's fields:
//!
//! - the validator judges every write by them (an unknown key, an object
//!   where a value goes, a value of the wrong form, a field a map must keep,
//!   a field set once, a list only appended to);
//! - the permission rules take the part a write belongs to from them
//!   ([`Field::of`]);
//! - the text rules take from them which text may run over several lines;
//! - the readers and the editor write and read these keys, and every edit
//!   is judged by the validator before it is kept, so an edit that wrote a
//!   field the table lacks would be refused in every test that makes it.
//!
//! Adding a field is one line here, a line in its reader and its editor,
//! and their tests.

use automerge::ScalarValue;

use crate::kind::DocKind;
use crate::permissions::Field;

/// The form a scalar value takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// One line of text.
    Line,
    /// Text of several lines (tabs and line breaks allowed).
    Lines,
    /// The user who sent the change that writes it (who made an entry,
    /// a move, or wrote a text).
    Sender,
    /// A user id.
    User,
    /// A moment, ISO 8601 in UTC.
    Timestamp,
    /// A date, `YYYY-MM-DD`.
    Date,
    /// An SQM clause, e.g. `3.2.1.3`.
    Clause,
    /// A process code, e.g. `P02`.
    Process,
    /// A SHA-256 digest in hex.
    Sha256,
    /// A unit code.
    Unit,
    /// A document id.
    Document,
    /// A finding's id.
    Item,
    /// A finding's classification.
    FindingClass,
    /// An NC's severity (major or minor).
    Severity,
    /// Which due date an extension moves.
    DueKind,
    /// A checklist answer's type.
    AnswerType,
    /// A whole number, 0 or more.
    Count,
    /// A device's provisional number (at most [`crate::nc::MAX_PROVISIONAL`]
    /// characters).
    Provisional,
    /// An Automerge change hash.
    Hash,
}

/// A checklist answer's types, as stored.
pub const ANSWER_TYPES: &[&str] = &["cpna", "yn", "text", "number", "date", "photo"];

impl Form {
    /// Whether text of this form may run over several lines.
    pub fn lines(self) -> bool {
        self == Form::Lines
    }

    /// Whether `value` has this form (a sender is checked against the
    /// sender by the validator; here only that it is a user id). Text is
    /// also bounded by [`crate::schema::MAX_TEXT_BYTES`], checked apart.
    pub fn fits(self, value: &ScalarValue) -> bool {
        use crate::ids;
        let text = match value {
            ScalarValue::Str(s) => s.as_str(),
            ScalarValue::Uint(_) => return self == Form::Count,
            ScalarValue::Int(i) => return self == Form::Count && *i >= 0,
            _ => return false,
        };
        match self {
            Form::Count => false,
            Form::Line | Form::Lines => true,
            Form::Sender | Form::User => text.parse::<ids::UserId>().is_ok(),
            Form::Timestamp => text.parse::<crate::date::Timestamp>().is_ok(),
            Form::Date => text.parse::<crate::date::Date>().is_ok(),
            Form::Clause => text.parse::<ids::ClauseKey>().is_ok(),
            Form::Process => text.parse::<ids::ProcessCode>().is_ok(),
            Form::Sha256 => text.parse::<ids::Sha256Hex>().is_ok(),
            Form::Unit => text.parse::<ids::UnitCode>().is_ok(),
            Form::Document => text.parse::<ids::DocumentId>().is_ok(),
            Form::Item => text.parse::<ids::ItemId>().is_ok(),
            Form::FindingClass => text.parse::<crate::audit::FindingClass>().is_ok(),
            Form::Severity => text.parse::<crate::nc::Severity>().is_ok(),
            Form::DueKind => text.parse::<crate::nc::DueKind>().is_ok(),
            Form::AnswerType => ANSWER_TYPES.contains(&text),
            Form::Provisional => text.chars().count() <= crate::nc::MAX_PROVISIONAL,
            Form::Hash => text.parse::<automerge::ChangeHash>().is_ok(),
        }
    }
}

/// The keys of a map of entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKey {
    /// A checklist item's key ([`crate::ids::ResponseKey`]).
    Response,
    /// An id made on the device ([`crate::ids::ItemId`]).
    Item,
}

impl EntryKey {
    /// Whether `key` is such a key.
    pub fn fits(self, key: &str) -> bool {
        match self {
            EntryKey::Response => key.parse::<crate::ids::ResponseKey>().is_ok(),
            EntryKey::Item => key.parse::<crate::ids::ItemId>().is_ok(),
        }
    }
}

/// An object of a document: what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// A map of these named fields.
    Fields(&'static [Spec]),
    /// A map of entries, each a map of these fields.
    Entries(EntryKey, &'static [Spec]),
    /// A list of maps of these fields.
    Maps(&'static [Spec]),
    /// A list of values of this form.
    Values(Form),
}

impl Object {
    /// The spec of field `key` of a map of named fields.
    pub fn field(self, key: &str) -> Option<&'static Spec> {
        match self {
            Object::Fields(fields) => fields.iter().find(|f| f.key == key),
            _ => None,
        }
    }

    /// What the object under `key` (a field or an entry) or at an index
    /// (`None`) of this one holds, if an object goes there.
    pub fn child(self, key: Option<&str>) -> Option<Object> {
        match (self, key) {
            (Object::Fields(_), Some(k)) => match self.field(k)?.shape {
                Shape::Object(o) => Some(o),
                Shape::Value(_) => None,
            },
            (Object::Entries(_, fields), Some(_)) | (Object::Maps(fields), None) => {
                Some(Object::Fields(fields))
            }
            _ => None,
        }
    }

    /// The fields of each entry or item, for a map of entries or a list of maps.
    pub fn entry(self) -> Option<&'static [Spec]> {
        match self {
            Object::Entries(_, fields) | Object::Maps(fields) => Some(fields),
            Object::Fields(_) | Object::Values(_) => None,
        }
    }

    /// The fields a map of this kind must always hold (its reader needs them).
    pub fn required(self) -> impl Iterator<Item = &'static str> {
        let fields: &'static [Spec] = match self {
            Object::Fields(fields) => fields,
            _ => &[],
        };
        fields.iter().filter(|f| f.required).map(|f| f.key)
    }

    /// The form of a value written under `key` (or, `None`, into a list):
    /// `None` when no value goes there.
    pub fn form(self, key: Option<&str>) -> Option<Form> {
        match (self, key) {
            (Object::Fields(_), Some(k)) => match self.field(k)?.shape {
                Shape::Value(form) => Some(form),
                Shape::Object(_) => None,
            },
            (Object::Values(form), None) => Some(form),
            _ => None,
        }
    }
}

/// What a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A value of this form.
    Value(Form),
    /// An object.
    Object(Object),
}

/// Who writes a field after the document is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Whoever may write the part it belongs to (inside an object: the
    /// part of its top-level field).
    Part(Option<Field>),
    /// Nobody: written when the document is made, never again.
    Once,
    /// The server alone, in a change of its own.
    Server,
}

/// One field of a document kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Its key.
    pub key: &'static str,
    /// What it holds.
    pub shape: Shape,
    /// The map it is in must always hold it.
    pub required: bool,
    /// Who writes it.
    pub writer: Writer,
    /// A list only ever appended to: its items are never changed or removed.
    pub append_only: bool,
    /// A text written with its writer and time beside it (`<key>_by`,
    /// `<key>_at`), so that values two people write at once each show theirs.
    pub signed: bool,
}

const fn value(key: &'static str, form: Form) -> Spec {
    Spec {
        key,
        shape: Shape::Value(form),
        required: false,
        writer: Writer::Part(None),
        append_only: false,
        signed: false,
    }
}

const fn object(key: &'static str, object: Object) -> Spec {
    Spec {
        shape: Shape::Object(object),
        ..value(key, Form::Line)
    }
}

impl Spec {
    const fn required(self) -> Spec {
        Spec {
            required: true,
            ..self
        }
    }

    const fn once(self) -> Spec {
        Spec {
            writer: Writer::Once,
            ..self
        }
    }

    const fn by(self, part: Field) -> Spec {
        Spec {
            writer: Writer::Part(Some(part)),
            ..self
        }
    }

    const fn append_only(self) -> Spec {
        Spec {
            append_only: true,
            ..self
        }
    }

    const fn signed(self) -> Spec {
        Spec {
            signed: true,
            ..self
        }
    }

    /// The part of the document it belongs to (a top-level field's).
    pub fn part(&self) -> Option<Field> {
        match self.writer {
            Writer::Part(part) => part,
            Writer::Once | Writer::Server => None,
        }
    }
}

/// A file attached to an answer or a finding.
const EVIDENCE: &[Spec] = &[
    value("sha256", Form::Sha256).required(),
    value("name", Form::Line).required(),
    value("mime", Form::Line).required(),
    value("size", Form::Count).required(),
    value("taken_at", Form::Timestamp),
];

/// A file attached to an NC, with who attached it and when.
const NC_EVIDENCE: &[Spec] = &[
    value("sha256", Form::Sha256).required(),
    value("name", Form::Line).required(),
    value("mime", Form::Line).required(),
    value("size", Form::Count).required(),
    value("taken_at", Form::Timestamp),
    value("by", Form::Sender).required(),
    value("at", Form::Timestamp).required(),
];

/// A lifecycle move of an NC.
const EVENT: &[Spec] = &[
    value("move", Form::Line).required(),
    value("from", Form::Line).required(),
    value("by", Form::Sender).required(),
    value("at", Form::Timestamp).required(),
    value("note", Form::Lines),
];

/// A lifecycle move of an audit: its `heads` name the state the audit was
/// in when the move was made (the state a move to review locks).
const AUDIT_EVENT: &[Spec] = &[
    value("move", Form::Line).required(),
    value("from", Form::Line).required(),
    value("by", Form::Sender).required(),
    value("at", Form::Timestamp).required(),
    value("note", Form::Lines),
    object("heads", Object::Values(Form::Hash)),
];

/// An audit's header.
const HEADER: &[Spec] = &[
    value("unit", Form::Unit).required().once(),
    value("number", Form::Line).required().once(),
    object("scope", Object::Values(Form::Line)),
    value("template", Form::Count).required().once(),
    value("lead", Form::User).required().once(),
    object("team", Object::Values(Form::User)),
    value("start", Form::Date).required(),
    value("end", Form::Date),
];

/// An answer to a checklist item.
const RESPONSE: &[Spec] = &[
    value("type", Form::AnswerType).required(),
    // A text answer may run over lines; other answers must parse besides.
    value("value", Form::Lines),
    value("note", Form::Lines),
    object("evidence", Object::Maps(EVIDENCE)),
    value("by", Form::Sender).required(),
    value("at", Form::Timestamp).required(),
];

/// A finding.
const FINDING: &[Spec] = &[
    value("class", Form::FindingClass).required(),
    value("clause", Form::Clause).required(),
    value("process", Form::Process),
    value("text", Form::Lines).required(),
    object("evidence", Object::Maps(EVIDENCE)),
    value("by", Form::Sender).required(),
    value("at", Form::Timestamp).required(),
];

/// A corrective action (NC) or an action item (review).
const ACTION: &[Spec] = &[
    value("text", Form::Lines).required(),
    value("owner", Form::Line).required(),
    value("target", Form::Date).required(),
    value("done_on", Form::Date),
    value("by", Form::Sender),
    value("at", Form::Timestamp),
];

/// An NC's verification.
const VERIFICATION: &[Spec] = &[
    value("note", Form::Lines),
    value("by", Form::Sender),
    value("on", Form::Date),
];

/// A due-date extension.
const EXTENSION: &[Spec] = &[
    value("of", Form::DueKind).required(),
    value("due", Form::Date).required(),
    value("justification", Form::Lines).required(),
    value("by", Form::Sender).required(),
    value("at", Form::Timestamp).required(),
    // The owner's request it grants, if any.
    value("request", Form::Item),
];

/// A process owner's request for a later due date.
const EXTENSION_REQUEST: &[Spec] = &[
    value("id", Form::Item).required(),
    value("of", Form::DueKind).required(),
    value("due", Form::Date).required(),
    value("justification", Form::Lines).required(),
    value("by", Form::Sender).required(),
    value("at", Form::Timestamp).required(),
];

/// A nodal officer's refusal of a request.
const EXTENSION_REFUSAL: &[Spec] = &[
    value("request", Form::Item).required(),
    value("reason", Form::Lines).required(),
    value("by", Form::Sender).required(),
    value("at", Form::Timestamp).required(),
];

/// The lifecycle events of an audit or an NC.
const fn events(event: &'static [Spec]) -> Spec {
    object("events", Object::Maps(event)).once().append_only()
}

/// An audit document.
pub const AUDIT: &[Spec] = &[
    value("schema", Form::Line).required().once(),
    value("v", Form::Count).required().once(),
    value("id", Form::Document).required().once(),
    object("header", Object::Fields(HEADER))
        .required()
        .by(Field::AuditHeader),
    object("responses", Object::Entries(EntryKey::Response, RESPONSE)).by(Field::AuditContent),
    object("findings", Object::Entries(EntryKey::Item, FINDING)).by(Field::AuditContent),
    value("notes", Form::Lines).signed().by(Field::AuditContent),
    value("notes_by", Form::Sender).by(Field::AuditContent),
    value("notes_at", Form::Timestamp).by(Field::AuditContent),
    events(AUDIT_EVENT),
];

/// An NC document.
pub const NC: &[Spec] = &[
    value("schema", Form::Line).required().once(),
    value("v", Form::Count).required().once(),
    value("id", Form::Document).required().once(),
    value("unit", Form::Unit).required().once(),
    value("audit", Form::Document).required().once(),
    value("finding", Form::Item).required().once(),
    // None for an NC on a clause no process carries (its nodal officers answer it).
    value("process", Form::Process).once(),
    value("clause", Form::Clause).required().once(),
    value("class", Form::Severity).required().once(),
    value("raised_on", Form::Date).required().once(),
    value("provisional", Form::Provisional).once(),
    Spec {
        writer: Writer::Server,
        ..value(crate::nc::SERVER_NUMBER, Form::Line)
    },
    value("description", Form::Lines)
        .signed()
        .by(Field::NcDescription),
    value("description_by", Form::Sender).by(Field::NcDescription),
    value("description_at", Form::Timestamp).by(Field::NcDescription),
    value("correction", Form::Lines)
        .signed()
        .by(Field::NcOwnerFields),
    value("correction_by", Form::Sender).by(Field::NcOwnerFields),
    value("correction_at", Form::Timestamp).by(Field::NcOwnerFields),
    value("root_cause", Form::Lines)
        .signed()
        .by(Field::NcOwnerFields),
    value("root_cause_by", Form::Sender).by(Field::NcOwnerFields),
    value("root_cause_at", Form::Timestamp).by(Field::NcOwnerFields),
    object("actions", Object::Entries(EntryKey::Item, ACTION)).by(Field::NcOwnerFields),
    object("verification", Object::Fields(VERIFICATION)).by(Field::NcVerification),
    object("extensions", Object::Maps(EXTENSION))
        .by(Field::NcExtension)
        .append_only(),
    object(
        crate::nc::EXTENSION_REQUESTS,
        Object::Maps(EXTENSION_REQUEST),
    )
    .by(Field::NcOwnerFields)
    .append_only(),
    object(
        crate::nc::EXTENSION_REFUSALS,
        Object::Maps(EXTENSION_REFUSAL),
    )
    .by(Field::NcExtension)
    .append_only(),
    object("implementation_evidence", Object::Maps(NC_EVIDENCE))
        .by(Field::NcImplementationEvidence)
        .append_only(),
    object("verification_evidence", Object::Maps(NC_EVIDENCE))
        .by(Field::NcVerificationEvidence)
        .append_only(),
    events(EVENT),
];

/// A management review document.
pub const REVIEW: &[Spec] = &[
    value("schema", Form::Line).required().once(),
    value("v", Form::Count).required().once(),
    value("id", Form::Document).required().once(),
    value("unit", Form::Unit).required().once(),
    value("title", Form::Line)
        .required()
        .by(Field::ReviewContent),
    value("held_on", Form::Date).by(Field::ReviewContent),
    value("inputs", Form::Lines).by(Field::ReviewContent),
    object("decisions", Object::Values(Form::Lines)).by(Field::ReviewContent),
    object("actions", Object::Entries(EntryKey::Item, ACTION)).by(Field::ReviewContent),
    value("minutes", Form::Lines)
        .signed()
        .by(Field::ReviewContent),
    value("minutes_by", Form::Sender).by(Field::ReviewContent),
    value("minutes_at", Form::Timestamp).by(Field::ReviewContent),
];

/// The fields of a document of `kind` (its root map).
pub fn of(kind: DocKind) -> &'static [Spec] {
    match kind {
        DocKind::Audit => AUDIT,
        DocKind::Nc => NC,
        DocKind::Review => REVIEW,
    }
}

/// The root of a document of `kind`.
pub fn root(kind: DocKind) -> Object {
    Object::Fields(of(kind))
}

/// The spec of root field `key` of a document of `kind`.
pub fn field(kind: DocKind, key: &str) -> Option<&'static Spec> {
    root(kind).field(key)
}

/// The root text fields of `kind` written with their writer and time
/// beside them ([`Spec::signed`]).
pub fn signed(kind: DocKind) -> impl Iterator<Item = &'static str> {
    of(kind).iter().filter(|f| f.signed).map(|f| f.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(fields: &'static [Spec], out: &mut Vec<&'static [Spec]>) {
        out.push(fields);
        for f in fields {
            match f.shape {
                Shape::Object(Object::Fields(inner) | Object::Entries(_, inner))
                | Shape::Object(Object::Maps(inner)) => objects(inner, out),
                _ => {}
            }
        }
    }

    #[test]
    fn keys_are_unique_within_each_map() {
        for kind in [DocKind::Audit, DocKind::Nc, DocKind::Review] {
            let mut maps = Vec::new();
            objects(of(kind), &mut maps);
            for fields in maps {
                let mut keys: Vec<_> = fields.iter().map(|f| f.key).collect();
                keys.sort_unstable();
                let len = keys.len();
                keys.dedup();
                assert_eq!(keys.len(), len, "{kind}: a key twice in {fields:?}");
            }
        }
    }

    #[test]
    fn a_map_requires_at_most_sixteen_fields() {
        // The validator keeps which of them a new map was given in 16 bits.
        for kind in [DocKind::Audit, DocKind::Nc, DocKind::Review] {
            let mut maps = Vec::new();
            objects(of(kind), &mut maps);
            for fields in maps {
                assert!(Object::Fields(fields).required().count() <= 16);
            }
        }
    }

    #[test]
    fn every_root_field_is_set_once_or_written_by_the_server_or_by_a_part() {
        for kind in [DocKind::Audit, DocKind::Nc, DocKind::Review] {
            for f in of(kind) {
                assert!(
                    matches!(
                        f.writer,
                        Writer::Once | Writer::Server | Writer::Part(Some(_))
                    ),
                    "{kind}: nobody writes {}",
                    f.key
                );
            }
        }
    }

    #[test]
    fn every_signed_text_has_its_writer_and_time_in_its_part() {
        for kind in [DocKind::Audit, DocKind::Nc, DocKind::Review] {
            for key in signed(kind) {
                let text = field(kind, key).expect("the text");
                let by = field(kind, &format!("{key}_by")).expect("its writer");
                let at = field(kind, &format!("{key}_at")).expect("its time");
                assert_eq!(by.shape, Shape::Value(Form::Sender), "{key}_by");
                assert_eq!(at.shape, Shape::Value(Form::Timestamp), "{key}_at");
                assert_eq!((by.writer, at.writer), (text.writer, text.writer), "{key}");
            }
        }
    }

    #[test]
    fn forms_take_what_the_documents_hold_and_nothing_else() {
        let s = |t: &str| ScalarValue::Str(t.into());
        let cases: &[(Form, ScalarValue, bool)] = &[
            (Form::Count, ScalarValue::Uint(3), true),
            (Form::Count, ScalarValue::Int(0), true),
            (Form::Count, ScalarValue::Int(-1), false),
            (Form::Count, s("3"), false),
            (Form::Line, ScalarValue::Uint(3), false),
            (Form::Lines, s("a\nb"), true),
            (Form::Date, s("2026-01-15"), true),
            (Form::Date, s("15-01-2026"), false),
            (Form::Severity, s("major"), true),
            (Form::Severity, s("observation"), false),
            (Form::FindingClass, s("observation"), true),
            (Form::AnswerType, s("cpna"), true),
            (Form::AnswerType, s("cpn"), false),
            (
                Form::Provisional,
                s(&"x".repeat(crate::nc::MAX_PROVISIONAL)),
                true,
            ),
            (
                Form::Provisional,
                s(&"x".repeat(crate::nc::MAX_PROVISIONAL + 1)),
                false,
            ),
            (Form::Sender, s("k.iyer"), true),
            (Form::User, s("K IYER"), false),
            (Form::Line, ScalarValue::Boolean(true), false),
        ];
        for (form, v, fits) in cases {
            assert_eq!(form.fits(v), *fits, "{form:?} {v:?}");
        }
    }
}
