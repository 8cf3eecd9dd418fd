//! The agent's side of an evacuation (see `directory::evacuate`): on the
//! old owner, choosing the new one and giving it the instance atomically
//! (fenced: only while this node owns it with the epoch it holds); on the
//! new owner, rebuilding the instance and answering.

use std::time::Instant;

use redis::Commands;

use super::Agent;
use crate::directory::control::FleetMsg;
use crate::directory::evacuate::{Done, Offer, Outgoing};
use crate::directory::metrics::Op;
use crate::directory::{keys, replica, send_to_shard, ToShard};
use crate::game::{shard_for, InstanceId};

/// Gives instance `ARGV[4]` from node `ARGV[1]` (holding epoch `ARGV[5]`;
/// `0`: any) to node `ARGV[2]` with its replica `ARGV[3]` (unless empty),
/// under a new epoch (`KEYS[6]` counts them, `KEYS[5]` holds it) — only
/// while `ARGV[1]` owns it (`KEYS[1]` owner, `KEYS[2]` replica,
/// `KEYS[3]`/`KEYS[4]` the two nodes' sets). Returns the new epoch, or 0
/// when `ARGV[1]` does not own it (with that epoch).
const GIVE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[5]) ~= 0
   and tonumber(redis.call('GET', KEYS[5]) or '0') ~= tonumber(ARGV[5]) then
  return 0
end
local e = redis.call('INCR', KEYS[6])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[5], e)
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
redis.call('SREM', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[4])
return e";

impl Agent {
    /// Atomically gives `id` from `from` (holding `epoch`; 0: any) to
    /// `to` (with `replica` when not empty). `Some(Some(e))`: given, under
    /// epoch `e`; `Some(None)`: `from` does not own it; `None`: Redis failed.
    fn give(
        &mut self,
        id: &InstanceId,
        from: &str,
        epoch: u64,
        to: &str,
        replica: Vec<u8>,
    ) -> Option<Option<u64>> {
        let given: Option<u64> = self.redis(Op::Evacuate, 1, |c| {
            redis::cmd("EVAL")
                .arg(GIVE)
                .arg(6)
                .arg(keys::instance(id))
                .arg(keys::snapshot(id))
                .arg(keys::node_instances(from))
                .arg(keys::node_instances(to))
                .arg(keys::epoch(id))
                .arg(keys::EPOCHS)
                .arg(from)
                .arg(to)
                .arg(replica)
                .arg(id.as_str())
                .arg(epoch)
                .query(c)
        });
        given.map(|e| (e > 0).then_some(e))
    }

    /// Holds `id` again (a give taken back, an adoption) in the claim
    /// grace: the shard's reports may not list it yet.
    fn hold_in_grace(&mut self, id: &InstanceId, epoch: u64) {
        self.hold(id, epoch);
        if let Some(o) = self.owned.get_mut(id) {
            o.claimed_at = Some(Instant::now());
        }
    }

    /// Step 2 on the old owner.
    pub(super) fn evacuate_out(&mut self, h: Outgoing) {
        let id = match InstanceId::parse(&h.snapshot.id) {
            Ok(id) => id,
            Err(e) => return self.handover_answer_local(&h, "?", Err(e.to_string())),
        };
        match self.try_hand_over(&h, &id) {
            Ok(()) => {}
            Err(why) => {
                // Until the shard has it back in its world, a report may
                // not list it: keep the claim through the grace.
                if let Some(o) = self.owned.get_mut(&id) {
                    o.claimed_at = Some(Instant::now());
                }
                self.handover_answer_local(&h, id.as_str(), Err(why));
            }
        }
    }

