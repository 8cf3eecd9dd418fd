//! Staggered ticks: the tick interval is divided into `--tick-slots` slots,
//! and every instance steps once per interval at its own slot's phase.
//!
//! A shard that stepped all its instances in one burst made every input
//! wait behind the whole burst, and wrote every update at once; with slots,
//! a shard's work and writes are spread over the interval and an input
//! waits only for its own instance's step. A new instance takes the slot
//! with the fewest players (then the fewest instances), so players per
//! slot stay balanced as instances come and go; an instance keeps its slot
//! for life, so its own step interval never changes. Pure code: time is a
//! parameter.
//!
//! Memory: one entry per instance in its slot's list (an id, ~32 B) and
//! two counters per slot.

use std::time::{Duration, Instant};

use crate::game::InstanceId;

pub use crate::config::TICK_SLOTS_MAX;

#[derive(Debug)]
pub struct Slots {
    interval: Duration,
    /// When slot 0 of cycle 0 fires.
    epoch: Instant,
    /// Seated players per slot.
    players: Vec<usize>,
    /// The instances stepping in each slot.
    members: Vec<Vec<InstanceId>>,
    /// The next slot to fire: cycle and slot index.
    next_cycle: u64,
    next_slot: usize,
}

impl Slots {
    /// `count` slots over `interval`; the first fires one interval after `now`.
    ///
    /// # Panics
    /// If `count` is 0 or above [`TICK_SLOTS_MAX`] (config refuses those).
    pub fn new(count: usize, interval: Duration, now: Instant) -> Self {
        assert!(
            (1..=TICK_SLOTS_MAX).contains(&count),
            "tick slots in 1..={TICK_SLOTS_MAX}"
        );
        Self {
            interval,
            epoch: now + interval,
            players: vec![0; count],
            members: vec![Vec::new(); count],
            next_cycle: 0,
            next_slot: 0,
        }
    }

