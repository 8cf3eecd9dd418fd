//! `/echo`: every message comes back unchanged. Clients use it to measure
//! their latency to a region before choosing one; the conformance suite
//! (Autobahn) uses it too. Same limits as /play (payload, timeouts).
//!
//! Built for throughput and for idle cost, since it is the cheapest thing a
//! client can ask of a shard:
//! - each wake-up reads as much as the socket holds (up to
//!   [`ECHO_READ_BYTES`]) into the shard's scratch buffer, answers every
//!   complete frame in it ([`echo_frames`](crate::net::echo_frames)) into one
//!   output buffer, and writes that with one `send`;
//! - an idle connection owns no buffer: bytes of a frame cut by a read are
//!   copied out of the scratch (`carry`), and output the socket did not take
//!   (`unsent`) is kept only until it is written.
//!
//! /echo never hands its socket to another shard (only `/play?instance=…`
//! is routed, before the upgrade), so it reads the raw socket: no fence at
//! frame boundaries is needed.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::handshake::machine::TryParse;
use async_tungstenite::tungstenite::handshake::server::{create_response, write_response, Request};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::Shard;
use crate::net::admission::ConnPermit;
use crate::net::echo_frames::{push_close, EchoFrames, Ending};
use crate::net::http;
use crate::protocol::close::CloseReason;
use crate::util::time::until;

/// 64 KiB: the most one read takes from a socket (and the shard's scratch
/// buffer for it; one per shard, not per connection). Large enough that a
/// backlog of small messages is answered in one read and one write.
pub const ECHO_READ_BYTES: usize = 64 << 10;

/// After a message as large as --max-payload, the scratch output buffer is
/// shrunk back to this (per shard).
const ECHO_OUTPUT_KEEP_BYTES: usize = 2 * ECHO_READ_BYTES;

/// Time allowed to write our close frame and for the peer to finish its
/// side of the close handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The shard's buffers for /echo: every connection reads into `input` and
/// answers into `output` within one poll, so they are never held across an
/// await and one pair serves all of the shard's connections.
struct Scratch {
    input: Vec<u8>,
    output: Vec<u8>,
}

thread_local! {
    // One executor per thread (thread-per-core): this is per shard.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        input: vec![0; ECHO_READ_BYTES],
        output: Vec::with_capacity(ECHO_READ_BYTES),
    });
}

/// Upgrades (the head was read by the listener: `read[..head_len]`, and any
/// bytes after it are the client's first frames) and echoes until the end.
pub async fn run(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    read: Vec<u8>,
    head_len: usize,
    deadline: Instant,
    _permit: ConnPermit,
) {
    // The handshake, the close and any blocked write are boxed: they run
    // once or rarely, and inline they would size this connection's task
    // for its whole life (see `listener::handle_accepted`).
    let response = match handshake_response(&read[..head_len]) {
        Ok(r) => r,
        Err(why) => {
            shard.metrics.handshakes_failed.inc();
            let bytes = http::response(400, "Bad Request", &format!("{why}\n"));
            let _ = Box::pin(until(deadline, stream.write_all(&bytes))).await;
            return;
        }
    };
    if !matches!(
        Box::pin(until(deadline, stream.write_all(&response))).await,
        Some(Ok(()))
    ) {
        shard.metrics.handshakes_failed.inc();
        return;
    }
    drop(response);
    let cfg = shard.cfg();
    let mut echo = Echo::new(cfg.max_payload_bytes, cfg.heartbeat * 2, &read[head_len..]);
    drop(read);
    shard.metrics.connections_open.inc();
    let reason = echo.serve(&shard, &mut stream).await;
    shard.metrics.closed(reason);
    shard.metrics.connections_open.dec();
}

