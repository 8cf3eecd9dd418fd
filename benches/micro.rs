//! Micro benchmarks, named by shape (criterion; `cargo bench --bench micro`).
//!
//! - `encode_<msg>` / `decode_<msg>`: every client message (Hello, Join,
//!   Leave, Input, Ping: encoded by `ClientEncoder`, decoded and validated by
//!   `decode_client`) and every server message (Welcome, Joined,
//!   StateUpdate, PlayerJoined, PlayerLeft, Pong, Error: encoded by
//!   `Encoder`, decoded by `decode_server`). `_16` / `_64` is the number of
//!   entities in the message.
//! - `world_tick_<n>_players`: one input queued per player, then one step of
//!   every instance (16 players each), no sockets and no encoding.
//! - `tick_1000_metrics_off` / `tick_1000_metrics_on`: the shard's whole tick
//!   for 1,000 players without sockets — inputs queued, instances stepped,
//!   one StateUpdate encoded and framed into each player's outbound buffer,
//!   the buffer drained as a write would — without and with the metric
//!   recording the shard does around it (counters, tick duration/lateness
//!   histograms, per-instance tick timing, the input arrival times carried
//!   to the write and one input→update sample per applied input, with the
//!   clock read after each write that only the metric needs).
//! - `core_tick_<n>_players`: the real shard core (`shard::Core`) for `n`
//!   players, 16 per instance, every tick slot of one interval: each
//!   player's Input message decoded and queued, every instance stepped, its
//!   StateUpdate encoded once and copied per player with the player's own
//!   fields patched in, handed to an effects sink that only counts bytes
//!   (the I/O driver's side — framing into the outbound buffer and the
//!   socket write — is not in it). Per iteration: one tick of `n` players.
//! - `mesh_round_trip`: one message to another executor on the other core
//!   and back, over a pair of glommio `shared_channel`s.
//!
//! Timings vary with the (shared) machine; read them as ratios within one run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::{LocalExecutorBuilder, Placement};
use shardline::auth::replay::UsedTickets;
use shardline::config::{Config, ServeOpts};
use shardline::directory::ToAgent;
use shardline::game::{
    ArenaFactory, EntityView, GameFactory, Instance, InstanceId, InstanceLimits,
};
use shardline::game::{PlayerId, PlayerInput};
use shardline::metrics::{HistName, ShardMetrics};
use shardline::net::outbound::Outbound;
use shardline::protocol::{
    decode_client, decode_server, ClientEncoder, Encoder, ErrorCode, LeaveReason, LimitsInfo,
    WelcomeInfo,
};
use shardline::shard::effects::{Ask, Effects};
use shardline::shard::mesh::ShardMsg;
use shardline::shard::{ConnId, Core, CoreShared};
use shardline::util::close::CloseReason;

/// Players per instance in the tick benchmarks: the end-to-end game scenario's.
const PLAYERS_PER_INSTANCE: usize = 16;
/// shardline's defaults for the instance limits.
const LIMITS: InstanceLimits = InstanceLimits {
    players_max: 64,
    inputs_per_tick_max: 4,
};
/// Outbound buffer per player: shardline's default `--write-buffer-bytes`.
const WRITE_BUFFER_BYTES: usize = 4096;
/// Tick step of the 30 Hz scenario, seconds.
const DT_S: f32 = 1.0 / 30.0;
/// io_uring registered memory per ring of the mesh benchmark's executors:
/// fits the 8 MiB memlock limit of the benchmark machine (BENCHMARKS.md, Machine).
const IO_MEMORY_BYTES: usize = 512 << 10;
/// Capacity of each mesh channel: shardline's `--mesh-channel-capacity`.
const MESH_CHANNEL_CAPACITY: usize = 1024;

fn entities(n: u32) -> Vec<EntityView> {
    (0..n)
        .map(|i| EntityView {
            id: i + 1,
            kind: 1,
            flags: 0,
            x: 10.0 + i as f32,
            y: 500.0 - i as f32,
            vx: 200.0,
            vy: -200.0,
            ..EntityView::default()
        })
        .collect()
}

