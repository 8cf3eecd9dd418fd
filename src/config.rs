//! Server configuration: flags, the optional TOML file, defaults, and the
//! checks that turn them into one validated [`Config`].
//!
//! Every limit is named here once, with its default, its unit and what it
//! costs in memory. A flag given on the command line wins over the same key in
//! `--config FILE`, which wins over the default. Keys in the file are the flag
//! names without dashes prefix (`max-connections = 5000`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod directory;
pub mod endpoint;

use clap::Args;
use serde::Deserialize;

/// 10,000 players per node: the seed architecture's `maxConcurrentConnections`.
pub const MAX_CONNECTIONS_DEFAULT: usize = 10_000;
/// 10 s for TCP accept → WebSocket upgrade → Hello (seed `connectionTimeout`).
pub const CONNECT_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// 25 s between server pings; two silent intervals drop the peer (seed `heartbeatInterval`).
pub const HEARTBEAT_MS_DEFAULT: u64 = 25_000;
/// 16 KiB largest client message (seed `maxPayloadSize`). Bounds tungstenite's
/// per-connection reassembly buffer in the worst case.
pub const MAX_PAYLOAD_DEFAULT: usize = 16 * 1024;
/// 30 Hz fixed step.
pub const TICK_RATE_DEFAULT: u32 = 30;
/// Players per instance. A full StateUpdate is ~24 B per player, so 64 players
/// fit a 4 KiB write buffer with room for join/leave events.
pub const PLAYERS_PER_INSTANCE_MAX_DEFAULT: usize = 64;
/// Instances per shard. Each costs its world (arena: ~64 B per entity) plus a
/// seat per player; 4096 × 64 players bounds a shard at ~260k seats.
pub const INSTANCES_PER_SHARD_MAX_DEFAULT: usize = 4096;
/// Inputs applied per player per tick; more in one tick are dropped and
/// counted. Costs 16 B × this per seat (the queue is allocated at join).
pub const INPUTS_PER_TICK_MAX_DEFAULT: usize = 4;
/// Frames per second one /play connection may send: 4× a 60 Hz client's
/// inputs plus its pings. Above it the connection is closed (1008).
pub const MESSAGES_PER_SECOND_MAX_DEFAULT: u32 = 240;
/// Largest body of a game message (a client's Message, a game's event, a
/// message between instances), bytes. Costs at most this × the per-tick
/// counts below of queue memory per seat and per instance.
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 1024;
/// Room a game message or event takes beyond its body (FlatBuffers tables
/// and the WebSocket frame header), bytes.
pub const MESSAGE_HEADER_BYTES_MAX: usize = 64;
/// Game messages one player may queue per tick (arrival order with its
/// inputs); more are dropped and counted. 8 × 1 KiB per seat at worst.
pub const MESSAGES_PER_TICK_MAX_DEFAULT: usize = 8;
/// Game messages one player may send per second, in bursts of as many;
/// faster: Error(MessageFlood), close 1008. 4 per tick at 30 Hz.
pub const GAME_MESSAGES_PER_SECOND_MAX_DEFAULT: u32 = 120;
/// Events one instance may emit per tick; more are dropped and counted.
/// 256 × 1 KiB per instance at worst.
pub const EVENTS_PER_TICK_MAX_DEFAULT: usize = 256;
/// Messages to other instances one instance may send per tick.
pub const INSTANCE_MESSAGES_PER_TICK_MAX_DEFAULT: usize = 16;
/// Messages from other instances waiting for one instance's next tick;
/// more are dropped and counted. 256 × 1 KiB per instance at worst.
pub const INSTANCE_INBOX_MAX_DEFAULT: usize = 256;
/// Bytes of one receive buffer of a shard's io_uring: one read of one
/// connection takes at most this many (a larger message arrives in several).
/// The buffers are shared by the shard's connections, not held by each:
/// `--recv-buffers` × this per shard.
pub const READ_BUFFER_BYTES_DEFAULT: usize = 1024;
/// Receive buffers per shard (a power of two, at most 32,768): reads that
/// arrive between two slots each hold one until the slot copies it out.
/// When all are in use, reads wait in the kernel until the next slot.
/// 1,024 × 1 KiB = 1 MiB per shard.
pub const RECV_BUFFERS_DEFAULT: usize = 1024;
/// Slots per tick interval: each instance steps at its own slot's phase,
/// so a shard's work and writes are spread over the interval. 32 at 30 Hz
/// is a slot every ~1 ms; each slot costs one wake-up and one or two
/// `io_uring_enter` calls.
pub const TICK_SLOTS_DEFAULT: usize = 32;
/// Slots per tick interval, at most.
pub const TICK_SLOTS_MAX: usize = 256;
/// Ticks of state a version-2 client's delta may be encoded against (its
/// acknowledged tick at most this far behind; older: a full state). Each
/// v2 player keeps at most this many views it was sent:
/// [`delta_memory_bytes_per_player`].
pub const DELTA_HISTORY_TICKS_DEFAULT: u16 = 32;
/// `--delta-history-ticks` range.
pub const DELTA_HISTORY_TICKS_RANGE: std::ops::RangeInclusive<u16> = 2..=1024;
/// `--interest-radius`: 0 = each player sees the whole instance.
pub const INTEREST_RADIUS_DEFAULT: f32 = 0.0;
/// `--interest-budget`: entities changed or entered per update (the
/// player's own first); the rest wait, longest-unsent and nearest first.
pub const INTEREST_BUDGET_DEFAULT: usize = 64;
/// `--interest-budget` at most.
pub const INTEREST_BUDGET_MAX: usize = 4096;

