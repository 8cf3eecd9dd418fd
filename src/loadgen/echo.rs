//! One /echo client: a message of `--message-bytes` at `--rate`, each
//! carrying its intended send time (µs after the run's start, little-endian,
//! in its first 8 bytes), so the echo's latency needs no bookkeeping.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Bytes;

use super::conn::{self, Ending, Flow, Outgoing};
use super::connect::open;
use super::player::PlayerPlan;
use super::schedule::Schedule;
use super::stats::{duration_us, Metric};
use super::{runner::ThreadCtx, Mode};

/// Bytes at the start of each message that carry its intended send time.
const STAMP_BYTES: usize = 8;
const _: () = assert!(STAMP_BYTES <= super::config::ECHO_MESSAGE_BYTES_MIN);

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
    let ws = match open(&url, ctx.cfg.target.addr, plan.source, deadline).await {
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
    let (tx, mut rx) = ws.split();
    let ending = Rc::new(Cell::new(Ending::Running));
    let sent = Rc::new(Cell::new(0u64));
    let outgoing = EchoOutgoing {
        // Spread over the period like the players' inputs (see `schedule`):
        // connections opened together would otherwise send in one burst.
        schedule: Schedule::phased(
            ctx.start,
            Duration::from_secs_f64(1.0 / rate_hz),
            plan.index,
            upgraded_at,
        ),
        message: vec![0; message_bytes],
        sent: sent.clone(),
    };
    let writer = glommio::spawn_local(conn::write_loop(ctx.clone(), tx, ending.clone(), outgoing));
    let mut received = 0u64;
    conn::read_loop(&ctx, &mut rx, &ending, |msg, now| {
        match stamp(msg) {
            Some(us) => {
                received += 1;
                let intended = ctx.start + Duration::from_micros(us);
                let mut stats = ctx.stats.borrow_mut();
                stats.counters.echoes_received += 1;
                stats.record(Metric::EchoRtt, now.saturating_duration_since(intended));
            }
            None => ctx.stats.borrow_mut().error("echo_too_short"),
        }
        Flow::Continue
    })
    .await;
    writer.cancel().await;
    let mut stats = ctx.stats.borrow_mut();
    stats.counters.echoes_unanswered += sent.get().saturating_sub(received);
    stats.players_now -= 1;
}

fn stamp(msg: &[u8]) -> Option<u64> {
    let bytes: [u8; STAMP_BYTES] = msg.get(..STAMP_BYTES)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

struct EchoOutgoing {
    schedule: Schedule,
    /// Reused: only the stamp changes between messages.
    message: Vec<u8>,
    /// Messages sent on this connection, read by its reader at the end.
    sent: Rc<Cell<u64>>,
}

impl Outgoing for EchoOutgoing {
    fn next_due(&self) -> Instant {
        self.schedule.next_due()
    }

    fn take_due(&mut self, ctx: &ThreadCtx, now: Instant, end: Instant, out: &mut Vec<Bytes>) {
        let mut stats = ctx.stats.borrow_mut();
        while let Some(due) = self.schedule.take_due(now, end) {
            stats.record(Metric::SendLag, now.saturating_duration_since(due));
            stats.counters.echoes_sent += 1;
            self.sent.set(self.sent.get() + 1);
            let us = duration_us(due.saturating_duration_since(ctx.start));
            self.message[..STAMP_BYTES].copy_from_slice(&us.to_le_bytes());
            out.push(Bytes::copy_from_slice(&self.message));
        }
    }
}
