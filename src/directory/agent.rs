//! The directory agent: the node's one thread that talks to Redis.
//!
//! It owns the connection and every piece of directory state the node
//! keeps (instances it owns, the fleet view, seats written). Each heartbeat
//! it (re)connects if needed, refreshes the node's registry entry (with a
//! TTL, so a dead node vanishes by itself), reads the fleet, and takes over
//! the instances of dead nodes of its region. Between heartbeats it answers
//! the shards' requests and applies their reports (ownership reconciling,
//! replication).
//!
//! Outages: every Redis call has a short timeout; a failure drops the
//! connection (counted, logged once per outage), requests that need Redis
//! are refused at once, and the next heartbeat tries again. Games never
//! notice: shards only ever `try_send` here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redis::{Commands, Connection};
use serde_json::json;

use super::control::FleetMsg;
use super::route::{self, NodeInfo};
use super::transfer::{Reservation, Reserved};
use super::{keys, replica, send_to_shard, AgentStart, Claim, DirectoryMetrics, RouteQuery};
use super::{SeatAt, ShardReport, ToAgent, ToShard};
use crate::game::{shard_for, InstanceId};

/// Bound on connecting to Redis, and on each command.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the outcome of a `shardline fleet move` waits for its caller.
const MOVE_RESULT_TTL_S: i64 = 60;
/// Requests handled between two heartbeat checks, so a flood of reports
/// cannot starve the heartbeat.
const MESSAGES_PER_BEAT_CHECK: usize = 256;

/// Claims `KEYS[1]` (instance → node) for `ARGV[1]` unless another node has
/// it; adds the instance `ARGV[2]` to the node's set `KEYS[2]`. Returns the
/// owner.
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[2])
  return ARGV[1]
end
if cur == ARGV[1] then redis.call('SADD', KEYS[2], ARGV[2]) end
return cur";

/// Moves instance `ARGV[3]` from dead node `ARGV[1]` (set `KEYS[2]`) to
/// `ARGV[2]` (set `KEYS[3]`) if the dead node still owns it. 1: taken.
const TAKE_OVER: &str = r"
redis.call('SREM', KEYS[2], ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
  return 1
end
return 0";

/// Releases instance `ARGV[2]` if node `ARGV[1]` owns it, with its replica.
const RELEASE: &str = r"
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[3])
  return 1
end
return 0";

/// Stores a replica only while node `ARGV[1]` owns the instance (a node
/// whose instances were taken over cannot overwrite the new owner's).
const REPLICATE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0";

/// What a stopping node leaves in its registry entry (for one TTL): its
/// region takes it over at once instead of waiting for the entry to expire.
fn left_marker(node: &str) -> String {
    serde_json::json!({"id": node, "left": true}).to_string()
}

fn is_left_marker(value: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| v["left"] == true)
}

/// What one shard last reported.
#[derive(Default)]
struct ShardState {
    reported: bool,
    /// Sent its final report (the node is stopping).
    left: bool,
    /// Largest replica of one of its instances in its last round.
    replica_bytes_max: u64,
    players: usize,
    instances: HashSet<InstanceId>,
    draining: bool,
    shedding: bool,
}

struct Agent {
    start: AgentStart,
    client: redis::Client,
    conn: Option<Connection>,
    /// Since when the connection has been up without a failure.
    up_since: Option<Instant>,
    shards: Vec<ShardState>,
    /// Instances this node owns: `Some(t)` while only claimed (at a
    /// handshake or a take-over) and not yet seen in a shard's report.
    owned: HashMap<InstanceId, Option<Instant>>,
    /// Live nodes, as of the last heartbeat.
    fleet: Vec<NodeInfo>,
    /// Seats written: token → (instance, when).
    seats: HashMap<String, (InstanceId, Instant)>,
    /// Stopping shards waiting for the node to leave the directory.
    leaving: Vec<Sender<bool>>,
    /// The node left the directory (stopping): no more registrations.
    left: bool,
    to_shards: Vec<Sender<ToShard>>,
    metrics: Arc<DirectoryMetrics>,
}

