//! What shard cores say to each other. The runtime carries these over the
//! bounded full mesh of channels created at start-up (glommio
//! `channel_mesh`, one SPSC ring per ordered pair of shards,
//! `--mesh-channel-capacity` messages each), beside the sockets it hands
//! over (`runtime::mesh`).
//!
//! Every message names what it carries; the receiving shard asserts that what
//! it was sent belongs to it (e.g. a hand-over for an instance it owns).

use crate::game::types::{InstanceId, PlayerId};
use crate::metrics::report::ShardStats;
use crate::protocol::ErrorCode;

/// A player's identity as it moves between shards.
#[derive(Debug, Clone)]
pub struct PlayerCard {
    pub id: PlayerId,
    pub name: String,
    pub token: String,
    pub allowed_instance: Option<InstanceId>,
    /// Its right to create instances and its creation budget, which follow
    /// it (hopping between shards refills nothing).
    pub creation: crate::shard::world::Creation,
    /// The protocol version its connection speaks.
    pub protocol: u16,
    /// Its join ticket's claims.
    pub claims: std::sync::Arc<crate::game::Claims>,
}

#[derive(Debug)]
pub enum ShardMsg {
    /// Seat this player in `instance` (a mid-session Join to an instance
    /// this shard owns). Answered with `MigrateResult`; on success the
    /// connection follows (the runtime's `Adopt`).
    MigrateIn {
        player: PlayerCard,
        instance: InstanceId,
        create: bool,
        from: usize,
    },
    MigrateResult {
        player: PlayerId,
        result: Result<(), (ErrorCode, String)>,
    },
    /// Does a shard hold the seat for this resume token? `conn` is the
    /// asking connection on shard `from`.
    FindSeat {
        token: String,
        from: usize,
        conn: u64,
        /// The protocol version the resuming connection speaks (the seat's
        /// player takes it: the connection follows).
        protocol: u16,
    },
    SeatFound {
        conn: u64,
        /// The player holding the seat, if this shard has it.
        player: Option<PlayerId>,
        shard: usize,
    },
    /// The admin endpoint (on shard 0) asks for this shard's figures.
    StatsRequest {
        req: u64,
        from: usize,
        with_instances: bool,
    },
    StatsReply {
        req: u64,
        stats: Box<ShardStats>,
    },
    /// The admin endpoint asks for one instance's live state.
    InstanceRequest {
        req: u64,
        from: usize,
        instance: InstanceId,
    },
    InstanceReply {
        req: u64,
        detail: Option<Box<InstanceDetail>>,
    },
    /// Settings changed at run time (POST /config), applied by every shard.
    Configure(RuntimeSettings),
    /// Stop placing new players (POST /drain); running games go on.
    Drain,
    /// A game's message to an instance this shard owns (`Outbox::to_instance`).
    InstanceMail {
        to: InstanceId,
        mail: crate::game::InstanceMail,
    },
}

/// Settings that may change while the node runs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RuntimeSettings {
    pub heartbeat: std::time::Duration,
    /// Applies to instances created from now on.
    pub players_per_instance_max: usize,
}

/// Live view of one instance (GET /instances/{id}).
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstanceDetail {
    pub id: String,
    pub shard: usize,
    pub tick: u64,
    pub players_max: usize,
    pub bounds: (f32, f32),
    pub seats: Vec<SeatDetail>,
    pub entities: Vec<EntityDetail>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SeatDetail {
    pub player_id: PlayerId,
    pub name: String,
    pub entity: u32,
    pub connected: bool,
    pub last_input_seq: u32,
    pub inputs_applied: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EntityDetail {
    pub id: u32,
    pub kind: u16,
    pub x: f32,
    pub y: f32,
    pub vx: f32,
    pub vy: f32,
}
