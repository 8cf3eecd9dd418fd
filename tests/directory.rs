//! The fleet directory against a real `redis-server` on a free loopback
//! port, with real nodes (`shardline serve --directory …`) in two regions:
//! routing by instance, by region (least loaded) and by latencies; one
//! owner for an instance created on two nodes at once; a node pointing a
//! player to the owner; fleet messages (config, drain); failover after
//! kill -9 with replicated state; and a Redis outage mid-game.
//!
//! A test fails, naming what is missing, when `redis-server` (or
//! `redis-sentinel`) is not installed; `scripts/setup-test-tools.sh` (run by
//! the test command) installs them.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{admin_addr, eventually, get};
use common::{Client, Server};
use serde_json::json;
use shardline::protocol::{ErrorCode, ServerMsg};

/// Generous bound for anything that waits on a heartbeat or two.
const SETTLE: Duration = Duration::from_secs(15);
/// Directory timing for tests: fast, but with the same ratios as the
/// defaults (TTL ≥ 2 heartbeats).
const HEARTBEAT_MS: &str = "200";
const TTL_MS: &str = "1500";
const SNAPSHOT_MS: &str = "200";

// ------------------------------------------------------------------ redis

#[path = "directory_support/redis.rs"]
mod redis_procs;

use redis_procs::Proc;

/// A `redis-server` on loopback, without persistence. The test fails,
/// naming what is missing, when redis-server is not installed.
struct Redis(Proc);

impl Redis {
    fn start() -> Redis {
        Redis(Proc::server(&[]))
    }

    fn restart(&mut self) {
        self.0.restart();
    }

    fn kill9(&mut self) {
        self.0.kill9();
    }

    fn url(&self) -> String {
        self.0.url()
    }

    /// SIGSTOP (`true`) or SIGCONT: Redis keeps its data but answers
    /// nobody meanwhile.
    fn freeze(&self, stop: bool) {
        self.0.freeze(stop);
    }
}

// ------------------------------------------------------------------ nodes

/// A node of the fleet with its admin listener.
struct Node {
    server: Server,
    admin: SocketAddr,
    id: String,
}

impl Node {
    fn start(redis: &Redis, id: &str, region: &str, extra: &[&str]) -> Node {
        Node::start_at(&redis.url(), id, region, extra)
    }

    /// A node whose `--directory` is `url` (e.g. a Sentinel set).
    fn start_at(url: &str, id: &str, region: &str, extra: &[&str]) -> Node {
        let mut args = vec![
            "--directory",
            url,
            "--node-id",
            id,
            "--region",
            region,
            "--directory-heartbeat-ms",
            HEARTBEAT_MS,
            "--admin-listen",
            "127.0.0.1:0",
        ];
        // Defaults a test may set otherwise.
        for (flag, value) in [
            ("--directory-ttl-ms", TTL_MS),
            ("--snapshot-interval-ms", SNAPSHOT_MS),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let server = Server::start(&args);
        let admin = admin_addr(&server);
        Node {
            server,
            admin,
            id: id.to_owned(),
        }
    }

    fn url(&self) -> String {
        format!("ws://{}", self.server.addr())
    }

    /// GET on the game listener: (status, JSON body).
    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = get(self.server.addr(), path);
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
        (status, json)
    }

    /// The node id `/v1/route?…` names, waiting (bounded) for a 200 that
    /// satisfies `want`.
    fn route_until(&self, query: &str, want: impl Fn(&str) -> bool) -> String {
        let path = format!("/v1/route?{query}");
        eventually(&format!("{path} on {}", self.id), SETTLE, || {
            let (status, body) = self.get(&path);
            let node = body["node"].as_str().unwrap_or("").to_owned();
            (status == 200 && want(&node)).then_some(node)
        })
    }

    fn metric(&self, name: &str) -> u64 {
        let (status, text) = get(self.admin, "/metrics");
        assert_eq!(status, 200);
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} not found"))
    }
}

/// Waits until every node sees the whole fleet in /v1/regions.
fn wait_fleet(nodes: &[&Node], expected_nodes: u64) {
    for n in nodes {
        eventually(
            &format!("{} sees {expected_nodes} nodes", n.id),
            SETTLE,
            || {
                let (status, body) = n.get("/v1/regions");
                let seen: u64 = body["regions"]
                    .as_array()?
                    .iter()
                    .map(|r| r["nodes"].as_u64().unwrap_or(0))
                    .sum();
                (status == 200 && seen == expected_nodes).then_some(())
            },
        );
    }
}

/// A player that joined `instance` on `node` through `/play?instance=`.
fn player_in(node: &Node, name: &str, instance: &str) -> (Client, common::Welcome, common::Joined) {
    let mut c = Client::connect(&node.server.play_url(instance));
    let w = c.hello(name);
    let j = c.join(Some(instance));
    (c, w, j)
}

/// The next StateUpdate satisfying `pred` (others skipped), bounded. Ticks
/// are not required to be consecutive: a loaded machine may coalesce them.
fn update_where(
    c: &mut Client,
    what: &str,
    pred: impl Fn(&common::Update) -> bool,
) -> common::Update {
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no StateUpdate with {what} within {SETTLE:?}"
        );
        let u = c.next_update_within(left);
        if pred(&u) {
            return u;
        }
    }
}

/// Hello with `token` on `node`: the URL of Error(WrongNode), or `None`
/// for any other answer (a Welcome, another error).
fn wrong_node_for(node: &Node, token: &str) -> Option<String> {
    let mut c = Client::connect(&node.server.url("/play"));
    c.send_hello("again", Some(token));
    match c.recv_until("Welcome or Error", Duration::from_secs(10), |m| {
        matches!(m, ServerMsg::Error { .. } | ServerMsg::Welcome { .. })
    }) {
        ServerMsg::Error {
            code: ErrorCode::WrongNode,
            message,
        } => Some(message),
        _ => None,
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- node {} output:\n{}", self.id, self.server.log());
        }
    }
}

fn fleet(redis: &Redis, args: &[&str]) -> (bool, String) {
    fleet_at(&redis.url(), args)
}

