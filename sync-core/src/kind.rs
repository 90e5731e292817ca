//! The three kinds of document (DESIGN §2).

use std::fmt;
use std::str::FromStr;

/// Which schema a document follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocKind {
    /// An internal audit: header, checklist responses, findings, evidence, notes.
    Audit,
    /// One non-conformance and its workflow.
    Nc,
    /// A management review.
    Review,
}

impl DocKind {
    /// Every kind, in wire-code order.
    pub const ALL: [DocKind; 3] = [DocKind::Audit, DocKind::Nc, DocKind::Review];

    /// The schema name stored in the document's root `schema` field.
    pub fn schema(self) -> &'static str {
        match self {
            DocKind::Audit => "sqm.audit",
            DocKind::Nc => "sqm.nc",
            DocKind::Review => "sqm.review",
        }
    }

    /// The one-byte code used on the wire.
    pub fn code(self) -> u8 {
        match self {
            DocKind::Audit => 1,
            DocKind::Nc => 2,
            DocKind::Review => 3,
        }
    }

    /// The kind for a wire code.
    pub fn from_code(code: u8) -> Option<DocKind> {
        DocKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The kind for a schema name.
    pub fn from_schema(schema: &str) -> Option<DocKind> {
        DocKind::ALL.into_iter().find(|k| k.schema() == schema)
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DocKind::Audit => "audit",
            DocKind::Nc => "nc",
            DocKind::Review => "review",
        })
    }
}

impl FromStr for DocKind {
    type Err = crate::ids::IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocKind::ALL
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| crate::ids::IdError {
                what: "document kind",
                value: s.chars().take(64).collect(),
                rule: "use audit, nc or review",
            })
    }
}
