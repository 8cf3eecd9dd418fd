//! The reference game: a walled 2D arena where each player steers one disc.
//!
//! An input sets the disc's direction (the axes, normalized when longer
//! than 1) at a fixed speed; `(0, 0)` stops it. Each step moves every disc
//! by its velocity and keeps it inside the walls, zeroing the velocity
//! component that hit one. Nothing collides with anything else: the arena
//! exists to exercise the server (inputs in, state out), not to be fun.
//!
//! Snapshots: the world derives rkyv's traits and is saved whole (discs and
//! the id counter); restoring validates the archive and the world's own
//! invariants (sorted unique ids, none above the counter, finite positions
//! inside the walls), so a bad snapshot is refused rather than half-trusted.
//!
//! # Settings
//!
//! Size, speed, disc radius, where players spawn and what the walls do are
//! [`ArenaSettings`], read from the `[game]` table of the config file or
//! `--game KEY=VALUE` flags ([`ArenaSettings::from_table`]), so a benchmark
//! can match another framework's scenario. The defaults are the constants
//! below. Settings are the server's, not the world's: a snapshot keeps the
//! discs only, and a restored world takes the settings in force (a disc
//! outside smaller walls is refused).

use std::f32::consts::TAU;

use super::rules::{restore_archived, save_archived, Game, GameFactory};
use super::types::{EntityId, EntityView, InstanceId, PlayerId, PlayerInput};

/// Width of the arena, in game units (x grows to the right).
pub const ARENA_WIDTH: f32 = 1000.0;
/// Height of the arena, in game units.
pub const ARENA_HEIGHT: f32 = 1000.0;
/// Speed of a player moving at full stick, in game units per second.
pub const PLAYER_SPEED_PER_S: f32 = 200.0;
/// Radius of a player's disc, in game units; the walls stop its edge.
pub const PLAYER_RADIUS: f32 = 10.0;
/// `EntityView::kind` of a player's disc (the arena has no other kind).
pub const ENTITY_KIND_PLAYER: u16 = 1;

/// Spawn points sit on concentric rings around the centre, this many per
/// ring, so that players joining together do not start on top of each other.
const SPAWN_SLOTS_PER_RING: u32 = 12;
/// Number of rings; after `SPAWN_SLOTS_PER_RING × SPAWN_RINGS` spawns the
/// points scatter over the whole arena (a large instance: see
/// `spawn_point`).
const SPAWN_RINGS: u32 = 4;
/// Distance between rings (and from the centre to the first), in game units.
const SPAWN_RING_GAP: f32 = 100.0;

// The outermost ring must lie inside the walls.
const _: () = assert!(
    (SPAWN_RINGS as f32) * SPAWN_RING_GAP + PLAYER_RADIUS <= ARENA_WIDTH / 2.0
        && (SPAWN_RINGS as f32) * SPAWN_RING_GAP + PLAYER_RADIUS <= ARENA_HEIGHT / 2.0
);

/// Where players appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spawn {
    /// On concentric rings around the centre (12 per ring, 4 rings).
    #[default]
    Rings,
    /// All at the centre.
    Centre,
    /// Scattered over the arena (a hash of the entity id: deterministic).
    Scatter,
}

/// What the walls do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Walls {
    /// Stop a disc (its velocity component into the wall becomes 0).
    #[default]
    Solid,
    /// A disc leaving one side comes back on the other.
    Wrap,
}

/// The arena's rules: size, speed, disc radius, spawn, walls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArenaSettings {
    /// Game units.
    pub width: f32,
    pub height: f32,
    /// Game units per second at full stick.
    pub speed: f32,
    /// Disc radius, game units.
    pub radius: f32,
    pub spawn: Spawn,
    pub walls: Walls,
}

impl Default for ArenaSettings {
    fn default() -> Self {
        Self {
            width: ARENA_WIDTH,
            height: ARENA_HEIGHT,
            speed: PLAYER_SPEED_PER_S,
            radius: PLAYER_RADIUS,
            spawn: Spawn::Rings,
            walls: Walls::Solid,
        }
    }
}

