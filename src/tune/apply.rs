//! `tune apply`: writes a profile's sysctls to /proc/sys (root only), and
//! prints what cannot be written from here — rlimits are set where shardline
//! starts (systemd unit, limits.conf), and runtime sysctls need a sysctl.d
//! file to survive a reboot.
//!
//! The plan is pure (profile + live values → steps); only [`write`] touches
//! the files. A write never loosens a setting: fields already beyond the
//! profile are kept (see [`catalog::merged`]).

use std::fmt::Write as _;
use std::path::Path;

use super::catalog::{self, SysctlSpec};
use super::live::{self, LiveHost};
use super::profile::Profile;

/// What `apply` does with one sysctl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write `new` (the live value misses the profile).
    Set {
        key: &'static str,
        live: String,
        new: String,
    },
    /// Already matches.
    Keep { key: &'static str, live: String },
    /// Optional and absent on this kernel: nothing to do.
    Skip { key: &'static str },
    /// Required but absent: cannot be set on this kernel.
    Missing { key: &'static str },
}

/// The steps that bring `live` to `profile`, in catalog order.
pub fn plan(profile: &Profile, live: &LiveHost) -> Vec<Step> {
    profile
        .sysctls
        .iter()
        .map(|(spec, wanted)| step(spec, wanted, live))
        .collect()
}

fn step(spec: &'static SysctlSpec, wanted: &str, live: &LiveHost) -> Step {
    let key = spec.key;
    match live.sysctl(key) {
        None if spec.optional => Step::Skip { key },
        None => Step::Missing { key },
        Some(v) if catalog::satisfies(spec.cmp, v, wanted) => Step::Keep {
            key,
            live: v.to_owned(),
        },
        Some(v) => Step::Set {
            key,
            live: v.to_owned(),
            new: catalog::merged(spec.cmp, Some(v), wanted),
        },
    }
}

/// Whether `apply` must refuse: it would write the real /proc/sys without
/// being root. A dry run, or a scratch root in tests, needs no privilege.
pub fn must_refuse(dry_run: bool, sysctl_root: &Path, euid: u32) -> bool {
    !dry_run && sysctl_root == Path::new(live::PROC_SYS) && euid != 0
}

/// Writes one step's value and reads it back: the kernel may clamp or
/// refuse a value without an error on write.
pub fn write(root: &Path, key: &str, value: &str) -> Result<(), String> {
    let path = catalog::path_of(root, key);
    std::fs::write(&path, format!("{value}\n")).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = catalog::lookup(key).expect("planned keys come from the catalog");
    match live::read_sysctl(root, key) {
        Ok(Some(now)) if catalog::satisfies(spec.cmp, &now, value) => Ok(()),
        Ok(now) => Err(format!(
            "{key}: wrote {value:?} but the kernel now reports {:?}",
            now.unwrap_or_default()
        )),
        Err(e) => Err(format!("{key}: {e:#}")),
    }
}

/// The plan as the operator reads it.
pub fn describe(steps: &[Step], dry_run: bool) -> String {
    let width = steps.iter().map(|s| key_of(s).len()).max().unwrap_or(0);
    let set = if dry_run { "would set" } else { "set" };
    let mut out = String::new();
    for s in steps {
        let line = match s {
            Step::Set { key, live, new } => format!("{set:<9}  {key:<width$}  {live} → {new}"),
            Step::Keep { key, live } => format!("{:<9}  {key:<width$}  {live}", "keep"),
            Step::Skip { key } => format!(
                "{:<9}  {key:<width$}  absent on this kernel (optional)",
                "skip"
            ),
            Step::Missing { key } => format!(
                "{:<9}  {key:<width$}  absent on this kernel: cannot be set",
                "MISSING"
            ),
        };
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn key_of(s: &Step) -> &'static str {
    match s {
        Step::Set { key, .. }
        | Step::Keep { key, .. }
        | Step::Skip { key }
        | Step::Missing { key } => key,
    }
}

/// What the operator installs by hand: a sysctl.d file for reboots, the
/// rlimits where shardline starts, the NIC script, the serve flags.
pub fn instructions(profile: &Profile, steps: &[Step]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sysctls written to /proc/sys last until reboot. To keep them, put these lines in \
         /etc/sysctl.d/60-shardline.conf (the top-level sysctl.conf says why for each) and \
         run `sysctl --system`:"
    );
    for ((spec, wanted), step) in profile.sysctls.iter().zip(steps) {
        // What the host will hold after apply: never below what it has now.
        let value = match step {
            Step::Set { new, .. } => new.as_str(),
            Step::Keep { live, .. } => live.as_str(),
            Step::Skip { .. } | Step::Missing { .. } => wanted.as_str(),
        };
        let skip_if_absent = if spec.optional { "-" } else { "" };
        let _ = writeln!(out, "  {skip_if_absent}{} = {value}", spec.key);
    }
    let memlock_kib = profile.memlock_bytes / 1024;
    let _ = writeln!(
        out,
        "\nrlimits cannot be raised for another process; set them where shardline starts:\n  \
         systemd unit (tuning/shardline.service):\n    LimitNOFILE={}\n    LimitMEMLOCK={}\n    \
         CPUAffinity={}\n  \
         login shell (/etc/security/limits.d/shardline.conf; memlock in KiB):\n    \
         shardline  -  nofile   {}\n    shardline  -  memlock  {memlock_kib}",
        profile.nofile,
        systemd_bytes(profile.memlock_bytes),
        profile.shard_cpus,
        profile.nofile,
    );
    if let Some(irq) = &profile.irq_cpus {
        let _ = writeln!(
            out,
            "\nNIC interrupts away from the shard cores (root):\n  tuning/nic.sh IFACE {irq} {}",
            profile.shard_cpus
        );
    }
    let s = &profile.sizing;
    let _ = writeln!(
        out,
        "\nthen run:\n  shardline serve --cpus {} --shards {} --max-connections {} \
         --io-memory-bytes {}",
        profile.shard_cpus, s.shards, s.max_connections, s.io_memory_bytes
    );
    out
}

/// Bytes as systemd's Limit*= reads them (K, M, G are powers of 1024).
fn systemd_bytes(n: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::live::Limit;
    use super::super::profile;
    use super::*;

    fn live(pairs: &[(&str, &str)]) -> LiveHost {
        LiveHost {
            sysctls: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            nofile: Limit {
                soft: 1024,
                hard: 1024,
            },
            memlock: Limit {
                soft: 8 << 20,
                hard: 8 << 20,
            },
            cores: 2,
            ipc_lock: false,
        }
    }

    #[test]
    fn plan_sets_keeps_and_skips() {
        let p = profile::load("small-vm").unwrap();
        let steps = plan(
            &p,
            &live(&[
                ("net.core.somaxconn", "65535"),
                ("net.ipv4.tcp_fin_timeout", "60"),
                ("net.ipv4.ip_local_port_range", "32768 60999"),
            ]),
        );
        assert!(steps.contains(&Step::Keep {
            key: "net.core.somaxconn",
            live: "65535".into()
        }));
        assert!(steps.contains(&Step::Set {
            key: "net.ipv4.tcp_fin_timeout",
            live: "60".into(),
            new: "15".into()
        }));
        assert!(steps.contains(&Step::Set {
            key: "net.ipv4.ip_local_port_range",
            live: "32768 60999".into(),
            new: "10240 65535".into()
        }));
        assert!(steps.contains(&Step::Skip {
            key: "net.netfilter.nf_conntrack_max"
        }));
        assert!(steps.contains(&Step::Missing {
            key: "net.ipv4.tcp_syncookies"
        }));
    }

    #[test]
    fn refuses_only_real_writes_without_root() {
        let proc_sys = Path::new(live::PROC_SYS);
        assert!(must_refuse(false, proc_sys, 1000));
        assert!(!must_refuse(true, proc_sys, 1000));
        assert!(!must_refuse(false, proc_sys, 0));
        assert!(!must_refuse(false, Path::new("/tmp/fake-sys"), 1000));
    }

    #[test]
    fn instructions_carry_rlimits_and_flags() {
        let p = profile::load("10gbe-16core").unwrap();
        let text = instructions(&p, &plan(&p, &live(&[])));
        assert!(text.contains("LimitNOFILE=1048576"), "{text}");
        assert!(text.contains("LimitMEMLOCK=256M"), "{text}");
        assert!(text.contains("CPUAffinity=2-15"), "{text}");
        assert!(text.contains("shardline  -  memlock  262144"), "{text}");
        assert!(text.contains("tuning/nic.sh IFACE 0-1 2-15"), "{text}");
        assert!(
            text.contains("-net.netfilter.nf_conntrack_max = 1048576"),
            "{text}"
        );
        // A value already above the profile is persisted as it is.
        let above = live(&[("fs.file-max", "9999999")]);
        let text = instructions(&p, &plan(&p, &above));
        assert!(text.contains("  fs.file-max = 9999999\n"), "{text}");
        assert!(
            text.contains("--cpus 2-15 --shards 14 --max-connections 100000"),
            "{text}"
        );
        assert_eq!(systemd_bytes(1 << 30), "1G");
        assert_eq!(systemd_bytes(3 << 19), "1536K");
        assert_eq!(systemd_bytes(1000), "1000");
    }
}
