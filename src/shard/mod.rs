//! The shard core: everything one shard decides, as a state machine with no
//! sockets, no clock and no wakers.
//!
//! [`Core`] is fed `(now, event)` through `&mut self` methods — a message
//! from a connection, a connection that ended, a mesh message from another
//! shard, a directory event or answer, a tick slot that is due, a sweep —
//! and says what to do through an [`Effects`] sink: frames for connections,
//! closes, pauses, hand-overs of a socket to another shard, mesh messages,
//! directory messages and look-ups. The I/O driver (`net::driver`) is the
//! production sink: it frames, batches and writes. Tests use
//! [`Recorded`], so join, leave, resume, moves, input bounds, tick order and
//! every game failure are tested deterministically, without sockets or
//! sleeps.
//!
//! # Layout
//! - [`mesh`]: `ShardMsg`, what shard cores send each other.
//! - [`world`]: the shard's instances, players and tokens (plain data).
//! - [`players`]: what a client message does (Hello, Join, Leave, Input, Ping, Ack).
//! - [`delta`]: protocol v2: each player's sent views and acks, the
//!   baseline of its next delta.
//! - [`interest`]: areas of interest: the grid, and which entities a v2
//!   update carries (radius, budget, priority).
//! - [`limits`]: who may create an instance, how often (per connection, per
//!   client address), and what an abandoned one costs.
//! - [`moves`]: moving a connection to another shard, resume look-ups,
//!   disconnects, the mesh conversation about players.
//! - [`slots`]: the tick interval divided into slots; which instance ticks
//!   in which slot (balanced by players).
//! - [`tick`]: stepping a slot's instances and encoding each update once;
//!   the sweeps (seats, idle instances, timeouts).
//! - [`failure`]: disposing an instance whose game code panicked.
//! - [`game_io`]: game messages from clients, the game's events to them,
//!   and messages between instances (mesh, directory).
//! - [`stats`]: figures, instance inspection, load shedding.
//! - [`snapshots`]: capturing instances and rebuilding them after a restart.
//! - [`fleet`]: directory events and answers (fleet orders, moves between
//!   nodes, take-overs).
//! - [`effects`]: the [`Effects`] sink and the recording one for tests.

pub mod delta;
pub mod effects;
pub mod evacuate;
pub mod failure;
pub mod fleet;
pub mod game_io;
pub mod handover;
pub mod interest;
pub mod limits;
pub mod mesh;
pub mod moves;
pub mod players;
pub mod slots;
pub mod snapshots;
pub mod stats;
pub mod tick;
pub mod world;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v2;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::replay::UsedTickets;
use crate::config::Config;
use crate::game::GameFactory;
use crate::metrics::ShardMetrics;
use crate::protocol::{Encoder, LimitsInfo};
use crate::util::rng::Rng;

pub use effects::{Effect, Effects, Recorded};
pub use mesh::{RuntimeSettings, ShardMsg};
pub use world::World;

/// A live connection, as the core knows it: an opaque id the driver chose.
pub type ConnId = u64;

/// What every shard core of a node is given at start-up (read-only
/// afterwards; the used-ticket set is the node's replay protection).
#[derive(Clone)]
pub struct CoreShared {
    pub cfg: Arc<Config>,
    pub factory: Arc<dyn GameFactory>,
    /// With --join-secret: the HMAC key join tickets are signed with.
    pub join_secret: Option<Arc<[u8]>>,
    /// Nonces of the tickets already used on this node.
    pub used_tickets: UsedTickets,
    /// With --directory: this node's public URL (what other nodes tell
    /// players to connect to); `None` standalone.
    pub public_url: Option<Arc<str>>,
    /// With --directory: the fleet's counters (moves, notices, take-overs).
    pub fleet_metrics: Option<Arc<crate::directory::DirectoryMetrics>>,
}