    fn try_hand_over(&mut self, h: &Outgoing, id: &InstanceId) -> Result<(), String> {
        if self.conn.is_none() {
            return Err("the directory is unreachable".into());
        }
        let me = self.me().to_owned();
        let target = self
            .fleet
            .iter()
            .filter(|n| n.region == self.start.region && n.id != me && n.has_room())
            .min_by(|a, b| a.load.cmp(&b.load).then_with(|| a.id.cmp(&b.id)))
            .map(|n| n.id.clone())
            .ok_or_else(|| format!("no other node of region {} has room", self.start.region))?;
        let bytes = replica::encode(
            &self.start.game,
            &h.snapshot,
            self.start.cfg.replica_bytes_max,
        )
        .map_err(|e| format!("cannot copy the instance: {e}"))?;
        let held = self.owned.get(id).map_or(0, |o| o.epoch);
        let given = match self.give(id, &me, held, &target, bytes) {
            Some(Some(e)) => e,
            Some(None) => return Err("this node no longer owns the instance".into()),
            None => return Err("the directory is unreachable".into()),
        };
        self.owned.remove(id);
        let offer = Offer {
            id: h.id.clone(),
            instance: id.as_str().to_owned(),
            from_node: me.clone(),
            from_shard: h.shard,
        };
        let body = serde_json::to_string(&FleetMsg::Adopt(offer)).expect("an offer serialises");
        let channel = keys::node_control(&target);
        let heard: Option<i64> = self.redis(Op::Publish, 1, |c| c.publish(&channel, body));
        if heard.is_some_and(|n| n > 0) {
            tracing::info!(instance = %id, to = %target, "instance given to another node of the region");
            return Ok(());
        }
        // Nobody listening there: take it back (its replica stays valid).
        if let Some(Some(e)) = self.give(id, &target, given, &me, Vec::new()) {
            self.hold_in_grace(id, e);
        }
        Err(format!("node {target} is not listening"))
    }

    /// Tells this node's own shard how its hand-over went.
    fn handover_answer_local(
        &mut self,
        h: &Outgoing,
        instance: &str,
        result: Result<String, String>,
    ) {
        let done = Done {
            id: h.id.clone(),
            instance: instance.to_owned(),
            node: self.me().to_owned(),
            shard: h.shard,
            result,
        };
        send_to_shard(
            &self.to_shards,
            h.shard,
            ToShard::Adopted(done),
            &self.metrics,
        );
    }

    /// Step 3 on the new owner: rebuild from the replica just written, then
    /// answer; on failure give the instance back.
    pub(super) fn adopt(&mut self, offer: Offer) {
        let result = self.try_adopt(&offer);
        if let Err(why) = &result {
            tracing::warn!(instance = %offer.instance, from = %offer.from_node, why, "hand-over refused");
            if let Ok(id) = InstanceId::parse(&offer.instance) {
                let me = self.me().to_owned();
                let held = self.owned.get(&id).map_or(0, |o| o.epoch);
                self.give(&id, &me, held, &offer.from_node, Vec::new());
                self.owned.remove(&id);
            }
        }
        let done = Done {
            id: offer.id,
            instance: offer.instance,
            node: offer.from_node.clone(),
            shard: offer.from_shard,
            result,
        };
        let channel = keys::node_control(&offer.from_node);
        let body = serde_json::to_string(&FleetMsg::Adopted(done)).expect("an answer serialises");
        let _ = self.redis(Op::Publish, 1, |c| c.publish::<_, _, i64>(&channel, body));
    }

    fn try_adopt(&mut self, offer: &Offer) -> Result<String, String> {
        let id = InstanceId::parse(&offer.instance).map_err(|e| e.to_string())?;
        if self.left {
            return Err("this node is stopping".into());
        }
        let owner: Option<(Option<String>, Option<u64>)> = self.redis(Op::Evacuate, 1, |c| {
            redis::pipe()
                .get(keys::instance(&id))
                .get(keys::epoch(&id))
                .query(c)
        });
        let epoch = match owner {
            None => return Err("the directory is unreachable".into()),
            Some((Some(o), e)) if o == self.me() => e.unwrap_or(0),
            Some(_) => return Err("the instance was not given to this node".into()),
        };
        let bytes: Option<Option<Vec<u8>>> =
            self.redis(Op::Evacuate, 1, |c| c.get(keys::snapshot(&id)));
        let bytes = bytes
            .ok_or("the directory is unreachable")?
            .ok_or("no replica of the instance")?;
        let snap = replica::decode(&self.start.game, &bytes).map_err(|e| e.to_string())?;
        self.hold_in_grace(&id, epoch);
        let shard = shard_for(&id, self.start.shards);
        if !send_to_shard(
            &self.to_shards,
            shard,
            ToShard::Restore(vec![snap]),
            &self.metrics,
        ) {
            return Err("the shard's queue is full".into());
        }
        self.metrics.instances_adopted.inc();
        tracing::info!(instance = %id, from = %offer.from_node, shard, "instance adopted from a node of the region");
        Ok(self.start.public_url.clone())
    }
}
