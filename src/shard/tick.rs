//! Stepping a slot's instances, and the slower sweeps.
//!
//! At its slot, each due instance applies its queued inputs and steps once
//! (`game::Instance::step`); its StateUpdate is encoded once, and each
//! connected version-1 player gets a copy with its own two fields patched
//! in (`protocol::UpdateTemplate`): O(players) bytes of copying per instance
//! instead of O(players²) of encoding. Version-2 players get StateDeltas
//! (`shard::delta`), shared the same way where their baseline and view
//! are. The driver writes each player's frames of the slot with one write.

use std::time::{Duration, Instant};

use super::delta::{send_deltas, DeltaScratch, DeltaSettings};
use super::effects::Effects;
use super::world::World;
use super::Core;
use crate::game::InstanceId;
use crate::protocol::close::CloseReason;
use crate::protocol::LeaveReason;

/// Reused per-slot buffers (allocated once per shard, grown to the largest
/// world).
#[derive(Default)]
pub struct Scratch {
    ids: Vec<InstanceId>,
    failed: Vec<InstanceId>,
    pub(crate) custom: Vec<u8>,
    /// One player's copy of the shared update.
    update: Vec<u8>,
    /// Protocol v2's buffers.
    v2: DeltaScratch,
}

/// What one slot did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SlotReport {
    /// Instances stepped.
    pub stepped: usize,
    /// StateUpdates queued.
    pub updates: usize,
    /// How late the latest-starting instance step was against its due time.
    pub late_max: Duration,
}

impl Core {
    /// Steps every instance of `slot` that is due by `now` and queues each
    /// connected player's update. `clock` measures step times for the
    /// instances' tick-time figures only; nothing is decided by it.
    pub fn run_slot(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        slot: usize,
        clock: &dyn Fn() -> Instant,
    ) -> SlotReport {
        let dt_s = self.cfg().tick_interval().as_secs_f32();
        let v2_settings = DeltaSettings {
            history: self.cfg().delta_history_ticks,
            interest: self.cfg().interest,
        };
        let interval = self.slots.interval();
        // A timer may fire a little early or late; an instance due within
        // half a slot steps now.
        let slack = self.slots.spacing() / 2;
        let mut report = SlotReport::default();
        let Core {
            world: World {
                instances, players, ..
            },
            slots,
            scratch,
            enc,
            metrics,
            beat,
            id: shard_id,
            ..
        } = self;
        // With the watchdog: which instance this shard is inside of, so a
        // step that never returns can be named.
        let beat = beat.as_ref().map(|b| &b.shards[*shard_id]);
        scratch.ids.clear();
        scratch.ids.extend_from_slice(slots.members(slot));
        scratch.failed.clear();
        let mut overran = false;
        for id in &scratch.ids {
            let Some(hosted) = instances.get_mut(id) else {
                continue;
            };
            if hosted.next_due > now + slack {
                continue; // created during this cycle: steps at its first turn
            }
            let late = now.saturating_duration_since(hosted.next_due);
            report.late_max = report.late_max.max(late);
            if late >= interval / 10 {
                metrics.ticks_late.inc();
            }
            if late >= interval {
                // A whole interval late: the world steps once, not in a
                // burst of catch-up steps; the overrun is counted.
                hosted.overruns += 1;
                overran = true;
                hosted.next_due = slots.next_time_of(slot, now);
            } else {
                hosted.next_due += interval;
            }
            let started = clock();
            if let Some(b) = beat {
                b.stepping(id.as_str());
            }
            let stepped = hosted.inst.step(dt_s);
            if let Some(b) = beat {
                b.stepped();
            }
            let stepped = match stepped {
                Ok(r) => r,
                Err(_) => {
                    scratch.failed.push(id.clone());
                    continue;
                }
            };
            metrics
                .inputs_applied
                .add(u64::from(stepped.inputs_applied));
            report.stepped += 1;
            scratch.custom.clear();
            if hosted.inst.custom_state(&mut scratch.custom).is_err() {
                scratch.failed.push(id.clone());
                continue;
            }
            let tick = hosted.inst.tick();
            hosted.inst.entities();
            if hosted.inst.failed() {
                scratch.failed.push(id.clone());
                continue;
            }
            let (mut v1, mut v2) = (false, false);
            for seat in hosted.inst.seats() {
                let Some(p) = players.get_mut(&seat.player) else {
                    continue;
                };
                if p.conn.is_none() {
                    p.inputs_pending_since.clear();
                } else if p.v2.is_some() {
                    v2 = true;
                } else {
                    v1 = true;
                }
            }
            if v1 {
                // Version 1: one StateUpdate with every entity, shared, and
                // never poses (z, facing): exactly what version 1 always got.
                let entities = hosted.inst.entities();
                enc.set_poses(false);
                let (shared, template) = enc.state_update_shared(tick, entities, &scratch.custom);
                scratch.update.clear();
                scratch.update.extend_from_slice(shared);
                enc.set_poses(true);
                for seat in hosted.inst.seats() {
                    let Some(p) = players.get_mut(&seat.player) else {
                        continue;
                    };
                    let (Some(conn), None) = (p.conn, &p.v2) else {
                        continue;
                    };
                    template.patch(
                        &mut scratch.update,
                        seat.last_input_seq,
                        seat.inputs_applied,
                    );
                    // The inputs applied in this step are reflected in this
                    // update: their latency ends when it reaches the socket.
                    fx.send_update(conn, &scratch.update, &mut p.inputs_pending_since);
                    metrics.state_bytes.add(scratch.update.len() as u64);
                    metrics.state_updates.inc();
                    report.updates += 1;
                }
            }
            if v2 {
                report.updates += send_deltas(
                    fx,
                    hosted,
                    players,
                    enc,
                    metrics,
                    &mut scratch.v2,
                    &scratch.custom,
                    v2_settings,
                );
                if hosted.inst.failed() {
                    // The game's interest() panicked.
                    scratch.failed.push(id.clone());
                    continue;
                }
            }
            let took_us = clock().saturating_duration_since(started).as_micros();
            hosted
                .tick_us
                .push(took_us.min(u128::from(u32::MAX)) as u32);
        }
        if overran {
            // Counted once per slot, as one late tick of the shard was
            // before slots: a stall of the whole shard is one overrun.
            metrics.ticks_overrun.inc();
        }
        metrics.messages_out.add(report.updates as u64);
        let failed = std::mem::take(&mut scratch.failed);
        for id in &failed {
            self.game_failed(fx, id);
        }
        self.scratch.failed = failed;
        // The tick's events go after its state messages.
        let ids = std::mem::take(&mut self.scratch.ids);
        self.flush_game_output(fx, &ids);
        self.scratch.ids = ids;
        if slot == 0 {
            self.metrics.ticks.inc();
        }
        report
    }

