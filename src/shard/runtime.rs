//! Starting a shard's executor and its tasks, and the shutdown gate.
//!
//! Tasks per shard, by latency class:
//! - tick queue: the fixed-step tick;
//! - io queue: accept loop, handshakes, sessions, mesh send/receive;
//! - background queue: sweeps and heartbeats, the control poll.

use std::cell::Cell;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::net::TcpListener;
use glommio::{
    executor, ExecutorJoinHandle, Latency, LocalExecutorBuilder, Placement, PoolPlacement, Shares,
};

use crate::metrics::HistName;
use crate::net::listener::{accept_loop, handle_handoff};
use crate::shard::mesh::ShardMsg;
use crate::shard::tick::{TickScratch, SWEEP_INTERVAL};
use crate::shard::{mesh_outbox, NodeShared, Queues, Shard};

/// How often a shard looks at its control channel. Shutdown waits at most
/// this long to begin.
const CONTROL_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Period of CPU/rate sampling and the load-shedding decision.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How often the shutdown gate checks whether every connection is closed.
const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How often a shard wakes while it joins the mesh (see `join_mesh`).
const MESH_JOIN_TICK: Duration = Duration::from_millis(10);

/// Orders from the node's main thread to a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop accepting, finish the current tick, close everyone with 1001.
    Shutdown,
}

/// Everything a shard starts from.
pub struct ShardStart {
    pub id: usize,
    pub core: Option<usize>,
    /// The shard's own listening socket (SO_REUSEPORT), bound by the node.
    pub listener: OwnedFd,
    /// The admin listener, given to shard 0 only.
    pub admin_listener: Option<OwnedFd>,
    /// Instances to rebuild from the snapshot directory.
    pub restore: Vec<crate::snapshot::InstanceSnapshot>,
    pub mesh: MeshBuilder<ShardMsg, Full>,
    pub control: Receiver<Control>,
    pub node: NodeShared,
    /// Told once the shard accepts connections (the node logs "listening"
    /// only when every shard has said so).
    pub ready: crossbeam_channel::Sender<usize>,
}

/// What a shard reports when it stops.
#[derive(Debug)]
pub struct ShardExit {
    pub id: usize,
    /// Connections still open when the shutdown bound ran out.
    pub cut_connections: usize,
}

pub fn spawn(start: ShardStart) -> glommio::Result<ExecutorJoinHandle<ShardExit>, ()> {
    let placement = match start.core {
        Some(core) => Placement::Fixed(core),
        None => Placement::Unbound,
    };
    LocalExecutorBuilder::new(placement)
        .name(&format!("shard-{}", start.id))
        .io_memory(start.node.cfg.io_memory_bytes)
        // Snapshot archiving and fsync run here; unpinned, so the kernel can
        // put them on whichever core is idle instead of the shard's own.
        .blocking_thread_pool_placement(PoolPlacement::Unbound(1))
        .spawn(move || run(start))
}