/// Memory one v2 player's delta history may hold, worst case: a view of
/// `view_entities` entities (32 B each, plus 8 B for when each was sent)
/// for each of `history` ticks. Views equal to the instance's whole state
/// are shared by its players, so a small instance costs far less.
pub fn delta_memory_bytes_per_player(history: u16, view_entities: usize) -> usize {
    const ENTITY_BYTES: usize = 32 + 8;
    const VIEW_OVERHEAD_BYTES: usize = 96;
    usize::from(history) * (view_entities * ENTITY_BYTES + VIEW_OVERHEAD_BYTES)
}
/// Submission entries of a shard's own io_uring (completions: 4×): one
/// send per connection with something to write per slot, plus receives
/// armed; more are submitted in several batches. 4,096 × 64 B + 16,384 ×
/// 16 B = 512 KiB per shard (memory charged to the cgroup, not locked).
pub const RING_ENTRIES_DEFAULT: u32 = 4096;
/// Outbound buffer per connection, taken from the shard's bounded pool:
/// everything queued for one player between two socket writes (a tick's
/// StateUpdate plus events). A client that lets it fill is dropped (close 4002).
pub const WRITE_BUFFER_BYTES_DEFAULT: usize = 4096;
/// Seats stay reserved this long after a disconnect, for a resume.
pub const RECONNECT_GRACE_MS_DEFAULT: u64 = 30_000;
/// An empty instance is disposed after this long.
pub const INSTANCE_IDLE_MS_DEFAULT: u64 = 10_000;
/// An empty instance that never held a game — nobody but its creator ever
/// joined it — is disposed after this long: a room-creation flood cannot
/// hold the instance table with stale entries (2 s × the creation rate).
pub const INSTANCE_UNUSED_MS_DEFAULT: u64 = 2_000;
/// Instances one connection (one player session, wherever its connection
/// moves) may create per minute, in a burst of as many: a lobby player
/// makes a room or two a minute. Over it: Error(RateLimited), the
/// connection stays. A room its creator leaves empty, unshared, costs one
/// more (`shard::limits`).
pub const CREATES_PER_CONN_PER_MIN_DEFAULT: u32 = 10;
/// Instances one client IP may create per minute on one shard (bursts of
/// as many): N shards allow N× this. Costs a bucket per address seen
/// (`shard::limits::CREATE_IPS_TRACKED_MAX` at most).
pub const CREATES_PER_IP_PER_MIN_DEFAULT: u32 = 60;
/// A shard that has not finished a tick slot for this long is stuck (its
/// game code does not return): marked in /health, /ready and /metrics, its
/// listener taken out of the SO_REUSEPORT group.
pub const STUCK_SHARD_MS_DEFAULT: u64 = 2_000;
/// Longest HTTP upgrade request head; larger gets HTTP 431.
pub const HTTP_HEAD_BYTES_MAX_DEFAULT: usize = 8 * 1024;
/// Graceful shutdown bound: after this, remaining connections are cut.
pub const SHUTDOWN_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// io_uring registered buffer memory per executor ring (glommio `io_memory`).
/// Locked memory: 3 rings × this per shard must fit RLIMIT_MEMLOCK for non-root.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 512 * 1024;
/// Bounded capacity of each shard→shard channel, in messages.
pub const MESH_CHANNEL_CAPACITY_DEFAULT: usize = 1024;
/// Admin HTTP listener (metrics, health, stats): loopback only by default.
pub const ADMIN_LISTEN_DEFAULT: &str = "127.0.0.1:9100";
/// Health evaluation period (seed `healthCheckInterval`).
pub const HEALTH_CHECK_INTERVAL_MS_DEFAULT: u64 = 30_000;
/// Process CPU share of its cores above which the node reports unhealthy and
/// shards shed new players (seed `restartThreshold`).
pub const CPU_RESTART_THRESHOLD_DEFAULT: f64 = 0.9;
/// Where shards keep their snapshot files.
pub const SNAPSHOT_DIR_DEFAULT: &str = "./data";
/// A snapshot of every instance this often (ms); 0 turns snapshots off.
pub const SNAPSHOT_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Headroom of the per-shard buffer pool over a fair share of
/// --max-connections, since SO_REUSEPORT spreads connections unevenly.
const BUFFERS_HEADROOM_PERCENT: usize = 25;
/// Least default pool per shard: 64 × 4 KiB (default write buffer) = 256 KiB.
const BUFFERS_MIN_PER_SHARD: usize = 64;

