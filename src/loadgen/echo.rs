//! One /echo client, set up on its executor (connect, upgrade), then run
//! by the executor's drive (`drive`, `running`): a message of
//! `--message-bytes` at `--rate`, each carrying its intended send time (µs
//! after the run's start, little-endian, in its first 8 bytes), so the
//! echo's latency needs no bookkeeping.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::connect::{io_kind_label, open_fenced};
use super::player::{dup, PlayerPlan};
use super::running::{Handover, Traffic, ECHO_STAMP_BYTES};
use super::schedule::{spread_phase, Schedule};
use super::stats::Metric;
use super::{runner::ThreadCtx, Mode};

const _: () = assert!(ECHO_STAMP_BYTES <= super::config::ECHO_MESSAGE_BYTES_MIN);

/// The longest span the connections' first messages are spread over (the
/// idle benchmark sends one message per connection at 0.002 Hz and expects
/// it right after the upgrade, not up to 500 s later).
const PHASE_SPAN_MAX: Duration = Duration::from_secs(1);

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
    }
    // Right after the upgrade no message has begun: every byte past the
    // fence is the server's first frame.
    let (stream, unread) = ws.into_inner().into_parts();
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
    // Spread like the players' inputs (see `schedule`): connections opened
    // together would otherwise send in one burst. Over the period, or over
    // PHASE_SPAN_MAX when the period is longer, so that a slow connection's
    // first message still goes out soon after its upgrade.
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    let phase = spread_phase(plan.index, period.min(PHASE_SPAN_MAX));
    let schedule = Schedule::new(upgraded_at + phase, period);
    ctx.drive.run(Handover {
        fd,
        unread,
        traffic: Traffic::Echo {
            schedule,
            message_bytes,
        },
    });
}
