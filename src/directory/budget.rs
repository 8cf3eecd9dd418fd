//! Replication within a budget: which instance replicas the agent writes,
//! and when. Pure code: time is a parameter.
//!
//! Shards report their instances' state every snapshot interval. Writing
//! each of them every time would cost the directory one write per instance
//! per interval — at a million players, most of what one Redis core
//! serves — although most instances either did not change since their
//! last replica (a lobby waiting, players idle) or can wait a little.
//! So:
//! - **unchanged instances are skipped**: a replica is compared with the
//!   last one written by a fingerprint of its world and seats (not its tick
//!   count, which moves every tick); equal means nothing to write;
//! - **changed instances queue**, one entry each (a newer state replaces
//!   the queued one and keeps its place), and leave the queue in order:
//!   instances that have no replica yet first, then changed ones by how long
//!   they have waited, then the ones due only for a seat refresh;
//! - **writes are paced**: at most `--replica-writes-per-s-max` per second,
//!   taken a few at a time every [`FLUSH_INTERVAL`] (a token bucket holding
//!   at most [`BURST_WINDOW`]'s worth, so a flush that comes late on a busy
//!   machine still uses the budget, and none is a burst), so they spread
//!   over the interval instead of arriving at Redis as one burst per
//!   interval.
//!
//! When the budget is smaller than what changes, replicas get older (the
//! oldest queued one's age is a gauge) — never more writes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::game::InstanceId;
use crate::snapshot::InstanceSnapshot;

/// How often the agent writes a batch of queued replicas.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// The most budget a flush may spend at once: this long's worth of writes.
pub const BURST_WINDOW: Duration = Duration::from_millis(100);
const _: () = assert!(FLUSH_INTERVAL.as_millis() <= BURST_WINDOW.as_millis());
pub use crate::config::directory::REPLICA_WRITES_PER_S_MAX_DEFAULT;

/// A stable fingerprint of what a restore would rebuild, tick excluded.
pub fn fingerprint(snap: &InstanceSnapshot) -> u64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(snap.state.len() as u64).to_le_bytes());
    h.update(&snap.state);
    let mut g = crc32fast::Hasher::new();
    for s in &snap.seats {
        g.update(&s.player.to_le_bytes());
        g.update(&s.entity.to_le_bytes());
        g.update(&(s.name.len() as u32).to_le_bytes());
        g.update(s.name.as_bytes());
        g.update(&(s.token.len() as u32).to_le_bytes());
        g.update(s.token.as_bytes());
        g.update(&s.last_input_seq.to_le_bytes());
    }
    (u64::from(h.finalize()) << 32) | u64::from(g.finalize())
}

/// Why an entry waits, in the order entries leave the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// The directory holds no replica of it (new, or lost in a failover).
    Unreplicated,
    Changed,
    /// Unchanged, but its seats' records need their expiry pushed back.
    SeatRefresh,
}

type Key = (Class, Instant, u64);

struct Queued {
    key: Key,
    snap: InstanceSnapshot,
    fingerprint: u64,
}

/// What [`ReplicaQueue::offer`] did with a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Replaced a queued state of the same instance that was never written.
    Superseded,
    /// Equal to the replica written last: nothing to do.
    Unchanged,
}

/// One write to make.
#[derive(Debug)]
pub struct Due {
    pub id: InstanceId,
    pub snap: InstanceSnapshot,
    pub fingerprint: u64,
    /// `false`: only the seats' records are written (the world did not change).
    pub with_world: bool,
}

pub struct ReplicaQueue {
    rate_per_s: f64,
    tokens: f64,
    refilled_at: Instant,
    order: BTreeMap<Key, InstanceId>,
    queued: HashMap<InstanceId, Queued>,
    /// Fingerprint and time of the last replica written, per instance.
    written: HashMap<InstanceId, (u64, Instant)>,
    seq: u64,
}

impl ReplicaQueue {
    pub fn new(writes_per_s_max: u32, now: Instant) -> ReplicaQueue {
        assert!(
            writes_per_s_max > 0,
            "a zero budget is refused by the config"
        );
        ReplicaQueue {
            rate_per_s: f64::from(writes_per_s_max),
            tokens: 0.0,
            refilled_at: now,
            order: BTreeMap::new(),
            queued: HashMap::new(),
            written: HashMap::new(),
            seq: 0,
        }
    }

    /// Most writes one flush may make: [`BURST_WINDOW`]'s worth, at least one.
    fn burst(&self) -> f64 {
        (self.rate_per_s * BURST_WINDOW.as_secs_f64()).max(1.0)
    }