/// `shardline serve` options. Every field is optional so a flag can be told
/// apart from a file value; [`Config::resolve`] applies the defaults.
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeOpts {
    /// TOML file with any of these keys (flag names without `--`); flags win.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address every shard listens on (SO_REUSEPORT). [default: 0.0.0.0:9000]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Number of shards (executors, one per core). [default: cores available to the process]
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,

    /// Cores to pin shards to, e.g. "0,2-3" (shard i → i-th core listed). [default: the cores available, in order]
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,

    /// Region this node serves, reported to clients in Welcome. [default: local]
    #[arg(long, value_name = "NAME")]
    pub region: Option<String>,

    /// Node id reported to clients and in logs. [default: <hostname>-<port>]
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,

    /// Instance tick rate, Hz (fixed step). [default: 30]
    #[arg(long, value_name = "HZ")]
    pub tick_rate: Option<u32>,

    /// Open connections allowed on the whole node; beyond it upgrades get HTTP 503. [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Milliseconds from TCP accept until the WebSocket upgrade and Hello are done; else dropped. [default: 10000]
    #[arg(long, value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,

    /// Milliseconds between server pings; a peer silent for two intervals is dropped (close 4001). [default: 25000]
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u64>,

    /// Largest client message, bytes; larger closes with 1009. [default: 16384]
    #[arg(long, value_name = "BYTES")]
    pub max_payload: Option<usize>,

    /// Players per game instance; a Join beyond it gets Error(InstanceFull). [default: 64]
    #[arg(long, value_name = "N")]
    pub players_per_instance_max: Option<usize>,

    /// Game instances per shard; creating one beyond it gets Error(ShardFull). [default: 4096]
    #[arg(long, value_name = "N")]
    pub instances_per_shard_max: Option<usize>,

    /// Messages a /play connection may send per second (any frame); above it the client is flooding and is closed with 1008; 0 = no limit. [default: 240]
    #[arg(long, value_name = "N")]
    pub messages_per_second_max: Option<u32>,

    /// Inputs applied per player per tick; the excess is dropped and counted. [default: 4]
    #[arg(long, value_name = "N")]
    pub inputs_per_tick_max: Option<usize>,

    /// A setting of the game, KEY=VALUE (repeatable; wins over the `[game]` table of --config FILE). The reference arena reads width, height, speed, radius (game units), spawn (rings, centre or scatter) and walls (solid or wrap). [default: the game's own]
    #[arg(long = "game", value_name = "KEY=VALUE")]
    #[serde(skip)]
    pub game_settings: Vec<String>,

    /// The `[game]` table of --config FILE: the game's own settings.
    #[arg(skip)]
    #[serde(default)]
    pub game: Option<toml::Table>,

    /// Largest game message body (client Message, game event, message between instances), bytes; a larger Message gets Error(MessageTooLarge). [default: 1024]
    #[arg(long, value_name = "BYTES")]
    pub message_bytes_max: Option<usize>,

    /// Game messages (Message) one player may queue per tick; the excess is dropped and counted. [default: 8]
    #[arg(long, value_name = "N")]
    pub messages_per_tick_max: Option<usize>,

    /// Game messages one player may send per second (bursts of as many); faster: Error(MessageFlood) and close 1008; 0 = no limit. [default: 120]
    #[arg(long, value_name = "N")]
    pub game_messages_per_second_max: Option<u32>,

    /// Events one instance's game may emit per tick; the excess is dropped and counted. [default: 256]
    #[arg(long, value_name = "N")]
    pub events_per_tick_max: Option<usize>,

    /// Messages to other instances one instance may send per tick; the excess is dropped and counted. [default: 16]
    #[arg(long, value_name = "N")]
    pub instance_messages_per_tick_max: Option<usize>,

    /// Messages from other instances waiting for one instance's next tick; more are dropped and counted. [default: 256]
    #[arg(long, value_name = "N")]
    pub instance_inbox_max: Option<usize>,

    /// Bytes of each receive buffer of a shard's io_uring (one read of one connection; shared buffers, not per connection). [default: 1024]
    #[arg(long, value_name = "BYTES")]
    pub read_buffer_bytes: Option<usize>,

    /// Outbound buffer per connection, bytes (from the shard's pool); a client that lets it fill is dropped (close 4002). [default: 4096]
    #[arg(long, value_name = "BYTES")]
    pub write_buffer_bytes: Option<usize>,

    /// Preallocated outbound buffers per shard; when none is free new connections are refused (HTTP 503). [default: max-connections / shards + 25%, at least min(max-connections, 64)]
    #[arg(long, value_name = "N")]
    pub buffers: Option<usize>,

    /// Receive buffers of each shard's io_uring (power of two; shared by its connections). [default: 1024]
    #[arg(long, value_name = "N")]
    pub recv_buffers: Option<usize>,

    /// Slots per tick interval: each instance steps at its own slot, spreading a shard's work over the interval. [default: 32]
    #[arg(long, value_name = "N")]
    pub tick_slots: Option<usize>,

    /// Ticks a protocol-v2 client's acknowledged state stays usable as the baseline of its deltas (older: a full state, counted); each v2 player keeps at most this many views it was sent. [default: 32]
    #[arg(long, value_name = "TICKS")]
    pub delta_history_ticks: Option<u16>,

    /// Area of interest of protocol-v2 clients, arena units around the player's entity (0 = the whole instance); a game may choose its own. [default: 0]
    #[arg(long, value_name = "UNITS")]
    pub interest_radius: Option<f32>,

    /// Entities a protocol-v2 update changes or enters at most (the player's own first, then nearer and longer-unsent ones; the rest keep their last values until their turn); a game may choose its own. [default: 64]
    #[arg(long, value_name = "N")]
    pub interest_budget: Option<usize>,

    /// Submission queue entries of each shard's io_uring. [default: 4096]
    #[arg(long, value_name = "N")]
    pub ring_entries: Option<u32>,

    /// How a slot's writes reach the sockets: `uring` (one send SQE per connection, submitted together) or `syscall` (one send() per connection; kept to measure against). [default: uring]
    #[arg(long, value_name = "uring|syscall")]
    pub io_writes: Option<String>,

    /// Milliseconds a disconnected player's seat is kept for a resume with its token. [default: 30000]
    #[arg(long, value_name = "MS")]
    pub reconnect_grace_ms: Option<u64>,

    /// Milliseconds an empty instance lives before it is disposed. [default: 10000]
    #[arg(long, value_name = "MS")]
    pub instance_idle_ms: Option<u64>,

    /// Milliseconds an empty instance that never held a game (nobody but its creator joined it) lives before it is disposed. [default: 2000]
    #[arg(long, value_name = "MS")]
    pub instance_unused_ms: Option<u64>,

    /// Instances one connection may create per minute (bursts of as many; a room its creator leaves empty costs one more); over it Error(RateLimited), the connection stays; 0 = no limit. [default: 10]
    #[arg(long, value_name = "N")]
    pub creates_per_conn_per_min: Option<u32>,

    /// Instances one client IP may create per minute, per shard (bursts of as many); over it Error(RateLimited); 0 = no limit (behind a load balancer that hides client addresses). [default: 60]
    #[arg(long, value_name = "N")]
    pub creates_per_ip_per_min: Option<u32>,

    /// Who may create instances: `open` (anyone, within the rate limits) or `ticket` (only players whose join ticket grants creation; needs --join-secret); refused: Error(TicketWrongInstance). [default: open]
    #[arg(long, value_name = "open|ticket")]
    pub create_policy: Option<String>,

    /// Milliseconds a shard may go without finishing a tick slot before it is stuck (time its thread waits for a CPU does not count): reported in /health, /ready and /metrics, its listener leaves the SO_REUSEPORT group until it recovers; 0 = no watchdog. [default: 2000]
    #[arg(long, value_name = "MS")]
    pub stuck_shard_ms: Option<u64>,

    /// Exit the process (status 70) when a shard is stuck, so systemd or Kubernetes restarts it and the snapshots bring the games back.
    #[arg(long)]
    #[serde(default)]
    pub stuck_shard_exit: bool,

    /// Largest HTTP upgrade request head, bytes; larger gets HTTP 431. [default: 8192]
    #[arg(long, value_name = "BYTES")]
    pub http_head_bytes_max: Option<usize>,

    /// Milliseconds graceful shutdown may take before remaining connections are cut. [default: 5000]
    #[arg(long, value_name = "MS")]
    pub shutdown_timeout_ms: Option<u64>,

    /// io_uring registered memory per executor ring, bytes (locked memory: 3 rings per shard). [default: 524288]
    #[arg(long, value_name = "BYTES")]
    pub io_memory_bytes: Option<usize>,

    /// Capacity of each shard-to-shard channel, messages. [default: 1024]
    #[arg(long, value_name = "N")]
    pub mesh_channel_capacity: Option<usize>,

    /// Directory of the crash-safe snapshot files, restored at start. [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,

    /// Milliseconds between snapshots of every instance (also written at graceful shutdown); 0 = off. [default: 1000]
    #[arg(long, value_name = "MS")]
    pub snapshot_interval_ms: Option<u64>,

    /// Start empty: do not restore instances from --snapshot-dir.
    #[arg(long)]
    #[serde(default)]
    pub no_restore: bool,

    /// Largest snapshot record of one instance, bytes; a larger one is refused with an error and left out. [default: 16777216]
    #[arg(long, value_name = "BYTES")]
    pub instance_snapshot_bytes_max: Option<u64>,

    /// Run the snapshot writer (archive, write, fsync) under SCHED_IDLE, so it only uses CPU time the shards leave: on|off. With on, the tick never waits for it; a write may take longer — or wait indefinitely — while the shards keep every allowed core busy, so the snapshot on disk gets older. [default: off: fresher snapshots]
    #[arg(long, value_name = "on|off")]
    pub snapshot_writer_idle: Option<String>,

    /// Shared secret for join tickets: with it, Hello must carry a ticket signed by the game's backend (see SECURITY.md). [default: none: the server is open]
    #[arg(
        long,
        value_name = "SECRET",
        env = "SHARDLINE_JOIN_SECRET",
        hide_env_values = true
    )]
    pub join_secret: Option<String>,

    /// File holding the join-ticket secret (instead of --join-secret).
    #[arg(long, value_name = "FILE")]
    pub join_secret_file: Option<PathBuf>,

    /// Comma-separated Origins browsers may connect from (e.g. https://game.example); others get HTTP 403. Requests without Origin (non-browser clients) pass. [default: any]
    #[arg(long, value_name = "LIST")]
    pub allowed_origins: Option<String>,

    /// Upgrade handshakes per second allowed per client IP, per shard (bursts of twice that); beyond it HTTP 429; 0 = off (right behind a load balancer). [default: 0]
    #[arg(long, value_name = "N")]
    pub handshakes_per_ip_per_s: Option<u32>,

    /// Admin HTTP listener (/metrics, /health, /ready, /stats, /instances, /config, /drain), or "off". [default: 127.0.0.1:9100]
    #[arg(long, value_name = "ADDR|off")]
    pub admin_listen: Option<String>,

    /// Bearer token the admin API requires; mandatory when --admin-listen is not loopback. [default: none]
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHARDLINE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Milliseconds between health evaluations (GET /health, /ready). [default: 30000]
    #[arg(long, value_name = "MS")]
    pub health_check_interval_ms: Option<u64>,

    /// Refuse new players (HTTP 503, /ready false) while a shard's ticks overrun or its CPU is over the threshold: on|off. [default: on]
    #[arg(long, value_name = "on|off")]
    pub load_shedding: Option<String>,

    /// CPU usage (0..1 of a shard's core) above which a shard sheds new players and the node reports unhealthy. [default: 0.9]
    #[arg(long, value_name = "RATIO")]
    pub cpu_restart_threshold: Option<f64>,

    /// The fleet's directory, `redis://[:PASSWORD@]HOST:PORT[/DB]`, or with Redis Sentinel `redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER[/DB]` (the sentinels, and the name they monitor): registry, routing (/v1/route), failover. The password is never logged; pass it in SHARDLINE_DIRECTORY or the --config file rather than on the command line. [default: none: standalone]
    #[arg(
        long,
        value_name = "URL",
        env = "SHARDLINE_DIRECTORY",
        hide_env_values = true
    )]
    pub directory: Option<String>,

    /// WebSocket base URL players reach this node at, published in the directory. [default: ws://<listen address>]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// Where this node runs (free text for operators, e.g. eu-west-1a), published in the directory. [default: the region]
    #[arg(long, value_name = "TEXT")]
    pub location: Option<String>,

    /// Milliseconds between directory heartbeats (registry refresh, load report). [default: 1000]
    #[arg(long, value_name = "MS")]
    pub directory_heartbeat_ms: Option<u64>,

    /// Milliseconds a node's registration lives without a heartbeat; then its region takes its instances over. [default: 5000]
    #[arg(long, value_name = "MS")]
    pub directory_ttl_ms: Option<u64>,

    /// Largest replicated snapshot of one instance, compressed bytes; a larger one is not replicated (logged, counted). [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub replica_bytes_max: Option<usize>,

    /// Replica writes per second this node may send the directory, spread over each interval: unchanged instances are skipped, changed ones queue (new first, then oldest); when the budget is short, replicas get older (gauge shardline_directory_replica_wait_ms_max), never more writes. [default: 1000]
    #[arg(long, value_name = "N")]
    pub replica_writes_per_s_max: Option<u32>,

    /// Log filter: error, warn, info, debug, trace, or a RUST_LOG-style directive. [default: $RUST_LOG or info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("--{flag}: {reason}")]
    Invalid { flag: &'static str, reason: String },
}

