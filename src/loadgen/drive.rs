//! The running phase of one executor's connections, on a plain thread with
//! the executor's CPU affinity: one epoll set for every running socket's
//! input (edge-triggered), and the schedule's next due time as the wait's
//! timeout (`epoll_pwait2`, ns resolution). The executor keeps the set-up
//! (connect, upgrade, Hello, Join) and hands each connection over
//! ([`Handover`]) once it is running.
//!
//! Why not the executor: glommio learns of each socket's input through an
//! io_uring poll per socket per read, completed by task work that
//! interrupts the thread while it runs; with 600 players a tick's 600
//! updates meant 600 such wake-ups, and the last players' updates were
//! timed late by the processing of the others (loadgen p50 28–30 ms against
//! an independent client's 22–24 ms on the same server in the same
//! minutes). Its timers could also lose a wake-up due within µs of the
//! executor going to sleep (0.2–1 s stalls, the thread blocked, not
//! starved). Here one `epoll_pwait2` returns every ready socket, each is
//! read and timed in turn, and the due messages go out after.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::raw::MaskKeys;
use super::running::{Env, Handover, Running, Step};
use super::stats::{Metric, Progress, ThreadStats};

/// Readiness events taken per wait (12 bytes each); more are taken by the
/// next wait, at once.
/// Connections queued from the executor to its drive thread at most (one
/// hand-over each, ~200 B); beyond it the executor waits (backpressure on
/// the ramp, never a dropped connection).
pub const HANDOVERS_QUEUED_MAX: usize = 4096;

const EVENTS_PER_WAIT: usize = 1024;

/// How often the drive publishes its counts for the progress line.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// `epoll_event.u64` of the doorbell (connections' tokens are indexes).
const DOORBELL: u64 = u64::MAX;

enum Command {
    Run(Handover),
    /// No more hand-overs: the thread ends once its connections have.
    Done,
}

/// What the drive shares with its executor.
struct Shared {
    /// The latest progress sample (the executor merges it into its own).
    sample: Mutex<Option<Progress>>,
}

/// The executor's handle on its drive.
pub struct Drive {
    commands: Sender<Command>,
    doorbell: Arc<OwnedFd>,
    thread: Option<JoinHandle<ThreadStats>>,
    shared: Arc<Shared>,
}

/// What the drive needs to know of the run.
pub struct RunTimes {
    pub start: Instant,
    pub end: Instant,
    pub close_timeout: Duration,
    /// The progress line's latency.
    pub main_metric: Metric,
    pub thread: usize,
    pub mask_seed: u64,
}

