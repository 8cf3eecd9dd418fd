//! A shard's link to the fleet directory: every heartbeat it reports its
//! figures and instances to the agent (with their snapshots when
//! replication is due); the agent's events wake it the moment they arrive
//! and go to the core; look-ups the core asks for are answered here. Never
//! waits on the agent in a slot.

use std::rc::Rc;
use std::time::Instant;

use super::Shard;
use crate::directory::{Directory, SeatAt, ToAgent};
use crate::shard::effects::Ask;
use crate::shard::fleet::{Answer, SEAT_REBUILD_RETRY};

/// The shard's directory tasks (only with --directory).
pub async fn run(shard: Rc<Shard>) {
    let Some(dir) = shard.node.directory.clone() else {
        return;
    };
    let events = dir
        .take_events(shard.id)
        .and_then(|rx| rx.on_executor().ok());
    let Some(events) = events else {
        tracing::error!(
            shard = shard.id,
            "the directory's event mailbox is unavailable"
        );
        return;
    };
    let applying = async {
        while let Some(ev) = events.recv().await {
            let now = Instant::now();
            shard.with_core(now, |core, driver| core.directory_event(driver, now, ev));
        }
    };
    futures_lite::future::zip(applying, report(&shard, &dir)).await;
}

/// Reports every heartbeat; with the replicas when replication is due and
/// the snapshot writer does not send them.
async fn report(shard: &Rc<Shard>, dir: &Directory) {
    let heartbeat = shard
        .cfg()
        .directory
        .as_ref()
        .expect("directory config")
        .heartbeat;
    let replicate_every = shard.cfg().snapshot_interval.unwrap_or(heartbeat);
    // With periodic snapshot files, their capture is the replica too
    // (`replicate`); without, this task captures for replication.
    let writer_replicates =
        shard.node.snapshots.is_some() && shard.cfg().snapshot_interval.is_some();
    let mut next_replica = Instant::now() + replicate_every;
    loop {
        let now = Instant::now();
        let snapshots = if now >= next_replica && !writer_replicates {
            next_replica = now + replicate_every;
            Some(super::snapshots::capture(shard).await.instances)
        } else {
            None
        };
        let report = shard
            .core
            .borrow()
            .directory_report(shard.node.budget.limit(), snapshots);
        dir.tell(ToAgent::Report(report));
        glommio::timer::sleep(heartbeat).await;
    }
}

/// The directory's answer to a look-up a paused connection waits for.
pub async fn answer(dir: &Directory, ask: &Ask) -> Answer {
    match ask {
        Ask::Claim {
            instance,
            create_here,
            ..
        } => Answer::Claim(dir.place(instance.clone(), *create_here).await),
        Ask::Seat { token } => {
            let at = dir
                .ask(|reply| ToAgent::FindSeat {
                    token: token.clone(),
                    reply,
                })
                .await
                .unwrap_or(SeatAt::Nowhere);
            if at == SeatAt::Here {
                // Being rebuilt on this node: the core looks again.
                glommio::timer::sleep(SEAT_REBUILD_RETRY).await;
            }
            Answer::Seat(at)
        }
    }
}

/// A graceful stop in a fleet (the slots have stopped): this shard's final
/// state goes to the directory; once every shard's has, the agent removes
/// the node's registration and the region's other nodes take the instances
/// over at their next heartbeat, with nothing lost.
pub async fn leave_fleet(shard: &Rc<Shard>, dir: &Directory) {
    let snapshots = super::snapshots::capture(shard).await.instances;
    let instances = snapshots.len();
    let report = shard
        .core
        .borrow()
        .directory_report(shard.node.budget.limit(), Some(snapshots));
    match dir
        .ask_within(crate::directory::LEAVE_TIMEOUT, |reply| ToAgent::Leave { report, reply })
        .await
    {
        Some(true) => tracing::info!(
            shard = shard.id,
            instances,
            "final state replicated; the node left the fleet directory"
        ),
        Some(false) | None => tracing::warn!(
            shard = shard.id,
            instances,
            "the directory is unreachable or did not confirm the final replica in time; the region takes over after the TTL, from the last periodic replica"
        ),
    }
}

/// Sends the instances' state just captured for the snapshot file to the
/// directory as their replicas.
pub(crate) fn replicate(shard: &Shard, instances: Vec<crate::snapshot::InstanceSnapshot>) {
    if let Some(dir) = &shard.node.directory {
        let report = shard
            .core
            .borrow()
            .directory_report(shard.node.budget.limit(), Some(instances));
        dir.tell(ToAgent::Report(report));
    }
}
