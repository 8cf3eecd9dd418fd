//! The custom-state patch: the bytes of the game's own state that changed
//! since the baseline.
//!
//! ```text
//! new_len uv                 resize the baseline to new_len (zeros added)
//! runs until the end:
//!   gap uv                   start = end of the previous run (0 at first) + gap
//!   len uv, len bytes        written at [start, start + len)
//! ```

use super::varint::{get_uv, put_uv};
use super::DeltaError;

/// Equal bytes inside a run shorter than this are sent rather than
/// splitting the run (a new run costs two varints).
const RUN_JOIN_GAP: usize = 3;

/// Appends the patch turning `base` into `next`.
pub fn encode_custom_patch(base: &[u8], next: &[u8], out: &mut Vec<u8>) {
    put_uv(out, next.len() as u32);
    let old = |i: usize| base.get(i).copied().unwrap_or(0);
    let mut end_prev = 0;
    let mut i = 0;
    while i < next.len() {
        if next[i] == old(i) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        // Extend while differing bytes follow within RUN_JOIN_GAP.
        let mut j = end;
        while j < next.len() && j - end < RUN_JOIN_GAP {
            if next[j] != old(j) {
                end = j + 1;
            }
            j += 1;
        }
        put_uv(out, (start - end_prev) as u32);
        put_uv(out, (end - start) as u32);
        out.extend_from_slice(&next[start..end]);
        end_prev = end;
        i = end;
    }
}

/// Rebuilds the custom state: `base` changed by `patch`, into `out`.
pub fn apply_custom_patch(
    base: &[u8],
    mut patch: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DeltaError> {
    let p = &mut patch;
    let new_len = get_uv(p)? as usize;
    // Every byte of the new state beyond the baseline is either a zero the
    // patch leaves or one it carries; a length far beyond both is refused
    // before it is allocated.
    if new_len > base.len().max(1) * 2 + p.len() * 128 + 65_536 {
        return Err(DeltaError::BadPatch("new length out of proportion"));
    }
    out.clear();
    out.extend_from_slice(&base[..base.len().min(new_len)]);
    out.resize(new_len, 0);
    let mut end_prev = 0usize;
    while !p.is_empty() {
        let gap = get_uv(p)? as usize;
        let len = get_uv(p)? as usize;
        let start = end_prev
            .checked_add(gap)
            .ok_or(DeltaError::BadPatch("run start overflows"))?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= new_len)
            .ok_or(DeltaError::BadPatch("run ends beyond the new length"))?;
        if p.len() < len {
            return Err(DeltaError::Truncated);
        }
        out[start..end].copy_from_slice(&p[..len]);
        *p = &p[len..];
        end_prev = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    #[test]
    fn random_patches_round_trip() {
        let mut rng = Rng::new(99);
        let (mut patch, mut back) = (Vec::new(), Vec::new());
        for _ in 0..5000 {
            let base: Vec<u8> = (0..rng.below(64)).map(|_| rng.below(4) as u8).collect();
            let mut next = base.clone();
            next.resize(rng.below(64), 0);
            for _ in 0..rng.below(6) {
                if !next.is_empty() {
                    let i = rng.below(next.len());
                    next[i] = rng.next_u64() as u8;
                }
            }
            patch.clear();
            encode_custom_patch(&base, &next, &mut patch);
            apply_custom_patch(&base, &patch, &mut back).unwrap();
            assert_eq!(back, next);
        }
    }

    #[test]
    fn the_documented_bytes_and_bad_patches() {
        let mut out = Vec::new();
        encode_custom_patch(
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[1, 9, 3, 4, 5, 6, 7, 8, 0, 4],
            &mut out,
        );
        // len 10; run at 1 (gap 1) of 1 byte; run at 9 (gap 7) of 1 byte.
        assert_eq!(out, [10, 1, 1, 9, 7, 1, 4]);
        let mut back = Vec::new();
        assert_eq!(
            apply_custom_patch(&[], &[2, 1, 5, 0], &mut back),
            Err(DeltaError::BadPatch("run ends beyond the new length"))
        );
        assert_eq!(
            apply_custom_patch(&[], &[2, 0, 2, 7], &mut back),
            Err(DeltaError::Truncated)
        );
        assert!(apply_custom_patch(&[], &[0xff, 0xff, 0xff, 0xff, 0x0f], &mut back).is_err());
        assert_eq!(apply_custom_patch(&[1, 2, 3], &[1], &mut back), Ok(()));
        assert_eq!(back, [1]);
    }
}
