//! Writing snapshots: one directory, two slot files per shard, each new
//! generation written beside the good ones and renamed into place.
//!
//! # Files
//! `shard-<nnnn>.a.snap` and `shard-<nnnn>.b.snap` per shard, plus a
//! `.lock` file that keeps a second node out of the directory. A write goes
//! to `shard-<nnnn>.<slot>.snap.tmp-<pid>-<n>` first.
//!
//! # A write, step by step ([`SnapshotStore::write_blocking`])
//! 1. Refuse the snapshot if any instance's record is over
//!    `instance_bytes_max` (nothing touched).
//! 2. Read both slots' headers. The new generation is one more than the
//!    newest valid one; the target slot is the *other* slot, so the newest
//!    copy is never the file being replaced.
//! 3. Archive the snapshot (rkyv), write header + payload to a new
//!    temporary file, `fsync` it.
//! 4. `rename` it over the target slot, then `fsync` the directory.
//!
//! Until step 4 the old target file is untouched: a crash, a full disk or a
//! refused permission at any point before it leaves both older copies as
//! they were (the temporary file is removed, or, after a kill, ignored by
//! restore and removed by the next [`SnapshotStore::open`]). `rename` is
//! atomic, so after it the slot holds either the old or the new complete
//! file, never a mix; the directory `fsync` makes the new name durable. At
//! every instant, then, the newest complete generation is on disk, and so is
//! the one before it, which restore falls back to if the newest turns out
//! damaged later (a bad sector, someone's editor).
//!
//! Why both slots *and* rename: with slots alone the target would be
//! truncated and rewritten in place, destroying the older good copy before
//! the new one is durable; with rename alone there is one file per shard, so
//! a damaged newest file leaves nothing to fall back to. The cost is one
//! rename and one directory fsync per write, once a second per shard.
//!
//! # Threads
//! Everything here is plain blocking `std::fs`. A write costs an archive of
//! the shard (~1 ms per MB) plus an fsync (milliseconds to seconds on a busy
//! disk), so it must not run on a shard's executor thread: run it with
//! glommio's `executor().spawn_blocking(move || store.write_blocking(snap))`
//! or on a dedicated thread. [`SnapshotStore`] is `Clone + Send + Sync` and
//! holds no per-shard state, so one clone per shard is enough. Keep at most
//! one write per shard in flight (skip an interval while the last write
//! still runs): overlapping writes of one shard cannot corrupt anything,
//! but the slower one may rename an older generation over a newer one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::SnapshotError;
use super::format::{self, Encoded, InstanceSnapshot, ShardSnapshot};

/// Default cap on one instance's snapshot record: 16 MiB. A 1000-disc arena
/// is ~40 KiB; a record this large means a runaway world. Restore holds one
/// record per instance in memory, so this also bounds restore memory at
/// `instances × 16 MiB` worst case.
pub const INSTANCE_BYTES_MAX_DEFAULT: u64 = 16 << 20;

/// Name of the lock file inside the snapshot directory.
pub const LOCK_FILE_NAME: &str = ".lock";
const SNAP_SUFFIX: &str = ".snap";
/// Marks a file being written; what follows is `<pid>-<n>`.
const TEMP_MARK: &str = ".snap.tmp-";

/// Bounds that apply to snapshot records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// Largest record of one instance ([`InstanceSnapshot::record_bytes`]);
    /// a write with a larger one is refused, a load skips it.
    pub instance_bytes_max: u64,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        Self {
            instance_bytes_max: INSTANCE_BYTES_MAX_DEFAULT,
        }
    }
}

impl SnapshotLimits {
    /// Refuses a record over [`SnapshotLimits::instance_bytes_max`]. The
    /// shard may call it when capturing, to leave one runaway instance out
    /// instead of failing its whole snapshot.
    pub fn check(&self, shard: u32, record: &InstanceSnapshot) -> Result<(), SnapshotError> {
        let bytes = record.record_bytes();
        if bytes > self.instance_bytes_max {
            return Err(SnapshotError::RecordTooLarge {
                shard,
                instance: record.id.clone(),
                bytes,
                max: self.instance_bytes_max,
            });
        }
        Ok(())
    }
}

