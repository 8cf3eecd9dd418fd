//! Game messages, events, hooks and instance messages through the core.

use super::*;
use crate::game::{InstanceMail, JoinInfo, Outbox, Refusal};

/// A world that writes down what it was given, in order, as its custom
/// state ("i<seq>" per input, "m<kind>" per message, "x<kind>" per
/// instance message), and answers messages with events:
/// kind 1 → to all, 2 → to the sender, 3 → to the instance named by the
/// body, 4 → to players within 15 units of the sender. Entity n stands
/// at x = 10 × n. Refuses players named "mallory" and inputs with
/// buttons 0xDEAD ("teleport").
#[derive(Default)]
struct Chat {
    log: Vec<String>,
    last: EntityId,
    alive: Vec<EntityId>,
}

impl Game for Chat {
    fn spawn(&mut self, _player: PlayerId) -> EntityId {
        self.last += 1;
        self.alive.push(self.last);
        self.last
    }
    fn despawn(&mut self, entity: EntityId) {
        self.alive.retain(|&e| e != entity);
    }
    fn apply_input(&mut self, _entity: EntityId, input: &PlayerInput) {
        self.log.push(format!("i{}", input.seq));
    }
    fn step(&mut self, _dt_s: f32) {}
    fn entities(&self, out: &mut Vec<EntityView>) {
        out.extend(self.alive.iter().map(|&id| EntityView {
            id,
            x: 10.0 * id as f32,
            ..Default::default()
        }));
    }
    fn bounds(&self) -> (f32, f32) {
        (100.0, 100.0)
    }
    fn custom_state(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.log.join(",").as_bytes());
    }
    fn state_bytes(&self) -> usize {
        0
    }
    fn save(&self, _out: &mut Vec<u8>) {}
    fn on_join(
        &mut self,
        _player: PlayerId,
        info: &JoinInfo<'_>,
        _out: &mut Outbox,
    ) -> Result<(), Refusal> {
        if info.name == "mallory" {
            return Err(Refusal::new("no mallory here"));
        }
        Ok(())
    }
    fn validate_input(&self, _entity: EntityId, input: &PlayerInput) -> Result<(), &'static str> {
        if input.buttons == 0xDEAD {
            return Err("teleport");
        }
        Ok(())
    }
    fn on_message(
        &mut self,
        player: PlayerId,
        entity: EntityId,
        kind: u16,
        body: &[u8],
        out: &mut Outbox,
    ) {
        self.log.push(format!("m{kind}"));
        match kind {
            1 => {
                out.to_all(1, body);
            }
            2 => {
                out.to_player(player, 2, body);
            }
            3 => {
                let to = InstanceId::parse(std::str::from_utf8(body).unwrap()).unwrap();
                out.to_instance(&to, 3, b"ping");
            }
            4 => {
                out.to_near(entity, 15.0, 4, body);
            }
            _ => {}
        }
    }
    fn on_instance_message(&mut self, mail: &InstanceMail, out: &mut Outbox) {
        self.log.push(format!("x{}", mail.kind));
        out.to_all(9, mail.from.as_str().as_bytes());
    }
}

struct ChatFactory;

impl GameFactory for ChatFactory {
    fn name(&self) -> &'static str {
        "chat"
    }
    fn create(&self, _instance: &InstanceId) -> Box<dyn Game> {
        Box::new(Chat::default())
    }
    fn restore(&self, _instance: &InstanceId, _bytes: &[u8]) -> Result<Box<dyn Game>, String> {
        Ok(Box::new(Chat::default()))
    }
}

fn chat_core(id: usize, shards: usize, t0: Instant, opts: ServeOpts) -> Core {
    let cores: Vec<usize> = (0..shards).collect();
    let cfg = Config::resolve(
        ServeOpts {
            shards: Some(shards),
            ..opts
        },
        &cores,
    )
    .expect("config");
    let mut core = core_with(id, shards, Arc::new(ChatFactory), t0);
    core.shared.cfg = Arc::new(cfg);
    core
}

