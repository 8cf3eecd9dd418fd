//! One shard's executor and its tasks: where the pure core (`shard`) meets
//! the I/O driver (`net::driver`), the mesh, the directory and the clock.
//!
//! # Layout
//! - [`start`]: starting the executor, its tasks by latency class, the
//!   slot loop, the sweeps, and the shutdown gate.
//! - [`accept`]: the listener: admission, the upgrade request, routing to
//!   the owning shard, the upgrade itself; pages and `/v1/*` answers.
//! - [`echo`]: the `/echo` endpoint.
//! - [`snapshots`]: capturing in slices between slots, writing off-thread.
//! - [`directory`]: the shard's link to the fleet directory: reports,
//!   events, look-ups.
//! - [`fleet_http`]: `/v1/route`, `/v1/regions`, and the redirect of a
//!   `/play?instance=` another node owns.
//! - [`watchdog`]: the thread that finds a stuck shard, takes its listener
//!   out of the SO_REUSEPORT group and reports it.
//!
//! Every call into the core goes through [`Shard::with_core`], which hands
//! it the driver as its effects sink and afterwards passes on what the core
//! asked of others (mesh, directory, sockets moving away) and tells it
//! about connections that ended meanwhile — until nothing is left — then
//! writes.

pub mod accept;
pub mod directory;
pub mod echo;
pub mod fleet_http;
pub mod snapshots;
pub mod start;
pub mod watchdog;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use glommio::channels::local_channel::{self, LocalSender};
use glommio::TaskQueueHandle;

use crate::config::Config;
use crate::metrics::report::ShardStats;
use crate::metrics::ShardMetrics;
use crate::net::admission::{ConnPermit, ConnectionBudget};
use crate::net::driver::Driver;
use crate::shard::effects::Ask;
use crate::shard::mesh::InstanceDetail;
use crate::shard::{ConnId, Core, CoreShared, ShardMsg};
use crate::snapshot::SnapshotStore;

/// What every shard of a node is given at start-up (read-only afterwards,
/// except the budget's atomic counter).
#[derive(Clone)]
pub struct NodeShared {
    pub core: CoreShared,
    pub budget: ConnectionBudget,
    /// The snapshot directory, when it could be opened for writing.
    pub snapshots: Option<SnapshotStore>,
    /// Shards that have written a snapshot since start (for retiring the
    /// files of shards a previous, larger run left).
    pub shards_snapshotted: Arc<AtomicUsize>,
    /// With --directory: the fleet's directory (Redis, via the agent thread).
    pub directory: Option<crate::directory::Directory>,
    /// Every shard's progress, for the watchdog and the admin endpoint.
    pub beats: Arc<crate::util::heartbeat::Beats>,
}

/// What travels on the mesh: the cores' messages, and sockets.
#[derive(Debug)]
pub enum MeshMsg {
    Core(ShardMsg),
    /// A raw socket accepted elsewhere whose upgrade request names an
    /// instance this shard owns. `head` holds every byte already read from
    /// it (the request head and anything pipelined after it).
    HandOff {
        fd: OwnedFd,
        head: Vec<u8>,
        accepted_at: Instant,
        permit: ConnPermit,
    },
    /// An upgraded /play connection moving here mid-session, paused right
    /// after a complete message: `unread` holds the bytes read from the
    /// socket after it (the rest is still in the kernel). The player's seat
    /// is already here.
    Adopt {
        fd: OwnedFd,
        unread: Vec<u8>,
        accepted_at: Instant,
        permit: Option<ConnPermit>,
        player: crate::game::PlayerId,
        /// A resume (Welcome{resumed} + Joined) rather than a Join (Joined).
        resume: bool,
    },
}

/// Messages queued for other shards beyond what their channel holds right
/// now. Bounded: past it, a message is dropped and counted.
const MESH_OUTBOX_CAPACITY: usize = 4096;

/// The shard's task queues: latency classes made explicit.
#[derive(Clone, Copy)]
pub struct Queues {
    /// The slot loop: runs first when due.
    pub tick: TaskQueueHandle,
    /// Accept, handshakes, mesh, directory answers.
    pub io: TaskQueueHandle,
    /// Sweeps, heartbeats, snapshots, admin: never delay a slot.
    pub background: TaskQueueHandle,
}

/// A reply to an admin request, from another shard.
#[derive(Debug)]
pub enum AdminReply {
    Stats(Box<ShardStats>),
    Instance(Option<Box<InstanceDetail>>),
}

/// One shard's runtime context, shared by its tasks (one thread; `Rc`).
pub struct Shard {
    pub id: usize,
    pub shards: usize,
    pub queues: Queues,
    pub node: NodeShared,
    pub metrics: Rc<ShardMetrics>,
    pub core: RefCell<Core>,
    pub driver: RefCell<Driver>,
    /// Admin requests waiting for other shards' replies (shard 0 only).
    pub admin_pending: RefCell<HashMap<u64, LocalSender<AdminReply>>>,
    next_admin_req: Cell<u64>,
    /// This shard has written a snapshot since start.
    pub wrote_snapshot: Cell<bool>,
    /// A snapshot is being captured or written now.
    pub snapshot_writing: Cell<bool>,
    /// Set when shutdown begins (captures need not wait for slot room).
    pub stopping: Cell<bool>,
    mesh_out: LocalSender<Outgoing>,
    /// The accept loop on the shard's current listener (a new one after
    /// the watchdog took the old one out and the shard recovered).
    pub accept_task: RefCell<Option<glommio::Task<()>>>,
    /// --handshakes-per-ip-per-s, when set.
    pub handshake_limiter: Option<RefCell<crate::net::ratelimit::HandshakeLimiter>>,
    pub started_at: Instant,
}

