//! `shardline autoscale` (the controller, an override, the status) and
//! `shardline fleet config policy` (a region's ScalingPolicy in the
//! directory).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use super::controller::{Controller, ControllerConfig};
use super::policy::{PolicyFile, ScalingPolicy};
use super::store::Store;
use crate::directory::control::PolicyArgs;

/// Shortest evaluation period, ms: the nodes' loads change once per
/// heartbeat (1 s by default), so evaluating faster reads the same figures.
pub const EVALUATE_MS_MIN: u64 = 50;

/// Sizes every region of a fleet to its load: one active controller per
/// fleet (a lease in the directory; others wait and take over when it
/// dies), decisions logged with their reason and exported on /metrics,
/// nodes started and drained by each region's provider (process commands,
/// or Agones through its FleetAutoscaler webhook on this listener).
#[derive(clap::Args, Debug)]
pub struct AutoscaleCli {
    /// The fleet's directory, `redis://[:PASSWORD@]HOST:PORT[/DB]`.
    #[arg(
        long,
        value_name = "URL",
        env = "SHARDLINE_DIRECTORY",
        hide_env_values = true,
        global = true
    )]
    pub directory: Option<String>,

    #[command(subcommand)]
    pub command: Option<AutoscaleCmd>,

    /// Policies to store in the directory at start (TOML, `[regions.NAME]`
    /// tables); an invalid file is refused with the reason. Without it the
    /// policies already in the directory apply (`shardline fleet config policy`).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// HTTP listener: /metrics, /status, /health and the Agones webhook
    /// (POST /agones/webhook); `off` for none.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9300")]
    pub listen: String,

    /// Time between evaluations.
    #[arg(long, value_name = "MS", default_value_t = 1_000)]
    pub evaluate_ms: u64,

    /// The lease's time to live: a standby controller takes over within
    /// this of the active one's death. At least 3 × --evaluate-ms.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub lease_ttl_ms: u64,

    /// Decide, log and export, but start and stop nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// This controller's name in the lease. [default: HOST-PID]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum AutoscaleCmd {
    /// Pin a region's node count (a manual override), or --clear it.
    Override {
        #[arg(long, value_name = "NAME")]
        region: String,
        /// The node count (at most the policy's max_nodes).
        #[arg(
            long,
            value_name = "N",
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        nodes: Option<u32>,
        /// Only for this long; then the policy decides again. [default: until --clear]
        #[arg(long, value_name = "MS")]
        for_ms: Option<u64>,
        #[arg(long)]
        clear: bool,
    },
    /// The active controller's last decision for every region (JSON lines).
    Status,
}

pub fn run(cli: AutoscaleCli) -> anyhow::Result<()> {
    let Some(directory) = cli.directory.clone() else {
        bail!("--directory (or SHARDLINE_DIRECTORY) is required");
    };
    if !directory.starts_with("redis://") {
        bail!(
            "--directory {}: expected redis://HOST:PORT",
            crate::directory::redacted(&directory)
        );
    }
    match cli.command {
        Some(AutoscaleCmd::Override {
            region,
            nodes,
            for_ms,
            clear,
        }) => {
            let mut store = connect(&directory)?;
            let nodes = if clear { None } else { nodes };
            store
                .set_override(&region, nodes, for_ms.map(Duration::from_millis))
                .context("the directory failed")?;
            match nodes {
                Some(n) => println!(
                    "region {region} pinned to {n} node(s){}",
                    for_ms.map_or(String::new(), |ms| format!(" for {ms} ms"))
                ),
                None => println!("region {region}: override cleared; the policy decides"),
            }
            Ok(())
        }
        Some(AutoscaleCmd::Status) => {
            let mut store = connect(&directory)?;
            let holder = store.lease_holder().context("the directory failed")?;
            println!("{}", serde_json::json!({"active_controller": holder}));
            for (_, d) in store.decisions().context("the directory failed")? {
                println!("{d}");
            }
            Ok(())
        }
        None => controller(&cli, directory),
    }
}