/// One of the two files of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    fn letter(self) -> char {
        match self {
            Slot::A => 'a',
            Slot::B => 'b',
        }
    }
}

/// `shard-0003.b.snap`.
pub fn file_name(shard: u32, slot: Slot) -> String {
    format!("shard-{shard:04}.{}{SNAP_SUFFIX}", slot.letter())
}

/// The shard and slot a file name stands for, if it is a snapshot slot name.
pub fn parse_file_name(name: &str) -> Option<(u32, Slot)> {
    let rest = name.strip_prefix("shard-")?.strip_suffix(SNAP_SUFFIX)?;
    let (digits, slot) = rest.split_once('.')?;
    let slot = match slot {
        "a" => Slot::A,
        "b" => Slot::B,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, slot))
}

/// A write in progress (or one a crash interrupted).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with("shard-") && name.contains(TEMP_MARK)
}

/// What one write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteStats {
    pub shard: u32,
    pub generation: u64,
    /// The slot file now holding this generation.
    pub path: PathBuf,
    /// File length.
    pub bytes: u64,
    pub instances: usize,
    /// Archiving the snapshot.
    pub encode: Duration,
    /// Writing, fsyncs and rename.
    pub io: Duration,
}

impl WriteStats {
    pub fn duration(&self) -> Duration {
        self.encode + self.io
    }
}

/// Writes shard snapshots into one directory. Cheap to clone; holds the
/// directory's lock for as long as any clone lives.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    limits: SnapshotLimits,
    /// Held open with an exclusive `flock` so a second node (or a second
    /// store in this one) cannot interleave its generations with ours.
    _lock: File,
}

