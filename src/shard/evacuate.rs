//! The core's side of an evacuation (protocol: `directory::evacuate`): the
//! node stops taking players and hands each instance, live, to another
//! node of its region — at most `EVACUATIONS_PER_SHARD_MAX` at a time —
//! then sends the instance's players after it.

use std::collections::HashMap;
use std::time::Instant;

use super::effects::Effects;
use super::world::Hosted;
use super::Core;
use crate::directory::evacuate::{
    Done, Offer, Outgoing, EVACUATIONS_PER_SHARD_MAX, EVACUATION_RETRY, EVACUATION_TIMEOUT,
};
use crate::directory::{Claim, ToAgent};
use crate::game::InstanceId;
use crate::protocol::close::CloseReason;

/// One instance out of the world, waiting for its new owner.
struct InFlight {
    id: String,
    hosted: Hosted,
    deadline: Instant,
    /// Settling after the timeout is under way (a directory look-up).
    settling: bool,
}

/// A shard's evacuation.
#[derive(Default)]
pub struct Evacuations {
    /// `shardline fleet evacuate` (or the autoscaler) asked for it.
    evacuating: bool,
    in_flight: HashMap<InstanceId, InFlight>,
    /// Instances whose hand-over failed, and when to try again.
    retry_at: HashMap<InstanceId, Instant>,
    /// Players told to go elsewhere (Transfer sent), for the log.
    players_sent: u64,
    logged_done: bool,
}

impl Evacuations {
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

impl Core {
    /// The node is to be emptied: no new players; hand-overs start at the
    /// next sweep.
    pub(crate) fn evacuate(&mut self) {
        self.draining = true;
        if !self.evacuations.evacuating {
            self.evacuations.evacuating = true;
            tracing::info!(
                shard = self.id,
                instances = self.world.instances.len(),
                "evacuating: each instance moves live to another node of the region"
            );
        }
    }

    /// Every sweep: settles hand-overs not answered in time, starts new
    /// ones (bounded), and once the shard is empty closes the players who
    /// are in no instance.
    pub(crate) fn evacuation_step(&mut self, fx: &mut dyn Effects, now: Instant) {
        for (id, f) in self.evacuations.in_flight.iter_mut() {
            if now >= f.deadline && !f.settling {
                f.settling = true;
                fx.owner_of(id.clone(), f.id.clone());
            }
        }
        if !self.evacuations.evacuating {
            return;
        }
        while self.evacuations.in_flight.len() < EVACUATIONS_PER_SHARD_MAX {
            let retry_at = &self.evacuations.retry_at;
            let next = self
                .world
                .instances
                .keys()
                .filter(|id| retry_at.get(*id).is_none_or(|t| now >= *t))
                .min()
                .cloned();
            let Some(id) = next else {
                break;
            };
            self.start_evacuation(fx, now, id);
        }
        self.finish_evacuation(fx);
    }

    /// Step 1: out of the world (ticked no more), copied, sent to the agent.
    fn start_evacuation(&mut self, fx: &mut dyn Effects, now: Instant, id: InstanceId) {
        let Some(mut hosted) = self.remove_instance(&id) else {
            return;
        };
        let mut snapshot = match hosted.inst.save() {
            Ok(s) => s,
            Err(_) => {
                // The game failed saving: it ends here like any failure.
                self.rehost(hosted, now);
                self.game_failed(fx, &id);
                return;
            }
        };
        let players = &self.world.players;
        snapshot.fill_tokens(|pid| players.get(&pid).map(|p| p.token.clone()));
        hosted.empty_since = None;
        let hid = format!("{:016x}", self.rng.next_u64());
        self.evacuations.in_flight.insert(
            id.clone(),
            InFlight {
                id: hid.clone(),
                hosted,
                deadline: now + EVACUATION_TIMEOUT,
                settling: false,
            },
        );
        let sent = fx.directory(ToAgent::Evacuating(Outgoing {
            id: hid,
            shard: self.id,
            snapshot,
        }));
        if !sent {
            self.evacuation_failed(now, &id, "the directory agent is overloaded");
        }
    }

    /// Step 4: the new owner answered.
    pub(crate) fn on_evacuation_done(&mut self, fx: &mut dyn Effects, now: Instant, done: Done) {
        let Ok(id) = InstanceId::parse(&done.instance) else {
            return;
        };
        let ours = self
            .evacuations
            .in_flight
            .get(&id)
            .is_some_and(|f| f.id == done.id);
        if !ours {
            return; // settled meanwhile
        }
        match done.result {
            Ok(url) => self.send_players_to(fx, &id, &url),
            Err(why) => self.evacuation_failed(now, &id, &why),
        }
    }

