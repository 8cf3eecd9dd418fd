//! A shard's side of snapshots: capturing its instances (on its own
//! thread: one copy of each world), writing them off the tick (a blocking
//! thread does the archiving, writing and fsync), and rebuilding instances
//! and seats from a restored snapshot at start.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::game::{Instance, InstanceId, InstanceLimits};
use crate::metrics::HistName;
use crate::shard::world::{Hosted, Migration, Player};
use crate::shard::Shard;
use crate::snapshot::{InstanceSnapshot, ShardSnapshot, SnapshotLimits};

/// Instances copied between two chances for the tick to run (~5 µs each
/// for a 16-player arena: well under a millisecond per chunk).
const CAPTURE_CHUNK: usize = 64;

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

    /// Copies every instance, [`CAPTURE_CHUNK`] at a time, yielding to the
    /// tick in between: a shard with thousands of instances never stalls a
    /// tick for the whole copy. Each instance is copied whole at one tick;
    /// instances are independent, so they need not share one.
    pub async fn capture(&self) -> ShardSnapshot {
        let limits = self.snapshot_limits();
        let ids: Vec<InstanceId> = self.world.borrow().instances.keys().cloned().collect();
        let mut instances = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CAPTURE_CHUNK) {
            instances.extend(
                chunk
                    .iter()
                    .filter_map(|id| self.capture_instance(id, limits)),
            );
            glommio::yield_if_needed().await;
        }
        ShardSnapshot::new(
            self.id as u32,
            self.shards as u32,
            &self.cfg().node_id,
            self.node.factory.name(),
            instances,
        )
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
            for seat in snap.seats.iter().filter(|s| !s.token.is_empty()) {
                if w.tokens.contains_key(&seat.token) || w.players.contains_key(&seat.player) {
                    continue;
                }
                w.add_player(Player {
                    id: seat.player,
                    name: seat.name.clone(),
                    token: seat.token.clone(),
                    conn: None,
                    instance: Some(inst.id().clone()),
                    ever_joined: true,
                    detached_at: Some(now),
                    migration: Migration::None,
                    last_input_at: None,
                    inputs_pending_since: Vec::new(),
                    // Restored seats resume by token; a new Join is checked
                    // against nothing (the ticket was spent before).
                    allowed_instance: None,
                });
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

/// Writes one snapshot of `shard` now. Returns whether it became durable.
pub async fn write_snapshot(shard: &Rc<Shard>) -> bool {
    let Some(store) = shard.node.snapshots.clone() else {
        return false;
    };
    let started = Instant::now();
    let snap = shard.capture().await;
    shard.snapshot_writing.set(true);
    let result = glommio::executor()
        .spawn_blocking(move || store.write_blocking(snap))
        .await;
    shard.snapshot_writing.set(false);
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
