//! Moving a player's connection between shards mid-session, and the rest of
//! the shard-to-shard conversation about players.
//!
//! A Join for an instance owned by another shard, or a resume whose seat is
//! on another shard, goes like this:
//! 1. the connection is paused right after that message — the driver reads
//!    nothing more of it, so every later byte the client sent stays in the
//!    driver's buffer or the socket;
//! 2. the owner is asked to seat the player (`MigrateIn` → `MigrateResult`),
//!    or every shard is asked who holds the token (`FindSeat` → `SeatFound`);
//! 3. on success the socket, with the bytes read but not yet handled, is
//!    handed to the owner (the driver's hand-over), which continues the same
//!    WebSocket session: the client sees `Joined` (or `Welcome` + `Joined`)
//!    on the same connection and its pipelined inputs are applied in order,
//!    none lost;
//! 4. on failure the client gets an `Error` and reading resumes here.

use std::time::{Duration, Instant};

use super::delta::FullReason;
use super::effects::Effects;
use super::mesh::{PlayerCard, ShardMsg};
use super::players::Refusal;
use super::world::{Migration, Player};
use super::{ConnId, Core, SeatLookup};
use crate::game::{shard_for, InstanceId, PlayerId};
use crate::protocol::close::CloseReason;
use crate::protocol::{ErrorCode, LeaveReason};

/// A move not decided within this time is abandoned: the client gets an
/// Error and reading resumes where it was.
pub const MOVE_TIMEOUT: Duration = Duration::from_secs(2);

