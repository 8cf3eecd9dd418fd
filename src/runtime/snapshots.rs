//! A shard's snapshots at run time: capturing its instances in slices that
//! never delay a slot (the copy itself is the core's,
//! `shard::snapshots`), and writing them off the shard's thread (a
//! blocking thread archives, writes and fsyncs).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Shard;
use crate::metrics::HistName;
use crate::shard::snapshots::{capture_room, Room, CAPTURE_SLICE};
use crate::snapshot::ShardSnapshot;

/// Copies every instance in slices of at most [`CAPTURE_SLICE`], each
/// started only when the next slot is at least `CAPTURE_ROOM_MIN` away (in
/// practice: right after a slot), so the copy never delays a slot's start,
/// and a shard with thousands of instances never stalls one for the whole
/// copy. Each instance is copied whole between two slots; instances are
/// independent, so they need not share one.
pub async fn capture(shard: &Rc<Shard>) -> ShardSnapshot {
    let ids = shard.core.borrow().instance_ids();
    let mut instances = Vec::with_capacity(ids.len());
    let mut rest = &ids[..];
    while !rest.is_empty() {
        wait_for_capture_room(shard).await;
        let slice_end = Instant::now() + CAPTURE_SLICE;
        let mut taken = 0;
        {
            let mut core = shard.core.borrow_mut();
            for id in rest {
                taken += 1;
                instances.extend(core.capture_instance(id));
                if Instant::now() >= slice_end {
                    break;
                }
            }
        }
        rest = &rest[taken..];
        // Writes, other background work run; then the next slice, if the
        // slots leave room.
        glommio::executor().yield_task_queue_now().await;
    }
    ShardSnapshot::new(
        shard.id as u32,
        shard.shards as u32,
        &shard.cfg().node_id,
        shard.node.core.factory.name(),
        instances,
    )
}

/// Waits until a capture slice may run (see `capture_room`).
async fn wait_for_capture_room(shard: &Shard) {
    let since = Instant::now();
    loop {
        // Once the node stops, no slot is coming: nothing to protect.
        let next_slot = if shard.stopping.get() {
            None
        } else {
            Some(shard.core.borrow().slots.next().0)
        };
        let now = Instant::now();
        match capture_room(now, next_slot, since, shard.cfg().tick_interval()) {
            Room::Now => return,
            Room::After(t) => glommio::timer::sleep(t.saturating_duration_since(now)).await,
        }
    }
}

/// Writes one snapshot of `shard` now. Returns whether it became durable.
pub async fn write_snapshot(shard: &Rc<Shard>) -> bool {
    let Some(store) = shard.node.snapshots.clone() else {
        return false;
    };
    let started = Instant::now();
    shard.snapshot_writing.set(true);
    let snap = capture(shard).await;
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
        super::directory::replicate(shard, instances);
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
