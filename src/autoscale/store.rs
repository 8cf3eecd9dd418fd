//! What the autoscaler keeps in the fleet's directory (Redis), and the one
//! connection it reads and writes it through. Every call is bounded by a
//! short timeout; a failure drops the connection and returns `None`, so the
//! controller sees "unreachable" and holds.
//!
//! ```text
//! sl:as:lease              string  the active controller's id, PX lease TTL
//! sl:as:policies           hash    region → ScalingPolicy (JSON)
//! sl:as:hist:{region}      list    history samples "bucket:load", newest last,
//!                                  at most policy::HISTORY_SAMPLES_MAX
//! sl:as:override:{region}  string  pinned node count (PX when given a time)
//! sl:as:mem:{region}       string  RegionMemory (JSON): cooldowns, drain
//! sl:as:starting:{region}  hash    node → when it was asked for (ms)
//! sl:as:seq:{region}       counter the number in the next node's name
//! sl:as:pid:{node}         string  pid of a node the controller runs
//! sl:as:decisions          hash    region → the last Decision (JSON)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::{Commands, Connection};

use super::decide::{Decision, RegionMemory};
use super::forecast::Sample;
use super::policy::{PolicyError, ScalingPolicy, HISTORY_SAMPLES_MAX};
use crate::directory::keys as dir_keys;
use crate::directory::route::NodeInfo;

/// Bound on connecting and on each command.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

pub mod keys {
    pub const LEASE: &str = "sl:as:lease";
    pub const POLICIES: &str = "sl:as:policies";
    pub const DECISIONS: &str = "sl:as:decisions";
    pub fn history(region: &str) -> String {
        format!("sl:as:hist:{region}")
    }
    pub fn override_of(region: &str) -> String {
        format!("sl:as:override:{region}")
    }
    pub fn memory(region: &str) -> String {
        format!("sl:as:mem:{region}")
    }
    pub fn starting(region: &str) -> String {
        format!("sl:as:starting:{region}")
    }
    pub fn seq(region: &str) -> String {
        format!("sl:as:seq:{region}")
    }
    pub fn pid(node: &str) -> String {
        format!("sl:as:pid:{node}")
    }
}

/// Takes the lease for `ARGV[1]`, or renews it when already held: 1 when
/// `ARGV[1]` holds it afterwards.
const LEASE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0";

/// Gives the lease up if `ARGV[1]` holds it (a controller stopping).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1";

pub struct Store {
    client: redis::Client,
    conn: Option<Connection>,
}

type R<T> = redis::RedisResult<T>;

