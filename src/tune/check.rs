//! Comparing a host with a profile, and saying what each mismatch costs for
//! the `serve` flags at hand. Pure code: the live values come in as a
//! [`LiveHost`], so every verdict and consequence is tested with fake hosts.

use super::catalog::{self, Cmp, SysctlSpec};
use super::live::LiveHost;
use super::need;
use super::profile::{Profile, Sizing};
use super::units;

/// The accept queue each shard asks `listen()` for; the kernel truncates it
/// to net.core.somaxconn.
const LISTEN_BACKLOG: u64 = crate::node::LISTEN_BACKLOG as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Mismatch,
    /// An optional key this kernel lacks (no conntrack, Linux < 6.6): fine.
    Absent,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Absent => "absent (ok)",
        }
    }
}

/// One line of the check.
#[derive(Debug, Clone)]
pub struct Row {
    pub setting: String,
    pub live: String,
    pub wanted: String,
    pub verdict: Verdict,
    /// For a mismatch: what goes wrong, for these flags where it depends on them.
    pub consequence: Option<String>,
}

#[derive(Debug)]
pub struct Report {
    pub profile: String,
    pub summary: String,
    /// The flags judged (the profile's sizing unless overridden).
    pub flags: Sizing,
    pub flags_are_profiles: bool,
    pub ipc_lock: bool,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn mismatches(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Mismatch)
            .count()
    }
}

/// Every row of `profile` against `live`, consequences for `flags`.
pub fn check(profile: &Profile, flags: &Sizing, live: &LiveHost) -> Report {
    let mut rows = vec![
        nofile_row(profile, flags, live),
        memlock_row(profile, flags, live),
        cores_row(profile, flags, live),
    ];
    rows.extend(
        profile
            .sysctls
            .iter()
            .map(|(spec, wanted)| sysctl_row(spec, wanted, flags, live)),
    );
    Report {
        profile: profile.name.clone(),
        summary: profile.summary.clone(),
        flags: *flags,
        flags_are_profiles: *flags == profile.sizing,
        ipc_lock: live.ipc_lock,
        rows,
    }
}

/// What `serve` with `flags` cannot do on `live`: the start-up warnings.
/// Unlike [`check`] this ignores profiles and judges memlock as the process
/// at hand is charged (not at all with CAP_IPC_LOCK).
pub fn flag_problems(flags: &Sizing, live: &LiveHost) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(fd_problem(flags, live));
    if !live.ipc_lock || live.memlock.soft < need::GLOMMIO_MEMLOCK_MIN_BYTES {
        out.extend(memlock_problem(flags, live));
    }
    out.extend(core_problem(flags, live, 0));
    for key in ["net.core.somaxconn", "fs.file-max", "fs.nr_open"] {
        if let Some(v) = live.sysctl(key) {
            out.extend(sysctl_flag_note(key, v, flags).map(|n| format!("{key} = {v}: {n}")));
        }
    }
    if let Some(v) = live.sysctl("kernel.io_uring_disabled") {
        if v != "0" {
            let spec = catalog::lookup("kernel.io_uring_disabled").expect("in catalog");
            out.push(format!(
                "kernel.io_uring_disabled = {v}: {}",
                spec.consequence
            ));
        }
    }
    out
}

fn limit_live(l: &super::live::Limit) -> String {
    format!("{} (hard {})", units::limit(l.soft), units::limit(l.hard))
}

fn nofile_row(p: &Profile, flags: &Sizing, live: &LiveHost) -> Row {
    let ok = live.nofile.soft >= p.nofile;
    let consequence = (!ok).then(|| {
        fd_problem(flags, live).unwrap_or_else(|| {
            format!(
                "nofile {} covers these flags ({} fds for --max-connections {}) but not the \
                 profile's {}: a larger --max-connections needs a new limit and a restart",
                live.nofile.soft,
                units::count(need::fds(flags)),
                flags.max_connections,
                p.nofile
            )
        })
    });
    Row {
        setting: "nofile".into(),
        live: limit_live(&live.nofile),
        wanted: format!("≥ {}", p.nofile),
        verdict: verdict(ok),
        consequence,
    }
}