pub(crate) fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.into(),
    }
}

/// The validated configuration a node runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Core id for each shard (index = shard id); `None` when the host offers
    /// fewer cores than shards were asked for and pinning is impossible.
    pub shard_cores: Vec<Option<usize>>,
    pub region: String,
    pub node_id: String,
    pub tick_rate_hz: u32,
    pub max_connections: usize,
    pub connect_timeout: Duration,
    pub heartbeat: Duration,
    pub max_payload_bytes: usize,
    pub players_per_instance_max: usize,
    pub instances_per_shard_max: usize,
    pub inputs_per_tick_max: usize,
    pub messages_per_second_max: u32,
    /// The game's own settings: the `[game]` table of the config file with
    /// every `--game KEY=VALUE` applied over it.
    pub game: toml::Table,
    pub message_bytes_max: usize,
    pub messages_per_tick_max: usize,
    /// 0: no limit.
    pub game_messages_per_second_max: u32,
    pub events_per_tick_max: usize,
    pub instance_messages_per_tick_max: usize,
    pub instance_inbox_max: usize,
    pub read_buffer_bytes: usize,
    pub write_buffer_bytes: usize,
    pub buffers_per_shard: usize,
    pub recv_buffers: u16,
    pub tick_slots: usize,
    /// `--delta-history-ticks`.
    pub delta_history_ticks: u16,
    /// `--interest-radius` and `--interest-budget`: what v2 clients see
    /// unless the game says otherwise.
    pub interest: crate::game::Interest,
    pub ring_entries: u32,
    /// `--io-writes`: true for one io_uring submission per slot (default),
    /// false for a plain send() per connection.
    pub io_writes_batched: bool,
    pub reconnect_grace: Duration,
    pub instance_idle: Duration,
    /// `--instance-unused-ms`: an empty instance that never held a game.
    pub instance_unused: Duration,
    /// 0: no per-connection creation limit.
    pub creates_per_conn_per_min: u32,
    /// 0: no per-IP creation limit.
    pub creates_per_ip_per_min: u32,
    pub create_policy: CreatePolicy,
    /// `None`: no watchdog.
    pub stuck_shard: Option<Duration>,
    pub stuck_shard_exit: bool,
    pub http_head_bytes_max: usize,
    pub shutdown_timeout: Duration,
    pub io_memory_bytes: usize,
    pub mesh_channel_capacity: usize,
    pub snapshot_dir: PathBuf,
    /// `None`: snapshots off.
    pub snapshot_interval: Option<Duration>,
    pub restore: bool,
    pub instance_snapshot_bytes_max: u64,
    /// The snapshot writer thread runs under SCHED_IDLE.
    pub snapshot_writer_idle: bool,
    pub join_secret: Option<String>,
    /// `None`: any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// 0: no per-IP limit.
    pub handshakes_per_ip_per_s: u32,
    /// `None`: no admin listener.
    pub admin_listen: Option<SocketAddr>,
    pub admin_token: Option<String>,
    pub health_check_interval: Duration,
    pub load_shedding: bool,
    pub cpu_restart_threshold: f64,
    pub log_level: Option<String>,
    /// `None`: standalone (no --directory).
    pub directory: Option<directory::DirectoryConfig>,
}

