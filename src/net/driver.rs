//! The shard's I/O driver: the only code that touches a game connection's
//! socket after its upgrade — one writer per socket.
//!
//! It owns every upgraded `/play` connection of the shard ([`Link`]): the
//! socket, the WebSocket frame state (`util::ws::ServerStream`), the bytes
//! read but not yet handled, and the pooled outbound buffer. Its cycle,
//! driven by the runtime at every tick slot:
//! 1. **read**: reap the ring — every connection's multishot receive has
//!    put what arrived in provided buffers — and append it to the
//!    connections' inboxes;
//! 2. **handle**: parse whole frames; each binary message goes to the
//!    shard core (`Core::message`), control frames are answered here;
//! 3. the core steps the slot's instances and asks for frames, closes,
//!    pauses and hand-overs through [`Effects`], which the driver performs;
//! 4. **write**: one send per connection with anything queued, all
//!    submitted with one `io_uring_enter`.
//!
//! What the core asks for other shards or the directory (mesh messages,
//! directory messages and look-ups), sockets ready to move to another
//! shard, and connections that ended on the driver's side (the peer closed
//! or vanished, a protocol error, a flood, a heartbeat timeout, a slow
//! reader) are queued here for the runtime to pass on.
//!
//! Memory per connection: one [`Link`] (~300 B), the outbound buffer from
//! the pool (`--write-buffer-bytes`), and an inbox that holds only the
//! bytes of a frame cut by a read (empty between messages).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::admission::ConnPermit;
use super::buffers::BufferPool;
use super::outbound::Outbound;
use super::ring::{Completion, Ring, RingConfig};
use crate::directory::ToAgent;
use crate::game::PlayerId;
use crate::metrics::{HistName, ShardMetrics};
use crate::protocol::close::CloseReason;
use crate::shard::effects::{Ask, Effects};
use crate::shard::{ConnId, Core, ShardMsg};
use crate::util::rate::RateWindow;
use crate::util::ws::{self, Ending, Event, Flow, ServerStream};

/// Time allowed to write what is queued and the close frame when closing.
pub const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Time allowed for the peer to answer our close frame.
pub const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Messages handled per connection per round (a tick slot): a client that
/// sent more — a flood — is handled on over the next rounds, with its
/// answers written in between, and meets the flood limit
/// (`--messages-per-second-max`) there. A 60 Hz client sends 2–3 messages
/// per 30 Hz tick; 128 per slot (~1 ms) bounds one flooder's share of a
/// slot to ~0.1 ms of work.
pub const MESSAGES_PER_ROUND_MAX: u64 = 128;
/// Frames read while waiting for a peer's close answer, at most: a peer
/// that keeps flooding instead of answering is cut off.
pub const CLOSE_DRAIN_FRAMES_MAX: u64 = 1024;

const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CANCEL: u64 = 3;

/// What the driver needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct DriverConfig {
    pub shard: usize,
    /// Largest message, and largest frame, accepted (`--max-payload`).
    pub payload_bytes_max: usize,
    /// `--messages-per-second-max` per connection (0: off).
    pub messages_per_second_max: u32,
    /// Writes as one io_uring submission per flush (`--io-writes uring`),
    /// or one `send()` per connection (`syscall`).
    pub batched_writes: bool,
    /// Pooled outbound buffers per shard and their size.
    pub buffers: usize,
    pub buffer_bytes: usize,
    pub ring: RingConfig,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Reading and handling messages.
    Open,
    /// The core paused it (a move or look-up is being decided): nothing is
    /// handled; the receive is cancelled so later bytes stay in the socket.
    Paused,
    /// Moving to shard `to`: flushing, then the socket goes with every
    /// byte not yet handled.
    Leaving {
        to: usize,
        player: PlayerId,
        resume: bool,
    },
    /// Our close frame (or our answer to the peer's) is queued: flush it,
    /// then wait briefly for the peer's answer or the end of the stream.
    Closing { since: Instant, answered: bool },
    /// The socket is shut down; the slot is freed once no operation of
    /// the ring refers to it.
    Dead,
}

