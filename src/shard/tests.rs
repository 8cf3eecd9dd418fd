//! The shard core, driven by hand: no sockets, no clock, no sleeps. Time is
//! an `Instant` the test moves; effects are recorded and decoded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::effects::{Ask, Effect, Recorded};
use super::mesh::ShardMsg;
use super::{ConnId, Core, CoreShared};
use crate::auth::replay::UsedTickets;
use crate::config::{Config, ServeOpts};
use crate::game::{
    shard_for, ArenaFactory, EntityId, EntityView, Game, GameFactory, InstanceId, PlayerId,
    PlayerInput,
};
use crate::metrics::ShardMetrics;
use crate::protocol::{decode_server, ClientEncoder, ErrorCode, LeaveReason, ServerMsg};
use crate::util::close::CloseReason;

const TICK: Duration = Duration::from_nanos(1_000_000_000 / 30);

fn config(shards: usize) -> Arc<Config> {
    let opts = ServeOpts {
        shards: Some(shards),
        ..Default::default()
    };
    let cores: Vec<usize> = (0..shards).collect();
    Arc::new(Config::resolve(opts, &cores).expect("default config"))
}

fn core_with(id: usize, shards: usize, factory: Arc<dyn GameFactory>, t0: Instant) -> Core {
    let shared = CoreShared {
        cfg: config(shards),
        factory,
        join_secret: None,
        used_tickets: UsedTickets::new(16),
        public_url: None,
        fleet_metrics: None,
    };
    Core::new(
        id,
        shared,
        std::rc::Rc::new(ShardMetrics::default()),
        t0,
        1_700_000_000_000_000,
        42 + id as u64,
    )
}

fn core(t0: Instant) -> Core {
    core_with(0, 1, Arc::new(ArenaFactory), t0)
}

/// Frames sent to `conn`, decoded, in order.
fn sent_to(effects: &[Effect], conn: ConnId) -> Vec<ServerMsg> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { conn: c, payload }
            | Effect::Update {
                conn: c, payload, ..
            } if *c == conn => Some(decode_server(payload).expect("valid server message")),
            _ => None,
        })
        .collect()
}

fn closes(effects: &[Effect]) -> Vec<(ConnId, CloseReason)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Close { conn, reason } => Some((*conn, *reason)),
            _ => None,
        })
        .collect()
}

fn error_codes(msgs: &[ServerMsg]) -> Vec<ErrorCode> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

struct Client {
    conn: ConnId,
    enc: ClientEncoder,
}

impl Client {
    fn new(conn: ConnId) -> Self {
        Client {
            conn,
            enc: ClientEncoder::new(),
        }
    }

    fn hello(&mut self, core: &mut Core, fx: &mut Recorded, now: Instant) -> (PlayerId, String) {
        core.connected(self.conn, now, None);
        let bytes = self.enc.hello("ada", None).to_vec();
        core.message(fx, now, self.conn, &bytes);
        let effects = fx.take();
        match sent_to(&effects, self.conn).as_slice() {
            [ServerMsg::Welcome {
                player_id,
                resume_token,
                ..
            }] => (*player_id, resume_token.clone()),
            other => panic!("expected one Welcome, got {other:?}"),
        }
    }

    fn join(
        &mut self,
        core: &mut Core,
        fx: &mut Recorded,
        now: Instant,
        id: Option<&str>,
    ) -> Vec<Effect> {
        let bytes = self.enc.join(id, true).to_vec();
        core.message(fx, now, self.conn, &bytes);
        fx.take()
    }

    fn input(&mut self, core: &mut Core, fx: &mut Recorded, now: Instant, seq: u32, x: f32) {
        let bytes = self.enc.input(seq, x, 0.0, 0).to_vec();
        core.message(fx, now, self.conn, &bytes);
    }
}

/// Runs every slot of the tick interval once, as the runtime would.
fn run_interval(core: &mut Core, fx: &mut Recorded) -> Instant {
    let clock = Instant::now;
    let mut last = Instant::now();
    for _ in 0..core.slots.count() {
        let (at, slot) = core.slots.next();
        core.run_slot(fx, at, slot, &clock);
        core.slots.advance(at);
        last = at;
    }
    last
}

