//! LEB128 varints: 7 bits per byte, low group first, the high bit set when
//! more bytes follow; at most 5 bytes for a 32-bit value. Signed values are
//! zigzag-mapped first (`(n << 1) ^ (n >> 31)`), so small magnitudes of
//! either sign take one byte.

use super::DeltaError;

/// Appends `v` as an unsigned varint.
pub fn put_uv(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `n` zigzag-mapped, as an unsigned varint.
pub fn put_sv(out: &mut Vec<u8>, n: i32) {
    put_uv(out, zigzag(n));
}

pub fn zigzag(n: i32) -> u32 {
    ((n << 1) ^ (n >> 31)) as u32
}

pub fn unzigzag(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

/// Reads an unsigned varint from the front of `bytes`, advancing it.
pub fn get_uv(bytes: &mut &[u8]) -> Result<u32, DeltaError> {
    let mut v: u64 = 0;
    for i in 0..5 {
        let (&b, rest) = bytes.split_first().ok_or(DeltaError::Truncated)?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(v).map_err(|_| DeltaError::VarintOverflow);
        }
    }
    Err(DeltaError::VarintOverflow)
}

/// Reads a zigzag signed varint.
pub fn get_sv(bytes: &mut &[u8]) -> Result<i32, DeltaError> {
    get_uv(bytes).map(unzigzag)
}

/// Bytes `v` takes as an unsigned varint.
pub fn uv_len(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0xfff_ffff => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    #[test]
    fn varints_round_trip_and_have_the_documented_length() {
        let mut rng = Rng::new(11);
        let mut out = Vec::new();
        let edge = [0u32, 1, 127, 128, 16_383, 16_384, u32::MAX - 1, u32::MAX];
        let values: Vec<u32> = edge
            .into_iter()
            .chain((0..10_000).map(|_| (rng.next_u64() >> (rng.next_u64() % 64)) as u32))
            .collect();
        for &v in &values {
            out.clear();
            put_uv(&mut out, v);
            assert_eq!(out.len(), uv_len(v));
            let mut s = &out[..];
            assert_eq!(get_uv(&mut s), Ok(v));
            assert!(s.is_empty());
            let n = v as i32;
            out.clear();
            put_sv(&mut out, n);
            let mut s = &out[..];
            assert_eq!(get_sv(&mut s), Ok(n));
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i32::MIN), u32::MAX);
        out.clear();
        put_uv(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }

    #[test]
    fn bad_varints_are_refused() {
        assert_eq!(get_uv(&mut &[][..]), Err(DeltaError::Truncated));
        assert_eq!(get_uv(&mut &[0x80][..]), Err(DeltaError::Truncated));
        assert_eq!(
            get_uv(&mut &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01][..]),
            Err(DeltaError::VarintOverflow)
        );
        assert_eq!(
            get_uv(&mut &[0xff, 0xff, 0xff, 0xff, 0x1f][..]),
            Err(DeltaError::VarintOverflow)
        );
        assert_eq!(
            get_uv(&mut &[0xff, 0xff, 0xff, 0xff, 0x0f][..]),
            Ok(u32::MAX)
        );
    }
}
