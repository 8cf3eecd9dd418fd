//! Areas of interest (protocol v2): which entities each player is sent, and
//! which of them change in this update.
//!
//! Each tick the instance's entities go into a uniform grid over its bounds
//! (cells as wide as the radius, so a query looks at 3 × 3 cells). For one
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
//! - an entity new to the player enters only when selected (it ages as if
//!   [`ENTER_AGE`] ticks old), one that left the area is removed.
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

/// The instance's entities by cell, rebuilt every tick (buffers reused).
#[derive(Debug, Default)]
pub struct Grid {
    cell: f32,
    cols: usize,
    rows: usize,
    /// Indices into the tick's entities, per cell (row-major).
    cells: Vec<Vec<u32>>,
}

fn units(q: i32) -> f32 {
    (f64::from(q) / POSITION_SCALE) as f32
}

impl Grid {
    /// Files `entities` into cells of `radius × LEAVE_FACTOR` over
    /// `bounds` (entities outside the bounds go to the edge cells).
    pub fn rebuild(&mut self, entities: &[QEntity], bounds: (f32, f32), radius: f32) {
        let (w, h) = (bounds.0.max(1.0), bounds.1.max(1.0));
        let side_max = GRID_CELLS_PER_SIDE_MAX as f32;
        self.cell = (radius * LEAVE_FACTOR).max(w / side_max).max(h / side_max).max(1.0);
        self.cols = ((w / self.cell).ceil() as usize).clamp(1, GRID_CELLS_PER_SIDE_MAX);
        self.rows = ((h / self.cell).ceil() as usize).clamp(1, GRID_CELLS_PER_SIDE_MAX);
        let n = self.cols * self.rows;
        self.cells.truncate(n);
        for c in &mut self.cells {
            c.clear();
        }
        self.cells.resize_with(n, Vec::new);
        for (i, e) in entities.iter().enumerate() {
            let (cx, cy) = self.cell_of(units(e.x), units(e.y));
            self.cells[cy * self.cols + cx].push(i as u32);
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

    /// Indices of the entities in the cells around (x, y) that may lie
    /// within one cell's width (a superset: callers check the distance).
    fn around(&self, x: f32, y: f32, out: &mut Vec<u32>) {
        let (cx, cy) = self.cell_of(x, y);
        for gy in cy.saturating_sub(1)..=(cy + 1).min(self.rows - 1) {
            for gx in cx.saturating_sub(1)..=(cx + 1).min(self.cols - 1) {
                out.extend_from_slice(&self.cells[gy * self.cols + gx]);
            }
        }
    }
}

/// Reused buffers of [`select`].
#[derive(Debug, Default)]
pub struct SelectScratch {
    near: Vec<u32>,
    /// (priority, index into the tick's entities) of entities to update.
    wanting: Vec<(f32, u32)>,
    chosen: Vec<bool>,
}

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
    let dist = |e: &QEntity| {
        let (dx, dy) = (units(e.x) - ox, units(e.y) - oy);
        (dx * dx + dy * dy).sqrt()
    };
    // Candidates: indices into `ents`, ascending (so by id).
    let near = &mut scratch.near;
    near.clear();
    let radius = interest.radius;
    match grid {
        Some(g) if radius > 0.0 => {
            g.around(ox, oy, near);
            near.sort_unstable();
            let keep = radius * LEAVE_FACTOR;
            near.retain(|&i| {
                let e = &ents[i as usize];
                let d = dist(e);
                Some(i as usize) == own_at
                    || d <= radius
                    || (d <= keep && base.is_some_and(|b| b.find(e.id).is_some()))
            });
        }
        _ => near.extend(0..ents.len() as u32),
    }
    let scale = if radius > 0.0 {
        radius / 4.0
    } else {
        DISTANCE_SCALE_WHOLE
    };
    // Which candidates differ from what the player holds.
    let wanting = &mut scratch.wanting;
    wanting.clear();
    for &i in near.iter() {
        let e = &ents[i as usize];
        let had = base.and_then(|b| b.find(e.id).map(|j| (b.entities[j], b.taken_at(j))));
        let priority = match had {
            Some((q, _)) if q == *e => continue,
            _ if Some(i as usize) == own_at => f32::INFINITY,
            Some((_, taken)) => (tick.saturating_sub(taken) + 1) as f32 / (1.0 + dist(e) / scale),
            None => (ENTER_AGE + 1) as f32 / (1.0 + dist(e) / scale),
        };
        wanting.push((priority, i));
    }
    let budget = interest.budget.max(Interest::BUDGET_MIN);
    let deferred = wanting.len().saturating_sub(budget);
    if deferred > 0 {
        // Highest priority first; ties by id, so the choice is stable.
        wanting.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        wanting.truncate(budget);
    }
    let chosen = &mut scratch.chosen;
    chosen.clear();
    chosen.resize(ents.len(), false);
    for &(_, i) in wanting.iter() {
        chosen[i as usize] = true;
    }
    let mut view = View {
        tick,
        entities: Vec::with_capacity(near.len()),
        taken: Vec::with_capacity(near.len()),
    };
    for &i in near.iter() {
        let e = &ents[i as usize];
        if chosen[i as usize] {
            view.entities.push(*e);
            view.taken.push(tick);
            continue;
        }
        match base.and_then(|b| b.find(e.id).map(|j| (b.entities[j], b.taken_at(j)))) {
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
            // New and not chosen: enters later.
            None => {}
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
