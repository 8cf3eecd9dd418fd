//! Rate limits as pure code: time is a parameter.
//!
//! - [`RateWindow`]: at most `max` events per one-second window (the flood
//!   limit of a connection, `--messages-per-second-max`).
//! - [`TokenBucket`]: `rate_per_s` tokens per second with bursts of `burst`
//!   (handshakes per address, instance creation per connection and per
//!   address).

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

    /// Whether the bucket would be full at `now` (it can be forgotten).
    pub fn is_full(&self, rate_per_s: f64, burst: f64, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate_per_s >= burst
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
}
