//! Fenced ownership: who owns an instance, and since which *epoch*.
//!
//! Every claim and take-over gives the instance a fresh epoch from one
//! counter (`sl:epochs`), stored beside the owner (`sl:epoch:{instance}`).
//! A node remembers the epoch it got, and every write it makes *as the
//! owner* — a replica, a release — is a Lua script that first checks that
//! the directory still names this node **with this epoch**. A write from a
//! node that lost the instance (its claim died with a primary before it
//! reached the replica that was promoted, or the region took the instance
//! over while the node was cut off) is refused, and the node learns it lost.
//!
//! After any reconnect — a failover included — the agent holds every claim
//! as unverified until it has compared it with the directory ([`verdict`]);
//! a claim found lost is handed to its owner (see `handover.rs`).
//!
//! The scripts below are the only writers of `sl:inst:*` and `sl:epoch:*`.
//! Pure code: the scripts are text, [`verdict`] a function.

/// Claims `KEYS[1]` (instance → node) for `ARGV[1]` unless another node
/// has it, with a new epoch (`KEYS[4]` counts them) in `KEYS[2]`; adds the
/// instance `ARGV[2]` to the node's set `KEYS[3]`. Returns `{owner, epoch}`.
pub const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  local e = redis.call('INCR', KEYS[4])
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], e)
  redis.call('SADD', KEYS[3], ARGV[2])
  return {ARGV[1], e}
end
if cur == ARGV[1] then redis.call('SADD', KEYS[3], ARGV[2]) end
return {cur, tonumber(redis.call('GET', KEYS[2]) or '0')}";

/// Moves instance `ARGV[3]` from dead node `ARGV[1]` (set `KEYS[3]`) to
/// `ARGV[2]` (set `KEYS[4]`) if the dead node still owns it, with a new
/// epoch (`KEYS[5]` counts them) in `KEYS[2]`. Returns the epoch, or 0
/// when another node got it first.
pub const TAKE_OVER: &str = r"
redis.call('SREM', KEYS[3], ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local e = redis.call('INCR', KEYS[5])
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[2], e)
  redis.call('SADD', KEYS[4], ARGV[3])
  return e
end
return 0";

/// Releases instance `ARGV[3]` (its owner, epoch and replica `KEYS[4]`)
/// if node `ARGV[1]` owns it with epoch `ARGV[2]`. 1: released.
pub const RELEASE: &str = r"
redis.call('SREM', KEYS[3], ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1]
   and tonumber(redis.call('GET', KEYS[2]) or '0') == tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
  return 1
end
return 0";

/// Stores a replica (`ARGV[3]` into `KEYS[3]`, unless empty) and points
/// each seat key `KEYS[4..]` at instance `ARGV[5]` for `ARGV[4]` ms — only
/// while node `ARGV[1]` owns the instance with epoch `ARGV[2]`. 1: written,
/// 0: fenced off (the node no longer owns it).
pub const REPLICATE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1]
   or tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[2]) then
  return 0
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3]) end
for i = 4, #KEYS do
  redis.call('SET', KEYS[i], ARGV[5], 'PX', ARGV[4])
end
return 1";

/// Deletes seat `KEYS[1]` if it still points at instance `ARGV[1]` and
/// node `ARGV[2]` owns that instance (`KEYS[2]`): a seat that ended there.
/// A seat since moved elsewhere, or an instance since owned by another
/// node, is left alone. 1: deleted.
pub const SEAT_END: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// What the directory says of a claim this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ours, with the epoch we hold.
    Held,
    /// Ours, under another epoch (our own later or earlier claim, the other
    /// one lost in a failover): we hold that one now.
    Renewed(u64),
    /// Nobody's: the claim was lost and nobody took the instance since.
    Vacant,
    /// Another node's.
    Lost(String),
}

/// Compares our claim (`me`, `epoch`) with the directory's record.
pub fn verdict(me: &str, epoch: u64, owner: Option<&str>, their_epoch: Option<u64>) -> Verdict {
    match owner {
        None => Verdict::Vacant,
        Some(o) if o != me => Verdict::Lost(o.to_owned()),
        Some(_) => match their_epoch.unwrap_or(0) {
            e if e == epoch => Verdict::Held,
            e => Verdict::Renewed(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_judged_by_owner_and_epoch() {
        assert_eq!(verdict("a", 7, Some("a"), Some(7)), Verdict::Held);
        assert_eq!(verdict("a", 7, Some("a"), Some(4)), Verdict::Renewed(4));
        // A record written before epochs existed reads as epoch 0.
        assert_eq!(verdict("a", 0, Some("a"), None), Verdict::Held);
        assert_eq!(verdict("a", 7, None, None), Verdict::Vacant);
        assert_eq!(
            verdict("a", 7, Some("b"), Some(7)),
            Verdict::Lost("b".into()),
            "the same epoch under another node is another claim"
        );
    }
}
