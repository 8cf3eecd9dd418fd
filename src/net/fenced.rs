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
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

/// Longest WebSocket frame header: 2 + 8 (length) + 4 (mask).
const FRAME_HEADER_BYTES_MAX: usize = 14;

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_PONG: u8 = 0xA;

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
    /// Shared with the connection (`Conn::tick_read`), so the shard's tick
    /// can read a seated player's inputs straight from the socket into the
    /// same buffer (see `net::tick_read`); one buffer keeps one order.
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

/// What [`Inbox::take_binary_frame`] found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// A whole, final, masked binary frame; its unmasked payload was
    /// written to the caller's buffer and the frame consumed.
    Binary,
    /// The same for a pong (a heartbeat's answer; nothing to write back).
    Pong,
    /// Nothing buffered, or only the start of a frame.
    NeedMore,
    /// Something only the WebSocket library should handle (a ping, close,
    /// text or fragmented frame, reserved bits, no mask, too long).
    Other,
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

    /// Takes the frame at the front if it is a whole, final, masked binary
    /// (or pong) frame with at most `payload_max` bytes, unmasking its payload into
    /// `payload`. Only at a message boundary; anything else is left for the
    /// WebSocket library, in order.
    pub fn take_binary_frame(&mut self, payload_max: usize, payload: &mut Vec<u8>) -> Front {
        if !self.at_message_boundary() {
            return Front::Other;
        }
        let b = self.unpassed();
        if b.len() < 2 {
            return Front::NeedMore;
        }
        // FIN, no reserved bits, binary or pong; masked (every client
        // frame is). A control frame's payload is at most 125 bytes.
        let kind = match b[0] {
            x if x == 0x80 | OPCODE_BINARY => Front::Binary,
            x if x == 0x80 | OPCODE_PONG && b[1] & 0x7f <= 125 => Front::Pong,
            _ => return Front::Other,
        };
        if b[1] & 0x80 == 0 {
            return Front::Other;
        }
        let (header, len) = match b[1] & 0x7f {
            127 => return Front::Other,
            126 if b.len() < 4 => return Front::NeedMore,
            126 => (8, usize::from(u16::from_be_bytes([b[2], b[3]]))),
            n => (6, usize::from(n)),
        };
        if len > payload_max {
            return Front::Other;
        }
        if b.len() < header + len {
            return Front::NeedMore;
        }
        let mask = [b[header - 4], b[header - 3], b[header - 2], b[header - 1]];
        payload.clear();
        payload.extend(
            b[header..header + len]
                .iter()
                .enumerate()
                .map(|(i, x)| x ^ mask[i % 4]),
        );
        self.pos += header + len;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        kind
    }

    /// One non-blocking `recv` of up to `chunk` bytes from `fd` onto the
    /// end of the buffer. `Ok(0)` is the end of the stream.
    pub fn recv_from(&mut self, fd: RawFd, chunk: usize) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(chunk);
        let start = self.buf.len();
        let spare = self.buf.spare_capacity_mut();
        // SAFETY: `spare` is writable memory of at least `chunk` bytes that
        // the vector owns; recv writes at most `chunk` bytes into it.
        let n = unsafe {
            libc::recv(
                fd,
                spare.as_mut_ptr().cast::<libc::c_void>(),
                chunk,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        // SAFETY: recv initialised the first `n` bytes after `start`.
        unsafe { self.buf.set_len(start + n) };
        Ok(n)
    }
}

/// Total length (header + payload) of the frame starting at `b`, once its
/// header is complete. RFC 6455 §5.2.
fn frame_len(b: &[u8]) -> Option<u64> {
    if b.len() < 2 {
        return None;
    }
    let mask = if b[1] & 0x80 != 0 { 4 } else { 0 };
    let (ext, payload) = match b[1] & 0x7f {
        126 => (2, u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]))),
        127 => {
            let bytes: [u8; 8] = b.get(2..10)?.try_into().ok()?;
            (8, u64::from_be_bytes(bytes))
        }
        n => (0, u64::from(n)),
    };
    Some((2 + ext + mask) as u64).map(|h| h.saturating_add(payload))
}

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

    #[test]
    fn the_tick_takes_whole_binary_frames_in_order_and_leaves_the_rest() {
        let (a, b) = (frame(b"input-1"), frame(&[7; 200]));
        let mut ping = frame(b"p");
        ping[0] = 0x89;
        let bytes = [a.clone(), b, ping.clone(), frame(b"after")].concat();
        let s = Fenced::upgraded(bytes[..a.len() + 3].to_vec(), &b""[..], 64);
        let inbox = s.inbox();
        let mut payload = Vec::new();
        let mut inbox = inbox.borrow_mut();
        assert_eq!(inbox.take_binary_frame(1024, &mut payload), Front::Binary);
        assert_eq!(payload, b"input-1");
        // Only the start of the next frame is here.
        assert_eq!(inbox.take_binary_frame(1024, &mut payload), Front::NeedMore);
        inbox.buf.extend_from_slice(&bytes[a.len() + 3..]);
        assert_eq!(
            inbox.take_binary_frame(100, &mut payload),
            Front::Other,
            "over the limit"
        );
        assert_eq!(inbox.take_binary_frame(1024, &mut payload), Front::Binary);
        assert_eq!(payload, vec![7; 200]);
        // A ping is the WebSocket library's: it and everything after stay.
        assert_eq!(inbox.take_binary_frame(1024, &mut payload), Front::Other);
        assert_eq!(
            inbox.unpassed(),
            &[ping.clone(), frame(b"after")].concat()[..]
        );
        // A pong (a heartbeat's answer) is taken like an input.
        inbox.buf.clear();
        inbox.pos = 0;
        let mut pong = ping;
        pong[0] = 0x8A;
        inbox.buf.extend_from_slice(&pong);
        assert_eq!(inbox.take_binary_frame(1024, &mut payload), Front::Pong);
        assert_eq!(payload, b"p");
    }

    #[test]
    fn no_tick_reads_inside_a_fragmented_message() {
        let mut first = frame(b"part");
        first[0] = 0x02; // binary, no FIN
        let mut last = frame(b"end");
        last[0] = 0x80; // continuation, FIN
        let input = frame(b"next");
        let bytes = [first.clone(), last.clone(), input].concat();
        let mut s = Fenced::upgraded(Vec::new(), &bytes[..], 64);
        let mut out = vec![0u8; first.len()];
        block_on(s.read_exact(&mut out)).unwrap();
        let inbox = s.inbox();
        assert!(!inbox.borrow().at_message_boundary());
        let mut payload = Vec::new();
        assert_eq!(
            inbox.borrow_mut().take_binary_frame(1024, &mut payload),
            Front::Other
        );
        let mut out = vec![0u8; last.len()];
        block_on(s.read_exact(&mut out)).unwrap();
        assert!(inbox.borrow().at_message_boundary());
        assert_eq!(
            inbox.borrow_mut().take_binary_frame(1024, &mut payload),
            Front::Binary
        );
        assert_eq!(payload, b"next");
    }
}
