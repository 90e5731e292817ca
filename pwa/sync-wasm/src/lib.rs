//! PIPELINE SMOKE EXPORTS — temporary.
//!
//! These two functions only prove that the wasm build, the wasm-bindgen glue and
//! the Node tests (`tests/wasm/`) work end to end, including automerge's random
//! actor id in wasm. The real browser glue over sync-core replaces this file.

use sync_core::automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable};
use wasm_bindgen::prelude::*;

/// The version of this crate (the workspace version).
#[wasm_bindgen]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Creates a document (random actor id), writes one key, saves, reloads and
/// checks the key; returns the saved length in bytes.
#[wasm_bindgen]
pub fn new_document_roundtrip() -> Result<usize, JsError> {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "smoke", "ok")?;
    let bytes = doc.save();
    let loaded = AutoCommit::load(&bytes)?;
    match loaded.get(ROOT, "smoke")? {
        Some((value, _)) if value.as_str() == Some("ok") => Ok(bytes.len()),
        other => Err(JsError::new(&format!("reloaded document holds {other:?}"))),
    }
}