/// Who may create instances (`--create-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatePolicy {
    /// Anyone, within the creation rate limits.
    Open,
    /// Only players whose join ticket grants creation (ticket v2 `create`).
    Ticket,
}

/// The shortest --stuck-shard-ms: ten 30 Hz tick intervals.
pub const STUCK_SHARD_MIN: Duration = Duration::from_millis(300);

/// Largest StateUpdate for a full instance: ~24 B per entity plus framing.
pub fn state_update_bytes_max(players_per_instance_max: usize) -> usize {
    const ENTITY_BYTES: usize = 24;
    const OVERHEAD_BYTES: usize = 128;
    players_per_instance_max * ENTITY_BYTES + OVERHEAD_BYTES
}

macro_rules! merge_opts {
    ($flags:expr, $file:expr, $($field:ident),* $(,)?) => {
        ServeOpts {
            config: $flags.config,
            game_settings: $flags.game_settings,
            game: $flags.game.or($file.game),
            no_restore: $flags.no_restore || $file.no_restore,
            stuck_shard_exit: $flags.stuck_shard_exit || $file.stuck_shard_exit,
            $($field: $flags.$field.or($file.$field),)*
        }
    };
}

impl ServeOpts {
    /// Flags win over the file's keys.
    pub fn merged_with_file(self) -> Result<ServeOpts, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let file = Self::read_file(&path)?;
        Ok(merge_opts!(
            self,
            file,
            listen,
            shards,
            cpus,
            region,
            node_id,
            tick_rate,
            max_connections,
            connect_timeout_ms,
            heartbeat_ms,
            max_payload,
            players_per_instance_max,
            instances_per_shard_max,
            inputs_per_tick_max,
            messages_per_second_max,
            message_bytes_max,
            messages_per_tick_max,
            game_messages_per_second_max,
            events_per_tick_max,
            instance_messages_per_tick_max,
            instance_inbox_max,
            read_buffer_bytes,
            write_buffer_bytes,
            buffers,
            recv_buffers,
            tick_slots,
            delta_history_ticks,
            interest_radius,
            interest_budget,
            ring_entries,
            io_writes,
            reconnect_grace_ms,
            instance_idle_ms,
            instance_unused_ms,
            creates_per_conn_per_min,
            creates_per_ip_per_min,
            create_policy,
            stuck_shard_ms,
            http_head_bytes_max,
            shutdown_timeout_ms,
            io_memory_bytes,
            mesh_channel_capacity,
            snapshot_dir,
            snapshot_interval_ms,
            instance_snapshot_bytes_max,
            snapshot_writer_idle,
            join_secret,
            join_secret_file,
            allowed_origins,
            handshakes_per_ip_per_s,
            admin_listen,
            admin_token,
            health_check_interval_ms,
            load_shedding,
            cpu_restart_threshold,
            log_level,
            directory,
            public_url,
            location,
            directory_heartbeat_ms,
            directory_ttl_ms,
            replica_bytes_max,
            replica_writes_per_s_max,
        ))
    }

    fn read_file(path: &Path) -> Result<ServeOpts, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }
}

/// The `[game]` table with each `KEY=VALUE` flag set over it. A value that
/// reads as TOML (a number, `true`, a quoted string) is that; any other
/// text is a string (`walls=wrap`).
fn game_table(mut table: toml::Table, flags: &[String]) -> Result<toml::Table, ConfigError> {
    for flag in flags {
        let Some((key, value)) = flag.split_once('=') else {
            return Err(invalid("game", format!("{flag:?} is not KEY=VALUE")));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid("game", format!("{flag:?} has an empty key")));
        }
        let value = value.trim();
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        table.insert(key.to_owned(), parsed);
    }
    Ok(table)
}

