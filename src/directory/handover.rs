//! A node that finds it lost an instance it runs hands that instance's
//! players to the owner, seats and all.
//!
//! How a node comes to run an instance another node owns: its claim was
//! written to a primary that died before the write reached the replica
//! that was promoted (and another node claimed the instance on the new
//! primary); or the node was cut off long enough for its region to take the
//! instance over; or it came back with local snapshot files of instances
//! taken over meanwhile. The directory's record wins (see `fence.rs`); the
//! node that lost:
//! 1. (its agent) sends the shard running the instance `ToShard::HandOver`;
//! 2. (its shard) stops seating anyone new there (Joins are sent to the
//!    owner) and publishes one [`HandOver`] with every seat — player id,
//!    name, resume token — on the owner's channel;
//! 3. (the owner's shard running the instance) seats each player *detached*,
//!    under the same player id and token (a token it already holds — the
//!    player's seat came over in a replica — is answered with that seat),
//!    writes the seats to the directory and answers [`HandedOver`];
//! 4. (the shard that lost) sends each connected player `Transfer{owner's
//!    url, instance}` and closes it (1000): it reconnects there with its
//!    token and resumes, same player id; then the local copy is dropped.
//!
//! A hand-over not answered within [`HANDOVER_TIMEOUT`] ends as a plain
//! disown: players get Transfer without a reserved seat.
//!
//! This module holds the messages; the shard's side is `shard::handover`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::game::PlayerId;

/// How long a shard waits for the owner's answer before it drops its copy
/// anyway (players then reconnect to the owner without a reserved seat).
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// One seat handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedSeat {
    pub player: PlayerId,
    pub name: String,
    pub token: String,
}

/// To the owner of `instance`: seat these players (from node `from_node`,
/// whose shard `reply_shard` waits for [`HandedOver`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOver {
    /// Random; the answer names it.
    pub id: String,
    pub instance: String,
    pub from_node: String,
    pub reply_shard: usize,
    /// The owner, whose channel this goes to.
    pub to_node: String,
    /// At most --players-per-instance-max of them (one instance's seats).
    pub seats: Vec<HandedSeat>,
}

/// The owner's answer, per resume token: the player id seated, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedOver {
    pub id: String,
    pub instance: String,
    /// The owner and its players' URL.
    pub node: String,
    pub url: String,
    /// The node that asked, and its shard.
    pub to_node: String,
    pub shard: usize,
    pub seats: Vec<(String, Result<PlayerId, String>)>,
}

/// A hand-over a shard is running, by instance.
pub struct Pending {
    pub id: String,
    pub node: String,
    pub url: String,
    pub deadline: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::control::FleetMsg;

    #[test]
    fn hand_over_messages_round_trip() {
        let msgs = [
            FleetMsg::HandOver(HandOver {
                id: "h1".into(),
                instance: "x".into(),
                from_node: "a".into(),
                reply_shard: 1,
                to_node: "b".into(),
                seats: vec![HandedSeat {
                    player: 7,
                    name: "ann".into(),
                    token: "t".into(),
                }],
            }),
            FleetMsg::HandedOver(HandedOver {
                id: "h1".into(),
                instance: "x".into(),
                node: "b".into(),
                url: "ws://b".into(),
                to_node: "a".into(),
                shard: 1,
                seats: vec![("t".into(), Ok(7)), ("u".into(), Err("full".into()))],
            }),
        ];
        for m in msgs {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(
                serde_json::from_str::<FleetMsg>(&json).unwrap(),
                m,
                "{json}"
            );
        }
    }
}
