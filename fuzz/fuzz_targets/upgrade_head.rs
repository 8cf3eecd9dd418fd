#![no_main]
//! `cargo +nightly fuzz run upgrade_head`

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::upgrade_head_target(data));
