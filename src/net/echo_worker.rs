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
//! Per connection the worker keeps an [`EchoFrames`] and two buffers that
//! are empty while the connection is idle: `carry` (a frame a read cut) and
//! `unsent` (output the peer has not taken). One read scratch and one output
//! scratch serve every connection.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::net::admission::ConnPermit;
use crate::net::close::CloseReason;
use crate::net::echo_frames::{push_close, EchoFrames, Ending, Processed};

/// 64 KiB: the most one read takes from a socket (and the worker's read
/// scratch; one per shard, not per connection). Large enough that a backlog
/// of small messages is answered in one read and one write.
pub const ECHO_READ_BYTES: usize = 64 << 10;

/// After a message as large as --max-payload, the output scratch is shrunk
/// back to this (per shard).
const ECHO_OUTPUT_KEEP_BYTES: usize = 2 * ECHO_READ_BYTES;

/// Reads of one connection per turn (each up to [`ECHO_READ_BYTES`]) before
/// the other ready connections get theirs: a flooding client delays the
/// others by at most this much input.
const READS_PER_TURN: usize = 4;

/// Readiness events taken per `epoll_wait` (16 bytes each, on the stack of
/// the loop); more ready connections are taken by the next wait, at once.
const EVENTS_PER_WAIT: usize = 256;

/// How often silence (two heartbeat intervals), slow consumers and close
/// deadlines are checked, while the worker has connections: each is
/// detected at most this late.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Time allowed to write our close frame and for the peer to finish its
/// side of the close handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The worker's niceness, relative to its shard's thread on the same core
/// (Linux weights 335 against 1024): when a game tick and an /echo flood
/// both want the core, the tick gets three quarters of it, and a waking
/// worker does not preempt a running tick. With the core otherwise idle it
/// changes nothing.
const WORKER_NICE: libc::c_int = 5;

/// `epoll_event.u64` of the doorbell (a connection's is its slab token,
/// whose generation half is below `u32::MAX`).
const DOORBELL: u64 = u64::MAX;

/// A connection the shard hands over, right after the upgrade.
pub struct Adoption {
    /// The socket (a duplicate: the shard's handle is closed).
    pub fd: OwnedFd,
    /// Bytes the client sent right behind its upgrade request.
    pub first: Vec<u8>,
    /// Released when the socket closes.
    pub permit: ConnPermit,
    /// `--max-payload`.
    pub payload_bytes_max: usize,
    /// Two heartbeat intervals: a peer silent this long is closed (4001).
    pub silent_max: Duration,
}

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
        // Unbounded in type, bounded in fact: every adoption holds one of
        // the node's --max-connections permits.
        let (commands, rx) = crossbeam_channel::unbounded();
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

    /// Hands a connection to the worker; gives it back if the worker is gone.
    pub fn adopt(&self, a: Adoption) -> Result<(), Adoption> {
        match self.commands.send(Command::Adopt(a)) {
            Ok(()) => {
                ring(self.doorbell.as_raw_fd());
                Ok(())
            }
            Err(crossbeam_channel::SendError(Command::Adopt(a))) => Err(a),
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

/// What the loop counted since it last added to the report.
#[derive(Default)]
struct Counts {
    messages: u64,
    payload_bytes: u64,
    socket_writes: u64,
}

impl Counts {
    fn processed(&mut self, p: &Processed) {
        self.messages += p.messages;
        self.payload_bytes += p.payload_bytes;
    }
}

/// The worker thread's state.
struct Loop {
    ep: OwnedFd,
    doorbell: Arc<OwnedFd>,
    commands: Receiver<Command>,
    report: Arc<Report>,
    conns: Slab,
    /// Connections with input left after their turn (edge-triggered: no new
    /// event will say so).
    again: Vec<u64>,
    scratch: Scratch,
    counts: Counts,
    closed: Vec<CloseReason>,
    next_sweep: Instant,
}

/// The worker's buffers, shared by every connection (one turn at a time).
struct Scratch {
    input: Vec<u8>,
    output: Vec<u8>,
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
            scratch: Scratch {
                input: vec![0; ECHO_READ_BYTES],
                output: Vec::with_capacity(ECHO_READ_BYTES),
            },
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
        let fd = a.fd.as_raw_fd();
        let conn = Conn::new(a, now);
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
        if flags & libc::EPOLLIN as u32 != 0 {
            conn.readable = true;
        }
        if flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            conn.readable = true;
            conn.peer_done = true;
        }
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
            if conn.closing.is_none() {
                conn.unsent.clear();
                push_close(&mut conn.unsent, reason.code(), reason.label());
                let _ = send_some(conn.fd.as_raw_fd(), &conn.unsent);
            }
        }
        let tokens: Vec<u64> = self.conns.iter_mut().map(|(t, _)| t).collect();
        for token in tokens {
            self.finish(token, reason);
        }
        self.publish();
    }
}