fn memlock_row(p: &Profile, flags: &Sizing, live: &LiveHost) -> Row {
    let ok = live.memlock.soft >= p.memlock_bytes;
    let consequence = (!ok).then(|| {
        memlock_problem(flags, live).unwrap_or_else(|| {
            format!(
                "memlock {} covers these flags ({} locked) but not the profile's {}: a larger \
                 --io-memory-bytes or more shards needs a new limit and a restart",
                units::bytes(live.memlock.soft),
                units::bytes(need::memlock_bytes(flags)),
                units::bytes(p.memlock_bytes)
            )
        })
    });
    Row {
        setting: "memlock".into(),
        live: format!(
            "{} (hard {})",
            units::bytes(live.memlock.soft),
            units::bytes(live.memlock.hard)
        ),
        wanted: format!("≥ {}", units::bytes(p.memlock_bytes)),
        verdict: verdict(ok),
        consequence,
    }
}

fn cores_row(p: &Profile, flags: &Sizing, live: &LiveHost) -> Row {
    let ok = live.cores >= p.cores_min;
    let irq_cores = p.cores_min - p.sizing.shards;
    let consequence = (!ok).then(|| {
        core_problem(flags, live, irq_cores).unwrap_or_else(|| {
            format!(
                "{} cores < the profile's {}: this host is smaller than the profile \
                 (`shardline tune profiles` lists smaller ones)",
                live.cores, p.cores_min
            )
        })
    });
    Row {
        setting: "cores".into(),
        live: live.cores.to_string(),
        wanted: format!("≥ {}", p.cores_min),
        verdict: verdict(ok),
        consequence,
    }
}

fn sysctl_row(spec: &SysctlSpec, wanted: &str, flags: &Sizing, live: &LiveHost) -> Row {
    let wanted_shown = format!("{} {wanted}", spec.cmp.symbol());
    let row = |live_shown: &str, verdict, consequence| Row {
        setting: spec.key.into(),
        live: live_shown.into(),
        wanted: wanted_shown.clone(),
        verdict,
        consequence,
    };
    let Some(value) = live.sysctl(spec.key) else {
        if spec.optional {
            return row("absent", Verdict::Absent, None);
        }
        let text = format!(
            "{} is absent on this kernel (too old, or the module is not loaded), so it \
             cannot be set: {}",
            spec.key, spec.consequence
        );
        return row("absent", Verdict::Mismatch, Some(text));
    };
    if catalog::satisfies(spec.cmp, value, wanted) {
        return row(value, Verdict::Ok, None);
    }
    let mut text = format!("{} {value} {} {wanted}: ", spec.key, miss_symbol(spec.cmp));
    if let Some(note) = sysctl_flag_note(spec.key, value, flags) {
        text.push_str(&note);
        text.push_str("; ");
    }
    text.push_str(spec.consequence);
    row(value, Verdict::Mismatch, Some(text))
}

/// How a failed comparison reads: "4096 < 65535", "60 > 15".
fn miss_symbol(cmp: Cmp) -> &'static str {
    match cmp {
        Cmp::AtLeast => "<",
        Cmp::AtMost => ">",
        Cmp::Exactly => "≠",
        Cmp::Covers => "does not cover",
    }
}

fn verdict(ok: bool) -> Verdict {
    if ok {
        Verdict::Ok
    } else {
        Verdict::Mismatch
    }
}

/// The soft fd limit cannot hold `flags`.
fn fd_problem(flags: &Sizing, live: &LiveHost) -> Option<String> {
    let needed = need::fds(flags);
    let soft = live.nofile.soft;
    if soft >= needed {
        return None;
    }
    let fix = if live.nofile.hard >= needed {
        format!(
            "the hard limit {} allows it: raise the soft limit (ulimit -n {needed}, or \
             LimitNOFILE= in the unit)",
            units::limit(live.nofile.hard)
        )
    } else {
        "raise LimitNOFILE (tuning/shardline.service) or the hard limit (tuning/limits.conf)"
            .to_owned()
    };
    Some(format!(
        "nofile {soft} < {} needed for --max-connections {} on {} shards (1 per connection \
         + {} per shard + {}): accept fails with EMFILE past ~{} connections and the rest \
         wait in the backlog until they time out; {fix}",
        units::count(needed),
        flags.max_connections,
        flags.shards,
        need::FDS_PER_SHARD,
        need::FDS_PER_PROCESS,
        units::count(need::connections_within(soft, flags.shards)),
    ))
}

