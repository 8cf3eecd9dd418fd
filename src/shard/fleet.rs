//! The core's side of the fleet directory: the figures it reports, the
//! events the agent sends it (take-overs, fleet configuration, drains,
//! broadcasts, moves between nodes, stale copies to stop), the answers to
//! look-ups it asked for, and the moves it runs (`shardline fleet move`,
//! see `directory::transfer` for the protocol).

use std::time::{Duration, Instant};

use serde_json::json;

use super::delta::FullReason;
use super::effects::{Ask, Effects};
use super::world::{Migration, Player};
use super::{ConnId, Core};
use crate::directory::transfer::{
    Broadcast, MoveOrder, Reservation, Reserved, Seat, Transfer, TRANSFERS_PER_SHARD_MAX,
    TRANSFER_TIMEOUT,
};
use crate::directory::{Claim, SeatAt, ShardReport, ToAgent, ToShard};
use crate::game::{shard_for, InstanceId, PlayerId};
use crate::protocol::close::CloseReason;
use crate::protocol::{ErrorCode, LeaveReason};

/// Look-ups (joins, seats) that may wait for the directory at once per
/// shard; beyond it the request is refused (ServerFull: retry). Each holds
/// a paused connection and an id or token (~100 B).
pub const PENDING_MAX: usize = 256;

// A paused connection gives up after MOVE_TIMEOUT; the directory's answer
// must come (or time out) before that.
const _: () =
    assert!(crate::directory::ANSWER_TIMEOUT.as_millis() < super::moves::MOVE_TIMEOUT.as_millis());

/// How long a resume waits before looking again for a seat whose instance
/// this node is rebuilding (taken over from a dead node).
pub const SEAT_REBUILD_RETRY: Duration = Duration::from_millis(50);

/// The directory's answer to an [`Ask`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Claim(Claim),
    Seat(SeatAt),
}

impl Core {
    /// This shard's figures for the directory, with every instance's state
    /// when replication is due.
    /// `capacity`: the node's connection budget now (the registry
    /// publishes it).
    pub fn directory_report(
        &self,
        capacity: usize,
        snapshots: Option<Vec<crate::snapshot::InstanceSnapshot>>,
    ) -> ShardReport {
        ShardReport {
            shard: self.id,
            players: self.world.players.len(),
            capacity,
            instances: self.world.instances.keys().cloned().collect(),
            draining: self.draining,
            shedding: self.shedding,
            snapshots,
        }
    }

    /// With --directory, a Join for an instance this shard does not run
    /// asks the directory first (it may live on another node); so does one
    /// for an instance this shard is handing to its owner.
    pub(crate) fn join_needs_directory(&self, id: &InstanceId) -> bool {
        self.shared.public_url.is_some()
            && (!self.world.instances.contains_key(id) || self.handing_over(id))
    }

    /// Whether this shard may create instances now: a draining or stopping
    /// node creates none, so it claims none in the directory either.
    pub fn may_create_instances(&self) -> bool {
        !self.draining && !self.stopping
    }

    /// Pauses `conn` and asks the directory; `false` when too many
    /// look-ups wait already (the caller answers instead).
    pub(crate) fn ask_directory(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        ask: Ask,
    ) -> bool {
        if self.directory_pending >= PENDING_MAX {
            if let Ask::Claim { .. } = ask {
                self.send_error(
                    fx,
                    conn,
                    ErrorCode::ServerFull,
                    "too many requests waiting for the fleet directory; retry",
                );
            }
            return false;
        }
        self.directory_pending += 1;
        let since = self.paused_since(conn).unwrap_or(now);
        self.pause(fx, conn, since);
        fx.ask(conn, ask);
        true
    }

    /// The directory answered a look-up `conn` was paused for.
    pub fn directory_answer(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        ask: Ask,
        answer: Answer,
    ) {
        self.directory_pending = self.directory_pending.saturating_sub(1);
        let Some(session) = self.sessions.get(&conn) else {
            return; // the connection is gone
        };
        if session.closing || session.paused_since.is_none() {
            return; // gave up on the pause meanwhile
        }
        let since = session.paused_since;
        let player = session.player;
        match (ask, answer) {
            (
                Ask::Claim {
                    player: pid,
                    instance,
                    create,
                    ..
                },
                Answer::Claim(claim),
            ) => {
                if player != Some(pid) {
                    return;
                }
                self.resume_reading(fx, conn);
                match claim {
                    Claim::Mine => self.join_placed(fx, now, conn, pid, Some(instance), create),
                    Claim::Elsewhere { url, .. } => {
                        self.send_error(fx, conn, ErrorCode::WrongNode, &url)
                    }
                    Claim::Unavailable(why) => {
                        self.send_error(fx, conn, ErrorCode::ServerFull, &why)
                    }
                }
            }
            (Ask::Seat { token }, Answer::Seat(at)) => {
                if player.is_some() {
                    return;
                }
                self.resume_reading(fx, conn);
                match at {
                    SeatAt::Node(url) => self.send_error(fx, conn, ErrorCode::WrongNode, &url),
                    SeatAt::Nowhere => self.refuse_resume(fx, conn),
                    SeatAt::Here => {
                        // Look again: the seat may have been rebuilt
                        // meanwhile; if not, this comes back here. The
                        // pause keeps its first start, so MOVE_TIMEOUT
                        // bounds the retries.
                        self.resume(fx, now, conn, &token);
                        if let (Some(first), Some(s)) = (since, self.sessions.get_mut(&conn)) {
                            if s.paused_since.is_some() {
                                s.paused_since = Some(first);
                            }
                        }
                    }
                }
            }
            (ask, answer) => debug_assert!(false, "answer {answer:?} to {ask:?}"),
        }
    }

