//! Starting a shard's executor and its tasks, the slot loop, and the
//! shutdown gate.
//!
//! Tasks per shard, by latency class:
//! - tick queue: the slot loop (read → core → write at every slot);
//! - io queue: accept loop, handshakes, mesh receive/send, control, the
//!   directory's events and answers;
//! - background queue: sweeps and heartbeats, snapshots, admin.
//!
//! Nothing here polls on a timer for messages: the mesh, the control
//! mailbox and the directory's events wake their tasks when something
//! arrives.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::net::TcpListener;
use glommio::{
    executor, ExecutorJoinHandle, Latency, LocalExecutorBuilder, Placement, PoolPlacement, Shares,
};

use super::accept::{accept_loop, handle_handoff};
use super::{mesh_outbox, MeshMsg, NodeShared, Queues, Shard};
use crate::metrics::system::{thread_cpu_time, CpuMeter};
use crate::metrics::{HistName, ShardMetrics};
use crate::net::driver::{Driver, DriverConfig};
use crate::net::ring::RingConfig;
use crate::protocol::close::CloseReason;
use crate::shard::{Core, ShardMsg, SWEEP_INTERVAL};
use crate::util::wake::{MailboxReceiver, MailboxSender};

/// Period of CPU/rate sampling and the load-shedding decision.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How often the shutdown gate checks whether every connection is closed.
const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How often a shard wakes while it joins the mesh (see `join_mesh`).
const MESH_JOIN_TICK: Duration = Duration::from_millis(10);

/// Orders from the node's main thread to a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop accepting, finish the current slot, close everyone with 1001.
    Shutdown,
}

pub type ControlSender = MailboxSender<Control>;

/// The admin HTTP server a shard runs in its background queue.
pub type AdminServer =
    fn(Rc<Shard>, TcpListener) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// Everything a shard starts from.
pub struct ShardStart {
    pub id: usize,
    pub core: Option<usize>,
    /// The shard's own listening socket (SO_REUSEPORT), bound by the node.
    pub listener: OwnedFd,
    /// The admin listener and the server that answers on it, given to
    /// shard 0 only (the admin layer sits above the runtime).
    pub admin_listener: Option<(OwnedFd, AdminServer)>,
    /// Instances to rebuild from the snapshot directory.
    pub restore: Vec<crate::snapshot::InstanceSnapshot>,
    pub mesh: MeshBuilder<MeshMsg, Full>,
    pub control: MailboxReceiver<Control>,
    pub node: NodeShared,
    /// Told once the shard accepts connections (the node logs "listening"
    /// only when every shard has said so), or why it could not start.
    pub ready: crossbeam_channel::Sender<Result<usize, String>>,
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
        .io_memory(start.node.core.cfg.io_memory_bytes)
        // Snapshot archiving and fsync run here; unpinned, so the kernel can
        // put them on whichever core is idle instead of the shard's own.
        .blocking_thread_pool_placement(PoolPlacement::Unbound(1))
        .spawn(move || run(start))
}

