//! Reading a snapshot directory back at start-up: per shard the newest
//! complete generation, every bad file reported and skipped.
//!
//! For each shard's file set (`shard-<n>.a.snap`, `shard-<n>.b.snap`) the
//! headers order the candidates, newest generation first; the first one that
//! passes every check ([`SnapshotFile::open`]) and belongs to this game is
//! used, so a damaged newest file falls back to the older slot. Files of
//! shards the current node no longer has are read too: their instances are
//! re-placed like all others ([`place`]). An instance found in more than one
//! shard's files (it moved when the shard count changed, and the old file
//! was not retired yet) is taken from the copy with the highest tick, the
//! one that ran longest.
//!
//! Nothing here panics on bad input and nothing fails as a whole except an
//! unreadable directory: a bad file or record becomes a [`Skipped`] entry.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rkyv::rancor::BoxedError;

use super::error::SnapshotError;
use super::format::{read_header, ArchivedInstanceSnapshot, InstanceSnapshot, SnapshotFile};
use super::store::{is_temp_name, parse_file_name, Slot, SnapshotLimits, LOCK_FILE_NAME};
use crate::game::{shard_for, InstanceId};

/// Progress is reported after each file and after this many instances
/// within a file, so a large restore shows signs of life every ~100 ms.
const PROGRESS_EVERY_INSTANCES: usize = 4096;

/// What [`load_all`] found.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// One per instance id, sorted by id; records already checked against
    /// the id rules and the per-instance cap.
    pub instances: Vec<InstanceSnapshot>,
    /// Files and records that could not be used, with the reason.
    pub skipped: Vec<Skipped>,
    /// The file used for each shard.
    pub sources: Vec<LoadedFile>,
    /// Files checked whole (opened, checksummed, validated).
    pub files_read: usize,
    /// Bytes of the files checked whole.
    pub bytes_read: u64,
    /// Older copies of instances also found in another shard's file.
    pub duplicates_dropped: usize,
}

/// A file or record that restore could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    /// The instance, when only one record of the file was bad.
    pub instance: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.instance {
            Some(id) => write!(f, "{}: instance {id}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

/// The file a shard's instances were taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub shard: u32,
    /// Shard count of the node that wrote it.
    pub shards: u32,
    pub generation: u64,
    pub node_id: String,
    pub written_at_unix_ms: u64,
    pub instances: usize,
}

/// Where a restore is, for progress logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadProgress {
    /// Shard file sets done, out of `shards_total`.
    pub shards_done: usize,
    pub shards_total: usize,
    pub instances: usize,
    pub bytes_read: u64,
}

/// Reads every shard's newest good snapshot in `dir` for the game named
/// `game` ([`GameFactory::name`](crate::game::GameFactory::name)).
///
/// A missing directory is a first start: an empty report. Errs only when
/// the directory exists but cannot be listed. Calls `progress` after each
/// shard's files and every few thousand instances. Blocking file I/O: call
/// it before the shards start, or on a blocking thread.
pub fn load_all(
    dir: &Path,
    game: &str,
    limits: SnapshotLimits,
    progress: &mut dyn FnMut(&LoadProgress),
) -> Result<LoadReport, SnapshotError> {
    let mut report = LoadReport::default();
    let sets = match list(dir, &mut report.skipped) {
        Ok(sets) => sets,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
        Err(e) => {
            return Err(SnapshotError::Io {
                path: dir.to_owned(),
                op: "list",
                source: e,
            })
        }
    };
    let mut loader = Loader {
        game,
        limits,
        report,
        progress: LoadProgress {
            shards_done: 0,
            shards_total: sets.len(),
            instances: 0,
            bytes_read: 0,
        },
        by_id: HashMap::new(),
    };
    for (shard, paths) in sets {
        loader.load_shard(shard, paths, progress);
        loader.progress.shards_done += 1;
        progress(&loader.progress);
    }
    let mut report = loader.report;
    report.instances.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(report)
}

/// Snapshot slot files by shard; temporary and foreign files go to
/// `skipped`.
fn list(dir: &Path, skipped: &mut Vec<Skipped>) -> io::Result<BTreeMap<u32, Vec<PathBuf>>> {
    let mut sets: BTreeMap<u32, Vec<PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == LOCK_FILE_NAME || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let reason = if let Some((shard, _)) = parse_file_name(&name) {
            sets.entry(shard).or_default().push(path);
            continue;
        } else if is_temp_name(&name) {
            "temporary file of an interrupted write; ignored (the next store open removes it)"
        } else {
            "not a snapshot file name (want shard-<n>.<a|b>.snap); ignored"
        };
        skipped.push(Skipped {
            path,
            instance: None,
            reason: reason.to_owned(),
        });
    }
    for paths in sets.values_mut() {
        paths.sort();
    }
    Ok(sets)
}

