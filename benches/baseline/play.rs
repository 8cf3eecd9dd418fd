//! The baseline's `/play`: Hello → Welcome, Join → Joined (others get
//! PlayerJoined), Input queued into the instance, Ping → Pong, Leave; one
//! tick task per instance steps the world and sends every player its
//! StateUpdate through the player's channel to its writer task.
//!
//! Written the way the tokio tutorials teach: shared state behind
//! `Arc<Mutex<…>>` (std's mutex, held only for short sections that never
//! await), one writer task per connection that does one `ws.send` per
//! message. Game rules are shardline's own (`Instance` + the arena), so the
//! world does exactly the same work per tick as on shardline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use shardline::game::{
    ArenaFactory, EntityView, GameFactory, Instance, InstanceId, InstanceLimits, PlayerId,
};
use shardline::protocol::{
    decode_client, ClientCmd, Encoder, ErrorCode, LeaveReason, LimitsInfo, WelcomeInfo,
    PROTOCOL_VERSION,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;

use crate::Stats;

/// Messages waiting for one player's writer task. A full channel drops the
/// update (counted) rather than blocking the tick: 64 is two seconds of
/// updates at 30 Hz.
const OUTBOX_MESSAGES_MAX: usize = 64;

type Ws = WebSocketStream<TcpStream>;

/// An [`Instance`] that may cross threads.
///
/// `Instance` holds a `Box<dyn Game>`, which is not `Send` (shardline keeps
/// worlds on their shard). Here the game is always the arena, which is plain
/// owned data, and the instance is only ever touched under its room's mutex.
struct SendInstance(Instance);

// SAFETY: the boxed game is always `ArenaFactory`'s `Arena` (asserted `Send`
// below), every other field of `Instance` is owned plain data, and access is
// serialized by the `Mutex<Room>` that owns this value.
unsafe impl Send for SendInstance {}
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<shardline::game::Arena>();
};

/// One game instance and the outboxes of the players seated in it.
struct Room {
    inst: SendInstance,
    outboxes: HashMap<PlayerId, mpsc::Sender<Message>>,
    /// Set when the last player left and the room was removed from the map:
    /// its tick task ends.
    closed: bool,
}

/// Everything the sessions and tick tasks share.
pub struct Game {
    rooms: Mutex<HashMap<InstanceId, Arc<Mutex<Room>>>>,
    next_player: AtomicU64,
    next_instance: AtomicU64,
    tick_interval: Duration,
    tick_rate_hz: u16,
    limits: InstanceLimits,
    stats: Arc<Stats>,
}

impl Game {
    pub fn new(
        tick_interval: Duration,
        tick_rate_hz: u16,
        limits: InstanceLimits,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            next_player: AtomicU64::new(1),
            next_instance: AtomicU64::new(1),
            tick_interval,
            tick_rate_hz,
            limits,
            stats,
        }
    }

    /// The named room (created, with its tick task, if missing), or the
    /// first room with a free seat when no name is given.
    fn room_for(self: &Arc<Self>, id: Option<InstanceId>) -> Arc<Mutex<Room>> {
        let mut rooms = self.rooms.lock().unwrap();
        let id = match id {
            Some(id) => id,
            None => {
                let free = rooms
                    .values()
                    .find(|r| r.lock().unwrap().inst.0.has_room())
                    .cloned();
                if let Some(room) = free {
                    return room;
                }
                let n = self.next_instance.fetch_add(1, Ordering::Relaxed);
                InstanceId::parse(&format!("auto-{n}")).expect("valid id")
            }
        };
        rooms
            .entry(id.clone())
            .or_insert_with(|| {
                let inst = Instance::new(id.clone(), ArenaFactory.create(&id), self.limits);
                let room = Arc::new(Mutex::new(Room {
                    inst: SendInstance(inst),
                    outboxes: HashMap::new(),
                    closed: false,
                }));
                tokio::spawn(run_room(room.clone(), self.clone()));
                room
            })
            .clone()
    }

    /// Removes the player from its room and tells the others; the room goes
    /// when it is empty.
    fn leave(&self, room: &Arc<Mutex<Room>>, pid: PlayerId, enc: &mut Encoder) {
        let mut rooms = self.rooms.lock().unwrap();
        let mut r = room.lock().unwrap();
        r.outboxes.remove(&pid);
        let Some(seat) = r.inst.0.leave(pid) else {
            return;
        };
        let bytes = enc.player_left(pid, seat.entity, LeaveReason::Left);
        for tx in r.outboxes.values() {
            let _ = tx.try_send(Message::binary(Bytes::copy_from_slice(bytes)));
        }
        if r.inst.0.is_empty() {
            r.closed = true;
            rooms.remove(r.inst.0.id());
        }
    }
}

