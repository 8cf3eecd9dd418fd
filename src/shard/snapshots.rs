//! A shard's side of snapshots: capturing its instances (on its own
//! thread: one copy of each world), writing them off the tick (a blocking
//! thread does the archiving, writing and fsync), and rebuilding instances
//! and seats from a restored snapshot at start.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::game::{Instance, InstanceId, InstanceLimits};
use crate::metrics::HistName;
use crate::shard::world::{Hosted, Player};
use crate::shard::Shard;
use crate::snapshot::{InstanceSnapshot, ShardSnapshot, SnapshotLimits};

/// Longest run of capture work before the shard's other tasks get the
/// core back. Copying an arena instance of 16 players costs ~20 µs, so a
/// slice copies ~25 of them; a 2,000-instance shard is captured in ~80
/// slices, within two or three ticks at 30 Hz.
const CAPTURE_SLICE: Duration = Duration::from_micros(500);
/// A slice starts only when the next tick is due at least this far ahead,
/// so a slice never pushes a tick's start back (twice the slice: one
/// instance may overrun the budget, and timers are not exact).
const CAPTURE_ROOM_MIN: Duration = Duration::from_micros(1_000);
const _: () = assert!(CAPTURE_SLICE.as_micros() < CAPTURE_ROOM_MIN.as_micros());
/// How soon after a tick's due time the capture looks again whether the
/// tick has run (the tick's own timer fires at the due time).
const CAPTURE_RECHECK: Duration = Duration::from_micros(100);

impl Shard {
    fn snapshot_limits(&self) -> SnapshotLimits {
        SnapshotLimits {
            instance_bytes_max: self.cfg().instance_snapshot_bytes_max,
        }
    }

    /// Copies one instance (world, seats with their resume tokens, tick),
    /// or `None` when it is gone or its record exceeds the per-instance cap
    /// (logged and counted; the others are still saved).
    fn capture_instance(
        &self,
        id: &InstanceId,
        limits: SnapshotLimits,
    ) -> Option<InstanceSnapshot> {
        let w = self.world.borrow();
        let hosted = w.instances.get(id)?;
        let mut snap = hosted.inst.save();
        snap.fill_tokens(|pid| w.players.get(&pid).map(|p| p.token.clone()));
        match limits.check(self.id as u32, &snap) {
            Ok(()) => Some(snap),
            Err(e) => {
                self.metrics.snapshot_failures.inc();
                tracing::error!(shard = self.id, error = %e, "instance left out of the snapshot");
                None
            }
        }
    }

    /// Copies every instance in slices of at most [`CAPTURE_SLICE`], each
    /// started only when the next tick is at least [`CAPTURE_ROOM_MIN`] away
    /// (in practice: right after a tick), so the copy never delays a tick's
    /// start, and a shard with thousands of instances never stalls one for
    /// the whole copy. Each instance is copied whole at one tick; instances
    /// are independent, so they need not share one.
    pub async fn capture(&self) -> ShardSnapshot {
        let limits = self.snapshot_limits();
        let ids: Vec<InstanceId> = self.world.borrow().instances.keys().cloned().collect();
        let mut instances = Vec::with_capacity(ids.len());
        let mut rest = &ids[..];
        while !rest.is_empty() {
            self.wait_for_capture_room().await;
            let slice_end = Instant::now() + CAPTURE_SLICE;
            let mut taken = 0;
            for id in rest {
                taken += 1;
                instances.extend(self.capture_instance(id, limits));
                if Instant::now() >= slice_end {
                    break;
                }
            }
            rest = &rest[taken..];
            // The sessions write the tick's updates, other background work
            // runs; then the next slice, if the tick leaves room.
            glommio::executor().yield_task_queue_now().await;
        }
        ShardSnapshot::new(
            self.id as u32,
            self.shards as u32,
            &self.cfg().node_id,
            self.node.factory.name(),
            instances,
        )
    }

    /// Waits until a capture slice may run (see [`capture_room`]).
    async fn wait_for_capture_room(&self) {
        let since = Instant::now();
        loop {
            // Once the node stops, no tick is coming: nothing to protect.
            let next_tick = if self.stopping.get() {
                None
            } else {
                self.next_tick_at.get()
            };
            let now = Instant::now();
            match capture_room(now, next_tick, since, self.cfg().tick_interval()) {
                Room::Now => return,
                Room::After(t) => glommio::timer::sleep(t.saturating_duration_since(now)).await,
            }
        }
    }

