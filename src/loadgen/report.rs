//! The result of a load run: latency summaries, throughput, counters, errors
//! and disconnects by reason; printed as a table or JSON, and written as raw
//! HDR histograms (`--hdr-out`) that `shardline loadgen merge` adds up across
//! several loadgen processes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::stats::{new_histogram, Counters, Metric, ThreadStats};

/// Tag of `--hdr-out` files; `merge` refuses anything else.
pub const HDR_FILE_FORMAT: &str = "shardline-loadgen-hdr/1";

/// One histogram's percentiles, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    fn of(h: &Histogram<u64>) -> Summary {
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// Messages and payload bytes per second, each way, over `run_s`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub msgs_out_per_s: f64,
    pub bytes_out_per_s: f64,
    pub msgs_in_per_s: f64,
    pub bytes_in_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// "play" or "echo".
    pub mode: String,
    pub target: String,
    /// Loadgen processes whose results are in this report.
    pub processes: u64,
    /// Connections asked for.
    pub players: u64,
    /// Connections that reached the running state.
    pub players_joined: u64,
    /// Seconds from the run's start until no message was due any more, i.e.
    /// ramp plus duration; rates divide by it. Merged: the longest, since
    /// merged processes are meant to run side by side.
    pub run_s: f64,
    /// Summaries of the raw histograms, by name (µs inside, ms here).
    pub histograms: BTreeMap<String, Summary>,
    pub throughput: Throughput,
    /// Mean payload bytes of one StateUpdate / StateDelta received.
    #[serde(default)]
    pub bytes_per_update_mean: f64,
    /// Update payload bytes per joined player per second of the run.
    #[serde(default)]
    pub bytes_per_player_per_s: f64,
    pub counters: BTreeMap<String, u64>,
    /// Connections that could not be set up, and refused or bad messages.
    pub errors: BTreeMap<String, u64>,
    /// Connections that ended before the run did.
    pub disconnects: BTreeMap<String, u64>,
    /// The raw histograms (µs); in `--hdr-out` files, not in `--json`.
    #[serde(skip)]
    raw: BTreeMap<String, Histogram<u64>>,
}

/// An `--hdr-out` file: the report and its raw histograms.
#[derive(Serialize, Deserialize)]
struct HdrFile {
    format: String,
    report: Report,
    /// HDR V2 + deflate serialization, base64, by histogram name.
    histograms: BTreeMap<String, String>,
}

impl Report {
    /// Merges what every executor measured.
    pub fn from_threads(
        mode: &str,
        target: &str,
        players: u64,
        run_s: f64,
        threads: Vec<ThreadStats>,
    ) -> Report {
        let mut raw: BTreeMap<String, Histogram<u64>> = Metric::ALL
            .iter()
            .map(|m| (m.as_str().to_owned(), new_histogram()))
            .collect();
        let mut counters = BTreeMap::new();
        let mut errors = BTreeMap::new();
        let mut disconnects = BTreeMap::new();
        for t in threads {
            add_counts(&mut counters, t.counters.to_map());
            add_counts(&mut errors, t.errors.clone());
            add_counts(&mut disconnects, t.disconnects.clone());
            for (name, h) in t.into_histograms() {
                let into = raw.get_mut(name).expect("every metric has a histogram");
                into.add(&h).expect("histograms with the same bounds add");
            }
        }
        if counters.is_empty() {
            counters = Counters::default().to_map();
        }
        let mut r = Report {
            mode: mode.to_owned(),
            target: target.to_owned(),
            processes: 1,
            players,
            players_joined: 0,
            run_s,
            histograms: BTreeMap::new(),
            throughput: Throughput::default(),
            bytes_per_update_mean: 0.0,
            bytes_per_player_per_s: 0.0,
            counters,
            errors,
            disconnects,
            raw,
        };
        r.refresh();
        r
    }

