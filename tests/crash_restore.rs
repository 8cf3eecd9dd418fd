//! Snapshots against real crashes: kill -9 a real server at random moments
//! (snapshots being written included), restart it on the same directory,
//! and check what comes back; resume with a token after a restart and
//! after a plain drop; refused tokens; bad files skipped at start.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::http::{admin_addr, eventually, get, get_json, tempdir};
use common::{Client, Server, RECV_TIMEOUT};
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

/// An instance as the newest valid snapshot holds it.
#[derive(Debug, Clone, PartialEq)]
struct Saved {
    tick: u64,
    state_crc32: String,
    players: u64,
}

/// `instance` in the newest valid snapshot of its shard, chosen here from
/// `snapshot inspect --json`'s per-file facts (verdict, shard, generation),
/// not from its `in_use` mark: a restore that picked an older file, or
/// ticked on from it, would not match.
fn newest_valid(report: &serde_json::Value, instance: &str) -> Option<Saved> {
    report["files"]
        .as_array()?
        .iter()
        .filter(|f| f["verdict"] == "ok")
        .filter_map(|f| {
            let i = f["instances"]
                .as_array()?
                .iter()
                .find(|i| i["id"] == instance)?;
            Some((
                f["generation"].as_u64()?,
                Saved {
                    tick: i["tick"].as_u64()?,
                    state_crc32: i["state_crc32"].as_str()?.to_owned(),
                    players: i["players"].as_u64()?,
                },
            ))
        })
        .max_by_key(|(generation, _)| *generation)
        .map(|(_, saved)| saved)
}

/// The log level under which a restart logs each restored instance's tick
/// and state checksum.
const RESTORE_LOG: &[&str] = &["--log-level", "info,shardline::shard::snapshots=debug"];

/// (tick, state_crc32) a restarted server logged for `instance`.
fn restored_as(server: &Server, instance: &str) -> (u64, String) {
    let mark = format!("instance={instance} ");
    server.wait_log(&mark, Duration::from_secs(15));
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("instance restored") && l.contains(&mark))
        .unwrap_or_else(|| panic!("no 'instance restored' line for {instance}:\n{log}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            .to_owned()
    };
    (
        field("tick=").parse().expect("a tick"),
        field("state_crc32="),
    )
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
fn kill_9_at_random_moments_restores_the_newest_valid_snapshot_every_time() {
    let dir = tempdir("crash");
    let id = "crash-arena";
    let mut seen_players = 0;
    for (round, wait_ms) in delays(0x5eed, CRASHES, 700).into_iter().enumerate() {
        let (mut server, _admin) = start(&dir, RESTORE_LOG);
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
        // Play until a snapshot that holds this round's player exists, then
        // a little more: the kill lands at a pseudo-random moment, often
        // while the next snapshot is being written.
        let mut seq = 0;
        let mut play = |c: &mut Client| {
            seq += 1;
            c.input(seq, if round % 2 == 0 { 1.0 } else { -1.0 }, 0.5);
            c.next_update();
        };
        let before = eventually(
            "a snapshot with this round's player",
            Duration::from_secs(15),
            || {
                play(&mut c);
                newest_valid(&inspect(&dir), id)
                    .filter(|s| s.players as usize >= joined.entities.len())
            },
        );
        let until = Instant::now() + Duration::from_millis(wait_ms);
        while Instant::now() < until {
            play(&mut c);
        }
        server.kill9();
        drop(c);

        let report = inspect(&dir);
        let newest = newest_valid(&report, id)
            .unwrap_or_else(|| panic!("round {round}: no snapshot of {id}: {report:#}"));
        assert!(
            newest.tick >= before.tick,
            "round {round}: the newest valid snapshot went back in time ({newest:?}, {before:?} seen before)"
        );

        // The restart restores exactly that snapshot: its tick and its
        // world (checksum of the rebuilt instance's state), and its seats.
        let (restarted, admin) = start(&dir, RESTORE_LOG);
        let (tick, crc) = restored_as(&restarted, id);
        assert_eq!(
            (tick, crc.as_str()),
            (newest.tick, newest.state_crc32.as_str()),
            "round {round}: restored from another state than the newest valid snapshot's"
        );
        let restored = get_json(admin, &format!("/instances/{id}"));
        assert_eq!(
            restored["seats"].as_array().unwrap().len() as u64,
            newest.players,
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
    // At rest before the stop, so that where it is does not depend on how
    // many ticks pass before the final snapshot.
    c.input(16, 0.0, 0.0);
    let before = c.updates_until("at rest", RECV_TIMEOUT, |u| {
        u.last_input_seq == 16
            && u.entity(joined.entity_id)
                .is_some_and(|e| (e.vx, e.vy) == (0.0, 0.0))
    });
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
    assert_eq!(
        (restored.x, restored.y),
        (mine.x, mine.y),
        "the entity where it was at the stop"
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