/// `shardline fleet --directory url …`: (success, stdout + stderr).
fn fleet_at(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shardline"))
        .args(["fleet", "--directory", url])
        .args(args)
        .output()
        .expect("run shardline fleet");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

// ------------------------------------------------------------------ tests

#[test]
fn routing_ownership_and_fleet_messages() {
    let redis = Redis::start();
    let a = Node::start(&redis, "eu-a", "eu", &[]);
    let b = Node::start(&redis, "eu-b", "eu", &[]);
    let c = Node::start(&redis, "us-c", "us", &[]);
    wait_fleet(&[&a, &b, &c], 3);

    // Regions are the sums of their nodes, each with an /echo to probe.
    let (_, regions) = c.get("/v1/regions");
    let eu = regions["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "eu")
        .expect("eu listed")
        .clone();
    assert_eq!(eu["nodes"], 2);
    assert!(eu["echo_url"].as_str().unwrap().ends_with("/echo"));

    // The admin API shows an operator the fleet as the node sees it.
    let (status, body) = get(a.admin, "/fleet");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &view["up"], &view["node"]),
        (200, &json!(true), &json!("eu-a"))
    );
    let ids: Vec<&str> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["eu-a", "eu-b", "us-c"]);
    assert_eq!(view["regions"].as_array().unwrap().len(), 2);

    // By instance: any node names the owner.
    let (_p1, w1, _) = player_in(&a, "p1", "room-1");
    assert_eq!(c.route_until("instance=room-1", |_| true), "eu-a");
    let (status, body) = b.get("/v1/route?instance=room-1");
    assert_eq!(
        (status, body["url"].as_str()),
        (200, Some(a.url().as_str()))
    );
    assert_eq!(b.get("/v1/route?instance=nobody-here").0, 404);

    // A node asked for another's instance points to the owner.
    let mut wrong = Client::connect(&b.server.play_url("room-1"));
    assert_eq!(wrong.expect_error(ErrorCode::WrongNode), a.url());

    // By region: the least loaded by players (eu-a has one, eu-b none),
    // then eu-a once eu-b has more players.
    assert_eq!(c.route_until("region=eu", |n| n == "eu-b"), "eu-b");
    let _b1 = player_in(&b, "b1", "room-b");
    let _b2 = player_in(&b, "b2", "room-b");
    assert_eq!(c.route_until("region=eu", |n| n == "eu-a"), "eu-a");
    assert_eq!(c.get("/v1/route?region=mars").0, 404);

    // A fleet config change reaches every node of the region (all their
    // shards), and no other region: one player per new instance in eu.
    let (ok, out) = eventually("both eu nodes hear the fleet", SETTLE, || {
        let r = fleet(
            &redis,
            &[
                "config",
                "set",
                "--region",
                "eu",
                "players_per_instance_max=1",
            ],
        );
        r.1.contains("sent to 2 node(s)").then_some(r)
    });
    assert!(ok, "{out}");
    for node in [&a, &b] {
        for shard in 0..common::SHARDS as u16 {
            let id = common::id_on_shard(&format!("small-{}", node.id), shard);
            let _first = player_in(node, "first", &id);
            let mut second = Client::connect(&node.server.play_url(&id));
            second.hello("second");
            second.send_join(Some(&id), true);
            second.expect_error(ErrorCode::InstanceFull);
        }
    }
    let (_u1, _, _) = player_in(&c, "u1", "big-us");
    let (_u2, _, j) = player_in(&c, "u2", "big-us");
    assert_eq!(j.instance_id, "big-us", "us keeps its own settings");

    // By latencies: the nearest region with room.
    assert_eq!(
        a.route_until("latencies=us:10,eu:50", |n| n == "us-c"),
        "us-c"
    );
    assert!(a
        .route_until("latencies=eu:10,us:50", |n| n.starts_with("eu-"))
        .starts_with("eu-"));
    assert_eq!(a.get("/v1/route?latencies=eu").0, 400);
    // Draining us-c (a fleet message) sends the us player to eu instead.
    let (ok, out) = fleet(&redis, &["drain", "us-c"]);
    assert!(ok, "{out}");
    // Whichever eu node has fewer players now (their entries count open
    // connections the moment they change).
    assert!(a
        .route_until("latencies=us:10,eu:50", |n| n != "us-c")
        .starts_with("eu-"));

    // A node also points a Join on an open connection to the owner.
    let (mut joiner, _) = common::player(&b.server.url("/play"), "joiner");
    joiner.send_join(Some("room-1"), true);
    assert_eq!(joiner.expect_error(ErrorCode::WrongNode), a.url());
    drop(joiner);

    // And a resume token whose seat is on another node (once replicated).
    let url = eventually("eu-b points p1's token to eu-a", SETTLE, || {
        wrong_node_for(&b, &w1.resume_token)
    });
    assert_eq!(url, a.url());

    // One instance id created on two nodes at once: one owner, and the
    // other node points to it.
    let handles: Vec<_> = [a.server.play_url("dup-1"), b.server.play_url("dup-1")]
        .into_iter()
        .map(|url| {
            std::thread::spawn(move || {
                let mut c = Client::connect(&url);
                c.send_hello("racer", None);
                c.send_join(Some("dup-1"), true);
                let first = c.recv_until("Welcome or Error", Duration::from_secs(10), |m| {
                    matches!(m, ServerMsg::Welcome { .. } | ServerMsg::Error { .. })
                });
                match first {
                    ServerMsg::Error { code, message } => {
                        assert_eq!(code, ErrorCode::WrongNode, "{message}");
                        (false, message)
                    }
                    _ => {
                        let j = c.expect_joined();
                        assert_eq!(j.instance_id, "dup-1");
                        (true, String::new())
                    }
                }
            })
        })
        .collect();
    let results: Vec<(bool, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners = results.iter().filter(|r| r.0).count();
    assert_eq!(winners, 1, "exactly one node creates dup-1: {results:?}");
    let owner = c.route_until("instance=dup-1", |_| true);
    let owner_url = if owner == "eu-a" { a.url() } else { b.url() };
    let loser = results.iter().find(|r| !r.0).unwrap();
    assert_eq!(loser.1, owner_url, "the other node points to the owner");
}

