//! The seam where a studio plugs in its own game.
//!
//! A game is two small traits: [`Game`] is one instance's world, driven by
//! its [`Instance`](super::Instance) one fixed step at a time; [`GameFactory`]
//! makes a fresh world for each instance. Worlds are pure: time comes in as
//! `dt_s`, inputs are already validated (axes finite, within [-1, 1]), and
//! nothing in them may read a clock, open a socket or spawn a thread, so the
//! same inputs always give the same world.
//!
//! # A studio's own game
//!
//! Players walk on a 10 × 10 grid; whenever someone stands on the coin, it
//! is picked up and reappears elsewhere. The pick-up count is game-specific
//! state, sent through [`Game::custom_state`].
//!
//! ```rust
//! use shardline::game::{
//!     EntityId, EntityView, Game, GameFactory, Instance, InstanceId, InstanceLimits, PlayerId,
//!     PlayerInput,
//! };
//!
//! #[derive(Default)]
//! struct Coins {
//!     players: Vec<(EntityId, i32, i32)>,
//!     entity_last: EntityId,
//!     coin: (i32, i32),
//!     picked: u32,
//! }
//!
//! impl Game for Coins {
//!     fn spawn(&mut self, _player: PlayerId) -> EntityId {
//!         self.entity_last += 1;
//!         self.players.push((self.entity_last, 0, 0));
//!         self.entity_last
//!     }
//!     fn despawn(&mut self, entity: EntityId) {
//!         self.players.retain(|p| p.0 != entity);
//!     }
//!     fn apply_input(&mut self, entity: EntityId, input: &PlayerInput) {
//!         if let Some(p) = self.players.iter_mut().find(|p| p.0 == entity) {
//!             p.1 = (p.1 + input.move_x.round() as i32).clamp(0, 9);
//!             p.2 = (p.2 + input.move_y.round() as i32).clamp(0, 9);
//!         }
//!     }
//!     fn step(&mut self, _dt_s: f32) {
//!         if self.players.iter().any(|p| (p.1, p.2) == self.coin) {
//!             self.picked += 1;
//!             self.coin = ((self.coin.0 + 3) % 10, (self.coin.1 + 7) % 10);
//!         }
//!     }
//!     fn entities(&self, out: &mut Vec<EntityView>) {
//!         for &(id, x, y) in &self.players {
//!             out.push(EntityView { id, x: x as f32, y: y as f32, ..Default::default() });
//!         }
//!     }
//!     fn bounds(&self) -> (f32, f32) {
//!         (10.0, 10.0)
//!     }
//!     fn custom_state(&self, out: &mut Vec<u8>) {
//!         out.extend_from_slice(&self.picked.to_le_bytes());
//!     }
//!     fn state_bytes(&self) -> usize {
//!         self.players.capacity() * std::mem::size_of::<(EntityId, i32, i32)>()
//!     }
//! }
//!
//! struct CoinsFactory;
//!
//! impl GameFactory for CoinsFactory {
//!     fn name(&self) -> &'static str {
//!         "coins"
//!     }
//!     fn create(&self, _instance: &InstanceId) -> Box<dyn Game> {
//!         Box::new(Coins { coin: (1, 0), ..Default::default() })
//!     }
//! }
//!
//! // What a shard does with it:
//! let id = InstanceId::parse("match-1").unwrap();
//! let limits = InstanceLimits { players_max: 4, inputs_per_tick_max: 2 };
//! let mut instance = Instance::new(id.clone(), CoinsFactory.create(&id), limits);
//! instance.join(7, "ada").unwrap();
//! let right = PlayerInput { seq: 1, move_x: 1.0, ..Default::default() };
//! instance.push_input(7, right);
//! instance.step(1.0 / 60.0);
//!
//! let mut state = Vec::new();
//! instance.custom_state(&mut state);
//! assert_eq!(state, 1u32.to_le_bytes()); // walked onto the coin at (1, 0)
//! assert_eq!(instance.entities()[0].x, 1.0);
//! ```

use super::types::{EntityId, EntityView, InstanceId, PlayerId, PlayerInput};

/// One instance's world under one game's rules. Object safe; one
/// `Box<dyn Game>` per instance.
///
/// The instance calls it in a fixed order each tick: every seat's queued
/// inputs through [`apply_input`](Game::apply_input) (seats in a stable
/// order, each seat's inputs in seq order), then [`step`](Game::step) once.
/// Given the same calls, a world must end in the same state.
pub trait Game {
    /// Adds the player's entity and returns its id.
    fn spawn(&mut self, player: PlayerId) -> EntityId;

    /// Removes the entity. Unknown ids are ignored.
    fn despawn(&mut self, entity: EntityId);

    /// Applies one input to the entity it controls (called in seq order,
    /// before step).
    fn apply_input(&mut self, entity: EntityId, input: &PlayerInput);

    /// Advances the world by one fixed step of `dt_s` seconds.
    fn step(&mut self, dt_s: f32);

    /// Appends every entity's view (clears nothing; caller clears `out`).
    fn entities(&self, out: &mut Vec<EntityView>);

    /// (width, height) of the world in game units, sent to clients in Joined.
    fn bounds(&self) -> (f32, f32);

    /// Game-specific state beyond entities, appended to `out` (default:
    /// nothing).
    fn custom_state(&self, _out: &mut Vec<u8>) {}

    /// Approximate heap bytes of this world (for metrics / memory caps).
    fn state_bytes(&self) -> usize;
}

/// Makes worlds; one per node, shared read-only by all shards (hence
/// `Send + Sync`).
pub trait GameFactory: Send + Sync + 'static {
    /// Short name of the game, for logs and metrics (`"arena"`).
    fn name(&self) -> &'static str;

    /// A fresh world for `instance`. Worlds themselves stay on the shard that
    /// owns the instance, so they need not be `Send`.
    fn create(&self, instance: &InstanceId) -> Box<dyn Game>;
}
