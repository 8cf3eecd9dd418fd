//! The directory agent: the node's one thread that talks to Redis.
//!
//! It owns the connection and every piece of directory state the node
//! keeps (instances it owns and their epochs, the fleet view, seats written,
//! the replica queue). Each heartbeat it (re)connects if needed — through
//! the sentinels when the directory is a Sentinel set, so a promoted
//! replica is found — refreshes the node's registry entry (with a TTL, so a
//! dead node vanishes by itself), reads the fleet, takes over the instances
//! of dead nodes of its region, and re-validates its claims after a
//! reconnect. Between heartbeats it answers the shards' requests, applies
//! their reports, and writes queued replicas at the pace the budget allows.
//!
//! Outages: every Redis call has a short timeout; a failure drops the
//! connection (counted, logged once per outage), requests that need Redis
//! are refused at once, and the next heartbeat tries again. Games never
//! notice: shards only ever `try_send` here.
//!
//! Child modules: [`ownership`] (claims, fencing, take-overs, hand-overs)
//! and [`replication`] (the paced replica writes).

mod evacuate;
mod ownership;
mod replication;

use ownership::Placement;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use redis::{Commands, Connection};
use serde_json::json;

use super::budget::{ReplicaQueue, FLUSH_INTERVAL};
use super::control::FleetMsg;
use super::handover::{HandOver, HandedOver, HANDOVER_TIMEOUT};
use super::metrics::{Op, OpRates};
use super::route::{self, NodeInfo};
use super::transfer::{Reservation, Reserved};
use super::{keys, send_to_shard, AgentStart, Claim, DirectoryMetrics, Endpoint, RouteQuery};
use super::{SeatAt, ShardReport, ToAgent, ToShard};
use crate::game::InstanceId;
use crate::util::wake::{MailboxSender, Reply};

/// Bound on connecting to Redis (each sentinel asked, then the primary),
/// and on each command.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the outcome of a `shardline fleet move` waits for its caller.
const MOVE_RESULT_TTL_S: i64 = 60;
/// Requests handled between two heartbeat checks, so a flood of reports
/// cannot starve the heartbeat.
const MESSAGES_PER_BEAT_CHECK: usize = 256;
/// Shortest life of a seat record (`sl:seat:{token}`). A seat's record is
/// deleted when the seat ends; the expiry only clears the records of a node
/// that died with instances nobody could restore. Its owner writes it again
/// at half this age even when nothing changed: at 10 min, an idle instance
/// costs one write per 5 min (~100 B of Redis per stale record meanwhile).
const SEAT_RECORD_TTL_MIN: Duration = Duration::from_secs(600);

/// What a stopping node leaves in its registry entry (for one TTL): its
/// region takes it over at once instead of waiting for the entry to expire.
fn left_marker(node: &str) -> String {
    serde_json::json!({"id": node, "left": true}).to_string()
}

fn is_left_marker(value: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| v["left"] == true)
}

/// How often the agent looks at the node's admission counter between
/// heartbeats (one atomic read).
pub const PUBLISH_POLL: Duration = Duration::from_millis(25);
/// Least time between two registry writes outside the heartbeat.
const PUBLISH_GAP_MIN: Duration = Duration::from_millis(50);
/// A load change of at least capacity / this is published at once.
const PUBLISH_LOAD_STEP_DIVISOR: usize = 16;

/// What the registry shows of this node, as last written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Published {
    load: usize,
    has_room: bool,
    draining: bool,
    healthy: bool,
}

/// This node's figures as its registry entry shows them.
#[derive(Debug, Clone, Copy)]
struct Figures {
    load: usize,
    instances: usize,
    capacity: usize,
    draining: bool,
    healthy: bool,
}

impl Published {
    fn of(f: &Figures) -> Self {
        Self {
            load: f.load,
            has_room: f.healthy && !f.draining && f.load < f.capacity,
            draining: f.draining,
            healthy: f.healthy,
        }
    }

    /// Worth a write before the next heartbeat: routers would otherwise
    /// send players to a node that is full or draining (refused), or miss
    /// one that has room again.
    fn differs(&self, now: &Published, capacity: usize) -> bool {
        let step = (capacity / PUBLISH_LOAD_STEP_DIVISOR).max(1);
        self.has_room != now.has_room
            || self.draining != now.draining
            || self.healthy != now.healthy
            || self.load.abs_diff(now.load) >= step
    }
}