impl Drive {
    /// Starts the drive on the cores the calling thread (the executor) may use.
    pub fn spawn(times: RunTimes) -> io::Result<Drive> {
        // SAFETY: a zeroed cpu_set_t is valid; filled for this thread.
        let mut cpus: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        cvt(unsafe {
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut cpus)
        })?;
        // SAFETY: plain syscalls; each fd is checked and owned once.
        let ep = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let bell = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        let doorbell = Arc::new(unsafe { OwnedFd::from_raw_fd(bell) });
        epoll_add(
            ep.as_raw_fd(),
            doorbell.as_raw_fd(),
            libc::EPOLLIN as u32,
            DOORBELL,
        )?;
        let (commands, rx) = crossbeam_channel::bounded(HANDOVERS_QUEUED_MAX);
        let shared = Arc::new(Shared {
            sample: Mutex::new(None),
        });
        let state = Loop {
            stats: ThreadStats::new(times.main_metric),
            keys: MaskKeys::new(times.mask_seed),
            times,
            ep,
            doorbell: doorbell.clone(),
            commands: rx,
            shared: shared.clone(),
            conns: Vec::new(),
            free: Vec::new(),
            running: 0,
            queue: BinaryHeap::new(),
            again: Vec::new(),
            out: Vec::new(),
            done: false,
            next_sample: Instant::now() + SAMPLE_INTERVAL,
        };
        let thread = std::thread::Builder::new()
            .name("loadgen-drive".to_owned())
            .spawn(move || {
                // SAFETY: `cpus` is a valid cpu_set_t; applies to this thread.
                unsafe {
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &cpus)
                };
                state.run()
            })?;
        Ok(Drive {
            commands,
            doorbell,
            thread: Some(thread),
            shared,
        })
    }

    /// Hands a running connection over. When [`HANDOVERS_QUEUED_MAX`] wait
    /// already, the executor waits for the drive to take some (the drive
    /// drains the queue at every wake-up; the doorbell is rung first).
    pub fn run(&self, h: Handover) {
        ring(self.doorbell.as_raw_fd());
        let _ = self.commands.send(Command::Run(h));
        ring(self.doorbell.as_raw_fd());
    }

    /// The drive's latest progress sample, if a new one came.
    pub fn take_sample(&self) -> Option<Progress> {
        self.shared
            .sample
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// No more hand-overs: the drive ends once its connections have (by
    /// the run's end and close timeout).
    pub fn no_more(&self) {
        let _ = self.commands.send(Command::Done);
        ring(self.doorbell.as_raw_fd());
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the drive to end and returns what it measured.
    pub fn finish(mut self) -> ThreadStats {
        self.no_more();
        let thread = self.thread.take().expect("finished once");
        thread.join().unwrap_or_else(|_| {
            let mut s = ThreadStats::new(Metric::InputToUpdate);
            s.error("drive_panicked");
            s
        })
    }
}

impl Drop for Drive {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.commands.send(Command::Done);
            ring(self.doorbell.as_raw_fd());
            let _ = t.join();
        }
    }
}

fn ring(bell: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64 to our eventfd (EAGAIN: rung).
    unsafe { libc::write(bell, (&one as *const u64).cast(), 8) };
}

/// The drive thread's state.
struct Loop {
    times: RunTimes,
    ep: OwnedFd,
    doorbell: Arc<OwnedFd>,
    commands: Receiver<Command>,
    shared: Arc<Shared>,
    stats: ThreadStats,
    keys: MaskKeys,
    /// Connections by index (their epoll token), each slot with a
    /// generation that changes when it is emptied; `free` lists empty slots.
    conns: Vec<(u32, Option<Running>)>,
    free: Vec<usize>,
    running: usize,
    /// (due, index, generation): each connection's next call of
    /// `send_due`, one entry per connection. An entry left by a connection
    /// that ended is skipped.
    queue: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    /// Connections with input left after their turn.
    again: Vec<usize>,
    out: Vec<u8>,
    /// No more hand-overs will come.
    done: bool,
    next_sample: Instant,
}

impl Loop {
    fn run(mut self) -> ThreadStats {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
        let last = self.times.end + self.times.close_timeout + Duration::from_secs(1);
        loop {
            let n = self.wait(&mut events);
            for ev in &events[..n] {
                let (token, flags) = (ev.u64, ev.events);
                if token == DOORBELL {
                    self.on_doorbell();
                } else if let Some((_, Some(conn))) = self.conns.get_mut(token as usize) {
                    conn.ready(flags);
                    self.read(token as usize);
                }
            }
            for i in std::mem::take(&mut self.again) {
                self.read(i);
            }
            self.send_due(Instant::now());
            let now = Instant::now();
            if now >= self.next_sample {
                self.publish(now);
            }
            if (self.done && self.running == 0 && now >= self.times.end) || now >= last {
                break;
            }
        }
        // Connections still open past every deadline (cannot happen but by
        // a stall longer than the close timeout) end here, counted.
        for i in 0..self.conns.len() {
            if self.conns[i].1.is_some() {
                self.stats.counters.closes_unanswered += 1;
                self.end(i);
            }
        }
        self.publish(Instant::now());
        self.stats
    }

