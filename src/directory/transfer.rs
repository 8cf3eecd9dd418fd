//! Fleet orders about players: broadcasts (`shardline fleet broadcast`) and
//! moving a player to an instance on another node with its seat reserved
//! there (`shardline fleet move`).
//!
//! A move, hop by hop — each hop a bounded queue or one pub/sub message, and
//! the player keeps playing in its instance until the last one:
//! 1. `shardline fleet move` publishes [`MoveOrder`] on the channel of the
//!    node owning the player's instance (A), then waits (BLPOP, bounded) on
//!    `sl:move:{id}` for the outcome.
//! 2. A's shard running the instance checks the player (seated there,
//!    connected, not already moving), marks it moving and asks its agent
//!    who owns the target instance (claiming it for A when nobody does).
//! 3. The target is on A itself: an ordinary move within the node, as for a
//!    Join — the player gets Joined on its connection. The target is on
//!    node B: A's agent publishes a [`Reservation`] to B; B's shard running
//!    the target seats the player *detached* (a fresh player id, the same
//!    resume token, kept for --reconnect-grace-ms like any dropped player),
//!    B's agent writes the seat to the directory and answers [`Reserved`].
//! 4. A's shard: on success the player leaves its instance (the others get
//!    PlayerLeft(Moved)), gets `Transfer{url, instance}` and its connection
//!    is closed (1000); it reconnects to B with its token and finds its
//!    seat. On failure it stays where it was. Either way the outcome goes to
//!    the caller.
//!
//! A move not answered within [`TRANSFER_TIMEOUT`] is abandoned: the player
//! stays, and a seat B reserved too late expires unused after the grace.

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ToAgent;
use crate::game::{shard_for, InstanceId, PlayerId};
use crate::net::close::CloseReason;
use crate::net::conn::Conn;
use crate::protocol::LeaveReason;
use crate::shard::world::{Migration, Player};
use crate::shard::Shard;

/// Longest broadcast message, UTF-8 bytes (it is copied into one frame per
/// connected player, so it costs this × players of outbound buffer).
pub const NOTICE_BYTES_MAX: usize = 1024;
/// A move not answered within this time is abandoned (the player stays).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);
/// Moves a shard runs at once (each ~200 B of state); one more is refused
/// with a reason.
pub const TRANSFERS_PER_SHARD_MAX: usize = 64;

/// `shardline fleet broadcast`: a Notice for every player of a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadcast {
    pub message: String,
    /// `None`: every region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub sent_at_us: u64,
}

impl Broadcast {
    pub fn new(message: String, region: Option<String>) -> Result<Broadcast, String> {
        if message.is_empty() {
            return Err("the message is empty".into());
        }
        if message.len() > NOTICE_BYTES_MAX {
            return Err(format!(
                "the message is {} bytes; at most {NOTICE_BYTES_MAX}",
                message.len()
            ));
        }
        Ok(Broadcast {
            message,
            region,
            sent_at_us: now_us(),
        })
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `shardline fleet move`: move `player` of `instance` to instance `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveOrder {
    /// Random, names the outcome's key.
    pub id: String,
    pub instance: String,
    pub player: PlayerId,
    pub to: String,
    pub create: bool,
}

impl MoveOrder {
    pub fn new(instance: &str, player: PlayerId, to: &str, create: bool) -> Result<Self, String> {
        InstanceId::parse(instance).map_err(|e| format!("--instance {instance:?}: {e}"))?;
        InstanceId::parse(to).map_err(|e| format!("--to {to:?}: {e}"))?;
        if instance == to {
            return Err("the player is already in that instance".into());
        }
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| format!("no OS randomness: {e}"))?;
        Ok(MoveOrder {
            id: raw.iter().map(|b| format!("{b:02x}")).collect(),
            instance: instance.to_owned(),
            player,
            to: to.to_owned(),
            create,
        })
    }
}

/// A seat asked of the node owning `instance`, for a player arriving from
/// node `reply_node` (shard `reply_shard` there waits for [`Reserved`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub move_id: String,
    pub instance: String,
    pub create: bool,
    pub name: String,
    pub token: String,
    pub reply_node: String,
    pub reply_shard: usize,
}

/// The seat a node reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub node: String,
    pub url: String,
    pub instance: String,
    /// The player's id on that node.
    pub player: PlayerId,
}

/// The answer to a [`Reservation`], sent to node `node`, shard `shard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub move_id: String,
    pub node: String,
    pub shard: usize,
    pub result: Result<Seat, String>,
}

/// A move this shard is running, by move id.
pub struct Transfer {
    pub player: PlayerId,
    pub from_instance: InstanceId,
    pub deadline: Instant,
}

impl Shard {
    fn directory(&self) -> &super::Directory {
        self.node
            .directory
            .as_ref()
            .expect("fleet orders need --directory")
    }

