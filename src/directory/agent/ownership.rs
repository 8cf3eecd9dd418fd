//! The agent's ownership work: claims (and look-ups that claim nothing),
//! their re-validation after a reconnect, take-overs of dead nodes'
//! instances, releases, and sending the players of a lost instance to its
//! owner. Every write here goes through a script of `fence.rs`.

use std::time::Instant;

use redis::Commands;

use super::{Agent, Owned};
use crate::directory::control::FleetMsg;
use crate::directory::fence::{self, Verdict};
use crate::directory::handover::{HandOver, HANDOVER_TIMEOUT};
use crate::directory::metrics::Op;
use crate::directory::{keys, replica, route, send_to_shard, Claim, ToShard};
use crate::game::{shard_for, InstanceId};

/// Claims compared with the directory per heartbeat after a reconnect (the
/// rest wait for the next beats). Each costs two keys of one MGET.
const REVALIDATE_PER_BEAT: usize = 8192;
/// Instances per MGET while re-validating (two keys each).
const REVALIDATE_CHUNK: usize = 512;

const UNAVAILABLE: &str = "the directory is unavailable; retry shortly";

/// Who owns an instance, as the agent found out.
pub(super) enum Placement {
    Mine,
    Owner {
        node: String,
        url: String,
    },
    /// Nobody, and this node was not to claim it.
    Vacant,
    Unavailable(String),
}

impl Agent {
    /// The answer to a shard's [`crate::directory::ToAgent::Place`].
    pub(super) fn place(&mut self, id: InstanceId, create_here: bool) -> Claim {
        match self.owner_of(id.clone(), create_here) {
            Placement::Mine => Claim::Mine,
            Placement::Owner { node, url } => Claim::Elsewhere { node, url },
            // This node creates nothing now (draining, stopping): the player
            // goes to the node of its region that a route would name.
            Placement::Vacant => {
                let others: Vec<_> = self
                    .fleet
                    .iter()
                    .filter(|n| n.id != self.start.node_id)
                    .cloned()
                    .collect();
                match route::least_loaded(&others, &self.start.region) {
                    Some(n) => Claim::Elsewhere {
                        node: n.id.clone(),
                        url: n.url.clone(),
                    },
                    None => Claim::Unavailable(format!(
                        "node {} takes no new instance (draining) and no other node of region {} has room; retry shortly",
                        self.me(),
                        self.start.region
                    )),
                }
            }
            Placement::Unavailable(why) => Claim::Unavailable(why),
        }
    }

    /// Who owns `id`; claims it for this node when nobody does and
    /// `create_here` (or the game already runs here).
    pub(super) fn owner_of(&mut self, id: InstanceId, create_here: bool) -> Placement {
        if self.owned.get(&id).is_some_and(|o| o.verified) {
            return Placement::Mine;
        }
        if self.conn.is_none() {
            self.metrics.refused.inc();
            return Placement::Unavailable(UNAVAILABLE.into());
        }
        // A game running here, or a claim we hold, is not a creation.
        let claim = create_here || self.is_local(&id) || self.owned.contains_key(&id);
        let me = self.me().to_owned();
        let record: Option<Option<(String, u64)>> = if claim {
            self.redis(Op::Claim, 1, |c| {
                redis::cmd("EVAL")
                    .arg(fence::CLAIM)
                    .arg(4)
                    .arg(keys::instance(&id))
                    .arg(keys::epoch(&id))
                    .arg(keys::node_instances(&me))
                    .arg(keys::EPOCHS)
                    .arg(&me)
                    .arg(id.as_str())
                    .query::<(String, u64)>(c)
            })
            .map(Some)
        } else {
            self.redis(Op::Claim, 1, |c| {
                redis::cmd("MGET")
                    .arg(keys::instance(&id))
                    .arg(keys::epoch(&id))
                    .query::<(Option<String>, Option<u64>)>(c)
            })
            .map(|(owner, epoch)| owner.map(|o| (o, epoch.unwrap_or(0))))
        };
        let Some(record) = record else {
            self.metrics.refused.inc();
            return Placement::Unavailable(UNAVAILABLE.into());
        };
        match record {
            None => Placement::Vacant,
            Some((owner, epoch)) if owner == me => {
                self.hold(&id, epoch);
                Placement::Mine
            }
            Some((owner, _)) => {
                if self.is_local(&id) || self.owned.contains_key(&id) {
                    self.lost(&id, &owner);
                }
                match self.node_url(&owner) {
                    Some(url) => Placement::Owner { node: owner, url },
                    None => Placement::Unavailable(format!(
                        "instance {id} belongs to node {owner}, which is not answering; \
                         another node of its region takes it over shortly: retry"
                    )),
                }
            }
        }
    }

