//! No process a test starts outlives it, even when the test process itself
//! is killed mid-run (SIGKILL: no destructor runs).
//!
//! This binary runs without libtest's harness (`harness = false` in
//! Cargo.toml) so that it can play both parts: run normally, it starts
//! itself again as the *victim* (`SHARDLINE_CHILDREN_VICTIM=1`), which starts
//! what tests start — a `shardline serve`, a redis-server, and a process
//! tree under the reaper (a shell with a grandchild, as npm → node →
//! server is) — prints their pids and waits. The first part then kills the
//! victim with SIGKILL and checks that every one of those processes is gone
//! within a bound.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::{is_dead, Proc};

const VICTIM_ENV: &str = "SHARDLINE_CHILDREN_VICTIM";
/// How long the victim waits to be killed before giving up on its own.
const VICTIM_LIFETIME: Duration = Duration::from_secs(120);
/// Bound on the victim's start: a server, a redis-server, a shell.
const VICTIM_START_TIMEOUT: Duration = Duration::from_secs(60);
/// The kernel delivers the parent-death signal at once; this only covers a
/// loaded machine's scheduling.
const DEATH_TIMEOUT: Duration = Duration::from_secs(15);

const NAME: &str = "children_die_with_a_test_killed_mid_run";

fn main() {
    if std::env::var_os(VICTIM_ENV).is_some() {
        victim();
        return;
    }
    // The parts of libtest's command line that matter without it: `--list`,
    // and a name filter (`cargo test FILTER` runs only matching tests).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    // libtest's options that take a value (`--test-threads 1`): not filters.
    const WITH_VALUE: [&str; 6] = [
        "--test-threads",
        "--skip",
        "--format",
        "--color",
        "--logfile",
        "-Z",
    ];
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            filters.push(a);
        }
    }
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        println!("running 0 tests (1 filtered out)");
        return;
    }
    children_die_with_a_test_killed_mid_run();
    println!("test {NAME} ... ok");
}

/// Starts what tests start, prints the pids, and waits to be killed.
fn victim() {
    let server = common::Server::start(&[]);
    let redis = common::redis::Redis::start();
    let mut cmd = Proc::tree_command("sh");
    cmd.args(["-c", "sleep 600 & echo grandchild=$!; exec sleep 600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut tree = Proc::spawn_tree(&mut cmd).expect("start the tree");
    let mut line = String::new();
    BufReader::new(tree.take_stdout().unwrap())
        .read_line(&mut line)
        .expect("the tree's grandchild pid");
    println!(
        "victim ready: server={} redis={} reaper={} {}",
        server.pid(),
        redis.pid(),
        tree.pid(),
        line.trim()
    );
    std::thread::sleep(VICTIM_LIFETIME);
    panic!("the victim was not killed within {VICTIM_LIFETIME:?}");
}

fn children_die_with_a_test_killed_mid_run() {
    let mut victim = Proc::spawn(
        Command::new(std::env::current_exe().expect("this test binary"))
            .env(VICTIM_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("start the victim");
    let out = common::procs::Captured::default();
    out.attach(victim.take_stdout());
    out.attach(victim.take_stderr());
    let ready = out
        .wait_for(VICTIM_START_TIMEOUT, 2, |t| {
            t.lines()
                .find_map(|l| l.strip_prefix("victim ready: "))
                .map(str::to_owned)
        })
        .unwrap_or_else(|e| panic!("the victim did not start: {e}"));
    let pids: Vec<(String, u32)> = ready
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("name=pid");
            (k.to_owned(), v.parse().expect("a pid"))
        })
        .collect();
    assert_eq!(pids.len(), 4, "{ready}");
    for (name, pid) in &pids {
        assert!(!is_dead(*pid), "{name} ({pid}) should be running");
    }
    // SIGKILL to the victim alone (not its group): a test process killed
    // by a harness timeout or an operator, with no chance to clean up.
    victim.signal(libc::SIGKILL);
    let status = victim.wait_within(DEATH_TIMEOUT).expect("the victim died");
    assert!(!status.success());
    let deadline = Instant::now() + DEATH_TIMEOUT;
    loop {
        let alive: Vec<_> = pids.iter().filter(|(_, pid)| !is_dead(*pid)).collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running {DEATH_TIMEOUT:?} after their test was killed: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
