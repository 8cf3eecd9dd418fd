//! `shardline snapshot inspect PATH [--json]`: what a snapshot file, or
//! every file of a snapshot directory, holds and whether it is sound.
//!
//! Read-only and independent of the server: it takes no lock, so it can
//! look at the directory of a running node. Bad files are part of the
//! report, not a failure of the command.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::SnapshotError;
use super::format::{read_header, ArchivedShardSnapshot, Header, SnapshotFile};
use super::store::{is_temp_name, parse_file_name, LOCK_FILE_NAME};

/// Everything `inspect` found under one path.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub path: PathBuf,
    pub files: Vec<FileReport>,
    pub files_ok: usize,
    pub files_bad: usize,
    /// Instances in the files restore would use (for a single file: in it).
    pub instances_in_use: usize,
}

/// One file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub size_bytes: u64,
    /// `ok`, or the class of failure: `empty`, `truncated`, `foreign`,
    /// `unsupported-version`, `header-mismatch`, `checksum-mismatch`,
    /// `trailing-bytes`, `invalid-archive`, `inconsistent`, `temporary`,
    /// `unreadable`.
    pub verdict: &'static str,
    /// Why it is not `ok`.
    pub reason: Option<String>,
    /// Something to know about an `ok` file (e.g. its name makes restore
    /// ignore it).
    pub note: Option<String>,
    /// Whether restore would use this file for its shard (directories
    /// only).
    pub in_use: Option<bool>,
    /// From the header, when the header is sound.
    pub format_version: Option<u32>,
    pub generation: Option<u64>,
    pub shard: Option<u32>,
    pub payload_crc32: Option<String>,
    /// From the payload, when the whole file is sound.
    pub shards: Option<u32>,
    pub node_id: Option<String>,
    pub game: Option<String>,
    pub written_at_unix_ms: Option<u64>,
    pub written_at: Option<String>,
    pub instances: Vec<InstanceReport>,
}

/// One instance of a sound file.
#[derive(Debug, Serialize)]
pub struct InstanceReport {
    pub id: String,
    pub tick: u64,
    pub players: usize,
    pub entities: u32,
    pub state_bytes: usize,
    /// CRC-32 of the saved world, hex: what a restore of this record logs
    /// (`instance restored … state_crc32=…`, debug level).
    pub state_crc32: String,
}

/// Inspects a file, or every file directly inside a directory. Errs only
/// when `path` cannot be read at all (missing, or an unlistable directory).
pub fn inspect(path: &Path) -> Result<InspectReport, SnapshotError> {
    let io = |op, source| SnapshotError::Io {
        path: path.to_owned(),
        op,
        source,
    };
    let meta = fs::metadata(path).map_err(|e| io("stat", e))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        let mut paths = Vec::new();
        for entry in fs::read_dir(path).map_err(|e| io("list", e))? {
            let entry = entry.map_err(|e| io("list", e))?;
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && entry.file_name() != LOCK_FILE_NAME {
                paths.push(entry.path());
            }
        }
        paths.sort();
        files.extend(paths.iter().map(|p| inspect_file(p, true)));
        mark_in_use(&mut files);
    } else {
        files.push(inspect_file(path, false));
    }
    let files_ok = files.iter().filter(|f| f.verdict == "ok").count();
    let instances_in_use = files
        .iter()
        .filter(|f| f.in_use.unwrap_or(f.verdict == "ok"))
        .map(|f| f.instances.len())
        .sum();
    Ok(InspectReport {
        path: path.to_owned(),
        files_bad: files.len() - files_ok,
        files_ok,
        instances_in_use,
        files,
    })
}

fn inspect_file(path: &Path, in_dir: bool) -> FileReport {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut report = FileReport {
        path: path.to_owned(),
        size_bytes: fs::metadata(path).map_or(0, |m| m.len()),
        verdict: "ok",
        reason: None,
        note: None,
        in_use: in_dir.then_some(false),
        format_version: None,
        generation: None,
        shard: None,
        payload_crc32: None,
        shards: None,
        node_id: None,
        game: None,
        written_at_unix_ms: None,
        written_at: None,
        instances: Vec::new(),
    };
    if is_temp_name(&name) {
        report.verdict = "temporary";
        report.reason = Some("temporary file of an interrupted or running write".into());
        return report;
    }
    match read_header(path) {
        Ok(header) => report.header(&header),
        Err(e) => {
            report.fail(e);
            return report;
        }
    }
    match SnapshotFile::open(path) {
        Ok(file) => report.payload(file.snapshot()),
        Err(e) => report.fail(e),
    }
    if report.verdict != "ok" {
        return report;
    }
    match parse_file_name(&name) {
        // The check restore makes: a file renamed to another shard's name
        // is used for neither.
        Some((shard, _)) if Some(shard) != report.shard => {
            report.verdict = "inconsistent";
            report.reason = Some(format!(
                "inconsistent: file name says shard {shard}, contents say {}",
                report.shard.unwrap_or_default()
            ));
        }
        None if in_dir => {
            report.note =
                Some("name is not shard-<n>.<a|b>.snap: restore ignores this file".into());
        }
        _ => {}
    }
    report
}