fn connect(directory: &str) -> anyhow::Result<Store> {
    let mut store = Store::open(directory)?;
    if !store.connect() {
        bail!(
            "cannot reach the directory at {}",
            crate::directory::redacted(directory)
        );
    }
    Ok(store)
}

fn controller(cli: &AutoscaleCli, directory: String) -> anyhow::Result<()> {
    crate::util::logging::init_logging(None)?;
    if cli.evaluate_ms < EVALUATE_MS_MIN {
        bail!(
            "--evaluate-ms {}: at least {EVALUATE_MS_MIN}",
            cli.evaluate_ms
        );
    }
    if cli.lease_ttl_ms < cli.evaluate_ms * 3 {
        bail!(
            "--lease-ttl-ms {} must be at least 3 × --evaluate-ms ({}): the lease is renewed every third of it",
            cli.lease_ttl_ms,
            cli.evaluate_ms
        );
    }
    let listen: Option<SocketAddr> = match cli.listen.as_str() {
        "off" => None,
        a => Some(
            a.parse()
                .with_context(|| format!("--listen {a:?}: expected HOST:PORT or off"))?,
        ),
    };
    if let Some(path) = &cli.policy {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--policy {}", path.display()))?;
        let file = PolicyFile::parse_toml(&text)
            .map_err(|e| anyhow::anyhow!("--policy {}: {e}", path.display()))?;
        let mut store = connect(&directory)?;
        for (region, p) in &file.regions {
            store
                .set_policy(region, p)
                .context("the directory failed")?;
            tracing::info!(region, "policy stored");
        }
    }
    let id = cli.id.clone().unwrap_or_else(default_id);
    let cfg = ControllerConfig {
        directory,
        id: id.clone(),
        evaluate: Duration::from_millis(cli.evaluate_ms),
        lease_ttl: Duration::from_millis(cli.lease_ttl_ms),
        dry_run: cli.dry_run,
        listen,
    };
    let mut c = Controller::new(cfg)?;
    if let Some(addr) = listen {
        let bound = super::http::spawn(addr, c.status())?;
        tracing::info!("autoscale listening on {bound}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    tracing::info!(controller = %id, dry_run = cli.dry_run, "autoscale controller started; waiting for the lease");
    c.run(&stop);
    Ok(())
}

fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{host}-{}", std::process::id())
}

/// `shardline fleet config policy …`.
pub fn policy(directory: &str, args: PolicyArgs) -> anyhow::Result<()> {
    let mut store = connect(directory)?;
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        let file = PolicyFile::parse_toml(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for (region, p) in &file.regions {
            store
                .set_policy(region, p)
                .context("the directory failed")?;
            println!("region {region}: {}", p.to_json());
        }
        return Ok(());
    }
    let policies = store.policies().context("the directory failed")?;
    if args.show {
        for (region, p) in policies {
            match p {
                Ok(p) => println!("region {region}: {}", p.to_json()),
                Err(e) => println!("region {region}: INVALID: {e}"),
            }
        }
        return Ok(());
    }
    let Some(region) = args.region else {
        bail!("--region is required (or --file, or --show)");
    };
    if args.clear {
        let gone = store
            .clear_policy(&region)
            .context("the directory failed")?;
        println!(
            "region {region}: {}",
            if gone {
                "policy removed; not scaled any more"
            } else {
                "had no policy"
            }
        );
        return Ok(());
    }
    if args.pairs.is_empty() {
        bail!("no key=value given (min_nodes, max_nodes, scale_up_threshold, scale_down_threshold, cooldown_up_ms, cooldown_down_ms, node_start_ms, …)");
    }
    let base = match policies.get(&region) {
        Some(Ok(p)) => p.clone(),
        // No policy yet (or an invalid one): start from the defaults; a
        // max_nodes must then be among the pairs.
        _ => ScalingPolicy::with_max(0),
    };
    let p = base
        .with_pairs(&region, &args.pairs)
        .map_err(|e| anyhow::anyhow!("refused: {e}"))?;
    store
        .set_policy(&region, &p)
        .context("the directory failed")?;
    println!("region {region}: {}", p.to_json());
    Ok(())
}