/// The soft memlock limit cannot hold `flags`' registered io_uring memory.
fn memlock_problem(flags: &Sizing, live: &LiveHost) -> Option<String> {
    let soft = live.memlock.soft;
    if soft < need::GLOMMIO_MEMLOCK_MIN_BYTES {
        return Some(format!(
            "memlock {} < {}: glommio refuses to start any shard",
            units::bytes(soft),
            units::bytes(need::GLOMMIO_MEMLOCK_MIN_BYTES)
        ));
    }
    let needed = need::memlock_bytes(flags);
    if soft >= needed {
        return None;
    }
    let who = if live.ipc_lock {
        "this process has CAP_IPC_LOCK (root), which io_uring does not charge, but a \
         non-root service user is held to it"
    } else {
        "this process lacks CAP_IPC_LOCK, so it is held to it"
    };
    Some(format!(
        "memlock {} < {} needed for --io-memory-bytes {} on {} shards ({} rings × {} × {}): \
         io_uring buffer registration fails for a user without CAP_IPC_LOCK (glommio logs a \
         WARN and runs without registered buffers); {who}. io_uring charges the user, so a \
         second process of the same user (a new node started while the old one drains) counts too",
        units::bytes(soft),
        units::bytes(needed),
        flags.io_memory_bytes,
        flags.shards,
        need::RINGS_PER_SHARD,
        units::bytes(flags.io_memory_bytes as u64),
        flags.shards,
    ))
}

/// Too few cores for one shard each, plus `irq_cores` set aside for the NIC.
fn core_problem(flags: &Sizing, live: &LiveHost, irq_cores: usize) -> Option<String> {
    if live.cores < flags.shards {
        let unpinned = flags.shards - live.cores;
        let irq = if irq_cores > 0 {
            ", and no core is left for NIC interrupts"
        } else {
            ""
        };
        return Some(format!(
            "{} shards on {} cores: {unpinned} shards run unpinned and share cores with \
             pinned ones, so their ticks jitter{irq}",
            flags.shards, live.cores
        ));
    }
    let spare = live.cores - flags.shards;
    if spare < irq_cores {
        return Some(format!(
            "{} cores for {} shards leave {spare} for NIC interrupts where the profile sets \
             aside {irq_cores}: softirq work lands on shard cores and delays ticks",
            live.cores, flags.shards
        ));
    }
    None
}

