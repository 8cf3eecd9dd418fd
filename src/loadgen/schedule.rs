//! Intended send times, and which inputs a StateUpdate answers. Pure code:
//! time is a parameter, so both are tested without a clock.
//!
//! The schedule is open loop: the k-th message is due at `t0 + k × period`
//! whatever happened to the messages before it. Because of that, the
//! intended time of an input follows from its sequence number alone, and no
//! per-input record has to be kept while it waits for its update.
//!
//! Each player's input schedule has its own phase within the period
//! ([`spread_phase`], [`Schedule::phased`]), fixed against the run's time
//! zero, as real clients' frame timers are unrelated to each other and to
//! the server's tick. A schedule anchored at the moment a player became
//! ready (its Joined) would inherit the server's phase instead: a Joined
//! written by a tick puts every input of that player just behind the
//! tick's read of the inputs, to wait a whole tick each time (measured:
//! p50 33.7 ms instead of 20.8 at 200 players). /echo clients, which have
//! no tick to meet, are spread the same way from their upgrade.

use std::time::{Duration, Instant};

/// A fixed-rate send schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    t0: Instant,
    period_ns: u64,
    /// Messages taken so far; the next is due at `t0 + sent × period`.
    sent: u64,
}

impl Schedule {
    pub fn new(t0: Instant, period: Duration) -> Schedule {
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        Schedule {
            t0,
            period_ns,
            sent: 0,
        }
    }

    pub fn from_rate(t0: Instant, rate_hz: f64) -> Schedule {
        Schedule::new(t0, Duration::from_secs_f64(1.0 / rate_hz))
    }

    /// The schedule of connection `k` on the grid `origin + spread_phase(k)
    /// + j × period`, starting at the first grid time at or after
    /// `not_before` (a connection owes nothing from before it was ready).
    pub fn phased(origin: Instant, period: Duration, k: usize, not_before: Instant) -> Schedule {
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        let grid0 = origin + spread_phase(k, period);
        let late_ns = u64::try_from(not_before.saturating_duration_since(grid0).as_nanos())
            .unwrap_or(u64::MAX);
        let periods = late_ns.div_ceil(period_ns);
        Schedule::new(
            grid0 + Duration::from_nanos(periods.saturating_mul(period_ns)),
            period,
        )
    }

    /// Intended time of message `k` (0-based).
    pub fn due(&self, k: u64) -> Instant {
        self.t0 + Duration::from_nanos(self.period_ns.saturating_mul(k))
    }

    pub fn next_due(&self) -> Instant {
        self.due(self.sent)
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The next message's intended time, if it is due at `now` and before
    /// `end`; taking it advances the schedule. A late caller gets every
    /// overdue message, one call each: nothing is skipped.
    pub fn take_due(&mut self, now: Instant, end: Instant) -> Option<Instant> {
        let due = self.next_due();
        if due <= now && due < end {
            self.sent += 1;
            Some(due)
        } else {
            None
        }
    }
}

/// The offset of connection `k`'s schedule within `period`: the fractional
/// part of `k × φ` (φ the golden ratio) of a period. Any run of consecutive
/// connections — the 16 players of one instance, the first n of a ramp — is
/// then spread evenly over the period: n such points cut it into gaps of at
/// most three lengths, the largest under 2.7 / n of the period (the
/// three-distance theorem), where evenly spaced `k / n` would put each
/// instance's players side by side.
pub fn spread_phase(k: usize, period: Duration) -> Duration {
    // 2^64 / φ, rounded to odd: k × this, wrapping, is frac(k / φ) = frac(k × φ) in 2^-64 units.
    const GOLDEN_FRACTION: u64 = 0x9e37_79b9_7f4a_7c15;
    let frac = (k as u64).wrapping_mul(GOLDEN_FRACTION);
    let period_ns = period.as_nanos().min(u128::from(u64::MAX));
    Duration::from_nanos(((u128::from(frac) * period_ns) >> 64) as u64)
}

/// Inputs sent and not yet covered by a StateUpdate. Input `seq` (1-based)
/// is message `seq - 1` of the input schedule.
#[derive(Debug, Clone, Default)]
pub struct InputLedger {
    /// Highest seq sent.
    sent: u32,
    /// Highest seq an update has covered.
    acked: u32,
}

impl InputLedger {
    /// Records that input `seq` went out; seqs are sent in order from 1.
    pub fn sent(&mut self, seq: u32) {
        debug_assert_eq!(seq, self.sent + 1, "inputs are sent in order");
        self.sent = seq;
    }