fn joined_instance(effects: &[Effect], conn: ConnId) -> String {
    sent_to(effects, conn)
        .into_iter()
        .find_map(|m| match m {
            ServerMsg::Joined { instance_id, .. } => Some(instance_id),
            _ => None,
        })
        .expect("a Joined")
}

#[test]
fn hello_join_inputs_and_one_update_per_player_per_tick() {
    let t0 = Instant::now();
    let mut core = core(t0);
    let mut fx = Recorded::default();
    let (mut a, mut b) = (Client::new(1), Client::new(2));
    let (pa, _) = a.hello(&mut core, &mut fx, t0);
    let (pb, _) = b.hello(&mut core, &mut fx, t0);
    let id = joined_instance(&a.join(&mut core, &mut fx, t0, Some("room-1")), 1);
    assert_eq!(id, "room-1");
    let effects = b.join(&mut core, &mut fx, t0, Some("room-1"));
    assert!(
        matches!(sent_to(&effects, 1).as_slice(), [ServerMsg::PlayerJoined { player_id, .. }] if *player_id == pb)
    );
    a.input(&mut core, &mut fx, t0, 1, 1.0);
    a.input(&mut core, &mut fx, t0, 2, 1.0);
    run_interval(&mut core, &mut fx);
    let effects = fx.take();
    let updates = |conn| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Update { conn: c, .. } if *c == conn))
            .count()
    };
    assert_eq!(
        (updates(1), updates(2)),
        (1, 1),
        "one update per player per tick"
    );
    match &sent_to(&effects, 1)[..] {
        [ServerMsg::StateUpdate {
            tick,
            last_input_seq,
            inputs_applied,
            entities,
            ..
        }] => {
            assert_eq!((*tick, *last_input_seq, *inputs_applied), (1, 2, 2));
            assert_eq!(entities.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    // b's copy of the shared update carries b's own fields.
    assert!(matches!(
        &sent_to(&effects, 2)[..],
        [ServerMsg::StateUpdate {
            last_input_seq: 0,
            inputs_applied: 0,
            ..
        }]
    ));
    let inputs = effects.iter().find_map(|e| match e {
        Effect::Update {
            conn: 1, inputs, ..
        } => Some(*inputs),
        _ => None,
    });
    assert_eq!(
        inputs,
        Some(2),
        "the update carries its inputs' arrival times"
    );
    let _ = pa;
}

#[test]
fn inputs_are_bounded_per_tick_and_stale_ones_dropped() {
    let t0 = Instant::now();
    let mut core = core(t0);
    let mut fx = Recorded::default();
    let mut a = Client::new(1);
    a.hello(&mut core, &mut fx, t0);
    a.join(&mut core, &mut fx, t0, Some("r"));
    let max = core.cfg().inputs_per_tick_max as u32;
    for seq in 1..=max + 3 {
        a.input(&mut core, &mut fx, t0, seq, 0.5);
    }
    a.input(&mut core, &mut fx, t0, 1, 0.5); // stale
    assert_eq!(core.metrics.inputs_dropped_full.get(), 3);
    assert_eq!(core.metrics.inputs_dropped_stale.get(), 1);
    run_interval(&mut core, &mut fx);
    assert_eq!(core.metrics.inputs_applied.get(), u64::from(max));
    // An Input before Join is out of order and closes (1008).
    let mut c = Client::new(3);
    c.hello(&mut core, &mut fx, t0);
    c.input(&mut core, &mut fx, t0, 1, 0.0);
    let effects = fx.take();
    assert_eq!(error_codes(&sent_to(&effects, 3)), [ErrorCode::OutOfOrder]);
    assert_eq!(closes(&effects), [(3, CloseReason::PolicyViolation)]);
}

#[test]
fn instances_tick_in_their_own_slots_spread_over_the_interval() {
    let t0 = Instant::now();
    let mut core = core(t0);
    let mut fx = Recorded::default();
    let slots = core.slots.count();
    assert!(slots >= 4);
    let mut clients: Vec<Client> = (0..4).map(|i| Client::new(10 + i)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.hello(&mut core, &mut fx, t0);
        c.join(&mut core, &mut fx, t0, Some(&format!("room-{i}")));
    }
    // Four instances, one player each: four different slots.
    let mut used: Vec<usize> = core.world.instances.values().map(|h| h.slot).collect();
    used.sort_unstable();
    used.dedup();
    assert_eq!(used.len(), 4, "each instance in its own slot");
    fx.take();
    // Within one interval each instance steps once, at its slot's time, in
    // slot order.
    let clock = Instant::now;
    let mut order = Vec::new();
    for _ in 0..slots {
        let (at, slot) = core.slots.next();
        core.run_slot(&mut fx, at, slot, &clock);
        core.slots.advance(at);
        for e in fx.take() {
            if let Effect::Update { conn, .. } = e {
                order.push((at, conn));
            }
        }
    }
    assert_eq!(order.len(), 4, "every player got exactly one update");
    let times: Vec<Instant> = order.iter().map(|o| o.0).collect();
    assert!(
        times.windows(2).all(|w| w[1] > w[0]),
        "updates leave at distinct times"
    );
    assert!(times[3] - times[0] < TICK, "within one interval");
    for h in core.world.instances.values() {
        assert_eq!(h.inst.tick(), 1);
    }
}

#[test]
fn a_clean_close_leaves_and_a_drop_keeps_the_seat_for_a_resume() {
    let t0 = Instant::now();
    let mut core = core(t0);
    let mut fx = Recorded::default();
    let (mut a, mut b) = (Client::new(1), Client::new(2));
    let (pa, token) = a.hello(&mut core, &mut fx, t0);
    b.hello(&mut core, &mut fx, t0);
    a.join(&mut core, &mut fx, t0, Some("r"));
    b.join(&mut core, &mut fx, t0, Some("r"));
    fx.take();
    // a drops (not a clean close): the seat waits.
    core.disconnected(&mut fx, t0, 1, false);
    assert!(fx.take().is_empty(), "nobody is told of a drop");
    assert!(core.world.players[&pa].conn.is_none());
    // a resumes on a new connection: Welcome{resumed} + Joined, same id.
    let mut a2 = Client::new(5);
    core.connected(5, t0, None);
    let bytes = a2.enc.hello("ada", Some(&token)).to_vec();
    core.message(&mut fx, t0, 5, &bytes);
    let msgs = sent_to(&fx.take(), 5);
    assert!(
        matches!(&msgs[..], [ServerMsg::Welcome { player_id, resumed: true, .. }, ServerMsg::Joined { .. }] if *player_id == pa)
    );
    // Now a clean close: a leaves, b is told (PlayerLeft Left).
    core.disconnected(&mut fx, t0, 5, true);
    let msgs = sent_to(&fx.take(), 2);
    assert!(
        matches!(&msgs[..], [ServerMsg::PlayerLeft { player_id, reason: LeaveReason::Left, .. }] if *player_id == pa)
    );
    assert!(!core.world.players.contains_key(&pa));
    // A token of a player that left is refused.
    core.connected(6, t0, None);
    let bytes = ClientEncoder::new().hello("x", Some(&token)).to_vec();
    core.message(&mut fx, t0, 6, &bytes);
    assert_eq!(
        error_codes(&sent_to(&fx.take(), 6)),
        [ErrorCode::ResumeRefused]
    );
}

#[test]
fn a_dropped_seat_expires_after_the_grace() {
    let t0 = Instant::now();
    let mut core = core(t0);
    let mut fx = Recorded::default();
    let mut a = Client::new(1);
    let (pa, _) = a.hello(&mut core, &mut fx, t0);
    a.join(&mut core, &mut fx, t0, Some("r"));
    core.disconnected(&mut fx, t0, 1, false);
    let grace = core.cfg().reconnect_grace;
    core.sweep(&mut fx, t0 + grace - Duration::from_millis(1));
    assert!(core.world.players.contains_key(&pa));
    core.sweep(&mut fx, t0 + grace);
    assert!(!core.world.players.contains_key(&pa));
    assert_eq!(core.metrics.seats_expired.get(), 1);
    // The instance is disposed once idle long enough.
    let idle = core.cfg().instance_idle;
    core.sweep(&mut fx, t0 + grace + idle);
    assert!(core.world.instances.is_empty());
    assert!(core.slots.members(0).is_empty() && core.slots.players().iter().all(|&p| p == 0));
}

#[test]
fn no_hello_within_the_connect_timeout_is_closed() {
    let t0 = Instant::now();
    let mut core = core(t0);
    let mut fx = Recorded::default();
    core.connected(9, t0, None);
    core.sweep(&mut fx, t0 + core.cfg().connect_timeout);
    assert_eq!(closes(&fx.take()), [(9, CloseReason::ConnectTimeout)]);
}

/// An instance id that `shard_for` puts on `shard` of 2.
fn id_on(shard: usize) -> String {
    (0..)
        .map(|i| format!("room-{i}"))
        .find(|s| shard_for(&InstanceId::parse(s).unwrap(), 2) == shard)
        .unwrap()
}

#[test]
fn a_join_to_another_shard_pauses_moves_and_hands_the_socket_over() {
    let t0 = Instant::now();
    let mut s0 = core_with(0, 2, Arc::new(ArenaFactory), t0);
    let mut s1 = core_with(1, 2, Arc::new(ArenaFactory), t0);
    let (mut f0, mut f1) = (Recorded::default(), Recorded::default());
    let mut a = Client::new(1);
    let (pa, token) = a.hello(&mut s0, &mut f0, t0);
    let target = id_on(1);
    let effects = a.join(&mut s0, &mut f0, t0, Some(&target));
    // Paused, and the owner is asked.
    assert!(matches!(effects[0], Effect::Pause { conn: 1 }));
    let Some(Effect::Mesh { to: 1, msg }) = effects.into_iter().nth(1) else {
        panic!("expected MigrateIn to shard 1");
    };
    assert!(matches!(msg, ShardMsg::MigrateIn { .. }));
    s1.mesh(&mut f1, t0, msg);
    let answer = f1.take().into_iter().find_map(|e| match e {
        Effect::Mesh { to: 0, msg } => Some(msg),
        _ => None,
    });
    assert!(
        s1.world.players.contains_key(&pa),
        "seated on the owner, detached"
    );
    s0.mesh(&mut f0, t0, answer.expect("MigrateResult"));
    let effects = f0.take();
    assert!(
        effects.iter().any(|e| matches!(e, Effect::HandOver { conn: 1, to: 1, player, resume: false } if *player == pa)),
        "{effects:?}"
    );
    assert!(!s0.world.players.contains_key(&pa) && !s0.sessions.contains_key(&1));
    // The owner adopts the socket: Joined on the same connection.
    s1.adopted(&mut f1, t0, 77, t0, pa, false);
    let msgs = sent_to(&f1.take(), 77);
    assert!(matches!(&msgs[..], [ServerMsg::Joined { instance_id, .. }] if *instance_id == target));
    assert_eq!(s1.world.tokens.get(&token), Some(&pa));
}

#[test]
fn a_resume_finds_its_seat_on_another_shard() {
    let t0 = Instant::now();
    let mut s0 = core_with(0, 2, Arc::new(ArenaFactory), t0);
    let mut s1 = core_with(1, 2, Arc::new(ArenaFactory), t0);
    let (mut f0, mut f1) = (Recorded::default(), Recorded::default());
    let mut a = Client::new(1);
    let (pa, token) = a.hello(&mut s1, &mut f1, t0);
    a.join(&mut s1, &mut f1, t0, Some(&id_on(1)));
    s1.disconnected(&mut f1, t0, 1, false);
    f1.take();
    // The resume lands on shard 0: it asks shard 1.
    s0.connected(2, t0, None);
    let bytes = ClientEncoder::new().hello("ada", Some(&token)).to_vec();
    s0.message(&mut f0, t0, 2, &bytes);
    let find = f0.take().into_iter().find_map(|e| match e {
        Effect::Mesh { to: 1, msg } => Some(msg),
        _ => None,
    });
    s1.mesh(&mut f1, t0, find.expect("FindSeat"));
    let found = f1.take().into_iter().find_map(|e| match e {
        Effect::Mesh { to: 0, msg } => Some(msg),
        _ => None,
    });
    s0.mesh(&mut f0, t0, found.expect("SeatFound"));
    let effects = f0.take();
    assert!(effects.iter().any(
        |e| matches!(e, Effect::HandOver { conn: 2, to: 1, player, resume: true } if *player == pa)
    ));
    s1.adopted(&mut f1, t0, 9, t0, pa, true);
    let msgs = sent_to(&f1.take(), 9);
    assert!(matches!(
        &msgs[..],
        [
            ServerMsg::Welcome { resumed: true, .. },
            ServerMsg::Joined { .. }
        ]
    ));
}

#[test]
fn a_move_not_answered_in_time_resumes_reading_with_an_error() {
    let t0 = Instant::now();
    let mut s0 = core_with(0, 2, Arc::new(ArenaFactory), t0);
    let mut f0 = Recorded::default();
    let mut a = Client::new(1);
    a.hello(&mut s0, &mut f0, t0);
    a.join(&mut s0, &mut f0, t0, Some(&id_on(1)));
    s0.sweep(&mut f0, t0 + super::moves::MOVE_TIMEOUT);
    let effects = f0.take();
    assert_eq!(error_codes(&sent_to(&effects, 1)), [ErrorCode::Internal]);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Resume { conn: 1 })));
}

