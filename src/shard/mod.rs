//! A shard: one glommio executor pinned to one core, owning its listener,
//! connections, buffer pool, game instances and metrics.
//!
//! # Layout
//! - [`mesh`]: `ShardMsg`, the only thing shards send each other.
//! - [`world`]: the shard's instances, players and tokens.
//! - [`players`]: what a client message does to the world.
//! - [`moves`]: moving a connection to another shard mid-session, resume
//!   look-ups, disconnects, and the other mesh messages about players.
//! - [`stats`]: the shard's figures, instance inspection, load shedding.
//! - [`tick`]: the fixed-step tick and the slower sweeps (heartbeats,
//!   expired seats, idle instances).
//! - [`snapshots`]: capturing, writing and restoring the shard's instances.
//! - [`runtime`]: starting the executor and its tasks, and shutting down.

pub mod mesh;
pub mod moves;
pub mod players;
pub mod runtime;
pub mod snapshots;
pub mod stats;
pub mod tick;
pub mod world;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use glommio::channels::local_channel::{self, LocalSender};
use glommio::TaskQueueHandle;

use crate::auth::replay::UsedTickets;
use crate::config::Config;
use crate::game::GameFactory;
use crate::metrics::report::ShardStats;
use crate::metrics::ShardMetrics;
use crate::net::admission::ConnectionBudget;
use crate::net::buffers::BufferPool;
use crate::net::conn::{Conn, ConnId};
use crate::protocol::{Encoder, LimitsInfo};
use crate::shard::mesh::{InstanceDetail, RuntimeSettings, ShardMsg};
use crate::shard::world::World;
use crate::snapshot::SnapshotStore;

/// What every shard of a node is given at start-up (read-only afterwards,
/// except the budget's atomic counter).
#[derive(Clone)]
pub struct NodeShared {
    pub cfg: Arc<Config>,
    pub budget: ConnectionBudget,
    pub factory: Arc<dyn GameFactory>,
    /// The snapshot directory, when it could be opened for writing.
    pub snapshots: Option<SnapshotStore>,
    /// Shards that have written a snapshot since start (for retiring the
    /// files of shards a previous, larger run left).
    pub shards_snapshotted: Arc<AtomicUsize>,
    /// With --join-secret: the HMAC key join tickets are signed with.
    pub join_secret: Option<Arc<[u8]>>,
    /// Nonces of the tickets already used on this node.
    pub used_tickets: UsedTickets,
    /// With --directory: the fleet's directory (Redis, via the agent thread).
    pub directory: Option<crate::directory::Directory>,
}

/// Messages queued for other shards beyond what their channel holds right
/// now. Bounded: past it, a message is dropped and counted.
const MESH_OUTBOX_CAPACITY: usize = 4096;

/// Pending resume-token look-ups on other shards, per asking connection.
struct SeatLookup {
    replies_missing: usize,
    /// The token asked about (for the fleet directory when no shard has it).
    token: String,
}

/// The shard's task queues: latency classes made explicit.
#[derive(Clone, Copy)]
pub struct Queues {
    /// The tick: runs first when due.
    pub tick: TaskQueueHandle,
    /// Socket I/O: accept, handshakes, sessions, mesh.
    pub io: TaskQueueHandle,
    /// Sweeps, heartbeats, and (later) snapshots and admin: never delay a tick.
    pub background: TaskQueueHandle,
}

