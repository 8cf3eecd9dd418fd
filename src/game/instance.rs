//! One game instance: a world, its seats and their bounded input queues.
//!
//! Pure bookkeeping that the owning shard drives. The socket task only
//! queues ([`Instance::push_input`]); the tick consumes every queue in one
//! batch ([`Instance::step`]), so the world changes at one place and at the
//! tick's pace, never inside a socket event.
//!
//! Memory, worst case, per instance: `players_max × size_of::<Seat>()` for
//! the seat table and `players_max` entity views (both reserved at
//! creation), plus `inputs_per_tick_max × size_of::<PlayerInput>()` (16
//! bytes) of input queue per seated player (reserved at join), plus the
//! name strings and the world itself ([`Game::state_bytes`]).
//!
//! Snapshots: [`Instance::save`] captures the instance as an
//! [`InstanceSnapshot`] (plain data, rkyv-archived by the snapshot layer);
//! [`Instance::restore`] rebuilds it around a restored world without
//! spawning anything, since the world already holds the seats' entities.
//! Inputs still queued at save time are not kept: a restarted server has
//! lost its connections anyway, and the stale rule (below) lets clients
//! send them again.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use std::sync::Arc;

use super::hooks::{Claims, JoinInfo, LeaveCause, Refusal};
use super::outbox::{InstanceMail, MessageLimits, Outbox};
use super::rules::{Game, GameFactory};
use super::types::{
    EntityId, EntityView, InstanceId, Interest, InvalidInstanceId, PlayerId, PlayerInput,
};

/// One thing a player sent for the next tick, kept in arrival order.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Input(PlayerInput),
    Message { kind: u16, body: Box<[u8]> },
}

/// Distinct input-refusal reasons one instance tracks between two reads
/// by its shard; further reasons are counted as `"other"`.
pub const REFUSAL_REASONS_MAX: usize = 16;

/// Bounds of one instance, set by the node's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Seats; a join beyond this is refused with [`JoinError::Full`].
    pub players_max: usize,
    /// Inputs one player may queue between two ticks; more are dropped
    /// with [`PushInput::DroppedFull`]. Bounds both the queue memory and the
    /// work one player can cause per tick.
    pub inputs_per_tick_max: usize,
}

/// A seated player and the entity it controls.
#[derive(Debug, Clone, PartialEq)]
pub struct Seat {
    pub player: PlayerId,
    pub entity: EntityId,
    /// Display name, as given at join.
    pub name: String,
    /// Inputs and game messages waiting for the next tick, in arrival
    /// order (inputs also in seq order); at most `inputs_per_tick_max`
    /// inputs and `messages_per_tick_max` messages.
    queue: VecDeque<Action>,
    inputs_queued: usize,
    messages_queued: usize,
    /// Highest seq queued or applied, `None` before the first input. An
    /// input at or below it is stale (a duplicate or reordered), so the
    /// world never sees inputs out of order.
    seq_seen_max: Option<u32>,
    /// Seq of the last input applied to the world (0 before any); clients
    /// use it to reconcile their prediction.
    pub last_input_seq: u32,
    /// Inputs applied to the world since the player joined (saturating).
    pub inputs_applied: u32,
}

impl Seat {
    /// Inputs waiting for the next tick.
    pub fn inputs_queued(&self) -> usize {
        self.inputs_queued
    }

    /// Game messages waiting for the next tick.
    pub fn messages_queued(&self) -> usize {
        self.messages_queued
    }
}

/// What happened to a pushed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushInput {
    /// Will be applied at the next tick.
    Queued,
    /// The queue already holds `inputs_per_tick_max` for this tick.
    DroppedFull,
    /// seq <= last queued/applied seq: stale or duplicate.
    DroppedStale,
    /// The player has no seat here (left, or never joined).
    NotSeated,
}

/// What happened to a pushed game message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMessage {
    /// Will reach `Game::on_message` at the next tick.
    Queued,
    /// The player already queued `messages_per_tick_max` for this tick.
    DroppedFull,
    /// Over `message_bytes_max` (the protocol layer refuses these first).
    TooLarge,
    /// The player has no seat here.
    NotSeated,
}

/// What one tick did, for the shard's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TickReport {
    /// Inputs applied to the world in this tick, over all seats.
    pub inputs_applied: u32,
    /// Inputs the game refused (`Game::validate_input`).
    pub inputs_refused: u32,
    /// Game messages handed to `Game::on_message`.
    pub messages_applied: u32,
    /// Messages from other instances handed to the game.
    pub instance_messages_applied: u32,
}

/// Why a player could not be seated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JoinError {
    #[error("instance {0} is full ({1} players)")]
    Full(InstanceId, usize),
    #[error("player already seated")]
    AlreadySeated,
    #[error("the game refused the player: {}", .0.0)]
    Refused(Refusal),
    #[error(transparent)]
    GameFailed(#[from] GameFailure),
}

/// The game's code panicked in one of its calls. The instance is marked
/// failed and calls no game code again; its shard disposes of it and tells
/// its players, and goes on with its other instances.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("the game's {call} panicked: {message}")]
pub struct GameFailure {
    /// Which `Game` (or `GameFactory`) method.
    pub call: &'static str,
    /// The panic's message, when it was a string.
    pub message: String,
}

impl GameFailure {
    fn from_panic(call: &'static str, payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(not a string)".to_owned());
        GameFailure { call, message }
    }
}

/// Runs one call into game code; a panic becomes a [`GameFailure`].
/// Studios' game code is not trusted to be panic-free: a panic stops that
/// instance only.
pub fn guarded<T>(call: &'static str, f: impl FnOnce() -> T) -> Result<T, GameFailure> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| GameFailure::from_panic(call, p))
}

