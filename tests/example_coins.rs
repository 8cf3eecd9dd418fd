//! The second game, `examples/coins.rs`, served by its own binary
//! (`shardline::Server::builder`), played over real sockets: ticket claims
//! reaching `on_join`, refusals reaching the client, game messages and
//! events, 3D facing, message bounds, a message between instances on two
//! shards, version 1 clients untouched, and the world coming back from a
//! snapshot after a restart.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{id_on_shard, temp::TempDir, Client, Server, RECV_TIMEOUT};
use shardline::auth::ticket::{issue, Grant};
use shardline::game::EntityView;
use shardline::protocol::{ErrorCode, ServerMsg};

const SECRET: &str = "coins-test-secret";
/// Bound on building the example binary (a link of the already built
/// library; minutes on a loaded machine).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);

const MSG_PICK_UP: u16 = 1;
const MSG_CHAT: u16 = 2;
const MSG_ANNOUNCE: u16 = 3;
const EV_PICKED: u16 = 1;
const EV_CHAT: u16 = 2;
const EV_NOTHING_HERE: u16 = 3;
const EV_ANNOUNCED: u16 = 4;
const EV_WELCOME: u16 = 5;
const KIND_COIN: u16 = 2;

/// `target/<profile>/examples/coins`, built (once per test process) with
/// the profile this test was built with.
fn coins_binary() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<this test>
        let profile_dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>/deps");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--locked",
            "--example",
            "coins",
        ]);
        if release {
            cmd.arg("--release");
        }
        let out = common::procs::output_within(&mut cmd, BUILD_TIMEOUT);
        assert!(
            out.status.success(),
            "cannot build examples/coins.rs ({cmd:?}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile_dir.join("examples").join("coins");
        assert!(bin.exists(), "{} missing after the build", bin.display());
        bin
    })
}

fn ticket(player: &str, claims: &[(&str, &str)]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).unwrap();
    issue(
        SECRET.as_bytes(),
        &Grant {
            player: player.into(),
            instance: None,
            expires_unix_s: now + 300,
            nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
            create: false,
            claims: claims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    )
}

/// Hello in protocol version 2 (GameEvents, poses) without a ticket.
fn hello_open_v2(c: &mut Client, name: &str) {
    let frame = c.encoder().hello_version(2, name, None).to_vec();
    c.send_binary(&frame);
    c.expect_welcome();
}

fn hello_v2(c: &mut Client, name: &str, ticket: &str) -> (u64, String) {
    let frame = c.encoder().hello_full(2, name, None, Some(ticket)).to_vec();
    c.send_binary(&frame);
    let w = c.expect_welcome();
    (w.player_id, w.resume_token)
}

fn send_message(c: &mut Client, kind: u16, body: &[u8]) {
    let frame = c.encoder().message(kind, body).to_vec();
    c.send_binary(&frame);
}

/// The next GameEvent of one of `kinds`; returns (kind, body).
fn event(c: &mut Client, what: &str, kinds: &[u16]) -> (u16, Vec<u8>) {
    match c.recv_until(
        what,
        RECV_TIMEOUT,
        |m| matches!(m, ServerMsg::GameEvent { kind, .. } if kinds.contains(kind)),
    ) {
        ServerMsg::GameEvent { kind, body, .. } => (kind, body),
        _ => unreachable!(),
    }
}

/// (coins picked in the instance, [(entity, score)]) from the custom state.
fn scores(custom: &[u8]) -> (u32, Vec<(u32, u32)>) {
    let word = |at: usize| u32::from_le_bytes(custom[at..at + 4].try_into().unwrap());
    let picked = word(0);
    let players = (4..custom.len())
        .step_by(8)
        .map(|at| (word(at), word(at + 4)));
    (picked, players.collect())
}

fn joined_raw(c: &mut Client) -> (u32, Vec<EntityView>, Vec<u8>) {
    match c.recv_until("Joined", RECV_TIMEOUT, |m| {
        matches!(m, ServerMsg::Joined { .. } | ServerMsg::Error { .. })
    }) {
        ServerMsg::Joined {
            entity_id,
            entities,
            custom,
            ..
        } => (entity_id, entities, custom),
        other => panic!("expected Joined, got {}", common::brief(&other)),
    }
}