/// The 101 answer to an upgrade request, by tungstenite's rules (method,
/// version, `Upgrade`, `Connection`, `Sec-WebSocket-Version: 13`, a valid
/// key).
fn handshake_response(head: &[u8]) -> Result<Vec<u8>, String> {
    let request = match Request::try_parse(head) {
        Ok(Some((_, request))) => request,
        Ok(None) => return Err("incomplete request head".into()),
        Err(e) => return Err(e.to_string()),
    };
    let response = create_response(&request).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(256);
    write_response(&mut bytes, &response).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// What one read and its answer came to.
enum Batch {
    /// Answered; `more` when the read filled its buffer (more may be
    /// waiting: yield to the shard's other tasks before reading again).
    Done { more: bool },
    /// Part of the answer is in `unsent`: write it before reading more.
    Blocked,
    /// The frames read end the connection; the close frame is queued.
    Ending(Ending),
    /// Silent for two heartbeat intervals.
    Silent,
    /// The peer closed or reset the socket.
    Gone,
}

/// One /echo connection after the upgrade.
struct Echo {
    frames: EchoFrames,
    /// `carry[..carried]`: the start of a frame the last read cut.
    carry: Vec<u8>,
    carried: usize,
    /// Total length of that frame, once its header is known. A frame longer
    /// than the scratch is read straight into `carry` (then sized to it).
    frame_bytes: Option<usize>,
    /// Answer bytes the socket has not taken yet.
    unsent: Vec<u8>,
    silent_max: Duration,
    last_rx: Instant,
    /// Fires at `timer_at` to check for silence; re-armed only then.
    timer: Timer,
    timer_at: Option<Instant>,
}

impl Echo {
    fn new(payload_bytes_max: usize, silent_max: Duration, first: &[u8]) -> Self {
        let now = Instant::now();
        Self {
            frames: EchoFrames::new(payload_bytes_max),
            carry: first.to_vec(),
            carried: first.len(),
            frame_bytes: None,
            unsent: Vec::new(),
            silent_max,
            last_rx: now,
            timer: Timer::new(silent_max),
            timer_at: None,
        }
    }

    async fn serve(&mut self, shard: &Shard, stream: &mut TcpStream) -> CloseReason {
        if self.carried > 0 {
            // Frames sent right behind the upgrade request.
            if let Some(end) = Box::pin(self.answer_carried(shard, stream)).await {
                return end;
            }
        }
        loop {
            let batch = std::future::poll_fn(|cx| self.poll_batch(cx, shard, stream)).await;
            match batch {
                Batch::Done { more: false } => {}
                Batch::Done { more: true } => futures_lite::future::yield_now().await,
                Batch::Blocked => {
                    let limit = self.silent_max;
                    if let Err(reason) = Box::pin(self.flush(shard, stream, limit)).await {
                        return reason;
                    }
                }
                Batch::Ending(ending) => return Box::pin(self.close(shard, stream, ending)).await,
                Batch::Silent => {
                    let reason = CloseReason::HeartbeatTimeout;
                    push_close(&mut self.unsent, reason.code(), reason.label());
                    let ending = Ending::Failed {
                        reason,
                        code: reason.code(),
                    };
                    return Box::pin(self.close(shard, stream, ending)).await;
                }
                Batch::Gone => return CloseReason::Vanished,
            }
        }
    }

    /// Answers bytes that arrived with the upgrade request.
    async fn answer_carried(
        &mut self,
        shard: &Shard,
        stream: &mut TcpStream,
    ) -> Option<CloseReason> {
        let mut input = std::mem::take(&mut self.carry);
        input.truncate(self.carried);
        let mut out = Vec::new();
        let p = self.frames.process(&mut input, &mut out);
        self.keep_cut_frame(&input[p.consumed..], p.frame_bytes_needed);
        count(shard, &p);
        self.unsent.extend_from_slice(&out);
        if let Some(ending) = p.ending {
            return Some(self.close(shard, stream, ending).await);
        }
        self.flush(shard, stream, self.silent_max).await.err()
    }

    /// One read, every complete frame in it answered, one write.
    fn poll_batch(
        &mut self,
        cx: &mut Context<'_>,
        shard: &Shard,
        stream: &mut TcpStream,
    ) -> Poll<Batch> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch { input, output } = &mut *scratch;
            let big = self.frame_bytes.filter(|&n| n > input.len());
            let (p, more) = match big {
                Some(total) => {
                    // One frame larger than the scratch: into `carry`, up to
                    // its end and no further.
                    let n = match Pin::new(&mut *stream)
                        .poll_read(cx, &mut self.carry[self.carried..total])
                    {
                        Poll::Pending => return self.poll_silence(cx),
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            return Poll::Ready(Batch::Gone)
                        }
                        Poll::Ready(Ok(n)) => n,
                    };
                    self.last_rx = Instant::now();
                    self.carried += n;
                    if self.carried < total {
                        return Poll::Ready(Batch::Done { more: false });
                    }
                    let p = self.frames.process(&mut self.carry[..total], output);
                    debug_assert!(p.ending.is_some() || p.consumed == total);
                    self.carry = Vec::new();
                    self.carried = 0;
                    self.frame_bytes = None;
                    (p, false)
                }
                None => {
                    let have = self.carried;
                    let n = match Pin::new(&mut *stream).poll_read(cx, &mut input[have..]) {
                        Poll::Pending => return self.poll_silence(cx),
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            return Poll::Ready(Batch::Gone)
                        }
                        Poll::Ready(Ok(n)) => n,
                    };
                    self.last_rx = Instant::now();
                    let filled = have + n;
                    input[..have].copy_from_slice(&self.carry[..have]);
                    let p = self.frames.process(&mut input[..filled], output);
                    self.keep_cut_frame(&input[p.consumed..filled], p.frame_bytes_needed);
                    (p, filled == input.len())
                }
            };
            count(shard, &p);
            if !output.is_empty() {
                shard.metrics.socket_writes.inc();
                let written = match Pin::new(&mut *stream).poll_write(cx, output) {
                    Poll::Ready(Ok(n)) => n,
                    Poll::Pending => 0,
                    Poll::Ready(Err(_)) => return Poll::Ready(Batch::Gone),
                };
                self.unsent.extend_from_slice(&output[written..]);
                output.clear();
                output.shrink_to(ECHO_OUTPUT_KEEP_BYTES);
            }
            Poll::Ready(match p.ending {
                Some(ending) => Batch::Ending(ending),
                None if !self.unsent.is_empty() => Batch::Blocked,
                None => Batch::Done { more },
            })
        })
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

    /// The read found nothing: has the peer been silent too long? Arms the
    /// timer that wakes this task to ask again.
    fn poll_silence(&mut self, cx: &mut Context<'_>) -> Poll<Batch> {
        let now = Instant::now();
        if let Some(at) = self.timer_at {
            if now < at {
                return Poll::Pending; // armed; it wakes us
            }
        }
        let due = self.last_rx + self.silent_max;
        if now >= due {
            return Poll::Ready(Batch::Silent);
        }
        self.timer.reset(due - now);
        self.timer_at = Some(due);
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Batch::Silent),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes `unsent` within `limit`; a peer that does not take it in time
    /// is a slow consumer.
    async fn flush(
        &mut self,
        shard: &Shard,
        stream: &mut TcpStream,
        limit: Duration,
    ) -> Result<(), CloseReason> {
        if self.unsent.is_empty() {
            return Ok(());
        }
        shard.metrics.socket_writes.inc();
        let result = until(Instant::now() + limit, stream.write_all(&self.unsent)).await;
        self.unsent = Vec::new();
        match result {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) => Err(CloseReason::Vanished),
            None => Err(CloseReason::SlowConsumer),
        }
    }

    /// Sends what is queued (ending with a close frame), then ends the TCP
    /// connection cleanly: our FIN, then the peer's bytes read and dropped
    /// until its FIN, so that no unread byte turns our close into a reset.
    async fn close(
        &mut self,
        shard: &Shard,
        stream: &mut TcpStream,
        ending: Ending,
    ) -> CloseReason {
        let reason = match ending {
            Ending::PeerClosed => CloseReason::Normal,
            Ending::Failed { reason, .. } => reason,
        };
        if self.flush(shard, stream, CLOSE_TIMEOUT).await.is_err() {
            return reason;
        }
        let _ = stream.shutdown(std::net::Shutdown::Write).await;
        let _ = until(Instant::now() + CLOSE_TIMEOUT, async {
            let mut sink = [0u8; 256];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        reason
    }
}

fn count(shard: &Shard, p: &crate::net::echo_frames::Processed) {
    if p.messages > 0 {
        let m = &shard.metrics;
        m.messages_in.add(p.messages);
        m.messages_out.add(p.messages);
        m.bytes_in.add(p.payload_bytes);
        m.bytes_out.add(p.payload_bytes);
    }
}
