//! Evacuating a node without kicking anyone (the autoscaler's scale-down,
//! `shardline fleet evacuate`): the node stops taking players and moves
//! each of its instances, live, to another node of its region.
//!
//! One instance's hand-over, hop by hop (each a bounded queue or one
//! pub/sub message):
//! 1. Node A's shard, between two ticks, takes the instance out of its world
//!    (it is ticked no more, so nothing changes after this point) and copies
//!    it, seats and resume tokens included. Inputs that arrive meanwhile are
//!    not applied, so never acknowledged: no acknowledged input is lost.
//! 2. A's agent picks the node of the region with room and the fewest
//!    players (B), stores the copy as the instance's replica and gives the
//!    instance to B in one atomic step (fenced: only while A owns it), then
//!    publishes [`HandoverOffer`] to B.
//! 3. B's agent reads the replica, rebuilds the instance on its shard (the
//!    seats wait for their players, as after a take-over) and answers
//!    [`HandoverDone`] with its URL; on any failure it gives the instance
//!    back to A.
//! 4. A's shard sends each connected player of the instance `Transfer{url,
//!    instance}` and closes (1000); players resume on B with their tokens.
//!    On failure the instance goes back into A's world and ticks on.
//!
//! A hand-over not answered within [`HANDOVER_TIMEOUT`] is settled by asking
//! the directory who owns the instance: A again → it ticks on here; B → its
//! players are sent there.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Claim, ToAgent};
use crate::game::InstanceId;
use crate::net::close::CloseReason;
use crate::shard::world::Hosted;
use crate::shard::Shard;
use crate::snapshot::InstanceSnapshot;

/// Hand-overs one shard runs at once; the others wait their turn. Each
/// holds its instance (as in the world) and a copy of it until answered.
pub const HANDOVERS_PER_SHARD_MAX: usize = 8;
/// A hand-over not answered within this is settled through the directory.
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before an instance whose hand-over failed is tried again.
pub const HANDOVER_RETRY: Duration = Duration::from_secs(1);

/// To the node chosen to take an instance over (step 2 → 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverOffer {
    /// Random, names this hand-over in logs and answers.
    pub id: String,
    pub instance: String,
    pub from_node: String,
    pub from_shard: usize,
}

/// The answer to an offer, to node `node`, shard `shard` (step 3 → 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverDone {
    pub id: String,
    pub instance: String,
    pub node: String,
    pub shard: usize,
    /// The new owner's WebSocket URL, or why not.
    pub result: Result<String, String>,
}

/// What a shard asks its agent at step 2.
#[derive(Debug)]
pub struct HandOver {
    pub id: String,
    pub shard: usize,
    pub snapshot: InstanceSnapshot,
}

/// One instance out of the world, waiting for its new owner.
struct InFlight {
    id: String,
    hosted: Hosted,
    deadline: Instant,
    /// Settling after the timeout is under way (a directory look-up).
    settling: bool,
}

/// A shard's evacuation (in `Shard::handovers`).
#[derive(Default)]
pub struct Handovers {
    /// `shardline fleet evacuate` (or the autoscaler) asked for it.
    evacuating: bool,
    in_flight: HashMap<InstanceId, InFlight>,
    /// Instances whose hand-over failed, and when to try again.
    retry_at: HashMap<InstanceId, Instant>,
    /// Players told to go elsewhere (Transfer sent), for the log.
    players_sent: u64,
    logged_done: bool,
}

