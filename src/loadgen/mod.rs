//! `shardline loadgen`: simulated players (or /echo clients) against any
//! server that speaks the shardline protocol, open loop and corrected for
//! coordinated omission.
//!
//! Every message has an intended send time on a fixed schedule that never
//! waits for replies. A sender that falls behind sends what it owes at once
//! and never skips; latency counts from the intended time. So when the server
//! (or the generator) stalls, the stall shows in the percentiles instead of
//! hiding behind fewer samples.
//!
//! # Layout
//! - [`config`]: a validated [`LoadgenConfig`]; the fd and local-port budget
//!   checks that refuse a run this process cannot carry.
//! - [`runner`]: executors, the ramp, the progress line, [`run_to_report`].
//! - [`connect`]: TCP connect from a chosen source address, the WebSocket
//!   client handshake, names for every failure.
//! - [`player`]: one player's set-up on /play: connect, Hello, Join.
//! - [`echo`]: one /echo client's set-up: connect, upgrade.
//! - [`drive`]: one executor's running connections on a plain epoll
//!   thread: their sends on schedule, their reads, timed.
//! - [`running`]: one running connection: what it owes, what it reads,
//!   how it ends (open loop, coordinated-omission corrected).
//! - [`raw`]: WebSocket frames by hand on a running connection's socket.
//! - [`schedule`]: intended send times; which inputs an update covers (pure).
//! - [`stats`]: per-thread histograms and counters (no locks).
//! - [`report`]: the merged report: table, JSON, `--hdr-out` files, merge.
//! - [`trace`]: `--trace FILE`: players over time from a CSV against a
//!   fleet's region (the autoscaler's evaluation harness).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

pub mod config;
pub mod connect;
pub mod drive;
pub mod echo;
pub mod player;
pub mod raw;
pub mod report;
pub mod runner;
pub mod running;
pub mod schedule;
pub mod stats;
pub mod trace;

pub use config::{LoadgenConfig, Mode, Target};
pub use report::{Report, Summary, Throughput};
pub use runner::run_to_report;

use config::{parse_duration, parse_source_ips};

/// `shardline loadgen [OPTIONS] --target URL` runs a load;
/// `shardline loadgen merge FILE...` merges `--hdr-out` files.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct LoadgenCli {
    #[command(subcommand)]
    pub command: Option<LoadgenCommand>,

    #[command(flatten)]
    pub run: RunOpts,
}

#[derive(clap::Subcommand, Debug)]
pub enum LoadgenCommand {
    /// Merge the --hdr-out files of several loadgen processes and print one report.
    Merge(MergeOpts),
}

#[derive(clap::Args, Debug)]
pub struct MergeOpts {
    /// Files written by `shardline loadgen --hdr-out FILE`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Print the merged report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct RunOpts {
    /// Server endpoint, ws://HOST:PORT/play (or ws://HOST:PORT/echo with --echo).
    #[arg(long, value_name = "URL", required_unless_present = "trace")]
    pub target: Option<String>,

    /// Connections to open: players, or echo clients with --echo. Each costs a file descriptor.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub players: usize,

    /// Player k joins instance "<prefix>-<k / P>"; without it, Join names no instance and the server places the player.
    #[arg(long, value_name = "P")]
    pub players_per_instance: Option<usize>,

    /// Prefix of instance ids (see --players-per-instance); give each loadgen process its own to keep their players apart.
    #[arg(long, value_name = "PREFIX", default_value = "lg")]
    pub instance_prefix: String,

    /// Inputs per second per player.
    #[arg(long, value_name = "HZ", default_value_t = 30.0)]
    pub input_rate: f64,

    /// Protocol version the players speak: 2 (StateDelta against the tick each player acknowledged; every update is acknowledged and rebuilt, errors counted) or 1 (full state in every StateUpdate).
    #[arg(long, value_name = "N", default_value_t = crate::protocol::PROTOCOL_VERSION)]
    pub protocol_version: u16,

    /// Fraction of the players that stand still (inputs of (0, 0)), spread evenly over the players, e.g. 0.5.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub idle_fraction: f64,

    /// Time between pings per player, e.g. 1s or 250ms; 0 sends none.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// How long to run after the last connection is started (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Connections started per second; 0 starts them all at once.
    #[arg(long, value_name = "PER_S", default_value_t = 1000.0)]
    pub ramp: f64,

    /// Local addresses to connect from, round-robin, e.g. 127.0.0.1-8 or 127.0.0.1,127.0.0.2: each has its own ephemeral port range.
    #[arg(long, value_name = "LIST")]
    pub source_ips: Option<String>,

    /// Echo mode: connect to /echo and send --message-bytes at --rate per connection.
    #[arg(long)]
    pub echo: bool,

    /// Echo mode: bytes per message (the first 8 carry the send time).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub message_bytes: usize,