fn welcome_info() -> WelcomeInfo<'static> {
    WelcomeInfo {
        player_id: 0x1234_5678_9abc,
        resume_token: "00112233445566778899aabbccddeeff",
        node_id: "bench-9000",
        region: "local",
        shard: 1,
        tick_rate_hz: 30,
        limits: LimitsInfo {
            max_payload_bytes: 16384,
            inputs_per_tick_max: 4,
            players_per_instance_max: 64,
            heartbeat_ms: 25_000,
            connect_timeout_ms: 10_000,
            reconnect_grace_ms: 30_000,
            delta_history_ticks: 32,
            message_bytes_max: 1024,
            messages_per_tick_max: 8,
        },
        resumed: false,
    }
}

fn client_messages(c: &mut Criterion) {
    let mut enc = ClientEncoder::new();
    c.bench_function("encode_hello", |b| {
        b.iter(|| enc.hello(black_box("player-0042"), None).len())
    });
    c.bench_function("encode_join", |b| {
        b.iter(|| enc.join(black_box(Some("lg-17")), true).len())
    });
    c.bench_function("encode_leave", |b| b.iter(|| enc.leave().len()));
    c.bench_function("encode_input", |b| {
        b.iter(|| enc.input(black_box(7), 0.5, -0.25, 1).len())
    });
    c.bench_function("encode_ping", |b| {
        b.iter(|| enc.ping(black_box(1.5e9)).len())
    });

    let frames = [
        ("decode_hello", enc.hello("player-0042", None).to_vec()),
        ("decode_join", enc.join(Some("lg-17"), true).to_vec()),
        ("decode_leave", enc.leave().to_vec()),
        ("decode_input", enc.input(7, 0.5, -0.25, 1).to_vec()),
        ("decode_ping", enc.ping(1.5e9).to_vec()),
    ];
    for (name, frame) in &frames {
        c.bench_function(name, |b| {
            b.iter(|| decode_client(black_box(frame)).expect("valid frame"))
        });
    }
}

fn server_messages(c: &mut Criterion) {
    let mut enc = Encoder::new();
    let views_16 = entities(16);
    let views_64 = entities(64);
    let info = welcome_info();
    c.bench_function("encode_welcome", |b| {
        b.iter(|| enc.welcome(black_box(&info)).len())
    });
    c.bench_function("encode_joined_16", |b| {
        b.iter(|| {
            enc.joined(
                "lg-17",
                3,
                1234,
                (1000.0, 1000.0),
                black_box(&views_16),
                &[],
            )
            .len()
        })
    });
    c.bench_function("encode_state_update_16", |b| {
        b.iter(|| {
            enc.state_update(1234, 77, 77, black_box(&views_16), &[])
                .len()
        })
    });
    c.bench_function("encode_state_update_64", |b| {
        b.iter(|| {
            enc.state_update(1234, 77, 77, black_box(&views_64), &[])
                .len()
        })
    });
    c.bench_function("encode_player_joined", |b| {
        b.iter(|| enc.player_joined(black_box(42), 3, "player-0042").len())
    });
    c.bench_function("encode_player_left", |b| {
        b.iter(|| enc.player_left(black_box(42), 3, LeaveReason::Left).len())
    });
    c.bench_function("encode_pong", |b| {
        b.iter(|| enc.pong(black_box(1.5e9), 1_700_000_000_000_000).len())
    });
    c.bench_function("encode_error", |b| {
        b.iter(|| {
            enc.error(ErrorCode::InstanceFull, black_box("instance lg-17 is full"))
                .len()
        })
    });

    let frames = [
        ("decode_welcome", enc.welcome(&info).to_vec()),
        (
            "decode_joined_16",
            enc.joined("lg-17", 3, 1234, (1000.0, 1000.0), &views_16, &[])
                .to_vec(),
        ),
        (
            "decode_state_update_16",
            enc.state_update(1234, 77, 77, &views_16, &[]).to_vec(),
        ),
        (
            "decode_state_update_64",
            enc.state_update(1234, 77, 77, &views_64, &[]).to_vec(),
        ),
        (
            "decode_player_joined",
            enc.player_joined(42, 3, "player-0042").to_vec(),
        ),
        (
            "decode_player_left",
            enc.player_left(42, 3, LeaveReason::Left).to_vec(),
        ),
        (
            "decode_pong",
            enc.pong(1.5e9, 1_700_000_000_000_000).to_vec(),
        ),
        (
            "decode_error",
            enc.error(ErrorCode::InstanceFull, "instance lg-17 is full")
                .to_vec(),
        ),
    ];
    for (name, frame) in &frames {
        c.bench_function(name, |b| {
            b.iter(|| decode_server(black_box(frame)).expect("valid frame"))
        });
    }
}

