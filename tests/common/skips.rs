//! Documented opt-outs, never silent: a test skipped by one writes a line to
//! the run's skip list (`$SHARDLINE_SKIP_LOG`, which `scripts/test.sh` sets
//! and prints at the end of the run) and to the real stderr.

use std::io::Write;

/// True (and the skip recorded) when the environment variable `var` is set:
/// the caller then returns without running `test`.
pub fn opted_out(test: &str, var: &str, why: &str) -> bool {
    if std::env::var_os(var).is_none() {
        return false;
    }
    let line = format!("SKIPPED {test}: {var} is set ({why})\n");
    // Straight to the process's stderr: the harness captures eprintln!.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os("SHARDLINE_SKIP_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open the skip list {path:?}: {e}"));
        f.write_all(line.as_bytes())
            .unwrap_or_else(|e| panic!("write the skip list {path:?}: {e}"));
    }
    true
}