pub struct Shard {
    pub id: usize,
    pub queues: Queues,
    pub shards: usize,
    pub node: NodeShared,
    pub metrics: ShardMetrics,
    pub world: RefCell<World>,
    pub pool: RefCell<BufferPool>,
    /// One encoder for every server message this shard sends (reused; no
    /// allocation per message once warm).
    pub enc: RefCell<Encoder>,
    /// Live /play connections (heartbeats, shutdown).
    pub conns: RefCell<HashMap<ConnId, Rc<Conn>>>,
    next_conn_id: Cell<ConnId>,
    /// Set when shutdown or a drain begins: place nobody new.
    pub draining: Cell<bool>,
    /// --handshakes-per-ip-per-s, when set.
    pub handshake_limiter: Option<RefCell<crate::net::ratelimit::HandshakeLimiter>>,
    /// Set when shutdown begins: greet nobody new.
    pub stopping: Cell<bool>,
    /// Set while overloaded (late ticks, CPU over the threshold): new
    /// players are refused until the shard recovers.
    pub shedding: Cell<bool>,
    /// Settings that POST /config may change.
    pub settings: Cell<RuntimeSettings>,
    pub sampler: RefCell<stats::Sampler>,
    /// Admin requests waiting for other shards' replies (shard 0 only).
    pub admin_pending: RefCell<HashMap<u64, LocalSender<AdminReply>>>,
    next_admin_req: Cell<u64>,
    /// This shard has written a snapshot since start.
    pub wrote_snapshot: Cell<bool>,
    /// A snapshot is being captured or written now.
    pub snapshot_writing: Cell<bool>,
    /// When the next tick is due (set by the tick loop after each tick;
    /// `None` before the first). Snapshot capture works in the gaps.
    pub next_tick_at: Cell<Option<Instant>>,
    mesh_out: LocalSender<Outgoing>,
    lookups: RefCell<HashMap<ConnId, SeatLookup>>,
    /// Joins waiting for the fleet directory to say who owns their instance
    /// (with --directory; bounded by `directory::link::PENDING_JOINS_MAX`).
    pub directory_pending: RefCell<std::collections::VecDeque<crate::directory::link::Pending>>,
    /// `shardline fleet move`s this shard is running, by move id (bounded
    /// by `directory::transfer::TRANSFERS_PER_SHARD_MAX`).
    pub transfers: RefCell<HashMap<String, crate::directory::transfer::Transfer>>,
    /// An evacuation's hand-overs (with --directory; bounded by
    /// `directory::handover::HANDOVERS_PER_SHARD_MAX`).
    pub handovers: RefCell<crate::directory::handover::Handovers>,
    rng: Cell<u64>,
    pub started_at: Instant,
}

impl Shard {
    fn new(id: usize, node: NodeShared, queues: Queues, mesh_out: LocalSender<Outgoing>) -> Self {
        let cfg = node.cfg.clone();
        let mut seed = [0u8; 8];
        // A failing OS random source is not recoverable at start-up.
        getrandom::fill(&mut seed).expect("OS random source");
        Self {
            id,
            queues,
            shards: cfg.shards(),
            metrics: ShardMetrics::default(),
            world: RefCell::new(World::default()),
            pool: RefCell::new(BufferPool::new(
                cfg.buffers_per_shard,
                cfg.write_buffer_bytes,
            )),
            enc: RefCell::new(Encoder::new()),
            conns: RefCell::new(HashMap::new()),
            next_conn_id: Cell::new(((id as u64) << 48) | 1),
            draining: Cell::new(false),
            stopping: Cell::new(false),
            handshake_limiter: (cfg.handshakes_per_ip_per_s > 0).then(|| {
                RefCell::new(crate::net::ratelimit::HandshakeLimiter::new(
                    cfg.handshakes_per_ip_per_s,
                ))
            }),
            shedding: Cell::new(false),
            settings: Cell::new(RuntimeSettings {
                heartbeat: cfg.heartbeat,
                players_per_instance_max: cfg.players_per_instance_max,
            }),
            sampler: RefCell::new(stats::Sampler::new()),
            admin_pending: RefCell::new(HashMap::new()),
            next_admin_req: Cell::new(1),
            wrote_snapshot: Cell::new(false),
            snapshot_writing: Cell::new(false),
            next_tick_at: Cell::new(None),
            mesh_out,
            lookups: RefCell::new(HashMap::new()),
            directory_pending: RefCell::new(Default::default()),
            transfers: RefCell::new(HashMap::new()),
            handovers: RefCell::new(Default::default()),
            rng: Cell::new(u64::from_le_bytes(seed) | 1),
            started_at: Instant::now(),
            node,
        }
    }

