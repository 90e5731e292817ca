#![no_main]
//! The login body as the login handler takes it: see `server::fuzzing::login_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| server::fuzzing::login_json(data));