impl Config {
    /// Applies defaults and checks every value; `available_cores` is the list
    /// of core ids this process may run on.
    pub fn resolve(opts: ServeOpts, available_cores: &[usize]) -> Result<Config, ConfigError> {
        let opts = opts.merged_with_file()?;
        let directory = directory::DirectoryConfig::resolve(&opts)?;
        let listen = opts
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 9000)));
        let cores = match &opts.cpus {
            Some(list) => parse_cpu_list(list).map_err(|r| invalid("cpus", r))?,
            None => available_cores.to_vec(),
        };
        let shards = opts.shards.unwrap_or(cores.len().max(1));
        positive("shards", shards)?;
        if opts.cpus.is_some() && cores.len() < shards {
            return Err(invalid(
                "cpus",
                format!("lists {} cores for {shards} shards", cores.len()),
            ));
        }
        let shard_cores = (0..shards).map(|i| cores.get(i).copied()).collect();
        let max_connections = opts.max_connections.unwrap_or(MAX_CONNECTIONS_DEFAULT);
        positive("max-connections", max_connections)?;
        let tick_rate_hz = opts.tick_rate.unwrap_or(TICK_RATE_DEFAULT);
        if !(1..=1000).contains(&tick_rate_hz) {
            return Err(invalid("tick-rate", "must be between 1 and 1000 Hz"));
        }
        let players_per_instance_max = opts
            .players_per_instance_max
            .unwrap_or(PLAYERS_PER_INSTANCE_MAX_DEFAULT);
        positive("players-per-instance-max", players_per_instance_max)?;
        let write_buffer_bytes = opts
            .write_buffer_bytes
            .unwrap_or(WRITE_BUFFER_BYTES_DEFAULT);
        let update_max = state_update_bytes_max(players_per_instance_max);
        if write_buffer_bytes < update_max {
            return Err(invalid(
                "write-buffer-bytes",
                format!(
                    "{write_buffer_bytes} cannot hold one StateUpdate of a full instance \
                     ({players_per_instance_max} players ≈ {update_max} bytes)"
                ),
            ));
        }
        let max_payload_bytes = opts.max_payload.unwrap_or(MAX_PAYLOAD_DEFAULT);
        if max_payload_bytes < 64 {
            return Err(invalid("max-payload", "must be at least 64 bytes"));
        }
        let heartbeat_ms = opts.heartbeat_ms.unwrap_or(HEARTBEAT_MS_DEFAULT);
        positive("heartbeat-ms", heartbeat_ms as usize)?;
        let connect_timeout_ms = opts
            .connect_timeout_ms
            .unwrap_or(CONNECT_TIMEOUT_MS_DEFAULT);
        positive("connect-timeout-ms", connect_timeout_ms as usize)?;
        let buffers_per_shard = match opts.buffers {
            Some(n) => n,
            None => {
                // SO_REUSEPORT spreads connections by hash, unevenly when
                // there are few: every shard can take BUFFERS_MIN_PER_SHARD
                // (or the whole node's limit when it is smaller).
                let fair = max_connections.div_ceil(shards);
                let headroom = (fair * BUFFERS_HEADROOM_PERCENT).div_ceil(100);
                (fair + headroom).max(max_connections.min(BUFFERS_MIN_PER_SHARD))
            }
        };
        positive("buffers", buffers_per_shard)?;
        let node_id = opts
            .node_id
            .unwrap_or_else(|| default_node_id(listen.port()));
        Config {
            listen,
            shard_cores,
            region: opts.region.unwrap_or_else(|| "local".to_owned()),
            node_id,
            tick_rate_hz,
            max_connections,
            connect_timeout: Duration::from_millis(connect_timeout_ms),
            heartbeat: Duration::from_millis(heartbeat_ms),
            max_payload_bytes,
            players_per_instance_max,
            instances_per_shard_max: opts
                .instances_per_shard_max
                .unwrap_or(INSTANCES_PER_SHARD_MAX_DEFAULT),
            inputs_per_tick_max: opts
                .inputs_per_tick_max
                .unwrap_or(INPUTS_PER_TICK_MAX_DEFAULT),
            messages_per_second_max: opts
                .messages_per_second_max
                .unwrap_or(MESSAGES_PER_SECOND_MAX_DEFAULT),
            game: game_table(opts.game.clone().unwrap_or_default(), &opts.game_settings)?,
            // The default leaves room for a message's header under a
            // small --max-payload or --write-buffer-bytes; a value given
            // explicitly is checked as it is.
            message_bytes_max: opts.message_bytes_max.unwrap_or(
                MESSAGE_BYTES_MAX_DEFAULT
                    .min(max_payload_bytes.saturating_sub(MESSAGE_HEADER_BYTES_MAX))
                    .min(write_buffer_bytes.saturating_sub(MESSAGE_HEADER_BYTES_MAX)),
            ),
            messages_per_tick_max: opts
                .messages_per_tick_max
                .unwrap_or(MESSAGES_PER_TICK_MAX_DEFAULT),
            game_messages_per_second_max: opts
                .game_messages_per_second_max
                .unwrap_or(GAME_MESSAGES_PER_SECOND_MAX_DEFAULT),
            events_per_tick_max: opts
                .events_per_tick_max
                .unwrap_or(EVENTS_PER_TICK_MAX_DEFAULT),
            instance_messages_per_tick_max: opts
                .instance_messages_per_tick_max
                .unwrap_or(INSTANCE_MESSAGES_PER_TICK_MAX_DEFAULT),
            instance_inbox_max: opts
                .instance_inbox_max
                .unwrap_or(INSTANCE_INBOX_MAX_DEFAULT),
            read_buffer_bytes: opts.read_buffer_bytes.unwrap_or(READ_BUFFER_BYTES_DEFAULT),
            recv_buffers: {
                let n = opts.recv_buffers.unwrap_or(RECV_BUFFERS_DEFAULT);
                if !n.is_power_of_two() || !(2..=32_768).contains(&n) {
                    return Err(invalid(
                        "recv-buffers",
                        format!("{n}: must be a power of two from 2 to 32768"),
                    ));
                }
                n as u16
            },
            tick_slots: {
                let n = opts.tick_slots.unwrap_or(TICK_SLOTS_DEFAULT);
                let max = TICK_SLOTS_MAX;
                if !(1..=max).contains(&n) {
                    return Err(invalid(
                        "tick-slots",
                        format!("{n}: must be from 1 to {max}"),
                    ));
                }
                n
            },
            delta_history_ticks: {
                let n = opts
                    .delta_history_ticks
                    .unwrap_or(DELTA_HISTORY_TICKS_DEFAULT);
                if !DELTA_HISTORY_TICKS_RANGE.contains(&n) {
                    return Err(invalid(
                        "delta-history-ticks",
                        format!(
                            "{n}: must be from {} to {}",
                            DELTA_HISTORY_TICKS_RANGE.start(),
                            DELTA_HISTORY_TICKS_RANGE.end()
                        ),
                    ));
                }
                n
            },
            interest: {
                let radius = opts.interest_radius.unwrap_or(INTEREST_RADIUS_DEFAULT);
                if !radius.is_finite() || radius < 0.0 {
                    return Err(invalid(
                        "interest-radius",
                        format!("{radius}: must be a finite number of units, 0 or more"),
                    ));
                }
                let budget = opts.interest_budget.unwrap_or(INTEREST_BUDGET_DEFAULT);
                let range = crate::game::Interest::BUDGET_MIN..=INTEREST_BUDGET_MAX;
                if !range.contains(&budget) {
                    return Err(invalid(
                        "interest-budget",
                        format!(
                            "{budget}: must be from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    ));
                }
                crate::game::Interest { radius, budget }
            },
            ring_entries: {
                let n = opts.ring_entries.unwrap_or(RING_ENTRIES_DEFAULT);
                if !(64..=32_768).contains(&n) {
                    return Err(invalid(
                        "ring-entries",
                        format!("{n}: must be from 64 to 32768"),
                    ));
                }
                n
            },
            write_buffer_bytes,
            buffers_per_shard,
            reconnect_grace: Duration::from_millis(
                opts.reconnect_grace_ms
                    .unwrap_or(RECONNECT_GRACE_MS_DEFAULT),
            ),
            instance_idle: Duration::from_millis(
                opts.instance_idle_ms.unwrap_or(INSTANCE_IDLE_MS_DEFAULT),
            ),
            instance_unused: Duration::from_millis(
                opts.instance_unused_ms
                    .unwrap_or(INSTANCE_UNUSED_MS_DEFAULT),
            ),
            creates_per_conn_per_min: opts
                .creates_per_conn_per_min
                .unwrap_or(CREATES_PER_CONN_PER_MIN_DEFAULT),
            creates_per_ip_per_min: opts
                .creates_per_ip_per_min
                .unwrap_or(CREATES_PER_IP_PER_MIN_DEFAULT),
            create_policy: match opts.create_policy.as_deref().unwrap_or("open") {
                "open" => CreatePolicy::Open,
                "ticket" => CreatePolicy::Ticket,
                other => {
                    return Err(invalid(
                        "create-policy",
                        format!("{other:?}: use open or ticket"),
                    ))
                }
            },
            stuck_shard: match opts.stuck_shard_ms.unwrap_or(STUCK_SHARD_MS_DEFAULT) {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            stuck_shard_exit: opts.stuck_shard_exit,
            http_head_bytes_max: opts
                .http_head_bytes_max
                .unwrap_or(HTTP_HEAD_BYTES_MAX_DEFAULT),
            shutdown_timeout: Duration::from_millis(
                opts.shutdown_timeout_ms
                    .unwrap_or(SHUTDOWN_TIMEOUT_MS_DEFAULT),
            ),
            io_memory_bytes: opts.io_memory_bytes.unwrap_or(IO_MEMORY_BYTES_DEFAULT),
            mesh_channel_capacity: opts
                .mesh_channel_capacity
                .unwrap_or(MESH_CHANNEL_CAPACITY_DEFAULT)
                .max(1),
            snapshot_dir: opts
                .snapshot_dir
                .unwrap_or_else(|| PathBuf::from(SNAPSHOT_DIR_DEFAULT)),
            snapshot_interval: match opts
                .snapshot_interval_ms
                .unwrap_or(SNAPSHOT_INTERVAL_MS_DEFAULT)
            {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            restore: !opts.no_restore,
            instance_snapshot_bytes_max: opts
                .instance_snapshot_bytes_max
                .unwrap_or(crate::snapshot::INSTANCE_BYTES_MAX_DEFAULT),
            snapshot_writer_idle: match opts.snapshot_writer_idle.as_deref().unwrap_or("off") {
                "on" => true,
                "off" => false,
                other => {
                    return Err(invalid(
                        "snapshot-writer-idle",
                        format!("{other:?}: use on or off"),
                    ))
                }
            },
            join_secret: crate::auth::cli::load_secret(
                opts.join_secret.filter(|s| !s.is_empty()),
                opts.join_secret_file.as_deref(),
            )
            .map_err(|e| invalid("join-secret-file", e.to_string()))?,
            allowed_origins: opts.allowed_origins.map(|l| {
                l.split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            }),
            handshakes_per_ip_per_s: opts.handshakes_per_ip_per_s.unwrap_or(0),
            admin_listen: parse_admin_listen(opts.admin_listen.as_deref())?,
            admin_token: opts.admin_token.filter(|t| !t.is_empty()),
            health_check_interval: Duration::from_millis(
                opts.health_check_interval_ms
                    .unwrap_or(HEALTH_CHECK_INTERVAL_MS_DEFAULT),
            ),
            io_writes_batched: match opts.io_writes.as_deref().unwrap_or("uring") {
                "uring" => true,
                "syscall" => false,
                other => {
                    return Err(invalid(
                        "io-writes",
                        format!("{other:?}: use uring or syscall"),
                    ))
                }
            },
            load_shedding: match opts.load_shedding.as_deref().unwrap_or("on") {
                "on" => true,
                "off" => false,
                other => {
                    return Err(invalid(
                        "load-shedding",
                        format!("{other:?}: use on or off"),
                    ))
                }
            },
            cpu_restart_threshold: opts
                .cpu_restart_threshold
                .unwrap_or(CPU_RESTART_THRESHOLD_DEFAULT),
            directory,
            log_level: opts.log_level,
        }
        .checked()
    }

    fn checked(self) -> Result<Config, ConfigError> {
        positive("instances-per-shard-max", self.instances_per_shard_max)?;
        positive("inputs-per-tick-max", self.inputs_per_tick_max)?;
        positive("messages-per-tick-max", self.messages_per_tick_max)?;
        positive("events-per-tick-max", self.events_per_tick_max)?;
        positive(
            "instance-messages-per-tick-max",
            self.instance_messages_per_tick_max,
        )?;
        positive("instance-inbox-max", self.instance_inbox_max)?;
        if self.message_bytes_max + MESSAGE_HEADER_BYTES_MAX > self.max_payload_bytes {
            return Err(invalid(
                "message-bytes-max",
                format!(
                    "{} does not leave room for a Message's header under --max-payload ({})",
                    self.message_bytes_max, self.max_payload_bytes
                ),
            ));
        }
        if self.message_bytes_max + MESSAGE_HEADER_BYTES_MAX > self.write_buffer_bytes {
            return Err(invalid(
                "message-bytes-max",
                format!(
                    "{} does not leave room for one GameEvent in --write-buffer-bytes ({})",
                    self.message_bytes_max, self.write_buffer_bytes
                ),
            ));
        }
        if self.read_buffer_bytes < 256 {
            return Err(invalid("read-buffer-bytes", "must be at least 256 bytes"));
        }
        if self.io_memory_bytes < 64 * 1024 {
            return Err(invalid("io-memory-bytes", "must be at least 65536 bytes"));
        }
        if !(self.cpu_restart_threshold > 0.0 && self.cpu_restart_threshold <= 1.0) {
            return Err(invalid("cpu-restart-threshold", "must be in (0, 1]"));
        }
        positive(
            "health-check-interval-ms",
            self.health_check_interval.as_millis() as usize,
        )?;
        if let Some(addr) = self.admin_listen {
            if !addr.ip().is_loopback() && self.admin_token.is_none() {
                return Err(invalid(
                    "admin-listen",
                    format!(
                        "{addr} is not loopback: set --admin-token so the admin API is not open"
                    ),
                ));
            }
        }
        if self.create_policy == CreatePolicy::Ticket && self.join_secret.is_none() {
            return Err(invalid(
                "create-policy",
                "ticket needs --join-secret (tickets are what grant creation)",
            ));
        }
        if self.stuck_shard_exit && self.stuck_shard.is_none() {
            return Err(invalid(
                "stuck-shard-exit",
                "needs the watchdog: --stuck-shard-ms must not be 0",
            ));
        }
        if self.stuck_shard.is_some_and(|d| d < STUCK_SHARD_MIN) {
            return Err(invalid(
                "stuck-shard-ms",
                format!(
                    "must be at least {} ms (a shard finishes a slot every few ms; less than this would call a busy host stuck)",
                    STUCK_SHARD_MIN.as_millis()
                ),
            ));
        }
        if self.http_head_bytes_max < 512 {
            return Err(invalid("http-head-bytes-max", "must be at least 512 bytes"));
        }
        Ok(self)
    }

    pub fn shards(&self) -> usize {
        self.shard_cores.len()
    }

    pub fn tick_interval(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.tick_rate_hz))
    }

    /// Worst-case connection memory of the node in bytes: the bounded
    /// outbound pool plus each shard's receive buffers (shared by its
    /// connections).
    pub fn connection_memory_bytes_max(&self) -> usize {
        self.shards()
            * (self.buffers_per_shard * self.write_buffer_bytes
                + usize::from(self.recv_buffers) * self.read_buffer_bytes)
    }
}

fn parse_admin_listen(v: Option<&str>) -> Result<Option<SocketAddr>, ConfigError> {
    match v.unwrap_or(ADMIN_LISTEN_DEFAULT) {
        "off" | "none" => Ok(None),
        addr => addr
            .parse()
            .map(Some)
            .map_err(|e| invalid("admin-listen", format!("{addr:?}: {e}"))),
    }
}

fn positive(flag: &'static str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(flag, "must be at least 1"));
    }
    Ok(())
}

