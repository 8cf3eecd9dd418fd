#![no_main]
//! `cargo +nightly fuzz run decode_client`

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::decode_client_target(data));
