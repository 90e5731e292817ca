//! Test support (feature `testing`): the demo unit's people and documents, a
//! deterministic multi-peer simulation over an unreliable in-memory network,
//! and the bodies of the fuzz targets.

pub mod fixtures;
pub mod fuzz;
pub mod sim;
