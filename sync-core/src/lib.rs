//! # SQM Field Audit sync core
//!
//! The domain of the audit tool over Automerge, with no I/O: the same code
//! runs in the server (before a change is stored) and, compiled to
//! WebAssembly, on the tablet (before a change is made).
//!
//! - [`audit`], [`nc`], [`review`]: typed documents; reading never panics and a
//!   document that does not match its schema is a [`schema::SchemaError`] naming the path.
//! - [`workflow`]: lifecycles as convergent folds over appended move events,
//!   the move tables, due dates and escalation.
//! - [`fields`]: one table per document kind, the one definition of its fields.
//! - [`permissions`]: who may write what; [`validate`]: whether a batch of
//!   incoming changes may be stored; [`edit`]: the one way a device edits;
//!   [`text`]: which characters text may hold, and quoting device text in messages.
//! - [`envelope`]: the binary frame; [`engine`]: the sans-IO sync engine
//!   (events in, effects out, time passed in).
//! - `testing` (feature): the demo unit and a deterministic multi-peer simulation.
pub mod audit;
pub mod checklist;
pub mod date;
pub mod describe;
pub mod edit;
pub mod engine;
pub mod envelope;
pub mod fields;
pub mod ids;
pub mod inflate;
pub mod kind;
pub mod nc;
pub mod permissions;
pub mod review;
pub mod rules;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod validate;
pub mod workflow;

pub use automerge;
pub use kind::DocKind;
