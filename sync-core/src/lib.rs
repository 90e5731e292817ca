//! SQM Field Audit sync core.
pub mod date;
pub mod ids;
pub mod kind;
pub use automerge;
pub use kind::DocKind;