struct Loader<'a> {
    game: &'a str,
    limits: SnapshotLimits,
    report: LoadReport,
    progress: LoadProgress,
    /// Index into `report.instances` by id, to drop duplicates.
    by_id: HashMap<String, usize>,
}

impl Loader<'_> {
    fn skip(&mut self, path: &Path, instance: Option<&str>, reason: String) {
        self.report.skipped.push(Skipped {
            path: path.to_owned(),
            instance: instance.map(str::to_owned),
            reason,
        });
    }

    /// Tries the shard's files newest first; takes the first good one.
    fn load_shard(
        &mut self,
        shard: u32,
        paths: Vec<PathBuf>,
        progress: &mut dyn FnMut(&LoadProgress),
    ) {
        let mut candidates = Vec::with_capacity(paths.len());
        for path in paths {
            match read_header(&path) {
                Ok(h) => candidates.push((h.generation, path)),
                Err(e) => self.skip(&path, None, reason_of(e)),
            }
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        // Older generations behind the one used are fallbacks, not errors,
        // and not worth reading whole.
        for (_, path) in candidates {
            if self.load_file(shard, &path, progress) {
                break;
            }
        }
    }

    /// Checks the file whole and takes its instances; false if it was
    /// skipped.
    fn load_file(
        &mut self,
        shard: u32,
        path: &Path,
        progress: &mut dyn FnMut(&LoadProgress),
    ) -> bool {
        let file = match SnapshotFile::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.skip(path, None, reason_of(e));
                return false;
            }
        };
        self.report.files_read += 1;
        self.report.bytes_read += file.len();
        self.progress.bytes_read += file.len();
        let snap = file.snapshot();
        if snap.shard != shard {
            let reason = format!("file name says shard {shard}, contents say {}", snap.shard);
            self.skip(path, None, reason);
            return false;
        }
        if snap.game != self.game {
            let reason = format!(
                "snapshot of game {:?}, this server runs {:?}",
                snap.game.as_str(),
                self.game
            );
            self.skip(path, None, reason);
            return false;
        }
        for (i, record) in snap.instances.iter().enumerate() {
            self.take(path, record);
            if (i + 1) % PROGRESS_EVERY_INSTANCES == 0 {
                progress(&self.progress);
            }
        }
        self.report.sources.push(LoadedFile {
            path: path.to_owned(),
            shard,
            shards: snap.shards.to_native(),
            generation: snap.generation.to_native(),
            node_id: snap.node_id.as_str().to_owned(),
            written_at_unix_ms: snap.written_at_unix_ms.to_native(),
            instances: snap.instances.len(),
        });
        true
    }

    /// Checks one record and keeps it unless a copy with a higher tick is
    /// already kept.
    fn take(&mut self, path: &Path, record: &ArchivedInstanceSnapshot) {
        let id = record.id.as_str();
        if let Err(e) = InstanceId::parse(id) {
            self.skip(path, Some(id), format!("bad instance id: {e}"));
            return;
        }
        let bytes = archived_record_bytes(record);
        if bytes > self.limits.instance_bytes_max {
            let reason = format!(
                "record is {bytes} bytes, over the cap of {} bytes (instance_bytes_max)",
                self.limits.instance_bytes_max
            );
            self.skip(path, Some(id), reason);
            return;
        }
        if let Some(&at) = self.by_id.get(id) {
            self.report.duplicates_dropped += 1;
            if self.report.instances[at].tick >= record.tick.to_native() {
                return;
            }
        }
        let owned = match rkyv::deserialize::<InstanceSnapshot, BoxedError>(record) {
            Ok(owned) => owned,
            // Validated archives of plain data deserialize; if one does not,
            // it is this record that is bad, not the restore.
            Err(e) => return self.skip(path, Some(id), format!("cannot deserialize: {e}")),
        };
        match self.by_id.get(id) {
            Some(&at) => self.report.instances[at] = owned,
            None => {
                self.by_id
                    .insert(owned.id.clone(), self.report.instances.len());
                self.report.instances.push(owned);
                self.progress.instances += 1;
            }
        }
    }
}

/// [`InstanceSnapshot::record_bytes`] of an archived record, without
/// deserializing it first (the cap must hold before memory is spent).
fn archived_record_bytes(r: &ArchivedInstanceSnapshot) -> u64 {
    let seat_fixed = std::mem::size_of::<super::format::SeatSnapshot>();
    let seats: usize = r
        .seats
        .iter()
        .map(|s| seat_fixed + s.name.len() + s.token.len())
        .sum();
    (std::mem::size_of::<InstanceSnapshot>() + r.id.len() + r.state.len() + seats) as u64
}