impl Shard {
    pub fn cfg(&self) -> &Config {
        &self.node.core.cfg
    }

    /// Whether this shard may create (and so claim) instances now.
    pub fn may_create_instances(&self) -> bool {
        self.core.borrow().may_create_instances()
    }

    /// Runs `f` on the core with the driver as its effects sink, then
    /// settles: passes on what the core asked (mesh, directory, look-ups,
    /// sockets leaving), tells it about connections that ended, repeats
    /// until nothing is left, and writes.
    pub fn with_core<R>(
        self: &Rc<Self>,
        now: Instant,
        f: impl FnOnce(&mut Core, &mut Driver) -> R,
    ) -> R {
        let mut core = self.core.borrow_mut();
        let mut driver = self.driver.borrow_mut();
        driver.set_now(now);
        let r = f(&mut core, &mut driver);
        self.settle(&mut core, &mut driver, now);
        driver.flush(now);
        // Completions reaped by the flush may have ended connections.
        self.settle(&mut core, &mut driver, now);
        r
    }

    fn settle(self: &Rc<Self>, core: &mut Core, driver: &mut Driver, now: Instant) {
        while !driver.outbox.is_empty() {
            let ended = std::mem::take(&mut driver.outbox.ended);
            for (conn, left) in ended {
                core.disconnected(driver, now, conn, left);
            }
            for (to, msg) in std::mem::take(&mut driver.outbox.mesh) {
                self.send_mesh(to, MeshMsg::Core(msg));
            }
            // The agent's queue is judged afresh by each hand-off; a
            // refused message is counted by `tell` and makes the core's
            // next directory effects report a full queue until then.
            driver.directory_full = false;
            for msg in std::mem::take(&mut driver.outbox.directory) {
                match &self.node.directory {
                    Some(dir) => {
                        if !dir.tell(msg) {
                            driver.directory_full = true;
                        }
                    }
                    None => debug_assert!(false, "directory message without --directory"),
                }
            }
            for (conn, ask) in std::mem::take(&mut driver.outbox.asks) {
                self.spawn_ask(conn, ask);
            }
            for (instance, id) in std::mem::take(&mut driver.outbox.owners) {
                self.spawn_owner_of(instance, id);
            }
            for d in std::mem::take(&mut driver.outbox.departures) {
                self.send_mesh(
                    d.to,
                    MeshMsg::Adopt {
                        fd: d.fd,
                        unread: d.unread,
                        accepted_at: d.accepted_at,
                        permit: d.permit,
                        player: d.player,
                        resume: d.resume,
                    },
                );
            }
        }
    }

    /// Asks the directory for a paused connection, in the io queue; the
    /// answer goes back to the core.
    fn spawn_ask(self: &Rc<Self>, conn: ConnId, ask: Ask) {
        let shard = self.clone();
        let task = async move {
            let Some(dir) = shard.node.directory.clone() else {
                return;
            };
            let answer = directory::answer(&dir, &ask).await;
            shard.with_core(Instant::now(), |core, driver| {
                core.directory_answer(driver, Instant::now(), conn, ask, answer)
            });
        };
        glommio::spawn_local_into(task, self.queues.io)
            .expect("io queue")
            .detach();
    }

    /// Asks the directory who owns `instance` for an unanswered evacuation.
    fn spawn_owner_of(self: &Rc<Self>, instance: crate::game::InstanceId, id: String) {
        let shard = self.clone();
        let task = async move {
            let Some(dir) = shard.node.directory.clone() else {
                return;
            };
            let claim = dir.claim(instance.clone()).await;
            shard.with_core(Instant::now(), |core, driver| {
                core.settle_evacuation(driver, Instant::now(), &instance, &id, claim)
            });
        };
        glommio::spawn_local_into(task, self.queues.background)
            .expect("background queue")
            .detach();
    }

    /// Queues a message for shard `to` (never self). Order per destination
    /// is kept; if even the local outbox is full the message is dropped and
    /// counted, since blocking here would stall the slot.
    pub fn send_mesh(&self, to: usize, msg: MeshMsg) {
        assert_ne!(to, self.id, "a shard never messages itself");
        if self.mesh_out.try_send((to, msg)).is_err() {
            self.metrics.mesh_dropped.inc();
            tracing::warn!(shard = self.id, to, "mesh outbox full; message dropped");
        }
    }

    pub fn next_admin_req(&self) -> u64 {
        let r = self.next_admin_req.get();
        self.next_admin_req.set(r + 1);
        r
    }

    pub(crate) fn deliver_admin_reply(&self, req: u64, reply: AdminReply) {
        if let Some(tx) = self.admin_pending.borrow().get(&req) {
            // The requester waits for as many replies as it asked; a late
            // reply after its timeout finds the channel gone and is dropped.
            let _ = tx.try_send(reply);
        }
    }

    /// This shard's figures (the core's, with the driver's buffers).
    pub fn stats(&self, with_instances: bool) -> ShardStats {
        let mut core = self.core.borrow_mut();
        let driver = self.driver.borrow();
        let mut stats = core.stats(Instant::now(), with_instances);
        stats.buffers_free = driver.pool().available();
        stats.buffers_total = driver.pool().total();
        stats
    }

    /// Whether new players are being turned away (draining, stopping or
    /// shedding).
    pub fn refusing(&self) -> bool {
        let core = self.core.borrow();
        core.draining || core.stopping || core.shedding
    }
}

/// A mesh message and the shard it goes to.
type Outgoing = (usize, MeshMsg);

/// Creates the outbox channel a shard uses for mesh sends.
pub(crate) fn mesh_outbox() -> (
    LocalSender<Outgoing>,
    local_channel::LocalReceiver<Outgoing>,
) {
    local_channel::new_bounded(MESH_OUTBOX_CAPACITY)
}
