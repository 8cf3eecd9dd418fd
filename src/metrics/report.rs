//! Point-in-time copies of a shard's metrics (`ShardStats`, plain `Send`
//! data that crosses the mesh) and their merge into node-wide figures.

use std::collections::BTreeMap;

use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::metrics::histograms::{new_histogram, HistName};
use crate::metrics::system::Memory;
use crate::protocol::close::CloseReason;

/// Percentiles every report shows.
pub const QUANTILES: [(f64, &str); 4] =
    [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99_9")];

#[derive(Debug, Clone, Serialize)]
pub struct InstanceStats {
    pub id: String,
    pub shard: usize,
    pub players: usize,
    pub players_max: usize,
    pub tick: u64,
    /// p99 of this instance's step + encode time over its last ticks, µs.
    pub tick_us_p99: u64,
    /// The game's estimate of its world's heap size.
    pub state_bytes: usize,
    pub entities: usize,
}

/// One shard's figures at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct ShardStats {
    pub shard: usize,
    pub core: Option<usize>,
    /// name → value, every counter of `ShardMetrics`.
    pub counters: BTreeMap<&'static str, u64>,
    #[serde(skip)]
    pub counter_help: BTreeMap<&'static str, &'static str>,
    /// close reason label → connections closed for it.
    pub closed: BTreeMap<&'static str, u64>,
    /// The game's reason → inputs it refused for it (`Game::validate_input`).
    pub inputs_refused_by_reason: BTreeMap<&'static str, u64>,
    pub connections_open: i64,
    pub players_connected: usize,
    /// Players who sent an input in the last few seconds.
    pub players_active: usize,
    /// Seats held for disconnected players awaiting a resume.
    pub seats_detached: usize,
    pub instances: usize,
    /// --instances-per-shard-max: the table `instances` fills.
    pub instances_max: usize,
    pub buffers_free: usize,
    pub buffers_total: usize,
    /// This shard's thread CPU usage over the last second (1.0 = its core busy).
    pub cpu_usage: f64,
    /// The shard refuses new players: ticks overrun or CPU over the threshold.
    pub shedding: bool,
    pub draining: bool,
    /// Ticks per second over the last second.
    pub tick_rate_measured: f64,
    /// StateUpdates per second over the last second.
    pub update_rate: f64,
    #[serde(skip)]
    pub histograms: Vec<(HistName, Histogram<u64>)>,
    pub instance_list: Vec<InstanceStats>,
}

/// The node: every shard plus process and host figures.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStats {
    pub node_id: String,
    pub region: String,
    pub uptime_s: f64,
    pub tick_rate_hz: u32,
    pub max_connections: usize,
    pub connections_open: usize,
    pub process_cpu_usage: f64,
    pub load_average: [f64; 3],
    pub memory: Memory,
    pub ready: bool,
    pub draining: bool,
    pub shards: Vec<ShardStats>,
}

/// Percentiles of one histogram, in µs, for JSON and tables.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        let q = |p| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        Self {
            count: h.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            max: h.max(),
            mean: if h.is_empty() { 0.0 } else { h.mean() },
        }
    }
}

impl ShardStats {
    pub fn histogram(&self, name: HistName) -> Option<&Histogram<u64>> {
        self.histograms
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h)
    }
}

impl NodeStats {
    /// The shards' histograms of `name` merged.
    pub fn merged(&self, name: HistName) -> Histogram<u64> {
        let mut m = new_histogram();
        for s in &self.shards {
            if let Some(h) = s.histogram(name) {
                // Same bounds everywhere, so addition cannot fail.
                let _ = m.add(h);
            }
        }
        m
    }

    pub fn counter_total(&self, name: &str) -> u64 {
        self.shards
            .iter()
            .filter_map(|s| s.counters.get(name))
            .sum()
    }

    /// The JSON answer of `GET /stats`: everything, with percentiles (µs)
    /// per shard and merged.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("stats serialize");
        let mut merged = serde_json::Map::new();
        for name in HistName::ALL {
            merged.insert(
                name.as_str().into(),
                serde_json::to_value(Percentiles::of(&self.merged(name))).expect("serialize"),
            );
        }
        v["histograms_us"] = serde_json::Value::Object(merged);
        if let Some(shards) = v["shards"].as_array_mut() {
            for (sv, s) in shards.iter_mut().zip(&self.shards) {
                let mut per = serde_json::Map::new();
                for (name, h) in &s.histograms {
                    per.insert(
                        name.as_str().into(),
                        serde_json::to_value(Percentiles::of(h)).expect("serialize"),
                    );
                }
                sv["histograms_us"] = serde_json::Value::Object(per);
            }
        }
        v
    }
}

/// A histogram in the HdrHistogram V2 deflate encoding, base64: what other
/// HdrHistogram tools (Java, Go, Python, `shardline loadgen merge`) read.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine;
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Labels of the close reasons, in index order.
pub fn close_labels() -> impl Iterator<Item = &'static str> {
    CloseReason::ALL.iter().map(|r| r.label())
}