/// One seat as kept in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SeatSnapshot {
    pub player: PlayerId,
    /// The entity the player controls; it lives in the saved world.
    pub entity: EntityId,
    pub name: String,
    /// The seat's resume token. Tokens belong to the shard, not the
    /// instance: [`Instance::save`] leaves this empty and the shard fills it
    /// ([`InstanceSnapshot::fill_tokens`]) before the snapshot is written.
    pub token: String,
    /// Seq of the last input applied; after a restore, inputs at or below it
    /// are stale.
    pub last_input_seq: u32,
    /// Inputs applied since the player joined (saturating).
    pub inputs_applied: u32,
}

/// One instance as kept in a snapshot: everything [`Instance::restore`]
/// needs, plus counts for `shardline snapshot inspect`.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct InstanceSnapshot {
    /// The instance id (an [`InstanceId`] as text; checked again on
    /// restore).
    pub id: String,
    /// Steps done; a restored instance continues counting from here.
    pub tick: u64,
    /// The world as [`Game::save`] wrote it; only the game's
    /// [`GameFactory::restore`] can read it.
    pub state: Vec<u8>,
    /// Entities in the world at save time, so tools can print a count
    /// without decoding game-specific state.
    pub entities: u32,
    /// Seats in player id order.
    pub seats: Vec<SeatSnapshot>,
}

/// Bytes a seat takes in a snapshot record besides its two strings.
const SEAT_FIXED_BYTES: usize = std::mem::size_of::<SeatSnapshot>();
/// Bytes an instance takes in a snapshot record besides its id, state and
/// seats.
const INSTANCE_FIXED_BYTES: usize = std::mem::size_of::<InstanceSnapshot>();

impl InstanceSnapshot {
    /// CRC-32 of the saved world: what `shardline snapshot inspect --json`
    /// reports and a restore logs (at debug level), so a test or an
    /// operator can tell which saved state an instance came back from.
    pub fn state_crc32(&self) -> u32 {
        crc32fast::hash(&self.state)
    }

    /// Approximate size of this record, in memory and on disk: what the
    /// per-instance cap of the snapshot store is compared with.
    pub fn record_bytes(&self) -> u64 {
        let seats: usize = self
            .seats
            .iter()
            .map(|s| SEAT_FIXED_BYTES + s.name.len() + s.token.len())
            .sum();
        (INSTANCE_FIXED_BYTES + self.id.len() + self.state.len() + seats) as u64
    }

    /// Sets every seat's resume token from `token_of(player)`; seats it
    /// returns `None` for keep an empty token (they cannot resume). Returns
    /// how many seats got one.
    pub fn fill_tokens(&mut self, mut token_of: impl FnMut(PlayerId) -> Option<String>) -> usize {
        let mut filled = 0;
        for seat in &mut self.seats {
            if let Some(token) = token_of(seat.player) {
                seat.token = token;
                filled += 1;
            }
        }
        filled
    }
}

/// Why an [`InstanceSnapshot`] cannot become an [`Instance`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RestoreError {
    #[error("bad instance id {0:?}: {1}")]
    BadId(String, InvalidInstanceId),
    #[error("instance {id}: world state: {reason}")]
    State { id: String, reason: String },
    #[error("instance {id}: {seats} seats, but players_max is {players_max}")]
    TooManySeats {
        id: String,
        seats: usize,
        players_max: usize,
    },
    #[error("instance {id}: player {player} is seated twice")]
    DuplicatePlayer { id: String, player: PlayerId },
    #[error("instance {id}: player {player}'s entity {entity} is not in the world")]
    EntityMissing {
        id: String,
        player: PlayerId,
        entity: EntityId,
    },
    #[error("instance {id}: {failure}")]
    GameFailed { id: String, failure: GameFailure },
}

/// What a full state message carries: tick, bounds, entities.
pub type FullView<'a> = (u64, (f32, f32), &'a [EntityView]);

/// One running game: its world, who sits in it, and their pending inputs.
pub struct Instance {
    id: InstanceId,
    game: Box<dyn Game>,
    /// Sorted by player id, so lookups from the socket path are a binary
    /// search and inputs are applied in the same seat order on every run.
    seats: Vec<Seat>,
    /// Steps done since creation.
    tick: u64,
    limits: InstanceLimits,
    /// The world's entity views, reused every tick so reading them does not
    /// allocate.
    views: Vec<EntityView>,
    /// The world changed since `views` was filled (step, join, leave); the
    /// next [`Instance::entities`] refills it.
    views_stale: bool,
    /// The game panicked in some call: no game code is called again.
    failure: Option<GameFailure>,
    msg_limits: MessageLimits,
    /// What the game emitted this tick; the shard drains it after step.
    outbox: Outbox,
    /// Messages from other instances for the next tick (at most
    /// `instance_inbox_max`).
    inbox: VecDeque<InstanceMail>,
    /// Inputs refused since the shard last read them, per reason (at most
    /// [`REFUSAL_REASONS_MAX`] entries).
    refusals: Vec<(&'static str, u64)>,
}

impl Instance {
    /// An empty instance around a fresh world.
    ///
    /// # Panics
    /// If a limit is zero: configuration must refuse such values first.
    pub fn new(id: InstanceId, game: Box<dyn Game>, limits: InstanceLimits) -> Self {
        assert!(limits.players_max > 0, "players_max must be at least 1");
        assert!(
            limits.inputs_per_tick_max > 0,
            "inputs_per_tick_max must be at least 1"
        );
        Self {
            id,
            game,
            seats: Vec::with_capacity(limits.players_max),
            tick: 0,
            limits,
            views: Vec::with_capacity(limits.players_max),
            views_stale: true,
            failure: None,
            msg_limits: MessageLimits::default(),
            outbox: Outbox::new(MessageLimits::default()),
            inbox: VecDeque::new(),
            refusals: Vec::new(),
        }
    }

    /// Sets the bounds of game messages, events and instance messages
    /// (the shard does this right after creating or restoring).
    pub fn set_message_limits(&mut self, limits: MessageLimits) {
        self.msg_limits = limits;
        self.outbox.set_limits(limits);
    }

