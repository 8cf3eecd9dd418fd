//! One open connection after its set-up, for either mode: a writer task that
//! sends on a fixed schedule and a reader that takes whatever arrives. The
//! WebSocket is split so neither waits for the other: a slow server blocks
//! our sends without delaying the reads that measure it.
//!
//! When the run ends the writer sends a close frame; the reader then waits
//! (bounded) for the server's. A connection that ends any other way is
//! counted once, by reason, as a disconnect.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Bytes, Message};
use async_tungstenite::{WebSocketReceiver, WebSocketSender};
use futures_util::{SinkExt, StreamExt};
use glommio::net::TcpStream;

use super::connect::{close_label, stream_error_label, until};
use super::runner::ThreadCtx;

pub type WsSender = WebSocketSender<TcpStream>;
pub type WsReceiver = WebSocketReceiver<TcpStream>;

/// How far a connection is from its end; shared by its writer and reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Running,
    /// The run is over and our close frame is (being) sent.
    Closing,
    /// It ended otherwise, and that was counted.
    Counted,
}

/// Counts `reason` as the connection's disconnect, unless its end was
/// already accounted for.
pub fn end_with(ctx: &ThreadCtx, ending: &Cell<Ending>, reason: impl Into<String>) {
    if ending.get() == Ending::Running {
        ending.set(Ending::Counted);
        ctx.stats.borrow_mut().disconnect(reason);
    }
}

/// What a connection sends: messages on one or more fixed schedules.
pub trait Outgoing {
    /// When the next message is due.
    fn next_due(&self) -> Instant;
    /// Appends every message due at `now` and before `end` to `out`, oldest
    /// first: a late writer sends all it owes, never skipping one.
    fn take_due(&mut self, ctx: &ThreadCtx, now: Instant, end: Instant, out: &mut Vec<Bytes>);
    /// A last message before the close frame, e.g. a Leave.
    fn farewell(&mut self) -> Option<Bytes> {
        None
    }
}

/// Sends `outgoing`'s messages as they fall due until the run ends, then
/// the close frame.
pub async fn write_loop(
    ctx: Rc<ThreadCtx>,
    mut tx: WsSender,
    ending: Rc<Cell<Ending>>,
    mut outgoing: impl Outgoing,
) {
    let mut batch = Vec::new();
    loop {
        let next = outgoing.next_due();
        if next >= ctx.end {
            break;
        }
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            glommio::timer::sleep(wait).await;
        }
        if ending.get() != Ending::Running {
            return;
        }
        outgoing.take_due(&ctx, Instant::now(), ctx.end, &mut batch);
        let (count, bytes) = (
            batch.len() as u64,
            batch.iter().map(Bytes::len).sum::<usize>(),
        );
        let mut sent = Ok(());
        for msg in batch.drain(..) {
            sent = tx.feed(Message::Binary(msg)).await;
            if sent.is_err() {
                break;
            }
        }
        if sent.is_ok() {
            sent = tx.flush().await;
        }
        if let Err(e) = sent {
            end_with(&ctx, &ending, stream_error_label(&e));
            return;
        }
        let mut stats = ctx.stats.borrow_mut();
        stats.counters.msgs_out += count;
        stats.counters.bytes_out += bytes as u64;
    }
    if ending.get() != Ending::Running {
        return;
    }
    ending.set(Ending::Closing);
    let deadline = ctx.end + ctx.cfg.close_timeout;
    if let Some(last) = outgoing.farewell() {
        let len = last.len() as u64;
        if let Some(Ok(())) = until(deadline, tx.send(Message::Binary(last))).await {
            let mut stats = ctx.stats.borrow_mut();
            stats.counters.msgs_out += 1;
            stats.counters.bytes_out += len;
        }
    }
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "load run over".into(),
    };
    let _ = until(deadline, tx.close(Some(frame))).await;
}

/// What the reader does after a message.
pub enum Flow {
    Continue,
    /// End the connection, counted as a disconnect with this reason.
    End(String),
}

/// Reads until the stream ends (after our close, the server's answer ends
/// it) or the close timeout after the run passes. Binary messages go to
/// `on_binary` with their arrival time.
pub async fn read_loop(
    ctx: &ThreadCtx,
    rx: &mut WsReceiver,
    ending: &Cell<Ending>,
    mut on_binary: impl FnMut(&[u8], Instant) -> Flow,
) {
    // One timer for the whole connection, not one per message read.
    let left = (ctx.end + ctx.cfg.close_timeout).saturating_duration_since(Instant::now());
    let mut deadline = glommio::timer::Timer::new(left);
    loop {
        let next = futures_lite::future::or(async { Some(rx.next().await) }, async {
            (&mut deadline).await;
            None
        })
        .await;
        let now = Instant::now();
        match next {
            None => {
                if ending.get() == Ending::Closing {
                    ctx.stats.borrow_mut().counters.closes_unanswered += 1;
                }
                return;
            }
            Some(None) => return end_with(ctx, ending, "vanished"),
            Some(Some(Err(e))) => return end_with(ctx, ending, stream_error_label(&e)),
            Some(Some(Ok(msg))) => {
                {
                    let mut stats = ctx.stats.borrow_mut();
                    stats.counters.msgs_in += 1;
                    stats.counters.bytes_in += msg.len() as u64;
                }
                match msg {
                    Message::Binary(bytes) => {
                        if let Flow::End(reason) = on_binary(&bytes, now) {
                            return end_with(ctx, ending, reason);
                        }
                    }
                    // tungstenite answers the close; reading on lets it
                    // write that answer and see the stream end.
                    Message::Close(frame) => {
                        end_with(ctx, ending, close_label(frame.map(|f| u16::from(f.code))))
                    }
                    Message::Text(_) => ctx.stats.borrow_mut().error("unexpected_text_message"),
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        }
    }
}
