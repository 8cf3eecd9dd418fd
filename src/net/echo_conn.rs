//! One /echo connection on the echo worker (`echo_worker`): a non-blocking
//! socket driven by edge-triggered readiness. A turn writes what waits,
//! then reads and answers (`echo_frames`) up to a budget: one read and one
//! write per batch of frames. The close handshake, a frame cut by a read (or
//! larger than the read scratch), output the peer does not take, silence and
//! slow consumers are decided here; the worker owns the epoll set, the
//! clock's sweep and the shard's report.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::net::admission::ConnPermit;
use crate::net::close::CloseReason;
use crate::net::echo_frames::{push_close, EchoFrames, Ending, Processed};

/// A connection the shard hands to its echo worker, right after the upgrade.
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

/// Time allowed to write our close frame and for the peer to finish its
/// side of the close handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the worker's connections did since it last reported.
#[derive(Debug, Default)]
pub struct Counts {
    /// Data messages echoed.
    pub messages: u64,
    pub payload_bytes: u64,
    pub socket_writes: u64,
}

impl Counts {
    fn processed(&mut self, p: &Processed) {
        self.messages += p.messages;
        self.payload_bytes += p.payload_bytes;
    }
}

/// The worker's buffers, shared by every connection (one turn at a time).
pub struct Scratch {
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            input: vec![0; ECHO_READ_BYTES],
            output: Vec::with_capacity(ECHO_READ_BYTES),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// What a connection's turn came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Waiting for the socket (input, or room for output).
    Idle,
    /// Input is left: another turn after the other ready connections.
    More,
    End(CloseReason),
}

/// What a sweep found.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
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
pub struct Conn {
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
    pub fn new(a: Adoption, now: Instant) -> Conn {
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

    /// The socket's fd, to register with the worker's epoll set.
    pub fn raw_fd(&self) -> RawFd {
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

    /// The shard is stopping: our 1001, best effort, unless a close is
    /// already under way.
    pub fn going_away(&mut self) {
        if self.closing.is_none() {
            let reason = CloseReason::GoingAway;
            self.unsent.clear();
            push_close(&mut self.unsent, reason.code(), reason.label());
            let _ = send_some(self.fd.as_raw_fd(), &self.unsent);
        }
    }

    /// Answers the bytes that came with the upgrade request.
    pub fn answer_first(
        &mut self,
        scratch: &mut Scratch,
        counts: &mut Counts,
    ) -> Option<CloseReason> {
        if self.carried == 0 {
            return None;
        }
        let mut input = std::mem::take(&mut self.carry);
        input.truncate(self.carried);
        let p = self.frames.process(&mut input, &mut scratch.output);
        self.keep_cut_frame(&input[p.consumed..], p.frame_bytes_needed);
        self.answered(&p, scratch, counts).err()
    }

    pub fn turn(
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
    pub fn begin_close_with(&mut self, reason: CloseReason, now: Instant) {
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
    pub fn check(&self, now: Instant) -> Option<Check> {
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::net::admission::ConnectionBudget;

    const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&KEY);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        f
    }

    /// A connection on one end of a socket pair; the test is the client.
    fn conn(first: &[u8], silent_max: Duration) -> (Conn, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        // Every read of the client side is bounded (the answer is written
        // before the turn returns, so it is there at once).
        theirs
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let budget = ConnectionBudget::new(1);
        let conn = Conn::new(
            Adoption {
                fd: OwnedFd::from(ours),
                first: first.to_vec(),
                permit: budget.try_admit().unwrap(),
                payload_bytes_max: 1024,
                silent_max,
            },
            Instant::now(),
        );
        (conn, theirs)
    }

    fn turn(c: &mut Conn, scratch: &mut Scratch, counts: &mut Counts) -> Turn {
        // No epoll set: arming EPOLLOUT fails harmlessly (never needed here).
        c.turn(-1, 0, scratch, counts, Instant::now())
    }

    fn read_exact(s: &mut UnixStream, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        s.read_exact(&mut b).unwrap();
        b
    }

    #[test]
    fn frames_cut_across_the_upgrade_bytes_and_reads_are_echoed_whole() {
        let (a, b) = (masked(0x2, b"hello"), masked(0x2, b"world!"));
        let (mut c, mut client) = conn(&a[..4], Duration::from_secs(60));
        let (mut scratch, mut counts) = (Scratch::new(), Counts::default());
        assert_eq!(c.answer_first(&mut scratch, &mut counts), None);
        let mut rest = a[4..].to_vec();
        rest.extend_from_slice(&b);
        client.write_all(&rest).unwrap();
        assert_eq!(turn(&mut c, &mut scratch, &mut counts), Turn::Idle);
        assert_eq!(read_exact(&mut client, 7), b"\x82\x05hello");
        assert_eq!(read_exact(&mut client, 8), b"\x82\x06world!");
        assert_eq!((counts.messages, counts.payload_bytes), (2, 11));
    }

    #[test]
    fn the_peers_fin_behind_a_short_read_ends_the_connection() {
        // Edge-triggered: one event says "input and FIN"; the read that
        // takes the input is short, and no further event will come.
        let (mut c, mut client) = conn(&[], Duration::from_secs(60));
        let (mut scratch, mut counts) = (Scratch::new(), Counts::default());
        client.write_all(&masked(0x2, b"cut")[..5]).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        c.ready((libc::EPOLLIN | libc::EPOLLRDHUP) as u32);
        assert_eq!(
            turn(&mut c, &mut scratch, &mut counts),
            Turn::End(CloseReason::Vanished)
        );
    }

    #[test]
    fn a_close_is_answered_then_the_peers_fin_is_awaited() {
        let (mut c, mut client) = conn(&[], Duration::from_secs(60));
        let (mut scratch, mut counts) = (Scratch::new(), Counts::default());
        client
            .write_all(&masked(0x8, &1000u16.to_be_bytes()))
            .unwrap();
        assert_eq!(turn(&mut c, &mut scratch, &mut counts), Turn::Idle);
        // Our close reply, then our FIN.
        let reply = read_exact(&mut client, 2);
        assert_eq!(reply[0], 0x88);
        let code = read_exact(&mut client, usize::from(reply[1]));
        assert_eq!(&code[..2], &1000u16.to_be_bytes());
        let mut end = [0u8; 1];
        assert_eq!(
            client.read(&mut end).unwrap(),
            0,
            "FIN after the close frame"
        );
        client.shutdown(std::net::Shutdown::Write).unwrap();
        c.ready((libc::EPOLLIN | libc::EPOLLRDHUP) as u32);
        assert_eq!(
            turn(&mut c, &mut scratch, &mut counts),
            Turn::End(CloseReason::Normal)
        );
    }

    #[test]
    fn silence_and_close_deadlines_are_found_by_the_sweep() {
        let silent_max = Duration::from_secs(50);
        let (mut c, _client) = conn(&[], silent_max);
        let start = c.last_rx;
        assert_eq!(c.check(start + silent_max / 2), None);
        assert_eq!(c.check(start + silent_max), Some(Check::Silent));
        c.begin_close_with(CloseReason::HeartbeatTimeout, start + silent_max);
        let until = start + silent_max + CLOSE_TIMEOUT;
        assert_eq!(c.check(until - Duration::from_millis(1)), None);
        assert_eq!(
            c.check(until),
            Some(Check::End(CloseReason::HeartbeatTimeout))
        );
    }
}
