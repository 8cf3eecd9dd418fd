//! What one shard owns of the game: its instances, the players connected to
//! it (or holding a seat while disconnected), and their resume tokens.
//!
//! Plain data with small invariant-keeping helpers; the shard's handlers
//! (`shard::players`) drive it. Never shared with another shard.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::effects::Effects;
use super::ConnId;
use crate::game::{Instance, InstanceId, PlayerId};

/// An instance this shard runs.
pub struct Hosted {
    pub inst: Instance,
    /// Since when it has had no seats (disposed after --instance-idle-ms,
    /// or --instance-unused-ms if it never held a game).
    pub empty_since: Option<Instant>,
    /// The player whose Join created it (`None`: restored, or taken over).
    pub creator: Option<PlayerId>,
    pub created_at: Instant,
    /// Someone other than its creator has joined it: it held a game, and
    /// waits the longer --instance-idle-ms when it empties.
    pub held_game: bool,
    /// This instance's recent tick times (step + encode), for its p99.
    pub tick_us: TickRing,
    /// The slot of the tick interval it steps in (`shard::slots`).
    pub slot: usize,
    /// When its next step is due.
    pub next_due: Instant,
    /// Steps that started a whole interval late (its overruns).
    pub overruns: u64,
    /// Its protocol-v2 state: the custom state last sent, the grid of its
    /// entities.
    pub v2: InstanceV2,
}

/// What an instance keeps for its version-2 players between ticks.
#[derive(Debug)]
pub struct InstanceV2 {
    /// The custom state of the last tick that had v2 players, shared by
    /// their views while it does not change.
    pub custom: std::rc::Rc<[u8]>,
    pub grid: super::interest::Grid,
}

impl Default for InstanceV2 {
    fn default() -> Self {
        InstanceV2 {
            custom: std::rc::Rc::from(&[][..]),
            grid: Default::default(),
        }
    }
}

/// Ticks of history kept per instance for its tick-time p99 (4 B each).
pub const INSTANCE_TICK_HISTORY: usize = 128;

/// The last [`INSTANCE_TICK_HISTORY`] tick durations of one instance, µs.
pub struct TickRing {
    us: [u32; INSTANCE_TICK_HISTORY],
    next: usize,
    len: usize,
}

impl Default for TickRing {
    fn default() -> Self {
        Self {
            us: [0; INSTANCE_TICK_HISTORY],
            next: 0,
            len: 0,
        }
    }
}

impl TickRing {
    pub fn push(&mut self, us: u32) {
        self.us[self.next] = us;
        self.next = (self.next + 1) % INSTANCE_TICK_HISTORY;
        self.len = (self.len + 1).min(INSTANCE_TICK_HISTORY);
    }

    /// p99 of the recorded ticks (0 when none).
    pub fn p99(&self) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let mut v: Vec<u32> = self.us[..self.len].to_vec();
        v.sort_unstable();
        u64::from(v[(self.len * 99).div_ceil(100).saturating_sub(1)])
    }
}

/// A player's move to an instance on another shard.
#[derive(Debug, Default)]
pub enum Migration {
    #[default]
    None,
    /// Asked shard `to` to seat the player in `instance`; the session is
    /// paused (nothing read) until the answer, so every later input stays
    /// in the socket and is read by the new owner after the hand-over.
    Out {
        to: usize,
        instance: InstanceId,
        /// A `shardline fleet move` to report the outcome to.
        report: Option<String>,
    },
    /// `shardline fleet move` is finding the player a seat on another
    /// node; the player keeps playing here meanwhile.
    Fleet { move_id: String },
}

