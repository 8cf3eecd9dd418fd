//! The directory's counters. The agent is a plain thread, so these are
//! atomics (relaxed: they are figures, not synchronisation).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

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
    instances_handed_over: "counter", "Instances this evacuating node moved live to another node of its region.";
    players_handed_over: "counter", "Connected players sent (Transfer) after their instance to another node by an evacuation.";
    handovers_failed: "counter", "Hand-overs that failed (the instance ran on here and was tried again).";
    instances_adopted: "counter", "Instances another node of the region handed over to this node.";
}
