//! SQM Field Audit sync core.
pub mod audit;
pub mod date;
pub mod edit;
pub mod ids;
pub mod kind;
pub mod nc;
pub mod permissions;
pub mod review;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
pub mod workflow;
pub use automerge;
pub use kind::DocKind;