#[test]
fn failover_restores_a_dead_nodes_games_on_its_region() {
    let redis = Redis::start();
    // Removed on every path, a failing one included.
    let a_snapshots = redis_procs::TempDir::new("fleet-a");
    let a_dir = a_snapshots.0.to_str().unwrap();
    let mut a = Node::start(&redis, "fa", "eu", &["--snapshot-dir", a_dir]);
    let b = Node::start(&redis, "fb", "eu", &[]);
    wait_fleet(&[&a, &b], 2);

    // Two players in two instances on A; one moves, then stops.
    let (mut p1, w1, j1) = player_in(&a, "mover", "fo-1");
    let (_p2, w2, j2) = player_in(&a, "sitter", "fo-2");
    // (At most --inputs-per-tick-max inputs per tick are applied.)
    for seq in 1..=3 {
        p1.input(seq, 1.0, 0.5);
    }
    let moved = update_where(&mut p1, "the input applied", |u| u.last_input_seq == 3);
    for _ in 0..5 {
        p1.next_update();
    }
    p1.input(4, 0.0, 0.0);
    let still = update_where(&mut p1, "the entity at rest", |u| {
        u.last_input_seq == 4
            && u.entity(j1.entity_id)
                .is_some_and(|e| e.vx == 0.0 && e.vy == 0.0)
    });
    let at_rest = *still.entity(j1.entity_id).unwrap();
    let start = j1.entity(j1.entity_id).unwrap();
    assert!(
        (at_rest.x, at_rest.y) != (start.x, start.y),
        "the entity moved ({moved:?})"
    );
    // Two more replication rounds after the entity came to rest, each
    // finding both instances equal to their last replica (so skipped): the
    // replicas hold that state.
    let unchanged = a.metric("shardline_directory_replicas_unchanged_total");
    eventually("two more replication rounds", SETTLE, || {
        (a.metric("shardline_directory_replicas_unchanged_total") >= unchanged + 4).then_some(())
    });
    assert!(a.metric("shardline_directory_replicas_written_total") > 0);

    let largest = a.metric("shardline_directory_replica_instance_bytes_max");
    eprintln!("largest replica of one instance: {largest} bytes (lz4)");
    assert!(largest > 0, "the replica size is reported");
    let killed_at = Instant::now();
    a.server.kill9();
    drop(p1);
    for (instance, _) in [("fo-1", &w1), ("fo-2", &w2)] {
        assert_eq!(
            b.route_until(&format!("instance={instance}"), |n| n == "fb"),
            "fb"
        );
    }
    let took = killed_at.elapsed();
    eprintln!("B owned A's instances {took:?} after kill -9 (TTL {TTL_MS} ms)");
    assert!(
        took < Duration::from_secs(10),
        "B owned A's instances {took:?} after the kill"
    );

    // Each player resumes its own entity on B with its token, right away:
    // a resume that arrives while B is still rebuilding the instance waits
    // for the rebuild instead of being refused.
    for (instance, w, j) in [("fo-1", &w1, &j1), ("fo-2", &w2, &j2)] {
        let mut c = Client::connect(&b.server.play_url(instance));
        let again = c.hello_resume("x", &w.resume_token);
        assert!(again.resumed, "{instance}: resumed");
        assert_eq!(again.player_id, w.player_id);
        assert_eq!(again.node_id, "fb");
        let back = c.expect_joined();
        assert_eq!(back.instance_id, instance);
        assert_eq!(back.entity_id, j.entity_id, "{instance}: its own entity");
        if instance == "fo-1" {
            let e = back.entity(j.entity_id).expect("entity restored");
            assert_eq!(
                (e.x, e.y),
                (at_rest.x, at_rest.y),
                "state as of the last replica"
            );
            assert!(back.tick >= still.tick, "no older than the last replica");
            // And the game goes on there.
            c.input(5, -1.0, 0.0);
            update_where(&mut c, "input applied on B", |u| u.last_input_seq == 5);
        }
    }
    assert!(b.metric("shardline_directory_instances_taken_over_total") >= 2);

    // A comes back on its snapshot files, which hold both instances, while
    // the directory does not answer: a player resumes on A's stale copy.
    // Once A reaches the directory it learns B owns them: it stops its
    // copies (no duplicate game) and sends that player to B.
    redis.freeze(true);
    let a2 = Node::start(&redis, "fa", "eu", &["--snapshot-dir", a_dir]);
    assert!(
        a2.server.log_contains("restored"),
        "A restored its local snapshot: {}",
        a2.server.log()
    );
    let mut stale = Client::connect(&a2.server.url("/play"));
    let on_a = stale.hello_resume("x", &w2.resume_token);
    assert!(on_a.resumed && on_a.node_id == "fa", "resumed on A's copy");
    assert_eq!(stale.expect_joined().instance_id, "fo-2");
    redis.freeze(false);
    match stale.recv_until("Transfer", SETTLE, |m| {
        matches!(m, ServerMsg::Transfer { .. })
    }) {
        ServerMsg::Transfer { url, instance_id } => {
            assert_eq!((url, instance_id.as_str()), (b.url(), "fo-2"));
        }
        _ => unreachable!("filtered above"),
    }
    assert_eq!(stale.expect_close().0, 1000);
    eventually("A stops its stale copies", SETTLE, || {
        (a2.metric("shardline_directory_instances_disowned_total") >= 2).then_some(())
    });
    for instance in ["fo-1", "fo-2"] {
        let (status, _) = get(a2.admin, &format!("/instances/{instance}"));
        assert_eq!(status, 404, "{instance} no longer runs on A");
        assert_eq!(
            a2.route_until(&format!("instance={instance}"), |_| true),
            "fb"
        );
    }
}

#[test]
fn a_new_seat_is_found_from_another_node_before_any_replication() {
    let redis = Redis::start();
    // No replication for a minute: only the seat written at the join can
    // tell B where the token's seat is.
    let slow = ["--snapshot-interval-ms", "60000"];
    let a = Node::start(&redis, "sa", "eu", &slow);
    let b = Node::start(&redis, "sb", "eu", &slow);
    wait_fleet(&[&a, &b], 2);
    let (_p, w, _) = player_in(&a, "fresh", "seat-1");
    let url = eventually(
        "B points the new token to A",
        Duration::from_secs(5),
        || wrong_node_for(&b, &w.resume_token),
    );
    assert_eq!(url, a.url());
    assert_eq!(a.metric("shardline_directory_replicas_written_total"), 0);
}

