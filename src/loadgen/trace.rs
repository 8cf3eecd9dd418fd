//! `shardline loadgen --trace FILE`: players over time from a CSV trace
//! (`seconds,players`, linear between rows), played `--accel` times faster
//! than written, against a fleet's region: each new player asks the
//! directory for the node of the region with room and the fewest players
//! (as `/v1/route?region=` would), connects, says Hello and Joins; players
//! leave (a clean close) when the trace goes down; a player sent away by an
//! evacuation follows `Transfer` and resumes with its token.
//!
//! Measured (after `--warmup` trace seconds): joins refused (no node with
//! room, HTTP 503, a refusal on Join, or a first connection that failed
//! any other way — a reset, a timeout; a refused player tries again
//! after [`RETRY_AFTER`]), the players short of the trace (trace
//! player-seconds), input → update latency (from each input's send to the
//! first StateUpdate acknowledging it), the nodes the region ran
//! (node-seconds, in trace time) and how often their number changed, the
//! players moved by Transfer and their gap (last update on the old node to
//! the first on the new one), unexpected disconnections; and for a trace
//! whose largest step is a spike, the time from the spike's start until
//! the region's capacity holds the spike's players.
//!
//! Blocking threads, one per player: a trace drives hundreds of players,
//! not tens of thousands (see the open-loop generator for those).

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde_json::json;
use tungstenite::{Message, WebSocket};

use crate::directory::keys;
use crate::directory::route::NodeInfo;
use crate::protocol::{decode_server, peek_state_update, ClientEncoder, ServerMsg};

/// Most rows a trace may have.
pub const TRACE_ROWS_MAX: usize = 100_000;
/// Most players a trace may ask for at once (one thread each).
pub const TRACE_PLAYERS_MAX: usize = 2_000;
/// A refused player tries again after this (wall time).
pub const RETRY_AFTER: Duration = Duration::from_millis(250);
/// How often the players are matched to the trace and the fleet is read.
const STEP: Duration = Duration::from_millis(50);
/// Players started per step at most (a spike is spread over a few steps).
const STARTS_PER_STEP_MAX: usize = 64;
/// Bound on connect + upgrade + Hello + Join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Inputs remembered for latency (a ring); older ones are not measured.
const INPUTS_TRACKED: usize = 256;
/// Longest wait for the server's answer to our Close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Resumes after an unexpected close one player tries in its life.
const RESUMES_MAX: u32 = 3;

/// The trace: (seconds, players), seconds increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub rows: Vec<(f64, f64)>,
}

impl Trace {
    pub fn parse(text: &str) -> Result<Trace, String> {
        let mut rows: Vec<(f64, f64)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty()
                || line.starts_with('#')
                || (n == 0 && line.starts_with(|c: char| c.is_alphabetic()))
            {
                continue;
            }
            let (s, p) = line
                .split_once(',')
                .ok_or_else(|| format!("line {}: expected seconds,players", n + 1))?;
            let s: f64 = s
                .trim()
                .parse()
                .map_err(|_| format!("line {}: {s:?} is not seconds", n + 1))?;
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("line {}: {p:?} is not a player count", n + 1))?;
            if !(s.is_finite() && s >= 0.0 && p.is_finite() && p >= 0.0) {
                return Err(format!("line {}: negative or not finite", n + 1));
            }
            if p > TRACE_PLAYERS_MAX as f64 {
                return Err(format!(
                    "line {}: {p} players; at most {TRACE_PLAYERS_MAX}",
                    n + 1
                ));
            }
            if rows.last().is_some_and(|(prev, _)| s <= *prev) {
                return Err(format!("line {}: seconds must increase", n + 1));
            }
            rows.push((s, p));
            if rows.len() > TRACE_ROWS_MAX {
                return Err(format!("more than {TRACE_ROWS_MAX} rows"));
            }
        }
        if rows.len() < 2 {
            return Err("at least two rows are needed".into());
        }
        Ok(Trace { rows })
    }

    pub fn end(&self) -> f64 {
        self.rows.last().expect("two rows").0
    }

    /// Players wanted at trace time `t` (linear between rows).
    pub fn at(&self, t: f64) -> f64 {
        let i = self.rows.partition_point(|(s, _)| *s <= t);
        if i == 0 {
            return self.rows[0].1;
        }
        if i == self.rows.len() {
            return self.rows[i - 1].1;
        }
        let ((s0, p0), (s1, p1)) = (self.rows[i - 1], self.rows[i]);
        p0 + (p1 - p0) * (t - s0) / (s1 - s0)
    }

    /// The largest rise between two rows when it is at least a quarter of
    /// the peak: (its start, the players after it).
    pub fn spike(&self) -> Option<(f64, f64)> {
        let peak = self.rows.iter().map(|r| r.1).fold(0.0, f64::max);
        self.rows
            .windows(2)
            .map(|w| (w[0].0, w[1].1, w[1].1 - w[0].1))
            .filter(|(_, _, rise)| *rise >= peak / 4.0)
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .map(|(t, p, _)| (t, p))
    }
}