fn driver_config(shard: usize, cfg: &crate::config::Config) -> DriverConfig {
    DriverConfig {
        shard,
        payload_bytes_max: cfg.max_payload_bytes,
        messages_per_second_max: cfg.messages_per_second_max,
        batched_writes: cfg.io_writes_batched,
        buffers: cfg.buffers_per_shard,
        buffer_bytes: cfg.write_buffer_bytes,
        ring: RingConfig {
            entries: cfg.ring_entries,
            recv_buffers: cfg.recv_buffers,
            recv_buffer_bytes: cfg.read_buffer_bytes as u32,
        },
    }
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
    let cfg = start.node.core.cfg.clone();
    let now = Instant::now();
    let metrics = Rc::new(ShardMetrics::default());
    let driver = match Driver::new(driver_config(start.id, &cfg), metrics.clone(), now) {
        Ok(d) => d,
        Err(e) => {
            let why = format!(
                "shard {}: cannot set up its io_uring (multishot receive and buffer rings need Linux 6.1+): {e}",
                start.id
            );
            let _ = start.ready.try_send(Err(why));
            return ShardExit {
                id: start.id,
                cut_connections: 0,
            };
        }
    };
    let control = match start.control.on_executor() {
        Ok(c) => c,
        Err(e) => {
            let _ = start
                .ready
                .try_send(Err(format!("shard {}: control mailbox: {e}", start.id)));
            return ShardExit {
                id: start.id,
                cut_connections: 0,
            };
        }
    };
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).expect("OS random source");
    let mut core = Core::new(
        start.id,
        start.node.core.clone(),
        metrics.clone(),
        now,
        unix_us,
        u64::from_le_bytes(seed),
    );
    core.restore(start.restore, now);
    core.beat = Some(start.node.beats.clone());
    let (senders, mut receivers) = join_mesh(start.mesh).await;
    let (out_tx, out_rx) = mesh_outbox();
    let shard = Rc::new(Shard {
        id: start.id,
        shards: cfg.shards(),
        queues,
        metrics,
        core: RefCell::new(core),
        driver: RefCell::new(driver),
        admin_pending: RefCell::new(HashMap::new()),
        next_admin_req: Cell::new(1),
        wrote_snapshot: Cell::new(false),
        snapshot_writing: Cell::new(false),
        stopping: Cell::new(false),
        mesh_out: out_tx,
        accept_task: RefCell::new(None),
        handshake_limiter: (cfg.handshakes_per_ip_per_s > 0).then(|| {
            RefCell::new(crate::net::ratelimit::HandshakeLimiter::new(
                cfg.handshakes_per_ip_per_s,
            ))
        }),
        started_at: now,
        node: start.node,
    });

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
                on_mesh(&shard, msg);
            }
        });
    }

    listen_on(&shard, start.listener);
    let slots =
        glommio::spawn_local_into(slot_loop(shard.clone()), queues.tick).expect("tick queue");
    let sweeps = glommio::spawn_local_into(sweep_loop(shard.clone()), queues.background)
        .expect("background queue");
    let _ = start.ready.try_send(Ok(shard.id));
    let snapshots = glommio::spawn_local_into(
        super::snapshots::snapshot_loop(shard.clone()),
        queues.background,
    )
    .expect("background queue");
    let directory = glommio::spawn_local_into(super::directory::run(shard.clone()), queues.io)
        .expect("io queue");
    let admin = start.admin_listener.map(|(fd, serve)| {
        // SAFETY: the node bound this listening socket for us and gave up its fd.
        let listener = unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) };
        glommio::spawn_local_into(serve(shard.clone(), listener), queues.background)
            .expect("background queue")
    });

    // Woken by the node's main thread; an empty, closed mailbox also ends it.
    let _ = control.recv().await;
    tracing::info!(
        shard = shard.id,
        "shutting down: accepting no more connections"
    );
    shard.stopping.set(true);
    shard.with_core(Instant::now(), |core, _| {
        core.draining = true;
        core.stopping = true;
    });
    // Dropping the listener makes the kernel send new connections to the
    // other shards' listeners, or refuse them once all are closed.
    let accept = shard.accept_task.borrow_mut().take();
    if let Some(accept) = accept {
        accept.cancel().await;
    }
    // Single-threaded: no slot is running right now; stop the next one.
    slots.cancel().await;
    directory.cancel().await;
    // In a fleet: the final state to the directory, so the region takes
    // the instances over at once with nothing lost.
    if let Some(dir) = shard.node.directory.clone() {
        super::directory::leave_fleet(&shard, &dir).await;
    }
    // Let a periodic write in flight finish first: two writes of one shard
    // at once could leave the older state as the newest generation.
    while shard.snapshot_writing.get() {
        glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
    }
    snapshots.cancel().await;
    // The state as of the last slot, seats and tokens included, so players
    // can resume after the restart.
    if shard.node.snapshots.is_some() {
        super::snapshots::write_snapshot(&shard).await;
    }
    shard.with_core(Instant::now(), |_, driver| {
        driver.close_all(CloseReason::GoingAway)
    });
    let bound = Instant::now() + shard.cfg().shutdown_timeout;
    loop {
        let now = Instant::now();
        let open = shard.with_core(now, |_, driver| {
            driver.heartbeat(now, Duration::MAX, false);
            driver.len()
        });
        if open == 0 || now >= bound {
            break;
        }
        glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
    }
    sweeps.cancel().await;
    if let Some(admin) = admin {
        admin.cancel().await;
    }
    let cut = shard.driver.borrow().len();
    tracing::info!(shard = shard.id, cut_connections = cut, "shard stopped");
    ShardExit {
        id: shard.id,
        cut_connections: cut,
    }
}