/// Makes temporary names unique within the process, so even overlapping
/// writes never share a file.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl SnapshotStore {
    /// Opens `dir` for writing, creating it (and its parents) if missing,
    /// takes its lock, and removes temporary files an interrupted write
    /// left behind.
    ///
    /// Errs if the directory cannot be created or is not writable
    /// (`Io`), or another process holds it (`Locked`); the caller logs it
    /// and serves without snapshots.
    pub fn open(dir: &Path, limits: SnapshotLimits) -> Result<Self, SnapshotError> {
        let io = |path: &Path, op, source| SnapshotError::Io {
            path: path.to_owned(),
            op,
            source,
        };
        fs::create_dir_all(dir).map_err(|e| io(dir, "create directory", e))?;
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, "open lock file", e))?;
        // SAFETY: flock on a descriptor this function owns; no memory involved.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(SnapshotError::Locked {
                    path: dir.to_owned(),
                });
            }
            return Err(io(&lock_path, "lock", err));
        }
        remove_temp_files(dir);
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                limits,
                _lock: lock,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn limits(&self) -> SnapshotLimits {
        self.inner.limits
    }

    /// Path of one slot file of `shard`.
    pub fn slot_path(&self, shard: u32, slot: Slot) -> PathBuf {
        self.inner.dir.join(file_name(shard, slot))
    }

    /// Writes `snap` as its shard's next generation, crash-safely (see the
    /// module doc); blocks on file I/O. Sets `generation` and
    /// `written_at_unix_ms`.
    ///
    /// On any error the shard's files are as before the call: the newest
    /// good snapshot stays the newest good snapshot.
    ///
    /// # Panics
    /// If `snap.shard >= snap.shards` (the caller's bug).
    pub fn write_blocking(&self, mut snap: ShardSnapshot) -> Result<WriteStats, SnapshotError> {
        assert!(
            snap.shard < snap.shards,
            "shard {} of {}",
            snap.shard,
            snap.shards
        );
        let started = Instant::now();
        for record in &snap.instances {
            self.inner.limits.check(snap.shard, record)?;
        }
        let (target, generation) = self.next_slot(snap.shard);
        snap.generation = generation;
        snap.written_at_unix_ms = unix_ms_now();
        let encoded = format::encode(&snap).map_err(|e| SnapshotError::Encode {
            shard: snap.shard,
            reason: e.to_string(),
        })?;
        let instances = snap.instances.len();
        drop(snap);
        let encoded_at = Instant::now();

        let path = self.slot_path(encoded.header.shard, target);
        self.replace_durably(&path, &encoded)?;
        Ok(WriteStats {
            shard: encoded.header.shard,
            generation,
            path,
            bytes: encoded.file_bytes(),
            instances,
            encode: encoded_at - started,
            io: encoded_at.elapsed(),
        })
    }

    /// The slot to write next and its generation: the slot that does not
    /// hold the newest valid header, and one past that header's generation.
    /// Headers alone decide (64 bytes each), which is safe because a write
    /// never destroys anything before its replacement is durable.
    fn next_slot(&self, shard: u32) -> (Slot, u64) {
        let generation_of = |slot| {
            format::read_header(&self.slot_path(shard, slot))
                .ok()
                .filter(|h| h.shard == shard)
                .map(|h| h.generation)
        };
        match (generation_of(Slot::A), generation_of(Slot::B)) {
            (None, None) => (Slot::A, 1),
            (Some(a), None) => (Slot::B, a + 1),
            (None, Some(b)) => (Slot::A, b + 1),
            (Some(a), Some(b)) if a >= b => (Slot::B, a + 1),
            (Some(_), Some(b)) => (Slot::A, b + 1),
        }
    }

    /// Writes `encoded` to a new temporary file, fsyncs it, renames it over
    /// `path` and fsyncs the directory; removes the temporary file on
    /// failure.
    fn replace_durably(&self, path: &Path, encoded: &Encoded) -> Result<(), SnapshotError> {
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut temp = path.as_os_str().to_owned();
        temp.push(format!(".tmp-{}-{seq}", std::process::id()));
        let temp = PathBuf::from(temp);
        let io = |path: &Path, op, source| SnapshotError::Io {
            path: path.to_owned(),
            op,
            source,
        };
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(|e| io(&temp, "create", e))?;
            file.write_all(&encoded.header.encode())
                .and_then(|()| file.write_all(&encoded.payload))
                .map_err(|e| io(&temp, "write", e))?;
            file.sync_all().map_err(|e| io(&temp, "fsync", e))?;
            fs::rename(&temp, path).map_err(|e| io(path, "rename", e))
        })();
        if written.is_err() {
            // Best effort: the error above is the one to report, and a
            // leftover is ignored by restore and removed by the next open.
            let _ = fs::remove_file(&temp);
        }
        written?;
        sync_dir(&self.inner.dir)
    }

    /// Removes the files of shards `shards..` that a run with more shards
    /// left behind; returns how many were removed.
    ///
    /// Restore re-places their instances onto the current shards, so once
    /// every current shard has written a snapshot since the restore, these
    /// files hold nothing the current ones lack, and leaving them would
    /// bring back instances that have ended since. Call it only then: it is
    /// the one place the store deletes snapshots.
    pub fn retire_shards_from(&self, shards: u32) -> Result<usize, SnapshotError> {
        let dir = &self.inner.dir;
        let entries = fs::read_dir(dir).map_err(|e| SnapshotError::Io {
            path: dir.clone(),
            op: "list",
            source: e,
        })?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some((shard, _)) = name.to_str().and_then(parse_file_name) else {
                continue;
            };
            if shard >= shards {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| SnapshotError::Io {
                    path,
                    op: "remove",
                    source: e,
                })?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(dir)?;
        }
        Ok(removed)
    }
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SnapshotError::Io {
            path: dir.to_owned(),
            op: "fsync directory",
            source: e,
        })
}