/// `--trace` settings.
#[derive(Debug, Clone)]
pub struct TraceConfig {
    pub trace: Trace,
    pub accel: f64,
    pub directory: String,
    pub region: String,
    pub input_rate_hz: f64,
    /// Trace seconds not measured (the fleet learns meanwhile).
    pub warmup_s: f64,
}

/// What the players share (a lock taken a few times per second per player).
#[derive(Default)]
struct Shared {
    latency_us: Option<Histogram<u64>>,
    gaps_us: Vec<u64>,
    refused: u64,
    joined: u64,
    disconnects: u64,
    refusals: HashMap<String, u64>,
}

/// A player's handle.
struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// How long after its connection was admitted a player is surely in its
/// node's registry entry: a node publishes a change that matters within
/// `PUBLISH_POLL` + `PUBLISH_GAP_MIN` (75 ms), then one read of the fleet.
const PLACEMENT_SETTLE: Duration = Duration::from_millis(150);

/// Where a player sent to a node stands, for the picker.
#[derive(Default)]
struct Placement {
    /// Set once its connection was upgraded (the node counts it from then).
    connected_at: std::sync::OnceLock<Instant>,
    /// Set when it gave up without connecting.
    failed: AtomicBool,
}

/// The fleet as the directory shows it, refreshed every step.
#[derive(Default)]
struct Fleet {
    nodes: Vec<NodeInfo>,
    /// Players sent to a node whose registry entry may not count them yet.
    pending: Vec<(String, Arc<Placement>)>,
}

impl Fleet {
    /// The fleet as read at `read_at`: placements the entries surely count
    /// by now (or that failed) are forgotten.
    fn refresh(&mut self, nodes: Vec<NodeInfo>, read_at: Instant) {
        self.nodes = nodes;
        self.pending.retain(|(_, p)| {
            !p.failed.load(Ordering::Relaxed)
                && p.connected_at
                    .get()
                    .is_none_or(|t| read_at.saturating_duration_since(*t) < PLACEMENT_SETTLE)
        });
    }

    /// The node with room and the fewest players, counting those sent to it
    /// that its registry entry may not show yet.
    fn pick(&mut self, region: &str) -> Option<(NodeInfo, Arc<Placement>)> {
        let pending = |id: &str| self.pending.iter().filter(|(n, _)| n == id).count();
        let n = self
            .nodes
            .iter()
            .filter(|n| n.region == region && n.healthy && !n.draining)
            .map(|n| (n, n.load + pending(&n.id)))
            .filter(|(n, load)| *load < n.capacity)
            .min_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)))
            .map(|(n, _)| n.clone())?;
        let placement = Arc::new(Placement::default());
        self.pending.push((n.id.clone(), placement.clone()));
        Some((n, placement))
    }
}

fn read_fleet(conn: &mut redis::Connection) -> redis::RedisResult<Vec<NodeInfo>> {
    let ids: Vec<String> = redis::cmd("HKEYS").arg(keys::NODES).query(conn)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let node_keys: Vec<String> = ids.iter().map(|id| keys::node(id)).collect();
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&node_keys).query(conn)?;
    Ok(values
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_str(&v).ok())
        .collect())
}

