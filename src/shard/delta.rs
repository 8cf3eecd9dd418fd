//! Protocol v2 on the server: what each v2 player was sent and has
//! acknowledged, so every update is a delta against a state the client
//! holds (docs/protocol.md, "Protocol version 2").
//!
//! A [`Peer`] keeps the views it was sent for its last
//! `--delta-history-ticks` ticks (a view is the player's world at that
//! tick: what it holds once it applied that update). The newest tick the
//! client acknowledged is its baseline; the next update is encoded against
//! it, or is a full state when there is none (no ack yet, or the acked
//! view is older than the history), counted by reason. After a Join, a
//! resume or a move a new `Peer` starts, so the first update is full.
//!
//! Memory per v2 player: at most `--delta-history-ticks` views (see
//! `config::delta_memory_bytes_per_player`); a view equal to the instance's
//! whole state is an `Rc` shared by every player of the instance.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::effects::Effects;
use super::interest::{select, whole_fits, SelectScratch};
use super::world::{Hosted, Player};
use crate::game::{Interest, PlayerId};
use crate::metrics::ShardMetrics;
use crate::protocol::delta::{encode_custom_patch, encode_entities, QEntity};
use crate::protocol::{CustomPart, Encoder, UpdateTemplate};

/// One tick's entities as one player holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// The tick of this view.
    pub tick: u64,
    /// Sorted by id.
    pub entities: Vec<QEntity>,
    /// The tick whose values each entity has (parallel to `entities`);
    /// empty when all are `tick`'s.
    pub taken: Vec<u64>,
    /// Entities in the area of interest that have not entered yet (the
    /// budget held them back), by id, with the tick they started waiting:
    /// not the client's, only for their priority.
    pub waiting: Vec<(u32, u64)>,
}

impl View {
    /// Index of entity `id`.
    pub fn find(&self, id: u32) -> Option<usize> {
        self.entities.binary_search_by_key(&id, |e| e.id).ok()
    }

    pub fn taken_at(&self, i: usize) -> u64 {
        self.taken.get(i).copied().unwrap_or(self.tick)
    }

    /// Since when entity `id` waits to enter, if it does.
    pub fn waiting_since(&self, id: u32) -> Option<u64> {
        self.waiting
            .binary_search_by_key(&id, |w| w.0)
            .ok()
            .map(|i| self.waiting[i].1)
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.entities.capacity() * std::mem::size_of::<QEntity>()
            + self.taken.capacity() * 8
            + self.waiting.capacity() * 16
    }
}

/// What one update gave a player.
#[derive(Debug, Clone)]
pub struct Sent {
    pub tick: u64,
    pub view: Rc<View>,
    /// The custom state at `tick` (shared by the instance's players).
    pub custom: Rc<[u8]>,
}

/// Why a v2 player gets a full state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullReason {
    Joined,
    Resumed,
    Moved,
    /// It acknowledged nothing yet.
    NoAck,
    /// Its acknowledged tick is older than the history.
    TooOld,
}

/// What an ack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The new baseline.
    Taken,
    /// The newest ack again: nothing to do.
    Same,
    /// A tick never sent (or no longer held), or older than the newest ack.
    Ignored,
}

/// One v2 player's deltas.
#[derive(Debug)]
pub struct Peer {
    /// Oldest first; the acknowledged one (if still held) is the front.
    sent: VecDeque<Sent>,
    acked: Option<u64>,
    /// Why its next update is full, when it is its first.
    first: Option<FullReason>,
}

impl Peer {
    /// A player whose next update is its first since `why`.
    pub fn new(why: FullReason) -> Peer {
        Peer {
            sent: VecDeque::new(),
            acked: None,
            first: Some(why),
        }
    }

    /// The client applied `tick`.
    pub fn ack(&mut self, tick: u64) -> AckOutcome {
        if let Some(a) = self.acked {
            if tick == a {
                return AckOutcome::Same;
            }
            if tick < a {
                return AckOutcome::Ignored;
            }
        }
        if !self.sent.iter().any(|s| s.tick == tick) {
            return AckOutcome::Ignored;
        }
        self.acked = Some(tick);
        while self.sent.front().is_some_and(|s| s.tick < tick) {
            self.sent.pop_front();
        }
        AckOutcome::Taken
    }

