//! One connection in its running phase — a player after Joined, an /echo
//! client after the upgrade — on its executor's drive (`drive`): the raw
//! socket, the messages it owes on its schedule, and the frames it reads,
//! each measured at its arrival. The drive owns the clock's wake-ups and
//! the epoll set; this is the connection's own logic.
//!
//! Latency definitions: input → update, from an input's intended send time
//! to the first StateUpdate whose `last_input_seq` covers it; ping RTT and
//! echo RTT from the intended send time carried in the message. A
//! connection that is late sends everything it owes at once, oldest first,
//! in one `send`, and the lateness counts (open loop).

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::connect::{close_label, io_kind_label, MESSAGE_BYTES_MAX, READ_BUFFER_BYTES};
use super::player::server_error_label;
use super::raw::{
    parse_server_frame, push_binary, push_client_frame, push_close, MaskKeys, Outlet, ServerFrame,
};
use super::schedule::{InputLedger, Schedule};
use super::stats::{duration_us, Metric, ThreadStats};
use crate::protocol::{decode_server, peek_state_update, ClientEncoder, ServerMsg};

/// Bytes at the start of each echo message that carry its intended send
/// time (µs after the run's start, little-endian).
pub const ECHO_STAMP_BYTES: usize = 8;

/// Reads of one connection per readiness event (each up to its buffer)
/// before the others get theirs; input left over is read in the next turn.
const READS_PER_TURN: usize = 4;

/// A backlog that cannot go out at the end is retried this often until the
/// close timeout.
const BACKLOG_RETRY: Duration = Duration::from_millis(1);

/// What a connection sends.
pub enum Traffic {
    /// A player: inputs and pings; updates come at the server's tick period.
    Play {
        inputs: Schedule,
        pings: Option<Schedule>,
        tick_period: Duration,
    },
    /// An /echo client: messages of `message_bytes` (≥ [`ECHO_STAMP_BYTES`]).
    Echo {
        schedule: Schedule,
        message_bytes: usize,
    },
}

/// A connection the executor hands to its drive once set up.
pub struct Handover {
    /// The socket (a duplicate: the executor's handle is closed).
    pub fd: OwnedFd,
    /// Bytes read past the last set-up message: the start of the next frame.
    pub unread: Vec<u8>,
    pub traffic: Traffic,
}

/// What the run around a connection gives it.
pub struct Env<'a> {
    /// The run's time zero: pings and echoes carry their time from it.
    pub start: Instant,
    /// No message is due at or after this; connections close then.
    pub end: Instant,
    /// Time allowed for the server to answer our close.
    pub close_timeout: Duration,
    pub keys: &'a MaskKeys,
    pub stats: &'a mut ThreadStats,
    /// Frames being written (one `send` per turn), reused.
    pub out: &'a mut Vec<u8>,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Running,
    /// Our close is sent; the server's answer is awaited until `until`.
    Closing {
        until: Instant,
    },
    Done,
}

/// What a turn came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Waiting for the socket or the schedule.
    Idle,
    /// Input is left after the read budget: another turn soon.
    More,
    /// Finished; its counts are in the stats.
    Done,
}

enum Kind {
    Play {
        inputs: Schedule,
        pings: Option<Schedule>,
        tick_period: Duration,
        enc: ClientEncoder,
        ledger: InputLedger,
        last_update: Option<Instant>,
    },
    Echo {
        schedule: Schedule,
        /// Reused: only the stamp changes between messages.
        message: Vec<u8>,
        sent: u64,
        received: u64,
    },
}

/// One running connection.
pub struct Running {
    fd: OwnedFd,
    outlet: Outlet,
    buf: ReadBuf,
    /// Unread input may be waiting (edge-triggered: set by an event,
    /// cleared by a short read unless the peer's FIN was signalled).
    readable: bool,
    peer_done: bool,
    kind: Kind,
    phase: Phase,
    /// Its end was counted (a disconnect, or our close answered).
    counted: bool,
}

