//! Rate limits as pure code: time is a parameter.
//!
//! - [`RateWindow`]: at most `max` events per one-second window (the flood
//!   limit of a connection, `--messages-per-second-max`).
//! - [`TokenBucket`]: `rate_per_s` tokens per second with bursts of `burst`
//!   (handshakes per address, instance creation per connection and per
//!   address).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// At most `max` events in each one-second window; `max == 0` admits all.
#[derive(Debug, Default, Clone)]
pub struct RateWindow {
    max: u32,
    window_start: Option<Instant>,
    in_window: u32,
}

impl RateWindow {
    pub fn new(max: u32) -> Self {
        Self {
            max,
            window_start: None,
            in_window: 0,
        }
    }

    /// Counts one event at `now`; `false` when it is over the limit.
    pub fn admit(&mut self, now: Instant) -> bool {
        if self.max == 0 {
            return true;
        }
        match self.window_start {
            Some(t) if now.saturating_duration_since(t) < Duration::from_secs(1) => {
                self.in_window += 1
            }
            _ => {
                self.window_start = Some(now);
                self.in_window = 1;
            }
        }
        self.in_window <= self.max
    }
}

/// A token bucket: starts full (`burst` tokens), refills at `rate_per_s`.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, rate_per_s: f64, burst: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate_per_s).min(burst);
        self.at = now;
    }

    /// Takes `cost` tokens if there are that many; `false` otherwise.
    pub fn take(&mut self, cost: f64, rate_per_s: f64, burst: f64, now: Instant) -> bool {
        self.refill(rate_per_s, burst, now);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Takes `cost` tokens even if it leaves the bucket in debt (a penalty,
    /// e.g. for a room created and left at once).
    pub fn charge(&mut self, cost: f64, rate_per_s: f64, burst: f64, now: Instant) {
        self.refill(rate_per_s, burst, now);
        self.tokens -= cost;
    }

    /// Returns `cost` tokens taken by [`take`](Self::take) for something
    /// that did not happen after all (never above `burst`).
    pub fn give_back(&mut self, cost: f64, burst: f64) {
        self.tokens = (self.tokens + cost).min(burst);
    }

    /// Whether the bucket would be full at `now` (it can be forgotten).
    pub fn is_full(&self, rate_per_s: f64, burst: f64, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate_per_s >= burst
    }
}

/// A token bucket per key (per client address), at most `keys_max` of
/// them: when the map is full, buckets that have refilled completely are
/// forgotten, and if none has, a new key is refused — so a flood from many
/// addresses cannot grow memory beyond `keys_max` entries.
#[derive(Debug)]
pub struct KeyedBuckets<K> {
    rate_per_s: f64,
    burst: f64,
    keys_max: usize,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: Hash + Eq + Copy> KeyedBuckets<K> {
    pub fn new(rate_per_s: f64, burst: f64, keys_max: usize) -> Self {
        Self {
            rate_per_s,
            burst,
            keys_max,
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `key`; `false` when it is over its rate, or when
    /// the map is full of keys still refilling.
    pub fn take(&mut self, key: K, now: Instant) -> bool {
        let (rate, burst) = (self.rate_per_s, self.burst);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.keys_max {
            self.buckets.retain(|_, b| !b.is_full(rate, burst, now));
            if self.buckets.len() >= self.keys_max {
                return false;
            }
        }
        self.buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::full(burst, now))
            .take(1.0, rate, burst, now)
    }

    /// Returns a token taken for `key` (what it paid for did not happen).
    pub fn give_back(&mut self, key: K) {
        if let Some(b) = self.buckets.get_mut(&key) {
            b.give_back(1.0, self.burst);
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_admits_max_per_second_then_resets() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(3);
        assert_eq!((0..5).filter(|_| w.admit(t0)).count(), 3);
        assert!(w.admit(t0 + Duration::from_secs(1)), "a new window");
        let mut off = RateWindow::new(0);
        assert!((0..10_000).all(|_| off.admit(t0)));
    }

    #[test]
    fn bucket_bursts_refills_and_goes_into_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(4.0, t0);
        assert_eq!((0..6).filter(|_| b.take(1.0, 2.0, 4.0, t0)).count(), 4);
        assert!(
            b.take(1.0, 2.0, 4.0, t0 + Duration::from_millis(500)),
            "refilled one"
        );
        assert!(!b.take(1.0, 2.0, 4.0, t0 + Duration::from_millis(500)));
        b.charge(2.0, 2.0, 4.0, t0 + Duration::from_millis(500));
        assert!(
            !b.take(1.0, 2.0, 4.0, t0 + Duration::from_millis(1400)),
            "debt of 2 repaid at 2/s takes 1 s before the next token"
        );
        assert!(b.take(1.0, 2.0, 4.0, t0 + Duration::from_millis(2000)));
        assert!(b.is_full(2.0, 4.0, t0 + Duration::from_secs(10)));
    }

    #[test]
    fn keyed_buckets_are_per_key_and_bounded() {
        let t0 = Instant::now();
        let mut k = KeyedBuckets::new(1.0, 2.0, 2);
        assert!(k.take(1u8, t0) && k.take(1, t0));
        assert!(!k.take(1, t0), "key 1 spent its burst");
        assert!(k.take(2, t0), "key 2 has its own bucket");
        assert!(!k.take(3, t0), "full of keys still refilling: refused");
        k.give_back(1);
        assert!(k.take(1, t0), "a token given back");
        let later = t0 + Duration::from_secs(5);
        assert!(
            k.take(3, later),
            "refilled buckets are forgotten for new keys"
        );
        assert!(k.len() <= 2);
    }
}
