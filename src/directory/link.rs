//! A shard's side of the directory: every heartbeat it reports its figures
//! and instances to the agent (with their snapshots when replication is
//! due), and it applies what the agent sends it. Runs in the background
//! queue; never waits on the agent.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Claim, SeatAt, ShardReport, ToAgent, ToShard};
use crate::game::{InstanceId, PlayerId};
use crate::net::conn::Conn;
use crate::protocol::ErrorCode;
use crate::shard::Shard;

/// How often a shard looks at its event queue.
const EVENT_POLL: Duration = Duration::from_millis(20);
/// Events applied per look, so a burst cannot hold the queue.
const EVENTS_PER_POLL: usize = 16;

/// The shard's directory task (only with --directory).
pub async fn run(shard: Rc<Shard>) {
    let Some(dir) = shard.node.directory.clone() else {
        return;
    };
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
    let mut next_report = Instant::now();
    let mut next_replica = Instant::now() + replicate_every;
    loop {
        start_pending(&shard, &dir);
        for _ in 0..EVENTS_PER_POLL {
            match dir.events(shard.id).try_recv() {
                Ok(ev) => shard.on_directory_event(ev),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        shard.expire_transfers(now);
        shard.handover_step(now);
        if now >= next_report {
            next_report = now + heartbeat;
            let snapshots = if now >= next_replica && !writer_replicates {
                next_replica = now + replicate_every;
                Some(shard.capture().await.instances)
            } else {
                None
            };
            dir.tell(ToAgent::Report(shard.directory_report(snapshots)));
        }
        glommio::timer::sleep(EVENT_POLL).await;
    }
}

/// A graceful stop in a fleet (the tick has stopped): this shard's final
/// state goes to the directory; once every shard's has, the agent removes
/// the node's registration and the region's other nodes take the instances
/// over at their next heartbeat, with nothing lost.
pub async fn leave_fleet(shard: &Rc<Shard>, dir: &super::Directory) {
    let snapshots = shard.capture().await.instances;
    let instances = snapshots.len();
    let report = shard.directory_report(Some(snapshots));
    match dir
        .ask_within(super::LEAVE_TIMEOUT, |reply| ToAgent::Leave { report, reply })
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
        dir.tell(ToAgent::Report(shard.directory_report(Some(instances))));
    }
}

impl Shard {
    fn directory_report(
        &self,
        snapshots: Option<Vec<crate::snapshot::InstanceSnapshot>>,
    ) -> ShardReport {
        let w = self.world.borrow();
        ShardReport {
            shard: self.id,
            players: w.players.len(),
            instances: w.instances.keys().cloned().collect(),
            draining: self.draining.get(),
            shedding: self.shedding.get(),
            snapshots,
        }
    }

    /// Stops the local copy of an instance another node owns. Connected
    /// players are sent there (Transfer: their seats are in the owner's
    /// copy, from the replica); detached seats here are dropped.
    fn disown(&self, id: &InstanceId, url: &str) {
        let mut w = self.world.borrow_mut();
        let Some(hosted) = w.instances.remove(id) else {
            return;
        };
        let mut sent = 0;
        for seat in hosted.inst.seats() {
            if let Some(conn) = w.players.get(&seat.player).and_then(|p| p.conn.clone()) {
                conn.set_player(None);
                let mut enc = self.enc.borrow_mut();
                self.send(&conn, enc.transfer(url, id.as_str()));
                conn.request_close(crate::net::close::CloseReason::Normal);
                sent += 1;
            }
            w.remove_player(seat.player);
        }
        self.metrics.instances_disposed.inc();
        if let Some(dir) = &self.node.directory {
            dir.metrics.instances_disowned.inc();
        }
        tracing::warn!(shard = self.id, instance = %id, owner = url, players_sent = sent, "local copy of an instance owned by another node stopped");
    }

    fn on_directory_event(&self, ev: ToShard) {
        match ev {
            ToShard::Restore(snaps) => self.restore(snaps, Instant::now()),
            ToShard::Drain => self.draining.set(true),
            ToShard::Notice(b) => self.notice(&b),
            ToShard::MoveOut(order) => self.move_out(order),
            ToShard::TransferLocal {
                move_id,
                to,
                create,
            } => self.transfer_local(&move_id, to, create),
            ToShard::Disown { instance, url } => self.disown(&instance, &url),
            ToShard::Reserve(r) => self.reserve(r),
            ToShard::Reserved(r) => self.on_reserved(r),
            ToShard::Evacuate => self.evacuate(),
            ToShard::Offer(offer) => self.on_handover_offer(offer),
            ToShard::Adopted(done) => self.on_handover_done(done),
            ToShard::Configure(c) => {
                let mut s = self.settings.get();
                if let Some(ms) = c.heartbeat_ms {
                    s.heartbeat = Duration::from_millis(ms);
                }
                if let Some(n) = c.players_per_instance_max {
                    let needed = crate::config::state_update_bytes_max(n);
                    if needed > self.cfg().write_buffer_bytes {
                        tracing::warn!(
                            shard = self.id,
                            n,
                            needed,
                            "fleet players_per_instance_max refused: over --write-buffer-bytes"
                        );
                    } else {
                        s.players_per_instance_max = n;
                    }
                }
                self.settings.set(s);
                if let (Some(n), 0) = (c.max_connections, self.id) {
                    self.node.budget.set_limit(n);
                }
                tracing::info!(shard = self.id, ?s, "fleet configuration applied");
            }
        }
    }
}

/// Look-ups (joins, seats) that may wait for the directory at once per
/// shard; beyond it the request is refused (ServerFull: retry). Each holds a
/// connection handle and an id or token (~100 B).
pub const PENDING_MAX: usize = 256;

// The session gives a paused connection MOVE_TIMEOUT before it gives up on
// the pause; the directory's answer must come (or time out) before that.
const _: () =
    assert!(super::ANSWER_TIMEOUT.as_millis() < crate::shard::moves::MOVE_TIMEOUT.as_millis());

/// How long a resume waits before looking again for a seat whose instance
/// this node is rebuilding (taken over from a dead node).
const SEAT_REBUILD_RETRY: Duration = Duration::from_millis(50);

/// A request waiting for the directory. Its connection is paused (nothing
/// read) meanwhile, so later messages keep their order.
pub enum Pending {
    /// A mid-session Join for an instance this shard does not run: does
    /// another node own it?
    Join {
        conn: Rc<Conn>,
        player: PlayerId,
        instance: InstanceId,
        create: bool,
    },
    /// A resume token no shard here knows: does another node hold its seat?
    Seat { conn: Rc<Conn>, token: String },
}

/// Starts the directory look-up of every queued request.
fn start_pending(shard: &Rc<Shard>, dir: &super::Directory) {
    let pending: Vec<Pending> = shard.directory_pending.borrow_mut().drain(..).collect();
    for p in pending {
        let (queue, shard, dir) = (shard.queues.io, shard.clone(), dir.clone());
        glommio::spawn_local_into(
            async move {
                match p {
                    Pending::Join {
                        conn,
                        player,
                        instance,
                        create,
                    } => {
                        let claim = dir.claim(instance.clone()).await;
                        shard.finish_join(&conn, player, instance, create, claim);
                    }
                    Pending::Seat { conn, token } => {
                        let at = dir
                            .ask(|reply| ToAgent::FindSeat {
                                token: token.clone(),
                                reply,
                            })
                            .await
                            .unwrap_or(SeatAt::Nowhere);
                        if at == SeatAt::Here {
                            // Being rebuilt on this node: look again in a
                            // moment.
                            glommio::timer::sleep(SEAT_REBUILD_RETRY).await;
                        }
                        shard.finish_seat(&conn, &token, at);
                    }
                }
            },
            queue,
        )
        .expect("io queue")
        .detach();
    }
}

impl Shard {
    /// With --directory, a Join for an instance this shard does not run
    /// asks the directory first (it may live on another node).
    pub(crate) fn join_needs_directory(&self, id: &InstanceId) -> bool {
        self.node.directory.is_some() && !self.world.borrow().instances.contains_key(id)
    }

    /// Queues `p` (pausing its connection); `false` when the queue is full
    /// (the caller answers instead).
    fn queue_pending(&self, conn: &Conn, p: Pending) -> bool {
        let mut q = self.directory_pending.borrow_mut();
        if q.len() >= PENDING_MAX {
            return false;
        }
        conn.pause_reading(Instant::now());
        q.push_back(p);
        true
    }

    pub(crate) fn join_after_directory(
        &self,
        conn: &Rc<Conn>,
        pid: PlayerId,
        instance: InstanceId,
        create: bool,
    ) {
        let p = Pending::Join {
            conn: conn.clone(),
            player: pid,
            instance,
            create,
        };
        if !self.queue_pending(conn, p) {
            self.send_error(
                conn,
                ErrorCode::ServerFull,
                "too many requests waiting for the fleet directory; retry",
            );
        }
    }

    /// With --directory, asks whether another node holds the seat of
    /// `token`; `false` when there is no directory (or it is overloaded).
    pub(crate) fn seat_in_fleet(&self, conn: &Rc<Conn>, token: &str) -> bool {
        if self.node.directory.is_none() {
            return false;
        }
        let p = Pending::Seat {
            conn: conn.clone(),
            token: token.to_owned(),
        };
        self.queue_pending(conn, p)
    }

    /// The session gave up on the pause meanwhile, or the connection is gone.
    fn still_waiting(conn: &Conn) -> bool {
        conn.paused_since().is_some() && conn.close_requested().is_none()
    }

    fn finish_join(
        &self,
        conn: &Rc<Conn>,
        pid: PlayerId,
        instance: InstanceId,
        create: bool,
        claim: Claim,
    ) {
        if !Self::still_waiting(conn) || conn.player() != Some(pid) {
            return;
        }
        conn.resume_reading();
        match claim {
            Claim::Mine => self.join_placed(conn, pid, Some(instance), create, Instant::now()),
            Claim::Elsewhere { url, .. } => self.send_error(conn, ErrorCode::WrongNode, &url),
            Claim::Unavailable(why) => self.send_error(conn, ErrorCode::ServerFull, &why),
        }
    }

    fn finish_seat(&self, conn: &Rc<Conn>, token: &str, at: SeatAt) {
        if !Self::still_waiting(conn) || conn.player().is_some() {
            return;
        }
        let since = conn.paused_since();
        conn.resume_reading();
        match at {
            SeatAt::Node(url) => self.send_error(conn, ErrorCode::WrongNode, &url),
            SeatAt::Nowhere => self.refuse_resume(conn),
            SeatAt::Here => {
                // Look again: the seat may have been rebuilt meanwhile; if
                // not, this comes back here. The pause keeps its first
                // start, so the session's MOVE_TIMEOUT bounds the retries.
                self.resume(conn, token);
                if let (Some(first), Some(_)) = (since, conn.paused_since()) {
                    conn.pause_reading(first);
                }
            }
        }
    }
}
