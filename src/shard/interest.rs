//! Areas of interest (protocol v2): which entities each player is sent, and
//! which of them change in this update.
//!
//! Each tick the instance's entities go into a uniform grid over its bounds
//! (cells half as wide as the leave margin, 1.25 × the radius), and every
//! occupied cell gets, once, the id-sorted list of the entities in the 5 × 5
//! cells around it: every player in that cell starts from that list. For one
//! player, [`select`] takes the entities within the radius of its own
//! (those it already holds stay until 1.25 × the radius, so an entity on
//! the edge does not flicker in and out), and builds the view it is sent:
//! - an entity whose values did not change since the player's baseline
//!   costs nothing and is up to date;
//! - of the others, at most `budget` are updated to their current values:
//!   the player's own entity first, then by priority, (ticks since the
//!   player's baseline got its values + 1) / (1 + distance / scale) — an
//!   entity not updated keeps its baseline values and grows older, so its
//!   turn comes: far entities update less often, never never;
//! - an entity new to the player enters only when selected: it starts as
//!   if [`ENTER_AGE`] ticks old and ages while it waits (the view remembers
//!   since when); one that left the area is removed.
//!
//! Pure: views in, a view out.

use std::rc::Rc;

use super::delta::View;
use crate::game::Interest;
use crate::protocol::delta::{QEntity, POSITION_SCALE};

/// An entity the player holds stays in its view until this many radii
/// away (hysteresis at the edge).
pub const LEAVE_FACTOR: f32 = 1.25;
/// The age an entity new to the player is given for its priority, ticks.
pub const ENTER_AGE: u64 = 4;
/// With no radius, distance weighs in per this many arena units.
pub const DISTANCE_SCALE_WHOLE: f32 = 100.0;
/// Grid cells per side, at most (a tiny radius in a huge world).
pub const GRID_CELLS_PER_SIDE_MAX: usize = 256;

/// Grid cells per leave margin (`radius × LEAVE_FACTOR`): a query then
/// looks at `2 × CELLS_PER_MARGIN + 1` cells a side.
const CELLS_PER_MARGIN: f32 = 2.0;

/// The instance's entities by cell, rebuilt every tick (buffers reused).
#[derive(Debug, Default)]
pub struct Grid {
    cell: f32,
    cols: usize,
    rows: usize,
    /// Cells a query reaches on each side of its own.
    reach: usize,
    /// Indices into the tick's entities, per cell (row-major).
    cells: Vec<Vec<u32>>,
    /// Per occupied cell: the indices in the cells within `reach`,
    /// ascending (so by id); empty for an empty cell.
    around: Vec<Vec<u32>>,
}

/// Arena units of a quantized position. The scale is a power of two, so
/// this multiplication is exact wherever the quantized value is (below
/// 2^24 steps, a world of 262,144 units).
fn units(q: i32) -> f32 {
    q as f32 * (1.0 / POSITION_SCALE as f32)
}

impl Grid {
    /// Files `entities` into cells of `radius × LEAVE_FACTOR / 2` over
    /// `bounds` (entities outside the bounds go to the edge cells), and
    /// lists what is around every occupied cell.
    pub fn rebuild(&mut self, entities: &[QEntity], bounds: (f32, f32), radius: f32) {
        let (w, h) = (bounds.0.max(1.0), bounds.1.max(1.0));
        let side_max = GRID_CELLS_PER_SIDE_MAX as f32;
        let margin = radius * LEAVE_FACTOR;
        self.cell = (margin / CELLS_PER_MARGIN)
            .max(w / side_max)
            .max(h / side_max)
            .max(1.0);
        self.reach = (margin / self.cell).ceil().max(1.0) as usize;
        self.cols = ((w / self.cell).ceil() as usize).clamp(1, GRID_CELLS_PER_SIDE_MAX);
        self.rows = ((h / self.cell).ceil() as usize).clamp(1, GRID_CELLS_PER_SIDE_MAX);
        let n = self.cols * self.rows;
        for list in [&mut self.cells, &mut self.around] {
            list.truncate(n);
            for c in list.iter_mut() {
                c.clear();
            }
            list.resize_with(n, Vec::new);
        }
        for (i, e) in entities.iter().enumerate() {
            let (cx, cy) = self.cell_of(units(e.x), units(e.y));
            self.cells[cy * self.cols + cx].push(i as u32);
        }
        for cy in 0..self.rows {
            for cx in 0..self.cols {
                let at = cy * self.cols + cx;
                if self.cells[at].is_empty() {
                    continue;
                }
                let mut list = std::mem::take(&mut self.around[at]);
                for gy in cy.saturating_sub(self.reach)..=(cy + self.reach).min(self.rows - 1) {
                    for gx in cx.saturating_sub(self.reach)..=(cx + self.reach).min(self.cols - 1) {
                        list.extend_from_slice(&self.cells[gy * self.cols + gx]);
                    }
                }
                list.sort_unstable();
                self.around[at] = list;
            }
        }
    }