/// Removes what interrupted writes left. Only called with the directory's
/// lock held, so no live write of ours can be among them.
fn remove_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(is_temp_name) {
            // A leftover that cannot be removed is harmless: restore
            // ignores it and new writes use fresh names.
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::format::{read_header, SnapshotFile};
    use crate::snapshot::load::load_all;
    use crate::snapshot::testutil::{load, make_read_only, sample_shard, TempDir, GAME};

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(3, Slot::B), "shard-0003.b.snap");
        assert_eq!(parse_file_name("shard-0003.b.snap"), Some((3, Slot::B)));
        assert_eq!(
            parse_file_name("shard-12345.a.snap"),
            Some((12345, Slot::A))
        );
        for bad in [
            "shard-1.c.snap",
            "shard-.a.snap",
            "shard-x.a.snap",
            "shard-1.a.snap.tmp-1-2",
            "shard-1.a",
            "notes.txt",
            "shard-+1.a.snap",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
        assert!(is_temp_name("shard-0001.a.snap.tmp-77-0"));
        assert!(!is_temp_name("shard-0001.a.snap"));
    }

    #[test]
    fn generations_alternate_slots_and_only_grow() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        for generation in 1..=5 {
            let stats = store.write_blocking(sample_shard(2, 4, 3, 0)).unwrap();
            assert_eq!(stats.generation, generation);
            let slot = if generation % 2 == 1 {
                Slot::A
            } else {
                Slot::B
            };
            assert_eq!(stats.path, store.slot_path(2, slot));
            assert_eq!(stats.bytes, fs::metadata(&stats.path).unwrap().len());
            assert_eq!(stats.instances, 3);
            let report = load(dir.path());
            assert_eq!(report.sources[0].generation, generation);
        }
        // A damaged newest slot: the next write continues from the older
        // one's generation + 1 (still above every valid generation), and
        // goes to the damaged slot, keeping the good one.
        fs::write(store.slot_path(2, Slot::A), b"junk").unwrap();
        let stats = store.write_blocking(sample_shard(2, 4, 1, 0)).unwrap();
        assert_eq!(
            (stats.generation, stats.path.clone()),
            (5, store.slot_path(2, Slot::A))
        );
        assert_eq!(
            read_header(&store.slot_path(2, Slot::B))
                .unwrap()
                .generation,
            4
        );
        // A new store (a restarted node) continues the count.
        drop(store);
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        assert_eq!(
            store
                .write_blocking(sample_shard(2, 4, 1, 0))
                .unwrap()
                .generation,
            6
        );
    }

    #[test]
    fn write_round_trips_through_the_file() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        let snap = sample_shard(0, 1, 4, 0);
        let stats = store.write_blocking(snap.clone()).unwrap();
        let file = SnapshotFile::open(&stats.path).unwrap();
        let back: ShardSnapshot =
            rkyv::deserialize::<_, rkyv::rancor::BoxedError>(file.snapshot()).unwrap();
        assert_eq!(back.generation, 1);
        assert!(back.written_at_unix_ms > 1_600_000_000_000);
        assert_eq!(
            ShardSnapshot {
                generation: 0,
                written_at_unix_ms: 0,
                ..back
            },
            snap
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| is_temp_name(n))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn oversize_instance_is_refused_and_nothing_written() {
        let dir = TempDir::new();
        let limits = SnapshotLimits {
            instance_bytes_max: 4096,
        };
        let store = SnapshotStore::open(dir.path(), limits).unwrap();
        store.write_blocking(sample_shard(0, 1, 2, 0)).unwrap();
        let mut big = sample_shard(0, 1, 2, 0);
        big.instances[1].state = vec![7; 5000];
        let err = store.write_blocking(big).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, SnapshotError::RecordTooLarge { ref instance, max: 4096, .. } if instance == "inst-1")
        );
        assert!(
            text.contains("instance inst-1") && text.contains("4096"),
            "{text}"
        );
        assert_eq!(err.cause(), "too_large");
        assert!(!store.slot_path(0, Slot::B).exists());
        assert_eq!(load(dir.path()).sources[0].generation, 1);
    }

    #[test]
    fn second_store_on_the_same_dir_is_locked_out() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        let err = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap_err();
        assert!(matches!(err, SnapshotError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use"), "{err}");
        // Clones share the one lock.
        let clone = store.clone();
        drop(store);
        clone.write_blocking(sample_shard(0, 1, 1, 0)).unwrap();
        drop(clone);
        SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
    }

    #[test]
    fn open_creates_missing_dirs_and_reports_uncreatable_ones() {
        let dir = TempDir::new();
        let nested = dir.path().join("a/b/data");
        SnapshotStore::open(&nested, SnapshotLimits::default()).unwrap();
        assert!(nested.is_dir());
        let file = dir.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = SnapshotStore::open(&file.join("data"), SnapshotLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                SnapshotError::Io {
                    op: "create directory",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("plain-file/data"), "{err}");
    }

    #[test]
    fn open_removes_leftovers_of_interrupted_writes() {
        let dir = TempDir::new();
        let leftover = dir.path().join("shard-0000.a.snap.tmp-1-0");
        fs::write(&leftover, b"SHLNSNAP half a file").unwrap();
        let report = load(dir.path());
        assert_eq!(report.skipped.len(), 1);
        assert!(report.skipped[0].reason.contains("interrupted write"));
        SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        assert!(!leftover.exists());
    }

    #[test]
    fn failed_write_into_read_only_dir_keeps_the_good_copy() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        store.write_blocking(sample_shard(0, 1, 2, 0)).unwrap();
        store.write_blocking(sample_shard(0, 1, 3, 0)).unwrap();
        let guard = make_read_only(dir.path());
        for _ in 0..3 {
            let err = store.write_blocking(sample_shard(0, 1, 9, 0)).unwrap_err();
            assert!(
                matches!(err, SnapshotError::Io { op: "create", .. }),
                "{err}"
            );
            assert_eq!(err.cause(), "permission_denied", "{err}");
            assert!(err.to_string().contains(".snap.tmp-"), "{err}");
        }
        let report = load(dir.path());
        assert_eq!(report.sources[0].generation, 2);
        assert_eq!(report.instances.len(), 3);
        drop(guard);
        // Writable again: the count goes on from the newest good copy.
        assert_eq!(
            store
                .write_blocking(sample_shard(0, 1, 1, 0))
                .unwrap()
                .generation,
            3
        );
    }

    #[test]
    fn failed_rename_keeps_the_good_copies() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        store.write_blocking(sample_shard(0, 1, 2, 0)).unwrap();
        // Something the rename cannot replace stands where slot b goes.
        fs::create_dir(store.slot_path(0, Slot::B)).unwrap();
        fs::write(store.slot_path(0, Slot::B).join("x"), b"x").unwrap();
        let err = store.write_blocking(sample_shard(0, 1, 5, 0)).unwrap_err();
        assert!(
            matches!(err, SnapshotError::Io { op: "rename", .. }),
            "{err}"
        );
        let report = load(dir.path());
        assert_eq!(
            (report.sources[0].generation, report.instances.len()),
            (1, 2)
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|n| is_temp_name(n)),
            "temp removed: {names:?}"
        );
    }

    #[test]
    fn vanished_dir_is_reported_not_recreated() {
        let dir = TempDir::new();
        let data = dir.path().join("data");
        let store = SnapshotStore::open(&data, SnapshotLimits::default()).unwrap();
        fs::remove_dir_all(&data).unwrap();
        let err = store.write_blocking(sample_shard(0, 1, 1, 0)).unwrap_err();
        assert_eq!(err.cause(), "missing", "{err}");
        assert!(
            !data.exists(),
            "a vanished mount point must not be recreated"
        );
    }

    #[test]
    fn retire_removes_only_shards_beyond_the_count() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        for shard in 0..4 {
            store.write_blocking(sample_shard(shard, 4, 1, 0)).unwrap();
            store.write_blocking(sample_shard(shard, 4, 1, 0)).unwrap();
        }
        fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
        assert_eq!(store.retire_shards_from(2).unwrap(), 4);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".lock",
                "notes.txt",
                "shard-0000.a.snap",
                "shard-0000.b.snap",
                "shard-0001.a.snap",
                "shard-0001.b.snap"
            ]
        );
        assert_eq!(store.retire_shards_from(2).unwrap(), 0);
        let report = load_all(dir.path(), GAME, SnapshotLimits::default(), &mut |_| {}).unwrap();
        assert_eq!(report.files_read, 2);
    }
}