    /// The directory names us owner of `id` with `epoch`.
    pub(super) fn hold(&mut self, id: &InstanceId, epoch: u64) {
        let claimed_at = (!self.is_local(id)).then(Instant::now);
        self.contested.remove(id);
        let o = self.owned.entry(id.clone()).or_insert(Owned {
            epoch,
            claimed_at,
            verified: true,
            replica_bytes: 0,
        });
        if o.epoch != epoch {
            tracing::info!(instance = %id, old = o.epoch, new = epoch, "claim held under another epoch");
        }
        o.epoch = epoch;
        o.verified = true;
    }

    /// `id`, which this node claimed or runs, belongs to `owner`: the
    /// shard running it hands its players over (or, while `owner` is not
    /// live, it stays contested and is looked at again each heartbeat).
    pub(super) fn lost(&mut self, id: &InstanceId, owner: &str) {
        if self.owned.remove(id).is_some() {
            self.metrics.claims_lost.inc();
            tracing::warn!(instance = %id, owner, "this node's claim is lost: the directory names another owner");
        }
        self.replicas.forget(id);
        if !self.is_local(id) {
            self.contested.remove(id);
            return;
        }
        if self.handing.contains_key(id) {
            return;
        }
        match self.node_url(owner) {
            Some(url) => {
                self.contested.remove(id);
                self.handing.insert(id.clone(), Instant::now());
                self.metrics.claim_conflicts.inc();
                let ev = ToShard::HandOver {
                    instance: id.clone(),
                    node: owner.to_owned(),
                    url,
                };
                let shard = shard_for(id, self.start.shards);
                send_to_shard(&self.to_shards, shard, ev, &self.metrics);
            }
            None => {
                if self
                    .contested
                    .insert(id.clone(), owner.to_owned())
                    .is_none()
                {
                    tracing::warn!(instance = %id, owner, "a local instance belongs to a node that is not live; looked at again each heartbeat");
                }
            }
        }
    }

    /// What the directory says of our claim on `id` now (after a fenced
    /// write was refused, or a reconnect).
    pub(super) fn judge(&mut self, id: &InstanceId, verdict: Verdict) {
        match verdict {
            Verdict::Held => {
                if let Some(o) = self.owned.get_mut(id) {
                    o.verified = true;
                }
            }
            Verdict::Renewed(epoch) => self.hold(id, epoch),
            Verdict::Vacant if self.is_local(id) => {
                // Our claim was lost and nobody took the game since: claim
                // it again (a new epoch).
                let _ = self.owner_of(id.clone(), true);
            }
            Verdict::Vacant => {
                // A claim nothing here uses: forget it.
                self.owned.remove(id);
                self.replicas.forget(id);
            }
            Verdict::Lost(owner) => self.lost(id, &owner),
        }
    }

    /// Reads the record of `id` and judges our claim by it.
    pub(super) fn check_owner(&mut self, id: &InstanceId) {
        let Some(epoch) = self.owned.get(id).map(|o| o.epoch) else {
            return;
        };
        let record: Option<(Option<String>, Option<u64>)> = self.redis(Op::Revalidate, 1, |c| {
            redis::cmd("MGET")
                .arg(keys::instance(id))
                .arg(keys::epoch(id))
                .query(c)
        });
        if let Some((owner, theirs)) = record {
            let v = fence::verdict(self.me(), epoch, owner.as_deref(), theirs);
            self.judge(id, v);
        }
    }

