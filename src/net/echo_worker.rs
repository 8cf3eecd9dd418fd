//! The shard's /echo worker: one plain thread per shard, pinned to the
//! shard's core(s), that serves the shard's /echo connections after their
//! upgrade with edge-triggered epoll — wait, read, answer, write.
//!
//! Why not the shard's executor: an /echo message is a few µs of work, and
//! below saturation each arrives alone, so each costs the executor one
//! wake-up. glommio 0.9's wake-up (sleep, wake, run, re-arm) is 9
//! `io_uring_enter` calls (preemption and throughput timers armed and
//! cancelled on two rings, the early poll re-armed) and a `membarrier`
//! around the message's `recv` and `send`: measured here (strace; `perf
//! stat` syscall tracepoints), 12 syscalls per message against
//! tokio-tungstenite's 2.8, and 70–83 µs of server CPU per message at 2,000
//! spread-out messages/s against tokio-tungstenite's 52–54 µs. This loop
//! pays `epoll_wait`, `recv`, `send` (34–39 µs on the same runs; see
//! BENCHMARKS.md, "Echo").
//!
//! What the shard keeps: the upgrade (it answers the handshake, then hands
//! the socket over), admission (the connection's permit travels with it and
//! is released when the socket closes), and its metrics: this thread adds
//! to a [`Report`] the shard folds in (`echo::collect`).
//!
//! The worker owns the epoll set, a doorbell (eventfd) the shard rings to
//! hand connections over or to stop it, the connections by token
//! (`Slab`), one read and one output scratch for all of them, and a
//! sweep every `SWEEP_INTERVAL`; each connection's own logic is
//! `echo_conn`. Idle, a connection costs its `Conn` (~200 B with its
//! `EchoFrames`, no buffer) and the kernel's epoll entry.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::net::close::CloseReason;
use crate::net::echo_conn::{Check, Conn, Counts, Scratch, Turn};

use crate::net::echo_conn::Adoption;

/// Readiness events taken per `epoll_wait` (16 bytes each, on the stack of
/// the loop); more ready connections are taken by the next wait, at once.
/// Hand-overs queued from the shard to its worker at most (~100 B each);
/// one more is refused by the shard with close 1013 (try again later). The
/// worker takes every queued one at each wake-up, so only a burst of
/// upgrades faster than the worker runs can fill it.
pub const ADOPTIONS_QUEUED_MAX: usize = 1024;

const EVENTS_PER_WAIT: usize = 256;

/// How often silence (two heartbeat intervals), slow consumers and close
/// deadlines are checked, while the worker has connections: each is
/// detected at most this late.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The worker's niceness, relative to its shard's thread on the same core
/// (Linux weights 335 against 1024): when a game tick and an /echo flood
/// both want the core, the tick gets three quarters of it, and a waking
/// worker does not preempt a running tick. With the core otherwise idle it
/// changes nothing.
const WORKER_NICE: libc::c_int = 5;

/// `epoll_event.u64` of the doorbell (a connection's is its slab token,
/// whose generation half is below `u32::MAX`).
const DOORBELL: u64 = u64::MAX;

/// What the worker did, for its shard's metrics. Counters only grow; the
/// shard adds the difference since it last looked.
#[derive(Debug, Default)]
pub struct Report {
    messages: AtomicU64,
    payload_bytes: AtomicU64,
    socket_writes: AtomicU64,
    /// Why connections ended, since the shard last took them.
    closed: Mutex<Vec<CloseReason>>,
    /// Set with `closed`; the shard's collector is woken to take them.
    pending: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// Totals from a [`Report`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Data messages echoed (each counts in and out).
    pub messages: u64,
    pub payload_bytes: u64,
    pub socket_writes: u64,
}

impl Report {
    pub fn totals(&self) -> Totals {
        Totals {
            messages: self.messages.load(Ordering::Relaxed),
            payload_bytes: self.payload_bytes.load(Ordering::Relaxed),
            socket_writes: self.socket_writes.load(Ordering::Relaxed),
        }
    }