/// A message from another shard.
fn on_mesh(shard: &Rc<Shard>, msg: MeshMsg) {
    match msg {
        MeshMsg::HandOff {
            fd,
            head,
            accepted_at,
            permit,
        } => {
            let task = handle_handoff(shard.clone(), fd, head, accepted_at, permit);
            spawn_into(shard.queues.io, task);
        }
        MeshMsg::Adopt {
            fd,
            unread,
            accepted_at,
            permit,
            player,
            resume,
        } => {
            shard.metrics.handoffs_in.inc();
            let now = Instant::now();
            shard.with_core(now, |core, driver| {
                match driver.register(fd, accepted_at, permit, &[], unread) {
                    Ok(conn) => core.adopted(driver, now, conn, accepted_at, player, resume),
                    Err(refused) => {
                        // No buffer for it here: the player keeps its seat
                        // for a resume; the socket closes with 1013.
                        refuse_moved(refused.fd);
                    }
                }
            });
        }
        MeshMsg::Core(ShardMsg::StatsReply { req, stats }) => {
            shard.deliver_admin_reply(req, super::AdminReply::Stats(stats))
        }
        MeshMsg::Core(ShardMsg::InstanceReply { req, detail }) => {
            shard.deliver_admin_reply(req, super::AdminReply::Instance(detail))
        }
        MeshMsg::Core(msg) => {
            let now = Instant::now();
            shard.with_core(now, |core, driver| core.mesh(driver, now, msg));
        }
    }
}