/// Parses "0,2-3" into [0, 2, 3].
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("{part:?} is not a core number or range like 2-5");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cores.is_empty() {
        return Err("lists no cores".to_owned());
    }
    Ok(cores)
}

/// `--node-id` when none is given: `<hostname>-<port>`.
pub fn default_node_id(port: u16) -> String {
    format!("{}-{}", hostname(), port)
}

impl Config {
    /// The configuration once the listeners are bound: `listen` and
    /// `admin_listen` become the bound addresses (port 0 resolved), and a
    /// node id derived from port 0 is derived again from the real port.
    pub fn bound(self, listen: SocketAddr, admin_listen: Option<SocketAddr>) -> Config {
        let node_id = if self.listen.port() == 0 && self.node_id == default_node_id(0) {
            default_node_id(listen.port())
        } else {
            self.node_id
        };
        Config {
            listen,
            admin_listen,
            node_id,
            ..self
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "node".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_and_interest_flags_are_checked() {
        let c = Config::resolve(ServeOpts::default(), &[0]).unwrap();
        assert_eq!(c.delta_history_ticks, DELTA_HISTORY_TICKS_DEFAULT);
        assert_eq!(c.interest.radius, 0.0);
        assert_eq!(c.interest.budget, INTEREST_BUDGET_DEFAULT);
        let bad = |opts: ServeOpts, flag: &str| {
            let e = Config::resolve(opts, &[0]).expect_err(flag).to_string();
            assert!(e.contains(flag), "{e}");
        };
        bad(
            ServeOpts {
                delta_history_ticks: Some(1),
                ..Default::default()
            },
            "delta-history-ticks",
        );
        bad(
            ServeOpts {
                interest_radius: Some(-1.0),
                ..Default::default()
            },
            "interest-radius",
        );
        bad(
            ServeOpts {
                interest_radius: Some(f32::NAN),
                ..Default::default()
            },
            "interest-radius",
        );
        bad(
            ServeOpts {
                interest_budget: Some(1),
                ..Default::default()
            },
            "interest-budget",
        );
        // 32 ticks of a 64-entity view: ~82 KiB per player at most.
        assert_eq!(delta_memory_bytes_per_player(32, 64), 32 * (64 * 40 + 96));
    }

    #[test]
    fn defaults_follow_the_seed() {
        let c = Config::resolve(ServeOpts::default(), &[0, 1]).unwrap();
        assert_eq!(c.shards(), 2);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.heartbeat, Duration::from_secs(25));
        assert_eq!(c.max_payload_bytes, 16 * 1024);
        assert_eq!(c.tick_rate_hz, 30);
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.buffers_per_shard, 6250);
        assert_eq!(c.region, "local");
        assert!(c.node_id.ends_with("-9000"));
        assert_eq!(c.admin_listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.health_check_interval, Duration::from_secs(30));
        assert_eq!(c.cpu_restart_threshold, 0.9);
        assert_eq!(c.snapshot_dir, PathBuf::from("./data"));
        assert_eq!(c.snapshot_interval, Some(Duration::from_secs(1)));
        assert!(c.restore);
    }