/// One tick task per room: step, then one StateUpdate per player.
async fn run_room(room: Arc<Mutex<Room>>, game: Arc<Game>) {
    let interval = game.tick_interval;
    let dt_s = interval.as_secs_f32();
    let mut ticker = tokio::time::interval(interval);
    // Like shardline: a late tick steps once, not in a burst of catch-ups.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut enc = Encoder::new();
    let mut entities: Vec<EntityView> = Vec::new();
    let stats = &game.stats;
    loop {
        let due = ticker.tick().await;
        let late = due.elapsed();
        if late >= interval / 10 {
            stats.ticks_late.fetch_add(1, Ordering::Relaxed);
        }
        if late >= interval {
            stats.ticks_overrun.fetch_add(1, Ordering::Relaxed);
        }
        let mut guard = room.lock().unwrap();
        let r = &mut *guard;
        if r.closed {
            return;
        }
        let Ok(report) = r.inst.0.step(dt_s) else {
            return; // the game failed: the room stops ticking
        };
        stats
            .inputs_applied
            .fetch_add(u64::from(report.inputs_applied), Ordering::Relaxed);
        entities.clear();
        entities.extend_from_slice(r.inst.0.entities());
        let tick = r.inst.0.tick();
        for seat in r.inst.0.seats() {
            let Some(tx) = r.outboxes.get(&seat.player) else {
                continue;
            };
            let bytes = enc.state_update(
                tick,
                seat.last_input_seq,
                seat.inputs_applied,
                &entities,
                &[],
            );
            match tx.try_send(Message::binary(Bytes::copy_from_slice(bytes))) {
                Ok(()) => stats.state_updates.fetch_add(1, Ordering::Relaxed),
                Err(_) => stats.updates_dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
        stats.ticks.fetch_add(1, Ordering::Relaxed);
    }
}

/// The connection's only writer: one `send` (write + flush) per message.
async fn writer(
    mut sink: SplitSink<Ws, Message>,
    mut rx: mpsc::Receiver<Message>,
    stats: Arc<Stats>,
) {
    while let Some(msg) = rx.recv().await {
        if sink.send(msg).await.is_err() {
            return;
        }
        stats.socket_writes.fetch_add(1, Ordering::Relaxed);
    }
    let _ = sink.close().await;
}

/// Where the session stands in the protocol.
struct Player {
    id: PlayerId,
    name: String,
    room: Option<Arc<Mutex<Room>>>,
}

/// Runs one `/play` connection until it closes.
pub async fn session(ws: Ws, game: Arc<Game>) {
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::channel(OUTBOX_MESSAGES_MAX);
    let writer = tokio::spawn(writer(sink, rx, game.stats.clone()));
    let mut enc = Encoder::new();
    let mut player: Option<Player> = None;
    while let Some(Ok(msg)) = stream.next().await {
        let data = match msg {
            Message::Binary(data) => data,
            Message::Close(_) => break,
            _ => continue,
        };
        game.stats.messages_in.fetch_add(1, Ordering::Relaxed);
        let keep_going = match decode_client(&data) {
            Ok(cmd) => on_command(cmd, &mut player, &game, &tx, &mut enc).await,
            Err(e) => {
                send(&tx, enc.error(e.code, &e.message)).await;
                !e.is_fatal()
            }
        };
        if !keep_going {
            break;
        }
    }
    if let Some(Player {
        id,
        room: Some(room),
        ..
    }) = player
    {
        game.leave(&room, id, &mut enc);
    }
    drop(tx);
    let _ = writer.await;
}

async fn send(tx: &mpsc::Sender<Message>, bytes: &[u8]) {
    let _ = tx
        .send(Message::binary(Bytes::copy_from_slice(bytes)))
        .await;
}

/// Handles one decoded message; `false` ends the connection.
async fn on_command(
    cmd: ClientCmd,
    player: &mut Option<Player>,
    game: &Arc<Game>,
    tx: &mpsc::Sender<Message>,
    enc: &mut Encoder,
) -> bool {
    match (cmd, player.as_mut()) {
        (
            ClientCmd::Hello {
                protocol_version,
                player_name,
                ..
            },
            None,
        ) => {
            if protocol_version != PROTOCOL_VERSION {
                send(
                    tx,
                    enc.error(ErrorCode::UnsupportedVersion, "unsupported version"),
                )
                .await;
                return false;
            }
            let id = game.next_player.fetch_add(1, Ordering::Relaxed);
            let welcome = WelcomeInfo {
                player_id: id,
                resume_token: "",
                node_id: "baseline",
                region: "local",
                shard: 0,
                tick_rate_hz: game.tick_rate_hz,
                limits: LimitsInfo {
                    max_payload_bytes: 64 << 20,
                    inputs_per_tick_max: game.limits.inputs_per_tick_max as u16,
                    players_per_instance_max: game.limits.players_max as u16,
                    heartbeat_ms: 0,
                    connect_timeout_ms: 0,
                    reconnect_grace_ms: 0,
                    delta_history_ticks: 0,
                    // The baseline takes no game messages.
                    message_bytes_max: 0,
                    messages_per_tick_max: 0,
                },
                resumed: false,
            };
            send(tx, enc.welcome(&welcome)).await;
            *player = Some(Player {
                id,
                name: player_name,
                room: None,
            });
            true
        }
        (ClientCmd::Hello { .. }, Some(_)) => {
            send(
                tx,
                enc.error(ErrorCode::OutOfOrder, "Hello already accepted"),
            )
            .await;
            true
        }
        (_, None) => {
            send(
                tx,
                enc.error(ErrorCode::OutOfOrder, "the first message must be Hello"),
            )
            .await;
            false
        }
        (ClientCmd::Join { instance_id, .. }, Some(p)) => {
            if let Some(old) = p.room.take() {
                game.leave(&old, p.id, enc);
            }
            let (room, joined) = loop {
                let room = game.room_for(instance_id.clone());
                let mut r = room.lock().unwrap();
                if r.closed {
                    // Emptied and removed between the lookup and the lock.
                    continue;
                }
                let joined = match r.inst.0.join(p.id, &p.name) {
                    Ok(seat) => {
                        let entity = seat.entity;
                        let announce = enc.player_joined(p.id, entity, &p.name);
                        for other in r.outboxes.values() {
                            let _ =
                                other.try_send(Message::binary(Bytes::copy_from_slice(announce)));
                        }
                        r.outboxes.insert(p.id, tx.clone());
                        let tick = r.inst.0.tick();
                        let bounds = r.inst.0.bounds();
                        let id = r.inst.0.id().as_str().to_owned();
                        let entities = r.inst.0.entities();
                        Ok(Bytes::copy_from_slice(enc.joined(
                            &id,
                            entity,
                            tick,
                            bounds,
                            entities,
                            &[],
                        )))
                    }
                    Err(e) => Err(e.to_string()),
                };
                drop(r);
                break (room, joined);
            };
            match joined {
                Ok(bytes) => {
                    p.room = Some(room);
                    let _ = tx.send(Message::binary(bytes)).await;
                }
                Err(reason) => send(tx, enc.error(ErrorCode::InstanceFull, &reason)).await,
            }
            true
        }
        (ClientCmd::Input { input, .. }, Some(p)) => {
            let Some(room) = &p.room else {
                send(tx, enc.error(ErrorCode::OutOfOrder, "Input before Join")).await;
                return false;
            };
            // Dropped (full or stale) inputs are simply not applied.
            let _ = room.lock().unwrap().inst.0.push_input(p.id, input);
            true
        }
        (ClientCmd::Ping { client_time }, Some(_)) => {
            let now_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            send(tx, enc.pong(client_time, now_us)).await;
            true
        }
        // The baseline speaks version 1 only: no deltas to acknowledge.
        (ClientCmd::Ack { .. }, Some(_)) => true,
        (ClientCmd::Leave, Some(p)) => {
            match p.room.take() {
                Some(room) => game.leave(&room, p.id, enc),
                None => {
                    send(
                        tx,
                        enc.error(ErrorCode::NotInInstance, "not in an instance"),
                    )
                    .await
                }
            }
            true
        }
        // The baseline plays the arena's inputs only: game messages are
        // dropped (its clients, the load generator's, never send them).
        (ClientCmd::Message { .. }, Some(_)) => true,
    }
}
