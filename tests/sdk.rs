//! The browser side, run from `cargo test` against this build's binary:
//!
//! - the TypeScript SDK's own tests (`clients/typescript`, `npm test`, TAP
//!   reporter): a real server, hello/join/state updates, two players, ping,
//!   region probing, reconnect and resume after the server or the network
//!   drops the connection, a fleet on a real redis-server; every test
//!   declared in `test/*.test.ts` must have run and passed;
//! - the SDK's generated code, its built `dist/` and the browser bundle the
//!   binary embeds (`web/demo/shardline.js`) are fresh against `schemas/`
//!   and the SDK's sources;
//! - the SDK installs into an empty project exactly as the README says, and
//!   the README's Node snippet plays against a real server;
//! - end-to-end in Debian's Chromium (`tests/browser/e2e.mjs`, playwright-core):
//!   two demo pages in one instance see each other move (protocol version 2,
//!   the world rebuilt from deltas), a version 1 page and a version 2 page
//!   show the same world, the dashboard plots percentiles for every shard,
//!   and a fleet demo. Screenshots: `target/browser-screenshots/`.
//!
//! Node.js 20+, npm, Chromium and redis-server are required, and the npm
//! packages installed (`bash scripts/setup-test-tools.sh` does it): a missing
//! one fails these tests naming what to install; nothing is skipped.
//! Every npm/node process runs in a process group killed with the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use common::procs::{describe, finish_within, Proc};
use common::temp::TempDir;

/// The tests below start servers and a browser and measure time-sensitive
/// things (reconnects, RTT); on a small machine they must not run at once.
static SERIAL: Mutex<()> = Mutex::new(());

/// Bound on one npm or node command: the SDK's test run takes ~40 s and
/// the browser run ~30 s on an idle 2-core machine, an `npm install` from
/// the registry well under a minute; beside two CPU hogs and a build the
/// browser run (four tests, each wait bounded at 60 s) took over 120 s.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

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