/// A shard's game state without sockets: instances of 16 players, each
/// player's outbound buffer, and the per-player bookkeeping the shard keeps
/// for input→update latency.
struct World {
    instances: Vec<Instance>,
    /// (instance index, player) for every seated player, in seat order.
    players: Vec<(usize, PlayerId)>,
    /// Per player, same order as `players`.
    outbound: Vec<Outbound>,
    /// Arrival times of inputs queued but not yet applied (the shard's
    /// `Player::inputs_pending_since`).
    pending_since: Vec<Vec<Instant>>,
    /// Arrival times of inputs reflected in the queued update (the
    /// connection's `inputs_unwritten`).
    unwritten: Vec<Vec<Instant>>,
    entities: Vec<EntityView>,
    enc: Encoder,
    seq: u32,
}

impl World {
    fn new(players: usize) -> Self {
        let mut instances = Vec::new();
        let mut seated = Vec::with_capacity(players);
        for p in 0..players {
            if p % PLAYERS_PER_INSTANCE == 0 {
                let id = InstanceId::parse(&format!("bench-{}", instances.len())).unwrap();
                instances.push(Instance::new(id.clone(), ArenaFactory.create(&id), LIMITS));
            }
            let pid = p as PlayerId + 1;
            let at = instances.len() - 1;
            instances[at].join(pid, "player").expect("room");
            seated.push((at, pid));
        }
        let per_player_times = || (0..players).map(|_| Vec::with_capacity(8)).collect();
        Self {
            instances,
            outbound: (0..players)
                .map(|_| Outbound::new(Vec::with_capacity(WRITE_BUFFER_BYTES)))
                .collect(),
            pending_since: per_player_times(),
            unwritten: per_player_times(),
            players: seated,
            entities: Vec::with_capacity(LIMITS.players_max),
            enc: Encoder::new(),
            seq: 0,
        }
    }

    /// One input per player, as the socket tasks queue them between ticks.
    /// The arrival clock read happens with metrics off too: the session reads
    /// the clock for every frame anyway (heartbeat `touch`).
    fn queue_inputs(&mut self, metrics: Option<&ShardMetrics>) {
        self.seq += 1;
        let input = PlayerInput {
            seq: self.seq,
            move_x: if self.seq % 2 == 0 { 1.0 } else { -1.0 },
            move_y: 0.5,
            buttons: 0,
        };
        for (i, &(at, pid)) in self.players.iter().enumerate() {
            let arrived = black_box(Instant::now());
            let queued = self.instances[at].push_input(pid, input);
            debug_assert_eq!(queued, shardline::game::PushInput::Queued);
            if let Some(m) = metrics {
                m.inputs_received.inc();
                self.pending_since[i].push(arrived);
            }
        }
    }

    /// One input per player into the instances: the pure game part only.
    fn push_inputs(&mut self) {
        self.seq += 1;
        let input = PlayerInput {
            seq: self.seq,
            move_x: 1.0,
            move_y: 0.5,
            buttons: 0,
        };
        for &(at, pid) in &self.players {
            black_box(self.instances[at].push_input(pid, input));
        }
    }

    /// Steps every instance (the pure game part of a tick).
    fn step(&mut self) {
        for inst in &mut self.instances {
            let _ = black_box(inst.step(DT_S));
        }
    }