/// Walks `me` to the nearest coin and picks it up; returns the new score.
fn walk_and_pick(c: &mut Client, me: u32, entities: &[EntityView]) -> u32 {
    let start = *entities.iter().find(|e| e.id == me).expect("my entity");
    let coin = *entities
        .iter()
        .filter(|e| e.kind == KIND_COIN)
        .min_by(|a, b| {
            let d = |e: &EntityView| (e.x - start.x).powi(2) + (e.y - start.y).powi(2);
            d(a).total_cmp(&d(b))
        })
        .expect("a coin on the field");
    let mut seq = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "never reached the coin at {coin:?}"
        );
        let u = c.next_update();
        let pos = *u.entity(me).expect("my entity in the update");
        let (dx, dy) = (coin.x - pos.x, coin.y - pos.y);
        let dist = (dx * dx + dy * dy).sqrt();
        seq += 1;
        if dist < 20.0 {
            c.input(seq, 0.0, 0.0);
            break;
        }
        c.input(seq, dx / dist, dy / dist);
        if pos.vx != 0.0 || pos.vy != 0.0 {
            // Walking: facing follows the velocity (a 3D field).
            let want = pos.vy.atan2(pos.vx).rem_euclid(std::f32::consts::TAU);
            assert!((pos.facing - want).abs() < 1e-3, "{pos:?}");
        }
    }
    send_message(c, MSG_PICK_UP, b"");
    let (kind, body) = event(c, "pick-up answer", &[EV_PICKED, EV_NOTHING_HERE]);
    assert_eq!(kind, EV_PICKED, "stood on the coin at {coin:?}");
    assert_eq!(u32::from_le_bytes(body[8..12].try_into().unwrap()), coin.id);
    u32::from_le_bytes(body[12..16].try_into().unwrap())
}

#[test]
fn coins_plays_over_real_sockets_and_its_world_comes_back_from_a_snapshot() {
    let bin = coins_binary();
    let dir = TempDir::new("coins-snapshots");
    let args = [
        "--join-secret",
        SECRET,
        "--snapshot-dir",
        dir.path().to_str().unwrap(),
        "--snapshot-interval-ms",
        "200",
        "--game",
        "coins=4",
    ];
    let mut server = Server::start_program(bin, &args);
    let id = "field-1";

    // The binary has every subcommand of shardline: its own tickets.
    let out = common::procs::output_within(
        std::process::Command::new(bin).args([
            "ticket", "issue", "--secret", SECRET, "--player", "ada", "--claim", "team=red",
        ]),
        common::CLI_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ada_ticket = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let mut ada = Client::connect(&server.play_url(id));
    let (ada_id, token) = hello_v2(&mut ada, "ada", &ada_ticket);
    ada.send_join(Some(id), true);
    let (me, entities, custom) = joined_raw(&mut ada);
    assert_eq!(
        entities.iter().filter(|e| e.kind == KIND_COIN).count(),
        4,
        "--game coins=4 reached the game"
    );
    let mine = entities.iter().find(|e| e.id == me).unwrap();
    assert!(mine.facing > 0.0, "the 3D facing travels (poses): {mine:?}");
    assert_eq!(scores(&custom), (0, vec![(me, 0)]));
    // on_join saw the ticket's claims.
    assert_eq!(
        event(&mut ada, "welcome", &[EV_WELCOME]),
        (EV_WELCOME, b"red".to_vec())
    );

    // Chat: a message in, an event to everyone out, after a state update.
    send_message(&mut ada, MSG_CHAT, "hello 🪙".as_bytes());
    let (_, body) = event(&mut ada, "chat", &[EV_CHAT]);
    assert_eq!(u64::from_le_bytes(body[..8].try_into().unwrap()), ada_id);
    assert_eq!(&body[8..], "hello 🪙".as_bytes());

    // Bounds: a body over --message-bytes-max (1024) is refused, the
    // connection stays.
    send_message(&mut ada, MSG_CHAT, &[b'x'; 1025]);
    let why = ada.expect_error(ErrorCode::MessageTooLarge);
    assert!(why.contains("1024"), "{why}");

    // Refusals reach the client, and its connection stays.
    let mut mallory = Client::connect(&server.play_url(id));
    hello_v2(&mut mallory, "mallory", &ticket("m", &[]));
    mallory.send_join(Some(id), true);
    assert_eq!(
        mallory.expect_error(ErrorCode::JoinRefused),
        "mallory may not play coins"
    );
    let mut banned = Client::connect(&server.play_url(id));
    hello_v2(&mut banned, "eve", &ticket("eve", &[("banned", "yes")]));
    banned.send_join(Some(id), true);
    assert_eq!(
        banned.expect_error(ErrorCode::JoinRefused),
        "banned by the backend"
    );
    banned.send_ping(1.0);
    assert!(matches!(
        banned.recv_until("Pong", RECV_TIMEOUT, |m| matches!(
            m,
            ServerMsg::Pong { .. }
        )),
        ServerMsg::Pong { .. }
    ));

    // Walk to a coin, pick it up.
    assert_eq!(walk_and_pick(&mut ada, me, &entities), 1);
    let picked = ada.recv_until(
        "the score in the state",
        RECV_TIMEOUT,
        // A version 2 client that never acknowledges: full states.
        |m| matches!(m, ServerMsg::StateDelta { custom_full: Some(custom), .. } if scores(custom).0 == 1),
    );
    let ServerMsg::StateDelta {
        custom_full: Some(custom),
        ..
    } = picked
    else {
        unreachable!()
    };
    assert_eq!(scores(&custom), (1, vec![(me, 1)]));

    // A graceful stop writes the final snapshot; the world comes back.
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(15)).success());
    let server = Server::start_program(bin, &args);
    let mut ada = Client::connect(&server.play_url(id));
    let frame = ada
        .encoder()
        .hello_full(2, "ada", Some(&token), None)
        .to_vec();
    ada.send_binary(&frame);
    let again = ada.expect_welcome();
    assert!(again.resumed);
    let (me_again, entities, custom) = joined_raw(&mut ada);
    assert_eq!(me_again, me, "the same entity");
    assert_eq!(
        scores(&custom),
        (1, vec![(me, 1)]),
        "picked and score restored"
    );
    assert_eq!(entities.iter().filter(|e| e.kind == KIND_COIN).count(), 4);
    // And it plays on.
    assert_eq!(walk_and_pick(&mut ada, me, &entities), 2);
}

