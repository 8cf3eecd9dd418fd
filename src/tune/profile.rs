//! Hardware profiles: the data files in `tuning/profiles/`, embedded in the
//! binary so `shardline tune` works from any directory. A profile names the
//! kernel values, rlimits and core count a hardware class needs, and the
//! `serve` flags it is sized for. Loading checks that a profile can hold its
//! own sizing (enough fds, locked memory and cores for its flags).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::catalog::{self, SysctlSpec};
use super::need;

/// `tune check` without `--profile`: the hardware the docs target first.
pub const DEFAULT_PROFILE: &str = "10gbe-16core";

/// (name, TOML text) of every built-in profile, smallest first.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "small-vm",
        include_str!("../../tuning/profiles/small-vm.toml"),
    ),
    (
        "10gbe-16core",
        include_str!("../../tuning/profiles/10gbe-16core.toml"),
    ),
    (
        "25gbe-64core",
        include_str!("../../tuning/profiles/25gbe-64core.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown profile {name:?}; known profiles: {known}")]
    Unknown { name: String, known: String },
    #[error("profile {name}: {source}")]
    Parse {
        name: String,
        source: Box<toml::de::Error>,
    },
    #[error("profile {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// The `serve` flags a profile is sized for; also the flags `tune check`
/// judges the host against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub max_connections: usize,
    pub shards: usize,
    pub io_memory_bytes: usize,
}