impl FileReport {
    fn header(&mut self, h: &Header) {
        self.format_version = Some(h.version);
        self.generation = Some(h.generation);
        self.shard = Some(h.shard);
        self.payload_crc32 = Some(format!("{:08x}", h.payload_crc32));
    }

    fn payload(&mut self, snap: &ArchivedShardSnapshot) {
        let written_at_unix_ms = snap.written_at_unix_ms.to_native();
        self.shards = Some(snap.shards.to_native());
        self.node_id = Some(snap.node_id.as_str().to_owned());
        self.game = Some(snap.game.as_str().to_owned());
        self.written_at_unix_ms = Some(written_at_unix_ms);
        self.written_at = Some(iso8601_utc(written_at_unix_ms));
        self.instances = snap
            .instances
            .iter()
            .map(|r| InstanceReport {
                id: r.id.as_str().to_owned(),
                tick: r.tick.to_native(),
                players: r.seats.len(),
                entities: r.entities.to_native(),
                state_bytes: r.state.len(),
                state_crc32: format!("{:08x}", crc32fast::hash(r.state.as_slice())),
            })
            .collect();
    }

    fn fail(&mut self, e: SnapshotError) {
        let (verdict, reason) = match e {
            SnapshotError::Invalid { reason, .. } => (reason.verdict(), reason.to_string()),
            SnapshotError::Io { op, source, .. } => ("unreadable", format!("{op}: {source}")),
            other => ("unreadable", other.to_string()),
        };
        self.verdict = verdict;
        self.reason = Some(reason);
    }
}

/// Marks, per shard, the sound slot file with the highest generation: the
/// one restore would use.
fn mark_in_use(files: &mut [FileReport]) {
    let mut newest: BTreeMap<u32, (u64, usize)> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let name = f.path.file_name().unwrap_or_default().to_string_lossy();
        let (Some((shard, _)), "ok", Some(generation)) =
            (parse_file_name(&name), f.verdict, f.generation)
        else {
            continue;
        };
        let best = newest.entry(shard).or_insert((generation, i));
        if generation > best.0 {
            *best = (generation, i);
        }
    }
    for (_, i) in newest.into_values() {
        files[i].in_use = Some(true);
    }
}

/// `2026-11-25T14:03:12.345Z` for Unix milliseconds (proleptic Gregorian,
/// UTC; Howard Hinnant's days-to-civil algorithm).
pub fn iso8601_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        unix_ms % 1000
    )
}

/// The report as text for people.
pub fn write_text(report: &InspectReport, out: &mut dyn Write) -> io::Result<()> {
    for f in &report.files {
        write_file_text(f, out)?;
    }
    writeln!(
        out,
        "{}: {} files, {} ok, {} bad; {} instances in use",
        report.path.display(),
        report.files.len(),
        report.files_ok,
        report.files_bad,
        report.instances_in_use
    )
}