#[test]
fn in_a_fleet_a_join_for_an_unknown_instance_asks_the_directory() {
    let t0 = Instant::now();
    let mut core = core(t0);
    core.shared.public_url = Some(Arc::from("ws://node-a:9000"));
    let mut fx = Recorded::default();
    let mut a = Client::new(1);
    let (pa, _) = a.hello(&mut core, &mut fx, t0);
    let effects = a.join(&mut core, &mut fx, t0, Some("elsewhere"));
    let ask = effects.iter().find_map(|e| match e {
        Effect::Ask { conn: 1, ask } => Some(ask.clone()),
        _ => None,
    });
    let ask = ask.expect("a directory look-up");
    assert!(matches!(&ask, Ask::Claim { player, .. } if *player == pa));
    let answer = super::fleet::Answer::Claim(crate::directory::Claim::Elsewhere {
        node: "b".into(),
        url: "ws://node-b:9000".into(),
    });
    core.directory_answer(&mut fx, t0, 1, ask, answer);
    let msgs = sent_to(&fx.take(), 1);
    assert!(
        matches!(&msgs[..], [ServerMsg::Error { code: ErrorCode::WrongNode, message }] if message == "ws://node-b:9000")
    );
}

/// A world that panics in the named call.
struct Faulty {
    panic_in: &'static str,
    next: EntityId,
    alive: Vec<EntityId>,
    /// Reads of the world (entities, custom state) fail only once it has
    /// stepped, so that joining (which reads it for Joined) goes through.
    stepped: bool,
}

