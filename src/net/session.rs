//! One /play connection after its upgrade: read frames, decode them into
//! commands for the shard, and write what the shard queued.
//!
//! The session task is the only code that touches the socket. tungstenite
//! reads and answers the control frames (pong, close); game frames bypass its
//! writer: the tick appends them, pre-framed, to the connection's pooled
//! outbound buffer, and this task writes the whole buffer with one `send`.
//! Two rules keep the two writers from interleaving bytes: tungstenite's own
//! buffer is flushed before a raw write starts, and while a raw write is
//! partial the socket is not read (reading could make tungstenite write a
//! pong mid-frame).
//!
//! While the session is idle between messages and its player is known, it
//! lets the shard's tick read the inputs and write the update itself
//! (`net::tick_read`), and only wakes when the tick hands something back.
//!
//! A session can also end by moving: paused after a message, its socket and
//! the bytes read but not parsed go to another shard (`shard::moves`), which
//! continues it with [`run_adopted`].

use std::future::poll_fn;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use futures_lite::AsyncWrite;
use futures_util::{Sink, StreamExt};
use glommio::net::TcpStream;

use crate::metrics::HistName;
use crate::net::admission::ConnPermit;
use crate::net::close::CloseReason;
use crate::net::conn::{Conn, Handover};
use crate::net::fenced::Fenced;
use crate::net::listener::{until, ws_config};
use crate::net::outbound::Outbound;
use crate::protocol::decode_client;
use crate::shard::mesh::ShardMsg;
use crate::shard::moves::MOVE_TIMEOUT;
use crate::shard::Shard;

pub type Ws = WebSocketStream<Fenced<TcpStream>>;

/// Time allowed to write what is queued and the close frame when closing.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Time allowed for the peer to answer our close frame.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Events a session handles between two yields to the shard's other tasks:
/// a message already buffered is Ready at once, so without a yield a
/// flooding client keeps the executor (the tick, and every other session
/// on the shard) waiting until its socket runs dry.
pub const MESSAGES_PER_YIELD: u32 = 16;

enum Event {
    Message(Message),
    /// The stream ended or failed.
    Ended(Option<WsError>),
    /// The shard (tick, sweep, shutdown, a handler) asked to close.
    Close(CloseReason),
    /// The connection moves to another shard.
    Handover(Handover),
}

/// How a session ended.
enum End {
    Closed(CloseReason),
    Moved,
}

/// A fresh connection: upgrade, then run to the end. Returns the pooled
/// buffer.
pub async fn run(
    shard: Rc<Shard>,
    stream: Fenced<TcpStream>,
    deadline: Instant,
    accepted_at: Instant,
    permit: ConnPermit,
    buf: Vec<u8>,
) -> Vec<u8> {
    let upgrade = async_tungstenite::accept_async_with_config(stream, Some(ws_config(&shard)));
    let ws = match until(deadline, upgrade).await {
        Some(Ok(ws)) => ws,
        _ => {
            shard.metrics.handshakes_failed.inc();
            return buf;
        }
    };
    shard
        .metrics
        .hist
        .record(HistName::Handshake, accepted_at.elapsed());
    let conn = Rc::new(Conn::new(
        shard.next_conn_id(),
        Outbound::new(buf),
        accepted_at,
    ));
    shard.conns.borrow_mut().insert(conn.id, conn.clone());
    lifetime(&shard, ws, &conn, deadline, permit).await;
    take_buffer(&conn)
}

