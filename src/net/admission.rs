//! Node-wide connection budget (`--max-connections`).
//!
//! The one counter shards share: a single atomic word, touched once when a
//! connection is accepted and once when it closes — never per message. Each
//! shard could instead keep a fixed share, but SO_REUSEPORT spreads
//! connections unevenly and a node would refuse players while it still had
//! room. The limit itself is atomic too, so it can be changed at run time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug)]
struct Budget {
    open: AtomicUsize,
    limit: AtomicUsize,
}

/// Handle to the node's budget; clone one per shard.
#[derive(Debug, Clone)]
pub struct ConnectionBudget(Arc<Budget>);

/// One admitted connection. Dropping it frees the place; it moves with the
/// socket when a connection is handed to another shard.
#[derive(Debug)]
pub struct ConnPermit(Arc<Budget>);

impl ConnectionBudget {
    pub fn new(limit: usize) -> Self {
        Self(Arc::new(Budget {
            open: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
        }))
    }

    /// A permit, or `None` when the node is at its limit.
    pub fn try_admit(&self) -> Option<ConnPermit> {
        let limit = self.0.limit.load(Ordering::Relaxed);
        self.0
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .ok()
            .map(|_| ConnPermit(self.0.clone()))
    }

    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.0.limit.load(Ordering::Relaxed)
    }

    /// New limit; connections above it stay, new ones wait for room.
    pub fn set_limit(&self, limit: usize) {
        self.0.limit.store(limit, Ordering::Relaxed);
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_frees_on_drop() {
        let b = ConnectionBudget::new(2);
        let p1 = b.try_admit().unwrap();
        let _p2 = b.try_admit().unwrap();
        assert!(b.try_admit().is_none());
        drop(p1);
        assert_eq!(b.open(), 1);
        assert!(b.try_admit().is_some());
        b.set_limit(1);
        assert!(b.try_admit().is_none());
    }
}