    /// Rebuilds restored instances and their seats; the seats wait for
    /// their players to resume (the reconnect grace starts now).
    pub fn restore(&self, snaps: Vec<InstanceSnapshot>, now: Instant) {
        let limits = InstanceLimits {
            players_max: self.cfg().players_per_instance_max,
            inputs_per_tick_max: self.cfg().inputs_per_tick_max,
        };
        let (mut instances, mut seats) = (0, 0);
        let mut w = self.world.borrow_mut();
        for snap in snaps {
            let inst = match Instance::restore_with(self.node.factory.as_ref(), &snap, limits) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(shard = self.id, error = %e, "instance not restored");
                    continue;
                }
            };
            log_restored(self.id, &inst);
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
            w.instances.insert(
                inst.id().clone(),
                Hosted {
                    inst,
                    empty_since,
                    tick_us: Default::default(),
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
fn log_restored(shard: usize, inst: &Instance) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let saved = inst.save();
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
enum Room {
    Now,
    /// Look again at this time (just after the next tick is due).
    After(Instant),
}

/// A slice runs when the next tick is at least [`CAPTURE_ROOM_MIN`] away,
/// or when no tick is scheduled. A shard so loaded that its ticks never
/// leave that much room still makes progress: after waiting one tick
/// interval, the slice runs anyway, just after a tick, and may then delay
/// the next one by at most [`CAPTURE_SLICE`].
fn capture_room(
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

/// Writes one snapshot of `shard` now. Returns whether it became durable.
pub async fn write_snapshot(shard: &Rc<Shard>) -> bool {
    let Some(store) = shard.node.snapshots.clone() else {
        return false;
    };
    let started = Instant::now();
    shard.snapshot_writing.set(true);
    let snap = shard.capture().await;
    let idle = shard.cfg().snapshot_writer_idle;
    // In a fleet this capture is also the replica (copied on the writer
    // thread, not the shard's); a stopping shard sends its own.
    let replicate = shard.node.directory.is_some() && !shard.stopping.get();
    let (result, replica) = glommio::executor()
        .spawn_blocking(move || {
            if idle {
                writer_thread_yields_to_shards();
            }
            let replica = replicate.then(|| snap.instances.clone());
            (store.write_blocking(snap), replica)
        })
        .await;
    shard.snapshot_writing.set(false);
    if let Some(instances) = replica {
        crate::directory::link::replicate(shard, instances);
    }
    match result {
        Ok(stats) => {
            shard.metrics.snapshots_written.inc();
            shard
                .metrics
                .hist
                .record(HistName::SnapshotWrite, started.elapsed());
            tracing::debug!(
                shard = shard.id,
                generation = stats.generation,
                bytes = stats.bytes,
                "snapshot written"
            );
            note_first_write(shard);
            true
        }
        Err(e) => {
            shard.metrics.snapshot_failures.inc();
            tracing::error!(shard = shard.id, error = %e, cause = e.cause(), "snapshot write failed; the last good snapshot is kept");
            false
        }
    }
}

thread_local! {
    static WRITER_PRIORITY_SET: Cell<bool> = const { Cell::new(false) };
}

/// Puts the calling thread — glommio's blocking thread, which only writes
/// snapshots — under `SCHED_IDLE`: archiving and writing then use only CPU
/// time no other thread of the process wants, and a shard that wakes for
/// its tick preempts it at once, even when both share a core (a process
/// pinned to the shards' cores, e.g. `taskset`). Between processes the
/// kernel's groups still share the CPU fairly, so the writer is not
/// starved by other programs; it waits only while this node's own threads
/// keep every allowed core busy, and then the next interval's write waits
/// for it (one write per shard in flight). `--snapshot-writer-idle off`
/// leaves the thread at normal priority. Once per thread; a refusal is
/// logged and the write goes on at normal priority.
fn writer_thread_yields_to_shards() {
    if WRITER_PRIORITY_SET.with(|s| s.replace(true)) {
        return;
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: changes only the calling thread's policy (pid 0); `param` is
    // a valid sched_param that outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(error = %e, "snapshot writer keeps normal priority (SCHED_IDLE refused)");
    }
}

/// Once every current shard has written since start, files of shards that a
/// run with more shards left behind hold nothing new: retire them.
fn note_first_write(shard: &Shard) {
    if shard.wrote_snapshot.replace(true) {
        return;
    }
    let done = shard.node.shards_snapshotted.fetch_add(1, Ordering::AcqRel) + 1;
    if done == shard.shards {
        if let Some(store) = &shard.node.snapshots {
            match store.retire_shards_from(shard.shards as u32) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    files = n,
                    "retired snapshot files of shards beyond the current count"
                ),
                Err(e) => tracing::warn!(error = %e, "could not retire old shard snapshot files"),
            }
        }
    }
}

/// Every `--snapshot-interval-ms`, in the background queue.
pub async fn snapshot_loop(shard: Rc<Shard>) {
    let Some(interval) = shard.cfg().snapshot_interval else {
        return;
    };
    loop {
        glommio::timer::sleep(interval).await;
        write_snapshot(&shard).await;
    }
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
