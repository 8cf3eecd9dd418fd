//! The core's side of a hand-over (protocol and messages:
//! `directory::handover`): a node that finds it lost an instance it runs
//! hands that instance's players to the owner, seats and all; the owner's
//! shard seats them detached under the same ids and tokens.

use std::collections::HashMap;
use std::time::Instant;

use super::effects::Effects;
use super::world::Player;
use super::Core;
use crate::directory::handover::{HandOver, HandedOver, HandedSeat, Pending, HANDOVER_TIMEOUT};
use crate::directory::{ToAgent, ToShard};
use crate::game::{shard_for, InstanceId, PlayerId};
use crate::protocol::close::CloseReason;

impl Core {
    /// The instance is being handed to another node: nobody new sits here.
    pub(crate) fn handing_over(&self, id: &InstanceId) -> bool {
        self.handovers.contains_key(id)
    }

    /// A hand-over event from the agent.
    pub(crate) fn handover_event(&mut self, fx: &mut dyn Effects, now: Instant, ev: ToShard) {
        match ev {
            ToShard::HandOver {
                instance,
                node,
                url,
            } => self.hand_over(fx, now, instance, node, url),
            ToShard::TakeSeats(h) => self.take_seats(fx, now, h),
            ToShard::HandedOver(r) => self.on_handed_over(fx, r),
            other => debug_assert!(false, "not a hand-over event: {other:?}"),
        }
    }

    /// `instance` belongs to `node` (at `url`): offer it every seat.
    fn hand_over(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        instance: InstanceId,
        node: String,
        url: String,
    ) {
        if self.handing_over(&instance) {
            return;
        }
        let Some(hosted) = self.world.instances.get(&instance) else {
            return;
        };
        let seats: Vec<HandedSeat> = hosted
            .inst
            .seats()
            .filter_map(|s| self.world.players.get(&s.player))
            .map(|p| HandedSeat {
                player: p.id,
                name: p.name.clone(),
                token: p.token.clone(),
            })
            .collect();
        if seats.is_empty() {
            self.drop_copy(fx, &instance, &url, &HashMap::new());
            return;
        }
        let id = format!("{:016x}", self.rng.next_u64());
        tracing::warn!(shard = self.id, %instance, owner = %node, players = seats.len(), "this node lost an instance it runs; handing its players to the owner");
        self.handovers.insert(
            instance.clone(),
            Pending {
                id: id.clone(),
                node: node.clone(),
                url,
                deadline: now + HANDOVER_TIMEOUT,
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
        if !fx.directory(ToAgent::HandOver(msg)) {
            self.expire_handover(fx, &instance);
        }
    }

    /// On the owner: seat the players handed over, and answer.
    fn take_seats(&mut self, fx: &mut dyn Effects, now: Instant, h: HandOver) {
        let results: Vec<(String, Result<PlayerId, String>)> = match self.seatable(&h.instance) {
            Err(why) => h
                .seats
                .iter()
                .map(|s| (s.token.clone(), Err(why.clone())))
                .collect(),
            Ok(id) => h
                .seats
                .iter()
                .map(|s| (s.token.clone(), self.take_seat(fx, now, &id, s)))
                .collect(),
        };
        let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
        if let Some(m) = &self.shared.fleet_metrics {
            m.players_handed_in.add(ok as u64);
        }
        tracing::info!(shard = self.id, instance = %h.instance, from = %h.from_node, seated = ok, of = results.len(), "players handed over to this node");
        let url = self
            .shared
            .public_url
            .as_deref()
            .unwrap_or_default()
            .to_owned();
        fx.directory(ToAgent::HandedOver(HandedOver {
            id: h.id,
            instance: h.instance,
            node: self.cfg().node_id.clone(),
            url,
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
        if self.stopping {
            return Err(format!("node {} is stopping", self.cfg().node_id));
        }
        Ok(id)
    }

    /// Seats one handed-over player (detached, same id and token when free).
    fn take_seat(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        id: &InstanceId,
        s: &HandedSeat,
    ) -> Result<PlayerId, String> {
        if let Some(&pid) = self.world.tokens.get(&s.token) {
            // Its seat came over already (a replica restored here).
            return Ok(pid);
        }
        if s.token.len() != super::players::RESUME_TOKEN_BYTES * 2 {
            return Err("not a resume token".into());
        }
        let pid = if s.player != 0 && !self.world.players.contains_key(&s.player) {
            s.player
        } else {
            self.new_player_id()
        };
        self.world.add_player(Player::detached(
            pid,
            s.name.clone(),
            s.token.clone(),
            None,
            None,
            now,
        ));
        match self.seat_locally(fx, pid, Some(id.clone()), true, now) {
            Ok(_) => Ok(pid),
            Err((_, why)) => {
                self.world.remove_player(pid);
                Err(why)
            }
        }
    }

    /// The owner answered.
    fn on_handed_over(&mut self, fx: &mut dyn Effects, r: HandedOver) {
        let Ok(instance) = InstanceId::parse(&r.instance) else {
            return;
        };
        if self.handovers.get(&instance).is_none_or(|p| p.id != r.id) {
            return; // expired meanwhile
        }
        self.handovers.remove(&instance);
        let results: HashMap<String, Result<PlayerId, String>> = r.seats.into_iter().collect();
        self.drop_copy(fx, &instance, &r.url, &results);
    }

    /// Hand-overs not answered in time end as a plain disown.
    pub(crate) fn expire_handovers(&mut self, fx: &mut dyn Effects, now: Instant) {
        let expired: Vec<InstanceId> = self
            .handovers
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.expire_handover(fx, &id);
        }
    }

    fn expire_handover(&mut self, fx: &mut dyn Effects, id: &InstanceId) {
        let Some(p) = self.handovers.remove(id) else {
            return;
        };
        tracing::warn!(shard = self.id, instance = %id, owner = %p.node, "the owner did not take the players over in time; they are sent there without a reserved seat");
        self.drop_copy(fx, id, &p.url, &HashMap::new());
    }

    /// Stops the local copy of `id`: each connected player gets Transfer to
    /// `url` (its seat there if `seated` says so) and a normal close; every
    /// player of the copy is forgotten here.
    fn drop_copy(
        &mut self,
        fx: &mut dyn Effects,
        id: &InstanceId,
        url: &str,
        seated: &HashMap<String, Result<PlayerId, String>>,
    ) {
        let Some(hosted) = self.remove_instance(id) else {
            return;
        };
        let (mut handed, mut unseated) = (0u64, 0u64);
        for seat in hosted.inst.seats() {
            let Some(p) = self.world.players.get(&seat.player) else {
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
            if let Some(conn) = p.conn {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.player = None;
                }
                self.metrics.messages_out.inc();
                fx.send(conn, self.enc.transfer(url, id.as_str()));
                self.close(fx, conn, CloseReason::Normal);
            }
            self.world.remove_player(seat.player);
        }
        self.metrics.instances_disposed.inc();
        if let Some(m) = &self.shared.fleet_metrics {
            m.instances_disowned.inc();
            if handed > 0 {
                m.instances_handed_over.inc();
                m.players_handed_over.add(handed);
            }
        }
        tracing::warn!(shard = self.id, instance = %id, owner = url, players_handed = handed, players_without_seat = unseated, "local copy of an instance owned by another node stopped");
    }
}
