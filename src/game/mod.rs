//! The game layer: worlds, the instances that hold them, and where they live.
//!
//! Everything here is pure: no sockets, no clocks, no threads. Time arrives
//! as a parameter (`step(dt_s)`), randomness as a caller's generator, and
//! output is a value the shard sends. So every rule is tested
//! deterministically, and a shard drives it like this, once per tick:
//!
//! 1. the socket task calls [`Instance::push_input`] (queues only; the world
//!    is not touched),
//! 2. the tick calls [`Instance::step`] (applies queued inputs in order, then
//!    steps the world once),
//! 3. the shard encodes [`Instance::entities`] into each player's update.
//!
//! # Layout
//! - [`types`]: plain values shared with the protocol (ids, inputs, entity views).
//! - [`rules`]: the [`Game`] / [`GameFactory`] traits, the seam where a studio
//!   plugs in its own game.
//! - [`arena`]: the reference game, a 2D arena where players move and are
//!   stopped by walls.
//! - [`hooks`]: what the game's hooks learn about players (ticket claims,
//!   leave causes) and how a game refuses one.
//! - [`outbox`]: events and instance messages a game emits, bounded.
//! - [`instance`]: one instance: a world, its seats and their bounded input
//!   queues.
//! - [`placement`]: which shard owns an instance, which instance a player
//!   joins, how fresh instance ids are made.

pub mod arena;
pub mod hooks;
pub mod instance;
pub mod outbox;
pub mod placement;
pub mod rules;
pub mod types;

pub use arena::{Arena, ArenaFactory};
pub use hooks::{Claims, JoinInfo, LeaveCause, Refusal};
pub use instance::{
    guarded, GameFailure, Instance, InstanceLimits, JoinError, PushInput, PushMessage, Seat,
    TickReport,
};
pub use outbox::{Audience, Event, InstanceMail, Mail, MessageLimits, Outbox};
pub use placement::{least_loaded, new_instance_id, shard_for};
pub use rules::{Game, GameFactory};
pub use types::{
    EntityId, EntityView, InstanceId, Interest, InvalidInstanceId, PlayerId, PlayerInput,
};
