#![no_main]
//! A permitted author's raw Automerge writes, through the validator: see `sync_core::testing::fuzz::validate`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_core::testing::fuzz::validate(data));