/// A connection's state in the core.
#[derive(Debug)]
pub struct Session {
    /// Set by an accepted Hello (or an adoption).
    pub player: Option<crate::game::PlayerId>,
    /// When the connection was accepted (connect timeout until Hello).
    pub accepted_at: Instant,
    /// Set while a move or a look-up is decided: the driver reads nothing
    /// more of this connection, so later bytes stay for the new owner.
    pub paused_since: Option<Instant>,
    /// A close was asked for; nothing more is sent or handled.
    pub closing: bool,
    /// The client's address (for the per-IP creation limit); `None` when
    /// the runtime does not know it.
    pub peer_ip: Option<std::net::IpAddr>,
    /// The protocol version its Hello asked for (version 1 until then).
    pub protocol: u16,
}

/// Pending resume-token look-ups on other shards, per asking connection.
#[derive(Debug)]
pub(crate) struct SeatLookup {
    pub replies_missing: usize,
    /// The token asked about (for the fleet directory when no shard has it).
    pub token: String,
}

/// One shard's state machine.
pub struct Core {
    pub id: usize,
    pub shards: usize,
    pub shared: CoreShared,
    pub metrics: Rc<ShardMetrics>,
    pub world: World,
    pub sessions: HashMap<ConnId, Session>,
    pub(crate) lookups: HashMap<ConnId, SeatLookup>,
    /// Look-ups waiting for the fleet directory, at most
    /// [`fleet::PENDING_MAX`] per shard.
    pub(crate) directory_pending: usize,
    /// `shardline fleet move`s this shard runs, by move id (bounded by
    /// `directory::transfer::TRANSFERS_PER_SHARD_MAX`).
    pub(crate) transfers: HashMap<String, crate::directory::transfer::Transfer>,
    /// Local instances whose players are being handed to the node that
    /// owns them (bounded by the instances this shard runs).
    pub(crate) handovers: HashMap<crate::game::InstanceId, crate::directory::handover::Pending>,
    /// An evacuation's hand-overs (with --directory; bounded by
    /// `directory::evacuate::EVACUATIONS_PER_SHARD_MAX`).
    pub evacuations: evacuate::Evacuations,
    pub slots: slots::Slots,
    /// Reused per-tick buffers (allocated once, grown to the largest world).
    pub(crate) scratch: tick::Scratch,
    /// One encoder for every server message this shard sends (reused; no
    /// allocation per message once warm).
    pub(crate) enc: Encoder,
    pub rng: Rng,
    /// Settings that POST /config (or the fleet) may change.
    pub settings: RuntimeSettings,
    /// Set when shutdown or a drain begins: place nobody new.
    pub draining: bool,
    /// Set when shutdown begins: greet nobody new.
    pub stopping: bool,
    /// Set while overloaded: new players are refused until it recovers.
    pub shedding: bool,
    pub sampler: stats::Sampler,
    /// Instance creations per client address on this shard
    /// (--creates-per-ip-per-min; at most `limits::CREATE_IPS_TRACKED_MAX`).
    pub(crate) creates_per_ip: Option<crate::util::rate::KeyedBuckets<std::net::IpAddr>>,
    /// With the watchdog: where this shard says which instance it steps.
    pub beat: Option<std::sync::Arc<crate::util::heartbeat::Beats>>,
    /// Monotonic start, and the wall clock (µs since the epoch) at that
    /// moment: wall time follows from `now` without reading a clock.
    pub started_at: Instant,
    pub unix_us_at_start: u64,
}

impl Core {
    /// A core with no instances. `started_unix_us` is the wall clock at
    /// `now` (µs since the Unix epoch); `seed` seeds instance and player ids.
    pub fn new(
        id: usize,
        shared: CoreShared,
        metrics: Rc<ShardMetrics>,
        now: Instant,
        started_unix_us: u64,
        seed: u64,
    ) -> Self {
        let cfg = shared.cfg.clone();
        Self {
            id,
            shards: cfg.shards(),
            metrics,
            world: World::default(),
            sessions: HashMap::new(),
            lookups: HashMap::new(),
            directory_pending: 0,
            transfers: HashMap::new(),
            handovers: HashMap::new(),
            evacuations: Default::default(),
            slots: slots::Slots::new(cfg.tick_slots, cfg.tick_interval(), now),
            scratch: tick::Scratch::default(),
            enc: Encoder::new(),
            rng: Rng::new(seed),
            settings: RuntimeSettings {
                heartbeat: cfg.heartbeat,
                players_per_instance_max: cfg.players_per_instance_max,
            },
            draining: false,
            stopping: false,
            shedding: false,
            sampler: stats::Sampler::new(now),
            creates_per_ip: limits::per_ip_buckets(&cfg),
            beat: None,
            started_at: now,
            unix_us_at_start: started_unix_us,
            shared,
        }
    }