    /// The shard's tick: step each instance, encode each player's update
    /// into its outbound buffer; then drain every buffer as the session's
    /// single write would. `metrics` adds what the shard records.
    fn tick(&mut self, metrics: Option<&ShardMetrics>) {
        let tick_started = metrics.map(|m| {
            let now = Instant::now();
            m.hist.record(HistName::TickLateness, Duration::ZERO);
            now
        });
        let mut first = 0;
        for inst in &mut self.instances {
            let started = metrics.map(|_| Instant::now());
            let report = inst.step(DT_S).expect("the arena never fails");
            self.entities.clear();
            self.entities.extend_from_slice(inst.entities());
            if let Some(m) = metrics {
                m.inputs_applied.add(u64::from(report.inputs_applied));
            }
            let tick = inst.tick();
            for (k, seat) in inst.seats().enumerate() {
                let i = first + k;
                let bytes = self.enc.state_update(
                    tick,
                    seat.last_input_seq,
                    seat.inputs_applied,
                    &self.entities,
                    &[],
                );
                self.outbound[i].push_binary(bytes).expect("fits");
                if let Some(m) = metrics {
                    self.unwritten[i].append(&mut self.pending_since[i]);
                    m.messages_out.inc();
                    m.state_updates.inc();
                }
            }
            first += inst.players();
            if let Some(started) = started {
                black_box(started.elapsed().as_micros());
            }
        }
        if let (Some(m), Some(started)) = (metrics, tick_started) {
            m.ticks.inc();
            m.hist.record(HistName::TickDuration, started.elapsed());
        }
        for (i, out) in self.outbound.iter_mut().enumerate() {
            let n = black_box(out.unsent()).len();
            out.advance(n);
            if let Some(m) = metrics {
                let now = Instant::now();
                for t in self.unwritten[i].drain(..) {
                    m.hist
                        .record(HistName::InputToUpdate, now.saturating_duration_since(t));
                }
                m.socket_writes.inc();
                m.bytes_out.add(n as u64);
            }
        }
    }
}

fn world_tick(c: &mut Criterion) {
    for players in [100, 1000] {
        let mut world = World::new(players);
        c.bench_function(&format!("world_tick_{players}_players"), |b| {
            b.iter(|| {
                world.push_inputs();
                world.step();
            })
        });
    }
}

fn tick_metrics(c: &mut Criterion) {
    let mut world = World::new(1000);
    c.bench_function("tick_1000_metrics_off", |b| {
        b.iter(|| {
            world.queue_inputs(None);
            world.tick(None);
        })
    });
    let metrics = ShardMetrics::default();
    let mut world = World::new(1000);
    c.bench_function("tick_1000_metrics_on", |b| {
        b.iter(|| {
            world.queue_inputs(Some(&metrics));
            world.tick(Some(&metrics));
        })
    });
    // (Nothing ran when a name filter left this benchmark out.)
    assert!(
        metrics.ticks.get() == 0 || metrics.inputs_applied.get() > 0,
        "the metrics were recorded"
    );
}

/// The effects sink of the `core_tick` benchmark: counts what the core
/// hands the driver, copies nothing.
#[derive(Default)]
struct CountingSink {
    bytes: u64,
    updates: u64,
}

impl Effects for CountingSink {
    fn send(&mut self, _conn: ConnId, payload: &[u8]) {
        self.bytes += payload.len() as u64;
    }
    fn send_update(&mut self, _conn: ConnId, payload: &[u8], arrivals: &mut Vec<Instant>) {
        self.bytes += payload.len() as u64;
        self.updates += 1;
        arrivals.clear();
    }
    fn close(&mut self, _conn: ConnId, _reason: CloseReason) {}
    fn pause(&mut self, _conn: ConnId) {}
    fn resume(&mut self, _conn: ConnId) {}
    fn hand_over(&mut self, _conn: ConnId, _to: usize, _player: PlayerId, _resume: bool) {}
    fn mesh(&mut self, _to: usize, _msg: ShardMsg) {}
    fn directory(&mut self, _msg: ToAgent) -> bool {
        true
    }
    fn ask(&mut self, _conn: ConnId, _ask: Ask) {}
    fn owner_of(&mut self, _instance: InstanceId, _id: String) {}
}