#[test]
fn instances_talk_across_shards_and_v1_clients_see_no_events_or_poses() {
    let bin = coins_binary();
    let server = Server::start_program(bin, &[]);
    let (a, b) = (id_on_shard("lobby", 0), id_on_shard("match", 1));

    let mut p = Client::connect(&server.play_url(&a));
    hello_open_v2(&mut p, "p");
    p.join(Some(&a));
    let mut q = Client::connect(&server.play_url(&b));
    hello_open_v2(&mut q, "q");
    let q_joined = q.join(Some(&b));
    // A version 1 client in the same instance as q.
    let mut old = Client::connect(&server.play_url(&b));
    let frame = old.encoder().hello_version(1, "old", None).to_vec();
    old.send_binary(&frame);
    old.expect_welcome();
    let old_joined = old.join(Some(&b));
    assert!(
        old_joined.entities.iter().all(|e| e.facing == 0.0),
        "no poses for version 1: {:?}",
        old_joined.entities
    );
    let q_entity = q_joined.entity(q_joined.entity_id).unwrap();
    assert!(q_entity.facing > 0.0, "version 2 gets poses: {q_entity:?}");

    // p's game (shard 0) tells b's game (shard 1), which tells its players.
    let mut body = b.as_bytes().to_vec();
    body.push(b'\n');
    body.extend_from_slice(b"doors open");
    send_message(&mut p, MSG_ANNOUNCE, &body);
    let (_, got) = event(&mut q, "announcement", &[EV_ANNOUNCED]);
    assert_eq!(got, format!("{a}\ndoors open").into_bytes());

    // The version 1 client got state updates all along, never an event.
    send_message(&mut q, MSG_CHAT, b"hi");
    event(&mut q, "chat", &[EV_CHAT]);
    let deadline = Instant::now() + RECV_TIMEOUT;
    let mut updates = 0;
    while updates < 10 {
        assert!(Instant::now() < deadline, "version 1 client starved");
        match old.recv() {
            ServerMsg::GameEvent { .. } => panic!("a version 1 client got a GameEvent"),
            ServerMsg::StateUpdate { entities, .. } => {
                assert!(entities.iter().all(|e| e.facing == 0.0), "no poses for v1");
                updates += 1;
            }
            _ => {}
        }
    }
}

#[test]
fn instances_talk_across_nodes_through_the_directory() {
    let bin = coins_binary();
    let redis = common::redis::Redis::start();
    let url = redis.url();
    let node = |id: &str| {
        Server::start_program(
            bin,
            &[
                "--directory",
                &url,
                "--node-id",
                id,
                "--region",
                "eu",
                "--directory-heartbeat-ms",
                "200",
                "--directory-ttl-ms",
                "5000",
            ],
        )
    };
    let (a, b) = (node("coins-a"), node("coins-b"));
    // Each player's join claims its instance for the node it is on.
    let mut p = Client::connect(&a.play_url("lobby-x"));
    hello_open_v2(&mut p, "p");
    p.join(Some("lobby-x"));
    let mut q = Client::connect(&b.play_url("match-y"));
    hello_open_v2(&mut q, "q");
    q.join(Some("match-y"));
    // lobby-x (node a) tells match-y (node b) through the directory.
    send_message(&mut p, MSG_ANNOUNCE, b"match-y\nround two");
    let (_, got) = event(&mut q, "announcement from another node", &[EV_ANNOUNCED]);
    assert_eq!(got, b"lobby-x\nround two");
    // To an instance no node runs: dropped (counted), nothing else happens.
    send_message(&mut p, MSG_ANNOUNCE, b"nowhere\nhello?");
    send_message(&mut p, MSG_CHAT, b"still here");
    event(&mut p, "chat after the lost message", &[EV_CHAT]);
}