    /// Moves the close reasons reported since the last call into `into`.
    pub fn take_closed(&self, into: &mut Vec<CloseReason>) {
        into.append(&mut lock(&self.closed));
    }

    /// Ready once connections have closed since the last `Ready`; otherwise
    /// the worker wakes `cx` when some do.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        *lock(&self.waker) = Some(cx.waker().clone());
        // A close reported between the check and storing the waker.
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn add(&self, c: &Counts) {
        if c.messages > 0 {
            self.messages.fetch_add(c.messages, Ordering::Relaxed);
            self.payload_bytes
                .fetch_add(c.payload_bytes, Ordering::Relaxed);
        }
        if c.socket_writes > 0 {
            self.socket_writes
                .fetch_add(c.socket_writes, Ordering::Relaxed);
        }
    }

    fn push_closed(&self, reasons: &mut Vec<CloseReason>) {
        if reasons.is_empty() {
            return;
        }
        lock(&self.closed).append(reasons);
        self.pending.store(true, Ordering::Release);
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the data (counts, wakers)
/// stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Command {
    Adopt(Adoption),
    /// Close every connection (1001) and end the thread.
    Stop,
}

/// The shard's handle on its worker. Dropping it stops the worker: its
/// connections are closed with 1001 (going away).
pub struct Worker {
    commands: Sender<Command>,
    doorbell: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    pub report: Arc<Report>,
}

impl Worker {
    /// Starts a worker on the cores the calling thread (the shard) may use.
    pub fn spawn(name: String) -> io::Result<Worker> {
        let affinity = current_affinity()?;
        // SAFETY: plain syscalls; each returned fd is checked and owned once.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        let ep = unsafe { OwnedFd::from_raw_fd(ep) };
        let bell = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        let doorbell = Arc::new(unsafe { OwnedFd::from_raw_fd(bell) });
        epoll_add(
            ep.as_raw_fd(),
            doorbell.as_raw_fd(),
            libc::EPOLLIN as u32,
            DOORBELL,
        )?;
        let (commands, rx) = crossbeam_channel::bounded(ADOPTIONS_QUEUED_MAX);
        let report = Arc::new(Report::default());
        let state = Loop::new(ep, doorbell.clone(), rx, report.clone());
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            set_affinity(&affinity);
            // SAFETY: sets the calling thread's niceness (Linux: per thread).
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, WORKER_NICE) };
            state.run();
        })?;
        Ok(Worker {
            commands,
            doorbell,
            thread: Some(thread),
            report,
        })
    }

    /// Hands a connection to the worker; gives it back if the worker is gone
    /// or [`ADOPTIONS_QUEUED_MAX`] hand-overs already wait (the shard then
    /// refuses the connection with 1013).
    pub fn adopt(&self, a: Adoption) -> Result<(), Adoption> {
        match self.commands.try_send(Command::Adopt(a)) {
            Ok(()) => {
                ring(self.doorbell.as_raw_fd());
                Ok(())
            }
            Err(
                crossbeam_channel::TrySendError::Full(Command::Adopt(a))
                | crossbeam_channel::TrySendError::Disconnected(Command::Adopt(a)),
            ) => Err(a),
            Err(_) => unreachable!("only an adoption was sent"),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        ring(self.doorbell.as_raw_fd());
        if let Some(t) = self.thread.take() {
            // Stopping is one pass over the connections, no waiting.
            let _ = t.join();
        }
    }
}

fn ring(bell: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64 to our eventfd. A full
    // counter (EAGAIN) means it is already rung.
    unsafe { libc::write(bell, (&one as *const u64).cast(), 8) };
}

/// The worker thread's state.
struct Loop {
    ep: OwnedFd,
    doorbell: Arc<OwnedFd>,
    commands: Receiver<Command>,
    report: Arc<Report>,
    conns: Slab<Conn>,
    /// Connections with input left after their turn (edge-triggered: no new
    /// event will say so).
    again: Vec<u64>,
    scratch: Scratch,
    counts: Counts,
    closed: Vec<CloseReason>,
    next_sweep: Instant,
}

