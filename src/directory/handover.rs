//! A node that finds it lost an instance it runs hands that instance's
//! players to the owner, seats and all.
//!
//! How a node comes to run an instance another node owns: its claim was
//! written to a primary that died before the write reached the replica
//! that was promoted (and another node claimed the instance on the new
//! primary); or the node was cut off long enough for its region to take the
//! instance over; or it came back with local snapshot files of instances
//! taken over meanwhile. The directory's record wins (see `fence.rs`); the
//! node that lost:
//! 1. (its agent) sends the shard running the instance [`ToShard::HandOver`];
//! 2. (its shard) stops seating anyone new there (Joins are sent to the
//!    owner) and publishes one [`HandOver`] with every seat — player id,
//!    name, resume token — on the owner's channel;
//! 3. (the owner's shard running the instance) seats each player *detached*,
//!    under the same player id and token (a token it already holds — the
//!    player's seat came over in a replica — is answered with that seat),
//!    writes the seats to the directory and answers [`HandedOver`];
//! 4. (the shard that lost) sends each connected player `Transfer{owner's
//!    url, instance}` and closes it (1000): it reconnects there with its
//!    token and resumes, same player id; then the local copy is dropped.
//!
//! A hand-over not answered within [`HANDOVER_TIMEOUT`] ends as a plain
//! disown: players get Transfer without a reserved seat.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ToAgent, ToShard};
use crate::game::{shard_for, InstanceId, PlayerId};
use crate::net::close::CloseReason;
use crate::shard::world::Player;
use crate::shard::Shard;

/// How long a shard waits for the owner's answer before it drops its copy
/// anyway (players then reconnect to the owner without a reserved seat).
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// One seat handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedSeat {
    pub player: PlayerId,
    pub name: String,
    pub token: String,
}

/// To the owner of `instance`: seat these players (from node `from_node`,
/// whose shard `reply_shard` waits for [`HandedOver`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOver {
    /// Random; the answer names it.
    pub id: String,
    pub instance: String,
    pub from_node: String,
    pub reply_shard: usize,
    /// The owner, whose channel this goes to.
    pub to_node: String,
    /// At most --players-per-instance-max of them (one instance's seats).
    pub seats: Vec<HandedSeat>,
}

/// The owner's answer, per resume token: the player id seated, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedOver {
    pub id: String,
    pub instance: String,
    /// The owner and its players' URL.
    pub node: String,
    pub url: String,
    /// The node that asked, and its shard.
    pub to_node: String,
    pub shard: usize,
    pub seats: Vec<(String, Result<PlayerId, String>)>,
}

/// A hand-over a shard is running, by instance.
pub struct Pending {
    pub id: String,
    pub node: String,
    pub url: String,
    pub deadline: Instant,
}

fn random_id() -> String {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).expect("OS random source");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

impl Shard {
    fn fleet(&self) -> &super::Directory {
        self.node
            .directory
            .as_ref()
            .expect("hand-overs need --directory")
    }

    /// The instance is handed to another node now: nobody new sits here.
    pub(crate) fn handing_over(&self, id: &InstanceId) -> bool {
        self.handovers.borrow().contains_key(id)
    }

    /// Step 2: `instance` belongs to `node` (at `url`).
    pub(super) fn hand_over(&self, instance: InstanceId, node: String, url: String) {
        if self.handing_over(&instance) {
            return;
        }
        let seats: Vec<HandedSeat> = {
            let w = self.world.borrow();
            let Some(hosted) = w.instances.get(&instance) else {
                return;
            };
            hosted
                .inst
                .seats()
                .filter_map(|s| w.players.get(&s.player))
                .map(|p| HandedSeat {
                    player: p.id,
                    name: p.name.clone(),
                    token: p.token.clone(),
                })
                .collect()
        };
        if seats.is_empty() {
            self.drop_copy(&instance, &url, &HashMap::new());
            return;
        }
        let id = random_id();
        tracing::warn!(shard = self.id, %instance, owner = %node, players = seats.len(), "this node lost an instance it runs; handing its players to the owner");
        self.handovers.borrow_mut().insert(
            instance.clone(),
            Pending {
                id: id.clone(),
                node: node.clone(),
                url,
                deadline: Instant::now() + HANDOVER_TIMEOUT,
            },
        );
        let msg = HandOver {
            id,
            instance: instance.as_str().to_owned(),
            from_node: self.cfg().node_id.clone(),
            reply_shard: self.id,
            to_node: node,
            seats,
        };
        if !self.fleet().tell(ToAgent::HandOver(msg)) {
            self.expire_handover(&instance);
        }
    }

    /// Step 3, on the owner: seat the players handed over.
    pub(super) fn take_seats(&self, h: HandOver) {
        let results: Vec<(String, Result<PlayerId, String>)> = match self.seatable(&h.instance) {
            Err(why) => h
                .seats
                .iter()
                .map(|s| (s.token.clone(), Err(why.clone())))
                .collect(),
            Ok(id) => h
                .seats
                .iter()
                .map(|s| (s.token.clone(), self.take_seat(&id, s)))
                .collect(),
        };
        let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
        self.fleet().metrics.players_handed_in.add(ok as u64);
        tracing::info!(shard = self.id, instance = %h.instance, from = %h.from_node, seated = ok, of = results.len(), "players handed over to this node");
        self.fleet().tell(ToAgent::HandedOver(HandedOver {
            id: h.id,
            instance: h.instance,
            node: self.cfg().node_id.clone(),
            url: self.fleet().public_url.to_string(),
            to_node: h.from_node,
            shard: h.reply_shard,
            seats: results,
        }));
    }

