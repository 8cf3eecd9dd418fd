//! Fleet messages over Redis pub/sub: settings for every node of a region,
//! draining one node, broadcasts to players, moving a player between nodes.
//! A thread per node subscribes to its region's channel, the fleet-wide one
//! and its own, and hands each message to the shards it concerns; the
//! `shardline fleet` command publishes them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::evacuate;
use super::handover::{HandOver, HandedOver};
use super::transfer::{Broadcast, MoveOrder, Reservation, Reserved, NOTICE_BYTES_MAX};
use super::{keys, send_to_shard, DirectoryMetrics, Endpoint, ToAgent, ToShard};
use crate::game::{shard_for, InstanceId};
use crate::util::wake::MailboxSender;
use crossbeam_channel::Sender;

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
    /// A Notice for every player (of the channel's region, or every region).
    Broadcast(Broadcast),
    /// To the node owning the player's instance: move it.
    Move(MoveOrder),
    /// To the node owning the target instance: reserve a seat.
    Reserve(Reservation),
    /// To the node that asked: the reservation's outcome.
    Reserved(Reserved),
    /// To the owner of an instance another node ran: seat its players.
    HandOver(HandOver),
    /// To the node that handed players over: the seats taken.
    HandedOver(HandedOver),
    /// Empty node `node`: no new players, and each instance moves live to
    /// another node of its region (`directory::evacuate`).
    Evacuate {
        node: String,
    },
    /// To the node given an instance by an evacuating node.
    Adopt(evacuate::Offer),
    /// To the evacuating node: how the hand-over went.
    Adopted(evacuate::Done),
    /// To the node owning `to`: a game's message from instance `from`
    /// (`body` in base64).
    Mail {
        to: String,
        from: String,
        message_kind: u16,
        body: String,
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
    endpoint: Endpoint,
    region: String,
    node: String,
    shards: Vec<MailboxSender<ToShard>>,
    to_agent: Sender<ToAgent>,
    metrics: Arc<DirectoryMetrics>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("directory-pubsub".into())
        .spawn(move || loop {
            if let Err(e) = subscribe(&endpoint, &region, &node, &shards, &to_agent, &metrics) {
                tracing::debug!(error = %e, "fleet channel down; retrying");
            }
            std::thread::sleep(SUBSCRIBER_POLL);
        })?;
    Ok(())
}

/// Subscribes and applies messages until the connection fails (with
/// Sentinel: to the primary of the moment; after a failover it fails, and
/// the next attempt finds the promoted one).
fn subscribe(
    endpoint: &Endpoint,
    region: &str,
    node: &str,
    shards: &[MailboxSender<ToShard>],
    to_agent: &Sender<ToAgent>,
    metrics: &DirectoryMetrics,
) -> redis::RedisResult<()> {
    let mut conn = endpoint.connect(SUBSCRIBER_POLL)?;
    let mut ps = conn.as_pubsub();
    ps.subscribe(keys::control(region))?;
    ps.subscribe(keys::CONTROL_ALL)?;
    ps.subscribe(keys::node_control(node))?;
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
            Ok(m) => apply(m, node, shards, to_agent, metrics),
            Err(e) => {
                tracing::warn!(error = %e, channel = msg.get_channel_name(), "unreadable fleet message ignored")
            }
        }
    }
}