#[test]
fn a_redis_outage_leaves_games_running_and_nodes_reregister() {
    let mut redis = Redis::start();
    let a = Node::start(&redis, "oa", "eu", &[]);
    wait_fleet(&[&a], 1);
    let (mut p, _, j) = player_in(&a, "p", "live-1");

    redis.kill9();
    // Directory-dependent requests are refused (and counted) ...
    eventually("routing refused during the outage", SETTLE, || {
        (a.get("/v1/regions").0 == 503).then_some(())
    });
    // A WebSocket upgrade for an instance nobody runs needs a claim.
    let mut s = common::tcp(a.server.addr());
    s.write_all(&common::upgrade_request(
        a.server.addr(),
        "/play?instance=new-1",
    ))
    .unwrap();
    let (head, _) = common::read_http_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(a.metric("shardline_directory_refused_total") > 0);
    assert!(a.metric("shardline_directory_errors_total") > 0);
    assert_eq!(a.metric("shardline_directory_up"), 0);
    // ... while the game goes on: inputs applied, updates every tick.
    for seq in 1..=3 {
        p.input(seq, 1.0, 0.0);
    }
    let u = update_where(&mut p, "inputs applied without Redis", |u| {
        u.last_input_seq == 3
    });
    assert!(u.entity(j.entity_id).is_some());
    let more = update_where(&mut p, "30 more ticks", |v| v.tick >= u.tick + 30);
    assert!(more.tick > u.tick);

    // Redis comes back (empty): the node re-registers and re-claims its
    // instance without a restart.
    redis.restart();
    wait_fleet(&[&a], 1);
    assert_eq!(a.route_until("instance=live-1", |_| true), "oa");
    assert_eq!(a.metric("shardline_directory_up"), 1);
    update_where(&mut p, "updates after the outage", |v| {
        v.tick >= more.tick + 5
    });
}

/// `shardline fleet move` output: the JSON outcome line.
fn moved(redis: &Redis, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["move"];
    all.extend_from_slice(args);
    let (ok, out) = fleet(redis, &all);
    assert!(ok, "fleet move failed: {out}");
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in: {out}"));
    serde_json::from_str(line).unwrap()
}

/// The next Notice (other messages skipped), bounded.
fn notice(c: &mut Client) -> (String, String) {
    match c.recv_until("Notice", SETTLE, |m| matches!(m, ServerMsg::Notice { .. })) {
        ServerMsg::Notice {
            message, region, ..
        } => (message, region),
        _ => unreachable!("filtered above"),
    }
}

#[test]
fn broadcasts_reach_a_region_and_players_move_between_nodes() {
    let redis = Redis::start();
    let a = Node::start(&redis, "ma", "eu", &[]);
    let b = Node::start(&redis, "mb", "eu", &[]);
    let c = Node::start(&redis, "mc", "us", &[]);
    wait_fleet(&[&a, &b, &c], 3);

    let (mut mover, w_mover, j_mover) = player_in(&a, "mover", "mv-from");
    let (mut stayer, w_stayer, _) = player_in(&a, "stayer", "mv-from");
    let (mut host, _, j_host) = player_in(&b, "host", "mv-to");
    let (mut yank, _, _) = player_in(&c, "yank", "mv-us");

    // A broadcast to eu reaches every player of both eu nodes, and none in
    // us: the us player's first Notice is the one sent to us afterwards.
    eventually("both eu nodes hear broadcasts", SETTLE, || {
        let (ok, out) = fleet(
            &redis,
            &["broadcast", "--region", "eu", "eu: restart at 04:00"],
        );
        (ok && out.contains("sent to 2 node(s)")).then_some(())
    });
    for p in [&mut mover, &mut stayer, &mut host] {
        assert_eq!(
            notice(p),
            ("eu: restart at 04:00".to_owned(), "eu".to_owned())
        );
    }
    let (ok, out) = fleet(&redis, &["broadcast", "--region", "us", "us only"]);
    assert!(ok, "{out}");
    assert_eq!(notice(&mut yank), ("us only".to_owned(), "us".to_owned()));
    let (ok, out) = fleet(&redis, &["broadcast", &"x".repeat(1025)]);
    assert!(!ok && out.contains("at most 1024"), "{out}");

    // Move `mover` from mv-from on A to mv-to on B: the command reports
    // the seat B reserved, B's player sees it arrive, `stayer` sees it
    // leave, and `mover` gets Transfer then a normal close.
    let pid = w_mover.player_id.to_string();
    let started = Instant::now();
    let out = moved(
        &redis,
        &["--instance", "mv-from", "--player", &pid, "--to", "mv-to"],
    );
    let command_took = started.elapsed();
    assert_eq!(out["to_node"], "mb", "{out}");
    assert_eq!(out["url"], b.url().as_str(), "{out}");
    let new_pid = out["new_player"].as_u64().unwrap();
    // Player ids stay exact in JavaScript numbers (JSON readers).
    assert!(new_pid < 1 << 53 && w_mover.player_id < 1 << 53);
    match mover.recv_until("Transfer", SETTLE, |m| {
        matches!(m, ServerMsg::Transfer { .. })
    }) {
        ServerMsg::Transfer { url, instance_id } => {
            assert_eq!(
                (url.as_str(), instance_id.as_str()),
                (b.url().as_str(), "mv-to")
            );
        }
        _ => unreachable!(),
    }
    assert_eq!(mover.expect_close().0, 1000);
    let left = stayer.recv_until("PlayerLeft", SETTLE, |m| {
        matches!(m, ServerMsg::PlayerLeft { .. })
    });
    assert_eq!(
        left,
        ServerMsg::PlayerLeft {
            player_id: w_mover.player_id,
            entity_id: j_mover.entity_id,
            reason: shardline::protocol::LeaveReason::Moved,
        }
    );
    let arrived = host.recv_until("PlayerJoined", SETTLE, |m| {
        matches!(m, ServerMsg::PlayerJoined { .. })
    });
    let ServerMsg::PlayerJoined {
        player_id,
        entity_id,
        name,
    } = arrived
    else {
        unreachable!()
    };
    assert_eq!((player_id, name.as_str()), (new_pid, "mover"));

    // The mover reconnects to B with its token: its reserved seat, in the
    // same world as B's player, and its inputs apply there.
    let mut back = Client::connect(&b.server.play_url("mv-to"));
    let w = back.hello_resume("mover", &w_mover.resume_token);
    assert!(w.resumed, "the seat was reserved on arrival");
    assert_eq!((w.node_id.as_str(), w.player_id), ("mb", new_pid));
    let j = back.expect_joined();
    assert_eq!((j.instance_id.as_str(), j.entity_id), ("mv-to", entity_id));
    assert!(j.entities.iter().any(|e| e.id == j_host.entity_id));
    back.input(1, 1.0, 0.0);
    update_where(&mut back, "the first input applied on B", |u| {
        u.last_input_seq == 1
    });
    eprintln!(
        "fleet move: command {} ms (process start included); order to first input applied on B {} ms",
        command_took.as_millis(),
        started.elapsed().as_millis()
    );
    // A no longer knows the token; B does. Any node points to B.
    let mut lost = Client::connect(&a.server.url("/play"));
    lost.send_hello("mover", Some(&w_mover.resume_token));
    assert_eq!(lost.expect_error(ErrorCode::WrongNode), b.url());

    // A target nobody runs yet is claimed by the player's own node: a
    // move within the node, answered with Joined on the same connection.
    let sid = w_stayer.player_id.to_string();
    let out = moved(
        &redis,
        &["--instance", "mv-from", "--player", &sid, "--to", "mv-new"],
    );
    assert_eq!(
        (out["to_node"].as_str(), out["instance"].as_str()),
        (Some("ma"), Some("mv-new"))
    );
    assert_eq!(stayer.expect_joined().instance_id, "mv-new");
    assert_eq!(a.route_until("instance=mv-new", |_| true), "ma");

    // Refusals: a player not in the instance, an instance nobody runs.
    let (ok, out) = fleet(
        &redis,
        &[
            "move",
            "--instance",
            "mv-new",
            "--player",
            "12345",
            "--to",
            "mv-to",
        ],
    );
    assert!(!ok && out.contains("no player 12345"), "{out}");
    let (ok, out) = fleet(
        &redis,
        &[
            "move",
            "--instance",
            "ghost",
            "--player",
            "1",
            "--to",
            "mv-to",
        ],
    );
    assert!(!ok && out.contains("no node runs instance ghost"), "{out}");
    assert_eq!(a.metric("shardline_directory_players_moved_out_total"), 2);
    assert_eq!(b.metric("shardline_directory_players_moved_in_total"), 1);
    assert!(a.metric("shardline_directory_notices_sent_total") >= 2);
}

