//! Client → server messages: decoding on the server ([`decode_client`]) and
//! encoding for client-side tools ([`ClientEncoder`]).

use super::error::verifier_reason;
use super::{
    fb, ErrorCode, ProtocolError, PLAYER_NAME_LEN_MAX, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN,
};
use crate::game::types::{InstanceId, PlayerInput};

/// A verified, validated client message (owned; no borrows of the frame).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientCmd {
    Hello {
        protocol_version: u16,
        player_name: String,
        resume_token: Option<String>,
        /// Join ticket (required with --join-secret).
        ticket: Option<String>,
    },
    Join {
        instance_id: Option<InstanceId>,
        create: bool,
    },
    Leave,
    Input {
        input: PlayerInput,
        /// Version 2: the newest StateDelta tick the client applied (0 =
        /// no acknowledgement).
        ack_tick: u64,
    },
    Ping {
        client_time: f64,
    },
    /// Version 2: the newest StateDelta tick the client applied.
    Ack {
        tick: u64,
    },
    /// A game message (`Message{kind, body}`), for `Game::on_message`.
    /// Its size is bounded by the shard (--message-bytes-max), not here.
    Message {
        kind: u16,
        body: Vec<u8>,
    },
}

/// Verifies `frame` as a `ClientMessage` (checked access: no offset is
/// followed before it has been bounds-checked) and validates its fields.
///
/// # Errors
///
/// The error carries the code to send back: `BadMessage` for anything that is
/// not a well-formed message, or a name over [`PLAYER_NAME_LEN_MAX`] (fatal);
/// `BadInput` / `InvalidInstanceId` for a well-formed message with a refused
/// value (the connection stays).
pub fn decode_client(frame: &[u8]) -> Result<ClientCmd, ProtocolError> {
    let msg = flatbuffers::root::<fb::ClientMessage>(frame).map_err(|e| {
        ProtocolError::bad_message(format!(
            "not a valid ClientMessage: {}",
            verifier_reason(&e)
        ))
    })?;
    match msg.body_type() {
        fb::ClientBody::Hello => decode_hello(msg.body_as_hello().ok_or_else(missing_body)?),
        fb::ClientBody::Join => decode_join(msg.body_as_join().ok_or_else(missing_body)?),
        fb::ClientBody::Leave => {
            msg.body_as_leave().ok_or_else(missing_body)?;
            Ok(ClientCmd::Leave)
        }
        fb::ClientBody::Input => decode_input(msg.body_as_input().ok_or_else(missing_body)?),
        fb::ClientBody::Ping => {
            let ping = msg.body_as_ping().ok_or_else(missing_body)?;
            Ok(ClientCmd::Ping {
                client_time: ping.client_time(),
            })
        }
        fb::ClientBody::Ack => {
            let ack = msg.body_as_ack().ok_or_else(missing_body)?;
            Ok(ClientCmd::Ack { tick: ack.tick() })
        }
        fb::ClientBody::Message => {
            let m = msg.body_as_message().ok_or_else(missing_body)?;
            Ok(ClientCmd::Message {
                kind: m.kind(),
                body: m.body().map(|b| b.bytes().to_vec()).unwrap_or_default(),
            })
        }
        fb::ClientBody::NONE => Err(ProtocolError::bad_message(
            "not a valid ClientMessage: it has no body",
        )),
        other => Err(ProtocolError::bad_message(format!(
            "not a valid ClientMessage: unknown body type {} (this server speaks protocol version {PROTOCOL_VERSION})",
            other.0
        ))),
    }
}

// The verifier refuses a union whose type and value disagree, so this only
// guards against a generated accessor returning None for another reason.
fn missing_body() -> ProtocolError {
    ProtocolError::bad_message("not a valid ClientMessage: its body is missing")
}

fn decode_hello(hello: fb::Hello<'_>) -> Result<ClientCmd, ProtocolError> {
    let name = hello.player_name().unwrap_or("");
    if name.len() > PLAYER_NAME_LEN_MAX {
        return Err(ProtocolError::bad_message(format!(
            "Hello.player_name is {} bytes; at most {PLAYER_NAME_LEN_MAX} bytes of UTF-8 are allowed",
            name.len()
        )));
    }
    Ok(ClientCmd::Hello {
        protocol_version: hello.protocol_version(),
        player_name: name.to_owned(),
        // Clients that keep the token in a string field send "" for "none".
        resume_token: hello
            .resume_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        ticket: hello.ticket().filter(|t| !t.is_empty()).map(str::to_owned),
    })
}

