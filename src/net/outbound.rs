//! One connection's outbound bytes: WebSocket frames queued by the tick and
//! the session, written to the socket in one `send` per wake-up.
//!
//! The buffer comes from the shard's bounded pool and never grows: a
//! frame that does not fit means the client has stopped reading for longer
//! than the kernel's socket buffer could hide, and the connection is dropped
//! (close 4002) instead of queueing without bound. Pure code, no I/O.

/// Server frames are never masked (RFC 6455 §5.1), so their header is 2, 4 or
/// 10 bytes.
const FRAME_HEADER_BYTES_MAX: usize = 10;

const OPCODE_BINARY: u8 = 0x2;
const OPCODE_PING: u8 = 0x9;
const FIN: u8 = 0x80;

/// The frame did not fit: the client is not draining its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("outbound buffer full ({capacity} bytes): client is not reading")]
pub struct Overflow {
    pub capacity: usize,
}

#[derive(Debug)]
pub struct Outbound {
    /// Frames queued; `buf[sent..]` is still to be written.
    buf: Vec<u8>,
    sent: usize,
    /// Hard bound in bytes (the pool's buffer size).
    capacity: usize,
}

impl Outbound {
    /// Wraps a pooled buffer (cleared; its capacity is the bound).
    pub fn new(mut buf: Vec<u8>) -> Self {
        buf.clear();
        let capacity = buf.capacity();
        Self {
            buf,
            sent: 0,
            capacity,
        }
    }

    pub fn push_binary(&mut self, payload: &[u8]) -> Result<(), Overflow> {
        self.push_frame(OPCODE_BINARY, payload)
    }

    /// Payload of a ping is at most 125 bytes (control frame rule).
    pub fn push_ping(&mut self, payload: &[u8]) -> Result<(), Overflow> {
        debug_assert!(payload.len() <= 125);
        self.push_frame(OPCODE_PING, payload)
    }

    fn push_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), Overflow> {
        let mut header = [0u8; FRAME_HEADER_BYTES_MAX];
        let header_len = encode_header(FIN | opcode, payload.len(), &mut header);
        let needed = header_len + payload.len();
        if self.buf.len() + needed > self.capacity {
            self.compact();
            if self.buf.len() + needed > self.capacity {
                return Err(Overflow {
                    capacity: self.capacity,
                });
            }
        }
        self.buf.extend_from_slice(&header[..header_len]);
        self.buf.extend_from_slice(payload);
        Ok(())
    }

    /// Bytes still to be written.
    pub fn unsent(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    pub fn is_empty(&self) -> bool {
        self.sent == self.buf.len()
    }

    /// `n` bytes of [`Self::unsent`] reached the socket.
    pub fn advance(&mut self, n: usize) {
        self.sent += n;
        debug_assert!(self.sent <= self.buf.len());
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        }
    }

    /// Moves the unsent tail to the front to make room.
    fn compact(&mut self) {
        if self.sent > 0 {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Gives the buffer back (for the pool).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

/// Writes a server frame header for `len` payload bytes; returns its length.
fn encode_header(first: u8, len: usize, out: &mut [u8; FRAME_HEADER_BYTES_MAX]) -> usize {
    out[0] = first;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_rfc6455_headers() {
        let mut o = Outbound::new(Vec::with_capacity(70_000));
        o.push_binary(b"abc").unwrap();
        assert_eq!(o.unsent(), &[0x82, 3, b'a', b'b', b'c']);
        o.advance(5);
        o.push_binary(&[7u8; 300]).unwrap();
        assert_eq!(&o.unsent()[..4], &[0x82, 126, 1, 44]);
        o.advance(304);
        o.push_binary(&[7u8; 66_000]).unwrap();
        assert_eq!(o.unsent()[1], 127);
        assert_eq!(o.unsent().len(), 66_010);
        o.advance(66_010);
        o.push_ping(b"t").unwrap();
        assert_eq!(o.unsent(), &[0x89, 1, b't']);
    }

    #[test]
    fn bounded_and_compacts_partial_writes() {
        let mut o = Outbound::new(Vec::with_capacity(10));
        o.push_binary(b"12345678").unwrap();
        assert_eq!(o.push_binary(b"1"), Err(Overflow { capacity: 10 }));
        o.advance(6); // partial write: 4 bytes left
        o.push_binary(b"abcd").unwrap(); // fits after compaction
        assert_eq!(
            o.unsent(),
            &[b'5', b'6', b'7', b'8', 0x82, 4, b'a', b'b', b'c', b'd']
        );
        o.advance(10);
        assert!(o.is_empty());
        assert_eq!(o.into_buffer().capacity(), 10);
    }
}
