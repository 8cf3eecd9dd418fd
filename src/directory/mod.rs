//! The directory: how the nodes of a fleet find each other, through Redis.
//!
//! Redis carries the control plane only — node registry, instance ownership,
//! seats, replicated snapshots, fleet messages. Players' traffic never
//! crosses it, and no shard ever waits on it in a tick: the Redis client
//! lives on its own thread (the *agent*), and shards talk to it over bounded
//! crossbeam channels with the explicit messages below. A shard's task that
//! needs an answer (a handshake asking who owns an instance, a routing
//! request) polls its reply channel with a bounded wait; when the agent is
//! slow or Redis is down, that one request is refused, nothing else.
//!
//! # Layout
//! - [`keys`]: the Redis key names.
//! - [`route`]: pure routing (least loaded in a region, nearest region with
//!   room, region sums).
//! - [`replica`]: the compressed snapshot of one instance stored for failover.
//! - [`agent`]: the control-plane thread: registry heartbeat, ownership
//!   claims, replication, failover, outage handling.
//! - [`control`]: fleet messages over Redis pub/sub and `shardline fleet`.
//! - [`link`]: a shard's side: reports to the agent, applies its events.
//! - [`transfer`]: moving a player to an instance on another node with its
//!   seat reserved there (`shardline fleet move`), and fleet broadcasts.
//! - [`handover`]: evacuating a node: each instance moves live to another
//!   node of its region, players sent after it (`shardline fleet evacuate`,
//!   the autoscaler's scale-down).
//! - [`http`]: `GET /v1/regions`, `GET /v1/route`, and the answer to a
//!   `/play?instance=` for an instance another node owns.
//! - [`metrics`]: the directory's counters (atomics: the agent is a thread).

pub mod agent;
pub mod control;
pub mod handover;
pub mod http;
pub mod keys;
pub mod link;
pub mod metrics;
pub mod replica;
pub mod route;
pub mod transfer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use crate::game::InstanceId;
use crate::snapshot::InstanceSnapshot;

pub use metrics::DirectoryMetrics;

/// How often the registry entry is refreshed (and load published).
pub const DIRECTORY_HEARTBEAT_MS_DEFAULT: u64 = 1_000;
/// A node not refreshed for this long is dead; its region takes over.
pub const DIRECTORY_TTL_MS_DEFAULT: u64 = 5_000;
/// Largest replicated snapshot of one instance, compressed bytes. Costs
/// Redis memory: this × instances of the fleet in the worst case.
pub const REPLICA_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// Messages waiting for the agent. Shard reports (one per shard per
/// heartbeat) and requests share it; when full, a request is refused
/// (counted), a report is skipped until the next heartbeat.
pub const AGENT_QUEUE_CAPACITY: usize = 1024;
/// Events waiting for one shard (restores, fleet orders); when full, an
/// event is dropped and counted.
pub const SHARD_EVENTS_CAPACITY: usize = 64;
/// Longest a connection waits for the agent's answer before it is refused.
pub const ANSWER_TIMEOUT: Duration = Duration::from_millis(1500);
/// Longest a stopping shard waits for its final replica to be written and
/// the node deregistered; then it stops anyway (the region takes over
/// after the TTL, from the last periodic replica).
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting task looks for the answer (a crossbeam channel
/// cannot wake a glommio task; see FACTS).
const ANSWER_POLL: Duration = Duration::from_millis(2);

/// `--directory …` and the flags that go with it.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// `redis://HOST:PORT`.
    pub url: String,
    /// Base WebSocket URL players reach this node at; `None`: derived from
    /// the listen address once bound.
    pub public_url: Option<String>,
    pub location: String,
    pub heartbeat: Duration,
    pub ttl: Duration,
    pub replica_bytes_max: usize,
}

/// What shards (and the pub/sub thread) ask of the agent.
#[derive(Debug)]
pub enum ToAgent {
    /// A shard's figures, its instances and, every snapshot interval, their
    /// latest state for replication.
    Report(ShardReport),
    /// Who owns `instance`? Claims it for this node when nobody does.
    Claim {
        instance: InstanceId,
        reply: Sender<Claim>,
    },
    /// `GET /v1/…`: answered with an HTTP status and a JSON body.
    Route {
        query: RouteQuery,
        reply: Sender<(u16, serde_json::Value)>,
    },
    /// A resume token unknown on this node: which node holds its seat?
    FindSeat {
        token: String,
        reply: Sender<SeatAt>,
    },
    /// A stopping shard's final report (with every instance's state). Once
    /// every shard's is in, the node deregisters so the region takes its
    /// instances over at once; then each `reply` gets `true` (`false` at
    /// once when Redis is unreachable).
    Leave {
        report: ShardReport,
        reply: Sender<bool>,
    },
    /// A player got a seat in `instance` here: record it at once, so that
    /// a reconnect on any node finds it before the next replication.
    Seat { token: String, instance: InstanceId },
    /// Move a player of this node to `instance` of the reservation: find
    /// (or claim) its owner and ask it for a seat.
    Transfer(transfer::Reservation),
    /// This node's answer to another node's reservation: record the seat
    /// and tell the asking node.
    Reserved(transfer::Reserved),
    /// The outcome of a `shardline fleet move` run by this node, for the
    /// caller waiting on the directory.
    MoveDone {
        move_id: String,
        outcome: serde_json::Value,
    },
    /// An instance taken out of a shard of this evacuating node: give it to
    /// another node of the region.
    HandOver(handover::HandOver),
    /// Another node gives this node an instance: rebuild it and answer.
    Adopt(handover::HandoverOffer),
}

