//! Game code that never returns: the watchdog (--stuck-shard-ms) sees the
//! shard stop finishing ticks, reports it in /health, /ready and /metrics
//! with the instance it was stepping, and takes its listener out of the
//! SO_REUSEPORT group, so new players reach the healthy shard and play. A
//! shard that returns rejoins. With --stuck-shard-exit the process exits
//! (status 70) and a restart restores the other instances from snapshots.
//!
//! The game is the reference arena, except that one magic input makes its
//! rules loop (sleeping, so the test machine is not burnt) until the test
//! lets them go. Nodes run in-process; the exit test runs this test binary
//! again as a real child process (`child_node_with_a_looping_game`).

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{eventually, get, get_json};
use common::procs::{address_after, Captured, Proc};
use common::*;
use shardline::config::{Config, ServeOpts};
use shardline::game::{
    ArenaFactory, EntityId, EntityView, Game, GameFactory, InstanceId, PlayerId, PlayerInput,
};
use shardline::node::Node;
use shardline::protocol::ServerMsg;

/// The input that makes the test game's rules loop.
const LOOP_BUTTONS: u32 = 0x100F;
/// --stuck-shard-ms in these tests.
const STUCK_MS: u64 = 500;
/// How long the watchdog may take to report, beyond --stuck-shard-ms: it
/// looks four times per bound; the rest is a loaded test machine's slack.
const REPORT_SLACK: Duration = Duration::from_millis(1500);

/// Set to let a looping game return (the shard recovers).
static RELEASE: AtomicBool = AtomicBool::new(false);

/// The reference arena, except that [`LOOP_BUTTONS`] never returns (until
/// [`RELEASE`]).
struct Looping(Box<dyn Game>);

impl Game for Looping {
    fn spawn(&mut self, player: PlayerId) -> EntityId {
        self.0.spawn(player)
    }
    fn despawn(&mut self, entity: EntityId) {
        self.0.despawn(entity)
    }
    fn apply_input(&mut self, entity: EntityId, input: &PlayerInput) {
        if input.buttons == LOOP_BUTTONS {
            while !RELEASE.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.0.apply_input(entity, input)
    }
    fn step(&mut self, dt_s: f32) {
        self.0.step(dt_s)
    }
    fn entities(&self, out: &mut Vec<EntityView>) {
        self.0.entities(out)
    }
    fn bounds(&self) -> (f32, f32) {
        self.0.bounds()
    }
    fn state_bytes(&self) -> usize {
        self.0.state_bytes()
    }
    fn save(&self, out: &mut Vec<u8>) {
        self.0.save(out)
    }
}

struct LoopingFactory;

impl GameFactory for LoopingFactory {
    fn name(&self) -> &'static str {
        "looping-arena"
    }
    fn create(&self, instance: &InstanceId) -> Box<dyn Game> {
        Box::new(Looping(ArenaFactory.create(instance)))
    }
    fn restore(&self, instance: &InstanceId, bytes: &[u8]) -> Result<Box<dyn Game>, String> {
        Ok(Box::new(Looping(ArenaFactory.restore(instance, bytes)?)))
    }
}

fn opts(dir: &std::path::Path) -> ServeOpts {
    ServeOpts {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        shards: Some(SHARDS),
        tick_rate: Some(30),
        snapshot_dir: Some(dir.to_path_buf()),
        load_shedding: Some("off".into()),
        stuck_shard_ms: Some(STUCK_MS),
        ..Default::default()
    }
}

/// Connects to /play (the kernel picks the shard), says Hello: the
/// shard that greeted it.
fn greeted_by(addr: SocketAddr, name: &str) -> (Client, u16) {
    let (c, w) = player(&format!("ws://{addr}/play"), name);
    (c, w.shard)
}

/// Sends the input that makes the game loop.
fn send_loop(c: &mut Client) {
    let bytes = c.encoder().input(1, 0.0, 0.0, LOOP_BUTTONS).to_vec();
    c.send_binary(&bytes);
}