    /// A shard's latest state of `id`. `seat_refresh`: how old a written
    /// replica may get before its seats are written again even unchanged.
    pub fn offer(
        &mut self,
        id: InstanceId,
        snap: InstanceSnapshot,
        now: Instant,
        seat_refresh: Duration,
    ) -> Offer {
        let fp = fingerprint(&snap);
        let class = match self.written.get(&id) {
            None => Class::Unreplicated,
            Some(&(f, _)) if f != fp => Class::Changed,
            Some(&(_, at)) if now.saturating_duration_since(at) >= seat_refresh => {
                Class::SeatRefresh
            }
            Some(_) => {
                // Back to what the directory holds: a queued newer state
                // (never written) is moot.
                if let Some(q) = self.queued.remove(&id) {
                    self.order.remove(&q.key);
                }
                return Offer::Unchanged;
            }
        };
        if let Some(q) = self.queued.get_mut(&id) {
            // Keeps its place; moves up if it now has more reason to go.
            if class < q.key.0 {
                self.order.remove(&q.key);
                q.key.0 = class;
                self.order.insert(q.key, id.clone());
            }
            q.snap = snap;
            q.fingerprint = fp;
            return Offer::Superseded;
        }
        self.seq += 1;
        let key = (class, now, self.seq);
        self.order.insert(key, id.clone());
        self.queued.insert(
            id,
            Queued {
                key,
                snap,
                fingerprint: fp,
            },
        );
        Offer::Queued
    }

    /// The writes the budget allows now, in queue order.
    pub fn take(&mut self, now: Instant) -> Vec<Due> {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.refilled_at = now;
        self.tokens = (self.tokens + self.rate_per_s * elapsed.as_secs_f64()).min(self.burst());
        // (A hair over, so float sums of whole tokens are not floored away.)
        let n = ((self.tokens + 1e-9).floor() as usize).min(self.queued.len());
        self.tokens -= n as f64;
        self.pop(n)
    }

    /// Everything queued, budget or not (a stopping node's final state).
    pub fn take_all(&mut self) -> Vec<Due> {
        self.pop(self.queued.len())
    }

