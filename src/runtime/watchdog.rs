//! The watchdog: a thread outside the shards that sees a shard stop making
//! progress — game code that never returns — and keeps the node useful.
//!
//! Every shard stamps its [`Beat`] when it finishes a tick slot (every
//! millisecond or so) and names the instance it is stepping. The watchdog
//! looks four times per --stuck-shard-ms. A shard whose last finished slot
//! is older than --stuck-shard-ms is stuck:
//! - it is marked stuck (its `Beat`), which /health, /ready and /metrics
//!   report with the instance it was stepping (the admin endpoint runs on
//!   shard 0: if shard 0 itself is stuck, the admin API cannot answer — a
//!   probe's timeout is the signal then);
//! - its listening socket leaves the SO_REUSEPORT group (`shutdown(2)` on a
//!   duplicate of it), so the kernel sends new connections to the healthy
//!   shards; connections already queued on it are reset;
//! - an error is logged naming the game, the shard and the instance;
//! - with --stuck-shard-exit the process exits with [`EXIT_STUCK`], so
//!   systemd or Kubernetes restarts it and the snapshots bring the games
//!   back.
//!
//! A shard that finishes a slot again is no longer stuck; it binds a new
//! listener itself and rejoins the group (`runtime::start`).

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::heartbeat::{Beat, Beats};

/// The process's exit status when a shard is stuck and --stuck-shard-exit
/// is set (EX_SOFTWARE: an internal software error).
pub const EXIT_STUCK: i32 = 70;

/// Looks per --stuck-shard-ms: a stuck shard is seen within 1¼ of it.
const LOOKS_PER_BOUND: u32 = 4;

/// What the watchdog was told at start.
#[derive(Debug, Clone)]
pub struct WatchdogConfig {
    pub stuck_after: Duration,
    pub exit: bool,
    /// The game's name, for the log.
    pub game: String,
}

/// Starts the watchdog thread; it ends when `beats` says the node stops.
pub fn start(
    beats: Arc<Beats>,
    cfg: WatchdogConfig,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || run(&beats, &cfg))
}

fn run(beats: &Beats, cfg: &WatchdogConfig) {
    let period = cfg.stuck_after / LOOKS_PER_BOUND;
    while !beats.stopping() {
        std::thread::sleep(period);
        if beats.stopping() {
            break;
        }
        look(beats, cfg, Instant::now());
    }
}

/// One look at every shard at `now`.
pub fn look(beats: &Beats, cfg: &WatchdogConfig, now: Instant) {
    let now_ms = beats.ms(now);
    let bound_ms = cfg.stuck_after.as_millis() as u64;
    for (shard, beat) in beats.shards.iter().enumerate() {
        let finished = beat.finished_ms();
        if finished == 0 {
            continue; // not started yet (restoring): nothing to judge
        }
        let stalled_ms = now_ms.saturating_sub(finished);
        match (stalled_ms >= bound_ms, beat.stuck_since_ms()) {
            (true, None) => stuck(shard, beat, finished, stalled_ms, cfg),
            (false, Some(_)) => {
                beat.set_stuck_since(0);
                tracing::warn!(
                    shard,
                    "shard recovered: it finishes its ticks again and rejoins the listeners"
                );
            }
            _ => {}
        }
    }
}

fn stuck(shard: usize, beat: &Beat, finished_ms: u64, stalled_ms: u64, cfg: &WatchdogConfig) {
    let instance = beat.stepping_now();
    // Out of the group before anyone is told: whoever reads "stuck"
    // connects to a healthy shard.
    let removed = leave_group(beat);
    beat.set_stuck_instance(instance.clone());
    beat.set_stuck_since(finished_ms);
    tracing::error!(
        shard,
        game = %cfg.game,
        instance = instance.as_deref().unwrap_or("(none: not inside a game step)"),
        stalled_ms,
        listener_removed = removed,
        "shard stuck: no tick finished for {stalled_ms} ms (--stuck-shard-ms {}); its game code does not return. New connections go to the other shards",
        cfg.stuck_after.as_millis()
    );
    if cfg.exit {
        tracing::error!(
            status = EXIT_STUCK,
            "exiting (--stuck-shard-exit): the supervisor restarts the node and the snapshots bring the games back"
        );
        std::process::exit(EXIT_STUCK);
    }
}

/// Takes the shard's listener out of the SO_REUSEPORT group: `shutdown(2)`
/// stops a listening socket (Linux), which unhashes it from the group; the
/// shard's own accept then fails and its accept loop ends.
fn leave_group(beat: &Beat) -> bool {
    let Some(fd) = beat
        .listener
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        return false;
    };
    // SAFETY: `fd` is a valid socket owned here (a duplicate of the
    // shard's listener); shutdown affects the socket both fds refer to.
    let rc = unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
    if rc != 0 {
        tracing::error!(error = %std::io::Error::last_os_error(), "could not stop a stuck shard's listener");
        return false;
    }
    beat.mark_removed();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_without_progress_is_stuck_then_recovers() {
        let beats = Beats::new(2);
        let cfg = WatchdogConfig {
            stuck_after: Duration::from_millis(500),
            exit: false,
            game: "arena".into(),
        };
        let t0 = Instant::now();
        look(&beats, &cfg, t0 + Duration::from_secs(5));
        assert!(
            beats.shards.iter().all(|b| b.stuck_since_ms().is_none()),
            "a shard that never finished a slot is starting, not stuck"
        );
        beats.shards[0].finished(beats.ms(t0));
        beats.shards[1].finished(beats.ms(t0));
        beats.shards[1].stepping("loops-forever");
        let later = t0 + Duration::from_millis(600);
        beats.shards[0].finished(beats.ms(later));
        look(&beats, &cfg, later);
        assert!(beats.shards[0].stuck_since_ms().is_none());
        assert!(beats.shards[1].stuck_since_ms().is_some());
        assert_eq!(
            beats.shards[1].stuck_instance().as_deref(),
            Some("loops-forever")
        );
        beats.shards[1].stepped();
        beats.shards[1].finished(beats.ms(later));
        look(&beats, &cfg, later);
        assert!(beats.shards[1].stuck_since_ms().is_none(), "recovered");
    }
}