/// The reason text of a skip: the path is in [`Skipped::path`] already.
fn reason_of(e: SnapshotError) -> String {
    match e {
        SnapshotError::Invalid { reason, .. } => reason.to_string(),
        SnapshotError::Io { op, source, .. } => format!("{op}: {source}"),
        other => other.to_string(),
    }
}

/// Splits restored instances by owning shard, with the rule that places new
/// ones ([`shard_for`]), for a node of `shards` shards. Ids are those
/// [`load_all`] checked; one that does not parse (a caller's own record)
/// goes to shard 0, where restoring it reports the bad id.
///
/// # Panics
/// If `shards` is 0.
pub fn place(instances: Vec<InstanceSnapshot>, shards: usize) -> Vec<Vec<InstanceSnapshot>> {
    let mut placed: Vec<Vec<InstanceSnapshot>> = (0..shards).map(|_| Vec::new()).collect();
    for snap in instances {
        let shard = InstanceId::parse(&snap.id).map_or(0, |id| shard_for(&id, shards));
        placed[shard].push(snap);
    }
    placed
}

/// Both slot paths of `shard` in `dir` (for tools and tests).
pub fn slot_paths(dir: &Path, shard: u32) -> [PathBuf; 2] {
    use super::store::file_name;
    [
        dir.join(file_name(shard, Slot::A)),
        dir.join(file_name(shard, Slot::B)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::store::SnapshotStore;
    use crate::snapshot::testutil::{load, sample_shard, TempDir, GAME};

    /// A store with two generations of shard 0: gen 1 with `old` instances,
    /// gen 2 (slot b) with `new` instances. Returns (dir, store, gen-2 path).
    fn two_generations(old: usize, new: usize) -> (TempDir, SnapshotStore, PathBuf) {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        store.write_blocking(sample_shard(0, 1, old, 0)).unwrap();
        let stats = store.write_blocking(sample_shard(0, 1, new, 0)).unwrap();
        assert_eq!(stats.generation, 2);
        (dir, store, stats.path)
    }

    #[test]
    fn newest_generation_wins() {
        let (dir, _store, newest) = two_generations(2, 3);
        let report = load(dir.path());
        assert_eq!(report.instances.len(), 3);
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        assert_eq!(report.sources[0].path, newest);
        assert_eq!(report.files_read, 1, "the older slot is not read whole");
        let ids: Vec<_> = report.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["inst-0", "inst-1", "inst-2"]);
        assert_eq!(report.instances[1].seats[0].token, "token-1-0");
    }

    #[test]
    fn crash_at_every_byte_of_the_newest_file_falls_back() {
        let (dir, _store, newest) = two_generations(1, 2);
        let whole = fs::read(&newest).unwrap();
        for len in 0..whole.len() {
            fs::write(&newest, &whole[..len]).unwrap();
            let report = load(dir.path());
            assert_eq!(report.sources.len(), 1, "cut at {len}");
            assert_eq!(report.sources[0].generation, 1, "cut at {len}");
            assert_eq!(report.instances.len(), 1, "cut at {len}");
            assert_eq!(report.skipped.len(), 1, "cut at {len}");
            assert_eq!(report.skipped[0].path, newest);
            let want = if len == 0 {
                "empty file"
            } else {
                "truncated: want "
            };
            assert!(
                report.skipped[0].reason.starts_with(want),
                "cut at {len}: {}",
                report.skipped[0].reason
            );
        }
        fs::write(&newest, &whole).unwrap();
        assert_eq!(load(dir.path()).sources[0].generation, 2);
    }

    #[test]
    fn flipped_byte_is_a_checksum_mismatch_with_the_path() {
        let (dir, _store, newest) = two_generations(1, 2);
        let whole = fs::read(&newest).unwrap();
        // Every byte: each flip is caught (by some check) and gen 1 is used.
        for at in 0..whole.len() {
            let mut bad = whole.clone();
            bad[at] ^= 0x20;
            fs::write(&newest, &bad).unwrap();
            let report = load(dir.path());
            assert_eq!(report.sources[0].generation, 1, "flip at {at}");
            assert_eq!(report.skipped[0].path, newest, "flip at {at}");
        }
        let mut bad = whole.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x20;
        fs::write(&newest, &bad).unwrap();
        let report = load(dir.path());
        let text = report.skipped[0].to_string();
        assert!(text.starts_with(&newest.display().to_string()), "{text}");
        assert!(text.contains("checksum mismatch: payload crc32"), "{text}");
    }

    #[test]
    fn empty_and_foreign_files_are_skipped_with_clear_reasons() {
        let (dir, _store, newest) = two_generations(1, 1);
        let p = |name: &str| dir.path().join(name);
        fs::copy(&newest, p("shard-0003.b.snap")).unwrap();
        fs::write(p("shard-0001.a.snap"), b"").unwrap();
        fs::write(p("shard-0001.b.snap"), b"just some notes\n").unwrap();
        let noise: Vec<u8> = (0..3000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        fs::write(p("shard-0002.a.snap"), &noise).unwrap();
        fs::write(p("README.txt"), b"hello").unwrap();
        let report = load(dir.path());
        assert_eq!(report.instances.len(), 1, "shard 0 still loads");
        let reasons: BTreeMap<String, String> = report
            .skipped
            .iter()
            .map(|s| {
                (
                    s.path.file_name().unwrap().to_string_lossy().into_owned(),
                    s.reason.clone(),
                )
            })
            .collect();
        assert_eq!(reasons["shard-0001.a.snap"], "empty file");
        assert!(reasons["shard-0001.b.snap"].starts_with("foreign file: bad magic \"just som\""));
        assert!(reasons["shard-0002.a.snap"].starts_with("foreign file: bad magic"));
        assert!(reasons["README.txt"].starts_with("not a snapshot file name"));
        assert_eq!(
            reasons["shard-0003.b.snap"],
            "file name says shard 3, contents say 0"
        );
        assert_eq!(reasons.len(), 5);
    }

    #[test]
    fn another_games_snapshot_is_skipped() {
        let (dir, _store, _) = two_generations(1, 1);
        let report = load_all(dir.path(), "coins", SnapshotLimits::default(), &mut |_| {}).unwrap();
        assert!(report.instances.is_empty());
        assert_eq!(report.skipped.len(), 2, "both slots tried");
        assert!(report.skipped[0]
            .reason
            .contains("game \"arena\", this server runs \"coins\""));
    }

    #[test]
    fn oversize_record_is_skipped_alone() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        let mut snap = sample_shard(0, 1, 3, 0);
        snap.instances[1].state = vec![1; 10_000];
        store.write_blocking(snap).unwrap();
        let tight = SnapshotLimits {
            instance_bytes_max: 5000,
        };
        let report = load_all(dir.path(), GAME, tight, &mut |_| {}).unwrap();
        assert_eq!(report.instances.len(), 2);
        assert_eq!(report.skipped[0].instance.as_deref(), Some("inst-1"));
        assert!(report.skipped[0]
            .to_string()
            .contains("instance inst-1: record is"));
    }

    #[test]
    fn instances_from_a_run_with_more_shards_are_merged_and_replaced() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        // Old run: 3 shards. inst-0 later moved to shard 0 and ran on.
        store.write_blocking(sample_shard(0, 3, 0, 0)).unwrap();
        store.write_blocking(sample_shard(1, 3, 1, 0)).unwrap();
        store.write_blocking(sample_shard(2, 3, 2, 0)).unwrap();
        let mut moved = sample_shard(0, 1, 1, 0);
        moved.instances[0].tick += 100;
        store.write_blocking(moved).unwrap();
        let report = load(dir.path());
        assert_eq!(report.duplicates_dropped, 2);
        let ticks: Vec<_> = report
            .instances
            .iter()
            .map(|i| (i.id.as_str(), i.tick))
            .collect();
        assert_eq!(ticks, [("inst-0", 103), ("inst-1", 3)]);
        for shards in [1, 2, 5] {
            let placed = place(report.instances.clone(), shards);
            assert_eq!(placed.len(), shards);
            for (shard, list) in placed.iter().enumerate() {
                for snap in list {
                    let id = InstanceId::parse(&snap.id).unwrap();
                    assert_eq!(shard_for(&id, shards), shard);
                }
            }
            assert_eq!(placed.iter().map(Vec::len).sum::<usize>(), 2);
        }
    }

    #[test]
    fn missing_dir_is_an_empty_start_and_progress_is_reported() {
        let dir = TempDir::new();
        let report = load(&dir.path().join("nope"));
        assert!(report.instances.is_empty() && report.skipped.is_empty());

        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        store.write_blocking(sample_shard(0, 2, 2, 0)).unwrap();
        store.write_blocking(sample_shard(1, 2, 3, 0)).unwrap();
        let mut seen = Vec::new();
        load_all(dir.path(), GAME, SnapshotLimits::default(), &mut |p| {
            seen.push(*p)
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        // inst-0 and inst-1 are in both shards' files: counted once.
        assert_eq!(
            (seen[1].shards_done, seen[1].shards_total, seen[1].instances),
            (2, 2, 3)
        );
        assert!(seen[1].bytes_read > seen[0].bytes_read);
    }

    #[test]
    fn slot_paths_name_both_files() {
        let [a, b] = slot_paths(Path::new("data"), 7);
        assert_eq!(a, Path::new("data/shard-0007.a.snap"));
        assert_eq!(b, Path::new("data/shard-0007.b.snap"));
    }
}
