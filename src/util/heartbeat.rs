//! Each shard's progress, readable from another thread: the watchdog's view
//! of a shard (`runtime::watchdog`).
//!
//! One [`Beat`] per shard, written by that shard only (the slot loop and
//! its core's step), read by the watchdog thread and the admin endpoint.
//! Every field has one writer: the shard writes `finished_ms` and the
//! instance it is stepping; the watchdog writes `stuck_since_ms`, the
//! stuck instance and `removed`; the shard answers a removal by writing
//! `rejoined`.
//! No lock on the data path: a slot costs one relaxed store, a step two
//! stores of the stepping sequence and up to nine of the name.
//!
//! The instance being stepped is kept in a seqlock of [`NAME_WORDS`]
//! words, so the watchdog can name the game a stuck shard was running.

use std::os::fd::OwnedFd;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// 64 bytes: the longest instance id (`game::INSTANCE_ID_LEN_MAX`).
pub const NAME_BYTES_MAX: usize = 64;
const NAME_WORDS: usize = NAME_BYTES_MAX / 8;

/// One shard's progress, as seen from outside it.
#[derive(Debug, Default)]
pub struct Beat {
    /// Milliseconds since the node's epoch when the shard last finished a
    /// slot, plus one (0: not started yet). Written by the shard.
    finished_ms: AtomicU64,
    /// Seqlock sequence of `name`: odd while it is being written.
    name_seq: AtomicU64,
    /// Length of the instance id being stepped; 0 between steps.
    name_len: AtomicU64,
    name: [AtomicU64; NAME_WORDS],
    /// Milliseconds since the epoch, plus one, since when the watchdog has
    /// seen this shard stuck (0: not stuck). Written by the watchdog.
    stuck_since_ms: AtomicU64,
    /// Times the watchdog took this shard's listener out of the
    /// SO_REUSEPORT group. Written by the watchdog.
    removed: AtomicU64,
    /// Times the shard put a new listener back after a removal (equal to
    /// `removed` when it is in the group). Written by the shard.
    rejoined: AtomicU64,
    /// A duplicate of the shard's listening socket, for the watchdog's
    /// `shutdown(2)`: a duplicate keeps the fd number from being reused
    /// by something else while the watchdog holds it. Locked only when the
    /// listener changes or is removed, never on the data path.
    pub listener: Mutex<Option<OwnedFd>>,
    /// The instance the shard was stepping when the watchdog found it
    /// stuck (for /health, /ready, /metrics). Written by the watchdog.
    stuck_instance: Mutex<Option<String>>,
    /// The shard's thread id (Linux tid), plus one (0: not known yet), so
    /// the watchdog can tell a starved shard from a stuck one. Written by
    /// the shard.
    thread: AtomicU64,
}

/// Every shard's [`Beat`], and the clock they are measured on.
#[derive(Debug)]
pub struct Beats {
    pub shards: Vec<Beat>,
    epoch: Instant,
    /// The node is shutting down: shards stop ticking on purpose, and the
    /// watchdog ends. Written by the node.
    stopping: AtomicBool,
}

impl Beats {
    pub fn new(shards: usize) -> Arc<Beats> {
        Arc::new(Beats {
            shards: (0..shards).map(|_| Beat::default()).collect(),
            epoch: Instant::now(),
            stopping: AtomicBool::new(false),
        })
    }

    /// The node is shutting down: nothing is stuck any more.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Milliseconds since the epoch at `at`, plus one (never 0).
    pub fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64 + 1
    }

    /// The instant a `ms` value stands for.
    pub fn instant(&self, ms: u64) -> Instant {
        self.epoch + std::time::Duration::from_millis(ms.saturating_sub(1))
    }
}

impl Beat {
    /// The shard runs on thread `tid` (Linux thread id).
    pub fn set_thread(&self, tid: i32) {
        self.thread
            .store(u64::from(tid as u32) + 1, Ordering::Release);
    }

    /// The shard's thread id, once it said.
    pub fn thread(&self) -> Option<i32> {
        match self.thread.load(Ordering::Acquire) {
            0 => None,
            t => Some((t - 1) as i32),
        }
    }

    /// The shard finished a slot at `ms` (from [`Beats::ms`]).
    pub fn finished(&self, ms: u64) {
        self.finished_ms.store(ms, Ordering::Release);
    }

    /// When the shard last finished a slot (0: never).
    pub fn finished_ms(&self) -> u64 {
        self.finished_ms.load(Ordering::Acquire)
    }

