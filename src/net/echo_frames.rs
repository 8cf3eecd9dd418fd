//! `/echo`'s frame logic, without sockets: every complete client frame in a
//! read is parsed (tungstenite's `FrameHeader`), unmasked in place and
//! answered into one output buffer — the echo of each message, pongs, the
//! close reply — so the I/O task does one write per read, however many
//! frames the read held. Pure code: bytes in, bytes out.
//!
//! It is a full RFC 6455 server endpoint for the conformance suite
//! (Autobahn, `tests/autobahn.rs`): fragmented messages are assembled and
//! echoed whole, control frames may interleave, text is UTF-8-checked per
//! fragment (an invalid sequence fails at the fragment that breaks it), close
//! codes are validated, and a message over `--max-payload` ends with 1009.

use std::io::Cursor;

use async_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use async_tungstenite::tungstenite::protocol::frame::FrameHeader;

use crate::protocol::close::CloseReason;
pub use crate::util::ws::push_close;
use crate::util::ws::{self, unmask};

/// Largest control-frame payload (RFC 6455 §5.5).
const CONTROL_PAYLOAD_BYTES_MAX: u64 = 125;

/// How the connection must end, decided by the frames read. The close frame
/// to send is already in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client sent a close frame; the reply is queued.
    PeerClosed,
    /// The client broke the protocol (or a limit); our close frame, with the
    /// code, is queued.
    Failed { reason: CloseReason, code: u16 },
}

/// What one call of [`EchoFrames::process`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    /// Input bytes used; the rest (`input[consumed..]`) is the start of an
    /// incomplete frame, to be offered again with more bytes after it.
    pub consumed: usize,
    /// When the incomplete frame's header is complete: its whole length
    /// (header + payload), so the caller can read exactly up to it.
    pub frame_bytes_needed: Option<usize>,
    /// Data messages echoed (a fragmented message counts once, when whole).
    pub messages: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Set when the connection must close; nothing after the frame that
    /// decided it was used.
    pub ending: Option<Ending>,
}

/// A fragmented message being assembled.
#[derive(Debug)]
struct Fragments {
    text: bool,
    payload: Vec<u8>,
    /// `payload[..utf8_valid]` is known valid UTF-8 (text only); the rest is
    /// at most 3 bytes of a character cut by a fragment boundary.
    utf8_valid: usize,
}

/// One /echo connection's protocol state between reads.
#[derive(Debug)]
pub struct EchoFrames {
    /// `--max-payload`: largest message, and largest frame, accepted.
    payload_bytes_max: usize,
    /// Boxed: idle connections (the common case) carry one pointer.
    fragments: Option<Box<Fragments>>,
}

impl EchoFrames {
    pub fn new(payload_bytes_max: usize) -> Self {
        Self {
            payload_bytes_max,
            fragments: None,
        }
    }

