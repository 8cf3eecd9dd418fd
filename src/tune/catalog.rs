//! The kernel settings shardline knows: for each sysctl, how a live value is
//! compared with a profile's (at least, at most, exactly, covers a range) and
//! what goes wrong when it misses. Profiles (`tuning/profiles/*.toml`) give
//! only the values; a key missing here is refused when a profile loads, so
//! every checked setting has a stated consequence.
//!
//! Values are compared field by field: `tcp_rmem = "4096 131072 16777216"`
//! is three numbers, each held to its own bound.

use std::cmp::Ordering;

/// How a live value must relate to the profile's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// Every field ≥ the profile's (limits, queue lengths, buffer sizes).
    AtLeast,
    /// Every field ≤ the profile's (timeouts, watermarks).
    AtMost,
    /// Every field equal (switches such as `tcp_syncookies = 1`).
    Exactly,
    /// A two-field range that contains the profile's range
    /// (`ip_local_port_range`).
    Covers,
}

impl Cmp {
    /// How the wanted value is shown: `≥ 65535`, `range ⊇ 10240 65535`.
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::AtLeast => "≥",
            Cmp::AtMost => "≤",
            Cmp::Exactly => "=",
            Cmp::Covers => "range ⊇",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cmp::AtLeast => "at-least",
            Cmp::AtMost => "at-most",
            Cmp::Exactly => "exactly",
            Cmp::Covers => "covers",
        }
    }
}

/// One sysctl shardline checks.
#[derive(Debug)]
pub struct SysctlSpec {
    /// Dotted name, as in sysctl.conf; the file is /proc/sys/<dots → slashes>.
    pub key: &'static str,
    pub cmp: Cmp,
    /// Absent on some kernels or configurations, and then nothing is wrong
    /// (no conntrack module loaded; no `io_uring_disabled` before Linux 6.6).
    pub optional: bool,
    /// What goes wrong on this host when the live value misses the profile's.
    pub consequence: &'static str,
}

const fn spec(
    key: &'static str,
    cmp: Cmp,
    optional: bool,
    consequence: &'static str,
) -> SysctlSpec {
    SysctlSpec {
        key,
        cmp,
        optional,
        consequence,
    }
}