    /// Tells the caller of `shardline fleet move` how it went.
    pub(crate) fn move_done(&self, move_id: &str, outcome: serde_json::Value) {
        let dir = self.directory();
        if outcome["ok"] == true {
            dir.metrics.players_moved_out.inc();
        } else {
            dir.metrics.moves_failed.inc();
            tracing::info!(move_id, outcome = %outcome, "fleet move did not happen");
        }
        dir.tell(ToAgent::MoveDone {
            move_id: move_id.to_owned(),
            outcome,
        });
    }

    fn move_refused(&self, move_id: &str, why: impl Into<String>) {
        self.move_done(move_id, json!({"ok": false, "error": why.into()}));
    }

    /// A Notice for every player connected to this shard.
    pub(super) fn notice(&self, b: &super::transfer::Broadcast) {
        let region = b.region.as_deref().unwrap_or("");
        let mut enc = self.enc.borrow_mut();
        let frame = enc.notice(&b.message, region, b.sent_at_us);
        let mut sent = 0;
        for conn in self.conns.borrow().values() {
            if conn.player().is_some() && conn.close_requested().is_none() {
                self.send(conn, frame);
                sent += 1;
            }
        }
        self.directory().metrics.notices_sent.add(sent);
    }

    /// Step 2: the player's node checks the order and finds the target.
    pub(super) fn move_out(&self, order: MoveOrder) {
        let from = match InstanceId::parse(&order.instance) {
            Ok(id) => id,
            Err(e) => return self.move_refused(&order.id, e.to_string()),
        };
        let to = match InstanceId::parse(&order.to) {
            Ok(id) => id,
            Err(e) => return self.move_refused(&order.id, e.to_string()),
        };
        if self.transfers.borrow().len() >= TRANSFERS_PER_SHARD_MAX {
            return self.move_refused(
                &order.id,
                format!("{TRANSFERS_PER_SHARD_MAX} moves are already under way on this shard"),
            );
        }
        let mut w = self.world.borrow_mut();
        if !w.instances.contains_key(&from) {
            drop(w);
            return self.move_refused(&order.id, format!("instance {from} does not run here"));
        }
        let Some(p) = w.players.get_mut(&order.player) else {
            drop(w);
            return self.move_refused(
                &order.id,
                format!("no player {} on this node", order.player),
            );
        };
        if p.instance.as_ref() != Some(&from) {
            drop(w);
            return self.move_refused(
                &order.id,
                format!("player {} is not in instance {from}", order.player),
            );
        }
        if p.conn.is_none() {
            drop(w);
            return self.move_refused(
                &order.id,
                format!(
                    "player {} is not connected (its seat waits for a resume)",
                    order.player
                ),
            );
        }
        if !matches!(p.migration, Migration::None) {
            drop(w);
            return self.move_refused(&order.id, "the player is already moving");
        }
        p.migration = Migration::Fleet {
            move_id: order.id.clone(),
        };
        let reservation = Reservation {
            move_id: order.id.clone(),
            instance: to.as_str().to_owned(),
            create: order.create,
            name: p.name.clone(),
            token: p.token.clone(),
            reply_node: self.cfg().node_id.clone(),
            reply_shard: self.id,
        };
        drop(w);
        self.transfers.borrow_mut().insert(
            order.id.clone(),
            Transfer {
                player: order.player,
                from_instance: from,
                deadline: Instant::now() + TRANSFER_TIMEOUT,
            },
        );
        if !self.directory().tell(ToAgent::Transfer(reservation)) {
            self.abandon_transfer(&order.id, "the directory agent is overloaded; retry");
        }
    }

    /// The move's player, no longer moving; `None` when the move is over.
    fn take_transfer(&self, move_id: &str) -> Option<Transfer> {
        let t = self.transfers.borrow_mut().remove(move_id)?;
        if let Some(p) = self.world.borrow_mut().players.get_mut(&t.player) {
            if matches!(&p.migration, Migration::Fleet { move_id: m } if m == move_id) {
                p.migration = Migration::None;
            }
        }
        Some(t)
    }

    fn abandon_transfer(&self, move_id: &str, why: &str) {
        if self.take_transfer(move_id).is_some() {
            self.move_refused(move_id, why);
        }
    }