    /// Echo mode: messages per second per connection.
    #[arg(long, value_name = "HZ", default_value_t = 10.0)]
    pub rate: f64,

    /// Executors (threads), each driving its share of the connections.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,

    /// Cores to pin executors to, e.g. "1" or "0,2-3" (executor i → i-th core listed, cycling).
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,

    /// Time allowed for TCP connect, upgrade, Hello and Join.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// io_uring registered memory per executor ring, bytes (locked memory: 3 rings per executor).
    #[arg(long, value_name = "BYTES", default_value_t = 512 << 10)]
    pub io_memory_bytes: usize,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Also write the raw HDR histograms (and the report) to FILE, for `shardline loadgen merge`.
    #[arg(long, value_name = "FILE")]
    pub hdr_out: Option<PathBuf>,

    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,

    /// Players over time from a CSV (`seconds,players`) against a fleet's
    /// region instead of --target: routed by --directory, followed through
    /// Transfer; prints a JSON report (refused joins, input→update, node-seconds, moves).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["target", "echo"])]
    pub trace: Option<PathBuf>,

    /// With --trace: play it this many times faster than written.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, requires = "trace")]
    pub accel: f64,

    /// With --trace: the fleet's directory, `redis://HOST:PORT`.
    #[arg(
        long,
        value_name = "URL",
        env = "SHARDLINE_DIRECTORY",
        hide_env_values = true
    )]
    pub directory: Option<String>,

    /// With --trace: the region the players join.
    #[arg(long, value_name = "NAME", default_value = "local", requires = "trace")]
    pub region: String,

    /// With --trace: trace seconds played but not measured (the fleet learns meanwhile).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0.0,
        requires = "trace"
    )]
    pub warmup: f64,
}

impl RunOpts {
    pub fn to_config(&self) -> anyhow::Result<LoadgenConfig> {
        let url = self.target.as_deref().context("--target is required")?;
        let mut cfg = if self.echo {
            let mut c = LoadgenConfig::echo(url, self.players)?;
            c.mode = Mode::Echo {
                message_bytes: self.message_bytes,
                rate_hz: self.rate,
            };
            c
        } else {
            let mut c = LoadgenConfig::play(url, self.players)?;
            c.mode = Mode::Play {
                players_per_instance: self.players_per_instance,
                instance_prefix: self.instance_prefix.clone(),
                input_rate_hz: self.input_rate,
                ping_interval: (!self.ping_interval.is_zero()).then_some(self.ping_interval),
                protocol_version: self.protocol_version,
                idle_fraction: self.idle_fraction,
            };
            c
        };
        cfg.duration = self.duration;
        cfg.ramp_per_s = (self.ramp != 0.0).then_some(self.ramp);
        cfg.threads = self.threads;
        cfg.connect_timeout = self.connect_timeout;
        cfg.io_memory_bytes = self.io_memory_bytes;
        cfg.progress = !self.quiet;
        if let Some(list) = &self.source_ips {
            cfg.source_ips = parse_source_ips(list)
                .map_err(|e| anyhow::anyhow!("--source-ips {list:?}: {e}"))?;
        }
        if let Some(list) = &self.cpus {
            let cpus = crate::config::parse_cpu_list(list)
                .map_err(|e| anyhow::anyhow!("--cpus {list:?}: {e}"))?;
            cfg.cpus = Some(cpus);
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

pub fn run(cli: LoadgenCli) -> anyhow::Result<()> {
    match cli.command {
        Some(LoadgenCommand::Merge(m)) => merge(&m),
        None if cli.run.trace.is_some() => run_trace(&cli.run),
        None => run_load(&cli.run),
    }
}

fn run_load(opts: &RunOpts) -> anyhow::Result<()> {
    let report = run_to_report(opts.to_config()?)?;
    if let Some(path) = &opts.hdr_out {
        report.write_hdr(path)?;
    }
    print(&report, opts.json);
    if report.players_joined == 0 {
        bail!("no connection reached the running state; see the errors above");
    }
    Ok(())
}

fn run_trace(o: &RunOpts) -> anyhow::Result<()> {
    let path = o.trace.as_deref().expect("checked by the caller");
    let cfg = trace::config(
        path,
        o.accel,
        o.directory.as_deref(),
        &o.region,
        o.input_rate,
        o.warmup,
    )?;
    let report = trace::run(&cfg)?;
    println!("{report}");
    Ok(())
}

fn merge(opts: &MergeOpts) -> anyhow::Result<()> {
    let mut files = opts.files.iter();
    let first = files.next().context("no files to merge")?;
    let mut report = Report::read_hdr(first)?;
    for path in files {
        report
            .merge(Report::read_hdr(path)?)
            .with_context(|| format!("merging {}", path.display()))?;
    }
    print(&report, opts.json);
    Ok(())
}

fn print(report: &Report, json: bool) {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
}