/// A connection moved here from another shard mid-session.
pub async fn run_adopted(
    shard: Rc<Shard>,
    fd: OwnedFd,
    unread: Vec<u8>,
    accepted_at: Instant,
    permit: ConnPermit,
    player: crate::game::PlayerId,
    resume: bool,
) {
    shard.metrics.handoffs_in.inc();
    // SAFETY: the fd is an open, connected TCP socket, owned by `fd` and
    // given up here; glommio's stream becomes its only owner.
    let stream = unsafe { TcpStream::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
    let fenced = Fenced::upgraded(unread, stream, shard.cfg().read_buffer_bytes);
    let mut ws =
        WebSocketStream::from_raw_socket(fenced, Role::Server, Some(ws_config(&shard))).await;
    let Some(buf) = shard.pool.borrow_mut().take() else {
        // No buffer for it here: the player keeps its seat for a resume.
        shard.metrics.refused_no_buffer.inc();
        let frame = CloseFrame {
            code: CloseCode::from(CloseReason::TryAgainLater.code()),
            reason: "no free connection buffer; resume with your token".into(),
        };
        let _ = until(Instant::now() + CLOSE_FLUSH_TIMEOUT, ws.close(Some(frame))).await;
        return;
    };
    let conn = Rc::new(Conn::new(
        shard.next_conn_id(),
        Outbound::new(buf),
        accepted_at,
    ));
    shard.adopt(&conn, player, resume);
    lifetime(&shard, ws, &conn, Instant::now(), permit).await;
    let buf = take_buffer(&conn);
    shard.pool.borrow_mut().give_back(buf);
}

fn take_buffer(conn: &Conn) -> Vec<u8> {
    std::mem::replace(
        &mut *conn.outbound().borrow_mut(),
        Outbound::new(Vec::new()),
    )
    .into_buffer()
}

/// Runs a registered connection until it closes or moves.
async fn lifetime(shard: &Shard, ws: Ws, conn: &Rc<Conn>, deadline: Instant, permit: ConnPermit) {
    shard.metrics.connections_open.inc();
    let end = drive(shard, ws, conn, deadline, permit).await;
    shard.metrics.connections_open.dec();
    match end {
        End::Closed(reason) => {
            shard.metrics.closed(reason);
            // Only a close the client started means the player left.
            shard.on_disconnect(conn, Instant::now(), reason == CloseReason::Normal);
        }
        End::Moved => {
            shard.conns.borrow_mut().remove(&conn.id);
        }
    }
}

async fn drive(
    shard: &Shard,
    mut ws: Ws,
    conn: &Rc<Conn>,
    deadline: Instant,
    permit: ConnPermit,
) -> End {
    let mut in_a_row = 0u32;
    let fd = ws.get_ref().get_ref().as_raw_fd();
    conn.tick_read.attach(
        fd,
        ws.get_ref().inbox(),
        shard.cfg().messages_per_second_max,
    );
    loop {
        in_a_row += 1;
        if in_a_row >= MESSAGES_PER_YIELD {
            in_a_row = 0;
            futures_lite::future::yield_now().await;
        }
        let next = poll_fn(|cx| poll_event(shard, &mut ws, conn, cx));
        let event = if let Some(since) = conn.paused_since() {
            match until(since + MOVE_TIMEOUT, next).await {
                Some(e) => e,
                None => {
                    shard.on_move_timeout(conn);
                    continue;
                }
            }
        } else if conn.player().is_none() {
            // Until Hello is accepted the connect timeout still runs.
            until(deadline, next)
                .await
                .unwrap_or(Event::Close(CloseReason::ConnectTimeout))
        } else {
            next.await
        };
        // Whatever happens next (a close, a hand-over, a message that may
        // pause the session) happens with the session reading.
        conn.tick_read.turn_off();
        let now = Instant::now();
        match event {
            Event::Message(msg) => {
                if !message_arrived(shard, conn, now) {
                    continue;
                }
                match msg {
                    Message::Binary(bytes) => on_binary(shard, conn, &bytes, now),
                    Message::Text(_) => conn.request_close(CloseReason::UnsupportedData),
                    Message::Close(_) => {
                        drain(&mut ws).await;
                        return End::Closed(CloseReason::Normal);
                    }
                    Message::Pong(payload) => shard.on_pong(&payload, now),
                    Message::Ping(_) | Message::Frame(_) => {}
                }
            }
            Event::Close(reason) => {
                close(shard, &mut ws, conn, reason).await;
                return End::Closed(reason);
            }
            Event::Handover(h) => return hand_over(shard, ws, conn, h, permit).await,
            Event::Ended(None) => return End::Closed(CloseReason::Vanished),
            Event::Ended(Some(err)) => {
                let reason = match err {
                    WsError::Capacity(_) => CloseReason::MessageTooBig,
                    WsError::Protocol(_) | WsError::Utf8(_) => CloseReason::ProtocolError,
                    _ => return End::Closed(CloseReason::Vanished),
                };
                close(shard, &mut ws, conn, reason).await;
                return End::Closed(reason);
            }
        }
    }
}

/// Bookkeeping for any frame that arrived (by either reader): heartbeat,
/// counts, and the flood limit. `false` when the frame must be ignored
/// because the client is being closed for flooding.
pub(crate) fn message_arrived(shard: &Shard, conn: &Conn, now: Instant) -> bool {
    conn.touch(now);
    shard.metrics.messages_in.inc();
    if !conn.tick_read.rate.borrow_mut().admit(now) {
        shard.metrics.flooders_closed.inc();
        conn.request_close(CloseReason::PolicyViolation);
        return false;
    }
    true
}

/// A binary message (by either reader): decoded into a command for the shard.
pub(crate) fn on_binary(shard: &Shard, conn: &Rc<Conn>, bytes: &[u8], now: Instant) {
    shard.metrics.bytes_in.add(bytes.len() as u64);
    match decode_client(bytes) {
        Ok(cmd) => shard.on_client(conn, cmd, now),
        Err(e) => shard.on_bad_message(conn, &e),
    }
}

/// Writes queued frames, then reads one message; whichever the socket allows.
fn poll_event(shard: &Shard, ws: &mut Ws, conn: &Conn, cx: &mut Context<'_>) -> Poll<Event> {
    if let Some(reason) = conn.close_requested() {
        return Poll::Ready(Event::Close(reason));
    }
    if let Some(h) = conn.take_handover() {
        return Poll::Ready(Event::Handover(h));
    }
    match poll_write_outbound(shard, ws, conn, cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Poll::Ready(Event::Ended(e)),
        Poll::Pending => {
            conn.set_waker(cx.waker());
            return Poll::Pending;
        }
    }
    if conn.tick_read.is_on() {
        // The tick reads for us; it wakes us when it meets anything else.
        conn.set_waker(cx.waker());
        return Poll::Pending;
    }
    if conn.paused_since().is_none() {
        match ws.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(msg))) => return Poll::Ready(Event::Message(msg)),
            Poll::Ready(Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)))
            | Poll::Ready(None) => return Poll::Ready(Event::Ended(None)),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Event::Ended(Some(e))),
            Poll::Pending => {}
        }
        if may_tick_read(ws, conn, cx) {
            conn.tick_read.turn_on();
        }
    }
    conn.set_waker(cx.waker());
    Poll::Pending
}

