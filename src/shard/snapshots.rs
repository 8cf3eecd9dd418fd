//! A shard core's side of snapshots: capturing its instances (one copy of
//! each world, between slots), and rebuilding instances and seats from a
//! restored snapshot. The runtime (`runtime::snapshots`) decides when to
//! capture — in slices that never delay a slot — and writes off the shard's
//! thread.

use std::time::{Duration, Instant};

use super::world::{Hosted, Player};
use super::Core;
use crate::game::{Instance, InstanceId, InstanceLimits};
use crate::snapshot::{InstanceSnapshot, SnapshotLimits};

/// Longest run of capture work before the shard's other tasks get the
/// core back. Copying an arena instance of 16 players costs ~20 µs, so a
/// slice copies ~25 of them; a 2,000-instance shard is captured in ~80
/// slices, within two or three ticks at 30 Hz.
pub const CAPTURE_SLICE: Duration = Duration::from_micros(500);
/// A slice starts only when the next slot is due at least this far ahead,
/// so a slice never pushes a slot's start back (twice the slice: one
/// instance may overrun the budget, and timers are not exact).
pub const CAPTURE_ROOM_MIN: Duration = Duration::from_micros(1_000);
const _: () = assert!(CAPTURE_SLICE.as_micros() < CAPTURE_ROOM_MIN.as_micros());
/// How soon after a slot's due time the capture looks again whether the
/// slot has run (the slot's own timer fires at the due time).
pub const CAPTURE_RECHECK: Duration = Duration::from_micros(100);

impl Core {
    pub fn snapshot_limits(&self) -> SnapshotLimits {
        SnapshotLimits {
            instance_bytes_max: self.cfg().instance_snapshot_bytes_max,
        }
    }

    /// The ids of every instance, for a capture in slices.
    pub fn instance_ids(&self) -> Vec<InstanceId> {
        self.world.instances.keys().cloned().collect()
    }

    /// Copies one instance (world, seats with their resume tokens, tick),
    /// or `None` when it is gone or its record exceeds the per-instance cap
    /// (logged and counted; the others are still saved).
    pub fn capture_instance(&mut self, id: &InstanceId) -> Option<InstanceSnapshot> {
        let limits = self.snapshot_limits();
        let w = &mut self.world;
        let hosted = w.instances.get_mut(id)?;
        let Ok(mut snap) = hosted.inst.save() else {
            // The game failed saving: the instance is disposed at its next
            // slot (a failed instance steps no more).
            self.metrics.snapshot_failures.inc();
            return None;
        };
        let players = &w.players;
        snap.fill_tokens(|pid| players.get(&pid).map(|p| p.token.clone()));
        match limits.check(self.id as u32, &snap) {
            Ok(()) => Some(snap),
            Err(e) => {
                self.metrics.snapshot_failures.inc();
                tracing::error!(shard = self.id, error = %e, "instance left out of the snapshot");
                None
            }
        }
    }

    /// Rebuilds restored instances and their seats; the seats wait for
    /// their players to resume (the reconnect grace starts now).
    pub fn restore(&mut self, snaps: Vec<InstanceSnapshot>, now: Instant) {
        let limits = InstanceLimits {
            players_max: self.cfg().players_per_instance_max,
            inputs_per_tick_max: self.cfg().inputs_per_tick_max,
        };
        let (mut instances, mut seats) = (0, 0);
        for snap in snaps {
            let mut inst = match Instance::restore_with(self.shared.factory.as_ref(), &snap, limits)
            {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(shard = self.id, error = %e, "instance not restored");
                    continue;
                }
            };
            log_restored(self.id, &mut inst);
            inst.set_message_limits(self.message_limits());
            let w = &mut self.world;
            for seat in snap.seats.iter().filter(|s| !s.token.is_empty()) {
                if w.tokens.contains_key(&seat.token) || w.players.contains_key(&seat.player) {
                    continue;
                }
                // Restored seats resume by token; a new Join is checked
                // against nothing (the ticket was spent before).
                w.add_player(Player::detached(
                    seat.player,
                    seat.name.clone(),
                    seat.token.clone(),
                    Some(inst.id().clone()),
                    None,
                    now,
                ));
                seats += 1;
            }
            let empty_since = inst.is_empty().then_some(now);
            let id = inst.id().clone();
            if w.instances.contains_key(&id) {
                continue; // already running here (a take-over's late copy)
            }
            let players = inst.players();
            let (slot, next_due) = self.slots.assign(&id, now);
            (0..players).for_each(|_| self.slots.player_joined(slot));
            self.world.instances.insert(
                id,
                Hosted {
                    inst,
                    empty_since,
                    // It held a game before the restart: the longer idle.
                    creator: None,
                    created_at: now,
                    held_game: true,
                    tick_us: Default::default(),
                    slot,
                    next_due,
                    overruns: 0,
                    v2: Default::default(),
                },
            );
            instances += 1;
        }
        if instances > 0 {
            tracing::info!(shard = self.id, instances, seats, "restored from snapshot");
        }
    }
}