/// Runs `program args` in `dir` (a process tree: npm → node → servers,
/// browsers), with the server binary of this build in `SHARDLINE_BIN` and
/// the test tools on `PATH`; the whole tree is killed after
/// [`COMMAND_TIMEOUT`], which fails the test.
fn run(dir: &Path, program: &str, args: &[&str]) -> Run {
    let mut cmd = Proc::tree_command(program);
    cmd.args(args)
        .current_dir(dir)
        .env("PATH", common::tools_path())
        .env("SHARDLINE_BIN", env!("CARGO_BIN_EXE_shardline"))
        .env("SCREENSHOT_DIR", screenshots())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn_tree(&mut cmd).expect("start sh");
    let out = finish_within(&mut p, COMMAND_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The reaper shell exits 127 when the program is not installed.
    assert!(
        out.status.code() != Some(127),
        "cannot run `{program}`: {stderr}\nNode.js 20+ with npm is required (https://nodejs.org; \
         Debian 12's nodejs is too old)"
    );
    Run {
        ok: out.status.success(),
        status: describe(out.status),
        stdout,
        stderr,
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

/// Node 20+ is there, and the package's npm dependencies are installed and
/// match its lock file (the hash `scripts/setup-test-tools.sh` writes after
/// `npm ci`).
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
    let lock = std::fs::read(dir.join("package-lock.json")).expect("package-lock.json");
    let want = sha256_hex(&lock);
    let have = std::fs::read_to_string(dir.join("node_modules/.shardline-lock.sha256"))
        .unwrap_or_default();
    assert_eq!(
        have.trim(),
        want,
        "the npm packages of {} are missing or older than its package-lock.json: \
         run bash scripts/setup-test-tools.sh (npm ci)",
        dir.display()
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The counts in a TAP run's closing comments (`# tests 40`, `# pass 40`, …).
#[derive(Debug, Default, PartialEq)]
struct TapSummary {
    tests: u64,
    pass: u64,
    fail: u64,
    cancelled: u64,
    skipped: u64,
    todo: u64,
}

fn tap_summary(tap: &str) -> TapSummary {
    let mut s = TapSummary::default();
    let mut seen = 0;
    for line in tap.lines() {
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(n), None) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse() else { continue };
        let slot = match name {
            "tests" => &mut s.tests,
            "pass" => &mut s.pass,
            "fail" => &mut s.fail,
            "cancelled" => &mut s.cancelled,
            "skipped" => &mut s.skipped,
            "todo" => &mut s.todo,
            _ => continue,
        };
        *slot = n;
        seen += 1;
    }
    assert_eq!(
        seen, 6,
        "no complete TAP summary (tests/pass/fail/cancelled/skipped/todo) in:\n{tap}"
    );
    s
}

/// How many top-level `test(` calls the files declare: every one must run.
fn declared_tests(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
                .lines()
                .filter(|l| l.starts_with("test("))
                .count() as u64
        })
        .sum()
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Every declared test ran and passed: none failed, was cancelled (a
/// failed `before` hook, a timeout), skipped or left to do.
fn assert_all_passed(what: &str, run: &Run, declared: u64) {
    let s = tap_summary(&run.stdout);
    let want = TapSummary {
        tests: declared,
        pass: declared,
        ..Default::default()
    };
    assert_eq!(
        s, want,
        "{what}: {declared} tests declared, every one must run and pass:\n{}\n{}",
        run.stdout, run.stderr
    );
}

#[test]
fn tap_summaries_are_read_whole() {
    let tap = "TAP version 13\nok 1 - a\n1..1\n# tests 3\n# suites 0\n# pass 2\n# fail 0\n\
               # cancelled 0\n# skipped 1\n# todo 0\n# duration_ms 5.1\n";
    assert_eq!(
        tap_summary(tap),
        TapSummary {
            tests: 3,
            pass: 2,
            skipped: 1,
            ..Default::default()
        }
    );
}

#[test]
fn sdk_tests_pass() {
    let _g = serial();
    let dir = repo().join("clients/typescript");
    npm_ready(&dir);
    common::redis::require("redis-server", "redis-server");
    let r = must(&dir, "npm", &["test"]);
    println!("{}", r.stdout);
    let declared = declared_tests(&files_ending(&dir.join("test"), ".test.ts"));
    assert!(
        declared > 0,
        "no test( in clients/typescript/test/*.test.ts"
    );
    assert_all_passed("the SDK's tests", &r, declared);
}

#[test]
fn sdk_generated_code_dist_and_browser_bundle_are_fresh() {
    let _g = serial();
    let dir = repo().join("clients/typescript");
    npm_ready(&dir);
    // flatc 25.12.19 (scripts/setup-test-tools.sh installs it), as for the Rust code.
    let r = run(&dir, "npm", &["run", "--silent", "check-generated"]);
    assert!(
        r.ok,
        "clients/typescript/src/generated/ is stale or flatc is missing.\n\
         Stale: cd clients/typescript && npm run generate\n\
         No flatc: bash scripts/setup-test-tools.sh\n{}{}",
        r.stdout, r.stderr
    );
    let r = run(&dir, "npm", &["run", "--silent", "check-dist"]);
    assert!(
        r.ok,
        "clients/typescript/dist/ is stale: cd clients/typescript && npm run build\n{}{}",
        r.stdout, r.stderr
    );
    let r = run(&dir, "npm", &["run", "--silent", "check-web"]);
    assert!(
        r.ok,
        "web/demo/shardline.js is stale: cd clients/typescript && npm run build:web\n{}{}",
        r.stdout, r.stderr
    );
}

/// The fenced block of `lang` right after `marker` in the README.
fn readme_block(readme: &str, marker: &str, lang: &str) -> String {
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md lost its marker {marker:?}"));
    let fence = format!("```{lang}\n");
    let start = readme[at..]
        .find(&fence)
        .map(|i| at + i + fence.len())
        .unwrap_or_else(|| panic!("no ```{lang} block after {marker:?} in README.md"));
    let end = readme[start..]
        .find("```")
        .map(|i| start + i)
        .expect("the block ends");
    readme[start..end].to_owned()
}

#[test]
fn sdk_installs_in_an_empty_project_as_the_readme_says() {
    let _g = serial();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    // The README's install commands, with its placeholder for the clone's
    // path replaced by this checkout, run in an empty directory.
    let install = readme_block(&readme, "<!-- sdk-install -->", "sh")
        .replace("~/shardline", repo().to_str().unwrap());
    let snippet = readme_block(&readme, "<!-- sdk-snippet -->", "js");
    let file = snippet
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the snippet's first line names its file: // play.mjs …")
        .to_owned();
    let scratch = TempDir::new("sdk-install");
    let installed = must(&scratch, "sh", &["-ec", &install]);
    // The install made exactly one project directory; the snippet goes there.
    let project = std::fs::read_dir(&*scratch)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("package.json").is_file())
        .expect("the README's commands make a project directory");
    assert!(
        project
            .join("node_modules/shardline-client/dist/index.js")
            .is_file(),
        "shardline-client is not installed in {}; the install said:\n{}{}",
        project.display(),
        installed.stdout,
        installed.stderr
    );
    std::fs::write(project.join(&file), &snippet).unwrap();

    let server = common::Server::start(&["--tick-rate", "30"]);
    let url = format!("ws://{}", server.addr());
    let r = must(&project, "node", &[&file, &url]);
    assert!(
        r.stdout.contains("moved right"),
        "the README's snippet did not report its move:\n{}\n{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn browser_end_to_end() {
    let _g = serial();
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's package (apt-get install -y chromium; \
         bash scripts/test.sh does, as root) or set CHROMIUM_PATH"
    );
    common::redis::require("redis-server", "redis-server");
    let dir = repo().join("tests/browser");
    npm_ready(&dir);
    let shots = ["demo-a", "demo-b", "demo-v2", "dashboard"]
        .map(|s| screenshots().join(format!("{s}.png")));
    for p in &shots {
        let _ = std::fs::remove_file(p); // this run must make them anew
    }
    let r = must(&dir, "node", &["--test-reporter=tap", "e2e.mjs"]);
    println!("{}", r.stdout);
    let declared = declared_tests(&[dir.join("e2e.mjs")]);
    assert_all_passed("the browser tests", &r, declared);
    for p in &shots {
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "screenshot {} missing or empty", p.display());
    }
}
