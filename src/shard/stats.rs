//! What a shard reports about itself: its stats snapshot, an instance's live
//! state, the once-a-second sampling (rates, with the CPU use the runtime
//! measured) and the load-shedding decision built on it, and the admin
//! questions other shards ask over the mesh.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::effects::Effects;
use super::mesh::{EntityDetail, InstanceDetail, SeatDetail, ShardMsg};
use super::Core;
use crate::game::InstanceId;
use crate::metrics::report::{InstanceStats, ShardStats};
use crate::protocol::close::CloseReason;

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
    /// CPU use of the shard's thread over the last sample (share of a core).
    pub cpu: f64,
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
    pub fn new(now: Instant) -> Self {
        Self {
            cpu: 0.0,
            last: now,
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

impl Core {
    /// Once per second: rates and the shedding decision, given the shard
    /// thread's CPU use over the last second (measured by the runtime).
    pub fn sample_second(&mut self, now: Instant, cpu: f64) {
        let s = &mut self.sampler;
        let secs = now
            .saturating_duration_since(s.last)
            .as_secs_f64()
            .max(1e-3);
        s.cpu = cpu;
        let ticks = self.metrics.ticks.get();
        let updates = self.metrics.state_updates.get() + self.metrics.state_deltas.get();
        let overrun = self.metrics.ticks_overrun.get();
        s.tick_rate = (ticks - s.last_ticks) as f64 / secs;
        s.update_rate = (updates - s.last_updates) as f64 / secs;
        let overrun_now = overrun - s.last_overrun;
        (s.last, s.last_ticks, s.last_updates, s.last_overrun) = (now, ticks, updates, overrun);
        if !self.shared.cfg.load_shedding {
            return;
        }
        // Late ticks count only when this shard is busy itself: on a shared
        // host other processes can delay an idle shard's timer, and turning
        // players away would not help it.
        let threshold = self.shared.cfg.cpu_restart_threshold;
        let overloaded = (overrun_now >= SHED_OVERRUN_TICKS_PER_SECOND
            && cpu >= threshold * SHED_OVERRUN_CPU_SHARE)
            || cpu > threshold;
        if overloaded {
            s.healthy_seconds = 0;
            s.overloaded_seconds += 1;
            if s.overloaded_seconds >= SHED_AFTER_SECONDS && !self.shedding {
                tracing::warn!(
                    shard = self.id,
                    cpu,
                    overrun_ticks = overrun_now,
                    "overloaded: refusing new players"
                );
                self.shedding = true;
            }
        } else {
            s.overloaded_seconds = 0;
            if self.shedding {
                s.healthy_seconds += 1;
                if s.healthy_seconds >= SHED_RECOVERY_SECONDS {
                    tracing::info!(shard = self.id, "recovered: admitting new players");
                    self.shedding = false;
                }
            }
        }
    }

    /// This shard's figures at `now` (the driver's buffer figures are
    /// filled in by the runtime).
    pub fn stats(&mut self, now: Instant, with_instances: bool) -> ShardStats {
        let w = &mut self.world;
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
                .iter_mut()
                .map(|(id, h)| InstanceStats {
                    id: id.to_string(),
                    shard: self.id,
                    players: h.inst.players(),
                    players_max: h.inst.limits().players_max,
                    tick: h.inst.tick(),
                    tick_us_p99: h.tick_us.p99(),
                    state_bytes: h.inst.state_bytes(),
                    entities: h.inst.seats().count(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let counters = self.metrics.counters();
        let sampler = &self.sampler;
        ShardStats {
            shard: self.id,
            core: self.shared.cfg.shard_cores[self.id],
            counter_help: counters.iter().map(|(n, h, _)| (*n, *h)).collect(),
            counters: counters.iter().map(|(n, _, v)| (*n, *v)).collect(),
            closed: CloseReason::ALL
                .iter()
                .map(|r| (r.label(), self.metrics.closed[r.index()].get()))
                .collect::<BTreeMap<_, _>>(),
            inputs_refused_by_reason: self
                .metrics
                .inputs_refused_by_reason
                .borrow()
                .iter()
                .copied()
                .collect(),
            connections_open: self.metrics.connections_open.get(),
            players_connected,
            players_active,
            seats_detached,
            instances: w.instances.len(),
            instances_max: self.shared.cfg.instances_per_shard_max,
            buffers_free: 0,
            buffers_total: 0,
            cpu_usage: sampler.cpu,
            shedding: self.shedding,
            draining: self.draining,
            tick_rate_measured: sampler.tick_rate,
            update_rate: sampler.update_rate,
            histograms: self.metrics.hist.snapshot(),
            instance_list,
        }
    }

    /// Live state of one of this shard's instances.
    pub fn instance_detail(&mut self, id: &InstanceId) -> Option<InstanceDetail> {
        let w = &mut self.world;
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

    /// Admin and control messages from other shards.
    pub(crate) fn on_admin_mesh(&mut self, fx: &mut dyn Effects, now: Instant, msg: ShardMsg) {
        match msg {
            ShardMsg::StatsRequest {
                req,
                from,
                with_instances,
            } => {
                let stats = Box::new(self.stats(now, with_instances));
                fx.mesh(from, ShardMsg::StatsReply { req, stats });
            }
            ShardMsg::InstanceRequest {
                req,
                from,
                instance,
            } => {
                let detail = self.instance_detail(&instance).map(Box::new);
                fx.mesh(from, ShardMsg::InstanceReply { req, detail });
            }
            ShardMsg::Configure(settings) => self.settings = settings,
            ShardMsg::Drain => self.draining = true,
            // Replies go to the admin requests the runtime keeps; one that
            // reaches the core arrived after its request timed out.
            ShardMsg::StatsReply { .. } | ShardMsg::InstanceReply { .. } => {}
            other => unreachable!("not an admin message: {other:?}"),
        }
    }
}
