//! Per-shard HDR latency histograms, recorded on the shard's own core
//! (a `RefCell`, no locks). Read by cloning them into a stats snapshot that
//! crosses the mesh; merged across shards with `Histogram::add`.

use std::cell::RefCell;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Values are microseconds, 1 µs .. 60 s at 3 significant digits: ~220 KiB
/// per histogram, ten per shard.
const HIST_LOW_US: u64 = 1;
const HIST_HIGH_US: u64 = 60_000_000;
const HIST_SIGFIG: u8 = 3;

/// The latencies a shard records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistName {
    /// One tick slot from start to end: reads, steps, encoding and writes
    /// (a slot steps the instances whose phase it is).
    TickDuration,
    /// How late a tick started against its fixed schedule (jitter).
    TickLateness,
    /// Input received → the StateUpdate reflecting it written to the socket.
    InputToUpdate,
    /// Server ping → client pong, per player.
    Rtt,
    /// TCP accept → WebSocket upgrade done.
    Handshake,
    /// One shard snapshot written and made durable.
    SnapshotWrite,
    /// Tick duration, for ticks that started while the shard was capturing
    /// or writing a snapshot (snapshots on only).
    TickDurationSnapshot,
    /// Tick duration, for ticks that started with no snapshot in progress
    /// (snapshots on only): the baseline for the one above, from the same run.
    TickDurationNoSnapshot,
    /// Tick lateness, for ticks that started while a snapshot was in progress.
    TickLatenessSnapshot,
    /// Tick lateness, for ticks that started with no snapshot in progress.
    TickLatenessNoSnapshot,
    /// A slot's game work: stepping its instances and encoding their updates.
    TickStep,
    /// A slot's I/O: reaping reads, handling messages, submitting writes.
    TickIo,
}

impl HistName {
    pub const ALL: [HistName; 12] = [
        Self::TickDuration,
        Self::TickLateness,
        Self::InputToUpdate,
        Self::Rtt,
        Self::Handshake,
        Self::SnapshotWrite,
        Self::TickDurationSnapshot,
        Self::TickDurationNoSnapshot,
        Self::TickLatenessSnapshot,
        Self::TickLatenessNoSnapshot,
        Self::TickStep,
        Self::TickIo,
    ];

    /// Name used in the admin API, Prometheus and `shardline stats`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TickDuration => "tick_duration",
            Self::TickLateness => "tick_lateness",
            Self::InputToUpdate => "input_to_update",
            Self::Rtt => "rtt",
            Self::Handshake => "handshake",
            Self::SnapshotWrite => "snapshot_write",
            Self::TickDurationSnapshot => "tick_duration_snapshot",
            Self::TickDurationNoSnapshot => "tick_duration_no_snapshot",
            Self::TickLatenessSnapshot => "tick_lateness_snapshot",
            Self::TickLatenessNoSnapshot => "tick_lateness_no_snapshot",
            Self::TickStep => "tick_step",
            Self::TickIo => "tick_io",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Self::TickDuration => "Time of one tick slot: reads, steps, encoding and writes",
            Self::TickLateness => "Delay of a tick slot's start past its fixed schedule",
            Self::InputToUpdate => {
                "Time from an input's arrival to the write of the update that reflects it"
            }
            Self::Rtt => "Round trip of a server WebSocket ping to the client's pong",
            Self::Handshake => "Time from TCP accept to a completed WebSocket upgrade",
            Self::SnapshotWrite => "Time to write one shard snapshot durably",
            Self::TickDurationSnapshot => {
                "Tick duration, ticks started while a snapshot was captured or written"
            }
            Self::TickDurationNoSnapshot => {
                "Tick duration, ticks started with no snapshot in progress (snapshots on)"
            }
            Self::TickLatenessSnapshot => {
                "Tick lateness, ticks started while a snapshot was captured or written"
            }
            Self::TickLatenessNoSnapshot => {
                "Tick lateness, ticks started with no snapshot in progress (snapshots on)"
            }
            Self::TickStep => "Time a tick slot spends stepping its instances and encoding updates",
            Self::TickIo => "Time a tick slot spends on reads, message handling and writes",
        }
    }

    pub fn parse(s: &str) -> Option<HistName> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An empty histogram with the shard's bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("constant histogram bounds are valid")
}

pub struct ShardHistograms {
    hists: [RefCell<Histogram<u64>>; HistName::ALL.len()],
}

impl Default for ShardHistograms {
    fn default() -> Self {
        Self {
            hists: std::array::from_fn(|_| RefCell::new(new_histogram())),
        }
    }
}

impl ShardHistograms {
    /// Records a duration (clamped into the histogram's range).
    pub fn record(&self, name: HistName, d: Duration) {
        self.record_us(name, d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    pub fn record_us(&self, name: HistName, us: u64) {
        self.hists[name.index()]
            .borrow_mut()
            .saturating_record(us.max(HIST_LOW_US));
    }

    /// Copies of every histogram (for a stats snapshot).
    pub fn snapshot(&self) -> Vec<(HistName, Histogram<u64>)> {
        HistName::ALL
            .into_iter()
            .map(|n| (n, self.hists[n.index()].borrow().clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let a = ShardHistograms::default();
        let b = ShardHistograms::default();
        a.record(HistName::Rtt, Duration::from_micros(100));
        b.record(HistName::Rtt, Duration::from_millis(5));
        b.record(HistName::Rtt, Duration::from_secs(3600)); // clamped, not lost
        let mut merged = new_histogram();
        for (name, h) in a.snapshot().into_iter().chain(b.snapshot()) {
            if name == HistName::Rtt {
                merged.add(&h).unwrap();
            }
        }
        assert_eq!(merged.len(), 3);
        assert!(merged.max() >= 59_000_000);
        assert!(merged.value_at_quantile(0.01) <= 101);
        assert_eq!(
            HistName::parse("input_to_update"),
            Some(HistName::InputToUpdate)
        );
    }
}
