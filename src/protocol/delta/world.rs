//! A version-2 client's world: the states it rebuilt for its last
//! `delta_history_ticks` ticks, so any delta's baseline is at hand.

use std::collections::VecDeque;

use super::{apply_custom_patch, apply_entities, DeltaError, QEntity};

/// A StateDelta's fields, borrowed from its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaRef<'a> {
    pub tick: u64,
    /// 0: a full state.
    pub baseline_tick: u64,
    pub last_input_seq: u32,
    pub inputs_applied: u32,
    pub entities: &'a [u8],
    pub custom_full: Option<&'a [u8]>,
    pub custom_patch: Option<&'a [u8]>,
}

/// The world of one tick, as the client rebuilt it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickWorld {
    pub tick: u64,
    /// Sorted by id.
    pub entities: Vec<QEntity>,
    pub custom: Vec<u8>,
}

/// The ring of rebuilt worlds (newest last), at most `history` long.
#[derive(Debug)]
pub struct ClientWorld {
    ring: VecDeque<TickWorld>,
    history: usize,
}

impl ClientWorld {
    /// `history`: Welcome's `limits.delta_history_ticks` (at least 1).
    pub fn new(history: usize) -> ClientWorld {
        let history = history.max(1);
        ClientWorld {
            ring: VecDeque::with_capacity(history),
            history,
        }
    }

    /// Forgets every world (a new Joined: the ticks start over).
    pub fn clear(&mut self) {
        self.ring.clear();
    }

    /// The newest world.
    pub fn latest(&self) -> Option<&TickWorld> {
        self.ring.back()
    }

    /// The world of `tick`, if still held.
    pub fn at(&self, tick: u64) -> Option<&TickWorld> {
        self.ring.iter().find(|w| w.tick == tick)
    }