impl Faulty {
    fn check(&self, call: &str) {
        if self.panic_in == call {
            panic!("faulty game: {call}");
        }
    }
}

impl Game for Faulty {
    fn spawn(&mut self, _player: PlayerId) -> EntityId {
        self.check("spawn");
        self.next += 1;
        self.alive.push(self.next);
        self.next
    }
    fn despawn(&mut self, entity: EntityId) {
        self.check("despawn");
        self.alive.retain(|e| *e != entity);
    }
    fn apply_input(&mut self, _entity: EntityId, _input: &PlayerInput) {
        self.check("apply_input");
    }
    fn step(&mut self, _dt_s: f32) {
        self.check("step");
        self.stepped = true;
    }
    fn entities(&self, out: &mut Vec<EntityView>) {
        if self.stepped {
            self.check("entities");
        }
        out.extend(self.alive.iter().map(|&id| EntityView {
            id,
            ..Default::default()
        }));
    }
    fn bounds(&self) -> (f32, f32) {
        (10.0, 10.0)
    }
    fn custom_state(&self, _out: &mut Vec<u8>) {
        if self.stepped {
            self.check("custom_state");
        }
    }
    fn state_bytes(&self) -> usize {
        0
    }
    fn save(&self, _out: &mut Vec<u8>) {
        self.check("save");
    }
}