    /// The baseline of the update of `tick`: the acknowledged view, or why
    /// the update must be a full state.
    pub fn baseline(&mut self, tick: u64, history: u16) -> Result<&Sent, FullReason> {
        if let Some(why) = self.first.take() {
            return Err(why);
        }
        let Some(acked) = self.acked else {
            return Err(FullReason::NoAck);
        };
        match self.sent.front() {
            Some(s) if s.tick == acked && tick.saturating_sub(acked) <= u64::from(history) => Ok(s),
            _ => Err(FullReason::TooOld),
        }
    }

    /// Records the update of `s.tick`; the oldest view leaves when
    /// `history` are held.
    pub fn sent(&mut self, s: Sent, history: u16) {
        while self.sent.len() >= usize::from(history) {
            self.sent.pop_front();
        }
        self.sent.push_back(s);
    }

    /// Views held.
    pub fn held(&self) -> usize {
        self.sent.len()
    }

    /// The newest update sent.
    pub fn latest(&self) -> Option<&Sent> {
        self.sent.back()
    }

    pub fn acked(&self) -> Option<u64> {
        self.acked
    }
}

/// Reused buffers of [`send_deltas`] (one per shard).
#[derive(Default)]
pub struct DeltaScratch {
    select: SelectScratch,
    entities: Vec<u8>,
    patch: Vec<u8>,
    /// One player's copy, patched with its own fields.
    frame: Vec<u8>,
    /// Deltas of this tick that players with the same baseline share.
    shared: Vec<SharedDelta>,
    /// Their bytes.
    arena: Vec<u8>,
}

/// A delta of the instance's whole state against one baseline, encoded once
/// for every player that acknowledged that baseline.
struct SharedDelta {
    /// The baseline view's address (0: a full state).
    base: usize,
    at: std::ops::Range<usize>,
    template: UpdateTemplate,
}

/// The node's settings [`send_deltas`] follows.
#[derive(Debug, Clone, Copy)]
pub struct DeltaSettings {
    pub history: u16,
    /// What v2 clients see unless the game says otherwise.
    pub interest: Interest,
}

