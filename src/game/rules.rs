//! The seam where a studio plugs in its own game.
//!
//! A game is two small traits: [`Game`] is one instance's world, driven by
//! its [`Instance`](super::Instance) one fixed step at a time; [`GameFactory`]
//! makes a fresh world for each instance, or brings one back from a
//! snapshot. Worlds are pure: time comes in as `dt_s`, inputs are already
//! validated (axes finite, within [-1, 1]), and nothing in them may read a
//! clock, open a socket or spawn a thread, so the same inputs always give
//! the same world.
//!
//! # Snapshots
//!
//! The server writes every instance to disk now and then and brings it back
//! after a restart. The world's part of that is two calls: [`Game::save`]
//! appends the world as bytes, [`GameFactory::restore`] makes a world from
//! those bytes. The easiest way is rkyv's derive on the world's state and the
//! two helpers here, [`save_archived`] and [`restore_archived`]: the bytes
//! are validated before use, so a corrupt or foreign snapshot is an `Err`,
//! never a panic. Seats, ticks and input bookkeeping are the instance's
//! business and are saved by it; the world saves only itself.
//!
//! # A studio's own game
//!
//! Players walk on a 10 × 10 grid; whenever someone stands on the coin, it
//! is picked up and reappears elsewhere. The pick-up count is game-specific
//! state, sent through [`Game::custom_state`]. The whole world derives
//! rkyv's traits, which is all it takes to be snapshotted.
//!
//! ```rust
//! use shardline::game::rules::{restore_archived, save_archived};
//! use shardline::game::{
//!     EntityId, EntityView, Game, GameFactory, Instance, InstanceId, InstanceLimits, PlayerId,
//!     PlayerInput,
//! };
//!
//! #[derive(Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
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
//!     fn save(&self, out: &mut Vec<u8>) {
//!         save_archived(self, out);
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
//!     fn restore(&self, _instance: &InstanceId, bytes: &[u8]) -> Result<Box<dyn Game>, String> {
//!         let coins: Coins = restore_archived(bytes)?;
//!         // Check what the type system cannot: a coin off the grid is a bad snapshot.
//!         if !(0..10).contains(&coins.coin.0) || !(0..10).contains(&coins.coin.1) {
//!             return Err(format!("coin at {:?} is off the grid", coins.coin));
//!         }
//!         Ok(Box::new(coins))
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
//! instance.step(1.0 / 60.0).unwrap();
//!
//! let mut state = Vec::new();
//! instance.custom_state(&mut state).unwrap();
//! assert_eq!(state, 1u32.to_le_bytes()); // walked onto the coin at (1, 0)
//! assert_eq!(instance.entities()[0].x, 1.0);
//!
//! // A snapshot, and the instance brought back from it after a restart:
//! let snapshot = instance.save().unwrap();
//! let mut back = Instance::restore_with(&CoinsFactory, &snapshot, limits).unwrap();
//! assert_eq!((back.tick(), back.players()), (1, 1));
//! assert_eq!(back.entities()[0].x, 1.0);
//! let mut state_back = Vec::new();
//! back.custom_state(&mut state_back).unwrap();
//! assert_eq!(state_back, state);
//! // Bytes that are not a Coins world are refused, not trusted:
//! assert!(CoinsFactory.restore(&id, b"not a world").is_err());
//! ```

use super::hooks::{JoinInfo, LeaveCause, Refusal};
use super::outbox::{InstanceMail, Outbox};
use super::types::{EntityId, EntityView, InstanceId, Interest, PlayerId, PlayerInput};