/// What a connection's turn came to.
enum Turn {
    /// Waiting for the socket (input, or room for output).
    Idle,
    /// Input is left: another turn after the other ready connections.
    More,
    End(CloseReason),
}

/// What a sweep found.
enum Check {
    End(CloseReason),
    /// Silent for two heartbeat intervals: close with 4001.
    Silent,
}

/// The close handshake under way.
struct Closing {
    reason: CloseReason,
    /// Our close frame is out and we sent FIN: the peer's bytes are read
    /// and dropped until its FIN.
    fin_sent: bool,
    until: Instant,
}

/// One /echo connection.
struct Conn {
    fd: OwnedFd,
    /// Held for the connection's life: its place in --max-connections.
    _permit: ConnPermit,
    frames: EchoFrames,
    /// `carry[..carried]`: the start of a frame the last read cut.
    carry: Vec<u8>,
    carried: usize,
    /// Total length of that frame, once its header is known. A frame longer
    /// than the read scratch is read straight into `carry` (then sized to it).
    frame_bytes: Option<usize>,
    /// Answer bytes the socket has not taken yet.
    unsent: Vec<u8>,
    /// Since when `unsent` waits for the peer (EPOLLOUT is armed meanwhile).
    blocked_since: Option<Instant>,
    /// Unread input may be waiting (edge-triggered: set by an event, cleared
    /// by a short read, or by an empty socket once `peer_done`).
    readable: bool,
    /// The peer's FIN (or an error) was signalled: its event is the last, so
    /// a short read no longer means "wait": read on to the end.
    peer_done: bool,
    last_rx: Instant,
    silent_max: Duration,
    closing: Option<Closing>,
}

impl Conn {
    fn new(a: Adoption, now: Instant) -> Conn {
        Conn {
            fd: a.fd,
            _permit: a.permit,
            frames: EchoFrames::new(a.payload_bytes_max),
            carried: a.first.len(),
            carry: a.first,
            frame_bytes: None,
            unsent: Vec::new(),
            blocked_since: None,
            readable: true,
            peer_done: false,
            last_rx: now,
            silent_max: a.silent_max,
            closing: None,
        }
    }

    /// Answers the bytes that came with the upgrade request.
    fn answer_first(&mut self, scratch: &mut Scratch, counts: &mut Counts) -> Option<CloseReason> {
        if self.carried == 0 {
            return None;
        }
        let mut input = std::mem::take(&mut self.carry);
        input.truncate(self.carried);
        let p = self.frames.process(&mut input, &mut scratch.output);
        self.keep_cut_frame(&input[p.consumed..], p.frame_bytes_needed);
        self.answered(&p, scratch, counts).err()
    }

    fn turn(
        &mut self,
        ep: RawFd,
        token: u64,
        scratch: &mut Scratch,
        counts: &mut Counts,
        now: Instant,
    ) -> Turn {
        if let Err(reason) = self.flush(counts) {
            return Turn::End(reason);
        }
        if !self.unsent.is_empty() {
            // Nothing more is read while the peer does not read.
            if self.blocked_since.is_none() {
                self.blocked_since = Some(now);
                watch(ep, &self.fd, token, true);
            }
            return Turn::Idle;
        }
        if self.blocked_since.take().is_some() {
            watch(ep, &self.fd, token, false);
        }
        if self.closing.is_some() {
            return self.drain_to_fin(scratch);
        }
        for _ in 0..READS_PER_TURN {
            if !self.readable {
                return Turn::Idle;
            }
            if let Err(reason) = self.read_batch(scratch, counts, now) {
                return Turn::End(reason);
            }
            if self.closing.is_some() || !self.unsent.is_empty() {
                // The close frame or a blocked answer: once more from the top.
                return self.turn(ep, token, scratch, counts, now);
            }
        }
        if self.readable {
            Turn::More
        } else {
            Turn::Idle
        }
    }

