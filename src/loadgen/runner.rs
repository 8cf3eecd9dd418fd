//! Running a load: one glommio executor per `--threads`, each starting its
//! share of the connections (k ≡ thread mod threads) on the ramp's schedule
//! and recording into its own stats; the main thread prints the progress
//! line and, when every executor has finished, merges their stats into a
//! [`Report`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;

use super::config::{check_fd_budget, check_port_budget, LoadgenConfig, Mode};
use super::drive::{Drive, RunTimes};
use super::player::PlayerPlan;
use super::report::Report;
use super::stats::{new_histogram, Metric, Progress, ThreadStats};
use super::{echo, player};

/// From building the executors to the run's time zero, so each executor is
/// up before its first connection is due.
const STARTUP_SLACK: Duration = Duration::from_millis(100);
/// How often an executor whose connections are all running checks whether
/// its drive has finished.
const DRIVE_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often executors sample their stats and the progress line prints.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// A progress line is printed even if an executor is this late with its sample.
const PROGRESS_STALL: Duration = Duration::from_millis(2500);
/// Samples that may wait for the main thread, per executor; when the queue
/// is full a sample is dropped (the next one carries the totals).
const PROGRESS_QUEUE_PER_THREAD: usize = 4;

/// What every connection task of one executor shares.
pub struct ThreadCtx {
    pub cfg: Arc<LoadgenConfig>,
    /// The run's time zero. Pings and echoes carry their intended send time
    /// as an offset from it, so their replies need no lookup.
    pub start: Instant,
    /// No message is due at or after this; connections close then.
    pub end: Instant,
    pub stats: RefCell<ThreadStats>,
    /// Runs this executor's connections once they are set up.
    pub drive: Drive,
}

/// Runs the load described by `cfg` and returns its report. Refuses, before
/// opening anything, a run that needs more file descriptors or local ports
/// than this process has.
pub fn run_to_report(cfg: LoadgenConfig) -> anyhow::Result<Report> {
    cfg.validate()?;
    check_fd_budget(&cfg)?;
    check_port_budget(&cfg)?;
    let cfg = Arc::new(cfg);
    let start = Instant::now() + STARTUP_SLACK;
    let end = start + cfg.ramp_time() + cfg.duration;
    let (tx, rx) = crossbeam_channel::bounded(cfg.threads * PROGRESS_QUEUE_PER_THREAD);
    let mut handles = Vec::with_capacity(cfg.threads);
    for t in 0..cfg.threads {
        let placement = match &cfg.cpus {
            Some(cpus) => Placement::Fixed(cpus[t % cpus.len()]),
            None => Placement::Unbound,
        };
        let (cfg_t, tx_t) = (cfg.clone(), tx.clone());
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("loadgen-{t}"))
            .io_memory(cfg.io_memory_bytes)
            .spawn(move || thread_main(cfg_t, t, start, end, tx_t))
            .map_err(|e| anyhow::anyhow!("cannot start loadgen executor {t}: {e}"))?;
        handles.push(handle);
    }
    drop(tx);
    watch(&cfg, &rx, start, end);
    let mut threads = Vec::with_capacity(handles.len());
    for (t, h) in handles.into_iter().enumerate() {
        let stats = h
            .join()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|r| r)
            .with_context(|| format!("loadgen executor {t} failed"))?;
        threads.extend(stats);
    }
    let mode = match cfg.mode {
        Mode::Play { .. } => "play",
        Mode::Echo { .. } => "echo",
    };
    let run_s = (end - start).as_secs_f64();
    Ok(Report::from_threads(
        mode,
        &cfg.target.url,
        cfg.players as u64,
        run_s,
        threads,
    ))
}

/// One executor: start this thread's connections on the ramp (their
/// set-up runs here; once running, each is handed to the executor's
/// drive), wait for them and for the drive, hand the stats back (the
/// set-up's and the drive's).
async fn thread_main(
    cfg: Arc<LoadgenConfig>,
    thread: usize,
    start: Instant,
    end: Instant,
    progress: Sender<Progress>,
) -> anyhow::Result<[ThreadStats; 2]> {
    let main_metric = match cfg.mode {
        Mode::Play { .. } => Metric::InputToUpdate,
        Mode::Echo { .. } => Metric::EchoRtt,
    };
    let drive = Drive::spawn(RunTimes {
        start,
        end,
        close_timeout: cfg.close_timeout,
        main_metric,
        thread,
        mask_seed: 0x9e37_79b9_7f4a_7c15 ^ thread as u64,
    })
    .context("cannot start the loadgen drive thread")?;
    let ctx = Rc::new(ThreadCtx {
        cfg,
        start,
        end,
        stats: RefCell::new(ThreadStats::new(main_metric)),
        drive,
    });
    let reporter = glommio::spawn_local(sample_progress(ctx.clone(), thread, progress));
    let cfg = &ctx.cfg;
    let mut tasks = Vec::with_capacity(cfg.players.div_ceil(cfg.threads));
    for k in (thread..cfg.players).step_by(cfg.threads) {
        let connect_at = start + cfg.connect_offset(k);
        let wait = connect_at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            glommio::timer::sleep(wait).await;
        }
        let plan = PlayerPlan {
            index: k,
            connect_at,
            source: (!cfg.source_ips.is_empty()).then(|| cfg.source_ips[k % cfg.source_ips.len()]),
        };
        let task = match cfg.mode {
            Mode::Play { .. } => glommio::spawn_local(player::run(ctx.clone(), plan)),
            Mode::Echo { .. } => glommio::spawn_local(echo::run(ctx.clone(), plan)),
        };
        tasks.push(task);
    }
    for task in tasks {
        task.await;
    }
    // Every connection is running on the drive (or failed): the drive ends
    // once they have, by the run's end and close timeout. Meanwhile this
    // executor keeps sampling the progress.
    ctx.drive.no_more();
    while !ctx.drive.is_finished() {
        glommio::timer::sleep(DRIVE_POLL_INTERVAL).await;
    }
    reporter.cancel().await;
    let ctx = Rc::into_inner(ctx).expect("the tasks holding the context have ended");
    let setup = ctx.stats.into_inner();
    Ok([setup, ctx.drive.finish()])
}