/// Sends every connected v2 player of `hosted` its StateDelta of the tick
/// just stepped (`custom`: the game's custom state of it); returns how many
/// were queued.
///
/// The instance's state is quantized once. When no radius applies and
/// every entity fits the budget, every player's view is that state itself
/// (one `Rc`), and players that acknowledged the same tick share one
/// encoded delta, each copy patched with its own `last_input_seq` and
/// `inputs_applied`; otherwise each player's view is selected
/// ([`super::interest::select`]) and encoded for it.
#[allow(clippy::too_many_arguments)]
pub fn send_deltas(
    fx: &mut dyn Effects,
    hosted: &mut Hosted,
    players: &mut HashMap<PlayerId, Player>,
    enc: &mut Encoder,
    metrics: &ShardMetrics,
    scratch: &mut DeltaScratch,
    custom: &[u8],
    settings: DeltaSettings,
) -> usize {
    let interest = hosted.inst.interest(settings.interest);
    let tick = hosted.inst.tick();
    let mut now = View {
        tick,
        entities: hosted
            .inst
            .entities()
            .iter()
            .map(QEntity::from_view)
            .collect(),
        taken: Vec::new(),
        waiting: Vec::new(),
    };
    if !now.entities.windows(2).all(|w| w[0].id < w[1].id) {
        now.entities.sort_by_key(|e| e.id);
        now.entities.dedup_by_key(|e| e.id);
    }
    let now = Rc::new(now);
    if *hosted.v2.custom != *custom {
        hosted.v2.custom = Rc::from(custom);
    }
    let custom = hosted.v2.custom.clone();
    let whole = whole_fits(&now, interest);
    let grid = if !whole && interest.radius > 0.0 {
        let bounds = hosted.inst.bounds();
        hosted
            .v2
            .grid
            .rebuild(&now.entities, bounds, interest.radius);
        Some(&hosted.v2.grid)
    } else {
        None
    };
    scratch.shared.clear();
    scratch.arena.clear();
    let mut sent = 0;
    for seat in hosted.inst.seats() {
        let Some(p) = players.get_mut(&seat.player) else {
            continue;
        };
        let (Some(conn), Some(peer)) = (p.conn, p.v2.as_mut()) else {
            continue;
        };
        let base = match peer.baseline(tick, settings.history) {
            Ok(s) => Some((s.view.clone(), s.tick, s.custom.clone())),
            Err(why) => {
                match why {
                    FullReason::Joined => &metrics.full_states_joined,
                    FullReason::Resumed => &metrics.full_states_resumed,
                    FullReason::Moved => &metrics.full_states_moved,
                    FullReason::NoAck => &metrics.full_states_no_ack,
                    FullReason::TooOld => &metrics.full_states_too_old,
                }
                .inc();
                None
            }
        };
        let base_key = base.as_ref().map_or(0, |b| Rc::as_ptr(&b.0) as usize);
        let view = if whole {
            now.clone()
        } else {
            let (view, selected) = select(
                &now,
                seat.entity,
                interest,
                grid,
                base.as_ref().map(|b| &*b.0),
                &mut scratch.select,
            );
            metrics.interest_deferred.add(selected.deferred as u64);
            Rc::new(view)
        };
        let hit = whole
            .then(|| scratch.shared.iter().find(|d| d.base == base_key))
            .flatten();
        let template = match hit {
            Some(d) => {
                scratch.frame.clear();
                scratch
                    .frame
                    .extend_from_slice(&scratch.arena[d.at.clone()]);
                d.template
            }
            None => {
                scratch.entities.clear();
                let empty = View::default();
                let base_view = base.as_ref().map_or(&empty, |b| &*b.0);
                encode_entities(&base_view.entities, &view.entities, &mut scratch.entities);
                let part = match &base {
                    None => CustomPart::Full(&custom),
                    Some((_, _, c)) if Rc::ptr_eq(c, &custom) || **c == *custom => {
                        CustomPart::Unchanged
                    }
                    Some((_, _, c)) => {
                        scratch.patch.clear();
                        encode_custom_patch(c, &custom, &mut scratch.patch);
                        if scratch.patch.len() < custom.len() {
                            CustomPart::Patch(&scratch.patch)
                        } else {
                            CustomPart::Full(&custom)
                        }
                    }
                };
                let base_tick = base.as_ref().map_or(0, |b| b.1);
                let (bytes, template) =
                    enc.state_delta_shared(tick, base_tick, &scratch.entities, part);
                metrics.delta_encodes.inc();
                scratch.frame.clear();
                scratch.frame.extend_from_slice(bytes);
                if whole {
                    let start = scratch.arena.len();
                    scratch.arena.extend_from_slice(bytes);
                    scratch.shared.push(SharedDelta {
                        base: base_key,
                        at: start..scratch.arena.len(),
                        template,
                    });
                }
                template
            }
        };
        template.patch(&mut scratch.frame, seat.last_input_seq, seat.inputs_applied);
        metrics.state_bytes.add(scratch.frame.len() as u64);
        peer.sent(
            Sent {
                tick,
                view,
                custom: custom.clone(),
            },
            settings.history,
        );
        fx.send_update(conn, &scratch.frame, &mut p.inputs_pending_since);
        sent += 1;
    }
    metrics.state_deltas.add(sent as u64);
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(tick: u64) -> Sent {
        Sent {
            tick,
            view: Rc::new(View {
                tick,
                ..View::default()
            }),
            custom: Rc::from(&[][..]),
        }
    }

    #[test]
    fn acks_pick_the_baseline_within_the_history() {
        let mut p = Peer::new(FullReason::Joined);
        assert_eq!(p.baseline(1, 4).err(), Some(FullReason::Joined));
        p.sent(sent(1), 4);
        assert_eq!(p.baseline(2, 4).err(), Some(FullReason::NoAck));
        p.sent(sent(2), 4);
        assert_eq!(p.ack(7), AckOutcome::Ignored, "never sent");
        assert_eq!(p.ack(1), AckOutcome::Taken);
        assert_eq!(p.ack(1), AckOutcome::Same);
        assert_eq!(p.baseline(3, 4).map(|s| s.tick), Ok(1));
        assert_eq!(p.ack(2), AckOutcome::Taken);
        assert_eq!(p.ack(1), AckOutcome::Ignored, "older than the newest");
        assert_eq!(p.held(), 1, "views before the ack are dropped");
        // The ack stalls: the history fills and the baseline leaves it.
        for t in 3..=6 {
            assert_eq!(p.baseline(t, 4).map(|s| s.tick), Ok(2));
            p.sent(sent(t), 4);
        }
        assert_eq!(p.held(), 4);
        assert_eq!(p.baseline(7, 4).err(), Some(FullReason::TooOld));
        p.sent(sent(7), 4);
        assert_eq!(p.ack(7), AckOutcome::Taken);
        assert_eq!(p.baseline(8, 4).map(|s| s.tick), Ok(7));
        // Too far behind, though still held.
        assert_eq!(p.baseline(12, 4).err(), Some(FullReason::TooOld));
    }
}