/// Where a sysctl makes the flags themselves impossible.
fn sysctl_flag_note(key: &str, value: &str, flags: &Sizing) -> Option<String> {
    let v: u64 = value.parse().ok()?;
    let fds = need::fds(flags);
    match key {
        "net.core.somaxconn" if v < LISTEN_BACKLOG => Some(format!(
            "below shardline's listen backlog {LISTEN_BACKLOG}: the kernel truncates each \
             shard's accept queue to {v}"
        )),
        "fs.file-max" if v < fds => Some(format!(
            "below the {} files --max-connections {} needs by itself",
            units::count(fds),
            flags.max_connections
        )),
        "fs.nr_open" if v < fds => Some(format!(
            "no fd limit can reach the {} files --max-connections {} needs",
            units::count(fds),
            flags.max_connections
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::live::Limit;
    use super::super::profile;
    use super::*;

    /// The benchmark machine (BENCHMARKS.md, Machine): 2 cores, 20,000 files,
    /// 8 MiB locked, root.
    fn this_machine() -> LiveHost {
        let sysctls = [
            ("net.core.somaxconn", "4096"),
            ("net.ipv4.tcp_rmem", "4096 131072 33554432"),
            ("net.ipv4.tcp_fin_timeout", "60"),
            ("net.ipv4.ip_local_port_range", "32768 60999"),
            ("fs.file-max", "2466174"),
            ("fs.nr_open", "1048576"),
            ("kernel.io_uring_disabled", "0"),
        ];
        LiveHost {
            sysctls: sysctls
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            nofile: Limit {
                soft: 20_000,
                hard: 20_000,
            },
            memlock: Limit {
                soft: 8 << 20,
                hard: 8 << 20,
            },
            cores: 2,
            ipc_lock: true,
        }
    }

    fn row<'a>(r: &'a Report, setting: &str) -> &'a Row {
        r.rows.iter().find(|x| x.setting == setting).unwrap()
    }

    #[test]
    fn this_machine_misses_the_ten_gbe_fds_and_memlock() {
        let p = profile::load("10gbe-16core").unwrap();
        let r = check(&p, &p.sizing, &this_machine());
        let nofile = row(&r, "nofile");
        assert_eq!(nofile.verdict, Verdict::Mismatch);
        let text = nofile.consequence.as_deref().unwrap();
        assert!(
            text.starts_with("nofile 20000 < 100,288 needed for --max-connections 100000"),
            "{text}"
        );
        assert!(text.contains("EMFILE past ~19,712 connections"), "{text}");
        let memlock = row(&r, "memlock");
        assert_eq!(memlock.verdict, Verdict::Mismatch);
        let text = memlock.consequence.as_deref().unwrap();
        assert!(
            text.starts_with("memlock 8 MiB < 21 MiB needed for --io-memory-bytes 524288 on 14 shards (3 rings × 512 KiB × 14)"),
            "{text}"
        );
        assert!(text.contains("has CAP_IPC_LOCK"), "{text}");
        let cores = row(&r, "cores").consequence.as_deref().unwrap();
        assert!(
            cores.starts_with("14 shards on 2 cores: 12 shards run unpinned"),
            "{cores}"
        );
        assert!(
            cores.contains("no core is left for NIC interrupts"),
            "{cores}"
        );
    }

    #[test]
    fn sysctl_verdicts_and_texts() {
        let p = profile::load("10gbe-16core").unwrap();
        let r = check(&p, &p.sizing, &this_machine());
        assert_eq!(row(&r, "net.ipv4.tcp_rmem").verdict, Verdict::Ok);
        assert_eq!(row(&r, "fs.file-max").verdict, Verdict::Ok);
        assert_eq!(row(&r, "kernel.io_uring_disabled").verdict, Verdict::Ok);
        let fin = row(&r, "net.ipv4.tcp_fin_timeout");
        assert_eq!(fin.verdict, Verdict::Mismatch);
        assert!(fin
            .consequence
            .as_deref()
            .unwrap()
            .starts_with("net.ipv4.tcp_fin_timeout 60 > 15: "));
        let ports = row(&r, "net.ipv4.ip_local_port_range");
        assert_eq!(ports.wanted, "range ⊇ 10240 65535");
        // Optional and absent: fine. Required and absent: a mismatch.
        let conntrack = row(&r, "net.netfilter.nf_conntrack_max");
        assert_eq!(conntrack.verdict, Verdict::Absent);
        let syncookies = row(&r, "net.ipv4.tcp_syncookies");
        assert_eq!(syncookies.verdict, Verdict::Mismatch);
        assert!(syncookies
            .consequence
            .as_deref()
            .unwrap()
            .contains("absent"));
    }

    #[test]
    fn somaxconn_below_the_listen_backlog_says_so() {
        let p = profile::load("small-vm").unwrap();
        let mut live = this_machine();
        live.sysctls
            .insert("net.core.somaxconn".into(), "1024".into());
        let r = check(&p, &p.sizing, &live);
        let text = row(&r, "net.core.somaxconn").consequence.clone().unwrap();
        assert!(
            text.starts_with(
                "net.core.somaxconn 1024 < 4096: below shardline's listen backlog 4096"
            ),
            "{text}"
        );
    }

    #[test]
    fn limits_that_cover_the_flags_name_the_missing_headroom() {
        let p = profile::load("small-vm").unwrap();
        let live = this_machine();
        let r = check(&p, &p.sizing, &live);
        let text = row(&r, "nofile").consequence.clone().unwrap();
        assert!(
            text.starts_with("nofile 20000 covers these flags (10,096 fds"),
            "{text}"
        );
        assert_eq!(row(&r, "memlock").verdict, Verdict::Mismatch);
        assert_eq!(row(&r, "cores").verdict, Verdict::Ok);
    }

    #[test]
    fn a_soft_limit_below_the_hard_one_says_raise_it() {
        let mut live = this_machine();
        live.nofile = Limit {
            soft: 1024,
            hard: 1_048_576,
        };
        let flags = Sizing {
            max_connections: 10_000,
            shards: 2,
            io_memory_bytes: 512 << 10,
        };
        let text = fd_problem(&flags, &live).unwrap();
        assert!(text.contains("the hard limit 1048576 allows it"), "{text}");
    }

    #[test]
    fn flag_problems_for_serve() {
        let flags = Sizing {
            max_connections: 10_000,
            shards: 2,
            io_memory_bytes: 512 << 10,
        };
        // The defaults fit this machine.
        assert!(flag_problems(&flags, &this_machine()).is_empty());
        // A non-root user with 16 shards of 512 KiB: 24 MiB > 8 MiB.
        let mut user = this_machine();
        user.ipc_lock = false;
        user.cores = 16;
        let many = Sizing {
            max_connections: 50_000,
            shards: 16,
            ..flags
        };
        let w = flag_problems(&many, &user);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("nofile 20000 < 50,320"), "{}", w[0]);
        assert!(w[1].starts_with("memlock 8 MiB < 24 MiB"), "{}", w[1]);
        assert!(w[1].contains("lacks CAP_IPC_LOCK"), "{}", w[1]);
        // Root is not charged, so only the fd limit is left.
        let w = flag_problems(&many, &this_machine());
        assert!(w.iter().all(|w| !w.starts_with("memlock")), "{w:?}");
        // Below glommio's floor even root fails.
        let mut tiny = this_machine();
        tiny.memlock.soft = 64 << 10;
        let w = flag_problems(&flags, &tiny);
        assert_eq!(
            w,
            ["memlock 64 KiB < 512 KiB: glommio refuses to start any shard"]
        );
    }

    #[test]
    fn flag_problems_name_kernel_blockers() {
        let flags = Sizing {
            max_connections: 10_000,
            shards: 4,
            io_memory_bytes: 512 << 10,
        };
        let mut live = this_machine();
        let sysctls: BTreeMap<String, String> = [
            ("net.core.somaxconn", "128"),
            ("kernel.io_uring_disabled", "2"),
            ("fs.file-max", "8192"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        live.sysctls = sysctls;
        let w = flag_problems(&flags, &live);
        let joined = w.join("\n");
        assert!(joined.contains("4 shards on 2 cores"), "{joined}");
        assert!(
            joined.contains("net.core.somaxconn = 128: below shardline's listen backlog 4096"),
            "{joined}"
        );
        assert!(
            joined.contains("fs.file-max = 8192: below the 10,128 files"),
            "{joined}"
        );
        assert!(
            joined.contains("kernel.io_uring_disabled = 2: "),
            "{joined}"
        );
    }

    #[test]
    fn other_flags_change_the_consequence() {
        let p = profile::load("10gbe-16core").unwrap();
        let flags = Sizing {
            max_connections: 5_000,
            shards: 2,
            io_memory_bytes: 512 << 10,
        };
        let r = check(&p, &flags, &this_machine());
        assert!(!r.flags_are_profiles);
        let text = row(&r, "nofile").consequence.clone().unwrap();
        assert!(
            text.starts_with("nofile 20000 covers these flags (5,096 fds"),
            "{text}"
        );
        let text = row(&r, "cores").consequence.clone().unwrap();
        assert!(
            text.contains("leave 0 for NIC interrupts where the profile sets aside 2"),
            "{text}"
        );
    }
}
