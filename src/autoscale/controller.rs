//! The controller's loop: the I/O around [`decide`]. Every evaluation it
//! takes or renews the lease (only the holder acts; the others wait and
//! take over within one lease TTL of the holder's death), reads every
//! region's policy and nodes from the directory, samples the load into the
//! region's history, forecasts, decides, logs the decision with its reason,
//! and acts through the region's provider — unless `--dry-run`.
//!
//! While Redis is unreachable it holds: no action, and the webhook answers
//! "do not scale". It never scales down on what it cannot see.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};

use super::decide::{decide, Action, Decision, Inputs, NodeView, RegionMemory, RegionView};
use super::forecast::{self, Sample};
use super::policy::{ForecastMode, ProviderPolicy, ScalingPolicy, HISTORY_SAMPLES_MAX};
use super::provider::{self, Job, JobDone};
use super::status::Status;
use super::store::Store;
use crate::directory::route::NodeInfo;

/// Jobs whose outcome may wait to be read (each ~100 B); a provider job
/// beyond it still runs, its outcome is read at the next evaluation.
const JOB_RESULTS_CAPACITY: usize = 1024;
/// How long the loop sleeps at a time (stop and lease checks).
const NAP: Duration = Duration::from_millis(50);

/// `shardline autoscale` settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub directory: String,
    /// Names this controller in the lease (host name and pid by default).
    pub id: String,
    pub evaluate: Duration,
    pub lease_ttl: Duration,
    pub dry_run: bool,
    pub listen: Option<SocketAddr>,
}

/// What the loop keeps per region between evaluations.
#[derive(Default)]
struct RegionRun {
    memory: RegionMemory,
    /// The bucket being sampled and its peak load so far.
    bucket: Option<(u64, f64)>,
    history: Vec<Sample>,
    /// A drained node being stopped.
    stopping: Option<String>,
    /// Measured node start time, last one, ms.
    start_ms: Option<u64>,
    /// The last logged decision's action and sizes (logged again on change).
    logged: Option<(String, u32, u32)>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub struct Controller {
    cfg: ControllerConfig,
    store: Store,
    status: Arc<Mutex<Status>>,
    regions: HashMap<String, RegionRun>,
    jobs_tx: Sender<JobDone>,
    jobs_rx: Receiver<JobDone>,
}

impl Controller {
    pub fn new(cfg: ControllerConfig) -> anyhow::Result<Controller> {
        let store = Store::open(&cfg.directory)?;
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(JOB_RESULTS_CAPACITY);
        Ok(Controller {
            status: Arc::new(Mutex::new(Status::new(cfg.dry_run))),
            cfg,
            store,
            regions: HashMap::new(),
            jobs_tx,
            jobs_rx,
        })
    }

    pub fn status(&self) -> Arc<Mutex<Status>> {
        self.status.clone()
    }

