#![no_main]
//! Access and refresh token verification: see `server::fuzzing::jwt`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| server::fuzzing::jwt(data));
