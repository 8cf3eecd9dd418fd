//! Collecting node-wide figures: shard 0 asks every other shard over the
//! mesh and waits (bounded) for their replies. A shard that does not answer
//! in time is reported missing, and the node unhealthy.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel;

use crate::game::{shard_for, InstanceId};
use crate::metrics::report::{NodeStats, ShardStats};
use crate::metrics::system::{self, process_cpu_time, CpuMeter};
use crate::runtime::{AdminReply, MeshMsg, Shard};
use crate::shard::mesh::{InstanceDetail, ShardMsg};
use crate::util::time::until;

/// How long shard 0 waits for the other shards' replies. A healthy shard
/// answers between two ticks, in well under a millisecond.
pub const SHARD_REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an admin read (/stats, /metrics, /histograms, /instances)
/// waits for the other shards: longer than the health check's bound, so a
/// scrape on a briefly starved host still gets every shard's figures (the
/// health check is what reports a slow shard).
pub const ADMIN_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The shortest span the process CPU figure in stats is measured over.
const CPU_WINDOW: Duration = Duration::from_secs(1);

/// The last health verdict.
#[derive(Debug, Clone)]
pub struct Health {
    pub healthy: bool,
    pub reason: String,
    pub evaluated_at: Instant,
}

pub struct AdminState {
    process_cpu: RefCell<CpuMeter>,
    pub health: RefCell<Health>,
    started_at: Instant,
}

impl AdminState {
    pub fn new(_shard: &Shard) -> Self {
        Self {
            process_cpu: RefCell::new(CpuMeter::new(process_cpu_time())),
            health: RefCell::new(Health {
                healthy: true,
                reason: "not evaluated yet".into(),
                evaluated_at: Instant::now(),
            }),
            started_at: Instant::now(),
        }
    }
}

/// Node-wide figures; `missing` lists shards that did not answer in time.
pub async fn node_stats(
    shard: &Shard,
    state: &AdminState,
    with_instances: bool,
    wait: Duration,
) -> (NodeStats, Vec<usize>) {
    // A shard the watchdog sees stuck cannot answer: not waited for.
    let stuck = stuck_shards(shard);
    let others: Vec<usize> = (0..shard.shards)
        .filter(|&s| s != shard.id && !stuck.iter().any(|x| x.shard == s))
        .collect();
    let req = shard.next_admin_req();
    let (tx, rx) = local_channel::new_bounded(others.len().max(1));
    shard.admin_pending.borrow_mut().insert(req, tx);
    for &to in &others {
        shard.send_mesh(
            to,
            MeshMsg::Core(ShardMsg::StatsRequest {
                req,
                from: shard.id,
                with_instances,
            }),
        );
    }
    let mut shards: Vec<ShardStats> = vec![shard.stats(with_instances)];
    let deadline = Instant::now() + wait;
    while shards.len() < others.len() + 1 {
        match until(deadline, rx.recv()).await {
            Some(Some(AdminReply::Stats(s))) => shards.push(*s),
            Some(Some(_)) => {}
            _ => break,
        }
    }
    shard.admin_pending.borrow_mut().remove(&req);
    shards.sort_by_key(|s| s.shard);
    let missing: Vec<usize> = (0..shard.shards)
        .filter(|id| !shards.iter().any(|s| s.shard == *id))
        .collect();
    let cfg = shard.cfg();
    let process_cpu_usage =
        state
            .process_cpu
            .borrow_mut()
            .sample_over(process_cpu_time(), Instant::now(), CPU_WINDOW);
    let draining = shards.iter().any(|s| s.draining);
    let shedding = shards.iter().any(|s| s.shedding);
    let stats = NodeStats {
        node_id: cfg.node_id.clone(),
        region: cfg.region.clone(),
        uptime_s: state.started_at.elapsed().as_secs_f64(),
        tick_rate_hz: cfg.tick_rate_hz,
        max_connections: shard.node.budget.limit(),
        connections_open: shard.node.budget.open(),
        process_cpu_usage,
        load_average: system::load_average(),
        memory: system::memory(),
        ready: !draining && !shedding && missing.is_empty() && state.health.borrow().healthy,
        draining,
        shards,
    };
    (stats, missing)
}

/// A shard the watchdog found stuck.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stuck {
    pub shard: usize,
    /// The instance it was stepping when found stuck (`None`: stuck
    /// outside a game step).
    pub instance: Option<String>,
    /// Milliseconds since it last finished a tick slot.
    pub stalled_ms: u64,
}