async fn run(start: ShardStart) -> ShardExit {
    let ex = executor();
    let queues = Queues {
        tick: ex.create_task_queue(
            Shares::Static(1000),
            Latency::Matters(Duration::from_millis(1)),
            "tick",
        ),
        io: ex.create_task_queue(
            Shares::Static(1000),
            Latency::Matters(Duration::from_millis(2)),
            "io",
        ),
        background: ex.create_task_queue(Shares::Static(100), Latency::NotImportant, "background"),
    };
    let (senders, mut receivers) = join_mesh(start.mesh).await;
    let (out_tx, out_rx) = mesh_outbox();
    let shard = Rc::new(Shard::new(start.id, start.node, queues, out_tx));
    shard.restore(start.restore, Instant::now());

    spawn_into(queues.io, async move {
        while let Some((to, msg)) = out_rx.recv().await {
            if senders.send_to(to, msg).await.is_err() {
                break; // peer gone: the node is stopping
            }
        }
    });
    for (_peer, rx) in receivers.streams() {
        let shard = shard.clone();
        spawn_into(queues.io, async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    ShardMsg::HandOff {
                        fd,
                        head,
                        accepted_at,
                        permit,
                    } => {
                        let task = handle_handoff(shard.clone(), fd, head, accepted_at, permit);
                        spawn_into(shard.queues.io, task);
                    }
                    ShardMsg::Adopt {
                        fd,
                        unread,
                        accepted_at,
                        permit,
                        player,
                        resume,
                    } => {
                        let task = crate::net::session::run_adopted(
                            shard.clone(),
                            fd,
                            unread,
                            accepted_at,
                            permit,
                            player,
                            resume,
                        );
                        spawn_into(shard.queues.io, task);
                    }
                    other => shard.on_mesh(other, Instant::now()),
                }
            }
        });
    }

    // SAFETY: the node bound this listening socket for us and gave up its fd.
    let listener = unsafe { TcpListener::from_raw_fd(start.listener.into_raw_fd()) };
    let accept = glommio::spawn_local_into(accept_loop(shard.clone(), listener), queues.io)
        .expect("io queue");
    let tick =
        glommio::spawn_local_into(tick_loop(shard.clone()), queues.tick).expect("tick queue");
    let sweeps = glommio::spawn_local_into(sweep_loop(shard.clone()), queues.background)
        .expect("background queue");
    let _ = start.ready.try_send(shard.id);
    let snapshots = glommio::spawn_local_into(
        crate::shard::snapshots::snapshot_loop(shard.clone()),
        queues.background,
    )
    .expect("background queue");
    let directory = glommio::spawn_local_into(
        crate::directory::link::run(shard.clone()),
        queues.background,
    )
    .expect("background queue");
    let admin = start.admin_listener.map(|fd| {
        // SAFETY: the node bound this listening socket for us and gave up its fd.
        let listener = unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) };
        glommio::spawn_local_into(
            crate::admin::serve(shard.clone(), listener),
            queues.background,
        )
        .expect("background queue")
    });

    wait_for_shutdown(&start.control).await;
    tracing::info!(
        shard = shard.id,
        "shutting down: accepting no more connections"
    );
    shard.draining.set(true);
    shard.stopping.set(true);
    // Dropping the listener makes the kernel send new connections to the
    // other shards' listeners, or refuse them once all are closed.
    accept.cancel().await;
    // Single-threaded: no tick is running right now, so the current tick is
    // finished; stop the next one.
    tick.cancel().await;
    // No tick is coming: captures need not wait for room between ticks.
    shard.next_tick_at.set(None);
    directory.cancel().await;
    // In a fleet: the final state to the directory, so the region takes
    // the instances over at once with nothing lost.
    if let Some(dir) = shard.node.directory.clone() {
        crate::directory::link::leave_fleet(&shard, &dir).await;
    }
    // Let a periodic write in flight finish first: two writes of one shard
    // at once could leave the older state as the newest generation.
    while shard.snapshot_writing.get() {
        glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
    }
    snapshots.cancel().await;
    // The state as of the last tick, seats and tokens included, so players
    // can resume after the restart.
    if shard.node.snapshots.is_some() {
        crate::shard::snapshots::write_snapshot(&shard).await;
    }
    for conn in shard.conns.borrow().values() {
        conn.request_close(crate::net::close::CloseReason::GoingAway);
    }
    let bound = Instant::now() + shard.cfg().shutdown_timeout;
    while !shard.conns.borrow().is_empty() && Instant::now() < bound {
        glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
    }
    sweeps.cancel().await;
    if let Some(admin) = admin {
        admin.cancel().await;
    }
    let cut = shard.conns.borrow().len();
    tracing::info!(shard = shard.id, cut_connections = cut, "shard stopped");
    ShardExit {
        id: shard.id,
        cut_connections: cut,
    }
}