    /// Recomputes what derives from the raw numbers.
    fn refresh(&mut self) {
        self.histograms = self
            .raw
            .iter()
            .map(|(k, h)| (k.clone(), Summary::of(h)))
            .collect();
        self.players_joined = self.counter("players_joined");
        let per_s = |n: u64| {
            if self.run_s > 0.0 {
                n as f64 / self.run_s
            } else {
                0.0
            }
        };
        let (bytes, updates) = (
            self.counter("update_bytes"),
            self.counter("updates_received"),
        );
        self.bytes_per_update_mean = if updates > 0 {
            bytes as f64 / updates as f64
        } else {
            0.0
        };
        self.bytes_per_player_per_s = if self.players_joined > 0 {
            per_s(bytes) / self.players_joined as f64
        } else {
            0.0
        };
        self.throughput = Throughput {
            msgs_out_per_s: per_s(self.counter("msgs_out")),
            bytes_out_per_s: per_s(self.counter("bytes_out")),
            msgs_in_per_s: per_s(self.counter("msgs_in")),
            bytes_in_per_s: per_s(self.counter("bytes_in")),
        };
    }

    /// The raw histogram `name` (values in µs), e.g.
    /// `report.histogram("input_to_update").value_at_quantile(0.99)`.
    ///
    /// # Panics
    ///
    /// For a name that is not one of [`Metric`]'s: a programming error.
    pub fn histogram(&self, name: &str) -> &Histogram<u64> {
        self.raw.get(name).unwrap_or_else(|| {
            panic!(
                "no histogram {name:?}; there are {:?}",
                self.raw.keys().collect::<Vec<_>>()
            )
        })
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn disconnect_count(&self) -> u64 {
        self.disconnects.values().sum()
    }

    /// Adds another process's results to these.
    pub fn merge(&mut self, other: Report) -> anyhow::Result<()> {
        if other.mode != self.mode {
            bail!("cannot merge a {} run into a {} run", other.mode, self.mode);
        }
        if !self.target.split(", ").any(|t| t == other.target) {
            self.target = format!("{}, {}", self.target, other.target);
        }
        self.processes += other.processes;
        self.players += other.players;
        self.run_s = self.run_s.max(other.run_s);
        add_counts(&mut self.counters, other.counters);
        add_counts(&mut self.errors, other.errors);
        add_counts(&mut self.disconnects, other.disconnects);
        for (name, h) in other.raw {
            match self.raw.get_mut(&name) {
                Some(into) => into
                    .add(&h)
                    .with_context(|| format!("histogram {name}: incompatible bounds"))?,
                None => {
                    self.raw.insert(name, h);
                }
            }
        }
        self.refresh();
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }

    /// Writes the report with its raw histograms for `loadgen merge`.
    pub fn write_hdr(&self, path: &Path) -> anyhow::Result<()> {
        let mut histograms = BTreeMap::new();
        let mut ser = V2DeflateSerializer::new();
        for (name, h) in &self.raw {
            let mut bytes = Vec::new();
            ser.serialize(h, &mut bytes)
                .map_err(|e| anyhow::anyhow!("serializing histogram {name}: {e:?}"))?;
            histograms.insert(
                name.clone(),
                base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
        let file = HdrFile {
            format: HDR_FILE_FORMAT.to_owned(),
            report: self.clone(),
            histograms,
        };
        let text = serde_json::to_string(&file).expect("an hdr file serializes");
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Reads a file written by [`Report::write_hdr`].
    pub fn read_hdr(path: &Path) -> anyhow::Result<Report> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: HdrFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a loadgen --hdr-out file ({HDR_FILE_FORMAT})",
                path.display()
            )
        })?;
        if file.format != HDR_FILE_FORMAT {
            bail!(
                "{}: format {:?}; this build reads {HDR_FILE_FORMAT:?}",
                path.display(),
                file.format
            );
        }
        let mut report = file.report;
        let mut de = Deserializer::new();
        for (name, b64) in file.histograms {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .with_context(|| format!("{}: histogram {name}: bad base64", path.display()))?;
            let h: Histogram<u64> = de
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| anyhow::anyhow!("{}: histogram {name}: {e:?}", path.display()))?;
            report.raw.insert(name, h);
        }
        report.refresh();
        Ok(report)
    }

    /// The human-readable report.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let processes = match self.processes {
            1 => "1 process".to_owned(),
            n => format!("{n} processes"),
        };
        let _ = writeln!(out, "shardline loadgen: {} → {}", self.mode, self.target);
        let _ = writeln!(
            out,
            "  {} connections ({} reached running), {:.2} s, {processes}",
            self.players, self.players_joined, self.run_s
        );
        let _ = writeln!(
            out,
            "\n{:<18}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for name in self.shown_histograms() {
            let Some(s) = self.histograms.get(*name) else {
                continue;
            };
            let _ = writeln!(
                out,
                "  {name:<16}{:>10}{:>10.2}{:>10.2}{:>10.2}{:>10.2}{:>10.2}",
                s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
            );
        }
        let t = &self.throughput;
        let _ = writeln!(
            out,
            "\n{:<18}{:>14}{:>16}",
            "throughput", "msgs/s", "bytes/s"
        );
        let _ = writeln!(
            out,
            "  {:<16}{:>14.1}{:>16.0}",
            "client → server", t.msgs_out_per_s, t.bytes_out_per_s
        );
        let _ = writeln!(
            out,
            "  {:<16}{:>14.1}{:>16.0}",
            "server → client", t.msgs_in_per_s, t.bytes_in_per_s
        );
        let _ = writeln!(out, "\ncounters");
        for (k, v) in self.counters.iter().filter(|(_, v)| **v > 0) {
            let _ = writeln!(out, "  {k:<30}{v:>12}");
        }
        write_counts(&mut out, "errors", &self.errors);
        write_counts(&mut out, "disconnects", &self.disconnects);
        out
    }

    fn shown_histograms(&self) -> &'static [&'static str] {
        if self.mode == "echo" {
            &["handshake", "echo_rtt", "send_lag"]
        } else {
            &[
                "handshake",
                "join",
                "input_to_update",
                "update_jitter",
                "ping_rtt",
                "send_lag",
            ]
        }
    }
}

