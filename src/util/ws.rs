//! RFC 6455 framing, written once for the whole crate: frame headers for
//! both roles, unmasking, and [`ServerStream`], the server side of one
//! connection's frame stream as pure code (bytes in, events and answer
//! bytes out).
//!
//! [`ServerStream`] is a complete server endpoint for the conformance suite
//! (Autobahn): fragmented messages are assembled, control frames may
//! interleave with fragments, pings are answered, text is UTF-8-checked per
//! fragment (an invalid sequence fails at the fragment that breaks it),
//! close codes are validated, a message over the payload limit ends with
//! 1009. Header parsing is tungstenite's (`FrameHeader`); what to do with
//! each frame is ours. Both `/play` (binary game messages) and `/echo` use
//! it; the game driver and the echo server differ only in what they do with
//! a whole message.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use crate::util::close::CloseReason;

pub const OPCODE_CONTINUATION: u8 = 0x0;
pub const OPCODE_TEXT: u8 = 0x1;
pub const OPCODE_BINARY: u8 = 0x2;
pub const OPCODE_CLOSE: u8 = 0x8;
pub const OPCODE_PING: u8 = 0x9;
pub const OPCODE_PONG: u8 = 0xA;
pub const FIN: u8 = 0x80;

/// Largest control-frame payload (RFC 6455 §5.5).
pub const CONTROL_PAYLOAD_BYTES_MAX: usize = 125;
/// Longest frame header: 2 + 8 (length) + 4 (mask).
pub const FRAME_HEADER_BYTES_MAX: usize = 14;

/// Writes a frame header (final frame, `opcode`, `len` payload bytes,
/// masked with `mask` when given) into `out`; returns its length.
pub fn encode_header(
    opcode: u8,
    len: usize,
    mask: Option<[u8; 4]>,
    out: &mut [u8; FRAME_HEADER_BYTES_MAX],
) -> usize {
    out[0] = FIN | opcode;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut at = if len < 126 {
        out[1] = mask_bit | len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    if let Some(m) = mask {
        out[at..at + 4].copy_from_slice(&m);
        at += 4;
    }
    at
}

/// Appends one final, unmasked (server) frame.
pub fn push_server_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let mut header = [0u8; FRAME_HEADER_BYTES_MAX];
    let n = encode_header(opcode, payload.len(), None, &mut header);
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(payload);
}

/// Appends one final client frame masked with `mask`.
pub fn push_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    let mut header = [0u8; FRAME_HEADER_BYTES_MAX];
    let n = encode_header(opcode, payload.len(), Some(mask), &mut header);
    out.extend_from_slice(&header[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[start..], mask);
}

/// Appends our close frame with `code` and `why` (cut to fit a control
/// frame, at a character boundary).
pub fn push_close(out: &mut Vec<u8>, code: u16, why: &str) {
    let mut payload = [0u8; CONTROL_PAYLOAD_BYTES_MAX];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    let mut cut = why.len().min(CONTROL_PAYLOAD_BYTES_MAX - 2);
    while !why.is_char_boundary(cut) {
        cut -= 1;
    }
    payload[2..2 + cut].copy_from_slice(&why.as_bytes()[..cut]);
    push_server_frame(out, OPCODE_CLOSE, &payload[..2 + cut]);
}