    fn cell_of(&self, x: f32, y: f32) -> (usize, usize) {
        let c = |v: f32, n: usize| {
            if v.is_finite() && v > 0.0 {
                ((v / self.cell) as usize).min(n - 1)
            } else {
                0
            }
        };
        (c(x, self.cols), c(y, self.rows))
    }

    /// Indices of the entities that may lie within the leave margin of
    /// (x, y), ascending (a superset: callers check the distance): the
    /// cell's list when the cell is occupied (a player's own entity is in
    /// its cell), else gathered into `spare`.
    fn around<'a>(&'a self, x: f32, y: f32, spare: &'a mut Vec<u32>) -> &'a [u32] {
        let (cx, cy) = self.cell_of(x, y);
        let at = cy * self.cols + cx;
        if !self.cells[at].is_empty() {
            return &self.around[at];
        }
        spare.clear();
        for gy in cy.saturating_sub(self.reach)..=(cy + self.reach).min(self.rows - 1) {
            for gx in cx.saturating_sub(self.reach)..=(cx + self.reach).min(self.cols - 1) {
                spare.extend_from_slice(&self.cells[gy * self.cols + gx]);
            }
        }
        spare.sort_unstable();
        spare
    }
}

/// Reused buffers of [`select`].
#[derive(Debug, Default)]
pub struct SelectScratch {
    /// Candidates: indices into the tick's entities, ascending.
    near: Vec<u32>,
    /// Candidates gathered for a player whose cell is empty.
    spare: Vec<u32>,
    /// Per candidate: its index in the baseline view (`NOT_HELD`: none).
    held: Vec<u32>,
    /// Per candidate: its distance from the player's entity.
    dist: Vec<f32>,
    /// (priority, index into `near`) of entities to update.
    wanting: Vec<(f32, u32)>,
    /// Per candidate: updated in this view.
    chosen: Vec<bool>,
}

/// `SelectScratch::held` of a candidate the baseline does not hold.
const NOT_HELD: u32 = u32::MAX;

/// What [`select`] decided besides the view.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// Entities updated (or entered) in this view.
    pub updated: usize,
    /// Entities that changed but wait for a later update (budget).
    pub deferred: usize,
}

