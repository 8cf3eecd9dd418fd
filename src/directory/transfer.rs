//! Fleet orders about players: broadcasts (`shardline fleet broadcast`) and
//! moving a player to an instance on another node with its seat reserved
//! there (`shardline fleet move`).
//!
//! A move, hop by hop — each hop a bounded queue or one pub/sub message, and
//! the player keeps playing in its instance until the last one:
//! 1. `shardline fleet move` publishes [`MoveOrder`] on the channel of the
//!    node owning the player's instance (A), then waits (BLPOP, bounded) on
//!    `sl:move:{id}` for the outcome.
//! 2. A's shard running the instance checks the player (seated there,
//!    connected, not already moving), marks it moving and asks its agent
//!    who owns the target instance (claiming it for A when nobody does).
//! 3. The target is on A itself: an ordinary move within the node, as for a
//!    Join — the player gets Joined on its connection. The target is on
//!    node B: A's agent publishes a [`Reservation`] to B; B's shard running
//!    the target seats the player *detached* (a fresh player id, the same
//!    resume token, kept for --reconnect-grace-ms like any dropped player),
//!    B's agent writes the seat to the directory and answers [`Reserved`].
//! 4. A's shard: on success the player leaves its instance (the others get
//!    PlayerLeft(Moved)), gets `Transfer{url, instance}` and its connection
//!    is closed (1000); it reconnects to B with its token and finds its
//!    seat. On failure it stays where it was. Either way the outcome goes to
//!    the caller.
//!
//! A move not answered within [`TRANSFER_TIMEOUT`] is abandoned: the player
//! stays, and a seat B reserved too late expires unused after the grace.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::game::{InstanceId, PlayerId};

/// Longest broadcast message, UTF-8 bytes (it is copied into one frame per
/// connected player, so it costs this × players of outbound buffer).
pub const NOTICE_BYTES_MAX: usize = 1024;
/// A move not answered within this time is abandoned (the player stays).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);
/// Moves a shard runs at once (each ~200 B of state); one more is refused
/// with a reason.
pub const TRANSFERS_PER_SHARD_MAX: usize = 64;

/// `shardline fleet broadcast`: a Notice for every player of a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadcast {
    pub message: String,
    /// `None`: every region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub sent_at_us: u64,
}

impl Broadcast {
    pub fn new(message: String, region: Option<String>) -> Result<Broadcast, String> {
        if message.is_empty() {
            return Err("the message is empty".into());
        }
        if message.len() > NOTICE_BYTES_MAX {
            return Err(format!(
                "the message is {} bytes; at most {NOTICE_BYTES_MAX}",
                message.len()
            ));
        }
        Ok(Broadcast {
            message,
            region,
            sent_at_us: now_us(),
        })
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `shardline fleet move`: move `player` of `instance` to instance `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveOrder {
    /// Random, names the outcome's key.
    pub id: String,
    pub instance: String,
    pub player: PlayerId,
    pub to: String,
    pub create: bool,
}

impl MoveOrder {
    pub fn new(instance: &str, player: PlayerId, to: &str, create: bool) -> Result<Self, String> {
        InstanceId::parse(instance).map_err(|e| format!("--instance {instance:?}: {e}"))?;
        InstanceId::parse(to).map_err(|e| format!("--to {to:?}: {e}"))?;
        if instance == to {
            return Err("the player is already in that instance".into());
        }
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| format!("no OS randomness: {e}"))?;
        Ok(MoveOrder {
            id: raw.iter().map(|b| format!("{b:02x}")).collect(),
            instance: instance.to_owned(),
            player,
            to: to.to_owned(),
            create,
        })
    }
}

/// A seat asked of the node owning `instance`, for a player arriving from
/// node `reply_node` (shard `reply_shard` there waits for [`Reserved`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub move_id: String,
    pub instance: String,
    pub create: bool,
    pub name: String,
    pub token: String,
    pub reply_node: String,
    pub reply_shard: usize,
}

/// The seat a node reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub node: String,
    pub url: String,
    pub instance: String,
    /// The player's id on that node.
    pub player: PlayerId,
}

/// The answer to a [`Reservation`], sent to node `node`, shard `shard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub move_id: String,
    pub node: String,
    pub shard: usize,
    pub result: Result<Seat, String>,
}

/// A move this shard is running, by move id.
pub struct Transfer {
    pub player: PlayerId,
    pub from_instance: InstanceId,
    pub deadline: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::control::FleetMsg;

    #[test]
    fn orders_are_checked_before_they_are_sent() {
        assert!(MoveOrder::new("a", 1, "b", true).is_ok());
        assert!(MoveOrder::new("a", 1, "a", true).is_err());
        assert!(MoveOrder::new("bad id!", 1, "b", true).is_err());
        assert!(MoveOrder::new("a", 1, "", true).is_err());
        let a = MoveOrder::new("a", 1, "b", true).unwrap();
        let b = MoveOrder::new("a", 1, "b", true).unwrap();
        assert_ne!(a.id, b.id, "move ids are random");
        assert!(Broadcast::new(String::new(), None).is_err());
        assert!(Broadcast::new("x".repeat(NOTICE_BYTES_MAX + 1), None).is_err());
        assert!(Broadcast::new("x".repeat(NOTICE_BYTES_MAX), Some("eu".into())).is_ok());
    }

    #[test]
    fn the_documented_move_message_parses() {
        // README and docs/fleet.md: what a matchmaker PUBLISHes.
        let json = r#"{"kind":"move","id":"9f2c","instance":"lobby-3","player":4138424245183649,"to":"match-17","create":true}"#;
        assert_eq!(
            serde_json::from_str::<FleetMsg>(json).unwrap(),
            FleetMsg::Move(MoveOrder {
                id: "9f2c".into(),
                instance: "lobby-3".into(),
                player: 4138424245183649,
                to: "match-17".into(),
                create: true,
            })
        );
        // docs/fleet.md, "Orders".
        let b = r#"{"kind":"broadcast","message":"Servers restart at 04:00 UTC","region":"eu","sent_at_us":1764892800000000}"#;
        assert!(matches!(
            serde_json::from_str::<FleetMsg>(b).unwrap(),
            FleetMsg::Broadcast(Broadcast { region: Some(r), .. }) if r == "eu"
        ));
        let c = r#"{"kind":"config","heartbeat_ms":20000,"players_per_instance_max":32,"max_connections":5000}"#;
        assert!(matches!(
            serde_json::from_str::<FleetMsg>(c).unwrap(),
            FleetMsg::Config(crate::directory::control::FleetConfig {
                heartbeat_ms: Some(20000),
                players_per_instance_max: Some(32),
                max_connections: Some(5000)
            })
        ));
        let d = r#"{"kind":"drain","node":"eu-a"}"#;
        assert_eq!(
            serde_json::from_str::<FleetMsg>(d).unwrap(),
            FleetMsg::Drain {
                node: "eu-a".into()
            }
        );
    }

    #[test]
    fn fleet_orders_round_trip_as_json() {
        let msgs = [
            FleetMsg::Broadcast(Broadcast::new("hi".into(), Some("eu".into())).unwrap()),
            FleetMsg::Move(MoveOrder::new("a", 7, "b", false).unwrap()),
            FleetMsg::Reserve(Reservation {
                move_id: "m".into(),
                instance: "b".into(),
                create: true,
                name: "ann".into(),
                token: "t".into(),
                reply_node: "n1".into(),
                reply_shard: 1,
            }),
            FleetMsg::Reserved(Reserved {
                move_id: "m".into(),
                node: "n1".into(),
                shard: 1,
                result: Err("full".into()),
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
