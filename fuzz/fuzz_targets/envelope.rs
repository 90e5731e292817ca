#![no_main]
//! The envelope decoder, decode-encode-decode: see `sync_core::testing::fuzz::envelope`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_core::testing::fuzz::envelope(data));
