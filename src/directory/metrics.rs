//! The directory's counters. The agent is a plain thread, so these are
//! atomics (relaxed: they are figures, not synchronisation).
//!
//! Besides the named counters, every Redis command the agent sends is
//! counted by kind ([`Op`]): `shardline_directory_ops_total{kind}` and, over
//! the last [`OPS_RATE_WINDOW`], `shardline_directory_ops_per_s{kind}` —
//! what this node costs the directory, and for what.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Count(AtomicU64);

impl Count {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! directory_metrics {
    ($($name:ident: $kind:literal, $help:literal;)*) => {
        #[derive(Default)]
        pub struct DirectoryMetrics {
            $(#[doc = $help] pub $name: Count,)*
            /// Redis commands by kind, and their recent rate.
            pub ops: OpCounts,
        }

        impl DirectoryMetrics {
            /// Prometheus text lines, labelled with the node id.
            pub fn render(&self, node: &str) -> String {
                let mut out = String::new();
                $(
                    let name = if $kind == "counter" {
                        format!("shardline_directory_{}_total", stringify!($name))
                    } else {
                        format!("shardline_directory_{}", stringify!($name))
                    };
                    let _ = writeln!(out, "# HELP {name} {}", $help);
                    let _ = writeln!(out, "# TYPE {name} {}", $kind);
                    let _ = writeln!(out, "{name}{{node=\"{node}\"}} {}", self.$name.get());
                )*
                self.ops.render(node, &mut out);
                out
            }
        }
    };
}

directory_metrics! {
    up: "gauge", "1 while the directory (Redis) answers, else 0.";
    errors: "counter", "Redis operations that failed (the connection is then re-made).";
    reconnects: "counter", "Connections to Redis made (the first one included).";
    refused: "counter", "Requests refused because the directory could not answer (outage, overload).";
    agent_queue_full: "counter", "Messages for the agent dropped because its queue was full.";
    shard_events_dropped: "counter", "Events for a shard dropped because its queue was full.";
    publishes_early: "counter", "Registry entries written between heartbeats: the node filled up, had room again, began draining or its load moved by a step.";
    replicas_written: "counter", "Instance snapshots replicated to the directory.";
    replica_bytes: "counter", "Compressed bytes of the replicated snapshots written.";
    replica_instance_bytes_max: "gauge", "Largest replicated snapshot of one instance in each shard's last round, compressed bytes.";
    replicas_too_large: "counter", "Instance snapshots not replicated: over --replica-bytes-max.";
    instances_taken_over: "counter", "Instances of dead nodes this node claimed and restored.";
    instances_lost: "counter", "Instances of dead nodes that had no usable replica.";
    claim_conflicts: "counter", "Local instances found owned by another node.";
    instances_disowned: "counter", "Local copies of instances another node owns, stopped (their connected players sent there).";
    fleet_messages: "counter", "Fleet messages (pub/sub) applied.";
    notices_sent: "counter", "Notices (fleet broadcasts) sent to players.";
    players_moved_out: "counter", "Players this node moved to another instance by `shardline fleet move`.";
    players_moved_in: "counter", "Seats reserved here for players moving from another node.";
    moves_failed: "counter", "`shardline fleet move`s this node refused or abandoned (the player stayed).";
    replicas_unchanged: "counter", "Instance states not replicated because they equal the replica last written (tick count aside).";
    replicas_superseded: "counter", "Queued instance states replaced by a newer one before the budget let them be written.";
    replicas_fenced: "counter", "Replica writes the directory refused because this node no longer owns the instance (epoch changed).";
    replicas_pending: "gauge", "Instance states waiting for the replica budget (--replica-writes-per-s-max).";
    replica_wait_ms_max: "gauge", "How long the longest-waiting queued instance state has waited, ms.";
    claims_revalidated: "counter", "Claims compared with the directory after a reconnect (or failover).";
    claims_lost: "counter", "Claims found held by another node (a failover lost this node's claim, or its region took the instance over).";
    instances_handed_over: "counter", "Local copies of instances another node owns whose players were handed to it (Transfer, seats reserved there).";
    players_handed_over: "counter", "Players handed to another node with their seats (on a lost claim).";
    players_handed_in: "counter", "Players another node handed to this one with their seats.";
    instances_evacuated: "counter", "Instances this evacuating node moved live to another node of its region.";
    players_evacuated: "counter", "Connected players sent (Transfer) after their instance to another node by an evacuation.";
    evacuations_failed: "counter", "Evacuation hand-overs that failed (the instance ran on here and was tried again).";
    instances_adopted: "counter", "Instances another node of the region handed over to this node (an evacuation).";
    seats_ended: "counter", "Seats removed from the directory because they ended here (the player left, or its grace ran out).";
    instance_mail_sent: "counter", "Messages between instances published to the node that owns their target.";
    instance_mail_dropped: "counter", "Messages between instances dropped: no node owns the target, the owner is this node (the instance is gone), or Redis did not answer.";
}

/// The kinds of Redis commands the agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The node's registry entry (every heartbeat).
    Register,
    /// Reading the registry (every heartbeat).
    ReadFleet,
    /// Claiming or looking up an instance's owner (a join, a move).
    Claim,
    /// A take-over of a dead node's instances.
    TakeOver,
    /// Releasing a disposed instance.
    Release,
    /// A replica (fenced; with its seats).
    Replica,
    /// A seat recorded at a join.
    Seat,
    /// A seat removed because it ended.
    SeatEnd,
    /// A resume token looked up.
    FindSeat,
    /// A `/v1/route?instance=` answer.
    Route,
    /// Claims compared with the directory after a reconnect.
    Revalidate,
    /// Fleet messages this node publishes (moves, hand-overs).
    Publish,
    /// A move's outcome for its caller.
    MoveOutcome,
    /// An evacuation: giving an instance to another node, adopting one.
    Evacuate,
}

impl Op {
    pub const ALL: [Op; 14] = [
        Op::Register,
        Op::ReadFleet,
        Op::Claim,
        Op::TakeOver,
        Op::Release,
        Op::Replica,
        Op::Seat,
        Op::SeatEnd,
        Op::FindSeat,
        Op::Route,
        Op::Revalidate,
        Op::Publish,
        Op::MoveOutcome,
        Op::Evacuate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::ReadFleet => "read_fleet",
            Op::Claim => "claim",
            Op::TakeOver => "take_over",
            Op::Release => "release",
            Op::Replica => "replica",
            Op::Seat => "seat",
            Op::SeatEnd => "seat_end",
            Op::FindSeat => "find_seat",
            Op::Route => "route",
            Op::Revalidate => "revalidate",
            Op::Publish => "publish",
            Op::MoveOutcome => "move_outcome",
            Op::Evacuate => "evacuate",
        }
    }
}

