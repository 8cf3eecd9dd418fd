//! What the game's hooks learn about a player: who it is (its join
//! ticket's claims), why it left, and how the game says no.

use std::sync::Arc;

/// What the studio's backend said about a player in its join ticket
/// (`auth::ticket`), verified by the server. Without `--join-secret`
/// nobody vouches for anybody: every field is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// The backend's own id of the player (the ticket's `player`).
    pub player: String,
    /// The instance the ticket admits to; `None`: any.
    pub instance: Option<String>,
    /// The ticket grants creating instances.
    pub create: bool,
    /// The backend's own claims (a v3 ticket's `key=value` pairs: a team,
    /// a rank, cosmetics…), in the order the ticket lists them.
    pub extra: Vec<(String, String)>,
}

impl Claims {
    /// The value of the backend's claim `key`, if the ticket has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What [`Game::on_join`](super::Game::on_join) learns about a joining
/// player.
#[derive(Debug, Clone)]
pub struct JoinInfo<'a> {
    /// Display name from Hello.
    pub name: &'a str,
    /// Its verified ticket's claims (shared, cheap to keep).
    pub claims: &'a Arc<Claims>,
    /// `true`: the player held its seat and came back with its resume
    /// token (a reconnect, a move between shards or nodes); its entity is
    /// still in the world. `false`: a new seat; the entity is spawned
    /// after `on_join` accepts.
    pub resumed: bool,
}

/// The game's "no": the client gets `Error(JoinRefused)` with this reason
/// as the message (keep it short; it is cut at 256 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl Refusal {
    pub fn new(reason: impl Into<String>) -> Self {
        Refusal(reason.into())
    }
}

/// Longest refusal reason sent to a client, bytes.
pub const REFUSAL_LEN_MAX: usize = 256;

/// Why a player left the instance ([`Game::on_leave`](super::Game::on_leave)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveCause {
    /// It sent Leave, or its connection closed for good.
    Left,
    /// Its connection dropped and its seat's grace ran out.
    TimedOut,
    /// It joined another instance.
    Moved,
    /// The game refused it on a resume, or the server removed it.
    Kicked,
}
