//! Per-IP handshake rate limit (`--handshakes-per-ip-per-s`): a token bucket
//! per client address, per shard. Off by default: behind a load balancer
//! every connection comes from a few addresses, and limiting them would
//! limit everyone. Pure code: time is a parameter.

use std::net::IpAddr;
use std::time::Instant;

use crate::util::rate::KeyedBuckets;

/// Addresses tracked at most per shard (~48 B each); when full, buckets
/// that have refilled completely are dropped, and if none has, the new
/// address is refused (a spoofed-source flood cannot grow memory).
pub const TRACKED_IPS_MAX: usize = 65_536;

#[derive(Debug)]
pub struct HandshakeLimiter(KeyedBuckets<IpAddr>);

impl HandshakeLimiter {
    /// `rate_per_s` handshakes per second per address, bursts of twice that.
    pub fn new(rate_per_s: u32) -> Self {
        let burst = f64::from(rate_per_s.max(1)) * 2.0;
        Self(KeyedBuckets::new(
            f64::from(rate_per_s),
            burst,
            TRACKED_IPS_MAX,
        ))
    }

    /// Takes a token for `ip`; false when it is over its rate.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.0.take(ip, now)
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
