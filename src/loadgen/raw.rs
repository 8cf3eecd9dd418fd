//! A player's socket after its Join, without the WebSocket library: frames
//! are built and parsed here (RFC 6455, the few kinds this protocol uses),
//! writes are non-blocking `send`s with a bounded backlog, and one read
//! takes whatever the kernel has (often several updates) into a reused
//! buffer. Thousands of players per core need this: the library cost an
//! allocation per message each way, a flush per batch and a buffer
//! zero-fill per read.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;

use super::connect::io_kind_label;

/// Bytes a player's writes may queue in user space once the kernel's socket
/// buffer is full (the server is not reading); over it the connection ends
/// with `send_backlog_full`. Worst case 20,000 × 64 KiB = 1.25 GiB.
pub const SEND_BACKLOG_BYTES_MAX: usize = 64 << 10;

pub use crate::util::ws::{parse_server_frame, ServerFrame};
use crate::util::ws::{OPCODE_BINARY, OPCODE_CLOSE};

/// Masking keys for client frames (RFC 6455 §5.3). A load generator needs
/// no unpredictability, only keys that vary.
#[derive(Debug)]
pub struct MaskKeys(Cell<crate::util::rng::Rng>);

impl MaskKeys {
    pub fn new(seed: u64) -> Self {
        MaskKeys(Cell::new(crate::util::rng::Rng::new(seed)))
    }

    fn next(&self) -> [u8; 4] {
        let mut rng = self.0.get();
        let x = rng.next_u64();
        self.0.set(rng);
        (x as u32).to_ne_bytes()
    }
}

/// Appends one masked client frame to `out`.
pub fn push_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], keys: &MaskKeys) {
    crate::util::ws::push_client_frame(out, opcode, payload, keys.next());
}

pub fn push_binary(out: &mut Vec<u8>, payload: &[u8], keys: &MaskKeys) {
    push_client_frame(out, OPCODE_BINARY, payload, keys);
}

/// A close frame with `code` and a short reason.
pub fn push_close(out: &mut Vec<u8>, code: u16, reason: &str, keys: &MaskKeys) {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    push_client_frame(out, OPCODE_CLOSE, &payload, keys);
}

/// Where a player's outgoing bytes go: straight to the socket while the
/// kernel takes them, else into a bounded backlog flushed before anything
/// newer (so frames never interleave or reorder).
#[derive(Debug)]
pub struct Outlet {
    fd: RawFd,
    backlog: RefCell<Vec<u8>>,
}

impl Outlet {
    pub fn new(fd: RawFd) -> Self {
        Outlet {
            fd,
            backlog: RefCell::new(Vec::new()),
        }
    }

    pub fn has_backlog(&self) -> bool {
        !self.backlog.borrow().is_empty()
    }

    /// Sends `bytes` after the backlog; the error is the report's name for
    /// the connection's end.
    pub fn send(&self, bytes: &[u8]) -> Result<(), String> {
        let mut backlog = self.backlog.borrow_mut();
        if !backlog.is_empty() {
            if backlog.len() + bytes.len() > SEND_BACKLOG_BYTES_MAX {
                return Err("send_backlog_full".to_owned());
            }
            backlog.extend_from_slice(bytes);
            drop(backlog);
            return self.flush();
        }
        let sent = send_some(self.fd, bytes)?;
        if sent < bytes.len() {
            backlog.extend_from_slice(&bytes[sent..]);
        }
        Ok(())
    }

    /// Writes as much of the backlog as the kernel takes now.
    pub fn flush(&self) -> Result<(), String> {
        let mut backlog = self.backlog.borrow_mut();
        if backlog.is_empty() {
            return Ok(());
        }
        let sent = send_some(self.fd, &backlog)?;
        backlog.drain(..sent);
        Ok(())
    }
}

/// One non-blocking send; 0 when the socket buffer is full.
fn send_some(fd: RawFd, bytes: &[u8]) -> Result<usize, String> {
    // SAFETY: `bytes` is valid for reads of its length; `fd` is a socket
    // the caller keeps open.
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(0)
    } else {
        Err(io_kind_label(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmask(frame: &[u8]) -> Vec<u8> {
        let (header, len) = match frame[1] & 0x7f {
            126 => (4, usize::from(u16::from_be_bytes([frame[2], frame[3]]))),
            n => (2, usize::from(n)),
        };
        let mask = &frame[header..header + 4];
        frame[header + 4..header + 4 + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect()
    }

    #[test]
    fn client_frames_are_masked_rfc6455_frames() {
        let keys = MaskKeys::new(7);
        let mut out = Vec::new();
        push_binary(&mut out, b"hello", &keys);
        assert_eq!(&out[..2], &[0x82, 0x80 | 5]);
        assert_eq!(unmask(&out), b"hello");
        let mut long = Vec::new();
        push_binary(&mut long, &[9; 300], &keys);
        assert_eq!(&long[..4], &[0x82, 0x80 | 126, 1, 44]);
        assert_eq!(unmask(&long), vec![9; 300]);
        let mut close = Vec::new();
        push_close(&mut close, 1000, "bye", &keys);
        assert_eq!(close[0], 0x88);
        assert_eq!(unmask(&close), b"\x03\xe8bye");
    }

    #[test]
    fn server_frames_parse_once_whole() {
        let mut b = vec![0x82, 3, 1, 2, 3, 0x88, 2, 0x03, 0xe8];
        assert_eq!(
            parse_server_frame(&b[..4], 100),
            Ok(None),
            "incomplete payload"
        );
        let (f, used) = parse_server_frame(&b, 100).unwrap().unwrap();
        assert_eq!((f, used), (ServerFrame::Binary(&[1, 2, 3]), 5));
        let (f, _) = parse_server_frame(&b[5..], 100).unwrap().unwrap();
        assert_eq!(f, ServerFrame::Close(Some(1000)));
        b[0] = 0x02; // a fragment
        assert_eq!(
            parse_server_frame(&b, 100).unwrap().unwrap().0,
            ServerFrame::Unexpected
        );
        let big = [0x82, 126, 1, 0];
        assert_eq!(parse_server_frame(&big, 100), Err(256));
    }
}