impl Store {
    pub fn open(url: &str) -> anyhow::Result<Store> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("--directory {}: {e}", crate::directory::redacted(url)))?;
        Ok(Store { client, conn: None })
    }

    pub fn is_up(&self) -> bool {
        self.conn.is_some()
    }

    /// Connects if needed; `false` when Redis cannot be reached.
    pub fn connect(&mut self) -> bool {
        if self.conn.is_some() {
            return true;
        }
        match self.client.get_connection_with_timeout(REDIS_TIMEOUT) {
            Ok(c) => {
                let _ = c.set_read_timeout(Some(REDIS_TIMEOUT));
                let _ = c.set_write_timeout(Some(REDIS_TIMEOUT));
                self.conn = Some(c);
                true
            }
            Err(_) => false,
        }
    }

    fn with<T>(&mut self, f: impl FnOnce(&mut Connection) -> R<T>) -> Option<T> {
        let conn = self.conn.as_mut()?;
        match f(conn) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "directory (Redis) unreachable: holding every region");
                self.conn = None;
                None
            }
        }
    }

    /// Takes or renews the lease; `Some(true)` while this controller holds it.
    pub fn lease(&mut self, me: &str, ttl: Duration) -> Option<bool> {
        self.with(|c| {
            redis::cmd("EVAL")
                .arg(LEASE)
                .arg(1)
                .arg(keys::LEASE)
                .arg(me)
                .arg(ttl.as_millis() as u64)
                .query::<i64>(c)
        })
        .map(|n| n == 1)
    }

    pub fn release_lease(&mut self, me: &str) {
        let _ = self.with(|c| {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(keys::LEASE)
                .arg(me)
                .query::<i64>(c)
        });
    }

    /// Who holds the lease now.
    pub fn lease_holder(&mut self) -> Option<Option<String>> {
        self.with(|c| c.get(keys::LEASE))
    }

    /// Every region's policy; an invalid stored one is kept as its error.
    pub fn policies(&mut self) -> Option<BTreeMap<String, Result<ScalingPolicy, PolicyError>>> {
        let raw: HashMap<String, String> = self.with(|c| c.hgetall(keys::POLICIES))?;
        Some(
            raw.into_iter()
                .map(|(r, json)| {
                    let p = ScalingPolicy::from_json(&r, &json);
                    (r, p)
                })
                .collect(),
        )
    }

    pub fn set_policy(&mut self, region: &str, p: &ScalingPolicy) -> Option<()> {
        let json = p.to_json();
        self.with(|c| c.hset(keys::POLICIES, region, json))
    }

    pub fn clear_policy(&mut self, region: &str) -> Option<bool> {
        self.with(|c| c.hdel::<_, _, i64>(keys::POLICIES, region))
            .map(|n| n > 0)
    }

    /// Live nodes (registered and not expired), as the directory shows them.
    pub fn nodes(&mut self) -> Option<Vec<NodeInfo>> {
        let ids: Vec<String> = self.with(|c| c.hkeys(dir_keys::NODES))?;
        if ids.is_empty() {
            return Some(Vec::new());
        }
        let node_keys: Vec<String> = ids.iter().map(|id| dir_keys::node(id)).collect();
        let values: Vec<Option<String>> =
            self.with(|c| redis::cmd("MGET").arg(&node_keys).query(c))?;
        let mut nodes: Vec<NodeInfo> = values
            .into_iter()
            .flatten()
            .filter_map(|v| serde_json::from_str::<NodeInfo>(&v).ok())
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Some(nodes)
    }

    pub fn history(&mut self, region: &str) -> Option<Vec<Sample>> {
        let raw: Vec<String> = self.with(|c| c.lrange(keys::history(region), 0, -1))?;
        Some(raw.iter().filter_map(|s| Sample::decode(s)).collect())
    }

    /// Appends a sample; the list keeps the newest [`HISTORY_SAMPLES_MAX`].
    pub fn push_sample(&mut self, region: &str, s: Sample) -> Option<()> {
        let key = keys::history(region);
        self.with(|c| {
            redis::pipe()
                .rpush(&key, s.encode())
                .ignore()
                .ltrim(&key, -(HISTORY_SAMPLES_MAX as isize), -1)
                .ignore()
                .query(c)
        })
    }

    pub fn override_of(&mut self, region: &str) -> Option<Option<u32>> {
        let v: Option<String> = self.with(|c| c.get(keys::override_of(region)))?;
        Some(v.and_then(|v| v.parse().ok()))
    }

    pub fn set_override(
        &mut self,
        region: &str,
        nodes: Option<u32>,
        ttl: Option<Duration>,
    ) -> Option<()> {
        let key = keys::override_of(region);
        self.with(|c| match (nodes, ttl) {
            (None, _) => c.del(&key),
            (Some(n), None) => c.set(&key, n),
            (Some(n), Some(t)) => c.pset_ex(&key, n, t.as_millis() as u64),
        })
    }

    pub fn memory(&mut self, region: &str) -> Option<RegionMemory> {
        let v: Option<String> = self.with(|c| c.get(keys::memory(region)))?;
        Some(
            v.and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default(),
        )
    }

    pub fn save_memory(&mut self, region: &str, m: &RegionMemory) -> Option<()> {
        let json = serde_json::to_string(m).expect("memory serialises");
        self.with(|c| c.set(keys::memory(region), json))
    }

    /// Nodes asked for and not registered yet: node → when (ms).
    pub fn starting(&mut self, region: &str) -> Option<HashMap<String, u64>> {
        self.with(|c| c.hgetall(keys::starting(region)))
    }

    pub fn add_starting(&mut self, region: &str, node: &str, at_ms: u64) -> Option<()> {
        self.with(|c| c.hset(keys::starting(region), node, at_ms))
    }

    pub fn remove_starting(&mut self, region: &str, node: &str) -> Option<()> {
        self.with(|c| c.hdel(keys::starting(region), node))
    }

    /// A fresh node name for `region`: `{region}-{n}`.
    pub fn next_node_name(&mut self, region: &str) -> Option<String> {
        let n: u64 = self.with(|c| c.incr(keys::seq(region), 1))?;
        Some(format!("{region}-{n}"))
    }

    pub fn set_pid(&mut self, node: &str, pid: Option<u32>) -> Option<()> {
        self.with(|c| match pid {
            Some(p) => c.set(keys::pid(node), p),
            None => c.del(keys::pid(node)),
        })
    }

    pub fn pid(&mut self, node: &str) -> Option<Option<u32>> {
        self.with(|c| c.get(keys::pid(node)))
    }

    /// Tells node `node` to evacuate; the number of listeners.
    pub fn evacuate(&mut self, node: &str) -> Option<i64> {
        let msg = crate::directory::control::FleetMsg::Evacuate {
            node: node.to_owned(),
        };
        let body = serde_json::to_string(&msg).expect("a fleet message serialises");
        self.with(|c| c.publish(dir_keys::node_control(node), body))
    }

    pub fn save_decision(&mut self, d: &Decision) -> Option<()> {
        let json = serde_json::to_string(d).expect("a decision serialises");
        self.with(|c| c.hset(keys::DECISIONS, &d.region, json))
    }

    pub fn decisions(&mut self) -> Option<BTreeMap<String, String>> {
        self.with(|c| c.hgetall(keys::DECISIONS))
    }
}
