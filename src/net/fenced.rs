//! A socket reader that never hands the WebSocket library bytes beyond the
//! frame it is reading (or, before the upgrade, beyond the HTTP request head).
//!
//! tungstenite buffers whatever it reads; bytes it has buffered cannot be
//! taken back. Fencing its reads at frame boundaries means that, whenever
//! tungstenite has returned a complete message, everything the client sent
//! after it is still here (in [`Fenced::into_parts`]) or in the kernel. That is
//! what lets a shard pause a session after a message and hand the socket —
//! with every later byte — to another shard, losslessly, even when the client
//! pipelines. Costs one memcpy per byte (tungstenite would copy anyway) and
//! one extra read buffer per connection (`--read-buffer-bytes`).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

/// Longest WebSocket frame header: 2 + 8 (length) + 4 (mask).
const FRAME_HEADER_BYTES_MAX: usize = 14;

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fence {
    /// Before the upgrade: this many bytes of request head may still pass.
    Head(usize),
    /// After: this many bytes of the current frame may still pass; at 0 the
    /// next frame's header decides.
    Frame(u64),
    /// A client before the upgrade: nothing passes until the response head
    /// (up to its blank line) is complete; then exactly the head passes.
    ResponseHead,
}

/// A response head longer than this is passed on unfenced (the WebSocket
/// library then refuses it); bounds what a client buffers waiting for it.
const RESPONSE_HEAD_BYTES_MAX: usize = 16 << 10;

pub struct Fenced<S> {
    inner: S,
    inbox: Rc<RefCell<Inbox>>,
    read_chunk: usize,
}

/// Bytes read from the socket and where the fence stands in them.
#[derive(Debug)]
pub struct Inbox {
    /// Bytes read from the socket; `buf[pos..]` not yet handed on.
    buf: Vec<u8>,
    pos: usize,
    fence: Fence,
    /// A data frame without FIN was handed on and its message's last
    /// fragment was not yet: the WebSocket library holds part of a message.
    in_fragmented_message: bool,
}

impl<S> Fenced<S> {
    /// A fresh connection: `read` holds every byte read so far, of which the
    /// first `head_len` are the HTTP request head.
    pub fn before_upgrade(read: Vec<u8>, head_len: usize, inner: S, read_chunk: usize) -> Self {
        Self::with(read, Fence::Head(head_len), inner, read_chunk)
    }

    /// A client connection before its upgrade (the load generator): after
    /// the handshake and any complete message, [`Fenced::into_parts`] gives
    /// back every byte the server sent beyond it.
    pub fn client(inner: S, read_chunk: usize) -> Self {
        Self::with(Vec::new(), Fence::ResponseHead, inner, read_chunk)
    }

    /// A connection already upgraded (handed over mid-session): `unread`
    /// starts at a frame boundary.
    pub fn upgraded(unread: Vec<u8>, inner: S, read_chunk: usize) -> Self {
        Self::with(unread, Fence::Frame(0), inner, read_chunk)
    }