    /// Moves not answered in time are abandoned (the player stays).
    pub(super) fn expire_transfers(&self, now: Instant) {
        let expired: Vec<String> = self
            .transfers
            .borrow()
            .iter()
            .filter(|(_, t)| now >= t.deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.abandon_transfer(
                &id,
                &format!(
                    "the target node did not answer within {} ms; the player stays",
                    TRANSFER_TIMEOUT.as_millis()
                ),
            );
        }
    }

    /// Step 3, the target is on this node: a move within the node, as for
    /// a Join (the player gets Joined on its connection).
    pub(super) fn transfer_local(&self, move_id: &str, to: InstanceId, create: bool) {
        let Some(t) = self.take_transfer(move_id) else {
            return;
        };
        let conn = self
            .world
            .borrow()
            .players
            .get(&t.player)
            .and_then(|p| p.conn.clone());
        let Some(conn) = conn else {
            return self.move_refused(move_id, "the player disconnected during the move");
        };
        let owner = shard_for(&to, self.shards);
        if owner != self.id {
            // Another shard: the usual hand-over; it reports when answered.
            self.migrate_out(&conn, t.player, to, create, owner, Some(move_id.to_owned()));
            return;
        }
        let mut w = self.world.borrow_mut();
        match self.seat_locally(&mut w, t.player, Some(to.clone()), create, Instant::now()) {
            Ok(instance) => {
                self.send_joined(&mut w, &conn, &instance, t.player);
                drop(w);
                let url = self.directory().public_url.to_string();
                self.move_done(
                    move_id,
                    self.moved_json(t.player, &self.cfg().node_id, &url, &to, t.player),
                );
            }
            Err((_, why)) => {
                drop(w);
                self.move_refused(move_id, why);
            }
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
            "from_node": self.cfg().node_id,
            "to_node": to_node,
            "url": url,
            "instance": instance.as_str(),
            "new_player": new_player,
        })
    }

    /// Step 3 on the target's node: seat the arriving player, detached
    /// until it connects with its token.
    pub(super) fn reserve(&self, r: Reservation) {
        let result = self.reserve_seat(&r);
        match &result {
            Ok(seat) => {
                self.directory().metrics.players_moved_in.inc();
                tracing::info!(instance = %seat.instance, player = seat.player, from = %r.reply_node, "seat reserved for a player moving here");
            }
            Err(why) => {
                tracing::info!(instance = %r.instance, from = %r.reply_node, why, "seat for a moving player refused")
            }
        }
        self.directory().tell(ToAgent::Reserved(Reserved {
            move_id: r.move_id,
            node: r.reply_node,
            shard: r.reply_shard,
            result,
        }));
    }

    fn reserve_seat(&self, r: &Reservation) -> Result<Seat, String> {
        let id = InstanceId::parse(&r.instance).map_err(|e| e.to_string())?;
        if shard_for(&id, self.shards) != self.id {
            return Err(format!("instance {id} is not on shard {}", self.id));
        }
        if self.draining.get() || self.stopping.get() {
            return Err(format!("node {} is draining", self.cfg().node_id));
        }
        if r.token.len() != crate::shard::players::RESUME_TOKEN_BYTES * 2 {
            return Err("not a resume token".into());
        }
        let now = Instant::now();
        let mut w = self.world.borrow_mut();
        if w.tokens.contains_key(&r.token) {
            return Err("this player already has a seat on the target node".into());
        }
        let pid = self.new_player_id(&w);
        w.add_player(Player::detached(
            pid,
            r.name.clone(),
            r.token.clone(),
            None,
            None,
            now,
        ));
        if let Err((_, why)) = self.seat_locally(&mut w, pid, Some(id.clone()), r.create, now) {
            w.remove_player(pid);
            return Err(why);
        }
        Ok(Seat {
            node: self.cfg().node_id.clone(),
            url: self.directory().public_url.to_string(),
            instance: id.as_str().to_owned(),
            player: pid,
        })
    }

