//! Fuzzing on the stable toolchain, in the normal test suite:
//!
//! - the two fuzz targets of `fuzz/` (the client-message decoder and the
//!   upgrade request head parser; nightly developers run them with
//!   cargo-fuzz) over a deterministic corpus and its mutations (bit flips,
//!   byte changes, truncation, splicing, insertion, random lengths), for
//!   `SHARDLINE_FUZZ_SECS` seconds each (default 10): no panic;
//! - a property test against a running server: random and mutated messages
//!   on many connections. Every message the decoder refuses is answered
//!   with its Error (and close 1002 for BadMessage), random frames and
//!   random upgrade requests end only their own connection, a watcher in
//!   another instance keeps getting one update per tick, and the server
//!   never panics.

mod common;

#[path = "../fuzz/targets.rs"]
mod targets;

use std::io::{ErrorKind, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use common::*;
use shardline::protocol::{decode_client, ClientEncoder, ErrorCode};

/// xorshift64*: deterministic, so a failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fuzz_budget() -> Duration {
    let secs = std::env::var("SHARDLINE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    Duration::from_secs_f64(secs)
}

/// Valid client messages of every kind, and edge values.
fn message_corpus() -> Vec<Vec<u8>> {
    let mut e = ClientEncoder::new();
    vec![
        e.hello("player", None).to_vec(),
        e.hello(&"n".repeat(32), Some("00112233445566778899aabbccddeeff"))
            .to_vec(),
        e.hello_with_ticket("p", None, "v1.p.*.1.0123456789abcdef.00")
            .to_vec(),
        e.join(Some("arena-1"), true).to_vec(),
        e.join(None, false).to_vec(),
        e.join(Some(&"x".repeat(64)), true).to_vec(),
        e.leave().to_vec(),
        e.input(1, 0.5, -0.5, 3).to_vec(),
        e.input(u32::MAX, f32::MAX, f32::MIN, u32::MAX).to_vec(),
        e.ping(1234.5).to_vec(),
        Vec::new(),
    ]
}

fn head_corpus() -> Vec<Vec<u8>> {
    let addr = "127.0.0.1:9000".parse().unwrap();
    let mut c = vec![
        upgrade_request(addr, "/play"),
        upgrade_request(addr, "/play?instance=arena-1"),
        upgrade_request(addr, "/echo"),
        upgrade_request(addr, "/play?instance=&x=1&instance=b"),
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        b"POST /play HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
    ];
    let mut with_origin = upgrade_request(addr, "/play");
    with_origin.splice(16..16, b"Origin: https://a.example\r\n".iter().copied());
    c.push(with_origin);
    c
}

/// One mutation of `input` (sometimes spliced with `other`).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0xff, 0x7f, 0x80, rng.next() as u8][rng.below(5)];
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let at = rng.below(v.len() + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            4 => {
                let at = rng.below(v.len() + 1);
                let n = rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            5 if v.len() >= 4 => {
                // A plausible offset or length, rewritten.
                let i = rng.below(v.len() - 3);
                let n = [0u32, 1, 4, 0x7fff_ffff, u32::MAX, v.len() as u32][rng.below(6)];
                v[i..i + 4].copy_from_slice(&n.to_le_bytes());
            }
            _ => v = (0..rng.below(96)).map(|_| rng.next() as u8).collect(),
        }
    }
    v
}

/// Runs `target` over the corpus and its mutations until the budget is
/// spent; returns how many inputs ran. A panic names the input.
fn run_target(name: &str, corpus: &[Vec<u8>], seed: u64, target: fn(&[u8])) -> usize {
    let deadline = Instant::now() + fuzz_budget();
    let mut rng = Rng(seed);
    let mut runs = 0;
    let check = |data: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| target(data))).is_err() {
            panic!(
                "fuzz target {name} panicked on {} bytes: {data:02x?}",
                data.len()
            );
        }
    };
    for c in corpus {
        check(c);
        runs += 1;
    }
    while Instant::now() < deadline {
        for _ in 0..256 {
            let a = &corpus[rng.below(corpus.len())];
            let b = &corpus[rng.below(corpus.len())];
            check(&mutate(&mut rng, a, b));
            runs += 1;
        }
    }
    runs
}