    pub fn cfg(&self) -> &Config {
        &self.shared.cfg
    }

    /// Wall-clock µs since the Unix epoch at `now`.
    pub fn unix_us(&self, now: Instant) -> u64 {
        self.unix_us_at_start + now.saturating_duration_since(self.started_at).as_micros() as u64
    }

    /// µs since this core started (the heartbeat ping payload).
    pub fn clock_us(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started_at).as_micros() as u64
    }

    /// Bounds of game messages, events and instance messages for this
    /// shard's instances.
    pub fn message_limits(&self) -> crate::game::MessageLimits {
        let cfg = self.cfg();
        crate::game::MessageLimits {
            message_bytes_max: cfg.message_bytes_max,
            messages_per_tick_max: cfg.messages_per_tick_max,
            events_per_tick_max: cfg.events_per_tick_max,
            instance_messages_per_tick_max: cfg.instance_messages_per_tick_max,
            instance_inbox_max: cfg.instance_inbox_max,
        }
    }

    /// The limits in force now (sent in every Welcome): run-time changes
    /// included.
    pub fn limits_info(&self) -> LimitsInfo {
        let cfg = self.cfg();
        LimitsInfo {
            max_payload_bytes: cfg.max_payload_bytes as u32,
            inputs_per_tick_max: cfg.inputs_per_tick_max as u16,
            players_per_instance_max: self.settings.players_per_instance_max as u16,
            heartbeat_ms: self.settings.heartbeat.as_millis() as u32,
            connect_timeout_ms: cfg.connect_timeout.as_millis() as u32,
            reconnect_grace_ms: cfg.reconnect_grace.as_millis() as u32,
            delta_history_ticks: cfg.delta_history_ticks,
            message_bytes_max: cfg.message_bytes_max as u32,
            messages_per_tick_max: cfg.messages_per_tick_max.min(usize::from(u16::MAX)) as u16,
        }
    }

    /// A new upgraded connection from `peer_ip` (its first message must be
    /// Hello).
    pub fn connected(
        &mut self,
        conn: ConnId,
        accepted_at: Instant,
        peer_ip: Option<std::net::IpAddr>,
    ) {
        self.sessions.insert(
            conn,
            Session {
                player: None,
                accepted_at,
                paused_since: None,
                closing: false,
                peer_ip,
                protocol: crate::protocol::PROTOCOL_VERSION_MIN,
            },
        );
    }

    /// The player on `conn`, if Hello was accepted.
    pub fn player_of(&self, conn: ConnId) -> Option<crate::game::PlayerId> {
        self.sessions.get(&conn).and_then(|s| s.player)
    }

    /// Asks the driver to close `conn` with `reason` (once).
    pub(crate) fn close(
        &mut self,
        fx: &mut dyn Effects,
        conn: ConnId,
        reason: crate::protocol::close::CloseReason,
    ) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            if s.closing {
                return;
            }
            s.closing = true;
        }
        fx.close(conn, reason);
    }

    pub(crate) fn pause(&mut self, fx: &mut dyn Effects, conn: ConnId, since: Instant) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.paused_since = Some(since);
        }
        fx.pause(conn);
    }

    pub(crate) fn resume_reading(&mut self, fx: &mut dyn Effects, conn: ConnId) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            if s.paused_since.take().is_some() {
                fx.resume(conn);
            }
        }
    }

    pub(crate) fn paused_since(&self, conn: ConnId) -> Option<Instant> {
        self.sessions.get(&conn).and_then(|s| s.paused_since)
    }

    /// Fast non-cryptographic randomness (instance ids, player ids).
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// How long a sweep waits between looks (seats, idle instances, timeouts).
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