impl Running {
    pub fn new(h: Handover) -> Running {
        let kind = match h.traffic {
            Traffic::Play {
                inputs,
                pings,
                tick_period,
            } => Kind::Play {
                inputs,
                pings,
                tick_period,
                enc: ClientEncoder::new(),
                ledger: InputLedger::default(),
                last_update: None,
            },
            Traffic::Echo {
                schedule,
                message_bytes,
            } => Kind::Echo {
                schedule,
                message: vec![0; message_bytes.max(ECHO_STAMP_BYTES)],
                sent: 0,
                received: 0,
            },
        };
        Running {
            outlet: Outlet::new(h.fd.as_raw_fd()),
            fd: h.fd,
            // Bytes that came with the last set-up message may hold whole
            // frames already: the first turn reads them (and the socket).
            buf: ReadBuf::new(h.unread),
            readable: true,
            peer_done: false,
            kind,
            phase: Phase::Running,
            counted: false,
        }
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// An epoll event for this connection.
    pub fn ready(&mut self, flags: u32) {
        if flags & libc::EPOLLIN as u32 != 0 {
            self.readable = true;
        }
        if flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            self.readable = true;
            self.peer_done = true;
        }
    }

    /// When the drive must next call [`Running::send_due`]: the next
    /// message, the run's end (to close), or the close's deadline.
    pub fn next_due(&self, end: Instant) -> Option<Instant> {
        match self.phase {
            Phase::Done => None,
            Phase::Closing { until } if self.outlet.has_backlog() => {
                Some(until.min(Instant::now() + BACKLOG_RETRY))
            }
            Phase::Closing { until } => Some(until),
            Phase::Running => {
                let next = match &self.kind {
                    Kind::Play {
                        inputs,
                        pings: Some(p),
                        ..
                    } => inputs.next_due().min(p.next_due()),
                    Kind::Play { inputs, .. } => inputs.next_due(),
                    Kind::Echo { schedule, .. } => schedule.next_due(),
                };
                Some(next.min(end))
            }
        }
    }

    /// Sends every message due at `now`, in one `send`; at the run's end,
    /// the farewell; once closing, the backlog and the close's deadline.
    pub fn send_due(&mut self, env: &mut Env<'_>, now: Instant) -> Step {
        match self.phase {
            Phase::Done => return Step::Done,
            Phase::Closing { until } => {
                if self.outlet.flush().is_err() || now >= until {
                    if now >= until {
                        env.stats.counters.closes_unanswered += 1;
                    }
                    return self.finish(env);
                }
                return Step::Idle;
            }
            Phase::Running => {}
        }
        env.out.clear();
        let (count, bytes) = self.take_due(env, now);
        if count > 0 {
            if let Err(reason) = self.outlet.send(env.out) {
                return self.disconnect(env, reason);
            }
            env.stats.counters.msgs_out += count;
            env.stats.counters.bytes_out += bytes;
        }
        if now >= env.end {
            self.farewell(env);
        }
        Step::Idle
    }

    /// Appends every message due at `now` (and before the end), oldest
    /// first; returns (messages, payload bytes).
    fn take_due(&mut self, env: &mut Env<'_>, now: Instant) -> (u64, u64) {
        let (mut count, mut bytes) = (0u64, 0u64);
        let (stats, out, keys) = (&mut *env.stats, &mut *env.out, env.keys);
        let mut push = |stats: &mut ThreadStats, due: Instant, frame: &[u8]| {
            stats.record(Metric::SendLag, now.saturating_duration_since(due));
            push_binary(out, frame, keys);
            count += 1;
            bytes += frame.len() as u64;
        };
        match &mut self.kind {
            Kind::Play {
                inputs,
                pings,
                enc,
                ledger,
                ..
            } => {
                while let Some(due) = inputs.take_due(now, env.end) {
                    stats.counters.inputs_sent += 1;
                    let seq = u32::try_from(inputs.sent()).unwrap_or(u32::MAX);
                    ledger.sent(seq);
                    // A slow circle: the arena's players keep moving.
                    let angle = seq as f32 * 0.05;
                    push(stats, due, enc.input(seq, angle.cos(), angle.sin(), 0));
                }
                if let Some(p) = pings {
                    while let Some(due) = p.take_due(now, env.end) {
                        stats.counters.pings_sent += 1;
                        let client_time = due.saturating_duration_since(env.start).as_secs_f64();
                        push(stats, due, enc.ping(client_time));
                    }
                }
            }
            Kind::Echo {
                schedule,
                message,
                sent,
                ..
            } => {
                while let Some(due) = schedule.take_due(now, env.end) {
                    stats.counters.echoes_sent += 1;
                    *sent += 1;
                    let us = duration_us(due.saturating_duration_since(env.start));
                    message[..ECHO_STAMP_BYTES].copy_from_slice(&us.to_le_bytes());
                    push(stats, due, message);
                }
            }
        }
        (count, bytes)
    }