    pub fn message_limits(&self) -> MessageLimits {
        self.msg_limits
    }

    /// What the game emitted (events, instance messages) since the shard
    /// last drained it.
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// Inputs refused since the last call, per reason.
    pub fn take_refusals(&mut self) -> std::vec::Drain<'_, (&'static str, u64)> {
        self.refusals.drain(..)
    }

    /// Queues a message from another instance for the next tick; `false`
    /// when the inbox is full (the message is dropped) or too large.
    pub fn deliver(&mut self, mail: InstanceMail) -> bool {
        if self.inbox.len() >= self.msg_limits.instance_inbox_max
            || mail.body.len() > self.msg_limits.message_bytes_max
        {
            return false;
        }
        self.inbox.push_back(mail);
        true
    }

    /// A fresh instance from `factory` ([`GameFactory::create`], guarded).
    pub fn create(
        factory: &dyn GameFactory,
        id: InstanceId,
        limits: InstanceLimits,
    ) -> Result<Self, GameFailure> {
        let game = guarded("create", || factory.create(&id))?;
        Ok(Self::new(id, game, limits))
    }

    /// Why the game failed, once it has: the instance must be disposed.
    pub fn failure(&self) -> Option<&GameFailure> {
        self.failure.as_ref()
    }

    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Runs `f` on the game unless it failed before; a panic marks the
    /// instance failed.
    fn call<T>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&mut dyn Game) -> T,
    ) -> Result<T, GameFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let game = self.game.as_mut();
        match guarded(call, || f(game)) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.failure = Some(e.clone());
                Err(e)
            }
        }
    }

    /// `Game::on_join`, guarded like [`Self::call`], with the outbox.
    fn hook_on_join(
        &mut self,
        player: PlayerId,
        info: &JoinInfo<'_>,
    ) -> Result<Result<(), Refusal>, GameFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let (game, outbox) = (self.game.as_mut(), &mut self.outbox);
        guarded("on_join", || game.on_join(player, info, outbox)).inspect_err(|e| {
            self.failure = Some(e.clone());
        })
    }

    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// Number of steps done.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    pub fn limits(&self) -> InstanceLimits {
        self.limits
    }

    /// Seated players.
    pub fn players(&self) -> usize {
        self.seats.len()
    }

    pub fn has_room(&self) -> bool {
        self.seats.len() < self.limits.players_max
    }

    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    fn seat_index(&self, player: PlayerId) -> Result<usize, usize> {
        self.seats.binary_search_by_key(&player, |s| s.player)
    }

    /// Seats the player and spawns its entity now (the shard sends Joined
    /// right after), for a player nobody vouched for (no ticket claims).
    pub fn join(&mut self, player: PlayerId, name: &str) -> Result<&Seat, JoinError> {
        self.join_with(player, name, &Arc::new(Claims::default()))
    }

    /// Seats the player if the game accepts it (`Game::on_join` with its
    /// ticket's `claims`), then spawns its entity.
    pub fn join_with(
        &mut self,
        player: PlayerId,
        name: &str,
        claims: &Arc<Claims>,
    ) -> Result<&Seat, JoinError> {
        let Err(at) = self.seat_index(player) else {
            return Err(JoinError::AlreadySeated);
        };
        if !self.has_room() {
            return Err(JoinError::Full(self.id.clone(), self.limits.players_max));
        }
        let info = JoinInfo {
            name,
            claims,
            resumed: false,
        };
        self.hook_on_join(player, &info)?
            .map_err(JoinError::Refused)?;
        let entity = self.call("spawn", |g| g.spawn(player))?;
        let seat = Seat {
            player,
            entity,
            name: name.to_owned(),
            queue: VecDeque::with_capacity(
                self.limits.inputs_per_tick_max + self.msg_limits.messages_per_tick_max,
            ),
            inputs_queued: 0,
            messages_queued: 0,
            seq_seen_max: None,
            last_input_seq: 0,
            inputs_applied: 0,
        };
        self.seats.insert(at, seat);
        self.views_stale = true;
        Ok(&self.seats[at])
    }

    /// A seated player came back (`Game::on_join` with `resumed`): `Err`
    /// when the game refuses it (the caller then removes the seat with
    /// [`LeaveCause::Kicked`]) or fails.
    pub fn rejoin(&mut self, player: PlayerId, claims: &Arc<Claims>) -> Result<(), JoinError> {
        let Ok(at) = self.seat_index(player) else {
            return Ok(());
        };
        let name = self.seats[at].name.clone();
        let info = JoinInfo {
            name: &name,
            claims,
            resumed: true,
        };
        self.hook_on_join(player, &info)?
            .map_err(JoinError::Refused)
    }

    /// Removes the seat and despawns the entity; returns the seat. Inputs
    /// still queued are discarded with it. A panic in `despawn` still
    /// removes the seat, and marks the instance failed ([`Self::failed`]).
    pub fn leave(&mut self, player: PlayerId) -> Option<Seat> {
        self.leave_with(player, LeaveCause::Left)
    }

    /// [`Self::leave`], telling the game why (`Game::on_leave`, before the
    /// despawn).
    pub fn leave_with(&mut self, player: PlayerId, cause: LeaveCause) -> Option<Seat> {
        let at = self.seat_index(player).ok()?;
        let seat = self.seats.remove(at);
        let entity = seat.entity;
        let outbox = &mut self.outbox;
        if self.failure.is_none() {
            let game = self.game.as_mut();
            if let Err(e) = guarded("on_leave", || game.on_leave(player, entity, cause, outbox)) {
                self.failure = Some(e);
            }
        }
        let _ = self.call("despawn", |g| g.despawn(entity));
        self.views_stale = true;
        Some(seat)
    }

    pub fn seat(&self, player: PlayerId) -> Option<&Seat> {
        self.seat_index(player).ok().map(|i| &self.seats[i])
    }

    /// Seats in player id order.
    pub fn seats(&self) -> impl Iterator<Item = &Seat> {
        self.seats.iter()
    }

    /// Queues an input for the next tick (the socket task calls this; the
    /// world is not touched).
    pub fn push_input(&mut self, player: PlayerId, input: PlayerInput) -> PushInput {
        let Ok(at) = self.seat_index(player) else {
            return PushInput::NotSeated;
        };
        let seat = &mut self.seats[at];
        // Stale before full: a duplicate is reported as such even when the
        // queue is also full.
        if seat.seq_seen_max.is_some_and(|max| input.seq <= max) {
            return PushInput::DroppedStale;
        }
        if seat.inputs_queued >= self.limits.inputs_per_tick_max {
            // Not recorded as seen: the client may send this seq again.
            return PushInput::DroppedFull;
        }
        seat.queue.push_back(Action::Input(input));
        seat.inputs_queued += 1;
        seat.seq_seen_max = Some(input.seq);
        PushInput::Queued
    }

    /// Queues a game message for the next tick, after whatever the player
    /// queued before it.
    pub fn push_message(&mut self, player: PlayerId, kind: u16, body: &[u8]) -> PushMessage {
        let Ok(at) = self.seat_index(player) else {
            return PushMessage::NotSeated;
        };
        if body.len() > self.msg_limits.message_bytes_max {
            return PushMessage::TooLarge;
        }
        let seat = &mut self.seats[at];
        if seat.messages_queued >= self.msg_limits.messages_per_tick_max {
            return PushMessage::DroppedFull;
        }
        seat.queue.push_back(Action::Message {
            kind,
            body: body.into(),
        });
        seat.messages_queued += 1;
        PushMessage::Queued
    }

    /// One fixed step: for every seat apply its queued inputs in order
    /// (updating `last_input_seq`, `inputs_applied`), then `game.step(dt_s)`,
    /// tick += 1. A panic in the game's code fails the instance.
    pub fn step(&mut self, dt_s: f32) -> Result<TickReport, GameFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let mut report = TickReport::default();
        let (seats, game, outbox, inbox, refusals) = (
            &mut self.seats,
            self.game.as_mut(),
            &mut self.outbox,
            &mut self.inbox,
            &mut self.refusals,
        );
        let mail = guarded("on_instance_message", || {
            while let Some(mail) = inbox.pop_front() {
                game.on_instance_message(&mail, outbox);
                report.instance_messages_applied += 1;
            }
        });
        if let Err(e) = mail {
            self.failure = Some(e.clone());
            return Err(e);
        }
        let applied = guarded("apply_input", || {
            for seat in seats.iter_mut() {
                // Bounded: the queue never holds more than inputs_per_tick_max
                // inputs and messages_per_tick_max messages.
                while let Some(action) = seat.queue.pop_front() {
                    match action {
                        Action::Input(input) => {
                            seat.inputs_queued -= 1;
                            seat.last_input_seq = input.seq;
                            if let Err(reason) = game.validate_input(seat.entity, &input) {
                                count_refusal(refusals, reason);
                                report.inputs_refused += 1;
                                continue;
                            }
                            game.apply_input(seat.entity, &input);
                            seat.inputs_applied = seat.inputs_applied.saturating_add(1);
                            report.inputs_applied += 1;
                        }
                        Action::Message { kind, body } => {
                            seat.messages_queued -= 1;
                            game.on_message(seat.player, seat.entity, kind, &body, outbox);
                            report.messages_applied += 1;
                        }
                    }
                }
            }
        });
        if let Err(e) = applied {
            self.failure = Some(e.clone());
            return Err(e);
        }
        self.call("step", |g| g.step(dt_s))?;
        let outbox = &mut self.outbox;
        if self.failure.is_none() {
            let game = self.game.as_mut();
            if let Err(e) = guarded("after_step", || game.after_step(outbox)) {
                self.failure = Some(e.clone());
                return Err(e);
            }
        }
        self.tick += 1;
        self.views_stale = true;
        Ok(report)
    }

    /// Current entity views (refreshed after step and join/leave; borrowed
    /// slice, no allocation per call once the buffer has grown to the
    /// world's size). Empty once the game has failed.
    pub fn entities(&mut self) -> &[EntityView] {
        if self.views_stale && self.failure.is_none() {
            let mut views = std::mem::take(&mut self.views);
            views.clear();
            if self.call("entities", |g| g.entities(&mut views)).is_err() {
                views.clear();
            }
            self.views = views;
            self.views_stale = false;
        }
        &self.views
    }

    /// (width, height) of the world in game units ((0, 0) once failed).
    pub fn bounds(&mut self) -> (f32, f32) {
        self.call("bounds", |g| g.bounds()).unwrap_or((0.0, 0.0))
    }

    /// The game's interest settings ([`Game::interest`]), sanitized;
    /// `defaults` once the game has failed.
    pub fn interest(&mut self, defaults: Interest) -> Interest {
        self.call("interest", |g| g.interest(defaults))
            .unwrap_or(defaults)
            .sanitized()
    }

    /// Appends the game's own state beyond entities to `out`.
    pub fn custom_state(&mut self, out: &mut Vec<u8>) -> Result<(), GameFailure> {
        self.call("custom_state", |g| g.custom_state(out))
    }

    /// Everything a full state message carries: tick, bounds, entities, and
    /// the custom state appended to `custom`. Errs when the game fails in
    /// any of those calls.
    pub fn view(&mut self, custom: &mut Vec<u8>) -> Result<FullView<'_>, GameFailure> {
        let bounds = self.call("bounds", |g| g.bounds())?;
        self.call("custom_state", |g| g.custom_state(custom))?;
        self.entities();
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        Ok((self.tick, bounds, &self.views))
    }

    /// The world's own estimate of its memory ([`Game::state_bytes`]; 0
    /// once failed).
    pub fn state_bytes(&mut self) -> usize {
        self.call("state_bytes", |g| g.state_bytes()).unwrap_or(0)
    }

    /// Captures the instance for a snapshot: id, tick, the world
    /// ([`Game::save`]) and every seat. Seat tokens are left empty for the
    /// shard to fill ([`InstanceSnapshot::fill_tokens`]); queued inputs are
    /// not kept (see the module doc).
    ///
    /// Runs on the shard's thread between ticks; it costs one copy of the
    /// world and the seat table.
    pub fn save(&mut self) -> Result<InstanceSnapshot, GameFailure> {
        let capacity = self.call("state_bytes", |g| g.state_bytes())?;
        let mut state = Vec::with_capacity(capacity);
        self.call("save", |g| g.save(&mut state))?;
        let mut views = Vec::with_capacity(self.views.capacity());
        self.call("entities", |g| g.entities(&mut views))?;
        Ok(InstanceSnapshot {
            id: self.id.as_str().to_owned(),
            tick: self.tick,
            state,
            entities: u32::try_from(views.len()).unwrap_or(u32::MAX),
            seats: self
                .seats
                .iter()
                .map(|s| SeatSnapshot {
                    player: s.player,
                    entity: s.entity,
                    name: s.name.clone(),
                    token: String::new(),
                    last_input_seq: s.last_input_seq,
                    inputs_applied: s.inputs_applied,
                })
                .collect(),
        })
    }

    /// Rebuilds a saved instance around `game`, the world restored from
    /// `snap.state` ([`GameFactory::restore`]).
    ///
    /// Seats come back with their entities, names and counters; nothing is
    /// spawned (the world already holds the entities). Tick counting goes on
    /// from the saved tick. A seat that had inputs applied treats seqs up to
    /// `last_input_seq` as stale, so an input the world has seen is never
    /// applied twice; one that had none accepts any first seq, as after a
    /// join. Tokens stay in `snap` for the shard.
    ///
    /// Errs, without panicking, when the snapshot does not fit: a bad id,
    /// more seats than `limits.players_max` (the limit was lowered since),
    /// a player seated twice, or a seat whose entity the world lacks.
    ///
    /// # Panics
    /// If a limit is zero, as [`Instance::new`].
    pub fn restore(
        snap: &InstanceSnapshot,
        game: Box<dyn Game>,
        limits: InstanceLimits,
    ) -> Result<Self, RestoreError> {
        let id =
            InstanceId::parse(&snap.id).map_err(|e| RestoreError::BadId(snap.id.clone(), e))?;
        let mut inst = Instance::new(id, game, limits);
        if snap.seats.len() > limits.players_max {
            return Err(RestoreError::TooManySeats {
                id: snap.id.clone(),
                seats: snap.seats.len(),
                players_max: limits.players_max,
            });
        }
        let mut entities: Vec<EntityId> = inst.entities().iter().map(|v| v.id).collect();
        if let Some(failure) = inst.failure().cloned() {
            return Err(RestoreError::GameFailed {
                id: snap.id.clone(),
                failure,
            });
        }
        entities.sort_unstable();
        for s in &snap.seats {
            let Err(at) = inst.seat_index(s.player) else {
                return Err(RestoreError::DuplicatePlayer {
                    id: snap.id.clone(),
                    player: s.player,
                });
            };
            if entities.binary_search(&s.entity).is_err() {
                return Err(RestoreError::EntityMissing {
                    id: snap.id.clone(),
                    player: s.player,
                    entity: s.entity,
                });
            }
            let seat = Seat {
                player: s.player,
                entity: s.entity,
                name: s.name.clone(),
                queue: VecDeque::with_capacity(
                    limits.inputs_per_tick_max + inst.msg_limits.messages_per_tick_max,
                ),
                inputs_queued: 0,
                messages_queued: 0,
                seq_seen_max: (s.inputs_applied > 0).then_some(s.last_input_seq),
                last_input_seq: s.last_input_seq,
                inputs_applied: s.inputs_applied,
            };
            inst.seats.insert(at, seat);
        }
        inst.tick = snap.tick;
        Ok(inst)
    }

    /// [`Instance::restore`] with the world made by `factory` from
    /// `snap.state`: the one call a shard makes per restored instance.
    pub fn restore_with(
        factory: &dyn GameFactory,
        snap: &InstanceSnapshot,
        limits: InstanceLimits,
    ) -> Result<Self, RestoreError> {
        let id =
            InstanceId::parse(&snap.id).map_err(|e| RestoreError::BadId(snap.id.clone(), e))?;
        let game = guarded("restore", || factory.restore(&id, &snap.state))
            .map_err(|failure| RestoreError::GameFailed {
                id: snap.id.clone(),
                failure,
            })?
            .map_err(|reason| RestoreError::State {
                id: snap.id.clone(),
                reason,
            })?;
        Self::restore(snap, game, limits)
    }
}