    /// Applies a delta: the world of `d.tick` joins the ring (the oldest
    /// leaves when it is full). Returns the new world. On error nothing
    /// changes.
    pub fn apply(&mut self, d: &DeltaRef<'_>) -> Result<&TickWorld, DeltaError> {
        if let Some(latest) = self.ring.back() {
            if d.tick <= latest.tick {
                return Err(DeltaError::TickNotAfter {
                    tick: d.tick,
                    latest: latest.tick,
                });
            }
        }
        let empty = TickWorld::default();
        let base = if d.baseline_tick == 0 {
            if d.custom_patch.is_some() {
                return Err(DeltaError::FullWithoutCustom);
            }
            &empty
        } else {
            self.at(d.baseline_tick)
                .ok_or(DeltaError::UnknownBaseline(d.baseline_tick))?
        };
        let mut world = TickWorld::default();
        apply_entities(&base.entities, d.entities, &mut world.entities)?;
        match (d.custom_full, d.custom_patch) {
            (Some(full), _) => {
                world.custom.clear();
                world.custom.extend_from_slice(full);
            }
            (None, Some(patch)) => apply_custom_patch(&base.custom, patch, &mut world.custom)?,
            (None, None) => {
                world.custom.clear();
                world.custom.extend_from_slice(&base.custom);
            }
        }
        world.tick = d.tick;
        if self.ring.len() >= self.history {
            self.ring.pop_front();
        }
        self.ring.push_back(world);
        Ok(self.ring.back().expect("just pushed"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::game::types::EntityView;
    use crate::protocol::delta::{encode_custom_patch, encode_entities, POSITION_ERROR_MAX};
    use crate::util::rng::Rng;

    /// A server in miniature: random worlds (spawns, despawns, moves of
    /// every field), deltas against the client's newest ack, updates lost
    /// at random and acks that stall; the client's world must be the
    /// server's within the documented precision at every tick it applied.
    #[test]
    fn random_worlds_acks_and_losses_rebuild_the_server_state() {
        const HISTORY: usize = 8;
        let mut rng = Rng::new(0xde17a);
        let mut world: BTreeMap<u32, EntityView> = BTreeMap::new();
        let mut custom: Vec<u8> = Vec::new();
        let mut next_id = 1;
        // What the server sent per tick: quantized entities and custom.
        let mut sent: VecDeque<(u64, Vec<QEntity>, Vec<u8>)> = VecDeque::new();
        let mut acked: Option<u64> = None;
        let mut client = ClientWorld::new(HISTORY);
        let (mut bytes, mut patch) = (Vec::new(), Vec::new());
        let (mut fulls, mut deltas) = (0, 0);
        let mut stall = 0;
        for tick in 1..=5000u64 {
            for _ in 0..rng.below(3) {
                let v = |rng: &mut Rng| rng.unit_f32() * 2000.0 - 1000.0;
                world.insert(
                    next_id,
                    EntityView {
                        id: next_id,
                        kind: rng.below(4) as u16,
                        flags: rng.below(2) as u16,
                        x: v(&mut rng),
                        y: v(&mut rng),
                        z: v(&mut rng) / 100.0,
                        vx: v(&mut rng) / 10.0,
                        vy: v(&mut rng) / 10.0,
                        facing: rng.unit_f32() * std::f32::consts::TAU,
                    },
                );
                next_id += 1 + rng.below(3) as u32;
            }
            if rng.below(2) == 0 && !world.is_empty() {
                let ids: Vec<u32> = world.keys().copied().collect();
                world.remove(&ids[rng.below(ids.len())]);
            }
            for e in world.values_mut() {
                match rng.below(4) {
                    0 => e.x += rng.unit_f32() - 0.5,
                    1 => e.vy = -e.vy,
                    2 => e.facing = rng.unit_f32() * 6.0,
                    _ => {}
                }
            }
            if rng.below(7) == 0 {
                custom.resize(rng.below(30), 1);
                if !custom.is_empty() {
                    let i = rng.below(custom.len());
                    custom[i] ^= 0x5a;
                }
            }
            let now: Vec<QEntity> = world.values().map(QEntity::from_view).collect();
            // The baseline: the newest ack, if within the history.
            let base = acked
                .filter(|a| tick - a <= HISTORY as u64)
                .and_then(|a| sent.iter().find(|s| s.0 == a));
            bytes.clear();
            patch.clear();
            let (baseline_tick, full, p) = match base {
                Some((t, ents, c)) => {
                    encode_entities(ents, &now, &mut bytes);
                    encode_custom_patch(c, &custom, &mut patch);
                    deltas += 1;
                    (*t, None, Some(&patch[..]))
                }
                None => {
                    encode_entities(&[], &now, &mut bytes);
                    fulls += 1;
                    (0, Some(&custom[..]), None)
                }
            };
            let d = DeltaRef {
                tick,
                baseline_tick,
                last_input_seq: 0,
                inputs_applied: 0,
                entities: &bytes,
                custom_full: full,
                custom_patch: p,
            };
            sent.push_back((tick, now.clone(), custom.clone()));
            while sent.len() > HISTORY {
                sent.pop_front();
            }
            if rng.below(5) == 0 {
                continue; // lost
            }
            let got = client.apply(&d).expect("applies");
            assert_eq!(got.custom, custom);
            assert_eq!(got.entities.len(), world.len());
            for (q, e) in got.entities.iter().zip(world.values()) {
                let v = q.to_view();
                assert_eq!((v.id, v.kind, v.flags), (e.id, e.kind, e.flags));
                for (a, b) in [
                    (v.x, e.x),
                    (v.y, e.y),
                    (v.z, e.z),
                    (v.vx, e.vx),
                    (v.vy, e.vy),
                ] {
                    assert!((a - b).abs() <= POSITION_ERROR_MAX + 1e-4, "{v:?} {e:?}");
                }
            }
            // Acks skip one tick in three, and now and then stall for
            // longer than the history.
            if stall > 0 {
                stall -= 1;
            } else if rng.below(100) == 0 {
                stall = HISTORY + 4;
            } else if rng.below(3) != 0 {
                acked = Some(tick);
            }
        }
        assert!(
            fulls > 10 && deltas > 1000,
            "fulls {fulls}, deltas {deltas}"
        );
    }

    #[test]
    fn a_delta_without_its_baseline_is_refused_and_changes_nothing() {
        let mut w = ClientWorld::new(4);
        let full = DeltaRef {
            tick: 5,
            baseline_tick: 0,
            last_input_seq: 0,
            inputs_applied: 0,
            entities: &[0, 0],
            custom_full: Some(&[1]),
            custom_patch: None,
        };
        w.apply(&full).unwrap();
        let orphan = DeltaRef {
            tick: 6,
            baseline_tick: 3,
            ..full
        };
        assert_eq!(w.apply(&orphan), Err(DeltaError::UnknownBaseline(3)));
        assert_eq!(
            w.apply(&DeltaRef { tick: 5, ..full }),
            Err(DeltaError::TickNotAfter { tick: 5, latest: 5 })
        );
        assert_eq!(w.latest().map(|l| l.tick), Some(5));
    }
}
