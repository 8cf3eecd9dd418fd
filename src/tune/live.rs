//! What the host has now: sysctl values from /proc/sys, the rlimits and
//! CAP_IPC_LOCK of this process (or of a running server, `--pid`), and the
//! cores it may run on. The comparison code takes a [`LiveHost`] value, so
//! tests hand it fake hosts.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::catalog;
use super::units::UNLIMITED;

/// Where the kernel exposes sysctls.
pub const PROC_SYS: &str = "/proc/sys";
/// CAP_IPC_LOCK's bit in /proc/<pid>/status CapEff.
const CAP_IPC_LOCK_BIT: u32 = 14;

/// A soft/hard rlimit pair; `UNLIMITED` stands for RLIM_INFINITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What the process is held to now.
    pub soft: u64,
    /// How far it may raise `soft` itself.
    pub hard: u64,
}

/// The live values `tune` compares.
#[derive(Debug, Clone)]
pub struct LiveHost {
    /// Sysctl key → value (whitespace normalized); a key the kernel lacks is
    /// missing from the map.
    pub sysctls: BTreeMap<String, String>,
    pub nofile: Limit,
    pub memlock: Limit,
    /// Cores the process may run on (affinity mask).
    pub cores: usize,
    /// io_uring does not charge locked memory to a process holding
    /// CAP_IPC_LOCK (root, usually): such a process passes where the service
    /// user fails.
    pub ipc_lock: bool,
}

/// Whose values to read.
#[derive(Debug, Clone)]
pub struct Source {
    /// Normally /proc/sys; tests point it at a scratch tree.
    pub sysctl_root: PathBuf,
    /// A running server's pid, or `None` for this process.
    pub pid: Option<u32>,
}

impl Default for Source {
    fn default() -> Source {
        Source {
            sysctl_root: PathBuf::from(PROC_SYS),
            pid: None,
        }
    }
}

impl LiveHost {
    /// Reads `keys` and the process values named by `source`.
    pub fn read<'a>(
        source: &Source,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<LiveHost> {
        let mut sysctls = BTreeMap::new();
        for key in keys {
            if let Some(v) = read_sysctl(&source.sysctl_root, key)? {
                sysctls.insert(key.to_owned(), v);
            }
        }
        let (nofile, memlock, cores, ipc_lock) = match source.pid {
            None => (
                getrlimit(libc::RLIMIT_NOFILE)?,
                getrlimit(libc::RLIMIT_MEMLOCK)?,
                crate::util::cores::available_cores().len(),
                read_ipc_lock("self")?,
            ),
            Some(pid) => {
                let dir = format!("/proc/{pid}");
                let limits = std::fs::read_to_string(format!("{dir}/limits"))
                    .with_context(|| format!("cannot read {dir}/limits (is pid {pid} running?)"))?;
                let status = std::fs::read_to_string(format!("{dir}/status"))
                    .with_context(|| format!("cannot read {dir}/status"))?;
                (
                    parse_limits(&limits, "Max open files")?,
                    parse_limits(&limits, "Max locked memory")?,
                    parse_cores(&status)?,
                    parse_ipc_lock(&status)?,
                )
            }
        };
        Ok(LiveHost {
            sysctls,
            nofile,
            memlock,
            cores,
            ipc_lock,
        })
    }

    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctls.get(key).map(String::as_str)
    }
}

/// One sysctl's value, or `None` when the kernel lacks the key.
pub fn read_sysctl(root: &Path, key: &str) -> anyhow::Result<Option<String>> {
    let path = catalog::path_of(root, key);
    match std::fs::read_to_string(&path) {
        Ok(v) => Ok(Some(v.split_whitespace().collect::<Vec<_>>().join(" "))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn getrlimit(resource: libc::__rlimit_resource_t) -> anyhow::Result<Limit> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit");
    }
    let value = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            UNLIMITED
        } else {
            v
        }
    };
    Ok(Limit {
        soft: value(r.rlim_cur),
        hard: value(r.rlim_max),
    })
}

fn read_ipc_lock(pid: &str) -> anyhow::Result<bool> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_ipc_lock(&status)
}

/// The line of /proc/<pid>/limits named `name`, e.g.
/// `Max open files            20000                20000                files`.
pub fn parse_limits(text: &str, name: &str) -> anyhow::Result<Limit> {
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .with_context(|| format!("no {name:?} line in limits"))?;
    let mut fields = line[name.len()..].split_whitespace();
    let mut next = || -> anyhow::Result<u64> {
        match fields.next() {
            Some("unlimited") => Ok(UNLIMITED),
            Some(v) => v.parse().with_context(|| format!("{name}: {v:?}")),
            None => anyhow::bail!("{name}: missing value"),
        }
    };
    Ok(Limit {
        soft: next()?,
        hard: next()?,
    })
}

/// CAP_IPC_LOCK from the `CapEff:` line of /proc/<pid>/status.
pub fn parse_ipc_lock(status: &str) -> anyhow::Result<bool> {
    let hex = status_field(status, "CapEff:")?;
    let caps = u64::from_str_radix(hex, 16).with_context(|| format!("CapEff {hex:?}"))?;
    Ok(caps & (1 << CAP_IPC_LOCK_BIT) != 0)
}

/// Core count from the `Cpus_allowed_list:` line of /proc/<pid>/status.
fn parse_cores(status: &str) -> anyhow::Result<usize> {
    let list = status_field(status, "Cpus_allowed_list:")?;
    let cores = crate::config::parse_cpu_list(list).map_err(anyhow::Error::msg)?;
    Ok(cores.len())
}

fn status_field<'a>(status: &'a str, name: &str) -> anyhow::Result<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .with_context(|| format!("no {name} line in status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max open files            20000                20000                files
Max locked memory         8388608              unlimited            bytes
";

    #[test]
    fn proc_limits_parse() {
        assert_eq!(
            parse_limits(LIMITS, "Max open files").unwrap(),
            Limit {
                soft: 20_000,
                hard: 20_000
            }
        );
        assert_eq!(
            parse_limits(LIMITS, "Max locked memory").unwrap(),
            Limit {
                soft: 8 << 20,
                hard: UNLIMITED
            }
        );
        assert!(parse_limits(LIMITS, "Max processes").is_err());
    }

    #[test]
    fn status_fields_parse() {
        let root = "Name:\tx\nCapEff:\t000001ffffffffff\nCpus_allowed_list:\t0-1,4\n";
        let user = "CapEff:\t0000000000000000\nCpus_allowed_list:\t3\n";
        assert!(parse_ipc_lock(root).unwrap());
        assert!(!parse_ipc_lock(user).unwrap());
        assert_eq!(parse_cores(root).unwrap(), 3);
        assert_eq!(parse_cores(user).unwrap(), 1);
    }

    #[test]
    fn absent_sysctls_are_none() {
        let dir = std::env::temp_dir().join(format!("shardline-live-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net/core")).unwrap();
        std::fs::write(dir.join("net/core/somaxconn"), "4096\n").unwrap();
        assert_eq!(
            read_sysctl(&dir, "net.core.somaxconn").unwrap().as_deref(),
            Some("4096")
        );
        assert_eq!(read_sysctl(&dir, "net.core.nothing").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