/// Runs the trace; the report as JSON.
pub fn run(cfg: &TraceConfig) -> anyhow::Result<serde_json::Value> {
    let client = redis::Client::open(cfg.directory.as_str())
        .with_context(|| format!("--directory {}", crate::directory::redacted(&cfg.directory)))?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .context("cannot reach the directory")?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let shared = Arc::new(Mutex::new(Shared {
        latency_us: Some(Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds")),
        ..Default::default()
    }));
    let measuring = Arc::new(AtomicBool::new(cfg.warmup_s <= 0.0));
    let mut fleet = Fleet::default();
    let mut players: VecDeque<Running> = VecDeque::new();
    let mut retry_until = Instant::now();
    let start = Instant::now();
    let wall_end = Duration::from_secs_f64(cfg.trace.end() / cfg.accel);
    let spike = cfg.trace.spike();
    let mut spike_ready_s: Option<f64> = None;
    let (mut node_s, mut short_s, mut ups, mut downs, mut nodes_max) =
        (0.0f64, 0.0f64, 0u64, 0u64, 0usize);
    let mut last_count: Option<usize> = None;
    let mut peak_players = 0usize;
    let mut next_name = 0u64;
    let mut last_step = start;
    loop {
        let now = Instant::now();
        let wall = now - start;
        if wall >= wall_end {
            break;
        }
        let t = wall.as_secs_f64() * cfg.accel;
        let dt = (now - last_step).as_secs_f64() * cfg.accel;
        last_step = now;
        if t >= cfg.warmup_s {
            measuring.store(true, Ordering::Relaxed);
        }
        let measured = measuring.load(Ordering::Relaxed);
        let read_at = Instant::now();
        if let Ok(nodes) = read_fleet(&mut conn) {
            fleet.refresh(nodes, read_at);
        }
        let region: Vec<&NodeInfo> = fleet
            .nodes
            .iter()
            .filter(|n| n.region == cfg.region)
            .collect();
        let count = region.len();
        let capacity: usize = region
            .iter()
            .filter(|n| !n.draining)
            .map(|n| n.capacity)
            .sum();
        // Players who ended (refused, or their node went away) leave the list.
        players.retain(|p| !p.thread.is_finished());
        let want = cfg.trace.at(t).round() as usize;
        if measured {
            node_s += count as f64 * dt;
            short_s += want.saturating_sub(players.len()) as f64 * dt;
            nodes_max = nodes_max.max(count);
            match last_count {
                Some(c) if count > c => ups += 1,
                Some(c) if count < c => downs += 1,
                _ => {}
            }
        }
        last_count = Some(count);
        peak_players = peak_players.max(players.len());
        if let Some((at, players_after)) = spike {
            if t >= at && spike_ready_s.is_none() && capacity as f64 >= players_after {
                spike_ready_s = Some(t - at);
            }
        }
        // Match the players to the trace.
        while players.len() > want {
            let p = players.pop_back().expect("non-empty");
            p.stop.store(true, Ordering::Relaxed);
        }
        if now >= retry_until {
            let mut started = 0;
            while players.len() < want && started < STARTS_PER_STEP_MAX {
                let Some((node, placement)) = fleet.pick(&cfg.region) else {
                    if measured {
                        let mut s = shared.lock().expect("stats");
                        s.refused += 1;
                        *s.refusals.entry("no_node_with_room".into()).or_default() += 1;
                    }
                    retry_until = now + RETRY_AFTER;
                    break;
                };
                next_name += 1;
                players.push_back(spawn_player(
                    node.url,
                    placement,
                    format!("tr{next_name}"),
                    cfg.input_rate_hz,
                    shared.clone(),
                    measuring.clone(),
                ));
                started += 1;
            }
        }
        std::thread::sleep(STEP.saturating_sub(now.elapsed()));
    }
    for p in &players {
        p.stop.store(true, Ordering::Relaxed);
    }
    for p in players {
        let _ = p.thread.join();
    }
    let s = shared.lock().expect("stats");
    let h = s.latency_us.as_ref().expect("histogram");
    let mut gaps = s.gaps_us.clone();
    gaps.sort_unstable();
    let pct = |v: &[u64], q: f64| -> Option<f64> {
        (!v.is_empty()).then(|| {
            v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0
        })
    };
    Ok(json!({
        "trace_s": cfg.trace.end(),
        "accel": cfg.accel,
        "warmup_s": cfg.warmup_s,
        "players_peak": peak_players,
        "joins": s.joined,
        "joins_refused": s.refused,
        "refusals": s.refusals,
        "players_short_s": short_s.round(),
        "input_to_update_ms_p50": (!h.is_empty()).then(|| h.value_at_quantile(0.5) as f64 / 1000.0),
        "input_to_update_ms_p99": (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0),
        "inputs_measured": h.len(),
        "node_seconds": node_s.round(),
        "nodes_max": nodes_max,
        "scale_ups": ups,
        "scale_downs": downs,
        "players_moved": gaps.len(),
        "move_gap_ms_p50": pct(&gaps, 0.5),
        "move_gap_ms_p99": pct(&gaps, 0.99),
        "move_gap_ms_max": gaps.last().map(|g| *g as f64 / 1000.0),
        "disconnects": s.disconnects,
        "spike_capacity_ready_s": spike_ready_s,
        "spike_capacity_ready_wall_ms": spike_ready_s.map(|s| (s / cfg.accel * 1000.0).round()),
    }))
}

fn spawn_player(
    url: String,
    placement: Arc<Placement>,
    name: String,
    rate_hz: f64,
    shared: Arc<Mutex<Shared>>,
    measuring: Arc<AtomicBool>,
) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new()
        .name("trace-player".into())
        .stack_size(256 << 10)
        .spawn({
            let stop = stop.clone();
            move || {
                let period = Duration::from_secs_f64(1.0 / rate_hz);
                let placed = &placement;
                let outcome = player(&url, &name, period, &stop, &shared, &measuring, placed);
                if placed.connected_at.get().is_none() {
                    placed.failed.store(true, Ordering::Relaxed);
                }
                if let Err(why) = outcome {
                    if measuring.load(Ordering::Relaxed) {
                        let mut s = shared.lock().expect("stats");
                        if why.starts_with("refused") {
                            s.refused += 1;
                        } else {
                            s.disconnects += 1;
                        }
                        *s.refusals.entry(why).or_default() += 1;
                    }
                }
            }
        })
        .expect("spawn a player thread");
    Running { stop, thread }
}

