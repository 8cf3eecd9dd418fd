//! The watchdog: a thread outside the shards that sees a shard stop making
//! progress — game code that never returns — and keeps the node useful.
//!
//! Every shard stamps its [`Beat`] when it finishes a tick slot (every
//! millisecond or so) and names the instance it is stepping. The watchdog
//! looks four times per --stuck-shard-ms. A shard whose last finished slot
//! is older than --stuck-shard-ms — not counting the time its thread
//! waited for a CPU (its run-queue time in `/proc/self/task/TID/schedstat`):
//! a shard the machine starves is slow, not stuck, and taking it out of
//! the listeners would only reset the connections queued on it — is stuck:
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
    let mut seen = Seen::new(beats.shards.len());
    while !beats.stopping() {
        std::thread::sleep(period);
        if beats.stopping() {
            break;
        }
        look(beats, cfg, Instant::now(), &mut seen, &run_queue_wait_ns);
    }
}

/// What the watchdog remembers of each shard between looks: the last
/// finished slot it saw, and the thread's run-queue time then.
pub struct Seen {
    finished_ms: Vec<u64>,
    wait_ns: Vec<Option<u64>>,
}

impl Seen {
    pub fn new(shards: usize) -> Self {
        Self {
            finished_ms: vec![0; shards],
            wait_ns: vec![None; shards],
        }
    }
}

/// Nanoseconds thread `tid` of this process has spent runnable but
/// waiting for a CPU (the second field of its schedstat); `None` where the
/// kernel does not say.
fn run_queue_wait_ns(tid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}

/// One look at every shard at `now`; `wait_ns` reads a thread's run-queue
/// time (`run_queue_wait_ns`, or a test's).
pub fn look(
    beats: &Beats,
    cfg: &WatchdogConfig,
    now: Instant,
    seen: &mut Seen,
    wait_ns: &dyn Fn(i32) -> Option<u64>,
) {
    let now_ms = beats.ms(now);
    let bound_ms = cfg.stuck_after.as_millis() as u64;
    for (shard, beat) in beats.shards.iter().enumerate() {
        let finished = beat.finished_ms();
        if finished == 0 {
            continue; // not started yet (restoring): nothing to judge
        }
        let waited_now = beat.thread().and_then(wait_ns);
        if finished != seen.finished_ms[shard] {
            // Progress since the last look: the stall (if any) starts here.
            seen.finished_ms[shard] = finished;
            seen.wait_ns[shard] = waited_now;
        }
        let starved_ms = match (seen.wait_ns[shard], waited_now) {
            (Some(then), Some(now)) => now.saturating_sub(then) / 1_000_000,
            _ => 0,
        };
        let stalled_ms = now_ms.saturating_sub(finished).saturating_sub(starved_ms);
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

/// Where thread `tid` of this process is, as the kernel says: its state
/// letter and the kernel function it sleeps in (`/proc/self/task/TID/stat`
/// and `wchan`), e.g. "S in pipe_write" for a shard blocked writing its
/// log to a full pipe. `None` where the kernel does not say.
fn thread_whereabouts(tid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may
    // hold spaces.
    let state = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .to_owned();
    let wchan = std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan"))
        .ok()
        .filter(|w| !w.is_empty() && w != "0");
    Some(match wchan {
        Some(w) => format!("{state} in {w}"),
        None => state,
    })
}

fn stuck(shard: usize, beat: &Beat, finished_ms: u64, stalled_ms: u64, cfg: &WatchdogConfig) {
    let instance = beat.stepping_now();
    let thread = beat
        .thread()
        .and_then(thread_whereabouts)
        .unwrap_or_else(|| "unknown".to_owned());
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
        thread = %thread,
        listener_removed = removed,
        "shard stuck: no tick finished for {stalled_ms} ms (--stuck-shard-ms {}) though not waiting for a CPU; {}. New connections go to the other shards",
        cfg.stuck_after.as_millis(),
        if instance.is_some() { "its game code does not return" } else { "its thread is blocked outside game code (see `thread`: state and kernel wait)" }
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
        let mut seen = Seen::new(2);
        let no_wait = |_| None;
        look(
            &beats,
            &cfg,
            t0 + Duration::from_secs(5),
            &mut seen,
            &no_wait,
        );
        assert!(
            beats.shards.iter().all(|b| b.stuck_since_ms().is_none()),
            "a shard that never finished a slot is starting, not stuck"
        );
        beats.shards[0].finished(beats.ms(t0));
        beats.shards[1].finished(beats.ms(t0));
        beats.shards[1].stepping("loops-forever");
        let later = t0 + Duration::from_millis(600);
        beats.shards[0].finished(beats.ms(later));
        look(&beats, &cfg, later, &mut seen, &no_wait);
        assert!(beats.shards[0].stuck_since_ms().is_none());
        assert!(beats.shards[1].stuck_since_ms().is_some());
        assert_eq!(
            beats.shards[1].stuck_instance().as_deref(),
            Some("loops-forever")
        );
        beats.shards[1].stepped();
        beats.shards[1].finished(beats.ms(later));
        look(&beats, &cfg, later, &mut seen, &no_wait);
        assert!(beats.shards[1].stuck_since_ms().is_none(), "recovered");
    }

    #[test]
    fn a_shard_starved_of_cpu_is_not_stuck() {
        let beats = Beats::new(1);
        let cfg = WatchdogConfig {
            stuck_after: Duration::from_millis(500),
            exit: false,
            game: "arena".into(),
        };
        let beat = &beats.shards[0];
        beat.set_thread(4242);
        let t0 = Instant::now();
        beat.finished(beats.ms(t0));
        let mut seen = Seen::new(1);
        // The thread's run-queue time: 0 at the last finished slot, then it
        // waits for a CPU for 550 of the next 600 ms.
        let waited = std::cell::Cell::new(0u64);
        let read = |tid: i32| {
            assert_eq!(tid, 4242);
            Some(waited.get())
        };
        look(&beats, &cfg, t0, &mut seen, &read);
        waited.set(550_000_000);
        look(
            &beats,
            &cfg,
            t0 + Duration::from_millis(600),
            &mut seen,
            &read,
        );
        assert!(
            beat.stuck_since_ms().is_none(),
            "50 ms of its own time without a slot: starved, not stuck"
        );
        // It runs (no more waiting) and still finishes nothing: stuck once
        // its own time passes the bound.
        look(
            &beats,
            &cfg,
            t0 + Duration::from_millis(1100),
            &mut seen,
            &read,
        );
        assert!(beat.stuck_since_ms().is_some(), "550 ms of its own time");
    }

    #[test]
    fn a_blocked_thread_is_named_with_its_kernel_wait() {
        // SAFETY: gettid(2) has no preconditions.
        let me = unsafe { libc::gettid() };
        let here = thread_whereabouts(me).expect("the kernel shows this thread");
        assert!(here.starts_with('R'), "reading itself, it runs: {here}");

        let (tx, rx) = std::sync::mpsc::channel::<i32>();
        let (hold, wait) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            // SAFETY: as above.
            tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = wait.recv_timeout(Duration::from_secs(10));
        });
        let tid = rx.recv().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let seen = thread_whereabouts(tid).expect("the sleeper is alive");
            if seen.starts_with('S') || Instant::now() > deadline {
                break seen;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(
            seen.starts_with("S in "),
            "a thread waiting on a futex sleeps in the kernel: {seen}"
        );
        drop(hold);
        sleeper.join().unwrap();
    }
}
