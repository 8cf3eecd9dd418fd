//! One running connection's reading, for either mode, on the raw socket
//! (`raw`): every read takes whatever the kernel has into a reused buffer,
//! and each whole frame is handled with its arrival time. Sending is the
//! executor's pump's (`pump`). A connection ends once: when the run is over
//! (our close frame, the server's answer), or otherwise, counted by reason
//! as a disconnect.

use std::cell::Cell;
use std::time::Instant;

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;

use super::connect::{close_label, io_kind_label, MESSAGE_BYTES_MAX, READ_BUFFER_BYTES};
use super::pump::Link;
use super::raw::{parse_server_frame, push_client_frame, push_close, ServerFrame};
use super::runner::ThreadCtx;

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

/// What the reader does after a message.
pub enum Flow {
    Continue,
    /// End the connection, counted as a disconnect with this reason.
    End(String),
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

/// Reads until the server's close answers ours, the stream ends, or the
/// close timeout after the run passes. Binary messages go to `on_binary`
/// with their arrival time; pings are answered, a close from the server
/// is answered and ends the connection (counted by its code).
pub async fn read_frames(
    ctx: &ThreadCtx,
    stream: &mut TcpStream,
    unread: Vec<u8>,
    link: &Link,
    mut on_binary: impl FnMut(&[u8], Instant) -> Flow,
) {
    // One timer for the whole connection, not one per read.
    let left = (ctx.end + ctx.cfg.close_timeout).saturating_duration_since(Instant::now());
    let mut deadline = glommio::timer::Timer::new(left);
    let mut buf = ReadBuf::new(unread);
    let mut now = Instant::now();
    let mut reply = Vec::new();
    loop {
        while let Some(frame) = next_frame(&mut buf, ctx, link) {
            let Some((frame, used)) = frame else { return };
            {
                let mut stats = ctx.stats.borrow_mut();
                stats.counters.msgs_in += 1;
                stats.counters.bytes_in += frame_payload_len(&frame) as u64;
            }
            match frame {
                ServerFrame::Binary(payload) => {
                    if let Flow::End(reason) = on_binary(payload, now) {
                        return end_with(ctx, &link.ending, reason);
                    }
                }
                ServerFrame::Close(code) => {
                    if link.ending.get() == Ending::Running {
                        end_with(ctx, &link.ending, close_label(code));
                        reply.clear();
                        push_close(&mut reply, code.unwrap_or(1000), "", ctx.pump.keys());
                        let _ = link.outlet.send(&reply);
                    }
                    return;
                }
                ServerFrame::Ping(payload) => {
                    reply.clear();
                    push_client_frame(&mut reply, 0xA, payload, ctx.pump.keys());
                    if let Err(reason) = link.outlet.send(&reply) {
                        return end_with(ctx, &link.ending, reason);
                    }
                }
                ServerFrame::Text => ctx.stats.borrow_mut().error("unexpected_text_message"),
                ServerFrame::Unexpected => ctx.stats.borrow_mut().error("unexpected_server_frame"),
                ServerFrame::Pong => {}
            }
            buf.start += used;
        }
        // Fairness on a busy executor: glommio reaps readiness only between
        // task-queue runs, so a reader that always finds bytes must let the
        // others (and the pump) have theirs.
        glommio::executor().yield_if_needed().await;
        let room = buf.room();
        let read = futures_lite::future::or(async { Some(stream.read(room).await) }, async {
            (&mut deadline).await;
            None
        })
        .await;
        now = Instant::now();
        match read {
            None => {
                if link.ending.get() == Ending::Closing {
                    ctx.stats.borrow_mut().counters.closes_unanswered += 1;
                }
                return;
            }
            Some(Ok(0)) => return end_with(ctx, &link.ending, "vanished"),
            Some(Ok(n)) => buf.end += n,
            Some(Err(e)) => return end_with(ctx, &link.ending, io_kind_label(&e)),
        }
    }
}

/// The next whole frame in `buf`: `None` when more bytes are needed,
/// `Some(None)` when the connection must end (a frame over the limit).
fn next_frame<'b>(
    buf: &'b mut ReadBuf,
    ctx: &ThreadCtx,
    link: &Link,
) -> Option<Option<(ServerFrame<'b>, usize)>> {
    if buf.start == buf.end {
        buf.start = 0;
        buf.end = 0;
        return None;
    }
    match parse_server_frame(&buf.data[buf.start..buf.end], MESSAGE_BYTES_MAX) {
        Ok(Some(f)) => Some(Some(f)),
        Ok(None) => None,
        Err(_) => {
            end_with(ctx, &link.ending, "message_too_big");
            Some(None)
        }
    }
}

fn frame_payload_len(f: &ServerFrame<'_>) -> usize {
    match f {
        ServerFrame::Binary(p) | ServerFrame::Ping(p) => p.len(),
        _ => 0,
    }
}