    /// After a (re)connect: compares unverified claims with the directory,
    /// [`REVALIDATE_PER_BEAT`] at most per heartbeat.
    pub(super) fn revalidate(&mut self) {
        let ids: Vec<InstanceId> = self
            .owned
            .iter()
            .filter(|(_, o)| !o.verified)
            .map(|(id, _)| id.clone())
            .take(REVALIDATE_PER_BEAT)
            .collect();
        for chunk in ids.chunks(REVALIDATE_CHUNK) {
            let names: Vec<String> = chunk
                .iter()
                .flat_map(|id| [keys::instance(id), keys::epoch(id)])
                .collect();
            let Some(values) = self.redis(Op::Revalidate, 1, |c| {
                redis::cmd("MGET")
                    .arg(&names)
                    .query::<Vec<Option<String>>>(c)
            }) else {
                return;
            };
            for (id, pair) in chunk.iter().zip(values.chunks(2)) {
                let Some(epoch) = self.owned.get(id).map(|o| o.epoch) else {
                    continue;
                };
                self.metrics.claims_revalidated.inc();
                let owner = pair.first().cloned().flatten();
                let theirs = pair.get(1).cloned().flatten().and_then(|e| e.parse().ok());
                let v = fence::verdict(self.me(), epoch, owner.as_deref(), theirs);
                if v != Verdict::Held {
                    tracing::info!(instance = %id, verdict = ?v, "claim re-validated after a reconnect");
                }
                self.judge(id, v);
            }
        }
    }

    /// Local instances last seen owned by a node that was not live.
    pub(super) fn recheck_contested(&mut self) {
        let ids: Vec<InstanceId> = self.contested.keys().cloned().collect();
        for id in ids {
            if !self.is_local(&id) {
                self.contested.remove(&id);
                continue;
            }
            // Claims it if vacant; else hands it over (or keeps it contested).
            if let Placement::Unavailable(_) = self.owner_of(id, true) {
                return;
            }
        }
    }

    /// Claims the instances of dead node `dead` one by one (atomically:
    /// every live node of the region races, each instance gets one owner
    /// and a new epoch) and restores each from its replica on the shard
    /// that owns its id.
    pub(super) fn take_over(&mut self, dead: &str) {
        let set = keys::node_instances(dead);
        let Some(ids) = self.redis(Op::TakeOver, 1, |c| c.smembers::<_, Vec<String>>(&set)) else {
            return;
        };
        for raw in ids {
            let Ok(id) = InstanceId::parse(&raw) else {
                let _ = self.redis(Op::TakeOver, 1, |c| c.srem::<_, _, ()>(&set, &raw));
                continue;
            };
            let me = self.me().to_owned();
            let epoch: Option<u64> = self.redis(Op::TakeOver, 1, |c| {
                redis::cmd("EVAL")
                    .arg(fence::TAKE_OVER)
                    .arg(5)
                    .arg(keys::instance(&id))
                    .arg(keys::epoch(&id))
                    .arg(&set)
                    .arg(keys::node_instances(&me))
                    .arg(keys::EPOCHS)
                    .arg(dead)
                    .arg(&me)
                    .arg(id.as_str())
                    .query(c)
            });
            let Some(epoch) = epoch.filter(|e| *e > 0) else {
                continue;
            };
            self.hold(&id, epoch);
            if self.is_local(&id) {
                // A copy runs here already (kept through a split): it is
                // the owner's now, with its players; the dead node's
                // replica would replace it.
                tracing::warn!(instance = %id, from = dead, "took over an instance this node already runs; the local copy goes on");
                continue;
            }
            self.restore_replica(&id, dead);
        }
        let left: Option<usize> = self.redis(Op::TakeOver, 1, |c| c.scard(&set));
        if left == Some(0) {
            let _ = self.redis(Op::TakeOver, 2, |c| {
                redis::pipe()
                    .hdel(keys::NODES, dead)
                    .ignore()
                    .del(&set)
                    .ignore()
                    .query::<()>(c)
            });
            tracing::info!(
                node = dead,
                "dead node's instances all moved; removed from the registry"
            );
        }
    }

