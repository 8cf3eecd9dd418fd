//! One simulated player on /play, set up on its executor: connect, Hello,
//! Join; then its schedules (inputs at a fixed rate, a Ping every
//! interval, each on the player's own phase) and its socket go to the
//! executor's drive (`drive`, `running`), which sends, reads and measures
//! until the run ends.
//!
//! Measured here: the handshake (intended connect time → upgrade) and the
//! join (upgrade → Joined).

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{Bytes, Message};
use futures_util::StreamExt;

use super::connect::{
    close_label, io_kind_label, open_fenced, stream_error_label, until, FencedWs as Ws,
};
use super::running::{Handover, Traffic};
use super::schedule::Schedule;
use super::stats::Metric;
use super::{runner::ThreadCtx, Mode};
use crate::protocol::{decode_server, ClientEncoder, ErrorCode, ServerMsg};

/// Who this player is and when it is meant to connect.
#[derive(Debug, Clone)]
pub struct PlayerPlan {
    /// 0-based index of the player in this process's run.
    pub index: usize,
    /// Intended connect time: handshake time counts from here.
    pub connect_at: Instant,
    pub source: Option<IpAddr>,
}

/// What a finished Join leaves.
struct Seated {
    ws: Ws,
    /// The server's tick period, from Welcome.
    tick_period: Duration,
    joined_at: Instant,
    /// Welcome's `limits.delta_history_ticks` (protocol v2).
    delta_history: u16,
}

/// Runs one player to the end of the run; everything is recorded in the
/// thread's stats.
pub async fn run(ctx: Rc<ThreadCtx>, plan: PlayerPlan) {
    let Mode::Play {
        players_per_instance,
        instance_prefix,
        input_rate_hz,
        ping_interval,
        protocol_version,
        idle_fraction,
    } = &ctx.cfg.mode
    else {
        unreachable!("player tasks run only in play mode");
    };
    let instance = players_per_instance.map(|p| format!("{instance_prefix}-{}", plan.index / p));
    let seated = match join(&ctx, &plan, instance.as_deref(), *protocol_version).await {
        Ok(s) => s,
        Err(reason) => return ctx.stats.borrow_mut().error(reason),
    };
    ctx.stats.borrow_mut().counters.players_joined += 1;
    // Each player's inputs (and pings) keep their own phase against the
    // run's time zero, not against its Joined: see `schedule`.
    let input_period = Duration::from_secs_f64(1.0 / input_rate_hz);
    let inputs = Schedule::phased(ctx.start, input_period, plan.index, seated.joined_at);
    let pings = ping_interval.map(|i| Schedule::phased(ctx.start, i, plan.index, seated.joined_at));
    // Evenly spread: player k is idle when floor((k + 1) f) > floor(k f).
    let k = plan.index as f64;
    let idle = ((k + 1.0) * idle_fraction).floor() > (k * idle_fraction).floor();
    play(&ctx, seated, inputs, pings, *protocol_version, idle);
}

/// Connect, Hello, Join; the error is the report's name for what failed.
/// Connecting to `/play?instance=ID` lands on the instance's shard; a Join
/// that reaches another shard is moved there by the server, transparently.
async fn join(
    ctx: &ThreadCtx,
    plan: &PlayerPlan,
    instance: Option<&str>,
    protocol_version: u16,
) -> Result<Seated, String> {
    let deadline = Instant::now() + ctx.cfg.connect_timeout;
    let url = ctx.cfg.target.request_url(instance);
    let mut ws = open_fenced(&url, ctx.cfg.target.addr, plan.source, deadline).await?;
    let upgraded_at = Instant::now();
    ctx.stats.borrow_mut().record(
        Metric::Handshake,
        upgraded_at.saturating_duration_since(plan.connect_at),
    );
    let mut enc = ClientEncoder::new();
    let name = format!("lg{}", plan.index);
    let hello = enc.hello_version(protocol_version, &name, None);
    send(ctx, &mut ws, hello, deadline).await?;
    let (tick_period, delta_history) = match recv_until(ctx, &mut ws, deadline, "welcome").await? {
        ServerMsg::Welcome {
            tick_rate_hz,
            limits,
            ..
        } if tick_rate_hz > 0 => (
            Duration::from_secs_f64(1.0 / f64::from(tick_rate_hz)),
            limits.delta_history_ticks,
        ),
        ServerMsg::Welcome { .. } => return Err("welcome_without_tick_rate".to_owned()),
        other => return Err(unexpected("welcome", &other)),
    };
    send(ctx, &mut ws, enc.join(instance, true), deadline).await?;
    match recv_until(ctx, &mut ws, deadline, "joined").await? {
        ServerMsg::Joined { .. } => {
            let joined_at = Instant::now();
            ctx.stats.borrow_mut().record(
                Metric::Join,
                joined_at.saturating_duration_since(upgraded_at),
            );
            Ok(Seated {
                ws,
                tick_period,
                joined_at,
                delta_history,
            })
        }
        other => Err(unexpected("joined", &other)),
    }
}