    pub fn cfg(&self) -> &Config {
        &self.node.cfg
    }

    pub fn next_conn_id(&self) -> ConnId {
        let id = self.next_conn_id.get();
        self.next_conn_id.set(id + 1);
        id
    }

    /// Fast non-cryptographic randomness (instance ids, player ids).
    /// Resume tokens use the OS source instead.
    pub fn next_u64(&self) -> u64 {
        // xorshift64*
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Queues a message for shard `to` (never self). Order per destination
    /// is kept; if even the local outbox is full the message is dropped and
    /// counted, since blocking here would stall the tick.
    pub fn send_mesh(&self, to: usize, msg: ShardMsg) {
        assert_ne!(to, self.id, "a shard never messages itself");
        if self.mesh_out.try_send((to, msg)).is_err() {
            self.metrics.mesh_dropped.inc();
            tracing::warn!(shard = self.id, to, "mesh outbox full; message dropped");
        }
    }

    pub fn limits_info(&self) -> LimitsInfo {
        let cfg = self.cfg();
        LimitsInfo {
            max_payload_bytes: cfg.max_payload_bytes as u32,
            inputs_per_tick_max: cfg.inputs_per_tick_max as u16,
            players_per_instance_max: cfg.players_per_instance_max as u16,
            heartbeat_ms: cfg.heartbeat.as_millis() as u32,
            connect_timeout_ms: cfg.connect_timeout.as_millis() as u32,
            reconnect_grace_ms: cfg.reconnect_grace.as_millis() as u32,
        }
    }
}

/// A reply to an admin request, from another shard.
#[derive(Debug)]
pub enum AdminReply {
    Stats(Box<ShardStats>),
    Instance(Option<Box<InstanceDetail>>),
}

impl Shard {
    pub fn next_admin_req(&self) -> u64 {
        let r = self.next_admin_req.get();
        self.next_admin_req.set(r + 1);
        r
    }

    fn deliver_admin_reply(&self, req: u64, reply: AdminReply) {
        if let Some(tx) = self.admin_pending.borrow().get(&req) {
            // The requester waits for as many replies as it asked; a late
            // reply after its timeout finds the channel gone and is dropped.
            let _ = tx.try_send(reply);
        }
    }

    /// Admin and control messages from other shards.
    pub(crate) fn on_admin_mesh(&self, msg: ShardMsg) {
        match msg {
            ShardMsg::StatsRequest {
                req,
                from,
                with_instances,
            } => {
                let stats = Box::new(self.stats(with_instances));
                self.send_mesh(from, ShardMsg::StatsReply { req, stats });
            }
            ShardMsg::StatsReply { req, stats } => {
                self.deliver_admin_reply(req, AdminReply::Stats(stats))
            }
            ShardMsg::InstanceRequest {
                req,
                from,
                instance,
            } => {
                let detail = self.instance_detail(&instance).map(Box::new);
                self.send_mesh(from, ShardMsg::InstanceReply { req, detail });
            }
            ShardMsg::InstanceReply { req, detail } => {
                self.deliver_admin_reply(req, AdminReply::Instance(detail))
            }
            ShardMsg::Configure(settings) => self.settings.set(settings),
            ShardMsg::Drain => self.draining.set(true),
            other => unreachable!("not an admin message: {other:?}"),
        }
    }
}

/// A mesh message and the shard it goes to.
type Outgoing = (usize, ShardMsg);

/// Creates the outbox channel a shard uses for mesh sends.
pub(crate) fn mesh_outbox() -> (
    LocalSender<Outgoing>,
    local_channel::LocalReceiver<Outgoing>,
) {
    local_channel::new_bounded(MESH_OUTBOX_CAPACITY)
}
