//! `shardline tune` as an operator runs it: the real binary against this
//! machine's /proc/sys and rlimits, and `apply` against a scratch sysctl tree
//! (so no test changes the host).

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::procs::output_within;
use common::temp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_shardline");

fn tune(args: &[&str]) -> Output {
    output_within(
        Command::new(BIN).arg("tune").args(args),
        common::CLI_TIMEOUT,
    )
}

/// The soft open-file limit `tune_limited` runs the binary with: the
/// benchmark machine's (BENCHMARKS.md, Machine: 20,000), below every profile's need. A
/// host's own limit varies (Docker's default is 1,048,576); lowering a soft
/// limit is always allowed, so the test sees the same limits everywhere.
const NOFILE_SOFT: u64 = 20_000;
/// The soft locked-memory limit `tune_limited` runs the binary with (8 MiB).
const MEMLOCK_SOFT: u64 = 8 << 20;

/// `shardline tune ARGS` with the soft limits lowered to at most
/// [`NOFILE_SOFT`] and [`MEMLOCK_SOFT`]; returns the output and the soft
/// limits the binary ran with.
fn tune_limited(args: &[&str]) -> (Output, u64, u64) {
    let nofile = soft_limit(libc::RLIMIT_NOFILE).min(NOFILE_SOFT);
    let memlock = soft_limit(libc::RLIMIT_MEMLOCK).min(MEMLOCK_SOFT);
    let mut cmd = Command::new(BIN);
    cmd.arg("tune").args(args);
    // SAFETY: only setrlimit/getrlimit (async-signal-safe) run between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (resource, soft) in [
                (libc::RLIMIT_NOFILE, nofile),
                (libc::RLIMIT_MEMLOCK, memlock),
            ] {
                let mut r = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(resource, &mut r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                r.rlim_cur = soft;
                if libc::setrlimit(resource, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    (
        output_within(&mut cmd, common::CLI_TIMEOUT),
        nofile,
        memlock,
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// This process's soft limit (the binary inherits it).
fn soft_limit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut r) }, 0);
    r.rlim_cur
}

/// The table row for `setting`.
fn row<'a>(out: &'a str, setting: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(setting))
        .unwrap_or_else(|| panic!("no {setting} row in:\n{out}"))
}