    /// Parses every complete frame at the front of `input` (unmasking
    /// payloads in place) and appends the answers to `out`.
    pub fn process(&mut self, input: &mut [u8], out: &mut Vec<u8>) -> Processed {
        let mut done = Processed::default();
        while done.consumed < input.len() {
            let rest = &mut input[done.consumed..];
            let mut cursor = Cursor::new(&*rest);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(_) => {
                    done.ending = Some(fail(out, CloseReason::ProtocolError, "bad frame header"));
                    break;
                }
            };
            let header_len = cursor.position() as usize;
            if let Err(ending) = self.check(&header, len, out) {
                done.ending = Some(ending);
                break;
            }
            // `check` bounded `len` by --max-payload, so it fits a usize.
            let total = header_len + len as usize;
            if rest.len() < total {
                done.frame_bytes_needed = Some(total);
                break;
            }
            let payload = &mut rest[header_len..total];
            if let Some(mask) = header.mask {
                unmask(payload, mask);
            }
            done.consumed += total;
            if let Err(ending) = self.frame(&header, payload, out, &mut done) {
                done.ending = Some(ending);
                break;
            }
        }
        done
    }

    /// Rules that a header alone decides (before its payload arrives).
    fn check(&self, h: &FrameHeader, len: u64, out: &mut Vec<u8>) -> Result<(), Ending> {
        let protocol = |out: &mut Vec<u8>, why| Err(fail(out, CloseReason::ProtocolError, why));
        if h.rsv1 || h.rsv2 || h.rsv3 {
            return protocol(out, "reserved bits set (no extension was agreed)");
        }
        if h.mask.is_none() {
            return protocol(out, "client frames must be masked");
        }
        match h.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return protocol(out, "reserved opcode")
            }
            OpCode::Control(_) if !h.is_final => return protocol(out, "fragmented control frame"),
            OpCode::Control(_) if len > CONTROL_PAYLOAD_BYTES_MAX => {
                return protocol(out, "control frame over 125 bytes")
            }
            OpCode::Control(_) => return Ok(()),
            OpCode::Data(Data::Continue) if self.fragments.is_none() => {
                return protocol(out, "continuation without a message to continue")
            }
            OpCode::Data(Data::Text | Data::Binary) if self.fragments.is_some() => {
                return protocol(out, "new message inside a fragmented one")
            }
            OpCode::Data(_) => {}
        }
        let so_far = self.fragments.as_ref().map_or(0, |f| f.payload.len()) as u64;
        if so_far.saturating_add(len) > self.payload_bytes_max as u64 {
            return Err(fail(
                out,
                CloseReason::MessageTooBig,
                "message over --max-payload",
            ));
        }
        Ok(())
    }

    /// Acts on one complete, unmasked frame.
    fn frame(
        &mut self,
        h: &FrameHeader,
        payload: &[u8],
        out: &mut Vec<u8>,
        done: &mut Processed,
    ) -> Result<(), Ending> {
        match h.opcode {
            OpCode::Control(Control::Ping) => ws::push_server_frame(out, ws::OPCODE_PONG, payload),
            OpCode::Control(Control::Pong) => {}
            OpCode::Control(Control::Close) => return Err(close_reply(payload, out)),
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                unreachable!("rejected by check")
            }
            OpCode::Data(Data::Continue) => {
                let frags = self.fragments.as_mut().expect("checked: a message is open");
                frags.payload.extend_from_slice(payload);
                if frags.text {
                    frags.utf8_valid += utf8_prefix(&frags.payload[frags.utf8_valid..], h.is_final)
                        .ok_or_else(|| invalid_utf8(out))?;
                }
                if h.is_final {
                    let frags = self.fragments.take().expect("open");
                    echo(out, frags.text, &frags.payload, done);
                }
            }
            OpCode::Data(kind) => {
                let text = kind == Data::Text;
                let utf8_valid = if text {
                    utf8_prefix(payload, h.is_final).ok_or_else(|| invalid_utf8(out))?
                } else {
                    0
                };
                if h.is_final {
                    echo(out, text, payload, done);
                } else {
                    self.fragments = Some(Box::new(Fragments {
                        text,
                        payload: payload.to_vec(),
                        utf8_valid,
                    }));
                }
            }
        }
        Ok(())
    }
}

/// How many leading bytes of `bytes` are valid UTF-8, when the rest can
/// still become valid (a character cut at the end, and more is to come);
/// `None` when the bytes cannot be the start of valid text.
fn utf8_prefix(bytes: &[u8], last: bool) -> Option<usize> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Some(bytes.len()),
        // `error_len() == None`: the input ended inside a character.
        Err(e) if e.error_len().is_none() && !last => Some(e.valid_up_to()),
        Err(_) => None,
    }
}

fn echo(out: &mut Vec<u8>, text: bool, payload: &[u8], done: &mut Processed) {
    let opcode = if text {
        ws::OPCODE_TEXT
    } else {
        ws::OPCODE_BINARY
    };
    ws::push_server_frame(out, opcode, payload);
    done.messages += 1;
    done.payload_bytes += payload.len() as u64;
}