type Ws = WebSocket<TcpStream>;

/// Connects, upgrades, says Hello (with a token: resumes) and, for a new
/// player, Joins; returns the socket and the token. Errors starting with
/// "refused" count as refused joins.
fn open(url: &str, path: &str, name: &str, token: Option<&str>) -> Result<(Ws, String), String> {
    let host = url.strip_prefix("ws://").ok_or("not a ws:// URL")?;
    let addr: SocketAddr = host
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("bad node URL {url}: {e}"))?;
    let stream = TcpStream::connect_timeout(&addr, JOIN_TIMEOUT)
        .map_err(|e| format!("refused_connect_{:?}", e.kind()))?;
    stream.set_nodelay(true).ok();
    stream.set_read_timeout(Some(JOIN_TIMEOUT)).ok();
    let (mut ws, _) = tungstenite::client(format!("{url}{path}"), stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r)) => {
            format!("refused_http_{}", r.status().as_u16())
        }
        e => format!("handshake: {e}"),
    })?;
    let mut enc = ClientEncoder::new();
    // With a token this is a resume: Welcome, then Joined by itself.
    let resuming = token.is_some();
    send(&mut ws, enc.hello(name, token))?;
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let token = match next(&mut ws, deadline)? {
        ServerMsg::Welcome { resume_token, .. } => resume_token,
        ServerMsg::Error { code, .. } => {
            return Err(format!(
                "refused_{}",
                code.variant_name().unwrap_or("error")
            ))
        }
        m => return Err(format!("expected Welcome, got {m:?}")),
    };
    if token.is_empty() {
        return Err("Welcome without a token".into());
    }
    if !resuming {
        send(&mut ws, enc.join(None, true))?;
    }
    loop {
        match next(&mut ws, deadline)? {
            ServerMsg::Joined { .. } => return Ok((ws, token)),
            ServerMsg::Error { code, .. } => {
                return Err(format!(
                    "refused_{}",
                    code.variant_name().unwrap_or("error")
                ))
            }
            _ => {}
        }
    }
}

fn send(ws: &mut Ws, bytes: &[u8]) -> Result<(), String> {
    ws.send(Message::binary(bytes.to_vec()))
        .map_err(|e| format!("send: {e}"))
}