    /// On the new owner: the agent rebuilds it (the offer came on this
    /// shard's queue because the instance will live here).
    pub(crate) fn on_evacuation_offer(&mut self, fx: &mut dyn Effects, offer: Offer) {
        let instance = offer.instance.clone();
        if !fx.directory(ToAgent::Adopt(offer)) {
            tracing::warn!(%instance, "hand-over offer dropped: the directory agent is overloaded (the sender settles it)");
        }
    }

    /// The directory's answer for a hand-over past its deadline.
    pub fn settle_evacuation(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        id: &InstanceId,
        hid: &str,
        claim: Claim,
    ) {
        let still = self
            .evacuations
            .in_flight
            .get(id)
            .is_some_and(|f| f.id == hid);
        if !still {
            return;
        }
        match claim {
            Claim::Mine => self.evacuation_failed(
                now,
                id,
                "no answer from the new owner; the directory says it is still ours",
            ),
            Claim::Elsewhere { url, .. } => self.send_players_to(fx, id, &url),
            Claim::Unavailable(_) => {
                // Ask again at a later sweep.
                if let Some(f) = self.evacuations.in_flight.get_mut(id) {
                    f.settling = false;
                    f.deadline = now + EVACUATION_RETRY;
                }
            }
        }
    }

    /// The instance lives elsewhere now: its players go there.
    fn send_players_to(&mut self, fx: &mut dyn Effects, id: &InstanceId, url: &str) {
        let Some(flight) = self.evacuations.in_flight.remove(id) else {
            return;
        };
        let mut sent = 0u64;
        for seat in flight.hosted.inst.seats() {
            let Some(p) = self.world.players.get(&seat.player) else {
                continue;
            };
            if p.instance.as_ref() != Some(id) {
                continue;
            }
            if let Some(conn) = p.conn {
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
            m.instances_evacuated.inc();
            m.players_evacuated.add(sent);
        }
        self.evacuations.players_sent += sent;
        tracing::info!(shard = self.id, instance = %id, to = url, players_sent = sent, "instance handed over live");
    }

    /// The instance goes back into the world and ticks on; tried again
    /// after `EVACUATION_RETRY`.
    fn evacuation_failed(&mut self, now: Instant, id: &InstanceId, why: &str) {
        let Some(flight) = self.evacuations.in_flight.remove(id) else {
            return;
        };
        self.evacuations
            .retry_at
            .insert(id.clone(), now + EVACUATION_RETRY);
        self.rehost(flight.hosted, now);
        if let Some(m) = &self.shared.fleet_metrics {
            m.evacuations_failed.inc();
        }
        tracing::warn!(shard = self.id, instance = %id, why, "hand-over failed; the instance runs on here and is tried again");
    }

    /// Puts an instance taken out of the world back, in a slot again.
    fn rehost(&mut self, mut hosted: Hosted, now: Instant) {
        let id = hosted.inst.id().clone();
        let (slot, next_due) = self.slots.assign(&id, now);
        (0..hosted.inst.players()).for_each(|_| self.slots.player_joined(slot));
        hosted.slot = slot;
        hosted.next_due = next_due;
        self.world.instances.insert(id, hosted);
    }

    /// Once no instance is left here: players in no instance (between a
    /// Leave and a Join) have no game to move and are closed with 1001, so
    /// their client reconnects through the router.
    fn finish_evacuation(&mut self, fx: &mut dyn Effects) {
        if !self.world.instances.is_empty() || !self.evacuations.in_flight.is_empty() {
            return;
        }
        let idle: Vec<_> = self
            .world
            .players
            .values()
            .filter(|p| {
                p.instance
                    .as_ref()
                    .is_none_or(|i| !self.world.instances.contains_key(i))
            })
            .map(|p| (p.id, p.conn))
            .collect();
        for (pid, conn) in idle {
            if let Some(conn) = conn {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.player = None;
                }
                self.close(fx, conn, CloseReason::GoingAway);
            }
            self.world.remove_player(pid);
        }
        if !self.evacuations.logged_done {
            self.evacuations.logged_done = true;
            tracing::info!(
                shard = self.id,
                players_sent = self.evacuations.players_sent,
                "evacuated: no instance left on this shard"
            );
        }
    }
}
