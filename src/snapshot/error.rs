//! What can go wrong with snapshots, each case with the path and a reason
//! an operator can act on.

use std::io;
use std::path::PathBuf;

use super::format::Invalid;

/// A snapshot operation that failed. None of these stops a server: the
/// caller logs it, counts it by [`SnapshotError::cause`] and keeps serving;
/// the newest good snapshot on disk is untouched by any failed write.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file system refused: disk full, permission denied, read-only
    /// file system, a directory that vanished, …
    #[error("{}: {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        /// What was being done: "create directory", "write", "fsync", "rename", …
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A file that is not a readable snapshot.
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: Invalid },
    /// One instance's record exceeds the per-instance cap; the shard's
    /// snapshot was not written.
    #[error(
        "shard {shard}: instance {instance}: snapshot record is {bytes} bytes, \
         over the cap of {max} bytes (instance_bytes_max); snapshot not written"
    )]
    RecordTooLarge {
        shard: u32,
        instance: String,
        bytes: u64,
        max: u64,
    },
    /// rkyv could not archive the snapshot (over 2 GiB: 32-bit offsets).
    #[error("shard {shard}: cannot encode snapshot: {reason}")]
    Encode { shard: u32, reason: String },
    /// Another store (in this or another process) holds the directory.
    #[error("{}: snapshot directory is in use by another shardline process", path.display())]
    Locked { path: PathBuf },
}

impl SnapshotError {
    /// A short, stable label for metrics and logs: `disk_full`,
    /// `permission_denied`, `read_only`, `missing`, `io`, `invalid`,
    /// `too_large`, `encode`, `locked`.
    pub fn cause(&self) -> &'static str {
        match self {
            SnapshotError::Io { source, .. } => match source.kind() {
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "disk_full",
                io::ErrorKind::PermissionDenied => "permission_denied",
                io::ErrorKind::ReadOnlyFilesystem => "read_only",
                io::ErrorKind::NotFound => "missing",
                _ => "io",
            },
            SnapshotError::Invalid { .. } => "invalid",
            SnapshotError::RecordTooLarge { .. } => "too_large",
            SnapshotError::Encode { .. } => "encode",
            SnapshotError::Locked { .. } => "locked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_the_operating_errors() {
        let io = |kind| SnapshotError::Io {
            path: "data/x".into(),
            op: "write",
            source: io::Error::from(kind),
        };
        assert_eq!(io(io::ErrorKind::StorageFull).cause(), "disk_full");
        assert_eq!(
            io(io::ErrorKind::PermissionDenied).cause(),
            "permission_denied"
        );
        assert_eq!(io(io::ErrorKind::NotFound).cause(), "missing");
        let enospc = SnapshotError::Io {
            path: "data/x".into(),
            op: "write",
            source: io::Error::from_raw_os_error(libc::ENOSPC),
        };
        assert_eq!(enospc.cause(), "disk_full");
        assert!(
            enospc.to_string().starts_with("data/x: write: "),
            "{enospc}"
        );
    }
}
