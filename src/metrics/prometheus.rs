//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4).
//!
//! Counters per shard (`shard` label), gauges per shard and per node, the
//! latency histograms as summaries (quantiles 0.5/0.9/0.99/0.999, `_sum`,
//! `_count`, in seconds) per shard plus `shard="all"` for the merged one.

use std::fmt::Write;

use crate::metrics::histograms::HistName;
use crate::metrics::report::{close_labels, NodeStats};

const PREFIX: &str = "shardline";

pub fn render(stats: &NodeStats) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let node = &stats.node_id;
    counters(&mut out, stats);
    closed(&mut out, stats);
    refusals(&mut out, stats);
    shard_gauges(&mut out, stats);
    node_gauges(&mut out, stats, node);
    summaries(&mut out, stats);
    instances(&mut out, stats);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}_{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}_{name} {kind}");
}

fn counters(out: &mut String, stats: &NodeStats) {
    let Some(first) = stats.shards.first() else {
        return;
    };
    for (&name, &help) in &first.counter_help {
        header(out, &format!("{name}_total"), "counter", help);
        for s in &stats.shards {
            let v = s.counters.get(name).copied().unwrap_or(0);
            let _ = writeln!(out, "{PREFIX}_{name}_total{{shard=\"{}\"}} {v}", s.shard);
        }
    }
}

