//! The sending side of every running connection of one executor (players
//! on /play, clients on /echo): one task and one queue ordered by due time,
//! instead of a writer task and a timer per connection (at thousands of
//! connections, a timer and a wake-up per message cost more than the
//! message's send).
//!
//! Still open loop: each connection's messages keep their own fixed
//! schedule; when the task wakes late it sends everything each connection
//! owes, oldest first, in one `send`, and latency counts from the intended
//! times. At the run's end it sends each player's Leave and every
//! connection's close frame.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use super::conn::{end_with, Ending};
use super::raw::{push_binary, push_close, MaskKeys, Outlet};
use super::runner::ThreadCtx;
use super::schedule::{InputLedger, Schedule};
use super::stats::{duration_us, Metric, ThreadStats};
use crate::protocol::ClientEncoder;

/// The shortest wait the pump sleeps through; a message due sooner is
/// waited for by yielding (see `Pump::wait`). Costs the load generator's
/// core that much spinning per message at most.
const SLEEP_MIN: Duration = Duration::from_micros(50);

/// A player's backlog that cannot go out at the end is retried this often
/// until the close timeout.
const BACKLOG_RETRY: Duration = Duration::from_millis(1);

/// What a running player's reader task and the pump share.
#[derive(Debug)]
pub struct Link {
    pub outlet: Outlet,
    pub ending: Cell<Ending>,
    pub ledger: RefCell<InputLedger>,
    /// Set by the reader before its socket closes: nothing may be sent after.
    pub closed: Cell<bool>,
    /// Echo messages sent (the reader counts the answers).
    pub echoes_sent: Cell<u64>,
}

impl Link {
    pub fn new(outlet: Outlet) -> Self {
        Link {
            outlet,
            ending: Cell::new(Ending::Running),
            ledger: RefCell::new(InputLedger::default()),
            closed: Cell::new(false),
            echoes_sent: Cell::new(0),
        }
    }
}

/// What one connection sends.
enum Traffic {
    /// A player: inputs (their seqs in the link's ledger) and pings.
    Play {
        inputs: Schedule,
        pings: Option<Schedule>,
        enc: ClientEncoder,
    },
    /// An /echo client: `message`, its first [`ECHO_STAMP_BYTES`] the
    /// intended send time (µs after the run's start, little-endian).
    Echo {
        schedule: Schedule,
        message: Vec<u8>,
    },
}

/// One connection's schedules.
struct Sending {
    link: Rc<Link>,
    traffic: Traffic,
}

impl Sending {
    fn next_due(&self) -> Instant {
        match &self.traffic {
            Traffic::Play {
                inputs,
                pings: Some(p),
                ..
            } => inputs.next_due().min(p.next_due()),
            Traffic::Play { inputs, .. } => inputs.next_due(),
            Traffic::Echo { schedule, .. } => schedule.next_due(),
        }
    }
}

/// Bytes at the start of each echo message that carry its intended send time.
pub const ECHO_STAMP_BYTES: usize = 8;

#[derive(Default)]
struct State {
    /// (due, slot), earliest first.
    queue: BinaryHeap<Reverse<(Instant, usize)>>,
    slots: Vec<Option<Sending>>,
    free: Vec<usize>,
    /// The pump task, woken when a player is added.
    waker: Option<Waker>,
    added: bool,
}

/// The pump of one executor.
pub struct Pump {
    state: RefCell<State>,
    keys: MaskKeys,
    /// Frames of one player's due messages, sent with one `send`.
    scratch: RefCell<Vec<u8>>,
}

impl Pump {
    pub fn new(seed: u64) -> Self {
        Pump {
            state: RefCell::new(State::default()),
            keys: MaskKeys::new(seed),
            scratch: RefCell::new(Vec::new()),
        }
    }

    pub fn keys(&self) -> &MaskKeys {
        &self.keys
    }