async fn sample_progress(ctx: Rc<ThreadCtx>, thread: usize, tx: Sender<Progress>) {
    // The drive's last sample: its totals count until the next one comes.
    let mut drive: Option<Progress> = None;
    loop {
        glommio::timer::sleep(PROGRESS_INTERVAL).await;
        let mut sample = ctx.stats.borrow_mut().progress(thread, Instant::now());
        if let Some(d) = ctx.drive.take_sample() {
            drive = Some(d);
        }
        if let Some(d) = drive.as_mut() {
            sample.merge(d);
            d.interval.reset();
        }
        // Never block the executor: a full queue loses this sample only.
        let _ = tx.try_send(sample);
    }
}

/// Totals of the run, as last sampled.
#[derive(Default, Clone, Copy)]
struct Totals {
    players_now: u64,
    msgs_out: u64,
    msgs_in: u64,
    errors: u64,
    disconnects: u64,
}

impl Totals {
    fn of(p: &Progress) -> Totals {
        Totals {
            players_now: p.players_now,
            msgs_out: p.msgs_out,
            msgs_in: p.msgs_in,
            errors: p.errors,
            disconnects: p.disconnects,
        }
    }

    fn add(self, o: &Totals) -> Totals {
        Totals {
            players_now: self.players_now + o.players_now,
            msgs_out: self.msgs_out + o.msgs_out,
            msgs_in: self.msgs_in + o.msgs_in,
            errors: self.errors + o.errors,
            disconnects: self.disconnects + o.disconnects,
        }
    }
}

/// Collects progress samples until every executor has finished. A line is
/// printed (when `cfg.progress` is set) once every executor has sent a new
/// sample, or after `PROGRESS_STALL` when one is too busy to; rates are
/// over the time between the samples, not between prints.
fn watch(cfg: &LoadgenConfig, rx: &Receiver<Progress>, start: Instant, end: Instant) {
    let mut latest: Vec<Option<(Instant, Totals)>> = vec![None; cfg.threads];
    let mut fresh = vec![false; cfg.threads];
    let mut printed = (start, Totals::default());
    let mut last_print = Instant::now();
    let mut interval = new_histogram();
    let ramp_end = start + cfg.ramp_time();
    loop {
        match rx.recv_timeout(PROGRESS_STALL) {
            Ok(p) => {
                let _ = interval.add(&p.interval);
                latest[p.thread] = Some((p.at, Totals::of(&p)));
                fresh[p.thread] = true;
                if fresh.contains(&false) && last_print.elapsed() < PROGRESS_STALL {
                    continue;
                }
            }
            // Nothing new from anyone: no line to print.
            Err(RecvTimeoutError::Timeout) if !fresh.contains(&true) => continue,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(at) = latest.iter().flatten().map(|(at, _)| *at).max() else {
            continue;
        };
        let sum = latest
            .iter()
            .flatten()
            .fold(Totals::default(), |a, (_, t)| a.add(t));
        if cfg.progress {
            let phase = if at < ramp_end {
                "ramping"
            } else if at < end {
                "running"
            } else {
                "closing"
            };
            let line = ProgressLine {
                elapsed: at.saturating_duration_since(start),
                phase,
                seconds: at.saturating_duration_since(printed.0).as_secs_f64(),
                now: &sum,
                before: &printed.1,
                interval: &interval,
            };
            eprintln!("{}", line.render(cfg));
        }
        printed = (at, sum);
        last_print = Instant::now();
        fresh.fill(false);
        interval.reset();
    }
}

struct ProgressLine<'a> {
    elapsed: Duration,
    phase: &'a str,
    /// Time the rates are over.
    seconds: f64,
    now: &'a Totals,
    before: &'a Totals,
    interval: &'a Histogram<u64>,
}

impl ProgressLine<'_> {
    fn render(&self, cfg: &LoadgenConfig) -> String {
        let name = match cfg.mode {
            Mode::Play { .. } => "input→update",
            Mode::Echo { .. } => "echo",
        };
        let p99 = if self.interval.is_empty() {
            "-".to_owned()
        } else {
            format!(
                "{:.2} ms",
                self.interval.value_at_quantile(0.99) as f64 / 1000.0
            )
        };
        let rate = |now: u64, before: u64| {
            if self.seconds > 0.0 {
                now.saturating_sub(before) as f64 / self.seconds
            } else {
                0.0
            }
        };
        format!(
            "[{:>6.1}s] {:<8} connected {}/{}  out {:.0} msg/s  in {:.0} msg/s  {name} p99 {p99}  errors {}  disconnects {}",
            self.elapsed.as_secs_f64(),
            self.phase,
            self.now.players_now,
            cfg.players,
            rate(self.now.msgs_out, self.before.msgs_out),
            rate(self.now.msgs_in, self.before.msgs_in),
            self.now.errors,
            self.now.disconnects,
        )
    }
}
