//! The directory: how the nodes of a fleet find each other, through Redis.
//!
//! Redis carries the control plane only — node registry, instance ownership,
//! seats, replicated snapshots, fleet messages. Players' traffic never
//! crosses it, and no shard ever waits on it in a tick: the Redis client
//! lives on its own thread (the *agent*), and shards talk to it over bounded
//! crossbeam channels with the explicit messages below. A shard's task that
//! needs an answer (a handshake asking who owns an instance, a routing
//! request) awaits its answer (an eventfd wakes it) with a bounded wait; when
//! the agent is slow or Redis is down, that one request is refused, nothing
//! else.
//!
//! # Layout
//! - [`keys`]: the Redis key names.
//! - [`endpoint`]: `--directory`: one Redis, or Redis Sentinel (the primary
//!   the sentinels name, found again after a failover).
//! - [`route`]: pure routing (least loaded in a region, nearest region with
//!   room, region sums).
//! - [`replica`]: the compressed snapshot of one instance stored for failover.
//! - [`fence`]: ownership records with epochs, and the Lua scripts that are
//!   their only writers (pure).
//! - [`budget`]: which replicas are written when, within
//!   `--replica-writes-per-s-max` (pure).
//! - [`agent`]: the control-plane thread: registry heartbeat, ownership
//!   claims and their re-validation, paced replication, failover, outage
//!   handling.
//! - [`control`]: fleet messages over Redis pub/sub and `shardline fleet`.
//! - [`transfer`]: moving a player to an instance on another node with its
//!   seat reserved there (`shardline fleet move`), and fleet broadcasts.
//! - [`handover`]: the messages of a hand-over: a node that lost an
//!   instance hands its players to the owner with their seats.
//! - [`evacuate`]: the messages of an evacuation: each instance of a node
//!   moves live to another node of its region, players sent after it
//!   (`shardline fleet evacuate`, the autoscaler's scale-down).
//! - [`metrics`]: the directory's counters (atomics: the agent is a thread),
//!   Redis commands by kind and per second.
//!
//! A shard's side (its reports, the events it applies, hand-overs, `/v1/*`
//! on the game listener) is in the shard core (`shard::fleet`,
//! `shard::handover`) and its runtime (`runtime::directory`,
//! `runtime::fleet_http`).

pub mod agent;
pub mod budget;
pub mod control;
pub mod endpoint;
pub mod evacuate;
pub mod fence;
pub mod handover;
pub mod keys;
pub mod metrics;
pub mod replica;
pub mod route;
pub mod transfer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::game::InstanceId;
use crate::snapshot::InstanceSnapshot;
use crate::util::wake::{MailboxReceiver, MailboxSender, Reply};

pub use endpoint::{redacted, Endpoint};
pub use metrics::DirectoryMetrics;

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

pub use crate::config::directory::{
    DirectoryConfig, DIRECTORY_HEARTBEAT_MS_DEFAULT, DIRECTORY_TTL_MS_DEFAULT,
    REPLICA_BYTES_MAX_DEFAULT, REPLICA_WRITES_PER_S_MAX_DEFAULT,
};

/// What shards (and the pub/sub thread) ask of the agent.
#[derive(Debug)]
pub enum ToAgent {
    /// A shard's figures, its instances and, every snapshot interval, their
    /// latest state for replication.
    Report(ShardReport),
    /// The fleet ordered this node to drain or evacuate: show it draining
    /// in the directory now.
    Draining,
    /// Who owns `instance`? Claims it for this node when nobody does only
    /// if `create_here` (a draining or stopping node creates nothing, so it
    /// claims nothing: it points the player to a node of its region with
    /// room instead).
    Place {
        instance: InstanceId,
        create_here: bool,
        reply: Reply<Claim>,
    },
    /// `GET /v1/…`: answered with an HTTP status and a JSON body.
    Route {
        query: RouteQuery,
        reply: Reply<(u16, serde_json::Value)>,
    },
    /// A resume token unknown on this node: which node holds its seat?
    FindSeat { token: String, reply: Reply<SeatAt> },
    /// A stopping shard's final report (with every instance's state). Once
    /// every shard's is in, the node deregisters so the region takes its
    /// instances over at once; then each `reply` gets `true` (`false` at
    /// once when Redis is unreachable).
    Leave {
        report: ShardReport,
        reply: Reply<bool>,
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
    /// A seat ended here (its player left, or its grace ran out): the
    /// directory forgets it, so a resume of its token is refused at once on
    /// every node.
    SeatEnded { token: String, instance: InstanceId },
    /// A shard hands the players of an instance this node lost to its owner.
    HandOver(handover::HandOver),
    /// This node's answer to another node's hand-over.
    HandedOver(handover::HandedOver),
    /// An instance taken out of a shard of this evacuating node: give it to
    /// another node of the region.
    Evacuating(evacuate::Outgoing),
    /// Another node gives this node an instance: rebuild it and answer.
    Adopt(evacuate::Offer),
    /// A game's message to an instance this node does not run: to the
    /// node that owns it (pub/sub), at most once.
    Mail {
        to: InstanceId,
        mail: crate::game::InstanceMail,
    },
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
    /// The node's admission limit in force (--max-connections, as changed
    /// at run time): the capacity the registry publishes.
    pub capacity: usize,
    pub instances: Vec<InstanceId>,
    pub draining: bool,
    pub shedding: bool,
    /// `Some` when replication is due: every instance's state now.
    pub snapshots: Option<Vec<InstanceSnapshot>>,
}

/// The answer to [`ToAgent::Place`].
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
    /// The directory gives this local instance to node `node` (at `url`):
    /// hand its players over there with their seats, then stop it.
    HandOver {
        instance: InstanceId,
        node: String,
        url: String,
    },
    /// Another node hands this shard the players of an instance it owns.
    TakeSeats(handover::HandOver),
    /// The owner's answer to a hand-over this shard asked for.
    HandedOver(handover::HandedOver),
    /// `shardline fleet evacuate` (the autoscaler's scale-down): move every
    /// instance live to other nodes of the region.
    Evacuate,
    /// Another node gives an instance of this shard's to this node.
    Offer(evacuate::Offer),
    /// How a hand-over of this shard's went.
    Adopted(evacuate::Done),
    /// A game's message from another node for an instance of this shard.
    Mail {
        to: InstanceId,
        mail: crate::game::InstanceMail,
    },
}