/// Whole length (header + payload) of the frame starting `b`, once its
/// header is complete.
pub fn frame_len(b: &[u8]) -> Option<u64> {
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

/// XORs the masking key over the payload (RFC 6455 §5.3), eight bytes at a
/// time. Masking and unmasking are the same operation.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let key = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ key;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// One server frame as a client sees it (servers never mask).
#[derive(Debug, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    Binary(&'a [u8]),
    Text,
    /// The close code, when the frame has one.
    Close(Option<u16>),
    Ping(&'a [u8]),
    Pong,
    /// Fragments, reserved bits, a masked frame: this protocol's server
    /// sends none of them.
    Unexpected,
}

/// Parses the server frame at the start of `b` (client side): `Ok(None)`
/// until it is complete, `Ok(Some((frame, bytes used)))`, or `Err(len)`
/// for a frame whose payload is over `payload_max`.
pub fn parse_server_frame(
    b: &[u8],
    payload_max: usize,
) -> Result<Option<(ServerFrame<'_>, usize)>, usize> {
    if b.len() < 2 {
        return Ok(None);
    }
    let (header, len) = match b[1] & 0x7f {
        126 if b.len() < 4 => return Ok(None),
        126 => (4, u64::from(u16::from_be_bytes([b[2], b[3]]))),
        127 if b.len() < 10 => return Ok(None),
        127 => {
            let bytes: [u8; 8] = b[2..10].try_into().expect("8 bytes");
            (10, u64::from_be_bytes(bytes))
        }
        n => (2, u64::from(n)),
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > payload_max {
        return Err(len);
    }
    if b.len() < header + len {
        return Ok(None);
    }
    let payload = &b[header..header + len];
    let frame = if b[0] & 0x70 != 0 || b[1] & 0x80 != 0 || b[0] & FIN == 0 {
        ServerFrame::Unexpected
    } else {
        match b[0] & 0x0f {
            OPCODE_BINARY => ServerFrame::Binary(payload),
            OPCODE_TEXT => ServerFrame::Text,
            OPCODE_CLOSE => ServerFrame::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            ),
            OPCODE_PING => ServerFrame::Ping(payload),
            OPCODE_PONG => ServerFrame::Pong,
            _ => ServerFrame::Unexpected,
        }
    };
    Ok(Some((frame, header + len)))
}

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

/// What one call of [`ServerStream::process`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    /// Input bytes used; the rest (`input[consumed..]`) is the start of an
    /// incomplete frame (or, after [`Flow::Stop`], frames not yet looked
    /// at), to be offered again.
    pub consumed: usize,
    /// When the incomplete frame's header is complete: its whole length
    /// (header + payload), so the caller can read exactly up to it.
    pub frame_bytes_needed: Option<usize>,
    /// Data messages delivered (a fragmented message counts once, when whole).
    pub messages: u64,
    /// Frames of any kind taken (each counts against flood limits).
    pub frames: u64,
    /// Set when the connection must close; nothing after the frame that
    /// decided it was used.
    pub ending: Option<Ending>,
    /// The caller stopped at a message boundary ([`Flow::Stop`]).
    pub stopped: bool,
}

