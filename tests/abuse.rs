//! Faults and abuse against a real server process, each while a
//! well-behaved player (the [`Steady`] player) sits in an instance of the
//! same server: it must get exactly one StateUpdate per tick (each tick one
//! above the last) before, during and after the abuse, and its inputs must
//! keep being applied.
//!
//! The cases: slowloris (upgrade request dribbled byte by byte), half-open
//! and half-closed connections, a client that stops reading, abrupt
//! disconnects mid-frame, fragmented messages, ping floods, input floods, a
//! connection storm past --max-connections, and kill -9 under load.
//!
//! Latency is a benchmark's business, not a test's: a shared, loaded 2-core
//! machine moves a p99 by more than any bound a test could hold. With
//! `SHARDLINE_BENCH_ABUSE=1` (what `scripts/bench.sh --only abuse` sets)
//! every case also runs a control — a second server nobody abuses, with its
//! own steady player, measured over the same time — and prints one
//! `abuse-bench:` line with the steady player's input→update p99 (from
//! sending Input seq s to reading the first StateUpdate whose last_input_seq
//! is at least s) next to the control's and the bound (one tick + 5 ms, or
//! the control's p99 + 5 ms when the host itself already misses that).
//!
//! The tests of this file run one at a time (see [`serial`]): two abuse
//! cases at once on a 2-core machine would mostly measure each other.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::http::{admin_addr, eventually, get_json, tempdir};
use common::*;
use shardline::protocol::{decode_server, ClientEncoder, ServerMsg};

/// Tick rate of every server here: 33.3 ms per tick.
const TICK_RATE_HZ: u32 = 30;
/// Latency allowed above one tick interval (the benchmark's bound).
const LATENCY_SLACK: Duration = Duration::from_millis(5);
/// Fewest latency samples a benchmark p99 is computed from.
const SAMPLES_MIN: usize = 100;
/// Updates the steady player reads after each abuse case in a test run:
/// a second of ticks, one by one.
const UPDATES_AFTER: usize = 30;
/// The steady player's instance.
const CALM: &str = "calm";

static SERIAL: Mutex<()> = Mutex::new(());

/// Whether this run measures latency (`SHARDLINE_BENCH_ABUSE=1`).
fn bench() -> bool {
    std::env::var_os("SHARDLINE_BENCH_ABUSE").is_some()
}

/// One abuse case at a time; in a benchmark run, each with a control: a
/// second server that nobody abuses, with its own steady player, measured
/// over the same time as the abused one. A shared 2-core host's neighbours
/// (and the abusing client threads themselves, which run on the same cores)
/// slow both alike; what the abuse does to the server shows as the gap.
struct Serial {
    _guard: MutexGuard<'static, ()>,
    control: Option<(Server, Steady)>,
}

fn serial() -> Serial {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let control = bench().then(|| {
        let (server, _) = start(&[]);
        let steady = Steady::start(&server);
        (server, steady)
    });
    Serial {
        _guard: guard,
        control,
    }
}

impl Serial {
    /// Stops the control's player; its p99 over the case's duration.
    fn control_p99(&mut self) -> Duration {
        let (server, steady) = self.control.take().expect("measured once");
        let m = steady.measure(2 * SAMPLES_MIN + 10);
        drop(server);
        m.p99()
    }
}

fn tick_interval() -> Duration {
    Duration::from_secs(1) / TICK_RATE_HZ
}