    pub fn count(&self) -> usize {
        self.players.len()
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Offset of `slot` within the interval.
    pub fn offset(&self, slot: usize) -> Duration {
        self.interval * slot as u32 / self.count() as u32
    }

    /// Time between two consecutive slots.
    pub fn spacing(&self) -> Duration {
        self.interval / self.count() as u32
    }

    fn fire_time(&self, cycle: u64, slot: usize) -> Instant {
        self.epoch + self.interval * cycle as u32 + self.offset(slot)
    }

    /// The first time `slot` fires strictly after `now`.
    pub fn next_time_of(&self, slot: usize, now: Instant) -> Instant {
        let first = self.epoch + self.offset(slot);
        if now < first {
            return first;
        }
        let since = now.duration_since(first).as_nanos();
        let cycles = since / self.interval.as_nanos() + 1;
        first + Duration::from_nanos((cycles * self.interval.as_nanos()) as u64)
    }

    /// Chooses a slot for a new instance (fewest players, then fewest
    /// instances, then the lowest index) and returns it with the
    /// instance's first step time.
    pub fn assign(&mut self, id: &InstanceId, now: Instant) -> (usize, Instant) {
        let slot = (0..self.count())
            .min_by_key(|&s| (self.players[s], self.members[s].len(), s))
            .expect("at least one slot");
        self.members[slot].push(id.clone());
        (slot, self.next_time_of(slot, now))
    }

    /// The instance is gone (with `players` still seated, usually 0).
    pub fn release(&mut self, slot: usize, id: &InstanceId, players: usize) {
        if let Some(at) = self.members[slot].iter().position(|m| m == id) {
            self.members[slot].swap_remove(at);
        }
        self.players[slot] = self.players[slot].saturating_sub(players);
    }

    pub fn player_joined(&mut self, slot: usize) {
        self.players[slot] += 1;
    }

    pub fn player_left(&mut self, slot: usize) {
        self.players[slot] = self.players[slot].saturating_sub(1);
    }

    /// Seated players per slot.
    pub fn players(&self) -> &[usize] {
        &self.players
    }

    /// The instances of `slot`.
    pub fn members(&self, slot: usize) -> &[InstanceId] {
        &self.members[slot]
    }

    /// The next slot due, and when.
    pub fn next(&self) -> (Instant, usize) {
        (
            self.fire_time(self.next_cycle, self.next_slot),
            self.next_slot,
        )
    }

    /// The slot returned by [`Self::next`] has fired at `now`. When the
    /// shard fell a whole interval or more behind, the missed slots are
    /// skipped (their instances step once at their next turn, not in a
    /// burst of catch-up steps); returns how many were skipped.
    pub fn advance(&mut self, now: Instant) -> u64 {
        self.next_slot += 1;
        if self.next_slot == self.count() {
            self.next_slot = 0;
            self.next_cycle += 1;
        }
        let mut skipped = 0;
        while now.saturating_duration_since(self.fire_time(self.next_cycle, self.next_slot))
            >= self.interval
        {
            self.next_slot += 1;
            if self.next_slot == self.count() {
                self.next_slot = 0;
                self.next_cycle += 1;
            }
            skipped += 1;
        }
        skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_micros(33_333);

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    #[test]
    fn new_instances_take_the_lightest_slot() {
        let t0 = Instant::now();
        let mut s = Slots::new(4, TICK, t0);
        // Empty slots fill by instance count first.
        let first: Vec<usize> = (0..4)
            .map(|i| s.assign(&id(&format!("i{i}")), t0).0)
            .collect();
        assert_eq!(first, vec![0, 1, 2, 3]);
        // Players make slots heavy: 3 in slot 0, 1 in slot 1, 2 in slot 2.
        for (slot, n) in [(0, 3), (1, 1), (2, 2)] {
            (0..n).for_each(|_| s.player_joined(slot));
        }
        assert_eq!(s.assign(&id("new-a"), t0).0, 3, "slot 3 has nobody");
        s.player_joined(3);
        s.player_joined(3);
        assert_eq!(
            s.assign(&id("new-b"), t0).0,
            1,
            "then the slot with 1 player"
        );
        s.release(0, &id("i0"), 3);
        assert_eq!(s.players()[0], 0);
        assert!(s.members(0).is_empty());
        assert_eq!(s.assign(&id("new-c"), t0).0, 0);
    }

    #[test]
    fn slots_fire_in_order_spread_over_the_interval() {
        let t0 = Instant::now();
        let mut s = Slots::new(4, TICK, t0);
        let mut times = Vec::new();
        for _ in 0..8 {
            let (at, slot) = s.next();
            times.push((at, slot));
            assert_eq!(s.advance(at), 0);
        }
        assert_eq!(
            times.iter().map(|t| t.1).collect::<Vec<_>>(),
            [0, 1, 2, 3, 0, 1, 2, 3]
        );
        assert_eq!(times[0].0, t0 + TICK);
        for w in times.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!(
                gap.abs_diff(TICK / 4) <= Duration::from_micros(1),
                "{gap:?}"
            );
        }
        // An instance's first step is its slot's next firing.
        let (slot, due) = s.assign(&id("x"), t0 + TICK * 3);
        assert_eq!(due, s.next_time_of(slot, t0 + TICK * 3));
        assert!(due > t0 + TICK * 3 && due <= t0 + TICK * 4);
    }

    #[test]
    fn a_stall_skips_missed_slots_instead_of_bursting() {
        let t0 = Instant::now();
        let mut s = Slots::new(4, TICK, t0);
        let (at, _) = s.next();
        // The shard wakes 2.5 intervals late.
        let late = at + TICK * 5 / 2;
        let skipped = s.advance(late);
        assert!(skipped >= 6, "skipped {skipped}");
        let (next, _) = s.next();
        assert!(
            late.saturating_duration_since(next) < TICK,
            "the next slot is within an interval of now"
        );
    }
}
