//! Where instances live and where players go, as small pure functions.
//!
//! An instance belongs to exactly one shard, chosen by hashing its id, so
//! any shard that receives a connection for it can route it without a
//! table or a lock. New players without a named instance go to the
//! least-loaded instance that has room; when none has, the shard makes a
//! fresh id that hashes to itself, so the new instance is local.

use super::types::InstanceId;

/// FNV-1a 64-bit offset basis (the published constant).
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime (the published constant).
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Prefix of ids the server makes up; studios' own ids should avoid it.
const AUTO_ID_PREFIX: &[u8; 5] = b"auto-";
/// `"auto-"` + 16 hex digits.
const AUTO_ID_LEN: usize = AUTO_ID_PREFIX.len() + 16;
/// Draws [`new_instance_id`] makes per shard before it calls the random
/// source broken. Each draw lands on the wanted shard with chance
/// `1 / shards`, so a fair source fails this many in a row with chance
/// about e^-64: only a broken (e.g. constant) source ever gets here.
const AUTO_ID_DRAWS_PER_SHARD_MAX: usize = 64;

/// FNV-1a, 64-bit: <http://www.isthe.com/chongo/tech/comp/fnv/>.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// Owning shard of an instance: the FNV-1a 64-bit hash of the id bytes,
/// mixed by MurmurHash3's 64-bit finalizer, scaled to `shards` by its high
/// bits (`mixed × shards >> 64`). Every shard computes it the same way; no
/// table needed.
///
/// Stable across releases: the value is part of the deployment (snapshot
/// files and routing agree on it). Changing the hash re-homes instances, so
/// a node restarted with a new one would restore instances on the wrong
/// shard. Changing the shard count re-homes them too, by design.
///
/// The finalizer is there because raw FNV-1a spreads badly: its low bits
/// depend only on the low bits of each byte (`hash % 8` puts `room-a` and
/// `room-i` together) and its high bits barely feel the last byte
/// (`match-0`..`match-999` split 70/30 over two shards).
///
/// # Panics
/// If `shards` is 0.
pub fn shard_for(id: &InstanceId, shards: usize) -> usize {
    shard_of_bytes(id.as_str().as_bytes(), shards)
}

