//! WebSocket conformance: the Autobahn testsuite's fuzzing client against
//! `/echo` of a real server, through `scripts/autobahn.sh` (the suite's
//! Python 2.7 virtualenv is made by `scripts/setup-test-tools.sh`, under
//! target/autobahn-venv). Every case must be OK, NON-STRICT, INFORMATIONAL
//! or UNIMPLEMENTED (12.* and 13.*: no permessage-deflate); any FAILED case
//! fails this test, and so does a missing testsuite.
//!
//! `SHARDLINE_SKIP_AUTOBAHN=1` opts out (a machine without Python 2.7):
//! the skip is written to the real stderr and to the run's skip list, which
//! `scripts/test.sh` prints at the end of the run.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::procs::{describe, finish_within, Proc};
use common::temp::TempDir;

/// The whole run takes ~20 s (517 cases, ~70 s on a loaded 2-core
/// machine); past this it has hung.
const AUTOBAHN_TIMEOUT: Duration = Duration::from_secs(900);

#[test]
fn autobahn_fuzzingclient_against_echo_has_no_failed_case() {
    if common::skips::opted_out(
        "autobahn::autobahn_fuzzingclient_against_echo_has_no_failed_case",
        "SHARDLINE_SKIP_AUTOBAHN",
        "no WebSocket conformance run",
    ) {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/autobahn.sh");
    // The script's scratch directory lives in here, so it is removed even
    // if the script is killed.
    let tmp = TempDir::new("autobahn");
    let mut cmd = Proc::tree_command("bash");
    cmd.arg(script)
        .env("SHARDLINE_BIN", env!("CARGO_BIN_EXE_shardline"))
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn_tree(&mut cmd).expect("run scripts/autobahn.sh");
    let out = finish_within(&mut p, AUTOBAHN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The verdict counts are printed on every run: written to the real
    // stderr, which the test harness does not capture (eprintln! it would).
    let summary: String = stdout
        .lines()
        .filter(|l| l.starts_with("autobahn"))
        .map(|l| format!("{l}\n"))
        .collect();
    let _ = std::io::stderr().write_all(summary.as_bytes());
    assert!(
        out.status.success(),
        "scripts/autobahn.sh failed ({}):\n{stdout}\n{stderr}",
        describe(out.status)
    );
    assert!(
        stdout.contains("autobahn behavior:") && !stdout.contains("FAILED"),
        "no verdict summary:\n{stdout}"
    );
}