impl Core {
    /// Starts moving `pid` to `instance` on shard `to`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn migrate_out(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        pid: PlayerId,
        instance: InstanceId,
        create: bool,
        to: usize,
        report: Option<String>,
    ) {
        // Leaving an unshared room it just made, for another shard: the
        // budget it takes along pays for the abandoned room (here the
        // player's record goes once the move succeeds).
        let abandons = self.leaving_abandons(pid, now);
        let mut creation = self.world.players[&pid].creation;
        if abandons {
            self.charge_abandoned(&mut creation.bucket, now);
        }
        let p = self.world.players.get_mut(&pid).expect("player exists");
        p.migration = Migration::Out {
            to,
            instance: instance.clone(),
            report,
        };
        let card = PlayerCard {
            id: pid,
            name: p.name.clone(),
            token: p.token.clone(),
            allowed_instance: p.allowed_instance.clone(),
            creation,
            protocol: p.protocol,
            claims: p.claims.clone(),
        };
        self.pause(fx, conn, now);
        fx.mesh(
            to,
            ShardMsg::MigrateIn {
                player: card,
                instance,
                create,
                from: self.id,
            },
        );
    }

    /// The owner seats a player arriving from another shard (detached until
    /// its connection is adopted).
    fn migrate_in(
        &mut self,
        fx: &mut dyn Effects,
        card: PlayerCard,
        instance: InstanceId,
        create: bool,
        now: Instant,
    ) -> Result<(), Refusal> {
        assert_eq!(
            shard_for(&instance, self.shards),
            self.id,
            "not our instance"
        );
        if self.draining {
            return Err((
                ErrorCode::ShuttingDown,
                "server is draining; no new placements".into(),
            ));
        }
        if self.world.players.contains_key(&card.id) {
            return Err((
                ErrorCode::Internal,
                "player already on the target shard".into(),
            ));
        }
        let mut player = Player::detached(
            card.id,
            card.name,
            card.token,
            None,
            card.allowed_instance,
            now,
        );
        player.creation = card.creation;
        player.protocol = card.protocol;
        player.claims = card.claims;
        self.world.add_player(player);
        match self.seat_locally(fx, card.id, Some(instance), create, now) {
            Ok(_) => {
                self.metrics.migrations_in.inc();
                Ok(())
            }
            Err(e) => {
                self.world.remove_player(card.id);
                Err(e)
            }
        }
    }

    fn on_migrate_result(
        &mut self,
        fx: &mut dyn Effects,
        pid: PlayerId,
        result: Result<(), Refusal>,
        now: Instant,
    ) {
        let Some(p) = self.world.players.get_mut(&pid) else {
            return;
        };
        let Migration::Out {
            to,
            instance,
            report,
        } = std::mem::take(&mut p.migration)
        else {
            return; // timed out meanwhile
        };
        let conn = p.conn;
        if let Some(move_id) = report {
            // A `shardline fleet move` within this node.
            let outcome = match &result {
                Ok(()) => {
                    let url = self.shared.public_url.as_deref().unwrap_or("").to_owned();
                    let node = self.cfg().node_id.clone();
                    self.moved_json(pid, &node, &url, &instance, pid)
                }
                Err((_, why)) => serde_json::json!({"ok": false, "error": why}),
            };
            self.move_done(fx, &move_id, outcome);
        }
        match result {
            Ok(()) => {
                self.metrics.migrations_out.inc();
                // The budget that left with the player paid for a room it
                // abandons here (`migrate_out`): not charged twice.
                let left = self.world.players[&pid].instance.clone();
                if let Some(h) = left.and_then(|i| self.world.instances.get_mut(&i)) {
                    if h.creator == Some(pid) {
                        h.creator = None;
                    }
                }
                self.unseat(fx, pid, LeaveReason::Moved, now);
                // The player now lives on `to` (its token too); without a
                // connection its seat there waits for a resume.
                self.world.remove_player(pid);
                if let Some(conn) = conn {
                    self.forget_session(conn);
                    fx.hand_over(conn, to, pid, false);
                }
            }
            Err((code, message)) => {
                let p = &self.world.players[&pid];
                if conn.is_none() && p.instance.is_none() {
                    self.world.remove_player(pid);
                }
                if let Some(conn) = conn {
                    self.send_error(fx, conn, code, &message);
                    self.resume_reading(fx, conn);
                }
            }
        }
    }

    /// The core's part of a connection that leaves this shard: nothing of
    /// it is handled here any more.
    fn forget_session(&mut self, conn: ConnId) {
        self.sessions.remove(&conn);
        self.lookups.remove(&conn);
    }

    /// A paused connection waited [`MOVE_TIMEOUT`] for an answer.
    pub(crate) fn on_move_timeout(&mut self, fx: &mut dyn Effects, conn: ConnId) {
        self.lookups.remove(&conn);
        if let Some(pid) = self.player_of(conn) {
            let report = match self.world.players.get_mut(&pid) {
                Some(p) => match std::mem::take(&mut p.migration) {
                    Migration::Out { report, .. } => report,
                    _ => None,
                },
                None => None,
            };
            if let Some(move_id) = report {
                self.move_done(
                    fx,
                    &move_id,
                    serde_json::json!({"ok": false, "error": "the move to another shard timed out"}),
                );
            }
        }
        self.send_error(
            fx,
            conn,
            ErrorCode::Internal,
            "moving to another shard timed out; try again",
        );
        self.resume_reading(fx, conn);
    }

    /// No shard here holds the seat of `token`: in a fleet, the directory
    /// may know the node that does (the connection stays paused until it
    /// answers); else the resume is refused.
    pub(crate) fn resume_elsewhere_or_refuse(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        token: &str,
    ) {
        if self.shared.public_url.is_some()
            && self.ask_directory(
                fx,
                now,
                conn,
                super::effects::Ask::Seat {
                    token: token.to_owned(),
                },
            )
        {
            return;
        }
        self.refuse_resume(fx, conn);
        self.resume_reading(fx, conn);
    }

    pub(crate) fn refuse_resume(&mut self, fx: &mut dyn Effects, conn: ConnId) {
        self.send_error(
            fx,
            conn,
            ErrorCode::ResumeRefused,
            "resume token unknown or its seat expired; send Hello without a token to start anew",
        );
    }

    /// Asks every other shard whether it holds the seat for `token`.
    pub(crate) fn find_seat_elsewhere(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        token: &str,
    ) {
        self.pause(fx, conn, now);
        let protocol = self
            .sessions
            .get(&conn)
            .map_or(crate::protocol::PROTOCOL_VERSION_MIN, |s| s.protocol);
        self.lookups.insert(
            conn,
            SeatLookup {
                replies_missing: self.shards - 1,
                token: token.to_owned(),
            },
        );
        for to in (0..self.shards).filter(|&s| s != self.id) {
            fx.mesh(
                to,
                ShardMsg::FindSeat {
                    token: token.to_owned(),
                    from: self.id,
                    conn,
                    protocol,
                },
            );
        }
    }

    fn on_seat_found(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        found: Option<PlayerId>,
        shard: usize,
    ) {
        let Some(lookup) = self.lookups.get_mut(&conn) else {
            return; // already answered, or the connection is gone
        };
        lookup.replies_missing -= 1;
        let done = found.is_some() || lookup.replies_missing == 0;
        let token = if done {
            self.lookups
                .remove(&conn)
                .map(|l| l.token)
                .unwrap_or_default()
        } else {
            String::new()
        };
        let waiting = self
            .sessions
            .get(&conn)
            .is_some_and(|s| s.player.is_none() && !s.closing);
        if !waiting {
            return;
        }
        match found {
            Some(player) => {
                self.forget_session(conn);
                fx.hand_over(conn, shard, player, true);
            }
            None if done => self.resume_elsewhere_or_refuse(fx, now, conn, &token),
            None => {}
        }
    }

    /// A connection handed over by another shard, now running here: attach
    /// it to the player's seat and greet it.
    pub fn adopted(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        accepted_at: Instant,
        pid: PlayerId,
        resume: bool,
    ) {
        // The player's record (with its address) came with it.
        self.connected(conn, accepted_at, None);
        let Some(p) = self.world.players.get_mut(&pid) else {
            // The seat expired between the answer and the hand-over.
            self.refuse_resume(fx, conn);
            return;
        };
        let old = p.conn.replace(conn);
        p.detached_at = None;
        if let Some(old) = old {
            if let Some(s) = self.sessions.get_mut(&old) {
                s.player = None;
            }
            self.close(fx, old, CloseReason::Replaced);
        }
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.player = Some(pid);
        }
        if resume {
            self.metrics.players_resumed.inc();
            self.send_welcome(fx, conn, pid, true);
        }
        if let Some(instance) = self.world.players[&pid].instance.clone() {
            let why = if resume {
                FullReason::Resumed
            } else {
                FullReason::Moved
            };
            if !resume || self.game_rejoin(fx, now, conn, pid, &instance) {
                self.send_joined(fx, conn, &instance, pid, why);
            }
        }
    }

    /// The connection is gone (any reason but a hand-over). A player whose
    /// client closed the WebSocket itself (`left`) has left: its seat is
    /// released. Otherwise — a drop, a timeout, a server-side close — a
    /// seated player keeps its seat for the reconnect grace; anyone else is
    /// forgotten.
    pub fn disconnected(&mut self, fx: &mut dyn Effects, now: Instant, conn: ConnId, left: bool) {
        let session = self.sessions.remove(&conn);
        self.lookups.remove(&conn);
        let Some(pid) = session.and_then(|s| s.player) else {
            return;
        };
        let Some(p) = self.world.players.get_mut(&pid) else {
            return;
        };
        if p.conn != Some(conn) {
            return; // replaced by a resume on another connection
        }
        p.conn = None;
        let moving = matches!(p.migration, Migration::Out { .. });
        if left && !moving {
            self.unseat(fx, pid, LeaveReason::Left, now);
            self.world.remove_player(pid);
        } else if p.instance.is_some() || moving {
            // An unanswered move also keeps the player: the answer decides.
            p.detached_at = Some(now);
        } else {
            self.world.remove_player(pid);
        }
    }

    /// A message from another shard's core.
    pub fn mesh(&mut self, fx: &mut dyn Effects, now: Instant, msg: ShardMsg) {
        match msg {
            ShardMsg::MigrateIn {
                player,
                instance,
                create,
                from,
            } => {
                let id = player.id;
                let result = self.migrate_in(fx, player, instance, create, now);
                fx.mesh(from, ShardMsg::MigrateResult { player: id, result });
            }
            ShardMsg::MigrateResult { player, result } => {
                self.on_migrate_result(fx, player, result, now)
            }
            ShardMsg::InstanceMail { to, mail } => self.deliver_mail(fx, to, mail),
            ShardMsg::FindSeat {
                token,
                from,
                conn,
                protocol,
            } => {
                let w = &mut self.world;
                let found = w
                    .tokens
                    .get(&token)
                    .and_then(|id| w.players.get_mut(id))
                    .filter(|p| {
                        !matches!(p.migration, Migration::Out { .. }) && p.instance.is_some()
                    })
                    .map(|p| {
                        // Its connection comes here next, speaking this.
                        p.protocol = protocol;
                        p.id
                    });
                fx.mesh(
                    from,
                    ShardMsg::SeatFound {
                        conn,
                        player: found,
                        shard: self.id,
                    },
                );
            }
            ShardMsg::SeatFound {
                conn,
                player,
                shard,
            } => self.on_seat_found(fx, now, conn, player, shard),
            admin => self.on_admin_mesh(fx, now, admin),
        }
    }
}