    /// Releases seats whose grace ran out, disposes empty instances (after
    /// --instance-idle-ms if they held a game, --instance-unused-ms if not),
    /// and ends waits that ran out: connections that never said Hello
    /// within the connect timeout, moves and look-ups not answered in time,
    /// fleet moves not answered in time.
    pub fn sweep(&mut self, fx: &mut dyn Effects, now: Instant) {
        let grace = self.cfg().reconnect_grace;
        let idle = self.cfg().instance_idle;
        let unused = self.cfg().instance_unused;
        let expired: Vec<_> = self
            .world
            .players
            .values()
            .filter(|p| p.conn.is_none())
            .filter(|p| {
                p.detached_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= grace)
            })
            .map(|p| p.id)
            .collect();
        for pid in expired {
            self.unseat(fx, pid, LeaveReason::TimedOut, now);
            self.world.remove_player(pid);
            self.metrics.seats_expired.inc();
        }
        let idle_ids: Vec<(InstanceId, bool)> = self
            .world
            .instances
            .iter()
            .filter(|(_, h)| {
                let after = if h.held_game { idle } else { unused };
                h.inst.is_empty()
                    && h.empty_since
                        .is_some_and(|t| now.saturating_duration_since(t) >= after)
            })
            .map(|(id, h)| (id.clone(), h.held_game))
            .collect();
        for (id, held_game) in idle_ids {
            self.remove_instance(&id);
            self.metrics.instances_disposed.inc();
            if held_game {
                self.metrics.instances_disposed_idle.inc();
            } else {
                self.metrics.instances_disposed_unused.inc();
            }
        }
        self.expire_waits(fx, now);
        self.expire_transfers(fx, now);
        self.expire_handovers(fx, now);
        self.evacuation_step(fx, now);
    }

    /// Connect timeouts (no Hello yet) and moves not decided in time.
    fn expire_waits(&mut self, fx: &mut dyn Effects, now: Instant) {
        let connect_timeout = self.cfg().connect_timeout;
        let mut silent = Vec::new();
        let mut stuck = Vec::new();
        for (&conn, s) in &self.sessions {
            if s.closing {
                continue;
            }
            if let Some(since) = s.paused_since {
                if now.saturating_duration_since(since) >= super::moves::MOVE_TIMEOUT {
                    stuck.push(conn);
                }
            } else if s.player.is_none()
                && now.saturating_duration_since(s.accepted_at) >= connect_timeout
            {
                silent.push(conn);
            }
        }
        for conn in silent {
            self.close(fx, conn, CloseReason::ConnectTimeout);
        }
        for conn in stuck {
            self.on_move_timeout(fx, conn);
        }
    }

    /// Takes an instance out of the world and its slot.
    pub(crate) fn remove_instance(&mut self, id: &InstanceId) -> Option<super::world::Hosted> {
        let hosted = self.world.instances.remove(id)?;
        self.slots.release(hosted.slot, id, hosted.inst.players());
        Some(hosted)
    }
}