fn start(extra: &[&str]) -> (Server, SocketAddr) {
    let rate = TICK_RATE_HZ.to_string();
    let mut args = vec!["--tick-rate", &rate, "--admin-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let admin = admin_addr(&server);
    (server, admin)
}

/// Sum of a counter (or, with `closed`, a close-reason count) over shards.
fn stat(admin: SocketAddr, group: &str, name: &str) -> u64 {
    get_json(admin, "/stats")["shards"]
        .as_array()
        .expect("shards in /stats")
        .iter()
        .map(|s| s[group][name].as_u64().unwrap_or(0))
        .sum()
}

fn open_connections(admin: SocketAddr) -> i64 {
    get_json(admin, "/stats")["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["connections_open"].as_i64().unwrap())
        .sum()
}

fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn assert_no_panic(server: &Server) {
    assert!(
        !server.log_contains("panicked"),
        "the server panicked:\n{}",
        server.log()
    );
}

// ------------------------------------------------------------------ steady player

/// What the steady player measured.
#[derive(Debug)]
struct Measured {
    latencies: Vec<Duration>,
}

impl Measured {
    fn p99(&self) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l[(l.len() * 99).div_ceil(100) - 1]
    }
}

/// A well-behaved player: a reader thread reads every frame the moment it
/// arrives (checking that StateUpdate ticks go up by exactly one, and
/// timing the update that first reflects the pending input), and a writer
/// thread sends the next Input at a pseudo-random point of the tick
/// interval after each answered one, so the latencies sample the whole
/// interval, not a convenient phase of it. Reading and writing on separate
/// threads keeps the client's own pacing out of what is measured.
struct Steady {
    stop: Arc<AtomicBool>,
    updates: Arc<AtomicUsize>,
    reader: Option<JoinHandle<Measured>>,
    writer: Option<JoinHandle<()>>,
}

/// The input in flight: (seq, when it was written).
type Pending = Arc<Mutex<Option<(u32, Instant)>>>;

impl Steady {
    fn start(server: &Server) -> Steady {
        let mut raw = raw_player(server, CALM, "steady");
        let deadline = Instant::now() + RECV_TIMEOUT;
        let joined_tick = loop {
            let (op, payload) = raw.read_frame(deadline).expect("Welcome and Joined");
            if op != OP_BINARY {
                continue;
            }
            match decode_server(&payload).expect("a server message") {
                ServerMsg::Joined { tick, .. } => break tick,
                ServerMsg::Error { code, message } => panic!("steady join: {code:?} {message}"),
                _ => {}
            }
        };
        let out = Arc::new(Mutex::new(raw.stream.try_clone().unwrap()));
        let stop = Arc::new(AtomicBool::new(false));
        let updates = Arc::new(AtomicUsize::new(0));
        let pending: Pending = Arc::new(Mutex::new(None));
        let (answered_tx, answered_rx) = std::sync::mpsc::channel::<()>();
        let reader = {
            let (stop, updates, pending, out) =
                (stop.clone(), updates.clone(), pending.clone(), out.clone());
            std::thread::spawn(move || {
                let mut last_tick = joined_tick;
                let mut latencies = Vec::new();
                let mut n = 0;
                // The writer starts on the first update.
                let mut answered = Some(answered_tx);
                while !stop.load(Ordering::Relaxed) {
                    let (op, payload) = raw
                        .read_frame(Instant::now() + RECV_TIMEOUT)
                        .expect("the steady player's connection ended");
                    let read_at = Instant::now();
                    match op {
                        OP_PING => {
                            let pong = masked_frame(0xA, &payload);
                            let _ = out.lock().unwrap().write_all(&pong);
                            continue;
                        }
                        OP_CLOSE => panic!("steady player closed: {}", close_code(&payload)),
                        OP_BINARY => {}
                        _ => continue,
                    }
                    let msg = decode_server(&payload).expect("a server message");
                    let ServerMsg::StateUpdate {
                        tick,
                        last_input_seq,
                        ..
                    } = msg
                    else {
                        if let ServerMsg::Error { code, message } = msg {
                            panic!("steady player got Error {code:?}: {message}");
                        }
                        continue;
                    };
                    assert_eq!(
                        tick,
                        last_tick + 1,
                        "steady player: one StateUpdate per tick, each one above the last"
                    );
                    last_tick = tick;
                    n += 1;
                    updates.store(n, Ordering::Relaxed);
                    let mut p = pending.lock().unwrap();
                    match *p {
                        Some((s, sent_at)) if last_input_seq >= s => {
                            latencies.push(read_at - sent_at);
                            *p = None;
                        }
                        Some(_) => continue,
                        None => {}
                    }
                    drop(p);
                    if let Some(tx) = &answered {
                        if tx.send(()).is_err() {
                            answered = None;
                        }
                    }
                }
                Measured { latencies }
            })
        };
        let writer = {
            let (stop, pending) = (stop.clone(), pending.clone());
            std::thread::spawn(move || {
                let interval = tick_interval();
                let mut enc = ClientEncoder::new();
                let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
                let mut seq = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if answered_rx.recv_timeout(POLL).is_err() {
                        continue;
                    }
                    while answered_rx.try_recv().is_ok() {}
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    std::thread::sleep(interval.mul_f64((rng % 1000) as f64 / 1000.0));
                    seq += 1;
                    let x = if seq % 2 == 0 { 1.0 } else { -1.0 };
                    let frame = masked_frame(OP_BINARY, enc.input(seq, x, 0.0, 0));
                    let mut s = out.lock().unwrap();
                    *pending.lock().unwrap() = Some((seq, Instant::now()));
                    if s.write_all(&frame).is_err() {
                        return;
                    }
                }
            })
        };
        Steady {
            stop,
            updates,
            reader: Some(reader),
            writer: Some(writer),
        }
    }

    /// Waits (bounded) until `n` updates have been read in all.
    fn wait_updates(&self, n: usize) {
        // Generous: twice the ticks' own time, plus the usual bound, since
        // a loaded machine can start ticks late (they still all come).
        eventually(
            &format!("steady player reads {n} updates"),
            RECV_TIMEOUT + tick_interval() * 2 * n as u32,
            || (self.updates.load(Ordering::Relaxed) >= n).then_some(()),
        );
    }

    /// Stops the player, after `updates` updates in all, and returns what
    /// it measured.
    fn measure(mut self, updates: usize) -> Measured {
        self.wait_updates(updates);
        self.stop.store(true, Ordering::Relaxed);
        let m = match self.reader.take().unwrap().join() {
            Ok(m) => m,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let _ = self.writer.take().unwrap().join();
        m
    }

    /// After the abuse: the player goes on reading one update per tick
    /// (checked by its reader) and its inputs keep being applied. In a
    /// benchmark run, prints its latency against the control's.
    fn finish(self, mut serial: Serial, case: &str) -> Measured {
        let seen = self.updates.load(Ordering::Relaxed);
        let wanted = if bench() {
            2 * SAMPLES_MIN + 10
        } else {
            seen + UPDATES_AFTER
        };
        let m = self.measure(wanted);
        assert!(
            !m.latencies.is_empty(),
            "{case}: none of the steady player's inputs was applied"
        );
        if bench() {
            let control = serial.control_p99();
            let bound = (tick_interval() + LATENCY_SLACK).max(control + LATENCY_SLACK);
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let line = format!(
                "\nabuse-bench: case={case:?} samples={} p99_ms={:.1} max_ms={:.1} \
                 control_p99_ms={:.1} bound_ms={:.1} verdict={}\n",
                m.latencies.len(),
                ms(m.p99()),
                ms(*m.latencies.iter().max().unwrap()),
                ms(control),
                ms(bound),
                if m.p99() <= bound { "within" } else { "OVER" }
            );
            // To the real stderr (the harness captures eprintln!), on a line
            // of its own (the harness may have begun one: "test … ... ").
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        m
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ------------------------------------------------------------------ raw helpers

/// Bound on waiting for the server to close an abusive connection: it
/// closes a flooder within a second; this only keeps a broken server from
/// hanging the test.
const CLOSE_BOUND: Duration = Duration::from_secs(60);

/// Reads and discards everything from `reader` on a thread until the
/// server closes the connection (the thread then returns `true`), or
/// [`CLOSE_BOUND`] passes (`false`).
fn drain_until_closed(mut reader: TcpStream) -> JoinHandle<bool> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + CLOSE_BOUND;
        let mut chunk = [0u8; 64 * 1024];
        while Instant::now() < deadline {
            match reader.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    })
}

/// A client frame with FIN as given (for fragmentation), masked.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = masked_frame(opcode, payload);
    if !fin {
        f[0] &= 0x7f;
    }
    f
}

const OP_CONTINUATION: u8 = 0x0;

/// Reads from `s` until the peer closes or resets, bounded; true if it did.
fn closed_by_peer(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 16 * 1024];
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

/// A raw /play connection, upgraded with Hello and Join pipelined.
fn raw_player(server: &Server, instance: &str, name: &str) -> RawWs {
    let mut enc = ClientEncoder::new();
    let mut first = masked_frame(OP_BINARY, enc.hello(name, None));
    first.extend(masked_frame(OP_BINARY, enc.join(Some(instance), true)));
    RawWs::upgrade(server.addr(), &format!("/play?instance={instance}"), &first)
}

// ------------------------------------------------------------------ cases

#[test]
fn slowloris_upgrade_requests_are_dropped_at_the_connect_timeout() {
    let serial = serial();
    let (server, admin) = start(&["--connect-timeout-ms", "1500"]);
    let steady = Steady::start(&server);
    steady.wait_updates(5);

    // 20 clients each dribble an upgrade request one byte every 50 ms: the
    // whole request would take ~7 s, far past the connect timeout.
    let request = upgrade_request(server.addr(), "/play");
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let addr = server.addr();
            let request = request.clone();
            std::thread::spawn(move || {
                let mut s = tcp(addr);
                for b in &request {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    let mut probe = [0u8; 256];
                    match s.read(&mut probe) {
                        Ok(0) => return None,
                        Ok(n) => return Some(String::from_utf8_lossy(&probe[..n]).into_owned()),
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => return None,
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Some("the whole request was sent without being dropped".to_owned())
            })
        })
        .collect();
    for h in handles {
        if let Some(answer) = h.join().unwrap() {
            panic!("a slowloris client was answered instead of dropped: {answer}");
        }
    }
    // No time is asserted: a client the server had not dropped would have
    // sent its whole request (~7 s of dribbling, against the 1.5 s
    // timeout) and failed above.
    assert!(stat(admin, "counters", "handshakes_failed") >= 20);
    steady.finish(serial, "slowloris");
    assert_no_panic(&server);
}

#[test]
fn half_open_and_half_closed_connections_are_reaped() {
    let serial = serial();
    let (server, admin) = start(&["--connect-timeout-ms", "1000", "--heartbeat-ms", "300"]);
    let steady = Steady::start(&server);
    steady.wait_updates(5);

    // Silent TCP connections (no request at all): dropped at the connect
    // timeout.
    let mut silent: Vec<TcpStream> = (0..20).map(|_| tcp(server.addr())).collect();
    // Players whose peer vanished without a FIN (seen from the server: it
    // never hears from them again, not even a pong): heartbeat, 4001.
    let mut vanished: Vec<RawWs> = (0..10)
        .map(|i| raw_player(&server, &format!("ghosts-{i}"), "ghost"))
        .collect();
    // Players that half-close (FIN, but keep their read side open): the
    // server sees the end of the stream and closes its side too.
    let mut half_closed: Vec<RawWs> = (0..10)
        .map(|i| raw_player(&server, &format!("ghosts-{i}"), "halfway"))
        .collect();
    for h in &mut half_closed {
        h.stream.shutdown(Shutdown::Write).unwrap();
    }
    for s in &mut silent {
        assert!(
            closed_by_peer(s, RECV_TIMEOUT),
            "a silent connection outlived the connect timeout"
        );
    }
    for h in &mut half_closed {
        assert!(
            closed_by_peer(&mut h.stream, RECV_TIMEOUT),
            "a half-closed connection was kept open"
        );
    }
    for v in &mut vanished {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let code = loop {
            match v.read_frame(deadline) {
                Some((OP_CLOSE, payload)) => break close_code(&payload),
                Some(_) => {}
                None => panic!("a silent player was dropped without a close frame"),
            }
        };
        assert_eq!(code, 4001, "heartbeat timeout");
    }
    // Counted once the close handshake has had its time (1 s).
    eventually("heartbeat timeouts counted", RECV_TIMEOUT, || {
        (stat(admin, "closed", "heartbeat_timeout") >= 10).then_some(())
    });
    // Only the steady player is left.
    eventually("connections reaped", RECV_TIMEOUT, || {
        (open_connections(admin) == 1).then_some(())
    });
    steady.finish(serial, "half-open");
    assert_no_panic(&server);
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_memory_stays_bounded() {
    let serial = serial();
    // The flood here is the means, not the point: without the message-rate
    // limit, what drops these clients must be the outbound bound (4002).
    let (server, admin) = start(&[
        "--write-buffer-bytes",
        "4096",
        "--messages-per-second-max",
        "0",
    ]);
    let steady = Steady::start(&server);
    steady.wait_updates(5);
    let rss_before = rss_kib(&server);

    // Each stuck client floods game Pings (each answered with a Pong) and
    // never reads: the server's answers and StateUpdates pile up, the
    // kernel buffers fill, then the 4 KiB outbound buffer, then 4002.
    const STUCK: usize = 8;
    const FLOOD_BYTES_MAX: usize = 64 << 20;
    let handles: Vec<_> = (0..STUCK)
        .map(|i| {
            let mut raw = raw_player(&server, "crowd", &format!("stuck-{i}"));
            std::thread::spawn(move || {
                let mut enc = ClientEncoder::new();
                let mut batch = Vec::new();
                for n in 0..256 {
                    batch.extend(masked_frame(OP_BINARY, enc.ping(f64::from(n))));
                }
                let mut sent = 0;
                raw.stream.set_write_timeout(Some(POLL)).unwrap();
                let deadline = Instant::now() + Duration::from_secs(20);
                while sent < FLOOD_BYTES_MAX && Instant::now() < deadline {
                    match raw.stream.write(&batch) {
                        Ok(n) => sent += n,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => return sent, // the server dropped us
                    }
                }
                panic!("the server never dropped a client that does not read ({sent} bytes sent)");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("stuck client");
    }
    eventually("4002 counted for every stuck client", RECV_TIMEOUT, || {
        (stat(admin, "closed", "slow_consumer") >= STUCK as u64).then_some(())
    });
    let rss_after = rss_kib(&server);
    eprintln!("slow consumers: server RSS {rss_before} KiB → {rss_after} KiB");
    // Generous: what matters is that it is not the megabytes each client
    // tried to make the server queue.
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    steady.finish(serial, "slow consumer");
    assert_no_panic(&server);
}

#[test]
fn abrupt_disconnects_mid_frame_end_only_those_connections() {
    let serial = serial();
    let (server, admin) = start(&[]);
    let steady = Steady::start(&server);
    steady.wait_updates(5);
    let mut enc = ClientEncoder::new();
    let join = masked_frame(OP_BINARY, enc.join(Some("cut"), true));
    for i in 0..60 {
        let mut raw = raw_player(&server, "cut", &format!("cut-{i}"));
        // Cut inside the header, inside the mask, or inside the payload.
        let cut = [1, 3, 7, join.len() - 2][i % 4];
        raw.stream.write_all(&join[..cut]).unwrap();
        if i % 2 == 0 {
            // RST instead of FIN.
            socket2::SockRef::from(&raw.stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(raw);
        // And on /echo, a frame cut short.
        let mut echo = RawWs::upgrade(server.addr(), "/echo", &[]);
        let big = masked_frame(OP_BINARY, &[7u8; 1000]);
        echo.stream.write_all(&big[..500]).unwrap();
    }
    eventually("cut connections reaped", RECV_TIMEOUT, || {
        (open_connections(admin) == 1).then_some(())
    });
    steady.finish(serial, "abrupt disconnects");
    assert_no_panic(&server);
}

#[test]
fn fragmented_messages_are_reassembled_and_bounded() {
    let serial = serial();
    let (server, _admin) = start(&["--max-payload", "1024"]);
    let steady = Steady::start(&server);
    steady.wait_updates(5);

    // A Hello in three fragments with a ping between them (control frames
    // may interleave): Welcome; then a Join in two fragments: Joined.
    let mut enc = ClientEncoder::new();
    let hello = enc.hello("frag", None).to_vec();
    let (a, rest) = hello.split_at(3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let mut bytes = frame(false, OP_BINARY, a);
    bytes.extend(frame(true, OP_PING, b"mid"));
    bytes.extend(frame(false, OP_CONTINUATION, b));
    bytes.extend(frame(true, OP_CONTINUATION, c));
    let join = enc.join(Some("frags"), true).to_vec();
    bytes.extend(frame(false, OP_BINARY, &join[..1]));
    bytes.extend(frame(true, OP_CONTINUATION, &join[1..]));
    let mut client = RawWs::upgrade(server.addr(), "/play?instance=frags", &bytes).into_client();
    client.expect_welcome();
    assert_eq!(client.expect_joined().instance_id, "frags");
    client.next_update();

    // 100 fragments of 20 bytes: 2000 bytes in all, over --max-payload
    // 1024 though every fragment is small: 1009.
    let mut raw = raw_player(&server, "frags", "big");
    let mut many = frame(false, OP_BINARY, &[0u8; 20]);
    for _ in 0..98 {
        many.extend(frame(false, OP_CONTINUATION, &[0u8; 20]));
    }
    many.extend(frame(true, OP_CONTINUATION, &[0u8; 20]));
    let _ = raw.stream.write_all(&many);
    let deadline = Instant::now() + RECV_TIMEOUT;
    let code = loop {
        match raw.read_frame(deadline) {
            Some((OP_CLOSE, p)) => break close_code(&p),
            Some(_) => {}
            None => panic!("no close frame for an oversize fragmented message"),
        }
    };
    assert_eq!(code, 1009);

    // A continuation with nothing to continue, and a new message inside an
    // unfinished one: protocol errors, 1002.
    for bad in [
        frame(true, OP_CONTINUATION, b"x"),
        [frame(false, OP_BINARY, b"x"), frame(true, OP_BINARY, b"y")].concat(),
    ] {
        let mut raw = raw_player(&server, "frags", "bad");
        raw.stream.write_all(&bad).unwrap();
        let deadline = Instant::now() + RECV_TIMEOUT;
        let code = loop {
            match raw.read_frame(deadline) {
                Some((OP_CLOSE, p)) => break close_code(&p),
                Some(_) => {}
                None => panic!("no close frame for a fragmentation error"),
            }
        };
        assert_eq!(code, 1002);
    }

    // /echo gives a fragmented message back whole.
    let mut echo = RawWs::upgrade(server.addr(), "/echo", &[]);
    echo.stream
        .write_all(
            &[
                frame(false, OP_TEXT, b"hel"),
                frame(true, OP_CONTINUATION, b"lo"),
            ]
            .concat(),
        )
        .unwrap();
    let (op, payload) = echo.read_frame(Instant::now() + RECV_TIMEOUT).unwrap();
    assert_eq!((op, payload.as_slice()), (OP_TEXT, &b"hello"[..]));
    client.close();
    steady.finish(serial, "fragmentation");
    assert_no_panic(&server);
}

#[test]
fn ping_floods_close_the_flooder_without_hurting_others() {
    let serial = serial();
    let (server, admin) = start(&[]);
    let steady = Steady::start(&server);
    steady.wait_updates(5);

    // WebSocket ping frames and game Pings, 20,000 of each, from 4 clients
    // that read everything the server sends on their own threads. Far over
    // --messages-per-second-max: each flooder is closed, the game goes on.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut raw = raw_player(&server, "pingers", &format!("pinger-{i}"));
            let reader = raw.stream.try_clone().unwrap();
            let read_until_closed = drain_until_closed(reader);
            std::thread::spawn(move || {
                let mut enc = ClientEncoder::new();
                let mut batch = Vec::new();
                for n in 0..1000 {
                    batch.extend(masked_frame(OP_PING, b"flood"));
                    batch.extend(masked_frame(OP_BINARY, enc.ping(f64::from(n))));
                }
                for _ in 0..20 {
                    if raw.stream.write_all(&batch).is_err() {
                        break; // closed by the server, as it should be
                    }
                }
                read_until_closed.join().unwrap()
            })
        })
        .collect();
    for h in handles {
        assert!(
            h.join().expect("ping flooder"),
            "the flooder's connection was closed"
        );
    }
    assert!(stat(admin, "counters", "flooders_closed") >= 4);
    steady.finish(serial, "ping flood");
    assert_no_panic(&server);
}

#[test]
fn input_floods_close_the_flooder_and_cap_what_applies() {
    let serial = serial();
    let (server, admin) = start(&["--inputs-per-tick-max", "4"]);
    let steady = Steady::start(&server);
    steady.wait_updates(5);

    // 4 players each send 100 inputs every 5 ms (20,000 inputs/s each) into
    // the steady player's own instance while reading what comes back. The
    // excess per tick is dropped and counted; past --messages-per-second-max
    // the flooder is closed; the steady player never notices.
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut raw = raw_player(&server, CALM, &format!("flooder-{i}"));
            let reader = raw.stream.try_clone().unwrap();
            let stop = stop.clone();
            let reads = drain_until_closed(reader);
            std::thread::spawn(move || {
                let mut enc = ClientEncoder::new();
                let mut seq = 0u32;
                let mut batch = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    batch.clear();
                    for _ in 0..100 {
                        seq += 1;
                        batch.extend(masked_frame(OP_BINARY, enc.input(seq, 1.0, -1.0, 0)));
                    }
                    if raw.stream.write_all(&batch).is_err() {
                        break; // closed by the server
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                reads.join().unwrap()
            })
        })
        .collect();
    let closed = eventually("every flooder closed", Duration::from_secs(30), || {
        let n = stat(admin, "counters", "flooders_closed");
        (n >= 4).then_some(n)
    });
    steady.wait_updates(UPDATES_AFTER);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        assert!(
            h.join().expect("input flooder"),
            "the flooder's connection was closed"
        );
    }
    let applied = stat(admin, "counters", "inputs_applied");
    let ticks = stat(admin, "counters", "ticks");
    let dropped = stat(admin, "counters", "inputs_dropped_full");
    eprintln!("input flood: {closed} flooders closed, {applied} applied in {ticks} ticks, {dropped} dropped");
    assert!(dropped > 0, "the excess per tick is dropped and counted");
    // At most 4 per player per tick for 5 players, over every tick the
    // server ran (both shards' ticks counted: a loose upper bound).
    assert!(
        applied <= ticks * 4 * 5,
        "applied {applied} in {ticks} ticks"
    );
    steady.finish(serial, "input flood");
    assert_no_panic(&server);
}

#[test]
fn a_connection_storm_past_max_connections_gets_503_and_the_game_goes_on() {
    let serial = serial();
    const MAX: usize = 40;
    let max = MAX.to_string();
    let (server, admin) = start(&["--max-connections", &max, "--buffers", "40"]);
    let steady = Steady::start(&server);
    steady.wait_updates(5);

    // 8 threads × 60 connections, each kept open until the storm ends:
    // 480 attempts against a budget of 40 (the steady player holds one).
    let refused = Arc::new(AtomicUsize::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr();
            let (refused, admitted) = (refused.clone(), admitted.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for _ in 0..60 {
                    let mut s = tcp(addr);
                    s.write_all(&upgrade_request(addr, "/echo")).unwrap();
                    let (head, _) = read_http_head(&mut s);
                    if head.starts_with("HTTP/1.1 101") {
                        admitted.fetch_add(1, Ordering::Relaxed);
                        held.push(s);
                    } else {
                        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                held
            })
        })
        .collect();
    let held: Vec<Vec<TcpStream>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let (admitted_n, refused_n) = (
        admitted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert_eq!(admitted_n + refused_n, 480);
    assert!(
        admitted_n < MAX,
        "{admitted_n} admitted past --max-connections {MAX}"
    );
    assert!(refused_n >= 480 - MAX, "{refused_n} refused");
    assert!(stat(admin, "counters", "refused_max_connections") >= refused_n as u64);
    drop(held);
    // Places free up again once the storm is gone.
    eventually("admitted again after the storm", RECV_TIMEOUT, || {
        Client::try_connect(&server.url("/echo")).ok()
    });
    steady.finish(serial, "connection storm");
    assert_no_panic(&server);
}

#[test]
fn kill_9_under_load_loses_nothing_that_was_snapshotted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("abuse-kill9");
    let dir_s = dir.to_str().unwrap().to_owned();
    let args = [
        "--snapshot-dir",
        &dir_s,
        "--snapshot-interval-ms",
        "200",
        "--reconnect-grace-ms",
        "60000",
    ];
    let (mut server, _admin) = start(&args);
    // Load: 12 instances, 3 players each, every player sending an input
    // per tick and reading its updates.
    let stop = Arc::new(AtomicBool::new(false));
    let players: Vec<_> = (0..36)
        .map(|i| {
            let id = format!("load-{}", i % 12);
            let (mut c, _) = player(&server.play_url(&id), &format!("p{i}"));
            c.join(Some(&id));
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seq = 0;
                let ws = c.ws_mut();
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let input = ClientEncoder::new().input(seq, 0.5, -0.5, 0).to_vec();
                    // The connection ends at the kill: that is the point.
                    if ws.send(tungstenite::Message::binary(input)).is_err() {
                        return;
                    }
                    loop {
                        match ws.read() {
                            Ok(tungstenite::Message::Binary(_)) => break,
                            Ok(_) => {}
                            Err(tungstenite::Error::Io(e))
                                if matches!(
                                    e.kind(),
                                    ErrorKind::WouldBlock | ErrorKind::TimedOut
                                ) =>
                            {
                                break
                            }
                            Err(_) => return,
                        }
                    }
                }
            })
        })
        .collect();
    // Wait for a snapshot that holds every instance with all its players.
    let snapshotted = eventually(
        "a snapshot of the loaded node",
        Duration::from_secs(10),
        || {
            let report = inspect(&dir);
            let instances = snapshot_players(&report);
            (instances.len() == 12 && instances.iter().all(|(_, _, p)| *p == 3))
                .then_some(instances)
        },
    );
    std::thread::sleep(Duration::from_millis(300)); // let a later one land mid-write, maybe
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for p in players {
        let _ = p.join();
    }
    // What a restart uses is at least as new as what was seen above, and
    // the restart restores exactly that: each instance's tick and world
    // (checksum of the rebuilt state), and its seats.
    let newest = snapshot_instances(&inspect(&dir));
    let mut restart_args = args.to_vec();
    restart_args.extend(["--log-level", "info,shardline::shard::snapshots=debug"]);
    let (restarted, admin) = start(&restart_args);
    for (id, tick, seats) in &snapshotted {
        let saved = newest
            .iter()
            .find(|s| &s.id == id)
            .expect("still in the snapshot");
        assert!(saved.tick >= *tick, "{id}: the snapshot went back in time");
        let mark = format!("instance={id} ");
        restarted.wait_log(&mark, RECV_TIMEOUT);
        let log = restarted.log();
        let line = log
            .lines()
            .find(|l| l.contains("instance restored") && l.contains(&mark))
            .expect("logged above");
        assert!(
            line.contains(&format!("tick={} ", saved.tick))
                && line.ends_with(&format!("state_crc32={}", saved.state_crc32)),
            "{id}: restored as {line:?}, the newest valid snapshot holds {saved:?}"
        );
        let live = get_json(admin, &format!("/instances/{id}"));
        assert_eq!(
            live["seats"].as_array().unwrap().len() as u64,
            *seats,
            "{id}: seats restored"
        );
    }
    assert_no_panic(&restarted);
    drop(restarted);
}

fn inspect(dir: &std::path::Path) -> serde_json::Value {
    let out = shardline_cli(&["snapshot", "inspect", dir.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json")
}

/// An instance in the newest valid snapshot file of its shard.
#[derive(Debug)]
struct Saved {
    id: String,
    tick: u64,
    state_crc32: String,
}

/// Every instance of the newest valid (verdict ok) file of each shard,
/// chosen here from the per-file facts of `snapshot inspect --json`.
fn snapshot_instances(report: &serde_json::Value) -> Vec<Saved> {
    let mut newest: std::collections::BTreeMap<u64, (u64, &serde_json::Value)> = Default::default();
    for f in report["files"].as_array().into_iter().flatten() {
        if f["verdict"] != "ok" {
            continue;
        }
        let (shard, generation) = (
            f["shard"].as_u64().unwrap(),
            f["generation"].as_u64().unwrap(),
        );
        if newest.get(&shard).is_none_or(|(g, _)| generation > *g) {
            newest.insert(shard, (generation, f));
        }
    }
    newest
        .values()
        .flat_map(|(_, f)| f["instances"].as_array().cloned().unwrap_or_default())
        .map(|i| Saved {
            id: i["id"].as_str().unwrap().to_owned(),
            tick: i["tick"].as_u64().unwrap(),
            state_crc32: i["state_crc32"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// (id, tick, players) of every instance in the newest valid files.
fn snapshot_players(report: &serde_json::Value) -> Vec<(String, u64, u64)> {
    report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["in_use"].as_bool() == Some(true))
        .flat_map(|f| f["instances"].as_array().cloned().unwrap_or_default())
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["tick"].as_u64().unwrap(),
                i["players"].as_u64().unwrap(),
            )
        })
        .collect()
}