/// The view of the player whose entity is `own`, at `now.tick`: `now` is
/// the instance's whole state this tick (sorted by id), `base` the view the
/// player acknowledged (`None`: a full state), `grid` built from `now`
/// (`None` when `interest.radius` is 0).
pub fn select(
    now: &View,
    own: u32,
    interest: Interest,
    grid: Option<&Grid>,
    base: Option<&View>,
    scratch: &mut SelectScratch,
) -> (View, Selected) {
    let tick = now.tick;
    let ents = &now.entities;
    let own_at = ents.binary_search_by_key(&own, |e| e.id).ok();
    let (ox, oy) = own_at.map_or((0.0, 0.0), |i| (units(ents[i].x), units(ents[i].y)));
    let offset = |e: &QEntity| (units(e.x) - ox, units(e.y) - oy);
    let radius = interest.radius;
    let keep = radius * LEAVE_FACTOR;
    let SelectScratch {
        near,
        spare,
        held,
        dist,
        wanting,
        chosen,
    } = scratch;
    // Candidates: indices into `ents`, ascending (so by id). With a grid,
    // those of the player's cell's list within the leave margin by squared
    // distance (a little generous: the exact test below decides).
    near.clear();
    let limited = grid.is_some() && radius > 0.0;
    match grid {
        Some(g) if limited => {
            // In quantized steps, integer differences: no conversion per
            // candidate.
            let (qx, qy) = own_at.map_or((0, 0), |i| (ents[i].x, ents[i].y));
            let keep_q = f64::from(keep) * POSITION_SCALE;
            let keep_q_sq = keep_q * keep_q * (1.0 + 1e-4);
            near.extend(g.around(ox, oy, spare).iter().copied().filter(|&i| {
                let e = &ents[i as usize];
                let dx = (i64::from(e.x) - i64::from(qx)) as f64;
                let dy = (i64::from(e.y) - i64::from(qy)) as f64;
                dx * dx + dy * dy <= keep_q_sq || Some(i as usize) == own_at
            }));
        }
        _ => near.extend(0..ents.len() as u32),
    }
    // One walk beside the baseline (both ascending by id): what the player
    // holds of each candidate, and which candidates stay.
    held.clear();
    dist.clear();
    let mut at = 0;
    let mut kept = 0;
    for k in 0..near.len() {
        let i = near[k];
        let e = &ents[i as usize];
        let h = match base {
            Some(b) => {
                while at < b.entities.len() && b.entities[at].id < e.id {
                    at += 1;
                }
                (at < b.entities.len() && b.entities[at].id == e.id).then_some(at)
            }
            None => None,
        };
        let (dx, dy) = offset(e);
        let d = (dx * dx + dy * dy).sqrt();
        if limited && Some(i as usize) != own_at && d > radius && !(d <= keep && h.is_some()) {
            continue;
        }
        near[kept] = i;
        kept += 1;
        held.push(h.map_or(NOT_HELD, |h| h as u32));
        dist.push(d);
    }
    near.truncate(kept);
    let holding = |k: usize| {
        let h = held[k];
        let b = base.filter(|_| h != NOT_HELD)?;
        Some((b.entities[h as usize], b.taken_at(h as usize)))
    };
    let scale = if radius > 0.0 {
        radius / 4.0
    } else {
        DISTANCE_SCALE_WHOLE
    };
    // Which candidates differ from what the player holds.
    wanting.clear();
    for (k, &i) in near.iter().enumerate() {
        let e = &ents[i as usize];
        let priority = match holding(k) {
            Some((q, _)) if q == *e => continue,
            _ if Some(i as usize) == own_at => f32::INFINITY,
            Some((_, taken)) => (tick.saturating_sub(taken) + 1) as f32 / (1.0 + dist[k] / scale),
            None => {
                let since = base.and_then(|b| b.waiting_since(e.id)).unwrap_or(tick);
                (tick.saturating_sub(since) + ENTER_AGE + 1) as f32 / (1.0 + dist[k] / scale)
            }
        };
        wanting.push((priority, k as u32));
    }
    let budget = interest.budget.max(Interest::BUDGET_MIN);
    let deferred = wanting.len().saturating_sub(budget);
    if deferred > 0 {
        // The `budget` of highest priority; ties by id (candidates are in id
        // order), so the choice is stable. Only the set matters, not its
        // order.
        wanting.select_nth_unstable_by(budget - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        wanting.truncate(budget);
    }
    chosen.clear();
    chosen.resize(near.len(), false);
    for &(_, k) in wanting.iter() {
        chosen[k as usize] = true;
    }
    let mut view = View {
        tick,
        entities: Vec::with_capacity(near.len()),
        taken: Vec::with_capacity(near.len()),
        waiting: Vec::new(),
    };
    for (k, &i) in near.iter().enumerate() {
        let e = &ents[i as usize];
        if chosen[k] {
            view.entities.push(*e);
            view.taken.push(tick);
            continue;
        }
        match holding(k) {
            // Unchanged: up to date now.
            Some((q, _)) if q == *e => {
                view.entities.push(q);
                view.taken.push(tick);
            }
            // Changed, waiting for its turn: the values the player holds.
            Some((q, taken)) => {
                view.entities.push(q);
                view.taken.push(taken);
            }
            // New and not chosen: enters later, older by then.
            None => {
                let since = base.and_then(|b| b.waiting_since(e.id)).unwrap_or(tick);
                view.waiting.push((e.id, since));
            }
        }
    }
    let selected = Selected {
        updated: wanting.len(),
        deferred,
    };
    (view, selected)
}

/// The whole state is what the player gets when no radius limits it and
/// every entity fits the budget: then every such player shares one view.
pub fn whole_fits(now: &Rc<View>, interest: Interest) -> bool {
    interest.radius <= 0.0 && now.entities.len() <= interest.budget
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::delta::quantize;

    fn at(id: u32, x: f32, y: f32) -> QEntity {
        QEntity {
            id,
            kind: 1,
            x: quantize(x),
            y: quantize(y),
            ..QEntity::default()
        }
    }

    fn view(tick: u64, entities: Vec<QEntity>) -> View {
        View {
            tick,
            entities,
            taken: Vec::new(),
            waiting: Vec::new(),
        }
    }

    fn ids(v: &View) -> Vec<u32> {
        v.entities.iter().map(|e| e.id).collect()
    }

    fn pick(now: &View, own: u32, i: Interest, base: Option<&View>) -> (View, Selected) {
        let mut grid = Grid::default();
        grid.rebuild(&now.entities, (1000.0, 1000.0), i.radius);
        let g = (i.radius > 0.0).then_some(&grid);
        select(now, own, i, g, base, &mut SelectScratch::default())
    }

    const NEAR: Interest = Interest {
        radius: 100.0,
        budget: 64,
    };

    #[test]
    fn entities_enter_within_the_radius_and_leave_beyond_its_margin() {
        // Own at (500, 500); 2 inside, 3 just outside, 4 far away.
        let now = view(
            1,
            vec![
                at(1, 500.0, 500.0),
                at(2, 550.0, 500.0),
                at(3, 610.0, 500.0),
                at(4, 900.0, 900.0),
            ],
        );
        let (v1, _) = pick(&now, 1, NEAR, None);
        assert_eq!(ids(&v1), [1, 2], "enter: only within the radius");
        // 2 moves out to 110 (inside the 1.25 margin): it stays; 3 (held by
        // nobody) at 110 does not enter.
        let now = view(
            2,
            vec![
                at(1, 500.0, 500.0),
                at(2, 610.0, 500.0),
                at(3, 610.0, 501.0),
            ],
        );
        let (v2, _) = pick(&now, 1, NEAR, Some(&v1));
        assert_eq!(ids(&v2), [1, 2]);
        // Beyond 125: it leaves.
        let now = view(3, vec![at(1, 500.0, 500.0), at(2, 630.0, 500.0)]);
        let (v3, _) = pick(&now, 1, NEAR, Some(&v2));
        assert_eq!(ids(&v3), [1]);
        // And a whole-instance interest sees every entity.
        let whole = Interest {
            radius: 0.0,
            budget: 64,
        };
        let now = view(4, vec![at(1, 0.0, 0.0), at(9, 999.0, 999.0)]);
        assert_eq!(ids(&pick(&now, 1, whole, None).0), [1, 9]);
    }

    #[test]
    fn the_budget_updates_own_first_then_nearer_then_older() {
        let budget = Interest {
            radius: 0.0,
            budget: 3,
        };
        // Own (id 9) and six others at growing distances; nothing held.
        let mut ents: Vec<QEntity> = (1..=6)
            .map(|i| at(i, 500.0 + 40.0 * i as f32, 500.0))
            .collect();
        ents.push(at(9, 500.0, 500.0));
        let now = view(10, ents.clone());
        let (v, s) = pick(&now, 9, budget, None);
        assert_eq!(ids(&v), [1, 2, 9], "own, then the two nearest enter");
        assert_eq!((s.updated, s.deferred), (3, 4));
        // All held, all moved: equal age, so the nearest go first; the
        // others keep the values held.
        let held = view(10, ents.clone());
        let moved: Vec<QEntity> = ents.iter().map(|e| QEntity { y: e.y + 64, ..*e }).collect();
        let now = view(11, moved.clone());
        let (v, s) = pick(&now, 9, budget, Some(&held));
        assert_eq!(s.deferred, 4);
        let updated: Vec<u32> = v
            .entities
            .iter()
            .zip(&moved)
            .filter(|(a, b)| a == b)
            .map(|(a, _)| a.id)
            .collect();
        assert_eq!(updated, [1, 2, 9]);
        assert_eq!(
            v.entities[5], held.entities[5],
            "entity 6 keeps its held values"
        );
        assert_eq!(v.taken_at(5), 10);
        // An older one beats a nearer one: entity 6 last updated at tick 1.
        let mut old = held.clone();
        old.taken = vec![10, 10, 10, 10, 10, 1, 10];
        let (v, _) = pick(&now, 9, budget, Some(&old));
        let fresh: Vec<u32> = (0..v.entities.len())
            .filter(|&i| v.taken_at(i) == 11)
            .map(|i| v.entities[i].id)
            .collect();
        assert_eq!(fresh, [1, 6, 9]);
    }

    #[test]
    fn unchanged_entities_cost_nothing() {
        let ents: Vec<QEntity> = (1..=50).map(|i| at(i, i as f32 * 10.0, 0.0)).collect();
        let held = view(1, ents.clone());
        let now = view(2, ents);
        let (v, s) = pick(
            &now,
            1,
            Interest {
                radius: 0.0,
                budget: 2,
            },
            Some(&held),
        );
        assert_eq!((s.updated, s.deferred), (0, 0));
        assert_eq!(v.entities, held.entities);
        assert!((0..50).all(|i| v.taken_at(i) == 2), "up to date");
    }

    /// 200 entities all moving every tick, a budget of 8: every one is
    /// updated again within a bounded number of ticks (starvation-free),
    /// and near ones more often than far ones.
    #[test]
    fn far_entities_update_less_often_but_never_starve() {
        let interest = Interest {
            radius: 0.0,
            budget: 8,
        };
        let n = 200u32;
        let place = |t: u64, i: u32| {
            at(
                i,
                (i as f32 * 4.9 + t as f32) % 1000.0,
                (i * 37 % 1000) as f32,
            )
        };
        let mut base: Option<View> = None;
        let mut last_update = vec![0u64; n as usize + 1];
        let mut longest = vec![0u64; n as usize + 1];
        let mut updates = vec![0u64; n as usize + 1];
        let own = 1;
        let own_pos = |t: u64| place(t, own);
        let mut scratch = SelectScratch::default();
        for t in 1..=3000u64 {
            let now = view(t, (1..=n).map(|i| place(t, i)).collect());
            let (v, _) = select(&now, own, interest, None, base.as_ref(), &mut scratch);
            for (i, e) in v.entities.iter().enumerate() {
                let held = base
                    .as_ref()
                    .and_then(|b| b.find(e.id).map(|j| b.entities[j]));
                if v.taken_at(i) == t && held != Some(*e) {
                    let id = e.id as usize;
                    if t > 200 {
                        longest[id] = longest[id].max(t - last_update[id]);
                    }
                    last_update[id] = t;
                    updates[id] += 1;
                }
            }
            // The client acknowledges every update at once.
            base = Some(v);
        }
        let worst = longest.iter().max().copied().unwrap_or(0);
        assert!(worst > 0 && worst < 400, "an entity waited {worst} ticks");
        assert!((1..=n as usize).all(|i| updates[i] > 5), "{updates:?}");
        // Nearest and farthest from the player (at t = 3000).
        let me = own_pos(3000);
        let d = |i: u32| {
            let e = place(3000, i);
            ((e.x - me.x) as f64).hypot((e.y - me.y) as f64)
        };
        let mut others: Vec<u32> = (2..=n).collect();
        others.sort_by(|a, b| d(*a).total_cmp(&d(*b)));
        let near: u64 = others[..20].iter().map(|&i| updates[i as usize]).sum();
        let far: u64 = others[others.len() - 20..]
            .iter()
            .map(|&i| updates[i as usize])
            .sum();
        assert!(near > far, "near {near} updates, far {far}");
        assert_eq!(updates[own as usize], 3000, "own entity every tick");
    }
}