#[test]
fn a_stopping_node_hands_its_games_to_its_region_at_once() {
    let redis = Redis::start();
    // A TTL of 30 s and no periodic replication within the test: only the
    // final replica and the left marker of a graceful stop can move the
    // game within seconds, and with its state at the stop.
    let extra = [
        "--directory-ttl-ms",
        "30000",
        "--snapshot-interval-ms",
        "60000",
    ];
    let mut a = Node::start(&redis, "ga", "eu", &extra);
    let b = Node::start(&redis, "gb", "eu", &extra);
    wait_fleet(&[&a, &b], 2);
    let (mut p, w, j) = player_in(&a, "stopper", "gs-1");
    for seq in 1..=3 {
        p.input(seq, 1.0, 0.5);
    }
    update_where(&mut p, "the inputs applied", |u| u.last_input_seq == 3);
    p.input(4, 0.0, 0.0);
    let still = update_where(&mut p, "the entity at rest", |u| {
        u.last_input_seq == 4
            && u.entity(j.entity_id)
                .is_some_and(|e| e.vx == 0.0 && e.vy == 0.0)
    });
    let at_rest = *still.entity(j.entity_id).unwrap();

    let stopped_at = Instant::now();
    a.server.sigterm();
    let (_, ending) = p.read_to_end(SETTLE);
    assert!(
        matches!(ending, common::Ending::Closed(1001, _)),
        "{ending:?}"
    );
    assert_eq!(
        b.route_until("instance=gs-1", |n| n == "gb"),
        "gb",
        "B owns the instance"
    );
    let took = stopped_at.elapsed();
    eprintln!("B owned the stopped node's instance {took:?} after SIGTERM (TTL 30 s)");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(a.server.wait_exit(SETTLE).success());
    assert!(a
        .server
        .log_contains("final state replicated; the node left the fleet directory"));

    // The player resumes on B: its entity where it stopped, its inputs
    // counted (no periodic replica was ever written: this is the final one).
    let mut c = Client::connect(&b.server.play_url("gs-1"));
    let again = c.hello_resume("stopper", &w.resume_token);
    assert!(again.resumed && again.node_id == "gb");
    let back = c.expect_joined();
    assert_eq!(back.entity_id, j.entity_id);
    let e = back.entity(j.entity_id).expect("entity restored");
    assert_eq!((e.x, e.y), (at_rest.x, at_rest.y), "state at the stop");
    let u = c.next_update();
    assert_eq!(u.last_input_seq, 4, "every input applied on A is kept");
    assert_eq!(
        b.metric("shardline_directory_instances_taken_over_total"),
        1
    );
}

// ------------------------------------------------- issue 17: regressions

/// The answer to a Hello with `token` on `node`: the first Welcome or
/// Error, and how long it took.
fn resume_answer(node: &Node, token: &str) -> (ServerMsg, Duration) {
    let mut c = Client::connect(&node.server.url("/play"));
    let asked = Instant::now();
    c.send_hello("again", Some(token));
    let m = c.recv_until("Welcome or Error", Duration::from_secs(10), |m| {
        matches!(m, ServerMsg::Error { .. } | ServerMsg::Welcome { .. })
    });
    (m, asked.elapsed())
}