/// Joins the shard mesh. glommio's join can miss the wake-up from the peer
/// that completes it: both shards then sleep in `MeshBuilder::join` forever
/// and the node never accepts (12 of 480 starts on a 2-core machine with six
/// CPU hogs). Any wake-up makes the reactor re-check its shared channels, so
/// a timer ticks until the join is done (0 of 640 starts, same load).
async fn join_mesh(mesh: MeshBuilder<ShardMsg, Full>) -> (Senders<ShardMsg>, Receivers<ShardMsg>) {
    let joined = Rc::new(Cell::new(false));
    let ticker = glommio::spawn_local({
        let joined = joined.clone();
        async move {
            while !joined.get() {
                glommio::timer::sleep(MESH_JOIN_TICK).await;
            }
        }
    });
    let pair = mesh.join().await.expect("mesh join");
    joined.set(true);
    ticker.await;
    pair
}

fn spawn_into(tq: glommio::TaskQueueHandle, fut: impl std::future::Future<Output = ()> + 'static) {
    glommio::spawn_local_into(fut, tq)
        .expect("task queue exists")
        .detach();
}

async fn wait_for_shutdown(control: &Receiver<Control>) {
    loop {
        match control.try_recv() {
            Ok(Control::Shutdown) | Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => glommio::timer::sleep(CONTROL_POLL_INTERVAL).await,
        }
    }
}

async fn tick_loop(shard: Rc<Shard>) {
    let interval = shard.cfg().tick_interval();
    let mut scratch = TickScratch::default();
    let mut due = Instant::now() + interval;
    shard.next_tick_at.set(Some(due));
    loop {
        let now = Instant::now();
        if due > now {
            glommio::timer::sleep(due - now).await;
        }
        let start = Instant::now();
        let late = start.saturating_duration_since(due);
        shard.metrics.hist.record(HistName::TickLateness, late);
        if late >= interval / 10 {
            shard.metrics.ticks_late.inc();
        }
        if late >= interval {
            // A whole interval late: the world steps once, not in a burst
            // of catch-up ticks; the overrun is counted.
            shard.metrics.ticks_overrun.inc();
            due = start;
        }
        // Whether a snapshot is being captured or written as this tick
        // starts: the tick is also recorded in that class, so the cost of
        // snapshots is read from one run (`tick_duration_snapshot` against
        // `tick_duration_no_snapshot`).
        let snapshotting = shard.snapshot_writing.get();
        shard.tick(&mut scratch);
        let took = start.elapsed();
        let hist = &shard.metrics.hist;
        hist.record(HistName::TickDuration, took);
        if shard.node.snapshots.is_some() {
            let (duration, lateness) = if snapshotting {
                (
                    HistName::TickDurationSnapshot,
                    HistName::TickLatenessSnapshot,
                )
            } else {
                (
                    HistName::TickDurationNoSnapshot,
                    HistName::TickLatenessNoSnapshot,
                )
            };
            hist.record(duration, took);
            hist.record(lateness, late);
        }
        due += interval;
        shard.next_tick_at.set(Some(due));
    }
}

async fn sweep_loop(shard: Rc<Shard>) {
    // Silence is checked four times per heartbeat interval so a dead peer
    // goes within 2¼ intervals; pings go out once per interval.
    let mut last_ping = Instant::now();
    let mut last_sweep = Instant::now();
    let mut last_sample = Instant::now();
    loop {
        let heartbeat = shard.settings.get().heartbeat;
        glommio::timer::sleep((heartbeat / 4).min(SWEEP_INTERVAL)).await;
        let now = Instant::now();
        if now.duration_since(last_sample) >= SAMPLE_INTERVAL {
            last_sample = now;
            shard.sample_second(now);
        }
        let ping = now.duration_since(last_ping) >= heartbeat;
        if ping {
            last_ping = now;
        }
        shard.heartbeat(now, ping);
        if now.duration_since(last_sweep) >= SWEEP_INTERVAL {
            last_sweep = now;
            shard.sweep(now);
        }
    }
}
