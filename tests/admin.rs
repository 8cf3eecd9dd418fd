//! The admin API on a real server: Prometheus exposition (checked by
//! promtool and scraped by a real Prometheus), stats and histograms, live
//! instance inspection, run-time config, drain, the bearer token, and
//! `shardline stats`.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::http::{admin_addr, eventually, get, get_json, http, tempdir};
use common::{Client, Server};
use shardline::protocol::ErrorCode;

fn server_with_admin(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["--admin-listen", "127.0.0.1:0", "--heartbeat-ms", "200"];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let admin = admin_addr(&server);
    (server, admin)
}

/// Two players on each shard, each sending `inputs` inputs.
fn drive(server: &Server, inputs: u32) -> Vec<Client> {
    let mut clients = Vec::new();
    for shard in 0..2 {
        let id = common::id_on_shard("adm", shard);
        for n in 0..2 {
            let mut c = Client::connect(&server.play_url(&id));
            c.hello(&format!("p{shard}{n}"));
            c.join(Some(&id));
            clients.push(c);
        }
    }
    for seq in 1..=inputs {
        for c in clients.iter_mut() {
            c.input(seq, 1.0, 0.0);
        }
        for c in clients.iter_mut() {
            c.next_update();
        }
    }
    clients
}

fn counter(stats: &serde_json::Value, name: &str) -> u64 {
    stats["histograms_us"][name]["count"].as_u64().unwrap()
}

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_scrapes_every_shard() {
    let (server, admin) = server_with_admin(&[]);
    let _clients = drive(&server, 10);
    let (status, text) = get(admin, "/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("shardline_input_to_update_seconds_count{shard=\"1\"}"));
    common::redis::require("promtool", "prometheus");
    let mut promtool = common::procs::Proc::spawn(
        Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("start promtool");
    std::io::Write::write_all(promtool.stdin().unwrap(), text.as_bytes()).unwrap();
    // Closes promtool's stdin.
    drop(promtool.take_stdin());
    let out = common::procs::finish_within(&mut promtool, common::CLI_TIMEOUT);
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempdir("prom");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: shardline\n    static_configs:\n      - targets: ['{admin}']\n"
        ),
    )
    .unwrap();
    common::redis::require("prometheus", "prometheus");
    // Port 0: Prometheus binds a free port and logs it ("Listening on").
    let mut prom = common::procs::Proc::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("start prometheus");
    let log = common::procs::Captured::default();
    log.attach(prom.take_stdout());
    log.attach(prom.take_stderr());
    let prom_addr = log
        .wait_for(Duration::from_secs(60), 2, |t| {
            common::procs::address_after(t, "msg=\"Listening on\" address=")
        })
        .unwrap_or_else(|e| panic!("prometheus did not say where it listens: {e}"));
    let shards = eventually(
        "Prometheus returns both shards' series",
        Duration::from_secs(60),
        || {
            let (status, body) = std::net::TcpStream::connect(prom_addr)
                .ok()
                .map(|_| get(prom_addr, "/api/v1/query?query=shardline_ticks_total"))?;
            if status != 200 {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let result = v["data"]["result"].as_array()?;
            let mut shards: Vec<String> = result
                .iter()
                .filter_map(|r| r["metric"]["shard"].as_str().map(str::to_owned))
                .collect();
            shards.sort();
            (shards.len() == 2).then_some(shards)
        },
    );
    drop(prom);
    assert_eq!(shards, ["0", "1"]);
}

#[test]
fn histograms_grow_with_traffic_and_export_for_merging() {
    let (server, admin) = server_with_admin(&[]);
    let mut clients = drive(&server, 5);
    let before = get_json(admin, "/stats");
    for seq in 6..=25 {
        for c in clients.iter_mut() {
            c.input(seq, 0.0, 1.0);
        }
        for c in clients.iter_mut() {
            c.next_update();
        }
    }
    let after = get_json(admin, "/stats");
    for h in ["input_to_update", "tick_duration", "tick_lateness"] {
        assert!(counter(&after, h) > counter(&before, h), "{h} did not grow");
    }
    assert_eq!(counter(&after, "handshake"), 4, "one per connection");
    assert!(counter(&after, "input_to_update") >= 4 * 20);
    // Server pings every 200 ms; the clients' pongs give round trips.
    let rtt = eventually("RTT samples", Duration::from_secs(10), || {
        for c in clients.iter_mut() {
            c.next_update();
        }
        let s = get_json(admin, "/stats");
        (counter(&s, "rtt") > 0).then_some(counter(&s, "rtt"))
    });
    assert!(rtt > 0);
    assert_eq!(after["shards"].as_array().unwrap().len(), 2);
    // Raw HDR histograms, per shard, for other tools to merge.
    let (status, b64) = get(admin, "/histograms?shard=1&name=input_to_update");
    assert_eq!(status, 200);
    assert!(b64.trim().len() > 20, "{b64}");
    let (status, _) = get(admin, "/histograms?name=nope");
    assert_eq!(status, 400);
}

