//! A studio's game rules are not trusted to be panic-free. A real node runs
//! in-process with a game that panics on one magic input; the instance whose
//! rules panicked is stopped (its players get Error(Internal) and close
//! 1011), the panic is counted, and the shard's other instances, the other
//! shard, and new instances go on ticking.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::http::{eventually, get_json};
use common::*;
use shardline::config::{Config, ServeOpts};
use shardline::game::{
    ArenaFactory, EntityId, EntityView, Game, GameFactory, InstanceId, PlayerId, PlayerInput,
};
use shardline::node::Node;
use shardline::protocol::ErrorCode;

/// The input that makes the test game panic.
const POISON_BUTTONS: u32 = 0xDEAD;

/// The reference arena, except that [`POISON_BUTTONS`] panics.
struct Panicky(Box<dyn Game>);

impl Game for Panicky {
    fn spawn(&mut self, player: PlayerId) -> EntityId {
        self.0.spawn(player)
    }
    fn despawn(&mut self, entity: EntityId) {
        self.0.despawn(entity)
    }
    fn apply_input(&mut self, entity: EntityId, input: &PlayerInput) {
        assert_ne!(input.buttons, POISON_BUTTONS, "game rules panic on 0xDEAD");
        self.0.apply_input(entity, input)
    }
    fn step(&mut self, dt_s: f32) {
        self.0.step(dt_s)
    }
    fn entities(&self, out: &mut Vec<EntityView>) {
        self.0.entities(out)
    }
    fn bounds(&self) -> (f32, f32) {
        self.0.bounds()
    }
    fn state_bytes(&self) -> usize {
        self.0.state_bytes()
    }
    fn save(&self, out: &mut Vec<u8>) {
        self.0.save(out)
    }
}

struct PanickingFactory;

impl GameFactory for PanickingFactory {
    fn name(&self) -> &'static str {
        "panicky-arena"
    }
    fn create(&self, instance: &InstanceId) -> Box<dyn Game> {
        Box::new(Panicky(ArenaFactory.create(instance)))
    }
    fn restore(&self, instance: &InstanceId, bytes: &[u8]) -> Result<Box<dyn Game>, String> {
        Ok(Box::new(Panicky(ArenaFactory.restore(instance, bytes)?)))
    }
}

fn game_panics(admin: SocketAddr) -> u64 {
    let stats = get_json(admin, "/stats");
    stats["shards"]
        .as_array()
        .expect("shards in /stats")
        .iter()
        .map(|s| s["counters"]["game_panics"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_panic_in_one_instance_stops_it_and_the_rest_go_on() {
    let dir = common::http::tempdir("game-panic");
    let opts = ServeOpts {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        shards: Some(SHARDS),
        tick_rate: Some(30),
        admin_listen: Some("127.0.0.1:0".into()),
        snapshot_dir: Some(dir.to_path_buf()),
        snapshot_interval_ms: Some(0),
        no_restore: true,
        load_shedding: Some("off".into()),
        ..Default::default()
    };
    // No cores listed: shards are not pinned, so a busy test machine
    // schedules them where it can.
    let cfg = Config::resolve(opts, &[]).expect("valid config");
    let node = Node::start(cfg, Arc::new(PanickingFactory)).expect("node starts");
    let addr = node.local_addr();
    let admin = node.admin_addr().expect("the admin listener is on");
    let url = |id: &str| format!("ws://{addr}/play?instance={id}");

    // Two instances on shard 0 (one will panic), one on shard 1.
    let doomed = id_on_shard("doomed", 0);
    let neighbour = id_on_shard("neighbour", 0);
    let far = id_on_shard("far", 1);
    let join = |id: &str, name: &str| {
        let (mut c, _) = player(&url(id), name);
        c.join(Some(id));
        c
    };
    let mut victim = join(&doomed, "victim");
    let mut bystander = join(&doomed, "bystander");
    let mut near = join(&neighbour, "near");
    let mut away = join(&far, "away");
    for c in [&mut victim, &mut bystander, &mut near, &mut away] {
        c.next_update();
    }

    let poison = victim.encoder().input(1, 0.0, 0.0, POISON_BUTTONS).to_vec();
    victim.send_binary(&poison);
    for c in [&mut victim, &mut bystander] {
        let message = c.expect_error(ErrorCode::Internal);
        assert!(message.contains("game rules failed"), "{message}");
        assert_eq!(c.expect_close().0, 1011, "close code for a failed game");
    }
    eventually("game_panics counted", RECV_TIMEOUT, || {
        (game_panics(admin) == 1).then_some(())
    });

    // The neighbour on the same shard and the instance on the other shard
    // keep ticking, one update per tick, and still apply input.
    for c in [&mut near, &mut away] {
        c.input(1, 1.0, 0.0);
        let u = c.updates_until("input applied after the panic", RECV_TIMEOUT, |u| {
            u.last_input_seq >= 1
        });
        c.updates_until("30 more ticks", RECV_TIMEOUT, |v| v.tick >= u.tick + 30);
    }
    // The stopped instance can be created afresh, and players can come back.
    let mut back = join(&doomed, "back");
    back.input(1, 0.0, 1.0);
    back.updates_until("input applied in the new instance", RECV_TIMEOUT, |u| {
        u.last_input_seq >= 1
    });

    for c in [near, away, back] {
        c.close();
    }
    node.shutdown_handle().shutdown();
    let exits = node.wait().expect("every shard stops cleanly");
    assert_eq!(exits.len(), SHARDS);
}