    fn with(buf: Vec<u8>, fence: Fence, inner: S, read_chunk: usize) -> Self {
        Self {
            inner,
            inbox: Rc::new(RefCell::new(Inbox {
                buf,
                pos: 0,
                fence,
                in_fragmented_message: false,
            })),
            read_chunk: read_chunk.max(FRAME_HEADER_BYTES_MAX),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The buffer the tick may read into while the session lets it.
    pub fn inbox(&self) -> Rc<RefCell<Inbox>> {
        self.inbox.clone()
    }

    /// The socket and the bytes read from it but not handed on. Only
    /// meaningful at a frame boundary (after a complete message).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let Fenced { inner, inbox, .. } = self;
        let mut inbox = inbox.borrow_mut();
        let pos = inbox.pos;
        inbox.buf.drain(..pos);
        inbox.pos = 0;
        (inner, std::mem::take(&mut inbox.buf))
    }
}

impl Inbox {
    fn unpassed(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// True between messages: no part of a frame or of a fragmented
    /// message has been handed to the WebSocket library.
    pub fn at_message_boundary(&self) -> bool {
        self.fence == Fence::Frame(0) && !self.in_fragmented_message
    }

    /// How many of the buffered bytes may be handed on now; `None` when the
    /// next frame header is incomplete.
    fn passable(&mut self) -> Option<usize> {
        loop {
            match self.fence {
                Fence::ResponseHead => {
                    let b = self.unpassed();
                    match b.windows(4).position(|w| w == b"\r\n\r\n") {
                        Some(at) => self.fence = Fence::Head(at + 4),
                        None if b.len() > RESPONSE_HEAD_BYTES_MAX => {
                            self.fence = Fence::Head(b.len())
                        }
                        None => return None,
                    }
                }
                Fence::Head(0) => self.fence = Fence::Frame(0),
                Fence::Head(n) => return Some(n.min(self.unpassed().len())),
                Fence::Frame(0) => {
                    let len = frame_len(self.unpassed())?;
                    self.note_frame_start(self.unpassed()[0]);
                    self.fence = Fence::Frame(len);
                }
                Fence::Frame(n) => {
                    return Some(n.min(self.unpassed().len() as u64) as usize);
                }
            }
        }
    }

    /// Tracks fragmented messages from each frame's first byte (RFC 6455
    /// §5.4: control frames may come between fragments).
    fn note_frame_start(&mut self, b0: u8) {
        let fin = b0 & 0x80 != 0;
        match b0 & 0x0f {
            OPCODE_CONTINUATION if fin => self.in_fragmented_message = false,
            OPCODE_TEXT | OPCODE_BINARY if !fin => self.in_fragmented_message = true,
            _ => {}
        }
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.fence = match self.fence {
            Fence::Head(left) => Fence::Head(left - n),
            Fence::Frame(left) => Fence::Frame(left - n as u64),
            Fence::ResponseHead => unreachable!("nothing passes before the head is complete"),
        };
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }
}

use crate::util::ws::frame_len;

impl<S: AsyncRead + Unpin> AsyncRead for Fenced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut inbox = this.inbox.borrow_mut();
        let inbox = &mut *inbox;
        loop {
            if let Some(n) = inbox.passable() {
                if n > 0 {
                    let n = n.min(out.len());
                    out[..n].copy_from_slice(&inbox.unpassed()[..n]);
                    inbox.consume(n);
                    return Poll::Ready(Ok(n));
                }
            }
            // Need more bytes from the socket.
            if inbox.pos > 0 {
                inbox.buf.drain(..inbox.pos);
                inbox.pos = 0;
            }
            let start = inbox.buf.len();
            inbox.buf.resize(start + this.read_chunk, 0);
            let res = Pin::new(&mut this.inner).poll_read(cx, &mut inbox.buf[start..]);
            let got = match &res {
                Poll::Ready(Ok(n)) => *n,
                _ => 0,
            };
            inbox.buf.truncate(start + got);
            match res {
                Poll::Ready(Ok(0)) => {
                    // End of stream: hand on whatever is left (a truncated
                    // frame), then EOF, so the reader reports it.
                    let n = inbox.unpassed().len().min(out.len());
                    out[..n].copy_from_slice(&inbox.unpassed()[..n]);
                    inbox.pos += n;
                    return Poll::Ready(Ok(n));
                }
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Fenced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{future::block_on, AsyncReadExt};

    /// A masked client frame with `payload`.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x82];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
        );
        f
    }

    #[test]
    fn frame_lengths() {
        assert_eq!(frame_len(&frame(b"abc")), Some(2 + 4 + 3));
        assert_eq!(frame_len(&frame(&[0; 300])), Some(2 + 2 + 4 + 300));
        assert_eq!(frame_len(&frame(&[0; 70_000])), Some(2 + 8 + 4 + 70_000));
        assert_eq!(frame_len(&[0x82]), None);
        assert_eq!(frame_len(&[0x82, 0x80 | 126, 1]), None);
    }

    #[test]
    fn never_reads_past_the_head_or_a_frame() {
        let head = b"GET /play HTTP/1.1\r\n\r\n".to_vec();
        let (f1, f2) = (frame(b"hello"), frame(&[9; 200]));
        let socket: Vec<u8> = [f1.clone(), f2.clone()].concat();
        let mut first = head.clone();
        first.extend_from_slice(&socket[..3]); // pipelined start of frame 1
        let mut s = Fenced::before_upgrade(first, head.len(), &socket[3..], 64);
        let mut big = [0u8; 4096];
        let n = block_on(s.read(&mut big)).unwrap();
        assert_eq!(&big[..n], &head[..]);
        let mut got = Vec::new();
        while got.len() < f1.len() {
            let n = block_on(s.read(&mut big)).unwrap();
            got.extend_from_slice(&big[..n]);
        }
        assert_eq!(got, f1, "exactly frame 1, nothing of frame 2");
        let (rest, unread) = s.into_parts();
        assert_eq!([unread, rest.to_vec()].concat(), f2, "frame 2 intact");
    }

    #[test]
    fn upgraded_stream_starts_at_a_boundary() {
        let f = frame(b"xyz");
        let mut s = Fenced::upgraded(f.clone(), &[][..], 16);
        let mut out = Vec::new();
        block_on(s.read_to_end(&mut out)).unwrap();
        assert_eq!(out, f);
    }
}
