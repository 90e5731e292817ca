//! # sync-wasm: the browser's glue over sync-core
//!
//! A thin shell (DESIGN §1, §7): every rule, view and sync step is sync-core's;
//! this crate only converts between JS values and sync-core types and carries
//! out the engine's effects. It builds for the host too, so native tests and the
//! native peer of `tests/wasm/` run the same conversions as the browser.
//!
//! - [`device::Device`]: the native API (an engine on the device side, the user's
//!   rights, the frame queue); [`js`] exports it to JS as `Device`.
//! - [`author`], [`edit`], [`answer`]: JSON in (the user's rights, edits, "may I?"
//!   targets); answers and evidence have one JSON shape both ways.
//! - [`view`], [`notice`]: JSON out (audit and NC views, notices, may-edit answers).
//!
//! The loop the JS side runs:
//!
//! ```text
//! const device = new Device(actorHex, authorJson);      // rights from reference data
//! device.load(id, bytes) for each stored document;       // before connecting
//! on socket open:     send(device.connect(now))
//! on socket frame:    send(device.receive(frame, now))
//! every ~250 ms:      send(device.tick(now))
//! on a user edit:     device.edit(id, editJson, now); send(device.outgoing())
//! after either:       store device.save(id); show device.audit_view(id) / nc_view(id, today)
//!                     and device.notices() (changed, rejected, withdrawn ...)
//! ```

pub mod answer;
pub mod author;
pub mod device;
pub mod edit;
pub mod error;
pub mod js;
pub mod notice;
pub mod view;

pub use device::Device;
pub use error::GlueError;
