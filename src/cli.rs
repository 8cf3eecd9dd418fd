//! The `shardline` command line: `serve` and (in their own issues) the
//! operator tools.

use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{Config, ServeOpts};
use crate::game::arena::ArenaSettings;
use crate::game::{ArenaFactory, GameFactory};
use crate::node::Node;

/// Makes the node's game from its settings (`Config::game`: the `[game]`
/// table of the config file and `--game KEY=VALUE` flags); `Err` is a
/// reason the operator reads.
pub type MakeGame = dyn Fn(&toml::Table) -> Result<Arc<dyn GameFactory>, String> + Send + Sync;

/// The reference arena, configured by `[game]` ([`ArenaSettings::from_table`]).
pub fn arena(settings: &toml::Table) -> Result<Arc<dyn GameFactory>, String> {
    Ok(Arc::new(ArenaFactory::with(ArenaSettings::from_table(
        settings,
    )?)))
}

#[derive(Parser, Debug)]
#[command(
    name = "shardline",
    version,
    about = "Thread-per-core real-time multiplayer game server (WebSocket + FlatBuffers on io_uring)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a game server node: one shard per core, players on /play, latency probe on /echo.
    Serve(Box<ServeOpts>),
    /// Per-shard and merged latency percentiles and counters of a running node.
    Stats(crate::admin::stats_cli::StatsCli),
    /// Mint join tickets (for tests and as the reference for a backend).
    Ticket(crate::auth::cli::TicketCli),
    /// Inspect snapshot files.
    Snapshot(crate::snapshot::SnapshotCli),
    /// Simulated players against a server (open loop, coordinated-omission corrected).
    Loadgen(crate::loadgen::LoadgenCli),
    /// Check or apply kernel and rlimit settings for a hardware profile.
    Tune(crate::tune::TuneCli),
    /// Orders for a fleet of nodes through their directory (Redis): settings per region, drain a node, list nodes, broadcast to players, move a player between nodes.
    Fleet(crate::directory::control::FleetCli),
    /// Size every region of a fleet to its load (predictive scale-up, scale-down by moving games live): one active controller per fleet.
    Autoscale(crate::autoscale::cli::AutoscaleCli),
}

pub fn main() -> anyhow::Result<()> {
    run(Cli::parse(), &arena)
}

/// Runs one command of the command line, serving the game `game` makes
/// (`shardline::Server::builder` uses this for a studio's own binary).
pub fn run(cli: Cli, game: &MakeGame) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(opts) => serve(*opts, game),
        Command::Stats(c) => crate::admin::stats_cli::run(c),
        Command::Snapshot(c) => crate::snapshot::run(c),
        Command::Ticket(c) => crate::auth::cli::run(c),
        Command::Loadgen(c) => crate::loadgen::run(c),
        Command::Tune(c) => crate::tune::run(c),
        Command::Fleet(crate::directory::control::FleetCli {
            directory,
            cmd:
                crate::directory::control::FleetCmd::Config {
                    cmd: crate::directory::control::ConfigCmd::Policy(args),
                },
        }) => crate::autoscale::cli::policy(&directory, args),
        Command::Fleet(c) => crate::directory::control::run(c),
        Command::Autoscale(c) => crate::autoscale::cli::run(c),
    }
}

fn serve(opts: ServeOpts, game: &MakeGame) -> anyhow::Result<()> {
    let cores = available_cores();
    let cfg = Config::resolve(opts, &cores)?;
    let factory = game(&cfg.game).map_err(|e| anyhow::anyhow!("--game / [game]: {e}"))?;
    init_logging(cfg.log_level.as_deref())?;
    for warning in
        crate::tune::startup_warnings(cfg.max_connections, cfg.shards(), cfg.io_memory_bytes)
    {
        tracing::warn!("{warning}");
    }
    // Taken before the node starts: a SIGTERM that arrives while it starts
    // (an orchestrator stopping it at once) waits for the shutdown handle
    // instead of killing the process with the default action.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let node = Node::start(cfg, factory)?;
    install_signal_handlers(signals, node.shutdown_handle())?;
    let exits = node.wait()?;
    let cut: usize = exits.iter().map(|e| e.cut_connections).sum();
    tracing::info!(cut_connections = cut, "shardline stopped");
    Ok(())
}

/// Core ids this process may run on (respects the affinity mask, e.g.
/// `taskset` or a cgroup cpuset).
pub use crate::util::cores::available_cores;
pub use crate::util::logging::{init_logging, set_log_filter};

/// First SIGINT/SIGTERM: graceful shutdown. Second: exit at once.
fn install_signal_handlers(
    mut signals: signal_hook::iterator::Signals,
    handle: crate::node::ShutdownHandle,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen == 1 {
                    tracing::info!(signal = sig, "shutdown requested");
                    handle.shutdown();
                } else {
                    tracing::warn!(signal = sig, "second signal: exiting now");
                    std::process::exit(130);
                }
            }
        })?;
    Ok(())
}