/// The shards stuck now, from the watchdog's marks.
pub fn stuck_shards(shard: &Shard) -> Vec<Stuck> {
    let beats = &shard.node.beats;
    let now_ms = beats.ms(Instant::now());
    beats
        .shards
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let since = b.stuck_since_ms()?;
            Some(Stuck {
                shard: i,
                instance: b.stuck_instance(),
                stalled_ms: now_ms.saturating_sub(since),
            })
        })
        .collect()
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shard {} is stuck: no tick finished for {} ms, stepping instance {}",
            self.shard,
            self.stalled_ms,
            self.instance.as_deref().unwrap_or("(none)")
        )
    }
}

/// The live state of an instance, from the shard that owns it.
pub async fn instance_detail(shard: &Shard, id: &InstanceId) -> Option<InstanceDetail> {
    let owner = shard_for(id, shard.shards);
    if owner == shard.id {
        return shard.core.borrow_mut().instance_detail(id);
    }
    let req = shard.next_admin_req();
    let (tx, rx) = local_channel::new_bounded(1);
    shard.admin_pending.borrow_mut().insert(req, tx);
    shard.send_mesh(
        owner,
        MeshMsg::Core(ShardMsg::InstanceRequest {
            req,
            from: shard.id,
            instance: id.clone(),
        }),
    );
    let reply = until(Instant::now() + SHARD_REPLY_TIMEOUT, rx.recv()).await;
    shard.admin_pending.borrow_mut().remove(&req);
    match reply {
        Some(Some(AdminReply::Instance(d))) => d.map(|b| *b),
        _ => None,
    }
}

/// Every `--health-check-interval-ms`: the node is healthy when every shard
/// answers within [`SHARD_REPLY_TIMEOUT`] and the process CPU per shard,
/// averaged over the whole interval just ended, is at most
/// `--cpu-restart-threshold`. The first check at start-up asks the shards
/// only: no interval has been measured yet, and start-up itself (buffer
/// pools, snapshot restore) is a burst of CPU that says nothing about load.
pub async fn health_loop(shard: Rc<Shard>, state: Rc<AdminState>) {
    let mut cpu = CpuMeter::new(process_cpu_time());
    evaluate(&shard, &state, None).await;
    loop {
        glommio::timer::sleep(shard.cfg().health_check_interval).await;
        let usage = cpu.sample(process_cpu_time(), Instant::now());
        evaluate(&shard, &state, Some(usage / shard.shards as f64)).await;
    }
}

/// Asks every shard to answer and records the verdict.
/// `cpu_per_shard`: the process CPU per shard over the last interval.
pub async fn evaluate(shard: &Shard, state: &AdminState, cpu_per_shard: Option<f64>) {
    let (_, missing) = node_stats(shard, state, false, SHARD_REPLY_TIMEOUT).await;
    let (healthy, reason) = verdict(&missing, cpu_per_shard, shard.cfg().cpu_restart_threshold);
    if !healthy {
        tracing::warn!(%reason, "health check failed");
    }
    *state.health.borrow_mut() = Health {
        healthy,
        reason,
        evaluated_at: Instant::now(),
    };
}

/// The health rule, apart from how its inputs are measured.
fn verdict(missing: &[usize], cpu_per_shard: Option<f64>, threshold: f64) -> (bool, String) {
    if !missing.is_empty() {
        return (
            false,
            format!("shards {missing:?} did not answer within {SHARD_REPLY_TIMEOUT:?}"),
        );
    }
    match cpu_per_shard {
        Some(cpu) if cpu > threshold => (
            false,
            format!("process CPU {cpu:.2} per shard is above --cpu-restart-threshold {threshold}"),
        ),
        Some(cpu) => (
            true,
            format!("all shards answering; CPU {cpu:.2} per shard, threshold {threshold}"),
        ),
        None => (
            true,
            "all shards answering; CPU not measured over a full interval yet".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_shard_or_cpu_above_the_threshold_is_unhealthy() {
        assert!(!verdict(&[1], Some(0.1), 0.9).0);
        assert!(!verdict(&[1], None, 0.9).0);
        let (ok, reason) = verdict(&[], Some(0.95), 0.9);
        assert!(
            !ok && reason.contains("--cpu-restart-threshold"),
            "{reason}"
        );
        assert!(verdict(&[], Some(0.9), 0.9).0);
        // Before a whole interval has been measured, CPU does not count.
        assert!(verdict(&[], None, 0.9).0);
    }
}