#[test]
fn a_game_that_never_returns_marks_its_shard_stuck_and_new_players_reach_the_healthy_one() {
    let dir = common::http::tempdir("stuck");
    let o = ServeOpts {
        admin_listen: Some("127.0.0.1:0".into()),
        snapshot_interval_ms: Some(0),
        no_restore: true,
        ..opts(dir.path())
    };
    let node = Node::start(Config::resolve(o, &[]).unwrap(), Arc::new(LoopingFactory)).unwrap();
    let addr = node.local_addr();
    let admin = node.admin_addr().unwrap();
    let url = |id: &str| format!("ws://{addr}/play?instance={id}");
    // The stall is on shard 1: the admin endpoint runs on shard 0 (see
    // SECURITY.md: a stuck shard 0 leaves only the probes' timeouts).
    let stall = id_on_shard("stall", 1);
    let calm = id_on_shard("calm", 0);
    let (mut victim, _) = player(&url(&stall), "victim");
    victim.join(Some(&stall));
    let (mut steady, _) = player(&url(&calm), "steady");
    steady.join(Some(&calm));
    steady.next_update();
    assert_eq!(get(admin, "/health").0, 200);

    send_loop(&mut victim);
    let sent_at = Instant::now();
    let health = eventually(
        "/health reports the stuck shard",
        Duration::from_secs(10),
        || {
            let (status, body) = get(admin, "/health");
            (status == 503 && body.contains("stuck")).then_some(body)
        },
    );
    let reported_after = sent_at.elapsed();
    assert!(
        reported_after <= Duration::from_millis(STUCK_MS) + REPORT_SLACK,
        "reported after {reported_after:?} (--stuck-shard-ms {STUCK_MS})"
    );
    let h: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(h["stuck_shards"][0]["shard"], 1, "{h}");
    assert_eq!(h["stuck_shards"][0]["instance"], stall.as_str(), "{h}");
    let (status, ready) = get(admin, "/ready");
    assert_eq!(status, 503);
    assert!(
        ready.contains("shard 1 is stuck") && ready.contains(&stall),
        "{ready}"
    );
    let (_, metrics) = get(admin, "/metrics");
    let line = format!("shardline_shard_stuck{{shard=\"1\",instance=\"{stall}\"}} 1");
    assert!(metrics.contains(&line), "no {line} in /metrics");
    assert!(metrics.contains("shardline_shard_stuck{shard=\"0\",instance=\"\"} 0"));

    // Every new connection reaches shard 0 and plays; so does the player
    // already there.
    let mut newcomers = Vec::new();
    for i in 0..16 {
        let (mut c, shard) = greeted_by(addr, &format!("new{i}"));
        assert_eq!(shard, 0, "connection {i} reached the stuck shard");
        c.join(None);
        c.input(1, 1.0, 0.0);
        c.updates_until("its input applied", RECV_TIMEOUT, |u| u.last_input_seq >= 1);
        newcomers.push(c);
    }
    let u = steady.next_update();
    steady.updates_until("30 more ticks", RECV_TIMEOUT, |v| v.tick >= u.tick + 30);

    // The game returns: the shard is healthy again and rejoins the group.
    RELEASE.store(true, Ordering::Release);
    eventually("/health is 200 again", Duration::from_secs(10), || {
        (get(admin, "/health").0 == 200).then_some(())
    });
    victim.updates_until("the stalled instance ticks again", RECV_TIMEOUT, |u| {
        u.last_input_seq >= 1
    });
    let back = (0..64).any(|i| greeted_by(addr, &format!("later{i}")).1 == 1);
    assert!(back, "no new connection reached shard 1 after it recovered");
    assert_eq!(get_json(admin, "/ready")["ready"], true);

    for c in newcomers {
        c.close();
    }
    node.shutdown_handle().shutdown();
    node.wait().expect("every shard stops cleanly");
}

/// Set in the child process the exit test starts: its snapshot directory.
const CHILD_DIR_ENV: &str = "SHARDLINE_TEST_STUCK_CHILD_DIR";
const CHILD_MARK: &str = "child node listening on ";

