#![no_main]
//! One frame from a permitted peer into a server engine: see `sync_core::testing::fuzz::engine_frame`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_core::testing::fuzz::engine_frame(data));