    /// Waits for input, a command, or the next due message.
    fn wait(&mut self, events: &mut [libc::epoll_event]) -> usize {
        let timeout = if !self.again.is_empty() {
            Some(Duration::ZERO)
        } else {
            let next = self.queue.peek().map(|Reverse((at, _, _))| *at);
            let until = match next {
                Some(at) => Some(at.min(self.next_sample)),
                None if self.running > 0 || !self.done => Some(self.next_sample),
                None => None,
            };
            until.map(|at| at.saturating_duration_since(Instant::now()))
        };
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        // SAFETY: `events` is valid for its length; `ts` lives across the call.
        let n = unsafe {
            libc::epoll_pwait2(
                self.ep.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                ts.as_ref().map_or(std::ptr::null(), |t| t as *const _),
                std::ptr::null(),
            )
        };
        n.max(0) as usize
    }

    fn on_doorbell(&mut self) {
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
                Ok(Command::Run(h)) => self.adopt(h),
                Ok(Command::Done) | Err(TryRecvError::Disconnected) => {
                    self.done = true;
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    fn adopt(&mut self, h: Handover) {
        let conn = Running::new(h);
        let fd = conn.raw_fd();
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.conns.push((0, None));
                self.conns.len() - 1
            }
        };
        self.conns[i].1 = Some(conn);
        self.running += 1;
        self.stats.players_now += 1;
        let interest = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        if epoll_add(self.ep.as_raw_fd(), fd, interest, i as u64).is_err() {
            self.stats.disconnect("epoll_add_failed");
            return self.end(i);
        }
        self.schedule(i);
        // Frames that came with the set-up, and what the socket holds.
        self.read(i);
    }

    /// A connection's read turn.
    fn read(&mut self, i: usize) {
        let Some((_, Some(conn))) = self.conns.get_mut(i) else {
            return;
        };
        let mut env = Env {
            start: self.times.start,
            end: self.times.end,
            close_timeout: self.times.close_timeout,
            keys: &self.keys,
            stats: &mut self.stats,
            out: &mut self.out,
        };
        match conn.on_readable(&mut env) {
            Step::Idle => {}
            Step::More => self.again.push(i),
            Step::Done => self.end(i),
        }
    }

    /// Every connection whose next message (or deadline) is due.
    fn send_due(&mut self, now: Instant) {
        while let Some(&Reverse((at, i, generation))) = self.queue.peek() {
            if at > now {
                break;
            }
            self.queue.pop();
            let Some((g, Some(conn))) = self.conns.get_mut(i) else {
                continue;
            };
            if *g != generation {
                continue; // left by a connection that ended
            }
            let mut env = Env {
                start: self.times.start,
                end: self.times.end,
                close_timeout: self.times.close_timeout,
                keys: &self.keys,
                stats: &mut self.stats,
                out: &mut self.out,
            };
            match conn.send_due(&mut env, now) {
                Step::Done => self.end(i),
                _ => self.schedule(i),
            }
        }
    }

    fn schedule(&mut self, i: usize) {
        if let Some((g, Some(conn))) = self.conns.get(i) {
            if let Some(at) = conn.next_due(self.times.end) {
                self.queue.push(Reverse((at, i, *g)));
            }
        }
    }

    /// Drops a connection (closing its socket, which leaves the epoll set).
    fn end(&mut self, i: usize) {
        let Some(slot) = self.conns.get_mut(i) else {
            return;
        };
        if let Some(conn) = slot.1.take() {
            slot.0 = slot.0.wrapping_add(1);
            drop(conn);
            self.free.push(i);
            self.running -= 1;
            self.stats.players_now -= 1;
        }
    }

    fn publish(&mut self, now: Instant) {
        let sample = self.stats.progress(self.times.thread, now);
        let mut slot = self.shared.sample.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            // Not taken yet: fold the new interval into it.
            Some(old) => {
                let mut sample = sample;
                let _ = sample.interval.add(&old.interval);
                *old = sample;
            }
            None => *slot = Some(sample),
        }
        self.next_sample = now + SAMPLE_INTERVAL;
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