/// The `[sysctl]` table of a profile file, as key → value text.
fn profile_sysctls(name: &str) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tuning/profiles/{name}.toml"));
    let doc: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    doc["sysctl"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn sysctl_path(root: &Path, key: &str) -> PathBuf {
    root.join(key.replace('.', "/"))
}

/// A scratch /proc/sys holding `values` (removed when dropped).
fn scratch_root(tag: &str, values: &BTreeMap<String, String>) -> TempDir {
    let root = TempDir::new(&format!("tune-{tag}"));
    for (key, value) in values {
        let path = sysctl_path(&root, key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("{value}\n")).unwrap();
    }
    root
}

fn read_tree(root: &Path, keys: impl Iterator<Item = String>) -> BTreeMap<String, String> {
    keys.map(|k| {
        let v = std::fs::read_to_string(sysctl_path(root, &k)).unwrap_or_default();
        (k, v)
    })
    .collect()
}

#[test]
fn check_names_this_machines_fd_and_memlock_limits_against_ten_gbe() {
    // The 10gbe-16core profile wants nofile ≥ 1,048,576 and memlock ≥ 256 MiB.
    let (out, nofile, memlock) = tune_limited(&["check", "--profile", "10gbe-16core"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    let nofile_row = row(&text, "nofile");
    assert!(
        nofile_row.contains(&format!("{nofile} (hard")),
        "{nofile_row}"
    );
    assert!(nofile_row.ends_with("MISMATCH"), "{nofile_row}");
    assert!(row(&text, "memlock").ends_with("MISMATCH"), "{text}");
    // The consequences are stated against the profile's sizing.
    assert!(
        text.contains(&format!(
            "- nofile {nofile} < 100,288 needed for --max-connections 100000 on 14 shards"
        )),
        "{text}"
    );
    assert!(text.contains("EMFILE past ~"), "{text}");
    assert!(
        text.contains("needed for --io-memory-bytes 524288 on 14 shards (3 rings × 512 KiB × 14)"),
        "{text}"
    );
    // Exact figures for the limits the binary ran with (a host whose own
    // soft limits are lower still gets its own figures, checked above).
    if nofile == NOFILE_SOFT && memlock == MEMLOCK_SOFT {
        assert!(text.contains("- nofile 20000 < 100,288"), "{text}");
        assert!(text.contains("EMFILE past ~19,712 connections"), "{text}");
        assert!(text.contains("- memlock 8 MiB < 21 MiB"), "{text}");
    }
}

#[test]
fn check_takes_the_serve_flags_and_prints_json() {
    let out = tune(&[
        "check",
        "--profile",
        "10gbe-16core",
        "--max-connections",
        "50000",
        "--shards",
        "16",
        "--json",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("{\"profile\":\"10gbe-16core\""), "{text}");
    assert!(
        text.contains("\"flags\":{\"max_connections\":50000,\"shards\":16,"),
        "{text}"
    );
    assert!(text.contains("\"setting\":\"nofile\""), "{text}");
    assert!(
        text.contains("needed for --max-connections 50000 on 16 shards"),
        "{text}"
    );
    assert_eq!(text.trim_end().lines().count(), 1, "one JSON object");
}

#[test]
fn check_passes_on_a_host_that_matches() {
    // small-vm's sysctls, written to a scratch tree, against the flags this
    // machine can hold: only rlimits and cores can still differ.
    let root = scratch_root("match", &profile_sysctls("small-vm"));
    let out = tune(&[
        "check",
        "--profile",
        "small-vm",
        "--sysctl-root",
        root.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    let sysctl_misses: Vec<&str> = text
        .lines()
        .filter(|l| l.ends_with("MISMATCH"))
        .filter(|l| {
            !["nofile", "memlock", "cores"]
                .iter()
                .any(|s| l.starts_with(s))
        })
        .collect();
    assert!(sysctl_misses.is_empty(), "{text}");
    if soft_limit(libc::RLIMIT_NOFILE) >= 65_536
        && soft_limit(libc::RLIMIT_MEMLOCK) >= 64 << 20
        && std::thread::available_parallelism().unwrap().get() >= 2
    {
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("no mismatches"), "{text}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{text}");
    }
}

#[test]
fn apply_dry_run_on_the_real_host_writes_nothing() {
    let keys: Vec<String> = profile_sysctls("25gbe-64core").into_keys().collect();
    let proc_sys = Path::new("/proc/sys");
    let before = read_tree(proc_sys, keys.iter().cloned());
    let out = tune(&["apply", "--profile", "25gbe-64core", "--dry-run"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("dry run: nothing is written"), "{text}");
    assert!(text.contains("LimitNOFILE=1048576"), "{text}");
    assert_eq!(read_tree(proc_sys, keys.into_iter()), before);
}

#[test]
fn apply_lists_changes_then_writes_a_scratch_tree() {
    let wanted = profile_sysctls("10gbe-16core");
    let mut low = wanted.clone();
    low.insert("net.core.somaxconn".into(), "128".into());
    low.insert("net.ipv4.tcp_fin_timeout".into(), "60".into());
    low.insert("net.ipv4.tcp_rmem".into(), "4096 131072 33554432".into());
    low.insert("net.ipv4.tcp_wmem".into(), "4096 16384 4194304".into());
    low.remove("net.netfilter.nf_conntrack_max");
    let root = scratch_root("apply", &low);
    let root_arg = root.to_str().unwrap();
    let before = read_tree(&root, wanted.keys().cloned());

    let out = tune(&[
        "apply",
        "--profile",
        "10gbe-16core",
        "--dry-run",
        "--sysctl-root",
        root_arg,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("would set  net.core.somaxconn"), "{text}");
    assert!(text.contains("128 → 4096"), "{text}");
    assert!(
        text.contains("4096 16384 4194304 → 4096 65536 16777216"),
        "{text}"
    );
    assert!(
        text.contains("3 settings would be written; nothing was."),
        "{text}"
    );
    assert_eq!(read_tree(&root, wanted.keys().cloned()), before);

    let out = tune(&[
        "apply",
        "--profile",
        "10gbe-16core",
        "--sysctl-root",
        root_arg,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("3 of 3 settings written."),
        "{}",
        stdout(&out)
    );
    let after = read_tree(&root, wanted.keys().cloned());
    assert_eq!(after["net.core.somaxconn"], "4096\n");
    assert_eq!(after["net.ipv4.tcp_fin_timeout"], "15\n");
    // A field already beyond the profile is kept (33554432 > 16777216).
    assert_eq!(after["net.ipv4.tcp_rmem"], "4096 131072 33554432\n");
    // The optional conntrack key was absent: skipped, not created.
    assert_eq!(after["net.netfilter.nf_conntrack_max"], "");

    let out = tune(&[
        "check",
        "--profile",
        "10gbe-16core",
        "--sysctl-root",
        root_arg,
    ]);
    let text = stdout(&out);
    assert!(row(&text, "net.core.somaxconn").ends_with("ok"), "{text}");
    assert!(
        row(&text, "net.netfilter.nf_conntrack_max").ends_with("absent (ok)"),
        "{text}"
    );
}

#[test]
fn apply_without_root_refuses_unless_dry_run() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        let out = tune(&["apply", "--profile", "small-vm"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("needs root"), "{}", stderr(&out));
        return;
    }
    // As root (CI): drop to nobody for the run, with util-linux's setpriv.
    // The binary may sit in a directory nobody cannot enter (a root-owned
    // checkout): run a copy from a scratch directory everyone can read.
    common::redis::require("setpriv", "util-linux");
    let dir = TempDir::new("tune-nobody");
    let copy = dir.join("shardline");
    if std::fs::hard_link(BIN, &copy).is_err() {
        std::fs::copy(BIN, &copy).expect("copy the binary for nobody");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = output_within(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy)
            .args(["tune", "apply", "--profile", "small-vm"]),
        common::CLI_TIMEOUT,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs root (uid 65534 here)"), "{err}");
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    let out = tune(&["check", "--profile", "40gbe-128core"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown profile \"40gbe-128core\""), "{err}");
    assert!(
        err.contains("small-vm, 10gbe-16core, 25gbe-64core"),
        "{err}"
    );
    let out = tune(&["apply", "--profile", "nope", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("known profiles: small-vm"));
}