/// Closes a moved connection this shard has no buffer for: one close frame
/// (1013, try again later) written straight to the socket, then the socket
/// closes. The frame is a few dozen bytes into an idle socket's empty send
/// buffer; if even that does not fit the peer sees the connection drop.
fn refuse_moved(fd: OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut frame = Vec::with_capacity(64);
    crate::util::ws::push_close(
        &mut frame,
        CloseReason::TryAgainLater.code(),
        "no free connection buffer; resume with your token",
    );
    // SAFETY: `fd` is an open socket owned here; `frame` outlives the call.
    let _ = unsafe {
        libc::send(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    drop(fd);
}

/// Joins the shard mesh. glommio's join can miss the wake-up from the peer
/// that completes it: both shards then sleep in `MeshBuilder::join` forever
/// and the node never accepts (12 of 480 starts on a 2-core machine with six
/// CPU hogs). Any wake-up makes the reactor re-check its shared channels, so
/// a timer ticks until the join is done (0 of 640 starts, same load).
async fn join_mesh(mesh: MeshBuilder<MeshMsg, Full>) -> (Senders<MeshMsg>, Receivers<MeshMsg>) {
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

pub(crate) fn spawn_into(
    tq: glommio::TaskQueueHandle,
    fut: impl std::future::Future<Output = ()> + 'static,
) {
    glommio::spawn_local_into(fut, tq)
        .expect("task queue exists")
        .detach();
}

/// The slot loop: at each slot's time, read what arrived on every
/// connection, step the slot's instances, and write.
async fn slot_loop(shard: Rc<Shard>) {
    let clock = Instant::now;
    loop {
        let (due, slot) = shard.core.borrow().slots.next();
        let now = Instant::now();
        if due > now {
            glommio::timer::sleep(due - now).await;
        }
        let start = Instant::now();
        let late = start.saturating_duration_since(due);
        let hist = &shard.metrics.hist;
        hist.record(HistName::TickLateness, late);
        let snapshotting = shard.snapshot_writing.get();
        let (io_read, step, io_write) = {
            let mut core = shard.core.borrow_mut();
            let mut driver = shard.driver.borrow_mut();
            driver.reap(start);
            driver.handle_ready(&mut core, start);
            drop((core, driver));
            // Connections that ended while reading, and what the messages
            // asked of other shards, are settled before the step.
            shard.with_core(start, |_, _| {});
            let read_done = Instant::now();
            let mut core = shard.core.borrow_mut();
            let mut driver = shard.driver.borrow_mut();
            core.run_slot(&mut *driver, start, slot, &clock);
            drop((core, driver));
            let step_done = Instant::now();
            shard.with_core(step_done, |_, _| {});
            let write_done = Instant::now();
            (
                read_done - start,
                step_done - read_done,
                write_done - step_done,
            )
        };
        let took = start.elapsed();
        hist.record(HistName::TickDuration, took);
        hist.record(HistName::TickStep, step);
        hist.record(HistName::TickIo, io_read + io_write);
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
        let skipped = shard.core.borrow_mut().slots.advance(Instant::now());
        if skipped > 0 {
            shard.metrics.slots_skipped.add(skipped);
        }
        let beats = &shard.node.beats;
        let beat = &beats.shards[shard.id];
        beat.finished(beats.ms(Instant::now()));
        if beat.out_of_group() && !shard.stopping.get() {
            rejoin(&shard);
        }
    }
}

/// Accepts on `fd` (a listening socket in the SO_REUSEPORT group): the
/// watchdog keeps a duplicate, to take it out of the group if this shard
/// gets stuck.
fn listen_on(shard: &Rc<Shard>, fd: OwnedFd) {
    let beat = &shard.node.beats.shards[shard.id];
    // Called on the shard's own thread: the watchdog reads this thread's
    // run-queue time to tell a starved shard from a stuck one.
    // SAFETY: gettid(2) has no preconditions.
    beat.set_thread(unsafe { libc::gettid() });
    match crate::net::listen::dup(&fd) {
        Ok(d) => *beat.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(d),
        Err(e) => {
            tracing::warn!(shard = shard.id, error = %e, "no duplicate of the listener: the watchdog could not take it out of the group")
        }
    }
    // SAFETY: a listening socket owned by `fd`, given up here.
    let listener = unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) };
    let task = glommio::spawn_local_into(accept_loop(shard.clone(), listener), shard.queues.io)
        .expect("io queue");
    *shard.accept_task.borrow_mut() = Some(task);
}

/// Back from a stall: a new listener joins the SO_REUSEPORT group (the
/// watchdog stopped the old one; its accept loop has ended or will).
fn rejoin(shard: &Rc<Shard>) {
    let beat = &shard.node.beats.shards[shard.id];
    let seen = beat.removals();
    match crate::net::listen::bind_reuseport(shard.cfg().listen) {
        Ok((fd, _)) => {
            listen_on(shard, fd);
            beat.mark_rejoined(seen);
            tracing::warn!(
                shard = shard.id,
                "shard recovered from a stall: listening again"
            );
        }
        Err(e) => {
            // Not retried every slot: the shard serves the connections
            // other shards hand it until the node restarts.
            beat.mark_rejoined(seen);
            tracing::error!(shard = shard.id, error = %e, "could not listen again after a stall; this shard accepts no new connections itself until a restart");
        }
    }
}

async fn sweep_loop(shard: Rc<Shard>) {
    // Silence is checked four times per heartbeat interval so a dead peer
    // goes within 2¼ intervals; pings go out once per interval.
    let mut last_ping = Instant::now();
    let mut last_sweep = Instant::now();
    let mut last_sample = Instant::now();
    let mut cpu = CpuMeter::new(thread_cpu_time());
    loop {
        let heartbeat = shard.core.borrow().settings.heartbeat;
        glommio::timer::sleep((heartbeat / 4).min(SWEEP_INTERVAL)).await;
        let now = Instant::now();
        if now.duration_since(last_sample) >= SAMPLE_INTERVAL {
            last_sample = now;
            let usage = cpu.sample(thread_cpu_time(), now);
            shard.core.borrow_mut().sample_second(now, usage);
        }
        let ping = now.duration_since(last_ping) >= heartbeat;
        if ping {
            last_ping = now;
        }
        let sweep = now.duration_since(last_sweep) >= SWEEP_INTERVAL;
        if sweep {
            last_sweep = now;
        }
        shard.with_core(now, |core, driver| {
            driver.heartbeat(now, heartbeat * 2, ping);
            if sweep {
                core.sweep(driver, now);
            }
        });
    }
}