#[test]
fn instance_inspection_shows_the_joined_players() {
    let (server, admin) = server_with_admin(&[]);
    let id = "inspect-me";
    let mut a = Client::connect(&server.play_url(id));
    let wa = a.hello("alice");
    a.join(Some(id));
    let mut b = Client::connect(&server.play_url(id));
    let wb = b.hello("bob");
    b.join(Some(id));
    let detail = get_json(admin, &format!("/instances/{id}"));
    let mut players: Vec<u64> = detail["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["player_id"].as_u64().unwrap())
        .collect();
    players.sort();
    let mut want = vec![wa.player_id, wb.player_id];
    want.sort();
    assert_eq!(players, want);
    assert_eq!(detail["entities"].as_array().unwrap().len(), 2);
    let list = get_json(admin, "/instances");
    assert!(list["instances"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id && i["players"] == 2));
    assert_eq!(get(admin, "/instances/nothing-here").0, 404);
    // A standalone node has no fleet to show (tests/directory.rs: one that has).
    assert_eq!(
        get_json(admin, "/fleet"),
        serde_json::json!({ "directory": null })
    );
}

#[test]
fn config_changes_max_connections_and_refuses_unsafe_keys() {
    let (server, admin) = server_with_admin(&[]);
    let mut a = Client::connect(&server.url("/play"));
    a.hello("a");
    let mut b = Client::connect(&server.url("/play"));
    b.hello("b");
    let (status, body) = http(
        admin,
        "POST",
        "/config",
        Some(r#"{"max_connections": 2}"#),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let err = Client::try_connect(&server.url("/play"))
        .err()
        .expect("third refused");
    assert!(err.to_string().contains("503"), "{err}");
    let (status, body) = http(admin, "POST", "/config", Some(r#"{"tick_rate": 60}"#), None);
    assert_eq!(status, 400);
    assert!(body.contains("cannot change at run time"), "{body}");
    let (status, _) = http(
        admin,
        "POST",
        "/config",
        Some(r#"{"max_connections": 3}"#),
        None,
    );
    assert_eq!(status, 200);
    Client::connect(&server.url("/play")).hello("c");
}

#[test]
fn drain_stops_new_placements_and_keeps_running_games() {
    let (server, admin) = server_with_admin(&[]);
    let id = "drain-arena";
    let mut playing = Client::connect(&server.play_url(id));
    playing.hello("stays");
    playing.join(Some(id));
    let (status, body) = http(admin, "POST", "/drain", None, None);
    assert_eq!(status, 202, "{body}");
    let mut late = Client::connect(&server.play_url(id));
    late.hello("late");
    late.send_join(Some(id), true);
    late.expect_error(ErrorCode::ShuttingDown);
    let t0 = playing.next_update().tick;
    let t1 = playing.next_update().tick;
    assert_eq!(t1, t0 + 1, "the running game keeps ticking");
    let (status, body) = get(admin, "/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"));
    let drain = get_json(admin, "/drain");
    assert_eq!(drain["empty"], false);
}

#[test]
fn admin_token_is_required_off_loopback() {
    let out = common::shardline_cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "0.0.0.0:0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-token"));

    let server = Server::start(&["--admin-listen", "0.0.0.0:0", "--admin-token", "s3cret"]);
    let port = admin_addr(&server).port();
    let admin: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (status, body) = http(admin, "GET", "/stats", None, None);
    assert_eq!((status, body.as_str()), (401, ""));
    let (status, body) = http(admin, "GET", "/metrics", None, Some("wrong"));
    assert_eq!((status, body.as_str()), (401, ""));
    let (status, _) = http(admin, "GET", "/stats", None, Some("s3cret"));
    assert_eq!(status, 200);
}

#[test]
fn stats_command_prints_per_shard_percentile_tables() {
    let (server, admin) = server_with_admin(&[]);
    let _clients = drive(&server, 5);
    let admin_arg = admin.to_string();
    let out = common::shardline_cli(&["stats", "--admin", &admin_arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "input_to_update (ms)",
        "tick_duration (ms)",
        "p99.9",
        "all ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let rows = text
        .lines()
        .skip_while(|l| !l.starts_with("input_to_update"))
        .take(5)
        .filter(|l| l.starts_with('0') || l.starts_with('1') || l.starts_with("all"))
        .count();
    assert_eq!(rows, 3, "shard 0, shard 1 and merged rows:\n{text}");
    let json = common::shardline_cli(&["stats", "--admin", &admin_arg, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        v["histograms_us"]["input_to_update"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn stats_watch_redraws_in_place_until_the_node_goes_away() {
    let (server, admin) = server_with_admin(&[]);
    let _clients = drive(&server, 5);
    let mut watch = common::procs::Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_shardline"))
            .args(["stats", "--admin", &admin.to_string(), "--watch", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("start shardline stats --watch");
    let out = common::procs::Captured::default();
    out.attach(watch.take_stdout());
    out.attach(watch.take_stderr());
    // Each refresh clears the screen, homes the cursor and redraws the
    // tables (once a second here; bounded generously).
    const CLEAR: &str = "\x1b[2J\x1b[H";
    let text = out
        .wait_for(Duration::from_secs(30), 2, |t| {
            (t.matches(CLEAR).count() >= 3).then(|| t.to_owned())
        })
        .unwrap_or_else(|e| panic!("three redraws of stats --watch: {e}"));
    for frame in text.split(CLEAR).skip(1).take(2) {
        assert!(frame.contains("input_to_update (ms)"), "{frame}");
        assert!(
            frame.contains("(refreshing every 1 s; Ctrl-C to stop)"),
            "{frame}"
        );
    }
    // The node stops: the next refresh fails and says why.
    drop(server);
    let status = watch
        .wait_within(Duration::from_secs(30))
        .expect("stats --watch ends once the node is gone");
    assert!(!status.success());
    // Its last words may still be in the pipe's reader when it exits.
    out.wait_for(Duration::from_secs(10), 2, |t| {
        t.contains("cannot reach the admin endpoint").then_some(())
    })
    .unwrap_or_else(|e| panic!("stats --watch says why it stopped: {e}"));
}
