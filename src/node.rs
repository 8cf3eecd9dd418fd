//! A node: the process that runs one shard per core.
//!
//! Start-up binds one SO_REUSEPORT listening socket per shard (here, so an
//! unusable address is reported before anything starts, and so port 0
//! resolves to one port for all shards), builds the shard mesh, and starts
//! the executors. Shutdown is a message to every shard; the node waits for
//! all of them.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::ExecutorJoinHandle;

use crate::auth::replay::{UsedTickets, USED_TICKETS_MAX_DEFAULT};
use crate::config::Config;
use crate::game::GameFactory;
use crate::net::admission::ConnectionBudget;
use crate::runtime::start::{self as runtime, Control, ControlSender, ShardExit, ShardStart};
use crate::runtime::watchdog::{self, WatchdogConfig};
use crate::runtime::{MeshMsg, NodeShared};
use crate::shard::CoreShared;
use crate::snapshot::{self, InstanceSnapshot, SnapshotLimits, SnapshotStore};
use crate::util::heartbeat::Beats;

use crate::net::listen::bind_reuseport;
pub use crate::net::listen::LISTEN_BACKLOG;

/// Time every shard gets to start (executor, io_uring rings, restore).
const SHARD_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Control channel capacity per shard: only a handful of orders ever wait.
const CONTROL_CHANNEL_CAPACITY: usize = 16;

pub struct Node {
    handles: Vec<ExecutorJoinHandle<ShardExit>>,
    /// Every shard's progress; the watchdog reads it.
    beats: Arc<Beats>,
    controls: Vec<ControlSender>,
    local_addr: SocketAddr,
    /// Where the admin listener is bound (port 0 resolved), when it is on.
    admin_addr: Option<SocketAddr>,
}

/// Asks every shard of a node to shut down (cloneable, usable from a
/// signal-handling thread).
#[derive(Clone)]
pub struct ShutdownHandle(Vec<ControlSender>, Arc<Beats>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        // Shards stop ticking on purpose now: the watchdog ends first.
        self.1.stop();
        for c in &self.0 {
            let _ = c.try_send(Control::Shutdown);
        }
    }
}

