//! shardline: a thread-per-core real-time multiplayer game server.
//!
//! Players connect over WebSocket and speak FlatBuffers (`schemas/`). Each
//! core runs one shard — a glommio executor on io_uring — that owns its
//! listener (SO_REUSEPORT), connections, buffers, game instances and
//! metrics. Shards share nothing on the data path; they exchange one message
//! type over bounded channels.
//!
//! # Layout
//!
//! Layers, lowest first. A module may use the modules listed before it,
//! never one listed after it (`tests/layers.rs` reads this list and checks
//! every `crate::` path in `src/` against it).
//!
//! - [`util`]: helpers written once: xorshift, rate windows and token
//!   buckets, RFC 6455 framing, close codes, deadlines, eventfd wake-ups,
//!   logging, CPU lists, each shard's heartbeat (read by the watchdog).
//! - [`game`]: pure game code: the `Game` trait, the reference arena,
//!   instances with their seats and input queues (every call into game
//!   code guarded), placement.
//! - [`protocol`]: generated FlatBuffers code, client-message decoding and
//!   validation, server-message encoding (an update encoded once per
//!   instance), protocol version 2's deltas (quantization, the delta and
//!   custom-patch formats, the client's rebuilt worlds).
//! - [`snapshot`]: crash-safe mmap snapshot files (rkyv), restore, inspect.
//! - [`auth`]: join tickets (HMAC-signed by the studio's backend), replay
//!   protection, `shardline ticket issue`.
//! - [`metrics`]: per-shard counters and HDR histograms (no locks), reports,
//!   Prometheus exposition, /proc readings.
//! - [`config`]: flags, TOML file and defaults → one validated `Config`;
//!   every limit with its unit and memory cost.
//! - [`web`]: the browser demo (`GET /`) and ops dashboard, embedded.
//! - [`directory`]: the fleet's directory on Redis or Redis Sentinel
//!   (optional): the agent thread, node registry, routing, fenced instance
//!   ownership, replicated snapshots (within a write budget) and failover,
//!   hand-overs, fleet messages, `shardline fleet`.
//! - [`shard`]: the shard core: a state machine with no sockets, no clock
//!   and no wakers — join, leave, resume, moves, inputs, staggered tick
//!   slots, snapshots, fleet events, instance-creation limits — fed
//!   `(now, event)`, answering through an effects sink.
//! - [`net`]: sockets below any shard logic: the shard's own io_uring, the
//!   I/O driver that is every game connection's only reader and writer,
//!   outbound buffers and their pool, HTTP heads, admission.
//! - [`runtime`]: one shard's executor and tasks: accept and upgrade, the
//!   slot loop (read → core → write), mesh, sweeps, snapshots, the
//!   directory link, /echo, shutdown, and the watchdog thread that finds a
//!   stuck shard.
//! - [`admin`]: the admin HTTP listener on shard 0's background queue:
//!   /metrics, /health, /ready, /stats, /instances, /histograms, /config,
//!   /drain, /fleet.
//! - [`node`]: a process of shards: binds listeners, starts executors,
//!   shuts them down.
//! - [`loadgen`]: the open-loop load generator (`shardline loadgen`).
//! - [`tune`]: kernel/rlimit profiles, `shardline tune check|apply`.
//! - [`autoscale`]: `shardline autoscale`, the fleet's autoscaler (reads
//!   the directory, orders evacuations through it): per-region policies,
//!   forecast, decisions, providers, the Agones webhook.
//! - [`cli`]: the `shardline` command line (`serve`, …).
//! - [`server`]: a studio's own binary: `Server::builder()` with its game,
//!   and every command and flag of `shardline`.

pub mod util;

pub mod game;

pub mod protocol;

pub mod snapshot;

pub mod auth;

pub mod metrics;

pub mod config;

pub mod web;

pub mod directory;

pub mod shard;

pub mod net;

pub mod runtime;

pub mod admin;

pub mod node;

pub mod loadgen;

pub mod tune;

pub mod autoscale;

pub mod cli;

pub mod server;

pub use server::Server;

/// README.md's Rust snippets ("Your own game") are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