/// One instance's world under one game's rules. Object safe; one
/// `Box<dyn Game>` per instance.
///
/// The instance calls it in a fixed order each tick: messages from other
/// instances ([`on_instance_message`](Game::on_instance_message), in
/// arrival order), then every seat's queued inputs and game messages in the
/// order they arrived ([`validate_input`](Game::validate_input) then
/// [`apply_input`](Game::apply_input) for an input,
/// [`on_message`](Game::on_message) for a message; seats in a stable order),
/// then [`step`](Game::step) once, then [`after_step`](Game::after_step).
/// Given the same calls, a world must end in the same state.
///
/// Only the first eight methods are required; the hooks after them
/// ([`on_join`](Game::on_join), [`on_leave`](Game::on_leave),
/// [`validate_input`](Game::validate_input), [`on_message`](Game::on_message),
/// [`on_instance_message`](Game::on_instance_message),
/// [`after_step`](Game::after_step)) default to doing nothing. Every call is
/// guarded: a panic in any of them stops this instance only.
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

    /// What a version-2 client is sent of this world: the radius around
    /// its player's entity and the entities per update. `defaults` come
    /// from the node's flags (--interest-radius, --interest-budget); the
    /// default keeps them. Called once per tick.
    fn interest(&self, defaults: Interest) -> Interest {
        defaults
    }

    /// Appends the whole world to `out`, in a form
    /// [`GameFactory::restore`] reads back (see [`save_archived`]).
    ///
    /// Called on the shard's thread between two ticks, so it should cost
    /// about one copy of the world. Everything the world needs to continue
    /// must be in it, including its own id counters: restored seats keep
    /// their entity ids, and new entities must not reuse them.
    fn save(&self, out: &mut Vec<u8>);

    /// A player asks for a seat (`info.resumed == false`, before its
    /// entity is spawned) or comes back to the seat it held
    /// (`info.resumed == true`). `Err` refuses it: the client gets
    /// `Error(JoinRefused)` with the reason, a new player is not seated, a
    /// returning one loses its seat ([`on_leave`](Game::on_leave) follows
    /// with [`LeaveCause::Kicked`]). Events it emits go out after the
    /// next tick's state. Default: everyone is welcome.
    fn on_join(
        &mut self,
        _player: PlayerId,
        _info: &JoinInfo<'_>,
        _out: &mut Outbox,
    ) -> Result<(), Refusal> {
        Ok(())
    }

    /// The player left its seat (before its entity is despawned).
    fn on_leave(
        &mut self,
        _player: PlayerId,
        _entity: EntityId,
        _cause: LeaveCause,
        _out: &mut Outbox,
    ) {
    }

    /// Anti-cheat: `Err(reason)` refuses an input as impossible; it is
    /// not applied (its seq still counts as handled) and the refusal is
    /// counted per reason (`shardline_inputs_refused_total{reason}`; a
    /// game should use a handful of fixed reasons). Default: every input
    /// is possible.
    fn validate_input(&self, _entity: EntityId, _input: &PlayerInput) -> Result<(), &'static str> {
        Ok(())
    }

    /// A game message from `player` (a client's `Message{kind, body}`),
    /// in arrival order with its inputs. `body` is at most
    /// `--message-bytes-max` bytes and otherwise unchecked.
    fn on_message(
        &mut self,
        _player: PlayerId,
        _entity: EntityId,
        _kind: u16,
        _body: &[u8],
        _out: &mut Outbox,
    ) {
    }

    /// A message another instance sent with [`Outbox::to_instance`].
    fn on_instance_message(&mut self, _mail: &InstanceMail, _out: &mut Outbox) {}

    /// Called once per tick after [`step`](Game::step): emit what the
    /// step produced (events, instance messages).
    fn after_step(&mut self, _out: &mut Outbox) {}
}

/// Makes worlds; one per node, shared read-only by all shards (hence
/// `Send + Sync`).
pub trait GameFactory: Send + Sync + 'static {
    /// Short name of the game, for logs and metrics (`"arena"`).
    fn name(&self) -> &'static str;

    /// A fresh world for `instance`. Worlds themselves stay on the shard that
    /// owns the instance, so they need not be `Send`.
    fn create(&self, instance: &InstanceId) -> Box<dyn Game>;

    /// The world that [`Game::save`] wrote as `bytes`, for `instance`.
    ///
    /// The bytes come from disk: they may be from an older build, another
    /// game or a damaged file that happened to pass its checksum. Validate
    /// them (rkyv's checked access does, see [`restore_archived`]) and check
    /// what types cannot; return `Err` with a reason the operator can read,
    /// and never panic.
    fn restore(&self, instance: &InstanceId, bytes: &[u8]) -> Result<Box<dyn Game>, String>;
}