fn write_file_text(f: &FileReport, out: &mut dyn Write) -> io::Result<()> {
    let used = match f.in_use {
        Some(true) => " (in use)",
        Some(false) if f.verdict == "ok" => " (older copy)",
        _ => "",
    };
    match &f.reason {
        Some(reason) => writeln!(out, "{}: {}: {reason}", f.path.display(), f.verdict)?,
        None => writeln!(out, "{}: ok{used}", f.path.display())?,
    }
    if let Some(note) = &f.note {
        writeln!(out, "  note: {note}")?;
    }
    write!(out, "  {} bytes", f.size_bytes)?;
    if let (Some(v), Some(g), Some(s)) = (f.format_version, f.generation, f.shard) {
        write!(out, ", format v{v}, generation {g}, shard {s}")?;
        if let Some(shards) = f.shards {
            write!(out, " of {shards}")?;
        }
    }
    if let Some(crc) = &f.payload_crc32 {
        let verdict = match f.verdict {
            "ok" => "ok",
            "checksum-mismatch" => "MISMATCH",
            _ => "not checked",
        };
        write!(out, ", payload crc32 {crc} {verdict}")?;
    }
    writeln!(out)?;
    if let (Some(node), Some(game), Some(at)) = (&f.node_id, &f.game, &f.written_at) {
        writeln!(out, "  node {node:?}, game {game:?}, written {at}")?;
        writeln!(out, "  {} instances", f.instances.len())?;
    }
    if !f.instances.is_empty() {
        let id_width = f
            .instances
            .iter()
            .map(|i| i.id.len())
            .max()
            .unwrap_or(0)
            .max(2);
        writeln!(
            out,
            "    {:<id_width$}  {:>10}  {:>7}  {:>8}  {:>11}",
            "ID", "TICK", "PLAYERS", "ENTITIES", "STATE BYTES"
        )?;
        for i in &f.instances {
            writeln!(
                out,
                "    {:<id_width$}  {:>10}  {:>7}  {:>8}  {:>11}",
                i.id, i.tick, i.players, i.entities, i.state_bytes
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::store::{Slot, SnapshotLimits, SnapshotStore};
    use crate::snapshot::testutil::{sample_shard, TempDir};

    #[test]
    fn dates_are_utc_iso8601() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_utc(1_764_079_392_345), "2025-11-25T14:03:12.345Z");
        assert_eq!(iso8601_utc(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn directory_report_marks_the_file_in_use_and_the_bad_ones() {
        let dir = TempDir::new();
        let store = SnapshotStore::open(dir.path(), SnapshotLimits::default()).unwrap();
        store.write_blocking(sample_shard(0, 2, 1, 0)).unwrap();
        let newest = store.write_blocking(sample_shard(0, 2, 2, 0)).unwrap().path;
        let one = store.write_blocking(sample_shard(1, 2, 1, 0)).unwrap().path;
        let mut bytes = fs::read(&one).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&one, &bytes).unwrap();
        fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let older = fs::read(store.slot_path(0, Slot::A)).unwrap();
        fs::write(dir.path().join("shard-0005.a.snap"), &older).unwrap();
        fs::write(dir.path().join("backup.snap"), &older).unwrap();

        let report = inspect(dir.path()).unwrap();
        assert_eq!(
            (report.files.len(), report.files_ok, report.files_bad),
            (6, 3, 3)
        );
        assert_eq!(report.instances_in_use, 2);
        let by_name = |n: &str| report.files.iter().find(|f| f.path.ends_with(n)).unwrap();
        let used = by_name("shard-0000.b.snap");
        assert_eq!(used.path, newest);
        assert_eq!(
            (used.verdict, used.in_use, used.generation),
            ("ok", Some(true), Some(2))
        );
        assert_eq!(used.instances[1].id, "inst-1");
        assert_eq!(
            (used.instances[1].players, used.instances[1].entities),
            (2, 2)
        );
        assert_eq!(used.instances[1].tick, 3);
        assert_eq!(by_name("shard-0000.a.snap").in_use, Some(false));
        let bad = by_name("shard-0001.a.snap");
        assert_eq!(
            (bad.verdict, bad.generation),
            ("checksum-mismatch", Some(1))
        );
        assert_eq!(by_name("notes.txt").verdict, "foreign");
        let moved = by_name("shard-0005.a.snap");
        assert_eq!(moved.verdict, "inconsistent");
        let reason = moved.reason.as_deref().unwrap();
        assert!(
            reason.contains("file name says shard 5, contents say 0"),
            "{reason}"
        );
        let backup = by_name("backup.snap");
        assert_eq!((backup.verdict, backup.in_use), ("ok", Some(false)));
        assert!(backup.note.as_deref().unwrap().contains("restore ignores"));

        let mut text = Vec::new();
        write_text(&report, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("shard-0000.b.snap: ok (in use)"), "{text}");
        assert!(
            text.contains("shard-0001.a.snap: checksum-mismatch: checksum mismatch"),
            "{text}"
        );
        assert!(text.contains("MISMATCH"), "{text}");
        assert!(
            text.contains("6 files, 3 ok, 3 bad; 2 instances in use"),
            "{text}"
        );
    }

    #[test]
    fn missing_path_is_an_error() {
        let dir = TempDir::new();
        let err = inspect(&dir.path().join("nope")).unwrap_err();
        assert_eq!(err.cause(), "missing");
    }
}
