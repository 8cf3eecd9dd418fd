//! Evacuating a node without kicking anyone (the autoscaler's scale-down,
//! `shardline fleet evacuate`): the node stops taking players and moves
//! each of its instances, live, to another node of its region.
//!
//! One instance's hand-over, hop by hop (each a bounded queue or one
//! pub/sub message):
//! 1. Node A's shard, between two ticks, takes the instance out of its world
//!    (it is ticked no more, so nothing changes after this point) and copies
//!    it, seats and resume tokens included. Inputs that arrive meanwhile are
//!    not applied, so never acknowledged: no acknowledged input is lost.
//! 2. A's agent picks the node of the region with room and the fewest
//!    players (B), stores the copy as the instance's replica and gives the
//!    instance to B in one atomic step (fenced: only while A owns it), then
//!    publishes [`Offer`] to B.
//! 3. B's agent reads the replica, rebuilds the instance on its shard (the
//!    seats wait for their players, as after a take-over) and answers
//!    [`Done`] with its URL; on any failure it gives the instance
//!    back to A.
//! 4. A's shard sends each connected player of the instance `Transfer{url,
//!    instance}` and closes (1000); players resume on B with their tokens.
//!    On failure the instance goes back into A's world and ticks on.
//!
//! A hand-over not answered within [`EVACUATION_TIMEOUT`] is settled by asking
//! the directory who owns the instance: A again → it ticks on here; B → its
//! players are sent there.
//!
//! This module holds the messages and limits; the shard's side is
//! `shard::evacuate`, the agent's `directory::agent::evacuate`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::snapshot::InstanceSnapshot;

/// Hand-overs one shard runs at once; the others wait their turn. Each
/// holds its instance (as in the world) and a copy of it until answered.
pub const EVACUATIONS_PER_SHARD_MAX: usize = 8;
/// A hand-over not answered within this is settled through the directory.
pub const EVACUATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before an instance whose hand-over failed is tried again.
pub const EVACUATION_RETRY: Duration = Duration::from_secs(1);

/// To the node chosen to take an instance over (step 2 → 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Random, names this hand-over in logs and answers.
    pub id: String,
    pub instance: String,
    pub from_node: String,
    pub from_shard: usize,
}

/// The answer to an offer, to node `node`, shard `shard` (step 3 → 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub id: String,
    pub instance: String,
    pub node: String,
    pub shard: usize,
    /// The new owner's WebSocket URL, or why not.
    pub result: Result<String, String>,
}

/// What a shard asks its agent at step 2.
#[derive(Debug)]
pub struct Outgoing {
    pub id: String,
    pub shard: usize,
    pub snapshot: InstanceSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::control::FleetMsg;

    #[test]
    fn hand_over_messages_round_trip_as_json() {
        let msgs = [
            FleetMsg::Evacuate {
                node: "eu-2".into(),
            },
            FleetMsg::Adopt(Offer {
                id: "h1".into(),
                instance: "arena-1".into(),
                from_node: "eu-2".into(),
                from_shard: 1,
            }),
            FleetMsg::Adopted(Done {
                id: "h1".into(),
                instance: "arena-1".into(),
                node: "eu-2".into(),
                shard: 1,
                result: Ok("ws://127.0.0.1:9001".into()),
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
        let doc = r#"{"kind":"evacuate","node":"eu-a"}"#;
        assert_eq!(
            serde_json::from_str::<FleetMsg>(doc).unwrap(),
            FleetMsg::Evacuate {
                node: "eu-a".into()
            }
        );
    }
}
