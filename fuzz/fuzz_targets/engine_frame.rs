#![no_main]
//! One frame from a permitted peer into a server engine: see `sync_core::testing::fuzz::engine_frame`.
//!
//! libfuzzer-sys aborts on every panic, even one the engine catches (it
//! catches Automerge's bundle reader panicking, see `engine/wire.rs`):
//! `init` puts back the default hook, so a panic that escapes the engine
//! still aborts (libfuzzer-sys aborts when its own `catch_unwind` sees it)
//! and one the engine turns into an error does not.

libfuzzer_sys::fuzz_target!(
    init: {
        drop(std::panic::take_hook());
    },
    |data: &[u8]| sync_core::testing::fuzz::engine_frame(data)
);