impl Loop {
    fn new(
        ep: OwnedFd,
        doorbell: Arc<OwnedFd>,
        commands: Receiver<Command>,
        report: Arc<Report>,
    ) -> Loop {
        Loop {
            ep,
            doorbell,
            commands,
            report,
            conns: Slab::default(),
            again: Vec::new(),
            scratch: Scratch::new(),
            counts: Counts::default(),
            closed: Vec::new(),
            next_sweep: Instant::now() + SWEEP_INTERVAL,
        }
    }

    fn run(mut self) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
        loop {
            let n = self.wait(&mut events);
            let now = Instant::now();
            for ev in &events[..n] {
                let (token, flags) = (ev.u64, ev.events);
                if token == DOORBELL {
                    if !self.on_doorbell(now) {
                        return self.stop();
                    }
                } else {
                    self.on_ready(token, flags, now);
                }
            }
            for token in std::mem::take(&mut self.again) {
                self.turn(token, now);
            }
            if now >= self.next_sweep {
                self.sweep(now);
                self.next_sweep = now + SWEEP_INTERVAL;
            }
            self.publish();
        }
    }

    /// Waits for readiness: not at all when connections have input left,
    /// until the next sweep while there are connections, else until a
    /// command.
    fn wait(&mut self, events: &mut [libc::epoll_event]) -> usize {
        let timeout_ms = if !self.again.is_empty() {
            0
        } else if self.conns.is_empty() {
            -1
        } else {
            let left = self.next_sweep.saturating_duration_since(Instant::now());
            // Rounded up, so the sweep is not missed by a wake-up just early.
            left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        };
        // SAFETY: `events` is valid for `len` entries; `ep` is our epoll fd.
        let n = unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout_ms,
            )
        };
        // EINTR (a signal) and the rest: nothing ready this time.
        n.max(0) as usize
    }

    /// Takes every pending command; `false` on Stop (or when the shard's
    /// handle is gone).
    fn on_doorbell(&mut self, now: Instant) -> bool {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a valid u64 from our eventfd.
        unsafe {
            libc::read(
                self.doorbell.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                8,
            )
        };
        loop {
            match self.commands.try_recv() {
                Ok(Command::Adopt(a)) => self.adopt(a, now),
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn adopt(&mut self, a: Adoption, now: Instant) {
        let conn = Conn::new(a, now);
        let fd = conn.raw_fd();
        let token = self.conns.insert(conn);
        let interest = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        if epoll_add(self.ep.as_raw_fd(), fd, interest, token).is_err() {
            // Out of kernel memory for the watch: the connection cannot be
            // served; it ends like a failed socket.
            return self.finish(token, CloseReason::Vanished);
        }
        // Frames that came with the upgrade request, then whatever the
        // socket already holds.
        let conn = self.conns.get_mut(token).expect("just inserted");
        let first = conn.answer_first(&mut self.scratch, &mut self.counts);
        if let Some(reason) = first {
            return self.finish(token, reason);
        }
        self.turn(token, now);
    }

    fn on_ready(&mut self, token: u64, flags: u32, now: Instant) {
        let Some(conn) = self.conns.get_mut(token) else {
            return; // closed earlier in this batch
        };
        conn.ready(flags);
        self.turn(token, now);
    }

    /// One connection's turn: write what waits, then read and answer, up to
    /// its budget.
    fn turn(&mut self, token: u64, now: Instant) {
        let ep = self.ep.as_raw_fd();
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        match conn.turn(ep, token, &mut self.scratch, &mut self.counts, now) {
            Turn::Idle => {}
            Turn::More => self.again.push(token),
            Turn::End(reason) => self.finish(token, reason),
        }
    }

    /// Silence, slow consumers and close deadlines.
    fn sweep(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (token, conn) in self.conns.iter_mut() {
            if let Some(check) = conn.check(now) {
                due.push((token, check));
            }
        }
        for (token, check) in due {
            match check {
                Check::End(reason) => self.finish(token, reason),
                Check::Silent => {
                    let conn = self.conns.get_mut(token).expect("swept just now");
                    conn.begin_close_with(CloseReason::HeartbeatTimeout, now);
                    self.turn(token, now);
                }
            }
        }
    }

    /// Closes the socket (and releases its permit); the reason goes to the
    /// shard.
    fn finish(&mut self, token: u64, reason: CloseReason) {
        if let Some(conn) = self.conns.remove(token) {
            // Closing the fd removes it from the epoll set: it is the only
            // descriptor of its socket.
            drop(conn);
            self.closed.push(reason);
        }
    }

    fn publish(&mut self) {
        self.report.add(&self.counts);
        self.counts = Counts::default();
        self.report.push_closed(&mut self.closed);
    }

    /// The shard is stopping: every connection gets 1001, best effort.
    fn stop(mut self) {
        let reason = CloseReason::GoingAway;
        for (_, conn) in self.conns.iter_mut() {
            conn.going_away();
        }
        let tokens: Vec<u64> = self.conns.iter_mut().map(|(t, _)| t).collect();
        for token in tokens {
            self.finish(token, reason);
        }
        self.publish();
    }
}

fn epoll_add(ep: RawFd, fd: RawFd, interest: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: interest,
        u64: token,
    };
    // SAFETY: `ev` is a valid epoll_event; both fds are open.
    cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(|_| ())
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn current_affinity() -> io::Result<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is valid; the call fills it for this thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
    Ok(set)
}

fn set_affinity(set: &libc::cpu_set_t) {
    // SAFETY: `set` is a valid cpu_set_t; applies to the calling thread.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
}

/// The worker's connections by token: `(generation << 32) | index`, so an
/// event for a connection closed earlier in the same batch (its slot maybe
/// reused) finds nothing.
struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn insert(&mut self, conn: T) -> u64 {
        self.len += 1;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 connections")
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.1 = Some(conn);
        (u64::from(slot.0) << 32) | u64::from(index)
    }

    fn get_mut(&mut self, token: u64) -> Option<&mut T> {
        let (generation, index) = ((token >> 32) as u32, token as u32);
        match self.slots.get_mut(index as usize) {
            Some((g, Some(conn))) if *g == generation => Some(conn),
            _ => None,
        }
    }

    fn remove(&mut self, token: u64) -> Option<T> {
        let (generation, index) = ((token >> 32) as u32, token as u32);
        let slot = self.slots.get_mut(index as usize)?;
        if slot.0 != generation || slot.1.is_none() {
            return None;
        }
        // Generations stay below u32::MAX so no token equals DOORBELL.
        slot.0 = if slot.0 == u32::MAX - 1 {
            0
        } else {
            slot.0 + 1
        };
        self.free.push(index);
        self.len -= 1;
        slot.1.take()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (g, c))| c.as_mut().map(|c| ((u64::from(*g) << 32) | i as u64, c)))
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::Wake;

    use super::*;

    #[test]
    fn a_token_of_a_closed_connection_finds_nothing_after_its_slot_is_reused() {
        let mut slab: Slab<&str> = Slab::default();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(b as u32, a as u32, "the slot is reused");
        assert_ne!(b, a, "under a new generation");
        assert!(slab.get_mut(a).is_none());
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get_mut(b), Some(&mut "b"));
        assert_ne!(b, DOORBELL);
    }

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn closes_reported_by_the_worker_wake_the_shards_collector() {
        let report = Report::default();
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut poll = pin!(std::future::poll_fn(|cx| report.poll_closed(cx)));
        assert!(poll.as_mut().poll(&mut cx).is_pending());
        report.push_closed(&mut vec![CloseReason::Normal, CloseReason::Vanished]);
        assert!(flag.0.load(Ordering::SeqCst), "woken");
        assert!(poll.as_mut().poll(&mut cx).is_ready());
        let mut closed = Vec::new();
        report.take_closed(&mut closed);
        assert_eq!(closed, vec![CloseReason::Normal, CloseReason::Vanished]);
        report.add(&Counts {
            messages: 3,
            payload_bytes: 30,
            socket_writes: 2,
        });
        assert_eq!(
            report.totals(),
            Totals {
                messages: 3,
                payload_bytes: 30,
                socket_writes: 2
            }
        );
    }
}