/// Where the directory places a resume token's seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatAt {
    /// Unknown, expired, or its instance has no owner.
    Nowhere,
    /// Its instance belongs to this node but no shard holds the seat yet:
    /// the instance is being rebuilt here (taken over from a dead node).
    Here,
    /// Another node's WebSocket URL.
    Node(String),
}

#[derive(Debug)]
pub struct ShardReport {
    pub shard: usize,
    /// Players connected or holding a seat.
    pub players: usize,
    pub instances: Vec<InstanceId>,
    pub draining: bool,
    pub shedding: bool,
    /// `Some` when replication is due: every instance's state now.
    pub snapshots: Option<Vec<InstanceSnapshot>>,
}

/// The answer to [`ToAgent::Claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Mine,
    Elsewhere {
        node: String,
        url: String,
    },
    /// The directory cannot say now (Redis down, owner dead and not yet
    /// taken over); the reason is for the client.
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteQuery {
    Regions,
    /// The admin API's `GET /fleet`: this node's view of the whole fleet
    /// (answered from the last heartbeat even while Redis is down).
    Fleet,
    Instance(InstanceId),
    Region(String),
    Latencies(Vec<(String, u32)>),
}

/// What the agent (or the fleet channel) tells one shard.
#[derive(Debug)]
pub enum ToShard {
    /// Instances taken over from a dead node: rebuild them and their seats.
    Restore(Vec<InstanceSnapshot>),
    /// `shardline fleet config set`: settings for this region.
    Configure(control::FleetConfig),
    /// `shardline fleet drain`: stop placing new players here.
    Drain,
    /// `shardline fleet broadcast`: a Notice for every player here.
    Notice(Arc<transfer::Broadcast>),
    /// `shardline fleet move`: move a player of an instance of this shard.
    MoveOut(transfer::MoveOrder),
    /// The target of a move turned out to be on this node: move as a Join.
    TransferLocal {
        move_id: String,
        to: InstanceId,
        create: bool,
    },
    /// The directory gives this local instance to another node (at `url`):
    /// this copy is stale (restored here after the region took it over, or
    /// kept through a partition) and must stop.
    Disown { instance: InstanceId, url: String },
    /// Another node asks for a seat in an instance of this shard.
    Reserve(transfer::Reservation),
    /// The answer to a reservation this shard asked for.
    Reserved(transfer::Reserved),
    /// `shardline fleet evacuate` (the autoscaler's scale-down): move every
    /// instance live to other nodes of the region.
    Evacuate,
    /// Another node gives an instance of this shard's to this node.
    Offer(handover::HandoverOffer),
    /// How a hand-over of this shard's went.
    Adopted(handover::HandoverDone),
}

/// Every shard's handle on the directory (in `NodeShared`).
#[derive(Clone)]
pub struct Directory {
    to_agent: Sender<ToAgent>,
    events: Arc<Vec<Receiver<ToShard>>>,
    pub metrics: Arc<DirectoryMetrics>,
    pub public_url: Arc<str>,
}

impl Directory {
    /// Shard `shard`'s event queue.
    pub fn events(&self, shard: usize) -> &Receiver<ToShard> {
        &self.events[shard]
    }

    /// Queues a message for the agent without waiting; `false` (counted)
    /// when its queue is full.
    pub fn tell(&self, msg: ToAgent) -> bool {
        match self.to_agent.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.metrics.agent_queue_full.inc();
                false
            }
        }
    }

    /// Sends a request and waits (bounded, polling) for its answer. `None`:
    /// the agent did not answer in time (counted as refused).
    pub async fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> ToAgent) -> Option<T> {
        self.ask_within(ANSWER_TIMEOUT, make).await
    }

    /// [`Directory::ask`] with another bound.
    pub async fn ask_within<T>(
        &self,
        timeout: Duration,
        make: impl FnOnce(Sender<T>) -> ToAgent,
    ) -> Option<T> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !self.tell(make(tx)) {
            self.metrics.refused.inc();
            return None;
        }
        let deadline = Instant::now() + timeout;
        loop {
            match rx.try_recv() {
                Ok(v) => return Some(v),
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) if Instant::now() >= deadline => break,
                Err(TryRecvError::Empty) => glommio::timer::sleep(ANSWER_POLL).await,
            }
        }
        self.metrics.refused.inc();
        None
    }

    /// Who owns `instance` (claiming it when nobody does).
    pub async fn claim(&self, instance: InstanceId) -> Claim {
        self.ask(|reply| ToAgent::Claim { instance, reply })
            .await
            .unwrap_or_else(|| Claim::Unavailable("the directory did not answer in time".into()))
    }
}