/// A resume of `token` is refused (ResumeRefused) by every node, with
/// nothing pointing elsewhere and nothing waiting.
fn refused_everywhere(nodes: &[&Node], token: &str, what: &str) {
    for n in nodes {
        let (m, took) = resume_answer(n, token);
        eprintln!("{what}: {} answered a resume in {took:?}", n.id);
        assert!(
            matches!(
                m,
                ServerMsg::Error {
                    code: ErrorCode::ResumeRefused,
                    ..
                }
            ),
            "{what}: a resume on {} must be refused, got {}",
            n.id,
            common::brief(&m)
        );
    }
}

#[test]
fn an_ended_seat_is_refused_at_once_on_every_node() {
    let redis = Redis::start();
    // Grace 3 s: a seat key would otherwise live 2 × (3 + 1.5) s.
    let grace = ["--reconnect-grace-ms", "3000"];
    let a = Node::start(&redis, "end-a", "eu", &grace);
    let b = Node::start(&redis, "end-b", "eu", &grace);
    wait_fleet(&[&a, &b], 2);

    // A player who closes its connection (1000) has left: its seat ends.
    let (p, w, _) = player_in(&a, "leaver", "end-1");
    let seat_key = format!("sl:seat:{}", w.resume_token);
    eventually("B finds the seat on A", SETTLE, || {
        wrong_node_for(&b, &w.resume_token)
    });
    p.close();
    // The node deletes the seat when it ends (a generous bound: the agent
    // does it within one message; the key would otherwise live 67 s).
    eventually(
        "the ended seat leaves the directory",
        Duration::from_secs(5),
        || redis.0.get(&seat_key).is_none().then_some(()),
    );
    refused_everywhere(&[&a, &b], &w.resume_token, "closed");

    // A player whose connection dropped and whose grace ran out.
    let (p2, w2, _) = player_in(&a, "dropper", "end-2");
    let seat_key2 = format!("sl:seat:{}", w2.resume_token);
    // The agent records the seat just after the join (its own thread).
    eventually("the seat is recorded at the join", SETTLE, || {
        redis.0.get(&seat_key2).map(|_| ())
    });
    drop(p2); // TCP closed without a close frame: the seat waits the grace
    eventually("the grace runs out on A", SETTLE, || {
        (a.metric("shardline_seats_expired_total") >= 1).then_some(())
    });
    eventually(
        "the expired seat leaves the directory",
        Duration::from_secs(5),
        || redis.0.get(&seat_key2).is_none().then_some(()),
    );
    refused_everywhere(&[&a, &b], &w2.resume_token, "expired");
}

/// Welcome.limits as a new player on each shard of `node` sees it.
fn welcome_limits(server: &Server, prefix: &str) -> Vec<shardline::protocol::LimitsInfo> {
    (0..common::SHARDS as u16)
        .map(|shard| {
            let id = common::id_on_shard(prefix, shard);
            let mut c = Client::connect(&server.play_url(&id));
            c.hello("limits").limits
        })
        .collect()
}

