//! Snapshots against real crashes: kill -9 a real server at random moments
//! (snapshots being written included), restart it on the same directory,
//! and check what comes back; resume with a token after a restart and
//! after a plain drop; refused tokens; bad files skipped at start.

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http::{admin_addr, eventually, get, get_json, tempdir};
use common::{Client, Server};
use shardline::protocol::ErrorCode;

/// Short, so kills often land while a snapshot is being written.
const SNAPSHOT_INTERVAL_MS: u64 = 150;
const CRASHES: usize = 20;

fn start(dir: &Path, extra: &[&str]) -> (Server, std::net::SocketAddr) {
    let interval = SNAPSHOT_INTERVAL_MS.to_string();
    let mut args = vec![
        "--snapshot-dir",
        dir.to_str().unwrap(),
        "--snapshot-interval-ms",
        &interval,
        "--admin-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let admin = admin_addr(&server);
    (server, admin)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The newest good generation per shard file set, from `snapshot inspect --json`.
fn inspect(dir: &Path) -> serde_json::Value {
    let out = common::shardline_cli(&["snapshot", "inspect", dir.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json")
}

/// (written_at_unix_ms, tick, players) of `instance` in the snapshot file
/// that a restart would use.
fn snapshot_of(report: &serde_json::Value, instance: &str) -> Option<(u64, u64, u64)> {
    report["files"]
        .as_array()?
        .iter()
        .filter(|f| f["in_use"].as_bool() == Some(true))
        .find_map(|f| {
            f["instances"]
                .as_array()?
                .iter()
                .find(|i| i["id"] == instance)
                .map(|i| {
                    (
                        f["written_at_unix_ms"].as_u64().unwrap(),
                        i["tick"].as_u64().unwrap(),
                        i["players"].as_u64().unwrap(),
                    )
                })
        })
}

/// Deterministic pseudo-random delays, so a failure can be replayed.
fn delays(seed: u64, n: usize, max_ms: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % max_ms
        })
        .collect()
}

#[test]
fn kill_9_at_random_moments_restores_a_recent_snapshot_every_time() {
    let dir = tempdir("crash");
    let id = "crash-arena";
    let mut seen_players = 0;
    for (round, wait_ms) in delays(0x5eed, CRASHES, 700).into_iter().enumerate() {
        let (mut server, admin) = start(&dir, &[]);
        assert!(
            !server.log_contains("panicked"),
            "round {round}: {}",
            server.log()
        );
        // A new player joins every round; earlier players' seats come back
        // from the snapshot (the grace period outlives the restart).
        let mut c = Client::connect(&server.play_url(id));
        c.hello(&format!("r{round}"));
        let joined = c.join(Some(id));
        seen_players = seen_players.max(joined.entities.len());
        let started = Instant::now();
        let mut seq = 0;
        while started.elapsed() < Duration::from_millis(200 + wait_ms) {
            seq += 1;
            c.input(seq, if round % 2 == 0 { 1.0 } else { -1.0 }, 0.5);
            c.next_update();
        }
        let live_tick = get_json(admin, &format!("/instances/{id}"))["tick"]
            .as_u64()
            .unwrap();
        server.kill9();
        let killed_at = now_ms();
        drop(c);

        let report = inspect(&dir);
        let (written_at, snap_tick, snap_players) = snapshot_of(&report, id)
            .unwrap_or_else(|| panic!("round {round}: no snapshot of {id}: {report:#}"));
        assert!(
            killed_at.saturating_sub(written_at) <= SNAPSHOT_INTERVAL_MS + 1000,
            "round {round}: newest snapshot written {} ms before the kill",
            killed_at - written_at
        );
        assert!(
            snap_tick <= live_tick + 30,
            "round {round}: snapshot from the future?"
        );

        let restart_began = Instant::now();
        let (restarted, admin) = start(&dir, &[]);
        let restored = get_json(admin, &format!("/instances/{id}"));
        // The restored instance starts at the snapshot's tick and has ticked
        // since (30 Hz) — never from an older snapshot, never a skip ahead.
        let restored_tick = restored["tick"].as_u64().unwrap();
        let ticked_since = restart_began.elapsed().as_secs_f64() * 30.0 + 2.0;
        assert!(
            restored_tick >= snap_tick && (restored_tick - snap_tick) as f64 <= ticked_since,
            "round {round}: restored at tick {restored_tick}, snapshot tick {snap_tick}, \
             at most {ticked_since:.0} ticks since the restart"
        );
        assert_eq!(
            restored["seats"].as_array().unwrap().len() as u64,
            snap_players,
            "round {round}: seats"
        );
        assert!(!restarted.log_contains("panicked"));
        drop(restarted);
    }
    assert!(seen_players >= 2, "players accumulated across restarts");
}

#[test]
fn a_player_resumes_its_own_entity_after_a_restart() {
    let dir = tempdir("resume-restart");
    let id = "resume-arena";
    let (mut server, _) = start(&dir, &[]);
    let mut c = Client::connect(&server.play_url(id));
    let welcome = c.hello("me");
    let joined = c.join(Some(id));
    for seq in 1..=15 {
        c.input(seq, 1.0, 0.0);
        c.next_update();
    }
    let before = c.next_update();
    let mine = *before.entity(joined.entity_id).expect("my entity");
    // A graceful stop writes a final snapshot; then the node comes back.
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(15)).success());
    let (server, _) = start(&dir, &[]);
    let mut c = Client::connect(&server.play_url(id));
    let again = c.hello_resume("me", &welcome.resume_token);
    assert!(again.resumed);
    assert_eq!(again.player_id, welcome.player_id);
    let rejoined = c.expect_joined();
    assert_eq!(rejoined.entity_id, joined.entity_id, "same entity");
    let restored = rejoined.entity(joined.entity_id).unwrap();
    assert!(
        (restored.x - mine.x).abs() < 30.0,
        "{restored:?} vs {mine:?}"
    );
    // And it plays on: seq numbering continues past the restored one.
    let last = c.next_update().last_input_seq;
    c.input(last + 1, 0.0, 1.0);
    let applied = eventually("input after resume", Duration::from_secs(5), || {
        let u = c.next_update();
        (u.last_input_seq == last + 1).then_some(u)
    });
    assert!(applied.inputs_applied > 0);
}