    /// Leave (players: a clean close alone would keep the seat for the
    /// reconnect grace, and the next run would share the instance with
    /// idle entities), then our close frame.
    fn farewell(&mut self, env: &mut Env<'_>) {
        env.out.clear();
        let mut leave_bytes = None;
        if let Kind::Play { enc, .. } = &mut self.kind {
            let leave = enc.leave();
            leave_bytes = Some(leave.len() as u64);
            push_binary(env.out, leave, env.keys);
        }
        push_close(env.out, 1000, "load run over", env.keys);
        if self.outlet.send(env.out).is_ok() {
            if let Some(n) = leave_bytes {
                env.stats.counters.msgs_out += 1;
                env.stats.counters.bytes_out += n;
            }
        }
        self.phase = Phase::Closing {
            until: env.end + env.close_timeout,
        };
    }

    /// Reads what the socket holds (up to the turn's budget) and handles
    /// every whole frame, each timed when its read returned.
    pub fn on_readable(&mut self, env: &mut Env<'_>) -> Step {
        for _ in 0..READS_PER_TURN {
            // Frames already buffered first (the set-up's leftovers).
            if let Some(step) = self.handle_frames(env, Instant::now()) {
                return step;
            }
            if !self.readable {
                return Step::Idle;
            }
            let room = self.buf.room();
            let asked = room.len();
            // SAFETY: `room` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    room.as_mut_ptr().cast(),
                    asked,
                    libc::MSG_DONTWAIT,
                )
            };
            let now = Instant::now();
            match n {
                0 => return self.disconnect(env, "vanished".to_owned()),
                n if n > 0 => {
                    let n = n as usize;
                    self.buf.end += n;
                    if n < asked && !self.peer_done {
                        self.readable = false;
                    }
                }
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::WouldBlock {
                        self.readable = false;
                    } else {
                        return self.disconnect(env, io_kind_label(&e));
                    }
                }
            }
            if let Some(step) = self.handle_frames(env, now) {
                return step;
            }
        }
        if self.readable {
            Step::More
        } else {
            Step::Idle
        }
    }

    /// Every whole frame in the buffer; `Some` when the connection ended.
    fn handle_frames(&mut self, env: &mut Env<'_>, now: Instant) -> Option<Step> {
        loop {
            let parsed = if self.buf.start == self.buf.end {
                self.buf.start = 0;
                self.buf.end = 0;
                return None;
            } else {
                parse_server_frame(
                    &self.buf.data[self.buf.start..self.buf.end],
                    MESSAGE_BYTES_MAX,
                )
            };
            let (frame, used) = match parsed {
                Ok(Some(f)) => f,
                Ok(None) => return None,
                Err(_) => return Some(self.disconnect(env, "message_too_big".to_owned())),
            };
            let payload_len = match &frame {
                ServerFrame::Binary(p) | ServerFrame::Ping(p) => p.len(),
                _ => 0,
            };
            env.stats.counters.msgs_in += 1;
            env.stats.counters.bytes_in += payload_len as u64;
            let ended = match frame {
                ServerFrame::Binary(payload) => {
                    on_binary(&mut self.kind, env, payload, now);
                    None
                }
                ServerFrame::Close(code) => Some(code),
                ServerFrame::Ping(payload) => {
                    let mut pong = Vec::with_capacity(payload.len() + 8);
                    push_client_frame(&mut pong, 0xA, payload, env.keys);
                    if let Err(reason) = self.outlet.send(&pong) {
                        return Some(self.disconnect(env, reason));
                    }
                    None
                }
                ServerFrame::Text => {
                    env.stats.error("unexpected_text_message");
                    None
                }
                ServerFrame::Unexpected => {
                    env.stats.error("unexpected_server_frame");
                    None
                }
                ServerFrame::Pong => None,
            };
            self.buf.start += used;
            if let Some(code) = ended {
                return Some(self.on_close(env, code));
            }
        }
    }

    /// The server's close: the answer to ours, or its own decision (counted,
    /// and answered).
    fn on_close(&mut self, env: &mut Env<'_>, code: Option<u16>) -> Step {
        if self.phase == Phase::Running {
            let mut reply = Vec::new();
            push_close(&mut reply, code.unwrap_or(1000), "", env.keys);
            let _ = self.outlet.send(&reply);
            return self.disconnect(env, close_label(code));
        }
        self.finish(env)
    }

    /// Ends the connection for a reason other than the run's end.
    fn disconnect(&mut self, env: &mut Env<'_>, reason: String) -> Step {
        if self.phase == Phase::Running && !self.counted {
            self.counted = true;
            env.stats.disconnect(reason);
        }
        self.finish(env)
    }

    /// Its last counts; the drive drops it (closing the socket).
    fn finish(&mut self, env: &mut Env<'_>) -> Step {
        if self.phase != Phase::Done {
            self.phase = Phase::Done;
            match &self.kind {
                Kind::Play { ledger, .. } => {
                    env.stats.counters.inputs_unanswered += u64::from(ledger.unanswered());
                }
                Kind::Echo { sent, received, .. } => {
                    env.stats.counters.echoes_unanswered += sent.saturating_sub(*received);
                }
            }
        }
        Step::Done
    }
}