fn decode_join(join: fb::Join<'_>) -> Result<ClientCmd, ProtocolError> {
    let instance_id = match join.instance_id() {
        None => None,
        Some(raw) => Some(InstanceId::parse(raw).map_err(|reason| {
            ProtocolError::new(
                ErrorCode::InvalidInstanceId,
                format!("Join.instance_id {:?} is invalid: {reason}", echo(raw)),
            )
        })?),
    };
    Ok(ClientCmd::Join {
        instance_id,
        create: join.create_if_missing(),
    })
}

fn decode_input(input: fb::Input<'_>) -> Result<ClientCmd, ProtocolError> {
    let seq = input.seq();
    let axis = |name: &str, v: f32| {
        if v.is_finite() {
            Ok(v.clamp(-1.0, 1.0))
        } else {
            Err(ProtocolError::new(
                ErrorCode::BadInput,
                format!("Input seq {seq}: {name} is {v}; axes must be finite numbers in [-1, 1]"),
            ))
        }
    };
    Ok(ClientCmd::Input {
        input: PlayerInput {
            seq,
            move_x: axis("move_x", input.move_x())?,
            move_y: axis("move_y", input.move_y())?,
            buttons: input.buttons(),
        },
        ack_tick: input.ack_tick(),
    })
}

/// At most the first 64 bytes of a client-supplied string, so an error
/// message never grows with the junk it quotes.
fn echo(s: &str) -> String {
    const ECHO_LEN_MAX: usize = 64;
    if s.len() <= ECHO_LEN_MAX {
        return s.to_owned();
    }
    let mut end = ECHO_LEN_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Builds client messages, for tests, the load generator and demo clients.
/// Each method returns the finished frame, borrowed until the next call.
pub struct ClientEncoder {
    fbb: flatbuffers::FlatBufferBuilder<'static>,
}

impl Default for ClientEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientEncoder {
    pub fn new() -> Self {
        Self {
            fbb: flatbuffers::FlatBufferBuilder::with_capacity(256),
        }
    }

    /// A Hello for protocol version 1 (full state in every StateUpdate);
    /// [`ClientEncoder::hello_version`] asks for another.
    pub fn hello(&mut self, name: &str, resume_token: Option<&str>) -> &[u8] {
        self.hello_version(PROTOCOL_VERSION_MIN, name, resume_token)
    }

    /// A Hello claiming any version, to exercise the server's refusal.
    pub fn hello_version(&mut self, version: u16, name: &str, resume_token: Option<&str>) -> &[u8] {
        self.hello_full(version, name, resume_token, None)
    }

    /// A Hello carrying a join ticket.
    pub fn hello_with_ticket(
        &mut self,
        name: &str,
        resume_token: Option<&str>,
        ticket: &str,
    ) -> &[u8] {
        self.hello_full(PROTOCOL_VERSION_MIN, name, resume_token, Some(ticket))
    }

    /// A Hello with every field chosen: `version`, a resume token, a ticket.
    pub fn hello_full(
        &mut self,
        version: u16,
        name: &str,
        resume_token: Option<&str>,
        ticket: Option<&str>,
    ) -> &[u8] {
        self.fbb.reset();
        let fbb = &mut self.fbb;
        let player_name = Some(fbb.create_string(name));
        let resume_token = resume_token.map(|t| fbb.create_string(t));
        let ticket = ticket.map(|t| fbb.create_string(t));
        let body = fb::Hello::create(
            fbb,
            &fb::HelloArgs {
                protocol_version: version,
                player_name,
                resume_token,
                ticket,
            },
        );
        self.finish(fb::ClientBody::Hello, body.as_union_value())
    }

    /// `instance_id` goes out as given, not validated, so tests can send
    /// ids the server must refuse.
    pub fn join(&mut self, instance_id: Option<&str>, create: bool) -> &[u8] {
        self.fbb.reset();
        let fbb = &mut self.fbb;
        let instance_id = instance_id.map(|id| fbb.create_string(id));
        let body = fb::Join::create(
            fbb,
            &fb::JoinArgs {
                instance_id,
                create_if_missing: create,
            },
        );
        self.finish(fb::ClientBody::Join, body.as_union_value())
    }

    pub fn leave(&mut self) -> &[u8] {
        self.fbb.reset();
        let body = fb::Leave::create(&mut self.fbb, &fb::LeaveArgs {});
        self.finish(fb::ClientBody::Leave, body.as_union_value())
    }

    /// Axes go out as given (NaN included), so tests can send bad input.
    pub fn input(&mut self, seq: u32, move_x: f32, move_y: f32, buttons: u32) -> &[u8] {
        self.input_ack(seq, move_x, move_y, buttons, 0)
    }

    /// An Input that also acknowledges StateDelta tick `ack_tick` (version
    /// 2; 0 = none).
    pub fn input_ack(
        &mut self,
        seq: u32,
        move_x: f32,
        move_y: f32,
        buttons: u32,
        ack_tick: u64,
    ) -> &[u8] {
        self.fbb.reset();
        let body = fb::Input::create(
            &mut self.fbb,
            &fb::InputArgs {
                seq,
                move_x,
                move_y,
                buttons,
                ack_tick,
            },
        );
        self.finish(fb::ClientBody::Input, body.as_union_value())
    }

    /// Acknowledges StateDelta tick `tick` (version 2).
    pub fn ack(&mut self, tick: u64) -> &[u8] {
        self.fbb.reset();
        let body = fb::Ack::create(&mut self.fbb, &fb::AckArgs { tick });
        self.finish(fb::ClientBody::Ack, body.as_union_value())
    }

    /// A game message.
    pub fn message(&mut self, kind: u16, body: &[u8]) -> &[u8] {
        self.fbb.reset();
        let body = Some(self.fbb.create_vector(body));
        let body = fb::Message::create(&mut self.fbb, &fb::MessageArgs { kind, body });
        self.finish(fb::ClientBody::Message, body.as_union_value())
    }

    pub fn ping(&mut self, client_time: f64) -> &[u8] {
        self.fbb.reset();
        let body = fb::Ping::create(&mut self.fbb, &fb::PingArgs { client_time });
        self.finish(fb::ClientBody::Ping, body.as_union_value())
    }

    fn finish(
        &mut self,
        body_type: fb::ClientBody,
        body: flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
    ) -> &[u8] {
        let root = fb::ClientMessage::create(
            &mut self.fbb,
            &fb::ClientMessageArgs {
                body_type,
                body: Some(body),
            },
        );
        self.fbb.finish(root, None);
        self.fbb.finished_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    fn decode(frame: &[u8]) -> ClientCmd {
        decode_client(frame).unwrap_or_else(|e| panic!("decode failed: {e:?}"))
    }

    fn decode_err(frame: &[u8]) -> ProtocolError {
        match decode_client(frame) {
            Ok(cmd) => panic!("expected an error, decoded {cmd:?}"),
            Err(e) => e,
        }
    }

    /// Frames by hand, for what `ClientEncoder` cannot express.
    fn raw_message(
        build: impl FnOnce(
            &mut flatbuffers::FlatBufferBuilder<'static>,
        ) -> (
            fb::ClientBody,
            Option<flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>>,
        ),
    ) -> Vec<u8> {
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let (body_type, body) = build(&mut fbb);
        let root = fb::ClientMessage::create(&mut fbb, &fb::ClientMessageArgs { body_type, body });
        fbb.finish(root, None);
        fbb.finished_data().to_vec()
    }

    #[test]
    fn protocol_versions_come_from_the_schema() {
        assert_eq!(PROTOCOL_VERSION, 2);
        // A Hello without the field is a version 1 client.
        assert_eq!(fb::HelloArgs::default().protocol_version, 1);
        assert!(super::super::PROTOCOL_VERSIONS.contains(&1));
        assert!(super::super::PROTOCOL_VERSIONS.contains(&PROTOCOL_VERSION));
    }

    #[test]
    fn message_round_trips() {
        let mut enc = ClientEncoder::new();
        assert_eq!(
            decode(enc.message(7, b"cast at 12")),
            ClientCmd::Message {
                kind: 7,
                body: b"cast at 12".to_vec(),
            }
        );
        assert_eq!(
            decode(enc.message(0, b"")),
            ClientCmd::Message {
                kind: 0,
                body: Vec::new(),
            }
        );
    }

    #[test]
    fn hello_round_trips() {
        let mut enc = ClientEncoder::new();
        assert_eq!(
            decode(enc.hello("alice", Some("00ff"))),
            ClientCmd::Hello {
                protocol_version: PROTOCOL_VERSION_MIN,
                player_name: "alice".into(),
                resume_token: Some("00ff".into()),
                ticket: None,
            }
        );
        assert_eq!(
            decode(enc.hello_version(7, "bob", None)),
            ClientCmd::Hello {
                protocol_version: 7,
                player_name: "bob".into(),
                resume_token: None,
                ticket: None,
            }
        );
    }

    #[test]
    fn join_round_trips() {
        let mut enc = ClientEncoder::new();
        assert_eq!(
            decode(enc.join(Some("arena-7"), false)),
            ClientCmd::Join {
                instance_id: Some(InstanceId::parse("arena-7").expect("valid id")),
                create: false,
            }
        );
        assert_eq!(
            decode(enc.join(None, true)),
            ClientCmd::Join {
                instance_id: None,
                create: true,
            }
        );
    }

    #[test]
    fn join_create_defaults_to_true_when_absent() {
        let frame = raw_message(|fbb| {
            // Nothing added: a client that leaves `create` out.
            let join = fb::JoinBuilder::new(fbb).finish();
            (fb::ClientBody::Join, Some(join.as_union_value()))
        });
        assert_eq!(
            decode(&frame),
            ClientCmd::Join {
                instance_id: None,
                create: true,
            }
        );
    }

    #[test]
    fn leave_input_and_ping_round_trip() {
        let mut enc = ClientEncoder::new();
        assert_eq!(decode(enc.leave()), ClientCmd::Leave);
        assert_eq!(
            decode(enc.input(42, 0.5, -0.25, 0b101)),
            ClientCmd::Input {
                input: PlayerInput {
                    seq: 42,
                    move_x: 0.5,
                    move_y: -0.25,
                    buttons: 0b101,
                },
                ack_tick: 0,
            }
        );
        assert_eq!(
            decode(enc.input_ack(43, 0.0, 1.0, 0, u64::MAX)),
            ClientCmd::Input {
                input: PlayerInput {
                    seq: 43,
                    move_x: 0.0,
                    move_y: 1.0,
                    buttons: 0,
                },
                ack_tick: u64::MAX,
            }
        );
        assert_eq!(decode(enc.ack(77)), ClientCmd::Ack { tick: 77 });
        assert_eq!(
            decode(enc.ping(12345.678)),
            ClientCmd::Ping {
                client_time: 12345.678
            }
        );
    }

    #[test]
    fn missing_name_is_empty_and_empty_token_is_none() {
        let frame = raw_message(|fbb| {
            let token = fbb.create_string("");
            let hello = fb::Hello::create(
                fbb,
                &fb::HelloArgs {
                    protocol_version: 1,
                    player_name: None,
                    resume_token: Some(token),
                    ticket: None,
                },
            );
            (fb::ClientBody::Hello, Some(hello.as_union_value()))
        });
        assert_eq!(
            decode(&frame),
            ClientCmd::Hello {
                protocol_version: 1,
                player_name: String::new(),
                resume_token: None,
                ticket: None,
            }
        );
    }

    #[test]
    fn player_name_length_is_limited_in_bytes() {
        let mut enc = ClientEncoder::new();
        let longest = "n".repeat(PLAYER_NAME_LEN_MAX);
        assert!(decode_client(enc.hello(&longest, None)).is_ok());

        // 11 three-byte characters: 11 chars but 33 bytes.
        let e = decode_err(enc.hello(&"€".repeat(11), None));
        assert_eq!(e.code, ErrorCode::BadMessage);
        assert!(e.is_fatal());
        assert!(
            e.message.contains("player_name is 33 bytes"),
            "{}",
            e.message
        );
    }

    #[test]
    fn invalid_instance_id_keeps_the_connection() {
        let mut enc = ClientEncoder::new();
        for (id, reason) in [
            ("", "empty"),
            ("a/b", "'/'"),
            (&*"x".repeat(65), "65 bytes"),
        ] {
            let e = decode_err(enc.join(Some(id), true));
            assert_eq!(e.code, ErrorCode::InvalidInstanceId, "{id:?}");
            assert!(!e.is_fatal());
            assert!(e.message.contains("instance_id"), "{}", e.message);
            assert!(e.message.contains(reason), "{}", e.message);
        }
    }

    #[test]
    fn long_bad_ids_are_not_echoed_in_full() {
        let mut enc = ClientEncoder::new();
        let e = decode_err(enc.join(Some(&"é".repeat(1000)), true));
        assert_eq!(e.code, ErrorCode::InvalidInstanceId);
        assert!(e.message.len() < 300, "{}", e.message);
    }

    #[test]
    fn non_finite_axes_are_bad_input() {
        let mut enc = ClientEncoder::new();
        for (x, y, axis) in [
            (f32::NAN, 0.0, "move_x"),
            (0.0, f32::INFINITY, "move_y"),
            (f32::NEG_INFINITY, 0.0, "move_x"),
        ] {
            let e = decode_err(enc.input(9, x, y, 0));
            assert_eq!(e.code, ErrorCode::BadInput);
            assert!(!e.is_fatal());
            assert!(e.message.contains(axis), "{}", e.message);
            assert!(e.message.contains("seq 9"), "{}", e.message);
        }
    }

    #[test]
    fn finite_axes_are_clamped() {
        let mut enc = ClientEncoder::new();
        assert_eq!(
            decode(enc.input(1, 5.0, -1e30, 0)),
            ClientCmd::Input {
                input: PlayerInput {
                    seq: 1,
                    move_x: 1.0,
                    move_y: -1.0,
                    buttons: 0,
                },
                ack_tick: 0,
            }
        );
    }

    #[test]
    fn missing_and_unknown_bodies_are_bad_messages() {
        let none = raw_message(|_| (fb::ClientBody::NONE, None));
        let e = decode_err(&none);
        assert_eq!(e.code, ErrorCode::BadMessage);
        assert!(e.message.contains("no body"), "{}", e.message);

        let unknown = raw_message(|fbb| {
            let leave = fb::Leave::create(fbb, &fb::LeaveArgs {});
            (fb::ClientBody(200), Some(leave.as_union_value()))
        });
        let e = decode_err(&unknown);
        assert_eq!(e.code, ErrorCode::BadMessage);
        assert!(e.is_fatal());
        assert!(e.message.contains("unknown body type 200"), "{}", e.message);
    }

    #[test]
    fn unverifiable_frames_are_bad_messages() {
        for frame in [&[][..], &[0xff; 3], &[0xff; 64]] {
            let e = decode_err(frame);
            assert_eq!(e.code, ErrorCode::BadMessage);
            assert!(e.is_fatal());
            assert!(
                e.message.starts_with("not a valid ClientMessage: "),
                "{}",
                e.message
            );
        }
    }

    fn valid_frames() -> Vec<Vec<u8>> {
        let mut enc = ClientEncoder::new();
        vec![
            enc.hello("player-one", Some("0123456789abcdef")).to_vec(),
            enc.join(Some("arena-1"), true).to_vec(),
            enc.join(None, false).to_vec(),
            enc.leave().to_vec(),
            enc.input(7, 0.5, -0.5, 3).to_vec(),
            enc.ping(1.5).to_vec(),
        ]
    }

    #[test]
    fn random_bytes_are_bad_messages() {
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..4000 {
            let len = rng.below(200);
            let frame: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let e = decode_err(&frame);
            assert_eq!(e.code, ErrorCode::BadMessage, "{frame:?}");
        }
    }

    #[test]
    fn truncated_frames_are_bad_messages_or_unchanged() {
        for frame in valid_frames() {
            let whole = decode(&frame);
            for len in 0..frame.len() {
                // Cutting only trailing alignment padding leaves a valid
                // message; it must then read exactly as the whole frame.
                match decode_client(&frame[..len]) {
                    Ok(cmd) => assert_eq!(cmd, whole, "{:?}", &frame[..len]),
                    Err(e) => assert_eq!(e.code, ErrorCode::BadMessage, "{:?}", &frame[..len]),
                }
            }
        }
    }

    #[test]
    fn bit_flipped_frames_never_panic() {
        let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
        let frames = valid_frames();
        for _ in 0..4000 {
            let mut frame = frames[rng.below(frames.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let bit = rng.below(frame.len() * 8);
                frame[bit / 8] ^= 1 << (bit % 8);
            }
            // A flip inside a scalar still makes a well-formed message, so
            // success is fine; what matters is no panic and a proper code.
            if let Err(e) = decode_client(&frame) {
                assert!(
                    matches!(
                        e.code,
                        ErrorCode::BadMessage | ErrorCode::BadInput | ErrorCode::InvalidInstanceId
                    ),
                    "{e:?}"
                );
                assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn encoder_reuse_gives_identical_bytes() {
        let reference = valid_frames();
        let mut enc = ClientEncoder::new();
        for _ in 0..1000 {
            assert_eq!(
                enc.hello("player-one", Some("0123456789abcdef")),
                &reference[0][..]
            );
            assert_eq!(enc.join(Some("arena-1"), true), &reference[1][..]);
            assert_eq!(enc.input(7, 0.5, -0.5, 3), &reference[4][..]);
            assert_eq!(enc.ping(1.5), &reference[5][..]);
        }
    }
}
