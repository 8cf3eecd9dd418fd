//! Reading a seated player's inputs from the shard's tick instead of its
//! session task.
//!
//! Inputs are applied only at the tick, so reading them the moment they
//! arrive buys nothing but cost: each one took an io_uring readiness poll
//! (armed, completed, re-armed), a task wake-up and a pass through the
//! WebSocket library. While a session is idle between messages, it lets the
//! tick do the reading: just before stepping, the tick makes one
//! non-blocking `recv` per such connection into the connection's fenced
//! buffer (`net::fenced::Inbox`) and handles every whole binary frame at the
//! front of it, exactly as the session would have. An input that arrives
//! after that `recv` waits for the next tick, as one arriving after the
//! tick's start always did. Pongs (heartbeat answers) are taken the same
//! way. Anything else at the front (a ping, a close, a fragment, a text
//! frame, the end of the stream, an error) turns tick reading off and wakes
//! the session, which reads on from the same buffer after the tick: one
//! buffer, one order, and the fence still holds every unread byte for a
//! hand-over. (Inputs queued behind such a frame are then applied one tick
//! later; that is why pongs, which every heartbeat brings, are not left to
//! the session.)
//!
//! Such a session has nothing of its own to write either, so the tick also
//! writes the connection's outbound bytes (the update it just encoded, and
//! anything queued since the last tick) with one non-blocking `send` — one
//! write per player per tick as before, without waking the session task.
//! A partial write or an error wakes the session, which finishes the write
//! or reports the error.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::net::fenced::Inbox;

/// `recv` calls per connection per tick, at most. Each reads up to
/// `--read-buffer-bytes`; a client with more queued than that is no
/// ordinary player between two ticks, and the tick hands it back to its
/// session, which reads on as fast as before, outside the tick (and meets
/// the flood limits: `--messages-per-second-max`, the outbound bound for
/// one that does not read its answers).
pub const TICK_READS_PER_CONN_MAX: u32 = 2;

/// Messages the tick handles per connection per tick, at most; beyond it
/// the session takes over as above. Bounds the work a flooding client can
/// put inside the tick, where it would delay every other player's update.
pub const TICK_MESSAGES_PER_CONN_MAX: u32 = 8;

/// `--messages-per-second-max` for one connection: frames of any kind
/// (inputs, pings, control frames) counted per one-second window. A client
/// over it is flooding and is closed (1008) before it costs its shard more.
/// Shared by the session's and the tick's reads of a connection.
#[derive(Debug, Default)]
pub struct MessageRate {
    max: u32,
    window_start: Option<Instant>,
    in_window: u32,
}

impl MessageRate {
    pub fn new(max: u32) -> Self {
        Self {
            max,
            window_start: None,
            in_window: 0,
        }
    }

    pub fn admit(&mut self, now: Instant) -> bool {
        if self.max == 0 {
            return true;
        }
        match self.window_start {
            Some(t) if now.duration_since(t) < Duration::from_secs(1) => self.in_window += 1,
            _ => {
                self.window_start = Some(now);
                self.in_window = 1;
            }
        }
        self.in_window <= self.max
    }
}

/// A connection's side of tick reading (in `Conn`).
#[derive(Debug, Default)]
pub struct TickRead {
    /// The tick may read now. Set by the session when it is between
    /// messages; cleared by the tick when it meets something only the
    /// session handles, and by the session at every event it handles.
    on: Cell<bool>,
    /// The socket and the session's fenced buffer, once the session runs.
    source: RefCell<Option<(RawFd, Rc<RefCell<Inbox>>)>>,
    pub rate: RefCell<MessageRate>,
}

impl TickRead {
    /// Called by the session when it starts: the fd stays open for as long
    /// as the session runs, and tick reading is off whenever it may close.
    pub fn attach(&self, fd: RawFd, inbox: Rc<RefCell<Inbox>>, messages_per_second_max: u32) {
        *self.source.borrow_mut() = Some((fd, inbox));
        *self.rate.borrow_mut() = MessageRate::new(messages_per_second_max);
    }

    pub fn is_on(&self) -> bool {
        self.on.get()
    }

    /// The session is between messages and lets the tick read.
    pub fn turn_on(&self) {
        if self.source.borrow().is_some() {
            self.on.set(true);
        }
    }

    pub fn turn_off(&self) {
        self.on.set(false);
    }

    /// The socket, while tick reading is on.
    pub fn fd(&self) -> Option<RawFd> {
        if !self.on.get() {
            return None;
        }
        self.source.borrow().as_ref().map(|(fd, _)| *fd)
    }

    /// The socket and buffer, while tick reading is on.
    pub fn source(&self) -> Option<(RawFd, Rc<RefCell<Inbox>>)> {
        if !self.on.get() {
            return None;
        }
        self.source.borrow().clone()
    }
}