/// What one shard last reported.
#[derive(Default)]
struct ShardState {
    reported: bool,
    /// Sent its final report (the node is stopping).
    left: bool,
    players: usize,
    capacity: usize,
    instances: HashSet<InstanceId>,
    draining: bool,
    shedding: bool,
}

/// An instance this node owns in the directory.
#[derive(Debug, Clone, Copy)]
struct Owned {
    /// The epoch of our claim (`fence.rs`); every owner's write checks it.
    epoch: u64,
    /// `Some(t)` while only claimed (at a handshake or a take-over) and not
    /// yet seen in a shard's report.
    claimed_at: Option<Instant>,
    /// Compared with the directory since the last (re)connect.
    verified: bool,
    /// Compressed size of its last replica written.
    replica_bytes: u64,
}

struct Agent {
    start: AgentStart,
    endpoint: Endpoint,
    conn: Option<Connection>,
    /// Since when the connection has been up without a failure.
    up_since: Option<Instant>,
    shards: Vec<ShardState>,
    owned: HashMap<InstanceId, Owned>,
    /// Local instances found owned by a node that is not live (yet): looked
    /// at again each heartbeat until the directory settles who has them.
    contested: HashMap<InstanceId, String>,
    /// Instances whose players a shard is handing to their owner, since when.
    handing: HashMap<InstanceId, Instant>,
    /// Hand-over messages not yet heard by the owner (retried each beat).
    handovers_unsent: Vec<(HandOver, Instant)>,
    /// Live nodes, as of the last heartbeat.
    fleet: Vec<NodeInfo>,
    /// Seats written: token → (instance, when).
    seats: HashMap<String, (InstanceId, Instant)>,
    /// Seats that ended here: token → (instance, when). A replica captured
    /// before the end must not write them back.
    ended: HashMap<String, (InstanceId, Instant)>,
    replicas: ReplicaQueue,
    /// Stopping shards waiting for the node to leave the directory.
    leaving: Vec<Reply<bool>>,
    /// The node left the directory (stopping): no more registrations.
    left: bool,
    /// The fleet ordered a drain or an evacuation (before any shard says so).
    ordered_drain: bool,
    /// The registry entry as last written, and when.
    published: Option<(Published, Instant)>,
    to_shards: Vec<MailboxSender<ToShard>>,
    metrics: Arc<DirectoryMetrics>,
    rates: OpRates,
}

pub(super) fn spawn(
    endpoint: Endpoint,
    start: AgentStart,
    rx: Receiver<ToAgent>,
    to_shards: Vec<MailboxSender<ToShard>>,
    metrics: Arc<DirectoryMetrics>,
) -> anyhow::Result<()> {
    let shards = (0..start.shards)
        .map(|_| ShardState {
            capacity: start.capacity / start.shards.max(1),
            ..Default::default()
        })
        .collect();
    let replicas = ReplicaQueue::new(start.cfg.replica_writes_per_s_max, Instant::now());
    let mut agent = Agent {
        start,
        endpoint,
        conn: None,
        up_since: None,
        shards,
        owned: HashMap::new(),
        contested: HashMap::new(),
        handing: HashMap::new(),
        handovers_unsent: Vec::new(),
        fleet: Vec::new(),
        seats: HashMap::new(),
        ended: HashMap::new(),
        replicas,
        leaving: Vec::new(),
        left: false,
        ordered_drain: false,
        published: None,
        to_shards,
        metrics,
        rates: OpRates::default(),
    };
    std::thread::Builder::new()
        .name("directory".into())
        .spawn(move || agent.run(rx))?;
    Ok(())
}

type RResult<T> = redis::RedisResult<T>;

