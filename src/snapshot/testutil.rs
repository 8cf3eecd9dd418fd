//! Helpers for the snapshot tests: scratch directories, sample snapshots of
//! real arena instances, and a directory even root cannot write to.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use super::format::ShardSnapshot;
use super::load::{load_all, LoadReport};
use super::store::SnapshotLimits;
use crate::game::{ArenaFactory, GameFactory, Instance, InstanceId, InstanceLimits, PlayerInput};

/// The game the samples belong to.
pub const GAME: &str = "arena";

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "shardline-snapshot-test-{}-{seq}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Shard `shard`'s snapshot with `instances` arena instances `inst-<i>`,
/// each with two seated players (tokens `token-<i>-<seat>`) that moved for
/// 3 ticks.
pub fn sample_shard(shard: u32, shards: u32, instances: usize, generation: u64) -> ShardSnapshot {
    let limits = InstanceLimits {
        players_max: 4,
        inputs_per_tick_max: 4,
    };
    let records = (0..instances)
        .map(|i| {
            let id = InstanceId::parse(&format!("inst-{i}")).unwrap();
            let mut inst = Instance::new(id.clone(), ArenaFactory.create(&id), limits);
            for seat in 0..2u64 {
                inst.join(i as u64 * 10 + seat + 1, &format!("p{seat}"))
                    .unwrap();
            }
            let input = PlayerInput {
                seq: 1,
                move_x: 0.5,
                move_y: -1.0,
                buttons: 0,
            };
            inst.push_input(i as u64 * 10 + 1, input);
            for _ in 0..3 {
                inst.step(1.0 / 60.0).expect("the arena never fails");
            }
            let mut snap = inst.save().expect("the arena never fails");
            snap.fill_tokens(|p| Some(format!("token-{i}-{}", (p - 1) % 10)));
            snap
        })
        .collect();
    ShardSnapshot {
        generation,
        ..ShardSnapshot::new(shard, shards, "node-test", GAME, records)
    }
}

/// `load_all` for the sample game with default limits.
pub fn load(dir: &Path) -> LoadReport {
    load_all(dir, GAME, SnapshotLimits::default(), &mut |_| {}).expect("load_all")
}

/// Makes `dir` refuse new files until dropped: by mode bits where they
/// bind, else (root ignores mode bits) by the ext4/xfs immutable attribute.
pub struct ReadOnly {
    dir: PathBuf,
    immutable: bool,
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let ok = fs::write(&probe, b"x").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

pub fn make_read_only(dir: &Path) -> ReadOnly {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
    let mut guard = ReadOnly {
        dir: dir.to_owned(),
        immutable: false,
    };
    if writable(dir) {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        guard.immutable = ok;
        assert!(
            ok && !writable(dir),
            "cannot make {} read-only: running as root without chattr +i \
             (CAP_LINUX_IMMUTABLE, ext4/xfs)",
            dir.display()
        );
    }
    guard
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(&self.dir).status();
        }
        let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o755));
    }
}