impl ArenaSettings {
    /// Settings from a `[game]` table: `width`, `height`, `speed`,
    /// `radius` (numbers), `spawn` (`rings`, `centre`, `scatter`), `walls`
    /// (`solid`, `wrap`); a missing key keeps its default, an unknown key
    /// or a bad value is an error naming it.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let mut s = Self::default();
        for (key, value) in table {
            let number = || -> Result<f32, String> {
                let v = value
                    .as_float()
                    .or_else(|| value.as_integer().map(|i| i as f64))
                    .ok_or_else(|| format!("game setting {key}: {value} is not a number"))?;
                let v = v as f32;
                if !(v.is_finite() && v > 0.0) {
                    return Err(format!("game setting {key}: must be a positive number"));
                }
                Ok(v)
            };
            let word = || value.as_str().unwrap_or_default();
            match key.as_str() {
                "width" => s.width = number()?,
                "height" => s.height = number()?,
                "speed" => s.speed = number()?,
                "radius" => s.radius = number()?,
                "spawn" => {
                    s.spawn = match word() {
                        "rings" => Spawn::Rings,
                        "centre" | "center" => Spawn::Centre,
                        "scatter" => Spawn::Scatter,
                        _ => {
                            return Err(format!(
                                "game setting spawn: {value} is not rings, centre or scatter"
                            ))
                        }
                    }
                }
                "walls" => {
                    s.walls = match word() {
                        "solid" => Walls::Solid,
                        "wrap" => Walls::Wrap,
                        _ => return Err(format!("game setting walls: {value} is not solid or wrap")),
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown game setting {key:?} (the arena has width, height, speed, radius, spawn, walls)"
                    ))
                }
            }
        }
        if 2.0 * s.radius >= s.width.min(s.height) {
            return Err(format!(
                "game settings: a disc of radius {} does not fit a {} × {} arena",
                s.radius, s.width, s.height
            ));
        }
        Ok(s)
    }

    /// Where entity `id` appears. Depends on nothing but the id (and the
    /// settings), so worlds replay identically.
    fn spawn_point(&self, id: EntityId) -> (f32, f32) {
        let (cx, cy) = (self.width / 2.0, self.height / 2.0);
        match self.spawn {
            Spawn::Centre => (cx, cy),
            Spawn::Rings if id.wrapping_sub(1) >= SPAWN_SLOTS_PER_RING * SPAWN_RINGS => {
                // Past the rings (a large instance): spread over the arena.
                scattered_point(id.wrapping_sub(1), self.width, self.height, self.radius)
            }
            Spawn::Rings => {
                // The default arena's rings are 100 apart; a smaller arena
                // draws them closer so the outermost stays inside.
                let room = (self.width.min(self.height) / 2.0 - self.radius) / SPAWN_RINGS as f32;
                let (x, y) = spawn_point(id, SPAWN_RING_GAP.min(room));
                (cx + x, cy + y)
            }
            Spawn::Scatter => {
                let mut h = crate::util::rng::Rng::new(u64::from(id) ^ 0x9E37_79B9_7F4A_7C15);
                let unit = |v: u64| (v >> 11) as f32 / (1u64 << 53) as f32;
                let span = |len: f32| len - 2.0 * self.radius;
                (
                    self.radius + unit(h.next_u64()) * span(self.width),
                    self.radius + unit(h.next_u64()) * span(self.height),
                )
            }
        }
    }

    /// Moves one coordinate by `v × dt_s` within `[0, len]`.
    fn advance(&self, pos: f32, v: f32, dt_s: f32, len: f32) -> (f32, f32) {
        match self.walls {
            Walls::Solid => advance(pos, v, dt_s, self.radius, len - self.radius),
            Walls::Wrap => ((pos + v * dt_s).rem_euclid(len), v),
        }
    }

    /// Where a disc's centre may be, on an axis of length `len`.
    fn range(&self, len: f32) -> std::ops::RangeInclusive<f32> {
        match self.walls {
            Walls::Solid => self.radius..=len - self.radius,
            Walls::Wrap => 0.0..=len,
        }
    }
}

