//! Single use of join tickets, node-wide.
//!
//! A ticket may arrive on any shard, so the record of used nonces is the
//! one piece of auth state shards share. It is touched once per Hello that
//! carries a ticket — connection set-up, never the per-message data path —
//! under a short lock, and bounded: entries leave when their ticket expires,
//! and past `capacity` new tickets are refused rather than the set growing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Nonces remembered at most (≈ 80 B each: 8 MiB at the default).
pub const USED_TICKETS_MAX_DEFAULT: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    First,
    Replayed,
    /// The set is full of unexpired tickets; refuse until some expire.
    Full,
}

#[derive(Clone, Debug)]
pub struct UsedTickets {
    inner: Arc<Mutex<HashMap<String, u64>>>,
    capacity: usize,
}

impl UsedTickets {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(HashMap::new())),
            capacity,
        }
    }

    /// Records `nonce` (valid until `expires_unix_s`) at `now_unix_s`.
    pub fn record(&self, nonce: &str, expires_unix_s: u64, now_unix_s: u64) -> Use {
        let mut used = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if used.contains_key(nonce) {
            return Use::Replayed;
        }
        if used.len() >= self.capacity {
            used.retain(|_, exp| *exp >= now_unix_s);
            if used.len() >= self.capacity {
                return Use::Full;
            }
        }
        used.insert(nonce.to_owned(), expires_unix_s);
        Use::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_a_replay_and_expired_entries_make_room() {
        let u = UsedTickets::new(2);
        assert_eq!(u.record("a", 10, 0), Use::First);
        assert_eq!(u.record("a", 10, 0), Use::Replayed);
        assert_eq!(u.record("b", 5, 0), Use::First);
        assert_eq!(u.record("c", 10, 1), Use::Full);
        assert_eq!(u.record("c", 10, 6), Use::First, "b expired at 5");
    }
}
