//! Test support (feature `testing`): the demo unit's people and documents, and
//! a deterministic multi-peer simulation over an unreliable in-memory network.

pub mod fixtures;
pub mod sim;
