//! Per-shard counters: plain cells written on the shard's own core, no locks,
//! no atomics. Read by the shard itself when it answers a stats request; the
//! admin endpoint and Prometheus exporter (their own issue) build on this.

use std::cell::Cell;

use crate::net::close::CloseReason;

/// A monotonically increasing count owned by one shard.
#[derive(Debug, Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.set(self.0.get().wrapping_add(n));
    }
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down (open connections, players).
#[derive(Debug, Default)]
pub struct Gauge(Cell<i64>);

impl Gauge {
    pub fn inc(&self) {
        self.0.set(self.0.get() + 1);
    }
    pub fn dec(&self) {
        self.0.set(self.0.get() - 1);
    }
    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

/// Everything one shard counts.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    pub connections_accepted: Counter,
    /// Refused because the node was at --max-connections.
    pub refused_max_connections: Counter,
    /// Refused because this shard's buffer pool was empty.
    pub refused_no_buffer: Counter,
    /// Upgrade requests that failed (bad HTTP, not WebSocket, timed out, 404).
    pub handshakes_failed: Counter,
    pub not_found: Counter,
    pub connections_open: Gauge,
    pub handoffs_out: Counter,
    pub handoffs_in: Counter,
    /// Connections ended, by reason (index: `CloseReason::index`).
    pub closed: [Counter; CloseReason::ALL.len()],
    pub messages_in: Counter,
    pub bytes_in: Counter,
    pub messages_out: Counter,
    pub bytes_out: Counter,
    /// Socket writes (one per connection per wake-up; the tick coalesces).
    pub socket_writes: Counter,
    pub errors_sent: Counter,
    pub inputs_received: Counter,
    pub inputs_applied: Counter,
    pub inputs_dropped_full: Counter,
    pub inputs_dropped_stale: Counter,
    pub inputs_dropped_bad: Counter,
    pub ticks: Counter,
    /// Ticks that started more than one interval late (the previous overran).
    pub ticks_overrun: Counter,
    pub state_updates: Counter,
    pub instances_created: Counter,
    pub instances_disposed: Counter,
    pub players_resumed: Counter,
    pub seats_expired: Counter,
    pub migrations_out: Counter,
    pub migrations_in: Counter,
    /// Mesh messages dropped because the local outbox was full.
    pub mesh_dropped: Counter,
    /// Instances stopped because their game rules panicked.
    pub game_panics: Counter,
}

impl ShardMetrics {
    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason.index()].inc();
    }
}