impl Handovers {
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

fn new_id() -> String {
    let mut raw = [0u8; 8];
    // The id only names the hand-over; a clock fallback is as good.
    if getrandom::fill(&mut raw).is_err() {
        raw = (Instant::now().elapsed().as_nanos() as u64).to_le_bytes();
    }
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

impl Shard {
    /// The node is to be emptied: no new players; hand-overs start at the
    /// next step.
    pub(crate) fn evacuate(&self) {
        self.draining.set(true);
        let mut h = self.handovers.borrow_mut();
        if !h.evacuating {
            h.evacuating = true;
            tracing::info!(
                shard = self.id,
                instances = self.world.borrow().instances.len(),
                "evacuating: each instance moves live to another node of the region"
            );
        }
    }

    /// Every directory poll: starts hand-overs (bounded), settles those
    /// not answered in time, and once the shard is empty sends off the
    /// players who are in no instance.
    pub(crate) fn handover_step(self: &Rc<Self>, now: Instant) {
        self.settle_late_handovers(now);
        if !self.handovers.borrow().evacuating {
            return;
        }
        loop {
            let next = {
                let h = self.handovers.borrow();
                if h.in_flight.len() >= HANDOVERS_PER_SHARD_MAX {
                    return;
                }
                let w = self.world.borrow();
                let mut ids: Vec<&InstanceId> = w
                    .instances
                    .keys()
                    .filter(|id| h.retry_at.get(*id).is_none_or(|t| now >= *t))
                    .collect();
                ids.sort();
                ids.first().map(|id| (*id).clone())
            };
            let Some(id) = next else {
                break;
            };
            self.start_handover(id, now);
        }
        self.finish_evacuation();
    }

    /// Step 1: out of the world, copied, sent to the agent.
    fn start_handover(&self, id: InstanceId, now: Instant) {
        let Some(dir) = self.node.directory.clone() else {
            return;
        };
        let mut w = self.world.borrow_mut();
        let Some(hosted) = w.instances.remove(&id) else {
            return;
        };
        let mut snapshot = hosted.inst.save();
        snapshot.fill_tokens(|pid| w.players.get(&pid).map(|p| p.token.clone()));
        drop(w);
        let hid = new_id();
        self.handovers.borrow_mut().in_flight.insert(
            id.clone(),
            InFlight {
                id: hid.clone(),
                hosted,
                deadline: now + HANDOVER_TIMEOUT,
                settling: false,
            },
        );
        let sent = dir.tell(ToAgent::HandOver(HandOver {
            id: hid,
            shard: self.id,
            snapshot,
        }));
        if !sent {
            self.handover_failed(&id, "the directory agent is overloaded");
        }
    }

    /// Step 4: the new owner answered.
    pub(crate) fn on_handover_done(&self, done: HandoverDone) {
        let Ok(id) = InstanceId::parse(&done.instance) else {
            return;
        };
        let matches = self
            .handovers
            .borrow()
            .in_flight
            .get(&id)
            .is_some_and(|f| f.id == done.id);
        if !matches {
            return; // settled meanwhile
        }
        match done.result {
            Ok(url) => self.send_players_to(&id, &url),
            Err(why) => self.handover_failed(&id, &why),
        }
    }

    /// The instance lives elsewhere now: its players go there.
    fn send_players_to(&self, id: &InstanceId, url: &str) {
        let Some(flight) = self.handovers.borrow_mut().in_flight.remove(id) else {
            return;
        };
        let mut w = self.world.borrow_mut();
        let mut sent = 0u64;
        for seat in flight.hosted.inst.seats() {
            let Some(p) = w.players.get(&seat.player) else {
                continue;
            };
            if p.instance.as_ref() != Some(id) {
                continue;
            }
            if let Some(conn) = p.conn.clone() {
                conn.set_player(None);
                let mut enc = self.enc.borrow_mut();
                self.send(&conn, enc.transfer(url, id.as_str()));
                drop(enc);
                conn.request_close(CloseReason::Normal);
                sent += 1;
            }
            w.remove_player(seat.player);
        }
        drop(w);
        self.metrics.instances_disposed.inc();
        if let Some(dir) = &self.node.directory {
            dir.metrics.instances_handed_over.inc();
            dir.metrics.players_handed_over.add(sent);
        }
        self.handovers.borrow_mut().players_sent += sent;
        tracing::info!(shard = self.id, instance = %id, to = url, players_sent = sent, "instance handed over live");
    }

    /// The instance goes back into the world and ticks on; tried again
    /// after [`HANDOVER_RETRY`].
    fn handover_failed(&self, id: &InstanceId, why: &str) {
        let mut h = self.handovers.borrow_mut();
        let Some(flight) = h.in_flight.remove(id) else {
            return;
        };
        h.retry_at
            .insert(id.clone(), Instant::now() + HANDOVER_RETRY);
        drop(h);
        self.world
            .borrow_mut()
            .instances
            .insert(id.clone(), flight.hosted);
        if let Some(dir) = &self.node.directory {
            dir.metrics.handovers_failed.inc();
        }
        tracing::warn!(shard = self.id, instance = %id, why, "hand-over failed; the instance runs on here and is tried again");
    }

    /// Hand-overs past their deadline: who owns the instance now?
    fn settle_late_handovers(self: &Rc<Self>, now: Instant) {
        let late: Vec<(InstanceId, String)> = self
            .handovers
            .borrow_mut()
            .in_flight
            .iter_mut()
            .filter(|(_, f)| now >= f.deadline && !f.settling)
            .map(|(id, f)| {
                f.settling = true;
                (id.clone(), f.id.clone())
            })
            .collect();
        for (id, hid) in late {
            let Some(dir) = self.node.directory.clone() else {
                return;
            };
            let shard = self.clone();
            glommio::spawn_local_into(
                async move {
                    let claim = dir.claim(id.clone()).await;
                    shard.settle(&id, &hid, claim);
                },
                self.queues.background,
            )
            .expect("background queue")
            .detach();
        }
    }

    fn settle(&self, id: &InstanceId, hid: &str, claim: Claim) {
        let still = self
            .handovers
            .borrow()
            .in_flight
            .get(id)
            .is_some_and(|f| f.id == hid);
        if !still {
            return;
        }
        match claim {
            Claim::Mine => self.handover_failed(
                id,
                "no answer from the new owner; the directory says it is still ours",
            ),
            Claim::Elsewhere { url, .. } => self.send_players_to(id, &url),
            Claim::Unavailable(_) => {
                // Ask again at the next step.
                if let Some(f) = self.handovers.borrow_mut().in_flight.get_mut(id) {
                    f.settling = false;
                    f.deadline = Instant::now() + HANDOVER_RETRY;
                }
            }
        }
    }

    /// Once no instance is left here: players in no instance (between a
    /// Leave and a Join) have no game to move and are closed with 1001, so
    /// their client reconnects through the router.
    fn finish_evacuation(&self) {
        let busy = !self.world.borrow().instances.is_empty()
            || !self.handovers.borrow().in_flight.is_empty();
        if busy {
            return;
        }
        let mut w = self.world.borrow_mut();
        let idle: Vec<_> = w
            .players
            .values()
            .filter(|p| {
                p.instance.is_none()
                    || !w
                        .instances
                        .contains_key(p.instance.as_ref().expect("checked"))
            })
            .map(|p| (p.id, p.conn.clone()))
            .collect();
        for (pid, conn) in idle {
            if let Some(conn) = conn {
                conn.set_player(None);
                conn.request_close(CloseReason::GoingAway);
            }
            w.remove_player(pid);
        }
        drop(w);
        let mut h = self.handovers.borrow_mut();
        if !h.logged_done {
            h.logged_done = true;
            tracing::info!(
                shard = self.id,
                players_sent = h.players_sent,
                "evacuated: no instance left on this shard"
            );
        }
    }

    /// Step 3 on the new owner: the agent rebuilds it (the offer came on
    /// this shard's queue because the instance will live here).
    pub(crate) fn on_handover_offer(&self, offer: HandoverOffer) {
        if let Some(dir) = &self.node.directory {
            if !dir.tell(ToAgent::Adopt(offer.clone())) {
                tracing::warn!(instance = %offer.instance, "hand-over offer dropped: the directory agent is overloaded (the sender settles it)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::control::FleetMsg;

    #[test]
    fn hand_over_messages_round_trip_as_json() {
        let msgs = [
            FleetMsg::Evacuate {
                node: "eu-2".into(),
            },
            FleetMsg::Adopt(HandoverOffer {
                id: "h1".into(),
                instance: "arena-1".into(),
                from_node: "eu-2".into(),
                from_shard: 1,
            }),
            FleetMsg::Adopted(HandoverDone {
                id: "h1".into(),
                instance: "arena-1".into(),
                node: "eu-2".into(),
                shard: 1,
                result: Ok("ws://127.0.0.1:9001".into()),
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
        let doc = r#"{"kind":"evacuate","node":"eu-a"}"#;
        assert_eq!(
            serde_json::from_str::<FleetMsg>(doc).unwrap(),
            FleetMsg::Evacuate {
                node: "eu-a".into()
            }
        );
        assert_ne!(new_id(), new_id());
    }
}
