//! One simulated player on /play: connect, Hello, Join, then inputs at a
//! fixed rate and a Ping every interval until the run ends.
//!
//! Measured here: input → update (from each input's intended send time to
//! the first StateUpdate whose `last_input_seq` covers it), the jitter of
//! update arrivals against the tick period from Welcome, and ping RTT from
//! each Ping's intended send time (carried in `client_time`).

use std::cell::RefCell;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{Bytes, Message};
use futures_util::StreamExt;

use super::conn::{read_frames, Flow};
use super::connect::{close_label, open_fenced, stream_error_label, until, FencedWs as Ws};
use super::pump::Link;
use super::raw::Outlet;
use super::schedule::{InputLedger, Schedule};
use super::stats::Metric;
use super::{runner::ThreadCtx, Mode};
use crate::protocol::{decode_server, peek_state_update, ClientEncoder, ErrorCode, ServerMsg};

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
}

/// Runs one player to the end of the run; everything is recorded in the
/// thread's stats.
pub async fn run(ctx: Rc<ThreadCtx>, plan: PlayerPlan) {
    let Mode::Play {
        players_per_instance,
        instance_prefix,
        input_rate_hz,
        ping_interval,
    } = &ctx.cfg.mode
    else {
        unreachable!("player tasks run only in play mode");
    };
    let instance = players_per_instance.map(|p| format!("{instance_prefix}-{}", plan.index / p));
    let seated = match join(&ctx, &plan, instance.as_deref()).await {
        Ok(s) => s,
        Err(reason) => return ctx.stats.borrow_mut().error(reason),
    };
    {
        let mut stats = ctx.stats.borrow_mut();
        stats.counters.players_joined += 1;
        stats.players_now += 1;
    }
    // Each player's inputs (and pings) keep their own phase against the
    // run's time zero, not against its Joined: see `schedule`.
    let input_period = Duration::from_secs_f64(1.0 / input_rate_hz);
    let inputs = Schedule::phased(ctx.start, input_period, plan.index, seated.joined_at);
    let pings = ping_interval.map(|i| Schedule::phased(ctx.start, i, plan.index, seated.joined_at));
    play(&ctx, seated, inputs, pings).await;
    ctx.stats.borrow_mut().players_now -= 1;
}

/// Connect, Hello, Join; the error is the report's name for what failed.
/// Connecting to `/play?instance=ID` lands on the instance's shard; a Join
/// that reaches another shard is moved there by the server, transparently.
async fn join(
    ctx: &ThreadCtx,
    plan: &PlayerPlan,
    instance: Option<&str>,
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
    send(ctx, &mut ws, enc.hello(&name, None), deadline).await?;
    let tick_period = match recv_until(ctx, &mut ws, deadline, "welcome").await? {
        ServerMsg::Welcome { tick_rate_hz, .. } if tick_rate_hz > 0 => {
            Duration::from_secs_f64(1.0 / f64::from(tick_rate_hz))
        }
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

/// The running phase: the thread's pump sends (`pump`), this task reads
/// and measures, both on the raw socket (`raw`).
async fn play(ctx: &Rc<ThreadCtx>, seated: Seated, inputs: Schedule, pings: Option<Schedule>) {
    // Joined was a complete message: the fence holds every later byte.
    let (mut stream, unread) = seated.ws.into_inner().into_parts();
    let link = Rc::new(Link::new(Outlet::new(stream.as_raw_fd())));
    ctx.pump.add_player(link.clone(), inputs.clone(), pings);
    let mut last_update: Option<Instant> = None;
    read_frames(ctx, &mut stream, unread, &link, |frame, now| {
        if let Some((_tick, last_seq)) = peek_state_update(frame) {
            on_update(
                ctx,
                &inputs,
                &link.ledger,
                &mut last_update,
                seated.tick_period,
                last_seq,
                now,
            );
            return Flow::Continue;
        }
        on_other(ctx, frame, now)
    })
    .await;
    link.closed.set(true);
    let unanswered = link.ledger.borrow().unanswered();
    ctx.stats.borrow_mut().counters.inputs_unanswered += u64::from(unanswered);
}

fn on_update(
    ctx: &ThreadCtx,
    inputs: &Schedule,
    ledger: &RefCell<InputLedger>,
    last_update: &mut Option<Instant>,
    tick_period: Duration,
    last_seq: u32,
    now: Instant,
) {
    let mut stats = ctx.stats.borrow_mut();
    stats.counters.updates_received += 1;
    if let Some(prev) = last_update.replace(now) {
        let gap = now.saturating_duration_since(prev);
        let jitter = gap.abs_diff(tick_period);
        stats.record(Metric::UpdateJitter, jitter);
    }
    let ahead = ledger.borrow_mut().ack(last_seq, |seq| {
        let intended = inputs.due(u64::from(seq) - 1);
        stats.record(
            Metric::InputToUpdate,
            now.saturating_duration_since(intended),
        );
    });
    stats.counters.acks_ahead += u64::from(ahead);
}

fn on_other(ctx: &ThreadCtx, frame: &[u8], now: Instant) -> Flow {
    match decode_server(frame) {
        Ok(ServerMsg::Pong { client_time, .. }) => {
            let Ok(offset) = Duration::try_from_secs_f64(client_time) else {
                ctx.stats.borrow_mut().error("bad_pong_client_time");
                return Flow::Continue;
            };
            let mut stats = ctx.stats.borrow_mut();
            stats.counters.pongs_received += 1;
            let intended = ctx.start + offset;
            stats.record(Metric::PingRtt, now.saturating_duration_since(intended));
            Flow::Continue
        }
        Ok(ServerMsg::Error { code, .. }) => {
            ctx.stats.borrow_mut().error(server_error_label(code));
            Flow::Continue
        }
        Ok(_) => Flow::Continue,
        Err(_) => {
            ctx.stats.borrow_mut().error("bad_server_message");
            Flow::Continue
        }
    }
}
