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