/// A shard core with `players` seated, 16 per instance, and one client
/// encoder per player.
fn seated_core(players: usize) -> (Core, Vec<ClientEncoder>, Instant) {
    let t0 = Instant::now();
    let opts = ServeOpts {
        shards: Some(1),
        ..Default::default()
    };
    let cfg = std::sync::Arc::new(Config::resolve(opts, &[0]).expect("default config"));
    let shared = CoreShared {
        cfg,
        factory: std::sync::Arc::new(ArenaFactory),
        join_secret: None,
        used_tickets: UsedTickets::new(16),
        public_url: None,
        fleet_metrics: None,
    };
    let mut core = Core::new(
        0,
        shared,
        std::rc::Rc::new(ShardMetrics::default()),
        t0,
        0,
        7,
    );
    let mut sink = CountingSink::default();
    let mut encoders = Vec::with_capacity(players);
    for p in 0..players {
        let conn = p as ConnId + 1;
        let mut enc = ClientEncoder::new();
        core.connected(conn, t0, None);
        core.message(&mut sink, t0, conn, enc.hello("bench", None));
        let room = format!("bench-{}", p / PLAYERS_PER_INSTANCE);
        core.message(&mut sink, t0, conn, enc.join(Some(&room), true));
        encoders.push(enc);
    }
    (core, encoders, t0)
}

fn core_tick(c: &mut Criterion) {
    for players in [100, 1000] {
        let (mut core, mut encoders, _) = seated_core(players);
        let mut sink = CountingSink::default();
        let clock = Instant::now;
        let mut seq = 0u32;
        c.bench_function(&format!("core_tick_{players}_players"), |b| {
            b.iter(|| {
                seq += 1;
                let x = if seq % 2 == 0 { 1.0 } else { -1.0 };
                let (first_at, _) = core.slots.next();
                for (i, enc) in encoders.iter_mut().enumerate() {
                    let bytes = enc.input(seq, x, 0.5, 0);
                    core.message(&mut sink, first_at, i as ConnId + 1, bytes);
                }
                for _ in 0..core.slots.count() {
                    let (at, slot) = core.slots.next();
                    black_box(core.run_slot(&mut sink, at, slot, &clock));
                    core.slots.advance(at);
                }
            })
        });
        // (Nothing ran when a name filter left this benchmark out.)
        assert!(seq == 0 || sink.updates > 0, "the core sent updates");
    }
}

/// One peer's half of a round-trip sample: its channel ends and how many
/// messages to echo.
type EchoJob = (SharedReceiver<u64>, SharedSender<u64>, u64);

fn mesh_round_trip(c: &mut Criterion) {
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<EchoJob>();
    // The peer executor, on the other core, echoes every message back.
    let peer = LocalExecutorBuilder::new(Placement::Fixed(1))
        .name("mesh-peer")
        .io_memory(IO_MEMORY_BYTES)
        .spawn(move || async move {
            // Blocking between samples is fine: this is the executor's only
            // task, and it has nothing else to run meanwhile.
            while let Ok((rx, tx, n)) = jobs_rx.recv() {
                let rx = rx.connect().await;
                let tx = tx.connect().await;
                for _ in 0..n {
                    let Some(v) = rx.recv().await else { break };
                    if tx.send(v).await.is_err() {
                        break;
                    }
                }
            }
        })
        .expect("peer executor");
    let local = LocalExecutorBuilder::new(Placement::Fixed(0))
        .name("mesh-local")
        .io_memory(IO_MEMORY_BYTES)
        .make()
        .expect("local executor");
    c.bench_function("mesh_round_trip", |b| {
        b.iter_custom(|iters| {
            let (to_peer, peer_rx) = shared_channel::new_bounded(MESH_CHANNEL_CAPACITY);
            let (peer_tx, from_peer) = shared_channel::new_bounded(MESH_CHANNEL_CAPACITY);
            jobs_tx
                .send((peer_rx, peer_tx, iters + 1))
                .expect("peer alive");
            local.run(async move {
                let tx = to_peer.connect().await;
                let rx = from_peer.connect().await;
                // One untimed round trip: both ends are connected and warm.
                tx.send(0).await.expect("peer alive");
                rx.recv().await.expect("peer alive");
                let started = Instant::now();
                for i in 0..iters {
                    tx.send(i).await.expect("peer alive");
                    black_box(rx.recv().await.expect("peer alive"));
                }
                started.elapsed()
            })
        })
    });
    drop(jobs_tx);
    peer.join().expect("peer executor ends");
}

criterion_group!(
    benches,
    client_messages,
    server_messages,
    world_tick,
    tick_metrics,
    core_tick,
    mesh_round_trip
);
criterion_main!(benches);
