//! What a shard reports about itself: its stats snapshot, an instance's live
//! state, the once-a-second sampling (CPU, rates) and the load-shedding
//! decision built on it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::game::InstanceId;
use crate::metrics::report::{InstanceStats, ShardStats};
use crate::metrics::system::{thread_cpu_time, CpuMeter};
use crate::net::close::CloseReason;
use crate::shard::mesh::{EntityDetail, InstanceDetail, SeatDetail};
use crate::shard::Shard;

/// A player who sent input within this window counts as active.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(5);
/// Seconds a shard must stay healthy before it admits players again after
/// shedding (hysteresis, so it does not flap).
const SHED_RECOVERY_SECONDS: u32 = 3;
/// Overrun ticks (started a whole interval late) within one second that
/// count as an overloaded second: the tick budget is used up.
const SHED_OVERRUN_TICKS_PER_SECOND: u64 = 3;
/// Share of --cpu-restart-threshold a shard must use for its own overrun
/// ticks to count as its overload.
const SHED_OVERRUN_CPU_SHARE: f64 = 0.5;
/// Consecutive overloaded seconds before a shard sheds: one noisy second on
/// a shared host is not overload.
const SHED_AFTER_SECONDS: u32 = 2;

/// Figures sampled once per second.
pub struct Sampler {
    cpu: CpuMeter,
    last: Instant,
    last_ticks: u64,
    last_updates: u64,
    last_overrun: u64,
    overloaded_seconds: u32,
    pub tick_rate: f64,
    pub update_rate: f64,
    healthy_seconds: u32,
}

impl Sampler {
    pub fn new() -> Self {
        Self {
            cpu: CpuMeter::new(thread_cpu_time()),
            last: Instant::now(),
            last_ticks: 0,
            last_updates: 0,
            last_overrun: 0,
            overloaded_seconds: 0,
            tick_rate: 0.0,
            update_rate: 0.0,
            healthy_seconds: 0,
        }
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Shard {
    /// Once per second (from the sweep task): CPU, rates, shedding.
    pub fn sample_second(&self, now: Instant) {
        let mut s = self.sampler.borrow_mut();
        let secs = now.duration_since(s.last).as_secs_f64().max(1e-3);
        let cpu = s.cpu.sample(thread_cpu_time(), now);
        let ticks = self.metrics.ticks.get();
        let updates = self.metrics.state_updates.get();
        let overrun = self.metrics.ticks_overrun.get();
        s.tick_rate = (ticks - s.last_ticks) as f64 / secs;
        s.update_rate = (updates - s.last_updates) as f64 / secs;
        let overrun_now = overrun - s.last_overrun;
        (s.last, s.last_ticks, s.last_updates, s.last_overrun) = (now, ticks, updates, overrun);
        if !self.cfg().load_shedding {
            return;
        }
        // Late ticks count only when this shard is busy itself: on a shared
        // host other processes can delay an idle shard's timer, and turning
        // players away would not help it.
        let threshold = self.cfg().cpu_restart_threshold;
        let overloaded = (overrun_now >= SHED_OVERRUN_TICKS_PER_SECOND
            && cpu >= threshold * SHED_OVERRUN_CPU_SHARE)
            || cpu > threshold;
        if overloaded {
            s.healthy_seconds = 0;
            s.overloaded_seconds += 1;
            if s.overloaded_seconds >= SHED_AFTER_SECONDS && !self.shedding.get() {
                tracing::warn!(
                    shard = self.id,
                    cpu,
                    overrun_ticks = overrun_now,
                    "overloaded: refusing new players"
                );
                self.shedding.set(true);
            }
        } else {
            s.overloaded_seconds = 0;
            if self.shedding.get() {
                s.healthy_seconds += 1;
                if s.healthy_seconds >= SHED_RECOVERY_SECONDS {
                    tracing::info!(shard = self.id, "recovered: admitting new players");
                    self.shedding.set(false);
                }
            }
        }
    }

    /// This shard's figures now.
    pub fn stats(&self, with_instances: bool) -> ShardStats {
        let now = Instant::now();
        let w = self.world.borrow();
        let players_connected = w.players.values().filter(|p| p.conn.is_some()).count();
        let players_active = w
            .players
            .values()
            .filter(|p| {
                p.last_input_at
                    .is_some_and(|t| now.duration_since(t) < ACTIVE_WINDOW)
            })
            .count();
        let seats_detached = w
            .players
            .values()
            .filter(|p| p.conn.is_none() && p.instance.is_some())
            .count();
        let instance_list = if with_instances {
            w.instances
                .iter()
                .map(|(id, h)| InstanceStats {
                    id: id.to_string(),
                    shard: self.id,
                    players: h.inst.players(),
                    players_max: h.inst.limits().players_max,
                    tick: h.inst.tick(),
                    tick_us_p99: h.tick_us.p99(),
                    state_bytes: h.inst.game().state_bytes(),
                    entities: h.inst.seats().count(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let counters = self.metrics.counters();
        let sampler = self.sampler.borrow();
        let pool = self.pool.borrow();
        ShardStats {
            shard: self.id,
            core: self.cfg().shard_cores[self.id],
            counter_help: counters.iter().map(|(n, h, _)| (*n, *h)).collect(),
            counters: counters.iter().map(|(n, _, v)| (*n, *v)).collect(),
            closed: CloseReason::ALL
                .iter()
                .map(|r| (r.label(), self.metrics.closed[r.index()].get()))
                .collect::<BTreeMap<_, _>>(),
            connections_open: self.metrics.connections_open.get(),
            players_connected,
            players_active,
            seats_detached,
            instances: w.instances.len(),
            buffers_free: pool.available(),
            buffers_total: pool.total(),
            cpu_usage: sampler.cpu.usage(),
            shedding: self.shedding.get(),
            draining: self.draining.get(),
            tick_rate_measured: sampler.tick_rate,
            update_rate: sampler.update_rate,
            histograms: self.metrics.hist.snapshot(),
            instance_list,
        }
    }

    /// Live state of one of this shard's instances.
    pub fn instance_detail(&self, id: &InstanceId) -> Option<InstanceDetail> {
        let mut w = self.world.borrow_mut();
        let w = &mut *w;
        let hosted = w.instances.get_mut(id)?;
        let seats = hosted
            .inst
            .seats()
            .map(|s| SeatDetail {
                player_id: s.player,
                name: s.name.clone(),
                entity: s.entity,
                connected: w.players.get(&s.player).is_some_and(|p| p.conn.is_some()),
                last_input_seq: s.last_input_seq,
                inputs_applied: s.inputs_applied,
            })
            .collect();
        let tick = hosted.inst.tick();
        let players_max = hosted.inst.limits().players_max;
        let bounds = hosted.inst.bounds();
        let entities = hosted
            .inst
            .entities()
            .iter()
            .map(|e| EntityDetail {
                id: e.id,
                kind: e.kind,
                x: e.x,
                y: e.y,
                vx: e.vx,
                vy: e.vy,
            })
            .collect();
        Some(InstanceDetail {
            id: id.to_string(),
            shard: self.id,
            tick,
            players_max,
            bounds,
            seats,
            entities,
        })
    }
}
