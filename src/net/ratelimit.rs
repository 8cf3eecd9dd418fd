//! Per-IP handshake rate limit (`--handshakes-per-ip-per-s`): a token bucket
//! per client address, per shard. Off by default: behind a load balancer
//! every connection comes from a few addresses, and limiting them would
//! limit everyone. Pure code: time is a parameter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Addresses tracked at most per shard (~48 B each); when full, buckets
/// that have refilled completely are dropped, and if none has, the new
/// address is refused (a spoofed-source flood cannot grow memory).
pub const TRACKED_IPS_MAX: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct HandshakeLimiter {
    rate_per_s: f64,
    burst: f64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl HandshakeLimiter {
    /// `rate_per_s` handshakes per second per address, bursts of twice that.
    pub fn new(rate_per_s: u32) -> Self {
        Self {
            rate_per_s: f64::from(rate_per_s),
            burst: f64::from(rate_per_s.max(1)) * 2.0,
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `ip`; false when it is over its rate.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= TRACKED_IPS_MAX {
            let (rate, burst) = (self.rate_per_s, self.burst);
            self.buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if self.buckets.len() >= TRACKED_IPS_MAX {
                return false;
            }
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate_per_s).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_per_address() {
        let t0 = Instant::now();
        let mut l = HandshakeLimiter::new(5);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            (0..12).filter(|_| l.admit(a, t0)).count(),
            10,
            "burst = 2 × rate"
        );
        assert!(l.admit(b, t0), "another address has its own bucket");
        assert!(!l.admit(a, t0));
        assert!(
            l.admit(a, t0 + Duration::from_millis(200)),
            "one token per 1/rate s"
        );
    }
}