/// One player's disc.
#[derive(Debug, Clone, Copy, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Disc {
    id: EntityId,
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
}

/// One arena world.
///
/// Memory: one `Disc` (20 bytes) per player; the vector grows on spawn
/// (never during a step) and is bounded by the instance's `players_max`.
#[derive(Debug, Clone, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Arena {
    /// Sorted by id (ids only grow), so lookups are a binary search and
    /// `entities` lists discs in a stable order.
    discs: Vec<Disc>,
    /// Last id handed out; ids start at 1 and are never reused, so a late
    /// input for a despawned disc cannot steer a newer one.
    entity_last: EntityId,
    /// The rules in force (the server's settings, not saved: see the
    /// module doc).
    #[rkyv(with = rkyv::with::Skip)]
    settings: ArenaSettings,
}

impl Arena {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty arena under `settings`.
    pub fn with(settings: ArenaSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Number of discs in the world.
    pub fn len(&self) -> usize {
        self.discs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.discs.is_empty()
    }

    fn disc_mut(&mut self, entity: EntityId) -> Option<&mut Disc> {
        let i = self.discs.binary_search_by_key(&entity, |d| d.id).ok()?;
        Some(&mut self.discs[i])
    }

    /// Checks what a restored world must satisfy for the rules above to
    /// hold: ids ascending and unique (binary search), none above
    /// `entity_last` (ids never reused), positions finite and inside the
    /// walls, velocities finite.
    fn check(&self) -> Result<(), String> {
        let x_range = self.settings.range(self.settings.width);
        let y_range = self.settings.range(self.settings.height);
        let mut id_prev = 0;
        for d in &self.discs {
            if d.id <= id_prev {
                return Err(format!("disc ids not ascending at id {}", d.id));
            }
            if d.id > self.entity_last {
                return Err(format!(
                    "disc id {} above the last id handed out ({})",
                    d.id, self.entity_last
                ));
            }
            if !x_range.contains(&d.x) || !y_range.contains(&d.y) {
                return Err(format!(
                    "disc {} at ({}, {}) is outside the walls",
                    d.id, d.x, d.y
                ));
            }
            if !d.vx.is_finite() || !d.vy.is_finite() {
                return Err(format!("disc {} has a non-finite velocity", d.id));
            }
            id_prev = d.id;
        }
        Ok(())
    }
}

/// Where entity `id` appears, from the centre: slot `id` on a ring around
/// it, rings `gap` apart, walking outwards ring by ring. Only for the first
/// `SPAWN_SLOTS_PER_RING × SPAWN_RINGS` ids (later ones scatter).
fn spawn_point(id: EntityId, gap: f32) -> (f32, f32) {
    let n = id.wrapping_sub(1) % (SPAWN_SLOTS_PER_RING * SPAWN_RINGS);
    let slot = n % SPAWN_SLOTS_PER_RING;
    let ring = n / SPAWN_SLOTS_PER_RING;
    let radius = (ring + 1) as f32 * gap;
    // Offset alternate rings by half a slot so rings do not line up.
    let turns = (slot as f32 + 0.5 * (ring % 2) as f32) / SPAWN_SLOTS_PER_RING as f32;
    let angle = turns * TAU;
    (radius * angle.cos(), radius * angle.sin())
}

/// The `n`-th point of the R2 low-discrepancy sequence over the area inside
/// the walls: a crowd (an instance of a thousand players) starts spread
/// over the arena, not stacked on the rings.
fn scattered_point(n: u32, width: f32, height: f32, radius: f32) -> (f32, f32) {
    // 1/g and 1/g², g the plastic number (Roberts' R2 sequence).
    const A1: f64 = 0.754_877_666_246_692_7;
    const A2: f64 = 0.569_840_290_998_053_3;
    let frac = |v: f64| v - v.floor();
    let (u, v) = (frac(0.5 + A1 * f64::from(n)), frac(0.5 + A2 * f64::from(n)));
    let span = |size: f32, t: f64| radius + (size - 2.0 * radius) * t as f32;
    (span(width, u), span(height, v))
}

/// Moves `pos` by `v × dt_s` and keeps it in `[lo, hi]`; returns the new
/// position and velocity (zeroed if a wall stopped it).
fn advance(pos: f32, v: f32, dt_s: f32, lo: f32, hi: f32) -> (f32, f32) {
    let moved = pos + v * dt_s;
    if moved < lo {
        (lo, 0.0)
    } else if moved > hi {
        (hi, 0.0)
    } else {
        (moved, v)
    }
}

impl Game for Arena {
    fn spawn(&mut self, _player: PlayerId) -> EntityId {
        self.entity_last = self
            .entity_last
            .checked_add(1)
            .expect("arena entity ids exhausted");
        let id = self.entity_last;
        let (x, y) = self.settings.spawn_point(id);
        self.discs.push(Disc {
            id,
            x,
            y,
            vx: 0.0,
            vy: 0.0,
        });
        id
    }