pub struct Player {
    pub id: PlayerId,
    pub name: String,
    pub token: String,
    /// The live connection, or `None` while the seat waits for a resume.
    pub conn: Option<ConnId>,
    pub instance: Option<InstanceId>,
    /// Has joined an instance at least once on this connection's session:
    /// an Input before any Join is out of order (close 1008); one after a
    /// Leave is a late packet and only dropped.
    pub ever_joined: bool,
    /// When the connection went away (seat kept for --reconnect-grace-ms).
    pub detached_at: Option<Instant>,
    pub migration: Migration,
    /// Last input received (players_active: input in the last few seconds).
    pub last_input_at: Option<Instant>,
    /// Arrival times of the inputs queued for the next tick, so the time
    /// from arrival to the update that reflects them can be measured.
    /// Bounded like the instance's queue (--inputs-per-tick-max).
    pub inputs_pending_since: Vec<Instant>,
    /// The only instance this player's join ticket admits it to.
    pub allowed_instance: Option<InstanceId>,
    /// What the player may create, and its creation budget (travels with
    /// the player between shards).
    pub creation: Creation,
    /// The protocol version its connection speaks (Hello; a resume may
    /// change it).
    pub protocol: u16,
    /// Version 2: what it was sent and acknowledged (`None` for version 1
    /// or before its first Joined).
    pub v2: Option<super::delta::Peer>,
    /// Its join ticket's verified claims (empty without --join-secret),
    /// for `Game::on_join`. Travel with the player between shards; not
    /// kept in snapshots or across nodes (a restored seat has none).
    pub claims: std::sync::Arc<crate::game::Claims>,
    /// --game-messages-per-second-max; `None` until its first Message.
    pub message_bucket: Option<crate::util::rate::TokenBucket>,
}

/// A player's right to create instances and what it has spent of it
/// (`shard::limits`). Moves with the player (`PlayerCard`), so hopping
/// between shards does not refill it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Creation {
    /// The client address of its connection (the per-IP limit's key).
    pub peer_ip: Option<IpAddr>,
    /// Its join ticket grants creation (needed with --create-policy ticket).
    pub granted: bool,
    /// --creates-per-conn-per-min; `None` until it first creates (full).
    pub bucket: Option<crate::util::rate::TokenBucket>,
}

impl Player {
    /// A player with a seat but no connection yet (arriving from another
    /// shard or node, or restored): it waits --reconnect-grace-ms from
    /// `now` for a resume with its token.
    pub fn detached(
        id: PlayerId,
        name: String,
        token: String,
        instance: Option<InstanceId>,
        allowed_instance: Option<InstanceId>,
        now: Instant,
    ) -> Player {
        Player {
            id,
            name,
            token,
            conn: None,
            instance,
            ever_joined: true,
            detached_at: Some(now),
            migration: Migration::None,
            last_input_at: None,
            inputs_pending_since: Vec::new(),
            allowed_instance,
            creation: Creation::default(),
            protocol: crate::protocol::PROTOCOL_VERSION_MIN,
            v2: None,
            claims: Default::default(),
            message_bucket: None,
        }
    }
}

#[derive(Default)]
pub struct World {
    pub instances: HashMap<InstanceId, Hosted>,
    pub players: HashMap<PlayerId, Player>,
    pub tokens: HashMap<String, PlayerId>,
}

impl World {
    pub fn add_player(&mut self, player: Player) {
        self.tokens.insert(player.token.clone(), player.id);
        self.players.insert(player.id, player);
    }

    /// Forgets a player entirely (its seat must already be released).
    pub fn remove_player(&mut self, id: PlayerId) -> Option<Player> {
        let p = self.players.remove(&id)?;
        if self.tokens.get(&p.token) == Some(&id) {
            self.tokens.remove(&p.token);
        }
        Some(p)
    }

    /// Sends `bytes` to every connected player seated in `instance` except
    /// `but`; returns how many got it.
    pub fn broadcast(
        &self,
        fx: &mut dyn Effects,
        instance: &InstanceId,
        but: Option<PlayerId>,
        bytes: &[u8],
    ) -> u64 {
        let Some(h) = self.instances.get(instance) else {
            return 0;
        };
        let mut sent = 0;
        for seat in h.inst.seats() {
            if Some(seat.player) == but {
                continue;
            }
            if let Some(conn) = self.players.get(&seat.player).and_then(|p| p.conn) {
                fx.send(conn, bytes);
                sent += 1;
            }
        }
        sent
    }

    /// Local instances as (id, players, players_max) for placement.
    pub fn loads(&self) -> impl Iterator<Item = (&InstanceId, usize, usize)> {
        self.instances
            .iter()
            .map(|(id, h)| (id, h.inst.players(), h.inst.limits().players_max))
    }

    pub fn seated_players(&self) -> usize {
        self.instances.values().map(|h| h.inst.players()).sum()
    }
}