fn apply(
    msg: FleetMsg,
    node: &str,
    shards: &[MailboxSender<ToShard>],
    to_agent: &Sender<ToAgent>,
    metrics: &DirectoryMetrics,
) {
    match msg {
        FleetMsg::Config(c) => {
            tracing::info!(?c, "fleet configuration received");
            for s in 0..shards.len() {
                send_to_shard(shards, s, ToShard::Configure(c.clone()), metrics);
            }
        }
        FleetMsg::Drain { node: target } if target == node => {
            tracing::info!("fleet drain received: no new placements; running games go on");
            // The directory shows the node draining now, not after the
            // shards' next reports: routers stop sending players here.
            let _ = to_agent.try_send(ToAgent::Draining);
            for s in 0..shards.len() {
                send_to_shard(shards, s, ToShard::Drain, metrics);
            }
        }
        FleetMsg::Drain { .. } => return,
        FleetMsg::Evacuate { node: target } if target == node => {
            let _ = to_agent.try_send(ToAgent::Draining);
            for s in 0..shards.len() {
                send_to_shard(shards, s, ToShard::Evacuate, metrics);
            }
        }
        FleetMsg::Evacuate { .. } => return,
        FleetMsg::Adopt(offer) => {
            let shard = owning_shard(&offer.instance, shards.len());
            send_to_shard(shards, shard, ToShard::Offer(offer), metrics);
        }
        FleetMsg::Adopted(done) => {
            let shard = done.shard.min(shards.len() - 1);
            send_to_shard(shards, shard, ToShard::Adopted(done), metrics);
        }
        FleetMsg::Broadcast(b) => {
            if b.message.len() > NOTICE_BYTES_MAX {
                tracing::warn!(
                    bytes = b.message.len(),
                    "fleet broadcast over {NOTICE_BYTES_MAX} bytes ignored"
                );
                return;
            }
            tracing::info!(region = ?b.region, "fleet broadcast received");
            let b = Arc::new(b);
            for s in 0..shards.len() {
                send_to_shard(shards, s, ToShard::Notice(b.clone()), metrics);
            }
        }
        // Messages for one node arrive on its own channel only.
        FleetMsg::Move(order) => {
            let shard = owning_shard(&order.instance, shards.len());
            send_to_shard(shards, shard, ToShard::MoveOut(order), metrics);
        }
        FleetMsg::Reserve(r) => {
            let shard = owning_shard(&r.instance, shards.len());
            send_to_shard(shards, shard, ToShard::Reserve(r), metrics);
        }
        FleetMsg::Reserved(r) => {
            let shard = r.shard.min(shards.len() - 1);
            send_to_shard(shards, shard, ToShard::Reserved(r), metrics);
        }
        FleetMsg::HandOver(h) => {
            let shard = owning_shard(&h.instance, shards.len());
            send_to_shard(shards, shard, ToShard::TakeSeats(h), metrics);
        }
        FleetMsg::HandedOver(r) => {
            let shard = r.shard.min(shards.len() - 1);
            send_to_shard(shards, shard, ToShard::HandedOver(r), metrics);
        }
        FleetMsg::Mail {
            to,
            from,
            message_kind,
            body,
        } => {
            use base64::Engine;
            let (Ok(to), Ok(from), Ok(body)) = (
                InstanceId::parse(&to),
                InstanceId::parse(&from),
                base64::engine::general_purpose::STANDARD.decode(body),
            ) else {
                tracing::warn!("unreadable instance message ignored");
                metrics.instance_mail_dropped.inc();
                return;
            };
            let shard = shard_for(&to, shards.len());
            let mail = crate::game::InstanceMail {
                from,
                kind: message_kind,
                body,
            };
            send_to_shard(shards, shard, ToShard::Mail { to, mail }, metrics);
        }
    }
    metrics.fleet_messages.inc();
}

/// The shard of an instance id; an invalid id goes to shard 0, which
/// refuses it with a reason.
fn owning_shard(instance: &str, shards: usize) -> usize {
    InstanceId::parse(instance).map_or(0, |id| shard_for(&id, shards))
}

// ------------------------------------------------------------------ the CLI

/// `shardline fleet`: orders for every node through the directory.
#[derive(clap::Args, Debug)]
pub struct FleetCli {
    /// The fleet's directory, `redis://[:PASSWORD@]HOST:PORT[/DB]`, or
    /// `redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER[/DB]`.
    #[arg(
        long,
        value_name = "URL",
        env = "SHARDLINE_DIRECTORY",
        hide_env_values = true
    )]
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
    /// Empty one node without kicking anyone: no new players, and each of
    /// its instances moves live to another node of its region (players get
    /// Transfer and resume there with their tokens). Then stop it.
    Evacuate {
        /// The node id.
        node: String,
    },
    /// The nodes registered now, as JSON lines.
    Nodes,
    /// A message to every player of a region (or of every region): each
    /// connected player gets a Notice.
    Broadcast {
        /// Only this region's players. [default: every region]
        #[arg(long, value_name = "NAME")]
        region: Option<String>,
        /// UTF-8, at most 1024 bytes.
        message: String,
    },
    /// Move a player to an instance wherever it runs, its seat reserved
    /// there: on another node the player gets Transfer (reconnect there with
    /// its token), on the same node Joined. Waits for the outcome and
    /// prints it as one JSON line; exits 2 when the move did not happen.
    Move {
        /// The instance the player is in now.
        #[arg(long, value_name = "ID")]
        instance: String,
        /// The player's id (Welcome.player_id; the admin /instances/{id} lists them).
        #[arg(long, value_name = "ID")]
        player: u64,
        /// The instance to move the player to.
        #[arg(long, value_name = "ID")]
        to: String,
        /// Fail when the target instance does not exist, instead of creating it.
        #[arg(long)]
        no_create: bool,
        /// How long to wait for the outcome.
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        timeout_ms: u64,
    },
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
    /// A region's ScalingPolicy for `shardline autoscale`: `--region R
    /// key=value …` (min_nodes, max_nodes, scale_up_threshold,
    /// scale_down_threshold, cooldown_up_ms, cooldown_down_ms,
    /// node_start_ms, forecast.mode, provider.kind, …), `--file FILE`
    /// (TOML), `--show`, or `--region R --clear`. Invalid policies are
    /// refused with the reason.
    Policy(PolicyArgs),
}