/// Not a test by itself: the node `with_the_exit_flag_a_stuck_shard_ends_the_process_and_a_restart_restores_the_games`
/// runs as a child process (this test binary, run again).
#[test]
#[ignore = "a child process of the exit test"]
fn child_node_with_a_looping_game() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    // Logs on stderr, as `shardline serve` has them: the parent reads the
    // watchdog's error there.
    shardline::util::logging::init_logging(Some("info")).unwrap();
    let o = ServeOpts {
        admin_listen: Some("off".into()),
        snapshot_interval_ms: Some(100),
        stuck_shard_exit: true,
        ..opts(std::path::Path::new(&dir))
    };
    let node = Node::start(Config::resolve(o, &[]).unwrap(), Arc::new(LoopingFactory)).unwrap();
    println!("{CHILD_MARK}{}", node.local_addr());
    std::io::stdout().flush().unwrap();
    // Ends only through the watchdog's exit, or the parent's kill.
    let _ = node.wait();
}

/// Starts the child node on `dir`; its address.
fn start_child(dir: &std::path::Path) -> (Proc, Captured, SocketAddr) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_node_with_a_looping_game",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD_DIR_ENV, dir)
    .env_remove("RUST_LOG")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = Proc::spawn(&mut cmd).expect("spawn the child node");
    let out = Captured::default();
    out.attach(child.take_stdout());
    out.attach(child.take_stderr());
    let addr = out
        .wait_for(START_TIMEOUT, 2, |t| address_after(t, CHILD_MARK))
        .unwrap_or_else(|e| panic!("the child node did not start: {e}"));
    (child, out, addr)
}

#[test]
fn with_the_exit_flag_a_stuck_shard_ends_the_process_and_a_restart_restores_the_games() {
    let dir = common::http::tempdir("stuck-exit");
    let (mut child, out, addr) = start_child(dir.path());
    let url = |id: &str| format!("ws://{addr}/play?instance={id}");
    let stall = id_on_shard("stall", 1);
    let keep = [id_on_shard("keep", 0), id_on_shard("keep", 1)];
    let mut players = Vec::new();
    for id in &keep {
        let (mut c, _) = player(&url(id), "keeper");
        c.join(Some(id));
        c.input(1, 1.0, 0.0);
        c.updates_until("input applied", RECV_TIMEOUT, |u| u.last_input_seq >= 1);
        players.push(c);
    }
    let (mut victim, _) = player(&url(&stall), "victim");
    victim.join(Some(&stall));
    // Snapshots every 100 ms: the kept instances are on disk by now.
    std::thread::sleep(Duration::from_millis(300));
    send_loop(&mut victim);
    let sent_at = Instant::now();
    let status = child
        .wait_within(Duration::from_millis(STUCK_MS) + REPORT_SLACK + Duration::from_secs(3))
        .unwrap_or_else(|| panic!("still running; output:\n{}", out.text()));
    assert_eq!(
        status.code(),
        Some(70),
        "exit status; output:\n{}",
        out.text()
    );
    assert!(sent_at.elapsed() >= Duration::from_millis(STUCK_MS));
    let log = out.text();
    assert!(
        log.contains("shard stuck") && log.contains(&stall) && log.contains("looping-arena"),
        "the error names the game and the instance:\n{log}"
    );

    // Restarted on the same snapshots: the instances are back.
    let (_child, _out, addr) = start_child(dir.path());
    for id in &keep {
        let (mut c, _) = player(&format!("ws://{addr}/play?instance={id}"), "back");
        c.send_join(Some(id), false);
        let joined = c.expect_joined();
        assert_eq!(&joined.instance_id, id);
        assert!(
            joined.tick > 0,
            "{id} restored with its state (tick {})",
            joined.tick
        );
        match c.recv_until("an update", RECV_TIMEOUT, |m| {
            matches!(m, ServerMsg::StateUpdate { .. })
        }) {
            ServerMsg::StateUpdate { tick, .. } => assert!(tick > joined.tick),
            _ => unreachable!(),
        }
    }
}