#[test]
fn welcome_reports_the_limits_in_force() {
    // In a fleet: `shardline fleet config set` for the node's region.
    let redis = Redis::start();
    let n = Node::start(&redis, "lim-us", "us", &[]);
    wait_fleet(&[&n], 1);
    let before = welcome_limits(&n.server, "lim-before");
    assert!(before.iter().all(|l| l.players_per_instance_max != 2));
    eventually("the node hears the fleet", SETTLE, || {
        let (ok, out) = fleet(
            &redis,
            &[
                "config",
                "set",
                "--region",
                "us",
                "players_per_instance_max=2",
                "heartbeat_ms=20000",
            ],
        );
        (ok && out.contains("sent to 1 node(s)")).then_some(())
    });
    // Enforced on every shard (a third player is refused) ...
    for shard in 0..common::SHARDS as u16 {
        let id = common::id_on_shard("lim-full", shard);
        let _p1 = player_in(&n, "one", &id);
        let _p2 = eventually("the new limit applies", SETTLE, || {
            let mut c = Client::connect(&n.server.play_url(&id));
            c.hello("two");
            c.send_join(Some(&id), true);
            match c.recv_until("Joined or Error", SETTLE, |m| {
                matches!(m, ServerMsg::Joined { .. } | ServerMsg::Error { .. })
            }) {
                ServerMsg::Joined { .. } => Some(c),
                _ => None,
            }
        });
        let mut third = Client::connect(&n.server.play_url(&id));
        third.hello("three");
        third.send_join(Some(&id), true);
        third.expect_error(ErrorCode::InstanceFull);
    }
    // ... and announced: every new Welcome says so.
    for l in welcome_limits(&n.server, "lim-after") {
        assert_eq!((l.players_per_instance_max, l.heartbeat_ms), (2, 20_000));
    }

    // A lone node: admin POST /config.
    let lone = Server::start(&["--admin-listen", "127.0.0.1:0"]);
    let admin = admin_addr(&lone);
    let (status, body) = common::http::http(
        admin,
        "POST",
        "/config",
        Some(r#"{"players_per_instance_max":3,"heartbeat_ms":15000}"#),
        None,
    );
    assert_eq!(status, 200, "{body}");
    eventually("every shard announces the new limits", SETTLE, || {
        welcome_limits(&lone, "lone")
            .iter()
            .all(|l| (l.players_per_instance_max, l.heartbeat_ms) == (3, 15_000))
            .then_some(())
    });
}

#[test]
fn a_drained_node_claims_nothing_it_will_not_create() {
    let redis = Redis::start();
    let a = Node::start(&redis, "dr-a", "eu", &[]);
    let b = Node::start(&redis, "dr-b", "eu", &[]);
    wait_fleet(&[&a, &b], 2);
    let (ok, out) = eventually("both nodes hear the fleet", SETTLE, || {
        let r = fleet(&redis, &["drain", "dr-a"]);
        r.1.contains("sent to 2 node(s)").then_some(r)
    });
    assert!(ok, "{out}");
    // The drain is in force on every shard of A.
    eventually("every shard of A drains", SETTLE, || {
        let stats = common::http::get_json(a.admin, "/stats");
        let shards = stats["shards"].as_array()?;
        shards
            .iter()
            .all(|s| s["draining"] == json!(true))
            .then_some(())
    });

    // A new instance asked of A: A does not claim it, and points the
    // player to the node of its region that has room.
    for (i, shard) in (0..common::SHARDS as u16).enumerate() {
        let id = common::id_on_shard(&format!("dr-new-{i}"), shard);
        let mut c = Client::connect(&a.server.play_url(&id));
        assert_eq!(c.expect_error(ErrorCode::WrongNode), b.url(), "{id}");
        assert_eq!(
            redis.0.get(&format!("sl:inst:{id}")),
            None,
            "{id} unclaimed"
        );
        assert_eq!(b.get(&format!("/v1/route?instance={id}")).0, 404);
        // There, it is created and owned.
        let _p = player_in(&b, "newcomer", &id);
        assert_eq!(a.route_until(&format!("instance={id}"), |_| true), "dr-b");
    }
}

// ------------------------------------------- issue 17: Sentinel, fencing

/// A player playing on its own thread: an input every 50 ms, every
/// StateUpdate read. It must never notice anything: no Error, no close,
/// ticks only going up, and every input it sent applied in the end.
struct Playing {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<PlayReport>,
    name: String,
}

struct PlayReport {
    updates: u64,
    inputs_sent: u32,
    /// Longest time between two StateUpdates (for the report; not asserted:
    /// a loaded machine stretches it).
    gap_max: Duration,
}

/// Generous bound on the gap between inputs of a playing player.
const INPUT_EVERY: Duration = Duration::from_millis(50);

fn play(mut c: Client, name: &str) -> Playing {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let who = name.to_owned();
    let handle = std::thread::spawn(move || {
        let (mut seq, mut updates, mut last_tick, mut gap_max) = (0u32, 0u64, 0u64, Duration::ZERO);
        let mut last_update = Instant::now();
        let mut applied = 0u32;
        let mut next_input = Instant::now();
        let mut on_msg = |m: ServerMsg, applied: &mut u32| match m {
            ServerMsg::StateUpdate {
                tick,
                last_input_seq,
                ..
            } => {
                assert!(tick > last_tick, "{who}: tick {tick} after {last_tick}");
                last_tick = tick;
                updates += 1;
                gap_max = gap_max.max(last_update.elapsed());
                last_update = Instant::now();
                *applied = last_input_seq;
            }
            ServerMsg::Error { code, message } => {
                panic!("{who} noticed: Error {code:?}: {message}")
            }
            ServerMsg::Transfer { url, .. } => panic!("{who} noticed: Transfer to {url}"),
            _ => {}
        };
        while !stopping.load(Ordering::Relaxed) {
            if Instant::now() >= next_input {
                seq += 1;
                let dir = if seq % 20 < 10 { 1.0 } else { -1.0 };
                c.input(seq, dir, 0.0);
                next_input += INPUT_EVERY;
            }
            if let Some(m) = c.recv_timeout(INPUT_EVERY) {
                on_msg(m, &mut applied);
            }
        }
        // Every input sent is applied (bounded: a few ticks).
        let deadline = Instant::now() + SETTLE;
        while applied < seq {
            assert!(
                Instant::now() < deadline,
                "{who}: input {seq} not applied (last applied {applied})"
            );
            if let Some(m) = c.recv_timeout(INPUT_EVERY) {
                on_msg(m, &mut applied);
            }
        }
        PlayReport {
            updates,
            inputs_sent: seq,
            gap_max,
        }
    });
    Playing {
        stop,
        handle,
        name: name.to_owned(),
    }
}

impl Playing {
    fn finish(self) -> PlayReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let r = self
            .handle
            .join()
            .unwrap_or_else(|_| panic!("{} noticed something (see above)", self.name));
        eprintln!(
            "{}: {} updates, {} inputs all applied, longest gap between updates {:?}",
            self.name, r.updates, r.inputs_sent, r.gap_max
        );
        r
    }
}

/// SIGSTOP (`true`) or SIGCONT of a node: a paused process.
fn freeze(node: &Node, stop: bool) {
    let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
    // SAFETY: kill(2) of our own child.
    assert_eq!(
        unsafe { libc::kill(node.server.pid() as libc::pid_t, sig) },
        0
    );
}