impl Node {
    pub fn start(cfg: Config, factory: Arc<dyn GameFactory>) -> anyhow::Result<Node> {
        let shards = cfg.shards();
        let (listeners, local_addr) = bind_listeners(cfg.listen, shards)?;
        let admin = match cfg.admin_listen {
            Some(addr) => {
                let (mut fds, bound) = bind_listeners(addr, 1)
                    .with_context(|| format!("admin listener (--admin-listen {addr})"))?;
                Some((fds.remove(0), bound))
            }
            None => None,
        };
        let cfg = Arc::new(cfg.bound(local_addr, admin.as_ref().map(|(_, a)| *a)));
        log_limits(&cfg);
        let (snapshots, mut restored) = open_snapshots(&cfg, factory.name());
        let budget = ConnectionBudget::new(cfg.max_connections);
        let directory = start_directory(&cfg, factory.name(), &budget)?;
        let shared = NodeShared {
            core: CoreShared {
                cfg: cfg.clone(),
                factory,
                join_secret: cfg.join_secret.as_deref().map(|s| Arc::from(s.as_bytes())),
                used_tickets: UsedTickets::new(USED_TICKETS_MAX_DEFAULT),
                public_url: directory.as_ref().map(|d| d.public_url.clone()),
                fleet_metrics: directory.as_ref().map(|d| d.metrics.clone()),
            },
            budget,
            snapshots,
            shards_snapshotted: Arc::new(AtomicUsize::new(0)),
            directory,
            beats: Beats::new(shards),
        };
        let beats = shared.beats.clone();
        let game = shared.core.factory.name().to_owned();
        if cfg.join_secret.is_some() {
            tracing::info!("join tickets required (--join-secret)");
        } else {
            tracing::warn!("OPEN server: no --join-secret, any client may join");
        }
        let mesh = MeshBuilder::<MeshMsg, _>::full(shards, cfg.mesh_channel_capacity);
        let mut handles = Vec::with_capacity(shards);
        let mut controls = Vec::with_capacity(shards);
        let mut admin_fd = admin.map(|(fd, _)| fd);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(shards);
        for (id, listener) in listeners.into_iter().enumerate() {
            let (tx, rx) = crate::util::wake::mailbox(CONTROL_CHANNEL_CAPACITY)
                .context("a shard's control mailbox (eventfd)")?;
            controls.push(tx);
            let start = ShardStart {
                id,
                core: cfg.shard_cores[id],
                listener,
                admin_listener: if id == 0 {
                    admin_fd
                        .take()
                        .map(|fd| (fd, admin_server as runtime::AdminServer))
                } else {
                    None
                },
                restore: std::mem::take(&mut restored[id]),
                mesh: mesh.clone(),
                control: rx,
                node: shared.clone(),
                ready: ready_tx.clone(),
            };
            let handle = runtime::spawn(start)
                .map_err(|e| anyhow::anyhow!("cannot start shard {id}: {e}"))?;
            handles.push(handle);
        }
        // Clients may connect from now on; say so only when every shard runs.
        for _ in 0..shards {
            ready_rx
                .recv_timeout(SHARD_START_TIMEOUT)
                .map_err(|_| {
                    anyhow::anyhow!("a shard did not start within {SHARD_START_TIMEOUT:?}")
                })?
                .map_err(|why| anyhow::anyhow!(why))?;
        }
        if let Some(stuck_after) = cfg.stuck_shard {
            let wcfg = WatchdogConfig {
                stuck_after,
                exit: cfg.stuck_shard_exit,
                game,
            };
            watchdog::start(beats.clone(), wcfg).context("the watchdog thread")?;
            tracing::info!(
                stuck_shard_ms = stuck_after.as_millis() as u64,
                exit = cfg.stuck_shard_exit,
                "watchdog on: a shard that finishes no tick for this long is stuck"
            );
        }
        tracing::info!("shardline listening on {local_addr} ({shards} shards; /play, /echo)");
        match cfg.admin_listen {
            Some(a) => tracing::info!(
                "admin listening on {a} (/metrics /health /ready /stats /instances /fleet /config /drain){}",
                if cfg.admin_token.is_some() { "; bearer token required" } else { "" }
            ),
            None => tracing::info!("admin listener off"),
        }
        Ok(Node {
            handles,
            beats,
            controls,
            local_addr,
            admin_addr: cfg.admin_listen,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's bound address (`None` with `--admin-listen off`).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.controls.clone(), self.beats.clone())
    }

    /// Every shard's progress (stuck shards, the instance each steps).
    pub fn beats(&self) -> Arc<Beats> {
        self.beats.clone()
    }

    /// Waits for every shard to stop.
    pub fn wait(self) -> anyhow::Result<Vec<ShardExit>> {
        let mut exits = Vec::new();
        let mut failed = Vec::new();
        for (id, h) in self.handles.into_iter().enumerate() {
            match h.join() {
                Ok(exit) => exits.push(exit),
                Err(e) => failed.push(format!("shard {id}: {e}")),
            }
        }
        self.beats.stop();
        if !failed.is_empty() {
            bail!("shards failed: {}", failed.join("; "));
        }
        Ok(exits)
    }
}

/// With --directory: starts the agent thread (Redis need not be up yet).
fn admin_server(
    shard: std::rc::Rc<crate::runtime::Shard>,
    listener: glommio::net::TcpListener,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    Box::pin(crate::admin::serve(shard, listener))
}

fn start_directory(
    cfg: &Config,
    game: &str,
    budget: &ConnectionBudget,
) -> anyhow::Result<Option<crate::directory::Directory>> {
    let Some(dir) = cfg.directory.clone() else {
        return Ok(None);
    };
    let public_url = dir
        .public_url
        .clone()
        .unwrap_or_else(|| crate::directory::default_public_url(cfg.listen));
    tracing::info!(directory = %crate::directory::redacted(&dir.url), public_url, location = %dir.location, heartbeat_ms = dir.heartbeat.as_millis() as u64, ttl_ms = dir.ttl.as_millis() as u64, replica_bytes_max = dir.replica_bytes_max, replica_writes_per_s_max = dir.replica_writes_per_s_max, "joining the fleet directory");
    let heartbeat = dir.heartbeat;
    crate::directory::start(crate::directory::AgentStart {
        cfg: dir,
        public_url,
        node_id: cfg.node_id.clone(),
        region: cfg.region.clone(),
        shards: cfg.shards(),
        capacity: cfg.max_connections,
        game: game.to_owned(),
        reconnect_grace: cfg.reconnect_grace,
        connect_timeout: cfg.connect_timeout,
        report_interval: heartbeat,
        open_connections: {
            let budget = budget.clone();
            Box::new(move || budget.open())
        },
    })
    .map(Some)
}

/// Opens the snapshot directory for writing and reads what it holds, split
/// over the shards by the placement rule. Failures are logged and the node
/// serves anyway: without snapshots if the directory is unusable, empty if
/// nothing valid is there.
fn open_snapshots(cfg: &Config, game: &str) -> (Option<SnapshotStore>, Vec<Vec<InstanceSnapshot>>) {
    let shards = cfg.shards();
    let limits = SnapshotLimits {
        instance_bytes_max: cfg.instance_snapshot_bytes_max,
    };
    let dir = &cfg.snapshot_dir;
    let store = if cfg.snapshot_interval.is_some() {
        match SnapshotStore::open(dir, limits) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "snapshots are off: the snapshot directory cannot be used");
                None
            }
        }
    } else {
        None
    };
    let mut per_shard = vec![Vec::new(); shards];
    if !cfg.restore {
        tracing::info!(dir = %dir.display(), "--no-restore: starting empty");
        return (store, per_shard);
    }
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut progress = |p: &snapshot::LoadProgress| {
        if last_log.elapsed().as_secs() >= 1 {
            last_log = Instant::now();
            tracing::info!(
                shards_done = p.shards_done,
                shards_total = p.shards_total,
                instances = p.instances,
                mib_read = p.bytes_read >> 20,
                "restoring"
            );
        }
    };
    match snapshot::load_all(dir, game, limits, &mut progress) {
        Ok(report) => {
            for skipped in &report.skipped {
                tracing::warn!("snapshot skipped: {skipped}");
            }
            let instances = report.instances.len();
            for f in &report.sources {
                tracing::info!(
                    path = %f.path.display(),
                    generation = f.generation,
                    instances = f.instances,
                    "restoring from snapshot"
                );
            }
            per_shard = snapshot::place(report.instances, shards);
            if instances > 0 || report.files_read > 0 {
                tracing::info!(
                    instances,
                    files = report.files_read,
                    mib = report.bytes_read >> 20,
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot loaded"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the snapshot directory; starting empty"),
    }
    (store, per_shard)
}

/// One listening socket per shard on the same address; port 0 becomes the
/// first socket's port for all.
fn bind_listeners(addr: SocketAddr, shards: usize) -> anyhow::Result<(Vec<OwnedFd>, SocketAddr)> {
    let mut out = Vec::with_capacity(shards);
    let mut addr = addr;
    for i in 0..shards {
        let (fd, bound) =
            bind_reuseport(addr).with_context(|| format!("cannot listen on {addr}"))?;
        if i == 0 {
            addr = bound;
        }
        out.push(fd);
    }
    Ok((out, addr))
}

fn log_limits(cfg: &Config) {
    let cores: Vec<String> = cfg
        .shard_cores
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Some(c) => format!("shard {i} → core {c}"),
            None => format!("shard {i} → unpinned"),
        })
        .collect();
    tracing::info!(node = %cfg.node_id, region = %cfg.region, "shards: {}", cores.join(", "));
    tracing::info!(
        tick_rate_hz = cfg.tick_rate_hz,
        max_connections = cfg.max_connections,
        connect_timeout_ms = cfg.connect_timeout.as_millis() as u64,
        heartbeat_ms = cfg.heartbeat.as_millis() as u64,
        max_payload = cfg.max_payload_bytes,
        players_per_instance_max = cfg.players_per_instance_max,
        instances_per_shard_max = cfg.instances_per_shard_max,
        inputs_per_tick_max = cfg.inputs_per_tick_max,
        "limits"
    );
    tracing::info!(
        read_buffer_bytes = cfg.read_buffer_bytes,
        write_buffer_bytes = cfg.write_buffer_bytes,
        buffers_per_shard = cfg.buffers_per_shard,
        reconnect_grace_ms = cfg.reconnect_grace.as_millis() as u64,
        instance_idle_ms = cfg.instance_idle.as_millis() as u64,
        http_head_bytes_max = cfg.http_head_bytes_max,
        io_memory_bytes = cfg.io_memory_bytes,
        connection_memory_max_mib = cfg.connection_memory_bytes_max() >> 20,
        "buffers"
    );
    let per_player = |entities| {
        crate::config::delta_memory_bytes_per_player(cfg.delta_history_ticks, entities) >> 10
    };
    tracing::info!(
        delta_history_ticks = cfg.delta_history_ticks,
        interest_radius = cfg.interest.radius,
        interest_budget = cfg.interest.budget,
        delta_memory_per_v2_player_kib_64_entities = per_player(64),
        delta_memory_per_v2_player_kib_full_instance = per_player(cfg.players_per_instance_max),
        "protocol v2 deltas (a view equal to the whole instance is shared by its players)"
    );
}