struct FaultyFactory(&'static str);

impl GameFactory for FaultyFactory {
    fn name(&self) -> &'static str {
        "faulty"
    }
    fn create(&self, _instance: &InstanceId) -> Box<dyn Game> {
        if self.0 == "create" {
            panic!("faulty game: create");
        }
        Box::new(Faulty {
            panic_in: self.0,
            next: 0,
            alive: Vec::new(),
            stepped: false,
        })
    }
    fn restore(&self, _instance: &InstanceId, _bytes: &[u8]) -> Result<Box<dyn Game>, String> {
        if self.0 == "restore" {
            panic!("faulty game: restore");
        }
        Ok(self.create(_instance))
    }
}

/// A core whose game panics in `call`.
fn faulty_core(call: &'static str, t0: Instant) -> (Core, Recorded) {
    let core = core_with(0, 1, Arc::new(FaultyFactory(call)), t0);
    (core, Recorded::default())
}

#[test]
fn a_panic_in_any_game_call_stops_that_instance_only() {
    for call in [
        "spawn",
        "despawn",
        "apply_input",
        "step",
        "entities",
        "custom_state",
    ] {
        let t0 = Instant::now();
        let (mut core, mut fx) = faulty_core(call, t0);
        let (mut a, mut b) = (Client::new(1), Client::new(2));
        a.hello(&mut core, &mut fx, t0);
        b.hello(&mut core, &mut fx, t0);
        let effects = a.join(&mut core, &mut fx, t0, Some("bad"));
        if call == "spawn" {
            assert_eq!(
                error_codes(&sent_to(&effects, 1)),
                [ErrorCode::Internal],
                "{call}"
            );
            assert!(core.world.instances.is_empty(), "{call}: disposed");
            assert_eq!(core.metrics.game_panics.get(), 1);
            continue;
        }
        b.join(&mut core, &mut fx, t0, Some("bad"));
        fx.take();
        match call {
            "despawn" => {
                let bytes = a.enc.leave().to_vec();
                core.message(&mut fx, t0, 1, &bytes);
            }
            "apply_input" => a.input(&mut core, &mut fx, t0, 1, 1.0),
            _ => {}
        }
        run_interval(&mut core, &mut fx);
        let effects = fx.take();
        assert!(
            core.world.instances.is_empty(),
            "{call}: the instance is disposed"
        );
        assert_eq!(core.metrics.game_panics.get(), 1, "{call}");
        // Its connected players are told and closed with 1011 (a, after
        // its Leave, is no longer seated there).
        let told: Vec<ConnId> = [1, 2]
            .into_iter()
            .filter(|&c| error_codes(&sent_to(&effects, c)) == [ErrorCode::Internal])
            .collect();
        assert!(told.contains(&2), "{call}: {effects:?}");
        assert!(
            closes(&effects).contains(&(2, CloseReason::InternalError)),
            "{call}"
        );
        // The shard goes on: a new instance can be made and joined.
        let mut c = Client::new(3);
        c.hello(&mut core, &mut fx, t0);
        if !matches!(call, "step" | "entities" | "custom_state") {
            let effects = c.join(&mut core, &mut fx, t0, Some("next"));
            assert_eq!(joined_instance(&effects, 3), "next", "{call}");
        }
    }
}

