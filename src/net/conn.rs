//! The shard's handle on one live /play connection, shared (by `Rc`, on one
//! core) between the connection's session task and the shard's tick and
//! sweeps. The tick only appends frames and wakes the task; the task alone
//! touches the socket.

use std::cell::{Cell, RefCell};
use std::task::Waker;
use std::time::Instant;

use crate::game::types::PlayerId;
use crate::net::close::CloseReason;
use crate::net::outbound::Outbound;
use crate::net::tick_read::TickRead;

pub type ConnId = u64;

/// Where a paused connection goes, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    pub to: usize,
    pub player: PlayerId,
    /// A resume (the target greets with Welcome) rather than a Join.
    pub resume: bool,
}

#[derive(Debug)]
pub struct Conn {
    pub id: ConnId,
    out: RefCell<Outbound>,
    /// The session task, woken when frames are queued or a close is asked for.
    waker: RefCell<Option<Waker>>,
    /// First close reason asked for; the session closes with its code.
    close: Cell<Option<CloseReason>>,
    /// Last time any frame arrived (heartbeat: silent for two intervals → drop).
    last_rx: Cell<Instant>,
    /// When this connection was accepted (for the connect timeout).
    pub accepted_at: Instant,
    /// Set by a successful Hello.
    player: Cell<Option<PlayerId>>,
    /// Set while a move to another shard is decided: nothing is read, so
    /// every later byte stays in the socket for the new owner.
    paused_since: Cell<Option<Instant>>,
    /// Set when the connection must move to another shard now.
    handover: Cell<Option<Handover>>,
    /// Arrival times of the inputs reflected in the queued update; their
    /// input→update latency is recorded when the bytes reach the socket.
    inputs_unwritten: RefCell<Vec<Instant>>,
    /// Whether the tick may read this connection's inputs (`net::tick_read`).
    pub tick_read: TickRead,
}

impl Conn {
    pub fn new(id: ConnId, out: Outbound, accepted_at: Instant) -> Self {
        Self {
            id,
            out: RefCell::new(out),
            waker: RefCell::new(None),
            close: Cell::new(None),
            last_rx: Cell::new(accepted_at),
            accepted_at,
            player: Cell::new(None),
            inputs_unwritten: RefCell::new(Vec::new()),
            paused_since: Cell::new(None),
            handover: Cell::new(None),
            tick_read: TickRead::default(),
        }
    }

    /// Stops reading until [`Self::resume_reading`] or a hand-over.
    pub fn pause_reading(&self, now: Instant) {
        self.paused_since.set(Some(now));
    }

    pub fn resume_reading(&self) {
        self.paused_since.set(None);
        self.wake();
    }

    pub fn paused_since(&self) -> Option<Instant> {
        self.paused_since.get()
    }

    /// Asks the session to hand the socket to another shard.
    pub fn request_handover(&self, h: Handover) {
        self.handover.set(Some(h));
        self.wake();
    }

    pub fn take_handover(&self) -> Option<Handover> {
        self.handover.take()
    }

    /// Takes the arrival times of inputs just reflected in a queued update
    /// (leaves `times` empty, keeping its allocation).
    pub fn inputs_in_flight(&self, times: &mut Vec<Instant>) {
        if !times.is_empty() {
            self.inputs_unwritten.borrow_mut().append(times);
        }
    }

    /// The outbound buffer was fully written at `now`: calls `record` with
    /// each reflected input's latency.
    pub fn inputs_written(&self, now: Instant, mut record: impl FnMut(std::time::Duration)) {
        let mut times = self.inputs_unwritten.borrow_mut();
        for t in times.drain(..) {
            record(now.saturating_duration_since(t));
        }
    }

    /// Queues one binary message. On overflow the connection is marked for
    /// close (4002) and `false` is returned; nothing is queued beyond the bound.
    pub fn send(&self, payload: &[u8]) -> bool {
        let ok = self.queue(payload);
        if ok {
            self.wake();
        }
        ok
    }

    /// [`Self::send`] without waking the session: for the tick, which
    /// writes itself when the session lets it (`net::tick_read`).
    pub fn queue(&self, payload: &[u8]) -> bool {
        let ok = self.out.borrow_mut().push_binary(payload).is_ok();
        if !ok {
            self.request_close(CloseReason::SlowConsumer);
        }
        ok
    }

    /// Queues a WebSocket ping (heartbeat). Overflow means a stuck client.
    pub fn ping(&self, payload: &[u8]) {
        if self.out.borrow_mut().push_ping(payload).is_ok() {
            self.wake();
        } else {
            self.request_close(CloseReason::SlowConsumer);
        }
    }

    /// Asks the session to close; the first reason wins.
    pub fn request_close(&self, reason: CloseReason) {
        if self.close.get().is_none() {
            self.close.set(Some(reason));
        }
        self.wake();
    }

    pub fn close_requested(&self) -> Option<CloseReason> {
        self.close.get()
    }

    pub fn touch(&self, now: Instant) {
        self.last_rx.set(now);
    }

    pub fn last_rx(&self) -> Instant {
        self.last_rx.get()
    }

    pub fn player(&self) -> Option<PlayerId> {
        self.player.get()
    }

    pub fn set_player(&self, player: Option<PlayerId>) {
        self.player.set(player);
    }

    pub fn outbound(&self) -> &RefCell<Outbound> {
        &self.out
    }

    pub fn set_waker(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// Wakes the session task (e.g. when the tick hands reading back).
    pub fn wake(&self) {
        if let Some(w) = self.waker.borrow().as_ref() {
            w.wake_by_ref();
        }
    }
}