    /// Stops the local copy of an instance another node owns. Connected
    /// players are sent there (Transfer: their seats are in the owner's
    /// copy, from the replica); detached seats here are dropped.
    fn disown(&mut self, fx: &mut dyn Effects, id: &InstanceId, url: &str) {
        let Some(hosted) = self.remove_instance(id) else {
            return;
        };
        let mut sent = 0;
        for seat in hosted.inst.seats() {
            if let Some(conn) = self.world.players.get(&seat.player).and_then(|p| p.conn) {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.player = None;
                }
                self.metrics.messages_out.inc();
                fx.send(conn, self.enc.transfer(url, id.as_str()));
                self.close(fx, conn, CloseReason::Normal);
                sent += 1;
            }
            self.world.remove_player(seat.player);
        }
        self.metrics.instances_disposed.inc();
        if let Some(m) = &self.shared.fleet_metrics {
            m.instances_disowned.inc();
        }
        tracing::warn!(shard = self.id, instance = %id, owner = url, players_sent = sent, "local copy of an instance owned by another node stopped");
    }

    /// An event from the directory agent.
    pub fn directory_event(&mut self, fx: &mut dyn Effects, now: Instant, ev: ToShard) {
        match ev {
            ToShard::Restore(snaps) => self.restore(snaps, now),
            ToShard::Drain => self.draining = true,
            ToShard::Notice(b) => self.notice(fx, &b),
            ToShard::MoveOut(order) => self.move_out(fx, now, order),
            ToShard::TransferLocal {
                move_id,
                to,
                create,
            } => self.transfer_local(fx, now, &move_id, to, create),
            ToShard::Disown { instance, url } => self.disown(fx, &instance, &url),
            ToShard::Reserve(r) => self.reserve(fx, now, r),
            ToShard::Reserved(r) => self.on_reserved(fx, now, r),
            ev @ (ToShard::HandOver { .. } | ToShard::TakeSeats(_) | ToShard::HandedOver(_)) => {
                self.handover_event(fx, now, ev)
            }
            ToShard::Evacuate => self.evacuate(),
            ToShard::Offer(offer) => self.on_evacuation_offer(fx, offer),
            ToShard::Adopted(done) => self.on_evacuation_done(fx, now, done),
            ToShard::Mail { to, mail } => self.deliver_mail_from_fleet(to, mail),
            ToShard::Configure(c) => {
                let mut s = self.settings;
                if let Some(ms) = c.heartbeat_ms {
                    s.heartbeat = Duration::from_millis(ms);
                }
                if let Some(n) = c.players_per_instance_max {
                    let needed = crate::config::state_update_bytes_max(n);
                    if needed > self.cfg().write_buffer_bytes {
                        tracing::warn!(
                            shard = self.id,
                            n,
                            needed,
                            "fleet players_per_instance_max refused: over --write-buffer-bytes"
                        );
                    } else {
                        s.players_per_instance_max = n;
                    }
                }
                self.settings = s;
                tracing::info!(shard = self.id, ?s, "fleet configuration applied");
            }
        }
    }

    /// Tells the caller of `shardline fleet move` how it went.
    pub(crate) fn move_done(
        &mut self,
        fx: &mut dyn Effects,
        move_id: &str,
        outcome: serde_json::Value,
    ) {
        if let Some(m) = &self.shared.fleet_metrics {
            if outcome["ok"] == true {
                m.players_moved_out.inc();
            } else {
                m.moves_failed.inc();
            }
        }
        if outcome["ok"] != true {
            tracing::info!(move_id, outcome = %outcome, "fleet move did not happen");
        }
        fx.directory(ToAgent::MoveDone {
            move_id: move_id.to_owned(),
            outcome,
        });
    }

    fn move_refused(&mut self, fx: &mut dyn Effects, move_id: &str, why: impl Into<String>) {
        self.move_done(fx, move_id, json!({"ok": false, "error": why.into()}));
    }

    /// A Notice for every player connected to this shard.
    fn notice(&mut self, fx: &mut dyn Effects, b: &Broadcast) {
        let region = b.region.as_deref().unwrap_or("");
        let frame = self.enc.notice(&b.message, region, b.sent_at_us);
        let mut sent = 0;
        for (&conn, s) in &self.sessions {
            if s.player.is_some() && !s.closing {
                fx.send(conn, frame);
                sent += 1;
            }
        }
        self.metrics.messages_out.add(sent);
        if let Some(m) = &self.shared.fleet_metrics {
            m.notices_sent.add(sent);
        }
    }

    /// The player's node checks a move order and finds the target.
    fn move_out(&mut self, fx: &mut dyn Effects, now: Instant, order: MoveOrder) {
        let from = match InstanceId::parse(&order.instance) {
            Ok(id) => id,
            Err(e) => return self.move_refused(fx, &order.id, e.to_string()),
        };
        let to = match InstanceId::parse(&order.to) {
            Ok(id) => id,
            Err(e) => return self.move_refused(fx, &order.id, e.to_string()),
        };
        if self.transfers.len() >= TRANSFERS_PER_SHARD_MAX {
            return self.move_refused(
                fx,
                &order.id,
                format!("{TRANSFERS_PER_SHARD_MAX} moves are already under way on this shard"),
            );
        }
        if !self.world.instances.contains_key(&from) {
            return self.move_refused(fx, &order.id, format!("instance {from} does not run here"));
        }
        let refused = match self.world.players.get(&order.player) {
            None => Some(format!("no player {} on this node", order.player)),
            Some(p) if p.instance.as_ref() != Some(&from) => {
                Some(format!("player {} is not in instance {from}", order.player))
            }
            Some(p) if p.conn.is_none() => Some(format!(
                "player {} is not connected (its seat waits for a resume)",
                order.player
            )),
            Some(p) if !matches!(p.migration, Migration::None) => {
                Some("the player is already moving".to_owned())
            }
            Some(_) => None,
        };
        if let Some(why) = refused {
            return self.move_refused(fx, &order.id, why);
        }
        let p = self.world.players.get_mut(&order.player).expect("checked");
        p.migration = Migration::Fleet {
            move_id: order.id.clone(),
        };
        let reservation = Reservation {
            move_id: order.id.clone(),
            instance: to.as_str().to_owned(),
            create: order.create,
            name: p.name.clone(),
            token: p.token.clone(),
            reply_node: self.shared.cfg.node_id.clone(),
            reply_shard: self.id,
        };
        self.transfers.insert(
            order.id.clone(),
            Transfer {
                player: order.player,
                from_instance: from,
                deadline: now + TRANSFER_TIMEOUT,
            },
        );
        if !fx.directory(ToAgent::Transfer(reservation)) {
            self.abandon_transfer(fx, &order.id, "the directory agent is overloaded; retry");
        }
    }

    /// The move's player, no longer moving; `None` when the move is over.
    fn take_transfer(&mut self, move_id: &str) -> Option<Transfer> {
        let t = self.transfers.remove(move_id)?;
        if let Some(p) = self.world.players.get_mut(&t.player) {
            if matches!(&p.migration, Migration::Fleet { move_id: m } if m == move_id) {
                p.migration = Migration::None;
            }
        }
        Some(t)
    }

    fn abandon_transfer(&mut self, fx: &mut dyn Effects, move_id: &str, why: &str) {
        if self.take_transfer(move_id).is_some() {
            self.move_refused(fx, move_id, why);
        }
    }

    /// Moves not answered in time are abandoned (the player stays).
    pub(crate) fn expire_transfers(&mut self, fx: &mut dyn Effects, now: Instant) {
        let expired: Vec<String> = self
            .transfers
            .iter()
            .filter(|(_, t)| now >= t.deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let why = format!(
                "the target node did not answer within {} ms; the player stays",
                TRANSFER_TIMEOUT.as_millis()
            );
            self.abandon_transfer(fx, &id, &why);
        }
    }

    /// The target is on this node: a move within the node, as for a Join
    /// (the player gets Joined on its connection).
    fn transfer_local(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        move_id: &str,
        to: InstanceId,
        create: bool,
    ) {
        let Some(t) = self.take_transfer(move_id) else {
            return;
        };
        let Some(conn) = self.world.players.get(&t.player).and_then(|p| p.conn) else {
            return self.move_refused(fx, move_id, "the player disconnected during the move");
        };
        let owner = shard_for(&to, self.shards);
        if owner != self.id {
            // Another shard: the usual hand-over; it reports when answered.
            self.migrate_out(
                fx,
                now,
                conn,
                t.player,
                to,
                create,
                owner,
                Some(move_id.to_owned()),
            );
            return;
        }
        match self.seat_locally(fx, t.player, Some(to.clone()), create, now) {
            Ok(instance) => {
                self.send_joined(fx, conn, &instance, t.player, FullReason::Moved);
                let url = self.shared.public_url.as_deref().unwrap_or("").to_owned();
                let node = self.shared.cfg.node_id.clone();
                let outcome = self.moved_json(t.player, &node, &url, &to, t.player);
                self.move_done(fx, move_id, outcome);
            }
            Err((_, why)) => self.move_refused(fx, move_id, why),
        }
    }

    pub(crate) fn moved_json(
        &self,
        player: PlayerId,
        to_node: &str,
        url: &str,
        instance: &InstanceId,
        new_player: PlayerId,
    ) -> serde_json::Value {
        json!({
            "ok": true,
            "player": player,
            "from_node": self.shared.cfg.node_id,
            "to_node": to_node,
            "url": url,
            "instance": instance.as_str(),
            "new_player": new_player,
        })
    }

    /// On the target's node: seat the arriving player, detached until it
    /// connects with its token.
    fn reserve(&mut self, fx: &mut dyn Effects, now: Instant, r: Reservation) {
        let result = self.reserve_seat(fx, now, &r);
        match &result {
            Ok(seat) => {
                if let Some(m) = &self.shared.fleet_metrics {
                    m.players_moved_in.inc();
                }
                tracing::info!(instance = %seat.instance, player = seat.player, from = %r.reply_node, "seat reserved for a player moving here");
            }
            Err(why) => {
                tracing::info!(instance = %r.instance, from = %r.reply_node, why, "seat for a moving player refused")
            }
        }
        fx.directory(ToAgent::Reserved(Reserved {
            move_id: r.move_id,
            node: r.reply_node,
            shard: r.reply_shard,
            result,
        }));
    }

    fn reserve_seat(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        r: &Reservation,
    ) -> Result<Seat, String> {
        let id = InstanceId::parse(&r.instance).map_err(|e| e.to_string())?;
        if shard_for(&id, self.shards) != self.id {
            return Err(format!("instance {id} is not on shard {}", self.id));
        }
        if self.draining || self.stopping {
            return Err(format!("node {} is draining", self.shared.cfg.node_id));
        }
        if r.token.len() != super::players::RESUME_TOKEN_BYTES * 2 {
            return Err("not a resume token".into());
        }
        if self.world.tokens.contains_key(&r.token) {
            return Err("this player already has a seat on the target node".into());
        }
        let pid = self.new_player_id();
        self.world.add_player(Player::detached(
            pid,
            r.name.clone(),
            r.token.clone(),
            None,
            None,
            now,
        ));
        if let Err((_, why)) = self.seat_locally(fx, pid, Some(id.clone()), r.create, now) {
            self.world.remove_player(pid);
            return Err(why);
        }
        Ok(Seat {
            node: self.shared.cfg.node_id.clone(),
            url: self.shared.public_url.as_deref().unwrap_or("").to_owned(),
            instance: id.as_str().to_owned(),
            player: pid,
        })
    }

    /// The target node answered a move this shard asked for.
    fn on_reserved(&mut self, fx: &mut dyn Effects, now: Instant, r: Reserved) {
        let Some(t) = self.take_transfer(&r.move_id) else {
            // Abandoned meanwhile; the reserved seat expires unused.
            return;
        };
        let seat = match r.result {
            Ok(seat) => seat,
            Err(why) => return self.move_refused(fx, &r.move_id, why),
        };
        let Ok(to) = InstanceId::parse(&seat.instance) else {
            return self.move_refused(fx, &r.move_id, "the target node named an invalid instance");
        };
        let conn = match self.world.players.get(&t.player) {
            Some(p) if p.instance.as_ref() == Some(&t.from_instance) => p.conn,
            _ => {
                return self.move_refused(
                    fx,
                    &r.move_id,
                    "the player left its instance during the move; the reserved seat expires unused",
                );
            }
        };
        self.unseat(fx, t.player, LeaveReason::Moved, now);
        self.world.remove_player(t.player);
        if let Some(conn) = conn {
            if let Some(s) = self.sessions.get_mut(&conn) {
                s.player = None;
            }
            self.metrics.messages_out.inc();
            fx.send(conn, self.enc.transfer(&seat.url, to.as_str()));
            self.close(fx, conn, CloseReason::Normal);
        }
        tracing::info!(player = t.player, to_node = %seat.node, instance = %to, "player moved to another node");
        let outcome = self.moved_json(t.player, &seat.node, &seat.url, &to, seat.player);
        self.move_done(fx, &r.move_id, outcome);
    }
}