#[test]
fn a_panic_creating_restoring_or_saving_is_contained() {
    let t0 = Instant::now();
    // create: the Join is refused, nothing is created.
    let (mut core, mut fx) = faulty_core("create", t0);
    let mut a = Client::new(1);
    a.hello(&mut core, &mut fx, t0);
    let effects = a.join(&mut core, &mut fx, t0, Some("x"));
    assert_eq!(error_codes(&sent_to(&effects, 1)), [ErrorCode::Internal]);
    assert!(core.world.instances.is_empty());
    // save: the capture leaves the instance out (counted).
    let (mut core, mut fx) = faulty_core("save", t0);
    let mut a = Client::new(1);
    a.hello(&mut core, &mut fx, t0);
    a.join(&mut core, &mut fx, t0, Some("x"));
    let id = InstanceId::parse("x").unwrap();
    assert!(core.capture_instance(&id).is_none());
    assert_eq!(core.metrics.snapshot_failures.get(), 1);
    // restore: the instance is not restored; the others are.
    let (mut good, mut gfx) = (
        core_with(0, 1, Arc::new(ArenaFactory), t0),
        Recorded::default(),
    );
    let mut g = Client::new(1);
    g.hello(&mut good, &mut gfx, t0);
    g.join(&mut good, &mut gfx, t0, Some("x"));
    let snap = good.capture_instance(&id).unwrap();
    let mut faulty = core_with(0, 1, Arc::new(FaultyFactory("restore")), t0);
    faulty.restore(vec![snap], t0);
    assert!(faulty.world.instances.is_empty());
}

// ------------------------------------------------------- creation limits

