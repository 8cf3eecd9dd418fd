//! Protocol version 2 over a real socket: a v1 and a v2 client in the same
//! instance see the same world at the same tick (within the documented
//! precision), and a client whose acks stall gets full states, then deltas
//! again once it acknowledges.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Client, Server};
use shardline::game::EntityView;
use shardline::protocol::delta::{ClientWorld, DeltaRef, POSITION_ERROR_MAX};
use shardline::protocol::ServerMsg;

const HISTORY: u16 = 8;

/// A v2 client: Hello (version 2) and Join; checks Welcome's history.
fn v2_client(server: &Server, instance: &str, name: &str) -> Client {
    let mut c = Client::connect(&server.play_url(instance));
    let hello = c.encoder().hello_version(2, name, None).to_vec();
    c.send_binary(&hello);
    let w = c.expect_welcome();
    assert_eq!(w.limits.delta_history_ticks, HISTORY);
    c.join(Some(instance));
    c
}

/// The next StateDelta, applied to `world`; returns (tick, baseline, the
/// rebuilt entities).
fn next_delta(c: &mut Client, world: &mut ClientWorld) -> (u64, u64, Vec<EntityView>) {
    let msg = c.recv_until("StateDelta", Duration::from_secs(5), |m| {
        matches!(m, ServerMsg::StateDelta { .. })
    });
    let ServerMsg::StateDelta {
        tick,
        baseline_tick,
        last_input_seq,
        inputs_applied,
        entities,
        custom_full,
        custom_patch,
    } = msg
    else {
        unreachable!("filtered above")
    };
    let d = DeltaRef {
        tick,
        baseline_tick,
        last_input_seq,
        inputs_applied,
        entities: &entities,
        custom_full: custom_full.as_deref(),
        custom_patch: custom_patch.as_deref(),
    };
    let got = world
        .apply(&d)
        .unwrap_or_else(|e| panic!("delta of tick {tick} on {baseline_tick}: {e}"));
    let ents = got.entities.iter().map(|q| q.to_view()).collect();
    (tick, baseline_tick, ents)
}

#[test]
fn v1_and_v2_clients_of_one_instance_see_the_same_world() {
    let history = HISTORY.to_string();
    let server = Server::start(&["--tick-rate", "30", "--delta-history-ticks", &history]);
    let id = "deltas-1";
    let mut v1 = Client::connect(&server.play_url(id));
    v1.hello("old");
    v1.join(Some(id));
    let mut v2 = v2_client(&server, id, "new");
    let mut world = ClientWorld::new(usize::from(HISTORY));
    let mut seen_v1: BTreeMap<u64, Vec<EntityView>> = BTreeMap::new();
    let mut seen_v2: BTreeMap<u64, Vec<EntityView>> = BTreeMap::new();
    let mut deltas = 0;
    for seq in 1..=90u32 {
        let angle = seq as f32 * 0.2;
        v1.input(seq, angle.cos(), angle.sin());
        let u = v1.next_update();
        seen_v1.insert(u.tick, u.entities);
        // The v2 client moves too, and acknowledges on its input.
        let (tick, baseline, ents) = next_delta(&mut v2, &mut world);
        deltas += usize::from(baseline != 0);
        let frame = v2
            .encoder()
            .input_ack(seq, -angle.sin(), angle.cos(), 0, tick)
            .to_vec();
        v2.send_binary(&frame);
        seen_v2.insert(tick, ents);
    }
    assert!(deltas > 30, "only {deltas} of 90 updates were deltas");
    let mut compared = 0;
    for (tick, a) in &seen_v1 {
        let Some(b) = seen_v2.get(tick) else { continue };
        let mut a = a.clone();
        a.sort_by_key(|e| e.id);
        assert_eq!(a.len(), 2, "both players at tick {tick}");
        assert_eq!(a.len(), b.len(), "tick {tick}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!((x.id, x.kind, x.flags), (y.id, y.kind, y.flags));
            for (p, q) in [(x.x, y.x), (x.y, y.y), (x.vx, y.vx), (x.vy, y.vy)] {
                assert!(
                    (p - q).abs() <= POSITION_ERROR_MAX + 1e-3,
                    "tick {tick}: v1 {x:?} v2 {y:?}"
                );
            }
        }
        compared += 1;
    }
    assert!(compared >= 60, "only {compared} ticks seen by both");
}

fn ack(c: &mut Client, tick: u64) {
    let frame = c.encoder().ack(tick).to_vec();
    c.send_binary(&frame);
}

#[test]
fn a_client_whose_acks_stall_gets_full_states_then_deltas_again() {
    let history = HISTORY.to_string();
    let server = Server::start(&["--tick-rate", "30", "--delta-history-ticks", &history]);
    let id = "deltas-2";
    let mut c = v2_client(&server, id, "stall");
    let mut world = ClientWorld::new(usize::from(HISTORY));
    // Acknowledging: deltas come.
    let mut deltas = 0;
    for _ in 0..30 {
        let (tick, baseline, _) = next_delta(&mut c, &mut world);
        deltas += usize::from(baseline != 0);
        ack(&mut c, tick);
    }
    assert!(deltas > 0, "no delta while acknowledging");
    // Silent: after the history, only full states.
    let mut baselines = Vec::new();
    for _ in 0..(3 * HISTORY) {
        baselines.push(next_delta(&mut c, &mut world).1);
    }
    let tail = &baselines[baselines.len() - usize::from(HISTORY)..];
    assert!(tail.iter().all(|&b| b == 0), "{baselines:?}");
    // Acknowledging again: deltas again, every one applying.
    let mut back = false;
    for _ in 0..30 {
        let (tick, baseline, _) = next_delta(&mut c, &mut world);
        back |= baseline != 0;
        ack(&mut c, tick);
    }
    assert!(back, "no delta after the acks came back");
}