impl Agent {
    fn run(&mut self, rx: Receiver<ToAgent>) {
        let heartbeat = self.start.cfg.heartbeat;
        let mut next_beat = Instant::now();
        let mut next_flush = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_beat {
                self.beat();
                next_beat = Instant::now() + heartbeat;
            }
            if now >= next_flush {
                self.flush_replicas();
                next_flush = Instant::now() + FLUSH_INTERVAL;
            }
            let mut wake = if self.replicas.is_empty() {
                next_beat
            } else {
                next_beat.min(next_flush)
            };
            wake = wake.min(now + PUBLISH_POLL);
            let wait = wake.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return, // the node stopped
            }
            for _ in 0..MESSAGES_PER_BEAT_CHECK {
                match rx.try_recv() {
                    Ok(msg) => self.handle(msg),
                    Err(_) => break,
                }
            }
            self.publish_if_changed();
        }
    }

    fn me(&self) -> &str {
        &self.start.node_id
    }

    /// Runs `f` (`n` Redis commands of kind `op`) on the connection; a
    /// failure drops it (counted, logged once per outage) so the next
    /// heartbeat reconnects — through the sentinels, to whichever server is
    /// the primary by then (a `READONLY` error from a demoted primary
    /// included).
    fn redis<T>(
        &mut self,
        op: Op,
        n: u64,
        f: impl FnOnce(&mut Connection) -> RResult<T>,
    ) -> Option<T> {
        let conn = self.conn.as_mut()?;
        self.metrics.ops.add(op, n);
        match f(conn) {
            Ok(v) => Some(v),
            Err(e) => {
                self.metrics.errors.inc();
                self.metrics.up.set(0);
                self.conn = None;
                self.up_since = None;
                tracing::warn!(error = %e, what = op.name(), "directory (Redis) unreachable; games go on, directory requests are refused until it returns");
                None
            }
        }
    }

    fn connect(&mut self) {
        if self.conn.is_some() {
            return;
        }
        match self.endpoint.connect(REDIS_TIMEOUT) {
            Ok(c) => {
                self.conn = Some(c);
                self.up_since = Some(Instant::now());
                // This may be another server than before (a promoted
                // replica) or the same one restarted empty: what it holds
                // of our claims, replicas and seats is checked or written
                // again — claims re-validated before we act as their owner.
                for o in self.owned.values_mut() {
                    o.verified = false;
                }
                self.replicas.reset_written();
                self.seats.clear();
                self.metrics.up.set(1);
                self.metrics.reconnects.inc();
                tracing::info!(url = %super::redacted(&self.start.cfg.url), claims = self.owned.len(), "directory connected; registering and re-validating claims");
            }
            Err(e) => {
                self.metrics.errors.inc();
                tracing::debug!(error = %e, "directory still unreachable");
            }
        }
    }

    // ------------------------------------------------------------ heartbeat

    fn beat(&mut self) {
        self.rates.sample(&self.metrics.ops, Instant::now());
        if self.left {
            return;
        }
        self.connect();
        if self.conn.is_none() {
            return;
        }
        if !self.register() {
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
        self.revalidate();
        self.recheck_contested();
        self.resend_handovers();
        self.release_stale_claims();
        let now = Instant::now();
        self.handing
            .retain(|_, since| now.saturating_duration_since(*since) < HANDOVER_TIMEOUT * 2);
        let seat_ttl = self.seat_ttl();
        self.ended
            .retain(|_, (_, t)| now.saturating_duration_since(*t) < seat_ttl);
    }

    /// Writes this node's registry entry (with its TTL). False when the
    /// directory could not be reached.
    fn register(&mut self) -> bool {
        let figures = self.figures();
        let info = self.info_of(figures);
        let ttl_ms = self.start.cfg.ttl.as_millis() as u64;
        let body = serde_json::to_string(&info).expect("NodeInfo serialises");
        let (id, region) = (self.me().to_owned(), self.start.region.clone());
        let ok = self.redis(Op::Register, 2, |c| {
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
        if ok.is_some() {
            self.published = Some((Published::of(&figures), Instant::now()));
        }
        ok.is_some()
    }

    /// Between heartbeats: publishes at once when the node filled up, has
    /// room again, started draining or its load moved by a step — at most
    /// once per [`PUBLISH_GAP_MIN`], and only once registered by a
    /// heartbeat (never while leaving or disconnected).
    fn publish_if_changed(&mut self) {
        let Some((last, at)) = self.published else {
            return;
        };
        if self.left || self.conn.is_none() || at.elapsed() < PUBLISH_GAP_MIN {
            return;
        }
        // Every 25 ms: figures only, no entry built unless it is written.
        let now = self.figures();
        if last.differs(&Published::of(&now), now.capacity) {
            self.metrics.publishes_early.inc();
            self.register();
        }
    }

    fn figures(&self) -> Figures {
        let reported = self.shards.iter().filter(|s| s.reported);
        let (mut load, mut instances, mut draining, mut shedding) = (0, 0, false, false);
        let mut capacity = None;
        for s in reported {
            load += s.players;
            instances += s.instances.len();
            draining |= s.draining;
            shedding |= s.shedding;
            // Every shard reports the node's one admission limit.
            capacity = Some(s.capacity);
        }
        // Connections are counted the moment they are admitted; the shards'
        // figures come with their next report.
        Figures {
            load: load.max((self.start.open_connections)()),
            instances,
            capacity: capacity.unwrap_or(self.start.capacity),
            draining: draining || self.ordered_drain,
            healthy: !shedding,
        }
    }

    fn info_of(&self, f: Figures) -> NodeInfo {
        NodeInfo {
            id: self.start.node_id.clone(),
            region: self.start.region.clone(),
            location: self.start.cfg.location.clone(),
            url: self.start.public_url.clone(),
            shards: self.start.shards,
            capacity: f.capacity,
            load: f.load,
            instances: f.instances,
            healthy: f.healthy,
            draining: f.draining,
        }
    }

    /// A shard reported draining (or stopping): it creates nothing new.
    fn draining(&self) -> bool {
        self.shards.iter().any(|s| s.draining || s.left)
    }

    /// Reads every registered node; keeps the live ones as the fleet view
    /// and returns the dead ones (id, region, whether it said it left).
    fn read_fleet(&mut self) -> Option<Vec<(String, String, bool)>> {
        let all: HashMap<String, String> =
            self.redis(Op::ReadFleet, 1, |c| c.hgetall(keys::NODES))?;
        let ids: Vec<&String> = all.keys().collect();
        if ids.is_empty() {
            self.fleet.clear();
            return Some(Vec::new());
        }
        let node_keys: Vec<String> = ids.iter().map(|id| keys::node(id)).collect();
        let values: Vec<Option<String>> = self.redis(Op::ReadFleet, 1, |c| {
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

    /// How long a claim may wait to show up in a shard report: a handshake
    /// (connect timeout) then a Join, then a report or two.
    fn claim_grace(&self) -> Duration {
        self.start.connect_timeout + self.start.report_interval * 4
    }

    fn is_local(&self, id: &InstanceId) -> bool {
        self.shards.iter().any(|s| s.instances.contains(id))
    }

    // ------------------------------------------------------------- requests

    fn handle(&mut self, msg: ToAgent) {
        match msg {
            ToAgent::Report(r) => self.on_report(r),
            ToAgent::Draining => {
                self.ordered_drain = true;
                // Shown at once (the gap rule is for load changes).
                if self.published.is_some() && !self.left && self.conn.is_some() {
                    self.register();
                }
            }
            ToAgent::Place {
                instance,
                create_here,
                reply,
            } => {
                let answer = self.place(instance, create_here);
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
            ToAgent::SeatEnded { token, instance } => self.seat_ended(token, instance),
            ToAgent::Transfer(r) => self.transfer(r),
            ToAgent::Reserved(r) => self.reserved(r),
            ToAgent::HandOver(h) => self.send_handover(h, Instant::now()),
            ToAgent::HandedOver(r) => self.handed_over(r),
            ToAgent::Evacuating(h) => self.evacuate_out(h),
            ToAgent::Adopt(offer) => self.adopt(offer),
            ToAgent::Mail { to, mail } => self.forward_mail(to, mail),
            ToAgent::MoveDone { move_id, outcome } => {
                let key = keys::move_result(&move_id);
                let line = outcome.to_string();
                let _ = self.redis(Op::MoveOutcome, 2, |c| {
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

    /// A game's message to an instance this node does not run: published
    /// to its owner's channel, once; dropped (counted) when nobody owns it,
    /// this node does (it is gone here), or Redis does not answer.
    fn forward_mail(&mut self, to: InstanceId, mail: crate::game::InstanceMail) {
        use base64::Engine;
        let owner: Option<Option<String>> =
            self.redis(Op::Route, 1, |c| c.get(keys::instance(&to)));
        let Some(Some(owner)) = owner else {
            self.metrics.instance_mail_dropped.inc();
            return;
        };
        if owner == self.me() {
            self.metrics.instance_mail_dropped.inc();
            return;
        }
        let msg = FleetMsg::Mail {
            to: to.as_str().to_owned(),
            from: mail.from.as_str().to_owned(),
            message_kind: mail.kind,
            body: base64::engine::general_purpose::STANDARD.encode(&mail.body),
        };
        match self.publish(&owner, &msg) {
            Some(heard) if heard > 0 => self.metrics.instance_mail_sent.inc(),
            _ => self.metrics.instance_mail_dropped.inc(),
        }
    }

    /// Publishes `msg` on node `node`'s channel; how many heard it.
    fn publish(&mut self, node: &str, msg: &FleetMsg) -> Option<i64> {
        let channel = keys::node_control(node);
        let body = serde_json::to_string(msg).expect("a fleet message serialises");
        self.redis(Op::Publish, 1, |c| c.publish(&channel, body))
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
        // A draining node claims nothing new: the target must run somewhere.
        let create_here = !self.draining();
        match self.owner_of(id.clone(), create_here) {
            Placement::Mine => {
                let ev = ToShard::TransferLocal {
                    move_id: r.move_id.clone(),
                    to: id,
                    create: r.create,
                };
                send_to_shard(&self.to_shards, shard, ev, &self.metrics);
            }
            Placement::Vacant => fail(
                self,
                format!(
                    "node {} is draining and no node runs instance {id}",
                    self.me()
                ),
            ),
            Placement::Owner { node, .. } => {
                match self.publish(&node, &FleetMsg::Reserve(r.clone())) {
                    Some(n) if n > 0 => {}
                    Some(_) => fail(
                        self,
                        format!("node {node}, which owns instance {id}, is not listening"),
                    ),
                    None => fail(self, "the directory is unavailable; retry shortly".into()),
                }
            }
            Placement::Unavailable(why) => fail(self, why),
        }
    }

    /// A stopping shard's final report: replicated at once. When every
    /// shard's is in, the registration goes (the node looks dead to its
    /// region, which takes its instances over from these replicas) and the
    /// shards are told. Without Redis they are told at once that the node
    /// could not leave: the region takes over after the TTL.
    fn leave(&mut self, report: ShardReport, reply: Reply<bool>) {
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
        // The final state goes out whatever the budget: it is written once.
        self.flush_all_replicas();
        let key = keys::node(self.me());
        let marker = left_marker(self.me());
        let ttl_ms = self.start.cfg.ttl.as_millis() as u64;
        let gone = self.redis(Op::Register, 1, |c| {
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
        self.ended.remove(&token);
        if self.conn.is_none() {
            return;
        }
        let ttl = self.seat_ttl();
        let key = keys::seat(&token);
        let value = instance.as_str().to_owned();
        let written = self.redis(Op::Seat, 1, |c| {
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

    /// A seat ended here: its record goes (if it still points at this
    /// node's instance), and no replica captured before writes it back.
    fn seat_ended(&mut self, token: String, instance: InstanceId) {
        self.seats.remove(&token);
        self.ended
            .insert(token.clone(), (instance.clone(), Instant::now()));
        let me = self.me().to_owned();
        let deleted: Option<i64> = self.redis(Op::SeatEnd, 1, |c| {
            redis::cmd("EVAL")
                .arg(super::fence::SEAT_END)
                .arg(2)
                .arg(keys::seat(&token))
                .arg(keys::instance(&instance))
                .arg(instance.as_str())
                .arg(&me)
                .query(c)
        });
        if deleted == Some(1) {
            self.metrics.seats_ended.inc();
        }
    }

    /// This node reserved (or refused) a seat for another node's player
    /// (the seat itself was recorded when the shard made it): answer.
    fn reserved(&mut self, r: Reserved) {
        let node = r.node.clone();
        let _ = self.publish(&node, &FleetMsg::Reserved(r));
    }

    /// This node took (or refused) the seats another node handed over.
    fn handed_over(&mut self, r: HandedOver) {
        let node = r.to_node.clone();
        let _ = self.publish(&node, &FleetMsg::HandedOver(r));
    }

    /// How long a seat record lives in the directory unless its owner
    /// writes it again (at half this age, with a replica).
    fn seat_ttl(&self) -> Duration {
        ((self.start.reconnect_grace + self.start.cfg.ttl) * 2).max(SEAT_RECORD_TTL_MIN)
    }

    /// A live node's URL (the fleet view, else Redis for a node that
    /// registered since the last heartbeat).
    fn node_url(&mut self, node: &str) -> Option<String> {
        if let Some(n) = self.fleet.iter().find(|n| n.id == node) {
            return Some(n.url.clone());
        }
        let v: Option<String> = self
            .redis(Op::ReadFleet, 1, |c| c.get(keys::node(node)))
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
                    self.redis(Op::Route, 1, |c| c.get(keys::instance(&id)));
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
            .redis(Op::FindSeat, 1, |c| c.get(keys::seat(token)))
            .flatten();
        let Some(id) = instance.and_then(|i| InstanceId::parse(&i).ok()) else {
            return SeatAt::Nowhere;
        };
        let owner: Option<String> = self
            .redis(Op::FindSeat, 1, |c| c.get(keys::instance(&id)))
            .flatten();
        match owner {
            None => SeatAt::Nowhere,
            Some(owner) if owner == self.me() => {
                // Ours. A seat that ended here is gone (its record is
                // deleted when it ends; this covers a deletion that failed).
                // Otherwise the shard may have it by now: the instance is
                // being rebuilt here (claimed in a take-over, not yet
                // reported), or was rebuilt since the shard asked.
                let ended = self.ended.get(token).is_some_and(|(i, _)| *i == id);
                let rebuilding = self.owned.get(&id).is_some_and(|o| o.claimed_at.is_some());
                if !ended && (rebuilding || self.is_local(&id)) {
                    SeatAt::Here
                } else {
                    SeatAt::Nowhere
                }
            }
            Some(owner) => self.node_url(&owner).map_or(SeatAt::Nowhere, SeatAt::Node),
        }
    }

    // -------------------------------------------------------------- reports

    fn on_report(&mut self, r: ShardReport) {
        let shard = r.shard;
        let s = &mut self.shards[shard];
        s.reported = true;
        s.players = r.players;
        s.capacity = r.capacity;
        s.draining = r.draining;
        s.shedding = r.shedding;
        s.instances = r.instances.into_iter().collect();
        let local: Vec<InstanceId> = s.instances.iter().cloned().collect();
        if self.conn.is_none() {
            return;
        }
        for id in local {
            match self.owned.get_mut(&id) {
                Some(o) => o.claimed_at = None,
                None if self.handing.contains_key(&id) || self.contested.contains_key(&id) => {}
                None => {
                    // Created without a claim (a Join for a new instance
                    // mid-session), or restored from local snapshot files:
                    // claim now. Another node's claim wins: the shard hands
                    // the players over (see `lost`).
                    if let Claim::Unavailable(_) = self.place(id, true) {
                        return;
                    }
                }
            }
        }
        if let Some(snaps) = r.snapshots {
            self.offer_replicas(snaps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(load: usize, has_room: bool, draining: bool) -> Published {
        Published {
            load,
            has_room,
            draining,
            healthy: true,
        }
    }

    #[test]
    fn a_change_that_matters_to_routing_is_published_before_the_heartbeat() {
        let capacity = 40; // a step of 40 / 16 = 2 players
        let last = shown(30, true, false);
        assert!(
            !last.differs(&shown(31, true, false), capacity),
            "one player: wait for the beat"
        );
        assert!(
            last.differs(&shown(32, true, false), capacity),
            "a step of load"
        );
        assert!(
            last.differs(&shown(28, true, false), capacity),
            "a step down too"
        );
        assert!(
            shown(39, true, false).differs(&shown(40, false, false), capacity),
            "the node filled up"
        );
        assert!(
            shown(40, false, false).differs(&shown(39, true, false), capacity),
            "room again"
        );
        assert!(last.differs(&shown(30, true, true), capacity), "draining");
        assert!(
            shown(0, true, false).differs(&shown(1, true, false), 8),
            "a step is at least one player"
        );
    }
}
