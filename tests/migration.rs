//! Players moving between shards: a Join for an instance another shard
//! owns moves the live connection there, and a resume finds the seat on
//! whichever shard holds it. Nothing the client sent may be lost or
//! reordered on the way.

mod common;

use common::*;
use shardline::protocol::ServerMsg;

/// Unapplied inputs the test client allows itself: below the server's
/// per-tick limit (default 4), so every input is applied and any loss is
/// the server's, not the limit's.
const INPUTS_IN_FLIGHT_MAX: u32 = 3;

#[test]
fn migration_keeps_every_input_in_order() {
    let server = Server::start(&["--tick-rate", "30"]);
    let x = id_on_shard("from", 0);
    let y = id_on_shard("to", 1);
    let (mut c, _) = player(&server.play_url(&x), "mover");
    let jx = c.join(Some(&x));
    assert_eq!(jx.instance_id, x);

    // In X: inputs 1..=K, at most INPUTS_IN_FLIGHT_MAX unapplied at a time.
    const K: u32 = 10;
    const N: u32 = K + 50;
    let mut sent = 0;
    let mut acked = 0;
    let mut last_tick = jx.tick;
    while acked < K {
        while sent < K && sent - acked < INPUTS_IN_FLIGHT_MAX {
            sent += 1;
            c.input(sent, 0.5, 0.5);
        }
        let u = c.next_update();
        assert_eq!(u.tick, last_tick + 1, "X: one update per tick");
        last_tick = u.tick;
        assert!(u.last_input_seq >= acked, "X: last_input_seq went back");
        assert_eq!(
            u.inputs_applied, u.last_input_seq,
            "X: inputs 1..=seq all applied"
        );
        acked = u.last_input_seq;
    }

    // Join Y (owned by the other shard) with two inputs pipelined in the
    // same write, then keep sending while the move happens.
    let join = c.encoder().join(Some(&y), true).to_vec();
    let i1 = c.encoder().input(K + 1, -1.0, 0.0, 0).to_vec();
    let i2 = c.encoder().input(K + 2, -1.0, 0.0, 0).to_vec();
    c.send_batch(&[join, i1, i2]);
    sent = K + 2;
    let jy = loop {
        match c.recv() {
            ServerMsg::StateUpdate {
                tick,
                last_input_seq,
                ..
            } => {
                // Still X until Joined: none of the inputs after the Join
                // may have reached X.
                assert_eq!(tick, last_tick + 1, "X: one update per tick");
                last_tick = tick;
                assert!(
                    last_input_seq <= K,
                    "X applied input {last_input_seq}, sent after the Join of Y"
                );
                if sent - acked < INPUTS_IN_FLIGHT_MAX {
                    sent += 1;
                    c.input(sent, -1.0, 0.0);
                }
            }
            ServerMsg::Joined {
                instance_id,
                entity_id,
                tick,
                entities,
                ..
            } => break (instance_id, entity_id, tick, entities),
            ServerMsg::Error { code, message } => panic!("Join({y}) refused: {code:?} {message}"),
            _ => {}
        }
    };
    let (y_id, y_entity, y_tick, y_entities) = jy;
    assert_eq!(y_id, y);
    assert!(y_entities.iter().any(|e| e.id == y_entity));

    // In Y: continue the numbering to N. Y counts only what it applied, so
    // at every update the applied inputs must be exactly K+1..=last_input_seq.
    let mut last_tick = y_tick;
    let mut acked = K;
    let last = loop {
        while sent < N && sent - acked < INPUTS_IN_FLIGHT_MAX {
            sent += 1;
            c.input(sent, -1.0, 0.0);
        }
        let u = c.next_update();
        assert_eq!(u.tick, last_tick + 1, "Y: one update per tick");
        last_tick = u.tick;
        if u.last_input_seq == 0 {
            assert_eq!(u.inputs_applied, 0);
        } else {
            assert!(u.last_input_seq >= acked, "Y: last_input_seq went back");
            assert_eq!(
                u.inputs_applied,
                u.last_input_seq - K,
                "Y: inputs {}..={} must all be applied, in order (last_input_seq {})",
                K + 1,
                u.last_input_seq,
                u.last_input_seq
            );
            acked = u.last_input_seq;
        }
        if u.last_input_seq == N {
            break u;
        }
    };
    assert_eq!(
        last.inputs_applied,
        N - K,
        "every input sent after the Join applied in Y"
    );
    assert!(last.entity(y_entity).is_some());
}

#[test]
fn resume_on_another_shard_takes_the_seat_back() {
    let server = Server::start(&["--tick-rate", "30"]);
    let home = id_on_shard("home", 0);
    let (mut a, wa) = player(&server.play_url(&home), "a");
    let ja = a.join(Some(&home));
    a.input(1, 1.0, 0.0);
    a.updates_until("input 1 applied", RECV_TIMEOUT, |u| u.last_input_seq == 1);
    // The connection vanishes (no close frame): the seat is kept.
    drop(a);

    // Reconnect through the OTHER shard (the URL routes there at upgrade);
    // the Hello's token is found on shard 0 and the connection moves.
    let elsewhere = id_on_shard("elsewhere", 1);
    let mut b = Client::connect(&server.play_url(&elsewhere));
    let wb = b.hello_resume("a", &wa.resume_token);
    assert!(wb.resumed);
    assert_eq!(wb.player_id, wa.player_id);
    assert_eq!(wb.shard, 0, "Welcome comes from the shard holding the seat");
    let jb = b.expect_joined();
    assert_eq!(jb.instance_id, home);
    assert_eq!(jb.entity_id, ja.entity_id, "same seat, same entity");
    // The seat kept its input history: the next input continues it.
    b.input(2, 0.0, 0.0);
    let u = b.updates_until("input 2 applied", RECV_TIMEOUT, |u| u.last_input_seq == 2);
    assert_eq!(u.inputs_applied, 2);

    // An unknown token is refused, and the connection stays usable.
    let mut c = Client::connect(&server.url("/play"));
    c.send_hello("c", Some("00000000000000000000000000000000"));
    c.expect_error(shardline::protocol::ErrorCode::ResumeRefused);
    let wc = c.hello("c");
    assert!(!wc.resumed);
}

#[test]
fn resume_replaces_the_old_connection_with_4003() {
    let server = Server::start(&["--tick-rate", "30"]);
    let id = id_on_shard("twice", 1);
    let (mut a, wa) = player(&server.play_url(&id), "a");
    let ja = a.join(Some(&id));
    let mut b = Client::connect(&server.play_url(&id));
    let wb = b.hello_resume("a", &wa.resume_token);
    assert!(wb.resumed);
    assert_eq!(b.expect_joined().entity_id, ja.entity_id);
    assert_eq!(a.expect_close().0, 4003);
    // The new connection carries on.
    b.next_update();
}