    #[test]
    fn few_connections_still_fit_any_one_shard_and_port_0_names_the_bound_port() {
        let opts = ServeOpts {
            max_connections: Some(3),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::resolve(opts, &[0, 1]).unwrap();
        // Three connections may all hash to one shard.
        assert_eq!(c.buffers_per_shard, 3);
        let c = c.bound("127.0.0.1:4321".parse().unwrap(), None);
        assert!(c.node_id.ends_with("-4321"), "{}", c.node_id);
        let named = ServeOpts {
            node_id: Some("eu-1".into()),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::resolve(named, &[0]).unwrap();
        assert_eq!(
            c.bound("127.0.0.1:4321".parse().unwrap(), None).node_id,
            "eu-1"
        );
    }

    #[test]
    fn admin_off_loopback_needs_a_token() {
        let opts = ServeOpts {
            admin_listen: Some("0.0.0.0:9100".into()),
            ..Default::default()
        };
        let err = Config::resolve(opts, &[0]).unwrap_err().to_string();
        assert!(err.contains("--admin-token"), "{err}");
        let opts = ServeOpts {
            admin_listen: Some("off".into()),
            ..Default::default()
        };
        assert_eq!(Config::resolve(opts, &[0]).unwrap().admin_listen, None);
    }

    #[test]
    fn flags_win_over_file() {
        let dir = std::env::temp_dir().join(format!("shardline-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "max-connections = 7\ntick-rate = 60\nregion = \"eu\"\n",
        )
        .unwrap();
        let opts = ServeOpts {
            config: Some(path),
            tick_rate: Some(20),
            ..Default::default()
        };
        let c = Config::resolve(opts, &[0]).unwrap();
        assert_eq!(c.max_connections, 7);
        assert_eq!(c.tick_rate_hz, 20);
        assert_eq!(c.region, "eu");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("shardline-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "max-conections = 7\n").unwrap();
        let opts = ServeOpts {
            config: Some(path),
            ..Default::default()
        };
        let err = Config::resolve(opts, &[0]).unwrap_err().to_string();
        assert!(err.contains("max-conections"), "{err}");
    }

    #[test]
    fn impossible_values_name_their_flag() {
        let opts = ServeOpts {
            write_buffer_bytes: Some(512),
            players_per_instance_max: Some(100),
            ..Default::default()
        };
        let err = Config::resolve(opts, &[0]).unwrap_err().to_string();
        assert!(err.starts_with("--write-buffer-bytes"), "{err}");
        let opts = ServeOpts {
            shards: Some(0),
            ..Default::default()
        };
        assert!(Config::resolve(opts, &[0])
            .unwrap_err()
            .to_string()
            .starts_with("--shards"));
    }

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0,2-4").unwrap(), vec![0, 2, 3, 4]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