/// A whole frame-level event for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole data message (assembled from its fragments).
    Message { text: bool, payload: &'a [u8] },
    /// A ping (its payload), for the caller's accounting: the stream
    /// answers it with a pong unless the caller fails the connection.
    Ping(&'a [u8]),
    /// A pong (its payload).
    Pong(&'a [u8]),
}

/// The caller's answer to an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop after this frame: the bytes after it stay unread (a connection
    /// pausing to move to another shard keeps them for the new owner).
    Stop,
    /// Fail the connection with this reason (our close frame is queued).
    Fail(CloseReason),
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

/// One connection's frame-level state between reads (server side).
#[derive(Debug)]
pub struct ServerStream {
    /// Largest message, and largest frame, accepted (`--max-payload`).
    payload_bytes_max: usize,
    /// Boxed: idle connections (the common case) carry one pointer.
    fragments: Option<Box<Fragments>>,
    /// Frames are ignored once the connection has ended.
    ended: bool,
}

impl ServerStream {
    pub fn new(payload_bytes_max: usize) -> Self {
        Self {
            payload_bytes_max,
            fragments: None,
            ended: false,
        }
    }

    /// True between messages (no fragmented message is open).
    pub fn at_message_boundary(&self) -> bool {
        self.fragments.is_none()
    }

    /// Parses every complete frame at the front of `input` (unmasking
    /// payloads in place), hands whole messages and pongs to `on`, and
    /// appends protocol answers (pongs, the close reply, our close frame)
    /// to `out`. `on` may append its own answers to `out` too.
    pub fn process(
        &mut self,
        input: &mut [u8],
        out: &mut Vec<u8>,
        mut on: impl FnMut(Event<'_>, &mut Vec<u8>) -> Flow,
    ) -> Processed {
        let mut done = Processed::default();
        while done.consumed < input.len() && !self.ended {
            let rest = &mut input[done.consumed..];
            let mut cursor = Cursor::new(&*rest);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(_) => {
                    done.ending =
                        Some(self.fail(out, CloseReason::ProtocolError, "bad frame header"));
                    break;
                }
            };
            let header_len = cursor.position() as usize;
            if let Err(ending) = self.check(&header, len, out) {
                done.ending = Some(ending);
                break;
            }
            // `check` bounded `len` by the payload limit, so it fits a usize.
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
            done.frames += 1;
            match self.frame(&header, payload, out, &mut done, &mut on) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => {
                    done.stopped = true;
                    break;
                }
                Ok(Flow::Fail(reason)) => {
                    done.ending = Some(self.fail(out, reason, reason.label()));
                    break;
                }
                Err(ending) => {
                    done.ending = Some(ending);
                    break;
                }
            }
        }
        done
    }

    /// Rules that a header alone decides (before its payload arrives).
    fn check(&mut self, h: &FrameHeader, len: u64, out: &mut Vec<u8>) -> Result<(), Ending> {
        let why = if h.rsv1 || h.rsv2 || h.rsv3 {
            Some("reserved bits set (no extension was agreed)")
        } else if h.mask.is_none() {
            Some("client frames must be masked")
        } else {
            match h.opcode {
                OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                    Some("reserved opcode")
                }
                OpCode::Control(_) if !h.is_final => Some("fragmented control frame"),
                OpCode::Control(_) if len > CONTROL_PAYLOAD_BYTES_MAX as u64 => {
                    Some("control frame over 125 bytes")
                }
                OpCode::Control(_) => return Ok(()),
                OpCode::Data(Data::Continue) if self.fragments.is_none() => {
                    Some("continuation without a message to continue")
                }
                OpCode::Data(Data::Text | Data::Binary) if self.fragments.is_some() => {
                    Some("new message inside a fragmented one")
                }
                OpCode::Data(_) => None,
            }
        };
        if let Some(why) = why {
            return Err(self.fail(out, CloseReason::ProtocolError, why));
        }
        let so_far = self.fragments.as_ref().map_or(0, |f| f.payload.len()) as u64;
        if so_far.saturating_add(len) > self.payload_bytes_max as u64 {
            return Err(self.fail(
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
        on: &mut impl FnMut(Event<'_>, &mut Vec<u8>) -> Flow,
    ) -> Result<Flow, Ending> {
        match h.opcode {
            OpCode::Control(Control::Ping) => {
                let flow = on(Event::Ping(payload), out);
                if let Flow::Fail(_) = flow {
                    return Ok(flow);
                }
                push_server_frame(out, OPCODE_PONG, payload);
                Ok(flow)
            }
            OpCode::Control(Control::Pong) => Ok(on(Event::Pong(payload), out)),
            OpCode::Control(Control::Close) => Err(self.close_reply(payload, out)),
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                unreachable!("rejected by check")
            }
            OpCode::Data(Data::Continue) => {
                let frags = self.fragments.as_mut().expect("checked: a message is open");
                frags.payload.extend_from_slice(payload);
                if frags.text {
                    match utf8_prefix(&frags.payload[frags.utf8_valid..], h.is_final) {
                        Some(n) => frags.utf8_valid += n,
                        None => return Err(self.invalid_utf8(out)),
                    }
                }
                if !h.is_final {
                    return Ok(Flow::Continue);
                }
                let frags = self.fragments.take().expect("open");
                done.messages += 1;
                Ok(on(
                    Event::Message {
                        text: frags.text,
                        payload: &frags.payload,
                    },
                    out,
                ))
            }
            OpCode::Data(kind) => {
                let text = kind == Data::Text;
                let utf8_valid = if text {
                    match utf8_prefix(payload, h.is_final) {
                        Some(n) => n,
                        None => return Err(self.invalid_utf8(out)),
                    }
                } else {
                    0
                };
                if h.is_final {
                    done.messages += 1;
                    Ok(on(Event::Message { text, payload }, out))
                } else {
                    self.fragments = Some(Box::new(Fragments {
                        text,
                        payload: payload.to_vec(),
                        utf8_valid,
                    }));
                    Ok(Flow::Continue)
                }
            }
        }
    }

    /// Answers the client's close frame: its code back, or 1002 for a code
    /// a peer may not send, 1007 for a reason that is not UTF-8.
    fn close_reply(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Ending {
        match payload {
            [] => {
                self.ended = true;
                push_server_frame(out, OPCODE_CLOSE, &[]);
                Ending::PeerClosed
            }
            [_] => self.fail(out, CloseReason::ProtocolError, "close payload of one byte"),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !CloseCode::from(code).is_allowed() {
                    self.fail(out, CloseReason::ProtocolError, "close code not allowed")
                } else if std::str::from_utf8(reason).is_err() {
                    self.invalid_utf8(out)
                } else {
                    self.ended = true;
                    push_server_frame(out, OPCODE_CLOSE, &code.to_be_bytes());
                    Ending::PeerClosed
                }
            }
        }
    }

    fn invalid_utf8(&mut self, out: &mut Vec<u8>) -> Ending {
        self.ended = true;
        let code = u16::from(CloseCode::Invalid);
        push_close(out, code, "invalid utf-8");
        Ending::Failed {
            reason: CloseReason::ProtocolError,
            code,
        }
    }

    fn fail(&mut self, out: &mut Vec<u8>, reason: CloseReason, why: &str) -> Ending {
        self.ended = true;
        push_close(out, reason.code(), why);
        Ending::Failed {
            reason,
            code: reason.code(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame, `fin` or not.
    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        push_client_frame(&mut f, opcode, payload, MASK);
        if !fin {
            f[0] &= !FIN;
        }
        f
    }

    /// Runs `input` through a fresh stream; returns (messages, out, processed).
    fn run(input: &[u8], stop_after: Option<usize>) -> (Vec<Vec<u8>>, Vec<u8>, Processed) {
        let mut s = ServerStream::new(1 << 16);
        let mut input = input.to_vec();
        let mut out = Vec::new();
        let mut got = Vec::new();
        let p = s.process(&mut input, &mut out, |ev, _| {
            if let Event::Message { payload, .. } = ev {
                got.push(payload.to_vec());
            }
            if Some(got.len()) == stop_after {
                Flow::Stop
            } else {
                Flow::Continue
            }
        });
        (got, out, p)
    }

    #[test]
    fn headers_for_both_roles() {
        let mut out = Vec::new();
        push_server_frame(&mut out, OPCODE_BINARY, b"abc");
        assert_eq!(out, [0x82, 3, b'a', b'b', b'c']);
        let mut h = [0u8; FRAME_HEADER_BYTES_MAX];
        assert_eq!(encode_header(OPCODE_BINARY, 300, None, &mut h), 4);
        assert_eq!(&h[..4], &[0x82, 126, 1, 44]);
        assert_eq!(encode_header(OPCODE_BINARY, 70_000, Some(MASK), &mut h), 14);
        assert_eq!(h[1], 0x80 | 127);
        let f = client(true, OPCODE_BINARY, b"hello");
        assert_eq!(frame_len(&f), Some(f.len() as u64));
        assert_eq!(frame_len(&f[..1]), None);
    }

    #[test]
    fn whole_fragmented_and_interleaved_messages() {
        let mut input = client(true, OPCODE_BINARY, b"one");
        input.extend(client(false, OPCODE_BINARY, b"tw"));
        input.extend(client(true, OPCODE_PING, b"p"));
        input.extend(client(true, OPCODE_CONTINUATION, b"o"));
        let (got, out, p) = run(&input, None);
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(out, [0x8a, 1, b'p'], "the ping is answered");
        assert_eq!((p.consumed, p.messages, p.frames), (input.len(), 2, 4));
    }

    #[test]
    fn a_cut_frame_waits_and_stop_leaves_the_rest() {
        let f = client(true, OPCODE_BINARY, &[9; 200]);
        let (got, _, p) = run(&f[..50], None);
        assert!(got.is_empty());
        assert_eq!((p.consumed, p.frame_bytes_needed), (0, Some(f.len())));
        let mut two = client(true, OPCODE_BINARY, b"a");
        let first = two.len();
        two.extend(client(true, OPCODE_BINARY, b"b"));
        let (got, _, p) = run(&two, Some(1));
        assert_eq!(got, vec![b"a".to_vec()]);
        assert!(p.stopped);
        assert_eq!(p.consumed, first, "the second frame is left unread");
    }

    #[test]
    fn protocol_errors_close_with_their_codes() {
        // Unmasked frame.
        let (_, out, p) = run(&[0x82, 1, b'x'], None);
        assert_eq!(
            p.ending,
            Some(Ending::Failed {
                reason: CloseReason::ProtocolError,
                code: 1002
            })
        );
        assert_eq!(&out[..4], &[0x88, out[1], 0x03, 0xea]);
        // Too big.
        let mut s = ServerStream::new(4);
        let mut big = client(true, OPCODE_BINARY, b"12345");
        let mut out = Vec::new();
        let p = s.process(&mut big, &mut out, |_, _| Flow::Continue);
        assert_eq!(
            p.ending
                .map(|e| matches!(e, Ending::Failed { code: 1009, .. })),
            Some(true)
        );
        // Invalid UTF-8 in text.
        let (_, _, p) = run(&client(true, OPCODE_TEXT, &[0xff]), None);
        assert_eq!(
            p.ending
                .map(|e| matches!(e, Ending::Failed { code: 1007, .. })),
            Some(true)
        );
        // Close with a reserved code.
        let (_, _, p) = run(&client(true, OPCODE_CLOSE, &999u16.to_be_bytes()), None);
        assert_eq!(
            p.ending
                .map(|e| matches!(e, Ending::Failed { code: 1002, .. })),
            Some(true)
        );
    }

    #[test]
    fn a_close_is_answered_and_nothing_after_it_is_read() {
        let mut input = client(true, OPCODE_CLOSE, &1000u16.to_be_bytes());
        input.extend(client(true, OPCODE_BINARY, b"late"));
        let (got, out, p) = run(&input, None);
        assert!(got.is_empty());
        assert_eq!(p.ending, Some(Ending::PeerClosed));
        assert_eq!(out, [0x88, 2, 0x03, 0xe8]);
    }

    #[test]
    fn the_caller_may_fail_a_message() {
        let mut s = ServerStream::new(64);
        let mut input = client(true, OPCODE_TEXT, b"hi");
        let mut out = Vec::new();
        let p = s.process(&mut input, &mut out, |_, _| {
            Flow::Fail(CloseReason::UnsupportedData)
        });
        assert_eq!(
            p.ending
                .map(|e| matches!(e, Ending::Failed { code: 1003, .. })),
            Some(true)
        );
    }

    #[test]
    fn server_frames_parse_on_the_client_side() {
        let mut out = Vec::new();
        push_server_frame(&mut out, OPCODE_BINARY, b"xyz");
        push_close(&mut out, 1001, "bye");
        let (f, n) = parse_server_frame(&out, 64).unwrap().unwrap();
        assert_eq!(f, ServerFrame::Binary(b"xyz"));
        let (f, _) = parse_server_frame(&out[n..], 64).unwrap().unwrap();
        assert_eq!(f, ServerFrame::Close(Some(1001)));
        assert_eq!(parse_server_frame(&out[..2], 64), Ok(None));
        assert_eq!(parse_server_frame(&out, 2), Err(3));
    }

    #[test]
    fn unmask_matches_bytewise_xor_at_every_length() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, MASK);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ MASK[i % 4])
                .collect();
            assert_eq!(fast, slow);
        }
    }
}