    fn restore_replica(&mut self, id: &InstanceId, dead: &str) {
        let bytes: Option<Option<Vec<u8>>> =
            self.redis(Op::TakeOver, 1, |c| c.get(keys::snapshot(id)));
        let decoded = bytes
            .flatten()
            .ok_or_else(|| "no replica".to_owned())
            .and_then(|b| replica::decode(&self.start.game, &b).map_err(|e| e.to_string()));
        match decoded {
            Ok(snap) => {
                let shard = shard_for(id, self.start.shards);
                let seats = snap.seats.len();
                if send_to_shard(
                    &self.to_shards,
                    shard,
                    ToShard::Restore(vec![snap]),
                    &self.metrics,
                ) {
                    self.metrics.instances_taken_over.inc();
                    tracing::info!(instance = %id, from = dead, shard, seats, "took over an instance of a dead node");
                }
            }
            Err(why) => {
                self.metrics.instances_lost.inc();
                tracing::error!(instance = %id, from = dead, why, "instance of a dead node lost: its replica is unusable");
                self.release(id);
            }
        }
    }

    /// Claims that never became a game here, and games disposed here.
    pub(super) fn release_stale_claims(&mut self) {
        let grace = self.claim_grace();
        let all_reported = self.shards.iter().all(|s| s.reported);
        let stale: Vec<InstanceId> = self
            .owned
            .iter()
            .filter(|(id, o)| match o.claimed_at {
                Some(t) => t.elapsed() > grace && !self.is_local(id),
                None => all_reported && !self.is_local(id),
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.release(&id);
        }
    }

    fn release(&mut self, id: &InstanceId) {
        let Some(epoch) = self.owned.get(id).map(|o| o.epoch) else {
            return;
        };
        let me = self.me().to_owned();
        let done = self.redis(Op::Release, 1, |c| {
            redis::cmd("EVAL")
                .arg(fence::RELEASE)
                .arg(4)
                .arg(keys::instance(id))
                .arg(keys::epoch(id))
                .arg(keys::node_instances(&me))
                .arg(keys::snapshot(id))
                .arg(&me)
                .arg(epoch)
                .arg(id.as_str())
                .query::<i64>(c)
        });
        if done.is_some() {
            self.owned.remove(id);
            self.replicas.forget(id);
            tracing::debug!(instance = %id, "instance released");
        }
    }

    /// Publishes a shard's hand-over to the owner. The answer comes back on
    /// this node's own channel, so it is sent only once this node's fleet
    /// channel listens on the server that is the primary now (after a
    /// failover it reconnects within a second); until then, and while the
    /// owner does not hear it, it is tried again each heartbeat within
    /// [`HANDOVER_TIMEOUT`].
    pub(super) fn send_handover(&mut self, h: HandOver, since: Instant) {
        let mine = keys::node_control(self.me());
        let listening: Option<Vec<(String, i64)>> = self.redis(Op::Publish, 1, |c| {
            redis::cmd("PUBSUB").arg("NUMSUB").arg(&mine).query(c)
        });
        if listening.is_some_and(|l| l.first().is_some_and(|(_, n)| *n > 0)) {
            let to = h.to_node.clone();
            if self
                .publish(&to, &FleetMsg::HandOver(h.clone()))
                .is_some_and(|n| n > 0)
            {
                return;
            }
        }
        if since.elapsed() < HANDOVER_TIMEOUT {
            self.handovers_unsent.push((h, since));
        }
    }

    pub(super) fn resend_handovers(&mut self) {
        for (h, since) in std::mem::take(&mut self.handovers_unsent) {
            self.send_handover(h, since);
        }
    }
}
