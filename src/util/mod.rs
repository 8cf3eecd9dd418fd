//! The lowest layer: small helpers every other layer may use, written once.
//!
//! - [`rng`]: xorshift64* — fast non-cryptographic randomness (instance and
//!   player ids, masking keys, test inputs).
//! - [`rate`]: rate windows and token buckets (flood limits, handshake and
//!   creation limits), pure: time is a parameter.
//! - [`ws`]: RFC 6455 framing — frame headers for both roles, unmasking, and
//!   the server side of a connection's frame stream (fragments, control
//!   frames, close handshake, limits).
//! - [`close`]: why connections end, and the WebSocket close code of each.
//! - [`time`]: bounding a future by a deadline on the shard's executor.
//! - [`wake`]: an eventfd that a plain thread rings and a shard's task
//!   awaits (event-driven wake-ups instead of sleep-polling).
//! - [`logging`]: the process's log filter (set at start, changed by the admin API).
//! - [`cores`]: which CPUs this process may run on.
//! - [`heartbeat`]: each shard's progress (last finished slot, the instance
//!   it is stepping), written by the shard and read by the watchdog thread.

pub mod close;
pub mod cores;
pub mod heartbeat;
pub mod logging;
pub mod rate;
pub mod rng;
pub mod time;
pub mod wake;
pub mod ws;
