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

use std::collections::VecDeque;

use super::rules::Game;
use super::types::{EntityId, EntityView, InstanceId, PlayerId, PlayerInput};

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
    /// Inputs waiting for the next tick, in seq order; capacity
    /// `inputs_per_tick_max`, allocated at join and never grown.
    queue: VecDeque<PlayerInput>,
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
        self.queue.len()
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

/// What one tick did, for the shard's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TickReport {
    /// Inputs applied to the world in this tick, over all seats.
    pub inputs_applied: u32,
}

/// Why a player could not be seated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JoinError {
    #[error("instance {0} is full ({1} players)")]
    Full(InstanceId, usize),
    #[error("player already seated")]
    AlreadySeated,
}

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
        }
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
    /// right after).
    pub fn join(&mut self, player: PlayerId, name: &str) -> Result<&Seat, JoinError> {
        let Err(at) = self.seat_index(player) else {
            return Err(JoinError::AlreadySeated);
        };
        if !self.has_room() {
            return Err(JoinError::Full(self.id.clone(), self.limits.players_max));
        }
        let entity = self.game.spawn(player);
        let seat = Seat {
            player,
            entity,
            name: name.to_owned(),
            queue: VecDeque::with_capacity(self.limits.inputs_per_tick_max),
            seq_seen_max: None,
            last_input_seq: 0,
            inputs_applied: 0,
        };
        self.seats.insert(at, seat);
        self.views_stale = true;
        Ok(&self.seats[at])
    }

    /// Removes the seat and despawns the entity; returns the seat. Inputs
    /// still queued are discarded with it.
    pub fn leave(&mut self, player: PlayerId) -> Option<Seat> {
        let at = self.seat_index(player).ok()?;
        let seat = self.seats.remove(at);
        self.game.despawn(seat.entity);
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
        if seat.queue.len() >= self.limits.inputs_per_tick_max {
            // Not recorded as seen: the client may send this seq again.
            return PushInput::DroppedFull;
        }
        seat.queue.push_back(input);
        seat.seq_seen_max = Some(input.seq);
        PushInput::Queued
    }

    /// One fixed step: for every seat apply its queued inputs in order
    /// (updating `last_input_seq`, `inputs_applied`), then `game.step(dt_s)`,
    /// tick += 1.
    pub fn step(&mut self, dt_s: f32) -> TickReport {
        let mut report = TickReport::default();
        for seat in &mut self.seats {
            // Bounded: the queue never holds more than inputs_per_tick_max.
            while let Some(input) = seat.queue.pop_front() {
                self.game.apply_input(seat.entity, &input);
                seat.last_input_seq = input.seq;
                seat.inputs_applied = seat.inputs_applied.saturating_add(1);
                report.inputs_applied += 1;
            }
        }
        self.game.step(dt_s);
        self.tick += 1;
        self.views_stale = true;
        report
    }

    /// Current entity views (refreshed after step and join/leave; borrowed
    /// slice, no allocation per call once the buffer has grown to the
    /// world's size).
    pub fn entities(&mut self) -> &[EntityView] {
        if self.views_stale {
            self.views.clear();
            self.game.entities(&mut self.views);
            self.views_stale = false;
        }
        &self.views
    }

    /// (width, height) of the world in game units.
    pub fn bounds(&self) -> (f32, f32) {
        self.game.bounds()
    }

    /// Appends the game's own state beyond entities to `out`.
    pub fn custom_state(&self, out: &mut Vec<u8>) {
        self.game.custom_state(out);
    }

    pub fn game(&self) -> &dyn Game {
        self.game.as_ref()
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
        let report = inst.step(DT_S);
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
        assert_eq!(inst.step(DT_S).inputs_applied, 2);
        assert_eq!(inst.seat(1).unwrap().last_input_seq, 2);
        // The dropped seq was not recorded as seen, and the queue has room
        // again after the tick.
        assert_eq!(inst.push_input(1, input(3)), PushInput::Queued);
        assert_eq!(inst.step(DT_S).inputs_applied, 1);
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
        inst.step(DT_S);
        // Already applied seqs stay stale on later ticks.
        assert_eq!(inst.push_input(1, input(5)), PushInput::DroppedStale);
        assert_eq!(inst.push_input(1, input(6)), PushInput::Queued);
        inst.step(DT_S);
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
        assert_eq!(inst.step(DT_S).inputs_applied, 0);
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
        assert_eq!(inst.step(DT_S).inputs_applied, 0);
    }

    #[test]
    fn step_applies_inputs_before_stepping_and_counts_ticks() {
        let (mut inst, calls) = recorded(4, 8);
        inst.join(2, "b").unwrap();
        inst.join(1, "a").unwrap();
        assert_eq!(inst.tick(), 0);
        inst.push_input(2, input(7));
        inst.push_input(1, input(4));
        inst.step(DT_S);
        assert_eq!(inst.tick(), 1);
        // Seats in player id order, every input before the one step.
        assert_eq!(
            calls.borrow()[2..],
            [Call::Input(101, 4), Call::Input(102, 7), Call::Step]
        );
        inst.step(DT_S);
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
        inst.step(DT_S);
        let after = inst.entities()[0];
        assert!((after.x - before.x - PLAYER_SPEED_PER_S * DT_S).abs() < 1e-3);
    }

    #[test]
    fn delegates_to_the_world() {
        let (mut inst, _) = recorded(4, 8);
        assert_eq!(inst.bounds(), (1.0, 2.0));
        let mut out = vec![1];
        inst.custom_state(&mut out);
        assert_eq!(out, [1, 42]);
        assert_eq!(inst.game().state_bytes(), 0);
        assert_eq!(inst.id().as_str(), "test");
        inst.join(5, "e").unwrap();
        assert_eq!(inst.entities()[0].id, 105);
    }

    #[test]
    #[should_panic(expected = "players_max")]
    fn zero_players_max_is_a_programmer_error() {
        recorded(0, 1);
    }
}