async fn send(ctx: &ThreadCtx, ws: &mut Ws, frame: &[u8], deadline: Instant) -> Result<(), String> {
    let len = frame.len() as u64;
    let msg = Message::Binary(Bytes::copy_from_slice(frame));
    match until(deadline, ws.send(msg)).await {
        None => Err("join_timeout".to_owned()),
        Some(Err(e)) => Err(format!("join_{}", stream_error_label(&e))),
        Some(Ok(())) => {
            let mut stats = ctx.stats.borrow_mut();
            stats.counters.msgs_out += 1;
            stats.counters.bytes_out += len;
            Ok(())
        }
    }
}

/// The next message that answers the set-up (Welcome, Joined or Error), skipping the others (a StateUpdate can race the Joined).
async fn recv_until(
    ctx: &ThreadCtx,
    ws: &mut Ws,
    deadline: Instant,
    waiting_for: &str,
) -> Result<ServerMsg, String> {
    loop {
        let msg = match until(deadline, ws.next()).await {
            None => return Err(format!("{waiting_for}_timeout")),
            Some(None) => return Err(format!("{waiting_for}_vanished")),
            Some(Some(Err(e))) => return Err(format!("{waiting_for}_{}", stream_error_label(&e))),
            Some(Some(Ok(msg))) => msg,
        };
        {
            let mut stats = ctx.stats.borrow_mut();
            stats.counters.msgs_in += 1;
            stats.counters.bytes_in += msg.len() as u64;
        }
        match msg {
            Message::Binary(bytes) => match decode_server(&bytes) {
                Ok(ServerMsg::Error { code, .. }) => return Err(server_error_label(code)),
                Ok(m @ (ServerMsg::Welcome { .. } | ServerMsg::Joined { .. })) => return Ok(m),
                Ok(_) => {}
                Err(_) => return Err("bad_server_message".to_owned()),
            },
            Message::Close(frame) => {
                let code = close_label(frame.map(|f| u16::from(f.code)));
                return Err(format!("{waiting_for}_{code}"));
            }
            Message::Text(_) => return Err("unexpected_text_message".to_owned()),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

fn unexpected(waiting_for: &str, got: &ServerMsg) -> String {
    let kind = format!("{got:?}");
    let kind = kind.split([' ', '{', '(']).next().unwrap_or("message");
    format!("{waiting_for}_got_{}", kind.to_lowercase())
}

pub fn server_error_label(code: ErrorCode) -> String {
    match code.variant_name() {
        Some(name) => format!("server_error_{name}"),
        None => format!("server_error_{}", code.0),
    }
}

/// Hands the joined player to the executor's drive (`drive`), which sends
/// its inputs and reads and measures its updates.
fn play(
    ctx: &ThreadCtx,
    seated: Seated,
    inputs: Schedule,
    pings: Option<Schedule>,
    protocol_version: u16,
    idle: bool,
) {
    // Joined was a complete message: the fence holds every later byte.
    let (stream, unread) = seated.ws.into_inner().into_parts();
    let fd = match dup(&stream) {
        Ok(fd) => fd,
        Err(e) => {
            return ctx
                .stats
                .borrow_mut()
                .error(format!("dup_{}", io_kind_label(&e)))
        }
    };
    drop(stream);
    ctx.drive.run(Handover {
        fd,
        unread,
        traffic: Traffic::Play {
            inputs,
            pings,
            tick_period: seated.tick_period,
            v2_history: (protocol_version >= 2).then_some(seated.delta_history),
            idle,
        },
    });
}

/// A duplicate of a glommio socket's fd (glommio's stream gives up none).
pub fn dup(stream: &impl AsRawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: duplicates an open socket; the new fd is checked and owned once.
    let fd = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