    /// Runs until `stop` is set; then gives the lease up.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut next_eval = Instant::now();
        let renew_every = self.cfg.lease_ttl / 3;
        let mut next_renew = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next_renew || now >= next_eval {
                next_renew = now + renew_every;
                self.lease_round();
            }
            if now >= next_eval {
                next_eval = now + self.cfg.evaluate;
                if self.is_active() {
                    self.evaluate();
                }
            }
            std::thread::sleep(NAP.min(next_eval.saturating_duration_since(Instant::now())));
        }
        if self.is_active() {
            self.store.release_lease(&self.cfg.id);
            tracing::info!("autoscale controller stopping: lease given up");
        }
    }

    fn is_active(&self) -> bool {
        self.status.lock().expect("status").active
    }

    /// Connects, then takes or renews the lease.
    fn lease_round(&mut self) {
        let up = self.store.connect();
        let held = if up {
            self.store.lease(&self.cfg.id, self.cfg.lease_ttl)
        } else {
            None
        };
        let mut st = self.status.lock().expect("status");
        let was_up = st.directory_up;
        st.directory_up = held.is_some();
        if was_up && held.is_none() {
            tracing::warn!("directory unreachable: holding every region (no action, the webhook answers scale=false)");
        }
        match held {
            Some(true) if !st.active => {
                st.active = true;
                st.lease_takeovers += 1;
                drop(st);
                tracing::info!(controller = %self.cfg.id, "autoscale controller active (lease taken)");
                // A fresh start: cooldowns, drains and history as the last
                // active controller left them.
                self.regions.clear();
            }
            Some(false) if st.active => {
                st.active = false;
                drop(st);
                tracing::warn!("lease held by another controller: standing by");
            }
            Some(false) | Some(true) => {}
            None => {
                // Without Redis the lease may expire; until it is renewed
                // this controller acts on nothing anyway (every action needs
                // Redis), and at the next round it knows.
            }
        }
    }

    fn evaluate(&mut self) {
        if !self.store.is_up() {
            return;
        }
        self.read_job_results();
        let Some(policies) = self.store.policies() else {
            return;
        };
        let Some(nodes) = self.store.nodes() else {
            return;
        };
        let names: Vec<String> = policies.keys().cloned().collect();
        self.status.lock().expect("status").retain_regions(&names);
        self.regions.retain(|r, _| names.contains(r));
        for (region, policy) in policies {
            match policy {
                Ok(p) => {
                    if self.evaluate_region(&region, &p, &nodes).is_none() {
                        return; // Redis went away mid-way: hold the rest too
                    }
                }
                Err(e) => {
                    let mut st = self.status.lock().expect("status");
                    let r = st.region(&region);
                    if r.policy_error.is_none() {
                        tracing::error!(region, error = %e, "stored policy is invalid: region held");
                    }
                    r.policy_error = Some(e.to_string());
                }
            }
        }
        self.status.lock().expect("status").evaluations += 1;
    }

    /// One region; `None` when Redis failed meanwhile.
    fn evaluate_region(&mut self, region: &str, p: &ScalingPolicy, all: &[NodeInfo]) -> Option<()> {
        let now = now_ms();
        self.status
            .lock()
            .expect("status")
            .set_policy(region, p.clone());
        if !self.regions.contains_key(region) {
            let memory = self.store.memory(region)?;
            let history = self.store.history(region)?;
            self.regions.insert(
                region.to_owned(),
                RegionRun {
                    memory,
                    history,
                    ..Default::default()
                },
            );
        }
        let nodes: Vec<&NodeInfo> = all.iter().filter(|n| n.region == region).collect();
        let starting = self.track_starts(region, p, &nodes, now)?;
        self.track_drain(region, p, &nodes, now)?;
        let load: u64 = nodes.iter().map(|n| n.load as u64).sum();
        self.sample(region, p, load as f64, now)?;
        let run = self.regions.get(region).expect("inserted above");
        let horizon_ms =
            p.node_start_ms.max(run.start_ms.unwrap_or(0)) + self.cfg.evaluate.as_millis() as u64;
        let f = if p.forecast.mode == ForecastMode::Predictive {
            let horizon = horizon_ms.div_ceil(p.forecast.sample_ms) as usize;
            forecast::forecast(
                &run.history,
                p.forecast.season_samples() as usize,
                horizon,
                p.forecast.error_window as usize,
            )
        } else {
            None
        };
        let override_nodes = self.store.override_of(region)?;
        let view = RegionView {
            nodes: nodes
                .iter()
                .map(|n| NodeView {
                    id: n.id.clone(),
                    capacity: n.capacity.min(u32::MAX as usize) as u32,
                    load: n.load.min(u32::MAX as usize) as u32,
                    draining: n.draining,
                })
                .collect(),
            starting,
        };
        let d = decide(&Inputs {
            region,
            policy: p,
            view: &view,
            forecast: f,
            horizon_ms,
            override_nodes,
            memory: &run.memory,
            now_ms: now,
        });
        self.log_decision(&d);
        self.act(region, p, &d, now)?;
        self.store.save_decision(&d)?;
        let mut st = self.status.lock().expect("status");
        st.region(region).override_nodes = override_nodes;
        st.record(d);
        Some(())
    }

    fn log_decision(&mut self, d: &Decision) {
        let run = self.regions.get_mut(&d.region).expect("region run");
        let key = (d.action.name().to_owned(), d.current, d.desired);
        if d.action != Action::Hold || run.logged.as_ref() != Some(&key) {
            let dry = if self.cfg.dry_run && d.action != Action::Hold {
                " (dry run: not acted on)"
            } else {
                ""
            };
            tracing::info!(region = %d.region, action = d.action.name(), "{}{dry}", d.reason);
        } else {
            tracing::debug!(region = %d.region, "{}", d.reason);
        }
        run.logged = Some(key);
    }

    /// Nodes asked for: registered now (start time measured), or given up
    /// on; returns how many are still starting.
    fn track_starts(
        &mut self,
        region: &str,
        p: &ScalingPolicy,
        nodes: &[&NodeInfo],
        now: u64,
    ) -> Option<u32> {
        let starting = self.store.starting(region)?;
        let timeout = start_timeout_ms(p);
        let mut left = 0;
        for (node, at) in starting {
            if nodes.iter().any(|n| n.id == node) {
                self.store.remove_starting(region, &node)?;
                let took = now.saturating_sub(at);
                tracing::info!(region, node, took_ms = took, "node started and registered");
                if took > p.node_start_ms {
                    tracing::warn!(region, node, took_ms = took, node_start_ms = p.node_start_ms, "node took longer than the policy's node_start_ms: the forecast looks this far ahead from now on");
                }
                self.regions.get_mut(region).expect("run").start_ms = Some(took);
                let mut st = self.status.lock().expect("status");
                let r = st.region(region);
                r.nodes_started += 1;
                r.node_start_ms_last = Some(took);
            } else if now.saturating_sub(at) > timeout {
                self.store.remove_starting(region, &node)?;
                tracing::error!(
                    region,
                    node,
                    timeout_ms = timeout,
                    "node did not register in time: start failed"
                );
                self.status
                    .lock()
                    .expect("status")
                    .region(region)
                    .start_failures += 1;
            } else {
                left += 1;
            }
        }
        Some(left)
    }

    /// The drain under way: stop the node once it is empty (or at the
    /// drain timeout); done once it has left the directory.
    fn track_drain(
        &mut self,
        region: &str,
        p: &ScalingPolicy,
        nodes: &[&NodeInfo],
        now: u64,
    ) -> Option<()> {
        let run = self.regions.get_mut(region).expect("run");
        let Some((node, since)) = run.memory.draining.clone() else {
            return Some(());
        };
        let info = nodes.iter().find(|n| n.id == node);
        let Some(info) = info else {
            // Gone from the directory: stopped (or died).
            run.memory.draining = None;
            run.memory.last_down_ms = Some(now);
            run.stopping = None;
            let memory = run.memory.clone();
            self.store.save_memory(region, &memory)?;
            tracing::info!(
                region,
                node,
                took_ms = now.saturating_sub(since),
                "drained node stopped and left the fleet"
            );
            self.status
                .lock()
                .expect("status")
                .region(region)
                .drains_done += 1;
            return Some(());
        };
        if run.stopping.is_some() {
            return Some(());
        }
        let empty = info.load == 0 && info.instances == 0;
        let late = now.saturating_sub(since) > p.drain_timeout_ms;
        if !(empty || late) {
            return Some(());
        }
        if empty {
            tracing::info!(
                region,
                node,
                drain_ms = now.saturating_sub(since),
                "node empty: every game moved; stopping it"
            );
            self.status
                .lock()
                .expect("status")
                .region(region)
                .drain_ms_last = Some(now.saturating_sub(since));
        } else {
            tracing::warn!(region, node, players = info.load, instances = info.instances, "drain timed out: stopping the node gracefully (the region takes over what is left)");
            self.status
                .lock()
                .expect("status")
                .region(region)
                .drain_timeouts += 1;
        }
        run.stopping = Some(node.clone());
        if self.cfg.dry_run {
            return Some(());
        }
        let pid = self.store.pid(&node)?;
        provider::spawn(
            p.provider.clone(),
            self.cfg.directory.clone(),
            Job::Stop {
                region: region.to_owned(),
                node,
                pid,
            },
            self.jobs_tx.clone(),
        );
        Some(())
    }

    /// Adds the load to the current bucket's peak; a finished bucket goes
    /// to the history (Redis and the cache).
    fn sample(&mut self, region: &str, p: &ScalingPolicy, load: f64, now: u64) -> Option<()> {
        let bucket = now / p.forecast.sample_ms;
        let run = self.regions.get_mut(region).expect("run");
        match run.bucket {
            Some((b, peak)) if b == bucket => run.bucket = Some((b, peak.max(load))),
            Some((b, peak)) => {
                let s = Sample {
                    bucket: b,
                    load: peak,
                };
                run.history.push(s);
                let extra = run
                    .history
                    .len()
                    .saturating_sub(HISTORY_SAMPLES_MAX as usize);
                run.history.drain(..extra);
                run.bucket = Some((bucket, load));
                self.store.push_sample(region, s)?;
            }
            None => run.bucket = Some((bucket, load)),
        }
        Some(())
    }

    fn act(&mut self, region: &str, p: &ScalingPolicy, d: &Decision, now: u64) -> Option<()> {
        match &d.action {
            Action::Hold => return Some(()),
            Action::Up { count } => {
                if !self.cfg.dry_run && matches!(p.provider, ProviderPolicy::Process { .. }) {
                    for _ in 0..*count {
                        let node = self.store.next_node_name(region)?;
                        self.store.add_starting(region, &node, now)?;
                        provider::spawn(
                            p.provider.clone(),
                            self.cfg.directory.clone(),
                            Job::Start {
                                region: region.to_owned(),
                                node,
                            },
                            self.jobs_tx.clone(),
                        );
                    }
                }
                let run = self.regions.get_mut(region).expect("run");
                run.memory.last_up_ms = Some(now);
                self.status.lock().expect("status").region(region).scale_ups += 1;
            }
            Action::Down { node } => {
                let run = self.regions.get_mut(region).expect("run");
                match (&p.provider, self.cfg.dry_run) {
                    // Agones removes a game server itself (gracefully:
                    // SIGTERM, final replica, the region takes over).
                    (ProviderPolicy::Agones { .. }, _) | (_, true) => {
                        run.memory.last_down_ms = Some(now);
                    }
                    _ => {
                        run.memory.draining = Some((node.clone(), now));
                        let heard = self.store.evacuate(node)?;
                        if heard == 0 {
                            tracing::error!(
                                region,
                                node,
                                "node is not listening for its evacuation order; drain abandoned"
                            );
                            let run = self.regions.get_mut(region).expect("run");
                            run.memory.draining = None;
                        }
                    }
                }
                self.status
                    .lock()
                    .expect("status")
                    .region(region)
                    .scale_downs += 1;
            }
        }
        let memory = self.regions[region].memory.clone();
        self.store.save_memory(region, &memory)?;
        self.status
            .lock()
            .expect("status")
            .region(region)
            .last_action = Some((d.action.name().to_owned(), now));
        Some(())
    }

    /// Outcomes of provider jobs.
    fn read_job_results(&mut self) {
        while let Ok(done) = self.jobs_rx.try_recv() {
            let region = match &done.job {
                Job::Start { region, .. } | Job::Stop { region, .. } => region.clone(),
            };
            match (&done.job, done.result) {
                (Job::Start { node, .. }, Ok(pid)) => {
                    if pid.is_some() {
                        let _ = self.store.set_pid(node, pid);
                    }
                    tracing::info!(
                        region,
                        node,
                        pid,
                        took_ms = done.took.as_millis() as u64,
                        "scale-up command done"
                    );
                }
                (Job::Start { node, .. }, Err(why)) => {
                    tracing::error!(region, node, why, "scale-up command failed");
                    let _ = self.store.remove_starting(&region, node);
                    self.status
                        .lock()
                        .expect("status")
                        .region(&region)
                        .start_failures += 1;
                }
                (Job::Stop { node, .. }, Ok(_)) => {
                    let _ = self.store.set_pid(node, None);
                    tracing::info!(
                        region,
                        node,
                        took_ms = done.took.as_millis() as u64,
                        "node stopped"
                    );
                }
                (Job::Stop { node, .. }, Err(why)) => {
                    tracing::error!(region, node, why, "scale-down command failed; tried again");
                    if let Some(run) = self.regions.get_mut(&region) {
                        run.stopping = None;
                    }
                    self.status
                        .lock()
                        .expect("status")
                        .region(&region)
                        .stop_failures += 1;
                }
            }
        }
    }
}

/// How long a node may take to register before its start counts as failed.
fn start_timeout_ms(p: &ScalingPolicy) -> u64 {
    let command = match &p.provider {
        ProviderPolicy::Process {
            command_timeout_ms, ..
        } => *command_timeout_ms,
        _ => 0,
    };
    p.node_start_ms.saturating_mul(3) + command
}