fn hello_as(
    core: &mut Core,
    fx: &mut Recorded,
    now: Instant,
    conn: ConnId,
    version: u16,
    name: &str,
) -> PlayerId {
    core.connected(conn, now, None);
    let bytes = ClientEncoder::new()
        .hello_version(version, name, None)
        .to_vec();
    core.message(fx, now, conn, &bytes);
    match sent_to(&fx.take(), conn).as_slice() {
        [ServerMsg::Welcome { player_id, .. }] => *player_id,
        other => panic!("expected a Welcome, got {other:?}"),
    }
}

fn send(core: &mut Core, fx: &mut Recorded, now: Instant, conn: ConnId, bytes: &[u8]) {
    core.message(fx, now, conn, bytes);
}

fn custom_of(msgs: &[ServerMsg]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::StateUpdate { custom, .. } => {
                Some(String::from_utf8(custom.clone()).unwrap())
            }
            // Version 2: the first update after a Join is a full state.
            ServerMsg::StateDelta {
                custom_full: Some(custom),
                ..
            } => Some(String::from_utf8(custom.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

fn events_of(msgs: &[ServerMsg]) -> Vec<(u16, Vec<u8>)> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::GameEvent { kind, body, .. } => Some((*kind, body.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn messages_reach_the_game_in_arrival_order_with_inputs_inside_the_tick() {
    let t0 = Instant::now();
    let mut core = chat_core(0, 1, t0, ServeOpts::default());
    let mut fx = Recorded::default();
    hello_as(&mut core, &mut fx, t0, 1, 1, "ada");
    let mut enc = ClientEncoder::new();
    send(&mut core, &mut fx, t0, 1, enc.join(Some("room"), true));
    fx.take();
    send(&mut core, &mut fx, t0, 1, enc.input(1, 0.0, 0.0, 0));
    send(&mut core, &mut fx, t0, 1, enc.message(7, b"a"));
    send(&mut core, &mut fx, t0, 1, enc.input(2, 0.0, 0.0, 0));
    send(&mut core, &mut fx, t0, 1, enc.message(8, b"b"));
    assert!(fx.take().is_empty(), "nothing happens before the tick");
    run_interval(&mut core, &mut fx);
    assert_eq!(custom_of(&sent_to(&fx.take(), 1)), ["i1,m7,i2,m8"]);
    assert_eq!(core.metrics.game_messages_received.get(), 2);
}

#[test]
fn message_bounds_have_their_outcomes() {
    let t0 = Instant::now();
    let opts = ServeOpts {
        message_bytes_max: Some(16),
        messages_per_tick_max: Some(2),
        game_messages_per_second_max: Some(6),
        ..Default::default()
    };
    let mut core = chat_core(0, 1, t0, opts);
    let mut fx = Recorded::default();
    let mut enc = ClientEncoder::new();
    // Before Hello: out of order, closed.
    core.connected(9, t0, None);
    send(&mut core, &mut fx, t0, 9, enc.message(1, b"x"));
    let effects = fx.take();
    assert_eq!(error_codes(&sent_to(&effects, 9)), [ErrorCode::OutOfOrder]);
    assert_eq!(closes(&effects), [(9, CloseReason::PolicyViolation)]);
    // Before Join: NotInInstance, the connection stays.
    let welcome = {
        core.connected(1, t0, None);
        let bytes = enc.hello("ada", None).to_vec();
        send(&mut core, &mut fx, t0, 1, &bytes);
        sent_to(&fx.take(), 1)
    };
    match welcome.as_slice() {
        [ServerMsg::Welcome { limits, .. }] => {
            assert_eq!(
                (limits.message_bytes_max, limits.messages_per_tick_max),
                (16, 2)
            );
        }
        other => panic!("{other:?}"),
    }
    send(&mut core, &mut fx, t0, 1, enc.message(1, b"x"));
    let effects = fx.take();
    assert_eq!(
        error_codes(&sent_to(&effects, 1)),
        [ErrorCode::NotInInstance]
    );
    assert!(closes(&effects).is_empty());
    send(&mut core, &mut fx, t0, 1, enc.join(Some("room"), true));
    fx.take();
    // Oversize: MessageTooLarge, dropped, the connection stays.
    send(&mut core, &mut fx, t0, 1, enc.message(1, &[0; 17]));
    let effects = fx.take();
    assert_eq!(
        error_codes(&sent_to(&effects, 1)),
        [ErrorCode::MessageTooLarge]
    );
    assert!(closes(&effects).is_empty());
    assert_eq!(core.metrics.game_messages_too_large.get(), 1);
    // Per tick: two queued, the third dropped and counted.
    for kind in [5, 6, 7] {
        send(&mut core, &mut fx, t0, 1, enc.message(kind, &[0; 16]));
    }
    assert_eq!(core.metrics.game_messages_dropped_full.get(), 1);
    run_interval(&mut core, &mut fx);
    assert_eq!(custom_of(&sent_to(&fx.take(), 1)), ["m5,m6"]);
    // Five messages went by in this second, a sixth fills the bucket's
    // burst; the seventh floods: MessageFlood and close 1008.
    send(&mut core, &mut fx, t0, 1, enc.message(1, b"x"));
    assert!(error_codes(&sent_to(&fx.take(), 1)).is_empty());
    send(&mut core, &mut fx, t0, 1, enc.message(1, b"x"));
    let effects = fx.take();
    assert_eq!(
        error_codes(&sent_to(&effects, 1)),
        [ErrorCode::MessageFlood]
    );
    assert_eq!(closes(&effects), [(1, CloseReason::PolicyViolation)]);
    assert_eq!(core.metrics.game_message_flooders_closed.get(), 1);
}

#[test]
fn events_follow_the_state_update_to_one_all_and_near_and_skip_v1_clients() {
    let t0 = Instant::now();
    let mut core = chat_core(0, 1, t0, ServeOpts::default());
    let mut fx = Recorded::default();
    let mut enc = ClientEncoder::new();
    // Entities 1 (x=10), 2 (x=20), 3 (x=30): players 1 and 2 speak v2,
    // player 3 speaks v1.
    for (conn, version) in [(1, 2), (2, 2), (3, 1)] {
        hello_as(&mut core, &mut fx, t0, conn, version, "p");
        send(&mut core, &mut fx, t0, conn, enc.join(Some("room"), true));
    }
    fx.take();
    send(&mut core, &mut fx, t0, 2, enc.message(1, b"all"));
    send(&mut core, &mut fx, t0, 2, enc.message(2, b"me"));
    run_interval(&mut core, &mut fx);
    let effects = fx.take();
    let to1 = sent_to(&effects, 1);
    assert!(
        matches!(to1[0], ServerMsg::StateDelta { tick: 1, .. }),
        "{to1:?}"
    );
    assert!(
        matches!(to1[1], ServerMsg::GameEvent { tick: 1, .. }),
        "after the update"
    );
    assert_eq!(events_of(&to1), [(1, b"all".to_vec())]);
    assert_eq!(
        events_of(&sent_to(&effects, 2)),
        [(1, b"all".to_vec()), (2, b"me".to_vec())],
        "emission order"
    );
    let to3 = sent_to(&effects, 3);
    assert!(events_of(&to3).is_empty(), "v1 clients never get GameEvent");
    assert_eq!(to3.len(), 1, "a v1 client gets exactly its StateUpdate");
    // Near entity 1 (x=10), radius 15: entity 2 (x=20) is near, 3 (x=30) is not.
    send(&mut core, &mut fx, t0, 1, enc.message(4, b"near"));
    hello_as(&mut core, &mut fx, t0, 4, 2, "far");
    send(&mut core, &mut fx, t0, 4, enc.join(Some("room"), true));
    run_interval(&mut core, &mut fx);
    let effects = fx.take();
    assert_eq!(events_of(&sent_to(&effects, 1)), [(4, b"near".to_vec())]);
    assert_eq!(events_of(&sent_to(&effects, 2)), [(4, b"near".to_vec())]);
    assert!(
        events_of(&sent_to(&effects, 4)).is_empty(),
        "entity 4 is 30 away"
    );
    assert_eq!(core.metrics.game_events_sent.get(), 5);
}

#[test]
fn the_game_refuses_joins_and_impossible_inputs() {
    let t0 = Instant::now();
    let mut core = chat_core(0, 1, t0, ServeOpts::default());
    let mut fx = Recorded::default();
    let mut enc = ClientEncoder::new();
    hello_as(&mut core, &mut fx, t0, 1, 2, "mallory");
    send(&mut core, &mut fx, t0, 1, enc.join(Some("room"), true));
    let effects = fx.take();
    let msgs = sent_to(&effects, 1);
    match msgs.as_slice() {
        [ServerMsg::Error { code, message }] => {
            assert_eq!(*code, ErrorCode::JoinRefused);
            assert_eq!(message, "no mallory here");
        }
        other => panic!("{other:?}"),
    }
    assert!(closes(&effects).is_empty(), "the connection stays");
    assert_eq!(core.metrics.joins_refused.get(), 1);
    assert_eq!(core.world.seated_players(), 0);

    hello_as(&mut core, &mut fx, t0, 2, 2, "ada");
    send(&mut core, &mut fx, t0, 2, enc.join(Some("room"), true));
    send(&mut core, &mut fx, t0, 2, enc.input(1, 0.0, 0.0, 0xDEAD));
    send(&mut core, &mut fx, t0, 2, enc.input(2, 0.0, 0.0, 0));
    fx.take();
    run_interval(&mut core, &mut fx);
    let msgs = sent_to(&fx.take(), 2);
    assert_eq!(
        custom_of(&msgs),
        ["i2"],
        "the refused input never reached the world"
    );
    assert!(matches!(
        msgs[0],
        ServerMsg::StateDelta {
            last_input_seq: 2,
            inputs_applied: 1,
            ..
        }
    ));
    assert_eq!(core.metrics.inputs_refused.get(), 1);
    assert_eq!(
        *core.metrics.inputs_refused_by_reason.borrow(),
        [("teleport", 1)]
    );
}

#[test]
fn instances_message_each_other_across_shards_at_most_once() {
    let t0 = Instant::now();
    let mut s0 = chat_core(0, 2, t0, ServeOpts::default());
    let mut s1 = chat_core(1, 2, t0, ServeOpts::default());
    let (mut f0, mut f1) = (Recorded::default(), Recorded::default());
    let mut enc = ClientEncoder::new();
    let (lobby, target) = (id_on(0), id_on(1));
    hello_as(&mut s0, &mut f0, t0, 1, 2, "ada");
    send(&mut s0, &mut f0, t0, 1, enc.join(Some(&lobby), true));
    hello_as(&mut s1, &mut f1, t0, 2, 2, "bob");
    send(&mut s1, &mut f1, t0, 2, enc.join(Some(&target), true));
    f0.take();
    f1.take();
    send(&mut s0, &mut f0, t0, 1, enc.message(3, target.as_bytes()));
    send(&mut s0, &mut f0, t0, 1, enc.message(3, b"nowhere-0"));
    run_interval(&mut s0, &mut f0);
    let mesh: Vec<ShardMsg> = f0
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Mesh { to: 1, msg } => Some(msg),
            _ => None,
        })
        .collect();
    let owner_of_nowhere = shard_for(&InstanceId::parse("nowhere-0").unwrap(), 2);
    assert_eq!(mesh.len(), if owner_of_nowhere == 1 { 2 } else { 1 });
    if owner_of_nowhere == 0 {
        assert_eq!(s0.metrics.instance_messages_dropped_gone.get(), 1);
    }
    for msg in mesh {
        s1.mesh(&mut f1, t0, msg);
    }
    run_interval(&mut s1, &mut f1);
    let msgs = sent_to(&f1.take(), 2);
    assert_eq!(
        custom_of(&msgs),
        ["x3"],
        "delivered once, in the target's tick"
    );
    assert_eq!(events_of(&msgs), [(9, lobby.as_bytes().to_vec())]);
    assert_eq!(s1.metrics.instance_messages_delivered.get(), 1);
    let gone = s0.metrics.instance_messages_dropped_gone.get()
        + s1.metrics.instance_messages_dropped_gone.get();
    assert_eq!(gone, 1, "a message to no instance is dropped and counted");
    // Nothing is delivered twice.
    run_interval(&mut s1, &mut f1);
    assert_eq!(custom_of(&sent_to(&f1.take(), 2)), ["x3"]);
}
