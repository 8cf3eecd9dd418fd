//! One /echo client: a message of `--message-bytes` at `--rate`, each
//! carrying its intended send time (µs after the run's start, little-endian,
//! in its first 8 bytes), so the echo's latency needs no bookkeeping. The
//! executor's pump sends (`pump`); this task reads and measures, both on the
//! raw socket (`raw`), as for players.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::conn::{read_frames, Flow};
use super::connect::open_fenced;
use super::player::PlayerPlan;
use super::pump::{Link, ECHO_STAMP_BYTES};
use super::raw::Outlet;
use super::schedule::Schedule;
use super::stats::Metric;
use super::{runner::ThreadCtx, Mode};

const _: () = assert!(ECHO_STAMP_BYTES <= super::config::ECHO_MESSAGE_BYTES_MIN);

pub async fn run(ctx: Rc<ThreadCtx>, plan: PlayerPlan) {
    let Mode::Echo {
        message_bytes,
        rate_hz,
    } = ctx.cfg.mode
    else {
        unreachable!("echo tasks run only in echo mode");
    };
    let deadline = Instant::now() + ctx.cfg.connect_timeout;
    let url = ctx.cfg.target.request_url(None);
    let ws = match open_fenced(&url, ctx.cfg.target.addr, plan.source, deadline).await {
        Ok(ws) => ws,
        Err(reason) => return ctx.stats.borrow_mut().error(reason),
    };
    let upgraded_at = Instant::now();
    {
        let mut stats = ctx.stats.borrow_mut();
        stats.record(
            Metric::Handshake,
            upgraded_at.saturating_duration_since(plan.connect_at),
        );
        stats.counters.players_joined += 1;
        stats.players_now += 1;
    }
    // Right after the upgrade no message has begun: every byte past the
    // fence is the server's first frame.
    let (mut stream, unread) = ws.into_inner().into_parts();
    let link = Rc::new(Link::new(Outlet::new(stream.as_raw_fd())));
    // Spread over the period like the players' inputs (see `schedule`):
    // connections opened together would otherwise send in one burst.
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    let schedule = Schedule::phased(ctx.start, period, plan.index, upgraded_at);
    ctx.pump.add_echo(link.clone(), schedule, message_bytes);
    let mut received = 0u64;
    read_frames(&ctx, &mut stream, unread, &link, |msg, now| {
        let mut stats = ctx.stats.borrow_mut();
        match stamp(msg) {
            Some(us) => {
                received += 1;
                let intended = ctx.start + Duration::from_micros(us);
                stats.counters.echoes_received += 1;
                stats.record(Metric::EchoRtt, now.saturating_duration_since(intended));
            }
            None => stats.error("echo_too_short"),
        }
        Flow::Continue
    })
    .await;
    link.closed.set(true);
    let mut stats = ctx.stats.borrow_mut();
    stats.counters.echoes_unanswered += link.echoes_sent.get().saturating_sub(received);
    stats.players_now -= 1;
}

fn stamp(msg: &[u8]) -> Option<u64> {
    let bytes: [u8; ECHO_STAMP_BYTES] = msg.get(..ECHO_STAMP_BYTES)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}
