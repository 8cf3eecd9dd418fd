//! `StateDelta.entities`: what changed between the view a client holds (its
//! baseline) and the view it gets now.
//!
//! ```text
//! removed_count uv, removed_count × id_gap uv      (ids ascending)
//! record_count uv,  record_count × record          (ids ascending)
//! record: id_gap uv, mask u8, fields in mask order
//! ```
//! Both views are sorted by id; an entity of the baseline that is in
//! neither list keeps its baseline values.

use super::varint::{get_sv, get_uv, put_sv, put_uv};
use super::{mask, DeltaError, QEntity};

/// What [`encode_entities`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EncodedCounts {
    pub removed: usize,
    /// Records of entities new to the client (mask 0x80).
    pub entered: usize,
    /// Records of entities the client had, with changed fields.
    pub changed: usize,
}

/// One step of walking two id-sorted views together.
enum Pair<'a> {
    /// In the baseline only: removed.
    Gone(&'a QEntity),
    /// In the new view only: entered.
    New(&'a QEntity),
    Both(&'a QEntity, &'a QEntity),
}

fn walk<'a>(base: &'a [QEntity], next: &'a [QEntity], mut f: impl FnMut(Pair<'a>)) {
    let (mut i, mut j) = (0, 0);
    while i < base.len() || j < next.len() {
        match (base.get(i), next.get(j)) {
            (Some(b), Some(n)) if b.id == n.id => {
                f(Pair::Both(b, n));
                i += 1;
                j += 1;
            }
            (Some(b), Some(n)) if b.id < n.id => {
                f(Pair::Gone(b));
                i += 1;
            }
            (Some(b), None) => {
                f(Pair::Gone(b));
                i += 1;
            }
            (_, Some(n)) => {
                f(Pair::New(n));
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
}

/// The mask of a record turning `base` into `next` (0: nothing to send).
fn changed_mask(b: &QEntity, n: &QEntity) -> u8 {
    let mut m = 0;
    if b.x != n.x {
        m |= mask::X;
    }
    if b.y != n.y {
        m |= mask::Y;
    }
    if b.z != n.z {
        m |= mask::Z;
    }
    if b.vx != n.vx {
        m |= mask::VX;
    }
    if b.vy != n.vy {
        m |= mask::VY;
    }
    if b.facing != n.facing {
        m |= mask::FACING;
    }
    if b.kind != n.kind || b.flags != n.flags {
        m |= mask::KIND_FLAGS;
    }
    m
}

/// Appends the change from `base` to `next` (both sorted by id, ascending
/// and unique) to `out`. An empty `base` gives a full state: every entity
/// of `next` a record with 0x80.
pub fn encode_entities(base: &[QEntity], next: &[QEntity], out: &mut Vec<u8>) -> EncodedCounts {
    debug_assert!(base.windows(2).all(|w| w[0].id < w[1].id));
    debug_assert!(next.windows(2).all(|w| w[0].id < w[1].id));
    let mut counts = EncodedCounts::default();
    walk(base, next, |p| match p {
        Pair::Gone(_) => counts.removed += 1,
        Pair::New(_) => counts.entered += 1,
        Pair::Both(b, n) => counts.changed += usize::from(changed_mask(b, n) != 0),
    });
    put_uv(out, counts.removed as u32);
    let mut prev = 0;
    walk(base, next, |p| {
        if let Pair::Gone(b) = p {
            put_uv(out, b.id - prev);
            prev = b.id;
        }
    });
    put_uv(out, (counts.entered + counts.changed) as u32);
    let zero = QEntity::default();
    let mut prev = 0;
    walk(base, next, |p| {
        let (from, n, m) = match p {
            Pair::Gone(_) => return,
            Pair::New(n) => (&zero, n, mask::ENTERED | changed_mask(&zero, n)),
            Pair::Both(b, n) => match changed_mask(b, n) {
                0 => return,
                m => (b, n, m),
            },
        };
        put_uv(out, n.id - prev);
        prev = n.id;
        out.push(m);
        if m & mask::KIND_FLAGS != 0 {
            put_uv(out, u32::from(n.kind));
            put_uv(out, u32::from(n.flags));
        }
        for (bit, b, v) in [
            (mask::X, from.x, n.x),
            (mask::Y, from.y, n.y),
            (mask::Z, from.z, n.z),
            (mask::VX, from.vx, n.vx),
            (mask::VY, from.vy, n.vy),
        ] {
            if m & bit != 0 {
                put_sv(out, v.wrapping_sub(b));
            }
        }
        if m & mask::FACING != 0 {
            put_uv(out, u32::from(n.facing));
        }
    });
    counts
}

/// One decoded record.
struct Record {
    id: u32,
    mask: u8,
    e: QEntity,
}

fn read_record(bytes: &mut &[u8], id: u32) -> Result<Record, DeltaError> {
    let (&m, rest) = bytes.split_first().ok_or(DeltaError::Truncated)?;
    *bytes = rest;
    let mut e = QEntity {
        id,
        ..QEntity::default()
    };
    if m & mask::KIND_FLAGS != 0 {
        e.kind = get_uv(bytes)? as u16;
        e.flags = get_uv(bytes)? as u16;
    }
    for (bit, slot) in [
        (mask::X, &mut e.x),
        (mask::Y, &mut e.y),
        (mask::Z, &mut e.z),
        (mask::VX, &mut e.vx),
        (mask::VY, &mut e.vy),
    ] {
        if m & bit != 0 {
            *slot = get_sv(bytes)?;
        }
    }
    if m & mask::FACING != 0 {
        e.facing = get_uv(bytes)? as u16;
    }
    Ok(Record { id, mask: m, e })
}

/// Applies a record to the baseline's entity (`None`: it had none).
fn applied(base: Option<&QEntity>, r: &Record) -> Result<QEntity, DeltaError> {
    if r.mask & mask::ENTERED != 0 {
        return Ok(r.e);
    }
    let mut e = *base.ok_or(DeltaError::UnknownEntity(r.id))?;
    if r.mask & mask::KIND_FLAGS != 0 {
        e.kind = r.e.kind;
        e.flags = r.e.flags;
    }
    for (bit, slot, d) in [
        (mask::X, &mut e.x, r.e.x),
        (mask::Y, &mut e.y, r.e.y),
        (mask::Z, &mut e.z, r.e.z),
        (mask::VX, &mut e.vx, r.e.vx),
        (mask::VY, &mut e.vy, r.e.vy),
    ] {
        if r.mask & bit != 0 {
            *slot = slot.wrapping_add(d);
        }
    }
    if r.mask & mask::FACING != 0 {
        e.facing = r.e.facing;
    }
    Ok(e)
}

/// Reads ascending ids as gaps (the first from 0).
fn next_id(bytes: &mut &[u8], prev: Option<u32>) -> Result<u32, DeltaError> {
    let gap = get_uv(bytes)?;
    match prev {
        None => Ok(gap),
        Some(p) => match p.checked_add(gap) {
            Some(id) if gap > 0 => Ok(id),
            _ => Err(DeltaError::NotAscending(p.wrapping_add(gap))),
        },
    }
}

/// Rebuilds the new view: `base` (sorted by id) changed by `bytes`, into
/// `out` (cleared first; sorted by id).
pub fn apply_entities(
    base: &[QEntity],
    mut bytes: &[u8],
    out: &mut Vec<QEntity>,
) -> Result<(), DeltaError> {
    out.clear();
    let bytes = &mut bytes;
    let removed_count = get_uv(bytes)?;
    // Every id takes at least a byte: a count beyond the bytes is a lie,
    // refused before anything is allocated for it.
    if removed_count as usize > bytes.len() {
        return Err(DeltaError::Truncated);
    }
    let mut removed = Vec::with_capacity(removed_count as usize);
    let mut prev = None;
    for _ in 0..removed_count {
        let id = next_id(bytes, prev)?;
        removed.push(id);
        prev = Some(id);
    }
    let record_count = get_uv(bytes)?;
    if record_count as usize > bytes.len() / 2 {
        return Err(DeltaError::Truncated);
    }
    let (mut i, mut r) = (0, 0);
    let mut prev = None;
    for _ in 0..record_count {
        let id = next_id(bytes, prev)?;
        prev = Some(id);
        let rec = read_record(bytes, id)?;
        if removed.binary_search(&id).is_ok() {
            return Err(DeltaError::RemovedAndRecorded(id));
        }
        // Baseline entities before it: kept unless removed.
        while i < base.len() && base[i].id < id {
            if removed.get(r) == Some(&base[i].id) {
                r += 1;
            } else {
                out.push(base[i]);
            }
            i += 1;
        }
        while removed.get(r).is_some_and(|&x| x < id) {
            r += 1; // unknown removed ids are ignored
        }
        let had = base.get(i).filter(|b| b.id == id);
        if had.is_some() {
            i += 1;
        }
        out.push(applied(had, &rec)?);
    }
    if !bytes.is_empty() {
        return Err(DeltaError::TrailingBytes(bytes.len()));
    }
    for b in &base[i..] {
        while removed.get(r).is_some_and(|&x| x < b.id) {
            r += 1;
        }
        if removed.get(r) == Some(&b.id) {
            r += 1;
        } else {
            out.push(*b);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    fn ent(id: u32, x: i32) -> QEntity {
        QEntity {
            id,
            kind: 1,
            x,
            y: -x,
            ..QEntity::default()
        }
    }

    fn random_view(rng: &mut Rng, ids_max: u32) -> Vec<QEntity> {
        let mut v = Vec::new();
        for id in 0..ids_max {
            if rng.below(3) == 0 {
                continue;
            }
            let small = |rng: &mut Rng| (rng.below(2000) as i32) - 1000;
            v.push(QEntity {
                id: id * 7 + rng.below(7) as u32,
                kind: rng.below(3) as u16,
                flags: if rng.below(4) == 0 { u16::MAX } else { 0 },
                x: if rng.below(8) == 0 {
                    rng.next_u64() as i32
                } else {
                    small(rng)
                },
                y: small(rng),
                z: if rng.below(2) == 0 { 0 } else { small(rng) },
                vx: small(rng),
                vy: rng.next_u64() as i32,
                facing: rng.next_u64() as u16,
            });
        }
        v
    }

    /// Random pairs of views (including ids shared, new, gone, unchanged
    /// and wrapping differences) round-trip exactly.
    #[test]
    fn any_change_round_trips() {
        let mut rng = Rng::new(0x5eed);
        let (mut out, mut back) = (Vec::new(), Vec::new());
        for round in 0..3000 {
            let n = 1 + rng.below(40) as u32;
            let base = random_view(&mut rng, n);
            let mut next = random_view(&mut rng, n);
            // Keep some entities unchanged or barely moved.
            for e in &mut next {
                if let Ok(i) = base.binary_search_by_key(&e.id, |b| b.id) {
                    match rng.below(3) {
                        0 => *e = base[i],
                        1 => {
                            *e = base[i];
                            e.x = e.x.wrapping_add(3);
                        }
                        _ => {}
                    }
                }
            }
            out.clear();
            let counts = encode_entities(&base, &next, &mut out);
            apply_entities(&base, &out, &mut back).unwrap();
            assert_eq!(back, next, "round {round}");
            let kept = next
                .iter()
                .filter(|e| base.binary_search_by_key(&e.id, |b| b.id).is_ok())
                .count();
            assert_eq!(counts.removed, base.len() - kept);
            assert_eq!(counts.entered, next.len() - kept);
            // Full state: from nothing.
            out.clear();
            encode_entities(&[], &next, &mut out);
            apply_entities(&[], &out, &mut back).unwrap();
            assert_eq!(back, next);
        }
    }

    #[test]
    fn the_documented_bytes() {
        let base = [ent(1, 64), ent(5, 0), ent(9, 0)];
        let next = [ent(1, 128), ent(5, 0), ent(12, 1)];
        let mut out = Vec::new();
        encode_entities(&base, &next, &mut out);
        assert_eq!(
            out,
            [
                1, 9, // removed: id 9
                2, // records
                1, 0x03, 128, 1, 127, // id 1: x +64, y −64
                11, 0xC3, 1, 0, 2, 1, // id 12 entered: kind 1 flags 0, x 1, y −1
            ]
        );
        let mut back = Vec::new();
        apply_entities(&base, &out, &mut back).unwrap();
        assert_eq!(back, next);
        out.clear();
        encode_entities(&base, &base, &mut out);
        assert_eq!(out, [0, 0], "nothing changed: two bytes");
    }

    #[test]
    fn bad_bytes_are_errors_never_panics() {
        let base = [ent(1, 64), ent(5, 0)];
        let mut back = Vec::new();
        let e = |b: &[u8], back: &mut Vec<QEntity>| apply_entities(&base, b, back);
        assert_eq!(e(&[], &mut back), Err(DeltaError::Truncated));
        assert_eq!(
            e(&[0, 1, 7, 0x01, 2], &mut back),
            Err(DeltaError::UnknownEntity(7))
        );
        assert_eq!(
            e(&[1, 1, 1, 1, 0x01, 2], &mut back),
            Err(DeltaError::RemovedAndRecorded(1))
        );
        assert_eq!(
            e(&[0, 2, 5, 0x01, 2, 0, 0x01, 2], &mut back),
            Err(DeltaError::NotAscending(5))
        );
        assert_eq!(e(&[0, 0, 9], &mut back), Err(DeltaError::TrailingBytes(1)));
        // Unknown removed ids are ignored.
        assert_eq!(e(&[2, 2, 1, 0], &mut back), Ok(()));
        assert_eq!(back, [ent(1, 64), ent(5, 0)]);
        let mut rng = Rng::new(3);
        for _ in 0..20_000 {
            let len = rng.below(24);
            let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = apply_entities(&base, &junk, &mut back);
        }
    }
}