    fn pop(&mut self, n: usize) -> Vec<Due> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some((key, id)) = self.order.pop_first() else {
                break;
            };
            let q = self.queued.remove(&id).expect("ordered entries are queued");
            out.push(Due {
                with_world: key.0 != Class::SeatRefresh,
                id,
                snap: q.snap,
                fingerprint: q.fingerprint,
            });
        }
        out
    }

    /// `due` is in the directory now.
    pub fn written(&mut self, due: &Due, now: Instant) {
        self.written.insert(due.id.clone(), (due.fingerprint, now));
    }

    /// The instance is no longer this node's: nothing of it is written.
    pub fn forget(&mut self, id: &InstanceId) {
        self.written.remove(id);
        if let Some(q) = self.queued.remove(id) {
            self.order.remove(&q.key);
        }
    }

    /// The directory may have lost what was written (a reconnect, maybe to
    /// a promoted replica): every instance is written again once.
    pub fn reset_written(&mut self) {
        self.written.clear();
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// How long the longest-waiting queued state has waited.
    pub fn oldest_age(&self, now: Instant) -> Duration {
        self.queued
            .values()
            .map(|q| now.saturating_duration_since(q.key.1))
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testutil;

    fn snap(id: &str, state: u8) -> (InstanceId, InstanceSnapshot) {
        let mut s = testutil::sample_shard(0, 1, 1, 1).instances.remove(0);
        s.id = id.into();
        s.state = vec![state; 8];
        (InstanceId::parse(id).unwrap(), s)
    }

    const REFRESH: Duration = Duration::from_secs(30);

    #[test]
    fn unchanged_instances_are_skipped_and_tick_does_not_count() {
        let t0 = Instant::now();
        let mut q = ReplicaQueue::new(1000, t0);
        let (id, s) = snap("a", 1);
        assert_eq!(q.offer(id.clone(), s.clone(), t0, REFRESH), Offer::Queued);
        let due = q.take(t0 + Duration::from_secs(1));
        assert_eq!(due.len(), 1);
        q.written(&due[0], t0);
        let mut later = s.clone();
        later.tick += 30;
        assert_eq!(q.offer(id.clone(), later, t0, REFRESH), Offer::Unchanged);
        assert!(q.is_empty());
        // Unchanged but old: only the seats go out again.
        let t1 = t0 + REFRESH;
        assert_eq!(q.offer(id.clone(), s.clone(), t1, REFRESH), Offer::Queued);
        let due = q.take(t1 + Duration::from_secs(1));
        assert!(!due[0].with_world);
        // After a reconnect everything is written again.
        q.written(&due[0], t1);
        q.reset_written();
        assert_eq!(q.offer(id, s, t1, REFRESH), Offer::Queued);
    }

    #[test]
    fn the_budget_bounds_writes_and_spreads_them() {
        let t0 = Instant::now();
        let mut q = ReplicaQueue::new(100, t0);
        for i in 0..50 {
            let (id, s) = snap(&format!("i{i}"), 1);
            q.offer(id, s, t0, REFRESH);
        }
        // 100/s: 2 per 20 ms flush; after a long gap at most 100 ms' worth.
        assert_eq!(q.take(t0 + FLUSH_INTERVAL).len(), 2);
        assert_eq!(q.take(t0 + Duration::from_secs(5)).len(), 10);
        // Over 0.3 s of flushes: 30 writes.
        let mut t = t0 + Duration::from_secs(5);
        let mut n = 0;
        for _ in 0..15 {
            t += FLUSH_INTERVAL;
            n += q.take(t).len();
        }
        assert_eq!(n, 30);
        // The 8 left over the next flushes.
        for _ in 0..10 {
            t += FLUSH_INTERVAL;
            q.take(t);
        }
        assert!(q.is_empty());
        // A tiny budget still writes one at a time.
        let mut slow = ReplicaQueue::new(1, t0);
        let (id, s) = snap("x", 1);
        slow.offer(id, s, t0, REFRESH);
        assert!(slow.take(t0 + FLUSH_INTERVAL).is_empty());
        assert_eq!(slow.take(t0 + Duration::from_secs(1)).len(), 1);
    }

    #[test]
    fn unreplicated_first_then_changed_by_age_then_refreshes() {
        let t0 = Instant::now();
        let mut q = ReplicaQueue::new(1000, t0);
        for (name, state) in [("old", 1), ("young", 1), ("idle", 1)] {
            let (id, s) = snap(name, state);
            q.offer(id, s, t0, REFRESH);
        }
        let first = q.take_all();
        for d in &first {
            q.written(d, t0);
        }
        let t1 = t0 + REFRESH;
        let (idle, s) = snap("idle", 1);
        q.offer(idle, s, t1, REFRESH); // refresh only
        let (old, s) = snap("old", 2);
        q.offer(old.clone(), s, t1, REFRESH);
        let (young, s) = snap("young", 2);
        q.offer(young, s, t1 + Duration::from_millis(5), REFRESH);
        let (new, s) = snap("new", 1);
        q.offer(new, s, t1 + Duration::from_millis(9), REFRESH);
        // A newer state of "old" keeps its place in the queue.
        let (_, s3) = snap("old", 3);
        assert_eq!(
            q.offer(old, s3, t1 + Duration::from_millis(10), REFRESH),
            Offer::Superseded
        );
        let order: Vec<String> = q
            .take_all()
            .into_iter()
            .map(|d| d.id.as_str().to_owned())
            .collect();
        assert_eq!(order, ["new", "old", "young", "idle"]);
    }

    #[test]
    fn a_world_at_rest_keeps_its_fingerprint_as_it_ticks() {
        use crate::game::{ArenaFactory, GameFactory, Instance, InstanceLimits, PlayerInput};
        let id = InstanceId::parse("rest").unwrap();
        let limits = InstanceLimits {
            players_max: 4,
            inputs_per_tick_max: 4,
        };
        let mut inst = Instance::new(id.clone(), ArenaFactory.create(&id), limits);
        inst.join(7, "p").unwrap();
        let input = PlayerInput {
            seq: 1,
            move_x: 1.0,
            move_y: 0.0,
            buttons: 0,
        };
        inst.push_input(7, input);
        let step = |inst: &mut Instance, n: u32| {
            for _ in 0..n {
                inst.step(1.0 / 30.0).unwrap();
            }
        };
        step(&mut inst, 30);
        let moving = fingerprint(&inst.save().unwrap());
        step(&mut inst, 1);
        assert_ne!(
            fingerprint(&inst.save().unwrap()),
            moving,
            "a moving disc changes it"
        );
        // 10 s: the disc reached the wall and stopped there.
        step(&mut inst, 300);
        let at_rest = inst.save().unwrap();
        step(&mut inst, 30);
        let later = inst.save().unwrap();
        assert_ne!(later.tick, at_rest.tick);
        assert_eq!(fingerprint(&later), fingerprint(&at_rest));
    }

    #[test]
    fn forgotten_instances_leave_the_queue() {
        let t0 = Instant::now();
        let mut q = ReplicaQueue::new(1000, t0);
        let (id, s) = snap("a", 1);
        q.offer(id.clone(), s, t0, REFRESH);
        assert_eq!(
            q.oldest_age(t0 + Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        q.forget(&id);
        assert!(q.take_all().is_empty());
        assert_eq!(q.oldest_age(t0), Duration::ZERO);
    }
}