/// Adds one refusal of `reason` (bounded: see [`REFUSAL_REASONS_MAX`]).
fn count_refusal(refusals: &mut Vec<(&'static str, u64)>, reason: &'static str) {
    if let Some(r) = refusals.iter_mut().find(|r| r.0 == reason) {
        r.1 += 1;
        return;
    }
    let reason = if refusals.len() + 1 >= REFUSAL_REASONS_MAX {
        "other"
    } else {
        reason
    };
    match refusals.iter_mut().find(|r| r.0 == reason) {
        Some(r) => r.1 += 1,
        None => refusals.push((reason, 1)),
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("tick", &self.tick)
            .field("players", &self.seats.len())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::game::arena::{ArenaFactory, PLAYER_SPEED_PER_S};
    use crate::game::rules::GameFactory;

    const DT_S: f32 = 1.0 / 60.0;

    /// Everything the instance asked of a [`Recorder`] world, in order.
    #[derive(Debug, Clone, PartialEq)]
    enum Call {
        Spawn(PlayerId, EntityId),
        Despawn(EntityId),
        Input(EntityId, u32),
        Step,
    }

    /// A world that only records how it was driven; ids are `player + 100`.
    #[derive(Default)]
    struct Recorder {
        calls: Rc<RefCell<Vec<Call>>>,
        alive: Vec<EntityId>,
    }

    impl Game for Recorder {
        fn spawn(&mut self, player: PlayerId) -> EntityId {
            let e = player as EntityId + 100;
            self.calls.borrow_mut().push(Call::Spawn(player, e));
            self.alive.push(e);
            e
        }
        fn despawn(&mut self, entity: EntityId) {
            self.calls.borrow_mut().push(Call::Despawn(entity));
            self.alive.retain(|&e| e != entity);
        }
        fn apply_input(&mut self, entity: EntityId, input: &PlayerInput) {
            self.calls.borrow_mut().push(Call::Input(entity, input.seq));
        }
        fn step(&mut self, _dt_s: f32) {
            self.calls.borrow_mut().push(Call::Step);
        }
        fn entities(&self, out: &mut Vec<EntityView>) {
            out.extend(self.alive.iter().map(|&id| EntityView {
                id,
                ..Default::default()
            }));
        }
        fn bounds(&self) -> (f32, f32) {
            (1.0, 2.0)
        }
        fn custom_state(&self, out: &mut Vec<u8>) {
            out.push(42);
        }
        fn state_bytes(&self) -> usize {
            0
        }
        fn save(&self, out: &mut Vec<u8>) {
            out.extend(self.alive.iter().flat_map(|e| e.to_le_bytes()));
        }
    }

    /// Restores a [`Recorder`] saved by its `save` (entity ids, 4 bytes
    /// each), with a fresh call log.
    fn recorder_from(bytes: &[u8]) -> (Box<dyn Game>, Rc<RefCell<Vec<Call>>>) {
        let world = Recorder {
            alive: bytes
                .chunks_exact(4)
                .map(|c| EntityId::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            ..Default::default()
        };
        let calls = world.calls.clone();
        (Box::new(world), calls)
    }

    fn recorded(
        players_max: usize,
        inputs_per_tick_max: usize,
    ) -> (Instance, Rc<RefCell<Vec<Call>>>) {
        let world = Recorder::default();
        let calls = world.calls.clone();
        let limits = InstanceLimits {
            players_max,
            inputs_per_tick_max,
        };
        let id = InstanceId::parse("test").unwrap();
        (Instance::new(id, Box::new(world), limits), calls)
    }

    fn input(seq: u32) -> PlayerInput {
        PlayerInput {
            seq,
            move_x: 1.0,
            ..Default::default()
        }
    }

    #[test]
    fn full_instance_refuses() {
        let (mut inst, _) = recorded(2, 4);
        assert!(inst.has_room() && inst.is_empty());
        inst.join(1, "a").unwrap();
        inst.join(2, "b").unwrap();
        assert!(!inst.has_room());
        assert_eq!(
            inst.join(3, "c").unwrap_err(),
            JoinError::Full(InstanceId::parse("test").unwrap(), 2)
        );
        assert_eq!(inst.players(), 2);
        assert!(inst.seat(3).is_none());
    }

    #[test]
    fn already_seated_refuses() {
        let (mut inst, calls) = recorded(2, 4);
        let seat = inst.join(1, "a").unwrap();
        assert_eq!(
            (seat.player, seat.entity, seat.name.as_str()),
            (1, 101, "a")
        );
        assert_eq!(inst.join(1, "again").unwrap_err(), JoinError::AlreadySeated);
        // Also when full: the more precise reason wins.
        inst.join(2, "b").unwrap();
        assert_eq!(inst.join(2, "b").unwrap_err(), JoinError::AlreadySeated);
        assert_eq!(inst.players(), 2);
        assert_eq!(inst.seat(1).unwrap().name, "a");
        assert_eq!(*calls.borrow(), [Call::Spawn(1, 101), Call::Spawn(2, 102)]);
    }

    #[test]
    fn inputs_applied_in_order() {
        let (mut inst, calls) = recorded(4, 8);
        inst.join(1, "a").unwrap();
        for seq in [3, 5, 9] {
            assert_eq!(inst.push_input(1, input(seq)), PushInput::Queued);
        }
        assert_eq!(inst.seat(1).unwrap().inputs_queued(), 3);
        let report = inst.step(DT_S).unwrap();
        assert_eq!(report.inputs_applied, 3);
        assert_eq!(
            calls.borrow()[1..],
            [
                Call::Input(101, 3),
                Call::Input(101, 5),
                Call::Input(101, 9),
                Call::Step
            ]
        );
        let seat = inst.seat(1).unwrap();
        assert_eq!((seat.last_input_seq, seat.inputs_applied), (9, 3));
        assert_eq!(seat.inputs_queued(), 0);
    }

    #[test]
    fn excess_inputs_are_dropped_and_reported() {
        let (mut inst, _) = recorded(4, 2);
        inst.join(1, "a").unwrap();
        assert_eq!(inst.push_input(1, input(1)), PushInput::Queued);
        assert_eq!(inst.push_input(1, input(2)), PushInput::Queued);
        assert_eq!(inst.push_input(1, input(3)), PushInput::DroppedFull);
        assert_eq!(inst.step(DT_S).unwrap().inputs_applied, 2);
        assert_eq!(inst.seat(1).unwrap().last_input_seq, 2);
        // The dropped seq was not recorded as seen, and the queue has room
        // again after the tick.
        assert_eq!(inst.push_input(1, input(3)), PushInput::Queued);
        assert_eq!(inst.step(DT_S).unwrap().inputs_applied, 1);
        assert_eq!(inst.seat(1).unwrap().inputs_applied, 3);
    }

    #[test]
    fn stale_and_duplicate_inputs_are_dropped() {
        let (mut inst, calls) = recorded(4, 8);
        inst.join(1, "a").unwrap();
        // seq 0 is a valid first input.
        assert_eq!(inst.push_input(1, input(0)), PushInput::Queued);
        assert_eq!(inst.push_input(1, input(5)), PushInput::Queued);
        assert_eq!(inst.push_input(1, input(5)), PushInput::DroppedStale);
        assert_eq!(inst.push_input(1, input(4)), PushInput::DroppedStale);
        inst.step(DT_S).unwrap();
        // Already applied seqs stay stale on later ticks.
        assert_eq!(inst.push_input(1, input(5)), PushInput::DroppedStale);
        assert_eq!(inst.push_input(1, input(6)), PushInput::Queued);
        inst.step(DT_S).unwrap();
        let applied: Vec<_> = calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::Input(_, seq) => Some(*seq),
                _ => None,
            })
            .collect();
        assert_eq!(applied, [0, 5, 6]);
    }

    #[test]
    fn stale_wins_over_full() {
        let (mut inst, _) = recorded(4, 1);
        inst.join(1, "a").unwrap();
        assert_eq!(inst.push_input(1, input(1)), PushInput::Queued);
        assert_eq!(inst.push_input(1, input(1)), PushInput::DroppedStale);
        assert_eq!(inst.push_input(1, input(2)), PushInput::DroppedFull);
    }

    #[test]
    fn unseated_player_input_is_refused() {
        let (mut inst, calls) = recorded(4, 8);
        assert_eq!(inst.push_input(1, input(1)), PushInput::NotSeated);
        inst.join(1, "a").unwrap();
        inst.leave(1).unwrap();
        assert_eq!(inst.push_input(1, input(2)), PushInput::NotSeated);
        assert_eq!(inst.step(DT_S).unwrap().inputs_applied, 0);
        assert!(!calls.borrow().iter().any(|c| matches!(c, Call::Input(..))));
    }

    #[test]
    fn leave_despawns_and_frees_a_seat() {
        let (mut inst, calls) = recorded(1, 8);
        inst.join(1, "a").unwrap();
        assert_eq!(inst.push_input(1, input(1)), PushInput::Queued);
        assert_eq!(inst.entities().len(), 1);
        let seat = inst.leave(1).unwrap();
        assert_eq!((seat.player, seat.entity), (1, 101));
        assert_eq!(*calls.borrow().last().unwrap(), Call::Despawn(101));
        assert!(inst.is_empty() && inst.has_room());
        assert!(inst.entities().is_empty());
        assert!(inst.leave(1).is_none());
        // The freed seat takes a new player; the old one's queued input is
        // gone with its seat.
        inst.join(2, "b").unwrap();
        assert_eq!(inst.step(DT_S).unwrap().inputs_applied, 0);
    }

    #[test]
    fn step_applies_inputs_before_stepping_and_counts_ticks() {
        let (mut inst, calls) = recorded(4, 8);
        inst.join(2, "b").unwrap();
        inst.join(1, "a").unwrap();
        assert_eq!(inst.tick(), 0);
        inst.push_input(2, input(7));
        inst.push_input(1, input(4));
        inst.step(DT_S).unwrap();
        assert_eq!(inst.tick(), 1);
        // Seats in player id order, every input before the one step.
        assert_eq!(
            calls.borrow()[2..],
            [Call::Input(101, 4), Call::Input(102, 7), Call::Step]
        );
        inst.step(DT_S).unwrap();
        assert_eq!(inst.tick(), 2);
        assert_eq!(*calls.borrow().last().unwrap(), Call::Step);
        let players: Vec<_> = inst.seats().map(|s| s.player).collect();
        assert_eq!(players, [1, 2]);
    }

    #[test]
    fn input_moves_the_arena_entity_in_the_same_tick() {
        let id = InstanceId::parse("arena-1").unwrap();
        let limits = InstanceLimits {
            players_max: 2,
            inputs_per_tick_max: 4,
        };
        let mut inst = Instance::new(id.clone(), ArenaFactory.create(&id), limits);
        let entity = inst.join(1, "a").unwrap().entity;
        let before = inst.entities()[0];
        assert_eq!(before.id, entity);
        inst.push_input(1, input(1));
        // Queued only: the world has not moved yet.
        assert_eq!(inst.entities()[0], before);
        inst.step(DT_S).unwrap();
        let after = inst.entities()[0];
        assert!((after.x - before.x - PLAYER_SPEED_PER_S * DT_S).abs() < 1e-3);
    }

    #[test]
    fn delegates_to_the_world() {
        let (mut inst, _) = recorded(4, 8);
        assert_eq!(inst.bounds(), (1.0, 2.0));
        let mut out = vec![1];
        inst.custom_state(&mut out).unwrap();
        assert_eq!(out, [1, 42]);
        assert_eq!(inst.state_bytes(), 0);
        assert_eq!(inst.id().as_str(), "test");
        inst.join(5, "e").unwrap();
        assert_eq!(inst.entities()[0].id, 105);
    }

    const LIMITS: InstanceLimits = InstanceLimits {
        players_max: 4,
        inputs_per_tick_max: 8,
    };

    #[test]
    fn save_captures_seats_tick_and_world() {
        let (mut inst, _) = recorded(4, 8);
        inst.join(2, "bo").unwrap();
        inst.join(1, "ada").unwrap();
        inst.push_input(1, input(5));
        inst.step(DT_S).unwrap();
        inst.push_input(1, input(6)); // queued, not applied: not saved
        let snap = inst.save().unwrap();
        assert_eq!((snap.id.as_str(), snap.tick, snap.entities), ("test", 1, 2));
        assert_eq!(snap.state, [102, 0, 0, 0, 101, 0, 0, 0]);
        let seats: Vec<_> = snap
            .seats
            .iter()
            .map(|s| (s.player, s.entity, s.name.as_str(), s.token.as_str()))
            .collect();
        assert_eq!(seats, [(1, 101, "ada", ""), (2, 102, "bo", "")]);
        assert_eq!(
            (snap.seats[0].last_input_seq, snap.seats[0].inputs_applied),
            (5, 1)
        );
        assert_eq!(
            (snap.seats[1].last_input_seq, snap.seats[1].inputs_applied),
            (0, 0)
        );
        assert!(snap.record_bytes() >= (snap.state.len() + "test".len() + 5) as u64);
    }

    #[test]
    fn fill_tokens_sets_the_shards_tokens() {
        let (mut inst, _) = recorded(4, 8);
        inst.join(1, "a").unwrap();
        inst.join(2, "b").unwrap();
        let mut snap = inst.save().unwrap();
        let before = snap.record_bytes();
        let filled = snap.fill_tokens(|p| (p == 2).then(|| "tok-2".to_owned()));
        assert_eq!(filled, 1);
        assert_eq!(
            (snap.seats[0].token.as_str(), snap.seats[1].token.as_str()),
            ("", "tok-2")
        );
        assert_eq!(snap.record_bytes(), before + 5);
    }

    #[test]
    fn restore_keeps_seats_entities_tick_and_stale_rule() {
        let (mut inst, _) = recorded(4, 8);
        inst.join(1, "a").unwrap();
        inst.join(2, "b").unwrap();
        inst.join(3, "c").unwrap();
        inst.push_input(1, input(7));
        inst.push_input(2, input(0));
        for _ in 0..3 {
            inst.step(DT_S).unwrap();
        }
        let snap = inst.save().unwrap();
        let (world, calls) = recorder_from(&snap.state);
        let mut back = Instance::restore(&snap, world, LIMITS).unwrap();
        assert!(calls.borrow().is_empty(), "restore spawns nothing");
        assert_eq!(
            (back.id().as_str(), back.tick(), back.players()),
            ("test", 3, 3)
        );
        let ids: Vec<_> = back.entities().iter().map(|v| v.id).collect();
        assert_eq!(ids, [101, 102, 103]);
        for (a, b) in inst.seats().zip(back.seats()) {
            assert_eq!(a, b, "seat restored whole");
        }
        // Seqs already applied stay stale; newer ones are taken.
        assert_eq!(back.push_input(1, input(7)), PushInput::DroppedStale);
        assert_eq!(back.push_input(1, input(8)), PushInput::Queued);
        assert_eq!(back.push_input(2, input(0)), PushInput::DroppedStale);
        // A seat that never had an input accepts any first seq, 0 included.
        assert_eq!(back.push_input(3, input(0)), PushInput::Queued);
        back.step(DT_S).unwrap();
        assert_eq!(back.tick(), 4);
        assert_eq!(
            *calls.borrow(),
            [Call::Input(101, 8), Call::Input(103, 0), Call::Step]
        );
        // Leaving despawns the restored entity; a new join spawns as usual.
        back.leave(2).unwrap();
        back.join(9, "new").unwrap();
        assert_eq!(
            calls.borrow()[3..],
            [Call::Despawn(102), Call::Spawn(9, 109)]
        );
    }

    #[test]
    fn restore_refuses_snapshots_that_do_not_fit() {
        let (mut inst, _) = recorded(4, 8);
        inst.join(1, "a").unwrap();
        inst.join(2, "b").unwrap();
        let snap = inst.save().unwrap();
        let world = || recorder_from(&snap.state).0;

        let small = InstanceLimits {
            players_max: 1,
            ..LIMITS
        };
        let err = Instance::restore(&snap, world(), small).unwrap_err();
        assert!(matches!(
            err,
            RestoreError::TooManySeats {
                seats: 2,
                players_max: 1,
                ..
            }
        ));

        let mut twice = snap.clone();
        twice.seats[1].player = 1;
        let err = Instance::restore(&twice, world(), LIMITS).unwrap_err();
        assert!(matches!(
            err,
            RestoreError::DuplicatePlayer { player: 1, .. }
        ));

        let mut lost = snap.clone();
        lost.seats[1].entity = 999;
        let err = Instance::restore(&lost, world(), LIMITS).unwrap_err();
        assert!(matches!(
            err,
            RestoreError::EntityMissing { entity: 999, .. }
        ));
        assert!(err.to_string().contains("entity 999"), "{err}");

        let mut bad_id = snap.clone();
        bad_id.id = "no/slash".into();
        let err = Instance::restore(&bad_id, world(), LIMITS).unwrap_err();
        assert!(matches!(err, RestoreError::BadId(..)));
    }

    #[test]
    fn arena_instance_round_trips_through_the_factory() {
        let id = InstanceId::parse("arena-1").unwrap();
        let mut inst = Instance::new(id.clone(), ArenaFactory.create(&id), LIMITS);
        inst.join(1, "a").unwrap();
        inst.join(2, "b").unwrap();
        inst.push_input(2, input(1));
        inst.step(DT_S).unwrap();
        let snap = inst.save().unwrap();
        assert_eq!(snap.entities, 2);
        let mut back = Instance::restore_with(&ArenaFactory, &snap, LIMITS).unwrap();
        assert_eq!(back.entities(), inst.entities());
        inst.step(DT_S).unwrap();
        back.step(DT_S).unwrap();
        assert_eq!(back.entities(), inst.entities(), "both go on identically");

        let mut bad = snap.clone();
        bad.state.truncate(bad.state.len() / 2);
        let err = Instance::restore_with(&ArenaFactory, &bad, LIMITS).unwrap_err();
        assert!(matches!(err, RestoreError::State { .. }), "{err}");
        bad.state = b"garbage bytes, not a world".to_vec();
        assert!(Instance::restore_with(&ArenaFactory, &bad, LIMITS).is_err());
    }

    #[test]
    #[should_panic(expected = "players_max")]
    fn zero_players_max_is_a_programmer_error() {
        recorded(0, 1);
    }
}
