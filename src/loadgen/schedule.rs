//! Intended send times, and which inputs a StateUpdate answers. Pure code:
//! time is a parameter, so both are tested without a clock.
//!
//! The schedule is open loop: the k-th message is due at `t0 + k × period`
//! whatever happened to the messages before it. Because of that, the
//! intended time of an input follows from its sequence number alone, and no
//! per-input record has to be kept while it waits for its update.

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