/// Answers the client's close frame: its code back, or 1002 for a code a
/// peer may not send, 1007 for a reason that is not UTF-8.
fn close_reply(payload: &[u8], out: &mut Vec<u8>) -> Ending {
    match payload {
        [] => {
            ws::push_server_frame(out, ws::OPCODE_CLOSE, &[]);
            Ending::PeerClosed
        }
        [_] => fail(out, CloseReason::ProtocolError, "close payload of one byte"),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !CloseCode::from(code).is_allowed() {
                fail(out, CloseReason::ProtocolError, "close code not allowed")
            } else if std::str::from_utf8(reason).is_err() {
                invalid_utf8(out)
            } else {
                ws::push_server_frame(out, ws::OPCODE_CLOSE, &code.to_be_bytes());
                Ending::PeerClosed
            }
        }
    }
}

fn invalid_utf8(out: &mut Vec<u8>) -> Ending {
    let code = u16::from(CloseCode::Invalid);
    push_close(out, code, "invalid utf-8");
    Ending::Failed {
        reason: CloseReason::ProtocolError,
        code,
    }
}

fn fail(out: &mut Vec<u8>, reason: CloseReason, why: &str) -> Ending {
    push_close(out, reason.code(), why);
    Ending::Failed {
        reason,
        code: reason.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame.
    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
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
        f.extend_from_slice(&MASK);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        f
    }

    /// Server frames in `out` as (opcode, payload).
    fn frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut v = Vec::new();
        while !out.is_empty() {
            assert_eq!(out[0] & 0x80, 0x80, "server frames are final");
            assert_eq!(out[1] & 0x80, 0, "server frames are unmasked");
            let (len, hl) = match out[1] {
                126 => (u16::from_be_bytes([out[2], out[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(out[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            v.push((out[0] & 0x0f, out[hl..hl + len].to_vec()));
            out = &out[hl + len..];
        }
        v
    }

    fn run(max: usize, input: &[u8]) -> (Processed, Vec<(u8, Vec<u8>)>) {
        let mut e = EchoFrames::new(max);
        let mut input = input.to_vec();
        let mut out = Vec::new();
        let p = e.process(&mut input, &mut out);
        (p, frames(&out))
    }

    fn close_code(payload: &[u8]) -> u16 {
        u16::from_be_bytes([payload[0], payload[1]])
    }

    #[test]
    fn every_complete_frame_of_a_read_is_echoed_into_one_buffer() {
        let msgs: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 64]).collect();
        let mut input: Vec<u8> = msgs.iter().flat_map(|m| client(true, 0x2, m)).collect();
        let big = vec![9u8; 70_000];
        input.extend(client(true, 0x2, &big));
        let (p, out) = run(1 << 20, &input);
        assert_eq!(p.consumed, input.len());
        assert_eq!((p.messages, p.ending), (51, None));
        assert_eq!(out.len(), 51);
        for (i, (op, payload)) in out.iter().take(50).enumerate() {
            assert_eq!((*op, payload), (0x2, &msgs[i]));
        }
        assert_eq!(out[50].1, big);
    }

    #[test]
    fn an_incomplete_frame_is_left_with_its_length() {
        let a = client(true, 0x2, b"first");
        let b = client(true, 0x1, "second ✓".as_bytes());
        let mut input = [a.clone(), b[..b.len() - 3].to_vec()].concat();
        let mut e = EchoFrames::new(1024);
        let mut out = Vec::new();
        let p = e.process(&mut input, &mut out);
        assert_eq!(p.consumed, a.len());
        assert_eq!(p.frame_bytes_needed, Some(b.len()));
        // Only a header byte: not even the length is known yet.
        let p2 = e.process(&mut b[..1].to_vec(), &mut out);
        assert_eq!((p2.consumed, p2.frame_bytes_needed), (0, None));
        let mut rest = b.clone();
        let p3 = e.process(&mut rest, &mut out);
        assert_eq!(p3.consumed, b.len());
        let got = frames(&out);
        assert_eq!(got[1], (0x1, "second ✓".as_bytes().to_vec()));
    }

    #[test]
    fn fragments_are_echoed_whole_with_control_frames_between() {
        let input = [
            client(false, 0x1, "h€".as_bytes()),
            client(true, 0x9, b"ping!"),
            // "€" cut across two fragments.
            client(false, 0x0, &"€".as_bytes()[..1]),
            client(true, 0x0, &"€llo".as_bytes()[1..]),
        ]
        .concat();
        let (p, out) = run(1024, &input);
        assert_eq!(p.messages, 1);
        assert_eq!(out[0], (0xA, b"ping!".to_vec()));
        assert_eq!(out[1], (0x1, "h€€llo".as_bytes().to_vec()));
    }

    #[test]
    fn invalid_utf8_fails_at_the_fragment_that_breaks_it() {
        let input = [
            client(false, 0x1, b"ok"),
            client(false, 0x0, &[0xff]),
            client(true, 0x0, b"never read"),
        ]
        .concat();
        let (p, out) = run(1024, &input);
        let Some(Ending::Failed { code, .. }) = p.ending else {
            panic!("{p:?}")
        };
        assert_eq!(code, 1007);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].0, close_code(&out[0].1)), (0x8, 1007));
        // A character cut at the end of the final fragment is invalid too.
        let (p, _) = run(1024, &client(true, 0x1, &"€".as_bytes()[..2]));
        assert!(matches!(p.ending, Some(Ending::Failed { code: 1007, .. })));
    }

    #[test]
    fn protocol_errors_close_with_1002() {
        let mut unmasked = client(true, 0x2, b"x");
        unmasked[1] &= 0x7f;
        unmasked.drain(2..6);
        let cases = [
            client(true, 0x0, b"x"),
            [client(false, 0x2, b"x"), client(true, 0x2, b"y")].concat(),
            client(true, 0x3, b""),
            client(true, 0xB, b""),
            client(false, 0x9, b""),
            client(true, 0x9, &[0u8; 126]),
            [vec![0xC2], client(true, 0x2, b"")[1..].to_vec()].concat(), // rsv1
            unmasked,
            client(true, 0x8, &[3]),
            client(true, 0x8, &1005u16.to_be_bytes()),
            client(true, 0x8, &999u16.to_be_bytes()),
        ];
        for (i, case) in cases.iter().enumerate() {
            let (p, out) = run(1024, case);
            assert_eq!(
                p.ending,
                Some(Ending::Failed {
                    reason: CloseReason::ProtocolError,
                    code: 1002
                }),
                "case {i}"
            );
            assert_eq!(close_code(&out.last().unwrap().1), 1002, "case {i}");
        }
    }

    #[test]
    fn over_max_payload_closes_with_1009_before_the_payload_arrives() {
        let frame = client(true, 0x2, &[0u8; 2000]);
        let (p, out) = run(1024, &frame[..8]);
        assert!(matches!(p.ending, Some(Ending::Failed { code: 1009, .. })));
        assert_eq!(close_code(&out[0].1), 1009);
        // Many small fragments over the limit together.
        let mut many = client(false, 0x2, &[0u8; 600]);
        many.extend(client(true, 0x0, &[0u8; 600]));
        let (p, _) = run(1024, &many);
        assert!(matches!(p.ending, Some(Ending::Failed { code: 1009, .. })));
    }

    #[test]
    fn close_is_answered_with_its_code_and_ends_processing() {
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        let input = [client(true, 0x8, &close), client(true, 0x2, b"after")].concat();
        let (p, out) = run(1024, &input);
        assert_eq!(p.ending, Some(Ending::PeerClosed));
        assert_eq!(out, vec![(0x8, 1000u16.to_be_bytes().to_vec())]);
        let (p, out) = run(1024, &client(true, 0x8, b""));
        assert_eq!(
            (p.ending, out),
            (Some(Ending::PeerClosed), vec![(0x8, vec![])])
        );
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.push(0xff);
        let (p, _) = run(1024, &client(true, 0x8, &bad_reason));
        assert!(matches!(p.ending, Some(Ending::Failed { code: 1007, .. })));
    }
}