    /// Starts sending for a player that has just joined.
    pub fn add_player(&self, link: Rc<Link>, inputs: Schedule, pings: Option<Schedule>) {
        let traffic = Traffic::Play {
            inputs,
            pings,
            enc: ClientEncoder::new(),
        };
        self.add(Sending { link, traffic });
    }

    /// Starts sending for an /echo client that has just upgraded: messages
    /// of `message_bytes` (at least [`ECHO_STAMP_BYTES`]) on `schedule`.
    pub fn add_echo(&self, link: Rc<Link>, schedule: Schedule, message_bytes: usize) {
        debug_assert!(message_bytes >= ECHO_STAMP_BYTES);
        let traffic = Traffic::Echo {
            schedule,
            message: vec![0; message_bytes],
        };
        self.add(Sending { link, traffic });
    }

    fn add(&self, sending: Sending) {
        let due = sending.next_due();
        let mut st = self.state.borrow_mut();
        let slot = match st.free.pop() {
            Some(i) => {
                st.slots[i] = Some(sending);
                i
            }
            None => {
                st.slots.push(Some(sending));
                st.slots.len() - 1
            }
        };
        st.queue.push(Reverse((due, slot)));
        st.added = true;
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }

    /// Runs until cancelled (the runner does, once every player has ended).
    pub async fn run(&self, ctx: Rc<ThreadCtx>) {
        loop {
            let next = self.state.borrow().queue.peek().map(|Reverse((at, _))| *at);
            self.wait(next).await;
            let mut now = Instant::now();
            loop {
                let slot = {
                    let mut st = self.state.borrow_mut();
                    match st.queue.peek() {
                        Some(Reverse((at, _))) if *at <= now => st.queue.pop().map(|r| r.0 .1),
                        _ => None,
                    }
                };
                let Some(slot) = slot else { break };
                let again = self.serve(&ctx, slot, now);
                self.requeue(slot, again);
                // Behind schedule the queue never empties: glommio reaps
                // readiness (the readers' updates) only between task-queue
                // runs, so let them run at its preemption points.
                if glommio::executor().need_preempt() {
                    glommio::executor().yield_if_needed().await;
                    now = Instant::now();
                }
            }
        }
    }

    /// Puts `slot` back in the queue for `again`, or frees it.
    fn requeue(&self, slot: usize, again: Option<Instant>) {
        let mut st = self.state.borrow_mut();
        match again {
            Some(at) => st.queue.push(Reverse((at, slot))),
            None => {
                st.slots[slot] = None;
                st.free.push(slot);
            }
        }
    }

