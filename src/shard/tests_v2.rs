//! Protocol version 2 through the shard core, without sockets: players
//! rebuild the world from deltas while they drop updates and stall their
//! acks, beside version-1 players of the same instance.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::effects::{Effect, Recorded};
use super::{ConnId, Core, CoreShared};
use crate::auth::replay::UsedTickets;
use crate::config::{Config, ServeOpts};
use crate::game::{
    EntityId, EntityView, Game, GameFactory, InstanceId, Interest, PlayerId, PlayerInput,
};
use crate::metrics::ShardMetrics;
use crate::protocol::delta::{ClientWorld, DeltaRef, QEntity, POSITION_ERROR_MAX};
use crate::protocol::{decode_server, ClientEncoder, ServerMsg};
use crate::util::rng::Rng;

/// A world that keeps changing: players' entities plus creatures that
/// spawn, wander (x, y, z, facing, kind and flags) and die at random, and a
/// custom state whose bytes change now and then.
struct Swarm {
    rng: Rng,
    ents: Vec<EntityView>,
    next_id: EntityId,
    custom: Vec<u8>,
    interest: Option<Interest>,
}

impl Game for Swarm {
    fn spawn(&mut self, _player: PlayerId) -> EntityId {
        self.next_id += 1;
        let id = self.next_id;
        self.ents.push(EntityView {
            id,
            kind: 1,
            x: self.rng.unit_f32() * 500.0,
            y: self.rng.unit_f32() * 500.0,
            ..EntityView::default()
        });
        id
    }
    fn despawn(&mut self, entity: EntityId) {
        self.ents.retain(|e| e.id != entity);
    }
    fn apply_input(&mut self, entity: EntityId, input: &PlayerInput) {
        if let Some(e) = self.ents.iter_mut().find(|e| e.id == entity) {
            e.vx = input.move_x * 100.0;
            e.vy = input.move_y * 100.0;
        }
    }
    fn step(&mut self, dt_s: f32) {
        let rng = &mut self.rng;
        for e in &mut self.ents {
            e.x = (e.x + e.vx * dt_s).clamp(0.0, 500.0);
            e.y = (e.y + e.vy * dt_s).clamp(0.0, 500.0);
            if e.kind != 1 {
                match rng.below(6) {
                    0 => e.vx = rng.unit_f32() * 80.0 - 40.0,
                    1 => e.z = rng.unit_f32() * 10.0,
                    2 => e.facing = rng.unit_f32() * std::f32::consts::TAU,
                    3 => e.flags = rng.below(4) as u16,
                    _ => {}
                }
            }
        }
        if rng.below(3) == 0 && self.ents.len() < 60 {
            self.next_id += 1;
            self.ents.push(EntityView {
                id: self.next_id,
                kind: 2 + rng.below(3) as u16,
                x: rng.unit_f32() * 500.0,
                y: rng.unit_f32() * 500.0,
                vy: rng.unit_f32() * 40.0 - 20.0,
                ..EntityView::default()
            });
        }
        if rng.below(4) == 0 {
            let creatures: Vec<EntityId> = self
                .ents
                .iter()
                .filter(|e| e.kind != 1)
                .map(|e| e.id)
                .collect();
            if !creatures.is_empty() {
                let id = creatures[rng.below(creatures.len())];
                self.ents.retain(|e| e.id != id);
            }
        }
        if rng.below(5) == 0 {
            let len = rng.below(40);
            self.custom.resize(len, 7);
            if len > 0 {
                let i = rng.below(len);
                self.custom[i] = rng.next_u64() as u8;
            }
        }
    }
    fn entities(&self, out: &mut Vec<EntityView>) {
        out.extend_from_slice(&self.ents);
    }
    fn bounds(&self) -> (f32, f32) {
        (500.0, 500.0)
    }
    fn custom_state(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.custom);
    }
    fn state_bytes(&self) -> usize {
        self.ents.capacity() * std::mem::size_of::<EntityView>()
    }
    fn interest(&self, defaults: Interest) -> Interest {
        self.interest.unwrap_or(defaults)
    }
    fn save(&self, _out: &mut Vec<u8>) {}
}

struct SwarmFactory(Option<Interest>);