/// One connection.
struct Link {
    id: ConnId,
    fd: Option<OwnedFd>,
    phase: Phase,
    stream: ServerStream,
    /// Bytes read and not yet handled (a cut frame, or what follows a pause).
    inbox: Vec<u8>,
    out: Outbound,
    recv_armed: bool,
    /// A cancel of the receive is on its way.
    recv_cancelling: bool,
    /// The peer ended the stream (a receive returned 0).
    eof: bool,
    last_rx: Instant,
    rate: RateWindow,
    permit: Option<ConnPermit>,
    accepted_at: Instant,
    /// Arrival times of the inputs reflected in updates queued and not yet
    /// written; their latency is recorded when the buffer is empty.
    arrivals: Vec<Instant>,
    /// The core has a session for it (until it is told the connection ended,
    /// or forgot it for a hand-over).
    core_knows: bool,
    /// Frames read since the close began (bounded by
    /// [`CLOSE_DRAIN_FRAMES_MAX`]).
    drained_frames: u64,
    /// The receive was stopped because the inbox holds as much as the
    /// driver keeps per connection; it restarts once handled.
    throttled: bool,
    /// Listed in the driver's ready queue (once, however many reads came).
    queued: bool,
}

/// A socket ready to move to another shard.
#[derive(Debug)]
pub struct Departure {
    pub fd: OwnedFd,
    /// Bytes read and not handled (starting at a frame boundary).
    pub unread: Vec<u8>,
    pub accepted_at: Instant,
    pub permit: Option<ConnPermit>,
    pub to: usize,
    pub player: PlayerId,
    pub resume: bool,
}

/// What the runtime must pass on after a call into the core.
#[derive(Debug, Default)]
pub struct Outbox {
    pub mesh: Vec<(usize, ShardMsg)>,
    pub directory: Vec<ToAgent>,
    pub asks: Vec<(ConnId, Ask)>,
    /// Evacuations to settle: who owns the instance now?
    pub owners: Vec<(crate::game::InstanceId, String)>,
    pub departures: Vec<Departure>,
    /// Connections that ended without the core asking: tell the core
    /// (`left`: the client closed cleanly).
    pub ended: Vec<(ConnId, bool)>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.mesh.is_empty()
            && self.directory.is_empty()
            && self.asks.is_empty()
            && self.owners.is_empty()
            && self.departures.is_empty()
            && self.ended.is_empty()
    }
}

/// A connection the driver could not take (no free outbound buffer).
#[derive(Debug)]
pub struct NoBuffer {
    pub fd: OwnedFd,
    pub permit: Option<ConnPermit>,
}

pub struct Driver {
    cfg: DriverConfig,
    ring: Ring,
    links: Vec<Option<Link>>,
    gens: Vec<u16>,
    free: Vec<u32>,
    pool: BufferPool,
    metrics: Rc<ShardMetrics>,
    /// Links with bytes to handle.
    ready: VecDeque<u32>,
    /// Links with bytes to write.
    dirty: Vec<u32>,
    /// Links whose receive must be (re-)armed.
    rearm: Vec<u32>,
    completions: Vec<Completion>,
    /// The time of the event being handled (effects carry no time).
    now: Instant,
    started_at: Instant,
    pub outbox: Outbox,
    /// Answers of the frame codec for one connection (reused).
    answers: Vec<u8>,
    /// The connection being handled: its slot is not freed under it (a
    /// close asked by the core while it handles a message waits until
    /// the handling ends).
    handling: Option<u32>,
    /// Whether the directory agent's queue took the last message: the
    /// runtime sets it (`directory` effects are passed on later, so the
    /// driver reports the agent's state as of the last hand-off).
    pub directory_full: bool,
}

fn user_data(op: u64, gen: u16, index: u32) -> u64 {
    (op << 56) | (u64::from(gen) << 32) | u64::from(index)
}

fn split_user_data(ud: u64) -> (u64, u16, u32) {
    (ud >> 56, (ud >> 32) as u16, ud as u32)
}