    /// An update says inputs up to `last_seq` are applied: calls `covered`
    /// with the seq of each input it newly covers, oldest first. A
    /// `last_seq` above anything sent is clamped (returns how many seqs
    /// were claimed but never sent, so the caller can count it).
    pub fn ack(&mut self, last_seq: u32, mut covered: impl FnMut(u32)) -> u32 {
        let upto = last_seq.min(self.sent);
        for seq in self.acked + 1..=upto {
            covered(seq);
        }
        self.acked = self.acked.max(upto);
        last_seq.saturating_sub(self.sent)
    }

    /// Inputs still waiting for an update.
    pub fn unanswered(&self) -> u32 {
        self.sent - self.acked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_late_caller_gets_every_overdue_message_with_its_intended_time() {
        let t0 = Instant::now();
        let end = t0 + 1000 * MS;
        let mut s = Schedule::new(t0, 10 * MS);
        // Wakes 35 ms late: messages due at 0, 10, 20, 30 ms all go now.
        let due: Vec<Instant> = std::iter::from_fn(|| s.take_due(t0 + 35 * MS, end)).collect();
        assert_eq!(due, vec![t0, t0 + 10 * MS, t0 + 20 * MS, t0 + 30 * MS]);
        assert_eq!(s.next_due(), t0 + 40 * MS);
        assert_eq!(s.take_due(t0 + 39 * MS, end), None);
    }

    #[test]
    fn nothing_is_due_at_or_after_the_end() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * MS);
        let n = std::iter::from_fn(|| s.take_due(t0 + 500 * MS, t0 + 30 * MS)).count();
        assert_eq!(n, 3);
    }

    #[test]
    fn the_schedule_does_not_drift() {
        let t0 = Instant::now();
        let s = Schedule::from_rate(t0, 30.0);
        assert_eq!(
            s.due(30_000),
            t0 + Duration::from_nanos(33_333_333 * 30_000)
        );
    }

    #[test]
    fn phases_of_consecutive_connections_spread_over_the_period() {
        let period = Duration::from_nanos(33_333_333);
        for (first, n) in [(0, 16), (16, 16), (0, 600), (1000, 200)] {
            let mut phases: Vec<Duration> = (first..first + n)
                .map(|k| spread_phase(k, period))
                .collect();
            assert!(phases.iter().all(|p| *p < period));
            phases.sort();
            let wrap = phases[0] + period - phases[n - 1];
            let widest = phases
                .windows(2)
                .map(|w| w[1] - w[0])
                .chain([wrap])
                .max()
                .unwrap();
            // Evenly spaced would be period / n; the golden sequence stays
            // within 2.7× of it, so no stretch of the tick lacks inputs.
            assert!(
                widest.as_secs_f64() <= 2.7 * period.as_secs_f64() / n as f64,
                "{n} connections from {first}: widest gap {widest:?}"
            );
        }
    }

    #[test]
    fn a_phased_schedule_starts_on_its_grid_once_the_connection_is_ready() {
        let origin = Instant::now();
        let period = 10 * MS;
        let k = 3;
        let phase = spread_phase(k, period);
        // Ready before the first grid time: starts at it.
        let s = Schedule::phased(origin, period, k, origin);
        assert_eq!(s.next_due(), origin + phase);
        // Ready 25 ms in: the first grid time at or after that.
        let ready = origin + 25 * MS;
        let s = Schedule::phased(origin, period, k, ready);
        let first = s.next_due();
        assert!(first >= ready && first < ready + period);
        assert_eq!((first - origin - phase).as_nanos() % period.as_nanos(), 0);
        // Exactly on a grid time: that one.
        let s = Schedule::phased(origin, period, k, origin + phase + 20 * MS);
        assert_eq!(s.next_due(), origin + phase + 20 * MS);
    }

    #[test]
    fn an_update_covers_every_input_up_to_its_seq_once() {
        let mut l = InputLedger::default();
        for seq in 1..=10 {
            l.sent(seq);
        }
        let mut seen = Vec::new();
        assert_eq!(l.ack(4, |s| seen.push(s)), 0);
        assert_eq!(seen, vec![1, 2, 3, 4]);
        seen.clear();
        // An older update arriving late covers nothing new.
        l.ack(3, |s| seen.push(s));
        assert!(seen.is_empty());
        // The server dropped 5..=8 (over its per-tick limit); 9 covers them.
        l.ack(9, |s| seen.push(s));
        assert_eq!(seen, vec![5, 6, 7, 8, 9]);
        assert_eq!(l.unanswered(), 1);
    }

    #[test]
    fn a_seq_never_sent_is_clamped_and_reported() {
        let mut l = InputLedger::default();
        l.sent(1);
        let mut n = 0;
        assert_eq!(l.ack(5, |_| n += 1), 4);
        assert_eq!(n, 1);
        assert_eq!(l.unanswered(), 0);
    }
}
