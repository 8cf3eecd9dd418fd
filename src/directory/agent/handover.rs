//! The agent's side of a live hand-over (see `directory::handover`): on the
//! old owner, choosing the new one and giving it the instance atomically;
//! on the new owner, rebuilding the instance and answering.

use std::time::Instant;

use redis::Commands;

use super::Agent;
use crate::directory::control::FleetMsg;
use crate::directory::handover::{HandOver, HandoverDone, HandoverOffer};
use crate::directory::{keys, replica, send_to_shard, ToShard};
use crate::game::{shard_for, InstanceId};

/// Gives instance `ARGV[4]` from node `ARGV[1]` to node `ARGV[2]` with its
/// replica `ARGV[3]`, only while `ARGV[1]` owns it (`KEYS[1]` owner,
/// `KEYS[2]` replica, `KEYS[3]`/`KEYS[4]` the two nodes' sets). 1: given.
const GIVE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
redis.call('SREM', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[4])
return 1";

impl Agent {
    /// Atomically gives `id` from `from` to `to` (with `replica` when not
    /// empty). `Some(true)`: given; `Some(false)`: `from` does not own it;
    /// `None`: Redis failed.
    fn give(&mut self, id: &InstanceId, from: &str, to: &str, replica: Vec<u8>) -> Option<bool> {
        let given: Option<i64> = self.redis("hand over", |c| {
            redis::cmd("EVAL")
                .arg(GIVE)
                .arg(4)
                .arg(keys::instance(id))
                .arg(keys::snapshot(id))
                .arg(keys::node_instances(from))
                .arg(keys::node_instances(to))
                .arg(from)
                .arg(to)
                .arg(replica)
                .arg(id.as_str())
                .query(c)
        });
        given.map(|n| n == 1)
    }

    /// Step 2 on the old owner.
    pub(super) fn hand_over(&mut self, h: HandOver) {
        let id = match InstanceId::parse(&h.snapshot.id) {
            Ok(id) => id,
            Err(e) => return self.handover_answer_local(&h, "?", Err(e.to_string())),
        };
        match self.try_hand_over(&h, &id) {
            Ok(()) => {}
            Err(why) => {
                // Until the shard has it back in its world, a report may
                // not list it: keep the claim through the grace.
                if self.owned.contains_key(&id) {
                    self.owned.insert(id.clone(), Some(Instant::now()));
                }
                self.handover_answer_local(&h, id.as_str(), Err(why));
            }
        }
    }

    fn try_hand_over(&mut self, h: &HandOver, id: &InstanceId) -> Result<(), String> {
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
        match self.give(id, &me, &target, bytes) {
            Some(true) => {}
            Some(false) => return Err("this node no longer owns the instance".into()),
            None => return Err("the directory is unreachable".into()),
        }
        self.owned.remove(id);
        let offer = HandoverOffer {
            id: h.id.clone(),
            instance: id.as_str().to_owned(),
            from_node: me.clone(),
            from_shard: h.shard,
        };
        let body = serde_json::to_string(&FleetMsg::Adopt(offer)).expect("an offer serialises");
        let channel = keys::node_control(&target);
        let heard: Option<i64> = self.redis("hand over", |c| c.publish(&channel, body));
        if heard.is_some_and(|n| n > 0) {
            tracing::info!(instance = %id, to = %target, "instance given to another node of the region");
            return Ok(());
        }
        // Nobody listening there: take it back (its replica stays valid).
        self.give(id, &target, &me, Vec::new());
        self.owned.insert(id.clone(), Some(Instant::now()));
        Err(format!("node {target} is not listening"))
    }

    /// Tells this node's own shard how its hand-over went.
    fn handover_answer_local(
        &mut self,
        h: &HandOver,
        instance: &str,
        result: Result<String, String>,
    ) {
        let done = HandoverDone {
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
    pub(super) fn adopt(&mut self, offer: HandoverOffer) {
        let result = self.try_adopt(&offer);
        if let Err(why) = &result {
            tracing::warn!(instance = %offer.instance, from = %offer.from_node, why, "hand-over refused");
            if let Ok(id) = InstanceId::parse(&offer.instance) {
                let me = self.me().to_owned();
                self.give(&id, &me, &offer.from_node, Vec::new());
                self.owned.remove(&id);
            }
        }
        let done = HandoverDone {
            id: offer.id,
            instance: offer.instance,
            node: offer.from_node.clone(),
            shard: offer.from_shard,
            result,
        };
        let channel = keys::node_control(&offer.from_node);
        let body = serde_json::to_string(&FleetMsg::Adopted(done)).expect("an answer serialises");
        let _ = self.redis("hand over", |c| c.publish::<_, _, i64>(&channel, body));
    }

    fn try_adopt(&mut self, offer: &HandoverOffer) -> Result<String, String> {
        let id = InstanceId::parse(&offer.instance).map_err(|e| e.to_string())?;
        if self.left {
            return Err("this node is stopping".into());
        }
        let owner: Option<Option<String>> = self.redis("adopt", |c| c.get(keys::instance(&id)));
        match owner {
            None => return Err("the directory is unreachable".into()),
            Some(Some(o)) if o == self.me() => {}
            Some(_) => return Err("the instance was not given to this node".into()),
        }
        let bytes: Option<Option<Vec<u8>>> = self.redis("adopt", |c| c.get(keys::snapshot(&id)));
        let bytes = bytes
            .ok_or("the directory is unreachable")?
            .ok_or("no replica of the instance")?;
        let snap = replica::decode(&self.start.game, &bytes).map_err(|e| e.to_string())?;
        self.owned.insert(id.clone(), Some(Instant::now()));
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
