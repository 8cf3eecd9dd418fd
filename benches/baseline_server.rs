//! The baseline shardline is measured against: the same `/echo` and `/play`
//! served the way a typical Rust developer would write it — a tokio
//! multi-thread runtime, tokio-tungstenite with its default configuration,
//! one task per connection plus one writer task fed by an mpsc channel, one
//! `ws.send` (one socket write) per message, one tick task per game instance,
//! and `Arc<Mutex<…>>` for shared state.
//!
//! It speaks the same FlatBuffers protocol (`shardline::protocol`) and runs
//! the same game (`shardline::game::Instance` around the reference arena),
//! so the load generator cannot tell the two servers apart. It is meant to
//! be reasonable, not a straw man: TCP_NODELAY is set, the mutexes are held
//! only for short, non-awaiting sections, and the writer task is the only
//! one that touches the socket's write half.
//!
//! Run as a program (`harness = false`):
//!
//! ```sh
//! cargo bench --bench baseline_server -- --listen 127.0.0.1:9300 --tick-rate 30 \
//!     --admin-listen 127.0.0.1:9301
//! ```
//!
//! `GET /stats` on the admin address returns its counters as JSON
//! (`ticks`, `ticks_overrun`, `state_updates`, `socket_writes`, …), the same
//! names as shardline's `/stats` counters where they mean the same thing.
//!
//! # Layout
//! - this file: flags, runtime, accept and routing by path, `/echo`, admin.
//! - `baseline/play.rs`: the `/play` session, rooms and their tick tasks.

#[path = "baseline/play.rs"]
mod play;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

/// Largest admin request head read, bytes; the admin endpoint only needs the
/// request line.
const ADMIN_REQUEST_BYTES_MAX: usize = 4096;

#[derive(Debug, Parser)]
#[command(about = "Baseline tokio + tokio-tungstenite game server (benchmarks only)")]
struct Args {
    /// Address of the WebSocket listener (/echo and /play).
    #[arg(long, default_value = "127.0.0.1:9300")]
    listen: SocketAddr,
    /// Instance tick rate, Hz.
    #[arg(long, default_value_t = 30)]
    tick_rate: u16,
    /// Tokio worker threads. [default: cores available to the process, so 1
    /// under `taskset -c 0`]
    #[arg(long)]
    threads: Option<usize>,
    /// Plain HTTP listener answering `GET /stats` with the counters as JSON.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Players per game instance (shardline's default).
    #[arg(long, default_value_t = 64)]
    players_per_instance_max: usize,
    /// Inputs applied per player per tick (shardline's default).
    #[arg(long, default_value_t = 4)]
    inputs_per_tick_max: usize,
    /// `cargo bench` passes `--bench` to every bench target; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Counters, shared by every task (atomics: the runtime may move tasks
/// between worker threads).
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicI64,
    pub messages_in: AtomicU64,
    pub socket_writes: AtomicU64,
    pub ticks: AtomicU64,
    /// Ticks that started more than a tenth of an interval late.
    pub ticks_late: AtomicU64,
    /// Ticks that started at least one whole interval late.
    pub ticks_overrun: AtomicU64,
    pub state_updates: AtomicU64,
    /// Updates dropped because a player's outbox channel was full.
    pub updates_dropped: AtomicU64,
    pub inputs_applied: AtomicU64,
}

impl Stats {
    fn to_json(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "server": "baseline",
            "connections_open": self.connections_open.load(Ordering::Relaxed),
            "counters": {
                "connections_accepted": get(&self.connections_accepted),
                "messages_in": get(&self.messages_in),
                "socket_writes": get(&self.socket_writes),
                "ticks": get(&self.ticks),
                "ticks_late": get(&self.ticks_late),
                "ticks_overrun": get(&self.ticks_overrun),
                "state_updates": get(&self.state_updates),
                "updates_dropped": get(&self.updates_dropped),
                "inputs_applied": get(&self.inputs_applied),
            }
        })
        .to_string()
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let stats = Arc::new(Stats::default());
    let game = Arc::new(play::Game::new(
        Duration::from_secs_f64(1.0 / f64::from(args.tick_rate.max(1))),
        args.tick_rate,
        shardline::game::InstanceLimits {
            players_max: args.players_per_instance_max,
            inputs_per_tick_max: args.inputs_per_tick_max,
        },
        stats.clone(),
    ));
    if let Some(addr) = args.admin_listen {
        let admin = TcpListener::bind(addr).await?;
        tokio::spawn(serve_admin(admin, stats.clone()));
    }
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!(
        "baseline: listening on {} (tick {} Hz)",
        args.listen, args.tick_rate
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("baseline: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(handle_connection(stream, game.clone(), stats.clone()));
    }
}

/// Upgrades the connection and routes it by path.
// The callback's error type is tungstenite's `ErrorResponse` (an HTTP
// response); its size is the library's choice, not ours.
#[allow(clippy::result_large_err)]
async fn handle_connection(stream: TcpStream, game: Arc<play::Game>, stats: Arc<Stats>) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().path().to_owned();
        if path == "/echo" || path == "/play" {
            Ok(resp)
        } else {
            let mut not_found = ErrorResponse::new(None);
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            Err(not_found)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    stats.connections_open.fetch_add(1, Ordering::Relaxed);
    if path == "/echo" {
        echo(ws, &stats).await;
    } else {
        play::session(ws, game).await;
    }
    stats.connections_open.fetch_sub(1, Ordering::Relaxed);
}

/// Every binary or text message comes back unchanged, one `send` each.
async fn echo(mut ws: tokio_tungstenite::WebSocketStream<TcpStream>, stats: &Stats) {
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Binary(_) | Message::Text(_) => {
                stats.messages_in.fetch_add(1, Ordering::Relaxed);
                if ws.send(msg).await.is_err() {
                    return;
                }
                stats.socket_writes.fetch_add(1, Ordering::Relaxed);
            }
            Message::Close(_) => {
                // tungstenite queued the close reply; read on until the end
                // so it is flushed and the handshake completes.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// Answers every request on the admin listener with the counters. Uses the
/// readiness API (`readable` / `try_read`) so no extra tokio feature is needed.
async fn serve_admin(listener: TcpListener, stats: Arc<Stats>) {
    while let Ok((stream, _)) = listener.accept().await {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut head = [0u8; ADMIN_REQUEST_BYTES_MAX];
            let mut read = 0;
            while !head[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < head.len() {
                if stream.readable().await.is_err() {
                    return;
                }
                match stream.try_read(&mut head[read..]) {
                    Ok(0) => return,
                    Ok(n) => read += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            let body = stats.to_json();
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let mut bytes = reply.as_bytes();
            while !bytes.is_empty() {
                if stream.writable().await.is_err() {
                    return;
                }
                match stream.try_write(bytes) {
                    Ok(n) => bytes = &bytes[n..],
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        });
    }
}