    fn seatable(&self, instance: &str) -> Result<InstanceId, String> {
        let id = InstanceId::parse(instance).map_err(|e| e.to_string())?;
        if shard_for(&id, self.shards) != self.id {
            return Err(format!("instance {id} is not on shard {}", self.id));
        }
        if self.stopping.get() {
            return Err(format!("node {} is stopping", self.cfg().node_id));
        }
        Ok(id)
    }

    /// Seats one handed-over player (detached, same id and token when free).
    fn take_seat(&self, id: &InstanceId, s: &HandedSeat) -> Result<PlayerId, String> {
        let now = Instant::now();
        let mut w = self.world.borrow_mut();
        if let Some(&pid) = w.tokens.get(&s.token) {
            // Its seat came over already (a replica restored here).
            return Ok(pid);
        }
        if s.token.len() != crate::shard::players::RESUME_TOKEN_BYTES * 2 {
            return Err("not a resume token".into());
        }
        let pid = if s.player != 0 && !w.players.contains_key(&s.player) {
            s.player
        } else {
            self.new_player_id(&w)
        };
        w.add_player(Player::detached(
            pid,
            s.name.clone(),
            s.token.clone(),
            None,
            None,
            now,
        ));
        match self.seat_locally(&mut w, pid, Some(id.clone()), true, now) {
            Ok(_) => Ok(pid),
            Err((_, why)) => {
                w.remove_player(pid);
                Err(why)
            }
        }
    }

    /// Step 4: the owner answered.
    pub(super) fn on_handed_over(&self, r: HandedOver) {
        let Ok(instance) = InstanceId::parse(&r.instance) else {
            return;
        };
        let mine = self
            .handovers
            .borrow()
            .get(&instance)
            .is_some_and(|p| p.id == r.id);
        if !mine {
            return; // expired meanwhile
        }
        self.handovers.borrow_mut().remove(&instance);
        let results: HashMap<String, Result<PlayerId, String>> = r.seats.into_iter().collect();
        self.drop_copy(&instance, &r.url, &results);
    }

    /// Hand-overs not answered in time end as a plain disown.
    pub(super) fn expire_handovers(&self, now: Instant) {
        let expired: Vec<InstanceId> = self
            .handovers
            .borrow()
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.expire_handover(&id);
        }
    }

    fn expire_handover(&self, id: &InstanceId) {
        let Some(p) = self.handovers.borrow_mut().remove(id) else {
            return;
        };
        tracing::warn!(shard = self.id, instance = %id, owner = %p.node, "the owner did not take the players over in time; they are sent there without a reserved seat");
        self.drop_copy(id, &p.url, &HashMap::new());
    }

    /// Stops the local copy of `id`: each connected player gets Transfer to
    /// `url` (its seat there if `seated` says so) and a normal close; every
    /// player of the copy is forgotten here.
    fn drop_copy(
        &self,
        id: &InstanceId,
        url: &str,
        seated: &HashMap<String, Result<PlayerId, String>>,
    ) {
        let mut w = self.world.borrow_mut();
        let Some(hosted) = w.instances.remove(id) else {
            return;
        };
        let (mut handed, mut unseated) = (0u64, 0u64);
        for seat in hosted.inst.seats() {
            let Some(p) = w.players.get(&seat.player) else {
                continue;
            };
            match seated.get(&p.token) {
                Some(Ok(_)) => handed += 1,
                Some(Err(why)) => {
                    unseated += 1;
                    tracing::warn!(shard = self.id, instance = %id, player = p.id, why, "the owner refused a handed-over seat");
                }
                None => unseated += 1,
            }
            if let Some(conn) = p.conn.clone() {
                conn.set_player(None);
                let mut enc = self.enc.borrow_mut();
                self.send(&conn, enc.transfer(url, id.as_str()));
                conn.request_close(CloseReason::Normal);
            }
            w.remove_player(seat.player);
        }
        self.metrics.instances_disposed.inc();
        let m = &self.fleet().metrics;
        m.instances_disowned.inc();
        if handed > 0 {
            m.instances_handed_over.inc();
            m.players_handed_over.add(handed);
        }
        tracing::warn!(shard = self.id, instance = %id, owner = url, players_handed = handed, players_without_seat = unseated, "local copy of an instance owned by another node stopped");
    }
}

/// Events of this module for one shard.
pub(super) fn apply(shard: &Shard, ev: ToShard) {
    match ev {
        ToShard::HandOver {
            instance,
            node,
            url,
        } => shard.hand_over(instance, node, url),
        ToShard::TakeSeats(h) => shard.take_seats(h),
        ToShard::HandedOver(r) => shard.on_handed_over(r),
        other => unreachable!("not a hand-over event: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::control::FleetMsg;

    #[test]
    fn hand_over_messages_round_trip() {
        let msgs = [
            FleetMsg::HandOver(HandOver {
                id: "h1".into(),
                instance: "x".into(),
                from_node: "a".into(),
                reply_shard: 1,
                to_node: "b".into(),
                seats: vec![HandedSeat {
                    player: 7,
                    name: "ann".into(),
                    token: "t".into(),
                }],
            }),
            FleetMsg::HandedOver(HandedOver {
                id: "h1".into(),
                instance: "x".into(),
                node: "b".into(),
                url: "ws://b".into(),
                to_node: "a".into(),
                shard: 1,
                seats: vec![("t".into(), Ok(7)), ("u".into(), Err("full".into()))],
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