/// At debug level: the tick and the CRC-32 of the world an instance came
/// back with, saved again from the rebuilt instance: equal to the record's
/// (`snapshot inspect --json`) when the restore reproduced it exactly.
fn log_restored(shard: usize, inst: &mut Instance) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    if let Ok(saved) = inst.save() {
        tracing::debug!(
            shard,
            instance = %inst.id(),
            tick = saved.tick,
            state_crc32 = %format_args!("{:08x}", saved.state_crc32()),
            "instance restored"
        );
    }
}

/// Whether a capture slice may run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    Now,
    /// Look again at this time (just after the next tick is due).
    After(Instant),
}

/// A slice runs when the next tick is at least [`CAPTURE_ROOM_MIN`] away,
/// or when no tick is scheduled. A shard so loaded that its ticks never
/// leave that much room still makes progress: after waiting one tick
/// interval, the slice runs anyway, just after a tick, and may then delay
/// the next one by at most [`CAPTURE_SLICE`].
pub fn capture_room(
    now: Instant,
    next_tick: Option<Instant>,
    waiting_since: Instant,
    tick_interval: Duration,
) -> Room {
    let Some(next) = next_tick else {
        return Room::Now;
    };
    if next.saturating_duration_since(now) >= CAPTURE_ROOM_MIN
        || now.saturating_duration_since(waiting_since) >= tick_interval
    {
        return Room::Now;
    }
    Room::After(next.max(now) + CAPTURE_RECHECK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_micros(33_333);

    #[test]
    fn a_slice_runs_only_with_room_before_the_next_tick() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Right after a tick: 30 ms of room.
        assert_eq!(capture_room(t0, Some(t0 + ms(30)), t0, TICK), Room::Now);
        // Exactly the minimum room is enough; less is not.
        assert_eq!(
            capture_room(t0, Some(t0 + CAPTURE_ROOM_MIN), t0, TICK),
            Room::Now
        );
        let soon = t0 + CAPTURE_ROOM_MIN - Duration::from_micros(1);
        assert_eq!(
            capture_room(t0, Some(soon), t0, TICK),
            Room::After(soon + CAPTURE_RECHECK)
        );
        // The tick is due or late and has not run yet: look again shortly.
        assert_eq!(
            capture_room(t0 + ms(5), Some(t0), t0, TICK),
            Room::After(t0 + ms(5) + CAPTURE_RECHECK)
        );
    }

    #[test]
    fn no_tick_or_a_long_wait_lets_the_slice_run() {
        let t0 = Instant::now();
        assert_eq!(capture_room(t0, None, t0, TICK), Room::Now);
        // Overloaded: the tick never leaves room; after one interval of
        // waiting the capture goes on anyway.
        let now = t0 + TICK;
        assert_eq!(capture_room(now, Some(now), t0, TICK), Room::Now);
        let almost = t0 + TICK - Duration::from_micros(1);
        assert!(matches!(
            capture_room(almost, Some(almost), t0, TICK),
            Room::After(_)
        ));
    }
}