fn next(ws: &mut Ws, deadline: Instant) -> Result<ServerMsg, String> {
    loop {
        if Instant::now() >= deadline {
            return Err("refused_timeout".into());
        }
        match ws.read() {
            Ok(Message::Binary(b)) => {
                return decode_server(&b).map_err(|e| format!("bad server message: {e:?}"))
            }
            Ok(Message::Close(_)) => return Err("closed during set-up".into()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// One player until told to stop (a clean close) or its connection ends.
fn player(
    url: &str,
    name: &str,
    period: Duration,
    stop: &AtomicBool,
    shared: &Mutex<Shared>,
    measuring: &AtomicBool,
    placement: &Placement,
) -> Result<(), String> {
    // A join that fails for any reason (a reset, a timeout) is a join the
    // player did not get: counted with the refusals.
    let (mut ws, token) = open(url, "/play", name, None).map_err(|e| {
        if e.starts_with("refused") {
            e
        } else {
            format!("refused_join_failed: {e}")
        }
    })?;
    let _ = placement.connected_at.set(Instant::now());
    // Where the seat is now (a Transfer moves it), for a resume.
    let mut seat_url = url.to_owned();
    let mut seat_path = "/play".to_owned();
    let mut resumes = 0u32;
    if measuring.load(Ordering::Relaxed) {
        shared.lock().expect("stats").joined += 1;
    }
    let mut enc = ClientEncoder::new();
    let mut sent: VecDeque<(u32, Instant)> = VecDeque::with_capacity(INPUTS_TRACKED);
    let mut latencies: Vec<u64> = Vec::new();
    let mut seq = 0u32;
    let mut next_input = Instant::now();
    let mut last_update = Instant::now();
    let mut moved_at: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            close_cleanly(&mut ws);
            flush_latencies(shared, &mut latencies, measuring);
            return Ok(());
        }
        let now = Instant::now();
        if now >= next_input {
            seq += 1;
            if sent.len() == INPUTS_TRACKED {
                sent.pop_front();
            }
            sent.push_back((seq, now));
            send(&mut ws, enc.input(seq, 0.3, -0.2, 0))?;
            next_input += period;
            if next_input < now {
                next_input = now + period;
            }
        }
        let wait = next_input
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        ws.get_ref().set_read_timeout(Some(wait)).ok();
        let lost = match ws.read() {
            Ok(Message::Binary(b)) => Ok(b),
            Ok(Message::Close(frame)) => Err(format!(
                "closed_by_server_{}",
                frame.map_or(0, |f| u16::from(f.code))
            )),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => Err(format!("connection_lost: {e}")),
        };
        let msg = match lost {
            Ok(b) => b,
            Err(why) => {
                // As the SDK does: take the seat back with the token (at
                // most RESUMES_MAX times), counted as a disconnection.
                if measuring.load(Ordering::Relaxed) {
                    let mut s = shared.lock().expect("stats");
                    s.disconnects += 1;
                    *s.refusals.entry(why.clone()).or_default() += 1;
                }
                resumes += 1;
                if resumes > RESUMES_MAX {
                    return Err(why);
                }
                let (ws2, _) = open(&seat_url, &seat_path, name, Some(&token))
                    .map_err(|e| format!("resume_failed: {e}"))?;
                ws = ws2;
                sent.clear();
                continue;
            }
        };
        let now = Instant::now();
        if let Some((_tick, acked)) = peek_state_update(&msg) {
            while sent.front().is_some_and(|(s, _)| *s <= acked) {
                let (_, at) = sent.pop_front().expect("front");
                latencies.push(now.duration_since(at).as_micros() as u64);
            }
            if let Some(from) = moved_at.take() {
                if measuring.load(Ordering::Relaxed) {
                    shared
                        .lock()
                        .expect("stats")
                        .gaps_us
                        .push(now.duration_since(from).as_micros() as u64);
                }
            }
            last_update = now;
            if latencies.len() >= 256 {
                flush_latencies(shared, &mut latencies, measuring);
            }
            continue;
        }
        if let Ok(ServerMsg::Transfer { url, instance_id }) = decode_server(&msg) {
            // Evacuated: resume at the new owner with the same token.
            seat_path = format!("/play?instance={instance_id}");
            let (ws2, _) = open(&url, &seat_path, name, Some(&token))
                .map_err(|e| format!("transfer_failed: {e}"))?;
            seat_url = url;
            ws = ws2;
            moved_at = Some(last_update);
            // Inputs sent to the old node and not acknowledged are gone
            // (never applied): stop waiting for them.
            sent.clear();
        }
    }
}

/// The close handshake: our Close, then read until the server's (bounded
/// by [`CLOSE_TIMEOUT`]). Dropping the socket with updates still unread
/// would send a TCP reset that can overtake the Close frame: the server
/// would then see a dropped player and keep its seat for the grace period.
fn close_cleanly(ws: &mut Ws) {
    let _ = ws.close(None);
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .ok();
    while Instant::now() < deadline {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let _ = ws.flush();
            }
            Err(_) => return, // closed: the handshake is done
        }
    }
}

