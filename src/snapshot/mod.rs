//! Crash-safe snapshots of a node's instances: rkyv archives in
//! memory-mapped files, one file set per shard, and the `shardline snapshot`
//! command that inspects them.
//!
//! # How a shard uses it (the wiring lives in `shard/`)
//! 1. At start: [`load_all`] reads `--snapshot-dir`; [`place`] splits the
//!    instances over the current shards with the rule that places new ones;
//!    each shard rebuilds its own with
//!    [`Instance::restore_with`](crate::game::Instance::restore_with) and
//!    takes the seats' resume tokens from the records.
//! 2. Every `--snapshot-interval-ms` and at graceful shutdown: on the shard's
//!    thread, [`Instance::save`](crate::game::Instance::save) per instance
//!    (one copy of each world; tokens filled with
//!    [`InstanceSnapshot::fill_tokens`]) into a [`ShardSnapshot`]; then, off
//!    the tick, [`SnapshotStore::write_blocking`] (archive, write, fsync,
//!    rename) on a blocking thread.
//! 3. A failed write is logged and counted by [`SnapshotError::cause`]; the
//!    server keeps serving and the last good snapshot stays on disk.
//!
//! # Crash safety, in one paragraph
//! A write never modifies a file that holds a good snapshot: it writes the
//! new generation to a fresh temporary file, fsyncs it, renames it over the
//! shard's *older* slot and fsyncs the directory. So at any instant of a
//! crash each shard has its newest durable generation intact, and usually
//! the one before it as a fallback. Reading trusts nothing: header
//! checksum, payload checksum, then rkyv's validation, each failure a typed
//! reason with the path; a bad file is skipped and the older slot used.
//! Details: [`store`] (writing) and [`format`] (the bytes).
//!
//! # Layout
//! - [`format`]: the file format: header, [`ShardSnapshot`], encode and
//!   checked decode, [`SnapshotFile`] (mmap).
//! - [`store`]: [`SnapshotStore`]: the directory, its lock, crash-safe
//!   writes, slot names, limits.
//! - [`load`]: [`load_all`] (newest good generation per shard, skips with
//!   reasons, progress) and [`place`].
//! - [`inspect`]: the report behind `shardline snapshot inspect`.
//! - [`error`]: what can go wrong, as one [`SnapshotError`] type.

pub mod error;
pub mod format;
pub mod inspect;
pub mod load;
pub mod store;
#[cfg(test)]
pub(crate) mod testutil;

use std::path::PathBuf;

use anyhow::Context;

pub use error::SnapshotError;
pub use format::{
    Header, InstanceSnapshot, Invalid, SeatSnapshot, ShardSnapshot, SnapshotFile, FORMAT_VERSION,
};
pub use load::{load_all, place, LoadProgress, LoadReport, LoadedFile, Skipped};
pub use store::{SnapshotLimits, SnapshotStore, WriteStats, INSTANCE_BYTES_MAX_DEFAULT};

/// `shardline snapshot …`
#[derive(clap::Args, Debug)]
pub struct SnapshotCli {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Print what a snapshot file, or every file of a snapshot directory,
    /// holds: format version, generation, shard, checksum verdict, and each
    /// instance's tick, players and entities. Bad files are reported, and
    /// the exit status stays 0; a missing PATH exits with 2.
    Inspect {
        /// A snapshot file or a snapshot directory (`--snapshot-dir`).
        path: PathBuf,
        /// One JSON document instead of text, for tools.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: SnapshotCli) -> anyhow::Result<()> {
    match cli.command {
        SnapshotCommand::Inspect { path, json } => {
            let report = inspect::inspect(&path)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report).context("writing JSON")?;
                std::io::Write::write_all(&mut out, b"\n").context("writing JSON")?;
            } else {
                inspect::write_text(&report, &mut out).context("writing report")?;
            }
            Ok(())
        }
    }
}