pub(super) fn spawn(
    client: redis::Client,
    start: AgentStart,
    rx: Receiver<ToAgent>,
    to_shards: Vec<Sender<ToShard>>,
    metrics: Arc<DirectoryMetrics>,
) -> anyhow::Result<()> {
    let shards = (0..start.shards).map(|_| ShardState::default()).collect();
    let mut agent = Agent {
        start,
        client,
        conn: None,
        up_since: None,
        shards,
        owned: HashMap::new(),
        fleet: Vec::new(),
        seats: HashMap::new(),
        leaving: Vec::new(),
        left: false,
        to_shards,
        metrics,
    };
    std::thread::Builder::new()
        .name("directory".into())
        .spawn(move || agent.run(rx))?;
    Ok(())
}

mod handover;

type RResult<T> = redis::RedisResult<T>;

impl Agent {
    fn run(&mut self, rx: Receiver<ToAgent>) {
        let heartbeat = self.start.cfg.heartbeat;
        let mut next_beat = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_beat {
                self.beat();
                next_beat = Instant::now() + heartbeat;
            }
            let mut handled = 0;
            let wait = next_beat.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return, // the node stopped
            }
            while handled < MESSAGES_PER_BEAT_CHECK {
                match rx.try_recv() {
                    Ok(msg) => self.handle(msg),
                    Err(_) => break,
                }
                handled += 1;
            }
        }
    }

    fn me(&self) -> &str {
        &self.start.node_id
    }

    /// Runs `f` on the connection; a failure drops it (counted, logged
    /// once per outage) so the next heartbeat reconnects.
    fn redis<T>(&mut self, what: &str, f: impl FnOnce(&mut Connection) -> RResult<T>) -> Option<T> {
        let conn = self.conn.as_mut()?;
        match f(conn) {
            Ok(v) => Some(v),
            Err(e) => {
                self.metrics.errors.inc();
                self.metrics.up.set(0);
                self.conn = None;
                self.up_since = None;
                tracing::warn!(error = %e, what, "directory (Redis) unreachable; games go on, directory requests are refused until it returns");
                None
            }
        }
    }

    fn connect(&mut self) {
        if self.conn.is_some() {
            return;
        }
        match self.client.get_connection_with_timeout(REDIS_TIMEOUT) {
            Ok(c) => {
                let _ = c.set_read_timeout(Some(REDIS_TIMEOUT));
                let _ = c.set_write_timeout(Some(REDIS_TIMEOUT));
                self.conn = Some(c);
                self.up_since = Some(Instant::now());
                // Redis may have lost everything (restarted without
                // persistence): every local instance is claimed again from
                // the shards' next reports.
                self.owned.clear();
                self.seats.clear();
                self.metrics.up.set(1);
                self.metrics.reconnects.inc();
                tracing::info!(url = %super::redacted(&self.start.cfg.url), "directory connected; registering");
            }
            Err(e) => {
                self.metrics.errors.inc();
                tracing::debug!(error = %e, "directory still unreachable");
            }
        }
    }

    // ------------------------------------------------------------ heartbeat

    fn beat(&mut self) {
        if self.left {
            return;
        }
        self.connect();
        if self.conn.is_none() {
            return;
        }
        let info = self.my_info();
        let ttl_ms = self.start.cfg.ttl.as_millis() as u64;
        let body = serde_json::to_string(&info).expect("NodeInfo serialises");
        let (id, region) = (self.me().to_owned(), self.start.region.clone());
        let ok = self.redis("register", |c| {
            redis::pipe()
                .cmd("SET")
                .arg(keys::node(&id))
                .arg(&body)
                .arg("PX")
                .arg(ttl_ms)
                .ignore()
                .hset(keys::NODES, &id, &region)
                .ignore()
                .query::<()>(c)
        });
        if ok.is_none() {
            return;
        }
        let Some(dead) = self.read_fleet() else {
            return;
        };
        // Take over only after a whole TTL connected: after an outage every
        // live node must have had the time to re-register first. A node
        // that said it left is taken over at once.
        let settled = self
            .up_since
            .is_some_and(|t| t.elapsed() >= self.start.cfg.ttl);
        for (node, region, left) in dead {
            if region == self.start.region && (settled || left) {
                self.take_over(&node);
            }
        }
        self.release_stale_claims();
    }

    fn my_info(&self) -> NodeInfo {
        let reported = self.shards.iter().filter(|s| s.reported);
        let (mut load, mut instances, mut draining, mut shedding) = (0, 0, false, false);
        for s in reported {
            load += s.players;
            instances += s.instances.len();
            draining |= s.draining;
            shedding |= s.shedding;
        }
        NodeInfo {
            id: self.start.node_id.clone(),
            region: self.start.region.clone(),
            location: self.start.cfg.location.clone(),
            url: self.start.public_url.clone(),
            shards: self.start.shards,
            capacity: self.start.capacity,
            load,
            instances,
            healthy: !shedding,
            draining,
        }
    }

    /// Reads every registered node; keeps the live ones as the fleet view
    /// and returns the dead ones (id, region, whether it said it left).
    fn read_fleet(&mut self) -> Option<Vec<(String, String, bool)>> {
        let all: HashMap<String, String> = self.redis("read nodes", |c| c.hgetall(keys::NODES))?;
        let ids: Vec<&String> = all.keys().collect();
        if ids.is_empty() {
            self.fleet.clear();
            return Some(Vec::new());
        }
        let node_keys: Vec<String> = ids.iter().map(|id| keys::node(id)).collect();
        let values: Vec<Option<String>> = self.redis("read nodes", |c| {
            redis::cmd("MGET").arg(&node_keys).query(c)
        })?;
        let mut fleet = Vec::new();
        let mut dead = Vec::new();
        for (id, value) in ids.iter().zip(values) {
            let value = value.unwrap_or_default();
            match serde_json::from_str::<NodeInfo>(&value) {
                Ok(info) => fleet.push(info),
                Err(_) => dead.push(((*id).clone(), all[*id].clone(), is_left_marker(&value))),
            }
        }
        fleet.sort_by(|a, b| a.id.cmp(&b.id));
        self.fleet = fleet;
        Some(dead)
    }

    /// Claims the instances of dead node `dead` one by one (atomically:
    /// every live node of the region races, each instance gets one owner)
    /// and restores each from its replica on the shard that owns its id.
    fn take_over(&mut self, dead: &str) {
        let set = keys::node_instances(dead);
        let Some(ids) = self.redis("take over", |c| c.smembers::<_, Vec<String>>(&set)) else {
            return;
        };
        for raw in ids {
            let Ok(id) = InstanceId::parse(&raw) else {
                let _ = self.redis("take over", |c| c.srem::<_, _, ()>(&set, &raw));
                continue;
            };
            let me = self.me().to_owned();
            let taken: Option<i64> = self.redis("take over", |c| {
                redis::cmd("EVAL")
                    .arg(TAKE_OVER)
                    .arg(3)
                    .arg(keys::instance(&id))
                    .arg(&set)
                    .arg(keys::node_instances(&me))
                    .arg(dead)
                    .arg(&me)
                    .arg(id.as_str())
                    .query(c)
            });
            if taken != Some(1) {
                continue;
            }
            self.owned.insert(id.clone(), Some(Instant::now()));
            let bytes: Option<Option<Vec<u8>>> =
                self.redis("read replica", |c| c.get(keys::snapshot(&id)));
            let decoded = bytes
                .flatten()
                .ok_or_else(|| "no replica".to_owned())
                .and_then(|b| replica::decode(&self.start.game, &b).map_err(|e| e.to_string()));
            match decoded {
                Ok(snap) => {
                    let shard = shard_for(&id, self.start.shards);
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
                    self.release(&id);
                }
            }
        }
        let left: Option<usize> = self.redis("take over", |c| c.scard(&set));
        if left == Some(0) {
            let _ = self.redis("take over", |c| {
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

    /// How long a claim may wait to show up in a shard report: a handshake
    /// (connect timeout) then a Join, then a report or two.
    fn claim_grace(&self) -> Duration {
        self.start.connect_timeout + self.start.report_interval * 4
    }

    fn is_local(&self, id: &InstanceId) -> bool {
        self.shards.iter().any(|s| s.instances.contains(id))
    }

    fn release_stale_claims(&mut self) {
        let grace = self.claim_grace();
        let all_reported = self.shards.iter().all(|s| s.reported);
        let stale: Vec<InstanceId> = self
            .owned
            .iter()
            .filter(|(id, since)| match since {
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
        let me = self.me().to_owned();
        let done = self.redis("release", |c| {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(3)
                .arg(keys::instance(id))
                .arg(keys::node_instances(&me))
                .arg(keys::snapshot(id))
                .arg(&me)
                .arg(id.as_str())
                .query::<i64>(c)
        });
        if done.is_some() {
            self.owned.remove(id);
            tracing::debug!(instance = %id, "instance released");
        }
    }

    // ------------------------------------------------------------- requests

    fn handle(&mut self, msg: ToAgent) {
        match msg {
            ToAgent::Report(r) => self.on_report(r),
            ToAgent::Claim { instance, reply } => {
                let answer = self.claim(instance);
                let _ = reply.try_send(answer);
            }
            ToAgent::Route { query, reply } => {
                let answer = self.route(query);
                let _ = reply.try_send(answer);
            }
            ToAgent::FindSeat { token, reply } => {
                let answer = self.find_seat(&token);
                let _ = reply.try_send(answer);
            }
            ToAgent::Leave { report, reply } => self.leave(report, reply),
            ToAgent::Seat { token, instance } => self.write_seat(token, instance),
            ToAgent::Transfer(r) => self.transfer(r),
            ToAgent::Reserved(r) => self.reserved(r),
            ToAgent::HandOver(h) => self.hand_over(h),
            ToAgent::Adopt(offer) => self.adopt(offer),
            ToAgent::MoveDone { move_id, outcome } => {
                let key = keys::move_result(&move_id);
                let line = outcome.to_string();
                let _ = self.redis("move outcome", |c| {
                    redis::pipe()
                        .rpush(&key, line)
                        .ignore()
                        .expire(&key, MOVE_RESULT_TTL_S)
                        .ignore()
                        .query::<()>(c)
                });
            }
        }
    }

    /// A player of this node moves to `r.instance`: to a shard here when
    /// this node owns (or now claims) it, else a reservation to its owner.
    fn transfer(&mut self, r: Reservation) {
        let shard = r.reply_shard;
        let fail = |agent: &mut Agent, why: String| {
            let answer = Reserved {
                move_id: r.move_id.clone(),
                node: r.reply_node.clone(),
                shard,
                result: Err(why),
            };
            send_to_shard(
                &agent.to_shards,
                shard,
                ToShard::Reserved(answer),
                &agent.metrics,
            );
        };
        let Ok(id) = InstanceId::parse(&r.instance) else {
            return fail(self, format!("{:?} is not an instance id", r.instance));
        };
        match self.claim(id.clone()) {
            Claim::Mine => {
                let ev = ToShard::TransferLocal {
                    move_id: r.move_id.clone(),
                    to: id,
                    create: r.create,
                };
                send_to_shard(&self.to_shards, shard, ev, &self.metrics);
            }
            Claim::Elsewhere { node, .. } => {
                let body = serde_json::to_string(&FleetMsg::Reserve(r.clone()))
                    .expect("a reservation serialises");
                let channel = keys::node_control(&node);
                let heard: Option<i64> = self.redis("reserve", |c| c.publish(&channel, body));
                match heard {
                    Some(n) if n > 0 => {}
                    Some(_) => fail(
                        self,
                        format!("node {node}, which owns instance {id}, is not listening"),
                    ),
                    None => fail(self, "the directory is unavailable; retry shortly".into()),
                }
            }
            Claim::Unavailable(why) => fail(self, why),
        }
    }

    /// A stopping shard's final report: replicated at once. When every
    /// shard's is in, the registration goes (the node looks dead to its
    /// region, which takes its instances over from these replicas) and the
    /// shards are told. Without Redis they are told at once that the node
    /// could not leave: the region takes over after the TTL.
    fn leave(&mut self, report: ShardReport, reply: Sender<bool>) {
        let shard = report.shard;
        self.on_report(report);
        self.shards[shard].left = true;
        if self.conn.is_none() {
            let _ = reply.try_send(false);
            return;
        }
        self.leaving.push(reply);
        if !self.shards.iter().all(|s| s.left) {
            return;
        }
        let key = keys::node(self.me());
        let marker = left_marker(self.me());
        let ttl_ms = self.start.cfg.ttl.as_millis() as u64;
        let gone = self.redis("leave", |c| {
            redis::cmd("SET")
                .arg(key)
                .arg(marker)
                .arg("PX")
                .arg(ttl_ms)
                .query::<()>(c)
        });
        if gone.is_some() {
            self.left = true;
            tracing::info!("left the fleet: final replicas written, registration removed; the region takes the instances over");
            for r in self.leaving.drain(..) {
                let _ = r.try_send(true);
            }
        } else {
            for r in self.leaving.drain(..) {
                let _ = r.try_send(false);
            }
        }
    }

    /// Records a new seat (token → instance). Without Redis it is skipped:
    /// the next replication writes every seat anyway.
    fn write_seat(&mut self, token: String, instance: InstanceId) {
        if self.conn.is_none() {
            return;
        }
        let ttl = self.seat_ttl();
        let key = keys::seat(&token);
        let value = instance.as_str().to_owned();
        let written = self.redis("seat", |c| {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query::<()>(c)
        });
        if written.is_some() {
            self.seats.insert(token, (instance, Instant::now()));
        }
    }

    /// This node reserved (or refused) a seat for another node's player
    /// (the seat itself was recorded when the shard made it): answer.
    fn reserved(&mut self, r: Reserved) {
        let channel = keys::node_control(&r.node);
        let body = serde_json::to_string(&FleetMsg::Reserved(r)).expect("an answer serialises");
        let _ = self.redis("reserve", |c| c.publish::<_, _, i64>(&channel, body));
    }

    /// How long a seat record lives in the directory.
    fn seat_ttl(&self) -> Duration {
        (self.start.reconnect_grace + self.start.cfg.ttl) * 2
    }

    fn claim(&mut self, id: InstanceId) -> Claim {
        if self.owned.contains_key(&id) {
            return Claim::Mine;
        }
        if self.conn.is_none() {
            self.metrics.refused.inc();
            return Claim::Unavailable("the directory is unavailable; retry shortly".into());
        }
        let me = self.me().to_owned();
        let owner: Option<String> = self.redis("claim", |c| {
            redis::cmd("EVAL")
                .arg(CLAIM)
                .arg(2)
                .arg(keys::instance(&id))
                .arg(keys::node_instances(&me))
                .arg(&me)
                .arg(id.as_str())
                .query(c)
        });
        let Some(owner) = owner else {
            self.metrics.refused.inc();
            return Claim::Unavailable("the directory is unavailable; retry shortly".into());
        };
        if owner == me {
            self.owned.insert(id, Some(Instant::now()));
            return Claim::Mine;
        }
        match self.node_url(&owner) {
            Some(url) => Claim::Elsewhere { node: owner, url },
            None => Claim::Unavailable(format!(
                "instance {id} belongs to node {owner}, which is not answering; \
                 another node of its region takes it over shortly: retry"
            )),
        }
    }

    /// A live node's URL (the fleet view, else Redis for a node that
    /// registered since the last heartbeat).
    fn node_url(&mut self, node: &str) -> Option<String> {
        if let Some(n) = self.fleet.iter().find(|n| n.id == node) {
            return Some(n.url.clone());
        }
        let v: Option<String> = self
            .redis("read node", |c| c.get(keys::node(node)))
            .flatten();
        v.and_then(|v| serde_json::from_str::<NodeInfo>(&v).ok())
            .map(|n| n.url)
    }

    fn route(&mut self, query: RouteQuery) -> (u16, serde_json::Value) {
        if query == RouteQuery::Fleet {
            return (
                200,
                json!({
                    "node": self.me(),
                    "region": self.start.region,
                    "up": self.conn.is_some(),
                    "regions": route::regions(&self.fleet),
                    "nodes": self.fleet,
                }),
            );
        }
        if self.conn.is_none() {
            self.metrics.refused.inc();
            return (
                503,
                json!({"error": "the directory is unavailable; retry shortly"}),
            );
        }
        let node_json = |n: &NodeInfo| json!({"node": n.id, "region": n.region, "url": n.url});
        match query {
            RouteQuery::Regions => (200, json!({ "regions": route::regions(&self.fleet) })),
            RouteQuery::Fleet => unreachable!("answered above"),
            RouteQuery::Region(r) => match route::least_loaded(&self.fleet, &r) {
                Some(n) => (200, node_json(n)),
                None if self.fleet.iter().any(|n| n.region == r) => (
                    503,
                    json!({"error": format!("region {r} is full or draining")}),
                ),
                None => (404, json!({"error": format!("no node in region {r}")})),
            },
            RouteQuery::Latencies(l) => match route::by_latencies(&self.fleet, &l) {
                Some(n) => (200, node_json(n)),
                None => (503, json!({"error": "no listed region has room"})),
            },
            RouteQuery::Instance(id) => {
                let owner: Option<Option<String>> =
                    self.redis("route", |c| c.get(keys::instance(&id)));
                match owner {
                    None => (
                        503,
                        json!({"error": "the directory is unavailable; retry shortly"}),
                    ),
                    Some(None) => (404, json!({"error": format!("no node runs instance {id}")})),
                    Some(Some(owner)) => match self.node_url(&owner) {
                        Some(url) => {
                            let region = self
                                .fleet
                                .iter()
                                .find(|n| n.id == owner)
                                .map_or_else(|| self.start.region.clone(), |n| n.region.clone());
                            (
                                200,
                                json!({"node": owner, "region": region, "url": url, "instance": id.as_str()}),
                            )
                        }
                        None => (
                            503,
                            json!({"error": format!("node {owner} is not answering; its instances move to another node of its region: retry")}),
                        ),
                    },
                }
            }
        }
    }

    fn find_seat(&mut self, token: &str) -> SeatAt {
        let instance: Option<String> = self
            .redis("find seat", |c| c.get(keys::seat(token)))
            .flatten();
        let Some(id) = instance.and_then(|i| InstanceId::parse(&i).ok()) else {
            return SeatAt::Nowhere;
        };
        let owner: Option<String> = self
            .redis("find seat", |c| c.get(keys::instance(&id)))
            .flatten();
        match owner {
            None => SeatAt::Nowhere,
            Some(owner) if owner == self.me() => SeatAt::Here,
            Some(owner) => self.node_url(&owner).map_or(SeatAt::Nowhere, SeatAt::Node),
        }
    }

    // -------------------------------------------------------------- reports

    fn on_report(&mut self, r: ShardReport) {
        let shard = r.shard;
        let s = &mut self.shards[shard];
        s.reported = true;
        s.players = r.players;
        s.draining = r.draining;
        s.shedding = r.shedding;
        s.instances = r.instances.into_iter().collect();
        let local: Vec<InstanceId> = s.instances.iter().cloned().collect();
        if self.conn.is_none() {
            return;
        }
        for id in local {
            match self.owned.get(&id) {
                Some(None) => {}
                Some(Some(_)) => {
                    self.owned.insert(id, None);
                }
                None => {
                    // Created without a claim (a Join for a new instance
                    // mid-session): claim now.
                    match self.claim(id.clone()) {
                        Claim::Mine => {
                            self.owned.insert(id, None);
                        }
                        Claim::Elsewhere { node, url } => {
                            // Restored here from a local snapshot after the
                            // region took it over, or kept through a
                            // partition: the owner's copy wins.
                            self.metrics.claim_conflicts.inc();
                            tracing::warn!(instance = %id, owner = %node, "a local instance belongs to another node in the directory; stopping the local copy");
                            let ev = ToShard::Disown { instance: id, url };
                            send_to_shard(&self.to_shards, shard, ev, &self.metrics);
                        }
                        Claim::Unavailable(_) => return,
                    }
                }
            }
        }
        if let Some(snaps) = r.snapshots {
            self.replicate(shard, snaps);
        }
    }

    /// Stores each instance's replica (fenced by ownership) and the seats
    /// it holds, in one round trip.
    fn replicate(&mut self, shard: usize, snaps: Vec<crate::snapshot::InstanceSnapshot>) {
        let me = self.me().to_owned();
        let seat_ttl = self.seat_ttl();
        let mut pipe = redis::pipe();
        let (mut n, mut bytes_sum, mut biggest) = (0u64, 0u64, 0u64);
        for snap in &snaps {
            let id = &snap.id;
            let Ok(id) = InstanceId::parse(id) else {
                continue;
            };
            if !matches!(self.owned.get(&id), Some(None)) {
                continue;
            }
            match replica::encode(&self.start.game, snap, self.start.cfg.replica_bytes_max) {
                Ok(b) => {
                    n += 1;
                    bytes_sum += b.len() as u64;
                    biggest = biggest.max(b.len() as u64);
                    pipe.cmd("EVAL")
                        .arg(REPLICATE)
                        .arg(2)
                        .arg(keys::instance(&id))
                        .arg(keys::snapshot(&id))
                        .arg(&me)
                        .arg(b)
                        .ignore();
                }
                Err(e) => {
                    self.metrics.replicas_too_large.inc();
                    tracing::warn!(instance = %id, error = %e, "instance not replicated");
                }
            }
            for seat in snap.seats.iter().filter(|s| !s.token.is_empty()) {
                let fresh = self
                    .seats
                    .get(&seat.token)
                    .is_some_and(|(i, t)| *i == id && t.elapsed() < seat_ttl / 2);
                if !fresh {
                    pipe.cmd("SET")
                        .arg(keys::seat(&seat.token))
                        .arg(id.as_str())
                        .arg("PX")
                        .arg(seat_ttl.as_millis() as u64)
                        .ignore();
                    self.seats
                        .insert(seat.token.clone(), (id.clone(), Instant::now()));
                }
            }
        }
        self.seats.retain(|_, (_, t)| t.elapsed() < seat_ttl);
        if self.redis("replicate", |c| pipe.query::<()>(c)).is_some() {
            self.metrics.replicas_written.add(n);
            self.metrics.replica_bytes.add(bytes_sum);
            // Each shard replicates its own instances: the gauge is the
            // largest of every shard's last round.
            self.shards[shard].replica_bytes_max = biggest;
            let largest = self.shards.iter().map(|s| s.replica_bytes_max).max();
            self.metrics
                .replica_instance_bytes_max
                .set(largest.unwrap_or(0));
        }
    }
}