/// rkyv serializer used by [`save_archived`]: high-level API, errors with
/// their reason.
pub type SaveSerializer<'a> = rkyv::api::high::HighSerializer<
    rkyv::util::AlignedVec,
    rkyv::ser::allocator::ArenaHandle<'a>,
    rkyv::rancor::BoxedError,
>;

/// rkyv validator used by [`restore_archived`].
pub type RestoreValidator<'a> = rkyv::api::high::HighValidator<'a, rkyv::rancor::BoxedError>;

/// rkyv deserializer used by [`restore_archived`].
pub type RestoreDeserializer = rkyv::api::high::HighDeserializer<rkyv::rancor::BoxedError>;

/// Alignment of the buffer [`restore_archived`] validates from: rkyv's
/// archived primitives need at most 16 (`u128`).
const ARCHIVE_ALIGN: usize = 16;

/// [`Game::save`] for a world that derives rkyv's `Archive` and
/// `Serialize`: appends its archive to `out`.
///
/// # Panics
/// If rkyv cannot serialize the value: its relative pointers are 32-bit, so
/// a world over 2 GiB does not fit. That is far beyond any per-instance
/// memory cap, so reaching it is a bug in the game, not an operating error.
pub fn save_archived<T>(value: &T, out: &mut Vec<u8>)
where
    T: for<'a> rkyv::Serialize<SaveSerializer<'a>>,
{
    match rkyv::api::high::to_bytes::<rkyv::rancor::BoxedError>(value) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(e) => panic!("world does not fit an rkyv archive: {e}"),
    }
}

/// [`GameFactory::restore`] for a world saved with [`save_archived`]:
/// validates `bytes` (rkyv checked access) and deserializes them.
///
/// `bytes` may sit at any address (inside a memory-mapped snapshot file they
/// usually do not start aligned), so they are copied to an aligned buffer
/// first; restore happens once per instance per start, so the copy is cheap.
pub fn restore_archived<T>(bytes: &[u8]) -> Result<T, String>
where
    T: rkyv::Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<RestoreValidator<'a>>
        + rkyv::Deserialize<T, RestoreDeserializer>,
{
    if bytes.is_empty() {
        return Err("world state is empty".to_owned());
    }
    let mut aligned = rkyv::util::AlignedVec::<ARCHIVE_ALIGN>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<T, rkyv::rancor::BoxedError>(&aligned)
        .map_err(|e| format!("invalid world state: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    struct World {
        ids: Vec<u64>,
        name: String,
    }

    fn world() -> World {
        World {
            ids: vec![1, u64::MAX, 7],
            name: "w".repeat(40),
        }
    }

    #[test]
    fn save_appends_and_restore_reads_from_any_alignment() {
        let mut out = vec![9u8; 3];
        save_archived(&world(), &mut out);
        assert_eq!(out[..3], [9, 9, 9], "save appends");
        // out[3..] starts at an odd address relative to the allocation: as
        // a record inside a memory-mapped snapshot usually does.
        assert_eq!(restore_archived::<World>(&out[3..]), Ok(world()));
    }

    #[test]
    fn restore_refuses_bad_bytes() {
        assert_eq!(
            restore_archived::<World>(&[]),
            Err("world state is empty".to_owned())
        );
        let err = restore_archived::<World>(&[0xFF; 64]).unwrap_err();
        assert!(err.starts_with("invalid world state: "), "{err}");
        let mut good = Vec::new();
        save_archived(&world(), &mut good);
        for len in 0..good.len() {
            assert!(
                restore_archived::<World>(&good[..len]).is_err(),
                "cut at {len}"
            );
        }
    }
}