/// A binary message: a StateUpdate (acknowledging inputs), a Pong or an
/// Error (players), or an echo.
fn on_binary(kind: &mut Kind, env: &mut Env<'_>, payload: &[u8], now: Instant) {
    let stats = &mut *env.stats;
    match kind {
        Kind::Play {
            inputs,
            tick_period,
            ledger,
            last_update,
            ..
        } => {
            if let Some((_tick, last_seq)) = peek_state_update(payload) {
                stats.counters.updates_received += 1;
                if let Some(prev) = last_update.replace(now) {
                    let gap = now.saturating_duration_since(prev);
                    stats.record(Metric::UpdateJitter, gap.abs_diff(*tick_period));
                }
                let ahead = ledger.ack(last_seq, |seq| {
                    let intended = inputs.due(u64::from(seq) - 1);
                    stats.record(
                        Metric::InputToUpdate,
                        now.saturating_duration_since(intended),
                    );
                });
                stats.counters.acks_ahead += u64::from(ahead);
                return;
            }
            match decode_server(payload) {
                Ok(ServerMsg::Pong { client_time, .. }) => {
                    match Duration::try_from_secs_f64(client_time) {
                        Ok(offset) => {
                            stats.counters.pongs_received += 1;
                            let intended = env.start + offset;
                            stats.record(Metric::PingRtt, now.saturating_duration_since(intended));
                        }
                        Err(_) => stats.error("bad_pong_client_time"),
                    }
                }
                Ok(ServerMsg::Error { code, .. }) => stats.error(server_error_label(code)),
                Ok(_) => {}
                Err(_) => stats.error("bad_server_message"),
            }
        }
        Kind::Echo { received, .. } => match payload.get(..ECHO_STAMP_BYTES) {
            Some(stamp) => {
                let us = u64::from_le_bytes(stamp.try_into().expect("8 bytes"));
                *received += 1;
                stats.counters.echoes_received += 1;
                let intended = env.start + Duration::from_micros(us);
                stats.record(Metric::EchoRtt, now.saturating_duration_since(intended));
            }
            None => stats.error("echo_too_short"),
        },
    }
}

/// A read buffer that is always initialised (`data[start..end]` unread),
/// reused for the whole connection.
struct ReadBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn new(unread: Vec<u8>) -> Self {
        let end = unread.len();
        let mut data = unread;
        data.resize(end.max(READ_BUFFER_BYTES), 0);
        ReadBuf {
            data,
            start: 0,
            end,
        }
    }

    /// Room to read into: compacts, and grows (bounded by the largest
    /// message) when one frame fills the buffer.
    fn room(&mut self) -> &mut [u8] {
        if self.end == self.data.len() {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.data.len() {
                let grown = (self.data.len() * 2).min(MESSAGE_BYTES_MAX + 16);
                self.data.resize(grown.max(self.data.len() + 1), 0);
            }
        }
        &mut self.data[self.end..]
    }
}