fn write_counts(out: &mut String, title: &str, counts: &BTreeMap<String, u64>) {
    if counts.is_empty() {
        let _ = writeln!(out, "\n{title}: none");
        return;
    }
    let _ = writeln!(out, "\n{title}");
    for (k, v) in counts {
        let _ = writeln!(out, "  {k:<30}{v:>12}");
    }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(latencies_ms: &[u64]) -> Report {
        let mut t = ThreadStats::new(Metric::InputToUpdate);
        for &ms in latencies_ms {
            t.record(Metric::InputToUpdate, Duration::from_millis(ms));
        }
        t.counters.msgs_out = 100;
        t.counters.players_joined = 2;
        t.error("connect_refused");
        Report::from_threads("play", "ws://x:1/play", 2, 2.0, vec![t])
    }

    #[test]
    fn summaries_and_rates_come_from_the_raw_numbers() {
        let r = sample(&[1, 2, 3, 1000]);
        let s = &r.histograms["input_to_update"];
        assert_eq!(s.count, 4);
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(r.throughput.msgs_out_per_s, 50.0);
        assert_eq!(r.players_joined, 2);
        assert_eq!(r.error_count(), 1);
        assert_eq!(r.histogram("input_to_update").len(), 4);
        assert_eq!(r.histogram("ping_rtt").len(), 0);
    }

    #[test]
    fn hdr_files_round_trip_and_merge() {
        let dir = std::env::temp_dir().join(format!("lg-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (a, b) = (sample(&[1, 2, 3]), sample(&[500, 600]));
        a.write_hdr(&dir.join("a.json")).expect("write a");
        b.write_hdr(&dir.join("b.json")).expect("write b");
        let mut m = Report::read_hdr(&dir.join("a.json")).expect("read a");
        assert_eq!(m.histogram("input_to_update").len(), 3);
        m.merge(Report::read_hdr(&dir.join("b.json")).expect("read b"))
            .expect("merge");
        assert_eq!(m.histogram("input_to_update").len(), 5);
        assert_eq!(m.processes, 2);
        assert_eq!(m.players, 4);
        assert_eq!(m.errors["connect_refused"], 2);
        assert_eq!(m.counter("msgs_out"), 200);
        assert!(m.histograms["input_to_update"].max_ms >= 599.0);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn merging_different_modes_is_refused() {
        let mut a = sample(&[1]);
        let mut b = sample(&[1]);
        b.mode = "echo".to_owned();
        assert!(a.merge(b).is_err());
    }

    #[test]
    fn the_table_names_every_shown_histogram() {
        let t = sample(&[5]).to_table();
        for name in [
            "handshake",
            "input_to_update",
            "ping_rtt",
            "connect_refused",
        ] {
            assert!(t.contains(name), "{t}");
        }
    }
}