/// Every shard's handle on the directory (in `NodeShared`).
#[derive(Clone)]
pub struct Directory {
    to_agent: Sender<ToAgent>,
    /// Each shard's event mailbox, taken once by that shard at start
    /// (the lock is touched at start-up only, never on the data path).
    events: Arc<Vec<std::sync::Mutex<Option<MailboxReceiver<ToShard>>>>>,
    pub metrics: Arc<DirectoryMetrics>,
    pub public_url: Arc<str>,
}

impl Directory {
    /// Shard `shard`'s event mailbox (once; `None` after).
    pub fn take_events(&self, shard: usize) -> Option<MailboxReceiver<ToShard>> {
        self.events[shard].lock().ok()?.take()
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

    /// Sends a request and waits (bounded; woken by the answer) for its
    /// answer. `None`: the agent did not answer in time (counted as
    /// refused). On a shard's executor only.
    pub async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> ToAgent) -> Option<T> {
        self.ask_within(ANSWER_TIMEOUT, make).await
    }

    /// [`Directory::ask`] with another bound.
    pub async fn ask_within<T>(
        &self,
        timeout: Duration,
        make: impl FnOnce(Reply<T>) -> ToAgent,
    ) -> Option<T> {
        let Ok((reply, answer)) = crate::util::wake::request() else {
            self.metrics.refused.inc();
            return None;
        };
        if !self.tell(make(reply)) {
            self.metrics.refused.inc();
            return None;
        }
        let got = answer.wait_until(Instant::now() + timeout).await;
        if got.is_none() {
            self.metrics.refused.inc();
        }
        got
    }

    /// Who owns `instance` (claiming it when nobody does).
    pub async fn claim(&self, instance: InstanceId) -> Claim {
        self.place(instance, true).await
    }

    /// Who owns `instance`; claims it when nobody does only if
    /// `create_here` (see [`ToAgent::Place`]).
    pub async fn place(&self, instance: InstanceId, create_here: bool) -> Claim {
        self.ask(|reply| ToAgent::Place {
            instance,
            create_here,
            reply,
        })
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
    /// The node's open game connections now (its admission counter): the
    /// agent publishes a change that matters to routing at once instead of
    /// at the next heartbeat (`agent::PUBLISH_POLL`).
    pub open_connections: Box<dyn Fn() -> usize + Send>,
}

/// Starts the agent and the fleet-message threads; returns the shards'
/// handle. Redis need not be up: the agent keeps trying each heartbeat.
pub fn start(start: AgentStart) -> anyhow::Result<Directory> {
    let endpoint = Endpoint::parse(&start.cfg.url)
        .map_err(|e| anyhow::anyhow!("--directory {}: {e}", redacted(&start.cfg.url)))?;
    let metrics = Arc::new(DirectoryMetrics::default());
    let (to_agent, agent_rx) = crossbeam_channel::bounded(AGENT_QUEUE_CAPACITY);
    let (event_txs, event_rxs): (Vec<_>, Vec<_>) = (0..start.shards)
        .map(|_| crate::util::wake::mailbox(SHARD_EVENTS_CAPACITY))
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let public_url: Arc<str> = Arc::from(start.public_url.as_str());
    control::spawn_subscriber(
        endpoint.clone(),
        start.region.clone(),
        start.node_id.clone(),
        event_txs.clone(),
        to_agent.clone(),
        metrics.clone(),
    )?;
    agent::spawn(endpoint, start, agent_rx, event_txs, metrics.clone())?;
    Ok(Directory {
        to_agent,
        events: Arc::new(
            event_rxs
                .into_iter()
                .map(|rx| std::sync::Mutex::new(Some(rx)))
                .collect(),
        ),
        metrics,
        public_url,
    })
}

/// Sends `ev` to shard `shard` without waiting; counts a drop.
pub(crate) fn send_to_shard(
    shards: &[MailboxSender<ToShard>],
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