/// Every known sysctl, in the order `tune check` prints them.
pub const SYSCTLS: &[SysctlSpec] = &[
    spec(
        "net.core.somaxconn",
        Cmp::AtLeast,
        false,
        "each shard's accept queue is the smaller of shardline's backlog and this: in a \
         reconnect storm SYNs past it are dropped or cookied, and clients retry after \
         1 s, 3 s, 7 s",
    ),
    spec(
        "net.ipv4.tcp_max_syn_backlog",
        Cmp::AtLeast,
        false,
        "with SYN cookies off, SYNs past 3/4 of it are dropped during a reconnect storm",
    ),
    spec(
        "net.ipv4.tcp_syncookies",
        Cmp::Exactly,
        false,
        "a SYN flood or reconnect storm that fills the SYN queue drops legitimate \
         connects instead of answering them with cookies",
    ),
    spec(
        "net.core.netdev_max_backlog",
        Cmp::AtLeast,
        false,
        "packets waiting for softirq are dropped at tick bursts (column 2 of \
         /proc/net/softnet_stat): players see loss and retransmit stalls",
    ),
    spec(
        "net.core.netdev_budget",
        Cmp::AtLeast,
        false,
        "softirq yields to ksoftirqd after fewer packets per round: RX rings overflow \
         sooner at tick bursts",
    ),
    spec(
        "net.core.rmem_default",
        Cmp::AtLeast,
        false,
        "non-TCP sockets (UDP metrics, netlink) start with smaller buffers and drop \
         bursts; TCP is not affected",
    ),
    spec(
        "net.core.wmem_default",
        Cmp::AtLeast,
        false,
        "non-TCP sockets start with smaller send buffers; TCP is not affected",
    ),
    spec(
        "net.core.rmem_max",
        Cmp::AtLeast,
        false,
        "SO_RCVBUF requests are capped lower (shardline sets none; proxies and load \
         generators on the host do)",
    ),
    spec(
        "net.core.wmem_max",
        Cmp::AtLeast,
        false,
        "SO_SNDBUF requests are capped lower (shardline sets none; proxies and load \
         generators on the host do)",
    ),
    spec(
        "net.ipv4.tcp_rmem",
        Cmp::AtLeast,
        false,
        "TCP receive buffers start smaller or autotune to a lower ceiling: input \
         bursts and transfers over long round trips are throttled",
    ),
    spec(
        "net.ipv4.tcp_wmem",
        Cmp::AtLeast,
        false,
        "TCP send buffers start smaller: one tick's writes hit EAGAIN sooner and \
         need more retries",
    ),
    spec(
        "net.ipv4.tcp_notsent_lowat",
        Cmp::AtMost,
        false,
        "a slow client can park up to a whole send buffer (MiBs) of stale state in \
         the kernel before shardline's outbound buffer fills and drops it (close \
         4002): late detection, stale snapshots, kernel memory",
    ),
    spec(
        "net.ipv4.ip_local_port_range",
        Cmp::Covers,
        false,
        "outgoing connections from this host (a proxy in front of shardline, a load \
         generator) run out of ephemeral ports: connect() fails with EADDRNOTAVAIL",
    ),
    spec(
        "fs.file-max",
        Cmp::AtLeast,
        false,
        "the host-wide file table fills before the process limit: accept fails with \
         ENFILE, for every process on the host",
    ),
    spec(
        "fs.nr_open",
        Cmp::AtLeast,
        false,
        "RLIMIT_NOFILE cannot be raised above it: a systemd unit with a larger \
         LimitNOFILE fails to start",
    ),
    spec(
        "net.ipv4.tcp_fin_timeout",
        Cmp::AtMost,
        false,
        "sockets of players who vanished linger longer in FIN_WAIT_2 after shardline \
         closes them (heartbeat drop, kick): kernel memory for gone players",
    ),
    spec(
        "net.ipv4.tcp_tw_reuse",
        Cmp::Exactly,
        false,
        "outgoing connections cannot reuse TIME_WAIT ports (2 = loopback only): a \
         proxy or load generator on this host exhausts ports under churn",
    ),
    spec(
        "net.ipv4.tcp_slow_start_after_idle",
        Cmp::Exactly,
        false,
        "after an idle gap the congestion window restarts at 10 segments: the first \
         big state update after a lull takes extra round trips",
    ),
    spec(
        "kernel.io_uring_disabled",
        Cmp::Exactly,
        true,
        "1 limits io_uring to kernel.io_uring_group, 2 disables it: glommio cannot \
         create its rings and no shard starts",
    ),
    spec(
        "net.netfilter.nf_conntrack_max",
        Cmp::AtLeast,
        true,
        "when the conntrack table is full the kernel drops new connections \
         (\"nf_conntrack: table full, dropping packet\")",
    ),
];

pub fn lookup(key: &str) -> Option<&'static SysctlSpec> {
    SYSCTLS.iter().find(|s| s.key == key)
}

/// The file that holds `key` under a sysctl root such as /proc/sys.
pub fn path_of(root: &std::path::Path, key: &str) -> std::path::PathBuf {
    root.join(key.replace('.', "/"))
}

fn fields(value: &str) -> Vec<&str> {
    value.split_whitespace().collect()
}

fn numbers(value: &str) -> Option<Vec<u64>> {
    fields(value).iter().map(|f| f.parse().ok()).collect()
}

/// Whether a live value meets the wanted one under `cmp`. Values whose
/// fields are not numbers only ever match `Exactly`.
pub fn satisfies(cmp: Cmp, live: &str, wanted: &str) -> bool {
    if cmp == Cmp::Exactly {
        return fields(live) == fields(wanted);
    }
    let (Some(l), Some(w)) = (numbers(live), numbers(wanted)) else {
        return false;
    };
    if l.len() != w.len() {
        return false;
    }
    match cmp {
        Cmp::AtLeast => l.iter().zip(&w).all(|(l, w)| l >= w),
        Cmp::AtMost => l.iter().zip(&w).all(|(l, w)| l <= w),
        Cmp::Covers => l.len() == 2 && l[0] <= w[0] && l[1] >= w[1],
        Cmp::Exactly => unreachable!("handled above"),
    }
}

