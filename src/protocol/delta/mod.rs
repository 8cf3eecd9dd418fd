//! Protocol version 2's state encoding (docs/protocol.md, "Protocol version
//! 2"): quantized entities, the `StateDelta.entities` bytes, the custom
//! state patch, and the client's side of it, [`ClientWorld`], which rebuilds
//! the world from deltas.
//!
//! Everything here is pure: bytes in, bytes out. The server picks what each
//! client sees (`shard::interest`) and encodes it with [`encode_entities`];
//! the load generator and the tests decode with [`ClientWorld`], exactly as
//! a client in another language does from the documented format.
//!
//! - [`varint`]: LEB128 unsigned and zigzag signed integers.
//! - [`entities`]: one client's view change: removed ids, then records.
//! - [`custom`]: the custom-state patch.
//! - [`world`]: [`ClientWorld`], a ring of reconstructed worlds.

pub mod custom;
pub mod entities;
pub mod varint;
pub mod world;

use std::f64::consts::TAU;

use crate::game::types::EntityView;

pub use custom::{apply_custom_patch, encode_custom_patch};
pub use entities::{apply_entities, encode_entities, EncodedCounts};
pub use world::{ClientWorld, DeltaRef};

/// Fixed-point scale of positions and velocities: 64 steps per arena unit
/// (per unit per second for velocities), so a value is within 1/128 of a
/// unit of what the game had.
pub const POSITION_SCALE: f64 = 64.0;

/// Largest error of a dequantized position or velocity, in arena units.
pub const POSITION_ERROR_MAX: f32 = 1.0 / 128.0;

/// Steps of a full turn in a quantized facing.
pub const FACING_STEPS: f64 = 65_536.0;

/// Mask bits of a record (docs/protocol.md, "StateDelta.entities bytes").
pub mod mask {
    pub const X: u8 = 0x01;
    pub const Y: u8 = 0x02;
    pub const Z: u8 = 0x04;
    pub const VX: u8 = 0x08;
    pub const VY: u8 = 0x10;
    pub const FACING: u8 = 0x20;
    pub const KIND_FLAGS: u8 = 0x40;
    pub const ENTERED: u8 = 0x80;
}

/// One entity as it travels in protocol version 2: every field quantized.
/// Two of them are equal exactly when a client could not tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct QEntity {
    pub id: u32,
    pub kind: u16,
    pub flags: u16,
    pub x: i32,
    pub y: i32,
    pub z: i32,
    pub vx: i32,
    pub vy: i32,
    pub facing: u16,
}

/// `round(v × 64)` as i32; NaN is 0 and values beyond the i32 range are
/// clamped to it (a game's world is far smaller than 2^25 units).
pub fn quantize(v: f32) -> i32 {
    if v.is_nan() {
        return 0;
    }
    let q = (f64::from(v) * POSITION_SCALE).round();
    q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// `q / 64`.
pub fn dequantize(q: i32) -> f32 {
    (f64::from(q) / POSITION_SCALE) as f32
}

/// `round(facing / 2π × 65536) mod 65536` (NaN and infinity are 0).
pub fn quantize_facing(facing: f32) -> u16 {
    if !facing.is_finite() {
        return 0;
    }
    let q = (f64::from(facing) / TAU * FACING_STEPS).round() as i64;
    q.rem_euclid(FACING_STEPS as i64) as u16
}

/// `q × 2π / 65536`.
pub fn dequantize_facing(q: u16) -> f32 {
    (f64::from(q) * TAU / FACING_STEPS) as f32
}

impl QEntity {
    pub fn from_view(e: &EntityView) -> QEntity {
        QEntity {
            id: e.id,
            kind: e.kind,
            flags: e.flags,
            x: quantize(e.x),
            y: quantize(e.y),
            z: quantize(e.z),
            vx: quantize(e.vx),
            vy: quantize(e.vy),
            facing: quantize_facing(e.facing),
        }
    }

    pub fn to_view(&self) -> EntityView {
        EntityView {
            id: self.id,
            kind: self.kind,
            flags: self.flags,
            x: dequantize(self.x),
            y: dequantize(self.y),
            z: dequantize(self.z),
            vx: dequantize(self.vx),
            vy: dequantize(self.vy),
            facing: dequantize_facing(self.facing),
        }
    }
}

/// Bytes that break the delta format, or a delta whose baseline the client
/// does not hold: a protocol violation by the server (a client reports it
/// and reconnects).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("the delta's bytes end inside a value")]
    Truncated,
    #[error("a varint is longer than 5 bytes or above 32 bits")]
    VarintOverflow,
    #[error("ids are not ascending at id {0}")]
    NotAscending(u32),
    #[error("entity {0} is both removed and recorded")]
    RemovedAndRecorded(u32),
    #[error("entity {0} is changed but the baseline does not hold it")]
    UnknownEntity(u32),
    #[error("{0} bytes follow the last record")]
    TrailingBytes(usize),
    #[error("baseline tick {0} is not one this client holds")]
    UnknownBaseline(u64),
    #[error("tick {tick} does not follow tick {latest}")]
    TickNotAfter { tick: u64, latest: u64 },
    #[error("a delta needs custom_full or nothing when its baseline is 0")]
    FullWithoutCustom,
    #[error("custom patch: {0}")]
    BadPatch(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    #[test]
    fn quantization_is_within_the_documented_precision() {
        let mut rng = Rng::new(7);
        for _ in 0..100_000 {
            let v = (rng.next_u64() % 2_000_000) as f32 / 997.0 - 1000.0;
            let back = dequantize(quantize(v));
            assert!(
                (back - v).abs() <= POSITION_ERROR_MAX + 1e-4,
                "{v} -> {back}"
            );
            let facing = (rng.next_u64() % 100_000) as f32 / 100_000.0 * std::f32::consts::TAU;
            let f = dequantize_facing(quantize_facing(facing));
            let d = (f - facing).abs();
            let d = d.min(std::f32::consts::TAU - d);
            assert!(d <= (TAU / FACING_STEPS) as f32, "{facing} -> {f}");
        }
        assert_eq!(quantize(f32::NAN), 0);
        assert_eq!(quantize(f32::INFINITY), i32::MAX);
        assert_eq!(quantize(1.0), 64);
        assert_eq!(quantize(-1.0 / 128.0), -1, "round half away from zero");
        assert_eq!(quantize_facing(-0.0), 0);
        assert_eq!(quantize_facing(std::f32::consts::TAU), 0, "mod 65536");
        assert_eq!(quantize_facing(std::f32::consts::PI), 32_768);
    }
}
