//! Fleet messages over Redis pub/sub: settings for every node of a region,
//! draining one node. A thread per node subscribes to its region's channel
//! and to the fleet-wide one, and hands each message to every shard; the
//! `shardline fleet` command publishes them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};

use super::{keys, send_to_shard, DirectoryMetrics, ToShard};

/// How long the subscriber blocks on a read before it checks its
/// connection; and the pause before reconnecting after a failure.
const SUBSCRIBER_POLL: Duration = Duration::from_secs(1);

/// Settings a fleet message may change (the run-time ones of POST /config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub players_per_instance_max: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
}

/// One message on a fleet channel (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FleetMsg {
    Config(FleetConfig),
    /// Stop placing new players on node `node`.
    Drain {
        node: String,
    },
}

impl FleetConfig {
    /// Parses `key=value` pairs (`heartbeat_ms=5000`).
    pub fn parse(pairs: &[String]) -> Result<FleetConfig, String> {
        let mut c = FleetConfig::default();
        for pair in pairs {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?}: expected key=value"))?;
            let n: u64 = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{k}: {v:?} is not a positive integer"))?;
            match k {
                "heartbeat_ms" => c.heartbeat_ms = Some(n),
                "players_per_instance_max" => c.players_per_instance_max = Some(n as usize),
                "max_connections" => c.max_connections = Some(n as usize),
                _ => {
                    return Err(format!(
                        "{k}: not a fleet setting (heartbeat_ms, players_per_instance_max, max_connections)"
                    ))
                }
            }
        }
        if c == FleetConfig::default() {
            return Err("no setting given".into());
        }
        Ok(c)
    }
}

pub(super) fn spawn_subscriber(
    client: redis::Client,
    region: String,
    node: String,
    shards: Vec<Sender<ToShard>>,
    metrics: Arc<DirectoryMetrics>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("directory-pubsub".into())
        .spawn(move || loop {
            if let Err(e) = subscribe(&client, &region, &node, &shards, &metrics) {
                tracing::debug!(error = %e, "fleet channel down; retrying");
            }
            std::thread::sleep(SUBSCRIBER_POLL);
        })?;
    Ok(())
}

/// Subscribes and applies messages until the connection fails.
fn subscribe(
    client: &redis::Client,
    region: &str,
    node: &str,
    shards: &[Sender<ToShard>],
    metrics: &DirectoryMetrics,
) -> redis::RedisResult<()> {
    let mut conn = client.get_connection_with_timeout(SUBSCRIBER_POLL)?;
    let mut ps = conn.as_pubsub();
    ps.subscribe(keys::control(region))?;
    ps.subscribe(keys::CONTROL_ALL)?;
    ps.set_read_timeout(Some(SUBSCRIBER_POLL))?;
    loop {
        let msg = match ps.get_message() {
            Ok(m) => m,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        let payload: String = match msg.get_payload() {
            Ok(p) => p,
            Err(_) => continue,
        };
        match serde_json::from_str::<FleetMsg>(&payload) {
            Ok(m) => apply(m, node, shards, metrics),
            Err(e) => {
                tracing::warn!(error = %e, channel = msg.get_channel_name(), "unreadable fleet message ignored")
            }
        }
    }
}

fn apply(msg: FleetMsg, node: &str, shards: &[Sender<ToShard>], metrics: &DirectoryMetrics) {
    match msg {
        FleetMsg::Config(c) => {
            tracing::info!(?c, "fleet configuration received");
            for s in 0..shards.len() {
                send_to_shard(shards, s, ToShard::Configure(c.clone()), metrics);
            }
        }
        FleetMsg::Drain { node: target } if target == node => {
            tracing::info!("fleet drain received: no new placements; running games go on");
            for s in 0..shards.len() {
                send_to_shard(shards, s, ToShard::Drain, metrics);
            }
        }
        FleetMsg::Drain { .. } => return,
    }
    metrics.fleet_messages.inc();
}

// ------------------------------------------------------------------ the CLI

/// `shardline fleet`: orders for every node through the directory.
#[derive(clap::Args, Debug)]
pub struct FleetCli {
    /// The fleet's directory, `redis://HOST:PORT`.
    #[arg(long, value_name = "URL")]
    pub directory: String,
    #[command(subcommand)]
    pub cmd: FleetCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum FleetCmd {
    /// Settings for every node of a region (or of every region).
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Stop placing new players on one node; its games go on.
    Drain {
        /// The node id.
        node: String,
    },
    /// The nodes registered now, as JSON lines.
    Nodes,
}

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCmd {
    /// `set [--region R] key=value …` (heartbeat_ms, players_per_instance_max, max_connections).
    Set {
        /// Only this region's nodes. [default: every region]
        #[arg(long, value_name = "NAME")]
        region: Option<String>,
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
}

pub fn run(cli: FleetCli) -> anyhow::Result<()> {
    let client = redis::Client::open(cli.directory.as_str())
        .with_context(|| format!("--directory {}", cli.directory))?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .with_context(|| format!("cannot reach the directory at {}", cli.directory))?;
    let (channel, msg) = match cli.cmd {
        FleetCmd::Config {
            cmd: ConfigCmd::Set { region, pairs },
        } => {
            let c = FleetConfig::parse(&pairs).map_err(anyhow::Error::msg)?;
            let channel = region
                .as_deref()
                .map_or(keys::CONTROL_ALL.to_owned(), keys::control);
            (channel, FleetMsg::Config(c))
        }
        FleetCmd::Drain { node } => (keys::CONTROL_ALL.to_owned(), FleetMsg::Drain { node }),
        FleetCmd::Nodes => {
            let ids: Vec<String> = redis::cmd("HKEYS").arg(keys::NODES).query(&mut conn)?;
            for id in ids {
                let v: Option<String> = redis::cmd("GET").arg(keys::node(&id)).query(&mut conn)?;
                match v {
                    Some(v) => println!("{v}"),
                    None => println!("{{\"id\":{id:?},\"dead\":true}}"),
                }
            }
            return Ok(());
        }
    };
    let body = serde_json::to_string(&msg)?;
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(&body)
        .query(&mut conn)?;
    println!("sent to {receivers} node(s) on {channel}: {body}");
    if receivers == 0 {
        bail!("no node is listening on {channel}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_settings_parse_and_round_trip() {
        let c = FleetConfig::parse(&[
            "heartbeat_ms=5000".into(),
            "players_per_instance_max=8".into(),
        ])
        .unwrap();
        assert_eq!(c.heartbeat_ms, Some(5000));
        let m = FleetMsg::Config(c);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<FleetMsg>(&json).unwrap(), m);
        assert!(FleetConfig::parse(&["nope=1".into()]).is_err());
        assert!(FleetConfig::parse(&["heartbeat_ms=0".into()]).is_err());
        assert!(FleetConfig::parse(&[]).is_err());
    }
}