fn core_opts(opts: ServeOpts, t0: Instant) -> Core {
    let cfg = Arc::new(Config::resolve(opts, &[0]).expect("config"));
    let shared = CoreShared {
        join_secret: cfg.join_secret.as_deref().map(|s| Arc::from(s.as_bytes())),
        cfg,
        factory: Arc::new(ArenaFactory),
        used_tickets: UsedTickets::new(16),
        public_url: None,
        fleet_metrics: None,
    };
    Core::new(
        0,
        shared,
        std::rc::Rc::new(ShardMetrics::default()),
        t0,
        1_700_000_000_000_000,
        7,
    )
}

/// Hello from `ip`, with an optional join ticket; the player's id.
fn hello_from(
    core: &mut Core,
    fx: &mut Recorded,
    now: Instant,
    conn: ConnId,
    ip: &str,
    ticket: Option<&str>,
) -> PlayerId {
    core.connected(conn, now, Some(ip.parse().unwrap()));
    let mut enc = ClientEncoder::new();
    let bytes = match ticket {
        Some(t) => enc.hello_with_ticket("ada", None, t).to_vec(),
        None => enc.hello("ada", None).to_vec(),
    };
    core.message(fx, now, conn, &bytes);
    match sent_to(&fx.take(), conn).as_slice() {
        [ServerMsg::Welcome { player_id, .. }] => *player_id,
        other => panic!("expected one Welcome, got {other:?}"),
    }
}

/// Join{id, create} from `conn`: the error code, or `None` if it joined.
fn join_code(
    core: &mut Core,
    fx: &mut Recorded,
    now: Instant,
    conn: ConnId,
    id: &str,
) -> Option<ErrorCode> {
    let bytes = ClientEncoder::new().join(Some(id), true).to_vec();
    core.message(fx, now, conn, &bytes);
    let effects = fx.take();
    assert!(
        closes(&effects).is_empty(),
        "a refused creation closes nothing"
    );
    let msgs = sent_to(&effects, conn);
    if msgs.iter().any(|m| matches!(m, ServerMsg::Joined { .. })) {
        return None;
    }
    Some(*error_codes(&msgs).first().expect("Joined or Error"))
}

#[test]
fn creation_is_limited_per_connection_and_an_abandoned_room_costs_one_more() {
    let t0 = Instant::now();
    let opts = ServeOpts {
        creates_per_conn_per_min: Some(3),
        creates_per_ip_per_min: Some(0),
        ..Default::default()
    };
    let mut core = core_opts(opts, t0);
    let mut fx = Recorded::default();
    hello_from(&mut core, &mut fx, t0, 1, "10.0.0.1", None);
    hello_from(&mut core, &mut fx, t0, 2, "10.0.0.1", None);
    assert_eq!(join_code(&mut core, &mut fx, t0, 1, "a"), None);
    // Leaving "a" empty and unshared for "b" costs the creator one more.
    assert_eq!(join_code(&mut core, &mut fx, t0, 1, "b"), None);
    assert_eq!(core.metrics.creates_abandoned.get(), 1);
    assert_eq!(
        join_code(&mut core, &mut fx, t0, 1, "c"),
        Some(ErrorCode::RateLimited)
    );
    assert_eq!(core.metrics.creates_refused_conn.get(), 1);
    assert!(!core
        .world
        .instances
        .contains_key(&InstanceId::parse("c").unwrap()));
    // Another connection has its own budget; the limited one still joins
    // rooms that exist, and "x" held a game once someone else joined it.
    assert_eq!(join_code(&mut core, &mut fx, t0, 2, "x"), None);
    assert_eq!(join_code(&mut core, &mut fx, t0, 1, "x"), None);
    assert!(core.world.instances[&InstanceId::parse("x").unwrap()].held_game);
    // Leaving "b" (its own, unshared) for "x" cost one more: 3 per minute
    // is a token every 20 s, and the budget is one in debt.
    let later = t0 + Duration::from_secs(40);
    assert_eq!(join_code(&mut core, &mut fx, later, 1, "c"), None);
}

