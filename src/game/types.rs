//! Plain value types shared by the game, the protocol and the shards.
//!
//! They carry no behaviour beyond validation, so the protocol layer can turn
//! wire messages into them and the game can consume them without either
//! knowing about the other.

use std::fmt;

/// A player, unique within a node for the life of the process (and carried
/// across restarts by snapshots).
pub type PlayerId = u64;

/// An entity inside one instance's world. Chosen by the game.
pub type EntityId = u32;

/// Longest instance id accepted, in bytes. Ids travel in URLs
/// (`/play?instance=ID`), logs and snapshot file names, so they stay short.
pub const INSTANCE_ID_LEN_MAX: usize = 64;

/// Name of an instance: 1..=64 bytes of `[A-Za-z0-9_.-]`.
///
/// Studios pick their own ids (a match id from their backend); the server
/// makes one up when a player joins without naming an instance.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(String);

/// Why a string is not an [`InstanceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInstanceId {
    #[error("instance id is empty")]
    Empty,
    #[error("instance id is {0} bytes; at most {INSTANCE_ID_LEN_MAX} are allowed")]
    TooLong(usize),
    #[error("instance id contains {0:?}; only A-Z a-z 0-9 _ . - are allowed")]
    BadChar(char),
}

impl InstanceId {
    pub fn parse(s: &str) -> Result<Self, InvalidInstanceId> {
        if s.is_empty() {
            return Err(InvalidInstanceId::Empty);
        }
        if s.len() > INSTANCE_ID_LEN_MAX {
            return Err(InvalidInstanceId::TooLong(s.len()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(InvalidInstanceId::BadChar(c));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({})", self.0)
    }
}

/// One input from a player, already validated: axes are finite and within
/// [-1, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlayerInput {
    /// Client sequence number; increases by one per input.
    pub seq: u32,
    pub move_x: f32,
    pub move_y: f32,
    pub buttons: u32,
}

/// What a game exposes of one entity each tick. Mirrors the wire struct
/// `EntityState` field for field, plus `EntityPose` (z, facing) for 3D games;
/// a 2D game leaves those at 0.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EntityView {
    pub id: EntityId,
    pub kind: u16,
    pub flags: u16,
    pub x: f32,
    pub y: f32,
    pub vx: f32,
    pub vy: f32,
    /// Height in arena units (3D games; 0 in 2D).
    pub z: f32,
    /// Facing in radians, [0, 2π) (0 when the game has none).
    pub facing: f32,
}

/// What each player of a version-2 client is sent of its instance: the
/// entities within `radius` of its own (0: the whole instance), at most
/// `budget` of them changed per update, nearer and longer-unsent first
/// (docs/protocol.md, "Interest"). The node's flags give the defaults
/// (--interest-radius, --interest-budget); a game may choose its own
/// ([`crate::game::Game::interest`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interest {
    /// Arena units; 0 = every entity of the instance.
    pub radius: f32,
    /// Entities changed or entered per update (the player's own included),
    /// at least 2.
    pub budget: usize,
}

impl Interest {
    /// Smallest budget: the player's own entity and one more, so every
    /// other entity is sent eventually.
    pub const BUDGET_MIN: usize = 2;

    /// The same, with values a game could get wrong made safe: a negative
    /// or non-finite radius is 0 (whole instance), a budget below
    /// [`Self::BUDGET_MIN`] is raised to it.
    pub fn sanitized(self) -> Interest {
        Interest {
            radius: if self.radius.is_finite() && self.radius > 0.0 {
                self.radius
            } else {
                0.0
            },
            budget: self.budget.max(Self::BUDGET_MIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_validated() {
        assert!(InstanceId::parse("arena-7_a.b").is_ok());
        assert_eq!(InstanceId::parse(""), Err(InvalidInstanceId::Empty));
        assert_eq!(
            InstanceId::parse(&"x".repeat(65)),
            Err(InvalidInstanceId::TooLong(65))
        );
        assert_eq!(
            InstanceId::parse("a/b"),
            Err(InvalidInstanceId::BadChar('/'))
        );
    }
}