/// Polls `check` every 10 ms until it returns true; how long that took
/// from `since`.
fn time_until(what: &str, since: Instant, mut check: impl FnMut() -> bool) -> Duration {
    let deadline = Instant::now() + SETTLE;
    loop {
        if check() {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "{what}: not within {SETTLE:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a WebSocket upgrade for `/play?instance=id` on `node` is
/// accepted (101): the node owns or has just claimed `id`.
fn upgrade_accepted(node: &Node, id: &str) -> bool {
    let mut s = common::tcp(node.server.addr());
    let path = format!("/play?instance={id}");
    if s.write_all(&common::upgrade_request(node.server.addr(), &path))
        .is_err()
    {
        return false;
    }
    let (head, _) = common::read_http_head(&mut s);
    head.starts_with("HTTP/1.1 101")
}

#[test]
fn sentinel_failover_under_play() {
    let mut set = redis_procs::Sentinels::start(1000);
    let url = set.url();
    let mut a = Node::start_at(&url, "sf-a", "eu", &[]);
    let b = Node::start_at(&url, "sf-b", "eu", &[]);
    wait_fleet(&[&a, &b], 2);
    // The fleet command reaches the primary through the sentinels too.
    let (ok, out) = fleet_at(&url, &["nodes"]);
    assert!(
        ok && out.contains("\"sf-a\"") && out.contains("\"sf-b\""),
        "{out}"
    );

    let (pb1, _, _) = player_in(&b, "pb1", "sf-b1");
    let (pb2, _, _) = player_in(&b, "pb2", "sf-b2");
    let (_pa, wa, ja) = player_in(&a, "pa", "sf-a1");
    // A's game is replicated, and the replica has it.
    eventually("A's instance reaches the replica", SETTLE, || {
        (set.replica.cmd(&["EXISTS", "sl:snap:sf-a1"]) == redis::Value::Int(1)).then_some(())
    });
    let players = [play(pb1, "pb1"), play(pb2, "pb2")];
    std::thread::sleep(Duration::from_millis(500)); // some play before

    // The machine holding the Redis primary and node A dies.
    let connections = b.metric("shardline_directory_reconnects_total");
    let killed = Instant::now();
    set.primary.kill9();
    a.server.kill9();
    // Routing that reads the directory (an instance's owner), answered
    // from the promoted primary (B connected again).
    let routing = time_until("routing answers again", killed, || {
        b.get("/v1/route?instance=sf-b1").0 == 200
            && b.metric("shardline_directory_reconnects_total") > connections
    });
    let claim = time_until("a new instance is claimed", killed, || {
        upgrade_accepted(&b, "sf-new")
    });
    let take_over = time_until("B takes A's instance over", killed, || {
        let (status, body) = b.get("/v1/route?instance=sf-a1");
        status == 200 && body["node"] == "sf-b"
    });
    set.wait_promoted(SETTLE);
    eprintln!(
        "sentinel failover (down-after 1000 ms, heartbeat {HEARTBEAT_MS} ms, TTL {TTL_MS} ms): \
         primary killed → routing answers {routing:?} → first claim {claim:?} → first take-over {take_over:?}"
    );

    // A's player resumes on B: its own seat, same player id and entity.
    let mut c = Client::connect(&b.server.play_url("sf-a1"));
    let again = c.hello_resume("pa", &wa.resume_token);
    assert!(again.resumed && again.node_id == "sf-b");
    assert_eq!(again.player_id, wa.player_id, "the player id is kept");
    assert_eq!(c.expect_joined().entity_id, ja.entity_id);

    // B's players played on through it all.
    for p in players {
        let r = p.finish();
        assert!(r.updates > 0 && r.inputs_sent > 0);
    }
    // The fleet command finds the new primary.
    let (ok, out) = fleet_at(&url, &["nodes"]);
    assert!(ok && out.contains("\"sf-b\""), "{out}");
    assert!(b.metric("shardline_directory_reconnects_total") >= 2);
}

#[test]
fn a_claim_lost_in_a_failover_is_fenced_and_its_players_handed_over() {
    let mut set = redis_procs::Sentinels::start(1000);
    let url = set.url();
    // A TTL longer than A's pause below, so that its region does not take
    // its instances over meanwhile: this test is about the lost claim.
    let ttl = ["--directory-ttl-ms", "15000"];
    let a = Node::start_at(&url, "fx-a", "eu", &ttl);
    let b = Node::start_at(&url, "fx-b", "eu", &ttl);
    wait_fleet(&[&a, &b], 2);
    // A game A owned before: its claim reached the replica.
    let (p0, _, _) = player_in(&a, "p0", "fx-keep");
    eventually("A's claim reaches the replica", SETTLE, || {
        set.replica.get("sl:inst:fx-keep").map(|_| ())
    });
    // Its player plays through everything below.
    let p0 = play(p0, "p0");

    // From now on nothing A writes reaches the replica; A claims fx-split
    // and seats a player there, on the primary only.
    set.cut_replication();
    let (mut pa, wa, _) = player_in(&a, "pa", "fx-split");
    assert_eq!(set.primary.get("sl:inst:fx-split").as_deref(), Some("fx-a"));
    assert_eq!(set.replica.get("sl:inst:fx-split"), None, "not replicated");

    // A pauses (a GC pause, a stalled VM) while the primary dies and the
    // replica is promoted without A's claim.
    freeze(&a, true);
    set.primary.kill9();
    set.wait_promoted(SETTLE);
    eventually(
        "B sees the instance unowned on the new primary",
        SETTLE,
        || (b.get("/v1/route?instance=fx-split").0 == 404).then_some(()),
    );
    // B gets a player for fx-split: B claims it. Two nodes now believe
    // they own it.
    let (_pb, wb, _) = player_in(&b, "pb", "fx-split");
    assert_eq!(set.replica.get("sl:inst:fx-split").as_deref(), Some("fx-b"));
    freeze(&a, false);

    // A comes back, re-validates its claims against the new primary, and
    // hands fx-split's player to B with its seat.
    match pa.recv_until("Transfer", SETTLE, |m| {
        matches!(m, ServerMsg::Transfer { .. })
    }) {
        ServerMsg::Transfer { url, instance_id } => {
            assert_eq!((url, instance_id.as_str()), (b.url(), "fx-split"));
        }
        _ => unreachable!("filtered above"),
    }
    assert_eq!(pa.expect_close().0, 1000);
    let mut back = Client::connect(&b.server.play_url("fx-split"));
    let again = back.hello_resume("pa", &wa.resume_token);
    assert!(again.resumed, "its seat was handed over");
    assert_eq!(
        (again.node_id.as_str(), again.player_id),
        ("fx-b", wa.player_id)
    );
    let j = back.expect_joined();
    assert_eq!(j.instance_id, "fx-split");

    // One owner, every player once.
    for n in [&a, &b] {
        assert_eq!(n.route_until("instance=fx-split", |_| true), "fx-b");
    }
    eventually("A's copy is gone", SETTLE, || {
        (get(a.admin, "/instances/fx-split").0 == 404).then_some(())
    });
    let detail = common::http::get_json(b.admin, "/instances/fx-split");
    let mut ids: Vec<u64> = detail["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["player_id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![wa.player_id, wb.player_id];
    want.sort_unstable();
    assert_eq!(ids, want, "each player seated once, on B: {detail}");
    assert_eq!(
        set.replica
            .get(&format!("sl:seat:{}", wa.resume_token))
            .as_deref(),
        Some("fx-split")
    );
    assert_eq!(
        wrong_node_for(&a, &wa.resume_token),
        Some(b.url()),
        "A no longer holds the seat"
    );
    // The claim A kept is A's still, and its player never left.
    assert_eq!(a.route_until("instance=fx-keep", |_| true), "fx-a");
    let r = p0.finish();
    assert!(r.inputs_sent > 0);
    // A compared its claims with the new primary after reconnecting.
    assert!(a.metric("shardline_directory_claims_revalidated_total") >= 2);
    assert!(a.metric("shardline_directory_claims_lost_total") >= 1);
    assert_eq!(a.metric("shardline_directory_players_handed_over_total"), 1);
    assert_eq!(b.metric("shardline_directory_players_handed_in_total"), 1);
}
