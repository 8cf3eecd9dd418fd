//! xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift
//! generators"): fast, non-cryptographic. Used for ids that must only be
//! distinct (instances, players), WebSocket masking keys of the load
//! generator, and deterministic test inputs. Resume tokens and other
//! secrets use the OS source instead.

/// A xorshift64* generator. The state is never zero.
#[derive(Debug, Clone, Copy)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (a zero seed is made odd: zero is a fixed point).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// A generator seeded from the OS random source.
    ///
    /// # Panics
    /// If the OS has no random source (not recoverable at start-up).
    pub fn from_os() -> Self {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("OS random source");
        Rng::new(u64::from_le_bytes(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`; slightly biased for huge `n`, which
    /// nothing here needs).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        (self.next_u64() % n as u64) as usize
    }

    /// A float in `[0, 1)`.
    pub fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_no_zero_state() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), 0, "a zero seed does not stick at zero");
        let distinct: std::collections::HashSet<u64> = xs.into_iter().collect();
        assert_eq!(distinct.len(), 100);
    }

    #[test]
    fn below_and_unit_stay_in_range() {
        let mut r = Rng::new(42);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
            let u = r.unit_f32();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