    fn despawn(&mut self, entity: EntityId) {
        if let Ok(i) = self.discs.binary_search_by_key(&entity, |d| d.id) {
            self.discs.remove(i);
        }
    }

    fn apply_input(&mut self, entity: EntityId, input: &PlayerInput) {
        let speed = self.settings.speed;
        let Some(disc) = self.disc_mut(entity) else {
            return;
        };
        let (mut dx, mut dy) = (input.move_x, input.move_y);
        let len = (dx * dx + dy * dy).sqrt();
        if len > 1.0 {
            dx /= len;
            dy /= len;
        }
        disc.vx = dx * speed;
        disc.vy = dy * speed;
    }

    fn step(&mut self, dt_s: f32) {
        let s = self.settings;
        for d in &mut self.discs {
            (d.x, d.vx) = s.advance(d.x, d.vx, dt_s, s.width);
            (d.y, d.vy) = s.advance(d.y, d.vy, dt_s, s.height);
        }
    }

    fn entities(&self, out: &mut Vec<EntityView>) {
        out.extend(self.discs.iter().map(|d| EntityView {
            id: d.id,
            kind: ENTITY_KIND_PLAYER,
            flags: 0,
            x: d.x,
            y: d.y,
            vx: d.vx,
            vy: d.vy,
            ..EntityView::default()
        }));
    }

    fn bounds(&self) -> (f32, f32) {
        (self.settings.width, self.settings.height)
    }

    fn state_bytes(&self) -> usize {
        self.discs.capacity() * std::mem::size_of::<Disc>()
    }

    fn save(&self, out: &mut Vec<u8>) {
        save_archived(self, out);
    }
}

/// Makes [`Arena`] worlds; every instance gets the same empty arena under
/// the factory's settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArenaFactory {
    pub settings: ArenaSettings,
}

/// The arena with its default settings, usable as a value where a unit
/// struct was (`Arc::new(ArenaFactory)`).
#[allow(non_upper_case_globals)]
pub const ArenaFactory: ArenaFactory = ArenaFactory {
    settings: ArenaSettings {
        width: ARENA_WIDTH,
        height: ARENA_HEIGHT,
        speed: PLAYER_SPEED_PER_S,
        radius: PLAYER_RADIUS,
        spawn: Spawn::Rings,
        walls: Walls::Solid,
    },
};

impl ArenaFactory {
    pub fn with(settings: ArenaSettings) -> Self {
        Self { settings }
    }
}

