//! Host tuning: `shardline tune check|apply|profiles`, and the start-up
//! warnings `serve` logs when a host limit makes its own flags impossible.
//!
//! # Layout
//! - [`catalog`]: the sysctls shardline knows, how each is compared, and what
//!   a mismatch costs.
//! - [`profile`]: the hardware profiles of `tuning/profiles/`, embedded.
//! - [`need`]: what `serve` flags need from the host (fds, locked memory).
//! - [`live`]: what the host has (/proc/sys, rlimits, cores, CAP_IPC_LOCK).
//! - [`check`]: live against profile and flags → rows with consequences.
//! - [`report`]: the check as a table or JSON.
//! - [`apply`]: writing sysctls, printing what must be installed by hand.
//!
//! Files outside `src/`: the top-level `sysctl.conf` (the target hardware's
//! values, each with its reason) and `tuning/` (profiles, limits.conf, the
//! systemd unit, nic.sh, README).

pub mod apply;
pub mod catalog;
pub mod check;
pub mod live;
pub mod need;
pub mod profile;
pub mod report;
pub mod units;

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use self::live::{LiveHost, Source};
use self::profile::{Profile, Sizing};

#[derive(Args, Debug)]
pub struct TuneCli {
    #[command(subcommand)]
    pub command: TuneCommand,
}