const OPS: usize = Op::ALL.len();
/// The window `shardline_directory_ops_per_s` averages over.
pub const OPS_RATE_WINDOW: Duration = Duration::from_secs(10);

/// Redis commands sent, by kind, and their rate over the last window
/// (in thousandths of a command per second, so an atomic integer holds it).
#[derive(Default)]
pub struct OpCounts {
    total: [Count; OPS],
    per_s_milli: [Count; OPS],
}

impl OpCounts {
    pub fn add(&self, op: Op, n: u64) {
        self.total[op as usize].add(n);
    }

    pub fn total(&self, op: Op) -> u64 {
        self.total[op as usize].get()
    }

    /// Commands per second of `op` over the last window.
    pub fn per_s(&self, op: Op) -> f64 {
        self.per_s_milli[op as usize].get() as f64 / 1000.0
    }

    fn render(&self, node: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP shardline_directory_ops_total Redis commands the directory agent sent, by kind.");
        let _ = writeln!(out, "# TYPE shardline_directory_ops_total counter");
        for op in Op::ALL {
            let _ = writeln!(
                out,
                "shardline_directory_ops_total{{node=\"{node}\",kind=\"{}\"}} {}",
                op.name(),
                self.total(op)
            );
        }
        let _ = writeln!(out, "# HELP shardline_directory_ops_per_s Redis commands per second the directory agent sent, by kind, over the last {} s.", OPS_RATE_WINDOW.as_secs());
        let _ = writeln!(out, "# TYPE shardline_directory_ops_per_s gauge");
        for op in Op::ALL {
            let _ = writeln!(
                out,
                "shardline_directory_ops_per_s{{node=\"{node}\",kind=\"{}\"}} {:.3}",
                op.name(),
                self.per_s(op)
            );
        }
    }
}

/// Samples of the totals, to compute the rates (kept by the agent; one
/// sample per heartbeat over [`OPS_RATE_WINDOW`]).
#[derive(Default)]
pub struct OpRates {
    samples: VecDeque<(Instant, [u64; OPS])>,
}

impl OpRates {
    /// Adds a sample of `ops` at `now` and publishes the rates.
    pub fn sample(&mut self, ops: &OpCounts, now: Instant) {
        let current: [u64; OPS] = std::array::from_fn(|i| ops.total[i].get());
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > OPS_RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        if let Some((t, first)) = self.samples.front() {
            let secs = now.saturating_duration_since(*t).as_secs_f64();
            if secs > 0.0 {
                for i in 0..OPS {
                    let rate = (current[i] - first[i]) as f64 / secs;
                    ops.per_s_milli[i].set((rate * 1000.0).round() as u64);
                }
            }
        }
        self.samples.push_back((now, current));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_averaged_over_the_window() {
        let m = DirectoryMetrics::default();
        let mut r = OpRates::default();
        let t0 = Instant::now();
        r.sample(&m.ops, t0);
        m.ops.add(Op::Replica, 50);
        m.ops.add(Op::Claim, 3);
        r.sample(&m.ops, t0 + Duration::from_secs(2));
        assert_eq!(m.ops.per_s(Op::Replica), 25.0);
        assert_eq!(m.ops.per_s(Op::Claim), 1.5);
        // Samples older than the window drop out.
        m.ops.add(Op::Replica, 10);
        r.sample(&m.ops, t0 + Duration::from_secs(12));
        assert_eq!(m.ops.per_s(Op::Replica), 1.0);
        let text = m.render("n1");
        assert!(text.contains("shardline_directory_ops_total{node=\"n1\",kind=\"replica\"} 60"));
        assert!(text.contains("shardline_directory_ops_per_s{node=\"n1\",kind=\"claim\"} 0.000"));
    }
}