#[test]
fn a_player_resumes_after_a_plain_drop_and_tokens_are_refused_when_unknown_or_expired() {
    let dir = tempdir("resume-drop");
    let (server, admin) = start(&dir, &["--reconnect-grace-ms", "1500"]);
    let id = "drop-arena";
    let mut c = Client::connect(&server.play_url(id));
    let welcome = c.hello("dropper");
    let joined = c.join(Some(id));
    c.input(1, 1.0, 0.0);
    c.next_update();
    drop(c); // TCP close, no close frame
             // Resume from /play (any shard): the server finds the seat.
    let mut c = Client::connect(&server.url("/play"));
    let again = c.hello_resume("dropper", &welcome.resume_token);
    assert!(again.resumed);
    assert_eq!(c.expect_joined().entity_id, joined.entity_id);
    drop(c);

    let mut stranger = Client::connect(&server.url("/play"));
    stranger.send_hello("x", Some("00000000000000000000000000000000"));
    stranger.expect_error(ErrorCode::ResumeRefused);
    // The connection stays usable for a fresh Hello.
    assert!(!stranger.hello("fresh").resumed);

    // After the grace period the seat is released and the token refused.
    eventually(
        "seat released after the grace",
        Duration::from_secs(10),
        || {
            let d = get_json(admin, &format!("/instances/{id}"));
            d["seats"].as_array().unwrap().is_empty().then_some(())
        },
    );
    let mut late = Client::connect(&server.play_url(id));
    late.send_hello("dropper", Some(&welcome.resume_token));
    late.expect_error(ErrorCode::ResumeRefused);
}

#[test]
fn corrupt_truncated_empty_and_foreign_files_are_skipped_at_start() {
    let dir = tempdir("bad-files");
    let id = "survivor";
    let (mut server, _) = start(&dir, &[]);
    let mut c = Client::connect(&server.play_url(id));
    c.hello("s");
    c.join(Some(id));
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(15)).success());
    // Damage what a restart might read: shard 0's files, plus strangers.
    let shard0 = common::owner(id) ^ 1;
    for (name, bytes) in [
        (format!("shard-000{shard0}.a.snap"), b"".to_vec()),
        (
            format!("shard-000{shard0}.b.snap"),
            b"SHLNSNAP but then garbage".to_vec(),
        ),
        ("shard-0007.a.snap".to_owned(), vec![0xAB; 4096]),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let (server, admin) = start(&dir, &[]);
    assert!(server.log_contains("snapshot skipped"), "{}", server.log());
    assert!(server.log_contains("shard-0007.a.snap"));
    let restored = get_json(admin, &format!("/instances/{id}"));
    assert_eq!(restored["seats"].as_array().unwrap().len(), 1);
    let (status, _) = get(admin, "/health");
    assert_eq!(status, 200);
}

#[test]
fn no_restore_starts_empty() {
    let dir = tempdir("no-restore");
    let (mut server, _) = start(&dir, &[]);
    let mut c = Client::connect(&server.play_url("gone"));
    c.hello("g");
    c.join(Some("gone"));
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(15)).success());
    let (server, admin) = start(&dir, &["--no-restore"]);
    assert_eq!(get(admin, "/instances/gone").0, 404);
    drop(server);
}