    /// Sleeps until `next` or until a player is added.
    async fn wait(&self, next: Option<Instant>) {
        let left = next.map(|at| at.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return;
        }
        let added = poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if std::mem::take(&mut st.added) {
                return Poll::Ready(());
            }
            st.waker = Some(cx.waker().clone());
            Poll::Pending
        });
        match left {
            // Too close to sleep on: glommio (0.9, kernel 6.18) can lose the
            // wake-up of a timer due within µs of its executor going to
            // sleep; the executor then sleeps on until some other event, up
            // to the next progress sample (1 s). Measured: 0.2–1 s stalls in
            // most 60,000 msg/s echo runs, every one on a timer 4–20 µs
            // ahead. Yielding instead lets the readers run (readiness is
            // reaped at the executor's preemption points, PREEMPT_INTERVAL).
            Some(left) if left < SLEEP_MIN => futures_lite::future::yield_now().await,
            Some(left) => added.or(glommio::timer::sleep(left)).await,
            None => added.await,
        }
    }

    /// Sends what `slot` owes at `now`; when to come back, or `None` when
    /// the player is done.
    fn serve(&self, ctx: &ThreadCtx, slot: usize, now: Instant) -> Option<Instant> {
        let mut st = self.state.borrow_mut();
        let s = st.slots[slot].as_mut().expect("queued slots are live");
        let link = s.link.clone();
        if link.closed.get() {
            return None;
        }
        match link.ending.get() {
            Ending::Counted => return None,
            Ending::Closing => return self.retry_backlog(ctx, &link, now),
            Ending::Running => {}
        }
        let mut out = self.scratch.borrow_mut();
        out.clear();
        let (count, bytes) = self.take_due(ctx, s, now, &mut out);
        let next = s.next_due();
        let play = matches!(s.traffic, Traffic::Play { .. });
        drop(st);
        if count > 0 {
            if let Err(reason) = link.outlet.send(&out) {
                end_with(ctx, &link.ending, reason);
                return None;
            }
            let mut stats = ctx.stats.borrow_mut();
            stats.counters.msgs_out += count;
            stats.counters.bytes_out += bytes;
        }
        if next < ctx.end {
            return Some(next);
        }
        if now < ctx.end {
            return Some(ctx.end);
        }
        self.farewell(ctx, &link, play, &mut out);
        self.retry_backlog(ctx, &link, now)
    }

    /// Appends every message due at `now` (and before the end), oldest
    /// first; returns (messages, payload bytes).
    fn take_due(
        &self,
        ctx: &ThreadCtx,
        s: &mut Sending,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> (u64, u64) {
        let (mut count, mut bytes) = (0u64, 0u64);
        let mut stats = ctx.stats.borrow_mut();
        let mut push = |stats: &mut ThreadStats, due: Instant, frame: &[u8]| {
            stats.record(Metric::SendLag, now.saturating_duration_since(due));
            push_binary(out, frame, &self.keys);
            count += 1;
            bytes += frame.len() as u64;
        };
        match &mut s.traffic {
            Traffic::Play { inputs, pings, enc } => {
                while let Some(due) = inputs.take_due(now, ctx.end) {
                    stats.counters.inputs_sent += 1;
                    let seq = u32::try_from(inputs.sent()).unwrap_or(u32::MAX);
                    s.link.ledger.borrow_mut().sent(seq);
                    // A slow circle: the arena's players keep moving.
                    let angle = seq as f32 * 0.05;
                    push(&mut stats, due, enc.input(seq, angle.cos(), angle.sin(), 0));
                }
                if let Some(p) = pings {
                    while let Some(due) = p.take_due(now, ctx.end) {
                        stats.counters.pings_sent += 1;
                        let client_time = due.saturating_duration_since(ctx.start).as_secs_f64();
                        push(&mut stats, due, enc.ping(client_time));
                    }
                }
            }
            Traffic::Echo { schedule, message } => {
                while let Some(due) = schedule.take_due(now, ctx.end) {
                    stats.counters.echoes_sent += 1;
                    s.link.echoes_sent.set(s.link.echoes_sent.get() + 1);
                    let us = duration_us(due.saturating_duration_since(ctx.start));
                    message[..ECHO_STAMP_BYTES].copy_from_slice(&us.to_le_bytes());
                    push(&mut stats, due, message);
                }
            }
        }
        (count, bytes)
    }

    /// Leave before closing: a clean close alone keeps the seat for the
    /// server's reconnect grace, and the next run would share the instance
    /// with these players' idle entities.
    fn farewell(&self, ctx: &ThreadCtx, link: &Link, play: bool, out: &mut Vec<u8>) {
        link.ending.set(Ending::Closing);
        out.clear();
        let leave = play.then(|| ClientEncoder::new().leave().to_vec());
        if let Some(leave) = &leave {
            push_binary(out, leave, &self.keys);
        }
        push_close(out, 1000, "load run over", &self.keys);
        if link.outlet.send(out).is_ok() {
            if let Some(leave) = leave {
                let mut stats = ctx.stats.borrow_mut();
                stats.counters.msgs_out += 1;
                stats.counters.bytes_out += leave.len() as u64;
            }
        }
    }

    fn retry_backlog(&self, ctx: &ThreadCtx, link: &Link, now: Instant) -> Option<Instant> {
        if link.outlet.flush().is_err() || !link.outlet.has_backlog() {
            return None;
        }
        (now < ctx.end + ctx.cfg.close_timeout).then_some(now + BACKLOG_RETRY)
    }
}