/// Whether the tick may take over reading: a seated player's session, idle
/// between two messages, with nothing of tungstenite's left to write (it
/// only writes pongs and close frames; those go out from the session).
fn may_tick_read(ws: &mut Ws, conn: &Conn, cx: &mut Context<'_>) -> bool {
    conn.player().is_some()
        && conn.close_requested().is_none()
        && ws.get_ref().inbox().borrow().at_message_boundary()
        && matches!(Pin::new(&mut *ws).poll_flush(cx), Poll::Ready(Ok(())))
}

/// Writes the connection's outbound bytes. `Ready(Ok)` once all are out;
/// `Pending` while the socket is full (or tungstenite's own bytes are still
/// going out first).
fn poll_write_outbound(
    shard: &Shard,
    ws: &mut Ws,
    conn: &Conn,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Option<WsError>>> {
    if conn.outbound().borrow().is_empty() {
        return Poll::Ready(Ok(()));
    }
    match Pin::new(&mut *ws).poll_flush(cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Poll::Ready(Err(Some(e))),
        Poll::Pending => return Poll::Pending,
    }
    loop {
        let written = {
            let out = conn.outbound().borrow();
            if out.is_empty() {
                conn.inputs_written(Instant::now(), |d| {
                    shard.metrics.hist.record(HistName::InputToUpdate, d)
                });
                return Poll::Ready(Ok(()));
            }
            match Pin::new(ws.get_mut()).poll_write(cx, out.unsent()) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(None)),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(None)),
                Poll::Pending => return Poll::Pending,
            }
        };
        shard.metrics.socket_writes.inc();
        shard.metrics.bytes_out.add(written as u64);
        conn.outbound().borrow_mut().advance(written);
    }
}