    /// One read, every complete frame in it answered, one write.
    fn read_batch(
        &mut self,
        scratch: &mut Scratch,
        counts: &mut Counts,
        now: Instant,
    ) -> Result<(), CloseReason> {
        let fd = self.fd.as_raw_fd();
        let big = self.frame_bytes.filter(|&n| n > scratch.input.len());
        let p = match big {
            Some(total) => {
                // One frame larger than the scratch: into `carry`, up to its
                // end and no further.
                let want = total - self.carried;
                let Some(n) = self.recv(fd, None, want)? else {
                    return Ok(());
                };
                self.last_rx = now;
                self.carried += n;
                if self.carried < total {
                    return Ok(());
                }
                let p = self
                    .frames
                    .process(&mut self.carry[..total], &mut scratch.output);
                debug_assert!(p.ending.is_some() || p.consumed == total);
                self.carry = Vec::new();
                self.carried = 0;
                self.frame_bytes = None;
                p
            }
            None => {
                let have = self.carried;
                let Some(n) = self.recv(fd, Some(&mut scratch.input[have..]), 0)? else {
                    return Ok(());
                };
                self.last_rx = now;
                let filled = have + n;
                scratch.input[..have].copy_from_slice(&self.carry[..have]);
                let p = self
                    .frames
                    .process(&mut scratch.input[..filled], &mut scratch.output);
                self.keep_cut_frame(&scratch.input[p.consumed..filled], p.frame_bytes_needed);
                p
            }
        };
        self.answered(&p, scratch, counts)
    }