/// The value `tune apply` writes: the wanted value, except that fields
/// already beyond it are kept (an `AtLeast` field above the profile stays,
/// a wider port range stays). Writing it never loosens a setting.
pub fn merged(cmp: Cmp, live: Option<&str>, wanted: &str) -> String {
    let normalized = fields(wanted).join(" ");
    let (Some(l), Some(w)) = (live.and_then(numbers), numbers(wanted)) else {
        return normalized;
    };
    if l.len() != w.len() {
        return normalized;
    }
    let keep = |i: usize, better: Ordering| -> u64 {
        if l[i].cmp(&w[i]) == better {
            l[i]
        } else {
            w[i]
        }
    };
    let out: Vec<u64> = match cmp {
        Cmp::Exactly => return normalized,
        Cmp::AtLeast => (0..w.len()).map(|i| keep(i, Ordering::Greater)).collect(),
        Cmp::AtMost => (0..w.len()).map(|i| keep(i, Ordering::Less)).collect(),
        Cmp::Covers if w.len() == 2 => vec![keep(0, Ordering::Less), keep(1, Ordering::Greater)],
        Cmp::Covers => return normalized,
    };
    out.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_holds_every_field() {
        assert!(satisfies(Cmp::AtLeast, "65535", "4096"));
        assert!(satisfies(Cmp::AtLeast, "4096", "4096"));
        assert!(!satisfies(Cmp::AtLeast, "1024", "4096"));
        assert!(satisfies(
            Cmp::AtLeast,
            "4096 131072 33554432",
            "4096 131072 16777216"
        ));
        assert!(!satisfies(
            Cmp::AtLeast,
            "4096 16384 4194304",
            "4096 65536 16777216"
        ));
        assert!(!satisfies(
            Cmp::AtLeast,
            "4096 16384",
            "4096 65536 16777216"
        ));
        assert!(!satisfies(Cmp::AtLeast, "lots", "4096"));
    }

    #[test]
    fn at_most_exactly_and_covers() {
        assert!(satisfies(Cmp::AtMost, "15", "15"));
        assert!(!satisfies(Cmp::AtMost, "60", "15"));
        assert!(!satisfies(Cmp::AtMost, "4294967295", "65536"));
        assert!(satisfies(Cmp::Exactly, "1", "1"));
        assert!(!satisfies(Cmp::Exactly, "2", "1"));
        assert!(satisfies(Cmp::Exactly, "a\tb", "a b"));
        assert!(satisfies(Cmp::Covers, "1024 65535", "10240 65535"));
        assert!(!satisfies(Cmp::Covers, "32768 60999", "10240 65535"));
        assert!(!satisfies(Cmp::Covers, "10240", "10240 65535"));
    }

    #[test]
    fn merged_never_loosens() {
        assert_eq!(
            merged(
                Cmp::AtLeast,
                Some("4096 131072 33554432"),
                "4096 65536 16777216"
            ),
            "4096 131072 33554432"
        );
        assert_eq!(
            merged(
                Cmp::AtLeast,
                Some("4096 16384 4194304"),
                "4096 65536 16777216"
            ),
            "4096 65536 16777216"
        );
        assert_eq!(merged(Cmp::AtMost, Some("60"), "15"), "15");
        assert_eq!(merged(Cmp::AtMost, Some("10"), "15"), "10");
        assert_eq!(
            merged(Cmp::Covers, Some("32768 60999"), "10240 65535"),
            "10240 65535"
        );
        assert_eq!(
            merged(Cmp::Covers, Some("1024 65535"), "10240 65535"),
            "1024 65535"
        );
        assert_eq!(merged(Cmp::Exactly, Some("2"), "1"), "1");
        assert_eq!(merged(Cmp::AtLeast, None, "4096"), "4096");
    }

    #[test]
    fn merged_values_satisfy_the_profile() {
        let cases = [
            (Cmp::AtLeast, "4096 16384 4194304", "4096 65536 16777216"),
            (Cmp::AtMost, "4294967295", "65536"),
            (Cmp::Covers, "32768 60999", "10240 65535"),
            (Cmp::Exactly, "2", "1"),
        ];
        for (cmp, live, wanted) in cases {
            let m = merged(cmp, Some(live), wanted);
            assert!(satisfies(cmp, &m, wanted), "{cmp:?} {live} → {m}");
        }
    }

    #[test]
    fn keys_are_unique() {
        for (i, s) in SYSCTLS.iter().enumerate() {
            assert!(
                SYSCTLS[i + 1..].iter().all(|t| t.key != s.key),
                "{} twice",
                s.key
            );
        }
    }
}