/// A loaded, validated profile.
#[derive(Debug)]
pub struct Profile {
    pub name: String,
    pub summary: String,
    /// Shard cores plus the cores set aside for NIC interrupts.
    pub cores_min: usize,
    pub sizing: Sizing,
    /// Cores for `serve --cpus` (one per shard).
    pub shard_cpus: String,
    /// Cores that take the NIC's interrupts (tuning/nic.sh); `None` when the
    /// host is too small to set any aside.
    pub irq_cpus: Option<String>,
    pub nofile: u64,
    pub memlock_bytes: u64,
    /// Wanted values, in catalog order.
    pub sysctls: Vec<(&'static SysctlSpec, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    summary: String,
    cores_min: usize,
    serve: ServeFile,
    #[serde(default)]
    nic: Option<NicFile>,
    rlimits: RlimitsFile,
    sysctl: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    max_connections: usize,
    shards: usize,
    io_memory_bytes: usize,
    cpus: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NicFile {
    irq_cpus: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RlimitsFile {
    nofile: u64,
    memlock_bytes: u64,
}

/// Names of the built-in profiles, smallest first.
pub fn names() -> Vec<&'static str> {
    EMBEDDED.iter().map(|(n, _)| *n).collect()
}

/// Loads a built-in profile by name.
pub fn load(name: &str) -> Result<Profile, ProfileError> {
    let Some((_, text)) = EMBEDDED.iter().find(|(n, _)| *n == name) else {
        return Err(ProfileError::Unknown {
            name: name.to_owned(),
            known: names().join(", "),
        });
    };
    parse(name, text)
}

/// Parses and validates a profile's TOML text.
pub fn parse(name: &str, text: &str) -> Result<Profile, ProfileError> {
    let file: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Parse {
        name: name.to_owned(),
        source: Box::new(e),
    })?;
    let invalid = |reason: String| ProfileError::Invalid {
        name: name.to_owned(),
        reason,
    };
    if file.name != name {
        return Err(invalid(format!("its name field says {:?}", file.name)));
    }
    let mut wanted = BTreeMap::new();
    for (key, value) in &file.sysctl {
        if catalog::lookup(key).is_none() {
            return Err(invalid(format!(
                "unknown sysctl {key}: add it to src/tune/catalog.rs with its comparison \
                 and consequence"
            )));
        }
        let value = match value {
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::String(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            other => return Err(invalid(format!("{key}: {other} is not a number or string"))),
        };
        wanted.insert(key.as_str(), value);
    }
    let sysctls = catalog::SYSCTLS
        .iter()
        .filter_map(|spec| wanted.get(spec.key).map(|v| (spec, v.clone())))
        .collect();
    let profile = Profile {
        name: file.name,
        summary: file.summary,
        cores_min: file.cores_min,
        sizing: Sizing {
            max_connections: file.serve.max_connections,
            shards: file.serve.shards,
            io_memory_bytes: file.serve.io_memory_bytes,
        },
        shard_cpus: file.serve.cpus,
        irq_cpus: file.nic.map(|n| n.irq_cpus),
        nofile: file.rlimits.nofile,
        memlock_bytes: file.rlimits.memlock_bytes,
        sysctls,
    };
    validate(&profile).map_err(invalid)?;
    Ok(profile)
}

/// A profile must be able to run the flags it is sized for.
fn validate(p: &Profile) -> Result<(), String> {
    let shard_cpus =
        crate::config::parse_cpu_list(&p.shard_cpus).map_err(|e| format!("cpus: {e}"))?;
    if shard_cpus.len() != p.sizing.shards {
        return Err(format!(
            "cpus {:?} lists {} cores for {} shards",
            p.shard_cpus,
            shard_cpus.len(),
            p.sizing.shards
        ));
    }
    let irq_cpus = match &p.irq_cpus {
        Some(list) => crate::config::parse_cpu_list(list).map_err(|e| format!("irq_cpus: {e}"))?,
        None => Vec::new(),
    };
    if let Some(c) = irq_cpus.iter().find(|c| shard_cpus.contains(c)) {
        return Err(format!("core {c} is both a shard core and an IRQ core"));
    }
    if p.cores_min < shard_cpus.len() + irq_cpus.len() {
        return Err(format!(
            "cores_min {} < {} shard cores + {} IRQ cores",
            p.cores_min,
            shard_cpus.len(),
            irq_cpus.len()
        ));
    }
    let fds = need::fds(&p.sizing);
    if p.nofile < fds {
        return Err(format!(
            "nofile {} < {fds} needed by its own sizing",
            p.nofile
        ));
    }
    let locked = need::memlock_bytes(&p.sizing);
    if p.memlock_bytes < locked {
        return Err(format!(
            "memlock_bytes {} < {locked} needed by its own sizing",
            p.memlock_bytes
        ));
    }
    let backlog = crate::node::LISTEN_BACKLOG as u64;
    match p
        .sysctls
        .iter()
        .find(|(s, _)| s.key == "net.core.somaxconn")
    {
        Some((_, v)) if v.parse::<u64>().is_ok_and(|v| v >= backlog) => {}
        _ => {
            return Err(format!(
                "net.core.somaxconn must be at least shardline's listen backlog {backlog}"
            ))
        }
    }
    for (spec, value) in &p.sysctls {
        if !catalog::satisfies(spec.cmp, value, value) {
            return Err(format!(
                "{}: {value:?} is not a valid {} value",
                spec.key,
                spec.cmp.name()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_profile_loads() {
        for name in names() {
            let p = load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.name, name);
            assert!(!p.sysctls.is_empty());
        }
    }

    #[test]
    fn unknown_profile_lists_the_known_ones() {
        let err = load("40gbe").unwrap_err().to_string();
        assert!(err.contains("\"40gbe\""), "{err}");
        for name in names() {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn nofile_never_exceeds_nr_open() {
        for name in names() {
            let p = load(name).unwrap();
            let nr_open = p.sysctls.iter().find(|(s, _)| s.key == "fs.nr_open");
            let (_, v) = nr_open.unwrap_or_else(|| panic!("{name} sets no fs.nr_open"));
            assert!(p.nofile <= v.parse::<u64>().unwrap(), "{name}");
        }
    }

    const GOOD: &str = r#"
        name = "t"
        summary = "test"
        cores_min = 4
        [serve]
        max_connections = 1000
        shards = 2
        io_memory_bytes = 65536
        cpus = "2-3"
        [nic]
        irq_cpus = "0-1"
        [rlimits]
        nofile = 4096
        memlock_bytes = 8388608
        [sysctl]
        "net.core.somaxconn" = 4096
    "#;

    #[test]
    fn a_profile_must_hold_its_own_sizing() {
        assert!(parse("t", GOOD).is_ok());
        let err = parse("t", &GOOD.replace("nofile = 4096", "nofile = 1000"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nofile 1000 < 1096"), "{err}");
        let err = parse(
            "t",
            &GOOD.replace("irq_cpus = \"0-1\"", "irq_cpus = \"1-2\""),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("core 2 is both"), "{err}");
        let err = parse("t", &GOOD.replace("cpus = \"2-3\"", "cpus = \"2\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 cores for 2 shards"), "{err}");
    }

    #[test]
    fn unknown_sysctls_and_fields_are_refused() {
        let err = parse(
            "t",
            &GOOD.replace("net.core.somaxconn", "net.core.somaxcon"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown sysctl net.core.somaxcon"), "{err}");
        let err = parse(
            "t",
            &GOOD.replace("somaxconn\" = 4096", "somaxconn\" = 1024"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("listen backlog 4096"), "{err}");
        let err = parse("t", &GOOD.replace("cores_min", "core_min"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("core_min"), "{err}");
    }
}