/// What the node needs to start the agent.
pub struct AgentStart {
    pub cfg: DirectoryConfig,
    pub public_url: String,
    pub node_id: String,
    pub region: String,
    pub shards: usize,
    pub capacity: usize,
    pub game: String,
    pub reconnect_grace: Duration,
    pub connect_timeout: Duration,
    /// How often shards report (the replication period).
    pub report_interval: Duration,
}

/// Starts the agent and the fleet-message threads; returns the shards'
/// handle. Redis need not be up: the agent keeps trying each heartbeat.
pub fn start(start: AgentStart) -> anyhow::Result<Directory> {
    let client = redis::Client::open(start.cfg.url.as_str())
        .map_err(|e| anyhow::anyhow!("--directory {}: {e}", redacted(&start.cfg.url)))?;
    let metrics = Arc::new(DirectoryMetrics::default());
    let (to_agent, agent_rx) = crossbeam_channel::bounded(AGENT_QUEUE_CAPACITY);
    let (event_txs, event_rxs): (Vec<_>, Vec<_>) = (0..start.shards)
        .map(|_| crossbeam_channel::bounded(SHARD_EVENTS_CAPACITY))
        .unzip();
    let public_url: Arc<str> = Arc::from(start.public_url.as_str());
    control::spawn_subscriber(
        client.clone(),
        start.region.clone(),
        start.node_id.clone(),
        event_txs.clone(),
        metrics.clone(),
    )?;
    agent::spawn(client, start, agent_rx, event_txs, metrics.clone())?;
    Ok(Directory {
        to_agent,
        events: Arc::new(event_rxs),
        metrics,
        public_url,
    })
}

/// Sends `ev` to shard `shard` without waiting; counts a drop.
pub(crate) fn send_to_shard(
    shards: &[Sender<ToShard>],
    shard: usize,
    ev: ToShard,
    metrics: &DirectoryMetrics,
) -> bool {
    if shards[shard].try_send(ev).is_err() {
        metrics.shard_events_dropped.inc();
        tracing::warn!(shard, "directory event dropped: the shard's queue is full");
        return false;
    }
    true
}

impl DirectoryConfig {
    /// `Some` with --directory; the other directory flags need it.
    pub fn resolve(
        opts: &crate::config::ServeOpts,
    ) -> Result<Option<DirectoryConfig>, crate::config::ConfigError> {
        use crate::config::invalid;
        let Some(url) = opts.directory.clone().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if !url.starts_with("redis://") {
            return Err(invalid(
                "directory",
                format!("{url:?}: expected redis://HOST:PORT"),
            ));
        }
        let heartbeat_ms = opts
            .directory_heartbeat_ms
            .unwrap_or(DIRECTORY_HEARTBEAT_MS_DEFAULT);
        let ttl_ms = opts.directory_ttl_ms.unwrap_or(DIRECTORY_TTL_MS_DEFAULT);
        if heartbeat_ms == 0 {
            return Err(invalid("directory-heartbeat-ms", "must be at least 1"));
        }
        // Two missed heartbeats must not make a live node look dead.
        if ttl_ms < heartbeat_ms * 2 {
            return Err(invalid(
                "directory-ttl-ms",
                format!(
                    "{ttl_ms} must be at least twice --directory-heartbeat-ms ({heartbeat_ms})"
                ),
            ));
        }
        if let Some(u) = &opts.public_url {
            if !(u.starts_with("ws://") || u.starts_with("wss://")) {
                return Err(invalid(
                    "public-url",
                    format!("{u:?}: expected ws://… or wss://…"),
                ));
            }
        }
        let replica_bytes_max = opts.replica_bytes_max.unwrap_or(REPLICA_BYTES_MAX_DEFAULT);
        if replica_bytes_max < 1024 {
            return Err(invalid("replica-bytes-max", "must be at least 1024 bytes"));
        }
        Ok(Some(DirectoryConfig {
            url,
            public_url: opts
                .public_url
                .clone()
                .map(|u| u.trim_end_matches('/').to_owned()),
            location: opts
                .location
                .clone()
                .or_else(|| opts.region.clone())
                .unwrap_or_else(|| "local".into()),
            heartbeat: Duration::from_millis(heartbeat_ms),
            ttl: Duration::from_millis(ttl_ms),
            replica_bytes_max,
        }))
    }
}

/// `url` with its password (`redis://user:PASSWORD@host`) replaced by
/// `***`, for logs and error messages.
pub fn redacted(url: &str) -> String {
    let Some(rest) = url.strip_prefix("redis://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split_once(':').map_or("", |(u, _)| u);
            format!("redis://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// The URL players reach a node at when --public-url is not given.
pub fn default_public_url(listen: std::net::SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        // A wildcard address is not one a client can use; the operator
        // should set --public-url (logged at start).
        format!("ws://127.0.0.1:{}", listen.port())
    } else {
        format!("ws://{listen}")
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redacted("redis://:s3cr@t@redis.internal:6379/2"),
            "redis://:***@redis.internal:6379/2"
        );
        assert_eq!(
            redacted("redis://game:pw@10.0.0.5"),
            "redis://game:***@10.0.0.5"
        );
    }
}
