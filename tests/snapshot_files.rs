//! `shardline snapshot inspect` on real files: snapshots written by the
//! store, then damaged the way disks and people damage them, read back by
//! the binary as an operator would.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shardline::game::{
    ArenaFactory, GameFactory, Instance, InstanceId, InstanceLimits, PlayerInput,
};
use shardline::snapshot::{ShardSnapshot, SnapshotLimits, SnapshotStore};

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "shardline-snapshot-files-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Shard `shard`'s snapshot: `instances` arenas `<prefix>-<i>` with
/// `players` seated players each, stepped `ticks` times.
fn shard_snapshot(
    shard: u32,
    prefix: &str,
    instances: usize,
    players: u64,
    ticks: u64,
) -> ShardSnapshot {
    let limits = InstanceLimits {
        players_max: 16,
        inputs_per_tick_max: 4,
    };
    let records = (0..instances)
        .map(|i| {
            let id = InstanceId::parse(&format!("{prefix}-{i}")).unwrap();
            let mut inst = Instance::new(id.clone(), ArenaFactory.create(&id), limits);
            for p in 1..=players {
                inst.join(p, &format!("player-{p}")).unwrap();
                let input = PlayerInput {
                    seq: 1,
                    move_x: 1.0,
                    ..Default::default()
                };
                inst.push_input(p, input);
            }
            for _ in 0..ticks {
                inst.step(1.0 / 60.0).unwrap();
            }
            let mut snap = inst.save().unwrap();
            snap.fill_tokens(|p| Some(format!("tok-{p}")));
            snap
        })
        .collect();
    ShardSnapshot::new(shard, 2, "node-a", "arena", records)
}

fn inspect(args: &[&str], path: &Path) -> Output {
    common::procs::output_within(
        Command::new(env!("CARGO_BIN_EXE_shardline"))
            .args(["snapshot", "inspect"])
            .arg(path)
            .args(args),
        common::CLI_TIMEOUT,
    )
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json prints one JSON document")
}

#[test]
fn directory_json_reports_good_and_bad_files() {
    let dir = TempDir::new("json");
    let store = SnapshotStore::open(&dir.0, SnapshotLimits::default()).unwrap();
    store
        .write_blocking(shard_snapshot(0, "m", 1, 2, 5))
        .unwrap();
    store
        .write_blocking(shard_snapshot(0, "m", 2, 3, 9))
        .unwrap();
    let one = store
        .write_blocking(shard_snapshot(1, "n", 1, 1, 1))
        .unwrap();
    drop(store);
    // Damage: shard 1's only file loses its tail (a crash on a file system
    // without the store's rename), plus an empty and a foreign file.
    let bytes = fs::read(&one.path).unwrap();
    fs::write(&one.path, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(dir.0.join("shard-0002.a.snap"), b"").unwrap();
    fs::write(dir.0.join("shard-0002.b.snap"), b"#!/bin/sh\necho hi\n").unwrap();

    let report = json_of(&inspect(&["--json"], &dir.0));
    assert_eq!(report["files_ok"], 2);
    assert_eq!(report["files_bad"], 3);
    assert_eq!(report["instances_in_use"], 2);
    let files = report["files"].as_array().unwrap();
    let file = |name: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} in report"))
    };
    let used = file("shard-0000.b.snap");
    assert_eq!(used["verdict"], "ok");
    assert_eq!(used["in_use"], true);
    assert_eq!(used["format_version"], 1);
    assert_eq!(used["generation"], 2);
    assert_eq!(
        (used["shard"].clone(), used["shards"].clone()),
        (0.into(), 2.into())
    );
    assert_eq!(used["node_id"], "node-a");
    assert_eq!(used["game"], "arena");
    assert!(used["written_at"].as_str().unwrap().ends_with('Z'));
    let inst = &used["instances"][1];
    assert_eq!(inst["id"], "m-1");
    assert_eq!(
        (
            inst["tick"].clone(),
            inst["players"].clone(),
            inst["entities"].clone()
        ),
        (9.into(), 3.into(), 3.into())
    );
    assert!(inst["state_bytes"].as_u64().unwrap() > 0);
    assert_eq!(file("shard-0000.a.snap")["in_use"], false);

    let cut = file("shard-0001.a.snap");
    assert_eq!(cut["verdict"], "truncated");
    let want = format!(
        "truncated: want {} bytes, have {}",
        bytes.len(),
        bytes.len() / 2
    );
    assert_eq!(cut["reason"], want.as_str());
    assert_eq!(cut["generation"], 1, "the header still tells what it was");
    assert_eq!(file("shard-0002.a.snap")["verdict"], "empty");
    let foreign = file("shard-0002.b.snap");
    assert_eq!(foreign["verdict"], "foreign");
    assert!(foreign["reason"]
        .as_str()
        .unwrap()
        .contains("bad magic \"#!/bin/s\""));
}

#[test]
fn single_file_text_lists_instances() {
    let dir = TempDir::new("text");
    let store = SnapshotStore::open(&dir.0, SnapshotLimits::default()).unwrap();
    let stats = store
        .write_blocking(shard_snapshot(1, "room", 3, 4, 2))
        .unwrap();
    let out = inspect(&[], &stats.path);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("shard-0001.a.snap: ok\n"), "{text}");
    assert!(
        text.contains("format v1, generation 1, shard 1 of 2, payload crc32 "),
        "{text}"
    );
    assert!(
        text.contains("node \"node-a\", game \"arena\", written 20"),
        "{text}"
    );
    assert!(text.contains("3 instances"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("room-2"))
        .expect("row");
    let cols: Vec<_> = row.split_whitespace().collect();
    assert_eq!(cols[..4], ["room-2", "2", "4", "4"], "{row}");
    assert!(
        text.contains("1 files, 1 ok, 0 bad; 3 instances in use"),
        "{text}"
    );
}

#[test]
fn bad_files_exit_zero_missing_path_exits_two() {
    let dir = TempDir::new("exit");
    let junk = dir.0.join("junk.snap");
    fs::write(&junk, vec![0x5a; 4096]).unwrap();
    let out = inspect(&[], &junk);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("junk.snap: foreign: foreign file: bad magic \"ZZZZZZZZ\""),
        "{text}"
    );

    let missing = dir.0.join("no-such-dir");
    let out = inspect(&["--json"], &missing);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no-such-dir") && err.contains("No such file"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
