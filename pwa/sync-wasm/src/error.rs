//! What the glue reports to its caller: bad input from JS, an unknown
//! document, or a refusal by sync-core's rules (which carries the rule's name).

use std::fmt::Display;
use std::str::FromStr;

use sync_core::ids::DocumentId;
use sync_core::permissions::Refusal;

/// Why a call into the glue did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    /// An argument did not parse (JSON, id, date, hex ...).
    #[error("{what}: {problem}")]
    BadInput {
        /// Which argument or field.
        what: String,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// The device holds no document with this id.
    #[error("there is no document {0} on this device")]
    UnknownDocument(DocumentId),
    /// Saved bytes that are not a readable SQM document, or not the one named.
    #[error("{0}")]
    BadDocument(String),
    /// The rules refused the edit; `rule` names the rule, as in sync-core.
    #[error("refused ({}): {}", .0.rule, .0.message)]
    Refused(Refusal),
}

impl GlueError {
    /// A bad argument or field.
    pub(crate) fn input(what: impl Into<String>, problem: impl Display) -> GlueError {
        GlueError::BadInput {
            what: what.into(),
            problem: problem.to_string(),
        }
    }
}

impl From<Refusal> for GlueError {
    fn from(refusal: Refusal) -> Self {
        GlueError::Refused(refusal)
    }
}

/// Parses `text` with the type's `FromStr`, naming `what` on failure.
pub(crate) fn parse<T>(what: &str, text: &str) -> Result<T, GlueError>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse().map_err(|e| GlueError::input(what, e))
}

/// Parses an optional value.
pub(crate) fn parse_opt<T>(what: &str, text: Option<&str>) -> Result<Option<T>, GlueError>
where
    T: FromStr,
    T::Err: Display,
{
    text.map(|t| parse(what, t)).transpose()
}