#[derive(Subcommand, Debug)]
pub enum TuneCommand {
    /// Compare live sysctls, rlimits and cores with a profile; print each
    /// mismatch with its consequence for the serve flags. Exit 0 when all
    /// match, 1 on any mismatch, 2 on error.
    Check(CheckArgs),
    /// Write a profile's sysctls to /proc/sys (root), and print the rlimit,
    /// sysctl.d, NIC and serve lines to install by hand.
    Apply(ApplyArgs),
    /// List the built-in profiles and what each is sized for.
    Profiles,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Hardware profile to compare with (`shardline tune profiles` lists them).
    #[arg(long, value_name = "NAME", default_value = profile::DEFAULT_PROFILE)]
    pub profile: String,
    /// Judge the limits for this many connections. [default: the profile's]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Judge the limits for this many shards. [default: the profile's]
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Judge locked memory for this io_uring memory per ring. [default: the profile's]
    #[arg(long, value_name = "BYTES")]
    pub io_memory_bytes: Option<usize>,
    /// Read the rlimits, capabilities and cores of this running process
    /// (a live `shardline serve`) instead of this command's own.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Where sysctls are read (tests point it at a scratch tree).
    #[arg(long, value_name = "DIR", default_value = live::PROC_SYS, hide = true)]
    pub sysctl_root: PathBuf,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Hardware profile to apply (`shardline tune profiles` lists them).
    #[arg(long, value_name = "NAME")]
    pub profile: String,
    /// Print what would change; write nothing (needs no root).
    #[arg(long)]
    pub dry_run: bool,
    /// Where sysctls are written (tests point it at a scratch tree).
    #[arg(long, value_name = "DIR", default_value = live::PROC_SYS, hide = true)]
    pub sysctl_root: PathBuf,
}

/// Runs a `tune` subcommand. `check` exits the process with status 1 when
/// it finds mismatches, so scripts can branch on it; errors return `Err`
/// (status 2 from main).
pub fn run(cli: TuneCli) -> anyhow::Result<()> {
    match cli.command {
        TuneCommand::Check(args) => {
            let mismatches = run_check(&args)?;
            if mismatches > 0 {
                std::io::stdout().flush().ok();
                std::process::exit(1);
            }
            Ok(())
        }
        TuneCommand::Apply(args) => run_apply(&args),
        TuneCommand::Profiles => run_profiles(),
    }
}

/// Warnings for `serve` at start-up: each names a host limit that makes
/// these flags impossible (fds for --max-connections, locked memory for
/// io_uring, somaxconn below the listen backlog, fewer cores than shards,
/// io_uring disabled). Empty when the host can run them.
pub fn startup_warnings(
    max_connections: usize,
    shards: usize,
    io_memory_bytes: usize,
) -> Vec<String> {
    let flags = Sizing {
        max_connections,
        shards,
        io_memory_bytes,
    };
    let keys = [
        "net.core.somaxconn",
        "fs.file-max",
        "fs.nr_open",
        "kernel.io_uring_disabled",
    ];
    match LiveHost::read(&Source::default(), keys) {
        Ok(live) => check::flag_problems(&flags, &live),
        Err(e) => vec![format!("cannot read host limits to check the flags: {e:#}")],
    }
}

fn sysctl_keys(p: &Profile) -> impl Iterator<Item = &'static str> + '_ {
    p.sysctls.iter().map(|(spec, _)| spec.key)
}

fn run_check(args: &CheckArgs) -> anyhow::Result<usize> {
    let profile = profile::load(&args.profile)?;
    let flags = Sizing {
        max_connections: args
            .max_connections
            .unwrap_or(profile.sizing.max_connections),
        shards: args.shards.unwrap_or(profile.sizing.shards),
        io_memory_bytes: args
            .io_memory_bytes
            .unwrap_or(profile.sizing.io_memory_bytes),
    };
    let source = Source {
        sysctl_root: args.sysctl_root.clone(),
        pid: args.pid,
    };
    let live = LiveHost::read(&source, sysctl_keys(&profile))?;
    let report = check::check(&profile, &flags, &live);
    if args.json {
        println!("{}", report::json(&report));
    } else {
        let process = match args.pid {
            Some(pid) => format!("pid {pid}"),
            // SAFETY: geteuid cannot fail.
            None => format!("this process (uid {})", unsafe { libc::geteuid() }),
        };
        print!("{}", report::text(&report, &process));
    }
    Ok(report.mismatches())
}

fn run_apply(args: &ApplyArgs) -> anyhow::Result<()> {
    let profile = profile::load(&args.profile)?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if apply::must_refuse(args.dry_run, &args.sysctl_root, euid) {
        anyhow::bail!(
            "tune apply writes {} and needs root (uid {euid} here): run it with sudo, or add \
             --dry-run to see what it would change",
            live::PROC_SYS
        );
    }
    let source = Source {
        sysctl_root: args.sysctl_root.clone(),
        pid: None,
    };
    let live = LiveHost::read(&source, sysctl_keys(&profile))?;
    let steps = apply::plan(&profile, &live);
    let mode = if args.dry_run {
        " (dry run: nothing is written)"
    } else {
        ""
    };
    println!("tune apply: profile {}{mode}", profile.name);
    print!("{}", apply::describe(&steps, args.dry_run));
    let mut failed = Vec::new();
    let mut written = 0;
    for step in &steps {
        match step {
            apply::Step::Set { key, new, .. } if !args.dry_run => {
                match apply::write(&args.sysctl_root, key, new) {
                    Ok(()) => written += 1,
                    Err(e) => failed.push(e),
                }
            }
            apply::Step::Missing { key } => failed.push(format!("{key}: absent on this kernel")),
            _ => {}
        }
    }
    let changes = steps
        .iter()
        .filter(|s| matches!(s, apply::Step::Set { .. }))
        .count();
    if args.dry_run {
        println!("{changes} settings would be written; nothing was.\n");
    } else {
        println!("{written} of {changes} settings written.\n");
    }
    print!("{}", apply::instructions(&profile, &steps));
    if !failed.is_empty() {
        anyhow::bail!(
            "{} settings could not be applied:\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

fn run_profiles() -> anyhow::Result<()> {
    for name in profile::names() {
        let p = profile::load(name).with_context(|| format!("built-in profile {name}"))?;
        let s = &p.sizing;
        let irq = p
            .irq_cpus
            .as_deref()
            .map_or("none".to_owned(), str::to_owned);
        println!("{name}: {}", p.summary);
        println!(
            "  sized for: --max-connections {} --shards {} --cpus {} (IRQ cores: {irq})",
            s.max_connections, s.shards, p.shard_cpus
        );
        println!(
            "  needs: {} cores, nofile {}, memlock {}, {} sysctls",
            p.cores_min,
            p.nofile,
            units::bytes(p.memlock_bytes),
            p.sysctls.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::check::Verdict;
    use super::live::Limit;
    use super::*;

    /// The top-level sysctl.conf as live values: `key = value` lines; a
    /// leading "-" marks a key the kernel may lack.
    fn parse_sysctl_conf(text: &str) -> BTreeMap<String, String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').expect("key = value");
                let k = k.trim().trim_start_matches('-');
                (
                    k.to_owned(),
                    v.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })
            .collect()
    }

    #[test]
    fn sysctl_conf_satisfies_the_big_profiles() {
        let conf = parse_sysctl_conf(include_str!("../../sysctl.conf"));
        for key in conf.keys() {
            assert!(
                catalog::lookup(key).is_some(),
                "sysctl.conf sets {key}, unknown to the catalog"
            );
        }
        let live = LiveHost {
            sysctls: conf,
            nofile: Limit {
                soft: 1 << 20,
                hard: 1 << 20,
            },
            memlock: Limit {
                soft: 1 << 30,
                hard: 1 << 30,
            },
            cores: 64,
            ipc_lock: false,
        };
        for name in ["10gbe-16core", "25gbe-64core"] {
            let p = profile::load(name).unwrap();
            let r = check::check(&p, &p.sizing, &live);
            let bad: Vec<_> = r.rows.iter().filter(|r| r.verdict != Verdict::Ok).collect();
            assert!(bad.is_empty(), "{name}: {bad:#?}");
            assert_eq!(
                live.sysctls.len(),
                p.sysctls.len(),
                "{name}: same keys as sysctl.conf"
            );
        }
    }
}