    /// The shard starts stepping `instance` (at most 64 bytes are kept).
    pub fn stepping(&self, instance: &str) {
        let bytes = &instance.as_bytes()[..instance.len().min(NAME_BYTES_MAX)];
        let seq = self.name_seq.load(Ordering::Relaxed);
        self.name_seq.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, word) in self.name.iter().enumerate() {
            let mut w = [0u8; 8];
            let from = (i * 8).min(bytes.len());
            let to = (from + 8).min(bytes.len());
            w[..to - from].copy_from_slice(&bytes[from..to]);
            word.store(u64::from_le_bytes(w), Ordering::Relaxed);
            if to == bytes.len() {
                break;
            }
        }
        self.name_len.store(bytes.len() as u64, Ordering::Relaxed);
        self.name_seq.store(seq + 2, Ordering::Release);
    }

    /// The step is over.
    pub fn stepped(&self) {
        self.name_len.store(0, Ordering::Release);
    }

    /// The instance being stepped, if the shard is inside a step (`None`
    /// between steps, or if the name changed while being read).
    pub fn stepping_now(&self) -> Option<String> {
        for _ in 0..4 {
            let before = self.name_seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let len = self.name_len.load(Ordering::Relaxed) as usize;
            let mut bytes = [0u8; NAME_BYTES_MAX];
            for (i, word) in self.name.iter().enumerate() {
                bytes[i * 8..i * 8 + 8]
                    .copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            fence(Ordering::Acquire);
            if self.name_seq.load(Ordering::Relaxed) != before {
                continue;
            }
            if len == 0 {
                return None;
            }
            return Some(String::from_utf8_lossy(&bytes[..len.min(NAME_BYTES_MAX)]).into_owned());
        }
        None
    }

    /// The watchdog's verdict: stuck since `ms` (0: not stuck).
    pub fn set_stuck_since(&self, ms: u64) {
        self.stuck_since_ms.store(ms, Ordering::Release);
    }

    /// Since when the watchdog sees this shard stuck (`Beats::ms` scale).
    pub fn stuck_since_ms(&self) -> Option<u64> {
        match self.stuck_since_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// What the shard was stepping when it was found stuck.
    pub fn set_stuck_instance(&self, instance: Option<String>) {
        *self
            .stuck_instance
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = instance;
    }

    pub fn stuck_instance(&self) -> Option<String> {
        self.stuck_instance
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Times the listener was taken out of the group.
    pub fn removals(&self) -> u64 {
        self.removed.load(Ordering::Acquire)
    }

    /// The watchdog took the listener out of the group.
    pub fn mark_removed(&self) {
        self.removed.fetch_add(1, Ordering::AcqRel);
    }

    /// The shard put a listener back in the group (`seen`: the removals
    /// it answered, read before it bound the new one).
    pub fn mark_rejoined(&self, seen: u64) {
        self.rejoined.store(seen, Ordering::Release);
    }

    /// The listener is out of the SO_REUSEPORT group (removed, not rejoined).
    pub fn out_of_group(&self) -> bool {
        self.removed.load(Ordering::Acquire) != self.rejoined.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stepping_name_is_read_back_and_cleared() {
        let beats = Beats::new(1);
        let b = &beats.shards[0];
        assert_eq!(b.stepping_now(), None);
        b.stepping("lobby-42");
        assert_eq!(b.stepping_now().as_deref(), Some("lobby-42"));
        let long = "x".repeat(64);
        b.stepping(&long);
        assert_eq!(b.stepping_now(), Some(long));
        b.stepping("a");
        assert_eq!(
            b.stepping_now().as_deref(),
            Some("a"),
            "no tail of the longer name"
        );
        b.stepped();
        assert_eq!(b.stepping_now(), None);
    }

    #[test]
    fn removal_and_rejoin_are_counted_by_their_own_writers() {
        let beats = Beats::new(1);
        let b = &beats.shards[0];
        assert!(!b.out_of_group());
        b.mark_removed();
        assert!(b.out_of_group());
        b.mark_rejoined(b.removals());
        assert!(!b.out_of_group());
        assert_eq!(b.finished_ms(), 0);
        let t = Instant::now();
        let ms = beats.ms(t);
        b.finished(ms);
        assert_eq!(b.finished_ms(), ms);
        assert!(beats.instant(ms) <= t);
    }
}
