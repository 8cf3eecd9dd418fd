//! Flags whose effect is not a message on the wire, checked where it shows:
//! `--instance-idle-ms` (an empty instance is disposed), `--cpus` (each
//! shard's thread is pinned to its core), `--snapshot-writer-idle` (the
//! snapshot writer thread's scheduling policy), `--join-secret-file` (the
//! secret read from a file).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::http::{admin_addr, eventually, get_json};
use common::*;
use shardline::auth::ticket::{self, Grant};
use shardline::protocol::{ClientEncoder, ErrorCode};

/// Bound on anything that waits for a sweep, a snapshot or a thread to
/// show up: each takes a few hundred milliseconds at most.
const SETTLE: Duration = Duration::from_secs(15);

/// The threads of process `pid`: (tid, name, the rest of /proc/…/stat
/// after the name, split in fields: field 3 of stat(5) is index 0).
fn threads(pid: u32) -> Vec<(String, String, Vec<String>)> {
    let dir = format!("/proc/{pid}/task");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| {
            let tid = e.ok()?.file_name().to_string_lossy().into_owned();
            let stat = std::fs::read_to_string(format!("{dir}/{tid}/stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_owned();
            let fields = rest.split_whitespace().map(str::to_owned).collect();
            Some((tid, name, fields))
        })
        .collect()
}

/// stat(5) field 41, `policy`: the thread's scheduling policy.
fn policy(fields: &[String]) -> u32 {
    fields[41 - 3].parse().expect("policy is a number")
}

/// The instance ids the admin API lists.
fn instance_ids(admin: std::net::SocketAddr) -> Vec<String> {
    get_json(admin, "/instances")["instances"]
        .as_array()
        .expect("instances in /instances")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn instance_idle_ms_disposes_an_empty_instance_and_keeps_an_occupied_one() {
    let server = Server::start(&[
        "--tick-rate",
        "30",
        "--admin-listen",
        "127.0.0.1:0",
        "--instance-idle-ms",
        "300",
    ]);
    let admin = admin_addr(&server);
    let (mut leaver, _) = player(&server.url("/play"), "leaver");
    leaver.join(Some("short-lived"));
    let (mut stayer, _) = player(&server.url("/play"), "stayer");
    stayer.join(Some("lived-in"));
    leaver.send_leave();
    // Gone after --instance-idle-ms (the sweep runs often; bounded).
    eventually("the empty instance disposed", SETTLE, || {
        (!instance_ids(admin).contains(&"short-lived".to_owned())).then_some(())
    });
    // A Join that must not create it finds nothing.
    leaver.send_join(Some("short-lived"), false);
    leaver.expect_error(ErrorCode::InstanceNotFound);
    // The occupied one lives on: well past the idle time, still ticking.
    let t0 = stayer.next_update().tick;
    stayer.updates_until("30 more ticks", RECV_TIMEOUT, |u| u.tick >= t0 + 30);
    assert!(instance_ids(admin).contains(&"lived-in".to_owned()));
    // The default (10 s) would have kept the empty one this long.
    let disposed: u64 = get_json(admin, "/stats")["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["counters"]["instances_disposed"].as_u64().unwrap())
        .sum();
    assert_eq!(disposed, 1);
}

/// The cores this test process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size is the set's.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity");
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: cpu < CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

#[test]
fn cpus_pins_shard_i_to_the_i_th_core_listed() {
    // The last allowed core first: shard 0 there, shard 1 on the first
    // (one core twice on a one-core machine; still a list to follow).
    let cpus = allowed_cpus();
    let (a, b) = (*cpus.last().unwrap(), cpus[0]);
    let list = format!("{a},{b}");
    let server = Server::start(&["--cpus", &list]);
    // glommio names an executor's threads `shard-<i>-<n>`; the executor's
    // own thread is the one pinned (helper threads may roam).
    let pinned: Vec<(String, String)> = threads(server.pid())
        .into_iter()
        .filter(|(_, name, _)| name.starts_with("shard-"))
        .map(|(tid, name, _)| {
            let status =
                std::fs::read_to_string(format!("/proc/{}/task/{tid}/status", server.pid()))
                    .unwrap();
            let allowed = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .expect("Cpus_allowed_list")
                .trim()
                .to_owned();
            (name, allowed)
        })
        .collect();
    for (shard, cpu) in [(0, a), (1, b)] {
        let prefix = format!("shard-{shard}-");
        assert!(
            pinned
                .iter()
                .any(|(name, allowed)| name.starts_with(&prefix) && *allowed == cpu.to_string()),
            "--cpus {list}: no thread of shard {shard} pinned to core {cpu}: {pinned:?}"
        );
    }

    // A core the machine does not have: a clear error at start, exit 2.
    let out = shardline_cli(&["serve", "--listen", "127.0.0.1:0", "--cpus", "4095"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("4095"), "{err}");
}

/// Starts a server with snapshots every 100 ms and `--snapshot-writer-idle
/// idle`; returns the scheduling policies of its threads once a snapshot
/// has been written.
fn writer_policies(idle: &str) -> Vec<u32> {
    let dir = common::temp::TempDir::new("writer-idle");
    let server = Server::start(&[
        "--snapshot-dir",
        dir.to_str().unwrap(),
        "--snapshot-interval-ms",
        "100",
        "--snapshot-writer-idle",
        idle,
    ]);
    let (mut c, _) = player(&server.url("/play"), "saved");
    c.join(Some("saved"));
    // Written: the writer thread exists (glommio's blocking thread, made
    // for the first write and kept).
    eventually("a snapshot file", SETTLE, || {
        std::fs::read_dir(&*dir)
            .ok()?
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".snap"))
            .then_some(())
    });
    c.next_update();
    threads(server.pid())
        .iter()
        .map(|(_, _, fields)| policy(fields))
        .collect()
}

#[test]
fn snapshot_writer_idle_puts_the_writer_thread_under_sched_idle() {
    const SCHED_IDLE: u32 = libc::SCHED_IDLE as u32;
    let on = writer_policies("on");
    // One writer (glommio's blocking thread) per shard that has written;
    // every other thread keeps the normal policy.
    let idle = on.iter().filter(|p| **p == SCHED_IDLE).count();
    assert!(
        (1..=SHARDS).contains(&idle) && idle < on.len(),
        "with on, the writer threads (and only they) run under SCHED_IDLE: {on:?}"
    );
    let off = writer_policies("off");
    assert!(
        !off.contains(&SCHED_IDLE),
        "with off, no thread runs under SCHED_IDLE: {off:?}"
    );
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn join_secret_file_supplies_the_ticket_secret() {
    let dir = common::temp::TempDir::new("secret-file");
    let file = dir.join("join-secret");
    // A trailing newline, as editors write it, is not part of the secret.
    std::fs::write(&file, "from-a-file\n").unwrap();
    let server = Server::start(&["--join-secret-file", file.to_str().unwrap()]);
    assert!(
        !server.log_contains("OPEN server"),
        "a secret from a file secures the server:\n{}",
        server.log()
    );
    // Without a ticket: refused.
    let mut c = Client::connect(&server.url("/play"));
    c.send_hello("nobody", None);
    c.expect_error(ErrorCode::TicketRequired);
    // With a ticket signed with the file's secret: admitted.
    let ticket = ticket::issue(
        b"from-a-file",
        &Grant {
            player: "filed".into(),
            instance: None,
            expires_unix_s: now_s() + 300,
            nonce: "0123456789abcdef".into(),
            create: false,
            claims: Vec::new(),
        },
    );
    let mut c = Client::connect(&server.url("/play"));
    let frame = ClientEncoder::new()
        .hello_with_ticket("filed", None, &ticket)
        .to_vec();
    c.send_binary(&frame);
    c.expect_welcome();
    // A missing file stops the start with the file's name.
    let missing = dir.join("nope");
    let out = shardline_cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--join-secret-file",
        missing.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("cannot read secret file") && err.contains(missing.to_str().unwrap()),
        "{err}"
    );
}