impl Driver {
    /// # Errors
    /// When the shard's ring cannot be set up (kernel features, memory).
    pub fn new(
        cfg: DriverConfig,
        metrics: Rc<ShardMetrics>,
        now: Instant,
    ) -> std::io::Result<Driver> {
        Ok(Driver {
            ring: Ring::new(cfg.ring)?,
            pool: BufferPool::new(cfg.buffers, cfg.buffer_bytes),
            cfg,
            links: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            metrics,
            ready: VecDeque::new(),
            dirty: Vec::new(),
            rearm: Vec::new(),
            completions: Vec::new(),
            now,
            started_at: now,
            outbox: Outbox::default(),
            answers: Vec::new(),
            handling: None,
            directory_full: false,
        })
    }

    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.links.iter().filter(|l| l.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a pooled buffer is free for one more connection.
    pub fn has_buffer(&self) -> bool {
        self.pool.available() > 0
    }

    fn conn_id(&self, index: u32) -> ConnId {
        ((self.cfg.shard as u64) << 48)
            | (u64::from(self.gens[index as usize]) << 32)
            | u64::from(index)
    }

    fn index_of(&self, conn: ConnId) -> Option<u32> {
        let index = conn as u32;
        let gen = (conn >> 32) as u16;
        let live = self.links.get(index as usize)?.as_ref()?.id == conn;
        (live && self.gens[index as usize] == gen).then_some(index)
    }

    fn link(&mut self, conn: ConnId) -> Option<(u32, &mut Link)> {
        let index = self.index_of(conn)?;
        Some((index, self.links[index as usize].as_mut().expect("live")))
    }

    /// Takes over an upgraded socket: `first` is written before anything
    /// else (the 101 response of a fresh upgrade; empty for a connection
    /// moving in), `unread` holds bytes the client sent after its request
    /// (or, moving in, after its last handled message).
    ///
    /// # Errors
    /// No outbound buffer is free: the caller answers (HTTP 503 or a close).
    pub fn register(
        &mut self,
        fd: OwnedFd,
        accepted_at: Instant,
        permit: Option<ConnPermit>,
        first: &[u8],
        unread: Vec<u8>,
    ) -> Result<ConnId, NoBuffer> {
        let Some(buf) = self.pool.take() else {
            self.metrics.refused_no_buffer.inc();
            return Err(NoBuffer { fd, permit });
        };
        // The ring waits for the socket itself (blocking sockets are parked
        // in the kernel, not failed with EAGAIN).
        set_blocking(&fd);
        let mut out = Outbound::new(buf);
        let _ = out.push_raw(first);
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.links.push(None);
                self.gens.push(0);
                (self.links.len() - 1) as u32
            }
        };
        self.gens[index as usize] = self.gens[index as usize].wrapping_add(1);
        let id = self.conn_id(index);
        let has_unread = !unread.is_empty();
        self.links[index as usize] = Some(Link {
            id,
            fd: Some(fd),
            phase: Phase::Open,
            stream: ServerStream::new(self.cfg.payload_bytes_max),
            inbox: unread,
            out,
            recv_armed: false,
            recv_cancelling: false,
            eof: false,
            last_rx: self.now,
            rate: RateWindow::new(self.cfg.messages_per_second_max),
            permit,
            accepted_at,
            arrivals: Vec::new(),
            core_knows: true,
            drained_frames: 0,
            throttled: false,
            queued: false,
        });
        self.metrics.connections_open.inc();
        self.rearm.push(index);
        if !first.is_empty() {
            self.dirty.push(index);
        }
        if has_unread {
            self.mark_ready(index);
        }
        Ok(id)
    }

    /// Reads: reaps the ring and appends what arrived to the inboxes.
    pub fn reap(&mut self, now: Instant) {
        self.now = now;
        if let Err(e) = self.ring.reap(&mut self.completions) {
            tracing::error!(shard = self.cfg.shard, error = %e, "io_uring reap failed");
        }
        let mut completions = std::mem::take(&mut self.completions);
        for c in completions.drain(..) {
            self.on_completion(c);
        }
        self.completions = completions;
    }

    fn on_completion(&mut self, c: Completion) {
        let (op, gen, index) = split_user_data(c.user_data);
        if op == OP_RECV {
            if let Some(bid) = c.buffer() {
                // Copy out and give the buffer straight back.
                let n = c.result.max(0) as usize;
                let live = self
                    .links
                    .get(index as usize)
                    .and_then(|l| l.as_ref())
                    .is_some()
                    && self.gens[index as usize] == gen;
                let reading = live
                    && !matches!(
                        self.links[index as usize].as_ref().map(|l| l.phase),
                        Some(Phase::Dead)
                    );
                if reading && n > 0 {
                    let inbox_max = self.cfg.payload_bytes_max * 2;
                    let data = self.ring.received(bid, n);
                    let link = self.links[index as usize].as_mut().expect("live");
                    link.inbox.extend_from_slice(data);
                    link.last_rx = self.now;
                    let wanted = matches!(link.phase, Phase::Open | Phase::Closing { .. });
                    if wanted && !link.queued {
                        link.queued = true;
                        self.ready.push_back(index);
                    }
                    if link.inbox.len() > inbox_max && link.recv_armed && !link.recv_cancelling {
                        // More unhandled than one connection may hold (two
                        // of the largest messages): the rest waits in the
                        // socket, and TCP pushes back on the client.
                        link.throttled = true;
                        link.recv_cancelling = true;
                        let _ = self.ring.cancel(
                            user_data(OP_RECV, gen, index),
                            user_data(OP_CANCEL, gen, index),
                        );
                    }
                }
                self.ring.recycle(bid);
            }
        }
        let Some(link) = self
            .links
            .get_mut(index as usize)
            .and_then(|l| l.as_mut())
            .filter(|_| self.gens[index as usize] == gen)
        else {
            return; // a late completion of a freed slot
        };
        match op {
            OP_RECV => {
                if !c.more() {
                    link.recv_armed = false;
                    link.recv_cancelling = false;
                }
                match c.result {
                    0 => {
                        link.eof = true;
                        self.peer_gone(index);
                    }
                    r if r > 0 || -r == libc::ENOBUFS || -r == libc::ECANCELED => {
                        // A multishot receive also ends by itself (out of
                        // receive buffers for a moment, the completion
                        // queue full) or by our cancel: the bytes wait in
                        // the socket; arm it again whenever the link still
                        // wants to read.
                        if !link.recv_armed && wants_recv(link) {
                            self.rearm.push(index);
                        }
                    }
                    _ => {
                        link.eof = true;
                        self.peer_gone(index);
                    }
                }
            }
            OP_SEND => {
                let written = c.result.max(0) as usize;
                link.out.send_done(written);
                if c.result > 0 {
                    self.metrics.socket_writes.inc();
                    self.metrics.bytes_out.add(written as u64);
                }
                if c.result < 0 {
                    link.eof = true;
                    self.peer_gone(index);
                } else if link.out.is_empty() {
                    for t in link.arrivals.drain(..) {
                        self.metrics.hist.record(
                            HistName::InputToUpdate,
                            self.now.saturating_duration_since(t),
                        );
                    }
                } else {
                    self.dirty.push(index);
                }
            }
            _ => {} // a cancel's own completion
        }
        self.settle(index);
    }

    /// The peer ended the stream, reset it, or a write failed.
    fn peer_gone(&mut self, index: u32) {
        let link = self.links[index as usize].as_mut().expect("live");
        match link.phase {
            Phase::Open | Phase::Paused => {
                self.metrics.closed(CloseReason::Vanished);
                if link.core_knows {
                    link.core_knows = false;
                    self.outbox.ended.push((link.id, false));
                }
                kill(link, &mut self.ring, self.gens[index as usize], index);
            }
            Phase::Closing { .. } => {
                kill(link, &mut self.ring, self.gens[index as usize], index);
            }
            Phase::Leaving { .. } | Phase::Dead => {}
        }
    }

    /// Moves a link on when what it waits for is done: a departure once
    /// flushed and its receive stopped, a close once flushed and answered,
    /// freeing once nothing of the ring refers to it.
    fn settle(&mut self, index: u32) {
        if self.handling == Some(index) {
            return; // `handle` settles it when done
        }
        let Some(link) = self.links[index as usize].as_mut() else {
            return;
        };
        match link.phase {
            Phase::Leaving { to, player, resume } => {
                if link.eof {
                    // The peer went away while moving: nothing to hand over;
                    // the seat on the target waits for a resume.
                    kill(link, &mut self.ring, self.gens[index as usize], index);
                } else if !link.out.sending() && link.out.is_empty() && !link.recv_armed {
                    let link = self.links[index as usize].take().expect("live");
                    let Link {
                        fd,
                        inbox,
                        accepted_at,
                        permit,
                        out,
                        ..
                    } = link;
                    self.pool.give_back(out.into_buffer());
                    self.metrics.connections_open.dec();
                    self.metrics.handoffs_out.inc();
                    self.free.push(index);
                    if let Some(fd) = fd {
                        self.outbox.departures.push(Departure {
                            fd,
                            unread: inbox,
                            accepted_at,
                            permit,
                            to,
                            player,
                            resume,
                        });
                    }
                    return;
                }
            }
            Phase::Closing { answered, .. }
                if (answered || link.eof) && !link.out.sending() && link.out.is_empty() =>
            {
                kill(link, &mut self.ring, self.gens[index as usize], index);
            }
            _ => {}
        }
        let link = self.links[index as usize].as_mut().expect("live");
        if link.phase == Phase::Dead && !link.recv_armed && !link.out.sending() {
            self.free_link(index);
        }
    }

    fn free_link(&mut self, index: u32) {
        let link = self.links[index as usize].take().expect("live");
        self.pool.give_back(link.out.into_buffer());
        self.metrics.connections_open.dec();
        self.free.push(index);
        // `fd` and `permit` drop here: the socket closes, the node's
        // connection count goes down.
    }

    /// Handles the bytes of every connection that has some, feeding whole
    /// messages to `core`.
    pub fn handle_ready(&mut self, core: &mut Core, now: Instant) {
        self.now = now;
        let mut again = Vec::new();
        while let Some(index) = self.ready.pop_front() {
            if let Some(link) = self.links.get_mut(index as usize).and_then(|l| l.as_mut()) {
                link.queued = false;
            }
            if self.handle(core, index) {
                again.push(index);
            }
        }
        // What was left unhandled this round is handled at the next.
        for index in again {
            self.mark_ready(index);
        }
    }

    /// Handles one connection's bytes; `true` when messages are left for
    /// the next round.
    fn handle(&mut self, core: &mut Core, index: u32) -> bool {
        let now = self.now;
        let Some(link) = self.links.get_mut(index as usize).and_then(|l| l.as_mut()) else {
            return false;
        };
        let closing = match link.phase {
            Phase::Open => false,
            Phase::Closing { .. } => true,
            _ => return false,
        };
        if link.inbox.is_empty() {
            return false;
        }
        let conn = link.id;
        self.handling = Some(index);
        let mut inbox = std::mem::take(&mut link.inbox);
        let mut stream = std::mem::replace(&mut link.stream, ServerStream::new(0));
        let mut answers = std::mem::take(&mut self.answers);
        answers.clear();
        let mut events = 0u64;
        let done = stream.process(&mut inbox, &mut answers, |ev, _| {
            events += 1;
            if closing {
                // Only the peer's close answer matters; a peer that floods
                // instead is cut off (below).
                return if events >= CLOSE_DRAIN_FRAMES_MAX {
                    Flow::Stop
                } else {
                    Flow::Continue
                };
            }
            self.metrics.messages_in.inc();
            if !self.admit(index, now) {
                self.metrics.flooders_closed.inc();
                return Flow::Fail(CloseReason::PolicyViolation);
            }
            match ev {
                Event::Message { text: true, .. } => Flow::Fail(CloseReason::UnsupportedData),
                Event::Message {
                    text: false,
                    payload,
                } => {
                    core.message(self, now, conn, payload);
                    match self.links[index as usize].as_ref().map(|l| l.phase) {
                        Some(Phase::Open) if events < MESSAGES_PER_ROUND_MAX => Flow::Continue,
                        // Paused, moving or closing: nothing more is
                        // handled; or the round's share is used up.
                        _ => Flow::Stop,
                    }
                }
                // Answered by the stream itself (counted above).
                Event::Ping(_) if events < MESSAGES_PER_ROUND_MAX => Flow::Continue,
                Event::Ping(_) => Flow::Stop,
                Event::Pong(payload) => {
                    if let Ok(sent) = <[u8; 8]>::try_from(payload).map(u64::from_be_bytes) {
                        let now_us =
                            now.saturating_duration_since(self.started_at).as_micros() as u64;
                        if let Some(rtt) = now_us.checked_sub(sent) {
                            self.metrics.hist.record_us(HistName::Rtt, rtt);
                        }
                    }
                    Flow::Continue
                }
            }
        });
        self.handling = None;
        // Close frames and cut fragments count against the flood limit too.
        let uncounted = done.frames.saturating_sub(events);
        let link = self.links[index as usize].as_mut().expect("live");
        inbox.drain(..done.consumed);
        link.inbox = inbox;
        link.stream = stream;
        let mut flooded = false;
        if !closing {
            for _ in 0..uncounted {
                if !link.rate.admit(now) {
                    flooded = true;
                }
            }
        }
        if closing {
            link.drained_frames += done.frames;
            if link.drained_frames > CLOSE_DRAIN_FRAMES_MAX {
                self.answers = answers;
                kill(link, &mut self.ring, self.gens[index as usize], index);
                self.settle(index);
                return false;
            }
        }
        match (closing, done.ending) {
            (true, Some(_)) => {
                // The peer answered our close: nothing more to send.
                if let Phase::Closing { since, .. } = link.phase {
                    link.phase = Phase::Closing {
                        since,
                        answered: true,
                    };
                }
            }
            (true, None) => {}
            (false, Some(ending)) => {
                let _ = link.out.push_raw(&answers);
                let (reason, left) = match ending {
                    Ending::PeerClosed => (CloseReason::Normal, true),
                    Ending::Failed { reason, .. } => (reason, false),
                };
                self.metrics.closed(reason);
                link.phase = Phase::Closing {
                    since: now,
                    // Our frame answers theirs, or ends a broken stream:
                    // no answer to wait for.
                    answered: true,
                };
                if link.core_knows {
                    link.core_knows = false;
                    self.outbox.ended.push((conn, left));
                }
                self.dirty.push(index);
            }
            (false, None) => {
                if flooded {
                    self.metrics.flooders_closed.inc();
                    self.answers = answers;
                    self.close_link(index, CloseReason::PolicyViolation);
                    return false;
                }
                if !answers.is_empty()
                    && matches!(link.phase, Phase::Open | Phase::Paused)
                    && !self.queue(index, &answers, false)
                {
                    self.answers = answers;
                    return false; // closed: a slow consumer
                }
            }
        }
        self.answers = answers;
        let link = self.links[index as usize].as_mut().expect("live");
        let more = done.stopped && link.phase == Phase::Open && !link.inbox.is_empty();
        if link.throttled && link.inbox.len() <= self.cfg.payload_bytes_max {
            // Handled down to one message's worth: read again (once the
            // cancelled receive has ended, if it has not yet).
            link.throttled = false;
            if !link.recv_armed {
                self.rearm.push(index);
            }
        }
        self.settle(index);
        more
    }

    /// Lists a connection for handling at the next round (once).
    fn mark_ready(&mut self, index: u32) {
        if let Some(link) = self.links.get_mut(index as usize).and_then(|l| l.as_mut()) {
            if !link.queued {
                link.queued = true;
                self.ready.push_back(index);
            }
        }
    }

    fn admit(&mut self, index: u32, now: Instant) -> bool {
        let link = self.links[index as usize].as_mut().expect("live");
        link.rate.admit(now)
    }

    /// Starts closing a connection with `reason` (our close frame after
    /// what is queued) and tells the core, unless it asked itself.
    fn close_link(&mut self, index: u32, reason: CloseReason) {
        let now = self.now;
        let link = self.links[index as usize].as_mut().expect("live");
        if !matches!(link.phase, Phase::Open | Phase::Paused) {
            return;
        }
        self.metrics.closed(reason);
        let mut frame = Vec::with_capacity(ws::CONTROL_PAYLOAD_BYTES_MAX + 2);
        ws::push_close(&mut frame, reason.code(), reason.label());
        let fits = link.out.push_raw(&frame).is_ok();
        link.phase = Phase::Closing {
            since: now,
            answered: false,
        };
        if !link.recv_armed && !link.eof {
            // Paused connections stopped reading: read again for the
            // peer's answer to our close.
            self.rearm.push(index);
        }
        if link.core_knows {
            link.core_knows = false;
            self.outbox
                .ended
                .push((link.id, reason == CloseReason::Normal));
        }
        if !fits {
            // A reader so slow that even the close frame does not fit:
            // cut it off.
            kill(link, &mut self.ring, self.gens[index as usize], index);
        }
        self.dirty.push(index);
        self.settle(index);
    }

    /// Writes: one send per connection with bytes queued, (re-)arms
    /// receives, and submits it all with one `io_uring_enter`; then takes
    /// the completions the kernel posted at once (sends that fit the
    /// socket buffer complete inline).
    pub fn flush(&mut self, now: Instant) {
        self.now = now;
        for index in std::mem::take(&mut self.rearm) {
            let Some(link) = self.links.get_mut(index as usize).and_then(|l| l.as_mut()) else {
                continue;
            };
            if !wants_recv(link) || link.recv_armed {
                continue;
            }
            let Some(fd) = link.fd.as_ref().map(|f| f.as_raw_fd()) else {
                continue;
            };
            let gen = self.gens[index as usize];
            if self
                .ring
                .recv_multishot(fd, user_data(OP_RECV, gen, index))
                .is_ok()
            {
                link.recv_armed = true;
            }
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &index in &dirty {
            let Some(link) = self.links.get_mut(index as usize).and_then(|l| l.as_mut()) else {
                continue;
            };
            if link.phase == Phase::Dead {
                continue;
            }
            let Some(fd) = link.fd.as_ref().map(|f| f.as_raw_fd()) else {
                continue;
            };
            if let Some((ptr, len)) = link.out.begin_send() {
                let gen = self.gens[index as usize];
                if !self.cfg.batched_writes {
                    // SAFETY: `ptr..ptr+len` is the pinned unsent part of
                    // the outbound buffer; `fd` is the link's open socket.
                    let n = unsafe {
                        libc::send(fd, ptr.cast(), len, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                    };
                    let err = std::io::Error::last_os_error().raw_os_error();
                    match n {
                        n if n as usize == len => {
                            self.completions
                                .push(Completion::sent(user_data(OP_SEND, gen, index), len as i32));
                            continue;
                        }
                        n if n > 0 => {
                            // Part of it: the rest waits in the kernel (ring).
                            link.out.send_done(n as usize);
                            self.metrics.socket_writes.inc();
                            self.metrics.bytes_out.add(n as u64);
                        }
                        _ if err == Some(libc::EAGAIN) => link.out.send_done(0),
                        _ => {
                            self.completions.push(Completion::sent(
                                user_data(OP_SEND, gen, index),
                                -err.unwrap_or(libc::EIO),
                            ));
                            continue;
                        }
                    }
                    let Some((ptr, len)) = link.out.begin_send() else {
                        continue;
                    };
                    // SAFETY: as below.
                    let pushed = unsafe {
                        self.ring
                            .send(fd, ptr, len as u32, user_data(OP_SEND, gen, index))
                    };
                    if pushed.is_err() {
                        link.out.send_done(0);
                    }
                    continue;
                }
                // SAFETY: the bytes stay pinned in the outbound buffer
                // (`Outbound::begin_send`) until this send's completion,
                // and the buffer lives in the link until then (a link is
                // freed only with no send in flight).
                let pushed = unsafe {
                    self.ring
                        .send(fd, ptr, len as u32, user_data(OP_SEND, gen, index))
                };
                if pushed.is_err() {
                    link.out.send_done(0);
                }
            }
        }
        dirty.clear();
        self.dirty = dirty;
        self.reap(now);
    }

    /// Heartbeats: connections silent for `silent_max` are closed (4001);
    /// with `ping`, the others are pinged (the payload is the driver's
    /// clock in µs, so the pong gives the round trip). Closes that ran out
    /// of time are cut.
    pub fn heartbeat(&mut self, now: Instant, silent_max: Duration, ping: bool) {
        self.now = now;
        let payload =
            (now.saturating_duration_since(self.started_at).as_micros() as u64).to_be_bytes();
        for index in 0..self.links.len() as u32 {
            let Some(link) = self.links[index as usize].as_mut() else {
                continue;
            };
            match link.phase {
                Phase::Open | Phase::Paused => {
                    if now.saturating_duration_since(link.last_rx) >= silent_max {
                        self.close_link(index, CloseReason::HeartbeatTimeout);
                    } else if ping {
                        if link.out.push_ping(&payload).is_err() {
                            self.close_link(index, CloseReason::SlowConsumer);
                        } else {
                            self.dirty.push(index);
                        }
                    }
                }
                Phase::Closing { since, answered } => {
                    let flushed = link.out.is_empty() && !link.out.sending();
                    let limit = if flushed {
                        CLOSE_FLUSH_TIMEOUT + CLOSE_DRAIN_TIMEOUT
                    } else {
                        CLOSE_FLUSH_TIMEOUT
                    };
                    if now.saturating_duration_since(since) >= limit || (answered && flushed) {
                        kill(link, &mut self.ring, self.gens[index as usize], index);
                    }
                    self.settle(index);
                }
                Phase::Leaving { .. } | Phase::Dead => {}
            }
        }
    }

    /// Closes every connection with `reason` (shutdown: 1001).
    pub fn close_all(&mut self, reason: CloseReason) {
        for index in 0..self.links.len() as u32 {
            if self.links[index as usize].is_some() {
                self.close_link(index, reason);
            }
        }
    }

    /// Closes open connections the core does not know (none in normal
    /// operation; a safety net).
    pub fn open_count(&self) -> usize {
        self.len()
    }
}

impl Driver {
    /// Queues one binary frame; when the outbound buffer is full and no
    /// send is in flight, what is queued is written at once (a burst of
    /// answers within one round) and the frame queued after it. Still no
    /// room — the kernel holds the previous write, the client does not
    /// read — is a slow consumer (close 4002). `false` when closed.
    fn queue_frame(&mut self, index: u32, payload: &[u8]) -> bool {
        self.queue(index, payload, true)
    }

    /// [`Self::queue_frame`] for a binary message (`frame`) or bytes
    /// already framed.
    fn queue(&mut self, index: u32, payload: &[u8], frame: bool) -> bool {
        let push = |out: &mut Outbound| {
            if frame {
                out.push_binary(payload)
            } else {
                out.push_raw(payload)
            }
        };
        let link = self.links[index as usize].as_mut().expect("live");
        if push(&mut link.out).is_ok() {
            self.dirty.push(index);
            return true;
        }
        if !link.out.sending() {
            if let Some(fd) = link.fd.as_ref().map(|f| f.as_raw_fd()) {
                let unsent = link.out.unsent();
                // SAFETY: writes from the link's own buffer to its socket.
                let n = unsafe {
                    libc::send(
                        fd,
                        unsent.as_ptr().cast(),
                        unsent.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                if n > 0 {
                    link.out.advance(n as usize);
                    self.metrics.socket_writes.inc();
                    self.metrics.bytes_out.add(n as u64);
                    if push(&mut link.out).is_ok() {
                        self.dirty.push(index);
                        return true;
                    }
                }
            }
        }
        self.close_link(index, CloseReason::SlowConsumer);
        false
    }
}

impl Effects for Driver {
    fn send(&mut self, conn: ConnId, payload: &[u8]) {
        let Some((index, link)) = self.link(conn) else {
            return;
        };
        if !matches!(
            link.phase,
            Phase::Open | Phase::Paused | Phase::Leaving { .. }
        ) {
            return;
        }
        self.queue_frame(index, payload);
    }

    fn send_update(&mut self, conn: ConnId, payload: &[u8], arrivals: &mut Vec<Instant>) {
        let Some((index, link)) = self.link(conn) else {
            arrivals.clear();
            return;
        };
        if !matches!(link.phase, Phase::Open | Phase::Paused) {
            arrivals.clear();
            return;
        }
        if !self.queue_frame(index, payload) {
            arrivals.clear();
            return;
        }
        let link = self.links[index as usize].as_mut().expect("live");
        link.arrivals.append(arrivals);
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        let Some((index, link)) = self.link(conn) else {
            return;
        };
        // The core asked: it is told the connection ended like any other
        // close (its seat is kept or released by `Core::disconnected`).
        let _ = link;
        self.close_link(index, reason);
    }

    fn pause(&mut self, conn: ConnId) {
        let Some((index, link)) = self.link(conn) else {
            return;
        };
        if link.phase != Phase::Open {
            return;
        }
        link.phase = Phase::Paused;
        if link.recv_armed && !link.recv_cancelling {
            let gen = (conn >> 32) as u16;
            link.recv_cancelling = true;
            let _ = self.ring.cancel(
                user_data(OP_RECV, gen, index),
                user_data(OP_CANCEL, gen, index),
            );
        }
    }

    fn resume(&mut self, conn: ConnId) {
        let Some((index, link)) = self.link(conn) else {
            return;
        };
        if link.phase != Phase::Paused {
            return;
        }
        link.phase = Phase::Open;
        self.rearm.push(index);
        self.mark_ready(index);
    }

    fn hand_over(&mut self, conn: ConnId, to: usize, player: PlayerId, resume: bool) {
        let Some((index, link)) = self.link(conn) else {
            return;
        };
        if !matches!(link.phase, Phase::Open | Phase::Paused) {
            return;
        }
        link.phase = Phase::Leaving { to, player, resume };
        link.core_knows = false;
        if link.recv_armed && !link.recv_cancelling {
            let gen = (conn >> 32) as u16;
            link.recv_cancelling = true;
            let _ = self.ring.cancel(
                user_data(OP_RECV, gen, index),
                user_data(OP_CANCEL, gen, index),
            );
        }
        self.dirty.push(index);
        self.settle(index);
    }

    fn mesh(&mut self, to: usize, msg: ShardMsg) {
        self.outbox.mesh.push((to, msg));
    }

    fn directory(&mut self, msg: ToAgent) -> bool {
        if self.directory_full {
            return false;
        }
        self.outbox.directory.push(msg);
        true
    }

    fn ask(&mut self, conn: ConnId, ask: Ask) {
        self.outbox.asks.push((conn, ask));
    }

    fn owner_of(&mut self, instance: crate::game::InstanceId, id: String) {
        self.outbox.owners.push((instance, id));
    }
}

/// Makes the socket blocking: the ring parks a receive or send the socket
/// cannot serve yet, instead of failing it with EAGAIN.
fn set_blocking(fd: &OwnedFd) {
    // SAFETY: fcntl on a valid, owned descriptor.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

/// Ends the connection: both directions shut down (a send parked in the
/// kernel fails, the peer sees the end), and a receive still armed is
/// cancelled — a peer that keeps sending would otherwise keep it
/// completing with data. The slot is freed once both have completed.
/// Whether a link should have a receive armed: open or closing (the peer's
/// close answer), the stream not ended, and not holding too much unhandled.
fn wants_recv(link: &Link) -> bool {
    matches!(link.phase, Phase::Open | Phase::Closing { .. }) && !link.eof && !link.throttled
}

fn kill(link: &mut Link, ring: &mut Ring, gen: u16, index: u32) {
    link.phase = Phase::Dead;
    if let Some(fd) = &link.fd {
        // SAFETY: shutdown on a valid, owned descriptor.
        unsafe {
            libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
    if link.recv_armed && !link.recv_cancelling {
        link.recv_cancelling = true;
        let _ = ring.cancel(
            user_data(OP_RECV, gen, index),
            user_data(OP_CANCEL, gen, index),
        );
    }
}