fn shard_of_bytes(bytes: &[u8], shards: usize) -> usize {
    assert!(shards > 0, "a node has at least one shard");
    // The product's high word is below `shards`, so it fits a usize.
    ((u128::from(fmix64(fnv1a_64(bytes))) * shards as u128) >> 64) as usize
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Least-loaded instance (by player count, ties broken by id for
/// determinism) among those with room.
pub fn least_loaded<'a>(
    candidates: impl Iterator<Item = (&'a InstanceId, usize, usize)>,
) -> Option<&'a InstanceId> {
    candidates
        .filter(|&(_, players, players_max)| players < players_max)
        .min_by_key(|&(id, players, _)| (players, id))
        .map(|(id, _, _)| id)
}

/// A fresh id (`"auto-"` + 16 hex chars) that [`shard_for`] maps to `shard`,
/// drawn from the caller's 64-bit random source `next_u64` (retried until
/// it maps; expected `shards` draws).
///
/// Nothing is allocated for rejected draws. The caller still checks the id
/// is not already in use: 64 random bits make a clash unlikely, not
/// impossible.
///
/// # Panics
/// If `shard >= shards`, or if `next_u64` yields no suitable value in
/// `64 × shards` draws (a broken source).
pub fn new_instance_id(
    shard: usize,
    shards: usize,
    mut next_u64: impl FnMut() -> u64,
) -> InstanceId {
    assert!(shard < shards, "shard {shard} out of 0..{shards}");
    let mut buf = [0u8; AUTO_ID_LEN];
    buf[..AUTO_ID_PREFIX.len()].copy_from_slice(AUTO_ID_PREFIX);
    for _ in 0..AUTO_ID_DRAWS_PER_SHARD_MAX.saturating_mul(shards) {
        write_hex(next_u64(), &mut buf[AUTO_ID_PREFIX.len()..]);
        if shard_of_bytes(&buf, shards) == shard {
            let s = std::str::from_utf8(&buf).expect("ASCII by construction");
            return InstanceId::parse(s).expect("auto ids are valid by construction");
        }
    }
    panic!("random source gave no id for shard {shard} of {shards}: is it constant?");
}

/// Writes `v` as 16 lowercase hex digits, most significant first.
fn write_hex(v: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    debug_assert_eq!(out.len(), 16);
    for (i, d) in out.iter_mut().enumerate() {
        *d = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    /// A deterministic 64-bit source (splitmix64).
    fn splitmix(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shard_for_is_stable() {
        // Pinned (hashes cross-checked with an independent FNV-1a): if these
        // change, deployed instances move to other shards.
        let pinned = [
            ("lobby", 0x1cca_e3b6_ef72_f533, [1, 2, 5]),
            ("match-1", 0xd35a_f082_5780_4230, [0, 1, 3]),
            ("match-2", 0xd35a_f382_5780_4749, [1, 2, 4]),
            ("eu.west_42", 0x1144_7663_0b79_a957, [1, 2, 5]),
        ];
        for (s, hash, shards_2_4_8) in pinned {
            assert_eq!(fnv1a_64(s.as_bytes()), hash, "{s}");
            let got = [2, 4, 8].map(|n| shard_for(&id(s), n));
            assert_eq!(got, shards_2_4_8, "{s}");
            assert_eq!(
                shard_for(&id(s), 7),
                ((u128::from(fmix64(hash)) * 7) >> 64) as usize,
                "{s}"
            );
            assert_eq!(shard_for(&id(s), 1), 0);
        }
    }

    fn assert_even(ids: &[InstanceId], shards: usize) {
        let mut counts = vec![0usize; shards];
        for i in ids {
            counts[shard_for(i, shards)] += 1;
        }
        let fair = ids.len() as f64 / shards as f64;
        for (shard, &n) in counts.iter().enumerate() {
            let off = (n as f64 - fair).abs() / fair;
            assert!(
                off <= 0.3,
                "{shards} shards: shard {shard} got {n} of {}: {counts:?}",
                ids.len()
            );
        }
    }

    #[test]
    fn shard_for_spreads_ids_evenly() {
        let sequential: Vec<_> = (0..1000).map(|i| id(&format!("match-{i}"))).collect();
        let mut next = splitmix(7);
        let random: Vec<_> = (0..1000)
            .map(|_| id(&format!("room-{:x}", next())))
            .collect();
        for shards in [2, 3, 4, 8] {
            assert_even(&sequential, shards);
            assert_even(&random, shards);
        }
    }

    #[test]
    fn least_loaded_picks_by_players_and_skips_full() {
        let (a, b, c) = (id("a"), id("b"), id("c"));
        // Order of candidates does not matter; players do, not position.
        let got = least_loaded([(&a, 5, 8), (&b, 2, 8), (&c, 3, 8)].into_iter());
        assert_eq!(got, Some(&b));
        // b is the emptiest but full (its own limit is 2).
        let got = least_loaded([(&a, 5, 8), (&b, 2, 2), (&c, 3, 8)].into_iter());
        assert_eq!(got, Some(&c));
        // Ties go to the smaller id, whatever the iteration order.
        let got = least_loaded([(&c, 1, 8), (&a, 1, 8), (&b, 4, 8)].into_iter());
        assert_eq!(got, Some(&a));
    }

    #[test]
    fn least_loaded_is_none_when_all_are_full_or_none_exist() {
        let (a, b) = (id("a"), id("b"));
        assert_eq!(least_loaded([(&a, 8, 8), (&b, 9, 8)].into_iter()), None);
        assert_eq!(least_loaded(std::iter::empty()), None);
    }

    #[test]
    fn new_instance_id_maps_to_the_requested_shard() {
        let mut next = splitmix(1);
        for shards in [1, 2, 3, 8] {
            for shard in 0..shards {
                let got = new_instance_id(shard, shards, &mut next);
                assert_eq!(shard_for(&got, shards), shard);
                let s = got.as_str();
                assert!(s.starts_with("auto-") && s.len() == AUTO_ID_LEN, "{s}");
                assert!(s[5..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
        }
    }

    #[test]
    fn new_instance_id_uses_the_drawn_bits() {
        // shards = 1: the first draw always fits, so the id shows it.
        let got = new_instance_id(0, 1, || 0x0123_4567_89ab_cdef);
        assert_eq!(got.as_str(), "auto-0123456789abcdef");
    }

    #[test]
    #[should_panic(expected = "random source")]
    fn a_constant_source_is_detected() {
        let stuck = new_instance_id(0, 1, || 7);
        // 7 maps to one shard of 2; ask for the other one.
        let other = 1 - shard_for(&stuck, 2);
        new_instance_id(other, 2, || 7);
    }
}
