#![no_main]
//! A peer's whole document, bounded, loaded and read: see `sync_core::testing::fuzz::load`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_core::testing::fuzz::load(data));