    /// Step 4: the target node answered.
    pub(super) fn on_reserved(&self, r: Reserved) {
        let Some(t) = self.take_transfer(&r.move_id) else {
            // Abandoned meanwhile; the reserved seat expires unused.
            return;
        };
        let seat = match r.result {
            Ok(seat) => seat,
            Err(why) => return self.move_refused(&r.move_id, why),
        };
        let Ok(to) = InstanceId::parse(&seat.instance) else {
            return self.move_refused(&r.move_id, "the target node named an invalid instance");
        };
        let now = Instant::now();
        let mut w = self.world.borrow_mut();
        let conn: Option<Rc<Conn>> = match w.players.get(&t.player) {
            Some(p) if p.instance.as_ref() == Some(&t.from_instance) => p.conn.clone(),
            _ => {
                drop(w);
                return self.move_refused(
                    &r.move_id,
                    "the player left its instance during the move; the reserved seat expires unused",
                );
            }
        };
        self.unseat(&mut w, t.player, LeaveReason::Moved, now);
        w.remove_player(t.player);
        drop(w);
        if let Some(conn) = conn {
            conn.set_player(None);
            let mut enc = self.enc.borrow_mut();
            self.send(&conn, enc.transfer(&seat.url, to.as_str()));
            drop(enc);
            conn.request_close(CloseReason::Normal);
        }
        tracing::info!(player = t.player, to_node = %seat.node, instance = %to, "player moved to another node");
        let outcome = self.moved_json(t.player, &seat.node, &seat.url, &to, seat.player);
        self.move_done(&r.move_id, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::control::FleetMsg;

    #[test]
    fn orders_are_checked_before_they_are_sent() {
        assert!(MoveOrder::new("a", 1, "b", true).is_ok());
        assert!(MoveOrder::new("a", 1, "a", true).is_err());
        assert!(MoveOrder::new("bad id!", 1, "b", true).is_err());
        assert!(MoveOrder::new("a", 1, "", true).is_err());
        let a = MoveOrder::new("a", 1, "b", true).unwrap();
        let b = MoveOrder::new("a", 1, "b", true).unwrap();
        assert_ne!(a.id, b.id, "move ids are random");
        assert!(Broadcast::new(String::new(), None).is_err());
        assert!(Broadcast::new("x".repeat(NOTICE_BYTES_MAX + 1), None).is_err());
        assert!(Broadcast::new("x".repeat(NOTICE_BYTES_MAX), Some("eu".into())).is_ok());
    }

    #[test]
    fn the_documented_move_message_parses() {
        // README and docs/fleet.md: what a matchmaker PUBLISHes.
        let json = r#"{"kind":"move","id":"9f2c","instance":"lobby-3","player":4138424245183649,"to":"match-17","create":true}"#;
        assert_eq!(
            serde_json::from_str::<FleetMsg>(json).unwrap(),
            FleetMsg::Move(MoveOrder {
                id: "9f2c".into(),
                instance: "lobby-3".into(),
                player: 4138424245183649,
                to: "match-17".into(),
                create: true,
            })
        );
        // docs/fleet.md, "Orders".
        let b = r#"{"kind":"broadcast","message":"Servers restart at 04:00 UTC","region":"eu","sent_at_us":1764892800000000}"#;
        assert!(matches!(
            serde_json::from_str::<FleetMsg>(b).unwrap(),
            FleetMsg::Broadcast(Broadcast { region: Some(r), .. }) if r == "eu"
        ));
        let c = r#"{"kind":"config","heartbeat_ms":20000,"players_per_instance_max":32,"max_connections":5000}"#;
        assert!(matches!(
            serde_json::from_str::<FleetMsg>(c).unwrap(),
            FleetMsg::Config(crate::directory::control::FleetConfig {
                heartbeat_ms: Some(20000),
                players_per_instance_max: Some(32),
                max_connections: Some(5000)
            })
        ));
        let d = r#"{"kind":"drain","node":"eu-a"}"#;
        assert_eq!(
            serde_json::from_str::<FleetMsg>(d).unwrap(),
            FleetMsg::Drain {
                node: "eu-a".into()
            }
        );
    }

    #[test]
    fn fleet_orders_round_trip_as_json() {
        let msgs = [
            FleetMsg::Broadcast(Broadcast::new("hi".into(), Some("eu".into())).unwrap()),
            FleetMsg::Move(MoveOrder::new("a", 7, "b", false).unwrap()),
            FleetMsg::Reserve(Reservation {
                move_id: "m".into(),
                instance: "b".into(),
                create: true,
                name: "ann".into(),
                token: "t".into(),
                reply_node: "n1".into(),
                reply_shard: 1,
            }),
            FleetMsg::Reserved(Reserved {
                move_id: "m".into(),
                node: "n1".into(),
                shard: 1,
                result: Err("full".into()),
            }),
        ];
        for m in msgs {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(
                serde_json::from_str::<FleetMsg>(&json).unwrap(),
                m,
                "{json}"
            );
        }
    }
}