impl GameFactory for ArenaFactory {
    fn name(&self) -> &'static str {
        "arena"
    }

    fn create(&self, _instance: &InstanceId) -> Box<dyn Game> {
        Box::new(Arena::with(self.settings))
    }

    fn restore(&self, _instance: &InstanceId, bytes: &[u8]) -> Result<Box<dyn Game>, String> {
        let mut arena: Arena = restore_archived(bytes)?;
        arena.settings = self.settings;
        arena.check()?;
        Ok(Box::new(arena))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT_S: f32 = 1.0 / 60.0;

    fn input(seq: u32, move_x: f32, move_y: f32) -> PlayerInput {
        PlayerInput {
            seq,
            move_x,
            move_y,
            buttons: 0,
        }
    }

    fn view(arena: &Arena, id: EntityId) -> EntityView {
        let mut out = Vec::new();
        arena.entities(&mut out);
        *out.iter().find(|e| e.id == id).expect("entity exists")
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn ids_start_at_one_and_are_never_reused() {
        let mut arena = Arena::new();
        assert_eq!(arena.spawn(10), 1);
        assert_eq!(arena.spawn(11), 2);
        arena.despawn(2);
        assert_eq!(arena.spawn(12), 3);
    }

    #[test]
    fn spawn_points_are_inside_the_walls_and_distinct() {
        let mut arena = Arena::new();
        for p in 0..(SPAWN_SLOTS_PER_RING * SPAWN_RINGS) {
            arena.spawn(p.into());
        }
        let mut out = Vec::new();
        arena.entities(&mut out);
        for (i, a) in out.iter().enumerate() {
            assert!(a.x >= PLAYER_RADIUS && a.x <= ARENA_WIDTH - PLAYER_RADIUS);
            assert!(a.y >= PLAYER_RADIUS && a.y <= ARENA_HEIGHT - PLAYER_RADIUS);
            assert_eq!((a.vx, a.vy), (0.0, 0.0));
            for b in &out[i + 1..] {
                let d2 = (a.x - b.x).powi(2) + (a.y - b.y).powi(2);
                assert!(d2 > (2.0 * PLAYER_RADIUS).powi(2), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn a_thousand_players_start_spread_over_the_arena() {
        let mut arena = Arena::new();
        for p in 0..1000 {
            arena.spawn(p);
        }
        let mut out = Vec::new();
        arena.entities(&mut out);
        // 10 × 10 cells of 100 units: 10 players each on average.
        let mut cells = [0usize; 100];
        for a in &out {
            assert!(a.x >= PLAYER_RADIUS && a.x <= ARENA_WIDTH - PLAYER_RADIUS);
            assert!(a.y >= PLAYER_RADIUS && a.y <= ARENA_HEIGHT - PLAYER_RADIUS);
            let cell = |v: f32| ((v / 100.0) as usize).min(9);
            cells[cell(a.y) * 10 + cell(a.x)] += 1;
        }
        let most = cells.iter().max().copied().unwrap_or(0);
        assert!(most <= 30, "a cell holds {most} players: {cells:?}");
        assert!(cells.iter().all(|&c| c > 0), "an empty cell: {cells:?}");
    }

    #[test]
    fn input_moves_by_speed_times_dt_per_step() {
        let mut arena = Arena::new();
        let e = arena.spawn(1);
        let start = view(&arena, e);
        arena.apply_input(e, &input(1, 1.0, 0.0));
        for step in 1..=3 {
            arena.step(DT_S);
            let now = view(&arena, e);
            assert!(close(
                now.x,
                start.x + step as f32 * PLAYER_SPEED_PER_S * DT_S
            ));
            assert_eq!(now.y, start.y);
            assert_eq!((now.vx, now.vy), (PLAYER_SPEED_PER_S, 0.0));
        }
        // A partial stick moves proportionally slower.
        arena.apply_input(e, &input(2, 0.0, -0.5));
        let before = view(&arena, e);
        arena.step(DT_S);
        let after = view(&arena, e);
        assert!(close(after.y, before.y - 0.5 * PLAYER_SPEED_PER_S * DT_S));
        assert_eq!(after.x, before.x);
    }

    #[test]
    fn diagonal_is_normalized() {
        let mut arena = Arena::new();
        let e = arena.spawn(1);
        arena.apply_input(e, &input(1, 1.0, 1.0));
        let v = view(&arena, e);
        let speed = (v.vx * v.vx + v.vy * v.vy).sqrt();
        assert!(close(speed, PLAYER_SPEED_PER_S));
        assert!(close(v.vx, v.vy));
        // Within the unit circle, the stick is taken as is.
        arena.apply_input(e, &input(2, 0.6, -0.6));
        let v = view(&arena, e);
        assert!(close(v.vx, 0.6 * PLAYER_SPEED_PER_S));
        assert!(close(v.vy, -0.6 * PLAYER_SPEED_PER_S));
    }

    #[test]
    fn walls_bound_position_in_all_four_directions() {
        let steps_across = (ARENA_WIDTH.max(ARENA_HEIGHT) / (PLAYER_SPEED_PER_S * DT_S)) as u32 + 2;
        let cases = [
            ((1.0, 0.0), Some(ARENA_WIDTH - PLAYER_RADIUS), None),
            ((-1.0, 0.0), Some(PLAYER_RADIUS), None),
            ((0.0, 1.0), None, Some(ARENA_HEIGHT - PLAYER_RADIUS)),
            ((0.0, -1.0), None, Some(PLAYER_RADIUS)),
        ];
        for ((mx, my), wall_x, wall_y) in cases {
            let mut arena = Arena::new();
            let e = arena.spawn(1);
            let start = view(&arena, e);
            arena.apply_input(e, &input(1, mx, my));
            for _ in 0..steps_across {
                arena.step(DT_S);
            }
            let v = view(&arena, e);
            assert_eq!(v.x, wall_x.unwrap_or(start.x), "moving ({mx}, {my})");
            assert_eq!(v.y, wall_y.unwrap_or(start.y), "moving ({mx}, {my})");
            assert_eq!((v.vx, v.vy), (0.0, 0.0), "the wall stopped it");
        }
    }

    #[test]
    fn wall_zeroes_only_the_component_that_hit_it() {
        let mut arena = Arena::new();
        let e = arena.spawn(1);
        arena.apply_input(e, &input(1, 1.0, 0.0));
        while view(&arena, e).vx != 0.0 {
            arena.step(DT_S);
        }
        // Sliding along the right wall keeps the vertical speed.
        arena.apply_input(e, &input(2, 1.0, 1.0));
        arena.step(DT_S);
        let v = view(&arena, e);
        assert_eq!(v.x, ARENA_WIDTH - PLAYER_RADIUS);
        assert_eq!(v.vx, 0.0);
        assert!(v.vy > 0.0);
    }

    #[test]
    fn zero_input_stops() {
        let mut arena = Arena::new();
        let e = arena.spawn(1);
        arena.apply_input(e, &input(1, -1.0, 0.5));
        arena.step(DT_S);
        arena.apply_input(e, &input(2, 0.0, 0.0));
        let stopped = view(&arena, e);
        assert_eq!((stopped.vx, stopped.vy), (0.0, 0.0));
        arena.step(DT_S);
        assert_eq!(view(&arena, e), stopped);
    }

    #[test]
    fn despawn_removes() {
        let mut arena = Arena::new();
        let a = arena.spawn(1);
        let b = arena.spawn(2);
        arena.despawn(a);
        let mut out = Vec::new();
        arena.entities(&mut out);
        assert_eq!(out.iter().map(|e| e.id).collect::<Vec<_>>(), [b]);
        assert_eq!(arena.len(), 1);
        // Unknown ids (already gone, never spawned) are ignored.
        arena.despawn(a);
        arena.despawn(99);
        arena.apply_input(a, &input(1, 1.0, 0.0));
        assert_eq!(arena.len(), 1);
        arena.despawn(b);
        assert!(arena.is_empty());
    }

    #[test]
    fn two_entities_move_independently() {
        let mut arena = Arena::new();
        let a = arena.spawn(1);
        let b = arena.spawn(2);
        let (a0, b0) = (view(&arena, a), view(&arena, b));
        arena.apply_input(a, &input(1, 1.0, 0.0));
        arena.step(DT_S);
        let (a1, b1) = (view(&arena, a), view(&arena, b));
        assert!(a1.x > a0.x);
        assert_eq!(b1, b0, "b had no input and must not move");
        arena.apply_input(b, &input(1, 0.0, 1.0));
        arena.step(DT_S);
        let (a2, b2) = (view(&arena, a), view(&arena, b));
        assert!(close(a2.x - a1.x, PLAYER_SPEED_PER_S * DT_S));
        assert!(close(b2.y - b1.y, PLAYER_SPEED_PER_S * DT_S));
        assert_eq!(b2.x, b1.x);
    }

    #[test]
    fn same_inputs_give_identical_worlds() {
        // A fixed pseudo-random script: 3 players, 500 steps, some despawns.
        fn run() -> Vec<EntityView> {
            let mut rng: u64 = 0x5eed;
            let mut next = move || {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            };
            let mut arena = Arena::new();
            let ids: Vec<_> = (0..3).map(|p| arena.spawn(p)).collect();
            for step in 0..500u32 {
                for &e in &ids {
                    arena.apply_input(e, &input(step, next(), next()));
                }
                if step == 250 {
                    arena.despawn(ids[1]);
                    arena.spawn(9);
                }
                arena.step(DT_S);
            }
            let mut out = Vec::new();
            arena.entities(&mut out);
            out
        }
        let (a, b) = (run(), run());
        assert_eq!(a.len(), 3);
        assert_eq!(a, b);
    }

    /// An arena with a few discs moving, one despawned (so ids have a gap).
    fn busy_arena() -> Arena {
        let mut arena = Arena::new();
        let ids: Vec<_> = (0..5).map(|p| arena.spawn(p)).collect();
        arena.despawn(ids[2]);
        arena.apply_input(ids[0], &input(1, 1.0, 0.3));
        arena.apply_input(ids[4], &input(1, -0.2, -1.0));
        for _ in 0..7 {
            arena.step(DT_S);
        }
        arena
    }

    fn saved(arena: &Arena) -> Vec<u8> {
        let mut out = Vec::new();
        arena.save(&mut out);
        out
    }

    fn restored(bytes: &[u8]) -> Result<Box<dyn Game>, String> {
        ArenaFactory.restore(&InstanceId::parse("a").unwrap(), bytes)
    }

    #[test]
    fn save_restore_reproduces_entities_exactly() {
        let mut arena = busy_arena();
        let bytes = saved(&arena);
        let mut back = restored(&bytes).unwrap();
        let (mut want, mut got) = (Vec::new(), Vec::new());
        arena.entities(&mut want);
        back.entities(&mut got);
        assert_eq!(want.len(), 4);
        assert_eq!(got, want, "bit-exact positions and velocities");
        // The restored world goes on exactly as the original: same id
        // counter (no reuse of the despawned id), same motion.
        assert_eq!((arena.spawn(9), back.spawn(9)), (6, 6));
        arena.step(DT_S);
        back.step(DT_S);
        let (mut want, mut got) = (Vec::new(), Vec::new());
        arena.entities(&mut want);
        back.entities(&mut got);
        assert_eq!(got, want);
    }

    #[test]
    fn save_appends_and_empty_arena_round_trips() {
        let mut out = vec![0xAA];
        Arena::new().save(&mut out);
        assert_eq!(out[0], 0xAA, "save appends");
        let back = restored(&out[1..]).unwrap();
        assert_eq!(back.state_bytes(), 0);
    }

    #[test]
    fn restore_refuses_bad_bytes_without_panicking() {
        let good = saved(&busy_arena());
        assert!(restored(&[]).err().unwrap().contains("empty"));
        assert!(restored(b"hello, world").is_err());
        // Every truncation and every single flipped byte is refused or, if
        // rkyv's layout happens to accept it, still passes the world checks;
        // never a panic.
        for len in 0..good.len() {
            let _ = restored(&good[..len]);
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0xFF;
            if let Ok(world) = restored(&bad) {
                let mut views = Vec::new();
                world.entities(&mut views);
                assert!(views.windows(2).all(|w| w[0].id < w[1].id));
            }
        }
    }

    #[test]
    fn restore_checks_the_worlds_invariants() {
        type Damage = fn(&mut Arena);
        let cases: [(&str, Damage); 4] = [
            ("not ascending", |a| a.discs.swap(0, 1)),
            ("above the last id", |a| a.entity_last = 1),
            ("outside the walls", |a| a.discs[0].x = -5.0),
            ("non-finite", |a| a.discs[1].vy = f32::NAN),
        ];
        for (want, damage) in cases {
            let mut arena = busy_arena();
            damage(&mut arena);
            let err = restored(&saved(&arena)).err().unwrap();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn factory_makes_empty_arenas() {
        let id = InstanceId::parse("a").unwrap();
        assert_eq!(ArenaFactory.name(), "arena");
        let world = ArenaFactory.create(&id);
        assert_eq!(world.bounds(), (ARENA_WIDTH, ARENA_HEIGHT));
        let mut out = Vec::new();
        world.entities(&mut out);
        assert!(out.is_empty());
        let mut custom = Vec::new();
        world.custom_state(&mut custom);
        assert!(custom.is_empty());
    }

    #[test]
    fn settings_come_from_the_game_table_and_change_the_rules() {
        let table: toml::Table =
            "width = 200\nheight = 100.0\nspeed = 50\nradius = 5\nspawn = 'centre'\nwalls = 'wrap'"
                .parse()
                .unwrap();
        let s = ArenaSettings::from_table(&table).unwrap();
        assert_eq!(
            (s.width, s.height, s.speed, s.radius),
            (200.0, 100.0, 50.0, 5.0)
        );
        assert_eq!((s.spawn, s.walls), (Spawn::Centre, Walls::Wrap));
        assert_eq!(
            ArenaSettings::from_table(&toml::Table::new()),
            Ok(ArenaSettings::default())
        );
        for bad in [
            "colour = 'red'",
            "speed = -1",
            "walls = 'glass'",
            "radius = 60\nheight = 100",
        ] {
            assert!(
                ArenaSettings::from_table(&bad.parse().unwrap()).is_err(),
                "{bad}"
            );
        }
        let mut arena = Arena::with(s);
        let e = arena.spawn(1);
        assert_eq!(
            (view(&arena, e).x, view(&arena, e).y),
            (100.0, 50.0),
            "centre"
        );
        assert_eq!(arena.bounds(), (200.0, 100.0));
        arena.apply_input(e, &input(1, 1.0, 0.0));
        for _ in 0..150 {
            arena.step(DT_S);
        }
        // 150 steps of 1/60 s at 50 units/s: 125 units right of 100,
        // wrapped around a 200-wide arena.
        let v = view(&arena, e);
        assert!(close(v.x, 25.0), "wrapped to {}", v.x);
        assert_eq!(v.vx, 50.0, "wrapping keeps the velocity");
        // A restored world takes the factory's settings.
        let mut saved = Vec::new();
        arena.save(&mut saved);
        let id = InstanceId::parse("a").unwrap();
        assert!(ArenaFactory::with(s).restore(&id, &saved).is_ok());
        let small = ArenaSettings { width: 20.0, ..s };
        assert!(
            ArenaFactory::with(small).restore(&id, &saved).is_err(),
            "disc outside"
        );
    }

    #[test]
    fn default_settings_spawn_where_the_constants_always_did() {
        let mut arena = Arena::new();
        let e = arena.spawn(1);
        let v = view(&arena, e);
        assert!(close(v.x, ARENA_WIDTH / 2.0 + SPAWN_RING_GAP) && close(v.y, ARENA_HEIGHT / 2.0));
        let mut scattered = Arena::with(ArenaSettings {
            spawn: Spawn::Scatter,
            ..Default::default()
        });
        for p in 0..50 {
            let e = scattered.spawn(p);
            let v = view(&scattered, e);
            assert!((PLAYER_RADIUS..=ARENA_WIDTH - PLAYER_RADIUS).contains(&v.x));
            assert!((PLAYER_RADIUS..=ARENA_HEIGHT - PLAYER_RADIUS).contains(&v.y));
        }
    }
}