impl GameFactory for SwarmFactory {
    fn name(&self) -> &'static str {
        "swarm"
    }
    fn create(&self, _instance: &InstanceId) -> Box<dyn Game> {
        Box::new(Swarm {
            rng: Rng::new(0x5a5a),
            ents: Vec::new(),
            next_id: 0,
            custom: Vec::new(),
            interest: self.0,
        })
    }
    fn restore(&self, _i: &InstanceId, _b: &[u8]) -> Result<Box<dyn Game>, String> {
        Err("not saved".into())
    }
}

fn core(factory: Arc<dyn GameFactory>, history: u16) -> Core {
    let opts = ServeOpts {
        shards: Some(1),
        delta_history_ticks: Some(history),
        ..Default::default()
    };
    let cfg = Arc::new(Config::resolve(opts, &[0]).expect("config"));
    let shared = CoreShared {
        cfg,
        factory,
        join_secret: None,
        used_tickets: UsedTickets::new(16),
        public_url: None,
        fleet_metrics: None,
    };
    Core::new(
        0,
        shared,
        Rc::new(ShardMetrics::default()),
        Instant::now(),
        1_700_000_000_000_000,
        7,
    )
}

fn run_interval(core: &mut Core, fx: &mut Recorded) {
    let clock = Instant::now;
    for _ in 0..core.slots.count() {
        let (at, slot) = core.slots.next();
        core.run_slot(fx, at, slot, &clock);
        core.slots.advance(at);
    }
}

fn frames_to(effects: &[Effect], conn: ConnId) -> Vec<Vec<u8>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { conn: c, payload }
            | Effect::Update {
                conn: c, payload, ..
            } if *c == conn => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

/// Connects `conn` speaking `version`, joins "swarm"; returns its player.
fn join(core: &mut Core, fx: &mut Recorded, conn: ConnId, version: u16) -> PlayerId {
    let mut enc = ClientEncoder::new();
    core.connected(conn, Instant::now(), None);
    core.message(
        fx,
        Instant::now(),
        conn,
        enc.hello_version(version, "p", None),
    );
    core.message(fx, Instant::now(), conn, enc.join(Some("swarm"), true));
    let pid = core.player_of(conn).expect("welcomed");
    fx.take();
    pid
}

fn delta_of(msg: &ServerMsg) -> Option<DeltaRef<'_>> {
    match msg {
        ServerMsg::StateDelta {
            tick,
            baseline_tick,
            last_input_seq,
            inputs_applied,
            entities,
            custom_full,
            custom_patch,
        } => Some(DeltaRef {
            tick: *tick,
            baseline_tick: *baseline_tick,
            last_input_seq: *last_input_seq,
            inputs_applied: *inputs_applied,
            entities,
            custom_full: custom_full.as_deref(),
            custom_patch: custom_patch.as_deref(),
        }),
        _ => None,
    }
}

/// A v2 client that drops some updates unread and stalls its acks.
struct Lossy {
    conn: ConnId,
    world: ClientWorld,
    rng: Rng,
    /// Ticks left of an ack stall.
    stalled: u32,
    /// Stalls that brought full states (the baseline grew too old).
    fulls_in_stall: u32,
    /// Of those, the ones after which deltas came again.
    recovered: u32,
    /// A stall's full state was seen; waiting for a delta.
    waiting: bool,
}

/// The server's instance state now: quantized entities (sorted) and the
/// custom bytes.
fn truth(core: &mut Core) -> (u64, Vec<QEntity>, Vec<u8>) {
    let id = InstanceId::parse("swarm").unwrap();
    let h = core.world.instances.get_mut(&id).expect("instance");
    let mut q: Vec<QEntity> = h.inst.entities().iter().map(QEntity::from_view).collect();
    q.sort_by_key(|e| e.id);
    let mut custom = Vec::new();
    h.inst.custom_state(&mut custom).unwrap();
    (h.inst.tick(), q, custom)
}

