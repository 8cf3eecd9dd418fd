//! The one message type shards exchange, over the bounded full mesh of
//! channels created at start-up (glommio `channel_mesh`, one SPSC ring per
//! ordered pair of shards, `--mesh-channel-capacity` messages each).
//!
//! Every message names what it carries; the receiving shard asserts that what
//! it was sent belongs to it (e.g. a hand-over for an instance it owns).

use std::os::fd::OwnedFd;
use std::time::Instant;

use crate::game::types::{InstanceId, PlayerId, PlayerInput};
use crate::net::admission::ConnPermit;
use crate::protocol::ErrorCode;

/// A player's identity as it moves between shards.
#[derive(Debug, Clone)]
pub struct PlayerCard {
    pub id: PlayerId,
    pub name: String,
    pub token: String,
}

#[derive(Debug)]
pub enum ShardMsg {
    /// A raw socket accepted elsewhere whose upgrade request names an
    /// instance this shard owns. `head` holds every byte already read from
    /// it (the request head and anything pipelined after it).
    HandOff {
        fd: OwnedFd,
        head: Vec<u8>,
        accepted_at: Instant,
        permit: ConnPermit,
    },
    /// Seat this player in `instance` (a mid-session Join to an instance
    /// this shard owns). Answered with `MigrateResult`.
    MigrateIn {
        player: PlayerCard,
        instance: InstanceId,
        create: bool,
        from: usize,
    },
    MigrateResult {
        player: PlayerId,
        instance: InstanceId,
        result: Result<(), (ErrorCode, String)>,
    },
    /// An input that arrived on the player's old connection after it asked
    /// to move; applied in order on the new shard.
    ForwardInput { player: PlayerId, input: PlayerInput },
    /// The old connection is gone: no more forwarded inputs will follow.
    ForwardEnd { player: PlayerId },
    /// Does a shard hold the seat for this resume token? `conn` is the
    /// asking connection on shard `from`.
    FindSeat {
        token: String,
        from: usize,
        conn: u64,
    },
    SeatFound {
        conn: u64,
        instance: Option<InstanceId>,
        shard: usize,
    },
}