fn flush_latencies(shared: &Mutex<Shared>, v: &mut Vec<u64>, measuring: &AtomicBool) {
    if measuring.load(Ordering::Relaxed) && !v.is_empty() {
        let mut s = shared.lock().expect("stats");
        let h = s.latency_us.as_mut().expect("histogram");
        for us in v.iter() {
            h.saturating_record((*us).max(1));
        }
    }
    v.clear();
}

/// Reads and parses `--trace FILE`.
pub fn load(path: &Path) -> anyhow::Result<Trace> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--trace {}", path.display()))?;
    Trace::parse(&text).map_err(|e| anyhow::anyhow!("--trace {}: {e}", path.display()))
}

/// Checks the flags that go with `--trace`.
pub fn config(
    path: &Path,
    accel: f64,
    directory: Option<&str>,
    region: &str,
    input_rate_hz: f64,
    warmup_s: f64,
) -> anyhow::Result<TraceConfig> {
    let Some(directory) = directory else {
        bail!("--trace needs --directory (players are routed by the fleet's directory)");
    };
    if !(accel > 0.0 && accel.is_finite()) {
        bail!("--accel {accel}: must be above 0");
    }
    if !(input_rate_hz > 0.0 && input_rate_hz <= 1000.0) {
        bail!("--input-rate {input_rate_hz}: 0 < rate ≤ 1000 Hz with --trace");
    }
    let trace = load(path)?;
    if !(warmup_s >= 0.0 && warmup_s < trace.end()) {
        bail!(
            "--warmup {warmup_s}: must be below the trace's length ({} s)",
            trace.end()
        );
    }
    Ok(TraceConfig {
        trace,
        accel,
        directory: directory.to_owned(),
        region: region.to_owned(),
        input_rate_hz,
        warmup_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_parse_interpolate_and_find_their_spike() {
        let t = Trace::parse("seconds,players\n0,10\n100,110\n# note\n200,110\n201,400\n300,400\n")
            .unwrap();
        assert_eq!(t.at(50.0), 60.0);
        assert_eq!(t.at(-1.0), 10.0);
        assert_eq!(t.at(1e9), 400.0);
        assert_eq!(t.spike(), Some((200.0, 400.0)));
        let smooth = Trace::parse("0,10\n100,18\n200,26\n300,34\n400,40").unwrap();
        assert_eq!(smooth.spike(), None, "no step of a quarter of the peak");
        assert!(Trace::parse("0,1").is_err());
        assert!(Trace::parse("0,1\n0,2").unwrap_err().contains("increase"));
        assert!(Trace::parse("0,1\n1,-2").is_err());
        assert!(Trace::parse("0,1\n1,x").is_err());
        assert!(Trace::parse("0,1\n1,1000000")
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn routing_spreads_players_over_nodes_with_room() {
        let node = |id: &str, load: usize, draining: bool| NodeInfo {
            id: id.into(),
            region: "eu".into(),
            location: String::new(),
            url: format!("ws://{id}"),
            shards: 1,
            capacity: 3,
            load,
            instances: 0,
            healthy: true,
            draining,
        };
        let nodes = || vec![node("a", 1, false), node("b", 2, false), node("c", 0, true)];
        let mut f = Fleet::default();
        let t0 = Instant::now();
        f.refresh(nodes(), t0);
        let placed: Vec<(NodeInfo, Arc<Placement>)> = (0..3).filter_map(|_| f.pick("eu")).collect();
        let picks: Vec<&str> = placed.iter().map(|(n, _)| n.id.as_str()).collect();
        assert_eq!(picks, ["a", "a", "b"]);
        assert!(f.pick("eu").is_none(), "every node full or draining");
        assert!(f.pick("us").is_none());

        // A fresh read that does not show them yet still counts them...
        f.refresh(nodes(), t0 + Duration::from_millis(10));
        assert!(
            f.pick("eu").is_none(),
            "placements not yet in the registry still count"
        );
        // ...until they connected and the entries had time to show them; a
        // placement that failed counts no more.
        placed[0].1.connected_at.set(t0).unwrap();
        placed[1].1.failed.store(true, Ordering::Relaxed);
        f.refresh(nodes(), t0 + PLACEMENT_SETTLE);
        let again: Vec<String> = (0..3)
            .filter_map(|_| f.pick("eu"))
            .map(|(n, _)| n.id)
            .collect();
        assert_eq!(again, ["a", "a"], "b still has one pending: it is full");
    }
}
