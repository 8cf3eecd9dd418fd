//! Per-shard metrics: counters and gauges in plain cells and HDR histograms,
//! all written on the shard's own core with no locks or atomics. A shard
//! copies them into a [`report::ShardStats`] when asked (over the mesh), and
//! the admin endpoint merges those into node-wide figures.
//!
//! - [`histograms`]: the latency histograms.
//! - [`system`]: CPU, load average and memory from /proc.
//! - [`report`]: the snapshot types (`ShardStats`, `NodeStats`) and JSON.
//! - [`prometheus`]: the Prometheus text exposition.

pub mod histograms;
pub mod prometheus;
pub mod report;
pub mod system;

use std::cell::Cell;

use crate::protocol::close::CloseReason;

pub use histograms::{HistName, ShardHistograms};

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

/// A value that goes up and down (open connections).
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

macro_rules! shard_counters {
    ($( $(#[doc = $doc:literal])+ $name:ident, )*) => {
        /// Everything one shard counts.
        #[derive(Default)]
        pub struct ShardMetrics {
            $( $(#[doc = $doc])+ pub $name: Counter, )*
            /// Connections ended, by reason (index: `CloseReason::index`).
            pub closed: [Counter; CloseReason::ALL.len()],
            /// Open WebSocket connections (play and echo).
            pub connections_open: Gauge,
            /// Inputs refused by the game, per reason (at most
            /// [`REFUSAL_REASONS_TRACKED_MAX`] reasons, then "other").
            pub inputs_refused_by_reason: std::cell::RefCell<Vec<(&'static str, u64)>>,
            pub hist: ShardHistograms,
        }

        impl ShardMetrics {
            /// Every counter as (name, help, value), for exporters.
            pub fn counters(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![ $( (stringify!($name), concat!($($doc),+).trim(), self.$name.get()), )* ]
            }
        }
    };
}

shard_counters! {
    /// TCP connections accepted by this shard's listener.
    connections_accepted,
    /// Upgrades refused because the node was at --max-connections (HTTP 503).
    refused_max_connections,
    /// Upgrades refused because this shard's buffer pool was empty (HTTP 503).
    refused_no_buffer,
    /// Upgrades refused while the shard sheds load (HTTP 503).
    refused_overload,
    /// Connections refused by the per-IP handshake rate limit (HTTP 429).
    refused_rate_limited,
    /// Upgrades refused for an Origin not in --allowed-origins (HTTP 403).
    refused_origin,
    /// Upgrade requests that failed: malformed, not WebSocket, or timed out.
    handshakes_failed,
    /// Requests for an unknown path (HTTP 404).
    not_found,
    /// Sockets handed to the shard that owns their instance, before the upgrade.
    handoffs_out,
    /// Sockets received from another shard.
    handoffs_in,
    /// WebSocket messages received.
    messages_in,
    /// Payload bytes received.
    bytes_in,
    /// Messages queued to clients.
    messages_out,
    /// Bytes written to client sockets.
    bytes_out,
    /// Socket writes (one per connection per wake-up; a tick's frames coalesce).
    socket_writes,
    /// Error messages sent to clients.
    errors_sent,
    /// Inputs received from clients.
    inputs_received,
    /// Inputs applied to a world.
    inputs_applied,
    /// Inputs dropped: more than --inputs-per-tick-max in one tick.
    inputs_dropped_full,
    /// Inputs dropped: stale or duplicate seq, or not seated.
    inputs_dropped_stale,
    /// Inputs dropped: NaN or infinite axes.
    inputs_dropped_bad,
    /// Tick intervals run (each runs every slot once).
    ticks,
    /// Slots in which some instance stepped a whole interval late (it
    /// stepped once, not in a burst of catch-up steps).
    ticks_overrun,
    /// Instance steps that started more than a tenth of an interval late.
    ticks_late,
    /// Slots skipped because the shard fell a whole interval behind.
    slots_skipped,
    /// StateUpdates queued (one per seated, connected player per tick).
    state_updates,
    /// StateDeltas queued (protocol v2: one per seated, connected v2 player per tick).
    state_deltas,
    /// Bytes of StateUpdate and StateDelta messages queued (payloads, before WebSocket framing).
    state_bytes,
    /// Distinct StateDeltas encoded (players with the same baseline and view share one).
    delta_encodes,
    /// Full states sent to v2 players as the first update after a Join.
    full_states_joined,
    /// Full states sent to v2 players as the first update after a resume.
    full_states_resumed,
    /// Full states sent to v2 players as the first update after a move between shards.
    full_states_moved,
    /// Full states sent to v2 players that had acknowledged no tick yet.
    full_states_no_ack,
    /// Full states sent to v2 players whose acknowledged tick was older than --delta-history-ticks.
    full_states_too_old,
    /// Acks ignored: a tick never sent to the player (or no longer held), or older than its newest ack.
    acks_ignored,
    /// Entity changes a v2 update left for a later one (--interest-budget reached).
    interest_deferred,
    /// Instances created.
    instances_created,
    /// Instances disposed (idle, or stopped by a game panic).
    instances_disposed,
    /// Empty instances that had held a game, disposed after --instance-idle-ms.
    instances_disposed_idle,
    /// Empty instances nobody but their creator ever joined, disposed after --instance-unused-ms.
    instances_disposed_unused,
    /// Instance creations refused: the shard was at --instances-per-shard-max (Error(ShardFull)).
    creates_refused_full,
    /// Instance creations refused: the connection was over --creates-per-conn-per-min (Error(RateLimited)).
    creates_refused_conn,
    /// Instance creations refused: the client IP was over --creates-per-ip-per-min (Error(RateLimited)).
    creates_refused_ip,
    /// Instance creations refused: --create-policy ticket and the ticket grants none (Error(TicketWrongInstance)).
    creates_refused_ticket,
    /// Rooms their creator left empty and unshared soon after creating them (each costs one more creation).
    creates_abandoned,
    /// Players who took their seat back with a resume token.
    players_resumed,
    /// Seats released after --reconnect-grace-ms without a resume.
    seats_expired,
    /// Players moved to an instance on another shard.
    migrations_out,
    /// Players received from another shard.
    migrations_in,
    /// Mesh messages dropped because the local outbox was full.
    mesh_dropped,
    /// Instances stopped because their game rules panicked.
    game_panics,
    /// Connections closed (1008) for sending more than --messages-per-second-max.
    flooders_closed,
    /// Join tickets refused: missing, forged, expired, replayed, wrong instance.
    tickets_refused,
    /// Game messages (Message) received from clients.
    game_messages_received,
    /// Game messages dropped: more than --messages-per-tick-max in one tick.
    game_messages_dropped_full,
    /// Game messages refused: body over --message-bytes-max (Error(MessageTooLarge)).
    game_messages_too_large,
    /// Game messages dropped: the player had left its instance.
    game_messages_dropped_unseated,
    /// Connections closed (1008) for sending more than --game-messages-per-second-max (Error(MessageFlood)).
    game_message_flooders_closed,
    /// GameEvents queued to clients (protocol version 2 and up).
    game_events_sent,
    /// Events a game emitted over --events-per-tick-max or --message-bytes-max (not sent).
    game_events_dropped,
    /// Joins the game refused (Game::on_join; Error(JoinRefused)).
    joins_refused,
    /// Inputs the game refused as impossible (Game::validate_input; per reason: shardline_inputs_refused_by_reason_total).
    inputs_refused,
    /// Messages between instances sent by this shard's games.
    instance_messages_sent,
    /// Messages between instances put in their target's inbox.
    instance_messages_delivered,
    /// Messages between instances dropped: the target instance does not run where it should.
    instance_messages_dropped_gone,
    /// Messages between instances dropped: the target's inbox was full (--instance-inbox-max).
    instance_messages_dropped_full,
    /// Messages between instances a game sent over --instance-messages-per-tick-max or --message-bytes-max (not sent).
    instance_messages_dropped_outbox,
    /// Snapshots written durably.
    snapshots_written,
    /// Snapshot writes that failed (disk full, permissions, …).
    snapshot_failures,
}

/// Distinct input-refusal reasons a shard counts apart; the rest are
/// counted as "other" (the reasons are the game's own fixed strings).
pub const REFUSAL_REASONS_TRACKED_MAX: usize = 32;

impl ShardMetrics {
    /// `n` inputs refused by the game for `reason`.
    pub fn input_refused(&self, reason: &'static str, n: u64) {
        self.inputs_refused.add(n);
        let mut by = self.inputs_refused_by_reason.borrow_mut();
        let known = by.iter().any(|r| r.0 == reason);
        let reason = if known || by.len() + 1 < REFUSAL_REASONS_TRACKED_MAX {
            reason
        } else {
            "other"
        };
        match by.iter_mut().find(|r| r.0 == reason) {
            Some(r) => r.1 += n,
            None => by.push((reason, n)),
        }
    }

    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason.index()].inc();
    }
}
