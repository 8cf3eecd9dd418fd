//! One connection's outbound bytes: WebSocket frames queued by the core's
//! effects and the connection's own protocol answers, written by the
//! driver with one send at a time.
//!
//! The buffer comes from the shard's bounded pool and never grows: a frame
//! that does not fit means the client has stopped reading for longer than
//! the kernel's socket buffer could hide, and the connection is dropped
//! (close 4002) instead of queueing without bound. While a send is in
//! flight its bytes are pinned (the kernel reads them): nothing moves them
//! until its completion. Pure code, no I/O.

use crate::util::ws::{self, FRAME_HEADER_BYTES_MAX};

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
    /// `buf[sent..sent + in_flight]` is being written by the kernel now.
    in_flight: usize,
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
            in_flight: 0,
            capacity,
        }
    }

    pub fn push_binary(&mut self, payload: &[u8]) -> Result<(), Overflow> {
        self.push_frame(ws::OPCODE_BINARY, payload)
    }

    /// Payload of a ping is at most 125 bytes (control frame rule).
    pub fn push_ping(&mut self, payload: &[u8]) -> Result<(), Overflow> {
        debug_assert!(payload.len() <= ws::CONTROL_PAYLOAD_BYTES_MAX);
        self.push_frame(ws::OPCODE_PING, payload)
    }

    fn push_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), Overflow> {
        let mut header = [0u8; FRAME_HEADER_BYTES_MAX];
        let header_len = ws::encode_header(opcode, payload.len(), None, &mut header);
        self.make_room(header_len + payload.len())?;
        self.buf.extend_from_slice(&header[..header_len]);
        self.buf.extend_from_slice(payload);
        Ok(())
    }

    /// Bytes already framed (the upgrade response, protocol answers).
    pub fn push_raw(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        self.make_room(bytes.len())?;
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn make_room(&mut self, needed: usize) -> Result<(), Overflow> {
        if self.buf.len() + needed > self.capacity {
            self.compact();
            if self.buf.len() + needed > self.capacity {
                return Err(Overflow {
                    capacity: self.capacity,
                });
            }
        }
        Ok(())
    }

    /// Bytes still to be written.
    pub fn unsent(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    pub fn is_empty(&self) -> bool {
        self.sent == self.buf.len()
    }

    /// Whether a send is in flight.
    pub fn sending(&self) -> bool {
        self.in_flight > 0
    }

    /// Starts a send of everything unsent: the bytes to hand the kernel
    /// (pinned until [`Self::send_done`]). `None` when a send is in flight
    /// or nothing is queued.
    pub fn begin_send(&mut self) -> Option<(*const u8, usize)> {
        if self.in_flight > 0 || self.is_empty() {
            return None;
        }
        self.in_flight = self.buf.len() - self.sent;
        Some((self.buf[self.sent..].as_ptr(), self.in_flight))
    }

    /// The send in flight ended having written `n` bytes (0 on failure).
    pub fn send_done(&mut self, n: usize) {
        debug_assert!(n <= self.in_flight);
        self.in_flight = 0;
        self.advance(n);
    }

    /// `n` bytes of [`Self::unsent`] reached the socket.
    pub fn advance(&mut self, n: usize) {
        self.sent += n;
        debug_assert!(self.sent <= self.buf.len());
        if self.sent == self.buf.len() && self.in_flight == 0 {
            self.buf.clear();
            self.sent = 0;
        }
    }

    /// Moves the unsent tail to the front to make room (not while the
    /// kernel reads it).
    fn compact(&mut self) {
        if self.sent > 0 && self.in_flight == 0 {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Gives the buffer back (for the pool).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
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
    fn overflow_is_refused_not_grown() {
        let mut o = Outbound::new(Vec::with_capacity(16));
        o.push_binary(&[1; 10]).unwrap();
        assert_eq!(o.push_binary(&[1; 10]), Err(Overflow { capacity: 16 }));
        assert_eq!(o.unsent().len(), 12, "the first frame is intact");
    }

    #[test]
    fn bytes_in_flight_stay_put_and_later_frames_queue_behind() {
        let mut o = Outbound::new(Vec::with_capacity(32));
        o.push_binary(&[1; 8]).unwrap(); // 10 bytes
        let (ptr, len) = o.begin_send().unwrap();
        assert_eq!(len, 10);
        assert!(o.begin_send().is_none(), "one send at a time");
        o.push_binary(&[2; 8]).unwrap(); // 20 bytes
                                         // Room is not made by moving the in-flight bytes.
        assert!(o.push_binary(&[3; 12]).is_err());
        assert_eq!(o.unsent().as_ptr(), ptr);
        o.send_done(6); // partial
        assert_eq!(o.unsent().len(), 14);
        let (_, len) = o.begin_send().unwrap();
        assert_eq!(len, 14);
        o.send_done(14);
        assert!(o.is_empty());
        o.push_binary(&[4; 28]).unwrap();
    }
}
