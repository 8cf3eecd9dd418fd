//! The tick reads a seated player's inputs itself (`net::tick_read`) and
//! hands anything else back to the session. Whatever the mix, every input
//! must be applied, once, in order, and control frames must still get
//! their answers.

mod common;

use std::time::Instant;

use common::*;
use shardline::protocol::{decode_server, ClientEncoder, ServerMsg};

const OP_PONG: u8 = 0xA;

/// Reads until a StateUpdate says `seq` is applied; returns what was seen
/// on the way (WebSocket pongs, game Pongs) and that update's figures.
fn until_applied(raw: &mut RawWs, seq: u32) -> (u32, u32, u32) {
    let deadline = Instant::now() + RECV_TIMEOUT;
    let (mut ws_pongs, mut game_pongs) = (0, 0);
    loop {
        let (op, payload) = raw
            .read_frame(deadline)
            .unwrap_or_else(|| panic!("input {seq} not applied within {RECV_TIMEOUT:?}"));
        match op {
            OP_PONG => ws_pongs += 1,
            OP_PING => raw.send(OP_PONG, &payload),
            OP_BINARY => match decode_server(&payload).expect("a server message") {
                ServerMsg::Pong { .. } => game_pongs += 1,
                ServerMsg::StateUpdate {
                    last_input_seq,
                    inputs_applied,
                    ..
                } if last_input_seq >= seq => {
                    assert_eq!(
                        inputs_applied, last_input_seq,
                        "every input up to {last_input_seq} applied exactly once"
                    );
                    return (ws_pongs, game_pongs, last_input_seq);
                }
                ServerMsg::Error { code, message } => panic!("Error {code:?}: {message}"),
                _ => {}
            },
            OP_CLOSE => panic!("closed: {payload:?}"),
            _ => {}
        }
    }
}

#[test]
fn inputs_around_control_frames_and_pings_are_applied_in_order() {
    let server = Server::start(&["--tick-rate", "30"]);
    let id = id_on_shard("mix", 0);
    let mut enc = ClientEncoder::new();
    let mut first = masked_frame(OP_BINARY, enc.hello("mixer", None));
    first.extend(masked_frame(OP_BINARY, enc.join(Some(&id), true)));
    let mut raw = RawWs::upgrade(server.addr(), &format!("/play?instance={id}"), &first);
    let mut seq = 0;
    // Plain inputs first: the session is idle and the tick reads them.
    for _ in 0..5 {
        seq += 1;
        raw.send(OP_BINARY, enc.input(seq, 1.0, 0.0, 0));
        until_applied(&mut raw, seq);
    }
    // Then, in one write each time: inputs before and after a WebSocket
    // ping (handed back to the session), a pong (taken by the tick) and a
    // game Ping (a binary message the tick decodes and answers).
    for round in 0..5 {
        let mut batch = Vec::new();
        seq += 1;
        batch.extend(masked_frame(OP_BINARY, enc.input(seq, 0.0, 1.0, 0)));
        batch.extend(masked_frame(OP_PING, b"are you there"));
        seq += 1;
        batch.extend(masked_frame(OP_BINARY, enc.input(seq, 0.0, 1.0, 0)));
        batch.extend(masked_frame(OP_PONG, b"unsolicited"));
        batch.extend(masked_frame(OP_BINARY, enc.ping(f64::from(round))));
        seq += 1;
        batch.extend(masked_frame(OP_BINARY, enc.input(seq, 0.0, 1.0, 0)));
        raw.stream.write_all_bounded(&batch);
        let (ws_pongs, game_pongs, applied) = until_applied(&mut raw, seq);
        assert_eq!(applied, seq, "round {round}: no input beyond those sent");
        // Answers may trail the update; read three more ticks for them.
        let (more_ws, more_game) = answers_over_updates(&mut raw, 3);
        assert_eq!(ws_pongs + more_ws, 1, "round {round}: one WebSocket pong");
        assert_eq!(game_pongs + more_game, 1, "round {round}: one game Pong");
    }
}

/// Counts WebSocket pongs and game Pongs read until `updates` more
/// StateUpdates have arrived (one per tick, so this is bounded).
fn answers_over_updates(raw: &mut RawWs, updates: u32) -> (u32, u32) {
    let deadline = Instant::now() + RECV_TIMEOUT;
    let (mut ws, mut game, mut seen) = (0, 0, 0);
    while seen < updates {
        let (op, payload) = raw.read_frame(deadline).expect("the connection ended");
        match op {
            OP_PONG => ws += 1,
            OP_BINARY => match decode_server(&payload) {
                Ok(ServerMsg::Pong { .. }) => game += 1,
                Ok(ServerMsg::StateUpdate { .. }) => seen += 1,
                _ => {}
            },
            _ => {}
        }
    }
    (ws, game)
}

trait WriteAllBounded {
    fn write_all_bounded(&mut self, bytes: &[u8]);
}

impl WriteAllBounded for std::net::TcpStream {
    fn write_all_bounded(&mut self, bytes: &[u8]) {
        // The harness set a write timeout on this socket.
        std::io::Write::write_all(self, bytes).expect("write a batch");
    }
}