#[test]
fn fuzz_decode_client_on_stable() {
    let runs = run_target(
        "decode_client",
        &message_corpus(),
        0xdec0de,
        targets::decode_client_target,
    );
    eprintln!("fuzz decode_client: {runs} inputs, no panic");
    assert!(runs > 1000);
}

#[test]
fn fuzz_upgrade_head_on_stable() {
    let runs = run_target(
        "upgrade_head",
        &head_corpus(),
        0x4ead,
        targets::upgrade_head_target,
    );
    eprintln!("fuzz upgrade_head: {runs} inputs, no panic");
    assert!(runs > 1000);
}

/// Reads until the server closes the socket (or resets it), bounded.
fn ends_within(s: &mut std::net::TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn random_and_mutated_messages_against_a_running_server() {
    let server = Server::start(&[
        "--tick-rate",
        "30",
        "--connect-timeout-ms",
        "2000",
        "--max-payload",
        "4096",
    ]);
    let mut watcher = Watcher::start(&server, "calm");
    watcher.wait_updates(5);
    let corpus = message_corpus();
    let server_url = server.play_url("ID");
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            // A fresh instance per connection: a dropped player's seat is
            // kept (--reconnect-grace-ms), so one instance would fill up.
            let base = server_url.clone();
            let url = move |n: usize| base.replace("ID", &format!("fuzz-{t}-{n}"));
            let corpus = corpus.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0xf00d + t);
                let (mut checked, mut bad) = (0, 0);
                let mut c: Option<Client> = None;
                let mut conns = 0;
                while checked < 150 {
                    let mut client = c.take().unwrap_or_else(|| {
                        conns += 1;
                        let (mut cl, _) = player(&url(conns), "fuzzer");
                        cl.join(Some(&format!("fuzz-{t}-{conns}")));
                        cl
                    });
                    let a = &corpus[rng.below(corpus.len())];
                    let b = &corpus[rng.below(corpus.len())];
                    let m = mutate(&mut rng, a, b);
                    checked += 1;
                    client.send_binary(&m);
                    match decode_client(&m) {
                        Err(e) if e.code == ErrorCode::BadMessage => {
                            bad += 1;
                            client.expect_error(ErrorCode::BadMessage);
                            assert_eq!(client.expect_close().0, 1002, "after BadMessage");
                        }
                        Err(e) => {
                            // BadInput, InvalidInstanceId: the connection stays.
                            client.expect_error(e.code);
                            c = Some(client);
                        }
                        // Valid (Hello again, Join elsewhere, Leave …): its
                        // outcome is the protocol's business; start afresh.
                        Ok(_) => client.close(),
                    }
                }
                (checked, bad)
            })
        })
        .collect();
    let mut bad_total = 0;
    for h in threads {
        let (_, bad) = h.join().expect("fuzz client thread");
        bad_total += bad;
    }
    assert!(
        bad_total > 100,
        "only {bad_total} malformed messages were tried"
    );

    // Random WebSocket frames (any opcode, any length, masked or not) and
    // random upgrade requests: each ends at most its own connection.
    let mut rng = Rng(0xbad_f7a3e);
    for i in 0..60 {
        let mut s = tcp(server.addr());
        let junk: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 {
            let mut raw = RawWs::upgrade(server.addr(), "/play?instance=junk", &[]);
            let _ = raw.stream.write_all(&junk);
            let _ = raw.stream.write_all(&masked_frame(OP_CLOSE, &[]));
            assert!(ends_within(&mut raw.stream, RECV_TIMEOUT), "frame junk {i}");
        } else {
            let heads = head_corpus();
            let pick = rng.below(heads.len());
            let head = mutate(&mut rng, &heads[pick], &junk);
            let _ = s.write_all(&head);
            let _ = s.write_all(&junk);
            let _ = s.shutdown(std::net::Shutdown::Write);
            // Answered (any status, or 101 then a close) or dropped: within
            // the connect timeout, never hanging.
            assert!(ends_within(&mut s, RECV_TIMEOUT), "head junk {i}");
        }
    }
    watcher.wait_updates(15);
    watcher.finish();
    assert!(
        !server.log_contains("panicked"),
        "the server panicked:\n{}",
        server.log()
    );
}