    /// Reads into `into` (or, with `None`, into `carry[carried..carried +
    /// want]`); `None` when the socket is empty. A short read means it is
    /// empty now (edge-triggered: the next byte brings a new event).
    fn recv(
        &mut self,
        fd: RawFd,
        into: Option<&mut [u8]>,
        want: usize,
    ) -> Result<Option<usize>, CloseReason> {
        let buf = match into {
            Some(b) => b,
            None => &mut self.carry[self.carried..self.carried + want],
        };
        let asked = buf.len();
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), asked, libc::MSG_DONTWAIT) };
        match n {
            0 => Err(CloseReason::Vanished),
            n if n > 0 => {
                let n = n as usize;
                if n < asked && !self.peer_done {
                    self.readable = false;
                }
                Ok(Some(n))
            }
            _ if would_block() => {
                self.readable = false;
                Ok(None)
            }
            _ => Err(CloseReason::Vanished),
        }
    }

    /// Counts what a batch answered, writes the answer (what the socket does
    /// not take waits in `unsent`), and starts the close it decided on.
    fn answered(
        &mut self,
        p: &Processed,
        scratch: &mut Scratch,
        counts: &mut Counts,
    ) -> Result<(), CloseReason> {
        counts.processed(p);
        let out = &mut scratch.output;
        if !out.is_empty() {
            if self.unsent.is_empty() {
                counts.socket_writes += 1;
                let n = send_some(self.fd.as_raw_fd(), out)?;
                self.unsent.extend_from_slice(&out[n..]);
            } else {
                self.unsent.extend_from_slice(out);
            }
            out.clear();
            out.shrink_to(ECHO_OUTPUT_KEEP_BYTES);
        }
        if let Some(ending) = p.ending {
            let reason = match ending {
                Ending::PeerClosed => CloseReason::Normal,
                Ending::Failed { reason, .. } => reason,
            };
            self.closing = Some(Closing {
                reason,
                fin_sent: false,
                until: Instant::now() + CLOSE_TIMEOUT,
            });
        }
        Ok(())
    }

    /// Queues our close frame (silence) and starts the close handshake.
    fn begin_close_with(&mut self, reason: CloseReason, now: Instant) {
        push_close(&mut self.unsent, reason.code(), reason.label());
        self.closing = Some(Closing {
            reason,
            fin_sent: false,
            until: now + CLOSE_TIMEOUT,
        });
    }

    /// Writes as much of `unsent` as the socket takes.
    fn flush(&mut self, counts: &mut Counts) -> Result<(), CloseReason> {
        if self.unsent.is_empty() {
            return Ok(());
        }
        counts.socket_writes += 1;
        let n = send_some(self.fd.as_raw_fd(), &self.unsent)?;
        self.unsent.drain(..n);
        if self.unsent.is_empty() {
            self.unsent = Vec::new();
        }
        Ok(())
    }

    /// Our close frame is out: FIN, then the peer's bytes are read and
    /// dropped until its FIN, so that no unread byte turns our close into a
    /// reset.
    fn drain_to_fin(&mut self, scratch: &mut Scratch) -> Turn {
        let closing = self.closing.as_mut().expect("called while closing");
        let reason = closing.reason;
        if !closing.fin_sent {
            closing.fin_sent = true;
            // SAFETY: shuts down our own socket's write side.
            unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) };
        }
        for _ in 0..READS_PER_TURN {
            if !self.readable {
                return Turn::Idle;
            }
            match self.recv(self.fd.as_raw_fd(), Some(&mut scratch.input), 0) {
                Ok(_) => {}
                // The peer's FIN (or a reset): the handshake is done.
                Err(_) => return Turn::End(reason),
            }
        }
        if self.readable {
            Turn::More
        } else {
            Turn::Idle
        }
    }

    /// Keeps the bytes of a frame the read cut (`rest`), sized for the whole
    /// frame when it will not fit the scratch. An idle connection keeps none.
    fn keep_cut_frame(&mut self, rest: &[u8], frame_bytes: Option<usize>) {
        self.frame_bytes = frame_bytes;
        self.carried = rest.len();
        if rest.is_empty() {
            self.carry = Vec::new();
            return;
        }
        let size = match frame_bytes {
            Some(total) if total > ECHO_READ_BYTES => total,
            _ => rest.len(),
        };
        let mut carry = vec![0; size];
        carry[..rest.len()].copy_from_slice(rest);
        self.carry = carry;
    }

    /// What the sweep at `now` must do about this connection.
    fn check(&self, now: Instant) -> Option<Check> {
        if let Some(c) = &self.closing {
            return (now >= c.until).then_some(Check::End(c.reason));
        }
        if let Some(since) = self.blocked_since {
            // The peer took nothing of our answer for two heartbeats.
            if now >= since + self.silent_max {
                return Some(Check::End(CloseReason::SlowConsumer));
            }
        }
        (now >= self.last_rx + self.silent_max).then_some(Check::Silent)
    }
}

/// One non-blocking send; 0 when the socket buffer is full.
fn send_some(fd: RawFd, bytes: &[u8]) -> Result<usize, CloseReason> {
    // SAFETY: `bytes` is valid for reads of its length.
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n >= 0 {
        Ok(n as usize)
    } else if would_block() {
        Ok(0)
    } else {
        Err(CloseReason::Vanished)
    }
}

fn would_block() -> bool {
    io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// Arms (or disarms) the wake-up for room to write, beside input.
fn watch(ep: RawFd, fd: &OwnedFd, token: u64, writable: bool) {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: token,
    };
    if writable {
        ev.events |= libc::EPOLLOUT as u32;
    }
    // SAFETY: `ev` is a valid epoll_event; both fds are open. It cannot
    // fail for a socket in the set (ENOMEM aside, and then the slow-consumer
    // bound still ends the connection).
    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd.as_raw_fd(), &mut ev) };
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
#[derive(Default)]
struct Slab {
    slots: Vec<(u32, Option<Conn>)>,
    free: Vec<u32>,
    len: usize,
}

impl Slab {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn insert(&mut self, conn: Conn) -> u64 {
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

    fn get_mut(&mut self, token: u64) -> Option<&mut Conn> {
        let (generation, index) = ((token >> 32) as u32, token as u32);
        match self.slots.get_mut(index as usize) {
            Some((g, Some(conn))) if *g == generation => Some(conn),
            _ => None,
        }
    }

    fn remove(&mut self, token: u64) -> Option<Conn> {
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

    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Conn)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (g, c))| c.as_mut().map(|c| ((u64::from(*g) << 32) | i as u64, c)))
    }
}
