//! shardline: a thread-per-core real-time multiplayer game server.
//!
//! Players connect over WebSocket and speak FlatBuffers (`schemas/`). Each
//! core runs one shard — a glommio executor on io_uring — that owns its
//! listener (SO_REUSEPORT), connections, buffers, game instances and
//! metrics. Shards share nothing on the data path; they exchange one message
//! type over bounded channels.
//!
//! # Layout
//! - [`cli`]: the `shardline` command line (`serve`, …) and logging set-up.
//! - [`config`]: flags, TOML file and defaults → one validated `Config`;
//!   every limit with its unit and memory cost.
//! - [`node`]: a process of shards: binds listeners, starts executors,
//!   shuts them down.
//! - [`shard`]: one executor per core: mesh messages, the shard's world,
//!   handlers, the fixed-step tick and sweeps, the runtime and shutdown gate.
//! - [`net`]: admission, buffer pool, upgrade routing and socket hand-over,
//!   the /play session, /echo, close codes.
//! - [`protocol`]: generated FlatBuffers code, client-message decoding and
//!   validation, server-message encoding.
//! - [`game`]: pure game code: the `Game` trait, the reference arena,
//!   instances with their seats and input queues, placement.
//! - [`metrics`]: per-shard counters and HDR histograms (no locks), reports,
//!   Prometheus exposition, /proc readings.
//! - [`admin`]: the admin HTTP listener on shard 0's background queue:
//!   /metrics, /health, /ready, /stats, /instances, /histograms, /config, /drain.
//! - [`auth`]: join tickets (HMAC-signed by the studio's backend), replay
//!   protection, `shardline ticket issue`.
//! - [`snapshot`]: crash-safe mmap snapshot files (rkyv), restore, inspect.
//! - [`loadgen`]: the open-loop load generator (`shardline loadgen`).
//! - [`web`]: the browser demo (`GET /`) and ops dashboard (`GET /dashboard`
//!   on the admin listener), embedded in the binary.
//! - [`tune`]: kernel/rlimit profiles, `shardline tune check|apply`.
//! - [`directory`]: the fleet's directory on Redis (optional): node
//!   registry, routing (`/v1/route`), instance ownership, replicated
//!   snapshots and failover, fleet messages, `shardline fleet`.
//! - [`autoscale`]: `shardline autoscale`, the fleet's autoscaler (above
//!   the directory: reads it, orders evacuations through it): per-region
//!   policies, forecast, decisions, providers, the Agones webhook.

pub mod admin;
pub mod auth;
pub mod autoscale;
pub mod cli;
pub mod config;
pub mod directory;
pub mod game;
pub mod loadgen;
pub mod metrics;
pub mod net;
pub mod node;
pub mod protocol;
pub mod shard;
pub mod snapshot;
pub mod tune;
pub mod web;