/// `shardline fleet config policy` (run by `autoscale::cli::policy`).
#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[arg(long, value_name = "NAME")]
    pub region: Option<String>,
    /// Every `[regions.NAME]` table of a TOML policy file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["region", "show", "clear"])]
    pub file: Option<std::path::PathBuf>,
    /// Print every region's policy.
    #[arg(long)]
    pub show: bool,
    /// Remove the region's policy (the autoscaler leaves it alone).
    #[arg(long, requires = "region")]
    pub clear: bool,
    #[arg(value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
}

pub fn run(cli: FleetCli) -> anyhow::Result<()> {
    let endpoint = Endpoint::parse(&cli.directory)
        .with_context(|| format!("--directory {}", super::redacted(&cli.directory)))?;
    let mut conn = endpoint.connect(Duration::from_secs(5)).with_context(|| {
        format!(
            "cannot reach the directory at {}",
            super::redacted(&cli.directory)
        )
    })?;
    let (channel, msg) = match cli.cmd {
        FleetCmd::Config {
            cmd: ConfigCmd::Policy(_),
        } => bail!("fleet config policy is run by the autoscale module (cli.rs routes it)"),
        FleetCmd::Config {
            cmd: ConfigCmd::Set { region, pairs },
        } => {
            let c = FleetConfig::parse(&pairs).map_err(anyhow::Error::msg)?;
            let channel = keys::control_of(region.as_deref());
            (channel, FleetMsg::Config(c))
        }
        FleetCmd::Drain { node } => (keys::CONTROL_ALL.to_owned(), FleetMsg::Drain { node }),
        FleetCmd::Evacuate { node } => (keys::node_control(&node), FleetMsg::Evacuate { node }),
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
        FleetCmd::Broadcast { region, message } => {
            let b = Broadcast::new(message, region).map_err(anyhow::Error::msg)?;
            let channel = keys::control_of(b.region.as_deref());
            (channel, FleetMsg::Broadcast(b))
        }
        FleetCmd::Move {
            instance,
            player,
            to,
            no_create,
            timeout_ms,
        } => {
            let order =
                MoveOrder::new(&instance, player, &to, !no_create).map_err(anyhow::Error::msg)?;
            return run_move(&mut conn, order, Duration::from_millis(timeout_ms));
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

/// Publishes `order` to the node owning its instance and waits for the
/// outcome that node pushes to `sl:move:{id}`.
fn run_move(
    conn: &mut redis::Connection,
    order: MoveOrder,
    timeout: Duration,
) -> anyhow::Result<()> {
    let from = InstanceId::parse(&order.instance).map_err(anyhow::Error::msg)?;
    let owner: Option<String> = redis::cmd("GET").arg(keys::instance(&from)).query(conn)?;
    let Some(owner) = owner else {
        bail!("no node runs instance {}", order.instance);
    };
    let result_key = keys::move_result(&order.id);
    let body = serde_json::to_string(&FleetMsg::Move(order))?;
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(keys::node_control(&owner))
        .arg(&body)
        .query(conn)?;
    if receivers == 0 {
        bail!("node {owner}, which owns the instance, is not listening (stopped or dead; retry once its region has taken the instance over)");
    }
    let secs = timeout.as_secs_f64().max(0.01);
    // BLPOP blocks up to `timeout`; the connection's own bound is longer.
    conn.set_read_timeout(Some(timeout + Duration::from_secs(5)))?;
    let popped: Option<(String, String)> =
        redis::cmd("BLPOP").arg(&result_key).arg(secs).query(conn)?;
    let Some((_, outcome)) = popped else {
        bail!(
            "node {owner} did not report the outcome within {} ms",
            timeout.as_millis()
        );
    };
    let v: serde_json::Value = serde_json::from_str(&outcome)?;
    if v["ok"] == serde_json::Value::Bool(true) {
        println!("{outcome}");
        Ok(())
    } else {
        bail!(
            "move refused by node {owner}: {}",
            v["error"].as_str().unwrap_or("no reason given")
        )
    }
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
