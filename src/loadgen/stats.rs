//! Per-thread measurements: the HDR histograms and counters every connection
//! task of one executor records into (a `RefCell` on that thread, no locks).
//! Each executor hands its [`ThreadStats`] back when the run ends and the
//! runner merges them; a [`Progress`] sample crosses to the main thread once
//! a second for the progress line.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Histogram range, µs: 1 µs .. 10 min at 3 significant digits (~330 KiB per
/// histogram, seven per executor). A longer latency is recorded as 10 min.
pub const HIST_LOW_US: u64 = 1;
pub const HIST_HIGH_US: u64 = 600_000_000;
pub const HIST_SIGFIG: u8 = 3;
/// The progress line's per-second histogram needs less precision (~35 KiB).
const PROGRESS_SIGFIG: u8 = 2;

/// What the histograms measure, all in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Intended connect time → WebSocket upgrade done (TCP connect included).
    Handshake,
    /// Upgrade done → Joined received (Hello, Welcome, Join; a move to the
    /// instance's shard included).
    Join,
    /// An input's intended send time → the first StateUpdate whose
    /// `last_input_seq` covers it.
    InputToUpdate,
    /// |gap between two StateUpdates − the tick period from Welcome|.
    UpdateJitter,
    /// A Ping's intended send time → its Pong.
    PingRtt,
    /// An /echo message's intended send time → its echo.
    EchoRtt,
    /// A message's intended send time → the generator handing it to the
    /// socket. High values mean the generator itself is behind (CPU, timer
    /// wake-ups): the other latencies then include its own delay.
    SendLag,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Self::Handshake,
        Self::Join,
        Self::InputToUpdate,
        Self::UpdateJitter,
        Self::PingRtt,
        Self::EchoRtt,
        Self::SendLag,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Join => "join",
            Self::InputToUpdate => "input_to_update",
            Self::UpdateJitter => "update_jitter",
            Self::PingRtt => "ping_rtt",
            Self::EchoRtt => "echo_rtt",
            Self::SendLag => "send_lag",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("constant histogram bounds are valid")
}

fn new_progress_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, PROGRESS_SIGFIG)
        .expect("constant histogram bounds are valid")
}

pub fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Counts of one executor (or, merged, of the run).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Connections that reached the running state (play: Joined; echo: upgraded).
    pub players_joined: u64,
    pub inputs_sent: u64,
    pub updates_received: u64,
    /// Payload bytes of the StateUpdates / StateDeltas received.
    pub update_bytes: u64,
    /// Protocol v2: updates that were full states (baseline 0).
    pub full_states_received: u64,
    /// Protocol v2: Acks sent.
    pub acks_sent: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    pub echoes_sent: u64,
    pub echoes_received: u64,
    /// WebSocket messages and payload bytes, client → server.
    pub msgs_out: u64,
    pub bytes_out: u64,
    /// WebSocket messages and payload bytes, server → client.
    pub msgs_in: u64,
    pub bytes_in: u64,
    /// Inputs no update had covered when the connection ended.
    pub inputs_unanswered: u64,
    /// Echoes not back when the connection ended.
    pub echoes_unanswered: u64,
    /// Updates whose `last_input_seq` named inputs never sent (by how many).
    pub acks_ahead: u64,
    /// Our close frame got no answer within the close timeout.
    pub closes_unanswered: u64,
}

