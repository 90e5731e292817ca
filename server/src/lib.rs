//! # The SQM Field Audit server
//!
//! The I/O shell around `sync-core` (DESIGN §1): it authenticates people and
//! devices, owns the reference data that decides who may write what, stores
//! documents on SQLite or PostgreSQL, and serves the HTTP API. The binary
//! `sqm` ([`cli`]) runs it; [`http::app`] is the application as a value that
//! tests start on port 0.
//!
//! - [`db`]: the database (one code path for SQLite and PostgreSQL) and its tables.
//! - [`auth`]: passwords, sessions, tokens; [`access`]: rights from reference data.
//! - [`http`]: routes, the error type at the edge, metrics.
//! - [`sync`]: the sync socket and the driver of sync-core's engine.
//! - [`seed`]: the demo unit; [`verify`]: integrity checks of a database.
//! - [`projection`]: the report rows derived from documents; [`reports`]: what is read from them.

pub mod access;
pub mod auth;
pub mod cli;
pub mod client;
pub mod compact;
pub mod config;
pub mod db;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod load;
pub mod projection;
pub mod reports;
pub mod secret;
pub mod seed;
pub mod store;
pub mod sync;
pub mod templates;
pub mod verify;
