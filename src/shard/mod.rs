//! A shard: one glommio executor pinned to one core, owning its listener,
//! connections, buffer pool, game instances and metrics.
//!
//! # Layout
//! - [`mesh`]: `ShardMsg`, the only thing shards send each other.
//! - [`world`]: the shard's instances, players and tokens.
//! - [`players`]: what a client message or a mesh message does to the world.
//! - [`tick`]: the fixed-step tick and the slower sweeps (heartbeats,
//!   expired seats, idle instances).
//! - [`runtime`]: starting the executor and its tasks, and shutting down.

pub mod mesh;
pub mod players;
pub mod runtime;
pub mod tick;
pub mod world;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use glommio::channels::local_channel::{self, LocalSender};
use glommio::TaskQueueHandle;

use crate::config::Config;
use crate::game::GameFactory;
use crate::metrics::ShardMetrics;
use crate::net::admission::ConnectionBudget;
use crate::net::buffers::BufferPool;
use crate::net::conn::{Conn, ConnId};
use crate::protocol::{Encoder, LimitsInfo};
use crate::shard::mesh::ShardMsg;
use crate::shard::world::World;

/// What every shard of a node is given at start-up (read-only afterwards,
/// except the budget's atomic counter).
#[derive(Clone)]
pub struct NodeShared {
    pub cfg: Arc<Config>,
    pub budget: ConnectionBudget,
    pub factory: Arc<dyn GameFactory>,
}

/// Messages queued for other shards beyond what their channel holds right
/// now. Bounded: past it, a message is dropped and counted.
const MESH_OUTBOX_CAPACITY: usize = 4096;

/// Pending resume-token look-ups on other shards, per asking connection.
struct SeatLookup {
    replies_missing: usize,
    /// Sent back in the Migrate that points the client at the seat.
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
    /// Set when shutdown begins: accept nothing new, place nobody new.
    pub draining: Cell<bool>,
    mesh_out: LocalSender<(usize, ShardMsg)>,
    lookups: RefCell<HashMap<ConnId, SeatLookup>>,
    rng: Cell<u64>,
    pub started_at: Instant,
}

impl Shard {
    fn new(
        id: usize,
        node: NodeShared,
        queues: Queues,
        mesh_out: LocalSender<(usize, ShardMsg)>,
    ) -> Self {
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
            mesh_out,
            lookups: RefCell::new(HashMap::new()),
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

/// Creates the outbox channel a shard uses for mesh sends.
pub(crate) fn mesh_outbox() -> (
    LocalSender<(usize, ShardMsg)>,
    local_channel::LocalReceiver<(usize, ShardMsg)>,
) {
    local_channel::new_bounded(MESH_OUTBOX_CAPACITY)
}