impl Counters {
    /// Name → value, as in the report.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        let c = self;
        [
            ("players_joined", c.players_joined),
            ("inputs_sent", c.inputs_sent),
            ("updates_received", c.updates_received),
            ("update_bytes", c.update_bytes),
            ("full_states_received", c.full_states_received),
            ("acks_sent", c.acks_sent),
            ("pings_sent", c.pings_sent),
            ("pongs_received", c.pongs_received),
            ("echoes_sent", c.echoes_sent),
            ("echoes_received", c.echoes_received),
            ("msgs_out", c.msgs_out),
            ("bytes_out", c.bytes_out),
            ("msgs_in", c.msgs_in),
            ("bytes_in", c.bytes_in),
            ("inputs_unanswered", c.inputs_unanswered),
            ("echoes_unanswered", c.echoes_unanswered),
            ("acks_ahead", c.acks_ahead),
            ("closes_unanswered", c.closes_unanswered),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// Everything one executor measured.
#[derive(Debug)]
pub struct ThreadStats {
    /// Indexed by `Metric::index`.
    hists: Vec<Histogram<u64>>,
    pub counters: Counters,
    /// Connections that could not be set up, and bad or refused messages, by reason.
    pub errors: BTreeMap<String, u64>,
    /// Connections that ended before the run did, by reason.
    pub disconnects: BTreeMap<String, u64>,
    /// Connections running now.
    pub players_now: u64,
    /// The main latency (input→update, or echo) since the last progress sample.
    interval: Histogram<u64>,
    interval_metric: Metric,
}

impl ThreadStats {
    /// `interval_metric` feeds the progress line's p99.
    pub fn new(interval_metric: Metric) -> ThreadStats {
        ThreadStats {
            hists: Metric::ALL.iter().map(|_| new_histogram()).collect(),
            counters: Counters::default(),
            errors: BTreeMap::new(),
            disconnects: BTreeMap::new(),
            players_now: 0,
            interval: new_progress_histogram(),
            interval_metric,
        }
    }

    pub fn record(&mut self, metric: Metric, d: Duration) {
        let us = duration_us(d).max(HIST_LOW_US);
        self.hists[metric.index()].saturating_record(us);
        if metric == self.interval_metric {
            self.interval.saturating_record(us);
        }
    }

    pub fn error(&mut self, reason: impl Into<String>) {
        *self.errors.entry(reason.into()).or_default() += 1;
    }

    pub fn disconnect(&mut self, reason: impl Into<String>) {
        *self.disconnects.entry(reason.into()).or_default() += 1;
    }

    /// A sample for the progress line, taken at `at`; starts a new interval.
    pub fn progress(&mut self, thread: usize, at: Instant) -> Progress {
        let interval = std::mem::replace(&mut self.interval, new_progress_histogram());
        Progress {
            thread,
            at,
            players_now: self.players_now,
            players_joined: self.counters.players_joined,
            msgs_out: self.counters.msgs_out,
            msgs_in: self.counters.msgs_in,
            errors: self.errors.values().sum(),
            disconnects: self.disconnects.values().sum(),
            interval,
        }
    }

    /// Histograms by metric name.
    pub fn into_histograms(self) -> impl Iterator<Item = (&'static str, Histogram<u64>)> {
        Metric::ALL.into_iter().map(Metric::as_str).zip(self.hists)
    }
}

/// One executor's state for the progress line: totals so far and the main
/// latency of the last interval.
#[derive(Debug)]
pub struct Progress {
    pub thread: usize,
    pub at: Instant,
    pub players_now: u64,
    pub players_joined: u64,
    pub msgs_out: u64,
    pub msgs_in: u64,
    pub errors: u64,
    pub disconnects: u64,
    pub interval: Histogram<u64>,
}

impl Progress {
    /// Adds the drive's sample (running connections) to the executor's
    /// (set-up), so the progress line sees one sample per executor.
    pub fn merge(&mut self, other: &Progress) {
        self.at = self.at.max(other.at);
        self.players_now += other.players_now;
        self.players_joined += other.players_joined;
        self.msgs_out += other.msgs_out;
        self.msgs_in += other.msgs_in;
        self.errors += other.errors;
        self.disconnects += other.disconnects;
        let _ = self.interval.add(&other.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_land_in_their_histogram_and_the_interval() {
        let mut s = ThreadStats::new(Metric::InputToUpdate);
        s.record(Metric::InputToUpdate, Duration::from_millis(5));
        s.record(Metric::PingRtt, Duration::from_millis(1));
        s.record(Metric::InputToUpdate, Duration::from_secs(3600));
        let p = s.progress(0, Instant::now());
        assert_eq!(p.interval.len(), 2);
        assert_eq!(s.progress(0, Instant::now()).interval.len(), 0);
        let hists: BTreeMap<_, _> = s.into_histograms().collect();
        let i2u = &hists["input_to_update"];
        assert_eq!(i2u.len(), 2);
        assert!(i2u.max() >= HIST_HIGH_US * 99 / 100, "saturated at the top");
        assert_eq!(hists["ping_rtt"].len(), 1);
    }
}