/// Gives the socket, at a message boundary, to shard `h.to`.
async fn hand_over(shard: &Shard, mut ws: Ws, conn: &Conn, h: Handover, permit: ConnPermit) -> End {
    // Everything queued here (an Error, PlayerLeft, …) goes out first.
    let flushed = until(
        Instant::now() + CLOSE_FLUSH_TIMEOUT,
        poll_fn(|cx| poll_write_outbound(shard, &mut ws, conn, cx)),
    )
    .await;
    if !matches!(flushed, Some(Ok(()))) {
        return End::Closed(CloseReason::Vanished);
    }
    let (stream, unread) = ws.into_inner().into_parts();
    // glommio's stream cannot give up its fd: duplicate it, then close ours.
    // SAFETY: dup of a valid fd owned by `stream`; the result is ours.
    let dup = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        tracing::warn!(shard = shard.id, error = %std::io::Error::last_os_error(), "dup for hand-over failed");
        return End::Closed(CloseReason::Vanished);
    }
    // SAFETY: `dup` is a fresh fd nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(dup) };
    drop(stream);
    shard.metrics.handoffs_out.inc();
    shard.send_mesh(
        h.to,
        ShardMsg::Adopt {
            fd,
            unread,
            accepted_at: conn.accepted_at,
            permit,
            player: h.player,
            resume: h.resume,
        },
    );
    End::Moved
}

/// Flushes what is queued (an Error explaining the close, usually), sends
/// the close frame, and waits briefly for the peer's answer.
async fn close(shard: &Shard, ws: &mut Ws, conn: &Conn, reason: CloseReason) {
    let flush_deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT;
    let flushed = until(
        flush_deadline,
        poll_fn(|cx| poll_write_outbound(shard, ws, conn, cx)),
    )
    .await;
    if !matches!(flushed, Some(Ok(()))) {
        return;
    }
    let frame = CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: reason.label().into(),
    };
    if let Some(Ok(())) = until(flush_deadline, ws.close(Some(frame))).await {
        drain(ws).await;
    }
}

/// Frames read while waiting for a peer's close answer, at most: a peer
/// that keeps flooding instead of answering is cut off.
const CLOSE_DRAIN_FRAMES_MAX: u32 = 1024;

/// Reads and discards frames until the stream ends, yielding regularly (a
/// flood is always ready: without yields the caller's timeout could never
/// fire) and at most [`CLOSE_DRAIN_FRAMES_MAX`] of them.
pub async fn drain_frames<S>(ws: &mut WebSocketStream<S>)
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let mut read = 0u32;
    while let Some(Ok(_)) = ws.next().await {
        read += 1;
        if read >= CLOSE_DRAIN_FRAMES_MAX {
            return;
        }
        if read % MESSAGES_PER_YIELD == 0 {
            futures_lite::future::yield_now().await;
        }
    }
}

/// Reads until the peer's close frame or the end of the stream, bounded.
async fn drain(ws: &mut Ws) {
    let _ = until(Instant::now() + CLOSE_DRAIN_TIMEOUT, async {
        drain_frames(ws).await;
    })
    .await;
}