fn closed(out: &mut String, stats: &NodeStats) {
    header(
        out,
        "connections_closed_total",
        "counter",
        "Connections ended, by reason (close code family)",
    );
    for s in &stats.shards {
        for label in close_labels() {
            let v = s.closed.get(label).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{PREFIX}_connections_closed_total{{shard=\"{}\",reason=\"{label}\"}} {v}",
                s.shard
            );
        }
    }
}

fn refusals(out: &mut String, stats: &NodeStats) {
    header(
        out,
        "inputs_refused_by_reason_total",
        "counter",
        "Inputs the game refused as impossible (Game::validate_input), by the game's reason",
    );
    for s in &stats.shards {
        for (reason, v) in &s.inputs_refused_by_reason {
            let reason = reason
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(
                out,
                "{PREFIX}_inputs_refused_by_reason_total{{shard=\"{}\",reason=\"{reason}\"}} {v}",
                s.shard
            );
        }
    }
}

fn shard_gauges(out: &mut String, stats: &NodeStats) {
    type Get = fn(&crate::metrics::report::ShardStats) -> f64;
    let gauges: [(&str, &str, Get); 13] = [
        ("connections_open", "Open WebSocket connections", |s| {
            s.connections_open as f64
        }),
        ("players_connected", "Players with a live connection", |s| {
            s.players_connected as f64
        }),
        (
            "players_active",
            "Players who sent input in the last 5 s",
            |s| s.players_active as f64,
        ),
        (
            "seats_detached",
            "Seats kept for disconnected players awaiting a resume",
            |s| s.seats_detached as f64,
        ),
        ("instances", "Game instances running", |s| {
            s.instances as f64
        }),
        (
            "instances_max",
            "The shard's instance table size (--instances-per-shard-max)",
            |s| s.instances_max as f64,
        ),
        (
            "instance_table_fill_ratio",
            "Instances running over --instances-per-shard-max (1 = full: creations get Error(ShardFull))",
            |s| s.instances as f64 / s.instances_max.max(1) as f64,
        ),
        (
            "buffers_free",
            "Free preallocated connection buffers",
            |s| s.buffers_free as f64,
        ),
        (
            "shard_cpu_usage_ratio",
            "Shard thread CPU usage over the last second (1 = its core busy)",
            |s| s.cpu_usage,
        ),
        (
            "shedding",
            "1 while the shard refuses new players to protect running games",
            |s| f64::from(u8::from(s.shedding)),
        ),
        ("draining", "1 while the shard places no new players", |s| {
            f64::from(u8::from(s.draining))
        }),
        (
            "tick_rate_measured_hz",
            "Ticks per second over the last second",
            |s| s.tick_rate_measured,
        ),
        (
            "update_rate_per_second",
            "StateUpdates sent per second over the last second",
            |s| s.update_rate,
        ),
    ];
    for (name, help, get) in gauges {
        header(out, name, "gauge", help);
        for s in &stats.shards {
            let _ = writeln!(out, "{PREFIX}_{name}{{shard=\"{}\"}} {}", s.shard, get(s));
        }
    }
}

fn node_gauges(out: &mut String, stats: &NodeStats, node: &str) {
    let m = &stats.memory;
    let gauges: [(&str, &str, f64); 10] = [
        (
            "process_cpu_usage_ratio",
            "Process CPU usage over the last second (1 = one core)",
            stats.process_cpu_usage,
        ),
        (
            "load_average_1m",
            "Host load average, 1 minute",
            stats.load_average[0],
        ),
        (
            "load_average_5m",
            "Host load average, 5 minutes",
            stats.load_average[1],
        ),
        (
            "load_average_15m",
            "Host load average, 15 minutes",
            stats.load_average[2],
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            m.process_rss_bytes as f64,
        ),
        (
            "host_memory_used_bytes",
            "Host memory in use (total - available)",
            m.host_used_bytes as f64,
        ),
        (
            "host_memory_available_bytes",
            "Host memory available",
            m.host_available_bytes as f64,
        ),
        (
            "node_connections_open",
            "Open connections counted against --max-connections",
            stats.connections_open as f64,
        ),
        (
            "node_max_connections",
            "Current --max-connections",
            stats.max_connections as f64,
        ),
        (
            "node_ready",
            "1 when the node accepts new players",
            f64::from(u8::from(stats.ready)),
        ),
    ];
    for (name, help, v) in gauges {
        header(out, name, "gauge", help);
        let _ = writeln!(out, "{PREFIX}_{name}{{node=\"{node}\"}} {v}");
    }
}

fn summaries(out: &mut String, stats: &NodeStats) {
    for name in HistName::ALL {
        let metric = format!("{}_seconds", name.as_str());
        header(out, &metric, "summary", name.help());
        let mut series: Vec<(String, hdrhistogram::Histogram<u64>)> = stats
            .shards
            .iter()
            .filter_map(|s| s.histogram(name).map(|h| (s.shard.to_string(), h.clone())))
            .collect();
        series.push(("all".into(), stats.merged(name)));
        for (shard, h) in series {
            for q in [0.5, 0.9, 0.99, 0.999] {
                let v = if h.is_empty() {
                    0
                } else {
                    h.value_at_quantile(q)
                };
                let _ = writeln!(
                    out,
                    "{PREFIX}_{metric}{{shard=\"{shard}\",quantile=\"{q}\"}} {}",
                    v as f64 / 1e6
                );
            }
            let sum_s = if h.is_empty() {
                0.0
            } else {
                h.mean() * h.len() as f64 / 1e6
            };
            let _ = writeln!(out, "{PREFIX}_{metric}_sum{{shard=\"{shard}\"}} {sum_s}");
            let _ = writeln!(
                out,
                "{PREFIX}_{metric}_count{{shard=\"{shard}\"}} {}",
                h.len()
            );
        }
    }
}

fn instances(out: &mut String, stats: &NodeStats) {
    let rows: Vec<_> = stats.shards.iter().flat_map(|s| &s.instance_list).collect();
    type Get = fn(&crate::metrics::report::InstanceStats) -> f64;
    let gauges: [(&str, &str, Get); 3] = [
        ("instance_players", "Players seated in the instance", |i| {
            i.players as f64
        }),
        (
            "instance_tick_p99_seconds",
            "p99 of the instance's tick time over its recent ticks",
            |i| i.tick_us_p99 as f64 / 1e6,
        ),
        (
            "instance_state_bytes",
            "The game's estimate of the instance's world size",
            |i| i.state_bytes as f64,
        ),
    ];
    for (name, help, get) in gauges {
        header(out, name, "gauge", help);
        for i in &rows {
            let _ = writeln!(
                out,
                "{PREFIX}_{name}{{shard=\"{}\",instance=\"{}\"}} {}",
                i.shard,
                i.id,
                get(i)
            );
        }
    }
}
