//! Snapshot throughput by shape: a shard of 2,000 arena instances × 16
//! players (and 10× that), captured on the shard thread, archived, written
//! crash-safely (fsync + rename + directory fsync) and loaded back.
//!
//! `cargo bench --bench snapshot` prints criterion's times and MiB/s, and
//! first a plain summary in MB/s (10^6 bytes) from a few timed runs.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use shardline::game::{
    ArenaFactory, GameFactory, Instance, InstanceId, InstanceLimits, PlayerId, PlayerInput,
};
use shardline::snapshot::format::encode;
use shardline::snapshot::{load_all, ShardSnapshot, SnapshotLimits, SnapshotStore};

const PLAYERS: u64 = 16;
const GAME: &str = "arena";

/// `count` arena instances with `PLAYERS` moving players each.
fn instances(count: usize) -> Vec<Instance> {
    let limits = InstanceLimits {
        players_max: PLAYERS as usize,
        inputs_per_tick_max: 4,
    };
    (0..count)
        .map(|i| {
            let id = InstanceId::parse(&format!("match-{i:06}")).unwrap();
            let mut inst = Instance::new(id.clone(), ArenaFactory.create(&id), limits);
            for p in 0..PLAYERS {
                let player = i as u64 * PLAYERS + p + 1;
                inst.join(player, &format!("player-{player}")).unwrap();
                let input = PlayerInput {
                    seq: 1,
                    move_x: (p as f32 / PLAYERS as f32) * 2.0 - 1.0,
                    move_y: 0.5,
                    buttons: 0,
                };
                inst.push_input(player, input);
            }
            for _ in 0..10 {
                inst.step(1.0 / 60.0).unwrap();
            }
            inst
        })
        .collect()
}

/// Resume tokens by player, as a shard keeps them (32 characters each).
fn tokens(instances: &[Instance]) -> HashMap<PlayerId, String> {
    instances
        .iter()
        .flat_map(|inst| {
            inst.seats()
                .map(|s| (s.player, format!("{:032x}", s.player)))
        })
        .collect()
}

/// What a shard hands the store: every instance saved, tokens filled from
/// the shard's table.
fn capture(instances: &mut [Instance], tokens: &HashMap<PlayerId, String>) -> ShardSnapshot {
    let records = instances
        .iter_mut()
        .map(|inst| {
            let mut snap = inst.save().unwrap();
            snap.fill_tokens(|p| tokens.get(&p).cloned());
            snap
        })
        .collect();
    ShardSnapshot::new(0, 1, "bench-node", GAME, records)
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("shardline-bench-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Plain numbers first: the best of a few runs of each step.
fn summary() {
    const RUNS: usize = 5;
    for count in [2_000, 20_000] {
        let mut insts = instances(count);
        let tokens = tokens(&insts);
        let scratch = Scratch::new(&format!("summary-{count}"));
        let store = SnapshotStore::open(&scratch.0, SnapshotLimits::default()).unwrap();
        let best = |f: &mut dyn FnMut() -> Duration| (0..RUNS).map(|_| f()).min().unwrap();
        let capture_d = best(&mut || {
            let t = Instant::now();
            std::hint::black_box(capture(&mut insts, &tokens));
            t.elapsed()
        });
        let snap = capture(&mut insts, &tokens);
        let bytes = encode(&snap).unwrap().file_bytes();
        let (mut encode_d, mut io_d) = (Duration::MAX, Duration::MAX);
        for _ in 0..RUNS {
            let stats = store.write_blocking(snap.clone()).unwrap();
            encode_d = encode_d.min(stats.encode);
            io_d = io_d.min(stats.io);
        }
        let load_d = best(&mut || {
            let t = Instant::now();
            let report = load_all(&scratch.0, GAME, SnapshotLimits::default(), &mut |_| {});
            assert_eq!(report.unwrap().instances.len(), count);
            t.elapsed()
        });
        println!(
            "snapshot {count} instances x {PLAYERS} players: {:.2} MB file; \
             capture {:.1} ms ({:.0} MB/s, {:.1} µs per instance), encode {:.1} ms ({:.0} MB/s), \
             write+fsync+rename {:.1} ms ({:.0} MB/s), whole write {:.0} MB/s; \
             load_all {:.1} ms ({:.0} MB/s)",
            bytes as f64 / 1e6,
            capture_d.as_secs_f64() * 1e3,
            mb_per_s(bytes, capture_d),
            capture_d.as_secs_f64() * 1e6 / count as f64,
            encode_d.as_secs_f64() * 1e3,
            mb_per_s(bytes, encode_d),
            io_d.as_secs_f64() * 1e3,
            mb_per_s(bytes, io_d),
            mb_per_s(bytes, encode_d + io_d),
            load_d.as_secs_f64() * 1e3,
            mb_per_s(bytes, load_d),
        );
    }
}

fn snapshot_benches(c: &mut Criterion) {
    let mut insts = instances(2_000);
    let tokens = tokens(&insts);
    let snap = capture(&mut insts, &tokens);
    let bytes = encode(&snap).unwrap().file_bytes();
    let scratch = Scratch::new("criterion");
    let store = SnapshotStore::open(&scratch.0, SnapshotLimits::default()).unwrap();

    let mut g = c.benchmark_group("snapshot_2000x16");
    g.sample_size(20).measurement_time(Duration::from_secs(12));
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("capture", |b| b.iter(|| capture(&mut insts, &tokens)));
    g.bench_function("encode", |b| b.iter(|| encode(&snap).unwrap()));
    g.bench_function("write_blocking", |b| {
        b.iter_batched(
            || snap.clone(),
            |s| store.write_blocking(s).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("load_all", |b| {
        b.iter(|| load_all(&scratch.0, GAME, SnapshotLimits::default(), &mut |_| {}).unwrap())
    });
    g.finish();
}

criterion_group!(benches, snapshot_benches);

fn main() {
    summary();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