/// Plays `ticks` ticks: two lossy v2 clients and a v1 client; every tick
/// each v2 client's rebuilt world is compared with what the server holds
/// for it, and (whole-instance interest) with the server's own state and
/// the v1 client's StateUpdate of the same tick.
fn play(interest: Option<Interest>, ticks: u64, history: u16) -> Rc<ShardMetrics> {
    let mut core = core(Arc::new(SwarmFactory(interest)), history);
    let metrics = core.metrics.clone();
    let mut fx = Recorded::default();
    join(&mut core, &mut fx, 1, 1);
    let mut clients: Vec<Lossy> = (0..2)
        .map(|i| {
            let conn = 10 + i;
            join(&mut core, &mut fx, conn, 2);
            Lossy {
                conn,
                world: ClientWorld::new(usize::from(history)),
                rng: Rng::new(100 + i),
                stalled: 0,
                fulls_in_stall: 0,
                recovered: 0,
                waiting: false,
            }
        })
        .collect();
    let whole = interest.is_none();
    let mut enc = ClientEncoder::new();
    let mut seq = 0;
    for _ in 0..ticks {
        run_interval(&mut core, &mut fx);
        let effects = fx.take();
        let (tick, server, custom) = truth(&mut core);
        let v1_update = frames_to(&effects, 1)
            .iter()
            .find_map(|f| match decode_server(f) {
                Ok(ServerMsg::StateUpdate { tick, entities, .. }) => Some((tick, entities)),
                _ => None,
            });
        for c in &mut clients {
            let pid = core.player_of(c.conn).unwrap();
            for frame in frames_to(&effects, c.conn) {
                let msg = decode_server(&frame).expect("valid frame");
                let Some(d) = delta_of(&msg) else { continue };
                assert_eq!(d.tick, tick);
                if d.baseline_tick == 0 && c.stalled > 0 && !c.waiting {
                    c.waiting = true;
                    c.fulls_in_stall += 1;
                }
                if d.baseline_tick != 0 && c.stalled == 0 && c.waiting {
                    c.waiting = false;
                    c.recovered += 1;
                }
                // Drops one update in ten unread.
                if c.rng.below(10) == 0 {
                    continue;
                }
                let got = c.world.apply(&d).expect("every delta applies").clone();
                // What the server says this player holds at this tick.
                let peer = core.world.players[&pid].v2.as_ref().unwrap();
                let sent = peer.latest().expect("sent");
                assert_eq!(sent.tick, tick);
                assert_eq!(got.entities, sent.view.entities, "tick {tick}");
                assert_eq!(got.custom, &*sent.custom);
                assert_eq!(got.custom, custom, "custom state at tick {tick}");
                if whole {
                    assert_eq!(got.entities, server, "whole state at tick {tick}");
                    let (t1, v1_ents) = v1_update.clone().expect("v1 got its update");
                    assert_eq!(t1, tick);
                    let mut v1_ents = v1_ents;
                    v1_ents.sort_by_key(|e| e.id);
                    assert_eq!(v1_ents.len(), got.entities.len());
                    for (a, b) in v1_ents.iter().zip(&got.entities) {
                        let b = b.to_view();
                        assert_eq!(a.id, b.id);
                        for (x, y) in [(a.x, b.x), (a.y, b.y), (a.vx, b.vx), (a.vy, b.vy)] {
                            assert!((x - y).abs() <= POSITION_ERROR_MAX + 1e-3, "{a:?} {b:?}");
                        }
                    }
                } else {
                    // Every entity it holds that was updated this tick is
                    // the server's, exactly.
                    for (i, e) in got.entities.iter().enumerate() {
                        if sent.view.taken_at(i) == tick {
                            let s = server.binary_search_by_key(&e.id, |s| s.id).unwrap();
                            assert_eq!(*e, server[s]);
                        }
                    }
                }
                // Acks: mostly at once, sometimes on the next input,
                // sometimes a stall longer than the history.
                if c.stalled > 0 {
                    c.stalled -= 1;
                    continue;
                }
                if c.rng.below(500) == 0 {
                    c.stalled = u32::from(history) + 5;
                    continue;
                }
                seq += 1;
                let frame = if c.rng.below(2) == 0 {
                    enc.ack(d.tick).to_vec()
                } else {
                    let x = c.rng.unit_f32() * 2.0 - 1.0;
                    enc.input_ack(seq, x, -x, 0, d.tick).to_vec()
                };
                core.message(&mut fx, Instant::now(), c.conn, &frame);
            }
        }
    }
    for c in &clients {
        assert!(c.fulls_in_stall > 0, "no stall outlived the history");
        // Every stall's full states were followed by deltas (the last may
        // still be waiting when the run ends).
        assert!(
            c.recovered + 1 >= c.fulls_in_stall,
            "{} {}",
            c.recovered,
            c.fulls_in_stall
        );
        assert!(c.recovered > 0);
    }
    metrics
}

