//! Limits and bad input: each has a defined, visible outcome (an HTTP
//! status, an Error, a close code) that ends only the offending connection
//! or request. In every test a well-behaved player (the watcher) sits in an
//! instance of the same server and must get exactly one StateUpdate per
//! tick — each tick one above the last — before, during and after.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use shardline::protocol::{ErrorCode, ServerMsg};

/// The watcher's instance.
const CALM: &str = "calm";
/// Updates the watcher must see before the abuse starts and after it ends.
const BEFORE: usize = 5;
const AFTER: usize = 15;

#[test]
fn max_connections_refuses_the_upgrade_with_503() {
    // --buffers: the default (a fair share per shard + 25%) is 2 per shard
    // for 3 connections, and these all land on one shard.
    let server = Server::start(&[
        "--tick-rate",
        "30",
        "--max-connections",
        "3",
        "--buffers",
        "4",
    ]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    let (_two, _) = player(&server.play_url(CALM), "two");
    let (three, _) = player(&server.play_url(CALM), "three");

    let refused = Client::try_connect(&server.play_url(CALM));
    match refused {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert!(body.contains("max-connections"), "503 body: {body:?}");
        }
        Err(e) => panic!("4th connection: expected HTTP 503, got {e}"),
        Ok(_) => panic!("4th connection admitted at --max-connections 3"),
    }
    // A plain /echo counts too.
    assert!(matches!(
        Client::try_connect(&server.url("/echo")),
        Err(tungstenite::Error::Http(r)) if r.status() == 503
    ));

    // Closing one frees its place. The server drops the permit just after
    // it closes the socket, so a new connection may still be refused for a
    // moment: retry, bounded.
    three.close();
    let deadline = Instant::now() + RECV_TIMEOUT;
    let mut four = loop {
        match Client::try_connect(&server.play_url(CALM)) {
            Ok(c) => break c,
            Err(tungstenite::Error::Http(r)) if r.status() == 503 => {
                assert!(
                    Instant::now() < deadline,
                    "place not freed within {RECV_TIMEOUT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("reconnect: {e}"),
        }
    };
    four.hello("four");
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn empty_buffer_pool_refuses_the_upgrade_with_503_and_reuses_a_buffer_given_back() {
    // /play?instance=… connections all land on the instance's owner shard,
    // which has two outbound buffers: the third finds its pool empty.
    let server = Server::start(&["--max-connections", "10", "--buffers", "2"]);
    let (one, _) = player(&server.play_url(CALM), "one");
    let (_two, _) = player(&server.play_url(CALM), "two");
    match Client::try_connect(&server.play_url(CALM)) {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert!(body.contains("--buffers"), "503 body: {body:?}");
        }
        Err(e) => panic!("3rd connection: expected HTTP 503, got {e}"),
        Ok(_) => panic!("3rd connection admitted with an empty buffer pool"),
    }
    // /echo takes no pooled buffer: still admitted.
    assert!(Client::try_connect(&server.url("/echo")).is_ok());
    // Closing one gives its buffer back; the next connection takes it (the
    // buffer returns just after the socket closes: retry, bounded).
    one.close();
    let deadline = Instant::now() + RECV_TIMEOUT;
    let mut three = loop {
        match Client::try_connect(&server.play_url(CALM)) {
            Ok(c) => break c,
            Err(tungstenite::Error::Http(r)) if r.status() == 503 => {
                assert!(
                    Instant::now() < deadline,
                    "buffer not given back within {RECV_TIMEOUT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("reconnect: {e}"),
        }
    };
    three.hello("three");
}

#[test]
fn oversize_message_closes_1009() {
    let server = Server::start(&["--tick-rate", "30", "--max-payload", "1024"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    let (mut big, w) = player(&server.play_url(CALM), "big");
    assert_eq!(w.limits.max_payload_bytes, 1024);
    big.join(Some(CALM));
    // Just under the limit is only a bad message...
    big.send_binary(&[0u8; 1000]);
    big.expect_error(ErrorCode::BadMessage);
    assert_eq!(big.expect_close().0, 1002);
    // ...over it is refused before it is read.
    let (mut big, _) = player(&server.play_url(CALM), "bigger");
    big.join(Some(CALM));
    big.send_binary(&[0u8; 2000]);
    assert_eq!(big.expect_close().0, 1009);
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn text_frame_closes_1003() {
    let server = Server::start(&["--tick-rate", "30"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    let (mut c, _) = player(&server.play_url(CALM), "texter");
    c.join(Some(CALM));
    c.send_text("{\"hello\": \"json\"}");
    assert_eq!(c.expect_close().0, 1003);
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn garbage_binary_gets_bad_message_then_1002() {
    let server = Server::start(&["--tick-rate", "30"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    // Before Hello and after Join.
    let mut c = Client::connect(&server.play_url(CALM));
    c.send_binary(&[0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0x7f]);
    c.expect_error(ErrorCode::BadMessage);
    assert_eq!(c.expect_close().0, 1002);
    let (mut c, _) = player(&server.play_url(CALM), "junk");
    c.join(Some(CALM));
    let junk: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    c.send_binary(&junk);
    c.expect_error(ErrorCode::BadMessage);
    assert_eq!(c.expect_close().0, 1002);
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn out_of_order_messages_get_out_of_order_then_1008() {
    let server = Server::start(&["--tick-rate", "30"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    // Input before Join.
    let (mut c, _) = player(&server.play_url(CALM), "eager");
    c.input(1, 1.0, 0.0);
    c.expect_error(ErrorCode::OutOfOrder);
    assert_eq!(c.expect_close().0, 1008);
    // Join before Hello.
    let mut c = Client::connect(&server.play_url(CALM));
    c.send_join(Some(CALM), true);
    c.expect_error(ErrorCode::OutOfOrder);
    assert_eq!(c.expect_close().0, 1008);
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn connect_timeout_drops_silent_connections() {
    let server = Server::start(&["--tick-rate", "30", "--connect-timeout-ms", "500"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);

    // TCP only, no request: dropped without an answer.
    let started = Instant::now();
    let mut raw = tcp(server.addr());
    let got = read_to_end(&mut raw, UPGRADE_TIMEOUT);
    let took = started.elapsed();
    assert!(got.is_empty(), "server answered a silent socket: {got:?}");
    assert!(
        took >= Duration::from_millis(400),
        "closed after {took:?}, before the timeout"
    );

    // Upgraded but no Hello: closed with 4000.
    let started = Instant::now();
    let mut ws = Client::connect(&server.play_url(CALM));
    let ending = ws.wait_end(UPGRADE_TIMEOUT);
    let took = started.elapsed();
    assert!(
        matches!(&ending, Ending::Closed(4000, _)),
        "expected close 4000, got {ending:?}"
    );
    assert!(
        took >= Duration::from_millis(300),
        "closed after {took:?}, before the timeout"
    );

    // The watcher, whose Hello came in time, is still served a second later.
    watcher.wait_updates(30);
    watcher.finish();
}

#[test]
fn heartbeat_drops_a_peer_that_never_answers_pings() {
    // 500 ms rather than less: the watcher, which only answers pings, must
    // do so within about one interval, on a machine that may be busy.
    let server = Server::start(&["--tick-rate", "30", "--heartbeat-ms", "500"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);

    // A hand-driven WebSocket that says Hello, then only listens: it never
    // answers the server's pings.
    let mut enc = shardline::protocol::ClientEncoder::new();
    let hello = masked_frame(OP_BINARY, enc.hello("mute", None));
    let mut mute = RawWs::upgrade(server.addr(), &format!("/play?instance={CALM}"), &hello);
    let last_sent = Instant::now();
    let deadline = last_sent + RECV_TIMEOUT;
    let mut pings = 0;
    let code = loop {
        match mute.read_frame(deadline) {
            Some((OP_PING, _)) => pings += 1,
            Some((OP_CLOSE, payload)) => break close_code(&payload),
            Some(_) => {}
            None => panic!("connection ended without a close frame after {pings} pings"),
        }
    };
    let took = last_sent.elapsed();
    assert_eq!(code, 4001, "heartbeat timeout close code");
    assert!(pings >= 1, "the server never pinged");
    assert!(
        took >= Duration::from_millis(900),
        "dropped after {took:?}, before 2 intervals"
    );

    // The watcher answers pings (tungstenite does when reading): 60 more
    // ticks is 2 s, four heartbeat intervals, and it must not be dropped.
    watcher.wait_updates(60);
    watcher.finish();
}

#[test]
fn full_instance_refuses_join_and_the_connection_stays_usable() {
    let server = Server::start(&["--tick-rate", "30", "--players-per-instance-max", "2"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    let (mut second, _) = player(&server.play_url(CALM), "second");
    second.join(Some(CALM));

    // On the owner shard.
    let (mut third, w3) = player(&server.play_url(CALM), "third");
    assert_eq!(w3.limits.players_per_instance_max, 2);
    third.send_join(Some(CALM), true);
    third.expect_error(ErrorCode::InstanceFull);
    let other = id_on_shard("overflow", owner(CALM));
    assert_eq!(third.join(Some(&other)).instance_id, other);

    // From the other shard: the move is refused, the player stays put.
    let elsewhere = id_on_shard("elsewhere", 1 - owner(CALM));
    let (mut fourth, _) = player(&server.play_url(&elsewhere), "fourth");
    let j4 = fourth.join(Some(&elsewhere));
    fourth.send_join(Some(CALM), true);
    fourth.expect_error(ErrorCode::InstanceFull);
    fourth.input(1, 1.0, 0.0);
    let u = fourth.updates_until("input applied where it stayed", RECV_TIMEOUT, |u| {
        u.last_input_seq == 1
    });
    assert!(u.entity(j4.entity_id).is_some(), "still in {elsewhere}");

    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn unknown_instance_without_create_is_not_found() {
    let server = Server::start(&["--tick-rate", "30"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    let (mut c, _) = player(&server.play_url(CALM), "seeker");
    for ghost in [
        id_on_shard("ghost", owner(CALM)),
        id_on_shard("ghost", 1 - owner(CALM)),
    ] {
        c.send_join(Some(&ghost), false);
        let msg = c.expect_error(ErrorCode::InstanceNotFound);
        assert!(msg.contains(&ghost), "{msg}");
    }
    // Still usable: joining an existing instance without create works.
    c.send_join(Some(CALM), false);
    assert_eq!(c.expect_joined().instance_id, CALM);
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn shard_full_refuses_a_new_instance() {
    let server = Server::start(&["--tick-rate", "30", "--instances-per-shard-max", "1"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    let (mut c, _) = player(&server.play_url(CALM), "builder");
    let second_here = id_on_shard("second", owner(CALM));
    c.send_join(Some(&second_here), true);
    c.expect_error(ErrorCode::ShardFull);
    // Still usable.
    assert_eq!(c.join(Some(CALM)).instance_id, CALM);
    // The limit is per shard: the other shard still has room for one.
    let there = id_on_shard("there", 1 - owner(CALM));
    assert_eq!(c.join(Some(&there)).instance_id, there);
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn unknown_path_is_404_and_plain_http_is_400() {
    let server = Server::start(&["--tick-rate", "30"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    for (request, status) in [
        ("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"),
        // /play without an upgrade is a bad request, not a game session.
        ("GET /play HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400"),
    ] {
        let mut s = tcp(server.addr());
        s.write_all(request.as_bytes()).unwrap();
        let reply = read_to_end(&mut s, RECV_TIMEOUT);
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with(status), "{request:?} got {reply:?}");
    }
    watcher.wait_updates(AFTER);
    watcher.finish();
}

/// The head of the raw HTTP answer to `request` (the connection is closed
/// after it, whatever it was).
fn answer_head(server: &Server, request: &[u8]) -> String {
    let mut s = tcp(server.addr());
    s.write_all(request).unwrap();
    read_http_head(&mut s).0
}

#[test]
fn an_upgrade_head_over_http_head_bytes_max_gets_431() {
    let server = Server::start(&["--tick-rate", "30", "--http-head-bytes-max", "1024"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    // One 2,000-byte header: the head outgrows 1,024 bytes before it ends.
    let mut request = upgrade_request(server.addr(), "/play");
    let end = request.len() - 2;
    request.splice(
        end..end,
        format!("X-Padding: {}\r\n", "p".repeat(2000)).into_bytes(),
    );
    let head = answer_head(&server, &request);
    assert!(
        head.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{head:?}"
    );
    // A head within the bound is upgraded as usual.
    let (mut c, _) = player(&server.play_url(CALM), "small-head");
    c.join(Some(CALM));
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn every_503_says_when_to_retry() {
    // The node's connection limit, and an empty buffer pool: HTTP 503 with
    // `Retry-After: 1`.
    let server = Server::start(&["--max-connections", "2", "--buffers", "1"]);
    let (_one, _) = player(&server.play_url(CALM), "one");
    // The owner shard of CALM has its one buffer taken.
    let head = answer_head(
        &server,
        &upgrade_request(server.addr(), &format!("/play?instance={CALM}")),
    );
    assert!(head.starts_with("HTTP/1.1 503"), "{head:?}");
    assert!(head.contains("\r\nRetry-After: 1"), "{head:?}");
    // The refused connection's permit is released when the node has closed
    // it, which a loaded machine may do a moment after the answer arrived.
    let deadline = Instant::now() + RECV_TIMEOUT;
    let _two = loop {
        match Client::try_connect(&server.url("/echo")) {
            Ok(c) => break c,
            Err(tungstenite::Error::Http(r)) if r.status() == 503 => {
                assert!(
                    Instant::now() < deadline,
                    "the refused connection's permit was not released within {RECV_TIMEOUT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connect to /echo: {e}"),
        }
    };
    let head = answer_head(&server, &upgrade_request(server.addr(), "/echo"));
    assert!(head.starts_with("HTTP/1.1 503"), "{head:?}");
    assert!(head.contains("\r\nRetry-After: 1"), "{head:?}");
}

#[test]
fn a_move_to_a_shard_without_a_free_buffer_closes_1013_and_keeps_the_seat() {
    // One outbound buffer per shard. A holds the one of shard 1; B, seated
    // on shard 0, asks to join an instance of shard 1: its connection moves
    // there, finds no buffer, and is closed with 1013 (try again later) —
    // its seat is reserved, so it resumes once a buffer is free.
    let server = Server::start(&["--tick-rate", "30", "--buffers", "1"]);
    let there = id_on_shard("full-shard", 1);
    let here = id_on_shard("home", 0);
    let (mut a, _) = player(&server.play_url(&there), "a");
    a.join(Some(&there));
    let (mut b, wb) = player(&server.play_url(&here), "b");
    b.join(Some(&here));
    b.send_join(Some(&there), true);
    let (code, reason) = b.expect_close();
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("resume with your token"), "{reason}");
    // A leaves, its buffer goes back: B resumes its seat in `there`.
    a.close();
    let deadline = Instant::now() + RECV_TIMEOUT;
    let mut b = loop {
        match Client::try_connect(&server.play_url(&there)) {
            Ok(c) => break c,
            Err(tungstenite::Error::Http(r)) if r.status() == 503 => {
                assert!(
                    Instant::now() < deadline,
                    "no buffer free within {RECV_TIMEOUT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("reconnect: {e}"),
        }
    };
    let w = b.hello_resume("b", &wb.resume_token);
    assert!(w.resumed);
    assert_eq!(b.expect_joined().instance_id, there);
}

#[test]
fn load_shedding_refuses_new_players_and_keeps_the_running_games() {
    // A threshold any working shard exceeds: every shard that ticks an
    // instance is overloaded by this measure, and sheds after two seconds.
    let server = Server::start(&[
        "--tick-rate",
        "30",
        "--admin-listen",
        "127.0.0.1:0",
        "--load-shedding",
        "on",
        "--cpu-restart-threshold",
        "0.000001",
        "--health-check-interval-ms",
        "100",
    ]);
    let admin = common::http::admin_addr(&server);
    let mut watchers: Vec<Watcher> = (0..2)
        .map(|s| Watcher::start(&server, &id_on_shard("busy", s)))
        .collect();
    // Bounded: the shedding decision is taken once per second, after two
    // overloaded seconds in a row.
    let refused = common::http::eventually("a shard sheds", Duration::from_secs(20), || {
        let head = answer_head(&server, &upgrade_request(server.addr(), "/play"));
        head.starts_with("HTTP/1.1 503").then_some(head)
    });
    assert!(refused.contains("\r\nRetry-After: 1"), "{refused:?}");
    assert!(server.log_contains("overloaded: refusing new players"));
    let overload: u64 = common::http::get_json(admin, "/stats")["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["counters"]["refused_overload"].as_u64().unwrap())
        .sum();
    assert!(overload >= 1);
    common::http::eventually("/ready says no", Duration::from_secs(10), || {
        (common::http::get(admin, "/ready").0 == 503).then_some(())
    });
    // The games already running go on, one update per tick.
    for w in watchers.iter_mut() {
        w.wait_updates(AFTER);
    }
    for w in watchers {
        w.finish();
    }
}

#[test]
fn an_empty_instance_id_is_invalid_and_an_absent_one_places_you() {
    let server = Server::start(&["--tick-rate", "30"]);
    let (mut c, _) = player(&server.url("/play"), "picky");
    c.send_join(Some(""), true);
    c.expect_error(ErrorCode::InvalidInstanceId);
    // The field absent: "place me".
    let j = c.join(None);
    assert!(!j.instance_id.is_empty());
    c.close();
}

#[test]
fn a_connection_closed_for_what_it_did_keeps_the_players_seat() {
    // What ends the connection is its fault, not the player: a resume
    // within the grace period takes the seat (and entity) back, and input
    // numbering goes on above the last seq the seat saw.
    let server = Server::start(&["--tick-rate", "30", "--max-payload", "1024"]);
    type Fault = (&'static str, u16, fn(&mut Client));
    let faults: [Fault; 3] = [
        ("garbage", 1002, |c| c.send_binary(&[0u8; 100])),
        ("text frame", 1003, |c| c.send_text("hello?")),
        ("oversize", 1009, |c| c.send_binary(&[0u8; 2000])),
    ];
    for (what, code, fault) in faults {
        let (mut c, w) = player(&server.play_url(CALM), "faulty");
        let j = c.join(Some(CALM));
        for seq in 1..=3 {
            c.input(seq, 1.0, 0.0);
        }
        c.updates_until("inputs 1-3 applied", RECV_TIMEOUT, |u| {
            u.last_input_seq == 3
        });
        fault(&mut c);
        assert_eq!(c.expect_close().0, code, "{what}");
        drop(c);
        let mut back = Client::connect(&server.play_url(CALM));
        let again = back.hello_resume("faulty", &w.resume_token);
        assert!(again.resumed, "{what}: the seat was kept");
        let rejoined = back.expect_joined();
        assert_eq!(rejoined.entity_id, j.entity_id, "{what}: the same entity");
        // seq 1 again is stale (dropped); 4 is applied.
        back.input(1, -1.0, 0.0);
        back.input(4, 0.0, 1.0);
        let u = back.updates_until("input 4 applied", RECV_TIMEOUT, |u| u.last_input_seq >= 4);
        assert_eq!(u.last_input_seq, 4, "{what}");
        back.send_leave();
        back.close();
    }
}

/// Join{new id} answers a flooder gets: (Joined, Error(RateLimited)).
fn flood_rooms(url: &str, tag: usize, per_s: u32, for_how_long: Duration) -> (usize, usize) {
    let (mut c, _) = player(url, &format!("flooder{tag}"));
    let period = Duration::from_secs(1) / per_s;
    let end = Instant::now() + for_how_long;
    let mut next = Instant::now();
    let (mut joined, mut limited) = (0, 0);
    for i in 0.. {
        if Instant::now() >= end {
            break;
        }
        c.send_join(Some(&format!("flood-{tag}-{i}")), true);
        match c.recv_until("the Join's answer", RECV_TIMEOUT, |m| {
            matches!(m, ServerMsg::Joined { .. } | ServerMsg::Error { .. })
        }) {
            ServerMsg::Joined { .. } => joined += 1,
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("flooder {tag}: unexpected answer {other:?}"),
        }
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    // Refused creations closed nothing: the flooder still plays.
    assert_eq!(c.join(Some(CALM)).instance_id, CALM);
    c.next_update();
    (joined, limited)
}

#[test]
fn a_room_creation_flood_is_rate_limited_and_a_player_can_always_create_a_room() {
    let server = Server::start(&[
        "--tick-rate",
        "30",
        "--admin-listen",
        "127.0.0.1:0",
        // The defaults, spelled out (the harness turns the per-IP one off).
        "--creates-per-conn-per-min",
        "10",
        "--creates-per-ip-per-min",
        "60",
    ]);
    let admin = common::http::admin_addr(&server);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    // Three connections from 127.0.0.1, each 190 Joins of new rooms per
    // second: under --messages-per-second-max 240.
    const FLOOD: Duration = Duration::from_secs(3);
    let flooders: Vec<_> = (0..3)
        .map(|tag| {
            let url = server.url("/play");
            std::thread::spawn(move || flood_rooms(&url, tag, 190, FLOOD))
        })
        .collect();
    // Meanwhile a player at another address creates and joins a room of
    // its own every 150 ms, each time at once.
    let good: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let end = Instant::now() + FLOOD;
    let mut rooms = 0;
    while Instant::now() < end {
        let mut c = Client::connect_from(&server.url("/play"), good);
        c.hello("good");
        let id = format!("good-{rooms}");
        let asked = Instant::now();
        assert_eq!(c.join(Some(&id)).instance_id, id);
        c.next_update();
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "slow room: {:?}",
            asked.elapsed()
        );
        rooms += 1;
        c.close();
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(rooms >= 5, "only {rooms} rooms created during the flood");
    let mut limited_total = 0;
    for f in flooders {
        let (joined, limited) = f.join().expect("flooder thread");
        // 10 per minute per connection (plus what refills in 3 s).
        assert!(joined <= 11, "a flooder created {joined} rooms");
        assert!(limited > 100, "a flooder was refused only {limited} times");
        limited_total += limited as u64;
    }
    let counters = |name: &str| -> u64 {
        common::http::get_json(admin, "/stats")["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["counters"][name].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        counters("creates_refused_conn") + counters("creates_refused_ip"),
        limited_total,
        "every refusal counted by its reason"
    );
    let (_, metrics) = common::http::get(admin, "/metrics");
    assert!(metrics.contains("shardline_creates_refused_conn_total{shard=\"0\"}"));
    assert!(metrics.contains("shardline_instance_table_fill_ratio{shard=\"0\"}"));
    watcher.wait_updates(AFTER);
    watcher.finish();
}

#[test]
fn creations_over_the_per_ip_limit_are_refused_whatever_the_connection() {
    let server = Server::start(&["--tick-rate", "30", "--creates-per-ip-per-min", "4"]);
    let mut watcher = Watcher::start(&server, CALM);
    watcher.wait_updates(BEFORE);
    // The limit is per shard: every room here is on shard 0. The watcher
    // (127.0.0.1) may have spent one creation there.
    let on0 = |n: usize| id_on_shard(&format!("ip{n}"), 0);
    let spent = usize::from(owner(CALM) == 0);
    let mut keep = Vec::new();
    for n in 0..4 - spent {
        let (mut c, _) = player(&server.play_url(&on0(n)), "maker");
        assert_eq!(c.join(Some(&on0(n))).instance_id, on0(n));
        keep.push(c);
    }
    // Another connection from the same address: refused, and still usable.
    let (mut late, _) = player(&server.url("/play"), "late");
    late.send_join(Some(&on0(10)), true);
    let why = late.expect_error(ErrorCode::RateLimited);
    assert!(why.contains("--creates-per-ip-per-min"), "{why}");
    assert_eq!(late.join(Some(&on0(0))).instance_id, on0(0));
    // Another address is not limited by this one.
    let mut other = Client::connect_from(&server.url("/play"), "127.0.0.3".parse().unwrap());
    other.hello("other");
    assert_eq!(other.join(Some(&on0(11))).instance_id, on0(11));
    watcher.wait_updates(AFTER);
    watcher.finish();
}
