//! Who may create an instance, and how often.
//!
//! A Join that would create an instance is admitted only if:
//! 1. the shard has room (--instances-per-shard-max, else `ShardFull`);
//! 2. with --create-policy ticket, the player's join ticket grants creation
//!    (else `TicketWrongInstance`);
//! 3. the player's own budget has a token (--creates-per-conn-per-min; the
//!    budget travels with the player between shards, so hopping does not
//!    refill it), else `RateLimited`;
//! 4. its client address has a token on this shard
//!    (--creates-per-ip-per-min), else `RateLimited`.
//!
//! A refusal creates nothing, costs nothing and closes nothing: the
//! connection stays and may join existing instances. Each refusal is
//! counted by reason (`creates_refused_*`).
//!
//! A room its creator leaves empty within [`ABANDON_WINDOW`] without anyone
//! else having joined costs the creator one more token ([`ABANDON_COST`]),
//! and such a room is disposed after --instance-unused-ms rather than
//! --instance-idle-ms: a create-and-leave flood pays double and holds
//! the table only briefly.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::players::{refusal, Refusal};
use super::world::Hosted;
use super::Core;
use crate::config::{Config, CreatePolicy};
use crate::game::PlayerId;
use crate::protocol::ErrorCode;
use crate::util::rate::{KeyedBuckets, TokenBucket};

/// Client addresses whose creation budget a shard tracks at most. ~64 B
/// each (address, bucket, map overhead): 1 MiB per shard. When full,
/// refilled buckets are forgotten; if none is, a new address may not
/// create until one refills (a many-address flood cannot grow memory).
pub const CREATE_IPS_TRACKED_MAX: usize = 16_384;

/// A room left empty by its creator, unshared, within this time of its
/// creation was not a game: the creator pays [`ABANDON_COST`] more.
pub const ABANDON_WINDOW: Duration = Duration::from_secs(60);

/// Extra tokens an abandoned room costs its creator (it may go into debt).
pub const ABANDON_COST: f64 = 1.0;

/// Tokens per second of a "per minute" flag.
fn per_s(per_min: u32) -> f64 {
    f64::from(per_min) / 60.0
}

/// The shard's per-address buckets, unless --creates-per-ip-per-min is 0.
pub(crate) fn per_ip_buckets(cfg: &Config) -> Option<KeyedBuckets<IpAddr>> {
    let n = cfg.creates_per_ip_per_min;
    (n > 0).then(|| KeyedBuckets::new(per_s(n), f64::from(n), CREATE_IPS_TRACKED_MAX))
}

impl Core {
    /// Whether `pid` may create an instance here now; takes the tokens
    /// when it may (give them back with [`Core::creation_failed`]).
    pub(crate) fn admit_creation(&mut self, pid: PlayerId, now: Instant) -> Result<(), Refusal> {
        let max = self.cfg().instances_per_shard_max;
        if self.world.instances.len() >= max {
            self.metrics.creates_refused_full.inc();
            return Err(refusal(
                ErrorCode::ShardFull,
                format!(
                    "shard {} already runs {max} instances (--instances-per-shard-max)",
                    self.id
                ),
            ));
        }
        let per_conn = self.cfg().creates_per_conn_per_min;
        let policy = self.cfg().create_policy;
        let Some(p) = self.world.players.get_mut(&pid) else {
            return Err(refusal(ErrorCode::Internal, "player not on this shard"));
        };
        if policy == CreatePolicy::Ticket && !p.creation.granted {
            self.metrics.creates_refused_ticket.inc();
            return Err(refusal(
                ErrorCode::TicketWrongInstance,
                "this server creates instances only for join tickets that grant it; join an existing instance",
            ));
        }
        if per_conn > 0 {
            let (rate, burst) = (per_s(per_conn), f64::from(per_conn));
            let bucket = p
                .creation
                .bucket
                .get_or_insert_with(|| TokenBucket::full(burst, now));
            if !bucket.take(1.0, rate, burst, now) {
                self.metrics.creates_refused_conn.inc();
                return Err(refusal(
                    ErrorCode::RateLimited,
                    format!(
                        "this connection may create {per_conn} instances per minute (--creates-per-conn-per-min); retry later or join an existing one"
                    ),
                ));
            }
        }
        let ip = p.creation.peer_ip;
        if let (Some(buckets), Some(ip)) = (self.creates_per_ip.as_mut(), ip) {
            if !buckets.take(ip, now) {
                self.give_back_conn_token(pid);
                self.metrics.creates_refused_ip.inc();
                let n = self.cfg().creates_per_ip_per_min;
                return Err(refusal(
                    ErrorCode::RateLimited,
                    format!(
                        "your address may create {n} instances per minute on this shard (--creates-per-ip-per-min); retry later or join an existing one"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// An admitted creation did not happen (the game failed to create it):
    /// its tokens go back.
    pub(crate) fn creation_failed(&mut self, pid: PlayerId) {
        self.give_back_conn_token(pid);
        let ip = self
            .world
            .players
            .get(&pid)
            .and_then(|p| p.creation.peer_ip);
        if let (Some(buckets), Some(ip)) = (self.creates_per_ip.as_mut(), ip) {
            buckets.give_back(ip);
        }
    }

    fn give_back_conn_token(&mut self, pid: PlayerId) {
        let burst = f64::from(self.cfg().creates_per_conn_per_min);
        if let Some(b) = self
            .world
            .players
            .get_mut(&pid)
            .and_then(|p| p.creation.bucket.as_mut())
        {
            b.give_back(1.0, burst);
        }
    }

    /// Whether `pid` leaving its instance now abandons a room it created:
    /// it is the only seat, nobody else ever joined, and it is young.
    pub(crate) fn leaving_abandons(&self, pid: PlayerId, now: Instant) -> bool {
        let Some(id) = self
            .world
            .players
            .get(&pid)
            .and_then(|p| p.instance.as_ref())
        else {
            return false;
        };
        self.world
            .instances
            .get(id)
            .is_some_and(|h| abandoned_by(h, pid, now))
    }

    /// Charges `bucket` (a player's creation budget) for an abandoned room.
    pub(crate) fn charge_abandoned(&self, bucket: &mut Option<TokenBucket>, now: Instant) {
        let per_conn = self.cfg().creates_per_conn_per_min;
        if per_conn == 0 {
            return;
        }
        let (rate, burst) = (per_s(per_conn), f64::from(per_conn));
        bucket
            .get_or_insert_with(|| TokenBucket::full(burst, now))
            .charge(ABANDON_COST, rate, burst, now);
        self.metrics.creates_abandoned.inc();
    }
}

/// `pid` is `h`'s creator, its only seat, nobody else ever joined, and it
/// was created within [`ABANDON_WINDOW`].
pub(crate) fn abandoned_by(h: &Hosted, pid: PlayerId, now: Instant) -> bool {
    h.creator == Some(pid)
        && !h.held_game
        && h.inst.players() == 1
        && now.saturating_duration_since(h.created_at) < ABANDON_WINDOW
}