#[test]
fn v2_clients_rebuild_the_whole_world_for_10000_ticks_despite_losses_and_ack_stalls() {
    let m = play(None, 10_000, 16);
    assert!(
        m.full_states_too_old.get() > 0,
        "some acks stalled past the history"
    );
    assert!(m.state_deltas.get() > 15_000);
    assert_eq!(m.full_states_joined.get(), 2);
    // Deltas shared: fewer encodes than deltas sent.
    assert!(m.delta_encodes.get() < m.state_deltas.get());
}

#[test]
fn v2_clients_rebuild_their_area_of_interest_under_a_budget() {
    let interest = Interest {
        radius: 120.0,
        budget: 6,
    };
    let m = play(Some(interest), 3000, 8);
    assert!(m.interest_deferred.get() > 0, "the budget held some back");
    assert!(m.full_states_too_old.get() > 0);
}

#[test]
fn the_first_update_after_a_resume_is_a_full_state() {
    let mut core = core(Arc::new(SwarmFactory(None)), 32);
    let mut fx = Recorded::default();
    join(&mut core, &mut fx, 1, 2);
    let token = core.world.players[&core.player_of(1).unwrap()]
        .token
        .clone();
    let mut enc = ClientEncoder::new();
    let mut last = 0;
    let mut baselines = Vec::new();
    for _ in 0..4 {
        run_interval(&mut core, &mut fx);
        for f in frames_to(&fx.take(), 1) {
            if let Some(d) = delta_of(&decode_server(&f).unwrap()) {
                baselines.push(d.baseline_tick);
                last = d.tick;
                core.message(&mut fx, Instant::now(), 1, enc.ack(d.tick));
            }
        }
    }
    assert_eq!(baselines[0], 0, "the first after Join is full");
    assert!(baselines[1..].iter().all(|&b| b != 0), "{baselines:?}");
    core.disconnected(&mut fx, Instant::now(), 1, false);
    core.connected(2, Instant::now(), None);
    core.message(
        &mut fx,
        Instant::now(),
        2,
        enc.hello_version(2, "p", Some(&token)),
    );
    // A stale ack of the old connection's last tick changes nothing.
    core.message(&mut fx, Instant::now(), 2, enc.ack(last));
    fx.take();
    run_interval(&mut core, &mut fx);
    let first = frames_to(&fx.take(), 2)
        .iter()
        .find_map(|f| delta_of(&decode_server(f).unwrap()).map(|d| d.baseline_tick));
    assert_eq!(first, Some(0));
    assert_eq!(core.metrics.full_states_resumed.get(), 1);
    assert!(core.metrics.acks_ignored.get() >= 1);
}

#[test]
fn v1_and_v2_hellos_are_accepted_and_others_refused() {
    let mut core = core(Arc::new(SwarmFactory(None)), 32);
    let mut fx = Recorded::default();
    join(&mut core, &mut fx, 1, 1);
    join(&mut core, &mut fx, 2, 2);
    run_interval(&mut core, &mut fx);
    let effects = fx.take();
    assert!(matches!(
        decode_server(&frames_to(&effects, 1)[0]),
        Ok(ServerMsg::StateUpdate { .. })
    ));
    assert!(matches!(
        decode_server(&frames_to(&effects, 2)[0]),
        Ok(ServerMsg::StateDelta { .. })
    ));
    core.connected(3, Instant::now(), None);
    let mut enc = ClientEncoder::new();
    core.message(&mut fx, Instant::now(), 3, enc.hello_version(3, "p", None));
    let msgs: Vec<_> = frames_to(&fx.take(), 3)
        .iter()
        .map(|f| decode_server(f).unwrap())
        .collect();
    assert!(
        matches!(&msgs[..], [ServerMsg::Error { message, .. }] if message.contains("speaks 1 to 2")),
        "{msgs:?}"
    );
}
