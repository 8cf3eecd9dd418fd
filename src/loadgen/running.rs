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
use crate::protocol::delta::{ClientWorld, DeltaError};
use crate::protocol::{
    decode_server, peek_state_delta, peek_state_update, ClientEncoder, ServerMsg,
};

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
        /// Protocol v2: Welcome's delta history (the worlds kept to
        /// rebuild from deltas); `None`: protocol v1.
        v2_history: Option<u16>,
        /// Stands still: inputs of (0, 0).
        idle: bool,
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
        /// Protocol v2's state; `None`: protocol v1.
        v2: Option<Box<V2>>,
        idle: bool,
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
                v2_history,
                idle,
            } => Kind::Play {
                inputs,
                pings,
                tick_period,
                enc: ClientEncoder::new(),
                ledger: InputLedger::default(),
                last_update: None,
                v2: v2_history.map(|h| {
                    Box::new(V2 {
                        world: ClientWorld::new(usize::from(h)),
                        applied: 0,
                        ack_due: None,
                    })
                }),
                idle,
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
                v2,
                idle,
                ..
            } => {
                while let Some(due) = inputs.take_due(now, env.end) {
                    stats.counters.inputs_sent += 1;
                    let seq = u32::try_from(inputs.sent()).unwrap_or(u32::MAX);
                    ledger.sent(seq);
                    let (x, y) = if *idle {
                        (0.0, 0.0)
                    } else {
                        // A walk around a square-ish loop: straight runs
                        // of TURN_EVERY inputs, then a turn, so the
                        // arena's players keep moving and stay put.
                        let angle = (seq / TURN_EVERY) as f32 * TURN_RADIANS;
                        (angle.cos(), angle.sin())
                    };
                    // The newest tick applied rides on every input (v2).
                    let applied = v2.as_mut().map_or(0, |v2| {
                        v2.ack_due = None;
                        v2.applied
                    });
                    push(stats, due, enc.input_ack(seq, x, y, 0, applied));
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

    /// Acknowledges the newest tick applied, unless an input already did.
    fn send_ack(&mut self, env: &mut Env<'_>) -> Option<Step> {
        let Kind::Play {
            v2: Some(v2), enc, ..
        } = &mut self.kind
        else {
            return None;
        };
        let tick = v2.ack_due.take()?;
        let frame = enc.ack(tick);
        let len = frame.len() as u64;
        let mut out = Vec::with_capacity(frame.len() + 8);
        push_binary(&mut out, frame, env.keys);
        if let Err(reason) = self.outlet.send(&out) {
            return Some(self.disconnect(env, reason));
        }
        env.stats.counters.acks_sent += 1;
        env.stats.counters.msgs_out += 1;
        env.stats.counters.bytes_out += len;
        None
    }

    /// Every whole frame in the buffer, then the ack of the newest update
    /// among them; `Some` when the connection ended.
    fn handle_frames(&mut self, env: &mut Env<'_>, now: Instant) -> Option<Step> {
        if let Some(step) = self.handle_frames_only(env, now) {
            return Some(step);
        }
        self.send_ack(env)
    }

    fn handle_frames_only(&mut self, env: &mut Env<'_>, now: Instant) -> Option<Step> {
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
            v2,
            ..
        } => {
            let update = match v2 {
                None => peek_state_update(payload),
                Some(v2) => peek_state_delta(payload).map(|d| {
                    if d.baseline_tick == 0 {
                        stats.counters.full_states_received += 1;
                    }
                    match v2.world.apply(&d) {
                        Ok(_) => {
                            v2.applied = d.tick;
                            v2.ack_due = Some(d.tick);
                        }
                        Err(e) => stats.error(delta_error_label(&e)),
                    }
                    (d.tick, d.last_input_seq)
                }),
            };
            if let Some((_tick, last_seq)) = update {
                stats.counters.updates_received += 1;
                stats.counters.update_bytes += payload.len() as u64;
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

/// The report's name for a delta that could not be applied (a protocol
/// violation by the server: its baseline is not one this client holds, or
/// its bytes are malformed).
fn delta_error_label(e: &DeltaError) -> &'static str {
    match e {
        DeltaError::UnknownBaseline(_) => "delta_unknown_baseline",
        DeltaError::TickNotAfter { .. } => "delta_tick_not_after",
        _ => "delta_malformed",
    }
}

/// A protocol-v2 player's worlds and acknowledgements.
struct V2 {
    /// The worlds rebuilt from deltas.
    world: ClientWorld,
    /// The newest tick applied, acknowledged on every input.
    applied: u64,
    /// A tick applied but not acknowledged yet.
    ack_due: Option<u64>,
}

/// Inputs per straight run of a walking player.
const TURN_EVERY: u32 = 32;
/// How far a walking player turns after each run, radians.
const TURN_RADIANS: f32 = 1.6;

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use hdrhistogram::Histogram;

    use super::*;
    use crate::protocol::Encoder;

    const MS: Duration = Duration::from_millis(1);

    /// A server frame (unmasked, FIN).
    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() <= usize::from(u16::MAX));
        let mut f = vec![0x80 | opcode];
        if payload.len() < 126 {
            f.push(payload.len() as u8);
        } else {
            f.push(126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    /// Client frames sent on `s` so far: (opcode, unmasked payload).
    fn client_frames(s: &mut UnixStream) -> Vec<(u8, Vec<u8>)> {
        s.set_nonblocking(true).unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = s.read(&mut chunk) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
        let mut frames = Vec::new();
        let mut b = &bytes[..];
        while b.len() >= 6 {
            let (len, header) = match b[1] & 0x7f {
                126 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
                n => (usize::from(n), 2),
            };
            let mask = [b[header], b[header + 1], b[header + 2], b[header + 3]];
            let payload = &b[header + 4..header + 4 + len];
            let clear = payload.iter().enumerate().map(|(i, x)| x ^ mask[i % 4]);
            frames.push((b[0] & 0x0f, clear.collect()));
            b = &b[header + 4 + len..];
        }
        frames
    }

    struct Rig {
        start: Instant,
        end: Instant,
        keys: MaskKeys,
        stats: ThreadStats,
        out: Vec<u8>,
    }

    impl Rig {
        /// A run that started `ago` before now (the clock is real: what is
        /// measured is real time since then).
        fn started(ago: Duration) -> Rig {
            let start = Instant::now() - ago;
            Rig {
                start,
                end: start + 1000 * MS,
                keys: MaskKeys::new(1),
                stats: ThreadStats::new(Metric::InputToUpdate),
                out: Vec::new(),
            }
        }

        fn env(&mut self) -> Env<'_> {
            Env {
                start: self.start,
                end: self.end,
                close_timeout: 100 * MS,
                keys: &self.keys,
                stats: &mut self.stats,
                out: &mut self.out,
            }
        }

        fn hists(self) -> BTreeMap<&'static str, Histogram<u64>> {
            self.stats.into_histograms().collect()
        }
    }

    fn player(rig: &Rig) -> (Running, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let period = 10 * MS;
        let running = Running::new(Handover {
            fd: OwnedFd::from(ours),
            unread: Vec::new(),
            traffic: Traffic::Play {
                inputs: Schedule::phased(rig.start, period, 0, rig.start),
                pings: None,
                tick_period: period,
                v2_history: None,
                idle: false,
            },
        });
        (running, theirs)
    }

    #[test]
    fn an_update_times_every_input_it_covers_from_its_intended_send_time() {
        let mut rig = Rig::started(25 * MS);
        let (mut p, mut server) = player(&rig);
        // Inputs 1..=3 were due at 0, 10 and 20 ms; the drive is late (25 ms).
        let late = rig.start + 25 * MS;
        assert_eq!(p.send_due(&mut rig.env(), late), Step::Idle);
        let sent = client_frames(&mut server);
        assert_eq!(sent.len(), 3, "every overdue input, in one send");
        assert!(sent.iter().all(|(op, _)| *op == 0x2));
        assert_eq!(p.next_due(rig.end), Some(rig.start + 30 * MS));
        // The server applied up to seq 2.
        let update = Encoder::new().state_update(7, 2, 2, &[], &[]).to_vec();
        server.write_all(&server_frame(0x2, &update)).unwrap();
        assert_eq!(p.on_readable(&mut rig.env()), Step::Idle);
        assert_eq!(rig.stats.counters.updates_received, 1);
        assert_eq!(rig.stats.counters.inputs_sent, 3);
        let h = rig.hists();
        let i2u = &h["input_to_update"];
        assert_eq!(i2u.len(), 2, "inputs 1 and 2, once each");
        // Each counts from its intended time (0 and 10 ms), not from when
        // it was sent (25 ms): at least 25 and 15 ms.
        assert!(i2u.max() >= 25_000, "{}", i2u.max());
        assert!(i2u.min() >= 15_000, "{}", i2u.min());
        assert_eq!(h["send_lag"].len(), 3);
        assert!(h["send_lag"].max() >= 24_900, "input 1 left 25 ms late");
    }

    #[test]
    fn the_end_sends_leave_and_close_and_an_answered_close_is_no_disconnect() {
        let mut rig = Rig::started(Duration::ZERO);
        let (mut p, mut server) = player(&rig);
        let end = rig.end;
        assert_eq!(p.next_due(end), Some(rig.start));
        p.send_due(&mut rig.env(), end);
        let frames = client_frames(&mut server);
        let n = frames.len();
        assert_eq!(frames[n - 1].0, 0x8, "close last");
        assert_eq!(&frames[n - 1].1[..2], &1000u16.to_be_bytes());
        let leave = decode_client_body(&frames[n - 2].1);
        assert_eq!(leave, "Leave");
        assert_eq!(p.next_due(end), Some(end + 100 * MS), "awaits the answer");
        server
            .write_all(&server_frame(0x8, &1000u16.to_be_bytes()))
            .unwrap();
        assert_eq!(p.on_readable(&mut rig.env()), Step::Done);
        assert!(rig.stats.disconnects.is_empty());
        assert_eq!(rig.stats.counters.closes_unanswered, 0);
    }

    #[test]
    fn an_unanswered_close_and_a_server_close_are_counted() {
        let mut rig = Rig::started(Duration::ZERO);
        let (mut p, _server) = player(&rig);
        let end = rig.end;
        p.send_due(&mut rig.env(), end);
        assert_eq!(p.send_due(&mut rig.env(), end + 100 * MS), Step::Done);
        assert_eq!(rig.stats.counters.closes_unanswered, 1);

        let mut rig = Rig::started(Duration::ZERO);
        let (mut p, mut server) = player(&rig);
        server
            .write_all(&server_frame(0x8, &4001u16.to_be_bytes()))
            .unwrap();
        assert_eq!(p.on_readable(&mut rig.env()), Step::Done);
        assert_eq!(rig.stats.disconnects["close_4001_heartbeat_timeout"], 1);
        let answer = client_frames(&mut server);
        assert_eq!(answer[0].0, 0x8, "the server's close is answered");
    }

    #[test]
    fn an_echo_is_timed_from_the_stamp_it_carries() {
        let mut rig = Rig::started(5 * MS);
        let (ours, mut server) = UnixStream::pair().unwrap();
        let mut e = Running::new(Handover {
            fd: OwnedFd::from(ours),
            unread: Vec::new(),
            traffic: Traffic::Echo {
                schedule: Schedule::phased(rig.start, 10 * MS, 0, rig.start),
                message_bytes: 64,
            },
        });
        let at = rig.start + 5 * MS;
        e.send_due(&mut rig.env(), at);
        let sent = client_frames(&mut server);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.len(), 64);
        // Echo it back (servers do not mask).
        server.write_all(&server_frame(0x2, &sent[0].1)).unwrap();
        assert_eq!(e.on_readable(&mut rig.env()), Step::Idle);
        assert_eq!(rig.stats.counters.echoes_received, 1);
        let h = rig.hists();
        assert_eq!(h["echo_rtt"].len(), 1);
        assert!(h["echo_rtt"].max() >= 5_000, "from its intended time, t0");
        assert!(h["send_lag"].max() >= 4_900, "sent 5 ms late");
    }

    /// The union member name of a ClientMessage.
    fn decode_client_body(bytes: &[u8]) -> &'static str {
        match crate::protocol::decode_client(bytes) {
            Ok(crate::protocol::ClientCmd::Leave) => "Leave",
            Ok(_) => "other",
            Err(_) => "invalid",
        }
    }
}