#[test]
fn creation_is_limited_per_address_and_a_flood_never_fills_the_table() {
    let t0 = Instant::now();
    let opts = ServeOpts {
        creates_per_conn_per_min: Some(0),
        creates_per_ip_per_min: Some(2),
        instances_per_shard_max: Some(8),
        ..Default::default()
    };
    let mut core = core_opts(opts, t0);
    let mut fx = Recorded::default();
    for conn in 1..=3 {
        hello_from(&mut core, &mut fx, t0, conn, "10.0.0.1", None);
    }
    hello_from(&mut core, &mut fx, t0, 9, "192.0.2.7", None);
    assert_eq!(join_code(&mut core, &mut fx, t0, 1, "a"), None);
    assert_eq!(join_code(&mut core, &mut fx, t0, 2, "b"), None);
    // The flooders' address is spent, whatever the connection.
    for (i, conn) in [3, 1, 2, 3].into_iter().enumerate() {
        assert_eq!(
            join_code(&mut core, &mut fx, t0, conn, &format!("f{i}")),
            Some(ErrorCode::RateLimited)
        );
    }
    assert_eq!(core.metrics.creates_refused_ip.get(), 4);
    // Another address creates as usual: the table has room.
    assert_eq!(join_code(&mut core, &mut fx, t0, 9, "mine"), None);
    assert_eq!(core.world.instances.len(), 3);
}

#[test]
fn an_unused_room_is_disposed_sooner_than_one_that_held_a_game() {
    let t0 = Instant::now();
    let mut core = core_opts(ServeOpts::default(), t0);
    let mut fx = Recorded::default();
    let (unused, idle) = (core.cfg().instance_unused, core.cfg().instance_idle);
    assert!(unused < idle);
    for conn in 1..=3 {
        hello_from(&mut core, &mut fx, t0, conn, "10.0.0.1", None);
    }
    let leave = ClientEncoder::new().leave().to_vec();
    assert_eq!(join_code(&mut core, &mut fx, t0, 1, "solo"), None);
    assert_eq!(join_code(&mut core, &mut fx, t0, 2, "game"), None);
    assert_eq!(join_code(&mut core, &mut fx, t0, 3, "game"), None);
    for conn in 1..=3 {
        core.message(&mut fx, t0, conn, &leave);
    }
    let ids = |core: &Core| {
        let mut v: Vec<String> = core.world.instances.keys().map(|i| i.to_string()).collect();
        v.sort();
        v
    };
    core.sweep(&mut fx, t0 + unused);
    assert_eq!(ids(&core), ["game"]);
    assert_eq!(core.metrics.instances_disposed_unused.get(), 1);
    core.sweep(&mut fx, t0 + idle - Duration::from_millis(1));
    assert_eq!(ids(&core), ["game"]);
    core.sweep(&mut fx, t0 + idle);
    assert!(ids(&core).is_empty());
    assert_eq!(core.metrics.instances_disposed_idle.get(), 1);
}

#[test]
fn with_the_ticket_policy_only_a_ticket_that_grants_it_creates() {
    use crate::auth::ticket::{issue, Grant};
    let t0 = Instant::now();
    let opts = ServeOpts {
        join_secret: Some("s3cret".into()),
        create_policy: Some("ticket".into()),
        ..Default::default()
    };
    let mut core = core_opts(opts, t0);
    let mut fx = Recorded::default();
    let ticket = |nonce: &str, instance: Option<&str>, create: bool| {
        issue(
            b"s3cret",
            &Grant {
                player: "p".into(),
                instance: instance.map(str::to_owned),
                expires_unix_s: 1_700_000_300,
                nonce: nonce.into(),
                create,
                claims: Vec::new(),
            },
        )
    };
    let creator = ticket("00000000000000a1", Some("mine"), true);
    let joiner = ticket("00000000000000a2", None, false);
    hello_from(
        &mut core,
        &mut fx,
        t0,
        1,
        "10.0.0.1",
        Some(creator.as_str()),
    );
    hello_from(&mut core, &mut fx, t0, 2, "10.0.0.2", Some(joiner.as_str()));
    assert_eq!(
        join_code(&mut core, &mut fx, t0, 2, "theirs"),
        Some(ErrorCode::TicketWrongInstance)
    );
    assert_eq!(core.metrics.creates_refused_ticket.get(), 1);
    assert_eq!(join_code(&mut core, &mut fx, t0, 1, "mine"), None);
    assert_eq!(
        join_code(&mut core, &mut fx, t0, 2, "mine"),
        None,
        "joining needs no grant"
    );
}

mod game_io;
