//! What a set of `serve` flags needs from the host: open files and locked
//! memory, with the per-shard and per-process overheads measured on glommio
//! 0.9. `tune check`, `tune apply` and the start-up warnings all use these
//! formulas, so they agree on what "enough" means.

use super::profile::Sizing;

/// One socket per connection. (A hand-over to another shard holds a second
/// fd for a moment; connections past --max-connections hold one while they
/// get their HTTP 503. Both are transient and covered by the margins below.)
pub const FDS_PER_CONNECTION: u64 = 1;
/// Per shard beyond its connections: measured 5 with glommio 0.9 (the
/// listener, the rings' and wakers' anonymous inodes); 16 leaves room for
/// snapshot files and glommio's blocking-thread pipes.
pub const FDS_PER_SHARD: u64 = 16;
/// Per process: measured 7 (stdio, the signal pipe); 64 covers log files,
/// admin and metrics sockets.
pub const FDS_PER_PROCESS: u64 = 64;
/// glommio registers `io_memory` in each of its 3 rings per executor; io_uring
/// charges it to RLIMIT_MEMLOCK of the user (not of the process), unless the
/// process has CAP_IPC_LOCK.
pub const RINGS_PER_SHARD: u64 = 3;
/// glommio refuses to start an executor when RLIMIT_MEMLOCK is below this,
/// whoever runs it.
pub const GLOMMIO_MEMLOCK_MIN_BYTES: u64 = 512 * 1024;

/// Open files the flags need: connections + shards × 16 + 64.
pub fn fds(s: &Sizing) -> u64 {
    s.max_connections as u64 * FDS_PER_CONNECTION
        + s.shards as u64 * FDS_PER_SHARD
        + FDS_PER_PROCESS
}

/// Connections that fit an fd limit once shards and process took theirs.
pub fn connections_within(nofile: u64, shards: usize) -> u64 {
    nofile.saturating_sub(shards as u64 * FDS_PER_SHARD + FDS_PER_PROCESS) / FDS_PER_CONNECTION
}

/// Locked memory the flags need: 3 rings × io_memory × shards.
pub fn memlock_bytes(s: &Sizing) -> u64 {
    RINGS_PER_SHARD * s.io_memory_bytes as u64 * s.shards as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ten_gbe_sizing() {
        let s = Sizing {
            max_connections: 100_000,
            shards: 14,
            io_memory_bytes: 512 * 1024,
        };
        assert_eq!(fds(&s), 100_288);
        assert_eq!(memlock_bytes(&s), 21 << 20);
        assert_eq!(connections_within(20_000, 14), 19_712);
        assert_eq!(connections_within(100, 14), 0);
    }
}
