//! Test support (feature `testing`): the demo unit's people and documents, a
//! deterministic multi-peer simulation over an unreliable in-memory network,
//! the model of the contest property tests, and the bodies of the fuzz targets.

pub mod contest;
pub mod fixtures;
pub mod fuzz;
pub mod sim;
